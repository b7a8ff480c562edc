"""The one truth comparison (findings panel and bcir eval): hits, misses, false positives per listed lesion, Dice, IoU."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.data.masks import load_truth
from model.data.preprocess import Geometry
from model.data.study_index import Abnormality, IndexedImage
from model.errors import DataError
from model.infer import compare
from model.infer.compare import compare_with_truth, match_labels
from model.infer.predictor import ImageResult, Lesion, lesion_components

ROWS, COLS = 120, 90


def _rect(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def disc(cx, cy, r, shape=(ROWS, COLS)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def listed_result(probability: np.ndarray, geometry: Geometry | None = None, min_mm2: float = 0.0,
                  order: list[int] | None = None) -> ImageResult:
    """A result listing what the lesion rule finds in ``probability`` (working grid), each lesion measured on the
    original grid as the Predictor measures it; ``order``: the result's order of the components (by p(malignant))."""
    geometry = geometry or Geometry(probability.shape, (0, probability.shape[0], 0, probability.shape[1]), False, 1.0,
                                    probability.shape, 0.1, False)
    labels, chosen, _ = lesion_components(probability, 128, geometry.working_spacing_mm ** 2, min_mm2, 8)
    lesions = []
    for peak, k in chosen:
        ys, xs = np.nonzero(geometry.to_original(labels == k))
        lesions.append(Lesion(bbox=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                              area_px=int(ys.size), area_mm2=None, longest_diameter_px=1.0, longest_diameter_mm=None,
                              centroid=[float(xs.mean()), float(ys.mean())], peak_probability=peak, p_malignant=0.5,
                              label="malignant"))
    if order is not None:
        lesions = [lesions[i] for i in order]
    rows, cols = geometry.original_shape
    return ImageResult(path="/x/a.dcm", laterality="R", view="CC", rows=rows, columns=cols, lesions=lesions,
                       case_score=0.5, model_version="t", device="CPU", seconds=0.1, spacing_mm=geometry.spacing_mm,
                       spacing_known=False, probability=probability, geometry=geometry, min_lesion_mm2=min_mm2)


def write_mask(path, mask: np.ndarray) -> str:
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
    return str(path)


def image_with(truths: list[tuple[str, np.ndarray | None, str | None]], tmp_path, gt_known=True,
               shape=(ROWS, COLS)) -> IndexedImage:
    abnormalities = []
    for n, (pathology, mask, problem) in enumerate(truths, 1):
        mask_path = write_mask(tmp_path / f"m{n}.png", mask) if mask is not None else None
        abnormalities.append(Abnormality(id=n, type="mass", pathology=pathology, malignant=pathology == "MALIGNANT",
                                         mask_path=mask_path, problem=problem))
    return IndexedImage(path="/x/a.dcm", patient_id="P", laterality="R", view="CC", rows=shape[0], columns=shape[1],
                        abnormalities=abnormalities, gt_known=gt_known)


def compared(image: IndexedImage, result: ImageResult):
    labels = result.lesion_labels(0.5)
    return compare_with_truth(load_truth(image, labels.shape), labels, len(result.lesions))


# -- overlap


def test_dice_and_iou_of_two_overlapping_squares():
    # two 10x10 squares offset by 5 in both directions: 100 px each, 5x5 = 25 px in common
    a = _rect((20, 20), 0, 10, 0, 10)
    b = _rect((20, 20), 5, 15, 5, 15)
    assert compare.dice(a, b) == pytest.approx(2 * 25 / 200)  # 0.25
    assert compare.iou(a, b) == pytest.approx(25 / 175)  # 1/7
    assert compare.iou_from_dice(compare.dice(a, b)) == pytest.approx(compare.iou(a, b))
    assert compare.dice(a, a) == 1.0 and compare.iou(a, a) == 1.0


def test_empty_masks():
    empty = np.zeros((8, 8), bool)
    some = _rect((8, 8), 2, 4, 2, 4)
    assert compare.dice(empty, empty) == 1.0 and compare.iou(empty, empty) == 1.0
    assert compare.dice(empty, some) == 0.0 and compare.iou(some, empty) == 0.0
    with pytest.raises(ValueError):
        compare.dice(np.zeros((8, 8), bool), np.zeros((8, 9), bool))


# -- matching predicted lesions to truth lesions


def test_match_lesions_one_hit_one_miss_one_false_positive():
    shape = (60, 60)
    hit_truth = _rect(shape, 10, 20, 10, 20)  # 100 px
    miss_truth = _rect(shape, 40, 50, 10, 20)  # nothing predicted there
    labels = np.zeros(shape, np.uint8)
    labels[_rect(shape, 10, 20, 15, 25)] = 1  # overlaps hit_truth over 10x5 = 50 px, 100 px in all
    labels[_rect(shape, 40, 45, 40, 45)] = 2  # far from any lesion: a false positive
    hits, fps, dices = match_labels([hit_truth, miss_truth], labels, 2)
    assert hits == [True, False]
    assert fps == 1
    assert dices[0] == pytest.approx(2 * 50 / 200)  # 0.5
    assert dices[1] == 0.0
    assert match_labels([hit_truth, miss_truth], labels, 2).truths_of == [[0], []]


