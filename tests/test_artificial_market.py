"""The artificial market engine against a plain-Python replay, PAMS's statistics and invariants.

References: a step-by-step Python replay of the documented loop (FCN rule, call auction at the
open, continuous matching through the reference book of `test_artificial_book`), PAMS 0.3.0's
own CI2002 statistics (measured over 100 seeds with PAMS: lag-1 autocorrelation of 10-step bar
log returns -0.456 +- 0.107, their standard deviation 0.0307, executed volume 220 +- 18, opening
volume 23.5 +- 2.9), closed-form moments of the fundamental process, and the config's rules.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_artificial_book import ReferenceBook

from kabuto.errors import ConfigError, KabutoWarning
from kabuto.sim.artificial import (
    SimulationConfig,
    load_simulation,
    parse_simulation,
    read_pams_config,
    simulate,
)
from kabuto.sim.artificial import runner as runner_module
from kabuto.sim.artificial.engine import (
    CLOSE,
    DEPTH_BID,
    FUNDAMENTAL,
    MARGIN,
    NOISE_SCALE,
    ORDERS,
    REVERSION_TIME,
    TIME_WINDOW,
    TRADES,
    VOLUME_TRADED,
    W_CHART,
    W_FUNDAMENTAL,
    W_NOISE,
    fcn_expected_price,
)
from kabuto.sim.artificial.policy import Observation, Order, predictor_policy
from kabuto.sim.artificial.runner import draw_run

CI2002 = Path(__file__).resolve().parents[1] / "examples" / "pams_ci2002.json"
ORDER_FLOW = CI2002.with_name("order_flow_market.toml")


def small_config(**changes) -> SimulationConfig:
    raw = {
        "markets": [{"name": "M", "tick_size": 0.01, "price": 100.0}],
        "agents": [
            {
                "name": "fcn",
                "count": 30,
                "markets": ["M"],
                "fundamental_weight": {"expon": 1.0},
                "chart_weight": {"expon": 0.5},
                "noise_weight": {"expon": 1.0},
                "noise_scale": 0.002,
                "time_window": [10, 30],
                "reversion_time": {"uniform": [5, 15]},
                "margin": [0.0, 0.02],
            }
        ],
        "sessions": [
            {"name": "pre-open", "steps": 20, "execute": False},
            {"name": "continuous", "steps": 300, "orders_per_step": 2},
        ],
    }
    for key, value in changes.items():
        raw[key] = value
    return parse_simulation(raw)


# ------------------------------------------------------------------ a plain-Python replay


def call_auction(ref: ReferenceBook, reference: int):
    """Itayose on the reference book: the price trading the most, fills in priority order."""
    bids = [o for o in ref.resting if o["side"] == 0]
    asks = [o for o in ref.resting if o["side"] == 1]
    best = None
    for p in sorted({o["price"] for o in ref.resting}):
        demand = sum(o["volume"] for o in bids if o["price"] >= p)
        supply = sum(o["volume"] for o in asks if o["price"] <= p)
        key = (-min(demand, supply), abs(demand - supply), abs(p - reference))
        if min(demand, supply) > 0 and (best is None or key < best[0]):
            best = (key, p)
    if best is None:
        return None
    price = best[1]
    bids = sorted((o for o in bids if o["price"] >= price), key=lambda o: (-o["price"], o["id"]))
    asks = sorted((o for o in asks if o["price"] <= price), key=lambda o: (o["price"], o["id"]))
    while bids and asks:
        b, a = bids[0], asks[0]
        fill = min(b["volume"], a["volume"])
        ref.trades.append((None, price, fill, b["agent"], a["agent"]))
        for o, side in ((b, bids), (a, asks)):
            o["volume"] -= fill
            if o["volume"] == 0:
                side.pop(0)
                ref.resting.remove(o)
    return price


def replay(config: SimulationConfig, seed: int) -> np.ndarray:
    """Closes per step of a one-market config from the documented rules, on the same inputs.

    Covers FCN agents, market makers, price bands, trading halts (with the call auction at the
    reopening) and mistaken orders.
    """
    inputs = draw_run(config, seed)
    market = config.markets[0]
    tick, start_price = market.tick_size, market.price
    ref = ReferenceBook(len(inputs.cash))
    closes = np.zeros(config.n_steps)
    price = start_price
    band = [0, 2**62]
    halt_rate = halt_steps = 0
    for event in config.events:
        if event.type == "price_limit":
            band = [
                math.ceil(start_price * (1 - event.rate) / tick),
                math.floor(start_price * (1 + event.rate) / tick),
            ]
        if event.type == "trading_halt":
            halt_rate, halt_steps = event.rate, event.steps
    mistakes = [e for e in config.events if e.type == "mistaken_order"]
    halted_until, n_halts, was_executing = 0, 0, False

    def clip(level):
        return min(max(level, band[0]), band[1])

    def check_halt(t):
        nonlocal executing, halted_until, n_halts
        threshold = start_price * halt_rate * (n_halts + 1)
        if halt_rate and executing and abs(price - start_price) >= threshold:
            n_halts += 1
            executing = False
            halted_until = t + 1 + halt_steps

    def place(agent, side, level, volume, lifetime, t):
        nonlocal price
        n_before = len(ref.trades)
        ref.submit(agent, side, level, volume, lifetime, t, executing)
        if len(ref.trades) > n_before:
            price = ref.trades[-1][1] * tick
            check_halt(t)

    for t in range(config.n_steps):
        ref.alive(t)
        executing = bool(inputs.execute[t]) and t >= halted_until
        if executing and not was_executing:
            opened = call_auction(ref, round(price / tick))
            if opened is not None:
                price = opened * tick
                check_halt(t)
        was_executing = executing
        for e in (e for e in mistakes if e.step == t):  # from their account, after every agent's
            level = max(clip(round(price * (1 + e.change) / tick)), 1)
            place(config.n_agents, 0 if e.change > 0 else 1, level, e.volume, e.lifetime, t)
        snapshot = price
        for slot, agent in enumerate(inputs.chosen[t]):
            if agent < 0:
                continue
            p = inputs.fcn[agent]
            tau = int(p[TIME_WINDOW])
            tc = min(t, tau)
            past = closes[t - tc] if tc > 0 else snapshot
            chart = math.log(snapshot / past) / tc if tc > 0 else 0.0
            weights = abs(p[W_FUNDAMENTAL]) + abs(p[W_CHART]) + abs(p[W_NOISE])
            r = (
                p[W_FUNDAMENTAL]
                * (math.log(inputs.fundamentals[t, 0] / snapshot) / p[REVERSION_TIME])
                + p[W_CHART] * chart
                + p[W_NOISE] * p[NOISE_SCALE] * inputs.noise[t, slot]
            ) / weights
            expected = snapshot * math.exp(r * tau)
            if expected > snapshot:
                side, level = 0, math.floor(expected * (1 - p[MARGIN]) / tick + 1e-9)
            elif expected < snapshot:
                side, level = 1, math.ceil(expected * (1 + p[MARGIN]) / tick - 1e-9)
            else:
                continue
            level = clip(level)
            if level > 0:
                place(int(agent), side, level, 1, tau, t)
        for maker in inputs.fast:  # market makers only in these configs
            _, agent, _, spread, volume, lifetime, levels, spacing = maker
            agent, volume, lifetime = int(agent), int(volume), int(lifetime)
            ref.alive(t)
            bids = [o["price"] for o in ref.resting if o["side"] == 0]
            asks = [o["price"] for o in ref.resting if o["side"] == 1]
            base = (max(bids) + min(asks)) / 2 * tick if bids and asks else price
            half = inputs.fundamentals[t, 0] * spread / 2
            low = math.floor((base - half) / tick + 1e-9)
            high = math.ceil((base + half) / tick - 1e-9)
            gap = max(1, round(spacing * base / tick))
            for out in range(int(levels)):  # the ladder, bid then ask at each level
                for side, level in ((0, clip(low - out * gap)), (1, clip(high + out * gap))):
                    if level > 0:
                        place(agent, side, level, volume, lifetime, t)
        closes[t] = price
    return closes


MAKER = {
    "name": "mm",
    "type": "market_maker",
    "markets": ["M"],
    "spread": 0.004,
    "volume": 2,
    "lifetime": 3,
}
EVENTS = [
    {"type": "price_limit", "markets": ["M"], "rate": 0.03},
    {"type": "trading_halt", "markets": ["M"], "rate": 0.01, "steps": 7},
    {"type": "mistaken_order", "market": "M", "step": 150, "change": 0.02, "volume": 20},
    {"type": "fundamental_shock", "market": "M", "step": 100, "change": 0.05},
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("extras", ["fcn", "maker", "ladder", "events"])
def test_engine_equals_a_plain_python_replay(seed, extras):
    config = small_config()
    if extras == "ladder":  # quotes at 4 levels a side, 0.2% of the price (about 20 ticks) apart
        ladder = MAKER | {"levels": 4, "level_spacing": 0.002}
        config = small_config(agents=[*config.model_dump()["agents"], ladder])
    elif extras != "fcn":
        config = small_config(agents=[*config.model_dump()["agents"], MAKER])
    if extras == "events":
        config = small_config(agents=config.model_dump()["agents"], events=EVENTS)
    result = simulate(config, seed=seed)
    np.testing.assert_allclose(result.prices[0, :, 0, CLOSE], replay(config, seed), rtol=1e-12)
    assert result.counts[0, :, 0, TRADES].sum() > 100


def test_fcn_expected_price_is_the_documented_formula():
    params = np.zeros(7)
    params[[W_FUNDAMENTAL, W_CHART, W_NOISE]] = 1.5, 0.5, 1.0
    params[[NOISE_SCALE, TIME_WINDOW, REVERSION_TIME, MARGIN]] = 0.01, 20, 10, 0.05
    price, fundamental, past, z = 101.0, 100.0, 99.0, 0.7
    r = (1.5 * math.log(100 / 101) / 10 + 0.5 * math.log(101 / 99) / 20 + 1.0 * 0.01 * 0.7) / 3
    assert fcn_expected_price(params[None], 0, price, fundamental, past, 50, z) == pytest.approx(
        101 * math.exp(r * 20), rel=1e-14
    )
    # before tau steps the chart window is clipped to t; at t = 0 there is no chart term
    r0 = (1.5 * math.log(100 / 101) / 10 + 1.0 * 0.01 * 0.7) / 3
    assert fcn_expected_price(params[None], 0, price, fundamental, past, 0, z) == pytest.approx(
        101 * math.exp(r0 * 20), rel=1e-14
    )


# ------------------------------------------------------------------ PAMS's CI2002 sample


def test_pams_ci2002_config_is_read_with_its_semantics():
    config = read_pams_config(CI2002)
    assert config.n_steps == 600 and config.n_agents == 100
    market = config.markets[0]
    assert (market.name, market.tick_size, market.price, market.volatility) == (
        "Market",
        1e-5,
        300.0,
        0.0,
    )
    group = config.agents[0]
    assert group.fundamental_weight == {"expon": [1.0]} and group.time_window == [100.0, 200.0]
    assert group.reversion_time == {"uniform": [50.0, 100.0]} and group.cash == 10000
    assert [(s.steps, s.execute, s.orders_per_step) for s in config.sessions] == [
        (100, False, 1),
        (500, True, 1),
    ]
    assert load_simulation(CI2002) == config


def test_ci2002_matches_pams_statistics_over_seeds():
    result = simulate(read_pams_config(CI2002), seed=7, runs=60)
    closes = result.prices[:, :, 0, CLOSE]
    assert (closes[:, :100] == 300.0).all()  # pre-open: nothing trades
    assert (result.counts[:, :100, 0, VOLUME_TRADED] == 0).all()
    bars = np.log(closes[:, 109::10])  # the closes of the 10-step bars of the continuous session
    returns = np.diff(bars, axis=1)
    ac1 = [np.corrcoef(r[:-1], r[1:])[0, 1] for r in returns]
    # PAMS 0.3.0 (100 seeds): -0.456 +- 0.107, sd 0.0307, volume 220 +- 18, opening 23.5 +- 2.9
    assert -0.52 < np.mean(ac1) < -0.40
    assert 0.027 < returns.std() < 0.035
    volume = result.counts[:, :, 0, VOLUME_TRADED]
    assert 205 < volume.sum(axis=1).mean() < 235
    assert 20 < volume[:, 100].mean() < 27  # the opening call auction
    assert result.n_orders == 60 * 600


# ------------------------------------------------------------------ runs, outputs, rules


def test_same_seed_same_run_and_batches_are_single_runs():
    config = small_config()
    a, b = simulate(config, seed=3), simulate(config, seed=3)
    np.testing.assert_array_equal(a.prices, b.prices)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert not np.array_equal(a.prices, simulate(config, seed=4).prices)
    batch = simulate(config, seed=11, runs=4, n_jobs=2)
    single = simulate(config, seed=batch.seeds[2])
    np.testing.assert_array_equal(batch.prices[2], single.prices[0])
    assert len(set(batch.seeds)) == 4


def test_correlated_fundamentals_have_the_configured_moments():
    markets = [
        {"name": n, "tick_size": 0.01, "price": 100.0, "volatility": 0.01, "drift": 0.001}
        for n in ("A", "B")
    ]
    agents = small_config().model_dump()["agents"]
    agents[0]["markets"] = ["A", "B"]
    config = small_config(
        markets=markets,
        agents=agents,
        correlations=[["A", "B", 0.6]],
        sessions=[{"name": "c", "steps": 20_000, "orders_per_step": 1}],
    )
    inputs = draw_run(config, 5)
    steps = np.diff(np.log(inputs.fundamentals), axis=0)
    assert np.corrcoef(steps.T)[0, 1] == pytest.approx(0.6, abs=0.02)
    np.testing.assert_allclose(steps.std(axis=0), 0.01, rtol=0.03)
    np.testing.assert_allclose(steps.mean(axis=0), 0.001, atol=3 * 0.01 / np.sqrt(20_000))
    assert (inputs.fundamentals[0] == 100.0).all()


def test_cash_and_short_limits_are_enforced():
    config = small_config()
    limited = config.model_copy(deep=True)
    limited.agents[0].cash_floor = 0.0
    limited.agents[0].max_short = 0
    limited.agents[0].cash = 300.0
    limited.agents[0].assets = 2.0
    result = simulate(limited, seed=2, log_trades=True)
    trades = result.trades[0]
    assert len(trades) > 20
    inputs = draw_run(limited, 2)
    cash = inputs.cash.copy()
    held = inputs.assets[:, 0].copy()
    for row in trades.itertuples():
        cash[row.buyer] -= row.price * row.volume
        cash[row.seller] += row.price * row.volume
        held[row.buyer] += row.volume
        held[row.seller] -= row.volume
        assert cash[row.buyer] >= -1e-9 and held[row.seller] >= 0
    # without limits the same agents go short and borrow
    free = simulate(config, seed=2, log_trades=True).trades[0]
    assert len(free) > len(trades)


def test_outputs_frame_and_panel():
    config = small_config()
    result = simulate(config, seed=1)
    frame = result.frame()
    assert len(frame) == config.n_steps and set(frame["market"]) == {"M"}
    np.testing.assert_array_equal(frame["price"], result.prices[0, :, 0, CLOSE])
    np.testing.assert_array_equal(frame["fundamental"], result.prices[0, :, 0, FUNDAMENTAL])
    np.testing.assert_array_equal(frame["depth_bid"], result.counts[0, :, 0, DEPTH_BID])
    assert (frame["depth_ask"] >= 0).all()
    quoted = frame.dropna(subset=["best_bid", "best_ask"])
    quoted = quoted[quoted.step >= 20]  # continuous trading: the book never stays crossed
    assert len(quoted) > 250 and (quoted["best_bid"] < quoted["best_ask"]).all()
    panel = result.panel(bar=10, start_step=20)
    assert panel.n_dates == 30 and panel.assets == ("M",)
    np.testing.assert_array_equal(panel.prices[:, 0], result.prices[0, 20::10, 0, CLOSE])
    with pytest.raises(ConfigError, match="bar = 0"):
        result.panel(bar=0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"markets": [{"name": "M", "tick_size": 0.01, "price": 100.0, "tick": 1}]}, "tick"),
        ({"markets": [{"name": "M", "tick_size": -1, "price": 100.0}]}, "markets.0.tick_size"),
        ({"sessions": [{"name": "s", "steps": 0}]}, "sessions.0.steps"),
        ({"correlations": [["M", "X", 0.5]]}, "unknown market 'X'"),
        # Values are taken as written: no inf or nan, no numbers in strings, no 2.0 for a count.
        ({"markets": [{"name": "M", "tick_size": 0.01, "price": math.inf}]}, "price = inf"),
        ({"markets": [{"name": "M", "tick_size": 0.01, "price": "100"}]}, "price = '100'"),
        ({"markets": [{"name": "M", "tick_size": 0.01, "price": 1.0, "drift": math.nan}]}, "drift"),
        ({"sessions": [{"name": "s", "steps": 10.0}]}, "sessions.0.steps = 10.0"),
        ({"sessions": [{"name": "s", "steps": 10, "execute": "yes"}]}, "execute = 'yes'"),
        ({"correlations": [["M", "M", math.nan]]}, r"correlations\.0\.2 = nan"),
        # a price below one tick could never be quoted: nothing would trade
        (
            {"markets": [{"name": "M", "tick_size": 1e6, "price": 300.0}]},
            r"price = 300 is 0\.0003 ticks of tick_size = 1e\+06",
        ),
        ({"markets": [{"name": "M", "tick_size": 0.01, "price": 1e300}]}, "1 to 2\\*\\*53 ticks"),
    ],
)
def test_bad_configs_name_the_key(change, match):
    with pytest.raises(ConfigError, match=match):
        small_config(**change)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # every agent of the group would have three zero weights (any notation of 0)
        (
            lambda raw: raw["agents"][0].update(
                fundamental_weight=0, chart_weight={"const": 0}, noise_weight={"expon": 0}
            ),
            r"^config: agents\.0: fundamental_weight, chart_weight and noise_weight are all 0",
        ),
        # more FCN orders a step than FCN agents (30)
        (
            lambda raw: raw["sessions"][1].update(orders_per_step=31),
            r"^config: sessions\.1\.orders_per_step = 31 but there are only 30 FCN agents",
        ),
        # a buy at P (1 - margin) <= 0: every buy was dropped, uncounted
        (lambda raw: raw["agents"][0].update(margin=1.0), r"margin must be below 1"),
        (lambda raw: raw["agents"][0].update(margin=[0.0, 2.0]), r"margin must be below 1"),
        # past int64 in the compiled loop: a traceback, or volumes and halts that wrapped
        (lambda raw: raw["agents"][0].update(max_short=10**20), r"agents\.0\.max_short"),
        (lambda raw: raw["agents"].append(MAKER | {"volume": 2**63 - 1}), r"agents\.1\.volume"),
        (lambda raw: raw.update(events=[EVENTS[2] | {"volume": 2**70}]), r"events\.0.*volume"),
        (lambda raw: raw.update(events=[EVENTS[2] | {"change": 1e20}]), r"events\.0.*change"),
        (lambda raw: raw.update(events=[EVENTS[1] | {"steps": 2**63 - 1}]), r"events\.0.*steps"),
        # a session without orders takes none, a mistake's included
        (
            lambda raw: (
                raw["sessions"][1].update(orders=False),
                raw.update(events=[EVENTS[2]]),
            ),
            r"events\[0\] \(mistaken_order\) is at step 150, in a session that places no",
        ),
    ],
)
def test_configs_that_cannot_run_are_refused_when_read(edit, match):
    raw = small_config().model_dump()
    edit(raw)
    with pytest.raises(ConfigError, match=match):
        parse_simulation(raw)


@pytest.mark.parametrize(
    ("assets", "match"),
    [
        (50.7, r"agents\.0\.assets = 50\.7: a fixed number of units must be whole"),
        ({"const": 2.5}, r"agents\.0\.assets.*must be whole"),
        (1e30, r"agents\.0\.assets = 1e\+30: units must be within \+-2\*\*53"),
        ({"expon": 1e20}, r"agents\.0\.assets: units must be within"),
    ],
)
def test_units_held_are_whole_and_exact(assets, match):
    # held as int64 units: 50.7 used to be truncated to 50 silently, 1e30 to overflow
    raw = small_config().model_dump()
    raw["agents"][0]["assets"] = assets
    with pytest.raises(ConfigError, match=match):
        parse_simulation(raw)
    raw["agents"][0]["assets"] = {"normal": [50.0, 5.0]}  # draws: truncated toward 0
    parse_simulation(raw)


def test_an_unknown_agent_type_is_named_without_the_whole_table():
    raw = small_config().model_dump()
    raw["agents"][0]["type"] = "momentum"
    with pytest.raises(ConfigError) as excinfo:
        parse_simulation(raw)
    assert str(excinfo.value) == (
        "config: agents.0: 'momentum' is not a known type; use one of 'fcn', 'market_maker', "
        "'policy', 'arbitrage', 'order_flow'"
    )


def test_random_weights_that_may_all_be_0_are_allowed():
    raw = small_config().model_dump()
    raw["agents"][0].update(
        fundamental_weight=[0.0, 1.0], chart_weight={"normal": [0.0, 0.1]}, noise_weight=0
    )
    parse_simulation(raw)


def test_bad_agent_settings_and_pams_keys_are_named(tmp_path):
    raw = small_config().model_dump()
    raw["agents"][0]["margin"] = {"lognormal": [0, 1]}
    with pytest.raises(ConfigError, match=r"agents\.0\.margin"):
        parse_simulation(raw)
    raw["agents"][0]["margin"] = [0.0, 0.1]
    raw["agents"][0]["markets"] = ["Nowhere"]
    with pytest.raises(ConfigError, match="unknown market"):
        parse_simulation(raw)
    pams = json.loads(Path(CI2002).read_text())
    pams["FCNAgents"]["orderVolume"] = 3
    path = tmp_path / "c.json"
    path.write_text(json.dumps(pams))
    with pytest.raises(ConfigError, match=r"FCNAgents has key\(s\) \['orderVolume'\]"):
        read_pams_config(path)
    pams["FCNAgents"].pop("orderVolume")
    pams["FCNAgents"]["class"] = "MarketMakerAgent"
    path.write_text(json.dumps(pams))
    with pytest.raises(ConfigError, match="supports 'FCNAgent'"):
        load_simulation(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_pams_config(path)


def test_events_do_what_they_say():
    agents = [*small_config().model_dump()["agents"], MAKER]
    plain = small_config(agents=agents)
    config = small_config(agents=agents, events=EVENTS)
    result = simulate(config, seed=4, log_trades=True)
    trades = result.trades[0]
    # price band: every trade within 3% of the initial price 100
    assert trades["price"].between(97.0 - 1e-9, 103.0 + 1e-9).all()
    # fundamental shock: the path is the plain one times 1.05 from step 100 on
    shocked, base = draw_run(config, 4).fundamentals[:, 0], draw_run(plain, 4).fundamentals[:, 0]
    np.testing.assert_allclose(shocked[100:], base[100:] * 1.05, rtol=1e-14)
    np.testing.assert_array_equal(shocked[:100], base[:100])
    # the mistaken order: 20 units bought at step 150 in one go
    at_150 = trades[trades.step == 150]
    assert at_150["volume"].sum() >= 2 and (at_150["price"] >= result.prices[0, 149, 0, 0]).all()
    # halts: each one freezes trading for 7 steps, then a call auction reopens the market
    volume = result.counts[0, :, 0, VOLUME_TRADED]
    close = result.prices[0, :, 0, CLOSE]
    moved = np.abs(close - 100.0)
    halts = 0
    t = 20
    while t < config.n_steps - 8:
        if moved[t] >= 1.0 * (halts + 1) and volume[t] > 0:
            assert (volume[t + 1 : t + 8] == 0).all(), t
            halts += 1
            t += 8
        else:
            t += 1
    assert halts >= 1


def test_every_mistaken_order_is_placed_at_its_step_from_its_own_account():
    """FCN agents trade only A, and none at all in the second session: each mistaken order
    still arrives at its step, as its own order, on top of the agents' orders."""
    markets = [
        {"name": "A", "tick_size": 0.01, "price": 100.0},
        {"name": "B", "tick_size": 0.01, "price": 50.0},
    ]
    fcn = small_config().model_dump()["agents"][0] | {"markets": ["A"]}
    maker = MAKER | {"markets": ["B"]}
    sessions = [
        {"name": "busy", "steps": 100, "orders_per_step": 2},
        {"name": "quiet", "steps": 100, "orders_per_step": 0},
    ]
    events = [
        *(
            {"type": "mistaken_order", "market": "B", "step": s, "change": 0.05, "volume": 7}
            for s in range(40, 50)
        ),
        {"type": "mistaken_order", "market": "A", "step": 150, "change": -0.1, "volume": 9},
        {"type": "mistaken_order", "market": "A", "step": 150, "change": 0.2, "volume": 4},
    ]
    plain = small_config(markets=markets, agents=[fcn, maker], sessions=sessions)
    config = small_config(markets=markets, agents=[fcn, maker], sessions=sessions, events=events)
    result = simulate(config, seed=2, log_orders=True)
    orders = result.orders[0]
    account = config.n_agents  # after the 30 FCN agents and the maker
    mine = orders[orders.agent == account]
    assert len(mine) == len(events) == 12
    assert mine["step"].tolist() == [*range(40, 50), 150, 150]
    assert mine["market"].tolist() == [1] * 10 + [0, 0]
    assert mine["volume"].tolist() == [7] * 10 + [9, 4]
    assert mine["side"].tolist() == ["buy"] * 10 + ["sell", "buy"]
    closes = result.prices[0, :, :, CLOSE]
    expected = [round(closes[s - 1, 1] * 1.05 / 0.01) * 0.01 for s in range(40, 50)]
    np.testing.assert_allclose(mine["price"].iloc[:10], expected, rtol=1e-12)
    # the agents' orders are all there too: one order more per mistake, nothing replaced
    baseline = simulate(plain, seed=2)
    assert result.n_orders == baseline.n_orders + len(events)
    np.testing.assert_array_equal(result.prices[0, :40], baseline.prices[0, :40])
    # the normal path's random draws do not depend on the mistaken orders
    with_events, without = draw_run(config, 2), draw_run(plain, 2)
    for field in ("fcn", "cash", "fundamentals", "chosen", "noise"):
        np.testing.assert_array_equal(
            getattr(with_events, field)[: len(getattr(without, field))], getattr(without, field)
        )
    np.testing.assert_array_equal(simulate(config, seed=2).prices, result.prices)
    assert result.cash.shape == (1, account + 1)  # the mistaken orders' account is the last


