"""EIIE with portfolio-vector memory (Jiang, Xu and Liang 2017) against independent references.

References: kabuto's numpy transaction remainders, torch's gradcheck, hand computations of the
reward and of the memory's indexing, scipy's chi-square test of the batch-start distribution,
the walk-forward engine (no look-ahead, reset, listings) and the leak canary, and the issue's
check in miniature: a planted mean-reverting market (EIIE beats UCRP) and its random-walk
control (it does not).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chisquare
from sklearn.base import clone

from kabuto.backtest.canary import leak_canary
from kabuto.backtest.engine import WalkForward
from kabuto.data import Panel
from kabuto.data.panel import Window
from kabuto.errors import ConfigError, DataError
from kabuto.strategies import EqualWeight
from kabuto.strategies.rl import proportional_remainder, transaction_remainder
from kabuto.strategies.rl.eiie import (
    EIIE,
    EIIENetwork,
    PortfolioVectorMemory,
    geometric_starts,
    log_growth,
    pvm_batch_reward,
    torch_proportional_remainder,
    torch_transaction_remainder,
)

from helpers import ar1_market, range_signal_market, with_high_low

torch.set_num_threads(1)  # tiny networks: threads only add overhead on shared cores

SMALL = {
    "lookback": 10,
    "batch_size": 20,
    "n_steps": 60,
    "n_rolling_steps": 10,
    "num_threads": 1,
}


def history(panel: Panel, t: int) -> Window:
    """What the engine's fit at index t sees: every price up to t."""
    return panel.window(t, t)


@pytest.fixture(scope="module")
def panel() -> Panel:
    return ar1_market(0, 0.5, n_assets=4, n_days=160)


@pytest.fixture(scope="module")
def fitted(panel) -> EIIE:
    return EIIE(**SMALL).fit(history(panel, 120))


def _weights(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """Random weights over cash and n assets, cash first, with exact zeros now and then."""
    w = rng.dirichlet(np.ones(n + 1), size=rows)
    w[rng.random(w.shape) < 0.15] = 0.0
    w[w.sum(axis=1) == 0, 0] = 1.0
    return w / w.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------ the network


@pytest.mark.parametrize("n_features", [1, 3])
def test_network_outputs_weights_on_the_simplex_cash_first(n_features):
    torch.manual_seed(0)
    net = EIIENetwork(n_features, window=12)
    assert (net.conv1.out_channels, net.conv2.out_channels) == (2, 20)
    assert net.conv1.kernel_size == (1, 3) and net.conv2.kernel_size == (1, 10)
    assert net.score.in_channels == 21 and net.score.kernel_size == (1, 1)
    prices = 1.0 + 0.05 * torch.randn(4, n_features, 6, 12)
    prices[..., -1] = 1.0
    prev = torch.distributions.Dirichlet(torch.ones(7)).sample((4,))[:, 1:]
    w = net(prices, prev)
    assert w.shape == (4, 7)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(4))
    assert not torch.allclose(net(prices, torch.zeros(4, 6)), w)  # it reads its holdings
    assert net(prices[:, :, :1], prev[:, :1]).shape == (4, 2)  # any number of assets
    with torch.no_grad():
        net.cash_bias.fill_(30.0)  # the bias belongs to the first (cash) entry
    assert (net(prices, prev)[:, 0] > 0.999).all()