def test_match_lesions_component_over_two_lesions_and_specks():
    """Through the lesion rule: what it lists is what is matched, specks under the minimum area are not."""
    shape = (40, 40)
    a, b = _rect(shape, 5, 10, 5, 10), _rect(shape, 5, 10, 20, 25)
    bridge = _rect(shape, 6, 9, 5, 25)  # one lesion across both truth lesions: two hits, no false positive
    speck = _rect(shape, 30, 32, 30, 32)  # 4 px = 0.04 mm² at 0.1 mm

    def match(truths, predicted, min_mm2=0.0):
        result = listed_result(predicted.astype(np.uint8) * 255, min_mm2=min_mm2)
        return match_labels(truths, result.lesion_labels(0.5), len(result.lesions))

    m = match([a, b], bridge | speck)
    assert m.hits == [True, True] and m.false_positives == 1 and m.components == 2
    m = match([a, b], bridge | speck, min_mm2=0.05)
    assert m.false_positives == 0 and m.components == 1
    # a speck that touches a lesion does not make it 'found' when it is not listed
    assert match([a], _rect(shape, 5, 6, 5, 6), min_mm2=0.05).hits == [False]
    # diagonal neighbours are one lesion (8-connectivity, as the inference labels lesions)
    diag = np.zeros(shape, bool)
    diag[1, 1] = diag[2, 2] = True
    assert match([], diag).false_positives == 1


# -- one image against its truth


def test_hits_false_positives_misses_and_overlap(tmp_path):
    found, elsewhere = disc(30, 30, 8), disc(70, 95, 6)
    mask = found | elsewhere
    truth_found, truth_missed = disc(33, 32, 9), disc(70, 40, 5)
    image = image_with([("MALIGNANT", truth_found, None), ("BENIGN", truth_missed, None)], tmp_path)
    result = listed_result(mask.astype(np.uint8) * 255)  # the one elsewhere first
    assert [lesion.bbox for lesion in result.lesions] == [[64, 89, 77, 102], [22, 22, 39, 39]]
    comparison = compared(image, result)
    assert comparison.known and comparison.lesion_hits == [False, True]
    assert comparison.truth_hit == [True, False] and comparison.false_positives == 1 and comparison.detected == 1
    (missed, box), = comparison.missed
    assert missed.id == 2 and box == (65, 35, 76, 46)
    union = truth_found | truth_missed
    assert comparison.dice == pytest.approx(compare.dice(mask, union))
    assert comparison.iou == pytest.approx(compare.iou(mask, union))
    assert comparison.truth_dice == [pytest.approx(compare.dice(found, truth_found)), 0.0]


def test_a_normal_image_makes_every_lesion_a_false_positive_and_no_truth_means_no_verdict(tmp_path):
    mask = disc(40, 50, 7)
    result = listed_result(mask.astype(np.uint8) * 255)
    normal = compared(image_with([], tmp_path, gt_known=True), result)
    assert normal.known and normal.lesion_hits == [False] and normal.dice == 0.0 and not normal.missed
    unknown = compared(image_with([], tmp_path, gt_known=False), result)
    assert not unknown.known and unknown.lesion_hits == [None] and unknown.dice is None


def test_truth_that_cannot_be_compared_is_listed_not_used(tmp_path):
    mask = disc(40, 50, 7)
    wrong_size = np.zeros((10, 10), bool)
    wrong_size[2:5, 2:5] = True
    image = image_with([("MALIGNANT", None, "mask 10x10 does not match image"), ("BENIGN", wrong_size, None)], tmp_path)
    comparison = compared(image, listed_result(mask.astype(np.uint8) * 255))
    assert not comparison.known and comparison.lesion_hits == [None] and len(comparison.not_compared) == 2
    assert "does not match" in comparison.not_compared[0].reason and "does not match" in comparison.not_compared[1].reason
    assert [t.abnormality.id for t in comparison.not_compared] == [1, 2]
    with pytest.raises(DataError, match=f"mask 10x10 does not match image {ROWS}x{COLS}"):
        load_truth(image, strict=True)  # training leaves such an image out whole


