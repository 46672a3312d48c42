"""Validation and repair of raw price tables (stub: completed by the data loaders work)."""

from __future__ import annotations

import pandas as pd


def clean_prices(prices: pd.DataFrame, *, source: str, max_ffill: int) -> pd.DataFrame:
    """Validate a wide price table and repair what may be repaired; see module docs."""
    return prices.sort_index().astype("float64")
