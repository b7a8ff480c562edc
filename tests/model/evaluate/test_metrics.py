"""Evaluation metrics on hand-made cases whose answers are worked out by hand (Dice, IoU and lesion matching:
tests/model/infer/test_compare.py)."""

from itertools import product

import numpy as np
import pytest

from model.errors import DataError
from model.evaluate import metrics
from model.infer.compare import dice


def _rect(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_auc_of_a_known_case():
    # pairs (pos, neg): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, 0.1) yes, (0.8, 0.4) yes -> 3/4
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0


def test_auc_counts_ties_as_one_half():
    assert metrics.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    # (0.5, 0.2) 1, (0.5, 0.5) 1/2, (0.9, 0.2) 1, (0.9, 0.5) 1 -> 3.5 / 4
    assert metrics.roc_auc([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9]) == pytest.approx(0.875)


def test_auc_equals_the_pairwise_definition_on_random_tied_data():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    scores = rng.integers(0, 6, 60) / 5  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg)])
    assert metrics.roc_auc(labels, scores) == pytest.approx(pairwise)


def test_roc_curve_runs_from_corner_to_corner_and_its_area_is_the_auc():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 80)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: ties
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.isinf(thresholds[0]) and np.all(np.diff(thresholds[1:]) < 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(metrics.roc_auc(labels, scores))


def test_one_class_gives_no_auc():
    assert metrics.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert metrics.roc_auc([], []) is None
    assert metrics.bootstrap_auc_ci([0, 0, 0], [0.2, 0.5, 0.9]) == (None, None)
    with pytest.raises(DataError, match="needs both classes"):
        metrics.roc_curve([0, 0], [0.1, 0.2])
    sens, spec = metrics.sensitivity_specificity([1, 1], [0.2, 0.7], 0.5)
    assert sens == 0.5 and spec is None


def _separable(n, rng, shift=1.0):
    labels = np.r_[np.zeros(n // 2), np.ones(n - n // 2)].astype(int)
    return labels, rng.normal(labels * shift, 1.0)


def test_bootstrap_ci_contains_the_auc_and_narrows_with_more_cases():
    rng = np.random.default_rng(5)
    small = _separable(40, rng)
    large = _separable(800, rng)
    lo_s, hi_s = metrics.bootstrap_auc_ci(*small, n=1000, seed=1)
    lo_l, hi_l = metrics.bootstrap_auc_ci(*large, n=1000, seed=1)
    assert lo_s <= metrics.roc_auc(*small) <= hi_s
    assert lo_l <= metrics.roc_auc(*large) <= hi_l
    assert 0 <= lo_s < hi_s <= 1
    assert (hi_l - lo_l) < 0.5 * (hi_s - lo_s)
    # the same seed gives the same interval; a wider level gives a wider one
    assert metrics.bootstrap_auc_ci(*small, n=1000, seed=1) == (lo_s, hi_s)
    lo_99, hi_99 = metrics.bootstrap_auc_ci(*small, n=1000, seed=1, level=0.99)
    assert lo_99 <= lo_s and hi_99 >= hi_s and (hi_99 - lo_99) > (hi_s - lo_s)


def test_bootstrap_skips_one_class_resamples():
    # 1 positive in 30: most resamples lose it (P(kept) ~ 63%); the interval is still computed from the others
    labels = np.r_[np.ones(1), np.zeros(29)]
    scores = np.linspace(0, 1, 30)[::-1]  # the positive scores highest: every usable resample has AUC 1
    assert metrics.bootstrap_auc_ci(labels, scores, n=300, seed=0) == (1.0, 1.0)


def test_sensitivity_and_specificity_at_a_threshold():
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.6, 0.4, 0.8]
    assert metrics.sensitivity_specificity(labels, scores, 0.5) == (0.5, 0.5)
    assert metrics.sensitivity_specificity(labels, scores, 0.4) == (1.0, 0.5)  # >= threshold is positive
    assert metrics.sensitivity_specificity(labels, scores, 0.95) == (0.0, 1.0)


def test_pixel_accuracy_is_high_for_a_model_that_finds_nothing():
    truth = _rect((100, 100), 40, 50, 40, 50)  # a 1% lesion
    nothing = np.zeros_like(truth)
    assert metrics.all_background_accuracy(truth) == pytest.approx(0.99)
    assert metrics.pixel_accuracy(nothing, truth) == pytest.approx(0.99)
    assert dice(nothing, truth) == 0.0
    wrong_place = _rect((100, 100), 70, 80, 70, 80)
    assert metrics.pixel_accuracy(wrong_place, truth) == pytest.approx(0.98)  # 98% "accurate", Dice 0
    assert dice(wrong_place, truth) == 0.0
    assert metrics.pixel_accuracy(truth, truth) == 1.0
