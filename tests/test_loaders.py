"""Price files whose header pandas would quietly repair are errors naming the column."""

from __future__ import annotations

import pytest

from kabuto.data import load_prices
from kabuto.errors import DataError

ROWS = "2020-01-02,10,20,30\n2020-01-03,11,21,31\n2020-01-06,12,19,29\n"


@pytest.mark.parametrize(
    ("header", "needles"),
    [
        ("date,AAA,AAA,BBB", ["'AAA' appears more than once", "columns 2 and 3"]),
        ("date,AAA,BBB, AAA", ["'AAA' appears more than once", "columns 2 and 4"]),
        ("date,AAA,,BBB", ["column 3 of the header has no name"]),
        (",AAA,BBB,CCC", ["column 1 of the header has no name"]),
    ],
)
def test_duplicate_or_blank_column_names_are_errors(tmp_path, header, needles):
    path = tmp_path / "prices.csv"
    path.write_text(f"{header}\n{ROWS}")
    with pytest.raises(DataError) as error:
        load_prices(path)
    message = str(error.value)
    assert message.startswith(str(path))
    for needle in needles:
        assert needle in message, message


def test_distinct_column_names_load(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text(f"date, AAA,BBB ,CCC\n{ROWS}")
    assert list(load_prices(path).assets) == ["AAA", "BBB", "CCC"]
