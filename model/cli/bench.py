"""``bcir bench``: inference speed, memory and header scanning on this machine (see :mod:`model.evaluate.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
from model.cli.options import add_device, add_weights


def _cmd_bench(args: argparse.Namespace) -> int:
    from model.errors import ModelFileError
    from model.evaluate.bench import DICE_BAR, SPEEDUP_BAR, run_bench
    from model.nn.weights import load_model, random_model
    from model.registry.resolve import resolve_model

    try:
        path = resolve_model(args.weights)
    except ModelFileError:  # none active and none bundled: the network's speed does not depend on its weights
        path = None
    model = load_model(path) if path else random_model(0)
    report = run_bench(model, device=args.device, runtime=args.runtime, repeats=args.repeats, image=args.image,
                       compile_cpu=not args.no_compile, view_repeats=args.view_repeats, log=(lambda m: print(m, file=sys.stderr)))
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"device: {report['device']}")
        print(runtime_table(report["cpu_tiles"]))
        default = report["cpu_tiles"]["variants"].get(report["cpu_default_variant"], {})
        print(f"the CPU default (--runtime auto): {report['cpu_default_variant']}, {default.get('description', '')}"
              + (f", {default['speedup_vs_eager_fp32']:.1f}x eager fp32" if "speedup_vs_eager_fp32" in default else "")
              + f"; torch's path: {report['cpu_tile_shipped_path']}")
        against_bf16 = report["cpu_runtime_verdicts_vs_bf16_path"]
        for name, verdict in report["cpu_runtime_verdicts"].items():
            if name in ("onnxruntime_fp32", "openvino_fp32", "openvino_auto", "shipped_compiled_default"):
                before = against_bf16.get(name, {}).get("speedup_vs_folded_channels_last_bf16")
                print(f"{name}: {'meets both bars' if verdict['meets_both_bars'] else 'does not meet both bars'} "
                      f"(mask Dice vs fp32 {verdict['dice_vs_fp32']:.4f}, need >= {DICE_BAR}; "
                      f"{_x(verdict['speedup_vs_shipped'])} torch's shipped path, need >= {SPEEDUP_BAR}x; "
                      f"{_x(before)} the bf16 path)")
        print(f"the whole view ran on: {report['runtime']} (--runtime auto: the adopted one where installed)")
        if "gpu_tile_seconds" in report:
            print(f"GPU tile ({report['gpu_name']}): " + _times(report["gpu_tile_seconds"], "ms", 1000))
        for key in ("cpu_tile_errors", "gpu_tile_errors"):
            for name, error in report.get(key, {}).items():
                print(f"{name} failed: {error}")
        if report["device"] != report["view_vs_eager_tile"]["device"]:  # a GPU's view, timed there too
            print(f"whole CC view {report['full_view_shape'][0]}x{report['full_view_shape'][1]}, DICOM to lesions, on "
                  f"{report['device']}: median {report['full_view_seconds_median']:.2f} s over "
                  f"{len(report['full_view_seconds_runs'])} runs ({report['full_view_tiles']} tiles of "
                  f"{report['full_view_tile_size']})")
        print("\n".join(view_lines(report["view_vs_eager_tile"])))
        print(f"peak RSS of this bench process (the eager tiles included; the view's own is the fresh process's "
              f"above): {report['peak_rss_mb_after_full_view']:.0f} MB after the whole view, "
              f"{report['peak_rss_mb']:.0f} MB in all")
        print(f"header scan: {report['header_scan_files_per_s']:.0f} files/s over {report['header_scan_files']} files")
        print("goals: " + ", ".join(f"{k}: {'met' if v else 'not met' if v is not None else 'n/a'}" for k, v in report["goals"].items()))
    return 0


def view_lines(view: dict) -> list[str]:
    """The whole view against the eager tile, as ``bcir bench`` prints it: the times and their ratio with the target,
    the tiles each pass ran, and the peak memory with how it was measured."""
    from model.evaluate.bench import VIEW_MEMORY_TARGET_MB

    passes = view["passes"]
    kind = ("two-pass: " + "; ".join(f"{p['pass']} {p['working_spacing_mm']:g} mm, tile {p['tile']}" for p in passes)
            if view["two_pass"] else f"one pass ({passes[0]['working_spacing_mm']:g} mm, tile {passes[0]['tile']})")
    tiles = f"{view['coarse_tiles']} coarse tiles of {view['coarse_tile_size']}" if view["two_pass"] else \
        f"{view['coarse_tiles']} tiles of {view['coarse_tile_size']}"
    if view["two_pass"]:
        tiles += f", {view['fine_tiles']} fine tile{'' if view['fine_tiles'] == 1 else 's'} of {view['fine_tile_size']}"
    lines = [f"whole CC view {view['view_shape'][0]}x{view['view_shape'][1]}, DICOM to lesion list, {kind}, on "
             f"{view['device']}: median {view['view_seconds_median']:.2f} s over {len(view['view_seconds_runs'])} "
             f"runs ({tiles}; {view['lesions']} lesions)",
             f"  against one plain eager fp32 {view['eager_tile_size']} tile in the same run "
             f"({view['eager_tile_seconds_median']:.2f} s median): {view['ratio_view_to_eager_tile']:.2f}x, target "
             f"at most {view['ratio_target']:g}x ({view['how']}; load average {view['load_average_before'][0]:.2f} "
             f"before, {view['load_average_after'][0]:.2f} after)"]
    memory = view.get("memory")
    if memory is None:
        return lines
    if "error" in memory:
        return lines + [f"  peak memory not measured: {memory['error']}"]
    lines.append(f"  peak memory {memory['peak_rss_mb']:.0f} MB (target under {VIEW_MEMORY_TARGET_MB:.0f} MB): "
                 f"{memory['rss_before_view_mb']:.0f} MB once the model was loaded, +{memory['view_increase_mb']:.0f} "
                 f"MB for the view; numpy's own peak {memory['numpy_peak_mb']:.0f} MB")
    lines.append(f"  how (the mark read from {memory.get('method', 'ru_maxrss')}): {memory['how']}")
    return lines


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "not timed against"


def runtime_table(tiles: dict) -> str:
    """The CPU tile comparison as a Markdown table: ms per tile, mask Dice against eager fp32, GFLOP/s and the share
    of the estimated FMA peak, with the machine, its load and how the peak was derived."""
    peak = tiles.get("fma_peak") or {}
    lines = [f"CPU, {tiles['tiles']} tile(s) of {tiles['tile_shape'][-2]}x{tiles['tile_shape'][-1]}, "
             f"{tiles['gflop_per_tile']:.1f} GFLOP each; {peak.get('cpu') or 'CPU'}; load average "
             f"{tiles['load_average_before'][0]:.2f} before, {tiles['load_average_after'][0]:.2f} after",
             f"estimated fp32 FMA peak: {peak.get('gflop_per_s') or 0:.0f} GFLOP/s = {peak.get('basis', 'unknown')}",
             _export_line(tiles.get("onnx_export")),
             "| variant | ms per tile (median) | mask Dice vs eager fp32 | GFLOP/s | % of peak | built in |",
             "|---|---|---|---|---|---|"]
    for name, row in tiles["variants"].items():
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error']} | | | | |")
            continue
        built_text = f"compile {row['compile_seconds']:.1f} s" if "compile_seconds" in row else \
            f"load {row['build_seconds']:.1f} s" if name.startswith(("onnxruntime", "openvino")) else ""
        lines.append(f"| {name} | {row['seconds_per_tile'] * 1000:.0f} | {row['mask_vs_eager_fp32']['dice']:.4f} | "
                     f"{row['gflop_per_s']:.1f} | {row.get('percent_of_fma_peak', float('nan')):.1f} | {built_text} |")
    return "\n".join(lines)


def _export_line(export: dict | None) -> str:
    if not export:
        return "ONNX export: not run"
    if "error" in export:
        return f"ONNX export failed: {export['error']}"
    made = "from the cache beside the model" if export["from_cache"] else f"made in {export['seconds']:.1f} s"
    return f"ONNX export (segment and classify graphs, {export['bytes'] / 1e6:.1f} MB): {made}"


def _times(seconds: dict, unit: str, scale: float) -> str:
    return ", ".join(f"{k} {v * scale:.3f} {unit}" if v is not None else f"{k} failed" for k, v in seconds.items())


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("bench", help="measure inference speed, memory and header scanning")
    add_weights(p, otherwise=", else random weights: the speed does not depend on them")
    add_device(p)
    p.add_argument("--runtime", default="auto",
                   help="what runs the whole view: auto (the shipped choice), torch, onnxruntime or openvino "
                        "(the tile comparison runs them all)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per variant (default 5)")
    p.add_argument("--view-repeats", type=int, default=3,
                   help="timed rounds of the whole view against the eager tile (default 3)")
    p.add_argument("--no-compile", action="store_true", help="leave torch.compile out of the tile comparison")
    p.add_argument("--image", help="a full CC view to time (default: a generated full-size one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)
    return p


__all__ = ["register"]
