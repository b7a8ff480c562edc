"""Reading statistics on both backends: every figure of a small double reading counted by hand, replaced reads and
arbitrations left out, zero denominators as None, the terminal's table and the PNG."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import cv2
import pytest

from model.errors import ReadRefused
from model.reading.reads import Arbitration, BreastRead, Read, Reader
from model.reading.stats import PANEL_PX, format_stats, plot_stats, reading_stats
from model.reading.store import ReadStore

SCORES = {"routine": "1", "assessment": "4A", "clinical": "5", "technical": "1"}


def breast(side: str, outcome: str) -> BreastRead:
    technical = outcome == "technical"
    extra = dict(technical_view=f"{side}MLO", technical_reason="pectoral muscle cut off") if technical else {}
    return BreastRead(side, outcome, SCORES[outcome], "birads", "b", **extra)


def opened(ago_s: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=ago_s)).isoformat()


def read(case: str, reader: str, left: str = "routine", right: str = "routine", *, ago_s: float = 60.0,
         replaces: str | None = None) -> Read:
    """A read opened ``ago_s`` seconds before now: its dwell is ago_s plus the moments until the store commits it."""
    return Read(case, reader, (breast("L", left), breast("R", right)), opened(ago_s), None, replaces=replaces)


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def dwell(committed: Read) -> float:
    return seconds(committed.opened_at, committed.committed_at)


def new_store(url: str, cases: int) -> ReadStore:
    store = ReadStore(url)
    for code, name in (("AA", "Dr Ada Able"), ("BB", "Dr Ben Bell"), ("CC1", "Dr Cy Cole")):
        store.add_reader(Reader(code, name))
    for n in range(1, cases + 1):
        store.add_case(f"c{n}")
    return store


@pytest.fixture
def scenario(reads_db):
    """Eight cases, readers AA and BB, arbiter CC1 (who also reads c8), the default policy 'arbitration'.

    case  first read           second read          what follows
    c1    AA  L- R-  (1 ks)     BB  L- R-  (10 ks)   concordant: done, final routine both
    c2    AA  L=A R- (2 ks)     BB  L- R-  (20 ks)   discordant L; CC1: L assessment (AA upheld)
    c3    AA  L- R-  (3 ks)     BB  L- R=C (30 ks)   discordant R; CC1: routine both (BB not upheld)
    c4    BB  L=A R=A (40 ks)   AA  L=A R- (4 ks)    discordant R; CC1: L, R assessment (BB upheld)
    c5    AA  L=T R- (5 ks)     BB  L- R-  (50 ks)   a technical recall is not discordant: done, final L technical
    c6    BB  L=A R- (1000 ks)  AA  L- R-  (6 ks)    discordant L, then BB changes to L- R- (60 ks): done, routine
    c7    AA  L- R=A (7 ks)                          waits for a second read
    c8    CC1 L- R-  (500 ks)   BB  L- R=A (70 ks)   discordant R: waits for arbitration

    (A assessment, C clinical, T technical, - routine; "N ks": the read was opened N thousand seconds before its
    commit, so each reader's reads are ordered by dwell.) ``log`` keeps every committed read and arbitration."""
    store = new_store(reads_db, 8)
    log = {}

    def commit(key, case, reader, left="routine", right="routine", ks=1, replaces=None):
        log[key] = store.commit(read(case, reader, left, right, ago_s=ks * 1000, replaces=replaces))

    def arbitrate(case, left, right):
        log[case, "CC1"] = store.arbitrate(Arbitration(case, "CC1", {"L": left, "R": right}, "read the priors"))

    commit(("c1", "AA"), "c1", "AA", ks=1)
    commit(("c1", "BB"), "c1", "BB", ks=10)
    commit(("c2", "AA"), "c2", "AA", left="assessment", ks=2)
    commit(("c2", "BB"), "c2", "BB", ks=20)
    arbitrate("c2", "assessment", "routine")
    commit(("c3", "AA"), "c3", "AA", ks=3)
    commit(("c3", "BB"), "c3", "BB", right="clinical", ks=30)
    arbitrate("c3", "routine", "routine")
    commit(("c4", "BB"), "c4", "BB", left="assessment", right="assessment", ks=40)
    commit(("c4", "AA"), "c4", "AA", left="assessment", ks=4)
    arbitrate("c4", "assessment", "assessment")
    commit(("c5", "AA"), "c5", "AA", left="technical", ks=5)
    commit(("c5", "BB"), "c5", "BB", ks=50)
    commit(("c6", "BB", "replaced"), "c6", "BB", left="assessment", ks=1000)
    commit(("c6", "AA"), "c6", "AA", ks=6)
    assert store.status("c6").state == "arbitration"
    commit(("c6", "BB"), "c6", "BB", ks=60, replaces=log["c6", "BB", "replaced"].read_id)
    commit(("c7", "AA"), "c7", "AA", right="assessment", ks=7)
    commit(("c8", "CC1"), "c8", "CC1", ks=500)
    commit(("c8", "BB"), "c8", "BB", right="assessment", ks=70)
    states = {case: store.status(case).state for case in store.cases()}
    assert states == {**{f"c{n}": "done" for n in range(1, 7)}, "c7": "second", "c8": "arbitration"}

    # cancer on c2 L, c3 R, c4 L, c6 L; every other breast of c1-c7 is known benign; c8 unknown
    for case, side in [(f"c{n}", s) for n in range(1, 8) for s in ("L", "R")]:
        store.record_truth(case, side, (case, side) in {("c2", "L"), ("c3", "R"), ("c4", "L"), ("c6", "L")},
                           "reader study")
    # the AI's scores: none for c5, c8 and c7 L; c1 L is rescored, the latest (0.1) counts
    store.record_ai("c1", "L", "v1", 0.95)
    for (case, side), score in {("c1", "L"): 0.1, ("c1", "R"): 0.2, ("c2", "L"): 0.9, ("c2", "R"): 0.1,
                                ("c3", "L"): 0.3, ("c3", "R"): 0.7, ("c4", "L"): 0.6, ("c4", "R"): 0.2,
                                ("c6", "L"): 0.5, ("c6", "R"): 0.05, ("c7", "R"): 0.8}.items():
        store.record_ai(case, side, "v2", score)
    yield store, log
    store.close()


def by_code(stats):
    return {r.reader: r for r in stats.readers}


def test_reader_figures_counted_by_hand(scenario):
    store, log = scenario
    stats = reading_stats(store)
    r = by_code(stats)
    assert list(r) == ["AA", "BB", "CC1"] and r["AA"].name == "Dr Ada Able"

    aa, bb, cc = r["AA"], r["BB"], r["CC1"]
    # AA read c1-c7: first on c1 c2 c3 c5 c7, second on c4 c6
    assert (aa.reads, aa.as_first, aa.as_second) == (7, 5, 2)
    # BB: c1-c6 and c8 (the replaced c6 read is not a read), first on c4 c6, second on c1 c2 c3 c5 c8
    assert (bb.reads, bb.as_first, bb.as_second) == (7, 2, 5)
    assert (cc.reads, cc.as_first, cc.as_second) == (1, 1, 0)

    # recalls (assessment or clinical on either breast): AA c2 c4 c7 = 3/7; BB c3 c4 c8 = 3/7 (with the replaced
    # c6 read it would be 4/8); CC1 none of 1. Technical: AA c5 only.
    assert (aa.recalls, aa.recall_rate) == (3, pytest.approx(3 / 7))
    assert (bb.recalls, bb.recall_rate) == (3, pytest.approx(3 / 7))
    assert (cc.recalls, cc.recall_rate) == (0, 0.0)
    assert (aa.technical, aa.technical_recall_rate, bb.technical, bb.technical_recall_rate) == (
        1, pytest.approx(1 / 7), 0, 0.0)

    # discordant with the other reader: c2 (L), c3 (R), c4 (R), c8 (R); c5's technical recall is not, nor is c6 once
    # BB changed. AA's double-read cases c1-c6: 3 of 6; BB's c1-c6 and c8: 4 of 7; CC1's c8: 1 of 1.
    assert (aa.double_read, aa.discordant, aa.disagreement_rate) == (6, 3, 0.5)
    assert (bb.double_read, bb.discordant, bb.disagreement_rate) == (7, 4, pytest.approx(4 / 7))
    assert (cc.double_read, cc.discordant, cc.disagreement_rate) == (1, 1, 1.0)

    # with the AI at 0.5 (score >= 0.5 recalls), over breasts with a score:
    # AA: c1 L R, c2 L R, c3 L R, c4 L R, c6 L R, c7 R = 11; differ on c3 R (- vs 0.7) and c6 L (- vs 0.5) = 2
    # BB: c1, c2, c3, c4, c6 both breasts = 10; differ on c2 L (- vs 0.9), c4 R (A vs 0.2), c6 L (- vs 0.5) = 3
    # CC1: c8 has no score: 0 breasts
    assert (aa.ai_breasts, aa.ai_disagreements, aa.ai_disagreement_rate) == (11, 2, pytest.approx(2 / 11))
    assert (bb.ai_breasts, bb.ai_disagreements, bb.ai_disagreement_rate) == (10, 3, pytest.approx(3 / 10))
    assert (cc.ai_breasts, cc.ai_disagreement_rate) == (0, None)

    # recalls of theirs on a discordant breast that an arbitration decided: AA c2 L (upheld) = 1/1;
    # BB c3 R (not upheld) and c4 R (upheld) = 1/2 (c8 R waits: not decided yet); CC1 none
    assert (aa.arbitrated_recalls, aa.upheld, aa.arbitration_upheld_rate) == (1, 1, 1.0)
    assert (bb.arbitrated_recalls, bb.upheld, bb.arbitration_upheld_rate) == (2, 1, 0.5)
    assert (cc.arbitrated_recalls, cc.arbitration_upheld_rate) == (0, None)
    assert (aa.arbitrations, bb.arbitrations, cc.arbitrations) == (0, 0, 3)

    # median dwell: AA's reads opened 1..7 ks before commit, the middle is c4's (4 ks); BB's current 10..70 ks,
    # the middle is c4's (40 ks; with the replaced 1000 ks read it would be halfway to c5's); CC1's only read
    assert aa.median_dwell_s == pytest.approx(dwell(log["c4", "AA"]), abs=2e-3)
    assert bb.median_dwell_s == pytest.approx(dwell(log["c4", "BB"]), abs=2e-3)
    assert cc.median_dwell_s == pytest.approx(dwell(log["c8", "CC1"]), abs=2e-3)
    assert 4000 <= aa.median_dwell_s < 5000 and 40_000 <= bb.median_dwell_s < 50_000


def test_site_figures_counted_by_hand(scenario):
    store, log = scenario
    site = reading_stats(store).site
    assert site.policy == "arbitration"
    # 8 cases, c1-c6 done; final outcomes recall a breast on c2 (L) and c4 (L, R); c5's technical does not: 2/6
    assert (site.cases, site.done, site.recalled, site.recall_rate) == (8, 6, 2, pytest.approx(2 / 6))
    # double-read cases: c1-c6 and c8 = 7; arbitrated c2 c3 c4, waiting c8 = 4 (c6 went but its reads now agree)
    assert (site.double_read, site.arbitrated, site.arbitrated_rate) == (7, 4, pytest.approx(4 / 7))
    # first read committed to the final outcome, the done cases: the second read ends c1 and c5, the arbitration
    # c2 c3 c4, BB's change of mind c6, whose clock starts at BB's first (replaced) read
    ends = {"c1": (log["c1", "AA"].committed_at, log["c1", "BB"].committed_at),
            "c2": (log["c2", "AA"].committed_at, log["c2", "CC1"].decided_at),
            "c3": (log["c3", "AA"].committed_at, log["c3", "CC1"].decided_at),
            "c4": (log["c4", "BB"].committed_at, log["c4", "CC1"].decided_at),
            "c5": (log["c5", "AA"].committed_at, log["c5", "BB"].committed_at),
            "c6": (log["c6", "BB", "replaced"].committed_at, log["c6", "BB"].committed_at)}
    expected = statistics.median(seconds(start, end) for start, end in ends.values())  # mean of the 3rd and 4th
    assert site.median_to_outcome_s == pytest.approx(expected, abs=1e-6) and expected > 0


def test_sensitivity_and_specificity_counted_by_hand(scenario):
    store, _ = scenario
    stats = reading_stats(store)
    truth = stats.truth
    # c1-c7 known, 2 breasts each; cancers c2 L, c3 R, c4 L, c6 L
    assert (truth.breasts, truth.cancers) == (14, 4)

    def counts(acc):
        return acc.tp, acc.fn, acc.tn, acc.fp

    # AA (14 breasts): TP c2L c4L; FN c3R c6L; FP c7R; TN c1LR c2R c3L c4R c5LR (technical is negative) c6R c7L
    assert counts(truth.readers["AA"]) == (2, 2, 9, 1)
    assert (truth.readers["AA"].sensitivity, truth.readers["AA"].specificity) == (0.5, pytest.approx(0.9))
    # BB (12, c8 unknown; current c6 read): TP c3R c4L; FN c2L c6L; FP c4R; TN c1LR c2R c3L c5LR c6R
    assert counts(truth.readers["BB"]) == (2, 2, 7, 1)
    assert truth.readers["BB"].specificity == pytest.approx(7 / 8)
    # CC1 read only c8, whose outcome is unknown: nothing counted, no rate
    assert counts(truth.readers["CC1"]) == (0, 0, 0, 0)
    assert truth.readers["CC1"].sensitivity is None and truth.readers["CC1"].specificity is None
    # reader 1 = AA on c1 c2 c3 c5 c7, BB on c4 c6: TP c2L c4L; FN c3R c6L; FP c7R c4R; TN 8
    assert counts(truth.reader_1) == (2, 2, 8, 2)
    assert truth.reader_1.specificity == pytest.approx(0.8)
    # reader 2 = BB on c1 c2 c3 c5, AA on c4 c6: TP c3R c4L; FN c2L c6L; no FP; TN 8
    assert counts(truth.reader_2) == (2, 2, 8, 0)
    assert (truth.reader_2.sensitivity, truth.reader_2.specificity) == (0.5, 1.0)
    # double reading, the final outcomes of c1-c6 (c7 is not done): TP c2L c4L; FN c3R (arbitrated routine),
    # c6L; FP c4R; TN c1LR c2R c3L c5LR c6R
    assert counts(truth.double_reading) == (2, 2, 7, 1)
    # the AI at 0.5, 11 breasts with a score and an outcome: TP c2L c3R c4L c6L (0.5 counts); FP c7R; TN 6
    assert counts(truth.ai) == (4, 0, 6, 1)
    assert (truth.ai.sensitivity, truth.ai.specificity) == (1.0, pytest.approx(6 / 7))


def test_the_ai_threshold_moves_the_ai_figures_only(scenario):
    store, _ = scenario
    stats = reading_stats(store, ai_threshold=0.55)
    assert stats.ai_threshold == 0.55
    # c6 L (0.5) is now negative: a missed cancer for the AI, and AA and BB (routine there) now agree with it
    assert (stats.truth.ai.tp, stats.truth.ai.fn) == (3, 1)
    r = by_code(stats)
    assert (r["AA"].ai_disagreements, r["BB"].ai_disagreements) == (1, 2)
    assert (r["AA"].recalls, stats.site.recalled) == (3, 2)
    for bad in (1.5, -0.1, float("nan"), True, "0.5"):
        with pytest.raises(ReadRefused, match="AI threshold"):
            reading_stats(store, ai_threshold=bad)


def test_replaced_reads_and_arbitrations_do_not_count(reads_db):
    with new_store(reads_db, 1) as store:
        first = store.commit(read("c1", "AA", left="assessment", ago_s=100))
        store.commit(read("c1", "AA", ago_s=200, replaces=first.read_id))  # AA changes mind: routine both
        store.commit(read("c1", "BB", right="clinical"))
        decided = store.arbitrate(Arbitration("c1", "CC1", {"L": "routine", "R": "routine"}, "benign"))
        store.arbitrate(Arbitration("c1", "CC1", {"L": "routine", "R": "assessment"}, "on review",
                                    replaces=decided.arbitration_id))
        stats = reading_stats(store)
    r = by_code(stats)
    # AA: one read, the routine one (the replaced recall of L does not count), first; its dwell ~200 s, not ~100
    assert (r["AA"].reads, r["AA"].as_first, r["AA"].recalls, r["AA"].discordant) == (1, 1, 0, 1)
    assert 200 <= r["AA"].median_dwell_s < 300
    # the replacing arbitration recalls R: BB's discordant recall is upheld, the site recalls c1; one arbitration
    assert (r["BB"].arbitrated_recalls, r["BB"].upheld) == (1, 1)
    assert (r["CC1"].arbitrations, stats.site.recalled, stats.site.done) == (1, 1, 1)


def test_zero_denominators_give_none(reads_db):
    with new_store(reads_db, 2) as store:
        empty = reading_stats(store)
        assert empty.truth is None
        assert [(r.reads, r.recall_rate, r.technical_recall_rate, r.disagreement_rate, r.ai_disagreement_rate,
                 r.arbitration_upheld_rate, r.median_dwell_s) for r in empty.readers] == [(0,) + (None,) * 6] * 3
        site = empty.site
        assert (site.cases, site.done, site.recall_rate, site.arbitrated_rate, site.median_to_outcome_s) == (
            2, 0, None, None, None)
        json.dumps(empty.to_json(), allow_nan=False)  # plain JSON, no NaN
        assert "n/a" in format_stats(empty)

        # one case read as normal by AA alone, both breasts known benign: specificity but no sensitivity
        store.set_policy("single", by="AA")
        store.commit(read("c1", "AA"))
        store.record_truth("c1", "L", False, "follow-up")
        store.record_truth("c1", "R", False, "follow-up")
        stats = reading_stats(store)
    aa = by_code(stats)["AA"]
    assert (aa.reads, aa.recall_rate, aa.double_read, aa.disagreement_rate) == (1, 0.0, 0, None)
    assert stats.site.arbitrated_rate is None and stats.site.median_to_outcome_s == 0.0  # one read decides at once
    truth = stats.truth
    assert (truth.readers["AA"].sensitivity, truth.readers["AA"].specificity) == (None, 1.0)
    assert (truth.reader_2.breasts, truth.reader_2.sensitivity, truth.reader_2.specificity) == (0, None, None)
    assert truth.ai.breasts == 0 and truth.ai.sensitivity is None
    data = json.loads(json.dumps(stats.to_json(), allow_nan=False))
    assert data["truth"]["readers"]["AA"]["sensitivity"] is None and data["truth"]["readers"]["AA"]["specificity"] == 1


def test_to_json_is_plain_json_with_the_figures(scenario):
    store, _ = scenario
    data = json.loads(json.dumps(reading_stats(store).to_json(), allow_nan=False))
    aa = next(r for r in data["readers"] if r["reader"] == "AA")
    assert (aa["reads"], aa["recalls"], aa["recall_rate"]) == (7, 3, pytest.approx(3 / 7))
    assert (data["site"]["done"], data["site"]["arbitrated"]) == (6, 4)
    assert (data["truth"]["double_reading"]["tp"], data["truth"]["ai"]["fp"], data["ai_threshold"]) == (2, 1, 0.5)


def test_format_stats_names_each_reader_in_aligned_tables(scenario):
    store, _ = scenario
    stats = reading_stats(store)
    text = format_stats(stats)
    for code, name in (("AA", "Dr Ada Able"), ("BB", "Dr Ben Bell"), ("CC1", "Dr Cy Cole")):
        assert code in text and name in text
    assert "42.9% (3/7)" in text  # AA's and BB's recall rate, one decimal
    assert "57.1% (4/7)" in text  # share of double-read cases to arbitration
    assert "n/a (0/0)" in text  # CC1 has no breast with an AI score
    assert "double-read outcome" in text and "reader 1" in text and "reader 2" in text and "AI" in text
    for block in text.strip("\n").split("\n\n"):
        title, *table = block.split("\n")
        assert table, title
        assert len({len(line) for line in table}) == 1, block  # aligned: every line of a table one width
    assert "Against the known outcome, per breast (14 breasts known, 4 with cancer)" in text
    without = format_stats(replace(stats, truth=None))
    assert "Against the known outcome: none recorded" in without and "TP" not in without


def test_plot_stats_writes_a_png_of_the_expected_size(scenario, tmp_path):
    store, _ = scenario
    stats = reading_stats(store)
    path = plot_stats(stats, tmp_path / "plots" / "reading.png")
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (PANEL_PX[1], 2 * PANEL_PX[0], 3)  # two panels: with the truth
    assert image.std() > 10  # drawn, not a blank canvas
    assert sorted(p.name for p in path.parent.iterdir()) == ["reading.png"]  # written atomically, no part left

    plot_stats(replace(stats, truth=None), path)  # replaces the file
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (PANEL_PX[1], PANEL_PX[0], 3)


def test_without_a_threshold_the_ai_is_read_at_its_own_models_operating_point(scenario, tmp_path):
    import dataclasses

    from model.nn.card import OperatingPoint
    from model.nn.weights import random_model, save_model
    from model.reading.stats import ai_operating_point
    from model.registry.versions import ModelRegistry

    store, _ = scenario
    registry = ModelRegistry(tmp_path / "registry")
    with pytest.raises(ReadRefused, match="model v2, whose operating point cannot be read here"):
        ai_operating_point(store, registry)  # the results' model (v2) is not installed here
    fallback = reading_stats(store, registry=registry)
    assert fallback.ai_threshold == 0.5 and fallback.ai_threshold_source.startswith("the default, since the AI results")

    def install(version: str, threshold: float) -> None:
        model = random_model(0, version=version)
        card = dataclasses.replace(model.card, operating_point=OperatingPoint(threshold, "Youden's J"))
        registry.add(save_model(model.net, card, tmp_path / f"{version}.safetensors"))

    install("v2", 0.65)
    threshold, source = ai_operating_point(store, registry)
    assert threshold == 0.65 and "v2" in source
    stats = reading_stats(store, registry=registry)  # what the command and the window show
    assert (stats.ai_threshold, stats.ai_threshold_source) == (threshold, source)
    at_half = reading_stats(store, ai_threshold=0.5)
    # the cancers score 0.9 (c2 L), 0.7 (c3 R), 0.6 (c4 L) and 0.5 (c6 L): all four recalled at 0.5, two at v2's 0.65
    assert (at_half.truth.ai.tp, stats.truth.ai.tp) == (4, 2)
    assert "v2" in format_stats(stats) and stats.to_json()["ai_threshold_source"] == source
    # a breast rescored by another model with another operating point: no single threshold, the reader gives one
    install("v3", 0.3)
    store.record_ai("c7", "R", "v3", 0.8)
    with pytest.raises(ReadRefused, match=r"different operating points, v2 \(p >= 0.65\), v3 \(p >= 0.3\)"):
        ai_operating_point(store, registry)
    assert reading_stats(store, registry=registry).ai_threshold == 0.5
