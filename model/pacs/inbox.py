"""Where received DICOM instances go: one file per instance, written whole or not at all, never twice.

``INBOX/STUDY_UID/SERIES_UID/SOP_INSTANCE_UID.dcm``: each file is written to a temporary name in its folder, fsynced
and then linked into place under its own name, which fails when that name exists: two associations (or two
processes: the node and a retrieval) filing the same instance at the same moment write one file, and exactly one of
them is told it was new; a reader of the inbox, or an indexer, never sees half a file. A write that fails (a full
disk) leaves no temporary file behind. An instance whose uncompressed pixel data is shorter than its rows, columns
and bits need (a sender that cut it short) is refused, not filed as an image that cannot be shown. Nothing a sender
put in an instance is echoed in an error: a UID that cannot name a file is described by its length, never by its
value (a broken sender may put a patient's ID there).
"""

from __future__ import annotations

import errno
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from model.errors import DataError
from model.fileio import fsync_dir, held_lock

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
# link() errors of a file system without hard links (FAT, some network shares): the instance is moved instead
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS, errno.EMLINK}


def _uid(dataset: Dataset, keyword: str) -> str:
    try:
        value = str(dataset.get(keyword, "") or "").strip()
    except Exception as exc:  # noqa: BLE001 - a value pydicom cannot even read is a bad instance, whatever it raises
        raise DataError(f"{keyword} cannot be read ({type(exc).__name__}): the instance cannot be filed") from None
    if not value:
        raise DataError(f"{keyword} is missing: the instance cannot be filed")
    if len(value) > 64 or not _UID.fullmatch(value):
        raise DataError(f"{keyword} is not a DICOM UID ({len(value)} characters, not only digits and dots): "
                        "the instance cannot be filed")
    return value


def _check_pixels(dataset: Dataset, syntax: str | None) -> None:
    """DataError when native (not encapsulated) pixel data is shorter than the image it describes."""
    if "PixelData" not in dataset or not syntax or UID(syntax).is_encapsulated:
        return
    from pydicom.pixels.utils import get_expected_length

    try:
        expected = get_expected_length(dataset, unit="bytes")
        found = len(dataset.get_item("PixelData").value or b"")
    except Exception:  # noqa: BLE001 - image attributes that describe no image: filed as sent, a reader says so
        return
    if found < expected:
        raise DataError(f"its pixel data ends early ({found} of {expected} bytes): the instance cannot be filed")


def _encode(dataset: Dataset) -> bytes:
    """The instance as a DICOM file; DataError (naming the kind of fault, never a value) when it cannot be one."""
    buffer = io.BytesIO()
    try:
        dataset.save_as(buffer, enforce_file_format=True)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a value it cannot write
        raise DataError(f"the instance cannot be encoded ({type(exc).__name__}): it cannot be filed") from None
    return buffer.getvalue()


def _write_once(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` whole unless ``path`` exists; True when this call created it. OSError (a full
    disk) leaves no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # named as model.fileio names its temporary files (writer's pid, locked while written): its clean-up knows them
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, held_lock(tmp):
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; these are ordinary shared files
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and never over an existing file
            new = True
        except FileExistsError:
            new = False
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            new = not path.exists()
            if new:
                os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)
    return new


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
        """File one instance (with the file meta its association gave it), unless it is there already. DataError
        when its UIDs cannot name a file or it cannot be encoded; OSError when the inbox cannot be written (nothing
        is left of the attempt)."""
        path = self.path_of(dataset)
        if path.is_file():
            return Stored(path, False)
        if file_meta is not None:
            dataset.file_meta = file_meta
        meta = dataset.file_meta
        meta.MediaStorageSOPClassUID = UID(_uid(dataset, "SOPClassUID"))
        meta.MediaStorageSOPInstanceUID = UID(_uid(dataset, "SOPInstanceUID"))
        _check_pixels(dataset, meta.get("TransferSyntaxUID"))
        return Stored(path, _write_once(path, _encode(dataset)))

    def files(self) -> list[Path]:
        return sorted(self.root.rglob("*.dcm")) if self.root.is_dir() else []

    def studies(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []


__all__ = ["Inbox", "Stored", "default_inbox"]