def test_network_is_permutation_equivariant_across_assets():
    torch.manual_seed(1)
    net = EIIENetwork(2, window=8).double()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 1.0)  # far from initialisation, so nothing is accidentally symmetric
    prices = torch.exp(0.1 * torch.randn(5, 2, 7, 8, dtype=torch.float64))
    prev = torch.distributions.Dirichlet(torch.ones(8, dtype=torch.float64)).sample((5,))[:, 1:]
    w = net(prices, prev)
    for seed in range(3):
        perm = torch.randperm(7, generator=torch.Generator().manual_seed(seed))
        permuted = net(prices[:, :, perm], prev[:, perm])
        torch.testing.assert_close(permuted[:, 0], w[:, 0], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(permuted[:, 1:], w[:, 1:][:, perm], rtol=1e-12, atol=1e-14)


def test_allocation_is_invariant_to_price_scale(fitted, panel):
    rng = np.random.default_rng(2)
    for t in (125, 140, 155):
        window = panel.window(t, 10)
        prev = rng.dirichlet(np.ones(5))[1:]
        base = fitted.allocate(window, prev)
        for scale in (7.3, rng.uniform(0.01, 100.0, window.n_assets)):
            scaled = Window(window.returns, window.prices * scale, window.dates, window.assets)
            np.testing.assert_allclose(fitted.allocate(scaled, prev), base, rtol=0, atol=1e-7)
    assert base.min() > 0 and base.sum() < 1


# ------------------------------------------------------------------------ transaction costs


@pytest.mark.parametrize("c", [0.0, 1e-3, 0.01, 0.2])
def test_torch_remainders_equal_kabutos_numpy_costs(c):
    rng = np.random.default_rng(int(c * 1e4))
    drifted, target = _weights(rng, 300, 6), _weights(rng, 300, 6)
    target[:5] = drifted[:5]  # no trade: mu = 1
    d, w = torch.from_numpy(drifted), torch.from_numpy(target)
    np.testing.assert_allclose(
        torch_proportional_remainder(d, w, c).numpy(),
        proportional_remainder(drifted, target, c),
        rtol=0,
        atol=1e-15,
    )
    rates = rng.uniform(0, 2 * c, 6)
    np.testing.assert_allclose(
        torch_proportional_remainder(d, w, torch.from_numpy(rates)).numpy(),
        proportional_remainder(drifted, target, rates),
        rtol=0,
        atol=1e-15,
    )
    exact = torch_transaction_remainder(d, w, c).numpy()
    np.testing.assert_allclose(exact, transaction_remainder(drifted, target, c), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(exact[:5], 1.0)
    np.testing.assert_allclose(
        torch_transaction_remainder(d, w, c, 0.5 * c).numpy(),
        transaction_remainder(drifted, target, c, 0.5 * c),
        rtol=0,
        atol=1e-14,
    )


def test_torch_remainders_have_the_right_gradients():
    rng = np.random.default_rng(3)
    drifted = torch.from_numpy(rng.dirichlet(np.ones(5), 4))
    target = torch.from_numpy(rng.dirichlet(np.ones(5), 4)).requires_grad_(True)
    # away from the kinks of |.| and (.)^+, finite differences are the reference
    assert torch.autograd.gradcheck(
        lambda w: torch_transaction_remainder(drifted, w, 0.05), (target,)
    )
    assert torch.autograd.gradcheck(
        lambda w: torch_proportional_remainder(drifted, w, 0.05), (target,)
    )


# --------------------------------------------------------------------------- the reward


def test_log_growth_equals_a_hand_computation():
    w = torch.tensor([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0]], dtype=torch.float64)
    drifted = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.1, 0.9], [1.0, 0.95, 1.02]], dtype=torch.float64)
    mu = torch_proportional_remainder(drifted, w, 0.001)
    # period 1: traded 0.1, mu = 0.9999, w.y = 0.2 + 0.55 + 0.27 = 1.02
    # period 2: traded 0.25 + 0.75 = 1, mu = 0.999, w.y = 1.02
    torch.testing.assert_close(mu, torch.tensor([0.9999, 0.999], dtype=torch.float64))
    expected = 0.5 * (np.log(0.9999 * 1.02) + np.log(0.999 * 1.02))
    assert float(log_growth(w, y, mu)) == pytest.approx(expected, rel=1e-14)


