"""Derivatives: reference pricers, deep hedging (also with instruments, adversarial), deep BSDE.

The `kabuto hedge` command's config and run live in `kabuto.experiment.hedge_config` and
`kabuto.experiment.hedge`, its report in `kabuto.report.hedging`.
"""

from kabuto.hedging.adversarial import AdversarialHedger, PathGenerator
from kabuto.hedging.american import LSMResult, basket_longstaff_schwartz, longstaff_schwartz
from kabuto.hedging.basket import BasketMCResult, arithmetic_basket_price
from kabuto.hedging.bsde import DeepBSDE
from kabuto.hedging.bsde_backward import BackwardDeepBSDE
from kabuto.hedging.bsde_hedging import BSDEHedgeResult, bsde_delta_hedge, hedging_cvar
from kabuto.hedging.bsde_problems import (
    AllenCahnProblem,
    AmericanBasketPutProblem,
    ArithmeticBasketProblem,
    BSDEProblem,
    DefaultRiskProblem,
    GeometricBasketProblem,
    HJBProblem,
    hjb_reference,
)
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
from kabuto.hedging.instruments import variance_swap_prices
from kabuto.hedging.kan import KAN, KANLayer
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
    "KAN",
    "AdversarialHedger",
    "AllenCahnProblem",
    "AmericanBasketPutProblem",
    "ArithmeticBasketProblem",
    "BSDEHedgeResult",
    "BSDEProblem",
    "BackwardDeepBSDE",
    "BasketMCResult",
    "BlackScholesDelta",
    "DeepBSDE",
    "DeepHedger",
    "DefaultRiskProblem",
    "GeometricBasketProblem",
    "HJBProblem",
    "HedgeFeatures",
    "HedgePolicy",
    "HedgeResult",
    "KANLayer",
    "LSMResult",
    "MLPPolicy",
    "NoTransactionBandPolicy",
    "OCERisk",
    "PathGenerator",
    "RecurrentPolicy",
    "WhalleyWilmott",
    "arithmetic_basket_price",
    "band_rollout",
    "basket_longstaff_schwartz",
    "black_scholes_delta",
    "black_scholes_gamma",
    "black_scholes_price",
    "black_scholes_vega",
    "bsde_delta_hedge",
    "cvar_loss",
    "entropic_loss",
    "entropic_risk",
    "expected_shortfall",
    "geometric_basket_price",
    "hedge_features",
    "hedge_pnl",
    "hedge_with",
    "hedging_cvar",
    "heston_price",
    "hjb_reference",
    "longstaff_schwartz",
    "margrabe_price",
    "merton_price",
    "oce",
    "variance_swap_prices",
]
