"""Statistical inference on Sharpe ratios: bootstrap intervals, PSR/DSR, difference tests.

Conventions
-----------
* Returns are daily simple returns, validated as in `kabuto.evaluation.metrics` (1-D, no NaN).
  Bad returns or arguments raise `kabuto.errors.ArgumentError` (also a `ValueError`).
  Sharpe ratios are those of `metrics.sharpe` with ``rf = 0`` (pass excess returns to use a
  risk-free rate): **annualized** (``* sqrt(252)``) everywhere except in the probabilistic and
  deflated Sharpe ratios, which work with the **per-period (daily, non-annualized)** Sharpe
  ratio as in Bailey and Lopez de Prado; their Sharpe arguments are daily too.
* Resampling is the stationary bootstrap of Politis and Romano (1994): blocks start at uniform
  random positions, have geometric lengths with mean ``mean_block`` and wrap around the end of
  the series. When ``mean_block`` is not given, functions that see the data use the automatic
  block length of Politis and White (2004) with the correction of Patton, Politis and White
  (2009) (`optimal_block_length`), computed on the returns (for two or more series, the largest
  of theirs); `stationary_bootstrap_indices`, which sees only ``n``, falls back to ``n ** (1/3)``.
* Randomness comes from ``seed`` (an int >= 0, a `numpy.random.Generator`, or None for fresh
  entropy; anything else is an ArgumentError); the same seed gives the same numbers. Bootstrap
  indices are drawn in chunks of ``max(1, 2**21 // n)`` replicates (the last chunk takes the
  rest), a size that depends only on ``n``, so every function here draws the same indices for
  the same ``(n, n_boot, mean_block, seed)``: a leaderboard's intervals are reproducible one
  strategy at a time. A different ``n_boot`` gives different replicates, not a prefix or
  extension of them.
* The paired bootstrap test of equal Sharpe ratios (`sharpe_difference_test`) resamples the same
  days for both series and uses the centered (basic) bootstrap: with ``d`` the observed
  difference and ``d*_b`` its ``B`` defined bootstrap replicates (below), the two-sided p-value
  is ``(1 + #{|d*_b - d| >= |d|}) / (B + 1)`` -- the bootstrap distribution of ``d* - d``
  stands in for the null distribution of ``d`` -- and the interval is the matching symmetric
  one, ``d +- q_level(|d* - d|)``, so that it excludes 0 exactly when the p-value (up to the
  ``+1`` correction) is below ``1 - level``. This is the non-studentized simplification of
  Ledoit and Wolf (2008).
* Undefined replicates. A resample with zero variance (all its days equal, e.g. only the zero
  days of a strategy that rarely trades) has no Sharpe ratio: `bootstrap_sharpes` reports it as
  ``+-inf`` or ``nan``, as `metrics.sharpe` does for constant returns. Intervals, p-values and
  standard errors are computed over the finite (defined) replicates only, the p-value's
  denominator being their count + 1. Dropping a few is harmless; dropping many would describe
  only the resamples that happened to catch the rare non-zero days, so when more than 5% of the
  replicates are undefined (`_MAX_UNDEFINED_SHARE`) the functions raise ArgumentError saying how
  many and why (the returns have too few non-zero days for a bootstrap) instead of reporting a
  number; the leaderboard shows ``nan`` in those cells. Returns with zero variance overall have
  no Sharpe ratio to infer about (``+-inf`` or ``nan`` in `metrics.sharpe`): their interval, and
  any difference test involving them, is ``nan``, without an error or a warning.

References
----------
Politis, D. N. and Romano, J. P. (1994). The stationary bootstrap. JASA 89(428).
Politis, D. N. and White, H. (2004). Automatic block-length selection for the dependent
bootstrap. Econometric Reviews 23(1); correction: Patton, Politis and White (2009), 28(4).
Bailey, D. H. and Lopez de Prado, M. (2012). The Sharpe ratio efficient frontier. Journal of
Risk 15(2).
Bailey, D. H. and Lopez de Prado, M. (2014). The deflated Sharpe ratio. Journal of Portfolio
Management 40(5).
Jobson, J. D. and Korkie, B. M. (1981). Performance hypothesis testing with the Sharpe and
Treynor measures. Journal of Finance 36(4); corrected by Memmel, C. (2003). Performance
hypothesis testing with the Sharpe ratio. Finance Letters 1.
Ledoit, O. and Wolf, M. (2008). Robust performance hypothesis testing with the Sharpe ratio.
Journal of Empirical Finance 15(5).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from kabuto.errors import ArgumentError
from kabuto.evaluation.metrics import (
    ANNUALIZATION,
    ReturnsLike,
    _as_returns,
    _numeric_array,
    _sharpe_along,
    is_constant,
)
from kabuto.settings import is_integer, is_real, is_seed

__all__ = [
    "EULER_GAMMA",
    "MAX_BOOT",
    "bootstrap_sharpes",
    "deflated_sharpe_ratio",
    "deflated_sharpe_ratio_from_trials",
    "expected_maximum_sharpe",
    "jobson_korkie_test",
    "optimal_block_length",
    "probabilistic_sharpe_ratio",
    "sharpe_confidence_interval",
    "sharpe_difference_test",
    "stationary_bootstrap_indices",
]

EULER_GAMMA: float = 0.5772156649015329
"""The Euler-Mascheroni constant."""

SeedLike = int | np.random.Generator | None

# Bootstrap indices are generated this many elements (replicates x days) at a time.
_CHUNK_ELEMENTS = 1 << 21

_DAILY_SHARPE_LIMIT = 1.0
"""Where a daily Sharpe ratio is expected, |value| must be below this. A daily Sharpe ratio of 1
is about 16 annualized, beyond any real strategy, so such a value (typically an annualized target
of 1 or 2) was annualized by mistake -- and would make PSR/DSR about 0 or 1 whatever the data."""


_MAX_UNDEFINED_SHARE = 0.05
"""Largest share of bootstrap replicates that may have no Sharpe ratio (a zero-variance resample)
before inference gives up (module docstring, *Undefined replicates*)."""


def _check_seed(seed: object, name: str = "seed") -> None:
    """ArgumentError unless ``seed`` is an int >= 0, a numpy Generator or None.

    numpy's own errors for a bad seed (a SeedSequence TypeError or ValueError) name neither the
    argument nor what is allowed; a float such as 1.5 is refused rather than truncated.
    """
    if seed is None or isinstance(seed, np.random.Generator):
        return
    if not is_seed(seed):
        raise ArgumentError(
            f"{name} must be a non-negative integer, a numpy Generator or None, got {seed!r}"
        )


def _rng(seed: SeedLike, name: str = "seed") -> np.random.Generator:
    _check_seed(seed, name)
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# block length and stationary bootstrap


def _flat_top(s: np.ndarray) -> np.ndarray:
    """Politis-Romano trapezoidal flat-top lag window."""
    a = np.abs(s)
    return np.where(a <= 0.5, 1.0, np.where(a <= 1.0, 2.0 * (1.0 - a), 0.0))


def optimal_block_length(returns: ReturnsLike) -> float:
    """Politis-White (2004) automatic mean block length for the stationary bootstrap.

    With the correction of Patton, Politis and White (2009)::

        b = (2 G^2 / D)^(1/3) n^(1/3),   D = 2 g(0)^2,
        G = sum_{|k| <= M} w(k/M) |k| R(k),   g(0) = sum_{|k| <= M} w(k/M) R(k),

    ``R`` the sample autocovariances, ``w`` the flat-top lag window, ``M = 2 m`` where ``m`` is
    the smallest lag after which ``K = max(5, ceil(sqrt(log10 n)))`` consecutive sample
    autocorrelations are all below ``2 sqrt(log10(n) / n)`` in absolute value (the last
    significant lag if there is no such run), and ``M <= ceil(sqrt(n)) + K``. The result is
    clipped to ``[1, ceil(min(3 sqrt(n), n / 3))]``.

    Parameters
    ----------
    returns : array or Series
        The (daily) series to be resampled.

    Returns
    -------
    float
        Mean block length in days (1 for white noise, i.e. the iid bootstrap).
    """
    x = _as_returns(returns)
    n = x.size
    if n < 4:
        return 1.0
    xc = x - x.mean()
    k_n = max(5, int(np.ceil(np.sqrt(np.log10(n)))))
    m_max = min(int(np.ceil(np.sqrt(n))) + k_n, n - 1)
    b_max = float(np.ceil(min(3.0 * np.sqrt(n), n / 3.0)))
    acov = np.array([xc[: n - k] @ xc[k:] for k in range(m_max + 1)]) / n
    if acov[0] <= 0.0:
        return 1.0
    rho = acov[1:] / acov[0]  # lags 1..m_max
    insignificant = np.abs(rho) < 2.0 * np.sqrt(np.log10(n) / n)
    m_hat = None
    for m in range(m_max - k_n + 1):
        if insignificant[m : m + k_n].all():
            m_hat = m
            break
    if m_hat is None:
        significant = np.flatnonzero(~insignificant)
        m_hat = int(significant[-1]) + 1 if significant.size else 0
    big_m = min(2 * m_hat, m_max)
    if big_m == 0:
        return 1.0
    lags = np.arange(1, big_m + 1)
    weights = _flat_top(lags / big_m)
    g_big = 2.0 * np.sum(weights * lags * acov[1 : big_m + 1])
    g_zero = acov[0] + 2.0 * np.sum(weights * acov[1 : big_m + 1])
    if g_zero == 0.0:
        return b_max
    b = (2.0 * g_big**2 / (2.0 * g_zero**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(np.clip(b, 1.0, b_max))


#: The most bootstrap replicates a call takes.
MAX_BOOT = 100_000


def _check_count(value: object, name: str, minimum: int) -> int:
    """``value`` as an int, or ArgumentError: counts (days, replicates, trials) are whole."""
    if not (is_integer(value) and value >= minimum):
        raise ArgumentError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _longest_block(n: int) -> float:
    """The longest mean block of n days allowed, ``ceil(n / 3)`` (and the automatic choice's
    cap): blocks of about n days make every resample a rotation of the series."""
    return max(1.0, float(np.ceil(n / 3.0)))


def _check_bootstrap_args(n: int, n_boot: int, mean_block: float) -> tuple[int, int, float]:
    """Validated ``(n, n_boot, mean_block)`` as int, int, float."""
    n = _check_count(n, "the number of days to resample (n)", 1)
    n_boot = _check_count(n_boot, "n_boot", 1)
    if n_boot > MAX_BOOT:  # more would take hours (or all memory) for no visible change
        raise ArgumentError(
            f"n_boot = {n_boot:,} is more than {MAX_BOOT:,} bootstrap replicates; intervals "
            "settle by about 10,000 (the default 2,000 is enough for two decimals): use fewer"
        )
    if not (is_real(mean_block) and mean_block >= 1.0):
        raise ArgumentError(
            f"mean_block must be a finite number of days >= 1, got {mean_block!r}; leave it "
            "unset for the automatic (Politis-White) block length"
        )
    longest = _longest_block(n)
    if mean_block > longest:  # every replicate would have the observed Sharpe ratio
        raise ArgumentError(
            f"mean_block = {mean_block:g} days is more than a third of the {n} returns "
            f"resampled; use at most {longest:g}, or leave it unset for the automatic "
            "(Politis-White) block length"
        )
    return n, n_boot, float(mean_block)


def _index_chunks(
    n: int, n_boot: int, mean_block: float, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield stationary-bootstrap index matrices (replicates x n), chunk by chunk.

    Vectorized: for each replicate and day, a block starts with probability ``1 / mean_block``
    (always on day 0) at a uniform random position; day ``t`` of the replicate is day
    ``(start + t - t_start) mod n`` of the data, ``t_start`` the day its block began.
    """
    p = 1.0 / mean_block
    # Depends on n only (module docstring); a small n_boot is one short chunk.
    rows = max(1, _CHUNK_ELEMENTS // n)
    t = np.arange(n)
    for first in range(0, n_boot, rows):
        c = min(rows, n_boot - first)
        new_block = rng.random((c, n)) < p
        new_block[:, 0] = True
        starts = np.zeros((c, n), dtype=np.intp)
        starts[new_block] = rng.integers(0, n, size=int(np.count_nonzero(new_block)))
        block_begin = np.maximum.accumulate(np.where(new_block, t, 0), axis=1)
        idx = np.take_along_axis(starts, block_begin, axis=1)
        idx += t - block_begin
        idx[idx >= n] -= n
        yield idx


def stationary_bootstrap_indices(
    n: int,
    n_boot: int,
    mean_block: float | None = None,
    rng: SeedLike = None,
) -> np.ndarray:
    """Indices of ``n_boot`` stationary-bootstrap resamples of a length-``n`` series.

    Politis and Romano (1994): each resample is a concatenation of blocks that start at uniform
    random positions and have geometric lengths with mean ``mean_block`` (a new block starts on
    each day with probability ``1 / mean_block``), wrapping around the end of the series.

    Parameters
    ----------
    n : int
        Length of the series.
    n_boot : int
        Number of resamples.
    mean_block : float, optional
        Mean block length in days, from 1 (the iid bootstrap) to ``ceil(n / 3)`` (longer
        blocks make every resample a rotation of the series). Default ``n ** (1/3)`` within
        those bounds; prefer `optimal_block_length` of the data when you have it.
    rng : int, Generator or None
        Seed (an int >= 0) or generator.

    Returns
    -------
    ndarray of intp, shape (n_boot, n)
        Row ``b`` indexes the days of resample ``b``.
    """
    if mean_block is None:
        n = _check_count(n, "the number of days to resample (n)", 1)
        mean_block = min(max(1.0, n ** (1.0 / 3.0)), _longest_block(n))
    n, n_boot, mean_block = _check_bootstrap_args(n, n_boot, mean_block)
    return np.concatenate(list(_index_chunks(n, n_boot, mean_block, _rng(rng, "rng"))), axis=0)


def bootstrap_sharpes(
    returns: np.ndarray | pd.DataFrame,
    *,
    n_boot: int = 2000,
    mean_block: float | None = None,
    seed: SeedLike = 0,
    periods: float = ANNUALIZATION,
) -> np.ndarray:
    """Sharpe ratios of jointly resampled series (the same days for every column).

    Parameters
    ----------
    returns : 2-D array or DataFrame, days x series
        Daily returns, NaN-free.
    n_boot : int
        Number of stationary-bootstrap replicates.
    mean_block : float, optional
        Mean block length in days, 1 to ``ceil(T / 3)``; default the largest
        `optimal_block_length` of the columns.
    seed : int, Generator or None
    periods : float, default 252
        Annualization factor, a finite number > 0 (1 for per-period Sharpe ratios).

    Returns
    -------
    ndarray, shape (n_boot, n_series)
        ``+-inf`` or ``nan`` where a resample of a column has zero variance (no Sharpe ratio;
        see the module docstring on undefined replicates).
    """
    data = _numeric_array(returns)
    if not (is_real(periods) and periods > 0.0):
        raise ArgumentError(
            f"periods must be a finite number > 0, got {periods!r}; use 252 for annualized "
            "daily Sharpe ratios, 1 for per-period ones"
        )
    if data.ndim != 2:
        raise ArgumentError(
            f"returns must be 2-D (days x series), got shape {data.shape}; stack the series "
            "as columns"
        )
    columns = [_as_returns(data[:, j], f"returns column {j}") for j in range(data.shape[1])]
    if mean_block is None:
        mean_block = max((optimal_block_length(c) for c in columns), default=1.0)
    n, n_boot, mean_block = _check_bootstrap_args(data.shape[0], n_boot, mean_block)
    out = np.empty((n_boot, len(columns)))
    row = 0
    for idx in _index_chunks(n, n_boot, mean_block, _rng(seed)):
        for j, col in enumerate(columns):
            out[row : row + idx.shape[0], j] = _sharpe_along(col[idx], axis=1, periods=periods)
        row += idx.shape[0]
    return out


# ---------------------------------------------------------------------------------------------
# confidence interval and tests


def _check_level(level: float) -> None:
    if not (is_real(level, finite=False) and 0.0 < level < 1.0):
        raise ArgumentError(f"level must be in (0, 1), got {level!r}; use 0.95 for 95%")


def _defined_replicates(replicates: np.ndarray, what: str) -> np.ndarray:
    """The finite replicates, or ArgumentError when more than `_MAX_UNDEFINED_SHARE` are not.

    Never empty: with every replicate undefined the share is 1.
    """
    defined = replicates[np.isfinite(replicates)]
    undefined, total = replicates.size - defined.size, replicates.size
    if undefined > _MAX_UNDEFINED_SHARE * total:
        raise ArgumentError(
            f"{undefined} of {total} bootstrap resamples ({undefined / total:.1%}) "
            "have zero variance and so no Sharpe ratio, more than the "
            f"{_MAX_UNDEFINED_SHARE:.0%} allowed for {what}: the returns have too few non-zero "
            "(non-constant) days for a bootstrap; evaluate them over a longer period or report "
            "the Sharpe ratio without bootstrap inference"
        )
    return defined


def _percentile_interval(
    observed: float, replicates: np.ndarray, level: float
) -> tuple[float, float]:
    """Percentile interval of the defined replicates; ``nan`` for an undefined ``observed``."""
    if not np.isfinite(observed):  # zero-variance returns: nothing to infer about
        return np.nan, np.nan
    defined = _defined_replicates(replicates, "a Sharpe-ratio interval")
    low, high = np.quantile(defined, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def sharpe_confidence_interval(
    returns: ReturnsLike,
    *,
    level: float = 0.95,
    n_boot: int = 2000,
    mean_block: float | None = None,
    seed: SeedLike = 0,
) -> tuple[float, float]:
    """Stationary-bootstrap percentile interval for the annualized Sharpe ratio.

    Parameters
    ----------
    returns : array or Series
        Daily returns (excess returns if a risk-free rate applies).
    level : float, default 0.95
        Coverage; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
        the bootstrap Sharpe ratios.
    n_boot : int, default 2000
    mean_block : float, optional
        Mean block length in days, 1 to ``ceil(T / 3)``; default `optimal_block_length` of the
        returns.
    seed : int, Generator or None, default 0

    Returns
    -------
    (low, high) : tuple of float
        Annualized Sharpe ratios, quantiles of the finite bootstrap replicates (resamples with
        zero variance have none and are left out). ``(nan, nan)`` when the returns have zero
        variance (constant, so `metrics.sharpe` is ``+-inf`` or ``nan``) or fewer than 2 days.

    Raises
    ------
    ArgumentError
        For bad returns or arguments, or when more than 5% of the resamples have zero variance
        (the returns have too few non-zero days for a bootstrap; module docstring).
    """
    _check_level(level)
    r = _as_returns(returns)
    # Resampled first, so that bad n_boot, mean_block or seed is an error even for constant returns.
    sharpes = bootstrap_sharpes(r[:, None], n_boot=n_boot, mean_block=mean_block, seed=seed)
    return _percentile_interval(float(_sharpe_along(r)), sharpes[:, 0], level)


def _centered_bootstrap_test(
    observed: float, replicates: np.ndarray, level: float
) -> tuple[float, float, float, float]:
    """Two-sided p-value, symmetric interval and standard error from the centered bootstrap.

    Returns ``(p_value, ci_low, ci_high, se)`` over the defined replicates, all ``nan`` for an
    undefined ``observed``; see the module docstring. Counting an undefined replicate as "not
    beyond ``|d|``" would bias the p-value down, so they are left out of the denominator too.
    """
    if not np.isfinite(observed):  # a zero-variance series: nothing to test
        return np.nan, np.nan, np.nan, np.nan
    defined = _defined_replicates(replicates, "a Sharpe-ratio difference test")
    dev = np.abs(defined - observed)
    p = (1.0 + np.count_nonzero(dev >= abs(observed))) / (defined.size + 1.0)
    half = float(np.quantile(dev, level))
    se = float(np.std(defined, ddof=1)) if defined.size > 1 else np.nan
    return float(p), observed - half, observed + half, se


def _paired(a: ReturnsLike, b: ReturnsLike) -> tuple[np.ndarray, np.ndarray]:
    ra = _as_returns(a, "returns_a")
    rb = _as_returns(b, "returns_b")
    if isinstance(a, pd.Series) and isinstance(b, pd.Series) and not a.index.equals(b.index):
        raise ArgumentError(
            "returns_a and returns_b must be on the same dates for a paired test; "
            "align them first (e.g. a.align(b, join='inner'))"
        )
    if ra.shape != rb.shape:
        raise ArgumentError(
            f"returns_a and returns_b must have the same length, got {ra.size} and {rb.size}; "
            "pass them on the same days"
        )
    return ra, rb


def sharpe_difference_test(
    returns_a: ReturnsLike,
    returns_b: ReturnsLike,
    *,
    level: float = 0.95,
    n_boot: int = 2000,
    mean_block: float | None = None,
    seed: SeedLike = 0,
) -> dict[str, float]:
    """Paired stationary-bootstrap test of H0: Sharpe(a) == Sharpe(b).

    Both series are resampled on the same days (keeping their correlation). The p-value and
    interval come from the centered bootstrap (module docstring): with ``d`` the observed
    difference of annualized Sharpe ratios and ``d*`` its ``B`` finite replicates (a resample in
    which either series has zero variance has no difference and is left out),
    ``p = (1 + #{|d* - d| >= |d|}) / (B + 1)`` and ``CI = d +- q_level(|d* - d|)``.

    Parameters
    ----------
    returns_a, returns_b : array or Series
        Daily returns on the same days (two Series must share their index).
    level : float, default 0.95
        Coverage of the interval.
    n_boot : int, default 2000
    mean_block : float, optional
        Mean block length in days, 1 to ``ceil(T / 3)``; default the larger
        `optimal_block_length` of the two series.
    seed : int, Generator or None, default 0

    Returns
    -------
    dict
        ``sharpe_a``, ``sharpe_b``, ``difference`` (a - b, annualized), ``ci_low``,
        ``ci_high``, ``se`` (bootstrap standard deviation of the difference), ``p_value``,
        ``mean_block``. When either series has zero variance (its `metrics.sharpe` is ``+-inf``
        or ``nan``) the difference is not finite and ``ci_low``, ``ci_high``, ``se`` and
        ``p_value`` are ``nan``.

    Raises
    ------
    ArgumentError
        For bad returns or arguments, or when more than 5% of the resamples have zero variance
        in either series (too few non-zero days for a bootstrap; module docstring).
    """
    _check_level(level)
    ra, rb = _paired(returns_a, returns_b)
    data = np.column_stack([ra, rb])
    if mean_block is None:
        mean_block = max(optimal_block_length(ra), optimal_block_length(rb))
    observed = _sharpe_along(data, axis=0)
    boot = bootstrap_sharpes(data, n_boot=n_boot, mean_block=mean_block, seed=seed)
    # Python floats: inf - inf is nan without a numpy warning (two constant series).
    diff = float(observed[0]) - float(observed[1])
    with np.errstate(invalid="ignore"):  # inf - inf: an undefined replicate, left out below
        replicates = boot[:, 0] - boot[:, 1]
    p, low, high, se = _centered_bootstrap_test(diff, replicates, level)
    return {
        "sharpe_a": float(observed[0]),
        "sharpe_b": float(observed[1]),
        "difference": diff,
        "ci_low": low,
        "ci_high": high,
        "se": se,
        "p_value": p,
        "mean_block": float(mean_block),
    }


def jobson_korkie_test(returns_a: ReturnsLike, returns_b: ReturnsLike) -> dict[str, float]:
    """Jobson-Korkie test of equal Sharpe ratios with Memmel's (2003) correction.

    Closed form, assuming iid jointly normal returns. With sample (daily) means ``m_a, m_b``,
    standard deviations ``s_a, s_b`` (ddof=1) and covariance ``s_ab`` over ``T`` days, the
    statistic ``f = s_b m_a - s_a m_b`` (zero iff the Sharpe ratios are equal) has asymptotic
    variance::

        theta = (2 s_a^2 s_b^2 - 2 s_a s_b s_ab + m_a^2 s_b^2 / 2 + m_b^2 s_a^2 / 2
                 - m_a m_b s_ab^2 / (s_a s_b)) / T

    and ``z = f / sqrt(theta)`` is compared with the standard normal (two-sided).

    Parameters
    ----------
    returns_a, returns_b : array or Series
        Daily returns on the same days.

    Returns
    -------
    dict
        ``sharpe_a``, ``sharpe_b``, ``difference`` (annualized, a - b), ``z``, ``p_value``.
        As in `kabuto.evaluation.metrics.sharpe`, an exactly constant series has Sharpe ratio
        ``+-inf`` (``nan`` if all zero); ``z`` and ``p_value`` are then ``nan`` (the test needs
        both variances), as they are when the variance estimate ``theta`` is not positive.
    """
    ra, rb = _paired(returns_a, returns_b)
    t = ra.size
    if t < 3:
        raise ArgumentError(
            f"the Jobson-Korkie test needs at least 3 days of returns, got {t}; pass a longer "
            "series"
        )
    m_a, m_b = ra.mean(), rb.mean()
    cov = np.cov(ra, rb, ddof=1)
    s_a, s_b, s_ab = np.sqrt(cov[0, 0]), np.sqrt(cov[1, 1]), cov[0, 1]
    observed = _sharpe_along(np.column_stack([ra, rb]), axis=0)
    out = {
        "sharpe_a": float(observed[0]),
        "sharpe_b": float(observed[1]),
        "difference": float(observed[0]) - float(observed[1]),  # no warning for inf - inf
        "z": np.nan,
        "p_value": np.nan,
    }
    # As in _sharpe_along: the sample variance of a constant series is a rounding residue (e.g.
    # 3e-39), not 0, and dividing by it gives a huge spurious z.
    if is_constant(ra) or is_constant(rb):
        return out
    f = s_b * m_a - s_a * m_b
    theta = (
        2.0 * s_a**2 * s_b**2
        - 2.0 * s_a * s_b * s_ab
        + 0.5 * m_a**2 * s_b**2
        + 0.5 * m_b**2 * s_a**2
        - m_a * m_b * s_ab**2 / (s_a * s_b)
    ) / t
    if theta <= 0.0:
        return out
    z = f / np.sqrt(theta)
    out["z"] = float(z)
    out["p_value"] = float(2.0 * ndtr(-abs(z)))
    return out


# ---------------------------------------------------------------------------------------------
# probabilistic and deflated Sharpe ratios


def probabilistic_sharpe_ratio(returns: ReturnsLike, benchmark_sharpe: float = 0.0) -> float:
    """Probabilistic Sharpe ratio of Bailey and Lopez de Prado (2012).

    ``PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``, the probability
    that the true Sharpe ratio exceeds ``SR*`` given the estimate's non-normality.

    **Periodicity**: ``SR`` is the per-period, i.e. *daily, non-annualized* Sharpe ratio
    ``mean / std(ddof=1)`` of the ``T`` returns, and ``benchmark_sharpe`` (``SR*``) must be daily
    too (divide an annualized target by ``sqrt(252)``). ``g3`` is the sample skewness and ``g4``
    the sample (non-excess; 3 for a normal) kurtosis, both from biased moment estimates
    (``m_k = mean((r - mean r)^k)``, ``g3 = m3 / m2^1.5``, ``g4 = m4 / m2^2``).

    Parameters
    ----------
    returns : array or Series
        Daily returns (excess returns if a risk-free rate applies).
    benchmark_sharpe : float, default 0
        Daily (non-annualized) Sharpe ratio to beat.

    Returns
    -------
    float
        In ``[0, 1]``; ``nan`` for fewer than 3 days or constant returns.

    Raises
    ------
    ArgumentError
        If ``benchmark_sharpe`` is not finite, or 1 or more in absolute value (it looks
        annualized).
    """
    sr_star = _check_daily_sharpe(
        benchmark_sharpe, "benchmark_sharpe", "divide an annualized target by sqrt(252)"
    )
    return _psr(_as_returns(returns), sr_star)


def _check_daily_sharpe(value: object, name: str, fix: str) -> float:
    """``value`` as a float, or ArgumentError unless it is a plausible daily Sharpe ratio."""
    if not is_real(value):
        raise ArgumentError(
            f"{name} must be a finite daily (per-period) Sharpe ratio, got {value!r}"
        )
    if abs(value) >= _DAILY_SHARPE_LIMIT:
        raise ArgumentError(
            f"{name} = {float(value):.4g} looks annualized: PSR and DSR take daily (per-period) "
            f"Sharpe ratios, below {_DAILY_SHARPE_LIMIT:g} in absolute value; {fix}"
        )
    return float(value)


def _psr(r: np.ndarray, sr_star: float) -> float:
    """`probabilistic_sharpe_ratio` of validated returns; a ``nan`` ``sr_star`` gives ``nan``."""
    t = r.size
    if t < 3 or is_constant(r):
        return np.nan
    sr = float(_sharpe_along(r, periods=1))
    centered = r - r.mean()
    m2 = np.mean(centered**2)
    g3 = np.mean(centered**3) / m2**1.5
    g4 = np.mean(centered**4) / m2**2
    var_term = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2
    if not var_term > 0.0:
        return np.nan
    z = (sr - sr_star) * np.sqrt(t - 1.0) / np.sqrt(var_term)
    return float(ndtr(z))


def expected_maximum_sharpe(n_trials: int, trial_sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` unskilled trials (Bailey-Lopez de Prado).

    ``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))`` with ``gamma``
    the Euler-Mascheroni constant: the approximate expectation of the largest of ``N`` draws
    from a normal with mean 0 and variance ``V``. Zero for a single trial (no selection).

    Parameters
    ----------
    n_trials : int
        Number of independent trials ``N`` (>= 1).
    trial_sharpe_variance : float
        Variance ``V`` across trials of their Sharpe ratios, in the periodicity used downstream
        (daily for `deflated_sharpe_ratio`).

    Returns
    -------
    float
    """
    n_trials = _check_count(n_trials, "n_trials", 1)
    if not (is_real(trial_sharpe_variance) and trial_sharpe_variance >= 0.0):
        raise ArgumentError(
            f"trial_sharpe_variance must be a finite number >= 0, got {trial_sharpe_variance!r}"
        )
    if n_trials == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * ndtri(1.0 - 1.0 / n_trials) + EULER_GAMMA * ndtri(
        1.0 - 1.0 / (n_trials * np.e)
    )
    return float(np.sqrt(trial_sharpe_variance) * z)


def deflated_sharpe_ratio(
    returns: ReturnsLike, *, n_trials: int, trial_sharpe_variance: float
) -> float:
    """Deflated Sharpe ratio of Bailey and Lopez de Prado (2014).

    ``DSR = PSR(SR0)`` with ``SR0 = expected_maximum_sharpe(n_trials, trial_sharpe_variance)``:
    the probability that the selected strategy's true Sharpe ratio beats the best Sharpe ratio
    ``n_trials`` skill-less trials would show by luck.

    Parameters
    ----------
    returns : array or Series
        Daily returns of the selected strategy.
    n_trials : int
        Number of (independent) strategies tried.
    trial_sharpe_variance : float
        Variance across the trials of their **daily, non-annualized** Sharpe ratios (divide
        the variance of annualized ones by 252).

    Returns
    -------
    float
        In ``[0, 1]``; never above ``probabilistic_sharpe_ratio(returns, 0)``.

    Raises
    ------
    ArgumentError
        If ``SR0`` comes out at 1 or more (daily): ``trial_sharpe_variance`` looks annualized.
    """
    sr0 = _check_daily_sharpe(
        expected_maximum_sharpe(n_trials, trial_sharpe_variance),
        f"SR0 (the best Sharpe ratio {n_trials} trials with trial_sharpe_variance="
        f"{trial_sharpe_variance!r} show by luck)",
        "divide a variance of annualized Sharpe ratios by 252",
    )
    return _psr(_as_returns(returns), sr0)


def _trial_sharpe_variance(daily_sharpes: np.ndarray) -> float:
    """Sample variance (ddof=1) of the trials' finite daily Sharpe ratios.

    A constant or too-short trial has no finite Sharpe ratio (``+-inf`` or ``nan``) and is left
    out of the variance, though it still counts as a trial. A single trial needs no variance
    (``SR0 = 0``: nothing was selected).
    """
    if daily_sharpes.size == 1:
        return 0.0
    finite = daily_sharpes[np.isfinite(daily_sharpes)]
    if finite.size < 2:
        raise ArgumentError(
            f"the deflated Sharpe ratio needs the variance of the trials' Sharpe ratios, but "
            f"only {finite.size} of the {daily_sharpes.size} trials have a finite one (a "
            "constant series or one shorter than 2 days has none); drop those trials or call "
            "deflated_sharpe_ratio with your own trial_sharpe_variance"
        )
    return float(np.var(finite, ddof=1))


def _deflation_benchmark(daily_sharpes: np.ndarray) -> tuple[float, float]:
    """``(trial_sharpe_variance, SR0)`` of trials with these daily Sharpe ratios.

    The one recipe for deflating among observed trials, shared by
    `deflated_sharpe_ratio_from_trials` and the leaderboard. ``SR0`` is not checked against
    `_DAILY_SHARPE_LIMIT`: it comes from the data, not from a user who may have annualized it.
    """
    variance = _trial_sharpe_variance(daily_sharpes)
    return variance, expected_maximum_sharpe(daily_sharpes.size, variance)


def deflated_sharpe_ratio_from_trials(trials: pd.DataFrame, selected: Any | None = None) -> float:
    """Deflated Sharpe ratio of one column of a DataFrame of trials' returns.

    ``n_trials`` is the number of columns and ``trial_sharpe_variance`` the sample variance
    (ddof=1) across columns of their daily, non-annualized Sharpe ratios -- those that are
    finite: a constant column counts as a trial but has no Sharpe ratio to vary.

    Parameters
    ----------
    trials : DataFrame, days x trials
        Daily returns of every strategy tried (NaN-free).
    selected : column label, optional
        The strategy to deflate; default the column with the highest Sharpe ratio.

    Returns
    -------
    float

    Raises
    ------
    ArgumentError
        If ``trials`` is not a DataFrame of valid returns, ``selected`` is not one of its
        columns, or fewer than two of several trials have a finite Sharpe ratio.
    """
    if not isinstance(trials, pd.DataFrame) or trials.shape[1] < 1:
        raise ArgumentError(
            f"trials must be a DataFrame with one column of daily returns per trial, got "
            f"{type(trials).__name__} {getattr(trials, 'shape', '')}"
        )
    if selected is not None and selected not in trials.columns:
        raise ArgumentError(
            f"selected={selected!r} is not a column of trials; choose one of "
            f"{list(trials.columns)[:10]}"
        )
    data = np.column_stack([_as_returns(trials[c], f"trials[{c!r}]") for c in trials.columns])
    sharpes = _sharpe_along(data, axis=0, periods=1)
    _, sr0 = _deflation_benchmark(sharpes)
    if selected is None:  # the best trial; a nan (0/0) Sharpe ratio ranks last
        selected = trials.columns[int(np.argmax(np.where(np.isnan(sharpes), -np.inf, sharpes)))]
    return _psr(_as_returns(trials[selected], f"trials[{selected!r}]"), sr0)
