"""Markowitz-family portfolios: minimum variance, mean-variance utility, maximum Sharpe and
maximum Sortino ratio. All fully invested (weights sum to 1) and long-only (weights >= 0),
except `MinimumVariance(long_only=False)`, which may short.

Each is solved exactly by the NNLS reductions of `kabuto.strategies.qp`, one small solve per
decision date on estimates shared through the batch cache. Results match skfolio's
``MeanRisk`` with the same objective and prior to about 1e-6 (skfolio solves with an interior
point method, whose tolerance is the limit).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from kabuto.data.panel import WindowBatch
from kabuto.errors import ConfigError, DataError
from kabuto.strategies import qp
from kabuto.strategies.batched import (
    BatchedStrategy,
    check_positive,
    window_returns,
)
from kabuto.strategies.covariance import (
    COVARIANCES,
    batch_cholesky,
    batch_demeaned,
    batch_mean,
)

__all__ = ["MaximumSharpe", "MaximumSortino", "MeanVariance", "MinimumVariance"]

FALLBACKS = ("min_risk", "raise")


def _factors(strategy: BatchedStrategy, batch: WindowBatch, returns: np.ndarray) -> np.ndarray:
    """F with ``F'F`` proportional to the covariance: (D, L, n) for "sample", (D, n, n) else.

    A constant factor does not move the minimisers of `kabuto.strategies.qp`.
    """
    if strategy.covariance == "sample":
        # The demeaned returns (F'F = (L - 1) Sigma): no covariance is formed and L < n is fine.
        return batch_demeaned(batch, returns)
    return batch_cholesky(batch, returns, strategy.covariance, type(strategy).__name__)


def _no_positive_mean(owner: str, date: object) -> DataError:
    return DataError(
        f"{owner}: no asset has a positive mean return in the window ending {date}, so the "
        "ratio has no positive maximum; use fallback='min_risk' to hold the minimum-risk "
        "portfolio on such dates"
    )


class MinimumVariance(BatchedStrategy):
    """Fully invested minimum-variance portfolio, long-only by default.

    Long-only: ``min w'Sigma w  s.t.  1'w = 1, w >= 0``, solved exactly as one NNLS per date
    (see `kabuto.strategies.qp`). With ``covariance="sample"`` the NNLS works on the demeaned
    returns directly, so a lookback shorter than the number of assets (singular covariance) is
    fine; the minimiser may then not be unique.

    Unconstrained (``long_only=False``): the closed form ``Sigma^-1 1 / (1' Sigma^-1 1)``, which
    may short and exceed gross leverage 1 (run it in a long-short book with a suitable
    ``max_leverage``); it needs a full-rank covariance.

    Parameters
    ----------
    lookback : int, default=252
        Daily returns per estimate (>= 2).
    covariance : {"sample", "ledoit_wolf"}, default="sample"
    long_only : bool, default=True
        Shadows the class attribute of `Strategy` per instance.
    label : str, optional
    """

    def __init__(
        self,
        lookback: int = 252,
        covariance: str = "sample",
        long_only: bool = True,
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.covariance = covariance
        self.long_only = long_only
        self.label = label
        self._validate()

    _choices: ClassVar = {"covariance": COVARIANCES}
    _flags: ClassVar = ("long_only",)

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        returns = window_returns(batch, self.lookback, name)
        if not self.long_only:
            upper = batch_cholesky(batch, returns, self.covariance, name)  # Sigma = U'U
            ones = np.ones((len(batch), batch.n_assets, 1))
            x = np.linalg.solve(upper, np.linalg.solve(np.swapaxes(upper, 1, 2), ones))[..., 0]
            return x / x.sum(axis=1, keepdims=True)
        factors = _factors(self, batch, returns)
        return np.stack([qp.min_variance_weights(f) for f in factors])


class MaximumSharpe(BatchedStrategy):
    """Long-only portfolio with the largest in-sample Sharpe ratio ``mu'w / sqrt(w'Sigma w)``.

    Risk-free rate 0, mu the window's mean returns. Charnes-Cooper: ``y = argmin y'Sigma y``
    s.t. ``mu'y = 1, y >= 0``, then ``w = y / 1'y`` (one NNLS per date).

    Parameters
    ----------
    lookback : int, default=252
    covariance : {"sample", "ledoit_wolf"}, default="sample"
    fallback : {"min_risk", "raise"}, default="min_risk"
        What to do on a date where no asset has a positive mean return (no positive ratio
        exists; skfolio raises there): hold the minimum-variance portfolio, or raise
        `DataError`.
    label : str, optional
    """

    long_only: ClassVar[bool] = True

    def __init__(
        self,
        lookback: int = 252,
        covariance: str = "sample",
        fallback: str = "min_risk",
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.covariance = covariance
        self.fallback = fallback
        self.label = label
        self._validate()

    _choices: ClassVar = {"covariance": COVARIANCES, "fallback": FALLBACKS}

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        returns = window_returns(batch, self.lookback, name)
        factors = _factors(self, batch, returns)
        mu = batch_mean(batch, returns)
        out = np.empty((len(batch), batch.n_assets))
        for d, f in enumerate(factors):
            w = qp.max_sharpe_weights(f, mu[d])
            if w is None:
                if self.fallback == "raise":
                    raise _no_positive_mean(name, batch.dates[d].date())
                w = qp.min_variance_weights(f)
            out[d] = w
        return out


class MaximumSortino(BatchedStrategy):
    """Long-only portfolio with the largest in-sample Sortino ratio ``mu'w / SD_-(w)``.

    SD_- is skfolio's semi-deviation: ``sqrt(sum_t min(r_t'w - mu'w, 0)^2 / (L - 1))`` with
    the minimum acceptable return equal to the window mean (risk-free rate 0). It is positively
    homogeneous, so the ratio is maximised by ``y = argmin SD_-(y)`` s.t. ``mu'y = 1, y >= 0``
    and ``w = y / 1'y``, solved exactly (`qp.min_semideviation_on_slice`). Matches skfolio's
    ``MeanRisk(objective_function=MAXIMIZE_RATIO, risk_measure=SEMI_DEVIATION)``.

    Parameters
    ----------
    lookback : int, default=252
    fallback : {"min_risk", "raise"}, default="min_risk"
        On a date where no asset has a positive mean return: hold the minimum semi-deviation
        portfolio, or raise `DataError`.
    label : str, optional
    """

    long_only: ClassVar[bool] = True

    def __init__(
        self, lookback: int = 252, fallback: str = "min_risk", label: str | None = None
    ) -> None:
        self.lookback = lookback
        self.fallback = fallback
        self.label = label
        self._validate()

    _choices: ClassVar = {"fallback": FALLBACKS}

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        returns = window_returns(batch, self.lookback, name)
        centred = batch_demeaned(batch, returns)
        mu = batch_mean(batch, returns)
        ones = np.ones(batch.n_assets)
        out = np.empty((len(batch), batch.n_assets))
        for d in range(len(batch)):
            y = qp.min_semideviation_on_slice(centred[d], mu[d])
            if y is None:
                if self.fallback == "raise":
                    raise _no_positive_mean(name, batch.dates[d].date())
                y = qp.min_semideviation_on_slice(centred[d], ones)
            out[d] = y / y.sum()
        return out


#: Below this risk aversion the quadratic term of `MeanVariance` is within rounding of the
#: linear one for daily returns (means 1e-3, variances 1e-4).
MIN_RISK_AVERSION = 1e-8


class MeanVariance(BatchedStrategy):
    """Long-only, fully invested mean-variance utility portfolio.

    ``max mu'w - risk_aversion / 2 * w'Sigma w  s.t.  1'w = 1, w >= 0`` with mu the window's
    mean returns (`qp.mean_variance_weights`: NNLS with a search on the budget multiplier, then
    an exact KKT solve). skfolio's ``MeanRisk(objective_function=MAXIMIZE_UTILITY,
    risk_aversion=k)`` maximises ``mu'w - k w'Sigma w``, i.e. ``k = risk_aversion / 2`` here.

    Needs a full-rank covariance, hence the Ledoit-Wolf default; with ``covariance="sample"``
    the lookback must exceed the number of assets (else `DataError`).

    Parameters
    ----------
    lookback : int, default=252
    risk_aversion : float, default=1.0
        gamma >= 1e-8 (`MIN_RISK_AVERSION`). Both terms scale with the return horizon, so gamma
        is dimensionless; small values concentrate in the highest-mean assets.
    covariance : {"sample", "ledoit_wolf"}, default="ledoit_wolf"
    label : str, optional
    """

    long_only: ClassVar[bool] = True

    def __init__(
        self,
        lookback: int = 252,
        risk_aversion: float = 1.0,
        covariance: str = "ledoit_wolf",
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.risk_aversion = risk_aversion
        self.covariance = covariance
        self.label = label
        self._validate()

    _choices: ClassVar = {"covariance": COVARIANCES}

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        if check_positive(name, "risk_aversion", self.risk_aversion) < MIN_RISK_AVERSION:
            raise ConfigError(
                f"{name}: risk_aversion={self.risk_aversion!r} is below {MIN_RISK_AVERSION:g}, "
                "where the risk term is lost in rounding (the solver failed at 1e-14); use at "
                f"least {MIN_RISK_AVERSION:g}: the portfolio is then already all in the "
                "highest-mean asset"
            )

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        returns = window_returns(batch, self.lookback, name)
        uppers = batch_cholesky(batch, returns, self.covariance, name)
        mu = batch_mean(batch, returns)
        return np.stack(
            [
                qp.mean_variance_weights(uppers[d], mu[d], float(self.risk_aversion))
                for d in range(len(batch))
            ]
        )
