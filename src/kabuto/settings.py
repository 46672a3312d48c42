"""Checks of estimator settings, shared by every layer (strategies, hedgers, simulators).

Each returns the value (converted) when it is allowed and otherwise raises `ConfigError` naming
the owner, the setting, the value and what is allowed. The module imports only numpy, so that
light packages can use it without loading the strategies.
"""

from __future__ import annotations

import datetime
import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd

from kabuto.errors import ConfigError

__all__ = [
    "CORRELATION_TOLERANCE",
    "LOG_JUMP_FACTOR_LIMIT",
    "check_bool",
    "check_choice",
    "check_common_correlation",
    "check_correlation_matrix",
    "check_date",
    "check_int",
    "check_layer_sizes",
    "check_lognormal_jumps",
    "check_non_negative",
    "check_positive",
    "check_seed",
    "derived_seed",
    "is_integer",
    "is_real",
    "is_seed",
]

# How far a correlation matrix may miss symmetry, a unit diagonal or positive semi-definiteness
# (the eigenvalue bound is this times d, as eigenvalue rounding grows with the size) and still
# count as valid: enough for rounding, far below any error a user could mean.
CORRELATION_TOLERANCE = 1e-10
# exp(x) overflows float64 above about 709.78; the mean jump factor exp(mean + std^2 / 2) of a
# lognormal jump must stay finite with some room for the arithmetic done with it.
LOG_JUMP_FACTOR_LIMIT = 700.0


def check_date(field: str, value: object) -> pd.Timestamp:
    """`value` as a time-zone-naive timestamp, else a `ConfigError` naming `field` (a date setting
    such as ``start``). Strings, dates and datetime64 only: a number would be read as nanoseconds
    since 1970, never what was meant; a time zone is dropped, as panels' dates have none."""
    bad = ConfigError(f"{field} = {value!r}: expected a date such as '2020-01-31'")
    if not isinstance(value, str | datetime.date | np.datetime64):  # Timestamp is a datetime
        raise bad
    try:
        date = pd.Timestamp(value)
    except (ValueError, OverflowError):  # pandas' DateParseError is a ValueError
        raise bad from None
    if pd.isna(date):  # "" and "NaT" parse to NaT
        raise bad
    return date.tz_localize(None) if date.tz is not None else date


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


def is_real(value: object, *, finite: bool = True) -> bool:
    """Whether `value` is one real number (Python or numpy), not a bool, and finite if `finite`.

    bool is a `numbers.Integral`, but True as a rate or a count is a mistake, not a 1.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    return not finite or bool(np.isfinite(float(value)))


def is_integer(value: object) -> bool:
    """Whether `value` is one integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def is_seed(value: object) -> bool:
    """Whether `value` is a seed: a non-negative integer (Python or numpy), not a bool."""
    return is_integer(value) and value >= 0  # type: ignore[operator]


def derived_seed(seed: int, k: int) -> int:
    """Seed of run number `k` of several from one `seed`: `seed` itself for run 0 (so a single
    run is the run of that seed), below 2**63 from ``SeedSequence([seed, k])`` for later ones."""
    if k == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0] >> 1)


def check_seed(owner: str, parameter: str, value: object, limit: int | None = 2**64) -> int:
    """Return `value` if it is an integer in [0, `limit`), else raise `ConfigError`. torch takes
    seeds below 2**64, numpy's legacy global generator (which SB3 seeds) below 2**32, and
    numpy's `default_rng` any (``limit=None``)."""
    if not is_seed(value):
        raise ConfigError(f"{owner}: {parameter}={value!r} is not allowed; use an integer >= 0")
    if limit is not None and value >= limit:  # type: ignore[operator]
        bound = f"2**{limit.bit_length() - 1}"  # limits are powers of two
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is not allowed; use an integer in [0, {bound})"
        )
    return int(value)  # type: ignore[call-overload]


def check_positive(owner: str, parameter: str, value: object) -> float:
    """Return `value` as float if it is a finite number > 0, else raise `ConfigError`."""
    if not is_real(value) or float(value) <= 0:  # type: ignore[arg-type]
        raise ConfigError(f"{owner}: {parameter}={value!r} is not allowed; use a finite number > 0")
    return float(value)  # type: ignore[arg-type]


def check_non_negative(owner: str, parameter: str, value: object) -> float:
    """Return `value` as float if it is a finite number >= 0, else raise `ConfigError`."""
    if not is_real(value) or float(value) < 0:  # type: ignore[arg-type]
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


