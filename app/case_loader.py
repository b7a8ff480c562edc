"""Keeps the shown case's images loading in background workers, caches them, and prefetches the next case."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread

from model.data.study_index import IndexedImage

from app.background.case_loading import LoadedImage, LoadFailure, load_case
from app.errors import ErrorReporter
from app.viewer.hanging_view import HangingView
from app.background.image_cache import ImageCache
from app.background.workers import Worker, WorkerPool


@dataclass
class _Load:
    """One running loader: the case on screen, or the next one being prefetched."""

    patient_id: str
    paths: set[str]
    worker: Worker | None = None


class CaseLoader(QObject):
    """Feeds the HangingView: cached images at once, the others as their worker reports them.

    Every image is loaded at most once at a time; switching patients cancels
    loaders of other patients (at their next image), and whatever a cancelled
    loader left undone for the shown case is started again when it finishes.
    """

    def __init__(self, workers: WorkerPool, viewer: HangingView, errors: ErrorReporter, parent: QObject | None = None):
        super().__init__(parent)
        self.workers = workers
        self.viewer = viewer
        self.errors = errors
        self.cache = ImageCache()
        self._loads: list[_Load] = []
        self._failed: dict[str, LoadFailure] = {}  # images that could not be read, with the reason
        self._generation = 0  # bumped on reset, so images of a previous folder are dropped

    def reset(self) -> None:
        """A new folder: forget everything loaded or loading."""
        self._generation += 1
        self.cancel()
        self.cache.clear()
        self._failed.clear()

    def cancel(self, keep: str | None = None) -> None:
        for load in self._loads:
            if load.patient_id != keep and load.worker is not None:
                load.worker.cancel()

    def show(self, patient_id: str, images: list[IndexedImage]) -> None:
        """Show a case: images in memory at once, images that failed while prefetched with their reason."""
        wanted = self.viewer.show_patient(patient_id, images)
        self.cancel(keep=patient_id)
        for image in wanted:
            cached = self.cache.get(image.path)
            if cached is not None:
                self.viewer.place(cached)
            elif image.path in self._failed:
                self._show_failure(self._failed[image.path])
        self._ensure_loading()

    def prefetch(self, patient_id: str, images: list[IndexedImage]) -> None:
        """Load another case at low priority, unless something other than the shown case is loading."""
        if any(load.patient_id != self.viewer.patient_id for load in self._loads):
            return
        pending = self._pending()
        todo = [i for i in images if i.path not in self.cache and i.path not in pending and i.path not in self._failed]
        if todo:
            self._start(patient_id, todo, QThread.Priority.LowPriority)

    def _pending(self) -> set[str]:
        return {p for load in self._loads for p in load.paths}

    def _ensure_loading(self) -> None:
        """Start a loader for the shown case's images that are neither cached, loading nor failed."""
        patient_id = self.viewer.patient_id
        if patient_id is None:
            return
        pending = self._pending()
        missing = [
            image for image in self.viewer.load_order
            if image.path not in self.cache and image.path not in pending and image.path not in self._failed
        ]
        if missing:
            self._start(patient_id, missing, QThread.Priority.NormalPriority)

    def _start(self, patient_id: str, images: list[IndexedImage], priority: QThread.Priority) -> None:
        load = _Load(patient_id, {i.path for i in images})
        generation = self._generation
        load.worker = self.workers.start(
            lambda report, should_stop: load_case(images, report, should_stop),
            name=f"load {patient_id}",
            on_progress=lambda item: self._on_loaded(item) if generation == self._generation else None,
            on_error=lambda message: self._on_error(patient_id, message),
            on_finished=lambda: self._on_finished(load),
            priority=priority,
        )
        self._loads.append(load)

    def _on_finished(self, load: _Load) -> None:
        if load in self._loads:
            self._loads.remove(load)
        self._ensure_loading()  # a cancelled loader may have left images of the shown case undone

    def _on_error(self, patient_id: str, message: str) -> None:
        """A loader stopped on an error of its own (each image's errors are LoadFailures): the reader hears of
        it only while the case is on screen; a prefetch is simply done again when the case is opened."""
        if patient_id == self.viewer.patient_id:
            self.errors.note(message, context=f"Loading {patient_id}")

    def _show_failure(self, failure: LoadFailure) -> None:
        """The pane says why (it stays empty); the status bar has the same line, and no box interrupts."""
        if self.viewer.place_failure(failure):
            self.errors.note(failure.message, context=f"{failure.indexed.patient_id} {failure.indexed.name}")

    def _on_loaded(self, item: LoadedImage | LoadFailure) -> None:
        if isinstance(item, LoadFailure):
            self._failed[item.indexed.path] = item
            self._show_failure(item)  # only when it belongs to the case on screen
            return
        self.cache.put(item, keep={image.path for image in self.viewer.assignment.values()})
        self.viewer.place(item)
