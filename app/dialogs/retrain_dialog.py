"""Tools → Retrain on folder: the window that ties the folder, the options, the estimate, the run and the gate.

1. **Folder** (:mod:`app.dialogs.retrain_folder`): the dialog indexes the
   folder in the background and shows what it holds before anything runs
   (layout, patients, images, lesions, benign/malignant, and each problem with
   its reason). "Demo studies" opens the built-in demo folder, which a file
   dialog hides (it is a dot folder).
2. **Options** (:mod:`app.dialogs.retrain_form`, one
   :class:`~app.dialogs.retrain_options.RetrainOptions`): the last used ones
   (the paper's defaults the first time, and one click away: Adam 2e-4, batch
   64, up to 200 epochs with early stop, 0.1 mm and 1024 tiles); fine-tune the
   current model (its working resolution is kept) or start from scratch; the
   patient-level 70/30 split or a locked hold-out folder. An option the
   training would refuse (a tile the network cannot take) is named next to
   Start at once, and nothing starts or is timed. Next to Start
   (:mod:`app.dialogs.retrain_estimate`): how long the run will take, from a
   short real timing (:mod:`model.jobs.timing`), and the held-out set the gate
   will use, with a warning when it is too small to decide.
3. **Run** (:mod:`app.dialogs.retrain_progress`): ``model.jobs`` trains in a
   child process, so a crash cannot take the viewer down and the reader goes on
   reading. The dialog follows its event file: epoch, batch, ETA, loss and
   validation Dice curves, the log. Cancel stops after the current batch and
   leaves no model. Closed, the dialog goes on following the run and reports it
   in one line (``runStatus``) for the main window's status bar. A paused or
   interrupted run offers Resume.
4. **Safety gate** (:mod:`app.dialogs.retrain_gate`): the current and the new
   model on the same held-out patients, in one table, with the held-out size
   behind each figure and "not measurable" where the set cannot give one
   (:func:`model.jobs.verdict.judge`). Nothing switches by itself: "Use new
   model" asks first when the new model is worse on any figure, then adds it to
   the registry and makes it active; "Keep current model" leaves all as is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from model.data.study_index import build_index
from model.errors import ConfigError, ModelFileError
from model.jobs.decision import accept, reject
from model.jobs.estimate import count_run, pick_timing_image
from model.jobs.job import Job, start_job
from model.jobs.plan import RunSplit, plan_held_out, run_split
from model.jobs.spec import JobSpec
from model.jobs.state import LIVE_STATES
from model.jobs.verdict import GateVerdict
from model.train.config import TrainConfig
from model.train.dataset_summary import FolderSummary
from model.train.two_pass import FINE_SPACING_MM, FINE_TILE

from app.background.workers import WorkerPool
from app.dialogs.retrain_estimate import EstimateView
from app.dialogs.retrain_folder import FolderBox, resolved
from app.dialogs.retrain_form import OptionsForm
from app.dialogs.retrain_gate import GateView
from app.dialogs.retrain_options import refusal
from app.dialogs.retrain_progress import RunView
from app.errors import describe

log = logging.getLogger("bcir.app")

POLL_MS = 250
CANCEL_TIMEOUT_S = 30.0


class RetrainDialog(QDialog):
    """Emits ``modelAccepted(entry)`` once the reader chose the new model (it is in the registry and active)."""

    modelAccepted = Signal(object)
    summaryReady = Signal(object)  # FolderSummary (tests wait on it)
    estimateReady = Signal(object)  # RunEstimate, once a timing has been made for the options shown
    jobFinished = Signal(str)  # the job's final state: done, cancelled, failed, paused, interrupted
    runStatus = Signal(str)  # one line on the run for the main window's status bar; "" when there is nothing to say

    AUTO_ESTIMATE = True  # time a few training steps once a folder is read (tests that do not need it switch it off)

    def __init__(self, workers: WorkerPool, current_model: Callable[[], Path | None], *, registry=None,
                 jobs_root: Path | None = None, settings=None, demo_root: str | Path | None = None,
                 parent: QWidget | None = None) -> None:
        """``current_model`` says which model the viewer uses now: the one to fine-tune and to compare with.

        ``settings`` (app.settings.Settings) remembers the options; ``demo_root`` is offered as "Demo studies".
        """
        super().__init__(parent)
        self.setWindowTitle("Retrain on folder")
        self.setModal(False)
        self.workers = workers
        self._current_model_source = current_model
        self.current_model = self._read_current_model()
        self.registry = registry
        self.jobs_root = jobs_root
        self.settings = settings
        self.demo_root = str(demo_root) if demo_root and Path(demo_root).is_dir() else None
        self.summary: FolderSummary | None = None
        self.index = None  # the StudyIndex the summary counted
        self.job: Job | None = None
        self.accepted_entry = None
        self.verdict: GateVerdict | None = None
        self.start_prompt: QMessageBox | None = None  # "the held-out set is too small" before a start
        self.confirm_box: QMessageBox | None = None  # "the new model is worse" before a switch
        # TrainConfig fields set by code rather than by the form (a scripted site's settings, quick test runs)
        self.config_overrides: dict = {}
        self._options_problem: str | None = None  # why the options cannot train; shown next to Start
        self._holdout_index = None
        self._split: tuple | None = None  # (index, views, val_fraction, split_seed, RunSplit): see run_split
        self._holdout_asked: str | None = None
        self._holdout_worker = None
        self._events_offset = 0
        self._status = ""
        self._ended = True  # the followed job has reached an end state (or there is none)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

        self.setup_message = QLabel()
        self.setup_message.setWordWrap(True)
        self.folder_box = FolderBox(workers, self.demo_root)
        self.folder_box.folderChosen.connect(self.set_folder)
        self.folder_box.summarized.connect(self._on_summary)
        self.form = OptionsForm(self.current_model)
        self.form.holdoutChanged.connect(self._holdout_edited)
        self.form.startPointRefused.connect(self.setup_message.setText)
        self.estimate_view = EstimateView(workers)
        self.estimate_view.estimateReady.connect(self.estimateReady)
        self.estimate_view.timingWanted.connect(self.estimate_time)
        self.estimate_view.timed.connect(self._show_estimate)
        self.gate_view = GateView()
        self.gate_view.use_button.clicked.connect(lambda: self.use_new_model())
        self.gate_view.keep_button.clicked.connect(self.keep_current_model)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_setup_page())
        self.pages.addWidget(self._build_run_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.resize(1000, 880)
        for button in self.findChildren(QPushButton):  # Return in a text field must never press a button
            button.setAutoDefault(False)
            button.setDefault(False)
        self.refresh_current_model()
        self.form.apply(settings.retrain_options() if settings is not None else {})
        self.form.countsChanged.connect(self._show_estimate)  # counts change, the timing does not
        self.form.timingChanged.connect(self._schedule_estimate)
        self._check_options()

    def _build_setup_page(self) -> QWidget:
        page = QWidget()
        self.start_button = QPushButton("Start training")
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(lambda: self.start())
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.setup_message, 1)
        buttons.addWidget(close)
        buttons.addWidget(self.start_button)
        layout = QVBoxLayout(page)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.folder_box)
        split.addWidget(self.form)
        split.setSizes([520, 440])
        layout.addWidget(split, 1)
        layout.addWidget(self.estimate_view)  # right above Start, the whole width
        layout.addLayout(buttons)
        return page

    def _build_run_page(self) -> QWidget:
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("continue after the last complete epoch")
        self.resume_button.clicked.connect(self.resume)
        self.resume_button.hide()
        self.new_button = QPushButton("Train again…")
        self.new_button.clicked.connect(self.show_setup)
        self.new_button.hide()
        self.close_button = QPushButton("Close (training goes on)")
        self.close_button.clicked.connect(self.close)
        self.run_view = RunView(self.gate_view, [self.resume_button, self.new_button, self.cancel_button,
                                                 self.close_button])
        return self.run_view

    # ------------------------------------------------------------------ the model in use, the options

    def _read_current_model(self) -> Path | None:
        path = self._current_model_source()
        return Path(path) if path else None

    def refresh_current_model(self) -> None:
        """The setup page shows the model the viewer uses now (it may have changed since the dialog opened)."""
        self.current_model = self._read_current_model()
        self.form.set_current_model(self.current_model)

    def show_setup(self) -> None:
        """"Train again…": the options page, with the model now in use; the last run's bar and gate stay behind."""
        self.refresh_current_model()
        self.setup_message.clear()
        self._options_problem = None
        self._check_options()
        self.pages.setCurrentIndex(0)

    def options(self) -> dict:
        """The form as saved in the reader's settings."""
        return self.form.options().to_saved()

    def _check_options(self) -> str | None:
        """Why the options cannot train, in one line naming the option as the form does, shown next to Start at
        once (None when they can). Start stays off meanwhile, and nothing is timed."""
        try:
            self.spec().parts()  # the run's config, and a new pair's fine part
            problem = None
        except ConfigError as exc:
            problem = refusal(exc, self.config_overrides)
        except ModelFileError as exc:  # the current pair's card, read for its fine part: the start point says more
            problem = f"The current model cannot be fine-tuned: {exc}"
        if problem:
            self.setup_message.setText(problem)
        elif self._options_problem and self.setup_message.text() == self._options_problem:
            self.setup_message.clear()
        self._options_problem = problem
        self.start_button.setEnabled(self.summary is not None and self.summary.trainable and problem is None)
        return problem

    # ------------------------------------------------------------------ the folders

    def set_folder(self, folder: str | Path) -> None:
        """Count the folder in the background; the summary and the problems list fill when it is done."""
        folder = str(Path(folder).expanduser())
        self.summary = None
        self.index = None
        self.start_button.setEnabled(False)
        self.estimate_view.clear()
        self.folder_box.read(folder, self.form.views.currentData())

    def _on_summary(self, index, summary: FolderSummary) -> None:
        self.summary = summary
        self.index = index
        self._check_options()  # Start on when the folder can be trained on and the options hold
        self.summaryReady.emit(summary)
        self._show_estimate()
        if summary.trainable and self.AUTO_ESTIMATE:
            self._schedule_estimate()

    def _holdout_edited(self) -> None:
        """Count the locked hold-out folder in the background: its size goes into the held-out plan."""
        text = self.form.holdout.text().strip()
        if not text or resolved(text) == self._holdout_asked:
            return
        folder = resolved(text)
        self._holdout_asked = folder
        self._holdout_index = None
        if self._holdout_worker is not None:
            self._holdout_worker.cancel()
        self.estimate_view.plan_label.setText(f"Counting the hold-out folder {folder}…")

        def done(worker, index) -> None:
            if worker is self._holdout_worker:
                self._holdout_worker = None
                self._holdout_index = index
                self._show_estimate()

        def failed(worker, message) -> None:
            if worker is self._holdout_worker:
                self._holdout_worker = None
                self.estimate_view.plan_label.setText(
                    f"<span style='color:#e05050'>Cannot read the hold-out folder: {message}</span>")

        worker = self.workers.start(lambda report, should_stop: build_index(folder, should_stop=should_stop, workers=2),
                                    name=f"hold-out {folder}", on_result=lambda index: done(worker, index),
                                    on_error=lambda message: failed(worker, message))
        self._holdout_worker = worker

    # ------------------------------------------------------------------ the held-out plan and the time estimate

    def plan(self) -> dict | None:
        """The held-out set the gate will use with these options (model.jobs.plan.plan_held_out); None while the
        folder, or the locked hold-out folder, is still being counted. ConfigError for options out of range."""
        if self.index is None or self.summary is None or not self.summary.trainable:
            return None
        holdout = None
        if self.form.locked.isChecked():
            if self._holdout_index is None or self._holdout_asked != resolved(self.form.holdout.text().strip() or "."):
                return None
            holdout = self._holdout_index
        config = self.spec().train_config()
        return plan_held_out(self.index, config, holdout_index=holdout,
                             split=None if holdout is not None else self.run_split(config))

    def run_split(self, config: TrainConfig) -> RunSplit:
        """The run's patient split of the folder (model.jobs.plan.run_split), made once per folder and split
        settings: the plan, the counts and the timed image all read it, on every change of an option."""
        key = (self.index, tuple(config.views), config.val_fraction, config.split_seed)
        if self._split is None or self._split[0] is not self.index or self._split[1:-1] != key[1:]:
            self._split = (*key, run_split(self.index, config))
        return self._split[-1]

    def _timing_key(self, spec: JobSpec) -> tuple:
        config = spec.train_config()
        pair = (spec.fine_spacing_mm, spec.fine_tile) if spec.two_pass else None  # a new pair's fine part
        return (config.tile, config.working_spacing_mm, config.device, tuple(config.views), config.init_weights,
                config.micro_batch, config.bf16, config.hard_negatives_per_image > 0, pair, self.folder_box.asked,
                str(self.current_model))

    def _schedule_estimate(self) -> None:
        self._show_estimate()
        if (self.AUTO_ESTIMATE and self.index is not None and self.summary is not None and self.summary.trainable
                and self._options_problem is None):
            self.estimate_view.delay.start()

    def estimate_time(self) -> None:
        """Time a few training steps on this machine (in a child process) for the options shown, unless done already
        or the options cannot train (then nothing is timed and no image read)."""
        if self.index is None or self.summary is None or not self.summary.trainable:
            return
        if self._check_options() is not None:
            return
        spec = self.spec()
        config = spec.train_config()
        key = self._timing_key(spec)
        if self.estimate_view.has_timing(key):
            self._show_estimate()
            return
        if self.estimate_view.is_timing(key):
            return
        self.estimate_view.time(key, config, pick_timing_image(self.index, config, split=self.run_split(config)),
                                spec.base_model, spec.parts())

    def _show_estimate(self) -> None:
        """The plan line and the estimate for the options as they are now (the counts are quick; only a change of
        tile, resolution, device, views or start point needs a new timing)."""
        if self._check_options() is not None:
            self.estimate_view.clear()  # no plan and no estimate for a run that cannot start
            return
        plan = self.plan()
        if plan is None:
            if self.index is not None and self.form.locked.isChecked():
                self.estimate_view.plan_label.setText(
                    "Choose the locked hold-out folder: its size is counted before the start."
                    if not self.form.holdout.text().strip() else "Counting the hold-out folder…")
            return
        self.estimate_view.show_plan(plan)
        spec = self.spec()
        config = spec.train_config()
        self.estimate_view.show_estimate(self._timing_key(spec), lambda: count_run(
            self.index, config, gate_images=plan["images"], index_s=self.summary.seconds, split=self.run_split(config),
            parts=spec.parts()))

    # ------------------------------------------------------------------ starting

    def spec(self) -> JobSpec:
        """The job the options describe (the paper's TrainConfig with the reader's changes); ConfigError when an
        option is out of range."""
        options = self.form.options()
        config = options.train_config(self.config_overrides)
        fine_tune = self.form.fine_tune.isChecked() and self.current_model is not None
        holdout = self.form.holdout.text().strip() if self.form.locked.isChecked() else None
        pair = options.new_pair and not fine_tune
        return JobSpec(root=self.folder_box.path.text().strip(), config=config.to_json(),
                       base_model=str(self.current_model) if self.current_model else None, fine_tune=fine_tune,
                       holdout_root=holdout or None, data_summary=self.summary.to_json() if self.summary else None,
                       two_pass=pair, fine_spacing_mm=options.fine_spacing_mm if pair else None,
                       fine_tile=options.fine_tile if pair else None)

    def start(self, *, small_held_out_ok: bool = False) -> Job | None:
        """Start the run the form describes. When the held-out set is too small to decide, ask first (the answer
        comes back through ``start_prompt``) and return None."""
        if self.current_model != self._read_current_model():  # switched meanwhile: fine-tune and compare the one in use
            self.refresh_current_model()
            self.setup_message.setText("The model in use changed: check the options, then start again.")
            return None
        if self._check_options() is not None:  # the reason is next to Start; no child, no image read
            return None
        if self.summary is None or not self.summary.trainable:
            self.setup_message.setText("Choose a folder that can be trained on first.")
            return None
        if self.form.locked.isChecked() and not self.form.holdout.text().strip():
            self.setup_message.setText("Choose the locked hold-out folder, or use the 70/30 split.")
            return None
        plan = self.plan()
        if plan is None:
            self.setup_message.setText("The hold-out folder is still being counted: start again in a moment.")
            return None
        if plan["warnings"] and not small_held_out_ok:
            self._ask_start_small(plan)
            return None
        try:
            job = start_job(self.spec(), self.jobs_root)
        except Exception as exc:  # noqa: BLE001 - one line in the dialog, the viewer stays up
            self.setup_message.setText(f"Could not start: {describe(exc)}")
            return None
        log.info("retrain job %s started", job.id)
        if self.settings is not None:
            self.settings.save_retrain_options(self.options())
        self.setup_message.clear()
        self.attach(job)
        return job

    def _ask_start_small(self, plan: dict) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Held-out set too small",
                          f"The safety gate would compare the two models on {plan['patients']} patients and "
                          f"{plan['lesions']} lesions ({plan['malignant']} malignant, {plan['benign']} benign):\n\n"
                          + "\n".join(f"• {w}" for w in plan["warnings"])
                          + "\n\nIts table will not be able to say which model is better. Start anyway?",
                          QMessageBox.StandardButton.NoButton, self)
        anyway = box.addButton("Start anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def chosen(button) -> None:
            self.start_prompt = None
            if button is anyway:
                self.start(small_held_out_ok=True)

        box.buttonClicked.connect(chosen)
        box.show()
        self.start_prompt = box

    # ------------------------------------------------------------------ following the run

    def attach(self, job: Job) -> None:
        """Follow ``job`` (just started, resumed, or found running at start-up) from its first event."""
        self.job = job
        self.verdict = None
        self._ended = False
        self._events_offset = 0
        spec = job.spec()
        start = "fine-tuning the current model" if spec.fine_tune else "from scratch"
        if spec.two_pass:
            start += (" (two-pass model: both passes are fine-tuned)" if spec.fine_tune
                      else f" (two-pass model: fine pass {spec.fine_spacing_mm or FINE_SPACING_MM:g} mm, tile "
                           f"{spec.fine_tile or FINE_TILE})")
        held = f"locked hold-out folder {spec.holdout_root}" if spec.holdout_root else "70/30 patient split"
        self.run_view.begin(f"<b>Training on</b> {spec.root}<br>{start}; held out: {held}; job {job.id}")
        self.gate_view.hide()
        self.gate_view.set_open(True)
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.new_button.hide()
        self.resume_button.hide()
        self.close_button.setText("Close (training goes on)")
        self.pages.setCurrentIndex(1)
        self.poll()
        if self.job is job and not self._ended:
            self._timer.start()

    def poll(self) -> None:
        """Read what the child wrote since the last tick: events, log lines, state."""
        if self.job is None:
            return
        events, self._events_offset = self.job.events(self._events_offset)
        for event in events:
            self.run_view.on_event(event)
        self.run_view.tail_log(self.job.log_path)
        state = self.job.state()
        kind = state.get("state")
        if kind in ("done", "cancelled", "failed"):
            self._finished(state)
        elif kind == "paused" and not self.job.is_alive():
            self._finished(state)
        elif kind == "unknown" and not self.job.dir.is_dir():
            self._finished({"state": "failed", "message": f"the job folder {self.job.dir} is gone"})
        elif not self.job.is_alive() and state.get("pid"):
            resumable = self.job.resumable()
            self._finished({**state, "state": "interrupted",
                            "message": "the training process is gone (killed?)"
                                       + ("; Resume continues it" if resumable else "; nothing to resume from")})
        else:
            self._set_status(f"Retrain: {self.run_view.words}")

    def _set_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.runStatus.emit(text)

    @property
    def status_text(self) -> str:
        return self._status

    def _finished(self, state: dict) -> None:
        self._timer.stop()
        self._ended = True
        events, self._events_offset = self.job.events(self._events_offset)  # what came with the end
        for event in events:
            self.run_view.on_event(event)
        self.run_view.tail_log(self.job.log_path)
        kind = state.get("state")
        self.cancel_button.hide()
        self.new_button.show()
        self.close_button.setText("Close")
        self.resume_button.setVisible(kind in ("paused", "interrupted") and self.job.dir.is_dir() and self.job.resumable())
        self.run_view.ended(kind)
        if kind == "done":
            self.verdict = self.gate_view.show_comparison(self.job.comparison() or {}, self.job.decision())
        self.run_view.run_state.setText(f"{kind}: {state.get('message', '')}")
        decision = self.job.decision() if self.job.dir.is_dir() else None
        if decision is not None:  # a job reopened after the reader chose
            self.run_view.run_state.setText(
                f"decided: {'the new model was put in use' if decision == 'accepted' else 'the current model was kept'}")
        self._set_status({"done": "" if decision else "Retrain done: the safety gate waits for your choice",
                          "paused": "Retrain paused: Resume is in the Retrain window",
                          "interrupted": "Retrain interrupted", "failed": "Retrain failed: see the Retrain window"}
                         .get(kind, ""))
        self.jobFinished.emit(kind)

    # ------------------------------------------------------------------ the reader's choices

    def cancel(self) -> None:
        if self.job is None:
            return
        self.cancel_button.setEnabled(False)
        self.run_view.run_state.setText("stopping after the current batch…")
        job = self.job
        self.workers.start(lambda report, should_stop: job.cancel(timeout=CANCEL_TIMEOUT_S), name=f"cancel {job.id}",
                           on_error=lambda message: self.run_view.run_state.setText(f"cancel: {message}"))

    def resume(self) -> Job | None:
        """Continue a paused or interrupted run after its last complete epoch."""
        if self.job is None:
            return None
        try:
            self.job.resume()
        except Exception as exc:  # noqa: BLE001 - one line, the dialog stays
            self.run_view.run_state.setText(f"Could not resume: {describe(exc)}")
            return None
        self.attach(self.job)
        return self.job

    def use_new_model(self, *, confirmed: bool = False):
        """Put the new model in use. When the gate found it worse on any figure, ask first (``confirm_box``) and
        return None; the reader's "Use it anyway" comes back here with ``confirmed``."""
        if self.verdict is not None and self.verdict.worse and not confirmed:
            self._ask_use_worse(self.verdict)
            return None
        try:
            entry = accept(self.job, self.registry, force=confirmed)
        except Exception as exc:  # noqa: BLE001
            self.run_view.run_state.setText(f"Could not use the new model: {describe(exc)}")
            return None
        self.accepted_entry = entry
        self.gate_view.set_open(False)
        self.run_view.run_state.setText(f"Now using {entry.version}; Tools → Models lists every version and switches back.")
        self._set_status("")
        self.modelAccepted.emit(entry)
        return entry

    def _ask_use_worse(self, verdict: GateVerdict) -> None:
        lines = "\n".join(f"• {line}" for line in verdict.worse_lines())
        small = ("\n\nThe held-out set is also too small to decide:\n" + "\n".join(f"• {w}" for w in verdict.warnings)
                 if verdict.warnings else "")
        box = QMessageBox(QMessageBox.Icon.Warning, "Use a model that is worse on some figures?",
                          f"On the held-out patients the new model is worse than the current one on "
                          f"{len(verdict.worse)} of {len(verdict.figures)} figures (current -> new):\n{lines}{small}\n\n"
                          "Use the new model anyway? Tools → Models switches back in one click.",
                          QMessageBox.StandardButton.NoButton, self)
        anyway = box.addButton("Use new model anyway", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep current model", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def chosen(button) -> None:
            self.confirm_box = None
            if button is anyway:
                self.use_new_model(confirmed=True)
            elif button is keep:
                self.keep_current_model()

        box.buttonClicked.connect(chosen)
        box.show()
        self.confirm_box = box

    def keep_current_model(self) -> None:
        try:
            reject(self.job)
        except Exception as exc:  # noqa: BLE001
            self.run_view.run_state.setText(f"{describe(exc)}")
            return
        self.gate_view.set_open(False)
        self.run_view.run_state.setText("Kept the current model; the new one was not added.")
        self._set_status("")

    # ------------------------------------------------------------------ window

    def live_job(self) -> Job | None:
        """The job this dialog follows while its child is training or gating."""
        if self.job is not None and self.job.state().get("state") in LIVE_STATES and self.job.is_alive():
            return self.job
        return None

    def stop_following(self) -> None:
        """The app is quitting: stop polling and every background task of the dialog (the run itself is decided
        by the main window: paused or left in the background)."""
        self._timer.stop()
        self.estimate_view.stop()
        self.folder_box.cancel()
        if self._holdout_worker is not None:
            self._holdout_worker.cancel()

    def closeEvent(self, event) -> None:
        # a run goes on being followed while the window is closed: the main window's status bar shows it
        if self._ended:
            self._timer.stop()
        self.folder_box.cancel()
        super().closeEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.pages.currentIndex() == 0:
            self.refresh_current_model()
        if self.job is not None and not self._ended:
            self._timer.start()
