"""``bcir bench``: inference speed, memory and header scanning on this machine (see :mod:`model.evaluate.bench`)."""

from __future__ import annotations

import argparse
import json
import sys


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
        t = report["cpu_tile_seconds"]
        print(f"device: {report['device']}")
        print("CPU tile 1024x1024 (median): " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items())
              + f"; shipped is {report['cpu_tile_speedup_vs_eager_fp32']:.1f}x eager fp32")
        if "gpu_tile_seconds" in report:
            print(f"GPU tile ({report['gpu_name']}): " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in report["gpu_tile_seconds"].items()))
        print(f"whole CC view {report['full_view_shape'][0]}x{report['full_view_shape'][1]}, DICOM to lesions: "
              f"median {report['full_view_seconds_median']:.2f} s over {len(report['full_view_seconds_runs'])} runs "
              f"({report['full_view_tiles']} tiles of {report['full_view_tile_size']})")
        print(f"peak RSS: {report['peak_rss_mb_after_full_view']:.0f} MB after the whole view, {report['peak_rss_mb']:.0f} MB in all")
        print(f"header scan: {report['header_scan_files_per_s']:.0f} files/s over {report['header_scan_files']} files")
        print("goals: " + ", ".join(f"{k}: {'met' if v else 'not met' if v is not None else 'n/a'}" for k, v in report["goals"].items()))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("bench", help="measure inference speed, memory and header scanning")
    p.add_argument("--weights", help="NAME.safetensors (default: $BCIR_MODEL, else the active model, else random weights)")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--image", help="a full CC view to time (default: a generated full-size one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)
    return p


__all__ = ["register"]
