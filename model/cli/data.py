"""``bcir index`` and ``bcir demo-data``: list a folder of mammograms, write synthetic studies (see :mod:`model.data`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from model.cli.exit_codes import Refusal


def _cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.data.study_index import build_index

    bars: dict[str, tqdm] = {}

    def progress(event) -> None:
        if event.stage not in ("headers", "masks"):
            return
        if event.stage not in bars:  # disable=None: no bar when stderr is not a terminal
            bars[event.stage] = tqdm(total=event.total, desc=event.stage, unit="file", file=sys.stderr, leave=False, disable=None)
        bar = bars[event.stage]
        bar.update(event.done - bar.n)

    root = Path(args.root)
    if not root.exists():
        raise Refusal(f"{root} does not exist")
    index = build_index(root, progress=progress, workers=args.workers)
    for bar in bars.values():
        bar.close()
    if args.json:
        json.dump(index.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(index.summary())
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.data.synth.cbis_writer import write_demo_dataset

    start = time.perf_counter()
    with tqdm(total=args.patients, desc="patients", unit="patient", file=sys.stderr, leave=False, disable=None) as bar:
        summary = write_demo_dataset(
            args.out, patients=args.patients, seed=args.seed, size=args.size,
            metadata_csv=not args.no_metadata, progress=lambda done, total: bar.update(done - bar.n),
        )
    print(
        f"wrote {summary.patients} patients, {summary.images} images, {summary.abnormalities} abnormalities "
        f"({summary.malignant} malignant), {summary.files} DICOM files, {summary.bytes / 1e6:.0f} MB "
        f"to {summary.root} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def register(subparsers) -> None:
    """Add the ``index`` and ``demo-data`` commands to ``bcir``'s subparsers."""
    p = subparsers.add_parser("index", help="index a CBIS-DDSM download or a folder of mammograms")
    p.add_argument("root", help="folder (CBIS-DDSM root, Kaggle copy, or any DICOM folder) or one file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--workers", type=int, default=4, help="reader threads (default 4)")
    p.set_defaults(func=_cmd_index)

    p = subparsers.add_parser("demo-data", help="write synthetic CBIS-DDSM-shaped studies")
    p.add_argument("out", help="output folder")
    p.add_argument("--patients", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=["full", "training", "small"], default="full",
                   help="full: 50 um pixels like CBIS-DDSM; training: 200 um, pixel spacing written, a sixteenth of "
                        "the bytes, for training at 0.4 mm; small: 400 um, for tests")
    p.add_argument("--no-metadata", action="store_true", help="leave out the retriever's metadata.csv")
    p.set_defaults(func=_cmd_demo_data)


__all__ = ["register"]
