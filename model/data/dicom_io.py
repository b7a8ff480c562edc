"""Reading mammograms from DICOM (pydicom) and from other image formats (SimpleITK).

Two entry points:

* :func:`read_header` reads only the header (``stop_before_pixels``), for
  scanning folders of thousands of files.
* :func:`read_image` reads header and pixels and returns a :class:`Mammogram`
  whose pixels are the modality values, 16-bit kept 16-bit, plus what the
  display needs (photometric interpretation, window presets, VOI function).

Every failure is a typed :class:`~model.errors.ImageReadError` with a one-line
reason; nothing else escapes.

Before any pixel is decoded the declared size is checked against
:func:`max_image_pixels` (``BCIR_MAX_IMAGE_MEGAPIXELS``, 64 by default: twice
the largest mammogram), so a small file that claims a huge image is refused
instead of filling the memory. :func:`read_header` also checks, without reading
the pixels, that the file holds pixel data and that it is complete (its length
for native syntaxes, the closing delimiter for compressed ones), so a partial
download is never listed as an image.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from model.errors import (
    DecodeError,
    ImageReadError,
    NoPixelDataError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedImageError,
)

# Formats SimpleITK reads for us (the Kaggle JPEG copy of CBIS-DDSM, mask files, ...).
ITK_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".bmp")

# CBIS-DDSM subject names carry side and view: "Mass-Training_P_00001_LEFT_CC(_1)".
_NAME_SIDE_VIEW = re.compile(r"(?:^|[_\-/\\ ])(LEFT|RIGHT)_(CC|MLO|ML|LM|XCCL|XCCM|FB|SIO)(?:$|[_\-/\\. ])", re.I)
_NAME_PATIENT = re.compile(r"P_\d{5}")

# View codes (ViewCodeSequence) in both code systems that mammography headers use.
_VIEW_CODES = {
    "R-10242": "CC", "399162004": "CC",
    "R-10226": "MLO", "399368009": "MLO",
    "R-10224": "ML", "399260004": "ML",
    "R-10228": "LM", "399352003": "LM",
    "R-1024A": "XCCL", "399192003": "XCCL",
}
_KNOWN_VIEWS = {"CC", "MLO", "ML", "LM", "XCCL", "XCCM", "FB", "SIO", "LMO", "AT"}

log = logging.getLogger("bcir.dicom_io")

# The largest image read, in megapixels. Real mammograms are at most about 5,000 x 6,000 (30 MP); twice
# that leaves a margin and keeps a whole-view inference under 2.5 GB. The environment variable overrides it.
MAX_IMAGE_MEGAPIXELS = 64
MAX_IMAGE_ENV = "BCIR_MAX_IMAGE_MEGAPIXELS"
_warned_limits: set[str] = set()


def max_image_pixels() -> int:
    """The size limit in pixels: ``BCIR_MAX_IMAGE_MEGAPIXELS`` (a positive number) or :data:`MAX_IMAGE_MEGAPIXELS`."""
    raw = os.environ.get(MAX_IMAGE_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return max(1, int(value * 1_000_000))
        if raw not in _warned_limits:
            _warned_limits.add(raw)
            log.warning("%s=%r is not a positive number of megapixels; using %d", MAX_IMAGE_ENV, raw, MAX_IMAGE_MEGAPIXELS)
    return MAX_IMAGE_MEGAPIXELS * 1_000_000


def _max_pixel_bytes() -> int:
    """The most bytes of pixel data (or of an inflated dataset) read for an image within the limit."""
    return max_image_pixels() * 4 + (16 << 20)


def check_image_size(path: Path, rows: int, columns: int) -> None:
    """Refuse an empty image, or one over the size limit, from its declared size (before decoding)."""
    if rows <= 0 or columns <= 0:
        raise UnsupportedImageError(path, f"image of {rows} x {columns} pixels; nothing to read")
    limit = max_image_pixels()
    if rows * columns > limit:
        raise UnsupportedImageError(
            path, f"image of {rows} x {columns} pixels ({rows * columns / 1e6:.0f} megapixels) is over the limit of "
                  f"{limit / 1e6:g} megapixels (a mammogram has about 30; {MAX_IMAGE_ENV} sets the limit)")


# pydicom logs the errors it raises (with tracebacks, through the app's log handlers); we handle them and
# give a one-line reason, so its records are dropped while one of our reads runs in this thread. With the
# bcir loggers at DEBUG (--verbose) they still go through.
_quiet = threading.local()


class _QuietPydicom(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        messages = getattr(_quiet, "messages", None)
        if messages is None:
            return True
        messages.append(record.getMessage()[:300])
        return logging.getLogger("bcir").isEnabledFor(logging.DEBUG)


_QUIET_FILTER = _QuietPydicom()
_filtered_loggers: set[str] = set()


def _filter_pydicom_loggers() -> None:
    names = [n for n in list(logging.root.manager.loggerDict) if n == "pydicom" or n.startswith("pydicom.")]
    for name in names:
        if name not in _filtered_loggers:
            logger = logging.getLogger(name)
            if _QUIET_FILTER not in logger.filters:
                logger.addFilter(_QUIET_FILTER)
            _filtered_loggers.add(name)


@contextlib.contextmanager
def _quiet_pydicom():
    """Within: pydicom's log records (and warnings) are collected in a list instead of printed."""
    _filter_pydicom_loggers()
    outer = getattr(_quiet, "messages", None)
    messages: list[str] = []
    _quiet.messages = messages
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield messages
    finally:
        _quiet.messages = outer
        _filter_pydicom_loggers()  # loggers of modules pydicom imported just now


