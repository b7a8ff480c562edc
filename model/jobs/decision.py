"""The reader's choice after the safety gate: use the new model (accept) or keep the current one (reject)."""

from __future__ import annotations

from pathlib import Path

from model.errors import JobError, UnknownModel
from model.jobs.job import Job
from model.jobs.state import log_line, now, read_json, update_state
from model.jobs.verdict import GATE_METRICS, GateVerdict, held_out_counts, judge


def _data_report_counts(run_dir: Path) -> dict:
    report = read_json(run_dir / "data_report.json") or {}
    return {k: v for k, v in report.items() if k != "left_out"}  # left_out lists file paths; its count stays


def _part_settings(run_dir: Path) -> dict:
    """A two-pass run's parts as they were trained (model.train.two_pass: two_pass.json); {} for a single model."""
    saved = read_json(run_dir / "two_pass.json") or {}
    return {"parts": {p: saved[p] for p in ("coarse", "fine") if p in saved}} if saved else {}


class WorseModel(JobError):
    """:func:`accept` without ``force`` of a model the gate found worse on some figure; ``verdict`` says which."""

    def __init__(self, job_id: str, verdict: GateVerdict):
        self.verdict = verdict
        super().__init__(f"the new model of retrain job {job_id} is worse on {len(verdict.worse)} of "
                         f"{len(verdict.figures)} gate figures ({'; '.join(verdict.worse_lines())}): "
                         "confirm to use it anyway")


def accept(job: Job, registry=None, *, force: bool = False):
    """Add the job's new model to the registry (log, data summary and gate in its entry) and make it active.

    WorseModel (a JobError) when the gate found it worse on any figure, unless ``force``: the reader confirmed.
    JobError when the job has no finished model to use.
    """
    from model.nn.weights import read_card
    from model.registry.versions import ModelRegistry, training_data_from_card

    state = job.state()
    if state.get("state") != "done":
        raise JobError(f"retrain job {job.id} is {state.get('state')}: only a finished job's model can be used")
    path = job.new_model_path()
    if path is None:
        raise JobError(f"retrain job {job.id} has no new model")
    comparison = job.comparison()
    verdict = judge(comparison) if comparison else None
    if verdict is not None and verdict.worse and not force and state.get("decision") != "accepted":
        raise WorseModel(job.id, verdict)
    registry = registry if registry is not None else ModelRegistry()
    spec = job.spec()
    card = read_card(path)
    rows = (comparison or {}).get("rows", [])
    new_row = next((r for r in rows if r["model"] == "new" and r["available"]), None)
    counts = held_out_counts(rows)
    info = {
        "source": f"retrain job {job.id}",
        "job": str(job.dir),
        "training_data": {**training_data_from_card(card), "root": spec.root, "data_report": _data_report_counts(job.run_dir),
                          "summary": spec.data_summary},
        "settings": {**spec.train_config().to_json(), "fine_tune": spec.fine_tune, "base_model": spec.base_model,
                     "holdout_root": spec.holdout_root, "two_pass": spec.two_pass,
                     **_part_settings(job.run_dir)},
        "metrics": ({k: new_row[k] for k, _, _ in GATE_METRICS}
                    | {"auc_ci": new_row["auc_ci"], "per_type": new_row.get("per_type"), "held_out": "gate",
                       "protocol": "evaluation",
                       "patients": counts.get("patients"), "images": counts.get("images"),
                       "images_with_lesions": counts.get("images_with_lesions"), "lesions": counts.get("lesions"),
                       "malignant": counts.get("malignant"), "benign": counts.get("benign"),
                       "not_measurable": {f.key: f.not_measurable for f in verdict.figures if f.not_measurable},
                       "too_few_to_decide": bool(verdict.warnings)}
                    if new_row and verdict else (card.training.metrics if card.training else None) or {}),
        "gate": comparison,
    }
    version = card.version
    try:
        registry.get(version)  # accepted before, and the app went down before the switch
    except UnknownModel:
        registry.add(path, log_path=job.log_path, info=info)
    entry = registry.use(version)
    update_state(job.dir, decision="accepted", decided=now(), version=version)
    log_line(job.dir, f"the new model {version} was put in use"
             + (f" although worse on {len(verdict.worse)} gate figures (confirmed)" if verdict and verdict.worse else ""))
    return entry


def reject(job: Job) -> None:
    """Keep the current model: the job is marked ``kept-current`` and the registry is not touched. JobError when the
    job has not finished."""
    state = job.state()
    if state.get("state") != "done":
        raise JobError(f"retrain job {job.id} is {state.get('state')}: there is no new model to keep or drop")
    update_state(job.dir, decision="kept-current", decided=now())
    log_line(job.dir, "the current model was kept; the new one was not added")


__all__ = ["WorseModel", "accept", "reject"]
