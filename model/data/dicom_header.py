"""The header-only read of a DICOM file: its size within the limit and all its pixel data in the file, unread."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from model.data.dicom_fields import header_from_dataset, no_image_reason, sop_class_name
from model.data.image_limits import MAX_IMAGE_ENV, max_pixel_bytes
from model.data.mammogram import ImageHeader
from model.data.read_failures import HEADER_FAILURES, PARSE_FAILURES, named_failures, os_error_reason, quiet_pydicom
from model.errors import DecodeError, ImageReadError, NoPixelDataError, TruncatedFileError, UnsupportedImageError

_DEFLATED = b"1.2.840.10008.1.2.1.99"
_PIXEL_DATA = 0x7FE00010
_PIXEL_TAGS = {_PIXEL_DATA, 0x7FE00008, 0x7FE00009}
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"}
_MAX_FRAGMENTS = 1 << 20


def open_dicom(path: Path) -> BinaryIO:
    """The file, opened once for a whole read: the checks and pydicom's parses all read from it."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc)) from None


def dicom_header(path: Path, f: BinaryIO) -> ImageHeader:
    """Header of a DICOM file (``f``, open), checked: an image of at most the size limit, with all its pixel data
    in the file. Raises :class:`~model.errors.ImageReadError` subclasses.

    The study index reads every file of a folder this way (``stop_before_pixels``), so a file that would be
    refused is refused here without reading its pixels: a small file that claims a huge image, a deflated
    dataset that inflates past the limit, a partial download (the pixel data's length for native syntaxes, the
    closing delimiter for compressed ones). Every check and pydicom's parse read ``f``.
    """
    _check_inflated_size(path, f)
    with named_failures(path, HEADER_FAILURES), quiet_pydicom():
        size = os.fstat(f.fileno()).st_size
        ds, messages = dcmread(path, f, stop_before_pixels=True)
        cut = any("end of file" in m.lower() for m in messages)
        syntax = transfer_syntax(ds, path)
        deflated = syntax is not None and syntax.is_deflated  # no file offsets to check in an inflated dataset
        element = None if deflated else _pixel_element(path, f)
        if not deflated and element is None:
            raise missing_pixels_error(path, ds, cut)
        if "Rows" not in ds or "Columns" not in ds:
            if element is not None:
                raise ImageReadError(path, "DICOM pixel data without Rows and Columns; unreadable header")
            raise missing_pixels_error(path, ds, cut)
        header = header_from_dataset(ds, path)
        if element is not None:
            _check_pixel_data(path, f, ds, syntax, size, element)
    return header


def dcmread(path: Path, f: BinaryIO, *, stop_before_pixels: bool) -> tuple[Dataset, list[str]]:
    """pydicom's dcmread of the open file ``f`` from its start, its failures as typed errors; also returns what
    pydicom logged meanwhile."""
    with named_failures(path, PARSE_FAILURES), quiet_pydicom() as messages:
        f.seek(0)
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=stop_before_pixels, defer_size="4 MB")
        except InvalidDicomError:
            if not _looks_like_headerless_dicom(f):
                raise
            f.seek(0)
            ds = pydicom.dcmread(f, stop_before_pixels=stop_before_pixels, defer_size="4 MB", force=True)
    return ds, messages


def _looks_like_headerless_dicom(f: BinaryIO) -> bool:
    """Raw DICOM datasets without the 128-byte preamble start with group 0x0002 or 0x0008."""
    try:
        f.seek(0)
        head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and int.from_bytes(head[:2], "little") in (0x0002, 0x0008)


def _check_inflated_size(path: Path, f: BinaryIO) -> None:
    """A Deflated Explicit VR dataset is inflated whole by pydicom: refuse one that inflates past the limit
    (a few KB can inflate to gigabytes) before pydicom sees it."""
    try:
        f.seek(0)
        head = f.read(4096)
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc)) from None
    if _DEFLATED not in head or head[128:132] != b"DICM":
        return
    # the file meta group: (0002,0000) UL group length right after the preamble
    if head[132:136] != b"\x02\x00\x00\x00" or len(head) < 144:
        return
    start = 144 + struct.unpack("<L", head[140:144])[0]
    limit = max_pixel_bytes()
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
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


def transfer_syntax(ds: Dataset, path: Path):
    """The file's transfer syntax UID (None when the file meta has none); a typed error for a UID that is
    not a transfer syntax (pydicom cannot tell how its pixels are stored)."""
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax is None:
        return None
    if not isinstance(syntax, pydicom.uid.UID) or not syntax.is_transfer_syntax:
        raise DecodeError(path, f"transfer syntax {str(syntax)[:64]!r} is not one pydicom knows; its pixels cannot be decoded")
    return syntax


def expected_bytes(ds: Dataset) -> int:
    """The bytes of native (uncompressed) pixel data the header's size and bits call for."""
    bits = int(ds.get("BitsAllocated", 16) or 16)
    n = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
    return (n * bits + 7) // 8


def _is_image_storage(ds: Dataset) -> bool | None:
    """True for an image SOP class, False for another (SR, RT Plan, ...), None when the file names none."""
    name = sop_class_name(ds)
    if name is None:
        return None
    return "Image Storage" in name


def missing_pixels_error(path: Path, ds: Dataset, cut_inside: bool) -> ImageReadError:
    """The file holds no pixel data: a cut file or an object that has no image (SR, RT Plan, DICOMDIR)."""
    if "DirectoryRecordSequence" in ds:
        return NoPixelDataError(path, no_image_reason(ds))
    image_class = _is_image_storage(ds)
    if cut_inside or image_class:
        return TruncatedFileError(path, "file ends before its pixel data (truncated)")
    if image_class is None and "Rows" in ds:
        return TruncatedFileError(path, "DICOM header describes an image but the file holds no pixel data (truncated?)")
    return NoPixelDataError(path, no_image_reason(ds))


def _pixel_element(path: Path, f: BinaryIO) -> tuple[int, int, int, str] | None:
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


def _check_pixel_data(path: Path, f: BinaryIO, ds: Dataset, syntax, size: int, element: tuple[int, int, int, str]) -> None:
    """Is all of the pixel data in the file? Its length for native syntaxes; for compressed ones the items are
    walked (their headers only) up to the closing sequence delimiter. Never reads the pixels."""
    tag, length, value_at, end = element
    if tag != _PIXEL_DATA:
        raise UnsupportedImageError(path, "floating-point pixel data; only integer greyscale images are read")
    limit = max_pixel_bytes()
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
        expected = expected_bytes(ds)
        if available < expected:
            raise TruncatedFileError(path, f"pixel data ends early ({available} of {expected} bytes; truncated file)")
    elif length > available:
        raise TruncatedFileError(path, "file ends inside the pixel data (truncated)")
    if length > limit:
        raise UnsupportedImageError(path, f"pixel data of {length >> 20} MB, more than an image within the size limit "
                                          f"holds ({MAX_IMAGE_ENV})")
