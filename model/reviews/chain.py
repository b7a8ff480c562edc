"""The review log's hash chain: each review's entry hashes the one before with every column, and the whole
chain is checked in one read snapshot."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from model.errors import ReviewLogTampered
from model.reviews.records import REVIEW_COLUMNS


@dataclass(frozen=True)
class LogState:
    """What a check of the log found: the log's id, its review count, the last review's id and the head hash."""

    log_id: str
    reviews: int
    last_id: int | None
    head: str
    chain_migrated: dict | None = None  # {"at", "reviews", "from_schema"} when a log without the chain was chained


def genesis(log_id: str) -> str:
    """The hash before the first review of the log ``log_id``."""
    return hashlib.sha256(b"bcir-review-log\0" + log_id.encode("utf-8")).hexdigest()


def entry_hash(prev: str, n: int, row) -> str:
    """The chain hash of the n-th review ``row`` (a Row of ``reviews``) after the entry whose hash is ``prev``."""
    body = json.dumps([n, *(row[c] for c in REVIEW_COLUMNS)], ensure_ascii=True, separators=(",", ":"),
                      default=lambda v: {"blob": v.hex()} if isinstance(v, bytes) else repr(v))  # only a forger stores those
    return hashlib.sha256(f"{prev}\n{body}".encode("ascii")).hexdigest()


def chain_review(conn: sqlite3.Connection, log_id: str, review_id: int) -> tuple[int, str]:
    """Add the chain entry of the review just inserted as ``review_id`` (inside the caller's write transaction);
    returns its position and hash, the log's new head."""
    last = conn.execute("SELECT n, hash FROM review_chain ORDER BY review_id DESC LIMIT 1").fetchone()
    row = conn.execute("SELECT * FROM reviews WHERE id = ?", (review_id,)).fetchone()  # as stored
    n = (last["n"] if last else 0) + 1
    head = entry_hash(last["hash"] if last else genesis(log_id), n, row)
    conn.execute("INSERT INTO review_chain (review_id, n, hash) VALUES (?, ?, ?)", (review_id, n, head))
    return n, head


def verify_chain(conn: sqlite3.Connection, path: Path, *, want: int | None = None
                 ) -> tuple[LogState, tuple[int, str] | None]:
    """Check every review against the chain, oldest first. Returns the log's state and, when ``want`` is given,
    (review id, hash) of the want-th review (None when the log is shorter). Raises :class:`ReviewLogTampered`.

    Everything is read in one read transaction: a review that another connection records meanwhile is either
    wholly in this snapshot or not in it, never in one table and not yet in the other."""
    conn.execute("BEGIN")
    try:
        return _verify_snapshot(conn, path, want)
    finally:
        conn.execute("COMMIT")  # nothing was written: this only ends the snapshot


def _verify_snapshot(conn: sqlite3.Connection, path: Path, want: int | None) -> tuple[LogState, tuple[int, str] | None]:
    meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM log_meta")}
    log_id = meta.get("log_id")
    if not log_id:
        raise ReviewLogTampered(f"the review log {path} has no log id: it was changed outside B-Cir Review; "
                                "restore it from a backup")
    try:
        migrated = json.loads(meta["chain_migrated"]) if "chain_migrated" in meta else None
    except ValueError:
        migrated = {"note": "unreadable"}
    head, n, last_id, at_want = genesis(log_id), 0, None, None
    rows = conn.execute("SELECT r.*, c.n AS chain_n, c.hash AS chain_hash FROM reviews r"
                        " LEFT JOIN review_chain c ON c.review_id = r.id ORDER BY r.id")
    for row in rows:
        n += 1
        if row["chain_hash"] is None:
            raise ReviewLogTampered(f"review {row['id']} in the review log {path} has no entry in its hash chain: "
                                    "it was added outside B-Cir Review; restore the log from a backup")
        if row["chain_n"] != n or entry_hash(head, n, row) != row["chain_hash"]:
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
