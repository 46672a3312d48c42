"""Metric definitions: agreement with empyrical-reloaded, closed forms, validation."""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kabuto.backtest.result import StrategyResult
from kabuto.errors import ArgumentError, KabutoError
from kabuto.evaluation import metrics as m

SQRT252 = np.sqrt(252.0)


def _series(seed: int, n: int, kind: str = "normal") -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0.0004, 0.012, n)
    if kind == "t":  # heavy tails, clipped so wealth stays positive
        return np.clip(0.0003 + 0.01 * rng.standard_t(3, n), -0.5, 0.5)
    if kind == "skewed":  # negative skew: small gains, rare crashes
        return np.where(rng.random(n) < 0.03, -0.06, 0.003) + rng.normal(0, 0.004, n)
    raise ValueError(kind)


def _empyrical_pairs(r: np.ndarray, b: np.ndarray) -> list[tuple[str, float, float]]:
    return [
        ("cagr", m.cagr(r), ep.annual_return(r)),
        ("volatility", m.volatility(r), ep.annual_volatility(r)),
        ("sharpe", m.sharpe(r), ep.sharpe_ratio(r)),
        ("sharpe_rf", m.sharpe(r, risk_free=0.0001), ep.sharpe_ratio(r, risk_free=0.0001)),
        ("sortino", m.sortino(r), ep.sortino_ratio(r)),
        ("sortino_mar", m.sortino(r, mar=0.0005), ep.sortino_ratio(r, required_return=0.0005)),
        ("downside", m.downside_deviation(r), ep.downside_risk(r)),
        ("max_drawdown", m.max_drawdown(r), ep.max_drawdown(r)),
        ("calmar", m.calmar(r), ep.calmar_ratio(r)),
        ("cvar", m.cvar(r), ep.conditional_value_at_risk(r)),
        ("cvar_01", m.cvar(r, 0.01), ep.conditional_value_at_risk(r, cutoff=0.01)),
        ("beta", m.beta(r, b), ep.beta(r, b)),
        ("information_ratio", m.information_ratio(r, b), ep.excess_sharpe(r, b) * SQRT252),
    ]


@pytest.mark.parametrize("kind", ["normal", "t", "skewed"])
@pytest.mark.parametrize("n", [3, 20, 252, 2520])
def test_matches_empyrical_on_seeded_series(kind: str, n: int) -> None:
    r = _series(n, n, kind)
    b = 0.6 * r + _series(n + 1, n, "normal")
    for name, ours, theirs in _empyrical_pairs(r, b):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14, err_msg=name)


def test_matches_empyrical_on_series_input() -> None:
    idx = pd.bdate_range("2020-01-01", periods=500)
    r = pd.Series(_series(7, 500, "t"), index=idx)
    b = pd.Series(_series(8, 500), index=idx)
    np.testing.assert_allclose(m.sharpe(r), ep.sharpe_ratio(r), rtol=1e-10)
    np.testing.assert_allclose(m.cagr(r), ep.annual_return(r), rtol=1e-10)
    np.testing.assert_allclose(m.max_drawdown(r), ep.max_drawdown(r), rtol=1e-10)
    np.testing.assert_allclose(m.beta(r, b), ep.beta(r, b), rtol=1e-10)
    np.testing.assert_allclose(
        m.information_ratio(r, b), ep.excess_sharpe(r, b) * SQRT252, rtol=1e-10
    )
    dd = m.drawdowns(r)
    assert isinstance(dd, pd.Series)
    assert dd.index.equals(idx)
    np.testing.assert_allclose(dd.to_numpy(), ep.stats.drawdown_series(r).to_numpy(), atol=1e-14)


returns_arrays = arrays(
    np.float64,
    st.integers(3, 120),
    elements=st.floats(-0.3, 0.3, allow_nan=False, allow_subnormal=False),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=returns_arrays, seed=st.integers(0, 2**16))
