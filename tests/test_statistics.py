"""Sharpe-ratio inference: stationary bootstrap, PSR/DSR, difference tests, leaderboard."""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, signal
from scipy import stats as sps

from kabuto.backtest.result import BacktestResult
from kabuto.errors import ArgumentError, ConfigError, KabutoError
from kabuto.evaluation import (
    LEADERBOARD_COLUMNS,
    METRIC_DEFINITIONS,
    bootstrap_sharpes,
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_from_trials,
    expected_maximum_sharpe,
    jobson_korkie_test,
    leaderboard,
    optimal_block_length,
    probabilistic_sharpe_ratio,
    sharpe,
    sharpe_confidence_interval,
    sharpe_difference_test,
    stationary_bootstrap_indices,
)

from helpers import fake_backtest_result

SQRT252 = math.sqrt(252.0)

# ---------------------------------------------------------------------------------------------
# stationary bootstrap


def test_indices_shape_range_and_seeding() -> None:
    idx = stationary_bootstrap_indices(97, 13, 5.0, 42)
    assert idx.shape == (13, 97)
    assert idx.dtype == np.intp
    assert idx.min() >= 0 and idx.max() < 97
    np.testing.assert_array_equal(idx, stationary_bootstrap_indices(97, 13, 5.0, 42))
    np.testing.assert_array_equal(
        idx, stationary_bootstrap_indices(97, 13, 5.0, np.random.default_rng(42))
    )
    assert not np.array_equal(idx, stationary_bootstrap_indices(97, 13, 5.0, 43))
    with pytest.raises(ValueError, match="mean_block"):
        stationary_bootstrap_indices(10, 5, 0.5, 0)
    with pytest.raises(ValueError, match="n_boot"):
        stationary_bootstrap_indices(10, 0, 2.0, 0)


@pytest.mark.parametrize("mean_block", [1.0, 4.0, 25.0])
def test_block_lengths_are_geometric_with_the_right_mean(mean_block: float) -> None:
    n, n_boot = 20_000, 10
    idx = stationary_bootstrap_indices(n, n_boot, mean_block, 7)
    # A block continues when the next index is the successor (mod n); a fresh start lands on
    # the successor only with probability 1/n, which is negligible here.
    continues = idx[:, 1:] == (idx[:, :-1] + 1) % n
    starts = n_boot + np.count_nonzero(~continues)
    mean_length = idx.size / starts
    assert mean_length == pytest.approx(mean_block, rel=0.05)
    # Continuation probability 1 - 1/mean_block on every day (memoryless).
    assert continues.mean() == pytest.approx(1.0 - 1.0 / mean_block, abs=0.01)
    # Resampled days are uniform over the sample (stationarity).
    counts = np.bincount(idx.ravel() * 10 // n, minlength=10)
    assert counts.min() > 0.9 * idx.size / 10


def test_the_default_block_of_a_very_short_series_is_within_the_cap() -> None:
    # n ** (1/3) is above ceil(n / 3) for n = 2 and 3
    for n in (1, 2, 3):
        assert stationary_bootstrap_indices(n, 10, rng=0).shape == (10, n)


def test_blocks_wrap_around_the_end() -> None:
    idx = stationary_bootstrap_indices(50, 200, 15.0, 3)
    wraps = (idx[:, :-1] == 49) & (idx[:, 1:] == 0)
    assert wraps.any()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stationary_bootstrap_indices(10, 2.0, 2.0, 0), "n_boot"),
        (lambda: stationary_bootstrap_indices(10, True, 2.0, 0), "n_boot"),
        (lambda: stationary_bootstrap_indices(10.5, 2, None, 0), r"\(n\)"),
        (lambda: stationary_bootstrap_indices(10, 2, "3", 0), "mean_block"),
        (lambda: sharpe_confidence_interval(np.zeros(20), n_boot=99.5), "n_boot"),
        (lambda: sharpe_confidence_interval(np.zeros(20), n_boot=10**12), "more than 100,000"),
        (lambda: bootstrap_sharpes(np.zeros(20), n_boot=10), "2-D"),
        (lambda: expected_maximum_sharpe(2.5, 1.0), "n_trials"),
        (lambda: expected_maximum_sharpe(3, "1"), "trial_sharpe_variance"),
        (lambda: sharpe_confidence_interval(np.zeros(20), level=95), "level"),
        # blocks of n days rotate the series: a zero-width interval, a p-value of 1 / (B + 1)
        (
            lambda: sharpe_confidence_interval(np.ones(500), mean_block=5000),
            r"mean_block = 5000 days is more than a third of the 500 returns .* at most 167",
        ),
        (lambda: stationary_bootstrap_indices(50, 2, 18.0, 0), "at most 17"),
    ],
)
def test_counts_and_arguments_are_validated(call, match: str) -> None:
    with pytest.raises(ArgumentError, match=match) as info:
        call()
    assert isinstance(info.value, KabutoError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("seed", ["x", -1, 1.5, True, [1, 2]])
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda seed: sharpe_confidence_interval(np.arange(30.0), n_boot=5, seed=seed), "seed"),
        (lambda seed: bootstrap_sharpes(np.ones((30, 1)), n_boot=5, seed=seed), "seed"),
        (lambda seed: stationary_bootstrap_indices(10, 5, 2.0, rng=seed), "rng"),
        (lambda seed: leaderboard(fake_backtest_result(), n_boot=5, seed=seed), "seed"),
    ],
)
def test_bad_seed_is_an_argument_error_naming_it(call, name: str, seed: object) -> None:
    # numpy's SeedSequence would raise a bare TypeError / ValueError naming neither.
    with pytest.raises(ArgumentError, match=rf"{name} must be a non-negative integer") as info:
        call(seed)
    assert repr(seed) in str(info.value)


