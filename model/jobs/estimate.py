"""How long a retrain will take, said before it starts: what the run will do, counted, times a short real timing.

Two parts. :func:`count_run` counts, from the folder's index and the
TrainConfig, what the run will do: images to preprocess (those not already in
the training cache), tiles an epoch (one per lesion plus ``normal_ratio`` as
many lesion-free ones, times ``augment_factor``), micro-batches an epoch,
validation tiles, and the images the safety gate reads (twice: the current and
the new model). :func:`model.jobs.timing.time_units` times, on this machine and
the chosen device, one image's preprocessing, a few training steps on real
tiles of that image at the chosen tile size, a validation pass and one
whole-view inference, in a child process at the training child's lower
priority. :func:`estimate` multiplies the two.

The result is an estimate, and says so: "from N timed steps of B tiles". It is
the longest the run can take at ``max_epochs``; an early stop or a time budget
ends it sooner (the budget is counted in).

A run that fine-tunes a two-pass model (``init_weights`` names one:
model.train.two_pass) trains both parts, each at its own resolution: the counts
and the timing carry the fine part's too (``fine``), and the estimate adds
them; the gate reads two pairs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from model.jobs.plan import RunSplit, run_split
from model.train.cache import NORMAL_PER_IMAGE, is_cached, tile_count, train_cache_dir

BUSY_SHARE = 0.6  # the timed steps got less than this share of the CPU's threads: other work was running


def eta_text(seconds: float | None) -> str:
    """'1 h 05 min', '3 min 07 s'; '' when unknown (the dialog and the terminal say the ETA alike)."""
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


@dataclass
class RunCounts:
    """What a run will do, counted from the index and the TrainConfig (no timing)."""

    train_images: int
    val_images: int
    images_to_prepare: int  # train and validation images not yet in the training cache
    samples_per_epoch: int  # training tiles an epoch (after max_batches_per_epoch; hard negatives at most as many as asked)
    batches_per_epoch: int  # micro-batches an epoch
    val_samples: int
    gate_images: int  # images the safety gate evaluates, per model
    epochs: int  # max_epochs
    max_minutes: float | None = None
    index_s: float = 0.0  # how long indexing the folder took (the child indexes it again, and the gate once more)
    fine: "RunCounts | None" = None  # a two-pass run's fine part (its own tiles and images; no gate of its own)
    mine_images: int = 0  # training images the starting model reads for hard negatives before the first epoch

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
    fine: "UnitTimes | None" = None  # a two-pass run's fine part, timed at its own tile (no gate of its own)
    mine_image_s: float | None = None  # the starting model's false positives on one image (hard negatives); None: not timed

    @property
    def startup_s(self) -> float:
        """Starting a Python child with PyTorch: the training child pays it too."""
        return max(0.0, self.seconds - self.work_s)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "UnitTimes":
        known = {f.name for f in dataclasses.fields(cls)}
        units = cls(**{k: v for k, v in data.items() if k in known})
        if isinstance(units.fine, dict):
            units.fine = cls.from_json(units.fine)
        return units


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
    fine_epoch_s: float | None = None  # a two-pass run's fine part: one epoch (``epoch_s`` is the coarse part's)
    mine_s: float = 0.0  # finding the starting model's false positives (hard negatives), both parts

    @property
    def two_pass(self) -> bool:
        return self.fine_epoch_s is not None

    def text(self) -> str:
        c, u = self.counts, self.units

        def epochs_of(counts: RunCounts, epoch_s: float) -> str:
            return f"{counts.epochs} epoch{'s' if counts.epochs != 1 else ''} of {eta_text(epoch_s)}"

        all_epochs_s = c.epochs * self.epoch_s + (c.fine.epochs * self.fine_epoch_s if self.two_pass else 0.0)
        budget = c.max_minutes is not None and c.max_minutes * 60 < all_epochs_s
        epochs = (f"time budget {c.max_minutes:g} min" if budget
                  else f"coarse part {epochs_of(c, self.epoch_s)}, fine part {epochs_of(c.fine, self.fine_epoch_s)}"
                  if self.two_pass else epochs_of(c, self.epoch_s))
        parts = [f"start and indexing: {eta_text(self.overhead_s)}", f"training: {epochs}"]
        to_prepare = c.images_to_prepare + (c.fine.images_to_prepare if self.two_pass else 0)
        if to_prepare:
            parts.insert(1, f"preparing {to_prepare} images: {eta_text(self.prepare_s)}")
        to_mine = c.mine_images + (c.fine.mine_images if self.two_pass else 0)
        if to_mine:
            parts.insert(-1, f"the starting model's false positives on {to_mine} images: {eta_text(self.mine_s)}")
        if c.gate_images:
            parts.append(f"safety gate: {eta_text(self.gate_s)}")
        busy = (f"; the machine was busy while timing (the steps got {100 * u.cpu_share:.0f}% of the CPU), so the "
                "run may take quite another time" if self.busy else "")

        def steps_of(units: UnitTimes) -> str:
            return f"{units.steps} timed steps of {units.batch} tile{'s' if units.batch != 1 else ''} of {units.tile} px"

        steps = (f"{steps_of(u)} (coarse part) and {steps_of(u.fine)} (fine part)" if self.two_pass and u.fine
                 else steps_of(u))
        return (f"about {eta_text(self.total_s)} at most ({'; '.join(parts)}); early stop can end it sooner. "
                f"Estimated from {steps} on {u.device}{busy}")

    @property
    def busy(self) -> bool:
        return self.units.cpu_share is not None and self.units.cpu_share < BUSY_SHARE

    def to_json(self) -> dict:
        return {"counts": self.counts.to_json(), "units": self.units.to_json(), "prepare_s": self.prepare_s,
                "epoch_s": self.epoch_s, "fine_epoch_s": self.fine_epoch_s, "training_s": self.training_s,
                "gate_s": self.gate_s, "mine_s": self.mine_s, "overhead_s": self.overhead_s, "total_s": self.total_s,
                "busy": self.busy,
                "text": self.text()}


# ---------------------------------------------------------------------------
# counting


def _tiles(images: list, normal_ratio: float) -> int:
    """Tiles an epoch draws from ``images`` before augmentation (model.train.cache.tile_count)."""
    return tile_count(sum(len(i.abnormalities) for i in images), NORMAL_PER_IMAGE * len(images), normal_ratio)


def _hard_negatives_per_image(config) -> int:
    """Hard negatives a run of ``config`` mines per training image: none without a model to fine-tune."""
    return config.hard_negatives_per_image if config.init_weights else 0


def count_run(index, config, *, gate_images: int, index_s: float = 0.0, cache_dir: Path | None = None,
              split: RunSplit | None = None, hard_negatives: int | None = None, parts=None) -> RunCounts:
    """What a run of ``config`` on ``index`` will do; ``gate_images`` from :func:`model.jobs.plan.plan_held_out`.
    ``split``: :func:`model.jobs.plan.run_split` of ``index`` and ``config``, when the caller has it already.
    ``hard_negatives``: per training image, when ``config`` is a part counted without its start point. ``parts``: a
    two-pass run's (coarse, fine) configs (JobSpec.parts); a fine-tune of a two-pass model is one without them."""
    from model.data.preprocess import PreprocessConfig

    from model.train.two_pass import is_two_pass, part_configs

    split = split if split is not None else run_split(index, config)
    if parts is None and is_two_pass(config.init_weights):
        parts = part_configs(config)
    if parts is not None:  # both parts, each at its own resolution, on the same patients
        coarse, fine = parts
        counts = count_run(index, dataclasses.replace(coarse, init_weights=None), gate_images=gate_images,
                           index_s=index_s, cache_dir=cache_dir, split=split,
                           hard_negatives=_hard_negatives_per_image(coarse))
        counts.fine = count_run(index, dataclasses.replace(fine, init_weights=None), gate_images=0,
                                cache_dir=cache_dir, split=split, hard_negatives=_hard_negatives_per_image(fine))
        return counts
    cache = Path(cache_dir) if cache_dir else train_cache_dir()
    train, val = split.train, split.val
    preprocess = PreprocessConfig(working_spacing_mm=config.working_spacing_mm)
    to_prepare = sum(not is_cached(i, preprocess, config.tile, cache) for i in train + val)
    per_image = _hard_negatives_per_image(config) if hard_negatives is None else hard_negatives
    # each training image gives at most per_image hard negatives (model.train.hard_negatives): count them all
    samples = (_tiles(train, config.normal_ratio) + per_image * len(train)) * max(1, config.augment_factor)
    batches = math.ceil(samples / config.micro_batch) if samples else 0
    if config.max_batches_per_epoch:
        batches = min(batches, config.max_batches_per_epoch)
    samples = min(samples, batches * config.micro_batch)
    return RunCounts(train_images=len(train), val_images=len(val), images_to_prepare=to_prepare,
                     samples_per_epoch=samples, batches_per_epoch=batches,
                     val_samples=_tiles(val, config.normal_ratio) if val else 0, gate_images=gate_images,
                     epochs=config.max_epochs, max_minutes=config.max_minutes, index_s=index_s,
                     mine_images=len(train) if per_image else 0)


