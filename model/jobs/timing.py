"""Timing a retrain's units on this machine: a few real training steps, a validation pass, the gate's reading.

:func:`time_units` does the timing; :func:`time_units_in_child` runs it in
``python -m model.jobs.timing`` (:data:`TIMING_MODULE`), started and niced as
the training child is (model.jobs.process), so that it sees what the training
will see and the viewer never waits. model.jobs.estimate turns the units into
the run's length.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from model.errors import Cancelled
from model.jobs.estimate import UnitTimes
from model.train.cache import is_cached, train_cache_dir
from model.jobs.process import lower_priority, start_child

TIMING_MODULE = "model.jobs.timing"  # the module whose main times the units in a child
TIMED_STEPS = 3  # after one untimed warm-up step of one tile
TIMING_PIXELS = 2 * 256 * 256  # on a CPU a timed step holds at most this many tile pixels (one tile at least)


def time_units(config, image=None, *, base_model: str | None = None, steps: int = TIMED_STEPS,
               parts=None) -> UnitTimes:
    """Time one image's preparation, ``steps`` training steps on tiles of it, a validation pass, and the image through
    the gate as the gate reads it: with ``base_model`` (the current model, at its own resolution) and with the new
    network (at ``config``'s), each warmed up first. ``image`` None: random tiles, no preparation, no gate.

    ``config.init_weights`` a two-pass model (a fine-tune of one, model.train.two_pass), or ``parts`` given (a new
    pair's coarse and fine configs, JobSpec.parts): the coarse part is timed so and the fine part's steps at its own
    tile go into ``fine``. Fine-tuning a pair, the gate reads the current pair for both models (the new one is a pair
    of the same resolutions); a new pair's gate time counts its coarse pass only (a network not yet trained proposes
    no candidates worth timing a fine pass on)."""
    from model.train.two_pass import is_two_pass, part_configs

    like_base = is_two_pass(config.init_weights)
    if parts is None and like_base:
        parts = part_configs(config)
    if parts is None:
        return _time_part(config, image, base_model=base_model, steps=steps)
    began = time.perf_counter()
    coarse, fine = parts
    units = _time_part(coarse, image, base_model=base_model, steps=steps, new_like_base=like_base)
    units.fine = _time_part(fine, image, steps=steps)
    units.work_s = time.perf_counter() - began
    return units


def _time_part(config, image=None, *, base_model: str | None = None, steps: int = TIMED_STEPS,
               new_like_base: bool = False) -> UnitTimes:
    """:func:`time_units` of one network; ``new_like_base``: the new model reads as the current one does (a pair)."""
    import numpy as np
    import torch

    from model.nn.network import BCirUNet
    from model.data.preprocess import PreprocessConfig
    from model.nn.runtime import resolve_device
    from model.train.loss import compute_loss
    from model.train.data import RoiDataset, build_samples, prepare_image
    from model.nn.card import new_card
    from model.nn.weights import LoadedModel, load_model

    began = time.perf_counter()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    preprocess = PreprocessConfig(working_spacing_mm=config.working_spacing_mm)
    batch = config.micro_batch if device.type == "cuda" else max(1, min(config.micro_batch,
                                                                        TIMING_PIXELS // (config.tile * config.tile)))

    prepare_s = None
    dataset = None
    if image is not None:
        cache = train_cache_dir()
        cached = is_cached(image, preprocess, config.tile, cache)
        start = time.perf_counter()
        prepared = prepare_image(image, preprocess, config.tile, cache)
        if not cached:
            prepare_s = time.perf_counter() - start
        samples = build_samples([prepared], max(config.normal_ratio, 1.0), seed=config.seed)
        if samples:
            dataset = RoiDataset([prepared], samples, config.tile, config.augment_factor)

    def next_batch(step: int, size: int):
        if dataset is None:
            images = torch.randn(size, 1, config.tile, config.tile)
            return images, (images > 1.5).float(), torch.zeros(size), torch.ones(size)
        items = [dataset[(step * batch + k) % len(dataset)] for k in range(size)]
        return tuple(torch.stack([item[j] for item in items]) for j in range(4))

    parent = load_model(config.init_weights) if config.init_weights else None
    mine_image_s = None
    if parent is not None and config.hard_negatives_per_image and dataset is not None:
        mine_image_s = _time_mining(parent, prepared, config, device)
    net = parent.net if parent is not None else BCirUNet(dropout=config.dropout)
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16
                else torch.autocast(device.type, enabled=False))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times, cpu_times = [], []
    for step in range(steps + 1):  # the first step, of one tile, warms up (allocations, cudnn's choice): not timed
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        images, masks, malignant, lesion = next_batch(step, batch if step else 1)
        images, masks, malignant = images.to(device), masks.to(device), malignant.to(device)
        with autocast:
            mask_logits, malignancy_logits = net(images)
        loss = compute_loss(config, mask_logits, malignancy_logits, masks, malignant, lesion.to(device))
        (loss / config.accumulation).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss.detach())  # waits for the step to finish
        sync()
        if step:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    train_sample_s = float(np.median(times)) / batch
    cpu_share = (sum(cpu_times) / (sum(times) * torch.get_num_threads())) if device.type == "cpu" else None

    net.eval()
    with torch.no_grad():
        images = next_batch(steps + 1, batch)[0].to(device)
        net(images[:1])  # warm-up of the eval path
        sync()
        start = time.perf_counter()
        net(images)
        sync()
        val_sample_s = (time.perf_counter() - start) / batch

    gate_image_s = None
    if image is not None:
        from model.data.dicom_io import read_image
        from model.infer.predictor import Predictor
        from model.data.preprocess import prepare

        models = [] if new_like_base and base_model else [
            LoadedModel(net.cpu(), new_card(net, preprocess=preprocess, tile_size=config.tile), None)]
        if base_model:
            models.append(load_model(base_model))
        gate_image_s = 0.0
        for model in models:
            predictor = Predictor(model, str(device), cache_dir=None)
            scoring = model.scoring  # a pair's head reads the fine part's working image
            mammogram = read_image(image.path)
            working, _, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, scoring.preprocess)
            centre = (working.shape[1] / 2, working.shape[0] / 2)
            predictor.malignancy(working, [centre])  # warm-up: the gate reads several images with each predictor
            start = time.perf_counter()
            predictor.predict(image.path, use_cache=False)
            if image.abnormalities:  # the gate prepares an image with lesions once more, for the malignancy head
                mammogram = read_image(image.path)
                working, _, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, scoring.preprocess)
                predictor.malignancy(working, [centre] * len(image.abnormalities))
            gate_image_s += time.perf_counter() - start
        if new_like_base and base_model:
            gate_image_s *= 2  # the new pair reads each image as the current pair does
    label = device.type if device.type == "cpu" else str(device)
    return UnitTimes(train_sample_s=train_sample_s, val_sample_s=val_sample_s, prepare_image_s=prepare_s,
                     gate_image_s=gate_image_s, steps=steps, batch=batch, tile=config.tile, device=label,
                     cpu_share=cpu_share, work_s=time.perf_counter() - began, mine_image_s=mine_image_s)


def _time_mining(parent, prepared, config, device) -> float | None:
    """Seconds the hard-negative mining takes on one image (model.train.hard_negatives, as the run mines), after a
    warm-up run on it; None when the starting model works at another spacing (the run refuses it)."""
    from model.errors import ConfigError
    from model.train.hard_negatives import mine_hard_negatives

    def mine() -> None:
        mine_hard_negatives([prepared], parent, per_image=config.hard_negatives_per_image,
                            spacing_mm=config.working_spacing_mm, device=str(device))

    try:
        mine()  # warm-up: a run mines hundreds of images with one model
    except ConfigError:
        return None
    start = time.perf_counter()
    mine()
    return time.perf_counter() - start


def time_units_in_child(config, image=None, *, base_model: str | None = None, steps: int = TIMED_STEPS,
                        should_stop: Callable[[], bool] | None = None, poll_s: float = 0.1, parts=None) -> UnitTimes:
    """:func:`time_units` in ``python -m model.jobs.timing``, at the training child's priority.

    Cancelled when ``should_stop`` asks (the child is killed); RuntimeError with the child's last line when
    it fails.
    """
    from model.data.study_index import _image_json

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bcir-estimate-") as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({"config": config.to_json(), "steps": steps, "base_model": base_model,
                                       "image": _image_json(image) if image is not None else None,
                                       "parts": [p.to_json() for p in parts] if parts else None}, default=str))
        out_path, err_path = Path(tmp) / "out.json", Path(tmp) / "err.txt"
        with open(err_path, "wb") as err:
            proc = start_child(TIMING_MODULE, [str(request), str(out_path)], output=err)
        try:
            while proc.poll() is None:
                if should_stop and should_stop():
                    proc.kill()
                    proc.wait()
                    raise Cancelled("time estimate stopped")
                time.sleep(poll_s)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0 or not out_path.is_file():
            lines = [line for line in err_path.read_text(errors="replace").splitlines() if line.strip()]
            raise RuntimeError(f"the timing failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
        units = UnitTimes.from_json(json.loads(out_path.read_text()))
    units.seconds = time.perf_counter() - start
    return units


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {TIMING_MODULE}",
                                     description="time the units of a retrain (the child of time_units_in_child)")
    parser.add_argument("request", help="JSON file: {config, image, steps}")
    parser.add_argument("out", help="where to write the UnitTimes JSON")
    args = parser.parse_args(argv)
    from model.fileio import atomic_write_json
    from model.data.study_index import index_from_json
    from model.train.config import TrainConfig

    lower_priority()  # as the training child
    request = json.loads(Path(args.request).read_text())
    config = TrainConfig.from_json(request["config"])
    image = None
    if request.get("image"):
        image = index_from_json({"root": "", "images": [request["image"]], "skipped": []}).images[0]
    parts = tuple(TrainConfig.from_json(p) for p in request["parts"]) if request.get("parts") else None
    units = time_units(config, image, base_model=request.get("base_model"),
                       steps=int(request.get("steps") or TIMED_STEPS), parts=parts)
    atomic_write_json(Path(args.out), units.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["TIMED_STEPS", "TIMING_MODULE", "time_units", "time_units_in_child"]
