"""The evaluation report: ROC curve, reliability diagram, FROC curve and training curves as PNG, and a Markdown
page that explains the numbers.

matplotlib is imported inside the plotting functions, with the Agg backend and
no pyplot, so importing :mod:`model` stays light and never pulls a GUI toolkit.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from model.fileio import atomic_write_bytes, atomic_write_json

# From shared/spec/cbis-ddsm.md ("Published results to compare against").
PUBLISHED_RESULTS = """\
| work | task | result |
|---|---|---|
| Shen et al. 2019, Sci Rep | whole-image benign vs malignant | AUC 0.88 single model, 0.91 ensemble (patient-level split) |
| Sun et al. (AUNet) 2018 | mass segmentation, whole mammograms | Dice 0.818 |
| Baccouche et al. 2021 (Connected-UNets) | mass segmentation on ROI crops | Dice 0.895, IoU 0.800 |
| the B-Cir U-Net paper | "accuracy" | 99.67% train / 98.07% validation, metric not defined (pixel accuracy is trivially high when lesions are small) |"""


def _figure(width: float = 5.5, height: float = 5.0):
    """A matplotlib Figure drawn by the Agg canvas; pyplot is never imported."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # never switch the backend of a pyplot someone else is using
        matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.canvas.print_png(buffer)
    return buffer.getvalue()


def _fmt(value, digits: int = 3, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}%" if pct else f"{value:.{digits}f}"


def _ci(ci) -> str:
    low, high = ci
    return "n/a" if low is None or high is None else f"{low:.3f}-{high:.3f}"


def plot_roc(report) -> bytes | None:
    """ROC of the malignancy head (paper protocol), plus the case-score ROC; None when a class is missing."""
    points = report.roc_points()
    if points is None:
        return None
    fig = _figure(5.5, 6.2)
    ax = fig.add_subplot(1, 1, 1)
    fpr, tpr = points
    ax.plot(fpr, tpr, color="#c0392b", lw=2, drawstyle="default",
            label=f"malignancy head at GT lesions: AUC {_fmt(report.auc)} (95% CI {_ci(report.auc_ci)}), "
                  f"n={report.abnormalities_scored}")
    case = report.case_roc_points()
    if case is not None:
        ax.plot(case[0], case[1], color="#2c7fb8", lw=1.5, ls="--",
                label=f"case score per image: AUC {_fmt(report.case_auc)} (95% CI {_ci(report.case_auc_ci)}), n={report.images}")
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="chance (AUC 0.5)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_title(f"ROC, {report.model_version}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=7, frameon=False)
    fig.tight_layout()
    return _png(fig)


