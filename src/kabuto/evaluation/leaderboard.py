"""The leaderboard: one row per strategy of a backtest, with metrics and their uncertainty.

Every metric is computed on **net** returns (after costs) with the definitions of
`kabuto.evaluation.metrics`; the gross Sharpe ratio is a separate column. Beta and information
ratio are against the panel's benchmark index (`BacktestResult.benchmark_returns`) when it has
one. The inference columns come from `kabuto.evaluation.statistics`:

* ``sharpe_ci_low`` / ``sharpe_ci_high``: stationary-bootstrap percentile interval of the
  annualized net Sharpe ratio. All strategies are resampled on the **same** bootstrap days
  (one index draw, mean block length the largest Politis-White length among the strategies'
  net returns unless given), so the interval of any one strategy is reproduced by
  ``sharpe_confidence_interval(net, mean_block=board.attrs["mean_block"], n_boot=n_boot,
  seed=seed)``. Resamples with zero variance have no Sharpe ratio and are left out; the interval
  is ``nan`` for constant net returns (e.g. a cash strategy) and where more than 5% of the
  resamples have zero variance (a strategy with too few non-zero days), where
  `sharpe_confidence_interval` raises: one such strategy does not fail the whole board.
* ``psr``: probabilistic Sharpe ratio against a zero Sharpe ratio.
* ``dsr``: deflated Sharpe ratio with ``n_trials`` = the number of strategies in the result and
  ``V`` the sample variance (ddof=1) of their daily, non-annualized net Sharpe ratios (those
  that are finite; a constant series has none), computed exactly as
  `deflated_sharpe_ratio_from_trials` does -- the strategies on the board are taken to be the
  trials a user picks the best from. Every row is deflated by the same ``SR0``; the number is
  meant for the top row. Strategies tried but not kept in the result are not counted, so it is
  an upper bound when more were tried. With several strategies of which fewer than two have a
  finite Sharpe ratio, ``V`` is undefined and the column is ``nan``.
* ``sharpe_diff`` / ``sharpe_diff_pvalue``: annualized net Sharpe minus the benchmark
  strategy's and the two-sided p-value of the paired centered stationary-bootstrap test
  (`sharpe_difference_test`) on the same bootstrap days, over the resamples where both Sharpe
  ratios are defined; ``nan`` on the benchmark's own row, when there is no benchmark strategy,
  and (the p-value) where `sharpe_difference_test` would raise for too many undefined resamples.

One number is for the board as a whole: ``attrs["pbo"]``, the probability of backtest
overfitting of picking its best strategy by Sharpe ratio (`probability_of_backtest_overfitting`
on the net returns, the strategies on the board again the trials), with ``attrs["pbo_blocks"]``
blocks: 16, or for a backtest shorter than 32 days the largest even number giving 2 days a
block; ``attrs["pbo_strategies"]`` is how many strategies it ranked. ``nan`` (blocks None) with
one strategy or fewer than 4 days.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from kabuto.backtest.result import BacktestResult
from kabuto.errors import ArgumentError, ConfigError
from kabuto.evaluation.metrics import (
    SUMMARY_KEYS,
    _as_returns,
    _sharpe_along,
    summary,
)
from kabuto.evaluation.overfitting import probability_of_backtest_overfitting
from kabuto.evaluation.statistics import (
    SeedLike,
    _centered_bootstrap_test,
    _check_level,
    _check_seed,
    _deflation_benchmark,
    _percentile_interval,
    _psr,
    bootstrap_sharpes,
    optimal_block_length,
    probabilistic_sharpe_ratio,
)

__all__ = ["BOARD_STATISTICS", "LEADERBOARD_COLUMNS", "check_benchmark_strategy", "leaderboard"]

LEADERBOARD_COLUMNS: tuple[str, ...] = (
    *SUMMARY_KEYS,
    "gross_sharpe",
    "sharpe_ci_low",
    "sharpe_ci_high",
    "psr",
    "dsr",
    "sharpe_diff",
    "sharpe_diff_pvalue",
)
"""Columns of `leaderboard`, in order; each is defined in `metrics.METRIC_DEFINITIONS`."""

BOARD_STATISTICS: dict[str, str] = {
    "benchmark_strategy": "Strategy the Sharpe differences and their p-values are against.",
    "n_trials": "Strategies on the board: the trials behind the deflated Sharpe ratio.",
    "trial_sharpe_variance": (
        "Variance (ddof=1) of the trials' daily Sharpe ratios (not annualized; times 252 "
        "annualizes it)."
    ),
    "expected_max_sharpe": (
        "SR0, the best daily Sharpe ratio expected by luck among n_trials skill-less trials "
        "(not annualized; times sqrt(252) annualizes it); the DSR's threshold."
    ),
    "mean_block": "Mean block length of the stationary bootstrap, in trading days.",
    "n_boot": "Bootstrap replicates behind the Sharpe intervals and p-values.",
    "level": "Coverage of the Sharpe ratio intervals (0.95: 95%).",
    "seed": "Seed of the bootstrap.",
    "pbo": (
        "Probability of backtest overfitting (CSCV) of picking the board's best strategy by "
        "its Sharpe ratio."
    ),
    "pbo_blocks": "Blocks of dates CSCV splits the returns into (None: too few to compute it).",
    "pbo_strategies": "Strategies CSCV ranked.",
    # a sweep's board (kabuto.experiment.ranking)
    "scenario_keys": "Settings that make a scenario: trials are ranked within each.",
    "scenarios": (
        "Per scenario: its values and its own benchmark_strategy, n_trials, "
        "trial_sharpe_variance, expected_max_sharpe, mean_block, pbo and pbo_blocks."
    ),
    "repeated_trials": "Trials left unranked, each with the trial it repeats.",
}
"""Definition of each statistic of a board (its ``attrs``), written into ``metrics.json``."""


def _normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _default_benchmark(names: list[str]) -> str | None:
    """The first strategy whose name, lower-cased without punctuation, is or starts with
    ``equalweight`` (``EqualWeight``, ``equal_weight``, ``EqualWeight(M)``)."""
    keys = [_normalized(name) for name in names]
    for name, key in zip(names, keys, strict=True):
        if key == "equalweight":
            return name
    for name, key in zip(names, keys, strict=True):
        if key.startswith("equalweight"):
            return name
    return None


def _board_deflation(daily_sharpes: np.ndarray) -> tuple[float, float]:
    """``(trial_sharpe_variance, SR0)`` of the board, ``(nan, nan)`` when undefined.

    Too few finite Sharpe ratios leave the DSR column undefined (``nan``) rather than fail the
    whole board, whose other columns are still meaningful.
    """
    try:
        return _deflation_benchmark(daily_sharpes)
    except ArgumentError:
        return np.nan, np.nan


def _board_interval(observed: float, replicates: np.ndarray, level: float) -> tuple[float, float]:
    """`_percentile_interval`, ``(nan, nan)`` where it raises for too many undefined replicates.

    Like `_board_deflation`: a strategy that rarely trades leaves its own cells undefined rather
    than failing the whole board.
    """
    try:
        return _percentile_interval(observed, replicates, level)
    except ArgumentError:
        return np.nan, np.nan


def _board_pvalue(observed: float, replicates: np.ndarray, level: float) -> float:
    """`_centered_bootstrap_test`'s p-value, ``nan`` where it raises (see `_board_interval`)."""
    try:
        return _centered_bootstrap_test(observed, replicates, level)[0]
    except ArgumentError:
        return np.nan


