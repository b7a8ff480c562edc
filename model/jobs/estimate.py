"""How long a retrain will take, said before it starts: a short real timing, scaled by the run's size.

Two parts. :func:`count_run` counts, from the folder's index and the
TrainConfig, what the run will do: images to preprocess (those not already in
the training cache), tiles an epoch (one per lesion plus ``normal_ratio`` as
many lesion-free ones, times ``augment_factor``), micro-batches an epoch,
validation tiles, and the images the safety gate reads (twice: the current and
the new model). :func:`time_units` times, on this machine and the chosen device,
one image's preprocessing, a few training steps on real tiles of that image at
the chosen tile size, a validation pass and one whole-view inference.
:func:`estimate` multiplies the two. The timing runs in a child process
(``python -m model.jobs.estimate``, at the training child's lower priority)
so that it sees what the training child will see, and the viewer never waits.

The result is an estimate, and says so: "from N timed steps of B tiles". It is
the longest the run can take at ``max_epochs``; an early stop or a time budget
ends it sooner (the budget is counted in).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TIMED_STEPS = 3  # after one untimed warm-up step of one tile
TIMING_PIXELS = 2 * 256 * 256  # on a CPU a timed step holds at most this many tile pixels (one tile at least)
BUSY_SHARE = 0.6  # the timed steps got less than this share of the CPU's threads: other work was running
NORMAL_PER_IMAGE = 8  # model.train.data.prepare_image's default pool of lesion-free centres per image
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass
class RunCounts:
    """What a run will do, counted from the index and the TrainConfig (no timing)."""

    train_images: int
    val_images: int
    images_to_prepare: int  # train and validation images not yet in the training cache
    samples_per_epoch: int  # training tiles an epoch (after max_batches_per_epoch)
    batches_per_epoch: int  # micro-batches an epoch
    val_samples: int
    gate_images: int  # images the safety gate evaluates, per model
    epochs: int  # max_epochs
    max_minutes: float | None = None
    index_s: float = 0.0  # how long indexing the folder took (the child indexes it again, and the gate once more)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class UnitTimes:
    """Seconds measured on this machine for one unit of each part of a run."""

    train_sample_s: float  # one training tile: loading, forward, loss, backward, optimiser step
    val_sample_s: float  # one validation tile: forward only
    prepare_image_s: float | None  # preprocessing one image; None when the timed image was already cached
    gate_image_s: float | None  # one image through the gate: both models, whole view and malignancy; None: not timed
    steps: int  # training steps timed
    batch: int  # tiles in each timed step
    tile: int
    device: str
    cpu_share: float | None = None  # CPU time the timed steps got / (their wall time x threads); None on a GPU
    work_s: float = 0.0  # the timing's own work inside the child
    seconds: float = 0.0  # how long the timing took, child start included (set by the parent)

    @property
    def startup_s(self) -> float:
        """Starting a Python child with PyTorch: the training child pays it too."""
        return max(0.0, self.seconds - self.work_s)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "UnitTimes":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunEstimate:
    counts: RunCounts
    units: UnitTimes
    prepare_s: float
    epoch_s: float
    training_s: float  # every epoch, or the time budget when it is shorter
    gate_s: float
    total_s: float
    overhead_s: float = 0.0  # the child's start and indexing the folder twice

    def text(self) -> str:
        from model.jobs.retrain import eta_text

        c, u = self.counts, self.units
        budget = c.max_minutes is not None and c.max_minutes * 60 < c.epochs * self.epoch_s
        epochs = (f"time budget {c.max_minutes:g} min" if budget
                  else f"{c.epochs} epoch{'s' if c.epochs != 1 else ''} of {eta_text(self.epoch_s)}")
        parts = [f"start and indexing: {eta_text(self.overhead_s)}", f"training: {epochs}"]
        if c.images_to_prepare:
            parts.insert(1, f"preparing {c.images_to_prepare} images: {eta_text(self.prepare_s)}")
        if c.gate_images:
            parts.append(f"safety gate: {eta_text(self.gate_s)}")
        busy = (f"; the machine was busy while timing (the steps got {100 * u.cpu_share:.0f}% of the CPU), so the "
                "run may take quite another time" if self.busy else "")
        return (f"about {eta_text(self.total_s)} at most ({'; '.join(parts)}); early stop can end it sooner. "
                f"Estimated from {u.steps} timed steps of {u.batch} tile{'s' if u.batch != 1 else ''} of {u.tile} px "
                f"on {u.device}{busy}")

    @property
    def busy(self) -> bool:
        return self.units.cpu_share is not None and self.units.cpu_share < BUSY_SHARE

    def to_json(self) -> dict:
        return {"counts": self.counts.to_json(), "units": self.units.to_json(), "prepare_s": self.prepare_s,
                "epoch_s": self.epoch_s, "training_s": self.training_s, "gate_s": self.gate_s,
                "overhead_s": self.overhead_s, "total_s": self.total_s, "busy": self.busy, "text": self.text()}


# ---------------------------------------------------------------------------
# counting


def _split(index, config):
    """The training run's patient split (model.train.loop.train labels patients the same way)."""
    from model.data.split import split_patients
    from model.train.data import select_images

    images, _ = select_images(index, tuple(config.views))
    labels: dict[str, bool] = {}
    for image in images:
        labels[image.patient_id] = labels.get(image.patient_id, False) or any(a.malignant for a in image.abnormalities)
    split = split_patients(labels, val_fraction=config.val_fraction, seed=config.split_seed)
    train, val = set(split.train), set(split.val)
    return [i for i in images if i.patient_id in train], [i for i in images if i.patient_id in val]


