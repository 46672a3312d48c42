"""Proportional transaction costs on traded notional (DESIGN.md, "Weights and costs")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from kabuto.errors import ConfigError


def cost_rates(costs_bps: float | Mapping[str, float], assets: Sequence[str]) -> np.ndarray:
    """Per-asset cost rates as fractions of traded notional (10 bps -> 0.001).

    Parameters
    ----------
    costs_bps : float or mapping
        One rate in basis points for every asset, or a mapping asset -> bps with an optional
        ``"default"`` entry for the assets it does not name.
    assets : sequence of str
        The panel's assets, in order.
    """
    if isinstance(costs_bps, Mapping):
        unknown = sorted(set(costs_bps) - set(assets) - {"default"})
        if unknown:
            raise ConfigError(
                f"costs_bps names unknown asset(s) {unknown}; use asset names from the data "
                f"or 'default'"
            )
        missing = [a for a in assets if a not in costs_bps]
        if missing and "default" not in costs_bps:
            raise ConfigError(
                f"costs_bps has no rate for {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                "add them or a 'default' rate"
            )
        bps = [costs_bps.get(a, costs_bps.get("default")) for a in assets]
    else:
        bps = [costs_bps] * len(assets)
    for asset, value in zip(assets, bps, strict=True):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"costs_bps for {asset!r} = {value!r}: expected a number of bps")
        if value < 0:
            raise ConfigError(f"costs_bps for {asset!r} = {value}: costs cannot be negative")
    return np.asarray(bps, dtype=np.float64) * 1e-4


def trade_cost(rates: np.ndarray, target: np.ndarray, drifted: np.ndarray) -> float:
    """Cost of trading from `drifted` to `target` weights: sum_i c_i |w_target - w_drifted|."""
    return float(rates @ np.abs(target - drifted))