@pytest.mark.parametrize("periods", ["x", -1, 0, np.nan, np.inf, True])
def test_bootstrap_periods_must_be_a_positive_number(periods: object) -> None:
    # -1 used to give silent NaN replicates, "x" a numpy TypeError.
    with pytest.raises(ArgumentError, match="periods must be a finite number > 0") as info:
        bootstrap_sharpes(np.arange(60.0).reshape(30, 2), n_boot=5, periods=periods)
    assert repr(periods) in str(info.value)


@pytest.mark.parametrize(
    "data", [np.ones((30, 2), dtype=bool), pd.DataFrame({"d": pd.date_range("2020", periods=30)})]
)
def test_bootstrap_returns_must_be_numeric(data: object) -> None:
    with pytest.raises(ArgumentError, match=r"returns must be numeric \(got dtype"):
        bootstrap_sharpes(data, n_boot=5)


def test_numpy_integer_counts_are_accepted() -> None:
    assert stationary_bootstrap_indices(np.int64(10), np.int32(3), 2.0, 0).shape == (3, 10)
    assert expected_maximum_sharpe(np.int64(10), 1.0) == expected_maximum_sharpe(10, 1.0)


def test_default_mean_block_is_cube_root_rule() -> None:
    a = stationary_bootstrap_indices(1000, 5, None, 1)
    b = stationary_bootstrap_indices(1000, 5, 10.0, 1)
    np.testing.assert_array_equal(a, b)


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=n + 200)
    return signal.lfilter([1.0], [1.0, -phi], e)[200:]


def _politis_white_by_hand(x: list[float]) -> float:
    """The docstring's formula in plain Python: flat-top window, Patton-Politis-White D."""
    n = len(x)
    mean = sum(x) / n
    xc = [v - mean for v in x]
    k_n = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = min(math.ceil(math.sqrt(n)) + k_n, n - 1)
    acov = [sum(xc[i] * xc[i + k] for i in range(n - k)) / n for k in range(m_max + 1)]
    bound = 2 * math.sqrt(math.log10(n) / n)
    small = [abs(acov[k] / acov[0]) < bound for k in range(1, m_max + 1)]
    m_hat = next(m for m in range(m_max - k_n + 1) if all(small[m : m + k_n]))
    big_m = min(2 * m_hat, m_max)

    def flat_top(t: float) -> float:
        return 1.0 if t <= 0.5 else (2 * (1 - t) if t <= 1 else 0.0)

    g_big = 2 * sum(flat_top(k / big_m) * k * acov[k] for k in range(1, big_m + 1))
    g_zero = acov[0] + 2 * sum(flat_top(k / big_m) * acov[k] for k in range(1, big_m + 1))
    b = (2 * g_big**2 / (2 * g_zero**2)) ** (1 / 3) * n ** (1 / 3)
    return min(max(b, 1.0), math.ceil(min(3 * math.sqrt(n), n / 3)))


def test_politis_white_block_length() -> None:
    # The estimator as its docstring writes it, on one series.
    series = _ar1(0.5, 3000, 11)
    assert optimal_block_length(series) == pytest.approx(
        _politis_white_by_hand(series.tolist()), rel=1e-12
    )
    # White noise needs no blocks.
    noise = [optimal_block_length(np.random.default_rng(s).normal(size=2000)) for s in range(5)]
    assert max(noise) <= 3.0
    # AR(1): the optimal stationary-bootstrap block is (2 phi / (1 - phi^2))^(2/3) n^(1/3).
    n, phi = 5000, 0.5
    theory = (2 * phi / (1 - phi**2)) ** (2 / 3) * n ** (1 / 3)
    estimates = [optimal_block_length(_ar1(phi, n, s)) for s in range(8)]
    assert 0.7 * theory < np.mean(estimates) < 1.3 * theory
    # More persistence, longer blocks.
    assert np.mean([optimal_block_length(_ar1(0.8, n, s)) for s in range(4)]) > np.mean(estimates)


