"""Monte Carlo paths of derivatives' underlyings as torch tensors, vectorised over paths.

These generators feed deep hedging and deep BSDE training and Monte Carlo pricing. Every
generator takes ``n_paths`` (N) and ``n_steps`` on an even grid ``t_k = k * maturity / n_steps``
and returns prices at all ``n_steps + 1`` grid times, the first column being exactly ``spot``.
Time is in years and rates and volatilities are annualized.

Randomness comes from one ``torch.Generator``: pass an int ``seed`` (a fresh generator on
``device`` is seeded with it, so the same int gives the same paths) or a generator (its state
advances, so two calls give different paths). Tensors are ``float32`` unless ``dtype`` says
otherwise; ``float64`` is supported throughout. Nothing here depends on pandas.

Processes
---------
- `gbm_paths`: correlated geometric Brownian motions, stepped exactly in log space.
- `heston_paths`: Heston stochastic volatility with Andersen's (2008) quadratic-exponential
  (QE) scheme or the full-truncation Euler scheme of Lord, Koekkoek and van Dijk (2010).
- `merton_paths`: Merton (1976) jump diffusion with lognormal jumps, compensated.
- `bootstrap_paths`: moving-block bootstrap of historical simple returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from kabuto.data import Panel
from kabuto.errors import ConfigError
from kabuto.settings import (
    check_common_correlation,
    check_correlation_matrix,
    check_int,
    check_lognormal_jumps,
    check_seed,
)

__all__ = ["bootstrap_paths", "gbm_paths", "heston_paths", "merton_paths"]

Seed = int | torch.Generator
Param = float | Sequence[float] | np.ndarray | Tensor
Device = str | torch.device

# Andersen (2008) switches from the quadratic to the exponential variance sampler above this
# ratio of conditional variance to squared conditional mean; 1.5 is his recommended value.
PSI_CRITICAL = 1.5


def gbm_paths(
    n_paths: int,
    n_steps: int,
    maturity: float,
    spot: Param,
    drift: Param,
    volatility: Param,
    correlation: float | np.ndarray | Tensor | None = None,
    *,
    seed: Seed = 0,
    dtype: torch.dtype = torch.float32,
    device: Device = "cpu",
    antithetic: bool = False,
) -> Tensor:
    """Correlated geometric Brownian motions, stepped exactly.

    ``dS_i = mu_i S_i dt + sigma_i S_i dW_i`` with ``corr(dW_i, dW_j) = correlation[i, j]``.
    Each step is the exact log-normal transition
    ``S_{t+dt} = S_t exp((mu - sigma^2 / 2) dt + sigma sqrt(dt) Z)``, so there is no
    discretisation error at any ``n_steps``.

    Parameters
    ----------
    n_paths : int
        Number of paths N (>= 1; even when ``antithetic``).
    n_steps : int
        Number of time steps (>= 1).
    maturity : float
        Horizon T in years (> 0).
    spot, drift, volatility : float or array of shape (d,)
        Initial prices (> 0), annualized drifts and volatilities (>= 0). They broadcast to the
        number of assets d. Tensors keep their autograd graph, so pathwise sensitivities
        (delta, vega) can be taken through the paths.
    correlation : float or array of shape (d, d), optional
        Correlation of the Brownian motions. None means independent; a scalar is the same
        correlation for every pair (in ``[-1 / (d - 1), 1]``); a matrix must be symmetric with
        a unit diagonal and positive semi-definite. A matrix also fixes d when every other
        parameter is a scalar.
    seed : int or torch.Generator, default 0
        Source of randomness (see the module docstring).
    dtype : torch.dtype, default torch.float32
        Floating dtype of the paths.
    device : str or torch.device, default "cpu"
        Device of the paths.
    antithetic : bool, default False
        Draw N / 2 normal increments and use them with both signs: path ``i + N / 2`` mirrors
        path ``i``. Halves the variance of estimators that are odd in the shocks.

    Returns
    -------
    Tensor
        Prices. Shape: output (N, n_steps + 1, d).

    Raises
    ------
    ConfigError
        For an argument out of range, naming it, its value and what is allowed.
    """
    owner = "gbm_paths"
    n, steps, dt = _grid(owner, n_paths, n_steps, maturity)
    _check_dtype(owner, dtype)
    device = _device(owner, device)
    spot_t = _asset_param(owner, "spot", spot, dtype, device, low=0.0, strict=True)
    drift_t = _asset_param(owner, "drift", drift, dtype, device)
    vol_t = _asset_param(owner, "volatility", volatility, dtype, device, low=0.0)
    if isinstance(correlation, Tensor):
        correlation = correlation.detach().cpu().numpy()
    d = _n_assets(owner, (spot_t, drift_t, vol_t), correlation)
    root = _correlation_root(owner, correlation, d)
    if not isinstance(antithetic, bool):
        raise ConfigError(f"{owner}: antithetic={antithetic!r} is not allowed; use True or False")
    if antithetic and n % 2:
        raise ConfigError(f"{owner}: n_paths={n} must be even when antithetic=True")
    gen = _generator(owner, seed, device)

    half = n // 2 if antithetic else n
    z = _normal(gen, (half, steps, d), dtype, device)
    if antithetic:
        z = torch.cat([z, -z])
    if root is not None:
        z = z @ root.to(dtype=dtype, device=device).T
    increments = (drift_t - 0.5 * vol_t**2) * dt + vol_t * math.sqrt(dt) * z
    paths = _from_log_increments(spot_t.expand(d), increments)
    _check_in_range(
        owner,
        paths,
        dtype,
        {"drift": drift_t, "volatility": vol_t, "maturity": maturity},
        "a drift nearer 0, a smaller volatility or a shorter maturity",
    )
    return paths


#: The longest QE step in units of 1 / kappa; longer grid steps are split (`heston_paths`),
#: into at most `_QE_MAX_SUBSTEPS` sub-steps.
_QE_MAX_KAPPA_DT = 0.5
_QE_MAX_SUBSTEPS = 100


def heston_paths(
    n_paths: int,
    n_steps: int,
    maturity: float,
    spot: float,
    v0: float,
    kappa: float,
    theta: float,
    xi: float,
    rho: float,
    drift: float = 0.0,
    *,
    seed: Seed = 0,
    dtype: torch.dtype = torch.float32,
    device: Device = "cpu",
    scheme: Literal["qe", "full_truncation"] = "qe",
) -> tuple[Tensor, Tensor]:
    """Heston (1993) stochastic volatility paths with a variance that stays non-negative.

    ``dS = mu S dt + sqrt(v) S dW_S``, ``dv = kappa (theta - v) dt + xi sqrt(v) dW_v`` with
    ``corr(dW_S, dW_v) = rho``.

    ``scheme="qe"`` (default) is Andersen's (2008) quadratic-exponential scheme: the next
    variance is drawn from a squared shifted Gaussian (when ``psi = s^2 / m^2 <= 1.5``) or from
    a mixture of a point mass at zero and an exponential (otherwise), matching the exact
    conditional mean ``m`` and variance ``s^2`` of the CIR transition, so it holds even when
    the Feller condition ``2 kappa theta >= xi^2`` fails. Its log step is accurate while
    ``kappa dt`` is small: beyond about 1 its central weights add variance to log S (an ATM
    call 36% high at ``kappa dt = 20``), so a step longer than ``0.5 / kappa`` is taken as
    ``ceil(2 kappa dt)`` equal sub-steps, and the paths keep the grid's dates only.
    log S uses Andersen's discretisation
    ``log S' = log S + mu dt + K_0 + K_1 v + K_2 v' + sqrt(K_3 v + K_4 v') Z`` with central
    weights ``gamma_1 = gamma_2 = 1/2`` and his martingale correction of the constant
    ``K_0``, so that ``E[S_{t+dt} | S_t, v_t] = S_t exp(mu dt)`` holds exactly for the
    discretised process.
    The correction needs ``E[exp(A v_{t+dt}) | v_t]`` to be finite (``A = K_2 + K_4 / 2``,
    Andersen's condition, which can fail only for ``rho > 0`` with large steps); where it is
    infinite no constant can make the step a martingale and the uncorrected
    ``K_0 = -rho kappa theta dt / xi`` is used.

    ``scheme="full_truncation"`` is the Euler scheme of Lord, Koekkoek and van Dijk (2010):
    an auxiliary variance may go negative, but only its positive part enters the drift, the
    diffusion and the log-price step (which is exact given that variance, so S is a
    martingale after removing the drift). It has a first-order bias and needs finer steps.

    Parameters
    ----------
    n_paths, n_steps : int
        Number of paths N and of time steps (>= 1).
    maturity : float
        Horizon T in years (> 0).
    spot : float
        Initial price (> 0).
    v0 : float
        Initial variance (>= 0).
    kappa : float
        Speed of mean reversion of the variance (> 0).
    theta : float
        Long-run variance (> 0).
    xi : float
        Volatility of the variance (>= 0; with 0 the variance is deterministic and ``rho``
        has no effect). The QE step never divides by xi, so a tiny xi gives paths close to
        those of xi = 0, in float32 too.
    rho : float
        Correlation of the price and variance shocks, in [-1, 1].
    drift : float, default 0.0
        Annualized drift mu of the price (the risk-free rate for pricing).
    seed, dtype, device
        As in `gbm_paths`.
    scheme : {"qe", "full_truncation"}, default "qe"
        Discretisation (see above).

    Returns
    -------
    spot : Tensor
        Prices. Shape: output (N, n_steps + 1).
    variance : Tensor
        Instantaneous variance, never negative (for "full_truncation" the positive part of
        the auxiliary variance). Shape: output (N, n_steps + 1).

    Raises
    ------
    ConfigError
        For an argument out of range, naming it, its value and what is allowed.
    """
    owner = "heston_paths"
    n, steps, dt = _grid(owner, n_paths, n_steps, maturity)
    _check_dtype(owner, dtype)
    device = _device(owner, device)
    s0 = _scalar(owner, "spot", spot, low=0.0, strict=True)
    v0 = _scalar(owner, "v0", v0, low=0.0)
    kappa = _scalar(owner, "kappa", kappa, low=0.0, strict=True)
    theta = _scalar(owner, "theta", theta, low=0.0, strict=True)
    xi = _scalar(owner, "xi", xi, low=0.0)
    rho = _scalar(owner, "rho", rho, low=-1.0, high=1.0)
    mu = _scalar(owner, "drift", drift)
    for name, value in (("spot", s0), ("v0", v0)):
        _check_fits(owner, name, value, dtype)
    if scheme not in ("qe", "full_truncation"):
        raise ConfigError(
            f"{owner}: scheme={scheme!r} is not allowed; use 'qe' or 'full_truncation'"
        )
    gen = _generator(owner, seed, device)
    substeps = max(1, math.ceil(kappa * dt / _QE_MAX_KAPPA_DT)) if scheme == "qe" else 1
    if substeps > _QE_MAX_SUBSTEPS:  # each is a pass over every path: kappa = 1e7 ran for hours
        enough = math.ceil(kappa * steps * dt / (_QE_MAX_KAPPA_DT * _QE_MAX_SUBSTEPS))
        raise ConfigError(
            f"{owner}: kappa={kappa:g} with steps of {dt:g} years (kappa dt = {kappa * dt:g}) "
            f"would need {substeps:,} QE sub-steps a step, more than {_QE_MAX_SUBSTEPS}; use "
            f"more n_steps (at least {enough:,}) or a smaller kappa"
        )
    params = _HestonStep(dt / substeps, kappa, theta, xi, rho, mu)
    step = params.qe if scheme == "qe" else params.full_truncation

    log_s = torch.zeros(n, dtype=dtype, device=device)  # log(S_t / S_0)
    v = torch.full((n,), v0, dtype=dtype, device=device)
    log_path, var_path = [log_s], [v]
    for _ in range(steps):
        for _ in range(substeps):
            z = _normal(gen, (2, n), dtype, device)
            log_s, v = step(log_s, v, z[0], z[1])
        log_path.append(log_s)
        var_path.append(v)
    # Full truncation carries a possibly negative auxiliary variance; its positive part is
    # the variance the dynamics actually use, so that is what is reported.
    variance = torch.stack(var_path, dim=1).clamp_(min=0.0)
    prices = s0 * torch.exp(torch.stack(log_path, dim=1))
    params = {"drift": mu, "v0": v0, "theta": theta, "xi": xi, "maturity": maturity}
    fix = "a drift nearer 0, a smaller variance (v0, theta, xi) or a shorter maturity"
    _check_in_range(owner, prices, dtype, params, fix)
    _check_in_range(owner, variance, dtype, params, fix, what="variance", positive=False)
    return prices, variance


class _HestonStep:
    """One time step of the Heston schemes, with the per-step constants computed once.

    The QE step is written so that no term grows like ``1 / xi``. Andersen's constants
    ``K_0, K_1, K_2`` contain ``rho / xi``; evaluated as printed, their terms cancel to leave
    an O(1) step, which in float32 put prices 0.7% off at xi = 1e-5, 25% off at 1e-7 and gave
    NaN at 1e-9 (his ``b^2 ~ 4 / psi`` overflows). Here the ``rho / xi`` parts only ever
    multiply ``s / xi`` (s the conditional standard deviation of the next variance), so a
    small xi tends smoothly to the deterministic variance of xi = 0.
    """

    def __init__(self, dt: float, kappa: float, theta: float, xi: float, rho: float, mu: float):
        self.dt, self.kappa, self.theta, self.xi, self.mu = dt, kappa, theta, xi, mu
        # With xi = 0 the variance is deterministic and the correlation cannot matter; zeroing
        # it keeps the rho / xi terms of the log step out of a 0 / 0.
        self.rho = rho if xi > 0 else 0.0
        decay = math.exp(-kappa * dt)
        self.decay = decay
        # Conditional variance of the CIR transition over dt, s^2 = xi^2 (c_v v + c_0); xi^2 is
        # left out so that s / xi needs no division by a tiny xi.
        self.c_v = decay * -math.expm1(-kappa * dt) / kappa
        self.c_0 = theta * math.expm1(-kappa * dt) ** 2 / (2.0 * kappa)
        # Andersen's K_0..K_4 with central weights gamma_1 = gamma_2 = 1/2: the log step comes
        # from integrating the variance SDE for int sqrt(v) dW_v and a trapezoid for int v dt.
        r_over_xi = self.rho / xi if xi > 0 else 0.0
        half_dt = 0.5 * dt
        self.k0 = -r_over_xi * kappa * theta * dt
        self.k1 = half_dt * (kappa * r_over_xi - 0.5) - r_over_xi
        self.k2 = half_dt * (kappa * r_over_xi - 0.5) + r_over_xi
        self.k3 = half_dt * (1.0 - self.rho**2)
        self.k4 = self.k3
        self.a = self.k2 + 0.5 * self.k4
        # K_2 = k2_rho / xi + k2_free and A = K_2 + K_4 / 2 = k2_rho / xi + a_free.
        self.k2_rho = self.rho * (1.0 + half_dt * kappa)
        self.k2_free = -0.5 * half_dt
        self.a_free = self.k2_free + 0.5 * self.k4

    def qe(self, log_s: Tensor, v: Tensor, z_v: Tensor, z_s: Tensor) -> tuple[Tensor, Tensor]:
        """Andersen's QE variance step and the martingale-corrected central log-S step.

        Shape: input (N,) each, output (N,) each.
        """
        m = self.theta + (v - self.theta) * self.decay
        s_over_xi = torch.sqrt(self.c_v * v + self.c_0)
        v_next, shock, mgf_gap, valid = self._qe_variance(m, s_over_xi, z_v)
        # Andersen's martingale correction K0* = -log E[exp(A v') | v] - (K1 + K3 / 2) v makes
        # exp of the log step a martingale. Regrouped around m = E[v' | v]:
        # K0* + K1 v + K2 v' = -(log E[exp(A v')] - A m) - (K3 v + K4 m) / 2 + K2 (v' - m),
        # every term finite as xi -> 0. Where the expectation is infinite, K0 stays.
        corrected = -mgf_gap - 0.5 * (self.k3 * v + self.k4 * m)
        uncorrected = self.k0 + self.k1 * v + self.k2 * m
        drift = torch.where(valid, corrected, uncorrected) + shock
        diffusion = torch.sqrt(self.k3 * v + self.k4 * v_next)
        return log_s + self.mu * self.dt + drift + diffusion * z_s, v_next

    def _qe_variance(
        self, m: Tensor, s_over_xi: Tensor, z: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Next variance v', ``K2 (v' - m)``, ``log E[exp(A v') | v] - A m`` and where it is finite.

        Shape: input (N,) each, output (N,) each.
        """
        s = self.xi * s_over_xi
        q = s / m  # sqrt(psi), the conditional coefficient of variation
        psi = q * q
        quadratic = psi <= PSI_CRITICAL
        # torch.where evaluates both branches on every path; clamping into each branch's domain
        # keeps the discarded one finite.
        v_quad, shock_q, gap_q, ok_q = self._quadratic(m, s, s_over_xi, q, z)
        v_exp, shock_e, gap_e, ok_e = self._exponential(m, psi.clamp(min=PSI_CRITICAL), z)
        return (
            torch.where(quadratic, v_quad, v_exp),
            torch.where(quadratic, shock_q, shock_e),
            torch.where(quadratic, gap_q, gap_e),
            torch.where(quadratic, ok_q, ok_e),
        )

    def _quadratic(
        self, m: Tensor, s: Tensor, s_over_xi: Tensor, q: Tensor, z: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Andersen's v' = a (b + Z)^2 written in q = sqrt(psi) rather than psi.

        With ``b = c / q`` and ``c^2 = q^2 b^2 = 2 - q^2 + sqrt(2 (2 - q^2))`` (between 1.5 and 4),
        ``a = m q^2 / (q^2 + c^2)``, so ``v' = m (c + q Z)^2 / (q^2 + c^2)`` and
        ``v' - m = s (2 c Z + q (Z^2 - 1)) / (q^2 + c^2)``: nothing overflows as psi -> 0
        (Andersen's b^2 ~ 4 / psi does) and at q = 0 v' is exactly m.
        """
        q = q.clamp(max=math.sqrt(PSI_CRITICAL))
        room = 2.0 - q * q
        c = torch.sqrt(room + torch.sqrt(2.0 * room))
        denom = q * q + c * c
        v_next = m * (c + q * z) ** 2 / denom
        # K2 s and A s: the rho / xi parts act on s / xi.
        k2_s = self.k2_rho * s_over_xi + self.k2_free * s
        a_s = self.k2_rho * s_over_xi + self.a_free * s
        shock = k2_s * (2.0 * c * z + q * (z * z - 1.0)) / denom
        # E[exp(A a (b + Z)^2)] = exp(A a b^2 / (1 - 2 w)) / sqrt(1 - 2 w) for w = A a < 1/2;
        # less A m that is (2 (A s)^2 / (q^2 + c^2) - w) / (1 - 2 w) - log(1 - 2 w) / 2.
        w = a_s * q / denom
        ok = w < 0.5
        w = torch.where(ok, w, 0.0)
        gap = (2.0 * a_s * a_s / denom - w) / (1.0 - 2.0 * w) - 0.5 * torch.log1p(-2.0 * w)
        return v_next, shock, gap, ok

    def _exponential(
        self, m: Tensor, psi: Tensor, z: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Andersen's mixture of a point mass at 0 and an exponential, for psi >= 1.5.

        Returns v', ``K2 (v' - m)``, ``log E[exp(A v')] - A m`` and where that is finite.
        """
        p = (psi - 1.0) / (psi + 1.0)
        beta = (1.0 - p) / m
        # U = Phi(z) is uniform; 1 - U = Phi(-z) is computed directly so that it does not
        # round to 0 in the upper tail. The inverse of the mixture's CDF is 0 for U <= p and
        # log((1 - p) / (1 - U)) / beta above.
        log_tail = torch.special.log_ndtr(-z)
        log_1mp = torch.log1p(-p)
        v_next = torch.where(log_tail < log_1mp, (log_1mp - log_tail) / beta, 0.0)
        # E[exp(A V)] = p + (1 - p) beta / (beta - A) if A < beta.
        ok = beta > self.a
        room = torch.where(ok, beta - self.a, 1.0)
        gap = torch.log(p + (1.0 - p) * beta / room) - self.a * m
        return v_next, self.k2 * (v_next - m), gap, ok

    def full_truncation(
        self, log_s: Tensor, v: Tensor, z_v: Tensor, z_s: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Lord et al. (2010) full-truncation Euler step; v is the auxiliary variance.

        Shape: input (N,) each, output (N,) each.
        """
        v_pos = v.clamp(min=0.0)
        vol_dt = torch.sqrt(v_pos * self.dt)
        w_s = self.rho * z_v + math.sqrt(1.0 - self.rho**2) * z_s
        log_next = log_s + (self.mu - 0.5 * v_pos) * self.dt + vol_dt * w_s
        v_next = v + self.kappa * (self.theta - v_pos) * self.dt + self.xi * vol_dt * z_v
        return log_next, v_next


def merton_paths(
    n_paths: int,
    n_steps: int,
    maturity: float,
    spot: float,
    drift: float,
    volatility: float,
    jump_intensity: float,
    jump_mean: float,
    jump_std: float,
    *,
    seed: Seed = 0,
    dtype: torch.dtype = torch.float32,
    device: Device = "cpu",
) -> Tensor:
    """Merton (1976) jump diffusion with lognormal jumps, stepped exactly.

    ``dS / S_- = (mu - lambda k) dt + sigma dW + (J - 1) dN`` where N is a Poisson process of
    intensity lambda and ``log J ~ Normal(jump_mean, jump_std^2)``, so
    ``k = E[J - 1] = exp(jump_mean + jump_std^2 / 2) - 1``. The compensator ``-lambda k``
    makes ``E[S_T] = S_0 exp(mu T)``. Over a step the number of jumps is Poisson(lambda dt) and,
    given n jumps, their summed log size is ``Normal(n jump_mean, n jump_std^2)``, so the
    transition is sampled exactly.

    Parameters
    ----------
    n_paths, n_steps : int
        Number of paths N and of time steps (>= 1).
    maturity : float
        Horizon T in years (> 0).
    spot : float
        Initial price (> 0).
    drift : float
        Annualized drift mu (the total expected return, jumps included).
    volatility : float
        Diffusive volatility sigma (>= 0).
    jump_intensity : float
        Expected number of jumps per year lambda (>= 0).
    jump_mean, jump_std : float
        Mean and standard deviation (>= 0) of the log jump size; ``jump_mean + jump_std^2 / 2``
        must be below 700 so that the mean jump factor ``1 + k`` is a finite float.
    seed, dtype, device
        As in `gbm_paths`.

    Returns
    -------
    Tensor
        Prices. Shape: output (N, n_steps + 1).

    Raises
    ------
    ConfigError
        For an argument out of range, naming it, its value and what is allowed.
    """
    owner = "merton_paths"
    n, steps, dt = _grid(owner, n_paths, n_steps, maturity)
    _check_dtype(owner, dtype)
    device = _device(owner, device)
    s0 = _scalar(owner, "spot", spot, low=0.0, strict=True)
    mu = _scalar(owner, "drift", drift)
    sigma = _scalar(owner, "volatility", volatility, low=0.0)
    lam = _scalar(owner, "jump_intensity", jump_intensity, low=0.0)
    m_j = _scalar(owner, "jump_mean", jump_mean)
    s_j = _scalar(owner, "jump_std", jump_std, low=0.0)
    check_lognormal_jumps(owner, m_j, s_j)
    _check_fits(owner, "spot", s0, dtype)
    _check_fits(owner, "jump_intensity x the step", lam * dt, dtype)
    gen = _generator(owner, seed, device)

    compensator = lam * math.expm1(m_j + 0.5 * s_j**2)
    z = _normal(gen, (n, steps), dtype, device)
    rate = torch.full((n, steps), lam * dt, dtype=dtype, device=gen.device)
    counts = torch.poisson(rate, generator=gen).to(device)
    z_jump = _normal(gen, (n, steps), dtype, device)
    increments = (
        (mu - compensator - 0.5 * sigma**2) * dt
        + sigma * math.sqrt(dt) * z
        + counts * m_j
        + torch.sqrt(counts) * s_j * z_jump
    )
    spot_t = torch.tensor([s0], dtype=dtype, device=device)
    paths = _from_log_increments(spot_t, increments.unsqueeze(-1)).squeeze(-1)
    _check_in_range(
        owner,
        paths,
        dtype,
        {
            "drift": mu,
            "volatility": sigma,
            "jump_intensity": lam,
            "jump_mean": m_j,
            "jump_std": s_j,
            "maturity": maturity,
        },
        "a drift nearer 0, a smaller volatility or jumps, or a shorter maturity",
    )
    return paths


def bootstrap_paths(
    returns: np.ndarray | Panel,
    n_paths: int,
    n_steps: int,
    *,
    block: int = 1,
    seed: Seed = 0,
    dtype: torch.dtype = torch.float32,
    device: Device = "cpu",
    spot: Param = 1.0,
) -> Tensor:
    """Paths compounded from historical simple returns resampled in moving blocks.

    Each path is a concatenation of blocks of ``block`` consecutive dates (rows) of
    ``returns``; a block starts at a uniformly drawn date among the ``T - block + 1`` that leave
    room for a full block (the fixed-length moving-block bootstrap, not the random-length
    stationary bootstrap, and without wrapping around the end). Whole rows are drawn, so the
    cross-section of a date stays together and assets keep their co-movement; blocks keep
    short-range serial dependence such as volatility clustering. The last block is cut to fit
    ``n_steps``. Prices compound as ``S_{t+1} = S_t (1 + r_t)`` from ``spot``.

    Parameters
    ----------
    returns : Panel, or array of shape (T, d) or (T,)
        Simple returns, one row per date (a 1-D array is one asset), or a `kabuto.data.Panel`,
        whose returns from its second date on are used (the first date has none). Every value
        must be finite and at least -1.
    n_paths, n_steps : int
        Number of paths N and of steps (>= 1).
    block : int, default 1
        Block length, between 1 (the i.i.d. bootstrap) and T.
    seed, dtype, device
        As in `gbm_paths`.
    spot : float or array of shape (d,), default 1.0
        Initial prices (> 0).

    Returns
    -------
    Tensor
        Prices. Shape: input ``returns`` (T, d), output (N, n_steps + 1, d).

    Raises
    ------
    ConfigError
        For a row with NaN or infinite values, a return below -1, or an argument out of range.
    """
    owner = "bootstrap_paths"
    n = check_int(owner, "n_paths", n_paths, 1)
    steps = check_int(owner, "n_steps", n_steps, 1)
    _check_dtype(owner, dtype)
    device = _device(owner, device)
    table = _returns_table(owner, returns)
    n_dates, d = table.shape
    block = check_int(owner, "block", block, 1)
    if block > n_dates:
        raise ConfigError(
            f"{owner}: block={block} is longer than the {n_dates} dates of returns; it must be "
            f"between 1 and {n_dates}"
        )
    spot_t = _asset_param(owner, "spot", spot, dtype, device, low=0.0, strict=True)
    if spot_t.ndim == 1 and spot_t.shape[0] not in (1, d):
        raise ConfigError(
            f"{owner}: spot has {spot_t.shape[0]} values but returns has {d} columns; give one "
            "number or one per column"
        )
    gen = _generator(owner, seed, device)

    n_blocks = -(-steps // block)
    starts = torch.randint(0, n_dates - block + 1, (n, n_blocks), generator=gen, device=gen.device)
    offsets = torch.arange(block, device=gen.device)
    rows = (starts.unsqueeze(-1) + offsets).reshape(n, n_blocks * block)[:, :steps]
    table_t = torch.tensor(table, dtype=dtype, device=device)  # a copy: the table may be read-only
    growth = torch.cumprod(1.0 + table_t[rows.to(device)], dim=1)
    ones = torch.ones(n, 1, d, dtype=dtype, device=device)
    paths = spot_t.expand(d) * torch.cat([ones, growth], dim=1)
    # A return of -1 makes a price 0 legitimately; only an overflow is an error here.
    _check_in_range(
        owner,
        paths,
        dtype,
        {"max(returns)": float(table.max()), "n_steps": steps},
        "fewer n_steps",
        positive=False,
    )
    return paths


def _from_log_increments(spot: Tensor, increments: Tensor) -> Tensor:
    """Prices from log increments, the first column exactly ``spot``.

    Shape: input ``spot`` (d,), ``increments`` (N, n_steps, d); output (N, n_steps + 1, d).
    """
    zeros = torch.zeros_like(increments[:, :1])
    return spot * torch.exp(torch.cat([zeros, increments.cumsum(dim=1)], dim=1))


def _check_in_range(
    owner: str,
    paths: Tensor,
    dtype: torch.dtype,
    params: dict[str, object],
    smaller: str,
    *,
    what: str = "prices",
    positive: bool = True,
) -> None:
    """Raise a ConfigError when `paths` overflowed to inf (or, if `positive`, underflowed to 0).

    The parameters are in range one by one, but together (large drift times a long maturity,
    say) they can drive the paths beyond what `dtype` holds; the message names them.
    """
    values = paths.detach()
    ok = values < math.inf
    ok &= values > 0 if positive else values > -math.inf
    if bool(ok.all()):
        return
    shown = ", ".join(f"{name}={_shown(value)}" for name, value in params.items())
    problem = "overflow to inf or underflow to 0" if positive else "overflow to inf"
    use = f"use dtype=torch.float64 or {smaller}" if dtype != torch.float64 else f"use {smaller}"
    raise ConfigError(
        f"{owner}: with {shown} and dtype={dtype} the {what} {problem}, beyond the range of "
        f"{dtype} (a parameter in range can still do so over the whole path); {use}"
    )


def _shown(value: object) -> str:
    """A parameter for a message: a number, a short list, or its range."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().double().numpy()
    a = np.asarray(value, dtype=np.float64).reshape(-1)
    if a.size == 1:
        return f"{a[0]:g}"
    if a.size <= 4:
        return "[" + ", ".join(f"{v:g}" for v in a) + "]"
    return f"[{a.min():g}..{a.max():g}] ({a.size} values)"


def _grid(owner: str, n_paths: int, n_steps: int, maturity: float) -> tuple[int, int, float]:
    n = check_int(owner, "n_paths", n_paths, 1)
    steps = check_int(owner, "n_steps", n_steps, 1)
    horizon = _scalar(owner, "maturity", maturity, low=0.0, strict=True)
    return n, steps, horizon / steps


def _scalar(
    owner: str,
    name: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    strict: bool = False,
) -> float:
    """A real parameter as a float, checked to be finite and within [low, high]."""
    try:
        if isinstance(value, bool):
            raise TypeError("a bool is not a number here")
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{owner}: {name}={value!r} is not allowed; it must be a number"
        ) from None
    bad = not math.isfinite(number)
    bad |= low is not None and (number <= low if strict else number < low)
    bad |= high is not None and number > high
    if bad:
        raise ConfigError(
            f"{owner}: {name}={value!r} is out of range; it must be {_range(low, high, strict)}"
        )
    return number


def _range(low: float | None, high: float | None, strict: bool) -> str:
    if low is not None and high is not None:
        return f"in [{low:g}, {high:g}]"
    if low is not None:
        return f"{'>' if strict else '>='} {low:g}"
    return "finite"


def _asset_param(
    owner: str,
    name: str,
    value: Param,
    dtype: torch.dtype,
    device: torch.device,
    *,
    low: float | None = None,
    strict: bool = False,
) -> Tensor:
    """A per-asset parameter as a tensor of shape () or (d,), keeping any autograd graph."""
    try:
        if isinstance(value, bool) or getattr(value, "dtype", None) in (bool, torch.bool):
            raise TypeError("a bool is not a number here")
        tensor = torch.as_tensor(value, dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(
            f"{owner}: {name}={value!r} is not allowed; it must be a number or a 1-D array, "
            f"of values {dtype} holds"
        ) from None
    if tensor.ndim > 1 or tensor.numel() == 0:
        raise ConfigError(
            f"{owner}: {name} has shape {tuple(tensor.shape)}; it must be a number or a 1-D "
            "array with one value per asset"
        )
    values = tensor.detach().double().cpu().reshape(-1)
    bad = ~torch.isfinite(values)
    if low is not None:
        bad |= values <= low if strict else values < low
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        where = f" (asset {i})" if tensor.ndim == 1 else ""
        raise ConfigError(
            f"{owner}: {name}={float(values[i])!r}{where} is out of range; it must be "
            f"{_range(low, None, strict)}"
        )
    return tensor


def _n_assets(
    owner: str, params: tuple[Tensor, ...], correlation: float | np.ndarray | None
) -> int:
    """Number of assets d implied by the per-asset parameters and a correlation matrix."""
    shapes = [tuple(p.shape) for p in params]
    if correlation is not None and np.ndim(correlation) == 2:
        shapes.append((np.shape(correlation)[0],))
    try:
        shape = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        raise ConfigError(
            f"{owner}: spot, drift, volatility and correlation disagree on the number of assets "
            f"(shapes {', '.join(str(s) for s in shapes)}); give numbers or arrays of one length"
        ) from None
    return shape[0] if shape else 1


def _correlation_root(owner: str, correlation: float | np.ndarray | None, d: int) -> Tensor | None:
    """A (d, d) float64 matrix L with ``L L^T = correlation``, or None for independence."""
    if correlation is None:
        return None
    if np.ndim(correlation) == 0:
        rho = check_common_correlation(owner, "correlation", correlation, d)
        corr = np.full((d, d), rho)
        np.fill_diagonal(corr, 1.0)
    else:
        corr = check_correlation_matrix(owner, "correlation", correlation, d)
    if d == 1:
        return None
    try:
        root = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        # Semi-definite (e.g. perfectly correlated assets): Cholesky fails, an eigen root works.
        eigval, eigvec = np.linalg.eigh(corr)
        root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    return torch.from_numpy(root)


def _returns_table(owner: str, returns: np.ndarray | Panel) -> np.ndarray:
    """Historical returns as a checked float64 array of shape (T, d)."""
    dates = None
    if isinstance(returns, Panel):
        dates = returns.dates[1:]  # the dates the returns end on
        returns = returns.returns[1:]
    if isinstance(returns, Tensor):
        returns = returns.detach().cpu().numpy()
    try:
        table = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{owner}: returns must be a numeric array of shape (T, d), got "
            f"{type(returns).__name__}"
        ) from None
    if table.ndim == 1:
        table = table[:, None]
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise ConfigError(
            f"{owner}: returns has shape {table.shape}; it must be (T, d) with T, d >= 1"
        )
    bad_rows = np.flatnonzero(~np.isfinite(table).all(axis=1))
    if bad_rows.size:
        named = (
            [str(i) for i in bad_rows[:5]]
            if dates is None
            else [str(dates[i].date()) for i in bad_rows[:5]]
        )
        shown = ", ".join(named) + (", ..." if bad_rows.size > 5 else "")
        raise ConfigError(
            f"{owner}: returns has {bad_rows.size} row(s) with NaN or infinite values "
            f"({'rows' if dates is None else 'returns to the dates'} {shown}); drop or fill "
            "them before bootstrapping, resampling cannot skip them without breaking blocks"
        )
    if (table < -1.0).any():
        i, j = np.argwhere(table < -1.0)[0]
        raise ConfigError(
            f"{owner}: returns[{i}, {j}]={table[i, j]:.6g} is below -1; simple returns must be "
            ">= -1 (a price cannot fall below zero)"
        )
    return table


def _check_dtype(owner: str, dtype: torch.dtype) -> None:
    # Half precisions are refused: torch has no half kernels for some steps (Heston's
    # log_ndtr), and 3 significant digits cannot price an option.
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(
            f"{owner}: dtype={dtype!r} is not allowed; use torch.float32 or torch.float64"
        )


def _check_fits(owner: str, name: str, value: float, dtype: torch.dtype) -> None:
    """Raise `ConfigError` if `value` overflows `dtype` (torch would raise a RuntimeError)."""
    if abs(value) > torch.finfo(dtype).max:
        raise ConfigError(
            f"{owner}: {name}={value!r} overflows {dtype}; use a smaller value"
            + (" or torch.float64" if dtype != torch.float64 else "")
        )


def _device(owner: str, device: Device) -> torch.device:
    try:
        resolved = torch.device(device)
    except (TypeError, RuntimeError):
        raise ConfigError(
            f"{owner}: device={device!r} is not allowed; use a torch device such as 'cpu' or 'cuda'"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{owner}: device={device!r}, but this machine has no CUDA; use 'cpu'")
    return resolved


def _generator(owner: str, seed: Seed, device: torch.device) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    try:
        value = check_seed(owner, "seed", seed)  # torch's seeds are 64-bit
    except ConfigError as exc:
        raise ConfigError(f"{exc}, or a torch.Generator") from None
    return torch.Generator(device=device).manual_seed(value)


def _normal(
    gen: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Standard normals drawn on the generator's device and moved to ``device``."""
    return torch.randn(shape, generator=gen, dtype=dtype, device=gen.device).to(device)
