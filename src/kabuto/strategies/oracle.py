"""The residual oracle: the book a residual strategy holds when its predictions are the truth.

On a `kabuto.sim.factor_market.FactorMarket` the conditional mean and variance of every residual
for tomorrow are known at today's close. The oracle builds the book a learned residual-factor
strategy (Imajo et al., AAAI 2021) builds from its predictions, but from the true moments of the
un-projected residuals e and the true factor loadings::

    w = residual_mean[t] / residual_var[t]          (residual-space scores)
    b = A_true w / sum |A_true w|,   A_true = I - B (B'B)^{-1} B'

so ``B' b = 0`` (no exposure to the true factors) and gross leverage is 1. It knows the process,
not the future shocks: its moments at t are functions of the latent shocks up to t (which the
prices show only through ``A r = A e``, so no strategy can recover them exactly). Its net Sharpe
ratio in kabuto's own backtest (`kabuto.evaluation.oracle.oracle_sharpe`) is the yardstick for
every learned strategy: it scores prediction quality with the book construction held fixed.

It is not an upper bound. With unequal residual variances ``D = diag(h)`` the factor-neutral
book with the best conditional Sharpe ratio weights the projection by them,
``(D^-1 - D^-1 B (B' D^-1 B)^-1 B' D^-1) m``. Measured as the mean conditional gross Sharpe
ratio over dates, this book is about 1% below that one at the market's defaults (7.89 against
7.98, seed 3) and 20% below with 10 factors and a residual-volatility dispersion of 0.8 (5.89
against 7.40); after costs neither is optimal. A learned strategy can therefore score above 1.
Nor is it exactly the book of a perfect `DeepResidual`, whose target is the projected residual
``A_s r_{s+1}``: the true moments of that target (``A m`` and ``diag(A D A)``) give a slightly
different book (mean conditional gross Sharpe 7.92 against the oracle's 7.89 at the defaults;
6.22 against 5.96 with 10 factors and dispersion 0.8; a reviewer's check).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from kabuto.data.panel import Panel, WindowBatch
from kabuto.errors import DataError
from kabuto.sim.factor_market import FactorMarket
from kabuto.strategies.batched import BatchedStrategy
from kabuto.strategies.residual import factor_neutral_book

__all__ = ["ResidualOracle"]


class ResidualOracle(BatchedStrategy):
    """Holds ``A_true (mean / var)`` from the true conditional residual moments (long-short); the
    book of a residual strategy with perfect predictions, not an upper bound (module docstring).

    Parameters
    ----------
    market : FactorMarket
        The simulated market whose moments it knows. It trades only that market's panel.
    lookback : int, default=252
        History it asks the backtest for. It uses none of it; the default matches the residual
        baselines, so that run together they start on the same date.
    label : str, optional

    Raises
    ------
    DataError
        When asked to allocate on a panel that is not ``market.panel`` (unknown dates or
        assets, or returns that differ).
    """

    long_only: ClassVar[bool] = False

    def __init__(self, market: FactorMarket, *, lookback: int = 252, label: str | None = None):
        self.market = market
        self.lookback = lookback
        self.label = label
        self._validate()

    _min_lookback: ClassVar[int] = 1

    def _validate(self) -> None:
        super()._validate()
        if not isinstance(self.market, FactorMarket):
            raise DataError(
                f"ResidualOracle: market={type(self.market).__name__} is not a FactorMarket; "
                "build one with kabuto.sim.factor_market"
            )

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        rows, columns = self._locate(batch)
        mean = self.market.residual_mean[rows][:, columns]  # (D, n)
        var = self.market.residual_var[rows][:, columns]
        return factor_neutral_book(mean / var, self.market.projection(columns))

    def _locate(self, batch: WindowBatch) -> tuple[np.ndarray, np.ndarray]:
        return locate_in_panel(self.market.panel, batch, "ResidualOracle")


def locate_in_panel(panel: Panel, batch: WindowBatch, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the batch's decision dates and columns of its assets in the panel an oracle holds.

    Oracles read a panel's future, so they must be backtested on that very panel: the same dates
    and names are not enough (another seed of a simulator has them too), so the returns into each
    decision date must be the panel's own.

    Returns
    -------
    rows : ndarray of shape (D,)
    columns : ndarray of shape (n,)

    Raises
    ------
    DataError
        Naming the first date, asset or return that is not the panel's.
    """
    # Dates, not batch.indices: a batch built from a single Window counts rows inside it.
    rows = panel.dates.get_indexer(pd.DatetimeIndex(batch.dates))
    lookup = {a: i for i, a in enumerate(panel.assets)}
    columns = np.array([lookup.get(a, -1) for a in batch.assets], dtype=np.int64)
    fix = f"build {owner} with the panel being backtested"
    if (rows < 0).any() or (columns < 0).any():
        what = (
            f"date {batch.dates[int(np.argmax(rows < 0))].date()}"
            if (rows < 0).any()
            else f"asset {batch.assets[int(np.argmax(columns < 0))]!r}"
        )
        raise DataError(f"{owner}: {what} is not in the oracle's panel ({panel.source}); {fix}")
    seen = batch.returns[:, -1, :]
    own = panel.returns[rows][:, columns]
    if not np.array_equal(seen, own, equal_nan=True):
        d = int(np.argmax(~((seen == own) | (np.isnan(seen) & np.isnan(own))).all(axis=1)))
        raise DataError(
            f"{owner}: the returns on {batch.dates[d].date()} differ from those of the oracle's "
            f"panel ({panel.source}); {fix}"
        )
    return rows, columns
