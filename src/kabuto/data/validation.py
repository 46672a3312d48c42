"""Validation and repair of raw price tables.

`clean_prices` turns a wide table (index: dates, columns: assets) as a user supplied it into the
form `Panel` requires, or raises a `DataError` that says which file, asset, row and value is at
fault and what to do about it.

What is checked, in this order:

1. Dates parse (the format of the first date is used for every row, so a file that mixes formats
   is reported rather than half-guessed), and no date appears twice.
2. Asset names are unique.
3. Every price is a finite number greater than zero (blank cells are missing, not errors).
4. Dates are sorted increasingly; unsorted input is sorted with a `KabutoWarning`.
5. No asset column is entirely empty.
6. Interior gaps (missing prices between an asset's first and last price) are at most
   ``max_ffill`` dates long; those are forward-filled, longer ones are rejected.

`align_range` does the same for optional highs and lows, against the cleaned closes.

Leading missing prices (an asset that lists after the first date) are kept as NaN: the `Panel`
treats them as "not tradable yet". Trailing ones (an asset that delists) are filled with the
last price for ``max_ffill`` dates, as a gap that long would be (a decision at a date inside the
gap cannot know whether prices come back), and NaN after that: "not tradable any more".

Rows in messages are counted from 1 in the order the table was given (for a file read with a
header line, data row 1 is the line after the header).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from kabuto.errors import ConfigError, DataError, KabutoWarning

__all__ = ["align_range", "clean_prices", "parse_dates", "to_prices"]


def clean_prices(prices: pd.DataFrame, *, source: str, max_ffill: int) -> pd.DataFrame:
    """Validate a wide price table and repair what may safely be repaired.

    Parameters
    ----------
    prices : DataFrame
        Index: dates (datetimes, or strings / ``YYYYMMDD`` whole numbers to be parsed). Columns:
        one per asset. Values: prices (numbers, or strings holding numbers).
    source : str
        Where the table came from (usually a file path); every error message starts with it.
    max_ffill : int
        Longest run of consecutive missing dates inside an asset's history that is filled
        with the last known price. Longer gaps raise `DataError`. 0 forbids interior gaps.

    Returns
    -------
    DataFrame
        float64 prices with a sorted, unique `DatetimeIndex` named ``"date"`` and string asset
        columns. NaN remains only before an asset's first price and more than `max_ffill`
        dates after its last one.
        ``result.attrs["ffilled"]`` maps each asset to the number of prices forward-filled.

    Raises
    ------
    DataError
        For unparseable or duplicate dates, duplicate asset names, non-numeric, non-finite,
        zero or negative prices, an all-empty asset column, or an interior gap longer than
        ``max_ffill``.
    ConfigError
        If ``max_ffill`` is not a non-negative integer.

    Warns
    -----
    KabutoWarning
        If the dates were not in increasing order (they are sorted).
    """
    if isinstance(max_ffill, bool) or not isinstance(max_ffill, int | np.integer) or max_ffill < 0:
        raise ConfigError(
            f"{source}: max_ffill must be a non-negative integer number of dates, got {max_ffill!r}"
        )
    if not isinstance(prices, pd.DataFrame):
        raise DataError(
            f"{source}: expected a table of prices (DataFrame), got {type(prices).__name__}"
        )
    if prices.shape[0] == 0:
        raise DataError(f"{source}: the price table has no rows (dates); it needs at least 2")
    if prices.shape[1] == 0:
        raise DataError(f"{source}: the price table has no asset columns besides the dates")

    dates = parse_dates(prices.index, source=source)
    assets = [str(c) for c in prices.columns]
    _check_unique_assets(assets, source)

    def where(i: int, j: int) -> str:
        return f"asset {assets[j]!r} on {dates[i].date()} (data row {i + 1})"

    dtypes = prices.dtypes
    if all(_is_plain_number(t) for t in dtypes):
        # Fast path (all numeric, the usual case): one conversion and 2-D checks.
        values = prices.to_numpy(dtype=np.float64, na_value=np.nan)
        _reject_bad_values(values, source, where)
    else:
        values = np.column_stack(
            [
                to_prices(prices.iloc[:, j], source=source, where=lambda i, j=j: where(i, j))
                for j in range(len(assets))
            ]
        )

    if not dates.is_monotonic_increasing:
        first_bad = int(np.flatnonzero(np.diff(dates.asi8) < 0)[0]) + 1
        warnings.warn(
            f"{source}: dates were not in increasing order (date {dates[first_bad].date()} at "
            f"data row {first_bad + 1} comes after {dates[first_bad - 1].date()}); sorted them",
            KabutoWarning,
            stacklevel=2,
        )
        order = np.argsort(dates.asi8, kind="stable")
        dates = dates[order]
        values = values[order]

    finite = np.isfinite(values)
    has_any = finite.any(axis=0)
    if not has_any.all():
        empty = [a for a, ok in zip(assets, has_any, strict=True) if not ok]
        raise DataError(
            f"{source}: asset column(s) {', '.join(map(repr, empty))} have no prices at all; "
            "drop them from the file"
        )

    n_dates = len(dates)
    first = finite.argmax(axis=0)
    last = n_dates - 1 - finite[::-1].argmax(axis=0)
    rows = np.arange(n_dates)[:, None]
    inside = (rows >= first) & (rows <= last)
    hole = inside & ~finite
    gappy = np.flatnonzero(hole.any(axis=0))  # usually few columns: work on those only
    if len(gappy):
        sub_hole = hole[:, gappy]
        too_long = _run_lengths(sub_hole) > max_ffill
        if too_long.any():
            k = int(np.flatnonzero(too_long.any(axis=0))[0])
            _raise_gap(
                sub_hole[:, k],
                int(np.flatnonzero(too_long[:, k])[0]),
                dates,
                assets[gappy[k]],
                source,
                max_ffill,
            )
        # Index of the last finite row at or before each row; holes are interior, so one exists.
        sub = values[:, gappy]
        values = values.copy()  # may be a (read-only) view of the caller's frame
        src = np.maximum.accumulate(np.where(finite[:, gappy], rows, 0), axis=0)
        values[:, gappy] = np.where(sub_hole, np.take_along_axis(sub, src, axis=0), sub)
    # Prices that stop are held at the last one for up to max_ffill dates, as an interior gap
    # would be: at a date inside the gap nobody can tell a halt from a delisting, so the two
    # are alike until the gap outlasts any halt the panel allows (else the universe at t would
    # depend on whether prices come back after t).
    tail = (rows > last) & (rows <= last + max_ffill)
    if tail.any():
        values = values.copy()
        values[tail] = np.broadcast_to(values[last, np.arange(len(assets))], values.shape)[tail]
        hole |= tail

    out = pd.DataFrame(
        values,
        index=pd.DatetimeIndex(dates, name="date"),
        columns=pd.Index(assets),
    )
    out.attrs["ffilled"] = dict(zip(assets, hole.sum(axis=0).tolist(), strict=True))
    out.attrs["filled"] = hole  # which cells: `Panel.filled`
    return out


def align_range(
    raw_closes: pd.DataFrame,
    closes: pd.DataFrame,
    highs: pd.DataFrame,
    lows: pd.DataFrame,
    *,
    source: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw highs and lows on the dates and assets of the cleaned closes.

    Parameters
    ----------
    raw_closes : DataFrame
        The closes as given to `clean_prices`.
    closes : DataFrame
        What `clean_prices` returned for them.
    highs, lows : DataFrame
        Raw highs and lows laid out like `raw_closes` (index dates, one column per asset).

    Returns
    -------
    highs, lows : DataFrame
        float64, indexed like `closes`. Where a missing close was forward-filled (no trading
        that day) high and low are the close. `Panel` checks the rest (a high and low on every
        date with a close, ``high >= close >= low``).

    Raises
    ------
    DataError
        For unparseable dates, unknown assets or values that are not prices.
    """

    def aligned(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        dates = parse_dates(frame.index, source=f"{source} ({name})")
        assets = [str(c) for c in frame.columns]
        unknown = sorted(set(assets) - set(closes.columns))
        if unknown:
            raise DataError(
                f"{source}: {name} has asset(s) {', '.join(map(repr, unknown))} without closes"
            )
        try:
            values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise DataError(
                f"{source}: {name} holds a value that is not a number ({err})"
            ) from None
        _reject_bad_values(
            values, source, lambda i, j: f"{name} of {assets[j]!r} on {dates[i].date()}"
        )
        table = pd.DataFrame(values, index=dates, columns=assets)
        return table.reindex(index=closes.index, columns=closes.columns)

    # Cells clean_prices filled: missing in the raw closes and within an asset's life.
    listed = closes.notna().to_numpy()
    raw = aligned_missing(raw_closes, closes)
    repaired = raw & listed
    out = []
    for name, frame in (("highs", highs), ("lows", lows)):
        table = aligned(frame, name)
        table = table.mask(repaired, closes)
        out.append(table)
    return out[0], out[1]


def aligned_missing(raw: pd.DataFrame, cleaned: pd.DataFrame) -> np.ndarray:
    """Where a raw table (as given to `clean_prices`) has no value, on the cleaned layout.

    Shape: output (dates, assets) of `cleaned`. Blank text counts as missing, as in `to_prices`.
    """
    dates = parse_dates(raw.index, source="raw closes")
    blank = (
        raw.isna().to_numpy()
        | raw.apply(
            lambda c: c.astype(str).str.strip().eq("") if c.dtype == object else c.isna()
        ).to_numpy()
    )
    frame = pd.DataFrame(blank, index=dates, columns=[str(c) for c in raw.columns])
    return frame.reindex(index=cleaned.index, columns=cleaned.columns, fill_value=True).to_numpy()


def parse_dates(
    values: pd.Index | pd.Series | np.ndarray, *, source: str, unique: bool = True
) -> pd.DatetimeIndex:
    """Parse a column of dates, raising a `DataError` that names the first unparseable one.

    Strings are parsed with the format inferred from the first date and applied to every row
    (so ``01/02/2020`` cannot silently mean two things in one file); integers, and floats that
    are all whole numbers, are read as ``YYYYMMDD``; other numbers are rejected. Time zones are
    dropped, keeping local wall-clock dates (also where the UTC offset changes, e.g. across a
    daylight-saving change), and so are times of day: a panel holds one row a day, so two stamps
    on one day are a repeated date.

    Parameters
    ----------
    values : Index, Series or ndarray
        The raw dates, in file order.
    source : str
        Prefix of error messages (usually the file path).
    unique : bool, default True
        Reject a date that appears twice (a wide table); long-form tables repeat dates.

    Returns
    -------
    DatetimeIndex
        Same length and order as `values`.
    """
    raw = pd.Index(values)
    missing = np.asarray(pd.isna(raw))
    try:
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            dates = pd.DatetimeIndex(raw)
        else:
            raw_for_parse, fmt = _numbers_as_yyyymmdd(raw, source)
            with warnings.catch_warnings():
                # pandas warns when it cannot infer one format (unparsed rows are reported
                # below), and pandas 2 when offsets differ (handled below)
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", FutureWarning)
                try:
                    parsed = pd.to_datetime(raw_for_parse, errors="coerce", format=fmt)
                except ValueError as exc:  # pandas 3: offsets that differ (a DST change)
                    if "Mixed timezones" not in str(exc):
                        raise
                    parsed = None
                if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed.dtype):
                    parsed = _wall_clock(raw_for_parse)  # pandas 2 returns them as objects
                dates = pd.DatetimeIndex(parsed)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(
            f"{source}: the dates cannot be parsed ({exc}); write them as YYYY-MM-DD"
        ) from exc
    bad = np.asarray(dates.isna())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        if missing[i]:
            what = f"the date at data row {i + 1} is empty"
        else:
            what = (
                f"the date {shown(raw[i])!r} at data row {i + 1} cannot be parsed (the format of "
                "the first date is applied to every row)"
            )
        raise DataError(
            f"{source}: {what}; write every date in one format, preferably YYYY-MM-DD, and "
            "remove rows without a date"
        )
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    timed = bool((dates != dates.normalize()).any())
    dates = dates.normalize()
    dup = dates.duplicated(keep=False) if unique else None
    if dup is not None and dup.any():
        i = int(np.flatnonzero(dup)[0])
        j = int(np.flatnonzero(np.asarray(dates == dates[i]))[1])
        times = " (times of day are dropped: a panel holds one row a day)" if timed else ""
        raise DataError(
            f"{source}: date {dates[i].date()} appears more than once (data rows {i + 1} and "
            f"{j + 1}){times}; keep one row per date"
        )
    return pd.DatetimeIndex(dates, name="date")