def test_a_training_batch_reads_drifts_writes_and_scores_as_by_hand():
    prices = np.array(
        [[10, 20], [11, 19], [12, 18], [11.5, 19.5], [12.5, 19], [12, 20], [13, 21]], dtype=float
    )
    rng = np.random.default_rng(4)
    memory_rows = rng.dirichlet(np.ones(3), 7)
    memory = PortfolioVectorMemory(
        pd.bdate_range("2020-01-01", periods=7), ("A", "B"), torch.from_numpy(memory_rows)
    )
    torch.manual_seed(0)
    net = EIIENetwork(1, window=3)
    c = 0.0025
    rows = torch.tensor([3, 4])
    reward, out = pvm_batch_reward(
        net,
        torch.from_numpy(prices[:, None]),  # (T, F = 1, n)
        memory,
        rows,
        lambda d, w: torch_proportional_remainder(d, w, c),
    )
    logs = []
    for b, s in enumerate((3, 4)):
        y_now = np.r_[1.0, prices[s] / prices[s - 1]]
        drifted = memory_rows[s - 1] * y_now / (memory_rows[s - 1] @ y_now)
        x = (prices[s - 2 : s + 1] / prices[s]).T  # (n, L): the last 3 closes up to s
        with torch.no_grad():
            w = net(
                torch.tensor(x[None, None], dtype=torch.float32),
                torch.tensor(drifted[None, 1:], dtype=torch.float32),
            )[0].double()
        torch.testing.assert_close(out[b].detach().double(), w)
        w = w.numpy()
        mu = 1.0 - c * np.abs(w[1:] - drifted[1:]).sum()
        y_next = np.r_[1.0, prices[s + 1] / prices[s]]
        logs.append(np.log(mu * (w @ y_next)))
    assert float(reward.detach()) == pytest.approx(np.mean(logs), rel=1e-5)
    assert reward.requires_grad
    # the outputs are stored in the rows of their dates; the rest is untouched
    np.testing.assert_allclose(memory.weights[[3, 4]].numpy(), out.detach().numpy())
    untouched = [0, 1, 2, 5, 6]
    np.testing.assert_allclose(memory.weights[untouched].numpy(), memory_rows[untouched], 1e-7)


# ----------------------------------------------------------------- portfolio-vector memory


def test_memory_stores_and_returns_the_right_rows():
    dates = pd.bdate_range("2020-01-01", periods=10)
    memory = PortfolioVectorMemory(dates, ("A", "B"))
    np.testing.assert_array_equal(memory.weights.numpy(), np.full((10, 3), 1 / 3, np.float32))
    written = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    memory.write(torch.tensor([2, 5]), written.requires_grad_(True))
    torch.testing.assert_close(memory.read(torch.tensor([5, 2])), written.detach()[[1, 0]])
    copy = memory.read(torch.tensor([2]))
    copy += 1.0  # reads are copies
    torch.testing.assert_close(memory.read(torch.tensor([2]))[0], written.detach()[0])
    assert not memory.weights.requires_grad

    # a longer history over the same assets keeps the rows of known dates, takes recorded
    # decisions over the same assets for new dates, and starts the others uniform
    later = pd.bdate_range(dates[3], periods=10)  # dates[3:] and 3 new dates
    recorded = {
        later[7]: (("A", "B"), np.array([0.0, 0.4, 0.6])),
        later[8]: (("A", "C"), np.array([0.2, 0.2, 0.6])),  # another universe: ignored
        dates[5]: (("A", "B"), np.array([1.0, 0.0, 0.0])),  # known date: the memory wins
    }
    extended = memory.extended(later, ("A", "B"), recorded)
    np.testing.assert_array_equal(extended.weights[:7].numpy(), memory.weights[3:].numpy())
    torch.testing.assert_close(extended.weights[7], torch.tensor([0.0, 0.4, 0.6]))
    np.testing.assert_array_equal(extended.weights[8:].numpy(), np.full((2, 3), 1 / 3, np.float32))
    # another asset set: the memory restarts (only decisions over that set are used)
    other = memory.extended(later, ("A", "C"), recorded)
    assert other.assets == ("A", "C")
    torch.testing.assert_close(other.weights[8], torch.tensor([0.2, 0.2, 0.6]))
    mask = np.ones(10, bool)
    mask[8] = False
    np.testing.assert_array_equal(other.weights[mask].numpy(), np.full((9, 3), 1 / 3, np.float32))


# ----------------------------------------------------------------------------- sampling