# ---------------------------------------------------------------------------------------------
# Sharpe confidence interval


def test_sharpe_ci_is_seeded_and_brackets_the_estimate() -> None:
    r = np.random.default_rng(0).normal(0.0005, 0.01, 750)
    ci = sharpe_confidence_interval(r, n_boot=500, seed=5)
    assert ci == sharpe_confidence_interval(r, n_boot=500, seed=5)
    assert ci != sharpe_confidence_interval(r, n_boot=500, seed=6)
    low, high = ci
    assert low < sharpe(r) < high
    wide = sharpe_confidence_interval(r, n_boot=500, seed=5, level=0.99)
    assert wide[0] < low and wide[1] > high
    # Roughly the normal-theory width 2 * 1.96 * sqrt(252 / T) for a small Sharpe ratio.
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(252 / 750), rel=0.25)


def test_sharpe_ci_coverage_on_iid_normal() -> None:
    rng = np.random.default_rng(2024)
    mu, sigma, n, reps = 0.0008, 0.01, 250, 300
    true_sharpe = mu / sigma * SQRT252
    hits = 0
    for rep in range(reps):
        low, high = sharpe_confidence_interval(rng.normal(mu, sigma, n), n_boot=300, seed=rep)
        hits += low <= true_sharpe <= high
    # Nominal 95%; binomial sd with 300 reps is 1.3 points. Generous band.
    assert 0.89 <= hits / reps <= 0.99


def test_sharpe_ci_coverage_under_autocorrelation_needs_blocks() -> None:
    # AR(1) returns: the iid bootstrap (mean_block=1) ignores the autocorrelation and
    # under-covers; the default Politis-White blocks restore roughly nominal coverage.
    rng = np.random.default_rng(31)
    phi, n, mu, sigma_e, reps = 0.4, 1000, 0.0008, 0.01, 150
    true_sharpe = mu / (sigma_e / math.sqrt(1 - phi**2)) * SQRT252
    hits = {"blocks": 0, "iid": 0}
    for rep in range(reps):
        x = mu + signal.lfilter([1.0], [1.0, -phi], rng.normal(0, sigma_e, n + 200))[200:]
        for key, mean_block in (("blocks", None), ("iid", 1.0)):
            low, high = sharpe_confidence_interval(x, n_boot=300, seed=rep, mean_block=mean_block)
            hits[key] += low <= true_sharpe <= high
    assert hits["blocks"] / reps >= 0.87
    assert hits["iid"] / reps <= 0.86
    assert hits["blocks"] > hits["iid"]


# ---------------------------------------------------------------------------------------------
# probabilistic and deflated Sharpe ratios


def _psr_by_hand(x: list[float], sr_star: float) -> float:
    """PSR from its published formula, with plain Python arithmetic."""
    t = len(x)
    mean = sum(x) / t
    dev = [v - mean for v in x]
    sd = math.sqrt(sum(d * d for d in dev) / (t - 1))
    sr = mean / sd
    m2 = sum(d**2 for d in dev) / t
    skew = (sum(d**3 for d in dev) / t) / m2**1.5
    kurt = (sum(d**4 for d in dev) / t) / m2**2
    z = (sr - sr_star) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_psr_matches_formula_by_hand() -> None:
    x = [0.012, -0.004, 0.007, 0.021, -0.015, 0.003, 0.0, 0.009, -0.002, 0.011, -0.03, 0.014]
    for sr_star in (0.0, 0.1, 0.5):
        assert probabilistic_sharpe_ratio(x, sr_star) == pytest.approx(
            _psr_by_hand(x, sr_star), rel=1e-12
        )


def test_psr_invariants() -> None:
    r = np.random.default_rng(1).normal(0.0006, 0.01, 500)
    daily_sr = r.mean() / r.std(ddof=1)
    assert probabilistic_sharpe_ratio(r, daily_sr) == pytest.approx(0.5, abs=1e-12)
    # More data with the same moments: more confidence that SR > 0.
    psr = [probabilistic_sharpe_ratio(np.tile(r, k), 0.0) for k in (1, 2, 4, 8)]
    assert psr[0] > 0.5
    assert all(a < b for a, b in itertools.pairwise(psr))
    # Negative skew (crash risk) lowers PSR for the same mean and volatility.
    x = np.random.default_rng(2).lognormal(0.0, 0.6, 400)
    x = (x - x.mean()) / x.std() * 0.01 + 0.001  # right-skewed, positive Sharpe
    mirrored = 2 * x.mean() - x  # same mean and std, skew flipped
    assert sps.skew(x) > 0.5
    assert probabilistic_sharpe_ratio(mirrored) < probabilistic_sharpe_ratio(x)
    assert np.isnan(probabilistic_sharpe_ratio(np.full(10, 0.01)))


