"""The oracle's score on a synthetic factor market: the yardstick for learned strategies.

Every learned strategy is scored as a fraction of the oracle's net Sharpe ratio on fresh seeds,
in the same engine, with the same timing and costs.
"""

from __future__ import annotations

import pandas as pd

from kabuto.backtest.engine import WalkForward
from kabuto.evaluation.metrics import sharpe
from kabuto.sim.factor_market import FactorMarket
from kabuto.strategies.oracle import ResidualOracle


def oracle_sharpe(
    market: FactorMarket,
    *,
    costs_bps: float = 10.0,
    rebalance: int | str = 1,
    start: str | pd.Timestamp | None = None,
    lookback: int = 252,
) -> float:
    """The oracle's annualized net Sharpe ratio in kabuto's walk-forward backtest.

    Same engine, timing and costs as every learned strategy: decide at the close of t, earn
    t -> t+1, pay ``costs_bps`` on traded notional, long-short with ``max_leverage = 1``.

    Parameters
    ----------
    market : FactorMarket
    costs_bps : float, default 10.0
    rebalance : int or str, default 1 (daily)
    start : date-like, optional
        First decision date (default: after ``lookback`` returns); pass a learned strategy's
        start to compare on the same dates.
    lookback : int, default 252
        The oracle's declared lookback (it sets the default start).

    Returns
    -------
    float
        ``kabuto.evaluation.metrics.sharpe`` of the daily net returns.
    """
    engine = WalkForward(
        start=start,
        rebalance=rebalance,
        retrain=None,
        costs_bps=costs_bps,
        long_only=False,
        max_leverage=1.0,
    )
    oracle = ResidualOracle(market, lookback=lookback)
    result = engine.run(market.panel, [oracle])
    return sharpe(result.strategies[oracle.name].net_returns)
