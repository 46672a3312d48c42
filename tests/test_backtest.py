"""The walk-forward engine against an independent day-by-day reference, and its invariants."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kabuto.backtest import WalkForward
from kabuto.backtest.schedule import retrain_flags, schedule_indices
from kabuto.data import Panel
from kabuto.errors import ConfigError, ConstraintError, DataError
from kabuto.strategies import InverseVolatility
from kabuto.strategies.base import Strategy

from helpers import (
    HoldInitial,
    LongShortRandom,
    RandomWeights,
    panel_from_returns,
    reference_backtest,
)


def _noise(t, n, seed=0, scale=0.02):
    return np.random.default_rng(seed).normal(0.0003, scale, size=(t, n))


def _targets(result, panel, name):
    tw = result[name].target_weights
    return {panel.dates.get_loc(d): tw.loc[d].to_numpy() for d in tw.index}


@pytest.mark.parametrize("rebalance", [1, 7, "weekly", "monthly"])
@pytest.mark.parametrize("costs", [0.0, 25.0])
def test_engine_matches_day_by_day_reference(rebalance, costs):
    panel = panel_from_returns(_noise(300, 4))
    strategy = RandomWeights(seed=3, lookback=20, invest=0.9)
    result = WalkForward(rebalance=rebalance, costs_bps=costs).run(panel, [strategy])
    record = result["RandomWeights"]
    first = panel.dates.get_loc(record.target_weights.index[0])
    rates = np.full(4, costs * 1e-4)
    expected = reference_backtest(
        panel, _targets(result, panel, "RandomWeights"), first, 299, rates
    )
    np.testing.assert_allclose(record.net_returns.to_numpy(), expected, rtol=0, atol=1e-13)
    if costs == 0:
        np.testing.assert_array_equal(record.net_returns, record.gross_returns)


def test_long_short_and_per_asset_costs_match_reference():
    panel = panel_from_returns(_noise(200, 3, seed=1))
    costs = {"A0": 5.0, "A1": 50.0, "default": 10.0}
    engine = WalkForward(rebalance=5, costs_bps=costs, long_only=False, max_leverage=1.5)
    result = engine.run(panel, [LongShortRandom(seed=2, lookback=10, invest=1.5)])
    record = result["LongShortRandom"]
    first = panel.dates.get_loc(record.target_weights.index[0])
    rates = np.array([5.0, 50.0, 10.0]) * 1e-4
    expected = reference_backtest(
        panel, _targets(result, panel, "LongShortRandom"), first, 199, rates
    )
    np.testing.assert_allclose(record.net_returns.to_numpy(), expected, atol=1e-13)


def test_listing_and_delisting_follow_the_data():
    r = _noise(260, 3, seed=4)
    r[:60, 1] = np.nan  # first price on row 60
    r[200:, 2] = np.nan  # last price on row 199
    panel = panel_from_returns(r)
    assert panel.first_valid[1] == 60 and panel.last_valid[2] == 199
    result = WalkForward(rebalance=10, costs_bps=20).run(panel, [RandomWeights(lookback=30)])
    record = result["RandomWeights"]
    tw = record.target_weights
    joined = panel.dates[60 + 30]
    assert (tw.loc[tw.index < joined, "A1"] == 0).all()
    assert (tw.loc[tw.index >= joined, "A1"] > 0).all()
    assert (tw.loc[tw.index > panel.dates[199], "A2"] == 0).all()
    # the delisted position was sold: it is not drifting into later rebalances
    assert (
        record.drifted_weights.loc[record.drifted_weights.index > panel.dates[199], "A2"] == 0
    ).all()
    first = panel.dates.get_loc(tw.index[0])
    rates = np.full(3, 20e-4)
    expected = reference_backtest(
        panel, _targets(result, panel, "RandomWeights"), first, 259, rates
    )
    np.testing.assert_allclose(record.net_returns.to_numpy(), expected, atol=1e-13)
    # the sale cost is booked the day after the last price
    assert record.costs.loc[panel.dates[200]] > 0


def _delisting_panel():
    """Five assets; A2 takes its last price on row 59, A4 on row 84."""
    r = _noise(120, 5, seed=8)
    r[60:, 2] = np.nan
    r[85:, 4] = np.nan
    return panel_from_returns(r)


@pytest.mark.parametrize("rebalance", [1, 10])
def test_delisting_on_a_decision_date_matches_the_reference(rebalance):
    # lookback 9: decisions on rows 9, 19, ..., so A2's last price (row 59) is a decision
    # date under both schedules; the sale follows the trade there and pays on what it bought.
    panel = _delisting_panel()
    result = WalkForward(rebalance=rebalance, costs_bps=25).run(panel, [RandomWeights(lookback=9)])
    record = result["RandomWeights"]
    assert panel.dates[59] in record.rebalance_dates
    assert record.target_weights.loc[panel.dates[59], "A2"] > 0
    first = panel.dates.get_loc(record.target_weights.index[0])
    expected = reference_backtest(
        panel, _targets(result, panel, "RandomWeights"), first, 119, np.full(5, 25e-4)
    )
    np.testing.assert_allclose(record.net_returns.to_numpy(), expected, rtol=0, atol=1e-13)


def test_a_position_without_a_price_today_is_held_and_the_universe_ignores_what_follows():
    # A1's prices stop after row 29: for 4 dates nobody can tell a halt from a delisting, so
    # a run where they come back on row 34 must match through row 33; a held price was
    # tradable before (strategies piled into it, and a 5-day lookback saw zero variance)
    r = _noise(60, 3, seed=11)
    dates = pd.bdate_range("2020-01-01", periods=60)
    prices = pd.DataFrame(100 * np.cumprod(1 + r, axis=0), index=dates, columns=["A0", "A1", "A2"])
    stopped = prices.copy()
    stopped.iloc[30:, 1] = np.nan
    resumed = stopped.copy()
    resumed.iloc[34:, 1] = prices.iloc[34:, 1]
    runs = []
    for frame in (stopped, resumed):
        panel = Panel.from_frame(frame, max_ffill=5)
        strategy = InverseVolatility(lookback=5)
        runs.append(WalkForward(rebalance=1, costs_bps=10).run(panel, [strategy])[strategy.name])
    a, b = runs
    gap = slice(dates[30], dates[33])
    np.testing.assert_array_equal(
        a.target_weights.loc[: dates[33]], b.target_weights.loc[: dates[33]]
    )
    np.testing.assert_array_equal(a.net_returns.loc[: dates[33]], b.net_returns.loc[: dates[33]])
    # held as it drifted while it has no price (no trade), the rest fitted beside it
    held = a.target_weights.loc[gap, "A1"]
    assert (held > 0).all()
    np.testing.assert_array_equal(held, a.drifted_weights.loc[gap, "A1"])
    assert (a.target_weights.sum(axis=1) <= 1 + 1e-12).all()  # long-only: no borrowing
    # max_ffill dates without a price: delisted, sold at its last price; or trading again
    assert (a.target_weights.loc[dates[35] :, "A1"] == 0).all()
    assert (b.target_weights.loc[dates[35] :, "A1"] > 0).all()


def test_held_positions_keep_both_limits_and_a_fit_learns_from_a_halted_asset():
    r = _noise(40, 3, seed=12)
    dates = pd.bdate_range("2020-01-01", periods=40)
    frame = pd.DataFrame(100 * np.cumprod(1 + r, axis=0), index=dates, columns=["A0", "A1", "A2"])
    frame.iloc[20:23, 1] = np.nan  # a 3-day halt of A1
    panel = Panel.from_frame(frame, max_ffill=5)
    # a long-only strategy in a long-short book: cash >= 0 and gross <= max_leverage, both
    # (only the first was kept beside a held position: gross 0.57 against 0.5)
    strategy = RandomWeights(invest=0.5)
    book = WalkForward(rebalance=1, long_only=False, max_leverage=0.5).run(panel, [strategy])
    weights = book[strategy.name].target_weights
    assert (weights.loc[dates[20] : dates[22], "A1"] > 0).all()  # held through the halt
    assert (weights.abs().sum(axis=1) <= 0.5 + 1e-12).all()

    # a fit on a halt day learns from the halted asset: it trades again before the next fit
    class Fitted(RandomWeights):
        def fit(self, history):
            self.assets_ = history.assets
            return self

    fitted = Fitted(lookback=20)
    WalkForward(rebalance=1, retrain=None).run(panel, [fitted])  # first decision: row 20
    assert fitted.assets_ == ("A0", "A1", "A2")


def test_delisting_sales_count_in_turnover():
    panel = _delisting_panel()
    result = WalkForward(rebalance=10, costs_bps=25).run(panel, [RandomWeights(lookback=9)])
    record = result["RandomWeights"]
    # forced sales pay costs, and their notional is turnover: costs = c * turnover
    assert record.costs.sum() == pytest.approx(25e-4 * record.turnover.sum(), rel=0, abs=1e-15)
    # A4's sale (row 84) counts in the turnover of the rebalance that held it (row 79)
    traded = (record.target_weights - record.drifted_weights).abs().sum(axis=1)
    extra = record.turnover - traded
    assert extra[extra > 1e-15].index.tolist() == [panel.dates[59], panel.dates[79]]
    assert extra[panel.dates[79]] == pytest.approx(record.costs[panel.dates[85]] / 25e-4)


def test_a_delisting_sale_pays_its_cost_out_of_the_proceeds():
    # A and B held 50/50; B takes its last price on row 3 and is sold at 1000 bps; A then
    # rises 50%. By hand: the fee (10% of B's 0.475) comes out of the cash the sale raised, so
    # A's 0.475 is untouched: wealth 0.475 * 1.5 + 0.4275 = 1.14 (a haircut on the whole book,
    # as the engine once charged, shrinks A too: 1.128).
    prices = pd.DataFrame(
        {"A": [100.0] * 5 + [150.0] * 3, "B": [100.0] * 4 + [np.nan] * 4},
        index=pd.bdate_range("2021-01-04", periods=8),
    )
    panel = Panel(prices)
    half = EqualWeight()
    half.lookback = 1  # decides on row 1
    result = WalkForward(rebalance=100, costs_bps={"A": 0.0, "B": 1000.0}).run(panel, [half])
    net = result["EqualWeight"].net_returns
    bought = 1.0 - 0.1 * 0.5  # the first trade pays 10% on B's half
    assert net.index[0] == panel.dates[2]  # the first return after the decision
    wealth = np.cumprod(1.0 + net.to_numpy())
    held, cash = 0.5 * bought, 0.5 * bought * 0.9
    np.testing.assert_allclose(wealth[:4], [bought, bought, held + cash, 1.5 * held + cash])
    np.testing.assert_allclose(wealth[-1], 1.14, rtol=1e-14)


def test_two_delistings_on_one_day_each_pay_from_their_own_proceeds():
    # A2 and A3 take their last prices on the same day (row 72, inside the segment of the
    # rebalance on row 69, after a day's drift), at different cost rates
    r = _noise(120, 5, seed=11)
    r[73:, 2] = np.nan
    r[73:, 3] = np.nan
    panel = panel_from_returns(r)
    costs = {"A0": 5.0, "A1": 5.0, "A2": 40.0, "A3": 90.0, "A4": 5.0}
    result = WalkForward(rebalance=10, costs_bps=costs).run(panel, [RandomWeights(lookback=9)])
    record = result["RandomWeights"]
    first = panel.dates.get_loc(record.target_weights.index[0])
    rates = np.array(list(costs.values())) * 1e-4
    expected = reference_backtest(
        panel, _targets(result, panel, "RandomWeights"), first, 119, rates
    )
    np.testing.assert_allclose(record.net_returns.to_numpy(), expected, rtol=0, atol=1e-13)
    assert panel.dates[69] in record.rebalance_dates
    assert panel.dates[72] not in record.rebalance_dates
    # the day's cost is the sum of the two sales' (no product term): c_i x value sold / wealth
    before = record.target_weights.loc[panel.dates[69]]
    growth = np.prod(1.0 + panel.returns[70:73], axis=0)
    values = before.to_numpy() * growth
    cash = 1.0 - before.sum()
    wealth = cash + values.sum()
    sold = np.abs(values[[2, 3]]) / wealth
    assert record.costs.loc[panel.dates[73]] == pytest.approx(rates[[2, 3]] @ sold, rel=1e-12)
    drifted = record.drifted_weights.loc[panel.dates[79]]
    assert drifted[["A2", "A3"]].eq(0).all()


class Flip(Strategy):
    """Long-short at gross leverage 3, flipping sides every decision."""

    long_only = False

    def __init__(self):
        self.lookback = 2

    def allocate_batch(self, batch):
        sign = np.where(batch.indices % 2 == 0, 1.0, -1.0)[:, None]
        return sign * np.array([1.5, -1.5])


def test_costs_that_take_all_the_wealth_are_an_error():
    panel = panel_from_returns(_noise(40, 2, scale=0.01))
    engine = WalkForward(rebalance=1, long_only=False, max_leverage=3)
    # 1000 bps: a flip trades 6x the wealth and costs 60% of it; ruinous but still positive
    rec = replace(engine, costs_bps=1000).run(panel, [Flip()])["Flip"]
    assert 0.5 < rec.costs.max() < 1 and (1 + rec.net_returns).prod() > 0
    # 4000 bps: buying the first book (3x the wealth) already costs 120% of the wealth
    with pytest.raises(ConstraintError, match=r"'Flip' paid costs of 1\.2 times .* 2000-01-05"):
        replace(engine, costs_bps=4000).run(panel, [Flip()])


class Spy(Strategy):
    """Records what it is shown; checks no window reaches past its decision date."""

    def __init__(self, panel, lookback=15):
        self.panel, self.lookback = panel, lookback
        self.seen = []

    def fit(self, history):
        self.seen.append(("fit", history.dates[-1], len(history.returns)))
        return self

    def allocate_batch(self, batch):
        for d in range(len(batch)):
            t = int(batch.indices[d])
            assert batch.dates[d] == self.panel.dates[t]
            np.testing.assert_array_equal(batch.returns[d][-1], self.panel.returns[t])
            np.testing.assert_array_equal(batch.returns[d], self.panel.returns[t - 14 : t + 1])
            self.seen.append(("allocate", batch.dates[d], batch.known_dates[-1], batch.dates[-1]))
        return np.full((len(batch), batch.n_assets), 1.0 / batch.n_assets)


def test_strategies_see_only_data_up_to_the_decision_date():
    panel = panel_from_returns(_noise(400, 2))
    spy = Spy(panel)
    result = WalkForward(rebalance="monthly", retrain="quarterly", batch_size=4).run(panel, [spy])
    decisions = result["Spy"].rebalance_dates
    allocated = [s for s in spy.seen if s[0] == "allocate"]
    assert [a[1] for a in allocated] == list(decisions)
    # nothing past the batch's last decision is even addressable (batches of 4 dates)
    assert len({last for *_, last in allocated}) > 1
    assert all(known == last for *_, known, last in allocated)
    fits = [s for s in spy.seen if s[0] == "fit"]
    assert fits[0][1] == decisions[0]
    assert all(f[1] in decisions for f in fits)
    assert all(f[2] == panel.dates.get_loc(f[1]) for f in fits)  # history = all returns <= t
    quarters = decisions.to_period("Q")
    assert len(fits) == len(set(quarters))
    # the return earned the day after a decision uses the weights chosen at it
    rec = result["Spy"]
    d0 = panel.dates.get_loc(decisions[0])
    assert rec.gross_returns.index[0] == panel.dates[d0 + 1]
    assert rec.gross_returns.iloc[0] == pytest.approx(panel.returns[d0 + 1].mean(), abs=1e-15)


def _reachable_rows(*arrays) -> int:
    """The most rows of any array reachable from `arrays` through `.base` (a view's owner)."""
    rows = 0
    for a in arrays:
        while a is not None:
            if isinstance(a, np.ndarray) and a.ndim:
                rows = max(rows, a.shape[-2] if a.ndim == 3 else a.shape[0])
            a = getattr(a, "base", None)
    return rows


def _window_rows(window) -> int:
    arrays = (window.returns, window.prices, window.highs, window.lows)
    return _reachable_rows(*arrays, window.dates.to_numpy(), window.dates.asi8)


class BaseWalker(Strategy):
    """Records how far past its window it can reach through numpy views' `.base`."""

    def __init__(self, panel, lookback=10, batched=False):
        self.panel, self.lookback, self.batched = panel, lookback, batched
        self.overreach = []

    def fit(self, history):
        t = self.panel.dates.get_loc(history.dates[-1])
        self.overreach.append(_window_rows(history) - (t + 1))  # history = rows 0..t at most
        return self

    def allocate(self, window, prev_weights=None):
        self.overreach.append(_window_rows(window) - self.lookback)
        return np.full(window.n_assets, 1.0 / window.n_assets)

    def allocate_batch(self, batch):
        if not self.batched:
            return np.stack([self.allocate(batch.window(d)) for d in range(len(batch))])
        last = int(batch.indices[-1])  # the batch may reach its own last date, nothing later
        reach = _reachable_rows(batch.returns, batch.prices, batch.known_dates.to_numpy())
        self.overreach.append(max(0, reach - (last + 1)))
        return np.full((len(batch), batch.n_assets), 1.0 / batch.n_assets)


@pytest.mark.parametrize("rebalance", [5, "monthly"])  # evenly spaced batches, and not
@pytest.mark.parametrize("batched", [False, True])
def test_nothing_later_is_reachable_through_a_views_base(rebalance, batched):
    # A window that is a view of the panel hands its owner, the whole panel, to `.base`.
    panel = panel_from_returns(_noise(200, 3))
    walker = BaseWalker(panel, batched=batched)
    WalkForward(rebalance=rebalance, retrain="quarterly", batch_size=4).run(panel, [walker])
    assert len(walker.overreach) >= 5 and max(walker.overreach) <= 0


def test_stateful_strategy_gets_drifted_weights_and_pays_nothing_to_keep_them():
    panel = panel_from_returns(_noise(300, 3, seed=7))
    result = WalkForward(rebalance=5, costs_bps=30).run(panel, [HoldInitial()])
    rec = result["HoldInitial"]
    assert rec.turnover.iloc[0] == pytest.approx(1.0)
    np.testing.assert_allclose(rec.turnover.iloc[1:], 0.0, atol=1e-14)
    assert rec.costs.sum() == pytest.approx(30e-4)
    # equal to buy-and-hold of the assets from the first close
    d0 = panel.dates.get_loc(rec.target_weights.index[0])
    growth = panel.prices[-1] / panel.prices[d0]
    wealth = (1 + rec.net_returns).prod()
    assert wealth == pytest.approx(growth.mean() * (1 - 30e-4), rel=1e-12)


class Cheater(Strategy):
    def __init__(self):
        self.lookback = 5

    def allocate(self, window, prev_weights=None):
        return -np.ones(window.n_assets)


def test_constraint_violations_are_errors_not_clipped():
    panel = panel_from_returns(_noise(100, 2))
    with pytest.raises(ConstraintError, match=r"short position \(long-only\).*2000-"):
        WalkForward(rebalance=5).run(panel, [Cheater()])
    with pytest.raises(ConstraintError, match="gross leverage above max_leverage") as error:
        WalkForward(rebalance=5, long_only=False, max_leverage=1.0).run(
            panel, [LongShortRandom(invest=2.0)]
        )
    # the message gives the breaching gross, not one asset's weight and the net sum
    gross = re.search(r": gross leverage ([\d.]+), weights sum", str(error.value))
    assert gross is not None and float(gross.group(1)) > 1.0
    with pytest.raises(ConstraintError, match="negative cash"):
        WalkForward(rebalance=5).run(panel, [RandomWeights(invest=1.2)])
    with pytest.raises(ConfigError, match="long_only = false"):
        WalkForward().run(panel, [LongShortRandom()])
    # a long-short book still holds a strategy to its declaration, and says how to change it
    with pytest.raises(ConstraintError, match="sets the class attribute long_only = False"):
        WalkForward(long_only=False, max_leverage=5.0).run(panel, [Cheater()])


def test_bad_settings_and_short_data_are_named():
    panel = panel_from_returns(_noise(50, 2))
    with pytest.raises(DataError, match="50 rows of prices, fewer than the 62"):
        WalkForward().run(panel, [RandomWeights(lookback=60)])
    with pytest.raises(DataError, match="fewer than the 30 the strategies need"):
        WalkForward(start="2000-01-10").run(panel, [RandomWeights(lookback=30)])
    with pytest.raises(DataError, match="start = 1990-01-01 leaves only 0 returns of history"):
        WalkForward(start="1990-01-01").run(panel, [RandomWeights(lookback=30)])
    with pytest.raises(DataError, match="no date to trade"):
        WalkForward(start="2000-03-10").run(panel, [RandomWeights(lookback=10)])
    with pytest.raises(ConfigError, match="start = 2030-01-01 is after the last date"):
        WalkForward(start="2030-01-01").run(panel, [RandomWeights()])
    with pytest.raises(ConfigError, match="rebalance = 'fortnightly'"):
        WalkForward(rebalance="fortnightly").run(panel, [RandomWeights()])
    with pytest.raises(ConfigError, match="unknown asset"):
        WalkForward(costs_bps={"ZZZ": 3}).run(panel, [RandomWeights()])
    with pytest.raises(ConfigError, match="cannot be negative"):
        WalkForward(costs_bps=-1).run(panel, [RandomWeights()])
    with pytest.raises(ConfigError, match="two strategies are named"):
        WalkForward().run(panel, [RandomWeights(), RandomWeights()])


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"start": "notadate"}, "start = 'notadate': expected a date"),
        ({"start": 20000110}, "start = 20000110: expected a date"),  # not nanoseconds
        ({"end": ""}, "end = '': expected a date"),
        ({"start": "2000-02-01", "end": "2000-01-20"}, "start = 2000-02-01 is after end"),
        ({"end": "1990-01-01"}, "end = 1990-01-01 is before the first date of test"),
        ({"batch_size": 2.5}, "batch_size = 2.5: expected a positive integer"),
        ({"batch_size": None}, "batch_size = None"),
        ({"batch_size": True}, "batch_size = True"),
        ({"max_leverage": "2"}, "max_leverage = '2': expected a positive number"),
        ({"max_leverage": float("nan")}, "max_leverage = nan"),
        ({"long_only": "no"}, "long_only = 'no': expected true or false"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_field(settings, match):
    panel = panel_from_returns(_noise(50, 2))
    engine = WalkForward(**settings)
    with pytest.raises(ConfigError, match=match):
        engine.run(panel, [RandomWeights()])
    with pytest.raises(ConfigError, match=match):
        engine.count_decisions(panel, [RandomWeights()])


class Duck:
    """A strategy by duck typing: `lookback` and `allocate`, nothing else."""

    lookback = 5

    def allocate(self, window, prev_weights=None):
        return np.full(window.n_assets, 1.0 / window.n_assets)


class EqualWeight(Strategy):
    lookback = 5

    def allocate(self, window, prev_weights=None):
        return np.full(window.n_assets, 1.0 / window.n_assets)


def test_duck_typed_strategies_get_the_protocol_defaults():
    panel = panel_from_returns(_noise(100, 3))
    # named by its class, long-only, stateless, nothing to fit: it runs in a long-only book
    result = WalkForward(rebalance=5, costs_bps=10).run(panel, [Duck(), EqualWeight()])
    pd.testing.assert_series_equal(
        result["Duck"].net_returns, result["EqualWeight"].net_returns, check_names=False
    )
    lame = Duck()
    lame.lookback = None
    with pytest.raises(ConfigError, match=r"'Duck'.*lookback = None"):
        WalkForward().run(panel, [lame])


def test_schedules():
    dates = pd.bdate_range("2020-01-01", "2020-12-31")
    monthly = schedule_indices(dates, "monthly", 3, len(dates) - 1, field="rebalance")
    assert monthly[0] == 3
    ends = dates[monthly[1:]]
    assert list(ends.month) == list(range(1, 13))
    assert all((ends + pd.offsets.BDay(1)).month != ends.month)
    np.testing.assert_array_equal(
        schedule_indices(dates, 21, 10, 100, field="rebalance"), np.arange(10, 101, 21)
    )
    flags = retrain_flags(dates, monthly, "quarterly", field="retrain")
    assert flags.sum() == 1 + 3  # the first decision, then the first one of Q2, Q3, Q4
    assert retrain_flags(dates, monthly, None, field="retrain").sum() == 1
    every = retrain_flags(dates, np.arange(0, 100, 10), 25, field="retrain")
    np.testing.assert_array_equal(np.flatnonzero(every), [0, 3, 6, 9])


# ---- properties -------------------------------------------------------------------------

returns_arrays = arrays(
    np.float64,
    st.tuples(st.integers(12, 60), st.integers(1, 4)),
    elements=st.floats(-0.5, 0.5, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(returns_arrays, st.integers(1, 6), st.floats(0, 200), st.integers(0, 10**6))
def test_costs_never_raise_wealth_and_long_only_wealth_stays_positive(r, every, bps, seed):
    panel = panel_from_returns(r)
    engine = WalkForward(rebalance=every, costs_bps=bps)
    rec = engine.run(panel, [RandomWeights(seed=seed, lookback=3)])["RandomWeights"]
    assert (rec.net_returns <= rec.gross_returns + 1e-15).all()
    assert (rec.net_returns > -1).all() and np.isfinite(rec.net_returns).all()
    assert (1 + rec.net_returns).prod() > 0
    assert np.all(rec.target_weights >= 0)
    np.testing.assert_allclose(rec.target_weights.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(rec.drifted_weights.iloc[1:].sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(rec.costs.sum(), bps * 1e-4 * rec.turnover.sum(), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(10, 80), elements=st.floats(-0.9, 2.0)), st.integers(1, 9))
def test_single_asset_without_costs_reproduces_the_asset(r, every):
    panel = panel_from_returns(r[:, None])
    rec = WalkForward(rebalance=every, costs_bps=0).run(panel, [RandomWeights(lookback=2)])
    rec = rec["RandomWeights"]
    d0 = panel.dates.get_loc(rec.target_weights.index[0])
    np.testing.assert_allclose(rec.net_returns.to_numpy(), panel.returns[d0 + 1 :, 0], atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(returns_arrays, st.integers(1, 5), st.floats(1, 100))
def test_rebalancing_to_the_drifted_weights_costs_nothing(r, every, bps):
    panel = panel_from_returns(r)
    rec = WalkForward(rebalance=every, costs_bps=bps).run(panel, [HoldInitial(lookback=3)])
    rec = rec["HoldInitial"]
    np.testing.assert_allclose(rec.costs.iloc[1:], 0.0, atol=1e-15)
    assert rec.costs.iloc[0] == pytest.approx(bps * 1e-4)


def test_a_crash_to_near_zero_does_not_turn_rounding_into_cash():
    # Found by hypothesis: after the assets lose almost everything, the 1e-16 residue of
    # 1 - sum(weights) must not dominate the wealth left and read as negative cash.
    r = np.full((43, 3), -0.4296875)
    r[4, 0] = 0.0  # uneven weights, so their sum is not exactly 1 in floating point
    panel = panel_from_returns(r)
    rec = WalkForward(rebalance=1, costs_bps=1.0).run(panel, [HoldInitial(lookback=3)])
    rec = rec["HoldInitial"]
    np.testing.assert_allclose(rec.net_returns.iloc[1:], -0.4296875, rtol=1e-9)
    np.testing.assert_allclose(rec.drifted_weights.iloc[1:].sum(axis=1), 1.0, atol=1e-12)


class Returns(Strategy):
    """Returns whatever `make(window)` gives, date by date or (batched) for every date."""

    lookback = 5

    def __init__(self, make, batched=False):
        self.make, self.batched = make, batched

    def allocate(self, window, prev_weights=None):
        return self.make(window)

    def allocate_batch(self, batch):
        if not self.batched:
            return super().allocate_batch(batch)
        return self.make(batch)


@pytest.mark.parametrize("batched", [False, True])
def test_labelled_weights_are_aligned_by_asset_not_by_position(batched):
    panel = panel_from_returns(_noise(80, 3))  # assets A0, A1, A2
    by_label = {"A2": 0.5, "A1": 0.3, "A0": 0.2}

    def labelled(seen):
        if batched:
            return pd.DataFrame([by_label] * len(seen), columns=["A2", "A1", "A0"])
        return pd.Series(by_label)

    result = WalkForward(rebalance=20).run(panel, [Returns(labelled, batched)])
    held = result["Returns"].target_weights.iloc[0]
    assert held.to_dict() == {"A0": 0.2, "A1": 0.3, "A2": 0.5}
    wrong = Returns(lambda seen: pd.Series([0.2, 0.3, 0.5], index=["X", "Y", "Z"]))
    with pytest.raises(ConstraintError, match=r"labelled its weights .* \['X', 'Y', 'Z'\]"):
        WalkForward(rebalance=20).run(panel, [wrong])


@pytest.mark.parametrize(
    "output",
    [None, 0.5, {"A0": 1.0}, ["a", "b", "c"], np.array([0.5, 0.5j, 0]), np.array([True] * 3)],
)
def test_output_that_is_not_weights_is_named(output):
    panel = panel_from_returns(_noise(60, 3))
    with pytest.raises(ConstraintError, match=r"'Returns' returned .* expected an array"):
        WalkForward(rebalance=20).run(panel, [Returns(lambda seen: output)])


def test_float32_weights_that_sum_to_one_are_fully_invested_not_negative_cash():
    panel = panel_from_returns(_noise(60, 3))
    third = Returns(lambda seen: np.array([0.2, 0.3, 0.5], np.float32))
    result = WalkForward(rebalance=20).run(panel, [third])
    assert result["Returns"].target_weights.iloc[0].sum() == pytest.approx(1.0, abs=1e-7)
    too_much = Returns(lambda seen: np.array([0.2, 0.3, 0.5001], np.float32))
    with pytest.raises(ConstraintError, match="negative cash"):
        WalkForward(rebalance=20).run(panel, [too_much])


def test_an_error_inside_a_strategy_says_which_and_when():
    panel = panel_from_returns(_noise(60, 3))
    broken = Returns(lambda seen: 1 / 0)
    with pytest.raises(ZeroDivisionError) as error:
        WalkForward(rebalance=20).run(panel, [broken])
    assert "raised by strategy 'Returns' deciding on 2000-" in "".join(error.value.__notes__)


@pytest.mark.parametrize(
    ("panel", "strategies", "match"),
    [
        ("df", [Duck()], "expected a kabuto Panel, got DataFrame; build one with Panel.from_frame"),
        ("panel", Duck(), "expected a list of strategies"),
        ("panel", None, "expected a list of strategies"),
        ("panel", [EqualWeight], "is a class, not a strategy; pass an instance: EqualWeight()"),
        ("panel", {5: Duck()}, "strategy label 5: expected a non-empty string"),
    ],
)
def test_bad_run_arguments_are_config_errors(panel, strategies, match):
    prices = panel_from_returns(_noise(60, 3))
    given = prices.to_frame() if panel == "df" else prices
    with pytest.raises(ConfigError, match=re.escape(match)):
        WalkForward().run(given, strategies)
    with pytest.raises(ConfigError, match="progress = 3"):
        WalkForward().run(prices, [Duck()], progress=3)


class FitCounter(Strategy):
    """Equal weight that records the dates of its fits (date by date when `stateful`)."""

    lookback = 5

    def __init__(self, stateful=False):
        self.stateful = stateful
        self.fits = []

    def fit(self, history):
        assert history.n_assets > 0, "fitted on an empty universe"
        self.fits.append(history.dates[-1])
        return self

    def allocate(self, window, prev_weights=None):
        assert window.n_assets > 0, "asked to allocate an empty universe"
        return np.full(window.n_assets, 1.0 / window.n_assets)


@pytest.mark.parametrize("stateful", [False, True])
def test_dates_with_nothing_listed_hold_cash_and_fit_when_assets_appear(stateful):
    # Every asset lists on row 40 and delists after row 120: before and after, the book is cash,
    # and strategies are neither fitted nor asked on an empty universe.
    r = _noise(160, 3)
    r[:40] = np.nan
    r[121:] = np.nan
    panel = panel_from_returns(r)
    counter = FitCounter(stateful)
    rec = WalkForward(rebalance=5, retrain="monthly").run(panel, [counter])["FitCounter"]
    held = rec.target_weights.sum(axis=1)
    listed = (held.index >= panel.dates[45]) & (held.index <= panel.dates[120])
    assert (held[~listed] == 0).all() and np.allclose(held[listed], 1.0)
    assert counter.fits[0] == held.index[listed][0]  # the first fit waits for an asset
    assert all(panel.dates[45] <= d <= panel.dates[120] for d in counter.fits)


def test_an_error_inside_fit_says_which_strategy_and_when():
    class Broken(FitCounter):
        def fit(self, history):
            raise ValueError("no good")

    panel = panel_from_returns(_noise(60, 3))
    with pytest.raises(ValueError, match="no good") as error:
        WalkForward(rebalance=20).run(panel, [Broken()])
    assert "raised by strategy 'Broken' deciding on 2000-" in "".join(error.value.__notes__)


def test_schedules_accept_numpy_integers():
    # np.int64(5) is a number of trading days (a sweep over np.arange gives them)
    panel = panel_from_returns(_noise(300, 3))
    for schedule in ({"rebalance": np.int64(5)}, {"retrain": np.int32(21)}):
        numpy_run = WalkForward(costs_bps=5.0, **schedule).run(panel, [RandomWeights()])
        python = {k: int(v) for k, v in schedule.items()}
        python_run = WalkForward(costs_bps=5.0, **python).run(panel, [RandomWeights()])
        pd.testing.assert_series_equal(
            numpy_run["RandomWeights"].net_returns, python_run["RandomWeights"].net_returns
        )
    with pytest.raises(ConfigError, match=r"rebalance = np.int64\(0\): expected a positive"):
        WalkForward(rebalance=np.int64(0)).run(panel, [RandomWeights()])