def check_common_correlation(owner: str, parameter: str, value: object, size: int) -> float:
    """Return `value` as float if it is a valid correlation shared by every pair of `size` assets.

    The matrix with ones on the diagonal and `value` elsewhere is positive semi-definite exactly
    when ``-1 / (size - 1) <= value <= 1`` (its smallest eigenvalue is ``1 - value`` or
    ``1 + (size - 1) value``).
    """
    low = -1.0 / (size - 1) if size > 1 else -1.0
    number = _real_scalar(value)
    if number is None or not low - CORRELATION_TOLERANCE <= number <= 1.0:
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is out of range for {size} assets: a common "
            f"pairwise correlation must lie in [{low:.6g}, 1]; otherwise pass a ({size}, {size}) "
            "matrix"
        )
    return number


def _real_scalar(value: object) -> float | None:
    """`value` as a float if it is one finite real number (a 0-d array counts), else None."""
    if isinstance(value, bool | np.bool_) or np.ndim(value) != 0:
        return None
    try:
        number = float(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def check_correlation_matrix(owner: str, parameter: str, value: object, size: int) -> np.ndarray:
    """Return `value` as a float64 (size, size) array if it is a valid correlation matrix.

    Valid means finite, symmetric, ones on the diagonal and positive semi-definite, each up to
    `CORRELATION_TOLERANCE`; the error names the first entry (or the eigenvalue) at fault.
    """
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is not allowed; it must be a number or a "
            f"({size}, {size}) correlation matrix"
        ) from None
    if matrix.shape != (size, size):
        raise ConfigError(
            f"{owner}: {parameter} has shape {matrix.shape}; it must be a number or a correlation "
            f"matrix of shape ({size}, {size})"
        )
    if not np.isfinite(matrix).all():
        i, j = np.argwhere(~np.isfinite(matrix))[0]
        raise ConfigError(
            f"{owner}: {parameter}[{i}, {j}]={matrix[i, j]!r} is not allowed; every entry must "
            "be finite"
        )
    asymmetry = np.abs(matrix - matrix.T)
    if asymmetry.max() > CORRELATION_TOLERANCE:
        i, j = np.unravel_index(int(asymmetry.argmax()), matrix.shape)
        raise ConfigError(
            f"{owner}: {parameter} is not symmetric: {parameter}[{i}, {j}]={matrix[i, j]:.6g} but "
            f"{parameter}[{j}, {i}]={matrix[j, i]:.6g}; it must be symmetric"
        )
    off_diagonal = np.abs(np.diag(matrix) - 1.0)
    if off_diagonal.max() > CORRELATION_TOLERANCE:
        i = int(off_diagonal.argmax())
        raise ConfigError(
            f"{owner}: {parameter}[{i}, {i}]={matrix[i, i]:.6g}; a correlation matrix must have "
            "ones on the diagonal"
        )
    smallest = float(np.linalg.eigvalsh(matrix)[0])
    if smallest < -CORRELATION_TOLERANCE * size:
        raise ConfigError(
            f"{owner}: {parameter} is not positive semi-definite (smallest eigenvalue "
            f"{smallest:.6g}); it must be a valid correlation matrix (repair it, e.g. with the "
            "nearest correlation matrix, or use a common scalar correlation)"
        )
    return matrix


def check_lognormal_jumps(owner: str, jump_mean: object, jump_std: object) -> None:
    """Raise `ConfigError` unless ``exp(jump_mean + jump_std^2 / 2)`` stays finite.

    That is the mean factor ``E[J]`` of a jump with ``log J ~ Normal(jump_mean, jump_std^2)``,
    which the jump compensator needs. The arguments may be arrays (they broadcast); the error
    names the first pair at fault.
    """
    means, stds = np.broadcast_arrays(
        np.asarray(jump_mean, dtype=np.float64), np.asarray(jump_std, dtype=np.float64)
    )
    with np.errstate(over="ignore"):
        exponent = means + stds**2 / 2
    bad = ~(exponent < LOG_JUMP_FACTOR_LIMIT)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(
            f"{owner}: jump_mean={float(means[at])!r} and jump_std={float(stds[at])!r} give "
            f"jump_mean + jump_std**2 / 2 = {float(exponent[at]):.6g}; it must be below "
            f"{LOG_JUMP_FACTOR_LIMIT:g} so that the mean jump factor exp(jump_mean + "
            "jump_std**2 / 2) is finite (both are in log units: e.g. -0.1 and 0.2 for jumps of "
            "about -10% +- 20%)"
        )
