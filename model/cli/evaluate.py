"""``bcir eval ROOT``: evaluate a model on the held-out patients of a labelled folder (see :mod:`model.evaluate.evaluation`);
``bcir calibrate ROOT --out NEW``: fit p(malignant)'s calibration and the operating point on its validation patients
(:mod:`model.evaluate.calibration`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.cli.exit_codes import Refusal
from model.cli.options import add_device, add_weights


def _views_and_patients(args: argparse.Namespace) -> tuple[list[str] | None, list[str] | None]:
    """--views (a comma list, or "all": None) and --patients (a comma list, or None: the card's held-out rule)."""
    views = None if args.views.strip().lower() == "all" else [v for v in args.views.split(",") if v.strip()]
    patients = [p.strip() for p in args.patients.split(",") if p.strip()] if args.patients else None
    return views, patients


def _cmd_eval(args: argparse.Namespace) -> int:
    from model.evaluate.evaluation import evaluate
    from model.nn.weights import load_model
    from model.registry.resolve import require_model

    root = Path(args.root)
    if not root.exists():
        raise Refusal(f"{root} does not exist")
    model = load_model(require_model(args.weights))
    views, patients = _views_and_patients(args)

    progress, close = _progress_bar()
    try:
        report = evaluate(root, model, device=args.device, views=views, patients=patients, progress=progress,
                          bootstrap=args.bootstrap)
    finally:
        close()
    written = None
    if args.report:
        from model.evaluate.report import write_report

        written = write_report(report, args.report)
    if args.json:
        data = report.to_json(details=args.details)
        if written:
            data["report_path"] = str(written)
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(report.summary())
        if written:
            print(f"report: {written}")
    return 0


def _progress_bar():
    from tqdm import tqdm

    bar = None

    def progress(event) -> None:
        nonlocal bar
        if bar is None:  # disable=None: no bar when stderr is not a terminal
            bar = tqdm(total=event.total, desc="images", unit="image", file=sys.stderr, leave=False, disable=None)
        bar.update(event.done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return progress, close


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from model.evaluate.calibration import calibrate, calibrated_paths, save_calibrated
    from model.nn.weights import load_model
    from model.registry.resolve import require_model

    root, out = Path(args.root), Path(args.out)
    if not root.exists():
        raise Refusal(f"{root} does not exist")
    if out.suffix != ".safetensors":
        raise Refusal(f"--out {out.name}: the calibrated model is written as NAME.safetensors")
    taken = [p for p in calibrated_paths(out) if p.exists()]  # a two-pass model's fine part included
    if taken:
        raise Refusal(f"{taken[0]} exists: the calibrated model is written to new files, never over one")
    if args.target_sensitivity is not None and not 0 < args.target_sensitivity <= 1:
        raise Refusal(f"--target-sensitivity {args.target_sensitivity:g} is not in (0, 1]")
    model = load_model(require_model(args.weights))
    views, patients = _views_and_patients(args)
    progress, close = _progress_bar()
    try:
        result = calibrate(root, model, version=args.version or out.stem, patients=patients, views=views,
                           device=args.device, target_sensitivity=args.target_sensitivity, progress=progress)
    finally:
        close()
    written = save_calibrated(model, result.card, out)
    if args.json:
        json.dump({**result.to_json(), "path": str(written)}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(result.summary())
        print(f"written: {written} (evaluate it on held-out patients: bcir eval FOLDER --weights {written})")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``eval`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("eval", help="evaluate a model on held-out patients: Dice, IoU, detection, AUC with CI")
    p.add_argument("root", help="labelled folder (CBIS-DDSM layout or demo data)")
    add_weights(p)
    add_device(p)
    p.add_argument("--views", default="CC", help="views to evaluate (default CC, the paper's; e.g. CC,MLO or all)")
    p.add_argument("--patients", help="comma-separated patient IDs to evaluate instead of the held-out rule")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the AUC's 95%% CI (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--details", action="store_true", help="with --json: include per-image and per-lesion records")
    p.add_argument("--report", metavar="DIR", help="write report.md, report.json, roc.png and training_curves.png here")
    p.set_defaults(func=_cmd_eval)

    c = subparsers.add_parser("calibrate", help="fit p(malignant)'s calibration and the operating point on the "
                                                "model's validation patients; writes a new model")
    c.add_argument("root", help="the labelled folder the model was trained on (its validation patients are used)")
    c.add_argument("--out", required=True, metavar="FILE",
                   help="the calibrated model to write, NAME.safetensors with NAME.json beside it (never over a file)")
    add_weights(c, role="the model to calibrate")
    add_device(c)
    c.add_argument("--version", help="the calibrated model's version (default: the --out file's name)")
    c.add_argument("--patients", help="comma-separated patient IDs to fit on instead of the validation split (never "
                                      "training patients; evaluate on others)")
    c.add_argument("--views", default="CC", help="views whose abnormalities are scored (default CC; e.g. CC,MLO or all)")
    c.add_argument("--target-sensitivity", type=float, metavar="S",
                   help="operating point: the highest threshold with at least this sensitivity (default: Youden's J)")
    c.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    c.set_defaults(func=_cmd_calibrate)
    return p


__all__ = ["register"]
