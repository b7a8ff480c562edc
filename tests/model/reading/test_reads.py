"""Screening reads as records: every class round-trips through JSON, and every bad field is refused in one line."""

from __future__ import annotations

import json

import pytest

from model.errors import ReadRefused
from model.reading.reads import Arbitration, BreastRead, Finding, Mark, Read, Reader
from model.reading.vocab import DESCRIPTORS, SCALES, recalls

OPENED = "2025-03-04T09:15:00+00:00"
COMMITTED = "2025-03-04T09:16:30Z"


def mark(view="LCC", points=((10.0, 20.0),), image="1.2.3.4") -> Mark:
    return Mark(image, view, points)


def outline(view="LMLO") -> Mark:
    return Mark("1.2.3.5", view, ((1.0, 1.0), (5.0, 1.0), (5.0, 4.0), (1.5, 4.5)))


def finding(**changes) -> Finding:
    values = dict(abnormality="ill-defined mass", views=("LCC", "LMLO"), marks=(mark(), outline()),
                  descriptors={"mass_shape": "irregular", "mass_margin": "spiculated"}, clock_hour=2,
                  depth="middle", nipple_distance_mm=41.5, size_mm=12.0)
    values.update(changes)
    return Finding(**values)


def breast(side="L", **changes) -> BreastRead:
    values = dict(side=side, outcome="routine", score="1", scale="birads", density="b")
    values.update(changes)
    return BreastRead(**values)


def read(**changes) -> Read:
    values = dict(case_id="P_00001", reader="AB", breasts=(breast("L"), breast("R")), opened_at=OPENED,
                  committed_at=COMMITTED)
    values.update(changes)
    return Read(**values)


def refusal(make) -> str:
    with pytest.raises(ReadRefused) as caught:
        make()
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- round trips --------------------------------------------------------------------------------------------------

RICH_READ = read(
    breasts=(breast("L", outcome="assessment", score="4B", findings=(finding(),)),
             breast("R", outcome="technical", score="1", technical_view="RMLO", technical_reason="pectoral cut off")),
    ai_model_version="bcir-unet-3", ai_scores={"LCC": 0.81, "RMLO": 0.02}, ai_shown=True,
    replaces="0" * 32, read_id="a" * 32, note="compare with prior\nsee left")

EXAMPLES = [
    mark(), outline(), finding(), Finding("lymph node", ("RMLO",), ()),
    breast(), breast("R", outcome="technical", score="2", scale="rcr", density=None, technical_view="RCC",
                     technical_reason="motion blur"),
    read(), RICH_READ, Read.normal_both("case-7", "XY12", OPENED, "rcr", density="d"),
    Arbitration("P_00001", "ARB", {"L": "assessment", "R": "routine"}, "the left lesion is real",
                decided_at=COMMITTED, replaces="b" * 32, arbitration_id="c" * 32),
    Arbitration("P_00001", "ARB", {"R": "routine", "L": "technical"}, "retake"),
    Reader("JD", "Dr Jane Doe"),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda record: type(record).__name__)
def test_every_record_round_trips_through_json_text(record):
    data = record.to_json()
    back = type(record).from_json(json.loads(json.dumps(data)))  # plain JSON types only
    assert back == record
    assert back.to_json() == data


def test_lists_become_tuples_and_points_floats():
    m = Mark("img", "RCC", [[1, 2], [3, 4], [5, 0]])
    assert m.points == ((1.0, 2.0), (3.0, 4.0), (5.0, 0.0)) and isinstance(m.points[0][0], float)
    f = Finding("other", ["RCC"], [m])
    assert f.views == ("RCC",) and f.marks == (m,)
    assert isinstance(Read.from_json(RICH_READ.to_json()).breasts, tuple)


def test_dicts_are_copied_so_the_caller_cannot_change_a_record():
    descriptors = {"mass_shape": "oval"}
    scores = {"LCC": 0.5}
    outcomes = {"L": "routine", "R": "assessment"}
    f = finding(descriptors=descriptors)
    r = read(ai_scores=scores)
    a = Arbitration("c", "ARB", outcomes, "why")
    descriptors["mass_shape"] = "round"
    scores["LCC"] = 0.9
    outcomes["R"] = "routine"
    assert f.descriptors == {"mass_shape": "oval"}
    assert r.ai_scores == {"LCC": 0.5}
    assert a.outcomes == {"L": "routine", "R": "assessment"}
    r.to_json()["ai_scores"]["LCC"] = 0.1
    assert r.ai_scores == {"LCC": 0.5}


