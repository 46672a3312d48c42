"""What a backtest returns: per-strategy daily returns, weights, turnover and costs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class StrategyResult:
    """One strategy's walk-forward record.

    Attributes
    ----------
    name : str
    gross_returns, net_returns : Series
        Daily simple returns of the whole book (assets and cash) before and after costs, indexed
        by the date each return is earned on (the first is the day after the first decision).
    costs : Series
        Daily cost paid, as a fraction of wealth before the trade. A trade at the close of date
        t is booked on the next date (it reduces the wealth that earns t -> t+1), so costs are
        non-zero on the dates after rebalances and after delisting sales.
    turnover : Series
        Per rebalance date: traded notional ``sum |w_target - w_drifted|`` as a fraction of
        wealth (two-way; one-way turnover is half of it), plus the notional of positions sold
        on delisting before the next rebalance, each as a fraction of the wealth on its day.
        So ``costs.sum() == c * turnover.sum()`` at a uniform cost rate c.
    target_weights : DataFrame
        Rebalance dates x assets: weights chosen at the close of each date (held from the next).
    drifted_weights : DataFrame
        Rebalance dates x assets: weights the book had drifted to just before each trade.
    """

    name: str
    gross_returns: pd.Series
    net_returns: pd.Series
    costs: pd.Series
    turnover: pd.Series
    target_weights: pd.DataFrame
    drifted_weights: pd.DataFrame

    @property
    def rebalance_dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.target_weights.index)


@dataclass(frozen=True)
class BacktestResult:
    """All strategies of one run, on the same dates, with the settings that produced them.

    Attributes
    ----------
    strategies : dict of name -> StrategyResult
    settings : dict
        Resolved settings (start, lookback, schedules, costs, constraints), printed in reports.
    data_source : str
        Provenance of the panel.
    survivorship_caveat : str or None
        Printed beside every figure when set (the bundled data has survivorship bias).
    benchmark_returns : Series or None
        Daily returns of the panel's benchmark index on the same dates, when it has one.
    """

    strategies: dict[str, StrategyResult]
    settings: dict = field(default_factory=dict)
    data_source: str = "user data"
    survivorship_caveat: str | None = None
    benchmark_returns: pd.Series | None = None

    def __getitem__(self, name: str) -> StrategyResult:
        return self.strategies[name]

    @property
    def names(self) -> list[str]:
        return list(self.strategies)

    def net_returns(self) -> pd.DataFrame:
        """Daily net returns, dates x strategies."""
        return pd.DataFrame({n: r.net_returns for n, r in self.strategies.items()})

    def gross_returns(self) -> pd.DataFrame:
        """Daily gross returns, dates x strategies."""
        return pd.DataFrame({n: r.gross_returns for n, r in self.strategies.items()})