def _is_cached(image, preprocess, tile: int, cache_dir: Path) -> bool:
    from model.train.data import _cache_key

    try:
        key = _cache_key(image, preprocess, tile)
    except OSError:
        return False
    return all((cache_dir / f"{key}{suffix}").is_file() for suffix in (".json", ".image.npy", ".mask.npy"))


def _tiles(images: list, normal_ratio: float) -> int:
    """model.train.data.build_samples' count: a tile per lesion, plus normal_ratio x as many lesion-free ones."""
    lesions = sum(len(i.abnormalities) for i in images)
    wanted = int(round(normal_ratio * max(lesions, 1)))
    return lesions + min(wanted, NORMAL_PER_IMAGE * len(images))


def train_cache_dir() -> Path:
    from model.fileio import user_cache_dir

    return user_cache_dir() / "train-cache"  # model.train.loop.train's default


def count_run(index, config, *, gate_images: int, index_s: float = 0.0, cache_dir: Path | None = None) -> RunCounts:
    """What a run of ``config`` on ``index`` will do; ``gate_images`` from :func:`model.jobs.retrain.plan_held_out`."""
    from model.data.preprocess import PreprocessConfig

    cache = Path(cache_dir) if cache_dir else train_cache_dir()
    train, val = _split(index, config)
    preprocess = PreprocessConfig(working_spacing_mm=config.working_spacing_mm)
    to_prepare = sum(not _is_cached(i, preprocess, config.tile, cache) for i in train + val)
    samples = _tiles(train, config.normal_ratio) * max(1, config.augment_factor)
    batches = math.ceil(samples / config.micro_batch) if samples else 0
    if config.max_batches_per_epoch:
        batches = min(batches, config.max_batches_per_epoch)
    samples = min(samples, batches * config.micro_batch)
    return RunCounts(train_images=len(train), val_images=len(val), images_to_prepare=to_prepare,
                     samples_per_epoch=samples, batches_per_epoch=batches,
                     val_samples=_tiles(val, config.normal_ratio) if val else 0, gate_images=gate_images,
                     epochs=config.max_epochs, max_minutes=config.max_minutes, index_s=index_s)


def pick_timing_image(index, config):
    """The image to time preprocessing and training on: a training image with a lesion not yet in the cache when
    there is one (its preparation is then real work the run will not repeat), else any training image."""
    from model.data.preprocess import PreprocessConfig

    train, _ = _split(index, config)
    if not train:
        return None
    preprocess = PreprocessConfig(working_spacing_mm=config.working_spacing_mm)
    cache = train_cache_dir()
    ranked = sorted(train, key=lambda i: (_is_cached(i, preprocess, config.tile, cache), not i.abnormalities))
    return ranked[0]


def estimate(counts: RunCounts, units: UnitTimes) -> RunEstimate:
    """The run's length from what it will do and what each unit took."""
    prepare = counts.images_to_prepare * (units.prepare_image_s or 0.0)
    epoch = counts.samples_per_epoch * units.train_sample_s + counts.val_samples * units.val_sample_s
    training = counts.epochs * epoch
    if counts.max_minutes:
        # model.train.loop.train stops after the last epoch that fits the budget: at least one epoch runs
        training = min(training, max(epoch, counts.max_minutes * 60))
    gate = counts.gate_images * (units.gate_image_s or 0.0)
    overhead = units.startup_s + 2 * counts.index_s
    return RunEstimate(counts, units, prepare, epoch, training, gate, overhead + prepare + training + gate, overhead)


# ---------------------------------------------------------------------------
# timing (runs in the child)


