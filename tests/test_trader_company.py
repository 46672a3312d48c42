"""Trader-Company method: formulas, fitting, UTC variance, evolution on a planted formula.

Every check compares against an independent reference: direct numpy for the operator tables,
a slow per-trader / per-term / per-cell Python loop for the vectorised evaluation, the normal
equations solved with ``np.linalg.solve`` for the weights, the textbook Bayesian linear
regression posterior for UTC, and a planted formula for the evolution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kabuto.errors import ConfigError, DataError
from kabuto.strategies.trader_company import (
    ACTIVATIONS,
    OPERATORS,
    Population,
    TraderCompany,
    evaluate_terms,
    format_formula,
    lag_features,
    random_population,
    ridge_weights,
)

# ---------------------------------------------------------------- independent references

_SCALAR_OPS = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "max": lambda x, y: max(x, y),
    "min": lambda x, y: min(x, y),
    "gt": lambda x, y: 1.0 if x > y else 0.0,
    "lt": lambda x, y: 1.0 if x < y else 0.0,
    "first": lambda x, y: x,
    "second": lambda x, y: y,
}
_READS = {"first": "x", "second": "y"}
_SCALAR_ACTS = {
    "identity": lambda z: z,
    "tanh": math.tanh,
    "sign": lambda z: float((z > 0) - (z < 0)),
    "relu": lambda z: max(z, 0.0),
}


def slow_term(X, t, i, fx, dx, fy, dy, op, act):
    """One term at one cell, from scalars; NaN if an operand it reads is missing."""
    reads = _READS.get(op, "xy")
    x = float(X[t - dx, fx, i]) if t - dx >= 0 else math.nan
    y = float(X[t - dy, fy, i]) if t - dy >= 0 else math.nan
    if ("x" in reads and math.isnan(x)) or ("y" in reads and math.isnan(y)):
        return math.nan
    return _SCALAR_ACTS[act](_SCALAR_OPS[op](x, y))


def slow_terms(company, X, trader):
    """(n_terms, T, n) values of one trader's terms by loops."""
    pop = company.population_
    T, _, n = X.shape
    m = int(pop.n_terms[trader])
    out = np.empty((m, T, n))
    for j in range(m):
        args = (
            int(pop.feature_x[trader, j]),
            int(pop.delay_x[trader, j]),
            int(pop.feature_y[trader, j]),
            int(pop.delay_y[trader, j]),
            company.operators[int(pop.operator[trader, j])],
            company.activations[int(pop.activation[trader, j])],
        )
        for t in range(T):
            for i in range(n):
                out[j, t, i] = slow_term(X, t, i, *args)
    return out


def window_design(company, X, y, trader):
    """The trader's design matrix and target on its valid window cells (by loops)."""
    terms = slow_terms(company, X, trader).reshape(int(company.population_.n_terms[trader]), -1)
    target = y.reshape(-1)
    ok = np.isfinite(target) & np.isfinite(terms).all(axis=0)
    return terms[:, ok].T, target[ok]