def _wall_clock(values: pd.Index) -> pd.DatetimeIndex:
    """Each stamp's own wall-clock time, for text whose UTC offsets differ (across a DST change),
    which pandas parses only as UTC (moving late stamps to the next day).

    Every stamp is read in the first one's format where pandas can name it, as pandas reads
    one offset (so 06/03 cannot be June in one row and March in another); one that does not
    fit it is NaT. Where it cannot, each stamp is read on its own, as pandas then does. Each
    distinct text is parsed once (a long file repeats every date once per asset).
    """
    codes, texts = pd.factorize(pd.Index(values))
    first = next((v for v in texts if isinstance(v, str) and v.strip()), None)
    fmt = None if first is None else guess_datetime_format(first)
    stamps = []
    for value in texts:
        try:
            stamp = pd.to_datetime(value, format=fmt) if fmt else pd.Timestamp(value)
        except (ValueError, TypeError):
            stamp = pd.NaT
        stamps.append(stamp.tz_localize(None) if stamp is not pd.NaT and stamp.tz else stamp)
    # code -1: a missing value, NaT
    parsed = pd.DatetimeIndex(stamps).take(codes, allow_fill=True, fill_value=pd.NaT)
    return pd.DatetimeIndex(parsed)


def _numbers_as_yyyymmdd(raw: pd.Index, source: str) -> tuple[pd.Index, str | None]:
    """Numeric dates as ``YYYYMMDD`` text with that format; other dates as they are (no format).

    Numbers are nearly always YYYYMMDD; as epoch nanoseconds they would all silently land on
    1970-01-01. A date column of integers with a blank cell reads as floats, so floats count
    when every one present is whole; missing ones become text that is reported as empty.
    """
    if not _is_plain_number(raw.dtype):
        return raw, None
    if not pd.api.types.is_integer_dtype(raw.dtype):
        fractional = np.ones(len(raw), dtype=bool)  # complex numbers are no dates
        if pd.api.types.is_float_dtype(raw.dtype):
            values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):  # inf % 1 is NaN: not whole either
                fractional = ~np.isnan(values) & (np.mod(values, 1.0) != 0.0)
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise DataError(
                f"{source}: the date {raw[i]} at data row {i + 1} is a number but not a whole "
                "YYYYMMDD date; write dates as YYYY-MM-DD (or as whole YYYYMMDD numbers)"
            )
        raw = raw.astype("Int64")
    return raw.astype(str), "%Y%m%d"


