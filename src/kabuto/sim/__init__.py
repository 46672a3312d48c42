"""Synthetic markets that come out as the same `Panel` as real data.

Monte Carlo paths as torch tensors for derivatives work live in `kabuto.sim.paths` (not imported
here, so that ``import kabuto.sim`` does not load torch).
"""

from kabuto.sim.factor_market import FactorMarket, factor_market
from kabuto.sim.processes import correlated_gbm, garch_panel, mean_reverting_prices

__all__ = [
    "FactorMarket",
    "correlated_gbm",
    "factor_market",
    "garch_panel",
    "mean_reverting_prices",
]