def plot_reliability(report) -> bytes | None:
    """Reliability diagram of p(malignant): observed share of malignant against the mean p per equal-width bin, as
    served and (with a calibration) the head's own, over a histogram of the counts; None with nothing scored."""
    served = report.reliability
    if not served or not any(b["count"] for b in served):
        return None
    fig = _figure(5.5, 6.2)
    ax = fig.add_axes([0.14, 0.36, 0.8, 0.56])
    hist = fig.add_axes([0.14, 0.08, 0.8, 0.18], sharex=ax)
    series = [("p(malignant) as served" + (" (calibrated)" if report.calibration else ""), served, "#c0392b",
               report.ece)]
    if report.reliability_uncalibrated:
        series.append(("the head uncalibrated", report.reliability_uncalibrated, "#7f8c8d", report.ece_uncalibrated))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="perfect calibration")
    width = 1.0 / len(served)
    for n, (label, bins, colour, ece) in enumerate(series):
        used = [b for b in bins if b["count"]]
        ax.plot([b["mean_p"] for b in used], [b["positive_fraction"] for b in used], marker="o", ms=4, color=colour,
                lw=1.5 if n == 0 else 1, ls="-" if n == 0 else "--", label=f"{label}: ECE {_fmt(ece)}")
        offset = (n - (len(series) - 1) / 2) * width / len(series)
        hist.bar([(b["low"] + b["high"]) / 2 + offset for b in bins], [b["count"] for b in bins],
                 width=width / len(series) * 0.9, color=colour, alpha=0.7 if n == 0 else 0.45)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("share malignant in the bin")
    ax.set_title(f"Reliability, {report.model_version} ({len(served)} equal-width bins, n={report.abnormalities_scored})",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(labelbottom=False)
    hist.set_xlabel("p(malignant), mean per bin")
    hist.set_ylabel("count", fontsize=8)
    hist.grid(alpha=0.3)
    return _png(fig)


def plot_froc(report) -> bytes | None:
    """Lesion sensitivity against false positives per image over the listed lesions; the curve ends where the listed
    lesions end (the segmentation threshold). None when there is no lesion."""
    froc = report.froc or {}
    points = froc.get("points") or []
    if froc.get("max_sensitivity") is None or len(points) < 1:
        return None
    fig = _figure(5.5, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    left = 0.1  # a log axis: the points with fewer false positives are drawn at its left edge
    xs, ys = [max(p[0], left) for p in points], [p[1] for p in points]
    ax.step(xs, ys, where="post", color="#2c7fb8", lw=2, label=f"listed lesions by peak probability, "
                                                                  f"{froc['lesions']} lesions in {froc['images']} images")
    reach = froc["max_fp_per_image"]
    ax.axvline(max(reach, left), color="0.5", ls=":", lw=1, label=f"the last listed lesion: {reach:.2f} FP/image")
    for rate, sens in zip(froc["fp_rates"], froc["sensitivity"]):
        if sens is not None:
            ax.plot([rate], [sens], "o", color="#c0392b", ms=5)
            ax.annotate(f"{sens:.2f}", (rate, sens), textcoords="offset points", xytext=(0, 7), fontsize=7,
                        ha="center")
        else:
            ax.annotate("not\nreached", (rate, 0.03), fontsize=7, ha="center", color="0.35")
    ax.set_xscale("log")
    ax.set_xlim(left, max(6.0, reach * 1.3))
    ax.set_xticks(list(froc["fp_rates"]))
    ax.set_xticklabels([f"{r:g}" for r in froc["fp_rates"]])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("lesion sensitivity")
    ax.set_title(f"FROC, {report.model_version}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def plot_training_curves(history: list[dict]) -> bytes | None:
    """Train/val loss and val Dice per epoch; None when the history holds no epoch with a loss."""
    rows = [h for h in history or [] if isinstance(h, dict) and h.get("epoch") is not None]
    if not rows:
        return None

    def series(key):
        pts = [(h["epoch"], h[key]) for h in rows if isinstance(h.get(key), (int, float))]
        return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None

    train, val, dice = series("train_loss"), series("val_loss"), series("val_dice")
    if not (train or val or dice):
        return None
    fig = _figure(8.5, 3.8)
    ax_loss = fig.add_subplot(1, 2, 1)
    if train:
        ax_loss.plot(*train, marker="o", ms=3, label="train loss")
    if val:
        ax_loss.plot(*val, marker="o", ms=3, label="validation loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss", fontsize=10)
    ax_loss.grid(alpha=0.3)
    if train or val:
        ax_loss.legend(fontsize=8)
    ax_dice = fig.add_subplot(1, 2, 2)
    if dice:
        ax_dice.plot(*dice, marker="o", ms=3, color="#2ca25f", label="validation Dice")
        ax_dice.legend(fontsize=8)
    else:
        ax_dice.text(0.5, 0.5, "no validation Dice recorded", ha="center", va="center", transform=ax_dice.transAxes)
    ax_dice.set_ylim(0, 1)
    ax_dice.set_xlabel("epoch")
    ax_dice.set_ylabel("Dice")
    ax_dice.set_title("validation Dice", fontsize=10)
    ax_dice.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _card_notices(card: dict) -> list[str]:
    """Every string of the model card that speaks of clinical use (the 'not for clinical use' note)."""
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            if "clinical" in value.lower() and value not in found:
                found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk({k: v for k, v in (card or {}).items() if k != "training"})
    walk({k: v for k, v in ((card or {}).get("training") or {}).items() if k != "history"})
    return found


def _calibration_lines(r) -> list[str]:
    from model.evaluate.evaluation import operating_point_text
    from model.evaluate.metrics import ECE_BINS

    lines = ["## Calibration of p(malignant)", ""]
    cal = r.calibration
    if cal:
        fitted = cal.get("fitted_on") or {}
        count = (fitted.get("patients") or {}).get("count") if isinstance(fitted.get("patients"), dict) else None
        lines += [f"The model card calibrates the head by temperature scaling: p = sigmoid(logit(p of the head) / T), "
                  f"T = {cal.get('temperature', float('nan')):.4g}, fitted on "
                  f"{count if count is not None else 'an unstated number of'} {fitted.get('rule', 'validation')} "
                  f"patients ({fitted.get('abnormalities', '?')} abnormalities; ECE there "
                  f"{_fmt(cal.get('ece_before'))} before, {_fmt(cal.get('ece_after'))} after).", ""]
    else:
        lines += ["The model card has no calibration: p(malignant) is the head's own (`bcir calibrate` fits one on "
                  "the validation patients).", ""]
    lines += [
        "| figure | value | how it is measured |",
        "|---|---|---|",
        f"| expected calibration error | {_fmt(r.ece)} | p(malignant) as the model serves it, {ECE_BINS} equal-width "
        "bins of p: sum over bins of (share of the abnormalities) x abs(share malignant - mean p) |",
    ]
    if cal:
        lines.append(f"| ECE of the head uncalibrated | {_fmt(r.ece_uncalibrated)} | the same abnormalities and bins |")
    op = r.operating_point or {}
    how = operating_point_text(op)
    lines += [
        f"| operating point | p >= {op.get('threshold', r.malignancy_threshold):.4g} | {how} |",
        f"| sensitivity at the operating point | {_fmt(r.sensitivity_at_operating_point, pct=True)} | malignant "
        "lesions called malignant |",
        f"| specificity at the operating point | {_fmt(r.specificity_at_operating_point, pct=True)} | benign lesions "
        "called benign |",
        "",
    ]
    return lines


def _froc_lines(r) -> list[str]:
    froc = r.froc or {}
    lines = ["## Detection: FROC", ""]
    if froc.get("max_sensitivity") is None:
        return lines + ["No FROC: no lesion among the evaluated images.", ""]
    lines += ["| false positives per image | " + " | ".join(f"{x:g}" for x in froc["fp_rates"]) + " |",
              "|---|" + "---|" * len(froc["fp_rates"]),
              "| lesion sensitivity | " + " | ".join("not reached" if v is None else f"{v:.3f}"
                                                    for v in froc["sensitivity"]) + " |",
              "",
              "The listed lesions (as the findings panel lists them) are ranked by their peak probability; at each "
              "cut-off a lesion is found when a kept listed lesion overlaps it, and a kept listed lesion touching no "
              "lesion is a false positive. The sensitivity at a rate is the highest with at most that many false "
              f"positives per image. Lesions under the segmentation threshold ({r.segmentation_threshold:g}) are "
              f"never listed, so the curve ends at {froc['max_fp_per_image']:.2f} false positives per image "
              f"(sensitivity {froc['max_sensitivity']:.3f}): a rate beyond it is **not reached**, never "
              "extrapolated.", ""]
    return lines


def markdown(report, *, roc_written: bool, curves_written: bool, curves_reason: str | None = None,
             reliability_written: bool = False, froc_written: bool = False) -> str:
    from model.evaluate.evaluation import passes_line

    r = report
    lines = [f"# Evaluation of {r.model_version}", ""]
    notices = _card_notices(r.model_card)
    for notice in notices:
        lines += [f"> **{notice}**", ""]
    lines += [
        f"- Data: `{r.root}` (fingerprint `{r.data_fingerprint}`), views {', '.join(r.views)}",
        f"- Held-out rule: **{r.held_out_rule}**: {r.held_out_description}.",
        f"- Evaluated: {r.patients} patients, {r.images} images ({r.images_with_lesions} with lesions), "
        f"{r.lesions} lesions with usable masks.",
        f"- Left out: {r.abnormalities_with_problems} abnormalities whose mask is unusable (e.g. a mask of another size "
        "than its image, never resized); skipped images: "
        + (", ".join(f"{k}: {v}" for k, v in r.images_skipped.items()) or "none") + ".",
        f"- Device: {r.device}; {r.seconds:.1f} s.",
        f"- Passes: {passes_line(r)}"
        + (" (both passes on every view; p(malignant), its calibration and the operating point are the fine "
           "pass's)." if r.two_pass else "."),
        "",
        "## Numbers",
        "",
        "| metric | value | how it is measured |",
        "|---|---|---|",
        f"| Dice per image | {_fmt(r.dice_mean)} | the listed lesions vs the union of the image's lesion masks, mean over images with lesions |",
        f"| IoU per image | {_fmt(r.iou_mean)} | same pairs as Dice |",
        f"| Dice per lesion | {_fmt(r.dice_mean_per_lesion)} | each lesion vs the listed lesions overlapping it; a missed lesion counts 0 |",
        f"| IoU per lesion | {_fmt(r.iou_mean_per_lesion)} | same pairs |",
    ]
    for kind, stats in r.per_type.items():
        lines.append(f"| Dice per lesion, {kind} | {_fmt(stats['dice_mean'])} | {stats['lesions']} lesions, "
                     f"{_fmt(stats['sensitivity'], pct=True)} detected |")
    lines += [
        f"| lesion sensitivity | {_fmt(r.lesion_sensitivity, pct=True)} ({r.lesions_detected}/{r.lesions}) | a lesion is found when a listed lesion overlaps it |",
        f"| false positives per image | {_fmt(r.fp_per_image, 2)} ({r.false_positives} in {r.images} images) | listed lesions (>= {r.min_lesion_mm2:g} mm², as the findings panel lists them) touching no lesion, lesion-free images included |",
        f"| malignancy AUC | {_fmt(r.auc)} (95% CI {_ci(r.auc_ci)}) | the head on a ROI centred on each ground-truth lesion (the paper's protocol), {r.malignant} malignant / {r.benign} benign; percentile bootstrap over lesions |",
    ]
    for kind, stats in r.per_type.items():
        ci = stats.get("auc_ci") or (None, None)  # a report written before the per-type interval has none
        lines.append(f"| malignancy AUC, {kind} | {_fmt(stats['auc'])} (95% CI {_ci(ci)}) | the same, on the "
                     f"{stats['lesions']} lesions of this type alone, {stats['malignant']} malignant |")
    lines += [
        f"| sensitivity at p >= {r.malignancy_threshold:g} | {_fmt(r.sensitivity, pct=True)} | malignant lesions called malignant (the fixed 0.5; the operating point's below) |",
        f"| specificity at p >= {r.malignancy_threshold:g} | {_fmt(r.specificity, pct=True)} | benign lesions called benign |",
        f"| case-score AUC | {_fmt(r.case_auc)} (95% CI {_ci(r.case_auc_ci)}) | per image: the highest lesion score of the whole-view result, as the app shows it |",
        f"| pixel accuracy | {_fmt(r.pixel_accuracy, pct=True)} | share of pixels labelled correctly, whole images |",
        f"| pixel accuracy of predicting all background | {_fmt(r.pixel_accuracy_all_background, pct=True)} | the same pixels, a model that finds nothing |",
        "",
        "Pixel accuracy must be read against the all-background baseline: lesions cover "
        f"{_fmt(r.lesion_pixel_fraction, pct=True)} of these pixels, so a model that finds nothing at all already "
        f"scores {_fmt(r.pixel_accuracy_all_background, pct=True)}. A high pixel accuracy alone says nothing about "
        "finding lesions; Dice, lesion sensitivity and false positives per image do.",
        "",
        "Undefined numbers are shown as n/a (null in the JSON), never filled in: an AUC needs both benign and "
        "malignant cases.",
        "",
    ]
    lines += _calibration_lines(r) + _froc_lines(r)
    if r.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in r.notes] + [""]
    lines += ["## Figures", ""]
    if roc_written:
        lines += ["![ROC curve](roc.png)", ""]
    else:
        lines += ["No ROC curve: the scored abnormalities hold only one class (benign or malignant), so it is undefined.", ""]
    if reliability_written:
        lines += ["![Reliability diagram](reliability.png)", ""]
    else:
        lines += ["No reliability diagram: no abnormality was scored.", ""]
    if froc_written:
        lines += ["![FROC curve](froc.png)", ""]
    else:
        lines += ["No FROC curve: no lesion among the evaluated images.", ""]
    if curves_written:
        lines += ["![Training curves](training_curves.png)", ""]
    else:
        lines += [f"No training curves: {curves_reason or 'no training history was given'}.", ""]
    lines += [
        "## Published results, for context",
        "",
        "Same data (CBIS-DDSM), different splits, protocols and metrics: these numbers are context, not a "
        "like-for-like comparison, and numbers measured on synthetic demo studies compare with none of them.",
        "",
        PUBLISHED_RESULTS,
        "",
    ]
    return "\n".join(lines)


def write_report(report, out_dir: str | Path, history: list[dict] | None = None) -> Path:
    """Write ``roc.png``, ``reliability.png``, ``froc.png``, ``training_curves.png`` (each when it can be drawn),
    ``report.md`` and ``report.json``.

    ``history`` defaults to the model card's training history. Returns the
    path of ``report.md``. Every file is written atomically. The folder is meant
    to be shared: no file in it names a patient (``report.json`` holds the site's
    patient hashes, no paths; see EvalReport.to_json).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    roc = plot_roc(report)
    # a figure left by an earlier report in this folder would describe another evaluation
    if roc is not None:
        atomic_write_bytes(out / "roc.png", roc)
    else:
        (out / "roc.png").unlink(missing_ok=True)
    figures = {}
    for name, plot in (("reliability.png", plot_reliability), ("froc.png", plot_froc)):
        figures[name] = plot(report)
        if figures[name] is not None:
            atomic_write_bytes(out / name, figures[name])
        else:
            (out / name).unlink(missing_ok=True)
    if history is None:
        history = report.history
    curves = plot_training_curves(history) if history else None
    if curves is not None:
        atomic_write_bytes(out / "training_curves.png", curves)
    else:
        (out / "training_curves.png").unlink(missing_ok=True)
    reason = None
    if curves is None:
        reason = ("the model card has no training history (e.g. weights not trained by this module)" if not history
                  else "the training history records no losses or Dice per epoch")
    atomic_write_json(out / "report.json", report.to_json(shareable=True))  # hashed patients, no paths: may be sent on
    path = out / "report.md"
    atomic_write_bytes(path, markdown(report, roc_written=roc is not None, curves_written=curves is not None,
                                      curves_reason=reason,
                                      reliability_written=figures["reliability.png"] is not None,
                                      froc_written=figures["froc.png"] is not None).encode("utf-8"))
    return path


__all__ = ["PUBLISHED_RESULTS", "markdown", "plot_froc", "plot_reliability", "plot_roc", "plot_training_curves",
           "write_report"]