def test_breasts_are_kept_left_then_right_whatever_the_order_given():
    r = read(breasts=(breast("R", outcome="clinical", score="5"), breast("L")))
    assert [b.side for b in r.breasts] == ["L", "R"]
    assert r.breast("R").outcome == "clinical" and r.breast("L").outcome == "routine"


def test_normal_both_is_routine_score_1_without_findings_on_either_scale():
    for scale in SCALES:
        r = Read.normal_both("case-1", "AB", OPENED, scale)
        assert [(b.side, b.outcome, b.score, b.scale, b.density, b.findings) for b in r.breasts] == [
            ("L", "routine", "1", scale, None, ()), ("R", "routine", "1", scale, None, ())]
        assert r.committed_at is None and r.read_id is None and r.recalled_sides() == ()
    assert Read.normal_both("case-1", "AB", OPENED, "birads", density="c").breast("L").density == "c"


def test_recalled_sides_leave_out_technical_recalls():
    assert RICH_READ.recalled_sides() == ("L",)
    both = read(breasts=(breast("L", outcome="clinical", score="5"), breast("R", outcome="assessment", score="0")))
    assert both.recalled_sides() == ("L", "R")
    assert [outcome for outcome in ("routine", "assessment", "technical", "clinical") if recalls(outcome)] == [
        "assessment", "clinical"]


def test_breast_of_an_unknown_side_is_refused():
    assert refusal(lambda: read().breast("X")) == "read: side 'X' is not one of L, R"


# -- refusals: each rule, one line naming the field ------------------------------------------------------------------

def test_the_reason_names_the_breast_the_field_and_the_bad_value():
    assert refusal(lambda: breast("L", outcome="maybe")) == (
        "breast L: outcome 'maybe' is not one of routine, assessment, technical, clinical")


def test_a_long_bad_value_is_truncated_and_stays_on_one_line():
    text = refusal(lambda: breast("L", outcome="x\n" * 500))
    assert len(text) < 140 and "..." in text


@pytest.mark.parametrize("make, words", [
    (lambda: breast("X"), "side 'X'"),
    (lambda: breast(scale="nhs"), "scale 'nhs'"),
    (lambda: breast(score="4A", scale="rcr"), "score '4A' is not on the rcr scale"),
    (lambda: breast(score="6", scale="rcr"), "score '6'"),
    (lambda: breast(score=1), "score 1"),
    (lambda: breast(density="e"), "density 'e'"),
    (lambda: breast(outcome="technical"), "technical_view None"),
    (lambda: breast(outcome="technical", technical_view="RCC", technical_reason="blur"), "technical_view 'RCC'"),
    (lambda: breast(outcome="technical", technical_view="LCC"), "technical_reason is missing"),
    (lambda: breast(outcome="technical", technical_view="LCC", technical_reason="  "), "technical_reason is empty"),
    (lambda: breast(outcome="routine", technical_view="LCC"), "technical_view 'LCC' is only for a technical"),
    (lambda: breast(outcome="assessment", score="4A", technical_reason="blur"), "technical_reason 'blur' is only"),
    (lambda: breast("R", findings=(finding(),)), "finding 1: view 'LCC' is not a view of the R breast"),
    (lambda: breast(findings=("mass",)), "finding 1 is a str"),
    (lambda: breast(findings="mass"), "findings must be a list"),
])
def test_breast_read_refusals(make, words):
    assert words in refusal(make)


@pytest.mark.parametrize("make, words", [
    (lambda: finding(abnormality="lump"), "abnormality 'lump'"),
    (lambda: finding(views=()), "views is empty"),
    (lambda: finding(views="LCC"), "views must be a list"),
    (lambda: finding(views=("LCC", "XCC"), marks=()), "view 'XCC'"),
    (lambda: finding(views=("LCC", "LCC"), marks=()), "names a view twice"),
    (lambda: finding(views=("LCC", "RCC"), marks=()), "are of both breasts"),
    (lambda: finding(views=("LCC",)), "mark 2: view 'LMLO' is not one of the finding's views LCC"),
    (lambda: finding(marks=({"image": "x"},)), "mark 1 is a dict"),
    (lambda: finding(descriptors={"colour": "red"}), "descriptor 'colour'"),
    (lambda: finding(descriptors={"mass_shape": "spiculated"}), "mass_shape 'spiculated'"),
    (lambda: finding(descriptors=[("mass_shape", "oval")]), "descriptors must be a mapping"),
    (lambda: finding(clock_hour=0), "clock_hour 0"),
    (lambda: finding(clock_hour=13), "clock_hour 13"),
    (lambda: finding(clock_hour=2.5), "clock_hour 2.5"),
    (lambda: finding(clock_hour=True), "clock_hour True"),
    (lambda: finding(depth="deep"), "depth 'deep'"),
    (lambda: finding(nipple_distance_mm=-1), "nipple_distance_mm -1 is not at least 0"),
    (lambda: finding(size_mm=float("nan")), "size_mm nan is not a finite number"),
    (lambda: finding(size_mm="12"), "size_mm '12'"),
])
def test_finding_refusals(make, words):
    text = refusal(make)
    assert text.startswith("finding: ") and words in text


