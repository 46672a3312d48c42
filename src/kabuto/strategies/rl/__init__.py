"""Reinforcement learning for portfolio management: gymnasium environments with honest timing.

`PortfolioEnv` (one environment) and `PortfolioVectorEnv` (B environments stepped together in
numpy) replay a `Panel` with the walk-forward backtest's timing and cost accounting: the agent
decides at the close of t from data up to t, pays for trading from its drifted weights to its
target, and earns the return from t to t+1. Costs follow the backtest
(``cost_model="proportional"``) or Jiang, Xu and Liang (2017)'s exact remainder factor
(``"exact"``); rewards are the log return, Moody and Saffell's differential Sharpe ratio or a
trailing Sharpe ratio, with optional turnover and drawdown penalties.

`EIIE` (Jiang, Xu, Liang 2017) is a strategy trained through the differentiable cost model with
a portfolio-vector memory.
"""

from kabuto.costs import cost_rates
from kabuto.strategies.rl.agents import RLAgent
from kabuto.strategies.rl.costs import (
    COST_MODELS,
    proportional_remainder,
    transaction_remainder,
    turnover,
)
from kabuto.strategies.rl.eiie import EIIE
from kabuto.strategies.rl.env import (
    ACTION_MAPS,
    PortfolioEnv,
    actions_to_weights,
    split_observation,
)
from kabuto.strategies.rl.rewards import REWARDS, RewardTracker, differential_sharpe_ratio
from kabuto.strategies.rl.vector import PortfolioVectorEnv

__all__ = [
    "ACTION_MAPS",
    "COST_MODELS",
    "EIIE",
    "REWARDS",
    "PortfolioEnv",
    "PortfolioVectorEnv",
    "RLAgent",
    "RewardTracker",
    "actions_to_weights",
    "cost_rates",
    "differential_sharpe_ratio",
    "proportional_remainder",
    "split_observation",
    "transaction_remainder",
    "turnover",
]
