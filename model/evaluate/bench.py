"""``bcir bench``: speed of the shipped inference path, measured in one run so variants compare fairly."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model.nn.runtime import Runner, resolve_device
from model.nn.weights import LoadedModel


def _median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1, sync: bool = False) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def variant_error(exc: BaseException) -> str:
    """A measurement that failed, as one line for the JSON: the exception's type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def synthetic_cc_view(folder: Path, size: str = "full") -> str:
    """Write one synthetic patient under ``folder`` and return its first CC full mammogram."""
    from model.data.synth.cbis_writer import write_demo_dataset

    write_demo_dataset(folder, patients=1, seed=1, size=size, workers=1)
    return str(next(p for p in sorted(folder.rglob("*.dcm"))
                    if "_CC/" in p.as_posix() and "full mammogram" in p.as_posix()))


def bench_tile(image: str | Path, model: LoadedModel, size: int = 1024) -> torch.Tensor:
    """A (1, 1, size, size) tile of real tissue: ``image``'s working image (the model's preprocessing), centred and
    padded with zeros; at the coarse spacing a 1024 tile holds the whole breast, its lesions included, so masks from
    two runtimes can be compared on it."""
    from model.data.dicom_io import read_image
    from model.data.preprocess import prepare

    mammogram = read_image(image)
    working, _, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, model.preprocess)
    tile = np.zeros((size, size), np.float32)
    h, w = min(size, working.shape[0]), min(size, working.shape[1])
    y0, x0 = (working.shape[0] - h) // 2, (working.shape[1] - w) // 2
    ty, tx = (size - h) // 2, (size - w) // 2
    tile[ty : ty + h, tx : tx + w] = working[y0 : y0 + h, x0 : x0 + w]
    return torch.from_numpy(tile)[None, None]