def test_psr_is_calibrated_under_the_null() -> None:
    # PSR(true SR) is one minus a p-value: above 0.95 about 5% of the time.
    rng = np.random.default_rng(9)
    mu, sigma = 0.0005, 0.01
    psr = np.array(
        [probabilistic_sharpe_ratio(rng.normal(mu, sigma, 500), mu / sigma) for _ in range(400)]
    )
    assert 0.02 <= np.mean(psr > 0.95) <= 0.09
    assert sps.kstest(psr, "uniform").pvalue > 1e-3


def test_psr_benchmark_must_be_a_finite_daily_sharpe() -> None:
    r = np.random.default_rng(6).normal(0.0006, 0.01, 500)
    for bad in (np.nan, np.inf, "0.1", None):
        with pytest.raises(ArgumentError, match="finite daily"):
            probabilistic_sharpe_ratio(r, bad)
    # An annualized target of 1 or -2 passed as daily would give PSR ~ 0 or ~ 1.
    for annualized in (1.0, -2.0):
        with pytest.raises(ArgumentError, match=r"looks annualized.*sqrt\(252\)"):
            probabilistic_sharpe_ratio(r, annualized)
    daily = probabilistic_sharpe_ratio(r, 1.0 / SQRT252)
    assert 0.0 < daily < probabilistic_sharpe_ratio(r, 0.0)
    # DSR: a variance of annualized Sharpe ratios makes SR0 look annualized too.
    with pytest.raises(ArgumentError, match=r"looks annualized.*by 252"):
        deflated_sharpe_ratio(r, n_trials=100, trial_sharpe_variance=0.5)
    assert deflated_sharpe_ratio(r, n_trials=100, trial_sharpe_variance=0.5 / 252) < daily


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_maximum_sharpe_approximates_expected_max_of_normals(n_trials: int) -> None:
    def density(x: float) -> float:
        return x * n_trials * sps.norm.pdf(x) * sps.norm.cdf(x) ** (n_trials - 1)

    exact, _ = integrate.quad(density, -10, 10, limit=200)
    # Bailey & Lopez de Prado's formula, written out here: it overstates the exact expected
    # maximum by a few percent, never understates it (swapped weights understate it)
    gamma = 0.5772156649015329  # Euler-Mascheroni
    published = (1 - gamma) * sps.norm.ppf(1 - 1 / n_trials) + gamma * sps.norm.ppf(
        1 - 1 / (n_trials * np.e)
    )
    assert expected_maximum_sharpe(n_trials, 1.0) == pytest.approx(published, rel=1e-12)
    assert 0 < expected_maximum_sharpe(n_trials, 1.0) / exact - 1 < 0.03
    assert expected_maximum_sharpe(n_trials, 4.0) == pytest.approx(
        2.0 * expected_maximum_sharpe(n_trials, 1.0)
    )
    assert expected_maximum_sharpe(1, 1.0) == 0.0


def test_dsr_bounds_and_monotonicity() -> None:
    r = np.random.default_rng(4).normal(0.0008, 0.01, 1000)
    psr0 = probabilistic_sharpe_ratio(r, 0.0)
    v = 0.02**2
    dsr = [deflated_sharpe_ratio(r, n_trials=k, trial_sharpe_variance=v) for k in (2, 5, 20, 100)]
    assert all(d <= psr0 for d in dsr)
    assert all(a > b for a, b in itertools.pairwise(dsr))
    assert deflated_sharpe_ratio(r, n_trials=1, trial_sharpe_variance=v) == pytest.approx(psr0)
    assert deflated_sharpe_ratio(r, n_trials=50, trial_sharpe_variance=0.0) == pytest.approx(psr0)
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe_ratio(r, n_trials=0, trial_sharpe_variance=v)


def test_dsr_deflates_selection_among_unskilled_trials() -> None:
    # 20 strategies without skill; pick the best by Sharpe. PSR is fooled, DSR is not.
    rng = np.random.default_rng(77)
    psr_hits = dsr_hits = 0
    reps = 150
    for _ in range(reps):
        trials = pd.DataFrame(rng.normal(0.0, 0.01, (500, 20)))
        best = trials.columns[int(np.argmax(trials.mean() / trials.std()))]
        psr_hits += probabilistic_sharpe_ratio(trials[best]) > 0.95
        dsr_hits += deflated_sharpe_ratio_from_trials(trials) > 0.95
    assert psr_hits / reps > 0.4
    assert dsr_hits / reps < 0.1


def test_dsr_from_trials_selection() -> None:
    rng = np.random.default_rng(8)
    trials = pd.DataFrame(rng.normal(0.0003, 0.01, (750, 6)), columns=list("abcdef"))
    trials["star"] = rng.normal(0.002, 0.01, 750)
    best = deflated_sharpe_ratio_from_trials(trials)
    assert best == deflated_sharpe_ratio_from_trials(trials, "star")
    assert best < probabilistic_sharpe_ratio(trials["star"])
    assert deflated_sharpe_ratio_from_trials(trials, "a") < best
    assert deflated_sharpe_ratio_from_trials(trials[["a"]]) == pytest.approx(
        probabilistic_sharpe_ratio(trials["a"])
    )
    with pytest.raises(ValueError, match="selected"):
        deflated_sharpe_ratio_from_trials(trials, "zzz")


