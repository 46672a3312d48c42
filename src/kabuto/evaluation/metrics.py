"""Performance metrics: the one module where kabuto defines them.

Every figure kabuto reports comes from a function here, and `METRIC_DEFINITIONS` gives each a
one-line definition that reports print beside it (it also defines the inference columns of the
leaderboard -- Sharpe interval, PSR, DSR, Sharpe difference -- whose estimators are documented in
`kabuto.evaluation.statistics`).

Conventions
-----------
Let ``r_1, ..., r_T`` be **daily simple returns** (``P_t / P_{t-1} - 1``) of the whole book, net
of costs unless said otherwise, and ``A = 252`` trading days a year (`ANNUALIZATION`). Wealth is
compounded from 1: ``W_0 = 1``, ``W_t = prod_{s <= t} (1 + r_s)``; ``Y = T / A`` is the length of
the series in years.

Ruin is absorbing: a day's loss can exceed 100% of the book (leverage, short positions), and once
``W_t <= 0`` wealth stays 0 -- a later product of two negative factors does not bring it back.
So after ruin ``total_return`` and ``cagr`` are ``-1`` and the drawdown is ``-1`` on every later
day, and drawdowns always lie in ``[-1, 0]``. Only the metrics of compounded wealth
(``total_return``, ``cagr``, ``max_drawdown``, ``calmar``) see this; the others use the daily
returns as given.

==================  ===========================================================================
total_return        ``W_T - 1``.
cagr                Geometric: ``W_T ** (A / T) - 1`` (``-1`` once wealth is wiped out).
volatility          ``std(r, ddof=1) * sqrt(A)``.
sharpe              ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(A)``, ``rf`` the daily risk-free
                    return (0 by default).
sortino             ``mean(r - mar) * A / DD`` with the downside deviation
                    ``DD = sqrt(mean(min(r - mar, 0) ** 2)) * sqrt(A)`` taken over all ``T`` days
                    (days above ``mar`` count as zeros); ``mar`` is a daily return (0 by default).
max_drawdown        ``min_t (W_t / max_{s <= t} W_s - 1)`` with the running peak including
                    ``W_0 = 1``; a negative number (``-0.35`` is a 35% peak-to-trough loss),
                    0 for a path that never falls.
calmar              ``cagr / |max_drawdown|``; NaN when there is no drawdown.
hit_rate            Share of **all** ``T`` days with ``r_t > 0``. Flat days (``r_t == 0``, e.g. a
                    book fully in cash) count as misses, so a strategy that is idle most of the
                    time cannot show a high hit rate from a handful of trading days.
cvar_95             Historical daily expected shortfall at 95%: the mean of the
                    ``k = floor((T - 1) * 0.05) + 1`` lowest daily returns, i.e. of the days at or
                    below the empirical 5% quantile; reported as a (typically negative) return.
beta                ``cov(r, b) / var(b)`` against the daily benchmark returns ``b``.
information_ratio   ``mean(r - b) / std(r - b, ddof=1) * sqrt(A)`` (annualized active return over
                    annualized tracking error).
turnover            Mean one-way traded notional per year: ``sum_rebalances(two-way traded
                    notional / 2) / Y``. 1.0 means the whole book is replaced once a year.
costs_paid          Costs paid per year as a fraction of wealth: ``sum_t(cost_t) / Y``.
==================  ===========================================================================

Where empyrical-reloaded has the metric, the definition is the same as its own, to floating-point
precision: ``annual_return`` (cagr), ``annual_volatility``, ``sharpe_ratio``, ``sortino_ratio``,
``max_drawdown``, ``calmar_ratio``, ``conditional_value_at_risk`` (cvar_95), ``beta`` and
``excess_sharpe`` (information_ratio is ``excess_sharpe * sqrt(252)``: empyrical does not
annualize it). Degenerate inputs follow empyrical too: a ratio whose denominator is exactly zero
(constant returns, no downside) is ``+-inf`` (``nan`` for ``0 / 0``); too few observations give
``nan`` (fewer than 2 for dispersion-based metrics, fewer than 1 for the rest).

Inputs are 1-D numpy arrays or pandas Series of integers or floats without NaN or infinities (a
`kabuto.errors.ArgumentError`, also a `ValueError`, names the first bad position otherwise); bool,
datetime, timedelta, complex and string values are refused rather than read as numbers. Bad
arguments raise the same error. A benchmark, risk-free rate or ``mar`` given as a Series next to
Series returns is aligned on the returns' dates (a missing date is an error); otherwise series are
paired by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pandas as pd

from kabuto.errors import ArgumentError
from kabuto.settings import is_integer, is_real

if TYPE_CHECKING:
    from kabuto.backtest.result import StrategyResult

__all__ = [
    "ANNUALIZATION",
    "METRIC_DEFINITIONS",
    "SUMMARY_KEYS",
    "beta",
    "cagr",
    "calmar",
    "costs_per_year",
    "cvar",
    "downside_deviation",
    "drawdowns",
    "hit_rate",
    "information_ratio",
    "max_drawdown",
    "sharpe",
    "sortino",
    "summary",
    "total_return",
    "turnover_per_year",
    "volatility",
    "wealth",
]

ReturnsLike: TypeAlias = "np.ndarray | pd.Series | Sequence[float]"

ANNUALIZATION: int = 252
"""Trading days per year used to annualize every daily metric."""

SUMMARY_KEYS: tuple[str, ...] = (
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "hit_rate",
    "cvar_95",
    "beta",
    "information_ratio",
    "turnover",
    "costs_paid",
    "total_return",
)
"""Keys of `summary`, in the order reports print them."""

METRIC_DEFINITIONS: dict[str, str] = {
    "cagr": "Compound annual growth rate: final wealth ** (252 / days) - 1 (daily simple returns).",
    "volatility": "Annualized volatility: std of daily returns (ddof=1) * sqrt(252).",
    "sharpe": "Sharpe ratio: mean daily excess return / its std (ddof=1) * sqrt(252); rf = 0.",
    "sortino": (
        "Sortino ratio: mean daily return * 252 / annualized downside deviation "
        "sqrt(mean(min(r, 0)^2) * 252) over all days."
    ),
    "max_drawdown": "Maximum drawdown: worst peak-to-trough fall of compounded wealth (negative).",
    "calmar": "Calmar ratio: CAGR / |maximum drawdown|.",
    "hit_rate": "Hit rate: share of all days with a positive return (flat days count as misses).",
    "cvar_95": (
        "CVaR 95%: mean of the daily returns at or below the historical 5% quantile "
        "(a negative return)."
    ),
    "beta": "Beta: cov(daily returns, benchmark) / var(benchmark).",
    "information_ratio": (
        "Information ratio: mean daily active return vs benchmark / its std (ddof=1) * sqrt(252)."
    ),
    "turnover": (
        "Turnover: one-way traded notional per year, sum(|w_target - w_drifted|) / 2 / years."
    ),
    "costs_paid": "Costs paid: transaction costs per year as a fraction of wealth.",
    "total_return": "Total return: compounded wealth at the end - 1.",
    # Leaderboard columns (kabuto.evaluation.leaderboard / statistics).
    "gross_sharpe": "Sharpe ratio of returns before transaction costs (same definition).",
    "sharpe_ci": (
        "Sharpe ratio interval (95% by default): percentiles of the stationary-bootstrap "
        "(Politis-Romano) distribution of the Sharpe ratio."
    ),
    "sharpe_ci_low": "Lower end of the stationary-bootstrap percentile interval of Sharpe.",
    "sharpe_ci_high": "Upper end of the stationary-bootstrap percentile interval of Sharpe.",
    "psr": (
        "Probabilistic Sharpe ratio (Bailey-Lopez de Prado): P(true Sharpe > 0) given the "
        "track length, skewness and kurtosis."
    ),
    "dsr": (
        "Deflated Sharpe ratio: PSR against the best Sharpe expected by luck among the "
        "strategies on the board (n_trials = their number)."
    ),
    "sharpe_diff": (
        "Sharpe ratio minus the benchmark strategy's (report.benchmark_strategy; by default the "
        "equal-weight strategy when one is run; named in the run's settings)."
    ),
    "sharpe_diff_pvalue": (
        "Two-sided p-value of equal Sharpe ratios vs the benchmark strategy "
        "(paired stationary bootstrap, centered)."
    ),
}
"""One-line human definition of each `summary` key and leaderboard column, printed by reports.

