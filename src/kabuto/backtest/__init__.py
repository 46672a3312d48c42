"""The walk-forward engine: schedules, execution, costs and accounting."""

from kabuto.backtest.engine import WalkForward
from kabuto.backtest.result import BacktestResult, StrategyResult

__all__ = ["BacktestResult", "StrategyResult", "WalkForward"]
