"""Noise, fundamental and AI traders: the market model behind GARCH (Nakagawa et al. 2024).

Nakagawa, Hirano, Minami, Mizuta, "A Multi-agent Market Model Can Explain the Impact of AI
Traders in Financial Markets - A New Microfoundations of GARCH model" (arXiv 2409.12516). The
model is an order-flow market, not an order book: each period the traders' net demand moves the
price in proportion to the order imbalance. Written from the paper's abstract and a public
re-implementation of its equations (the paper's full text was not available to us; what follows
is the reconstruction kabuto uses, and the comparison with GARCH fits is reported as measured).

Traders and shares: fundamental traders ``p1``, AI traders ``p2``, noise traders
``1 - p1 - p2``. At period t, with a fundamental news variable ``x_{t-1} ~ N(0, 1)`` seen by
all, the informed net demand is::

    D_t = p1 (g(x_{t-1}) - lambda sigma_{t-1}) + p2 (h(x_{t-1}) - gamma |u_{t-1}|)

* fundamental traders: ``g(x) = log(1 + max(-0.99, x))``, less risk aversion ``lambda`` times the
  last period's volatility;
* AI traders: a forecast ``h(x) = c x`` (``c = 0.1``), less ``gamma`` times the size of the last
  shock ``|u_{t-1}|`` (they pull back after a surprise);
* noise traders: two-sided volume and a common order-flow shock ``eps_t ~ N(0, 1)``, scaled by the
  informed activity.

Buy and sell volume ``S/2 (1 +- D_t) +- k S/2 (1 + D_t) eps_t`` give the return (impact
``rho``)::

    r_t = rho D_t + u_t,   u_t = sigma_t eps_t,   sigma_t = rho k |1 + D_t|.

(The literal ``1 + D_t`` can be negative; its square is what enters the GARCH mapping, and the
paper's statistics match the absolute value.) Squaring sigma_t and dropping cross terms gives
GARCH(1,1), ``sigma_t^2 = omega + alpha u_{t-1}^2 + beta sigma_{t-1}^2`` with (`analytic_garch`)::

    alpha = (rho k)^2 p2^2 gamma^2,  beta = (rho k)^2 p1^2 lambda^2,
    omega = (rho k)^2 (1 + p1^2 E[g(x)^2] + p2^2 c^2).

So the ARCH term grows with the AI share and the GARCH term with the fundamental share. Default
parameters are the paper's: rho 4, k 0.4, lambda = gamma = 1.2, c = 0.1, p1 0.2, p2 0.4.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import integrate, stats

from kabuto.errors import ConfigError
from kabuto.settings import is_integer, is_real, is_seed

__all__ = ["GarchMarket", "analytic_garch", "mean_demand", "simulate_garch_market"]


@dataclass(frozen=True)
class GarchMarket:
    """Parameters of the noise / fundamental / AI trader market (module docstring)."""

    fundamental_share: float = 0.2
    ai_share: float = 0.4
    impact: float = 4.0
    noise_scale: float = 0.4
    fundamental_aversion: float = 1.2
    ai_aversion: float = 1.2
    ai_forecast: float = 0.1

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not is_real(getattr(self, name)):  # NaN would pass every comparison below
                raise ConfigError(f"{name} = {getattr(self, name)!r}: must be a finite number")
        p1, p2 = self.fundamental_share, self.ai_share
        if not (0 <= p1 <= 1 and 0 <= p2 <= 1 and p1 + p2 <= 1):
            raise ConfigError(
                f"fundamental_share = {p1}, ai_share = {p2}: shares must be in [0, 1] with a sum "
                "of at most 1 (the rest are noise traders)"
            )
        for name in ("impact", "noise_scale", "fundamental_aversion", "ai_aversion"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} = {getattr(self, name)}: must be non-negative")


def _expected_g_squared() -> float:
    """E[g(x)^2] for x ~ N(0, 1), g(x) = log(1 + max(-0.99, x)) (about 4.06)."""
    floor = -0.99
    tail = stats.norm.cdf(floor) * math.log(0.01) ** 2
    body, _ = integrate.quad(
        lambda x: math.log1p(x) ** 2 * stats.norm.pdf(x), floor, np.inf, limit=200
    )
    return tail + body


def analytic_garch(market: GarchMarket) -> tuple[float, float, float]:
    """The paper's mapping from trader shares to GARCH(1,1): (omega, alpha, beta)."""
    scale = (market.impact * market.noise_scale) ** 2
    p1, p2 = market.fundamental_share, market.ai_share
    alpha = scale * p2**2 * market.ai_aversion**2
    beta = scale * p1**2 * market.fundamental_aversion**2
    omega = scale * (1 + p1**2 * _expected_g_squared() + p2**2 * market.ai_forecast**2)
    return omega, alpha, beta


