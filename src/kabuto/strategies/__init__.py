"""Allocation policies behind one protocol (`Strategy`); classical ones batched over dates.

`make_strategy(name, **params)` builds one from a config name (see `STRATEGIES`).
"""

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use (PEP 562): `kabuto.strategies.base`, which the backtest engine needs,
# then loads without torch, stable-baselines3 and the rest (seconds and hundreds of MiB).
_HOMES = {
    "Strategy": "base",
    "BatchedStrategy": "batched",
    "DeepResidual": "deep_residual",
    "EigenPortfolio": "eigen",
    "HierarchicalRiskParity": "hrp",
    "MaximumSharpe": "mean_variance",
    "MaximumSortino": "mean_variance",
    "MeanVariance": "mean_variance",
    "MinimumVariance": "mean_variance",
    "BuyAndHold": "naive",
    "EqualWeight": "naive",
    "InverseVolatility": "naive",
    "OLMAR": "olps",
    "PAMR": "olps",
    "BestStockOracle": "olps",
    "ExponentiatedGradient": "olps",
    "ResidualOracle": "oracle",
    "STRATEGIES": "registry",
    "make_strategy": "registry",
    "ResidualMomentum": "residual_baselines",
    "ResidualReversal": "residual_baselines",
    "EqualRiskContribution": "risk_parity",
    "RLAgent": "rl.agents",
    "EIIE": "rl.eiie",
    "SklearnPortfolio": "sklearn_adapter",
    "TraderCompanyStrategy": "trader_company",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


if TYPE_CHECKING:
    from kabuto.strategies.base import Strategy
    from kabuto.strategies.batched import BatchedStrategy
    from kabuto.strategies.deep_residual import DeepResidual
    from kabuto.strategies.eigen import EigenPortfolio
    from kabuto.strategies.hrp import HierarchicalRiskParity
    from kabuto.strategies.mean_variance import (
        MaximumSharpe,
        MaximumSortino,
        MeanVariance,
        MinimumVariance,
    )
    from kabuto.strategies.naive import BuyAndHold, EqualWeight, InverseVolatility
    from kabuto.strategies.olps import OLMAR, PAMR, BestStockOracle, ExponentiatedGradient
    from kabuto.strategies.oracle import ResidualOracle
    from kabuto.strategies.registry import STRATEGIES, make_strategy
    from kabuto.strategies.residual_baselines import ResidualMomentum, ResidualReversal
    from kabuto.strategies.risk_parity import EqualRiskContribution
    from kabuto.strategies.rl.agents import RLAgent
    from kabuto.strategies.rl.eiie import EIIE
    from kabuto.strategies.sklearn_adapter import SklearnPortfolio
    from kabuto.strategies.trader_company import TraderCompanyStrategy

__all__ = [
    "EIIE",
    "OLMAR",
    "PAMR",
    "STRATEGIES",
    "BatchedStrategy",
    "BestStockOracle",
    "BuyAndHold",
    "DeepResidual",
    "EigenPortfolio",
    "EqualRiskContribution",
    "EqualWeight",
    "ExponentiatedGradient",
    "HierarchicalRiskParity",
    "InverseVolatility",
    "MaximumSharpe",
    "MaximumSortino",
    "MeanVariance",
    "MinimumVariance",
    "RLAgent",
    "ResidualMomentum",
    "ResidualOracle",
    "ResidualReversal",
    "SklearnPortfolio",
    "Strategy",
    "TraderCompanyStrategy",
    "make_strategy",
]