def test_batch_starts_follow_the_truncated_geometric_distribution():
    generator = torch.Generator().manual_seed(0)
    low, high, beta, size = 10, 59, 0.05, 200_000
    starts = geometric_starts(low, high, beta, size, generator).numpy()
    assert starts.min() == low and starts.max() == high  # bounds respected, both reached
    support = np.arange(low, high + 1)
    pmf = (1 - beta) ** (high - support)
    pmf /= pmf.sum()
    counts = np.bincount(starts - low, minlength=len(support))
    assert chisquare(counts, size * pmf).pvalue > 1e-3
    # recent starts are favoured: the last start is drawn (1 - beta)^-49 ~ 12x the first
    assert counts[-1] > 8 * counts[0]
    assert starts.mean() > (low + high) / 2
    # same generator state, same draws; degenerate and extreme cases
    again = geometric_starts(low, high, beta, size, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(starts, again)
    np.testing.assert_array_equal(geometric_starts(7, 7, 0.3, 50), 7)
    assert (geometric_starts(0, 99, 0.999, 1000) >= 98).all()
    flat = geometric_starts(0, 9, 1e-9, 100_000, torch.Generator().manual_seed(1)).numpy()
    assert chisquare(np.bincount(flat, minlength=10)).pvalue > 1e-3  # tiny beta: uniform
    with pytest.raises(ValueError, match="high"):
        geometric_starts(5, 4, 0.1, 3)
    with pytest.raises(ValueError, match="beta"):
        geometric_starts(0, 4, 0.0, 3)


# ---------------------------------------------------------------------- the strategy: fit


def test_fit_learns_state_and_allocates_valid_weights(fitted, panel):
    assert fitted.stateful and fitted.long_only
    assert fitted.memory_.weights.shape == (120, 5)  # every date of the history, n + 1
    assert fitted.memory_.assets == panel.assets
    assert fitted.n_fits_ == 1 and fitted.n_steps_done_ == 60 and len(fitted.rewards_) == 60
    assert np.isfinite(fitted.rewards_).all()
    w = fitted.allocate(panel.window(130, 10), np.zeros(4))
    assert w.shape == (4,) and w.min() >= 0 and w.sum() <= 1
    # without prev_weights: the same as holding nothing
    np.testing.assert_array_equal(fitted.allocate(panel.window(130, 10)), w)
    with pytest.raises(ValueError, match="prev_weights"):
        fitted.allocate(panel.window(130, 10), np.full(3, 0.25))
    with pytest.raises(DataError, match="needs the last 10"):
        fitted.allocate(panel.window(130, 5))


def test_fitting_the_same_history_again_starts_afresh(panel):
    strategy = EIIE(**SMALL)
    first = strategy.fit(history(panel, 100)).allocate(panel.window(110, 10))
    again = strategy.fit(history(panel, 100)).allocate(panel.window(110, 10))
    np.testing.assert_array_equal(first, again)
    assert strategy.n_fits_ == 1
    # a later history continues (rolling) and an earlier one starts over
    strategy.fit(history(panel, 110))
    assert strategy.n_fits_ == 2 and strategy.n_steps_done_ == 70
    np.testing.assert_array_equal(
        strategy.fit(history(panel, 100)).allocate(panel.window(110, 10)), first
    )


def test_set_params_after_a_fit_builds_a_new_network(panel, tmp_path):
    """A changed model setting trains a new network; a changed training budget does not."""
    strategy = EIIE(**SMALL).fit(history(panel, 100))
    for change in ({"lookback": 15}, {"hidden_sizes": (3, 7)}, {"learning_rate": 0.01}):
        strategy.set_params(**change)
        # before the next fit, the network is not the settings' (a file load could not read)
        with pytest.raises(ConfigError, match=f"{next(iter(change))} changed since the last"):
            strategy.allocate(panel.window(110, 20))
        with pytest.raises(ConfigError, match="changed since the last fit"):
            strategy.save(tmp_path / "eiie.pt")
        strategy.fit(history(panel, 110))  # a later history
        # a fresh network of the new settings, as a new strategy would train
        fresh = EIIE(**(strategy.get_params() | {"label": None})).fit(history(panel, 110))
        assert strategy.n_fits_ == 1 and strategy.n_steps_done_ == 60, change
        for p, q in zip(strategy.network_.parameters(), fresh.network_.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
        assert strategy.optimizer_.param_groups[0]["lr"] == strategy.learning_rate
        strategy.fit(history(panel, 100))  # back to a first fit for the next change
    strategy.set_params(n_rolling_steps=5, num_threads=2, label="other")
    strategy.fit(history(panel, 110))
    assert strategy.n_fits_ == 2 and strategy.n_steps_done_ == 65


def test_rolling_fits_keep_the_memory_and_add_the_decisions_taken(panel):
    strategy = EIIE(**(SMALL | {"n_rolling_steps": 0}))
    strategy.fit(history(panel, 100))
    before = strategy.memory_.weights.clone()
    params = [p.detach().clone() for p in strategy.network_.parameters()]
    decided = {t: strategy.allocate(panel.window(t, 10)) for t in (102, 105)}
    strategy.fit(history(panel, 106))
    memory = strategy.memory_
    assert len(memory) == 106 and memory.dates[-1] == panel.dates[106]
    torch.testing.assert_close(memory.weights[:100], before)  # known dates kept
    for t, w in decided.items():  # decisions stored with their cash weight first
        row = memory.weights[t - 1].double().numpy()  # history row t-1 is panel row t
        np.testing.assert_allclose(row[1:], w, rtol=1e-6)
        assert row[0] == pytest.approx(1 - w.sum(), rel=1e-6)
    uniform = [i for i in range(100, 106) if i + 1 not in decided]
    np.testing.assert_allclose(memory.weights[uniform].numpy(), 0.2)
    for p, q in zip(params, strategy.network_.parameters(), strict=True):
        torch.testing.assert_close(p, q)  # 0 rolling steps: the network did not move
    assert strategy.decisions_ == {}


def test_missing_prices_train_on_the_largest_complete_block():
    prices = ar1_market(5, 0.5, n_assets=3, n_days=201).to_frame()
    late = prices.copy()
    late.iloc[:101, 2] = np.nan  # lists at row 101: a run of 100 rows of the history's 200
    strategy = EIIE(**SMALL)
    block, dates, assets, features = strategy.training_data(
        history(Panel(late, source="late"), 200)
    )
    assert features == ("close",) and block.shape[1] == 1
    # 2 assets x 191 windows beat 3 assets x 91 windows
    assert assets == ("A0", "A1") and len(block) == 200 and np.isfinite(block).all()
    early = prices.copy()
    early.iloc[:31, 2] = np.nan  # a run of 170 rows: 3 x 161 > 2 x 191
    block, dates, assets, _ = strategy.training_data(history(Panel(early, source="early"), 200))
    assert assets == ("A0", "A1", "A2") and len(block) == 170
    assert dates[0] == prices.index[31]
    short = ar1_market(5, 0.5, n_assets=3, n_days=40)
    with pytest.raises(DataError, match="needs at least 30"):
        strategy.fit(history(short, 28))


def test_a_changed_universe_restarts_the_memory_and_keeps_the_network(panel):
    strategy = EIIE(**SMALL).fit(history(panel, 100))
    three = np.array([0, 1, 3])
    w = strategy.allocate(panel.window(104, 10, three))  # allocates over any asset set
    assert w.shape == (3,) and w.min() > 0 and w.sum() < 1
    before = [p.detach().clone() for p in strategy.network_.parameters()]
    strategy.fit(panel.window(106, 106, three))
    assert strategy.memory_.assets == ("A0", "A1", "A3")
    assert strategy.n_fits_ == 2 and strategy.n_steps_done_ == 70  # continued, not rebuilt
    row = strategy.memory_.weights[103].double().numpy()  # the decision taken over the 3
    np.testing.assert_allclose(row[1:], w, rtol=1e-6)
    moved = any(
        not torch.equal(p, q) for p, q in zip(before, strategy.network_.parameters(), strict=True)
    )
    assert moved


def test_per_asset_costs_may_name_an_asset_a_fit_leaves_out(monkeypatch):
    """A3 lists on row 100: fits without it use the default rate, a fit with it A3's."""
    prices = ar1_market(7, 0.5, n_assets=4, n_days=200).to_frame()
    prices.iloc[:100, 3] = np.nan
    panel = Panel(prices, source="late listing")
    used = []
    train = EIIE._train

    def spy(self, prices, memory, steps, rates):
        used.append((memory.assets, rates.numpy().copy()))
        return train(self, prices, memory, steps, rates)

    monkeypatch.setattr(EIIE, "_train", spy)
    strategy = EIIE(**(SMALL | {"n_steps": 2, "costs_bps": {"A3": 20.0, "default": 10.0}}))
    strategy.fit(panel.window(60, 60, np.flatnonzero(panel.eligible(60, 10))))  # A3 not offered
    strategy.fit(panel.window(150, 150))  # offered, but too short a history to train on
    strategy.fit(panel.window(199, 95))  # only rows where A3 has prices
    assert [assets for assets, _ in used] == [("A0", "A1", "A2")] * 2 + [("A0", "A1", "A2", "A3")]
    for _, rates in used[:2]:
        np.testing.assert_allclose(rates, [1e-3] * 3, rtol=1e-12)
    np.testing.assert_allclose(used[2][1], [1e-3, 1e-3, 1e-3, 2e-3], rtol=1e-12)


def test_listing_and_delisting_in_the_walk_forward_engine():
    prices = ar1_market(6, 0.5, n_assets=4, n_days=160).to_frame()
    prices.iloc[:70, 1] = np.nan  # lists late
    prices.iloc[120:, 3] = np.nan  # delists
    panel = Panel(prices, source="listing test")
    engine = WalkForward(start=panel.dates[50], rebalance=1, retrain=15, costs_bps=10.0)
    record = engine.run(panel, [EIIE(**SMALL)])["EIIE"]
    weights = record.target_weights
    assert (weights.to_numpy() >= 0).all() and (weights.sum(axis=1) < 1).all()
    assert (weights["A1"].loc[: panel.dates[79]] == 0).all()
    assert (weights["A1"].loc[panel.dates[80] :] > 0).all()
    assert (weights["A3"].loc[panel.dates[120] :] == 0).all()


# ----------------------------------------------------------- timing, state and persistence


def test_no_look_ahead_in_a_walk_forward():
    panel = ar1_market(7, 0.5, n_assets=4, n_days=130)
    cut = 95
    altered = panel.to_frame()
    shock = np.exp(np.random.default_rng(0).normal(0, 0.05, (130 - cut - 1, 4)).cumsum(axis=0))
    altered.iloc[cut + 1 :] *= shock
    engine = WalkForward(start=panel.dates[50], rebalance=1, retrain=10, costs_bps=10.0)
    runs = [
        engine.run(p, [EIIE(**SMALL)])["EIIE"].target_weights
        for p in (panel, Panel(altered, source="altered"))
    ]
    # decisions up to the cut (four rolling fits included) are unchanged, bit for bit
    pd.testing.assert_frame_equal(
        runs[0].loc[: panel.dates[cut]], runs[1].loc[: panel.dates[cut]], check_exact=True
    )
    assert not np.allclose(runs[0].loc[panel.dates[cut + 1] :], runs[1].loc[panel.dates[cut + 1] :])


def test_reset_makes_a_second_backtest_identical():
    panel = ar1_market(8, 0.5, n_assets=4, n_days=120)
    strategy = EIIE(**SMALL)
    engine = WalkForward(start=panel.dates[50], rebalance=1, retrain=10, costs_bps=10.0)
    first = engine.run(panel, [strategy])["EIIE"]
    assert strategy.n_fits_ == 7 and strategy.n_steps_done_ == 60 + 6 * 10  # rolling fits
    second = engine.run(panel, [strategy])["EIIE"]
    pd.testing.assert_frame_equal(first.target_weights, second.target_weights, check_exact=True)
    pd.testing.assert_series_equal(first.net_returns, second.net_returns, check_exact=True)
    strategy.reset()
    assert not any(hasattr(strategy, a) for a in ("network_", "memory_", "optimizer_"))
    with pytest.raises(ConfigError, match="not fitted"):
        strategy.allocate(panel.window(60, 10))


def test_same_seed_same_weights_different_seed_different(panel):
    state = torch.get_rng_state()
    runs = {}
    for key, seed in (("a", 0), ("b", 0), ("c", 1)):
        strategy = EIIE(**(SMALL | {"seed": seed})).fit(history(panel, 120))
        runs[key] = (
            np.stack([strategy.allocate(panel.window(t, 10)) for t in range(121, 131)]),
            strategy.rewards_,
        )
    assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG is left alone
    np.testing.assert_array_equal(runs["a"][0], runs["b"][0])
    assert runs["a"][1] == runs["b"][1]
    assert not np.allclose(runs["a"][0], runs["c"][0])
    exact = EIIE(**(SMALL | {"cost_model": "exact"})).fit(history(panel, 120))
    assert np.isfinite(exact.rewards_).all() and len(exact.rewards_) == 60


def test_save_load_round_trip(panel, tmp_path):
    strategy = EIIE(**(SMALL | {"costs_bps": {"A0": 5.0, "default": 12.0}}))
    strategy.fit(history(panel, 110))
    rng = np.random.default_rng(9)
    prevs = rng.dirichlet(np.ones(5), 6)[:, 1:]
    for t in range(111, 114):  # decisions recorded for the next fit's memory
        strategy.allocate(panel.window(t, 10), prevs[t - 111])
    path = tmp_path / "eiie.pt"
    strategy.save(path)
    loaded = EIIE.load(path)
    assert loaded.get_params() == strategy.get_params()
    assert loaded.decisions_.keys() == strategy.decisions_.keys()
    for t in range(111, 117):
        np.testing.assert_array_equal(
            loaded.allocate(panel.window(t, 10), prevs[t - 111]),
            strategy.allocate(panel.window(t, 10), prevs[t - 111]),
        )
    # rolling training goes on identically: optimiser, generator, memory and decisions kept
    strategy.fit(history(panel, 130))
    loaded.fit(history(panel, 130))
    assert loaded.rewards_ == strategy.rewards_
    np.testing.assert_array_equal(
        loaded.allocate(panel.window(140, 10)), strategy.allocate(panel.window(140, 10))
    )
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(DataError, match="cannot read"):
        EIIE.load(tmp_path / "junk.pt")
    torch.save({"class": "DeepResidual"}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a file written by EIIE"):
        EIIE.load(tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not fitted"):
        EIIE().save(tmp_path / "unfitted.pt")


def test_clone_and_defaults():
    strategy = EIIE()
    assert strategy.get_params() == {
        "lookback": 50,
        "costs_bps": 10.0,
        "cost_model": "proportional",
        "n_steps": 2000,
        "n_rolling_steps": 30,
        "batch_size": 50,
        "learning_rate": 1e-3,
        "geometric_beta": 3e-3,
        "hidden_sizes": (2, 20),
        "high_low": True,
        "seed": 0,
        "device": "cpu",
        "num_threads": None,
        "label": None,
    }
    assert strategy.min_history == 100
    assert EIIE(label="eiie").name == "eiie"
    assert clone(EIIE(**SMALL)).get_params() == EIIE(**SMALL).get_params()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"lookback": 2}, "lookback=2"),
        ({"lookback": 10.5}, "lookback=10.5"),
        ({"cost_model": "linear"}, "cost_model='linear'.*'exact'"),
        ({"costs_bps": -1.0}, "cannot be negative"),
        ({"costs_bps": None}, "costs_bps = None"),
        ({"costs_bps": {"A0": 10.0}, "cost_model": "exact"}, "one commission rate"),
        ({"n_steps": 0}, "n_steps=0"),
        ({"n_rolling_steps": -1}, "n_rolling_steps=-1"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"geometric_beta": 0.0}, "geometric_beta=0.0.*in \\(0, 1\\)"),
        ({"geometric_beta": 1.0}, "geometric_beta=1.0"),
        ({"geometric_beta": True}, "geometric_beta=True"),
        ({"hidden_sizes": (2,)}, "hidden_sizes=\\(2,\\)"),
        ({"hidden_sizes": (2, 0)}, "hidden_sizes=\\(2, 0\\)"),
        ({"seed": -1}, "seed=-1"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"num_threads": 0}, "num_threads=0"),
    ],
)
def test_bad_settings_raise_config_errors(settings, match):
    with pytest.raises(ConfigError, match=match):
        EIIE(**settings)


