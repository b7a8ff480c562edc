"""Background jobs: results, progress and one-line errors reach the GUI thread; cancel stops a job."""

import threading
import time

from PySide6.QtCore import QThread

from model.errors import Cancelled, TruncatedFileError

from app.errors import describe
from app.background.workers import WorkerPool


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


def test_a_worker_that_outlives_its_pool_is_never_destroyed_while_it_runs(tmp_path):
    """A window closed while a job that cannot be interrupted (a model loading) still runs: its pool goes away,
    the thread must not (destroying a running QThread aborts or deadlocks the process). In a child process,
    so that the failure is a failed test, not a dead test run."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import gc, os, threading, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QCoreApplication
        app = QCoreApplication([])
        from app.background.workers import WorkerPool
        release = threading.Event()
        pool = WorkerPool()
        worker = pool.start(lambda report, should_stop: release.wait(30), name="uninterruptible")
        time.sleep(0.2)
        pool.stop_all(timeout_ms=100)  # gives up waiting: the job ignores the cancel
        del pool, worker
        gc.collect()
        app.processEvents()
        release.set()
        time.sleep(0.5)
        print("survived", flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    assert done.returncode == 0 and "survived" in done.stdout, (done.returncode, done.stderr[-2000:])


def test_a_finished_worker_is_let_go_only_once_its_thread_has_ended(qtbot):
    """``finished`` can reach the GUI thread while the worker's thread is still in Qt's own ending. The pool lets
    go of the worker only after that ending: a QThread destroyed before it (by Python's garbage collector, in the
    GUI thread, at any moment) waits inside its destructor. Here each thread's ending is made slow on purpose, by a
    slot run in the ending thread itself, and the pool is told of the end while the thread is still in it; several
    workers end one after another, as case loads do."""
    import shiboken6
    from PySide6.QtCore import Qt

    pool = WorkerPool()
    for round_ in range(3):
        ending: list[str] = []

        in_ending = threading.Event()

        def slow_ending():  # runs in the worker's thread, inside QThread's ending
            ending.append("started")
            in_ending.set()
            time.sleep(0.3)
            ending.append("ended")

        go = threading.Event()
        worker = pool.start(lambda report, should_stop: go.wait(10), name=f"ending {round_}")
        worker.finished.connect(slow_ending, Qt.ConnectionType.DirectConnection)
        go.set()
        assert in_ending.wait(5)
        pool._done(worker)  # what the pool does on finished, while the thread is still in its ending
        assert ending == ["started", "ended"], "the pool let go of a worker whose thread had not ended"
        qtbot.waitUntil(lambda: pool.running == 0 and not shiboken6.isValid(worker), timeout=5000)  # then deleted