def make_data(seed=0, T=60, F=3, n=5, listing=True):
    """Random features with a late-listing asset, targets with NaN where unknown."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, F, n))
    y = 0.1 * np.tanh(X[:, 0] - X[:, 1]) + rng.standard_normal((T, n))
    if listing:
        X[:15, :, 0] = np.nan  # asset 0 lists on row 15
        y[:15, 0] = np.nan
    y[-1] = np.nan
    return X, y


SMALL = dict(n_traders=12, max_terms=3, max_delay=3, n_rounds=4, seed=3)

# ---------------------------------------------------------------- tables and evaluation


@pytest.mark.parametrize("name", list(OPERATORS))
def test_operator_matches_numpy(name):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(50), rng.standard_normal(50)
    x[3], y[7], y[3] = np.nan, np.nan, 0.5
    y[10] = x[10]  # a tie for gt / lt
    expected = {
        "add": x + y,
        "sub": x - y,
        "mul": x * y,
        "max": np.maximum(x, y),
        "min": np.minimum(x, y),
        "gt": np.where(np.isnan(x) | np.isnan(y), np.nan, (x > y) * 1.0),
        "lt": np.where(np.isnan(x) | np.isnan(y), np.nan, (x < y) * 1.0),
        "first": x,
        "second": y,
    }[name]
    np.testing.assert_array_equal(OPERATORS[name].function(x, y), expected)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_matches_numpy(name):
    z = np.array([-2.0, -0.1, 0.0, 0.3, 5.0, np.nan])
    expected = {
        "identity": z,
        "tanh": np.tanh(z),
        "sign": np.sign(z),
        "relu": np.where(z > 0, z, 0.0) + 0 * z,
    }[name]
    np.testing.assert_array_equal(ACTIVATIONS[name].function(z), expected)


def test_vectorised_evaluation_equals_slow_reference():
    rng = np.random.default_rng(2)
    T, F, n, max_delay = 9, 3, 4, 3
    X = rng.standard_normal((T, F, n))
    X[rng.random(X.shape) < 0.1] = np.nan
    operators, activations = tuple(OPERATORS), tuple(ACTIVATIONS)
    pop = random_population(rng, 40, 4, F, max_delay, len(operators), len(activations))
    trader, slot = pop.pairs()
    args = pop.term_arrays(trader, slot)
    lagged = lag_features(X, max_delay)
    got = evaluate_terms(lagged, max_delay, *args, operators=operators, activations=activations)
    part = evaluate_terms(
        lagged, max_delay, *args, operators=operators, activations=activations, start=4, stop=7
    )
    expected = np.empty_like(got)
    for k in range(trader.size):
        fx, dx, fy, dy, op, act = (int(a[k]) for a in args)
        for t in range(T):
            for i in range(n):
                expected[k, t, i] = slow_term(
                    X, t, i, fx, dx, fy, dy, operators[op], activations[act]
                )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(part, got[:, 4:7])
    assert {OPERATORS[operators[o]].name for o in args[4]} == set(operators)  # all exercised
    # a delay beyond the padding would wrap to the end of the array: the future
    with pytest.raises(ValueError, match="exceeds max_delay=2"):
        evaluate_terms(lag_features(X, 2), 2, *args, operators=operators, activations=activations)


def test_trader_predictions_equal_weighted_slow_terms():
    X, y = make_data(seed=4)
    company = TraderCompany(**SMALL).fit(X, y)
    preds = company.predict_traders(X)
    for k in range(company.n_traders):
        terms = slow_terms(company, X, k)
        m = terms.shape[0]
        expected = np.tensordot(company.population_.weights[k, :m], terms, axes=1)
        np.testing.assert_allclose(preds[k], expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(np.isnan(preds[k]), np.isnan(expected))
    assert np.isnan(preds[:, :15, 0]).all()  # asset 0 not listed yet
    assert np.isfinite(preds[:, 20:, 1:]).all()


def test_formula_text_uses_feature_names():
    pop = Population(
        feature_x=np.array([[0, 2]]),
        delay_x=np.array([[2, 0]]),
        feature_y=np.array([[1, 0]]),
        delay_y=np.array([[1, 0]]),
        operator=np.array([[1, 3]]),  # sub, max
        activation=np.array([[1, 0]]),  # tanh, identity
        n_terms=np.array([2]),
        weights=np.array([[0.012, -0.5]]),
    )
    names = ("ret", "mkt", "vol")
    text = format_formula(pop, 0, names, tuple(OPERATORS), tuple(ACTIVATIONS))
    assert text == "+0.012 * tanh(ret[t-2] - mkt[t-1]) -0.5 * max(vol[t], ret[t])"


def test_a_term_held_twice_prints_once_with_the_summed_weight():
    pop = Population(
        feature_x=np.array([[0, 1, 0]]),
        delay_x=np.array([[3, 0, 3]]),
        feature_y=np.array([[0, 0, 1]]),  # the ignored operand differs: still the same term
        delay_y=np.array([[0, 0, 5]]),
        operator=np.array([[7, 0, 7]]),  # first, add, first
        activation=np.array([[0, 2, 0]]),  # identity, sign, identity
        n_terms=np.array([3]),
        weights=np.array([[0.25, -0.5, 0.5]]),
    )
    text = format_formula(pop, 0, ("ret", "mkt"), tuple(OPERATORS), tuple(ACTIVATIONS))
    assert text == "+0.75 * ret[t-3] -0.5 * sign(mkt[t] + ret[t])"


# ---------------------------------------------------------------- weights and UTC


def test_fitted_weights_equal_ridge_closed_form():
    X, y = make_data(seed=5)
    company = TraderCompany(**SMALL, window=40).fit(X, y)
    rows = slice(len(X) - 40, len(X))  # the trailing window (delays may read before it)
    for k in range(company.n_traders):
        m = int(company.population_.n_terms[k])
        terms = slow_terms(company, X, k)[:, rows].reshape(m, -1)
        target = y[rows].reshape(-1)
        ok = np.isfinite(target) & np.isfinite(terms).all(axis=0)
        A, target = terms[:, ok].T, target[ok]
        gram = A.T @ A
        lam = company.ridge * np.mean(np.diag(gram))
        expected = np.linalg.solve(gram + lam * np.eye(m), A.T @ target)
        np.testing.assert_allclose(company.population_.weights[k, :m], expected, rtol=1e-9)
        assert np.all(company.population_.weights[k, m:] == 0)
        score = np.sign(A @ expected) @ target
        assert company.scores_[k] == pytest.approx(score, rel=1e-9)


def test_ridge_weights_function_masks_cells_and_slots():
    rng = np.random.default_rng(6)
    terms = rng.standard_normal((3, 4, 30))
    target = rng.standard_normal(30)
    active = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=bool)
    valid = rng.random((3, 30)) > 0.2
    terms[~np.broadcast_to(valid[:, None, :], terms.shape)] = np.nan
    terms[~active] = 0.0
    weights, _, _ = ridge_weights(terms, target, valid, active, 0.01)
    for k in range(3):
        A = terms[k, active[k]][:, valid[k]].T
        gram = A.T @ A
        lam = 0.01 * np.mean(np.diag(gram))
        expected = np.linalg.solve(gram + lam * np.eye(len(gram)), A.T @ target[valid[k]])
        np.testing.assert_allclose(weights[k, active[k]], expected, rtol=1e-12)
        assert np.all(weights[k, ~active[k]] == 0)


@pytest.fixture(scope="module")
def twins():
    """A plain and a UTC company, same seed, same data (with a late-listing asset)."""
    X, y = make_data(seed=7, T=80)
    plain = TraderCompany(**SMALL).fit(X, y)
    utc = TraderCompany(**SMALL, uncertainty=True).fit(X, y)
    return X, y, plain, utc


def test_utc_posterior_is_bayesian_linear_regression_with_ridge_mean(twins):
    X, y, plain, utc = twins
    assert utc.population_.equals(plain.population_)  # same evolution, same weights
    for k in range(utc.n_traders):
        A, target = window_design(utc, X, y, k)
        m = A.shape[1]
        gram = A.T @ A
        kappa = utc.ridge * np.mean(np.diag(gram))
        ridge_w = np.linalg.solve(gram + kappa * np.eye(m), A.T @ target)
        noise = np.sum((target - A @ ridge_w) ** 2) / max(len(target) - m, 1)
        beta, alpha = 1.0 / noise, kappa / noise  # noise precision, prior precision
        cov = np.linalg.inv(alpha * np.eye(m) + beta * gram)
        mean = beta * cov @ A.T @ target
        np.testing.assert_allclose(utc.population_.weights[k, :m], mean, rtol=1e-8)
        np.testing.assert_allclose(utc.weight_covariances_[k, :m, :m], cov, rtol=1e-8)
        assert utc.noise_variances_[k] == pytest.approx(noise, rel=1e-9)


def test_utc_predictive_mean_equals_plain_prediction_exactly(twins):
    X, _, plain, utc = twins
    mean, variance = utc.predict_distribution(X)
    np.testing.assert_array_equal(mean, plain.predict(X))
    np.testing.assert_array_equal(utc.predict(X), plain.predict(X))
    assert np.isnan(mean[:15, 0]).all() and np.isnan(variance[:15, 0]).all()
    assert (variance[20:] > 0).all()
    # Long inputs are predicted in blocks of dates; still bit-identical.
    big = np.random.default_rng(0).standard_normal((4000, 3, 40))
    np.testing.assert_array_equal(utc.predict_distribution(big)[0], plain.predict(big))


@pytest.mark.parametrize("aggregation", ["mean", "top_mean"])
def test_company_variance_is_within_plus_between(aggregation):
    X, y = make_data(seed=8, T=70)
    utc = TraderCompany(**SMALL, uncertainty=True, aggregation=aggregation).fit(X, y)
    mean, variance = utc.predict_distribution(X)
    used = np.flatnonzero(utc.aggregation_weights_)
    mus, vs = [], []
    for k in used:
        terms = slow_terms(utc, X, k)
        m = terms.shape[0]
        mus.append(np.tensordot(utc.population_.weights[k, :m], terms, axes=1))
        quad = np.einsum("jti,jl,lti->ti", terms, utc.weight_covariances_[k, :m, :m], terms)
        vs.append(utc.noise_variances_[k] + quad)
    mus, vs = np.array(mus), np.array(vs)
    rows = slice(20, None)  # every trader defined here
    mu = mus[:, rows].mean(axis=0)
    expected = vs[:, rows].mean(axis=0) + ((mus[:, rows] - mu) ** 2).mean(axis=0)
    np.testing.assert_allclose(mean[rows], mu, rtol=1e-10)
    np.testing.assert_allclose(variance[rows], expected, rtol=1e-10)
    if aggregation == "top_mean":
        best = np.argsort(-utc.scores_, kind="stable")[: len(used)]
        assert set(best) == set(used)


def test_linear_aggregation_is_ridge_on_trader_predictions():
    X, y = make_data(seed=9, T=70, listing=False)
    company = TraderCompany(**SMALL, aggregation="linear").fit(X, y)
    P = company.predict_traders(X).reshape(company.n_traders, -1)
    P = np.where(np.isnan(P), 0.0, P)  # a trader without a prediction holds no position
    target = y.reshape(-1)
    ok = np.isfinite(target)
    P, target = P[:, ok], target[ok]
    gram = P @ P.T
    lam = company.ridge * np.trace(gram) / len(gram)
    beta = np.linalg.solve(gram + lam * np.eye(len(gram)), P @ target)
    np.testing.assert_allclose(company.aggregation_weights_, beta, rtol=1e-8)
    full = company.predict_traders(X)
    np.testing.assert_allclose(
        company.predict(X)[3:], np.tensordot(beta, full, axes=1)[3:], rtol=1e-9, atol=1e-14
    )


# ---------------------------------------------------------------- timing, seeds, warm start


def test_no_look_ahead():
    X, y = make_data(seed=10, T=80)
    company = TraderCompany(**SMALL, uncertainty=True).fit(X, y)
    base_mean, base_var = company.predict_distribution(X)
    base_traders = company.predict_traders(X)
    for t in (5, 40, 78):
        altered = X.copy()
        altered[t + 1 :] = np.random.default_rng(t).standard_normal(altered[t + 1 :].shape) * 9
        mean, var = company.predict_distribution(altered)
        np.testing.assert_array_equal(mean[: t + 1], base_mean[: t + 1])
        np.testing.assert_array_equal(var[: t + 1], base_var[: t + 1])
        np.testing.assert_array_equal(
            company.predict_traders(altered)[:, : t + 1], base_traders[:, : t + 1]
        )
        if t + 2 < len(X):
            assert not np.allclose(mean[t + 2 :], base_mean[t + 2 :], equal_nan=True)


def test_same_seed_same_formulas_different_seed_different():
    X, y = make_data(seed=11)
    a = TraderCompany(**SMALL).fit(X, y)
    b = TraderCompany(**SMALL).fit(X, y)
    c = TraderCompany(**{**SMALL, "seed": 4}).fit(X, y)
    assert a.population_.equals(b.population_)
    assert [s.formula for s in a.best_traders(12)] == [s.formula for s in b.best_traders(12)]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not a.population_.equals(c.population_)
    gen = TraderCompany(**{**SMALL, "seed": np.random.default_rng(3)}).fit(X, y)
    assert gen.population_.equals(a.population_)  # a Generator seeded alike draws alike


def test_fit_continues_from_previous_population():
    X, y = make_data(seed=12, T=90)
    company = TraderCompany(**SMALL, window=40).fit(X[:60], y[:60])
    before = company.population_.copy()
    rounds = len(company.score_history_)
    company.evolve(X, y, n_rounds=1)  # online: one more date range, one more round
    formula = ("feature_x", "delay_x", "feature_y", "delay_y", "operator", "activation")
    kept = [
        k
        for k in range(company.n_traders)
        if all(
            np.array_equal(getattr(company.population_, f)[k], getattr(before, f)[k])
            for f in formula
        )
        and company.population_.n_terms[k] == before.n_terms[k]
    ]
    fired = round(company.prune_fraction * company.n_traders)
    assert len(kept) >= company.n_traders - fired  # the survivors carry on
    assert len(company.score_history_) == rounds + 1
    company.fit(X, y)  # fit continues too (warm_start=True)
    assert len(company.score_history_) == 2 * rounds + 1
    # Continuing is not restarting: a fresh company on the full data ends elsewhere.
    fresh = TraderCompany(**SMALL, window=40).fit(X, y)
    assert not fresh.population_.equals(company.population_)
    # warm_start=False restarts from the seed: identical to the fresh company.
    company.set_params(warm_start=False).fit(X, y)
    assert company.population_.equals(fresh.population_)
    assert len(company.score_history_) == rounds


def test_continued_fit_educates_on_the_new_window():
    X, y = make_data(seed=13, T=90, listing=False)
    company = TraderCompany(**{**SMALL, "prune_fraction": 0.0}, window=30)
    company.fit(X[:60], y[:60])
    old = company.population_.weights.copy()
    company.evolve(X, y, n_rounds=1)  # a later window: the worst half refit, the rest keep
    changed = np.flatnonzero(~np.all(company.population_.weights == old, axis=1))
    assert len(changed) == round(company.educate_fraction * company.n_traders)
    for k in changed:
        terms = slow_terms(company, X, k)[:, -30:].reshape(company.population_.n_terms[k], -1)
        tgt = y[-30:].reshape(-1)
        ok = np.isfinite(tgt)
        A, target = terms[:, ok].T, tgt[ok]
        gram = A.T @ A
        lam = company.ridge * np.mean(np.diag(gram))
        expected = np.linalg.solve(gram + lam * np.eye(len(gram)), A.T @ target)
        np.testing.assert_allclose(company.population_.weights[k, : len(expected)], expected)


# ---------------------------------------------------------------- the planted formula


def planted_market(seed, T=1000, n=20, F=3):
    """y[t] = 0.3 * x0[t-1] * x1[t-2] + noise: no single feature predicts it, only the product."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, F, n))
    signal = np.full((T, n), np.nan)
    signal[2:] = X[1:-1, 0] * X[:-2, 1]
    y = 0.3 * signal + rng.standard_normal((T, n))
    y[-1] = np.nan
    return X, y, signal


