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


class KabutoWarning(UserWarning):
    """Something was repaired on the user's behalf (for example, dates sorted)."""
