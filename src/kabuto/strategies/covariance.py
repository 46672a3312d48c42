"""Batched covariance estimates from (D, L, n) return windows.

Two estimators, both computed for every decision date of a batch at once:

``"sample"``
    The unbiased sample covariance (ddof = 1), equal to ``np.cov(window, rowvar=False)``.
``"ledoit_wolf"``
    Ledoit and Wolf (2004) shrinkage towards a scaled identity, equal to
    ``sklearn.covariance.LedoitWolf().fit(window).covariance_``: the biased (ddof = 0)
    covariance S shrunk as ``(1 - delta) S + delta * trace(S) / n * I`` with sklearn's
    shrinkage intensity delta. It is positive definite whenever delta > 0, so it is the safe
    choice when the lookback is shorter than the number of assets.

The ``batch_*`` functions memoise their result on the `WindowBatch` (`WindowBatch.cached`),
so every strategy run on the same batch shares one estimate.
"""

from __future__ import annotations

import numpy as np

from kabuto.data.panel import WindowBatch
from kabuto.errors import ArgumentError, DataError
from kabuto.strategies.qp import each_or_nan

__all__ = [
    "COVARIANCES",
    "batch_cholesky",
    "batch_covariance",
    "batch_demeaned",
    "batch_mean",
    "correlation",
    "ledoit_wolf",
    "sample_covariance",
]

COVARIANCES = ("sample", "ledoit_wolf")


def _gram(centred: np.ndarray) -> np.ndarray:
    """``Y'Y`` for each demeaned window Y: shape (D, n, n)."""
    # numpy evaluates A'A with syrk and mirrors it, so the result is exactly symmetric.
    return np.matmul(np.swapaxes(centred, 1, 2), centred)


def sample_covariance(returns: np.ndarray) -> np.ndarray:
    """Unbiased sample covariance of each window.

    Parameters
    ----------
    returns : ndarray of shape (D, L, n)
        D windows of L returns on n assets, L >= 2.

    Returns
    -------
    ndarray of shape (D, n, n)
        ``np.cov(returns[d], rowvar=False)`` for every d.
    """
    returns = np.asarray(returns, dtype=np.float64)
    centred = returns - returns.mean(axis=1, keepdims=True)
    return _gram(centred) / (returns.shape[1] - 1)


