"""The compiled simulation loop: sessions, fundamentals, FCN agents and the books.

`run_fcn` advances one market simulation step by step. Everything random (which agents act,
their noise draws, the fundamental shocks) is drawn beforehand by the caller from one seeded
numpy generator (`kabuto.sim.artificial.runner`), so the loop itself is deterministic and a
plain-Python reference can replay it exactly.

A step t (PAMS's order, Hirano et al. 2023)
    1. Orders whose lifetime ran out are removed (`book.expire`).
    2. If trading resumes after steps without execution (the open after a pre-open session),
       a call auction crosses the accumulated book at one price (`call_auction`).
    3. Orders from outside the loop (policy agents) arrive, then the mistaken orders of step t
       (below).
    4. The chosen agents decide, all from the same snapshot: the market price at that point
       (the close of t - 1 unless an auction or a mistaken order traded) and the fundamental
       price of step t.
    5. Their orders go to the book in the order drawn, each matched on arrival when the session
       executes (`book.submit`).
    6. Market makers and arbitrageurs act, then the order-flow crowds (below).
    7. The step's close is recorded: the last trade price (carried forward; the initial price
       before any trade), the fundamental, the volume and trades, the best quotes and depth.

Mistaken orders (PAMS's OrderMistakeShock, which hooks in before the step's agents)
    Each configured one is placed at its step, whatever the agents do, from one account of its
    own (after every agent's; no cash or short limit): `volume` units at the market price times
    ``1 + change`` (rounded to the tick, clipped to the price band and to at least one tick), a
    buy when ``change > 0``, living `lifetime` steps. It is no agent's decision, so it draws no
    random numbers and leaves the agents' streams as they are.

FCN agent (Chiarella and Iori 2002, in PAMS's form)
    With weights wF, wC, wN, mean-reversion time tF, time window tau, noise scale s and margin
    k, at step t with market price P, fundamental F and close history::

        tc = min(t, tau)
        r = (wF ln(F/P) / tF + wC ln(P / close[t - tc]) / tc + wN s z) / (|wF| + |wC| + |wN|)
        P_hat = P exp(r tau)

    It buys one unit at ``P_hat (1 - k)`` (rounded down to the tick) if ``P_hat > P``, sells one
    at ``P_hat (1 + k)`` (rounded up) if ``P_hat < P``, and does nothing if they are equal; the
    order lives `tau` steps. P is the price at the start of step t, usually close[t - 1], so the
    chart term ``ln(close[t - 1] / close[t - tc]) / tc`` spans the tc - 1 returns from step
    t - tc to t - 1 but divides by tc, as PAMS does; it is 0 at t = 0 and t = 1. A negative wC
    makes a contrarian.

Order-flow crowd (Nakagawa, Hirano, Minami, Mizuta 2024; `garch_agents` has the model)
    Fundamental, AI and noise traders with shares p1, p2 and 1 - p1 - p2 of a volume S. At step
    t they see the news x_{t-1} (one standard normal a step, drawn up front), the last return
    ``r_{t-1} = ln(P_{t-1} / P_{t-2}) / unit`` of the market price and their own last demand
    D_{t-1}; from the model they know ``sigma_{t-1} = rho k |1 + D_{t-1}|`` and the shock
    ``u_{t-1} = r_{t-1} - rho (D_{t-1} - D_bar)``::

        D_t = p1 (g(x_{t-1}) - lambda sigma_{t-1}) + p2 (c x_{t-1} - gamma |u_{t-1}|),
        g(x) = ln(1 + max(-0.99, x)),

    and, with the noise traders' common shock eps_t, they send the net imbalance
    ``round(S (D_t - D_bar + k (1 + D_t) eps_t))`` as one market order (a buy when positive).
    The book then sets the return: against a ladder of quotes of d units every ``delta P`` (a
    market maker with ``levels`` and ``level_spacing``), an imbalance of Q units moves the price
    by about ``delta Q / d`` in relative terms: the paper's linear impact rho when
    ``rho unit = delta S / d``. One departure keeps the book usable for thousands of steps
    without touching sigma or u: the model's mean demand D_bar (about -0.7 at the paper's
    point, a drift of -3% a step) is left out of the orders (the noise traders' baseline
    absorbs it). Demand and imbalance are capped at ``FLOW_CAP`` (1,000) to stay finite when
    the dynamics explode.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from kabuto.sim.artificial.book import (
    AGENT,
    BUY,
    BY_EXPIRY,
    EXPIRY,
    MARKET_ORDER,
    PRICE,
    SELL,
    VOLUME,
    Accounts,
    Book,
    Tape,
    _kill,
    best,
    best_price,
    expire,
    room,
    submit,
    trade,
)

# Columns of the per-agent FCN parameter table.
W_FUNDAMENTAL, W_CHART, W_NOISE, NOISE_SCALE, TIME_WINDOW, REVERSION_TIME, MARGIN = range(7)
FCN_FIELDS = 7

# Per-step record of a market, one row per step (`run_fcn` output ``record[t, m]``).
CLOSE, FUNDAMENTAL, BEST_BID, BEST_ASK = range(4)  # float64 fields
VOLUME_TRADED, TRADES, ORDERS, DEPTH_BID, DEPTH_ASK = range(5)  # int64 fields


@njit(cache=True)
def call_auction(
    book: Book, accounts: Accounts, tape: Tape, market: int, t: int, tick: float, reference: int
) -> int:
    """Cross the book of `market` at the single price that trades the most; returns the price.

    Itayose: over the limit prices of the resting orders, pick p maximising the executable
    volume min(D(p), S(p)) (D: units bid at p or more, S: units offered at p or less); ties go
    to the smallest imbalance |D - S|, then to the price closest to `reference` (ticks, the
    last market price). Orders then fill in price-time priority, all at p. Returns -1 (and
    trades nothing) when the book does not cross.
    """
    bid = best(book, market, BUY, t)
    ask = best(book, market, SELL, t)
    if bid < 0 or ask < 0 or book.orders[bid, PRICE] < book.orders[ask, PRICE]:
        return -1
    n = book.sizes[market, BUY] + book.sizes[market, SELL]
    prices = np.empty(n, dtype=np.int64)
    volumes = np.empty(n, dtype=np.int64)
    sides = np.empty(n, dtype=np.int64)
    k = 0
    for side in range(2):
        for i in range(book.sizes[market, side]):
            oid = book.heaps[market, side, i]
            if book.live[oid] and book.orders[oid, EXPIRY] > t:
                prices[k] = book.orders[oid, PRICE]
                volumes[k] = book.orders[oid, VOLUME]
                sides[k] = side
                k += 1
    prices, volumes, sides = prices[:k], volumes[:k], sides[:k]
    order = np.argsort(prices)
    prices, volumes, sides = prices[order], volumes[order], sides[order]
    # supply S(p_i): offers at or below p_i (ascending cumsum); demand D(p_i): bids at or above
    offered = np.cumsum(np.where(sides == SELL, volumes, 0))
    bid_units = np.where(sides == BUY, volumes, 0)
    demanded = np.cumsum(bid_units[::-1])[::-1]
    chosen, best_volume, best_gap, best_distance = -1, 0, 0, 0
    for i in range(k):
        # several orders can share a price: evaluate each price once, at its last row for S
        # and its first row for D
        if i + 1 < k and prices[i + 1] == prices[i]:
            continue
        first = i
        while first > 0 and prices[first - 1] == prices[i]:
            first -= 1
        supply, demand = offered[i], demanded[first]
        volume = min(supply, demand)
        gap = abs(demand - supply)
        distance = abs(prices[i] - reference)
        if volume > best_volume or (
            volume == best_volume
            and volume > 0
            and (gap < best_gap or (gap == best_gap and distance < best_distance))
        ):
            chosen, best_volume, best_gap, best_distance = prices[i], volume, gap, distance
    if chosen < 0:
        return -1
    while True:
        bid = best(book, market, BUY, t)
        ask = best(book, market, SELL, t)
        if bid < 0 or ask < 0:
            break
        if book.orders[bid, PRICE] < chosen or book.orders[ask, PRICE] > chosen:
            break
        buyer = book.orders[bid, AGENT]
        seller = book.orders[ask, AGENT]
        room_buy = room(accounts, buyer, market, BUY, chosen, tick)
        if room_buy <= 0:
            _kill(book, bid)
            continue
        room_sell = room(accounts, seller, market, SELL, chosen, tick)
        if room_sell <= 0:
            _kill(book, ask)
            continue
        fill = min(book.orders[bid, VOLUME], book.orders[ask, VOLUME], room_buy, room_sell)
        trade(accounts, tape, market, buyer, seller, fill, chosen, t, tick)
        for oid in (bid, ask):
            book.orders[oid, VOLUME] -= fill
            if book.orders[oid, VOLUME] == 0:
                _kill(book, oid)
    return chosen


@njit(cache=True)
def fcn_expected_price(
    fcn: np.ndarray,
    agent: int,
    price: float,
    fundamental: float,
    past_close: float,
    t: int,
    z: float,
) -> float:
    """FCN agent `agent`'s expected price P_hat (module docstring) for one standard normal z.

    `fcn` is the (A, FCN_FIELDS) parameter table (indexed in place: no row view per call).
    """
    w_f = fcn[agent, W_FUNDAMENTAL]
    w_c = fcn[agent, W_CHART]
    w_n = fcn[agent, W_NOISE]
    tau = fcn[agent, TIME_WINDOW]
    chart_steps = min(float(t), tau)
    fundamental_term = math.log(fundamental / price) / max(fcn[agent, REVERSION_TIME], 1.0)
    chart_term = 0.0
    if chart_steps > 0:
        chart_term = math.log(price / past_close) / chart_steps
    r = (w_f * fundamental_term + w_c * chart_term + w_n * fcn[agent, NOISE_SCALE] * z) / (
        abs(w_f) + abs(w_c) + abs(w_n)
    )
    return price * math.exp(r * tau)


# Per-market rules (`run_fcn` argument ``rules[m]``): the price band limit orders are clipped to
# (ticks; 0 and NO_BAND when there is none) and the trading-halt rule (rate 0: none).
BAND_LOW, BAND_HIGH, HALT_RATE, HALT_STEPS, HALT_REFERENCE = range(5)
RULE_FIELDS = 5
NO_BAND = 2**62
MAX_TICKS = float(NO_BAND)  # the highest price level (and lifetime) an order can have

# Agents that act after the FCN agents of every step, in order (``fast[j]``, PAMS's
# high-frequency agents): kind, agent id, market, parameter (a market maker's spread theta, an
# arbitrageur's price threshold), volume, lifetime, and a market maker's price levels per side and
# their spacing relative to the price (0: one tick). An arbitrageur's market is an index.
(
    FAST_KIND,
    FAST_AGENT,
    FAST_MARKET,
    FAST_PARAM,
    FAST_VOLUME,
    FAST_LIFETIME,
    FAST_LEVELS,
    FAST_SPACING,
) = range(8)
FAST_FIELDS = 8
MAKER, ARBITRAGE = 0, 1

# Order-flow crowds (``flow[g]``): agent id, market, fundamental share p1, AI share p2, impact
# rho, noise scale k, fundamental aversion lambda, AI aversion gamma, AI forecast c, volume S and
# the return unit and the mean demand D_bar.
# ``flow_draws[t, g]`` holds the news x_t and the noise shock eps_t.
(
    FLOW_AGENT,
    FLOW_MARKET,
    FLOW_P1,
    FLOW_P2,
    FLOW_IMPACT,
    FLOW_NOISE,
    FLOW_LAMBDA,
    FLOW_GAMMA,
    FLOW_FORECAST,
    FLOW_VOLUME,
    FLOW_UNIT,
    FLOW_MEAN,
) = range(12)
FLOW_FIELDS = 12
FLOW_NEWS, FLOW_SHOCK = range(2)
# Where a crowd's demand and imbalance are capped (in units of S): past the stationary region
# (alpha + beta of the GARCH mapping near 1) the demand grows without bound; capping it keeps
# the loop in finite numbers and leaves the explosion visible in the prices.
FLOW_CAP = 1000.0

# Mistaken (fat-finger) orders (``mistakes[e]``, sorted by step): step, market, price change
# rate, volume, lifetime and the account that places them (module docstring).
(
    MISTAKE_STEP,
    MISTAKE_MARKET,
    MISTAKE_RATE,
    MISTAKE_VOLUME,
    MISTAKE_LIFETIME,
    MISTAKE_AGENT,
) = range(6)
MISTAKE_FIELDS = 6


# Orders from outside the loop (`run_fcn` argument ``external[k]``).
EX_AGENT, EX_MARKET, EX_SIDE, EX_PRICE, EX_VOLUME, EX_LIFETIME = range(6)
EXTERNAL_FIELDS = 6


class LoopState(NamedTuple):
    """What `run_fcn` carries between calls, per market and per order-flow crowd."""

    current: np.ndarray  # (M,) market price: the last trade, or the initial price
    halted_until: np.ndarray  # (M,) int64: first step a halted market trades again
    n_halts: np.ndarray  # (M,) int64
    was_executing: np.ndarray  # (M,) bool: executing at the end of the last step
    executing: np.ndarray  # (M,) bool
    flow_demand: np.ndarray  # (G,) each order-flow crowd's last demand D_{t-1}
    flow_price: np.ndarray  # (G,) its market's price at the start of the step before


def new_state(initial_price: np.ndarray, flow_markets: np.ndarray | None = None) -> LoopState:
    """The state before the first step (`flow_markets`: the market of each order-flow crowd)."""
    n = len(initial_price)
    flow_markets = np.zeros(0, dtype=np.int64) if flow_markets is None else flow_markets
    return LoopState(
        current=np.array(initial_price, dtype=np.float64),
        halted_until=np.zeros(n, dtype=np.int64),
        n_halts=np.zeros(n, dtype=np.int64),
        was_executing=np.zeros(n, dtype=np.bool_),
        executing=np.zeros(n, dtype=np.bool_),
        flow_demand=np.zeros(len(flow_markets)),
        flow_price=np.array(initial_price, dtype=np.float64)[flow_markets],
    )


@njit(cache=True)
def _clip(level: int, rules: np.ndarray, m: int) -> int:
    """A limit price (ticks) clipped into the market's price band."""
    return min(max(level, int(rules[m, BAND_LOW])), int(rules[m, BAND_HIGH]))