# Blocks of the board's PBO: C(16, 8) = 12,870 splits, the paper's choice.
PBO_BLOCKS = 16


def _board_pbo(net: np.ndarray) -> tuple[float, int | None]:
    """The board's PBO and its number of blocks (see the module docstring)."""
    blocks = min(PBO_BLOCKS, net.shape[0] // 4 * 2)
    if net.shape[1] < 2 or blocks < 2:
        return float("nan"), None
    return probability_of_backtest_overfitting(net, blocks).pbo, blocks


def check_benchmark_strategy(benchmark_strategy: str, names: Sequence[str]) -> None:
    """ConfigError unless `benchmark_strategy` is one of the backtest's strategy `names`."""
    if benchmark_strategy not in names:
        raise ConfigError(
            f"benchmark_strategy={benchmark_strategy!r} is not a strategy of this backtest; "
            f"choose one of {list(names)}"
        )


def leaderboard(
    result: BacktestResult,
    *,
    benchmark_strategy: str | None = None,
    level: float = 0.95,
    n_boot: int = 2000,
    mean_block: float | None = None,
    seed: SeedLike = 0,
) -> pd.DataFrame:
    """One row per strategy with summary metrics and Sharpe-ratio inference.

    Parameters
    ----------
    result : BacktestResult
        Strategies on the same dates.
    benchmark_strategy : str, optional
        Strategy the others' Sharpe ratios are tested against. Default: the strategy named
        ``EqualWeight`` (case, ``_``, ``-`` and spaces ignored; else the first whose name starts
        so), or none.
    level : float, default 0.95
        Coverage of the Sharpe-ratio intervals.
    n_boot : int, default 2000
        Stationary-bootstrap replicates, shared by all strategies.
    mean_block : float, optional
        Mean block length in days; default the largest `optimal_block_length` of the net returns.
    seed : int, Generator or None, default 0

    Returns
    -------
    DataFrame
        Index ``strategy``, columns `LEADERBOARD_COLUMNS` (definitions in
        `metrics.METRIC_DEFINITIONS`), sorted by net Sharpe ratio descending (NaN last). ``attrs``
        holds ``benchmark_strategy``, ``n_trials``, ``trial_sharpe_variance`` (daily),
        ``expected_max_sharpe`` (daily SR0), ``mean_block``, ``n_boot``, ``level``, ``seed``
        (an int seed, else None), ``pbo``, ``pbo_blocks`` and ``pbo_strategies``.

    Raises
    ------
    ConfigError
        If the result has no strategies, or ``benchmark_strategy`` (the run config's
        ``report.benchmark_strategy``) is not one of them.
    ArgumentError
        If the strategies' net returns are not on the same dates or contain NaN, or ``level``,
        ``n_boot``, ``mean_block`` or ``seed`` is out of range.
    """
    _check_level(level)
    _check_seed(seed)  # before the metrics, not after them
    names = result.names
    if not names:
        raise ConfigError("the backtest result has no strategies to rank")
    if benchmark_strategy is None:
        benchmark_strategy = _default_benchmark(names)
    else:
        check_benchmark_strategy(benchmark_strategy, names)

    first_index = result[names[0]].net_returns.index
    for name in names[1:]:
        if not result[name].net_returns.index.equals(first_index):
            raise ArgumentError(
                f"strategy {name!r} has net returns on different dates from {names[0]!r}; "
                "a leaderboard compares strategies on the same dates"
            )
    net = np.column_stack([_as_returns(result[n].net_returns, f"{n} net_returns") for n in names])
    gross = {n: _as_returns(result[n].gross_returns, f"{n} gross_returns") for n in names}

    rows = {n: summary(result[n], result.benchmark_returns) for n in names}
    for n in names:
        rows[n]["gross_sharpe"] = float(_sharpe_along(gross[n]))

    # Bootstrap: one draw of days shared by every strategy.
    if mean_block is None:
        mean_block = max(optimal_block_length(net[:, j]) for j in range(net.shape[1]))
    boot = bootstrap_sharpes(net, n_boot=n_boot, mean_block=mean_block, seed=seed)

    # Deflation: the strategies on the board are the trials.
    variance, sr0 = _board_deflation(_sharpe_along(net, axis=0, periods=1))

    bench_j = names.index(benchmark_strategy) if benchmark_strategy is not None else None
    for j, n in enumerate(names):
        row = rows[n]
        row["sharpe_ci_low"], row["sharpe_ci_high"] = _board_interval(
            row["sharpe"], boot[:, j], level
        )
        row["psr"] = probabilistic_sharpe_ratio(net[:, j], 0.0)
        row["dsr"] = _psr(net[:, j], sr0)
        row["sharpe_diff"] = np.nan
        row["sharpe_diff_pvalue"] = np.nan
        if bench_j is not None and j != bench_j:
            diff = row["sharpe"] - rows[benchmark_strategy]["sharpe"]
            with np.errstate(invalid="ignore"):  # inf - inf: undefined, left out by the test
                replicates = boot[:, j] - boot[:, bench_j]
            row["sharpe_diff"] = float(diff)
            row["sharpe_diff_pvalue"] = _board_pvalue(diff, replicates, level)

    board = pd.DataFrame.from_dict(rows, orient="index").loc[:, list(LEADERBOARD_COLUMNS)]
    board.index.name = "strategy"
    board = board.sort_values("sharpe", ascending=False, kind="mergesort", na_position="last")
    pbo, pbo_blocks = _board_pbo(net)
    board.attrs.update(
        benchmark_strategy=benchmark_strategy,
        n_trials=len(names),
        trial_sharpe_variance=variance,
        expected_max_sharpe=sr0,
        mean_block=float(mean_block),
        n_boot=n_boot,
        level=level,
        # numbers.Integral, so a numpy integer seed is recorded too (as a plain int for JSON).
        seed=int(seed) if isinstance(seed, numbers.Integral) else None,
        pbo=pbo,
        pbo_blocks=pbo_blocks,
        pbo_strategies=len(names),
    )
    return board
