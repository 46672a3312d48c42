"""Continuous double auction limit order books, compiled with numba.

One `Books` holds the order books of M markets and every order ever placed in them. Prices are
integers in ticks (a limit price is rounded to the tick grid before it reaches the book), so
price comparisons are exact. Each side of each market is a binary heap of order ids ordered by
price-time priority: the best price first and, at one price, the earliest order (the smaller
id: ids are given out in arrival order). Inserting an order and removing the best one cost
O(log depth); looking at the best costs O(1).

Filled and expired orders (and those whose owner can no longer settle them) are not searched for
inside the heap: they are marked dead and dropped when they reach the top (lazy deletion). When a
heap holds more than twice as many entries as live orders it is rebuilt from the live ones, so its
size stays proportional to the book's depth.

Matching (`submit`)
    An incoming buy meets the asks from the best (lowest) up while it has volume left and the
    ask's price is at or below its limit (a market order has no limit); each fill is at the
    resting order's price, for the smaller of the two volumes (partial fills leave the rest of
    the resting order in place with its priority). Sells mirror this. What is left of a limit
    order rests in the book until it is filled or expires; what is left of a market
    order is dropped. With ``execute=False`` (a pre-open session) nothing matches: every limit
    order rests, and market orders are dropped.

Expiry
    An order placed at step t with a time to live of L steps can trade up to and including step
    ``t + L - 1`` and is dead from step ``t + L`` on (``expiry = t + L``).

Speed
    Numba counts references to every array it passes or slices, with an atomic operation
    each; profiling CI2002 runs found half the time there. So the heaps are indexed in place
    (no view per call) and the per-order functions (`submit`, `best`, `_kill`, `room`,
    `trade`) are inlined into their callers, which took about a third off the cost per order.
    Counting is still about half the loop's time; the next step would pass plain arrays
    instead of the `Book`, `Accounts` and `Tape` tuples.

Order record (``Books.orders``, one row per order id, int64)
    ``PRICE`` (ticks), ``VOLUME`` (left), ``AGENT``, ``SIDE`` (``BUY`` or ``SELL``), ``EXPIRY``
    (the first step it is dead), ``MARKET``, ``PLACED`` (the step it arrived).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

BUY, SELL = 0, 1
MARKET_ORDER = -1  # the price of a market order

PRICE, VOLUME, AGENT, SIDE, EXPIRY, MARKET, PLACED = range(7)
ORDER_FIELDS = 7
NEVER = np.iinfo(np.int64).max  # expiry of an order without a time limit


# Heaps per market (``Book.heaps[m, k]``): the bids (BUY), the offers (SELL) and the orders with a
# time limit by expiry (BY_EXPIRY).
BY_EXPIRY = 2
N_HEAPS = 3


@njit(cache=True)
def _key(orders: np.ndarray, oid: int, k: int) -> int:
    """Heap k's key of order `oid`: smaller first (bids by -price, offers by price, expiry)."""
    if k == BUY:
        return -orders[oid, PRICE]
    if k == SELL:
        return orders[oid, PRICE]
    return orders[oid, EXPIRY]


@njit(cache=True)
def _sift_up(heaps: np.ndarray, m: int, k: int, orders: np.ndarray, i: int) -> None:
    """Move heaps[m, k, i] up to its place: smaller key first, then smaller id (`_key`)."""
    item = heaps[m, k, i]
    key = _key(orders, item, k)
    while i > 0:
        parent = (i - 1) >> 1
        p = heaps[m, k, parent]
        key_p = _key(orders, p, k)
        if key < key_p or (key == key_p and item < p):
            heaps[m, k, i] = p
            i = parent
        else:
            break
    heaps[m, k, i] = item


@njit(cache=True)
def _sift_down(heaps: np.ndarray, m: int, k: int, size: int, orders: np.ndarray, i: int) -> None:
    """Move heaps[m, k, i] down to its place among the first `size` entries (as `_sift_up`)."""
    item = heaps[m, k, i]
    key = _key(orders, item, k)
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        c = heaps[m, k, child]
        key_c = _key(orders, c, k)
        if child + 1 < size:
            r = heaps[m, k, child + 1]
            key_r = _key(orders, r, k)
            if key_r < key_c or (key_r == key_c and r < c):
                child, c, key_c = child + 1, r, key_r
        if key_c < key or (key_c == key and c < item):
            heaps[m, k, i] = c
            i = child
        else:
            break
    heaps[m, k, i] = item


