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

__all__ = [
    "LSMResult",
    "black_scholes_delta",
    "black_scholes_gamma",
    "black_scholes_price",
    "black_scholes_vega",
    "geometric_basket_price",
    "heston_price",
    "longstaff_schwartz",
    "margrabe_price",
    "merton_price",
]
