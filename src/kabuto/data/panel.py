"""The `Panel`: aligned daily prices and simple returns, dates x assets, with cheap windows.

Closes are the prices every strategy and the backtest use. A panel may also carry each date's
high and low (``highs``, ``lows``), for strategies that look at the day's range (the RL
environment's observation); they are missing exactly where the close is, and
``low <= close <= high``.

Missing prices are NaN only before an asset lists (leading) or after it delists (trailing);
interior gaps are repaired or rejected when the panel is built (see `kabuto.data.validation`).
A `Window` is what a strategy sees for one decision date: the last `length` returns ending at
that date, never anything later. A `WindowBatch` stacks the windows of many decision dates (a
strided view when they are evenly spaced) and caches estimates (means, covariances) so that
every strategy in a run shares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from kabuto.errors import ArgumentError, DataError

#: Price features a panel may carry, in the order `Panel.price_features` stacks them.
PRICE_FEATURES = ("close", "high", "low")

#: What to do when the prices given to `Panel` are not clean yet.
FROM_FRAME_HINT = "build the panel with Panel.from_frame, which parses, sorts and checks raw prices"

#: What to pass instead of something that is not a table of prices.
PRICES_HINT = (
    "pass a DataFrame of prices indexed by date (one column per asset), or use "
    "Panel.from_frame / load_prices"
)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.view()
    a.flags.writeable = False
    return a


class Panel:
    """Daily prices of N assets over T dates, with simple returns.

    Parameters
    ----------
    prices : DataFrame
        Index: dates, a `DatetimeIndex` (unique, increasing). Columns: asset names. Values:
        finite positive prices, NaN only before listing or after delisting (the day after the
        last price: `Panel.from_frame` first holds a last price ``max_ffill`` dates, since
        until then a halt and a delisting look alike). Anything else raises a `DataError`; use
        `Panel.from_frame` to validate and repair raw user data first.
    source : str
        Provenance shown in reports ("bundled S&P 500 (skfolio)", a file path, "GBM seed=3").
    benchmark : Series, optional
        Prices of a benchmark index (for beta and information ratio), indexed by date. It is
        reindexed to the panel's dates (dates the panel lacks are dropped) and must then hold a
        finite positive price on every one of them, else a `DataError` names the first bad
        date: a gap at the start would leave the benchmark returns of an early backtest
        undefined.
    survivorship_caveat : str, optional
        Printed in every report made from this panel.
    highs, lows : DataFrame, optional
        Each date's high and low price, same index and columns as `prices` (both or neither).
        Missing exactly where the close is; ``low <= close <= high``. `Panel.from_frame`
        aligns and repairs raw ones.

    Raises
    ------
    DataError
        If `prices` is not a DataFrame, has fewer than 2 dates, an index that is not unique
        increasing dates, duplicate asset names, values that are not numbers, or prices that
        are not finite and positive where given; for bad highs and lows; for a `benchmark`
        that is not a Series of finite positive prices on the panel's dates.

    Attributes
    ----------
    prices : ndarray of shape (T, N)
    returns : ndarray of shape (T, N)
        ``returns[t] = prices[t] / prices[t-1] - 1``; NaN on the first date and wherever either
        price is missing.
    highs, lows : ndarray of shape (T, N) or None
    benchmark : Series or None
        The benchmark's prices (float64) on `dates`.
    dates : DatetimeIndex of length T
    assets : tuple of N str
    first_valid, last_valid : ndarray of shape (N,)
        Index of each asset's first and last price.
    filled : ndarray of shape (T, N), bool
        The prices `Panel.from_frame` filled (no trade that day): interior gaps, and an
        asset's last price held up to ``max_ffill`` dates before it counts as delisted.
    """

    def __init__(
        self,
        prices: pd.DataFrame,
        *,
        source: str = "user data",
        benchmark: pd.Series | None = None,
        survivorship_caveat: str | None = None,
        highs: pd.DataFrame | None = None,
        lows: pd.DataFrame | None = None,
    ) -> None:
        if not isinstance(prices, pd.DataFrame):
            raise DataError(
                f"{source}: prices must be a DataFrame, got {type(prices).__name__}; {PRICES_HINT}"
            )
        if prices.shape[0] < 2 or prices.shape[1] < 1:
            raise DataError(
                f"{source}: a panel needs at least 2 dates and 1 asset, got shape {prices.shape}"
            )
        self.dates = _checked_dates(prices.index, source)
        self.assets = tuple(str(c) for c in prices.columns)
        self.source = source
        values = _checked_values(prices, self.dates, self.assets, source)
        self.survivorship_caveat = survivorship_caveat
        # how many prices validation forward-filled, per asset (set by `clean_prices`), and
        # which: none here, `from_frame` marks the cells it filled
        self.ffilled = {str(k): int(v) for k, v in prices.attrs.get("ffilled", {}).items()}
        self.filled = _readonly(np.zeros(prices.shape, dtype=bool))
        infinite = np.isinf(values)
        if infinite.any():  # NaN marks a missing price; an infinite one would read as missing
            t, col = (int(i) for i in np.argwhere(infinite)[0])
            raise DataError(
                f"{source}: asset {self.assets[col]!r} on {self.dates[t].date()} has price "
                f"{float(values[t, col])!r}; prices must be finite (NaN where there is none); "
                f"{FROM_FRAME_HINT}"
            )
        finite = np.isfinite(values)
        if not finite.any(axis=0).all():
            empty = [a for a, ok in zip(self.assets, finite.any(axis=0), strict=True) if not ok]
            raise DataError(f"{source}: asset column(s) {empty} have no prices; drop them")
        self.first_valid = finite.argmax(axis=0)
        self.last_valid = len(values) - 1 - finite[::-1].argmax(axis=0)
        span = np.arange(len(values))[:, None]
        inside = (span >= self.first_valid) & (span <= self.last_valid)
        if (inside & ~finite).any():
            col = int(np.argwhere((inside & ~finite).any(axis=0))[0, 0])
            raise DataError(
                f"{source}: asset {self.assets[col]!r} has interior gaps; build the panel with "
                "Panel.from_frame(..., max_ffill=K) to forward-fill short gaps"
            )
        if (values[finite] <= 0).any():
            raise DataError(f"{source}: prices must be positive")
        self.prices = _readonly(values)
        returns = np.full_like(values, np.nan)
        with np.errstate(over="ignore"):  # an overflow is reported, naming the prices, below
            returns[1:] = values[1:] / values[:-1] - 1.0
        _check_returns(self, values, returns)
        self.returns = _readonly(returns)
        self.highs, self.lows = _check_range(self, values, highs, lows)
        self.benchmark = None if benchmark is None else _checked_benchmark(self, benchmark)

    @classmethod
    def from_frame(
        cls,
        prices: pd.DataFrame,
        *,
        source: str = "user data",
        max_ffill: int = 5,
        benchmark: pd.Series | None = None,
        survivorship_caveat: str | None = None,
        highs: pd.DataFrame | None = None,
        lows: pd.DataFrame | None = None,
    ) -> Panel:
        """Validate raw wide prices (index dates, one column per asset) and build a panel.

        Optional raw `highs` and `lows` (same layout) are aligned to the cleaned closes; on a
        date whose missing close was forward-filled (no trading) high and low are the close.
        The panel's `filled` marks those prices: on such a date the asset is not `eligible`.
        """
        from kabuto.data.validation import align_range, clean_prices

        cleaned = clean_prices(prices, source=source, max_ffill=max_ffill)
        # taken off the frame: an array in attrs would follow column selections misaligned
        filled = np.array(cleaned.attrs.pop("filled"), dtype=bool)
        if highs is not None and lows is not None:  # one without the other: Panel says so
            highs, lows = align_range(prices, cleaned, highs, lows, source=source)
        panel = cls(
            cleaned,
            source=source,
            benchmark=benchmark,
            survivorship_caveat=survivorship_caveat,
            highs=highs,
            lows=lows,
        )
        panel.filled = _readonly(filled)
        return panel

    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_assets(self) -> int:
        return len(self.assets)

    @property
    def has_high_low(self) -> bool:
        """Whether the panel carries daily highs and lows besides the closes."""
        return self.highs is not None

    def price_features(self, high_low: bool = True) -> np.ndarray:
        """Closes, then highs and lows when the panel has them and `high_low` is set.

        Shape: output (F, T, N) with F = 3 (close, high, low) or 1 (close).
        """
        return _price_features(self.prices, self.highs, self.lows, high_low)

    def __repr__(self) -> str:
        return (
            f"Panel({self.n_dates} dates x {self.n_assets} assets, "
            f"{self.dates[0].date()}..{self.dates[-1].date()}, source={self.source!r})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Prices as a DataFrame (dates x assets), the prices `from_frame` filled as NaN: as
        the data had them, so that `from_frame` with the same ``max_ffill`` fills the same cells
        again (and no more)."""
        prices = np.where(self.filled, np.nan, self.prices)
        return pd.DataFrame(prices, index=self.dates, columns=list(self.assets))

    def returns_frame(self) -> pd.DataFrame:
        """Simple returns as a DataFrame (dates x assets); the first row is NaN."""
        return pd.DataFrame(self.returns, index=self.dates, columns=list(self.assets))

    def benchmark_returns(self) -> pd.Series | None:
        """Simple returns of the benchmark index, if the panel has one."""
        if self.benchmark is None:
            return None
        return self.benchmark.pct_change(fill_method=None)

    def index_of(self, date: str | pd.Timestamp) -> int:
        """Index of the last date <= `date` (the decision date a calendar date falls on).

        Raises `ArgumentError` for a value that is not a date, `DataError` for a date before
        the panel's first.
        """
        try:
            when = pd.Timestamp(date)
        except (TypeError, ValueError):
            when = pd.NaT
        if when is pd.NaT:
            raise ArgumentError(
                f"{self.source}: date={date!r} is not a date; give one like '2020-01-31' or a "
                "pandas Timestamp"
            )
        if when.tz is not None and self.dates.tz is None:  # naive, as `Panel.from_frame` makes
            when = when.tz_localize(None)
        pos = int(self.dates.searchsorted(when, side="right")) - 1
        if pos < 0:
            raise DataError(
                f"{self.source}: date {when.date()} is before the first date {self.dates[0].date()}"
            )
        return pos

    def listed(self, t: int, lookback: int) -> np.ndarray:
        """Mask of assets with `lookback` returns ending at t and a price at t (filled or not):
        what a fit at t may learn from."""
        return (self.first_valid <= t - lookback) & (self.last_valid >= t)

    def eligible(self, t: int, lookback: int) -> np.ndarray:
        """Mask of assets a decision at index `t` may hold.

        An asset joins once it has `lookback` returns ending at t, and stays while it still has
        a price at t. (Whether it delists tomorrow is unknown at t, so it is not excluded.) A
        price filled at t (`filled`: no trade that day) leaves it out for that date: the
        engine holds such a position as it drifted instead.
        """
        return self.listed(t, lookback) & ~self.filled[t]

    def window(self, t: int, length: int, columns: np.ndarray | None = None) -> Window:
        """The `length` returns ending at index t (inclusive), for the given asset columns.

        `t` is a position in `dates`, from 0 to T - 1 (negative positions are not read from the
        end): anything else raises `ArgumentError`.
        """
        t = self._position(t)
        if t - length + 1 < 1:
            raise DataError(
                f"{self.source}: a window of {length} returns ending at "
                f"{self.dates[t].date()} needs {length + 1} prices, only {t + 1} are available; "
                "start later or shorten the lookback"
            )
        rows = slice(t - length + 1, t + 1)
        every = columns is None or len(columns) == self.n_assets

        def take(a: np.ndarray | None) -> np.ndarray | None:
            # A copy: a view's `.base` would be the whole panel, later dates included.
            if a is None:
                return None
            # C order either way: numpy's sums round by memory layout, so a window's weights
            # would otherwise depend on whether its columns were subset
            return _readonly(a[rows].copy() if every else np.take(a[rows], columns, axis=1))

        assets = self.assets if every else tuple(self.assets[i] for i in columns)
        return Window(
            returns=take(self.returns),
            prices=take(self.prices),
            dates=self.dates[rows].copy(deep=True),
            assets=assets,
            highs=take(self.highs),
            lows=take(self.lows),
        )

    def _position(self, t: object, name: str = "t") -> int:
        """`t` as a position in `dates` (0..T - 1), or an `ArgumentError` naming it."""
        ok = isinstance(t, int | np.integer) and not isinstance(t, bool | np.bool_)
        if not ok or not 0 <= t < self.n_dates:
            raise ArgumentError(
                f"{self.source}: {name}={t!r} is not a date position of this panel; use an "
                f"integer from 0 to {self.n_dates - 1} ({self.dates[0].date()}.."
                f"{self.dates[-1].date()}), e.g. from Panel.index_of(date)"
            )
        return int(t)

    def batch(
        self, ts: Sequence[int], length: int, columns: np.ndarray | None = None
    ) -> WindowBatch:
        """Windows of `length` returns ending at each index in `ts`, stacked.

        The windows hold copies of the panel's rows up to the last decision date: nothing later
        is reachable from the batch, not even through an array's `.base`. Evenly spaced dates
        share one copy of the rows through a strided view.
        """
        ts = np.asarray(ts, dtype=np.int64)
        if len(ts):
            self._position(int(ts.min()), "ts")
            self._position(int(ts.max()), "ts")
        if len(ts) and ts.min() - length + 1 < 1:
            self.window(int(ts.min()), length)  # raises the explanatory error
        # Slice the panel at the last decision date first: no window can reach past its own end,
        # and nothing after the batch's last date is even addressable.
        upto = int(ts.max()) + 1 if len(ts) else 0
        every = columns is None or len(columns) == self.n_assets

        def upto_last(a: np.ndarray | None) -> np.ndarray | None:
            if a is None:
                return None
            return a[:upto] if every else np.take(a[:upto], columns, axis=1)

        assets = self.assets if every else tuple(self.assets[i] for i in columns)

        steps = np.diff(ts)
        evenly_spaced = len(ts) > 1 and (steps == steps[0]).all() and steps[0] > 0

        def stack(a: np.ndarray) -> np.ndarray:  # (D, L, n)
            if evenly_spaced:  # a strided view of one copy of the rows the windows cover
                start = a[ts[0] - length + 1 :].copy()  # (a view's `.base` is the whole panel)
                rows, cols = start.strides
                shape, strides = (len(ts), length, a.shape[1]), (int(steps[0]) * rows, rows, cols)
                view = np.lib.stride_tricks.as_strided(start, shape, strides, writeable=False)
                return view
            # one copy, in C order like a single window's (layout moves numpy's rounding)
            return _readonly(a[(ts - length + 1)[:, None] + np.arange(length)])

        def stacked(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else stack(upto_last(a))

        return WindowBatch(
            returns=stacked(self.returns),
            prices=stacked(self.prices),
            dates=self.dates[ts],
            assets=assets,
            indices=ts,
            known_dates=self.dates[:upto].copy(deep=True),
            highs=stacked(self.highs),
            lows=stacked(self.lows),
        )


@dataclass(frozen=True)
class Window:
    """What a strategy sees at one decision date: data ending at that date, inclusive.

    Attributes
    ----------
    returns : ndarray of shape (L, n)
        Simple returns; the last row is the return into the decision date.
    prices : ndarray of shape (L, n)
        Prices on the same dates.
    dates : DatetimeIndex of length L
    assets : tuple of n str
    highs, lows : ndarray of shape (L, n) or None
        The days' highs and lows, when the panel has them.
    """

    returns: np.ndarray
    prices: np.ndarray
    dates: pd.DatetimeIndex
    assets: tuple[str, ...]
    highs: np.ndarray | None = None
    lows: np.ndarray | None = None

    @property
    def date(self) -> pd.Timestamp:
        """The decision date (the window's last date)."""
        return self.dates[-1]

    @property
    def n_assets(self) -> int:
        return self.returns.shape[1]

    def price_features(self, high_low: bool = True) -> np.ndarray:
        """Closes, then highs and lows when the window has them and `high_low` is set.

        Shape: output (F, L, n) with F = 3 (close, high, low) or 1 (close).
        """
        return _price_features(self.prices, self.highs, self.lows, high_low)


@dataclass(frozen=True, eq=False)
class WindowBatch:
    """Windows for D decision dates with the same assets, for strategies that decide in batch.

    ``returns[d]`` ends at ``dates[d]``: batch element d holds nothing later than its own date,
    and nothing after the last decision date is reachable from the batch at all.
    Estimates are cached on the batch, so strategies run together share them.

    Attributes
    ----------
    returns, prices : ndarray of shape (D, L, n)
    dates : DatetimeIndex of length D
        Decision dates.
    assets : tuple of n str
    indices : ndarray of shape (D,)
        Positions of the decision dates in the panel.
    known_dates : DatetimeIndex
        Panel dates up to the batch's last decision date.
    highs, lows : ndarray of shape (D, L, n) or None
        When the panel has them.
    """

    returns: np.ndarray
    prices: np.ndarray
    dates: pd.DatetimeIndex
    assets: tuple[str, ...]
    indices: np.ndarray
    known_dates: pd.DatetimeIndex
    highs: np.ndarray | None = None
    lows: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.returns.shape[0]

    @property
    def n_assets(self) -> int:
        return self.returns.shape[2]

    @property
    def lookback(self) -> int:
        return self.returns.shape[1]

    def window(self, d: int) -> Window:
        """Batch element d as a `Window` (copies: nothing of the later elements is reachable)."""
        t = int(self.indices[d])
        dates = self.known_dates[t - self.lookback + 1 : t + 1].copy(deep=True)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else _readonly(a[d].copy())

        return Window(
            returns=take(self.returns),
            prices=take(self.prices),
            dates=dates,
            assets=self.assets,
            highs=take(self.highs),
            lows=take(self.lows),
        )

    def cached(self, key: object, compute) -> np.ndarray:
        """Memoise an estimate on this batch (shared by every strategy in the run)."""
        if key not in self._cache:
            self._cache[key] = _readonly(np.asarray(compute()))
        return self._cache[key]

    @cached_property
    def demeaned(self) -> np.ndarray:
        """Returns minus their window mean, shape (D, L, n)."""
        return self.returns - self.returns.mean(axis=1, keepdims=True)


def _checked_dates(index: pd.Index, source: str) -> pd.DatetimeIndex:
    """The prices' index, required to be unique increasing dates already (O(T) checks).

    Converting anything else would be a guess: a RangeIndex would become dates in 1970, and
    unsorted dates would make returns between dates that are not neighbours.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"{source}: the prices' index holds {index.dtype} values ({type(index).__name__}), "
            f"not dates (a DatetimeIndex); {FROM_FRAME_HINT}"
        )
    if index.hasnans:
        row = int(np.flatnonzero(index.isna())[0]) + 1
        raise DataError(f"{source}: the date in row {row} is missing (NaT); {FROM_FRAME_HINT}")
    back = np.flatnonzero(np.diff(index.asi8) <= 0)
    if len(back):
        i = int(back[0])
        raise DataError(
            f"{source}: dates must be unique and increasing, but {index[i + 1].date()} (row "
            f"{i + 2}) follows {index[i].date()} (row {i + 1}); {FROM_FRAME_HINT}"
        )
    return index


def _checked_values(
    prices: pd.DataFrame, dates: pd.DatetimeIndex, assets: tuple[str, ...], source: str
) -> np.ndarray:
    """The prices as a float64 (T, N) array: unique asset names, numbers (NaN where missing).

    Columns that are not plain numbers go through the cell-by-cell conversion of
    `Panel.from_frame`, which names the first cell that is not a price.
    """
    from kabuto.data.validation import _check_unique_assets, _is_plain_number, to_prices

    _check_unique_assets(list(assets), source)
    if all(_is_plain_number(t) for t in prices.dtypes):
        values = prices.to_numpy(dtype=np.float64, na_value=np.nan)
    else:

        def where(i: int, j: int) -> str:
            return f"asset {assets[j]!r} on {dates[i].date()}"

        values = np.column_stack(
            [
                to_prices(prices.iloc[:, j], source=source, where=lambda i, j=j: where(i, j))
                for j in range(len(assets))
            ]
        )
    return np.ascontiguousarray(values)


def _checked_benchmark(panel: Panel, benchmark: object) -> pd.Series:
    """The benchmark's prices reindexed to the panel's dates, each finite and positive."""
    from kabuto.data.validation import shown

    source = panel.source
    fix = "pass the index's prices as a pandas Series of numbers indexed by date"
    if not isinstance(benchmark, pd.Series):
        raise DataError(
            f"{source}: benchmark must be a pandas Series of prices, got "
            f"{type(benchmark).__name__}; {fix}"
        )
    label = "benchmark" if benchmark.name is None else f"benchmark {str(benchmark.name)!r}"
    index = benchmark.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"{source}: the {label}'s index holds {index.dtype} values "
            f"({type(index).__name__}), not dates; {fix} (a DatetimeIndex)"
        )
    if index.tz is not None and panel.dates.tz is None:  # as `Panel.from_frame` does
        benchmark = benchmark.set_axis(index.tz_localize(None))
    # one row a day, as `Panel.from_frame` keeps (times of day dropped)
    benchmark = benchmark.set_axis(benchmark.index.normalize())
    if benchmark.index.has_duplicates:
        day = benchmark.index[benchmark.index.duplicated()][0]
        raise DataError(
            f"{source}: the {label} has date {day.date()} more than once; keep one price per date"
        )
    aligned = benchmark.reindex(panel.dates)
    if pd.api.types.is_bool_dtype(aligned.dtype):
        raise DataError(f"{source}: the {label} holds true/false values, not prices; {fix}")
    numeric = pd.to_numeric(aligned, errors="coerce")
    values = np.asarray(numeric.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    given = ~np.asarray(pd.isna(aligned))
    not_number = np.isnan(values) & given
    if not_number.any():
        t = int(np.argmax(not_number))
        raise DataError(
            f"{source}: the {label} on {panel.dates[t].date()} holds {shown(aligned.iloc[t])!r}, "
            f"which is not a number; {fix}"
        )
    if not given.all():
        t = int(np.argmax(~given))
        raise DataError(
            f"{source}: the {label} has no price on {panel.dates[t].date()}, a date of the "
            f"panel ({int((~given).sum())} of its {panel.n_dates} dates have none: the "
            f"benchmark is reindexed to the panel's dates, {panel.dates[0].date()}.."
            f"{panel.dates[-1].date()}); give it a price on every date of the panel, or trim "
            "the prices to the benchmark's dates"
        )
    bad = ~(values > 0) | np.isinf(values)
    if bad.any():
        t = int(np.argmax(bad))
        raise DataError(
            f"{source}: the {label} on {panel.dates[t].date()} is {float(values[t])!r}; "
            "benchmark prices must be finite and positive (pass the index's level, not its "
            "returns)"
        )
    return pd.Series(values, index=panel.dates, name=benchmark.name)


def _check_returns(panel: Panel, prices: np.ndarray, returns: np.ndarray) -> None:
    """Require the returns to be finite and small enough for fourth moments to be finite.

    Positive finite prices can still make a return overflow (1e-300 then 100) or one whose
    square does (100 then 1e308). Estimates made from returns go up to fourth moments: kurtosis
    in the statistics, and Ledoit-Wolf shrinkage sums squared cross-products of all assets,
    which the sum over dates of (the date's sum of squared returns) squared bounds. Moves that
    pass (up to about 1e75 in a day) are the data's business, not errors.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        squares = np.where(np.isnan(returns), 0.0, returns) ** 2
        per_date = squares.sum(axis=1) ** 2
        if np.isfinite(per_date.sum()):
            return
        t = int(np.argmax(~np.isfinite(np.cumsum(per_date))))
    col = int(np.argmax(squares[t]))  # the largest move on the date the sum overflows
    r = float(returns[t, col])
    what = "not a finite number" if np.isinf(r) else "too large for variance estimates"
    raise DataError(
        f"{panel.source}: asset {panel.assets[col]!r} on {panel.dates[t].date()}: the return "
        f"from {float(prices[t - 1, col])!r} on {panel.dates[t - 1].date()} to "
        f"{float(prices[t, col])!r} is {r:.6g}, {what}; check the prices around that date"
    )


def _price_features(
    closes: np.ndarray, highs: np.ndarray | None, lows: np.ndarray | None, high_low: bool
) -> np.ndarray:
    if high_low and highs is not None:
        return np.stack([closes, highs, lows])
    return closes[None]


def _check_range(
    panel: Panel, closes: np.ndarray, highs: pd.DataFrame | None, lows: pd.DataFrame | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Highs and lows as read-only arrays, checked against the closes (or both None)."""
    source = panel.source
    if highs is None and lows is None:
        return None, None
    if highs is None or lows is None:
        given, missing = ("highs", "lows") if lows is None else ("lows", "highs")
        raise DataError(f"{source}: {given} given without {missing}; pass both or neither")
    arrays = []
    for name, frame in (("highs", highs), ("lows", lows)):
        if (
            frame.shape != closes.shape
            or not pd.DatetimeIndex(frame.index).equals(panel.dates)
            or tuple(str(c) for c in frame.columns) != panel.assets
        ):
            raise DataError(
                f"{source}: {name} must have the closes' dates and assets, got shape "
                f"{frame.shape} for {closes.shape}; build the panel with Panel.from_frame to "
                "align them"
            )
        arrays.append(np.ascontiguousarray(frame.to_numpy(dtype=np.float64)))
    high, low = arrays
    closed = np.isfinite(closes)

    def fail(mask: np.ndarray, problem: str) -> None:
        if mask.any():
            t, col = (int(i) for i in np.argwhere(mask)[0])
            raise DataError(
                f"{source}: asset {panel.assets[col]!r} on {panel.dates[t].date()}: {problem} "
                f"(close {float(closes[t, col])!r}, high {float(high[t, col])!r}, "
                f"low {float(low[t, col])!r})"
            )

    for name, a in (("high", high), ("low", low)):
        fail(closed & ~np.isfinite(a), f"a close but no {name}; give every date with a close both")
        fail(~closed & ~np.isnan(a), f"a {name} but no close; leave it empty there too")
    with np.errstate(invalid="ignore"):
        fail(
            closed & ~((low <= closes) & (closes <= high) & (low > 0)),
            "high >= close >= low > 0 does not hold; use highs and lows adjusted like the closes",
        )
    return _readonly(high), _readonly(low)