@njit(cache=True, nogil=True)
def run_fcn(
    book: Book,
    accounts: Accounts,
    tape: Tape,
    fcn: np.ndarray,
    agent_market: np.ndarray,
    tick: np.ndarray,
    fundamentals: np.ndarray,
    execute: np.ndarray,
    place: np.ndarray,
    chosen: np.ndarray,
    noise: np.ndarray,
    fast: np.ndarray,
    basket: np.ndarray,
    rules: np.ndarray,
    mistakes: np.ndarray,
    flow: np.ndarray,
    flow_draws: np.ndarray,
    prices: np.ndarray,
    counts: np.ndarray,
    state: LoopState,
    t_start: int,
    t_stop: int,
    external: np.ndarray,
) -> None:
    """Run steps t_start .. t_stop - 1 of FCN agents, market makers and arbitrageurs.

    Parameters
    ----------
    book, accounts, tape
        State, updated in place.
    fcn : ndarray of shape (A, FCN_FIELDS)
        Each FCN agent's parameters (columns W_FUNDAMENTAL ... MARGIN).
    agent_market : ndarray of shape (A,), int64
        The market each FCN agent trades.
    tick : ndarray of shape (M,)
        Tick size.
    fundamentals : ndarray of shape (T, M)
        Fundamental price of each step (shocks already applied).
    execute : ndarray of shape (T,), bool
        Whether orders match at step t (False: a pre-open session).
    place : ndarray of shape (T,), bool
        Whether any agent places orders at step t (False: a session without orders, PAMS's
        ``withOrderPlacement: false``; then none is placed, from any kind of agent).
    chosen : ndarray of shape (T, K), int64
        The FCN agents that act at step t, in order (-1: nobody in that slot).
    noise : ndarray of shape (T, K)
        Their standard normal draws.
    fast : ndarray of shape (J, FAST_FIELDS)
        Market makers and arbitrageurs; they act after the FCN agents of every step.
    basket : ndarray of shape (M, M)
        ``basket[x, i]``: the weight of market i in index market x (rows of non-index markets
        are 0; an index row sums to 1).
    rules : ndarray of shape (M, RULE_FIELDS)
        Price bands and trading-halt rules.
    mistakes : ndarray of shape (E, MISTAKE_FIELDS)
        Mistaken orders, sorted by step; each is placed at its step (module docstring).
    flow : ndarray of shape (G, FLOW_FIELDS)
        Order-flow crowds; they act last in every step.
    flow_draws : ndarray of shape (T, G, 2)
        Their news x_t and noise shocks eps_t (standard normals).
    prices : ndarray of shape (T, M, 4)
        Output: CLOSE, FUNDAMENTAL, BEST_BID, BEST_ASK (NaN when the side is empty).
    counts : ndarray of shape (T, M, 5), int64
        Output: VOLUME_TRADED, TRADES, ORDERS, DEPTH_BID, DEPTH_ASK.
    state : LoopState
        Prices and market status carried from one call to the next (`new_state`).
    t_start, t_stop : int
        The steps to run; a run may be split into several calls.
    external : ndarray of shape (K, EXTERNAL_FIELDS)
        Orders from outside the loop (policy agents), placed at step t_start after expiries
        and any opening auction and before the FCN agents: agent, market, side, price
        (ticks), volume, lifetime.

    Trading halts: after each trade (the opening auction's included) in a market with a halt
    rule, if its price has moved from the
    rule's reference by ``rate * (halts so far + 1)`` or more, the market stops executing for
    ``steps`` steps (orders still rest; the threshold widens with each halt, as in PAMS); it
    reopens with a call auction.
    """
    n_markets = fundamentals.shape[1]
    current, halted_until, n_halts = state.current, state.halted_until, state.n_halts
    was_executing, executing = state.was_executing, state.executing
    snapshot = np.empty(n_markets, dtype=np.float64)
    next_mistake = 0
    exchange = (book, accounts, tape, rules, counts, current, halted_until, n_halts, executing)
    for t in range(t_start, t_stop):
        for m in range(n_markets):
            due = (
                book.sizes[m, BY_EXPIRY] > 0
                and book.orders[book.heaps[m, BY_EXPIRY, 0], EXPIRY] <= t
            )
            if due:  # most steps nothing expires: skip the call
                expire(book, m, t)
            tape.volume[m] = 0
            tape.trades[m] = 0
            executing[m] = execute[t] and t >= halted_until[m]
            if executing[m] and not was_executing[m]:
                reference = round(current[m] / tick[m])
                if call_auction(book, accounts, tape, m, t, tick[m], reference) >= 0:
                    current[m] = tape.last_price[m] * tick[m]
                    _check_halt(rules, m, t, current, halted_until, n_halts, executing)
            was_executing[m] = executing[m]
        if t == t_start and place[t]:
            for k in range(len(external)):
                m = int(external[k, EX_MARKET])
                level = int(external[k, EX_PRICE])
                if level != MARKET_ORDER:
                    level = _clip(level, rules, m)
                if level > 0 or level == MARKET_ORDER:
                    _place(
                        exchange,
                        m,
                        int(external[k, EX_AGENT]),
                        int(external[k, EX_SIDE]),
                        level,
                        int(external[k, EX_VOLUME]),
                        int(external[k, EX_LIFETIME]),
                        t,
                        tick[m],
                    )
        # a run split into calls starts each call past the mistakes of earlier steps
        while next_mistake < len(mistakes) and mistakes[next_mistake, MISTAKE_STEP] < t:
            next_mistake += 1
        while next_mistake < len(mistakes) and mistakes[next_mistake, MISTAKE_STEP] == t:
            _mistake(exchange, mistakes, next_mistake, t, tick)
            next_mistake += 1
        snapshot[:] = current
        # FCN agents have no slots in a session without orders (`chosen` is -1 there); the
        # others act every step, so they are held back here
        acting = 1 if place[t] else 0
        for slot in range(chosen.shape[1]):
            agent = chosen[t, slot]
            if agent < 0:
                continue
            m = agent_market[agent]
            price = snapshot[m]
            tau = fcn[agent, TIME_WINDOW]
            tc = int(min(t, tau))
            past = prices[t - tc, m, CLOSE] if tc > 0 else price
            expected = fcn_expected_price(
                fcn, agent, price, fundamentals[t, m], past, t, noise[t, slot]
            )
            # Checked in floats first: a long time window can make the expected price
            # overflow, and an infinite float has no integer tick (numba would wrap it). A buy
            # beyond the book's price limit is dropped, as a sell below one tick is below.
            if expected > price:
                side = BUY
                ticks = expected * (1.0 - fcn[agent, MARGIN]) / tick[m]
                if not ticks < MAX_TICKS:
                    continue
                level = math.floor(ticks + 1e-9)
            elif expected < price:
                side = SELL
                level = math.ceil(expected * (1.0 + fcn[agent, MARGIN]) / tick[m] - 1e-9)
            else:
                continue
            level = _clip(level, rules, m)
            if level <= 0:
                continue
            lifetime = int(min(tau, MAX_TICKS))  # any lifetime past the last step is "for good"
            _place(exchange, m, agent, side, level, 1, lifetime, t, tick[m])
        for j in range(len(fast) * acting):
            m = int(fast[j, FAST_MARKET])
            agent = int(fast[j, FAST_AGENT])
            volume = int(fast[j, FAST_VOLUME])
            lifetime = int(fast[j, FAST_LIFETIME])
            if fast[j, FAST_KIND] == MAKER:
                bid = best_price(book, m, BUY, t)
                ask = best_price(book, m, SELL, t)
                base = (bid + ask) / 2 * tick[m] if bid >= 0 and ask >= 0 else current[m]
                half = fundamentals[t, m] * fast[j, FAST_PARAM] / 2
                low = math.floor((base - half) / tick[m] + 1e-9)
                high = math.ceil((base + half) / tick[m] - 1e-9)
                gap = max(1, round(fast[j, FAST_SPACING] * base / tick[m]))
                for out in range(int(fast[j, FAST_LEVELS])):  # a ladder outward from the quotes
                    for side, level in ((BUY, low - out * gap), (SELL, high + out * gap)):
                        level = _clip(level, rules, m)
                        if level > 0:
                            _place(exchange, m, agent, side, level, volume, lifetime, t, tick[m])
                continue
            _arbitrage(exchange, basket, m, agent, fast[j, FAST_PARAM], volume, lifetime, t, tick)
        for g in range(len(flow) * acting):
            m = int(flow[g, FLOW_MARKET])
            units = _flow_order(flow, flow_draws, state, g, t, snapshot[m])
            if units != 0:
                side = BUY if units > 0 else SELL
                agent = int(flow[g, FLOW_AGENT])
                _place(exchange, m, agent, side, MARKET_ORDER, abs(units), 1, t, tick[m])
        for m in range(n_markets):
            prices[t, m, CLOSE] = current[m]
            prices[t, m, FUNDAMENTAL] = fundamentals[t, m]
            for side, field in ((BUY, BEST_BID), (SELL, BEST_ASK)):
                # the top of the heap is almost always live: read it without a call
                level = -1
                if book.sizes[m, side] > 0:
                    oid = book.heaps[m, side, 0]
                    if book.live[oid] and book.orders[oid, EXPIRY] > t:
                        level = book.orders[oid, PRICE]
                    else:
                        level = best_price(book, m, side, t)
                prices[t, m, field] = level * tick[m] if level >= 0 else np.nan
            counts[t, m, VOLUME_TRADED] = tape.volume[m]
            counts[t, m, TRADES] = tape.trades[m]
            counts[t, m, DEPTH_BID] = book.depth[m, BUY]
            counts[t, m, DEPTH_ASK] = book.depth[m, SELL]