def test_matches_empyrical_property(r: np.ndarray, seed: int) -> None:
    # Away from numerically degenerate (near-constant) samples, where any two implementations
    # of a standard deviation may disagree in the last digits.
    assume(np.std(r) > 1e-4)
    b = 0.5 * r + np.random.default_rng(seed).normal(0.0, 0.01, r.size)
    for name, ours, theirs in _empyrical_pairs(r, b):
        rtol = 1e-10
        if name == "calmar" and min(abs(m.max_drawdown(r)), abs(ep.max_drawdown(r))) < 1e-12:
            continue  # a drawdown at rounding level: either answer (nan or noise) is defensible
        if name == "calmar":
            # A drawdown of size d carries a relative rounding error of about 1e-16 / d in any
            # implementation, and Calmar divides by it.
            rtol = max(1e-10, 1e-14 / max(abs(m.max_drawdown(r)), 1e-300))
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-12, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(r=returns_arrays, scale=st.floats(0.1, 10.0))
def test_invariants_property(r: np.ndarray, scale: float) -> None:
    assume(np.std(r) > 1e-4)
    # Sharpe is scale-free; drawdowns are within [-1, 0]; hit rate is a share.
    np.testing.assert_allclose(m.sharpe(r * scale), m.sharpe(r), rtol=1e-9)
    mdd = m.max_drawdown(r)
    assert -1.0 <= mdd <= 0.0
    assert 0.0 <= m.hit_rate(r) <= 1.0
    # Volatility scales linearly; CVaR is at most the mean (a lower-tail average).
    np.testing.assert_allclose(m.volatility(r * scale), scale * m.volatility(r), rtol=1e-9)
    assert m.cvar(r) <= r.mean() + 1e-15
    # Total return and CAGR describe the same compounded wealth (where it is representable).
    if -0.99 < m.cagr(r) < 1e6:
        np.testing.assert_allclose(
            (1.0 + m.cagr(r)) ** (r.size / 252.0), 1.0 + m.total_return(r), rtol=1e-9
        )


@pytest.mark.parametrize("daily", [0.0004, -0.0002, 0.001])
def test_constant_return_closed_forms(daily: float) -> None:
    r = np.full(504, daily)
    np.testing.assert_allclose(m.cagr(r), (1.0 + daily) ** 252 - 1.0, rtol=1e-12)
    np.testing.assert_allclose(m.total_return(r), (1.0 + daily) ** 504 - 1.0, rtol=1e-12)
    assert m.volatility(r) == 0.0
    assert m.sharpe(r) == np.sign(daily) * np.inf
    # constant but for rounding (a net return computed as (1 + g)(1 - c) - 1): the same, not
    # a Sharpe ratio of about 1e15 from a standard deviation of about 1e-17
    rounded = r.copy()
    rounded[::2] *= 1.0 - 2e-14
    assert np.std(rounded) > 0.0
    assert m.volatility(rounded) == 0.0 and m.sharpe(rounded) == np.sign(daily) * np.inf
    assert m.hit_rate(r) == (1.0 if daily > 0 else 0.0)
    np.testing.assert_allclose(m.cvar(r), daily, rtol=1e-12)
    if daily > 0:
        assert m.max_drawdown(r) == 0.0
        assert np.isnan(m.calmar(r))  # no drawdown: undefined
        # a "drawdown" of one rounding error is none either (Calmar would be about 1e25)
        tiny = np.array([0.3, -2.220446049250313e-16, 0.0])
        assert m.max_drawdown(tiny) < 0.0 and np.isnan(m.calmar(tiny))
        assert m.sortino(r) == np.inf
    else:
        # Steady decline from the start: the whole loss is the drawdown.
        np.testing.assert_allclose(m.max_drawdown(r), (1.0 + daily) ** 504 - 1.0, rtol=1e-12)
        np.testing.assert_allclose(m.sortino(r), -SQRT252, rtol=1e-12)


def test_zero_returns_are_undefined_ratios() -> None:
    r = np.zeros(10)
    assert np.isnan(m.sharpe(r))
    assert np.isnan(m.sortino(r))
    assert m.volatility(r) == 0.0
    assert m.hit_rate(r) == 0.0


def test_drawdown_of_known_path() -> None:
    # Wealth 1.1, 0.55, 0.66, 0.99, 1.188: peak 1.1 then trough 0.55 -> -50%.
    r = np.array([0.1, -0.5, 0.2, 0.5, 0.2])
    np.testing.assert_allclose(m.drawdowns(r), [0.0, -0.5, -0.4, -0.1, 0.0], rtol=1e-12, atol=1e-15)
    assert m.max_drawdown(r) == pytest.approx(-0.5, rel=1e-12)
    expected_cagr = 1.188 ** (252 / 5) - 1.0
    assert m.cagr(r) == pytest.approx(expected_cagr, rel=1e-12)
    assert m.calmar(r) == pytest.approx(expected_cagr / 0.5, rel=1e-12)
    # A first-day loss is a drawdown from the initial wealth of 1.
    assert m.max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(-0.2, rel=1e-12)


