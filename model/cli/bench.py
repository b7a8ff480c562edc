"""``bcir bench``: inference speed, memory and header scanning on this machine (see :mod:`model.evaluate.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
from model.cli.options import add_device, add_weights


def _cmd_bench(args: argparse.Namespace) -> int:
    from model.errors import ModelFileError
    from model.evaluate.bench import run_bench
    from model.nn.weights import load_model, random_model
    from model.registry.resolve import resolve_model

    try:
        path = resolve_model(args.weights)
    except ModelFileError:  # none active and none bundled: the network's speed does not depend on its weights
        path = None
    model = load_model(path) if path else random_model(0)
    report = run_bench(model, device=args.device, repeats=args.repeats, image=args.image,
                       log=(lambda m: print(m, file=sys.stderr)))
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"device: {report['device']}")
        speedup = report["cpu_tile_speedup_vs_eager_fp32"]
        print("CPU tile 1024x1024 (median): " + _times(report["cpu_tile_seconds"], "s", 1)
              + (f"; shipped is {speedup:.1f}x eager fp32" if speedup else "")
              + "; mask Dice vs eager fp32: " + ", ".join(f"{k} {v:.4f}" for k, v in
                                                         report["cpu_tile_mask_dice_vs_eager_fp32"].items()))
        if "gpu_tile_seconds" in report:
            print(f"GPU tile ({report['gpu_name']}): " + _times(report["gpu_tile_seconds"], "ms", 1000))
        for key in ("cpu_tile_errors", "gpu_tile_errors"):
            for name, error in report.get(key, {}).items():
                print(f"{name} failed: {error}")
        print(f"whole CC view {report['full_view_shape'][0]}x{report['full_view_shape'][1]}, DICOM to lesions: "
              f"median {report['full_view_seconds_median']:.2f} s over {len(report['full_view_seconds_runs'])} runs "
              f"({report['full_view_tiles']} tiles of {report['full_view_tile_size']})")
        print(f"peak RSS: {report['peak_rss_mb_after_full_view']:.0f} MB after the whole view, {report['peak_rss_mb']:.0f} MB in all")
        print(f"header scan: {report['header_scan_files_per_s']:.0f} files/s over {report['header_scan_files']} files")
        print("goals: " + ", ".join(f"{k}: {'met' if v else 'not met' if v is not None else 'n/a'}" for k, v in report["goals"].items()))
    return 0


def _times(seconds: dict, unit: str, scale: float) -> str:
    return ", ".join(f"{k} {v * scale:.3f} {unit}" if v is not None else f"{k} failed" for k, v in seconds.items())


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("bench", help="measure inference speed, memory and header scanning")
    add_weights(p, otherwise=", else random weights: the speed does not depend on them")
    add_device(p)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--image", help="a full CC view to time (default: a generated full-size one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)
    return p


__all__ = ["register"]
