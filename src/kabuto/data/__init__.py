"""Market data: the `Panel`, loaders and validation."""

from kabuto.data.loaders import load_prices, load_sp500, summarize
from kabuto.data.panel import Panel, Window, WindowBatch

__all__ = ["Panel", "Window", "WindowBatch", "load_prices", "load_sp500", "summarize"]
