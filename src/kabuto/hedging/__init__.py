"""Derivatives: reference pricers now; deep hedging and deep BSDE build on them."""

from kabuto.hedging.american import LSMResult, longstaff_schwartz
from kabuto.hedging.closed_form import (
    black_scholes_delta,
    black_scholes_gamma,
    black_scholes_price,
    black_scholes_vega,
    geometric_basket_price,
    heston_price,
    margrabe_price,
    merton_price,
)
from kabuto.hedging.hedger import (
    BlackScholesDelta,
    DeepHedger,
    HedgeFeatures,
    HedgePolicy,
    MLPPolicy,
    NoTransactionBandPolicy,
    RecurrentPolicy,
    WhalleyWilmott,
    band_rollout,
    hedge_features,
    hedge_with,
)
from kabuto.hedging.pnl import HedgeResult, hedge_pnl
from kabuto.hedging.risk import (
    OCERisk,
    cvar_loss,
    entropic_loss,
    entropic_risk,
    expected_shortfall,
    oce,
)

__all__ = [
    "BlackScholesDelta",
    "DeepHedger",
    "HedgeFeatures",
    "HedgePolicy",
    "HedgeResult",
    "LSMResult",
    "MLPPolicy",
    "NoTransactionBandPolicy",
    "OCERisk",
    "RecurrentPolicy",
    "WhalleyWilmott",
    "band_rollout",
    "black_scholes_delta",
    "black_scholes_gamma",
    "black_scholes_price",
    "black_scholes_vega",
    "cvar_loss",
    "entropic_loss",
    "entropic_risk",
    "expected_shortfall",
    "geometric_basket_price",
    "hedge_features",
    "hedge_pnl",
    "hedge_with",
    "heston_price",
    "longstaff_schwartz",
    "margrabe_price",
    "merton_price",
    "oce",
]
