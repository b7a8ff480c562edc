"""A job folder's state.json (merged under a lock), its JSON files and its train.log lines.

The parent writes the child's pid; the child writes everything else. Both
merge their changes into state.json under an advisory lock, each write atomic.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from collections.abc import Iterator
from pathlib import Path

from model.fileio import atomic_write_json

STATES = ("running", "gating", "paused", "done", "cancelled", "failed")
LIVE_STATES = ("running", "gating")


def now() -> str:
    """The time a state records: UTC, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line, cut to ``limit`` characters: what a state message or a log line holds."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def write_json(path: Path, data: dict) -> None:
    atomic_write_json(path, data, default=str)


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_json_list(path: Path) -> list:
    """The JSON list in ``path``; [] when it is missing, unreadable or not a list."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def log_line(job_dir: Path, message: str) -> None:
    """One line appended to the job's train.log by the parent (the child writes its own lines the same way)."""
    with contextlib.suppress(OSError), open(job_dir / "train.log", "a", encoding="utf-8") as log:
        log.write(f"{_dt.datetime.now().strftime('%H:%M:%S')} {message}\n")


@contextlib.contextmanager
def _locked(job_dir: Path) -> Iterator[None]:
    with open(job_dir / ".state.lock", "a") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; the writes stay atomic
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_state(job_dir: Path) -> dict | None:
    """state.json as it is now; None while it cannot be read."""
    return read_json(job_dir / "state.json")


def update_state(job_dir: Path, **changes) -> dict:
    """Merge ``changes`` into state.json under the lock; the state as written."""
    with _locked(job_dir):
        state = read_state(job_dir) or {}
        state.update(changes)
        write_json(job_dir / "state.json", state)
    return state


__all__ = ["LIVE_STATES", "STATES", "log_line", "now", "one_line", "read_json", "read_json_list", "read_state",
           "update_state", "write_json"]
