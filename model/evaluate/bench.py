"""``bcir bench``: speed of the inference paths, measured in one run so variants compare fairly.

Every way of running a tile (eager, BatchNorm folded with channels_last in fp32 and bf16, the shipped path,
``torch.compile``, ONNX Runtime, OpenVINO; a CUDA graph on a GPU) is timed on the same tiles of real tissue, in
interleaved rounds (each variant once per round, so a change in the machine's load falls on all of them), and each
one's mask is compared with eager fp32's. The throughput is set against the CPU's estimated fp32 FMA peak
(:func:`fma_peak`). A runtime earns its place only if its masks match fp32's (:data:`DICE_BAR`) and it is at least
:data:`SPEEDUP_BAR` times the shipped path (:func:`runtime_verdicts`).
"""

from __future__ import annotations

import copy
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from model.nn.runtime import Runner, available_cores, cpu_flags, resolve_device
from model.nn.weights import LoadedModel

DICE_BAR = 0.99  # a runtime's masks on the bench tiles against eager fp32's
SPEEDUP_BAR = 1.3  # against the shipped path, in the same run
EXPORTED_RUNTIMES = ("onnxruntime", "openvino")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def variant_error(exc: BaseException) -> str:
    """A measurement that failed, as one line for the JSON: the exception's type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def synthetic_views(folder: Path, size: str = "full") -> list[str]:
    """Write one synthetic patient under ``folder`` and return its full mammograms (CC and MLO of both breasts),
    CC views first, and among them those with a lesion first: the view the bench times is one where a two-pass
    model's fine pass has work (a lesion-free view may give it none and a flattering time)."""
    from model.data.synth.cbis_writer import write_demo_dataset

    write_demo_dataset(folder, patients=1, seed=1, size=size, workers=1)
    paths = [p for p in sorted(folder.rglob("*.dcm")) if "full mammogram" in p.as_posix()]

    def has_lesion(path: Path) -> bool:  # CBIS-DDSM's layout: a view's ROI masks lie in the folder VIEW_1 beside it
        study = folder.joinpath(*path.relative_to(folder).parts[:2])  # folder/CBIS-DDSM/<study>/...
        return study.with_name(study.name + "_1").is_dir()

    ordered = sorted(paths, key=lambda p: ("_CC/" not in p.as_posix(), not has_lesion(p)))
    return [p.as_posix() for p in ordered]


def synthetic_cc_view(folder: Path, size: str = "full") -> str:
    """Write one synthetic patient under ``folder`` and return its first CC full mammogram."""
    return synthetic_views(folder, size)[0]


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