def holds_planted_term(company, k):
    """Whether one of the k best traders has the term x0[t-1] * x1[t-2] (either order)."""
    pop = company.population_
    for s in company.best_traders(k):
        i = s.index
        for j in range(int(pop.n_terms[i])):
            operands = {
                (int(pop.feature_x[i, j]), int(pop.delay_x[i, j])),
                (int(pop.feature_y[i, j]), int(pop.delay_y[i, j])),
            }
            if company.operators[pop.operator[i, j]] == "mul" and operands == {(0, 1), (1, 2)}:
                return True
    return False


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evolution_finds_a_planted_formula(seed):
    X, y, signal = planted_market(1000 + seed)
    split = 700
    settings = dict(n_traders=60, max_terms=3, max_delay=3, seed=seed)
    company = TraderCompany(**settings, n_rounds=40).fit(X[:split], y[:split])
    test = slice(split, -1)
    planted = np.corrcoef(signal[test].ravel(), y[test].ravel())[0, 1]
    got = np.corrcoef(company.predict(X)[test].ravel(), y[test].ravel())[0, 1]
    assert holds_planted_term(company, 3), company.describe(3)
    assert got >= 0.8 * planted, (got, planted)
    # Control: the same company before any evolution neither holds the formula nor predicts.
    control = TraderCompany(**settings, n_rounds=0).fit(X[:split], y[:split])
    unevolved = np.corrcoef(control.predict(X)[test].ravel(), y[test].ravel())[0, 1]
    assert unevolved < 0.8 * planted


