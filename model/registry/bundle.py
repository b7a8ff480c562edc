"""Turn a training run into the demo model the app ships (``resources/models``).

``python -m model.registry.bundle RUN_DIR EVAL_JSON OUT.safetensors`` takes the run's best
model (by validation Dice; a two-pass model's two passes, written as one pair), names it, states plainly what it was trained on and
that it is not for clinical use, adds the held-out evaluation, and writes
weights and card atomically. ``make demo-weights`` runs the whole chain.

A shipped card names no patient, not even by hash: the run's hashes were made
under the training site's key, which no other site has, so they are dropped.
The card keeps the counts and the split digest: on the very folder the model
was trained on (``bcir demo-data`` with the same seed), the held-out rule
reproduces the split from its seed and the digest confirms it (model.data.split).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from model.data.split import shareable_training
from model.nn.card import TrainingRecord
from model.nn.weights import load_model, save_model, save_pair

DEMO_INTENDED_USE = (
    "Demonstration only. Trained on synthetic mammograms made by `bcir demo-data`, not on patients. "
    "Not for clinical use: it has never seen a real mammogram and its figures say nothing about real performance."
)


HELD_OUT_KEYS = ("patients", "images", "dice_mean", "iou_mean", "dice_mean_per_lesion", "lesion_sensitivity",
                 "fp_per_image", "froc", "auc", "auc_ci", "sensitivity", "specificity", "ece", "pixel_accuracy",
                 "pixel_accuracy_all_background", "per_type", "case_auc", "seconds")


def _shipped_training(card) -> dict:
    """A card's training record as it is shipped: no patient, not even by hash; what it was trained on in words."""
    training = shareable_training(card.training.to_json() if card.training else None)  # an older run named its patients
    patients = training.get("patients")
    if isinstance(patients, dict):  # counts and split digest only: no other site can use this site's hashes
        training["patients"] = {**{k: v for k, v in patients.items() if k not in ("train", "val")}, "site": None}
    training["data"] = "synthetic CBIS-DDSM-shaped studies from `bcir demo-data` (" + str(training.get("data", "")) + ")"
    return training


def bundle(run_dir: Path, eval_json: Path, out: Path, *, version: str, name: str = "B-Cir U-Net demo",
           held_out: dict | None = None) -> Path:
    """The run's best model (a two-pass model: both passes) as the shipped demo model ``out``, with the held-out
    evaluation ``eval_json`` (bcir eval --json) and ``held_out`` (what the held-out data was) in its card."""
    source = run_dir / "best.safetensors"
    if not source.is_file():
        source = run_dir / "model.safetensors"
    model = load_model(source)
    evaluation = json.loads(eval_json.read_text())
    figures = {k: evaluation.get(k) for k in HELD_OUT_KEYS}
    if held_out:
        figures["data"] = held_out

    def shipped(part, *, scored: bool):
        training = _shipped_training(part.card)
        if scored:
            training["held_out_evaluation"] = figures
        return replace(part.card, name=name, version=version, intended_use=DEMO_INTENDED_USE,
                       data={**part.card.data, "source_run": str(run_dir.name)},
                       training=TrainingRecord.parse(training), weights_file=None, weights_sha256=None, fine=None)

    if model.fine is None:
        return save_model(model.net, shipped(model, scored=True), out)
    coarse = replace(model, card=shipped(model, scored=True), fine=None)
    fine = replace(model.fine, card=shipped(model.fine, scored=False))
    return save_pair(coarse, fine, out, version=version, name=name)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) not in (3, 4):
        print("usage: python -m model.registry.bundle RUN_DIR EVAL_JSON OUT.safetensors [VERSION]", file=sys.stderr)
        return 2
    version = args[3] if len(args) == 4 else Path(args[2]).stem
    path = bundle(Path(args[0]), Path(args[1]), Path(args[2]), version=version)
    print(f"bundled {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
