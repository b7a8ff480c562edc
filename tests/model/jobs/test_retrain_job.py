"""Retrain jobs in a real child process: a run to the safety gate, accept and rollback, cancel, a crash, SIGKILL and resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import pytest

from model.evaluate.evaluation import dataset_fingerprint
from model.evaluate.held_out import AUC_MIN_PER_CLASS, MIN_HELD_OUT_PATIENTS
from model.registry.versions import ModelRegistry
from model.jobs import job as job_module
from model.jobs.decision import WorseModel, accept, reject
from model.jobs.gate import run_gate
from model.jobs.job import Job, find_resumable, find_undecided_background, start_job
from model.jobs.plan import plan_held_out
from model.jobs.spec import JobSpec
from model.jobs.state import update_state
from model.jobs.verdict import GATE_METRICS, better_by_figure, format_comparison, judge
from model.data import split as msplit
from model.data.study_index import build_index
from model.errors import JobError
from model.train.config import TrainConfig
from model.nn.weights import bundled_model_path, load_model, read_card, save_model
from model.registry.resolve import resolve_model

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
    assert new["version"] == read_card(job.new_model_path()).version
    assert current["patients"] == new["patients"] and set(new["patients"]) <= set(split["val"])
    assert current["images"] == new["images"] > 0
    for key, _, _ in GATE_METRICS:
        assert key in current and key in new
        assert comparison["better"][key] in ("new", "current", "tie", None)
    assert len(new["auc_ci"]) == 2 and comparison["notes"]
    assert "Dice" in format_comparison(comparison)
    # the plan made before the start counts the same held-out set the gate then evaluated
    plan = plan_held_out(build_index(demo_root, workers=1), TrainConfig(**TINY))
    assert (plan["patients"], plan["images"], plan["lesions"]) == (len(split["val"]), new["images"], new["lesions"])
    assert (plan["malignant"], plan["benign"]) == (new["malignant"], new["benign"])
    assert plan["warnings"] == judge(comparison).warnings != []  # 6 demo patients: 2 held out, too few to decide

    # no patient ID in the log or the event stream
    log_text, events_text = job.log_path.read_text(), job.events_path.read_text()
    assert "epoch 1/1" in log_text and "safety gate" in log_text
    for patient in _patients(demo_root):
        assert patient not in log_text and patient not in events_text

    # nothing switched by itself
    assert [e.version for e in registry.list()] == [bundled.version] and registry.active().bundled

    worse = judge(comparison).worse
    if worse:  # the reader must confirm a model worse on some figure
        with pytest.raises(WorseModel, match=worse[0].label):
            accept(job, registry)
        assert registry.active().bundled
    entry = accept(job, registry, force=bool(worse))
    assert entry.version == new["version"] and entry.active and registry.active().version == entry.version
    assert resolve_model() == entry.weights and entry.weights.is_file()
    kept = entry.log_path.read_text()  # the training log as it was when the model was accepted
    assert "safety gate" in kept and job.log_path.read_text().startswith(kept)
    assert entry.gate == comparison and entry.metrics["dice_mean"] == new["dice_mean"]
    # each lesion type's AUC and CI, as the gate measured them, go with the model for the reader's trust line
    assert entry.metrics["per_type"] == new["per_type"] and set(new["per_type"]) <= {"mass", "calcification"}
    assert entry.training_data["data_fingerprint"] == dataset_fingerprint(build_index(demo_root, workers=1))
    assert entry.training_data["data_report"]["images_used"] > 0 and entry.settings["tile"] == 64
    assert job.decision() == "accepted"
    # the files a site shares name patients by the site's hashes only: the gate, the run's cards and split, the entry
    shared = [job.dir / "comparison.json", *(job.run_dir / n for n in ("split.json", "best.json", "model.json")),
              *entry.weights.parent.glob("*.json")]
    assert len(shared) == 6
    for path in shared:
        text = path.read_text()
        assert not [p for p in _patients(demo_root) if p in text], path.name
    assert comparison["patient_key"] == msplit.site_key().id
    registry.use(bundled.version)  # rollback
    assert resolve_model() == bundled_model_path()
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
    with pytest.raises(JobError, match="cancelled"):
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
    job_module._CHILDREN.clear()
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
    update_state(job.dir, state="gating", pid=os.getpid())  # a live pid, but not the job's child
    assert find_resumable(folders) == [job]
    assert _finished(job.resume())["state"] == "done"
    assert "training had finished" in job.log_path.read_text()
    assert [h["epoch"] for h in json.loads((job.run_dir / "history.json").read_text())] == [1, 2, 3]
    assert (job.run_dir / "model.safetensors").read_bytes() == final
    with pytest.raises(JobError, match="finished"):
        job.resume()

    reject(job)  # keep the current model
    assert job.decision() == "kept-current"
    registry = ModelRegistry()
    assert [e.version for e in registry.list()] == [registry.active().version] and registry.active().bundled


def test_gate_on_a_locked_holdout_folder(demo_root, tmp_path):
    # the "new" model: the bundled weights under another version, so both rows must agree exactly
    bundled = load_model(bundled_model_path())
    new = save_model(bundled.net, dataclasses.replace(bundled.card, version="same-weights"), tmp_path / "run" / "best.safetensors")
    spec = JobSpec(root=str(tmp_path), config={"device": "cpu"}, base_model=str(bundled_model_path()),
                   holdout_root=str(demo_root), bootstrap=20)
    comparison = run_gate(spec, new)
    # every patient of the hold-out folder, named by the site's hashes (comparison.json leaves the site)
    assert comparison["rule"] == "holdout-folder" and comparison["patients"] == msplit.site_key().hashes(_patients(demo_root))
    assert comparison["patient_key"] == msplit.site_key().id
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
    better = better_by_figure(current, new)
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
    with pytest.raises(JobError, match="fine-tuning"):
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
    assert job_module._CHILDREN[pid].returncode == 128 + signal.SIGTERM, _log_tail(job)
    assert state["state"] == "running" and "SIGTERM" in state["message"] and "\n" not in state["message"]
    assert job.events()[0][-1]["kind"] == "interrupted"
    assert not (job.run_dir / "model.safetensors").exists() and job.checkpoint_path.is_file()
    assert find_resumable(folders) == [job]


def test_an_interrupted_job_can_be_abandoned_and_a_live_or_finished_one_cannot(demo_root, folders):
    job = start_job(_spec(demo_root, max_epochs=3), folders)
    _wait_for_event(job, lambda e: e["kind"] == "epoch_end")
    with pytest.raises(JobError, match="still running"):
        job.abandon()
    job.kill()
    assert job.resumable() and job in find_resumable(folders)
    job.abandon()
    message = job.state()["message"]
    assert job.state()["state"] == "cancelled" and "closed without resuming, as asked" in message
    assert "reader" not in message and message in job.log_path.read_text()
    assert job not in find_resumable(folders) and not job.resumable()
    with pytest.raises(JobError, match="nothing to abandon"):
        job.abandon()


# ---------------------------------------------------------------------------
# quitting the app: pause, background; what the log says


def test_a_pause_stops_after_a_batch_says_why_and_resumes(demo_root, folders):
    """Quitting the app pauses the run: stopped cleanly, "paused" with the reason, resumable, never "abandoned"."""
    job = start_job(_spec(demo_root, augment_factor=40, max_epochs=2, max_batches_per_epoch=None), folders)
    _wait_for_event(job, lambda e: e["kind"] == "batch")
    job.pause("the app was quit")
    state = job.wait(60)
    assert state["state"] == "paused", _log_tail(job)
    assert state["message"].startswith("paused (the app was quit) during epoch 1 of 2")
    assert "starts the training again from epoch 1" in state["message"]  # no epoch was complete
    assert job.events()[0][-1] == {**job.events()[0][-1], "kind": "paused", "message": state["message"]}
    log = job.log_path.read_text()
    assert "pause asked (the app was quit)" in log and state["message"] in log and "abandon" not in log
    assert not list(job.run_dir.glob("*.safetensors"))  # no half epoch became a model
    assert job.paused() and job.resumable() and not job.interrupted() and find_resumable(folders) == [job]

    job_module._CHILDREN.clear()  # the next start of the app: only the files
    Job(job.dir).resume()
    assert not job.pause_path.exists() and job.state()["state"] == "running"
    _wait_for_event(job, lambda e: e["kind"] == "epoch_start")
    job.cancel(timeout=60)
    assert job.state()["state"] == "cancelled" and find_resumable(folders) == []


def test_pause_during_preparation_stops_before_training(demo_root, folders):
    job = start_job(_spec(demo_root), folders)
    _wait_for_event(job, lambda e: e["kind"] == "prepare")
    job.pause("the app was quit")  # the cache is empty (a fresh BCIR_CACHE_DIR): every image is still to prepare
    state = job.wait(60)
    assert state["state"] == "paused" and job.resumable(), _log_tail(job)
    assert "during the preparation" in state["message"] and "epoch_start" not in [e["kind"] for e in job.events()[0]]


def test_abandon_says_what_happened_and_never_blames_the_reader(tmp_path):
    def hand_made(name: str, state: dict, *, epochs: int = 0) -> Job:
        job_dir = tmp_path / name
        (job_dir / "run").mkdir(parents=True)
        (job_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(tmp_path)).to_json()))
        (job_dir / "state.json").write_text(json.dumps(state))
        if epochs:
            (job_dir / "run" / "history.json").write_text(json.dumps([{"epoch": e + 1} for e in range(epochs)]))
            (job_dir / "run" / "checkpoint.safetensors").write_bytes(b"x")
        return Job(job_dir)

    died = hand_made("died", {"state": "running", "pid": None, "message": "starting"})
    died.abandon()  # what the app does at start with a run that died before its first epoch
    message = died.state()["message"]
    assert message == ("the training process stopped without a word before its first epoch was complete (the app, "
                       "the machine or the process went down); nothing to resume from, so it was closed")
    assert message in died.log_path.read_text()

    killed = hand_made("killed", {"state": "running", "pid": None, "message": "starting"}, epochs=2)
    killed.abandon()  # the reader's "Discard it"
    assert killed.state()["message"].startswith("the training process stopped without a word after 2 complete epochs")
    assert killed.state()["message"].endswith("closed without resuming, as asked")

    paused = hand_made("paused", {"state": "paused", "pid": None,
                                  "message": "paused (the app was quit) during epoch 3 of 9; resuming continues after "
                                             "epoch 2 (the epoch under way is lost)"}, epochs=2)
    assert paused.resumable() and not paused.interrupted()
    paused.abandon()
    assert paused.state()["message"] == ("paused (the app was quit) during epoch 3 of 9; closed without resuming, "
                                         "as asked")
    for job in (died, killed, paused):
        assert job.state()["state"] == "cancelled" and "reader" not in job.state()["message"]


def test_keep_in_background_is_logged_and_a_finished_one_is_found_undecided(tmp_path):
    job_dir = tmp_path / "20260101-000000-aaaaaa"
    (job_dir / "run").mkdir(parents=True)
    (job_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(tmp_path)).to_json()))
    (job_dir / "state.json").write_text(json.dumps({"state": "running", "pid": None}))
    job = Job(job_dir)
    job.keep_in_background("the app was quit")
    assert job.state()["background"] and "the app was quit; the training goes on in the background" in (
        job.log_path.read_text())
    assert find_undecided_background(tmp_path) == []  # still running
    update_state(job.dir, state="done")
    assert find_undecided_background(tmp_path) == [job]
    update_state(job.dir, decision="kept-current")
    assert find_undecided_background(tmp_path) == []


# ---------------------------------------------------------------------------
# the gate, judged: worse figures, what cannot be measured, how much stands behind each figure


def _gate_row(name: str, **values) -> dict:
    row = {"model": name, "available": True, "version": f"{name}-v", "patients": ["A", "B"], "images": 4,
           "images_with_lesions": 3, "lesions": 3, "abnormalities_scored": 3, "malignant": 1, "benign": 2,
           "dice_mean": 0.4, "iou_mean": 0.3, "lesion_sensitivity": 0.5, "fp_per_image": 1.0, "auc": 0.0,
           "auc_ci": [0.0, 0.0], "sensitivity": 0.0, "specificity": 1.0}
    return {**row, **values}


def _comparison(current: dict, new: dict) -> dict:
    return {"description": "a test", "patients": current["patients"], "rows": [current, new], "notes": []}


def test_judge_marks_worse_figures_unmeasurable_ones_and_the_held_out_size():
    comparison = _comparison(_gate_row("current", dice_mean=0.467),
                             _gate_row("new", dice_mean=0.187, iou_mean=0.2, fp_per_image=0.5, auc=1.0, auc_ci=[1.0, 1.0]))
    verdict = judge(comparison)
    figures = {f.key: f for f in verdict.figures}
    assert [f.key for f in verdict.worse] == ["dice_mean", "iou_mean"]
    assert [f.key for f in verdict.better] == ["fp_per_image"]
    assert figures["dice_mean"].held_out == "3 images with a lesion, 2 patients"
    assert figures["fp_per_image"].held_out == "4 images, 2 patients"
    assert figures["lesion_sensitivity"].held_out == "3 lesions, 2 patients"
    # 1 malignant and 2 benign: the AUC of 0.0 or 1.0 says nothing, and is not a verdict either way
    auc = figures["auc"]
    assert auc.verdict is None and auc.current_text == auc.new_text == auc.not_measurable
    assert auc.not_measurable == (f"not measurable: too few (1 malignant, 2 benign; at least {AUC_MIN_PER_CLASS} of "
                                  "each needed)")
    assert verdict.worse_lines()[0] == "Dice: 0.467 -> 0.187 (3 images with a lesion, 2 patients)"
    assert verdict.warnings[0].startswith(f"only 2 held-out patients: at least {MIN_HELD_OUT_PATIENTS}")
    assert verdict.summary() == ("new model better on 1, current better on 2 of 7 gate figures (1 not measurable); "
                                 "2 held-out patients: too few to decide")
    table = format_comparison(comparison)
    assert "held out" in table and "3 images with a lesion, 2 patients" in table
    assert "the new model is worse on 2 of 7 figures: Dice, IoU" in table and "warning: only 2 held-out" in table

    # one class only: "not measurable", never 0.000
    one_class = judge(_comparison(_gate_row("current", malignant=0, benign=3, auc=None, auc_ci=[None, None],
                                            sensitivity=None),
                                  _gate_row("new", malignant=0, benign=3, auc=None, auc_ci=[None, None], sensitivity=None)))
    figures = {f.key: f for f in one_class.figures}
    assert figures["auc"].new_text == "not measurable: one class only (3 benign)" and figures["auc"].verdict is None
    assert figures["sensitivity"].new_text == "not measurable: no malignant abnormality"
    assert "0.000" not in figures["auc"].new_text

    # enough of everything: figures, verdicts, no warning
    big = dict(patients=[f"P{i}" for i in range(12)], images=24, images_with_lesions=20, lesions=20,
               abnormalities_scored=20, malignant=8, benign=12)
    verdict = judge(_comparison(_gate_row("current", **big, auc=0.6, auc_ci=[0.4, 0.8]),
                                _gate_row("new", **big, auc=0.7, auc_ci=[0.5, 0.9])))
    assert not verdict.warnings and {f.key: f.verdict for f in verdict.figures}["auc"] == "new"
    assert {f.key: f.new_text for f in verdict.figures}["auc"] == "0.700 (95% CI 0.50-0.90)"


def _done_job_with_gate(tmp_path, comparison: dict) -> Job:
    """A finished job folder whose new model is the bundled weights under another version, with ``comparison``."""
    bundled = load_model(bundled_model_path())
    job_dir = tmp_path / "jobs" / "20260101-000000-bbbbbb"
    new = save_model(bundled.net, dataclasses.replace(bundled.card, version="worse-one"), job_dir / "run" / "best.safetensors")
    (job_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(tmp_path), base_model=str(bundled_model_path())).to_json()))
    (job_dir / "state.json").write_text(json.dumps({"state": "done", "pid": None, "model": str(new), "message": "done"}))
    (job_dir / "comparison.json").write_text(json.dumps(comparison))
    return Job(job_dir)


def test_accept_refuses_a_model_worse_on_any_figure_unless_confirmed(tmp_path, folders):
    comparison = _comparison(_gate_row("current", dice_mean=0.467), _gate_row("new", dice_mean=0.187))
    job = _done_job_with_gate(tmp_path, comparison)
    registry = ModelRegistry()
    with pytest.raises(WorseModel, match=r"worse on 1 of 7 gate figures \(Dice: 0.467 -> 0.187"):
        accept(job, registry)
    assert registry.active().bundled and job.decision() is None and len(registry.list()) == 1
    entry = accept(job, registry, force=True)
    assert registry.active().version == entry.version == "worse-one" and job.decision() == "accepted"
    # the registry keeps the held-out size and what could not be measured with the figures
    assert (entry.metrics["patients"], entry.metrics["images"], entry.metrics["lesions"]) == (2, 4, 3)
    assert entry.metrics["not_measurable"]["auc"].startswith("not measurable: too few")
    assert entry.metrics["too_few_to_decide"] is True
    assert "although worse on 1 gate figures (confirmed)" in job.log_path.read_text()


def test_a_run_outlives_the_process_that_started_it(demo_root, folders):
    """"Keep training and quit" is only honest if the child survives the app's exit: it leads its own session."""
    import subprocess
    import sys

    spec = _spec(demo_root, augment_factor=40, max_epochs=2, max_batches_per_epoch=None)
    script = ("import json, sys; from model.jobs.spec import JobSpec; from model.jobs.job import start_job; "
              "job = start_job(JobSpec.from_json(json.loads(sys.argv[1])), sys.argv[2]); "
              "job.keep_in_background('the app was quit'); print(job.dir)")
    out = subprocess.run([sys.executable, "-c", script, json.dumps(spec.to_json()), str(folders)], capture_output=True,
                         text=True, timeout=120, check=True)
    job = Job(out.stdout.strip())
    try:
        _wait_for_event(job, lambda e: e["kind"] == "batch")  # its parent has exited; it trains on
        assert job.is_alive() and job.state()["background"]
    finally:
        job.cancel(timeout=60)
    assert job.state()["state"] == "cancelled"


