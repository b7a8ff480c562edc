"""The training loss: the malignancy head learns benign against malignant on lesion tiles only, with both classes
weighing the same; the learning rate's schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model.errors import ConfigError
from model.train.config import TrainConfig
from model.train.loss import class_weights, compute_loss, epoch_lr


def _batch(n: int = 4, size: int = 16):
    torch.manual_seed(0)
    mask_logits = torch.randn(n, 1, size, size)
    masks = (torch.rand(n, 1, size, size) > 0.7).float()
    return mask_logits, masks


def _mask_terms(config, mask_logits, masks):
    return compute_loss(TrainConfig(**{**config.to_json(), "malignancy_weight": 0.0}), mask_logits,
                        torch.zeros(len(masks)), masks, torch.zeros(len(masks)))


def test_a_lesion_free_tile_does_not_teach_the_head_anything():
    config = TrainConfig(tile=64, balance_malignancy=False)
    mask_logits, masks = _batch()
    head = torch.tensor([3.0, -2.0, 5.0, 0.5], requires_grad=True)
    malignant = torch.tensor([1.0, 0.0, 0.0, 0.0])
    lesion = torch.tensor([1.0, 1.0, 0.0, 0.0])  # the last two are normal tissue, "benign" only by default
    loss = compute_loss(config, mask_logits, head, masks, malignant, lesion)
    loss.backward()
    assert head.grad[2] == 0 and head.grad[3] == 0 and head.grad[0] != 0 and head.grad[1] != 0
    expected = F.binary_cross_entropy_with_logits(head[:2].detach(), malignant[:2], reduction="sum") / 4
    assert float(loss.detach() - _mask_terms(config, mask_logits, masks)) == pytest.approx(0.5 * float(expected), rel=1e-5)
    # a batch without a lesion leaves the head's gradient at zero but the loss defined
    head.grad = None
    loss = compute_loss(config, mask_logits, head, masks, malignant, torch.zeros(4))
    loss.backward()
    assert torch.isfinite(loss) and torch.count_nonzero(head.grad) == 0


def test_benign_and_malignant_lesions_weigh_the_same_however_few_the_malignant_are():
    assert class_weights([True, False, False, False]) == (pytest.approx(4 / 6), pytest.approx(2.0))
    assert class_weights([False, False]) == (1.0, 1.0) and class_weights([]) == (1.0, 1.0)
    weights = class_weights([True, False, False, False])
    config = TrainConfig(tile=64)
    mask_logits, masks = _batch()
    head = torch.zeros(4, requires_grad=True)  # p = 0.5 for each: every tile's BCE is log 2
    malignant = torch.tensor([1.0, 0.0, 0.0, 0.0])
    loss = compute_loss(config, mask_logits, head, masks, malignant, torch.ones(4), weights)
    head_term = float(loss.detach() - _mask_terms(config, mask_logits, masks)) / config.malignancy_weight
    # one malignant at weight 2 and three benign at 2/3: each class contributes log 2 x 2, over a batch of 4
    assert head_term == pytest.approx((2.0 + 3 * 4 / 6) * math.log(2) / 4, rel=1e-5)
    loss.backward()
    assert abs(float(head.grad[0])) == pytest.approx(3 * abs(float(head.grad[1])), rel=1e-5)
    unbalanced = compute_loss(TrainConfig(tile=64, balance_malignancy=False), mask_logits, head, masks, malignant,
                              torch.ones(4), weights)
    assert float(unbalanced.detach() - _mask_terms(config, mask_logits, masks)) / 0.5 == pytest.approx(math.log(2), rel=1e-5)


def test_the_cosine_schedule_decays_from_the_rate_given_and_a_constant_one_stays():
    cosine = TrainConfig(tile=64, lr=1e-3, max_epochs=4, lr_schedule="cosine")
    rates = [epoch_lr(cosine, e) for e in range(1, 5)]
    assert rates[0] == pytest.approx(1e-3) and all(a > b > 0 for a, b in zip(rates, rates[1:]))
    assert rates[2] == pytest.approx(0.5e-3)
    assert {epoch_lr(TrainConfig(tile=64, lr=2e-4), e) for e in (1, 7, 200)} == {2e-4}
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(tile=64, lr_schedule="step")
    with pytest.raises(ConfigError, match="balance_malignancy"):
        TrainConfig(tile=64, balance_malignancy="yes")
