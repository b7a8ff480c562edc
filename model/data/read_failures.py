"""Failures of an image read as typed ImageReadErrors with a one-line reason; pydicom kept quiet about them."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.errors import InvalidDicomError

from model.errors import DecodeError, ImageReadError, NotAnImageError, TruncatedFileError


def exception_text(exc: BaseException) -> str:
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


def regular_file(path: Path) -> int:
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


# Each step of a read says how it names the failures that are not typed already (Failures) and runs within
# named_failures, so nothing but a typed error (or an interrupt) leaves a read.
@dataclass(frozen=True)
class Failures:
    """How one step of a read names a failure that is not a typed error already."""

    otherwise: Callable[[Path, str], ImageReadError]  # the error, from the exception's one line (exception_text)
    out_of_memory: str | None = None  # the reason for a MemoryError; None: named as any other failure
    os_errors: bool = False  # an OSError gets its own reason (os_error_reason)
    pydicom_errors: bool = False  # pydicom's "not DICOM" and a header cut short get theirs


def typed_error(path: Path, exc: BaseException, failures: Failures) -> ImageReadError:
    """The typed error for ``exc``, met in a step that names its failures as ``failures`` says.

    Ctrl+C and exits are raised again: anything else a reader or decoder raises is the file's fault (pylibjpeg's
    Rust decoders panic with pyo3's PanicException, a BaseException, on some corrupt data).
    """
    if isinstance(exc, ImageReadError):
        return exc
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc
    if failures.pydicom_errors and isinstance(exc, InvalidDicomError):
        return NotAnImageError(path, "not a DICOM file")
    if failures.pydicom_errors and isinstance(exc, EOFError):
        return TruncatedFileError(path, "file ends inside the DICOM header (truncated)")
    if failures.os_errors and isinstance(exc, OSError):
        return ImageReadError(path, os_error_reason(exc))
    if failures.out_of_memory is not None and isinstance(exc, MemoryError):
        return ImageReadError(path, failures.out_of_memory)
    return failures.otherwise(path, exception_text(exc))


@contextlib.contextmanager
def named_failures(path: Path, failures: Failures) -> Iterator[None]:
    """Within: whatever is raised leaves as the typed error :func:`typed_error` names (an interrupt as it is)."""
    try:
        yield
    except ImageReadError:
        raise
    except BaseException as exc:
        raise typed_error(path, exc, failures) from None


def _unreadable_header(path: Path, text: str) -> ImageReadError:
    return ImageReadError(path, f"unreadable DICOM header ({text})")


# Reading a DICOM header: the file, pydicom's parse, and the checks on what it read. pydicom converts values
# lazily, so any corrupt element raises on first use, of any kind.
HEADER_FAILURES = Failures(_unreadable_header, "not enough memory to read this file's header", os_errors=True)
# pydicom's parse itself: also "not DICOM" and a header cut short.
PARSE_FAILURES = Failures(_unreadable_header, "not enough memory to read this file's header", os_errors=True,
                          pydicom_errors=True)
# The header's values, turned into an ImageHeader.
FIELD_FAILURES = Failures(_unreadable_header)
# Decoding a DICOM file's pixel data (a corrupt value met while decoding: pydicom converts elements lazily).
DECODE_FAILURES = Failures(lambda path, text: DecodeError(path, f"cannot decode pixel data ({text})"),
                           "not enough memory to decode this image")
# Reading another image format (SimpleITK).
OTHER_IMAGE_FAILURES = Failures(lambda path, text: DecodeError(path, f"cannot read this image ({text})"),
                                "not enough memory to read this image")


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


def filter_pydicom_loggers() -> None:
    """Put the quiet filter on every pydicom logger there is now."""
    names = [n for n in list(logging.root.manager.loggerDict) if n == "pydicom" or n.startswith("pydicom.")]
    for name in names:
        if name not in _filtered_loggers:
            logger = logging.getLogger(name)
            if _QUIET_FILTER not in logger.filters:
                logger.addFilter(_QUIET_FILTER)
            _filtered_loggers.add(name)


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[list[str]]:
    """Within: pydicom's log records (and warnings) are collected in a list instead of printed."""
    filter_pydicom_loggers()
    outer = getattr(_quiet, "messages", None)
    messages: list[str] = []
    _quiet.messages = messages
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield messages
    finally:
        _quiet.messages = outer
        filter_pydicom_loggers()  # loggers of modules pydicom imported just now
