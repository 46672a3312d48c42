"""The RL portfolio environments against independent references.

References: gymnasium's own env checker and SyncVectorEnv, kabuto's walk-forward backtest,
Jiang et al.'s defining equation of the remainder factor, and direct loops of the reward
recursions written here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from kabuto.backtest import WalkForward
from kabuto.data import Panel
from kabuto.errors import ArgumentError, ConfigError, ConstraintError, DataError
from kabuto.sim import correlated_gbm
from kabuto.strategies.base import Strategy
from kabuto.strategies.rl import (
    PortfolioEnv,
    PortfolioVectorEnv,
    actions_to_weights,
    differential_sharpe_ratio,
    proportional_remainder,
    transaction_remainder,
)
from kabuto.strategies.rl.rewards import DSR_WARMUP, check_reward_settings

from helpers import panel_from_returns, with_high_low


@pytest.fixture(scope="module")
def panel() -> Panel:
    return correlated_gbm(4, 160, sigma=0.3, seed=7)


def _weights(rng: np.random.Generator, steps: int, n: int) -> np.ndarray:
    """Random target weights over cash and n assets, with exact zeros now and then."""
    w = rng.dirichlet(np.ones(n + 1), size=steps)
    w[rng.random(w.shape) < 0.15] = 0.0
    w[w.sum(axis=1) == 0, 0] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def _rollout(env: PortfolioEnv, actions: np.ndarray, seed: int | None = None):
    obs, info = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], [info]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        assert not terminated
        if truncated:
            break
    return np.array(observations), np.array(rewards), infos


def _series(infos, key):
    return np.array([info[key] for info in infos[1:]])


# --- gymnasium API -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {
            "cost_model": "exact",
            "reward": "differential_sharpe",
            "action_map": "clip",
            "episode_length": 30,  # longer than the reward's warm-up
        },
        {"reward": "sharpe_window", "random_start": False, "episode_length": None},
    ],
)
def test_gymnasium_env_checker_passes(panel, settings):
    env = PortfolioEnv(panel, window=10, **({"episode_length": 20} | settings))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(infinity|render modes).*")
        check_env(env)


def test_observation_layout_and_spaces(panel):
    env = PortfolioEnv(panel, window=6, random_start=False)
    obs, info = env.reset(seed=0)
    n = panel.n_assets
    assert env.features == ("close",) and env.n_features == 1
    assert env.observation_space.shape == (n * 6 + n + 1,)
    assert env.action_space.shape == (n + 1,)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    prices, weights = env.split_observation(obs)
    t = env.first_index
    assert info["date"] == panel.dates[t]
    expected = (panel.prices[t - 5 : t + 1] / panel.prices[t]).T
    np.testing.assert_allclose(prices[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(prices[0, :, -1], 1.0)
    np.testing.assert_array_equal(weights, np.eye(n + 1)[0])  # all cash at the start


def test_highs_and_lows_are_observed_relative_to_the_latest_close(panel):
    ranged = with_high_low(panel, seed=3)
    env = PortfolioEnv(ranged, window=6, random_start=False, episode_length=None)
    n = panel.n_assets
    assert env.features == ("close", "high", "low") and env.n_features == 3
    assert env.observation_space.shape == (3 * n * 6 + n + 1,)
    obs, _ = env.reset()
    for _ in range(3):
        obs, *_ = env.step(np.r_[0.0, np.ones(n)])
    t = env.first_index + 3
    prices, weights = env.split_observation(obs)
    assert prices.shape == (3, n, 6) and weights.shape == (n + 1,)
    close_t = ranged.prices[t]
    for f, values in enumerate((ranged.prices, ranged.highs, ranged.lows)):
        expected = (values[t - 5 : t + 1] / close_t).T
        np.testing.assert_allclose(prices[f], expected, rtol=1e-6)
    assert (prices[1] >= prices[0]).all() and (prices[2] <= prices[0]).all()
    # with high_low=False the environment is the closes-only one, step for step
    plain = PortfolioEnv(panel, window=6, random_start=False, episode_length=None)
    off = PortfolioEnv(ranged, window=6, random_start=False, episode_length=None, high_low=False)
    np.testing.assert_array_equal(off.reset()[0], plain.reset()[0])
    action = np.r_[0.2, np.arange(n)]
    a, b = off.step(action), plain.step(action)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(infinity|render modes).*")
        check_env(PortfolioEnv(ranged, window=6, episode_length=20))


# --- costs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("c_sell, c_purchase", [(0.0025, None), (0.01, None), (0.002, 0.004)])
def test_remainder_factor_solves_its_defining_equation(c_sell, c_purchase):
    rng = np.random.default_rng(1)
    drifted, target = _weights(rng, 500, 8), _weights(rng, 500, 8)
    target[:50] = drifted[:50]  # no trade
    mu = transaction_remainder(drifted, target, c_sell, c_purchase)
    c_p = c_sell if c_purchase is None else c_purchase
    k = c_sell + c_p - c_sell * c_p
    sold = np.maximum(drifted[:, 1:] - mu[:, None] * target[:, 1:], 0.0).sum(axis=1)
    rhs = (1.0 - c_p * drifted[:, 0] - k * sold) / (1.0 - c_p * target[:, 0])
    np.testing.assert_allclose(mu, rhs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mu[:50], 1.0, rtol=0, atol=1e-15)
    c = max(c_sell, c_p)
    assert (mu >= 1 - 2 * c).all() and (mu <= 1).all()
    # to first order, each leg pays its own rate: 1 - c_s * sold - c_p * bought
    change = target[:, 1:] - drifted[:, 1:]
    first_order = 1 - c_sell * np.maximum(-change, 0).sum(1) - c_p * np.maximum(change, 0).sum(1)
    assert np.abs(mu - first_order).max() < 4 * c**2
    if c_purchase is None:  # which is the backtest's proportional cost
        np.testing.assert_allclose(first_order, proportional_remainder(drifted, target, c_sell))


@pytest.mark.parametrize(
    ("drifted", "target", "match"),
    [
        ([0.5, np.nan, 0.5], [0.0, 0.5, 0.5], r"w_drifted = \[0.5 +nan 0.5\]"),
        ([0.5, 0.5, 0.0], [0.0, 1.2, -0.2], r"w_target = \[ *0. +1.2 +-0.2\]"),
        ([0.5, 0.5, 0.5], [0.0, 0.5, 0.5], r"w_drifted .*sum 1.5"),
        ([[1.0, 0.0, 0.0], [0.5, 0.25, 0.0]], np.eye(3)[[1, 2]], r"w_drifted\[1\] .*sum 0.75"),
    ],
)
def test_remainder_factor_rejects_weights_that_are_not_weights(drifted, target, match):
    with pytest.raises(ArgumentError, match=match):
        transaction_remainder(np.array(drifted), np.array(target), 1e-3)
    with pytest.raises(ValueError, match=match):  # what callers caught before ArgumentError
        transaction_remainder(np.array(drifted), np.array(target), 1e-3)


def test_remainder_factor_closed_form_cases():
    c = 0.003
    cash, a1, a2 = np.eye(3)
    # buy with all the cash: pay c on the purchase; switch assets: pay on both legs
    assert transaction_remainder(cash, a1, c) == pytest.approx(1 - c, abs=1e-15)
    assert transaction_remainder(a1, cash, c) == pytest.approx(1 - c, abs=1e-15)
    assert transaction_remainder(a1, a2, c) == pytest.approx((1 - c) ** 2, abs=1e-15)
    assert transaction_remainder(a1, a2, 0.0) == 1.0
    with pytest.raises(ConfigError, match="c_sell"):
        transaction_remainder(a1, a2, 1.5)


class _Replay(Strategy):
    """Replays a fixed table of target weights (dates x assets), one row per decision date."""

    def __init__(self, table: pd.DataFrame | None = None, lookback: int = 1):
        self.table, self.lookback = table, lookback

    def allocate(self, window, prev_weights=None):
        return self.table.loc[window.date].to_numpy()


@pytest.mark.parametrize("costs_bps", [0.0, 25.0, {"asset_000": 5.0, "default": 40.0}])
def test_proportional_mode_equals_walkforward_day_by_day(panel, costs_bps):
    rng = np.random.default_rng(3)
    start, end = panel.dates[30], panel.dates[140]
    env = PortfolioEnv(
        panel,
        window=10,
        start=start,
        end=end,
        random_start=False,
        episode_length=None,
        costs_bps=costs_bps,
        action_map="clip",
    )
    steps = 140 - 30
    weights = _weights(rng, steps, panel.n_assets)
    _, rewards, infos = _rollout(env, weights)
    assert len(rewards) == steps and infos[-1]["date"] == end

    table = pd.DataFrame(weights[:, 1:], index=panel.dates[30:140], columns=list(panel.assets))
    result = WalkForward(
        start=start, end=end, rebalance=1, retrain=None, costs_bps=costs_bps, long_only=True
    ).run(panel, {"replay": _Replay(table)})["replay"]

    assert list(result.net_returns.index) == [info["date"] for info in infos[1:]]
    np.testing.assert_allclose(_series(infos, "net_return"), result.net_returns, atol=1e-13)
    np.testing.assert_allclose(_series(infos, "gross_return"), result.gross_returns, atol=1e-13)
    np.testing.assert_allclose(_series(infos, "cost"), result.costs, atol=1e-15)
    np.testing.assert_allclose(_series(infos, "turnover"), result.turnover, atol=1e-13)
    np.testing.assert_allclose(rewards, np.log1p(result.net_returns), atol=1e-13)
    wealth = np.prod(1 + result.net_returns.to_numpy())
    assert infos[-1]["portfolio_value"] == pytest.approx(wealth, rel=1e-12)


@pytest.mark.parametrize("cost_model", ["proportional", "exact"])
def test_costs_cost_exactly_what_the_rebalances_pay(panel, cost_model):
    """A constant-weight policy with c > 0 loses exactly its rebalancing costs."""
    target = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    actions = np.tile(target, (60, 1))
    c = 0.002

    def run(bps):
        env = PortfolioEnv(
            panel,
            window=10,
            episode_length=60,
            random_start=False,
            costs_bps=bps,
            cost_model=cost_model,
            action_map="clip",
        )
        return _rollout(env, actions), env.first_index

    (_, free_rewards, free), first = run(0.0)
    (_, rewards, paid), _ = run(c * 1e4)
    # identical gross returns; every step pays, so rewards and wealth are lower
    np.testing.assert_allclose(_series(paid, "gross_return"), _series(free, "gross_return"))
    assert (rewards < free_rewards).all()
    assert paid[-1]["portfolio_value"] < free[-1]["portfolio_value"]

    # the costs, from drifted weights computed here
    relatives = panel.prices[first + 1 : first + 61] / panel.prices[first : first + 60]
    drifted = np.vstack([np.eye(5)[0], target * np.c_[np.ones(60), relatives][:-1]])
    drifted /= drifted.sum(axis=1, keepdims=True)
    if cost_model == "proportional":
        mu = 1 - c * np.abs(target[1:] - drifted[:, 1:]).sum(axis=1)
    else:
        mu = transaction_remainder(drifted, np.tile(target, (60, 1)), c)
    np.testing.assert_allclose(_series(paid, "cost"), 1 - mu, rtol=1e-10, atol=1e-16)
    ratio = paid[-1]["portfolio_value"] / free[-1]["portfolio_value"]
    assert ratio == pytest.approx(np.prod(mu), rel=1e-12)
    np.testing.assert_allclose(rewards - free_rewards, np.log(mu), atol=1e-12)


# --- timing ----------------------------------------------------------------------------------


def test_no_look_ahead(panel):
    """Observations up to t do not change when prices after t are altered."""
    cut = 80
    altered = panel.to_frame()
    noise = np.random.default_rng(5).uniform(0.5, 2.0, size=altered.iloc[cut + 1 :].shape)
    altered.iloc[cut + 1 :] *= noise
    other = Panel(altered, source="altered")
    actions = np.random.default_rng(6).normal(size=(120, panel.n_assets + 1))
    settings = {"window": 10, "episode_length": None, "start": panel.dates[20]}
    settings |= {"random_start": False, "reward": "differential_sharpe", "cost_model": "exact"}
    obs_a, rew_a, _ = _rollout(PortfolioEnv(panel, **settings), actions)
    obs_b, rew_b, _ = _rollout(PortfolioEnv(other, **settings), actions)
    seen = cut - 20  # observations of decision dates 20..cut
    np.testing.assert_array_equal(obs_a[: seen + 1], obs_b[: seen + 1])
    np.testing.assert_array_equal(rew_a[:seen], rew_b[:seen])  # returns up to the cut
    assert not np.array_equal(obs_a[seen + 1], obs_b[seen + 1])  # the alteration is visible
    assert not np.isclose(rew_a[seen], rew_b[seen])

    vec_a = PortfolioVectorEnv([panel, panel], 2, **settings)
    vec_b = PortfolioVectorEnv([panel, other], 2, **settings)
    oa, _ = vec_a.reset(seed=0)
    ob, _ = vec_b.reset(seed=0)
    for k in range(seen):
        np.testing.assert_array_equal(oa, ob)
        oa, *_ = vec_a.step(np.tile(actions[k], (2, 1)))
        ob, *_ = vec_b.step(np.tile(actions[k], (2, 1)))
    np.testing.assert_array_equal(oa, ob)


def test_episodes_start_at_seeded_dates_and_truncate(panel):
    env = PortfolioEnv(panel, window=10, episode_length=25)
    lo, hi = env.start_range()
    assert (lo, hi) == (9, panel.n_dates - 1 - 25)
    starts = []
    for seed in range(20):
        _, info = env.reset(seed=seed)
        starts.append(panel.dates.get_loc(info["date"]))
    assert all(lo <= s <= hi for s in starts) and len(set(starts)) > 10
    actions = np.zeros((100, panel.n_assets + 1))
    a = _rollout(env, actions, seed=11)
    b = _rollout(env, actions, seed=11)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert len(a[1]) == 25
    with pytest.raises(ResetNeeded):
        env.step(actions[0])
    # a seedless reset continues the seeded stream
    env.reset(seed=11)
    _, first = env.reset()
    env.reset(seed=11)
    assert env.reset()[1]["date"] == first["date"]
    # a fixed start near the end runs to the end of the data
    tail = PortfolioEnv(panel, window=10, start=panel.dates[-5], random_start=False)
    _, rewards, infos = _rollout(tail, actions)
    assert len(rewards) == 4 and infos[-1]["date"] == panel.dates[-1]


# --- rewards ---------------------------------------------------------------------------------


def _moody_saffell(returns, eta, warmup=DSR_WARMUP):
    """Direct scalar loop of the differential Sharpe ratio recursion, its moving moments read
    bias-corrected (divided by 1 - (1 - eta)^n after n returns), 0 for `warmup` steps."""
    a = b = 0.0
    out = []
    for n, r in enumerate(returns):
        mean = a / (1 - (1 - eta) ** n) if n else 0.0
        square = b / (1 - (1 - eta) ** n) if n else 0.0
        d_a, d_b = r - mean, r * r - square
        var = square - mean * mean
        flat = n < warmup or var <= 1e-12 * square
        out.append(0.0 if flat else (square * d_a - 0.5 * mean * d_b) / var**1.5)
        a, b = a + eta * (r - a), b + eta * (r * r - b)
    return np.array(out)


def test_differential_sharpe_matches_moody_saffell_recursion(panel):
    eta = 0.05
    env = PortfolioEnv(panel, window=10, episode_length=80, reward="differential_sharpe", eta=eta)
    actions = np.random.default_rng(8).normal(size=(80, panel.n_assets + 1))
    _, rewards, infos = _rollout(env, actions, seed=2)
    net = _series(infos, "net_return")
    expected = _moody_saffell(net, eta)
    assert (expected[:DSR_WARMUP] == 0.0).all() and np.abs(expected[DSR_WARMUP:]).min() > 0
    np.testing.assert_allclose(rewards, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(differential_sharpe_ratio(net, eta), expected, rtol=1e-10)
    # a batch of paths through the offline helper
    paths = np.c_[net, net[::-1]]
    np.testing.assert_allclose(
        differential_sharpe_ratio(paths, eta)[:, 1], _moody_saffell(net[::-1], eta), rtol=1e-10
    )


def test_differential_sharpe_stays_of_order_one_at_an_episode_start():
    # a nearly-cash first step left a variance of eta (1 - eta) R_1^2 after it: the second
    # reward was about 1e8 against rewards of order 1 later
    rng = np.random.default_rng(0)
    r = rng.normal(0.0005, 0.01, size=(252, 500))
    r[0] = 1e-6
    d = differential_sharpe_ratio(r, 0.01)
    assert (d[:DSR_WARMUP] == 0).all()
    assert np.abs(d[:60]).max() < 2 * np.abs(d[60:]).max()
    # an episode no longer than the warm-up would give no reward at all
    with pytest.raises(ConfigError, match=r"episode_length = 20: the differential Sharpe"):
        check_reward_settings("differential_sharpe", 0.01, 20, 0.0, 0.0, DSR_WARMUP)
    check_reward_settings("log_return", 0.01, 20, 0.0, 0.0, DSR_WARMUP)


def test_trailing_sharpe_and_penalties(panel):
    actions = np.random.default_rng(9).normal(size=(40, panel.n_assets + 1))
    settings = {"window": 10, "episode_length": 40, "random_start": False}
    _, rewards, infos = _rollout(
        PortfolioEnv(panel, reward="sharpe_window", sharpe_window=5, **settings), actions
    )
    net = _series(infos, "net_return")
    expected = [0.0] + [
        net[max(0, t - 4) : t + 1].mean() / net[max(0, t - 4) : t + 1].std(ddof=1)
        for t in range(1, len(net))
    ]
    np.testing.assert_allclose(rewards, expected, rtol=1e-10)

    penalised = PortfolioEnv(panel, turnover_penalty=0.01, drawdown_penalty=0.5, **settings)
    _, rewards, infos = _rollout(penalised, actions)
    value = _series(infos, "portfolio_value")
    drawdown = 1 - value / np.maximum.accumulate(np.r_[1.0, value])[1:]
    assert drawdown.max() > 0
    expected = np.log(value / np.r_[1.0, value[:-1]]) - 0.01 * _series(infos, "turnover")
    np.testing.assert_allclose(rewards, expected - 0.5 * drawdown, atol=1e-12)


# --- actions ---------------------------------------------------------------------------------


def test_actions_map_onto_the_simplex():
    a = np.random.default_rng(0).normal(size=(100, 6)) * 3
    for kind in ("softmax", "clip"):
        w = actions_to_weights(a, kind)
        assert (w >= 0).all()
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-14)
    w = np.array([0.2, 0.0, 0.5, 0.3])
    np.testing.assert_allclose(actions_to_weights(w, "clip"), w, atol=1e-16)
    np.testing.assert_array_equal(actions_to_weights(-np.ones(4), "clip"), np.eye(4)[0])
    # a saturated softmax action is a nearly pure position
    assert actions_to_weights(np.array([-1.0, 1.0, -1.0]), "softmax")[1] > 0.9999


@pytest.mark.parametrize(
    ("action_map", "logit_scale", "match"),
    [
        ("tanh", 5.0, "action_map = 'tanh'"),
        ("softmax", 0.0, "logit_scale = 0.0"),
        ("softmax", -5.0, "logit_scale = -5.0"),
        ("softmax", float("nan"), "logit_scale = nan"),
        ("clip", True, "logit_scale = True"),
    ],
)
def test_actions_to_weights_rejects_bad_settings(action_map, logit_scale, match):
    with pytest.raises(ConfigError, match=match):
        actions_to_weights(np.array([-0.5, 0.2, 0.8]), action_map, logit_scale)


def test_bad_actions_raise(panel):
    env = PortfolioEnv(panel, window=10)
    env.reset(seed=0)
    with pytest.raises(ConstraintError, match="finite"):
        env.step(np.full(panel.n_assets + 1, np.nan))
    with pytest.raises(ConstraintError, match="5 finite"):
        env.step(np.zeros(3))


# --- vectorised environment -----------------------------------------------------------------


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_env_equals_sync_vector_env_of_single_envs(mode):
    panels = [correlated_gbm(3, 60, sigma=0.3, seed=s) for s in (1, 2)]
    # episodes just past the differential Sharpe reward's warm-up, so rewards are nonzero
    settings = {"window": 5, "episode_length": DSR_WARMUP + 2, "cost_model": "exact"}
    settings |= {"reward": "differential_sharpe", "eta": 0.1}
    b = 5
    vec = PortfolioVectorEnv(panels, b, autoreset_mode=mode, **settings)
    ref = SyncVectorEnv(
        [lambda p=panels[i % 2]: PortfolioEnv(p, **settings) for i in range(b)],
        autoreset_mode=mode,
    )
    assert vec.observation_space == ref.observation_space
    assert vec.action_space == ref.action_space
    obs, info = vec.reset(seed=4)
    obs_ref, info_ref = ref.reset(seed=4)
    np.testing.assert_array_equal(obs, obs_ref)
    _same_info(info, info_ref)
    actions = np.random.default_rng(0).normal(size=(60, b, 4))
    ended = rewarded = 0
    for a in actions:
        obs, rew, term, trunc, info = vec.step(a)
        obs_ref, rew_ref, term_ref, trunc_ref, info_ref = ref.step(a)
        np.testing.assert_allclose(obs, obs_ref, rtol=1e-6)
        np.testing.assert_allclose(rew, rew_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(term, term_ref)
        np.testing.assert_array_equal(trunc, trunc_ref)
        _same_info(info, info_ref)
        ended += trunc.sum()
        rewarded += (rew != 0).sum()
    assert ended >= b  # every copy went through at least one autoreset
    assert rewarded > 0


def test_vector_env_with_highs_and_lows_equals_single_envs():
    panels = [with_high_low(correlated_gbm(3, 60, sigma=0.3, seed=s), seed=s) for s in (1, 2)]
    settings = {"window": 5, "episode_length": 7}
    vec = PortfolioVectorEnv(panels, 4, **settings)
    singles = [PortfolioEnv(panels[i % 2], **settings) for i in range(4)]
    assert vec.n_features == 3
    assert vec.single_observation_space == singles[0].observation_space
    obs, _ = vec.reset(seed=9)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=9 + i)[0])
    actions = np.random.default_rng(1).normal(size=(6, 4, 4))
    for a in actions:
        obs, rewards, *_ = vec.step(a)
        for i, env in enumerate(singles):
            single, reward, *_ = env.step(a[i])
            np.testing.assert_allclose(obs[i], single, rtol=1e-6)
            assert rewards[i] == pytest.approx(reward, rel=1e-9, abs=1e-12)
    prices, _ = vec.split_observation(obs)
    assert prices.shape == (4, 3, 3, 5)
    with pytest.raises(DataError, match="highs and lows or none"):
        PortfolioVectorEnv([panels[0], correlated_gbm(3, 60, seed=5)], 2, **settings)
    plain = PortfolioVectorEnv([panels[0], correlated_gbm(3, 60, seed=5)], 2, high_low=False)
    assert plain.n_features == 1


def _same_info(info, ref):
    assert set(info) == set(ref)
    for key, value in ref.items():
        if key.startswith("_"):
            np.testing.assert_array_equal(info[key], value, err_msg=key)
        elif key == "final_info":
            _same_info(info[key], value)
        elif key == "final_obs":
            for mine, theirs in zip(info[key], value, strict=True):
                assert (mine is None) == (theirs is None)
                if theirs is not None:
                    np.testing.assert_allclose(mine, theirs, rtol=1e-6)
        else:
            mask = ref[f"_{key}"]
            if key == "date":
                mine = pd.DatetimeIndex(info[key][mask])
                assert list(mine) == [pd.Timestamp(d) for d in value[mask]]
            else:
                np.testing.assert_allclose(
                    info[key][mask], np.stack(value[mask]), rtol=1e-9, atol=1e-12, err_msg=key
                )


def test_vector_env_first_reset_covers_every_copy(panel):
    """A copy never reset has no date: it would observe the panel's last prices."""
    vec = PortfolioVectorEnv(panel, 2, window=10, episode_length=30)
    with pytest.raises(ConfigError, match=r"copies \[1\] that were never reset"):
        vec.reset(seed=0, options={"reset_mask": np.array([True, False])})
    with pytest.raises(ResetNeeded):  # the rejected reset started nothing
        vec.step(np.zeros((2, panel.n_assets + 1)))
    obs, _ = vec.reset(seed=0)
    vec.reset(seed=1, options={"reset_mask": np.array([False, True])})  # now it may
    assert np.isfinite(obs).all()


