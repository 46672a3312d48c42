"""The leak canary (DESIGN.md, "Timing").

On a market whose next-day returns are zero-mean noise independent of the past, no strategy that
decides with data <= t can earn a Sharpe ratio different from zero except by chance. Running a
strategy there and finding a significant Sharpe means it saw the future. Use it on your own
strategies: ``leak_canary([MyStrategy()])``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from kabuto.backtest.engine import WalkForward, is_long_only, name_strategies
from kabuto.data.panel import Panel
from kabuto.strategies.base import Strategy


def noise_panel(n_assets: int, n_days: int, *, seed: int | np.random.Generator = 0) -> Panel:
    """Prices whose daily returns are iid, zero-mean, fat-tailed (Student t, 4 dof, 1% scale)."""
    rng = np.random.default_rng(seed)
    returns = 0.01 * rng.standard_t(4, size=(n_days - 1, n_assets)) / np.sqrt(2.0)
    prices = 100.0 * np.cumprod(np.vstack([np.ones(n_assets), 1.0 + returns]), axis=0)
    dates = pd.bdate_range("2000-01-03", periods=n_days)
    frame = pd.DataFrame(prices, index=dates, columns=[f"N{i:02d}" for i in range(n_assets)])
    return Panel(frame, source=f"leak canary noise (t4, seed={seed})")


def leak_canary(
    strategies: Sequence[Strategy],
    *,
    n_assets: int = 10,
    n_days: int = 3000,
    seed: int = 0,
    rebalance: int | str = 1,
    z_threshold: float = 4.0,
) -> pd.DataFrame:
    """Backtest strategies on noise, rebalancing daily; flag any significant Sharpe ratio.

    Daily decisions give a leak the most chances to show.

    Costs are zero here on purpose: they would push every Sharpe below zero, and the canary
    tests information, not cost drag. The z-score uses Lo's (2002) iid standard error of the
    daily Sharpe ratio, sqrt((1 + SR^2 / 2) / T).

    Returns
    -------
    DataFrame indexed by strategy name with columns sharpe (annualized), z and leaked (bool).

    Raises
    ------
    ConfigError
        If two strategies share a name, even one long-only and one long-short (they would
        share a row of the report).
    """
    named = name_strategies(strategies)
    panel = noise_panel(n_assets, n_days, seed=seed)
    rows = {}
    for long_only in (True, False):  # long-only strategies in a long-only book, others not
        group = {n: s for n, s in named.items() if is_long_only(s) == long_only}
        if not group:
            continue
        engine = WalkForward(rebalance=rebalance, costs_bps=0.0, long_only=long_only)
        result = engine.run(panel, group)
        for name, record in result.strategies.items():
            r = record.gross_returns.to_numpy()
            sd = r.std(ddof=1)
            daily = r.mean() / sd if sd > 0 else 0.0
            z = daily / np.sqrt((1.0 + daily**2 / 2.0) / len(r))
            rows[name] = {
                "sharpe": daily * np.sqrt(252),
                "z": z,
                "leaked": bool(abs(z) > z_threshold),
            }
    return pd.DataFrame.from_dict(rows, orient="index")
