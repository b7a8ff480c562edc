"""The site's reading policy as pure rules: per-breast discordance, and what a case needs next and its final outcome.

Discordance is per breast: on a side, one reader recalls the woman for a suspected abnormality (``RECALLS``:
assessment or clinical) and the other does not. Reader 1 recalling the left breast and reader 2 the right is a
disagreement on both breasts.

A technical recall is not a recall for suspicion: it retakes an image. So a technical recall against a routine read
is not discordant; the case goes on, and its final outcome on that side is "technical" (the view is retaken).

Policies (``vocab.POLICIES``):

- ``single``: one read decides.
- ``recall_if_either``: two reads; on each side the final outcome is the more serious of the two.
- ``consensus`` / ``arbitration``: two reads; concordant, they decide; discordant, the case waits in the state
  "consensus" (the two readers agree together) or "arbitration" (a third reader decides) until an
  :class:`Arbitration` records the final outcome per side.

Where the two reads decide, the final outcome on a side is the more serious of the two (clinical > assessment >
technical > routine): under ``recall_if_either`` that is the recall of either reader; for a concordant read it is
the shared decision (both recall: the more serious recall; neither recalls: technical where either asked for a
retake). An arbitration, once recorded, is final under any policy, so a later change of the site's policy never
undoes a decision taken on a woman's recall.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import ReadRefused
from model.reading.reads import Arbitration, Read
from model.reading.vocab import POLICIES, SIDES, recalls

# most serious last
SERIOUSNESS = ("routine", "technical", "assessment", "clinical")


@dataclass(frozen=True)
class CaseStatus:
    """Where a case stands: ``state`` (``vocab.STATES``), the final outcome per side once "done" (else None), the
    discordant sides of its first two reads, and how many current reads it has."""

    state: str
    final: dict[str, str] | None
    discordant: tuple[str, ...]
    reads: int

    def needs_third_reader(self) -> bool:
        """The two reads disagree and a consensus or an arbitration has not decided yet."""
        return self.state in ("arbitration", "consensus")


def discordant_sides(a: Read, b: Read) -> tuple[str, ...]:
    """The sides where one read recalls for suspicion and the other does not (a technical recall does not)."""
    return tuple(side for side in SIDES if recalls(a.breast(side).outcome) != recalls(b.breast(side).outcome))


def more_serious(a: str, b: str) -> str:
    return max(a, b, key=SERIOUSNESS.index)


def _decided_by_reads(reads: list[Read]) -> dict[str, str]:
    final = {side: reads[0].breast(side).outcome for side in SIDES}
    for read in reads[1:]:
        final = {side: more_serious(final[side], read.breast(side).outcome) for side in SIDES}
    return final


def next_step(policy: str, reads: list[Read], arbitrations: list[Arbitration]) -> CaseStatus:
    """What the case needs next under ``policy``, from its current reads (not replaced; of distinct readers; in
    commit order) and its current arbitrations (the last one decides)."""
    if policy not in POLICIES:  # read from the site's database, which a newer version may have written
        raise ReadRefused(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
    # The store passes only the current read of each reader of one case and refuses a third reader and an
    # arbitration before two reads, so no reader's input reaches these: breaking them is a bug in the caller.
    if len({read.reader for read in reads}) != len(reads):
        raise ValueError("next_step: two current reads by the same reader")
    if len({read.case_id for read in reads} | {arbitration.case_id for arbitration in arbitrations}) > 1:
        raise ValueError("next_step: reads or arbitrations of more than one case")
    if len(reads) > 2:
        raise ValueError("next_step: more than two readers' reads (a third reader arbitrates)")
    if arbitrations and len(reads) < 2:
        raise ValueError("next_step: an arbitration before two reads")

    count = len(reads)
    discordant = discordant_sides(reads[0], reads[1]) if count == 2 else ()
    if count == 0:
        return CaseStatus("first", None, (), 0)
    if arbitrations:
        return CaseStatus("done", dict(arbitrations[-1].outcomes), discordant, count)
    if policy == "single":
        # a second read exists only if the policy was a double-reading one when it was made; one read decides
        return CaseStatus("done", _decided_by_reads(reads[:1]), discordant, count)
    if count == 1:
        return CaseStatus("second", None, (), 1)
    if policy == "recall_if_either" or not discordant:
        return CaseStatus("done", _decided_by_reads(reads), discordant, count)
    return CaseStatus(policy, None, discordant, count)
