"""The safety gate: the current and the new model evaluated on the same held-out patients (comparison.json).

The held-out patients are those of a locked hold-out folder when one is given,
else the new run's own patient-level validation split. The new model is the
run's best epoch by validation Dice (``run/best.safetensors``; the final
epoch's ``run/model.safetensors`` only when no epoch was validated). The
figures are judged by :func:`model.jobs.verdict.judge`. The gate never
switches the active model: :func:`model.jobs.decision.accept` does, when the
reader says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model.jobs.spec import JobSpec
from model.jobs.state import now, one_line
from model.jobs.verdict import GATE_DICE_PROTOCOL, GATE_METRICS, better_by_figure, judge


def _row(name: str, path: Path, report, key) -> dict:
    data = report.to_json(details=False)
    row = {"model": name, "available": True, "version": report.model_version, "weights": str(path),
           "patients": key.hashes({r["patient_id"] for r in report.per_image}), "images": report.images,
           "images_with_lesions": report.images_with_lesions, "lesions": report.lesions,
           "abnormalities_scored": report.abnormalities_scored, "malignant": report.malignant, "benign": report.benign,
           "held_out_rule": report.held_out_rule, "notes": list(report.notes), "seconds": report.seconds}
    for metric, _, _ in GATE_METRICS:
        row[metric] = data[metric]
    row["auc_ci"] = list(data["auc_ci"])
    row["per_type"] = data["per_type"]  # each lesion type's AUC and CI, for the reader's trust line
    return row


def run_gate(spec: JobSpec, new_model: Path, split_val: list[str] | None = None, *,
             split: dict | None = None, should_stop: Callable[[], bool] | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Evaluate the current and the new model on the same held-out patients; the comparison.json content.

    Patients: every patient of ``spec.holdout_root`` when given, else the new
    run's validation patients on ``spec.root``: ``split`` (the run's
    ``split.json``, hashed patients read with the site key) or ``split_val``
    (their IDs). Both models get the same index, views, patients and bootstrap
    seed. comparison.json names the patients by the site's hashes, never by
    ID (model.data.split). Raises Cancelled when ``should_stop`` asks.
    """
    from model.data.split import site_key, split_of_section
    from model.data.study_index import build_index
    from model.errors import ConfigError, DataError, ModelFileError
    from model.evaluate.evaluation import evaluate
    from model.nn.weights import read_card

    config = spec.train_config()
    key = site_key()
    notes: list[str] = []
    if spec.holdout_root:
        index = build_index(spec.holdout_root)
        patients = sorted({i.patient_id for i in index.images})
        rule = "holdout-folder"
        description = f"every patient of the locked hold-out folder {index.root} ({len(patients)})"
    else:
        index = build_index(spec.root)
        if split is not None:
            split_val = list(split_of_section(split, index, config.to_json(), source="the run's validation split").val)
        patients = sorted(split_val or [])
        rule = "validation-split"
        description = f"the new run's patient-level validation split of {index.root} ({len(patients)} patients)"
        notes.append("the new model's best epoch was chosen on these validation patients, so its figures are slightly "
                     "optimistic; a locked hold-out folder avoids this")
    if not patients:
        raise DataError("no held-out patients to compare the models on")

    rows: list[dict] = []
    for name, path in (("current", spec.base_model), ("new", str(new_model))):
        if not path:
            rows.append({"model": name, "available": False, "reason": "no current model was given"})
            continue

        def report_progress(event, name=name):
            if progress:
                progress(name, event.done, event.total)

        try:
            report = evaluate(index, path, device=config.device, views=spec.gate_views, patients=patients,
                              bootstrap=spec.bootstrap, should_stop=should_stop, progress=report_progress)
        except (ModelFileError, DataError, ConfigError) as exc:  # this model cannot be evaluated: its row says why
            rows.append({"model": name, "available": False, "weights": str(path), "reason": one_line(str(exc))})
            notes.append(f"{name} model not evaluated: {one_line(str(exc))}")
            continue
        rows.append(_row(name, Path(path), report, key))
        notes += [f"{name}: {n}" for n in report.notes]

    current, new = (next((r for r in rows if r["model"] == m and r["available"]), None) for m in ("current", "new"))
    if current and new:
        if current["patients"] != new["patients"] or current["images"] != new["images"]:
            notes.append("the two models were evaluated on different images: the comparison is not like for like")
        ci_a, ci_b = current["auc_ci"], new["auc_ci"]
        if None not in ci_a and None not in ci_b and ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1]:
            notes.append("the AUCs' 95% confidence intervals overlap: the AUC difference may be chance")
    try:
        new_card = read_card(new_model)
    except ModelFileError:  # the rows above say why the new model could not be evaluated
        new_card = None
    new_metrics = (new_card.training.metrics if new_card is not None and new_card.training else None) or {}
    chosen = "best" if new_model.name == "best.safetensors" else "final"
    comparison = {
        "format": "bcir-gate/1",
        "created": now(),
        "rule": rule,
        "description": description,
        "root": index.root,
        "views": list(spec.gate_views),
        "patients": key.hashes(patients),  # the site's hashes (model.data.split): comparison.json goes into the registry
        "patient_key": key.id,
        "bootstrap": spec.bootstrap,
        "metrics": [{"key": k, "label": label, "higher_is_better": higher} for k, label, higher in GATE_METRICS],
        "rows": rows,
        "better": better_by_figure(current, new),
        "protocol": GATE_DICE_PROTOCOL,
        "new_model": {"path": str(new_model), "choice": chosen,
                      "epoch": new_metrics.get("epoch"),
                      "version": new_card.version if new_card is not None else None},
        "notes": notes,
    }
    verdict = judge(comparison)
    comparison["better"] = {f.key: f.verdict for f in verdict.figures}  # a figure that cannot be measured: None
    comparison["judgement"] = verdict.to_json()
    return comparison


__all__ = ["run_gate"]
