"""Synthetic markets: reproducibility and statistical agreement with closed forms.

Tolerances are 5 standard errors of the estimator under the model (derived in each test), on
fixed seeds, so a correct generator fails with negligible probability and a wrong one (missing
Ito term, wrong correlation, wrong GARCH recursion) fails by many standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kabuto.sim as ks
from kabuto.data import Panel
from kabuto.errors import ConfigError
from kabuto.sim import correlated_gbm, garch_panel

DT = 1.0 / 252


def log_returns(panel: Panel) -> np.ndarray:
    return np.diff(np.log(panel.prices), axis=0)


def lag1_autocorr(x: np.ndarray) -> np.ndarray:
    """Lag-1 sample autocorrelation of each column."""
    d = x - x.mean(axis=0)
    return (d[1:] * d[:-1]).sum(axis=0) / (d * d).sum(axis=0)


CORR4 = np.array(
    [
        [1.0, 0.6, -0.3, 0.0],
        [0.6, 1.0, 0.0, 0.2],
        [-0.3, 0.0, 1.0, 0.5],
        [0.0, 0.2, 0.5, 1.0],
    ]
)


# ---------------------------------------------------------------------------------------------
# reproducibility and shape


@pytest.mark.parametrize("make", [correlated_gbm, garch_panel])
def test_same_seed_same_panel_different_seed_different(make):
    a, b, c = make(5, 300, seed=7), make(5, 300, seed=7), make(5, 300, seed=8)
    np.testing.assert_array_equal(a.prices, b.prices)
    assert a.source == b.source
    assert not np.allclose(a.prices[1:], c.prices[1:])
    assert "seed=7" in a.source and "seed=8" in c.source


@pytest.mark.parametrize("make", [correlated_gbm, garch_panel])
def test_generator_seed_is_used(make):
    a = make(3, 50, seed=np.random.default_rng(11))
    b = make(3, 50, seed=np.random.default_rng(11))
    np.testing.assert_array_equal(a.prices, b.prices)
    assert "Generator" in a.source


@pytest.mark.parametrize("make", [correlated_gbm, garch_panel])
def test_seed_none_is_recorded_and_reproduces(make):
    first = make(3, 40)
    seed = int(first.source.split("seed=")[1].rstrip(")"))
    again = make(3, 40, seed=seed)
    np.testing.assert_array_equal(first.prices, again.prices)


def test_panel_layout_dates_and_source():
    panel = correlated_gbm(3, 10, mu=0.07, sigma=0.25, seed=1, start="2021-01-01", s0=50.0)
    assert isinstance(panel, Panel)
    assert (panel.n_dates, panel.n_assets) == (10, 3)
    # 2021-01-01 is a Friday; ten business days skip the weekend.
    assert panel.dates[0] == pd.Timestamp("2021-01-01")
    assert panel.dates[-1] == pd.Timestamp("2021-01-14")
    assert (panel.dates.day_of_week < 5).all()
    np.testing.assert_array_equal(panel.prices[0], [50.0, 50.0, 50.0])
    assert panel.assets == ("asset_000", "asset_001", "asset_002")
    for part in ("correlated_gbm", "mu=0.07", "sigma=0.25", "correlation=0.3", "seed=1"):
        assert part in panel.source
    g = garch_panel(2, 10, alpha=0.1, beta=0.85, seed=4)
    for part in ("garch_panel", "alpha=0.1", "beta=0.85", "seed=4"):
        assert part in g.source


def test_gbm_without_volatility_is_the_deterministic_exponential():
    mu = np.array([0.05, -0.1])
    panel = correlated_gbm(2, 253, mu=mu, sigma=0.0, seed=0, s0=np.array([100.0, 20.0]))
    t = np.arange(253)[:, None] * DT
    np.testing.assert_allclose(panel.prices, np.array([100.0, 20.0]) * np.exp(mu * t), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# GBM moments


@pytest.fixture(scope="module")
def gbm_big():
    mu = np.array([0.5, -0.3, 0.0, 0.1])
    sigma = np.array([0.1, 0.3, 0.8, 0.05])
    panel = correlated_gbm(4, 200_001, mu=mu, sigma=sigma, correlation=CORR4, seed=123)
    return mu, sigma, log_returns(panel)


def test_gbm_log_return_mean_includes_ito_correction(gbm_big):
    mu, sigma, r = gbm_big
    n = r.shape[0]
    se = sigma * np.sqrt(DT) / np.sqrt(n)
    expected = (mu - 0.5 * sigma**2) * DT
    assert (np.abs(r.mean(axis=0) - expected) < 5 * se).all()
    # The high-volatility asset separates exact log-normal steps from a drift without the
    # -sigma^2/2 term by more than 10 standard errors.
    assert abs(r[:, 2].mean() - mu[2] * DT) > 10 * se[2]


def test_gbm_log_return_volatility(gbm_big):
    _, sigma, r = gbm_big
    n = r.shape[0]
    target = sigma * np.sqrt(DT)
    se = target / np.sqrt(2 * n)  # standard error of a normal sample's std
    assert (np.abs(r.std(axis=0, ddof=1) - target) < 5 * se).all()


def test_gbm_correlation_matrix(gbm_big):
    _, _, r = gbm_big
    n = r.shape[0]
    sample = np.corrcoef(r, rowvar=False)
    se = (1 - CORR4**2) / np.sqrt(n) + 1e-12  # large-sample SE of a Pearson correlation
    assert (np.abs(sample - CORR4) < 5 * se).all()


@pytest.mark.parametrize("rho", [0.3, -0.2, 0.9])
def test_gbm_constant_correlation(rho):
    n_assets, n = 5, 50_000
    r = log_returns(correlated_gbm(n_assets, n + 1, correlation=rho, seed=5))
    off = np.corrcoef(r, rowvar=False)[~np.eye(n_assets, dtype=bool)]
    assert (np.abs(off - rho) < 5 * (1 - rho**2) / np.sqrt(n)).all()


def test_gbm_perfect_correlation_gives_identical_shocks():
    r = log_returns(correlated_gbm(3, 500, correlation=1.0, seed=2))
    np.testing.assert_allclose(r[:, 1], r[:, 0], atol=1e-12)
    np.testing.assert_allclose(r[:, 2], r[:, 0], atol=1e-12)


def test_semidefinite_correlation_matrix_is_accepted():
    corr = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    r = log_returns(correlated_gbm(3, 2000, correlation=corr, seed=3))
    np.testing.assert_allclose(r[:, 1], r[:, 0], atol=1e-12)
    assert abs(np.corrcoef(r[:, 0], r[:, 2])[0, 1]) < 5 / np.sqrt(len(r))


def test_gbm_squared_returns_have_no_autocorrelation():
    n_assets, n = 50, 20_000
    r = log_returns(correlated_gbm(n_assets, n + 1, correlation=0.0, seed=9))
    # Independent assets: the mean of N lag-1 autocorrelations has SE 1/sqrt(N n).
    assert abs(lag1_autocorr(r**2).mean()) < 5 / np.sqrt(n_assets * n)


# ---------------------------------------------------------------------------------------------
# GARCH(1,1) against closed forms (Gaussian innovations)


def garch_closed_forms(alpha: float, beta: float) -> tuple[float, float, float]:
    """Kurtosis of eps, lag-1 autocorrelation of eps^2, and the long-run variance factor
    1 + 2 sum_k rho_k of eps^2 (rho_k = rho_1 (alpha + beta)^(k-1)); Bollerslev (1986), He and
    Terasvirta (1999)."""
    p = alpha + beta
    kurt = 3 * (1 - p**2) / (1 - p**2 - 2 * alpha**2)
    rho1 = alpha * (1 - alpha * beta - beta**2) / (1 - 2 * alpha * beta - beta**2)
    return kurt, rho1, 1 + 2 * rho1 / (1 - p)


@pytest.mark.parametrize(
    ("omega", "alpha", "beta", "uncond"),
    [
        (None, 0.08, 0.9, 0.2**2 / 252),  # default omega: 20% annual volatility
        (1e-5, 0.15, 0.6, 1e-5 / 0.25),
    ],
)
def test_garch_unconditional_variance(omega, alpha, beta, uncond):
    n_assets, n = 200, 5000
    panel = garch_panel(
        n_assets, n + 1, omega=omega, alpha=alpha, beta=beta, correlation=0.0, seed=21
    )
    r = log_returns(panel)
    kurt, _, longrun = garch_closed_forms(alpha, beta)
    # mean(r^2) over N independent assets x n days: Var(eps^2) = (kurt - 1) sigma^4, inflated by
    # the autocorrelation of eps^2.
    rel_se = np.sqrt((kurt - 1) * longrun / (n_assets * n))
    assert abs((r**2).mean() / uncond - 1) < 5 * rel_se


def test_garch_volatility_clusters_and_tails_are_fat():
    n_assets, n = 200, 5000
    r = log_returns(garch_panel(n_assets, n + 1, correlation=0.0, seed=22))
    _, rho1, _ = garch_closed_forms(0.08, 0.9)
    acf = lag1_autocorr(r**2).mean()
    # Far above what i.i.d. returns show (SE 1/sqrt(N n) ~ 0.001) ...
    assert acf > 20 / np.sqrt(n_assets * n)
    # ... and near the closed form 0.205; sample autocorrelations of squared returns of a
    # persistent GARCH are biased downward in finite samples, hence the asymmetric band.
    assert 0.6 * rho1 < acf < 1.1 * rho1
    d = r - r.mean(axis=0)
    kurtosis = ((d**4).mean(axis=0) / (d**2).mean(axis=0) ** 2).mean()
    assert kurtosis > 3.5  # closed form 4.43; Gaussian 3


def test_garch_follows_its_recursion_with_correlated_gaussian_innovations():
    """Invert the documented recursion: the recovered innovations must be i.i.d. N(0, C)."""
    omega = np.array([2e-6, 5e-6, 1e-5])
    alpha = np.array([0.05, 0.1, 0.2])
    beta = np.array([0.93, 0.85, 0.6])
    mu = np.array([0.5, -0.2, 0.0])
    corr = CORR4[:3, :3]
    n = 50_000
    panel = garch_panel(
        3, n + 1, omega=omega, alpha=alpha, beta=beta, mu=mu, correlation=corr, burn_in=0, seed=8
    )
    eps = log_returns(panel) - mu * DT
    z = np.empty_like(eps)
    h = omega / (1 - alpha - beta)  # burn_in=0: the recursion starts at the unconditional level
    for t in range(n):
        z[t] = eps[t] / np.sqrt(h)
        h = omega + alpha * eps[t] ** 2 + beta * h
    assert (np.abs(z.mean(axis=0)) < 5 / np.sqrt(n)).all()
    assert (np.abs(z.std(axis=0) - 1) < 5 / np.sqrt(2 * n)).all()
    se = (1 - corr**2) / np.sqrt(n) + 1e-12
    assert (np.abs(np.corrcoef(z, rowvar=False) - corr) < 5 * se).all()
    # The recursion explains all volatility clustering: none is left in z^2.
    assert (np.abs(lag1_autocorr(z**2)) < 5 / np.sqrt(n)).all()


# ---------------------------------------------------------------------------------------------
# parameter validation


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"alpha": 0.1, "beta": 0.9}, r"alpha \+ beta = 1 .*alpha=0\.1, beta=0\.9"),
        ({"alpha": 0.3, "beta": 0.8}, r"alpha \+ beta = 1\.1"),
        ({"alpha": -0.1}, r"alpha=-0\.1"),
        ({"beta": np.array([0.9, -0.5, 0.9])}, r"beta=-0\.5 \(asset 1\)"),
        ({"omega": 0.0}, r"omega=0\.0.*> 0"),
        ({"omega": -1e-6}, r"omega=-1e-06"),
        ({"burn_in": -1}, r"burn_in.*-1"),
    ],
)
def test_garch_rejects_bad_parameters(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        garch_panel(3, 20, seed=0, **kwargs)


@pytest.mark.parametrize("make", [correlated_gbm, garch_panel])
@pytest.mark.parametrize(
    ("correlation", "pattern"),
    [
        (-0.6, r"correlation=-0\.6 .*3 assets.*\[-0\.5, 1\]"),
        (1.5, r"correlation=1\.5"),
        (
            np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]),
            r"positive semi-definite",
        ),
        (np.array([[1.0, 0.2, 0.0], [0.1, 1.0, 0.0], [0.0, 0.0, 1.0]]), r"not symmetric"),
        (np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), r"ones on the diagonal"),
        (np.eye(2), r"shape \(3, 3\)"),
    ],
)
def test_bad_correlation_is_rejected(make, correlation, pattern):
    with pytest.raises(ConfigError, match=pattern):
        make(3, 20, correlation=correlation, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"sigma": -0.2}, r"sigma=-0\.2"),
        ({"mu": np.array([0.1, 0.2])}, r"mu must be a number or an array of 3 numbers"),
        ({"s0": 0.0}, r"s0=0\.0"),
        ({"n_days": 1}, r"n_days must be an integer >= 2, got 1"),
        ({"n_assets": 0}, r"n_assets must be an integer >= 1, got 0"),
        ({"start": "not a date"}, r"start='not a date'"),
        ({"seed": -3}, r"seed.*-3"),
    ],
)
def test_gbm_rejects_bad_parameters(kwargs, pattern):
    args = {"n_assets": 3, "n_days": 20, "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=pattern):
        correlated_gbm(**args)


def test_overflowing_parameters_are_reported():
    with pytest.raises(ConfigError, match="float64"):
        correlated_gbm(1, 2000, mu=200.0, sigma=0.0, seed=0)


def test_package_exports():
    assert set(ks.__all__) >= {"correlated_gbm", "garch_panel"}


def test_mean_reverting_prices_follow_their_ar1():
    from kabuto.sim import mean_reverting_prices

    panel = mean_reverting_prices(4, 3000, phi=0.6, sigma=0.01, seed=2)
    x = np.log(panel.prices / 100.0)
    np.testing.assert_allclose(x[0], 0.0, atol=1e-15)
    # regress x_t on x_{t-1}, pooled: the slope is phi, the residual std sigma
    slope = (x[:-1] * x[1:]).sum() / (x[:-1] ** 2).sum()
    assert abs(slope - 0.6) < 0.03
    assert abs((x[1:] - 0.6 * x[:-1]).std() - 0.01) < 5e-4
    # phi = 1: a random walk, same seed, same shocks
    walk = np.log(mean_reverting_prices(4, 3000, phi=1.0, sigma=0.01, seed=2).prices / 100.0)
    increments = np.diff(walk, axis=0)
    np.testing.assert_allclose(increments, x[1:] - 0.6 * x[:-1], atol=1e-12)
    same = mean_reverting_prices(4, 3000, phi=0.6, sigma=0.01, seed=2)
    np.testing.assert_array_equal(same.prices, panel.prices)
    with pytest.raises(ConfigError, match="phi"):
        mean_reverting_prices(4, 100, phi=1.5)
    with pytest.raises(ConfigError, match="sigma"):
        mean_reverting_prices(4, 100, sigma=0.0)


def test_mean_reverting_prices_take_per_asset_s0_like_correlated_gbm():
    from kabuto.sim import mean_reverting_prices

    s0 = np.array([1.0, 2.0, 3.0])
    panel = mean_reverting_prices(3, 50, s0=s0, seed=4)
    flat = mean_reverting_prices(3, 50, s0=1.0, seed=4)
    np.testing.assert_array_equal(panel.prices[0], s0)
    # the same shocks, only the starting level differs
    np.testing.assert_allclose(panel.prices / s0, flat.prices, rtol=1e-14)
    assert "s0=[1.0, 2.0, 3.0]" in panel.source  # small arrays exactly: it can be regenerated
    assert "s0=100.0," in mean_reverting_prices(3, 50, seed=4).source


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"s0": "abc"}, r"mean_reverting_prices: s0 must be a number or an array of 3 numbers"),
        ({"s0": [1.0, 2.0]}, r"mean_reverting_prices: s0 .*one per asset.*\(2,\)"),
        ({"s0": -1.0}, r"mean_reverting_prices: s0=-1\.0 is out of range"),
        ({"s0": [1.0, 0.0, 2.0]}, r"s0=0\.0 \(asset 1\)"),
        ({"phi": True}, r"mean_reverting_prices: phi=True"),
        ({"phi": np.bool_(False)}, r"phi="),
        ({"phi": "0.5"}, r"phi='0\.5'"),
        ({"phi": float("nan")}, r"phi=nan"),
        ({"phi": np.float32(1.5)}, r"phi=.*\[0, 1\]"),
        ({"sigma": float("inf")}, r"sigma=inf must be a finite number > 0"),
        ({"sigma": np.float32(-0.1)}, r"sigma="),
    ],
)
def test_mean_reverting_prices_reject_bad_parameters(kwargs, pattern):
    from kabuto.sim import mean_reverting_prices

    with pytest.raises(ConfigError, match=pattern):
        mean_reverting_prices(3, 20, seed=0, **kwargs)


def test_mean_reverting_prices_accept_numpy_scalars():
    from kabuto.sim import mean_reverting_prices

    plain = mean_reverting_prices(3, 200, phi=0.5, sigma=0.0125, seed=6)
    numpy = mean_reverting_prices(3, 200, phi=np.float32(0.5), sigma=np.float64(0.0125), seed=6)
    np.testing.assert_array_equal(numpy.prices, plain.prices)
    assert numpy.source == plain.source
    walk = mean_reverting_prices(3, 200, phi=np.int64(1), sigma=0.0125, seed=6)
    np.testing.assert_array_equal(
        walk.prices, mean_reverting_prices(3, 200, phi=1.0, sigma=0.0125, seed=6).prices
    )


@pytest.mark.parametrize("make", [correlated_gbm, garch_panel, ks.mean_reverting_prices])
@pytest.mark.parametrize(
    ("sizes", "pattern"),
    [
        ({"n_assets": 0, "n_days": 20}, r"n_assets must be an integer >= 1, got 0"),
        ({"n_assets": 3, "n_days": 1}, r"n_days must be an integer >= 2, got 1"),
        ({"n_assets": True, "n_days": 20}, r"n_assets must be an integer >= 1, got True"),
    ],
)
def test_size_errors_name_the_generator(make, sizes, pattern):
    with pytest.raises(ConfigError, match=f"^{make.__name__}: {pattern}"):
        make(**sizes, seed=0)
