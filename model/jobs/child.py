"""The retrain child process: ``python -m model.jobs.child run JOB_DIR [--resume]`` trains, then runs the safety gate.

It reports only through the job folder (model.jobs.job): state.json, events.jsonl
and its own stdout, which is the job's train.log. A cancel file ends the job; a
pause file or a SIGTERM stops it after the current batch, resumable.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from model.errors import Cancelled
from model.fileio import clean_stale_parts
from model.jobs.gate import run_gate
from model.jobs.job import CHILD_MODULE, Job
from model.jobs.process import lower_priority
from model.jobs.state import now, one_line, read_json, update_state, write_json
from model.jobs.verdict import format_comparison, judge

EVENT_INTERVAL_S = 0.2  # batch and preparation events are thinned to this; epoch and end events never are


class _EventLog:
    """events.jsonl, appended one flushed line at a time; batch and preparation events thinned to EVENT_INTERVAL_S."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")
        self._last: dict[str, float] = {}

    def write(self, record: dict) -> None:
        record = {**record, "time": time.time()}
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()

    def thinned(self, record: dict, *, done: int, total: int) -> None:
        kind, now_s = record["kind"], time.monotonic()
        if done <= 1 or done >= total or now_s - self._last.get(kind, 0.0) >= EVENT_INTERVAL_S:
            self._last[kind] = now_s
            self.write(record)

    def close(self) -> None:
        self._file.close()


class _StopDuringPreparation(Exception):
    """Raised from the training callback when a cancel or a pause comes while images are being prepared."""


def _say(message: str) -> None:
    print(f"{_dt.datetime.now().strftime('%H:%M:%S')} {message}", flush=True)


