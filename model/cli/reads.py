"""``bcir readers`` and ``bcir reads``: the site's readers, its reading list, worklists, import, export, statistics
and reading policy, in the shared reading store (see :mod:`model.reading.store`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DB_HELP = ("the reading database: sqlite:///ABSOLUTE/PATH or postgresql://USER@HOST:PORT/DBNAME (default: "
           "$BCIR_READS_DB, else reads.sqlite in the user data folder)")


def _store(args: argparse.Namespace):
    from model.reading.store import ReadStore

    return ReadStore(args.db)


def _print_json(data) -> None:
    json.dump(data, sys.stdout, indent=1)
    sys.stdout.write("\n")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cells[i])) for cells in [header, *rows]) for i in range(len(header))]
    for cells in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip())


# -- readers -------------------------------------------------------------------------------------------------------

def _cmd_readers_add(args: argparse.Namespace) -> int:
    from model.reading.reads import Reader

    with _store(args) as store:
        reader = store.add_reader(Reader(args.code.upper(), args.name), login=args.login)
    print(f"reader {reader.code} ({reader.name}) added" + (f", tied to login {args.login}" if args.login else ""))
    return 0


def _cmd_readers_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        readers, logins = store.readers(), store.logins()
    if args.json:
        _print_json({"readers": [{**r.to_json(), "login": logins.get(r.code)} for r in readers]})
    elif not readers:
        print("no readers yet (`bcir readers add CODE NAME`)")
    else:
        _table(("CODE", "NAME", "LOGIN"), [(r.code, r.name, logins.get(r.code) or "-") for r in readers])
    return 0


# -- reads ---------------------------------------------------------------------------------------------------------

def _cmd_add_cases(args: argparse.Namespace) -> int:
    from model.reading.transfer import add_cases_of_folder

    with _store(args) as store:
        added, present = add_cases_of_folder(store, Path(args.root))
    print(f"{added} cases added to the reading list" + (f", {present} were on it already" if present else ""))
    return 0


def _cmd_worklist(args: argparse.Namespace) -> int:
    with _store(args) as store:
        lists = store.worklists(args.reader.upper())
    roles = [args.role] if args.role else list(lists)
    if args.json:
        _print_json({role: {"count": lists[role].count, "items": [
            {"case_id": i.case_id, "state": i.state, "waiting_since": i.waiting_since, "waiting_s": round(i.waiting_s, 1)}
            for i in lists[role].items]} for role in roles})
        return 0
    for role in roles:
        worklist = lists[role]
        print(f"{role}: {worklist.count} case{'s' if worklist.count != 1 else ''}")
        if worklist.items and (args.role or role != "done"):
            _table(("  CASE", "STATE", "WAITING"), [(f"  {i.case_id}", i.state, i.waited)
                                                   for i in worklist.items])
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from model.reading.transfer import export_text, write_export

    with _store(args) as store:
        if args.out:
            count = write_export(store, Path(args.out), args.format)
            print(f"{count} rows exported to {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(export_text(store.export(), args.format))
    return 0


def _cmd_sr(args: argparse.Namespace) -> int:
    """Each case's current read by ``--reader`` as DICOM SRs (one per study of the case) in ``--out``."""
    from model.data.study_index import build_index
    from model.errors import DataError
    from model.pacs.read_report import write_read_reports
    from model.reading.transfer import case_images

    index = build_index(Path(args.folder))
    written, problems = [], []
    with _store(args) as store:
        names = {r.code: r.name for r in store.readers()}
        for case in args.cases:
            own = [r for r in store.reads(case, args.reader) if r.reader == args.reader]
            if not own:
                problems.append(f"{case}: {args.reader} has no committed read of it")
                continue
            images = case_images(index, case)
            try:
                if not images:
                    raise DataError(f"{args.folder} holds no image of it")
                objects = write_read_reports(own[0], names.get(args.reader, args.reader), images, Path(args.out))
            except DataError as exc:
                problems.append(f"{case}: {exc}")
                continue
            written += [{"case_id": case, "path": str(o.path), "sop_instance_uid": o.sop_instance_uid,
                         "groups": o.segments} for o in objects]
    if args.json:
        _print_json({"written": written, "problems": problems})
    else:
        for item in written:
            print(f"{item['case_id']}: {item['path']} ({item['groups']} groups)")
        for line in problems:
            print(line, file=sys.stderr)
    return 1 if problems else 0


