"""Bermudan (discretely exercised American) options by least-squares Monte Carlo.

Longstaff and Schwartz (2001), "Valuing American Options by Simulation: A Simple Least-Squares
Approach", Review of Financial Studies 14(1). Going backwards over the exercise dates, the value
of holding on is estimated by regressing the realized, discounted cash flows of the current
exercise rule on functions of today's spot, over the in-the-money paths only; a path is
exercised where its immediate payoff beats that estimate. The price is the mean of the
discounted cash flows the final rule produces.

The paths are the caller's, so any model (GBM, Heston, a learned simulator) can be priced and
the same paths reused across strikes and payoffs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import laguerre
from numpy.typing import ArrayLike, NDArray

from kabuto.errors import ConfigError
from kabuto.hedging.closed_form import _finite, _payoff_sign, _positive

__all__ = ["LSMResult", "longstaff_schwartz"]

_FUNC = "longstaff_schwartz"


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
    strike_value = _scalar("strike", _positive(_FUNC, "strike", strike))
    rate_value = _scalar("rate", _finite(_FUNC, "rate", rate))
    maturity_value = _scalar("maturity", _positive(_FUNC, "maturity", maturity))
    sign = _payoff_sign(_FUNC, kind)
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 1:
        raise ConfigError(f"{_FUNC}: degree={degree!r} must be an integer >= 1")

    n_dates = spots.shape[1] - 1
    step_discount = math.exp(-rate_value * maturity_value / n_dates)
    payoffs = np.maximum(sign * (spots - strike_value), 0.0)
    boundary = np.full(n_dates, np.nan)

    # At maturity the rule exercises whatever is in the money.
    cash_flow = payoffs[:, -1].copy()
    boundary[-1] = _boundary_spot(spots[cash_flow > 0, -1], sign)
    for date in range(n_dates - 1, 0, -1):
        cash_flow *= step_discount  # now valued at this date
        in_money = np.flatnonzero(payoffs[:, date] > 0)
        if in_money.size <= degree:
            continue
        continuation = _fitted_continuation(
            spots[in_money, date] / strike_value, cash_flow[in_money], degree
        )
        exercised = in_money[payoffs[in_money, date] > continuation]
        cash_flow[exercised] = payoffs[exercised, date]
        boundary[date - 1] = _boundary_spot(spots[exercised, date], sign)

    present_values = cash_flow * step_discount
    return LSMResult(
        price=float(present_values.mean()),
        std_error=float(present_values.std(ddof=1) / math.sqrt(present_values.size)),
        exercise_boundary=boundary,
    )


def _fitted_continuation(
    scaled_spots: NDArray[np.float64], discounted_cash_flows: NDArray[np.float64], degree: int
) -> NDArray[np.float64]:
    """Least-squares fit of the cash flows on Laguerre polynomials of the scaled spots."""
    design = laguerre.lagvander(scaled_spots, degree)
    coefficients, *_ = np.linalg.lstsq(design, discounted_cash_flows, rcond=None)
    return design @ coefficients


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


def _scalar(name: str, value: NDArray[np.float64]) -> float:
    if value.ndim:
        raise ConfigError(f"{_FUNC}: {name} has shape {value.shape}; it must be a single number")
    return float(value)
