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

A PBO near 0 means picking by backtest found what also wins out of sample; near 0.5 (or
above), that the ranking is noise the backtest overfitted. Sharpe ratios here are of daily
returns with the sample standard deviation (ddof 1); a set of days with zero variance gives
``+inf``, ``-inf`` or 0 by the sign of its mean (as for a cash strategy), so it ranks rather
than failing.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kabuto.errors import ArgumentError
from kabuto.evaluation.metrics import _as_returns

__all__ = ["MAX_BLOCKS", "BacktestOverfitting", "probability_of_backtest_overfitting"]

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
    # Centred per strategy, so that the sums of squares below do not cancel: the variance is
    # unchanged, and the mean is the centre plus the mean of the centred returns.
    centre = kept.mean(axis=0)
    centred = (kept - centre).reshape(s, block, n)
    sums, squares = centred.sum(axis=1), (centred**2).sum(axis=1)  # (S, N) each

    chosen = np.array(list(itertools.combinations(range(s), s // 2)))
    in_sample = np.zeros((len(chosen), s))
    np.put_along_axis(in_sample, chosen, 1.0, axis=1)
    half = block * (s // 2)
    sharpe_in = _sharpe(in_sample @ sums, in_sample @ squares, half, centre)
    sharpe_out = _sharpe((1 - in_sample) @ sums, (1 - in_sample) @ squares, half, centre)

    best = np.argmax(sharpe_in, axis=1)  # the first of tied winners
    winner = np.take_along_axis(sharpe_out, best[:, None], axis=1)
    below = (sharpe_out < winner).sum(axis=1)
    tied = (sharpe_out == winner).sum(axis=1)  # the winner itself included
    rank = below + (tied + 1) / 2  # 1 = worst; ties share the average rank
    share = rank / (n + 1)
    logits = np.log(share / (1 - share))
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        n_blocks=s,
        days_used=s * block,
        n_strategies=n,
    )


def _sharpe(sums: np.ndarray, squares: np.ndarray, count: int, centre: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratios of sets of `count` days from the sums of centred returns and of
    their squares, shape (splits, N); zero variance gives +-inf or 0 by the mean's sign."""
    mean = centre + sums / count
    variance = np.maximum(squares - sums**2 / count, 0.0) / (count - 1)
    sd = np.sqrt(variance)
    flat = sd <= 1e-15 * np.abs(mean)  # zero variance, up to the rounding of the centring
    limit = np.where(mean == 0, 0.0, np.copysign(np.inf, mean))
    return np.divide(mean, sd, out=limit, where=~flat & (sd > 0))


def _as_matrix(returns: pd.DataFrame | np.ndarray) -> np.ndarray:
    if isinstance(returns, pd.DataFrame):
        columns = [_as_returns(returns[c], f"returns[{c!r}]") for c in returns.columns]
        matrix = np.column_stack(columns) if columns else np.empty((len(returns), 0))
    else:
        matrix = np.asarray(returns)
        if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
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