def test_wealth_wiped_out() -> None:
    r = np.array([0.1, -1.0, 0.05])
    assert m.cagr(r) == -1.0
    assert m.max_drawdown(r) == -1.0


@pytest.mark.parametrize(
    ("r", "expected_drawdowns"),
    [
        # Two -200% days: wealth -1 then (without absorption) +1 -- a fake recovery.
        ([-2.0, -2.0, 0.01], [-1.0, -1.0, -1.0]),
        # Ruin on day 2, then a product of two negative factors would turn positive again.
        ([0.1, -1.5, 0.2, -1.5], [0.0, -1.0, -1.0, -1.0]),
    ],
)
def test_ruin_is_absorbing(r: list[float], expected_drawdowns: list[float]) -> None:
    assert m.total_return(r) == -1.0
    assert m.cagr(r) == -1.0
    assert m.max_drawdown(r) == -1.0
    np.testing.assert_array_equal(m.drawdowns(np.array(r)), expected_drawdowns)
    assert m.calmar(r) == -1.0
    # Ratios of the daily returns themselves are not affected by ruin.
    assert m.sharpe(r) == pytest.approx(np.mean(r) / np.std(r, ddof=1) * SQRT252, rel=1e-12)


def test_hit_rate_counts_flat_days_as_misses() -> None:
    assert m.hit_rate(np.array([0.01, 0.0, -0.01, 0.02, 0.0])) == pytest.approx(0.4)


def test_cvar_hand_computed() -> None:
    r = -np.arange(1, 101) / 1000.0  # -0.001 ... -0.100
    np.random.default_rng(0).shuffle(r)
    # k = floor(99 * 0.05) + 1 = 5 worst days: -0.100 ... -0.096.
    assert m.cvar(r) == pytest.approx(-0.098, rel=1e-12)


def test_beta_and_information_ratio_closed_forms() -> None:
    rng = np.random.default_rng(3)
    b = rng.normal(0.0003, 0.01, 400)
    assert m.beta(2.0 * b + 0.0001, b) == pytest.approx(2.0, rel=1e-10)
    active = rng.normal(0.0002, 0.002, 400)
    r = b + active
    expected_ir = active.mean() / active.std(ddof=1) * SQRT252
    assert m.information_ratio(r, b) == pytest.approx(expected_ir, rel=1e-10)
    assert np.isnan(m.beta(b, np.full(400, 0.001)))


def test_series_benchmark_is_aligned_on_dates() -> None:
    idx = pd.bdate_range("2021-01-01", periods=300)
    rng = np.random.default_rng(5)
    r = pd.Series(rng.normal(0, 0.01, 300), index=idx)
    longer_idx = pd.bdate_range("2020-12-01", idx[-1] + pd.offsets.BDay(5))
    longer = pd.Series(rng.normal(0, 0.01, len(longer_idx)), index=longer_idx)
    shuffled = longer.sample(frac=1.0, random_state=1)
    expected = m.beta(r.to_numpy(), longer.reindex(idx).to_numpy())
    assert m.beta(r, shuffled) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="no value on 5 of the returns' dates"):
        m.beta(r, longer.drop(idx[:5]))
    with pytest.raises(ValueError, match="same length"):
        m.information_ratio(r.to_numpy(), longer.to_numpy())


def test_risk_free_series() -> None:
    rng = np.random.default_rng(11)
    r = rng.normal(0.0005, 0.01, 300)
    rf = np.linspace(0.0, 0.0002, 300)
    excess = r - rf
    assert m.sharpe(r, risk_free=rf) == pytest.approx(
        excess.mean() / excess.std(ddof=1) * SQRT252, rel=1e-12
    )
    with pytest.raises(ValueError, match="risk_free"):
        m.sharpe(r, risk_free=rf[:10])


