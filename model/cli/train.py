"""``bcir train ROOT``: train on labelled studies in this process, resumable, under torchrun too (see :mod:`model.train`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from model.cli.exit_codes import Refusal
from model.cli.options import add_device, read_config_file


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.errors import ConfigError, ModelFileError
    from model.train.config import TrainConfig, TrainEvent
    from model.train.two_pass import part_configs

    # the settings are checked before anything is read: a bad one is one line naming the option as written, exit 2
    from_file = read_config_file(args.config) if args.config else {}
    flags = {  # TrainConfig field: (the option, its value)
        "max_epochs": ("--epochs", args.epochs),
        "views": ("--views", tuple(v.strip().upper() for v in args.views.split(",")) if args.views else None),
        "working_spacing_mm": ("--working-spacing", args.working_spacing), "tile": ("--tile", args.tile),
        "batch_size": ("--batch-size", args.batch_size), "micro_batch": ("--micro-batch", args.micro_batch),
        "lr": ("--lr", args.lr), "augment_factor": ("--augment-factor", args.augment_factor),
        "device": ("--device", args.device), "init_weights": ("--init-weights", args.init_weights),
        "max_minutes": ("--max-minutes", args.max_minutes), "bf16": ("--bf16", True if args.bf16 else None),
        "normal_ratio": ("--normal-ratio", args.normal_ratio), "seed": ("--seed", args.seed),
        "lr_schedule": ("--lr-schedule", args.lr_schedule),
        "hard_negatives_per_image": ("--hard-negatives", args.hard_negatives),
    }
    given = {key: value for key, (_, value) in flags.items() if value is not None}
    out = Path(args.out)
    two_pass = _two_pass_settings(args, out, from_file, given)
    try:
        config = TrainConfig.from_json({**from_file, **given})
        parts = (part_configs(config, fine_spacing_mm=args.fine_spacing, fine_tile=args.fine_tile)
                 if two_pass else None)
        for part in parts or (config,):  # a two-pass run's fine part may start from scratch: refused now, not after
            part.check_start()           # the coarse part has trained
    except ConfigError as exc:
        options = {**flags, "fine_spacing_mm": ("--fine-spacing", args.fine_spacing),
                   "fine_tile": ("--fine-tile", args.fine_tile)}
        option, value = options.get(exc.option, (None, None))
        name = (option if value is not None
                else f"{exc.option} in {args.config}" if exc.option in from_file else exc.option)
        raise Refusal(exc.naming(name)) from None
    except ModelFileError as exc:
        raise Refusal(f"--init-weights: {exc}") from None

    from model.train.loop import train  # torch: only once the settings hold
    bar = None
    rank = int(os.environ.get("RANK", 0))  # under torchrun only rank 0 prints

    bar_desc = None

    def new_bar(total: int, desc: str, unit: str):
        nonlocal bar, bar_desc
        if bar is not None:
            bar.close()
        bar, bar_desc = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=None), desc

    def on_event(event: TrainEvent) -> None:
        if rank != 0:
            return
        part = f"{event.part} " if event.part else ""  # a two-pass run's part
        if event.kind == "epoch_start":
            new_bar(event.batches, f"{part}epoch {event.epoch}", "batch")
        elif event.kind == "prepare" and event.batches:  # preprocessing images; the starting model's false positives
            if bar is None or bar_desc != f"{part}{event.message}":  # minutes of each before the first epoch
                new_bar(event.batches, f"{part}{event.message}", "image")
            bar.update(event.batch - bar.n)
        elif event.kind == "batch" and bar is not None:
            bar.update(event.batch - bar.n)
            bar.set_postfix(loss=f"{event.loss:.4f}")
        elif event.kind == "epoch_end":
            if bar is not None:
                bar.close()
            m = event.metrics
            print(f"{part}epoch {event.epoch}: train loss {m['train_loss']:.4f}" + "".join(
                f", {k} {m[k]:.4f}" for k in ("val_loss", "val_dice", "val_auc") if k in m) + f" ({m['seconds']:.0f} s)", flush=True)
        elif event.kind == "part_done":
            print(f"{event.part} part done: {event.message}", flush=True)
        elif event.kind == "prepare" and event.part and event.message.startswith(f"{event.part} part"):
            print(event.message, flush=True)
        elif event.kind == "prepare" and ("hard_negatives" in event.metrics or "as mined before" in event.message):
            print(f"{part}{event.message}", flush=True)
        elif event.kind in ("early_stop", "cancelled", "done") or (event.kind == "prepare" and event.message.startswith("resumed")):
            print(f"{part}{event.kind}: {event.message}", flush=True)

    if parts is not None:
        from model.train.two_pass import train_pair

        result = train_pair(args.root, out, *parts, max_minutes=config.max_minutes, resume=args.resume,
                            callback=on_event)
    else:
        result = train(args.root, out, config, resume=args.resume, callback=on_event)
    if rank == 0 and result.model_path:
        kind = "two-pass model (its fine part beside it)" if parts is not None else "model"
        print(f"{kind}: {result.model_path} (best by validation Dice: {result.best_path})")
    return 0 if not result.cancelled else 1


def _two_pass_settings(args: argparse.Namespace, out: Path, from_file: dict, given: dict) -> bool:
    """Whether this run trains a two-pass model (--two-pass, or --resume of a two-pass run), with the coarse part's
    resolution put into ``given``: the coarse protocol's by default, a two-pass --init-weights' own when it is one.
    Refusal for fine-part options without --two-pass, or a resolution that differs from the model fine-tuned."""
    from model.errors import ModelFileError
    from model.train.two_pass import COARSE_SPACING_MM, COARSE_TILE, is_two_pass, is_two_pass_run, part_resolutions

    two_pass = args.two_pass or (args.resume and is_two_pass_run(out))
    if not two_pass:
        if args.fine_spacing is not None or args.fine_tile is not None:
            raise Refusal("--fine-spacing and --fine-tile set the fine part of a two-pass model: add --two-pass")
        return False
    init = given.get("init_weights") or from_file.get("init_weights")
    try:
        kept = part_resolutions(init)["coarse"] if init and is_two_pass(init) else None
    except ModelFileError as exc:
        raise Refusal(f"--init-weights: {exc}") from None
    for key, option, default, index in (("working_spacing_mm", "--working-spacing", COARSE_SPACING_MM, 0),
                                        ("tile", "--tile", COARSE_TILE, 1)):
        value = given.get(key, from_file.get(key))
        if kept is not None and value is not None and abs(float(value) - kept[index]) > 1e-9:
            raise Refusal(f"{option} {value:g} differs from the coarse part's {kept[index]:g} of {Path(init).name}: "
                          "fine-tuning a two-pass model keeps each part's working resolution")
        if value is None:
            given[key] = kept[index] if kept is not None else default
    return True


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
    p.add_argument("--lr-schedule", choices=("constant", "cosine"),
                   help="constant (default, the paper's) or cosine decay to 0 over the epochs")
    p.add_argument("--augment-factor", type=int, help="virtual expansion per case (default 40)")
    p.add_argument("--normal-ratio", type=float, help="lesion-free tiles per lesion tile (default 0.25)")
    p.add_argument("--init-weights", help="fine-tune from this model")
    p.add_argument("--hard-negatives", type=int, metavar="N",
                   help="with --init-weights: add a lesion-free tile at each of that model's N most confident false "
                        "positives per training image (default 0)")
    p.add_argument("--max-minutes", type=float, help="stop after the last epoch that fits this budget")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with native bf16, recent GPUs)")
    p.add_argument("--seed", type=int)
    p.add_argument("--two-pass", action="store_true",
                   help="train a two-pass model: a coarse part (the whole breast; --working-spacing and --tile, default "
                        "0.4 mm and 256 here) into OUT/coarse, then a fine part (an ROI on each candidate; --fine-spacing "
                        "and --fine-tile) into OUT/fine, written as one pair OUT/model.safetensors + "
                        "OUT/model.fine.safetensors (and best.*); every other option applies to both parts, "
                        "--max-minutes to the pair. With --init-weights a two-pass model, each part is fine-tuned from "
                        "its own weights at its own resolution; a single model starts the coarse part only. "
                        "--resume of a two-pass run continues it (a finished part is not trained again)")
    p.add_argument("--fine-spacing", type=float, metavar="MM", help="the fine part's working spacing in mm (default 0.1; "
                                                                   "with --two-pass)")
    p.add_argument("--fine-tile", type=int, metavar="PX", help="the fine part's ROI tile (default 1024; with --two-pass)")
    add_device(p, default=None)
    p.set_defaults(func=_cmd_train)
    return p


__all__ = ["register"]
