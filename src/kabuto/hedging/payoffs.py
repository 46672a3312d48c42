"""Payoffs of European-style derivatives evaluated on simulated price paths.

Each function maps a tensor of paths (as produced by `kabuto.sim.paths`) to one payoff per
path. They are built from ``clamp``, ``max``/``min``, ``exp`` and ``log``, so autograd flows
to the paths wherever the payoff is differentiable (everywhere but the kinks), which pathwise
Greeks and deep hedging losses rely on. Early exercise (Bermudan, American) is not handled
here.

Paths are indexed (path, time) for one asset or (path, time, asset) for several; time runs
over the ``T + 1`` monitoring dates including the initial one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from kabuto.errors import ConfigError
from kabuto.hedging.closed_form import _payoff_sign

__all__ = ["basket", "european", "exchange", "lookback"]

Kind = Literal["call", "put"]
Strike = float | Tensor


def european(paths: Tensor, strike: Strike, kind: Kind = "call") -> Tensor:
    """European call ``max(S_T - K, 0)`` or put ``max(K - S_T, 0)``.

    Parameters
    ----------
    paths : Tensor
        Prices of one asset. Shape: (N, T + 1) or (N, T + 1, 1).
    strike : float or Tensor
        Strike K: a number, or a tensor of shape () or (N,) for one strike per path.
    kind : {"call", "put"}, default "call"

    Returns
    -------
    Tensor
        Payoff per path. Shape: input (N, T + 1) or (N, T + 1, 1), output (N,).
    """
    owner = "european"
    prices = _single_asset(owner, paths)
    strike = _strike(owner, strike, prices.shape[0])
    terminal = prices[:, -1]
    if _is_call(owner, kind):
        return (terminal - strike).clamp(min=0.0)
    return (strike - terminal).clamp(min=0.0)


def lookback(paths: Tensor, strike: Strike | None = None, kind: Kind = "call") -> Tensor:
    """Lookback option on the running maximum or minimum over all monitoring dates.

    With a fixed ``strike`` K the call pays ``max(max_t S_t - K, 0)`` and the put
    ``max(K - min_t S_t, 0)``. With ``strike=None`` the strike floats: the call pays
    ``S_T - min_t S_t`` and the put ``max_t S_t - S_T`` (both non-negative). The extremes
    include the initial date.

    Parameters
    ----------
    paths : Tensor
        Prices of one asset. Shape: (N, T + 1) or (N, T + 1, 1).
    strike : float or Tensor, optional
        Fixed strike (a number, or a tensor of shape () or (N,)); None for a floating strike.
    kind : {"call", "put"}, default "call"

    Returns
    -------
    Tensor
        Payoff per path. Shape: input (N, T + 1) or (N, T + 1, 1), output (N,).
    """
    owner = "lookback"
    prices = _single_asset(owner, paths)
    call = _is_call(owner, kind)
    if strike is None:
        terminal = prices[:, -1]
        if call:
            return terminal - prices.min(dim=1).values
        return prices.max(dim=1).values - terminal
    strike = _strike(owner, strike, prices.shape[0])
    if call:
        return (prices.max(dim=1).values - strike).clamp(min=0.0)
    return (strike - prices.min(dim=1).values).clamp(min=0.0)


def basket(
    paths: Tensor,
    strike: Strike,
    weights: Sequence[float] | Tensor | None = None,
    kind: Kind = "call",
    average: Literal["arithmetic", "geometric"] = "arithmetic",
) -> Tensor:
    """Basket call ``max(B_T - K, 0)`` or put ``max(K - B_T, 0)`` on a weighted average.

    The basket is ``B_T = sum_i w_i S_{i,T}`` (arithmetic) or ``B_T = prod_i S_{i,T}^{w_i}``
    (geometric). By the weighted AM-GM inequality the geometric basket is at most the
    arithmetic one on positive prices, so its call is cheaper and its put dearer.

    Parameters
    ----------
    paths : Tensor
        Prices of d assets; the terminal ones must be positive for the geometric average.
        Shape: (N, T + 1, d).
    strike : float or Tensor
        Strike K: a number, or a tensor of shape () or (N,).
    weights : sequence of float or Tensor, optional
        Weights w of shape (d,); equal weights ``1 / d`` by default. For the geometric
        average they must be non-negative and sum to 1 (it is a weighted mean); the
        arithmetic basket takes any finite weights (negative ones make spreads).
    kind : {"call", "put"}, default "call"
    average : {"arithmetic", "geometric"}, default "arithmetic"

    Returns
    -------
    Tensor
        Payoff per path. Shape: input (N, T + 1, d), output (N,).
    """
    owner = "basket"
    _check_paths(owner, paths, "(N, T + 1, d)", lambda shape: len(shape) == 3)
    d = paths.shape[-1]
    geometric = _average(owner, average) == "geometric"
    call = _is_call(owner, kind)
    w = _weights(owner, weights, d, paths, geometric=geometric)
    strike = _strike(owner, strike, paths.shape[0])
    terminal = paths[:, -1, :]
    if geometric:
        _check_positive_prices(owner, terminal)
    # The geometric mean as exp of the weighted mean log keeps the product from overflowing.
    level = torch.exp(torch.log(terminal) @ w) if geometric else terminal @ w
    if call:
        return (level - strike).clamp(min=0.0)
    return (strike - level).clamp(min=0.0)


def exchange(paths: Tensor) -> Tensor:
    """Exchange option (Margrabe): the right to swap asset 2 for asset 1, ``max(S1_T - S2_T, 0)``.

    Parameters
    ----------
    paths : Tensor
        Prices of the two assets. Shape: (N, T + 1, 2).

    Returns
    -------
    Tensor
        Payoff per path. Shape: input (N, T + 1, 2), output (N,).
    """
    _check_paths(
        "exchange", paths, "(N, T + 1, 2)", lambda shape: len(shape) == 3 and shape[-1] == 2
    )
    return (paths[:, -1, 0] - paths[:, -1, 1]).clamp(min=0.0)


def _check_paths(
    owner: str, paths: Tensor, expected: str, fits: Callable[[tuple[int, ...]], bool]
) -> None:
    if not isinstance(paths, Tensor) or not paths.is_floating_point():
        got = f"a tensor of dtype {paths.dtype}" if isinstance(paths, Tensor) else repr(paths)
        raise ConfigError(
            f"{owner}: paths must be a floating-point torch.Tensor of shape {expected}, got {got}"
        )
    if not fits(tuple(paths.shape)) or paths.shape[0] == 0 or paths.shape[1] == 0:
        raise ConfigError(
            f"{owner}: paths has shape {tuple(paths.shape)}; it must be {expected} with at "
            "least one path and one date"
        )


def _single_asset(owner: str, paths: Tensor) -> Tensor:
    """Paths of one asset as (N, T + 1), accepting a trailing asset axis of size 1."""
    _check_paths(
        owner,
        paths,
        "(N, T + 1) or (N, T + 1, 1)",
        lambda shape: len(shape) == 2 or (len(shape) == 3 and shape[-1] == 1),
    )
    return paths.reshape(paths.shape[0], paths.shape[1])


def _is_call(owner: str, kind: str) -> bool:
    """True for "call", False for "put", with the closed-form pricers' check of ``kind``."""
    return _payoff_sign(owner, kind) > 0


