"""Residual reversal and momentum baselines, and how they rank against the oracle."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from kabuto.backtest.engine import WalkForward
from kabuto.errors import ConfigError, DataError
from kabuto.evaluation.metrics import sharpe
from kabuto.sim.factor_market import factor_market
from kabuto.strategies.base import Strategy
from kabuto.strategies.oracle import ResidualOracle
from kabuto.strategies.residual import (
    default_components,
    factor_neutral_book,
    spectral_residuals,
)
from kabuto.strategies.residual_baselines import ResidualMomentum, ResidualReversal

from helpers import panel_from_returns


class RandomNeutral(Strategy):
    """Random scores made neutral to the true factors: a long-short book with no edge."""

    long_only: ClassVar[bool] = False

    def __init__(self, projection: np.ndarray, lookback: int = 252, seed: int = 0):
        self.projection, self.lookback, self.seed = projection, lookback, seed

    def allocate(self, window, prev_weights=None):
        rng = np.random.default_rng([self.seed, window.date.value // 10**9])
        return factor_neutral_book(rng.normal(size=window.n_assets), self.projection)


@pytest.fixture(scope="module")
def market():
    return factor_market(seed=21)


@pytest.fixture(scope="module")
def results(market):
    """One daily long-short backtest of everything, net of 10 bps (shared by the tests)."""
    strategies = [
        ResidualOracle(market),
        ResidualReversal(),
        ResidualMomentum(),
        RandomNeutral(market.projection()),
    ]
    engine = WalkForward(
        rebalance=1, retrain=None, costs_bps=10.0, long_only=False, max_leverage=1.0
    )
    run = engine.run(market.panel, strategies)
    return {name: sharpe(r.net_returns) for name, r in run.strategies.items()}


@pytest.fixture(scope="module")
def batch(market):
    return market.panel.batch(np.arange(300, 2500, 37), 252)


def _top_components(window: np.ndarray, c: int) -> np.ndarray:
    """Top-c principal directions of a (H, n) window, computed independently (eigh)."""
    centred = window - window.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    return vectors[:, ::-1][:, :c]


@pytest.mark.parametrize(
    "strategy",
    [
        ResidualReversal(),
        ResidualReversal(lookback=60, horizon=3, n_components=2, scale_by_variance=False),
        ResidualMomentum(),
        ResidualMomentum(lookback=120, horizon=60, skip=0, n_components=7),
    ],
    ids=repr,
)
def test_books_are_neutral_to_their_window_components_with_gross_one(strategy, batch):
    book = strategy.allocate_batch(batch)
    assert book.shape == (len(batch), batch.n_assets)
    np.testing.assert_allclose(np.abs(book).sum(axis=1), 1.0, rtol=1e-12)
    c = strategy.n_components or default_components(batch.n_assets)
    for d in range(len(batch)):
        u = _top_components(batch.returns[d, -strategy.lookback :], c)
        np.testing.assert_allclose(u.T @ book[d], 0.0, atol=1e-12)
    # the batched path and the one-window path agree
    single = np.stack([strategy.allocate(batch.window(d)) for d in range(len(batch))])
    np.testing.assert_allclose(book, single, rtol=0, atol=1e-12)


def test_reversal_score_is_minus_recent_residual_sum_over_variance(batch):
    strategy = ResidualReversal(horizon=4, n_components=3)
    residuals, projection = spectral_residuals(batch.returns, 3)
    scores = -residuals[:, -4:].sum(axis=1) / residuals.var(axis=1, ddof=1)
    np.testing.assert_allclose(
        strategy.allocate_batch(batch), factor_neutral_book(scores, projection), atol=1e-14
    )
    momentum = ResidualMomentum(horizon=200, skip=10, n_components=3, scale_by_variance=False)
    scores = residuals[:, -210:-10].sum(axis=1)
    np.testing.assert_allclose(
        momentum.allocate_batch(batch), factor_neutral_book(scores, projection), atol=1e-14
    )


def test_reversal_earns_net_of_costs_and_momentum_less(results):
    assert results["ResidualReversal"] > 1.0  # right sign for mean reversion, net of 10 bps
    assert results["ResidualMomentum"] < results["ResidualReversal"] - 1.0


def test_oracle_beats_the_baselines_and_a_random_neutral_book(results):
    oracle = results["ResidualOracle"]
    assert oracle > results["ResidualReversal"]
    assert oracle > results["ResidualMomentum"]
    assert oracle > results["RandomNeutral"] + 3.0
    assert results["RandomNeutral"] < 0  # no edge, daily costs


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: ResidualReversal(lookback=1), "lookback=1"),
        (lambda: ResidualReversal(horizon=0), "horizon=0"),
        (lambda: ResidualReversal(lookback=20, horizon=21), "horizon=21"),
        (lambda: ResidualReversal(n_components=-1), "n_components=-1"),
        (lambda: ResidualReversal(n_components=2.5), "n_components=2.5"),
        (lambda: ResidualReversal(scale_by_variance="yes"), "scale_by_variance"),
        (lambda: ResidualMomentum(skip=-1), "skip=-1"),
        (lambda: ResidualMomentum(horizon=240, skip=21), "horizon \\+ skip"),
        (lambda: ResidualMomentum(horizon=True), "horizon=True"),
    ],
)
def test_bad_settings_are_config_errors(make, pattern):
    with pytest.raises(ConfigError, match=pattern):
        make()


def test_settings_are_checked_again_at_use_and_against_the_universe(batch):
    strategy = ResidualReversal()
    strategy.set_params(horizon=500)  # bypasses __init__
    with pytest.raises(ConfigError, match="horizon=500"):
        strategy.allocate_batch(batch)
    with pytest.raises(ConfigError, match="n_components=50 is not allowed for 50 assets"):
        ResidualReversal(n_components=50).allocate_batch(batch)


def test_missing_or_constant_returns_are_data_errors():
    rng = np.random.default_rng(0)
    returns = 0.01 * rng.standard_normal((80, 6))
    returns[0] = np.nan
    returns[:40, 2] = np.nan  # listed late
    panel = panel_from_returns(returns)
    with pytest.raises(DataError, match="missing returns for asset 'A2'"):
        ResidualReversal(lookback=60, n_components=1).allocate(panel.window(79, 60))
    flat = returns.copy()
    flat[:, 2] = 0.0  # a constant price
    flat[0] = np.nan
    window = panel_from_returns(flat).window(79, 60)
    with pytest.raises(DataError, match=r"'A2' in the window .* residual variance below"):
        # with no component removed, the residual of a constant asset is exactly 0
        ResidualReversal(lookback=60, n_components=0).allocate(window)
    with pytest.raises(DataError, match=r"'A2' in the window .* residual variance below"):
        # with components removed, rounding noise (1e-19) that took the whole book
        ResidualReversal(lookback=60, n_components=2).allocate(window)


def test_components_a_window_cannot_spare_are_config_errors(batch):
    """A demeaned window of H returns spans at most H - 1 directions: removing C >= H - 1 of
    them leaves residuals of rounding noise (variance ~1e-35) that a variance-scaled score
    would trade at gross 1."""
    with pytest.raises(ConfigError, match=r"n_components=3 .*lookback=4.*n_components <= 2"):
        ResidualReversal(lookback=4, horizon=1, n_components=3)  # at construction
    with pytest.raises(ConfigError, match=r"n_components=59 .*lookback=60"):
        ResidualMomentum(lookback=60, horizon=20, n_components=59)
    # the default C (one per ten assets, 5 of 50 here) is known only with the universe
    with pytest.raises(ConfigError, match=r"n_components=5 \(the default.*lookback=6"):
        ResidualReversal(lookback=6, horizon=1).allocate_batch(batch)
    book = ResidualReversal(lookback=7, horizon=1).allocate_batch(batch)  # C = H - 2 is fine
    np.testing.assert_allclose(np.abs(book).sum(axis=1), 1.0, rtol=1e-12)
    window = batch.returns[0, -4:]
    with pytest.raises(ConfigError, match="spectral_projection: n_components=3"):
        spectral_residuals(window, 3)
    residuals, _ = spectral_residuals(window, 2)
    assert residuals.var(axis=0).sum() > 1e-3 * window.var(axis=0).sum()  # one real direction


def test_residuals_the_components_explain_entirely_are_data_errors():
    rng = np.random.default_rng(1)
    factor = 0.01 * rng.standard_normal((80, 1))
    returns = factor * np.linspace(0.5, 1.5, 6)  # one factor, no idiosyncratic part
    returns[0] = np.nan
    window = panel_from_returns(returns).window(79, 60)
    # positive rounding noise once passed the check and was traded at gross 1
    with pytest.raises(DataError, match="removed components explain entirely"):
        ResidualReversal(lookback=60, n_components=1).allocate(window)
    book = ResidualReversal(lookback=60, n_components=0).allocate(window)  # nothing removed
    np.testing.assert_allclose(np.abs(book).sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("make", [ResidualReversal, ResidualMomentum])
def test_the_default_components_fit_a_universe_of_one_asset(make):
    # One per ten assets, at least one, would be every direction of a single asset.
    assert [default_components(n) for n in (1, 2, 10, 25)] == [0, 1, 1, 2]
    panel = panel_from_returns(np.random.default_rng(4).normal(0, 0.01, (120, 1)))
    strategy = (
        make(lookback=30) if make is ResidualReversal else make(horizon=20, skip=5, lookback=30)
    )
    rec = WalkForward(rebalance=5, long_only=False).run(panel, [strategy])[strategy.name]
    assert np.allclose(rec.target_weights.abs().sum(axis=1), 1.0)  # gross one, as documented
