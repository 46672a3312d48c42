"""Shared harness of the oracle benchmarks: strategies on fresh factor markets, scored by oracle.

For each seed, `score_seeds` simulates a factor market (`kabuto.sim.factor_market`), builds the
strategies (the oracle among them) and runs ONE walk-forward with all of them, so they share the
decision dates (from the longest ``min_history`` on), rebalancing, retraining, timing and costs
(long-short, gross leverage 1). `print_scores` prints each strategy's net Sharpe ratio per seed,
the mean, the mean of the per-seed ratios to the oracle's, and the mean daily one-way turnover.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kabuto.backtest import WalkForward
from kabuto.evaluation.metrics import sharpe
from kabuto.sim.factor_market import FactorMarket, factor_market


@dataclass
class Scores:
    """Net Sharpe ratios and daily turnover per strategy name, one entry per seed."""

    seeds: list[int]
    sharpe: dict[str, list[float]] = field(default_factory=dict)
    turnover: dict[str, list[float]] = field(default_factory=dict)

    def mean_ratio(self, name: str, oracle: str) -> float:
        """Mean over seeds of the strategy's net Sharpe over the oracle's; NaN unless the
        oracle's is positive on every seed (a ratio to a losing oracle means nothing: -2.19
        over -0.67 read as 3.25 times the oracle)."""
        theirs = np.array(self.sharpe[oracle])
        if not (theirs > 0).all():
            return float("nan")
        return float(np.mean(np.array(self.sharpe[name]) / theirs))


def score_seeds(
    seeds: Sequence[int],
    build: Callable[[FactorMarket], list],
    *,
    n_assets: int,
    n_days: int,
    market_settings: dict | None = None,
    rebalance: int | str = 5,
    retrain: str = "yearly",
    costs_bps: float = 10.0,
    first: int | None = None,
) -> Scores:
    """Run every strategy `build` returns on one factor market per seed (see module docs).

    `first` is the row of the first decision (default: the strategies' longest min_history).
    """
    scores = Scores(list(seeds))
    for seed in seeds:
        started = time.perf_counter()
        market = factor_market(n_assets, n_days, seed=seed, **(market_settings or {}))
        strategies = build(market)
        start = (
            max(getattr(s, "min_history", s.lookback) for s in strategies)
            if first is None
            else first
        )
        if start >= n_days - 1:
            raise SystemExit(
                f"n_days={n_days} leaves no day to trade after the first decision at row "
                f"{start} (the strategies' longest history); use more days"
            )
        engine = WalkForward(
            start=market.panel.dates[start],
            rebalance=rebalance,
            retrain=retrain,
            costs_bps=costs_bps,
            long_only=False,
            max_leverage=1.0,
        )
        result = engine.run(market.panel, strategies)
        for s in strategies:
            record = result.strategies[s.name]
            scores.sharpe.setdefault(s.name, []).append(sharpe(record.net_returns))
            # mean one-way traded notional per day: the record's turnover is two-way
            per_day = record.turnover.sum() / 2 / len(record.net_returns)
            scores.turnover.setdefault(s.name, []).append(float(per_day))
        days = len(next(iter(result.strategies.values())).net_returns)
        print(
            f"seed {seed}: {days} trading days from "
            f"{result.settings['backtest']['first_decision']}, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return scores


def print_scores(scores: Scores, oracle: str) -> None:
    """The table of net Sharpe ratios, their mean, the ratio to the oracle and turnover."""
    width = max(len(n) for n in scores.sharpe) + 1
    header = f"{'net Sharpe':<{width}}" + "".join(f"{s:>7}" for s in scores.seeds)
    print(header + f"{'mean':>7}{'/oracle':>9}{'turn/day':>10}")
    for name, values in scores.sharpe.items():
        v = np.array(values)
        print(
            f"{name:<{width}}"
            + "".join(f"{x:7.2f}" for x in v)
            + f"{v.mean():7.2f}{scores.mean_ratio(name, oracle):9.2f}"
            + f"{np.mean(scores.turnover[name]):10.2f}"
        )


def print_comparison(scores: Scores, subject: str, oracle: str, target: float | None) -> bool:
    """The subject's ratio to the oracle (against `target`) and whether it beats each other
    strategy on the mean, with the paired gap's standard error over seeds (a "yes" within two
    standard errors is not evidence); returns True when it beats all of them on the mean."""
    mine = np.array(scores.sharpe[subject])
    ratio = scores.mean_ratio(subject, oracle)
    oracle_mean = np.mean(scores.sharpe[oracle])
    verdict = (
        ""
        if target is None
        else f" (target >= {target:.2f}): " + ("MET" if ratio >= target else "NOT MET")
    )
    if oracle_mean > 0 and np.isfinite(ratio):
        print(
            f"{subject} / oracle net Sharpe: mean of per-seed ratios {ratio:.2f}, ratio of means "
            f"{mine.mean() / oracle_mean:.2f}{verdict}"
        )
    else:
        print(
            f"{subject} / oracle net Sharpe: n/a, the oracle's net Sharpe is not positive on "
            "every seed (a ratio to it would mean nothing)" + (": NOT MET" if target else "")
        )
    width = max(len(n) for n in scores.sharpe) + 1
    beats_all = True
    for name, values in scores.sharpe.items():
        if name in (oracle, subject):
            continue
        v = np.array(values)
        beats = bool(mine.mean() > v.mean())
        beats_all &= beats
        # Paired over seeds (the same market per seed): the mean gap and its standard error.
        gaps = mine - v
        error = gaps.std(ddof=1) / np.sqrt(len(gaps)) if len(gaps) > 1 else float("nan")
        clear = "beyond 2 s.e." if abs(gaps.mean()) > 2 * error else "within 2 s.e."
        print(
            f"  beats {name:<{width}}: {'yes' if beats else 'NO '} (mean {mine.mean():.2f} vs "
            f"{v.mean():.2f}; gap {gaps.mean():+.2f} +- {error:.2f}, {clear}; on "
            f"{int((mine > v).sum())}/{len(v)} seeds)"
        )
    print(f"beats every other strategy on the mean: {'yes' if beats_all else 'NO'}")
    return beats_all
