"""Tools → Retrain on folder and Tools → Models, driven like a site's engineer drives them, on tiny synthetic folders."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from model.registry import ModelRegistry
from model.retrain_job import GATE_METRICS, JobSpec, find_resumable, start_job
from model.study_index import build_index
from model.weights import bundled_model_path
from tests.app.qt_helpers import TIMEOUT_MS, open_root
from tests.conftest import make_dicom

from app.main_window import MainWindow

# tiny runs: ~144 x 90 px views at 0.2 mm, 64 px tiles, two batches an epoch
QUICK = dict(augment_factor=2, micro_batch=4, normal_ratio=0.5, max_batches_per_epoch=2, early_stop_delta=0.0)
RUN_MS = 240_000


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
    dialog.scratch.setChecked(True)
    dialog.spacing.setValue(0.2)
    dialog.tile.setValue(64)
    dialog.epochs.setValue(1)
    dialog.batch.setValue(8)
    dialog.device.setCurrentText("cpu")
    dialog.config_overrides = dict(QUICK)
    return dialog


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
    text = dialog.summary_label.text()
    assert f"{summary.patients} patients, {summary.images} images" in text
    assert f"{summary.malignant} malignant</b>, {summary.benign} benign" in text
    problems = [(dialog.problems.topLevelItem(i).text(0), dialog.problems.topLevelItem(i).text(1))
                for i in range(dialog.problems.topLevelItemCount())]
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
    assert "Cannot train" in dialog.summary_label.text()
    assert dialog.start() is None and "Choose a folder" in dialog.setup_message.text()


def test_a_run_reaches_the_gate_the_new_model_is_used_and_rolled_back(qtbot, window, demo_root):
    registry = ModelRegistry()
    bundled = registry.active()
    assert window.ai.model_version == bundled.version
    index = open_root(qtbot, window, demo_root)
    patient_id = next(iter(index.patients()))
    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid: pid == patient_id):
        window.select_patient(patient_id)
    assert {ai.result.model_version for ai in window.viewer.ai.values()} == {bundled.version}

    dialog = quick_dialog(qtbot, window, demo_root)
    with qtbot.waitSignal(dialog.jobFinished, timeout=RUN_MS) as blocker:
        job = dialog.start()
        assert job is not None and dialog.pages.currentIndex() == 1
    assert blocker.args[0] == "done", job.log_path.read_text()[-2000:]
    # the live view followed the run: an epoch on the curves, the log, the gate table on the same patients
    assert [e for e, _ in dialog.curve_points("train_loss")] == [1]
    assert "safety gate" in dialog.log_view.toPlainText()
    cells = dialog.gate_cells()
    assert len(cells) == len(GATE_METRICS)
    dice_row = cells[[k for k, _, _ in GATE_METRICS].index("dice_mean")]
    assert all(c not in ("", "n/a") for c in dice_row[:2]) and dice_row[2] in ("new", "current", "tie")
    comparison = job.comparison()
    rows = {r["model"]: r for r in comparison["rows"]}
    assert rows["current"]["patients"] == rows["new"]["patients"] == comparison["patients"]
    assert dice_row[0] == f"{rows['current']['dice_mean']:.3f}" and dice_row[1] == f"{rows['new']['dice_mean']:.3f}"
    assert registry.active().version == bundled.version  # nothing switched by itself
    assert len(registry.list()) == 1

    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid: pid == patient_id):
        entry = dialog.use_new_model()
    assert entry is not None and registry.active().version == entry.version != bundled.version
    assert entry.gate is not None and entry.log_path is not None and entry.parent is None
    assert window.ai.model_version == entry.version and entry.version in window.ai_label.text()
    assert {ai.result.model_version for ai in window.viewer.ai.values()} == {entry.version}
    assert not dialog.use_button.isEnabled()
    dialog.show_setup()  # "Train again": the model to fine-tune and to compare with is the one now in use
    assert entry.version in dialog.fine_tune.text() and dialog.spec().base_model == str(entry.weights)

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
    dialog.epochs.setValue(50)
    dialog.config_overrides = {**QUICK, "max_batches_per_epoch": None}
    with qtbot.waitSignal(dialog.jobFinished, timeout=RUN_MS) as blocker:
        job = dialog.start()
        qtbot.waitUntil(lambda: "training" in dialog.run_state.text() or "epoch" in dialog.progress.format(), timeout=RUN_MS)
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "cancelled"
    assert job.new_model_path() is None
    assert not (job.run_dir / "model.safetensors").exists()
    assert [(e.version, e.active) for e in registry.list()] == before
    assert not dialog.gate_box.isVisible()


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
        resume = next(b for b in window.resume_prompt.buttons() if b.text() == "Resume")
        dialog_ready = lambda: window.retrain_dialog is not None  # noqa: E731
        resume.click()
        assert dialog_ready() and window.retrain_dialog.job == job
        with qtbot.waitSignal(window.retrain_dialog.jobFinished, timeout=RUN_MS) as blocker:
            pass
        assert blocker.args[0] == "done", job.log_path.read_text()[-2000:]
        assert [e for e, _ in window.retrain_dialog.curve_points("train_loss")] == [1, 2]  # epoch 1 kept, epoch 2 added
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
    assert blocker.args[0] == "failed" and "gone" in dialog.run_state.text()