def test_a_fundamental_shock_on_an_index_market_is_rejected():
    markets = [
        {"name": "A", "tick_size": 0.01, "price": 100.0},
        {"name": "B", "tick_size": 0.01, "price": 100.0},
        {"name": "I", "tick_size": 0.01, "price": 100.0, "components": ["A", "B"]},
    ]
    fcn = small_config().model_dump()["agents"][0] | {"markets": ["A", "B", "I"]}
    shock = {"type": "fundamental_shock", "market": "I", "step": 30, "change": -0.5}
    with pytest.raises(ConfigError, match=r"index market 'I'.*components \['A', 'B'\]"):
        small_config(markets=markets, agents=[fcn], events=[shock])
    small_config(markets=markets, agents=[fcn], events=[shock | {"market": "A"}])


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"runs": "2"}, "runs = '2': give a whole number"),
        ({"runs": 2.5}, "runs = 2.5"),
        ({"n_jobs": 0}, "n_jobs = 0"),
        ({"log_trades": "yes"}, "log_trades = 'yes': give True or False"),
    ],
)
def test_bad_simulate_arguments_are_named(setting, match):
    with pytest.raises(ConfigError, match=match):
        simulate(small_config(), **setting)


def test_agent_group_names_are_unique():
    group = small_config().model_dump()["agents"][0]
    with pytest.raises(ConfigError, match=r"agent group names must be unique; \['fcn'\]"):
        small_config(agents=[group, group])


