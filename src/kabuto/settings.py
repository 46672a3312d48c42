"""Checks of estimator settings, shared by every layer (strategies, hedgers, simulators).

Each returns the value (converted) when it is allowed and otherwise raises `ConfigError` naming
the owner, the setting, the value and what is allowed. The module imports only numpy, so that
light packages can use it without loading the strategies.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from kabuto.errors import ConfigError

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_layer_sizes",
    "check_non_negative",
    "check_positive",
]


def check_bool(owner: str, parameter: str, value: object) -> bool:
    """Return `value` if it is a bool, else raise `ConfigError`."""
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{owner}: {parameter}={value!r} is not allowed; use True or False")
    return bool(value)


def check_choice(owner: str, parameter: str, value: object, allowed: Iterable[str]) -> str:
    """Return `value` if it is one of `allowed`, else raise `ConfigError` listing them."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is not allowed; use one of "
            + ", ".join(repr(a) for a in allowed)
        )
    return value


def check_int(owner: str, parameter: str, value: object, minimum: int) -> int:
    """Return `value` if it is an int >= `minimum`, else raise `ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is not allowed; use an integer >= {minimum}"
        )
    return int(value)


def _finite(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and bool(np.isfinite(float(value)))
    )


def check_positive(owner: str, parameter: str, value: object) -> float:
    """Return `value` as float if it is a finite number > 0, else raise `ConfigError`."""
    if not _finite(value) or float(value) <= 0:  # type: ignore[arg-type]
        raise ConfigError(f"{owner}: {parameter}={value!r} is not allowed; use a finite number > 0")
    return float(value)  # type: ignore[arg-type]


def check_non_negative(owner: str, parameter: str, value: object) -> float:
    """Return `value` as float if it is a finite number >= 0, else raise `ConfigError`."""
    if not _finite(value) or float(value) < 0:  # type: ignore[arg-type]
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is not allowed; use a finite number >= 0"
        )
    return float(value)  # type: ignore[arg-type]


def check_layer_sizes(owner: str, parameter: str, value: object) -> tuple[int, ...]:
    """Return `value` as a tuple if it is a non-empty sequence of ints >= 1 (network widths)."""
    if (
        not isinstance(value, tuple | list)
        or not value
        or any(isinstance(h, bool) or not isinstance(h, numbers.Integral) for h in value)
        or min(value) < 1
    ):
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is not allowed; use a non-empty tuple of positive "
            "integers, e.g. (32, 32)"
        )
    return tuple(int(h) for h in value)
