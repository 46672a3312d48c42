"""Closed-form and semi-closed-form prices of European options: the reference pricers.

Every model here has a price that is known exactly (or up to one numerical integral or a
fast-converging series), so the learned hedgers and BSDE solvers built later can be scored
against the truth:

* Black-Scholes (1973) with a continuous dividend yield (Merton 1973), and its delta, gamma and
  vega;
* Margrabe (1978): the option to exchange one asset for another;
* Heston (1993) stochastic volatility, in the "little trap" form of Albrecher, Mayer, Schoutens
  and Tistaert (2007);
* a European option on the weighted geometric average of correlated geometric Brownian motions
  (lognormal, so Black-Scholes prices it);
* Merton (1976) jump-diffusion with lognormal jumps.

Conventions: time is in years; ``rate``, ``dividend`` and volatilities are annualized and
continuously compounded; ``kind`` is ``"call"`` (payoff ``max(S - K, 0)``) or ``"put"``
(``max(K - S, 0)``). Array arguments broadcast against each other like numpy ufuncs, and scalar
arguments give a numpy float. Out-of-range arguments raise `kabuto.errors.ConfigError` naming the
function, the argument, the first bad value and the allowed range.
"""

from __future__ import annotations

import cmath
import decimal
import math
import numbers
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, stats
from scipy.special import ndtr

from kabuto.errors import ConfigError
from kabuto.settings import (
    check_common_correlation,
    check_correlation_matrix,
    check_lognormal_jumps,
)

__all__ = [
    "black_scholes_delta",
    "black_scholes_gamma",
    "black_scholes_price",
    "black_scholes_vega",
    "geometric_basket_price",
    "heston_price",
    "margrabe_price",
    "merton_price",
]

FloatArray = NDArray[np.float64]
FloatOrArray = float | FloatArray

# Payoff max(sign * (S - K), 0).
_PAYOFF_SIGNS = {"call": 1.0, "put": -1.0}
# The Merton series is cut off once the Poisson mass it leaves out bounds the price error by this
# fraction of the spot (call) or strike (put).
_MERTON_TAIL_TOLERANCE = 1e-12


# --------------------------------------------------------------------------------------------
# Black-Scholes
# --------------------------------------------------------------------------------------------


def black_scholes_price(
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    kind: str = "call",
    dividend: ArrayLike = 0.0,
) -> FloatOrArray:
    """Black-Scholes price of a European call or put on a stock with a dividend yield.

    With ``F = S exp((r - q) T)``, ``d1 = (ln(F / K) + sigma**2 T / 2) / (sigma sqrt(T))`` and
    ``d2 = d1 - sigma sqrt(T)``::

        call = exp(-r T) (F N(d1) - K N(d2)),    put = exp(-r T) (K N(-d2) - F N(-d1)).

    Source: Black and Scholes (1973), "The Pricing of Options and Corporate Liabilities", with the
    continuous dividend yield of Merton (1973), "Theory of Rational Option Pricing". A zero
    volatility gives the discounted intrinsic value of the forward, ``exp(-r T) max(F - K, 0)``.

    Parameters
    ----------
    spot : array_like
        Spot price S (> 0).
    strike : array_like
        Strike K (> 0).
    maturity : array_like
        Time to expiry T in years (> 0).
    rate : array_like
        Risk-free rate r.
    volatility : array_like
        Volatility sigma (>= 0).
    kind : {"call", "put"}, default "call"
    dividend : array_like, default 0.0
        Continuous dividend yield q.

    Returns
    -------
    float or ndarray
        The price, broadcast over the array arguments.

    Raises
    ------
    ConfigError
        For an argument out of range, naming it and its value.
    """
    s, k, t, r, vol, q, sign = _black_scholes_args(
        "black_scholes_price", spot, strike, maturity, rate, volatility, kind, dividend
    )
    forward = s * np.exp((r - q) * t)
    return np.exp(-r * t) * _black(forward, k, vol * np.sqrt(t), sign)


