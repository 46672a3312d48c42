"""The probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation.

Bailey, Borwein, Lopez de Prado and Zhu (2017), "The probability of backtest overfitting",
Journal of Computational Finance 20(4). A researcher backtests N strategies (or N settings of
one) and keeps the best. CSCV asks how often that choice generalises:

1. the T x N matrix of daily returns is cut into S blocks of consecutive days (S even; the
   oldest ``T mod S`` days are left out so that the blocks are equal);
2. for each of the ``C(S, S/2)`` ways to pick S/2 blocks as the in-sample set (the other S/2
   are the out-of-sample set, so every split is used both ways round), the strategy with the
   best in-sample Sharpe ratio, ``n*``, is found;
3. ``n*``'s out-of-sample Sharpe ratio gets its relative rank ``w = rank / (N + 1)`` among
   the N strategies' out-of-sample Sharpe ratios (rank 1 the worst, ties sharing the average
   rank), and the split its logit ``lambda = ln(w / (1 - w))``;
4. PBO is the share of splits with ``lambda <= 0``: the in-sample winner ranked at or below
   the median out of sample.

A PBO near 0 means picking by backtest found what also wins out of sample. When the ranking is
pure noise the winner's out-of-sample rank is uniform, and the expected PBO is 0.5 for an even
N and ``(N + 1) / (2 N)`` for an odd one (the median rank, ``lambda = 0``, counts): the
`noise_level`. One PBO varies widely around it, as its splits share their days. Sharpe ratios
here are of daily returns with the sample standard deviation (ddof 1); a set of days that all
have one return gives ``+inf``, ``-inf`` or 0 (a strategy in cash) by its sign, so it ranks
rather than failing. Identical strategies tie, share the average rank and so sit at the
median: two copies of one strategy alone give PBO 1 (the convention of the paper's rank).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kabuto.errors import ArgumentError
from kabuto.evaluation.metrics import _as_returns

__all__ = [
    "MAX_BLOCKS",
    "BacktestOverfitting",
    "noise_level",
    "probability_of_backtest_overfitting",
]

_SPLITS_PER_CHUNK = 2048

#: The most blocks allowed: C(20, 10) = 184,756 splits; 22 would be 705,432.
MAX_BLOCKS = 20


@dataclass(frozen=True)
class BacktestOverfitting:
    """What `probability_of_backtest_overfitting` found.

    Attributes
    ----------
    pbo : float
        Share of the splits whose logit is <= 0.
    logits : ndarray
        The logit of every split, shape (C(S, S/2),), in the order of
        ``itertools.combinations(range(S), S // 2)`` for the in-sample blocks.
    n_blocks : int
        S.
    days_used : int
        ``S * (T // S)``: the most recent days, in S blocks of ``T // S``.
    n_strategies : int
        N.
    """

    pbo: float
    logits: np.ndarray
    n_blocks: int
    days_used: int
    n_strategies: int


def noise_level(n_strategies: int) -> float:
    """The expected PBO of `n_strategies` whose ranking is noise (module docstring)."""
    n = n_strategies
    return 0.5 if n % 2 == 0 else (n + 1) / (2 * n)


def probability_of_backtest_overfitting(
    returns: pd.DataFrame | np.ndarray, n_blocks: int = 16
) -> BacktestOverfitting:
    """PBO of picking the best of the strategies (columns) by Sharpe ratio (module docstring).

    Parameters
    ----------
    returns : DataFrame or ndarray
        Daily returns, shape (T, N): one column per strategy, on the same days, no NaN.
    n_blocks : int, default 16
        S, even, from 2 to `MAX_BLOCKS`, with at least 2 days per block.

    Returns
    -------
    BacktestOverfitting

    Raises
    ------
    ArgumentError
        For fewer than two strategies, NaN or non-numeric returns, an odd or out-of-range
        `n_blocks`, or fewer than ``2 * n_blocks`` days.
    """
    matrix = _as_matrix(returns)
    days, n = matrix.shape
    s = _check_blocks(n_blocks, days)
    block = days // s
    kept = matrix[days - s * block :]
    # A Sharpe ratio does not change when a column is scaled: scaling each to at most 1 keeps
    # the squares below from under- or overflowing at any scale of returns.
    scale = np.abs(kept).max(axis=0)
    kept = kept / np.where(scale > 0, scale, 1.0)
    blocks = kept.reshape(s, block, n)
    # Each half's mean comes from the raw sums (exactly 0 for days in cash) and its variance
    # from sums centred on the column's mean (no cancellation); a half is flat exactly when
    # all of its blocks hold one value.
    raw = blocks.sum(axis=1)  # (S, N)
    centred = blocks - kept.mean(axis=0)
    sums, squares = centred.sum(axis=1), (centred**2).sum(axis=1)
    low, high = blocks.min(axis=1), blocks.max(axis=1)

    splits = itertools.combinations(range(s), s // 2)
    rank = np.empty(math.comb(s, s // 2))
    # Splits in chunks: each holds (splits, S / 2, N) arrays, which for all 184,756 splits of
    # 20 blocks would take gigabytes at a few hundred strategies.
    for first in range(0, rank.size, _SPLITS_PER_CHUNK):
        chosen = np.array(list(itertools.islice(splits, _SPLITS_PER_CHUNK)))
        others = np.array([sorted(set(range(s)) - set(c)) for c in chosen])
        sharpe_in, sharpe_out = (
            _sharpe(raw[half].sum(axis=1), sums[half].sum(axis=1), squares[half].sum(axis=1),
                    low[half].min(axis=1), high[half].max(axis=1), block * (s // 2))
            for half in (chosen, others)
        )  # fmt: skip
        best = np.argmax(sharpe_in, axis=1)  # the first of tied winners
        winner = np.take_along_axis(sharpe_out, best[:, None], axis=1)
        below = (sharpe_out < winner).sum(axis=1)
        tied = (sharpe_out == winner).sum(axis=1)  # the winner itself included
        rank[first : first + len(chosen)] = below + (tied + 1) / 2  # 1 = worst; ties average
    share = rank / (n + 1)
    logits = np.log(share / (1 - share))
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        n_blocks=s,
        days_used=s * block,
        n_strategies=n,
    )


def _sharpe(
    raw: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    count: int,
) -> np.ndarray:
    """Per-period Sharpe ratios of sets of `count` days, shape (splits, N), from the sums of
    their returns (`raw`), of the centred returns and their squares, and their least and
    greatest return; a set of one value gives +-inf, or 0 for zeros."""
    mean = raw / count
    variance = np.maximum(squares - sums**2 / count, 0.0) / (count - 1)
    flat = low == high
    limit = np.where(flat & (low == 0), 0.0, np.copysign(np.inf, low))
    return np.divide(mean, np.sqrt(variance), out=limit, where=~flat & (variance > 0))


def _as_matrix(returns: pd.DataFrame | np.ndarray) -> np.ndarray:
    if isinstance(returns, pd.DataFrame):
        columns = [
            _as_returns(returns.iloc[:, j], f"returns[{c!r}]")
            for j, c in enumerate(returns.columns)
        ]
        matrix = np.column_stack(columns) if columns else np.empty((len(returns), 0))
    else:
        matrix = np.asarray(returns)
        numeric = np.issubdtype(matrix.dtype, np.number) and not np.iscomplexobj(matrix)
        if matrix.ndim != 2 or not numeric:
            raise ArgumentError(
                f"returns must be a 2-D numeric array (days x strategies), got shape "
                f"{matrix.shape} and dtype {matrix.dtype}"
            )
        matrix = matrix.astype(float)
        if not np.isfinite(matrix).all():
            raise ArgumentError("returns contain NaN or infinite values; drop or fill them")
    if matrix.shape[1] < 2:
        raise ArgumentError(
            f"returns have {matrix.shape[1]} strategy column(s); PBO needs at least two to "
            "pick the best from"
        )
    return matrix


def _check_blocks(n_blocks: object, days: int) -> int:
    if (
        isinstance(n_blocks, bool)
        or not isinstance(n_blocks, int | np.integer)
        or not 2 <= n_blocks <= MAX_BLOCKS
        or n_blocks % 2
    ):
        raise ArgumentError(
            f"n_blocks={n_blocks!r} is not allowed; use an even integer from 2 to {MAX_BLOCKS} "
            f"(C({MAX_BLOCKS}, {MAX_BLOCKS // 2}) = {math.comb(MAX_BLOCKS, MAX_BLOCKS // 2):,} "
            "splits)"
        )
    if days < 2 * n_blocks:
        raise ArgumentError(
            f"{days} days of returns are too few for n_blocks={n_blocks} (2 days a block at "
            f"least); use fewer blocks or a longer backtest"
        )
    return int(n_blocks)
