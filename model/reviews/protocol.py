"""The blinded-reading protocol: the phases of a case, what may be recorded in each, and what the reader may see.

*Blinded reading* (a mode kept in the review log): the AI and the ground truth stay hidden until the reader has
recorded their own read of the case (verdict ``own``, phase ``blinded``); that reveals them, and the reader then
says whether they agree with the AI (phase ``unblinded``). A case the reader has already seen unblinded (the AI
and the truth on screen, in open reading) cannot be read blind any more. A reader sees only their own reviews,
so double reading stays independent.

*Open reading*: the AI is shown and the reader agrees or disagrees with it (phase ``open``).

Either way an agree/disagree is about the whole case: the AI must have a result, for every view.

The store checks each record against these rules in the transaction that writes it
(:meth:`model.reviews.store.ReviewStore.record`), so no client can skip a step; a client calls the same checks
first to tell the reader why nothing was recorded. A refusal is a :class:`~model.errors.ReviewRefused` whose
text is the line the reader is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import ReviewRefused
from model.reviews.records import Review, normalize_birads

# The phase of a case for one reader, as a client shows it
NO_CASE, OPEN, BLIND, REVEALED = "no case", "open", "blind", "revealed"

NO_CASE_TO_REVIEW = "No case to review."
OWN_READ_FIRST = "Record your own read first: the AI is hidden in blinded reading."
NO_AI_RESULT = "The AI has no result for this case yet: nothing to agree or disagree with."
AI_INCOMPLETE = "The AI has not answered for every view yet: wait for the case score."
OWN_READ_IS_BLIND = "Your own read is recorded in blinded reading, before the AI and the truth are shown"
OWN_READ_BEFORE_VERDICT = "blinded protocol: record the reader's own read (verdict 'own') before the AI verdict"


@dataclass(frozen=True)
class CaseState:
    """What the log says about one reader and one case: the reading mode, the reader's newest review of the case
    (None: none yet) and whether they have seen it unblinded."""

    blinded_mode: bool
    latest: Review | None = None
    seen_unblinded: bool = False

    @property
    def own_read_pending(self) -> bool:
        """The reader's newest record of the case is a blinded own read: the AI verdict comes next."""
        return self.latest is not None and self.latest.verdict == "own" and self.latest.phase == "blinded"

    @property
    def phase(self) -> str:
        """OPEN, BLIND (AI and truth hidden, an own read to record) or REVEALED (own read recorded, AI shown)."""
        if not self.blinded_mode:
            return OPEN
        if self.latest is None:
            return OPEN if self.seen_unblinded else BLIND  # seen unblinded: it cannot be read blind any more
        if self.own_read_pending:
            return REVEALED
        return OPEN  # this reader has seen the AI on this case: further reviews are open amendments


# -- what the reader may see ------------------------------------------------------------------------------------

def hides_ai_and_truth(phase: str, blinded_mode: bool) -> bool:
    """The AI's results and the ground truth are hidden: on a blind case, and between cases in blinded reading
    (what the last case showed must not show through)."""
    return phase == BLIND or (phase == NO_CASE and blinded_mode)


def shows_unblinded(phase: str) -> bool:
    """A case on screen in this phase is seen unblinded (AI and truth shown): it is marked so for the reader."""
    return phase in (OPEN, REVEALED)


def visible_reader(reader: str, blinded_mode: bool) -> str | None:
    """Whose reviews the reader may see: only their own in blinded reading (a reader with no name yet has none),
    everyone's (None) in open reading."""
    return reader.strip() if blinded_mode else None


# -- what may be recorded when ----------------------------------------------------------------------------------

def check_phase(review: Review) -> None:
    """The verdict, the AI shown and the phase of one review fit together; :class:`ReviewRefused` otherwise."""
    if review.verdict == "own":
        if review.ai_shown or review.ai_score_shown is not None:
            raise ReviewRefused("an 'own' read is made without the AI: ai_shown must be False and no AI score")
        if review.phase != "blinded" or not review.blinded:
            raise ReviewRefused("an 'own' read belongs to the blinded phase")
        return
    if not review.ai_shown:
        raise ReviewRefused(f"verdict {review.verdict!r} is about the AI result, so ai_shown must be True")
    if review.phase == "blinded":
        raise ReviewRefused("the blinded phase records only the reader's 'own' read")
    if review.phase == "unblinded" and not review.blinded:
        raise ReviewRefused("an unblinded verdict belongs to a blinded read (blinded must be True)")
    if review.phase == "open" and review.blinded:
        raise ReviewRefused("an open review is not blinded (use phase 'unblinded' after a blinded read)")


