"""The training loss: the paper's BCE on the mask, our soft Dice beside it, BCE on the malignancy head.

The malignancy BCE counts lesion tiles only: a tile of normal tissue has no pathology, and labelling it benign taught
the head "lesion or not" rather than "benign or malignant". With class weights (TrainConfig.balance_malignancy)
benign and malignant lesions weigh the same in total, whatever their mix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from model.train.config import TrainConfig


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    total = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def class_weights(malignant_labels: list[bool]) -> tuple[float, float]:
    """(benign, malignant) weights under which each class's lesions weigh half the total; (1, 1) with one class."""
    n, m = len(malignant_labels), sum(bool(x) for x in malignant_labels)
    if n == 0 or m == 0 or m == n:
        return 1.0, 1.0
    return n / (2 * (n - m)), n / (2 * m)


def compute_loss(config: TrainConfig, mask_logits, malignancy_logits, masks, malignant, lesion=None,
                 weights: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """The loss of one batch. ``lesion`` (N,): 1 for a tile centred on a lesion (None: all are); ``weights``: the
    (benign, malignant) weights of :func:`class_weights`."""
    loss = F.binary_cross_entropy_with_logits(mask_logits.float(), masks)
    if config.dice_weight:
        loss = loss + config.dice_weight * soft_dice_loss(mask_logits.float(), masks)
    if config.malignancy_weight:
        keep = torch.ones_like(malignant, dtype=torch.bool) if lesion is None else lesion.bool()
        if bool(keep.any()):
            target = malignant[keep].float()
            weight = torch.where(target > 0.5, weights[1], weights[0]) if config.balance_malignancy else None
            per_tile = F.binary_cross_entropy_with_logits(malignancy_logits[keep].float(), target, weight=weight,
                                                          reduction="sum")
            loss = loss + config.malignancy_weight * per_tile / malignant.numel()  # a batch mean, as the mask terms
        else:
            loss = loss + 0.0 * malignancy_logits.float().sum()  # no lesion here: the head still joins the graph
    return loss


def epoch_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (1-based): constant, or cosine decay from ``lr`` over ``max_epochs``."""
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / config.max_epochs))
    return config.lr
