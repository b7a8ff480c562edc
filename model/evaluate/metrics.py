"""Evaluation metrics: ROC/AUC with a bootstrap interval, sensitivity and specificity, pixel accuracy, calibration
(reliability bins and the expected calibration error) and FROC.

numpy only; no torch, no sklearn. Every function says what it returns when a
quantity is undefined (one class only, nothing to average): ``None``, never a
made-up number. Dice, IoU and lesion matching are the truth comparison's
(:mod:`model.infer.compare`), which the findings panel shares.
"""

from __future__ import annotations

import numpy as np

from model.errors import DataError
from model.infer.compare import mask_pair

# The ValueErrors below guard arguments the callers make themselves: labels and scores in step, a level in (0, 1),
# masks with pixels, scores that are numbers (the network's sigmoid, of weights load_model checks are finite). One
# is a caller's bug, never a reader's input. Data of one class only is the data's own limit: DataError.


def pixel_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels labelled correctly. Read it beside :func:`all_background_accuracy`."""
    pred, truth = mask_pair(pred, truth)
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
    Raises DataError when only one class is present.
    """
    labels, scores = _labels_scores(labels, scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("the ROC curve needs both classes")
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
# calibration

ECE_BINS = 10


def reliability_bins(labels, scores, bins: int = ECE_BINS) -> list[dict]:
    """The reliability diagram's bins: ``bins`` equal-width bins of p over [0, 1], bin k holding
    k/bins <= p < (k+1)/bins (the last one p = 1 too). Per bin: its edges, the count, the mean p and the observed
    share of positives (both None for an empty bin)."""
    labels, scores = _labels_scores(labels, scores)
    if bins < 1:
        raise ValueError("bins must be at least 1")
    if scores.size and (scores.min() < 0 or scores.max() > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    which = np.minimum((scores * bins).astype(int), bins - 1)
    out = []
    for k in range(bins):
        inside = which == k
        n = int(inside.sum())
        out.append({"low": k / bins, "high": (k + 1) / bins, "count": n,
                    "mean_p": float(scores[inside].mean()) if n else None,
                    "positive_fraction": float(labels[inside].mean()) if n else None})
    return out


def expected_calibration_error(labels, scores, bins: int = ECE_BINS) -> float | None:
    """ECE of p(positive): sum over the equal-width bins of :func:`reliability_bins` of
    (count / N) * |positive fraction - mean p|. None when there is nothing to score."""
    table = reliability_bins(labels, scores, bins)
    total = sum(b["count"] for b in table)
    if total == 0:
        return None
    return float(sum(b["count"] / total * abs(b["positive_fraction"] - b["mean_p"]) for b in table if b["count"]))


# ---------------------------------------------------------------------------
# FROC

FROC_FP_RATES = (0.25, 0.5, 1.0, 2.0, 4.0)


def froc(candidates, lesions: int, images: int, fp_rates=FROC_FP_RATES) -> dict:
    """Free-response ROC of listed candidates: lesion sensitivity against false positives per image.

    ``candidates``: (score, keys) per listed candidate of every image, ``keys`` the truth lesions it hits (any
    hashable, unique over all images; empty: a false positive). ``lesions``: the truth lesions, ``images``: the
    images. At a score threshold t the candidates with score >= t are kept; a lesion is found when a kept
    candidate hits it. The curve has one point per distinct score, from (0, 0) (nothing kept). The sensitivity at
    a rate r is the highest over the points with at most r false positives per image. Candidates below the
    lowest listed score were never listed, so a rate beyond the curve's last point is not reached: None, never
    extrapolated. Sensitivities are None (and the curve empty) when there is no lesion.
    """
    if images < 1:
        raise ValueError("FROC needs at least one image")
    rows = [(float(score), frozenset(keys)) for score, keys in candidates]
    if any(np.isnan(score) for score, _ in rows):
        raise ValueError("scores contain NaN")
    known = set().union(*(keys for _, keys in rows)) if rows else set()
    if len(known) > lesions:
        raise ValueError(f"candidates hit {len(known)} lesions but only {lesions} were given")
    points = [(0.0, 0.0)] if lesions else []
    thresholds: list[float] = []
    found: set = set()
    fps = 0
    rows.sort(key=lambda r: -r[0])
    i = 0
    while i < len(rows):
        score = rows[i][0]
        while i < len(rows) and rows[i][0] == score:  # tied scores are kept together
            keys = rows[i][1]
            if keys:
                found |= keys
            else:
                fps += 1
            i += 1
        if lesions:
            thresholds.append(score)
            points.append((fps / images, len(found) / lesions))
    reach = fps / images
    sensitivity = [None if not lesions or rate > reach else max(s for f, s in points if f <= rate)
                   for rate in fp_rates]
    return {"fp_rates": [float(r) for r in fp_rates], "sensitivity": sensitivity,
            "max_fp_per_image": reach, "max_sensitivity": len(found) / lesions if lesions else None,
            "points": [[f, s] for f, s in points], "thresholds": thresholds,  # the score of each point after the first
            "lesions": int(lesions), "images": int(images)}


__all__ = [
    "ECE_BINS", "FROC_FP_RATES", "all_background_accuracy", "average_ranks", "bootstrap_auc_ci",
    "expected_calibration_error", "froc", "pixel_accuracy", "reliability_bins", "roc_auc", "roc_curve",
    "sensitivity_specificity",
]
