"""The compiled limit order book against a plain-Python reference book.

The reference keeps resting orders in a list and, for every incoming order, sorts the opposite
side by price-time priority and walks it: the textbook continuous double auction, with no heaps,
lazy deletion or rebuilding. Random order streams (limits, market orders, expiries, pre-open
phases and account limits), seeded or drawn by hypothesis, must give the same trades,
holdings and resting book, and conserve shares and cash.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kabuto.sim.artificial.book import (
    BUY,
    MARKET_ORDER,
    NO_LIMIT,
    SELL,
    best_price,
    expire,
    new_accounts,
    new_book,
    new_tape,
    submit,
)

TICK = 0.5


class ReferenceBook:
    """Orders as dicts; matching by sorting. Mirrors `submit`'s documented rules."""

    def __init__(self, n_agents, cash_floor=None, max_short=None):
        self.resting = []
        self.next_id = 0
        self.trades = []
        self.cash = np.zeros(n_agents)
        self.assets = np.zeros(n_agents, dtype=np.int64)
        self.floor = np.full(n_agents, -np.inf) if cash_floor is None else cash_floor
        self.short = np.full(n_agents, NO_LIMIT) if max_short is None else max_short

    def room(self, agent, side, price):
        if side == BUY:
            if self.floor[agent] == -np.inf:
                return NO_LIMIT
            return max(
                0, math.floor((self.cash[agent] - self.floor[agent]) / (price * TICK) + 1e-9)
            )
        if self.short[agent] >= NO_LIMIT:
            return NO_LIMIT
        return max(0, self.assets[agent] + self.short[agent])

    def alive(self, t):
        self.resting = [o for o in self.resting if o["expiry"] > t]

    def submit(self, agent, side, price, volume, ttl, t, execute):
        self.alive(t)
        left = volume
        other = SELL if side == BUY else BUY
        while execute and left > 0:
            book = [o for o in self.resting if o["side"] == other]
            if not book:
                break
            key = (
                (lambda o: (-o["price"], o["id"]))
                if other == BUY
                else (lambda o: (o["price"], o["id"]))
            )
            top = min(book, key=key)
            level = top["price"]
            if price != MARKET_ORDER and (level > price if side == BUY else level < price):
                break
            room = self.room(top["agent"], other, level)
            if room <= 0:
                self.resting.remove(top)
                continue
            mine = self.room(agent, side, level)
            if mine <= 0:
                break
            fill = min(left, top["volume"], room, mine)
            buyer, seller = (agent, top["agent"]) if side == BUY else (top["agent"], agent)
            self.cash[buyer] -= fill * level * TICK
            self.cash[seller] += fill * level * TICK
            self.assets[buyer] += fill
            self.assets[seller] -= fill
            top["volume"] -= fill
            if top["volume"] == 0:
                self.resting.remove(top)
            left -= fill
            self.trades.append((t, level, fill, buyer, seller))
        if left == 0 or price == MARKET_ORDER:
            return -1
        left = min(left, self.room(agent, side, price))
        if left <= 0:
            return -1
        oid = self.next_id
        self.next_id += 1
        expiry = t + ttl if ttl > 0 else math.inf
        order = {"id": oid, "price": price, "volume": left, "agent": agent, "side": side}
        self.resting.append(order | {"expiry": expiry})
        return oid


def _random_stream(rng, n_events, n_agents):
    t = 0
    for _ in range(n_events):
        t += int(rng.random() < 0.3)
        side = int(rng.integers(0, 2))
        price = MARKET_ORDER if rng.random() < 0.1 else int(rng.integers(90, 111))
        volume = int(rng.integers(1, 6))
        ttl = int(rng.choice([0, 1, 3, 10]))
        yield t, (int(rng.integers(0, n_agents)), side, price, volume, ttl)


