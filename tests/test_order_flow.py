"""Nakagawa et al.'s order-flow crowd trading through the order book, and the ladder market maker.

References: the crowd's documented rule (`kabuto.sim.artificial.engine`) replayed in plain Python
from the run's own draws and closes, order by order; the ladder's documented prices; the linear
impact the ladder is built to give (rho); the paper's direction of the GARCH mapping (alpha
grows with the AI-trader share) measured by ``arch`` on the book's returns; and the config's
rules.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from arch import arch_model

from kabuto.errors import ConfigError
from kabuto.sim.artificial import parse_simulation, simulate
from kabuto.sim.artificial.garch_agents import GarchMarket, mean_demand
from kabuto.sim.artificial.runner import draw_run
from kabuto.strict_config import read_toml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "order_flow_market.toml"


def flow_config(steps: int = 400, **crowd):
    raw = read_toml(EXAMPLE)
    raw["agents"][0].update(crowd)
    raw["sessions"][0]["steps"] = steps
    return parse_simulation(raw, source="test")


def replay_orders(config, seed: int, closes: np.ndarray) -> np.ndarray:
    """The crowd's signed market order of every step, from the documented rule."""
    group = config.agents[0]
    p1, p2, rho, k = group.fundamental_share, group.ai_share, group.impact, group.noise_scale
    mean = mean_demand(group.model())
    draws = draw_run(config, seed).flow_draws[:, 0]
    price_before, demand_before = config.markets[0].price, 0.0
    orders = []
    for t in range(len(closes)):
        price = closes[t - 1] if t > 0 else config.markets[0].price
        news = draws[t - 1, 0] if t > 0 else 0.0
        last_return = math.log(price / price_before) / group.unit
        sigma = rho * k * abs(1 + demand_before)
        shock = last_return - rho * (demand_before - mean)
        demand = p1 * (math.log(1 + max(-0.99, news)) - group.fundamental_aversion * sigma)
        demand += p2 * (group.ai_forecast * news - group.ai_aversion * abs(shock))
        demand = min(max(demand, -1000.0), 1000.0)  # FLOW_CAP
        imbalance = min(max(demand - mean + k * (1 + demand) * draws[t, 1], -1000.0), 1000.0)
        orders.append(round(group.volume * imbalance))
        price_before, demand_before = price, demand
    return np.array(orders)


@pytest.mark.parametrize("seed", [0, 7])
def test_crowd_orders_follow_the_documented_rule(seed):
    config = flow_config()
    result = simulate(config, seed=seed, log_orders=True)
    orders = result.orders[0]
    market = orders[orders["price"].isna()]  # the crowd's market orders (the ladder: limits)
    logged = np.zeros(config.n_steps, dtype=np.int64)
    logged[market["step"].to_numpy()] = np.where(
        market["side"] == "buy", market["volume"], -market["volume"]
    )
    expected = replay_orders(config, seed, result.prices[0, :, 0, 0])
    assert np.abs(expected).max() > 100  # it trades
    np.testing.assert_array_equal(logged, expected)
    assert set(market["agent"]) == {1}  # accounts: the maker (fast agents) first, then crowds


def test_ladder_quotes_levels_spaced_by_the_price():
    config = flow_config(steps=3)
    orders = simulate(config, seed=1, log_orders=True).orders[0]
    first = orders[(orders["step"] == 0) & orders["price"].notna()]
    maker = config.agents[1]
    assert len(first) == 2 * maker.levels and (first["volume"] == maker.volume).all()
    # base 1000, half spread 1000 * 1e-6 / 2 = 0.0005: bids from 999.999 down, asks from 1000.001
    # up, one level every 0.1% of the price = 1000 ticks of 0.001
    bids = np.sort(first.loc[first["side"] == "buy", "price"].to_numpy())[::-1]
    asks = np.sort(first.loc[first["side"] == "sell", "price"].to_numpy())
    np.testing.assert_allclose(bids, 999.999 - np.arange(maker.levels), atol=1e-9)
    np.testing.assert_allclose(asks, 1000.001 + np.arange(maker.levels), atol=1e-9)