def test_vector_env_partial_reset_and_seed_list(panel):
    vec = PortfolioVectorEnv(panel, 3, window=10, episode_length=30)
    obs, info = vec.reset(seed=[5, 6, 7])
    single = PortfolioEnv(panel, window=10, episode_length=30)
    for i, s in enumerate((5, 6, 7)):
        o, first = single.reset(seed=s)
        np.testing.assert_array_equal(obs[i], o)
        assert info["date"][i] == first["date"]
    vec.step(np.zeros((3, panel.n_assets + 1)))
    mask = np.array([False, True, False])
    obs2, info2 = vec.reset(seed=[None, 6, None], options={"reset_mask": mask})
    np.testing.assert_array_equal(info2["_date"], mask)
    np.testing.assert_array_equal(obs2[1], obs[1])  # copy 1 restarted from the same seed
    assert not np.array_equal(obs2[0], obs[0])  # copy 0 kept its episode (one step on)


# --- settings and data ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"window": 0}, "window"),
        ({"window": 500}, "window"),
        ({"episode_length": 0}, "episode_length"),
        ({"costs_bps": -1.0}, "costs_bps"),
        ({"costs_bps": None}, "pass 0 explicitly"),
        ({"costs_bps": 6000.0}, "costs_bps"),
        ({"costs_bps": {"nope": 1.0}}, "unknown asset"),
        ({"cost_model": "exact", "costs_bps": {"default": 5.0}}, "cost_model"),
        ({"cost_model": "quadratic"}, "cost_model"),
        ({"reward": "sortino"}, "reward"),
        ({"eta": 1.5}, "eta"),
        ({"sharpe_window": 1}, "sharpe_window"),
        ({"turnover_penalty": -0.1}, "turnover_penalty"),
        ({"drawdown_penalty": float("nan")}, "drawdown_penalty"),
        ({"action_map": "tanh"}, "action_map"),
        ({"logit_scale": 0.0}, "logit_scale"),
        ({"random_start": "yes"}, "random_start"),
        ({"high_low": "yes"}, "high_low"),
        ({"start": "2000-01-04"}, "start"),
        ({"start": "2030-01-01"}, "start"),
        ({"start": "2000-06-01", "end": "2000-06-01"}, "no date to trade"),
        ({"start": "not-a-date"}, "start = 'not-a-date': expected a date"),
        ({"end": "2000-13-45"}, "end = '2000-13-45': expected a date"),
        ({"end": ""}, "end = '': expected a date"),
        ({"start": 20000110}, "start = 20000110: expected a date"),  # not nanoseconds
    ],
)
def test_bad_settings_raise_config_error(panel, settings, match):
    with pytest.raises(ConfigError, match=match):
        PortfolioEnv(panel, window=settings.pop("window", 10), **settings)


def test_bad_vector_settings_raise(panel):
    with pytest.raises(ConfigError, match="num_envs"):
        PortfolioVectorEnv(panel, 0)
    with pytest.raises(ConfigError, match="autoreset_mode"):
        PortfolioVectorEnv(panel, 2, autoreset_mode="Disabled")
    with pytest.raises(DataError, match="equal shape"):
        PortfolioVectorEnv([panel, correlated_gbm(4, 100, seed=1)], 2, window=10)


def test_missing_prices_inside_the_period_raise_data_error():
    returns = np.random.default_rng(0).normal(0, 0.01, size=(120, 3))
    returns[:40, 2] = np.nan  # A2 lists on row 40
    panel = panel_from_returns(returns)
    with pytest.raises(DataError, match=r"'A2'.*start on or after"):
        PortfolioEnv(panel, window=10)
    env = PortfolioEnv(panel, window=10, start=panel.dates[49])  # window from row 40 on
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all()
