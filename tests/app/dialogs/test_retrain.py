"""Tools → Retrain on folder and Tools → Models, driven like a site's engineer drives them, on tiny synthetic folders."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from model.registry.versions import ModelRegistry, malignancy_trust
from model.jobs.job import Job, find_resumable, start_job
from model.jobs.spec import JobSpec
from model.jobs.verdict import GATE_METRICS
from model.data.study_index import build_index
from model.train.config import TrainConfig
from model.nn.weights import bundled_model_path, load_model, save_model
from tests.app.qt_helpers import TIMEOUT_MS, open_root
from tests.conftest import make_dicom

import app.dialogs.retrain_dialog
import app.main_window
from app.main_window import MainWindow
from app.dialogs.retrain_dialog import RetrainDialog

# tiny runs: ~144 x 90 px views at 0.2 mm, 64 px tiles, two batches an epoch
QUICK = dict(augment_factor=2, micro_batch=4, normal_ratio=0.5, max_batches_per_epoch=2, early_stop_delta=0.0)
RUN_MS = 240_000


@pytest.fixture(autouse=True)
def _no_timing_unless_asked(monkeypatch):
    """The time estimate runs a training child of its own; only the tests about it keep it on."""
    monkeypatch.setattr(RetrainDialog, "AUTO_ESTIMATE", False)


def make_window(qtbot) -> MainWindow:
    w = MainWindow()
    w.resize(1500, 950)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def window(qtbot):
    w = make_window(qtbot)
    qtbot.waitUntil(lambda: w.ai.predictor is not None, timeout=TIMEOUT_MS)  # the bundled model
    yield w
    if w.retrain_dialog is not None and w.retrain_dialog.job is not None and w.retrain_dialog.job.is_alive():
        w.retrain_dialog.job.kill()
    w.close()


def quick_dialog(qtbot, window, folder):
    dialog = window.show_retrain()
    with qtbot.waitSignal(dialog.summaryReady, timeout=TIMEOUT_MS):
        dialog.set_folder(folder)
    dialog.form.scratch.setChecked(True)
    dialog.form.spacing.setValue(0.2)
    dialog.form.tile.setValue(64)
    dialog.form.epochs.setValue(1)
    dialog.form.batch.setValue(8)
    dialog.form.device.setCurrentText("cpu")
    dialog.config_overrides = dict(QUICK)
    return dialog


def button(box, text: str):
    return next(b for b in box.buttons() if b.text() == text)


def start_anyway(dialog):
    """Start, answering "Start anyway" to the warning that 2 held-out demo patients are too few to decide."""
    before = dialog.job
    assert dialog.start() is None and dialog.start_prompt is not None and dialog.job is before
    button(dialog.start_prompt, "Start anyway").click()
    assert dialog.start_prompt is None and dialog.job not in (None, before)
    return dialog.job


def wait_for_event(qtbot, job, kind: str) -> None:
    def seen():
        assert any(e["kind"] == kind for e in job.events()[0]), job.state()

    qtbot.waitUntil(seen, timeout=RUN_MS)


def test_the_summary_counts_what_the_folder_holds_and_lists_its_problems(qtbot, window, demo_root, tmp_path):
    root = tmp_path / "site"
    shutil.copytree(demo_root, root)
    (root / "broken.dcm").write_bytes(b"not a DICOM at all")
    index = build_index(demo_root)
    # one mask of the wrong size: its abnormality is a problem, named with its CSV row
    victim = next(a for i in index.images for a in i.abnormalities if a.mask_path)
    target = root / Path(victim.mask_path).relative_to(demo_root)
    make_dicom(target, __import__("numpy").zeros((20, 20), "uint8"), PatientID="X")

    dialog = window.show_retrain()
    with qtbot.waitSignal(dialog.summaryReady, timeout=TIMEOUT_MS) as blocker:
        dialog.set_folder(root)
    summary = blocker.args[0]
    abnormalities = [a for i in index.images for a in i.abnormalities]
    assert summary.patients == len(index.patients()) and summary.images == len(index.images)
    assert summary.lesions == len(abnormalities)
    assert summary.malignant == sum(a.malignant for a in abnormalities)
    text = dialog.folder_box.summary_label.text()
    assert f"{summary.patients} patients, {summary.images} images" in text
    assert f"{summary.malignant} malignant</b>, {summary.benign} benign" in text
    tree = dialog.folder_box.problems
    problems = [(tree.topLevelItem(i).text(0), tree.topLevelItem(i).text(1)) for i in range(tree.topLevelItemCount())]
    assert ("file", str(root / "broken.dcm")) in problems
    assert any(kind == "mask" and victim.source in where for kind, where in problems)
    assert f"Problems: {summary.mask_problems} masks, {summary.skipped_files} files" in text
    assert summary.mask_problems >= 1 and summary.skipped_files >= 1
    assert dialog.start_button.isEnabled() == summary.trainable


def test_an_unlabelled_folder_cannot_be_trained_on_and_says_why(qtbot, window, tmp_path):
    make_dicom(tmp_path / "plain" / "a.dcm", __import__("numpy").full((64, 48), 100, "uint16"), ImageLaterality="L",
               ViewPosition="CC")
    dialog = window.show_retrain()
    with qtbot.waitSignal(dialog.summaryReady, timeout=TIMEOUT_MS) as blocker:
        dialog.set_folder(tmp_path / "plain")
    assert not blocker.args[0].trainable and not dialog.start_button.isEnabled()
    assert "Cannot train" in dialog.folder_box.summary_label.text()
    assert dialog.start() is None and "Choose a folder" in dialog.setup_message.text()


def test_a_run_reaches_the_gate_the_new_model_is_used_and_rolled_back(qtbot, window, demo_root, monkeypatch):
    monkeypatch.setattr(RetrainDialog, "AUTO_ESTIMATE", True)
    registry = ModelRegistry()
    bundled = registry.active()
    assert window.ai.model_version == bundled.version
    index = open_root(qtbot, window, demo_root)
    patient_id = next(iter(index.patients()))
    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid: pid == patient_id):
        window.select_patient(patient_id)
    assert {ai.result.model_version for ai in window.viewer.ai.values()} == {bundled.version}

    dialog = quick_dialog(qtbot, window, demo_root)
    # before Start: the held-out set the gate will use, too small to decide, and a time estimate from real steps
    assert "Held out for the safety gate (70/30 split): 2 patients" in dialog.estimate_view.plan_label.text()
    assert "Too small to decide between two models" in dialog.estimate_view.plan_label.text()
    with qtbot.waitSignal(dialog.estimateReady, timeout=RUN_MS) as estimated:
        dialog.estimate_time()  # the options were set after the folder was read: time them now rather than later
    guess = estimated.args[0]
    assert guess.units.tile == 64 and guess.units.steps == 3 and guess.counts.epochs == 1
    estimate_text = dialog.estimate_view.estimate_label.text()
    assert "Estimated from 3 timed steps of" in estimate_text and "64 px on cpu" in estimate_text
    with qtbot.waitSignal(dialog.jobFinished, timeout=RUN_MS) as blocker:
        job = start_anyway(dialog)
        assert dialog.pages.currentIndex() == 1
    assert blocker.args[0] == "done", job.log_path.read_text()[-2000:]
    # the estimate counted what the run did: micro-batches an epoch, images for the gate
    (epoch_start,) = [e for e in job.events()[0] if e["kind"] == "epoch_start"]
    assert guess.counts.batches_per_epoch == epoch_start["batches"]
    assert guess.counts.gate_images == job.comparison()["rows"][0]["images"]
    # the live view followed the run: an epoch on the curves, the log, the gate table on the same patients
    assert [e for e, _ in dialog.run_view.curve_points("train_loss")] == [1]
    assert "safety gate" in dialog.run_view.log_view.toPlainText()
    cells = dialog.gate_view.cells()
    assert len(cells) == len(GATE_METRICS)
    dice_row = cells[[k for k, _, _ in GATE_METRICS].index("dice_mean")]
    assert all(c not in ("", "n/a") for c in dice_row[:2]) and dice_row[2] in ("new", "current", "tie")
    comparison = job.comparison()
    rows = {r["model"]: r for r in comparison["rows"]}
    assert rows["current"]["patients"] == rows["new"]["patients"] == comparison["patients"]
    assert dice_row[0] == f"{rows['current']['dice_mean']:.3f}" and dice_row[1] == f"{rows['new']['dice_mean']:.3f}"
    assert dice_row[3] == f"{rows['new']['images_with_lesions']} images with a lesion, 2 patients"  # the size behind it
    assert "training protocol" in dialog.gate_view.description.text()  # why the curve's Dice is not the gate's
    assert registry.active().version == bundled.version  # nothing switched by itself
    assert len(registry.list()) == 1

    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid: pid == patient_id):
        entry = dialog.use_new_model()
        if dialog.verdict.worse:  # a model worse on some figure is used only once the reader confirms
            assert entry is None and registry.active().version == bundled.version
            button(dialog.confirm_box, "Use new model anyway").click()
            entry = dialog.accepted_entry
    assert entry is not None and registry.active().version == entry.version != bundled.version
    assert entry.gate is not None and entry.log_path is not None and entry.parent is None
    assert window.ai.model_version == entry.version and entry.version in window.ai_label.text()
    assert {ai.result.model_version for ai in window.viewer.ai.values()} == {entry.version}
    assert not dialog.gate_view.use_button.isEnabled()
    dialog.show_setup()  # "Train again": the model to fine-tune and to compare with is the one now in use
    assert entry.version in dialog.form.fine_tune.text() and dialog.spec().base_model == str(entry.weights)
    second = start_anyway(dialog)  # the new run's bar starts empty, not at the last run's "done"
    progress = dialog.run_view.progress
    assert progress.format() != "done" and progress.value() < 1000 and not dialog.gate_view.isVisible()
    second.kill()

    # rollback in one click, from Tools → Models
    models = window.show_models()
    assert models.select(bundled.version)
    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid: pid == patient_id):
        assert models.use_selected() is not None
    assert registry.active().version == bundled.version and window.ai.model_version == bundled.version
    assert {ai.result.model_version for ai in window.viewer.ai.values()} == {bundled.version}
    assert bundled.version in window.ai_label.text()
    # the bundled model cannot be removed, the retrained one can once it is not active
    assert models.select(bundled.version) and not models.remove_button.isEnabled()
    assert not models.remove(bundled.version) and len(registry.list()) == 2
    assert models.select(entry.version) and models.remove(entry.version)
    assert [e.version for e in registry.list()] == [bundled.version]


def test_cancel_stops_the_run_and_leaves_the_registry_unchanged(qtbot, window, demo_root):
    registry = ModelRegistry()
    before = [(e.version, e.active) for e in registry.list()]
    dialog = quick_dialog(qtbot, window, demo_root)
    dialog.form.epochs.setValue(50)
    dialog.config_overrides = {**QUICK, "max_batches_per_epoch": None}
    with qtbot.waitSignal(dialog.jobFinished, timeout=RUN_MS) as blocker:
        job = start_anyway(dialog)
        qtbot.waitUntil(lambda: "training" in dialog.run_view.run_state.text()
                        or "epoch" in dialog.run_view.progress.format(), timeout=RUN_MS)
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "cancelled"
    assert job.new_model_path() is None
    assert not (job.run_dir / "model.safetensors").exists()
    assert [(e.version, e.active) for e in registry.list()] == before
    assert not dialog.gate_view.isVisible()


def test_a_killed_run_is_offered_for_resume_at_the_next_start(qtbot, demo_root):
    config = dict(QUICK, working_spacing_mm=0.2, tile=64, batch_size=8, device="cpu", max_epochs=2)
    job = start_job(JobSpec(root=str(demo_root), config=config, base_model=str(bundled_model_path()), bootstrap=50))
    deadline = time.monotonic() + RUN_MS / 1000
    offset = 0
    while True:  # the first epoch's checkpoint, then the kill: the app and its child went down
        events, offset = job.events(offset)
        if any(e["kind"] == "epoch_end" for e in events):
            break
        assert time.monotonic() < deadline and job.state()["state"] == "running", job.log_path.read_text()[-2000:]
        time.sleep(0.05)
    os.killpg(int(job.state()["pid"]), signal.SIGKILL)
    qtbot.waitUntil(lambda: not job.is_alive(), timeout=20_000)
    assert job.resumable()

    window = make_window(qtbot)
    try:
        qtbot.waitUntil(lambda: window.resume_prompt is not None, timeout=TIMEOUT_MS)
        assert job.id in window.resume_prompt.text()
        assert "stopped without a word after 1 complete epoch" in window.resume_prompt.text()
        resume = next(b for b in window.resume_prompt.buttons() if b.text() == "Resume")
        dialog_ready = lambda: window.retrain_dialog is not None  # noqa: E731
        resume.click()
        assert dialog_ready() and window.retrain_dialog.job == job
        with qtbot.waitSignal(window.retrain_dialog.jobFinished, timeout=RUN_MS) as blocker:
            pass
        assert blocker.args[0] == "done", job.log_path.read_text()[-2000:]
        assert [e for e, _ in window.retrain_dialog.run_view.curve_points("train_loss")] == [1, 2]  # epoch 1 kept, epoch 2 added
        assert "resumed after epoch 1" in job.log_path.read_text() or "resuming" in job.log_path.read_text()
    finally:
        window.close()
    assert job not in find_resumable()  # finished: not offered again


def test_an_interrupted_run_can_be_discarded_and_is_not_offered_again(qtbot, demo_root):
    config = dict(QUICK, working_spacing_mm=0.2, tile=64, batch_size=8, device="cpu", max_epochs=3)
    job = start_job(JobSpec(root=str(demo_root), config=config, base_model=str(bundled_model_path()), bootstrap=50))
    qtbot.waitUntil(lambda: job.checkpoint_path.is_file(), timeout=RUN_MS)
    job.kill()
    qtbot.waitUntil(lambda: job.resumable(), timeout=20_000)
    window = make_window(qtbot)
    try:
        qtbot.waitUntil(lambda: window.resume_prompt is not None, timeout=TIMEOUT_MS)
        next(b for b in window.resume_prompt.buttons() if b.text() == "Discard it").click()
        assert job.state()["state"] == "cancelled" and job not in find_resumable()
        assert window.retrain_dialog is None
    finally:
        window.close()
    again = make_window(qtbot)
    try:
        qtbot.wait(200)
        assert again.resume_prompt is None
    finally:
        again.close()


def test_a_run_still_going_at_start_is_followed_again(qtbot, demo_root):
    """The viewer went down, its child did not: the next start shows the run instead of offering a resume."""
    config = dict(QUICK, working_spacing_mm=0.2, tile=64, batch_size=8, device="cpu", max_epochs=2)
    job = start_job(JobSpec(root=str(demo_root), config=config, base_model=str(bundled_model_path()), bootstrap=50))
    window = make_window(qtbot)
    try:
        qtbot.waitUntil(lambda: window.retrain_dialog is not None, timeout=TIMEOUT_MS)
        assert window.retrain_dialog.job == job and window.resume_prompt is None
        with qtbot.waitSignal(window.retrain_dialog.jobFinished, timeout=RUN_MS) as blocker:
            pass
        assert blocker.args[0] == "done"
    finally:
        if job.is_alive():
            job.kill()
        window.close()


def test_a_run_that_died_before_its_first_epoch_is_closed_quietly(qtbot, demo_root):
    config = dict(QUICK, working_spacing_mm=0.2, tile=64, batch_size=8, device="cpu", max_epochs=2)
    job = start_job(JobSpec(root=str(demo_root), config=config, base_model=str(bundled_model_path()), bootstrap=50))
    job.kill()  # still importing: no checkpoint exists
    qtbot.waitUntil(lambda: job.interrupted(), timeout=20_000)
    assert not job.resumable()
    window = make_window(qtbot)
    try:
        qtbot.waitUntil(lambda: job.state()["state"] == "cancelled", timeout=TIMEOUT_MS)
        assert window.resume_prompt is None and window.retrain_dialog is None
    finally:
        window.close()


def test_a_damaged_job_folder_never_stops_the_start(qtbot, tmp_path):
    jobs = Path(os.environ["BCIR_DATA_DIR"]) / "jobs" / "20260101-000000-abcdef"
    jobs.mkdir(parents=True)
    (jobs / "spec.json").write_text("{ not json")
    (jobs / "state.json").write_text('{"state": "running", "pid": 999999}')
    window = make_window(qtbot)
    try:
        qtbot.wait(300)
        assert window.resume_prompt is None and window.retrain_dialog is None
        assert not window.errors.messages
    finally:
        window.close()


def test_the_dialog_stops_following_a_job_whose_folder_is_gone(qtbot, window, demo_root):
    config = dict(QUICK, working_spacing_mm=0.2, tile=64, batch_size=8, device="cpu", max_epochs=50,
                  max_batches_per_epoch=None)
    job = start_job(JobSpec(root=str(demo_root), config=config, base_model=str(bundled_model_path()), bootstrap=50))
    dialog = window.show_retrain()
    dialog.attach(job)
    qtbot.waitUntil(lambda: bool(job.events()[0]), timeout=RUN_MS)
    with qtbot.waitSignal(dialog.jobFinished, timeout=TIMEOUT_MS) as blocker:
        job.kill()  # no event is processed between these two lines: the dialog next sees the folder gone
        shutil.rmtree(job.dir)
    assert blocker.args[0] == "failed" and "gone" in dialog.run_view.run_state.text()


# ---------------------------------------------------------------------------
# the setup page: the path field, the demo shortcut, remembered options, the held-out warning


def test_return_and_tab_in_the_path_field_read_the_folder_typed_and_never_open_browse(qtbot, window, demo_root, tmp_path,
                                                                                     monkeypatch):
    browsed = []
    monkeypatch.setattr("app.dialogs.retrain_folder.QFileDialog.getExistingDirectory", lambda *a, **k: browsed.append(a) or "")
    other = tmp_path / "other"
    shutil.copytree(demo_root, other)
    shutil.rmtree(next(p for p in (other / "CBIS-DDSM").iterdir() if p.is_dir()))  # one image fewer than the demo
    dialog = window.show_retrain()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=TIMEOUT_MS)
    dialog.folder_box.path.setFocus()
    with qtbot.waitSignal(dialog.summaryReady, timeout=TIMEOUT_MS) as first:
        qtbot.keyClicks(dialog.folder_box.path, str(demo_root))
        qtbot.keyClick(dialog.folder_box.path, Qt.Key.Key_Return)
    assert browsed == [] and first.args[0].root == str(Path(demo_root).resolve())

    dialog.folder_box.path.selectAll()
    with qtbot.waitSignal(dialog.summaryReady, timeout=TIMEOUT_MS) as second:
        qtbot.keyClicks(dialog.folder_box.path, str(other))
        qtbot.keyClick(dialog.folder_box.path, Qt.Key.Key_Tab)  # leaving the field reads the folder typed
    assert second.args[0].root == str(other.resolve()) and second.args[0].images == first.args[0].images - 1
    assert f"{second.args[0].images} images" in dialog.folder_box.summary_label.text() and browsed == []
    with qtbot.assertNotEmitted(dialog.summaryReady, wait=300):  # Return again on the same folder: not read twice
        dialog.folder_box.path.setFocus()
        qtbot.keyClick(dialog.folder_box.path, Qt.Key.Key_Return)


def test_the_demo_studies_are_one_click_away(qtbot, demo_root, monkeypatch):
    monkeypatch.setattr(app.main_window, "default_path", lambda: str(demo_root))
    window = make_window(qtbot)
    try:
        dialog = window.show_retrain()
        assert dialog.folder_box.demo_button.isVisible()
        with qtbot.waitSignal(dialog.summaryReady, timeout=TIMEOUT_MS) as blocker:
            qtbot.mouseClick(dialog.folder_box.demo_button, Qt.MouseButton.LeftButton)
        assert blocker.args[0].root == str(Path(demo_root).resolve()) and dialog.start_button.isEnabled()
    finally:
        window.close()


def test_options_are_remembered_and_the_papers_defaults_are_one_click_away(qtbot, demo_root):
    window = make_window(qtbot)
    try:
        dialog = quick_dialog(qtbot, window, demo_root)
        dialog.form.epochs.setValue(7)
        dialog.form.augment.setValue(3)
        dialog.form.minutes.setValue(12)
        dialog.form.views.setCurrentIndex(1)
        dialog.form.schedule.setCurrentIndex(1)  # cosine
        assert not dialog.form.hard_negatives.isEnabled()  # from scratch there is no model whose false positives
        dialog.form.hard_negatives.setValue(2)
        assert dialog.start() is None  # 2 held-out patients: asked first, and "Cancel" starts nothing
        assert "Start anyway?" in dialog.start_prompt.text() and "at least 10 are needed" in dialog.start_prompt.text()
        button(dialog.start_prompt, "Cancel").click()
        assert dialog.job is None and not list((Path(os.environ["BCIR_DATA_DIR"]) / "jobs").glob("*"))
        job = start_anyway(dialog)
        job.kill()
    finally:
        window.close()
    again = make_window(qtbot)  # the next session
    try:
        dialog = again.show_retrain()
        form = dialog.form
        assert (form.epochs.value(), form.augment.value(), form.minutes.value(), form.tile.value()) == (7, 3, 12, 64)
        assert dialog.form.scratch.isChecked() and dialog.form.views.currentData() == ("CC", "MLO")
        assert dialog.form.device.currentText() == "cpu" and abs(dialog.form.spacing.value() - 0.2) < 1e-9
        options = form.options()
        assert (options.lr_schedule, options.hard_negatives) == ("cosine", 2)
        assert options.train_config().lr_schedule == "cosine"
        assert options.train_config().hard_negatives_per_image == 0  # from scratch: none
        assert replace(options, start="fine-tune").train_config().hard_negatives_per_image == 2
        dialog.form.defaults_button.click()
        assert (form.schedule.currentData(), form.hard_negatives.value()) == ("constant", 0)
        paper = TrainConfig()
        assert (form.epochs.value(), form.batch.value(), form.augment.value(), form.tile.value()) == (
            paper.max_epochs, paper.batch_size, paper.augment_factor, paper.tile)
        assert dialog.form.views.currentData() == paper.views and dialog.form.minutes.value() == 0
    finally:
        again.close()


def test_a_tile_the_network_cannot_take_is_refused_at_once_and_nothing_starts(qtbot, window, demo_root, monkeypatch):
    monkeypatch.setattr(RetrainDialog, "AUTO_ESTIMATE", True)
    dialog = quick_dialog(qtbot, window, demo_root)
    dialog.estimate_view.stop()  # the timing the folder scheduled: the test asks for one itself below
    work = []  # what a start or a timing would do: a training child, a timing child, an image read
    monkeypatch.setattr("app.dialogs.retrain_dialog.start_job", lambda *a, **k: work.append("start_job"))
    monkeypatch.setattr("app.dialogs.retrain_dialog.pick_timing_image", lambda *a, **k: work.append("timing image"))
    monkeypatch.setattr("app.dialogs.retrain_estimate.time_units_in_child", lambda *a, **k: work.append("timing"))
    monkeypatch.setattr("model.data.dicom_io.read_image", lambda *a, **k: work.append("read_image"))
    assert dialog.start_button.isEnabled() and dialog.setup_message.text() == ""

    dialog.form.tile.setValue(100)  # typed: the spin box steps by 32 but takes any value in range
    line = "Tile 100 is not a multiple of 16 (the network pools 4 times by 2)"
    assert dialog.setup_message.text() == line and not dialog.start_button.isEnabled()  # at once, before Start
    assert not dialog.estimate_view.delay.isActive() and dialog.estimate_view.plan_label.text() == ""
    assert dialog.start() is None and dialog.start_prompt is None and dialog.job is None
    dialog.estimate_time()
    assert dialog.setup_message.text() == line
    assert work == [] and not (Path(os.environ["BCIR_DATA_DIR"]) / "jobs").exists()

    dialog.config_overrides = {**QUICK, "val_fraction": 1.0}  # a field set by code keeps its own name
    dialog.form.tile.setValue(64)
    assert dialog.setup_message.text() == "val_fraction 1.0 is out of range (above 0 and below 1)"
    dialog.config_overrides = dict(QUICK)
    dialog.form.epochs.setValue(2)
    assert dialog.setup_message.text() == "" and dialog.start_button.isEnabled()  # fixed: the line goes, Start is back
    assert "Held out for the safety gate" in dialog.estimate_view.plan_label.text()


def test_the_split_is_made_once_per_folder_and_split_settings_while_options_change(qtbot, window, demo_root,
                                                                                     monkeypatch):
    made = []
    real = app.dialogs.retrain_dialog.run_split
    monkeypatch.setattr("app.dialogs.retrain_dialog.run_split", lambda index, config: made.append(config.views) or
                        real(index, config))
    dialog = quick_dialog(qtbot, window, demo_root)
    assert made and "Held out for the safety gate" in dialog.estimate_view.plan_label.text()
    before = len(made)
    for epochs in (3, 4, 5):  # options that leave the split as it is: the plan and the counts reuse it
        dialog.form.epochs.setValue(epochs)
    dialog.form.augment.setValue(3)
    assert len(made) == before
    dialog.form.views.setCurrentIndex(1)  # CC and MLO: another split, made once for the plan and the counts
    assert made[before:] == [("CC", "MLO")] and "Held out for the safety gate" in dialog.estimate_view.plan_label.text()
    dialog.form.epochs.setValue(6)
    assert made[before:] == [("CC", "MLO")]


# ---------------------------------------------------------------------------
# the gate: what cannot be measured, the held-out size, and a confirmation before a worse model is used


def _done_job(tmp_path, *, dice=(0.467, 0.187), malignant=1, benign=2) -> Job:
    """A finished job whose new model is the bundled weights under another version, and whose gate says ``dice``."""
    bundled = load_model(bundled_model_path())
    job_dir = Path(os.environ["BCIR_DATA_DIR"]) / "jobs" / "20260101-000000-dddddd"
    new = save_model(bundled.net, replace(bundled.card, version="retrained-2"), job_dir / "run" / "best.safetensors")
    (job_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(tmp_path), base_model=str(bundled_model_path())).to_json()))
    (job_dir / "state.json").write_text(json.dumps({"state": "done", "pid": None, "model": str(new), "message": "done"}))
    row = {"available": True, "patients": ["A", "B"], "images": 4, "images_with_lesions": 3, "lesions": 3,
           "abnormalities_scored": malignant + benign, "malignant": malignant, "benign": benign, "iou_mean": 0.3,
           "lesion_sensitivity": 0.5, "fp_per_image": 1.0, "sensitivity": 0.0 if malignant else None, "specificity": 1.0,
           # as model.evaluate.evaluation reports them: no AUC from one class; from 1 against 2, a CI with nothing in it
           "auc": 0.0 if malignant and benign else None, "auc_ci": [0.0, 0.0] if malignant and benign else [None, None]}
    comparison = {"description": "the new run's patient-level validation split (2 patients)", "patients": ["A", "B"],
                  "notes": [], "rows": [{**row, "model": "current", "version": bundled.version, "dice_mean": dice[0]},
                                        {**row, "model": "new", "version": "retrained-2", "dice_mean": dice[1]}]}
    (job_dir / "comparison.json").write_text(json.dumps(comparison))
    return Job(job_dir)


def test_the_gate_says_not_measurable_shows_sizes_and_asks_before_a_worse_model(qtbot, window, tmp_path):
    registry = ModelRegistry()
    job = _done_job(tmp_path, malignant=0, benign=3)
    dialog = window.show_retrain()
    with qtbot.waitSignal(dialog.jobFinished, timeout=TIMEOUT_MS):
        dialog.attach(job)
    cells = {label: row for (_, label, _), row in zip(GATE_METRICS, dialog.gate_view.cells())}
    assert cells["Malignancy AUC"] == ["not measurable: one class only"] * 2 + ["—", "0 malignant, 3 benign, 2 patients"]
    auc_row = [k for k, _, _ in GATE_METRICS].index("auc")
    assert dialog.gate_view.table.item(auc_row, 1).toolTip() == "not measurable: one class only (3 benign)"
    assert cells["Sensitivity"][1] == "not measurable: no malignant abnormality"
    assert cells["Dice"] == ["0.467", "0.187", "current", "3 images with a lesion, 2 patients"]
    assert all(row[3] for row in cells.values())  # a held-out size beside every figure
    assert "Too few held-out cases to decide" in dialog.gate_view.description.text()
    assert "worse on 1 of 7 figures: Dice" in dialog.gate_view.description.text()
    assert "Retrain done" in window.retrain_status.text()  # the status bar says a choice is waiting

    assert dialog.use_new_model() is None  # worse on Dice: asked first, nothing switched
    box = dialog.confirm_box
    assert box is not None and "Dice: 0.467 -> 0.187 (3 images with a lesion, 2 patients)" in box.text()
    assert registry.active().bundled and job.decision() is None
    with qtbot.waitSignal(dialog.modelAccepted, timeout=TIMEOUT_MS):
        button(box, "Use new model anyway").click()
    assert registry.active().version == "retrained-2" and job.decision() == "accepted"
    assert not window.retrain_status.isVisible()  # decided: nothing waits any more

    # Tools → Models: each Dice with the held-out size behind it, the 2-patient one marked, no training-machine path
    models = window.show_models()
    rows = {models.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole): models.tree.topLevelItem(i)
            for i in range(models.tree.topLevelItemCount())}
    bundled = registry.get(load_model(bundled_model_path()).version)
    held = bundled.card.training.held_out_evaluation  # the bundled card's held-out figures, its patients behind them
    assert rows[bundled.version].text(4) == f"{held['dice_mean']:.3f} ({held['patients']} patients)"
    assert rows["retrained-2"].text(4) == "0.187 (2 patients)" and rows["retrained-2"].text(5) == "not measurable"
    assert "too few to compare" in rows["retrained-2"].text(6) and "too few" not in rows[bundled.version].text(6)
    assert models.select(bundled.version)
    card = models.card.toPlainText()
    assert "/tmp/" not in card and str(bundled.weights) not in card and "Weights SHA-256" in card
    assert "56 training patients, 24 validation patients" in card
    # what the reader is told beside the AI's score, each lesion type on its own line
    trust = malignancy_trust(bundled.metrics, bundled.gate)
    assert trust.by_type and all(line in card for line in [trust.headline, *(f"· {t.text}" for t in trust.by_type)])
    assert models.select("retrained-2")
    card = models.card.toPlainText()
    assert str(job.dir) not in card and "run/best.safetensors" not in card and "retrain job 20260101-000000-dddddd" in card


def test_train_again_starts_with_an_empty_bar_not_the_last_runs_done(qtbot, window, tmp_path):
    dialog = window.show_retrain()
    with qtbot.waitSignal(dialog.jobFinished, timeout=TIMEOUT_MS):
        dialog.attach(_done_job(tmp_path))
    assert dialog.run_view.progress.format() == "done" and dialog.run_view.progress.value() == 1000
    auc = dialog.gate_view.cells()[[k for k, _, _ in GATE_METRICS].index("auc")]
    assert auc == ["not measurable: too few"] * 2 + ["—", "1 malignant, 2 benign, 2 patients"]  # not 0.000
    dialog.show_setup()  # "Train again…"
    next_dir = Path(os.environ["BCIR_DATA_DIR"]) / "jobs" / "20260101-000001-eeeeee"
    next_dir.mkdir(parents=True)
    (next_dir / "spec.json").write_text(json.dumps(JobSpec(root=str(tmp_path)).to_json()))
    (next_dir / "state.json").write_text(json.dumps({"state": "running", "pid": None, "message": "starting"}))
    dialog.attach(Job(next_dir))  # what Start does once the child is launched
    assert dialog.run_view.progress.format() == "starting…" and dialog.run_view.progress.value() == 0
    assert not dialog.gate_view.isVisibleTo(dialog) and dialog.pages.currentIndex() == 1
    dialog._timer.stop()


# ---------------------------------------------------------------------------
# quitting while a run goes on; the status bar; Ctrl+Q from the retrain window


def _running_job(qtbot, window, demo_root):
    config = dict(QUICK, working_spacing_mm=0.2, tile=64, batch_size=8, device="cpu", max_epochs=3, augment_factor=40,
                  max_batches_per_epoch=None)
    job = start_job(JobSpec(root=str(demo_root), config=config, base_model=str(bundled_model_path()), bootstrap=50))
    window.show_retrain().attach(job)
    wait_for_event(qtbot, job, "batch")
    return job


def test_quit_while_training_asks_and_pause_keeps_the_run_for_the_next_start(qtbot, demo_root):
    window = make_window(qtbot)
    job = _running_job(qtbot, window, demo_root)
    try:
        window.retrain_dialog.close()  # the run goes on; the main window says so
        qtbot.waitUntil(lambda: window.retrain_status.isVisible() and "epoch 1/3" in window.retrain_status.text(),
                        timeout=TIMEOUT_MS)
        window.close()
        assert window.isVisible() and window.quit_prompt is not None and job.is_alive()
        assert "Pause and quit" in [b.text() for b in window.quit_prompt.buttons()]
        button(window.quit_prompt, "Cancel").click()
        assert window.isVisible() and job.is_alive() and not job.pause_path.exists()

        window.close()
        button(window.quit_prompt, "Pause and quit").click()
        assert not window.isVisible()
        state = job.wait(60)
        assert state["state"] == "paused" and "paused (the app was quit) during epoch 1 of 3" in state["message"]
        assert "abandon" not in job.log_path.read_text() and job.resumable()
    finally:
        job.kill()
        window.close()

    again = make_window(qtbot)  # the next start offers to resume it
    try:
        qtbot.waitUntil(lambda: again.resume_prompt is not None, timeout=TIMEOUT_MS)
        assert job.id in again.resume_prompt.text()
        # the question says what happened and where resuming goes, not that the run was 'interrupted'
        assert "paused (the app was quit) during epoch 1 of 3" in again.resume_prompt.text()
        assert "resuming" in again.resume_prompt.text() and "interrupted" not in again.resume_prompt.text()
        button(again.resume_prompt, "Not now").click()
        assert job.state()["state"] == "paused" and "abandon" not in job.state()["message"]
    finally:
        again.close()


def test_keep_training_and_quit_leaves_the_run_going_and_the_next_start_follows_it(qtbot, demo_root):
    window = make_window(qtbot)
    job = _running_job(qtbot, window, demo_root)
    try:
        window.close()
        button(window.quit_prompt, "Keep training and quit").click()
        assert not window.isVisible()
        assert job.is_alive() and job.state()["background"]
        assert "the app was quit; the training goes on in the background" in job.log_path.read_text()
        again = make_window(qtbot)
        try:
            qtbot.waitUntil(lambda: again.retrain_dialog is not None, timeout=TIMEOUT_MS)
            assert again.retrain_dialog.job == job and again.resume_prompt is None
        finally:
            job.kill()
            again.close()
    finally:
        job.kill()
        window.close()


def test_a_run_finished_in_the_background_waits_in_the_status_bar(qtbot, tmp_path):
    job = _done_job(tmp_path)
    job.keep_in_background()
    window = make_window(qtbot)
    try:
        qtbot.waitUntil(lambda: getattr(window, "retrain_status", None) is not None
                        and window.retrain_status.isVisible(), timeout=TIMEOUT_MS)
        assert "the safety gate waits for your choice" in window.retrain_status.text()
        assert not window.retrain_dialog.isVisible()
        qtbot.mouseClick(window.retrain_status, Qt.MouseButton.LeftButton)
        assert window.retrain_dialog.isVisible() and window.retrain_dialog.gate_view.isVisibleTo(window.retrain_dialog)
    finally:
        window.close()


def test_ctrl_q_quits_while_the_retrain_window_has_focus(qtbot):
    window = make_window(qtbot)
    dialog = window.show_retrain()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=TIMEOUT_MS)
    dialog.form.epochs.setFocus()
    qtbot.keyClick(dialog.form.epochs, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT_MS)
