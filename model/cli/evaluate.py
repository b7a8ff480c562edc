"""``bcir eval ROOT``: evaluate a model on the held-out patients of a labelled folder (see :mod:`model.evaluate.evaluation`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.cli.exit_codes import Refusal
from model.cli.options import add_device, add_weights


def _cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.evaluate.evaluation import evaluate
    from model.nn.weights import load_model
    from model.registry.resolve import require_model

    root = Path(args.root)
    if not root.exists():
        raise Refusal(f"{root} does not exist")
    model = load_model(require_model(args.weights))
    views = None if args.views.strip().lower() == "all" else [v for v in args.views.split(",") if v.strip()]
    patients = [p.strip() for p in args.patients.split(",") if p.strip()] if args.patients else None

    bar = None

    def progress(event) -> None:
        nonlocal bar
        if bar is None:  # disable=None: no bar when stderr is not a terminal
            bar = tqdm(total=event.total, desc="images", unit="image", file=sys.stderr, leave=False, disable=None)
        bar.update(event.done - bar.n)

    try:
        report = evaluate(root, model, device=args.device, views=views, patients=patients, progress=progress,
                          bootstrap=args.bootstrap)
    finally:
        if bar is not None:
            bar.close()
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
    return p


__all__ = ["register"]
