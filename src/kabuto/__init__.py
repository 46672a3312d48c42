"""kabuto: learning-based quantitative investment research with honest walk-forward backtests."""

from kabuto.errors import KabutoError

__version__ = "0.1.0"

__all__ = ["KabutoError", "__version__"]