def test_best_traders_and_describe():
    X, y = make_data(seed=14)
    company = TraderCompany(**SMALL, uncertainty=True, feature_names=["ret", "mkt", "vol"])
    company.fit(X, y)
    best = company.best_traders(4)
    assert [s.rank for s in best] == [1, 2, 3, 4]
    assert [s.score for s in best] == sorted(company.scores_, reverse=True)[:4]
    for s in best:
        m = int(company.population_.n_terms[s.index])
        assert len(s.terms) == m and s.weights.shape == (m,)
        assert s.formula == company.formula(s.index)
        assert all(term in s.formula for term in s.terms)
        assert s.noise_std == pytest.approx(np.sqrt(company.noise_variances_[s.index]))
    text = company.describe(2)
    assert best[0].formula in text and best[1].formula in text
    assert "[t" in best[0].formula and any(n in best[0].formula for n in ("ret", "mkt", "vol"))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"n_traders": 1}, "n_traders=1"),
        ({"max_terms": 0}, "max_terms=0"),
        ({"max_delay": -1}, "max_delay=-1"),
        ({"operators": ["add", "pow"]}, "'pow'"),
        ({"operators": "add"}, "operators='add'"),
        ({"activations": []}, "activations=[]"),
        ({"activations": ["tanh", "tanh"]}, "duplicates"),
        ({"educate_fraction": 1.5}, "educate_fraction=1.5"),
        ({"prune_fraction": 1.0}, "prune_fraction=1.0"),
        ({"n_traders": 3, "prune_fraction": 0.9}, "fires all"),
        ({"aggregation": "median"}, "aggregation='median'"),
        ({"top_fraction": 0.0}, "top_fraction=0.0"),
        ({"ridge": 0.0}, "ridge=0.0"),
        ({"window": 1}, "window=1"),
        ({"n_rounds": -1}, "n_rounds=-1"),
        ({"n_components": 0}, "n_components=0"),
        ({"explore_fraction": -0.1}, "explore_fraction=-0.1"),
        ({"uncertainty": "yes"}, "uncertainty='yes'"),
        ({"uncertainty": True, "aggregation": "linear"}, "aggregation='linear'"),
        ({"prior_precision": -1.0}, "prior_precision=-1.0"),
        ({"seed": -3}, "seed=-3"),
        ({"feature_names": ["a", "a"]}, "duplicates"),
    ],
)
def test_bad_settings_raise_config_error(settings, fragment):
    with pytest.raises(ConfigError, match="TraderCompany") as info:
        TraderCompany(**settings)
    assert fragment in str(info.value) and "use" in str(info.value)


