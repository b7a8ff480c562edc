"""The review log's SQLite schema: its tables and append-only triggers, a new log written whole, and an older
log's structure checked and migrated forward (tables added, nothing already recorded rewritten)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from model.errors import ReviewLogError, ReviewLogTampered
from model.fileio import fsync_dir
from model.reviews.chain import entry_hash, genesis
from model.reviews.records import BIRADS, PHASES, VERDICTS

log = logging.getLogger(__name__)

# 1: reviews only; 2: + review_chain, log_meta, the REPLACE triggers and user_version;
# 3: + seen_unblinded and reading_mode, the blinded-reading protocol's state (model.reviews.protocol)
SCHEMA_VERSION = 3
CHAIN_SCHEMA = 2  # the first schema with the hash chain

_TABLES = f"""
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created        TEXT    NOT NULL,
    reader         TEXT    NOT NULL CHECK (length(reader) > 0),
    patient_id     TEXT    NOT NULL CHECK (length(patient_id) > 0),
    image_path     TEXT,
    model_version  TEXT    NOT NULL DEFAULT '',
    ai_score_shown REAL,
    ai_shown       INTEGER NOT NULL CHECK (ai_shown IN (0, 1)),
    verdict        TEXT    NOT NULL CHECK (verdict IN ({", ".join(repr(v) for v in VERDICTS)})),
    birads         TEXT    NOT NULL CHECK (birads IN ({", ".join(repr(b) for b in BIRADS)})),
    comment        TEXT    NOT NULL DEFAULT '',
    blinded        INTEGER NOT NULL CHECK (blinded IN (0, 1)),
    phase          TEXT    NOT NULL CHECK (phase IN ({", ".join(repr(p) for p in PHASES)}))
);
CREATE INDEX IF NOT EXISTS reviews_patient ON reviews (patient_id, id);
CREATE TABLE IF NOT EXISTS review_chain (
    review_id INTEGER PRIMARY KEY,  -- reviews.id
    n         INTEGER NOT NULL,     -- 1-based position in the log
    hash      TEXT    NOT NULL      -- sha256 hex of the previous hash, n and the review's columns
);
CREATE TABLE IF NOT EXISTS log_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_unblinded (
    reader     TEXT NOT NULL,  -- '': seen at this workstation before a reader name was typed (counts for everyone)
    patient_id TEXT NOT NULL CHECK (length(patient_id) > 0),
    seen       TEXT NOT NULL,  -- UTC time the case was first on screen with the AI and the truth
    PRIMARY KEY (reader, patient_id)
);
CREATE TABLE IF NOT EXISTS reading_mode (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    changed TEXT    NOT NULL,
    blinded INTEGER NOT NULL CHECK (blinded IN (0, 1))  -- the newest row is the mode
);
"""


def _append_only(table: str, *key: str) -> str:
    match = " AND ".join(f"{k} = NEW.{k}" for k in key)
    return f"""
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: UPDATE refused');
END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: DELETE refused');
END;
CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table}
WHEN EXISTS (SELECT 1 FROM {table} WHERE {match})
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: REPLACE of an existing entry refused');
END;
"""


_APPEND_ONLY = {"reviews": ("id",), "review_chain": ("review_id",), "log_meta": ("key",),
                "seen_unblinded": ("reader", "patient_id"), "reading_mode": ("id",)}
_TRIGGERS = "".join(_append_only(table, *key) for table, key in _APPEND_ONLY.items())
_TRIGGER_NAMES = {f"{t}_no_{op}" for t in _APPEND_ONLY for op in ("update", "delete", "replace")}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: every transaction is an explicit BEGIN ... COMMIT."""
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` one by one (``executescript`` would commit the transaction around them)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():  # the scripts are this module's constants: a ValueError here is a bug in one of them
        raise ValueError("incomplete SQL statement at the end of a script")


def initialise(conn: sqlite3.Connection, *, from_schema: int | None) -> None:
    """Make ``conn``'s database the current schema in one transaction: the tables and triggers it lacks, the log
    id, and, for a log from before the chain (``from_schema`` 1), a chain entry for every review it holds (the
    migration is recorded in ``log_meta`` as ``chain_migrated``). A log that has the chain keeps it as it is."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _run_script(conn, _TABLES + _TRIGGERS)
        meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM log_meta")}
        log_id = meta.get("log_id")
        if log_id is None:
            log_id = secrets.token_hex(16)
            conn.execute("INSERT INTO log_meta (key, value) VALUES ('log_id', ?)", (log_id,))
            conn.execute("INSERT INTO log_meta (key, value) VALUES ('created', ?)", (utc_now(),))
        if from_schema is None or from_schema < CHAIN_SCHEMA:
            rows = conn.execute("SELECT * FROM reviews ORDER BY id").fetchall()
            prev = genesis(log_id)
            for n, row in enumerate(rows, 1):
                prev = entry_hash(prev, n, row)
                conn.execute("INSERT INTO review_chain (review_id, n, hash) VALUES (?, ?, ?)", (row["id"], n, prev))
            if from_schema is not None:
                conn.execute("INSERT INTO log_meta (key, value) VALUES ('chain_migrated', ?)", (json.dumps(
                    {"at": utc_now(), "reviews": len(rows), "from_schema": from_schema}),))
        if (conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0) < SCHEMA_VERSION:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def create_log(path: Path) -> None:
    """Write a new, empty log under a temporary name and link it into place: a crash leaves no file at ``path``,
    never an empty one, and a log another process made meanwhile is kept."""
    tmp = path.with_name(f".{path.name}.new-{secrets.token_hex(6)}")
    try:
        conn = connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            initialise(conn, from_schema=None)
        finally:
            conn.close()  # the last connection checkpoints and removes the -wal: the file is whole on its own
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
    fsync_dir(path.parent)


def open_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Settings (WAL, synchronous FULL), then the structure: a log that lost a table it had is refused, an older
    log is migrated forward, triggers that were dropped are made again."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise ReviewLogError(f"the review log {path} could not switch to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    if "reviews" not in tables:
        if user_version > 0 or tables & {"schema_version", "review_chain", "log_meta", "seen_unblinded", "reading_mode"}:
            raise ReviewLogTampered(
                f"the reviews table is missing from the review log {path}: it was dropped or the file is "
                "damaged; restore the log from a backup")
        if tables - {"sqlite_sequence"}:
            raise ReviewLogError(f"{path} is an SQLite database but not a review log "
                                 f"(tables: {', '.join(sorted(tables))[:200]})")
        initialise(conn, from_schema=None)  # an SQLite file that never held anything: made a log here
        return
    if "schema_version" not in tables:
        raise ReviewLogTampered(f"the schema_version table is missing from the review log {path}: "
                                "the file was changed outside B-Cir Review; restore the log from a backup")
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    if version is None:
        raise ReviewLogTampered(f"the review log {path} has no schema version: the file was changed "
                                "outside B-Cir Review; restore the log from a backup")
    if version > SCHEMA_VERSION:
        raise ReviewLogError(f"the review log {path} has schema {version}, newer than this app "
                             f"understands ({SCHEMA_VERSION})")
    if version < CHAIN_SCHEMA and "review_chain" in tables:
        raise ReviewLogTampered(f"the review log {path} says schema {version} but has a hash "
                                "chain: it was changed outside B-Cir Review; restore it from a backup")
    had = {"review_chain", "log_meta"} | ({"seen_unblinded", "reading_mode"} if version >= 3 else set())
    missing = had - tables if version >= CHAIN_SCHEMA else set()
    if missing:
        raise ReviewLogTampered(
            f"the {' and '.join(sorted(missing))} table{'s are' if len(missing) > 1 else ' is'} missing "
            f"from the review log {path}: it was changed outside B-Cir Review; restore it from a backup")
    if version < SCHEMA_VERSION:
        initialise(conn, from_schema=version)
        log.info("review log migrated from schema %d to %d%s", version, SCHEMA_VERSION,
                 ": existing reviews chained once" if version < CHAIN_SCHEMA else "")
        return
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    if _TRIGGER_NAMES - triggers:
        log.warning("review log: %d append-only triggers were missing and are made again",
                    len(_TRIGGER_NAMES - triggers))
        _run_script(conn, _TRIGGERS)
