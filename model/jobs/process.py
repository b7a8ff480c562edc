"""How a job's child process is started: this Python, its own session, the package on its path, a lower priority.

The retrain child (model.jobs.child) and the timing child of the estimate
(model.jobs.timing) start and run the same way, so that the timing sees what
the training will see.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

_PACKAGE_PARENT = Path(__file__).resolve().parents[2]
CHILD_NICENESS = 5  # the reader's viewer comes first


def child_env() -> dict[str, str]:
    """The environment of a child: unbuffered output, and this package importable whatever the working folder."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
    return env


def start_child(module: str, args: list[str], *, output: IO[bytes], cwd: Path | None = None) -> subprocess.Popen:
    """``python -m module args...`` in its own session (the viewer's end or Ctrl+C does not reach it), its stdout
    and stderr into ``output``."""
    return subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=output,
                            stderr=subprocess.STDOUT, env=child_env(), cwd=str(cwd) if cwd is not None else None,
                            start_new_session=True, close_fds=True)


def lower_priority() -> None:
    """Called by a child on itself: the reader's viewer comes first."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(CHILD_NICENESS)


__all__ = ["CHILD_NICENESS", "child_env", "lower_priority", "start_child"]
