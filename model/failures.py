"""One line, without the path, for anything that went wrong with one file of a batch.

A batch (``bcir infer``, ``bcir eval``) keeps going when one file fails, for
any reason: the file goes to the batch's errors with :func:`failure_reason`,
which never names the path (the error record has it next to the reason, and an
evaluation report counts reasons, so a reason must not differ per file).
"""

from __future__ import annotations

from model.errors import BcirError, ImageReadError

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


__all__ = ["failure_reason"]
