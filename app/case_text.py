"""Words the worklist and status bar use for images, patients and ground truth (no Qt here)."""

from __future__ import annotations

from model.data.cbis_ddsm import is_benign
from model.data.study_index import Abnormality, IndexedImage, StudyIndex


def image_label(image: IndexedImage) -> str:
    """'R CC', 'L MLO', '? CC' ..."""
    side = image.laterality if image.laterality in ("L", "R") else "?"
    return f"{side} {image.view or '?'}"


def abnormality_text(abnormality: Abnormality) -> str:
    """'MALIGNANT mass', 'BENIGN_WITHOUT_CALLBACK calcification' (pathology as the CSV writes it); a pathology
    that is neither malignant nor benign is never shown as one ('pathology unknown mass')."""
    if abnormality.malignant or is_benign(abnormality.pathology or ""):
        return f"{abnormality.pathology or 'MALIGNANT'} {abnormality.type}"
    return f"pathology unknown {abnormality.type}"


def image_truth(image: IndexedImage) -> str:
    """The ground truth of one image: its abnormalities, 'no lesion', or 'no ground truth'."""
    if image.abnormalities:
        return ", ".join(dict.fromkeys(abnormality_text(a) for a in image.abnormalities))
    return "no lesion" if image.gt_known else "no ground truth"


def patient_truth(images: list[IndexedImage]) -> str:
    """One word for a patient: MALIGNANT when any image is, else benign / no lesion / no ground truth."""
    verdicts = [i.malignant for i in images]
    if any(v is True for v in verdicts):
        return "MALIGNANT"
    abnormalities = [a for i in images for a in i.abnormalities]
    if any(not is_benign(a.pathology or "") for a in abnormalities):
        return "pathology unknown"  # never called benign while a lesion's pathology is not known
    if abnormalities:
        return "benign"
    if any(i.gt_known for i in images):
        return "no lesion"
    return "no ground truth"


def has_ground_truth(images: list[IndexedImage]) -> bool:
    return any(i.gt_known for i in images)


def has_abnormality(images: list[IndexedImage]) -> bool:
    return any(i.abnormalities for i in images)


def first_case_with_truth(index: StudyIndex) -> str | None:
    """The first patient with a ground-truth lesion, else the first with ground truth at all, else the first."""
    patients = index.patients()
    with_lesion = [p for p, images in patients.items() if has_ground_truth(images) and has_abnormality(images)]
    with_truth = [p for p, images in patients.items() if has_ground_truth(images)]
    return next(iter(with_lesion or with_truth or list(patients)), None)


def position_text(col: float, row: float, spacing_mm: tuple[float, float] | None) -> str:
    """Cursor position in pixels, plus millimetres when the pixel spacing is known."""
    text = f"x {int(col)}  y {int(row)} px"
    if spacing_mm is None:
        return text + "  (spacing unknown)"
    return text + f"  ({col * spacing_mm[1]:.1f}, {row * spacing_mm[0]:.1f} mm)"


def window_text(center: float, width: float) -> str:
    return f"C {center:.0f}  W {width:.0f}"


FLAG_SCORE = 0.5  # an AI score at or above this is shown in red (worklist, findings)


def percent(p: float) -> str:
    """A probability as the reader reads it: '61%'."""
    return f"{100 * p:.0f}%"


ASSUMED_MARK = "*"  # after a size computed at an assumed pixel spacing (the file gives none)


def lesion_size_texts(lesion, spacing_mm: float | None = None) -> tuple[str, str]:
    """(area, longest diameter) of a predicted lesion in mm: from the file's pixel spacing, else at
    ``spacing_mm``, the spacing the model assumed, marked with ASSUMED_MARK; in pixels only when neither is known."""
    if lesion.area_mm2 is not None and lesion.longest_diameter_mm is not None:
        return _mm2(lesion.area_mm2), f"{lesion.longest_diameter_mm:.1f} mm"
    if spacing_mm:
        return (f"{_mm2(lesion.area_px * spacing_mm ** 2)}{ASSUMED_MARK}",
                f"{lesion.longest_diameter_px * spacing_mm:.1f} mm{ASSUMED_MARK}")
    return f"{lesion.area_px} px", f"{lesion.longest_diameter_px:.0f} px"


def _mm2(area: float) -> str:
    """'7.5 mm²', '84 mm²': a tenth only where it matters."""
    return f"{area:.1f} mm²" if area < 10 else f"{area:.0f} mm²"


def area_text(area_px: int, spacing_mm: float | None, known: bool) -> str:
    """An area in mm² (marked when the spacing is assumed), else in pixels."""
    if not spacing_mm:
        return f"{area_px} px"
    return f"{_mm2(area_px * spacing_mm ** 2)}{'' if known else ASSUMED_MARK}"


def short_truth(abnormality: Abnormality) -> str:
    """'malignant mass', 'benign calc.': short enough for a findings column (the full text is the tooltip)."""
    pathology = (abnormality.pathology or ("MALIGNANT" if abnormality.malignant else "")).strip().upper()
    word = {"MALIGNANT": "malignant", "BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign"}.get(pathology, "unknown")
    kind = {"calcification": "calc."}.get(abnormality.type, abnormality.type)
    return f"{word} {kind}"
