"""Online portfolio selection: the simplex projection against brute force and a QP solver, the
EG / OLMAR / PAMR updates against the papers' formulas, state and universe handling, a planted
mean-reversion market and its random-walk control, costs in the walk-forward engine, and the
best-stock oracle."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from sklearn.base import clone

from kabuto.backtest.canary import leak_canary
from kabuto.backtest.engine import WalkForward
from kabuto.data import Panel
from kabuto.errors import ConfigError, DataError
from kabuto.strategies import EqualWeight
from kabuto.strategies.olps import (
    OLMAR,
    PAMR,
    BestStockOracle,
    ExponentiatedGradient,
    project_simplex,
)

from helpers import ar1_market, price_panel


def online() -> list:
    return [
        ExponentiatedGradient(),
        OLMAR(),
        PAMR(),
        PAMR(variant="pamr1", label="PAMR-1"),
        PAMR(variant="pamr2", label="PAMR-2"),
    ]


# ------------------------------------------------------------------------ simplex projection


def brute_force_projection(v: np.ndarray) -> np.ndarray:
    """Try every support S: the projection onto the face's affine hull is v_S - theta. The
    closest feasible candidate is the projection (the optimum is one of them)."""
    n = len(v)
    best, best_distance = None, np.inf
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            s = list(support)
            w = np.zeros(n)
            w[s] = v[s] - (v[s].sum() - 1.0) / size
            if (w >= -1e-15).all():
                distance = np.sum((w - v) ** 2)
                if distance < best_distance:
                    best, best_distance = w, distance
    return best


def qp_projection(v: np.ndarray) -> np.ndarray:
    n = len(v)
    solution = minimize(
        lambda w: 0.5 * np.sum((w - v) ** 2),
        np.full(n, 1.0 / n),
        jac=lambda w: w - v,
        bounds=[(0.0, None)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert solution.success, solution.message
    return solution.x


def test_simplex_projection_equals_brute_force_and_a_qp_solver():
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = 1 + trial % 8
        v = rng.normal(0.0, [0.1, 1.0, 10.0][trial % 3], n) + rng.uniform(-1, 1)
        got = project_simplex(v)
        np.testing.assert_allclose(got, brute_force_projection(v), atol=1e-12)
        np.testing.assert_allclose(got, qp_projection(v), atol=1e-6)
        assert got.min() >= 0.0 and got.sum() == pytest.approx(1.0, abs=1e-12)


def test_simplex_projection_is_batched_scaled_and_idempotent():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(4, 3, 6))
    batched = project_simplex(v)
    for index in np.ndindex(4, 3):
        np.testing.assert_array_equal(batched[index], project_simplex(v[index]))
    # total z: the projection scales
    np.testing.assert_allclose(project_simplex(v, total=2.5), 2.5 * project_simplex(v / 2.5))
    # points already on the simplex (interior, faces, vertices) are fixed points
    points = np.vstack([rng.dirichlet(np.ones(6), 20), np.eye(6), [[0.5, 0.5, 0, 0, 0, 0]]])
    np.testing.assert_allclose(project_simplex(points), points, atol=1e-15)
    np.testing.assert_allclose(project_simplex(batched), batched, atol=1e-15)
    # shifting every coordinate by a constant does not move the projection
    np.testing.assert_allclose(project_simplex(v + 3.0), batched, atol=1e-12)
    for bad in (np.array([np.nan, 1.0]), np.zeros(0)):
        with pytest.raises(ValueError, match="project_simplex"):
            project_simplex(bad)
    with pytest.raises(ValueError, match="total"):
        project_simplex(np.ones(3), total=0.0)


# ------------------------------------------------------------------- single-step updates


def test_eg_step_is_the_multiplicative_update():
    prices = [[10, 20, 40], [10, 20, 40], [11, 18, 40], [11, 18, 40], [12.1, 18, 36]]
    panel = price_panel(prices)
    eg = ExponentiatedGradient(eta=0.05)
    np.testing.assert_array_equal(eg.allocate(panel.window(1, 1)), np.full(3, 1 / 3))
    # day 1 -> 2: x = (1.1, 0.9, 1.0), b = 1/3, b.x = 1
    got = eg.allocate(panel.window(2, 1))
    expected = np.exp(0.05 * np.array([1.1, 0.9, 1.0]))
    np.testing.assert_allclose(got, expected / expected.sum(), rtol=1e-14)
    # a two-day period (decisions at 2 and 4): x = p_4 / p_2 = (1.1, 1.0, 0.9)
    b, x = got, np.array([1.1, 1.0, 0.9])
    expected = b * np.exp(0.05 * x / (b @ x))
    np.testing.assert_allclose(eg.allocate(panel.window(4, 1)), expected / expected.sum())


def test_olmar_step_is_the_moving_average_reversion_update():
    prices = np.array(
        [
            [10, 10, 10],
            [11, 9, 10],
            [12, 8, 10],
            [11, 9, 11],
            [10, 10, 12],
            [9, 11, 11],
            [8, 12, 10],
        ]
    )
    panel = price_panel(prices)
    # a small epsilon: the step stays inside the simplex, no projection is active
    olmar = OLMAR(window=5, epsilon=1.1, lookback=5)
    np.testing.assert_array_equal(olmar.allocate(panel.window(5, 5)), np.full(3, 1 / 3))
    predicted = prices[2:7].mean(axis=0) / prices[6]  # MA of the last 5 prices over p_t
    b = np.full(3, 1 / 3)
    deviation = predicted - predicted.mean()
    step = (1.1 - b @ predicted) / (deviation @ deviation)
    assert step > 0 and (b + step * deviation).min() > 0  # preconditions of this case
    got = olmar.allocate(panel.window(6, 5))
    np.testing.assert_allclose(got, b + step * deviation, rtol=1e-13)
    assert got @ predicted == pytest.approx(1.1, rel=1e-13)  # just reaches epsilon
    # the paper's epsilon = 10: far outside the simplex, projected back
    olmar = OLMAR()
    olmar.allocate(panel.window(5, 5))
    step = (10.0 - b @ predicted) / (deviation @ deviation)
    got = olmar.allocate(panel.window(6, 5))
    np.testing.assert_allclose(got, project_simplex(b + step * deviation), atol=1e-15)
    assert got[0] == 1.0  # all in the asset furthest below its average
    # passive when the predicted return already reaches epsilon
    olmar = OLMAR(epsilon=0.5)
    olmar.allocate(panel.window(5, 5))
    np.testing.assert_array_equal(olmar.allocate(panel.window(6, 5)), b)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, [1.0, 0.0, 0.0]),  # tau = 0.5 / 0.02 = 25: projected onto the vertex
        ({"variant": "pamr1", "aggressiveness": 1.0}, [13 / 30, 7 / 30, 1 / 3]),  # tau = C = 1
        ({"variant": "pamr2", "aggressiveness": 10.0}, [6 / 7, 0.0, 1 / 7]),  # tau = 50 / 7
        ({"epsilon": 1.5}, [1 / 3, 1 / 3, 1 / 3]),  # b.x = 1 < epsilon: passive
    ],
)
def test_pamr_step_matches_hand_computation(settings, expected):
    # x = (0.9, 1.1, 1.0): b.x = 1, loss = 1 - 0.5, x - mean = (-0.1, 0.1, 0), norm^2 = 0.02.
    # PAMR-2: b - tau d = (22, -8, 7) / 21, theta = 4 / 21 -> (18, 0, 3) / 21. The weight
    # moves to the asset that fell.
    panel = price_panel([[10, 20, 40], [10, 20, 40], [9, 22, 40]])
    pamr = PAMR(**settings)
    pamr.allocate(panel.window(1, 1))
    np.testing.assert_allclose(pamr.allocate(panel.window(2, 1)), expected, atol=1e-14)


# ------------------------------------------------------------------------ state and universe


def test_weights_stay_on_the_simplex_on_a_wild_market():
    rng = np.random.default_rng(3)
    returns = np.exp(rng.normal(0, 0.2, (200, 6))) - 1.0  # 20% daily moves
    returns[50] = 0.0  # a day without moves: zero deviation, no update
    panel = price_panel(100 * np.cumprod(1 + returns, axis=0))
    for strategy in online():
        for t in range(5, 200):
            w = strategy.allocate(panel.window(t, strategy.lookback))
            assert np.isfinite(w).all() and w.min() >= 0.0, (strategy.name, t)
            assert w.sum() == pytest.approx(1.0, abs=1e-12), (strategy.name, t)


def test_the_update_uses_its_own_target_not_the_drifted_book():
    panel = ar1_market(0, 0.5)
    drifted = np.random.default_rng(0).dirichlet(np.ones(5))
    for strategy in online():
        a, b = clone(strategy), clone(strategy)
        for t in range(10, 30):
            window = panel.window(t, strategy.lookback)
            wa = a.allocate(window, prev_weights=drifted)  # what the engine passes
            wb = b.allocate(window)
            np.testing.assert_array_equal(wa, wb)
            np.testing.assert_array_equal(a.weights_, wa)
        # an empty book (nothing held yet) starts a new run from 1/N
        np.testing.assert_array_equal(a.allocate(panel.window(31, 5), np.zeros(5)), 0.2)
        with pytest.raises(ValueError, match="prev_weights"):
            a.allocate(panel.window(32, 5), np.full(4, 0.25))


def test_universe_changes_update_survivors_and_admit_newcomers_at_one_over_n():
    panel = price_panel(
        [[10, 20, 40, 50], [10, 20, 40, 50], [9, 22, 40, 55]], columns=["A", "B", "C", "D"]
    )
    eg = ExponentiatedGradient(eta=0.5)
    old = np.array([0, 1, 2])  # A, B, C
    b0 = eg.allocate(panel.window(1, 1, old))
    eg.weights_ = np.array([0.5, 0.3, 0.2])  # pretend an earlier history
    # A delists, D lists: update B and C (renormalised 0.6, 0.4), then D enters at 1/3
    got = eg.allocate(panel.window(2, 1, np.array([1, 2, 3])))
    b, x = np.array([0.6, 0.4]), np.array([1.1, 1.0])
    survivors = b * np.exp(0.5 * x / (b @ x))
    expected = np.append(survivors / survivors.sum() * 2 / 3, 1 / 3)
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    assert eg.assets_ == ("B", "C", "D")
    np.testing.assert_array_equal(b0, np.full(3, 1 / 3))
    # no survivor at all: a restart
    eg.allocate(panel.window(1, 1, np.array([0])))
    np.testing.assert_array_equal(eg.allocate(panel.window(2, 1, np.array([1, 2]))), 0.5)


def test_listing_and_delisting_in_the_walk_forward_engine():
    prices = ar1_market(4, 0.5, n_assets=5, n_days=200).to_frame()
    prices.iloc[:60, 1] = np.nan  # lists late
    prices.iloc[120:, 3] = np.nan  # delists
    panel = Panel(prices, source="listing test")
    result = WalkForward(rebalance=1, costs_bps=10.0).run(panel, online())
    for name, record in result.strategies.items():
        weights = record.target_weights
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12, err_msg=name)
        lookback = next(s.lookback for s in online() if s.name == name)
        assert (weights["A1"].loc[: panel.dates[60 + lookback - 1]] == 0).all()
        assert (weights["A1"].loc[panel.dates[60 + lookback] :] > 0).any()
        assert (weights["A3"].loc[panel.dates[120] :] == 0).all()
        assert weights["A3"].loc[: panel.dates[119]].gt(0).any()


# ------------------------------------------------------------- mean reversion and its control


def ucrp_and_online(panel: Panel) -> dict[str, pd.Series]:
    engine = WalkForward(rebalance=1, costs_bps=10.0)
    result = engine.run(panel, [EqualWeight(lookback=5, label="UCRP"), OLMAR(), PAMR()])
    return {name: record.gross_returns for name, record in result.strategies.items()}


def test_olmar_and_pamr_exploit_planted_mean_reversion():
    for seed in range(3):
        gross = ucrp_and_online(ar1_market(seed, phi=0.5))
        ucrp = np.log1p(gross["UCRP"]).sum()
        for name in ("OLMAR", "PAMR"):
            excess = gross[name] - gross["UCRP"]
            assert np.log1p(gross[name]).sum() > ucrp + 2.0, (seed, name)
            assert excess.mean() / excess.std() * np.sqrt(len(excess)) > 5, (seed, name)


def test_on_a_random_walk_they_do_not_beat_ucrp():
    excess: dict[str, list] = {"OLMAR": [], "PAMR": []}
    gaps: dict[str, list] = {"OLMAR": [], "PAMR": []}
    for seed in range(6):
        gross = ucrp_and_online(ar1_market(100 + seed, phi=1.0))
        for name in excess:
            excess[name].append((gross[name] - gross["UCRP"]).to_numpy())
            gaps[name].append(np.log1p(gross[name]).sum() - np.log1p(gross["UCRP"]).sum())
    for name, parts in excess.items():
        pooled = np.concatenate(parts)
        assert abs(pooled.mean() / pooled.std() * np.sqrt(len(pooled))) < 3, name
        assert np.mean(gaps[name]) < 0.5, name  # vs > 2 on the mean-reverting market


def test_the_leak_canary_passes():
    report = leak_canary(
        [ExponentiatedGradient(), OLMAR(), PAMR()], n_assets=8, n_days=1500, seed=5
    )
    assert not report["leaked"].any(), report


# ------------------------------------------------------------------------ engine and costs


def test_costs_are_applied_in_the_engine():
    panel = ar1_market(7, 0.5, n_days=300)
    result = WalkForward(rebalance=1, costs_bps=10.0).run(panel, online())
    for name, record in result.strategies.items():
        # every decision pays 10 bps of the traded notional (no delistings here)
        np.testing.assert_allclose(
            record.costs.to_numpy(), 1e-3 * record.turnover.to_numpy(), rtol=1e-12
        )
        assert record.turnover.iloc[0] == pytest.approx(1.0)  # buys 1/N from cash
        assert record.turnover.iloc[1:].mean() > 0.01, name  # and keeps trading
        assert (record.net_returns <= record.gross_returns).all()
        assert np.log1p(record.net_returns).sum() < np.log1p(record.gross_returns).sum()


def test_reset_makes_a_second_backtest_identical():
    panel = ar1_market(8, 0.7, n_days=200)
    strategies = online()
    engine = WalkForward(rebalance=2, costs_bps=10.0)
    first = engine.run(panel, strategies)
    assert all(hasattr(s, "weights_") for s in strategies)  # state was learned
    second = engine.run(panel, strategies)
    for name in first.names:
        pd.testing.assert_frame_equal(
            first[name].target_weights, second[name].target_weights, check_exact=True
        )
        pd.testing.assert_series_equal(first[name].net_returns, second[name].net_returns)
    # by hand: reset, or a decision date that goes back in time, starts over
    for strategy in online():
        runs = []
        for restart in ("reset", "rewind", "reset"):
            if restart == "reset":
                strategy.reset()
                assert not hasattr(strategy, "weights_")
            runs.append([strategy.allocate(panel.window(t, 5)) for t in range(10, 40)])
        np.testing.assert_array_equal(runs[0], runs[1])
        np.testing.assert_array_equal(runs[0], runs[2])
        assert not np.allclose(runs[0][-1], 0.2)  # the runs did move away from 1/N


def test_clone_and_settings():
    for strategy in online():
        strategy.allocate(ar1_market(0, 0.5, n_days=20).window(10, 5))
        copy = clone(strategy)
        assert copy.get_params() == strategy.get_params()
        assert not hasattr(copy, "weights_")
        assert strategy.stateful and strategy.long_only
    assert OLMAR().get_params() == {"window": 5, "epsilon": 10.0, "lookback": 5, "label": None}
    assert ExponentiatedGradient().eta == 0.05 and ExponentiatedGradient().lookback == 1
    assert PAMR().epsilon == 0.5 and PAMR().variant == "pamr" and PAMR().lookback == 1


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ExponentiatedGradient(eta=0.0), "eta=0.0"),
        (lambda: ExponentiatedGradient(eta=float("inf")), "eta=inf"),
        (lambda: ExponentiatedGradient(lookback=0), "lookback=0"),
        (lambda: OLMAR(window=1), "window=1"),
        (lambda: OLMAR(window=2.5), "window=2.5"),
        (lambda: OLMAR(epsilon=-1.0), "epsilon=-1.0"),
        (lambda: OLMAR(window=10), "lookback=5 is too short for window=10; use lookback >= 10"),
        (lambda: PAMR(epsilon=-0.1), "epsilon=-0.1"),
        (lambda: PAMR(epsilon=True), "epsilon=True"),
        (lambda: PAMR(variant="pamr3"), "variant='pamr3'.*'pamr1'"),
        (lambda: PAMR(variant="pamr1", aggressiveness=0), "aggressiveness=0"),
        (lambda: BestStockOracle("prices"), "not a Panel"),
    ],
)
def test_bad_settings_raise_config_errors(build, match):
    with pytest.raises(ConfigError, match=match):
        build()


def test_settings_changed_after_construction_are_checked_at_use():
    strategy = OLMAR().set_params(epsilon=0.0)
    with pytest.raises(ConfigError, match=r"epsilon=0\.0"):
        strategy.allocate(ar1_market(0, 0.5, n_days=20).window(10, 5))
    with pytest.raises(DataError, match="needs the last 5"):
        OLMAR().allocate(ar1_market(0, 0.5, n_days=20).window(10, 3))


# ------------------------------------------------------------------------------ the oracle


def test_best_stock_oracle_holds_the_best_asset_and_says_it_looks_ahead():
    rng = np.random.default_rng(9)
    returns = rng.normal(0.0, 0.01, (300, 4))
    returns[:, 2] += 0.003  # the best stock over the whole panel
    returns[:100, 1] += 0.005  # the best stock over the first 100 days
    prices = 100 * np.cumprod(1 + returns, axis=0)
    panel = price_panel(prices)
    oracle = BestStockOracle(panel)
    assert oracle.looks_ahead and "looks ahead" in oracle.name
    assert "LOOKS AHEAD" in BestStockOracle.__doc__
    np.testing.assert_allclose(oracle.total_returns(), prices[-1] / prices[0] - 1)
    result = WalkForward(rebalance=1, costs_bps=10.0).run(panel, [oracle])
    record = result[oracle.name]
    assert (record.target_weights["A2"] == 1.0).all()
    np.testing.assert_allclose(record.gross_returns, panel.returns[2:, 2], rtol=1e-12)
    assert record.costs.sum() == pytest.approx(1e-3)  # one purchase, then no trades
    early = BestStockOracle(panel, end=panel.dates[99], label="early")
    assert early.name == "early"
    np.testing.assert_array_equal(early.allocate(panel.window(50, 1)), [0, 1, 0, 0])
    # the best asset outside the universe: the best one inside it
    np.testing.assert_array_equal(oracle.allocate(panel.window(50, 1, np.array([0, 3]))), [1, 0])


def test_best_stock_oracle_refuses_other_panels_and_bad_periods():
    panel = ar1_market(0, 0.5, n_days=50)
    other = ar1_market(1, 0.5, n_days=50)
    with pytest.raises(DataError, match="differ from those of the oracle's panel"):
        BestStockOracle(panel).allocate(other.window(20, 1))
    with pytest.raises(ConfigError, match="start='2001-03-01'"):
        BestStockOracle(panel, start="2001-03-01", end="2001-01-05")
    with pytest.raises(ConfigError, match="not a date"):
        BestStockOracle(panel, start="someday")


def test_eg_at_a_huge_learning_rate_keeps_finite_weights():
    # an unheld asset's exponent far above the held ones' sent its exp to inf (0 * inf = NaN),
    # and a held one's far below underflowed them all to 0 (0 / 0)
    eg = ExponentiatedGradient(eta=2000.0)
    np.testing.assert_array_equal(
        eg._update(np.array([1.0, 0.0]), np.array([1.0, 1.36]), None), [1.0, 0.0]
    )
    w = eg._update(np.array([0.5, 0.5]), np.array([1.0, 1.5]), None)
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0)


def test_simplex_projection_of_entries_far_above_the_total():
    # u_1 - (u_1 - total) rounds to 0 once u_1 is 2**53 times the total: rho was 0 and the
    # projection all 0 or all inf
    np.testing.assert_array_equal(project_simplex(np.array([1e17, 1e17 + 16])), [0.0, 1.0])
    np.testing.assert_array_equal(project_simplex(np.array([-3e16, 3e16])), [0.0, 1.0])
    np.testing.assert_array_equal(project_simplex(np.array([5e20, -1.0, 5e20])), [0.5, 0.0, 0.5])


@pytest.mark.parametrize("strategy", [OLMAR(lookback=5), PAMR(), PAMR(variant="pamr1")])
def test_proportional_prices_do_not_move_the_book_on_rounding_noise(strategy):
    # B is A times 3, rounded to cents: their relatives differ only by rounding, and dividing by
    # that noise stepped OLMAR by 1e32 (non-finite weights); it is no signal to trade on
    rng = np.random.default_rng(0)
    a = np.round(100 * np.cumprod(1 + 0.01 * rng.standard_normal(60)), 2)
    frame = pd.DataFrame(
        {"A": a, "B": np.round(3 * a, 2)}, pd.bdate_range("2022-01-03", periods=60)
    )
    result = WalkForward(rebalance=1, costs_bps=10).run(Panel(frame), [strategy])
    weights = result[strategy.name].target_weights.to_numpy()
    assert np.isfinite(weights).all()
    assert np.abs(weights - 0.5).max() < 0.05  # near 1/2 each, as the rounded prices allow
