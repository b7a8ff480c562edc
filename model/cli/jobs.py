"""``bcir retrain ROOT`` and ``bcir jobs ...``: the Retrain dialog from the terminal (see :mod:`model.jobs.retrain`).

``retrain`` prints the folder summary, starts the job in a child process and
follows its event file (a progress bar per epoch, one line per epoch, then
the safety gate). It never switches the active model: ``bcir jobs accept JOB``
does, ``bcir jobs reject JOB`` keeps the current one. Jobs live in the same
folder as the GUI's (``user_data_dir()/jobs``), so either can follow, resume
or decide a job the other started.

Exit codes: 0 done (or detached), 1 cancelled, failed or a broken model file,
2 a refusal (not trainable, unknown or ambiguous job, a conflicting option, a new model worse on some gate
figure accepted without ``--force``), 130 Ctrl+C. ``bcir jobs pause`` stops a job after its current batch,
resumable; ``bcir retrain --estimate`` prints the held-out set and a time estimate and starts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import sys
import time
from pathlib import Path

from model.errors import BcirError
from model.cli.models import print_json
from model.jobs.retrain import eta_text

FOLLOW_POLL_S = 0.2
CANCEL_WAIT_S = 30.0
VIEWS = ("CC", "MLO")


class Refusal(Exception):
    """A command that cannot go ahead as asked; ``str()`` is the one-line reason (exit 2)."""


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _local_time(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return _dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(iso)


def _epoch_line(epoch: int, epochs: int, metrics: dict) -> str:
    parts = [f"train loss {metrics['train_loss']:.4f}"] if "train_loss" in metrics else []
    parts += [f"{label} {metrics[key]:.4f}" for key, label in (("val_loss", "val loss"), ("val_dice", "val Dice"),
                                                                  ("val_auc", "val AUC")) if metrics.get(key) is not None]
    seconds = f" ({metrics['seconds']:.0f} s)" if metrics.get("seconds") is not None else ""
    return f"epoch {epoch}/{epochs}: " + ", ".join(parts) + seconds


def _decide_hint(job_id: str) -> str:
    return (f"  bcir jobs accept {job_id}    add the new model to the registry and make it active "
            "(--force when the gate found it worse on any figure)\n"
            f"  bcir jobs reject {job_id}    keep the current model")


# ---------------------------------------------------------------------------
# finding a job by id or prefix


def find_job(key: str, jobs_root=None):
    """The job whose id is ``key`` or starts with it; Refusal when none or several match."""
    from model.jobs.retrain import list_jobs

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


# ---------------------------------------------------------------------------
# following a job's events


class _EventPrinter:
    """Shows a job's events: a tqdm bar per epoch and per gate model (stderr, only on a terminal), a line per epoch."""

    def __init__(self):
        self.bar = None
        self.desc = ""  # a disabled tqdm keeps no desc of its own

    def _open(self, total: int, desc: str, unit: str) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total or None, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=None)
        self.desc = desc

    def _advance(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(max(0, done - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def say(self, line: str) -> None:
        self.close()  # a bar left open would be drawn over
        print(line, flush=True)

    def show(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "prepare":
            message = event.get("message", "")
            if message.startswith("resumed"):
                self.say(message)
            elif event.get("batches"):
                if self.bar is None or self.desc != message:
                    self._open(event["batches"], message, "image")
                self._advance(event.get("batch", 0))
        elif kind == "epoch_start":
            self._open(event.get("batches", 0), f"epoch {event.get('epoch')}/{event.get('epochs')}", "batch")
        elif kind == "batch":
            self._advance(event.get("batch", 0))
            if self.bar is not None and event.get("loss") is not None:
                postfix = {"loss": f"{event['loss']:.4f}"}
                if event.get("eta_s") is not None:
                    postfix["ETA"] = eta_text(event["eta_s"])
                self.bar.set_postfix(postfix, refresh=False)
        elif kind == "epoch_end":
            self.say(_epoch_line(event.get("epoch", 0), event.get("epochs", 0), event.get("metrics") or {}))
        elif kind == "early_stop":
            self.say(f"early stop: {event.get('message', '')}")
        elif kind in ("cancelled", "interrupted", "paused"):
            self.say(f"{kind}: {event.get('message', '')}")
        elif kind == "done":
            self.say("training finished; safety gate: the current and the new model on the same held-out patients")
        elif kind == "gate_progress":
            desc = f"gate: {event.get('model')} model"
            if self.bar is None or self.desc != desc:
                self._open(event.get("total", 0), desc, "image")
            self._advance(event.get("done", 0))
        elif kind == "gate":
            self.close()


def follow(job, *, poll_s: float = FOLLOW_POLL_S) -> dict:
    """Print ``job``'s events from the first until its child has exited; its final state.

    KeyboardInterrupt goes to the caller, which decides whether it cancels.
    """
    printer = _EventPrinter()
    offset = 0
    try:
        while True:
            alive = job.is_alive()  # read before the events, so the last read after the exit misses none
            events, offset = job.events(offset)
            for event in events:
                printer.show(event)
            if not alive:
                break
            time.sleep(poll_s)
    finally:
        printer.close()
    return job.state()


def _report_end(job, state: dict) -> int:
    """The job's outcome: the gate table and the accept/reject commands when done. The exit code."""
    from model.jobs.retrain import LIVE_STATES, format_comparison

    kind = state.get("state")
    if kind == "done":
        comparison = job.comparison()
        if comparison:
            print("\nsafety gate")
            print(format_comparison(comparison))
        print(f"\nretrain job {job.id} done: {state.get('message', '')}")
        decision = state.get("decision")
        if decision == "accepted":
            print(f"its model {state.get('version')} was accepted")
        elif decision == "kept-current":
            print("the current model was kept (`bcir jobs accept` can still use the new one)")
        else:
            print("the active model is unchanged; to choose:\n" + _decide_hint(job.id))
        return 0
    if kind == "paused":
        print(f"retrain job {job.id} paused: {_one_line(state.get('message', ''))}; `bcir jobs resume {job.id}` "
              f"continues it, `bcir jobs abandon {job.id}` closes it", file=sys.stderr)
        return 1
    if kind in LIVE_STATES:
        hint = (f"`bcir jobs resume {job.id}` continues it, `bcir jobs abandon {job.id}` closes it" if job.resumable()
                else f"nothing to resume from: `bcir jobs abandon {job.id}` closes it")
        print(f"retrain job {job.id}: its process ended before finishing ({_one_line(state.get('message', ''))}); {hint}",
              file=sys.stderr)
        return 1
    print(f"retrain job {job.id} {kind}: {_one_line(state.get('message', ''))}", file=sys.stderr)
    return 1


def _follow_and_report(job) -> int:
    """``bcir jobs follow``: Ctrl+C stops following and leaves the job running."""
    print(f"following retrain job {job.id} (Ctrl+C stops following; it does not cancel the job)", flush=True)
    try:
        state = follow(job)
    except KeyboardInterrupt:
        print(f"\nstopped following; retrain job {job.id} goes on (`bcir jobs cancel {job.id}` stops it)", file=sys.stderr)
        return 130
    return _report_end(job, state)


# ---------------------------------------------------------------------------
# bcir retrain


def _read_config_file(path: str) -> dict:
    from model.train.loop import TrainConfig

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Refusal(f"config file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise Refusal(f"config file {path} is not readable JSON ({_one_line(exc)})") from None
    if not isinstance(data, dict):
        raise Refusal(f"config file {path} must hold one JSON object of TrainConfig fields")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise Refusal(f"config file {path}: unknown TrainConfig fields {', '.join(unknown)}")
    if data.get("init_weights"):
        raise Refusal(f"config file {path}: init_weights is set by --fine-tune and --weights, leave it out")
    return data


def _train_config(args: argparse.Namespace, current: Path | None):
    """The TrainConfig from --config and the flags; fine-tuning takes spacing and tile from the current model's card."""
    from model.train.loop import TrainConfig

    from_file = _read_config_file(args.config) if args.config else {}
    views = None
    if args.views:
        views = tuple(v.strip().upper() for v in args.views.split(",") if v.strip())
        if not views or any(v not in VIEWS for v in views):
            raise Refusal(f"--views takes CC, MLO or CC,MLO (not {args.views!r})")
    flags = {"max_epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
             "working_spacing_mm": args.working_spacing, "tile": args.tile, "augment_factor": args.augment_factor,
             "views": views, "device": args.device, "max_minutes": args.max_minutes}
    values = {**from_file, **{k: v for k, v in flags.items() if v is not None}}
    if args.fine_tune:
        from model.nn.weights import read_card

        card = read_card(current)
        kept = {"working_spacing_mm": float((card.get("preprocess") or {}).get("working_spacing_mm",
                                                                                  TrainConfig.working_spacing_mm)),
                "tile": int(card.get("tile_size", TrainConfig.tile))}
        for key, option, unit in (("working_spacing_mm", "--working-spacing", " mm"), ("tile", "--tile", " px")):
            if key in values and abs(float(values[key]) - kept[key]) > 1e-9:
                given = option if flags[key] is not None else f"{key} in {args.config}"
                raise Refusal(f"{given} {values[key]:g}{unit} differs from the current model's {kept[key]:g}{unit}: "
                              "fine-tuning keeps the model's working resolution (leave it out, or train from scratch)")
        values.update(kept)
    config = TrainConfig.from_json(values)
    if config.micro_batch > config.batch_size:
        config = dataclasses.replace(config, micro_batch=config.batch_size)
    return config


def _current_model(args: argparse.Namespace) -> Path | None:
    """--weights, else $BCIR_MODEL, else the registry's active model; None when there is none and none is needed."""
    from model.errors import ModelFileError
    from model.registry.resolve import resolve_model

    try:
        path = resolve_model(args.weights)
    except ModelFileError:  # none active and none bundled
        path = None
    if path is not None:
        if not path.is_file():
            raise Refusal(f"current model {path} does not exist")
        return path
    if args.fine_tune:  # none active or bundled, or the AI turned off (BCIR_MODEL=none)
        raise Refusal("--fine-tune needs a current model: none is active or bundled; pass --weights")
    return None


def _settings_line(config, spec) -> str:
    start = f"fine-tuning {spec.base_model}" if spec.fine_tune else "from scratch"
    budget = f", at most {config.max_minutes:g} min" if config.max_minutes else ""
    return (f"training {start}: up to {config.max_epochs} epochs, batch {config.batch_size}, lr {config.lr:g}, "
            f"{config.working_spacing_mm:g} mm, tile {config.tile}, views {'/'.join(config.views)}, "
            f"augment x{config.augment_factor}, device {config.device}{budget}")


def _held_out_words(holdout_root: str | None) -> str:
    return f"every patient of {holdout_root}" if holdout_root else "the run's patient-level validation split"


def _plan_lines(plan: dict) -> list[str]:
    """The held-out set the gate will use, and why it may be too small to decide (as the GUI says before Start)."""
    lines = [f"held out for the safety gate: {plan['patients']} patients, {plan['images']} {'/'.join(plan['views'])} "
             f"images, {plan['lesions']} lesions ({plan['malignant']} malignant, {plan['benign']} benign)"]
    lines += [f"warning: too small to decide between two models: {w}" for w in plan["warnings"]]
    return lines


def _print_estimate(index, config, plan: dict, index_s: float, current: Path | None) -> int:
    """``bcir retrain --estimate``: time a few training steps in a child, as the GUI does, print the estimate."""
    from model.jobs.estimate import count_run, estimate, pick_timing_image, time_units_in_child

    print("timing a few training steps on this machine...", flush=True)
    units = time_units_in_child(config, pick_timing_image(index, config), base_model=str(current) if current else None)
    result = estimate(count_run(index, config, gate_images=plan["images"], index_s=index_s), units)
    print(f"estimate: {result.text()} (the timing took {units.seconds:.0f} s)")
    print("nothing was started (leave out --estimate to train)")
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from model.train.dataset_summary import summarize_index
    from model.jobs.retrain import JobSpec, plan_held_out, start_job
    from model.data.study_index import build_index

    root = Path(args.root).expanduser()
    if not root.is_dir():
        raise Refusal(f"training folder {root} does not exist")
    if args.holdout and not Path(args.holdout).expanduser().is_dir():
        raise Refusal(f"hold-out folder {args.holdout} does not exist")
    # the options are checked before the folder is read: a large folder takes a while to summarize
    current = _current_model(args)
    config = _train_config(args, current)

    from tqdm import tqdm

    bar = None

    def progress(event) -> None:
        nonlocal bar
        if event.total:
            if bar is None:
                bar = tqdm(total=event.total, desc="reading the folder", unit="file", file=sys.stderr, leave=False,
                           disable=None)
            bar.update(max(0, event.done - bar.n))

    started = time.perf_counter()
    try:
        index = build_index(root, progress=progress, workers=4)
    finally:
        if bar is not None:
            bar.close()
    summary = summarize_index(index, views=config.views)
    summary.seconds = time.perf_counter() - started
    print(summary.text())
    if not summary.trainable:
        print(f"bcir retrain: cannot train on {root}: {'; '.join(summary.reasons)}; nothing was started", file=sys.stderr)
        return 2
    holdout_index = build_index(Path(args.holdout).expanduser(), workers=4) if args.holdout else None
    plan = plan_held_out(index, config, holdout_index=holdout_index)
    for line in _plan_lines(plan):
        print(line)
    if args.estimate:
        init = str(current) if args.fine_tune and current else None
        return _print_estimate(index, dataclasses.replace(config, init_weights=init), plan, summary.seconds, current)

    spec = JobSpec(root=str(root), config=config.to_json(), base_model=str(current) if current else None,
                   fine_tune=args.fine_tune, holdout_root=args.holdout, bootstrap=args.bootstrap,
                   data_summary=summary.to_json())
    print(_settings_line(config, spec))
    print(f"safety gate on {_held_out_words(spec.holdout_root)}; current model: {spec.base_model or 'none'}")
    job = start_job(spec)
    print(f"started retrain job {job.id} (log: {job.log_path})", flush=True)
    if args.detach:
        print(f"it runs in the background:\n  bcir jobs follow {job.id}    watch it\n"
              f"  bcir jobs show {job.id}      its state and the gate\n  bcir jobs cancel {job.id}    stop it")
        return 0
    try:
        state = follow(job)
    except KeyboardInterrupt:
        print(f"\ncancelling retrain job {job.id} (waiting up to {CANCEL_WAIT_S:g} s)...", file=sys.stderr, flush=True)
        job.cancel(timeout=CANCEL_WAIT_S)
        state = job.state()
        print(f"retrain job {job.id} {state.get('state')}: {_one_line(state.get('message', ''))}", file=sys.stderr)
        return 130
    return _report_end(job, state)


# ---------------------------------------------------------------------------
# bcir jobs ...


def _job_row(job) -> dict:
    state = job.state()
    try:
        root = job.spec().root
    except FileNotFoundError:
        root = None
    interrupted = job.interrupted()
    return {"id": job.id, "dir": str(job.dir), "state": state.get("state"), "interrupted": interrupted,
            "resumable": job.resumable(), "root": root, "started": state.get("started"),
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
    from model.jobs.retrain import list_jobs

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
            print(f"{'':<24}{_one_line(row['message'])}")
    if any(row["interrupted"] for row in rows):
        print("interrupted: the job's process died; `bcir jobs resume JOB` continues a resumable one, "
              "`bcir jobs abandon JOB` closes it")
    if any(row["state"] == "paused" for row in rows):
        print("paused: stopped on purpose after a batch; `bcir jobs resume JOB` continues it, `bcir jobs abandon JOB` "
              "closes it")
    return 0


def _history(job) -> list[dict]:
    try:
        history = json.loads((job.run_dir / "history.json").read_text())
    except (OSError, ValueError):
        return []
    return history if isinstance(history, list) else []


def _cmd_show(args: argparse.Namespace) -> int:
    from model.jobs.retrain import GATE_DICE_PROTOCOL, TRAINING_DICE_PROTOCOL, format_comparison, judge

    job = find_job(args.job)
    spec, row, history, comparison = job.spec(), _job_row(job), _history(job), job.comparison()
    new_model = job.new_model_path()
    if args.json:
        print_json({**row, "alive": job.is_alive(), "spec": spec.to_json(), "state_file": job.state(),
                     "history": history, "new_model": str(new_model) if new_model else None, "comparison": comparison,
                     "judgement": judge(comparison).to_json() if comparison else None,
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
    print("  " + _settings_line(config, spec))
    print(f"  safety gate on {_held_out_words(spec.holdout_root)}, views {'/'.join(spec.gate_views)}, "
          f"{spec.bootstrap} bootstrap resamples; current model: {spec.base_model or 'none'}")
    print(f"  started {_local_time(row['started'])}, finished {_local_time(row['finished'])}"
          + ("; running" if job.is_alive() else ""))
    if row["message"]:
        print(f"  message: {_one_line(row['message'])}")
    if history:
        last = history[-1]
        print(f"  epochs done: {len(history)}; last " + _epoch_line(last.get("epoch", len(history)), config.max_epochs, last))
        print(f"    (val Dice: {TRAINING_DICE_PROTOCOL}; the gate's Dice below is measured otherwise)")
    if new_model:
        print(f"  new model: {new_model}")
    if row["state"] == "done":
        print(f"  decision: {_decision_label(row)}")
        if not row["decision"]:
            print(_decide_hint(job.id))
    elif row["interrupted"] or row["state"] == "paused":
        print(f"  `bcir jobs {'resume' if row['resumable'] else 'abandon'} {job.id}`"
              + (" continues it" if row["resumable"] else " closes it (nothing to resume from)"))
    print(f"  log: {job.log_path}")
    if comparison:
        print("  safety gate:")
        for line in format_comparison(comparison).splitlines():
            print(f"    {line}")
    return 0


def _cmd_follow(args: argparse.Namespace) -> int:
    return _follow_and_report(find_job(args.job))


def _cmd_resume(args: argparse.Namespace) -> int:
    job = find_job(args.job).resume()
    print(f"resumed retrain job {job.id}", flush=True)
    if args.follow:
        return _follow_and_report(job)
    print(f"  bcir jobs follow {job.id}    watch it\n  bcir jobs cancel {job.id}    stop it")
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    from model.jobs.retrain import LIVE_STATES

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
    print(f"retrain job {job.id} {state.get('state')}: {_one_line(state.get('message', ''))}")
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
    print(f"retrain job {job.id} {state.get('state')}: {_one_line(state.get('message', ''))}")
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
    from model.jobs.retrain import WorseModel, accept, judge

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
        worse = judge(job.comparison()).worse if job.comparison() else []
        if worse:
            print(f"used although worse on {len(worse)} gate figures: {', '.join(f.label for f in worse)}")
    print(f"active model: {entry.version} (from retrain job {job.id})")
    if before and before != entry.version:
        print(f"the previous one was {before}: `bcir models use {before}` goes back")
    return 0


def _cmd_reject(args: argparse.Namespace) -> int:
    from model.errors import ModelFileError
    from model.registry.versions import ModelRegistry
    from model.jobs.retrain import reject

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


def _guarded(name: str, func):
    """Every refusal and error: one line on stderr, no traceback."""
    from model.errors import ModelFileError

    def run(args: argparse.Namespace) -> int:
        command = name if name != "jobs" else f"jobs {args.jobs_command}"
        try:
            return func(args)
        except (Refusal, ValueError, FileNotFoundError) as exc:
            print(f"bcir {command}: {_one_line(exc)}", file=sys.stderr)
            return 2
        except KeyError as exc:
            print(f"bcir {command}: {_one_line(exc.args[0] if exc.args else exc)}", file=sys.stderr)
            return 2
        except (ModelFileError, BcirError, OSError) as exc:
            print(f"bcir {command}: {_one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"\nbcir {command}: interrupted", file=sys.stderr)
            return 130

    return run


def register(subparsers) -> None:
    """Add the ``retrain`` and ``jobs`` commands to ``bcir``'s subparsers."""
    p = subparsers.add_parser("retrain", help="retrain on a folder in a child process, then the safety gate "
                                              "(the GUI's Retrain dialog); never switches the active model")
    p.add_argument("root", help="labelled folder to train on (CBIS-DDSM layout, demo data, or labels.csv)")
    p.add_argument("--holdout", metavar="DIR", help="locked hold-out folder for the gate (default: the run's "
                                                     "patient-level validation split)")
    p.add_argument("--fine-tune", action="store_true", help="start from the current model (its working spacing and "
                                                             "tile are kept) rather than from scratch")
    p.add_argument("--weights", metavar="CURRENT", help="the current model: the gate's baseline and the fine-tune "
                                                        "start (default: the active model, see `bcir models`)")
    p.add_argument("--epochs", type=int, metavar="N", help="at most this many epochs (default 200, early stop)")
    p.add_argument("--batch-size", type=int, metavar="N", help="samples per optimiser step (default 64)")
    p.add_argument("--lr", type=float, metavar="X", help="learning rate (default 2e-4)")
    p.add_argument("--working-spacing", type=float, metavar="MM", help="working pixel spacing in mm (default 0.1)")
    p.add_argument("--tile", type=int, metavar="PX", help="ROI tile size at the working spacing (default 1024)")
    p.add_argument("--augment-factor", type=int, metavar="N", help="virtual expansion per case (default 40)")
    p.add_argument("--views", metavar="CC,MLO", help="views to train on (default CC; CC,MLO for both)")
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--max-minutes", type=float, metavar="M", help="stop after the last epoch that fits this budget")
    p.add_argument("--config", metavar="FILE.json", help="JSON file with TrainConfig fields; the options above win")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap resamples for the gate's AUC CI (default 2000)")
    p.add_argument("--detach", action="store_true", help="start the job, print its id and return")
    p.add_argument("--estimate", action="store_true", help="print the held-out set and how long the run would take "
                                                           "(from a few timed training steps), start nothing")
    p.set_defaults(func=_guarded("retrain", _cmd_retrain))

    p = subparsers.add_parser("jobs", help="retrain jobs: list, show, follow, resume, pause, cancel, abandon, accept, "
                                           "reject")
    sub = p.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    job_help = "job id or a unique prefix of it"

    q = sub.add_parser("list", help="every job; marks interrupted and resumable ones")
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    q.set_defaults(func=_guarded("jobs", _cmd_list))

    q = sub.add_parser("show", help="a job's settings, state, last epoch and safety gate")
    q.add_argument("job", help=job_help)
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    q.set_defaults(func=_guarded("jobs", _cmd_show))

    q = sub.add_parser("follow", help="watch a job (Ctrl+C stops watching, not the job)")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_guarded("jobs", _cmd_follow))

    q = sub.add_parser("resume", help="continue an interrupted job after its last complete epoch")
    q.add_argument("job", help=job_help)
    q.add_argument("--follow", action="store_true", help="then watch it")
    q.set_defaults(func=_guarded("jobs", _cmd_resume))

    q = sub.add_parser("cancel", help="stop a running job after its current batch (no model is kept)")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_guarded("jobs", _cmd_cancel))

    q = sub.add_parser("pause", help="stop a running job after its current batch, resumable (`jobs resume`)")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_guarded("jobs", _cmd_pause))

    q = sub.add_parser("abandon", help="close an interrupted or paused job instead of resuming it")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_guarded("jobs", _cmd_abandon))

    q = sub.add_parser("accept", help="add a finished job's model to the registry and make it active (refused when "
                                      "the gate found it worse on any figure, unless --force)")
    q.add_argument("job", help=job_help)
    q.add_argument("--force", action="store_true", help="use the new model even when it is worse on some gate figure")
    q.set_defaults(func=_guarded("jobs", _cmd_accept))

    q = sub.add_parser("reject", help="keep the current model; the job's model is not added")
    q.add_argument("job", help=job_help)
    q.set_defaults(func=_guarded("jobs", _cmd_reject))


__all__ = ["Refusal", "find_job", "follow", "register"]
