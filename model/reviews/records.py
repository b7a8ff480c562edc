"""One review as the log stores it: its fields, their allowed values, and the status a verdict gives a patient."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from model.errors import ReviewRefused

BIRADS = ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6")
VERDICTS = ("agree", "disagree", "own")
PHASES = ("blinded", "unblinded", "open")  # the phase a review was recorded in (model.reviews.protocol)
STATUSES = ("unread", "reviewed", "disagreement")

# Every column of a review, in the log's order: the hash chain covers them in this order and the CSV export
# writes them so.
REVIEW_COLUMNS = (
    "id", "created", "reader", "patient_id", "image_path", "model_version",
    "ai_score_shown", "ai_shown", "verdict", "birads", "comment", "blinded", "phase",
)


def normalize_birads(value) -> str:
    """``'4a'`` -> ``'4A'``, ``3`` -> ``'3'``; anything else is refused (:class:`ReviewRefused`)."""
    text = str(value).strip().upper() if value is not None else ""
    if text not in BIRADS:
        raise ReviewRefused(f"BI-RADS must be one of {', '.join(BIRADS)}, not {str(value)!r:.40}")
    return text


@dataclass(frozen=True)
class Review:
    """One reader review. ``id`` and ``created`` are filled in by :meth:`ReviewStore.record`.

    Verdicts: ``agree`` / ``disagree`` is the reader's opinion of the AI result they saw (``ai_shown`` True);
    ``own`` is a blinded read committed before the AI is revealed. Which verdict goes with which phase is the
    protocol's (:func:`model.reviews.protocol.check_phase`).
    """

    reader: str
    patient_id: str
    verdict: str
    birads: str
    comment: str = ""
    image_path: str | None = None  # None: a case-level review
    model_version: str = ""
    ai_score_shown: float | None = None  # what the reader saw; None while blinded
    ai_shown: bool = False
    blinded: bool = False
    phase: str = "open"
    id: int | None = None
    created: str | None = None

    def validated(self) -> "Review":
        """A copy with every field in its range and of its type (BI-RADS normalised); :class:`ReviewRefused`
        (one line) otherwise."""
        if not isinstance(self.reader, str) or not self.reader.strip():
            raise ReviewRefused("reader name is required")
        if not isinstance(self.patient_id, str) or not self.patient_id.strip():
            raise ReviewRefused("patient ID is required")
        if self.verdict not in VERDICTS:
            raise ReviewRefused(f"verdict must be one of {', '.join(VERDICTS)}, not {str(self.verdict)!r:.40}")
        if self.phase not in PHASES:
            raise ReviewRefused(f"phase must be one of {', '.join(PHASES)}, not {str(self.phase)!r:.40}")
        birads = normalize_birads(self.birads)
        score = self.ai_score_shown
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise ReviewRefused("AI score shown must be a number in [0, 1]") from None
            if not math.isfinite(score) or not 0.0 <= score <= 1.0:
                raise ReviewRefused("AI score shown must be a number in [0, 1]")
        return replace(
            self,
            reader=self.reader.strip(),
            patient_id=self.patient_id.strip(),
            birads=birads,
            ai_score_shown=score,
            ai_shown=bool(self.ai_shown),
            blinded=bool(self.blinded),
            comment="" if self.comment is None else str(self.comment),
            image_path=None if self.image_path in (None, "") else str(self.image_path),
            model_version="" if self.model_version is None else str(self.model_version),
        )

    @classmethod
    def from_row(cls, row) -> "Review":
        """The review in a row of the ``reviews`` table (any mapping from column name to value)."""
        return cls(
            id=row["id"],
            created=row["created"],
            reader=row["reader"],
            patient_id=row["patient_id"],
            image_path=row["image_path"],
            model_version=row["model_version"],
            ai_score_shown=row["ai_score_shown"],
            ai_shown=bool(row["ai_shown"]),
            verdict=row["verdict"],
            birads=row["birads"],
            comment=row["comment"],
            blinded=bool(row["blinded"]),
            phase=row["phase"],
        )


def status_of_verdict(verdict: str) -> str:
    """A reviewed patient's status from its latest verdict (an own read counts as reviewed)."""
    return "disagreement" if verdict == "disagree" else "reviewed"
