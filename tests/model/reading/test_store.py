"""The reading store on both backends (SQLite and a real PostgreSQL server): the double-reading protocol walked
case after case, blindness, changes of mind, arbitration, worklists, append-only, and the faults a site meets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from model.errors import ReadRefused, ReadStoreError
from model.reading.db import Database
from model.reading.reads import Arbitration, BreastRead, Finding, Mark, Read, Reader
from model.reading.store import EXPORT_COLUMNS, ReadStore

OPENED = "2026-12-01T09:00:00+00:00"
ROOT = Path(__file__).resolve().parents[3]


def breast(side: str, outcome: str = "routine", score: str | None = None, findings=()) -> BreastRead:
    score = score or {"routine": "1", "assessment": "4A", "clinical": "5", "technical": "1"}[outcome]
    extra = dict(technical_view=f"{side}MLO", technical_reason="nipple not in profile") if outcome == "technical" else {}
    return BreastRead(side, outcome, score, "birads", "b", tuple(findings), **extra)


def read(case: str, reader: str, left: str = "routine", right: str = "routine", **kw) -> Read:
    findings = kw.pop("findings", ())
    return Read(case, reader, (breast("L", left, findings=findings), breast("R", right)), OPENED, None, **kw)


def mass_on_left() -> Finding:
    return Finding("ill-defined mass", ("LCC", "LMLO"),
                   (Mark("1.2.3.1", "LCC", ((410.0, 220.0),)),
                    Mark("1.2.3.2", "LMLO", ((400.0, 300.0), (440.0, 300.0), (420.0, 340.0)))))


@pytest.fixture
def store(reads_db):
    with ReadStore(reads_db) as s:
        for code, name in (("AA", "Dr A"), ("BB", "Dr B"), ("CC1", "Dr C")):
            s.add_reader(Reader(code, name))
        for case in ("case-1", "case-2", "case-3"):
            assert s.add_case(case, [f"{case}/LCC", f"{case}/RCC"])
        yield s


def test_a_whole_double_reading_with_a_blind_second_reader_and_an_arbitration(store):
    assert store.policy() == "arbitration" and store.ai_policy() == "after_own_read"
    first = store.worklists("AA")
    assert [i.case_id for i in first["first"].items] == ["case-1", "case-2", "case-3"]
    assert first["second"].count == first["arbitration"].count == first["done"].count == 0

    # reader A, case after case; a marked finding and a recall on case-2's left breast
    for case in ("case-1", "case-2", "case-3"):
        opened = store.open_case(case, "AA")
        assert opened.role == "first" and opened.others == () and not opened.ai_visible
        if case == "case-2":
            committed = store.commit(read(case, "AA", left="assessment", findings=(mass_on_left(),)))
            assert committed.breast("L").findings[0].marks[1].is_outline
        else:
            committed = store.commit(Read.normal_both(case, "AA", OPENED, "birads"))
        assert committed.read_id and committed.committed_at
    a = store.worklists("AA")
    assert a["first"].count == 0 and a["second"].count == 0 and a["done"].count == 3  # never A's own second read
    b = store.worklists("BB")
    assert [i.case_id for i in b["second"].items] == ["case-1", "case-2", "case-3"] and b["first"].count == 0
    assert all(i.waiting_s >= 0 for i in b["second"].items)

    # reader B is blind to A until B's own read is in
    for case in ("case-1", "case-2", "case-3"):
        opened = store.open_case(case, "BB")
        assert opened.role == "second" and opened.others == () and opened.own is None
        assert store.reads(case, "BB") == []
        store.commit(Read.normal_both(case, "BB", OPENED, "birads"))  # B calls case-2 normal: discordant left
        assert [r.reader for r in store.reads(case, "BB")] == ["AA", "BB"]  # revealed after the commit
    assert store.status("case-1").state == "done" and store.status("case-1").final == {"L": "routine", "R": "routine"}
    two = store.status("case-2")
    assert two.state == "arbitration" and two.discordant == ("L",) and two.final is None

    # a third reader cannot add a read; a reader of the case cannot arbitrate it
    with pytest.raises(ReadRefused, match="has its 2 reads already"):
        store.commit(read("case-2", "CC1"))
    with pytest.raises(ReadRefused, match="a third reader decides"):
        store.arbitrate(Arbitration("case-2", "AA", {"L": "assessment", "R": "routine"}, "I saw it"))
    with pytest.raises(ReadRefused, match="does not wait for arbitration"):
        store.arbitrate(Arbitration("case-1", "CC1", {"L": "routine", "R": "routine"}, "no"))
    c = store.worklists("CC1")
    assert [i.case_id for i in c["arbitration"].items] == ["case-2"] and c["first"].count == c["second"].count == 0
    assert store.worklists("AA")["arbitration"].count == 0  # A read it: not A's to arbitrate
    opened = store.open_case("case-2", "CC1")
    assert opened.role == "arbitration" and {r.reader for r in opened.others} == {"AA", "BB"}
    decided = store.arbitrate(Arbitration("case-2", "CC1", {"L": "assessment", "R": "routine"},
                                          "spiculated margin on both views"))
    assert decided.arbitration_id and store.status("case-2").state == "done"
    assert store.status("case-2").final == {"L": "assessment", "R": "routine"}
    assert [i.case_id for i in store.worklists("CC1")["done"].items] == ["case-2"]
    with pytest.raises(ReadRefused, match="was arbitrated"):
        store.commit(read("case-2", "BB", left="assessment", replaces=store.reads("case-2", "BB")[1].read_id))

    rows = store.export()
    assert [r["kind"] for r in rows].count("read") == 12 and [r["kind"] for r in rows].count("arbitration") == 2
    assert all(set(r) == set(EXPORT_COLUMNS) for r in rows)
    a_left = next(r for r in rows if r["case_id"] == "case-2" and r["reader"] == "AA" and r["side"] == "L")
    assert a_left["outcome"] == "assessment" and a_left["findings"] == 1 and a_left["role"] == "first"
    assert json.loads(a_left["findings_json"])[0]["abnormality"] == "ill-defined mass"


def test_a_change_of_mind_after_the_reveal_keeps_both_reads(store):
    store.commit(read("case-1", "AA", right="assessment"))
    own = store.commit(read("case-1", "BB"))
    assert store.status("case-1").state == "arbitration"
    with pytest.raises(ReadRefused, match="has read case case-1 already"):
        store.commit(read("case-1", "BB", right="assessment"))
    with pytest.raises(ReadRefused, match="replaces the reader's own current read"):
        store.commit(read("case-1", "BB", right="assessment", replaces=store.reads("case-1", "AA")[0].read_id))
    changed = store.commit(read("case-1", "BB", right="assessment", replaces=own.read_id))
    assert store.status("case-1").state == "done" and store.status("case-1").final["R"] == "assessment"
    assert [r.read_id for r in store.reads("case-1", "BB")] == [store.reads("case-1", "AA")[0].read_id, changed.read_id]
    history = store.reads("case-1", "BB", history=True)
    assert [r.read_id for r in history][1:] == [own.read_id, changed.read_id]  # both opinions kept
    rows = [r for r in store.export() if r["reader"] == "BB" and r["side"] == "R"]
    assert [(r["outcome"], r["current"], r["role"]) for r in rows] == [("routine", False, "second"),
                                                                       ("assessment", True, "second")]


def test_the_policy_is_a_site_setting_in_the_database(store, reads_db):
    with pytest.raises(ReadRefused, match="is not one of this site's readers"):
        store.set_policy("single", by="ZZ")
    with pytest.raises(ReadRefused, match="policy 'sometimes' is not one of"):
        store.set_policy("sometimes", by="AA")
    store.set_policy("recall_if_either", by="AA", ai="on_request")
    with ReadStore(reads_db) as other:  # another workstation sees it
        assert other.policy() == "recall_if_either" and other.ai_policy() == "on_request"
    opened = store.open_case("case-1", "AA")
    assert opened.ai_visible
    store.commit(read("case-1", "AA", left="assessment", ai_shown=True, ai_model_version="bcir-demo-v1",
                      ai_scores={"L": 0.81, "R": 0.04}))
    store.commit(read("case-1", "BB"))
    assert store.status("case-1").state == "done" and store.status("case-1").final["L"] == "assessment"
    store.set_policy("single", by="BB", ai="after_own_read")
    with pytest.raises(ReadRefused, match="hides the AI until the reader's own read is committed"):
        store.commit(read("case-2", "AA", ai_shown=True))
    store.commit(read("case-2", "AA"))
    assert store.status("case-2").state == "done"
    assert [(h["value"], h["set_by"]) for h in store.policy_history() if h["name"] == "reading_policy"] == [
        ("recall_if_either", "AA"), ("single", "BB")]


def test_consensus_is_recorded_by_one_of_the_two_readers(store):
    store.set_policy("consensus", by="CC1")
    store.commit(read("case-3", "AA", left="clinical"))
    store.commit(read("case-3", "BB"))
    assert store.status("case-3").state == "consensus"
    assert [i.case_id for i in store.worklists("AA")["arbitration"].items] == ["case-3"]
    assert store.worklists("CC1")["arbitration"].count == 0  # consensus is between the two readers
    store.arbitrate(Arbitration("case-3", "BB", {"L": "assessment", "R": "routine"}, "agreed at the meeting"))
    assert store.status("case-3").final == {"L": "assessment", "R": "routine"}


def test_unknown_readers_and_cases_and_bad_fields_are_refused_in_one_line(store):
    for action, match in (
        (lambda: store.commit(read("case-9", "AA")), "case 'case-9' is not on this site's reading list"),
        (lambda: store.commit(read("case-1", "ZZ")), "reader 'ZZ' is not one of this site's readers"),
        (lambda: store.open_case("case-1", "QQ"), "reader 'QQ' is not one of"),
        (lambda: store.add_reader(Reader("AA", "Someone else")), "reader AA exists already"),
        (lambda: store.worklist("AA", "everything"), "role 'everything' is not one of"),
        (lambda: store.add_case("bad\ncase"), "case id"),
    ):
        with pytest.raises(ReadRefused, match=match) as info:
            action()
        assert "\n" not in str(info.value)
    assert not store.add_case("case-1")  # already there: nothing added, no error
    assert [r.code for r in store.readers()] == ["AA", "BB", "CC1"]
    assert store.export() == []


def test_the_database_itself_refuses_to_update_or_delete(store):
    store.commit(read("case-1", "AA"))
    store.set_policy("consensus", by="AA")
    for sql in ("UPDATE reads SET body = '{}'", "DELETE FROM reads", "DELETE FROM case_status",
                "UPDATE settings SET value = 'single'", "DELETE FROM cases"):
        with pytest.raises(ReadStoreError, match="append-only"):
            with store.db.transaction() as tx:
                tx.execute(sql)
    assert store.reads("case-1", "AA")[0].breast("L").outcome == "routine" and store.policy() == "consensus"


def test_a_database_from_a_newer_version_is_refused(reads_db):
    with ReadStore(reads_db) as s:
        with s.db.transaction() as tx:
            tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (99, OPENED))
    with pytest.raises(ReadStoreError, match="has schema version 99, newer than this B-Cir Review knows") as info:
        ReadStore(reads_db)
    assert "\n" not in str(info.value)


def test_a_damaged_sqlite_file_and_an_unknown_url_get_one_line(tmp_path):
    damaged = tmp_path / "reads.sqlite"
    damaged.write_bytes(b"this is not a database, it is a text file that lost its way" * 100)
    with pytest.raises(ReadStoreError, match="is damaged") as info:
        ReadStore(f"sqlite:///{damaged}")
    assert "\n" not in str(info.value) and "restore it from a backup" in str(info.value)
    with pytest.raises(ReadStoreError, match="use sqlite:///PATH or postgresql://"):
        ReadStore("mysql://someone@somewhere/reads")


def test_a_password_never_appears_in_a_line(pg_cluster):
    url = pg_cluster.url("no_such_db").replace("bcir@", "bcir:s3cret-pass@")
    with pytest.raises(ReadStoreError) as info:
        ReadStore(url)
    assert "s3cret-pass" not in str(info.value) and "cannot be reached" in str(info.value)


def test_a_read_only_database_is_named_as_such(pg_cluster):
    url = pg_cluster.new_database()
    with ReadStore(url) as s:
        s.add_reader(Reader("AA", "Dr A"))
        s.add_case("case-1")
    import psycopg

    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET default_transaction_read_only = on")
    with pytest.raises(ReadStoreError, match="is read-only: nothing can be committed") as info:
        with ReadStore(url) as s:
            s.commit(read("case-1", "AA"))
    assert "\n" not in str(info.value)


# -- several workstations: concurrency, kill -9, a server that goes away ------------------------------------------

WORKER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from model.reading.reads import Read
    from model.reading.store import ReadStore
    url, reader, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    store = ReadStore(url)
    if mode == "race":  # both processes wait for the same instant, then commit the same case
        start = float(sys.argv[4])
        while time.time() < start:
            time.sleep(0.001)
        print(store.commit(Read.normal_both("case-1", reader, "2026-12-01T09:00:00+00:00", "birads")).read_id, flush=True)
    else:  # commit case after case until killed, saying each acknowledged read
        for n in range(10_000):
            store.add_case(f"k-{{n}}")
            read = store.commit(Read.normal_both(f"k-{{n}}", reader, "2026-12-01T09:00:00+00:00", "birads"))
            print(read.read_id, flush=True)
""").format(root=str(ROOT))