@njit(cache=True)
def _recursion(params: np.ndarray, news: np.ndarray, shocks: np.ndarray, out: np.ndarray) -> None:
    """Run the market over the given draws; out rows: return, sigma, demand D."""
    p1, p2, rho, k, lam, gam, c = params
    sigma_prev = rho * k  # the no-signal level
    shock_prev = 0.0
    x_prev = 0.0
    for t in range(len(shocks)):
        g = math.log(1.0 + max(-0.99, x_prev))
        demand = p1 * (g - lam * sigma_prev) + p2 * (c * x_prev - gam * abs(shock_prev))
        sigma = rho * k * abs(1.0 + demand)
        shock = sigma * shocks[t]
        out[0, t] = rho * demand + shock
        out[1, t] = sigma
        out[2, t] = demand
        sigma_prev, shock_prev, x_prev = sigma, shock, news[t]


def simulate_garch_market(
    market: GarchMarket, n_periods: int, *, seed: int = 0, burn_in: int = 500
) -> dict[str, np.ndarray]:
    """One path of the market: returns, conditional volatility and informed demand.

    Returns
    -------
    dict with ``returns``, ``sigma``, ``demand`` : ndarray of shape (n_periods,)
        After `burn_in` discarded periods. Returns are in the model's units (a standard
        deviation of a few units at the default parameters: read them as percent).
    """
    if not (is_integer(n_periods) and is_integer(burn_in) and n_periods >= 1 and burn_in >= 0):
        raise ConfigError(
            f"n_periods = {n_periods!r}, burn_in = {burn_in!r}: need integers >= 1 and >= 0"
        )
    if not is_seed(seed):
        raise ConfigError(f"seed = {seed!r}: use a non-negative integer")
    rng = np.random.default_rng(seed)
    total = n_periods + burn_in
    news = rng.standard_normal(total)
    shocks = rng.standard_normal(total)
    params = np.array(
        [
            market.fundamental_share,
            market.ai_share,
            market.impact,
            market.noise_scale,
            market.fundamental_aversion,
            market.ai_aversion,
            market.ai_forecast,
        ]
    )
    out = np.empty((3, total))
    _recursion(params, news, shocks, out)
    returns, sigma, demand = out[:, burn_in:]
    if not np.isfinite(returns).all():
        raise ConfigError(
            f"the market explodes at shares p1 = {market.fundamental_share}, p2 = "
            f"{market.ai_share}: volatility feeds on itself (alpha + beta of the mapping is "
            f"{sum(analytic_garch(market)[1:]):.2f}); lower the shares or the aversions"
        )
    return {"returns": returns.copy(), "sigma": sigma.copy(), "demand": demand.copy()}


@functools.lru_cache(maxsize=64)
def mean_demand(market: GarchMarket, n_periods: int = 200_000) -> float:
    """The unconditional mean of the informed demand D_t, from one long seeded path.

    Deterministic (seed 0). The order-flow crowd of the order-book engine leaves it out of its
    orders so that prices do not drift by ``rho * E[D]`` a step (`kabuto.sim.artificial.engine`).
    """
    return float(simulate_garch_market(market, n_periods, seed=0)["demand"].mean())
