"""Profit and loss of a discretely rebalanced hedge of a short claim, with proportional costs.

Conventions (prices are discounted, i.e. the rate is zero or already taken out):

* ``prices`` S has shape (N, T + 1) for one asset or (N, T + 1, d) for d assets: the prices at
  the T + 1 dates ``t = 0, ..., T`` of N paths.
* ``positions`` delta has shape (N, T) or (N, T, d): ``delta_t`` is the holding chosen at date
  ``t = 0, ..., T - 1`` (knowing prices up to ``S_t``) and held over ``[t, t + 1]``.
* The hedger starts with no holding (``delta_{-1} = 0``), is short the claim, and pays a
  proportional cost ``c`` times the traded value ``|delta_t - delta_{t-1}| |S_t|`` on every
  rebalance, including the first purchase, and, with ``unwind=True`` (default), also to unwind
  the last holding at maturity, ``c |delta_{T-1}| |S_T|``: a cash-settled claim leaves the
  hedger flat at T. (An instrument such as a swap may be worth less than 0: trading it still
  costs, where a signed price would pay the hedger to churn.) Pass ``unwind=False`` for the
  convention of pfhedge and Buehler et al. (2019), where the final holding is marked at
  ``S_T`` without cost.

Then, per path::

    pnl = sum_t delta_t (S_{t+1} - S_t)                      (gains)
          - c sum_t |delta_t - delta_{t-1}| |S_t|  [- c |delta_{T-1}| |S_T|]   (costs)
          - payoff,

summed over assets as well for d > 1. Everything is a torch expression, differentiable in the
positions (and the prices), and vectorised over paths.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from kabuto.errors import ConfigError

__all__ = ["HedgeResult", "hedge_pnl", "trades"]


@dataclass(frozen=True)
class HedgeResult:
    """A hedge and its outcome on every path (inspectable outputs of a hedger).

    Attributes
    ----------
    positions : Tensor
        Holdings chosen at t = 0..T-1. Shape: (N, T) or (N, T, d).
    pnl : Tensor
        ``gains - costs - payoff`` per path. Shape: (N,).
    costs : Tensor
        Transaction costs paid per path (>= 0). Shape: (N,).
    gains : Tensor
        Trading gains ``sum_t delta_t (S_{t+1} - S_t)`` per path. Shape: (N,).
    payoff : Tensor
        The claim's payoff per path (the hedger is short it). Shape: (N,).
    """

    positions: Tensor
    pnl: Tensor
    costs: Tensor
    gains: Tensor
    payoff: Tensor

    @classmethod
    def evaluate(
        cls,
        prices: Tensor,
        positions: Tensor,
        payoff: Tensor,
        cost: float | Tensor = 0.0,
        unwind: bool = True,
    ) -> HedgeResult:
        """The result of holding `positions` on `prices` against `payoff` (see `hedge_pnl`)."""
        owner = "HedgeResult.evaluate"
        s, held, payoff, cost = _check(owner, prices, positions, payoff, cost, unwind)
        gains, costs = _gains_and_costs(s, held, cost, unwind)
        return cls(positions, gains - costs - payoff, costs, gains, payoff)


def hedge_pnl(
    prices: Tensor,
    positions: Tensor,
    payoff: Tensor,
    cost: float | Tensor = 0.0,
    unwind: bool = True,
) -> Tensor:
    """P&L per path of hedging a short claim: gains minus costs minus payoff.

    See the module docstring for the timing and cost conventions.

    Parameters
    ----------
    prices : Tensor
        Prices at t = 0..T. Shape: (N, T + 1) or (N, T + 1, d).
    positions : Tensor
        Holdings chosen at t = 0..T-1. Shape: (N, T) or (N, T, d), matching `prices`.
    payoff : Tensor
        The claim's payoff per path. Shape: (N,).
    cost : float or Tensor, default 0.0
        Proportional cost rate c >= 0 (a fraction of the traded value), or one per asset, a
        tensor of shape (d,).
    unwind : bool, default True
        Also pay ``c |delta_{T-1}| |S_T|`` to unwind the final holding at maturity.

    Returns
    -------
    Tensor
        P&L per path. Shape: (N,).
    """
    prices, positions, payoff, cost = _check("hedge_pnl", prices, positions, payoff, cost, unwind)
    gains, costs = _gains_and_costs(prices, positions, cost, unwind)
    return gains - costs - payoff


def trades(positions: Tensor, unwind: bool) -> Tensor:
    """Units traded at each date, ``|delta_t - delta_{t-1}|`` from ``delta_{-1} = 0`` and, with
    `unwind`, back to 0 at maturity: the trades the proportional cost is charged on.

    Shape: input (N, T, ...); output (N, T + 1, ...) with `unwind`, else (N, T, ...).
    """
    if not isinstance(positions, Tensor) or positions.ndim < 2:
        got = tuple(positions.shape) if isinstance(positions, Tensor) else type(positions).__name__
        raise ConfigError(f"trades: positions must be a tensor of shape (N, T, ...), got {got}")
    if not isinstance(unwind, bool):
        raise ConfigError(f"trades: unwind={unwind!r} is not allowed; use True or False")
    zero = torch.zeros_like(positions[:, :1])
    held = [zero, positions, zero] if unwind else [zero, positions]
    return torch.cat(held, dim=1).diff(dim=1).abs()


def _gains_and_costs(
    prices: Tensor, positions: Tensor, cost: float | Tensor, unwind: bool
) -> tuple[Tensor, Tensor]:
    """Gains and costs per path; inputs already checked and shaped (N, T + 1, d), (N, T, d)."""
    gains = (positions * prices.diff(dim=1)).sum(dim=(1, 2))
    if isinstance(cost, float) and cost == 0.0:
        return gains, torch.zeros_like(gains)
    traded_value = trades(positions, unwind) * (prices if unwind else prices[:, :-1]).abs()
    return gains, (traded_value * cost).sum(dim=(1, 2))


def _check(
    owner: str, prices: object, positions: object, payoff: object, cost: object, unwind: object
) -> tuple[Tensor, Tensor, Tensor, float | Tensor]:
    """Arguments as (N, T + 1, d) prices, (N, T, d) positions, (N,) payoff and a cost."""
    if not isinstance(unwind, bool):
        raise ConfigError(f"{owner}: unwind={unwind!r} is not allowed; use True or False")
    for name, value in (("prices", prices), ("positions", positions), ("payoff", payoff)):
        if not isinstance(value, Tensor) or not value.is_floating_point():
            got = f"dtype {value.dtype}" if isinstance(value, Tensor) else repr(type(value))
            raise ConfigError(f"{owner}: {name} must be a floating-point torch.Tensor, got {got}")
    assert isinstance(prices, Tensor) and isinstance(positions, Tensor)
    assert isinstance(payoff, Tensor)
    if prices.ndim not in (2, 3) or prices.shape[0] == 0 or prices.shape[1] < 2:
        raise ConfigError(
            f"{owner}: prices has shape {tuple(prices.shape)}; it must be (N, T + 1) or "
            "(N, T + 1, d) with N >= 1 and T >= 1"
        )
    n, steps = prices.shape[0], prices.shape[1] - 1
    expected = (n, steps, *prices.shape[2:])
    if tuple(positions.shape) != expected:
        raise ConfigError(
            f"{owner}: positions has shape {tuple(positions.shape)}; for prices of shape "
            f"{tuple(prices.shape)} it must be {expected}"
        )
    if tuple(payoff.shape) != (n,):
        raise ConfigError(
            f"{owner}: payoff has shape {tuple(payoff.shape)}; it must be ({n},), one per path"
        )
    if not bool(prices.isfinite().all()):  # NaN P&L and risk otherwise, silently
        path, date = (int(i) for i in (~prices.isfinite()).nonzero()[0][:2])
        raise ConfigError(f"{owner}: prices[{path}, {date}] is not finite; pass finite prices")
    if prices.ndim == 2:
        prices, positions = prices.unsqueeze(-1), positions.unsqueeze(-1)
    d = prices.shape[2]
    if isinstance(cost, Tensor):
        if (
            cost.ndim > 1
            or cost.numel() not in (1, d)
            or bool((cost < 0).any())
            or not bool(cost.isfinite().all())
        ):
            raise ConfigError(
                f"{owner}: cost must be a number >= 0 or a tensor of {d} costs >= 0, got a "
                f"tensor of shape {tuple(cost.shape)}"
            )
        return prices, positions, payoff, cost.to(dtype=prices.dtype, device=prices.device)
    if (
        isinstance(cost, bool)
        or not isinstance(cost, numbers.Real)
        or not math.isfinite(float(cost))
        or float(cost) < 0
    ):
        raise ConfigError(f"{owner}: cost={cost!r} is not allowed; use a finite number >= 0")
    return prices, positions, payoff, float(cost)
