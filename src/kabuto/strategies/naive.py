"""Allocations that estimate nothing or almost nothing: 1/N, inverse volatility, buy-and-hold.

1/N is the benchmark every optimised portfolio has to beat out of sample (DeMiguel, Garlappi
and Uppal 2009).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from kabuto.data.panel import Window, WindowBatch
from kabuto.strategies.base import Strategy, held_weights
from kabuto.strategies.batched import (
    BatchedStrategy,
    check_lookback,
    require_variance,
    window_returns,
)

__all__ = ["BuyAndHold", "EqualWeight", "InverseVolatility"]


class EqualWeight(BatchedStrategy):
    """1/N: the same weight on every asset of the window, rebalanced at every decision.

    Parameters
    ----------
    lookback : int, default=252
        History the engine must supply before the first decision (the weights do not use it;
        keep it equal to the other strategies' so that all start on the same date).
    label : str, optional
        Name in results (default: the class name).
    """

    long_only: ClassVar[bool] = True

    def __init__(self, lookback: int = 252, label: str | None = None) -> None:
        self.lookback = lookback
        self.label = label
        self._validate()

    _min_lookback: ClassVar[int] = 1

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        n = batch.n_assets
        return np.full((len(batch), n), 1.0 / n)


class InverseVolatility(BatchedStrategy):
    """Weights proportional to 1 / sigma_i, sigma_i the sample volatility over the lookback.

    Matches skfolio's ``InverseVolatility()`` (1 / sqrt(diag of the empirical covariance)).

    Parameters
    ----------
    lookback : int, default=252
        Number of daily returns the volatilities are estimated on (>= 2).
    label : str, optional
    """

    long_only: ClassVar[bool] = True

    def __init__(self, lookback: int = 252, label: str | None = None) -> None:
        self.lookback = lookback
        self.label = label
        self._validate()

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        returns = window_returns(batch, self.lookback, name)
        std = returns.std(axis=1)  # ddof cancels in the normalisation
        require_variance(batch, std, name)
        inv = 1.0 / std
        return inv / inv.sum(axis=1, keepdims=True)


class BuyAndHold(Strategy):
    """Buy 1/N at the first decision, then never trade: return the drifted weights.

    The engine passes the drifted weights of the current holdings as `prev_weights`; returning
    them unchanged means the target equals the holdings, so no turnover and no cost.

    The first decision is the one with ``prev_weights`` None or all zero (nothing held yet).
    If the universe changes afterwards, ``prev_weights`` is aligned with the new window's
    assets by the engine: an asset that joins arrives with weight 0 and is never bought; an
    asset that leaves the window is no longer in ``prev_weights``, so its value goes to cash
    and the weights sum to less than 1 from then on (buy-and-hold never reinvests). A
    `prev_weights` whose length differs from the window's asset count is a caller error
    (`ArgumentError`, a ValueError).

    `allocate_batch` has no previous weights, so each row is a first decision (1/N); stateful
    strategies are run date by date by the engine.

    Parameters
    ----------
    lookback : int, default=252
        History required before the first purchase (kept equal to the other strategies').
    label : str, optional
    """

    stateful: ClassVar[bool] = True
    long_only: ClassVar[bool] = True

    def __init__(self, lookback: int = 252, label: str | None = None) -> None:
        self.lookback = lookback
        self.label = label
        check_lookback(type(self).__name__, lookback, minimum=1)

    def allocate(self, window: Window, prev_weights: np.ndarray | None = None) -> np.ndarray:
        """Target weights of shape (n,): 1/N first, then `prev_weights` unchanged."""
        check_lookback(type(self).__name__, self.lookback, minimum=1)  # set_params skips init
        prev = held_weights(self.name, prev_weights, window, long_only=self.long_only)
        if prev is None or not np.any(prev):
            return np.full(window.n_assets, 1.0 / window.n_assets)
        return prev.copy()

    def allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        """1/N for every row (no previous weights in a batch); shape (D, n)."""
        return np.stack([self.allocate(batch.window(d)) for d in range(len(batch))])
