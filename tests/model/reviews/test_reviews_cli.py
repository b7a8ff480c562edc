"""``bcir reviews list`` and ``bcir reviews export``: what the log holds, as a table, as JSON, and as the CSV the
app exports."""

from __future__ import annotations

import json

from model.cli import main as cli
from model.reviews.export import CSV_COLUMNS, export_csv
from model.reviews.records import Review
from model.reviews.store import ReviewStore


def make_log(path) -> None:
    with ReviewStore(path) as s:
        s.record(Review(reader="Dr A", patient_id="P_1", verdict="disagree", birads="4b", ai_shown=True,
                        ai_score_shown=0.61, model_version="m1", comment="spiculated\nmass"))
        session = s.blinded_session("Dr B", "P_2", model_version="m1")
        session.commit_own("3", "probably benign")
        session.commit_verdict("agree", 0.2)


def test_list_is_a_table_oldest_first_with_the_words_the_app_shows(tmp_path, capsys):
    path = tmp_path / "reviews.sqlite"
    make_log(path)
    assert cli.main(["reviews", "list", "--db", str(path)]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["#", "WHEN", "READER", "PATIENT", "VERDICT", "BI-RADS", "AI", "SHOWN", "MODEL", "COMMENT"]
    assert len(rows) == 3 and [r.split()[0] for r in rows] == ["1", "2", "3"]
    assert "disagrees with AI" in rows[0] and "61%" in rows[0] and rows[0].endswith("spiculated mass")
    assert "own read (blinded)" in rows[1] and "hidden" in rows[1]
    assert "agrees with AI (after own read)" in rows[2] and "20%" in rows[2]
    assert cli.main(["reviews", "list", "--db", str(path), "--reader", "Dr B", "--patient", "P_2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert cli.main(["reviews", "list", "--db", str(path), "--reader", "Dr C"]) == 0
    assert capsys.readouterr().out == f"no reviews that match in {path}\n"


def test_list_json_has_every_column_the_export_has(tmp_path, capsys):
    path = tmp_path / "reviews.sqlite"
    make_log(path)
    assert cli.main(["reviews", "list", "--db", str(path), "--json", "--patient", "P_1"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["reviews"]
    assert tuple(row) == CSV_COLUMNS
    assert row["patient_id"] == "P_1" and row["birads"] == "4B" and row["ai_score_shown"] == 0.61
    assert row["ai_shown"] is True and row["blinded"] is False and row["comment"] == "spiculated\nmass"


def test_export_writes_the_stores_csv_and_a_reader_can_be_chosen(tmp_path, capsys):
    path = tmp_path / "reviews.sqlite"
    make_log(path)
    assert cli.main(["reviews", "export", str(tmp_path / "all.csv"), "--db", str(path)]) == 0
    assert capsys.readouterr().out == f"3 reviews exported to {tmp_path / 'all.csv'}\n"
    with ReviewStore(path) as s:
        assert export_csv(s, tmp_path / "direct.csv") == 3
        assert export_csv(s, tmp_path / "b-direct.csv", reader="Dr B") == 2
    assert (tmp_path / "all.csv").read_bytes() == (tmp_path / "direct.csv").read_bytes()
    assert cli.main(["reviews", "export", str(tmp_path / "b.csv"), "--db", str(path), "--reader", "Dr B"]) == 0
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "b-direct.csv").read_bytes()


def test_list_and_export_never_start_a_log(tmp_path, capsys):
    missing = tmp_path / "none.sqlite"
    assert cli.main(["reviews", "list", "--db", str(missing)]) == 1
    assert cli.main(["reviews", "export", str(tmp_path / "out.csv"), "--db", str(missing)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"bcir reviews: there is no review log at {missing}"] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []
