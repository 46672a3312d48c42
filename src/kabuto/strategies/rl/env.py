"""`PortfolioEnv`: a gymnasium environment for portfolio management over a `Panel`.

Timing (the backtest's, DESIGN.md "Timing")
    At decision index t the agent observes closes up to and including date t and the weights it
    holds, drifted to the close of t. Its action is turned into target weights ``w`` over cash
    and the n assets. It pays the cost of trading from the drifted weights ``w'`` to ``w``
    (a remainder factor ``mu``, see `kabuto.strategies.rl.costs`), then earns the price
    relatives ``y = close[t+1] / close[t]`` (cash: 1)::

        V_{t+1} = V_t * mu_t * (w . y),      net return = mu_t (w . y) - 1,

    and the weights drift to ``w * y / (w . y)``. This is `kabuto.backtest.WalkForward` with a
    daily rebalance: in the proportional cost model the net returns agree with the backtest's to
    rounding. Episodes start all in cash (like the backtest), so the first step pays for buying
    in.

Observation: a flat ``Box`` of ``F * n * window + n + 1`` float32 values
    ``obs[: F * n * window]`` is the price window, shape (F, n, window) in C order (feature,
    then asset, then date): F = 1 feature, the close, or F = 3, close, high and low, when the
    panel has highs and lows and ``high_low=True`` (the default). Every feature is divided by
    the asset's latest close: ``close[t - window + 1 + j, i] / close[t, i]``, so the close
    block's last column is 1 (Jiang et al. 2017's normalisation), and likewise
    ``high[., i] / close[t, i]`` and ``low[., i] / close[t, i]``. ``obs[F * n * window :]`` are
    the weights held before the decision (drifted to t), cash first. `split_observation`
    returns the two parts as (..., F, n, window) and (..., n + 1) for convolutional
    (EIIE-style) policies. A flat Box works with every
    stable-baselines3 algorithm and ``MlpPolicy`` without a ``MultiInputPolicy`` and batches
    into one array in vector environments. The price part is unbounded above (a normalised close
    can be any positive number), which gymnasium's ``check_env`` notes with a warning.

Action: a ``Box(-1, 1, (n + 1,))``, cash first, mapped onto the long-only simplex
    ``action_map="softmax"`` (default): ``w = softmax(logit_scale * a)``. Every weight is
    positive; with ``logit_scale = 5`` the ratio of two weights can reach ``e^10``, so nearly
    pure positions are reachable from the bounded box that PPO (clipped Gaussian) and SAC
    (tanh-squashed) produce. ``action_map="clip"``: ``w = max(a, 0) / sum(max(a, 0))``, all cash
    when no entry is positive; exact zeros are reachable, and a valid weight vector is its own
    action (replaying given weights). Actions outside the box are accepted as they are (no
    clipping); non-finite ones raise.

Missing prices
    Every asset must have prices from the first observation window to `end`; a panel with NaN
    there (an asset listed later or delisted earlier) raises a DataError naming the asset and the
    dates to choose instead.

Episodes
    Decisions may be taken at dates in ``[start, end)`` (default: the first date with a full
    window, and the panel's last date). With ``random_start=True`` each reset draws the first
    decision uniformly from the dates that leave `episode_length` steps (from the environment's
    seeded ``np_random``); otherwise it is `start`. An episode runs `episode_length` steps or to
    `end`, whichever comes first, and then reports ``truncated=True`` (time limit or end of
    data; nothing terminates the MDP itself: a long-only book cannot go broke).

Info dict of a step
    ``date`` (the date t+1 the step ends at, a Timestamp), ``portfolio_value`` (V_{t+1}, starting
    at 1), ``cost`` (``1 - mu``: the fraction of wealth paid at the close of t), ``turnover``
    (``sum_i |w_i - w'_i|``, assets only), ``gross_return`` (``w . y - 1``), ``net_return``
    (``mu (w . y) - 1``) and ``weights`` (the target w, cash first). ``reset`` returns ``date``
    (the first decision date) and ``portfolio_value`` (1.0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.error import ResetNeeded

from kabuto.costs import cost_rates
from kabuto.data.panel import PRICE_FEATURES, Panel, Window
from kabuto.errors import ConfigError, ConstraintError, DataError
from kabuto.settings import check_date
from kabuto.strategies.batched import window_features
from kabuto.strategies.rl.costs import (
    COST_MODELS,
    proportional_remainder,
    transaction_remainder,
    turnover,
)
from kabuto.strategies.rl.rewards import RewardTracker, check_reward_settings

__all__ = [
    "ACTION_MAPS",
    "PortfolioEnv",
    "actions_to_weights",
    "mapped_weights",
    "portfolio_observation",
    "split_observation",
]

ACTION_MAPS = ("softmax", "clip")


def check_action_map(action_map: str, logit_scale: float) -> None:
    """Raise a ConfigError unless `action_map` is known and `logit_scale` positive and finite."""
    if action_map not in ACTION_MAPS:
        raise ConfigError(
            f"action_map = {action_map!r}: expected one of {', '.join(map(repr, ACTION_MAPS))}"
        )
    if (
        isinstance(logit_scale, bool)
        or not isinstance(logit_scale, int | float | np.integer | np.floating)
        or not math.isfinite(logit_scale)
        or logit_scale <= 0
    ):
        raise ConfigError(f"logit_scale = {logit_scale!r}: expected a positive number, e.g. 5")


def actions_to_weights(
    actions: np.ndarray, action_map: str = "softmax", logit_scale: float = 5.0
) -> np.ndarray:
    """Map actions onto long-only weights over cash and the assets (the simplex).

    Parameters
    ----------
    actions : ndarray of shape (..., n + 1)
        Raw actions, cash first.
    action_map : {"softmax", "clip"}
        ``softmax(logit_scale * a)``, or ``max(a, 0)`` normalised (all cash when nothing is
        positive).
    logit_scale : float
        Multiplier of the actions before the softmax; positive (a negative one would reverse
        the ranking of the actions).

    Returns
    -------
    ndarray of shape (..., n + 1)
        Non-negative weights summing to 1.

    Raises
    ------
    ConfigError
        For an unknown `action_map` or a `logit_scale` that is not a positive number.
    """
    check_action_map(action_map, logit_scale)
    return mapped_weights(actions, action_map, logit_scale)


def mapped_weights(actions: np.ndarray, action_map: str, logit_scale: float) -> np.ndarray:
    """`actions_to_weights` without the check of its settings: for the per-step paths of
    environments and agents, whose settings were checked once when they were built."""
    a = np.asarray(actions, dtype=np.float64)
    if action_map == "softmax":
        z = logit_scale * a
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)
    positive = np.maximum(a, 0.0)
    total = positive.sum(axis=-1, keepdims=True)
    cash_only = np.zeros_like(positive)
    cash_only[..., 0] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, positive / np.where(total > 0, total, 1.0), cash_only)


def portfolio_observation(prices: np.ndarray, held: np.ndarray) -> np.ndarray:
    """The observation at a decision date from the window's prices and the held weights.

    Parameters
    ----------
    prices : ndarray of shape (F, n, window) or (n, window)
        Each asset's last ``window`` closes (feature 0), then highs and lows if F = 3, the
        decision date's last; finite and positive. A 2-D array is closes only.
    held : ndarray of shape (n + 1,)
        Weights held before the decision (drifted to the decision date), cash first.

    Returns
    -------
    ndarray of shape (F * n * window + n + 1,), float32
        ``prices[f, i, j] / close[t, i]`` in (feature, asset, date) order, then `held`. The
        environment and the strategies that act on its policies (`kabuto.strategies.rl.agents`)
        both build observations here, so they agree bit for bit.
    """
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim == 2:
        prices = prices[None]
    f, n, w = prices.shape
    size = f * n * w
    out = np.empty(size + n + 1, dtype=np.float32)
    out[:size] = (prices / prices[0, :, w - 1 : w]).ravel()
    out[size:] = held
    return out


def split_observation(
    obs: np.ndarray, n_assets: int, window: int, n_features: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Split flat observations into the price window and the held weights (views, no copy).

    Parameters
    ----------
    obs : ndarray of shape (..., n_features * n * window + n + 1)
    n_assets, window, n_features : int

    Returns
    -------
    prices : ndarray of shape (..., n_features, n, window)
        Prices normalised by the latest close.
    weights : ndarray of shape (..., n + 1)
        Drifted weights held before the decision, cash first.
    """
    size = n_features * n_assets * window
    prices = obs[..., :size].reshape(*obs.shape[:-1], n_features, n_assets, window)
    return prices, obs[..., size:]


