"""Reader reviews (double reading): an append-only SQLite log.

One file, ``user_data_dir()/reviews.sqlite`` unless a path is given, in WAL
mode with ``synchronous=FULL``; every write is one transaction. Rows are never
updated or deleted: triggers in the database itself refuse UPDATE, DELETE and
an INSERT on an existing id (``INSERT OR REPLACE`` / ``REPLACE INTO``, which
SQLite would otherwise carry out as a delete that fires no DELETE trigger), so
a correction is a new record and the history stays whole.

Tamper evidence (what someone with the file can do is said in the README):

* every review has an entry in ``review_chain``: its position and the SHA-256
  of the previous entry's hash with the review's every column. The whole
  chain is checked when the store opens; an edited, inserted, reordered or
  removed review raises :class:`ReviewLogTampered`. A log written before the
  chain existed is chained once, in one transaction, and ``log_meta`` says
  when and how many reviews were chained then (``chain_migrated``).
* the anchor, ``reviews.sqlite.anchor.json`` next to the log, holds the log's
  id, its count and its head hash after each record. A log with fewer reviews
  than its anchor, another head at the anchor's count, another id, or missing
  altogether raises :class:`ReviewLogTampered`.
* a database that was a review log (``PRAGMA user_version``, its other tables)
  but has lost its ``reviews`` table, and an empty (zero-byte) file, are refused
  instead of being started again as an empty log. A new log is written whole
  under a temporary name and linked into place, so an empty file at the path
  is never one this module left behind.

Everything that stops the store from opening is a :class:`ReviewLogError`
(a :class:`~model.errors.BcirError`) with one line that names the file.

Verdicts:

* ``agree`` / ``disagree``: the reader's opinion of the AI result they saw
  (``ai_shown`` must be True).
* ``own``: a blinded read committed before the AI is revealed
  (``ai_shown`` False, no AI score, phase ``blinded``).

Blinded protocol (see :class:`BlindedSession`): first an ``own`` record in
phase ``blinded``, then, after the reveal, an ``agree``/``disagree`` record in
phase ``unblinded`` with the AI score as shown. Recording the unblinded verdict
without a pending own read raises ``ValueError``.

No patient identifiers are logged; log lines carry record ids only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from model.errors import BcirError
from model.errors import failure_reason
from model.fileio import atomic_path, atomic_write_bytes, atomic_write_json, fsync_dir, user_data_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 1: reviews only; 2: + review_chain, log_meta, the REPLACE triggers and user_version
DB_NAME = "reviews.sqlite"
ANCHOR_SUFFIX = ".anchor.json"

BIRADS = ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6")
VERDICTS = ("agree", "disagree", "own")
PHASES = ("blinded", "unblinded", "open")
STATUSES = ("unread", "reviewed", "disagreement")

CSV_COLUMNS = (
    "id", "created", "reader", "patient_id", "image_path", "model_version",
    "ai_score_shown", "ai_shown", "verdict", "birads", "comment", "blinded", "phase",
)
_CHAINED_COLUMNS = CSV_COLUMNS  # every column of a review goes into its hash, in this order

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
"""


