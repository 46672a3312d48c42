"""Commission rates as one convention for the backtest and the RL environment (DESIGN.md,
"Weights and costs"): ``costs_bps`` is one rate in basis points for every asset, or a mapping
asset -> bps with an optional ``"default"``. A leaf module, so that every layer can use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from kabuto.errors import ConfigError

__all__ = ["MAX_COSTS_BPS", "cost_rates"]

# At 5000 bps a full switch between two assets (selling 100% and buying 100%) costs everything.
MAX_COSTS_BPS = 5000.0


def cost_rates(costs_bps: float | Mapping[str, float], assets: Sequence[str]) -> np.ndarray:
    """Per-asset cost rates as fractions of traded notional (10 bps -> 0.001).

    Same convention as the backtest's ``costs_bps``: one rate for every asset, or a mapping
    asset -> bps with an optional ``"default"`` entry for the assets it does not name.

    Parameters
    ----------
    costs_bps : float or mapping
        Rates in basis points, each in [0, 5000). Zero must be given explicitly.
    assets : sequence of str
        Asset names, in order.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ConfigError
        For a missing, unknown, negative, non-numeric or too large rate.
    """
    if costs_bps is None:
        raise ConfigError(
            "costs_bps = None: give a commission in basis points (e.g. 10); pass 0 explicitly "
            "for a frictionless market"
        )
    if isinstance(costs_bps, Mapping):
        unknown = sorted(set(costs_bps) - set(assets) - {"default"})
        if unknown:
            raise ConfigError(
                f"costs_bps names unknown asset(s) {unknown}; use asset names from the panel "
                "or 'default'"
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
            or not isinstance(value, int | float | np.integer | np.floating)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"costs_bps for {asset!r} = {value!r}: expected a number of bps")
        if value < 0:
            raise ConfigError(f"costs_bps for {asset!r} = {value}: costs cannot be negative")
        if value >= MAX_COSTS_BPS:
            raise ConfigError(
                f"costs_bps for {asset!r} = {value}: expected a rate in [0, {MAX_COSTS_BPS:g}) "
                "bps (a full switch between two assets would cost all the wealth)"
            )
    return np.asarray(bps, dtype=np.float64) * 1e-4
