"""``make gpu-check``: the CUDA path's figures in one run, written as JSON section by section.

On a machine lent a GPU, one run (within 8 minutes on an H100/H200) gives:

- ``environment``: the GPU, PyTorch, CUDA and cuDNN versions;
- ``tests``: the test subset marked ``gpu`` (``pytest -m gpu``), its counts and time;
- ``tile``: one 1024 tile of real tissue run every way (eager fp32, eager bf16, folded channels_last fp32, the shipped
  path, a CUDA graph), each mask compared with eager fp32's, at 1 and at 8 tiles per batch;
- ``tile_compiled``: the same with ``torch.compile`` (its compile time apart), last because it takes longest;
- ``whole_view``: a full-size synthetic CC view, DICOM to lesion list, at one tile per batch and at 16, against the
  same view on the CPU (lesion count and mask Dice);
- ``two_pass_whole_view``: the same view through both passes of a two-pass model (the coarse search, then the fine
  1024 ROI at 0.1 mm on each candidate), with the fine tiles it ran. When the model in use is one-pass, its coarse
  pass is paired with a stand-in fine pass (its own weights on the paper's tile and spacing): the time and the
  tiles are the two-pass path's, its lesions mean nothing, and the JSON says so (``stand_in_fine_pass``);
- ``training``: training throughput at batch 64 (the real loss and optimiser step, ``model.jobs.timing``).

The JSON file is rewritten atomically after each section, so a run cut short keeps what it measured.
``--device cpu --quick`` runs every section small on a CPU (the tests do that)."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model.evaluate.bench import synthetic_cc_view, variant_error
from model.fileio import atomic_write_json

GPU_TEST_MARK = "gpu"
VIEW_BATCHES = (1, 16)
FINE_STAND_IN = (0.1, 1024)  # the stand-in fine pass's working spacing (mm) and tile: the paper's protocol


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def environment(device) -> dict:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
           "cpu_cores": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}",
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   bf16=torch.cuda.is_bf16_supported())
    return out


def run_gpu_tests(timeout_s: float) -> dict:
    """``pytest -m gpu`` in a child, so a crash there (a CUDA error) cannot end the check."""
    command = [sys.executable, "-m", "pytest", "-q", "-m", GPU_TEST_MARK, "-p", "no:cacheprovider", "tests/model"]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout_s:.0f} s", "seconds": time.perf_counter() - start}
    tail = (done.stdout + done.stderr).strip().splitlines()
    return {"returncode": done.returncode, "seconds": time.perf_counter() - start,
            "summary": tail[-1] if tail else "", "output_tail": tail[-40:]}


def whole_view(model, device, image: str, repeats: int) -> dict:
    """The view through :class:`Predictor` at each batch size (a cold run, then the median of ``repeats``), and once on
    the CPU for comparison."""
    import torch

    from model.infer.compare import dice
    from model.infer.predictor import InferenceConfig, Predictor

    out: dict = {"image_size": None, "batches": {}}
    reference = Predictor(model, "cpu", cache_dir=None)
    start = time.perf_counter()
    cpu_result = reference.predict(image, use_cache=False)
    out["cpu_seconds"] = time.perf_counter() - start
    out["cpu_lesions"] = len(cpu_result.lesions)
    out["cpu_fine_tiles"] = cpu_result.fine_rois
    out["image_size"] = [cpu_result.rows, cpu_result.columns]
    threshold = model.scoring.threshold  # what the lesions are listed at (a two-pass model: its fine pass's)
    cpu_mask = cpu_result.mask(threshold)
    for batch in VIEW_BATCHES:
        row: dict = {}
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            predictor = Predictor(model, str(device), config=InferenceConfig(batch=batch), cache_dir=None)
            start = time.perf_counter()
            result = predictor.predict(image, use_cache=False)
            row["cold_seconds"] = time.perf_counter() - start
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                result = predictor.predict(image, use_cache=False)
                runs.append(time.perf_counter() - start)
            row.update(seconds_median=statistics.median(runs), seconds_runs=runs,
                       tiles=predictor.segmenter.last_tile_count, tile_size=predictor.config.tile,
                       fine_tiles=result.fine_rois, lesions=len(result.lesions),
                       mask_dice_vs_cpu=dice(result.mask(threshold), cpu_mask),
                       description=predictor.device_description)
            if device.type == "cuda":
                row["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        except Exception as exc:  # noqa: BLE001 - one batch size that fails is a finding; the others still run
            row = {"error": variant_error(exc)}
        out["batches"][str(batch)] = row
        _log(f"  whole view, batch {batch}: {row.get('seconds_median', float('nan')):.3f} s median, "
             f"{row.get('lesions')} lesions (CPU {out['cpu_lesions']} in {out['cpu_seconds']:.2f} s)")
    return out


def two_pass_model(model, fine: tuple[float, int] = FINE_STAND_IN, *, fine_tile: int | None = None):
    """``model`` when it is two-pass; else its coarse pass with a stand-in fine pass: a copy of its own network with
    a card at ``fine``'s working spacing and tile. ``fine_tile``: a real pair's fine tile made this size (a quick
    dry run). Returns (the pair, whether the fine pass is a stand-in)."""
    import copy
    from dataclasses import replace

    from model.nn.weights import LoadedModel

    if model.two_pass:
        if fine_tile is None:
            return model, False
        part = LoadedModel(net=model.fine.net, card=replace(model.fine.card, tile_size=fine_tile), path=model.fine.path)
        return LoadedModel(net=model.net, card=model.card, path=model.path, fine=part), False
    spacing, tile = fine
    card = replace(model.card, tile_size=tile, preprocess=replace(model.preprocess, working_spacing_mm=spacing))
    part = LoadedModel(net=copy.deepcopy(model.net), card=card, path=None)
    return LoadedModel(net=model.net, card=model.card, path=model.path, fine=part), True


def two_pass_view(model, device, image: str, repeats: int, fine: tuple[float, int] = FINE_STAND_IN,
                  quick: bool = False) -> dict:
    """The whole view through both passes (:func:`whole_view` of :func:`two_pass_model`): each batch size's time,
    the coarse and fine tiles, against the CPU. ``quick``: the fine tile is ``fine``'s, a real pair's too."""
    from model.nn.passes import passes

    pair, stand_in = two_pass_model(model, fine, fine_tile=fine[1] if quick else None)
    out = {"passes": passes(pair.card, pair.fine.card), "stand_in_fine_pass": stand_in}
    if stand_in:
        out["note"] = (f"the model in use ({model.version}) is one-pass: its coarse pass with a stand-in fine pass (its "
                       f"own weights at {fine[0]:g} mm, tile {fine[1]}); the time and the tiles are the two-pass "
                       "path's, its lesions mean nothing")
    return {**out, **whole_view(pair, device, image, repeats)}


def training(device, shapes: list[tuple[int, int, bool]], steps: int) -> dict:
    """Training throughput, tiles per second, for each (tile, batch, bf16): the loop's own step, timed by
    model.jobs.timing."""
    from model.jobs.timing import time_units
    from model.train.config import TrainConfig

    out = {}
    for tile, batch, bf16 in shapes:
        name = f"tile{tile}_batch{batch}_{'bf16' if bf16 else 'fp32'}"
        try:
            config = TrainConfig(device=str(device), tile=tile, micro_batch=batch, batch_size=batch, bf16=bf16,
                                 working_spacing_mm=0.4)
            units = time_units(config, None, steps=steps)
            out[name] = {"tiles_per_s": 1.0 / units.train_sample_s, "step_seconds_median": units.train_sample_s * units.batch,
                         "batch": units.batch}
            _log(f"  training {name}: {out[name]['tiles_per_s']:.1f} tiles/s")
        except Exception as exc:  # noqa: BLE001 - out of memory at one shape must not hide the others
            out[name] = {"error": variant_error(exc)}
            _log(f"  training {name}: failed ({type(exc).__name__})")
    return out


def run(out_path: Path, *, device_name: str = "cuda", quick: bool = False, tests: bool = True,
        tests_timeout_s: float = 240.0) -> dict:
    import torch

    from model.evaluate.bench import bench_tile, device_tile_variants
    from model.nn.passes import passes
    from model.nn.runtime import resolve_device
    from model.nn.weights import load_model, random_model
    from model.registry.resolve import resolve_model
    from model.errors import ModelFileError

    began = time.perf_counter()
    device = resolve_device(device_name)
    report: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick}

    def save(section: str, value) -> None:
        report[section] = value
        report["seconds_so_far"] = time.perf_counter() - began
        atomic_write_json(out_path, report)

    save("environment", environment(device))
    _log(f"gpu-check on {report['environment'].get('gpu', device)} -> {out_path}")
    try:
        model_path = resolve_model(None)
    except ModelFileError:
        model_path = None
    model = load_model(model_path) if model_path else random_model(0)
    save("model", {"version": model.version, "tile_size": model.tile_size,
                   "working_spacing_mm": model.preprocess.working_spacing_mm, "two_pass": model.two_pass,
                   "passes": passes(model.card, model.fine.card if model.fine is not None else None)})
    if tests:
        _log("tests marked gpu ...")
        save("tests", run_gpu_tests(tests_timeout_s))
        _log(f"  {report['tests'].get('summary') or report['tests'].get('error')}")
    with tempfile.TemporaryDirectory(prefix="bcir-gpu-check-") as tmp:
        _log("writing one synthetic patient ...")
        image = synthetic_cc_view(Path(tmp) / "view", "small" if quick else "full")
        tile = bench_tile(image, model, 256 if quick else 1024)
        _log("tile variants ...")
        try:
            # a dry run leaves out the bf16 variants: on a CPU without native bf16 they are emulated, at 10-16 s a
            # 256-px tile where fp32 takes a quarter of one, and they took most of its minutes
            tiles = device_tile_variants(model, str(device), tile, repeats=2 if quick else 20, compile_modes=(),
                                         log=_log, only=("folded_channels_last_fp32", "shipped") if quick else None)
            # a dry run times the batch of 8 the shipped way only
            tiles["batch8"] = device_tile_variants(model, str(device), tile.repeat(8, 1, 1, 1),
                                                   repeats=2 if quick else 10, compile_modes=(), log=_log,
                                                   only=("shipped",) if quick else None)
        except Exception as exc:  # noqa: BLE001 - the later sections still run
            tiles = {"error": variant_error(exc)}
        save("tile", tiles)
        _log("whole view ...")
        try:
            save("whole_view", whole_view(model, device, image, repeats=1 if quick else 3))
        except Exception as exc:  # noqa: BLE001
            save("whole_view", {"error": variant_error(exc)})
        _log("two-pass whole view ...")
        try:
            save("two_pass_whole_view", two_pass_view(model, device, image, repeats=1 if quick else 3,
                                                      fine=(FINE_STAND_IN[0], 256) if quick else FINE_STAND_IN,
                                                      quick=quick))
        except Exception as exc:  # noqa: BLE001
            save("two_pass_whole_view", {"error": variant_error(exc)})
        _log("training throughput ...")
        shapes = [(64, 2, False)] if quick else [(256, 64, True), (256, 64, False), (1024, 16, True)]
        save("training", training(device, shapes, steps=1 if quick else 5))
        if not quick:  # last, since compiling takes the longest: a run cut short has everything else
            _log("tile variants with torch.compile ...")
            try:
                save("tile_compiled", device_tile_variants(model, str(device), tile, repeats=20,
                                                           compile_modes=("default",), cuda_graph=False, log=_log))
            except Exception as exc:  # noqa: BLE001
                save("tile_compiled", {"error": variant_error(exc)})
    if device.type == "cuda":
        report["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    save("finished", True)
    _log(f"done in {report['seconds_so_far']:.0f} s")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.cli.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="the JSON file (default gpu-check.json)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    parser.add_argument("--quick", action="store_true", help="every section small: a dry run of the check itself")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the tests marked gpu")
    args = parser.parse_args(argv)
    from model.errors import BcirError

    try:
        run(args.out, device_name=args.device, quick=args.quick, tests=not args.skip_tests)
    except BcirError as exc:  # no CUDA GPU here, a bad --device: one line (ConfigError)
        print(f"gpu-check: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