def test_a_simulation_too_large_to_keep_is_refused_up_front():
    with pytest.raises(ConfigError, match=r"runs = 1000000000000 of 320 steps .* GiB of results"):
        simulate(small_config(), runs=10**12)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None, 2**63])
def test_a_bad_seed_is_a_config_error(seed):
    with pytest.raises(
        ConfigError, match=r"simulate: seed=.* use an integer (>= 0|in \[0, 2\*\*63\))"
    ):
        simulate(small_config(), seed=seed)


def test_results_that_cannot_fit_in_memory_are_refused_before_the_runs(monkeypatch):
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert runner_module.result_limit() == min(runner_module.MAX_RESULT_BYTES, memory)
    # 72 bytes a run, step and market: 320 steps, so a limit of 1 MiB holds 45 runs
    monkeypatch.setattr(runner_module, "MAX_RESULT_BYTES", 2**20)
    with pytest.raises(ConfigError, match=r"runs = 50 of 320 steps in 1 market\(s\) would keep"):
        simulate(small_config(), seed=0, runs=50)


PAMS_MISTAKE = {
    "class": "OrderMistakeShock",
    "target": "Market",
    "triggerTime": 300,
    "priceChangeRate": 0.05,
    "orderVolume": 30,
}


def _pams_with_events() -> dict:
    pams = json.loads(Path(CI2002).read_text())
    pams["simulation"]["sessions"][1]["events"] = ["Mistake", "Halt"]
    pams["Mistake"] = dict(PAMS_MISTAKE)
    pams["Halt"] = {
        "class": "TradingHaltRule",
        "targetMarkets": ["Market"],
        "triggerChangeRate": 0.05,
        "haltingTimeLength": 10,
    }
    return pams


