"""Pluggable traders: agents whose decisions come from Python (a callable or a torch model).

A ``type = "policy"`` agent group (`kabuto.sim.artificial.config.PolicyGroup`) trades inside the
simulated market with decisions from a function given to `simulate`::

    def policy(obs: Observation) -> Order | None: ...

    simulate(config, policies={"AI": policy})

Every ``every`` steps each agent of the group gets an `Observation` at the start of step t
(closes up to t - 1, the fundamental price of t, the last best quotes, its cash and position)
and may return one `Order`: a limit order at ``price`` (rounded down to the tick for a buy, up
for a sell) or a market order (``price=None``). The order enters the book at step t before the
FCN agents act, so a kabuto strategy or predictor can trade inside the market. Between decisions
the compiled loop runs on its own; the Python calls are the only slow part.

`predictor_policy` turns any return predictor (a torch module or a plain function of the last
log returns) into such a policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kabuto.errors import ConfigError
from kabuto.settings import is_integer, is_real
from kabuto.sim.artificial.config import MAX_WHOLE

__all__ = ["Observation", "Order", "Policy", "predictor_policy"]


@dataclass(frozen=True)
class Observation:
    """What a policy agent sees at the start of step `step` (nothing from `step` on).

    Attributes
    ----------
    step : int
    agent : int
        The agent's index within its group.
    market : str
    closes : ndarray of shape (step,)
        The market's closes up to step - 1 (read-only).
    fundamental : float
        The fundamental price of `step`.
    best_bid, best_ask : float
        Best quotes at the close of step - 1 (NaN when that side was empty).
    cash : float
    position : int
        Units held in `market`.
    tick_size : float
    """

    step: int
    agent: int
    market: str
    closes: np.ndarray
    fundamental: float
    best_bid: float
    best_ask: float
    cash: float
    position: int
    tick_size: float


@dataclass(frozen=True)
class Order:
    """A policy's order: ``side`` "buy" or "sell", ``volume`` units, limit ``price`` or None."""

    side: Literal["buy", "sell"]
    volume: int = 1
    price: float | None = None


Policy = Callable[[Observation], Order | None]


def check_order(order: object, where: str) -> Order | None:
    """The policy's answer, checked; a `ConfigError` names the group and step otherwise."""
    if order is None:
        return None
    if not isinstance(order, Order):
        raise ConfigError(f"{where}: the policy returned {order!r}; return an Order or None")
    if order.side not in ("buy", "sell"):
        raise ConfigError(f"{where}: Order.side = {order.side!r}; use 'buy' or 'sell'")
    # numpy integers too (a model's output); the engine holds volumes as float64
    if not (is_integer(order.volume) and 1 <= order.volume <= MAX_WHOLE):
        raise ConfigError(
            f"{where}: Order.volume = {order.volume!r}; use a positive integer up to 2**53"
        )
    if order.price is not None and not (is_real(order.price) and order.price > 0):
        raise ConfigError(
            f"{where}: Order.price = {order.price!r}; use a positive price, or None for a "
            "market order"
        )
    price = None if order.price is None else float(order.price)
    return Order(order.side, int(order.volume), price)


def predictor_policy(
    model: Callable, *, window: int = 20, threshold: float = 0.0, volume: int = 1
) -> Policy:
    """A policy that trades the sign of a return forecast with market orders.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps the last `window` log returns of the closes, shape (1, window) (a float32 tensor
        for a torch module, else a numpy array), to a forecast of the next return (any shape
        holding one number).
    window : int, default 20
    threshold : float, default 0.0
        Buy when the forecast exceeds it, sell when it is below minus it, else do nothing.
    volume : int, default 1
    """
    whole = is_integer(window) and is_integer(volume) and is_real(threshold)
    if not (whole and window >= 1 and threshold >= 0 and 1 <= volume <= MAX_WHOLE):
        raise ConfigError(
            f"window = {window!r}, threshold = {threshold!r}, volume = {volume!r}: need integers "
            "window >= 1 and 1 <= volume <= 2**53, and a number threshold >= 0"
        )
    window, volume = int(window), int(volume)

    def policy(obs: Observation) -> Order | None:
        if len(obs.closes) < window + 1:
            return None
        returns = np.diff(np.log(obs.closes[-window - 1 :]))[None, :]
        forecast = _forecast(model, returns)
        if forecast > threshold:
            return Order("buy", volume)
        if forecast < -threshold:
            return Order("sell", volume)
        return None

    return policy


def _forecast(model: Callable, returns: np.ndarray) -> float:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(model, torch.nn.Module):
        with torch.no_grad():
            out = model(torch.as_tensor(returns, dtype=torch.float32))
        return float(out.reshape(-1)[0])
    return float(np.asarray(model(returns)).reshape(-1)[0])
