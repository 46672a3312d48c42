"""A factor market with a planted, known residual signal (the deep residual-factor benchmark).

Imajo, Minami, Ito, Nakagawa (AAAI 2021) trade the residual factors of stock returns: what the
common factors leave over. To tell how close a learned strategy comes to perfect prediction,
this generator plants a residual signal whose conditional law is known exactly. For each date t
(simple returns, n assets, K factors)::

    r_t = B f_t + e_t,                      f_t ~ N(mu_f, Sigma_f) iid,
    e_t = eps_t - kappa * sum_{j=1..W} j**(-a) eps_{t-j},   eps_{i,t} = sqrt(h_{i,t}) z_{i,t},
    h_{i,t+1} = omega_i + alpha * eps_{i,t}**2 + beta * h_{i,t}       (GARCH(1,1) per stock).

So each residual is a moving average of its own shocks: a shock reverses by ``kappa j**(-a)`` on
the j-th day after it, for W days (residual mean reversion), and its scale follows a GARCH
variance whose level differs from stock to stock. At the close of t both one-step-ahead moments
are functions of the latent shocks up to t (known to the simulator; prices show them only through
the residuals, so no strategy recovers them exactly)::

    E[e_{t+1} | F_t]   = -kappa * sum_{j=1..W} j**(-a) eps_{t+1-j}   (`FactorMarket.residual_mean`)
    Var[e_{t+1} | F_t] = h_{t+1}                             (`FactorMarket.residual_var`)

Two kernels matter. The default ``a = 0`` is a box: a shock reverses evenly over a few days (a
fixed horizon, W = 5). ``a = 1/2`` with a long W (`SCALE_FREE_REVERSION`) is scale free in the
sense of the deep residual network's multi-scale input: summing the shocks into blocks of
``1/tau`` days and scaling the block sums by ``tau ** 1/2`` (as the network's scale ``tau`` does)
leaves the predictive filter ``sum_m m**(-1/2) X_m`` the same at every scale, which is the time-
scale invariance Imajo et al. (2021) build their network on. The box violates it.

A residual strategy with perfect predictions holds ``b = A (mean / var)`` with
``A = I - B (B'B)^{-1} B'`` (`kabuto.strategies.oracle.ResidualOracle`); every learned strategy is
scored against it. It is a yardstick for prediction quality, not the best possible book (its
docstring says by how much a variance-weighted projection beats it).

Defaults (50 stocks, 10 years) are calibrated to look like a real residual-reversal trade, not a
toy: the market factor has 1% daily vol (others 0.5%), residual vols have a median of 20% a year
with a 0.25 log-spread across stocks, so the residuals carry about half of the variance. With
``kappa = 0.035`` and ``W = 5`` the predictable part of a day's residual has about 8% of the
standard deviation of its noise (an R^2 of about 0.6% per stock-day). That gives the oracle a
gross annualized Sharpe ratio near 8 and, after 10 bps of costs on daily rebalancing, a net one
near 3 (2.6-3.6 over seeds 0-9). The GARCH (alpha 0.10, beta 0.85) moves each stock's variance
enough that scale matters: a 5-day residual reversal that divides by its window's residual
variance reaches a gross Sharpe ratio near 6.8, one that does not near 6.2.

All randomness comes from one seeded generator, drawn in a fixed order: the model (loadings and
volatility levels) first, then the shocks date by date. A market with fewer days is therefore the
same market cut short, which is how the tests prove the moments at t use nothing after t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kabuto.data.panel import Panel
from kabuto.errors import ConfigError
from kabuto.settings import is_real
from kabuto.sim.processes import TRADING_DAYS, SeedLike, _check_sizes, _dates, _describe, _rng

__all__ = ["SCALE_FREE_REVERSION", "FactorMarket", "factor_market"]

DEFAULT_MARKET_VOL = 0.01  # daily vol of the market factor (about 16% a year)
DEFAULT_OTHER_VOL = 0.005  # daily vol of each further (style / industry) factor

# A scale-free residual reversion (see module docs): kernel kappa j**(-1/2) over half a year. kappa
# gives the predictable part about the same share of the residual variance as the default box
# (kappa**2 * sum_j j**-1 = 0.033**2 * 5.4 ~ 0.0059 vs 0.035**2 * 5 ~ 0.0061); about 70% of a
# shock reverses within the W days.
SCALE_FREE_REVERSION = {"reversion": 0.033, "reversion_window": 126, "reversion_decay": 0.5}


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class FactorMarket:
    """A simulated factor market and the true conditional moments of its residuals.

    Row t of every (T, ...) array belongs to panel date t. Realised quantities (returns,
    ``factor_returns``, ``residuals``) are NaN on the first date, which carries only prices.

    Attributes
    ----------
    panel : Panel
        Prices and simple returns, T business days x n assets; ``source`` records every
        parameter and the seed.
    loadings : ndarray of shape (n, K)
        B; column 0 is the market factor (positive loadings around 1).
    factor_mean : ndarray of shape (K,)
        mu_f, the daily mean of the factor returns.
    factor_cov : ndarray of shape (K, K)
        Sigma_f, the (diagonal) daily covariance of the factor returns.
    factor_returns : ndarray of shape (T, K)
        Realised f_t.
    residuals : ndarray of shape (T, n)
        Realised e_t; ``panel.returns = factor_returns @ loadings.T + residuals`` up to rounding.
    residual_mean : ndarray of shape (T, n)
        ``E[e_{t+1} | F_t]``: known at the close of t, about the return of t+1.
    residual_var : ndarray of shape (T, n)
        ``Var[e_{t+1} | F_t]``, likewise.
    reversion, reversion_window, reversion_decay : float, int, float
        kappa, W and a.
    """

    panel: Panel
    loadings: np.ndarray
    factor_mean: np.ndarray
    factor_cov: np.ndarray
    factor_returns: np.ndarray
    residuals: np.ndarray
    residual_mean: np.ndarray
    residual_var: np.ndarray
    reversion: float
    reversion_window: int
    reversion_decay: float

    def __repr__(self) -> str:
        # compact: strategies holding a market print it in backtest settings and reports
        return f"FactorMarket({self.panel.source})"

    @property
    def n_factors(self) -> int:
        return self.loadings.shape[1]

    def projection(self, columns: np.ndarray | None = None) -> np.ndarray:
        """The true residual projection ``A = I - B (B'B)^{-1} B'`` over some assets.

        Parameters
        ----------
        columns : ndarray of int, optional
            Asset columns (default: all n).

        Returns
        -------
        ndarray of shape (m, m)
            Symmetric idempotent; ``B[columns]' A = 0``. m = number of columns.
        """
        b = self.loadings if columns is None else self.loadings[columns]
        # An orthonormal basis Q of span(B) gives the same projection as the normal equations,
        # with better conditioning: A = I - Q Q'.
        q, _ = np.linalg.qr(b)
        return np.eye(len(b)) - q @ q.T


def factor_market(
    n_assets: int = 50,
    n_days: int = 2520,
    *,
    n_factors: int = 3,
    factor_vols: float | Sequence[float] | None = None,
    market_premium: float = 0.0003,
    reversion: float = 0.035,
    reversion_window: int = 5,
    reversion_decay: float = 0.0,
    residual_vol: float = 0.20,
    residual_vol_dispersion: float = 0.25,
    garch_alpha: float = 0.10,
    garch_beta: float = 0.85,
    seed: SeedLike = 0,
    start: str | pd.Timestamp = "2000-01-03",
    s0: float = 100.0,
    burn_in: int = 500,
) -> FactorMarket:
    """Simulate a K-factor market whose residuals mean-revert predictably (see module docs).

    Parameters
    ----------
    n_assets, n_days : int
        n assets and T dates (T - 1 returns).
    n_factors : int, default 3
        K >= 1 common factors; factor 0 is the market.
    factor_vols : float or sequence of K floats, optional
        Daily volatilities of the factors. Default: 1% for the market, 0.5% for the others.
    market_premium : float, default 0.0003
        Daily mean of the market factor (about 7.5% a year); the other factors have mean 0.
    reversion : float, default 0.035
        kappa >= 0: how much of each residual shock reverses per day over the next W days.
        0 gives unpredictable residuals (``residual_mean`` is identically 0).
    reversion_window : int, default 5
        W >= 1, the number of days a shock keeps reverting.
    reversion_decay : float, default 0.0
        a >= 0: the reversion on the j-th day after a shock is ``kappa * j ** -a``; 0 is a box,
        1/2 with a long W a scale-free kernel (see module docs and `SCALE_FREE_REVERSION`).
    residual_vol : float, default 0.20
        Median annualized residual volatility across stocks (the GARCH long-run level).
    residual_vol_dispersion : float, default 0.25
        Standard deviation of the log residual volatility across stocks.
    garch_alpha, garch_beta : float, default 0.10 and 0.85
        GARCH(1,1) reaction and persistence of each stock's residual variance
        (``alpha, beta >= 0``, ``alpha + beta < 1``).
    seed : int, numpy Generator or None, default 0
        Source of all randomness (recorded in the panel's source when an int or None).
    start : str or Timestamp, default "2000-01-03"
        First business date.
    s0 : float, default 100.0
        Price of every asset on the first date.
    burn_in : int, default 500
        Unrecorded days simulated first, so the GARCH state and the reversion memory start in
        their stationary law (at least W).

    Returns
    -------
    FactorMarket

    Raises
    ------
    ConfigError
        For a parameter out of range, or parameters so volatile that a simple return reaches
        -100% (prices must stay positive).
    """
    n, T = _check_sizes(n_assets, n_days, "factor_market")
    k = _int_at_least("n_factors", n_factors, 1)
    if k >= n:
        raise ConfigError(
            f"factor_market: n_factors={k} must be below n_assets={n}, otherwise nothing is left "
            "for the residuals; use fewer factors or more assets"
        )
    window = _int_at_least("reversion_window", reversion_window, 1)
    burn = _int_at_least("burn_in", burn_in, window)
    if factor_vols is None:
        vols = np.full(k, DEFAULT_OTHER_VOL)
        vols[0] = DEFAULT_MARKET_VOL
    else:
        try:
            vols = np.broadcast_to(np.asarray(factor_vols, dtype=np.float64), (k,)).copy()
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"factor_market: factor_vols={factor_vols!r} must be a number or {k} numbers "
                f"(one per factor, n_factors={k})"
            ) from exc
    for name, value in (
        ("market_premium", market_premium),
        ("reversion", reversion),
        ("reversion_decay", reversion_decay),
        ("residual_vol", residual_vol),
        ("residual_vol_dispersion", residual_vol_dispersion),
        ("garch_alpha", garch_alpha),
        ("garch_beta", garch_beta),
        ("s0", s0),
        *((f"factor_vols[{i}]", v) for i, v in enumerate(vols)),
    ):
        _check_real(name, value, negative_ok=name == "market_premium", zero_ok=name != "s0")
    if residual_vol <= 0:
        raise ConfigError(f"factor_market: residual_vol={residual_vol!r} must be > 0")
    if garch_alpha + garch_beta >= 1:
        raise ConfigError(
            f"factor_market: garch_alpha + garch_beta = {garch_alpha + garch_beta:.6g} must be "
            "below 1 for a stationary residual variance; lower one of them"
        )
    dates = _dates(start, T)
    rng, seed_text = _rng(seed)

    # The model first (its draws do not depend on n_days) ...
    loadings = rng.standard_normal((n, k))
    # market betas: positive, mean 1, cross-sectional dispersion about 0.3 (lognormal)
    loadings[:, 0] = np.exp(0.3 * loadings[:, 0] - 0.045)
    with np.errstate(over="ignore"):  # an absurd level is reported just below, in one line
        level = residual_vol * np.exp(residual_vol_dispersion * rng.standard_normal(n))
        long_run = level**2 / TRADING_DAYS  # each stock's unconditional daily residual variance
    if not np.isfinite(long_run).all() or long_run.max() >= 1.0:
        raise ConfigError(
            f"factor_market: residual_vol={residual_vol!r} with residual_vol_dispersion="
            f"{residual_vol_dispersion!r} gives a stock a residual volatility of 100% a day or "
            "more; lower them"
        )
    omega = long_run * (1.0 - garch_alpha - garch_beta)

    # ... then every shock, one row per day (factor shocks and residual shocks side by side), so
    # that a shorter market is exactly a prefix of a longer one.
    steps = burn + T - 1
    z = rng.standard_normal((steps, k + n))
    factors = vols * z[:, :k]
    factors[:, 0] += market_premium
    factor_mean = np.zeros(k)
    factor_mean[0] = market_premium

    # GARCH: sequential in time, vectorised over stocks. h[s] is the variance of shock s; eps
    # overwrites the residual draws in place.
    eps = z[:, k:]
    h = np.empty((steps + 1, n))
    h[0] = long_run
    for s in range(steps):
        eps[s] *= np.sqrt(h[s])
        h[s + 1] = omega + garch_alpha * eps[s] ** 2 + garch_beta * h[s]

    # memory[s] = kernel-weighted sum of the W shocks before step s: the predictable part of
    # step s (sliding sums, not a cumsum difference, so no rounding accumulates).
    kernel = np.arange(window, 0, -1, dtype=np.float64) ** -float(reversion_decay)  # oldest first
    padded = np.vstack([np.zeros((window, n)), eps])
    memory = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)[: steps + 1]
    memory = memory @ kernel  # (steps + 1, n)
    mean = -reversion * memory
    e = eps + mean[:steps]

    # Panel row t (t >= 1) holds step burn + t - 1; the next step after row t is burn + t.
    realised = np.full((T, n), np.nan)
    realised[1:] = factors[burn:] @ loadings.T + e[burn:]
    if (realised[1:] <= -1.0).any():
        raise ConfigError(
            "factor_market: a simulated simple return reached -100% (a non-positive price); "
            "lower factor_vols, residual_vol or the GARCH parameters"
        )
    prices = s0 * np.cumprod(np.vstack([np.ones(n), 1.0 + realised[1:]]), axis=0)
    width = max(len(str(n - 1)), 3)
    assets = [f"asset_{i:0{width}d}" for i in range(n)]
    source = _describe(
        "factor_market",
        n_assets=n,
        n_days=T,
        n_factors=k,
        factor_vols=vols,
        market_premium=float(market_premium),
        reversion=float(reversion),
        reversion_window=window,
        reversion_decay=float(reversion_decay),
        residual_vol=float(residual_vol),
        residual_vol_dispersion=float(residual_vol_dispersion),
        garch_alpha=float(garch_alpha),
        garch_beta=float(garch_beta),
        burn_in=burn,
        s0=float(s0),
        start=dates[0].date(),
        seed=seed_text,
    )
    panel = Panel(pd.DataFrame(prices, index=dates, columns=assets), source=source)

    factor_returns = np.full((T, k), np.nan)
    factor_returns[1:] = factors[burn:]
    residuals = np.full((T, n), np.nan)
    residuals[1:] = e[burn:]
    return FactorMarket(
        panel=panel,
        loadings=_readonly(loadings),
        factor_mean=_readonly(factor_mean),
        factor_cov=_readonly(np.diag(vols**2)),
        factor_returns=_readonly(factor_returns),
        residuals=_readonly(residuals),
        residual_mean=_readonly(mean[burn:]),
        residual_var=_readonly(h[burn:]),
        reversion=float(reversion),
        reversion_window=window,
        reversion_decay=float(reversion_decay),
    )


def _int_at_least(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"factor_market: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_real(name: str, value: object, *, negative_ok: bool, zero_ok: bool) -> None:
    # A real number, not text float() would parse: "0.2" reached the arithmetic as a string.
    x = float(value) if is_real(value) else np.nan  # type: ignore[arg-type]
    if not np.isfinite(x) or (x < 0 and not negative_ok):
        raise ConfigError(
            f"factor_market: {name}={value!r} is not allowed; it must be a finite number"
            + ("" if negative_ok else " >= 0")
        )
    if x == 0 and not zero_ok:
        raise ConfigError(f"factor_market: {name}={value!r} must be > 0")
