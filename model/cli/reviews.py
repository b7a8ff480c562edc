"""``bcir reviews``: check the review log and back it up safely (see :mod:`model.reviews.store`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _open(args: argparse.Namespace):
    from model.reviews.store import ReviewStore

    return ReviewStore(Path(args.db) if args.db else None, create=False)


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
    """Add the ``reviews`` command (``verify``, ``backup``) to ``bcir``'s subparsers."""
    p = subparsers.add_parser("reviews", help="check the append-only review log, or back it up safely")
    sub = p.add_subparsers(dest="reviews_command", required=True, metavar="ACTION")
    db_help = "the review log (default: reviews.sqlite in the user data folder, or $BCIR_DATA_DIR)"

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