def test_bad_data_raise_data_error():
    X, y = make_data(seed=15)
    company = TraderCompany(**SMALL)
    with pytest.raises(ConfigError, match="not fitted"):
        company.predict(X)
    with pytest.raises(DataError, match=r"shape \(T, F, n\)"):
        company.fit(X[:, 0], y)
    with pytest.raises(DataError, match="y has shape"):
        company.fit(X, y[:, :3])
    bad = X.copy()
    bad[5, 1, 2] = np.inf
    with pytest.raises(DataError, match=r"X\[5, 1, 2\] is infinite"):
        company.fit(bad, y)
    with pytest.raises(DataError, match="finite targets"):
        company.fit(X, np.full_like(y, np.nan))
    with pytest.raises(ConfigError, match="feature_names has 2 names"):
        TraderCompany(**SMALL, feature_names=["a", "b"]).fit(X, y)
    company.fit(X, y)
    with pytest.raises(DataError, match="fitted with 3"):
        company.predict(X[:, :2])
    with pytest.raises(ConfigError, match="uncertainty=True"):
        company.predict_distribution(X)
    with pytest.raises(ConfigError, match="changed"):
        company.set_params(max_terms=5).fit(X, y)


@pytest.mark.parametrize(
    "change", [{"max_delay": 0}, {"operators": ("add",)}, {"max_terms": 1}, {"n_traders": 20}]
)
def test_settings_changed_after_fit_are_refused_before_predicting(change):
    # max_delay=0 made row t read rows at the end of X; the others raised IndexError or
    # described 20 traders of a population of 10
    X, y = make_data(seed=18)
    company = TraderCompany(**SMALL).fit(X, y)
    before = company.predict(X)
    original = {k: company.get_params()[k] for k in change}
    company.set_params(**change)
    for use in (lambda: company.predict(X), lambda: company.predict_traders(X), company.describe):
        with pytest.raises(ConfigError, match="changed since the population was created"):
            use()
    company.set_params(**original)
    np.testing.assert_array_equal(company.predict(X), before)


