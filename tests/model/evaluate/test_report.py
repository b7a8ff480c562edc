"""The report page says what ``bcir eval`` counts: hits, misses and false positives over the listed lesions (the
findings panel's rule, model.infer.compare), not over every predicted component."""

from __future__ import annotations

from model.evaluate.evaluation import EvalReport
from model.evaluate.report import markdown


def _report() -> EvalReport:
    return EvalReport(
        root="/data/demo", model_version="m-1", device="cpu", views=["CC"], held_out_rule="all-patients",
        held_out_description="every patient", patients=2, images=4, images_with_lesions=3, dice_mean=0.5,
        iou_mean=0.33, dice_mean_per_lesion=0.4, iou_mean_per_lesion=0.25, lesion_sensitivity=0.75, fp_per_image=0.5,
        lesions=4, lesions_detected=3, false_positives=2, auc=None, auc_ci=(None, None), sensitivity=None,
        specificity=None, malignancy_threshold=0.5, abnormalities_scored=4, malignant=0, benign=4, case_auc=None,
        case_auc_ci=(None, None), pixel_accuracy=0.99, pixel_accuracy_all_background=0.98, pixels=1000,
        lesion_pixel_fraction=0.02, per_type={}, abnormalities_with_problems=0, images_skipped={},
        segmentation_threshold=0.5, min_lesion_mm2=4.0, data_fingerprint="0123456789abcdef", seconds=1.0,
    )


def _row(text: str, metric: str) -> str:
    (row,) = [line for line in text.splitlines() if line.startswith(f"| {metric} |")]
    return row


def test_the_numbers_count_listed_lesions_as_the_findings_panel_does():
    text = markdown(_report(), roc_written=False, curves_written=False)
    assert "component" not in text
    assert _row(text, "false positives per image") == (
        "| false positives per image | 0.50 (2 in 4 images) | listed lesions (>= 4 mm², as the findings panel lists "
        "them) touching no lesion, lesion-free images included |")
    assert _row(text, "lesion sensitivity").endswith("| a lesion is found when a listed lesion overlaps it |")
    assert "each lesion vs the listed lesions overlapping it" in _row(text, "Dice per lesion")
    assert "the listed lesions vs the union of the image's lesion masks" in _row(text, "Dice per image")