def to_prices(column: pd.Series, *, source: str, where: Callable[[int], str]) -> np.ndarray:
    """Convert one column of raw prices to float64, rejecting anything that is not a price.

    Blank cells become NaN (missing). Non-numeric text, infinities, zero and negative values raise
    a `DataError` that names the value and ``where(i)`` (the asset, date and row of position i).

    Parameters
    ----------
    column : Series
        Raw values in table order.
    source : str
        Prefix of error messages (usually the file path).
    where : callable
        Describes position ``i`` for a message, e.g. ``"asset 'AAPL' on 2020-01-03 (data row 2)"``.

    Returns
    -------
    ndarray of float64
    """
    if pd.api.types.is_bool_dtype(column.dtype):
        raise DataError(
            f"{source}: {where(0)} holds {shown(column.iloc[0])!r}, a true/false value, not a "
            "price; the column must hold numbers"
        )
    if _is_time(column.dtype):  # to_numeric would read them as nanoseconds since 1970
        raise DataError(
            f"{source}: {where(0)} holds {shown(column.iloc[0])!r}: the column holds dates or "
            f"times ({column.dtype}), not prices; keep one date column and drop or rename the "
            "others"
        )
    if _is_plain_number(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numeric = pd.to_numeric(column, errors="coerce")
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(values) & ~np.asarray(pd.isna(column))
        if bad.any():
            # Only on the error path: blank strings are missing values, not bad ones.
            idx = np.flatnonzero(bad)
            raw = column.iloc[idx]
            blank = np.array([isinstance(v, str) and not v.strip() for v in raw], dtype=bool)
            idx = idx[~blank]
            if len(idx):
                i = int(idx[0])
                raise DataError(
                    f"{source}: {where(i)} holds {shown(column.iloc[i])!r}, which is not a number; "
                    "prices must be plain numbers with a '.' decimal point and no thousands "
                    "separators or currency signs (leave the cell empty if the price is missing)"
                )
    _reject_bad_values(values[:, None], source, lambda i, _j: where(i))
    return values


def _reject_bad_values(values: np.ndarray, source: str, where: Callable[[int, int], str]) -> None:
    """Raise for the first infinite, zero or negative entry of a 2-D array (NaN is missing)."""
    for mask, problem in (
        (np.isinf(values), "which is not a finite price; fix the value or leave the cell empty"),
        (
            values <= 0,  # NaN compares False
            "but prices must be greater than zero (use adjusted prices, and leave the cell "
            "empty if there was no price)",
        ),
    ):
        if mask.any():
            i, j = (int(k) for k in np.argwhere(mask)[0])
            raise DataError(f"{source}: {where(i, j)} holds {float(values[i, j])!r}, {problem}")


def shown(value: object) -> object:
    """A cell as a message quotes it: numpy scalars as Python's (1, not np.int64(1)), and
    timestamps as their text."""
    if isinstance(value, pd.Timestamp):
        return str(value)
    return value.item() if isinstance(value, np.generic) else value


def _is_plain_number(dtype: object) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _is_time(dtype: object) -> bool:
    return (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    )


def _check_unique_assets(assets: list[str], source: str) -> None:
    seen: set[str] = set()
    for a in assets:
        if a in seen:
            raise DataError(
                f"{source}: asset column {a!r} appears more than once; rename or drop one"
            )
        seen.add(a)


def _run_lengths(hole: np.ndarray) -> np.ndarray:
    """For each True cell, how many consecutive True cells (in its column) end there."""
    count = np.cumsum(hole, axis=0)
    # The running count at the last False cell is subtracted so each run restarts at 1.
    reset = np.maximum.accumulate(np.where(hole, 0, count), axis=0)
    return np.where(hole, count - reset, 0)


def _raise_gap(
    hole: np.ndarray,
    inside_gap: int,
    dates: pd.DatetimeIndex,
    asset: str,
    source: str,
    max_ffill: int,
) -> None:
    start = inside_gap
    while start > 0 and hole[start - 1]:
        start -= 1
    stop = inside_gap
    while stop + 1 < len(hole) and hole[stop + 1]:
        stop += 1
    length = stop - start + 1
    raise DataError(
        f"{source}: asset {asset!r} has no price on {length} consecutive dates from "
        f"{dates[start].date()} to {dates[stop].date()}, between its first and last price; "
        f"gaps of up to max_ffill={max_ffill} dates are forward-filled. Fill in the missing "
        f"prices, or set max_ffill to at least {length} (data.max_ffill in a run config, "
        "--max-ffill of kabuto data info) if carrying the last price over the gap is acceptable"
    )
