"""Following a retrain job in the terminal: a progress bar per epoch and per gate model, a line per epoch, then its
outcome (the gate table and how to decide) and the exit code."""

from __future__ import annotations

import sys
import time

from model.cli.exit_codes import one_line
from model.jobs.estimate import eta_text

FOLLOW_POLL_S = 0.2
CANCEL_WAIT_S = 30.0  # a cancel or a pause from the terminal waits this long for the child to stop


def epoch_line(epoch: int, epochs: int, metrics: dict) -> str:
    parts = [f"train loss {metrics['train_loss']:.4f}"] if "train_loss" in metrics else []
    parts += [f"{label} {metrics[key]:.4f}" for key, label in (("val_loss", "val loss"), ("val_dice", "val Dice"),
                                                                  ("val_auc", "val AUC")) if metrics.get(key) is not None]
    seconds = f" ({metrics['seconds']:.0f} s)" if metrics.get("seconds") is not None else ""
    return f"epoch {epoch}/{epochs}: " + ", ".join(parts) + seconds


def decide_hint(job_id: str) -> str:
    return (f"  bcir jobs accept {job_id}    add the new model to the registry and make it active "
            "(--force when the gate found it worse on any figure)\n"
            f"  bcir jobs reject {job_id}    keep the current model")


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
            part = f"{event['part']} part " if event.get("part") else ""  # a two-pass run's part
            self._open(event.get("batches", 0), f"{part}epoch {event.get('epoch')}/{event.get('epochs')}", "batch")
        elif kind == "batch":
            self._advance(event.get("batch", 0))
            if self.bar is not None and event.get("loss") is not None:
                postfix = {"loss": f"{event['loss']:.4f}"}
                if event.get("eta_s") is not None:
                    postfix["ETA"] = eta_text(event["eta_s"])
                self.bar.set_postfix(postfix, refresh=False)
        elif kind == "epoch_end":
            part = f"{event['part']} part " if event.get("part") else ""
            self.say(part + epoch_line(event.get("epoch", 0), event.get("epochs", 0), event.get("metrics") or {}))
        elif kind == "part_done":
            self.say(f"{event.get('part')} part done")
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


def report_end(job, state: dict) -> int:
    """The job's outcome: the gate table and the accept/reject commands when done. The exit code."""
    from model.jobs.state import LIVE_STATES
    from model.jobs.verdict import format_comparison

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
            print("the active model is unchanged; to choose:\n" + decide_hint(job.id))
        return 0
    if kind == "paused":
        print(f"retrain job {job.id} paused: {one_line(state.get('message', ''))}; `bcir jobs resume {job.id}` "
              f"continues it, `bcir jobs abandon {job.id}` closes it", file=sys.stderr)
        return 1
    if kind in LIVE_STATES:
        hint = (f"`bcir jobs resume {job.id}` continues it, `bcir jobs abandon {job.id}` closes it" if job.resumable()
                else f"nothing to resume from: `bcir jobs abandon {job.id}` closes it")
        print(f"retrain job {job.id}: its process ended before finishing ({one_line(state.get('message', ''))}); {hint}",
              file=sys.stderr)
        return 1
    print(f"retrain job {job.id} {kind}: {one_line(state.get('message', ''))}", file=sys.stderr)
    return 1


def follow_and_report(job) -> int:
    """``bcir jobs follow``: Ctrl+C stops following and leaves the job running."""
    print(f"following retrain job {job.id} (Ctrl+C stops following; it does not cancel the job)", flush=True)
    try:
        state = follow(job)
    except KeyboardInterrupt:
        print(f"\nstopped following; retrain job {job.id} goes on (`bcir jobs cancel {job.id}` stops it)", file=sys.stderr)
        return 130
    return report_end(job, state)


__all__ = ["CANCEL_WAIT_S", "FOLLOW_POLL_S", "decide_hint", "epoch_line", "follow", "follow_and_report", "report_end"]
