"""Loaded images kept in memory, so going back to a case or on to a prefetched one is instant."""

from __future__ import annotations

from collections import OrderedDict

from app.background.case_loading import LoadedImage

# A full-size CBIS-DDSM image with its pyramid is about 36 MB; 12 is the current,
# the previous and the next patient's four views.
DEFAULT_CAPACITY = 12


class ImageCache:
    """Least-recently-used, by file path. Only the GUI thread touches it."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, LoadedImage] = OrderedDict()

    def get(self, path: str) -> LoadedImage | None:
        item = self._items.get(path)
        if item is not None:
            self._items.move_to_end(path)
        return item

    def __contains__(self, path: str) -> bool:
        return path in self._items

    def __len__(self) -> int:
        return len(self._items)

    def put(self, loaded: LoadedImage, keep: set[str] = frozenset()) -> None:
        """Add ``loaded``; evicts the oldest entries not in ``keep`` (the case on screen)."""
        self._items[loaded.indexed.path] = loaded
        self._items.move_to_end(loaded.indexed.path)
        for path in list(self._items):
            if len(self._items) <= self.capacity:
                break
            if path not in keep and path != loaded.indexed.path:
                del self._items[path]

    def clear(self) -> None:
        self._items.clear()
