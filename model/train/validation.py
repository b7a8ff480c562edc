"""The validation pass at each epoch's end: loss, Dice over the ROI tiles, and the malignancy AUC when it exists."""

from __future__ import annotations

import numpy as np
import torch

from model.train.config import TrainConfig
from model.train.loss import compute_loss


def validate(net, loader, config: TrainConfig, device, weights: tuple[float, float] = (1.0, 1.0)) -> dict:
    net.eval()
    losses, inter, total = [], 0.0, 0.0
    scores, labels = [], []
    with torch.no_grad():
        for images, masks, malignant, lesion in loader:
            images, masks, malignant = images.to(device), masks.to(device), malignant.to(device)
            mask_logits, malignancy_logits = net(images)
            losses.append(float(compute_loss(config, mask_logits, malignancy_logits, masks, malignant, lesion.to(device),
                                             weights)) * len(images))
            pred = (mask_logits > 0).float()
            inter += float((pred * masks).sum())
            total += float(pred.sum() + masks.sum())
            keep = lesion.bool()
            scores += torch.sigmoid(malignancy_logits.float()).cpu()[keep].tolist()
            labels += malignant.cpu()[keep].tolist()
    net.train()
    n = max(1, len(loader.dataset))
    metrics = {"val_loss": sum(losses) / n, "val_dice": (2 * inter / total) if total else 1.0}
    if len(set(labels)) == 2:
        from model.evaluate.metrics import roc_auc

        metrics["val_auc"] = float(roc_auc(np.array(labels), np.array(scores)))
    return metrics
