"""Stylized facts of price paths: bar returns, autocorrelations, fat tails, zeros, slow decay.

Artificial markets are judged by whether their prices look like real ones: returns that are
nearly uncorrelated, absolute (and squared) returns that stay positively correlated for many
lags (volatility clustering, decaying slowly), and fat tails (excess kurtosis > 0, a Hill tail
index of a few). This module computes those statistics for R independent runs at once; every
function works on arrays with a leading run axis and is vectorized over runs with numpy. It
works just as well on real prices (R = 1, or one row per asset).

Conventions
-----------
Shapes
    Prices have shape ``(R, T)``: R runs (independent simulations), T steps. A 1-D array of
    shape ``(T,)`` is one run; outputs always keep the run axis, so it gives ``(1, ...)``.
    Return arrays ``x`` likewise have shape ``(R, n)`` or ``(n,)``.

Bar returns (`bar_returns`)
    Bars close at steps ``start, start + bar, start + 2 bar, ...`` (every step that exists), and
    the bar return is the log difference of consecutive closes,
    ``r_j = log P[start + (j + 1) bar] - log P[start + j bar]``. Equal closes give a return of
    exactly 0 (the same log of the same float), which is what `zero_share` counts: on a tick
    grid with little trading many bars do not move.

Sample autocorrelation (`autocorrelation`)
    The standard (biased, "adjusted=False" in statsmodels' ``acf``) estimator: with
    ``d_t = x_t - mean(x)``,
    ``rho(k) = sum_{t=0}^{n-1-k} d_t d_{t+k} / sum_{t=0}^{n-1} d_t^2``.
    Dividing the k-lag sum (n - k terms) by the full n-term sum shrinks long lags towards 0,
    but keeps the sequence a positive semi-definite autocorrelation function. A run with zero
    variance has no autocorrelation: nan.

Excess kurtosis (`excess_kurtosis`)
    Fisher kurtosis with biased moments, as ``scipy.stats.kurtosis(x, fisher=True, bias=True)``:
    ``m_j = mean((x - mean(x))^j)``, ``kurtosis = m_4 / m_2^2 - 3`` (0 for a normal sample).
    With ``drop_zeros=True`` only the nonzero returns count: bars without a trade pile up at
    0 and inflate the kurtosis of a simulated market by themselves, so both are reported.

Zero share (`zero_share`)
    The fraction of returns exactly equal to 0.

Hill tail index (`hill_tail_index`)
    Of the absolute returns ``|x|`` (both tails pooled), zeros excluded. With the nonzero
    ``|x|`` sorted descending, ``X_(1) >= X_(2) >= ... >= X_(m)``, and
    ``k = max(2, floor(tail_fraction * m))``,
    ``alpha = 1 / ((1/k) sum_{i=1}^{k} log(X_(i) / X_(k+1)))``.
    This is the tail index alpha of ``P(|X| > x) ~ x^(-alpha)`` (not its inverse, the extreme
    value index xi = 1 / alpha), with the (k+1)-th largest value as threshold, the textbook
    form. (Some texts use ``X_(k)`` as threshold and k - 1 terms; for large k the difference is
    negligible.) Returns are fat-tailed when alpha is small: between about 2 and 5 for real
    returns (Cont 2001; about 3 for stocks, the "inverse cubic law"); for a normal sample
    (alpha = infinity) it keeps growing, slowly, with n. nan when a run has fewer than k + 1
    nonzero values or when the top k + 1 are all equal (ties, as on a coarse tick grid, leave
    no tail to measure; 1 / 0 would read as a perfectly thin tail, which it is not).

Decay exponent (`decay_exponent`)
    The exponent gamma of a power law ``acf(lag) ~ c lag^(-gamma)`` fitted by ordinary least
    squares of ``log acf`` on ``log lag`` over the lags where the acf is positive (log needs
    it; noisy negative values at long lags are left out rather than clipped). nan with fewer
    than 3 such lags. Real absolute returns show gamma of roughly 0.2 to 0.4 (Cont 2001:
    "decays slowly"); an exponential decay (as in a GARCH(1,1)) reads as a gamma that grows
    with the lag range.

`stylized_facts` computes all of these for bar returns of R runs, and
`StylizedFacts.summary` aggregates across runs, nan-aware, counting the runs where a statistic
is undefined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kabuto.errors import ConfigError, DataError

__all__ = [
    "StylizedFacts",
    "autocorrelation",
    "bar_returns",
    "decay_exponent",
    "excess_kurtosis",
    "hill_tail_index",
    "stylized_facts",
    "zero_share",
]

#: The acf lags `StylizedFacts.summary` reports (those of them that were computed).
SUMMARY_LAGS = (1, 5, 10, 20)


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    # bool is an int subclass, but bar=True is a mistake, not a bar of 1.
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _as_runs(x: object, name: str) -> np.ndarray:
    """``x`` as a float array of shape (R, n): a 1-D array is one run."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be a numeric array, got {type(x).__name__}") from exc
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2:
        raise DataError(
            f"{name} must have shape (runs, steps) or (steps,), got shape {np.shape(x)}"
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name} has no runs (shape {arr.shape})")
    return arr


