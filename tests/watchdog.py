"""A test that hangs ends the run with every thread's stack, Python's and C's, instead of holding CI until its timeout.

The suite's slowest tests take under a minute, so a test still running after ``BCIR_TEST_HANG_S`` seconds (600 unless
set) is taken for hung. The watchdog then prints what the test had written, every thread's Python stack
(faulthandler), and, where gdb is installed, every thread's C stack: a deadlock between a Qt or torch lock and Python's
GIL shows only in the C stacks. It stops the servers the tests started (``on_hang``), whose fixtures' teardown will not
run, and the process leaves with status 3, so the run fails, loudly, rather than skipping.
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import subprocess
import sys
import threading

LIMIT_ENV = "BCIR_TEST_HANG_S"
HUNG_STATUS = 3
_SERVERS: list = []  # how to stop each server a test started (PostgreSQL, Orthanc): a hung run stops them too


def on_hang(stop) -> None:
    """``stop()`` is called if the run is ended as hung: the server it stops must not outlive the run."""
    _SERVERS.append(stop)


def forget(stop) -> None:
    """The server was stopped the usual way."""
    if stop in _SERVERS:
        _SERVERS.remove(stop)


def limit_s() -> float:
    return float(os.environ.get(LIMIT_ENV, "600"))


class Watchdog:
    """Armed around each test; fires once, from its own thread, if the test outlives the limit."""

    def __init__(self, config):
        self._capture = config.pluginmanager.getplugin("capturemanager")
        self._timer: threading.Timer | None = None

    def arm(self, nodeid: str) -> None:
        self.disarm()
        self._timer = threading.Timer(limit_s(), self._fire, args=(nodeid,))
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, nodeid: str) -> None:
        captured = ""
        if self._capture is not None:  # give the terminal back (the test's output was going to pytest's capture)
            try:
                self._capture.suspend_global_capture(in_=True)
                out, err = self._capture.read_global_capture()
                captured = out + err
            except Exception as exc:  # the dump below matters more than the test's output
                captured = f"(the test's output could not be read back: {exc})\n"
        stream = sys.__stderr__
        stream.write(f"\n\n{nodeid} is still running after {limit_s():.0f} s ({LIMIT_ENV}): taken for hung.\n")
        if captured:
            stream.write("What the test wrote:\n" + captured + "\n")
        stream.write("Every thread's Python stack:\n")
        stream.flush()
        faulthandler.dump_traceback(file=stream, all_threads=True)
        gdb = shutil.which("gdb")
        if gdb is None:
            stream.write("No C stacks: gdb is not installed.\n")
        else:
            stream.write("Every thread's C stack (gdb):\n")
            stream.flush()
            try:
                subprocess.run([gdb, "-p", str(os.getpid()), "-batch", "-nx", "-ex", "thread apply all bt"],
                               stdout=stream, stderr=subprocess.STDOUT, timeout=180, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                stream.write(f"gdb could not read the stacks: {exc}\n")
        for stop in list(_SERVERS):  # the fixtures' own teardown will not run
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - the others are stopped all the same
                stream.write(f"a test server could not be stopped: {exc}\n")
        stream.write(f"\nThe test run stops here, with status {HUNG_STATUS}.\n")
        stream.flush()
        os._exit(HUNG_STATUS)
