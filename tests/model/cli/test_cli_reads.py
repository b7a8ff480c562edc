"""`bcir readers` and `bcir reads`: a whole double reading from the command line, readers A and B on two
workstations (two processes, two data folders) sharing one reading database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
COLUMNS = ("case_id", "reader", "side", "outcome", "score", "scale", "density", "technical_view", "technical_reason",
           "opened_at", "committed_at", "role", "reason")


def bcir(workstation: Path, db: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """One `bcir` process on one workstation (its own data and cache folders) against the shared database."""
    env = {**os.environ, "BCIR_DATA_DIR": str(workstation / "data"), "BCIR_CACHE_DIR": str(workstation / "cache"),
           "BCIR_READS_DB": db, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=300)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def write_reads(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def read_rows(case: str, reader: str, left="routine", right="routine", at="2026-12-01T09:0{}:00+00:00", n=0):
    score = {"routine": "1", "assessment": "4B", "clinical": "5"}
    return [{"case_id": case, "reader": reader, "side": side, "outcome": outcome, "score": score[outcome],
             "scale": "birads", "density": "b", "opened_at": at.format(n), "committed_at": at.format(n + 1)}
            for side, outcome in (("L", left), ("R", right))]


def test_a_double_reading_from_the_command_line_on_two_workstations(demo_root, reads_db, tmp_path):
    site, a, b, c = (tmp_path / name for name in ("site", "ws-a", "ws-b", "ws-c"))
    for code, name in (("AA", "Dr A"), ("BB", "Dr B"), ("CC1", "Dr C")):
        bcir(site, reads_db, "readers", "add", code, name)
    assert "AA    Dr A  -" in bcir(a, reads_db, "readers", "list").stdout
    added = bcir(site, reads_db, "reads", "add-cases", str(demo_root)).stdout
    assert "cases added to the reading list" in added
    first = json.loads(bcir(a, reads_db, "reads", "worklist", "--reader", "AA", "--role", "first", "--json").stdout)
    cases = [i["case_id"] for i in first["first"]["items"]][:3]
    assert len(cases) == 3 and first["first"]["count"] >= 3

    # workstation A: three first reads, a recall for assessment of case 2's left breast
    reads_a = [row for n, case in enumerate(cases)
               for row in read_rows(case, "AA", left="assessment" if n == 1 else "routine", n=n)]
    out = bcir(a, reads_db, "reads", "import", str(write_reads(tmp_path / "a.csv", reads_a)))
    assert out.stdout.startswith("imported 3 reads and 0 arbitrations")
    mine = json.loads(bcir(a, reads_db, "reads", "worklist", "--reader", "AA", "--json").stdout)
    assert mine["second"]["count"] == 0 and mine["done"]["count"] == 3  # never A's own second read
    theirs = json.loads(bcir(b, reads_db, "reads", "worklist", "--reader", "BB", "--json").stdout)
    assert [i["case_id"] for i in theirs["second"]["items"]] == cases

    # workstation B: blind second reads, calling case 2 normal
    reads_b = [row for n, case in enumerate(cases) for row in read_rows(case, "BB", n=n + 5)]
    assert bcir(b, reads_db, "reads", "import", str(write_reads(tmp_path / "b.csv", reads_b))).returncode == 0
    status = json.loads(bcir(b, reads_db, "reads", "status", cases[1], "--json").stdout)
    assert status["state"] == "arbitration" and status["discordant"] == ["L"]
    assert json.loads(bcir(b, reads_db, "reads", "status", cases[0], "--json").stdout)["state"] == "done"

    # reader C arbitrates from a third workstation
    todo = json.loads(bcir(c, reads_db, "reads", "worklist", "--reader", "CC1", "--role", "arbitration",
                           "--json").stdout)
    assert [i["case_id"] for i in todo["arbitration"]["items"]] == [cases[1]]
    arbitration = [{"case_id": cases[1], "reader": "CC1", "side": side, "outcome": outcome, "role": "arbitration",
                    "reason": "a real mass on both views", "committed_at": "2026-12-01T10:00:00+00:00"}
                   for side, outcome in (("L", "assessment"), ("R", "routine"))]
    out = bcir(c, reads_db, "reads", "import", str(write_reads(tmp_path / "c.csv", arbitration)))
    assert out.stdout.startswith("imported 0 reads and 1 arbitrations")
    final = json.loads(bcir(c, reads_db, "reads", "status", cases[1], "--json").stdout)
    assert final["state"] == "done" and final["final"] == {"L": "assessment", "R": "routine"}

    exported = list(csv.DictReader(bcir(site, reads_db, "reads", "export").stdout.splitlines()))
    assert len(exported) == 14 and sum(r["kind"] == "arbitration" for r in exported) == 2
    assert {(r["reader"], r["role"]) for r in exported if r["kind"] == "read"} == {("AA", "first"), ("BB", "second")}
    plot = tmp_path / "stats.png"
    stats = json.loads(bcir(site, reads_db, "reads", "stats", "--json", "--plot", str(plot)).stdout)
    by_reader = {r["reader"]: r for r in stats["readers"]}
    # A: 3 reads, 1 recall (case 2), discordant with B on 1 of 3 double-read cases, upheld by C
    assert (by_reader["AA"]["reads"], by_reader["AA"]["recalls"], by_reader["AA"]["discordant"]) == (3, 1, 1)
    assert by_reader["AA"]["upheld"] == by_reader["AA"]["arbitrated_recalls"] == 1
    assert (by_reader["BB"]["reads"], by_reader["BB"]["as_second"], by_reader["BB"]["recalls"]) == (0 + 3, 3, 0)
    assert by_reader["CC1"]["arbitrations"] == 1 and by_reader["CC1"]["reads"] == 0
    assert (stats["site"]["done"], stats["site"]["double_read"], stats["site"]["arbitrated"]) == (3, 3, 1)
    assert stats["site"]["recalled"] == 1 and plot.stat().st_size > 0
    out_json = tmp_path / "reads.json"
    bcir(site, reads_db, "reads", "export", "--format", "json", "--out", str(out_json))
    assert len(json.loads(out_json.read_text())["rows"]) == 14


def test_an_import_with_bad_rows_imports_the_good_ones_and_lists_each_bad_one(demo_root, reads_db, tmp_path):
    site = tmp_path / "site"
    bcir(site, reads_db, "readers", "add", "AA", "Dr A")
    rows = (read_rows("X-1", "AA") + read_rows("X-2", "ZZ")  # an unknown reader
            + [{**r, "score": "7"} if r["side"] == "L" else r for r in read_rows("X-3", "AA")]  # off the scale
            + read_rows("X-4", "AA")[:1]  # one breast only
            + read_rows("X-5", "AA"))
    out = bcir(site, reads_db, "reads", "import", "--add-cases", str(write_reads(tmp_path / "r.csv", rows)), check=False)
    assert out.returncode == 2
    lines = out.stdout.splitlines()
    assert lines[0] == "imported 2 reads and 0 arbitrations; 2 cases added; 3 refused:"
    assert lines[1].startswith("  rows 3, 4: reader 'ZZ' is not one of this site's readers")
    assert lines[2].startswith("  rows 5, 6: breast L: score '7' is not on the birads scale")
    assert lines[3] == "  row 7: a read needs one row for each breast (L and R), not L"
    assert len(lines) == 4 and "Traceback" not in out.stderr
    listed = bcir(site, reads_db, "reads", "worklist", "--reader", "AA", "--json").stdout
    assert "X-2" not in listed and "X-3" not in listed  # a refused read puts no case on the list
    status = json.loads(bcir(site, reads_db, "reads", "status", "X-5", "--json").stdout)
    assert status["state"] == "second" and status["reads"] == 1
    unknown = bcir(site, reads_db, "reads", "status", "X-9", check=False)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "bcir reads status: case 'X-9' is not on this site's reading list"


def test_the_policy_is_shown_and_set_from_the_command_line(reads_db, tmp_path):
    site = tmp_path / "site"
    bcir(site, reads_db, "readers", "add", "AA", "Dr A")
    assert bcir(site, reads_db, "reads", "policy", "show").stdout.startswith("reading policy: arbitration; AI: after own read; scale: birads")
    bcir(site, reads_db, "reads", "policy", "set", "consensus", "--by", "AA", "--ai", "on_request", "--scale", "rcr")
    shown = json.loads(bcir(tmp_path / "other", reads_db, "reads", "policy", "show", "--json").stdout)
    assert shown["reading_policy"] == "consensus" and shown["ai_policy"] == "on_request" and shown["scale"] == "rcr"
    assert shown["history"][0]["set_by"] == "AA"
    refused = bcir(site, reads_db, "reads", "policy", "set", "single", "--by", "QQ", check=False)
    assert refused.returncode == 2 and "reader 'QQ' is not one of this site's readers" in refused.stderr


def test_the_store_benchmark_fills_an_empty_database_and_refuses_one_that_holds_reads(reads_db, tmp_path):
    site = tmp_path / "site"
    report = json.loads(bcir(site, reads_db, "reads", "bench", "--reads", "60", "--samples", "5", "--json").stdout)
    assert report["reads_stored"] == 65 and report["cases"] == 35 and report["dialect"] in reads_db
    assert report["commit_ms_median"] > 0 and report["worklists_ms_median"] > 0 and report["open_case_ms_median"] > 0
    # reader BB read the 30 filled cases second: they are BB's done; the 5 timed cases wait for BB's second read
    assert report["worklist_counts_reader_BB"]["second"] == 5
    assert report["worklist_counts_reader_BB"]["done"] == 30
    again = bcir(site, reads_db, "reads", "bench", "--reads", "10", check=False)
    assert again.returncode == 2 and "give it an empty database" in again.stderr
