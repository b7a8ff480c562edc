"""Retrain jobs in a real child process: a run to the safety gate, accept and rollback, cancel, a crash, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from model import retrain_job
from model.evaluate import dataset_fingerprint
from model.registry import ModelRegistry
from model.retrain_job import (GATE_METRICS, Job, JobSpec, accept, find_resumable, format_comparison, reject, run_gate,
                               start_job)
from model.study_index import build_index
from model.train import TrainConfig
from model.weights import active_model_path, bundled_model_path, load_model, read_card, save_model

# as in test_training: 0.2 mm working spacing gives ~144 x 90 px views of the small demo studies
TINY = dict(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=4, batch_size=8, device="cpu", normal_ratio=0.5,
            max_epochs=1, max_batches_per_epoch=2, early_stop_delta=0.0)
WAIT_S = 240


@pytest.fixture
def folders(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BCIR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "data" / "jobs"


def _spec(root, **config) -> JobSpec:
    return JobSpec(root=str(root), config={**TINY, **config}, base_model=str(bundled_model_path()), bootstrap=50)


def _finished(job: Job) -> dict:
    state = job.wait(WAIT_S)
    assert state["state"] in ("done", "cancelled", "failed"), state
    return state


def _log_tail(job: Job) -> str:
    return job.log_path.read_text()[-3000:] if job.log_path.is_file() else "(no log)"


def _wait_for_event(job: Job, predicate, timeout: float = WAIT_S) -> dict:
    offset, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        events, offset = job.events(offset)
        for event in events:
            if predicate(event):
                return event
        assert job.is_alive(), f"child ended first: {job.state()}\n{_log_tail(job)}"
        time.sleep(0.05)
    raise AssertionError(f"no such event within {timeout} s: {job.state()}")


def _patients(root) -> set[str]:
    return {i.patient_id for i in build_index(root, workers=1).images}


def test_a_run_reaches_the_gate_and_the_reader_chooses(demo_root, folders):
    registry = ModelRegistry()
    bundled = registry.active()
    job = start_job(_spec(demo_root), folders)
    assert job.dir.parent == folders.resolve() and json.loads((job.dir / "spec.json").read_text())["bootstrap"] == 50
    state = _finished(job)
    assert state["state"] == "done", _log_tail(job)
    assert not job.is_alive() and state["pid"] and state["started"] and state["finished"]

    events, offset = job.events()
    kinds = [e["kind"] for e in events]
    for kind in ("prepare", "epoch_start", "batch", "epoch_end", "done", "gate"):
        assert kind in kinds, kind
    assert kinds.index("done") < kinds.index("gate") and kinds[-1] == "gate"
    assert all("time" in e for e in events)
    assert job.events(offset) == ([], offset)  # read incrementally: nothing new after the end

    # the gate: current and new model on the same held-out patients, the new run's validation split
    comparison = job.comparison()
    split = json.loads((job.run_dir / "split.json").read_text())
    assert comparison["rule"] == "validation-split" and comparison["patients"] == sorted(split["val"])
    current, new = comparison["rows"]
    assert (current["model"], new["model"]) == ("current", "new") and current["available"] and new["available"]
    assert current["version"] == bundled.version
    assert new["weights"] == str(job.run_dir / "best.safetensors") == str(job.new_model_path())
    assert new["version"] == read_card(job.new_model_path())["model_version"]
    assert current["patients"] == new["patients"] and set(new["patients"]) <= set(split["val"])
    assert current["images"] == new["images"] > 0
    for key, _, _ in GATE_METRICS:
        assert key in current and key in new
        assert comparison["better"][key] in ("new", "current", "tie", None)
    assert len(new["auc_ci"]) == 2 and comparison["notes"]
    assert "Dice" in format_comparison(comparison)

    # no patient ID in the log or the event stream
    log_text, events_text = job.log_path.read_text(), job.events_path.read_text()
    assert "epoch 1/1" in log_text and "safety gate" in log_text
    for patient in _patients(demo_root):
        assert patient not in log_text and patient not in events_text

    # nothing switched by itself
    assert [e.version for e in registry.list()] == [bundled.version] and registry.active().bundled

    entry = accept(job, registry)
    assert entry.version == new["version"] and entry.active and registry.active().version == entry.version
    assert active_model_path() == entry.weights and entry.weights.is_file()
    assert entry.log_path.read_text() == job.log_path.read_text()
    assert entry.gate == comparison and entry.metrics["dice_mean"] == new["dice_mean"]
    assert entry.training_data["data_fingerprint"] == dataset_fingerprint(build_index(demo_root, workers=1))
    assert entry.training_data["data_report"]["images_used"] > 0 and entry.settings["tile"] == 64
    assert job.decision() == "accepted"
    registry.use(bundled.version)  # rollback
    assert active_model_path() == bundled_model_path()
    assert [e.version for e in registry.list()] == [bundled.version, entry.version]


def test_cancel_leaves_no_model_and_the_registry_unchanged(demo_root, folders):
    registry = ModelRegistry()
    before = [(e.version, e.active) for e in registry.list()]
    # many batches in epoch 1, so the cancel lands before any epoch completes
    job = start_job(_spec(demo_root, augment_factor=40, max_epochs=3, max_batches_per_epoch=None), folders)
    _wait_for_event(job, lambda e: e["kind"] == "batch")
    job.cancel(timeout=60)
    state = job.state()
    assert state["state"] == "cancelled" and "force" not in state["message"], _log_tail(job)
    assert not job.is_alive()
    events, _ = job.events()
    assert events[-1]["kind"] == "cancelled" and "epoch_end" not in [e["kind"] for e in events]
    assert not list(job.run_dir.glob("*.safetensors"))  # no model, not even a best epoch
    assert not list(job.run_dir.glob("*.part")) and not list(job.run_dir.glob(".*.part"))
    assert job.new_model_path() is None and job.comparison() is None
    with pytest.raises(ValueError, match="cancelled"):
        accept(job, registry)
    assert [(e.version, e.active) for e in registry.list()] == before
    assert not registry.root.exists() or not any(registry.root.iterdir())
    assert find_resumable(folders) == []  # a cancel is a decision, not a crash


def test_a_crash_in_the_child_is_a_failed_state_with_a_reason(tmp_path, folders):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    job = start_job(_spec(empty), folders)
    state = _finished(job)
    assert state["state"] == "failed", _log_tail(job)
    assert "no usable training samples" in state["message"] and "\n" not in state["message"]
    assert "Traceback" in job.log_path.read_text()
    events, _ = job.events()
    assert events[-1]["kind"] == "failed" and events[-1]["message"] == state["message"]
    assert job.new_model_path() is None and not list(job.run_dir.glob("*.safetensors"))
    assert not ModelRegistry().root.exists()


def test_a_killed_job_is_found_and_resumed(demo_root, folders):
    job = start_job(_spec(demo_root, max_epochs=3), folders)
    _wait_for_event(job, lambda e: e["kind"] == "epoch_end")
    pid = job.state()["pid"]
    os.kill(pid, signal.SIGKILL)  # the app, the machine or the OOM killer: no chance to clean up
    state = job.wait(30)
    assert state["state"] == "running" and not job.is_alive()
    done_before = [h["epoch"] for h in json.loads((job.run_dir / "history.json").read_text())]
    assert done_before and done_before[-1] < 3 and job.checkpoint_path.is_file()
    assert not (job.run_dir / "model.safetensors").exists()

    # after a restart, this process knows nothing of the child: only the files
    retrain_job._CHILDREN.clear()
    assert find_resumable(folders) == [Job(job.dir)]
    resumed = find_resumable(folders)[0].resume()
    assert resumed.state()["state"] == "running"
    state = _finished(resumed)
    assert state["state"] == "done", _log_tail(resumed)
    assert [h["epoch"] for h in json.loads((job.run_dir / "history.json").read_text())] == [1, 2, 3]
    assert f"resumed after epoch {done_before[-1]}" in job.log_path.read_text()
    assert job.comparison()["rows"][1]["available"] and find_resumable(folders) == []

    # gone down during the gate: the resume runs the gate again and does not train on
    final = (job.run_dir / "model.safetensors").read_bytes()
    retrain_job._update_state(job.dir, state="gating", pid=os.getpid())  # a live pid, but not the job's child
    assert find_resumable(folders) == [job]
    assert _finished(job.resume())["state"] == "done"
    assert "training had finished" in job.log_path.read_text()
    assert [h["epoch"] for h in json.loads((job.run_dir / "history.json").read_text())] == [1, 2, 3]
    assert (job.run_dir / "model.safetensors").read_bytes() == final
    with pytest.raises(ValueError, match="finished"):
        job.resume()

    reject(job)  # keep the current model
    assert job.decision() == "kept-current"
    registry = ModelRegistry()
    assert [e.version for e in registry.list()] == [registry.active().version] and registry.active().bundled


def test_gate_on_a_locked_holdout_folder(demo_root, tmp_path):
    # the "new" model: the bundled weights under another version, so both rows must agree exactly
    bundled = load_model(bundled_model_path())
    new = save_model(bundled.net, {**bundled.card, "model_version": "same-weights"}, tmp_path / "run" / "best.safetensors")
    spec = JobSpec(root=str(tmp_path), config={"device": "cpu"}, base_model=str(bundled_model_path()),
                   holdout_root=str(demo_root), bootstrap=20)
    comparison = run_gate(spec, new)
    assert comparison["rule"] == "holdout-folder" and comparison["patients"] == sorted(_patients(demo_root))
    current, new_row = comparison["rows"]
    assert current["patients"] == new_row["patients"] == comparison["patients"]
    assert (current["version"], new_row["version"]) == (bundled.version, "same-weights")
    assert comparison["new_model"]["choice"] == "best"
    assert set(comparison["better"].values()) <= {"tie", None} and "tie" in comparison["better"].values()
    assert not any("optimistic" in n for n in comparison["notes"])  # a locked hold-out: no selection on these patients

    no_current = run_gate(JobSpec(root=str(tmp_path), config={"device": "cpu"}, holdout_root=str(demo_root), bootstrap=20), new)
    assert not no_current["rows"][0]["available"] and set(no_current["better"].values()) == {None}


def test_better_follows_each_metrics_direction():
    current = {"dice_mean": 0.5, "iou_mean": 0.4, "lesion_sensitivity": 0.8, "fp_per_image": 1.0, "auc": 0.7,
               "sensitivity": None, "specificity": 0.6}
    new = {**current, "dice_mean": 0.6, "fp_per_image": 2.0, "auc": 0.6, "sensitivity": 0.9}
    better = retrain_job._better(current, new)
    assert better == {"dice_mean": "new", "iou_mean": "tie", "lesion_sensitivity": "tie", "fp_per_image": "current",
                      "auc": "current", "sensitivity": None, "specificity": "tie"}


def test_spec_round_trip_and_checks(tmp_path, demo_root):
    spec = JobSpec(root=demo_root, config=TrainConfig(tile=64, views=("CC", "MLO")), base_model="/m/current.safetensors",
                   fine_tune=True, gate_views=["CC"])
    again = JobSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec and again.gate_views == ("CC",)
    config = again.train_config()
    assert config.tile == 64 and config.views == ("CC", "MLO") and config.init_weights == "/m/current.safetensors"
    assert JobSpec(root=demo_root, base_model="/m/x.safetensors").train_config().init_weights is None  # from scratch
    with pytest.raises(ValueError, match="fine-tuning"):
        start_job(JobSpec(root=demo_root, fine_tune=True), tmp_path / "jobs")
    with pytest.raises(FileNotFoundError):
        start_job(JobSpec(root=tmp_path / "missing"), tmp_path / "jobs")
    assert not (tmp_path / "jobs").exists()


def test_events_wait_for_whole_lines_and_dead_or_foreign_pids(tmp_path):
    job_dir = tmp_path / "job"
    (job_dir / "run").mkdir(parents=True)
    (job_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(tmp_path)).to_json()))
    job = Job(job_dir)
    with open(job.events_path, "w") as f:
        f.write('{"kind": "epoch_start", "epoch": 1}\n{"kind": "batch", "batch": 1}\n{"kind": "ba')
    events, offset = job.events()
    assert [e["kind"] for e in events] == ["epoch_start", "batch"]
    with open(job.events_path, "a") as f:
        f.write('tch", "batch": 2}\n')
    events, offset = job.events(offset)
    assert events == [{"kind": "batch", "batch": 2}] and offset == job.events_path.stat().st_size

    # a live pid that is not a retrain child (here: this very test process) is not the job
    (job_dir / "state.json").write_text(json.dumps({"state": "running", "pid": os.getpid()}))
    assert not job.is_alive() and job.interrupted() and not job.resumable()  # no checkpoint yet
    (job.run_dir / "checkpoint.safetensors").write_bytes(b"x")
    assert job.resumable() and find_resumable(tmp_path) == [job]
    (job_dir / "state.json").write_text(json.dumps({"state": "done", "pid": os.getpid()}))
    assert find_resumable(tmp_path) == []


def test_sigterm_stops_at_a_batch_and_leaves_the_job_resumable(demo_root, folders):
    job = start_job(_spec(demo_root, max_epochs=3), folders)
    _wait_for_event(job, lambda e: e["kind"] == "epoch_end")
    pid = job.state()["pid"]
    os.kill(pid, signal.SIGTERM)  # a shutdown rather than the reader's cancel
    state = job.wait(60)
    assert retrain_job._CHILDREN[pid].returncode == 128 + signal.SIGTERM, _log_tail(job)
    assert state["state"] == "running" and "SIGTERM" in state["message"] and "\n" not in state["message"]
    assert job.events()[0][-1]["kind"] == "interrupted"
    assert not (job.run_dir / "model.safetensors").exists() and job.checkpoint_path.is_file()
    assert find_resumable(folders) == [job]


def test_an_interrupted_job_can_be_abandoned_and_a_live_or_finished_one_cannot(demo_root, folders):
    job = start_job(_spec(demo_root, max_epochs=3), folders)
    _wait_for_event(job, lambda e: e["kind"] == "epoch_end")
    with pytest.raises(ValueError, match="still running"):
        job.abandon()
    job.kill()
    assert job.resumable() and job in find_resumable(folders)
    job.abandon()
    assert job.state()["state"] == "cancelled" and "abandoned" in job.state()["message"]
    assert job not in find_resumable(folders) and not job.resumable()
    with pytest.raises(ValueError, match="nothing to abandon"):
        job.abandon()
