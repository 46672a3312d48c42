"""Bermudan (discretely exercised American) options by least-squares Monte Carlo.

Longstaff and Schwartz (2001), "Valuing American Options by Simulation: A Simple Least-Squares
Approach", Review of Financial Studies 14(1). Going backwards over the exercise dates, the value
of holding on is estimated by regressing the realized, discounted cash flows of the current
exercise rule on functions of today's spot, over the in-the-money paths only; a path is
exercised where its immediate payoff beats that estimate. The price is the mean of the
discounted cash flows the final rule produces.

The paths are the caller's, so any model (GBM, Heston, a learned simulator) can be priced and
the same paths reused across strikes and payoffs. `longstaff_schwartz` prices an option on one
spot; `basket_longstaff_schwartz` an option on the arithmetic or geometric average of several,
regressing on the basket and on the individual assets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import laguerre
from numpy.typing import ArrayLike, NDArray

from kabuto.errors import ConfigError
from kabuto.hedging.basket import basket_weights, single_number
from kabuto.hedging.closed_form import _finite, _payoff_sign, _positive
from kabuto.settings import check_choice

__all__ = ["LSMResult", "basket_longstaff_schwartz", "longstaff_schwartz"]

_FUNC = "longstaff_schwartz"
_BASKET_FUNC = "basket_longstaff_schwartz"


@dataclass(frozen=True)
class LSMResult:
    """A least-squares Monte Carlo price.

    Attributes
    ----------
    price : float
        Mean discounted cash flow of the estimated exercise rule.
    std_error : float
        Its Monte Carlo standard error, ``std / sqrt(n_paths)``, treating the paths as
        independent (so over-stated for antithetic pairs, which are negatively correlated).
    exercise_boundary : ndarray of shape (n_dates,)
        For each exercise date (columns 1 .. n_dates of the paths), the least favourable spot at
        which the rule exercises: the highest exercised spot for a put, the lowest for a call;
        NaN on a date where it exercises no path. At the last date every in-the-money path is
        exercised, so the entry is close to the strike.
    """

    price: float
    std_error: float
    exercise_boundary: NDArray[np.float64]


def longstaff_schwartz(
    paths: ArrayLike,
    strike: float,
    rate: float,
    maturity: float,
    kind: str = "put",
    degree: int = 3,
) -> LSMResult:
    """Longstaff-Schwartz price of a Bermudan call or put on simulated spot paths.

    The option can be exercised at every date after today, ``t_j = j maturity / n_dates`` for
    ``j = 1 .. n_dates``, paying ``max(sign (S - K), 0)``. Writing ``Y`` for the cash flow of the
    current rule discounted to ``t_j`` (at the rate ``rate``), the continuation value is estimated
    as the least-squares fit ``E[Y | S_{t_j}] ~ sum_{m <= degree} beta_m L_m(S_{t_j} / K)`` over the
    in-the-money paths, with ``L_m`` the Laguerre polynomials (Longstaff and Schwartz 2001, sec.
    2; the spot is scaled by the strike to keep the regression well conditioned). Paths whose
    payoff exceeds the fit are exercised at ``t_j``. On a date with no more than ``degree``
    in-the-money paths the fit is undetermined, and every path is held.

    The fit uses the same paths as the price, which biases the price slightly upwards; the
    rule's sub-optimality biases it downwards (Longstaff and Schwartz 2001, sec. 3). With tens of
    thousands of paths both are small against the standard error.

    Parameters
    ----------
    paths : array_like of shape (n_paths, n_dates + 1)
        Risk-neutral spot paths (> 0); column 0 is today, and the columns are equally spaced.
    strike : float
        Strike K (> 0).
    rate : float
        Continuously compounded risk-free rate, annualized.
    maturity : float
        Time from today to the last column, in years (> 0).
    kind : {"call", "put"}, default "put"
    degree : int, default 3
        Highest degree of the regression polynomials (>= 1).

    Returns
    -------
    LSMResult
        The price, its standard error and the estimated exercise boundary.

    Raises
    ------
    ConfigError
        For an argument out of range, naming it and its value.
    """
    spots = _checked_paths(paths)
    strike_value = single_number(_FUNC, "strike", _positive(_FUNC, "strike", strike))
    rate_value = single_number(_FUNC, "rate", _finite(_FUNC, "rate", rate))
    maturity_value = single_number(_FUNC, "maturity", _positive(_FUNC, "maturity", maturity))
    sign = _payoff_sign(_FUNC, kind)
    _check_degree(_FUNC, degree)

    def regressors(date: int, rows: NDArray[np.intp]) -> NDArray[np.float64]:
        return laguerre.lagvander(spots[rows, date] / strike_value, degree)

    return _least_squares_monte_carlo(
        spots, strike_value, rate_value, maturity_value, sign, regressors, degree + 1
    )


def basket_longstaff_schwartz(
    paths: ArrayLike,
    strike: float,
    rate: float,
    maturity: float,
    kind: str = "put",
    weights: ArrayLike | None = None,
    average: str = "arithmetic",
    degree: int = 3,
) -> LSMResult:
    """Longstaff-Schwartz price of a Bermudan call or put on a basket of several assets.

    The option pays ``max(sign (B_t - K), 0)`` on exercise at ``t_j = j maturity / n_dates``,
    ``j = 1 .. n_dates``, where the basket is the arithmetic average ``B = sum_i w_i S_i`` or the
    geometric average ``B = prod_i S_i ** w_i``. As in `longstaff_schwartz`, today is not an
    exercise date: an option also exercisable now is worth ``max(payoff today, price)``, which
    matters only deep in the money. The backward induction is that of
    `longstaff_schwartz`; the continuation value is regressed, over the in-the-money paths, on

    * ``L_m(B_{t_j} / K)``, m = 0 .. degree, the Laguerre polynomials of the scaled basket (all
      the payoff depends on), and
    * for d >= 2, each asset's first two powers ``S_i / K`` and ``(S_i / K)**2``, which let the
      fit see how the basket is made up (a basket near the strike with widely spread assets is
      more volatile than one with the assets together).

    That is ``degree + 1 + 2 d`` regressors, few enough to fit with tens of thousands of paths
    for d in the tens (Longstaff and Schwartz 2001 likewise regress on low-order polynomials of
    the state variables when there are several). With one asset the asset
    terms would repeat the basket terms and are left out, so on one-asset paths this is
    `longstaff_schwartz` exactly. For an arithmetic basket ``L_1(B / K)`` lies in the span of the
    constant and the ``S_i / K``; the least-squares solver (``numpy.linalg.lstsq``, an SVD that
    drops the null direction) still gives the fitted values of the projection.

    Parameters
    ----------
    paths : array_like of shape (n_paths, n_dates + 1, d)
        Risk-neutral prices (> 0) of the d assets; column 0 is today, and the columns are equally
        spaced (e.g. `kabuto.sim.paths.gbm_paths`).
    strike : float
        Strike K (> 0).
    rate : float
        Continuously compounded risk-free rate, annualized.
    maturity : float
        Time from today to the last column, in years (> 0).
    kind : {"call", "put"}, default "put"
    weights : array_like of shape () or (d,), optional
        Basket weights, non-negative and summing to one; ``1/d`` each by default.
    average : {"arithmetic", "geometric"}, default "arithmetic"
    degree : int, default 3
        Highest degree of the Laguerre polynomials in the basket (>= 1).

    Returns
    -------
    LSMResult
        The price, its standard error and the exercise boundary, given in basket values (the
        highest basket value exercised for a put, the lowest for a call).

    Raises
    ------
    ConfigError
        For an argument out of range, naming it and its value.
    """
    prices = _positive(_BASKET_FUNC, "paths", paths)
    if prices.ndim != 3 or prices.shape[0] < 2 or prices.shape[1] < 2:
        raise ConfigError(
            f"{_BASKET_FUNC}: paths has shape {prices.shape}; it must be (n_paths, n_dates + 1, "
            "d) with at least 2 paths and 2 dates (today and one exercise date)"
        )
    n_assets = prices.shape[2]
    strike_value = single_number(_BASKET_FUNC, "strike", _positive(_BASKET_FUNC, "strike", strike))
    rate_value = single_number(_BASKET_FUNC, "rate", _finite(_BASKET_FUNC, "rate", rate))
    maturity_value = single_number(
        _BASKET_FUNC, "maturity", _positive(_BASKET_FUNC, "maturity", maturity)
    )
    sign = _payoff_sign(_BASKET_FUNC, kind)
    w = basket_weights(_BASKET_FUNC, weights, n_assets)
    geometric = (
        check_choice(_BASKET_FUNC, "average", average, ("arithmetic", "geometric")) == "geometric"
    )
    _check_degree(_BASKET_FUNC, degree)

    basket = np.exp(np.log(prices) @ w) if geometric else prices @ w

    def regressors(date: int, rows: NDArray[np.intp]) -> NDArray[np.float64]:
        on_basket = laguerre.lagvander(basket[rows, date] / strike_value, degree)
        if n_assets == 1:
            return on_basket
        scaled = prices[rows, date, :] / strike_value
        return np.hstack([on_basket, scaled, scaled**2])

    n_regressors = degree + 1 + (2 * n_assets if n_assets > 1 else 0)
    return _least_squares_monte_carlo(
        basket, strike_value, rate_value, maturity_value, sign, regressors, n_regressors
    )


def _least_squares_monte_carlo(
    underlying: NDArray[np.float64],
    strike: float,
    rate: float,
    maturity: float,
    sign: float,
    regressors: Callable[[int, NDArray[np.intp]], NDArray[np.float64]],
    n_regressors: int,
) -> LSMResult:
    """The Longstaff-Schwartz backward induction on payoffs ``max(sign (underlying - K), 0)``.

    ``underlying`` (n_paths, n_dates + 1) is what the option pays on (a spot or a basket);
    ``regressors(date, rows)`` gives the (len(rows), n_regressors) design matrix of the given
    paths at the given date. On a date with fewer in-the-money paths than regressors the fit is
    undetermined, and every path is held.
    """
    n_dates = underlying.shape[1] - 1
    step_discount = math.exp(-rate * maturity / n_dates)
    payoffs = np.maximum(sign * (underlying - strike), 0.0)
    boundary = np.full(n_dates, np.nan)

    # At maturity the rule exercises whatever is in the money.
    cash_flow = payoffs[:, -1].copy()
    boundary[-1] = _boundary_spot(underlying[cash_flow > 0, -1], sign)
    for date in range(n_dates - 1, 0, -1):
        cash_flow *= step_discount  # now valued at this date
        in_money = np.flatnonzero(payoffs[:, date] > 0)
        if in_money.size < n_regressors:
            continue
        continuation = _fitted_continuation(regressors(date, in_money), cash_flow[in_money])
        exercised = in_money[payoffs[in_money, date] > continuation]
        cash_flow[exercised] = payoffs[exercised, date]
        boundary[date - 1] = _boundary_spot(underlying[exercised, date], sign)

    present_values = cash_flow * step_discount
    return LSMResult(
        price=float(present_values.mean()),
        std_error=float(present_values.std(ddof=1) / math.sqrt(present_values.size)),
        exercise_boundary=boundary,
    )


def _fitted_continuation(
    design: NDArray[np.float64], discounted_cash_flows: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Least-squares fit of the cash flows on the columns of the design matrix."""
    coefficients, *_ = np.linalg.lstsq(design, discounted_cash_flows, rcond=None)
    return design @ coefficients


def _check_degree(func: str, degree: object) -> None:
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 1:
        raise ConfigError(f"{func}: degree={degree!r} must be an integer >= 1")


def _boundary_spot(exercised_spots: NDArray[np.float64], sign: float) -> float:
    """The exercised spot nearest the money (NaN where nothing is exercised)."""
    if exercised_spots.size == 0:
        return math.nan
    return float(exercised_spots.max() if sign < 0 else exercised_spots.min())


def _checked_paths(paths: ArrayLike) -> NDArray[np.float64]:
    """The paths as a float matrix with at least two paths and two dates, all prices > 0."""
    spots = _positive(_FUNC, "paths", paths)
    if spots.ndim != 2 or spots.shape[0] < 2 or spots.shape[1] < 2:
        raise ConfigError(
            f"{_FUNC}: paths has shape {spots.shape}; it must be (n_paths, n_dates + 1) with at "
            "least 2 paths and 2 columns (today and one exercise date)"
        )
    return spots