def _check_finite(arr: np.ndarray, name: str, *, positive: bool = False) -> None:
    """Raise DataError naming the first run and step where ``arr`` is bad."""
    bad = ~np.isfinite(arr)
    if positive:
        bad |= arr <= 0  # nan <= 0 is False, but nan is already flagged above
    if bad.any():
        run, step = (int(i) for i in np.argwhere(bad)[0])
        need = "finite and > 0" if positive else "finite"
        raise DataError(
            f"{name}[run {run}, step {step}] = {arr[run, step]!r} must be {need} "
            f"({int(bad.sum())} bad value(s) in all)"
        )


def _check_lags(lags: Iterable[int] | np.ndarray, *, minimum: int) -> np.ndarray:
    """Lags as a 1-D int64 array, each an integer >= ``minimum``."""
    raw = np.asarray(list(lags) if not isinstance(lags, np.ndarray) else lags)
    if raw.ndim != 1 or raw.size == 0:
        raise ConfigError(f"lags must be a non-empty 1-D sequence of integers, got {lags!r}")
    if raw.dtype.kind not in "iu" and not (
        raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw))
    ):
        raise ConfigError(f"lags must be integers, got {lags!r}")
    out = raw.astype(np.int64)
    if (out < minimum).any():
        raise ConfigError(f"lags must all be >= {minimum}, got lag {int(out.min())} in {lags!r}")
    return out


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------


def bar_returns(prices: np.ndarray, bar: int, start: int = 0) -> np.ndarray:
    """Log returns of bars sampled every ``bar`` steps.

    Parameters
    ----------
    prices : ndarray of shape (R, T) or (T,)
        Positive prices of R runs (a 1-D array is one run).
    bar : int
        Steps per bar, >= 1.
    start : int, default 0
        The step of the first close, in ``[0, T)``; earlier steps (a warm-up) are ignored.

    Returns
    -------
    ndarray of shape (R, n_bars - 1)
        ``log P[:, start + (j+1) bar] - log P[:, start + j bar]``, with
        ``n_bars = len(range(start, T, bar))`` closes.

    Raises
    ------
    ConfigError
        For ``bar`` or ``start`` out of range, or fewer than 2 closes.
    DataError
        For a sampled close that is not finite and positive, naming the run and step. Only the
        sampled closes are checked: steps between closes (or before ``start``, such as the
        empty book before the first trade) never enter a return.
    """
    arr = _as_runs(prices, "prices")
    T = arr.shape[1]
    if not _is_int(bar) or bar < 1:
        raise ConfigError(f"bar must be an integer >= 1 (steps per bar), got bar={bar!r}")
    if not _is_int(start) or not 0 <= start < max(T, 1):
        raise ConfigError(f"start must be an integer in [0, {T}) (a step), got start={start!r}")
    closes = arr[:, start::bar]
    if closes.shape[1] < 2:
        raise ConfigError(
            f"bar={bar}, start={start} leave {closes.shape[1]} close(s) of {T} steps; "
            "a return needs at least 2: lower bar or start, or simulate longer"
        )
    bad = ~np.isfinite(closes) | (closes <= 0)
    if bad.any():
        run, j = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"prices[run {run}, step {start + j * bar}] = {closes[run, j]!r} must be finite "
            f"and > 0 ({int(bad.sum())} bad sampled close(s) in all)"
        )
    return np.diff(np.log(closes), axis=1)


