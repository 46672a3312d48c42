"""European arithmetic-basket options by Monte Carlo with the geometric basket as control variate.

The arithmetic average ``A_T = sum_i w_i S_i(T)`` of correlated geometric Brownian motions has no
closed-form law, but the geometric average ``G_T = prod_i S_i(T) ** w_i`` is lognormal and its
option has the closed form `kabuto.hedging.closed_form.geometric_basket_price`. The two averages
move together almost path by path (they differ by the spread of the assets, second order in the
volatility), so the geometric payoff is a near-perfect control variate for the arithmetic one
(Kemna and Vorst 1990, "A Pricing Method for Options Based on Average Asset Values",
over dates instead of assets; Glasserman 2004, "Monte Carlo Methods in Financial Engineering",
sec. 4.1). With ``Y`` and ``X`` the discounted arithmetic and geometric payoffs on the same paths
and ``E[X]`` the closed form::

    price = mean(Y - beta (X - E[X])),    beta = cov(Y, X) / var(X) (estimated on the paths).

These prices are the references the deep BSDE solvers are scored against on basket problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from kabuto.errors import ConfigError
from kabuto.hedging.closed_form import (
    _basket_size,
    _correlation_matrix,
    _finite,
    _non_negative,
    _payoff_sign,
    _positive,
    geometric_basket_price,
)
from kabuto.settings import check_int, check_seed
from kabuto.sim.paths import gbm_paths

__all__ = ["BasketMCResult", "arithmetic_basket_price"]

_FUNC = "arithmetic_basket_price"
# Paths simulated at once; bounds the memory to a few tens of MB whatever n_paths is.
_BATCH = 100_000
# How far basket weights' sum may be from one (rounding of user-typed weights such as 1/3).
_WEIGHT_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class BasketMCResult:
    """A Monte Carlo price of a European basket option, with and without the control variate.

    Attributes
    ----------
    price : float
        Control-variate estimate.
    std_error : float
        Its standard error, ``std(Y - beta X) / sqrt(n_paths)``.
    plain_price : float
        Plain Monte Carlo estimate ``mean(Y)`` on the same paths.
    plain_std_error : float
        Its standard error, ``std(Y) / sqrt(n_paths)``.
    control_coefficient : float
        The estimated ``beta = cov(Y, X) / var(X)`` (0 where the control never pays).
    n_paths : int
        Number of simulated paths.
    """

    price: float
    std_error: float
    plain_price: float
    plain_std_error: float
    control_coefficient: float
    n_paths: int


def arithmetic_basket_price(
    spot: ArrayLike,
    strike: float,
    maturity: float,
    rate: float,
    volatility: ArrayLike,
    correlation: ArrayLike,
    weights: ArrayLike | None = None,
    kind: str = "call",
    n_paths: int = 100_000,
    seed: int = 0,
) -> BasketMCResult:
    """Price of a European call or put on the arithmetic basket ``A_T = sum_i w_i S_i(T)``.

    The assets follow the risk-neutral dynamics of `geometric_basket_price`,
    ``dS_i = r S_i dt + sigma_i S_i dW_i`` with ``d<W_i, W_j> = rho_ij dt``; their terminal values
    are drawn exactly by `kabuto.sim.paths.gbm_paths` (one step, float64) in batches of 100,000
    paths. The control variate is the option on ``G_T = prod_i S_i(T) ** w_i`` with the same
    strike, priced by `geometric_basket_price` (see the module docstring).

    Parameters
    ----------
    spot : array_like, shape () or (d,)
        Spot prices S_i(0) (> 0).
    strike : float
        Strike K (> 0).
    maturity : float
        Time to expiry T in years (> 0).
    rate : float
        Risk-free rate r.
    volatility : array_like, shape () or (d,)
        Volatilities sigma_i (>= 0).
    correlation : float or array_like of shape (d, d)
        A common pairwise correlation or a correlation matrix, as in `geometric_basket_price`.
    weights : array_like, shape () or (d,), optional
        Basket weights w_i, non-negative and summing to one (a weighted average); ``1/d`` each
        by default.
    kind : {"call", "put"}, default "call"
    n_paths : int, default 100_000
        Number of simulated paths (>= 2).
    seed : int, default 0
        Seed of the torch generator; the same seed gives the same price.

    The number of assets d is the common length of the per-asset arguments, as in
    `geometric_basket_price`; where all are scalars, d = 1 (and the price is Black-Scholes).

    Returns
    -------
    BasketMCResult
        The control-variate price and standard error, and the plain ones for comparison.

    Raises
    ------
    ConfigError
        For an argument out of range, naming it and its value.
    """
    n_assets = _basket_size(_FUNC, spot, volatility, weights, correlation)
    # Copies: torch warns on (and must not write into) the read-only views broadcast_to gives.
    spots = np.broadcast_to(_positive(_FUNC, "spot", spot), (n_assets,)).copy()
    vols = np.broadcast_to(_non_negative(_FUNC, "volatility", volatility), (n_assets,)).copy()
    corr = _correlation_matrix(_FUNC, correlation, n_assets)
    w = basket_weights(_FUNC, weights, n_assets)
    k = single_number(_FUNC, "strike", _positive(_FUNC, "strike", strike))
    t = single_number(_FUNC, "maturity", _positive(_FUNC, "maturity", maturity))
    r = single_number(_FUNC, "rate", _finite(_FUNC, "rate", rate))
    sign = _payoff_sign(_FUNC, kind)
    n = check_int(_FUNC, "n_paths", n_paths, 2)
    seed_value = check_seed(_FUNC, "seed", seed)

    arithmetic, geometric = _terminal_baskets(spots, vols, corr, w, t, r, n, seed_value)
    discount = math.exp(-r * t)
    target = discount * np.maximum(sign * (arithmetic - k), 0.0)
    control = discount * np.maximum(sign * (geometric - k), 0.0)
    control_mean = float(geometric_basket_price(spots, k, t, r, vols, corr, weights=w, kind=kind))

    control_variance = control.var(ddof=1)
    beta = float(np.cov(target, control)[0, 1] / control_variance) if control_variance > 0 else 0.0
    corrected = target - beta * (control - control_mean)
    root_n = math.sqrt(n)
    return BasketMCResult(
        price=float(corrected.mean()),
        std_error=float(corrected.std(ddof=1) / root_n),
        plain_price=float(target.mean()),
        plain_std_error=float(target.std(ddof=1) / root_n),
        control_coefficient=beta,
        n_paths=n,
    )


def _terminal_baskets(
    spots: NDArray[np.float64],
    vols: NDArray[np.float64],
    corr: NDArray[np.float64],
    w: NDArray[np.float64],
    maturity: float,
    rate: float,
    n_paths: int,
    seed: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Arithmetic and geometric baskets at maturity on ``n_paths`` risk-neutral paths, (N,) each."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.from_numpy(w)
    arithmetic, geometric = [], []
    for start in range(0, n_paths, _BATCH):
        terminal = gbm_paths(
            min(_BATCH, n_paths - start),
            1,
            maturity,
            spots,
            rate,
            vols,
            corr,
            seed=generator,
            dtype=torch.float64,
        )[:, -1, :]
        arithmetic.append(terminal @ weights)
        # exp of the weighted mean log keeps a product of many prices from overflowing.
        geometric.append(torch.exp(torch.log(terminal) @ weights))
    return torch.cat(arithmetic).numpy(), torch.cat(geometric).numpy()


def basket_weights(func: str, weights: ArrayLike | None, n_assets: int) -> NDArray[np.float64]:
    """The (d,) basket weights: ``1/d`` each by default, else non-negative and summing to one.

    The check every basket pricer here shares (`arithmetic_basket_price`, and
    `kabuto.hedging.american.basket_longstaff_schwartz`); `func` names the caller in errors.
    """
    if n_assets < 1:
        raise ConfigError(f"{func}: the basket has no assets; give at least one")
    if weights is None:
        return np.full(n_assets, 1.0 / n_assets)
    if np.shape(weights) not in ((), (n_assets,)):
        raise ConfigError(
            f"{func}: weights has shape {np.shape(weights)}; it must be a number or have one "
            f"entry per asset ({n_assets})"
        )
    w = np.broadcast_to(_non_negative(func, "weights", weights), (n_assets,)).copy()
    total = float(w.sum())
    if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise ConfigError(
            f"{func}: weights sum to {total!r}; basket weights must be non-negative and sum to 1"
        )
    return w


def single_number(func: str, name: str, value: NDArray[np.float64]) -> float:
    """A checked argument (an array from the closed-form checks) as a float, if it has shape ()."""
    if value.ndim:
        raise ConfigError(f"{func}: {name} has shape {value.shape}; it must be a single number")
    return float(value)
