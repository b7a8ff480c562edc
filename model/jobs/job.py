"""A retrain job seen from the parent: start, list, watch, pause, cancel, resume or close it, and its child's liveness.

The GUI (or a script) calls :func:`start_job`; the training runs in
``python -m model.jobs.child run JOB_DIR`` (:data:`CHILD_MODULE`), its own
process in its own session, so a crash, a CUDA error or the OOM killer cannot
take the viewer down. Everything the child says goes through files in the job
folder::

    jobs/<job_id>/
      spec.json          JobSpec: folder, TrainConfig, current model, fine-tune, hold-out, gate settings
      state.json         {"state": running|gating|paused|done|cancelled|failed, "pid", "message", "started", "finished",
                          "background" (the app was quit and left it running), "decision", ...}
      events.jsonl       one JSON object a line: every TrainEvent (batch events at most every 0.2 s),
                         gate progress, {"kind": "gate", ...} at the end, {"kind": "failed", "message"} on a crash
      train.log          the child's stdout and stderr (tracebacks included); no patient IDs in its own lines
      cancel             present when a cancel was asked for; the child polls it between batches
      pause              present when a pause was asked for (its text: why, e.g. "the app was quit"); polled like cancel
      run/               the training run (model.train.loop.train's out_dir: checkpoint, split, best and final models;
                         a two-pass job's: model.train.two_pass.train_pair's, its parts in run/coarse and run/fine)
      comparison.json    the safety gate (see :func:`model.jobs.gate.run_gate`)

A job whose child died (app killed, machine rebooted, SIGKILL) stays ``running``
or ``gating`` in its state file with a dead pid; :func:`find_resumable` finds
it and :meth:`Job.resume` continues from the last complete epoch. A job paused
on purpose (:meth:`Job.pause`, e.g. when the reader quits the app) stops after
its current batch and is ``paused``: resumable too, and never called abandoned.

This module imports no torch: the GUI imports it to start and watch jobs; only the child loads the training code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from model.errors import JobError
from model.fileio import atomic_write_bytes, clean_stale_parts, user_data_dir
from model.jobs.process import start_child
from model.jobs.spec import JobSpec
from model.train.two_pass import PARTS, is_two_pass, part_dir, run_checkpoint
from model.jobs.state import (LIVE_STATES, log_line, now, one_line, read_json, read_json_list, read_state, update_state,
                              write_json)

CHILD_MODULE = "model.jobs.child"  # the module whose main runs a job; the liveness check looks for it in the cmdline
_CHILDREN: dict[int, subprocess.Popen] = {}  # children started by this process, so their exit is seen (no zombies)


# ---------------------------------------------------------------------------
# the child process


def _pid_alive(pid: int, job_dir: Path) -> bool:
    """True while ``pid`` is this job's child: not exited, not a zombie, not a reused pid running something else."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    proc_dir = Path(f"/proc/{pid}")
    if not proc_dir.is_dir():  # no procfs (macOS): the signal test is all there is
        return True
    try:
        if (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = (proc_dir / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return CHILD_MODULE.encode() in cmdline and os.fsencode(str(job_dir)) in cmdline


def _launch(job_dir: Path, *, resume: bool) -> subprocess.Popen:
    with open(job_dir / "train.log", "ab") as log:
        proc = start_child(CHILD_MODULE, ["run", str(job_dir)] + (["--resume"] if resume else []), output=log,
                           cwd=job_dir)
    _CHILDREN[proc.pid] = proc
    update_state(job_dir, pid=proc.pid)
    return proc


# ---------------------------------------------------------------------------
# the job


@dataclass(frozen=True)
class JobStatus:
    """One reading of state.json and of the child's liveness: a question about a job reads its state file once."""

    state: dict
    alive: bool

    @property
    def kind(self) -> str | None:
        return self.state.get("state")

    @property
    def interrupted(self) -> bool:
        """The state says running or gating, but no child is alive: the app or the machine went down."""
        return self.kind in LIVE_STATES and not self.alive

    @property
    def paused(self) -> bool:
        return self.kind == "paused" and not self.alive


class Job:
    """One retrain job folder; every method reads the files, so a Job made after a restart sees the same job."""

    def __init__(self, job_dir: str | Path):
        self.dir = Path(job_dir).resolve()

    def __repr__(self) -> str:
        return f"Job({str(self.dir)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Job) and other.dir == self.dir

    def __hash__(self) -> int:
        return hash(self.dir)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log_path(self) -> Path:
        return self.dir / "train.log"

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def cancel_path(self) -> Path:
        return self.dir / "cancel"

    @property
    def pause_path(self) -> Path:
        return self.dir / "pause"

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint a resume continues from (a two-pass run's: the part's under way)."""
        return run_checkpoint(self.run_dir)

    # ------------------------------------------------------------------ reading the folder

    def spec(self) -> JobSpec:
        data = read_json(self.dir / "spec.json")
        if data is None:
            raise FileNotFoundError(f"{self.dir} holds no readable spec.json")
        return JobSpec.from_json(data)

    def state(self) -> dict:
        """state.json; ``{"state": "unknown"}`` while it cannot be read."""
        return read_state(self.dir) or {"state": "unknown", "pid": None, "message": "no state file"}

    def status(self) -> JobStatus:
        """The state and whether its child is alive, read once."""
        state = self.state()
        pid = state.get("pid")
        return JobStatus(state, bool(pid) and _pid_alive(int(pid), self.dir))

    def events(self, since_offset: int = 0) -> tuple[list[dict], int]:
        """The events after byte ``since_offset`` and the offset to pass next time; a half-written last line waits."""
        try:
            with open(self.events_path, "rb") as f:
                f.seek(since_offset)
                data = f.read()
        except FileNotFoundError:
            return [], since_offset
        end = data.rfind(b"\n")
        if end < 0:
            return [], since_offset
        events = []
        for line in data[: end + 1].splitlines():
            if line.strip():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events, since_offset + end + 1

    def history(self) -> list[dict]:
        """The run's history.json: one entry per complete epoch; [] before the first or while it cannot be read."""
        return read_json_list(self.run_dir / "history.json")

    def epochs_done(self) -> int:
        return len(self.history())

    def training_finished(self) -> bool:
        """The training wrote its final model and run record (only the gate may be left)."""
        return (self.run_dir / "run.json").is_file() and (self.run_dir / "model.safetensors").is_file()

    def comparison(self) -> dict | None:
        return read_json(self.dir / "comparison.json")

    def new_model_path(self) -> Path | None:
        """The model the gate judged, once the job is done; None before, and after a cancel or a failure."""
        state = self.state()
        if state.get("state") != "done" or not state.get("model"):
            return None
        path = Path(state["model"])
        return path if path.is_file() else None

    def decision(self) -> str | None:
        """"accepted", "kept-current" or None (not decided yet)."""
        return self.state().get("decision")

    # ------------------------------------------------------------------ alive, interrupted, paused, resumable

    def is_alive(self) -> bool:
        return self.status().alive

    def interrupted(self) -> bool:
        """The state says running or gating, but no child is alive: the app or the machine went down."""
        return self.status().interrupted

    def paused(self) -> bool:
        return self.status().paused

    def resumable(self, status: JobStatus | None = None) -> bool:
        """Paused on purpose (from its last epoch, or from epoch 1 when none was complete), or interrupted after
        at least one complete epoch. ``status``: a reading the caller has already made."""
        status = status if status is not None else self.status()
        if status.paused:
            return True
        return status.interrupted and (self.checkpoint_path.is_file() or self.training_finished())

    def wait(self, timeout: float | None = None, *, poll_s: float = 0.1) -> dict:
        """Block until the child has exited; its final state. TimeoutError when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"retrain job {self.id} still running after {timeout:g} s")
            time.sleep(poll_s)
        return self.state()

    # ------------------------------------------------------------------ asking the child

    def cancel(self, timeout: float | None = None) -> None:
        """Ask the child to stop (it finishes the batch it is in and writes no model).

        With ``timeout``, wait that long and then kill the process tree.
        """
        atomic_write_bytes(self.cancel_path, (now() + "\n").encode())
        if timeout is None:
            return
        try:
            self.wait(timeout)
        except TimeoutError:
            self.kill()
            if self.state().get("state") in LIVE_STATES:
                update_state(self.dir, state="cancelled", finished=now(),
                             message=f"stopped by force: the training did not stop within {timeout:g} s")

    def pause(self, reason: str = "asked", timeout: float | None = None) -> None:
        """Ask the child to stop after its current batch, resumable (``paused``); ``reason`` goes into its log.

        Nothing is lost but the epoch under way: its checkpoints are whole. With
        ``timeout``, wait that long for the child to stop; TimeoutError if it has not. JobError when it is not running.
        """
        if not self.is_alive():
            raise JobError(f"retrain job {self.id} is not running: nothing to pause")
        atomic_write_bytes(self.pause_path, (one_line(reason) + "\n").encode())
        log_line(self.dir, f"pause asked ({one_line(reason)}): the training stops after its current batch")
        if timeout is not None:
            self.wait(timeout)

    def keep_in_background(self, reason: str = "the app was quit") -> None:
        """The child goes on without a viewer following it; the log and the state say so, for the next start."""
        update_state(self.dir, background=now())
        log_line(self.dir, f"{one_line(reason)}; the training goes on in the background")

    def kill(self) -> None:
        """SIGKILL the child's whole process group (it leads its own session)."""
        status = self.status()
        if not status.alive:
            return
        pid = int(status.state["pid"])
        try:
            os.killpg(pid, signal.SIGKILL)
        except (AttributeError, ProcessLookupError, PermissionError):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc = _CHILDREN.get(pid)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    # ------------------------------------------------------------------ after an interruption or a pause

    def resume(self) -> "Job":
        """Relaunch the child with ``--resume``: training continues after the last complete epoch; when the
        training had finished, only the gate runs again. JobError when it is running, ended or has nothing to resume
        from."""
        status = self.status()
        if status.alive:
            raise JobError(f"retrain job {self.id} is still running")
        state = status.kind
        if state in ("done", "cancelled", "failed"):
            raise JobError(f"retrain job {self.id} has {'finished' if state == 'done' else 'ended (' + state + ')'}: "
                           "nothing to resume")
        if state != "paused" and not (self.checkpoint_path.is_file() or self.training_finished()):
            raise JobError(f"retrain job {self.id} has no checkpoint to resume from")
        self.cancel_path.unlink(missing_ok=True)
        self.pause_path.unlink(missing_ok=True)
        if state == "paused":
            state = "gating" if self.training_finished() else "running"
        update_state(self.dir, state=state if state in LIVE_STATES else "running", pid=None, message="resuming",
                     finished=None, background=None)
        _launch(self.dir, resume=True)
        return self

    def abandon(self) -> None:
        """Close an interrupted or paused job instead of resuming it: it becomes ``cancelled`` (its folder stays, for
        the log). The state and the log say what happened to it, not who is to blame: a job that died before its
        first epoch was complete had nothing to resume; one that could be resumed was closed as asked."""
        status = self.status()
        if status.alive:
            raise JobError(f"retrain job {self.id} is still running: cancel it instead")
        if status.kind not in (*LIVE_STATES, "paused"):
            raise JobError(f"retrain job {self.id} is {status.kind}: nothing to abandon")
        closed = ("closed without resuming, as asked" if self.resumable(status)
                  else "nothing to resume from, so it was closed")
        message = f"{self._what_happened(status.state)}; {closed}"
        update_state(self.dir, state="cancelled", finished=now(), message=message)
        log_line(self.dir, message)
        for folder in (self.dir, self.run_dir, *(part_dir(self.run_dir, p) for p in PARTS)):  # never resumed: what
            clean_stale_parts(folder)  # the killed child left half-written goes now (a two-pass run's parts too)

    def resume_question(self) -> str:
        """What the reader is asked at start about this interrupted or paused job: how it stopped, and where
        resuming takes it ('… paused (the app was quit) during epoch 2 of 5; resuming continues after epoch 1')."""
        state = self.state()
        said = one_line(state.get("message") or "")
        if state.get("state") == "paused" and ";" in said:
            return f"{said}. Resume it?"
        return f"{self._what_happened(state)}. Resume it from its last complete epoch?"

    def _what_happened(self, state: dict) -> str:
        """One line on how an interrupted or paused job stopped (its last state message, when it says)."""
        said = one_line(state.get("message") or "")
        if state.get("state") == "paused" or said.startswith(("interrupted", "paused")):
            return said.split(";")[0]
        done = self.epochs_done()
        where = (f"after {done} complete epoch{'s' if done != 1 else ''}" if done
                 else "before its first epoch was complete")
        phase = "during the safety gate" if state.get("state") == "gating" else where
        return f"the training process stopped without a word {phase} (the app, the machine or the process went down)"


# ---------------------------------------------------------------------------
# the jobs folder


def _jobs_folder(jobs_root: str | Path | None) -> Path:
    return Path(jobs_root) if jobs_root is not None else user_data_dir() / "jobs"


def start_job(spec: JobSpec, jobs_root: str | Path | None = None) -> Job:
    """Create ``jobs_root/<job_id>/`` (default ``user_data_dir()/jobs``), write spec.json and start the child."""
    root = Path(spec.root)
    if not root.exists():
        raise FileNotFoundError(f"training folder {root} does not exist")
    if spec.fine_tune and not spec.base_model:
        raise JobError("fine-tuning needs the current model (base_model)")
    for label, path in (("current model", spec.base_model), ("hold-out folder", spec.holdout_root)):
        if path and not Path(path).exists():
            raise FileNotFoundError(f"{label} {path} does not exist")
    if spec.fine_tune and is_two_pass(spec.base_model):  # a two-pass model is fine-tuned whole: both parts
        spec = dataclasses.replace(spec, two_pass=True)
    spec = dataclasses.replace(  # the child runs in the job folder: every path absolute
        spec, root=str(root.resolve()), base_model=str(Path(spec.base_model).resolve()) if spec.base_model else None,
        holdout_root=str(Path(spec.holdout_root).resolve()) if spec.holdout_root else None)
    jobs = _jobs_folder(jobs_root)
    jobs.mkdir(parents=True, exist_ok=True)
    job_id = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    job_dir = jobs / job_id
    job_dir.mkdir()
    write_json(job_dir / "spec.json", spec.to_json())
    write_json(job_dir / "state.json", {"state": "running", "pid": None, "message": "starting", "started": now(),
                                         "finished": None})
    job = Job(job_dir)
    _launch(job.dir, resume=False)
    return job


def list_jobs(jobs_root: str | Path | None = None) -> list[Job]:
    """Every job folder under ``jobs_root``, oldest first."""
    jobs = _jobs_folder(jobs_root)
    if not jobs.is_dir():
        return []
    return [Job(p) for p in sorted(jobs.iterdir()) if p.is_dir() and (p / "spec.json").is_file()]


def find_resumable(jobs_root: str | Path | None = None) -> list[Job]:
    """Jobs left running or gating by a child that died, with a checkpoint to continue from."""
    return [job for job in list_jobs(jobs_root) if job.resumable()]


def find_undecided_background(jobs_root: str | Path | None = None) -> list[Job]:
    """Jobs the reader left training in the background when quitting the app that have finished since, with a new
    model waiting for the reader's decision."""
    out = []
    for job in list_jobs(jobs_root):
        state = job.state()
        if state.get("background") and state.get("state") == "done" and state.get("decision") is None:
            out.append(job)
    return out


__all__ = ["CHILD_MODULE", "Job", "JobStatus", "find_resumable", "find_undecided_background", "list_jobs", "start_job"]
