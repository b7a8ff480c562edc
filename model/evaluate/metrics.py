"""Evaluation metrics: overlap, ROC/AUC with a bootstrap interval, lesion matching, pixel accuracy.

numpy only (plus ``scipy.ndimage.label`` for connected components); no torch,
no sklearn. Every function says what it returns when a quantity is undefined
(one class only, nothing to average): ``None``, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"shapes differ: prediction {pred.shape}, truth {truth.shape}")
    return pred, truth


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|P∩T| / (|P| + |T|); 1.0 when both are empty (nothing to find, nothing found)."""
    pred, truth = _pair(pred, truth)
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """|P∩T| / |P∪T| (Jaccard); 1.0 when both are empty."""
    pred, truth = _pair(pred, truth)
    union = int(np.logical_or(pred, truth).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(pred, truth).sum()) / union


def iou_from_dice(d: float) -> float:
    """IoU of the same pair of sets: J = D / (2 - D)."""
    return d / (2.0 - d)


def pixel_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels labelled correctly. Read it beside :func:`all_background_accuracy`."""
    pred, truth = _pair(pred, truth)
    if pred.size == 0:
        raise ValueError("no pixels")
    return float(np.count_nonzero(pred == truth)) / pred.size


def all_background_accuracy(truth: np.ndarray) -> float:
    """Pixel accuracy of a 'model' that predicts background everywhere: 1 - lesion fraction."""
    truth = np.asarray(truth, dtype=bool)
    if truth.size == 0:
        raise ValueError("no pixels")
    return 1.0 - float(np.count_nonzero(truth)) / truth.size


# ---------------------------------------------------------------------------
# ROC


def _labels_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    return labels, scores


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64).ravel()
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank where each distinct value starts
    return (first + (counts + 1) / 2.0)[inverse]


def roc_auc(labels, scores) -> float | None:
    """Area under the ROC curve by ranks (Mann-Whitney U); a tie counts one half.

    None when only one class is present: the AUC is undefined then.
    """
    labels, scores = _labels_scores(labels, scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(scores)
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate, thresholds), one point per distinct score, from (0, 0) to (1, 1).

    A case is called positive when its score is >= the threshold; the first
    threshold is +inf (nothing called positive). Tied scores move the curve
    diagonally, which is what makes the trapezoid area equal :func:`roc_auc`.
    Raises ValueError when only one class is present.
    """
    labels, scores = _labels_scores(labels, scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("the ROC curve needs both classes")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last_of_group = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tps = np.cumsum(y)[last_of_group]
    fps = (last_of_group + 1) - tps
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, s[last_of_group]]
    return fpr, tpr, thresholds


def bootstrap_auc_ci(labels, scores, n: int = 2000, seed: int = 0, level: float = 0.95
                     ) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the AUC, resampling cases with replacement.

    Resamples that hold one class only are skipped (their AUC is undefined).
    (None, None) when the data hold one class only, or when fewer than 10
    resamples were usable.
    """
    labels, scores = _labels_scores(labels, scores)
    if roc_auc(labels, scores) is None:
        return None, None
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    rng = np.random.default_rng(seed)
    size = labels.size
    aucs = []
    for _ in range(n):
        pick = rng.integers(0, size, size)
        value = roc_auc(labels[pick], scores[pick])
        if value is not None:
            aucs.append(value)
    if len(aucs) < 10:
        return None, None
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(aucs), [alpha, 1.0 - alpha])
    return float(low), float(high)


def sensitivity_specificity(labels, scores, threshold: float) -> tuple[float | None, float | None]:
    """(sensitivity, specificity) calling a case positive when score >= threshold; None for a class that is absent."""
    labels, scores = _labels_scores(labels, scores)
    called = scores >= threshold
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    sens = float(np.count_nonzero(called & labels)) / n_pos if n_pos else None
    spec = float(np.count_nonzero(~called & ~labels)) / n_neg if n_neg else None
    return sens, spec


# ---------------------------------------------------------------------------
# lesions


@dataclass
class LesionMatch:
    hits: list[bool]  # per truth lesion: overlapped by a predicted component
    false_positives: int  # predicted components that touch no truth lesion
    dice: list[float]  # per truth lesion: Dice with the union of the components that overlap it (0 when missed)
    components: int = 0  # predicted components considered
    component_sizes: list[int] = field(default_factory=list)

    def __iter__(self):  # unpacks as (hits, false_positives, dice)
        return iter((self.hits, self.false_positives, self.dice))


_EIGHT = np.ones((3, 3), dtype=bool)


def connected_components(mask: np.ndarray, min_size: int = 0) -> tuple[np.ndarray, int]:
    """(labels, count): 8-connected components of ``mask`` (as the inference finds lesions), smaller than ``min_size`` dropped."""
    from scipy.ndimage import label

    labels, count = label(np.asarray(mask, dtype=bool), structure=_EIGHT)
    if min_size > 1 and count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep = sizes >= min_size
        keep[0] = False
        remap = np.zeros(count + 1, dtype=labels.dtype)
        remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=labels.dtype)
        labels, count = remap[labels], int(keep.sum())
    return labels, int(count)


def match_lesions(truth_masks: Sequence[np.ndarray], predicted: np.ndarray, *, min_component_px: int = 0) -> LesionMatch:
    """Match predicted connected components to ground-truth lesions.

    * A truth lesion is detected when at least one predicted component overlaps it.
    * Its Dice is computed between the lesion and the union of the components
      overlapping it, so the score lives in the lesion's neighbourhood and is
      not diluted by far-away predictions; a missed lesion scores 0. (IoU of
      the same pair: ``iou_from_dice``.)
    * A predicted component that overlaps no truth lesion is a false positive.

    Components smaller than ``min_component_px`` are ignored (the inference
    drops such specks from its lesion list). Returns a :class:`LesionMatch`,
    which also unpacks as ``(hits, false_positives, dice)``.
    """
    predicted = np.asarray(predicted, dtype=bool)
    labels, count = connected_components(predicted, min_component_px)
    touched = np.zeros(count + 1, dtype=bool)
    hits, dices = [], []
    for truth in truth_masks:
        truth = np.asarray(truth, dtype=bool)
        if truth.shape != predicted.shape:
            raise ValueError(f"truth mask {truth.shape} does not match the prediction {predicted.shape}")
        ids = np.unique(labels[truth])
        ids = ids[ids > 0]
        touched[ids] = True
        hits.append(ids.size > 0)
        if ids.size == 0:
            dices.append(0.0)
            continue
        # the lesion's neighbourhood: the bounding box of the lesion and its overlapping components
        region = truth | np.isin(labels, ids)
        ys, xs = np.nonzero(region)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        dices.append(dice(np.isin(labels[box], ids), truth[box]))
    false_positives = int(count - touched[1:].sum())
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:].tolist() if count else []
    return LesionMatch(hits=hits, false_positives=false_positives, dice=dices, components=count, component_sizes=sizes)


__all__ = [
    "LesionMatch", "all_background_accuracy", "average_ranks", "bootstrap_auc_ci", "connected_components", "dice",
    "iou", "iou_from_dice", "match_lesions", "pixel_accuracy", "roc_auc", "roc_curve", "sensitivity_specificity",
]
