"""User-facing errors.

Anything a user can cause (a missing file, a wrong shape, an unknown option) is raised as a
:class:`ComotionError` with a one-line message that names the problem.  The command line prints
that line and exits with status 2 instead of showing a traceback.
"""


class ComotionError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""


class InputError(ComotionError, ValueError):
    """A file or argument that cannot be used (missing, corrupt, wrong shape, unknown value)."""