def _ledoit_wolf_from_sample(
    centred: np.ndarray, sample: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ledoit-Wolf covariance and shrinkage from demeaned windows and their sample covariance."""
    length, n = centred.shape[1], centred.shape[2]
    emp = sample * ((length - 1) / length)  # sklearn shrinks the biased (ddof=0) covariance
    trace = np.trace(emp, axis1=1, axis2=2)
    mu = trace / n
    # sklearn's beta_ is the sum of all entries of X2'X2 (X2 = squared centred returns), which
    # is sum_t ||y_t||^4: O(L n) instead of O(L n^2).
    beta_ = np.square(np.square(centred).sum(axis=2)).sum(axis=1)
    delta_ = np.square(emp).sum(axis=(1, 2))
    beta = (beta_ / length - delta_) / (n * length)
    delta = (delta_ - 2.0 * mu * trace + n * mu**2) / n
    beta = np.minimum(beta, delta)
    shrinkage = np.where(beta == 0, 0.0, beta / np.where(delta == 0, 1.0, delta))
    cov = (1.0 - shrinkage)[:, None, None] * emp
    cov[:, np.arange(n), np.arange(n)] += (shrinkage * mu)[:, None]
    return cov, shrinkage


def ledoit_wolf(returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ledoit-Wolf shrunk covariance of each window, as ``sklearn.covariance.LedoitWolf``.

    Parameters
    ----------
    returns : ndarray of shape (D, L, n)

    Returns
    -------
    covariance : ndarray of shape (D, n, n)
        ``LedoitWolf().fit(returns[d]).covariance_`` for every d.
    shrinkage : ndarray of shape (D,)
        ``LedoitWolf().fit(returns[d]).shrinkage_``.
    """
    returns = np.asarray(returns, dtype=np.float64)
    centred = returns - returns.mean(axis=1, keepdims=True)
    return _ledoit_wolf_from_sample(centred, _gram(centred) / (returns.shape[1] - 1))


def correlation(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation matrices and standard deviations from covariances.

    Parameters
    ----------
    covariance : ndarray of shape (..., n, n)

    Returns
    -------
    corr : ndarray of shape (..., n, n)
        Clipped to [-1, 1] with an exact unit diagonal (as ``np.corrcoef``).
    std : ndarray of shape (..., n)
    """
    std = np.sqrt(np.diagonal(covariance, axis1=-2, axis2=-1))
    corr = covariance / std[..., :, None] / std[..., None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    n = corr.shape[-1]
    corr[..., np.arange(n), np.arange(n)] = 1.0
    return corr, std


# ---------------------------------------------------------------------------------------------
# Estimates memoised on a WindowBatch. `returns` is the (D, lookback, n) slice a strategy uses
# (see `kabuto.strategies.batched.window_returns`); the key records the lookback.


def batch_mean(batch: WindowBatch, returns: np.ndarray) -> np.ndarray:
    """Mean return of each window, shape (D, n); shared across strategies."""
    key = ("kabuto.mean", returns.shape[1])
    return batch.cached(key, lambda: returns.mean(axis=1))


def batch_covariance(batch: WindowBatch, returns: np.ndarray, kind: str = "sample") -> np.ndarray:
    """Covariance of each window, shape (D, n, n), by estimator name (see `COVARIANCES`)."""
    length = returns.shape[1]
    sample = batch.cached(
        ("kabuto.covariance", "sample", length),
        lambda: _gram(batch_demeaned(batch, returns)) / (length - 1),
    )
    if kind == "sample":
        return sample
    if kind == "ledoit_wolf":
        return batch.cached(
            ("kabuto.covariance", "ledoit_wolf", length),
            lambda: _ledoit_wolf_from_sample(batch_demeaned(batch, returns), sample)[0],
        )
    raise ArgumentError(f"unknown covariance estimator {kind!r}; use one of {list(COVARIANCES)}")


#: A Cholesky pivot (squared) below this x n x the largest variance is taken as singular.
_PIVOT_FLOOR = 16 * np.finfo(np.float64).eps


def batch_cholesky(batch: WindowBatch, returns: np.ndarray, kind: str, owner: str) -> np.ndarray:
    """Upper Cholesky factors R with ``covariance = R' R``, shape (D, n, n).

    Raises `DataError` naming the first window whose covariance is not positive definite.
    """

    def compute() -> np.ndarray:
        cov = batch_covariance(batch, returns, kind)
        n_assets, n_returns = returns.shape[2], returns.shape[1]
        singular = np.ones(len(cov), dtype=bool)
        # A sample covariance of L <= n returns has rank L - 1 < n: singular whatever rounding
        # lets Cholesky do (it succeeded on some such windows, with leverage in the tens).
        if kind != "sample" or n_returns > n_assets:
            factors = each_or_nan(np.linalg.cholesky, cov, cov)  # NaN pivots: singular
            # A pivot at rounding level is a dependence Cholesky did not catch exactly (two
            # assets that differ by 1e-7 gave weights of 6e6).
            pivots = np.diagonal(factors, axis1=1, axis2=2).min(axis=1) ** 2
            diagonal = np.diagonal(cov, axis1=1, axis2=2).max(axis=1)
            singular = ~(pivots > _PIVOT_FLOOR * n_assets * diagonal)
            if not singular.any():
                return np.swapaxes(factors, 1, 2)
        d = int(np.argmax(singular))
        # More returns cannot fix a constant asset or an exact linear dependence, but a window
        # not much longer than the assets is singular in floating point too (21 returns of 20
        # S&P 500 stocks): suggest a longer lookback up to twice the assets.
        longer = " or a longer lookback" if n_returns <= 2 * n_assets else ""
        remedy = (
            f"drop assets whose prices never move or that move in lockstep{longer}"
            if kind == "ledoit_wolf"
            else f"use covariance='ledoit_wolf'{longer}, or drop assets whose prices "
            "never move or that move in lockstep"
        )
        raise DataError(
            f"{owner}: the {kind} covariance of the window ending "
            f"{batch.dates[d].date()} is singular ({n_assets} assets, {n_returns} returns); "
            f"{remedy}"
        )

    return batch.cached(("kabuto.cholesky", kind, returns.shape[1]), compute)


def batch_demeaned(batch: WindowBatch, returns: np.ndarray) -> np.ndarray:
    """Returns minus their window mean, shape (D, L, n); shared across strategies."""
    if returns.shape[1] == batch.lookback:
        return batch.demeaned
    return batch.cached(
        ("kabuto.demeaned", returns.shape[1]),
        lambda: returns - returns.mean(axis=1, keepdims=True),
    )
