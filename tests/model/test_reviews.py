"""Reader review store: durability settings, append-only history, blinded protocol, CSV export."""

from __future__ import annotations

import csv
import logging
import sqlite3
import threading

import pytest

from model.reviews import BIRADS, CSV_COLUMNS, Review, ReviewStore


def open_review(patient="P_00001", reader="dr_a", verdict="agree", birads="2", **kw) -> Review:
    kw.setdefault("ai_shown", verdict != "own")
    kw.setdefault("ai_score_shown", 0.42 if verdict != "own" else None)
    kw.setdefault("model_version", "bcir-1.0")
    return Review(reader=reader, patient_id=patient, verdict=verdict, birads=birads, **kw)


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(tmp_path / "reviews.sqlite")
    yield s
    s.close()


def test_default_path_is_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "data"))
    with ReviewStore() as s:
        assert s.path == tmp_path / "data" / "reviews.sqlite"
    assert (tmp_path / "data" / "reviews.sqlite").exists()


def test_wal_synchronous_full_and_schema_version(store):
    assert store.pragma("journal_mode").lower() == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.schema_version == 1
    # a separate connection sees the database file itself in WAL mode
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    finally:
        raw.close()


def test_record_persists_across_reopen(tmp_path):
    path = tmp_path / "reviews.sqlite"
    with ReviewStore(path) as s:
        rid = s.record(open_review(comment="calcs, benign looking", image_path="/d/P_00001_LEFT_CC.dcm"))
        s.record(open_review(patient="P_00002", verdict="disagree", birads="4b"))
    with ReviewStore(path) as s:
        (r,) = s.history("P_00001")
        assert r.id == rid
        assert (r.reader, r.verdict, r.birads, r.comment) == ("dr_a", "agree", "2", "calcs, benign looking")
        assert r.image_path == "/d/P_00001_LEFT_CC.dcm"
        assert r.model_version == "bcir-1.0" and r.ai_score_shown == pytest.approx(0.42)
        assert r.ai_shown is True and r.blinded is False and r.phase == "open"
        assert r.created.endswith("+00:00")  # UTC ISO
        assert s.latest("P_00002").birads == "4B"  # normalised
        assert s.count() == 2


def test_update_and_delete_refused_by_database(store):
    store.record(open_review())
    raw = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE reviews SET verdict = 'disagree'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM reviews")
        raw.rollback()
        assert raw.execute("SELECT verdict, count(*) FROM reviews").fetchone() == ("agree", 1)
    finally:
        raw.close()
    assert store.latest("P_00001").verdict == "agree"


def test_history_oldest_first_and_latest(store):
    ids = [store.record(open_review(reader=r, birads=b)) for r, b in [("dr_a", "1"), ("dr_b", "3"), ("dr_a", "4A")]]
    store.record(open_review(patient="OTHER"))
    hist = store.history("P_00001")
    assert [r.id for r in hist] == ids
    assert [r.birads for r in hist] == ["1", "3", "4A"]
    assert store.latest("P_00001").id == ids[2]
    assert store.latest("P_00001", reader="dr_b").id == ids[1]
    assert store.latest("P_00001", reader="nobody") is None
    assert store.latest("NOPE") is None
    assert store.history("NOPE") == []


def test_status_transitions(store):
    assert store.status("P_00001") == "unread"
    store.record(open_review(verdict="agree"))
    assert store.status("P_00001") == "reviewed"
    store.record(open_review(verdict="disagree", reader="dr_b", birads="4C"))
    assert store.status("P_00001") == "disagreement"
    store.record(open_review(verdict="agree", reader="dr_c"))
    assert store.status("P_00001") == "reviewed"
    assert store.statuses() == {"P_00001": "reviewed"}
    assert len(store.history("P_00001")) == 3  # nothing overwritten


def test_blinded_protocol(store):
    session = store.blinded_session("dr_a", "P_00007", model_version="bcir-1.0")
    assert not session.ai_visible
    with pytest.raises(ValueError, match="own read"):
        session.commit_verdict("agree", 0.9)
    assert store.history("P_00007") == []

    own_id = session.commit_own("4a", "spiculated mass, upper outer")
    assert session.ai_visible
    verdict_id = session.commit_verdict("disagree", 0.13, comment="AI misses the mass")
    own, revealed = store.history("P_00007")
    assert (own.id, revealed.id) == (own_id, verdict_id)
    assert (own.verdict, own.ai_shown, own.ai_score_shown, own.phase, own.blinded) == ("own", False, None, "blinded", True)
    assert own.birads == "4A" and own.comment == "spiculated mass, upper outer"
    assert (revealed.verdict, revealed.ai_shown, revealed.phase, revealed.blinded) == ("disagree", True, "unblinded", True)
    assert revealed.ai_score_shown == pytest.approx(0.13)
    assert revealed.birads == "4A"  # defaults to the own read
    assert store.status("P_00007") == "disagreement"
    with pytest.raises(ValueError):
        session.commit_verdict("agree", 0.13)  # one verdict per session