def test_dsr_from_trials_ignores_constant_trials_in_the_variance() -> None:
    # A cash column (constant returns) is a trial without a Sharpe ratio: it counts in
    # n_trials but not in the variance -- the same rule as the leaderboard's.
    rng = np.random.default_rng(18)
    trials = pd.DataFrame(rng.normal(0.0004, 0.01, (500, 4)), columns=list("abcd"))
    trials["cash"] = 0.0
    trials["bond"] = 0.0001
    daily = trials[list("abcd")].mean() / trials[list("abcd")].std()
    best = daily.idxmax()
    expected = deflated_sharpe_ratio(
        trials[best], n_trials=6, trial_sharpe_variance=float(np.var(daily, ddof=1))
    )
    assert deflated_sharpe_ratio_from_trials(trials, best) == pytest.approx(expected, rel=1e-12)
    # By default the best Sharpe ratio is picked: the constant positive "bond" (+inf), whose
    # PSR is undefined.
    assert np.isnan(deflated_sharpe_ratio_from_trials(trials))


def test_dsr_from_trials_needs_two_finite_trial_sharpes() -> None:
    trials = pd.DataFrame({"cash": np.zeros(300), "x": np.random.default_rng(1).normal(0, 1, 300)})
    with pytest.raises(ArgumentError, match=r"only 1 of the 2 trials") as info:
        deflated_sharpe_ratio_from_trials(trials)
    assert isinstance(info.value, KabutoError)
    # A single trial needs no variance: nothing was selected.
    assert deflated_sharpe_ratio_from_trials(trials[["x"]]) == pytest.approx(
        probabilistic_sharpe_ratio(trials["x"])
    )
    assert np.isnan(deflated_sharpe_ratio_from_trials(trials[["cash"]]))


# ---------------------------------------------------------------------------------------------
# Sharpe difference tests


def _pair(rng: np.random.Generator, n: int, mu_a: float, mu_b: float, rho: float = 0.5):
    z = rng.normal(size=(n, 2))
    a = mu_a + 0.01 * z[:, 0]
    b = mu_b + 0.01 * (rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1])
    return a, b


def test_difference_test_basics() -> None:
    a, b = _pair(np.random.default_rng(0), 500, 0.001, 0.0)
    res = sharpe_difference_test(a, b, n_boot=500, seed=1)
    assert res == sharpe_difference_test(a, b, n_boot=500, seed=1)
    assert res["difference"] == pytest.approx(sharpe(a) - sharpe(b), rel=1e-12)
    assert res["ci_low"] < res["difference"] < res["ci_high"]
    assert 0 < res["p_value"] <= 1
    # Swapping the series negates the difference and keeps the p-value (same resamples).
    swapped = sharpe_difference_test(b, a, n_boot=500, seed=1)
    assert swapped["difference"] == pytest.approx(-res["difference"], rel=1e-12)
    assert swapped["p_value"] == res["p_value"]
    with pytest.raises(ValueError, match="same length"):
        sharpe_difference_test(a, b[:-1])
    idx = pd.bdate_range("2020-01-01", periods=500)
    with pytest.raises(ValueError, match="same dates"):
        sharpe_difference_test(pd.Series(a, index=idx), pd.Series(b, index=idx.shift(1)))


def test_difference_test_rejects_a_large_difference() -> None:
    a, b = _pair(np.random.default_rng(3), 1000, 0.0015, -0.0005, rho=0.3)
    res = sharpe_difference_test(a, b, n_boot=1000, seed=0)
    jk = jobson_korkie_test(a, b)
    assert res["difference"] > 2.0
    assert res["p_value"] < 0.01
    assert res["ci_low"] > 0.0
    assert jk["z"] > 0 and jk["p_value"] < 0.01


def test_difference_tests_under_the_null() -> None:
    rng = np.random.default_rng(11)
    boot_p, jk_p = [], []
    for rep in range(250):
        a, b = _pair(rng, 250, 0.0005, 0.0005, rho=0.5)
        boot_p.append(sharpe_difference_test(a, b, n_boot=300, seed=rep)["p_value"])
        jk_p.append(jobson_korkie_test(a, b)["p_value"])
    boot_p, jk_p = np.array(boot_p), np.array(jk_p)
    for p in (boot_p, jk_p):
        assert np.mean(p < 0.05) <= 0.12
        assert sps.kstest(p, "uniform").pvalue > 1e-3
    # The bootstrap and the closed form agree closely on the same data.
    assert np.corrcoef(boot_p, jk_p)[0, 1] > 0.9
    assert np.median(np.abs(boot_p - jk_p)) < 0.1


