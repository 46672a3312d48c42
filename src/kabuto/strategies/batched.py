"""Shared plumbing for strategies whose real implementation decides a whole batch of dates.

`BatchedStrategy` makes `allocate_batch` the one code path: `allocate(window)` wraps the window
as a batch of one. It also owns the checks every classical strategy needs (parameter values,
window length, finite returns), so that each strategy module only holds its own mathematics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from kabuto.data.panel import Window, WindowBatch
from kabuto.errors import DataError
from kabuto.settings import check_bool, check_choice, check_int, check_positive
from kabuto.strategies.base import Strategy

__all__ = [
    "RELATIVE_VARIANCE_FLOOR",
    "TRAINING_YEAR",
    "BatchedStrategy",
    "batch_of_one",
    "check_bool",
    "check_choice",
    "check_int",
    "check_lookback",
    "check_positive",
    "has_variance",
    "require_variance",
    "window_prices",
    "window_returns",
]

TRAINING_YEAR = 252
"""Daily training samples (a year) a learned strategy's first fit has before its first
decision: its `min_history` is its lookback plus this."""


def batch_of_one(window: Window) -> WindowBatch:
    """Wrap a single `Window` as a `WindowBatch` of length 1 (no copy).

    Parameters
    ----------
    window : Window
        Returns and prices of shape (L, n).

    Returns
    -------
    WindowBatch
        ``returns`` and ``prices`` of shape (1, L, n); ``window(0)`` gives the window back.
    """
    length = window.returns.shape[0]
    return WindowBatch(
        returns=window.returns[None],
        prices=window.prices[None],
        dates=window.dates[-1:],
        assets=window.assets,
        indices=np.array([length - 1], dtype=np.int64),
        known_dates=window.dates,
    )


def check_lookback(owner: str, lookback: object, minimum: int = 2) -> int:
    """Return `lookback` if it is an int >= `minimum`, else raise `ConfigError`."""
    return check_int(owner, "lookback", lookback, minimum)


def window_returns(batch: WindowBatch, lookback: int, owner: str) -> np.ndarray:
    """The last `lookback` returns of every window in the batch, checked finite.

    Parameters
    ----------
    batch : WindowBatch
        Returns of shape (D, L, n) with L >= lookback.
    lookback : int
    owner : str
        Strategy name for error messages.

    Returns
    -------
    ndarray of shape (D, lookback, n)
        A read-only view of ``batch.returns`` (no copy).
    """
    if batch.lookback < lookback:
        raise DataError(
            f"{owner}: the window ending {batch.dates[0].date()} has {batch.lookback} returns "
            f"but lookback={lookback}; pass windows of at least {lookback} returns"
        )
    returns = batch.returns if batch.lookback == lookback else batch.returns[:, -lookback:]
    finite = batch.cached(("kabuto.finite", lookback), lambda: np.isfinite(returns).all((1, 2)))
    if not finite.all():
        d = int(np.argmin(finite))
        col = int(np.argmin(np.isfinite(returns[d]).all(axis=0)))
        raise DataError(
            f"{owner}: the window ending {batch.dates[d].date()} has missing returns for asset "
            f"{batch.assets[col]!r}; give the strategy only assets with a full lookback "
            "(Panel.eligible)"
        )
    return returns


def window_prices(window: Window, count: int, owner: str) -> np.ndarray:
    """The last `count` prices of a window as float64, checked finite and positive.

    Shape: output (count, n).

    Raises
    ------
    DataError
        If the window is shorter than `count` or an asset lacks a price in it.
    """
    return window_features(window, count, owner, high_low=False)[0]


def window_features(window: Window, count: int, owner: str, high_low: bool = True) -> np.ndarray:
    """The last `count` closes (and highs and lows, see `Window.price_features`), checked.

    Shape: output (F, count, n), float64, finite and positive.

    Raises
    ------
    DataError
        If the window is shorter than `count` or an asset lacks a price in it.
    """
    if window.prices.shape[0] < count:
        raise DataError(
            f"{owner}: the window ending {window.date.date()} has {window.prices.shape[0]} "
            f"prices but the strategy needs the last {count}; pass windows of at least {count}"
        )
    prices = np.asarray(window.price_features(high_low)[:, -count:], dtype=np.float64)
    bad = ~(np.isfinite(prices) & (prices > 0)).all(axis=0)
    if bad.any():
        col = int(np.argwhere(bad)[0, 1])
        raise DataError(
            f"{owner}: asset {window.assets[col]!r} has a missing or non-positive price in the "
            f"{count} days ending {window.date.date()}; give the strategy only assets with a "
            "full lookback (Panel.eligible)"
        )
    return prices


RELATIVE_VARIANCE_FLOOR = 1e-12
"""Share of the raw returns' variance below which a projected (residual) variance is rounding
noise: removing every direction a window spans leaves ~1e-35, which is positive but no signal."""


def has_variance(variances: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Where a variance is usable: positive, and above `RELATIVE_VARIANCE_FLOOR` x `reference`.

    Parameters
    ----------
    variances : ndarray
    reference : ndarray of the same shape, optional
        The variance of the returns `variances` were projected from (None: only > 0).

    Returns
    -------
    ndarray of bool, the shape of `variances`
    """
    if reference is None:
        return variances > 0.0
    # a reference of 0 (a constant price) leaves only rounding noise to project
    return (variances > RELATIVE_VARIANCE_FLOOR * reference) & (reference > 0.0)