def test_settings_changed_after_construction_are_checked_at_use(panel):
    strategy = EIIE(**SMALL).set_params(n_steps=0)
    with pytest.raises(ConfigError, match="n_steps=0"):
        strategy.fit(history(panel, 100))


def test_the_leak_canary_passes():
    strategy = EIIE(lookback=20, n_steps=200, n_rolling_steps=20, num_threads=1)
    report = leak_canary([strategy], n_assets=6, n_days=1000, seed=5)
    assert not report["leaked"].any(), report


# ------------------------------------------------------------- mean reversion and control

PLANTED = {"lookback": 20, "n_steps": 500, "n_rolling_steps": 20, "num_threads": 1}


def log_wealth_gap(panel: Panel) -> float:
    """EIIE's net log wealth minus UCRP's: 10 bps, daily rebalance, a refit every 20 days."""
    engine = WalkForward(start=panel.dates[150], rebalance=1, retrain=20, costs_bps=10.0)
    result = engine.run(panel, [EqualWeight(lookback=5, label="UCRP"), EIIE(**PLANTED)])
    wealth = {n: np.log1p(r.net_returns).sum() for n, r in result.strategies.items()}
    return wealth["EIIE"] - wealth["UCRP"]


def test_eiie_exploits_planted_mean_reversion_and_not_a_random_walk():
    # Measured (10 seeds each, these settings): planted gaps 3.0 to 4.0 (mean 3.7), random-walk
    # gaps -0.6 to +0.7 (mean -0.14). UCRP itself makes about 0.05 on the planted market.
    planted = [log_wealth_gap(ar1_market(seed, phi=0.5)) for seed in range(3)]
    control = [log_wealth_gap(ar1_market(100 + seed, phi=1.0)) for seed in range(3)]
    assert sum(gap > 1.0 for gap in planted) >= 2, planted
    assert np.mean(planted) > 2.0, planted
    assert np.mean(control) < 0.5 and max(control) < 1.0, control