def _set(path: str, value):
    """Set the JSON value at a dotted path (list indices as numbers) of a PAMS config."""

    def change(pams: dict) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = pams
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def test_a_session_without_orders_takes_none_from_any_agent():
    # market makers kept quoting in it, and policies were asked and their orders dropped
    # (crowds and arbitrageurs ordered too); PAMS asks no agent at all
    fcn = small_config().model_dump()["agents"][0]
    config = small_config(
        agents=[fcn, MAKER, POLICY_GROUP | {"start": 0, "every": 5}],
        sessions=[
            {"name": "pre-open", "steps": 20, "execute": False},
            {"name": "closed", "steps": 30, "orders": False, "execute": False},
            {"name": "continuous", "steps": 100, "orders_per_step": 2},
        ],
    )
    asked = []

    def buy(obs: Observation) -> Order:
        asked.append(obs.step)
        return Order(side="buy", price=99.0)

    orders = simulate(config, seed=0, policies={"AI": buy}).counts[0, :, 0, ORDERS]
    assert orders[:20].min() >= 2  # the maker's two quotes a step, and the FCN agents'
    assert (orders[20:50] == 0).all()
    assert orders[50:].min() >= 2
    assert asked == [s for s in range(0, 150, 5) if not 20 <= s < 50]


def test_pams_obsolete_and_comment_keys_are_read_and_a_shared_fcn_group_warned():
    # PAMS's own trading_halt sample has referenceMarket, and its samples write MEMO comments
    pams = _pams_with_events()
    pams["Halt"] |= {"referenceMarket": "Market", "MEMO": "halts for 10 steps"}
    pams["FCNAgents"]["MEMO"] = "the CI2002 agents"
    read_pams_config(pams)
    # a PAMS agent of a group over two markets holds and orders in both; kabuto deals them out
    pams = json.loads(Path(CI2002).read_text())
    pams["Market"]["numMarkets"] = 2
    with pytest.warns(KabutoWarning, match="FCNAgents trades 2 markets; a PAMS FCN agent"):
        read_pams_config(pams)


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("Market.numMarkets", "two", r"Market\.numMarkets = 'two': expected a whole number"),
        ("Market.numMarkets", 1.5, r"Market\.numMarkets = 1\.5"),
        ("simulation.sessions.0.iterationSteps", "abc", r"sessions\[0\]\.iterationSteps = 'abc'"),
        ("simulation.sessions.0.iterationSteps", None, r"sessions\[0\]\.iterationSteps = None"),
        ("simulation.sessions.0", "oops", r"sessions\[0\] = 'oops': expected a JSON object"),
        ("simulation.sessions", "oops", r"simulation\.sessions = 'oops'"),
        ("simulation.markets", "Market", r"simulation\.markets = 'Market': expected a list"),
        ("simulation.agents", "FCNAgents", r"simulation\.agents = 'FCNAgents'"),
        ("FCNAgents.markets", "Market", r"FCNAgents\.markets = 'Market'"),
        ("simulation.sessions.1.events", "Mistake", r"sessions\[1\]\.events = 'Mistake'"),
        ("simulation.fundamentalCorrelations", [["A", "B", 0.1]], r"fundamentalCorrelations = "),
        ("simulation.fundamentalCorrelations", {"pairwise": ["AB"]}, r"pairwise = \['AB'\]"),
        ("Mistake.triggerTime", "300", r"Mistake\.triggerTime = '300'"),
        ("Mistake.triggerTime", -1, r"Mistake\.triggerTime = -1"),
        ("Mistake.target", ["Market"], r"Mistake\.target = \['Market'\]"),
        ("Halt.targetMarkets", "Market", r"Halt\.targetMarkets = 'Market'"),
        ("Mistake.enabled", "false", r"Mistake\.enabled = 'false': expected true or false"),
        # a group of two markets (Market-0, Market-1): PAMS finds no market named "Market"
        ("Market.numMarkets", 2, r"Mistake\.target = 'Market' is a group of 2 markets; .*Market-1"),
        # values kabuto's own validation refuses are named as the PAMS file spells them
        (
            "Market.fundamentalVolatility",
            -1.0,
            r"Market\.fundamentalVolatility = -1\.0: .* equal to 0",
        ),
        ("Market.tickSize", 0, r"Market\.tickSize = 0: "),
        ("FCNAgents.numAgents", 0, r"FCNAgents\.numAgents = 0: "),
        ("FCNAgents.timeWindowSize", [5], r"FCNAgents\.timeWindowSize = \[5\]: "),
        ("simulation.sessions.0.maxNormalOrders", -1, r"sessions\[0\]\.maxNormalOrders = -1: "),
        ("Mistake.orderVolume", 0, r"Mistake\.orderVolume = 0: "),
        ("Halt.haltingTimeLength", 0, r"Halt\.haltingTimeLength = 0: "),
        # a rule across a group's keys names the group (and its keys as PAMS spells them),
        # without dumping the whole table
        ("FCNAgents.noiseScale", -0.1, r"config: FCNAgents: noiseScale must not be negative$"),
        ("FCNAgents.orderMargin", [-0.1, 0.1], r"FCNAgents: orderMargin must not be negative$"),
        ("FCNAgents.orderMargin", 2.0, r"FCNAgents: orderMargin must be below 1"),
        ("simulation.sessions", [], r"config: simulation\.sessions = \[\]: "),
        (
            "simulation.sessions.1.maxNormalOrders",
            101,
            r"simulation\.sessions\[1\]\.maxNormalOrders = 101 but there are only 100 FCN",
        ),
    ],
)
def test_malformed_pams_values_are_named(path, value, match):
    pams = _pams_with_events()
    read_pams_config(pams)  # well formed as it stands
    _set(path, value)(pams)
    with pytest.raises(ConfigError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", KabutoWarning)  # two markets: the FCN group's warning
        read_pams_config(pams)


def test_pams_events_are_read_with_session_relative_times():
    pams = json.loads(Path(CI2002).read_text())
    pams["simulation"]["sessions"][1]["events"] = ["Shock", "Halt", "Limit", "Mistake", "Off"]
    pams["Shock"] = {
        "class": "FundamentalPriceShock",
        "target": "Market",
        "triggerTime": 200,
        "priceChangeRate": -0.1,
        "shockTimeLength": 2,
    }
    pams["Halt"] = {
        "class": "TradingHaltRule",
        "targetMarkets": ["Market"],
        "triggerChangeRate": 0.05,
        "haltingTimeLength": 10,
    }
    pams["Limit"] = {
        "class": "PriceLimitRule",
        "targetMarkets": ["Market"],
        "triggerChangeRate": 0.1,
    }
    # "agent" is obsolete in PAMS (a warning, no effect): accepted, and it changes nothing.
    pams["Mistake"] = PAMS_MISTAKE | {"orderTimeLength": 10, "agent": "FCNAgents"}
    pams["Off"] = pams["Shock"] | {"enabled": False}
    events = {e.type: e for e in read_pams_config(pams).events}
    assert len(events) == 4
    assert (events["fundamental_shock"].step, events["fundamental_shock"].duration) == (300, 2)
    assert events["fundamental_shock"].change == -0.1
    assert (events["trading_halt"].rate, events["trading_halt"].steps) == (0.05, 10)
    assert events["price_limit"].markets == ["Market"] and events["price_limit"].rate == 0.1
    mistake = events["mistaken_order"]
    assert (mistake.step, mistake.change, mistake.volume, mistake.lifetime) == (400, 0.05, 30, 10)
    # "referenceMarket" of the two rules is obsolete in PAMS too (a warning, no effect)
    before = read_pams_config(pams).events
    pams["Halt"]["referenceMarket"] = pams["Limit"]["referenceMarket"] = "Market"
    assert read_pams_config(pams).events == before


# ------------------------------------------------------------------ policy agents

POLICY_GROUP = {
    "name": "AI",
    "type": "policy",
    "markets": ["M"],
    "every": 10,
    "start": 20,
    "lifetime": 5,
    "cash": 1000.0,
    "assets": 0,
}


def test_a_silent_policy_changes_nothing_and_sees_only_the_past():
    config = small_config()
    with_policy = small_config(agents=[*config.model_dump()["agents"], POLICY_GROUP])
    seen = []

    def watch(obs: Observation) -> None:
        seen.append((obs.step, obs.closes.copy(), obs.fundamental, obs.position))
        assert not obs.closes.flags.writeable

    result = simulate(with_policy, seed=5, policies={"AI": watch})
    plain = simulate(config, seed=5)
    np.testing.assert_array_equal(result.prices, plain.prices)
    assert [s for s, *_ in seen] == list(range(20, config.n_steps, 10))
    fundamentals = draw_run(config, 5).fundamentals[:, 0]
    for step, closes, fundamental, position in seen:
        np.testing.assert_array_equal(closes, plain.prices[0, :step, 0, CLOSE])
        assert fundamental == fundamentals[step] and position == 0


def test_policy_orders_trade_in_the_book():
    agents = [*small_config().model_dump()["agents"], POLICY_GROUP]
    config = small_config(agents=agents)

    def buyer(obs: Observation) -> Order:
        return Order("buy", volume=2)  # a market order every 10 steps

    result = simulate(config, seed=1, policies={"AI": buyer}, log_trades=True)
    trades = result.trades[0]
    account = config.agents[0].count  # after the 30 FCN agents
    bought = trades[trades.buyer == account]
    assert bought["volume"].sum() > 20
    assert set(bought["step"]) <= set(range(20, config.n_steps, 10))
    # a limit order far below the market rests without filling; one order per decision
    far = simulate(
        config, seed=1, policies={"AI": lambda obs: Order("buy", 1, 1.0)}, log_trades=True
    )
    assert not (far.trades[0].buyer == account).any()
    plain = simulate(small_config(), seed=1)
    decisions = len(range(20, config.n_steps, 10))
    assert far.n_orders == plain.n_orders + decisions


def test_predictor_policy_with_a_torch_model_is_reproducible():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 1)
    config = small_config(agents=[*small_config().model_dump()["agents"], POLICY_GROUP])
    policy = predictor_policy(model, window=5, threshold=0.0)
    a = simulate(config, seed=2, policies={"AI": policy}, log_trades=True)
    b = simulate(config, seed=2, policies={"AI": policy}, log_trades=True)
    np.testing.assert_array_equal(a.prices, b.prices)
    account = config.agents[0].count
    trades = a.trades[0]
    assert ((trades.buyer == account) | (trades.seller == account)).sum() > 5


