"""Loaders: the bundled S&P 500 sample and user price files (CSV or Parquet, wide or long).

A *wide* file has a date column and one column of prices per asset. A *long* file has one row per
(date, asset) with columns ``date, asset, close`` and optionally ``open, high, low, volume``;
kabuto uses ``close``. Every problem is reported as a `DataError` whose message starts with the
file path (see `kabuto.data.validation` for the checks on dates and prices).
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kabuto.data.panel import Panel
from kabuto.data.validation import parse_dates, to_prices
from kabuto.errors import DataError

__all__ = ["load_prices", "load_sp500", "summarize"]

#: Column names (compared case-insensitively) recognised as the date column, in priority order.
DATE_COLUMNS = ("date", "datetime", "timestamp", "time")
#: Columns a long-form file may have besides the date column.
LONG_COLUMNS = ("asset", "close", "open", "high", "low", "volume")
#: Recognised file name endings and the format each implies.
EXTENSIONS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: How to name a file's format where its name does not: `kabuto data info` has no such option,
#: so messages say where one exists.
NAME_FORMAT = "name its format (data.format in a run config, format= of load_prices)"

SP500_CAVEAT = (
    "Survivorship bias: these 20 stocks were picked in hindsight from today's S&P 500, i.e. "
    "companies known to have survived and grown since 1990; backtest returns on them are biased "
    "upward and must not be read as achievable."
)
# The stocks' closes are dividend-adjusted, the bundled index is not: said wherever the index is.
PRICE_INDEX_CAVEAT = (
    " The benchmark index is the S&P 500 price index, without dividends, while the stocks' "
    "prices are dividend-adjusted: beta and the information ratio against it count the index's "
    "dividends (about 2% a year) as active return."
)


def load_sp500(*, with_benchmark: bool = True) -> Panel:
    """The bundled sample: daily adjusted closes of 20 S&P 500 stocks, 1990-01-02 to 2022-12-28.

    The data ships inside the skfolio wheel (BSD-3 licence) and loads offline.

    Parameters
    ----------
    with_benchmark : bool, default True
        Attach the S&P 500 price index (without dividends; the caveat says so) as the panel's
        benchmark.

    Returns
    -------
    Panel
        8,313 dates x 20 assets, with `survivorship_caveat` set: the names were chosen with
        hindsight, so results on them overstate what was achievable.
    """
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    prices = load_sp500_dataset()
    first, last = prices.index[0].date(), prices.index[-1].date()
    source = (
        f"bundled S&P 500 sample: {prices.shape[1]} stocks, {first}..{last} "
        "(skfolio datasets, BSD-3)"
    )
    benchmark = None
    if with_benchmark:
        index = load_sp500_index()
        benchmark = index.iloc[:, 0].astype(np.float64)
        benchmark.index = pd.DatetimeIndex(benchmark.index, name="date")
    return Panel.from_frame(
        prices,
        source=source,
        max_ffill=0,  # the sample has no gaps; any would be a packaging error worth seeing
        benchmark=benchmark,
        survivorship_caveat=SP500_CAVEAT + (PRICE_INDEX_CAVEAT if with_benchmark else ""),
    )


def load_prices(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    max_ffill: int = 5,
    date_column: str | None = None,
) -> Panel:
    """Load daily prices from a CSV or Parquet file, in wide or long form.

    Parameters
    ----------
    path : str or PathLike
        The file. ``.csv``, ``.csv.gz``, ``.parquet`` and ``.pq`` are recognised by name.
    format : {"csv", "parquet"}, optional
        Overrides the format implied by the file name.
    max_ffill : int, default 5
        Longest interior gap (consecutive missing dates of one asset) to forward-fill; longer
        gaps are errors. An asset's last price is held as long before it counts as delisted.
        See `kabuto.data.validation.clean_prices`.
    date_column : str, optional
        Name of the date column. By default the first column named (in any letter case)
        ``date``, ``datetime``, ``timestamp`` or ``time``; a Parquet file's date index also works.

    Returns
    -------
    Panel
        ``source`` is the path as given.

    Raises
    ------
    DataError
        If the file is missing, empty, unreadable or in an unknown format; if it has no date
        column; for long form, if it has unknown columns, rows without an asset or duplicate
        (date, asset) rows; and for every check of `clean_prices`. The message names the path.

    Notes
    -----
    A file is long form when it has an ``asset`` column (any letter case); it must then also have
    a ``close`` column (a clear error says so, rather than reading the asset names as prices).
    Long form is pivoted to dates x assets on ``close``. With ``high`` and ``low`` columns (both)
    the panel also carries each day's range (`Panel.highs`, `Panel.lows`): every row needs both,
    with ``high >= close >= low``, and a forward-filled missing date gets the close as its high
    and low. ``open`` and ``volume`` are accepted and ignored. Missing (date, asset) pairs become
    missing prices, handled as in wide form. A wide file holds closes only.
    """
    path = Path(path)
    source = str(path)
    frame = _read(path, format)
    frame = frame.rename(columns=lambda c: str(c).strip())
    if frame.empty:
        if frame.shape[1]:
            raise DataError(f"{source}: the file has a header but no data rows")
        raise DataError(f"{source}: the file is empty")
    date_col = _find_date_column(frame, date_column, source)
    lower: dict[str, str] = {}
    for c in frame.columns:
        if c != date_col and lower.setdefault(c.lower(), c) != c and c.lower() in LONG_COLUMNS:
            raise DataError(
                f"{source}: columns {lower[c.lower()]!r} and {c!r} differ only in letter case; "
                "keep one of them"
            )
    highs = lows = None
    if "asset" in lower:
        frame, highs, lows = _long_to_wide(frame, date_col, lower, source)
    else:
        frame = frame.set_index(date_col)
    return Panel.from_frame(frame, source=source, max_ffill=max_ffill, highs=highs, lows=lows)


def summarize(panel: Panel) -> dict[str, Any]:
    """Facts about a panel for ``kabuto data info`` (JSON-serialisable).

    Parameters
    ----------
    panel : Panel

    Returns
    -------
    dict
        ``source``, ``n_dates``, ``n_assets``, ``first_date``, ``last_date`` (ISO strings),
        ``n_missing`` (prices missing before listing / after delisting), ``has_benchmark``,
        ``survivorship_caveat`` (or None), and ``assets``: one record per asset with ``asset``,
        ``first_date``, ``last_date`` (its first and last price in the data), ``n_prices``
        (prices in the data) and ``n_forward_filled`` (prices filled by validation: interior
        gaps, and the last price held up to ``max_ffill`` dates after ``last_date``).
    """
    dates = panel.dates.strftime("%Y-%m-%d")
    given = np.isfinite(panel.prices) & ~panel.filled
    first = given.argmax(axis=0)
    last = len(given) - 1 - given[::-1].argmax(axis=0)
    return {
        "source": panel.source,
        "n_dates": panel.n_dates,
        "n_assets": panel.n_assets,
        "first_date": dates[0],
        "last_date": dates[-1],
        "n_missing": int(np.isnan(panel.prices).sum()),
        "has_benchmark": panel.benchmark is not None,
        "survivorship_caveat": panel.survivorship_caveat,
        "assets": [
            {
                "asset": asset,
                "first_date": dates[f],
                "last_date": dates[la],
                "n_prices": int(n),
                "n_forward_filled": panel.ffilled.get(asset, 0),
            }
            for asset, f, la, n in zip(
                panel.assets, first.tolist(), last.tolist(), given.sum(axis=0), strict=True
            )
        ],
    }


def _read(path: Path, format: str | None) -> pd.DataFrame:
    source = str(path)
    allowed = ", ".join(EXTENSIONS)
    # Before the name's format: a directory or a typo in the path is the thing to fix then.
    if not path.exists():
        raise DataError(f"{source}: file not found; check the path and the working directory")
    if path.is_dir():
        raise DataError(
            f"{source}: is a directory, not a price file; give the path of a CSV or Parquet file"
        )
    if format is None:
        name = path.name.lower()
        matches = [fmt for ext, fmt in EXTENSIONS.items() if name.endswith(ext)]
        if not matches:
            raise DataError(
                f"{source}: unknown file type; kabuto reads {allowed} files: rename the file, "
                f"or {NAME_FORMAT}"
            )
        format = matches[0]
    if not isinstance(format, str) or format.lower() not in ("csv", "parquet"):
        raise DataError(
            f"{source}: unknown format {format!r}; use format='csv' or format='parquet' "
            f"(recognised file endings: {allowed})"
        )
    format = format.lower()
    if not path.is_file():
        raise DataError(f"{source}: not a regular file; give the path of a price file")
    if path.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    try:
        if format == "csv":
            header = _check_header(path)
            _check_separator(path, header)
            # asset codes are text: 0700 (a Hong Kong code) is not the number 700
            codes = {name: str for name in header if name.strip().lower() == "asset"}
            try:
                frame = pd.read_csv(path, skipinitialspace=True, dtype=codes)
            except pd.errors.ParserError as exc:
                if "fields" in str(exc):  # "Expected 3 fields in line 3, saw 4"
                    _raise_long_row(path, len(header))
                raise
            if not isinstance(frame.index, pd.RangeIndex):
                # pandas makes the first columns the index when rows have more fields than
                # the header: the dates would then be read from the wrong column
                _raise_long_row(path, len(header))
            return frame
        frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{source}: the file is empty") from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source}: is not UTF-8 text ({_first_undecodable(path)}); save it as UTF-8 (in "
            f"Excel: CSV UTF-8), or if it is not a CSV file, rename it or {NAME_FORMAT}"
        ) from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{source}: cannot be read as {format.upper()} ({detail}); check that the file is "
            f"a valid {format.upper()} file, or if its name misleads, rename it or {NAME_FORMAT}"
        ) from exc
    return _index_to_column(frame, source)


def _first_undecodable(path: Path) -> str:
    """Where the file stops being UTF-8 (pandas' own error counts within its read buffer)."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{exc.reason} at byte {exc.start}"
    return "a byte pandas could not decode"


def _check_separator(path: Path, header: list[str]) -> None:
    """Refuse a file whose header is one column holding another separator (a European export:
    ';' between fields, ',' as the decimal point), which would otherwise fail on its rows."""
    separator = next((sep for sep in (";", "\t", "|") if sep in header[0]), None)
    if len(header) == 1 and separator is not None:
        raise DataError(
            f"{path}: the header {header[0]!r} is one column: the file seems to separate its "
            f"fields with {separator!r}; kabuto reads comma-separated files, so save it with "
            "commas (and '.' as the decimal point)"
        )


def _raise_long_row(path: Path, width: int) -> None:
    """Raise a `DataError` naming the first data row with more than `width` fields (rows
    counted as pandas counts them: blank lines skipped)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as handle:
        rows = (row for row in csv.reader(handle, skipinitialspace=True) if row)
        for i, row in enumerate(rows):
            if i and len(row) > width:
                raise DataError(
                    f"{path}: data row {i} has {len(row)} fields but the header names {width} "
                    f"column{'s' * (width != 1)}; remove the extra fields (a trailing comma "
                    "counts as one)"
                )
    raise DataError(f"{path}: some rows have more fields than the header names columns")


def _check_header(path: Path) -> list[str]:
    """The column names as pandas reads them; blank or repeated names, which pandas would
    rename (``Unnamed: 2``, ``AAPL.1``) into assets of their own, are refused."""
    raw = pd.read_csv(
        path, header=None, nrows=1, dtype=str, keep_default_na=False, skipinitialspace=True
    )
    header = [str(name) for name in raw.iloc[0]]
    names = [name.strip() for name in header]
    for i, name in enumerate(names):
        if not name:
            raise DataError(
                f"{path}: column {i + 1} of the header has no name; name every column (the "
                "dates 'date', each asset by its ticker)"
            )
        if name in names[:i]:
            raise DataError(
                f"{path}: column name {name!r} appears more than once in the header (columns "
                f"{names.index(name) + 1} and {i + 1}); give each column its own name"
            )
    return header


def _index_to_column(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    # pandas stores a DataFrame's index in Parquet metadata. A date index (or any named one)
    # holds data, so it becomes a column like any other file's; an unnamed non-date index is
    # row numbering (e.g. left over from filtering) and is dropped.
    index = frame.index
    if isinstance(index, pd.RangeIndex):
        return frame
    if isinstance(index, pd.DatetimeIndex) and index.name is None:
        index = index.rename("date")
    elif index.name is None:
        return frame.reset_index(drop=True)
    if index.name in frame.columns:
        raise DataError(
            f"{source}: {index.name!r} is both the table's index and one of its columns; "
            f"keep one (e.g. frame.reset_index(drop=True) before writing the Parquet file)"
        )
    return frame.set_axis(index, axis=0).reset_index()


def _find_date_column(frame: pd.DataFrame, date_column: str | None, source: str) -> str:
    columns = [str(c) for c in frame.columns]
    if date_column is not None:
        if date_column not in columns:
            raise DataError(
                f"{source}: date_column={date_column!r} is not a column; the columns are "
                f"{_list(columns)}"
            )
        return date_column
    lower = {}
    for c in columns:
        lower.setdefault(c.lower(), c)
    for name in DATE_COLUMNS:
        if name in lower:
            return lower[name]
    raise DataError(
        f"{source}: no date column; name the date column one of date, Date, datetime, "
        "timestamp or time (any letter case), or pass date_column= to load_prices (the columns "
        f"are {_list(columns)})"
    )


def _long_to_wide(
    frame: pd.DataFrame, date_col: str, lower: dict[str, str], source: str
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Closes, and highs and lows when the file has both, as dates x assets tables."""
    unknown = [c for c in frame.columns if c != date_col and c.lower() not in LONG_COLUMNS]
    if unknown:
        raise DataError(
            f"{source}: long-form file (it has an asset column) has unknown column(s) "
            f"{_list(unknown)}; allowed are a date column and {', '.join(LONG_COLUMNS)} "
            "(rename or drop the others)"
        )
    if "close" not in lower:
        raise DataError(
            f"{source}: long-form file (it has an asset column) has no close column; add the "
            "closing (adjusted) price as 'close'"
        )
    asset_raw = frame[lower["asset"]]
    no_asset = np.asarray(pd.isna(asset_raw))
    if no_asset.any():
        i = int(np.flatnonzero(no_asset)[0])
        raise DataError(f"{source}: data row {i + 1} has no asset name; fill it in or drop the row")
    asset_codes, asset_names = pd.factorize(asset_raw.astype(str).str.strip(), sort=True)
    dates = parse_dates(frame[date_col], source=source, unique=False)
    date_codes, date_values = pd.factorize(dates, sort=True)
    # One integer key per (date, asset) cell of the wide table: duplicates share a key.
    cell = date_codes.astype(np.int64) * len(asset_names) + asset_codes
    counts = np.bincount(cell, minlength=len(date_values) * len(asset_names))
    if (counts > 1).any():
        repeated = counts[cell] > 1
        first = int(np.flatnonzero(repeated)[0])
        second = int(np.flatnonzero(cell == cell[first])[1])
        times = (
            " (times of day are dropped: a panel holds one row a day)"
            if _distinct_times(frame[date_col].iloc[first], frame[date_col].iloc[second])
            else ""
        )
        raise DataError(
            f"{source}: asset {asset_names[asset_codes[first]]!r} has more than one row for "
            f"{dates[first].date()} (data rows {first + 1} and {second + 1}){times}; keep one "
            "row per date and asset"
        )

    def where(i: int) -> str:
        return f"asset {asset_names[asset_codes[i]]!r} on {dates[i].date()} (data row {i + 1})"

    # Checked here, before pivoting, so messages point at the file's own rows.
    close = to_prices(frame[lower["close"]], source=source, where=where)
    index = pd.DatetimeIndex(date_values, name="date")
    columns = pd.Index([str(a) for a in asset_names])

    def pivot(values: np.ndarray) -> pd.DataFrame:
        wide = np.full((len(date_values), len(asset_names)), np.nan)
        wide[date_codes, asset_codes] = values
        return pd.DataFrame(wide, index=index, columns=columns)

    ranged = [name for name in ("high", "low") if name in lower]
    if not ranged:
        return pivot(close), None, None
    if len(ranged) == 1:
        other = "low" if ranged == ["high"] else "high"
        raise DataError(
            f"{source}: long-form file has a {ranged[0]} column but no {other} column; add "
            f"{other} or drop {ranged[0]} (the daily range needs both)"
        )
    high = to_prices(frame[lower["high"]], source=source, where=where)
    low = to_prices(frame[lower["low"]], source=source, where=where)
    has_close = np.isfinite(close)
    for name, values in (("high", high), ("low", low)):
        _first_row_where(
            has_close != np.isfinite(values),
            lambda i, name=name: (
                f"{source}: {where(i)} has a close but no {name} (or a {name} but no close); "
                "fill in the row's close, high and low, or leave all three empty"
            ),
        )
    with np.errstate(invalid="ignore"):
        _first_row_where(
            has_close & ~((low <= close) & (close <= high)),
            lambda i: (
                f"{source}: {where(i)} has high {float(high[i])!r}, close {float(close[i])!r} "
                f"and low {float(low[i])!r}, but high >= close >= low must hold; use highs and "
                "lows adjusted like the closes"
            ),
        )
    return pivot(close), pivot(high), pivot(low)


def _distinct_times(a: object, b: object) -> bool:
    """Whether two raw stamps of one day are different moments (not one date written twice)."""
    try:
        return pd.Timestamp(a) != pd.Timestamp(b)
    except (ValueError, TypeError):
        return False


def _first_row_where(mask: np.ndarray, message) -> None:
    """Raise a `DataError` with ``message(i)`` for the first row i where `mask` holds."""
    if mask.any():
        raise DataError(message(int(np.flatnonzero(mask)[0])))


def _list(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")
