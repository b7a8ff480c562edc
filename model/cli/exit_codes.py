"""How every ``bcir`` command ends on an error: the one map from an exception to an exit code and a line on stderr.

Exit codes: 0 done; 1 a typed error that is not bad input (a broken model file, a broken review log, a stop
request) or out of memory; 2 a refusal (:class:`Refusal`, bad input data, a setting out of range, a registry or job
request refused, a review refused, a library's ValueError on bad input such as unreadable JSON, a missing file, a
model version the registry does not hold, an OS error such as a folder without permission); 130 Ctrl+C; 141 a reader that closed stdout
(``bcir jobs list | head``). A command may also return 1 itself (a retrain job that failed or was cancelled). The
error line is ``bcir COMMAND: reason``, one line, never a traceback; an exception this map does not know is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from model.errors import BcirError, ConfigError, DataError, JobError, ReadRefused, RegistryError, ReviewRefused

EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command ended by SIGPIPE (128 + 13)

# Command groups whose error lines name the action too ("bcir jobs accept: ...", "bcir models use: ...").
ACTION_DESTS = {"jobs": "jobs_command", "models": "models_command", "reads": "reads_command",
                "readers": "readers_command", "pacs": "pacs_command"}


class Refusal(Exception):
    """A command that cannot go ahead as asked; ``str()`` is the one-line reason (exit 2)."""


# Bad input or a request refused: exit 2, before the other typed errors (exit 1). ValueError stays for what a
# library says of bad input (json.loads of a config file, int() of an option).
REFUSALS = (Refusal, DataError, ConfigError, RegistryError, JobError, ReviewRefused, ReadRefused, ValueError,
            FileNotFoundError)


def one_line(text) -> str:
    return " ".join(str(text).split())


def command_words(args: argparse.Namespace) -> str:
    """The command as its error lines name it: ``eval``, ``jobs accept``."""
    dest = ACTION_DESTS.get(args.command)
    return f"{args.command} {getattr(args, dest)}" if dest and getattr(args, dest, None) else args.command


def reason_and_code(exc: BaseException) -> tuple[str, int] | None:
    """The one-line reason and the exit code for ``exc``; None for an exception that no rule covers (a bug)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, REFUSALS):  # before BcirError: a refused input is a refusal
        return one_line(exc), EXIT_REFUSED
    if isinstance(exc, BcirError):
        return one_line(exc), EXIT_FAILED
    if isinstance(exc, MemoryError):
        return "out of memory", EXIT_FAILED
    if isinstance(exc, OSError):  # a folder without permission, a full disk: the OS's reason with the path
        where = f": {os.fsdecode(exc.filename)}" if exc.filename else ""
        return f"{one_line(exc.strerror or exc)}{where}", EXIT_REFUSED
    return None


def report_error(exc: BaseException, args: argparse.Namespace) -> int | None:
    """Print ``exc``'s one line on stderr and return its exit code; None (nothing printed) for a bug."""
    found = reason_and_code(exc)
    if found is None:
        return None
    reason, code = found
    start = "\n" if code == EXIT_INTERRUPTED else ""  # after a progress bar's or a prompt's unfinished line
    print(f"{start}bcir {command_words(args)}: {reason}", file=sys.stderr)
    return code


__all__ = ["EXIT_BROKEN_PIPE", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_REFUSED", "REFUSALS", "Refusal",
           "command_words", "one_line", "reason_and_code", "report_error"]
