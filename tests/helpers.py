"""Small strategies and data builders shared by the tests."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import plotly
import pytest

from kabuto.backtest.result import BacktestResult, StrategyResult
from kabuto.data import Panel
from kabuto.errors import ConfigError
from kabuto.strategies.base import Strategy


def panel_from_returns(returns: np.ndarray, *, start: str = "2000-01-03", **kwargs) -> Panel:
    """A panel whose prices compound the given (T, N) returns from 100 (NaN stays NaN)."""
    returns = np.asarray(returns, dtype=float)
    prices = 100.0 * np.cumprod(1.0 + np.nan_to_num(returns), axis=0)
    prices[np.isnan(returns)] = np.nan
    dates = pd.bdate_range(start, periods=len(returns))
    columns = [f"A{i}" for i in range(returns.shape[1])]
    return Panel(pd.DataFrame(prices, index=dates, columns=columns), source="test", **kwargs)


def with_high_low(panel: Panel, seed: int = 0, spread: float = 0.01) -> Panel:
    """`panel` with random daily highs and lows around its closes (NaN where the close is)."""
    rng = np.random.default_rng(seed)
    closes = panel.to_frame()
    up = 1.0 + spread * rng.exponential(size=closes.shape)
    down = 1.0 - spread * rng.uniform(size=closes.shape)
    return Panel(closes, source=panel.source, highs=closes * up, lows=closes * down)


def range_signal_market(
    seed: int, n_assets: int = 4, n_days: int = 400, edge: float = 0.01
) -> Panel:
    """Closes that follow a random walk but for a signal only the daily range shows.

    Each day each asset's close sits at the bottom (signal +1) or the top (-1) of a 2% range,
    at random, and the next day's return is ``edge * signal`` plus 1% noise. Closes alone
    carry nothing about the signal; closes with highs and lows carry all of it.
    """
    rng = np.random.default_rng(seed)
    signal = rng.choice([-1.0, 1.0], size=(n_days, n_assets))
    returns = np.zeros((n_days, n_assets))
    returns[1:] = edge * signal[:-1] + 0.01 * rng.standard_normal((n_days - 1, n_assets))
    closes = 100.0 * np.cumprod(1.0 + returns, axis=0)
    highs = np.where(signal > 0, closes * 1.02, closes)
    lows = np.where(signal > 0, closes, closes * 0.98)
    dates = pd.bdate_range("2001-01-01", periods=n_days)
    assets = [f"A{i}" for i in range(n_assets)]

    def frame(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a, index=dates, columns=assets)

    return Panel(
        frame(closes), source=f"range signal seed={seed}", highs=frame(highs), lows=frame(lows)
    )


class RandomWeights(Strategy):
    """Weights drawn from a generator seeded by (seed, decision date): a pure function of t."""

    long_only = True

    def __init__(self, seed: int = 0, lookback: int = 5, invest: float = 1.0, label=None):
        self.seed, self.lookback, self.invest, self.label = seed, lookback, invest, label

    def weights_for(self, date: pd.Timestamp, n: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, date.value // 10**9])
        return rng.dirichlet(np.ones(n)) * self.invest

    def allocate(self, window, prev_weights=None):
        return self.weights_for(window.date, window.n_assets)

    def allocate_batch(self, batch):
        return np.stack([self.weights_for(d, batch.n_assets) for d in batch.dates])


class LongShortRandom(RandomWeights):
    """Random long-short weights with gross leverage `invest`."""

    long_only = False

    def weights_for(self, date, n):
        rng = np.random.default_rng([self.seed, date.value // 10**9])
        w = rng.normal(size=n)
        return w / np.abs(w).sum() * self.invest


class HoldInitial(Strategy):
    """Buys equal weight once, then keeps whatever it holds (trades only the first day)."""

    stateful = True

    def __init__(self, lookback: int = 5):
        self.lookback = lookback

    def allocate(self, window, prev_weights=None):
        if prev_weights is None or not prev_weights.any():
            return np.full(window.n_assets, 1.0 / window.n_assets)
        return prev_weights


def reference_backtest(panel, targets: dict[int, np.ndarray], first, last, rates):
    """Day-by-day dollar accounting, written independently of the engine.

    Holds dollar positions; at the close of a decision date trades to the target (cost pro rata
    on the whole book); an asset past its last price is sold at that price, the cost (same
    rate) paid out of the proceeds. Returns the daily net returns of dates first+1..last.
    """
    n = panel.n_assets
    pos, cash = np.zeros(n), 1.0
    net = []
    prev_wealth = 1.0
    for t in range(first, last):
        wealth = cash + pos.sum()
        if t > first:
            net.append(wealth / prev_wealth - 1.0)
        prev_wealth = wealth
        if t in targets:
            current = pos / wealth
            cost = rates @ np.abs(targets[t] - current)
            wealth *= 1.0 - cost
            pos = targets[t] * wealth
            cash = wealth - pos.sum()
        for i in range(n):  # delisting sales at the close of the last priced day
            if panel.last_valid[i] == t and pos[i] != 0:
                cash += pos[i] - rates[i] * abs(pos[i])
                pos[i] = 0.0
        r = panel.returns[t + 1]
        pos = pos * (1.0 + np.where(np.isfinite(r), r, 0.0))
    net.append((cash + pos.sum()) / prev_wealth - 1.0)
    return np.array(net)


def price_panel(prices: np.ndarray, *, columns: list[str] | None = None) -> Panel:
    prices = np.asarray(prices, dtype=float)
    dates = pd.bdate_range("2001-01-01", periods=len(prices))
    columns = columns or [f"A{i}" for i in range(prices.shape[1])]
    return Panel(pd.DataFrame(prices, index=dates, columns=columns), source="test prices")


def ar1_market(seed: int, phi: float, n_assets: int = 5, n_days: int = 500) -> Panel:
    """Log prices ``l_t = phi l_{t-1} + 2% noise``: phi < 1 reverts to 100, phi = 1 is a walk."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 0.02, (n_days, n_assets))
    log_price = np.zeros((n_days, n_assets))
    for t in range(1, n_days):
        log_price[t] = phi * log_price[t - 1] + shocks[t]
    return price_panel(100.0 * np.exp(log_price))


