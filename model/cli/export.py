"""``bcir export``: the AI's results on CC views as DICOM Segmentations for the PACS (see :mod:`model.pacs.results`).
The views are inferred first, or taken from the result cache when they were (the same results the viewer shows)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from model.cli.options import add_device, add_weights
from model.errors import failure_reason

log = logging.getLogger("bcir")


def _cmd_export(args: argparse.Namespace) -> int:
    from model.cli.infer import _infer_targets
    from model.fileio import user_cache_dir
    from model.infer.predictor import InferenceConfig, Predictor
    from model.nn.weights import load_model
    from model.pacs.results import write_segmentation
    from model.registry.resolve import require_model

    model = load_model(require_model(args.weights))
    predictor = Predictor(model, args.device, config=InferenceConfig(), cache_dir=user_cache_dir() / "results")
    targets, errors = _infer_targets(args.paths, {"CC"})
    written, no_lesion = [], 0
    for image in targets:
        if (image.view or "").upper() != "CC":
            continue  # the network reads the CC views
        try:
            result = predictor.predict(image.path)
            seg = write_segmentation(image.path, result, model.threshold, Path(args.out),
                                     model_name=model.card.name)
        except Exception as exc:  # noqa: BLE001 - one view that fails never stops the rest; its reason is listed
            log.debug("export: a view failed with %s", type(exc).__name__, exc_info=True)
            errors.append({"path": image.path, "reason": failure_reason(exc)})
            continue
        if seg is None:
            no_lesion += 1
        else:
            written.append({"source": image.path, "seg": str(seg.path), "sop_instance_uid": seg.sop_instance_uid,
                            "segments": seg.segments})
    if args.json:
        json.dump({"written": written, "no_lesion": no_lesion, "errors": errors}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for item in written:
            print(f"{item['seg']}: {item['segments']} lesion segment{'s' if item['segments'] != 1 else ''}")
        for e in errors:
            print(f"error: {e['path']}: {e['reason']}")
        print(f"{len(written)} SEG written to {args.out}; {no_lesion} CC views with no lesion listed (no SEG)")
    return 0 if not errors else 2


def register(subparsers) -> None:
    """Add ``export`` to ``bcir``'s subparsers."""
    p = subparsers.add_parser("export", help="the AI's lesions on CC views as DICOM SEG, for the PACS")
    p.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders")
    p.add_argument("--out", required=True, help="the folder the SEG files go to")
    add_weights(p)
    add_device(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_export)


__all__ = ["register"]
