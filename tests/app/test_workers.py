"""Background jobs: results, progress and one-line errors reach the GUI thread; cancel stops a job."""

import threading
import time

from PySide6.QtCore import QThread

from model.errors import TruncatedFileError

from app.errors import describe
from app.workers import Cancelled, WorkerPool


def test_result_and_progress_arrive_in_the_gui_thread(qtbot):
    pool = WorkerPool()
    seen = []

    def task(report, should_stop):
        for i in range(3):
            report(i)
        return threading.get_ident()

    gui = threading.get_ident()
    results = []
    pool.start(task, name="t", on_progress=lambda e: seen.append((e, threading.get_ident())), on_result=results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert [e for e, _ in seen] == [0, 1, 2] and all(t == gui for _, t in seen)
    assert results[0] != gui  # the task itself ran elsewhere
    qtbot.waitUntil(lambda: pool.running == 0, timeout=5000)


def test_errors_arrive_as_one_line(qtbot):
    pool = WorkerPool()
    errors = []

    def task(report, should_stop):
        raise TruncatedFileError("/data/x.dcm", "file ends\\n before the pixel data")

    pool.start(task, name="t", on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert errors == ["x.dcm: file ends\\n before the pixel data"]
    assert describe(ValueError("bad\nthing")) == "ValueError: bad thing"
    assert describe(FileNotFoundError(2, "No such file", "/nowhere")) == "/nowhere does not exist"


def test_cancel_stops_a_running_job(qtbot):
    pool = WorkerPool()
    cancelled, results = [], []

    def slow(report, should_stop):
        for _ in range(1000):
            if should_stop():
                raise Cancelled
            time.sleep(0.01)
        return "finished"

    worker = pool.start(slow, name="slow", on_cancelled=lambda: cancelled.append(True), on_result=results.append,
                        priority=QThread.Priority.LowPriority)
    started = time.perf_counter()
    worker.cancel()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=5000)
    assert time.perf_counter() - started < 2 and not results
    pool.stop_all()
    assert pool.running == 0 or not worker.isRunning()