def _cmd_import(args: argparse.Namespace) -> int:
    from model.reading.transfer import import_reads

    with _store(args) as store:
        result = import_reads(store, Path(args.file), add_cases=args.add_cases)
    if args.json:
        _print_json(result.to_json())
    else:
        print(f"imported {result.reads} reads and {result.arbitrations} arbitrations"
              + (f"; {result.cases_added} cases added" if result.cases_added else "")
              + (f"; {len(result.refused)} refused:" if result.refused else ""))
        for rows, why in result.refused:
            print(f"  {rows}: {why}")
    return 0 if not result.refused else 2


def _cmd_stats(args: argparse.Namespace) -> int:
    from model.reading.stats import format_stats, plot_stats, reading_stats

    with _store(args) as store:
        stats = reading_stats(store, ai_threshold=args.ai_threshold)
    if args.plot:
        plot_stats(stats, Path(args.plot))
    if args.json:
        _print_json(stats.to_json())
    else:
        print(format_stats(stats))
        if args.plot:
            print(f"plots written to {args.plot}")
    return 0


def _cmd_policy(args: argparse.Namespace) -> int:
    with _store(args) as store:
        if args.policy_action == "set":
            store.set_policy(args.policy, by=args.by.upper(), ai=args.ai, scale=args.scale)
        policy, ai, scale, history = store.policy(), store.ai_policy(), store.scale(), store.policy_history()
    if args.json:
        _print_json({"reading_policy": policy, "ai_policy": ai, "scale": scale, "history": history})
    else:
        print(f"reading policy: {policy}; AI: {ai.replace('_', ' ')}; scale: {scale}")
        last = next((h for h in reversed(history) if h["name"] == "reading_policy"), None)
        print(f"set by {last['set_by']} at {last['set_at']}" if last else "the default: never set at this site")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from model.reading.bench import run_read_bench

    with _store(args) as store:
        report = run_read_bench(store, args.reads, samples=args.samples, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        _print_json(report)
    else:
        print(f"{report['dialect']} {report['database']}: {report['reads_stored']} reads in {report['cases']} cases "
              f"(filled in {report['fill_seconds']} s, {report['fill_reads_per_s']} reads/s)")
        print(f"commit: median {report['commit_ms_median']} ms, p95 {report['commit_ms_p95']} ms over "
              f"{report['samples']} reads; worklists: median {report['worklists_ms_median']} ms; open a case: median "
              f"{report['open_case_ms_median']} ms")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    with _store(args) as store:
        status = store.status(args.case)
    data = {"case_id": args.case, "state": status.state, "final": status.final, "discordant": list(status.discordant),
            "reads": status.reads}
    if args.json:
        _print_json(data)
    else:
        final = ", ".join(f"{side} {outcome}" for side, outcome in (status.final or {}).items())
        print(f"{args.case}: {status.state}, {status.reads} reads"
              + (f", discordant on {', '.join(status.discordant)}" if status.discordant else "")
              + (f"; final: {final}" if final else ""))
    return 0


def register(subparsers) -> list[argparse.ArgumentParser]:
    """Add ``readers`` (add, list) and ``reads`` (add-cases, worklist, status, import, export, sr, stats, policy,
    bench)."""
    from model.reading.store import AI_POLICIES
    from model.reading.vocab import POLICIES, ROLES

    readers = subparsers.add_parser("readers", help="the site's readers: add one, or list them")
    sub = readers.add_subparsers(dest="readers_command", required=True, metavar="ACTION")
    p = sub.add_parser("add", help="add a reader (a code names one reader for good)")
    p.add_argument("code", help="2 to 8 letters or digits, e.g. AB or RAD01")
    p.add_argument("name", help="the reader's name as the worklists show it")
    p.add_argument("--login", help="the workstation login that alone may read as this reader (default: none; where no "
                                   "reader has one, any login chooses from the whole list)")
    p.add_argument("--db", help=DB_HELP)
    p.set_defaults(func=_cmd_readers_add)
    p = sub.add_parser("list", help="list the site's readers")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_readers_list)

    reads = subparsers.add_parser("reads", help="screening double reading: worklists, import, export, stats, policy")
    sub = reads.add_subparsers(dest="reads_command", required=True, metavar="ACTION")
    p = sub.add_parser("add-cases", help="put a study folder's cases on the reading list (with their known outcome)")
    p.add_argument("root", help="a study folder: CBIS-DDSM, the demo studies, or a labelled folder")
    p.set_defaults(func=_cmd_add_cases)
    p = sub.add_parser("worklist", help="a reader's worklists: first reads, second reads, to arbitrate, done")
    p.add_argument("--reader", required=True, metavar="CODE")
    p.add_argument("--role", choices=ROLES, help="only this worklist (default: all four, with counts)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_worklist)
    p = sub.add_parser("status", help="where one case stands")
    p.add_argument("case")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_status)
    p = sub.add_parser("import", help="import reads and arbitrations from a CSV (columns: see the README)")
    p.add_argument("file")
    p.add_argument("--add-cases", action="store_true", help="put cases the store does not know on the list first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_import)
    p = sub.add_parser("export", help="every read, one row per breast, and every arbitration")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", metavar="FILE", help="write here (atomically) instead of to standard output")
    p.set_defaults(func=_cmd_export)
    p = sub.add_parser("sr", help="a reader's committed reads as DICOM SRs (TID 1500) for the PACS (bcir pacs send)")
    p.add_argument("cases", nargs="+", metavar="CASE")
    p.add_argument("--reader", required=True, metavar="CODE", help="whose read")
    p.add_argument("--folder", required=True, help="the study folder the cases' images are in")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_sr)
    p = sub.add_parser("stats", help="per reader and per site: volume, recall, disagreement, arbitration, accuracy")
    p.add_argument("--ai-threshold", type=float, metavar="P",
                   help="the AI recalls a breast at this p(malignant) or above (default: the operating point on the "
                        "card of the model that scored the results, else 0.5)")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the figures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_stats)
    p = sub.add_parser("policy", help="show or set the site's reading policy (stored in the database)")
    actions = p.add_subparsers(dest="policy_action", required=True, metavar="show|set")
    show = actions.add_parser("show", help="the policy in force and who set it")
    show.add_argument("--json", action="store_true")
    show.add_argument("--db", help=DB_HELP)
    show.set_defaults(func=_cmd_policy)
    setp = actions.add_parser("set", help="set the policy (a new entry; the latest wins)")
    setp.add_argument("policy", choices=POLICIES)
    setp.add_argument("--by", required=True, metavar="CODE", help="the reader who sets it")
    setp.add_argument("--ai", choices=AI_POLICIES, help="hide the AI until the reader's own read is in, or show it "
                                                        "on request")
    setp.add_argument("--scale", choices=("birads", "rcr"), help="the score scale: BI-RADS or the UK RCR 1-5")
    setp.add_argument("--json", action="store_true")
    setp.add_argument("--db", help=DB_HELP)
    setp.set_defaults(func=_cmd_policy)
    p = sub.add_parser("bench", help="fill an EMPTY database with synthetic reads and time commits and worklists")
    p.add_argument("--reads", type=int, default=100_000, help="reads to store first (default 100000)")
    p.add_argument("--samples", type=int, default=200, help="commits to time (default 200)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)
    for action in ("add-cases", "worklist", "status", "import", "export", "sr", "stats", "bench"):
        sub.choices[action].add_argument("--db", help=DB_HELP)
    return [readers, reads]


__all__ = ["register"]