def test_policy_errors_are_named():
    config = small_config(agents=[*small_config().model_dump()["agents"], POLICY_GROUP])
    with pytest.raises(ConfigError, match=r"policy groups are \['AI'\]"):
        simulate(config, seed=0)
    with pytest.raises(ConfigError, match=r"policy 'AI' at step 20.*Order\.volume = 0"):
        simulate(config, seed=0, policies={"AI": lambda obs: Order("buy", 0)})
    with pytest.raises(ConfigError, match="returned 'buy'"):
        simulate(config, seed=0, policies={"AI": lambda obs: "buy"})
    # a text or bool price is no price (True was taken as a limit of 1.0)
    for price in ("101", True):
        with pytest.raises(ConfigError, match=rf"at step 20: Order\.price = {price!r}"):
            simulate(config, seed=0, policies={"AI": lambda obs, p=price: Order("buy", 1, p)})
    # a limit past the book's highest level vanished in the engine's int64 conversion
    with pytest.raises(ConfigError, match=r"Order\.price = 1e\+17 is 1e\+19 ticks"):
        simulate(config, seed=0, policies={"AI": lambda obs: Order("buy", 1, 1e17)})
    with pytest.raises(ConfigError, match=r"window = 2\.5"):
        predictor_policy(lambda x: 0.0, window=2.5)
    with pytest.raises(ConfigError, match=r"window = True"):
        predictor_policy(lambda x: 0.0, window=True)