def check_stream(events, n_agents: int, limits: bool) -> int:
    """Replay `events` through the compiled book and the reference; assert they agree.

    Returns the number of trades.
    """
    floor = np.full(n_agents, -200.0) if limits else None
    short = np.full(n_agents, 4) if limits else None
    book = new_book(1, len(events) + 1)
    accounts = new_accounts(np.zeros(n_agents), np.zeros((n_agents, 1)), floor, short)
    tape = new_tape(1, 10 * len(events) + 10)
    ref = ReferenceBook(n_agents, floor, short)
    t = 0
    for t, args in events:
        execute = t % 17 != 0  # now and then a step without execution (a pre-open)
        expire(book, 0, t)
        mine = submit(book, accounts, tape, 0, *args, t, TICK, execute)
        theirs = ref.submit(*args, t, execute)
        assert mine == theirs  # both number the orders that rest
    trades = tape.log[: tape.n_log[0]]
    expected = np.array([(t, 0, p, v, b, s) for t, p, v, b, s in ref.trades]).reshape(-1, 6)
    np.testing.assert_array_equal(trades, expected)
    np.testing.assert_allclose(accounts.cash, ref.cash, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(accounts.assets[:, 0], ref.assets)
    # conservation: shares are neither created nor destroyed, money only changes hands
    assert accounts.assets.sum() == 0 and abs(accounts.cash.sum()) < 1e-9
    t_end = t + 1
    expire(book, 0, t_end)
    ref.alive(t_end)
    for side in (BUY, SELL):
        live = [o for o in ref.resting if o["side"] == side]
        assert book.depth[0, side] == len(live)
        prices = [o["price"] for o in live]
        best = (max(prices) if side == BUY else min(prices)) if prices else -1
        assert best_price(book, 0, side, t_end) == best
    if limits:
        assert (accounts.cash >= -200.0 - 1e-9).all() and (accounts.assets >= -4).all()
    return len(trades)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("limits", [False, True])
def test_random_streams_match_the_reference_book(seed, limits):
    events = list(_random_stream(np.random.default_rng(seed), 600, 6))
    assert check_stream(events, 6, limits) > 50


@st.composite
def order_streams(draw):
    """Streams of orders over a few steps, as hypothesis draws them."""
    n = draw(st.integers(1, 120))
    events, t = [], 0
    for _ in range(n):
        t += draw(st.integers(0, 2))
        price = draw(st.one_of(st.just(MARKET_ORDER), st.integers(95, 105)))
        args = (
            draw(st.integers(0, 3)),  # agent
            draw(st.sampled_from([BUY, SELL])),
            price,
            draw(st.integers(1, 5)),  # volume
            draw(st.sampled_from([0, 1, 2, 5])),  # time to live (0: none)
        )
        events.append((t, args))
    return events


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=order_streams(), limits=st.booleans())
def test_hypothesis_streams_match_the_reference_book(events, limits):
    check_stream(events, 4, limits)


def test_price_time_priority_partial_fills_and_resting_price():
    book, tape = new_book(1, 16), new_tape(1, 16)
    accounts = new_accounts(np.zeros(4), np.zeros((4, 1)))
    submit(book, accounts, tape, 0, 0, BUY, 100, 5, 0, 0, TICK, True)
    submit(book, accounts, tape, 0, 1, BUY, 101, 5, 0, 0, TICK, True)
    submit(book, accounts, tape, 0, 2, BUY, 101, 3, 0, 1, TICK, True)
    assert submit(book, accounts, tape, 0, 3, SELL, 99, 12, 0, 2, TICK, True) == -1
    # 101 before 100; at 101 the earlier order first; each fill at the resting price
    np.testing.assert_array_equal(
        tape.log[:3], [[2, 0, 101, 5, 1, 3], [2, 0, 101, 3, 2, 3], [2, 0, 100, 4, 0, 3]]
    )
    assert book.depth[0, BUY] == 1 and book.orders[0, 1] == 1  # 1 unit of order 0 left
    assert accounts.cash[3] == pytest.approx((8 * 101 + 4 * 100) * TICK)


def test_orders_expire_after_their_time_to_live_and_preopen_does_not_trade():
    book, tape = new_book(1, 16), new_tape(1, 16)
    accounts = new_accounts(np.zeros(2), np.zeros((2, 1)))
    submit(book, accounts, tape, 0, 0, SELL, 100, 1, 3, 5, TICK, True)  # alive for steps 5-7
    assert submit(book, accounts, tape, 0, 1, BUY, 105, 1, 0, 6, TICK, False) >= 0
    assert tape.n_log[0] == 0 and book.depth[0].tolist() == [1, 1]  # crossed, not traded
    expire(book, 0, 8)
    assert book.depth[0, SELL] == 0 and best_price(book, 0, SELL, 8) == -1
    assert submit(book, accounts, tape, 0, 1, SELL, 100, 1, 0, 8, TICK, True) == -1
    assert tape.n_log[0] == 1  # the resting buy (from the pre-open) traded at its price 105
    assert tape.log[0, 2] == 105


def test_depth_stays_exact_and_heaps_stay_small_when_orders_expire_inside_the_heap():
    """Orders at random prices and lifetimes die deep inside the price heap; the heap is
    rebuilt from the live ones and never holds more than twice the depth (plus slack)."""
    rng = np.random.default_rng(0)
    book, tape = new_book(1, 20_000), new_tape(1)
    accounts = new_accounts(np.zeros(1), np.zeros((1, 1)))
    expiry = {}
    for t in range(20_000):
        expire(book, 0, t)
        price, ttl = int(rng.integers(1, 1000)), int(rng.integers(1, 200))
        expiry[submit(book, accounts, tape, 0, 0, BUY, price, 1, ttl, t, 1.0, True)] = t + ttl
        assert book.sizes[0, BUY] <= 2 * book.depth[0, BUY] + 32
    live = [oid for oid, end in expiry.items() if end > 20_000]
    expire(book, 0, 20_000)
    assert book.depth[0, BUY] == len(live) > 50
    assert best_price(book, 0, BUY, 20_000) == book.orders[live, 0].max()
