"""Equal risk contribution (risk parity): every asset contributes the same share of variance.

Risk contributions of weights w under covariance Sigma are ``RC_i = w_i (Sigma w)_i``; they sum
to the portfolio variance. The long-only ERC portfolio equalises them (Maillard, Roncalli and
Teiletche 2010). It is the normalised minimiser of ``1/2 y'Sigma y - sum_i log(y_i) / n``
(`kabuto.strategies.qp.risk_budgeting_weights`, Newton's method batched over dates).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from kabuto.data.panel import WindowBatch
from kabuto.errors import DataError
from kabuto.strategies import qp
from kabuto.strategies.batched import (
    BatchedStrategy,
    require_variance,
    window_returns,
)
from kabuto.strategies.covariance import COVARIANCES, batch_covariance

__all__ = ["EqualRiskContribution"]

# Newton reaches ~1e-15 in a handful of steps on well-conditioned covariances; a result worse
# than this means there is no ERC portfolio (a singular covariance can admit none).
_ACCEPT = 1e-8


class EqualRiskContribution(BatchedStrategy):
    """Long-only equal-risk-contribution portfolio.

    Iterates to relative risk-contribution errors ``max_i |y_i (Sigma y)_i / b_i - 1|`` of
    1e-12 where it can (the same as ``|RC_i / mean(RC) - 1|`` to first order) and accepts up
    to 1e-8; the largest error is the attribute ``max_error_`` after each call. Matches skfolio's
    ``RiskBudgeting(risk_measure=RiskMeasure.VARIANCE)``. A singular sample covariance
    (lookback < number of assets) may have no ERC portfolio: then `DataError`, and
    ``covariance="ledoit_wolf"`` is the remedy.

    Parameters
    ----------
    lookback : int, default=252
    covariance : {"sample", "ledoit_wolf"}, default="sample"
    label : str, optional
    """

    long_only: ClassVar[bool] = True

    def __init__(
        self, lookback: int = 252, covariance: str = "sample", label: str | None = None
    ) -> None:
        self.lookback = lookback
        self.covariance = covariance
        self.label = label
        self._validate()

    _choices: ClassVar = {"covariance": COVARIANCES}

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        returns = window_returns(batch, self.lookback, name)
        cov = batch_covariance(batch, returns, self.covariance)
        require_variance(batch, np.diagonal(cov, axis1=1, axis2=2), name)
        n = batch.n_assets
        weights, error = qp.risk_budgeting_weights(cov, np.full(n, 1.0 / n))
        bad = ~(error <= _ACCEPT)
        if bad.any():
            d = int(np.argmax(bad))
            raise DataError(
                f"{name}: no equal-risk-contribution portfolio found for the window ending "
                f"{batch.dates[d].date()} ("
                + (
                    f"risk contributions off by {error[d]:.1e}"
                    if np.isfinite(error[d])
                    else "its Newton system became singular"
                )
                + f"); the "
                f"{self.covariance} covariance is (nearly) singular, use "
                + ("covariance='ledoit_wolf' or " if self.covariance == "sample" else "")
                + "a longer lookback"
            )
        self.max_error_ = float(error.max())
        return weights
