"""Reader review store: durability settings, append-only history, blinded protocol, CSV export."""

from __future__ import annotations

import csv
import logging
import sqlite3
import threading

import pytest

from model.errors import ReviewLogError, ReviewLogTampered, ReviewRefused
from model.reviews.export import CSV_COLUMNS, export_csv
from model.reviews.records import BIRADS, Review
from model.reviews.schema import SCHEMA_VERSION
from model.reviews.store import ReviewStore


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
    assert store.schema_version == SCHEMA_VERSION == 3
    # a separate connection sees the database file itself in WAL mode
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
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
    with pytest.raises(ReviewRefused, match="own read"):
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
    with pytest.raises(ReviewRefused, match="already recorded"):
        session.commit_verdict("agree", 0.13)  # one verdict per session


def test_blinded_order_enforced_by_store(store):
    # bypassing the session helper does not skip the own read either
    unblinded = open_review(patient="P_00008", blinded=True, phase="unblinded")
    with pytest.raises(ReviewRefused, match="own read"):
        store.record(unblinded)
    # an own read by another reader does not unlock this reader's verdict
    store.record(open_review(patient="P_00008", reader="dr_b", verdict="own", blinded=True, phase="blinded"))
    with pytest.raises(ReviewRefused, match="own read"):
        store.record(unblinded)
    store.record(open_review(patient="P_00008", verdict="own", blinded=True, phase="blinded"))
    store.record(unblinded)
    with pytest.raises(ReviewRefused, match="own read"):
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
    with pytest.raises(ReviewRefused, match=msg) as info:
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
    assert export_csv(store, out) == 3
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
    assert export_csv(store, out) == 4
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
    export_csv(store, tmp_path / "out.csv")
    with pytest.raises(ReviewRefused, match="BI-RADS") as info:
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


# -- the log stays append-only, and what was changed behind its back is said at open -----------------------------

def _raw(path) -> sqlite3.Connection:
    """A plain SQLite connection, as someone with the file and the sqlite3 tool has."""
    return sqlite3.connect(path, isolation_level=None)


def _three(path) -> list[int]:
    with ReviewStore(path) as s:
        return [s.record(open_review(patient=f"P_{i}", birads=b)) for i, b in enumerate(("1", "2", "3"))]


