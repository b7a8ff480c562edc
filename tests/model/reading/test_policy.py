"""The reading policy: per-breast discordance, the next step of a case and its final outcome under every policy."""

from __future__ import annotations

import pytest

from model.errors import ReadRefused
from model.reading.policy import CaseStatus, discordant_sides, more_serious, next_step
from model.reading.reads import Arbitration, BreastRead, Read
from model.reading.vocab import POLICIES, STATES

OPENED = "2025-03-04T09:15:00+00:00"
SCORE = {"routine": "1", "technical": "1", "assessment": "4A", "clinical": "3"}


def side(name: str, outcome: str) -> BreastRead:
    if outcome == "technical":
        return BreastRead(name, outcome, SCORE[outcome], "birads", None, technical_view=f"{name}CC",
                          technical_reason="skin fold")
    return BreastRead(name, outcome, SCORE[outcome], "birads", None)


def read(reader: str, left: str = "routine", right: str = "routine", case_id: str = "C1") -> Read:
    return Read(case_id, reader, (side("L", left), side("R", right)), OPENED, OPENED)


def arbitration(left: str, right: str, arbiter: str = "ARB") -> Arbitration:
    return Arbitration("C1", arbiter, {"L": left, "R": right}, "reviewed both reads")


CONCORDANT = [read("AA", "assessment", "routine"), read("BB", "clinical", "routine")]
DISCORDANT = [read("AA", "assessment", "routine"), read("BB", "routine", "routine")]
DECISION = arbitration("routine", "assessment")


# -- discordance ----------------------------------------------------------------------------------------------------

def test_discordance_is_per_breast_left_recall_against_right_recall_is_both():
    # the spec's example: reader 1 recalls the left breast, reader 2 the right one
    assert discordant_sides(read("AA", "assessment", "routine"), read("BB", "routine", "assessment")) == ("L", "R")


def test_discordance_on_one_breast_only():
    assert discordant_sides(read("AA", "routine", "clinical"), read("BB", "routine", "routine")) == ("R",)
    assert discordant_sides(read("AA"), read("BB")) == ()


def test_two_recalls_of_different_kinds_agree():
    assert discordant_sides(read("AA", "assessment", "clinical"), read("BB", "clinical", "assessment")) == ()


def test_a_technical_recall_is_not_a_recall_for_suspicion():
    assert discordant_sides(read("AA", "technical", "routine"), read("BB", "routine", "technical")) == ()
    assert discordant_sides(read("AA", "technical"), read("BB", "assessment")) == ("L",)


def test_seriousness_order():
    assert more_serious("routine", "technical") == "technical"
    assert more_serious("technical", "assessment") == "assessment"
    assert more_serious("clinical", "assessment") == "clinical"


# -- before two reads -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", POLICIES)
def test_a_case_without_reads_waits_for_its_first_read(policy):
    status = next_step(policy, [], [])
    assert status == CaseStatus("first", None, (), 0)
    assert not status.needs_third_reader()


@pytest.mark.parametrize("policy", ["recall_if_either", "consensus", "arbitration"])
def test_double_reading_waits_for_the_second_read(policy):
    assert next_step(policy, [read("AA", "clinical")], []) == CaseStatus("second", None, (), 1)


def test_single_reading_is_done_after_one_read():
    assert next_step("single", [read("AA", "technical", "clinical")], []) == CaseStatus(
        "done", {"L": "technical", "R": "clinical"}, (), 1)


# -- every policy, concordant or discordant, with or without an arbitration ---------------------------------------

