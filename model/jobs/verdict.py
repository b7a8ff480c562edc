"""The safety gate's figures judged in one place: which model is better on each, what cannot be measured, what
stands behind each figure, and the gate as a text table.

:func:`judge` reads a comparison (comparison.json, :func:`model.jobs.gate.run_gate`)
and says, per figure, both values, which model is better, how many held-out
images, lesions and abnormalities stand behind it, and "not measurable" where
the held-out set cannot give it (an AUC needs both pathologies); and whether
the held-out set is too small to decide (:func:`model.evaluate.held_out.held_out_warnings`,
also used before a run starts). :func:`model.jobs.decision.accept` refuses a
model worse on any figure unless forced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from model.evaluate.held_out import AUC_MIN_PER_CLASS, held_out_warnings, plural

# (key in EvalReport.to_json(), label, higher is better)
GATE_METRICS = (
    ("dice_mean", "Dice", True),
    ("iou_mean", "IoU", True),
    ("lesion_sensitivity", "Lesion sensitivity", True),
    ("fp_per_image", "False positives per image", False),
    ("auc", "Malignancy AUC", True),
    ("sensitivity", "Sensitivity", True),
    ("specificity", "Specificity", True),
)
# Where each Dice comes from: the training curve and the gate measure different things on purpose.
TRAINING_DICE_PROTOCOL = ("training protocol: ROI tiles centred on each validation lesion plus lesion-free tiles, "
                          "Dice pooled over every tile; it picks the best epoch")
GATE_DICE_PROTOCOL = ("evaluation protocol (`bcir eval`): whole CC views read as the viewer reads them, Dice per image "
                      "with a lesion, averaged; AUC of the malignancy head on a ROI at each true abnormality")


def better_by_figure(current: dict | None, new: dict | None) -> dict[str, str | None]:
    """Per gate figure: "new", "current", "tie", or None when either value is missing (the raw comparison, before
    :func:`judge` sets aside what cannot be measured)."""
    out: dict[str, str | None] = {}
    for key, _, higher in GATE_METRICS:
        a = (current or {}).get(key)
        b = (new or {}).get(key)
        if a is None or b is None:
            out[key] = None
        elif abs(a - b) < 1e-9:
            out[key] = "tie"
        else:
            out[key] = "new" if (b > a) == higher else "current"
    return out


@dataclass
class GateFigure:
    """One row of the gate: both models' values and texts, which is better, and what stands behind the figure."""

    key: str
    label: str
    higher_is_better: bool
    current: float | None
    new: float | None
    current_text: str
    new_text: str
    verdict: str | None  # "new", "current" (the new model is worse), "tie", or None: not comparable
    held_out: str  # "4 images with a lesion, 2 patients"
    not_measurable: str | None = None  # why neither value is a figure, e.g. "not measurable: one class only"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class GateVerdict:
    figures: list[GateFigure]
    patients: int
    warnings: list[str]  # the held-out set is too small to decide (held_out_warnings)
    protocol: str = GATE_DICE_PROTOCOL

    @property
    def worse(self) -> list[GateFigure]:
        return [f for f in self.figures if f.verdict == "current"]

    @property
    def better(self) -> list[GateFigure]:
        return [f for f in self.figures if f.verdict == "new"]

    def summary(self) -> str:
        unmeasured = sum(f.not_measurable is not None for f in self.figures)
        text = (f"new model better on {len(self.better)}, current better on {len(self.worse)} of "
                f"{len(self.figures)} gate figures")
        if unmeasured:
            text += f" ({unmeasured} not measurable)"
        if self.warnings:
            text += f"; {plural(self.patients, 'held-out patient')}: too few to decide"
        return text

    def worse_lines(self) -> list[str]:
        """'Dice: 0.467 -> 0.187 (4 images with a lesion, 2 patients)' for each figure where the new model is worse."""
        return [f"{f.label}: {f.current_text} -> {f.new_text} ({f.held_out})" for f in self.worse]

    def to_json(self) -> dict:
        return {"figures": [f.to_json() for f in self.figures], "patients": self.patients, "warnings": self.warnings,
                "worse": [f.key for f in self.worse], "better": [f.key for f in self.better], "protocol": self.protocol,
                "summary": self.summary()}


def held_out_counts(rows: list[dict]) -> dict:
    """The held-out counts behind the figures: the new model's row, else the current one's (both see the same images)."""
    for name in ("new", "current"):
        row = next((r for r in rows if r.get("model") == name and r.get("available")), None)
        if row is not None:
            patients = row.get("patients")
            return {"patients": len(patients) if isinstance(patients, list) else patients,
                    "images": row.get("images"), "images_with_lesions": row.get("images_with_lesions"),
                    "lesions": row.get("lesions"), "scored": row.get("abnormalities_scored"),
                    "malignant": row.get("malignant"), "benign": row.get("benign")}
    return {}


def _held_out_text(key: str, c: dict) -> str:
    def n(value, word: str) -> str:
        return f"{value} {word}" if value is not None else f"? {word}"

    patients = f", {plural(c['patients'], 'patient')}" if c.get("patients") is not None else ""
    if key in ("dice_mean", "iou_mean"):
        if c.get("images_with_lesions") is None:
            return n(c.get("images"), "images") + patients
        return plural(c["images_with_lesions"], "image") + " with a lesion" + patients
    if key == "lesion_sensitivity":
        return n(c.get("lesions"), "lesions") + patients
    if key == "fp_per_image":
        return n(c.get("images"), "images") + patients
    if key == "auc":
        return f"{n(c.get('malignant'), 'malignant')}, {n(c.get('benign'), 'benign')}{patients}"
    if key == "sensitivity":
        return n(c.get("malignant"), "malignant") + patients
    return n(c.get("benign"), "benign") + patients