@njit(cache=True, inline="always")
def _place(exchange, m, agent, side, level, volume, lifetime, t, tick) -> None:
    """Send one order, count it, and after a trade update the price and the halt rule.

    `exchange` bundles what an order touches: (book, accounts, tape, rules, counts, current
    prices, halted_until, n_halts, executing), as built in `run_fcn`.
    """
    book, accounts, tape, rules, counts, current, halted_until, n_halts, executing = exchange
    before = tape.trades[m]
    submit(book, accounts, tape, m, agent, side, level, volume, lifetime, t, tick, executing[m])
    counts[t, m, ORDERS] += 1
    if tape.trades[m] > before:
        current[m] = tape.last_price[m] * tick
        _check_halt(rules, m, t, current, halted_until, n_halts, executing)


@njit(cache=True)
def _mistake(exchange, mistakes, e, t, tick) -> None:
    """Place mistaken order e at the market price times 1 + change (module docstring)."""
    _, _, _, rules, _, current, _, _, _ = exchange
    m = int(mistakes[e, MISTAKE_MARKET])
    rate = mistakes[e, MISTAKE_RATE]
    side = BUY if rate > 0 else SELL
    # at least one tick: a fat finger still sends a valid price, so the order always arrives;
    # capped at the book's limit in floats first (numba's round would wrap past int64)
    level = max(_clip(round(min(current[m] * (1.0 + rate) / tick[m], MAX_TICKS)), rules, m), 1)
    agent = int(mistakes[e, MISTAKE_AGENT])
    volume = int(mistakes[e, MISTAKE_VOLUME])
    lifetime = int(mistakes[e, MISTAKE_LIFETIME])
    _place(exchange, m, agent, side, level, volume, lifetime, t, tick[m])


