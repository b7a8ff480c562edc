"""A backup of the review log: one consistent, self-contained copy (WAL content included), written atomically
and checked where it lands."""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from model.fileio import atomic_path
from model.reviews.chain import verify_chain
from model.reviews.schema import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    reviews: int
    head: str


def backup_target(dest: str | Path) -> Path:
    """The backup file for ``dest``: itself, or ``reviews-backup-<UTC time>.sqlite`` in it when it is a folder
    or a name ending in a slash."""
    folder = isinstance(dest, str) and dest.endswith(("/", os.sep))
    dest = Path(dest)
    if folder or dest.is_dir():
        dest = dest / f"reviews-backup-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.sqlite"
    return dest


def write_backup(conn: sqlite3.Connection, log_path: Path, dest: Path) -> BackupResult:
    """Copy the log open on ``conn`` to ``dest`` by SQLite's online backup API (the caller holds the store's lock)
    and check the copy's chain. The copy is in rollback journal mode, one file: copying ``reviews.sqlite`` alone
    is not a backup, since the latest reviews may still be in ``reviews.sqlite-wal``."""
    with atomic_path(dest) as tmp:
        target = connect(tmp)
        try:
            conn.backup(target)  # one step: the snapshot of one read transaction
            target.execute("PRAGMA journal_mode=DELETE")
            state, _ = verify_chain(target, log_path)
        finally:
            target.close()
    log.info("review log backed up: %d reviews", state.reviews)
    return BackupResult(dest, state.reviews, state.head)
