"""The AI result made ready for the overlays and the findings (no Qt): fill, heatmap placement, the truth comparison
of what is drawn (the comparison itself: tests/model/infer/test_compare.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.errors import ModelFileError
from model.infer.predictor import ImageResult, Lesion
from model.infer.compare import dice
from model.data.preprocess import Geometry
from model.data.study_index import Abnormality, IndexedImage

from app.background.ai_results import prepare_ai_image

ROWS, COLS = 120, 90


def disc(cx, cy, r, shape=(ROWS, COLS)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def lesion_of(mask: np.ndarray, p: float) -> Lesion:
    ys, xs = np.nonzero(mask)
    return Lesion(bbox=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1], area_px=int(mask.sum()),
                  area_mm2=None, longest_diameter_px=float(xs.max() - xs.min() + 1), longest_diameter_mm=None,
                  centroid=[float(xs.mean()), float(ys.mean())], peak_probability=0.9, p_malignant=p,
                  label="malignant" if p >= 0.5 else "benign")


def result_of(probability: np.ndarray, lesions: list[Lesion], geometry: Geometry | None = None) -> ImageResult:
    geometry = geometry or Geometry((ROWS, COLS), (0, ROWS, 0, COLS), False, 1.0, (ROWS, COLS), 0.1, False)
    return ImageResult(path="/x/a.dcm", laterality="R", view="CC", rows=ROWS, columns=COLS, lesions=lesions,
                       case_score=max((l.p_malignant for l in lesions), default=0.0), model_version="t", device="CPU",
                       seconds=0.1, spacing_mm=0.1, spacing_known=False, probability=probability, geometry=geometry)


def write_mask(path, mask: np.ndarray) -> str:
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
    return str(path)


def image_with(truths: list[tuple[str, np.ndarray | None, str | None]], tmp_path, gt_known=True) -> IndexedImage:
    abnormalities = []
    for n, (pathology, mask, problem) in enumerate(truths, 1):
        mask_path = write_mask(tmp_path / f"m{n}.png", mask) if mask is not None else None
        abnormalities.append(Abnormality(id=n, type="mass", pathology=pathology, malignant=pathology == "MALIGNANT",
                                         mask_path=mask_path, problem=problem))
    return IndexedImage(path="/x/a.dcm", patient_id="P", laterality="R", view="CC", rows=ROWS, columns=COLS,
                        abnormalities=abnormalities, gt_known=gt_known)


def test_fill_heatmap_and_outlines_sit_on_the_original_grid_of_a_flipped_scaled_result(tmp_path):
    # working grid: half the original resolution, cropped, flipped (chest wall on the right in the file)
    crop = (10, 110, 20, 90)  # y0, y1, x0, x1
    geometry = Geometry((ROWS, COLS), crop, True, 0.5, (50, 35), 0.1, False)
    working = np.zeros((50, 35), np.uint8)
    working[15:35, 5:19] = 230  # 11 mm² near the chest wall = near x1 on the original grid
    result = result_of(working, [], geometry)
    ai = prepare_ai_image(image_with([], tmp_path, gt_known=False), result, threshold=0.5)
    mask = result.mask(0.5)
    assert mask.any() and ai.mask_pixels == int(mask.sum())
    x0, y0 = ai.fill_origin
    ys, xs = np.nonzero(mask)
    assert (x0, y0) == (xs.min(), ys.min()) and xs.min() > 50  # flipped: the mark lands on the right half of the crop
    h, w = ai.fill.shape[:2]
    assert np.array_equal(ai.fill[..., 3] > 0, mask[y0 : y0 + h, x0 : x0 + w])
    assert (ai.fill[ai.fill[..., 3] > 0][:, :3] == (255, 255, 0)).all()
    assert ai.heat_rect == (20.0, 10.0, 70.0, 100.0)
    assert np.array_equal(ai.heat, working[:, ::-1])  # turned to read like the original
    points = np.vstack(ai.outlines)
    assert points[:, 0].min() >= xs.min() and points[:, 0].max() <= xs.max() + 1
    assert points[:, 1].min() >= ys.min() and points[:, 1].max() <= ys.max() + 1


def test_specks_under_the_minimum_area_are_neither_listed_nor_drawn_and_each_hit_names_its_truth(tmp_path):
    """What the yellow shows is what Findings lists: a 0.8 mm² speck above the threshold is not drawn."""
    lesion_a, lesion_b, speck = disc(25, 30, 13), disc(60, 90, 12), disc(75, 20, 5)  # 5.3, 4.5 and 0.8 mm² at 0.1 mm
    probability = ((lesion_a | lesion_b | speck) * 230).astype(np.uint8)
    truth_1, truth_2 = disc(62, 92, 6), disc(20, 28, 5)
    image = image_with([("MALIGNANT", truth_1, None), ("BENIGN", truth_2, None)], tmp_path)
    result = result_of(probability, [lesion_of(lesion_b, 0.7), lesion_of(lesion_a, 0.4)])
    assert result.mask(0.5)[speck].all() and not result.lesion_mask(0.5)[speck].any()
    ai = prepare_ai_image(image, result, 0.5)
    drawn = np.zeros((ROWS, COLS), bool)
    x0, y0 = ai.fill_origin
    drawn[y0 : y0 + ai.fill.shape[0], x0 : x0 + ai.fill.shape[1]] = ai.fill[..., 3] > 0
    assert np.array_equal(drawn, lesion_a | lesion_b)
    assert ai.comparison.lesion_truths == [[0], [1]]  # lesion 1 (b) hit truth 1, lesion 2 (a) hit truth 2
    assert ai.comparison.found_by(0) == [0] and ai.comparison.found_by(1) == [1]
    assert ai.comparison.truth_areas_px == [int(truth_1.sum()), int(truth_2.sum())]
    union = truth_1 | truth_2
    assert ai.comparison.dice == pytest.approx(dice(lesion_a | lesion_b, union))  # the Dice of what is drawn
