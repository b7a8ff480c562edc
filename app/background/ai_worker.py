"""Runs the network in the background: one job at a time, the newest request first.

Jobs are loading the model, whole-view inference on a case's CC views, one
ROI, and, when nothing else waits, the next case's CC views (a prefetch, so
the next case opens with its marks). A new request cancels the running
inference at its next tile (through ``should_stop``) and starts once that job
has stopped, so two inferences never share the device; a request for the case
a job already works on adopts that job instead. Results seen this session come
back at once from memory; results of earlier sessions come from the
predictor's disk cache (``from_cache``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from model.errors import ModelFileError
from model.fileio import user_cache_dir
from model.data.study_index import IndexedImage

from app.background.ai_results import AiFailure, AiImage, AiProgress, load_with_trust, model_status, run_case, run_roi
from app.errors import describe
from app.background.workers import Worker, WorkerPool

log = logging.getLogger("bcir.app")

MEMORY_RESULTS = 48  # whole-view results kept in memory: a dozen four-view patients


@dataclass(eq=False)
class _Job:
    kind: str  # "load" | "case" | "roi"
    patient_id: str | None = None
    images: list[IndexedImage] = field(default_factory=list)
    point: tuple[float, float] | None = None
    prefetch: bool = False  # a case nobody looks at yet: no caseDone, first to be cancelled
    worker: Worker | None = None
    generation: int = 0  # the model it was started for


class AiRunner(QObject):
    """The app's one inference queue. Signals reach the GUI thread; no widget is touched here."""

    modelStatus = Signal(str)  # "CPU (2 cores, bf16), bf16, channels_last · model X", "Loading model…", "No model: …"
    progressed = Signal(str, int, int)  # what runs ("R CC"), tiles done, tiles total (0 total: starting)
    resultReady = Signal(object)  # AiImage, of the case asked for or of a prefetched one
    failed = Signal(str, str)  # one-line message, context: the model or an ROI the reader asked for
    imageFailed = Signal(object)  # AiFailure: one image the network could not run on (any case, prefetched too)
    caseDone = Signal(str)  # patient id: each requested image has a result or failed, or no model can run
    idle = Signal()  # nothing running or waiting

    def __init__(self, workers: WorkerPool, parent: QObject | None = None, *, model_path: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.predictor = None
        self.trust = None  # the model's MalignancyTrust: how far its benign/malignant call can be trusted
        self.unavailable: str | None = None  # why no model can run, once that is known
        self.status = ""
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.inferred: list[str] = []  # paths the network really ran on (not from a cache): tests count them
        self._model_path = model_path
        self._load_args: tuple[Path, Path] | None = None
        self._memory: OrderedDict[tuple[str, str], AiImage] = OrderedDict()
        self._failed: dict[str, AiFailure] = {}  # images the network could not read with this model: not retried
        self._current: _Job | None = None
        self._pending: list[_Job] = []
        self._case: _Job | None = None  # the job of the case on screen, until all its images are done
        self._wish: _Job | None = None  # a prefetch to run when nothing else is to do
        self._generation = 0  # bumped with each model change: late results of the previous model are dropped

    # -- the model

    def start(self) -> None:
        """Load the model (in the background)."""
        self.set_model_path(self._model_path)

    def set_model_path(self, path: str | Path | None) -> None:
        """Use another model file (None: what :func:`model.registry.resolve.resolve_model` says is in use)."""
        self._model_path = path
        self._generation += 1
        self.predictor = None
        self.trust = None
        self.unavailable = None
        self._memory.clear()
        self._failed.clear()
        self._case = None
        self._wish = None
        self._pending = []
        self._cancel_current(also_load=True)
        from model.registry.resolve import resolve_model  # the registry loads torch: not before it is needed

        try:
            resolved = resolve_model(path)
        except ModelFileError as exc:  # nothing bundled: a status, not an error
            self._set_unavailable(describe(exc))
            return
        if resolved is None:
            self._set_unavailable("AI turned off (BCIR_MODEL=none)")
            return
        self._load_args = (resolved, self.cache_dir or user_cache_dir() / "results")
        self._set_status(f"Loading model {resolved.name}…")
        self._pending.insert(0, _Job("load"))
        self._pump()

    def _set_status(self, text: str) -> None:
        self.status = text
        self.modelStatus.emit(text)

    def _set_unavailable(self, reason: str) -> None:
        self.unavailable = reason
        self._set_status(f"No model: {reason}")
        waiting = [j for j in [self._case, *self._pending] if j is not None and j.kind == "case" and not j.prefetch]
        self._pending = []
        self._case = None
        for patient_id in dict.fromkeys(j.patient_id for j in waiting):
            self.caseDone.emit(patient_id)

    @property
    def model_path(self) -> Path | None:
        """The model file in use (or being loaded); None when no model can run."""
        return self._load_args[0] if self._load_args is not None and self.unavailable is None else None

    @property
    def model_version(self) -> str | None:
        return self.predictor.model.version if self.predictor is not None else None

    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._pending)

    @property
    def inferences(self) -> int:
        return len(self.inferred)

    # -- requests

    def cached(self, path: str) -> AiImage | None:
        """This session's whole-view result for ``path`` with the current model, if any."""
        version = self.model_version
        item = self._memory.get((path, version)) if version else None
        if item is not None:
            self._memory.move_to_end((path, version))
        return item

    def failure(self, path: str) -> AiFailure | None:
        """Why the network could not run on ``path`` with this model, if it could not."""
        return self._failed.get(path)

    def _todo(self, images: list[IndexedImage]) -> list[IndexedImage]:
        return [i for i in images if self.cached(i.path) is None and i.path not in self._failed]

    def request_case(self, patient_id: str, images: list[IndexedImage]) -> None:
        """Results for ``images`` (the CC views): memory hits and known failures at once, the rest from a worker;
        then caseDone. A failure met while the case was prefetched is told now, when the reader opens it."""
        if self.unavailable is not None:
            self.caseDone.emit(patient_id)
            return
        for image in images:
            hit = self.cached(image.path)
            if hit is not None:
                self.resultReady.emit(hit)
            elif image.path in self._failed:
                self.imageFailed.emit(self._failed[image.path])
        todo = self._todo(images) if self.predictor is not None else list(images)
        self._pending = [j for j in self._pending if j.kind == "load"]
        self._wish = None
        current = self._current
        if not todo:
            self._case = None
            if current is not None and current.kind != "load" and (current.prefetch or current.patient_id != patient_id):
                current.worker.cancel()
            self.caseDone.emit(patient_id)
            return
        if (current is not None and current.kind == "case" and current.patient_id == patient_id
                and current.generation == self._generation and not current.worker.is_cancelled()
                and {i.path for i in todo} <= {i.path for i in current.images}):
            current.prefetch = False  # already on it (a prefetch the reader caught up with): keep it running
            self._case = current
            return
        self._case = _Job("case", patient_id, todo)
        self._pending.append(self._case)
        self._cancel_current()
        self._pump()

    def prefetch(self, patient_id: str, images: list[IndexedImage]) -> None:
        """Run a case nobody looks at yet once the queue is empty; any request cancels it (or adopts it)."""
        self._wish = _Job("case", patient_id, list(images), prefetch=True)
        self._pump()

    def request_roi(self, image: IndexedImage, x: float, y: float) -> bool:
        """One tile centred on (x, y); the unfinished whole-view work of the case resumes after it."""
        if self.unavailable is not None:
            return False
        job = _Job("roi", image.patient_id, [image], point=(x, y))
        self._wish = None
        self._pending = [j for j in self._pending if j.kind == "load"] + [job]
        if self._case is not None:
            self._pending.append(self._case)
        self._cancel_current()
        self._pump()
        return True

    def forget_failures(self, paths: list[str]) -> None:
        """Let images that failed be tried again (the reader asked for it)."""
        for path in paths:
            self._failed.pop(path, None)

    def cancel(self) -> bool:
        """Stop the running inference and drop what waits (a model keeps loading). True when something stopped."""
        stopped = self._current is not None and self._current.kind != "load"
        dropped = any(j.kind != "load" for j in self._pending)
        self._pending = [j for j in self._pending if j.kind == "load"]
        self._case = None
        self._wish = None
        self._cancel_current()
        return stopped or dropped

    def _cancel_current(self, also_load: bool = False) -> None:
        """Ask the running job to stop at its next tile; _on_finished then starts what waits."""
        if self._current is not None and (also_load or self._current.kind != "load"):
            self._current.worker.cancel()

    # -- running

    def _pump(self) -> None:
        if self._current is not None:
            return
        if not self._pending and self._wish is not None and self.predictor is not None:
            wish, self._wish = self._wish, None
            if self._todo(wish.images):
                self._pending.append(wish)
        if not self._pending:
            self.idle.emit()
            return
        job = self._pending.pop(0)
        job.generation = self._generation
        if job.kind == "load":
            path, cache = self._load_args
            task = lambda report, should_stop: load_with_trust(path, cache)
            callbacks = dict(on_result=lambda loaded: self._on_loaded(job, *loaded),
                             on_error=lambda message: self._on_load_error(job, path, message))
            priority = QThread.Priority.NormalPriority
        elif self.predictor is None:  # the model is still loading: the job waits for it
            self._pending.insert(0, job)
            return
        elif job.kind == "case":
            todo = self._todo(job.images)
            if not todo:  # everything came in meanwhile (a job that resumes after an ROI)
                self._finish_case(job)
                self._pump()
                return
            job.images = todo
            predictor = self.predictor
            task = lambda report, should_stop: run_case(predictor, todo, report, should_stop)
            callbacks = dict(on_progress=lambda event: self._on_case_event(job, event),
                             on_result=lambda _n: self._finish_case(job),
                             on_error=lambda message: self._on_case_error(job, message))
            priority = QThread.Priority.LowPriority  # the pictures and the reader's input come first
        else:
            predictor, image, (x, y) = self.predictor, job.images[0], job.point
            task = lambda report, should_stop: run_roi(predictor, image, x, y)
            callbacks = dict(on_result=lambda item: self._on_roi(job, item),
                             on_error=lambda message: self._on_roi_error(job, message))
            self.progressed.emit(f"ROI on {image.name}", 0, 0)
            priority = QThread.Priority.LowPriority
        self._current = job
        job.worker = self.workers.start(task, name=f"ai {job.kind} {job.patient_id or ''}".strip(),
                                        on_finished=lambda: self._on_finished(job), priority=priority, **callbacks)

    def _on_finished(self, job: _Job) -> None:
        if self._current is job:
            self._current = None
        self._pump()

    def _on_loaded(self, job: _Job, predictor, trust) -> None:
        if job.generation != self._generation:
            return
        self.predictor = predictor
        self.trust = trust
        self._set_status(model_status(predictor))

    def _on_load_error(self, job: _Job, path: Path, message: str) -> None:
        if job.generation != self._generation:
            return
        self.failed.emit(message, f"Loading the model {path.name}")
        self._set_unavailable(message)

    def _on_case_event(self, job: _Job, event) -> None:
        if job.generation != self._generation:
            return
        if isinstance(event, AiProgress):
            if not job.prefetch and not job.worker.is_cancelled():  # a stopped job's last ticks are old news
                self.progressed.emit(event.indexed.name, event.done, event.total)
        elif isinstance(event, AiImage):
            if not event.result.from_cache:
                self.inferred.append(event.path)
            key = (event.path, event.result.model_version)
            self._memory[key] = event
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_RESULTS:
                self._memory.popitem(last=False)
            self.resultReady.emit(event)
        elif isinstance(event, AiFailure):
            self._failed[event.indexed.path] = event
            self.imageFailed.emit(event)

    def _on_case_error(self, job: _Job, message: str) -> None:
        """The whole job failed (not one image): each image still waiting gets the reason."""
        if job.generation != self._generation:
            return
        for image in job.images:
            if self.cached(image.path) is None and image.path not in self._failed:
                self._failed[image.path] = failure = AiFailure(image, message)
                self.imageFailed.emit(failure)
        self._finish_case(job)

    def _finish_case(self, job: _Job) -> None:
        if job.generation != self._generation:
            return
        if self._case is job:
            self._case = None
        if not job.prefetch:
            self.caseDone.emit(job.patient_id)

    def _on_roi(self, job: _Job, item: AiImage) -> None:
        if job.generation == self._generation:
            self.resultReady.emit(item)

    def _on_roi_error(self, job: _Job, message: str) -> None:
        if job.generation == self._generation:
            self.imageFailed.emit(AiFailure(job.images[0], message, roi_point=job.point))
