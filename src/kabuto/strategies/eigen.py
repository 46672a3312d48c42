"""Eigen portfolios (Avellaneda and Lee 2010): the principal components of asset correlation.

For the k-th eigenvector v of the correlation matrix (eigenvalues in decreasing order; k = 0 is
the "market" mode), the eigen portfolio invests ``Q_i = v_i / sigma_i`` in asset i, sigma_i its
volatility: its return is the k-th principal factor of the standardised returns. The weights
here are that vector rescaled to gross leverage 1 (``sum_i |w_i| = 1``) with the sign chosen so
that the net exposure ``sum_i w_i`` is positive (an eigenvector's sign is arbitrary). For k = 0
the weights are usually all positive; higher components are long-short, and their net exposure
(hence the cash left, ``1 - sum w``) varies from date to date.
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
from kabuto.strategies.covariance import COVARIANCES, batch_covariance, correlation

__all__ = ["EigenPortfolio"]


class EigenPortfolio(BatchedStrategy):
    """Avellaneda-Lee eigen portfolio of one principal component (long-short).

    Parameters
    ----------
    lookback : int, default=252
    component : int, default=0
        Which eigenvector, by decreasing eigenvalue (0 = largest). Must be < number of assets.
    covariance : {"sample", "ledoit_wolf"}, default="sample"
        Estimator whose correlation matrix and volatilities are used.
    label : str, optional
    """

    long_only: ClassVar[bool] = False

    def __init__(
        self,
        lookback: int = 252,
        component: int = 0,
        covariance: str = "sample",
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.component = component
        self.covariance = covariance
        self.label = label
        self._validate()

    _choices: ClassVar = {"covariance": COVARIANCES}

    def _validate(self) -> None:
        super()._validate()
        check_int(type(self).__name__, "component", self.component, 0)

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        if self.component >= batch.n_assets:
            raise ConfigError(
                f"{name}: component={self.component} is not allowed for {batch.n_assets} "
                f"assets; use an integer in [0, {batch.n_assets - 1}]"
            )
        returns = window_returns(batch, self.lookback, name)
        cov = batch_covariance(batch, returns, self.covariance)
        require_variance(batch, np.diagonal(cov, axis1=1, axis2=2), name)
        corr, std = correlation(cov)
        _, vectors = np.linalg.eigh(corr)  # ascending eigenvalues
        v = vectors[:, :, batch.n_assets - 1 - self.component]
        q = v / std
        q /= np.abs(q).sum(axis=1, keepdims=True)
        net = q.sum(axis=1)
        # Break an exact tie in net exposure by making the largest position long.
        flip = (net < 0) | ((net == 0) & (q[np.arange(len(q)), np.abs(q).argmax(axis=1)] < 0))
        q[flip] *= -1.0
        return q