@dataclass(frozen=True)
class WindowPreset:
    """One VOI window from the header (or one the user made)."""

    center: float
    width: float
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID (VOILUTFunction)
    name: str = ""


@dataclass(frozen=True)
class ImageHeader:
    """What the app needs to know about one image file before reading its pixels."""

    path: Path
    rows: int
    columns: int
    laterality: str | None  # "L", "R" or None
    view: str | None  # "CC", "MLO", ... or None
    pixel_spacing_mm: tuple[float, float] | None  # (row, column) spacing; None = unknown (CBIS-DDSM)
    photometric: str = "MONOCHROME2"
    bits_stored: int = 16
    patient_id: str | None = None
    modality: str | None = None
    series_uid: str | None = None
    study_uid: str | None = None
    sop_instance_uid: str | None = None
    series_description: str | None = None
    instance_number: int | None = None
    windows: tuple[WindowPreset, ...] = ()
    has_voi_lut_table: bool = False
    is_dicom: bool = True

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.columns)


@dataclass
class Mammogram:
    """A decoded 2D greyscale image with its header.

    ``pixels`` holds modality values (Modality LUT / rescale applied), as
    ``uint16`` whenever they fit, so 16-bit data stays 16-bit. For MONOCHROME1
    images ``pixels`` are left as stored and ``header.photometric`` says to
    invert for display; :meth:`monochrome2` gives the bright-is-dense array the
    network and the overlays use.
    """

    header: ImageHeader
    pixels: np.ndarray
    dataset: Dataset | None = field(default=None, repr=False)  # header only, for VOI LUT tables

    @property
    def inverted(self) -> bool:
        return self.header.photometric == "MONOCHROME1"

    def monochrome2(self) -> np.ndarray:
        """Pixels with dense tissue bright, whatever the stored photometric."""
        if not self.inverted:
            return self.pixels
        lo, hi = self.pixels.min(), self.pixels.max()
        # hi - (p - lo), in the pixels' own dtype: one array, no wider copy. Integer intermediates may wrap,
        # but the result lies in [lo, hi], so modular arithmetic gives it exactly.
        out = np.subtract(self.pixels, lo)
        np.subtract(hi, out, out=out)
        return out


# ---------------------------------------------------------------------------
# header fields


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    value = str(value).strip()
    return value or None


