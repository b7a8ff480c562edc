"""Retrain on a folder in a child process, then compare the current and the new model on the same held-out patients.

The GUI (or a script) calls :func:`start_job`; the training runs in
``python -m model.jobs.retrain run JOB_DIR``, its own process in its own
session, so a crash, a CUDA error or the OOM killer cannot take the viewer
down. Everything the child says goes through files in the job folder::

    jobs/<job_id>/
      spec.json          JobSpec: folder, TrainConfig, current model, fine-tune, hold-out, gate settings
      state.json         {"state": running|gating|paused|done|cancelled|failed, "pid", "message", "started", "finished",
                          "background" (the app was quit and left it running), "decision", ...}
      events.jsonl       one JSON object a line: every TrainEvent (batch events at most every 0.2 s),
                         gate progress, {"kind": "gate", ...} at the end, {"kind": "failed", "message"} on a crash
      train.log          the child's stdout and stderr (tracebacks included); no patient IDs in its own lines
      cancel             present when a cancel was asked for; the child polls it between batches
      pause              present when a pause was asked for (its text: why, e.g. "the app was quit"); polled like cancel
      run/               the training run (model.train.loop.train's out_dir: checkpoint, split, best and final models)
      comparison.json    the safety gate (see :func:`run_gate`)

The safety gate evaluates the current model (``JobSpec.base_model``) and the
new one on the same held-out patients: those of a locked hold-out folder when
one is given, else the new run's own patient-level validation split. The new
model is the run's best epoch by validation Dice (``run/best.safetensors``;
the final epoch's ``run/model.safetensors`` only when no epoch was validated).
The job never switches the active model: :func:`accept` does, when the reader
says so; :func:`reject` keeps the current one.

A job whose child died (app killed, machine rebooted, SIGKILL) stays ``running``
or ``gating`` in its state file with a dead pid; :func:`find_resumable` finds
it and :meth:`Job.resume` continues from the last complete epoch. A job paused
on purpose (:meth:`Job.pause`, e.g. when the reader quits the app) stops after
its current batch and is ``paused``: resumable too, and never called abandoned.

The gate's figures are judged in one place, :func:`judge`: which figures are
worse, which cannot be measured (an AUC needs both pathologies), how many
held-out images, lesions and abnormalities stand behind each, and whether the
held-out set is too small to decide (:func:`held_out_warnings`, also used
before a run starts). :func:`accept` refuses a model worse on any figure
unless forced.

This module imports no torch at import time: the GUI imports it to start and
watch jobs; only the child loads the training code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from model.fileio import atomic_write_bytes, atomic_write_json, clean_stale_parts, user_data_dir

STATES = ("running", "gating", "paused", "done", "cancelled", "failed")
LIVE_STATES = ("running", "gating")
EVENT_INTERVAL_S = 0.2  # batch and preparation events are thinned to this; epoch and end events never are
CANCEL_TIMEOUT_S = 30.0
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
# Below these the gate's figures swing by more than about 0.1 when one patient or lesion changes hands: the
# table is shown, but the reader is told it cannot decide between two models (before Start and at the gate).
MIN_HELD_OUT_PATIENTS = 10
MIN_HELD_OUT_LESIONS = 10
AUC_MIN_PER_CLASS = 5  # an AUC from fewer malignant or benign abnormalities than this is not reported as a figure
# Where each Dice comes from: the training curve and the gate measure different things on purpose.
TRAINING_DICE_PROTOCOL = ("training protocol: ROI tiles centred on each validation lesion plus lesion-free tiles, "
                          "Dice pooled over every tile; it picks the best epoch")
GATE_DICE_PROTOCOL = ("evaluation protocol (`bcir eval`): whole CC views read as the viewer reads them, Dice per image "
                      "with a lesion, averaged; AUC of the malignancy head on a ROI at each true abnormality")
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]
_CHILDREN: dict[int, subprocess.Popen] = {}  # children started by this process, so their exit is seen (no zombies)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def eta_text(seconds: float | None) -> str:
    """'1 h 05 min', '3 min 07 s'; '' when unknown (the dialog and the terminal say the ETA alike)."""
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _write_json(path: Path, data: dict) -> None:
    atomic_write_json(path, data, default=str)


def _read_json_list(path: Path) -> list:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def _log_line(job_dir: Path, message: str) -> None:
    """One line appended to the job's train.log by the parent (the child writes its own lines the same way)."""
    with contextlib.suppress(OSError), open(job_dir / "train.log", "a", encoding="utf-8") as log:
        log.write(f"{_dt.datetime.now().strftime('%H:%M:%S')} {message}\n")