@pytest.mark.parametrize("make, words", [
    (lambda: mark(points=()), "points holds 0 points: neither a point"),
    (lambda: mark(points=((1, 2), (3, 4))), "points holds 2 points: neither a point (1) nor an outline (3 or more)"),
    (lambda: mark(points=((1, 2, 3),)), "point 1 (1, 2, 3) is not (x, y)"),
    (lambda: mark(points=((1, -2),)), "point 1 y -2 is not at least 0"),
    (lambda: mark(points=((float("inf"), 2),)), "point 1 x inf is not a finite number"),
    (lambda: mark(points=((True, 2),)), "point 1 x True"),
    (lambda: mark(points="12"), "points must be a list"),
    (lambda: mark(view="LXX"), "view 'LXX'"),
    (lambda: mark(image=""), "image is empty"),
    (lambda: mark(image="a\x00b"), "holds a control character"),
])
def test_mark_refusals(make, words):
    text = refusal(make)
    assert text.startswith("mark: ") and words in text


@pytest.mark.parametrize("make, words", [
    (lambda: read(case_id=""), "case_id is empty"),
    (lambda: read(case_id="x" * 129), "longer than 128 characters"),
    (lambda: read(case_id="P_1\x1b"), "case_id 'P_1\\x1b' holds a control character"),
    (lambda: read(case_id=7), "case_id must be text, not int"),
    (lambda: read(reader="ab"), "reader 'ab' is not a reader code"),
    (lambda: read(reader="A"), "reader 'A'"),
    (lambda: read(reader="ABCDEFGHI"), "reader 'ABCDEFGHI'"),
    (lambda: read(reader="A-B"), "reader 'A-B'"),
    (lambda: read(breasts=(breast("L"),)), "breasts must be one L and one R breast, not ('L',)"),
    (lambda: read(breasts=(breast("L"), breast("L"))), "not ('L', 'L')"),
    (lambda: read(breasts=(breast("L"), "R")), "breasts holds a str"),
    (lambda: read(breasts=(breast("L"), breast("R", scale="rcr"))), "two scales (birads, rcr)"),
    (lambda: read(opened_at="yesterday"), "opened_at 'yesterday' is not an ISO 8601 time"),
    (lambda: read(opened_at="2025-03-04T09:15:00"), "opened_at '2025-03-04T09:15:00' has no UTC offset"),
    (lambda: read(opened_at=None), "opened_at None"),
    (lambda: read(committed_at="2025-13-01T00:00:00Z"), "committed_at"),
    (lambda: read(ai_scores={"LCC": 1.5}), "ai_scores['LCC'] 1.5 is not between 0 and 1"),
    (lambda: read(ai_scores={"LCC": float("nan")}), "is not a finite number"),
    (lambda: read(ai_scores={"": 0.5}), "ai_scores key is empty"),
    (lambda: read(ai_model_version=""), "ai_model_version is empty"),
    (lambda: read(ai_shown="yes"), "ai_shown 'yes' is not true or false"),
    (lambda: read(replaces="not an id!"), "replaces 'not an id!' is not an identifier"),
    (lambda: read(read_id="x" * 65), "read_id"),
    (lambda: read(note="n" * 2001), "note"),
])
def test_read_refusals(make, words):
    text = refusal(make)
    assert text.startswith("read: ") and words in text


def test_a_note_may_hold_line_breaks_but_a_name_may_not():
    assert read(note="line one\nline two").note == "line one\nline two"
    assert "holds a control character" in refusal(lambda: Reader("JD", "Jane\nDoe"))