def name_side_view(name: str) -> tuple[str | None, str | None]:
    """Laterality and view from a CBIS-DDSM style name (``..._LEFT_CC``)."""
    match = _NAME_SIDE_VIEW.search(name)
    if not match:
        return None, None
    return match.group(1).upper()[0], match.group(2).upper()


def patient_from_name(name: str) -> str | None:
    """The CBIS-DDSM patient id (``P_00001``) inside a subject or path string."""
    match = _NAME_PATIENT.search(name)
    return match.group(0) if match else None


def _laterality(ds: Dataset, names: list[str]) -> str | None:
    for keyword in ("ImageLaterality", "Laterality"):
        value = (_text(ds, keyword) or "").upper()
        if value in ("L", "R"):
            return value
        if value in ("LEFT", "RIGHT"):
            return value[0]
    for name in names:
        side, _ = name_side_view(name)
        if side:
            return side
    return None


def _view(ds: Dataset, names: list[str]) -> str | None:
    value = (_text(ds, "ViewPosition") or "").upper()
    if value in _KNOWN_VIEWS:
        return value
    for item in ds.get("ViewCodeSequence", []) or []:
        code = str(item.get("CodeValue", "")).strip()
        if code in _VIEW_CODES:
            return _VIEW_CODES[code]
    # CBIS-DDSM stores the view in PatientOrientation ("CC" / "MLO").
    value = (_text(ds, "PatientOrientation") or "").upper()
    if value in _KNOWN_VIEWS:
        return value
    for name in names:
        _, view = name_side_view(name)
        if view:
            return view
    return None


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            if value is not None and len(value) == 2 and float(value[0]) > 0 and float(value[1]) > 0:
                return (float(value[0]), float(value[1]))
        except (TypeError, ValueError):
            continue
    return None


def _windows(ds: Dataset) -> tuple[WindowPreset, ...]:
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is None or widths is None:
        return ()
    as_list = lambda v: list(v) if isinstance(v, pydicom.multival.MultiValue) else [v]  # noqa: E731
    centers, widths = as_list(centers), as_list(widths)
    names = as_list(ds.get("WindowCenterWidthExplanation", "")) if "WindowCenterWidthExplanation" in ds else []
    function = (_text(ds, "VOILUTFunction") or "LINEAR").upper()
    presets = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if w <= 0:
            continue
        name = str(names[i]).strip() if i < len(names) else ""
        presets.append(WindowPreset(c, w, function, name or f"Preset {i + 1}"))
    return tuple(presets)


def _no_image_reason(ds: Dataset) -> str:
    """'DICOM RTPLAN object (RT Plan Storage) without an image', 'DICOMDIR (Media Storage Directory Storage), not an image'."""
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPClassUID")
    sop_name = getattr(sop, "name", None) if sop else None
    if "DirectoryRecordSequence" in ds or (sop_name and "Directory" in sop_name):
        return "DICOMDIR (media directory index), not an image"
    modality = _text(ds, "Modality")
    what = f"DICOM {modality} object" if modality else "DICOM object"
    return f"{what} ({sop_name}) without an image" if sop_name else f"{what} without an image"


def header_from_dataset(ds: Dataset, path: Path) -> ImageHeader:
    """Build an :class:`ImageHeader`; raises the typed errors for non-images and for images over the size limit."""
    try:
        with _quiet_pydicom():
            return _header_fields(ds, path)
    except ImageReadError:
        raise
    except BaseException as exc:  # a corrupt value of any element (pydicom converts them lazily)
        _reraise_interrupts(exc)
        raise ImageReadError(path, f"unreadable DICOM header ({_exception_text(exc)})") from None


def _sop_class_name(ds: Dataset) -> str | None:
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPClassUID")
    name = getattr(sop, "name", None) if sop else None
    return name if name and name != str(sop) else None