# ------------------------------------------------------------- highs and lows


def test_highs_and_lows_feed_three_input_channels(panel, tmp_path):
    ranged = with_high_low(panel, seed=2)
    strategy = EIIE(**SMALL).fit(history(ranged, 120))
    assert strategy.features_ == ("close", "high", "low")
    assert strategy.network_.conv1.in_channels == 3
    window = ranged.window(125, 10)
    held = np.full(ranged.n_assets, 0.1)
    weights = strategy.allocate(window, held)
    # the network's input, by hand: each feature over the asset's close at the decision date
    x = np.stack([window.prices, window.highs, window.lows]) / window.prices[-1]  # (3, L, n)
    with torch.no_grad():
        expected = strategy.network_(
            torch.tensor(x.transpose(0, 2, 1)[None], dtype=torch.float32),
            torch.tensor(held[None], dtype=torch.float32),
        )[0].double()
    np.testing.assert_allclose(weights, expected.numpy()[1:], rtol=1e-6)
    strategy.save(tmp_path / "eiie.pt")
    loaded = EIIE.load(tmp_path / "eiie.pt")
    assert loaded.features_ == strategy.features_
    np.testing.assert_array_equal(loaded.allocate(window, held), weights)
    with pytest.raises(DataError, match=r"trained on \('close', 'high', 'low'\)"):
        strategy.allocate(panel.window(125, 10), held)
    closes_only = EIIE(**SMALL, high_low=False).fit(history(ranged, 120))
    assert closes_only.features_ == ("close",) and closes_only.network_.conv1.in_channels == 1


