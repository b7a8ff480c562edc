"""How fast the reading store is with a site's years of reads: commit latency, worklist and case-open times, measured
on an empty database filled through the store's own API (every read passes the protocol, as a real one does)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from model.errors import ReadRefused
from model.reading.reads import BreastRead, Read, Reader
from model.reading.store import ReadStore

READERS = (("BA", "Bench reader A"), ("BB", "Bench reader B"), ("BC", "Bench reader C"))
DISCORDANT_SHARE = 0.01  # of cases: one reader recalls a breast the other calls normal (screening: about 0.5-1 %)


def _read(case: str, reader: str, recall_left: bool, opened: str) -> Read:
    left = BreastRead("L", "assessment", "4A", "birads", "b") if recall_left else BreastRead("L", "routine", "1", "birads", "b")
    return Read(case, reader, (left, BreastRead("R", "routine", "1", "birads", "b")), opened, None)


def _median_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 3)


def run_read_bench(store: ReadStore, reads: int = 100_000, *, samples: int = 200, seed: int = 0,
                   log: Callable[[str], None] = print) -> dict:
    """Fill ``store`` (which must hold no reads) with ``reads`` reads, two per case, then time commits, worklists
    and case opens with that many reads stored. The medians are of ``samples`` commits and of 20 worklist and
    case-open calls."""
    if store.export():
        raise ReadRefused("bcir reads bench writes its own synthetic reads: give it an empty database, not one that "
                          "holds reads")
    rng = random.Random(seed)
    for code, name in READERS:
        store.add_reader(Reader(code, name))
    opened = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cases = reads // 2
    start = time.perf_counter()
    for n in range(cases):
        case = f"bench-{n:07d}"
        store.add_case(case)
        discordant = rng.random() < DISCORDANT_SHARE
        at = (opened + timedelta(minutes=n)).isoformat()
        store.commit(_read(case, "BA", discordant, at))
        store.commit(_read(case, "BB", False, at))
        if (n + 1) % 5000 == 0:
            log(f"  {2 * (n + 1)} reads stored ({time.perf_counter() - start:.0f} s)")
    fill_s = time.perf_counter() - start

    commit_s, add_s = [], []
    for n in range(samples):
        case = f"bench-new-{n:05d}"
        t0 = time.perf_counter()
        store.add_case(case)
        t1 = time.perf_counter()
        store.commit(_read(case, "BA", False, opened.isoformat()))
        t2 = time.perf_counter()
        add_s.append(t1 - t0)
        commit_s.append(t2 - t1)
    worklist_s, open_s = [], []
    for n in range(20):
        t0 = time.perf_counter()
        lists = store.worklists("BB")
        t1 = time.perf_counter()
        store.open_case(f"bench-{rng.randrange(cases):07d}", "BC")
        t2 = time.perf_counter()
        worklist_s.append(t1 - t0)
        open_s.append(t2 - t1)
    counts = {role: w.count for role, w in lists.items()}
    return {
        "database": store.db.name, "dialect": store.db.dialect, "reads_stored": 2 * cases + samples, "cases": cases + samples,
        "fill_seconds": round(fill_s, 1), "fill_reads_per_s": round(2 * cases / fill_s, 1) if fill_s else None,
        "commit_ms_median": _median_ms(commit_s), "commit_ms_p95": round(sorted(commit_s)[int(0.95 * len(commit_s))] * 1000, 3),
        "add_case_ms_median": _median_ms(add_s), "worklists_ms_median": _median_ms(worklist_s),
        "open_case_ms_median": _median_ms(open_s), "worklist_counts_reader_BB": counts, "samples": samples,
    }


__all__ = ["run_read_bench"]