def _header_fields(ds: Dataset, path: Path) -> ImageHeader:
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if rows is None or columns is None:
        raise NoPixelDataError(path, _no_image_reason(ds))
    rows, columns = int(rows), int(columns)
    check_image_size(path, rows, columns)
    frames = ds.get("NumberOfFrames")
    try:
        frames = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        frames = 1
    if frames > 1:
        raise UnsupportedImageError(path, f"multi-frame image ({frames} frames); a mammogram is one 2D frame")
    photometric = (_text(ds, "PhotometricInterpretation") or "MONOCHROME2").upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImageError(path, f"colour image ({photometric}); only greyscale mammograms are read")
    patient = _text(ds, "PatientID")
    names = [n for n in (patient, _text(ds, "PatientName"), str(path)) if n]
    instance = ds.get("InstanceNumber")
    try:
        instance = int(instance) if instance not in (None, "") else None
    except (TypeError, ValueError):
        instance = None
    return ImageHeader(
        path=path,
        rows=rows,
        columns=columns,
        laterality=_laterality(ds, names),
        view=_view(ds, names),
        pixel_spacing_mm=_spacing(ds),
        photometric=photometric,
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16),
        patient_id=patient,
        modality=_text(ds, "Modality"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        series_description=_text(ds, "SeriesDescription"),
        instance_number=instance,
        windows=_windows(ds),
        has_voi_lut_table=bool(ds.get("VOILUTSequence")),
    )


# ---------------------------------------------------------------------------
# reading


def _exception_text(exc: BaseException) -> str:
    """The exception's message in one short line (pydicom puts whole tracebacks in some messages)."""
    text = str(exc).split("Traceback (most recent call last)")[0]
    text = re.sub(r"^\s*With tag \([0-9A-Fa-f, ]+\) got exception: ", "", " ".join(text.split()))
    if len(text) < 16:  # a bare value ('Rows', 42) says little without its kind
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:150]


def os_error_reason(exc: OSError) -> str:
    """A one-line reason for an OSError met opening or reading a file."""
    return {
        errno.ENOENT: "file not found",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ELOOP: "symbolic link loop",
        errno.EISDIR: "a folder, not a file",
        errno.ENAMETOOLONG: "file name too long",
        errno.EIO: "input/output error while reading the file",
    }.get(exc.errno, f"cannot read the file ({exc.strerror or type(exc).__name__})")


def _regular_file(path: Path) -> int:
    """The file's size; a typed error when it is not a regular file we can stat (a FIFO would block a read)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc)) from None
    except ValueError:  # a NUL byte in the name
        raise ImageReadError(path, "file name cannot be opened") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotAnImageError(path, special_file_reason(st.st_mode))
    return st.st_size


def special_file_reason(mode: int) -> str:
    """Why a file system entry that is not a regular file is not read."""
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO), not a regular file; not read"
    if stat.S_ISSOCK(mode):
        return "socket, not a regular file; not read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file, not a regular file; not read"
    return "not a regular file; not read"


def _looks_like_headerless_dicom(path: Path) -> bool:
    """Raw DICOM datasets without the 128-byte preamble start with group 0x0002 or 0x0008."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and int.from_bytes(head[:2], "little") in (0x0002, 0x0008)


_DEFLATED = b"1.2.840.10008.1.2.1.99"