def _worker(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_two_workstations_commit_the_same_case_at_the_same_moment(store, reads_db, tmp_path):
    start = time.time() + 3.0  # both processes are up and connected well before
    workers = [_worker(tmp_path, reads_db, code, "race", str(start)) for code in ("AA", "BB")]
    ids = []
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        ids.append(out.strip())
    assert all(ids) and store.status("case-1").state == "done" and store.status("case-1").reads == 2
    roles = {r["reader"]: r["role"] for r in store.export()}
    assert sorted(roles.values()) == ["first", "second"]


def test_kill_9_while_committing_leaves_every_acknowledged_read_and_nothing_half_written(store, reads_db, tmp_path):
    worker = _worker(tmp_path, reads_db, "AA", "loop")
    acknowledged = []
    deadline = time.time() + 120
    while len(acknowledged) < 25 and time.time() < deadline:
        line = worker.stdout.readline()
        assert line, worker.stderr.read()
        acknowledged.append(line.strip())
    os.kill(worker.pid, signal.SIGKILL)  # in the middle of the next commits
    worker.wait(timeout=30)
    assert len(acknowledged) == 25
    with ReadStore(reads_db) as after:
        rows = [r for r in after.export() if r["kind"] == "read"]
        ids = {r["id"] for r in rows}
        assert set(acknowledged) <= ids  # every read the process was told is saved is there
        for read_id in ids:  # and each read is whole: both breasts, its case moved on
            assert sorted(r["side"] for r in rows if r["id"] == read_id) == ["L", "R"]
        cases = {r["case_id"] for r in rows}
        assert all(after.status(c).state == "second" for c in cases)
        # the last case may have been added without its read: it waits for a first read, whole
        assert all(after.status(c).state in ("first", "second") for c in after.cases() if c.startswith("k-"))


def test_a_server_that_stops_mid_session_refuses_in_one_line_and_the_store_goes_on_when_it_is_back(tmp_path):
    from tests.postgres import Cluster

    cluster = Cluster()
    try:
        url = cluster.new_database()
        store = ReadStore(url)
        store.add_reader(Reader("AA", "Dr A"))
        for case in ("case-1", "case-2"):
            store.add_case(case)
        store.commit(read("case-1", "AA"))
        cluster.stop()
        with pytest.raises(ReadStoreError) as info:
            store.commit(read("case-2", "AA", left="assessment"))
        assert "\n" not in str(info.value) and ("lost" in str(info.value) or "cannot be reached" in str(info.value))
        with pytest.raises(ReadStoreError):
            store.worklists("AA")
        cluster.start()
        assert store.status("case-2").state == "first"  # nothing of the failed commit was written
        store.commit(read("case-2", "AA", left="assessment"))
        assert store.status("case-2").state == "second"
        store.close()
    finally:
        cluster.remove()


def test_database_urls_for_sqlite_take_three_or_four_slashes(tmp_path):
    for url in (f"sqlite://{tmp_path}/a.sqlite", f"sqlite:///{tmp_path}/b.sqlite"):
        db = Database(url)
        db.close()
    assert (tmp_path / "a.sqlite").is_file() and (tmp_path / "b.sqlite").is_file()


def test_the_done_list_counts_every_case_and_names_the_latest(store):
    for case in ("case-1", "case-2", "case-3"):
        store.commit(read(case, "AA"))
    done = store.worklists("AA", done_shown=2)["done"]
    assert done.count == 3 and [i.case_id for i in done.items] == ["case-3", "case-2"]  # the latest first
    assert [i.case_id for i in store.worklists("BB")["second"].items] == ["case-1", "case-2", "case-3"]  # oldest first


def test_waiting_times_read_as_a_worklist_says_them():
    from model.reading.store import WorkItem

    said = [WorkItem("c", "first", OPENED, s).waited for s in (59, 7 * 60 + 5, 2 * 3600 + 5 * 60, 47 * 3600, 3 * 86400)]
    assert said == ["0 min", "7 min", "2 h 05 min", "47 h 00 min", "3 days"]