def config_error_of(function, arguments) -> str:
    """The message of the `ConfigError` that `function(*arguments)` (or `**arguments` for a
    dict) raises; fails the test if it raises none."""
    with pytest.raises(ConfigError) as caught:
        if isinstance(arguments, dict):
            function(**arguments)
        else:
            function(*arguments)
    return str(caught.value)


class _StartTags(HTMLParser):
    """Collects start tags with their attributes (script bodies are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def start_tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every start tag of an HTML page with its attributes, in order."""
    parser = _StartTags()
    parser.feed(page)
    return parser.tags


def assert_offline(page: str) -> None:
    """A kabuto report loads nothing: plotly.js inlined once, the only text mentioning URLs."""
    plotly_js = plotly.offline.get_plotlyjs()
    assert page.count(plotly_js) == 1
    for tag, attrs in start_tags(page):
        assert not (tag == "script" and attrs.get("src")), attrs
        assert tag not in ("link", "iframe", "img", "object", "embed"), (tag, attrs)
    rest = page.replace(plotly_js, "")
    for needle in ("http://", "https://", "@import", "url("):
        assert needle not in rest


def fake_backtest_result(with_equal_weight: bool = True, cash: bool = False) -> BacktestResult:
    """Four (or three, or five with a cash strategy) strategies of a factor model over 756 days,
    with monthly turnover and 10 bps costs: a backtest result for the statistics' tests."""
    n = 756
    idx = pd.bdate_range("2018-01-01", periods=n)
    rng = np.random.default_rng(100)
    market = rng.normal(0.0004, 0.01, n)
    # name: (daily alpha, market beta, one-way turnover per year)
    specs = {
        "EqualWeight": (0.0, 1.0, 0.2),
        "Momentum": (0.0006, 1.1, 1.5),
        "MinVar": (0.0001, 0.6, 0.4),
        "Noise": (-0.0004, 0.2, 3.0),
    }
    if not with_equal_weight:
        specs.pop("EqualWeight")
    if cash:  # constant zero returns, no costs
        specs["Cash"] = (0.0, 0.0, 0.0)
    strategies = {}
    rebalance = idx[::21]
    for k, (name, (alpha, beta, yearly_turnover)) in enumerate(specs.items()):
        noise = np.random.default_rng(k).normal(0, 0.004 if name != "Cash" else 0.0, n)
        gross = pd.Series(alpha + beta * market + noise, index=idx)
        # Two-way notional per monthly rebalance.
        turnover = pd.Series(2.0 * yearly_turnover / 12.0, index=rebalance)
        costs = pd.Series(0.0, index=idx)
        costs[rebalance] = turnover.to_numpy() * 0.001
        net = (1.0 + gross) * (1.0 - costs) - 1.0
        weights = pd.DataFrame(0.5, index=rebalance, columns=["X", "Y"])
        strategies[name] = StrategyResult(name, gross, net, costs, turnover, weights, weights)
    return BacktestResult(strategies, benchmark_returns=pd.Series(market, index=idx))
