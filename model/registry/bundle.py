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
    data = str(training.get("data", ""))
    if not data.startswith("synthetic"):  # a bundled model bundled again (recalibrated) is not wrapped twice
        training["data"] = "synthetic CBIS-DDSM-shaped studies from `bcir demo-data` (" + data + ")"
    return training


def _shipped_fit(fitted) -> object:
    """A calibration's or operating point's card section without its patients' hashes (their count stays)."""
    if fitted is None:
        return None
    data = fitted.to_json()
    patients = data.get("fitted_on", {}).get("patients")
    if isinstance(patients, dict):
        data["fitted_on"] = {**data["fitted_on"], "patients": {"scheme": patients.get("scheme"),
                                                               "count": patients.get("count"), "site": None}}
    return type(fitted).parse(data)


def _minutes(seconds) -> float | None:
    return round(float(seconds) / 60, 1) if isinstance(seconds, (int, float)) else None


def training_time(run_dir: Path) -> dict:
    """The run's training time in minutes (its ``run.json``), and from scratch: with the time of the model it was
    fine-tuned from (its card's ``recipe``, else the sum of its epochs), when that model's card can be read."""
    from model.errors import ModelFileError
    from model.fileio import UnreadableJson, read_json_object
    from model.nn.weights import read_card

    try:
        run, config = read_json_object(run_dir / "run.json"), read_json_object(run_dir / "config.json")
    except (OSError, UnreadableJson):
        return {}
    this = _minutes(run.get("seconds"))
    out = {"training_minutes": this}
    start = config.get("init_weights")
    if start and this is not None:
        try:
            parent = read_card(start).training
        except (ModelFileError, OSError):
            return out
        before = (parent.rest.get("recipe") or {}).get("training_minutes_from_scratch") if parent else None
        if before is None and parent is not None:
            before = _minutes(sum(e.get("seconds", 0) for e in (parent.history or []) if isinstance(e, dict)))
        if before is not None:
            out["training_minutes_from_scratch"] = round(before + this, 1)
    return out


def bundle(run_dir: Path, eval_json: Path, out: Path, *, version: str, name: str = "B-Cir U-Net demo",
           held_out: dict | None = None, source: Path | None = None, recipe: dict | None = None) -> Path:
    """The run's best model (or ``source``, e.g. its calibrated copy; a two-pass model: both passes) as the shipped
    demo model ``out``, with the held-out evaluation ``eval_json`` (bcir eval --json) and ``held_out`` (what the
    held-out data was) in its card, and its ``recipe`` (in words: the data and its seeds, what the run did) with
    the training time (:func:`training_time`). Its calibration and operating point keep their figures, not their
    patients."""
    if source is None:
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
            training["recipe"] = {**(recipe or {}), **training_time(run_dir)}
        return replace(part.card, name=name, version=version, intended_use=DEMO_INTENDED_USE,
                       data={**part.card.data, "source_run": str(run_dir.name)},
                       training=TrainingRecord.parse(training), weights_file=None, weights_sha256=None, fine=None,
                       calibration=_shipped_fit(part.card.calibration),
                       operating_point=_shipped_fit(part.card.operating_point))

    if model.fine is None:
        return save_model(model.net, shipped(model, scored=True), out)
    coarse = replace(model, card=shipped(model, scored=True), fine=None)
    fine = replace(model.fine, card=shipped(model.fine, scored=False))
    return save_pair(coarse, fine, out, version=version, name=name)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m model.registry.bundle",
                                     description="a training run's model as the shipped demo model")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("eval_json", type=Path, help="bcir eval --json of the model on held-out patients")
    parser.add_argument("out", type=Path, help="resources/models/NAME.safetensors")
    parser.add_argument("version", nargs="?", help="default: the name of OUT")
    parser.add_argument("--model", type=Path, help="the model to ship (default: the run's best; e.g. its calibrated copy)")
    parser.add_argument("--held-out", help="what the held-out patients were, in words (kept in the card)")
    parser.add_argument("--data", help="what the model trained on, in words with the seeds (kept in the card)")
    parser.add_argument("--recipe", help="how it was trained, in words (kept in the card beside the run's settings)")
    args = parser.parse_args(argv)
    recipe = {k: v for k, v in (("data", args.data), ("description", args.recipe)) if v}
    path = bundle(args.run_dir, args.eval_json, args.out, version=args.version or args.out.stem, source=args.model,
                  held_out={"description": args.held_out} if args.held_out else None, recipe=recipe)
    print(f"bundled {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
