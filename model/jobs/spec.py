"""A retrain job's settings (JobSpec), saved as the job folder's spec.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass
class JobSpec:
    """Everything a retrain job needs; saved as ``spec.json``."""

    root: str  # the labelled folder to train on
    config: dict = field(default_factory=dict)  # TrainConfig fields (a TrainConfig is accepted too); {} = the paper's
    base_model: str | None = None  # the current model: the gate's "current", and the start point when fine_tune
    fine_tune: bool = False  # start from base_model (TrainConfig.init_weights) rather than from scratch
    holdout_root: str | None = None  # a locked hold-out folder; None: the new run's validation patients
    gate_views: tuple[str, ...] = ("CC",)
    bootstrap: int = 2000  # bootstrap resamples for the AUC's 95% CI
    data_summary: dict | None = None  # FolderSummary.to_json() of root, when the caller has it (kept in the registry)
    # train a two-pass model (model.train.two_pass): start_job sets it when fine-tuning a two-pass base_model, whose
    # parts are then fine-tuned each from its own weights at its own resolution; asked for, a new pair is trained (the
    # coarse part at the config's resolution, the fine part at fine_spacing_mm and fine_tile: the paper's by default)
    two_pass: bool = False
    fine_spacing_mm: float | None = None
    fine_tile: int | None = None

    def __post_init__(self):
        if dataclasses.is_dataclass(self.config):
            self.config = dataclasses.asdict(self.config)
        self.config = json.loads(json.dumps(self.config))  # as spec.json will hold it: tuples become lists
        self.root = str(self.root)
        self.base_model = str(self.base_model) if self.base_model else None
        self.holdout_root = str(self.holdout_root) if self.holdout_root else None
        self.gate_views = tuple(self.gate_views)
        self.two_pass = bool(self.two_pass)
        self.fine_spacing_mm = float(self.fine_spacing_mm) if self.fine_spacing_mm is not None else None
        self.fine_tile = int(self.fine_tile) if self.fine_tile is not None else None

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["gate_views"] = list(self.gate_views)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "JobSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def train_config(self):
        """The TrainConfig the child trains with (``init_weights`` follows ``fine_tune``)."""
        from model.train.config import TrainConfig

        config = TrainConfig.from_json(self.config)
        return dataclasses.replace(config, init_weights=self.base_model if self.fine_tune else None)

    def part_configs(self):
        """A two-pass job's coarse and fine TrainConfig (model.train.two_pass.part_configs of :meth:`train_config`).
        ConfigError for a fine resolution out of range, or other than a two-pass model's fine-tuned."""
        from model.train.two_pass import part_configs

        return part_configs(self.train_config(), fine_spacing_mm=self.fine_spacing_mm, fine_tile=self.fine_tile)

    def parts(self):
        """:meth:`part_configs` for a two-pass job, None for a single model: what the estimate counts and times."""
        return self.part_configs() if self.two_pass else None


__all__ = ["JobSpec"]
