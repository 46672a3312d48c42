"""Rebalance and retrain calendars over a panel's trading dates.

A schedule is either a number k (every k trading days from the first decision) or a calendar
name: the last trading day of each week, month, quarter or year in the panel. The first decision
date always belongs to the rebalance schedule, so every strategy is invested from the start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kabuto.errors import ConfigError
from kabuto.settings import is_integer

CALENDARS = {"weekly": "W", "monthly": "M", "quarterly": "Q", "yearly": "Y"}
SCHEDULE_HELP = "a positive number of trading days or one of " + ", ".join(map(repr, CALENDARS))


def _period_ends(dates: pd.DatetimeIndex, freq: str) -> np.ndarray:
    """Indices of the last trading date of each calendar period."""
    periods = dates.to_period(freq)
    changes = np.flatnonzero(periods[1:] != periods[:-1])
    return np.append(changes, len(dates) - 1)


def _checked(spec: object, field: str, expected: str) -> int | str:
    """`spec` as a Python int >= 1 (numpy integers too) or a calendar name; ConfigError else."""
    if is_integer(spec) and spec >= 1:  # type: ignore[operator]
        return int(spec)  # type: ignore[call-overload]
    if isinstance(spec, str) and spec in CALENDARS:
        return spec
    raise ConfigError(f"{field} = {spec!r}: expected {expected}")


def schedule_indices(
    dates: pd.DatetimeIndex, spec: int | str, first: int, last: int, *, field: str
) -> np.ndarray:
    """Decision indices in [first, last] for a schedule `spec`; `first` is always included.

    Parameters
    ----------
    dates : DatetimeIndex
        The panel's trading dates.
    spec : int or str
        Every `spec` trading days, or a name in CALENDARS.
    first, last : int
        Inclusive index range of the backtest.
    field : str
        Config field name, for error messages.
    """
    spec = _checked(spec, field, SCHEDULE_HELP)
    if isinstance(spec, int):
        return np.arange(first, last + 1, spec)
    ends = _period_ends(dates, CALENDARS[spec])
    ends = ends[(ends > first) & (ends <= last)]
    return np.concatenate([[first], ends]).astype(np.int64)


def retrain_flags(
    dates: pd.DatetimeIndex, decisions: np.ndarray, spec: int | str | None, *, field: str
) -> np.ndarray:
    """Which decisions refit the strategies before allocating.

    The first decision always fits. ``None`` fits once; an integer k refits at the first decision
    at least k trading days after the previous fit; a calendar name refits at the first decision
    of each new period (so "yearly" refits on the first rebalance of each year).
    """
    flags = np.zeros(len(decisions), dtype=bool)
    if len(decisions) == 0:
        return flags
    flags[0] = True
    if spec is None:
        return flags
    spec = _checked(spec, field, SCHEDULE_HELP + " or none")
    if isinstance(spec, int):
        last_fit = decisions[0]
        for k, t in enumerate(decisions[1:], start=1):
            if t - last_fit >= spec:
                flags[k], last_fit = True, t
        return flags
    periods = dates[decisions].to_period(CALENDARS[spec])
    flags[1:] = periods[1:] != periods[:-1]
    return flags
