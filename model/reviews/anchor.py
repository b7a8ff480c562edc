"""The review log's anchor, ``reviews.sqlite.anchor.json`` next to it: the log's id, count and head hash after
each record, so that reviews cut from the end of the log, or a log swapped for another, are seen at open."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from model.errors import ReviewLogTampered, failure_reason
from model.fileio import atomic_write_json
from model.reviews.chain import LogState

log = logging.getLogger(__name__)

ANCHOR_SUFFIX = ".anchor.json"


class Anchor:
    """The anchor of the review log at ``log_path``. A recorded anchor is the dict :meth:`read` returns:
    ``log_id``, ``reviews`` (the count) and ``head`` (the hash of review number ``reviews``)."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.path = log_path.with_name(log_path.name + ANCHOR_SUFFIX)

    def read(self) -> dict | None:
        """The recorded anchor, or None when there is none; :class:`ReviewLogTampered` when it is not one this
        app wrote."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ReviewLogTampered(f"the anchor {self.path} of the review log cannot be read "
                                    f"({failure_reason(exc)}): move it away only if you know why it changed") from exc
        ok = (isinstance(data, dict) and isinstance(data.get("log_id"), str) and isinstance(data.get("head"), str)
              and isinstance(data.get("reviews"), int) and not isinstance(data.get("reviews"), bool)
              and data["reviews"] >= 0)
        if not ok:
            raise ReviewLogTampered(f"the anchor {self.path} of the review log is not one B-Cir Review "
                                    "wrote: move it away only if you know why it changed")
        return data

    def check(self, recorded: dict, state: LogState, at_recorded: tuple[int, str] | None) -> None:
        """The log whose chain checked as ``state`` is the one ``recorded`` describes, with nothing cut from its
        end; ``at_recorded`` is (id, hash) of its review number ``recorded['reviews']``."""
        name = self.path.name
        if recorded["log_id"] != state.log_id:
            raise ReviewLogTampered(
                f"the review log {self.log_path} is not the log its anchor {name} describes (another log id): "
                "restore the right file, or move the anchor away if you replaced the log on purpose")
        if state.reviews < recorded["reviews"]:
            raise ReviewLogTampered(
                f"the review log {self.log_path} holds {state.reviews} reviews, but its anchor {name} records "
                f"{recorded['reviews']}: reviews were removed from its end, or this is an older copy; restore the "
                "newest backup, or move the anchor away if you restored an older copy on purpose")
        if recorded["reviews"] and (at_recorded is None or at_recorded[1] != recorded["head"]):
            raise ReviewLogTampered(
                f"the review log {self.log_path} does not match its anchor {name} at review {recorded['reviews']}: "
                "the log was rewritten outside B-Cir Review; restore it from a backup")

    def advance(self, state: LogState, known: dict | None = None) -> None:
        """Record ``state`` unless the anchor already holds as many reviews of this log: it never moves back.
        ``known``: the anchor as just read (at a check); when it holds ``state`` nothing is read or written. Else
        the anchor is read again right before writing, since another process may have moved it ahead meanwhile. A
        failed write is logged: the reviews are stored, only the tail's protection waits for the next record."""
        if _holds(known, state):
            return
        try:
            current = self.read()
        except ReviewLogTampered:  # unreadable: written anew
            current = None
        if _holds(current, state):
            return
        try:
            atomic_write_json(self.path, {
                "about": "count and last hash of the review log next to it; B-Cir Review refuses a log that has "
                         "fewer reviews or another hash here (see README, Reviews)",
                "log_id": state.log_id, "reviews": state.reviews, "last_id": state.last_id, "head": state.head,
                "updated": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            })
        except OSError as exc:
            log.warning("review log anchor not written: %s", failure_reason(exc))


def _holds(recorded: dict | None, state: LogState) -> bool:
    """The recorded anchor already covers ``state``: the same log, at least as many reviews."""
    return bool(recorded) and recorded["log_id"] == state.log_id and recorded["reviews"] >= state.reviews