Net returns unless said otherwise.
"""

_SQRT_A = np.sqrt(ANNUALIZATION)


# ---------------------------------------------------------------------------------------------
# validation and shared kernels


# What pandas infers for an object array of numbers (None and NaN skipped: the NaN check names
# them by position).
_NUMERIC_OBJECTS = frozenset({"integer", "floating", "mixed-integer-float", "decimal", "empty"})


def _numeric_array(values: object, name: str = "returns") -> np.ndarray:
    """``values`` as a float array, or ArgumentError unless they are integers or floats.

    numpy converts bool (True as 1), datetime and timedelta (nanoseconds) and complex (imaginary
    part dropped) to float without complaint, which would turn a wrong column into plausible
    returns; the dtype is checked before converting.
    """
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError) as exc:  # e.g. a ragged list
        raise ArgumentError(f"{name} must be numeric daily returns ({exc})") from None
    # Named as the caller knows it: a Series' own dtype (a time-zone-aware one reaches numpy as
    # object), and for plain objects what they hold.
    dtype = str(getattr(values, "dtype", raw.dtype))
    if raw.dtype.kind == "O":
        inferred = pd.api.types.infer_dtype(raw, skipna=True)
        numeric = inferred in _NUMERIC_OBJECTS
        if dtype == "object":
            dtype = f"object holding {inferred} values"
    else:
        numeric = raw.dtype.kind in "iuf"
    if not numeric:
        raise ArgumentError(
            f"{name} must be numeric (got dtype {dtype}); pass daily returns as integers or floats"
        )
    try:
        return np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(
            f"{name} must be numeric daily returns ({exc}); convert it to floats first"
        ) from None


def _as_returns(values: ReturnsLike, name: str = "returns") -> np.ndarray:
    """Return ``values`` as a 1-D float array, or raise ArgumentError naming what is wrong."""
    if isinstance(values, pd.DataFrame):
        raise ArgumentError(
            f"{name} must be 1-D (a Series or 1-D array), got a DataFrame with columns "
            f"{list(values.columns)[:5]}; pass one column at a time"
        )
    arr = _numeric_array(values, name)
    if arr.ndim != 1:
        raise ArgumentError(
            f"{name} must be 1-D, got an array of shape {arr.shape}; pass one series at a time"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.argmax(bad))
        where = f"at {values.index[pos]!r}" if isinstance(values, pd.Series) else f"at {pos}"
        raise ArgumentError(
            f"{name} has {int(bad.sum())} NaN or infinite value(s), first {where} "
            f"({arr[pos]}); drop or fill them before computing metrics"
        )
    return arr


def _aligned_pair(
    returns: ReturnsLike, benchmark: ReturnsLike, name: str = "benchmark"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``returns`` and ``benchmark`` and align them date by date.

    When both are Series, the benchmark is looked up on the returns' dates (extra benchmark
    dates are ignored; a missing one is an error). Otherwise they are paired by position.
    """
    r = _as_returns(returns)
    if isinstance(returns, pd.Series) and isinstance(benchmark, pd.Series):
        missing = returns.index.difference(benchmark.index)
        if len(missing):
            raise ArgumentError(
                f"{name} has no value on {len(missing)} of the returns' dates, first "
                f"{missing[0]!r}; give it on the same dates as the returns"
            )
        benchmark = benchmark.reindex(returns.index)
    b = _as_returns(benchmark, name)
    if b.shape != r.shape:
        raise ArgumentError(
            f"returns and {name} must have the same length (one value per day), got {r.size} "
            f"and {b.size}; pass {name} on the returns' days (as a Series to align by date)"
        )
    return r, b


