"""Performance metrics, statistical tests and leaderboards.

Metric definitions live in `kabuto.evaluation.metrics` (documented once, in its docstring);
inference on Sharpe ratios in `kabuto.evaluation.statistics`; the probability of backtest
overfitting in `kabuto.evaluation.overfitting`; the per-strategy table in
`kabuto.evaluation.leaderboard`.
"""

from kabuto.evaluation.leaderboard import (
    LEADERBOARD_COLUMNS,
    leaderboard,
)
from kabuto.evaluation.metrics import (
    ANNUALIZATION,
    METRIC_DEFINITIONS,
    SUMMARY_KEYS,
    beta,
    cagr,
    calmar,
    costs_per_year,
    cvar,
    downside_deviation,
    drawdowns,
    hit_rate,
    information_ratio,
    max_drawdown,
    sharpe,
    sortino,
    summary,
    total_return,
    turnover_per_year,
    volatility,
)
from kabuto.evaluation.overfitting import (
    BacktestOverfitting,
    probability_of_backtest_overfitting,
)
from kabuto.evaluation.statistics import (
    bootstrap_sharpes,
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_from_trials,
    expected_maximum_sharpe,
    jobson_korkie_test,
    optimal_block_length,
    probabilistic_sharpe_ratio,
    sharpe_confidence_interval,
    sharpe_difference_test,
    stationary_bootstrap_indices,
)

__all__ = [
    "ANNUALIZATION",
    "LEADERBOARD_COLUMNS",
    "METRIC_DEFINITIONS",
    "SUMMARY_KEYS",
    "BacktestOverfitting",
    "beta",
    "bootstrap_sharpes",
    "cagr",
    "calmar",
    "costs_per_year",
    "cvar",
    "deflated_sharpe_ratio",
    "deflated_sharpe_ratio_from_trials",
    "downside_deviation",
    "drawdowns",
    "expected_maximum_sharpe",
    "hit_rate",
    "information_ratio",
    "jobson_korkie_test",
    "leaderboard",
    "max_drawdown",
    "optimal_block_length",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "sharpe",
    "sharpe_confidence_interval",
    "sharpe_difference_test",
    "sortino",
    "stationary_bootstrap_indices",
    "summary",
    "total_return",
    "turnover_per_year",
    "volatility",
]