# ---------------------------------------------------------------------------
# the job's settings


@dataclass
class JobSpec:
    """Everything a retrain job needs; saved as ``spec.json``."""

    root: str  # the labelled folder to train on
    config: dict = field(default_factory=dict)  # TrainConfig fields (a TrainConfig is accepted too); {} = the paper's
    base_model: str | None = None  # the current model: the gate's "current", and the start point when fine_tune
    fine_tune: bool = False  # start from base_model (TrainConfig.init_weights) rather than from scratch
    holdout_root: str | None = None  # a locked hold-out folder; None: the new run's validation patients
    gate_views: tuple[str, ...] = ("CC",)
    bootstrap: int = 2000  # bootstrap resamples for the AUC's 95% CI
    data_summary: dict | None = None  # FolderSummary.to_json() of root, when the caller has it (kept in the registry)

    def __post_init__(self):
        if dataclasses.is_dataclass(self.config):
            self.config = dataclasses.asdict(self.config)
        self.config = json.loads(json.dumps(self.config))  # as spec.json will hold it: tuples become lists
        self.root = str(self.root)
        self.base_model = str(self.base_model) if self.base_model else None
        self.holdout_root = str(self.holdout_root) if self.holdout_root else None
        self.gate_views = tuple(self.gate_views)

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["gate_views"] = list(self.gate_views)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "JobSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def train_config(self):
        """The TrainConfig the child trains with (``init_weights`` follows ``fine_tune``)."""
        from model.train.loop import TrainConfig

        config = TrainConfig.from_json(self.config)
        return dataclasses.replace(config, init_weights=self.base_model if self.fine_tune else None)


# ---------------------------------------------------------------------------
# state.json: written by the parent (pid) and the child (everything), merged under a lock


@contextlib.contextmanager
def _locked(job_dir: Path) -> Iterator[None]:
    with open(job_dir / ".state.lock", "a") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; the writes stay atomic
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _update_state(job_dir: Path, **changes) -> dict:
    with _locked(job_dir):
        state = _read_json(job_dir / "state.json") or {}
        state.update(changes)
        _write_json(job_dir / "state.json", state)
    return state


# ---------------------------------------------------------------------------
# process liveness


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
    return b"model.jobs.retrain" in cmdline and os.fsencode(str(job_dir)) in cmdline


