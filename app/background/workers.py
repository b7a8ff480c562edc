"""Background jobs on QThreads: progress, cancel, result or a one-line error.

A job is a plain function ``task(report, should_stop) -> result``: it calls
``report(event)`` at its progress points and checks ``should_stop()`` there.
The function never touches a widget; its events, result and error reach the
GUI thread through queued signals. Errors all go to the caller's ``failed``
slot, which in this app is :class:`app.errors.ErrorReporter`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from model.errors import Cancelled

from app.errors import describe

log = logging.getLogger("bcir.app")

Task = Callable[[Callable[[Any], None], Callable[[], bool]], Any]


_OUTLIVING: list = []  # workers that did not stop when asked: never destroyed while their thread runs
_ENDING_MS = 10_000  # a thread that has sent ``finished`` has only Qt's own clean-up left


class Worker(QThread):
    """Runs one task once. Signals are emitted from the worker thread and delivered queued."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, task: Task, *, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName(name)
        self._task = task
        self._stop = False

    def cancel(self) -> None:
        self._stop = True

    def is_cancelled(self) -> bool:
        return self._stop

    def run(self) -> None:  # worker thread
        try:
            result = self._task(self.progressed.emit, self.is_cancelled)
        except Cancelled:  # raised inside a task to stop at a progress point with nothing to return
            self.cancelled.emit()
        except Exception as exc:  # every error of every job ends here, as one line
            log.debug("%s failed:\n%s", self.objectName(), "".join(traceback.format_exception(exc)))
            self.failed.emit(describe(exc))
        else:
            # A task that stops early on request may still return what it has (a partial index).
            self.succeeded.emit(result)


class _Relay(QObject):
    """Lives in the GUI thread, so the worker's signals reach the callbacks queued, in the GUI thread.

    (A bare lambda connected to a signal emitted in another thread would run in that thread.)
    """

    def __init__(self, worker: Worker, callbacks: dict[str, Callable | None], on_finished: Callable[[Worker], None]):
        super().__init__()
        self._worker = worker
        self._callbacks = callbacks
        self._on_finished = on_finished
        worker.progressed.connect(self.progressed)
        worker.succeeded.connect(self.succeeded)
        worker.failed.connect(self.failed)
        worker.cancelled.connect(self.cancelled)
        worker.finished.connect(self.finished)

    def silence(self) -> None:
        """Deliver nothing more (the receivers are going away)."""
        self._callbacks = {}

    def _call(self, name: str, *args) -> None:
        callback = self._callbacks.get(name)
        if callback is not None:
            callback(*args)

    @Slot(object)
    def progressed(self, event: Any) -> None:
        self._call("progress", event)

    @Slot(object)
    def succeeded(self, result: Any) -> None:
        self._call("result", result)

    @Slot(str)
    def failed(self, message: str) -> None:
        self._call("error", message)

    @Slot()
    def cancelled(self) -> None:
        self._call("cancelled")

    @Slot()
    def finished(self) -> None:
        self._call("finished")
        self._on_finished(self._worker)


class WorkerPool(QObject):
    """Starts workers, keeps them alive until they finish, and stops them all on exit."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: dict[Worker, _Relay] = {}

    def start(
        self,
        task: Task,
        *,
        name: str,
        on_result: Callable[[Any], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        priority: QThread.Priority = QThread.Priority.InheritPriority,
    ) -> Worker:
        worker = Worker(task, name=name)
        callbacks = {
            "result": on_result, "progress": on_progress, "error": on_error, "cancelled": on_cancelled,
            "finished": on_finished,
        }
        self._running[worker] = _Relay(worker, callbacks, self._done)
        worker.start(priority)
        return worker

    def _done(self, worker: Worker) -> None:
        """The worker's ``finished`` arrived: its thread has left ``run`` but may still be in Qt's own ending.

        Wait that out (PySide's ``wait`` lets go of the GIL, and the ending takes microseconds) before the last
        reference goes: a QThread destroyed while its thread is still ending waits for it inside the destructor,
        and a destructor run by Python's garbage collector in the GUI thread, at whatever moment it collects, is
        no place to wait on another thread (a test once hung there, the GUI thread collecting garbage and the
        workers stopped behind it)."""
        relay = self._running.pop(worker, None)
        if relay is not None:
            relay.deleteLater()
        if worker.wait(_ENDING_MS):
            worker.deleteLater()
        else:
            log.warning("worker %s still ending %d ms after its last signal; kept to the end of the process",
                        worker.objectName(), _ENDING_MS)
            _OUTLIVING.append(worker)

    @property
    def running(self) -> int:
        return len(self._running)

    def stop_all(self, timeout_ms: int = 120_000) -> None:
        """Ask every worker to stop and wait for them (on quit: no thread may outlive the app).

        Every job stops at its next progress point; one that cannot be interrupted (loading a model) ends on its
        own. A worker still running after ``timeout_ms`` is kept referenced for the rest of the process: a QThread
        object destroyed while its thread runs aborts or deadlocks the interpreter (seen when a closed window's
        pool was garbage-collected while a model was still loading on a busy machine).
        """
        for worker, relay in list(self._running.items()):
            worker.cancel()
            relay.silence()  # events already queued must not reach closed windows
        for worker in list(self._running):
            if not worker.wait(timeout_ms):
                log.warning("worker %s still running after %d ms; left to finish on its own", worker.objectName(), timeout_ms)
                _OUTLIVING.append(worker)