def black_scholes_delta(
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    kind: str = "call",
    dividend: ArrayLike = 0.0,
) -> FloatOrArray:
    """Black-Scholes delta, the derivative of `black_scholes_price` with respect to the spot.

    ``call: exp(-q T) N(d1)``, ``put: -exp(-q T) N(-d1)``, with ``d1`` as in
    `black_scholes_price` (Hull, "Options, Futures, and Other Derivatives", ch. 19). Arguments,
    return value and errors are those of `black_scholes_price`.
    """
    s, k, t, r, vol, q, sign = _black_scholes_args(
        "black_scholes_delta", spot, strike, maturity, rate, volatility, kind, dividend
    )
    d1, _ = _d1_d2(s * np.exp((r - q) * t), k, vol * np.sqrt(t))
    return sign * np.exp(-q * t) * ndtr(sign * d1)


def black_scholes_gamma(
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    kind: str = "call",
    dividend: ArrayLike = 0.0,
) -> FloatOrArray:
    """Black-Scholes gamma, the second derivative of the price with respect to the spot.

    ``exp(-q T) phi(d1) / (S sigma sqrt(T))`` with ``phi`` the standard normal density, the same
    for a call and a put (Hull, ch. 19). ``kind`` is accepted and checked so that the four
    Black-Scholes functions take the same arguments. At zero volatility the gamma is 0 away from
    the money and infinite at it. Arguments, return value and errors are those of
    `black_scholes_price`.
    """
    s, k, t, r, vol, q, _ = _black_scholes_args(
        "black_scholes_gamma", spot, strike, maturity, rate, volatility, kind, dividend
    )
    total_sd = vol * np.sqrt(t)
    d1, _ = _d1_d2(s * np.exp((r - q) * t), k, total_sd)
    density = _normal_density_over_sd(d1, total_sd)
    return np.exp(-q * t) * density / s


def black_scholes_vega(
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    kind: str = "call",
    dividend: ArrayLike = 0.0,
) -> FloatOrArray:
    """Black-Scholes vega, the derivative of the price with respect to the volatility.

    ``S exp(-q T) phi(d1) sqrt(T)``, per unit of volatility (multiply by 0.01 for one vol point),
    the same for a call and a put (Hull, ch. 19). ``kind`` is accepted and checked so that the
    four Black-Scholes functions take the same arguments. Arguments, return value and errors are
    those of `black_scholes_price`.
    """
    s, k, t, r, vol, q, _ = _black_scholes_args(
        "black_scholes_vega", spot, strike, maturity, rate, volatility, kind, dividend
    )
    d1, _ = _d1_d2(s * np.exp((r - q) * t), k, vol * np.sqrt(t))
    return s * np.exp(-q * t) * stats.norm.pdf(d1) * np.sqrt(t)


def _black_scholes_args(
    func: str,
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    kind: str,
    dividend: ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, float]:
    """The checked Black-Scholes arguments as float arrays, and the payoff sign of ``kind``."""
    args = _broadcastable(
        func,
        **_contract(func, spot, strike, maturity, rate),
        volatility=_non_negative(func, "volatility", volatility),
        dividend=_finite(func, "dividend", dividend),
    )
    return (*args, _payoff_sign(func, kind))


def _contract(
    func: str, spot: ArrayLike, strike: ArrayLike, maturity: ArrayLike, rate: ArrayLike
) -> dict[str, FloatArray]:
    """The checked spot, strike, maturity and rate every single-asset pricer takes."""
    return {
        "spot": _positive(func, "spot", spot),
        "strike": _positive(func, "strike", strike),
        "maturity": _positive(func, "maturity", maturity),
        "rate": _finite(func, "rate", rate),
    }


def _black(forward: ArrayLike, strike: ArrayLike, total_sd: ArrayLike, sign: float) -> FloatOrArray:
    """Undiscounted Black (1976) price ``E[max(sign (X - K), 0)]``.

    X is lognormal with mean ``forward`` and log standard deviation ``total_sd``. Every
    lognormal model in this module reduces to this one formula.
    """
    d1, d2 = _d1_d2(forward, strike, total_sd)
    return sign * (forward * ndtr(sign * d1) - strike * ndtr(sign * d2))


