"""Reader reviews (double reading): an append-only SQLite log, and the blinded-reading protocol's state.

One file, ``user_data_dir()/reviews.sqlite`` unless a path is given, in WAL
mode with ``synchronous=FULL``; every write is one transaction. Rows are never
updated or deleted: triggers in the database itself refuse UPDATE, DELETE and
an INSERT on an existing id (``INSERT OR REPLACE`` / ``REPLACE INTO``, which
SQLite would otherwise carry out as a delete that fires no DELETE trigger), so
a correction is a new record and the history stays whole (:mod:`.schema`).

Tamper evidence (what someone with the file can do is said in the README):

* every review has an entry in ``review_chain``: its position and the SHA-256
  of the previous entry's hash with the review's every column (:mod:`.chain`).
  The whole chain is checked when the store opens; an edited, inserted,
  reordered or removed review raises :class:`ReviewLogTampered`. A log written
  before the chain existed is chained once, in one transaction, and
  ``log_meta`` says when and how many reviews were chained then
  (``chain_migrated``).
* the anchor, ``reviews.sqlite.anchor.json`` next to the log (:mod:`.anchor`),
  holds the log's id, its count and its head hash after each record. A log
  with fewer reviews than its anchor, another head at the anchor's count,
  another id, or missing altogether raises :class:`ReviewLogTampered`.
* a database that was a review log (``PRAGMA user_version``, its other tables)
  but has lost its ``reviews`` table, and an empty (zero-byte) file, are refused
  instead of being started again as an empty log. A new log is written whole
  under a temporary name and linked into place, so an empty file at the path
  is never one this module left behind.

Everything that stops the store from opening is a :class:`ReviewLogError`
(a :class:`~model.errors.BcirError`) with one line that names the file.

Every record is checked against the blinded-reading protocol
(:mod:`.protocol`) in the transaction that writes it; the protocol's state
that outlives a session (the reading mode, the cases each reader has seen
unblinded) is kept in the log too, append-only. A record the protocol or the
fields do not allow raises :class:`ReviewRefused`, one line.

No patient identifiers are logged; log lines carry record ids only.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

from model.errors import ReviewLogError, ReviewLogTampered, ReviewRefused, failure_reason
from model.fileio import user_data_dir
from model.reviews.anchor import Anchor
from model.reviews.backup import BackupResult, backup_target, write_backup
from model.reviews.chain import LogState, chain_review, verify_chain
from model.reviews.protocol import BlindedSession, CaseState, check_record
from model.reviews.records import Review, status_of_verdict
from model.reviews.schema import SCHEMA_VERSION, connect, create_log, open_schema, utc_now

log = logging.getLogger(__name__)

DB_NAME = "reviews.sqlite"


def _one_line(text) -> str:
    return " ".join(str(text).split())


class ReviewStore:
    """The review log. One connection per store, shared between threads under a lock.

    Opening checks the whole log (see the module's docstring) and raises :class:`ReviewLogError`, or
    :class:`ReviewLogTampered`, with one line that names the file. ``create=False`` refuses to start a new log
    where there is none (for commands that only check or copy one).
    """

    def __init__(self, path: str | Path | None = None, *, create: bool = True):
        self.path = Path(path) if path is not None else user_data_dir() / DB_NAME
        self.anchor = Anchor(self.path)
        self.anchor_path = self.anchor.path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._prepare_file(create)
            self._conn = connect(self.path)
            open_schema(self._conn, self.path)
            self.state, recorded = self._check_log()
            self._check_writable()
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
            if isinstance(exc, sqlite3.Error):
                raise ReviewLogError(self._cannot_open(exc)) from exc
            if isinstance(exc, OSError):
                raise ReviewLogError(f"cannot open the review log {self.path}: {failure_reason(exc)}") from exc
            raise
        self.anchor.advance(self.state, known=recorded)

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
        recorded = self.anchor.read()
        if recorded and recorded["reviews"] > 0:
            raise ReviewLogTampered(
                f"the review log {self.path} is missing, but its anchor {self.anchor_path.name} records "
                f"{recorded['reviews']} reviews: restore the log from a backup, or move the anchor away to start a "
                "new, empty log")
        if not create:
            raise ReviewLogError(f"there is no review log at {self.path}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReviewLogError(f"cannot create the folder of the review log {self.path}: {failure_reason(exc)}") from exc
        create_log(self.path)

    def _check_writable(self) -> None:
        """A log file without write permission reads fine and would fail at the first review: try now."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def check(self) -> LogState:
        """Check the whole log again now (as at open), against its anchor too; raises :class:`ReviewLogTampered`."""
        state, recorded = self._check_log()
        self.anchor.advance(state, known=recorded)
        return state

    def _check_log(self) -> tuple[LogState, dict | None]:
        """The whole chain and the anchor: the state found and the anchor as read.

        The anchor is read first, then every review in one snapshot: a review another process records in between
        only puts the log ahead of the anchor read, which is allowed."""
        with self._lock:
            recorded = self.anchor.read()
            state, at_recorded = verify_chain(self._conn, self.path, want=recorded["reviews"] if recorded else None)
            if recorded:
                self.anchor.check(recorded, state, at_recorded)
            self.state = state
        return state, recorded

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    def pragma(self, name: str):
        """The value of a PRAGMA on this store's connection (for checks and diagnostics)."""
        if not name.replace("_", "").isalpha():  # a caller's bug (the name is code's, not a reader's): no SQL in it
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

    def _write(self, what: str, step) -> object:
        """Run ``step(conn)`` in one write transaction under the lock; a database error is a
        :class:`ReviewLogError` that says ``what`` was not stored."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = step(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise ReviewLogError(f"{what} was not recorded in {self.path}: {_one_line(exc)}") from exc
            return result

    # -- writing ---------------------------------------------------------
    def record(self, review: Review, *, ai_complete: bool = True) -> int:
        """Validate and append one review, with its chain entry, in one transaction; returns its id.

        The protocol (:func:`model.reviews.protocol.check_record`) is checked against the log in the same
        transaction; ``ai_complete``: the AI had answered for every view of the case when the reader judged it.
        A review the fields or the protocol do not allow raises :class:`ReviewRefused`."""
        review = review.validated()
        created = utc_now()

        def append(conn: sqlite3.Connection) -> tuple[int, int, str]:
            check_record(review, self._case_state(review.reader, review.patient_id, review.image_path),
                         ai_complete=ai_complete)
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
            return (new_id, *chain_review(conn, self.state.log_id, new_id))

        with self._lock:
            new_id, n, head = self._write("the review", append)
            self.state = replace(self.state, reviews=n, last_id=new_id, head=head)
            state = self.state
        self.anchor.advance(state)
        log.info("review %d recorded (%s, %s)", new_id, review.verdict, review.phase)
        return new_id

    def blinded_session(
        self, reader: str, patient_id: str, image_path: str | None = None, model_version: str = ""
    ) -> BlindedSession:
        return BlindedSession(self, reader, patient_id, image_path=image_path, model_version=model_version)

    # -- the protocol's state ----------------------------------------------
    @property
    def blinded_mode(self) -> bool:
        """Blinded reading is on (the newest mode recorded; open reading when none was)."""
        with self._lock:
            row = self._conn.execute("SELECT blinded FROM reading_mode ORDER BY id DESC LIMIT 1").fetchone()
        return bool(row and row["blinded"])

    def set_blinded_mode(self, on: bool) -> None:
        """Record the reading mode (a new row, when it changes)."""
        def append(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT blinded FROM reading_mode ORDER BY id DESC LIMIT 1").fetchone()
            if bool(row and row["blinded"]) != bool(on):
                conn.execute("INSERT INTO reading_mode (changed, blinded) VALUES (?, ?)", (utc_now(), int(bool(on))))

        self._write("the reading mode", append)
        log.info("reading mode: %s", "blinded" if on else "open")

    def mark_seen(self, reader: str, patient_id: str) -> None:
        """``reader`` ('' before a name is typed: everyone) has seen the case with the AI and the truth on screen:
        they cannot read it blind any more. Kept for good; marking it again changes nothing."""
        reader = reader.strip()
        if self._seen(reader, patient_id, exact=True):
            return

        def append(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO seen_unblinded (reader, patient_id, seen) SELECT ?, ?, ? WHERE NOT EXISTS"
                         " (SELECT 1 FROM seen_unblinded WHERE reader = ? AND patient_id = ?)",
                         (reader, patient_id, utc_now(), reader, patient_id))

        self._write("that the case was seen unblinded", append)

    def seen_unblinded(self, reader: str, patient_id: str) -> bool:
        """Seen unblinded by this reader, or at this workstation before any name was typed."""
        return self._seen(reader.strip(), patient_id, exact=False)

    def _seen(self, reader: str, patient_id: str, *, exact: bool) -> bool:
        readers = (reader,) if exact else (reader, "")
        with self._lock:
            return self._conn.execute(
                f"SELECT 1 FROM seen_unblinded WHERE patient_id = ? AND reader IN ({', '.join('?' * len(readers))})",
                (patient_id, *readers),
            ).fetchone() is not None

    def case_state(self, reader: str, patient_id: str, image_path: str | None = None) -> CaseState:
        """What the log says about this reader and case (or image): the mode, their newest review of it, and
        whether they have seen it unblinded; its ``phase`` is what the reader may see and record now."""
        with self._lock:
            return self._case_state(reader.strip(), patient_id, image_path)

    def _case_state(self, reader: str, patient_id: str, image_path: str | None) -> CaseState:
        row = self._conn.execute(
            "SELECT * FROM reviews WHERE patient_id = ? AND reader = ? AND image_path IS ? ORDER BY id DESC LIMIT 1",
            (patient_id, reader, image_path),
        ).fetchone()
        return CaseState(self.blinded_mode, None if row is None else Review.from_row(row),
                         self.seen_unblinded(reader, patient_id))

    def adopt_protocol_state(self, *, blinded: bool | None, seen: set[tuple[str, str]]) -> None:
        """Take over what an older version kept outside the log, in one transaction: the reading mode (only when the
        log has none yet) and the (reader, patient ID) pairs seen unblinded."""
        def append(conn: sqlite3.Connection) -> None:
            has_mode = conn.execute("SELECT 1 FROM reading_mode LIMIT 1").fetchone() is not None
            if blinded is not None and not has_mode:
                conn.execute("INSERT INTO reading_mode (changed, blinded) VALUES (?, ?)", (utc_now(), int(blinded)))
            for reader, patient_id in sorted(seen):
                conn.execute("INSERT INTO seen_unblinded (reader, patient_id, seen) SELECT ?, ?, ? WHERE NOT EXISTS"
                             " (SELECT 1 FROM seen_unblinded WHERE reader = ? AND patient_id = ?)",
                             (reader.strip(), patient_id, utc_now(), reader.strip(), patient_id))

        self._write("the reading mode and the cases seen unblinded", append)
        log.info("review log: took over the reading mode and %d cases seen unblinded from the settings", len(seen))

    # -- reading ---------------------------------------------------------
    def history(self, patient_id: str, reader: str | None = None) -> list[Review]:
        """Every review of this patient (by ``reader`` only, when given), oldest first."""
        sql, args = "SELECT * FROM reviews WHERE patient_id = ?", (patient_id,)
        if reader is not None:
            sql, args = sql + " AND reader = ?", args + (reader,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id ASC", args).fetchall()
        return [Review.from_row(r) for r in rows]

    def latest(self, patient_id: str, reader: str | None = None) -> Review | None:
        """The newest review of this patient (by this reader when given), or None."""
        sql = "SELECT * FROM reviews WHERE patient_id = ?"
        args: tuple = (patient_id,)
        if reader is not None:
            sql += " AND reader = ?"
            args += (reader,)
        with self._lock:
            row = self._conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return None if row is None else Review.from_row(row)

    def status(self, patient_id: str, reader: str | None = None) -> str:
        """'unread' (no review), 'disagreement' (latest verdict is disagree) or 'reviewed'; by ``reader`` only
        when given."""
        last = self.latest(patient_id, reader=reader)
        return "unread" if last is None else status_of_verdict(last.verdict)

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
        return {r[0]: status_of_verdict(r[1]) for r in rows}

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM reviews").fetchone()[0]

    def all(self, reader: str | None = None) -> list[Review]:
        sql, args = ("SELECT * FROM reviews WHERE reader = ? ORDER BY id ASC", (reader,)) if reader is not None else \
            ("SELECT * FROM reviews ORDER BY id ASC", ())
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Review.from_row(r) for r in rows]

    # -- backup ----------------------------------------------------------
    def backup(self, dest: str | Path) -> BackupResult:
        """A consistent copy of the whole log, WAL content included, by SQLite's online backup API, written
        atomically to ``dest`` (a folder, or a name ending in a slash: ``reviews-backup-<UTC time>.sqlite`` in it)
        and checked there (:mod:`.backup`). ReviewRefused when ``dest`` is the log or its anchor."""
        dest = backup_target(dest)
        if dest.resolve() == self.path.resolve() or dest.resolve() == self.anchor_path.resolve():
            raise ReviewRefused(f"a backup must go to another file than the review log itself ({self.path})")
        with self._lock:
            return write_backup(self._conn, self.path, dest)