def _check_inflated_size(path: Path) -> None:
    """A Deflated Explicit VR dataset is inflated whole by pydicom: refuse one that inflates past the limit
    (a few KB can inflate to gigabytes) before pydicom sees it."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc)) from None
    if _DEFLATED not in head or head[128:132] != b"DICM":
        return
    # the file meta group: (0002,0000) UL group length right after the preamble
    if head[132:136] != b"\x02\x00\x00\x00" or len(head) < 144:
        return
    start = 144 + struct.unpack("<L", head[140:144])[0]
    limit = _max_pixel_bytes()
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        with open(path, "rb") as f:
            f.seek(start)
            while chunk := f.read(1 << 20):
                data = inflate.decompress(chunk, min(1 << 24, limit + 1 - total))  # 16 MB at a time, counted
                total += len(data)
                while inflate.unconsumed_tail and total <= limit:
                    data = inflate.decompress(inflate.unconsumed_tail, min(1 << 24, limit + 1 - total))
                    total += len(data)
                if total > limit:
                    raise UnsupportedImageError(
                        path, f"deflated dataset inflates to more than {limit >> 20} MB, more than an image "
                              f"within the size limit ({MAX_IMAGE_ENV})")
    except zlib.error:
        raise DecodeError(path, "deflated dataset cannot be inflated (corrupt or truncated)") from None
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc)) from None


def _dcmread(path: Path, *, stop_before_pixels: bool, fileobj=None) -> tuple[Dataset, list[str]]:
    """pydicom's dcmread with its failures as typed errors; also returns what pydicom logged meanwhile."""
    source = fileobj if fileobj is not None else path
    try:
        with _quiet_pydicom() as messages:
            try:
                ds = pydicom.dcmread(source, stop_before_pixels=stop_before_pixels, defer_size="4 MB")
            except InvalidDicomError:
                if not _looks_like_headerless_dicom(path):
                    raise
                if fileobj is not None:
                    fileobj.seek(0)
                ds = pydicom.dcmread(source, stop_before_pixels=stop_before_pixels, defer_size="4 MB", force=True)
        return ds, messages
    except InvalidDicomError:
        raise NotAnImageError(path, "not a DICOM file") from None
    except EOFError:
        raise TruncatedFileError(path, "file ends inside the DICOM header (truncated)") from None
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc)) from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to read this file's header") from None
    except BaseException as exc:  # pydicom raises many kinds on corrupt headers
        _reraise_interrupts(exc)
        raise ImageReadError(path, f"unreadable DICOM header ({_exception_text(exc)})") from None


def is_itk_image(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in ITK_SUFFIXES)


def _transfer_syntax(ds: Dataset, path: Path):
    """The file's transfer syntax UID (None when the file meta has none); a typed error for a UID that is
    not a transfer syntax (pydicom cannot tell how its pixels are stored)."""
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax is None:
        return None
    if not isinstance(syntax, pydicom.uid.UID) or not syntax.is_transfer_syntax:
        raise DecodeError(path, f"transfer syntax {str(syntax)[:64]!r} is not one pydicom knows; its pixels cannot be decoded")
    return syntax


_PIXEL_DATA = 0x7FE00010
_PIXEL_TAGS = {_PIXEL_DATA, 0x7FE00008, 0x7FE00009}
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"}
_MAX_FRAGMENTS = 1 << 20


def _is_image_storage(ds: Dataset) -> bool | None:
    """True for an image SOP class, False for another (SR, RT Plan, ...), None when the file names none."""
    name = _sop_class_name(ds)
    if name is None:
        return None
    return "Image Storage" in name


def _missing_pixels_error(path: Path, ds: Dataset, cut_inside: bool) -> ImageReadError:
    """The file holds no pixel data: a cut file or an object that has no image (SR, RT Plan, DICOMDIR)."""
    if "DirectoryRecordSequence" in ds:
        return NoPixelDataError(path, _no_image_reason(ds))
    image_class = _is_image_storage(ds)
    if cut_inside or image_class:
        return TruncatedFileError(path, "file ends before its pixel data (truncated)")
    if image_class is None and "Rows" in ds:
        return TruncatedFileError(path, "DICOM header describes an image but the file holds no pixel data (truncated?)")
    return NoPixelDataError(path, _no_image_reason(ds))


