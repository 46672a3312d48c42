"""Allocation policies behind one protocol (`Strategy`); classical ones batched over dates.

`make_strategy(name, **params)` builds one from a config name (see `STRATEGIES`).
"""

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
