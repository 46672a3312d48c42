"""Errors and warnings raised for bad user input.

Every message names the file, field, row or value at fault and what to do about it, so the CLI
can print it on one line and exit 2.
"""

from __future__ import annotations


class KabutoError(Exception):
    """Bad user input: a file, config, argument or constraint the user can fix."""


class DataError(KabutoError):
    """A price file or panel that cannot be used as given."""


class ConfigError(KabutoError):
    """A config key or value that is unknown or out of range."""


class ConstraintError(KabutoError):
    """Weights that break a declared constraint (never silently clipped)."""


class ArgumentError(KabutoError, ValueError):
    """An argument a function cannot use as given (returns a metric cannot score, weights of
    the wrong shape, a point a projection cannot take).

    Also a `ValueError`, the exception these functions raised before it existed (and the one
    numpy and pandas raise for a bad value), so callers that catch `ValueError` still work.
    """


class OutputDirError(KabutoError):
    """An output directory (``--out``) that cannot take a run's outputs.

    Its message starts with the directory, so the CLI does not prefix it with the config path.
    """


class StoreError(KabutoError):
    """A run store (``--store``) that cannot file or give back a run.

    Its message starts with the store's path, so the CLI does not prefix it with the config
    path.
    """


class KabutoWarning(UserWarning):
    """Something was repaired on the user's behalf (for example, dates sorted)."""
