"""Strategy names used in configs, and `make_strategy` to build one from a name and settings."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping

from kabuto.errors import ConfigError
from kabuto.strategies.base import Strategy

__all__ = ["STRATEGIES", "make_strategy"]

# Config name -> class name in `kabuto.strategies`, which imports a strategy's module on first
# use: a backtest of classical strategies built from a config loads no torch (nor SB3).
_CLASS_NAMES = {
    "equal_weight": "EqualWeight",
    "inverse_volatility": "InverseVolatility",
    "buy_and_hold": "BuyAndHold",
    "min_variance": "MinimumVariance",
    "mean_variance": "MeanVariance",
    "max_sharpe": "MaximumSharpe",
    "max_sortino": "MaximumSortino",
    "risk_parity": "EqualRiskContribution",
    "hrp": "HierarchicalRiskParity",
    "eigen": "EigenPortfolio",
    "deep_residual": "DeepResidual",
    "residual_reversal": "ResidualReversal",
    "residual_momentum": "ResidualMomentum",
    "trader_company": "TraderCompanyStrategy",
    "eg": "ExponentiatedGradient",
    "olmar": "OLMAR",
    "pamr": "PAMR",
    "eiie": "EIIE",
    "rl_agent": "RLAgent",
    "skfolio": "SklearnPortfolio",
}


class _Registry(Mapping[str, type[Strategy]]):
    """The registered strategy classes by config name, each imported when looked up."""

    def __getitem__(self, name: str) -> type[Strategy]:
        return getattr(importlib.import_module("kabuto.strategies"), _CLASS_NAMES[name])

    def __iter__(self) -> Iterator[str]:
        return iter(_CLASS_NAMES)

    def __len__(self) -> int:
        return len(_CLASS_NAMES)


STRATEGIES: Mapping[str, type[Strategy]] = _Registry()


def _parameters(cls: type[Strategy]) -> dict[str, inspect.Parameter]:
    signature = inspect.signature(cls.__init__)
    return {k: p for k, p in signature.parameters.items() if k != "self"}


def takes_setting(name: str, setting: str) -> bool:
    """Whether the strategy registered under `name` has a setting of that name."""
    return name in STRATEGIES and setting in _parameters(STRATEGIES[name])


def make_strategy(name: str, **params: object) -> Strategy:
    """Build the strategy registered under `name` with the given settings.

    Parameters
    ----------
    name : str
        One of `STRATEGIES` (e.g. "min_variance", "hrp").
    **params
        Constructor settings of that strategy (e.g. ``lookback=126, covariance="ledoit_wolf"``).

    Raises
    ------
    ConfigError
        Unknown name, unknown or missing setting (the message lists the allowed ones), or a bad
        value.
    """
    if name not in STRATEGIES:
        raise ConfigError(
            f"unknown strategy {name!r}; use one of " + ", ".join(repr(k) for k in STRATEGIES)
        )
    cls = STRATEGIES[name]
    allowed = _parameters(cls)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"strategy {name!r} has no parameter(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}"
        )
    missing = [
        k for k, p in allowed.items() if p.default is inspect.Parameter.empty and k not in params
    ]
    if missing:
        raise ConfigError(
            f"strategy {name!r} needs parameter(s) {', '.join(map(repr, missing))}; "
            f"allowed: {', '.join(allowed)}"
        )
    return cls(**params)
