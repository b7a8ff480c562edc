"""``bcir jobs list|show|follow|resume|pause|cancel|abandon|accept|reject``: retrain jobs from the terminal.

Jobs live in the same folder as the GUI's (``user_data_dir()/jobs``), so
either can follow, resume or decide a job the other started (``bcir retrain``,
:mod:`model.cli.retrain`, starts one). ``accept`` adds a finished job's model
to the registry and makes it active; ``reject`` keeps the current one.
``pause`` stops a job after its current batch, resumable.

Exit codes: 0 done, 1 cancelled, failed, not stopped in time or a broken model file, 2 a refusal (unknown or
ambiguous job, nothing to do, a new model worse on some gate figure accepted without ``--force``), 130 Ctrl+C.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys

from model.cli.exit_codes import Refusal, one_line
from model.cli.job_follow import CANCEL_WAIT_S, decide_hint, epoch_line, follow_and_report
from model.cli.models import print_json


def _local_time(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return _dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(iso)



# ---------------------------------------------------------------------------
# finding a job by id or prefix


def find_job(key: str, jobs_root=None):
    """The job whose id is ``key`` or starts with it; Refusal when none or several match."""
    from model.jobs.job import list_jobs

    jobs = list_jobs(jobs_root)
    exact = [j for j in jobs if j.id == key]
    if exact:
        return exact[0]
    matches = [j for j in jobs if key and j.id.startswith(key)]
    if not matches:
        raise Refusal(f"no retrain job {key!r} (`bcir jobs list` shows them)")
    if len(matches) > 1:
        shown = ", ".join(j.id for j in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise Refusal(f"{key!r} matches {len(matches)} jobs ({shown}): give more of the id")
    return matches[0]


def _job_row(job) -> dict:
    status = job.status()
    state = status.state
    try:
        root = job.spec().root
    except FileNotFoundError:
        root = None
    return {"id": job.id, "dir": str(job.dir), "state": state.get("state"), "interrupted": status.interrupted,
            "resumable": job.resumable(status), "root": root, "started": state.get("started"),
            "finished": state.get("finished"), "decision": state.get("decision"), "version": state.get("version"),
            "message": state.get("message")}


def _state_label(row: dict) -> str:
    if row["interrupted"]:
        return "interrupted, resumable" if row["resumable"] else "interrupted"
    if row["state"] == "paused":
        return "paused, resumable" if row["resumable"] else "paused"
    return row["state"] or "unknown"


def _decision_label(row: dict) -> str:
    if row["decision"] == "accepted":
        return f"accepted {row['version'] or ''}".strip()
    if row["decision"]:
        return row["decision"]
    return "undecided" if row["state"] == "done" else "-"


def _cmd_list(args: argparse.Namespace) -> int:
    from model.jobs.job import list_jobs

    rows = [_job_row(job) for job in list_jobs()]
    if args.json:
        print_json({"jobs": rows})
        return 0
    if not rows:
        print("no retrain jobs (`bcir retrain ROOT` starts one)")
        return 0
    states = [_state_label(row) for row in rows]
    decisions = [_decision_label(row) for row in rows]
    ws, wd = max(map(len, states + ["STATE"])), max(map(len, decisions + ["DECISION"]))
    print(f"{'ID':<22}  {'STATE':<{ws}}  {'STARTED':<16}  {'FINISHED':<16}  {'DECISION':<{wd}}  FOLDER")
    for row, state, decision in zip(rows, states, decisions):
        print(f"{row['id']:<22}  {state:<{ws}}  {_local_time(row['started']):<16}  {_local_time(row['finished']):<16}  "
              f"{decision:<{wd}}  {row['root'] or '?'}")
        if row["message"]:
            print(f"{'':<24}{one_line(row['message'])}")
    if any(row["interrupted"] for row in rows):
        print("interrupted: the job's process died; `bcir jobs resume JOB` continues a resumable one, "
              "`bcir jobs abandon JOB` closes it")
    if any(row["state"] == "paused" for row in rows):
        print("paused: stopped on purpose after a batch; `bcir jobs resume JOB` continues it, `bcir jobs abandon JOB` "
              "closes it")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from model.cli.retrain import held_out_words, settings_line
    from model.jobs.verdict import GATE_DICE_PROTOCOL, TRAINING_DICE_PROTOCOL, format_comparison, judge

    job = find_job(args.job)
    spec, row, history, comparison = job.spec(), _job_row(job), job.history(), job.comparison()
    new_model = job.new_model_path()
    verdict = judge(comparison) if comparison else None
    if args.json:
        print_json({**row, "alive": job.is_alive(), "spec": spec.to_json(), "state_file": job.state(),
                     "history": history, "new_model": str(new_model) if new_model else None, "comparison": comparison,
                     "judgement": verdict.to_json() if verdict else None,
                     "dice_protocols": {"history": TRAINING_DICE_PROTOCOL, "gate": GATE_DICE_PROTOCOL},
                     "log": str(job.log_path)})
        return 0
    config = spec.train_config()
    print(f"retrain job {job.id}: {_state_label(row)}")
    print(f"  folder: {spec.root}")
    summary = spec.data_summary or {}
    if summary:
        print(f"    {summary.get('usable_images')} usable {'/'.join(summary.get('views') or [])} images of "
              f"{summary.get('usable_patients')} patients; {summary.get('lesions')} lesions")
    print("  " + settings_line(config, spec))
    print(f"  safety gate on {held_out_words(spec.holdout_root)}, views {'/'.join(spec.gate_views)}, "
          f"{spec.bootstrap} bootstrap resamples; current model: {spec.base_model or 'none'}")
    print(f"  started {_local_time(row['started'])}, finished {_local_time(row['finished'])}"
          + ("; running" if job.is_alive() else ""))
    if row["message"]:
        print(f"  message: {one_line(row['message'])}")
    if history:
        last = history[-1]
        print(f"  epochs done: {len(history)}; last " + epoch_line(last.get("epoch", len(history)), config.max_epochs, last))
        print(f"    (val Dice: {TRAINING_DICE_PROTOCOL}; the gate's Dice below is measured otherwise)")
    if new_model:
        print(f"  new model: {new_model}")
    if row["state"] == "done":
        print(f"  decision: {_decision_label(row)}")
        if not row["decision"]:
            print(decide_hint(job.id))
    elif row["interrupted"] or row["state"] == "paused":
        print(f"  `bcir jobs {'resume' if row['resumable'] else 'abandon'} {job.id}`"
              + (" continues it" if row["resumable"] else " closes it (nothing to resume from)"))
    print(f"  log: {job.log_path}")
    if comparison:
        print("  safety gate:")
        for line in format_comparison(comparison, verdict=verdict).splitlines():
            print(f"    {line}")
    return 0


def _cmd_follow(args: argparse.Namespace) -> int:
    return follow_and_report(find_job(args.job))


def _cmd_resume(args: argparse.Namespace) -> int:
    job = find_job(args.job).resume()
    print(f"resumed retrain job {job.id}", flush=True)
    if args.follow:
        return follow_and_report(job)
    print(f"  bcir jobs follow {job.id}    watch it\n  bcir jobs cancel {job.id}    stop it")
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    from model.jobs.state import LIVE_STATES

    job = find_job(args.job)
    if not job.is_alive():
        state = job.state().get("state")
        if state in LIVE_STATES:
            raise Refusal(f"retrain job {job.id} is not running (interrupted): `bcir jobs abandon {job.id}` closes it")
        raise Refusal(f"retrain job {job.id} is {state}: nothing to cancel")
    print(f"cancelling retrain job {job.id} (it stops after its current batch; waiting up to {CANCEL_WAIT_S:g} s)...",
          flush=True)
    try:
        job.cancel(timeout=CANCEL_WAIT_S)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; retrain job {job.id} was asked to cancel and stops after its current batch",
              file=sys.stderr)
        return 130
    state = job.state()
    print(f"retrain job {job.id} {state.get('state')}: {one_line(state.get('message', ''))}")
    return 0 if state.get("state") == "cancelled" else 1


def _cmd_pause(args: argparse.Namespace) -> int:
    job = find_job(args.job)
    if not job.is_alive():
        raise Refusal(f"retrain job {job.id} is {_state_label(_job_row(job))}: nothing to pause")
    print(f"pausing retrain job {job.id} (it stops after its current batch; waiting up to {CANCEL_WAIT_S:g} s)...",
          flush=True)
    try:
        job.pause("asked from the command line", timeout=CANCEL_WAIT_S)
    except TimeoutError:
        print(f"retrain job {job.id} has not stopped yet; it will after its current batch", file=sys.stderr)
        return 1
    state = job.state()
    print(f"retrain job {job.id} {state.get('state')}: {one_line(state.get('message', ''))}")
    return 0 if state.get("state") == "paused" else 1


def _cmd_abandon(args: argparse.Namespace) -> int:
    job = find_job(args.job)
    job.abandon()
    print(f"closed retrain job {job.id} without resuming it: {job.state().get('message')}; its folder stays for the "
          f"log ({job.dir})")
    return 0


def _cmd_accept(args: argparse.Namespace) -> int:
    from model.errors import ModelFileError
    from model.registry.versions import ModelRegistry
    from model.jobs.decision import WorseModel, accept
    from model.jobs.verdict import judge

    job = find_job(args.job)
    registry = ModelRegistry()
    try:
        before = registry.active().version
    except ModelFileError:
        before = None
    try:
        entry = accept(job, registry, force=args.force)
    except WorseModel as exc:
        verdict = exc.verdict
        print(f"bcir jobs accept: the new model of retrain job {job.id} is worse than the current one on "
              f"{len(verdict.worse)} of {len(verdict.figures)} gate figures (current -> new):", file=sys.stderr)
        for line in verdict.worse_lines():
            print(f"  {line}", file=sys.stderr)
        for warning in verdict.warnings:
            print(f"  warning: {warning}", file=sys.stderr)
        print(f"nothing was changed; `bcir jobs accept {job.id} --force` uses it anyway", file=sys.stderr)
        return 2
    if args.force:
        comparison = job.comparison()
        worse = judge(comparison).worse if comparison else []
        if worse:
            print(f"used although worse on {len(worse)} gate figures: {', '.join(f.label for f in worse)}")
    print(f"active model: {entry.version} (from retrain job {job.id})")
    if before and before != entry.version:
        print(f"the previous one was {before}: `bcir models use {before}` goes back")
    return 0


def _cmd_reject(args: argparse.Namespace) -> int:
    from model.errors import ModelFileError
    from model.registry.versions import ModelRegistry
    from model.jobs.decision import reject

    job = find_job(args.job)
    state = job.state()
    if state.get("decision") == "accepted":
        raise Refusal(f"retrain job {job.id}'s model {state.get('version')} was accepted already: "
                      "`bcir models use VERSION` switches to another model")
    reject(job)
    try:
        current = ModelRegistry().active().version
    except ModelFileError:
        current = "none"
    print(f"kept the current model ({current}); retrain job {job.id}'s new model was not added to the registry")
    return 0


def register(subparsers) -> None:
    """Add the ``jobs`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("jobs", help="retrain jobs: list, show, follow, resume, pause, cancel, abandon, accept, "
                                           "reject")
    sub = p.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    job_help = "job id or a unique prefix of it"

    q = sub.add_parser("list", help="every job; marks interrupted and resumable ones")
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    q.set_defaults(func=_cmd_list)

    q = sub.add_parser("show", help="a job's settings, state, last epoch and safety gate")
    q.add_argument("job", help=job_help)
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    q.set_defaults(func=_cmd_show)

    q = sub.add_parser("follow", help="watch a job (Ctrl+C stops watching, not the job)")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_cmd_follow)

    q = sub.add_parser("resume", help="continue an interrupted job after its last complete epoch")
    q.add_argument("job", help=job_help)
    q.add_argument("--follow", action="store_true", help="then watch it")
    q.set_defaults(func=_cmd_resume)

    q = sub.add_parser("cancel", help="stop a running job after its current batch (no model is kept)")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_cmd_cancel)

    q = sub.add_parser("pause", help="stop a running job after its current batch, resumable (`jobs resume`)")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_cmd_pause)

    q = sub.add_parser("abandon", help="close an interrupted or paused job instead of resuming it")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_cmd_abandon)

    q = sub.add_parser("accept", help="add a finished job's model to the registry and make it active (refused when "
                                      "the gate found it worse on any figure, unless --force)")
    q.add_argument("job", help=job_help)
    q.add_argument("--force", action="store_true", help="use the new model even when it is worse on some gate figure")
    q.set_defaults(func=_cmd_accept)

    q = sub.add_parser("reject", help="keep the current model; the job's model is not added")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_cmd_reject)


__all__ = ["find_job", "register"]