def range_gap(panel: Panel, high_low: bool) -> float:
    """EIIE's net log wealth minus UCRP's over the last 150 days, trained once on 250."""
    engine = WalkForward(start=panel.dates[250], rebalance=1, retrain=None, costs_bps=10.0)
    eiie = EIIE(
        lookback=5,
        batch_size=30,
        n_steps=800,
        learning_rate=3e-3,
        hidden_sizes=(8, 20),
        high_low=high_low,
        num_threads=1,
    )
    result = engine.run(panel, [EqualWeight(lookback=5, label="UCRP"), eiie])
    wealth = {n: np.log1p(r.net_returns).sum() for n, r in result.strategies.items()}
    return wealth["EIIE"] - wealth["UCRP"]


def test_eiie_uses_a_signal_only_the_daily_range_shows():
    # The next return is 1% times a sign shown only by where the close sits in the day's range
    # (`range_signal_market`): 150 days of it are worth about 1.5 in log wealth before costs.
    # Measured (seeds 0-2): with highs and lows the gap to UCRP is 1.2 to 1.4; from closes
    # alone -0.05 to 0.0. (With the paper's 2 first-layer channels both stay near UCRP after
    # this much training: units die; 8 channels learn it.)
    panels = [range_signal_market(seed) for seed in range(3)]
    with_range = [range_gap(p, True) for p in panels]
    closes_only = [range_gap(p, False) for p in panels]
    assert min(with_range) > 0.7, with_range
    assert max(closes_only) < 0.3, closes_only