def pick_timing_image(index, config, *, split: RunSplit | None = None):
    """The image to time preprocessing and training on: a training image with a lesion not yet in the cache when
    there is one (its preparation is then real work the run will not repeat), else any training image. ``split``:
    :func:`model.jobs.plan.run_split` of ``index`` and ``config``, when the caller has it already."""
    from model.data.preprocess import PreprocessConfig

    train = (split if split is not None else run_split(index, config)).train
    if not train:
        return None
    preprocess = PreprocessConfig(working_spacing_mm=config.working_spacing_mm)
    cache = train_cache_dir()
    ranked = sorted(train, key=lambda i: (is_cached(i, preprocess, config.tile, cache), not i.abnormalities))
    return ranked[0]


def estimate(counts: RunCounts, units: UnitTimes) -> RunEstimate:
    """The run's length from what it will do and what each unit took (a two-pass run's: both parts, when the counts
    and the units both carry the fine part)."""
    def part(c: RunCounts, u: UnitTimes) -> tuple[float, float]:
        return (c.images_to_prepare * (u.prepare_image_s or 0.0),
                c.samples_per_epoch * u.train_sample_s + c.val_samples * u.val_sample_s)

    def mining(c: RunCounts, u: UnitTimes) -> float:
        return c.mine_images * (u.mine_image_s or 0.0)

    prepare, epoch = part(counts, units)
    mine = mining(counts, units)
    training = counts.epochs * epoch
    fine_epoch = None
    least = epoch  # model.train.loop.train stops after the last epoch that fits the budget: at least one epoch runs
    if counts.fine is not None and units.fine is not None:  # a two-pass run: the fine part after the coarse one
        fine_prepare, fine_epoch = part(counts.fine, units.fine)
        prepare += fine_prepare
        mine += mining(counts.fine, units.fine)
        training += counts.fine.epochs * fine_epoch
        least += fine_epoch  # each part runs at least one epoch (model.train.two_pass shares the budget)
    if counts.max_minutes:
        training = min(training, max(least, counts.max_minutes * 60))
    gate = counts.gate_images * (units.gate_image_s or 0.0)
    overhead = units.startup_s + 2 * counts.index_s
    return RunEstimate(counts, units, prepare, epoch, training, gate, overhead + prepare + mine + training + gate,
                       overhead, fine_epoch, mine)


__all__ = ["BUSY_SHARE", "RunCounts", "RunEstimate", "UnitTimes", "count_run", "estimate", "eta_text",
           "pick_timing_image"]
