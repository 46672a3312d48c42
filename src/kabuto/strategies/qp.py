"""Exact solvers for the long-only, fully invested portfolio problems of the classical strategies.

No modelling layer and nothing rebuilt per decision date: each problem is reduced to a small
number of non-negative least-squares (NNLS) solves (`scipy.optimize.nnls`, Lawson-Hanson in
compiled code) or, for risk budgeting, to a Newton iteration batched over decision dates.

The homogenisation trick
------------------------
Let ``q(y) = ||F y||^2`` with ``F' F = Sigma`` (F = demeaned returns / sqrt(L - 1) for the
sample covariance, F = R the upper Cholesky factor otherwise) and ``a`` a vector with some
``a_i > 0``. Then for any ``lam > 0``

    v* = argmin_{v >= 0} ||F v||^2 + lam^2 (a'v - 1)^2,      y* = v* / (a'v*)

solves ``min q(y) s.t. a'y = 1, y >= 0``. Proof: write ``v = s y`` with ``s = a'v > 0`` and
``a'y = 1``; the objective is ``s^2 q(y) + lam^2 (s - 1)^2``, so for every s the best y is the
same minimiser of q on the slice; points with ``a'v <= 0`` cost at least ``lam^2``, more than
``lam^2 q*/(q* + lam^2)``. With ``a = 1`` this is the minimum-variance portfolio; with
``a = mu`` it is the Charnes-Cooper form of the maximum-Sharpe portfolio (then ``w = y / 1'y``).
It needs no inverse, so a singular covariance (fewer returns than assets) is handled exactly.
``lam`` only balances the scales of the two blocks for the NNLS (it does not change y*).

Any positively homogeneous risk of degree 2 works the same way; the semi-deviation is handled
by `min_semideviation_on_slice`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import brentq, nnls

__all__ = [
    "max_sharpe_weights",
    "mean_variance_weights",
    "min_quadratic_on_slice",
    "min_semideviation_on_slice",
    "min_variance_weights",
    "risk_budgeting_weights",
]

_EPS = np.finfo(np.float64).eps


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Lawson-Hanson usually needs about one pass per variable in the solution; scipy's default
    # cap of 3n passes can be hit by the augmented semi-deviation problem (scipy then raises).
    return nnls(a, b, maxiter=50 * a.shape[1] + 100)[0]


def min_quadratic_on_slice(factor: np.ndarray, a: np.ndarray) -> np.ndarray | None:
    """Solve ``min ||factor @ y||^2 s.t. a'y = 1, y >= 0`` exactly (homogenisation + NNLS).

    Parameters
    ----------
    factor : ndarray of shape (m, n)
        Any F with ``F'F`` proportional to Sigma (rank-deficient allowed).
    a : ndarray of shape (n,)
        Slice normal: ones for minimum variance, expected returns for maximum Sharpe.

    Returns
    -------
    ndarray of shape (n,) or None
        The minimiser y (``a'y = 1``), or None when no ``a_i > 0`` (the slice is empty).
    """
    if not (a > 0).any():
        return None
    n = factor.shape[1]
    col_scale = np.sqrt(np.einsum("ij,ij->", factor, factor) / n)
    a_scale = np.sqrt(np.mean(a * a))
    lam = (col_scale if col_scale > 0 else 1.0) / a_scale
    system = np.vstack([factor, lam * a[None, :]])
    target = np.zeros(system.shape[0])
    target[-1] = lam
    v = _nnls(system, target)
    s = float(a @ v)
    if not s > 0:
        return None
    return v / s


def min_variance_weights(factor: np.ndarray) -> np.ndarray:
    """Long-only, fully invested minimum-variance weights, shape (n,), from ``F'F ~ Sigma``."""
    y = min_quadratic_on_slice(factor, np.ones(factor.shape[1]))
    assert y is not None  # a = 1 always has a non-empty slice
    return y / y.sum()


def max_sharpe_weights(factor: np.ndarray, mu: np.ndarray) -> np.ndarray | None:
    """Long-only maximum Sharpe ratio weights (risk-free rate 0), shape (n,).

    Returns None when no asset has ``mu_i > 0`` (the ratio has no positive maximum).
    """
    y = min_quadratic_on_slice(factor, mu)
    return None if y is None else y / y.sum()


# ------------------------------------------------------------------------- semi-deviation


def _line_search(r: np.ndarray, p: np.ndarray) -> float:
    """Exact minimiser over [0, 1] of ``phi(t) = sum min(r + t p, 0)^2`` (convex, C^1)."""

    def slope(t: float) -> float:
        return float(p @ np.minimum(r + t * p, 0.0))

    if slope(1.0) <= 0.0:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = -r / p
    kinks = np.unique(kinks[(kinks > 0) & (kinks < 1) & np.isfinite(kinks)])
    lo, hi = 0.0, 1.0
    for t in kinks:  # slope is non-decreasing; find the piece where it changes sign
        if slope(t) <= 0.0:
            lo = t
        else:
            hi = t
            break
    # slope is affine on [lo, hi]
    s_lo, s_hi = slope(lo), slope(hi)
    if s_hi == s_lo:
        return lo
    return float(lo - s_lo * (hi - lo) / (s_hi - s_lo))


def min_semideviation_on_slice(
    centred: np.ndarray, a: np.ndarray, max_iter: int = 100
) -> np.ndarray | None:
    """Solve ``min ||min(centred @ y, 0)||^2 s.t. a'y = 1, y >= 0`` exactly.

    The objective is convex, piecewise quadratic and C^1. On a fixed set S of "down" days it is
    the quadratic ``||centred[S] @ y||^2``, minimised on the slice by one homogenised NNLS. The
    iteration (a finite Newton method, Mangasarian 2002): solve on the down days S of the
    current point, move to that solution by an exact line search on the true objective, update
    S; stop when the solution's own down days are S (then it satisfies the KKT conditions of the
    true objective). Should that not happen in `max_iter` steps, one exact NNLS of size
    (L + 1) x (n + L) on ``min ||centred y - u||^2, u >= 0`` decides instead.

    Parameters
    ----------
    centred : ndarray of shape (L, n)
        Returns minus their minimum acceptable return (the window mean, for skfolio's
        semi-deviation).
    a : ndarray of shape (n,)
        Slice normal (ones: minimum semi-deviation; mean returns: maximum Sortino).

    Returns
    -------
    ndarray of shape (n,) or None
        The minimiser y, or None when no ``a_i > 0``.
    """
    if not (a > 0).any():
        return None
    y = min_quadratic_on_slice(centred, a)
    if y is None:
        return None
    scale = np.abs(centred).max() * np.abs(y).sum()
    tol = 64 * _EPS * max(scale, np.finfo(np.float64).tiny)
    r = centred @ y
    down = r < -tol
    for _ in range(max_iter):
        if not down.any():
            return y  # no down day: zero semi-deviation, optimal
        z = min_quadratic_on_slice(centred[down], a)
        if z is None:
            break
        rz = centred @ z
        if not ((rz[down] > tol).any() or (rz[~down] < -tol).any()):
            return z
        t = _line_search(r, rz - r)
        if t <= 0.0:
            break
        y = y + t * (z - y)
        r = centred @ y
        new_down = r < -tol
        if t == 1.0 and np.array_equal(new_down, down):
            return y
        down = new_down
    return _semideviation_augmented(centred, a)


def _semideviation_augmented(centred: np.ndarray, a: np.ndarray) -> np.ndarray | None:
    # min_{u >= 0} ||c y - u||^2 = ||min(c y, 0)||^2 (u absorbs the up days), so the whole
    # problem is one NNLS in (y, u).
    length, n = centred.shape
    col_scale = np.sqrt(np.einsum("ij,ij->", centred, centred) / n) or 1.0
    lam = col_scale / np.sqrt(np.mean(a * a))
    system = np.zeros((length + 1, n + length))
    system[:length, :n] = centred
    system[np.arange(length), n + np.arange(length)] = -col_scale
    system[length, :n] = lam * a
    target = np.zeros(length + 1)
    target[-1] = lam
    v = _nnls(system, target)[:n]
    s = float(a @ v)
    return v / s if s > 0 else None


# ---------------------------------------------------------------------------- mean-variance


def mean_variance_weights(upper: np.ndarray, mu: np.ndarray, risk_aversion: float) -> np.ndarray:
    """Long-only, fully invested weights maximising ``mu'w - risk_aversion / 2 * w'Sigma w``.

    For a multiplier nu of the budget, ``w(nu) = argmin_{w >= 0} ||R w - R^{-T}(mu + nu 1)/g||^2``
    (g the risk aversion, ``Sigma = R'R``) is one NNLS, and ``1'w(nu)`` is continuous,
    non-decreasing and piecewise linear in nu, so Brent's method finds the budget's nu; the
    KKT system on the final support is then solved directly for an exact answer.

    Parameters
    ----------
    upper : ndarray of shape (n, n)
        Upper Cholesky factor R of a full-rank covariance.
    mu : ndarray of shape (n,)
    risk_aversion : float
        g > 0 (dimensionless: the objective scales with the return horizon).

    Returns
    -------
    ndarray of shape (n,)
    """
    n = len(mu)
    g = float(risk_aversion)
    c_mu = solve_triangular(upper, mu, trans="T") / g
    c_one = solve_triangular(upper, np.ones(n), trans="T") / g

    def budget_gap(nu: float) -> float:
        return float(_nnls(upper, c_mu + nu * c_one).sum() - 1.0)

    lo = -float(mu.max())  # w(lo) = 0: no asset has a positive marginal utility
    sigma = upper.T @ upper
    step = g * float(np.diag(sigma).max()) + float(np.ptp(mu)) + 1e-300
    hi = lo + step
    while budget_gap(hi) < 0:
        step *= 2.0
        hi = lo + step
    nu = brentq(budget_gap, lo, hi, xtol=1e-15 * step, rtol=4 * _EPS, maxiter=500)
    w = _nnls(upper, c_mu + nu * c_one)
    support = w > 0
    if support.any():
        factor = cho_factor(sigma[np.ix_(support, support)])
        x_mu = cho_solve(factor, mu[support])
        x_one = cho_solve(factor, np.ones(int(support.sum())))
        nu_exact = (g - x_mu.sum()) / x_one.sum()
        w_exact = np.zeros(n)
        w_exact[support] = (x_mu + nu_exact * x_one) / g
        grad = g * (sigma @ w_exact) - mu - nu_exact
        tol = 1e-9 * (np.abs(mu).max() + g * np.abs(np.diag(sigma)).max())
        if (w_exact[support] > 0).all() and (grad[~support] >= -tol).all():
            return w_exact / w_exact.sum()
    return w / w.sum()


# ---------------------------------------------------------------------------- risk budgeting


def risk_budgeting_weights(
    covariance: np.ndarray,
    budget: np.ndarray,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Long-only risk-budgeting weights for a batch of covariances (Newton, batched).

    Minimises ``f(y) = 1/2 y'Sigma y - sum_i b_i log y_i`` over ``y > 0``, whose stationary
    point has risk contributions ``y_i (Sigma y)_i = b_i`` (Griveau-Billion, Richard and
    Roncalli 2013 use cyclical coordinate descent; Newton converges quadratically and
    vectorises over decision dates). Weights are ``y / 1'y``.

    Parameters
    ----------
    covariance : ndarray of shape (D, n, n)
    budget : ndarray of shape (n,)
        Positive risk budgets, normalised to sum to 1.
    tol : float
        Stop when ``max_i |y_i (Sigma y)_i / b_i - 1| <= tol`` for every date.
    max_iter : int

    Returns
    -------
    weights : ndarray of shape (D, n)
    error : ndarray of shape (D,)
        Achieved ``max_i |rc_i / b_i - 1|`` (relative risk-contribution error).
    """
    n_dates, n = covariance.shape[0], covariance.shape[1]
    b = budget / budget.sum()
    # The solution scales as 1/sqrt(scale of Sigma); normalise for uniform tolerances.
    diag = np.diagonal(covariance, axis1=1, axis2=2)
    scale = diag.mean(axis=1)
    sigma = covariance / scale[:, None, None]
    y = 1.0 / np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))
    y /= np.sqrt(np.einsum("di,dij,dj->d", y, sigma, y))[:, None]  # y'Sigma y = 1'b at optimum

    def objective(yy: np.ndarray, ss: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return 0.5 * np.einsum("di,dij,dj->d", yy, ss, yy) - np.log(yy) @ b

    def rc_error(yy: np.ndarray, sy: np.ndarray) -> np.ndarray:
        return np.where(failed, np.inf, np.abs(yy * sy / b - 1.0).max(axis=1))

    # Dates whose Hessian became singular in floating point (no equal-risk portfolio: y grows
    # without bound on a singular Sigma); they stop, with an infinite error.
    failed = np.zeros(n_dates, dtype=bool)
    for _ in range(max_iter):
        sy = np.einsum("dij,dj->di", sigma, y)
        todo = np.flatnonzero((rc_error(y, sy) > tol) & ~failed)
        if len(todo) == 0:
            break
        ys, ss = y[todo], sigma[todo]
        grad = sy[todo] - b / ys
        hess = ss.copy()
        hess[:, np.arange(n), np.arange(n)] += b / ys**2
        step, singular = _solve_each(hess, -grad)
        failed[todo[singular]] = True
        f0 = objective(ys, ss)
        slope = np.einsum("di,di->d", grad, step)
        t = np.ones(len(todo))
        for _ in range(60):  # backtracking: stay in y > 0 and decrease f (Armijo)
            trial = ys + t[:, None] * step
            ok = (trial > 0).all(axis=1)
            f1 = np.where(ok, objective(np.where(ok[:, None], trial, 1.0), ss), np.inf)
            # Inside Newton's quadratic region f changes below its rounding error, so the
            # Armijo test is meaningless there: take the full step.
            ok &= (f1 <= f0 + 1e-4 * t * slope) | (-slope < 1e-10)
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
        y[todo] = ys + t[:, None] * step
    return y / y.sum(axis=1, keepdims=True), rc_error(y, np.einsum("dij,dj->di", sigma, y))


def _solve_each(a: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solutions x of ``a[d] x = rhs[d]``, shape (D, n), and where ``a[d]`` is singular (D,),
    its x then 0: one singular system does not stop the others."""
    x = each_or_nan(lambda m, v: np.linalg.solve(m, v[..., None])[..., 0], rhs, a, rhs)
    singular = ~np.isfinite(x).all(axis=1)
    x[singular] = 0.0
    return x, singular


def each_or_nan(function: Callable[..., np.ndarray], like: np.ndarray, *arrays: np.ndarray):
    """``function(*arrays)`` over a batch (leading axis D), date by date where numpy's linear
    algebra raises: a date it raises on is NaN (shaped as `like`), the others computed."""
    try:
        return function(*arrays)
    except np.linalg.LinAlgError:
        pass
    out = np.full_like(like, np.nan)
    for d in range(len(out)):
        with contextlib.suppress(np.linalg.LinAlgError):
            out[d] = function(*(a[d] for a in arrays))
    return out