def require_variance(
    batch: WindowBatch, variances: np.ndarray, owner: str, reference: np.ndarray | None = None
) -> None:
    """Raise `DataError` naming the first asset and date whose variance is not usable.

    Parameters
    ----------
    batch : WindowBatch
    variances : ndarray of shape (D, n)
    owner : str
    reference : ndarray of shape (D, n), optional
        For residual variances: the raw returns' variance (see `has_variance`).
    """
    bad = ~has_variance(variances, reference)
    if bad.any():
        d, col = (int(i) for i in np.argwhere(bad)[0])
        where = f"{owner}: asset {batch.assets[col]!r} in the window ending {batch.dates[d].date()}"
        if reference is None:
            raise DataError(
                f"{where} has zero variance (a constant price?); drop it from the universe or "
                "use a strategy that does not divide by volatility"
            )
        raise DataError(
            f"{where} has a residual variance below {RELATIVE_VARIANCE_FLOOR:g} of its raw "
            "variance (a constant price, or returns the removed components explain entirely); "
            "remove fewer components, lengthen the lookback or drop the asset"
        )


class BatchedStrategy(Strategy):
    """A stateless strategy implemented once, for a batch of decision dates.

    Subclasses declare their settings' rules (`_min_lookback`, `_choices`: setting -> allowed
    strings, `_flags`: boolean settings), extend `_validate` for anything else (it raises
    `ConfigError` on bad settings; called at construction and again at first use, since
    `set_params` bypasses ``__init__``), and implement `_allocate_batch`. `allocate` runs the
    same code on a batch of one.
    """

    _min_lookback: ClassVar[int] = 2
    _choices: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    _flags: ClassVar[tuple[str, ...]] = ()

    def _validate(self) -> None:
        name = type(self).__name__
        check_lookback(name, self.lookback, self._min_lookback)
        for parameter, allowed in self._choices.items():
            check_choice(name, parameter, getattr(self, parameter), allowed)
        for parameter in self._flags:
            check_bool(name, parameter, getattr(self, parameter))

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        raise NotImplementedError

    def allocate(self, window: Window, prev_weights: np.ndarray | None = None) -> np.ndarray:
        """Target weights of shape (n,) for the decision date ``window.date``."""
        return self.allocate_batch(batch_of_one(window))[0]

    def allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        """Target weights of shape (D, n) for every decision date in the batch."""
        self._validate()
        weights = self._allocate_batch(batch)
        return np.ascontiguousarray(weights, dtype=np.float64)
