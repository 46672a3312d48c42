"""Rewards for portfolio environments, computed for a batch of B environments at once.

Every reward is a function of the step's net simple return ``R_t`` (after costs), optionally
minus penalties::

    reward_t = base_t - turnover_penalty * turnover_t - drawdown_penalty * drawdown_t

with ``turnover_t = sum_i |w_i - w'_i|`` (the rebalance's traded notional, cash excluded) and
``drawdown_t = 1 - V_t / max_{s <= t} V_s`` (the episode's current drawdown after the step).

``base_t`` is one of:

``"log_return"``
    ``log(1 + R_t)``: summed over an episode it is the log growth of wealth (Jiang et al. 2017).

``"differential_sharpe"`` (Moody and Saffell 2001)
    Exponential moving estimates of the first and second moments of returns,
    ``a_t = a_{t-1} + eta (R_t - a_{t-1})`` and ``b_t = b_{t-1} + eta (R_t^2 - b_{t-1})`` from
    ``a_0 = b_0 = 0``, read bias-corrected (as Adam reads its moments) so that they are
    averages of the returns seen, not shrunk towards 0 at the start of an episode:
    ``A_t = a_t / (1 - (1 - eta)^t)``, likewise ``B_t``. The reward is

        D_t = (B_{t-1} dA_t - 0.5 A_{t-1} dB_t) / (B_{t-1} - A_{t-1}^2)^(3/2),

    with ``dA_t = R_t - A_{t-1}`` and ``dB_t = R_t^2 - B_{t-1}``. It is 0 over an episode's
    first `DSR_WARMUP` steps, and while there is no variance estimate (``B_{t-1} - A_{t-1}^2
    <= 1e-12 B_{t-1}``: only constant returns so far); the estimates are updated all along.
    With the raw moments from 0 (the paper's recursion read literally) the variance after one
    return is ``eta (1 - eta) R_1^2``, and a mostly-cash first step made the second reward
    about -3e8 against rewards of order 1 later.

``"sharpe_window"``
    The Sharpe ratio (mean / sample standard deviation, ddof=1, not annualized) of the last
    ``sharpe_window`` net returns of the episode, including this step's; fewer at the start of
    an episode. It is 0 until there are two returns, and when their variance is at most
    ``1e-12`` times their mean square (constant returns).
"""

from __future__ import annotations

import math

import numpy as np

from kabuto.errors import ConfigError

__all__ = ["DSR_WARMUP", "REWARDS", "RewardTracker", "differential_sharpe_ratio"]

REWARDS = ("log_return", "differential_sharpe", "sharpe_window")
_FLAT = 1e-12  # variance below this fraction of the second moment counts as none
#: Returns an episode's differential Sharpe ratio sees before its first nonzero reward: a
#: variance from fewer is too noisy to divide by (over 2,000 simulated episodes whose first
#: step is nearly cash, the largest |D| of the first 30 steps is 14 with 20, 31 with 10 and
#: 110 with 5, against 10 over the rest of the episode).
DSR_WARMUP = 20


