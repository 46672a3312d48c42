"""Stylized-facts statistics against independent references (loops, closed forms, scipy)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from kabuto.errors import ConfigError, DataError
from kabuto.sim.artificial.facts import (
    StylizedFacts,
    autocorrelation,
    bar_returns,
    decay_exponent,
    excess_kurtosis,
    hill_tail_index,
    stylized_facts,
    zero_share,
)

# ----------------------------------------------------------------------------------------------
# References and simulators
# ----------------------------------------------------------------------------------------------


def loop_acf(x: np.ndarray, k: int) -> float:
    """The textbook biased sample autocorrelation, written out with plain loops."""
    n = len(x)
    mean = sum(x) / n
    num = sum((x[t] - mean) * (x[t + k] - mean) for t in range(n - k))
    den = sum((x[t] - mean) ** 2 for t in range(n))
    return num / den


def garch_returns(rng: np.random.Generator, runs: int, n: int) -> np.ndarray:
    """GARCH(1,1) returns, unit unconditional variance, shape (runs, n); 500 steps burned."""
    alpha, beta = 0.1, 0.85
    omega = 1.0 - alpha - beta
    burn = 500
    z = rng.standard_normal((runs, n + burn))
    h = np.ones(runs)
    r = np.empty_like(z)
    for t in range(n + burn):
        r[:, t] = np.sqrt(h) * z[:, t]
        h = omega + alpha * r[:, t] ** 2 + beta * h
    return r[:, burn:]


def to_prices(returns: np.ndarray, scale: float = 0.01, s0: float = 100.0) -> np.ndarray:
    """Prices whose log returns are ``scale * returns``, starting at s0 (one more step)."""
    log_p = np.cumsum(scale * returns, axis=1)
    log_p = np.concatenate([np.zeros((returns.shape[0], 1)), log_p], axis=1)
    return s0 * np.exp(log_p)


# ----------------------------------------------------------------------------------------------
# bar_returns
# ----------------------------------------------------------------------------------------------


def test_bar_returns_hand_example() -> None:
    prices = np.array([[100.0, 101, 102, 103, 104, 105, 106], [10, 10, 10, 20, 20, 40, 40]])
    r = bar_returns(prices, bar=2)  # closes at steps 0, 2, 4, 6
    expected = np.log([[102 / 100, 104 / 102, 106 / 104], [10 / 10, 20 / 10, 40 / 20]])
    # log(b) - log(a) and log(b / a) differ by round-off only.
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    assert r[1, 0] == 0.0  # equal closes are an exact zero

    r = bar_returns(prices, bar=3, start=1)  # closes at steps 1, 4 (7 does not exist)
    np.testing.assert_allclose(r, np.log([[104 / 101], [20 / 10]]), rtol=1e-12)


def test_bar_returns_one_run_and_bar_one() -> None:
    p = np.array([1.0, 2.0, 4.0, 2.0])
    r = bar_returns(p, bar=1)
    assert r.shape == (1, 3)
    np.testing.assert_allclose(r[0], np.log([2.0, 2.0, 0.5]))


def test_bar_returns_equals_returns_of_subsampled_prices() -> None:
    rng = np.random.default_rng(1)
    prices = to_prices(rng.standard_normal((3, 101)))
    np.testing.assert_allclose(
        bar_returns(prices, bar=7, start=3), bar_returns(prices[:, 3::7], bar=1), rtol=0, atol=0
    )


def test_bar_returns_checks_only_sampled_closes() -> None:
    # A warm-up without trades (nan) before start, and a bad step between closes, are ignored.
    prices = np.array([[np.nan, np.nan, 100.0, -1.0, 101.0, 0.0, 102.0]])
    r = bar_returns(prices, bar=2, start=2)
    np.testing.assert_allclose(r[0], np.log([101 / 100, 102 / 101]))


# ----------------------------------------------------------------------------------------------
# autocorrelation
# ----------------------------------------------------------------------------------------------


def test_autocorrelation_matches_loop_reference() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 60)) + np.array([[0.0], [5.0], [-2.0]])
    x[1] = np.cumsum(x[1]) / 5  # one strongly autocorrelated run
    lags = [0, 1, 2, 5, 13, 59]
    got = autocorrelation(x, lags)
    assert got.shape == (3, len(lags))
    expected = np.array([[loop_acf(list(row), k) for k in lags] for row in x])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[:, 0], 1.0)


def test_autocorrelation_ar1_closed_form() -> None:
    # AR(1) x_t = 0.5 x_{t-1} + e_t has rho(k) = 0.5^k; the estimator's sd is ~1/sqrt(n).
    rng = np.random.default_rng(3)
    n, phi = 100_000, 0.5
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi**2)  # start in the stationary distribution
    # scipy.signal.lfilter would be faster, but a plain recursion is the independent reference.
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    lags = np.arange(1, 8)
    np.testing.assert_allclose(autocorrelation(x, lags)[0], phi**lags, atol=0.015)


def test_autocorrelation_constant_run_is_nan() -> None:
    x = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 1.0, 2.0]])
    got = autocorrelation(x, [1, 2])
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1], [loop_acf(list(x[1]), 1), loop_acf(list(x[1]), 2)])


# ----------------------------------------------------------------------------------------------
# excess_kurtosis and zero_share
# ----------------------------------------------------------------------------------------------


def test_excess_kurtosis_matches_scipy_with_and_without_zeros() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_t(df=5, size=(4, 500))
    # Different shares of exact zeros per run (bars without a trade).
    for run, share in enumerate([0.0, 0.1, 0.5, 0.8]):
        x[run, rng.random(500) < share] = 0.0
    expected = scipy.stats.kurtosis(x, axis=1, fisher=True, bias=True)
    np.testing.assert_allclose(excess_kurtosis(x), expected, rtol=1e-10)
    expected_nz = [scipy.stats.kurtosis(row[row != 0], fisher=True, bias=True) for row in x]
    np.testing.assert_allclose(excess_kurtosis(x, drop_zeros=True), expected_nz, rtol=1e-10)
    # Zeros pile up at the mean and fatten the distribution's peak: kurtosis goes up.
    assert excess_kurtosis(x)[3] > excess_kurtosis(x, drop_zeros=True)[3]


def test_excess_kurtosis_degenerate_runs_are_nan() -> None:
    x = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, -1.0, 1.0, -1.0]])
    # [0, 0, 0, 1]: m2 = 3/16, m4 = 21/256, m4 / m2^2 - 3 = 7/3 - 3 = -2/3.
    np.testing.assert_allclose(excess_kurtosis(x), [np.nan, -2 / 3, -2.0], equal_nan=True)
    np.testing.assert_allclose(scipy.stats.kurtosis(x[1:], axis=1), [-2 / 3, -2.0])
    # Without zeros: none left, one value left (no variance), and unchanged.
    np.testing.assert_allclose(
        excess_kurtosis(x, drop_zeros=True), [np.nan, np.nan, -2.0], equal_nan=True
    )


def test_zero_share() -> None:
    x = np.array([[0.0, 1.0, 0.0, -1.0], [0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_allclose(zero_share(x), [0.5, 0.0])
    np.testing.assert_allclose(zero_share(np.zeros(3)), [1.0])


# ----------------------------------------------------------------------------------------------
# hill_tail_index
# ----------------------------------------------------------------------------------------------


def test_hill_hand_example_pins_the_convention() -> None:
    # 10 nonzero |x| (and zeros, ignored); tail_fraction 0.2 -> k = 2, threshold X_(3) = 2.
    x = np.array([8.0, -4.0, 2.0, 1.0, -1.0, 0.5, 0.5, 0.25, -0.25, 0.125, 0.0, 0.0])
    expected = 1.0 / ((math.log(8 / 2) + math.log(4 / 2)) / 2)
    np.testing.assert_allclose(hill_tail_index(x, tail_fraction=0.2), [expected], rtol=1e-14)
    # k never goes below 2: a tiny tail_fraction gives the same.
    np.testing.assert_allclose(hill_tail_index(x, tail_fraction=0.01), [expected], rtol=1e-14)
    # tail_fraction 0.3 -> k = 3, threshold X_(4) = 1.
    expected3 = 1.0 / ((math.log(8) + math.log(4) + math.log(2)) / 3)
    np.testing.assert_allclose(hill_tail_index(x, tail_fraction=0.3), [expected3], rtol=1e-14)


@pytest.mark.parametrize("alpha", [2.0, 3.0, 4.0])
def test_hill_recovers_pareto_tail_index(alpha: float) -> None:
    rng = np.random.default_rng(int(alpha * 10))
    n = 100_000
    # Symmetric Pareto: |X| = U^(-1/alpha) has P(|X| > x) = x^-alpha for x >= 1, so the Hill
    # estimator is unbiased-ish at any k; sd ~ alpha / sqrt(k) = alpha / sqrt(5000).
    x = rng.uniform(size=(3, n)) ** (-1.0 / alpha) * rng.choice([-1.0, 1.0], size=(3, n))
    est = hill_tail_index(x, tail_fraction=0.05)
    assert est.shape == (3,)
    np.testing.assert_allclose(est, alpha, rtol=0.1)


def test_hill_normal_tail_is_thinner_than_student_t() -> None:
    rng = np.random.default_rng(5)
    normal = hill_tail_index(rng.standard_normal(50_000))[0]
    t3 = hill_tail_index(rng.standard_t(df=3, size=50_000))[0]
    assert normal > 4.0 > t3 > 2.0


def test_hill_degenerate_runs_are_nan() -> None:
    x = np.array(
        [
            [0.0, 0.0, 1.0, 2.0, 0.0, 0.0],  # 2 nonzero: no X_(k+1) for k = 2
            [1.0, -1.0, 1.0, 1.0, -1.0, 1.0],  # top 3 all equal: no spread to measure
            [1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
        ]
    )
    got = hill_tail_index(x, tail_fraction=0.1)
    assert np.isnan(got[:2]).all()
    np.testing.assert_allclose(got[2], 1 / ((math.log(4) + math.log(2)) / 2))


# ----------------------------------------------------------------------------------------------
# decay_exponent
# ----------------------------------------------------------------------------------------------


def test_decay_exponent_exact_power_law() -> None:
    lags = np.arange(1, 21)
    acf = np.stack([0.3 * lags**-0.4, 0.05 * lags**-1.5, 0.2 * lags**0.1])
    np.testing.assert_allclose(decay_exponent(acf, lags), [0.4, 1.5, -0.1], rtol=1e-12)


def test_decay_exponent_skips_non_positive_and_needs_three() -> None:
    lags = np.arange(1, 11)
    exact = 0.3 * lags**-0.7
    noisy = exact.copy()
    noisy[[4, 7, 9]] = [-0.01, 0.0, np.nan]  # left out, the rest fits exactly
    few = np.full(10, -0.1)
    few[[0, 3]] = exact[[0, 3]]  # only 2 positive values
    got = decay_exponent(np.stack([noisy, few]), lags)
    np.testing.assert_allclose(got[0], 0.7, rtol=1e-12)
    assert np.isnan(got[1])


# ----------------------------------------------------------------------------------------------
# stylized_facts: clustering, invariants, summary
# ----------------------------------------------------------------------------------------------


def test_garch_clusters_volatility_and_iid_does_not() -> None:
    rng = np.random.default_rng(6)
    runs, n = 4, 20_000
    garch = stylized_facts(to_prices(garch_returns(rng, runs, n)), bar=1)
    iid = stylized_facts(to_prices(rng.standard_normal((runs, n))), bar=1)
    assert isinstance(garch, StylizedFacts)
    assert garch.abs_acf.shape == (runs, 20) and garch.kurtosis.shape == (runs,)
    # |r| and r^2 stay positively correlated under GARCH, returns themselves do not.
    assert (garch.abs_acf[:, 0] > 0.1).all() and (garch.abs_acf[:, 9] > 0.03).all()
    assert (garch.sq_acf[:, 0] > 0.1).all()
    assert (np.abs(garch.return_acf[:, :5]) < 0.05).all()
    # Population excess kurtosis 6 a^2 / (1 - 2 a^2 - (a + b)^2) = 0.77, estimated noisily.
    assert (garch.kurtosis > 0.25).all()
    assert (garch.abs_decay > 0).all()
    # iid normal: every acf ~ 0 (sd 1/sqrt(n) = 0.007), kurtosis ~ 0 (sd sqrt(24/n) = 0.035).
    for acf in (iid.return_acf, iid.abs_acf, iid.sq_acf):
        assert (np.abs(acf) < 0.04).all()
    assert (np.abs(iid.kurtosis) < 0.15).all()
    assert (iid.zero_share == 0).all()


def test_scale_invariance() -> None:
    rng = np.random.default_rng(7)
    # Tick-rounded prices, so there are exact zero returns (and ties) to keep invariant too.
    prices = np.round(to_prices(garch_returns(rng, 3, 3000), scale=0.002), 1)
    base = stylized_facts(prices, bar=2, start=1)
    assert (base.zero_share > 0.05).all()
    for c in (1e-3, 7.0, 12345.678):
        scaled = stylized_facts(prices * c, bar=2, start=1)
        for name in (
            "return_acf",
            "abs_acf",
            "sq_acf",
            "kurtosis",
            "kurtosis_nonzero",
            "zero_share",
            "hill",
            "abs_decay",
        ):
            np.testing.assert_allclose(
                getattr(scaled, name), getattr(base, name), rtol=1e-7, atol=1e-9, err_msg=name
            )


def test_summary_table_is_nan_aware() -> None:
    rng = np.random.default_rng(8)
    prices = to_prices(garch_returns(rng, 5, 2000))
    prices[2] = 50.0  # a run that never moves: no acf, kurtosis or tail
    facts = stylized_facts(prices, bar=1, tail_fraction=0.05)
    table = facts.summary()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["mean", "se", "std", "q05", "q95", "n_runs", "n_nan"]
    lags = list(facts.lags)
    for name in ("return_acf", "abs_acf", "sq_acf"):
        for k in (1, 5, 10, 20):  # each row holds its own lag's values
            values = getattr(facts, name)[:, lags.index(k)]
            mean = table.loc[f"{name}_lag{k}", "mean"]
            np.testing.assert_allclose(mean, np.nanmean(values), rtol=1e-12)
    for name in ("kurtosis", "kurtosis_nonzero", "zero_share", "hill", "abs_decay"):
        assert name in table.index
    assert (table["n_runs"] == 5).all()
    assert table.loc["abs_acf_lag1", "n_nan"] == 1
    assert table.loc["kurtosis", "n_nan"] == 1
    assert table.loc["hill", "n_nan"] == 1
    assert table.loc["zero_share", "n_nan"] == 0
    # Aggregates are over the runs where the statistic is defined.
    ok = np.delete(facts.abs_acf[:, 0], 2)
    row = table.loc["abs_acf_lag1"]
    np.testing.assert_allclose(row["mean"], ok.mean())
    np.testing.assert_allclose(row["std"], ok.std(ddof=1))
    np.testing.assert_allclose(row["se"], ok.std(ddof=1) / np.sqrt(4))  # 4 defined runs
    np.testing.assert_allclose([row["q05"], row["q95"]], np.quantile(ok, [0.05, 0.95]))
    np.testing.assert_allclose(table.loc["zero_share", "mean"], 1 / 5)
    # The facts are frozen, arrays included.
    with pytest.raises(ValueError, match="read-only"):
        facts.hill[0] = 1.0


def test_summary_with_custom_lags_and_one_run() -> None:
    rng = np.random.default_rng(9)
    facts = stylized_facts(to_prices(rng.standard_normal((1, 200))), bar=1, lags=[2, 3, 7])
    table = facts.summary()
    # None of 1, 5, 10, 20 was computed: the first and last lag are shown.
    assert {"return_acf_lag2", "return_acf_lag7"} <= set(table.index)
    assert "return_acf_lag3" not in table.index
    for k, column in ((2, 0), (7, 2)):
        mean = table.loc[f"return_acf_lag{k}", "mean"]
        np.testing.assert_allclose(mean, facts.return_acf[0, column], rtol=1e-12)
    assert np.isnan(table["std"]).all()  # one run has no spread across runs


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bar", [0, -3, 1.5, True, "2"])
def test_bad_bar(bar: object) -> None:
    with pytest.raises(ConfigError, match=r"bar=.*" + (str(bar) if bar != "2" else "'2'")):
        bar_returns(np.ones((2, 50)), bar=bar)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="bar"):
        stylized_facts(np.ones((2, 50)), bar=bar)  # type: ignore[arg-type]


def test_bad_start() -> None:
    with pytest.raises(ConfigError, match="start=50"):
        bar_returns(np.ones((2, 50)), bar=1, start=50)
    with pytest.raises(ConfigError, match="start=-1"):
        bar_returns(np.ones((2, 50)), bar=1, start=-1)


def test_too_few_bars() -> None:
    prices = np.full((2, 100), 10.0)
    # bar=5 gives 20 closes, 19 returns; lags up to 20 need 23.
    with pytest.raises(ConfigError, match=r"bar=5.*19 bar returns.*max lag 20.*23"):
        stylized_facts(prices, bar=5)
    stylized_facts(prices, bar=4)  # 25 closes, 24 returns: enough
    with pytest.raises(ConfigError, match="at least 2"):
        bar_returns(prices, bar=100)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_bad_prices_name_run_and_step(bad: float) -> None:
    prices = np.full((3, 40), 100.0)
    prices[1, 6] = bad
    with pytest.raises(DataError, match=r"run 1, step 6"):
        stylized_facts(prices, bar=2, lags=[1, 2])


def test_bad_shapes_and_parameters() -> None:
    with pytest.raises(DataError, match="shape"):
        bar_returns(np.ones((2, 3, 4)), bar=1)
    with pytest.raises(DataError, match="no runs"):
        bar_returns(np.ones((0, 10)), bar=1)
    with pytest.raises(DataError, match=r"x\[run 0, step 2\]"):
        autocorrelation(np.array([1.0, 2.0, np.nan, 4.0]), [1])
    with pytest.raises(ConfigError, match="lags must be < n = 4"):
        autocorrelation(np.arange(4.0), [1, 4])
    with pytest.raises(ConfigError, match=">= 1"):
        stylized_facts(np.full(100, 5.0), bar=1, lags=[0, 1])
    with pytest.raises(ConfigError, match="integers"):
        autocorrelation(np.arange(10.0), [1.5])
    with pytest.raises(ConfigError, match="tail_fraction"):
        hill_tail_index(np.arange(10.0), tail_fraction=0.0)
    with pytest.raises(ConfigError, match="tail_fraction"):
        stylized_facts(np.full(100, 5.0), bar=1, tail_fraction=1.5)
    with pytest.raises(ConfigError, match="> 0"):
        decay_exponent(np.ones((2, 3)), [0, 1, 2])
    with pytest.raises(ConfigError, match="one lag per acf column"):
        decay_exponent(np.ones((2, 3)), [1, 2])
