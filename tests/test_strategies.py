"""Classical strategies: estimators, solvers against closed forms and optimality conditions, the
batch/single-window contract, the registry and parameter validation.

Parity with skfolio lives in test_strategies_skfolio.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.cluster.hierarchy as sch
from scipy.spatial.distance import squareform
from sklearn.base import BaseEstimator, clone
from sklearn.covariance import LedoitWolf

from kabuto.backtest import WalkForward
from kabuto.data import Panel
from kabuto.errors import ArgumentError, ConfigError, DataError
from kabuto.strategies import (
    STRATEGIES,
    BuyAndHold,
    EigenPortfolio,
    EqualRiskContribution,
    EqualWeight,
    HierarchicalRiskParity,
    InverseVolatility,
    MaximumSharpe,
    MaximumSortino,
    MeanVariance,
    MinimumVariance,
    SklearnPortfolio,
    make_strategy,
    qp,
)
from kabuto.strategies.base import held_weights
from kabuto.strategies.covariance import ledoit_wolf, sample_covariance
from kabuto.strategies.olps import OLMAR
from kabuto.strategies.seriation import leaf_order, optimal_leaf_ordering

from helpers import panel_from_returns

LOOKBACK = 252
DATES = [300, 1500, 3000, 4500, 6000, 7500, 8300]


@pytest.fixture(scope="module")
def panel() -> Panel:
    from skfolio.datasets import load_sp500_dataset

    return Panel(load_sp500_dataset(), source="bundled S&P 500 (skfolio)")


@pytest.fixture(scope="module")
def batch(panel):
    return panel.batch(DATES, LOOKBACK)


def synthetic_panel(returns: np.ndarray) -> Panel:
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    dates = pd.bdate_range("2001-01-01", periods=len(returns))
    columns = [f"A{i}" for i in range(returns.shape[1])]
    return Panel(pd.DataFrame(prices, index=dates, columns=columns), source="synthetic")


def factor_returns(seed: int, n_days: int, n_assets: int, drift: float = 3e-4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, (n_days, 1))
    beta = rng.uniform(0.5, 1.5, (1, n_assets))
    vol = rng.uniform(0.005, 0.02, n_assets)
    return drift + market @ beta + rng.normal(0, 1, (n_days, n_assets)) * vol


def all_strategies() -> list:
    from skfolio.optimization import InverseVolatility as SkInverseVolatility

    return [
        EqualWeight(),
        InverseVolatility(),
        BuyAndHold(),
        MinimumVariance(),
        MinimumVariance(covariance="ledoit_wolf"),
        MeanVariance(risk_aversion=5.0),
        MaximumSharpe(),
        MaximumSortino(),
        EqualRiskContribution(),
        HierarchicalRiskParity(),
        EigenPortfolio(),
        EigenPortfolio(component=2),
        SklearnPortfolio(SkInverseVolatility(), long_only=True),
    ]


# ------------------------------------------------------------------------------- estimators


def test_sample_covariance_matches_numpy(batch):
    got = sample_covariance(batch.returns)
    for d in range(len(batch)):
        ref = np.cov(batch.returns[d], rowvar=False)
        np.testing.assert_allclose(got[d], ref, rtol=1e-12, atol=1e-18)
        assert np.array_equal(got[d], got[d].T)


@pytest.mark.parametrize("shape", [(252, 20), (40, 60), (30, 1)])
def test_ledoit_wolf_matches_sklearn(batch, shape):
    length, n = shape
    if shape == (252, 20):
        windows = np.asarray(batch.returns)
    else:  # fewer returns than assets (singular sample covariance), and one asset
        rng = np.random.default_rng(length)
        windows = rng.normal(0.0005, 0.01, (3, length, n)) + rng.normal(0, 0.01, (3, length, 1))
    cov, shrinkage = ledoit_wolf(windows)
    for d in range(len(windows)):
        ref = LedoitWolf().fit(windows[d])
        assert np.abs(cov[d] - ref.covariance_).max() < 1e-12
        assert abs(shrinkage[d] - ref.shrinkage_) < 1e-12


def test_estimates_are_shared_through_the_batch_cache(panel):
    batch = panel.batch(DATES, LOOKBACK)
    MinimumVariance(covariance="ledoit_wolf").allocate_batch(batch)
    cached = dict(batch._cache)
    EqualRiskContribution(covariance="ledoit_wolf").allocate_batch(batch)
    for key, value in cached.items():
        assert batch._cache[key] is value  # reused, not recomputed


# ---------------------------------------------------------------------------- closed forms


def test_min_variance_equals_unconstrained_solution_when_interior():
    rng = np.random.default_rng(1)
    returns = rng.normal(0.0003, 1.0, (260, 8)) * rng.uniform(0.009, 0.012, 8)
    window = synthetic_panel(returns).window(259, 252)
    cov = np.cov(window.returns, rowvar=False)
    closed = np.linalg.solve(cov, np.ones(8))
    closed /= closed.sum()
    assert (closed > 0.01).all()  # precondition: no bound is active
    np.testing.assert_allclose(MinimumVariance().allocate(window), closed, atol=1e-12)


def test_risk_parity_with_diagonal_covariance_is_inverse_volatility():
    sigma = np.array([0.1, 0.2, 0.05, 0.4, 0.3])
    weights, error = qp.risk_budgeting_weights(np.diag(sigma**2)[None], np.full(5, 0.2))
    expected = (1 / sigma) / (1 / sigma).sum()
    np.testing.assert_allclose(weights[0], expected, atol=1e-14)
    assert error[0] <= 1e-12


def test_risk_parity_equalises_risk_contributions(batch):
    strategy = EqualRiskContribution()
    weights = strategy.allocate_batch(batch)
    assert strategy.max_error_ <= 1e-12
    for d, w in enumerate(weights):
        cov = np.cov(batch.returns[d], rowvar=False)
        contributions = w * (cov @ w)
        np.testing.assert_allclose(contributions / contributions.sum(), 1 / len(w), atol=1e-13)


def test_inverse_volatility(batch):
    weights = InverseVolatility().allocate_batch(batch)
    inv = 1 / batch.returns.std(axis=1, ddof=1)
    np.testing.assert_allclose(weights, inv / inv.sum(axis=1, keepdims=True), atol=1e-15)


def test_max_sharpe_with_diagonal_covariance():
    sigma = np.array([0.1, 0.2, 0.05, 0.4])
    mu = np.array([0.01, 0.03, 0.002, 0.05])
    weights = qp.max_sharpe_weights(np.diag(sigma), mu)
    expected = (mu / sigma**2) / (mu / sigma**2).sum()
    np.testing.assert_allclose(weights, expected, atol=1e-12)


def test_max_sharpe_without_positive_mean_falls_back_or_raises():
    returns = factor_returns(3, 300, 6, drift=-0.004)
    window = synthetic_panel(returns).window(299, 252)
    assert (window.returns.mean(axis=0) < 0).all()
    np.testing.assert_allclose(
        MaximumSharpe().allocate(window), MinimumVariance().allocate(window), atol=1e-15
    )
    with pytest.raises(DataError, match="fallback='min_risk'"):
        MaximumSharpe(fallback="raise").allocate(window)
    weights = MaximumSortino().allocate(window)
    assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-12
    with pytest.raises(DataError, match="positive mean"):
        MaximumSortino(fallback="raise").allocate(window)


def test_min_variance_on_singular_covariance_is_optimal():
    """L < n: check the KKT conditions directly and beat random feasible portfolios."""
    returns = factor_returns(7, 120, 80)
    window = synthetic_panel(returns).window(119, 60)  # 60 returns, 80 assets
    cov = np.cov(window.returns, rowvar=False)
    assert np.linalg.matrix_rank(cov) < 80
    w = MinimumVariance(lookback=60).allocate(window)
    assert w.min() >= 0 and abs(w.sum() - 1) < 1e-14
    grad = cov @ w  # KKT: (Sigma w)_i = nu on the support, >= nu off it, nu = w'Sigma w
    nu = w @ grad
    support = w > 1e-12
    scale = np.abs(np.diag(cov)).max()
    assert np.abs(grad[support] - nu).max() <= 1e-10 * scale
    assert grad[~support].min() >= nu - 1e-10 * scale
    rng = np.random.default_rng(0)
    random = rng.dirichlet(np.ones(80) * 0.3, size=1000)
    assert nu <= np.einsum("ki,ij,kj->k", random, cov, random).min()


def test_max_sortino_satisfies_kkt_and_both_solvers_agree(batch):
    for d in range(len(batch)):
        centred = batch.returns[d] - batch.returns[d].mean(axis=0)
        mu = batch.returns[d].mean(axis=0)
        y = qp.min_semideviation_on_slice(centred, mu)
        y_aug = qp._semideviation_augmented(centred, mu)
        np.testing.assert_allclose(y / y.sum(), y_aug / y_aug.sum(), atol=1e-9)
        # KKT of min f(y) = ||min(c y, 0)||^2 s.t. mu'y = 1, y >= 0: grad f = nu mu on the
        # support (nu = 2 f(y), by homogeneity), grad f >= nu mu off it.
        down = np.minimum(centred @ y, 0.0)
        grad = 2 * centred.T @ down
        nu = 2 * down @ down
        support = y > 1e-12 * y.max()
        scale = np.abs(grad).max()
        assert np.abs(grad[support] - nu * mu[support]).max() <= 1e-9 * scale
        assert (grad[~support] - nu * mu[~support]).min() >= -1e-9 * scale


def test_mean_variance_satisfies_kkt_and_limits(batch):
    gamma = 8.0
    weights = MeanVariance(risk_aversion=gamma).allocate_batch(batch)
    for d, w in enumerate(weights):
        cov = LedoitWolf().fit(batch.returns[d]).covariance_
        mu = batch.returns[d].mean(axis=0)
        grad = gamma * cov @ w - mu  # = nu on the support, >= nu off it
        support = w > 1e-12
        nu = grad[support].mean()
        scale = np.abs(mu).max()
        assert np.abs(grad[support] - nu).max() <= 1e-10 * scale
        assert grad[~support].min() >= nu - 1e-10 * scale
    # infinite risk aversion is minimum variance; tiny risk aversion buys the best asset
    np.testing.assert_allclose(
        MeanVariance(risk_aversion=1e9).allocate_batch(batch),
        MinimumVariance(covariance="ledoit_wolf").allocate_batch(batch),
        atol=1e-6,
    )
    greedy = MeanVariance(risk_aversion=1e-8).allocate_batch(batch)
    np.testing.assert_array_equal(greedy.argmax(axis=1), batch.returns.mean(axis=1).argmax(axis=1))
    assert greedy.max(axis=1).min() > 1 - 1e-6


def test_eigen_portfolio_is_the_scaled_principal_component(batch):
    weights = EigenPortfolio().allocate_batch(batch)
    for d, w in enumerate(weights):
        corr = np.corrcoef(batch.returns[d], rowvar=False)
        v = np.linalg.eigh(corr)[1][:, -1]
        q = v / batch.returns[d].std(axis=0, ddof=1)
        q = q / np.abs(q).sum() * np.sign(q.sum())
        np.testing.assert_allclose(w, q, atol=1e-12)
    second = EigenPortfolio(component=1).allocate_batch(batch)
    np.testing.assert_allclose(np.abs(second).sum(axis=1), 1.0, atol=1e-14)
    assert (second.sum(axis=1) > 0).all() and (second < 0).any()


# ------------------------------------------------------------------------------- seriation


@pytest.mark.parametrize("n", [3, 12, 40, 120])
def test_optimal_leaf_ordering_matches_scipy(n):
    for trial in range(40 if n < 100 else 4):
        returns = factor_returns(1000 * n + trial, 200, n)
        corr = np.corrcoef(returns, rowvar=False)
        distance = np.sqrt(np.clip(0.5 * (1 - corr), 0, 1))
        condensed = squareform(distance, checks=False)
        for method in ("ward", "average", "single"):
            linkage = sch.linkage(condensed, method)
            ref = sch.leaves_list(sch.optimal_leaf_ordering(linkage, condensed))
            got = sch.leaves_list(optimal_leaf_ordering(linkage, distance))
            np.testing.assert_array_equal(got, ref)
            np.testing.assert_array_equal(leaf_order(distance, method), ref)


# ---------------------------------------------------------------------- strategy contract


def test_allocate_batch_equals_stacked_allocate(panel, batch):
    for strategy in all_strategies():
        weights = strategy.allocate_batch(batch)
        assert weights.shape == (len(batch), batch.n_assets)
        stacked = np.stack([strategy.allocate(panel.window(t, LOOKBACK)) for t in DATES])
        np.testing.assert_allclose(weights, stacked, atol=1e-13, err_msg=repr(strategy))
        assert np.isfinite(weights).all()
        if strategy.long_only:
            assert weights.min() >= 0, strategy
            np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
        else:
            np.testing.assert_allclose(np.abs(weights).sum(axis=1), 1.0, atol=1e-12)


def test_windows_of_a_column_subset_are_laid_out_like_any_other(panel):
    # numpy's sums round by memory layout: a subset of columns came out in Fortran order, so a
    # date's weights moved in the last bit with the batch it was cut into (a listing after it)
    columns = np.arange(1, panel.n_assets, 2)
    t = DATES[0]
    alone = panel.window(t, LOOKBACK, columns)
    spaced = panel.batch([t, t + 3, t + 4], LOOKBACK, columns)  # not evenly spaced
    assert alone.returns.flags.c_contiguous and spaced.returns.flags.c_contiguous
    for strategy in (InverseVolatility(), MinimumVariance(long_only=False), MaximumSharpe()):
        one = strategy.allocate(alone)
        np.testing.assert_array_equal(one, strategy.allocate_batch(spaced)[0])
        np.testing.assert_array_equal(
            one, strategy.allocate_batch(panel.batch([t, t + 1], LOOKBACK, columns))[0]
        )


def test_longer_windows_use_the_last_lookback_returns(panel):
    short = panel.batch(DATES, 126)
    long = panel.batch(DATES, LOOKBACK)
    for strategy in (MinimumVariance(lookback=126), HierarchicalRiskParity(lookback=126)):
        np.testing.assert_allclose(
            strategy.allocate_batch(long), strategy.allocate_batch(short), atol=1e-13
        )
    with pytest.raises(DataError, match="lookback=252"):
        MinimumVariance().allocate_batch(short)


def test_missing_returns_raise(panel):
    window = panel.window(3000, LOOKBACK)
    returns = np.array(window.returns)
    returns[5, 3] = np.nan
    bad = type(window)(
        returns=returns, prices=window.prices, dates=window.dates, assets=window.assets
    )
    with pytest.raises(DataError, match=window.assets[3]):
        MinimumVariance().allocate(bad)


def test_constant_asset_raises_where_volatility_divides(panel):
    window = panel.window(3000, LOOKBACK)
    returns = np.array(window.returns)
    returns[:, 4] = 0.0
    flat = type(window)(
        returns=returns, prices=window.prices, dates=window.dates, assets=window.assets
    )
    for strategy in (InverseVolatility(), HierarchicalRiskParity(), EqualRiskContribution()):
        with pytest.raises(DataError, match=f"{window.assets[4]}.*zero variance"):
            strategy.allocate(flat)
    with pytest.raises(DataError, match="zero variance"):
        EigenPortfolio().allocate(flat)
    w = MinimumVariance().allocate(flat)  # a riskless asset is the minimum-variance portfolio
    np.testing.assert_allclose(w[4], 1.0)


def test_singular_covariance_errors_name_the_remedy():
    window = synthetic_panel(factor_returns(2, 80, 40)).window(79, 30)
    with pytest.raises(DataError, match="ledoit_wolf"):
        MeanVariance(lookback=30, covariance="sample").allocate(window)
    assert np.isfinite(MeanVariance(lookback=30).allocate(window)).all()
    # a long-short pair with zero variance: no equal-risk-contribution portfolio exists
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, (300, 1))
    window = synthetic_panel(np.hstack([r, -r, rng.normal(0, 0.01, (300, 2))])).window(299, 252)
    with pytest.raises(DataError, match="ledoit_wolf"):
        EqualRiskContribution().allocate(window)
    assert EqualRiskContribution(covariance="ledoit_wolf").allocate(window).min() > 0
    # singular whatever rounding lets Cholesky do: as many returns as assets (rank L - 1), or
    # two assets 1e-7 apart (their weights were +-6e6)
    for seed in range(10):
        few = synthetic_panel(np.random.default_rng(seed).normal(0, 0.01, (21, 20)))
        with pytest.raises(DataError, match=r"singular \(20 assets, 20 returns\)"):
            MinimumVariance(lookback=20, long_only=False).allocate(few.window(20, 20))
    r = np.random.default_rng(0).normal(0, 0.01, (300, 5))
    r[:, 3] = r[:, 1] * (1 + 1e-7)
    with pytest.raises(DataError, match="singular"):
        MinimumVariance(long_only=False).allocate(synthetic_panel(r).window(299, 252))
    r[:, 3] = r[:, 1] * (1 + 1e-3) + np.random.default_rng(1).normal(0, 1e-5, 300)
    assert np.isfinite(
        MinimumVariance(long_only=False).allocate(synthetic_panel(r).window(299, 252))
    ).all()
    # 3 returns of 4 assets: Newton's system turns singular on the way (a LinAlgError before)
    window = synthetic_panel(np.random.default_rng(9).normal(0, 0.01, (5, 4))).window(4, 3)
    with pytest.raises(DataError, match=r"Newton system became singular.*'ledoit_wolf' or a"):
        EqualRiskContribution(lookback=3).allocate(window)


def test_buy_and_hold_never_trades(panel):
    strategy = BuyAndHold()
    window = panel.window(3000, LOOKBACK)
    np.testing.assert_allclose(strategy.allocate(window), 1 / 20)
    np.testing.assert_allclose(strategy.allocate(window, np.zeros(20)), 1 / 20)
    drifted = np.random.default_rng(0).dirichlet(np.ones(20)) * 0.97
    np.testing.assert_array_equal(strategy.allocate(window, drifted), drifted)
    with pytest.raises(ValueError, match="prev_weights"):
        strategy.allocate(window, np.full(19, 1 / 19))
    assert BuyAndHold.stateful and not MinimumVariance.stateful


def test_strategies_clone_and_name():
    for strategy in all_strategies():
        copy = clone(strategy)
        params, copied = strategy.get_params(deep=False), copy.get_params(deep=False)
        if isinstance(strategy, SklearnPortfolio):  # a clone of the estimator, equal settings
            estimator, copied_estimator = params.pop("estimator"), copied.pop("estimator")
            assert copied_estimator is not estimator
            assert repr(copied_estimator) == repr(estimator)
        assert copied == params
        assert type(copy) is type(strategy)
    assert MinimumVariance(label="mv").name == "mv"
    assert MinimumVariance().name == "MinimumVariance"


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
def test_sklearn_portfolio_wraps_skfolio(batch):
    from skfolio.optimization import MeanRisk

    tight = {"tol_gap_abs": 1e-14, "tol_gap_rel": 1e-14, "tol_feas": 1e-14, "max_iter": 2000}
    wrapped = SklearnPortfolio(MeanRisk(solver_params=tight), long_only=True)
    np.testing.assert_allclose(
        wrapped.allocate_batch(batch), MinimumVariance().allocate_batch(batch), atol=1e-4
    )
    with pytest.raises(ConfigError, match="estimator"):
        SklearnPortfolio(object(), long_only=True)
    with pytest.raises(ConfigError, match="long_only"):
        SklearnPortfolio(MeanRisk(), long_only="yes")
    with pytest.raises(DataError, match=r"_Toy\.fit failed on the window ending .*no solution"):
        SklearnPortfolio(_Toy(fail=True), long_only=True).allocate_batch(batch)
    with pytest.raises(DataError, match="non-finite weights for the window ending"):
        SklearnPortfolio(_Toy(fail=False), long_only=True).allocate_batch(batch)


class _Toy(BaseEstimator):
    """An estimator that fails, or returns NaN weights."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def fit(self, X, y=None):
        if self.fail:
            raise RuntimeError("no solution")
        self.weights_ = np.full(X.shape[1], np.nan)
        return self


