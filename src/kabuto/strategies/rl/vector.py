"""`PortfolioVectorEnv`: B portfolio environments stepped together with numpy.

B copies of `PortfolioEnv` with the same settings, in one ``gymnasium.vector.VectorEnv``: one
panel (the copies differ by their start dates) or P panels of equal shape (for example synthetic
markets from different seeds; copy b always runs on ``panels[b % P]``). A step is a handful of
array operations over all B copies, with no Python loop over environments; only the start-date
draw of the copies being reset loops over them.

It behaves exactly like ``gymnasium.vector.SyncVectorEnv`` over B `PortfolioEnv` (the tests
check it): ``reset(seed=s)`` seeds copy b with ``s + b`` (a list gives one seed per copy), and
copies that finish an episode are reset automatically:

``autoreset_mode="NextStep"`` (gymnasium's default)
    The step that ends an episode returns its last observation with ``truncated[b] = True``; the
    next ``step`` resets copy b instead of stepping it (its action is ignored, its reward is 0)
    and returns the new episode's first observation.
``autoreset_mode="SameStep"``
    The ending step resets copy b at once and returns the new episode's first observation; the
    last observation of the finished episode and its step info are in ``info["final_obs"]``
    (an object array) and ``info["final_info"]``. This is the convention stable-baselines3's own
    vectorised environments follow (``terminal_observation``).

Observations come batched as (B, F * n * window + n + 1) float32 (F price features, see
`PortfolioEnv`), rewards as (B,) float64. The info dict holds one array per key over the B copies
with a boolean mask ``info["_key"]`` of the copies that report it (gymnasium's convention): ``date``
is a datetime64[ns] array and ``weights`` has shape (B, n + 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from kabuto.costs import cost_rates
from kabuto.data.panel import Panel
from kabuto.errors import ConfigError, ConstraintError, DataError
from kabuto.strategies.rl.costs import turnover
from kabuto.strategies.rl.env import (
    _check_settings,
    _date_range,
    _relatives,
    _start_range,
    mapped_weights,
    split_observation,
)

__all__ = ["PortfolioVectorEnv"]

_STEP_KEYS = ("cost", "turnover", "gross_return", "net_return", "weights")


class PortfolioVectorEnv(VectorEnv):
    """B portfolio environments over one or several equally shaped panels, stepped in numpy.

    Parameters
    ----------
    panels : Panel or sequence of Panel
        One panel, or P panels with the same number of dates and assets.
    num_envs : int
        B, the number of environments.
    autoreset_mode : {"NextStep", "SameStep"} or AutoresetMode, default "NextStep"
        When finished copies restart (see the module docstring).
    **settings
        Every keyword of `PortfolioEnv` (window, episode_length, start, end, random_start,
        costs_bps, cost_model, reward, eta, sharpe_window, turnover_penalty, drawdown_penalty,
        action_map, logit_scale, high_low), with the same defaults. `start` and `end` are dates,
        applied to each panel's calendar.

    Attributes
    ----------
    single_observation_space, single_action_space : Box
        The spaces of one copy (as in `PortfolioEnv`).
    observation_space : Box of shape (B, F * n * window + n + 1)
    action_space : Box of shape (B, n + 1)
    features : tuple of str
        The F price features observed (as in `PortfolioEnv`).
    n_features : int
    panel_of : ndarray of shape (B,)
        Which panel each copy runs on.

    Raises
    ------
    ConfigError
        For a setting out of range, naming it.
    DataError
        For panels of different shapes or missing prices inside the period used.

    Examples
    --------
    >>> from kabuto.sim import correlated_gbm
    >>> envs = PortfolioVectorEnv(correlated_gbm(5, 500, seed=0), num_envs=4, window=30)
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (4, 156)
    >>> obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())
    """

    def __init__(
        self,
        panels: Panel | Sequence[Panel],
        num_envs: int,
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
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
        panels = [panels] if isinstance(panels, Panel) else list(panels)
        if not panels:
            raise ConfigError("panels = []: give at least one Panel")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ConfigError(f"num_envs = {num_envs!r}: expected a positive integer")
        self.settings = _check_settings(
            panels[0],
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
        shape = panels[0].prices.shape
        self.features = self.settings.features(panels[0])
        self.n_features = len(self.features)
        for k, panel in enumerate(panels):
            if not isinstance(panel, Panel):
                raise ConfigError(f"panels[{k}] is a {type(panel).__name__}, not a kabuto Panel")
            if panel.prices.shape != shape:
                raise DataError(
                    f"panels[{k}] ({panel.source}) has {panel.prices.shape} dates x assets, "
                    f"panels[0] has {shape}; give panels of equal shape"
                )
            if not np.array_equal(cost_rates(costs_bps, panel.assets), self.settings.rates):
                raise ConfigError(
                    f"costs_bps gives panels[{k}] ({panel.source}) other rates than panels[0]; "
                    "use one rate or panels with the same assets"
                )
            if self.settings.features(panel) != self.features:
                raise DataError(
                    f"panels[{k}] ({panel.source}) gives price features "
                    f"{self.settings.features(panel)}, panels[0] {self.features}; give panels "
                    "that all have highs and lows or none, or set high_low=False"
                )
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {"autoreset_mode": self.autoreset_mode}
        self.num_envs = int(num_envs)
        self.panels = panels
        self.n_assets = shape[1]
        self.window = self.settings.window
        ranges = np.array([_date_range(p, self.window, start, end) for p in panels])
        self._last = ranges[:, 1]
        starts = np.array(
            [_start_range(self.settings, int(a), int(b)) for a, b in ranges], dtype=np.int64
        )
        self._start_lo, self._start_hi = starts[:, 0], starts[:, 1]

        self.single_observation_space, self.single_action_space = self.settings.spaces(
            self.n_assets, self.n_features
        )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        # (P, F, T, n): closes, then highs and lows if observed
        self._prices = np.ascontiguousarray(
            np.stack([p.price_features(self.settings.high_low) for p in panels])
        )
        # (P, F, T - window + 1, n, window): element [p, f, s, i, j] is feature f of asset i
        # on date s + j
        self._windows = np.lib.stride_tricks.sliding_window_view(self._prices, self.window, axis=2)
        self._relatives = np.stack([_relatives(p.prices) for p in panels])  # (P, T - 1, n)
        self._dates = np.stack([p.dates.to_numpy(dtype="datetime64[ns]") for p in panels])
        self.panel_of = np.arange(self.num_envs) % len(panels)

        b, n1 = self.num_envs, self.n_assets + 1
        self._t = np.full(b, -1, dtype=np.int64)  # decision index; -1: not reset yet
        self._stop = np.zeros(b, dtype=np.int64)
        self._held = np.zeros((b, n1))
        self._value = np.ones(b)
        self._peak = np.ones(b)
        self._done = np.zeros(b, dtype=bool)  # finished: NextStep resets it on the next step
        self._tracker = self.settings.tracker(b)
        self._rngs: list[np.random.Generator] | None = None

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all copies (or those in ``options["reset_mask"]``) all in cash.

        Parameters
        ----------
        seed : int, list of int or None, optional
            An int s seeds copy b with ``s + b``; a list gives each copy its seed; None keeps
            the copies' generators (fresh ones on the first reset).
        options : dict, optional
            ``{"reset_mask": bool array of shape (B,)}`` resets only those copies; every copy
            left out must have been reset before (so the first reset covers them all).

        Returns
        -------
        observations : ndarray of shape (B, F * n * window + n + 1)
        info : dict
            ``date`` and ``portfolio_value`` of the copies reset, with their masks.
        """
        b = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * b
        elif isinstance(seed, int | np.integer):
            seeds = [int(seed) + i for i in range(b)]
            super().reset(seed=int(seed))
        else:
            seeds = list(seed)
            if len(seeds) != b:
                raise ConfigError(f"reset got {len(seeds)} seeds for num_envs = {b} copies")
        mask = np.ones(b, dtype=bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (b,) or mask.dtype != np.bool_ or not mask.any():
                raise ConfigError(
                    f"options['reset_mask'] must be a bool array of shape ({b},) with a True entry"
                )
        self._check_all_started(mask)
        if self._rngs is None:
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        else:
            for i in np.flatnonzero(mask):
                if seeds[i] is not None:
                    self._rngs[i] = seeding.np_random(seeds[i])[0]
        rows = np.flatnonzero(mask)
        self._restart(rows)
        obs = self._observe()
        info: dict[str, Any] = {}
        self._put(info, "date", self._dates[self.panel_of[rows], self._t[rows]], rows)
        self._put(info, "portfolio_value", np.ones(len(rows)), rows)
        return obs, info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy: rebalance at the close of t, earn the return to t+1, drift.

        Parameters
        ----------
        actions : array-like of shape (B, n + 1)
            One action per copy, cash first.

        Returns
        -------
        observations : ndarray of shape (B, F * n * window + n + 1)
        rewards : ndarray of shape (B,)
        terminated : ndarray of shape (B,), bool
            Always False.
        truncated : ndarray of shape (B,), bool
        info : dict
            One array per key with its ``_key`` mask (see `PortfolioEnv` for the keys).
        """
        if self._rngs is None:
            raise ResetNeeded("call reset() before step()")
        a = np.asarray(actions, dtype=np.float64)
        b, n1 = self.num_envs, self.n_assets + 1
        if a.shape != (b, n1) or not np.isfinite(a).all():
            raise ConstraintError(
                f"actions of shape {a.shape}: expected ({b}, {n1}) finite numbers (one row per "
                "copy, cash first)"
            )
        info: dict[str, Any] = {}
        rewards = np.zeros(b)
        truncated = np.zeros(b, dtype=bool)
        pending = self._done
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and pending.any():
            restart = np.flatnonzero(pending)
            rows = np.flatnonzero(~pending)
            self._restart(restart)
            self._put(info, "date", self._dates[self.panel_of[restart], self._t[restart]], restart)
            self._put(info, "portfolio_value", np.ones(len(restart)), restart)
        else:
            rows = np.arange(b)
        if len(rows):
            r, trunc, step_info = self._advance(rows, a[rows])
            rewards[rows], truncated[rows] = r, trunc
        else:
            trunc, step_info = np.zeros(0, dtype=bool), {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP and trunc.any():
            ended = rows[trunc]
            kept = rows[~trunc]
            final_obs = self._observe(ended)
            finals = np.full(b, None, dtype=object)
            for j, i in enumerate(ended):
                finals[i] = final_obs[j]
            info["final_obs"], info["_final_obs"] = finals, np.isin(np.arange(b), ended)
            final_info: dict[str, Any] = {}
            for key, value in step_info.items():
                self._put(final_info, key, value[trunc], ended)
            info["final_info"], info["_final_info"] = final_info, info["_final_obs"].copy()
            for key, value in step_info.items():
                self._put(info, key, value[~trunc], kept)
            self._restart(ended)
            self._put(info, "date", self._dates[self.panel_of[ended], self._t[ended]], ended)
            self._put(info, "portfolio_value", np.ones(len(ended)), ended)
        else:
            for key, value in step_info.items():
                self._put(info, key, value, rows)
        self._done = (
            truncated.copy()
            if self.autoreset_mode == AutoresetMode.NEXT_STEP
            else (np.zeros(b, dtype=bool))
        )
        return self._observe(), rewards, np.zeros(b, dtype=bool), truncated, info

    def split_observation(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Price windows (B, F, n, window) and held weights (B, n + 1) of observations."""
        return split_observation(obs, self.n_assets, self.window, self.n_features)

    # internals -------------------------------------------------------------------------------

    def _check_all_started(self, mask: np.ndarray) -> None:
        """Raise unless every copy has an episode once the copies in `mask` are reset.

        A copy that was never reset has no decision date: observing or stepping it would read
        the panel's last prices (a look-ahead) and earn its last return.
        """
        never = np.flatnonzero((self._t < 0) & ~mask)
        if len(never):
            raise ConfigError(
                f"options['reset_mask'] leaves copies {never.tolist()} that were never reset; the "
                "first reset must cover every copy (leave reset_mask out of it)"
            )

    def _restart(self, rows: np.ndarray) -> None:
        """Start new episodes, all in cash, for the given copies."""
        s = self.settings
        for i in rows:
            p = self.panel_of[i]
            lo, hi = int(self._start_lo[p]), int(self._start_hi[p])
            self._t[i] = lo if not s.random_start else int(self._rngs[i].integers(lo, hi + 1))
        last = self._last[self.panel_of[rows]]
        t = self._t[rows]
        length = s.episode_length
        self._stop[rows] = last if length is None else np.minimum(t + length, last)
        self._held[rows] = 0.0
        self._held[rows, 0] = 1.0
        self._value[rows] = 1.0
        self._peak[rows] = 1.0
        self._done[rows] = False
        self._tracker.reset(rows)

    def _advance(
        self, rows: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Trade, earn and drift the given copies; returns rewards, truncations and infos."""
        s = self.settings
        w = mapped_weights(actions, s.action_map, s.logit_scale)
        held = self._held[rows]
        traded = turnover(held, w)
        mu = s.remainder(held, w)
        p, t = self.panel_of[rows], self._t[rows]
        grown = w[:, 1:] * self._relatives[p, t]
        growth = w[:, 0] + grown.sum(axis=1)
        factor = mu * growth
        value = self._value[rows] * factor
        peak = np.maximum(self._peak[rows], value)
        self._value[rows], self._peak[rows] = value, peak
        held = np.empty_like(w)
        held[:, 0] = w[:, 0]
        held[:, 1:] = grown
        self._held[rows] = held / growth[:, None]
        t = t + 1
        self._t[rows] = t
        rewards = self._tracker(factor - 1.0, traded, 1.0 - value / peak, rows)
        info = {
            "date": self._dates[p, t],
            "portfolio_value": value,
            "cost": 1.0 - mu,
            "turnover": traded,
            "gross_return": growth - 1.0,
            "net_return": factor - 1.0,
            "weights": w,
        }
        return rewards, t >= self._stop[rows], info

    def _observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Observations of the given copies (all by default), shape (m, F * n * window + n + 1)."""
        sel = slice(None) if rows is None else rows
        p, t = self.panel_of[sel], self._t[sel]
        m, f, n, w = len(t), self.n_features, self.n_assets, self.window
        size = f * n * w
        out = np.empty((m, size + n + 1), dtype=np.float32)
        prices = out[:, :size].reshape(m, f, n, w)  # a view: each row's block is contiguous
        np.divide(
            self._windows[p, :, t - w + 1],  # (m, F, n, w)
            self._prices[p, 0, t][:, None, :, None],  # the closes at t
            out=prices,
            casting="same_kind",
        )
        out[:, size:] = self._held[sel]
        return out

    def _put(self, info: dict[str, Any], key: str, values: np.ndarray, rows: np.ndarray) -> None:
        """Write per-copy values into ``info[key]`` and set their ``info["_key"]`` mask."""
        if not len(rows):
            return
        values = np.asarray(values)
        if key not in info:
            info[key] = np.zeros((self.num_envs, *values.shape[1:]), dtype=values.dtype)
            info[f"_{key}"] = np.zeros(self.num_envs, dtype=bool)
        info[key][rows] = values
        info[f"_{key}"][rows] = True


def _autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    try:
        parsed = mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)
    except ValueError:
        parsed = None
    if parsed not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise ConfigError(
            f"autoreset_mode = {mode!r}: expected 'NextStep' or 'SameStep' (copies must restart "
            "automatically)"
        )
    return parsed