def test_bootstrap_and_jobson_korkie_agree_on_a_moderate_difference() -> None:
    a, b = _pair(np.random.default_rng(5), 750, 0.0012, 0.0002, rho=0.6)
    boot = sharpe_difference_test(a, b, n_boot=2000, seed=0)
    jk = jobson_korkie_test(a, b)
    assert np.sign(boot["difference"]) == np.sign(jk["difference"]) == np.sign(jk["z"])
    assert boot["difference"] == pytest.approx(jk["difference"], rel=1e-12)
    assert abs(math.log10(boot["p_value"]) - math.log10(jk["p_value"])) < 0.5


def test_jobson_korkie_constant_series_has_no_test() -> None:
    b = np.random.default_rng(2).normal(0.0, 0.01, 300)
    constant = np.full(300, 0.001)
    # Its sample variance is a rounding residue, not 0: only an exact check catches it.
    assert np.var(constant, ddof=1) > 0.0
    for a, other in ((constant, b), (b, constant)):
        res = jobson_korkie_test(a, other)
        assert np.isnan(res["z"]) and np.isnan(res["p_value"])
        assert res["sharpe_a"] == pytest.approx(sharpe(a), rel=1e-12)
        assert res["sharpe_b"] == pytest.approx(sharpe(other), rel=1e-12)
    assert np.isinf(jobson_korkie_test(constant, b)["sharpe_a"])
    with pytest.raises(ArgumentError, match="at least 3 days"):
        jobson_korkie_test(b[:2], b[:2])


def test_jobson_korkie_memmel_variance_is_right() -> None:
    # With large Sharpe ratios and uncorrelated series the mean terms of the variance matter:
    # Memmel's corrected variance gives z ~ N(0, 1) under H0 (the uncorrected one, z with
    # variance about 1.2 here).
    rng = np.random.default_rng(13)
    z = []
    for _ in range(1500):
        a, b = _pair(rng, 200, 0.01, 0.01, rho=0.0)
        z.append(jobson_korkie_test(a, b)["z"])
    z = np.array(z)
    assert abs(z.mean()) < 0.1
    assert 0.9 < z.var() < 1.1


def _sparse(n_active: int, n: int = 300) -> np.ndarray:
    """A strategy that trades on ``n_active`` of ``n`` days and is flat (0) otherwise."""
    r = np.zeros(n)
    days = np.linspace(10, n - 10, n_active).astype(int)
    r[days] = 0.01 * np.arange(1, n_active + 1) * (-1.0) ** np.arange(n_active)
    return r


def test_zero_variance_resamples_are_left_out() -> None:
    sparse = _sparse(5)  # about 0.5% of iid resamples miss all 5 active days
    other = np.random.default_rng(0).normal(0.0005, 0.01, sparse.size)
    boot = bootstrap_sharpes(np.column_stack([sparse, other]), n_boot=500, mean_block=1.0, seed=0)
    undefined = ~np.isfinite(boot[:, 0])
    assert 0 < undefined.sum() <= 25  # some, but within the 5% allowed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = sharpe_confidence_interval(sparse, n_boot=500, mean_block=1.0, seed=0)
        res = sharpe_difference_test(sparse, other, n_boot=500, mean_block=1.0, seed=0)
    # The interval: quantiles of the defined replicates only (it was (nan, nan)).
    assert (low, high) == pytest.approx(np.quantile(boot[~undefined, 0], [0.025, 0.975]))
    assert low < sharpe(sparse) < high
    # The p-value: undefined replicates leave the numerator and the denominator (they used to
    # count as "not beyond |d|", biasing it down); interval and se from the same replicates.
    d, d_star = res["difference"], (boot[:, 0] - boot[:, 1])[~undefined]
    expected_p = (1 + np.count_nonzero(np.abs(d_star - d) >= abs(d))) / (d_star.size + 1)
    assert res["p_value"] == pytest.approx(expected_p, rel=1e-12)
    assert res["se"] == pytest.approx(np.std(d_star, ddof=1), rel=1e-12)
    half = np.quantile(np.abs(d_star - d), 0.95)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((d - half, d + half), rel=1e-12)


def test_too_many_zero_variance_resamples_raise() -> None:
    sparse = _sparse(2)  # about 13% of iid resamples miss both active days
    other = np.random.default_rng(0).normal(0.0005, 0.01, sparse.size)
    boot = bootstrap_sharpes(sparse[:, None], n_boot=500, mean_block=1.0, seed=0)
    undefined = int(np.count_nonzero(~np.isfinite(boot)))
    assert undefined > 25
    message = rf"{undefined} of 500 bootstrap resamples .*zero variance.*too few non-zero"
    with pytest.raises(ArgumentError, match=message):
        sharpe_confidence_interval(sparse, n_boot=500, mean_block=1.0, seed=0)
    with pytest.raises(ArgumentError, match=message):
        sharpe_difference_test(sparse, other, n_boot=500, mean_block=1.0, seed=0)