@njit(cache=True)
def _arbitrage(exchange, basket, index, agent, threshold, volume, lifetime, t, tick) -> None:
    """Trade an index market against its basket when their prices part by `threshold` or more.

    The basket's value is the weighted mean of its markets' prices. Index below it: buy
    ``n * volume`` of the index and sell `volume` of each of the n markets, each at its
    market price (limit orders); above it: the reverse (PAMS's arbitrage agent). Only when the
    index and every market of its basket are trading.
    """
    _, _, _, rules, _, current, _, _, executing = exchange
    n = 0
    value = 0.0
    for i in range(len(current)):
        if basket[index, i] > 0:
            if not executing[i]:
                return
            n += 1
            value += basket[index, i] * current[i]
    if n == 0 or not executing[index]:
        return
    gap = current[index] - value
    if abs(gap) < threshold:
        return
    side = SELL if gap > 0 else BUY  # sell the dear index, buy the cheap one
    level = _clip(round(current[index] / tick[index]), rules, index)
    if level > 0:
        _place(exchange, index, agent, side, level, n * volume, lifetime, t, tick[index])
    for i in range(len(current)):
        if basket[index, i] > 0:
            level = _clip(round(current[i] / tick[i]), rules, i)
            if level > 0:
                _place(exchange, i, agent, 1 - side, level, volume, lifetime, t, tick[i])