def check_own_read(phase: str, blinded_mode: bool) -> None:
    """An own read is recorded only while the case is blind for the reader."""
    if phase != BLIND:
        raise ReviewRefused(OWN_READ_IS_BLIND + (" (you have seen this case unblinded)."
                                                 if phase == OPEN and blinded_mode else "."))


def check_verdict(phase: str, ai_score: float | None, ai_complete: bool) -> None:
    """An agree/disagree needs a case whose AI the reader may see, and the AI's result for every view of it."""
    if phase == NO_CASE:
        raise ReviewRefused(NO_CASE_TO_REVIEW)
    if phase == BLIND:
        raise ReviewRefused(OWN_READ_FIRST)
    if ai_score is None:
        raise ReviewRefused(NO_AI_RESULT)
    if not ai_complete:
        raise ReviewRefused(AI_INCOMPLETE)


def check_record(review: Review, state: CaseState, *, ai_complete: bool = True) -> None:
    """Whether ``review`` (validated) may be recorded now, given what the log says about its reader and case.
    The store calls this in the transaction that writes the review."""
    check_phase(review)
    if review.verdict == "own":
        # an own read is a blinded read whatever the mode: first record of the case, not seen unblinded
        check_own_read(CaseState(True, state.latest, state.seen_unblinded).phase, True)
        return
    if review.phase == "unblinded" and not state.own_read_pending:
        raise ReviewRefused(OWN_READ_BEFORE_VERDICT)
    check_verdict(state.phase, review.ai_score_shown, ai_complete)


# -- the records a step makes -----------------------------------------------------------------------------------

def own_read(reader: str, patient_id: str, birads, comment: str = "", *, image_path: str | None = None,
             model_version: str = "") -> Review:
    """The reader's own read, made without the AI."""
    return Review(reader=reader, patient_id=patient_id, image_path=image_path, model_version=model_version,
                  verdict="own", birads=birads, comment=comment, ai_shown=False, ai_score_shown=None, blinded=True,
                  phase="blinded")


def verdict_on_ai(phase: str, reader: str, patient_id: str, verdict: str, birads, comment: str = "", *,
                  ai_score_shown: float | None, model_version: str = "", image_path: str | None = None) -> Review:
    """Agree/disagree with the AI result shown: after the own read when the case was REVEALED, else open."""
    unblinded = phase == REVEALED
    return Review(reader=reader, patient_id=patient_id, image_path=image_path, model_version=model_version,
                  verdict=verdict, birads=birads, comment=comment, ai_shown=True, ai_score_shown=ai_score_shown,
                  blinded=unblinded, phase="unblinded" if unblinded else "open")


class BlindedSession:
    """The blinded double-reading protocol for one reader and case (or image).

    1. :meth:`commit_own` stores the reader's own BI-RADS and comment without the AI;
    2. only then :attr:`ai_visible` turns True and the UI may reveal the AI;
    3. :meth:`commit_verdict` stores agree/disagree with the AI score as shown.

    Calling :meth:`commit_verdict` first raises :class:`ReviewRefused` (the store checks the log too, so a second
    session or a restart cannot skip step 1).
    """

    def __init__(self, store, reader: str, patient_id: str, image_path: str | None = None, model_version: str = ""):
        self.store = store  # a ReviewStore
        self.reader = reader
        self.patient_id = patient_id
        self.image_path = image_path
        self.model_version = model_version
        self.own_id: int | None = None
        self.own_birads: str | None = None
        self.verdict_id: int | None = None

    @property
    def ai_visible(self) -> bool:
        return self.own_id is not None

    def commit_own(self, birads, comment: str = "") -> int:
        if self.own_id is not None:
            raise ReviewRefused("the own read of this blinded session is already recorded")
        self.own_id = self.store.record(own_read(self.reader, self.patient_id, birads, comment,
                                                 image_path=self.image_path, model_version=self.model_version))
        self.own_birads = normalize_birads(birads)
        return self.own_id

    def commit_verdict(self, verdict: str, ai_score_shown: float | None, birads=None, comment: str = "", *,
                       ai_complete: bool = True) -> int:
        if self.own_id is None:
            raise ReviewRefused("blinded protocol: record the reader's own read before revealing the AI")
        if self.verdict_id is not None:
            raise ReviewRefused("the AI verdict of this blinded session is already recorded")
        if verdict not in ("agree", "disagree"):
            raise ReviewRefused(f"after the reveal the verdict must be 'agree' or 'disagree', not {str(verdict)!r:.40}")
        self.verdict_id = self.store.record(verdict_on_ai(
            REVEALED, self.reader, self.patient_id, verdict, self.own_birads if birads is None else birads, comment,
            ai_score_shown=ai_score_shown, model_version=self.model_version, image_path=self.image_path,
        ), ai_complete=ai_complete)
        return self.verdict_id
