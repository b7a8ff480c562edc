"""``bcir reviews``: list, export, check and back up the review log (see :mod:`model.reviews.store`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LIST_COLUMNS = ("#", "WHEN", "READER", "PATIENT", "VERDICT", "BI-RADS", "AI SHOWN", "MODEL", "COMMENT")


def _open(args: argparse.Namespace):
    from model.reviews.store import ReviewStore

    return ReviewStore(Path(args.db) if args.db else None, create=False)


def _cmd_list(args: argparse.Namespace) -> int:
    from model.reviews.records import REVIEW_COLUMNS
    from model.reviews.words import local_time, score_text, verdict_text

    with _open(args) as store:
        path = store.path
        reviews = store.history(args.patient, reader=args.reader) if args.patient else store.all(reader=args.reader)
    if args.json:
        json.dump({"reviews": [{c: getattr(r, c) for c in REVIEW_COLUMNS} for r in reviews]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not reviews:
        print(f"no reviews{' that match' if args.reader is not None or args.patient else ''} in {path}")
        return 0
    rows = [(str(r.id), local_time(r.created), r.reader, r.patient_id, verdict_text(r), r.birads, score_text(r),
             r.model_version, " ".join(r.comment.split())) for r in reviews]
    widths = [max(len(cells[i]) for cells in [LIST_COLUMNS, *rows]) for i in range(len(LIST_COLUMNS) - 1)]
    for cells in [LIST_COLUMNS, *rows]:
        print("  ".join([*(c.ljust(w) for c, w in zip(cells, widths)), cells[-1]]).rstrip())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from model.reviews.export import export_csv

    with _open(args) as store:
        count = export_csv(store, args.out, reader=args.reader)
    print(f"{count} reviews exported to {args.out}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    with _open(args) as store:
        state = store.state
        data = {"path": str(store.path), "reviews": state.reviews, "last_id": state.last_id, "head": state.head,
                "log_id": state.log_id, "chain_migrated": state.chain_migrated, "anchor": str(store.anchor_path)}
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(f"{data['path']}: {state.reviews} reviews, every one matches the hash chain and the anchor")
    print(f"head {state.head} (write it down elsewhere to be able to tell later that nothing was removed from the end)")
    if state.chain_migrated:
        print(f"the chain was added on {state.chain_migrated.get('at')} over the {state.chain_migrated.get('reviews')} "
              "reviews there were then: changes made to those before that day cannot be seen")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    with _open(args) as store:
        result = store.backup(args.dest)
    print(f"backed up {result.reviews} reviews to {result.path} (head {result.head[:16]}...)")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``reviews`` command (``list``, ``export``, ``verify``, ``backup``) to ``bcir``'s subparsers."""
    p = subparsers.add_parser("reviews", help="list or export the append-only review log, check it, or back it up")
    sub = p.add_subparsers(dest="reviews_command", required=True, metavar="ACTION")
    db_help = "the review log (default: reviews.sqlite in the user data folder, or $BCIR_DATA_DIR)"
    reader_help = "only this reader's reviews (what the app shows and exports to that reader in blinded reading)"

    s = sub.add_parser("list", help="every review, oldest first: a table, or JSON with every column")
    s.add_argument("--db", help=db_help)
    s.add_argument("--reader", help=reader_help)
    s.add_argument("--patient", help="only this patient's reviews")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    s.set_defaults(func=_cmd_list)

    e = sub.add_parser("export", help="write every review to a CSV file, the same file as the app's export")
    e.add_argument("out", metavar="OUT.csv", help="the CSV file to write (atomically)")
    e.add_argument("--db", help=db_help)
    e.add_argument("--reader", help=reader_help)
    e.set_defaults(func=_cmd_export)

    v = sub.add_parser("verify", help="check every review against the hash chain and the anchor; print the head hash")
    v.add_argument("--db", help=db_help)
    v.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    v.set_defaults(func=_cmd_verify)

    b = sub.add_parser("backup", help="a consistent copy of the log (WAL included) by SQLite's online backup, "
                                      "written atomically; safe while the app is open")
    b.add_argument("dest", help="the backup file, or a folder for reviews-backup-<UTC time>.sqlite")
    b.add_argument("--db", help=db_help)
    b.set_defaults(func=_cmd_backup)
    return p


__all__ = ["register"]
