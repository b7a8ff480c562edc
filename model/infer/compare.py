"""The one comparison of a prediction with the ground truth: hit, miss and false positive per lesion, Dice and IoU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: at run time this module needs numpy alone
    from model.data.masks import ImageTruth, TruthLesion
    from model.data.study_index import Abnormality


def mask_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays; ValueError when their shapes differ (a caller's bug: load_truth reads every truth
    mask onto the prediction's grid, and refuses one of another size with a DataError)."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"shapes differ: prediction {pred.shape}, truth {truth.shape}")
    return pred, truth


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|P∩T| / (|P| + |T|); 1.0 when both are empty (nothing to find, nothing found)."""
    pred, truth = mask_pair(pred, truth)
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """|P∩T| / |P∪T| (Jaccard); 1.0 when both are empty."""
    pred, truth = mask_pair(pred, truth)
    union = int(np.logical_or(pred, truth).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(pred, truth).sum()) / union


def iou_from_dice(d: float) -> float:
    """IoU of the same pair of sets: J = D / (2 - D)."""
    return d / (2.0 - d)


@dataclass
class LesionMatch:
    hits: list[bool]  # per truth lesion: overlapped by a predicted lesion
    false_positives: int  # predicted lesions that touch no truth lesion
    dice: list[float]  # per truth lesion: Dice with the union of the predicted lesions that overlap it (0 when missed)
    components: int = 0  # predicted lesions considered
    component_sizes: list[int] = field(default_factory=list)
    truths_of: list[list[int]] = field(default_factory=list)  # per predicted lesion: the truth lesions it overlaps

    def __iter__(self):  # unpacks as (hits, false_positives, dice)
        return iter((self.hits, self.false_positives, self.dice))


def match_labels(truth_masks: Sequence[np.ndarray], labels: np.ndarray, count: int) -> LesionMatch:
    """Match predicted lesions (``labels``: ``n`` on the pixels of lesion n, 1..count, 0 elsewhere) to truth lesions.

    * A truth lesion is detected when at least one predicted lesion overlaps it.
    * Its Dice is computed between the lesion and the union of the predicted
      lesions overlapping it, so the score lives in the lesion's neighbourhood
      and is not diluted by far-away predictions; a missed lesion scores 0. (IoU
      of the same pair: ``iou_from_dice``.)
    * A predicted lesion that overlaps no truth lesion is a false positive (one
      without pixels too: it overlaps nothing).
    """
    touched: list[set[int]] = [set() for _ in range(count + 1)]  # per predicted lesion: the truth lesions it overlaps
    hits, dices = [], []
    for t, truth in enumerate(truth_masks):
        truth = np.asarray(truth, dtype=bool)
        if truth.shape != labels.shape:  # a caller's bug, as in mask_pair
            raise ValueError(f"truth mask {truth.shape} does not match the prediction {labels.shape}")
        ids = np.unique(labels[truth])
        ids = ids[ids > 0]
        for n in ids:
            touched[int(n)].add(t)
        hits.append(ids.size > 0)
        if ids.size == 0:
            dices.append(0.0)
            continue
        # the lesion's neighbourhood: the bounding box of the lesion and its overlapping predicted lesions
        region = truth | np.isin(labels, ids)
        ys, xs = np.nonzero(region)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        dices.append(dice(np.isin(labels[box], ids), truth[box]))
    truths_of = [sorted(found) for found in touched[1:]]
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1 : count + 1].tolist() if count else []
    return LesionMatch(hits=hits, false_positives=sum(1 for found in truths_of if not found), dice=dices,
                       components=count, component_sizes=sizes, truths_of=truths_of)


@dataclass
class TruthComparison:
    """The prediction of one image against its ground truth."""

    known: bool  # False when there is nothing to compare with (no description, or no usable truth mask)
    lesion_hits: list[bool | None]  # per predicted lesion (result order): overlaps a truth lesion; None when unknown
    truth: list[Abnormality] = field(default_factory=list)  # the truth lesions compared (masks usable)
    truth_hit: list[bool] = field(default_factory=list)  # per compared truth lesion
    truth_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0, y0, x1, y1 (exclusive ends)
    dice: float | None = None  # the predicted lesions against the union of the compared truth masks
    iou: float | None = None
    not_compared: list[TruthLesion] = field(default_factory=list)  # truth lesions that could not be compared, with why
    lesion_truths: list[list[int]] = field(default_factory=list)  # per predicted lesion: indices into ``truth`` it hit
    truth_areas_px: list[int] = field(default_factory=list)  # per compared truth lesion
    truth_dice: list[float] = field(default_factory=list)  # per compared truth lesion: LesionMatch.dice

    def found_by(self, t: int) -> list[int]:
        """The predicted lesions (0-based, result order) that hit truth lesion ``t``."""
        return [n for n, truths in enumerate(self.lesion_truths) if t in truths]

    @property
    def missed(self) -> list[tuple[Abnormality, tuple[int, int, int, int]]]:
        return [(a, box) for a, hit, box in zip(self.truth, self.truth_hit, self.truth_boxes) if not hit]

    @property
    def detected(self) -> int:
        return sum(self.truth_hit)

    @property
    def false_positives(self) -> int:
        return sum(1 for h in self.lesion_hits if h is False)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a mask's pixels, ends exclusive; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def compare_with_truth(truth: ImageTruth, lesion_labels: np.ndarray, lesion_count: int) -> TruthComparison:
    """The listed lesions of one image against its ground truth: the rule the findings panel and ``bcir eval`` share.

    ``lesion_labels`` is ``ImageResult.lesion_labels`` (``n`` on the pixels of the n-th listed lesion, on the grid
    ``truth`` was loaded on) and ``lesion_count`` the number of listed lesions. The lesion the reader sees in a row
    is the unit: it is a hit when its pixels overlap a truth lesion, else a false positive; a truth lesion is found
    when any listed lesion overlaps it, else missed. Dice and IoU are of all listed lesions against the union of
    the usable truth masks.
    """
    if not truth.known:
        return TruthComparison(known=False, lesion_hits=[None] * lesion_count)
    usable, not_compared = truth.usable, truth.unusable
    if not usable and not_compared:  # truth exists but none of it can be compared
        return TruthComparison(known=False, lesion_hits=[None] * lesion_count, not_compared=not_compared)
    masks = [t.mask for t in usable]
    boxes = [mask_bbox(m) for m in masks]
    predicted = lesion_labels > 0
    union = np.zeros(lesion_labels.shape, bool)
    for mask in masks:
        union |= mask
    # Everything below only looks where the prediction or the truth is: the same numbers, on a crop.
    box = mask_bbox(predicted | union)
    if box is not None:
        x0, y0, x1, y1 = box
        crop = (slice(y0, y1), slice(x0, x1))
        lesion_labels, predicted, union, masks = lesion_labels[crop], predicted[crop], union[crop], [m[crop] for m in masks]
    match = match_labels(masks, lesion_labels, lesion_count)
    return TruthComparison(
        known=True, lesion_hits=[bool(found) for found in match.truths_of], truth=[t.abnormality for t in usable],
        truth_hit=list(match.hits), truth_boxes=boxes, dice=dice(predicted, union), iou=iou(predicted, union),
        not_compared=not_compared, lesion_truths=match.truths_of,
        truth_areas_px=[int(np.count_nonzero(m)) for m in masks], truth_dice=list(match.dice),
    )


__all__ = ["LesionMatch", "TruthComparison", "compare_with_truth", "dice", "iou", "iou_from_dice", "mask_bbox", "mask_pair",
           "match_labels"]