def time_units(config, image=None, *, base_model: str | None = None, steps: int = TIMED_STEPS) -> UnitTimes:
    """Time one image's preparation, ``steps`` training steps on tiles of it, a validation pass, and the image through
    the gate as the gate reads it: with ``base_model`` (the current model, at its own resolution) and with the new
    network (at ``config``'s), each warmed up first. ``image`` None: random tiles, no preparation, no gate."""
    import numpy as np
    import torch

    from model.nn.network import BCirUNet
    from model.data.preprocess import PreprocessConfig
    from model.nn.runtime import resolve_device
    from model.train.loop import compute_loss
    from model.train.data import RoiDataset, build_samples, prepare_image
    from model.nn.weights import LoadedModel, load_model, new_card

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
        cached = _is_cached(image, preprocess, config.tile, cache)
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

    net = load_model(config.init_weights).net if config.init_weights else BCirUNet(dropout=config.dropout)
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
        images, masks, malignant, _ = next_batch(step, batch if step else 1)
        images, masks, malignant = images.to(device), masks.to(device), malignant.to(device)
        with autocast:
            mask_logits, malignancy_logits = net(images)
        loss = compute_loss(config, mask_logits, malignancy_logits, masks, malignant)
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

        models = [LoadedModel(net.cpu(), new_card(net, preprocess=preprocess, tile_size=config.tile), None)]
        if base_model:
            models.append(load_model(base_model))
        gate_image_s = 0.0
        for model in models:
            predictor = Predictor(model, str(device), cache_dir=None)
            mammogram = read_image(image.path)
            working, _, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, model.preprocess)
            centre = (working.shape[1] / 2, working.shape[0] / 2)
            predictor.malignancy(working, [centre])  # warm-up: the gate reads several images with each predictor
            start = time.perf_counter()
            predictor.predict(image.path, use_cache=False)
            if image.abnormalities:  # the gate prepares an image with lesions once more, for the malignancy head
                mammogram = read_image(image.path)
                working, _, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, model.preprocess)
                predictor.malignancy(working, [centre] * len(image.abnormalities))
            gate_image_s += time.perf_counter() - start
    label = device.type if device.type == "cpu" else str(device)
    return UnitTimes(train_sample_s=train_sample_s, val_sample_s=val_sample_s, prepare_image_s=prepare_s,
                     gate_image_s=gate_image_s, steps=steps, batch=batch, tile=config.tile, device=label,
                     cpu_share=cpu_share, work_s=time.perf_counter() - began)


def time_units_in_child(config, image=None, *, base_model: str | None = None, steps: int = TIMED_STEPS,
                        should_stop: Callable[[], bool] | None = None, poll_s: float = 0.1) -> UnitTimes:
    """:func:`time_units` in ``python -m model.jobs.estimate``, at the training child's priority.

    InterruptedError when ``should_stop`` asks (the child is killed); RuntimeError with the child's last line when
    it fails.
    """
    from model.data.study_index import _image_json

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bcir-estimate-") as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({"config": config.to_json(), "steps": steps, "base_model": base_model,
                                       "image": _image_json(image) if image is not None else None}, default=str))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
        out_path, err_path = Path(tmp) / "out.json", Path(tmp) / "err.txt"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "model.jobs.estimate", str(request), str(out_path)],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True)
        try:
            while proc.poll() is None:
                if should_stop and should_stop():
                    proc.kill()
                    proc.wait()
                    raise InterruptedError("time estimate stopped")
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
    parser = argparse.ArgumentParser(prog="python -m model.jobs.estimate",
                                     description="time the units of a retrain (the child of time_units_in_child)")
    parser.add_argument("request", help="JSON file: {config, image, steps}")
    parser.add_argument("out", help="where to write the UnitTimes JSON")
    args = parser.parse_args(argv)
    from model.fileio import atomic_write_json
    from model.data.study_index import index_from_json
    from model.train.loop import TrainConfig

    with __import__("contextlib").suppress(AttributeError, OSError):
        os.nice(5)  # as the training child: the reader's viewer comes first
    request = json.loads(Path(args.request).read_text())
    config = TrainConfig.from_json(request["config"])
    image = None
    if request.get("image"):
        image = index_from_json({"root": "", "images": [request["image"]], "skipped": []}).images[0]
    units = time_units(config, image, base_model=request.get("base_model"),
                       steps=int(request.get("steps") or TIMED_STEPS))
    atomic_write_json(Path(args.out), units.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["RunCounts", "RunEstimate", "UnitTimes", "count_run", "estimate", "pick_timing_image", "time_units",
           "time_units_in_child", "train_cache_dir"]
