"""A reader's session at a workstation: drafts that survive a failed commit or a parked case, "normal both",
marks, a change of mind, arbitration and leaving reading mode, case after case, on both backends."""

from __future__ import annotations

import pytest

from model.errors import ReadRefused
from model.reading.reads import Finding, Mark, Reader
from model.reading.session import Drafts, ReadingSession
from model.reading.store import ReadStore


@pytest.fixture
def store(reads_db):
    with ReadStore(reads_db) as s:
        for code in ("AA", "BB", "CC1"):
            s.add_reader(Reader(code, f"Dr {code}"))
        for n in range(1, 5):
            s.add_case(f"case-{n}")
        yield s


def test_two_readers_go_case_after_case_and_the_arbiter_decides(store, tmp_path):
    a = ReadingSession(store, "AA", drafts_folder=tmp_path / "a")
    for case in ("case-1", "case-2", "case-3"):
        opened = a.open(case)
        assert opened.role == "first" and opened.others == ()
        if case == "case-2":
            a.set_breast("L", outcome="assessment", score="4B", density="c")
            a.set_breast("R", score="1", density="c")
            a.add_finding("L", Finding("microcalcification", ("LCC",), ()))
            a.add_mark(0, Mark("case-2/LCC.dcm", "LCC", ((120.0, 80.0),)))
            updated = a.add_mark(0, Mark("case-2/LMLO.dcm", "LMLO", ((100.0, 60.0), (140.0, 60.0), (120.0, 90.0))))
            assert updated.views == ("LCC", "LMLO") and len(updated.marks) == 2
            outcome = a.commit()
        else:
            outcome = a.normal_both()
        assert outcome.read is not None and not outcome.problem
        assert a.draft is None and a.opened.own.read_id == outcome.read.read_id
    b = ReadingSession(store, "BB", drafts_folder=tmp_path / "b")
    for case in ("case-1", "case-2", "case-3"):
        assert b.open(case).others == ()  # blind
        assert b.normal_both().read is not None
        assert [r.reader for r in b.opened.others] == ["AA"]  # revealed after the commit
    assert store.status("case-2").state == "arbitration"
    committed = store.reads("case-2", "AA")[0]
    assert committed.breast("L").findings[0].marks[1].is_outline and committed.breast("L").density == "c"

    c = ReadingSession(store, "CC1", drafts_folder=tmp_path / "c")
    assert c.open("case-2").role == "arbitration" and len(c.opened.others) == 2
    c.arbitrate({"L": "assessment", "R": "routine"}, "calcifications on both views")
    assert store.status("case-2").final == {"L": "assessment", "R": "routine"} and c.opened.role == "done"


def test_a_read_missing_a_score_is_refused_and_stays_on_screen(store, tmp_path):
    a = ReadingSession(store, "AA", drafts_folder=tmp_path)
    a.open("case-1")
    a.set_breast("L", score="1")
    outcome = a.commit()
    assert outcome.read is None and outcome.problem == "breast R: choose a score first" and not outcome.kept_as_draft
    a.set_breast("R", outcome="technical", score="1", technical_view="RMLO", technical_reason="")
    assert "technical_reason" in a.commit().problem  # the store's own rule, one line
    a.set_breast("R", technical_reason="nipple not in profile")
    assert a.commit().read.breast("R").technical_view == "RMLO"


def test_a_parked_case_comes_back_as_it_was_left_and_is_logged(store, tmp_path):
    a = ReadingSession(store, "AA", drafts_folder=tmp_path)
    a.open("case-1")
    a.set_breast("L", outcome="clinical", score="5")
    a.add_finding("L", Finding("ill-defined mass", ("LCC",), ()))
    assert a.park().is_file()
    a.open("case-2")
    a.normal_both()
    again = ReadingSession(store, "AA", drafts_folder=tmp_path)  # the next morning, the same workstation
    again.open("case-1")
    assert again.draft.breasts["L"].outcome == "clinical" and again.draft.findings[0][1].abnormality == "ill-defined mass"
    assert [e["kind"] for e in store.events("AA") if e["case_id"] == "case-1"] == ["opened", "parked", "opened"]
    again.set_breast("R", score="1")
    assert again.commit().read is not None and Drafts("AA", tmp_path).cases() == []


def test_a_change_of_mind_replaces_the_read_and_leaving_reading_is_logged(store, tmp_path):
    a = ReadingSession(store, "AA", drafts_folder=tmp_path)
    a.open("case-3")
    first = a.normal_both().read
    with pytest.raises(ReadRefused, match="is committed: change it"):
        a.set_breast("L", score="2")
    draft = a.change()
    assert draft.replaces == first.read_id and draft.breasts["L"].score == "1"
    a.set_breast("L", outcome="assessment", score="4A")
    changed = a.commit().read
    assert changed.replaces == first.read_id and len(store.reads("case-3", "AA", history=True)) == 2
    a.leave_reading()
    assert store.events("AA")[-1]["kind"] == "left-reading"


def test_an_unknown_reader_cannot_start_a_session(store, tmp_path):
    with pytest.raises(ReadRefused, match="reader 'ZZ' is not one of this site's readers"):
        ReadingSession(store, "ZZ", drafts_folder=tmp_path)


def test_a_server_that_drops_keeps_the_read_as_a_draft_until_it_is_back(tmp_path):
    from tests.postgres import Cluster

    cluster = Cluster()
    try:
        url = cluster.new_database()
        store = ReadStore(url)
        store.add_reader(Reader("AA", "Dr A"))
        store.add_case("case-1")
        a = ReadingSession(store, "AA", drafts_folder=tmp_path)
        a.open("case-1")
        a.set_breast("L", outcome="assessment", score="4C")
        a.set_breast("R", score="2")
        cluster.stop()
        outcome = a.commit()
        assert outcome.read is None and outcome.kept_as_draft and "\n" not in outcome.problem
        assert "kept on this workstation as a draft" in outcome.problem
        assert Drafts("AA", tmp_path).cases() == ["case-1"]
        cluster.start()
        later = ReadingSession(ReadStore(url), "AA", drafts_folder=tmp_path)
        later.open("case-1")
        assert later.draft.breasts["L"].score == "4C"  # nothing the reader wrote was lost
        assert later.commit().read.breast("L").outcome == "assessment"
        assert Drafts("AA", tmp_path).cases() == [] and later.store.status("case-1").state == "second"
        later.store.close()
        store.close()
    finally:
        cluster.remove()


def test_where_the_site_ties_readers_to_logins_a_login_reads_only_as_its_own_reader(reads_db, tmp_path):
    with ReadStore(reads_db) as store:
        store.add_reader(Reader("AA", "Dr A"), login="alice")
        store.add_reader(Reader("BB", "Dr B"), login="bob")
        store.add_reader(Reader("CC1", "Dr C"))
        assert [r.code for r in store.readers_for_login("alice")] == ["AA"]
        assert store.readers_for_login("mallory") == []
        assert ReadingSession(store, "AA", login="alice", drafts_folder=tmp_path).reader == "AA"
        for code in ("BB", "CC1"):
            with pytest.raises(ReadRefused, match=f"reader {code} is tied to another login than 'alice'"):
                ReadingSession(store, code, login="alice", drafts_folder=tmp_path)
        with pytest.raises(ReadRefused, match="is not a login name"):
            store.add_reader(Reader("DD", "Dr D"), login="two words")


def test_a_site_that_ties_no_reader_to_a_login_lists_every_reader(store):
    assert [r.code for r in store.readers_for_login("anyone")] == ["AA", "BB", "CC1"]