@pytest.mark.parametrize("policy, reads, expected", [
    # single: the first read decides; a second one (made under an earlier policy) is still compared
    ("single", CONCORDANT, CaseStatus("done", {"L": "assessment", "R": "routine"}, (), 2)),
    ("single", DISCORDANT, CaseStatus("done", {"L": "assessment", "R": "routine"}, ("L",), 2)),
    # recall if either: the more serious outcome per side
    ("recall_if_either", CONCORDANT, CaseStatus("done", {"L": "clinical", "R": "routine"}, (), 2)),
    ("recall_if_either", DISCORDANT, CaseStatus("done", {"L": "assessment", "R": "routine"}, ("L",), 2)),
    # consensus / arbitration: concordant reads decide, discordant ones wait for a third reader
    ("consensus", CONCORDANT, CaseStatus("done", {"L": "clinical", "R": "routine"}, (), 2)),
    ("consensus", DISCORDANT, CaseStatus("consensus", None, ("L",), 2)),
    ("arbitration", CONCORDANT, CaseStatus("done", {"L": "clinical", "R": "routine"}, (), 2)),
    ("arbitration", DISCORDANT, CaseStatus("arbitration", None, ("L",), 2)),
])
def test_two_reads_without_an_arbitration(policy, reads, expected):
    status = next_step(policy, reads, [])
    assert status == expected
    assert status.needs_third_reader() == (expected.state in ("consensus", "arbitration"))


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("reads", [CONCORDANT, DISCORDANT], ids=["concordant", "discordant"])
def test_a_recorded_arbitration_is_final_under_every_policy(policy, reads):
    status = next_step(policy, reads, [DECISION])
    assert status == CaseStatus("done", {"L": "routine", "R": "assessment"}, discordant_sides(*reads), 2)
    assert not status.needs_third_reader()
    status.final["L"] = "clinical"  # the status holds its own copy
    assert DECISION.outcomes["L"] == "routine"


def test_the_latest_arbitration_decides():
    later = arbitration("clinical", "routine", arbiter="ARB2")
    assert next_step("arbitration", DISCORDANT, [DECISION, later]).final == {"L": "clinical", "R": "routine"}


def test_reader_1_left_reader_2_right_goes_to_arbitration_on_both_breasts():
    reads = [read("AA", "assessment", "routine"), read("BB", "routine", "assessment")]
    assert next_step("arbitration", reads, []) == CaseStatus("arbitration", None, ("L", "R"), 2)
    assert next_step("recall_if_either", reads, []).final == {"L": "assessment", "R": "assessment"}


def test_technical_against_routine_goes_on_as_a_technical_recall():
    reads = [read("AA", "technical", "routine"), read("BB", "routine", "routine")]
    for policy in ("recall_if_either", "consensus", "arbitration"):
        assert next_step(policy, reads, []) == CaseStatus("done", {"L": "technical", "R": "routine"}, (), 2)


def test_both_recall_gives_the_more_serious_recall():
    reads = [read("AA", "clinical", "assessment"), read("BB", "assessment", "assessment")]
    assert next_step("arbitration", reads, []).final == {"L": "clinical", "R": "assessment"}


def test_every_state_is_a_known_one():
    seen = {next_step(policy, reads, arbitrations).state
            for policy in POLICIES for reads in ([], [read("AA")], CONCORDANT, DISCORDANT)
            for arbitrations in ([], [DECISION]) if not (arbitrations and len(reads) < 2)}
    assert seen == set(STATES)


# -- what the store never passes ---------------------------------------------------------------------------------

def test_mixed_is_not_a_policy_here():
    with pytest.raises(ReadRefused) as caught:
        next_step("mixed", CONCORDANT, [])
    assert str(caught.value) == "policy 'mixed' is not one of single, recall_if_either, consensus, arbitration"


@pytest.mark.parametrize("reads, arbitrations, words", [
    ([read("AA"), read("AA", "clinical")], [], "same reader"),
    ([read("AA"), read("BB"), read("CC")], [], "more than two"),
    ([read("AA")], [DECISION], "arbitration before two reads"),
    ([read("AA"), read("BB", case_id="C2")], [], "more than one case"),
])
def test_inputs_the_store_never_passes_are_programming_errors(reads, arbitrations, words):
    with pytest.raises(ValueError, match=words):
        next_step("arbitration", reads, arbitrations)