def test_risk_free_and_mar_series_are_aligned_on_dates() -> None:
    rng = np.random.default_rng(12)
    idx = pd.bdate_range("2021-01-01", periods=300)
    r = pd.Series(rng.normal(0.0005, 0.01, 300), index=idx)
    rate = pd.Series(np.linspace(0.0, 0.0004, 300), index=idx)
    excess = r.to_numpy() - rate.to_numpy()
    expected_sharpe = excess.mean() / excess.std(ddof=1) * SQRT252
    expected_sortino = m.sortino(excess)
    # Reversed, or with extra dates on both sides: matched by date, not by position.
    wider = pd.Series(0.01, index=pd.bdate_range("2020-12-01", "2022-06-01"))
    wider.loc[idx] = rate
    for rf in (rate.iloc[::-1], wider):
        assert m.sharpe(r, risk_free=rf) == pytest.approx(expected_sharpe, rel=1e-12)
        assert m.sortino(r, mar=rf) == pytest.approx(expected_sortino, rel=1e-12)
        assert m.downside_deviation(r, mar=rf) == pytest.approx(
            m.downside_deviation(excess), rel=1e-12
        )
    # Shifted by a day: the first return date has no rate, as for a benchmark.
    shifted = rate.shift(1, freq="B")
    for call in (
        lambda: m.sharpe(r, risk_free=shifted),
        lambda: m.sortino(r, mar=shifted),
        lambda: m.downside_deviation(r, mar=shifted),
    ):
        with pytest.raises(ArgumentError, match=r"no value on 1 of the returns' dates"):
            call()


def test_sortino_is_mean_excess_over_downside_deviation() -> None:
    r = _series(4, 500, "skewed")
    for mar in (0.0, 0.0005):
        expected = (r - mar).mean() * 252 / m.downside_deviation(r, mar)
        assert m.sortino(r, mar) == pytest.approx(expected, rel=1e-12)


def test_validation_errors_name_the_problem() -> None:
    idx = pd.bdate_range("2022-01-03", periods=4)
    with pytest.raises(ValueError, match=r"NaN.*2022-01-05"):
        m.sharpe(pd.Series([0.01, 0.02, np.nan, 0.0], index=idx))
    with pytest.raises(ValueError, match=r"first at 1"):
        m.cagr(np.array([0.01, np.inf]))
    with pytest.raises(ValueError, match="1-D"):
        m.volatility(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="DataFrame"):
        m.volatility(pd.DataFrame({"a": [0.0, 0.1]}))
    with pytest.raises(ValueError, match="cutoff"):
        m.cvar([0.0, 0.1], cutoff=1.5)


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.sharpe([0.01, np.nan]),
        lambda: m.volatility(np.zeros((3, 2))),
        lambda: m.cagr(["a", "b"]),
        lambda: m.cvar([0.0, 0.1], cutoff=1.5),
        lambda: m.sharpe([0.01, 0.02], risk_free=np.inf),
        lambda: m.sharpe([0.01, 0.02], risk_free="x"),
        lambda: m.sortino([0.01, 0.02, 0.0], mar=[0.0, 0.0]),
        lambda: m.beta([0.01, 0.02], [0.01]),
        lambda: m.turnover_per_year([0.1], -1),
    ],
)
def test_bad_input_is_a_kabuto_error(call) -> None:
    # Also a ValueError, which these functions raised before and callers may catch.
    with pytest.raises(ArgumentError) as info:
        call()
    assert isinstance(info.value, KabutoError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (pd.Series(pd.date_range("2020", periods=3)), "datetime64"),  # used to be Sharpe 289916
        (pd.Series(pd.date_range("2020", periods=3, tz="UTC")), "datetime64"),
        (pd.Series(pd.to_timedelta([1, 2, 3], unit="D")), "timedelta64"),
        (pd.Series([True, False, True]), "bool"),  # used to be Sharpe 18.3
        ([True, False, True], "bool"),
        (pd.Series([True, False, True], dtype="boolean"), "boolean"),
        (np.array([0.01 + 1j, 0.02, 0.0]), "complex128"),
        (pd.Series([True, 0.01, 0.02], dtype=object), "object holding mixed values"),
        (["0.01", "0.02", "0.0"], "<U4"),
    ],
)
@pytest.mark.parametrize("metric", [m.sharpe, m.volatility, m.cagr, m.hit_rate])
def test_returns_must_be_numeric(metric, values: object, dtype: str) -> None:
    with pytest.raises(ArgumentError, match=r"returns must be numeric \(got dtype ") as info:
        metric(values)
    assert dtype in str(info.value)


def test_non_numeric_benchmark_and_costs_are_named() -> None:
    r = np.array([0.01, -0.02, 0.03])
    with pytest.raises(ArgumentError, match=r"benchmark must be numeric \(got dtype bool\)"):
        m.beta(r, [True, False, True])
    with pytest.raises(ArgumentError, match=r"costs must be numeric \(got dtype bool\)"):
        m.costs_per_year(np.array([True, False]))


