"""The Retrain window's options as one dataclass: what the form shows, what the settings remember, the run it asks for."""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import ConfigError
from model.train.config import TrainConfig
from model.train.two_pass import FINE_SPACING_MM, FINE_TILE

# the form's label for each TrainConfig field it sets: a refused setting is named as the reader sees it
FORM_LABELS = {"max_epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate",
               "working_spacing_mm": "Working resolution", "tile": "Tile", "augment_factor": "Augmentation",
               "views": "Views", "device": "Device", "max_minutes": "Time budget",
               "hard_negatives_per_image": "Hard negatives", "lr_schedule": "Learning rate",
               "fine_spacing_mm": "Fine pass", "fine_tile": "Fine pass tile"}


@dataclass
class RetrainOptions:
    """The options form, field for field; ``to_saved`` is what the reader's settings remember."""

    max_epochs: int
    batch_size: int
    lr: float
    working_spacing_mm: float
    tile: int
    augment_factor: int
    views: tuple[str, ...]
    device: str
    max_minutes: int  # 0: no limit
    start: str  # "fine-tune" or "scratch"
    held_out: str  # "split" (70/30 of the folder) or "locked" (the hold-out folder)
    holdout: str  # the locked hold-out folder, as typed
    lr_schedule: str = "constant"  # or "cosine"
    hard_negatives: int = 0  # per image, at the current model's false positives (a fine-tune only)
    two_pass: bool = False  # from scratch: a new two-pass model (a fine-tune follows the current model)
    fine_spacing_mm: float = FINE_SPACING_MM  # its fine part's working resolution
    fine_tile: int = FINE_TILE

    @property
    def new_pair(self) -> bool:
        """A new two-pass model is asked for (a fine-tune keeps the current model's kind: model.jobs.job.start_job)."""
        return self.two_pass and self.start == "scratch"

    def to_saved(self) -> dict:
        return {"max_epochs": self.max_epochs, "batch_size": self.batch_size, "lr": self.lr,
                "working_spacing_mm": self.working_spacing_mm, "tile": self.tile,
                "augment_factor": self.augment_factor, "views": list(self.views), "device": self.device,
                "max_minutes": self.max_minutes, "start": self.start, "held_out": self.held_out,
                "holdout": self.holdout, "lr_schedule": self.lr_schedule, "hard_negatives": self.hard_negatives,
                "two_pass": self.two_pass, "fine_spacing_mm": self.fine_spacing_mm, "fine_tile": self.fine_tile}

    def train_config(self, overrides: dict | None = None) -> TrainConfig:
        """The paper's TrainConfig with these options and ``overrides`` (fields set by code rather than by the form).
        Raises ConfigError for a setting out of range (:func:`refusal` says it as the form names it)."""
        values = {"max_epochs": self.max_epochs, "batch_size": self.batch_size, "lr": self.lr,
                  "working_spacing_mm": self.working_spacing_mm, "tile": self.tile,
                  "augment_factor": self.augment_factor, "views": self.views, "device": self.device,
                  "micro_batch": min(TrainConfig.micro_batch, self.batch_size),
                  "max_minutes": float(self.max_minutes) or None, "lr_schedule": self.lr_schedule,
                  "hard_negatives_per_image": self.hard_negatives if self.start == "fine-tune" else 0}
        return TrainConfig.from_json({**values, **(overrides or {})})


def papers_options() -> dict:
    """The paper's settings, as saved options (the start point and the hold-out folder stay as they are)."""
    paper = TrainConfig()
    return {"max_epochs": paper.max_epochs, "batch_size": paper.batch_size, "lr": paper.lr,
            "working_spacing_mm": paper.working_spacing_mm, "tile": paper.tile, "augment_factor": paper.augment_factor,
            "views": list(paper.views), "device": paper.device, "max_minutes": 0, "held_out": "split",
            "lr_schedule": paper.lr_schedule, "hard_negatives": paper.hard_negatives_per_image, "two_pass": False,
            "fine_spacing_mm": FINE_SPACING_MM, "fine_tile": FINE_TILE}


def refusal(error: ConfigError, overrides: dict | None = None) -> str:
    """The one line for the reader: the option as the form labels it (a field set by code keeps its own name)."""
    label = FORM_LABELS.get(error.option) if error.option not in (overrides or {}) else None
    return error.naming(label) if label else str(error)