def test_the_gate_reads_the_runs_split_as_a_resume_does(demo_root, tmp_path):
    # the run's split.json under this site's key: the gate compares on exactly its validation patients, and a resume
    # (load_split) reads the same split from the same section; under another site's key both refuse with one line
    index = build_index(demo_root, workers=1)
    config = TrainConfig(device="cpu")
    split = msplit.split_patients(msplit.labels_of(index.images), val_fraction=config.val_fraction, seed=config.split_seed)
    section = {**msplit.patients_section(split, index, msplit.site_key()), "seed": split.seed,
               "val_fraction": split.val_fraction}
    (tmp_path / "split.json").write_text(json.dumps(section))
    assert msplit.load_split(tmp_path / "split.json", index, config.to_json()).val == split.val
    spec = JobSpec(root=str(demo_root), config={"device": "cpu"}, base_model=str(bundled_model_path()), bootstrap=20)
    comparison = run_gate(spec, bundled_model_path(), split=section)
    assert comparison["rule"] == "validation-split" and split.val
    assert comparison["patients"] == msplit.site_key().hashes(split.val)

    foreign = {**section, "site": "another-site", "split_digest": "0" * 16}
    with pytest.raises(msplit.DataError) as refused:
        run_gate(spec, bundled_model_path(), split=foreign)
    assert "the run's validation split cannot be read here" in str(refused.value) and "\n" not in str(refused.value)
