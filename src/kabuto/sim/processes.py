"""Seeded multi-asset price processes that come out as a `Panel`.

Each generator draws all its randomness from one `numpy.random.Generator` built from ``seed``
and records its parameters and the seed in ``Panel.source``, so that a panel can be regenerated
from its provenance line (except for parameters given as arrays of more than 10 values, which
it summarises by shape and mean: keep those yourself). With ``seed=None`` a fresh seed is
drawn from the OS and recorded.

Time is in years with 252 trading days (``dt = 1/252``); ``mu`` and ``sigma`` are annualized.
Dates are business days from ``start``. A panel of ``n_days`` dates holds ``n_days - 1`` returns:
the first date carries the initial price ``s0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kabuto.data.panel import Panel
from kabuto.errors import ConfigError
from kabuto.settings import check_common_correlation, check_correlation_matrix, is_real, is_seed

__all__ = ["correlated_gbm", "garch_panel", "mean_reverting_prices"]

TRADING_DAYS = 252
DT = 1.0 / TRADING_DAYS

SeedLike = int | np.random.Generator | None
ArrayLike = float | np.ndarray | list[float]


def correlated_gbm(
    n_assets: int,
    n_days: int,
    *,
    mu: ArrayLike = 0.05,
    sigma: ArrayLike = 0.2,
    correlation: float | np.ndarray = 0.3,
    seed: SeedLike = None,
    start: str | pd.Timestamp = "2000-01-03",
    s0: ArrayLike = 100.0,
) -> Panel:
    """Correlated geometric Brownian motions, sampled exactly on business days.

    ``dS_i = mu_i S_i dt + sigma_i S_i dW_i`` with ``corr(dW_i, dW_j) = correlation[i, j]``.
    Each daily log return is exactly ``N((mu_i - sigma_i**2 / 2) dt, sigma_i**2 dt)``, with no
    discretisation error.

    Parameters
    ----------
    n_assets : int
        Number of assets N (named ``asset_000``, ``asset_001``, ...).
    n_days : int
        Number of dates T (at least 2); the panel has T - 1 returns.
    mu : float or array of shape (N,), default 0.05
        Annualized drift: ``E[S_t] = s0 * exp(mu t)``.
    sigma : float or array of shape (N,), default 0.2
        Annualized volatility (>= 0).
    correlation : float or array of shape (N, N), default 0.3
        A scalar is the same correlation for every pair (it must lie in [-1/(N-1), 1]); a matrix
        must be symmetric, have a unit diagonal and be positive semi-definite.
    seed : int, numpy Generator or None
        Source of randomness. An int (or None, which draws one and records it) is written into
        the panel's ``source``; a Generator's state is not.
    start : str or Timestamp, default "2000-01-03"
        First date (rolled forward to a business day).
    s0 : float or array of shape (N,), default 100.0
        Prices on the first date.

    Returns
    -------
    Panel

    Raises
    ------
    ConfigError
        For a parameter out of range, naming it and its value.
    """
    owner = "correlated_gbm"
    n, T = _check_sizes(n_assets, n_days, owner)
    mu_v = _vector(owner, mu, n, "mu")
    sigma_v = _vector(owner, sigma, n, "sigma", minimum=0.0)
    s0_v = _vector(owner, s0, n, "s0", minimum=0.0, strict=True)
    dates = _dates(start, T)
    rng, seed_text = _rng(seed)

    z = _correlated_normals("correlated_gbm", rng, T - 1, n, correlation)
    # In-place on z: the draws are the largest array here (T x N) and are not needed again.
    z *= sigma_v * np.sqrt(DT)
    z += (mu_v - 0.5 * sigma_v**2) * DT
    source = _describe(
        "correlated_gbm",
        n_assets=n,
        n_days=T,
        mu=mu,
        sigma=sigma,
        correlation=correlation,
        s0=s0,
        start=dates[0].date(),
        seed=seed_text,
    )
    return _panel_from_log_returns(z, s0_v, dates, source)


def garch_panel(
    n_assets: int,
    n_days: int,
    *,
    omega: ArrayLike | None = None,
    alpha: ArrayLike = 0.08,
    beta: ArrayLike = 0.9,
    mu: ArrayLike = 0.0,
    correlation: float | np.ndarray = 0.3,
    seed: SeedLike = None,
    start: str | pd.Timestamp = "2000-01-03",
    s0: ArrayLike = 100.0,
    burn_in: int = 500,
) -> Panel:
    """GARCH(1,1) log returns per asset, driven by correlated Gaussian innovations.

    For each asset i and day t::

        r_t = mu * dt + eps_t,   eps_t = sqrt(h_t) * z_t,
        h_{t+1} = omega + alpha * eps_t**2 + beta * h_t,

    where ``z_t ~ N(0, correlation)`` across assets and independent over time. The unconditional
    daily variance is ``omega / (1 - alpha - beta)``. The recursion starts at that variance and
    runs ``burn_in`` unrecorded days so the first recorded day is close to the stationary law.

    Parameters
    ----------
    n_assets, n_days : int
        Number of assets N and of dates T (at least 2).
    omega : float or array of shape (N,), optional
        Constant of the variance recursion, in daily variance units (> 0). By default it is set
        so the unconditional volatility is 20% a year:
        ``omega = 0.2**2 / 252 * (1 - alpha - beta)``.
    alpha, beta : float or array of shape (N,), default 0.08 and 0.9
        Reaction to the last squared shock and persistence (>= 0, ``alpha + beta < 1``).
    mu : float or array of shape (N,), default 0.0
        Annualized mean of the daily **log** returns (unlike `correlated_gbm`, whose ``mu`` is
        the drift of the price; the two differ by half the variance).
    correlation : float or array of shape (N, N), default 0.3
        Correlation of the innovations z (as in `correlated_gbm`). Returns are slightly less
        correlated than the innovations because the assets' variances differ day to day.
    seed : int, numpy Generator or None
        As in `correlated_gbm`.
    start : str or Timestamp, default "2000-01-03"
        First date.
    s0 : float or array of shape (N,), default 100.0
        Prices on the first date.
    burn_in : int, default 500
        Days simulated and discarded before the first return.

    Returns
    -------
    Panel

    Raises
    ------
    ConfigError
        For a parameter out of range (non-stationary ``alpha + beta >= 1``, negative values, a
        correlation that is not positive semi-definite), naming it and its value.
    """
    owner = "garch_panel"
    n, T = _check_sizes(n_assets, n_days, owner)
    alpha_v = _vector(owner, alpha, n, "alpha", minimum=0.0)
    beta_v = _vector(owner, beta, n, "beta", minimum=0.0)
    persistence = alpha_v + beta_v
    if (persistence >= 1).any():
        i = int(np.flatnonzero(persistence >= 1)[0])
        where = "" if np.ndim(alpha) == 0 and np.ndim(beta) == 0 else f" for asset {i}"
        raise ConfigError(
            f"garch_panel: alpha + beta = {persistence[i]:.6g}{where} (alpha={alpha_v[i]:.6g}, "
            f"beta={beta_v[i]:.6g}) must be below 1 for a stationary GARCH(1,1) with finite "
            "variance; lower alpha or beta"
        )
    if omega is None:
        omega_v = 0.2**2 * DT * (1.0 - persistence)
    else:
        omega_v = _vector(owner, omega, n, "omega", minimum=0.0, strict=True)
    mu_v = _vector(owner, mu, n, "mu")
    s0_v = _vector(owner, s0, n, "s0", minimum=0.0, strict=True)
    if isinstance(burn_in, bool) or not isinstance(burn_in, int | np.integer) or burn_in < 0:
        raise ConfigError(f"garch_panel: burn_in must be a non-negative integer, got {burn_in!r}")
    dates = _dates(start, T)
    rng, seed_text = _rng(seed)

    steps = burn_in + T - 1
    z = _correlated_normals("garch_panel", rng, steps, n, correlation)
    # The recursion is sequential in time but each step is a handful of length-N vector ops;
    # eps overwrites z row by row to keep one (steps x N) array.
    h = omega_v / (1.0 - persistence)
    sq = np.empty(n)
    for t in range(steps):
        row = z[t]
        np.sqrt(h, out=sq)
        row *= sq
        np.multiply(row, row, out=sq)
        sq *= alpha_v
        h *= beta_v
        h += sq
        h += omega_v
    log_returns = z[burn_in:]
    log_returns += mu_v * DT
    source = _describe(
        "garch_panel",
        n_assets=n,
        n_days=T,
        omega="20% annual vol" if omega is None else omega,
        alpha=alpha,
        beta=beta,
        mu=mu,
        correlation=correlation,
        burn_in=burn_in,
        s0=s0,
        start=dates[0].date(),
        seed=seed_text,
    )
    return _panel_from_log_returns(log_returns, s0_v, dates, source)


def mean_reverting_prices(
    n_assets: int,
    n_days: int,
    *,
    phi: float = 0.7,
    sigma: float = 0.015,
    correlation: float = 0.3,
    seed: SeedLike = None,
    start: str | pd.Timestamp = "2000-01-03",
    s0: ArrayLike = 100.0,
) -> Panel:
    """Prices whose log deviation from `s0` is an AR(1): planted short-horizon mean reversion.

    ``x_t = phi x_{t-1} + sigma z_t`` with ``log P_t = log s0 + x_t`` and correlated standard
    normal shocks z. With ``phi < 1`` the expected next-day log move is ``-(1 - phi) x_t``: the
    price is expected to give back ``1 - phi`` of its current deviation ``x_t`` from `s0` (not of
    its last move), which is what OLMAR and PAMR exploit; ``phi = 1`` is a driftless random
    walk, the control on which no strategy should beat a constant rebalanced portfolio by more
    than chance.

    Parameters
    ----------
    n_assets, n_days : int
        N assets and T dates (T - 1 returns).
    phi : float in [0, 1], default 0.7
        Persistence: the share of today's deviation x_t expected to be left tomorrow.
    sigma : float > 0, default 0.015
        Daily standard deviation of the shocks.
    correlation : float, default 0.3
        Correlation of the shocks of any two assets.
    seed, start, s0
        As for `correlated_gbm`; asset i starts at `s0` (or ``s0[i]``), where x_0 = 0.

    Returns
    -------
    Panel

    Raises
    ------
    ConfigError
        For a parameter out of range, naming it and its value.
    """
    owner = "mean_reverting_prices"
    n, T = _check_sizes(n_assets, n_days, owner)
    if not is_real(phi) or not 0 <= phi <= 1:
        raise ConfigError(f"{owner}: phi={phi!r} must be a finite number in [0, 1]")
    if not is_real(sigma) or not sigma > 0:
        raise ConfigError(f"{owner}: sigma={sigma!r} must be a finite number > 0")
    s0_v = _vector(owner, s0, n, "s0", minimum=0.0, strict=True)
    phi, sigma = float(phi), float(sigma)  # numpy scalars and fractions give the same path
    dates = _dates(start, T)
    rng, seed_text = _rng(seed)
    shocks = sigma * _correlated_normals(owner, rng, T - 1, n, correlation)
    level = np.zeros((T, n))
    for t in range(1, T):  # sequential by nature; T x N is small
        level[t] = phi * level[t - 1] + shocks[t - 1]
    source = _describe(
        owner,
        n_assets=n,
        n_days=T,
        phi=phi,
        sigma=sigma,
        correlation=correlation,
        s0=s0,
        start=dates[0].date(),
        seed=seed_text,
    )
    return _panel_from_log_returns(np.diff(level, axis=0), s0_v, dates, source)


def _check_sizes(n_assets: int, n_days: int, owner: str) -> tuple[int, int]:
    """Check N and T; ``owner`` (the generator's name) prefixes the error message."""
    for name, value, low in (("n_assets", n_assets, 1), ("n_days", n_days, 2)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ConfigError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return int(n_assets), int(n_days)


def _vector(
    owner: str,
    value: Any,
    n: int,
    name: str,
    *,
    minimum: float | None = None,
    strict: bool = False,
) -> np.ndarray:
    """A scalar or length-n parameter as a float array of shape (n,), checked."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{owner}: {name} must be a number or an array of {n} numbers, got {value!r}"
        ) from exc
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise ConfigError(
            f"{owner}: {name} must be a number or an array of {n} numbers (one per asset), "
            f"got shape {arr.shape}"
        )
    arr = np.broadcast_to(arr, (n,)).copy()
    bad = ~np.isfinite(arr)
    if minimum is not None:
        bad |= arr <= minimum if strict else arr < minimum
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = "" if np.ndim(value) == 0 else f" (asset {i})"
        need = "finite" if minimum is None else f"{'>' if strict else '>='} {minimum:g}"
        raise ConfigError(
            f"{owner}: {name}={float(arr[i])!r}{where} is out of range; it must be {need}"
        )
    return arr


def _dates(start: str | pd.Timestamp, n_days: int) -> pd.DatetimeIndex:
    try:
        first = pd.Timestamp(start)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"start={start!r} is not a date; write it as YYYY-MM-DD") from exc
    try:
        return pd.bdate_range(first, periods=n_days, name="date")
    except (OverflowError, ValueError) as exc:  # out of bounds is a ValueError in pandas
        raise ConfigError(
            f"n_days={n_days} business days from {first.date()} run past the last date pandas "
            "can hold; use fewer days"
        ) from exc


def _rng(seed: SeedLike) -> tuple[np.random.Generator, str]:
    if isinstance(seed, np.random.Generator):
        return seed, "Generator (state not recorded)"
    if seed is None:
        # Draw the seed ourselves so the provenance line can still reproduce the panel.
        seed = int(np.random.SeedSequence().entropy)
    if not is_seed(seed):
        raise ConfigError(
            f"seed must be a non-negative integer, a numpy Generator or None, got {seed!r}"
        )
    return np.random.default_rng(int(seed)), str(int(seed))


def _correlated_normals(
    owner: str,
    rng: np.random.Generator,
    n_steps: int,
    n: int,
    correlation: float | np.ndarray,
) -> np.ndarray:
    """Draw (n_steps, n) standard normals whose columns have the given correlation."""
    if np.ndim(correlation) == 0:
        rho = check_common_correlation(owner, "correlation", correlation, n)
        e = rng.standard_normal((n_steps, n))
        if rho == 0.0 or n == 1:
            return e
        # Z = a e + b (sum e) 1 has covariance a^2 I + (2ab + n b^2) 1 1^T; choosing
        # a^2 = 1 - rho and 2ab + n b^2 = rho gives the constant-correlation matrix in O(n)
        # per row, valid on the whole admissible range including rho = 1 and negative rho.
        a = np.sqrt(1.0 - rho)
        b = (-a + np.sqrt(max(a * a + n * rho, 0.0))) / n
        total = e.sum(axis=1, keepdims=True)
        e *= a
        e += b * total
        return e
    corr = check_correlation_matrix(owner, "correlation", correlation, n)
    try:
        root = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        # Semi-definite (e.g. perfectly correlated pairs): Cholesky fails, an eigen root works.
        eigval, eigvec = np.linalg.eigh(corr)
        root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    return rng.standard_normal((n_steps, n)) @ root.T


def _panel_from_log_returns(
    log_returns: np.ndarray, s0: np.ndarray, dates: pd.DatetimeIndex, source: str
) -> Panel:
    n_steps, n = log_returns.shape
    prices = np.empty((n_steps + 1, n))
    prices[0] = s0  # exactly s0, not exp(log(s0))
    np.cumsum(log_returns, axis=0, out=prices[1:])
    with np.errstate(over="ignore", under="ignore"):  # reported below, with the cause
        np.exp(prices[1:], out=prices[1:])
        prices[1:] *= s0
    if not np.isfinite(prices).all() or (prices <= 0).any():
        raise ConfigError(
            f"{source}: the parameters drive prices beyond the range of float64 (overflow or "
            "underflow to 0); use a smaller drift or volatility, or fewer days"
        )
    width = len(str(n - 1))
    assets = [f"asset_{i:0{max(width, 3)}d}" for i in range(n)]
    return Panel(pd.DataFrame(prices, index=dates, columns=assets), source=source)


#: Arrays of at most this many values are written out in a provenance line; larger ones
#: (one value per asset, a correlation matrix) are summarised.
_LISTED_VALUES = 10


def _describe(name: str, **params: Any) -> str:
    """The provenance line: every parameter exactly (floats as Python writes them back), but
    arrays of more than `_LISTED_VALUES` values only by shape and mean."""
    parts = []
    for key, value in params.items():
        if np.ndim(value) == 0:
            text = repr(float(value)) if isinstance(value, float | np.floating) else str(value)
        else:
            arr = np.asarray(value, dtype=np.float64)
            if arr.size <= _LISTED_VALUES:
                text = repr(arr.tolist())
            else:
                text = f"<{'x'.join(map(str, arr.shape))} array, mean {arr.mean():.6g}>"
        parts.append(f"{key}={text}")
    return f"{name}({', '.join(parts)})"
