"""Which indexed images a training run uses: known ground truth, the chosen views, no problem; the rest counted."""

from __future__ import annotations

from dataclasses import dataclass, field

from model.data.study_index import IndexedImage, StudyIndex


@dataclass
class CaseReport:
    """What went into training and what was left out, and why."""

    images_used: int = 0
    lesion_free_images: int = 0
    abnormalities_used: int = 0
    left_out: list[dict] = field(default_factory=list)  # {"path", "reason"}

    def to_json(self) -> dict:
        return {"images_used": self.images_used, "lesion_free_images": self.lesion_free_images,
                "abnormalities_used": self.abnormalities_used, "left_out": self.left_out,
                "left_out_count": len(self.left_out)}


def select_images(index: StudyIndex, views: tuple[str, ...] = ("CC",)) -> tuple[list[IndexedImage], CaseReport]:
    """Images with known ground truth in ``views``; images with any problem are left out and counted."""
    report = CaseReport()
    chosen = []
    wanted = {v.upper() for v in views}
    for image in index.images:
        if not image.gt_known or (image.view or "").upper() not in wanted:
            continue
        problems = [a.problem for a in image.abnormalities if a.problem or not a.mask_path]
        if problems:
            report.left_out.append({"path": image.path, "reason": problems[0] or "ROI mask missing"})
            continue
        chosen.append(image)
        report.images_used += 1
        report.abnormalities_used += len(image.abnormalities)
        report.lesion_free_images += not image.abnormalities
    for s in index.skipped:
        report.left_out.append({"path": s.path, "reason": s.reason})
    return chosen, report