# -------------------------------------------------------------------------------- registry


def test_registry_builds_every_name():
    from skfolio.optimization import EqualWeighted

    for name, cls in STRATEGIES.items():
        params = {"estimator": EqualWeighted(), "long_only": True} if name == "skfolio" else {}
        strategy = make_strategy(name, lookback=300, **params)
        assert isinstance(strategy, cls) and strategy.lookback == 300
    assert make_strategy("hrp", covariance="ledoit_wolf").covariance == "ledoit_wolf"


def test_registry_rejects_unknown_names_and_parameters():
    with pytest.raises(ConfigError, match=r"unknown strategy 'minvar'.*'min_variance'.*'hrp'"):
        make_strategy("minvar")
    with pytest.raises(
        ConfigError, match=r"'gamma'.*allowed: lookback, covariance, long_only, label"
    ):
        make_strategy("min_variance", gamma=2)
    with pytest.raises(ConfigError, match=r"needs parameter.*'estimator'"):
        make_strategy("skfolio")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("min_variance", {"covariance": "oas"}, "covariance='oas'.*'sample', 'ledoit_wolf'"),
        ("hrp", {"linkage": "wards"}, "linkage='wards'.*'ward'"),
        ("hrp", {"optimal_ordering": "yes"}, "optimal_ordering='yes'"),
        ("max_sharpe", {"fallback": "cash"}, "fallback='cash'.*'min_risk', 'raise'"),
        ("mean_variance", {"risk_aversion": -1.0}, "risk_aversion=-1.0"),
        ("mean_variance", {"risk_aversion": 1e-14}, "risk_aversion=1e-14 is below 1e-08"),
        ("eigen", {"component": -1}, "component=-1"),
        ("risk_parity", {"lookback": 1}, "lookback=1"),
        ("inverse_volatility", {"lookback": 2.5}, "lookback=2.5"),
    ],
)
def test_bad_values_raise_config_error(name, params, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy(name, **params)


def test_bad_values_set_later_raise_at_first_use(batch):
    strategy = MinimumVariance()
    strategy.set_params(covariance="shrunk")
    with pytest.raises(ConfigError, match="covariance='shrunk'"):
        strategy.allocate_batch(batch)
    with pytest.raises(ConfigError, match="component=20"):
        EigenPortfolio(component=20).allocate_batch(batch)


@pytest.mark.parametrize("covariance", ["sample", "ledoit_wolf"])
def test_unconstrained_minimum_variance_is_the_closed_form(covariance):
    from kabuto.data import load_sp500

    panel = load_sp500()
    window = panel.window(2000, 252)
    ours = MinimumVariance(covariance=covariance, long_only=False).allocate(window)
    r = np.asarray(window.returns)
    cov = np.cov(r, rowvar=False) if covariance == "sample" else LedoitWolf().fit(r).covariance_
    x = np.linalg.inv(cov) @ np.ones(r.shape[1])
    np.testing.assert_allclose(ours, x / x.sum(), atol=1e-10)
    assert (ours < 0).any()  # it does short here: the constraint matters
    long_only = MinimumVariance(covariance=covariance).allocate(window)
    assert ours @ cov @ ours <= long_only @ cov @ long_only


@pytest.mark.parametrize(
    ("n_assets", "lookback", "longer"), [(3, 60, False), (30, 20, True), (20, 25, True)]
)
def test_a_singular_covariance_suggests_what_can_fix_it(n_assets, lookback, longer):
    # Two assets in lockstep: no lookback makes the sample covariance invertible, but a window
    # up to twice the assets may be singular in floating point alone, so a longer one is
    # suggested there.
    returns = np.random.default_rng(5).normal(0, 0.01, (lookback + 30, n_assets))
    returns[:, 1] = returns[:, 0]
    panel = panel_from_returns(returns)
    strategy = MinimumVariance(lookback=lookback, covariance="sample", long_only=False)
    with pytest.raises(DataError, match="is singular") as error:
        WalkForward(rebalance=5, long_only=False).run(panel, [strategy])
    assert "move in lockstep" in str(error.value)
    assert ("longer lookback" in str(error.value)) == longer


@pytest.mark.parametrize(
    "strategy", [BuyAndHold(lookback=5), OLMAR(lookback=5)], ids=lambda s: type(s).__name__
)
def test_previous_weights_must_be_a_finite_long_only_book(strategy):
    window = panel_from_returns(np.full((30, 3), 0.001)).window(20, 5)
    strategy.allocate(window, prev_weights=np.array([0.2, 0.3, 0.5 + 1e-12]))  # rounding
    for bad, match in (
        ([np.nan, 0.6, 0.2], "not all finite"),
        ([-0.1, 0.6, 0.2], "not a long-only book"),
        ([0.5, 0.6, 0.2], r"sum 1\.3\) are not a long-only book"),  # borrowed cash
    ):
        with pytest.raises(ArgumentError, match=f"{type(strategy).__name__}: prev_weights"):
            strategy.allocate(window, prev_weights=np.array(bad))
        with pytest.raises(ArgumentError, match=match):
            strategy.allocate(window, prev_weights=np.array(bad))
    # a long-short caller may pass a short book
    assert held_weights("x", np.array([-0.5, 1.5, 0.0]), window, long_only=False) is not None


def test_buy_and_hold_checks_a_lookback_set_after_construction():
    strategy = BuyAndHold(lookback=5).set_params(lookback=0)
    window = panel_from_returns(np.full((30, 3), 0.001)).window(20, 5)
    with pytest.raises(ConfigError, match="BuyAndHold: lookback=0"):
        strategy.allocate(window)


def test_a_classical_backtest_from_a_config_loads_no_torch(tmp_path):
    # strategies load their module on first use, the config registry too: importing torch and
    # stable-baselines3 took seconds of every CLI backtest and sweep worker
    config = tmp_path / "run.toml"
    config.write_text(
        '[data]\nsource = "gbm"\nn_assets = 3\nn_days = 300\n\n[report]\nn_boot = 100\n\n'
        '[[strategies]]\nname = "min_variance"\nlookback = 60\n\n'
        '[[strategies]]\nname = "hrp"\nlookback = 60\n'
    )
    script = (  # a backtest, then what a sweep worker does with a trial
        "import sys\n"
        "from kabuto.experiment.config import load_config\n"
        "from kabuto.experiment.executors import TrialCall, run_trial\n"
        "from kabuto.experiment.run import run_config\n"
        f"config = load_config({str(config)!r})\n"
        "run_config(config, None)\n"
        f"run_trial(TrialCall({str(tmp_path / 'store')!r}, 'key', 'trial', config, 1))\n"
        "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert set(STRATEGIES) >= {"min_variance", "rl_agent"}  # listed without importing them
