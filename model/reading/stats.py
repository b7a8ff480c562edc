"""Reading statistics from the store's current reads: per reader, per site, and against the known outcome per breast.

Everything is computed from what :class:`model.reading.store.ReadStore` returns (``export``, ``case_states``,
``truth``, ``ai_results``, ``readers``, ``policy``), and only from the reads that count: a read replaced by a change
of mind is left out, as is a replaced arbitration. The one place a replaced read still matters is the clock: the
time from first read to final outcome starts at the case's first read ever committed, because a change of mind
does not restart the woman's wait.

Conventions, per breast (``vocab.RECALLS``): a reader or an outcome "recalls" a breast for recall for assessment
or a clinical recall; a technical recall retakes an image and is not a recall for suspicion. The AI "recalls" a
breast where its latest score is at least ``ai_threshold``. A rate whose denominator is zero is None.
"""

from __future__ import annotations

import io
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from model.errors import ReadRefused
from model.fileio import atomic_write_bytes
from model.reading.vocab import SIDES, recalls

PANEL_PX = (550, 450)  # width, height of one panel of the plot, in pixels (the truth panel doubles the width)
_DPI = 100


def _rate(n: int, of: int) -> float | None:
    return n / of if of else None


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def _seconds(start: str, end: str) -> float:
    """Seconds from ``start`` to ``end``, never negative (an imported time may be earlier than its read's)."""
    return max(0.0, (_moment(end) - _moment(start)).total_seconds())


# -- the figures --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReaderStats:
    """One reader's figures over their current reads. Each ``*_rate`` is a share of the count named in its
    docstring; None where that count is zero."""

    reader: str
    name: str
    reads: int  # current reads (cases read)
    as_first: int
    as_second: int
    recalls: int  # reads recalling either breast for assessment or clinical
    technical: int  # reads with a technical recall of either breast
    double_read: int  # their cases with two current reads
    discordant: int  # of those, cases discordant on at least one breast
    ai_breasts: int  # breasts of their reads with an AI score
    ai_disagreements: int  # of those, breasts where the AI (score >= threshold) and the reader's recall differ
    arbitrated_recalls: int  # breasts they recalled that were discordant and decided by arbitration or consensus
    upheld: int  # of those, breasts the arbitration's final outcome recalled too
    median_dwell_s: float | None  # opened to committed, over their current reads
    arbitrations: int  # current arbitrations (or consensus outcomes) they recorded

    @property
    def recall_rate(self) -> float | None:
        """recalls / reads"""
        return _rate(self.recalls, self.reads)

    @property
    def technical_recall_rate(self) -> float | None:
        """technical / reads"""
        return _rate(self.technical, self.reads)

    @property
    def disagreement_rate(self) -> float | None:
        """discordant / double_read"""
        return _rate(self.discordant, self.double_read)

    @property
    def ai_disagreement_rate(self) -> float | None:
        """ai_disagreements / ai_breasts"""
        return _rate(self.ai_disagreements, self.ai_breasts)

    @property
    def arbitration_upheld_rate(self) -> float | None:
        """upheld / arbitrated_recalls"""
        return _rate(self.upheld, self.arbitrated_recalls)

    def to_json(self) -> dict:
        return {"reader": self.reader, "name": self.name, "reads": self.reads, "as_first": self.as_first,
                "as_second": self.as_second, "recalls": self.recalls, "recall_rate": self.recall_rate,
                "technical": self.technical, "technical_recall_rate": self.technical_recall_rate,
                "double_read": self.double_read, "discordant": self.discordant,
                "disagreement_rate": self.disagreement_rate, "ai_breasts": self.ai_breasts,
                "ai_disagreements": self.ai_disagreements, "ai_disagreement_rate": self.ai_disagreement_rate,
                "arbitrated_recalls": self.arbitrated_recalls, "upheld": self.upheld,
                "arbitration_upheld_rate": self.arbitration_upheld_rate, "median_dwell_s": self.median_dwell_s,
                "arbitrations": self.arbitrations}