@dataclass(frozen=True)
class _Settings:
    """Validated settings shared by the single and the vectorised environment."""

    window: int
    episode_length: int | None
    random_start: bool
    rates: np.ndarray  # (n,) proportional cost rates
    cost_model: str
    reward: str
    eta: float
    sharpe_window: int
    turnover_penalty: float
    drawdown_penalty: float
    action_map: str
    logit_scale: float
    high_low: bool

    def remainder(self, drifted: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Remainder factor mu of trading from `drifted` to `target`, shape (...)."""
        if self.cost_model == "exact":
            return transaction_remainder(drifted, target, float(self.rates[0]))
        return proportional_remainder(drifted, target, self.rates)

    def tracker(self, num_envs: int) -> RewardTracker:
        return RewardTracker(
            self.reward,
            num_envs,
            eta=self.eta,
            sharpe_window=self.sharpe_window,
            turnover_penalty=self.turnover_penalty,
            drawdown_penalty=self.drawdown_penalty,
        )

    def features(self, panel: Panel) -> tuple[str, ...]:
        """The price features observed on `panel`."""
        return observed_features(panel.has_high_low, self.high_low)

    def spaces(self, n: int, n_features: int = 1) -> tuple[gym.spaces.Box, gym.spaces.Box]:
        """Observation and action space for n assets and `n_features` price features."""
        return portfolio_spaces(n, self.window, n_features)


def observed_features(has_high_low: bool, high_low: bool) -> tuple[str, ...]:
    """Close, high and low when the data has highs and lows and `high_low` is set; else close."""
    return PRICE_FEATURES if high_low and has_high_low else PRICE_FEATURES[:1]


def policy_window(
    window: Window, count: int, owner: str, high_low: bool, features: tuple[str, ...]
) -> np.ndarray:
    """The last `count` rows of the price features a policy trained on `features` reads.

    Shape: output (F, count, n), float64, finite and positive.

    Raises
    ------
    DataError
        For missing prices, or when the window lacks the features the policy was trained on
        (or has them and the policy was not).
    """
    prices = window_features(window, count, owner, high_low)
    if len(prices) != len(features):
        raise DataError(
            f"{owner}: the policy was trained on {features} but the window ending "
            f"{window.date.date()} gives {PRICE_FEATURES[: len(prices)]}; decide on data with "
            "the price features it was trained on"
        )
    return prices


def portfolio_spaces(
    n_assets: int, window: int, n_features: int = 1
) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """The observation and action spaces of `PortfolioEnv` (see the module docstring)."""
    size = n_features * n_assets * window
    high = np.concatenate([np.full(size, np.inf), np.ones(n_assets + 1)]).astype(np.float32)
    observation = gym.spaces.Box(np.zeros_like(high), high, dtype=np.float32)
    action = gym.spaces.Box(-1.0, 1.0, shape=(n_assets + 1,), dtype=np.float32)
    return observation, action


def _check_settings(
    panel: Panel,
    *,
    window: int,
    episode_length: int | None,
    random_start: bool,
    costs_bps: float | Mapping[str, float],
    cost_model: str,
    reward: str,
    eta: float,
    sharpe_window: int,
    turnover_penalty: float,
    drawdown_penalty: float,
    action_map: str,
    logit_scale: float,
    high_low: bool = True,
) -> _Settings:
    if not isinstance(panel, Panel):
        raise ConfigError(
            f"panel = {type(panel).__name__}: expected a kabuto Panel (Panel.from_frame builds "
            "one from a DataFrame of prices)"
        )
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ConfigError(f"window = {window!r}: expected a positive number of dates, e.g. 50")
    if episode_length is not None and (
        isinstance(episode_length, bool)
        or not isinstance(episode_length, int | np.integer)
        or episode_length < 1
    ):
        raise ConfigError(
            f"episode_length = {episode_length!r}: expected a positive number of steps, or None "
            "to run to the end of the data"
        )
    if not isinstance(random_start, bool | np.bool_):
        raise ConfigError(f"random_start = {random_start!r}: expected true or false")
    if cost_model not in COST_MODELS:
        raise ConfigError(
            f"cost_model = {cost_model!r}: expected one of {', '.join(map(repr, COST_MODELS))}"
        )
    if cost_model == "exact" and isinstance(costs_bps, Mapping):
        raise ConfigError(
            "cost_model = 'exact' takes one commission rate (Jiang et al. 2017, eq. 14) but "
            "costs_bps is a per-asset mapping; give costs_bps as a number or use "
            "cost_model = 'proportional'"
        )
    rates = cost_rates(costs_bps, panel.assets)
    check_reward_settings(
        reward, eta, sharpe_window, turnover_penalty, drawdown_penalty, episode_length
    )
    check_action_map(action_map, logit_scale)
    if not isinstance(high_low, bool | np.bool_):
        raise ConfigError(f"high_low = {high_low!r}: expected true or false")
    return _Settings(
        window=int(window),
        episode_length=None if episode_length is None else int(episode_length),
        random_start=bool(random_start),
        rates=rates,
        cost_model=cost_model,
        reward=reward,
        eta=float(eta),
        sharpe_window=int(sharpe_window),
        turnover_penalty=float(turnover_penalty),
        drawdown_penalty=float(drawdown_penalty),
        action_map=action_map,
        logit_scale=float(logit_scale),
        high_low=bool(high_low),
    )


def _date_range(
    panel: Panel,
    window: int,
    start: str | pd.Timestamp | None,
    end: str | pd.Timestamp | None,
) -> tuple[int, int]:
    """First allowed decision index and last date index; checks prices are complete there."""
    dates = panel.dates
    start = None if start is None else check_date("start", start)
    end = None if end is None else check_date("end", end)
    for key, value in (("start", start), ("end", end)):
        if value is not None and value > dates[-1]:
            raise ConfigError(
                f"{key} = {value.date()} is after the last date of "
                f"{panel.source} ({dates[-1].date()}); choose an earlier {key}"
            )
    earliest = window - 1  # the first date with `window` closes up to it
    if earliest > panel.n_dates - 2:
        raise ConfigError(
            f"window = {window} needs {window} closes and a date to trade after them, but "
            f"{panel.source} has {panel.n_dates} dates; shorten the window or use more data"
        )
    if start is None:
        first = earliest
    else:
        first = int(dates.searchsorted(start, side="left"))
        if first < earliest:
            raise ConfigError(
                f"start = {start.date()} leaves {first + 1} closes up to it, fewer "
                f"than window = {window}; start on or after {dates[earliest].date()} or shorten "
                "the window"
            )
    last = panel.n_dates - 1 if end is None else panel.index_of(end)
    if last - first < 1:
        raise ConfigError(
            f"start = {dates[first].date()} and end = {dates[last].date()} leave no date to "
            "trade; choose a later end or an earlier start"
        )
    rows = slice(first - window + 1, last + 1)
    missing = ~np.isfinite(panel.prices[rows])
    if missing.any():
        col = int(np.argwhere(missing.any(axis=0))[0, 0])
        day = first - window + 1 + int(np.argmax(missing[:, col]))
        listed_from = int(panel.first_valid.max()) + window - 1
        listed_to = int(panel.last_valid.min())
        fix = (
            f"choose start on or after {dates[listed_from].date()} and end on or before "
            f"{dates[listed_to].date()}, or drop the asset"
            if listed_from < listed_to
            else "drop the asset (no period has prices of every asset)"
        )
        raise DataError(
            f"{panel.source}: asset {panel.assets[col]!r} has no price on {dates[day].date()} "
            f"(prices from {dates[panel.first_valid[col]].date()} to "
            f"{dates[panel.last_valid[col]].date()}), inside the period the environment uses "
            f"({dates[rows.start].date()} to {dates[last].date()} with the observation window); "
            f"{fix}"
        )
    return first, last


def _start_range(settings: _Settings, first: int, last: int) -> tuple[int, int]:
    """Inclusive range of first decisions: full-length episodes where the data allow."""
    if not settings.random_start:
        return first, first
    length = settings.episode_length
    latest = last - 1 if length is None else last - length
    return first, max(first, latest)


def _relatives(prices: np.ndarray) -> np.ndarray:
    """Price relatives ``close[t+1] / close[t]``, shape (T - 1, n) (NaN where a price is)."""
    with np.errstate(invalid="ignore"):
        return prices[1:] / prices[:-1]


class PortfolioEnv(gym.Env[np.ndarray, np.ndarray]):
    """Portfolio management over a `Panel`, with the backtest's timing and costs.

    See the module docstring for the timing, spaces and info dict.

    Parameters
    ----------
    panel : Panel
        Daily closes (T, n), and highs and lows if it has them. Every asset needs prices over
        the period used.
    window : int, default 50
        Dates per asset in the observation (Jiang et al. 2017 use 50).
    episode_length : int or None, default 252
        Steps per episode; None runs to `end`.
    start, end : date-like, optional
        First allowed decision date (default: the first date with `window` closes) and the last
        date whose return can be earned (default: the panel's last date). Use them to keep a
        training environment off the test period.
    random_start : bool, default True
        Draw each episode's first decision date (seeded by ``reset(seed=...)``); otherwise every
        episode starts at `start`. Start dates are uniform, so the last `episode_length`
        decision dates before `end` are visited less often than earlier ones: the k-th last
        k / episode_length as often, the date before `end` (a fit date) only 1 / episode_length.
    costs_bps : float or mapping, default 10.0
        Commission on traded notional in basis points, like the backtest's ``costs_bps`` (a
        per-asset mapping only with ``cost_model="proportional"``). 0 turns costs off, and only
        when given explicitly.
    cost_model : {"proportional", "exact"}, default "proportional"
        The backtest's ``1 - sum c |dw|`` or Jiang et al.'s exact remainder factor with equal
        selling and purchasing rates ``c_s = c_p = costs_bps``.
    reward : {"log_return", "differential_sharpe", "sharpe_window"}, default "log_return"
        See `kabuto.strategies.rl.rewards`.
    eta : float, default 0.01
        Adaptation rate of the differential Sharpe ratio.
    sharpe_window : int, default 20
        Returns in the trailing Sharpe ratio reward.
    turnover_penalty, drawdown_penalty : float, default 0.0
        Penalty coefficients subtracted from the reward.
    action_map : {"softmax", "clip"}, default "softmax"
        How actions become weights (see the module docstring).
    logit_scale : float, default 5.0
        Multiplier of the actions before the softmax.
    high_low : bool, default True
        Observe highs and lows besides closes when the panel has them.

    Attributes
    ----------
    observation_space : Box of shape (F * n * window + n + 1,), float32
    action_space : Box of shape (n + 1,), float32, bounds [-1, 1]
    n_assets : int
    features : tuple of str
        The F price features observed: ``("close",)`` or ``("close", "high", "low")``.
    n_features : int
    first_index, last_index : int
        Panel indices of the first allowed decision and of `end`.

    Raises
    ------
    ConfigError
        For a setting out of range, naming it.
    DataError
        For missing prices inside the period used.

    Examples
    --------
    >>> from kabuto.sim import correlated_gbm
    >>> env = PortfolioEnv(correlated_gbm(5, 500, seed=0), window=30, costs_bps=10)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (156,)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(
        self,
        panel: Panel,
        *,
        window: int = 50,
        episode_length: int | None = 252,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        random_start: bool = True,
        costs_bps: float | Mapping[str, float] = 10.0,
        cost_model: str = "proportional",
        reward: str = "log_return",
        eta: float = 0.01,
        sharpe_window: int = 20,
        turnover_penalty: float = 0.0,
        drawdown_penalty: float = 0.0,
        action_map: str = "softmax",
        logit_scale: float = 5.0,
        high_low: bool = True,
    ) -> None:
        self.settings = _check_settings(
            panel,
            window=window,
            episode_length=episode_length,
            random_start=random_start,
            costs_bps=costs_bps,
            cost_model=cost_model,
            reward=reward,
            eta=eta,
            sharpe_window=sharpe_window,
            turnover_penalty=turnover_penalty,
            drawdown_penalty=drawdown_penalty,
            action_map=action_map,
            logit_scale=logit_scale,
            high_low=high_low,
        )
        self.panel = panel
        self.n_assets = panel.n_assets
        self.window = self.settings.window
        self.features = self.settings.features(panel)
        self.n_features = len(self.features)
        self.first_index, self.last_index = _date_range(panel, self.window, start, end)
        self.observation_space, self.action_space = self.settings.spaces(
            self.n_assets, self.n_features
        )
        # (F, n, T): windows are slices
        features = panel.price_features(self.settings.high_low)
        self._prices_t = np.ascontiguousarray(features.transpose(0, 2, 1))
        self._relatives = _relatives(panel.prices)
        self._dates = list(panel.dates)  # Timestamps; indexing a list is cheaper than pandas
        self._tracker = self.settings.tracker(1)
        self._t: int | None = None  # decision index
        self._stop = 0  # the episode ends when t reaches it
        self._held = np.zeros(self.n_assets + 1)
        self._value = self._peak = 1.0

    def start_range(self) -> tuple[int, int]:
        """Inclusive range of panel indices an episode may start at."""
        return _start_range(self.settings, self.first_index, self.last_index)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode all in cash at a (seeded) start date.

        Parameters
        ----------
        seed : int, optional
            Seeds ``np_random``, which draws the start date (the only randomness).
        options : dict, optional
            Unused.

        Returns
        -------
        observation : ndarray of shape (F * n * window + n + 1,)
        info : dict
            ``date`` (the first decision date) and ``portfolio_value`` (1.0).
        """
        super().reset(seed=seed)
        lo, hi = self.start_range()
        t = lo if not self.settings.random_start else int(self.np_random.integers(lo, hi + 1))
        length = self.settings.episode_length
        self._t = t
        self._stop = self.last_index if length is None else min(t + length, self.last_index)
        self._held = np.zeros(self.n_assets + 1)
        self._held[0] = 1.0
        self._value = self._peak = 1.0
        self._tracker.reset()
        return self._observe(), {"date": self._dates[t], "portfolio_value": 1.0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Rebalance to the action's weights at the close of t and earn the return to t+1.

        Parameters
        ----------
        action : array-like of shape (n + 1,)
            Cash first; mapped onto the simplex by `action_map`.

        Returns
        -------
        observation : ndarray of shape (F * n * window + n + 1,)
        reward : float
        terminated : bool
            Always False.
        truncated : bool
            True when the episode reached `episode_length` steps or `end`.
        info : dict
            See the module docstring.
        """
        if self._t is None or self._t >= self._stop:
            raise ResetNeeded("call reset() before step() (the episode has ended or not begun)")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.n_assets + 1,) or not np.isfinite(a).all():
            raise ConstraintError(
                f"action of shape {a.shape} with values {a.ravel()[:5]}...: expected "
                f"{self.n_assets + 1} finite numbers (cash first)"
            )
        s = self.settings
        w = mapped_weights(a, s.action_map, s.logit_scale)
        held = self._held
        traded = float(turnover(held, w))
        mu = float(s.remainder(held, w))
        y = self._relatives[self._t]
        grown = w[1:] * y
        growth = float(w[0] + grown.sum())
        factor = mu * growth
        self._value *= factor
        self._peak = max(self._peak, self._value)
        drawdown = 1.0 - self._value / self._peak
        self._held = np.concatenate([[w[0]], grown]) / growth
        self._t += 1
        reward = float(
            self._tracker(np.array([factor - 1.0]), np.array([traded]), np.array([drawdown]))[0]
        )
        info = {
            "date": self._dates[self._t],
            "portfolio_value": self._value,
            "cost": 1.0 - mu,
            "turnover": traded,
            "gross_return": growth - 1.0,
            "net_return": factor - 1.0,
            "weights": w,
        }
        return self._observe(), reward, False, self._t >= self._stop, info

    def _observe(self) -> np.ndarray:
        t, w = self._t, self.window
        return portfolio_observation(self._prices_t[:, :, t - w + 1 : t + 1], self._held)

    def split_observation(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Price window (..., F, n, window) and held weights (..., n + 1) of observations."""
        return split_observation(obs, self.n_assets, self.window, self.n_features)
