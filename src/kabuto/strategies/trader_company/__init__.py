"""The Trader-Company method (Ito et al., AAMAS 2021) and its uncertainty-aware variant (UTC).

`TraderCompany` evolves a population of interpretable formula Traders on pooled per-asset
features and aggregates their predictions; `formulas` holds the operator and activation tables,
the population arrays and the vectorised evaluation of every (trader, term) pair.
"""

from kabuto.strategies.trader_company.company import (
    AGGREGATIONS,
    TraderCompany,
    TraderSummary,
    ridge_weights,
)
from kabuto.strategies.trader_company.formulas import (
    ACTIVATIONS,
    OPERATORS,
    Population,
    evaluate_terms,
    format_formula,
    format_term,
    lag_features,
    random_population,
)
from kabuto.strategies.trader_company.strategy import (
    FEATURES,
    SIZINGS,
    TraderCompanyStrategy,
    return_features,
)

__all__ = [
    "ACTIVATIONS",
    "AGGREGATIONS",
    "FEATURES",
    "OPERATORS",
    "SIZINGS",
    "Population",
    "TraderCompany",
    "TraderCompanyStrategy",
    "TraderSummary",
    "evaluate_terms",
    "format_formula",
    "format_term",
    "lag_features",
    "random_population",
    "return_features",
    "ridge_weights",
]
