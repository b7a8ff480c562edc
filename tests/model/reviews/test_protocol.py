"""The blinded-reading protocol: its phases and what the reader may see (pure rules), and the store refusing every
record the protocol does not allow, whichever client makes it."""

from __future__ import annotations

import sqlite3

import pytest

from model.errors import BcirError, ReviewRefused
from model.reviews.protocol import (AI_INCOMPLETE, BLIND, NO_AI_RESULT, NO_CASE, OPEN, OWN_READ_FIRST, REVEALED,
                                    CaseState, check_verdict, hides_ai_and_truth, own_read, shows_unblinded,
                                    verdict_on_ai, visible_reader)
from model.reviews.records import Review
from model.reviews.store import ReviewStore


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(tmp_path / "reviews.sqlite")
    yield s
    s.close()


def agree(reader="dr_a", patient="P_1", phase=OPEN, score=0.4) -> Review:
    return verdict_on_ai(phase, reader, patient, "agree", "2", ai_score_shown=score, model_version="m")


def own(reader="dr_a", patient="P_1") -> Review:
    return own_read(reader, patient, "3", "note")


# -- the rules themselves ----------------------------------------------------------------------------------------

def test_the_phase_of_a_case_for_a_reader():
    own_pending = own().validated()
    answered = agree(phase=REVEALED).validated()
    assert CaseState(False).phase == OPEN  # open reading: always open
    assert CaseState(False, own_pending).phase == OPEN
    assert CaseState(True).phase == BLIND  # never seen, never read: blind
    assert CaseState(True, seen_unblinded=True).phase == OPEN  # seen unblinded: cannot be read blind
    assert CaseState(True, own_pending).phase == REVEALED and CaseState(True, own_pending).own_read_pending
    assert CaseState(True, answered).phase == OPEN and not CaseState(True, answered).own_read_pending


def test_what_the_reader_may_see():
    assert hides_ai_and_truth(BLIND, True)
    assert hides_ai_and_truth(NO_CASE, True)  # between cases in blinded reading: the last case must not show through
    assert not hides_ai_and_truth(NO_CASE, False)
    assert not any(hides_ai_and_truth(p, True) for p in (OPEN, REVEALED))
    assert [p for p in (NO_CASE, OPEN, BLIND, REVEALED) if shows_unblinded(p)] == [OPEN, REVEALED]
    assert visible_reader(" Dr A ", True) == "Dr A" and visible_reader("", True) == ""  # no name: no reviews
    assert visible_reader("Dr A", False) is None  # open reading: everyone's


@pytest.mark.parametrize("phase, score, complete, reason", [
    (NO_CASE, 0.5, True, "No case to review."),
    (BLIND, 0.5, True, OWN_READ_FIRST),
    (OPEN, None, True, NO_AI_RESULT),
    (REVEALED, 0.5, False, AI_INCOMPLETE),
])
def test_an_agree_or_disagree_needs_a_visible_and_complete_ai_result(phase, score, complete, reason):
    with pytest.raises(ReviewRefused) as info:
        check_verdict(phase, score, complete)
    assert str(info.value) == reason
    check_verdict(OPEN, 0.5, True)
    check_verdict(REVEALED, 0.0, True)


# -- the store enforces them ---------------------------------------------------------------------------------------

def refused(store, review, match, **kw) -> str:
    before = store.count()
    with pytest.raises(ReviewRefused, match=match) as info:
        store.record(review, **kw)
    assert store.count() == before
    text = str(info.value)
    assert isinstance(info.value, BcirError) and not isinstance(info.value, ValueError)  # one tree of typed errors
    assert "\n" not in text and "P_1" not in text
    return text


def test_an_own_read_of_a_case_seen_unblinded_is_refused(store):
    store.mark_seen("dr_a", "P_1")
    assert "seen this case unblinded" in refused(store, own(), "blinded reading")
    store.record(own(reader="dr_b"))  # another reader has not seen it
    store.mark_seen("", "P_2")  # seen at this workstation before a name was typed: by everyone
    refused(store, own(patient="P_2"), "blinded reading")
    refused(store, own(reader="dr_b", patient="P_2"), "blinded reading")


def test_an_own_read_comes_before_any_other_review_of_the_reader(store):
    store.record(agree())
    refused(store, own(), "blinded reading")
    store.record(own(reader="dr_b"))
    refused(store, own(reader="dr_b"), "blinded reading")  # one own read per case


def test_in_blinded_reading_an_open_verdict_waits_for_the_own_read(store):
    store.set_blinded_mode(True)
    assert refused(store, agree(), "own read") == OWN_READ_FIRST
    store.mark_seen("dr_a", "P_1")  # the reader saw the case open: open reviews of it are allowed
    store.record(agree())
    store.record(own(patient="P_2"))
    store.record(agree(patient="P_2"))  # after the own read, an open amendment is allowed too
    store.set_blinded_mode(False)
    store.record(agree(patient="P_3"))  # open reading: the AI is on screen


def test_an_agree_or_disagree_needs_the_whole_ai_result(store):
    assert refused(store, agree(score=None), "no result") == NO_AI_RESULT
    assert refused(store, agree(), "every view", ai_complete=False) == AI_INCOMPLETE
    session = store.blinded_session("dr_a", "P_1")
    session.commit_own("2")
    with pytest.raises(ReviewRefused, match="every view"):
        session.commit_verdict("agree", 0.3, ai_complete=False)
    session.commit_verdict("agree", 0.3)
    assert [r.verdict for r in store.history("P_1")] == ["own", "agree"]


def test_the_protocol_state_is_in_the_log_and_survives_a_restart(tmp_path):
    path = tmp_path / "reviews.sqlite"
    with ReviewStore(path) as s:
        assert not s.blinded_mode and not s.seen_unblinded("dr_a", "P_1")
        s.set_blinded_mode(True)
        s.mark_seen("dr_a", "P_1")
        s.mark_seen("dr_a", "P_1")  # again: nothing changes
        assert s.case_state("dr_a", "P_1").phase == OPEN and s.case_state("dr_b", "P_1").phase == BLIND
    with ReviewStore(path) as s:
        assert s.blinded_mode and s.seen_unblinded("dr_a", "P_1") and not s.seen_unblinded("dr_b", "P_1")
        s.set_blinded_mode(False)
        s.set_blinded_mode(False)  # no change: no row
    raw = sqlite3.connect(path)
    try:
        assert [r[0] for r in raw.execute("SELECT blinded FROM reading_mode ORDER BY id")] == [1, 0]
        assert raw.execute("SELECT reader, patient_id FROM seen_unblinded").fetchall() == [("dr_a", "P_1")]
        for sql in ("UPDATE reading_mode SET blinded = 1", "DELETE FROM seen_unblinded",
                    "INSERT OR REPLACE INTO seen_unblinded (reader, patient_id, seen) VALUES ('dr_a', 'P_1', 'x')"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(sql)
    finally:
        raw.close()


def test_state_an_older_version_kept_in_the_settings_is_taken_over_once(store):
    store.adopt_protocol_state(blinded=True, seen={("dr_a", "P_1"), ("", "P_2")})
    assert store.blinded_mode and store.seen_unblinded("dr_a", "P_1") and store.seen_unblinded("dr_b", "P_2")
    store.set_blinded_mode(False)
    store.adopt_protocol_state(blinded=True, seen={("dr_a", "P_1")})  # the log's own mode wins; no duplicates
    assert not store.blinded_mode