class RewardTracker:
    """Per-environment reward state (moving moments, a window of returns) for B environments.

    Parameters
    ----------
    reward : {"log_return", "differential_sharpe", "sharpe_window"}
        Which reward (see the module docstring).
    num_envs : int
        B, the number of environments tracked.
    eta : float, default 0.01
        Adaptation rate of the differential Sharpe ratio's moving moments, in (0, 1).
    sharpe_window : int, default 20
        Returns in the trailing Sharpe ratio (at least 2).
    turnover_penalty, drawdown_penalty : float, default 0.0
        Non-negative coefficients of the penalties.

    Raises
    ------
    ConfigError
        For an unknown reward or a setting out of range.
    """

    def __init__(
        self,
        reward: str,
        num_envs: int,
        *,
        eta: float = 0.01,
        sharpe_window: int = 20,
        turnover_penalty: float = 0.0,
        drawdown_penalty: float = 0.0,
    ) -> None:
        check_reward_settings(reward, eta, sharpe_window, turnover_penalty, drawdown_penalty)
        self.reward = reward
        self.num_envs = int(num_envs)
        self.eta = float(eta)
        self.sharpe_window = int(sharpe_window)
        self.turnover_penalty = float(turnover_penalty)
        self.drawdown_penalty = float(drawdown_penalty)
        self._rows = np.arange(self.num_envs)
        self.A = np.zeros(self.num_envs)
        self.B = np.zeros(self.num_envs)
        self.count = np.zeros(self.num_envs, dtype=np.int64)
        width = self.sharpe_window if reward == "sharpe_window" else 1
        self.returns = np.zeros((self.num_envs, width))

    def reset(self, rows: np.ndarray | None = None) -> None:
        """Forget the state of the given environments (all when `rows` is None)."""
        rows = self._rows if rows is None else rows
        self.A[rows] = 0.0
        self.B[rows] = 0.0
        self.count[rows] = 0
        self.returns[rows] = 0.0

    def __call__(
        self,
        net_return: np.ndarray,
        turnover: np.ndarray,
        drawdown: np.ndarray,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rewards of one step for the given environments, updating their state.

        Parameters
        ----------
        net_return, turnover, drawdown : ndarray of shape (m,)
            The step's net simple return, traded notional and drawdown after the step.
        rows : ndarray of shape (m,) of int, optional
            Which environments these are (default: all B, in order).

        Returns
        -------
        ndarray of shape (m,)
        """
        rows = self._rows if rows is None else rows
        if self.reward == "log_return":
            base = np.log1p(net_return)
        elif self.reward == "differential_sharpe":
            base = self._differential_sharpe(net_return, rows)
        else:
            base = self._window_sharpe(net_return, rows)
        self.count[rows] += 1
        if self.turnover_penalty:
            base = base - self.turnover_penalty * turnover
        if self.drawdown_penalty:
            base = base - self.drawdown_penalty * drawdown
        return base

    def _differential_sharpe(self, r: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raw_a, raw_b, seen = self.A[rows], self.B[rows], self.count[rows]
        weight = -np.expm1(seen * math.log1p(-self.eta))  # 1 - (1 - eta)^seen; 0 when unseen
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(seen > 0, raw_a / weight, 0.0)
            b = np.where(seen > 0, raw_b / weight, 0.0)
            d_a, d_b = r - a, r * r - b
            variance = b - a * a
            ok = (seen >= DSR_WARMUP) & (variance > _FLAT * b)
            d = np.where(ok, (b * d_a - 0.5 * a * d_b) / np.where(ok, variance, 1.0) ** 1.5, 0.0)
        self.A[rows] = raw_a + self.eta * (r - raw_a)
        self.B[rows] = raw_b + self.eta * (r * r - raw_b)
        return d

    def _window_sharpe(self, r: np.ndarray, rows: np.ndarray) -> np.ndarray:
        k = self.sharpe_window
        count = self.count[rows]
        self.returns[rows, count % k] = r
        window = self.returns[rows]  # slots beyond the count are still 0
        n = np.minimum(count + 1, k)
        mean = window.sum(axis=1) / n
        valid = np.arange(k) < n[:, None]
        dev = np.where(valid, window - mean[:, None], 0.0)
        denom = np.maximum(n - 1, 1)
        variance = (dev * dev).sum(axis=1) / denom
        second = (window * window).sum(axis=1) / n
        ok = (n >= 2) & (variance > _FLAT * second)
        return np.where(ok, mean / np.sqrt(np.where(ok, variance, 1.0)), 0.0)


def differential_sharpe_ratio(returns: np.ndarray, eta: float = 0.01) -> np.ndarray:
    """Differential Sharpe ratios D_t of whole return paths (Moody and Saffell 2001).

    Parameters
    ----------
    returns : ndarray of shape (T,) or (T, B)
        Simple returns of one path or B paths, each an episode (its moments start afresh).
    eta : float, default 0.01
        Adaptation rate in (0, 1).

    Returns
    -------
    ndarray of the same shape
        ``D_t`` for every step (0 over the first `DSR_WARMUP` and while there is no variance
        estimate).
    """
    r = np.asarray(returns, dtype=np.float64)
    paths = r.reshape(len(r), -1)
    tracker = RewardTracker("differential_sharpe", paths.shape[1], eta=eta)
    zeros = np.zeros(paths.shape[1])
    out = np.stack([tracker(row, zeros, zeros) for row in paths]) if len(r) else paths
    return out.reshape(r.shape)


def check_reward_settings(
    reward: str,
    eta: float,
    sharpe_window: int,
    turnover_penalty: float,
    drawdown_penalty: float,
    episode_length: int | None = None,
) -> None:
    """Raise ConfigError naming the first reward setting out of range (with `episode_length`,
    also an episode too short for the differential Sharpe ratio's warm-up)."""
    if reward not in REWARDS:
        raise ConfigError(f"reward = {reward!r}: expected one of {', '.join(map(repr, REWARDS))}")
    if (
        reward == "differential_sharpe"
        and episode_length is not None
        and (episode_length <= DSR_WARMUP)
    ):
        raise ConfigError(
            f"episode_length = {episode_length}: the differential Sharpe reward is 0 for an "
            f"episode's first {DSR_WARMUP} steps (its warm-up), so every reward would be 0; use "
            f"episodes of more than {DSR_WARMUP} steps or another reward"
        )
    if not _is_number(eta) or not 0.0 < eta < 1.0:
        raise ConfigError(f"eta = {eta!r}: expected an adaptation rate in (0, 1), e.g. 0.01")
    if isinstance(sharpe_window, bool) or not isinstance(sharpe_window, int | np.integer):
        raise ConfigError(f"sharpe_window = {sharpe_window!r}: expected an integer >= 2")
    if sharpe_window < 2:
        raise ConfigError(
            f"sharpe_window = {sharpe_window}: a Sharpe ratio needs at least 2 returns"
        )
    for name, value in (
        ("turnover_penalty", turnover_penalty),
        ("drawdown_penalty", drawdown_penalty),
    ):
        if not _is_number(value) or value < 0:
            raise ConfigError(f"{name} = {value!r}: expected a number >= 0 (0 turns it off)")


def _is_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and math.isfinite(value)
    )
