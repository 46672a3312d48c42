"""What a rebalance costs: the fraction of wealth that survives it (the remainder factor mu).

A rebalance at the close of date t moves the book from the drifted weights ``w'`` (what the
portfolio holds after prices moved) to the target weights ``w``. Weight vectors here include
cash at index 0, so they have ``n + 1`` entries and sum to 1. Trading costs shrink wealth by a
factor ``mu`` in (0, 1]: wealth ``p'`` before the trade becomes ``mu * p'`` after it, invested at
``w``.

Two models:

``"proportional"`` (kabuto's backtest convention, DESIGN.md "Weights and costs")
    ``mu = 1 - sum_i c_i |w_i - w'_i|`` over the assets i = 1..n (cash trades for free). This is
    exactly how `kabuto.backtest.WalkForward` books costs: its net return of t -> t+1 is
    ``(1 + gross) * (1 - cost) - 1`` with ``cost = sum_i c_i |w_i - w'_i|``.

``"exact"`` (Jiang, Xu and Liang 2017, arXiv 1706.10059, eqs. (14)-(16))
    Selling pays the rate ``c_s`` on what is sold, buying pays ``c_p`` on what is bought, and the
    cash must balance. The remainder factor solves

        mu = [1 - c_p w'_0 - (c_s + c_p - c_s c_p) sum_{i>=1} (w'_i - mu w_i)^+] / (1 - c_p w_0).

    The right-hand side is non-decreasing in mu with slope at most ``c_s + c_p - c_s c_p < 1``,
    so the fixed-point iteration contracts; it starts from the proportional approximation and
    stops when successive iterates differ by at most ``tol``. With ``c_s = c_p = c`` the solution
    lies in ``[1 - 2c + c^2, 1]``, within ``O(c^2)`` of the proportional value.

The remainder and turnover functions are vectorised over any leading batch shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from kabuto.errors import ArgumentError, ConfigError

__all__ = [
    "COST_MODELS",
    "proportional_remainder",
    "subset_costs",
    "transaction_remainder",
    "turnover",
]

COST_MODELS = ("proportional", "exact")
# Slack of the weight checks: weights a network computed in float32 sum to 1 only within about
# 1e-7, and a sum off by 1e-6 moves the remainder factor by about c * 1e-6, far below anything
# that matters; NaN, negative weights and sums like 0.9 or 1.5 are what the check is for.
_WEIGHT_TOL = 1e-6


def subset_costs(
    costs_bps: float | Mapping[str, float], assets: Sequence[str]
) -> float | dict[str, float]:
    """`costs_bps` cut down to a training subset of the data's assets.

    A learner trains on the assets with enough history, so a per-asset mapping may name assets
    outside the subset (listed later, delisted, or too short a history), and
    `kabuto.costs.cost_rates` would reject those names as unknown. The backtest checks the
    names against the whole panel; here only the subset's entries and ``"default"`` are kept.

    Parameters
    ----------
    costs_bps : float or mapping
        One rate in bps, or asset -> bps with an optional ``"default"``.
    assets : sequence of str
        The assets trained on.

    Returns
    -------
    float or dict
        A number unchanged; a mapping as a new dict of the entries that apply to `assets`.
    """
    if not isinstance(costs_bps, Mapping):
        return costs_bps
    keep = {*assets, "default"}
    return {key: value for key, value in costs_bps.items() if key in keep}


def turnover(w_drifted: np.ndarray, w_target: np.ndarray) -> np.ndarray:
    """Traded notional of a rebalance, ``sum_{i>=1} |w_i - w'_i|`` (cash excluded).

    This is the backtest's per-rebalance turnover.

    Parameters
    ----------
    w_drifted, w_target : ndarray of shape (..., n + 1)
        Weights before and after the trade, cash at index 0.

    Returns
    -------
    ndarray of shape (...)
    """
    return np.abs(w_target[..., 1:] - w_drifted[..., 1:]).sum(axis=-1)


def proportional_remainder(
    w_drifted: np.ndarray, w_target: np.ndarray, rates: float | np.ndarray
) -> np.ndarray:
    """Remainder factor of the backtest's proportional cost: ``1 - sum_i c_i |w_i - w'_i|``.

    Parameters
    ----------
    w_drifted, w_target : ndarray of shape (..., n + 1)
        Weights before and after the trade, cash at index 0.
    rates : float or ndarray of shape (n,)
        Cost per unit of traded notional (fractions, not bps), global or per asset.

    Returns
    -------
    ndarray of shape (...)
        ``mu``; the cost paid is ``1 - mu`` of the wealth before the trade.
    """
    traded = np.abs(w_target[..., 1:] - w_drifted[..., 1:])
    if np.ndim(rates) == 0:
        return 1.0 - float(rates) * traded.sum(axis=-1)
    return 1.0 - traded @ np.asarray(rates, dtype=np.float64)


def transaction_remainder(
    w_drifted: np.ndarray,
    w_target: np.ndarray,
    c_sell: float,
    c_purchase: float | None = None,
    *,
    tol: float = 1e-14,
    max_iter: int = 1000,
) -> np.ndarray:
    """Exact remainder factor mu of Jiang, Xu and Liang (2017), eq. (14), by fixed-point iteration.

    Parameters
    ----------
    w_drifted : ndarray of shape (..., n + 1)
        Weights before the trade (``w'``), cash at index 0; each row sums to 1.
    w_target : ndarray of shape (..., n + 1)
        Weights after the trade (``w``), cash at index 0; each row sums to 1.
    c_sell : float
        Commission rate on sales ``c_s`` (a fraction in [0, 1), 10 bps = 0.001).
    c_purchase : float, optional
        Commission rate on purchases ``c_p``; defaults to ``c_sell``.
    tol : float, default 1e-14
        Stop when successive iterates differ by at most this much (the equation's residual is
        then below ``tol`` as well, since the map contracts).
    max_iter : int, default 1000
        Iteration limit; hitting it raises.

    Returns
    -------
    ndarray of shape (...)
        ``mu`` in (0, 1]: the fraction of wealth that survives the rebalance.

    Raises
    ------
    ConfigError
        For rates outside [0, 1), or when the iteration does not converge.
    ArgumentError
        For weights that are not finite, negative or do not sum to 1 (within 1e-6), naming the
        first such row.
    """
    c_purchase = c_sell if c_purchase is None else c_purchase
    for name, c in (("c_sell", c_sell), ("c_purchase", c_purchase)):
        if not (isinstance(c, int | float | np.floating) and 0.0 <= c < 1.0):
            raise ConfigError(f"{name} = {c!r}: expected a commission rate in [0, 1)")
    w_drifted = np.asarray(w_drifted, dtype=np.float64)
    w_target = np.asarray(w_target, dtype=np.float64)
    if w_drifted.shape != w_target.shape or w_drifted.shape[-1] < 2:
        raise ConfigError(
            f"weights of shapes {w_drifted.shape} and {w_target.shape}: expected the same shape "
            "(..., n + 1) with cash at index 0"
        )
    _check_weights("w_drifted", w_drifted)
    _check_weights("w_target", w_target)
    k = c_sell + c_purchase - c_sell * c_purchase
    numerator = 1.0 - c_purchase * w_drifted[..., 0]
    denominator = 1.0 - c_purchase * w_target[..., 0]
    held, target = w_drifted[..., 1:], w_target[..., 1:]
    # Start from the proportional approximation at the mean rate (exact for pure buys or sells).
    c_mean = 0.5 * (c_sell + c_purchase)
    mu = np.clip(1.0 - c_mean * np.abs(target - held).sum(axis=-1), 1.0 - k, 1.0)
    for _ in range(max_iter):
        sold = np.maximum(held - mu[..., None] * target, 0.0).sum(axis=-1)
        new = (numerator - k * sold) / denominator
        step = np.abs(new - mu)
        mu = new
        if not step.size or step.max() <= tol:
            return mu
    raise ConfigError(
        f"the remainder factor did not converge in {max_iter} iterations (c_sell = {c_sell}, "
        f"c_purchase = {c_purchase}); raise max_iter or tol"
    )


def _check_weights(name: str, w: np.ndarray) -> None:
    """Raise unless every row of `w` is a weight vector: finite, >= 0, summing to 1.

    The fixed point only contracts for such weights; NaN would otherwise run to `max_iter` and
    be reported as a convergence failure. A few vectorised passes, no Python loop over rows.
    """
    bad_entry = ~np.isfinite(w) | (w < -_WEIGHT_TOL)
    bad_row = bad_entry.any(axis=-1) | (np.abs(w.sum(axis=-1) - 1.0) > _WEIGHT_TOL)
    if not bad_row.any():
        return
    row = np.unravel_index(int(np.argmax(bad_row)), bad_row.shape)
    values = w[row]
    where = f"{name}[{', '.join(map(str, row))}]" if row else name
    raise ArgumentError(
        f"{where} = {np.array2string(values, precision=6)} (sum {values.sum():.6g}): expected "
        f"finite weights >= 0 summing to 1 (cash at index 0, within {_WEIGHT_TOL:g}); pass "
        "weight vectors over cash and the assets"
    )
