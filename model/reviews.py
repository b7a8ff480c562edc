"""Reader reviews (double reading): an append-only SQLite log.

One file, ``user_data_dir()/reviews.sqlite`` unless a path is given, in WAL
mode with ``synchronous=FULL``; every write is one transaction. Rows are never
updated or deleted: triggers in the database itself refuse UPDATE and DELETE
on ``reviews``, so a correction is a new record and the history stays whole.

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
import io
import logging
import math
import sqlite3
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from model.fileio import atomic_write_bytes, user_data_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_NAME = "reviews.sqlite"

BIRADS = ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6")
VERDICTS = ("agree", "disagree", "own")
PHASES = ("blinded", "unblinded", "open")
STATUSES = ("unread", "reviewed", "disagreement")

CSV_COLUMNS = (
    "id", "created", "reader", "patient_id", "image_path", "model_version",
    "ai_score_shown", "ai_shown", "verdict", "birads", "comment", "blinded", "phase",
)

_SCHEMA = f"""
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
CREATE TRIGGER IF NOT EXISTS reviews_no_update BEFORE UPDATE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: UPDATE refused');
END;
CREATE TRIGGER IF NOT EXISTS reviews_no_delete BEFORE DELETE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: DELETE refused');
END;
"""


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


class ReviewStore:
    """The review log. One connection per store, shared between threads under a lock."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else user_data_dir() / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
        try:
            self._conn.row_factory = sqlite3.Row
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ValueError(f"review database could not switch to WAL mode (got {mode})")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle -------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            self._conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            with self._conn:
                row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
                version = row[0]
                if version is None:
                    self._conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                elif version > SCHEMA_VERSION:
                    raise ValueError(
                        f"review database schema {version} is newer than this app understands ({SCHEMA_VERSION})"
                    )

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
        """Validate and append one review in its own transaction; returns its id."""
        review = review.validated()
        created = _utc_now()
        with self._lock:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                if review.phase == "unblinded" and not self._own_read_pending(review):
                    raise ValueError(
                        "blinded protocol: record the reader's own read (verdict 'own') before the AI verdict"
                    )
                cur = self._conn.execute(
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
    "BlindedSession", "Review", "ReviewStore", "normalize_birads",
]
