"""Any scikit-learn-style portfolio estimator as a strategy (every skfolio optimizer, say).

The estimator is cloned (``sklearn.base.clone``) for every decision date, fitted on that date's
window of returns, and its ``weights_`` are the target weights. Cloning per date keeps dates
independent: nothing learned on one window leaks into the next.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone

from kabuto.data.panel import Window, WindowBatch
from kabuto.errors import ConfigError, DataError
from kabuto.strategies.batched import BatchedStrategy, window_returns

__all__ = ["SklearnPortfolio"]


class SklearnPortfolio(BatchedStrategy):
    """Wrap an estimator with ``fit(X)`` that sets ``weights_`` of shape (n_assets,).

    Parameters
    ----------
    estimator : object
        Unfitted estimator, e.g. ``skfolio.optimization.MeanRisk()``. It receives a DataFrame
        of the window's returns (dates x assets, asset names as columns), so estimators
        configured by asset name work.
    long_only : bool
        Whether the estimator only produces weights >= 0. Required: skfolio estimators can be
        long-short, and the backtest checks weights against the declared book.
    lookback : int, default=252
    label : str, optional

    Notes
    -----
    ``long_only`` shadows the class attribute of `Strategy` per instance.
    """

    def __init__(
        self,
        estimator: object,
        *,
        long_only: bool,
        lookback: int = 252,
        label: str | None = None,
    ) -> None:
        self.estimator = estimator
        self.long_only = long_only
        self.lookback = lookback
        self.label = label
        self._validate()

    @property
    def name(self) -> str:
        """The label, else ``Sklearn(<estimator class>)``."""
        return self.label or f"Sklearn({type(self.estimator).__name__})"

    _flags: ClassVar = ("long_only",)

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "get_params")):
            raise ConfigError(
                f"{name}: estimator={self.estimator!r} is not allowed; use an unfitted "
                "scikit-learn-style estimator with fit(X) setting weights_ (e.g. a skfolio "
                "optimizer)"
            )

    def _fit_one(self, window: Window) -> np.ndarray:
        frame = pd.DataFrame(window.returns, index=window.dates, columns=list(window.assets))
        ending = window.date.date()
        try:
            fitted = clone(self.estimator).fit(frame)
        except Exception as error:  # the estimator's own error, whatever its type
            raise DataError(
                f"{self.name}: {type(self.estimator).__name__}.fit failed on the window ending "
                f"{ending}: {error}; change the estimator's settings or the lookback"
            ) from error
        weights = np.asarray(getattr(fitted, "weights_", None), dtype=np.float64)
        if weights.shape != (window.n_assets,):
            raise ConfigError(
                f"{self.name}: the estimator's weights_ has shape {weights.shape} for the window "
                f"ending {ending}, expected ({window.n_assets},); wrap an estimator that returns "
                "one weight per asset"
            )
        if not np.isfinite(weights).all():
            raise DataError(
                f"{self.name}: the estimator returned non-finite weights for the window ending "
                f"{ending}; check the estimator on that window"
            )
        return weights

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        returns = window_returns(batch, self.lookback, self.name)
        out = np.empty((len(batch), batch.n_assets))
        for d in range(len(batch)):
            window = batch.window(d)
            if returns.shape[1] != window.returns.shape[0]:
                window = Window(
                    returns=returns[d],
                    prices=window.prices[-self.lookback :],
                    dates=window.dates[-self.lookback :],
                    assets=window.assets,
                )
            out[d] = self._fit_one(window)
        return out