def autocorrelation(x: np.ndarray, lags: Iterable[int] | np.ndarray) -> np.ndarray:
    """Sample autocorrelation of each run at the given lags.

    ``rho(k) = sum_{t<n-k} d_t d_{t+k} / sum_t d_t^2`` with ``d = x - mean(x)`` per run (the
    biased estimator, statsmodels' ``acf(x, adjusted=False)``).

    Parameters
    ----------
    x : ndarray of shape (R, n) or (n,)
        Finite values (returns, absolute returns, ...).
    lags : sequence of int
        Lags in ``[0, n)``; lag 0 gives 1.

    Returns
    -------
    ndarray of shape (R, len(lags))
        nan for a run with zero variance.
    """
    arr = _as_runs(x, "x")
    _check_finite(arr, "x")
    lag = _check_lags(lags, minimum=0)
    n = arr.shape[1]
    if (lag >= n).any():
        raise ConfigError(f"lags must be < n = {n} (the number of values), got lag {lag.max()}")
    d = arr - arr.mean(axis=1, keepdims=True)
    denom = np.einsum("rt,rt->r", d, d)
    # One pass per lag, each vectorized over runs: L is small (tens), n may be large, and this
    # is exact (an FFT would be O(n log n) but adds round-off for no gain at these sizes).
    num = np.empty((arr.shape[0], lag.size))
    for j, k in enumerate(lag):
        num[:, j] = np.einsum("rt,rt->r", d[:, : n - k], d[:, k:])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / denom[:, np.newaxis]
    out[denom == 0] = np.nan
    return out


