"""The settings of a training run (TrainConfig, checked when built) and what a run reports; imports no torch.

A front end (``bcir train``, ``bcir retrain``, the Retrain window) builds a
:class:`TrainConfig` from what the reader gave before it does any work, so an
option out of range fails at once with one line (:class:`model.errors.ConfigError`)
rather than in the training child after every image was preprocessed. Nothing
here imports torch: building and checking a config is instant.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from model.errors import ConfigError
from model.nn.limits import TILE_PX, WORKING_SPACING_MM, tile_problem

TRAINING_VIEWS = ("CC", "MLO")  # the views the index tells apart for training (the paper: CC only)
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$", re.IGNORECASE)  # what model.nn.runtime.resolve_device takes
_SEED_MAX = 2**32 - 1  # numpy's seeds
LR_SCHEDULES = ("constant", "cosine")  # model.train.loss.epoch_lr


def _shown(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"


@dataclass(frozen=True)
class Bound:
    """The values one numeric setting may take."""

    kind: type  # int or float
    low: float
    high: float | None = None  # None: no upper limit
    open_low: bool = False  # ``low`` itself is refused
    open_high: bool = False  # ``high`` itself is refused
    optional: bool = False  # None is allowed (no cap, no budget)

    def text(self) -> str:
        low = _shown(self.low)
        lower = f"above {low}" if self.open_low else f"at least {low}"
        if self.high is None:
            return lower
        high = _shown(self.high)
        if not (self.open_low or self.open_high):
            return f"{low} to {high}"
        return f"{lower} and {'below' if self.open_high else 'at most'} {high}"

    def check(self, option: str, value):
        """``value`` as ``kind`` when it lies within; else ConfigError saying which setting and why."""
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(option, f"{value!r} is not a {'whole number' if self.kind is int else 'number'}")
        too_low = value <= self.low if self.open_low else value < self.low
        too_high = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        if (isinstance(value, float) and not math.isfinite(value)) or too_low or too_high:
            raise ConfigError(option, f"{value!r} is out of range ({self.text()})")
        if self.kind is int:
            if float(value) != int(value):
                raise ConfigError(option, f"{value!r} is not a whole number")
            return int(value)
        return float(value)


# What each number may be. The ranges hold the paper's settings (0.1 mm, 1024-px tiles, batch 64 in micro-batches of
# 8, Adam 2e-4 with betas 0.5/0.999, x40, 200 epochs, 70/30), the demo model's (Makefile demo-weights: 0.4 mm,
# 256-px tiles, batch 16, lr 1e-3, x10, 6 epochs) and the tests' (0.2 mm, 64-px tiles, batch 4-8 in micro-batches of
# 2-4, lr 2e-3, x2-x40). Spacing and tile are a model card's limits (model.nn.weights): what this trains, loads.
BOUNDS: dict[str, Bound] = {
    "working_spacing_mm": Bound(float, *WORKING_SPACING_MM),
    "tile": Bound(int, *TILE_PX),  # and a multiple of model.nn.limits.tile_multiple()
    "augment_factor": Bound(int, 1, 1000),
    "normal_ratio": Bound(float, 0.0, 100.0),
    "hard_negatives_per_image": Bound(int, 0, 100),
    "val_fraction": Bound(float, 0.0, 1.0, open_low=True, open_high=True),  # both parts get patients
    "split_seed": Bound(int, 0, _SEED_MAX),
    "lr": Bound(float, 0.0, 1.0, open_low=True),
    "beta1": Bound(float, 0.0, 1.0, open_high=True),  # Adam's betas
    "beta2": Bound(float, 0.0, 1.0, open_high=True),
    # a micro-batch larger than the batch, or one that does not divide it, is fine for the loop: the optimiser
    # steps after ceil(batch_size / micro_batch) micro-batches (TrainConfig.accumulation), at least one
    "batch_size": Bound(int, 1, 4096),
    "micro_batch": Bound(int, 1, 4096),
    "max_epochs": Bound(int, 1, 100_000),
    "early_stop_delta": Bound(float, 0.0),
    "dice_weight": Bound(float, 0.0, 100.0),
    "malignancy_weight": Bound(float, 0.0, 100.0),
    "dropout": Bound(float, 0.0, 0.9),  # a model card's network dropout
    "seed": Bound(int, 0, _SEED_MAX),
    "max_batches_per_epoch": Bound(int, 1, optional=True),
    "max_minutes": Bound(float, 0.0, optional=True),  # 0: no budget, as None
}


@dataclass
class TrainConfig:
    """Every setting of a training run; saved with the run (``config.json``) and in the model card.

    Checked when built: a setting of the wrong kind or out of range raises :class:`ConfigError` naming it."""

    # data
    views: tuple[str, ...] = ("CC",)  # the paper uses CC only; add "MLO" to train on both
    working_spacing_mm: float = 0.1
    tile: int = 1024  # ROI size at the working spacing (the paper: 1024)
    augment_factor: int = 40  # the paper's x40 expansion, virtual
    normal_ratio: float = 0.25  # lesion-free tiles per lesion tile (ours, beyond the paper)
    hard_negatives_per_image: int = 0  # tiles at the starting model's false positives (model.train.hard_negatives)
    val_fraction: float = 0.3  # the paper's 70/30, by patient
    split_seed: int = 0
    # optimisation (the paper)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64  # reached with gradient accumulation over micro-batches
    micro_batch: int = 8
    max_epochs: int = 200
    early_stop_delta: float = 1e-3  # stop when the epoch loss changes by less than this
    # loss
    dice_weight: float = 1.0  # ours: soft Dice added to the paper's BCE; 0 switches it off
    malignancy_weight: float = 0.5  # BCE on the malignancy head, over lesion tiles only (model.train.loss)
    balance_malignancy: bool = True  # benign and malignant lesions weigh the same in the head's loss
    lr_schedule: str = "constant"  # or "cosine": decay from lr to 0 over max_epochs (the paper's: constant)
    # network
    dropout: float = 0.1
    # run
    seed: int = 0
    device: str = "auto"
    bf16: bool = False  # bf16 autocast for training on CPUs with native bf16
    init_weights: str | None = None  # fine-tune from this model (its card becomes the parent)
    max_batches_per_epoch: int | None = None  # cap for quick runs and tests
    max_minutes: float | None = None  # stop after the last epoch that fits this wall-clock budget

    def __post_init__(self) -> None:
        for name, bound in BOUNDS.items():
            setattr(self, name, bound.check(name, getattr(self, name)))
        problem = tile_problem(self.tile)
        if problem:
            raise ConfigError("tile", problem)
        self.views = self._checked_views(self.views)
        if not isinstance(self.device, str) or not _DEVICE_RE.match(self.device):
            raise ConfigError("device", f"{self.device!r} is unknown (auto, cpu, cuda or cuda:N)")
        for name in ("bf16", "balance_malignancy"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"{getattr(self, name)!r} is not true or false")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError("lr_schedule", f"{self.lr_schedule!r} is unknown ({' or '.join(LR_SCHEDULES)})")
        if isinstance(self.init_weights, os.PathLike):
            self.init_weights = os.fspath(self.init_weights)
        if self.init_weights is not None and (not isinstance(self.init_weights, str) or not self.init_weights):
            raise ConfigError("init_weights", f"{self.init_weights!r} is not a model file")

    @staticmethod
    def _checked_views(views) -> tuple[str, ...]:
        known = ", ".join(TRAINING_VIEWS)
        if isinstance(views, str) or not isinstance(views, (list, tuple)):
            raise ConfigError("views", f"{views!r} is not a list of views ({known})")
        if not views:
            raise ConfigError("views", f"is empty (give one or more of {known})")
        for view in views:
            if not isinstance(view, str) or view.upper() not in TRAINING_VIEWS:
                raise ConfigError("views", f"has {view!r}, not a view training knows ({known})")
        return tuple(views)

    def check_start(self) -> None:
        """What only a run's start can check (a config is also built without its start point, which a job sets
        later): ConfigError when hard negatives are asked for with no model to fine-tune."""
        if self.hard_negatives_per_image and not self.init_weights:
            raise ConfigError("hard_negatives_per_image", "needs a model to fine-tune (init_weights): they are its "
                              "false positives")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # views as a JSON list: made a tuple when checked

    @property
    def accumulation(self) -> int:
        return max(1, math.ceil(self.batch_size / self.micro_batch))


@dataclass
class TrainEvent:
    kind: str  # "prepare", "epoch_start", "batch", "epoch_end", "checkpoint", "done", "cancelled", "early_stop";
    # a two-pass run (model.train.two_pass) adds "part_done" at the end of each part
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    loss: float | None = None
    metrics: dict = field(default_factory=dict)
    eta_s: float | None = None
    message: str = ""
    part: str | None = None  # a two-pass run's part under way: "coarse" or "fine"; None for a single model


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path | None
    best_path: Path | None
    epochs_done: int
    history: list[dict]
    cancelled: bool
    stopped_early: bool
    rank_weight_digests: list[str]
