"""Market data: the `Panel`, loaders and validation."""

from kabuto.data.panel import Panel, Window, WindowBatch

__all__ = ["Panel", "Window", "WindowBatch"]