def _launch(job_dir: Path, *, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "model.jobs.retrain", "run", str(job_dir)] + (["--resume"] if resume else [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
    with open(job_dir / "train.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=str(job_dir), start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    _update_state(job_dir, pid=proc.pid)
    return proc


# ---------------------------------------------------------------------------
# the job, seen from the parent


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
        return self.run_dir / "checkpoint.safetensors"

    def spec(self) -> JobSpec:
        data = _read_json(self.dir / "spec.json")
        if data is None:
            raise FileNotFoundError(f"{self.dir} holds no readable spec.json")
        return JobSpec.from_json(data)

    def state(self) -> dict:
        """state.json; ``{"state": "unknown"}`` while it cannot be read."""
        return _read_json(self.dir / "state.json") or {"state": "unknown", "pid": None, "message": "no state file"}

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

    def is_alive(self) -> bool:
        pid = self.state().get("pid")
        return bool(pid) and _pid_alive(int(pid), self.dir)

    def wait(self, timeout: float | None = None, *, poll_s: float = 0.1) -> dict:
        """Block until the child has exited; its final state. TimeoutError when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"retrain job {self.id} still running after {timeout:g} s")
            time.sleep(poll_s)
        return self.state()

    def cancel(self, timeout: float | None = None) -> None:
        """Ask the child to stop (it finishes the batch it is in and writes no model).

        With ``timeout``, wait that long and then kill the process tree.
        """
        atomic_write_bytes(self.cancel_path, (_now() + "\n").encode())
        if timeout is None:
            return
        try:
            self.wait(timeout)
        except TimeoutError:
            self.kill()
            if self.state().get("state") in LIVE_STATES:
                _update_state(self.dir, state="cancelled", finished=_now(),
                              message=f"stopped by force: the training did not stop within {timeout:g} s")

    def pause(self, reason: str = "asked", timeout: float | None = None) -> None:
        """Ask the child to stop after its current batch, resumable (``paused``); ``reason`` goes into its log.

        Nothing is lost but the epoch under way: its checkpoints are whole. With
        ``timeout``, wait that long for the child to stop; TimeoutError if it has not.
        """
        if not self.is_alive():
            raise ValueError(f"retrain job {self.id} is not running: nothing to pause")
        atomic_write_bytes(self.pause_path, (_one_line(reason) + "\n").encode())
        _log_line(self.dir, f"pause asked ({_one_line(reason)}): the training stops after its current batch")
        if timeout is not None:
            self.wait(timeout)

    def keep_in_background(self, reason: str = "the app was quit") -> None:
        """The child goes on without a viewer following it; the log and the state say so, for the next start."""
        _update_state(self.dir, background=_now())
        _log_line(self.dir, f"{_one_line(reason)}; the training goes on in the background")

    def kill(self) -> None:
        """SIGKILL the child's whole process group (it leads its own session)."""
        pid = self.state().get("pid")
        if not pid or not _pid_alive(int(pid), self.dir):
            return
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except (AttributeError, ProcessLookupError, PermissionError):
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        proc = _CHILDREN.get(int(pid))
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def comparison(self) -> dict | None:
        return _read_json(self.dir / "comparison.json")

    def new_model_path(self) -> Path | None:
        """The model the gate judged, once the job is done; None before, and after a cancel or a failure."""
        state = self.state()
        if state.get("state") != "done" or not state.get("model"):
            return None
        path = Path(state["model"])
        return path if path.is_file() else None

    def interrupted(self) -> bool:
        """The state says running or gating, but no child is alive: the app or the machine went down."""
        return self.state().get("state") in LIVE_STATES and not self.is_alive()

    def paused(self) -> bool:
        return self.state().get("state") == "paused" and not self.is_alive()

    def resumable(self) -> bool:
        """Paused on purpose (from its last epoch, or from epoch 1 when none was complete), or interrupted after
        at least one complete epoch."""
        if self.paused():
            return True
        return self.interrupted() and (self.checkpoint_path.is_file() or self._training_finished())

    def epochs_done(self) -> int:
        history = _read_json_list(self.run_dir / "history.json")
        return len(history)

    def _training_finished(self) -> bool:
        return (self.run_dir / "run.json").is_file() and (self.run_dir / "model.safetensors").is_file()

    def resume(self) -> "Job":
        """Relaunch the child with ``--resume``: training continues after the last complete epoch; when the
        training had finished, only the gate runs again."""
        if self.is_alive():
            raise ValueError(f"retrain job {self.id} is still running")
        state = self.state().get("state")
        if state in ("done", "cancelled", "failed"):
            raise ValueError(f"retrain job {self.id} has {'finished' if state == 'done' else 'ended (' + state + ')'}: "
                             "nothing to resume")
        if state != "paused" and not (self.checkpoint_path.is_file() or self._training_finished()):
            raise ValueError(f"retrain job {self.id} has no checkpoint to resume from")
        self.cancel_path.unlink(missing_ok=True)
        self.pause_path.unlink(missing_ok=True)
        if state == "paused":
            state = "gating" if self._training_finished() else "running"
        _update_state(self.dir, state=state if state in LIVE_STATES else "running", pid=None, message="resuming",
                      finished=None, background=None)
        _launch(self.dir, resume=True)
        return self

    def decision(self) -> str | None:
        """"accepted", "kept-current" or None (not decided yet)."""
        return self.state().get("decision")

    def abandon(self) -> None:
        """Close an interrupted or paused job instead of resuming it: it becomes ``cancelled`` (its folder stays, for
        the log). The state and the log say what happened to it, not who is to blame: a job that died before its
        first epoch was complete had nothing to resume; one that could be resumed was closed as asked."""
        if self.is_alive():
            raise ValueError(f"retrain job {self.id} is still running: cancel it instead")
        state = self.state()
        if state.get("state") not in (*LIVE_STATES, "paused"):
            raise ValueError(f"retrain job {self.id} is {state.get('state')}: nothing to abandon")
        message = f"{self._what_happened(state)}; {'closed without resuming, as asked' if self.resumable() else 'nothing to resume from, so it was closed'}"
        _update_state(self.dir, state="cancelled", finished=_now(), message=message)
        _log_line(self.dir, message)
        for folder in (self.dir, self.run_dir):  # never resumed: what the killed child left half-written goes now
            clean_stale_parts(folder)

    def resume_question(self) -> str:
        """What the reader is asked at start about this interrupted or paused job: how it stopped, and where
        resuming takes it ('… paused (the app was quit) during epoch 2 of 5; resuming continues after epoch 1')."""
        state = self.state()
        said = _one_line(state.get("message") or "")
        if state.get("state") == "paused" and ";" in said:
            return f"{said}. Resume it?"
        return f"{self._what_happened(state)}. Resume it from its last complete epoch?"

    def _what_happened(self, state: dict) -> str:
        """One line on how an interrupted or paused job stopped (its last state message, when it says)."""
        said = _one_line(state.get("message") or "")
        if state.get("state") == "paused" or said.startswith(("interrupted", "paused")):
            return said.split(";")[0]
        done = self.epochs_done()
        where = (f"after {done} complete epoch{'s' if done != 1 else ''}" if done
                 else "before its first epoch was complete")
        phase = "during the safety gate" if state.get("state") == "gating" else where
        return f"the training process stopped without a word {phase} (the app, the machine or the process went down)"


def start_job(spec: JobSpec, jobs_root: str | Path | None = None) -> Job:
    """Create ``jobs_root/<job_id>/`` (default ``user_data_dir()/jobs``), write spec.json and start the child."""
    root = Path(spec.root)
    if not root.exists():
        raise FileNotFoundError(f"training folder {root} does not exist")
    if spec.fine_tune and not spec.base_model:
        raise ValueError("fine-tuning needs the current model (base_model)")
    for label, path in (("current model", spec.base_model), ("hold-out folder", spec.holdout_root)):
        if path and not Path(path).exists():
            raise FileNotFoundError(f"{label} {path} does not exist")
    spec = dataclasses.replace(  # the child runs in the job folder: every path absolute
        spec, root=str(root.resolve()), base_model=str(Path(spec.base_model).resolve()) if spec.base_model else None,
        holdout_root=str(Path(spec.holdout_root).resolve()) if spec.holdout_root else None)
    jobs = Path(jobs_root) if jobs_root is not None else user_data_dir() / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    job_id = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    job_dir = jobs / job_id
    job_dir.mkdir()
    _write_json(job_dir / "spec.json", spec.to_json())
    _write_json(job_dir / "state.json", {"state": "running", "pid": None, "message": "starting", "started": _now(),
                                          "finished": None})
    job = Job(job_dir)
    _launch(job.dir, resume=False)
    return job


def list_jobs(jobs_root: str | Path | None = None) -> list[Job]:
    """Every job folder under ``jobs_root``, oldest first."""
    jobs = Path(jobs_root) if jobs_root is not None else user_data_dir() / "jobs"
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


# ---------------------------------------------------------------------------
# the safety gate


def _row(name: str, path: Path, report, key) -> dict:
    data = report.to_json(details=False)
    row = {"model": name, "available": True, "version": report.model_version, "weights": str(path),
           "patients": key.hashes({r["patient_id"] for r in report.per_image}), "images": report.images,
           "images_with_lesions": report.images_with_lesions, "lesions": report.lesions,
           "abnormalities_scored": report.abnormalities_scored, "malignant": report.malignant, "benign": report.benign,
           "held_out_rule": report.held_out_rule, "notes": list(report.notes), "seconds": report.seconds}
    for key, _, _ in GATE_METRICS:
        row[key] = data[key]
    row["auc_ci"] = list(data["auc_ci"])
    return row


def _better(current: dict | None, new: dict | None) -> dict[str, str | None]:
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def held_out_warnings(patients: int | None, lesions: int | None, malignant: int | None = None,
                      benign: int | None = None) -> list[str]:
    """Why a held-out set is too small for the gate to decide between two models; [] when it is not.

    The same rule before a run starts (from the planned split) and at the gate (from what was evaluated).
    """
    out = []
    if patients is not None and patients < MIN_HELD_OUT_PATIENTS:
        out.append(f"only {_plural(patients, 'held-out patient')}: at least {MIN_HELD_OUT_PATIENTS} are needed before "
                   "the figures can tell two models apart")
    if lesions is not None and lesions < MIN_HELD_OUT_LESIONS:
        out.append(f"only {_plural(lesions, 'held-out lesion')} (at least {MIN_HELD_OUT_LESIONS})")
    if malignant is not None and benign is not None and min(malignant, benign) < AUC_MIN_PER_CLASS:
        out.append(f"{malignant} malignant and {benign} benign held-out abnormalities: the malignancy AUC needs at least "
                   f"{AUC_MIN_PER_CLASS} of each")
    return out


def plan_held_out(index, config, *, holdout_index=None, gate_views: tuple[str, ...] = ("CC",)) -> dict:
    """Before a run: the held-out set the gate will use (the same patient split the training will make, or every
    patient of the locked hold-out folder), its size, and :func:`held_out_warnings` for it."""
    from model.data.split import split_patients
    from model.train.data import select_images

    views = {v.upper() for v in gate_views}
    if holdout_index is not None:
        pool, rule = holdout_index.images, "holdout-folder"
        patients = sorted({i.patient_id for i in pool})
        train_patients = None
    else:
        chosen, _ = select_images(index, tuple(config.views))
        labels: dict[str, bool] = {}  # as model.train.loop.train labels patients for its split
        for image in chosen:
            labels[image.patient_id] = labels.get(image.patient_id, False) or any(a.malignant for a in image.abnormalities)
        split = split_patients(labels, val_fraction=config.val_fraction, seed=config.split_seed)
        patients, train_patients, rule = list(split.val), len(split.train), "validation-split"
        pool = [i for i in index.images if i.patient_id in set(patients)]
    images = lesions = malignant = benign = 0
    for image in pool:  # as model.evaluate.evaluation.evaluate picks the images and their usable abnormalities
        if image.patient_id not in patients or (image.view or "").upper() not in views or not image.gt_known:
            continue
        usable = [a for a in image.abnormalities if not a.problem and a.mask_path]
        if image.abnormalities and not usable:
            continue
        images += 1
        lesions += len(usable)
        malignant += sum(a.malignant for a in usable)
        benign += sum(not a.malignant for a in usable)
    return {"rule": rule, "patients": len(patients), "train_patients": train_patients, "images": images,
            "lesions": lesions, "malignant": malignant, "benign": benign, "views": sorted(views),
            "warnings": held_out_warnings(len(patients), lesions, malignant, benign)}


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
            text += f"; {_plural(self.patients, 'held-out patient')}: too few to decide"
        return text

    def worse_lines(self) -> list[str]:
        """'Dice: 0.467 -> 0.187 (4 images with a lesion, 2 patients)' for each figure where the new model is worse."""
        return [f"{f.label}: {f.current_text} -> {f.new_text} ({f.held_out})" for f in self.worse]

    def to_json(self) -> dict:
        return {"figures": [f.to_json() for f in self.figures], "patients": self.patients, "warnings": self.warnings,
                "worse": [f.key for f in self.worse], "better": [f.key for f in self.better], "protocol": self.protocol,
                "summary": self.summary()}


def _counts(rows: list[dict]) -> dict:
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

    patients = f", {_plural(c['patients'], 'patient')}" if c.get("patients") is not None else ""
    if key in ("dice_mean", "iou_mean"):
        if c.get("images_with_lesions") is None:
            return n(c.get("images"), "images") + patients
        return _plural(c["images_with_lesions"], "image") + " with a lesion" + patients
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
    counts = _counts(rows)
    raw = _better(current, new)
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


def run_gate(spec: JobSpec, new_model: Path, split_val: list[str] | None = None, *,
             split: dict | None = None, should_stop: Callable[[], bool] | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Evaluate the current and the new model on the same held-out patients; the comparison.json content.

    Patients: every patient of ``spec.holdout_root`` when given, else the new
    run's validation patients on ``spec.root``: ``split`` (the run's
    ``split.json``, hashed patients read with the site key) or ``split_val``
    (their IDs). Both models get the same index, views, patients and bootstrap
    seed. comparison.json names the patients by the site's hashes, never by
    ID (model.data.split). Raises InterruptedError when ``should_stop`` asks.
    """
    from model.errors import ModelFileError
    from model.evaluate.evaluation import evaluate
    from model.data.split import RecordedSplit, resolve_split, site_key
    from model.data.study_index import build_index

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
            resolved = resolve_split(RecordedSplit.from_section(split), index, config={
                **config.to_json(), "split_seed": split.get("seed", config.split_seed),
                "val_fraction": split.get("val_fraction", config.val_fraction)})
            if resolved.val is None:
                raise ValueError(f"the run's validation patients cannot be told: {resolved.why}")
            split_val = sorted(resolved.val)
        patients = sorted(split_val or [])
        rule = "validation-split"
        description = f"the new run's patient-level validation split of {index.root} ({len(patients)} patients)"
        notes.append("the new model's best epoch was chosen on these validation patients, so its figures are slightly "
                     "optimistic; a locked hold-out folder avoids this")
    if not patients:
        raise ValueError("no held-out patients to compare the models on")

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
        except (ModelFileError, ValueError) as exc:
            rows.append({"model": name, "available": False, "weights": str(path), "reason": _one_line(str(exc))})
            notes.append(f"{name} model not evaluated: {_one_line(str(exc))}")
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
    new_card = _read_json(new_model.with_suffix(".json")) or {}
    chosen = "best" if new_model.name == "best.safetensors" else "final"
    comparison = {
        "format": "bcir-gate/1",
        "created": _now(),
        "rule": rule,
        "description": description,
        "root": index.root,
        "views": list(spec.gate_views),
        "patients": key.hashes(patients),  # the site's hashes (model.data.split): comparison.json goes into the registry
        "patient_key": key.id,
        "bootstrap": spec.bootstrap,
        "metrics": [{"key": k, "label": label, "higher_is_better": higher} for k, label, higher in GATE_METRICS],
        "rows": rows,
        "better": _better(current, new),
        "protocol": GATE_DICE_PROTOCOL,
        "new_model": {"path": str(new_model), "choice": chosen,
                      "epoch": ((new_card.get("training") or {}).get("metrics") or {}).get("epoch"),
                      "version": new_card.get("model_version")},
        "notes": notes,
    }
    verdict = judge(comparison)
    comparison["better"] = {f.key: f.verdict for f in verdict.figures}  # a figure that cannot be measured: None
    comparison["judgement"] = verdict.to_json()
    return comparison


def format_comparison(comparison: dict, *, notes: bool = True) -> str:
    """The gate as a small text table (the log and the terminal), judged by :func:`judge`: both values, which is
    better, and the held-out size behind each figure; ``notes=False`` leaves the notes out (they may name patients)."""
    verdict = judge(comparison)
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


# ---------------------------------------------------------------------------
# accept / reject: the reader's choice


def _data_report_counts(run_dir: Path) -> dict:
    report = _read_json(run_dir / "data_report.json") or {}
    return {k: v for k, v in report.items() if k != "left_out"}  # left_out lists file paths; its count stays


class WorseModel(ValueError):
    """:func:`accept` without ``force`` of a model the gate found worse on some figure; ``verdict`` says which."""

    def __init__(self, job_id: str, verdict: GateVerdict):
        self.verdict = verdict
        super().__init__(f"the new model of retrain job {job_id} is worse on {len(verdict.worse)} of "
                         f"{len(verdict.figures)} gate figures ({'; '.join(verdict.worse_lines())}): "
                         "confirm to use it anyway")


def accept(job: Job, registry=None, *, force: bool = False):
    """Add the job's new model to the registry (log, data summary and gate in its entry) and make it active.

    WorseModel (a ValueError) when the gate found it worse on any figure, unless ``force``: the reader confirmed.
    """
    from model.registry.versions import ModelRegistry, training_data_from_card
    from model.nn.weights import read_card

    state = job.state()
    if state.get("state") != "done":
        raise ValueError(f"retrain job {job.id} is {state.get('state')}: only a finished job's model can be used")
    path = job.new_model_path()
    if path is None:
        raise ValueError(f"retrain job {job.id} has no new model")
    comparison = job.comparison()
    verdict = judge(comparison) if comparison else None
    if verdict is not None and verdict.worse and not force and job.decision() != "accepted":
        raise WorseModel(job.id, verdict)
    registry = registry if registry is not None else ModelRegistry()
    spec = job.spec()
    card = read_card(path)
    new_row = next((r for r in (comparison or {}).get("rows", []) if r["model"] == "new" and r["available"]), None)
    counts = _counts((comparison or {}).get("rows", []))
    info = {
        "source": f"retrain job {job.id}",
        "job": str(job.dir),
        "training_data": {**training_data_from_card(card), "root": spec.root, "data_report": _data_report_counts(job.run_dir),
                          "summary": spec.data_summary},
        "settings": {**spec.train_config().to_json(), "fine_tune": spec.fine_tune, "base_model": spec.base_model,
                     "holdout_root": spec.holdout_root},
        "metrics": ({k: new_row[k] for k, _, _ in GATE_METRICS}
                    | {"auc_ci": new_row["auc_ci"], "held_out": "gate", "protocol": "evaluation",
                       "patients": counts.get("patients"), "images": counts.get("images"),
                       "images_with_lesions": counts.get("images_with_lesions"), "lesions": counts.get("lesions"),
                       "malignant": counts.get("malignant"), "benign": counts.get("benign"),
                       "not_measurable": {f.key: f.not_measurable for f in verdict.figures if f.not_measurable},
                       "too_few_to_decide": bool(verdict.warnings)}
                    if new_row and verdict else (card.get("training") or {}).get("metrics") or {}),
        "gate": comparison,
    }
    version = card["model_version"]
    try:
        registry.get(version)  # accepted before, and the app went down before the switch
    except KeyError:
        registry.add(path, log_path=job.log_path, info=info)
    entry = registry.use(version)
    _update_state(job.dir, decision="accepted", decided=_now(), version=version)
    _log_line(job.dir, f"the new model {version} was put in use"
              + (f" although worse on {len(verdict.worse)} gate figures (confirmed)" if verdict and verdict.worse else ""))
    return entry


def reject(job: Job) -> None:
    """Keep the current model: the job is marked ``kept-current`` and the registry is not touched."""
    state = job.state()
    if state.get("state") != "done":
        raise ValueError(f"retrain job {job.id} is {state.get('state')}: there is no new model to keep or drop")
    _update_state(job.dir, decision="kept-current", decided=_now())
    _log_line(job.dir, "the current model was kept; the new one was not added")


# ---------------------------------------------------------------------------
# the child


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
        kind, now = record["kind"], time.monotonic()
        if done <= 1 or done >= total or now - self._last.get(kind, 0.0) >= EVENT_INTERVAL_S:
            self._last[kind] = now
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
    with contextlib.suppress(AttributeError, OSError):
        os.nice(5)  # the reader's viewer comes first

    def should_stop() -> bool:
        return stop_asked["signal"] or job.cancel_path.exists() or job.pause_path.exists()

    _update_state(job.dir, pid=os.getpid(), message="resuming" if resume else "starting", finished=None)
    clean_stale_parts(job.dir)  # a killed child's temp files (the run folder's: model.train.loop.train)
    events = _EventLog(job.events_path)
    where_now = {"epoch": 0, "epochs": 0}  # the epoch under way, for the pause message

    def finish(state: str, message: str, **extra) -> None:
        _update_state(job.dir, state=state, message=message, finished=_now(), **extra)
        _say(f"{state}: {message}")

    def resume_words(where: str) -> str:
        done = job.epochs_done()
        if where == "gate" or job._training_finished():
            return "resuming runs the safety gate again"
        if done:
            return f"resuming continues after epoch {done} (the epoch under way is lost)"
        return "resuming starts the training again from epoch 1 (the images prepared so far are kept)"

    def stopped(where: str) -> int:
        """A cancel ends the job; a pause (the reader quit the app) or a SIGTERM (a shutdown) leaves it resumable."""
        if job.cancel_path.exists():
            message = f"cancelled during the {where}; no new model is offered"
            if where == "gate":
                events.write({"kind": "cancelled", "message": message})
            finish("cancelled", message)
            return 0
        during = (f"during epoch {where_now['epoch']} of {where_now['epochs']}" if where == "training" and where_now["epoch"]
                  else f"during the {where}")
        if job.pause_path.exists():
            try:
                reason = _one_line(job.pause_path.read_text()) or "asked"
            except OSError:
                reason = "asked"
            message = f"paused ({reason}) {during}; {resume_words(where)}"
            events.write({"kind": "paused", "message": message})
            _update_state(job.dir, state="paused", message=message, paused=_now())
            _say(message)
            return 0
        if job.checkpoint_path.is_file() or where == "gate":
            message = f"interrupted by SIGTERM {during}; {resume_words(where)}"
            events.write({"kind": "interrupted", "message": message})
            _update_state(job.dir, message=message)
            _say(message)
            return 128 + signal.SIGTERM
        message = f"paused (the system asked the training to stop: SIGTERM) {during}; {resume_words(where)}"
        events.write({"kind": "paused", "message": message})
        _update_state(job.dir, state="paused", message=message, paused=_now())
        _say(message)
        return 128 + signal.SIGTERM

    try:
        spec = job.spec()
        _say(("resuming" if resume else "starting") + f" retrain job {job.id}")
        if job.cancel_path.exists():
            events.write({"kind": "cancelled", "message": "cancelled before training started"})
            finish("cancelled", "cancelled before training started")
            return 0
        if should_stop():
            return stopped("start")
        if resume and job._training_finished():
            _say("training had finished: running the safety gate again")
        else:
            from model.train.loop import TrainEvent, train

            def on_event(event: TrainEvent) -> None:
                if event.kind == "prepare" and should_stop():  # preparing takes minutes: stop between images too
                    raise _StopDuringPreparation()
                if event.kind == "epoch_start":
                    where_now.update(epoch=event.epoch, epochs=event.epochs)
                record = dataclasses.asdict(event)
                if event.kind in ("batch", "prepare") and event.batches:
                    events.thinned(record, done=event.batch, total=event.batches)
                else:
                    events.write(record)
                if event.kind == "epoch_end":
                    m = event.metrics
                    _say(f"epoch {event.epoch}/{event.epochs}: train loss {m['train_loss']:.4f}" + "".join(
                        f", {k} {m[k]:.4f}" for k in ("val_loss", "val_dice", "val_auc") if k in m)
                        + f" ({m['seconds']:.0f} s)")
                elif event.kind in ("early_stop", "cancelled") or event.message.startswith("resumed"):
                    _say(f"{event.kind}: {event.message}")

            result = train(spec.root, job.run_dir, spec.train_config(), resume=resume, callback=on_event,
                           should_stop=should_stop)
            if result.cancelled:
                return stopped("training")
        best, final = job.run_dir / "best.safetensors", job.run_dir / "model.safetensors"
        new_model = best if best.is_file() else final
        if not new_model.is_file():
            raise RuntimeError("the training ended without a model")
        _update_state(job.dir, state="gating", message="comparing the current and the new model on the held-out patients")
        _say("safety gate: evaluating the current and the new model on the same held-out patients")
        split = _read_json(job.run_dir / "split.json") or {}

        def gate_progress(name: str, done: int, total: int) -> None:
            events.thinned({"kind": "gate_progress", "model": name, "done": done, "total": total}, done=done, total=total)

        comparison = run_gate(spec, new_model, split=split or None, should_stop=should_stop, progress=gate_progress)
        _write_json(job.dir / "comparison.json", comparison)
        verdict = judge(comparison)
        events.write({"kind": "gate", "rule": comparison["rule"], "patients": len(comparison["patients"]),
                      "better": comparison["better"], "new_model": str(new_model),
                      "rows": [{k: r.get(k) for k in ("model", "available", "version", "images")} for r in comparison["rows"]]})
        for line in format_comparison(comparison, notes=False).splitlines():
            _say(line)
        for warning in verdict.warnings:
            _say(f"warning: {warning}")
        _say(f"{len(comparison['notes'])} notes in comparison.json")  # evaluation notes may name patients: not here
        finish("done", verdict.summary(), model=str(new_model))
        return 0
    except _StopDuringPreparation:
        return stopped("preparation")
    except InterruptedError:
        return stopped("gate")
    except Exception as exc:
        traceback.print_exc()
        reason = _one_line(f"{type(exc).__name__}: {exc}")
        events.write({"kind": "failed", "message": reason})
        finish("failed", reason)
        return 1
    finally:
        events.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.jobs.retrain", description="run one retrain job (the child process)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train, then run the safety gate, reporting through the job folder")
    p.add_argument("job_dir")
    p.add_argument("--resume", action="store_true", help="continue after the last complete epoch")
    args = parser.parse_args(argv)
    return _run_child(Path(args.job_dir), resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["AUC_MIN_PER_CLASS", "GATE_DICE_PROTOCOL", "GATE_METRICS", "GateFigure", "GateVerdict", "Job", "JobSpec",
           "MIN_HELD_OUT_LESIONS", "MIN_HELD_OUT_PATIENTS", "STATES", "TRAINING_DICE_PROTOCOL", "WorseModel", "accept",
           "eta_text", "find_resumable", "find_undecided_background", "format_comparison", "held_out_warnings", "judge",
           "list_jobs", "plan_held_out", "reject", "run_gate", "start_job"]
