"""Durable file writes and the app's folders."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def _atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` only when the block ends without error: temp file in the same
    folder, flush and fsync, ``os.replace``, fsync the folder. Readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name and a lock held while it writes: clean_stale_parts never takes a live one
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".part")
    try:
        _lock(fd)
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; these are ordinary shared files
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`_atomic_file`)."""
    with _atomic_file(path) as f:
        f.write(data)


def atomic_write_json(path: str | Path, data, *, indent: int | None = 1, **dumps) -> None:
    """``data`` as JSON text and a final newline, written atomically (``dumps``: more ``json.dumps`` options)."""
    atomic_write_bytes(path, (json.dumps(data, indent=indent, **dumps) + "\n").encode("utf-8"))


class UnreadableJson(ValueError):
    """A JSON file that cannot be read, is not JSON, or is not one object; ``reason`` says which, in one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_json_object(path: str | Path) -> dict:
    """The one JSON object in ``path``. FileNotFoundError as is (callers say what is missing in their own words);
    :class:`UnreadableJson` with a one-line reason for a file that cannot be read, is not JSON, or holds no object."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UnreadableJson(f"is unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        kind = {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(data), "number")
        raise UnreadableJson(f"is a JSON {kind}, not an object")
    return data


def atomic_copy(source: str | Path, path: str | Path) -> None:
    """Copy ``source`` to ``path`` atomically, streamed (the way :func:`atomic_write_bytes` writes)."""
    with open(source, "rb") as src, _atomic_file(path) as f:
        shutil.copyfileobj(src, f, 1 << 20)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path in ``path``'s folder for a writer that needs a file name (SQLite's backup); when the block
    ends without error the file is fsynced and becomes ``path`` (``os.replace``, then the folder is fsynced).
    On error it is removed, with any file whose name starts with its name (a journal the writer left)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.part"
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        for leftover in path.parent.glob(f"{tmp.name}*"):
            leftover.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


STALE_PART_S = 60.0  # a temp file untouched this long, without a live writer, was left by a killed one
_PART_PID = re.compile(r"\.(\d+)-[^./]*\.part$")


def _lock(fd: int, *, wait: bool = True) -> bool:
    """An exclusive advisory lock on an open file (flock): held until the file is closed. False when ``wait`` is
    off and another process holds it. Without fcntl (Windows) there are no such locks: True."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: the age and the pid still guard
        return True
    return True


@contextmanager
def held_lock(path: str | Path) -> Iterator[None]:
    """Hold the lock of :func:`_lock` on the existing file ``path`` for the block (the file may be renamed meanwhile:
    the lock stays with it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _lock(fd)
        yield
    finally:
        os.close(fd)


def _pid_running(pid: int) -> bool:
    if pid <= 0:  # not a writer's pid (os.kill would signal a process group)
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def is_stale(path: str | Path, *, older_than: float = STALE_PART_S) -> bool:
    """True when no live process can be writing ``path``: untouched for ``older_than`` seconds, its writer's pid (from
    the name, when there) not running, and its lock free. Anything uncertain counts as live."""
    path = Path(path)
    try:
        if time.time() - path.lstat().st_mtime < older_than or not path.is_file() or path.is_symlink():
            return False
    except OSError:
        return False
    match = _PART_PID.search(path.name)
    if match and _pid_running(int(match.group(1))):
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return _lock(fd, wait=False)
    finally:
        os.close(fd)


def clean_stale_parts(folder: str | Path, *, older_than: float = STALE_PART_S) -> list[Path]:
    """Remove the temp files (``.NAME.*.part``) that writers killed mid-write left in ``folder`` (not below it), and
    only those (:func:`is_stale`); never a file another live process is writing. Returns what was removed."""
    removed = []
    try:
        candidates = [p for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(".part")]
    except OSError:
        return removed
    for path in candidates:
        if is_stale(path, older_than=older_than):
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(path)
    if removed:
        fsync_dir(folder)
    return removed


def fsync_dir(folder: str | Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def user_data_dir() -> Path:
    """Where reviews and the model registry live (``BCIR_DATA_DIR`` overrides; XDG on Linux)."""
    if os.environ.get("BCIR_DATA_DIR"):
        return Path(os.environ["BCIR_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "bcir-review"


def user_cache_dir() -> Path:
    """Where inference results are cached (``BCIR_CACHE_DIR`` overrides)."""
    if os.environ.get("BCIR_CACHE_DIR"):
        return Path(os.environ["BCIR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bcir-review"
