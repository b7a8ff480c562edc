"""Where received DICOM instances go: one file per instance, written whole or not at all, never twice.

``INBOX/STUDY_UID/SERIES_UID/SOP_INSTANCE_UID.dcm``: each file is written to a temporary name, fsynced and moved
into place (model.fileio), so a reader of the inbox, or an indexer, never sees half a file; an instance that is
already there is not written again (an archive that sends a study twice, a retried C-MOVE).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from model.errors import DataError
from model.fileio import atomic_write_bytes

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def _uid(dataset: Dataset, keyword: str) -> str:
    value = str(dataset.get(keyword, "") or "").strip()
    if not value or len(value) > 64 or not _UID.fullmatch(value):
        raise DataError(f"{keyword} {value[:70]!r} is not a DICOM UID: the instance cannot be filed")
    return value


@dataclass(frozen=True)
class Stored:
    path: Path
    new: bool  # False: the instance was there already, and was not written again


def default_inbox() -> Path:
    """``dicom-inbox`` in the user data folder: where the node and retrievals file instances unless told otherwise."""
    from model.fileio import user_data_dir

    return user_data_dir() / "dicom-inbox"


class Inbox:
    """The received instances under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path_of(self, dataset: Dataset) -> Path:
        return (self.root / _uid(dataset, "StudyInstanceUID") / _uid(dataset, "SeriesInstanceUID")
                / f"{_uid(dataset, 'SOPInstanceUID')}.dcm")

    def store(self, dataset: Dataset, file_meta: FileMetaDataset | None = None) -> Stored:
        """File one instance (with the file meta its association gave it). DataError when its UIDs cannot name a
        file."""
        path = self.path_of(dataset)
        if path.is_file():
            return Stored(path, False)
        if file_meta is not None:
            dataset.file_meta = file_meta
        meta = dataset.file_meta
        meta.MediaStorageSOPClassUID = UID(str(dataset.SOPClassUID))
        meta.MediaStorageSOPInstanceUID = UID(str(dataset.SOPInstanceUID))
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        return Stored(path, True)

    def files(self) -> list[Path]:
        return sorted(self.root.rglob("*.dcm")) if self.root.is_dir() else []

    def studies(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []


__all__ = ["Inbox", "Stored", "default_inbox"]
