"""Retraining a two-pass model (issue 15, item 1): a job that fine-tunes the active pair trains both parts, the gate
compares pair with pair, and the accepted model is one registry version; the estimate counts both parts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from model.data.preprocess import PreprocessConfig
from model.data.study_index import build_index
from model.jobs.decision import accept
from model.jobs.estimate import RunCounts, UnitTimes, count_run, estimate
from model.jobs.job import start_job
from model.jobs.timing import time_units
from model.jobs.spec import JobSpec
from model.nn.weights import load_model, random_model, save_pair
from model.registry.versions import FINE_WEIGHTS_NAME, ModelRegistry
from model.train.config import TrainConfig

TINY = dict(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=2, batch_size=2, device="cpu",
            normal_ratio=0.5, max_epochs=1, max_batches_per_epoch=1, early_stop_delta=0.0)


@pytest.fixture
def folders(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BCIR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "data" / "jobs"


def _pair(folder: Path, coarse_tile: int = 64) -> Path:
    coarse = random_model(1, preprocess=PreprocessConfig(working_spacing_mm=0.2), tile_size=coarse_tile)
    fine = random_model(2, preprocess=PreprocessConfig(working_spacing_mm=0.1), tile_size=64)
    return save_pair(coarse, fine, folder / "pair.safetensors", version="pair-v1")


def test_a_retrain_of_the_active_pair_fine_tunes_both_parts_into_one_version(demo_root, folders, tmp_path):
    registry = ModelRegistry()
    active = registry.add(_pair(tmp_path))
    registry.use(active.version)
    before = [e.version for e in registry.list()]
    # the spec as the Retrain dialog makes it: fine-tune the model in use (its working resolution kept)
    spec = JobSpec(root=str(demo_root), config=TINY, base_model=str(registry.active().weights), fine_tune=True,
                   bootstrap=50)
    job = start_job(spec, folders)
    state = job.wait(400)
    assert state["state"] == "done", job.log_path.read_text()[-3000:]
    assert job.spec().two_pass  # start_job saw the pair
    events, _ = job.events()
    assert [(e["kind"], e.get("part")) for e in events if e["kind"] in ("part_done", "done", "gate")] == [
        ("part_done", "coarse"), ("part_done", "fine"), ("done", None), ("gate", None)]
    log = job.log_path.read_text()
    assert "coarse part epoch 1/1" in log and "fine part epoch 1/1" in log
    started = {p: json.loads((job.run_dir / p / "config.json").read_text()) for p in ("coarse", "fine")}
    assert started["coarse"]["init_weights"] == str(active.weights)
    assert started["fine"]["init_weights"] == str(active.weights.with_name(FINE_WEIGHTS_NAME))
    assert (started["fine"]["working_spacing_mm"], started["fine"]["tile"]) == (0.1, 64)

    # the gate compared pair with pair
    new_path = job.new_model_path()
    assert new_path == job.run_dir / "best.safetensors"
    new = load_model(new_path)
    assert new.two_pass and new.card.parent == active.version
    current_row, new_row = job.comparison()["rows"]
    assert current_row["version"] == active.version and new_row["version"] == new.version
    assert current_row["available"] and new_row["available"] and current_row["images"] == new_row["images"] > 0

    entry = accept(job, registry, force=True)
    assert [e.version for e in registry.list()] == before + [new.version]  # one version for the pair
    assert registry.active().version == new.version == entry.version
    assert (entry.weights.parent / FINE_WEIGHTS_NAME).is_file()
    used = load_model(entry.weights)
    assert used.two_pass and used.fine.preprocess.working_spacing_mm == 0.1
    assert entry.settings["two_pass"] and entry.settings["parts"]["fine"]["working_spacing_mm"] == 0.1


def test_the_estimate_of_a_pair_counts_both_parts(demo_root, tmp_path, monkeypatch):
    monkeypatch.setenv("BCIR_CACHE_DIR", str(tmp_path / "cache"))
    index = build_index(demo_root, workers=1)
    pair = _pair(tmp_path, coarse_tile=32)
    config = TrainConfig(**{**TINY, "max_batches_per_epoch": None, "max_epochs": 3, "tile": 32}, init_weights=str(pair))
    counts = count_run(index, config, gate_images=4)
    assert counts.fine is not None and counts.fine.gate_images == 0 and counts.fine.epochs == 3
    assert counts.images_to_prepare == counts.fine.images_to_prepare == counts.train_images + counts.val_images
    single = count_run(index, TrainConfig(**{**TINY, "max_batches_per_epoch": None, "tile": 32}), gate_images=4)
    assert single.fine is None and single.samples_per_epoch == counts.samples_per_epoch
    timed_here = time_units(config, steps=1)  # random tiles: each part's own network at its own tile
    assert (timed_here.tile, timed_here.fine.tile) == (32, 64) and timed_here.fine.train_sample_s > 0

    def units(tile: int, train_sample_s: float) -> UnitTimes:
        return UnitTimes(train_sample_s=train_sample_s, val_sample_s=0.1, prepare_image_s=1.0, gate_image_s=2.0,
                         steps=3, batch=2, tile=tile, device="cpu", cpu_share=0.95, work_s=10.0, seconds=12.0)

    timed = units(32, 0.5)
    timed.fine = units(64, 2.0)
    timed = UnitTimes.from_json(json.loads(json.dumps(timed.to_json())))  # as the timing child hands it back
    assert isinstance(timed.fine, UnitTimes) and timed.fine.train_sample_s == 2.0
    c = RunCounts(train_images=4, val_images=2, images_to_prepare=6, samples_per_epoch=20, batches_per_epoch=10,
                  val_samples=4, gate_images=2, epochs=3, index_s=0.5,
                  fine=RunCounts(train_images=4, val_images=2, images_to_prepare=6, samples_per_epoch=20,
                                 batches_per_epoch=10, val_samples=4, gate_images=0, epochs=3))
    result = estimate(c, timed)
    assert result.epoch_s == 20 * 0.5 + 4 * 0.1 and result.fine_epoch_s == 20 * 2.0 + 4 * 0.1
    assert result.training_s == 3 * result.epoch_s + 3 * result.fine_epoch_s and result.prepare_s == 12 * 1.0
    assert math.isclose(result.total_s, result.overhead_s + result.prepare_s + result.training_s + 2 * 2.0)
    text = result.text()
    assert "coarse part 3 epochs of 0 min 10 s, fine part 3 epochs of 0 min 40 s" in text
    assert "preparing 12 images" in text and "tiles of 64 px (fine part)" in text
    c.max_minutes = 0.1  # each part runs at least one epoch
    assert estimate(c, timed).training_s == result.epoch_s + result.fine_epoch_s


def test_a_retrain_from_scratch_can_train_a_new_pair_gated_against_a_single_model(demo_root, folders, tmp_path):
    """The Retrain window's and bcir retrain's "two passes" from scratch: the coarse part at the options' resolution,
    the fine part at its own; the gate compares the new pair with the current single model; one version."""
    registry = ModelRegistry()
    single = random_model(3, preprocess=PreprocessConfig(working_spacing_mm=0.2), tile_size=64)
    from model.nn.weights import save_model

    active = registry.add(save_model(single.net, single.card.to_json(), tmp_path / "single.safetensors"))
    registry.use(active.version)
    spec = JobSpec(root=str(demo_root), config=TINY, base_model=str(active.weights), fine_tune=False, bootstrap=50,
                   two_pass=True, fine_spacing_mm=0.1, fine_tile=64)
    coarse, fine = spec.parts()
    assert (coarse.working_spacing_mm, coarse.tile, fine.working_spacing_mm, fine.tile) == (0.2, 64, 0.1, 64)
    assert coarse.init_weights is None and fine.init_weights is None
    index = build_index(demo_root, workers=1)
    counts = count_run(index, spec.train_config(), gate_images=2, parts=spec.parts())
    assert counts.fine is not None and counts.fine.train_images == counts.train_images > 0
    assert count_run(index, spec.train_config(), gate_images=2).fine is None  # the parts make it a pair
    job = start_job(spec, folders)
    state = job.wait(400)
    assert state["state"] == "done", job.log_path.read_text()[-3000:]
    log = job.log_path.read_text()
    assert "two-pass model: the coarse part (0.2 mm, tile 64), then the fine part (0.1 mm, tile 64)" in log
    new = load_model(job.new_model_path())
    assert new.two_pass and new.fine.preprocess.working_spacing_mm == 0.1 and new.fine.tile_size == 64
    current_row, new_row = job.comparison()["rows"]
    assert current_row["version"] == active.version and new_row["version"] == new.version
    entry = accept(job, registry, force=True)
    assert registry.active().version == entry.version and (entry.weights.parent / FINE_WEIGHTS_NAME).is_file()
    assert JobSpec.from_json(json.loads(json.dumps(spec.to_json()))).parts()[1].tile == 64  # as spec.json keeps it
