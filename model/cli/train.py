"""``bcir train ROOT``: train on labelled studies in this process, resumable, under torchrun too (see :mod:`model.train`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from model.cli.exit_codes import Refusal
from model.cli.options import add_device


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.errors import ConfigError
    from model.train.config import TrainConfig, TrainEvent

    # the settings are checked before anything is read: a bad one is one line naming the option as written, exit 2
    from_file = json.loads(Path(args.config).read_text()) if args.config else {}
    if not isinstance(from_file, dict):
        raise Refusal(f"config file {args.config} must hold one JSON object of TrainConfig fields")
    flags = {  # TrainConfig field: (the option, its value)
        "max_epochs": ("--epochs", args.epochs),
        "views": ("--views", tuple(v.strip().upper() for v in args.views.split(",")) if args.views else None),
        "working_spacing_mm": ("--working-spacing", args.working_spacing), "tile": ("--tile", args.tile),
        "batch_size": ("--batch-size", args.batch_size), "micro_batch": ("--micro-batch", args.micro_batch),
        "lr": ("--lr", args.lr), "augment_factor": ("--augment-factor", args.augment_factor),
        "device": ("--device", args.device), "init_weights": ("--init-weights", args.init_weights),
        "max_minutes": ("--max-minutes", args.max_minutes), "bf16": ("--bf16", True if args.bf16 else None),
        "normal_ratio": ("--normal-ratio", args.normal_ratio), "seed": ("--seed", args.seed),
    }
    given = {key: value for key, (_, value) in flags.items() if value is not None}
    try:
        config = TrainConfig.from_json({**from_file, **given})
    except ConfigError as exc:
        name = (flags[exc.option][0] if exc.option in given
                else f"{exc.option} in {args.config}" if exc.option in from_file else exc.option)
        raise Refusal(exc.naming(name)) from None

    from model.train.loop import train  # torch: only once the settings hold
    bar = None
    rank = int(os.environ.get("RANK", 0))  # under torchrun only rank 0 prints

    def on_event(event: TrainEvent) -> None:
        nonlocal bar
        if rank != 0:
            return
        if event.kind == "epoch_start":
            bar = tqdm(total=event.batches, desc=f"epoch {event.epoch}", unit="batch", file=sys.stderr, leave=False, disable=None)
        elif event.kind == "batch" and bar is not None:
            bar.update(event.batch - bar.n)
            bar.set_postfix(loss=f"{event.loss:.4f}")
        elif event.kind == "epoch_end":
            if bar is not None:
                bar.close()
            m = event.metrics
            print(f"epoch {event.epoch}: train loss {m['train_loss']:.4f}" + "".join(
                f", {k} {m[k]:.4f}" for k in ("val_loss", "val_dice", "val_auc") if k in m) + f" ({m['seconds']:.0f} s)", flush=True)
        elif event.kind in ("early_stop", "cancelled", "done") or (event.kind == "prepare" and event.message.startswith("resumed")):
            print(f"{event.kind}: {event.message}", flush=True)

    out = Path(args.out)
    result = train(args.root, out, config, resume=args.resume, callback=on_event)
    if rank == 0 and result.model_path:
        print(f"model: {result.model_path} (best by validation Dice: {result.best_path})")
    return 0 if not result.cancelled else 1


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("train", help="train on labelled studies (resumable; works under torchrun)")
    p.add_argument("root", help="CBIS-DDSM root, Kaggle copy, or a labelled folder (see README)")
    p.add_argument("--out", default="bcir-run", help="run folder (checkpoints, split, models)")
    p.add_argument("--epochs", type=int, help="at most this many epochs (default 200)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--config", help="JSON file with TrainConfig fields")
    p.add_argument("--views", help="views to train on (default CC; e.g. CC,MLO)")
    p.add_argument("--working-spacing", type=float, help="working pixel spacing in mm (default 0.1)")
    p.add_argument("--tile", type=int, help="ROI tile size at the working spacing (default 1024)")
    p.add_argument("--batch-size", type=int, help="samples per optimiser step (default 64, by accumulation)")
    p.add_argument("--micro-batch", type=int, help="samples per forward pass (default 8)")
    p.add_argument("--lr", type=float)
    p.add_argument("--augment-factor", type=int, help="virtual expansion per case (default 40)")
    p.add_argument("--normal-ratio", type=float, help="lesion-free tiles per lesion tile (default 0.25)")
    p.add_argument("--init-weights", help="fine-tune from this model")
    p.add_argument("--max-minutes", type=float, help="stop after the last epoch that fits this budget")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with native bf16, recent GPUs)")
    p.add_argument("--seed", type=int)
    add_device(p, default=None)
    p.set_defaults(func=_cmd_train)
    return p


__all__ = ["register"]
