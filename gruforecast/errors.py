"""Errors that are shown to the user.

Every exception raised on purpose by gruforecast derives from `GruForecastError`; its
message is a single line naming the problem and the fix. `cli.py` is the only place that
turns these into exit codes (`exit_code`), so library code never calls `sys.exit`.
"""

from __future__ import annotations


class GruForecastError(Exception):
    """A problem the user can fix; the message is shown as is, without a traceback."""

    exit_code = 1


class InputError(GruForecastError):
    """Bad data, bad options or bad usage: exit code 2."""

    exit_code = 2


class ArtifactError(InputError):
    """A model file that is missing, corrupt, truncated or not ours."""


class ConfigError(InputError):
    """A bad batch job file: exit code 2, nothing run."""


class NoSpaceError(GruForecastError):
    """A write that failed for want of disk space: exit code 1 (the environment, not the
    input), with a message that says so instead of the writer's own."""


class LockedError(GruForecastError):
    """Another batch run of the same job file holds its lock: exit code 75 (EX_TEMPFAIL)."""

    exit_code = 75