def _masked_kurtosis(arr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Biased Fisher kurtosis of each row over the entries where ``mask`` is True."""
    count = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mask, arr, 0.0).sum(axis=1) / count
        d = np.where(mask, arr - mean[:, np.newaxis], 0.0)
        d2 = d * d
        m2 = d2.sum(axis=1) / count
        m4 = (d2 * d2).sum(axis=1) / count
        out = m4 / (m2 * m2) - 3.0
    # Zero variance (constant, single or no values) has no kurtosis; scipy also gives nan.
    out[~(m2 > 0)] = np.nan
    return out


def excess_kurtosis(x: np.ndarray, drop_zeros: bool = False) -> np.ndarray:
    """Excess (Fisher) kurtosis of each run, with biased moments.

    ``m_4 / m_2^2 - 3`` with ``m_j = mean((x - mean(x))^j)``, as
    ``scipy.stats.kurtosis(x, fisher=True, bias=True)``.

    Parameters
    ----------
    x : ndarray of shape (R, n) or (n,)
        Finite returns.
    drop_zeros : bool, default False
        Compute it over the nonzero returns of each run only (their number varies by run).

    Returns
    -------
    ndarray of shape (R,)
        nan for a run with zero variance (over the values used).
    """
    arr = _as_runs(x, "x")
    _check_finite(arr, "x")
    mask = arr != 0 if drop_zeros else np.ones(arr.shape, dtype=bool)
    return _masked_kurtosis(arr, mask)


def zero_share(x: np.ndarray) -> np.ndarray:
    """Share of each run's returns that are exactly 0.

    Parameters
    ----------
    x : ndarray of shape (R, n) or (n,)

    Returns
    -------
    ndarray of shape (R,)
    """
    arr = _as_runs(x, "x")
    _check_finite(arr, "x")
    if arr.shape[1] == 0:
        return np.full(arr.shape[0], np.nan)
    return (arr == 0).mean(axis=1)


def hill_tail_index(x: np.ndarray, tail_fraction: float = 0.05) -> np.ndarray:
    """Hill estimate of the tail index alpha of ``|x|``, per run.

    With the m nonzero ``|x|`` of a run sorted descending, ``X_(1) >= ... >= X_(m)``, and
    ``k = max(2, floor(tail_fraction * m))``:
    ``alpha = 1 / mean_{i=1..k} log(X_(i) / X_(k+1))``. Both tails are pooled (absolute
    values); see the module docstring for the convention.

    Parameters
    ----------
    x : ndarray of shape (R, n) or (n,)
        Finite returns; zeros are left out (they carry no tail information).
    tail_fraction : float, default 0.05
        Share of the nonzero values in the tail, in (0, 1).

    Returns
    -------
    ndarray of shape (R,)
        nan where a run has fewer than k + 1 nonzero values, or its top k + 1 are all equal.
    """
    arr = _as_runs(x, "x")
    _check_finite(arr, "x")
    if not isinstance(tail_fraction, int | float | np.floating) or not 0 < tail_fraction < 1:
        raise ConfigError(f"tail_fraction must be a number in (0, 1), got {tail_fraction!r}")
    R = arr.shape[0]
    a = np.abs(arr)
    m = (a > 0).sum(axis=1)
    # The tiny offset keeps e.g. 0.29 * 100 = 28.999999999999996 from flooring to 28.
    k = np.maximum(2, np.floor(tail_fraction * m + 1e-9).astype(np.int64))
    valid = k < m  # X_(k+1) must exist and be nonzero
    if not valid.any():
        return np.full(R, np.nan)
    kmax = int(k[valid].max())
    # Descending sort; only the top kmax + 1 values of any run are needed.
    top = -np.sort(-a, axis=1)[:, : kmax + 1]
    threshold = top[np.arange(R), np.where(valid, k, 0)]
    in_tail = (np.arange(kmax)[np.newaxis, :] < k[:, np.newaxis]) & valid[:, np.newaxis]
    # Outside the tail (or in invalid runs) use ratio 1, log 0, so nothing warns or counts.
    safe_threshold = np.where(valid, threshold, 1.0)[:, np.newaxis]
    ratio = np.where(in_tail, top[:, :kmax] / safe_threshold, 1.0)
    mean_log = np.log(ratio).sum(axis=1) / k
    with np.errstate(divide="ignore"):
        alpha = 1.0 / mean_log
    alpha[~valid | ~(mean_log > 0)] = np.nan
    return alpha


def decay_exponent(acf_values: np.ndarray, lags: Iterable[float] | np.ndarray) -> np.ndarray:
    """Exponent gamma of a power-law fit ``acf(lag) ~ c lag^(-gamma)``, per run.

    Ordinary least squares of ``log acf`` on ``log lag`` over the lags where the acf is finite
    and positive; gamma is minus the slope (positive for a decaying acf).

    Parameters
    ----------
    acf_values : ndarray of shape (R, L) or (L,)
        Autocorrelations of R runs at the L lags.
    lags : sequence of float, length L
        Positive lags.

    Returns
    -------
    ndarray of shape (R,)
        nan where fewer than 3 lags have a positive acf (or they are all the same lag).
    """
    acf = _as_runs(acf_values, "acf_values")
    lag = np.asarray(list(lags) if not isinstance(lags, np.ndarray) else lags, dtype=np.float64)
    if lag.ndim != 1 or lag.size != acf.shape[1]:
        raise ConfigError(
            f"lags must be 1-D with one lag per acf column ({acf.shape[1]}), got shape {lag.shape}"
        )
    if not (np.isfinite(lag) & (lag > 0)).all():
        raise ConfigError(f"lags must all be finite and > 0 for a log-log fit, got {lag!r}")
    use = np.isfinite(acf) & (acf > 0)
    w = use.astype(np.float64)
    count = w.sum(axis=1)
    log_lag = np.broadcast_to(np.log(lag), acf.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_acf = np.where(use, np.log(np.where(use, acf, 1.0)), 0.0)
        # A weighted (0/1) regression: each run uses its own subset of lags, all at once.
        mx = (w * log_lag).sum(axis=1) / count
        my = (w * log_acf).sum(axis=1) / count
        dx = log_lag - mx[:, np.newaxis]
        sxx = (w * dx * dx).sum(axis=1)
        sxy = (w * dx * (log_acf - my[:, np.newaxis])).sum(axis=1)
        gamma = -sxy / sxx
    gamma[(count < 3) | ~(sxx > 0)] = np.nan
    return gamma


# ----------------------------------------------------------------------------------------------
# All together
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StylizedFacts:
    """Stylized-facts statistics of R runs' bar returns (arrays are read-only).

    Attributes
    ----------
    bar : int
        Steps per bar.
    lags : ndarray of shape (L,), int
        The acf lags.
    n_returns : int
        Bar returns per run.
    tail_fraction : float
        Share of nonzero |returns| the Hill estimator used.
    return_acf, abs_acf, sq_acf : ndarray of shape (R, L)
        Autocorrelation of returns r, of |r| and of r^2.
    kurtosis : ndarray of shape (R,)
        Excess kurtosis of all returns.
    kurtosis_nonzero : ndarray of shape (R,)
        Excess kurtosis of the nonzero returns.
    zero_share : ndarray of shape (R,)
        Share of returns exactly 0.
    hill : ndarray of shape (R,)
        Hill tail index of |r|.
    abs_decay : ndarray of shape (R,)
        Power-law decay exponent gamma of the |r| acf over ``lags``.
    """

    bar: int
    lags: np.ndarray
    n_returns: int
    tail_fraction: float
    return_acf: np.ndarray
    abs_acf: np.ndarray
    sq_acf: np.ndarray
    kurtosis: np.ndarray
    kurtosis_nonzero: np.ndarray
    zero_share: np.ndarray
    hill: np.ndarray
    abs_decay: np.ndarray

    def __post_init__(self) -> None:
        # frozen only stops rebinding the fields; freeze the arrays' contents too.
        for value in self.__dict__.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    @property
    def n_runs(self) -> int:
        return int(self.kurtosis.shape[0])

    def per_statistic(self) -> dict[str, np.ndarray]:
        """Each summarized statistic's per-run values, shape (R,), in summary order."""
        lags = [int(k) for k in self.lags]
        shown = [k for k in SUMMARY_LAGS if k in lags] or sorted({lags[0], lags[-1]})
        out: dict[str, np.ndarray] = {}
        for name in ("return_acf", "abs_acf", "sq_acf"):
            values = getattr(self, name)
            for k in shown:
                out[f"{name}_lag{k}"] = values[:, lags.index(k)]
        for name in ("kurtosis", "kurtosis_nonzero", "zero_share", "hill", "abs_decay"):
            out[name] = getattr(self, name)
        return out

    def summary(self) -> pd.DataFrame:
        """Across-run mean, std, 5% and 95% quantiles of each statistic.

        The acfs are shown at lags 1, 5, 10 and 20 (those computed; if none of them was, at the
        first and last lag). Runs where a statistic is undefined (nan: a run without variance,
        too few positive acfs for a decay fit, ...) are left out of its aggregates and counted
        in ``n_nan``, so a mean is never silently over fewer runs than ``n_runs``.

        Returns
        -------
        DataFrame
            One row per statistic (index ``statistic``); columns ``mean``, ``se`` (its
            standard error, ``std / sqrt(defined runs)``: what a claim about the mean rests
            on), ``std`` (sample standard deviation across runs, ddof=1; nan with fewer than 2
            defined runs), ``q05``, ``q95``, ``n_runs`` (all runs) and ``n_nan`` (runs where it
            is undefined).
        """
        rows = {}
        for name, values in self.per_statistic().items():
            ok = values[np.isfinite(values)]
            n_ok = ok.size
            std = float(ok.std(ddof=1)) if n_ok >= 2 else np.nan
            rows[name] = {
                "mean": float(ok.mean()) if n_ok else np.nan,
                "se": std / np.sqrt(n_ok) if n_ok >= 2 else np.nan,
                "std": std,
                "q05": float(np.quantile(ok, 0.05)) if n_ok else np.nan,
                "q95": float(np.quantile(ok, 0.95)) if n_ok else np.nan,
                "n_runs": self.n_runs,
                "n_nan": self.n_runs - n_ok,
            }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "statistic"
        return frame


def stylized_facts(
    prices: np.ndarray,
    bar: int,
    start: int = 0,
    lags: Iterable[int] = range(1, 21),
    tail_fraction: float = 0.05,
) -> StylizedFacts:
    """All stylized-facts statistics of R runs' bar returns.

    Parameters
    ----------
    prices : ndarray of shape (R, T) or (T,)
        Positive prices of R runs.
    bar : int
        Steps per bar, >= 1.
    start : int, default 0
        Step of the first close (skip a warm-up).
    lags : sequence of int, default 1..20
        Acf lags, each >= 1.
    tail_fraction : float, default 0.05
        Hill estimator's tail share, in (0, 1).

    Returns
    -------
    StylizedFacts

    Raises
    ------
    ConfigError
        For a bad ``bar``, ``start``, ``lags`` or ``tail_fraction``, or fewer than
        ``max(lags) + 3`` bar returns.
    DataError
        For a sampled price that is not finite and positive, naming the run and step.
    """
    lag = _check_lags(lags, minimum=1)
    if not isinstance(tail_fraction, int | float | np.floating) or not 0 < tail_fraction < 1:
        raise ConfigError(f"tail_fraction must be a number in (0, 1), got {tail_fraction!r}")
    r = bar_returns(prices, bar, start)
    n = r.shape[1]
    need = int(lag.max()) + 3
    if n < need:
        T = np.shape(prices)[-1]
        raise ConfigError(
            f"bar={bar}, start={start} give {n} bar returns from {T} steps, but max lag "
            f"{int(lag.max())} needs at least {need}: lower bar or the lags, or simulate longer"
        )
    a = np.abs(r)
    abs_acf = autocorrelation(a, lag)
    return StylizedFacts(
        bar=int(bar),
        lags=lag,
        n_returns=n,
        tail_fraction=float(tail_fraction),
        return_acf=autocorrelation(r, lag),
        abs_acf=abs_acf,
        sq_acf=autocorrelation(r * r, lag),
        kurtosis=excess_kurtosis(r),
        kurtosis_nonzero=excess_kurtosis(r, drop_zeros=True),
        zero_share=zero_share(r),
        hill=hill_tail_index(r, tail_fraction),
        abs_decay=decay_exponent(abs_acf, lag),
    )