@pytest.mark.parametrize("make, words", [
    (lambda: Arbitration("c", "ARB", {"L": "routine"}, "why"), "outcomes must name both breasts L and R"),
    (lambda: Arbitration("c", "ARB", {"L": "routine", "R": "routine", "X": "routine"}, "why"), "outcomes"),
    (lambda: Arbitration("c", "ARB", {"L": "routine", "R": "recall"}, "why"), "outcome R 'recall'"),
    (lambda: Arbitration("c", "ARB", {"L": "routine", "R": "routine"}, ""), "reason is empty"),
    (lambda: Arbitration("c", "arb", {"L": "routine", "R": "routine"}, "why"), "arbiter 'arb'"),
    (lambda: Arbitration("c", "ARB", {"L": "routine", "R": "routine"}, "why", decided_at="now"), "decided_at"),
    (lambda: Arbitration("c", "ARB", "routine", "why"), "outcomes must be a mapping"),
])
def test_arbitration_refusals(make, words):
    text = refusal(make)
    assert text.startswith("arbitration: ") and words in text


@pytest.mark.parametrize("make, words", [
    (lambda: Reader("jd", "Jane"), "code 'jd'"),
    (lambda: Reader("JD", ""), "name is empty"),
    (lambda: Reader("JD", "x" * 81), "longer than 80 characters"),
])
def test_reader_refusals(make, words):
    text = refusal(make)
    assert text.startswith("reader: ") and words in text


def test_times_with_any_utc_offset_are_accepted_and_kept_as_written():
    r = read(opened_at="2025-03-04T10:15:00+01:00", committed_at="2025-03-04T09:16:30.123456Z")
    assert (r.opened_at, r.committed_at) == ("2025-03-04T10:15:00+01:00", "2025-03-04T09:16:30.123456Z")


def test_descriptor_lists_are_the_bi_rads_ones():
    assert set(DESCRIPTORS) == {"mass_shape", "mass_margin", "calc_morphology", "calc_distribution"}
    assert "spiculated" in DESCRIPTORS["mass_margin"] and "fine pleomorphic" in DESCRIPTORS["calc_morphology"]
    assert finding(abnormality="microcalcification", descriptors={"calc_distribution": "segmental"}).descriptors == {
        "calc_distribution": "segmental"}


# -- from_json of bad JSON: one line, never KeyError or TypeError ------------------------------------------------

def _without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize("cls, data, words", [
    (Read, [], "read: must be a JSON object, not list"),
    (Read, _without(read().to_json(), "opened_at"), "read: missing key opened_at"),
    (Read, {**read().to_json(), "extra": 1}, "read: unknown key 'extra'"),
    (Read, {**read().to_json(), "breasts": "LR"}, "read: breasts must be a list, not str"),
    (Read, {**read().to_json(), "breasts": [1, 2]}, "breast: must be a JSON object, not int"),
    (Read, {**read().to_json(), "ai_scores": [0.5]}, "read: ai_scores must be a mapping, not list"),
    (Read, {**read().to_json(), "breasts": [{**breast().to_json(), "score": 3}, breast("R").to_json()]},
     "breast L: score 3 is not on the birads scale"),
    (BreastRead, _without(breast().to_json(), "findings"), "breast: missing key findings"),
    (BreastRead, {**breast().to_json(), "findings": {"a": 1}}, "breast L: findings must be a list, not dict"),
    (BreastRead, {**breast().to_json(), "findings": [{**finding().to_json(), "marks": None}]},
     "breast L: finding 1: marks must be a list, not NoneType"),
    (BreastRead, {**breast().to_json(), "findings": [finding().to_json(), {**finding().to_json(), "marks": [
        mark().to_json(), {**mark().to_json(), "points": [[1, 2], [3, 4]]}]}]},
     "breast L: finding 2: mark 2: points holds 2 points"),
    (Finding, None, "finding: must be a JSON object, not NoneType"),
    (Finding, {**finding().to_json(), "views": None}, "finding: views must be a list, not NoneType"),
    (Finding, {**finding().to_json(), "marks": [{"image": "x"}]}, "finding: mark 1: missing key view, points"),
    (Mark, {"image": "x", "view": "LCC", "points": [["a", 1]]}, "mark: point 1 x 'a' is not a finite number"),
    (Mark, {"image": "x", "view": "LCC", "points": [5]}, "mark: point 1 must be a list, not int"),
    (Arbitration, {**EXAMPLES[-3].to_json(), "outcomes": None}, "arbitration: outcomes must be a mapping"),
    (Arbitration, _without(EXAMPLES[-3].to_json(), "reason"), "arbitration: missing key reason"),
    (Reader, {"code": "JD"}, "reader: missing key name"),
    (Reader, {"code": "JD", "name": "J", 1: 2}, "reader: unknown key 1"),
    (Reader, "JD", "reader: must be a JSON object, not str"),
])
def test_from_json_refuses_bad_json_in_one_line(cls, data, words):
    text = refusal(lambda: cls.from_json(data))
    assert words in text
