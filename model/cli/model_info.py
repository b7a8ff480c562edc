"""``bcir model-info``: one model's parameter counts, the device it would run on, and its card (see :mod:`model.nn`);
for a two-pass model, that it is one, each pass's working spacing and tile, and the fine part's card."""

from __future__ import annotations

import argparse
import json
import sys
from model.cli.options import add_device, add_weights


def _cmd_model_info(args: argparse.Namespace) -> int:
    from model.nn.card import TrainingRecord
    from model.nn.network import ARCHITECTURE, ARCHITECTURE_VERSION, parameter_counts
    from model.nn.passes import model_passes_text, passes
    from model.nn.runtime import device_label, resolve_device
    from model.nn.weights import load_model, shareable_card
    from model.registry.resolve import require_model
    from model.registry.versions import model_malignancy_trust

    model = load_model(require_model(args.weights))
    info = {**parameter_counts(model.net), "device": device_label(resolve_device(args.device)),
            "weights": str(model.path), "card": shareable_card(model.card),  # an older card's patient IDs hashed
            "two_pass": model.two_pass, "passes": passes(model.card, model.fine.card if model.fine else None)}
    if model.fine is not None:
        info["fine"] = {**parameter_counts(model.fine.net), "weights": str(model.fine.path),
                        "card": shareable_card(model.fine.card)}
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        card = model.card
        print(f"{card.name} {card.version} ({ARCHITECTURE} v{ARCHITECTURE_VERSION})")
        print(f"  weights: {model.path}")
        print(f"  trunk: {info['trunk_trainable_params']:,} trainable parameters + {info['trunk_bn_running_stats']:,} BatchNorm statistics; "
              f"malignancy head: {info['head_params']:,}")
        print(f"  {model_passes_text(model)}")
        print(f"  working spacing {model.preprocess.working_spacing_mm} mm, tile {model.tile_size}, threshold {model.threshold}"
              + (" (the coarse pass)" if model.two_pass else ""))
        if model.fine is not None:
            fine = model.fine
            print(f"  fine pass: {fine.path.name}; working spacing {fine.preprocess.working_spacing_mm} mm, tile "
                  f"{fine.tile_size}, threshold {fine.threshold}; it lists the lesions and gives p(malignant)"
                  + ("; calibrated" if fine.card.calibration is not None else "")
                  + (f", operating point p >= {fine.card.operating_point.threshold:.3g}"
                     if fine.card.operating_point is not None else ""))
        training = card.training or TrainingRecord()
        print(f"  trained on: {training.data}; date {training.date}; parent {card.parent}")
        for k, v in (training.metrics or {}).items():
            print(f"    {k}: {v}")
        trust = model_malignancy_trust(model)
        print(f"  {trust.text}")
        print(f"  device: {info['device']}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``model-info`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("model-info", help="parameter counts, device and model card")
    add_weights(p)
    add_device(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_model_info)
    return p


__all__ = ["register"]