def test_policies_may_answer_with_numpy_numbers():
    config = small_config(agents=[*small_config().model_dump()["agents"], POLICY_GROUP])
    numpy_order = {"AI": lambda obs: Order("buy", np.int64(2), np.float64(1.0))}
    python_order = {"AI": lambda obs: Order("buy", 2, 1.0)}
    a = simulate(config, seed=1, policies=numpy_order, log_orders=True)
    b = simulate(config, seed=1, policies=python_order, log_orders=True)
    pd.testing.assert_frame_equal(a.orders[0], b.orders[0])


def test_arbitrage_ties_an_index_market_to_its_basket():
    markets = [
        {"name": "A", "tick_size": 0.01, "price": 100.0, "volatility": 0.002},
        {"name": "B", "tick_size": 0.01, "price": 100.0, "volatility": 0.002, "shares": 3.0},
        {"name": "I", "tick_size": 0.01, "price": 100.0, "components": ["A", "B"]},
    ]
    fcn = small_config().model_dump()["agents"][0] | {"count": 60, "markets": ["A", "B", "I"]}
    sessions = [{"name": "c", "steps": 3000, "orders_per_step": 6}]
    arbitrageur = {
        "name": "arb",
        "type": "arbitrage",
        "markets": ["I"],
        "threshold": 0.1,
        "volume": 2,
        "lifetime": 5,
    }
    plain = small_config(markets=markets, agents=[fcn], sessions=sessions)
    tied = small_config(markets=markets, agents=[fcn, arbitrageur], sessions=sessions)
    # the index's fundamental is the share-weighted mean of its components'
    f = draw_run(tied, 0).fundamentals
    np.testing.assert_allclose(f[:, 2], 0.25 * f[:, 0] + 0.75 * f[:, 1], rtol=1e-14)

    def gap(config):
        closes = simulate(config, seed=0).prices[0, 500:, :, CLOSE]
        return np.abs(closes[:, 2] - (0.25 * closes[:, 0] + 0.75 * closes[:, 1])).mean()

    # measured: 0.35 against 1.96 without the arbitrageur (seed 0)
    assert gap(tied) < 0.5 * gap(plain)
    trades = simulate(tied, seed=0, log_trades=True).trades[0]
    account = 60  # after the FCN agents
    mine = trades[(trades.buyer == account) | (trades.seller == account)]
    assert set(mine["market"]) == {0, 1, 2}
    with pytest.raises(ConfigError, match="not index markets"):
        small_config(markets=markets, agents=[fcn, arbitrageur | {"markets": ["A"]}])
    with pytest.raises(ConfigError, match="index market 'I' follows its components"):
        small_config(markets=[*markets[:2], markets[2] | {"volatility": 0.01}], agents=[fcn])