@njit(cache=True)
def heap_push(
    heaps: np.ndarray, sizes: np.ndarray, orders: np.ndarray, market: int, k: int, oid: int
) -> None:
    """Insert order `oid` into heap k (BUY, SELL or BY_EXPIRY) of `market`."""
    size = sizes[market, k]
    heaps[market, k, size] = oid
    _sift_up(heaps, market, k, orders, size)
    sizes[market, k] = size + 1


@njit(cache=True)
def heap_pop(heaps: np.ndarray, sizes: np.ndarray, orders: np.ndarray, market: int, k: int):
    """Remove the top of heap k of `market`."""
    size = sizes[market, k] - 1
    sizes[market, k] = size
    if size > 0:
        heaps[market, k, 0] = heaps[market, k, size]
        _sift_down(heaps, market, k, size, orders, 0)


@njit(cache=True)
def _rebuild(heaps, sizes, orders, live, market, side) -> None:
    """Rebuild a price heap from its live orders (Floyd's bottom-up heapify).

    Expired orders still marked live stay: `best` drops them when they reach the top.
    """
    kept = 0
    for i in range(sizes[market, side]):
        oid = heaps[market, side, i]
        if live[oid]:
            heaps[market, side, kept] = oid
            kept += 1
    sizes[market, side] = kept
    for i in range(kept // 2 - 1, -1, -1):
        _sift_down(heaps, market, side, kept, orders, i)


class Book(NamedTuple):
    """The books of M markets: every order placed, the price heaps and the expiry heaps.

    Attributes
    ----------
    orders : ndarray of shape (capacity, ORDER_FIELDS), int64
        One row per order id (see the module docstring).
    live : ndarray of shape (capacity,), bool
        Resting and able to trade (not filled, expired or dropped for want of room).
    heaps : ndarray of shape (M, 3, capacity), int64
        Per market, heaps of order ids: the price-time heaps of BUY and SELL, and BY_EXPIRY,
        the orders with a time limit by expiry step (then id).
    sizes : ndarray of shape (M, 3), int64
        Entries in each heap (live or not yet dropped).
    depth : ndarray of shape (M, 2), int64
        Live orders per market and side.
    next_id : ndarray of shape (1,), int64
        The next order id (= orders placed so far).
    """

    orders: np.ndarray
    live: np.ndarray
    heaps: np.ndarray
    sizes: np.ndarray
    depth: np.ndarray
    next_id: np.ndarray


def new_book(n_markets: int, capacity: int) -> Book:
    """Empty books for `n_markets` markets with room for `capacity` orders in all."""
    return Book(
        orders=np.zeros((capacity, ORDER_FIELDS), dtype=np.int64),
        live=np.zeros(capacity, dtype=np.bool_),
        heaps=np.zeros((n_markets, N_HEAPS, capacity), dtype=np.int64),
        sizes=np.zeros((n_markets, N_HEAPS), dtype=np.int64),
        depth=np.zeros((n_markets, 2), dtype=np.int64),
        next_id=np.zeros(1, dtype=np.int64),
    )


@njit(cache=True, inline="always")
def _kill(book: Book, oid: int) -> None:
    """Take a live order out of the book (the heaps drop it lazily)."""
    book.live[oid] = False
    market = book.orders[oid, MARKET]
    side = book.orders[oid, SIDE]
    book.depth[market, side] -= 1
    # Keep each heap within twice its live orders: rebuilding costs O(size), paid for by the
    # size / 2 orders that died since the last rebuild.
    if book.sizes[market, side] > 2 * book.depth[market, side] + 32:
        _rebuild(book.heaps, book.sizes, book.orders, book.live, market, side)


@njit(cache=True)
def expire(book: Book, market: int, t: int) -> int:
    """Kill the orders of `market` whose time runs out at or before step t; returns how many."""
    killed = 0
    while book.sizes[market, BY_EXPIRY] > 0:
        oid = book.heaps[market, BY_EXPIRY, 0]
        if book.orders[oid, EXPIRY] > t:
            break
        heap_pop(book.heaps, book.sizes, book.orders, market, BY_EXPIRY)
        if book.live[oid]:
            _kill(book, oid)
            killed += 1
    return killed


@njit(cache=True, inline="always")
def best(book: Book, market: int, side: int, t: int) -> int:
    """The best live order on (`market`, `side`) at step t, or -1."""
    while book.sizes[market, side] > 0:
        oid = book.heaps[market, side, 0]
        if book.live[oid]:
            if book.orders[oid, EXPIRY] > t:
                return oid
            _kill(book, oid)  # expired; `expire` had not run for this step yet
        else:
            heap_pop(book.heaps, book.sizes, book.orders, market, side)
    return -1


@njit(cache=True)
def best_price(book: Book, market: int, side: int, t: int) -> int:
    """The best live price (ticks) on (`market`, `side`) at step t, or -1 if the side is empty."""
    oid = best(book, market, side, t)
    return -1 if oid < 0 else book.orders[oid, PRICE]


class Accounts(NamedTuple):
    """Cash and holdings of A agents in M markets, with optional limits.

    Attributes
    ----------
    cash : ndarray of shape (A,), float64
    assets : ndarray of shape (A, M), int64
        Units held (negative: short).
    cash_floor : ndarray of shape (A,), float64
        The lowest cash an agent may reach by buying (``-inf``: no limit, as in PAMS; 0: no
        borrowing).
    max_short : ndarray of shape (A,), int64
        The largest short position per market an agent may reach by selling (`NO_LIMIT`: no
        limit, as in PAMS; 0: no short selling).
    """

    cash: np.ndarray
    assets: np.ndarray
    cash_floor: np.ndarray
    max_short: np.ndarray


NO_LIMIT = np.iinfo(np.int64).max // 4


def new_accounts(
    cash: np.ndarray,
    assets: np.ndarray,
    cash_floor: np.ndarray | None = None,
    max_short: np.ndarray | None = None,
) -> Accounts:
    """Accounts from initial cash (A,) and holdings (A, M); no limits unless given."""
    cash = np.array(cash, dtype=np.float64)
    n = len(cash)
    return Accounts(
        cash=cash,
        assets=np.array(assets, dtype=np.int64).reshape(n, -1),
        cash_floor=np.full(n, -np.inf) if cash_floor is None else np.array(cash_floor, float),
        max_short=(
            np.full(n, NO_LIMIT, dtype=np.int64)
            if max_short is None
            else np.minimum(np.array(max_short, dtype=np.int64), NO_LIMIT)
        ),
    )


class Tape(NamedTuple):
    """What trading leaves behind: last prices, volumes and (optionally) every trade.

    Attributes
    ----------
    last_price : ndarray of shape (M,), int64
        Ticks of the last trade per market (-1 before the first).
    volume, trades : ndarray of shape (M,), int64
        Units and trades since the caller last reset them (per step).
    log : ndarray of shape (capacity, 6), int64
        Rows ``step, market, price ticks, volume, buyer, seller`` (capacity 0: no log).
    n_log : ndarray of shape (1,), int64
        Trades so far (those beyond the log's capacity are counted, not kept).
    order_log : ndarray of shape (capacity, 7), int64
        Every order placed, as it arrived: ``step, market, agent, side, price ticks
        (MARKET_ORDER for a market order), volume, time to live`` (capacity 0: no log).
    n_order_log : ndarray of shape (1,), int64
        Orders logged (counted only while there is a log).
    """

    last_price: np.ndarray
    volume: np.ndarray
    trades: np.ndarray
    log: np.ndarray
    n_log: np.ndarray
    order_log: np.ndarray
    n_order_log: np.ndarray


def new_tape(n_markets: int, log_capacity: int = 0, order_capacity: int = 0) -> Tape:
    """A tape with no trades (logs with room for that many trades and orders)."""
    return Tape(
        last_price=np.full(n_markets, -1, dtype=np.int64),
        volume=np.zeros(n_markets, dtype=np.int64),
        trades=np.zeros(n_markets, dtype=np.int64),
        log=np.zeros((log_capacity, 6), dtype=np.int64),
        n_log=np.zeros(1, dtype=np.int64),
        order_log=np.zeros((order_capacity, 7), dtype=np.int64),
        n_order_log=np.zeros(1, dtype=np.int64),
    )


@njit(cache=True, inline="always")
def room(accounts: Accounts, agent: int, market: int, side: int, price: int, tick: float) -> int:
    """Units `agent` may still trade on `side` at `price` ticks within its limits."""
    if side == BUY:
        floor = accounts.cash_floor[agent]
        if floor == -np.inf:
            return NO_LIMIT
        spare = accounts.cash[agent] - floor
        return max(0, int(np.floor(spare / (price * tick) + 1e-9)))
    limit = accounts.max_short[agent]
    if limit >= NO_LIMIT:
        return NO_LIMIT
    return max(0, accounts.assets[agent, market] + limit)


@njit(cache=True)
def _append(log: np.ndarray, count: np.ndarray, values) -> None:
    """Write one row of int `values` into `log` if it has room; count it either way."""
    k = count[0]
    if k < log.shape[0]:
        for j in range(len(values)):
            log[k, j] = values[j]
    count[0] = k + 1


@njit(cache=True, inline="always")
def trade(
    accounts: Accounts,
    tape: Tape,
    market: int,
    buyer: int,
    seller: int,
    fill: int,
    price: int,
    t: int,
    tick: float,
) -> None:
    """Settle `fill` units at `price` ticks between two agents and put the trade on the tape."""
    amount = fill * price * tick
    accounts.cash[buyer] -= amount
    accounts.cash[seller] += amount
    accounts.assets[buyer, market] += fill
    accounts.assets[seller, market] -= fill
    tape.last_price[market] = price
    tape.volume[market] += fill
    tape.trades[market] += 1
    _append(tape.log, tape.n_log, (t, market, price, fill, buyer, seller))


@njit(cache=True, inline="always")
def submit(
    book: Book,
    accounts: Accounts,
    tape: Tape,
    market: int,
    agent: int,
    side: int,
    price: int,
    volume: int,
    ttl: int,
    t: int,
    tick: float,
    execute: bool,
) -> int:
    """Place an order at step t and match it; returns its id, or -1 if nothing of it rests.

    Parameters
    ----------
    price : int
        Limit price in ticks (> 0), or `MARKET_ORDER`.
    volume : int
        Units (> 0).
    ttl : int
        Steps the rest of the order may wait in the book (<= 0: no limit).
    tick : float
        Tick size (prices are ``ticks * tick``), for cash accounting.
    execute : bool
        False in a pre-open session: nothing trades, limit orders rest.

    With limits (`Accounts`), fills stop where the incoming agent runs out of room; a resting
    order whose owner can no longer settle it is cancelled when it is met; and a limit order
    rests only for the units its owner could settle at its limit price.
    """
    if len(tape.order_log):  # logging is off in most runs: skip the call
        _append(tape.order_log, tape.n_order_log, (t, market, agent, side, price, volume, ttl))
    other = SELL if side == BUY else BUY
    left = volume
    while execute and left > 0:
        oid = best(book, market, other, t)
        if oid < 0:
            break
        level = book.orders[oid, PRICE]
        if price != MARKET_ORDER and (level > price if side == BUY else level < price):
            break
        owner = book.orders[oid, AGENT]
        theirs = room(accounts, owner, market, other, level, tick)
        if theirs <= 0:
            _kill(book, oid)  # its owner cannot settle it any more
            continue
        mine = room(accounts, agent, market, side, level, tick)
        if mine <= 0:
            break
        fill = min(left, book.orders[oid, VOLUME], theirs, mine)
        buyer, seller = (agent, owner) if side == BUY else (owner, agent)
        trade(accounts, tape, market, buyer, seller, fill, level, t, tick)
        book.orders[oid, VOLUME] -= fill
        if book.orders[oid, VOLUME] == 0:
            _kill(book, oid)
        left -= fill
    if left == 0 or price == MARKET_ORDER:
        return -1
    left = min(left, room(accounts, agent, market, side, price, tick))
    if left <= 0:
        return -1
    oid = book.next_id[0]
    book.next_id[0] = oid + 1
    orders = book.orders
    orders[oid, PRICE] = price
    orders[oid, VOLUME] = left
    orders[oid, AGENT] = agent
    orders[oid, SIDE] = side
    orders[oid, EXPIRY] = t + ttl if ttl > 0 else NEVER
    orders[oid, MARKET] = market
    orders[oid, PLACED] = t
    book.live[oid] = True
    book.depth[market, side] += 1
    heap_push(book.heaps, book.sizes, book.orders, market, side, oid)
    if ttl > 0:
        heap_push(book.heaps, book.sizes, book.orders, market, BY_EXPIRY, oid)
    return oid