def _not_measurable(key: str, c: dict, values: list) -> str | None:
    """Why a figure cannot be measured on this held-out set (the same for both models), or None."""
    m, b = c.get("malignant"), c.get("benign")
    if key == "auc":
        if c.get("scored") == 0:
            return "not measurable: no abnormality scored"
        if m is not None and b is not None:
            if m == 0 or b == 0:
                return f"not measurable: one class only ({m + b} {'benign' if m == 0 else 'malignant'})"
            if min(m, b) < AUC_MIN_PER_CLASS:
                return (f"not measurable: too few ({m} malignant, {b} benign; at least {AUC_MIN_PER_CLASS} of each "
                        "needed)")
        elif c.get("scored") is not None and c["scored"] < 2 * AUC_MIN_PER_CLASS:  # a gate saved before the counts were
            return f"not measurable: too few ({c['scored']} abnormalities scored)"
    if key == "sensitivity" and m == 0:
        return "not measurable: no malignant abnormality"
    if key == "specificity" and b == 0:
        return "not measurable: no benign abnormality"
    if key in ("dice_mean", "iou_mean") and c.get("images_with_lesions") == 0:
        return "not measurable: no image with a lesion"
    if key == "lesion_sensitivity" and c.get("lesions") == 0:
        return "not measurable: no lesion"
    if values and all(v is None for v in values):
        return "not measurable" + (": one class only" if key == "auc" else "")
    return None


def _value_text(row: dict | None, key: str, reason: str | None) -> str:
    if not row or not row.get("available"):
        return "n/a" + (f" ({row['reason']})" if row and row.get("reason") else "")
    if reason:
        return reason
    value = row.get(key)
    if value is None:
        return "not measurable"
    text = f"{value:.3f}"
    ci = row.get("auc_ci") if key == "auc" else None
    if ci and None not in ci:
        text += f" (95% CI {ci[0]:.2f}-{ci[1]:.2f})"
    return text


def judge(comparison: dict) -> GateVerdict:
    """The gate's table as the reader must read it: per figure both values, which model is better, the held-out
    size behind it, and "not measurable" where the held-out set cannot give the figure (an AUC from one class)."""
    rows = comparison.get("rows", [])
    by_model = {r.get("model"): r for r in rows}
    current, new = (by_model.get(m) if (by_model.get(m) or {}).get("available") else None for m in ("current", "new"))
    counts = held_out_counts(rows)
    raw = better_by_figure(current, new)
    figures = []
    for key, label, higher in GATE_METRICS:
        values = [r.get(key) for r in (current, new) if r]
        reason = _not_measurable(key, counts, values)
        figures.append(GateFigure(
            key=key, label=label, higher_is_better=higher,
            current=(current or {}).get(key), new=(new or {}).get(key),
            current_text=_value_text(by_model.get("current"), key, reason),
            new_text=_value_text(by_model.get("new"), key, reason),
            verdict=None if reason else raw.get(key), held_out=_held_out_text(key, counts), not_measurable=reason))
    patients = counts.get("patients")
    if patients is None:
        patients = len(comparison.get("patients") or [])
    warnings = held_out_warnings(patients, counts.get("lesions"), counts.get("malignant"), counts.get("benign"))
    return GateVerdict(figures, patients, warnings)


def format_comparison(comparison: dict, *, notes: bool = True, verdict: GateVerdict | None = None) -> str:
    """The gate as a small text table (the log and the terminal), judged by :func:`judge`: both values, which is
    better, and the held-out size behind each figure; ``notes=False`` leaves the notes out (they may name patients).
    ``verdict``: :func:`judge` of this comparison, when the caller has it already."""
    verdict = verdict if verdict is not None else judge(comparison)
    lines = [f"held out: {comparison.get('description')}", f"protocol: {comparison.get('protocol') or GATE_DICE_PROTOCOL}"]
    width = max(len(label) for _, label, _ in GATE_METRICS)

    def cell(text: str, f: GateFigure) -> str:
        return "not measurable" if f.not_measurable and text == f.not_measurable else text

    wc = max([22] + [len(cell(f.current_text, f)) for f in verdict.figures])
    wn = max([22] + [len(cell(f.new_text, f)) for f in verdict.figures])
    lines.append(f"{'':{width}}  {'current':>{wc}}  {'new':>{wn}}  better   held out")
    for f in verdict.figures:
        why = f" ({f.not_measurable.removeprefix('not measurable: ')})" if f.not_measurable else ""
        lines.append(f"{f.label:{width}}  {cell(f.current_text, f):>{wc}}  {cell(f.new_text, f):>{wn}}  "
                     f"{f.verdict or '-':<7}  {f.held_out}{why}")
    if verdict.worse:
        lines.append(f"the new model is worse on {len(verdict.worse)} of {len(verdict.figures)} figures: "
                     + ", ".join(f.label for f in verdict.worse))
    lines += [f"warning: {w}" for w in verdict.warnings]
    if notes:
        lines += [f"note: {n}" for n in comparison.get("notes", [])]
    return "\n".join(lines)


__all__ = ["GATE_DICE_PROTOCOL", "GATE_METRICS", "TRAINING_DICE_PROTOCOL", "GateFigure", "GateVerdict", "better_by_figure",
           "format_comparison", "held_out_counts", "judge"]