def mask_agreement(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """Dice of two runtimes' lesion masks (logits > 0) and how many pixels the reference marks; two empty masks agree."""
    from model.infer.compare import dice

    a, b = (reference > 0).numpy(), (other > 0).numpy()
    return {"dice": 1.0 if not a.any() and not b.any() else dice(b, a), "reference_pixels": int(a.sum())}


class _GraphRunner:
    """The shipped CUDA runner replayed from one captured CUDA graph: static input and output buffers, no per-layer
    launch cost. Only for a fixed tile shape, which is what a whole view's tiles are."""

    def __init__(self, runner: Runner, example: torch.Tensor):
        self.runner = runner
        self.static_in = runner._input(example).clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode(), runner.precision():
            for _ in range(3):  # warm-up outside the graph: cudnn picks its algorithms first
                runner.net(self.static_in)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph), runner.precision():
            self.static_out = runner.net(self.static_in)

    def segment(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.static_in.copy_(batch.to(self.static_in.device, non_blocking=True))
        self.graph.replay()
        return self.static_out[0].float().cpu(), self.static_out[1].float().cpu()


def device_tile_variants(model: LoadedModel, device: str, tile: torch.Tensor, *, repeats: int = 20,
                         compile_modes: tuple[str, ...] = ("default",), cuda_graph: bool = True,
                         only: tuple[str, ...] | None = None, log: Callable[[str], None] = print) -> dict:
    """Every way of running one tile on ``device``, timed in one run on the same tile: plain eager fp32, eager bf16,
    BatchNorm folded with channels_last in fp32, in TF32 (on CUDA) and in bf16, the shipped path (model.nn.runtime
    says which of those it is on this device), the shipped path through ``torch.compile`` (its compile time apart)
    and, on CUDA, replayed from a CUDA graph. Each variant's mask is compared with eager fp32's (Dice); a variant that fails is recorded with its
    reason and the others go on. ``only``: the names of the variants to run (eager fp32, the reference, always runs).
    """
    import copy

    dev = resolve_device(device)
    sync = dev.type == "cuda"
    bf16 = torch.bfloat16 if (dev.type == "cpu" or torch.cuda.is_bf16_supported()) else torch.float16
    out: dict = {"tile_shape": list(tile.shape), "variants": {}}
    reference = None

    def measure(name: str, segment: Callable[[torch.Tensor], tuple], extra: dict | None = None) -> None:
        nonlocal reference
        if only is not None and name != "eager_fp32" and name not in only:
            return
        try:
            logits = segment(tile)[0]
            seconds = _median_seconds(lambda: segment(tile), repeats, sync=sync)
        except Exception as exc:  # noqa: BLE001 - a variant this device or build cannot run is a finding, not a stop
            out["variants"][name] = {"error": variant_error(exc)}
            log(f"  {name}: failed ({type(exc).__name__})")
            return
        row = {"seconds_median": seconds, "tiles_per_s": tile.shape[0] / seconds, **(extra or {})}
        if reference is None:
            reference = logits
        row["mask_vs_eager_fp32"] = mask_agreement(reference, logits)
        out["variants"][name] = row
        log(f"  {name}: {seconds * 1000:.2f} ms, mask Dice vs eager fp32 {row['mask_vs_eager_fp32']['dice']:.4f}")

    measure("eager_fp32", Runner.create(model.net, dev, fast=False).segment)
    eager_name = "eager_" + {torch.bfloat16: "bf16", torch.float16: "fp16"}[bf16]
    if only is None or eager_name in only:
        measure(eager_name, Runner(copy.deepcopy(model.net).eval().to(dev), dev, bf16, False).segment)
    measure("folded_channels_last_fp32", Runner.create(model.net, dev, bf16=False).segment)
    if dev.type == "cuda":
        measure("folded_channels_last_tf32", Runner.create(model.net, dev, bf16=False, tf32=True).segment)
    measure("folded_channels_last_bf16", Runner.create(model.net, dev, bf16=True).segment)
    shipped = Runner.create(model.net, dev)
    measure("shipped", shipped.segment, {"description": shipped.description})
    for mode in compile_modes if only is None or any(n.startswith("shipped_compiled_") for n in only) else ():
        try:
            compiled = Runner(torch.compile(shipped.net, mode=None if mode == "default" else mode), dev,
                              shipped.autocast_dtype, shipped.channels_last)
            if sync:
                torch.cuda.synchronize()
            start = time.perf_counter()
            compiled.segment(tile)  # the first call compiles
            if sync:
                torch.cuda.synchronize()
            compile_s = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - no compiler on this machine, an unsupported op: recorded
            out["variants"][f"shipped_compiled_{mode}"] = {"error": variant_error(exc)}
            log(f"  shipped_compiled_{mode}: failed to compile ({type(exc).__name__})")
            continue
        measure(f"shipped_compiled_{mode}", compiled.segment, {"compile_seconds": compile_s})
    if cuda_graph and dev.type == "cuda":
        try:
            graph = _GraphRunner(shipped, tile)
        except Exception as exc:  # noqa: BLE001 - capture refused (an op that syncs): recorded
            out["variants"]["shipped_cuda_graph"] = {"error": variant_error(exc)}
        else:
            measure("shipped_cuda_graph", graph.segment)
    eager = out["variants"].get("eager_fp32", {}).get("seconds_median")
    for row in out["variants"].values():
        if eager and "seconds_median" in row:
            row["speedup_vs_eager_fp32"] = eager / row["seconds_median"]
    return out


def _seconds(variants: dict) -> dict:
    """Median seconds per variant; None for a variant that failed (``_errors`` says why)."""
    return {k: v.get("seconds_median") for k, v in variants.items()}


def _errors(variants: dict) -> dict:
    return {k: v["error"] for k, v in variants.items() if "error" in v}


def header_scan_rate(folder: Path) -> tuple[int, float]:
    from model.data.study_index import list_files, scan_headers

    files, _ = list_files(folder)
    start = time.perf_counter()
    n = sum(1 for _ in scan_headers(files, workers=1))
    return n, n / max(time.perf_counter() - start, 1e-9)


def run_bench(model: LoadedModel, *, device: str = "auto", repeats: int = 5, image: str | None = None,
              log: Callable[[str], None] = print) -> dict:
    from model.infer.predictor import Predictor
    from model.data.synth.cbis_writer import write_demo_dataset

    report: dict = {"device": None, "model_version": model.version}
    with tempfile.TemporaryDirectory(prefix="bcir-bench-") as tmp:
        tmp = Path(tmp)
        if image is None:
            log("writing one full-size synthetic patient (about 4600 x 2900, 16-bit)...")
            image = synthetic_cc_view(tmp / "full")
        predictor = Predictor(model, device)
        report["device"] = predictor.device_description
        log(f"whole CC view, DICOM to lesion list, on {predictor.device_description} ...")
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            result = predictor.predict(image, use_cache=False)
            runs.append(time.perf_counter() - start)
        report["full_view_seconds_median"] = statistics.median(runs)
        report["full_view_seconds_runs"] = runs
        report["full_view_shape"] = [result.rows, result.columns]
        report["full_view_tiles"] = predictor.segmenter.last_tile_count
        report["full_view_tile_size"] = predictor.config.tile
        report["peak_rss_mb_after_full_view"] = peak_rss_mb()
        log("per-tile latency (1024 x 1024, the view's working image), each path's mask against eager fp32's ...")
        dev = resolve_device(device)
        tile = bench_tile(image, model)
        cpu = device_tile_variants(model, "cpu", tile, repeats=repeats, compile_modes=(), cuda_graph=False,
                                   only=("folded_channels_last_fp32", "shipped"), log=log)["variants"]
        report["cpu_tile_seconds"] = _seconds(cpu)
        report["cpu_tile_shipped_path"] = cpu["shipped"].get("description")
        report["cpu_tile_mask_dice_vs_eager_fp32"] = {k: v["mask_vs_eager_fp32"]["dice"] for k, v in cpu.items()
                                                     if "mask_vs_eager_fp32" in v and k != "eager_fp32"}
        report["cpu_tile_speedup_vs_eager_fp32"] = cpu["shipped"].get("speedup_vs_eager_fp32")
        report["cpu_tile_errors"] = _errors(cpu)
        if dev.type == "cuda":
            gpu = device_tile_variants(model, str(dev), tile, repeats=max(repeats, 20), compile_modes=(),
                                       cuda_graph=False, only=("shipped",), log=log)["variants"]
            report["gpu_tile_seconds"] = _seconds(gpu)
            report["gpu_tile_errors"] = _errors(gpu)
            report["gpu_name"] = torch.cuda.get_device_name(dev)
        log("header scan ...")
        write_demo_dataset(tmp / "many", patients=40, seed=2, size="small", workers=1)
        files, rate = header_scan_rate(tmp / "many")
        report["header_scan_files"] = files
        report["header_scan_files_per_s"] = rate
    report["peak_rss_mb"] = peak_rss_mb()
    report["goals"] = {
        "cpu_tile_at_most_0.5_s": (report["cpu_tile_seconds"]["shipped"] <= 0.5
                                   if report["cpu_tile_seconds"]["shipped"] is not None else None),
        "full_view_at_most_8_s": report["full_view_seconds_median"] <= 8.0 if dev.type == "cpu" else None,
        "peak_memory_under_2.5_GB": report["peak_rss_mb_after_full_view"] < 2500,
    }
    return report
