"""Typed errors. ``str(error)`` is always one line a reader can act on."""

from __future__ import annotations

from pathlib import Path


class BcirError(Exception):
    """Base class of every error this package raises on purpose.

    The tree: :class:`DataError` (input data that cannot be read or used), :class:`ModelFileError` (a weights file or
    card), :class:`RegistryError`, :class:`JobError` (a retrain job), :class:`ReviewError` (the review log),
    :class:`ConfigError` (a setting) and :class:`Cancelled` (a stop request). ``model.cli.exit_codes`` maps them to
    exit codes, ``app.errors`` shows them.
    """


class DataError(BcirError):
    """Input data that cannot be read or used: an image, a CSV, a mask, a run's split or the site key, or a folder
    that holds nothing the task can use (no held-out patient, no training sample)."""


class ImageReadError(DataError):
    """A file could not be read as a 2D greyscale image.

    ``reason`` is a short phrase without the path ("truncated pixel data");
    ``str()`` adds the file name.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path.name}: {self.reason}")


class NotAnImageError(ImageReadError):
    """Neither DICOM nor an image format we read (a CSV, a text file, ...)."""


class TruncatedFileError(ImageReadError):
    """The file ends before its header or pixel data does."""


class NoPixelDataError(ImageReadError):
    """A DICOM object without an image (RT Plan, Structured Report, ...)."""


class UnsupportedImageError(ImageReadError):
    """An image, but not a single-frame greyscale one (multi-frame, colour, ...)."""


class DecodeError(ImageReadError):
    """Compressed pixel data that no installed decoder could decode."""


class ModelFileError(BcirError):
    """A weights file or model card that cannot be used."""


class RegistryError(BcirError):
    """A model version the registry does not hold, or a change of the registry it refuses."""


class UnknownModel(RegistryError):
    """A model version the registry does not hold (``bcir models use NAME``, a rollback to a removed version)."""


class JobError(BcirError):
    """A retrain job that cannot do what was asked of it now (resume, cancel, accept, ...)."""


class Cancelled(BcirError):
    """Stopped on request (``should_stop`` said so): not a failure, so callers end quietly. ``str()`` says what
    stopped ("evaluation cancelled")."""

    def __init__(self, message: str = "stopped on request"):
        super().__init__(message)


# One line, without the path, for anything that went wrong with one file of a batch: a batch (bcir infer,
# bcir eval) keeps going when one file fails, for any reason, and its error record keeps the path next to this
# reason; an evaluation report counts reasons, so a reason must not differ per file.
MAX_REASON = 200


def failure_reason(exc: BaseException) -> str:
    """A one-line reason for ``exc``: the typed errors' own reason, 'out of memory', the OS's message, or the
    message with the exception's type for anything unexpected."""
    if isinstance(exc, ImageReadError):
        text = exc.reason
    elif isinstance(exc, BcirError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    elif isinstance(exc, PermissionError):
        text = "permission denied"
    elif isinstance(exc, OSError):
        text = (exc.strerror or str(exc) or type(exc).__name__)
        text = text[:1].lower() + text[1:]
    elif isinstance(exc, UnicodeError):
        text = "a name or text that is not valid UTF-8"
    else:
        message = str(exc).strip()
        text = f"{message} ({type(exc).__name__})" if message else type(exc).__name__
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class ConfigError(BcirError):
    """A setting of the wrong kind or out of its range. ``option`` names it as the settings do (``tile``);
    ``str()`` is one line that names it so; :meth:`naming` says the same line with the name the reader used
    (``--tile``, "Tile")."""

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{option} {self.problem}")

    def naming(self, name: str) -> str:
        return f"{name} {self.problem}"


class ReviewError(BcirError):
    """A review that cannot be recorded, or a review log that cannot be used."""


class ReviewRefused(ReviewError):
    """A review the store does not record: a field out of its range, or a step the blinded-reading protocol does
    not allow now (``model.reviews.protocol``); or a request on the log it refuses (a backup onto the log itself).
    ``str()`` is the one-line reason a reader is shown: bad input from the client, not a broken log (exit 2)."""


class ReviewLogError(ReviewError):
    """The review log cannot be opened or used; ``str()`` is one line that names the file."""


class ReviewLogTampered(ReviewLogError):
    """The review log was changed outside B-Cir Review: an edited, inserted or removed review, a dropped table,
    or a log that no longer matches its anchor."""


class ReadStoreError(BcirError):
    """The reading store cannot be used: a database server that cannot be reached, a read-only or damaged
    database, one from a newer schema; ``str()`` is one line that names the database without its password."""


class ReadRefused(ReadStoreError):
    """A screening read, arbitration, reader or setting the store does not record: a field out of its range, an
    unknown case or reader, or a step the double-reading protocol does not allow now. ``str()`` is the one-line
    reason (exit 2)."""


class PacsError(BcirError):
    """A DICOM peer that cannot be reached, refuses the association, or answers a request with a failure; ``str()``
    is one line naming the peer and what it said."""
