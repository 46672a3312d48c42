"""The demo run: every classical strategy on the bundled S&P 500 data, 2000-2022."""

from __future__ import annotations

from kabuto.experiment.config import RunConfig, parse_config

DEMO = {
    "data": {"source": "sp500"},
    "backtest": {
        "start": "2000-01-03",
        "rebalance": "monthly",
        "retrain": "yearly",
        "costs_bps": 10.0,
        # A long-short book of gross leverage 1 for the eigen portfolio; every other strategy
        # is declared long-only and held to it.
        "long_only": False,
        "max_leverage": 1.0,
    },
    "report": {
        "title": "kabuto demo: classical strategies on 20 S&P 500 stocks, 2000-2022",
        "benchmark_strategy": "EqualWeight",
    },
    "strategies": [
        {"name": "equal_weight"},
        {"name": "buy_and_hold"},
        {"name": "inverse_volatility"},
        {"name": "min_variance"},
        {"name": "min_variance", "covariance": "ledoit_wolf", "label": "MinimumVariance (LW)"},
        {"name": "mean_variance"},
        {"name": "max_sharpe"},
        {"name": "max_sortino"},
        {"name": "risk_parity"},
        {"name": "hrp"},
        {"name": "eigen"},
    ],
}


def demo_config() -> RunConfig:
    """The demo's config: one-year lookback, monthly rebalancing, 10 bps costs."""
    return parse_config(DEMO, source="demo")
