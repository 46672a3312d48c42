"""How a sweep's trials are ranked: within each scenario, exact repeats once.

The data and the cost level are the market a strategy meets, not a setting a researcher picks
(`kabuto.experiment.sweep`), so each scenario's trials get their own leaderboard: their own
trial count for the deflated Sharpe ratio, benchmark trial and probability of backtest
overfitting. The boards of several scenarios are stacked, with what each scenario found in
``attrs["scenarios"]`` (`kabuto.report.html.scenario_note` reads it).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from kabuto.backtest import BacktestResult
from kabuto.evaluation import leaderboard

if TYPE_CHECKING:
    from kabuto.experiment.sweep import Trial

__all__ = ["combine_trials", "rank_trials"]


def rank_trials(
    trials: list[Trial],
    results: list[BacktestResult],
    benchmark: str | None,
    *,
    n_boot: int,
    seed: int,
) -> tuple[BacktestResult, pd.DataFrame, dict[str, str]]:
    """The ranked trials as one result, their leaderboard, and the trials left out as exact
    repeats (module docstring): each scenario's trials are ranked on their own, with the
    benchmark strategy's first trial of the scenario as its benchmark."""
    groups: dict[str, list[int]] = {}
    for i, trial in enumerate(trials):
        groups.setdefault(json.dumps(trial.scenario, sort_keys=True, default=str), []).append(i)
    boards, same_as, ranked = [], {}, []
    for members in groups.values():
        seen: dict[bytes, str] = {}
        kept = []
        for i in members:
            returns = results[i][trials[i].strategy].net_returns.to_numpy()
            first = seen.setdefault(returns.tobytes(), trials[i].name)
            if first != trials[i].name:
                same_as[trials[i].name] = first
            else:
                kept.append(i)
        scenario = combine_trials([trials[i] for i in kept], [results[i] for i in kept])
        named = next((trials[i].name for i in members if trials[i].strategy == benchmark), None)
        boards.append(
            leaderboard(
                scenario,
                benchmark_strategy=same_as.get(named, named),
                n_boot=n_boot,
                seed=seed,
            )
        )
        ranked.extend(kept)
    combined = combine_trials([trials[i] for i in ranked], [results[i] for i in ranked])
    if len(boards) == 1:
        board = boards[0]
    else:
        board = pd.concat(boards)
        board.attrs = _scenario_attrs(trials, list(groups.values()), boards)
    board.attrs["repeated_trials"] = same_as  # metrics.json says why they are not ranked
    return combined, board, same_as


def _scenario_attrs(
    trials: list[Trial], groups: list[list[int]], boards: list[pd.DataFrame]
) -> dict[str, Any]:
    """The attrs of a board ranked scenario by scenario: what all share, and per scenario its
    values, benchmark, trial count, SR0 and PBO (`kabuto.report.html.scenario_note`)."""
    first = boards[0].attrs
    per = (
        "benchmark_strategy",
        "n_trials",
        "trial_sharpe_variance",
        "expected_max_sharpe",
        "mean_block",
        "pbo",
        "pbo_blocks",
    )
    scenarios = [
        {"values": trials[members[0]].scenario} | {k: board.attrs.get(k) for k in per}
        for members, board in zip(groups, boards, strict=True)
    ]
    return {
        "scenario_keys": list(trials[0].scenario),
        "scenarios": scenarios,
        **{k: first.get(k) for k in ("n_boot", "level", "seed")},
    }


def combine_trials(trials: list[Trial], results: list[BacktestResult]) -> BacktestResult:
    """The trials as one result, each strategy renamed to its trial's name (`plan_trials`
    put them all on the same dates)."""
    records = {
        trial.name: dataclasses.replace(result[trial.strategy], name=trial.name)
        for trial, result in zip(trials, results, strict=True)
    }
    return BacktestResult(
        strategies=records,
        settings=_swept_settings(trials, results),
        data_source=_joined(r.data_source for r in results),
        survivorship_caveat=_joined(r.survivorship_caveat for r in results) or None,
        benchmark_returns=_common_benchmark(results),
    )


def _joined(texts: Any) -> str:
    return "; ".join(dict.fromkeys(t for t in texts if t))


def _swept_settings(trials: list[Trial], results: list[BacktestResult]) -> dict:
    """The backtest settings, a swept one as the list of its values; each trial's strategy
    settings under its name."""
    backtests = [r.settings.get("backtest", {}) for r in results]
    merged = {}
    for key in backtests[0]:
        values = []
        for settings in backtests:
            if settings.get(key) not in values:
                values.append(settings.get(key))
        merged[key] = values[0] if len(values) == 1 else values
    strategies = {
        t.name: r.settings.get("strategies", {}).get(t.strategy, {})
        for t, r in zip(trials, results, strict=True)
    }
    return {"backtest": merged, "strategies": strategies}


def _common_benchmark(results: list[BacktestResult]) -> pd.Series | None:
    first = results[0].benchmark_returns
    for result in results[1:]:
        other = result.benchmark_returns
        if (first is None) != (other is None) or (first is not None and not first.equals(other)):
            return None  # trials on different data: no one benchmark
    return first
