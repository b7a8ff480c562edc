"""The time estimate before a retrain: what the run will do, counted, times what a few real steps took."""

from __future__ import annotations

import math

import pytest

from model.jobs.estimate import RunCounts, UnitTimes, count_run, estimate, pick_timing_image
from model.jobs.plan import plan_held_out
from model.jobs.timing import time_units
from model.data.study_index import build_index
from model.train.config import TrainConfig
from model.nn.weights import bundled_model_path

TINY = dict(working_spacing_mm=0.2, tile=64, augment_factor=3, micro_batch=4, batch_size=8, device="cpu",
            normal_ratio=0.5, max_epochs=4)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BCIR_CACHE_DIR", str(tmp_path / "cache"))


def _units(**values) -> UnitTimes:
    base = dict(train_sample_s=0.5, val_sample_s=0.1, prepare_image_s=2.0, gate_image_s=3.0, steps=3, batch=2, tile=64,
                device="cpu", cpu_share=0.95, work_s=10.0, seconds=14.0)
    return UnitTimes(**{**base, **values})


def _counts(**values) -> RunCounts:
    base = dict(train_images=7, val_images=4, images_to_prepare=11, samples_per_epoch=50, batches_per_epoch=7,
                val_samples=6, gate_images=4, epochs=3, max_minutes=None, index_s=0.5)
    return RunCounts(**{**base, **values})


def test_the_estimate_adds_start_preparation_epochs_and_gate():
    result = estimate(_counts(), _units())
    assert result.prepare_s == 11 * 2.0
    assert result.epoch_s == 50 * 0.5 + 6 * 0.1
    assert result.training_s == 3 * result.epoch_s
    assert result.gate_s == 4 * 3.0  # gate_image_s: one image through both models
    assert result.overhead_s == (14.0 - 10.0) + 2 * 0.5  # the child's start, indexing twice
    assert math.isclose(result.total_s, result.overhead_s + result.prepare_s + result.training_s + result.gate_s)
    text = result.text()
    assert "3 epochs of 0 min 25 s" in text and "preparing 11 images: 0 min 22 s" in text
    assert "Estimated from 3 timed steps of 2 tiles of 64 px on cpu" in text and "busy" not in text

    budget = estimate(_counts(epochs=200, max_minutes=1.0), _units())
    assert budget.training_s == 60.0 and "time budget 1 min" in budget.text()
    one_epoch = estimate(_counts(epochs=200, max_minutes=0.1), _units())  # the loop always finishes one epoch
    assert one_epoch.training_s == one_epoch.epoch_s

    busy = estimate(_counts(), _units(cpu_share=0.3))
    assert busy.busy and "the machine was busy while timing (the steps got 30% of the CPU)" in busy.text()


def test_the_counts_follow_the_training_split_and_the_cache(demo_root):
    index = build_index(demo_root, workers=1)
    config = TrainConfig(**TINY)
    plan = plan_held_out(index, config)
    counts = count_run(index, config, gate_images=plan["images"])
    assert counts.val_images == plan["images"] and counts.train_images + counts.val_images <= len(index.images)
    assert counts.images_to_prepare == counts.train_images + counts.val_images  # an empty cache
    assert counts.batches_per_epoch == math.ceil(counts.samples_per_epoch / config.micro_batch)
    capped = count_run(index, TrainConfig(**{**TINY, "max_batches_per_epoch": 2}), gate_images=plan["images"])
    assert capped.batches_per_epoch == 2 and capped.samples_per_epoch == 2 * config.micro_batch

    image = pick_timing_image(index, config)
    assert image is not None and image.abnormalities  # a training image with a lesion, not yet prepared
    units = time_units(config, image, steps=2)  # in this process: the child runs the same function
    with_current = time_units(config, image, base_model=str(bundled_model_path()), steps=1)
    assert with_current.gate_image_s > 0
    assert units.steps == 2 and units.batch == config.micro_batch and units.tile == 64
    assert units.train_sample_s > 0 and units.val_sample_s > 0 and units.prepare_image_s > 0 and units.gate_image_s > 0
    assert 0 < units.cpu_share
    after = count_run(index, config, gate_images=plan["images"])
    assert after.images_to_prepare == counts.images_to_prepare - 1  # the timed image is prepared for the run


def test_a_fine_tune_with_hard_negatives_counts_the_mining_and_its_tiles(demo_root, tmp_path, disc_model):
    """The starting model reads every training image before the first epoch, and each image may add that many
    lesion-free tiles to every epoch: the estimate counts both, with the mining timed on the timing image."""
    from model.nn.weights import save_model

    start = save_model(disc_model.net, {**disc_model.card.to_json(), "preprocess": {"working_spacing_mm": 0.2},
                                        "tile_size": 64}, tmp_path / "start.safetensors")
    index = build_index(demo_root, workers=1)
    plain = TrainConfig(**TINY, init_weights=str(start))
    mined = TrainConfig(**TINY, init_weights=str(start), hard_negatives_per_image=2)
    gate = plan_held_out(index, plain)["images"]
    without, counts = count_run(index, plain, gate_images=gate), count_run(index, mined, gate_images=gate)
    assert without.mine_images == 0 and counts.mine_images == counts.train_images > 0
    assert counts.samples_per_epoch == without.samples_per_epoch + 2 * counts.train_images * TINY["augment_factor"]
    scratch = count_run(index, TrainConfig(**TINY, hard_negatives_per_image=2), gate_images=gate)
    assert scratch.mine_images == 0 and scratch.samples_per_epoch == without.samples_per_epoch  # nothing to mine with

    units = time_units(mined, pick_timing_image(index, mined), steps=1)
    assert units.mine_image_s > 0 and time_units(plain, pick_timing_image(index, plain), steps=1).mine_image_s is None
    result = estimate(counts, units)
    assert result.mine_s == counts.mine_images * units.mine_image_s
    assert math.isclose(result.total_s, result.overhead_s + result.prepare_s + result.mine_s + result.training_s
                        + result.gate_s)
    assert f"the starting model's false positives on {counts.mine_images} images: " in result.text()
    assert "false positives" not in estimate(without, units).text()