def _append_only(table: str, key: str) -> str:
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
WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key})
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: REPLACE of an existing entry refused');
END;
"""


_TRIGGERS = _append_only("reviews", "id") + _append_only("review_chain", "review_id") + _append_only("log_meta", "key")
_TRIGGER_NAMES = {f"{t}_no_{op}" for t in ("reviews", "review_chain", "log_meta") for op in ("update", "delete", "replace")}


class ReviewLogError(BcirError):
    """The review log cannot be opened or used; ``str()`` is one line that names the file."""


class ReviewLogTampered(ReviewLogError):
    """The review log was changed outside B-Cir Review: an edited, inserted or removed review, a dropped table,
    or a log that no longer matches its anchor."""


@dataclass(frozen=True)
class LogState:
    """What the check at open found: the log's id, its review count, the last review's id and the head hash."""

    log_id: str
    reviews: int
    last_id: int | None
    head: str
    chain_migrated: dict | None = None  # {"at", "reviews", "from_schema"} when a log without the chain was chained


@dataclass(frozen=True)
class BackupResult:
    path: Path
    reviews: int
    head: str


def _genesis(log_id: str) -> str:
    return hashlib.sha256(b"bcir-review-log\0" + log_id.encode("utf-8")).hexdigest()


def _entry_hash(prev: str, n: int, row) -> str:
    """The chain hash of the n-th review ``row`` (a Row of ``reviews``) after the entry whose hash is ``prev``."""
    body = json.dumps([n, *(row[c] for c in _CHAINED_COLUMNS)], ensure_ascii=True, separators=(",", ":"),
                      default=lambda v: {"blob": v.hex()} if isinstance(v, bytes) else repr(v))  # only a forger stores those
    return hashlib.sha256(f"{prev}\n{body}".encode("ascii")).hexdigest()


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def normalize_birads(value) -> str:
    """``'4a'`` -> ``'4A'``, ``3`` -> ``'3'``; anything else is a ``ValueError``."""
    text = str(value).strip().upper() if value is not None else ""
    if text not in BIRADS:
        raise ValueError(f"BI-RADS must be one of {', '.join(BIRADS)}, not {str(value)!r:.40}")
    return text


@dataclass(frozen=True)
class Review:
    """One reader review. ``id`` and ``created`` are filled in by :meth:`ReviewStore.record`."""

    reader: str
    patient_id: str
    verdict: str
    birads: str
    comment: str = ""
    image_path: str | None = None  # None: a case-level review
    model_version: str = ""
    ai_score_shown: float | None = None  # what the reader saw; None while blinded
    ai_shown: bool = False
    blinded: bool = False
    phase: str = "open"
    id: int | None = None
    created: str | None = None

    def validated(self) -> "Review":
        """A copy with BI-RADS normalised; ``ValueError`` (one line) when inconsistent."""
        if not isinstance(self.reader, str) or not self.reader.strip():
            raise ValueError("reader name is required")
        if not isinstance(self.patient_id, str) or not self.patient_id.strip():
            raise ValueError("patient ID is required")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {str(self.verdict)!r:.40}")
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {str(self.phase)!r:.40}")
        birads = normalize_birads(self.birads)
        score = self.ai_score_shown
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise ValueError("AI score shown must be a number in [0, 1]") from None
            if not math.isfinite(score) or not 0.0 <= score <= 1.0:
                raise ValueError("AI score shown must be a number in [0, 1]")
        if self.verdict == "own":
            if self.ai_shown or score is not None:
                raise ValueError("an 'own' read is made without the AI: ai_shown must be False and no AI score")
            if self.phase != "blinded" or not self.blinded:
                raise ValueError("an 'own' read belongs to the blinded phase")
        else:
            if not self.ai_shown:
                raise ValueError(f"verdict {self.verdict!r} is about the AI result, so ai_shown must be True")
            if self.phase == "blinded":
                raise ValueError("the blinded phase records only the reader's 'own' read")
            if self.phase == "unblinded" and not self.blinded:
                raise ValueError("an unblinded verdict belongs to a blinded read (blinded must be True)")
            if self.phase == "open" and self.blinded:
                raise ValueError("an open review is not blinded (use phase 'unblinded' after a blinded read)")
        comment = "" if self.comment is None else str(self.comment)
        image_path = None if self.image_path in (None, "") else str(self.image_path)
        return replace(
            self,
            reader=self.reader.strip(),
            patient_id=self.patient_id.strip(),
            birads=birads,
            ai_score_shown=score,
            ai_shown=bool(self.ai_shown),
            blinded=bool(self.blinded),
            comment=comment,
            image_path=image_path,
            model_version="" if self.model_version is None else str(self.model_version),
        )


def _status_of_verdict(verdict: str) -> str:
    """A reviewed patient's status from its latest verdict (an own read counts as reviewed)."""
    return "disagreement" if verdict == "disagree" else "reviewed"


def _row_to_review(row: sqlite3.Row) -> Review:
    return Review(
        id=row["id"],
        created=row["created"],
        reader=row["reader"],
        patient_id=row["patient_id"],
        image_path=row["image_path"],
        model_version=row["model_version"],
        ai_score_shown=row["ai_score_shown"],
        ai_shown=bool(row["ai_shown"]),
        verdict=row["verdict"],
        birads=row["birads"],
        comment=row["comment"],
        blinded=bool(row["blinded"]),
        phase=row["phase"],
    )


