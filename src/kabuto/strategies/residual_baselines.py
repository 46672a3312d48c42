"""Simple residual-factor strategies: short-horizon reversal and longer-horizon momentum.

Both follow the construction of Imajo et al. (AAAI 2021) with a hand-made score in place of the
network: on each decision window, spectral residuals ``R A`` (`kabuto.strategies.residual`) with
``A = I - U_C U_C'`` from the window's top C principal components, a score per asset from its
recent residual returns, then the factor-neutral book ``b = A w`` at gross leverage 1. They are
the baselines a learned residual strategy has to beat, and the oracle
(`kabuto.strategies.oracle.ResidualOracle`) is the scale they are scored on (a yardstick, not a
ceiling: a strategy can beat it, see its docstring).

Optionally (the default) the score is divided by each asset's residual variance over the window,
mirroring the mean / variance scores of the oracle and the learned strategy: a volatile residual
needs a larger move to mean as much.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from kabuto.data.panel import WindowBatch
from kabuto.errors import ConfigError
from kabuto.strategies.batched import (
    BatchedStrategy,
    check_int,
    require_variance,
    window_returns,
)
from kabuto.strategies.residual import (
    check_components,
    factor_neutral_book,
    spectral_projection,
)

__all__ = ["ResidualMomentum", "ResidualReversal"]


class _ResidualScoreStrategy(BatchedStrategy):
    """Shared plumbing: residuals of each window -> score -> factor-neutral book."""

    long_only: ClassVar[bool] = False

    _min_lookback: ClassVar[int] = 3
    _flags: ClassVar = ("scale_by_variance",)

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        if self.n_components is not None:
            check_int(name, "n_components", self.n_components, 0)
        check_components(name, self.n_components, self.lookback)

    def _score(self, residuals: np.ndarray) -> np.ndarray:
        """Scores of shape (D, n) from residual returns of shape (D, L, n)."""
        raise NotImplementedError

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        returns = window_returns(batch, self.lookback, name)
        # The default C depends on the universe, so it is checked here, not at construction.
        components = check_components(name, self.n_components, self.lookback, batch.n_assets)
        # One eigendecomposition per window, cached on the batch so that every residual
        # strategy in the run with the same lookback and C shares it.
        projection = batch.cached(
            ("kabuto.spectral_projection", self.lookback, components),
            lambda: spectral_projection(returns, components),
        )  # (D, n, n)
        residuals = returns @ projection  # (D, L, n)
        scores = self._score(residuals)
        if self.scale_by_variance:
            variance = residuals.var(axis=1, ddof=1)
            require_variance(batch, variance, name, reference=returns.var(axis=1, ddof=1))
            scores = scores / variance
        return factor_neutral_book(scores, projection)


class ResidualReversal(_ResidualScoreStrategy):
    """Short-horizon residual reversal: sell what just rose relative to the factors.

    ``score_i = -(sum of the last `horizon` residual returns of asset i)``, divided by its
    residual variance over the window when `scale_by_variance`; book ``A score`` at gross 1.

    Parameters
    ----------
    lookback : int, default=252
        Window H of returns for the principal components (and the residual variance).
    horizon : int, default=5
        Days of residual returns summed into the score (1 <= horizon <= lookback).
    n_components : int, optional
        C principal components removed; default ``default_components(n)`` (about n / 10); at
        most ``lookback - 2`` and below n (see `residual.check_components`).
    scale_by_variance : bool, default=True
    label : str, optional
    """

    def __init__(
        self,
        lookback: int = 252,
        horizon: int = 5,
        n_components: int | None = None,
        scale_by_variance: bool = True,
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.horizon = horizon
        self.n_components = n_components
        self.scale_by_variance = scale_by_variance
        self.label = label
        self._validate()

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        check_int(name, "horizon", self.horizon, 1)
        if self.horizon > self.lookback:
            raise ConfigError(
                f"{name}: horizon={self.horizon} is not allowed with lookback={self.lookback}; "
                "use a horizon no longer than the lookback"
            )

    def _score(self, residuals: np.ndarray) -> np.ndarray:
        return -residuals[:, -self.horizon :].sum(axis=1)


class ResidualMomentum(_ResidualScoreStrategy):
    """Residual momentum: buy what rose relative to the factors over months, skipping the last days.

    ``score_i = +(sum of residual returns from `horizon + skip` to `skip` days ago)`` (the most
    recent `skip` days left out, where short-term reversal lives), divided by the residual
    variance over the window when `scale_by_variance`; book ``A score`` at gross 1.

    Parameters
    ----------
    lookback : int, default=252
        Window H of returns for the principal components (and the residual variance).
    horizon : int, default=231
        Days summed into the score (about eleven months).
    skip : int, default=21
        Most recent days left out (about a month); ``horizon + skip <= lookback``.
    n_components : int, optional
        C principal components removed; default ``default_components(n)``; at most
        ``lookback - 2`` and below n.
    scale_by_variance : bool, default=True
    label : str, optional
    """

    def __init__(
        self,
        lookback: int = 252,
        horizon: int = 231,
        skip: int = 21,
        n_components: int | None = None,
        scale_by_variance: bool = True,
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.horizon = horizon
        self.skip = skip
        self.n_components = n_components
        self.scale_by_variance = scale_by_variance
        self.label = label
        self._validate()

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        check_int(name, "horizon", self.horizon, 1)
        check_int(name, "skip", self.skip, 0)
        if self.horizon + self.skip > self.lookback:
            raise ConfigError(
                f"{name}: horizon={self.horizon} + skip={self.skip} is not allowed with "
                f"lookback={self.lookback}; use horizon + skip <= lookback"
            )

    def _score(self, residuals: np.ndarray) -> np.ndarray:
        length = residuals.shape[1]
        stop = length - self.skip
        return residuals[:, stop - self.horizon : stop].sum(axis=1)
