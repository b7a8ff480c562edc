"""``bcir export``: the AI's results on CC views as DICOM SEG and TID 1500 SR for the PACS (model.pacs.results).
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
    from model.pacs.results import write_results
    from model.registry.resolve import require_model

    model = load_model(require_model(args.weights))
    predictor = Predictor(model, args.device, config=InferenceConfig(), cache_dir=user_cache_dir() / "results")
    targets, errors = _infer_targets(args.paths, {"CC"})
    written, no_lesion = [], 0
    kinds = {"seg": args.seg or not (args.seg or args.sr), "sr": args.sr or not (args.seg or args.sr)}
    for image in targets:
        if (image.view or "").upper() != "CC":
            continue  # the network reads the CC views
        try:
            result = predictor.predict(image.path)
            objects = write_results(image.path, result, model.scoring.threshold, Path(args.out), model_name=model.card.name,
                                    **kinds)
        except Exception as exc:  # noqa: BLE001 - one view that fails never stops the rest; its reason is listed
            log.debug("export: a view failed with %s", type(exc).__name__, exc_info=True)
            errors.append({"path": image.path, "reason": failure_reason(exc)})
            continue
        if not objects:
            no_lesion += 1
        for obj in objects:
            written.append({"source": image.path, "kind": obj.path.name.split("_")[0], "path": str(obj.path),
                            "sop_instance_uid": obj.sop_instance_uid, "lesions": obj.segments})
    if args.json:
        json.dump({"written": written, "no_lesion": no_lesion, "errors": errors}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for item in written:
            print(f"{item['path']}: {item['kind']}, {item['lesions']} lesion{'s' if item['lesions'] != 1 else ''}")
        for e in errors:
            print(f"error: {e['path']}: {e['reason']}")
        print(f"{len(written)} objects written to {args.out}; {no_lesion} CC views with no lesion listed (nothing "
              "to send)")
    return 0 if not errors else 2


def register(subparsers) -> None:
    """Add ``export`` to ``bcir``'s subparsers."""
    p = subparsers.add_parser("export", help="the AI's lesions on CC views as DICOM SEG and SR, for the PACS")
    p.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders")
    p.add_argument("--out", required=True, help="the folder the SEG and SR files go to")
    p.add_argument("--seg", action="store_true", help="write the Segmentations (default: both)")
    p.add_argument("--sr", action="store_true", help="write the TID 1500 SRs (default: both)")
    add_weights(p)
    add_device(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_export)


__all__ = ["register"]
