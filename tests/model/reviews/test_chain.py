"""Checking the hash chain while other processes record: one snapshot, so a good log is never called tampered;
the anchor is read once when a log opens."""

from __future__ import annotations

import pathlib

from model.reviews.records import Review
from model.reviews.store import ReviewStore


def review(i: int) -> Review:
    return Review(reader="dr_a", patient_id=f"P_{i}", verdict="agree", birads="2", ai_shown=True, ai_score_shown=0.5)


def test_a_review_recorded_while_the_chain_is_checked_is_not_tampering(tmp_path):
    """Another process records between the statements the check runs: the check reads one snapshot, so the new
    review is wholly in it or wholly not (it was read as reviews without chain entries, or the reverse)."""
    path = tmp_path / "reviews.sqlite"
    with ReviewStore(path) as checker, ReviewStore(path) as writer:
        for i in range(3):
            writer.record(review(i))
        written: list[int] = []

        def record_in_between(sql: str) -> None:  # SQLite calls this as each of the checker's statements starts
            if sql.lstrip().upper().startswith("SELECT") and len(written) < 10:
                written.append(writer.record(review(100 + len(written))))

        checker._conn.set_trace_callback(record_in_between)
        try:
            state = checker.check()
        finally:
            checker._conn.set_trace_callback(None)
        assert len(written) >= 2, "the other process recorded between the check's statements"
        assert 3 <= state.reviews <= 3 + len(written)
    with ReviewStore(path) as s:  # and the log and its anchor are whole after it all
        assert s.count() == s.state.reviews == 3 + len(written)


def test_the_anchor_is_read_once_when_a_log_opens(tmp_path, monkeypatch):
    path = tmp_path / "reviews.sqlite"
    with ReviewStore(path) as s:
        s.record(review(1))
    reads: list[str] = []
    real_read_text = pathlib.Path.read_text

    def counting(self, *args, **kwargs):
        if self.name.endswith(".anchor.json"):
            reads.append(self.name)
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", counting)
    with ReviewStore(path) as s:
        assert s.state.reviews == 1
    assert reads == ["reviews.sqlite.anchor.json"]
    reads.clear()
    with ReviewStore(path) as s:
        s.check()
    assert len(reads) == 2  # at open, and at the check asked for: each reads it once