def test_the_ladder_gives_the_assumed_linear_impact():
    config = flow_config(steps=1500, ai_share=0.2)
    result = simulate(config, seed=3, log_orders=True)
    closes = result.prices[0, :, 0, 0]
    returns = 100 * np.diff(np.log(closes))
    orders = result.orders[0]
    market = orders[orders["price"].isna()]
    imbalance = np.zeros(len(closes))
    imbalance[market["step"].to_numpy()] = (
        np.where(market["side"] == "buy", 1, -1) * market["volume"] / config.agents[0].volume
    )
    slope = np.polyfit(imbalance[1:], returns, 1)[0]
    assert slope == pytest.approx(config.agents[0].impact, rel=0.03)


def _alpha(returns: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, rescale=False)
        return float(fitted.fit(disp="off").params["alpha[1]"])


def test_fitted_garch_alpha_grows_with_the_ai_share_through_the_book():
    alphas = {}
    for p2 in (0.0, 0.4):
        result = simulate(flow_config(steps=2500, ai_share=p2), seed=11, runs=4)
        returns = 100 * np.diff(np.log(result.prices[:, :, 0, 0]), axis=1)[:, 300:]
        alphas[p2] = [_alpha(r) for r in returns]
    assert min(alphas[0.4]) > max(alphas[0.0])


def test_a_crowd_without_ai_traders_shows_no_reaction_to_shocks():
    # gamma = 0: the AI traders' demand is c x_{t-1} only, so no ARCH channel is left
    calm = simulate(flow_config(steps=2500, ai_aversion=0.0), seed=5, runs=3)
    returns = 100 * np.diff(np.log(calm.prices[:, :, 0, 0]), axis=1)[:, 300:]
    assert max(_alpha(r) for r in returns) < 0.1


def test_order_flow_configs_are_checked():
    with pytest.raises(ConfigError, match="alpha \\+ beta"):
        flow_config(ai_share=0.6)
    with pytest.raises(ConfigError, match="shares"):
        flow_config(fundamental_share=0.7, ai_share=0.4)
    with pytest.raises(ConfigError, match="volumes"):
        flow_config(volumes=3)
    raw = read_toml(EXAMPLE)
    raw["agents"][1]["level_spacing"] = 1.5
    with pytest.raises(ConfigError, match="level_spacing"):
        parse_simulation(raw, source="test")


def _stationary_demands(model: GarchMarket, n_chains: int, steps: int, seed: int) -> np.ndarray:
    """The demand D of many independent chains of the documented recursion, after `steps`
    periods each: a sample of its stationary law, drawn apart from `mean_demand`'s one path."""
    rng = np.random.default_rng(seed)
    p1, p2, rho, k = model.fundamental_share, model.ai_share, model.impact, model.noise_scale
    news, shock = np.zeros(n_chains), np.zeros(n_chains)
    sigma = np.full(n_chains, rho * k)
    for _ in range(steps):
        demand = p1 * (np.log1p(np.maximum(-0.99, news)) - model.fundamental_aversion * sigma)
        demand += p2 * (model.ai_forecast * news - model.ai_aversion * np.abs(shock))
        sigma = rho * k * np.abs(1 + demand)
        shock = sigma * rng.standard_normal(n_chains)
        news = rng.standard_normal(n_chains)
    return demand


@pytest.mark.parametrize(
    "model",
    [GarchMarket(), GarchMarket(fundamental_share=0.3, ai_share=0.2)],
    ids=["paper", "p1=0.3,p2=0.2"],
)
def test_mean_demand_is_the_book_free_models_mean(model):
    demands = _stationary_demands(model, n_chains=20_000, steps=300, seed=11)
    error = demands.std() / math.sqrt(len(demands))
    assert mean_demand(model) == pytest.approx(demands.mean(), abs=4 * error)
    if model == GarchMarket():  # at the paper's parameters, as the engine's docstring says
        assert mean_demand(model) == pytest.approx(-0.74, abs=0.02)


def test_an_exploding_crowd_stays_in_finite_numbers():
    # p2 = 0.46 passes the analytic screen (alpha + beta 0.92) but explodes through the book
    result = simulate(flow_config(steps=1500, ai_share=0.46), seed=0, runs=3, log_orders=True)
    closes = result.prices[:, :, 0, 0]
    assert np.isfinite(closes).all() and (closes > 0).all()
    for orders in result.orders:
        assert (orders["volume"] > 0).all() and orders["volume"].max() <= 1000 * 400
    assert (closes.max(axis=1) / closes[:, 0] > 100).any() or (closes.min(axis=1) < 10).any()
