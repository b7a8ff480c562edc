"""The training loss: the paper's BCE on the mask, our soft Dice beside it, BCE on the malignancy head."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.train.config import TrainConfig


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    total = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def compute_loss(config: TrainConfig, mask_logits, malignancy_logits, masks, malignant) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(mask_logits.float(), masks)
    if config.dice_weight:
        loss = loss + config.dice_weight * soft_dice_loss(mask_logits.float(), masks)
    if config.malignancy_weight:
        loss = loss + config.malignancy_weight * F.binary_cross_entropy_with_logits(malignancy_logits.float(), malignant)
    return loss