def _check_positive_prices(owner: str, terminal: Tensor) -> None:
    """Raise naming the first path whose terminal price is not positive (NaN included)."""
    bad = ~(terminal.detach() > 0)
    if bool(bad.any()):
        i, j = (int(k) for k in bad.nonzero()[0])
        raise ConfigError(
            f"{owner}: paths[{i}, -1, {j}]={float(terminal[i, j])!r} is not allowed for "
            "average='geometric'; the geometric mean takes logs, so every terminal price must "
            "be positive"
        )


def _average(owner: str, average: str) -> str:
    if average not in ("arithmetic", "geometric"):
        raise ConfigError(
            f"{owner}: average={average!r} is not allowed; use 'arithmetic' or 'geometric'"
        )
    return average


def _strike(owner: str, strike: Strike, n: int) -> Strike:
    """A number, or a tensor of shape () or (n,), as given after checking it."""
    if isinstance(strike, Tensor):
        if strike.ndim > 1 or (strike.ndim == 1 and strike.shape[0] != n):
            raise ConfigError(
                f"{owner}: strike has shape {tuple(strike.shape)}; it must be a number or a "
                f"tensor of shape () or ({n},)"
            )
        finite = torch.isfinite(strike.detach())
        if not bool(finite.all()):
            where = f"[{int((~finite).nonzero()[0, 0])}]" if strike.ndim else ""
            value = float(strike.detach().reshape(-1)[~finite.reshape(-1)][0])
            raise ConfigError(
                f"{owner}: strike{where}={value!r} is not allowed; every strike must be finite"
            )
        return strike
    # Any real number will do (numpy scalars included); a bool is a flag mixed up for a strike.
    if isinstance(strike, bool) or not isinstance(strike, numbers.Real):
        raise ConfigError(f"{owner}: strike={strike!r} is not allowed; it must be a number")
    if not math.isfinite(strike):
        raise ConfigError(f"{owner}: strike={strike!r} is not allowed; it must be finite")
    return float(strike)


def _weights(
    owner: str,
    weights: Sequence[float] | Tensor | None,
    d: int,
    paths: Tensor,
    *,
    geometric: bool,
) -> Tensor:
    """Basket weights as a tensor of shape (d,) on the paths' dtype and device."""
    if d < 1:
        raise ConfigError(f"{owner}: the paths have no assets (shape {tuple(paths.shape)})")
    if weights is None:
        return torch.full((d,), 1.0 / d, dtype=paths.dtype, device=paths.device)
    try:
        w = torch.as_tensor(weights, dtype=paths.dtype, device=paths.device)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(
            f"{owner}: weights={weights!r} is not allowed; it must be {d} numbers"
        ) from None
    if w.shape != (d,):
        raise ConfigError(
            f"{owner}: weights has shape {tuple(w.shape)}; it must be ({d},), one per asset"
        )
    values = w.detach().double().cpu()
    if not torch.isfinite(values).all():
        raise ConfigError(f"{owner}: weights={values.tolist()} must all be finite")
    if geometric and ((values < 0).any() or abs(float(values.sum()) - 1.0) > 1e-6):
        raise ConfigError(
            f"{owner}: weights={values.tolist()} are not allowed for average='geometric'; "
            "they must be non-negative and sum to 1"
        )
    return w