def _pixel_element(path: Path, f) -> tuple[int, int, int, str] | None:
    """(tag, value length, value offset, byte order) of the pixel data element where the header read stopped
    (pydicom rewinds to its start), or None when the file ends there. Reads the element's header only."""
    start = f.tell()
    head = f.read(12)
    if not head:
        return None
    if len(head) >= 4 and struct.unpack("<HH", head[:4]) in ((0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)):
        end = "<"
    elif len(head) >= 4 and struct.unpack(">L", head[:4])[0] in _PIXEL_TAGS:
        end = ">"
    elif len(head) < 8:
        raise TruncatedFileError(path, "file ends inside the DICOM header (truncated)")
    else:
        return None
    group, element = struct.unpack(end + "HH", head[:4])
    if len(head) < 8 or (head[4:6] in _LONG_VRS and len(head) < 12):
        raise TruncatedFileError(path, "file ends inside the pixel data header (truncated)")
    if head[4:6] in _LONG_VRS:
        length, value_at = struct.unpack(end + "L", head[8:12])[0], start + 12
    elif head[4:6].isalpha() and head[4:6].isupper():  # explicit VR with a 2-byte length
        length, value_at = struct.unpack(end + "H", head[6:8])[0], start + 8
    else:  # implicit VR
        length, value_at = struct.unpack(end + "L", head[4:8])[0], start + 8
    return group << 16 | element, length, value_at, end


def _check_pixel_data(path: Path, f, ds: Dataset, syntax, size: int, element: tuple[int, int, int, str]) -> None:
    """Is all of the pixel data in the file? Its length for native syntaxes; for compressed ones the items are
    walked (their headers only) up to the closing sequence delimiter. Never reads the pixels."""
    tag, length, value_at, end = element
    if tag != _PIXEL_DATA:
        raise UnsupportedImageError(path, "floating-point pixel data; only integer greyscale images are read")
    limit = _max_pixel_bytes()
    if length == 0xFFFFFFFF:
        position, total = value_at, 0
        for _ in range(_MAX_FRAGMENTS):
            if position + 8 > size:
                raise TruncatedFileError(path, "file ends inside the compressed pixel data (truncated)")
            f.seek(position)
            item_group, item_element, item_length = struct.unpack(end + "HHL", f.read(8))
            item_tag = item_group << 16 | item_element
            if item_tag == 0xFFFEE0DD:
                return
            if item_tag != 0xFFFEE000 or item_length == 0xFFFFFFFF:
                raise DecodeError(path, f"compressed pixel data is malformed (tag {item_tag:08X} where an item belongs)")
            position += 8 + item_length
            total += item_length
            if total > limit:
                raise UnsupportedImageError(path, f"compressed pixel data of over {limit >> 20} MB, more than an image "
                                                  f"within the size limit needs ({MAX_IMAGE_ENV})")
        raise UnsupportedImageError(path, f"compressed pixel data in more than {_MAX_FRAGMENTS} fragments")
    available = max(0, min(length, size - value_at))
    if syntax is None or not syntax.is_encapsulated:
        expected = _expected_bytes(ds)
        if available < expected:
            raise TruncatedFileError(path, f"pixel data ends early ({available} of {expected} bytes; truncated file)")
    elif length > available:
        raise TruncatedFileError(path, "file ends inside the pixel data (truncated)")
    if length > limit:
        raise UnsupportedImageError(path, f"pixel data of {length >> 20} MB, more than an image within the size limit "
                                          f"holds ({MAX_IMAGE_ENV})")


def _dicom_header(path: Path) -> ImageHeader:
    """Header of a DICOM file, checked: an image of at most the size limit, with all its pixel data in the file."""
    _check_inflated_size(path)
    try:
        with _quiet_pydicom(), open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            ds, messages = _dcmread(path, stop_before_pixels=True, fileobj=f)
            cut = any("end of file" in m.lower() for m in messages)
            syntax = _transfer_syntax(ds, path)
            deflated = syntax is not None and syntax.is_deflated  # no file offsets to check in an inflated dataset
            element = None if deflated else _pixel_element(path, f)
            if not deflated and element is None:
                raise _missing_pixels_error(path, ds, cut)
            if "Rows" not in ds or "Columns" not in ds:
                if element is not None:
                    raise ImageReadError(path, "DICOM pixel data without Rows and Columns; unreadable header")
                raise _missing_pixels_error(path, ds, cut)
            header = header_from_dataset(ds, path)
            if element is not None:
                _check_pixel_data(path, f, ds, syntax, size, element)
    except ImageReadError:
        raise
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc)) from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to read this file's header") from None
    except BaseException as exc:  # pydicom converts values lazily: any corrupt element raises on first use
        _reraise_interrupts(exc)
        raise ImageReadError(path, f"unreadable DICOM header ({_exception_text(exc)})") from None
    return header


