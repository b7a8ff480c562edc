"""``bcir infer``: run the network on files or folders and write mask and overlay PNGs (see :mod:`model.infer`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
from pathlib import Path

from model.cli.exit_codes import Refusal
from model.errors import failure_reason
from model.cli.options import add_device, add_weights

log = logging.getLogger("bcir")

ROI_USAGE = "--roi takes X,Y in pixels of the original image"


def _infer_targets(paths: list[str], views: set[str]) -> tuple[list, list[dict]]:
    """(indexed images to run, errors) from files and folders; folders go through the index (ground truth too)."""
    from model.data.study_index import build_index

    targets, errors = [], []
    for raw in paths:
        path = Path(raw)
        try:  # a path that cannot even be looked at (a folder above it unreadable) is one error, not the end
            if not path.exists():
                errors.append({"path": str(path), "reason": "not found"})
                continue
            index = build_index(path)
            chosen = index.images if path.is_file() else [i for i in index.images if (i.view or "").upper() in views]
        except Exception as exc:  # noqa: BLE001 - any failure of one path goes to errors; the others go on
            log.debug("infer: %s while listing a path", type(exc).__name__, exc_info=True)
            errors.append({"path": str(path), "reason": failure_reason(exc)})
            continue
        errors += [{"path": s.path, "reason": s.reason} for s in index.skipped]
        targets += chosen
    return targets, errors


def _parse_roi(text: str) -> tuple[float, float]:
    """``X,Y`` as two floats; anything else is a refusal (an explicit check, not an assert, so ``python -O`` keeps it)."""
    try:
        roi = tuple(float(v) for v in text.split(","))
    except ValueError:  # float() of a word: the only error this parse can meet
        raise Refusal(ROI_USAGE) from None
    if len(roi) != 2:
        raise Refusal(ROI_USAGE)
    return roi


def _cmd_infer(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.data.dicom_io import read_image
    from model.data.masks import load_truth
    from model.fileio import user_cache_dir
    from model.infer.overlay import render_overlay, write_png
    from model.infer.predictor import InferenceConfig, Predictor
    from model.nn.weights import load_model
    from model.registry.resolve import require_model

    model = load_model(require_model(args.weights))
    predictor = Predictor(model, args.device, config=InferenceConfig(), runtime=args.runtime,
                          cache_dir=None if args.no_cache else user_cache_dir() / "results")
    views = {v.strip().upper() for v in args.views.split(",") if v.strip()}
    targets, errors = _infer_targets(args.paths, views)
    out_dir = Path(args.out)
    roi = _parse_roi(args.roi) if args.roi else None
    results = []
    for image in tqdm(targets, desc="images", unit="image", file=sys.stderr, disable=None if len(targets) > 1 else True):
        try:
            mammogram = read_image(image.path)
            result = predictor.predict_roi(mammogram, *roi) if roi else predictor.predict(mammogram)
            stem = _output_stem(image)
            mask = result.lesion_mask(model.scoring.threshold)  # the listed lesions, as the reader sees them in yellow
            mask_path = out_dir / f"{stem}_mask.png"
            write_png(mask_path, mask.view("uint8") * 255)  # uint8 stays uint8: no full-size int64 copy
            truth = [t.mask for t in load_truth(image).usable]  # a mask that cannot be read is left off the overlay
            write_png(out_dir / f"{stem}_overlay.png", render_overlay(mammogram, mask, truth))
            item = result.to_json()
            item["mask_path"] = str(mask_path)
            item["overlay_path"] = str(out_dir / f"{stem}_overlay.png")
            results.append(item)
        except Exception as exc:  # noqa: BLE001 - one image that fails for any reason (out of memory too) never stops the rest
            log.debug("infer: image failed with %s", type(exc).__name__, exc_info=True)
            errors.append({"path": image.path, "reason": failure_reason(exc)})
    if args.json:
        json.dump({"results": results, "errors": errors}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for item in results:
            lesions = ", ".join(f"{l['label']} {l['p_malignant']:.2f}" for l in item["lesions"]) or "no lesion"
            print(f"{_shown(item['path'])}: case score {item['case_score']:.2f}; {lesions} ({item['seconds']:.1f} s, {item['device']})")
        for e in errors:
            print(f"error: {_shown(e['path'])}: {e['reason']}")
        print(f"{len(results)} images, {len(errors)} errors; masks and overlays in {out_dir}")
    return 0


def _output_stem(image) -> str:
    base = image.subject or Path(image.path).stem
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base)
    return f"{base}_{hashlib.sha1(os.fsencode(image.path)).hexdigest()[:6]}"  # the name's bytes, UTF-8 or not


def _shown(path: str) -> str:
    """A path for a terminal line: a name that is not valid UTF-8 keeps its readable part, the rest as U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``infer`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("infer", help="run the network on files or folders; writes mask and overlay PNGs")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_weights(p)
    p.add_argument("--out", default="bcir-out", help="folder for the PNGs (default ./bcir-out)")
    add_device(p)
    p.add_argument("--runtime", default="auto", help="what runs the network: auto (default), torch, onnxruntime or "
                   "openvino (the last two on the CPU, with the runtimes extra installed; README: CPU speed)")
    p.add_argument("--roi", metavar="X,Y", help="run one tile centred on this point (the paper's protocol)")
    p.add_argument("--views", default="CC", help="views to run in folders (default CC; e.g. CC,MLO)")
    p.add_argument("--no-cache", action="store_true", help="recompute even when a cached result exists")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_cmd_infer)
    return p


__all__ = ["register"]
