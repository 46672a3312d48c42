"""Monte Carlo path generators against closed forms, moments, and their own contracts.

Each statistical check compares a sample estimate with its exact value under the model and
allows a few standard errors (SE) of that estimate, taken from the same sample: 4 SE for
moments and 3 SE for prices, on fixed seeds. A missing Ito term, a wrong correlation root or a
missing jump compensator moves an estimate by tens of SE at these sample sizes. Where a scheme
has a known discretisation bias, the allowance for it is computed or measured and stated.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import norm

from kabuto.data import Panel
from kabuto.errors import ConfigError
from kabuto.hedging.closed_form import geometric_basket_price
from kabuto.sim.paths import bootstrap_paths, gbm_paths, heston_paths, merton_paths
from kabuto.sim.processes import correlated_gbm

F64 = torch.float64


def assert_mean(samples: torch.Tensor, expected: float, n_se: float, allowance: float = 0.0):
    """The sample mean is within n_se standard errors (plus an allowance) of `expected`."""
    x = samples.double()
    mean = x.mean().item()
    se = x.std().item() / math.sqrt(x.numel())
    assert abs(mean - expected) <= n_se * se + allowance, (
        f"mean {mean:.6g} vs {expected:.6g}: {abs(mean - expected) / se:.2f} SE (SE {se:.3g})"
    )


def assert_variance(samples: torch.Tensor, expected: float, n_se: float):
    """The sample variance is within n_se of its SE, sd((x - mean)^2) / sqrt(n), of `expected`.

    That SE holds for any distribution with a finite fourth moment, jumps included.
    """
    x = samples.double()
    sq = (x - x.mean()) ** 2
    var = sq.mean().item()
    se = sq.std().item() / math.sqrt(x.numel())
    assert abs(var - expected) <= n_se * se, (
        f"variance {var:.6g} vs {expected:.6g}: {abs(var - expected) / se:.2f} SE"
    )


def black_scholes_call(spot: float, strike: float, t: float, rate: float, vol: float) -> float:
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol**2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    return spot * norm.cdf(d1) - strike * math.exp(-rate * t) * norm.cdf(d2)


def heston_call(
    spot: float, strike: float, t: float, v0: float, kappa: float, theta: float, xi: float, rho
) -> float:
    """Heston (1993) call at zero rate by Lewis' (2001) single integral.

    ``C = S - sqrt(S K) / pi * int_0^inf Re[exp(i u k) phi(u - i/2)] / (u^2 + 1/4) du`` with
    ``k = log(S / K)`` and phi the characteristic function of ``log(S_T / S)``, written in the
    form of Albrecher et al. (2007) that has no branch-cut discontinuity.
    """

    def phi(u: complex) -> complex:
        b = kappa - rho * xi * 1j * u
        d = np.sqrt(b * b + xi**2 * (1j * u + u * u))
        g = (b - d) / (b + d)
        decay = np.exp(-d * t)
        c = kappa * theta / xi**2 * ((b - d) * t - 2.0 * np.log((1.0 - g * decay) / (1.0 - g)))
        dv = (b - d) / xi**2 * (1.0 - decay) / (1.0 - g * decay)
        return np.exp(c + dv * v0)

    k = math.log(spot / strike)

    def integrand(u: float) -> float:
        return (np.exp(1j * u * k) * phi(u - 0.5j)).real / (u * u + 0.25)

    integral, _ = quad(integrand, 0.0, np.inf, limit=2000, epsabs=1e-11, epsrel=1e-11)
    return spot - math.sqrt(spot * strike) / math.pi * integral


# ---------------------------------------------------------------------------------------------
# GBM


def test_gbm_shape_dtype_and_exact_start():
    paths = gbm_paths(7, 5, 1.0, [100.0, 50.0], 0.05, 0.2)
    assert paths.shape == (7, 6, 2)
    assert paths.dtype == torch.float32
    assert paths.device.type == "cpu"
    assert torch.equal(paths[:, 0], torch.tensor([100.0, 50.0]).expand(7, 2))
    paths64 = gbm_paths(7, 5, 1.0, 100.0, 0.05, 0.2, dtype=F64)
    assert paths64.dtype == F64 and paths64.shape == (7, 6, 1)
    assert torch.isfinite(paths64).all()


def test_gbm_terminal_moments_match_lognormal_law():
    spot = np.array([100.0, 50.0, 10.0])
    mu = np.array([0.05, -0.02, 0.10])
    sigma = np.array([0.2, 0.4, 0.1])
    t = 2.0
    paths = gbm_paths(100_000, 8, t, spot, mu, sigma, seed=11, dtype=F64)
    for i in range(3):
        s_t = paths[:, -1, i]
        assert_mean(s_t, spot[i] * math.exp(mu[i] * t), 4)
        log_t = torch.log(s_t)
        assert_mean(log_t, math.log(spot[i]) + (mu[i] - 0.5 * sigma[i] ** 2) * t, 4)
        # Var[log S_T] = sigma^2 T; a normal sample variance has SE sigma^2 T sqrt(2 / (n - 1)).
        var = log_t.var().item()
        target = sigma[i] ** 2 * t
        assert abs(var - target) <= 4 * target * math.sqrt(2 / (log_t.numel() - 1))


CORR3 = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])


@pytest.mark.parametrize(
    ("correlation", "expected"),
    [
        (CORR3, CORR3),
        (0.5, np.array([[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]])),
        (None, np.eye(3)),
    ],
)
def test_gbm_log_increments_have_the_configured_correlation(correlation, expected):
    paths = gbm_paths(20_000, 10, 1.0, 1.0, 0.0, [0.1, 0.3, 0.2], correlation, seed=3, dtype=F64)
    increments = torch.diff(torch.log(paths), dim=1).reshape(-1, 3).numpy()
    sample = np.corrcoef(increments, rowvar=False)
    # The sample correlation of n normal pairs has SE (1 - rho^2) / sqrt(n).
    se = (1.0 - expected**2) / math.sqrt(increments.shape[0])
    off = ~np.eye(3, dtype=bool)
    assert (np.abs(sample - expected)[off] <= 4 * se[off]).all(), sample


def test_gbm_correlation_matrix_alone_sets_the_number_of_assets():
    paths = gbm_paths(4, 3, 1.0, 100.0, 0.0, 0.2, CORR3)
    assert paths.shape == (4, 4, 3)


def test_gbm_perfect_correlation_uses_a_semidefinite_root():
    # Cholesky fails on this singular matrix; identical volatilities then give identical paths.
    paths = gbm_paths(50, 4, 1.0, 100.0, 0.03, 0.2, 1.0, seed=5, dtype=F64)
    assert paths.shape == (50, 5, 1)
    paths2 = gbm_paths(50, 4, 1.0, [100.0, 100.0], 0.03, 0.2, 1.0, seed=5, dtype=F64)
    torch.testing.assert_close(paths2[..., 0], paths2[..., 1], rtol=1e-12, atol=0.0)


def test_gbm_antithetic_pairs_mirror_their_shocks():
    mu, sigma, n_steps, t = 0.04, 0.3, 6, 1.5
    paths = gbm_paths(10, n_steps, t, 100.0, mu, sigma, seed=2, dtype=F64, antithetic=True)
    times = torch.linspace(0.0, t, n_steps + 1, dtype=F64)
    # Centred log price sigma W_t: path i + N/2 carries -W of path i.
    centred = torch.log(paths[..., 0] / 100.0) - (mu - 0.5 * sigma**2) * times
    torch.testing.assert_close(centred[:5], -centred[5:], rtol=0.0, atol=1e-12)
    assert not torch.allclose(centred[:5], torch.zeros_like(centred[:5]))


def test_gbm_same_seed_same_paths_and_generators_advance():
    args = (64, 5, 1.0, 100.0, 0.05, 0.2)
    a = gbm_paths(*args, seed=7)
    assert torch.equal(a, gbm_paths(*args, seed=7))
    assert not torch.equal(a, gbm_paths(*args, seed=8))
    gen = torch.Generator().manual_seed(7)
    assert torch.equal(a, gbm_paths(*args, seed=gen))
    # A generator's state moves on, so a second call gives fresh paths.
    assert not torch.equal(a, gbm_paths(*args, seed=gen))


def test_gbm_discounted_call_matches_black_scholes():
    spot, strike, t, rate, vol = 100.0, 110.0, 0.5, 0.03, 0.25
    paths = gbm_paths(200_000, 1, t, spot, rate, vol, seed=17, dtype=F64)
    discounted = math.exp(-rate * t) * (paths[:, -1, 0] - strike).clamp(min=0.0)
    assert_mean(discounted, black_scholes_call(spot, strike, t, rate, vol), 3)


def test_gbm_pathwise_delta_flows_through_spot():
    spot = torch.tensor(100.0, dtype=F64, requires_grad=True)
    paths = gbm_paths(50_000, 4, 1.0, spot, 0.05, 0.2, seed=4, dtype=F64)
    paths[:, -1, 0].mean().backward()
    # S_T is linear in S_0, so dE[S_T]/dS_0 = E[S_T / S_0] = exp(mu T).
    ratio = paths[:, -1, 0].detach() / 100.0
    torch.testing.assert_close(spot.grad, ratio.mean())
    assert_mean(ratio, math.exp(0.05), 4)


# ---------------------------------------------------------------------------------------------
# Heston

# Feller's condition 2 kappa theta >= xi^2 fails badly (0.08 < 4): the variance hits zero.
FELLER_VIOLATING = {"v0": 0.04, "kappa": 1.0, "theta": 0.04, "xi": 2.0}
SCHEMES = ["qe", "full_truncation"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_heston_variance_never_negative_without_feller(scheme):
    spot, var = heston_paths(
        20_000, 50, 1.0, 100.0, **FELLER_VIOLATING, rho=-0.7, seed=1, scheme=scheme
    )
    assert spot.shape == var.shape == (20_000, 51)
    assert spot.dtype == var.dtype == torch.float32
    assert torch.isfinite(spot).all() and torch.isfinite(var).all()
    assert (var >= 0).all()
    assert (spot > 0).all()
    # The test has teeth only if the variance really reaches zero somewhere.
    assert (var[:, 1:] == 0).float().mean() > 0.01


def test_heston_qe_variance_mean_is_exact_at_coarse_steps():
    # QE matches the CIR transition's conditional mean exactly, so by the tower property
    # E[v_T] = theta + (v0 - theta) exp(-kappa T) holds at any step size.
    v0, kappa, theta, t = 0.09, 1.0, 0.04, 1.0
    _, var = heston_paths(
        100_000, 10, t, 100.0, v0, kappa, theta, 2.0, -0.7, seed=2, dtype=F64, scheme="qe"
    )
    assert_mean(var[:, -1], theta + (v0 - theta) * math.exp(-kappa * t), 4)


def test_heston_full_truncation_variance_mean():
    # Feller holds here (0.16 > 0.09), so truncation is rare and the scheme's mean follows the
    # Euler recursion E[v_{k+1}] = E[v_k] (1 - kappa dt) + kappa theta dt; its gap to the exact
    # exponential decay is the allowance.
    v0, kappa, theta, xi, t, n_steps = 0.09, 2.0, 0.04, 0.3, 1.0, 100
    _, var = heston_paths(
        100_000,
        n_steps,
        t,
        100.0,
        v0,
        kappa,
        theta,
        xi,
        -0.5,
        seed=3,
        dtype=F64,
        scheme="full_truncation",
    )
    exact = theta + (v0 - theta) * math.exp(-kappa * t)
    euler = theta + (v0 - theta) * (1.0 - kappa * t / n_steps) ** n_steps
    assert_mean(var[:, -1], exact, 4, allowance=abs(euler - exact))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("rho", [-0.7, 0.0])
def test_heston_discounted_spot_is_a_martingale(scheme, rho):
    # QE's martingale-corrected K0 and the full-truncation log-Euler step both make
    # E[S_T] = S_0 exp(drift T) exact for the discretised process, even with 10 steps a year.
    drift, t = 0.03, 1.0
    spot, _ = heston_paths(
        100_000,
        10,
        t,
        100.0,
        **FELLER_VIOLATING,
        rho=rho,
        drift=drift,
        seed=4,
        dtype=F64,
        scheme=scheme,
    )
    assert_mean(spot[:, -1], 100.0 * math.exp(drift * t), 4)


def test_heston_characteristic_function_reference():
    # Pins the reference used below. QuantLib 1.44's AnalyticHestonEngine gives the same
    # 1.69183392511 for these parameters (T = 30 days, Actual/365).
    price = heston_call(100.0, 100.0, 30 / 365, 0.04, 1.0, 0.04, 2.0, -0.7)
    assert price == pytest.approx(1.6918339251, abs=1e-9)
    # Sanity of the integral itself: with v0 = theta, rho = 0 and xi -> 0 Heston tends to
    # Black-Scholes at vol sqrt(theta), with a gap of order xi^2 (1.6e-6 here).
    nearly_bs = heston_call(100.0, 95.0, 0.5, 0.04, 1.0, 0.04, 1e-3, 0.0)
    assert nearly_bs == pytest.approx(black_scholes_call(100.0, 95.0, 0.5, 0.0, 0.2), abs=1e-5)


def test_heston_qe_atm_call_matches_characteristic_function():
    t = 30 / 365
    spot, _ = heston_paths(
        200_000, 30, t, 100.0, **FELLER_VIOLATING, rho=-0.7, seed=5, dtype=F64, scheme="qe"
    )
    reference = heston_call(100.0, 100.0, t, 0.04, 1.0, 0.04, 2.0, -0.7)
    # Discretisation allowance 0.002: 4 million QE paths at 30, 60 and 120 daily-or-finer steps
    # all landed 0.0009-0.0011 (SE 0.0008, same seeds) above the reference, with no trend in
    # the step size, so the bias at 30 steps is below about 0.002 (0.4 SE of this test).
    assert_mean((spot[:, -1] - 100.0).clamp(min=0.0), reference, 3, allowance=0.002)


@pytest.mark.parametrize("steps", [1, 4])
def test_heston_qe_prices_at_coarse_steps_of_a_fast_variance(steps):
    # kappa dt = 20 and 5: one central-weight log step per grid step priced this call 36% and
    # 5% high; the grid's steps are split (ceil(2 kappa dt) sub-steps each)
    kappa, xi, rho = 20.0, 0.5, -0.7
    spot, _ = heston_paths(
        100_000, steps, 1.0, 100.0, 0.04, kappa, 0.04, xi, rho, seed=2, dtype=F64, scheme="qe"
    )
    reference = heston_call(100.0, 100.0, 1.0, 0.04, kappa, 0.04, xi, rho)
    assert_mean((spot[:, -1] - 100.0).clamp(min=0.0), reference, 4)
    assert spot.shape == (100_000, steps + 1)


def test_heston_zero_vol_of_vol_gives_the_deterministic_variance():
    v0, kappa, theta, t, n_steps = 0.09, 1.5, 0.04, 2.0, 8
    spot, var = heston_paths(
        1_000, n_steps, t, 100.0, v0, kappa, theta, 0.0, -0.7, seed=6, dtype=F64
    )
    times = torch.linspace(0.0, t, n_steps + 1, dtype=F64)
    expected = theta + (v0 - theta) * torch.exp(-kappa * times)
    torch.testing.assert_close(var, expected.expand(1_000, -1), rtol=1e-12, atol=1e-15)
    assert torch.isfinite(spot).all()


def test_heston_seeding_and_dtype():
    args = (32, 5, 0.5, 100.0, 0.04, 1.0, 0.04, 0.5, -0.5)
    s1, v1 = heston_paths(*args, seed=9)
    s2, v2 = heston_paths(*args, seed=9)
    assert torch.equal(s1, s2) and torch.equal(v1, v2)
    assert not torch.equal(s1, heston_paths(*args, seed=10)[0])
    s64, v64 = heston_paths(*args, seed=9, dtype=F64)
    assert s64.dtype == v64.dtype == F64
    assert torch.equal(s64[:, 0], torch.full((32,), 100.0, dtype=F64))
    assert torch.equal(v64[:, 0], torch.full((32,), 0.04, dtype=F64))


@pytest.mark.parametrize(
    ("kappa", "theta", "xi", "exponential"),
    [(0.5, 0.1, 0.5, False), (0.5, 0.04, 1.0, True)],
    ids=["quadratic", "exponential"],
)
def test_heston_qe_one_year_step_with_strong_leverage_is_a_martingale(
    kappa, theta, xi, exponential
):
    # A single step of a year with rho = -0.9 is where the martingale correction of K0 carries
    # the most weight (kappa dt = 0.5, the longest step taken whole). From v0 = 0.2, psi =
    # s^2 / m^2 is 1.07 (quadratic sampler) and 5.4 (exponential sampler). Without the
    # correction (K0 = -rho kappa theta dt / xi) E[S_1] misses by about 18 and 32 SE on these
    # paths; with it, by under 1.5 SE.
    drift = 0.05
    spot, var = heston_paths(
        1_000_000, 1, 1.0, 100.0, 0.2, kappa, theta, xi, -0.9, drift=drift, seed=1, dtype=F64
    )
    # The exponential sampler puts mass at exactly zero; the quadratic one never does.
    assert bool((var[:, 1] == 0).any()) == exponential
    assert_mean(spot[:, 1], 100.0 * math.exp(drift), 4)


@pytest.mark.parametrize("xi", [1e-9, 1e-12])
def test_heston_qe_tiny_vol_of_vol_in_float32_is_close_to_none(xi):
    # Andersen's constants hold rho / xi; evaluated as printed, their terms cancel in float32
    # (prices 25% off at xi = 1e-7) and his b^2 ~ 4 / psi overflows to NaN by xi = 1e-9. The
    # limit xi -> 0 is the deterministic variance of xi = 0 (here constant, v0 = theta).
    args = (50_000, 30, 30 / 365, 100.0, 0.04, 1.0, 0.04)
    spot_0, var_0 = heston_paths(*args, 0.0, 0.0, seed=7)
    # rho = 0: the same price shocks drive both, so the paths agree one by one.
    spot, var = heston_paths(*args, xi, 0.0, seed=7)
    assert torch.isfinite(spot).all() and torch.isfinite(var).all()
    torch.testing.assert_close(var, var_0, rtol=1e-6, atol=0.0)
    torch.testing.assert_close(spot, spot_0, rtol=1e-6, atol=0.0)
    # rho = -0.7: the price shock then mixes in the variance's normal, so compare laws: the
    # variance path still agrees, S stays a martingale and log S_T has variance int v dt.
    spot, var = heston_paths(*args, xi, -0.7, seed=7)
    assert torch.isfinite(spot).all() and torch.isfinite(var).all()
    torch.testing.assert_close(var, var_0, rtol=1e-6, atol=0.0)
    assert_mean(spot[:, -1], 100.0, 4)
    assert_variance(torch.log(spot[:, -1]), 0.04 * 30 / 365, 4)


# ---------------------------------------------------------------------------------------------
# Merton

MERTON = {"drift": 0.05, "volatility": 0.2, "jump_mean": -0.1, "jump_std": 0.15}


def test_merton_compensated_mean_and_log_moments():
    lam, t = 1.0, 1.0
    paths = merton_paths(200_000, 10, t, 100.0, **MERTON, jump_intensity=lam, seed=7, dtype=F64)
    assert paths.shape == (200_000, 11)
    assert_mean(paths[:, -1], 100.0 * math.exp(MERTON["drift"] * t), 4)
    m, s, sigma = MERTON["jump_mean"], MERTON["jump_std"], MERTON["volatility"]
    k = math.exp(m + 0.5 * s**2) - 1.0
    log_t = torch.log(paths[:, -1] / 100.0)
    # log S_T / S_0 = (mu - lambda k - sigma^2/2) T + sigma W_T + compound Poisson sum of
    # N(m, s^2) jumps, whose mean is lambda T m and variance lambda T (m^2 + s^2).
    assert_mean(log_t, (MERTON["drift"] - lam * k - 0.5 * sigma**2) * t + lam * t * m, 4)
    assert_variance(log_t, sigma**2 * t + lam * t * (m**2 + s**2), 4)


def test_merton_without_jumps_is_gbm_in_distribution():
    t, n = 1.0, 100_000
    merton = merton_paths(n, 5, t, 100.0, **MERTON, jump_intensity=0.0, seed=8, dtype=F64)
    gbm = gbm_paths(n, 5, t, 100.0, MERTON["drift"], MERTON["volatility"], seed=9, dtype=F64)
    for a, b in (
        (merton[:, -1], gbm[:, -1, 0]),
        (torch.log(merton[:, -1]), torch.log(gbm[:, -1, 0])),
    ):
        # Two independent samples: the difference of means has SE sqrt(se_a^2 + se_b^2).
        se = math.sqrt((a.var() + b.var()).item() / n)
        assert abs((a.mean() - b.mean()).item()) <= 4 * se
    log_m, log_g = torch.log(merton[:, -1]), torch.log(gbm[:, -1, 0])
    target = MERTON["volatility"] ** 2 * t
    assert_variance(log_m, target, 4)
    assert_variance(log_g, target, 4)


def test_merton_seeding():
    args = (16, 4, 1.0, 100.0, 0.05, 0.2, 3.0, -0.1, 0.1)
    assert torch.equal(merton_paths(*args, seed=1), merton_paths(*args, seed=1))
    assert not torch.equal(merton_paths(*args, seed=1), merton_paths(*args, seed=2))
    assert merton_paths(*args, seed=1, dtype=F64).dtype == F64


@pytest.mark.parametrize(("jump_mean", "jump_std"), [(0.0, 50.0), (800.0, 0.1)])
def test_merton_jumps_too_large_for_float64_name_both_parameters(jump_mean, jump_std):
    # exp(jump_mean + jump_std^2 / 2), the mean jump factor in the compensator, would overflow.
    with pytest.raises(ConfigError) as caught:
        merton_paths(4, 2, 1.0, 100.0, 0.0, 0.2, 1.0, jump_mean, jump_std)
    message = str(caught.value)
    assert message.startswith("merton_paths: ")
    assert f"jump_mean={jump_mean!r}" in message and f"jump_std={jump_std!r}" in message


# ---------------------------------------------------------------------------------------------
# Bootstrap


def test_bootstrap_steps_are_input_rows():
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0, 0.02, size=(40, 3))
    paths = bootstrap_paths(returns, 300, 25, seed=1, dtype=F64, spot=[1.0, 2.0, 5.0])
    assert paths.shape == (300, 26, 3)
    torch.testing.assert_close(paths[:, 0], torch.tensor([1.0, 2.0, 5.0], dtype=F64).expand(300, 3))
    steps = (paths[:, 1:] / paths[:, :-1] - 1.0).reshape(-1, 3).numpy()
    # Distance from every simulated step to its nearest input row: zero up to rounding.
    gaps = np.abs(steps[:, None, :] - returns[None, :, :]).max(axis=2).min(axis=1)
    assert gaps.max() < 1e-12
    # Each whole row is drawn (assets stay together) and every row gets drawn.
    assert len(np.unique(np.abs(steps[:, None, :] - returns[None]).max(axis=2).argmin(1))) == 40


def test_bootstrap_blocks_are_consecutive_rows():
    n_dates, block, n_steps = 30, 5, 23
    returns = (np.arange(n_dates) / 1000.0)[:, None]  # row i returns i / 1000: its own label
    paths = bootstrap_paths(returns, 200, n_steps, block=block, seed=2, dtype=F64)
    rows = np.rint((paths[:, 1:, 0] / paths[:, :-1, 0] - 1.0).numpy() * 1000).astype(int)
    starts = rows[:, ::block]
    assert starts.min() >= 0 and starts.max() <= n_dates - block
    for j in range(n_steps):
        np.testing.assert_array_equal(rows[:, j], starts[:, j // block] + j % block)
    # Across block boundaries the rows are fresh draws, not a continuation.
    assert (rows[:, block] != rows[:, block - 1] + 1).mean() > 0.5


def test_bootstrap_from_a_panel_uses_its_returns():
    prices = pd.DataFrame(
        {"A": [10.0, 11.0, 9.9, 10.89, 11.0], "B": [5.0, 5.5, 5.5, 4.95, 5.0]},
        index=pd.bdate_range("2020-01-01", periods=5),
    )
    panel = Panel(prices)
    from_panel = bootstrap_paths(panel, 50, 6, block=2, seed=5, dtype=F64)
    from_array = bootstrap_paths(panel.returns[1:], 50, 6, block=2, seed=5, dtype=F64)
    torch.testing.assert_close(from_panel, from_array)
    steps = (from_panel[:, 1:] / from_panel[:, :-1] - 1.0).reshape(-1, 2).numpy()
    expected = prices.pct_change().to_numpy()[1:]
    assert np.abs(steps[:, None, :] - expected[None]).max(axis=2).min(axis=1).max() < 1e-12


def test_bootstrap_rejects_nan_rows():
    returns = np.zeros((10, 2))
    returns[7, 1] = np.nan
    with pytest.raises(ConfigError, match=r"returns.*NaN.*rows 7"):
        bootstrap_paths(returns, 5, 3)


def test_bootstrap_one_dimensional_returns_and_seeding():
    returns = np.linspace(-0.02, 0.02, 9)
    a = bootstrap_paths(returns, 8, 4, block=2, seed=3)
    assert a.shape == (8, 5, 1) and a.dtype == torch.float32
    assert torch.equal(a, bootstrap_paths(returns, 8, 4, block=2, seed=3))
    assert not torch.equal(a, bootstrap_paths(returns, 8, 4, block=2, seed=4))


# ---------------------------------------------------------------------------------------------
# Bad inputs: every error names the argument (and the offending value).

GBM = {"n_paths": 4, "n_steps": 2, "maturity": 1.0, "spot": 100.0, "drift": 0.0, "volatility": 0.2}
HESTON = {
    "n_paths": 4,
    "n_steps": 2,
    "maturity": 1.0,
    "spot": 100.0,
    "v0": 0.04,
    "kappa": 1.0,
    "theta": 0.04,
    "xi": 0.5,
    "rho": -0.5,
}
MERTON_ARGS = {
    "n_paths": 4,
    "n_steps": 2,
    "maturity": 1.0,
    "spot": 100.0,
    "drift": 0.0,
    "volatility": 0.2,
    "jump_intensity": 1.0,
    "jump_mean": 0.0,
    "jump_std": 0.1,
}
NOT_PSD = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])


@pytest.mark.parametrize(
    ("func", "base", "bad", "name"),
    [
        (gbm_paths, GBM, {"n_paths": 0}, "n_paths=0"),
        (gbm_paths, GBM, {"n_steps": 1.5}, "n_steps=1.5"),
        (gbm_paths, GBM, {"maturity": 0.0}, "maturity=0.0"),
        (gbm_paths, GBM, {"spot": -1.0}, "spot=-1.0"),
        (gbm_paths, GBM, {"volatility": -0.2}, "volatility=-0.2"),
        (gbm_paths, GBM, {"volatility": [0.2, float("nan")]}, "volatility=nan"),
        (gbm_paths, GBM, {"drift": [[0.1]]}, "drift has shape"),
        (gbm_paths, GBM, {"spot": [1.0, 2.0], "volatility": [0.1, 0.2, 0.3]}, "volatility"),
        (gbm_paths, GBM, {"spot": [1.0, 2.0], "correlation": 1.2}, "correlation=1.2"),
        (gbm_paths, GBM, {"spot": [1.0, 2.0, 3.0], "correlation": -0.6}, "correlation=-0.6"),
        (gbm_paths, GBM, {"correlation": NOT_PSD}, "correlation is not positive semi-definite"),
        (gbm_paths, GBM, {"correlation": np.array([[1.0, 0.2], [0.3, 1.0]])}, "correlation"),
        (gbm_paths, GBM, {"correlation": np.array([[2.0, 0.0], [0.0, 1.0]])}, "correlation"),
        (gbm_paths, GBM, {"spot": [1.0, 2.0], "correlation": CORR3}, "correlation"),
        (gbm_paths, GBM, {"n_paths": 5, "antithetic": True}, "n_paths=5"),
        (gbm_paths, GBM, {"seed": -1}, "seed=-1"),
        (gbm_paths, GBM, {"dtype": torch.int64}, "dtype=torch.int64"),
        (gbm_paths, GBM, {"device": "nonsense"}, "device='nonsense'"),
        (heston_paths, HESTON, {"xi": -0.1}, "xi=-0.1"),
        (heston_paths, HESTON, {"rho": -1.5}, "rho=-1.5"),
        (heston_paths, HESTON, {"v0": -0.01}, "v0=-0.01"),
        (heston_paths, HESTON, {"kappa": 0.0}, "kappa=0.0"),
        (heston_paths, HESTON, {"theta": 0.0}, "theta=0.0"),
        (heston_paths, HESTON, {"drift": float("inf")}, "drift=inf"),
        (heston_paths, HESTON, {"scheme": "euler"}, "scheme='euler'"),
        (heston_paths, HESTON, {"n_paths": -3}, "n_paths=-3"),
        (merton_paths, MERTON_ARGS, {"jump_intensity": -1.0}, "jump_intensity=-1.0"),
        (merton_paths, MERTON_ARGS, {"jump_std": -0.1}, "jump_std=-0.1"),
        (merton_paths, MERTON_ARGS, {"volatility": -0.2}, "volatility=-0.2"),
        (merton_paths, MERTON_ARGS, {"spot": 0.0}, "spot=0.0"),
        # raw torch errors before: no half kernel, seed overflow, values past float32
        (heston_paths, HESTON, {"dtype": torch.float16}, "dtype=torch.float16"),
        (gbm_paths, GBM, {"seed": 2**64}, "seed=18446744073709551616"),
        (heston_paths, HESTON, {"v0": 1e300}, "v0=1e.300 overflows torch.float32"),
        (heston_paths, HESTON, {"kappa": 1e9}, "would need .* QE sub-steps a step"),
        (merton_paths, MERTON_ARGS, {"jump_intensity": 1e300}, "jump_intensity x the step"),
        # silently accepted before
        (gbm_paths, GBM, {"spot": []}, "spot has shape"),
        (gbm_paths, GBM, {"spot": True}, "spot=True"),
        (gbm_paths, GBM, {"antithetic": "yes"}, "antithetic='yes'"),
    ],
)
def test_bad_inputs_name_the_argument(func, base, bad, name):
    with pytest.raises(ConfigError, match=name.replace("(", r"\(").replace("[", r"\[")):
        func(**{**base, **bad})


@pytest.mark.parametrize(
    ("returns", "kwargs", "name"),
    [
        (np.zeros((5, 2)), {"block": 6}, "block=6"),
        (np.zeros((5, 2)), {"block": 0}, "block=0"),
        (np.zeros((5, 2)), {"n_steps": 0}, "n_steps=0"),
        (np.full((5, 2), -1.5), {}, r"returns\[0, 0\]=-1.5"),
        (np.zeros((5, 2, 2)), {}, "returns has shape"),
        (np.zeros((5, 2)), {"spot": [1.0, 2.0, 3.0]}, "spot"),
        (np.zeros((5, 2)), {"spot": -1.0}, "spot=-1.0"),
    ],
)
def test_bootstrap_bad_inputs_name_the_argument(returns, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        bootstrap_paths(returns, **{"n_paths": 3, "n_steps": 4, **kwargs})


def test_bootstrap_names_the_dates_of_a_panels_missing_returns():
    # the rows counted from the first return were one off the panel's own dates
    prices = pd.DataFrame(
        {"a": [1.0, 1.1, 1.2, 1.3, 1.4], "b": [np.nan, np.nan, 2.0, 2.1, 2.2]},
        index=pd.bdate_range("2020-01-01", periods=5),
    )
    with pytest.raises(ConfigError, match="returns to the dates 2020-01-02, 2020-01-03"):
        bootstrap_paths(Panel(prices), n_paths=3, n_steps=2)


def _nudged(i: int, j: int, by: float) -> np.ndarray:
    """The 3 x 3 correlation matrix with 0.3 off the diagonal, entry (i, j) moved by `by`."""
    matrix = np.full((3, 3), 0.3) + 0.7 * np.eye(3)
    matrix[i, j] += by
    return matrix


CORRELATION_OWNERS = {
    "gbm_paths": lambda c: gbm_paths(4, 1, 1.0, [100.0] * 3, 0.0, 0.2, c),
    "correlated_gbm": lambda c: correlated_gbm(3, 5, correlation=c, seed=0),
    "geometric_basket_price": lambda c: geometric_basket_price(
        [100.0] * 3, 100.0, 1.0, 0.0, 0.2, c
    ),
}


@pytest.mark.parametrize(
    ("correlation", "valid"),
    [
        (np.ones((3, 3)), True),  # semi-definite: perfectly correlated assets
        (_nudged(0, 1, 5e-11), True),  # rounding-size asymmetry
        (_nudged(0, 1, 1e-8), False),
        (_nudged(2, 2, 5e-11), True),
        (_nudged(2, 2, 1e-8), False),
        (np.full((3, 3), -0.5 - 1e-12) + (1.5 + 1e-12) * np.eye(3), True),  # eigenvalue -3e-12
        (NOT_PSD, False),
    ],
    ids=["ones", "asym-5e-11", "asym-1e-8", "diag-5e-11", "diag-1e-8", "eig-3e-12", "not-psd"],
)
def test_every_owner_checks_correlation_matrices_alike(correlation, valid):
    # Paths, panels and closed-form prices share one check with one tolerance (1e-10); each
    # error still starts with the function the user called.
    for owner, build in CORRELATION_OWNERS.items():
        if valid:
            build(correlation)
        else:
            with pytest.raises(ConfigError, match=f"^{owner}: correlation"):
                build(correlation)


@pytest.mark.parametrize(
    ("func", "base", "bad", "named"),
    [
        (gbm_paths, GBM, {"drift": 200.0}, "drift=200, volatility=0.2, maturity=1"),
        (gbm_paths, GBM, {"drift": -200.0}, "drift=-200, volatility=0.2, maturity=1"),
        (gbm_paths, GBM, {"drift": [0.0, 200.0]}, "drift=[0, 200]"),
        (heston_paths, HESTON, {"drift": 200.0}, "drift=200, v0=0.04, theta=0.04, xi=0.5"),
        (merton_paths, MERTON_ARGS, {"drift": 200.0}, "drift=200, volatility=0.2"),
        (merton_paths, MERTON_ARGS, {"drift": -200.0}, "drift=-200, volatility=0.2"),
    ],
)
def test_paths_beyond_the_dtype_are_a_config_error_naming_the_parameters(func, base, bad, named):
    # Every parameter is in range, but drift * maturity = 200 puts exp(200) past float32's
    # largest number (and exp(-200) below its smallest): the paths would hold inf or 0.
    with pytest.raises(ConfigError) as caught:
        func(**{**base, **bad})
    message = str(caught.value)
    assert message.startswith(f"{func.__name__}: with {named}")
    assert "dtype=torch.float32" in message and "use dtype=torch.float64" in message
    # float64 holds them: the same parameters are fine there.
    paths = func(**{**base, **bad}, dtype=F64)
    paths = paths[0] if isinstance(paths, tuple) else paths
    assert bool(torch.isfinite(paths).all()) and bool((paths > 0).all())


def test_gbm_beyond_float64_suggests_smaller_parameters_only():
    with pytest.raises(ConfigError, match=r"drift=1e\+06.*dtype=torch.float64") as caught:
        gbm_paths(**{**GBM, "drift": 1e6}, dtype=F64)
    assert str(caught.value).endswith(
        "use a drift nearer 0, a smaller volatility or a shorter maturity"
    )


def test_bootstrap_overflow_names_the_returns_and_steps():
    # Each return is finite, but compounding them overflows float32; a return of -1 (a price of
    # 0) is allowed.
    with pytest.raises(
        ConfigError, match=r"^bootstrap_paths: with max\(returns\)=1e\+10, n_steps=5"
    ):
        bootstrap_paths(np.full(10, 1e10), 4, 5)
    assert bool(torch.isfinite(bootstrap_paths(np.full(10, 1e10), 4, 5, dtype=F64)).all())
    assert bool((bootstrap_paths(np.full(10, -1.0), 4, 5)[:, 1:] == 0).all())