def _reraise_interrupts(exc: BaseException) -> None:
    """Ctrl+C and exits go on; anything else a decoder raises is the file's fault. (pylibjpeg's Rust
    decoders panic with pyo3's PanicException, a BaseException, on some corrupt data.)"""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc


def read_header(path: str | Path) -> ImageHeader:
    """Read one file's header only (checked as :func:`_dicom_header` says). Raises :class:`ImageReadError` subclasses."""
    path = Path(path)
    _regular_file(path)
    if is_itk_image(path):
        return _guarded(path, _itk_header)
    return _dicom_header(path)


def _guarded(path: Path, read):
    """read(path), with anything but an interrupt turned into a typed one-line error."""
    try:
        return read(path)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, "not enough memory to read this image") from None
    except BaseException as exc:
        _reraise_interrupts(exc)
        raise DecodeError(path, f"cannot read this image ({_exception_text(exc)})") from None


def _expected_bytes(ds: Dataset) -> int:
    bits = int(ds.get("BitsAllocated", 16) or 16)
    n = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
    return (n * bits + 7) // 8


def read_image(path: str | Path) -> Mammogram:
    """Read a whole image: header and decoded pixels (modality values).

    The header is read and checked first (:func:`read_header`: size limit, complete pixel data), so nothing
    is decoded, and no large pixel data is read, for a file that would be refused.
    """
    path = Path(path)
    _regular_file(path)
    if is_itk_image(path):
        return _guarded(path, _itk_read)
    header = _dicom_header(path)
    ds, _ = _dcmread(path, stop_before_pixels=False)
    try:
        with _quiet_pydicom():
            return _decode(path, ds, header)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode this image") from None
    except BaseException as exc:  # a corrupt value met while decoding (pydicom converts elements lazily)
        _reraise_interrupts(exc)
        raise DecodeError(path, f"cannot decode pixel data ({_exception_text(exc)})") from None


def _decode(path: Path, ds: Dataset, header: ImageHeader) -> Mammogram:
    if "PixelData" not in ds:
        raise _missing_pixels_error(path, ds, False)
    syntax = _transfer_syntax(ds, path)
    if (syntax is None or not syntax.is_compressed) and len(ds.PixelData) < _expected_bytes(ds):
        raise TruncatedFileError(
            path, f"pixel data ends early ({len(ds.PixelData)} of {_expected_bytes(ds)} bytes; truncated file)"
        )
    try:
        with _quiet_pydicom():
            raw = ds.pixel_array
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode this image") from None
    except BaseException as exc:
        _reraise_interrupts(exc)
        name = getattr(syntax, "name", "unknown transfer syntax")
        raise DecodeError(path, f"cannot decode pixel data ({name}): {_exception_text(exc)}"[:200]) from None
    del ds.PixelData  # keep the header for VOI LUT tables, not 30 MB of pixels
    if raw.ndim != 2:
        raise UnsupportedImageError(path, f"pixel array has shape {raw.shape}; expected one 2D greyscale frame")
    if raw.shape != header.shape:
        raise DecodeError(path, f"decoded {raw.shape[0]} x {raw.shape[1]} pixels; the header says {header.rows} x {header.columns}")
    pixels = _modality_values(raw, ds)
    del raw
    return Mammogram(header=header, pixels=pixels, dataset=ds)


