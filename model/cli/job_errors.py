"""How ``bcir retrain`` and ``bcir jobs ...`` end on a refusal or an error: one line on stderr and an exit code.

Exit codes: 2 a refusal (Refusal, ValueError, FileNotFoundError, an unknown key), 1 a broken model file, another
typed error or an OS error, 130 Ctrl+C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from model.errors import BcirError


class Refusal(Exception):
    """A command that cannot go ahead as asked; ``str()`` is the one-line reason (exit 2)."""


def one_line(text) -> str:
    return " ".join(str(text).split())


def guarded(name: str, func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func`` with every refusal and error as one line on stderr, no traceback."""
    from model.errors import ModelFileError

    def run(args: argparse.Namespace) -> int:
        command = name if name != "jobs" else f"jobs {args.jobs_command}"
        try:
            return func(args)
        except (Refusal, ValueError, FileNotFoundError) as exc:
            print(f"bcir {command}: {one_line(exc)}", file=sys.stderr)
            return 2
        except KeyError as exc:
            print(f"bcir {command}: {one_line(exc.args[0] if exc.args else exc)}", file=sys.stderr)
            return 2
        except (ModelFileError, BcirError, OSError) as exc:
            print(f"bcir {command}: {one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"\nbcir {command}: interrupted", file=sys.stderr)
            return 130

    return run


__all__ = ["Refusal", "guarded", "one_line"]