def _d1_d2(
    forward: ArrayLike, strike: ArrayLike, total_sd: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Black's ``d1 = ln(F / K) / s + s / 2`` and ``d2 = d1 - s`` for ``s = total_sd``."""
    log_moneyness = np.log(np.divide(forward, strike))
    total_sd = np.asarray(total_sd, dtype=np.float64)
    has_variance = total_sd > 0
    # Without variance the payoff is known today: d is +-inf on either side of the money, and 0 at
    # it, where the option is worth nothing either way and N(0) = 1/2 averages the two deltas.
    no_variance_d = np.where(log_moneyness == 0, 0.0, np.copysign(np.inf, log_moneyness))
    safe_sd = np.where(has_variance, total_sd, 1.0)
    d1 = np.where(has_variance, log_moneyness / safe_sd + total_sd / 2, no_variance_d)
    return d1, d1 - total_sd


def _normal_density_over_sd(d: FloatArray, total_sd: FloatArray) -> FloatArray:
    """``phi(d) / total_sd``, with its limit (0 off the money, inf at it) where ``total_sd = 0``."""
    has_variance = total_sd > 0
    safe_sd = np.where(has_variance, total_sd, 1.0)
    limit = np.where(d == 0, np.inf, 0.0)
    return np.where(has_variance, stats.norm.pdf(d) / safe_sd, limit)


# --------------------------------------------------------------------------------------------
# Margrabe
# --------------------------------------------------------------------------------------------


def margrabe_price(
    spot1: ArrayLike,
    spot2: ArrayLike,
    maturity: ArrayLike,
    vol1: ArrayLike,
    vol2: ArrayLike,
    correlation: ArrayLike,
    dividend1: ArrayLike = 0.0,
    dividend2: ArrayLike = 0.0,
) -> FloatOrArray:
    """Margrabe price of the option to exchange asset 2 for asset 1, payoff ``max(S1 - S2, 0)``.

    Taking asset 2 as numeraire turns the option into a call on ``S1 / S2`` struck at 1, whose
    volatility is ``sigma = sqrt(vol1**2 + vol2**2 - 2 rho vol1 vol2)``. So::

        price = S1 exp(-q1 T) N(d1) - S2 exp(-q2 T) N(d2),
        d1 = (ln(S1 / S2) + (q2 - q1 + sigma**2 / 2) T) / (sigma sqrt(T)),  d2 = d1 - sigma sqrt(T).

    The risk-free rate cancels out. Source: Margrabe (1978), "The Value of an Option to Exchange
    One Asset for Another", Journal of Finance 33(1), with continuous dividend yields.

    Parameters
    ----------
    spot1, spot2 : array_like
        Prices of the asset received (S1) and of the asset given up (S2), > 0.
    maturity : array_like
        Time to expiry T in years (> 0).
    vol1, vol2 : array_like
        Volatilities of the two assets (>= 0).
    correlation : array_like
        Correlation rho of their Brownian motions, in [-1, 1].
    dividend1, dividend2 : array_like, default 0.0
        Continuous dividend yields q1, q2.

    Returns
    -------
    float or ndarray
        The price, broadcast over the array arguments.

    Raises
    ------
    ConfigError
        For an argument out of range, naming it and its value.
    """
    func = "margrabe_price"
    s1 = _positive(func, "spot1", spot1)
    s2 = _positive(func, "spot2", spot2)
    t = _positive(func, "maturity", maturity)
    v1 = _non_negative(func, "vol1", vol1)
    v2 = _non_negative(func, "vol2", vol2)
    rho = _correlation(func, "correlation", correlation)
    q1 = _finite(func, "dividend1", dividend1)
    q2 = _finite(func, "dividend2", dividend2)
    _broadcastable(
        func,
        spot1=s1,
        spot2=s2,
        maturity=t,
        vol1=v1,
        vol2=v2,
        correlation=rho,
        dividend1=q1,
        dividend2=q2,
    )
    # (vol1 - vol2)**2 >= 0 is the smallest this can be; rounding may dip just below zero.
    ratio_variance = np.maximum(v1**2 + v2**2 - 2 * rho * v1 * v2, 0.0)
    return _black(s1 * np.exp(-q1 * t), s2 * np.exp(-q2 * t), np.sqrt(ratio_variance * t), 1.0)


# --------------------------------------------------------------------------------------------
# Heston
# --------------------------------------------------------------------------------------------


def heston_price(
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    v0: ArrayLike,
    kappa: ArrayLike,
    theta: ArrayLike,
    xi: ArrayLike,
    rho: ArrayLike,
    kind: str = "call",
) -> FloatOrArray:
    """Heston price of a European call or put, by integrating the characteristic function.

    The model (risk-neutral, no dividends)::

        dS = r S dt + sqrt(v) S dW1,   dv = kappa (theta - v) dt + xi sqrt(v) dW2,
        d<W1, W2> = rho dt.

    With ``F = S exp(r T)``, ``x = ln(F / K)`` and ``psi(u) = E[exp(i u ln(S_T / F))]``, the
    Gil-Pelaez inversion of the two exercise probabilities gives::

        price = exp(-r T) [sign (F - K) / 2
                           + (1/pi) int_0^inf Re(exp(i u x) (F psi(u - i) - K psi(u)) / (i u)) du]

    with ``sign = +1`` for a call and ``-1`` for a put (Heston 1993, "A Closed-Form Solution for
    Options with Stochastic Volatility", Review of Financial Studies 6(2), eqs. 10-18). The
    characteristic function is written in the form of Albrecher, Mayer, Schoutens and Tistaert
    (2007), "The Little Heston Trap", which keeps the complex logarithm on its principal branch
    at every maturity::

        beta = kappa - rho xi i u,   d = sqrt(beta**2 + xi**2 (u**2 + i u)),
        g = (beta - d) / (beta + d),
        ln psi(u) = kappa theta / xi**2 [(beta - d) T - 2 ln((1 - g exp(-d T)) / (1 - g))]
                    + v0 / xi**2 (beta - d) (1 - exp(-d T)) / (1 - g exp(-d T)).

    ``beta - d`` is evaluated as ``-xi**2 (u**2 + i u) / (beta + d)`` so that a small ``xi``
    loses no digits (the price then tends to Black-Scholes with the mean variance over [0, T]).
    Where ``v0 = 0`` and ``kappa theta = 0`` nothing lifts the variance off zero, so it stays 0
    and the price is the zero-volatility Black-Scholes price, the discounted intrinsic value of
    the forward ``exp(-r T) max(sign (F - K), 0)``.

    The integral is computed with `scipy.integrate.quad`, one call per price: array arguments
    broadcast, but are priced one element at a time.

    Parameters
    ----------
    spot : array_like
        Spot price S (> 0).
    strike : array_like
        Strike K (> 0).
    maturity : array_like
        Time to expiry T in years (> 0).
    rate : array_like
        Risk-free rate r.
    v0 : array_like
        Initial variance (>= 0).
    kappa : array_like
        Speed of mean reversion of the variance (>= 0).
    theta : array_like
        Long-run variance (>= 0).
    xi : array_like
        Volatility of the variance (> 0).
    rho : array_like
        Correlation of the spot and variance shocks, in [-1, 1].
    kind : {"call", "put"}, default "call"

    Returns
    -------
    float or ndarray
        The price, broadcast over the array arguments.

    Raises
    ------
    ConfigError
        For an argument out of range, naming it and its value.
    """
    func = "heston_price"
    args = _broadcastable(
        func,
        **_contract(func, spot, strike, maturity, rate),
        v0=_non_negative(func, "v0", v0),
        kappa=_non_negative(func, "kappa", kappa),
        theta=_non_negative(func, "theta", theta),
        xi=_positive(func, "xi", xi),
        rho=_correlation(func, "rho", rho),
    )
    sign = _payoff_sign(func, kind)
    price_each = np.vectorize(_heston_scalar_price, otypes=[np.float64])
    return price_each(*args, sign)[()]  # [()] turns a 0-d result into a numpy float


def _heston_scalar_price(
    spot: float,
    strike: float,
    maturity: float,
    rate: float,
    v0: float,
    kappa: float,
    theta: float,
    xi: float,
    rho: float,
    sign: float,
) -> float:
    """One Heston price; see `heston_price` for the formula."""
    forward = spot * math.exp(rate * maturity)
    if v0 == 0 and kappa * theta == 0:
        # The variance is 0 throughout, so psi(u) = 1 and the integrand does not decay: quad
        # cannot integrate it. Black's formula at zero deviation is the exact price.
        return math.exp(-rate * maturity) * float(_black(forward, strike, 0.0, sign))
    log_moneyness = math.log(forward / strike)

    def psi(u: complex) -> complex:
        return _heston_characteristic(u, maturity, v0, kappa, theta, xi, rho)

    def integrand(u: float) -> float:
        numerator = forward * psi(u - 1j) - strike * psi(complex(u))
        return (cmath.exp(1j * u * log_moneyness) * numerator / (1j * u)).real

    integral, _ = integrate.quad(integrand, 0.0, math.inf, limit=500, epsabs=1e-12, epsrel=1e-10)
    return math.exp(-rate * maturity) * (sign * (forward - strike) / 2 + integral / math.pi)


def _heston_characteristic(
    u: complex, maturity: float, v0: float, kappa: float, theta: float, xi: float, rho: float
) -> complex:
    """``E[exp(i u ln(S_T / F))]`` under Heston, little-trap form (see `heston_price`)."""
    beta = kappa - rho * xi * 1j * u
    d = cmath.sqrt(beta * beta + xi * xi * (u * u + 1j * u))
    beta_minus_d_over_xi2 = -(u * u + 1j * u) / (beta + d)  # (beta - d) / xi**2, no cancellation
    g = beta_minus_d_over_xi2 * xi * xi / (beta + d)
    decay = cmath.exp(-d * maturity)
    # ln((1 - g e) / (1 - g)) = log1p(g (1 - e) / (1 - g)); its argument is O(xi**2).
    log_ratio = _log1p_complex(g * (1 - decay) / (1 - g))
    variance_term = beta_minus_d_over_xi2 * (1 - decay) / (1 - g * decay)
    mean_term = kappa * theta * (beta_minus_d_over_xi2 * maturity - 2 * log_ratio / (xi * xi))
    return cmath.exp(mean_term + v0 * variance_term)


def _log1p_complex(z: complex) -> complex:
    """Principal ``ln(1 + z)``, accurate for small ``z`` (where ``cmath.log(1 + z)`` is not)."""
    # |1 + z|**2 = 1 + (2 Re z + |z|**2), so log1p keeps every digit of a small modulus change.
    return complex(
        0.5 * math.log1p(2 * z.real + z.real * z.real + z.imag * z.imag),
        math.atan2(z.imag, 1 + z.real),
    )


# --------------------------------------------------------------------------------------------
# Geometric basket
# --------------------------------------------------------------------------------------------


def geometric_basket_price(
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    correlation: ArrayLike,
    weights: ArrayLike | None = None,
    kind: str = "call",
) -> FloatOrArray:
    """European option on the weighted geometric average ``G = prod_i S_i ** w_i`` of d GBMs.

    Each ``S_i`` follows ``dS_i = r S_i dt + sigma_i S_i dW_i`` with ``d<W_i, W_j> = rho_ij dt``.
    Then ``ln G_T = sum_i w_i ln S_i(T)`` is normal with::

        mean     m  = sum_i w_i ln S_i(0) + (r sum_i w_i - sum_i w_i sigma_i**2 / 2) T,
        variance s2 = T sum_ij w_i w_j rho_ij sigma_i sigma_j,

    so G_T is lognormal with forward ``F = exp(m + s2 / 2)`` and the Black formula prices it::

        price = exp(-r T) (F N(d1) - K N(d2)) (call),  d1 = (ln(F / K) + s2 / 2) / sqrt(s2).

    The derivation is the lognormal argument of Kemna and Vorst (1990), "A Pricing Method for
    Options Based on Average Asset Values", made over assets instead of dates; it gives a
    high-dimensional test case with an exact price.

    Parameters
    ----------
    spot : array_like, shape () or (d,)
        Spot prices S_i(0) (> 0).
    strike : array_like
        Strike K (> 0); broadcasts with ``maturity`` and ``rate``.
    maturity : array_like
        Time to expiry T in years (> 0).
    rate : array_like
        Risk-free rate r.
    volatility : array_like, shape () or (d,)
        Volatilities sigma_i (>= 0).
    correlation : float or array_like of shape (d, d)
        A number is the same correlation for every pair (it must lie in [-1/(d-1), 1]); a
        matrix must be symmetric with a unit diagonal, entries in [-1, 1] and positive
        semi-definite.
    weights : array_like, shape () or (d,), optional
        Exponents w_i; the default ``1/d`` each is the plain geometric mean.
    kind : {"call", "put"}, default "call"

    The number of assets d is the common length of ``spot``, ``volatility``, ``weights`` and the
    side of a correlation matrix; where all of them are scalars, d = 1.

    Returns
    -------
    float or ndarray
        The price, broadcast over ``strike``, ``maturity`` and ``rate``.

    Raises
    ------
    ConfigError
        For an argument out of range or per-asset arguments of different lengths.
    """
    func = "geometric_basket_price"
    n_assets = _basket_size(func, spot, volatility, weights, correlation)
    spots = np.broadcast_to(_positive(func, "spot", spot), (n_assets,))
    vols = np.broadcast_to(_non_negative(func, "volatility", volatility), (n_assets,))
    if weights is None:
        exponents = np.full(n_assets, 1.0 / n_assets)
    else:
        exponents = np.broadcast_to(_finite(func, "weights", weights), (n_assets,))
    corr = _correlation_matrix(func, correlation, n_assets)
    k, t, r = _broadcastable(
        func,
        strike=_positive(func, "strike", strike),
        maturity=_positive(func, "maturity", maturity),
        rate=_finite(func, "rate", rate),
    )
    sign = _payoff_sign(func, kind)

    scaled_vols = exponents * vols
    # Rounding can push a zero variance just below zero.
    variance_rate = max(float(scaled_vols @ corr @ scaled_vols), 0.0)
    log_drift = r * exponents.sum() - (exponents @ vols**2) / 2
    log_forward = exponents @ np.log(spots) + (log_drift + variance_rate / 2) * t
    return np.exp(-r * t) * _black(np.exp(log_forward), k, np.sqrt(variance_rate * t), sign)


def _basket_size(
    func: str,
    spot: ArrayLike,
    volatility: ArrayLike,
    weights: ArrayLike | None,
    correlation: ArrayLike,
) -> int:
    """The number of assets d that the per-asset arguments agree on."""
    shapes = {"spot": np.shape(spot), "volatility": np.shape(volatility)}
    if weights is not None:
        shapes["weights"] = np.shape(weights)
    if np.ndim(correlation) == 2:
        shapes["correlation"] = np.shape(correlation)[:1]
    try:
        common = np.broadcast_shapes(*shapes.values())
    except ValueError:
        common = None
    if common is None or len(common) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ConfigError(
            f"{func}: the per-asset arguments disagree on the number of assets ({listed}); each "
            "must be a number or have one entry per asset (a (d, d) correlation matrix)"
        )
    d = common[0] if common else 1
    if d == 0:
        raise ConfigError(f"{func}: the basket has no assets; give at least one")
    return d


def _correlation_matrix(func: str, correlation: ArrayLike, n_assets: int) -> FloatArray:
    """A valid (d, d) correlation matrix from a common pairwise number or a matrix."""
    if np.ndim(correlation) == 0:
        rho = check_common_correlation(func, "correlation", correlation, n_assets)
        matrix = np.full((n_assets, n_assets), rho)
        np.fill_diagonal(matrix, 1.0)
        return matrix
    return check_correlation_matrix(func, "correlation", correlation, n_assets)


# --------------------------------------------------------------------------------------------
# Merton jump-diffusion
# --------------------------------------------------------------------------------------------


def merton_price(
    spot: ArrayLike,
    strike: ArrayLike,
    maturity: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    jump_intensity: ArrayLike,
    jump_mean: ArrayLike,
    jump_std: ArrayLike,
    kind: str = "call",
    terms: int = 80,
) -> FloatOrArray:
    """Merton jump-diffusion price of a European call or put, as a Poisson mixture of Black.

    Risk-neutral dynamics, with N a Poisson process of intensity lambda and lognormal jumps
    ``ln J ~ N(mu_J, delta**2)``, ``k = E[J - 1] = exp(mu_J + delta**2 / 2) - 1``::

        dS / S = (r - lambda k) dt + sigma dW + (J - 1) dN.

    Given n jumps by T, ``S_T`` is lognormal with log variance ``sigma**2 T + n delta**2`` and
    forward ``F_n = S exp((r - lambda k) T) (1 + k)**n``; summing over ``n ~ Poisson(lambda T)``::

        price = exp(-r T) sum_n P(N_T = n) Black(F_n, K, sqrt(sigma**2 T + n delta**2)).

    This is the series of Merton (1976), "Option Pricing When Underlying Stock Returns Are
    Discontinuous", Journal of Financial Economics 3, eq. 19 (his weights use the intensity
    ``lambda (1 + k)``; rearranged, the two sums agree term by term).

    Parameters
    ----------
    spot, strike, maturity, rate, volatility : array_like
        As in `black_scholes_price` (volatility is that of the diffusion part).
    jump_intensity : array_like
        Expected number of jumps per year lambda (>= 0).
    jump_mean : array_like
        Mean mu_J of the log jump size.
    jump_std : array_like
        Standard deviation delta of the log jump size (>= 0).
    kind : {"call", "put"}, default "call"
    terms : int, default 80
        Number of series terms (jump counts 0 .. terms - 1).

    Returns
    -------
    float or ndarray
        The price, broadcast over the array arguments.

    Raises
    ------
    ConfigError
        For an argument out of range, naming it and its value; when ``jump_mean + jump_std**2 / 2``
        is not below 700 (the mean jump factor ``1 + k`` would overflow); also when ``terms`` is
        too few for the truncation to be negligible (the left-out Poisson mass bounds the error by
        more than 1e-12 of the spot or strike).
    """
    func = "merton_price"
    s = _positive(func, "spot", spot)
    k = _positive(func, "strike", strike)
    t = _positive(func, "maturity", maturity)
    r = _finite(func, "rate", rate)
    vol = _non_negative(func, "volatility", volatility)
    intensity = _non_negative(func, "jump_intensity", jump_intensity)
    mu_j = _finite(func, "jump_mean", jump_mean)
    delta = _non_negative(func, "jump_std", jump_std)
    _broadcastable(
        func,
        spot=s,
        strike=k,
        maturity=t,
        rate=r,
        volatility=vol,
        jump_intensity=intensity,
        jump_mean=mu_j,
        jump_std=delta,
    )
    sign = _payoff_sign(func, kind)
    if isinstance(terms, bool) or not isinstance(terms, int | np.integer) or terms < 1:
        raise ConfigError(f"{func}: terms={terms!r} must be an integer >= 1")
    check_lognormal_jumps(func, mu_j, delta)

    mean_jump = np.expm1(mu_j + delta**2 / 2)
    _check_merton_truncation(func, terms, intensity * t, intensity * (1 + mean_jump) * t)

    discount = np.exp(-r * t)
    # Jump counts run along a new last axis, summed over at the end.
    n = np.arange(terms)
    s, k, t, r, vol, intensity, delta, mean_jump = (
        np.expand_dims(a, -1) for a in (s, k, t, r, vol, intensity, delta, mean_jump)
    )
    log_forward = np.log(s) + (r - intensity * mean_jump) * t + n * np.log1p(mean_jump)
    total_sd = np.sqrt(vol**2 * t + n * delta**2)
    weights = stats.poisson.pmf(n, intensity * t)
    mixture = (weights * _black(np.exp(log_forward), k, total_sd, sign)).sum(axis=-1)
    return discount * mixture


def _check_merton_truncation(
    func: str, terms: int, mean_jumps: FloatArray, share_mean_jumps: FloatArray
) -> None:
    """Raise unless the series terms left out are negligible.

    The left-out put terms are at most ``K P(N_T >= terms)``; the call terms, at most
    ``S P(N'_T >= terms)`` with N' Poisson with the share-measure mean ``lambda (1 + k) T``.
    """
    tail = max(
        float(np.max(stats.poisson.sf(terms - 1, mean_jumps))),
        float(np.max(stats.poisson.sf(terms - 1, share_mean_jumps))),
    )
    if tail > _MERTON_TAIL_TOLERANCE:
        raise ConfigError(
            f"{func}: terms={terms} leaves out Poisson mass {tail:.3g} of the jump count; it "
            f"must be large enough for at most {_MERTON_TAIL_TOLERANCE:g} (raise terms)"
        )


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _payoff_sign(func: str, kind: str) -> float:
    """+1 for a call, -1 for a put: the payoff is ``max(sign (S - K), 0)``."""
    sign = _PAYOFF_SIGNS.get(kind) if isinstance(kind, str) else None
    if sign is None:
        raise ConfigError(f"{func}: kind={kind!r} is not allowed; it must be 'call' or 'put'")
    return sign


def _positive(func: str, name: str, value: ArrayLike) -> FloatArray:
    return _checked(func, name, value, lambda a: a > 0, "a finite number > 0")


def _non_negative(func: str, name: str, value: ArrayLike) -> FloatArray:
    return _checked(func, name, value, lambda a: a >= 0, "a finite number >= 0")


def _finite(func: str, name: str, value: ArrayLike) -> FloatArray:
    return _checked(func, name, value, lambda a: np.ones(a.shape, dtype=bool), "a finite number")


def _correlation(func: str, name: str, value: ArrayLike) -> FloatArray:
    return _checked(func, name, value, lambda a: np.abs(a) <= 1, "a number in [-1, 1]")


def _broadcastable(func: str, **arrays: FloatArray) -> tuple[FloatArray, ...]:
    """The arrays as given, or a ConfigError naming their shapes when they do not broadcast
    together (numpy's own error names no argument)."""
    try:
        np.broadcast_shapes(*(np.shape(a) for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in arrays.items() if np.ndim(a))
        raise ConfigError(
            f"{func}: the arguments' shapes do not broadcast together ({shapes}); give numbers, "
            "or arrays of one shape (or of shapes numpy broadcasts)"
        ) from None
    return tuple(arrays.values())


def _real_objects(raw: np.ndarray) -> bool:
    """Whether an object array holds real numbers only (Fraction, Decimal, mixed columns)."""
    return raw.dtype.kind == "O" and all(
        isinstance(x, numbers.Real | decimal.Decimal) and not isinstance(x, bool) for x in raw.flat
    )


def _checked(
    func: str,
    name: str,
    value: ArrayLike,
    is_allowed: Callable[[FloatArray], NDArray[np.bool_]],
    allowed: str,
) -> FloatArray:
    """``value`` as a float array, or a ConfigError naming it, its first bad entry and the rule.

    A tensor is read detached: these formulas are numpy's, outside any autograd graph (a
    tensor that requires grad refuses numpy's conversion otherwise).
    """
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):  # e.g. a ragged list
        raw = np.asarray(None)
    # numbers only: numpy would read True as 1, "0.1" as 0.1 and drop an imaginary part
    if raw.dtype.kind not in "iuf" and not _real_objects(raw):
        shown = repr(value) if raw.ndim == 0 else f"<array of dtype {raw.dtype}>"
        raise ConfigError(f"{func}: {name}={shown} is not numeric; it must be {allowed}")
    array = raw.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(array) & is_allowed(array))
    if bad.any():
        position = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" (element {list(position)})" if position else ""
        raise ConfigError(
            f"{func}: {name}={float(array[position])!r}{where} is out of range; it must be "
            f"{allowed}"
        )
    return array
