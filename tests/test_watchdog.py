"""The test run's watchdog (tests/watchdog.py): a hung test ends the run, failed, with every thread's stack, and the
servers the tests started are stopped."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_hung_test_ends_the_run_with_its_stacks_and_a_failure(tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_configure, pytest_runtest_protocol\n")
    (tmp_path / "test_hangs.py").write_text(textwrap.dedent("""
        import threading
        from pathlib import Path

        from tests import watchdog

        def test_quick():
            assert True

        def test_waits_forever():
            watchdog.on_hang(lambda: Path(__file__).with_name("stopped").write_text("the server was stopped"))
            print("about to wait")
            lock = threading.Lock()
            lock.acquire()
            lock.acquire()

        def test_never_reached():
            assert True
    """))
    env = {**__import__("os").environ, "BCIR_TEST_HANG_S": "3"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output[-3000:]
    assert "test_hangs.py::test_waits_forever is still running after 3 s" in output
    assert "about to wait" in output  # what the test wrote before it hung
    assert 'test_hangs.py", line 15 in test_waits_forever' in output  # the hung line, in the Python stacks
    assert "test_never_reached" not in output
    assert (tmp_path / "stopped").read_text() == "the server was stopped"  # what a test started is stopped too
