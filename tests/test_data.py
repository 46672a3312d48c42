"""Data layer: validation of raw prices, file loaders, the bundled sample, summaries."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pandas as pd
import pytest

import kabuto.data as kd
from kabuto.data import Panel, load_prices, load_sp500, summarize
from kabuto.data.validation import clean_prices
from kabuto.errors import ArgumentError, ConfigError, DataError, KabutoError, KabutoWarning

# ---------------------------------------------------------------------------------------------
# helpers


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def wide_frame() -> pd.DataFrame:
    """Six dates, three assets: AAA full, BBB lists late, CCC delists early."""
    dates = pd.bdate_range("2021-03-01", periods=6, name="date")
    return pd.DataFrame(
        {
            "AAA": [10.0, 10.5, 10.25, 11.0, 10.75, 12.0],
            "BBB": [np.nan, np.nan, 50.0, 51.5, 49.0, 52.25],
            "CCC": [7.0, 7.125, 6.5, 6.75, np.nan, np.nan],
        },
        index=dates,
    )


def long_frame(wide: pd.DataFrame) -> pd.DataFrame:
    """The same prices in long form, ordered by asset then date, missing pairs left out."""
    long = wide.rename_axis(columns="asset").stack(future_stack=True).rename("close").reset_index()
    long = long.dropna(subset=["close"]).sort_values(["asset", "date"], kind="stable")
    long["volume"] = 1000
    return long[["date", "asset", "close", "volume"]]


def held(frame: pd.DataFrame, days: int = 5) -> pd.DataFrame:
    """`frame` as cleaning leaves it: each asset's last price held for up to `days` dates after
    it (the default max_ffill), since a date inside that gap cannot tell a halt from a
    delisting."""
    return frame.ffill(limit=days)


def assert_same_panel(panel: Panel, expected: pd.DataFrame) -> None:
    expected = held(expected)
    assert panel.assets == tuple(expected.columns)
    pd.testing.assert_index_equal(
        panel.dates.as_unit("ns"),
        pd.DatetimeIndex(expected.index).as_unit("ns"),
        check_names=False,
        check_freq=False,
    )
    np.testing.assert_array_equal(panel.prices, expected.to_numpy(dtype=float))


def message(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


# ---------------------------------------------------------------------------------------------
# clean_prices: repairs


def test_clean_prices_returns_float_frame_with_named_datetime_index():
    raw = pd.DataFrame(
        {"A": ["1.5", "2", "2.5"], 7: [3, 4, 5]}, index=["2020-01-02", "2020-01-03", "2020-01-06"]
    )
    out = clean_prices(raw, source="t.csv", max_ffill=5)
    assert isinstance(out.index, pd.DatetimeIndex)
    assert out.index.name == "date"
    assert list(out.columns) == ["A", "7"]
    assert (out.dtypes == np.float64).all()
    np.testing.assert_array_equal(out["A"].to_numpy(), [1.5, 2.0, 2.5])
    assert out.index[2] == pd.Timestamp("2020-01-06")


def test_integer_yyyymmdd_dates_are_parsed_as_calendar_dates():
    raw = pd.DataFrame({"A": [1.0, 2.0]}, index=[20200102, 20200103])
    out = clean_prices(raw, source="t.csv", max_ffill=5)
    assert list(out.index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]


def test_whole_float_dates_are_yyyymmdd_like_integers():
    # a CSV date column of YYYYMMDD numbers with a blank cell reads as floats
    raw = pd.DataFrame({"A": [1.0, 2.0]}, index=[20200102.0, 20200103.0])
    out = clean_prices(raw, source="t.csv", max_ffill=5)
    assert list(out.index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    blank = pd.DataFrame({"A": [1.0, 2.0]}, index=[20200102.0, np.nan])
    with pytest.raises(DataError, match=r"t\.csv: the date at data row 2 is empty"):
        clean_prices(blank, source="t.csv", max_ffill=5)


@pytest.mark.parametrize("bad", [20200103.5, np.inf])
def test_other_numeric_dates_are_rejected(bad):
    raw = pd.DataFrame({"A": [1.0, 2.0]}, index=[20200102.0, bad])
    with pytest.raises(DataError, match=rf"t\.csv: the date {bad} at data row 2 is a number"):
        clean_prices(raw, source="t.csv", max_ffill=5)


def test_interior_gap_up_to_max_ffill_is_forward_filled():
    frame = wide_frame()
    frame.iloc[2:4, 0] = np.nan  # two missing dates inside AAA's history
    out = clean_prices(frame, source="t.csv", max_ffill=2)
    np.testing.assert_array_equal(out["AAA"].to_numpy()[1:5], [10.5, 10.5, 10.5, 10.75])
    assert frame.iloc[2:4, 0].isna().all()  # the caller's frame is left as it was
    assert out.attrs["ffilled"] == {"AAA": 2, "BBB": 0, "CCC": 2}  # CCC: its last price held
    # The filled panel is accepted by Panel; the filled days earn zero return.
    panel = Panel(out, source="t.csv")
    np.testing.assert_array_equal(panel.returns[2:4, 0], [0.0, 0.0])


def test_interior_gap_longer_than_max_ffill_raises_naming_asset_dates_and_setting():
    frame = wide_frame()
    frame.iloc[1:4, 0] = np.nan  # three missing: 2021-03-02..2021-03-04
    with pytest.raises(DataError) as excinfo:
        clean_prices(frame, source="prices.csv", max_ffill=2)
    msg = message(excinfo)
    for part in ("prices.csv", "'AAA'", "2021-03-02", "2021-03-04", "max_ffill=2", "3 consecutive"):
        assert part in msg
    assert "(data.max_ffill in a run config, --max-ffill of kabuto data info)" in msg
    # The same gap is fine once max_ffill allows it.
    assert clean_prices(frame, source="prices.csv", max_ffill=3).attrs["ffilled"]["AAA"] == 3


def test_max_ffill_zero_forbids_any_interior_gap():
    frame = wide_frame()
    frame.iloc[3, 1] = np.nan
    with pytest.raises(DataError, match=r"'BBB'.*2021-03-04 to 2021-03-04"):
        clean_prices(frame, source="p.csv", max_ffill=0)


def test_invalid_max_ffill_is_a_config_error():
    with pytest.raises(ConfigError, match=r"max_ffill.*-1"):
        clean_prices(wide_frame(), source="p.csv", max_ffill=-1)


def test_leading_nan_is_kept_and_a_last_price_is_held_for_max_ffill_dates():
    # at a date inside CCC's trailing gap nobody can tell a halt from a delisting: held as an
    # interior gap would be (else the universe at t depended on prices after t), then delisted
    out = clean_prices(wide_frame(), source="t.csv", max_ffill=1)
    assert np.isnan(out["BBB"].to_numpy()[:2]).all()
    np.testing.assert_array_equal(out["CCC"].to_numpy()[3:], [6.75, 6.75, np.nan])
    panel = Panel(out, source="t.csv")
    np.testing.assert_array_equal(panel.first_valid, [0, 2, 0])
    np.testing.assert_array_equal(panel.last_valid, [5, 5, 4])
    assert out.attrs["ffilled"] == {"AAA": 0, "BBB": 0, "CCC": 1}
    # the same through date 4 whether CCC's prices come back on date 5 or never
    back = wide_frame()
    back.iloc[5, 2] = 7.0
    again = clean_prices(back, source="t.csv", max_ffill=1)
    pd.testing.assert_frame_equal(again.iloc[:5], out.iloc[:5])
    assert np.isnan(clean_prices(wide_frame(), source="t.csv", max_ffill=0)["CCC"].iloc[4])


def test_a_panels_frame_loads_back_to_the_same_panel():
    # filled prices went out as real ones, so each round trip held a delisted asset longer
    panel = Panel.from_frame(wide_frame(), max_ffill=1)
    again = Panel.from_frame(panel.to_frame(), max_ffill=1)
    np.testing.assert_array_equal(again.prices, panel.prices)
    np.testing.assert_array_equal(again.filled, panel.filled)
    assert panel.filled[4, 2] and not panel.filled[3, 2]  # CCC's held last price


def test_unsorted_dates_are_sorted_with_a_warning():
    frame = wide_frame()
    shuffled = frame.iloc[[0, 3, 1, 2, 5, 4]]
    with pytest.warns(KabutoWarning, match=r"t\.csv.*not in increasing order"):
        out = clean_prices(shuffled, source="t.csv", max_ffill=5)
    pd.testing.assert_frame_equal(out, held(frame), check_freq=False, check_index_type=False)


def test_sorted_input_does_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean_prices(wide_frame(), source="t.csv", max_ffill=5)


def test_blank_strings_are_missing_not_errors():
    raw = pd.DataFrame({"A": ["", "2", " ", "4"]}, index=pd.bdate_range("2020-01-01", periods=4))
    out = clean_prices(raw, source="t.csv", max_ffill=1)
    np.testing.assert_array_equal(out["A"].to_numpy(), [np.nan, 2.0, 2.0, 4.0])


# ---------------------------------------------------------------------------------------------
# clean_prices: errors (type and what the message names)


def test_unparseable_date_names_value_and_row():
    raw = pd.DataFrame({"A": [1.0, 2.0, 3.0]}, index=["2020-01-02", "2020-01-03", "2020-13-45"])
    with pytest.raises(DataError) as excinfo:
        clean_prices(raw, source="bad_dates.csv", max_ffill=5)
    msg = message(excinfo)
    assert "bad_dates.csv" in msg and "'2020-13-45'" in msg and "data row 3" in msg
    assert "YYYY-MM-DD" in msg


def test_missing_date_is_reported_as_empty():
    raw = pd.DataFrame({"A": [1.0, 2.0]}, index=pd.Index(["2020-01-02", None]))
    with pytest.raises(DataError, match=r"x\.csv: the date at data row 2 is empty"):
        clean_prices(raw, source="x.csv", max_ffill=5)


def test_duplicate_date_is_named_with_both_rows():
    raw = pd.DataFrame({"A": [1.0, 2.0, 3.0]}, index=["2020-01-02", "2020-01-03", "2020-01-03"])
    with pytest.raises(DataError) as excinfo:
        clean_prices(raw, source="dups.csv", max_ffill=5)
    msg = message(excinfo)
    assert "dups.csv" in msg and "2020-01-03" in msg and "data rows 2 and 3" in msg


def test_non_numeric_price_names_asset_date_row_and_value():
    raw = pd.DataFrame(
        {"A": [1.0, 2.0, 3.0], "B": ["5", "1,234.5", "6"]},
        index=["2020-01-02", "2020-01-03", "2020-01-06"],
    )
    with pytest.raises(DataError) as excinfo:
        clean_prices(raw, source="text.csv", max_ffill=5)
    msg = message(excinfo)
    for part in ("text.csv", "'B'", "2020-01-03", "data row 2", "'1,234.5'", "not a number"):
        assert part in msg


@pytest.mark.parametrize("bad", [0.0, -3.5])
def test_non_positive_price_names_asset_date_and_value(bad):
    frame = wide_frame()
    frame.iloc[4, 1] = bad
    with pytest.raises(DataError) as excinfo:
        clean_prices(frame, source="neg.csv", max_ffill=5)
    msg = message(excinfo)
    assert "neg.csv" in msg and "'BBB'" in msg and "2021-03-05" in msg
    assert repr(bad) in msg and "greater than zero" in msg


def test_infinite_price_is_rejected():
    frame = wide_frame()
    frame.iloc[0, 0] = np.inf
    with pytest.raises(DataError, match=r"inf.*'AAA'|'AAA'.*inf"):
        clean_prices(frame, source="inf.csv", max_ffill=5)


def test_all_empty_asset_column_is_named_with_advice_to_drop_it():
    frame = wide_frame()
    frame["EMPTY"] = np.nan
    with pytest.raises(DataError) as excinfo:
        clean_prices(frame, source="empty_col.csv", max_ffill=5)
    msg = message(excinfo)
    assert "empty_col.csv" in msg and "'EMPTY'" in msg and "drop" in msg
    assert "'AAA'" not in msg


def test_duplicate_asset_names_are_rejected():
    frame = wide_frame()
    frame.columns = ["AAA", "BBB", "AAA"]
    with pytest.raises(DataError, match="'AAA' appears more than once"):
        clean_prices(frame, source="cols.csv", max_ffill=5)


def test_errors_are_kabuto_errors():
    assert issubclass(DataError, KabutoError)


# ---------------------------------------------------------------------------------------------
# load_prices: round trips


def test_wide_csv_round_trip(tmp_path):
    frame = wide_frame()
    path = tmp_path / "wide.csv"
    frame.to_csv(path)
    panel = load_prices(path)
    assert_same_panel(panel, frame)
    assert panel.source == str(path)
    np.testing.assert_array_equal(panel.first_valid, [0, 2, 0])
    np.testing.assert_array_equal(panel.last_valid, [5, 5, 5])  # CCC's last price held


def test_wide_csv_gz_round_trip(tmp_path):
    frame = wide_frame()
    path = tmp_path / "wide.csv.gz"
    with gzip.open(path, "wt") as fh:
        frame.to_csv(fh)
    assert_same_panel(load_prices(path), frame)


def test_wide_parquet_round_trip_with_date_index_and_with_date_column(tmp_path):
    frame = wide_frame()
    indexed = tmp_path / "wide.parquet"
    frame.to_parquet(indexed)  # date stored as the pandas index
    as_column = tmp_path / "wide_col.pq"
    frame.reset_index().to_parquet(as_column, index=False)
    assert_same_panel(load_prices(indexed), frame)
    assert_same_panel(load_prices(as_column), frame)


def test_long_csv_round_trip_matches_wide(tmp_path):
    frame = wide_frame()
    wide_path, long_path = tmp_path / "w.csv", tmp_path / "l.csv"
    frame.to_csv(wide_path)
    long_frame(frame).to_csv(long_path, index=False)
    wide_panel, long_panel = load_prices(wide_path), load_prices(long_path)
    assert_same_panel(long_panel, frame)
    np.testing.assert_array_equal(long_panel.returns, wide_panel.returns)


def test_long_parquet_round_trip_with_capitalised_columns(tmp_path):
    frame = wide_frame()
    long = long_frame(frame).rename(columns={"date": "Date", "asset": "Asset", "close": "Close"})
    path = tmp_path / "long.parquet"
    long.to_parquet(path, index=False)
    assert_same_panel(load_prices(path), frame)


def test_shuffled_long_parquet_with_leftover_row_index(tmp_path):
    frame = wide_frame()
    shuffled = long_frame(frame).sample(frac=1.0, random_state=0)  # keeps a scrambled index
    path = tmp_path / "shuffled.parquet"
    shuffled.to_parquet(path)
    assert_same_panel(load_prices(path), frame)


# ---------------------------------------------------------------------------------------------
# highs and lows


def ranged_long(wide: pd.DataFrame) -> pd.DataFrame:
    """`long_frame` with a high 2% above and a low 1% below each close."""
    long = long_frame(wide)
    long["high"] = long["close"] * 1.02
    long["low"] = long["close"] * 0.99
    return long


def test_long_file_with_high_and_low_gives_a_panel_with_the_daily_range(tmp_path):
    frame = wide_frame()
    path = tmp_path / "l.csv"
    ranged_long(frame).sample(frac=1.0, random_state=1).to_csv(path, index=False)
    panel = load_prices(path)
    assert_same_panel(panel, frame)
    assert panel.has_high_low
    expected = frame.to_numpy()
    traded = ~np.isnan(expected)  # on held days (CCC's last two) high and low are the close
    np.testing.assert_allclose(panel.highs[traded], expected[traded] * 1.02, rtol=1e-15)
    np.testing.assert_allclose(panel.lows[traded], expected[traded] * 0.99, rtol=1e-15)
    np.testing.assert_array_equal(panel.highs[4:, 2], [6.75, 6.75])
    assert np.array_equal(np.isnan(panel.highs), np.isnan(held(frame).to_numpy()))
    window = panel.window(4, 2)
    np.testing.assert_array_equal(window.highs, panel.highs[3:5])
    features = window.price_features()
    assert features.shape == (3, 2, 3)
    np.testing.assert_array_equal(features[2], panel.lows[3:5])
    assert window.price_features(high_low=False).shape == (1, 2, 3)
    batch = panel.batch([3, 4, 5], 2, columns=np.array([0, 2]))
    np.testing.assert_array_equal(batch.highs[1], panel.highs[3:5][:, [0, 2]])
    np.testing.assert_array_equal(batch.window(2).lows, panel.lows[4:6][:, [0, 2]])
    # a wide file and a long file without the columns hold closes only
    frame.to_csv(tmp_path / "w.csv")
    for closes_only in (load_prices(tmp_path / "w.csv"), Panel(frame)):
        assert not closes_only.has_high_low and closes_only.window(4, 2).highs is None
        assert closes_only.price_features().shape == (1, 6, 3)


@pytest.mark.parametrize("ranged", [False, True])
def test_long_form_missing_pair_inside_history_is_forward_filled(tmp_path, ranged):
    frame = wide_frame()
    long = ranged_long(frame) if ranged else long_frame(frame)
    drop = (long["asset"] == "AAA") & (long["date"] == pd.Timestamp("2021-03-03"))
    path = tmp_path / "l.csv"
    long[~drop].to_csv(path, index=False)
    panel = load_prices(path, max_ffill=1)
    filled = panel.prices[2, 0]
    assert filled == frame.iloc[1, 0]
    if ranged:  # a day without trading: its high and low are the (filled) close
        assert panel.highs[2, 0] == filled and panel.lows[2, 0] == filled
        assert panel.highs[1, 0] == pytest.approx(filled * 1.02)
    with pytest.raises(DataError, match=r"l\.csv.*'AAA'.*max_ffill=0"):
        load_prices(path, max_ffill=0)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda f: f.reset_index(drop=True), r"index holds int64 values \(RangeIndex\), not dates"),
        (lambda f: f.set_axis(f.index.astype(str)), r"index holds \w+ values \(Index\), not dates"),
        (lambda f: f.iloc[[0, 2, 1, 3, 4, 5]], r"2021-03-02 \(row 3\) follows 2021-03-03"),
        (lambda f: f.iloc[[0, 1, 1, 2, 3, 4]], r"2021-03-02 \(row 3\) follows 2021-03-02"),
        (
            lambda f: f.set_axis(f.index.where(np.arange(6) != 4)),
            r"the date in row 5 is missing",
        ),
        (
            lambda f: f.where(np.arange(18).reshape(6, 3) != 15, np.inf),
            r"'AAA' on 2021-03-08 has price inf; prices must be finite",
        ),
        (
            lambda f: f.where(np.arange(18).reshape(6, 3) != 0, -np.inf),
            r"'AAA' on 2021-03-01 has price -inf",
        ),
    ],
)
def test_panel_built_directly_rejects_what_from_frame_would_repair_or_reject(edit, match):
    # A RangeIndex would become dates in 1970, shuffled dates returns between non-neighbours,
    # and a last price of inf a delisting.
    with pytest.raises(DataError, match=match) as excinfo:
        Panel(edit(wide_frame()), source="direct")
    assert message(excinfo).startswith("direct: ")
    assert "Panel.from_frame" in message(excinfo)


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        (1e-300, 1e10, "is inf, not a finite number"),  # 1e10 / 1e-300 overflows
        (10.5, 1e308, "is 9.52381e+306, too large for variance estimates"),  # its square does
    ],
)
@pytest.mark.parametrize("build", [Panel, Panel.from_frame])
def test_a_return_that_overflows_names_asset_date_and_both_prices(build, before, after, problem):
    # Positive finite prices, so only the returns show it; direct construction and from_frame
    # go through the same check, with no raw numpy warning on the way.
    frame = wide_frame()
    frame.iloc[2, 0], frame.iloc[3, 0] = before, after  # AAA on 2021-03-03 and 2021-03-04
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError) as excinfo:
            build(frame, source="p.csv")
    assert message(excinfo) == (
        f"p.csv: asset 'AAA' on 2021-03-04: the return from {before!r} on 2021-03-03 to "
        f"{after!r} {problem}; check the prices around that date"
    )


def test_a_return_overflow_in_a_file_names_the_file(tmp_path):
    path = write(tmp_path, "tiny.csv", "date,A,B\n2020-01-02,1e-300,5\n2020-01-03,1e10,6\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    assert message(excinfo).startswith(f"{path}: asset 'A' on 2020-01-03: the return from 1e-300")


def test_large_but_finite_moves_are_data_not_errors():
    frame = wide_frame()
    frame.iloc[2, 0], frame.iloc[3, 0] = 1e-6, 1e3  # a return of 1e9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel = Panel(frame, source="p.csv")
    assert panel.returns[3, 0] == pytest.approx(1e9)


def test_panel_from_frame_aligns_unsorted_highs_and_lows():
    frame = wide_frame()
    order = [3, 0, 5, 1, 4, 2]
    with pytest.warns(KabutoWarning, match="sorted"):
        panel = Panel.from_frame(
            frame.iloc[order], highs=frame.iloc[order] * 1.1, lows=frame.iloc[order] * 0.9
        )
    np.testing.assert_allclose(panel.highs[:4], frame.to_numpy()[:4] * 1.1)
    np.testing.assert_allclose(panel.lows[:4], frame.to_numpy()[:4] * 0.9)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h, lo: (h * 0.98, lo), r"'AAA' on 2021-03-01.*high >= close >= low"),
        (lambda h, lo: (h, lo * 1.02), r"'AAA' on 2021-03-01.*high >= close >= low"),
        (
            lambda h, lo: (h.where(np.arange(18).reshape(6, 3) // 3 != 2), lo),
            r"on 2021-03-03: a close but no high",
        ),
        (lambda h, lo: (h, lo.fillna(1.0)), r"'BBB' on 2021-03-01: a low but no close"),
        (lambda h, lo: (h, None), r"highs given without lows"),
        (lambda h, lo: (h.iloc[:4], lo), r"highs must have the closes' dates and assets"),
    ],
)
def test_inconsistent_highs_and_lows_are_rejected(edit, match):
    frame = wide_frame()
    highs, lows = edit(frame * 1.01, frame * 0.99)
    with pytest.raises(DataError, match=match):
        Panel(frame, highs=highs, lows=lows)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda long: long.assign(high=long["close"] * 0.9),
            r"'AAA' on 2021-03-01 \(data row 1\) has high 9\.0, close 10\.0 and low 9\.9.*"
            r"high >= close >= low",
        ),
        (
            lambda long: long.assign(low=long["low"].where(long.index != 7)),
            r"'BBB' on 2021-03-04 \(data row 8\) has a close but no low",
        ),
        (
            lambda long: long.drop(columns="low"),
            r"has a high column but no low column; add low or drop high",
        ),
        (lambda long: long.assign(high="x"), r"'x'"),
    ],
)
def test_bad_high_low_rows_in_a_file_are_named(tmp_path, edit, match):
    path = tmp_path / "l.csv"
    edit(ranged_long(wide_frame()).reset_index(drop=True)).to_csv(path, index=False)
    with pytest.raises(DataError, match=match) as excinfo:
        load_prices(path)
    assert str(path) in message(excinfo)


def test_explicit_format_and_date_column(tmp_path):
    frame = wide_frame().rename_axis("when")
    path = tmp_path / "prices.txt"
    frame.to_csv(path)
    assert_same_panel(load_prices(path, format="csv", date_column="when"), frame)


def test_short_gap_in_wide_file_is_filled_and_long_gap_is_reported_with_path(tmp_path):
    path = write(
        tmp_path,
        "gaps.csv",
        "date,A,B\n2020-01-01,1,5\n2020-01-02,,5\n2020-01-03,,5\n2020-01-06,2,5\n",
    )
    panel = load_prices(path, max_ffill=2)
    np.testing.assert_array_equal(panel.prices[:, 0], [1.0, 1.0, 1.0, 2.0])
    with pytest.raises(DataError) as excinfo:
        load_prices(path, max_ffill=1)
    msg = message(excinfo)
    assert str(path) in msg and "'A'" in msg and "2020-01-02 to 2020-01-03" in msg


def test_unsorted_file_warns_and_loads_sorted(tmp_path):
    path = write(tmp_path, "u.csv", "date,A\n2020-01-03,2\n2020-01-02,1\n2020-01-06,3\n")
    with pytest.warns(KabutoWarning, match="u.csv"):
        panel = load_prices(path)
    np.testing.assert_array_equal(panel.prices[:, 0], [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------------------------
# load_prices: errors (every message names the file)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    assert str(path) in message(excinfo) and "not found" in message(excinfo)


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.csv", "")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    assert str(path) in message(excinfo) and "empty" in message(excinfo)


def test_header_only_file(tmp_path):
    path = write(tmp_path, "header.csv", "date,A,B\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    assert str(path) in message(excinfo) and "no data rows" in message(excinfo)


def test_unknown_extension_lists_allowed_ones(tmp_path):
    path = write(tmp_path, "prices.xlsx", "whatever")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg
    for ext in (".csv", ".csv.gz", ".parquet", ".pq"):
        assert ext in msg
    # `kabuto data info` has no format option: the hint says where one exists.
    assert "rename the file" in msg
    assert "(data.format in a run config, format= of load_prices)" in msg
    assert "pass format=" not in msg


@pytest.mark.parametrize("name", ["prices", "prices.csv"])
def test_a_directory_is_named_as_one(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    with pytest.raises(DataError) as excinfo:
        load_prices(folder)
    assert message(excinfo) == (
        f"{folder}: is a directory, not a price file; give the path of a CSV or Parquet file"
    )


def test_unknown_format_argument(tmp_path):
    path = write(tmp_path, "p.csv", "date,A\n2020-01-02,1\n2020-01-03,2\n")
    with pytest.raises(DataError, match=r"p\.csv.*'feather'.*csv.*parquet"):
        load_prices(path, format="feather")


def test_unreadable_parquet(tmp_path):
    path = write(tmp_path, "broken.parquet", "date,A\n2020-01-02,1\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "cannot be read as PARQUET" in msg
    assert "rename it or name its format (data.format in a run config" in msg


def test_a_parquet_date_both_index_and_column_is_named(tmp_path):
    # a valid Parquet file: "cannot be read as PARQUET" misled
    frame = wide_frame()
    path = tmp_path / "both.parquet"
    frame.assign(date=frame.index).to_parquet(path)
    with pytest.raises(DataError, match=r"both\.parquet: 'date' is both the table's index and"):
        load_prices(path)


def test_a_csv_not_in_utf8_says_to_save_it_as_utf8(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_text("date,A\n2020-01-02,1\n2020-01-03,2\n", encoding="utf-16")
    with pytest.raises(DataError, match=r"utf16\.csv: is not UTF-8 text .* save it as UTF-8"):
        load_prices(path)
    # the offset in the file, not in pandas' read buffer
    path.write_bytes(b"date,A,B\n2020-01-02,1,2\n2020-01-03,2,3 \xe9\n")
    with pytest.raises(DataError, match="invalid continuation byte at byte 39"):
        load_prices(path)


def test_binary_file_named_csv(tmp_path):
    path = tmp_path / "binary.csv"
    wide_frame().to_parquet(path)
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    assert str(path) in message(excinfo)


def test_no_date_column_names_accepted_names(tmp_path):
    path = write(tmp_path, "nodate.csv", "day_of_trade,A\n2020-01-02,1\n2020-01-03,2\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "no date column" in msg
    for name in ("date", "Date", "datetime", "timestamp", "'day_of_trade'"):
        assert name in msg
    # date_column is an argument of the Python loader, not a config key or CLI option.
    assert "or pass date_column= to load_prices" in msg
    # ...and the advice works.
    assert load_prices(path, date_column="day_of_trade").n_dates == 2


def test_date_column_argument_that_does_not_exist(tmp_path):
    path = write(tmp_path, "p.csv", "date,A\n2020-01-02,1\n2020-01-03,2\n")
    with pytest.raises(DataError, match=r"p\.csv.*date_column='when'.*'date', 'A'"):
        load_prices(path, date_column="when")


def test_bad_date_in_file_names_path_value_and_row(tmp_path):
    path = write(tmp_path, "d.csv", "date,A\n2020-01-02,1\n2020-01-03,2\nnot-a-date,3\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "'not-a-date'" in msg and "data row 3" in msg


def test_non_numeric_price_in_file(tmp_path):
    path = write(tmp_path, "n.csv", "date,A,B\n2020-01-02,1,2\n2020-01-03,2,n/a?\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "'B'" in msg and "2020-01-03" in msg and "'n/a?'" in msg


def test_negative_price_in_file(tmp_path):
    path = write(tmp_path, "neg.csv", "date,A\n2020-01-02,1\n2020-01-03,-2\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "'A'" in msg and "2020-01-03" in msg and "-2.0" in msg


def test_empty_column_in_file(tmp_path):
    path = write(tmp_path, "e.csv", "date,A,B\n2020-01-02,1,\n2020-01-03,2,\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "'B'" in msg and "drop" in msg


def test_duplicate_date_in_file(tmp_path):
    path = write(tmp_path, "dd.csv", "date,A\n2020-01-02,1\n2020-01-02,2\n2020-01-03,3\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "2020-01-02" in msg and "data rows 1 and 2" in msg


def test_long_form_unknown_columns_are_named_and_allowed_listed(tmp_path):
    path = write(
        tmp_path,
        "l.csv",
        "date,asset,close,adj_close,sector\n2020-01-02,A,1,1,tech\n2020-01-03,A,2,2,tech\n",
    )
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "'adj_close'" in msg and "'sector'" in msg
    assert "asset, close, open, high, low, volume" in msg


def test_long_form_without_close(tmp_path):
    path = write(tmp_path, "l.csv", "date,asset,open\n2020-01-02,A,1\n2020-01-03,A,2\n")
    with pytest.raises(DataError, match=r"l\.csv.*no close column"):
        load_prices(path)


def test_long_form_duplicate_date_asset_rows(tmp_path):
    path = write(
        tmp_path,
        "l.csv",
        "date,asset,close\n2020-01-02,A,1\n2020-01-03,A,2\n2020-01-02,B,5\n2020-01-03,A,2.5\n",
    )
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "'A'" in msg and "2020-01-03" in msg
    assert "data rows 2 and 4" in msg


def test_long_form_bad_close_points_at_file_row(tmp_path):
    path = write(
        tmp_path,
        "l.csv",
        "date,asset,close\n2020-01-02,A,1\n2020-01-03,A,2\n2020-01-02,B,5\n2020-01-03,B,0\n",
    )
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    msg = message(excinfo)
    assert str(path) in msg and "'B'" in msg and "2020-01-03" in msg and "data row 4" in msg


def test_long_form_row_without_asset(tmp_path):
    path = write(tmp_path, "l.csv", "date,asset,close\n2020-01-02,A,1\n2020-01-03,,2\n")
    with pytest.raises(DataError, match=r"l\.csv: data row 2 has no asset"):
        load_prices(path)


def test_long_form_asset_codes_keep_their_leading_zeros(tmp_path):
    # Hong Kong and Korean codes: 0700 is not 700, and 0005 and 005 are two assets
    text = "date,asset,close\n2020-01-02,0700,1\n2020-01-03,0700,2\n2020-01-02,005,5\n"
    path = write(
        tmp_path, "l.csv", text + "2020-01-03,005,6\n2020-01-02,0005,7\n2020-01-03,0005,8\n"
    )
    panel = load_prices(path)
    assert panel.assets == ("0005", "005", "0700")
    np.testing.assert_array_equal(panel.prices[:, 2], [1.0, 2.0])


def test_times_of_day_are_dropped_so_a_day_is_one_date(tmp_path):
    # long form, each asset stamped at its own second: one date a day, not two half-filled
    rows = "".join(
        f"2020-01-0{d} 16:00:00,A,{100 + d}\n2020-01-0{d} 16:00:05,B,{50 + d}\n"
        for d in range(2, 7)
    )
    panel = load_prices(write(tmp_path, "l.csv", "date,asset,close\n" + rows))
    assert list(panel.dates) == list(pd.date_range("2020-01-02", "2020-01-06"))
    assert panel.ffilled == {"A": 0, "B": 0}
    # wide form, two stamps on one day: a repeated date, and the message says why
    path = write(
        tmp_path, "w.csv", "date,A\n2020-01-02 09:00,1\n2020-01-02 16:00,2\n2020-01-03 16:00,3\n"
    )
    with pytest.raises(DataError, match=r"2020-01-02 appears more than once .*times of day"):
        load_prices(path)


def test_a_long_file_with_two_stamps_of_one_day_says_why_they_clash(tmp_path):
    text = "date,asset,close\n2020-01-02 09:00,A,1\n2020-01-02 16:00,A,2\n2020-01-03 16:00,A,3\n"
    with pytest.raises(DataError, match=r"data rows 1 and 2\) \(times of day are dropped"):
        load_prices(write(tmp_path, "t.csv", text))
    # one date written two ways is a plain repeat
    text = "date,asset,close\n2020-01-03,A,1\n2020-1-3,A,2\n2020-01-06,A,3\n"
    with pytest.raises(DataError, match=r"data rows 1 and 2\); keep one row"):
        load_prices(write(tmp_path, "d.csv", text))


def test_utc_offsets_that_change_across_daylight_saving_keep_wall_clock_dates(tmp_path):
    # pandas reads mixed offsets only as UTC, where 20:00-05:00 would become the next day
    text = (
        "date,A\n2020-03-06T20:00:00-05:00,1\n2020-03-09T20:00:00-04:00,2\n"
        "2020-03-10T20:00:00-04:00,3\n"
    )
    panel = load_prices(write(tmp_path, "w.csv", text))
    assert [d.date().isoformat() for d in panel.dates] == ["2020-03-06", "2020-03-09", "2020-03-10"]
    # every stamp in the first one's format: 06/03 is 6 March after 13/03, as with one offset
    dayfirst = (
        "date,A\n13/03/2020 20:00-04:00,1\n16/03/2020 20:00-05:00,2\n06/04/2020 20:00-04:00,3\n"
    )
    panel = load_prices(write(tmp_path, "d.csv", dayfirst))
    assert [d.date().isoformat() for d in panel.dates] == ["2020-03-13", "2020-03-16", "2020-04-06"]
    path = write(tmp_path, "bad.csv", text.replace("2020-03-09T", "2020-13-09T"))
    with pytest.raises(DataError, match=r"'2020-13-09T20:00:00-04:00' at data row 2"):
        load_prices(path)


def test_a_second_date_column_is_not_read_as_prices(tmp_path):
    # to_numeric would read datetimes as nanoseconds since 1970: prices of about 1.6e18
    dates = pd.date_range("2020-01-01", periods=3)
    path = tmp_path / "two.parquet"
    pd.DataFrame({"date": dates, "A": [1.0, 2.0, 3.0], "Date": dates}).to_parquet(path)
    with pytest.raises(DataError, match=r"asset 'Date' .*holds dates or times"):
        load_prices(path)


@pytest.mark.parametrize("name", ["r.csv", "r.csv.gz"])
@pytest.mark.parametrize("row", [1, 2])
def test_a_row_with_more_fields_than_the_header_is_named(tmp_path, name, row):
    # on the first row pandas would make the extra field's column the index and read dates
    # from the wrong one; later, its message names a line of the file, not a data row
    rows = ["2020-01-01,1,2", "2020-01-02,1,2", "2020-01-03,1,2"]
    rows[row - 1] += ",3"
    text = "date,A,B\n" + "\n".join(rows) + "\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    with pytest.raises(DataError, match=rf"data row {row} has 4 fields but the header names 3"):
        load_prices(path)


@pytest.mark.parametrize(
    "text",
    [
        "date;A;B\n2020-01-01;1;2\n2020-01-02;1;2\n",
        "date;A;B\n2020-01-01;1,5;2,5\n2020-01-02;1,5;2,5\n",  # decimal commas: more fields
    ],
)
def test_another_separator_is_named(tmp_path, text):
    with pytest.raises(DataError, match=r"separate its fields with ';'; kabuto reads comma"):
        load_prices(write(tmp_path, "s.csv", text))


def test_long_columns_named_twice_in_two_cases_are_refused(tmp_path):
    text = "date,asset,close,Close\n2020-01-01,A,1,2\n2020-01-02,A,1,2\n"
    with pytest.raises(DataError, match=r"columns 'close' and 'Close' differ only in letter case"):
        load_prices(write(tmp_path, "l.csv", text))
    # in wide form they are two assets
    panel = load_prices(write(tmp_path, "w.csv", "date,abc,ABC\n2020-01-01,1,2\n2020-01-02,1,2\n"))
    assert panel.assets == ("abc", "ABC")


def test_messages_quote_cells_as_python_values(tmp_path):
    # a date read as an integer is quoted as 1, not np.int64(1); a true/false cell as True
    path = write(tmp_path, "i.csv", "date,A\n1,1\n2,2\n")
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    assert "the date 1 at data row 1 cannot be parsed" in message(excinfo)
    path = tmp_path / "b.parquet"
    pd.DataFrame({"date": ["2020-01-01", "2020-01-02"], "A": [True, False]}).to_parquet(path)
    with pytest.raises(DataError) as excinfo:
        load_prices(path)
    assert "holds True, a true/false value" in message(excinfo)
    with pytest.raises(DataError, match=r"unknown format 5"):
        load_prices(path, format=5)


def test_single_date_file_is_rejected_by_panel_with_path(tmp_path):
    path = write(tmp_path, "one.csv", "date,A\n2020-01-02,1\n")
    with pytest.raises(DataError, match=r"one\.csv.*at least 2 dates"):
        load_prices(path)


# ---------------------------------------------------------------------------------------------
# Panel: arguments it cannot use

LEVELS = [100.0, 101.0, 99.5, 102.0, 103.0, 104.5]  # a benchmark on wide_frame()'s six dates


def bench(values=LEVELS, index=None, **kwargs) -> pd.Series:
    return pd.Series(values, index=wide_frame().index if index is None else index, **kwargs)


BAD_BENCHMARKS = [
    # Returns passed for prices: a NaN beta and an information ratio equal to the Sharpe, silently.
    (bench([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]), r"benchmark on 2021-03-01 is -1\.0"),
    (bench([100.0, 101.0, 0.0, 102.0, 103.0, 104.5]), r"benchmark on 2021-03-03 is 0\.0"),
    (
        bench([*LEVELS[:3], np.inf, *LEVELS[4:]], name="SPX"),
        r"benchmark 'SPX' on 2021-03-04 is inf",
    ),
    (
        bench(index=wide_frame().index + pd.Timedelta(days=400)),
        r"benchmark has no price on 2021-03-01, a date of the panel \(6 of its 6 dates",
    ),
    (
        bench(LEVELS[1:], index=wide_frame().index[1:]),
        r"benchmark has no price on 2021-03-01, a date of the panel \(1 of its 6 dates",
    ),
    (
        bench([*LEVELS[:5], np.nan]),
        r"benchmark has no price on 2021-03-08, a date of the panel \(1 of its 6 dates",
    ),
    (bench("a"), r"benchmark on 2021-03-01 holds 'a', which is not a number"),
    ([1, 2, 3], r"benchmark must be a pandas Series of prices, got list"),
    (bench().to_frame(), r"benchmark must be a pandas Series of prices, got DataFrame"),
    (bench(index=wide_frame().index.astype(str)), r"benchmark's index holds \w+ values"),
    (
        bench([*LEVELS, 1.0], index=wide_frame().index.append(wide_frame().index[:1])),
        r"benchmark has date 2021-03-01 more than once",
    ),
]


@pytest.mark.parametrize(("benchmark", "match"), BAD_BENCHMARKS)
@pytest.mark.parametrize("build", [Panel, Panel.from_frame])
def test_benchmark_is_checked_where_the_panel_is_built(build, benchmark, match):
    # Each of these used to pass (and fail much later, or never) or raise a raw pandas error.
    with pytest.raises(DataError, match=match) as excinfo:
        build(wide_frame(), source="p.csv", benchmark=benchmark)
    assert message(excinfo).startswith("p.csv: ")


def test_benchmark_messages_say_how_it_is_aligned_and_what_to_do():
    with pytest.raises(DataError) as excinfo:
        Panel(
            wide_frame(), source="p.csv", benchmark=bench(LEVELS[1:], index=wide_frame().index[1:])
        )
    text = message(excinfo)
    assert "reindexed to the panel's dates, 2021-03-01..2021-03-08" in text
    assert text.endswith(
        "give it a price on every date of the panel, or trim the prices to the benchmark's dates"
    )
    with pytest.raises(DataError) as excinfo:
        Panel(wide_frame(), benchmark=bench([-1.0] * 6))
    assert "finite and positive (pass the index's level, not its returns)" in message(excinfo)


def test_benchmark_is_reindexed_to_the_panels_dates():
    # Extra dates are dropped, order does not matter, integers become floats, the name stays.
    index = wide_frame().index
    longer = index.insert(0, index[0] - pd.Timedelta(days=3)).append(
        index[-1:] + pd.Timedelta(days=1)
    )
    raw = pd.Series([1, 100, 101, 99, 102, 103, 104, 7], index=longer, name="SPX").iloc[::-1]
    panel = Panel.from_frame(wide_frame(), benchmark=raw)
    expected = pd.Series([100.0, 101, 99, 102, 103, 104], index=panel.dates, name="SPX")
    pd.testing.assert_series_equal(panel.benchmark, expected)
    assert panel.benchmark_returns().iloc[1] == pytest.approx(0.01)
    # A time-zone-aware benchmark lines up with the naive dates from_frame makes.
    aware = bench(index=index.tz_localize("UTC"))
    np.testing.assert_array_equal(Panel(wide_frame(), benchmark=aware).benchmark, LEVELS)


@pytest.mark.parametrize(
    ("prices", "match"),
    [
        (wide_frame().to_numpy(), r"prices must be a DataFrame, got ndarray"),
        (wide_frame().to_numpy().tolist(), r"prices must be a DataFrame, got list"),
        (wide_frame()["AAA"], r"prices must be a DataFrame, got Series"),
    ],
)
def test_panel_of_something_other_than_a_frame_says_what_to_pass(prices, match):
    with pytest.raises(DataError, match=match) as excinfo:
        Panel(prices, source="direct")
    assert message(excinfo).startswith("direct: ")
    assert "pass a DataFrame of prices indexed by date" in message(excinfo)
    assert "Panel.from_frame / load_prices" in message(excinfo)


def test_panel_names_a_cell_that_is_not_a_number():
    frame = wide_frame().astype(object)
    frame.iloc[3, 2] = "x"  # CCC on 2021-03-04
    with pytest.raises(DataError) as excinfo:
        Panel(frame, source="direct")
    assert message(excinfo).startswith(
        "direct: asset 'CCC' on 2021-03-04 holds 'x', which is not a number"
    )
    # Numbers stored as objects (and nullable floats with missing values) are still prices.
    assert Panel(wide_frame().astype(object)).prices[3, 2] == 6.75
    assert np.isnan(Panel(wide_frame().astype("Float64")).prices[0, 1])


def test_panel_rejects_duplicate_asset_names_like_from_frame():
    frame = wide_frame().set_axis(["AAA", "BBB", "AAA"], axis=1)
    with pytest.raises(DataError) as direct:
        Panel(frame, source="p.csv")
    with pytest.raises(DataError) as cleaned:
        Panel.from_frame(frame, source="p.csv")
    assert message(direct) == message(cleaned)
    assert message(direct) == "p.csv: asset column 'AAA' appears more than once; rename or drop one"


@pytest.mark.parametrize("date", ["garbage", "", None, 3.5j])
def test_index_of_names_a_value_that_is_not_a_date(date):
    panel = Panel(wide_frame(), source="p.csv")
    with pytest.raises(ArgumentError) as excinfo:
        panel.index_of(date)
    assert isinstance(excinfo.value, KabutoError)
    assert message(excinfo).startswith(f"p.csv: date={date!r} is not a date")


def test_index_of_still_finds_the_decision_date():
    panel = Panel(wide_frame())
    assert panel.index_of("2021-03-06") == 4  # a Saturday: the Friday before
    assert panel.index_of(pd.Timestamp("2021-03-08", tz="UTC")) == 5
    with pytest.raises(DataError, match="before the first date 2021-03-01"):
        panel.index_of("2021-02-01")


@pytest.mark.parametrize("t", [10**6, 6, -1, 1.5, True, "5"])
def test_window_outside_the_panel_names_t_and_the_valid_range(t):
    # 10**6 used to give an empty window and -1 the last date read from the end.
    panel = Panel(wide_frame(), source="p.csv")
    with pytest.raises(ArgumentError) as excinfo:
        panel.window(t, 2)
    assert message(excinfo).startswith(
        f"p.csv: t={t!r} is not a date position of this panel; use an integer from 0 to 5 "
        "(2021-03-01..2021-03-08)"
    )
    with pytest.raises(ArgumentError, match=r"^p\.csv: ts=1000000 is not a date position"):
        panel.batch([3, 10**6], 2)
    assert panel.window(np.int64(5), 2).date == panel.dates[5]  # numpy integers are positions


# ---------------------------------------------------------------------------------------------
# bundled data and summary


@pytest.fixture(scope="module")
def sp500() -> Panel:
    return load_sp500()


def test_bundled_sp500_shape_dates_and_caveat(sp500):
    assert (sp500.n_dates, sp500.n_assets) == (8313, 20)
    assert sp500.dates[0] == pd.Timestamp("1990-01-02")
    assert sp500.dates[-1] == pd.Timestamp("2022-12-28")
    assert sp500.dates.is_monotonic_increasing and sp500.dates.is_unique
    assert np.isfinite(sp500.prices).all() and (sp500.prices > 0).all()
    caveat = sp500.survivorship_caveat
    assert caveat and "survivorship" in caveat.lower() and "hindsight" in caveat
    # the stocks are dividend-adjusted, the bundled index is not: said with the index only
    assert "price index, without dividends" in caveat
    assert "dividends" not in load_sp500(with_benchmark=False).survivorship_caveat
    assert "20 stocks" in sp500.source and "1990-01-02..2022-12-28" in sp500.source
    assert "skfolio" in sp500.source


def test_bundled_sp500_benchmark_is_the_index(sp500):
    bench = sp500.benchmark
    assert bench is not None and len(bench) == sp500.n_dates
    assert bench.notna().all()
    # The S&P 500 stood near 360 in January 1990 and near 3,800 in late 2022 (public record).
    assert 300 < bench.iloc[0] < 400 and 3500 < bench.iloc[-1] < 4200
    assert load_sp500(with_benchmark=False).benchmark is None


def test_summarize_reports_shape_dates_and_per_asset_spans(tmp_path):
    path = tmp_path / "w.csv"
    wide_frame().to_csv(path)
    info = summarize(load_prices(path))
    assert info["source"] == str(path)
    assert (info["n_dates"], info["n_assets"]) == (6, 3)
    assert (info["first_date"], info["last_date"]) == ("2021-03-01", "2021-03-08")
    assert info["n_missing"] == 2  # BBB before it lists; CCC's last price is held
    assert info["has_benchmark"] is False and info["survivorship_caveat"] is None
    by_asset = {row["asset"]: row for row in info["assets"]}
    assert by_asset["BBB"]["first_date"] == "2021-03-03" and by_asset["BBB"]["n_prices"] == 4
    # the last price in the data, then held two dates (up to max_ffill) before it delists
    assert by_asset["CCC"]["last_date"] == "2021-03-04" and by_asset["CCC"]["n_prices"] == 4
    assert by_asset["CCC"]["n_forward_filled"] == 2
    assert by_asset["AAA"]["n_prices"] == 6


def test_summarize_bundled(sp500):
    info = summarize(sp500)
    assert info["n_dates"] == 8313 and info["n_assets"] == 20
    assert info["survivorship_caveat"] == sp500.survivorship_caveat
    assert info["has_benchmark"] is True
    assert all(row["n_prices"] == 8313 for row in info["assets"])


def test_package_exports():
    for name in ("Panel", "Window", "WindowBatch", "load_sp500", "load_prices", "summarize"):
        assert name in kd.__all__ and hasattr(kd, name)