def _modality_values(raw: np.ndarray, ds: Dataset) -> np.ndarray:
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if "ModalityLUTSequence" not in ds and (slope != 1 or intercept != 0) and raw.dtype.kind in "ui" and raw.size:
        # integer rescale in int32 when every value fits (pydicom's would make a float64 copy, 8 bytes a pixel)
        lo, hi = int(raw.min()), int(raw.max())
        ends = (lo * slope + intercept, hi * slope + intercept)
        if slope.is_integer() and intercept.is_integer() and -(2**31) <= min(ends) and max(ends) < 2**31:
            values = raw.astype(np.int32)
            values *= np.int32(slope)
            values += np.int32(intercept)
            return _narrowest(values)
    if "ModalityLUTSequence" in ds or slope != 1 or intercept != 0:
        with _quiet_pydicom():
            values = pydicom.pixels.apply_modality_lut(raw, ds)
        return _narrowest(values)
    return _narrowest(raw)


def _narrowest(values: np.ndarray) -> np.ndarray:
    """uint16 when the values are integers in 0..65535 (16-bit kept 16-bit), else int32/float32."""
    if values.dtype == np.uint16:
        return np.ascontiguousarray(values)
    if values.dtype.kind in "ui" or (values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0)):
        lo, hi = (values.min(), values.max()) if values.size else (0, 0)
        if lo >= 0 and hi <= 65535:
            return np.ascontiguousarray(values, dtype=np.uint16)
        if lo >= -(2**31) and hi < 2**31:
            return np.ascontiguousarray(values, dtype=np.int32)
    return np.ascontiguousarray(values, dtype=np.float32)


# ---------------------------------------------------------------------------
# non-DICOM images through SimpleITK


def _itk_image(path: Path):
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        _regular_file(path)  # gone or replaced meanwhile: say so
        raise NotAnImageError(path, f"cannot read as an image ({message[:120]})") from None


def _itk_check(path: Path, size: tuple[int, ...], components: int) -> tuple[int, int]:
    if len(size) < 2:
        raise UnsupportedImageError(path, f"{len(size)}D image; a mammogram is one 2D image")
    if len(size) >= 3 and any(n > 1 for n in size[2:]):
        raise UnsupportedImageError(path, f"3D or multi-frame image ({size[2]} slices)")
    if components not in (1, 3, 4):
        raise UnsupportedImageError(path, f"image with {components} components per pixel")
    rows, columns = int(size[1]), int(size[0])
    check_image_size(path, rows, columns)  # from the file's header, before any pixel is decoded
    return rows, columns


def _itk_header(path: Path) -> ImageHeader:
    reader = _itk_image(path)
    rows, columns = _itk_check(path, reader.GetSize(), reader.GetNumberOfComponents())
    side, view = name_side_view(str(path))
    spacing = reader.GetSpacing()
    # PNG/JPEG/TIFF report spacing 1.0 when they know none; only trust real medical formats.
    known = path.name.lower().endswith((".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd"))
    return ImageHeader(
        path=path,
        rows=rows,
        columns=columns,
        laterality=side,
        view=view,
        pixel_spacing_mm=(float(spacing[1]), float(spacing[0])) if known else None,
        photometric="MONOCHROME2",
        bits_stored=16,
        patient_id=patient_from_name(str(path)),
        is_dicom=False,
    )


def _itk_read(path: Path) -> Mammogram:
    import SimpleITK as sitk

    header = _itk_header(path)
    try:
        array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    except RuntimeError as exc:
        raise DecodeError(path, f"cannot decode image ({(str(exc).strip().splitlines() or ['unreadable'])[-1][:120]})") from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode this image") from None
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape[:2] != header.shape:
        raise DecodeError(path, f"decoded {array.shape[0]} x {array.shape[1]} pixels; the header says {header.rows} x {header.columns}")
    if array.ndim == 3:  # colour components last
        channels = array[..., :3]
        if not (np.array_equal(channels[..., 0], channels[..., 1]) and np.array_equal(channels[..., 0], channels[..., 2])):
            raise UnsupportedImageError(path, "colour image; only greyscale mammograms are read")
        array = channels[..., 0]
    bits = 8 if array.dtype == np.uint8 else 16
    header = ImageHeader(**{**header.__dict__, "bits_stored": bits})
    return Mammogram(header=header, pixels=_narrowest(array), dataset=None)
