"""Synthetic markets that come out as the same `Panel` as real data."""

from kabuto.sim.factor_market import FactorMarket, factor_market
from kabuto.sim.processes import correlated_gbm, garch_panel, mean_reverting_prices

__all__ = [
    "FactorMarket",
    "correlated_gbm",
    "factor_market",
    "garch_panel",
    "mean_reverting_prices",
]