@pytest.mark.parametrize("daily", [0.001, 0.0])
@pytest.mark.parametrize("rounding", [0.0, 2e-14])
def test_constant_returns_have_no_interval_or_test(daily: float, rounding: float) -> None:
    # Zero variance overall: sharpe is +-inf (nan for zeros) and there is nothing to infer
    # about -- nan, without the RuntimeWarnings np.quantile gave on the inf replicates. So also
    # for returns constant but for rounding (a PSR of 1.000 and a Sharpe of 1e15 before).
    constant = np.full(50, daily)
    constant[::2] *= 1.0 - rounding
    assert np.isnan(probabilistic_sharpe_ratio(constant))
    other = np.random.default_rng(1).normal(0.0005, 0.01, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(sharpe_confidence_interval(constant, n_boot=200)).all()
        for a, b in [(constant, other), (other, constant), (constant, constant)]:
            res = sharpe_difference_test(a, b, n_boot=200)
            assert np.isnan([res["ci_low"], res["ci_high"], res["se"], res["p_value"]]).all()
        assert np.isnan(jobson_korkie_test(constant, constant)["p_value"])
    with pytest.raises(ArgumentError, match="n_boot"):  # arguments are still checked
        sharpe_confidence_interval(constant, n_boot=0)


# ---------------------------------------------------------------------------------------------
# leaderboard


def test_leaderboard_table() -> None:
    result = fake_backtest_result()
    board = leaderboard(result, n_boot=400, seed=3)
    assert list(board.columns) == list(LEADERBOARD_COLUMNS)
    assert set(LEADERBOARD_COLUMNS) <= set(METRIC_DEFINITIONS)
    assert sorted(board.index) == sorted(result.names)
    assert board.index.name == "strategy"
    assert board["sharpe"].is_monotonic_decreasing
    assert board.attrs["benchmark_strategy"] == "EqualWeight"
    assert board.attrs["n_trials"] == 4
    for name in result.names:
        row = board.loc[name]
        net, gross = result[name].net_returns, result[name].gross_returns
        assert row["sharpe"] == pytest.approx(sharpe(net), rel=1e-12)
        assert row["gross_sharpe"] == pytest.approx(sharpe(gross), rel=1e-12)
        assert row["gross_sharpe"] > row["sharpe"]
        assert row["sharpe_ci_low"] < row["sharpe"] < row["sharpe_ci_high"]
        assert row["dsr"] <= row["psr"]
        # Reproducible strategy by strategy from the shared bootstrap settings.
        ci = sharpe_confidence_interval(
            net, n_boot=400, seed=3, mean_block=board.attrs["mean_block"]
        )
        assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(ci, rel=1e-12)
    # PSR and DSR of every row: the strategies on the board are the trials.
    daily = [sharpe(result[n].net_returns) / SQRT252 for n in result.names]
    variance = float(np.var(daily, ddof=1))
    for name in result.names:
        net = result[name].net_returns
        psr = probabilistic_sharpe_ratio(net, 0.0)
        dsr = deflated_sharpe_ratio(net, n_trials=4, trial_sharpe_variance=variance)
        assert board.loc[name, "psr"] == pytest.approx(psr, rel=1e-12)
        assert board.loc[name, "dsr"] == pytest.approx(dsr, rel=1e-9)
    # Versus the equal-weight benchmark strategy.
    assert np.isnan(board.loc["EqualWeight", "sharpe_diff"])
    assert np.isnan(board.loc["EqualWeight", "sharpe_diff_pvalue"])
    test = sharpe_difference_test(
        result["Momentum"].net_returns,
        result["EqualWeight"].net_returns,
        n_boot=400,
        seed=3,
        mean_block=board.attrs["mean_block"],
    )
    assert board.loc["Momentum", "sharpe_diff"] == pytest.approx(test["difference"], rel=1e-12)
    assert board.loc["Momentum", "sharpe_diff_pvalue"] == test["p_value"]
    # 36 monthly rebalances over 3 years of days.
    assert board.loc["Momentum", "turnover"] == pytest.approx(1.5, rel=1e-12)
    # Benchmark index metrics are there.
    assert board.loc["Momentum", "beta"] == pytest.approx(1.1, abs=0.05)


def test_leaderboard_benchmark_choice() -> None:
    no_ew = leaderboard(fake_backtest_result(with_equal_weight=False), n_boot=100)
    assert no_ew.attrs["benchmark_strategy"] is None
    assert no_ew["sharpe_diff"].isna().all()
    result = fake_backtest_result()
    vs_minvar = leaderboard(result, benchmark_strategy="MinVar", n_boot=100)
    assert np.isnan(vs_minvar.loc["MinVar", "sharpe_diff"])
    assert vs_minvar["sharpe_diff"].notna().sum() == 3
    with pytest.raises(ConfigError, match="Nope"):
        leaderboard(result, benchmark_strategy="Nope", n_boot=100)


def test_leaderboard_dsr_matches_dsr_from_trials_with_a_cash_strategy() -> None:
    result = fake_backtest_result(cash=True)
    board = leaderboard(result, n_boot=100)
    net = pd.DataFrame({n: result[n].net_returns for n in result.names})
    top = board.index[0]
    assert np.isnan(board.loc["Cash", "sharpe"])
    assert board.loc[top, "dsr"] == pytest.approx(
        deflated_sharpe_ratio_from_trials(net, top), rel=1e-12
    )
    assert np.isfinite(board.attrs["trial_sharpe_variance"])


def test_leaderboard_without_two_finite_sharpes_has_no_dsr() -> None:
    full = fake_backtest_result(cash=True)
    result = BacktestResult({n: full[n] for n in ("Cash", "Momentum")}, full.benchmark_returns)
    board = leaderboard(result, n_boot=100)
    assert board["dsr"].isna().all()
    assert np.isnan(board.attrs["trial_sharpe_variance"])
    assert np.isfinite(board.loc["Momentum", "psr"])


def test_leaderboard_bad_input_is_a_kabuto_error() -> None:
    full = fake_backtest_result()
    moved = dataclasses.replace(
        full["Momentum"],
        gross_returns=full["Momentum"].gross_returns.shift(1, freq="B"),
        net_returns=full["Momentum"].net_returns.shift(1, freq="B"),
    )
    result = BacktestResult({"EqualWeight": full["EqualWeight"], "Momentum": moved})
    with pytest.raises(ArgumentError, match="different dates") as info:
        leaderboard(result, n_boot=100)
    assert isinstance(info.value, KabutoError) and isinstance(info.value, ValueError)
    with pytest.raises(ArgumentError, match="level"):
        leaderboard(full, n_boot=100, level=1.5)


def test_leaderboard_records_a_numpy_integer_seed() -> None:
    board = leaderboard(fake_backtest_result(), n_boot=100, seed=np.int64(3))
    assert board.attrs["seed"] == 3 and type(board.attrs["seed"]) is int
    assert board.equals(leaderboard(fake_backtest_result(), n_boot=100, seed=3))
    generator = np.random.default_rng(3)
    assert leaderboard(fake_backtest_result(), n_boot=100, seed=generator).attrs["seed"] is None


def test_leaderboard_survives_strategies_that_rarely_trade() -> None:
    full = fake_backtest_result(cash=True)
    idx = full["EqualWeight"].net_returns.index
    strategies = {n: full[n] for n in full.names}
    for name, active in [("Rare", 2), ("Occasional", 6)]:
        r = pd.Series(_sparse(active, len(idx)), index=idx)
        base = full["Momentum"]
        strategies[name] = dataclasses.replace(base, name=name, gross_returns=r, net_returns=r)
    result = BacktestResult(strategies, full.benchmark_returns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        board = leaderboard(result, n_boot=400, mean_block=1.0, seed=3)
    boot = bootstrap_sharpes(
        np.column_stack([result[n].net_returns for n in ("Rare", "Occasional")]),
        n_boot=400,
        mean_block=1.0,
        seed=3,
    )
    undefined = np.count_nonzero(~np.isfinite(boot), axis=0)
    assert undefined[0] > 20 and 0 < undefined[1] <= 20  # above and below the 5% allowed
    # Too many undefined resamples: nan cells where the functions raise, the board intact.
    assert np.isfinite(board.loc["Rare", "sharpe"])
    assert board.loc["Rare", ["sharpe_ci_low", "sharpe_ci_high", "sharpe_diff_pvalue"]].isna().all()
    with pytest.raises(ArgumentError, match="zero variance"):
        sharpe_confidence_interval(result["Rare"].net_returns, n_boot=400, mean_block=1.0, seed=3)
    # A few: left out, exactly as the functions do (these cells used to be nan).
    ci = sharpe_confidence_interval(
        result["Occasional"].net_returns, n_boot=400, mean_block=1.0, seed=3
    )
    row = board.loc["Occasional"]
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(ci, rel=1e-12)
    test = sharpe_difference_test(
        result["Occasional"].net_returns,
        result["EqualWeight"].net_returns,
        n_boot=400,
        mean_block=1.0,
        seed=3,
    )
    assert row["sharpe_diff_pvalue"] == test["p_value"]
    # Constant returns: no Sharpe ratio, nothing to infer; other rows unaffected.
    assert board.loc["Cash", ["sharpe_ci_low", "sharpe_diff_pvalue"]].isna().all()
    assert board.loc["Momentum", ["sharpe_ci_low", "sharpe_diff_pvalue"]].notna().all()
