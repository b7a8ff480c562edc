"""``bcir retrain`` and ``bcir jobs``: tiny real runs in a child process, driven through ``model.cli.main.main``."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from model.cli.main import main
from model.fileio import user_data_dir
from model.registry.versions import ModelRegistry
from model.jobs.job import Job, list_jobs
from model.jobs.spec import JobSpec
from model.jobs.state import update_state
from model.jobs.verdict import format_comparison, judge
from model.nn.weights import bundled_model_path, read_card
from model.registry.resolve import resolve_model

# as in test_retrain_job: 0.2 mm working spacing gives ~144 x 90 px views of the small demo studies
TINY = dict(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=4, batch_size=8, device="cpu", normal_ratio=0.5,
            max_epochs=1, max_batches_per_epoch=2, early_stop_delta=0.0)
# many batches in epoch 1 and no spacing or tile (a fine-tune takes them from the model), so a cancel lands first
LONG = dict(augment_factor=40, micro_batch=4, batch_size=8, device="cpu", normal_ratio=0.5, max_epochs=3,
            early_stop_delta=0.0)


def _config(tmp_path: Path, name: str, values: dict) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(values))
    return path


@pytest.fixture(autouse=True)
def _no_child_left_running():
    """A test that fails before its cancel must not leave a training child busy for the rest of the session."""
    yield
    for job in list_jobs():
        job.kill()


@pytest.fixture
def tiny(tmp_path) -> Path:
    return _config(tmp_path, "tiny", TINY)


def _bcir(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _log_tail(job: Job) -> str:
    return job.log_path.read_text()[-3000:] if job.log_path.is_file() else "(no log)"


def _registry_state() -> list[tuple[str, bool]]:
    return [(e.version, e.active) for e in ModelRegistry().list()]


def _bundled_version() -> str:
    return read_card(bundled_model_path()).version


def _one_line_error(err: str) -> bool:
    return err.startswith("bcir ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_folder_that_cannot_be_trained_on_exits_2_and_starts_nothing(tmp_path, tiny, capsys):
    (tmp_path / "empty").mkdir()
    code, out, err = _bcir(capsys, "retrain", tmp_path / "empty", "--config", tiny)
    assert code == 2
    assert "0 patients, 0 images" in out and "not trainable: no mammograms found" in out
    assert _one_line_error(err) and "nothing was started" in err
    assert list_jobs() == [] and not (user_data_dir() / "jobs").exists()


def test_conflicting_options_are_refused_before_the_folder_is_read(demo_root, tmp_path, tiny, capsys):
    cases = [
        (["--fine-tune", "--working-spacing", "0.2"], "--working-spacing 0.2 mm differs from the current model's 0.4 mm"),
        (["--fine-tune", "--config", tiny], f"working_spacing_mm in {tiny} 0.2 mm differs"),  # the file's values count too
        (["--config", _config(tmp_path, "typo", {"epochs": 3})], "unknown TrainConfig fields epochs"),
        (["--views", "CC,LAT"], "--views takes CC, MLO or CC,MLO"),
        (["--weights", tmp_path / "missing.safetensors"], "does not exist"),
        (["--fine-spacing", "0.1"], "--fine-spacing and --fine-tile set the fine part of a two-pass model: add --two-pass"),
        (["--two-pass", "--fine-tile", "100"], "--fine-tile 100 is not a multiple of"),
        (["--two-pass", "--fine-spacing", "9"], "--fine-spacing 9.0 is out of range"),
    ]
    for extra, reason in cases:
        code, out, err = _bcir(capsys, "retrain", demo_root, *extra)
        assert code == 2 and reason in err and _one_line_error(err), (extra, err)
        assert out == ""  # refused before the summary
    assert list_jobs() == []


def test_a_tiny_retrain_reaches_the_gate_and_only_accept_switches(demo_root, tiny, capsys):
    bundled = _bundled_version()
    code, out, err = _bcir(capsys, "retrain", demo_root, "--config", tiny, "--epochs", "2", "--bootstrap", "20")
    (job,) = list_jobs()
    assert code == 0, err + _log_tail(job)
    assert job.state()["state"] == "done" and not job.is_alive()
    # summary first, then the run, one line per epoch, the gate, the choice
    order = ["trainable: yes", f"started retrain job {job.id}", "epoch 1/2: train loss", "epoch 2/2: train loss",
             format_comparison(job.comparison()), f"bcir jobs accept {job.id}", f"bcir jobs reject {job.id}"]
    positions = [out.find(text) for text in order]
    assert -1 not in positions and positions == sorted(positions), out
    assert "val loss" in out and "val Dice" in out
    spec = job.spec()
    assert spec.config["max_epochs"] == 2 and spec.config["tile"] == 64  # the flag wins over the file, the file over defaults
    assert not spec.fine_tune and spec.base_model == str(bundled_model_path().resolve()) and spec.bootstrap == 20
    assert spec.data_summary["trainable"] and spec.data_summary["root"]
    assert _registry_state() == [(bundled, True)]  # nothing switched by itself

    code, out, _ = _bcir(capsys, "jobs", "list")
    (row,) = [line for line in out.splitlines() if line.startswith(job.id)]
    assert code == 0 and " done " in row and "undecided" in row and str(Path(demo_root).resolve()) in row
    code, out, _ = _bcir(capsys, "jobs", "list", "--json")
    (data,) = json.loads(out)["jobs"]
    assert (data["id"], data["state"], data["decision"], data["resumable"]) == (job.id, "done", None, False)

    history = json.loads((job.run_dir / "history.json").read_text())
    code, out, _ = _bcir(capsys, "jobs", "show", job.id[:-3])  # a unique prefix
    assert code == 0 and f"retrain job {job.id}: done" in out
    assert f"epochs done: 2; last epoch 2/2: train loss {history[-1]['train_loss']:.4f}" in out
    assert "held out:" in out and "Malignancy AUC" in out and f"bcir jobs accept {job.id}" in out
    code, out, _ = _bcir(capsys, "jobs", "show", job.id, "--json")
    shown = json.loads(out)
    assert shown["history"] == history and shown["comparison"] == job.comparison()
    assert shown["new_model"] == str(job.new_model_path()) and shown["spec"]["config"]["max_epochs"] == 2

    new_version = job.comparison()["rows"][1]["version"]
    worse = judge(job.comparison()).worse
    if worse:  # a model worse on some figure needs --force, as the GUI asks before switching
        code, out, err = _bcir(capsys, "jobs", "accept", job.id)
        assert code == 2 and f"bcir jobs accept {job.id} --force" in err and _registry_state() == [(bundled, True)]
    code, out, _ = _bcir(capsys, "jobs", "accept", job.id, *(["--force"] if worse else []))
    assert code == 0 and f"active model: {new_version}" in out and f"bcir models use {bundled}" in out
    assert _registry_state() == [(bundled, False), (new_version, True)]
    assert read_card(resolve_model()).version == new_version and job.decision() == "accepted"
    code, out, _ = _bcir(capsys, "models", "list")
    assert code == 0 and any(line.startswith("*") and new_version in line for line in out.splitlines())

    code, _, err = _bcir(capsys, "jobs", "reject", job.id)  # too late: say how to go back instead
    assert code == 2 and "accepted already" in err and _one_line_error(err)
    assert job.decision() == "accepted"


def test_an_interrupted_gate_resumes_from_the_terminal_then_reject_keeps_the_current_model(demo_root, tiny, capsys):
    bundled = _bundled_version()
    code, _, err = _bcir(capsys, "retrain", demo_root, "--config", tiny, "--bootstrap", "20")
    (job,) = list_jobs()
    assert code == 0, err + _log_tail(job)
    history = (job.run_dir / "history.json").read_text()

    # gone down during the gate: a live pid that is not the job's child
    update_state(job.dir, state="gating", pid=os.getpid())
    code, out, _ = _bcir(capsys, "jobs", "list")
    assert "interrupted, resumable" in out and "bcir jobs resume JOB" in out
    code, out, err = _bcir(capsys, "jobs", "resume", job.id, "--follow")
    assert code == 0, err + _log_tail(job)
    assert f"resumed retrain job {job.id}" in out and "held out:" in out and f"bcir jobs reject {job.id}" in out
    assert "training had finished" in job.log_path.read_text()
    assert (job.run_dir / "history.json").read_text() == history  # the gate again, no more training

    code, out, _ = _bcir(capsys, "jobs", "reject", job.id[:16])
    assert code == 0 and f"kept the current model ({bundled})" in out
    assert job.decision() == "kept-current" and _registry_state() == [(bundled, True)]
    assert not ModelRegistry().root.exists() or not any(p.is_dir() for p in ModelRegistry().root.iterdir())


def _wait_for_training(job: Job, timeout: float = 120) -> None:
    offset, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        events, offset = job.events(offset)
        if any(e["kind"] == "batch" for e in events):
            return
        assert job.is_alive(), f"child ended first: {job.state()}\n{_log_tail(job)}"
        time.sleep(0.05)
    raise AssertionError(f"no batch within {timeout} s: {job.state()}")


def test_detach_then_follow_and_cancel_leaves_no_model(demo_root, tmp_path, capsys, monkeypatch):
    before = _registry_state()
    code, out, err = _bcir(capsys, "retrain", demo_root, "--fine-tune", "--config", _config(tmp_path, "long", LONG),
                           "--detach")
    (job,) = list_jobs()
    assert code == 0, err
    assert f"started retrain job {job.id}" in out
    assert f"bcir jobs follow {job.id}" in out and f"bcir jobs cancel {job.id}" in out
    spec = job.spec()  # fine-tuning keeps the current model's working resolution (the bundled one: 0.4 mm, 256 px)
    card = read_card(bundled_model_path())
    assert spec.fine_tune and spec.train_config().init_weights == str(bundled_model_path().resolve())
    assert (spec.config["working_spacing_mm"], spec.config["tile"]) == (card.preprocess.working_spacing_mm,
                                                                        card.tile_size)

    def pressed_ctrl_c(self, since_offset=0):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Job, "events", pressed_ctrl_c)
        code, out, err = _bcir(capsys, "jobs", "follow", job.id)
    assert code == 130 and "it does not cancel the job" in out and "goes on" in err
    assert not job.cancel_path.exists() and job.is_alive(), _log_tail(job)
    _wait_for_training(job)  # so the cancel lands mid-epoch, where a model could be left behind

    code, out, err = _bcir(capsys, "jobs", "cancel", job.id[:-2])
    assert code == 0, err + _log_tail(job)
    state = job.state()
    assert state["state"] == "cancelled" and "force" not in state["message"] and f"{job.id} cancelled" in out
    assert not job.is_alive() and not list(job.dir.rglob("*.safetensors")) and job.new_model_path() is None
    assert _registry_state() == before

    code, _, err = _bcir(capsys, "jobs", "cancel", job.id)
    assert code == 2 and "nothing to cancel" in err and _one_line_error(err)
    code, _, err = _bcir(capsys, "jobs", "accept", job.id)
    assert code == 2 and "cancelled" in err and _one_line_error(err) and _registry_state() == before


def test_ctrl_c_while_retrain_follows_cancels_the_job(demo_root, tmp_path, capsys, monkeypatch):
    def pressed_ctrl_c(self, since_offset=0):
        raise KeyboardInterrupt

    monkeypatch.setattr(Job, "events", pressed_ctrl_c)
    code, out, err = _bcir(capsys, "retrain", demo_root, "--config", _config(tmp_path, "long", LONG))
    (job,) = list_jobs()
    assert code == 130 and "cancelling retrain job" in err
    state = job.state()
    assert state["state"] == "cancelled" and "force" not in state["message"] and not job.is_alive(), _log_tail(job)
    assert f"{job.id} cancelled" in err and not list(job.dir.rglob("*.safetensors"))


def _hand_made_job(job_id: str, root: Path, state: dict, *, checkpoint: bool = False) -> Job:
    """A job folder as a child would have left it, without running one."""
    job_dir = user_data_dir() / "jobs" / job_id
    (job_dir / "run").mkdir(parents=True)
    (job_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(root)).to_json()))
    (job_dir / "state.json").write_text(json.dumps({"started": "2025-01-01T10:00:00+00:00", "finished": None, **state}))
    if checkpoint:
        (job_dir / "run" / "checkpoint.safetensors").write_bytes(b"x")
    return Job(job_dir)


def test_jobs_by_id_or_prefix_and_interrupted_ones(tmp_path, capsys):
    resumable = _hand_made_job("20250101-100000-aaaaaa", tmp_path, {"state": "running", "pid": None, "message": "x"},
                               checkpoint=True)
    dead = _hand_made_job("20250101-100000-abcdef", tmp_path, {"state": "running", "pid": None, "message": "starting"})

    code, out, _ = _bcir(capsys, "jobs", "list")
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("2025")}
    assert "interrupted, resumable" in rows[resumable.id]
    assert "interrupted" in rows[dead.id] and "resumable" not in rows[dead.id]

    for key, reason in (("2025", "matches 2 jobs"), ("20250101-100000-a", "matches 2 jobs"), ("nope", "no retrain job 'nope'")):
        for action in ("show", "accept", "reject", "cancel", "resume", "abandon", "follow"):
            code, out, err = _bcir(capsys, "jobs", action, key)
            assert code == 2 and reason in err and _one_line_error(err) and out == "", (action, key, err)
    assert resumable.state()["state"] == dead.state()["state"] == "running"  # nothing happened to either

    code, _, err = _bcir(capsys, "jobs", "cancel", "20250101-100000-ab")  # unique: this one
    assert code == 2 and f"bcir jobs abandon {dead.id}" in err
    code, out, _ = _bcir(capsys, "jobs", "show", "20250101-100000-ab")
    assert code == 0 and f"bcir jobs abandon {dead.id}` closes it" in out
    code, _, err = _bcir(capsys, "jobs", "resume", dead.id)
    assert code == 2 and "no checkpoint to resume from" in err
    code, out, _ = _bcir(capsys, "jobs", "abandon", dead.id)
    assert code == 0 and dead.state()["state"] == "cancelled" and "nothing to resume from" in dead.state()["message"]
    assert "reader" not in dead.state()["message"] and dead.state()["message"] in out
    code, _, err = _bcir(capsys, "jobs", "abandon", dead.id)
    assert code == 2 and "nothing to abandon" in err
    assert resumable.state()["state"] == "running"


def test_accept_of_a_worse_model_lists_the_worse_figures_and_needs_force(tmp_path, capsys):
    from model.nn.weights import load_model, save_model

    bundled = load_model(bundled_model_path())
    job = _hand_made_job("20250101-100000-cccccc", tmp_path, {"state": "done", "pid": None, "message": "done"})
    new = save_model(bundled.net, replace(bundled.card, version="worse-one"), job.run_dir / "best.safetensors")
    update_state(job.dir, model=str(new))
    row = {"available": True, "patients": ["A", "B"], "images": 4, "images_with_lesions": 3, "lesions": 3,
           "abnormalities_scored": 3, "malignant": 1, "benign": 2, "iou_mean": 0.3, "lesion_sensitivity": 0.5,
           "fp_per_image": 1.0, "auc": 1.0, "auc_ci": [1.0, 1.0], "sensitivity": 0.0, "specificity": 1.0}
    comparison = {"description": "test", "patients": ["A", "B"], "notes": [],
                  "rows": [{**row, "model": "current", "dice_mean": 0.467}, {**row, "model": "new", "dice_mean": 0.187}]}
    (job.dir / "comparison.json").write_text(json.dumps(comparison))
    before = _registry_state()

    code, out, err = _bcir(capsys, "jobs", "accept", job.id)
    assert code == 2 and out == "" and _registry_state() == before and job.decision() is None
    assert "worse than the current one on 1 of 7 gate figures" in err
    assert "Dice: 0.467 -> 0.187 (3 images with a lesion, 2 patients)" in err
    assert "warning: only 2 held-out patients" in err and f"bcir jobs accept {job.id} --force" in err

    code, out, _ = _bcir(capsys, "jobs", "show", job.id)
    assert "Malignancy AUC" in out and "not measurable" in out and "too few (1 malignant, 2 benign" in out
    assert "the new model is worse on 1 of 7 figures: Dice" in out
    code, out, _ = _bcir(capsys, "jobs", "show", job.id, "--json")
    assert json.loads(out)["judgement"]["worse"] == ["dice_mean"]

    code, out, err = _bcir(capsys, "jobs", "accept", job.id, "--force")
    assert code == 0, err
    assert "used although worse on 1 gate figures: Dice" in out and "active model: worse-one" in out
    assert job.decision() == "accepted" and ModelRegistry().active().version == "worse-one"
    code, out, _ = _bcir(capsys, "models", "list")
    (line,) = [line for line in out.splitlines() if "worse-one" in line]
    assert "Dice 0.187 (2 patients, 4 images · safety gate · too few to compare)" in line


def test_retrain_estimate_prints_the_held_out_set_and_a_timed_estimate_and_starts_nothing(demo_root, tiny, capsys):
    code, out, err = _bcir(capsys, "retrain", demo_root, "--config", tiny, "--epochs", "3", "--estimate")
    assert code == 0, err
    assert list_jobs() == [] and not (user_data_dir() / "jobs").exists()
    assert "held out for the safety gate: 2 patients" in out and "warning: too small to decide" in out
    (line,) = [line for line in out.splitlines() if line.startswith("estimate: about ")]
    assert "training: 3 epochs of" in line and "Estimated from 3 timed steps of" in line and "tiles of 64 px on cpu" in line
    assert "nothing was started" in out


def test_retrain_two_pass_estimate_counts_a_new_pair_and_names_both_parts(demo_root, tiny, capsys):
    code, out, err = _bcir(capsys, "retrain", demo_root, "--config", tiny, "--two-pass", "--fine-spacing", "0.1",
                           "--fine-tile", "64", "--estimate")
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if line.startswith("estimate: about ")]
    assert "coarse part 1 epoch of" in line and ", fine part 1 epoch of" in line
    assert "tiles of 64 px (coarse part) and" in line and "(fine part)" in line
    assert list_jobs() == []


def test_jobs_pause_stops_a_running_job_resumably(demo_root, tmp_path, capsys):
    code, out, err = _bcir(capsys, "retrain", demo_root, "--config", _config(tmp_path, "long", {**LONG, "tile": 64,
                                                                                                "working_spacing_mm": 0.2}),
                           "--detach")
    (job,) = list_jobs()
    assert code == 0, err
    _wait_for_training(job)
    code, out, err = _bcir(capsys, "jobs", "pause", job.id)
    assert code == 0, err + _log_tail(job)
    assert f"retrain job {job.id} paused: paused (asked from the command line) during epoch 1 of 3" in out
    code, out, _ = _bcir(capsys, "jobs", "list")
    assert "paused, resumable" in out and "`bcir jobs resume JOB` continues it" in out
    code, _, err = _bcir(capsys, "jobs", "pause", job.id)
    assert code == 2 and "nothing to pause" in err and _one_line_error(err)
    code, out, _ = _bcir(capsys, "jobs", "abandon", job.id)
    assert code == 0 and "closed without resuming, as asked" in out and job.state()["state"] == "cancelled"
