"""The Retrain window's outlook before Start: the held-out set the gate will use, and how long the run will take."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from model.jobs.estimate import RunCounts, RunEstimate, estimate
from model.jobs.timing import time_units_in_child

from app.background.workers import WorkerPool

ESTIMATE_DELAY_MS = 800  # options that change the timing are timed again once they stop changing for this long
WARN_STYLE = "color:#e0a030"


class EstimateView(QWidget):
    """The plan line and the time estimate; timings are made in a child process and kept per timing key."""

    estimateReady = Signal(object)  # RunEstimate, once a timing has been made for the options shown
    timingWanted = Signal()  # the options stopped changing: time them (the window knows what to time)
    timed = Signal()  # a timing came back: show the estimate again

    def __init__(self, workers: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.estimate: RunEstimate | None = None
        self._units: dict[tuple, object] = {}  # timing key -> UnitTimes
        self._worker = None
        self._key: tuple | None = None
        self.delay = QTimer(self)
        self.delay.setSingleShot(True)
        self.delay.setInterval(ESTIMATE_DELAY_MS)
        self.delay.timeout.connect(self.timingWanted)
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.TextFormat.RichText)
        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        # a wrapped label under a stretching splitter is given one line otherwise: the estimate takes two or three
        self.estimate_label.setMinimumHeight(3 * self.estimate_label.fontMetrics().lineSpacing())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.estimate_label)  # right above Start, the whole width: the estimate is two lines long

    def clear(self) -> None:
        self.estimate = None
        self.plan_label.clear()
        self.estimate_label.clear()

    def show_plan(self, plan: dict) -> None:
        """The held-out set the gate will use (model.jobs.plan.plan_held_out), with a warning when it is too small."""
        held = (f"Held out for the safety gate ({'locked hold-out folder' if plan['rule'] == 'holdout-folder' else '70/30 split'}): "
                f"{plan['patients']} patients, {plan['images']} {'/'.join(plan['views'])} images, {plan['lesions']} lesions "
                f"({plan['malignant']} malignant, {plan['benign']} benign).")
        if plan["warnings"]:
            held += (f"<br><span style='{WARN_STYLE}'><b>Too small to decide between two models:</b> "
                     + "; ".join(plan["warnings"]) + ". A larger folder or a locked hold-out folder helps.</span>")
        self.plan_label.setText(held)

    def show_estimate(self, key: tuple, counts: Callable[[], RunCounts]) -> None:
        """The estimate for the options whose timing key is ``key``, once they have been timed."""
        units = self._units.get(key)
        if units is None:
            if self._worker is None:
                self.estimate_label.setText("")
            return
        self.estimate = estimate(counts(), units)
        self.estimate_label.setText(f"Estimate: {self.estimate.text()} (the timing took {units.seconds:.0f} s).")
        self.estimateReady.emit(self.estimate)

    def has_timing(self, key: tuple) -> bool:
        return key in self._units

    def is_timing(self, key: tuple) -> bool:
        return self._worker is not None and self._key == key

    def time(self, key: tuple, config, image, base_model: str | None, parts=None) -> None:
        """Time a few training steps of ``config`` on ``image`` in a child process (the gate's current model read at
        its own resolution; ``parts``: a new two-pass model's coarse and fine configs, each part timed); a timing of
        other options still running is cancelled."""
        if self._worker is not None:
            self._worker.cancel()
        self._key = key
        self.estimate_label.setText("Timing a few training steps on this machine for an estimate…")

        def done(worker, units) -> None:
            if worker is self._worker:
                self._worker = None
            self._units[key] = units
            self.timed.emit()

        def failed(worker, message) -> None:
            if worker is self._worker:
                self._worker = None
                self.estimate_label.setText(f"No time estimate: {message}")

        worker = self.workers.start(
            lambda report, should_stop: time_units_in_child(config, image, base_model=base_model,
                                                            should_stop=should_stop, parts=parts),
            name="retrain time estimate", on_result=lambda units: done(worker, units),
            on_error=lambda message: failed(worker, message))
        self._worker = worker

    def stop(self) -> None:
        """No more timing: the delay and a timing under way stop."""
        self.delay.stop()
        if self._worker is not None:
            self._worker.cancel()
