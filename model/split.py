"""Patient-level train/validation split: seeded, stratified by pathology, across every CSV.

CBIS-DDSM has patients in two subsets (Mass-Training and Calc-Test, say), so
splitting by image or by CSV leaks patients; the paper insists on a split with
no leak. A patient is malignant when any of their abnormalities is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model.fileio import atomic_write_json


@dataclass(frozen=True)
class PatientSplit:
    train: tuple[str, ...]
    val: tuple[str, ...]
    seed: int
    val_fraction: float

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> "PatientSplit":
        return cls(tuple(data["train"]), tuple(data["val"]), int(data["seed"]), float(data["val_fraction"]))

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_json())


def split_patients(patient_labels: dict[str, bool], *, val_fraction: float = 0.3, seed: int = 0) -> PatientSplit:
    """70/30 (by default) per stratum (malignant / not), so both parts keep the pathology mix.

    Each stratum with at least two patients gives at least one to each part.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in (True, False):
        group = sorted(p for p, malignant in patient_labels.items() if malignant == label)
        rng.shuffle(group)
        n_val = int(round(len(group) * val_fraction))
        if len(group) >= 2:
            n_val = min(max(n_val, 1), len(group) - 1)
        val += group[:n_val]
        train += group[n_val:]
    return PatientSplit(tuple(sorted(train)), tuple(sorted(val)), seed, val_fraction)