#: Returns whose range is at most this fraction of their largest magnitude are constant: a
#: series that is constant but for rounding (0.01 computed as 0.009999999999999787) has a
#: standard deviation of about 1e-16, which would give a Sharpe ratio of about 1e15.
CONSTANT_RTOL = 1e-10


def is_constant(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Whether `x` is constant along `axis` up to rounding (`CONSTANT_RTOL`); never where it
    holds an infinity."""
    spread = np.ptp(x, axis=axis)
    return np.isfinite(spread) & (spread <= CONSTANT_RTOL * np.abs(x).max(axis=axis))


def _sharpe_along(x: np.ndarray, axis: int = -1, periods: float = ANNUALIZATION) -> np.ndarray:
    """``mean / std(ddof=1) * sqrt(periods)`` along ``axis`` (the one Sharpe kernel).

    The standard deviation of a constant slice (`is_constant`: constant up to rounding) is
    taken as exactly 0, so such a slice gives ``+-inf`` or ``nan``; slices shorter than 2 give
    ``nan``.
    """
    axis = axis % x.ndim
    if x.shape[axis] < 2:
        return np.full(x.shape[:axis] + x.shape[axis + 1 :], np.nan)
    mean = x.mean(axis=axis)
    std = x.std(axis=axis, ddof=1)
    std = np.where(is_constant(x, axis), 0.0, std)
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean / std * np.sqrt(periods)


def _excess(returns: ReturnsLike, rate: float | ReturnsLike, name: str) -> np.ndarray:
    """``returns - rate`` for a daily ``rate`` given as a number or one value per day.

    A per-day rate goes through `_aligned_pair`, so a Series rate is matched to Series returns
    by date like a benchmark, not by position.
    """
    if np.ndim(rate) != 0:
        r, rate_arr = _aligned_pair(returns, rate, name)
        return r - rate_arr
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = np.nan  # not a number: reported below with the value as given
    if not np.isfinite(value):
        raise ArgumentError(
            f"{name} must be a finite daily return (a number or one per day), got {rate!r}"
        )
    return _as_returns(returns) - value


def wealth(returns: ReturnsLike) -> np.ndarray | pd.Series:
    """Compounded wealth after each day from 1, ruin absorbing (`_wealth`), e.g. for figures.

    Returns
    -------
    array or Series
        One value per day (a Series on the returns' index for Series input).
    """
    w = _wealth(_as_returns(returns))
    if isinstance(returns, pd.Series):
        return pd.Series(w, index=returns.index, name=returns.name)
    return w


def _wealth(r: np.ndarray) -> np.ndarray:
    """Compounded wealth ``W_t`` after each day, from ``W_0 = 1``, with ruin absorbing.

    The one place wealth is compounded. Once the running product reaches 0 or below it stays 0:
    otherwise two losses of more than 100% would multiply back to a positive wealth and
    `total_return`, `cagr` and the drawdowns would report a recovery from ruin.
    """
    wealth = np.cumprod(1.0 + r)
    wealth[np.logical_or.accumulate(wealth <= 0.0)] = 0.0
    return wealth


# ---------------------------------------------------------------------------------------------
# single-series metrics


def total_return(returns: ReturnsLike) -> float:
    """Total compounded return ``prod(1 + r) - 1``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.

    Returns
    -------
    float
        ``W_T - 1``: ``-1`` once wealth is wiped out (ruin is absorbing); ``nan`` for an empty
        series.
    """
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    return float(_wealth(r)[-1] - 1.0)


def cagr(returns: ReturnsLike) -> float:
    """Compound annual growth rate ``W_T ** (252 / T) - 1``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.

    Returns
    -------
    float
        Geometric annual return (empyrical's ``annual_return``); ``-1`` once compounded wealth
        is wiped out (it stays 0 after any day that takes it to 0 or below); ``nan`` for an empty
        series.
    """
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    wealth = _wealth(r)[-1]
    if wealth == 0.0:
        return -1.0
    with np.errstate(over="ignore"):  # absurd growth over a few days annualizes to inf
        return float(wealth ** (ANNUALIZATION / r.size) - 1.0)


def volatility(returns: ReturnsLike) -> float:
    """Annualized volatility ``std(r, ddof=1) * sqrt(252)``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.

    Returns
    -------
    float
        Exactly 0 for constant returns (up to rounding, `is_constant`); ``nan`` for fewer than
        2 days.
    """
    r = _as_returns(returns)
    if r.size < 2:
        return np.nan
    if is_constant(r):
        return 0.0
    return float(r.std(ddof=1) * _SQRT_A)


def sharpe(returns: ReturnsLike, risk_free: float | ReturnsLike = 0.0) -> float:
    """Annualized Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(252)``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.
    risk_free : float, array or Series, default 0
        Daily risk-free return: a constant or one value per day (a Series is aligned on the
        returns' dates when the returns are a Series).

    Returns
    -------
    float
        ``+-inf`` for constant non-zero excess returns, ``nan`` for all-zero excess returns or
        fewer than 2 days.
    """
    return float(_sharpe_along(_excess(returns, risk_free, "risk_free")))


def downside_deviation(returns: ReturnsLike, mar: float | ReturnsLike = 0.0) -> float:
    """Annualized downside deviation ``sqrt(mean(min(r - mar, 0) ** 2)) * sqrt(252)``.

    The mean runs over all ``T`` days (days above ``mar`` contribute zeros), not only the
    losing days.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.
    mar : float, array or Series, default 0
        Minimum acceptable daily return (a Series is aligned on dates like ``risk_free``).

    Returns
    -------
    float
        ``nan`` for an empty series.
    """
    excess = _excess(returns, mar, "mar")
    if excess.size == 0:
        return np.nan
    return float(_downside(excess))


def _downside(excess: np.ndarray) -> np.float64:
    """Annualized root mean square of the shortfalls ``min(excess, 0)`` over all days."""
    shortfall = np.minimum(excess, 0.0)
    return np.sqrt(np.mean(shortfall * shortfall)) * _SQRT_A


def sortino(returns: ReturnsLike, mar: float | ReturnsLike = 0.0) -> float:
    """Sortino ratio ``mean(r - mar) * 252 / downside_deviation(r, mar)``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.
    mar : float, array or Series, default 0
        Minimum acceptable daily return (a Series is aligned on dates like ``risk_free``).

    Returns
    -------
    float
        ``+inf`` when no day falls below ``mar`` and the mean excess is positive; ``nan`` for
        fewer than 2 days.
    """
    excess = _excess(returns, mar, "mar")
    if excess.size < 2:
        return np.nan
    # numpy scalars, so a zero downside deviation divides to +-inf or nan as documented
    # instead of raising ZeroDivisionError.
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(excess.mean() * ANNUALIZATION) / _downside(excess))


def drawdowns(returns: ReturnsLike) -> np.ndarray | pd.Series:
    """Drawdown of compounded wealth on each day, ``W_t / max_{s <= t} W_s - 1``.

    The running peak starts at ``W_0 = 1``, so a loss on the first day is a drawdown. Ruin is
    absorbing: from the first day wealth reaches 0 or below, the drawdown is ``-1``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.

    Returns
    -------
    array or Series
        Values in ``[-1, 0]``, one per day (a Series on the returns' index for Series input).
    """
    r = _as_returns(returns)
    wealth = _wealth(r)
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    dd = (wealth - peak) / peak
    if isinstance(returns, pd.Series):
        return pd.Series(dd, index=returns.index, name="drawdown")
    return dd


def max_drawdown(returns: ReturnsLike) -> float:
    """Maximum drawdown of compounded wealth, ``min_t (W_t / max_{s <= t} W_s - 1)``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.

    Returns
    -------
    float
        In ``[-1, 0]`` (``-0.35`` for a 35% peak-to-trough loss, ``-1`` after ruin); ``nan`` if
        empty.
    """
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    return float(np.min(drawdowns(r)))


def calmar(returns: ReturnsLike) -> float:
    """Calmar ratio ``cagr / |max_drawdown|``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.

    Returns
    -------
    float
        ``nan`` when wealth never falls below a previous peak (no drawdown), or falls by no
        more than the rounding of compounding it (about ``n * 2.2e-16``), or the series is
        empty.
    """
    r = _as_returns(returns)
    mdd = max_drawdown(r)
    # Compounding n returns carries a relative rounding error of order n * eps: a smaller
    # "drawdown" is indistinguishable from none, and dividing by it gives noise like 1e25.
    if not mdd < -4.0 * r.size * np.finfo(np.float64).eps:
        return np.nan
    value = cagr(r) / abs(mdd)
    return float(value) if np.isfinite(value) else np.nan


def hit_rate(returns: ReturnsLike) -> float:
    """Share of all days with a strictly positive return.

    Flat days (``r == 0``) count in the denominator as misses: the hit rate of a book that sits
    in cash most of the time is low, not the win rate of its few active days.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.

    Returns
    -------
    float
        In ``[0, 1]``; ``nan`` for an empty series.
    """
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    return float(np.count_nonzero(r > 0.0) / r.size)


def cvar(returns: ReturnsLike, cutoff: float = 0.05) -> float:
    """Historical conditional value at risk (expected shortfall) of daily returns.

    The mean of the ``k = floor((T - 1) * cutoff) + 1`` lowest daily returns: the days at or
    below the empirical ``cutoff`` quantile (the order statistic of rank ``floor((T - 1) *
    cutoff)``), as empyrical's ``conditional_value_at_risk``.

    Parameters
    ----------
    returns : array or Series
        Daily simple returns.
    cutoff : float, default 0.05
        Tail probability (0.05 for CVaR 95%).

    Returns
    -------
    float
        A daily return, negative for a loss; ``nan`` for an empty series.
    """
    if not (is_real(cutoff) and 0.0 <= cutoff < 1.0):
        raise ArgumentError(
            f"cutoff must be a tail probability in [0, 1), got {cutoff!r}; use 0.05 for CVaR 95%"
        )
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    k = int((r.size - 1) * cutoff) + 1
    return float(np.mean(np.partition(r, k - 1)[:k]))


def beta(returns: ReturnsLike, benchmark: ReturnsLike) -> float:
    """Beta against a benchmark, ``cov(r, b) / var(b)``.

    Parameters
    ----------
    returns, benchmark : array or Series
        Daily simple returns; two Series are aligned on the returns' dates.

    Returns
    -------
    float
        ``nan`` for fewer than 2 days or a benchmark with (near-)zero variance (< 1e-30).
    """
    r, b = _aligned_pair(returns, benchmark)
    if r.size < 2:
        return np.nan
    b_centered = b - b.mean()
    var_b = np.mean(b_centered * b_centered)
    if var_b < 1e-30:
        return np.nan
    return float(np.mean(b_centered * r) / var_b)


def information_ratio(returns: ReturnsLike, benchmark: ReturnsLike) -> float:
    """Annualized information ratio ``mean(r - b) / std(r - b, ddof=1) * sqrt(252)``.

    Parameters
    ----------
    returns, benchmark : array or Series
        Daily simple returns; two Series are aligned on the returns' dates.

    Returns
    -------
    float
        ``+-inf`` for a constant non-zero active return, ``nan`` for fewer than 2 days.
    """
    r, b = _aligned_pair(returns, benchmark)
    return float(_sharpe_along(r - b))


def _check_n_days(n_days: int) -> None:
    # A count of days: 1.5 or "252" is a caller's mistake, not something to round.
    if not (is_integer(n_days) and n_days >= 0):
        raise ArgumentError(
            f"n_days must be a whole number >= 0, got {n_days!r}; pass the number of daily "
            "returns the backtest spans"
        )


def turnover_per_year(turnover: ReturnsLike, n_days: int) -> float:
    """Mean one-way traded notional per year.

    ``sum(turnover) / 2 / (n_days / 252)``: each rebalance's two-way traded notional
    ``sum |w_target - w_drifted|`` is halved (buying 10% of one asset and selling 10% of
    another turns over 10% of the book), summed, and divided by the years of daily returns.

    Parameters
    ----------
    turnover : array or Series
        Two-way traded notional per rebalance, as a fraction of wealth
        (`StrategyResult.turnover`).
    n_days : int
        Number of daily returns the backtest spans.

    Returns
    -------
    float
        ``nan`` when ``n_days`` is 0.
    """
    t = _as_returns(turnover, "turnover")
    _check_n_days(n_days)
    if n_days == 0:
        return np.nan
    return float(t.sum() / 2.0 / (n_days / ANNUALIZATION))


def costs_per_year(costs: ReturnsLike, n_days: int | None = None) -> float:
    """Transaction costs paid per year, ``sum(costs) / (n_days / 252)``.

    Parameters
    ----------
    costs : array or Series
        Daily cost paid as a fraction of wealth (`StrategyResult.costs`).
    n_days : int, optional
        Number of daily returns the backtest spans; ``len(costs)`` by default.

    Returns
    -------
    float
        ``nan`` when there are no days.
    """
    c = _as_returns(costs, "costs")
    n_days = c.size if n_days is None else n_days
    _check_n_days(n_days)
    if n_days == 0:
        return np.nan
    return float(c.sum() / (n_days / ANNUALIZATION))


def summary(result: StrategyResult, benchmark: pd.Series | None = None) -> dict[str, float]:
    """All metrics of one strategy, on its net returns.

    Parameters
    ----------
    result : StrategyResult
        One strategy's walk-forward record.
    benchmark : Series, optional
        Daily benchmark returns (aligned on the strategy's dates) for ``beta`` and
        ``information_ratio``; both are ``nan`` without one.

    Returns
    -------
    dict of str -> float
        Keys `SUMMARY_KEYS` in that order; definitions in `METRIC_DEFINITIONS`. ``turnover`` and
        ``costs_paid`` are per year of the net-return series.
    """
    r = result.net_returns
    n_days = len(r)
    has_bench = benchmark is not None
    values = {
        "cagr": cagr(r),
        "volatility": volatility(r),
        "sharpe": sharpe(r),
        "sortino": sortino(r),
        "max_drawdown": max_drawdown(r),
        "calmar": calmar(r),
        "hit_rate": hit_rate(r),
        "cvar_95": cvar(r, 0.05),
        "beta": beta(r, benchmark) if has_bench else np.nan,
        "information_ratio": information_ratio(r, benchmark) if has_bench else np.nan,
        "turnover": turnover_per_year(result.turnover, n_days),
        "costs_paid": costs_per_year(result.costs, n_days),
        "total_return": total_return(r),
    }
    return {key: float(values[key]) for key in SUMMARY_KEYS}