def test_empty_inputs_are_named():
    X, y = make_data(seed=19)
    with pytest.raises(DataError, match="X has no finite value in the fit window"):
        TraderCompany(**SMALL).fit(np.full_like(X, np.nan), y)
    company = TraderCompany(**SMALL).fit(X, y)
    with pytest.raises(ConfigError, match="traders is empty"):
        company.predict_traders(X, [])


def test_non_numeric_targets_are_data_errors():
    X, y = make_data(seed=16)
    company = TraderCompany(**SMALL)
    with pytest.raises(DataError, match="y is not numeric"):
        company.fit(X, np.full(y.shape, "a"))
    with pytest.raises(DataError, match="y is not numeric"):
        company.fit(X, [[1.0], [2.0, 3.0]])  # ragged


@pytest.mark.parametrize("index", [99, -1, 2.0, True])
def test_trader_indices_outside_the_population_are_config_errors(index):
    X, y = make_data(seed=17)
    company = TraderCompany(**SMALL).fit(X, y)
    last = company.n_traders - 1
    with pytest.raises(ConfigError, match=rf"traders: {index!r} is not a Trader.*\[0, {last}\]"):
        company.predict_traders(X, [0, index])
    with pytest.raises(ConfigError, match=rf"index: {index!r} is not a Trader"):
        company.formula(index)
    with pytest.raises(ConfigError, match="list of Trader indices"):
        company.predict_traders(X, [[0, 1]])
    # the last Trader is still a Trader, given as a numpy integer too
    np.testing.assert_array_equal(
        company.predict_traders(X, np.array([last])), company.predict_traders(X)[last:]
    )
    assert company.formula(np.int64(last)) == company.formula(last)
