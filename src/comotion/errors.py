"""User-facing errors.

Anything a user can cause (a missing file, a wrong shape, an unknown option) is raised as a
:class:`ComotionError` with a one-line message that names the problem.  The command line prints
that line and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class ComotionError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""


class InputError(ComotionError, ValueError):
    """A file or argument that cannot be used (missing, corrupt, wrong shape, unknown value)."""


def report_errors(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a script's ``main``: a :class:`ComotionError` is printed as ``error: <message>`` on
    stderr and becomes exit status 2 (the command line's behaviour, for the tools/ scripts)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(main(*args, **kwargs) or 0)
        except ComotionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return wrapper
