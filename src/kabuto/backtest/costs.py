"""Proportional transaction costs on traded notional (DESIGN.md, "Weights and costs")."""

from __future__ import annotations

import numpy as np

from kabuto.costs import cost_rates

__all__ = ["cost_rates", "trade_cost"]


def trade_cost(rates: np.ndarray, target: np.ndarray, drifted: np.ndarray) -> float:
    """Cost of trading from `drifted` to `target` weights: sum_i c_i |w_target - w_drifted|."""
    return float(rates @ np.abs(target - drifted))