@pytest.mark.parametrize(
    "values",
    [
        [1, 2, 4],
        np.array([0.01, -0.02, 0.03], dtype=np.float32),
        np.array([1, 2, 4], dtype=np.uint8),
        pd.Series([1, 2, 4], dtype="Int64"),
        pd.Series([0.01, -0.02, 0.03], dtype=object),
    ],
)
def test_integer_and_float_returns_are_accepted(values: object) -> None:
    expected = m.sharpe(np.asarray(values, dtype=float))
    assert np.isfinite(expected)
    assert m.sharpe(values) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: m.cvar([0.0, 0.1], cutoff="x"), "cutoff must be a tail probability"),
        (lambda: m.cvar([0.0, 0.1], cutoff=None), "cutoff must be a tail probability"),
        (lambda: m.turnover_per_year([0.1], "x"), "n_days must be a whole number >= 0"),
        (lambda: m.turnover_per_year([0.1], 1.5), "n_days must be a whole number >= 0"),
        (lambda: m.turnover_per_year([0.1], True), "n_days must be a whole number >= 0"),
        (lambda: m.costs_per_year([0.1], 252.0), "n_days must be a whole number >= 0"),
    ],
)
def test_bad_arguments_are_argument_errors_naming_the_value(call, message: str) -> None:
    # These used to raise a bare TypeError ("x") or be accepted (1.5 days, True).
    with pytest.raises(ArgumentError, match=message) as info:
        call()
    assert "got " in str(info.value)


def test_short_series() -> None:
    assert np.isnan(m.cagr([]))
    assert np.isnan(m.max_drawdown([]))
    assert np.isnan(m.sharpe([0.01]))
    assert np.isnan(m.volatility([0.01]))
    assert np.isnan(m.sortino([0.01]))
    assert m.cagr([0.01]) == pytest.approx(1.01**252 - 1.0)


def _strategy_result(n_days: int = 504) -> StrategyResult:
    idx = pd.bdate_range("2019-01-01", periods=n_days)
    rng = np.random.default_rng(21)
    gross = pd.Series(rng.normal(0.0005, 0.01, n_days), index=idx)
    rebalance = idx[::126]  # four rebalances
    turnover = pd.Series([1.0, 0.4, 0.2, 0.6], index=rebalance)
    costs = pd.Series(0.0, index=idx)
    costs[rebalance] = turnover.to_numpy() * 0.001
    net = (1.0 + gross) * (1.0 - costs) - 1.0
    weights = pd.DataFrame(0.5, index=rebalance, columns=["A", "B"])
    return StrategyResult("S", gross, net, costs, turnover, weights, weights)


def test_turnover_and_costs_per_year() -> None:
    res = _strategy_result(504)  # two years
    # One-way notional: (1.0 + 0.4 + 0.2 + 0.6) / 2 = 1.1 over two years.
    assert m.turnover_per_year(res.turnover, 504) == pytest.approx(0.55, rel=1e-12)
    assert m.costs_per_year(res.costs) == pytest.approx(0.0022 / 2.0, rel=1e-12)
    assert np.isnan(m.turnover_per_year(res.turnover, 0))
    assert m.turnover_per_year(res.turnover, np.int64(504)) == pytest.approx(0.55, rel=1e-12)
    with pytest.raises(ValueError, match="n_days"):
        m.costs_per_year(res.costs, -1)


def test_summary_keys_values_and_definitions() -> None:
    res = _strategy_result()
    bench = pd.Series(
        np.random.default_rng(2).normal(0.0003, 0.01, 504), index=res.net_returns.index
    )
    s = m.summary(res, bench)
    assert tuple(s) == m.SUMMARY_KEYS
    assert set(m.SUMMARY_KEYS) <= set(m.METRIC_DEFINITIONS)
    assert all(isinstance(v, float) for v in s.values())
    net = res.net_returns.to_numpy()
    assert s["sharpe"] == pytest.approx(ep.sharpe_ratio(net), rel=1e-10)
    assert s["cagr"] == pytest.approx(ep.annual_return(net), rel=1e-10)
    assert s["beta"] == pytest.approx(ep.beta(net, bench.to_numpy()), rel=1e-10)
    assert s["turnover"] == pytest.approx(0.55, rel=1e-12)
    # Net of costs is below gross.
    assert s["total_return"] < m.total_return(res.gross_returns)
    no_bench = m.summary(res)
    assert np.isnan(no_bench["beta"]) and np.isnan(no_bench["information_ratio"])
