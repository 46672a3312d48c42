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

All functions are vectorised over any leading batch shape.
"""

from __future__ import annotations

import numpy as np

from kabuto.errors import ConfigError

__all__ = [
    "COST_MODELS",
    "proportional_remainder",
    "transaction_remainder",
    "turnover",
]

COST_MODELS = ("proportional", "exact")


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