def test_blinded_order_enforced_by_store(store):
    # bypassing the session helper does not skip the own read either
    unblinded = open_review(patient="P_00008", blinded=True, phase="unblinded")
    with pytest.raises(ValueError, match="own read"):
        store.record(unblinded)
    # an own read by another reader does not unlock this reader's verdict
    store.record(open_review(patient="P_00008", reader="dr_b", verdict="own", blinded=True, phase="blinded"))
    with pytest.raises(ValueError, match="own read"):
        store.record(unblinded)
    store.record(open_review(patient="P_00008", verdict="own", blinded=True, phase="blinded"))
    store.record(unblinded)
    with pytest.raises(ValueError, match="own read"):
        store.record(unblinded)  # the own read is used up
    assert [r.verdict for r in store.history("P_00008")] == ["own", "own", "agree"]


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(birads="7"), "BI-RADS"),
        (dict(birads="4"), "BI-RADS"),
        (dict(birads=""), "BI-RADS"),
        (dict(verdict="maybe"), "verdict"),
        (dict(phase="later"), "phase"),
        (dict(reader=" "), "reader"),
        (dict(patient=""), "patient"),
        (dict(ai_score_shown=1.5), "AI score"),
        (dict(ai_shown=False), "ai_shown"),
        (dict(verdict="own", ai_shown=True, blinded=True, phase="blinded"), "own"),
        (dict(verdict="own"), "blinded"),
        (dict(phase="blinded", blinded=True), "blinded"),
    ],
)
def test_invalid_reviews_rejected(store, kw, msg):
    with pytest.raises(ValueError, match=msg) as info:
        store.record(open_review(**kw))
    assert "\n" not in str(info.value)
    assert store.count() == 0


def test_all_birads_accepted(store):
    for b in BIRADS:
        store.record(open_review(birads=b.lower()))
    assert [r.birads for r in store.history("P_00001")] == list(BIRADS)


def test_export_csv_round_trip(store, tmp_path):
    store.record(open_review(comment='line one\nline "two", with comma'))
    session = store.blinded_session("dr_b", "P_00002", image_path="/d/x.dcm")
    session.commit_own("0")
    session.commit_verdict("agree", 0.875)
    out = tmp_path / "export" / "reviews.csv"
    assert store.export_csv(out) == 3
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    expected = store.all()
    assert [int(r["id"]) for r in body] == sorted(r.id for r in expected)
    for row, rev in zip(body, expected):
        assert row["created"] == rev.created
        assert row["reader"] == rev.reader and row["patient_id"] == rev.patient_id
        assert row["image_path"] == (rev.image_path or "")
        assert row["verdict"] == rev.verdict and row["birads"] == rev.birads
        assert row["comment"] == rev.comment
        assert row["ai_shown"] == str(int(rev.ai_shown)) and row["blinded"] == str(int(rev.blinded))
        assert row["phase"] == rev.phase and row["model_version"] == rev.model_version
        if rev.ai_score_shown is None:
            assert row["ai_score_shown"] == ""
        else:
            assert float(row["ai_score_shown"]) == rev.ai_score_shown
    assert body[0]["comment"] == 'line one\nline "two", with comma'
    assert sorted(p.name for p in out.parent.iterdir()) == ["reviews.csv"]  # no temp files left
    # re-export over the old file: still atomic, still no leftovers
    store.record(open_review(patient="P_00003"))
    assert store.export_csv(out) == 4
    assert sorted(p.name for p in out.parent.iterdir()) == ["reviews.csv"]


def test_concurrent_writes_from_threads_all_land(tmp_path):
    path = tmp_path / "reviews.sqlite"
    errors: list[BaseException] = []
    with ReviewStore(path) as s:
        start = threading.Barrier(2)

        def writer(name: str) -> None:
            try:
                start.wait()
                for i in range(50):
                    s.record(open_review(patient=f"{name}_{i:02d}", reader=name, birads=BIRADS[i % len(BIRADS)]))
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n,)) for n in ("dr_a", "dr_b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    with ReviewStore(path) as s:
        assert s.count() == 100
        ids = [r.id for r in s.all()]
        assert len(set(ids)) == 100
        for name in ("dr_a", "dr_b"):
            assert all(len(s.history(f"{name}_{i:02d}")) == 1 for i in range(50))


def test_no_patient_ids_in_logs(store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    session = store.blinded_session("dr_a", "SECRET_PATIENT_123")
    session.commit_own("3", "note")
    session.commit_verdict("agree", 0.5)
    store.export_csv(tmp_path / "out.csv")
    with pytest.raises(ValueError) as info:
        store.record(open_review(patient="SECRET_PATIENT_123", birads="9"))
    assert caplog.records  # something was logged
    assert "SECRET_PATIENT_123" not in caplog.text
    assert "SECRET_PATIENT_123" not in str(info.value)


def test_one_readers_view_of_the_log(store):
    """Blinded reading shows a reader only their own reviews: statuses, history and the list."""
    store.record(open_review(patient="P_1", reader="dr_a", verdict="disagree", birads="5"))
    store.record(open_review(patient="P_1", reader="dr_b", verdict="agree"))
    store.record(open_review(patient="P_2", reader="dr_b", verdict="agree"))
    assert store.statuses() == {"P_1": "reviewed", "P_2": "reviewed"}
    assert store.statuses(reader="dr_a") == {"P_1": "disagreement"}
    assert store.statuses(reader="dr_c") == {}
    assert [r.reader for r in store.history("P_1", reader="dr_b")] == ["dr_b"]
    assert [r.patient_id for r in store.all(reader="dr_b")] == ["P_1", "P_2"] and len(store.all()) == 3
