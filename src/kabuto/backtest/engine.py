"""The walk-forward engine (DESIGN.md, "Timing", "Weights and costs").

Timing: a decision at the close of trading date t sees only returns stamped <= t and earns the
returns of t+1 onwards. Between rebalances the book drifts with prices; cash (1 - sum of weights)
earns nothing. A rebalance at t pays ``sum_i c_i |w_target_i - w_drifted_i|`` of wealth, booked in
the return of t+1 (the trade happens at the close of t, so the smaller wealth is what earns
t -> t+1). An asset that delists is sold at its last price: its value turns into cash and the
sale pays the same proportional cost and counts in turnover, so costs are c * turnover at a
uniform rate c.

Stateless strategies decide in batches: the decision dates between two retrain dates are grouped
by universe and handed over as one `WindowBatch` (a strided view in which element d ends at its
own date), shared by every strategy with the same lookback so that estimates cached on it are
computed once. Stateful strategies, and duck-typed ones without `allocate_batch`, are called date
by date with the drifted weights they hold.

A strategy needs only `lookback` and `allocate` (duck typing); `name`, `stateful`, `long_only`,
`min_history`, `fit`, `allocate_batch`, `reset` and `get_params` are read when present, with the
defaults of `Strategy` otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from kabuto.backtest.costs import cost_rates, trade_cost
from kabuto.backtest.result import BacktestResult, StrategyResult
from kabuto.backtest.schedule import retrain_flags, schedule_indices
from kabuto.data.panel import Panel
from kabuto.errors import ConfigError, ConstraintError, DataError
from kabuto.settings import check_date, is_integer, is_real
from kabuto.strategies.base import Strategy

WEIGHT_TOLERANCE = 1e-8  # numerical slack when checking declared constraints; never clipped
CASH_ROUNDING = 1e-12  # |1 - sum of weights| below this is rounding, not a cash position


@dataclass(frozen=True)
class WalkForward:
    """Walk-forward backtest settings.

    Parameters
    ----------
    start, end : date-like, optional
        First decision date: the first trading date on or after `start`. It must leave every
        strategy its history, the larger of `lookback` and `min_history` returns; by default it
        is the first date that does. `end`: last date of the backtest, the last trading date on
        or before it (default: the panel's last date).
    rebalance : int or str
        Every k trading days, or "weekly", "monthly", "quarterly", "yearly" (last trading day of
        each period).
    retrain : int, str or None
        When strategies refit (`fit`), on the same kinds of schedule; None fits once at start.
    costs_bps : float or mapping
        Proportional cost on traded notional in basis points, global or per asset (with an
        optional "default"). Never zero unless set so explicitly.
    long_only : bool
        Long-only book: weights >= 0 and cash >= 0. Otherwise long-short within `max_leverage`.
    max_leverage : float
        Limit on gross leverage sum |w|.
    batch_size : int
        Most decision dates allocated in one batched call (bounds memory of cached estimates).
    """

    start: str | pd.Timestamp | None = None
    end: str | pd.Timestamp | None = None
    rebalance: int | str = "monthly"
    retrain: int | str | None = "yearly"
    costs_bps: float | Mapping[str, float] = 10.0
    long_only: bool = True
    max_leverage: float = 1.0
    batch_size: int = 64

    def settings(self) -> dict:
        """The settings as a plain dict (for reports and the resolved config)."""
        out = asdict(self)
        for key in ("start", "end"):
            if out[key] is not None:
                out[key] = str(_as_date(out[key], key).date())
        if isinstance(out["costs_bps"], Mapping):
            out["costs_bps"] = dict(out["costs_bps"])
        return out

    def run(
        self,
        panel: Panel,
        strategies: Sequence[Strategy] | Mapping[str, Strategy],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> BacktestResult:
        """Backtest every strategy on the same dates; returns their daily records.

        `progress`, if given, is called with the number of decisions just completed.
        """
        if not isinstance(panel, Panel):
            raise ConfigError(
                f"panel: expected a kabuto Panel, got {type(panel).__name__}; build one with "
                "Panel.from_frame(prices) or load_prices(path)"
            )
        if progress is not None and not callable(progress):
            raise ConfigError(f"progress = {progress!r}: expected a function of a count, or None")
        named = name_strategies(strategies)
        self._check_settings(named)
        for strategy in named.values():  # a new backtest: nothing carries over from another
            reset = getattr(strategy, "reset", None)
            if callable(reset):
                reset()
        rates = cost_rates(self.costs_bps, panel.assets)
        first, last, decisions = self._decisions(panel, named)
        refit = retrain_flags(panel.dates, decisions, self.retrain, field="retrain")
        plan = _Plan(panel, decisions, refit, self.batch_size)

        targets: dict[str, np.ndarray] = {}
        batched = {n: s for n, s in named.items() if _decides_in_batches(s)}
        unfitted = set(batched)  # due a fit at their next decision with an asset to hold
        for chunk in plan.chunks(sorted({s.lookback for s in batched.values()})):
            for name, strategy in batched.items():
                ts = decisions[chunk]
                full = targets.setdefault(name, np.zeros((len(decisions), panel.n_assets)))
                batch, columns = plan.batch(chunk, strategy.lookback)
                if refit[chunk.start]:
                    unfitted.add(name)
                if len(columns):  # else nothing is listed (yet, or any more): the book is cash
                    if name in unfitted:
                        _fit(strategy, name, panel, int(ts[0]))
                        unfitted.discard(name)
                    with _blamed(name, batch.dates):
                        chosen = strategy.allocate_batch(batch)
                    weights, slack = _as_weights(chosen, name, batch.dates, batch.assets)
                    self._check_weights(strategy, name, weights, batch.dates, batch.assets, slack)
                    full[chunk.start : chunk.stop, columns] = weights
                if progress:
                    progress(len(ts))

        returns = np.nan_to_num(panel.returns)  # not yet listed or delisted: value frozen
        records = {}
        for name, strategy in named.items():
            records[name] = self._account(
                name,
                strategy,
                panel,
                returns,
                decisions,
                refit,
                last,
                rates,
                targets.get(name),
                progress,
            )
        return BacktestResult(
            strategies=records,
            settings={
                "backtest": self.settings()
                | {
                    "first_decision": str(panel.dates[first].date()),
                    "last_date": str(panel.dates[last].date()),
                    "n_rebalances": len(decisions),
                },
                "strategies": {n: strategy_params(s) for n, s in named.items()},
            },
            data_source=panel.source,
            survivorship_caveat=panel.survivorship_caveat,
            benchmark_returns=_benchmark(panel, first, last),
        )

    def count_decisions(
        self, panel: Panel, strategies: Sequence[Strategy] | Mapping[str, Strategy]
    ) -> int:
        """Number of rebalance dates a run on `panel` will have (for progress bars)."""
        named = name_strategies(strategies)
        self._check_settings(named)
        return len(self._decisions(panel, named)[2])

    def _decisions(self, panel: Panel, named: Mapping[str, Strategy]):
        """First and last index of the backtest, and the decision indices."""
        first, last = self._date_range(panel, max(required_history(s) for s in named.values()))
        decisions = schedule_indices(
            panel.dates, self.rebalance, first, last - 1, field="rebalance"
        )
        return first, last, decisions

    def _date_range(self, panel: Panel, history: int) -> tuple[int, int]:
        """First decision and last date; `history` returns must precede the first decision."""
        if panel.n_dates < history + 2:
            raise DataError(
                f"{panel.source}: {panel.n_dates} rows of prices, fewer than the {history + 2} "
                f"the strategies need ({history} returns of history, their lookback or "
                "min_history, and a day to trade); use more data or a shorter lookback"
            )
        start, end = self._bounds()
        for key, value in (("start", start), ("end", end)):
            if value is not None and value > panel.dates[-1]:
                raise ConfigError(
                    f"{key} = {value.date()} is after the last date of {panel.source} "
                    f"({panel.dates[-1].date()}); choose an earlier {key}"
                )
        if end is not None and end < panel.dates[0]:
            raise ConfigError(
                f"end = {end.date()} is before the first date of {panel.source} "
                f"({panel.dates[0].date()}); choose a later end"
            )
        last = panel.n_dates - 1 if end is None else panel.index_of(end)
        # the first trading date on or after `start`
        first = history if start is None else int(panel.dates.searchsorted(start))
        if first < history:  # only a given start can leave too little history
            raise DataError(
                f"{panel.source}: start = {start.date()} leaves only {first} returns of history "
                f"before the first decision, fewer than the {history} the strategies need "
                f"(lookback or min_history); start on or after {panel.dates[history].date()} "
                "or shorten the lookback"
            )
        if last - first < 1:
            raise DataError(
                f"{panel.source}: {panel.n_dates} rows leave no date to trade after "
                f"{history} returns of history (start "
                f"{panel.dates[min(first, panel.n_dates - 1)].date()}, end "
                f"{panel.dates[last].date()}); use more data or a shorter lookback"
            )
        return first, last

    def _bounds(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """`start` and `end` as timestamps (None where unset)."""
        start, end = _as_date(self.start, "start"), _as_date(self.end, "end")
        if start is not None and end is not None and start > end:
            raise ConfigError(
                f"start = {start.date()} is after end = {end.date()}; choose a start before end"
            )
        return start, end

    def _check_settings(self, named: Mapping[str, Strategy]) -> None:
        """Raise a ConfigError naming the first setting or strategy declaration that is bad.

        The schedules and costs are checked where they are resolved against the panel.
        """
        self._bounds()
        if not isinstance(self.long_only, bool | np.bool_):
            raise ConfigError(f"long_only = {self.long_only!r}: expected true or false")
        if not is_real(self.max_leverage, finite=False) or not self.max_leverage > 0:  # NaN fails
            raise ConfigError(f"max_leverage = {self.max_leverage!r}: expected a positive number")
        if self.long_only and self.max_leverage < 1:
            raise ConfigError(
                f"max_leverage = {self.max_leverage} with long_only = true: a long-only book is "
                "limited by its cash (leverage 1); use long_only = false for other limits"
            )
        if not is_integer(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"batch_size = {self.batch_size!r}: expected a positive integer")
        for name, strategy in named.items():
            lookback = getattr(strategy, "lookback", None)
            if not is_integer(lookback) or lookback < 1:
                raise ConfigError(
                    f"strategy {name!r}: lookback = {lookback!r}, expected a positive number "
                    "of days"
                )
            if self.long_only and not is_long_only(strategy):
                raise ConfigError(
                    f"strategy {name!r} holds short positions but the backtest is long-only; "
                    "set long_only = false (with max_leverage) to run it"
                )

    def _check_weights(
        self,
        strategy: Strategy,
        name: str,
        weights: np.ndarray,
        dates: pd.DatetimeIndex,
        assets: Sequence[str],
        slack: float = WEIGHT_TOLERANCE,
    ) -> None:
        """Raise on weights that break the book's or the strategy's declared constraints
        (beyond `slack`, the rounding of the weights' own precision).

        A strategy declared long-only is held to it even in a long-short book. Weights are
        never clipped.
        """
        if weights.shape != (len(dates), len(assets)):
            raise ConstraintError(
                f"strategy {name!r} returned weights of shape {weights.shape}, expected "
                f"{(len(dates), len(assets))} (dates x eligible assets)"
            )
        problems = []
        bad = ~np.isfinite(weights)
        if bad.any():
            problems.append((bad, "a non-finite weight"))
        elif self.long_only or is_long_only(strategy):
            # In a long-short book the limit is the strategy's own declaration (the default).
            why = (
                "long-only"
                if self.long_only
                else "the strategy declares long_only = True, the default; a long-short "
                "strategy sets the class attribute long_only = False"
            )
            problems.append((weights < -slack, f"a short position ({why})"))
            cash = 1.0 - weights.sum(axis=1, keepdims=True)
            problems.append(
                (np.broadcast_to(cash < -slack, weights.shape), f"negative cash ({why})")
            )
        if not self.long_only:
            gross = np.abs(weights).sum(axis=1, keepdims=True)
            problems.append(
                (
                    np.broadcast_to(gross > self.max_leverage + slack, weights.shape),
                    f"gross leverage above max_leverage = {self.max_leverage}",
                )
            )
        for mask, what in problems:
            if mask.any():
                d, i = np.argwhere(mask)[0]
                # the figures that show the breach: a row's gross for leverage, else an asset's
                shown = (
                    f"gross leverage {np.abs(weights[d]).sum():.10g}"  # past the 1e-8 slack
                    if what.startswith("gross")
                    else f"weight of {assets[i]!r} = {weights[d, i]:.6g}"
                )
                raise ConstraintError(
                    f"strategy {name!r} chose {what} on {dates[d].date()}: {shown}, weights "
                    f"sum to {weights[d].sum():.6g}; fix the strategy's constraints (kabuto "
                    "never clips weights)"
                )

    def _beside_stale(
        self, strategy: Strategy, target: np.ndarray, drifted: np.ndarray, stale: np.ndarray
    ) -> np.ndarray:
        """`target` with the positions in `stale` assets held as they drifted.

        An asset whose price is filled today (no trade: a halt, a holiday of its market, or
        the held last price of one that may have delisted) cannot be traded, so its position
        stays; the strategy, which did not see it, decided the rest of the book, scaled down
        when needed to fit beside the held positions within the book's limits (cash >= 0
        for a long-only book or strategy, and gross leverage in a long-short book). Shape:
        (n,) each.
        """
        out = target.copy()
        out[stale] = drifted[stale]
        free = ~stale
        limits = []  # (room left beside the held positions, what the rest uses of it)
        if self.long_only or is_long_only(strategy):
            limits.append((1.0 - drifted[stale].sum(), out[free].sum()))
        if not self.long_only:  # a long-only strategy in a long-short book has both limits
            gross = (self.max_leverage - np.abs(drifted[stale]).sum(), np.abs(out[free]).sum())
            limits.append(gross)
        scale = min(
            (max(room, 0.0) / used for room, used in limits if used > max(room, 0) + CASH_ROUNDING),
            default=1.0,
        )
        out[free] *= scale
        return out

    def _account(
        self,
        name: str,
        strategy: Strategy,
        panel: Panel,
        returns: np.ndarray,
        decisions: np.ndarray,
        refit: np.ndarray,
        last: int,
        rates: np.ndarray,
        targets: np.ndarray | None,
        progress: Callable[[int], None] | None,
    ) -> StrategyResult:
        """Hold, drift, trade and pay costs from the first decision to `last`."""
        first = int(decisions[0])
        n_days = last - first
        gross = np.empty(n_days)
        costs = np.zeros(n_days)  # costs[s] is booked in the return of date first + 1 + s
        target_hist = np.zeros((len(decisions), panel.n_assets))
        drifted_hist = np.zeros_like(target_hist)
        delisted = np.zeros(len(decisions))  # notional sold on delisting, per segment
        held = np.zeros(panel.n_assets)  # weights right after the last trade (all cash at start)
        unfitted = True  # a fit is due at the next decision with an asset to hold

        for k, t in enumerate(decisions):
            t = int(t)
            drifted = held  # `held` was drifted to t at the end of the previous segment
            if targets is None:  # date by date: decide now, with the weights actually held
                columns = np.flatnonzero(panel.eligible(t, strategy.lookback))
                unfitted = unfitted or bool(refit[k])
                target = np.zeros(panel.n_assets)  # nothing listed (yet, or any more): cash
                if len(columns):
                    if unfitted:
                        _fit(strategy, name, panel, t)
                        unfitted = False
                    window = panel.window(t, strategy.lookback, columns)
                    dates = panel.dates[[t]]
                    with _blamed(name, dates):
                        chosen = strategy.allocate(window, prev_weights=drifted[columns].copy())
                    w, slack = _as_weights(chosen, name, dates, window.assets, one_date=True)
                    self._check_weights(strategy, name, w, dates, window.assets, slack)
                    target[columns] = w[0]
                if progress:
                    progress(1)
            else:
                target = targets[k]
            stale = panel.filled[t] & (drifted != 0)
            if stale.any():
                target = self._beside_stale(strategy, target, drifted, stale)
            trade = trade_cost(rates, target, drifted)
            costs[t - first] += trade
            target_hist[k], drifted_hist[k] = target, drifted

            stop = int(decisions[k + 1]) if k + 1 < len(decisions) else last
            growth = np.cumprod(1.0 + returns[t + 1 : stop + 1], axis=0)
            values = target * growth  # (days, n) value of each position per unit of wealth at t
            cash = 1.0 - target.sum()
            if abs(cash) < CASH_ROUNDING:
                # A fully invested book: the residue of 1 - sum is rounding, and after a crash
                # of the assets it would dominate the tiny wealth left and fake a cash position.
                cash = 0.0
            wealth = cash + values.sum(axis=1)

            # Delisted inside the segment: sold at the last price, paying the same cost rate
            # out of the proceeds (cash, which earns nothing: the other positions are not
            # touched). fee[m] is paid at the close of date t + m, per unit of wealth after the
            # trade at t. The notional sold counts, like a trade's, as a fraction of that
            # day's wealth before costs, and is turnover of this segment's rebalance.
            fee = np.zeros(stop - t)
            gone = np.flatnonzero(
                (panel.last_valid >= t) & (panel.last_valid < stop) & (target != 0)
            )
            for i in sorted(gone, key=lambda i: panel.last_valid[i]):
                m = int(panel.last_valid[i]) - t
                value = abs(target[i]) if m == 0 else abs(values[m - 1, i])
                # that day's wealth before its costs: before the trade on t, else net of the
                # fees paid on earlier days
                day_wealth = 1.0 / (1.0 - trade) if m == 0 else wealth[m - 1] - fee[:m].sum()
                costs[t + m - first] += rates[i] * value / day_wealth
                delisted[k] += value / day_wealth
                fee[m] += rates[i] * value
            paid = np.cumsum(fee)  # paid[m]: the fees paid by the close of date t + m
            before = wealth - paid  # wealth on dates t+1..stop before that day's fees
            if (before <= 0).any():
                day = t + 1 + int(np.argmax(before <= 0))
                raise ConstraintError(
                    f"strategy {name!r} lost all its wealth on {panel.dates[day].date()} "
                    "(short positions); lower max_leverage"
                )
            after = np.concatenate([[1.0 - paid[0]], before[:-1] - fee[1:]])  # after the fees
            gross[t - first : stop - first] = before / after - 1.0
            held = values[-1] / before[-1]
            held[gone] = 0.0  # the sale proceeds are cash now

        _check_costs(name, costs, panel.dates[first:last])
        dates = panel.dates[first + 1 : last + 1]
        net = (1.0 + gross) * (1.0 - costs) - 1.0
        assets = list(panel.assets)
        rebalance_dates = panel.dates[decisions]
        turnover = np.abs(target_hist - drifted_hist).sum(axis=1) + delisted
        return StrategyResult(
            name=name,
            gross_returns=pd.Series(gross, index=dates, name=name),
            net_returns=pd.Series(net, index=dates, name=name),
            costs=pd.Series(costs, index=dates, name=name),
            turnover=pd.Series(turnover, index=rebalance_dates, name=name),
            target_weights=pd.DataFrame(target_hist, index=rebalance_dates, columns=assets),
            drifted_weights=pd.DataFrame(drifted_hist, index=rebalance_dates, columns=assets),
        )


class _Plan:
    """Groups decision dates into batches that share a universe and a fitted model."""

    def __init__(self, panel: Panel, decisions: np.ndarray, refit: np.ndarray, size: int):
        self.panel, self.decisions, self.refit, self.size = panel, decisions, refit, size
        self._batches: dict[tuple[int, int, int], tuple] = {}

    def chunks(self, lookbacks: Sequence[int]):
        """Yield slices of decision positions; each starts a new batch for every strategy."""
        if not lookbacks:
            return
        stale = self.panel.filled[self.decisions]
        masks = np.concatenate(
            [
                (self.panel.first_valid <= self.decisions[:, None] - lb)
                & (self.panel.last_valid >= self.decisions[:, None])
                & ~stale
                for lb in lookbacks
            ],
            axis=1,
        )
        cut = self.refit.copy()
        cut[1:] |= (masks[1:] != masks[:-1]).any(axis=1)
        starts = np.flatnonzero(cut)
        bounds = np.append(starts, len(self.decisions))
        for a, b in itertools.pairwise(bounds):
            for s in range(a, b, self.size):
                self._batches.clear()  # free the previous chunk's windows and cached estimates
                yield slice(s, min(s + self.size, b))

    def batch(self, chunk: slice, lookback: int):
        """The chunk's windows for a lookback, built once and shared by every strategy."""
        key = (chunk.start, chunk.stop, lookback)
        if key not in self._batches:
            ts = self.decisions[chunk]
            columns = np.flatnonzero(self.panel.eligible(int(ts[0]), lookback))
            self._batches[key] = (self.panel.batch(ts, lookback, columns), columns)
        return self._batches[key]


def _check_costs(name: str, costs: np.ndarray, trade_dates: pd.DatetimeIndex) -> None:
    """Raise when a day's costs take all the wealth (possible only with leverage)."""
    ruinous = costs >= 1.0
    if ruinous.any():
        s = int(np.argmax(ruinous))
        raise ConstraintError(
            f"strategy {name!r} paid costs of {costs[s]:.4g} times its wealth for trading at "
            f"the close of {trade_dates[s].date()}, leaving nothing or less; lower max_leverage "
            "or costs_bps, or trade less"
        )


def _as_date(value: object, field: str) -> pd.Timestamp | None:
    """A `start` or `end` setting as a time-zone-naive timestamp (None stays None)."""
    return None if value is None else check_date(field, value)


def is_long_only(strategy: Strategy) -> bool:
    """Whether a strategy declares a long-only book (duck-typed ones: yes, as `Strategy`)."""
    return bool(getattr(strategy, "long_only", True))


def _decides_in_batches(strategy: Strategy) -> bool:
    """Stateless with an `allocate_batch`: decided a batch at a time, before the accounting."""
    stateful = bool(getattr(strategy, "stateful", False))
    return not stateful and callable(getattr(strategy, "allocate_batch", None))


def required_history(strategy: Strategy) -> int:
    """Returns a strategy needs before its first decision (duck-typed strategies: lookback)."""
    return max(strategy.lookback, getattr(strategy, "min_history", strategy.lookback))


@contextmanager
def _blamed(name: str, dates: pd.DatetimeIndex) -> Iterator[None]:
    """An exception from inside a strategy keeps its type and says which strategy and date."""
    try:
        yield
    except Exception as exc:
        when = dates[0].date() if len(dates) == 1 else f"{dates[0].date()}..{dates[-1].date()}"
        exc.add_note(f"raised by strategy {name!r} deciding on {when}")
        raise


def _as_weights(
    chosen: object,
    name: str,
    dates: pd.DatetimeIndex,
    assets: Sequence[str],
    one_date: bool = False,
) -> tuple[np.ndarray, float]:
    """A strategy's output as weights of shape (dates, assets), and the slack of its precision.

    Labelled output is aligned by label: a Series (one date) or a DataFrame (dates x assets)
    indexed by asset names is reordered to `assets`, and labels that are not the eligible assets
    are an error rather than read by position.
    """
    expected = "an array of one weight per eligible asset (in window.assets order)"
    if one_date:
        expected += " or a pandas Series indexed by asset"
    else:
        expected = f"an array (dates x assets), {expected}, or a DataFrame with asset columns"
    labels = (
        chosen.index
        if isinstance(chosen, pd.Series)
        else chosen.columns
        if isinstance(chosen, pd.DataFrame)
        else None
    )
    if labels is not None and not isinstance(labels, pd.RangeIndex):  # (a RangeIndex: positions)
        missing, unknown = set(assets) - set(labels), set(labels) - set(assets)
        if missing or unknown or labels.has_duplicates:
            raise ConstraintError(
                f"strategy {name!r} labelled its weights on {dates[0].date()} with "
                f"{list(labels)[:5]}; expected each of the eligible assets {list(assets)[:5]} once"
            )
        chosen = chosen.reindex(assets) if isinstance(chosen, pd.Series) else chosen[list(assets)]
    try:  # (a tensor that requires grad raises a RuntimeError: detach it first)
        raw = np.asarray(chosen)
        weights = None if raw.dtype.kind not in "iuf" else raw.astype(np.float64, copy=False)
    except (TypeError, ValueError, RuntimeError):
        weights = None
    if weights is None or weights.ndim != (1 if one_date else 2):
        raise ConstraintError(
            f"strategy {name!r} returned {type(chosen).__name__} {_short(chosen)} on "
            f"{dates[0].date()}; expected {expected}"
        )
    precision = raw.dtype if raw.dtype.kind == "f" else np.float64
    # float32 weights that sum to 1 exceed it by ~1e-8 after conversion: not a constraint broken
    slack = max(WEIGHT_TOLERANCE, 4 * len(assets) * float(np.finfo(precision).eps))
    return (weights[None, :] if one_date else weights), slack


def _short(value: object) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _fit(strategy: Strategy, name: str, panel: Panel, t: int) -> None:
    """Fit on all history up to and including t, for the assets listed at t (one whose price
    is filled at t, halted, is learnt from too: it may trade again before the next fit)."""
    fit = getattr(strategy, "fit", None)
    if callable(fit):  # a duck-typed strategy may have nothing to learn
        columns = np.flatnonzero(panel.listed(t, strategy.lookback))
        with _blamed(name, panel.dates[[t]]):
            fit(panel.window(t, t, columns))


def name_strategies(strategies: Sequence[Strategy] | Mapping[str, Strategy]) -> dict:
    """Strategies by their labels (a mapping's keys, or each one's `name`), each checked to
    have an `allocate` method; ConfigError for none, or for two with one name."""
    if isinstance(strategies, Mapping):
        named = dict(strategies)
    elif isinstance(strategies, Sequence | set | frozenset) and not isinstance(strategies, str):
        named = {}
        for s in strategies:
            if isinstance(s, type):
                raise ConfigError(
                    f"{s.__name__} is a class, not a strategy; pass an instance: {s.__name__}()"
                )
            name = getattr(s, "name", type(s).__name__)
            if name in named:
                raise ConfigError(f"two strategies are named {name!r}; give each a distinct label")
            named[name] = s
    else:
        raise ConfigError(
            f"strategies = {strategies!r}: expected a list of strategies (e.g. [EqualWeight()]) "
            "or a mapping of label to strategy"
        )
    if not named:
        raise ConfigError("no strategies to backtest; add at least one")
    for name, s in named.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"strategy label {name!r}: expected a non-empty string")
        if isinstance(s, type):
            raise ConfigError(f"{name!r} is a class, not a strategy; pass an instance")
        if not callable(getattr(s, "allocate", None)):
            raise ConfigError(f"{name!r} is not a strategy (it has no allocate method)")
    return named


def strategy_params(strategy: Strategy) -> dict:
    """A strategy's class and settings, defaults included, printable (non-scalar values by
    their repr)."""
    params = strategy.get_params(deep=False) if hasattr(strategy, "get_params") else {}
    plain = (int, float, str, bool, type(None))
    return {"class": type(strategy).__name__} | {
        k: v if isinstance(v, plain) else repr(v) for k, v in params.items()
    }


def _benchmark(panel: Panel, first: int, last: int) -> pd.Series | None:
    bench = panel.benchmark_returns()
    if bench is None:
        return None
    return bench.iloc[first + 1 : last + 1].rename("benchmark")
