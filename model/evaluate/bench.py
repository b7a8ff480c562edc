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


def tile_latencies(model: LoadedModel, device: str = "cpu", repeats: int = 5, tile: int = 1024) -> dict[str, float]:
    """Median seconds per 1024x1024 tile for plain eager fp32 and the shipped path (plus the steps between)."""
    dev = resolve_device(device)
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, tile, tile), dtype=np.float32))
    sync = dev.type == "cuda"
    out = {}
    variants = {"eager_fp32": dict(fast=False), "shipped": dict()}
    if dev.type == "cpu":
        variants = {"eager_fp32": dict(fast=False), "folded_channels_last_fp32": dict(bf16=False), "shipped": dict()}
    for name, kwargs in variants.items():
        runner = Runner.create(model.net, dev, **kwargs)
        out[name] = _median_seconds(lambda: runner.segment(x), repeats, sync=sync)
        if name == "shipped":
            out["shipped_description"] = runner.description
    return out


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
            write_demo_dataset(tmp / "full", patients=1, seed=1, size="full", workers=1)
            image = str(next(p for p in sorted((tmp / "full").rglob("*.dcm")) if "_CC/" in p.as_posix() and "full mammogram" in p.as_posix()))
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
        log("per-tile latency (1024 x 1024) ...")
        dev = resolve_device(device)
        tiles = tile_latencies(model, "cpu", repeats)
        report["cpu_tile_seconds"] = {k: v for k, v in tiles.items() if k != "shipped_description"}
        report["cpu_tile_shipped_path"] = tiles["shipped_description"]
        report["cpu_tile_speedup_vs_eager_fp32"] = tiles["eager_fp32"] / tiles["shipped"]
        if dev.type == "cuda":
            gpu = tile_latencies(model, "cuda", max(repeats, 20))
            report["gpu_tile_seconds"] = {k: v for k, v in gpu.items() if k != "shipped_description"}
            report["gpu_name"] = torch.cuda.get_device_name(dev)
        log("header scan ...")
        write_demo_dataset(tmp / "many", patients=40, seed=2, size="small", workers=1)
        files, rate = header_scan_rate(tmp / "many")
        report["header_scan_files"] = files
        report["header_scan_files_per_s"] = rate
    report["peak_rss_mb"] = peak_rss_mb()
    report["goals"] = {
        "cpu_tile_at_most_0.5_s": report["cpu_tile_seconds"]["shipped"] <= 0.5,
        "full_view_at_most_8_s": report["full_view_seconds_median"] <= 8.0 if dev.type == "cpu" else None,
        "peak_memory_under_2.5_GB": report["peak_rss_mb_after_full_view"] < 2500,
    }
    return report