@njit(cache=True)
def _flow_order(flow, flow_draws, state, g, t, price) -> int:
    """Order-flow crowd g's net market order at step t in units (module docstring).

    `price` is its market's price at the start of step t; updates the crowd's state.
    """
    p1, p2 = flow[g, FLOW_P1], flow[g, FLOW_P2]
    rho, k = flow[g, FLOW_IMPACT], flow[g, FLOW_NOISE]
    last_demand = state.flow_demand[g]
    news = flow_draws[t - 1, g, FLOW_NEWS] if t > 0 else 0.0
    mean = flow[g, FLOW_MEAN]
    last_return = math.log(price / state.flow_price[g]) / flow[g, FLOW_UNIT]
    sigma = rho * k * abs(1.0 + last_demand)
    shock = last_return - rho * (last_demand - mean)
    fundamental = math.log(1.0 + max(-0.99, news)) - flow[g, FLOW_LAMBDA] * sigma
    ai = flow[g, FLOW_FORECAST] * news - flow[g, FLOW_GAMMA] * abs(shock)
    demand = min(max(p1 * fundamental + p2 * ai, -FLOW_CAP), FLOW_CAP)
    state.flow_demand[g] = demand
    state.flow_price[g] = price
    imbalance = demand - mean + k * (1.0 + demand) * flow_draws[t, g, FLOW_SHOCK]
    imbalance = min(max(imbalance, -FLOW_CAP), FLOW_CAP)
    return round(flow[g, FLOW_VOLUME] * imbalance)


@njit(cache=True)
def _check_halt(rules, m, t, current, halted_until, n_halts, executing) -> None:
    """After a trade: halt market m if its price moved past the halt rule's threshold."""
    rate = rules[m, HALT_RATE]
    if rate <= 0 or not executing[m]:
        return
    reference = rules[m, HALT_REFERENCE]
    if abs(current[m] - reference) >= reference * rate * (n_halts[m] + 1):
        n_halts[m] += 1
        executing[m] = False  # the rest of this step's orders only rest
        halted_until[m] = t + 1 + int(rules[m, HALT_STEPS])