@pytest.mark.parametrize("sql", [
    "INSERT OR REPLACE INTO reviews (id, created, reader, patient_id, model_version, ai_shown, verdict, birads,"
    " comment, blinded, phase) VALUES (1, 'x', 'forger', 'P_1', '', 1, 'disagree', '5', '', 0, 'open')",
    "REPLACE INTO reviews (id, created, reader, patient_id, model_version, ai_shown, verdict, birads, comment,"
    " blinded, phase) VALUES (1, 'x', 'forger', 'P_1', '', 1, 'disagree', '5', '', 0, 'open')",
    "INSERT OR REPLACE INTO review_chain (review_id, n, hash) VALUES (1, 1, 'forged')",
    "INSERT OR REPLACE INTO log_meta (key, value) VALUES ('log_id', 'forged')",
])
def test_replace_of_a_stored_entry_is_refused_by_the_database(store, sql):
    """SQLite carries out REPLACE as a delete that fires no DELETE trigger: a trigger on the insert refuses it."""
    store.record(open_review(verdict="agree", birads="2"))
    raw = _raw(store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(sql)
        assert raw.execute("SELECT reader, verdict, birads FROM reviews").fetchall() == [("dr_a", "agree", "2")]
    finally:
        raw.close()
    assert store.check().reviews == 1  # the chain is whole


@pytest.mark.parametrize("tamper, message", [
    ("DROP TRIGGER reviews_no_update; UPDATE reviews SET birads = '5' WHERE id = 2", "review 2 .*does not match"),
    ("DROP TRIGGER reviews_no_delete; DELETE FROM reviews WHERE id = 2", "review 3 .*does not match"),
    ("DROP TRIGGER reviews_no_update; UPDATE reviews SET comment = X'00ff' WHERE id = 2", "review 2 .*does not match"),
    ("INSERT INTO reviews (created, reader, patient_id, model_version, ai_shown, verdict, birads, comment, blinded,"
     " phase) VALUES ('2020-01-01', 'forger', 'P_9', '', 1, 'agree', '1', '', 0, 'open')", "review 4 .*no entry"),
    ("DROP TRIGGER review_chain_no_delete; DELETE FROM review_chain WHERE review_id = 1", "review 1 .*no entry"),
    ("DROP TRIGGER log_meta_no_update; UPDATE log_meta SET value = 'other' WHERE key = 'log_id'",
     "review 1 .*does not match"),
])
def test_an_edit_made_with_file_access_is_reported_at_open(tmp_path, tamper, message):
    path = tmp_path / "reviews.sqlite"
    _three(path)
    raw = _raw(path)
    raw.executescript(tamper)
    raw.close()
    with pytest.raises(ReviewLogTampered, match=message) as info:
        ReviewStore(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text and "P_" not in text  # one line, the file named, no patient


def test_a_dropped_reviews_table_is_an_error_not_a_new_log(tmp_path):
    path = tmp_path / "reviews.sqlite"
    _three(path)
    raw = _raw(path)
    raw.execute("DROP TABLE reviews")
    raw.close()
    with pytest.raises(ReviewLogTampered, match="reviews table is missing"):
        ReviewStore(path)
    raw = _raw(path)  # nothing was made again in its place
    try:
        assert "reviews" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        raw.close()


def test_every_table_dropped_is_caught_by_user_version_and_then_by_the_anchor(tmp_path):
    path = tmp_path / "reviews.sqlite"
    _three(path)
    raw = _raw(path)
    raw.executescript("DROP TABLE reviews; DROP TABLE review_chain; DROP TABLE log_meta; DROP TABLE schema_version;"
                      "DROP TABLE seen_unblinded; DROP TABLE reading_mode;")
    with pytest.raises(ReviewLogTampered, match="reviews table is missing"):
        ReviewStore(path)
    raw.execute("PRAGMA user_version = 0")  # the header's mark wiped too: now only the anchor knows
    raw.close()
    with pytest.raises(ReviewLogTampered, match="another log id"):
        ReviewStore(path)


def test_reviews_removed_from_the_end_are_caught_by_the_anchor(tmp_path):
    path = tmp_path / "reviews.sqlite"
    _three(path)
    raw = _raw(path)
    raw.executescript("DROP TRIGGER reviews_no_delete; DROP TRIGGER review_chain_no_delete;"
                      "DELETE FROM reviews WHERE id = 3; DELETE FROM review_chain WHERE review_id = 3;")
    raw.close()
    with pytest.raises(ReviewLogTampered, match="holds 2 reviews, but its anchor .* records 3"):
        ReviewStore(path)
    # what the README says: someone who also removes the anchor hides a removed tail (the chain alone cannot tell)
    (tmp_path / "reviews.sqlite.anchor.json").unlink()
    with ReviewStore(path) as s:
        assert s.count() == 2


def test_a_missing_log_that_its_anchor_remembers_is_not_started_again(tmp_path):
    path = tmp_path / "reviews.sqlite"
    _three(path)
    for leftover in tmp_path.glob("reviews.sqlite*"):
        if not leftover.name.endswith(".anchor.json"):
            leftover.unlink()
    with pytest.raises(ReviewLogTampered, match="is missing, but its anchor .* records 3 reviews"):
        ReviewStore(path)
    assert not path.exists()


def test_a_rewritten_log_is_caught_by_the_anchor_head(tmp_path):
    """A log rebuilt with the same id and count but other content (the chain recomputed) differs from the anchor."""
    path = tmp_path / "reviews.sqlite"
    _three(path)
    anchor = (tmp_path / "reviews.sqlite.anchor.json").read_text()
    other = tmp_path / "other"
    other.mkdir()
    _three(other / "reviews.sqlite")
    raw = _raw(other / "reviews.sqlite")
    log_id = raw.execute("SELECT value FROM log_meta WHERE key = 'log_id'").fetchone()[0]
    raw.close()
    import json

    data = json.loads(anchor)
    data["log_id"] = log_id  # the forger gives the other log this one's anchor, id and all
    (other / "reviews.sqlite.anchor.json").write_text(json.dumps(data))
    with pytest.raises(ReviewLogTampered, match="does not match its anchor .* at review 3"):
        ReviewStore(other / "reviews.sqlite")


_V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL, reader TEXT NOT NULL, patient_id TEXT NOT NULL,
    image_path TEXT, model_version TEXT NOT NULL DEFAULT '', ai_score_shown REAL, ai_shown INTEGER NOT NULL,
    verdict TEXT NOT NULL, birads TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '', blinded INTEGER NOT NULL,
    phase TEXT NOT NULL);
CREATE INDEX reviews_patient ON reviews (patient_id, id);
CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews BEGIN SELECT RAISE(ABORT, 'append-only'); END;
INSERT INTO schema_version VALUES (1);
"""


def test_a_log_without_the_chain_is_chained_once_and_says_so(tmp_path):
    path = tmp_path / "reviews.sqlite"
    raw = _raw(path)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.executescript(_V1_SCHEMA)
    for i in range(4):
        raw.execute("INSERT INTO reviews (created, reader, patient_id, ai_score_shown, ai_shown, verdict, birads,"
                    " comment, blinded, phase) VALUES (?, 'dr_a', ?, 0.25, 1, 'agree', '2', 'é, \"x\"', 0, 'open')",
                    (f"2024-01-0{i + 1}T00:00:00+00:00", f"P_{i}"))
    raw.close()
    with ReviewStore(path) as s:
        assert s.schema_version == 3 and s.count() == 4
        migrated = s.state.chain_migrated
        assert migrated["reviews"] == 4 and migrated["from_schema"] == 1 and migrated["at"]
        s.record(open_review(patient="P_new"))
    with ReviewStore(path) as s:  # opened again: checked, not migrated a second time
        assert s.state.chain_migrated == migrated and s.state.reviews == 5
    raw = _raw(path)
    raw.executescript("DROP TRIGGER reviews_no_update; UPDATE reviews SET verdict = 'disagree' WHERE id = 2;")
    raw.close()
    with pytest.raises(ReviewLogTampered, match="review 2 "):
        ReviewStore(path)


def test_two_stores_on_one_log_keep_one_chain(tmp_path):
    path = tmp_path / "reviews.sqlite"
    with ReviewStore(path) as a, ReviewStore(path) as b:
        for i in range(3):
            a.record(open_review(patient=f"A_{i}"))
            b.record(open_review(patient=f"B_{i}", reader="dr_b"))
    with ReviewStore(path) as s:
        assert s.state.reviews == 6 and s.state.last_id == 6


# -- opening: a read-only folder and an empty file are said in one line, with the path ----------------------------

@pytest.mark.parametrize("existing", [True, False])
def test_a_read_only_folder_is_one_line_with_the_path(tmp_path, monkeypatch, existing):
    """The tests run as root, for whom no folder is read-only: SQLite is made to open the file read-only instead,
    which fails the way a read-only folder does ('attempt to write a readonly database', 'unable to open')."""
    path = tmp_path / "data" / "reviews.sqlite"
    if existing:
        _three(path)
    real_connect = sqlite3.connect

    def read_only(database, *args, **kwargs):
        return real_connect(f"file:{database}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(ReviewLogError) as info:
        ReviewStore(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text
    assert ("readonly" if existing else "unable to open") in text
    assert str(path.parent) in text  # where the app needs to write


def test_an_empty_file_is_refused_not_started_again(tmp_path):
    path = tmp_path / "reviews.sqlite"
    path.write_bytes(b"")
    with pytest.raises(ReviewLogError, match="empty file \\(0 bytes\\)") as info:
        ReviewStore(path)
    assert str(path) in str(info.value)
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["reviews.sqlite"]


def test_a_new_log_that_fails_half_way_leaves_no_file(tmp_path, monkeypatch):
    """A new log is written under another name and linked into place, so a crash never leaves an empty file that
    the next start would have to refuse."""
    import model.reviews.schema

    path = tmp_path / "reviews.sqlite"

    def crash(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(model.reviews.schema, "initialise", crash)
    with pytest.raises(ReviewLogError, match="disk I/O error"):
        ReviewStore(path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    with ReviewStore(path) as s:
        assert s.count() == 0


# -- backup --------------------------------------------------------------------------------------------------------

def test_backup_is_a_whole_consistent_copy_while_the_log_is_open(tmp_path):
    import shutil

    path = tmp_path / "reviews.sqlite"
    with ReviewStore(path) as s:
        ids = [s.record(open_review(patient=f"P_{i}")) for i in range(20)]
        # what lost 88 of 2,617 reviews: the newest reviews are still in reviews.sqlite-wal
        shutil.copy(path, tmp_path / "main-file-only.sqlite")
        raw = _raw(tmp_path / "main-file-only.sqlite")
        try:
            copied = raw.execute("SELECT count(*) FROM reviews").fetchone()[0]
        finally:
            raw.close()
        assert copied < len(ids)
        result = s.backup(f"{tmp_path / 'backups'}/")  # a folder, made for it
        head = s.state.head
    assert result.reviews == 20 and result.head == head
    assert result.path.parent == tmp_path / "backups"
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [result.path.name]  # one file, no journal, no temp
    raw = _raw(result.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in raw.execute("SELECT id FROM reviews ORDER BY id")] == ids
    finally:
        raw.close()
    restored = tmp_path / "restored" / "reviews.sqlite"
    restored.parent.mkdir()
    shutil.copy(result.path, restored)
    with ReviewStore(restored) as s:  # a backup is a log whose chain checks
        assert s.state.head == head and s.count() == 20


def test_backup_refuses_the_log_itself(store):
    with pytest.raises(ReviewRefused, match="another file"):
        store.backup(store.path)


def test_reviews_commands(tmp_path, capsys):
    import json

    from model.cli import main as cli

    path = tmp_path / "reviews.sqlite"
    _three(path)
    assert cli.main(["reviews", "verify", "--db", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reviews"] == 3 and data["last_id"] == 3 and len(data["head"]) == 64
    assert cli.main(["reviews", "backup", str(tmp_path / "copy.sqlite"), "--db", str(path)]) == 0
    assert "backed up 3 reviews" in capsys.readouterr().out
    raw = _raw(tmp_path / "copy.sqlite")
    try:
        assert raw.execute("SELECT count(*) FROM reviews").fetchone()[0] == 3
    finally:
        raw.close()
    raw = _raw(path)
    raw.executescript("DROP TRIGGER reviews_no_update; UPDATE reviews SET comment = 'changed' WHERE id = 1")
    raw.close()
    assert cli.main(["reviews", "verify", "--db", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bcir reviews: review 1 in the review log") and err.count("\n") == 1
    assert cli.main(["reviews", "verify", "--db", str(tmp_path / "none.sqlite")]) == 1
    assert "there is no review log" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
