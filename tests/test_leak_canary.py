"""The leak canary: on zero-mean noise no honest strategy earns a significant Sharpe ratio, and a
strategy that peeks at tomorrow is caught."""

from __future__ import annotations

import numpy as np
import pytest

from kabuto.backtest.canary import leak_canary, noise_panel
from kabuto.errors import ConfigError
from kabuto.strategies import STRATEGIES, SklearnPortfolio, make_strategy
from kabuto.strategies.base import Strategy

from helpers import LongShortRandom, RandomWeights


class Peeker(Strategy):
    """Cheats: holds whichever asset rises most tomorrow, read from a panel it should not see."""

    def __init__(self, panel, lookback=20):
        self.panel, self.lookback = panel, lookback

    def allocate(self, window, prev_weights=None):
        t = self.panel.dates.get_loc(window.date)
        w = np.zeros(window.n_assets)
        w[np.argmax(self.panel.returns[t + 1])] = 1.0
        return w


class HalfPeeker(Peeker):
    """Cheats a little: tilts equal weight 10% toward tomorrow's best asset."""

    def allocate(self, window, prev_weights=None):
        return 0.9 * np.full(window.n_assets, 1 / window.n_assets) + 0.1 * super().allocate(window)


# settings that fit a 60-day lookback (and keep the learned strategy quick)
SMALL = {
    "residual_momentum": {"horizon": 40, "skip": 5},
    "deep_residual": {"epochs": 5, "hidden_sizes": (16,)},
    "eiie": {"n_steps": 200, "n_rolling_steps": 20, "num_threads": 1},
    "rl_agent": {
        "total_timesteps": 512,
        "rolling_timesteps": 128,
        "episode_length": 64,
        "n_envs": 2,
        "num_threads": 1,
    },
    "trader_company": {"vol_window": 40, "n_traders": 30, "max_terms": 3, "n_rounds": 10},
}


def test_every_registered_strategy_passes_the_canary():
    strategies = [
        make_strategy(name, lookback=60, **SMALL.get(name, {}))
        for name in STRATEGIES
        if STRATEGIES[name] is not SklearnPortfolio
    ]
    report = leak_canary(strategies, seed=11)
    assert len(report) == len(strategies)
    assert not report["leaked"].any(), report


def test_honest_z_scores_are_standard_normal():
    # Weights drawn at random know nothing of tomorrow: over independent noise markets their
    # z-scores should be N(0, 1), which is what makes |z| > 4 a rare false alarm.
    z = np.array(
        [
            leak_canary([RandomWeights(seed=s)], n_assets=4, n_days=150, seed=s)["z"].iloc[0]
            for s in range(100)
        ]
    )
    assert abs(z.mean()) < 0.3  # 3 standard errors of the mean of 100
    assert 0.8 < z.std(ddof=1) < 1.2  # about 3 standard errors of the standard deviation


def test_one_name_in_both_books_is_an_error():
    with pytest.raises(ConfigError, match="two strategies are named 'twin'"):
        leak_canary([RandomWeights(label="twin"), LongShortRandom(label="twin")])


def test_the_canary_catches_strategies_that_peek():
    panel = noise_panel(10, 3000, seed=11)
    report = leak_canary([Peeker(panel, lookback=20), HalfPeeker(panel, lookback=20)], seed=11)
    assert report.loc["Peeker", "leaked"] and report.loc["HalfPeeker", "leaked"]
    assert report.loc["HalfPeeker", "z"] > 4