def tile_gflop(net: torch.nn.Module, shape: Sequence[int]) -> float:
    """GFLOP of one forward pass of ``net`` on a batch of ``shape`` (a multiply-add counts 2), counted by PyTorch's
    FLOP counter on meta tensors: nothing is computed."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(net).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(*shape, device="meta"))
    return counter.get_total_flops() / 1e9


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _clock_ghz() -> tuple[float | None, str]:
    """The highest clock the kernel states (cpufreq's maximum, what lscpu reports as max MHz), else the ``cpu MHz``
    of /proc/cpuinfo (a virtual machine without cpufreq shows its nominal clock there)."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6, "cpufreq max"
    except (OSError, ValueError):
        pass
    mhz = _cpuinfo_field("cpu MHz")
    try:
        return float(mhz) / 1000, "cpu MHz in /proc/cpuinfo"
    except (TypeError, ValueError):
        return None, "no clock stated"


def fma_peak() -> dict:
    """The CPU's fp32 peak, estimated: cores x clock x 2 FMA units x fp32 lanes of the widest vector its flags name
    x 2 FLOP per FMA. Two FMA units per core is an assumption (Xeon Gold/Platinum and recent desktop cores; some
    parts have one, and AMD's Zen 4 splits a 512-bit FMA in two), and turbo or an AVX-512 clock offset move the
    clock: the figure says how far a path is from the hardware, not a measured ceiling."""
    flags = cpu_flags()
    if "avx512f" in flags:
        lanes, isa, units = 16, "avx512f: 512-bit", 2
    elif {"avx2", "fma"} <= flags or {"avx", "fma"} <= flags:
        lanes, isa, units = 8, "avx2/fma: 256-bit", 2
    else:
        lanes, isa, units = 4, "sse: 128-bit, no FMA (a multiply and an add)", 1
    ghz, clock = _clock_ghz()
    cores = available_cores()
    gflops = cores * ghz * units * lanes * 2 if ghz else None
    return {"gflop_per_s": gflops, "cpu": _cpuinfo_field("model name"), "cores": cores, "ghz": ghz,
            "basis": (f"{cores} cores x {ghz:.2f} GHz ({clock}) x {units} FMA units (assumed) x {lanes} fp32 lanes "
                      f"({isa}) x 2 FLOP per FMA" if ghz else f"unknown: {clock}"),
            "estimate": True}


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


def _interleaved_medians(calls: dict[str, Callable[[], object]], repeats: int, sync: bool) -> dict[str, float]:
    """Median seconds of each call over ``repeats`` rounds, every call once per round in turn: a change in the
    machine's load during the run falls on every variant alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            if sync:
                torch.cuda.synchronize()
            start = time.perf_counter()
            call()
            if sync:
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items() if t}


def device_tile_variants(model: LoadedModel, device: str, tile: torch.Tensor | Sequence[torch.Tensor], *,
                         repeats: int = 20, compile_modes: tuple[str, ...] = ("default",), cuda_graph: bool = True,
                         runtimes: tuple[str, ...] = (), only: tuple[str, ...] | None = None,
                         log: Callable[[str], None] = print) -> dict:
    """Every way of running tiles on ``device``, timed in one run on the same tiles: plain eager fp32, eager bf16,
    BatchNorm folded with channels_last in fp32, in TF32 (on CUDA) and in bf16, the shipped path (model.nn.runtime
    says which of those it is on this device), the shipped path through ``torch.compile`` (its compile time apart),
    on CUDA replayed from a CUDA graph, and on the CPU the exported ``runtimes`` (``onnxruntime``: fp32;
    ``openvino``: f32, and OpenVINO's own precision where that differs; export and load times apart).

    ``tile``: one batch, run as one call; or a sequence of tiles, each run as its own call (a whole view's tiles are
    run one by one), the per-tile figures averaged over them. The first call of each variant is its warm-up and
    gives its mask, compared with eager fp32's (Dice, pooled over the tiles, and each tile's); then every variant runs
    once per round for ``repeats`` rounds and the median is kept. A variant that fails is recorded with its reason and
    the others go on. ``only``: the names of the variants to run (eager fp32, the reference, always runs).
    """
    dev = resolve_device(device)
    sync = dev.type == "cuda"
    tiles = [tile] if isinstance(tile, torch.Tensor) else list(tile)
    n_tiles = sum(t.shape[0] for t in tiles)
    bf16 = torch.bfloat16 if (dev.type == "cpu" or torch.cuda.is_bf16_supported()) else torch.float16
    out: dict = {"tile_shape": list(tiles[0].shape), "tiles": n_tiles, "calls_per_round": len(tiles), "variants": {}}
    wanted = (lambda name: only is None or name == "eager_fp32" or name in only)
    calls: dict[str, Callable[[], object]] = {}
    outputs: dict[str, list[torch.Tensor]] = {}

    def add(name: str, make: Callable[[], object], extra: Callable[[object], dict] | None = None) -> object | None:
        """Build the variant (timed apart: a compile, an export), run it once on every tile (its warm-up and its
        masks); None when it fails."""
        if not wanted(name):
            return None
        try:
            start = time.perf_counter()
            runner = make()
            built = time.perf_counter() - start
            outputs[name] = [runner.segment(t)[0] for t in tiles]
        except Exception as exc:  # noqa: BLE001 - a variant this device or build cannot run is a finding, not a stop
            out["variants"][name] = {"error": variant_error(exc)}
            log(f"  {name}: failed ({variant_error(exc)[:160]})")
            return None
        out["variants"][name] = {"build_seconds": built, **(extra(runner) if extra else {})}
        calls[name] = lambda: [runner.segment(t) for t in tiles]
        log(f"  {name}: ready ({built:.1f} s to build)")
        return runner

    def described(runner) -> dict:
        return {"description": runner.description}

    add("eager_fp32", lambda: Runner.create(model.net, dev, fast=False))
    eager_name = "eager_" + {torch.bfloat16: "bf16", torch.float16: "fp16"}[bf16]
    add(eager_name, lambda: Runner(copy.deepcopy(model.net).eval().to(dev), dev, bf16, False))
    add("folded_channels_last_fp32", lambda: Runner.create(model.net, dev, bf16=False))
    if dev.type == "cuda":
        add("folded_channels_last_tf32", lambda: Runner.create(model.net, dev, bf16=False, tf32=True))
    add("folded_channels_last_bf16", lambda: Runner.create(model.net, dev, bf16=True))
    shipped = add("shipped", lambda: Runner.create(model.net, dev), described)
    for mode in compile_modes:
        if shipped is None and wanted(f"shipped_compiled_{mode}"):
            shipped = Runner.create(model.net, dev)
        # the first call compiles: build_seconds is the compile time
        add(f"shipped_compiled_{mode}", lambda mode=mode: _Compiled(shipped, mode, tiles[0], sync),
            lambda runner: {"compile_seconds": runner.compile_seconds})
    if cuda_graph and dev.type == "cuda" and wanted("shipped_cuda_graph"):
        add("shipped_cuda_graph", lambda: _GraphRunner(shipped or Runner.create(model.net, dev), tiles[0]))
    if dev.type == "cpu" and runtimes and any(wanted(n) for n in ("onnxruntime_fp32", "openvino_fp32",
                                                                  "openvino_auto")):
        _exported_variants(model, runtimes, out, add)
    for name, row in out["variants"].items():
        if name in outputs:
            row["mask_vs_eager_fp32"] = mask_agreement(torch.cat(outputs["eager_fp32"]), torch.cat(outputs[name]))
            if len(tiles) > 1:
                row["mask_dice_per_tile"] = [mask_agreement(a, b)["dice"]
                                             for a, b in zip(outputs["eager_fp32"], outputs[name])]
            row["max_abs_logit_difference"] = float(max((a - b).abs().max() for a, b in
                                                        zip(outputs["eager_fp32"], outputs[name])))
    out["load_average_before"] = list(os.getloadavg())
    medians = _interleaved_medians(calls, repeats, sync)
    out["load_average_after"] = list(os.getloadavg())
    out["gflop_per_tile"] = tile_gflop(model.net, (1, *tiles[0].shape[1:]))
    peak = fma_peak() if dev.type == "cpu" else None
    if peak:
        out["fma_peak"] = peak
    eager = medians.get("eager_fp32")
    for name, seconds in medians.items():
        row = out["variants"][name]
        per_tile = seconds / n_tiles
        row.update(seconds_median=seconds, seconds_per_tile=per_tile, tiles_per_s=1.0 / per_tile,
                   gflop_per_s=out["gflop_per_tile"] / per_tile)
        if peak and peak["gflop_per_s"]:
            row["percent_of_fma_peak"] = 100.0 * row["gflop_per_s"] / peak["gflop_per_s"]
        if eager:
            row["speedup_vs_eager_fp32"] = eager / seconds
        log(f"  {name}: {per_tile * 1000:.1f} ms per tile, mask Dice vs eager fp32 "
            f"{row['mask_vs_eager_fp32']['dice']:.4f}")
    return out


def _exported_variants(model: LoadedModel, runtimes: tuple[str, ...], out: dict, add: Callable) -> None:
    """The ONNX export (once, from the cache beside the model when it is there: its time in ``out["onnx_export"]``)
    and the variants that run it: ONNX Runtime fp32, OpenVINO f32 and, where the CPU has bf16, OpenVINO's own
    precision choice. A runtime that is not installed is recorded with its one-line reason."""
    from model.nn.exported import OnnxRuntimeRunner, OpenVinoRunner, export_onnx, runtime_problem

    try:
        exported = export_onnx(model)
    except Exception as exc:  # noqa: BLE001 - the exporter missing or failing on this network is a finding
        out["onnx_export"] = {"error": variant_error(exc)}
        return
    out["onnx_export"] = {"seconds": exported.export_seconds, "from_cache": exported.export_seconds == 0.0,
                          "segment": str(exported.segment), "classify": str(exported.classify),
                          "bytes": exported.segment.stat().st_size + exported.classify.stat().st_size}

    def runner(runtime: str, make: Callable[[], object]) -> Callable[[], object]:
        def build():
            problem = runtime_problem(runtime)
            if problem:
                raise RuntimeError(problem)
            return make()
        return build

    def described(built) -> dict:
        return {"description": built.description}

    if "onnxruntime" in runtimes:
        add("onnxruntime_fp32", runner("onnxruntime", lambda: OnnxRuntimeRunner(exported)), described)
    if "openvino" in runtimes:
        add("openvino_fp32", runner("openvino", lambda: OpenVinoRunner(exported)), described)
        if cpu_flags() & {"avx512_bf16", "amx_bf16", "avx512_fp16"}:  # where OpenVINO's own choice is not f32
            add("openvino_auto", runner("openvino", lambda: OpenVinoRunner(exported, precision="auto")), described)


class _Compiled:
    """A runner's network through ``torch.compile``; building it runs the first call, which compiles."""

    def __init__(self, runner: Runner, mode: str, example: torch.Tensor, sync: bool):
        self.runner = Runner(torch.compile(runner.net, mode=None if mode == "default" else mode), runner.device,
                             runner.autocast_dtype, runner.channels_last, runner.tf32)
        start = time.perf_counter()
        self.runner.segment(example)
        if sync:
            torch.cuda.synchronize()
        self.compile_seconds = time.perf_counter() - start
        self.description = f"{runner.description}, torch.compile {mode}"

    def segment(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.runner.segment(batch)


def runtime_verdicts(variants: dict, *, baseline: str = "shipped") -> dict:
    """For each variant but eager fp32: whether its masks match fp32's (Dice >= DICE_BAR over the bench tiles), its
    speed against ``baseline`` in the same run, and whether it meets both bars (at least SPEEDUP_BAR times as fast)."""
    base = variants.get(baseline, {}).get("seconds_median")
    out = {}
    for name, row in variants.items():
        if name == "eager_fp32" or "seconds_median" not in row:
            continue
        dice = row["mask_vs_eager_fp32"]["dice"]
        speedup = base / row["seconds_median"] if base else None
        out[name] = {"dice_vs_fp32": dice, "matches_fp32": dice >= DICE_BAR, f"speedup_vs_{baseline}": speedup,
                     "meets_both_bars": bool(dice >= DICE_BAR and speedup is not None and speedup >= SPEEDUP_BAR)}
    return out


def _default_variant(model: LoadedModel) -> str:
    """The tile variant that ``runtime="auto"`` runs on this CPU: the shipped torch path, or an exported runtime."""
    from model.nn.exported import make_runner

    runtime = getattr(make_runner(model, "cpu"), "runtime", "torch")
    return {"onnxruntime": "onnxruntime_fp32", "openvino": "openvino_fp32"}.get(runtime, "shipped")


def _seconds(variants: dict) -> dict:
    """Median seconds per tile per variant; None for a variant that failed (``_errors`` says why)."""
    return {k: v.get("seconds_per_tile") for k, v in variants.items()}


def _errors(variants: dict) -> dict:
    return {k: v["error"] for k, v in variants.items() if "error" in v}


def header_scan_rate(folder: Path) -> tuple[int, float]:
    from model.data.study_index import list_files, scan_headers

    files, _ = list_files(folder)
    start = time.perf_counter()
    n = sum(1 for _ in scan_headers(files, workers=1))
    return n, n / max(time.perf_counter() - start, 1e-9)


VIEW_RATIO_TARGET = 1.5  # issue 15: a whole CC view, both passes, at most 1.5x one plain eager fp32 1024 tile
VIEW_MEMORY_TARGET_MB = 1024.0  # and its peak memory under 1 GB
MEMORY_HOW = ("a fresh Python process loads the model, then runs the whole view once, cold (what a reader's first "
              "view costs): peak RSS is that process's resident high-water mark (VmHWM of /proc/self/status, its own "
              "memory since exec; getrusage's ru_maxrss is not used, as it carries the parent's mark across fork and "
              "exec), everything included (interpreter, torch and the runtime's libraries, both parts' weights, numpy "
              "and the runtime's buffers); before_view is the mark after the model was loaded; numpy_peak is "
              "tracemalloc's peak of the Python and numpy allocations during the view (torch's and the runtimes' own "
              "allocators are not traced: only the RSS mark sees them)")


def _status_mb(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status (VmHWM, VmRSS) in MB; None where there is none (not Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_now_mb() -> float | None:
    """The process's resident set now, MB."""
    return _status_mb("VmRSS")


def _own_peak_rss_mb() -> tuple[float, str]:
    """This process's resident high-water mark, MB, and how it was read: VmHWM (Linux: this process's own memory
    since exec), else getrusage's ru_maxrss (which, on Linux, a child inherits from its parent at fork)."""
    hwm = _status_mb("VmHWM")
    return (hwm, "VmHWM") if hwm is not None else (peak_rss_mb(), "ru_maxrss")


def _view_memory_child(args: dict) -> dict:
    """Run in a fresh process by :func:`view_memory`: load the model, run the whole view once, report the marks."""
    import tracemalloc

    from model.infer.predictor import Predictor
    from model.nn.weights import load_model

    started, method = _own_peak_rss_mb()
    model = load_model(args["model"])
    predictor = Predictor(model, "cpu", runtime=args["runtime"])
    loaded, _ = _own_peak_rss_mb()
    tracemalloc.start()
    start = time.perf_counter()
    result = predictor.predict(args["image"], use_cache=False)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_rss_mb": _own_peak_rss_mb()[0], "method": method, "rss_after_imports_mb": started,
            "rss_before_view_mb": loaded,
            "numpy_peak_mb": traced_peak / 2**20, "rss_after_view_mb": _rss_now_mb(),
            "seconds_with_tracing": seconds, "fine_tiles": result.fine_rois, "lesions": len(result.lesions),
            "runtime": getattr(predictor.runner, "runtime", "torch"), "threads": torch.get_num_threads()}


def view_memory(model: LoadedModel, image: str | Path, *, runtime: str = "torch", timeout_s: float = 600.0) -> dict:
    """The whole view's peak memory, measured in a fresh child process (see :data:`MEMORY_HOW`): a process that has
    run other things (the tile comparison, a compile) keeps their high-water mark, so only a fresh one measures the
    view. A model without a file is written to a temporary one first (the child loads it as the app would)."""
    import json
    import subprocess
    import sys

    from model.nn.weights import save_model, save_pair

    with tempfile.TemporaryDirectory(prefix="bcir-bench-memory-") as tmp:
        path = model.path
        if path is None:
            path = Path(tmp) / "model.safetensors"
            if model.fine is not None:
                save_pair(LoadedModel(model.net, model.card, None), model.fine, path)
            else:
                save_model(model.net, model.card, path)
        code = ("import json, sys\nfrom model.evaluate.bench import _view_memory_child\n"
                "print('BCIR-MEMORY ' + json.dumps(_view_memory_child(json.loads(sys.argv[1]))))")
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        args = json.dumps({"model": str(path), "image": str(image), "runtime": runtime})
        try:
            done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True,
                                  timeout=timeout_s, env=env, cwd=root)
        except subprocess.TimeoutExpired:
            return {"error": f"the child process did not finish within {timeout_s:.0f} s", "how": MEMORY_HOW}
    lines = [l for l in done.stdout.splitlines() if l.startswith("BCIR-MEMORY ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the child process failed (exit {done.returncode}): {tail}"[:300], "how": MEMORY_HOW}
    out = json.loads(lines[-1][len("BCIR-MEMORY "):])
    out["view_increase_mb"] = out["peak_rss_mb"] - out["rss_before_view_mb"]
    out["how"] = MEMORY_HOW
    return out


def view_against_eager_tile(model: LoadedModel, image: str | Path, *, runtime: str = "auto", repeats: int = 3,
                            tile_size: int = 1024, memory: bool = True,
                            log: Callable[[str], None] = print) -> dict:
    """A whole CC view, DICOM to lesion list, on the CPU (``Predictor.predict`` without the cache: both passes for
    a two-pass model) against one plain eager fp32 ``tile_size`` tile, timed in the same run: each once to warm up,
    then in ``repeats`` interleaved rounds (a change in the machine's load falls on both), medians kept; the ratio
    is the view's median over the tile's (the target: at most :data:`VIEW_RATIO_TARGET`). The tile is the paper's
    ROI run by the part that looks closer (the fine part of a pair): its network on its own working image of the
    view, centred. With ``memory``, the view's peak memory from a fresh child process (:func:`view_memory`)."""
    from model.infer.predictor import Predictor
    from model.nn.passes import passes

    scoring = model.scoring
    predictor = Predictor(model, "cpu", runtime=runtime)
    eager = Runner.create(scoring.net, "cpu", fast=False)
    tile = bench_tile(image, scoring, tile_size)
    start = time.perf_counter()
    result = predictor.predict(image, use_cache=False)
    cold = time.perf_counter() - start
    eager.segment(tile)
    results = []

    def view() -> None:
        results.append(predictor.predict(image, use_cache=False))

    load_before = list(os.getloadavg())
    times: dict[str, list[float]] = {"view": [], "eager_tile": []}
    for _ in range(repeats):
        for name, call in (("view", view), ("eager_tile", lambda: eager.segment(tile))):
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    view_s, tile_s = statistics.median(times["view"]), statistics.median(times["eager_tile"])
    last = results[-1] if results else result
    out = {
        "two_pass": model.two_pass, "passes": passes(model.card, model.fine.card if model.fine else None),
        "runtime": getattr(predictor.runner, "runtime", "torch"), "device": predictor.device_description,
        "view_shape": [last.rows, last.columns], "view_seconds_median": view_s, "view_seconds_runs": times["view"],
        "view_cold_seconds": cold, "coarse_tiles": predictor.segmenter.last_tile_count,
        "coarse_tile_size": predictor.config.tile, "fine_tiles": last.fine_rois,
        "fine_tile_size": model.fine.tile_size if model.fine is not None else None, "lesions": len(last.lesions),
        "eager_tile_size": tile_size, "eager_tile_seconds_median": tile_s, "eager_tile_seconds_runs": times["eager_tile"],
        "ratio_view_to_eager_tile": view_s / tile_s, "ratio_target": VIEW_RATIO_TARGET, "repeats": repeats,
        "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
        "how": (f"the view (DICOM read, both passes, lesion list; no cache) and one plain eager fp32 {tile_size} tile "
                f"of the scoring part, each once to warm up, then {repeats} interleaved rounds; medians"),
    }
    log(f"  whole view {view_s:.2f} s median ({out['coarse_tiles']} coarse tiles"
        + (f", {out['fine_tiles']} fine tiles" if model.two_pass else "") + f"), eager fp32 {tile_size} tile "
        f"{tile_s:.2f} s: {out['ratio_view_to_eager_tile']:.2f}x")
    del predictor, eager
    if memory:
        log("  the view's peak memory, in a fresh process ...")
        out["memory"] = view_memory(model, image, runtime=out["runtime"])
        if "peak_rss_mb" in out["memory"]:
            log(f"  peak RSS {out['memory']['peak_rss_mb']:.0f} MB ({out['memory']['rss_before_view_mb']:.0f} MB "
                "after loading the model)")
    return out


def view_goals(section: dict) -> dict:
    """The issue's two targets for the view, from the measured figures (None where not measured)."""
    memory = section.get("memory") or {}
    peak = memory.get("peak_rss_mb")
    return {"view_at_most_1.5x_eager_fp32_tile": section["ratio_view_to_eager_tile"] <= VIEW_RATIO_TARGET,
            "view_peak_memory_under_1_GB": peak < VIEW_MEMORY_TARGET_MB if peak is not None else None}


def run_bench(model: LoadedModel, *, device: str = "auto", runtime: str = "auto", repeats: int = 5,
              image: str | None = None, compile_cpu: bool = True, view_repeats: int = 3,
              log: Callable[[str], None] = print) -> dict:
    """The whole view on ``runtime`` against one plain eager fp32 1024 tile on the CPU, with its peak memory
    (:func:`view_against_eager_tile`; on a GPU device the view is also timed there), then the CPU's tile comparison
    on the bench tiles (each full view of the synthetic patient, or ``image``), the GPU's where there is one, and
    header scanning."""
    from model.infer.predictor import Predictor
    from model.data.synth.cbis_writer import write_demo_dataset

    report: dict = {"device": None, "model_version": model.version}
    with tempfile.TemporaryDirectory(prefix="bcir-bench-") as tmp:
        tmp = Path(tmp)
        if image is None:
            log("writing one full-size synthetic patient (4 views of about 4600 x 2900, 16-bit)...")
            views = synthetic_views(tmp / "full")
            image = views[0]
        else:
            views = [image]
        dev = resolve_device(device)
        log(f"whole CC view, DICOM to lesion list{', both passes' if model.two_pass else ''}, on the CPU, against one "
            "plain eager fp32 1024 tile in the same run ...")
        view = view_against_eager_tile(model, image, runtime=runtime, repeats=view_repeats, log=log)
        report["view_vs_eager_tile"] = view
        if dev.type == "cpu":  # the view's figures are the CPU's, measured above
            report["device"] = view["device"]
            report["runtime"] = view["runtime"]
            report["full_view_seconds_median"] = view["view_seconds_median"]
            report["full_view_seconds_runs"] = view["view_seconds_runs"]
            report["full_view_shape"] = view["view_shape"]
            report["full_view_tiles"] = view["coarse_tiles"]
            report["full_view_tile_size"] = view["coarse_tile_size"]
        else:
            predictor = Predictor(model, device, runtime=runtime)
            report["device"] = predictor.device_description
            report["runtime"] = getattr(predictor.runner, "runtime", "torch")
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
            del predictor
        report["full_view_fine_tiles"] = view["fine_tiles"]
        report["peak_rss_mb_after_full_view"] = peak_rss_mb()
        log(f"per-tile latency (1024 x 1024, the working image of {len(views)} view(s)), every path in interleaved "
            "rounds, each mask against eager fp32's ...")
        tiles = [bench_tile(view, model) for view in views]
        cpu = device_tile_variants(model, "cpu", tiles, repeats=repeats,
                                   compile_modes=("default",) if compile_cpu else (), cuda_graph=False,
                                   runtimes=EXPORTED_RUNTIMES,
                                   only=("folded_channels_last_fp32", "folded_channels_last_bf16", "shipped",
                                         "shipped_compiled_default", "onnxruntime_fp32", "openvino_fp32",
                                         "openvino_auto"), log=log)
        variants = cpu["variants"]
        report["cpu_tiles"] = cpu
        report["cpu_tile_seconds"] = _seconds(variants)
        report["cpu_tile_shipped_path"] = variants.get("shipped", {}).get("description")
        report["cpu_default_variant"] = _default_variant(model)
        report["cpu_tile_mask_dice_vs_eager_fp32"] = {k: v["mask_vs_eager_fp32"]["dice"] for k, v in variants.items()
                                                     if "mask_vs_eager_fp32" in v and k != "eager_fp32"}
        report["cpu_tile_speedup_vs_eager_fp32"] = variants.get("shipped", {}).get("speedup_vs_eager_fp32")
        report["cpu_tile_errors"] = _errors(variants)
        report["cpu_runtime_verdicts"] = runtime_verdicts(variants)
        # against the bf16 path the CPU shipped before its masks were measured against fp32's (model.nn.runtime)
        report["cpu_runtime_verdicts_vs_bf16_path"] = runtime_verdicts(variants, baseline="folded_channels_last_bf16")
        if dev.type == "cuda":
            gpu = device_tile_variants(model, str(dev), tiles[0], repeats=max(repeats, 20), compile_modes=(),
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
    default_s = report["cpu_tile_seconds"].get(report["cpu_default_variant"])
    report["goals"] = {
        "cpu_tile_at_most_0.5_s": default_s <= 0.5 if default_s is not None else None,
        "full_view_at_most_8_s": report["full_view_seconds_median"] <= 8.0 if dev.type == "cpu" else None,
        "peak_memory_under_2.5_GB": report["peak_rss_mb_after_full_view"] < 2500,
        **view_goals(report["view_vs_eager_tile"]),
    }
    return report
