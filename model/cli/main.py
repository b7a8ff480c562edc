"""``bcir``'s entry point: the top-level parser, one module per command group, and the one way a command ends on an
error (:mod:`model.cli.exit_codes`) or on a closed pipe."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from model.cli import bench, data, evaluate, export, infer, jobs, model_info, models, pacs, reads, retrain, reviews, train
from model.cli.exit_codes import EXIT_BROKEN_PIPE, report_error

# In the order `bcir --help` lists them.
COMMAND_GROUPS = (data, infer, train, evaluate, models, retrain, jobs, reads, reviews, pacs, export, model_info, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bcir", description="B-Cir Review: mammogram review with the B-Cir U-Net")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


class _ReaderGone(BaseException):
    """stdout's reader closed the pipe (``bcir jobs list | head``). A BaseException, like KeyboardInterrupt, so
    that no command's own ``except OSError`` turns it into an error line; :func:`main` ends the command quietly."""


class _GuardedStdout:
    """sys.stdout while a command runs: a write or flush into a closed pipe raises :class:`_ReaderGone`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise _ReaderGone() from None

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise _ReaderGone() from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Every ``bcir`` command goes through here: one line on stderr for an error, never a traceback for one we
    expect, and a reader that stops reading (``bcir jobs list | head``) ends the command quietly."""
    stdout = sys.stdout
    sys.stdout = _GuardedStdout(stdout)
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        try:
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is seen by the handler below
            return code
        except BrokenPipeError:
            raise _ReaderGone() from None
        except (Exception, KeyboardInterrupt) as exc:  # every command group's errors: model.cli.exit_codes
            code = report_error(exc, args)
            if code is None:  # a bug: its traceback
                raise
            return code
    except _ReaderGone:
        _quiet_stdout(stdout)
        return EXIT_BROKEN_PIPE
    finally:
        sys.stdout = stdout


def _quiet_stdout(stream) -> None:
    """After the reader closed the pipe: point stdout at /dev/null so that Python's final flush of what is still
    buffered does not print 'Exception ignored ... Broken pipe' on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests): nothing to flush there
        pass


if __name__ == "__main__":
    sys.exit(main())