def test_the_order_log_holds_every_order_as_placed():
    config = small_config(agents=[*small_config().model_dump()["agents"], MAKER, POLICY_GROUP])
    result = simulate(
        config,
        seed=3,
        log_orders=True,
        policies={"AI": lambda obs: Order("sell", 3)},
    )
    orders = result.orders[0]
    assert len(orders) == result.n_orders
    per_step = orders.groupby("step").size().reindex(range(config.n_steps), fill_value=0)
    np.testing.assert_array_equal(per_step.to_numpy(), result.counts[0, :, 0, 2])
    policy = orders[orders.agent == config.agents[0].count + 1]  # after 30 FCN agents, 1 maker
    assert len(policy) == len(range(20, config.n_steps, 10))
    assert policy["price"].isna().all() and (policy["side"] == "sell").all()
    assert (policy["volume"] == 3).all() and (policy["lifetime"] == 5).all()
    fcn = orders[orders.agent < 30]
    assert fcn["price"].notna().all() and set(fcn["side"]) == {"buy", "sell"}
    assert np.allclose(fcn["price"] / 0.01, np.round(fcn["price"] / 0.01))  # on the tick grid


@pytest.mark.parametrize("example", [CI2002, ORDER_FLOW])
def test_cash_and_shares_move_only_by_trades(example):
    config = load_simulation(example)
    result = simulate(config, seed=3, runs=2, log_trades=True)
    for run, seed in enumerate(result.seeds):
        start = draw_run(config, seed)
        trades = result.trades[run]
        assert len(trades) > 100
        cash, held = start.cash.copy(), start.assets.copy()
        value = (trades["price"] * trades["volume"]).to_numpy()
        np.add.at(cash, trades["buyer"].to_numpy(), -value)
        np.add.at(cash, trades["seller"].to_numpy(), value)
        markets = trades["market"].to_numpy()
        np.add.at(held, (trades["buyer"].to_numpy(), markets), trades["volume"].to_numpy())
        np.add.at(held, (trades["seller"].to_numpy(), markets), -trades["volume"].to_numpy())
        np.testing.assert_allclose(result.cash[run], cash, rtol=1e-12, atol=1e-6)
        np.testing.assert_array_equal(result.holdings[run], held)
        # shares are neither created nor destroyed, and money only changes hands
        np.testing.assert_array_equal(result.holdings[run].sum(axis=0), start.assets.sum(axis=0))
        assert result.cash[run].sum() == pytest.approx(start.cash.sum(), abs=1e-6)