def _connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: every transaction is an explicit BEGIN IMMEDIATE ... COMMIT."""
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
    if statement.strip():
        raise ValueError("incomplete SQL statement at the end of a script")


def _initialise(conn: sqlite3.Connection, *, from_schema: int | None) -> None:
    """Make ``conn``'s database the current schema in one transaction: tables, triggers, the log id, and a chain
    entry for every review there already is (all of them when a log of schema ``from_schema`` is migrated; the
    migration is recorded in ``log_meta`` as ``chain_migrated``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _run_script(conn, _TABLES + _TRIGGERS)
        meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM log_meta")}
        log_id = meta.get("log_id")
        if log_id is None:
            log_id = secrets.token_hex(16)
            conn.execute("INSERT INTO log_meta (key, value) VALUES ('log_id', ?)", (log_id,))
            conn.execute("INSERT INTO log_meta (key, value) VALUES ('created', ?)", (_utc_now(),))
        rows = conn.execute("SELECT * FROM reviews ORDER BY id").fetchall()
        prev = _genesis(log_id)
        for n, row in enumerate(rows, 1):
            prev = _entry_hash(prev, n, row)
            conn.execute("INSERT INTO review_chain (review_id, n, hash) VALUES (?, ?, ?)", (row["id"], n, prev))
        if from_schema is not None:
            conn.execute("INSERT INTO log_meta (key, value) VALUES ('chain_migrated', ?)", (json.dumps(
                {"at": _utc_now(), "reviews": len(rows), "from_schema": from_schema}),))
        if (conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0) < SCHEMA_VERSION:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _create_log(path: Path) -> None:
    """Write a new, empty log under a temporary name and link it into place: a crash leaves no file at ``path``,
    never an empty one, and a log another process made meanwhile is kept."""
    tmp = path.with_name(f".{path.name}.new-{secrets.token_hex(6)}")
    try:
        conn = _connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            _initialise(conn, from_schema=None)
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


def _verify(conn: sqlite3.Connection, path: Path, *, want: int | None = None) -> tuple[LogState, tuple[int, str] | None]:
    """Check every review against the chain, oldest first. Returns the log's state and, when ``want`` is given,
    (review id, hash) of the want-th review (None when the log is shorter). Raises :class:`ReviewLogTampered`."""
    meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM log_meta")}
    log_id = meta.get("log_id")
    if not log_id:
        raise ReviewLogTampered(f"the review log {path} has no log id: it was changed outside B-Cir Review; "
                                "restore it from a backup")
    try:
        migrated = json.loads(meta["chain_migrated"]) if "chain_migrated" in meta else None
    except ValueError:
        migrated = {"note": "unreadable"}
    head, n, last_id, at_want = _genesis(log_id), 0, None, None
    rows = conn.execute("SELECT r.*, c.n AS chain_n, c.hash AS chain_hash FROM reviews r"
                        " LEFT JOIN review_chain c ON c.review_id = r.id ORDER BY r.id")
    for row in rows:
        n += 1
        if row["chain_hash"] is None:
            raise ReviewLogTampered(f"review {row['id']} in the review log {path} has no entry in its hash chain: "
                                    "it was added outside B-Cir Review; restore the log from a backup")
        if row["chain_n"] != n or _entry_hash(head, n, row) != row["chain_hash"]:
            raise ReviewLogTampered(
                f"review {row['id']} in the review log {path} does not match its hash chain: the log was changed "
                "outside B-Cir Review (this review edited, or one before it removed); restore it from a backup")
        head, last_id = row["chain_hash"], row["id"]
        if n == want:
            at_want = (last_id, head)
    chained = conn.execute("SELECT count(*) FROM review_chain").fetchone()[0]
    if chained != n:
        raise ReviewLogTampered(
            f"{chained - n} entries of the hash chain of the review log {path} have no review: reviews were deleted "
            "outside B-Cir Review; restore the log from a backup")
    return LogState(log_id, n, last_id, head, migrated), at_want


class ReviewStore:
    """The review log. One connection per store, shared between threads under a lock.

    Opening checks the whole log (see the module's docstring) and raises :class:`ReviewLogError`, or
    :class:`ReviewLogTampered`, with one line that names the file. ``create=False`` refuses to start a new log
    where there is none (for commands that only check or copy one).
    """

    def __init__(self, path: str | Path | None = None, *, create: bool = True):
        self.path = Path(path) if path is not None else user_data_dir() / DB_NAME
        self.anchor_path = self.path.with_name(self.path.name + ANCHOR_SUFFIX)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._prepare_file(create)
            self._conn = _connect(self.path)
            self.state = self._open()
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
            if isinstance(exc, sqlite3.Error):
                raise ReviewLogError(self._cannot_open(exc)) from exc
            if isinstance(exc, OSError):
                raise ReviewLogError(f"cannot open the review log {self.path}: {failure_reason(exc)}") from exc
            raise
        self._write_anchor(self.state)

    # -- lifecycle -------------------------------------------------------
    def _cannot_open(self, exc: sqlite3.Error) -> str:
        message = _one_line(exc)
        hint = ""
        if "readonly" in message or "unable to open" in message:
            hint = (f" (B-Cir Review must be able to write to {self.path.name} and to create files next to it in "
                    f"{self.path.parent})")
        return f"cannot open the review log {self.path}: {message}{hint}"

    def _prepare_file(self, create: bool) -> None:
        """Refuse an empty file and a missing log that its anchor remembers; write a new log when there is none."""
        try:
            size = self.path.stat().st_size if self.path.exists() else None
        except OSError as exc:
            raise ReviewLogError(f"cannot open the review log {self.path}: {failure_reason(exc)}") from exc
        if size == 0:
            wal = self.path.with_name(self.path.name + "-wal")
            keep = (f"; keep {wal.name} ({wal.stat().st_size} bytes) with it, it may hold the latest reviews"
                    if wal.is_file() and wal.stat().st_size else "")
            raise ReviewLogError(
                f"the review log {self.path} is an empty file (0 bytes): the reviews it held were lost, for instance "
                f"by a copy that failed; restore it from a backup, or move it away to start a new log{keep}")
        if size is not None:
            return
        anchor = self._read_anchor()
        if anchor and anchor["reviews"] > 0:
            raise ReviewLogTampered(
                f"the review log {self.path} is missing, but its anchor {self.anchor_path.name} records "
                f"{anchor['reviews']} reviews: restore the log from a backup, or move the anchor away to start a new, "
                "empty log")
        if not create:
            raise ReviewLogError(f"there is no review log at {self.path}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReviewLogError(f"cannot create the folder of the review log {self.path}: {failure_reason(exc)}") from exc
        _create_log(self.path)

    def _open(self) -> LogState:
        """Settings, structure, migration of a log without the chain, then the whole chain and the anchor."""
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ReviewLogError(f"the review log {self.path} could not switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        if "reviews" not in tables:
            if user_version > 0 or tables & {"schema_version", "review_chain", "log_meta"}:
                raise ReviewLogTampered(
                    f"the reviews table is missing from the review log {self.path}: it was dropped or the file is "
                    "damaged; restore the log from a backup")
            if tables - {"sqlite_sequence"}:
                raise ReviewLogError(f"{self.path} is an SQLite database but not a review log "
                                     f"(tables: {', '.join(sorted(tables))[:200]})")
            _initialise(conn, from_schema=None)  # an SQLite file that never held anything: made a log here
        else:
            if "schema_version" not in tables:
                raise ReviewLogTampered(f"the schema_version table is missing from the review log {self.path}: "
                                        "the file was changed outside B-Cir Review; restore the log from a backup")
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if version is None:
                raise ReviewLogTampered(f"the review log {self.path} has no schema version: the file was changed "
                                        "outside B-Cir Review; restore the log from a backup")
            if version > SCHEMA_VERSION:
                raise ReviewLogError(f"the review log {self.path} has schema {version}, newer than this app "
                                     f"understands ({SCHEMA_VERSION})")
            if version < SCHEMA_VERSION:
                if "review_chain" in tables:
                    raise ReviewLogTampered(f"the review log {self.path} says schema {version} but has a hash "
                                            "chain: it was changed outside B-Cir Review; restore it from a backup")
                _initialise(conn, from_schema=version)
                log.info("review log migrated from schema %d: existing reviews chained once", version)
            else:
                missing = {"review_chain", "log_meta"} - tables
                if missing:
                    raise ReviewLogTampered(
                        f"the {' and '.join(sorted(missing))} table{'s are' if len(missing) > 1 else ' is'} missing "
                        f"from the review log {self.path}: it was changed outside B-Cir Review; restore it from a backup")
                triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
                if _TRIGGER_NAMES - triggers:
                    log.warning("review log: %d append-only triggers were missing and are made again",
                                len(_TRIGGER_NAMES - triggers))
                    _run_script(conn, _TRIGGERS)
        anchor = self._read_anchor()
        state, at_anchor = _verify(conn, self.path, want=anchor["reviews"] if anchor else None)
        if anchor:
            self._check_anchor(anchor, state, at_anchor)
        try:  # can we write? (a log file without write permission reads fine and would fail at the first review)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return state

    def _read_anchor(self) -> dict | None:
        try:
            data = json.loads(self.anchor_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ReviewLogTampered(f"the anchor {self.anchor_path} of the review log cannot be read "
                                    f"({failure_reason(exc)}): move it away only if you know why it changed") from exc
        ok = (isinstance(data, dict) and isinstance(data.get("log_id"), str) and isinstance(data.get("head"), str)
              and isinstance(data.get("reviews"), int) and not isinstance(data.get("reviews"), bool)
              and data["reviews"] >= 0)
        if not ok:
            raise ReviewLogTampered(f"the anchor {self.anchor_path} of the review log is not one B-Cir Review "
                                    "wrote: move it away only if you know why it changed")
        return data

    def _check_anchor(self, anchor: dict, state: LogState, at_anchor: tuple[int, str] | None) -> None:
        name = self.anchor_path.name
        if anchor["log_id"] != state.log_id:
            raise ReviewLogTampered(
                f"the review log {self.path} is not the log its anchor {name} describes (another log id): restore "
                "the right file, or move the anchor away if you replaced the log on purpose")
        if state.reviews < anchor["reviews"]:
            raise ReviewLogTampered(
                f"the review log {self.path} holds {state.reviews} reviews, but its anchor {name} records "
                f"{anchor['reviews']}: reviews were removed from its end, or this is an older copy; restore the newest "
                "backup, or move the anchor away if you restored an older copy on purpose")
        if anchor["reviews"] and (at_anchor is None or at_anchor[1] != anchor["head"]):
            raise ReviewLogTampered(
                f"the review log {self.path} does not match its anchor {name} at review {anchor['reviews']}: the log "
                "was rewritten outside B-Cir Review; restore it from a backup")

    def _write_anchor(self, state: LogState) -> None:
        """Record the log's count and head next to it (never moving it back: another process may be ahead)."""
        try:
            try:
                current = self._read_anchor()
            except ReviewLogTampered:
                current = None
            if current and current["log_id"] == state.log_id and current["reviews"] >= state.reviews:
                return
            atomic_write_json(self.anchor_path, {
                "about": "count and last hash of the review log next to it; B-Cir Review refuses a log that has "
                         "fewer reviews or another hash here (see README, Reviews)",
                "log_id": state.log_id, "reviews": state.reviews, "last_id": state.last_id, "head": state.head,
                "updated": _utc_now(),
            })
        except OSError as exc:  # the review itself is stored; only the tail's protection waits for the next write
            log.warning("review log anchor not written: %s", failure_reason(exc))

    def check(self) -> LogState:
        """Check the whole log again now (as at open), against its anchor too; raises :class:`ReviewLogTampered`."""
        with self._lock:
            anchor = self._read_anchor()
            state, at_anchor = _verify(self._conn, self.path, want=anchor["reviews"] if anchor else None)
            if anchor:
                self._check_anchor(anchor, state, at_anchor)
            self.state = state
        self._write_anchor(state)
        return state

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    def pragma(self, name: str):
        """The value of a PRAGMA on this store's connection (for checks and diagnostics)."""
        if not name.replace("_", "").isalpha():
            raise ValueError(f"not a pragma name: {name!r:.40}")
        with self._lock:
            return self._conn.execute(f"PRAGMA {name}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "ReviewStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ---------------------------------------------------------
    def record(self, review: Review) -> int:
        """Validate and append one review, with its chain entry, in one transaction; returns its id."""
        review = review.validated()
        created = _utc_now()
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if review.phase == "unblinded" and not self._own_read_pending(review):
                        raise ValueError(
                            "blinded protocol: record the reader's own read (verdict 'own') before the AI verdict"
                        )
                    last = conn.execute("SELECT n, hash FROM review_chain ORDER BY review_id DESC LIMIT 1").fetchone()
                    cur = conn.execute(
                        "INSERT INTO reviews (created, reader, patient_id, image_path, model_version,"
                        " ai_score_shown, ai_shown, verdict, birads, comment, blinded, phase)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            created, review.reader, review.patient_id, review.image_path, review.model_version,
                            review.ai_score_shown, int(review.ai_shown), review.verdict, review.birads,
                            review.comment, int(review.blinded), review.phase,
                        ),
                    )
                    new_id = int(cur.lastrowid)
                    row = conn.execute("SELECT * FROM reviews WHERE id = ?", (new_id,)).fetchone()  # as stored
                    n = (last["n"] if last else 0) + 1
                    head = _entry_hash(last["hash"] if last else _genesis(self.state.log_id), n, row)
                    conn.execute("INSERT INTO review_chain (review_id, n, hash) VALUES (?, ?, ?)", (new_id, n, head))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise ReviewLogError(f"the review was not recorded in {self.path}: {_one_line(exc)}") from exc
            self.state = replace(self.state, reviews=n, last_id=new_id, head=head)
            state = self.state
        self._write_anchor(state)
        log.info("review %d recorded (%s, %s)", new_id, review.verdict, review.phase)
        return new_id

    def _own_read_pending(self, review: Review) -> bool:
        """True when this reader's latest record for this patient/image is a blinded own read."""
        row = self._conn.execute(
            "SELECT verdict, phase FROM reviews WHERE patient_id = ? AND reader = ? AND image_path IS ?"
            " ORDER BY id DESC LIMIT 1",
            (review.patient_id, review.reader, review.image_path),
        ).fetchone()
        return row is not None and row["verdict"] == "own" and row["phase"] == "blinded"

    def blinded_session(
        self, reader: str, patient_id: str, image_path: str | None = None, model_version: str = ""
    ) -> "BlindedSession":
        return BlindedSession(self, reader, patient_id, image_path=image_path, model_version=model_version)

    # -- reading ---------------------------------------------------------
    def history(self, patient_id: str, reader: str | None = None) -> list[Review]:
        """Every review of this patient (by ``reader`` only, when given), oldest first."""
        sql, args = "SELECT * FROM reviews WHERE patient_id = ?", (patient_id,)
        if reader is not None:
            sql, args = sql + " AND reader = ?", args + (reader,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id ASC", args).fetchall()
        return [_row_to_review(r) for r in rows]

    def latest(self, patient_id: str, reader: str | None = None) -> Review | None:
        """The newest review of this patient (by this reader when given), or None."""
        sql = "SELECT * FROM reviews WHERE patient_id = ?"
        args: tuple = (patient_id,)
        if reader is not None:
            sql += " AND reader = ?"
            args += (reader,)
        with self._lock:
            row = self._conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return None if row is None else _row_to_review(row)

    def status(self, patient_id: str, reader: str | None = None) -> str:
        """'unread' (no review), 'disagreement' (latest verdict is disagree) or 'reviewed'; by ``reader`` only
        when given."""
        last = self.latest(patient_id, reader=reader)
        return "unread" if last is None else _status_of_verdict(last.verdict)

    def statuses(self, reader: str | None = None) -> dict[str, str]:
        """Status of every reviewed patient in one query (for filling a worklist); only ``reader``'s reviews
        when given (blinded reading must not show what the other readers said)."""
        where, args = ("WHERE reader = ?", (reader,)) if reader is not None else ("", ())
        with self._lock:
            rows = self._conn.execute(
                "SELECT r.patient_id, r.verdict FROM reviews r JOIN"
                f" (SELECT patient_id, max(id) AS id FROM reviews {where} GROUP BY patient_id) m ON r.id = m.id",
                args,
            ).fetchall()
        return {r[0]: _status_of_verdict(r[1]) for r in rows}

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM reviews").fetchone()[0]

    def all(self, reader: str | None = None) -> list[Review]:
        sql, args = ("SELECT * FROM reviews WHERE reader = ? ORDER BY id ASC", (reader,)) if reader is not None else \
            ("SELECT * FROM reviews ORDER BY id ASC", ())
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_row_to_review(r) for r in rows]

    # -- export ----------------------------------------------------------
    def export_csv(self, path: str | Path) -> int:
        """Write every review (header row, ids ascending) to ``path`` atomically; returns the row count."""
        reviews = self.all()
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for r in reviews:
            writer.writerow([
                r.id, r.created, r.reader, r.patient_id, r.image_path or "", r.model_version,
                "" if r.ai_score_shown is None else repr(float(r.ai_score_shown)),
                int(r.ai_shown), r.verdict, r.birads, r.comment, int(r.blinded), r.phase,
            ])
        atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
        log.info("exported %d reviews to CSV", len(reviews))
        return len(reviews)

    # -- backup ----------------------------------------------------------
    def backup(self, dest: str | Path) -> BackupResult:
        """A consistent copy of the whole log, WAL content included, by SQLite's online backup API, written
        atomically to ``dest`` (a folder, or a name ending in a slash: ``reviews-backup-<UTC time>.sqlite`` in it)
        and checked there. The copy
        is one self-contained file (rollback journal mode); copying ``reviews.sqlite`` alone is not a backup,
        since the latest reviews may still be in ``reviews.sqlite-wal``."""
        folder = isinstance(dest, str) and dest.endswith(("/", os.sep))
        dest = Path(dest)
        if folder or dest.is_dir():
            dest = dest / f"reviews-backup-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.sqlite"
        if dest.resolve() == self.path.resolve() or dest.resolve() == self.anchor_path.resolve():
            raise ValueError(f"a backup must go to another file than the review log itself ({self.path})")
        with self._lock, atomic_path(dest) as tmp:
            target = _connect(tmp)
            try:
                self._conn.backup(target)  # one step: the snapshot of one read transaction
                target.execute("PRAGMA journal_mode=DELETE")
                state, _ = _verify(target, self.path)
            finally:
                target.close()
        log.info("review log backed up: %d reviews", state.reviews)
        return BackupResult(dest, state.reviews, state.head)


class BlindedSession:
    """The blinded double-reading protocol for one reader and case (or image).

    1. :meth:`commit_own` stores the reader's own BI-RADS and comment without the AI;
    2. only then :attr:`ai_visible` turns True and the UI may reveal the AI;
    3. :meth:`commit_verdict` stores agree/disagree with the AI score as shown.

    Calling :meth:`commit_verdict` first raises ``ValueError`` (the store checks
    the database too, so a second session or a restart cannot skip step 1).
    """

    def __init__(self, store: ReviewStore, reader: str, patient_id: str,
                 image_path: str | None = None, model_version: str = ""):
        self.store = store
        self.reader = reader
        self.patient_id = patient_id
        self.image_path = image_path
        self.model_version = model_version
        self.own_id: int | None = None
        self.own_birads: str | None = None
        self.verdict_id: int | None = None

    @property
    def ai_visible(self) -> bool:
        return self.own_id is not None

    def commit_own(self, birads, comment: str = "") -> int:
        if self.own_id is not None:
            raise ValueError("the own read of this blinded session is already recorded")
        self.own_id = self.store.record(Review(
            reader=self.reader, patient_id=self.patient_id, image_path=self.image_path,
            model_version=self.model_version, verdict="own", birads=birads, comment=comment,
            ai_shown=False, ai_score_shown=None, blinded=True, phase="blinded",
        ))
        self.own_birads = normalize_birads(birads)
        return self.own_id

    def commit_verdict(self, verdict: str, ai_score_shown: float | None, birads=None, comment: str = "") -> int:
        if self.own_id is None:
            raise ValueError("blinded protocol: record the reader's own read before revealing the AI")
        if self.verdict_id is not None:
            raise ValueError("the AI verdict of this blinded session is already recorded")
        if verdict not in ("agree", "disagree"):
            raise ValueError(f"after the reveal the verdict must be 'agree' or 'disagree', not {str(verdict)!r:.40}")
        self.verdict_id = self.store.record(Review(
            reader=self.reader, patient_id=self.patient_id, image_path=self.image_path,
            model_version=self.model_version, verdict=verdict,
            birads=self.own_birads if birads is None else birads, comment=comment,
            ai_shown=True, ai_score_shown=ai_score_shown, blinded=True, phase="unblinded",
        ))
        return self.verdict_id


__all__ = [
    "BIRADS", "CSV_COLUMNS", "PHASES", "SCHEMA_VERSION", "STATUSES", "VERDICTS",
    "BackupResult", "BlindedSession", "LogState", "Review", "ReviewLogError", "ReviewLogTampered", "ReviewStore",
    "normalize_birads",
]
