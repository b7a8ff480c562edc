"""A schema-2 review log (before the protocol's state was kept in it) opens, gains the protocol's tables, and keeps
every review and chain entry as it was; a schema-3 log that lost one of them is refused."""

from __future__ import annotations

import sqlite3

import pytest

from model.errors import ReviewLogTampered
from model.reviews.records import Review
from model.reviews.store import ReviewStore

_BACK_TO_SCHEMA_2 = """
DROP TABLE seen_unblinded; DROP TABLE reading_mode;
DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (2);
PRAGMA user_version = 2;
"""


def _schema_2_log(path) -> list[tuple]:
    """A log as schema 2 wrote it (the tables, triggers and version marks of then), with three reviews."""
    with ReviewStore(path) as s:
        for i in range(3):
            s.record(Review(reader="dr_a", patient_id=f"P_{i}", verdict="agree", birads="2", ai_shown=True,
                            ai_score_shown=0.5))
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.executescript(_BACK_TO_SCHEMA_2)
        return _contents(raw)
    finally:
        raw.close()


def _contents(raw) -> list[tuple]:
    return [tuple(r) for table in ("reviews", "review_chain", "log_meta")
            for r in raw.execute(f"SELECT * FROM {table} ORDER BY 1")]


def test_a_schema_2_log_is_migrated_forward_and_nothing_recorded_is_rewritten(tmp_path):
    path = tmp_path / "reviews.sqlite"
    before = _schema_2_log(path)
    raw = sqlite3.connect(path)
    head = raw.execute("SELECT hash FROM review_chain ORDER BY n DESC LIMIT 1").fetchone()[0]
    raw.close()
    with ReviewStore(path) as s:  # opening it migrates it
        assert s.schema_version == 3 and s.state.reviews == 3 and s.state.head == head
        assert s.state.chain_migrated is None  # it had the chain: nothing was chained again
        assert not s.blinded_mode
        s.set_blinded_mode(True)
        s.mark_seen("dr_a", "P_9")
    raw = sqlite3.connect(path)
    try:
        assert _contents(raw) == before
        assert raw.execute("SELECT version FROM schema_version ORDER BY rowid").fetchall() == [(2,), (3,)]
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM seen_unblinded")
    finally:
        raw.close()


@pytest.mark.parametrize("table", ["seen_unblinded", "reading_mode"])
def test_a_protocol_table_dropped_from_a_schema_3_log_is_refused(tmp_path, table):
    path = tmp_path / "reviews.sqlite"
    ReviewStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"DROP TABLE {table}")
    raw.close()
    with pytest.raises(ReviewLogTampered, match=f"the {table} table is missing"):
        ReviewStore(path)