def test_each_listed_lesion_is_judged_by_its_own_pixels_and_unlisted_specks_by_none(tmp_path):
    a, b = disc(20, 20, 5), disc(60, 90, 5)
    truth = disc(60, 92, 3)
    speck = np.zeros_like(a)
    speck[100, 5] = True  # above the threshold but under the minimum area: not listed, so not a false positive
    image = image_with([("BENIGN", truth, None)], tmp_path)
    result = listed_result((a | b | speck).astype(np.uint8) * 255, min_mm2=0.5, order=[1, 0])
    assert len(result.lesions) == 2
    comparison = compared(image, result)
    assert comparison.lesion_truths == [[], [0]] and comparison.false_positives == 1
    labels = result.lesion_labels(0.5)
    assert np.array_equal(labels > 0, a | b) and not labels[100, 5]
    assert np.array_equal(labels == 2, b)  # the second lesion of the result, on its own pixels


# -- the listed lesion is the unit, also where the original grid is coarser than the working grid


def _coarse_geometry(working_shape=(40, 60)) -> Geometry:
    """The working grid twice as fine as the image (a 0.2 mm image read at 0.1 mm): every other working row and
    column is what the image grid keeps (nearest neighbour)."""
    h, w = working_shape
    return Geometry((h // 2, w // 2), (0, h // 2, 0, w // 2), False, 2.0, working_shape, 0.2, True)


def test_a_lesion_that_the_coarser_image_grid_splits_is_still_one_lesion(tmp_path):
    """Counting the components of the yellow mask (what bcir eval did) made the piece on the truth a hit and the
    other piece a false positive; picking the piece under the lesion's box (what the panel did) called the lesion a
    false positive and the truth missed. It is one listed lesion, on the truth: one hit, no false positive."""
    geometry = _coarse_geometry()
    working = np.zeros(geometry.working_shape, np.uint8)
    working[10:20, 8:20] = 230  # the bigger part, away from the truth
    working[15, 20:24] = 230  # a neck on an odd row: the image grid does not keep it
    working[10:20, 24:32] = 230  # the part on the truth
    result = listed_result(working, geometry)
    assert len(result.lesions) == 1
    count, _ = cv2.connectedComponents(result.lesion_mask(0.5).astype(np.uint8), connectivity=8)
    assert count - 1 == 2, "the neck is gone on the image grid: two pieces"
    truth = np.zeros(geometry.original_shape, bool)
    truth[5:10, 12:16] = True
    comparison = compared(image_with([("MALIGNANT", truth, None)], tmp_path, shape=geometry.original_shape), result)
    assert comparison.lesion_hits == [True] and comparison.truth_hit == [True] and comparison.false_positives == 0


def test_two_lesions_that_the_coarser_image_grid_joins_stay_two(tmp_path):
    """Two listed lesions one working pixel apart touch on the image grid: the one off the truth is still a false
    positive (counting components called the pair one hit; the panel's box rule called both hits)."""
    geometry = _coarse_geometry()
    working = np.zeros(geometry.working_shape, np.uint8)
    working[10:20, 10:21] = 230  # on the truth
    working[10:20, 22:32] = 230  # off it: the gap (column 21, odd) is not on the image grid
    result = listed_result(working, geometry)
    assert len(result.lesions) == 2
    count, _ = cv2.connectedComponents(result.lesion_mask(0.5).astype(np.uint8), connectivity=8)
    assert count - 1 == 1, "the two lesions touch on the image grid"
    truth = np.zeros(geometry.original_shape, bool)
    truth[5:10, 5:9] = True
    comparison = compared(image_with([("MALIGNANT", truth, None)], tmp_path, shape=geometry.original_shape), result)
    hit = [lesion.bbox[0] < 10 for lesion in result.lesions]  # which lesion is the one on the truth
    assert comparison.lesion_hits == hit and comparison.truth_hit == [True] and comparison.false_positives == 1


def test_lesion_labels_of_a_real_prediction_are_its_lesions(disc_model, tmp_path):
    """On a Predictor's own result every listed lesion has its own pixels (its box and area) and together they are
    the yellow mask."""
    from model.infer.predictor import Predictor
    from tests.conftest import make_dicom
    from tests.model.infer.test_inference import _disc_image

    pixels, _ = _disc_image((400, 300), discs=((120, 100, 16), (280, 160, 12), (300, 60, 14)))
    path = make_dicom(tmp_path / "discs.dcm", pixels, PixelSpacing=[0.2, 0.2], ImageLaterality="L", ViewPosition="CC")
    result = Predictor(disc_model, "cpu", bf16=False).predict(path, use_cache=False)
    threshold = disc_model.threshold
    labels = result.lesion_labels(threshold)
    assert len(result.lesions) >= 2, "the disc model lists the discs"
    assert np.array_equal(labels > 0, result.lesion_mask(threshold))
    for n, lesion in enumerate(result.lesions, 1):
        ys, xs = np.nonzero(labels == n)
        assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == lesion.bbox and ys.size == lesion.area_px
