"""`simulate`: run an artificial market config for one or many seeded runs.

Everything random is drawn here, per run, from one numpy generator seeded by the run's own seed
(``SeedSequence(seed).spawn(runs)``), in a fixed order: agent parameters and accounts, the
fundamental shocks (none when no market's fundamental is random), which agents act at each step, and
their noise. The compiled loop (`kabuto.sim.artificial.engine.run_fcn`) then replays them
deterministically. Runs are independent, so ``runs=N`` (the batched mode for Monte Carlo) gives each
its own seed, and run k of a batch equals a single run with that seed.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from numba import njit

from kabuto.data.panel import Panel
from kabuto.errors import ConfigError, KabutoWarning
from kabuto.settings import check_seed, is_integer
from kabuto.sim.artificial.book import (
    BUY,
    MARKET_ORDER,
    NO_LIMIT,
    SELL,
    new_accounts,
    new_book,
    new_tape,
)
from kabuto.sim.artificial.config import (
    ArbitrageGroup,
    FCNGroup,
    FundamentalShock,
    MarketMakerGroup,
    MistakenOrder,
    OrderFlowGroup,
    PolicyGroup,
    PriceLimit,
    SimulationConfig,
    TradingHalt,
    draw,
)
from kabuto.sim.artificial.engine import (
    ARBITRAGE,
    BAND_HIGH,
    BAND_LOW,
    BEST_ASK,
    BEST_BID,
    CLOSE,
    EXTERNAL_FIELDS,
    FAST_AGENT,
    FAST_FIELDS,
    FAST_KIND,
    FAST_LEVELS,
    FAST_LIFETIME,
    FAST_MARKET,
    FAST_PARAM,
    FAST_SPACING,
    FAST_VOLUME,
    FCN_FIELDS,
    FLOW_AGENT,
    FLOW_FIELDS,
    FLOW_FORECAST,
    FLOW_GAMMA,
    FLOW_IMPACT,
    FLOW_LAMBDA,
    FLOW_MARKET,
    FLOW_MEAN,
    FLOW_NOISE,
    FLOW_P1,
    FLOW_P2,
    FLOW_UNIT,
    FLOW_VOLUME,
    FUNDAMENTAL,
    HALT_RATE,
    HALT_REFERENCE,
    HALT_STEPS,
    MAKER,
    MARGIN,
    MAX_TICKS,
    MISTAKE_FIELDS,
    NO_BAND,
    NOISE_SCALE,
    ORDERS,
    REVERSION_TIME,
    RULE_FIELDS,
    TIME_WINDOW,
    VOLUME_TRADED,
    W_CHART,
    W_FUNDAMENTAL,
    W_NOISE,
    new_state,
    run_fcn,
)
from kabuto.sim.artificial.garch_agents import mean_demand
from kabuto.sim.artificial.policy import Observation, Policy, check_order

__all__ = [
    "RunInputs",
    "SimulationResult",
    "draw_run",
    "runaway_note",
    "runaway_runs",
    "simulate",
]

TRADE_FIELDS = ("step", "market", "price", "volume", "buyer", "seller")
ORDER_FIELDS = ("step", "market", "agent", "side", "price", "volume", "lifetime")


@dataclass(frozen=True)
class SimulationResult:
    """Per-step records of R runs of T steps in M markets.

    Attributes
    ----------
    config : SimulationConfig
    seeds : list of int
        Each run's seed.
    prices : ndarray of shape (R, T, M, 4)
        Close (last trade price, carried forward), fundamental, best bid and best ask (NaN
        when that side of the book is empty) at the end of each step.
    counts : ndarray of shape (R, T, M, 5), int64
        Volume traded, trades, orders placed, and the bid and ask depth (live orders) at the
        end of each step.
    trades : list of DataFrame or None
        Per run, every trade (step, market, price, volume, buyer, seller) when requested.
    orders : list of DataFrame or None
        Per run, every order placed (step, market, agent, side "buy"/"sell", price, NaN for a
        market order, volume, lifetime) when requested.
    cash : ndarray of shape (R, A) or None
        Each account's cash after the last step. Accounts: the FCN agents, then the market
        makers and arbitrageurs, the order-flow crowds, the policy agents and, when the config
        has mistaken orders, the one account that places them (`_Layout`).
    holdings : ndarray of shape (R, A, M) or None
        Each account's units of each market after the last step.
    """

    config: SimulationConfig
    seeds: list[int]
    prices: np.ndarray
    counts: np.ndarray
    trades: list[pd.DataFrame] | None
    orders: list[pd.DataFrame] | None = None
    cash: np.ndarray | None = None
    holdings: np.ndarray | None = None

    @property
    def market_names(self) -> list[str]:
        return [m.name for m in self.config.markets]

    @property
    def n_orders(self) -> int:
        """Orders placed over all runs."""
        return int(self.counts[..., ORDERS].sum())

    def closes(self, run: int = 0) -> pd.DataFrame:
        """Per-step closes of one run: steps x markets."""
        return pd.DataFrame(self.prices[run, :, :, CLOSE], columns=self.market_names)

    def frame(self, run: int = 0) -> pd.DataFrame:
        """Every per-step field of one run, long form: step, market, then the fields."""
        from kabuto.sim.artificial.engine import BEST_ASK, BEST_BID, FUNDAMENTAL

        rows = []
        n_steps = self.prices.shape[1]
        for m, name in enumerate(self.market_names):
            p, c = self.prices[run, :, m], self.counts[run, :, m]
            rows.append(
                pd.DataFrame(
                    {
                        "step": np.arange(n_steps),
                        "market": name,
                        "price": p[:, CLOSE],
                        "fundamental": p[:, FUNDAMENTAL],
                        "best_bid": p[:, BEST_BID],
                        "best_ask": p[:, BEST_ASK],
                        "volume": c[:, VOLUME_TRADED],
                        "trades": c[:, 1],
                        "orders": c[:, ORDERS],
                        "depth_bid": c[:, 3],
                        "depth_ask": c[:, 4],
                    }
                )
            )
        return pd.concat(rows, ignore_index=True)

    def panel(self, bar: int = 1, run: int = 0, start_step: int = 0) -> Panel:
        """Closes sampled every `bar` steps from `start_step` on, as a `Panel` (one date a bar).

        The dates are business days from 2000-01-03, one per bar: a simulated calendar, so that
        the backtest and the hedging engines take the paths like any other prices.
        """
        if bar < 1 or start_step < 0 or start_step >= self.prices.shape[1]:
            raise ConfigError(
                f"bar = {bar}, start_step = {start_step}: need bar >= 1 and a start step "
                f"below {self.prices.shape[1]}"
            )
        closes = self.prices[run, start_step::bar, :, CLOSE]
        dates = pd.bdate_range("2000-01-03", periods=len(closes))
        frame = pd.DataFrame(closes, index=dates, columns=self.market_names)
        return Panel(
            frame,
            source=f"artificial market (seed {self.seeds[run]}, {bar}-step bars)",
        )


class _Layout(NamedTuple):
    """Where each agent group's rows are and what about them is fixed (once per config).

    Accounts: the A FCN agents first (account k is FCN agent k), then the market makers and
    arbitrageurs (in config order: the engine's ``fast`` table), then the order-flow crowds
    (the ``flow`` table), then the policy agents (`_policy_agents`), then, when the config
    has mistaken orders, their account (`_mistake_account`: no limits, nothing drawn).
    """

    groups: list  # (group, first account row) in config order: the order of the draws
    n_fcn: int
    market: np.ndarray  # (A,) int64 the market of each account
    cash_floor: np.ndarray  # (A,)
    max_short: np.ndarray  # (A,) int64
    fast: np.ndarray  # (J, FAST_FIELDS) market makers and arbitrageurs (nothing random)
    flow: np.ndarray  # (G, FLOW_FIELDS) order-flow crowds


def _layout(config: SimulationConfig) -> _Layout:
    index = {m.name: i for i, m in enumerate(config.markets)}
    kinds = (FCNGroup, MarketMakerGroup | ArbitrageGroup, OrderFlowGroup, PolicyGroup)
    ordered = [g for kind in kinds for g in config.agents if isinstance(g, kind)]
    starts, start = {}, 0
    for group in ordered:
        starts[id(group)] = start
        start += group.count
    n = config.n_agents + (_mistake_account(config) is not None)
    n_fcn = sum(g.count for g in config.agents if isinstance(g, FCNGroup))
    n_fast = sum(g.count for g in config.agents if isinstance(g, kinds[1]))
    market = np.zeros(n, dtype=np.int64)  # the mistaken orders' account keeps 0: unused
    floor = np.full(n, -np.inf)
    short = np.full(n, NO_LIMIT, dtype=np.int64)
    fast = np.zeros((n_fast, FAST_FIELDS))
    n_flow = sum(g.count for g in config.agents if isinstance(g, OrderFlowGroup))
    flow = np.zeros((n_flow, FLOW_FIELDS))
    for group in config.agents:
        k, first = group.count, starts[id(group)]
        rows = slice(first, first + k)
        codes = np.array([index[name] for name in group.markets])
        market[rows] = codes[np.arange(k) % len(codes)]  # spread over the group's markets
        if group.cash_floor is not None:
            floor[rows] = group.cash_floor
        if group.max_short is not None:
            short[rows] = group.max_short
        if isinstance(group, MarketMakerGroup | ArbitrageGroup):
            table = fast[first - n_fcn : first - n_fcn + k]
            maker = isinstance(group, MarketMakerGroup)
            table[:, FAST_KIND] = MAKER if maker else ARBITRAGE
            table[:, FAST_AGENT] = np.arange(first, first + k)
            table[:, FAST_MARKET] = market[rows]
            table[:, FAST_PARAM] = group.spread if maker else group.threshold
            table[:, FAST_VOLUME] = group.volume
            table[:, FAST_LIFETIME] = group.lifetime
            table[:, FAST_LEVELS] = group.levels if maker else 1
            table[:, FAST_SPACING] = (group.level_spacing or 0.0) if maker else 0.0
        elif isinstance(group, OrderFlowGroup):
            table = flow[first - n_fcn - n_fast : first - n_fcn - n_fast + k]
            table[:, FLOW_AGENT] = np.arange(first, first + k)
            table[:, FLOW_MARKET] = market[rows]
            model = group.model()
            table[:, FLOW_P1] = model.fundamental_share
            table[:, FLOW_P2] = model.ai_share
            table[:, FLOW_IMPACT] = model.impact
            table[:, FLOW_NOISE] = model.noise_scale
            table[:, FLOW_LAMBDA] = model.fundamental_aversion
            table[:, FLOW_GAMMA] = model.ai_aversion
            table[:, FLOW_FORECAST] = model.ai_forecast
            table[:, FLOW_VOLUME] = group.volume
            table[:, FLOW_UNIT] = group.unit
            table[:, FLOW_MEAN] = mean_demand(model)
    groups = [(g, starts[id(g)]) for g in config.agents]
    return _Layout(groups, n_fcn, market, floor, short, fast, flow)


def _mistake_account(config: SimulationConfig) -> int | None:
    """The account of the mistaken orders, after every agent's; None when there are none."""
    if any(isinstance(e, MistakenOrder) for e in config.events):
        return config.n_agents
    return None


def _agents(layout: _Layout, n_markets: int, rng: np.random.Generator):
    """FCN parameters, and each account's cash and holdings, drawn group by group in config
    order (the layout `_layout` fixes the rest)."""
    n = len(layout.market)
    fcn = np.zeros((layout.n_fcn, FCN_FIELDS))
    cash = np.zeros(n)
    assets = np.zeros((n, n_markets), dtype=np.int64)
    for group, first in layout.groups:
        k = group.count
        rows = slice(first, first + k)
        cash[rows] = draw(group.cash, k, rng)
        assets[np.arange(first, first + k), layout.market[rows]] = draw(group.assets, k, rng)
        if not isinstance(group, FCNGroup):
            continue
        fcn[rows, W_FUNDAMENTAL] = draw(group.fundamental_weight, k, rng)
        fcn[rows, W_CHART] = draw(group.chart_weight, k, rng)
        fcn[rows, W_NOISE] = draw(group.noise_weight, k, rng)
        fcn[rows, NOISE_SCALE] = draw(group.noise_scale, k, rng)
        window = np.floor(draw(group.time_window, k, rng))
        fcn[rows, TIME_WINDOW] = window
        reversion = group.reversion_time
        fcn[rows, REVERSION_TIME] = (
            window if reversion is None else np.floor(draw(reversion, k, rng))
        )
        fcn[rows, MARGIN] = draw(group.margin, k, rng)
    weights = np.abs(fcn[:, W_FUNDAMENTAL : W_NOISE + 1]).sum(axis=1)
    if (weights == 0).any():
        raise ConfigError("an FCN agent drew all three weights 0; give some weight a positive mean")
    return fcn, cash, assets


class _Plan(NamedTuple):
    """What a config fixes for every run (computed once per `simulate` call)."""

    tick: np.ndarray  # (M,)
    price: np.ndarray  # (M,) before the first trade
    fundamental: np.ndarray  # (M,) initial fundamentals
    drift: np.ndarray  # (M,)
    volatility: np.ndarray  # (M,)
    cholesky: np.ndarray  # (M, M) of the shock correlations
    execute: np.ndarray  # (T,)
    place: np.ndarray  # (T,) whether orders are placed at all
    per_step: np.ndarray  # (T,) FCN agents acting at each step
    rules: np.ndarray  # (M, RULE_FIELDS)
    mistakes: np.ndarray  # (E, MISTAKE_FIELDS)
    shocks: list  # (step, duration, market, change) of each fundamental shock
    basket: np.ndarray  # (M, M) component weights of index markets (see the engine)
    indices: np.ndarray  # index markets (rows of `basket` that are not 0)
    layout: _Layout


def _plan(config: SimulationConfig) -> _Plan:
    markets = config.markets
    index = {m.name: i for i, m in enumerate(markets)}
    rules, mistakes = _rules(config)
    basket = _basket(config)
    return _Plan(
        tick=np.array([m.tick_size for m in markets]),
        price=np.array([m.price for m in markets]),
        fundamental=np.array([m.initial_fundamental for m in markets]),
        drift=np.array([m.drift for m in markets]),
        volatility=np.array([m.volatility for m in markets]),
        cholesky=np.linalg.cholesky(config.correlation_matrix()),
        execute=np.concatenate([np.full(s.steps, s.execute) for s in config.sessions]),
        place=np.concatenate([np.full(s.steps, s.orders) for s in config.sessions]),
        per_step=np.concatenate(
            [np.full(s.steps, s.orders_per_step if s.orders else 0) for s in config.sessions]
        ),
        rules=rules,
        mistakes=mistakes,
        shocks=[
            (e.step, e.duration, index[e.market], e.change)
            for e in config.events
            if isinstance(e, FundamentalShock)
        ],
        basket=basket,
        indices=np.flatnonzero(basket.any(axis=1)),
        layout=_layout(config),
    )


def _basket(config: SimulationConfig) -> np.ndarray:
    """Index weights: row x holds the share weights of index market x's components."""
    index = {m.name: i for i, m in enumerate(config.markets)}
    basket = np.zeros((len(config.markets), len(config.markets)))
    for x, market in enumerate(config.markets):
        for name in market.components:
            basket[x, index[name]] = config.markets[index[name]].shares
        if market.components:
            basket[x] /= basket[x].sum()
    return basket


def _fundamentals(plan: _Plan, rng: np.random.Generator) -> np.ndarray:
    """(T, M) fundamental prices: a log random walk per market with correlated shocks.

    ``F_0`` is the initial fundamental and ``F_t = F_{t-1} exp(drift + vol * e_t)`` with
    ``e_t ~ N(0, C)`` (PAMS's process: no -vol^2 / 2 term, so the drift is that of the log).
    Each fundamental shock then scales the path from its step on.
    """
    n_steps, n_markets = len(plan.execute), len(plan.tick)
    if plan.volatility.any():
        shocks = rng.standard_normal((n_steps - 1, n_markets))
        if n_markets > 1:
            shocks = shocks @ plan.cholesky.T
        steps = plan.drift + plan.volatility * shocks
    else:  # a deterministic path: draw nothing
        steps = np.broadcast_to(plan.drift, (n_steps - 1, n_markets))
    growth = np.exp(np.vstack([np.zeros((1, n_markets)), np.cumsum(steps, axis=0)]))
    fundamentals = plan.fundamental * growth
    for step, duration, m, change in plan.shocks:
        for t in range(step, min(step + duration, n_steps)):
            fundamentals[t:, m] *= 1.0 + change
    if len(plan.indices):  # index markets follow their components
        fundamentals[:, plan.indices] = fundamentals @ plan.basket[plan.indices].T
    return fundamentals


def _rules(config: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-market price bands and halt rules, and the mistaken orders (see the engine)."""
    index = {m.name: i for i, m in enumerate(config.markets)}
    rules = np.zeros((len(config.markets), RULE_FIELDS))
    rules[:, BAND_HIGH] = NO_BAND
    mistakes = []
    for event in config.events:
        if isinstance(event, PriceLimit):
            for name in event.markets:
                m = config.markets[index[name]]
                rules[index[name], BAND_LOW] = math.ceil(m.price * (1 - event.rate) / m.tick_size)
                rules[index[name], BAND_HIGH] = math.floor(m.price * (1 + event.rate) / m.tick_size)
        elif isinstance(event, TradingHalt):
            for name in event.markets:
                m = index[name]
                rules[m, HALT_RATE] = event.rate
                rules[m, HALT_STEPS] = event.steps
                rules[m, HALT_REFERENCE] = config.markets[m].price
        elif isinstance(event, MistakenOrder):
            mistakes.append(
                (
                    event.step,
                    index[event.market],
                    event.change,
                    event.volume,
                    event.lifetime,
                    _mistake_account(config),
                )
            )
    table = np.array(sorted(mistakes), dtype=np.float64).reshape(-1, MISTAKE_FIELDS)
    return rules, table


def _schedule(plan: _Plan, n_agents: int, rng: np.random.Generator):
    """Per step: which FCN agents act (without repeats) and their noise."""
    slots = int(plan.per_step.max())
    if slots > n_agents:
        raise ConfigError(
            f"sessions: orders_per_step = {slots} but there are only {n_agents} FCN agents; "
            "each agent acts at most once a step"
        )
    chosen = _without_repeats(n_agents, rng.random((len(plan.per_step), slots)))
    chosen[np.arange(slots)[None, :] >= plan.per_step[:, None]] = -1
    noise = rng.standard_normal(chosen.shape)
    return chosen, noise


class RunInputs(NamedTuple):
    """Everything random about one run, drawn up front (see the module docstring)."""

    fcn: np.ndarray  # (A, FCN_FIELDS)
    agent_market: np.ndarray  # (A,)
    fast: np.ndarray  # (J, FAST_FIELDS) market makers and arbitrageurs
    cash: np.ndarray  # (A,)
    assets: np.ndarray  # (A, M)
    cash_floor: np.ndarray  # (A,)
    max_short: np.ndarray  # (A,)
    fundamentals: np.ndarray  # (T, M)
    execute: np.ndarray  # (T,)
    place: np.ndarray  # (T,)
    chosen: np.ndarray  # (T, K)
    noise: np.ndarray  # (T, K)
    rules: np.ndarray  # (M, RULE_FIELDS)
    mistakes: np.ndarray  # (E, MISTAKE_FIELDS)
    flow: np.ndarray  # (G, FLOW_FIELDS) order-flow crowds
    flow_draws: np.ndarray  # (T, G, 2) their news and noise shocks


def draw_run(config: SimulationConfig, seed: int, plan: _Plan | None = None) -> RunInputs:
    """The random inputs of one run with `seed`, in the module's fixed order."""
    plan = _plan(config) if plan is None else plan
    rng = np.random.default_rng(seed)
    layout = plan.layout
    fcn, cash, assets = _agents(layout, len(plan.tick), rng)
    fundamentals = _fundamentals(plan, rng)
    chosen, noise = _schedule(plan, len(fcn), rng)
    flow = layout.flow
    # drawn last, so that configs without crowds keep their streams
    flow_draws = rng.standard_normal((len(plan.execute), len(flow), 2)) if len(flow) else None
    return RunInputs(
        fcn,
        layout.market[: len(fcn)],
        layout.fast,
        cash,
        assets,
        layout.cash_floor,
        layout.max_short,
        fundamentals,
        plan.execute,
        plan.place,
        chosen,
        noise,
        plan.rules,
        plan.mistakes,
        flow,
        np.zeros((len(plan.execute), 0, 2)) if flow_draws is None else flow_draws,
    )


@njit(cache=True)
def _without_repeats(n_agents: int, uniforms: np.ndarray) -> np.ndarray:
    """Per row, K distinct agents drawn uniformly (a partial Fisher-Yates shuffle per row).

    Shape: uniforms (T, K) in [0, 1) -> output (T, K) int64. Each row shuffles the first K
    places of a running permutation; any permutation is a fine start, so it is never reset.
    """
    n_steps, slots = uniforms.shape
    perm = np.arange(n_agents)
    out = np.empty((n_steps, slots), dtype=np.int64)
    for t in range(n_steps):
        for i in range(slots):
            j = i + int(uniforms[t, i] * (n_agents - i))
            perm[i], perm[j] = perm[j], perm[i]
            out[t, i] = perm[i]
    return out


def _policy_agents(config: SimulationConfig) -> list[tuple[PolicyGroup, int, int]]:
    """(group, account index, market index) of every policy agent (accounts after the rest)."""
    index = {m.name: i for i, m in enumerate(config.markets)}
    first = sum(g.count for g in config.agents if not isinstance(g, PolicyGroup))
    agents = []
    for group in config.agents:
        if isinstance(group, PolicyGroup):
            for i in range(group.count):
                agents.append((group, first, index[group.markets[i % len(group.markets)]]))
                first += 1
    return agents


def _decide(config, plan, policies, agents, t, prices, fundamentals, accounts) -> np.ndarray:
    """The policy agents' orders for step t, as rows of the engine's ``external`` table."""
    rows = []
    seen: dict[str, int] = {}
    for group, account, m in agents:
        k = seen.get(group.name, 0)
        seen[group.name] = k + 1
        if t < group.start or (t - group.start) % group.every:
            continue
        closes = prices[:t, m, CLOSE]
        closes.flags.writeable = False
        last = prices[t - 1, m] if t > 0 else np.full(4, np.nan)
        obs = Observation(
            step=t,
            agent=k,
            market=config.markets[m].name,
            closes=closes,
            fundamental=float(fundamentals[t, m]),
            best_bid=float(last[BEST_BID]),
            best_ask=float(last[BEST_ASK]),
            cash=float(accounts.cash[account]),
            position=int(accounts.assets[account, m]),
            tick_size=float(plan.tick[m]),
        )
        order = check_order(policies[group.name](obs), f"policy {group.name!r} at step {t}")
        if order is None:
            continue
        side = BUY if order.side == "buy" else SELL
        if order.price is None:
            level = MARKET_ORDER
        elif side == BUY:
            level = math.floor(order.price / plan.tick[m] + 1e-9)
        else:
            level = math.ceil(order.price / plan.tick[m] - 1e-9)
        if level != MARKET_ORDER and not level < MAX_TICKS:  # the book's highest level
            raise ConfigError(
                f"policy {group.name!r} at step {t}: Order.price = {order.price!r} is "
                f"{level:.3g} ticks of {plan.tick[m]:g}, beyond the book's highest price; use "
                "a lower limit, or None for a market order"
            )
        rows.append((account, m, side, level, order.volume, group.lifetime))
    return np.array(rows, dtype=np.float64).reshape(-1, EXTERNAL_FIELDS)


def _run_one(
    config: SimulationConfig,
    plan: _Plan,
    seed: int,
    log_trades: bool,
    policies: dict,
    log_orders: bool = False,
):
    inputs = draw_run(config, seed, plan)
    n_steps, n_markets = config.n_steps, len(config.markets)
    accounts = new_accounts(inputs.cash, inputs.assets, inputs.cash_floor, inputs.max_short)
    agents = _policy_agents(config)
    # every policy order may rest: room for one per agent and step
    # a market maker places 2 orders a level a step, an arbitrageur up to 1 + the basket's size;
    # an order-flow crowd one (a market order: it never rests, but the order log keeps it)
    per_fast = 2 * int(inputs.fast[:, FAST_LEVELS].max(initial=1))
    per_fast += int(np.count_nonzero(plan.basket, axis=1).max(initial=0))
    capacity = int((inputs.chosen >= 0).sum() + per_fast * len(inputs.fast) * n_steps)
    capacity += (len(agents) + len(inputs.flow)) * n_steps + len(inputs.mistakes) + 1
    book = new_book(n_markets, capacity)
    tape = new_tape(n_markets, capacity if log_trades else 0, capacity if log_orders else 0)
    prices = np.full((n_steps, n_markets, 4), np.nan)
    counts = np.zeros((n_steps, n_markets, 5), dtype=np.int64)
    state = new_state(plan.price, inputs.flow[:, FLOW_MARKET].astype(np.int64))
    decisions = sorted(
        {t for group, _, _ in agents for t in range(group.start, n_steps, group.every)}
    )
    bounds = [0, *(t for t in decisions if t > 0), n_steps]
    for t_start, t_stop in itertools.pairwise(bounds):
        external = np.zeros((0, EXTERNAL_FIELDS))
        # a session without orders asks no policy (PAMS asks no agent there)
        if agents and t_start in decisions and plan.place[t_start]:
            external = _decide(
                config, plan, policies, agents, t_start, prices, inputs.fundamentals, accounts
            )
        run_fcn(
            book,
            accounts,
            tape,
            inputs.fcn,
            inputs.agent_market,
            plan.tick,
            inputs.fundamentals,
            inputs.execute,
            inputs.place,
            inputs.chosen,
            inputs.noise,
            inputs.fast,
            plan.basket,
            inputs.rules,
            inputs.mistakes,
            inputs.flow,
            inputs.flow_draws,
            prices,
            counts,
            state,
            t_start,
            t_stop,
            external,
        )
    trades = None
    if log_trades:
        log = tape.log[: min(tape.n_log[0], len(tape.log))]
        trades = pd.DataFrame(log, columns=list(TRADE_FIELDS))
        trades["price"] = trades["price"] * plan.tick[trades["market"].to_numpy()]
    orders = _order_table(tape, plan) if log_orders else None
    return prices, counts, trades, orders, accounts.cash, accounts.assets


def _order_table(tape, plan: _Plan) -> pd.DataFrame:
    """The order log as a table: prices in currency (NaN for market orders), sides named."""
    log = tape.order_log[: min(tape.n_order_log[0], len(tape.order_log))]
    table = pd.DataFrame(log, columns=list(ORDER_FIELDS))
    ticks = table["price"].to_numpy()
    table["price"] = np.where(
        ticks == MARKET_ORDER, np.nan, ticks * plan.tick[table["market"].to_numpy()]
    )
    table["side"] = np.where(table["side"].to_numpy() == BUY, "buy", "sell")
    return table


MAX_RESULT_BYTES = 64 * 2**30


def result_limit() -> int:
    """The most bytes of results a simulation may keep: `MAX_RESULT_BYTES`, or this machine's
    memory where that is less (results that cannot fit would fail at the end of the runs)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: no cap of its own
        return MAX_RESULT_BYTES
    return min(MAX_RESULT_BYTES, memory)


def run_seeds(seed: int, runs: int) -> list[int]:
    """The seeds of the runs of ``simulate(config, seed=seed, runs=runs)`` for ``runs >= 2``
    (one run uses `seed` itself): run k's comes from child k of ``SeedSequence(seed)``, so the
    first runs of a longer simulation are those of a shorter one."""
    return [
        int(s.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
        for s in np.random.SeedSequence(seed).spawn(runs)
    ]


def simulate(
    config: SimulationConfig,
    *,
    seed: int = 0,
    runs: int = 1,
    log_trades: bool = False,
    n_jobs: int = 1,
    policies: Mapping[str, Policy] | None = None,
    log_orders: bool = False,
) -> SimulationResult:
    """Run `config` `runs` times, run k with its own seed from ``SeedSequence(seed)``.

    Parameters
    ----------
    config : SimulationConfig
    seed : int, default 0
        A non-negative integer.
    runs : int, default 1
    log_trades : bool, default False
        Keep every trade (`SimulationResult.trades`).
    log_orders : bool, default False
        Keep every order placed (`SimulationResult.orders`).
    n_jobs : int, default 1
        Runs simulated at once in threads (the compiled loop releases the GIL).
    policies : mapping of str to callable, optional
        The decision function of each ``type = "policy"`` agent group, by group name
        (`kabuto.sim.artificial.policy`).
    """
    check_seed("simulate", "seed", seed, limit=2**63)  # the outputs store run seeds as int64
    for key, value in (("runs", runs), ("n_jobs", n_jobs)):
        if not is_integer(value) or value < 1:
            raise ConfigError(f"{key} = {value!r}: give a whole number, at least 1")
    for key, value in (("log_trades", log_trades), ("log_orders", log_orders)):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: give True or False")
    # The results keep 4 prices and 5 counts per run, step and market: refuse a simulation
    # whose results alone could not fit, rather than fail for memory hours into it.
    kept = runs * config.n_steps * len(config.markets) * 9 * 8
    limit = result_limit()
    if kept > limit:
        raise ConfigError(
            f"runs = {runs} of {config.n_steps:,} steps in {len(config.markets)} market(s) "
            f"would keep {kept / 2**30:,.1f} GiB of results (at most {limit / 2**30:,.1f} GiB, "
            "the lesser of 64 GiB and this machine's memory); simulate fewer runs or steps"
        )
    seeds = [seed] if runs == 1 else run_seeds(seed, runs)

    plan = _plan(config)
    policies = dict(policies or {})
    needed = {g.name for g in config.agents if isinstance(g, PolicyGroup)}
    if needed - set(policies) or set(policies) - needed:
        raise ConfigError(
            f"policies: the config's policy groups are {sorted(needed)} but policies were given "
            f"for {sorted(policies)}; pass simulate(..., policies={{name: callable}}) for each"
        )

    def one(s: int):
        return _run_one(config, plan, s, log_trades, policies, log_orders)

    if n_jobs == 1:
        results = [one(s) for s in seeds]
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(one, seeds))
    result = SimulationResult(
        config=config,
        seeds=seeds,
        prices=np.stack([r[0] for r in results]),
        counts=np.stack([r[1] for r in results]),
        trades=[r[2] for r in results] if log_trades else None,
        orders=[r[3] for r in results] if log_orders else None,
        cash=np.stack([r[4] for r in results]),
        holdings=np.stack([r[5] for r in results]),
    )
    note = runaway_note(result)
    if note is not None:
        warnings.warn(note, KabutoWarning, stacklevel=2)
    return result


#: A close or mid within this factor of the book's price limit (`NO_BAND` ticks) counts as
#: having reached it; a fundamental above the same level counts as out of the book's range.
RUNAWAY_FACTOR = 4.0

#: The per-step volatility of the shipped example (examples/artificial_market.toml), quoted in
#: the runaway note as a sane scale.
EXAMPLE_VOLATILITY = 0.0001


def runaway_note(result: SimulationResult) -> str | None:
    """Why some runs are meaningless, when a market ran off the prices the book can hold; else None.

    The book keeps prices as int64 ticks and clips every limit price to `NO_BAND` (2**62) ticks
    instead of failing, and an order priced below one tick is dropped. So a market whose
    fundamental explodes (typically a ``volatility`` set like an annual one, 1.0, when it is per
    step: the example uses 0.0001) does not stop the run: its prices saturate at the clip
    (4.6e16 at a 0.01 tick) or its fundamental leaves the quotable range, and every return and
    stylized fact computed from those runs is an artefact that still looks like numbers. This
    check makes that loud; it runs once, vectorised over the result arrays after the runs (not in
    the compiled loop), at the cost of a few passes over the prices.

    A market counts as run away in a run when, at some step, its close or its best bid or ask
    is at least ``NO_BAND * tick / RUNAWAY_FACTOR`` (within a small factor of the clip: trades
    land just under it, a maker's half spread or an agent's margin below, and 2**60 ticks is far
    beyond any sane price anyway), or its fundamental is not finite, above that same
    level or below one tick. (A close at one tick is not flagged: a mistaken sell order can
    trade there in a sane run.) Returns one note for all such markets (the `simulate` warning and
    the report's caveat), or None when no market ran away in any run.
    """
    n_runs = result.prices.shape[0]
    config = result.config
    parts = []
    for m, market in enumerate(config.markets):
        tick = market.tick_size
        top = NO_BAND * tick / RUNAWAY_FACTOR
        price_hit, fundamental_hit = _out_of_range(result, m)
        hit = price_hit | fundamental_hit
        runs = hit.any(axis=1)
        if not runs.any():
            continue
        first = int(np.argmax(runs))
        step = int(np.argmax(hit[first]))
        what = []
        if fundamental_hit.any():
            fundamental = result.prices[:, :, m, FUNDAMENTAL]
            low, high = np.nanmin(fundamental), np.nanmax(fundamental)
            what.append(
                f"its fundamental left the range the order book can represent (one tick, "
                f"{tick:g}, to {top:.3g}; it went from {low:.3g} to {high:.3g})"
            )
        if price_hit.any():
            what.append(
                f"its price or a quote reached (or came within a factor {RUNAWAY_FACTOR:g} of) the "
                f"engine's price limit ({NO_BAND * tick:.3g} = 2**62 ticks; no order is placed "
                "above it)"
            )
        parts.append(
            f"Market {market.name!r} ran away in {int(runs.sum())} of {n_runs} run(s) (first in "
            f"run {first}, seed {result.seeds[first]}, at step {step}): "
            + " and ".join(what)
            + f"; {_runaway_cause(config, m, fundamental_hit.any())}"
        )
    if not parts:
        return None
    return (
        ". ".join(parts) + ". The prices, returns and stylized facts of those runs are "
        "meaningless: kabuto's stylized facts (`facts_by_market`, the console and the "
        "report) leave them out."
    )


def runaway_runs(result: SimulationResult) -> np.ndarray:
    """Which runs of which market ran away (`runaway_note`), shape (R, M), bool."""
    columns = []
    for m in range(len(result.config.markets)):
        price_hit, fundamental_hit = _out_of_range(result, m)
        columns.append((price_hit | fundamental_hit).any(axis=1))
    return np.stack(columns, axis=1)


def _out_of_range(result: SimulationResult, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps (R, T) where market m's price, and where its fundamental, left the book's range."""
    tick = result.config.markets[m].tick_size
    top = NO_BAND * tick / RUNAWAY_FACTOR
    p = result.prices[:, :, m]  # (R, T, 4)
    fundamental = p[..., FUNDAMENTAL]
    # NaN compares False: an empty side never counts, a NaN fundamental always does; a quote
    # near the clip on either side counts even with the other side empty (bids at the clip
    # and no asks: no trade, and a flat close that would look calm)
    quote = np.fmax(p[..., BEST_BID], p[..., BEST_ASK])
    price_hit = (p[..., CLOSE] >= top) | (quote >= top)
    fundamental_hit = ~((fundamental >= tick) & (fundamental <= top))
    return price_hit, fundamental_hit


def _runaway_cause(config: SimulationConfig, m: int, fundamental_left: bool) -> str:
    """What to change when market m ran away, in the keys of the user's file."""
    market = config.markets[m]
    volatility = config.spelled("markets", m, "volatility")
    drift = config.spelled("markets", m, "drift")
    example = (
        f"examples/artificial_market.toml uses volatility = {EXAMPLE_VOLATILITY:g}; an "
        "annual volatility s is about s / sqrt(steps a year) per step"
    )
    if not fundamental_left:  # the agents drove the price off a sane fundamental
        tame = ", ".join(
            dict.fromkeys(
                config.spelled(kind, i, key)
                for kind, items, key in (
                    ("agents", config.agents, "chart_weight"),
                    ("agents", config.agents, "time_window"),
                    ("sessions", config.sessions, "orders_per_step"),
                )
                for i in range(len(items))
                if kind == "sessions" or getattr(items[i], key, None) is not None
            )
        )
        return (
            "its fundamental stayed in range, so the agents pushed the price off it: tame them "
            f"({tame}, a market maker's spread), or check the market's {volatility} = "
            f"{market.volatility:g}, which is per step ({example})"
        )
    if market.components:  # an index: no process of its own
        return (
            f"its fundamental follows its components {market.components}: lower their "
            f"volatility, which is per step, not annual, or their shocks ({example})"
        )
    causes = [
        f"the fundamental shock at step {event.step} ({config.spelled('events', i, 'change')} = "
        f"{event.change:g} a step for {event.duration} step(s), a factor of "
        f"{(1.0 + event.change) ** event.duration:.3g}) took it there: soften it"
        for i, event in enumerate(config.events)
        if isinstance(event, FundamentalShock) and event.market == market.name
    ]
    moving = [
        f"{key} = {value:g}"
        for key, value in ((volatility, market.volatility), (drift, market.drift))
        if value
    ]
    if len(moving) == 1:
        causes.append(f"{moving[0]} is per step, not annual: lower it ({example})")
    elif moving:
        causes.append(f"{' and '.join(moving)} are per step, not annual: lower them ({example})")
    if not causes:  # no process and no shock: it started out of range
        return "its fundamental starts out of that range: set the market's price within it"
    return "; or ".join(causes)
