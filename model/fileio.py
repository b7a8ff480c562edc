"""Durable file writes and the app's folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
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