def _run_child(job_dir: Path, *, resume: bool) -> int:
    job = Job(job_dir)
    stop_asked = {"signal": False}

    def on_term(signum, frame):  # a shutdown: stop at the next batch, resumable like a kill
        stop_asked["signal"] = True

    signal.signal(signal.SIGTERM, on_term)
    lower_priority()

    def should_stop() -> bool:
        return stop_asked["signal"] or job.cancel_path.exists() or job.pause_path.exists()

    update_state(job.dir, pid=os.getpid(), message="resuming" if resume else "starting", finished=None)
    clean_stale_parts(job.dir)  # a killed child's temp files (the run folder's: model.train.loop.train)
    events = _EventLog(job.events_path)
    where_now = {"epoch": 0, "epochs": 0, "part": None}  # the epoch under way (a two-pass run's part), for the pause message

    def finish(state: str, message: str, **extra) -> None:
        update_state(job.dir, state=state, message=message, finished=now(), **extra)
        _say(f"{state}: {message}")

    def resume_words(where: str) -> str:
        history = job.history()
        if where == "gate" or job.training_finished():
            return "resuming runs the safety gate again"
        if history and history[-1].get("part"):  # a two-pass run: its parts' epochs
            from model.train.two_pass import part_dir, part_finished

            last = history[-1]
            if last["part"] == "coarse" and part_finished(part_dir(job.run_dir, "coarse")):
                return "resuming starts the fine part from epoch 1 (the coarse part is not trained again)"
            return (f"resuming continues the {last['part']} part after epoch {last.get('epoch')} (the epoch under way "
                    "is lost" + ("; the coarse part is not trained again)" if last["part"] == "fine" else ")"))
        if history:
            return f"resuming continues after epoch {len(history)} (the epoch under way is lost)"
        return "resuming starts the training again from epoch 1 (the images prepared so far are kept)"

    def stop_resumable(kind: str, message: str, exit_code: int, **state) -> int:
        """Paused or interrupted: the event, the state and the log line say why; the job can be resumed."""
        events.write({"kind": kind, "message": message})
        update_state(job.dir, message=message, **state)
        _say(message)
        return exit_code

    def stopped(where: str) -> int:
        """A cancel ends the job; a pause (the reader quit the app) or a SIGTERM (a shutdown) leaves it resumable."""
        if job.cancel_path.exists():
            message = f"cancelled during the {where}; no new model is offered"
            if where == "gate":
                events.write({"kind": "cancelled", "message": message})
            finish("cancelled", message)
            return 0
        part = f" of the {where_now['part']} part" if where_now["part"] else ""
        during = (f"during epoch {where_now['epoch']} of {where_now['epochs']}{part}"
                  if where == "training" and where_now["epoch"] else f"during the {where}")
        if job.pause_path.exists():
            try:
                reason = one_line(job.pause_path.read_text()) or "asked"
            except OSError:
                reason = "asked"
            return stop_resumable("paused", f"paused ({reason}) {during}; {resume_words(where)}", 0,
                                  state="paused", paused=now())
        if job.checkpoint_path.is_file() or where == "gate":
            return stop_resumable("interrupted", f"interrupted by SIGTERM {during}; {resume_words(where)}",
                                  128 + signal.SIGTERM)
        return stop_resumable("paused", f"paused (the system asked the training to stop: SIGTERM) {during}; "
                                        f"{resume_words(where)}", 128 + signal.SIGTERM, state="paused", paused=now())

    try:
        spec = job.spec()
        _say(("resuming" if resume else "starting") + f" retrain job {job.id}")
        if job.cancel_path.exists():
            events.write({"kind": "cancelled", "message": "cancelled before training started"})
            finish("cancelled", "cancelled before training started")
            return 0
        if should_stop():
            return stopped("start")
        if resume and job.training_finished():
            _say("training had finished: running the safety gate again")
        else:
            from model.train.config import TrainEvent
            from model.train.loop import train

            def on_event(event: TrainEvent) -> None:
                if event.kind == "prepare" and should_stop():  # preparing takes minutes: stop between images too
                    raise _StopDuringPreparation()
                if event.part and event.part != where_now["part"]:
                    where_now.update(part=event.part, epoch=0, epochs=0)
                if event.kind == "epoch_start":
                    where_now.update(epoch=event.epoch, epochs=event.epochs)
                record = dataclasses.asdict(event)
                if event.kind in ("batch", "prepare") and event.batches:
                    events.thinned(record, done=event.batch, total=event.batches)
                else:
                    events.write(record)
                part = f"{event.part} part " if event.part else ""
                if event.kind == "epoch_end":
                    m = event.metrics
                    _say(f"{part}epoch {event.epoch}/{event.epochs}: train loss {m['train_loss']:.4f}" + "".join(
                        f", {k} {m[k]:.4f}" for k in ("val_loss", "val_dice", "val_auc") if k in m)
                        + f" ({m['seconds']:.0f} s)")
                elif event.kind in ("early_stop", "cancelled") or event.message.startswith("resumed"):
                    _say(f"{part}{event.kind}: {event.message}")
                elif event.kind == "part_done" or (event.part and event.message.startswith(f"{event.part} part")):
                    _say(f"{event.part} part done" if event.kind == "part_done" else event.message)

            if spec.two_pass:  # both parts, fine-tuned each from its own weights, written as one pair
                from model.train.two_pass import train_pair

                coarse, fine = spec.part_configs()
                _say(f"two-pass model: the coarse part ({coarse.working_spacing_mm:g} mm, tile {coarse.tile}), then "
                     f"the fine part ({fine.working_spacing_mm:g} mm, tile {fine.tile})")
                result = train_pair(spec.root, job.run_dir, coarse, fine, max_minutes=coarse.max_minutes,
                                    resume=resume, callback=on_event, should_stop=should_stop)
            else:
                result = train(spec.root, job.run_dir, spec.train_config(), resume=resume, callback=on_event,
                               should_stop=should_stop)
            if result.cancelled:
                return stopped("training")
        best, final = job.run_dir / "best.safetensors", job.run_dir / "model.safetensors"
        new_model = best if best.is_file() else final
        if not new_model.is_file():
            raise RuntimeError("the training ended without a model")
        update_state(job.dir, state="gating", message="comparing the current and the new model on the held-out patients")
        _say("safety gate: evaluating the current and the new model on the same held-out patients")
        split = read_json(job.run_dir / "split.json") or {}

        def gate_progress(name: str, done: int, total: int) -> None:
            events.thinned({"kind": "gate_progress", "model": name, "done": done, "total": total}, done=done, total=total)

        comparison = run_gate(spec, new_model, split=split or None, should_stop=should_stop, progress=gate_progress)
        write_json(job.dir / "comparison.json", comparison)
        verdict = judge(comparison)
        events.write({"kind": "gate", "rule": comparison["rule"], "patients": len(comparison["patients"]),
                      "better": comparison["better"], "new_model": str(new_model),
                      "rows": [{k: r.get(k) for k in ("model", "available", "version", "images")} for r in comparison["rows"]]})
        for line in format_comparison(comparison, notes=False, verdict=verdict).splitlines():
            _say(line)
        for warning in verdict.warnings:
            _say(f"warning: {warning}")
        _say(f"{len(comparison['notes'])} notes in comparison.json")  # evaluation notes may name patients: not here
        finish("done", verdict.summary(), model=str(new_model))
        return 0
    except _StopDuringPreparation:
        return stopped("preparation")
    except Cancelled:
        return stopped("gate")
    except Exception as exc:  # noqa: BLE001 - the job's boundary: whatever fails, this job is marked failed with
        # its reason and the app goes on; uncaught, it would stay 'running' with a dead pid and be offered for resume
        traceback.print_exc()
        reason = one_line(f"{type(exc).__name__}: {exc}")
        events.write({"kind": "failed", "message": reason})
        finish("failed", reason)
        return 1
    finally:
        events.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {CHILD_MODULE}", description="run one retrain job (the child process)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train, then run the safety gate, reporting through the job folder")
    p.add_argument("job_dir")
    p.add_argument("--resume", action="store_true", help="continue after the last complete epoch")
    args = parser.parse_args(argv)
    return _run_child(Path(args.job_dir), resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["EVENT_INTERVAL_S", "main"]