@dataclass(frozen=True)
class SiteStats:
    """The site's figures: cases, cases done, the recall rate of the done cases (final outcome recalling either
    breast), the share of double-read cases that needed arbitration or consensus (decided, or waiting for it), and
    the median time from a case's first read to its final outcome."""

    policy: str
    cases: int
    done: int
    recalled: int  # done cases whose final outcome recalls either breast
    double_read: int  # cases with two current reads
    arbitrated: int  # of those, cases decided by or waiting for arbitration or consensus
    median_to_outcome_s: float | None  # done cases: first read committed to the final outcome

    @property
    def recall_rate(self) -> float | None:
        """recalled / done"""
        return _rate(self.recalled, self.done)

    @property
    def arbitrated_rate(self) -> float | None:
        """arbitrated / double_read"""
        return _rate(self.arbitrated, self.double_read)

    def to_json(self) -> dict:
        return {"policy": self.policy, "cases": self.cases, "done": self.done, "recalled": self.recalled,
                "recall_rate": self.recall_rate, "double_read": self.double_read, "arbitrated": self.arbitrated,
                "arbitrated_rate": self.arbitrated_rate, "median_to_outcome_s": self.median_to_outcome_s}


@dataclass(frozen=True)
class Accuracy:
    """Counts per breast against the known outcome: cancer is positive, a recall (or an AI score at the threshold
    or above) is a positive test."""

    tp: int = 0
    fn: int = 0
    tn: int = 0
    fp: int = 0

    @property
    def breasts(self) -> int:
        return self.tp + self.fn + self.tn + self.fp

    @property
    def sensitivity(self) -> float | None:
        return _rate(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float | None:
        return _rate(self.tn, self.tn + self.fp)

    def counted(self, cancer: bool, positive: bool) -> Accuracy:
        """These counts with one more breast."""
        if cancer:
            return Accuracy(self.tp + positive, self.fn + (not positive), self.tn, self.fp)
        return Accuracy(self.tp, self.fn, self.tn + (not positive), self.fp + positive)

    def to_json(self) -> dict:
        return {"tp": self.tp, "fn": self.fn, "tn": self.tn, "fp": self.fp, "breasts": self.breasts,
                "sensitivity": self.sensitivity, "specificity": self.specificity}


@dataclass(frozen=True)
class TruthStats:
    """Sensitivity and specificity per breast where the outcome is known: for each reader (their current reads),
    for reader 1 (the first reads), reader 2 (the second reads), the double-read outcome (the final outcome per
    side of the done cases) and the AI."""

    breasts: int  # breasts with a known outcome
    cancers: int
    readers: dict[str, Accuracy]  # reader code -> counts, every reader of the site
    reader_1: Accuracy
    reader_2: Accuracy
    double_reading: Accuracy
    ai: Accuracy

    def to_json(self) -> dict:
        return {"breasts": self.breasts, "cancers": self.cancers,
                "readers": {code: acc.to_json() for code, acc in self.readers.items()},
                "reader_1": self.reader_1.to_json(), "reader_2": self.reader_2.to_json(),
                "double_reading": self.double_reading.to_json(), "ai": self.ai.to_json()}


@dataclass(frozen=True)
class ReadingStats:
    readers: tuple[ReaderStats, ...]  # every reader of the site, by code
    site: SiteStats
    truth: TruthStats | None  # None where no outcome is known
    ai_threshold: float
    ai_threshold_source: str = "given"  # or what ai_operating_point found: whose operating point it is

    def to_json(self) -> dict:
        return {"ai_threshold": self.ai_threshold, "ai_threshold_source": self.ai_threshold_source, "readers": [r.to_json() for r in self.readers],
                "site": self.site.to_json(), "truth": self.truth.to_json() if self.truth else None}


# -- computing them -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CurrentRead:
    case_id: str
    reader: str
    role: str
    outcomes: dict[str, str]
    dwell_s: float


def _current_reads(rows: list[dict]) -> dict[str, list[_CurrentRead]]:
    """Case -> its current reads in commit order, from the export's per-breast rows."""
    by_id: dict[str, dict] = {}
    for row in rows:
        if row["kind"] == "read" and row["current"]:
            read = by_id.setdefault(row["id"], {"case_id": row["case_id"], "reader": row["reader"],
                                                "role": row["role"], "outcomes": {}, "dwell_s": float(row["dwell_s"])})
            read["outcomes"][row["side"]] = row["outcome"]
    cases: dict[str, list[_CurrentRead]] = {}
    for read in by_id.values():  # dicts keep the export's order, which is commit order
        cases.setdefault(read["case_id"], []).append(_CurrentRead(**read))
    return cases


def _final_arbitrations(rows: list[dict]) -> dict[str, tuple[str, dict[str, str]]]:
    """Case -> (arbiter, outcome per side) of its current arbitration (the last one, in the export's order)."""
    by_id: dict[str, tuple[str, str, dict[str, str]]] = {}
    for row in rows:
        if row["kind"] == "arbitration" and row["current"]:
            by_id.setdefault(row["id"], (row["case_id"], row["reader"], {}))[2][row["side"]] = row["outcome"]
    return {case: (arbiter, outcomes) for case, arbiter, outcomes in by_id.values()}


def _first_read_at(rows: list[dict]) -> dict[str, str]:
    """Case -> when its first read was committed, replaced or not: a change of mind does not restart the clock."""
    first: dict[str, str] = {}
    for row in rows:
        if row["kind"] == "read":
            known = first.get(row["case_id"])
            if known is None or _moment(row["committed_at"]) < _moment(known):
                first[row["case_id"]] = row["committed_at"]
    return first


def _discordant_sides(a: _CurrentRead, b: _CurrentRead) -> tuple[str, ...]:
    """``policy.discordant_sides`` on export rows: one recalls for suspicion and the other does not."""
    return tuple(side for side in SIDES if recalls(a.outcomes[side]) != recalls(b.outcomes[side]))


def _recalls_either(outcomes: dict[str, str]) -> bool:
    return any(recalls(outcomes[side]) for side in SIDES)


def ai_operating_point(store, registry=None) -> tuple[float, str]:
    """The score at which the AI recalls a breast when none is given: the operating point on the card of the model
    that scored the store's AI results (a two-pass model's fine card, whose head scores), found in the registry
    (``registry``: a :class:`model.registry.versions.ModelRegistry`, default the user's). Returns (threshold, whose
    it is). ReadRefused in one line when that model is not installed here, or when the results come from models
    with different operating points."""
    from model.errors import ModelFileError
    from model.nn.card import DEFAULT_MALIGNANCY_THRESHOLD
    from model.nn.passes import fine_card_beside
    from model.registry.versions import ModelRegistry

    versions = sorted({version for version, _ in store.ai_results().values()})
    if not versions:
        return DEFAULT_MALIGNANCY_THRESHOLD, "the default: no AI results yet"
    entries = {entry.version: entry for entry in (registry or ModelRegistry()).list()}  # one scan of the registry
    points: dict[str, float] = {}
    for version in versions:
        entry, why = entries.get(version), f"no model {version!r} in the registry"
        try:
            card = (fine_card_beside(entry.weights, entry.card) or entry.card) if entry else None  # a pair: its fine head
        except ModelFileError as exc:
            card, why = None, " ".join(str(exc).split())
        if card is None:
            raise ReadRefused(f"the AI results come from model {version}, whose operating point cannot be read "
                              f"here ({why})")
        points[version] = card.malignancy_threshold
    if len(set(points.values())) > 1:
        listed = ", ".join(f"{v} (p >= {t:.3g})" for v, t in points.items())
        raise ReadRefused(f"the AI results come from models with different operating points, {listed}")
    return points[versions[0]], f"the operating point of {', '.join(versions)}"


def reading_stats(store, *, ai_threshold: float | None = None, registry=None) -> ReadingStats:
    """The statistics of ``store`` (a :class:`model.reading.store.ReadStore`) from its current reads; the AI
    recalls a breast whose latest score is at least ``ai_threshold``. None: the operating point of the model that
    scored (:func:`ai_operating_point`, in ``registry``), else 0.5, and the statistics say why."""
    source = "given"
    if ai_threshold is None:
        from model.nn.card import DEFAULT_MALIGNANCY_THRESHOLD

        try:
            ai_threshold, source = ai_operating_point(store, registry)
        except ReadRefused as exc:
            ai_threshold, source = DEFAULT_MALIGNANCY_THRESHOLD, f"the default, since {exc}"
    if isinstance(ai_threshold, bool) or not isinstance(ai_threshold, (int, float)) or not 0.0 <= ai_threshold <= 1.0:
        raise ReadRefused(f"AI threshold {ai_threshold!r:.20} is not a number from 0 to 1")
    rows = store.export()
    states = store.case_states()
    truth = store.truth()
    ai_positive = {key: score >= ai_threshold for key, (_, score) in store.ai_results().items()}
    reads = _current_reads(rows)
    arbitrated = _final_arbitrations(rows)
    first_at = _first_read_at(rows)

    readers = tuple(_reader_stats(reader.code, reader.name, reads, arbitrated, ai_positive)
                    for reader in sorted(store.readers(), key=lambda r: r.code))

    done = {case: status.final for case, (status, _) in states.items() if status.state == "done"}
    double = [case for case, current in reads.items() if len(current) == 2]
    needed = [case for case in double
              if case in arbitrated or states[case][0].state in ("arbitration", "consensus")]
    to_outcome = [_seconds(first_at[case], states[case][1]) for case in done if case in first_at]
    site = SiteStats(policy=store.policy(), cases=len(states), done=len(done),
                     recalled=sum(_recalls_either(final) for final in done.values()), double_read=len(double),
                     arbitrated=len(needed), median_to_outcome_s=_median(to_outcome))

    known = _truth_stats(truth, reads, done, ai_positive, [r.reader for r in readers]) if truth else None
    return ReadingStats(readers, site, known, float(ai_threshold), source)


def _reader_stats(code: str, name: str, reads: dict[str, list[_CurrentRead]],
                  arbitrated: dict[str, tuple[str, dict[str, str]]], ai_positive: dict[tuple[str, str], bool]
                  ) -> ReaderStats:
    mine = [(read, current) for current in reads.values() for read in current if read.reader == code]
    double_read = discordant = ai_breasts = ai_disagreements = arbitrated_recalls = upheld = 0
    for read, current in mine:
        for side in SIDES:
            if (read.case_id, side) in ai_positive:
                ai_breasts += 1
                ai_disagreements += ai_positive[read.case_id, side] != recalls(read.outcomes[side])
        if len(current) != 2:
            continue
        double_read += 1
        other = next(r for r in current if r is not read)
        sides = _discordant_sides(read, other)
        discordant += bool(sides)
        if read.case_id in arbitrated:
            final = arbitrated[read.case_id][1]
            for side in sides:
                if recalls(read.outcomes[side]):
                    arbitrated_recalls += 1
                    upheld += recalls(final[side])
    return ReaderStats(
        reader=code, name=name, reads=len(mine), as_first=sum(r.role == "first" for r, _ in mine),
        as_second=sum(r.role == "second" for r, _ in mine),
        recalls=sum(_recalls_either(r.outcomes) for r, _ in mine),
        technical=sum(any(r.outcomes[side] == "technical" for side in SIDES) for r, _ in mine),
        double_read=double_read, discordant=discordant, ai_breasts=ai_breasts, ai_disagreements=ai_disagreements,
        arbitrated_recalls=arbitrated_recalls, upheld=upheld,
        median_dwell_s=_median([r.dwell_s for r, _ in mine]),
        arbitrations=sum(arbiter == code for arbiter, _ in arbitrated.values()))


def _truth_stats(truth: dict[tuple[str, str], bool], reads: dict[str, list[_CurrentRead]],
                 done: dict[str, dict[str, str]], ai_positive: dict[tuple[str, str], bool],
                 codes: list[str]) -> TruthStats:
    per_reader = {code: Accuracy() for code in codes}
    by_role = {"first": Accuracy(), "second": Accuracy()}
    double_reading = ai = Accuracy()
    for (case, side), cancer in truth.items():
        for read in reads.get(case, []):
            positive = recalls(read.outcomes[side])
            per_reader[read.reader] = per_reader.get(read.reader, Accuracy()).counted(cancer, positive)
            by_role[read.role] = by_role[read.role].counted(cancer, positive)
        if case in done:
            double_reading = double_reading.counted(cancer, recalls(done[case][side]))
        if (case, side) in ai_positive:
            ai = ai.counted(cancer, ai_positive[case, side])
    return TruthStats(breasts=len(truth), cancers=sum(truth.values()), readers=per_reader,
                      reader_1=by_role["first"], reader_2=by_role["second"], double_reading=double_reading, ai=ai)


# -- the terminal's table -------------------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _share(n: int, of: int) -> str:
    return f"{_pct(_rate(n, of))} ({n}/{of})"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first ``left`` columns flush left, the numbers flush right; every line one width."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in [header, *rows]]


def format_stats(stats: ReadingStats, *, truth_withheld: bool = False) -> str:
    """The statistics as the terminal shows them: one titled, aligned table per block, blocks apart by a blank
    line; percentages with one decimal and their counts, "n/a" where a rate has nothing to count."""
    site = stats.site
    blocks = [["Readers (current reads; a replaced read does not count)", *_table(
        ["reader", "name", "reads", "as first", "as second", "recall", "technical recall", "median dwell",
         "arbitrations"],
        [[r.reader, r.name[:30], str(r.reads), str(r.as_first), str(r.as_second), _share(r.recalls, r.reads),
          _share(r.technical, r.reads), _duration(r.median_dwell_s), str(r.arbitrations)] for r in stats.readers],
        left=2)]]
    whose = "" if stats.ai_threshold_source == "given" else f", {stats.ai_threshold_source}"
    blocks.append([f"Disagreement (AI recalls at a score >= {stats.ai_threshold:.3g}{whose})", *_table(
        ["reader", "with the other reader (cases)", "with the AI (breasts)", "recall upheld at arbitration"],
        [[r.reader, _share(r.discordant, r.double_read), _share(r.ai_disagreements, r.ai_breasts),
          _share(r.upheld, r.arbitrated_recalls)] for r in stats.readers])])
    blocks.append([f"Site (policy: {site.policy})", *_table(
        ["", "value"],
        [["cases", str(site.cases)], ["done", str(site.done)],
         ["recall rate (done cases)", _share(site.recalled, site.done)],
         ["double-read cases to arbitration or consensus", _share(site.arbitrated, site.double_read)],
         ["median time, first read to final outcome", _duration(site.median_to_outcome_s)]])])
    truth = stats.truth
    if truth_withheld:  # reading mode: the figures would tell a reader which of their cases had cancer
        blocks.append(["Against the known outcome: not shown in reading mode (`bcir reads stats` gives it)"])
    elif truth is None:
        blocks.append(["Against the known outcome: none recorded, so no sensitivity or specificity"])
    else:
        named = {r.reader: f"reader {r.reader}" for r in stats.readers}
        lines = [*((named.get(code, f"reader {code}"), acc) for code, acc in truth.readers.items()),
                 ("reader 1 (first reads)", truth.reader_1), ("reader 2 (second reads)", truth.reader_2),
                 ("double-read outcome", truth.double_reading), (f"AI (score >= {stats.ai_threshold:.2f})", truth.ai)]
        blocks.append([f"Against the known outcome, per breast ({truth.breasts} breasts known, "
                       f"{truth.cancers} with cancer)", *_table(
                           ["", "breasts", "TP", "FN", "TN", "FP", "sensitivity", "specificity"],
                           [[label, str(acc.breasts), str(acc.tp), str(acc.fn), str(acc.tn), str(acc.fp),
                             _pct(acc.sensitivity), _pct(acc.specificity)] for label, acc in lines])])
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


# -- the plot -------------------------------------------------------------------------------------------------------

def _figure(width_px: int, height_px: int):
    """A matplotlib Figure drawn by the Agg canvas, ``width_px`` by ``height_px``; pyplot is never imported."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # never switch the backend of a pyplot someone else is using
        matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def plot_stats(stats: ReadingStats, path: str | Path) -> Path:
    """Write a PNG to ``path`` (atomically): the recall rate per reader against the site's and, where the outcome
    is known, each reader, reader 1, reader 2, the double-read outcome and the AI in ROC space (sensitivity against
    1 - specificity). One panel is PANEL_PX; with the known outcome the image is two panels wide."""
    panels = 1 if stats.truth is None else 2
    fig = _figure(PANEL_PX[0] * panels, PANEL_PX[1])
    ax = fig.add_subplot(1, panels, 1)
    codes = [r.reader for r in stats.readers]
    rates = [r.recall_rate for r in stats.readers]
    ax.bar(range(len(codes)), [0.0 if v is None else 100 * v for v in rates], color="#2c7fb8")
    for x, value in enumerate(rates):
        ax.text(x, 0 if value is None else 100 * value, _pct(value), ha="center", va="bottom", fontsize=8)
    if stats.site.recall_rate is not None:
        ax.axhline(100 * stats.site.recall_rate, color="#c0392b", ls="--", lw=1.5,
                   label=f"site (done cases): {_pct(stats.site.recall_rate)}")
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_xticks(range(len(codes)))
    ax.set_xticklabels(codes)
    top = max([100 * v for v in [*rates, stats.site.recall_rate] if v is not None], default=0.0)
    ax.set_ylim(0, max(10.0, top * 1.25))
    ax.set_xlabel("reader")
    ax.set_ylabel("recall rate (% of reads)")
    ax.set_title("Recall rate per reader", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if stats.truth is not None:
        _roc_space(fig.add_subplot(1, 2, 2), stats)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.canvas.print_png(buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _roc_space(ax, stats: ReadingStats) -> None:
    """Each reader, reader 1, reader 2, the double-read outcome and the AI as a point in ROC space, named in the
    legend with its figures (points often coincide, so no label sits on the plot)."""
    truth = stats.truth
    palette = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
    points = [(f"reader {code}", acc, "o", palette[n % len(palette)], 36)
              for n, (code, acc) in enumerate(truth.readers.items())]
    points += [("reader 1", truth.reader_1, "s", "0.35", 40), ("reader 2", truth.reader_2, "D", "0.6", 32),
               ("double reading", truth.double_reading, "*", "#c0392b", 110),
               (f"AI (>= {stats.ai_threshold:.2f})", truth.ai, "^", "#27ae60", 50)]
    for label, acc, marker, colour, size in points:
        figures = f"{label}: sens {_pct(acc.sensitivity)}, spec {_pct(acc.specificity)}"
        if acc.sensitivity is None or acc.specificity is None:  # no cancer, or no benign breast, among those counted
            ax.plot([], [], ls="none", marker=marker, color=colour, alpha=0.3, label=figures)
            continue
        ax.scatter([1 - acc.specificity], [acc.sensitivity], marker=marker, color=colour, s=size, zorder=3,
                   alpha=0.85, edgecolors="white", linewidths=0.5, label=figures)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(f"Per breast, against the known outcome ({truth.breasts} breasts)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, frameon=True, framealpha=0.85)


__all__ = ["PANEL_PX", "Accuracy", "ReaderStats", "ReadingStats", "SiteStats", "TruthStats", "format_stats",
           "plot_stats", "reading_stats"]
