"""`RLAgent`: PPO, A2C and SAC (stable-baselines3) trained on `PortfolioEnv`, as a strategy.

Training (`fit`)
    The engine calls ``fit(history)`` on its retrain schedule with every return up to the fit
    date t. The agent keeps the trailing rows in which every asset it trains on has a price
    (see "Universe"), builds ``n_envs`` copies of `PortfolioEnv` on them (the backtest's
    timing: decide at the close of s, pay costs, earn s -> s + 1; costs default to 10 bps like
    the backtest and are never silently zero) and trains stable-baselines3's ``algorithm``
    with ``MlpPolicy`` on them. Nothing after t is ever in a training environment.

    The copies run in SB3's own ``DummyVecEnv`` and differ only by their seeds (copy i resets
    with ``seed + i``; each episode starts at a date drawn from its seeded generator). kabuto's
    numpy `PortfolioVectorEnv` speaks gymnasium's vector API, not SB3's ``VecEnv`` (list of
    info dicts, ``terminal_observation``, ``TimeLimit.truncated``, ``env.seed``); with MLP
    policies the environment step is a small share of the training time (about 36 us of the
    roughly 450 us per step of PPO with 4 assets), so the plain SB3 wrapper is used: it is
    SB3's tested path for truncation bootstrapping and seeding.

    With ``normalize=True`` (default) the copies sit behind SB3's ``VecNormalize``: running
    standardisation of the observations and scaling of the rewards by the running standard
    deviation of the discounted return. The environment's observation (closes divided by the
    latest close) differs from 1 by about a daily return and the log-return reward is of the
    order of 1e-2. On one small AR(1) mean-reverting market (4 assets, phi = -0.3, 10 bps;
    PPO for 2e5 steps, tested on the 1000 days after training) PPO without normalisation
    ended in all cash or near-static positions (turnover under 1 a year; net Sharpe 0.17,
    -0.25 and 1.00 for three seeds, -0.27 after 1e6 steps) and with it traded the reversal
    (turnover about 290 a year; net Sharpe 2.18, 2.80 and 2.61; PAMR 2.23, equal weight 0.39).
    The statistics continue from fit to fit and `allocate` applies those of the last fit.

    The first fit trains a new model for ``total_timesteps`` steps. Later fits continue
    training the same model (weights, optimiser state, SAC's replay buffer) for
    ``rolling_timesteps`` steps on environments over the extended history (0: keep the model
    as it is). A fit after `set_params` changed a setting the model was built or trained with
    (anything but ``total_timesteps``, ``rolling_timesteps``, ``num_threads`` and ``label``)
    trains a new model instead. `reset` drops the model, so every backtest starts from
    scratch.

Decisions (`allocate`)
    `observation` builds exactly the observation `PortfolioEnv` gives at the decision date:
    the last ``lookback`` closes of each asset divided by its close at t (asset-major, float32)
    and the weights held, cash first, from the engine's drifted weights (cash = 1 - sum; None
    or all zeros: all cash, as at the start of an episode). The policy's deterministic action
    goes through the environment's own map (`actions_to_weights`, same ``action_map`` and
    ``logit_scale``), and the n asset weights are returned: non-negative, summing to at most 1
    (the rest is cash). The tests check both against the environment, and that a backtest
    with daily rebalancing reproduces an environment rollout of the same policy.

Universe
    The observation and action sizes depend on the number of assets, so a model is tied to
    the assets it was trained on (`assets_`). A fit trains on the assets that have prices on
    each of the last ``lookback + episode_length`` dates (an asset listed more recently joins
    at a later fit) and, when that asset set differs from the model's, trains a new model
    from scratch (``total_timesteps``). Between fits the engine may list or delist assets: an
    asset the model does not know gets weight 0 until a fit includes it; an asset the model
    knows that left the window (delisted) is shown to it as a flat price history with nothing
    held, and whatever weight the policy gives it stays in cash.

Randomness
    Each fit seeds SB3 (python, numpy and torch generators, the action space, the environment
    copies) with ``seed`` for the first fit and a seed derived from (``seed``, fit number)
    for later ones, inside a guard that restores the caller's global generators afterwards.
    On CPU with a fixed ``num_threads`` the same settings and data give the same weights.

Persistence
    `save` writes settings, asset names, every torch state dict of the model (networks and
    optimisers) and the normalisation statistics with ``torch.save``; `load` reads them with
    ``torch.load(weights_only=True)`` (no pickled code, unlike SB3's own zip format) and
    rebuilds the model from the settings. SAC's replay buffer is not saved: a loaded SAC agent
    continues training with an empty one.

This module needs ``stable-baselines3`` (``pip install 'stable-baselines3>=2.3'``).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import os
import random
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from kabuto.costs import cost_rates
from kabuto.data.panel import Panel, Window
from kabuto.errors import ConfigError, DataError, KabutoError
from kabuto.settings import check_seed, derived_seed
from kabuto.strategies.base import Strategy, held_weights
from kabuto.strategies.batched import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
)
from kabuto.strategies.rl.costs import COST_MODELS, subset_costs
from kabuto.strategies.rl.env import (
    ACTION_MAPS,
    PortfolioEnv,
    actions_to_weights,
    observed_features,
    policy_window,
    portfolio_observation,
    portfolio_spaces,
)
from kabuto.strategies.rl.rewards import check_reward_settings
from kabuto.strategies.torch_support import TorchStrategyMixin, load_payload, save_payload

try:
    from stable_baselines3 import A2C, PPO, SAC
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "kabuto.strategies.rl.agents needs stable-baselines3; install it with "
        "pip install 'stable-baselines3>=2.3'"
    ) from exc

__all__ = ["ACTIVATIONS", "ALGORITHMS", "RLAgent"]

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "sac": SAC}
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "elu": torch.nn.ELU,
}
# Settings RLAgent passes to the SB3 constructor itself; algorithm_kwargs may not repeat them.
_RESERVED = frozenset(
    {
        "policy",
        "env",
        "learning_rate",
        "gamma",
        "policy_kwargs",
        "seed",
        "device",
        "verbose",
        "_init_setup_model",
    }
)
# Defaults that differ from SB3's: a 1e6-transition replay buffer of n * window floats per
# observation (twice) is gigabytes for a 20-asset, 50-day window.
_DEFAULT_KWARGS: dict[str, dict[str, Any]] = {"sac": {"buffer_size": 100_000}}
_FORMAT = 1  # version of the file `save` writes


def _diverged(model: BaseAlgorithm, exc: Exception) -> bool:
    """Whether `exc` from training `model` is a divergence: weights that are no longer finite,
    or a finite log-scale so large that torch's action distribution refuses its scale of 0 or
    inf (torch's own validation message, as no attribute says so)."""
    weights = all(torch.isfinite(p).all() for p in model.policy.parameters())
    return not weights or "found invalid values" in str(exc)


class _SpacesOnly(gym.Env[np.ndarray, np.ndarray]):
    """A stand-in environment with the spaces of `PortfolioEnv` (to rebuild a loaded model)."""

    def __init__(self, n_assets: int, window: int, n_features: int) -> None:
        self.observation_space, self.action_space = portfolio_spaces(n_assets, window, n_features)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        raise RuntimeError("a loaded RLAgent trains on the environments fit builds")

    def step(self, action: np.ndarray):
        raise RuntimeError("a loaded RLAgent trains on the environments fit builds")


class RLAgent(TorchStrategyMixin, Strategy):
    """A PPO, A2C or SAC agent (stable-baselines3) trained on `PortfolioEnv`; long-only.

    See the module docstring for training, decisions, universe changes and determinism. One
    environment step is one trading day: the agent learns daily decisions, so backtest it with
    ``rebalance=1``.

    Parameters
    ----------
    algorithm : {"ppo", "a2c", "sac"}, default "ppo"
    lookback : int, default 50
        Closes per asset in the observation window.
    total_timesteps : int, default 50_000
        Environment steps (over all copies) of the first fit, and of a fit on a new asset set.
    rolling_timesteps : int, default 10_000
        Steps of every later fit, continuing the same model on the extended history; 0 keeps
        the model unchanged.
    episode_length : int, default 252
        Steps per training episode (random start dates). The first fit needs
        ``lookback + episode_length`` prices of every asset (`min_history`). Start dates are
        uniform, so the last `episode_length` dates before the fit date are trained on less
        often than earlier ones (the last one 1 / episode_length as often).
    n_envs : int, default 4
        Environment copies trained on together (SB3 ``DummyVecEnv``, seeds ``seed + i``).
    normalize : bool, default True
        Train on SB3 ``VecNormalize``: observations standardised by running means and
        variances (clipped to +-10) and rewards scaled by the running standard deviation of
        the discounted return. `allocate` applies the observation statistics as they stood
        at the end of the last fit. Without it the policy sees normalised closes that differ
        from 1 by about a daily return and rewards of about 1e-2, and PPO often settles on
        cash or a single asset (see the module docstring).
    reward : {"log_return", "differential_sharpe", "sharpe_window"}, default "log_return"
    eta : float, default 0.01
        Adaptation rate of the differential Sharpe ratio.
    sharpe_window : int, default 20
        Returns in the trailing Sharpe ratio reward.
    turnover_penalty, drawdown_penalty : float, default 0.0
        Penalty coefficients subtracted from the reward.
    costs_bps : float or mapping, default 10.0
        Commission of the training environments in basis points (the backtest's convention;
        0 only when given). A mapping may name assets a fit leaves out (not yet listed,
        delisted, too short a history); each fit uses the entries of its assets and "default".
        A config run (`kabuto backtest`, `kabuto sweep`) that leaves it out trains against
        the backtest's ``costs_bps``.
    cost_model : {"proportional", "exact"}, default "proportional"
        The backtest's ``1 - sum c |dw|`` or Jiang et al. (2017)'s exact remainder factor.
    action_map : {"softmax", "clip"}, default "softmax"
        How actions become weights, in training and in `allocate` alike.
    logit_scale : float, default 5.0
        Multiplier of the actions before the softmax.
    high_low : bool, default True
        Observe highs and lows besides closes when the data has them (`PortfolioEnv`).
    net_arch : sequence of int, default (64, 64)
        Hidden layers of the policy and of the value (PPO, A2C) or Q (SAC) networks.
    activation : {"tanh", "relu", "elu"} or None, default None
        Hidden activation; None keeps SB3's default (tanh for PPO and A2C, ReLU for SAC).
    learning_rate : float or None, default None
        None keeps SB3's default (3e-4 for PPO and SAC, 7e-4 for A2C).
    gamma : float, default 0.99
        Discount factor, in (0, 1].
    algorithm_kwargs : mapping or None, default None
        Further keyword arguments of the SB3 class (e.g. ``{"n_steps": 256, "batch_size": 64}``
        for PPO, ``{"learning_starts": 1000}`` for SAC). SAC's ``buffer_size`` defaults to
        100_000 here. Plain values only if the agent is to be saved.
    seed : int, default 0
    num_threads : int or None, default None
        Torch CPU threads while fitting and allocating (restored afterwards); None leaves
        torch's setting. Determinism on CPU is for a fixed thread count.
    device : {"cpu", "cuda", "auto"}, default "cpu"
        SB3 runs MLP policies fastest on the CPU.
    label : str, optional

    Attributes
    ----------
    model_ : PPO, A2C or SAC
        The trained SB3 model.
    normalizer_ : VecNormalize or None
        The observation and reward statistics (``normalize=True``), else None.
    assets_ : tuple of str
        The assets the model was trained on, in observation order.
    features_ : tuple of str
        The price features it observes: ``("close",)`` or ``("close", "high", "low")``.
    n_fits_ : int
        Fits since the last `reset` (or construction).
    fit_dates_ : list of Timestamp
        Date of each of those fits.
    timesteps_ : int
        Environment steps the model has trained for.
    from_scratch_ : bool
        Whether the last fit started a new model.
    model_settings_ : dict
        The settings the model was built and trained with (a later fit with other settings
        builds a new model).

    Raises
    ------
    ConfigError
        For a setting out of range, naming it and its value.
    DataError
        From `fit` when the history is too short, and from `allocate` for missing prices.

    Examples
    --------
    >>> from kabuto.sim import correlated_gbm
    >>> from kabuto.backtest import WalkForward
    >>> panel = correlated_gbm(4, 400, seed=0)
    >>> agent = RLAgent("ppo", lookback=20, total_timesteps=256, episode_length=64, n_envs=2,
    ...                 algorithm_kwargs={"n_steps": 64, "batch_size": 64}, num_threads=1)
    >>> result = WalkForward(rebalance=1, retrain=None, costs_bps=10).run(panel, [agent])
    """

    stateful: ClassVar[bool] = True
    long_only: ClassVar[bool] = True
    _run_settings: ClassVar[frozenset[str]] = frozenset(
        {"total_timesteps", "rolling_timesteps", "num_threads", "label"}
    )
    _state: ClassVar[tuple[str, ...]] = (
        "model_",
        "normalizer_",
        "assets_",
        "features_",
        "n_fits_",
        "fit_dates_",
        "timesteps_",
        "from_scratch_",
        "model_settings_",
    )

    def __init__(
        self,
        algorithm: str = "ppo",
        lookback: int = 50,
        total_timesteps: int = 50_000,
        rolling_timesteps: int = 10_000,
        episode_length: int = 252,
        n_envs: int = 4,
        normalize: bool = True,
        reward: str = "log_return",
        eta: float = 0.01,
        sharpe_window: int = 20,
        turnover_penalty: float = 0.0,
        drawdown_penalty: float = 0.0,
        costs_bps: float | Mapping[str, float] = 10.0,
        cost_model: str = "proportional",
        action_map: str = "softmax",
        logit_scale: float = 5.0,
        high_low: bool = True,
        net_arch: tuple[int, ...] = (64, 64),
        activation: str | None = None,
        learning_rate: float | None = None,
        gamma: float = 0.99,
        algorithm_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
        num_threads: int | None = None,
        device: str = "cpu",
        label: str | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.lookback = lookback
        self.total_timesteps = total_timesteps
        self.rolling_timesteps = rolling_timesteps
        self.episode_length = episode_length
        self.n_envs = n_envs
        self.normalize = normalize
        self.reward = reward
        self.eta = eta
        self.sharpe_window = sharpe_window
        self.turnover_penalty = turnover_penalty
        self.drawdown_penalty = drawdown_penalty
        self.costs_bps = costs_bps
        self.cost_model = cost_model
        self.action_map = action_map
        self.logit_scale = logit_scale
        self.high_low = high_low
        self.net_arch = net_arch
        self.activation = activation
        self.learning_rate = learning_rate
        self.gamma = gamma
        self.algorithm_kwargs = algorithm_kwargs
        self.seed = seed
        self.num_threads = num_threads
        self.device = device
        self.label = label
        self._validate()

    # ----------------------------------------------------------------- settings

    @property
    def min_history(self) -> int:
        """Prices the first fit needs: one observation window and one full training episode."""
        return self.lookback + self.episode_length

    def _validate(self) -> None:
        name = type(self).__name__
        check_choice(name, "algorithm", self.algorithm, ALGORITHMS)
        check_int(name, "lookback", self.lookback, 1)
        check_int(name, "total_timesteps", self.total_timesteps, 1)
        check_int(name, "rolling_timesteps", self.rolling_timesteps, 0)
        check_int(name, "episode_length", self.episode_length, 1)
        check_int(name, "n_envs", self.n_envs, 1)
        check_bool(name, "normalize", self.normalize)
        check_bool(name, "high_low", self.high_low)
        try:
            check_reward_settings(
                self.reward,
                self.eta,
                self.sharpe_window,
                self.turnover_penalty,
                self.drawdown_penalty,
                self.episode_length,
            )
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        self._check_costs(name)
        check_choice(name, "cost_model", self.cost_model, COST_MODELS)
        if self.cost_model == "exact" and isinstance(self.costs_bps, Mapping):
            raise ConfigError(
                f"{name}: cost_model='exact' takes one commission rate but costs_bps is a "
                "per-asset mapping; give costs_bps as a number or use cost_model='proportional'"
            )
        check_choice(name, "action_map", self.action_map, ACTION_MAPS)
        check_positive(name, "logit_scale", self.logit_scale)
        arch = self.net_arch
        if (
            not isinstance(arch, tuple | list)
            or any(isinstance(h, bool) or not isinstance(h, numbers.Integral) for h in arch)
            or (len(arch) and min(arch) < 1)
        ):
            raise ConfigError(
                f"{name}: net_arch={arch!r} is not allowed; use a tuple of positive layer "
                "widths, e.g. (64, 64) (empty: linear policy)"
            )
        if self.activation is not None:
            check_choice(name, "activation", self.activation, ACTIVATIONS)
        if self.learning_rate is not None:
            check_positive(name, "learning_rate", self.learning_rate)
        g = self.gamma
        if isinstance(g, bool) or not isinstance(g, numbers.Real) or not 0 < g <= 1:
            raise ConfigError(f"{name}: gamma={g!r} is not allowed; use a number in (0, 1]")
        self._check_algorithm_kwargs(name)
        check_seed(name, "seed", self.seed, limit=2**32)  # SB3 seeds numpy's legacy generator
        self._check_torch_settings(name)

    def _check_costs(self, name: str) -> None:
        costs = self.costs_bps
        if isinstance(costs, Mapping) and not costs:
            raise ConfigError(
                f"{name}: costs_bps={{}} names no rate; give a number of bps (e.g. 10) or a "
                "mapping with a 'default' rate"
            )
        named = [str(k) for k in costs if k != "default"] if isinstance(costs, Mapping) else []
        try:
            cost_rates(costs, named or ["<asset>"])
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    def _check_algorithm_kwargs(self, name: str) -> None:
        kwargs = self.algorithm_kwargs
        if kwargs is None:
            return
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise ConfigError(
                f"{name}: algorithm_kwargs={kwargs!r} is not allowed; use a mapping of keyword "
                f"arguments of stable-baselines3's {self.algorithm.upper()}, or None"
            )
        allowed = set(inspect.signature(ALGORITHMS[self.algorithm].__init__).parameters)
        allowed -= _RESERVED | {"self"}
        reserved = sorted(set(kwargs) & _RESERVED)
        if reserved:
            raise ConfigError(
                f"{name}: algorithm_kwargs sets {', '.join(map(repr, reserved))}, which "
                "RLAgent sets itself; use its own settings (learning_rate, gamma, net_arch, "
                "activation, seed, device) instead"
            )
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ConfigError(
                f"{name}: algorithm_kwargs has {', '.join(map(repr, unknown))}, not arguments "
                f"of stable-baselines3's {self.algorithm.upper()}; allowed: "
                + ", ".join(sorted(allowed))
            )

    def _env_settings(self, assets: tuple[str, ...]) -> dict[str, Any]:
        """Keyword arguments of a training `PortfolioEnv` on `assets` (besides the panel)."""
        return {
            "window": int(self.lookback),
            "episode_length": int(self.episode_length),
            "random_start": True,
            "costs_bps": subset_costs(self.costs_bps, assets),
            "cost_model": self.cost_model,
            "reward": self.reward,
            "eta": self.eta,
            "sharpe_window": self.sharpe_window,
            "turnover_penalty": self.turnover_penalty,
            "drawdown_penalty": self.drawdown_penalty,
            "action_map": self.action_map,
            "logit_scale": self.logit_scale,
            "high_low": bool(self.high_low),
        }

    # ----------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def _own_generators(self) -> Iterator[None]:
        """Let SB3 seed the global python, numpy and torch generators; restore them after."""
        # SB3 seeds numpy's legacy global generator, so that is the state to keep.
        py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
        devices = [torch.cuda.current_device()] if self._torch_device().type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002

    def _fit_seed(self, k: int) -> int:
        """Seed of fit number k: `seed` for the first, derived from (seed, k) for later ones."""
        return derived_seed(self.seed, k)

    def _algorithm_kwargs(self) -> dict[str, Any]:
        return _DEFAULT_KWARGS.get(self.algorithm, {}) | dict(self.algorithm_kwargs or {})

    def _build_model(self, env: DummyVecEnv, seed: int) -> BaseAlgorithm:
        """A new SB3 model on `env` (seeds the global generators: call inside the guard)."""
        policy_kwargs: dict[str, Any] = {"net_arch": [int(h) for h in self.net_arch]}
        if self.activation is not None:
            policy_kwargs["activation_fn"] = ACTIVATIONS[self.activation]
        kwargs = self._algorithm_kwargs()
        if self.learning_rate is not None:
            kwargs["learning_rate"] = float(self.learning_rate)
        cls = ALGORITHMS[self.algorithm]
        try:
            return cls(
                "MlpPolicy",
                env,
                gamma=float(self.gamma),
                policy_kwargs=policy_kwargs,
                seed=seed,
                device=self._torch_device(),
                verbose=0,
                **kwargs,
            )
        except (AssertionError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"{type(self).__name__}: stable-baselines3's {self.algorithm.upper()} rejected "
                f"the settings ({exc}); check algorithm_kwargs={self.algorithm_kwargs!r}"
            ) from exc

    def _learn(self, model: BaseAlgorithm, steps: int, reset_count: bool) -> None:
        """Train `model`; stable-baselines3 checks some `algorithm_kwargs` only now (PPO's
        ``ent_coef="auto"``, SAC's ``train_freq=0``), so its rejections of them are named."""
        updates = model._n_updates
        try:
            model.learn(total_timesteps=steps, reset_num_timesteps=reset_count)
        except KabutoError:
            raise
        except (AssertionError, ValueError, TypeError) as exc:
            if _diverged(model, exc):
                raise ConfigError(
                    f"{type(self).__name__}: stable-baselines3's {self.algorithm.upper()} "
                    "training diverged (its weights or its action distribution are no longer "
                    f"finite); lower learning_rate (now {model.learning_rate!r})"
                ) from exc
            # Only a failure before the first gradient update is a setting SB3 rejects late;
            # one after it is the training's own, whatever the settings.
            if not self.algorithm_kwargs or model._n_updates > updates:
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise ConfigError(
                f"{type(self).__name__}: stable-baselines3's {self.algorithm.upper()} failed "
                f"before its first update ({type(exc).__name__}: {first}); check "
                f"algorithm_kwargs={self.algorithm_kwargs!r}, or a learning setting such as "
                "learning_rate"
            ) from exc

    def training_panel(self, history: Window) -> Panel:
        """The training data in `history`: assets and trailing rows with complete prices.

        An asset trains only if it has prices on each of the last ``lookback + episode_length``
        dates (one observation window and one full episode); the rows used are the trailing
        ones in which every such asset has a price. An asset listed more recently is left out
        of this fit (it gets weight 0 until a later fit includes it).

        Parameters
        ----------
        history : Window
            Prices of shape (T, n), NaN before an asset listed.

        Returns
        -------
        Panel
            Prices of the training assets, at least ``lookback + episode_length`` dates.

        Raises
        ------
        DataError
            If no asset has ``lookback + episode_length`` trailing prices.
        """
        name = type(self).__name__
        prices = np.asarray(history.prices, dtype=np.float64)
        if prices.ndim != 2 or prices.shape[1] < 1:
            raise DataError(f"{name}: the training history has prices of shape {prices.shape}")
        n_rows = len(prices)
        trailing = np.isfinite(prices)[::-1] & (prices[::-1] > 0)
        run = np.where(trailing.all(axis=0), n_rows, trailing.argmin(axis=0))  # per asset
        need = self.lookback + self.episode_length
        keep = run >= need
        if not keep.any():
            best = int(np.argmax(run))
            raise DataError(
                f"{name}: the history ending {history.date.date()} has at most {int(run[best])} "
                f"dates of prices per asset ({history.assets[best]!r}); training needs at least "
                f"{need} (lookback {self.lookback} + episode_length {self.episode_length}); start "
                "the backtest later (min_history) or shorten window or episode_length"
            )
        first = n_rows - int(run[keep].min())
        columns = [a for a, k in zip(history.assets, keep, strict=True) if k]
        rows = history.dates[first:]

        def table(a: np.ndarray | None) -> pd.DataFrame | None:
            return None if a is None else pd.DataFrame(a[first:, keep], rows, columns)

        return Panel(
            table(prices),
            source=f"{name} training history to {history.date.date()}",
            highs=table(history.highs),
            lows=table(history.lows),
        )

    def make_env(self, panel: Panel) -> PortfolioEnv:
        """One training environment on `panel` with this agent's settings."""
        return PortfolioEnv(panel, **self._env_settings(panel.assets))

    def make_vec_env(self, panel: Panel) -> DummyVecEnv:
        """The ``n_envs`` training environments on `panel` (seeded when the model seeds them)."""
        return DummyVecEnv([lambda: self.make_env(panel) for _ in range(self.n_envs)])

    def _normalizer(self, venv: VecEnv, previous: VecNormalize | None) -> VecNormalize:
        """`venv` behind SB3's running normalisation, continuing `previous`'s statistics."""
        norm = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=float(self.gamma))
        if previous is not None:
            norm.obs_rms = previous.obs_rms.copy()
            norm.ret_rms = previous.ret_rms.copy()
        return norm

    # ----------------------------------------------------------------- training

    def fit(self, history: Window) -> Self:
        """Train on `history` (every return up to the fit date): new model or continued.

        Parameters
        ----------
        history : Window
            Prices of shape (T, n), NaN before an asset listed.

        Returns
        -------
        self
        """
        self._validate()
        panel = self.training_panel(history)
        k = int(self.__dict__.get("n_fits_", 0))
        seed = self._fit_seed(k)
        model = self.__dict__.get("model_")
        settings = self._model_settings()
        scratch = (
            model is None
            or tuple(self.assets_) != panel.assets
            or self.features_ != self._features(panel)
            or self.model_settings_ != settings
        )
        with self._threads(), self._own_generators():
            env = self.make_vec_env(panel)
            if self.normalize:
                env = self._normalizer(env, None if scratch else self.normalizer_)
            if scratch:
                model = self._build_model(env, seed)
                steps, reset_count = int(self.total_timesteps), True
            else:
                model.set_env(env, force_reset=True)
                model.set_random_seed(seed)
                steps, reset_count = int(self.rolling_timesteps), False
            if steps:
                self._learn(model, steps, reset_count)
        self.model_ = model
        self.normalizer_ = env if isinstance(env, VecNormalize) else None
        self.assets_ = panel.assets
        self.features_ = self._features(panel)
        self.n_fits_ = k + 1
        self.fit_dates_ = [*self.__dict__.get("fit_dates_", []), history.date]
        self.timesteps_ = int(model.num_timesteps)
        self.from_scratch_ = scratch
        self.model_settings_ = settings
        return self

    def reset(self) -> None:
        """Drop the model: the next `fit` trains a new one (a new backtest starts fresh)."""
        for attr in self._state:
            self.__dict__.pop(attr, None)

    # ----------------------------------------------------------------- decisions

    def _check_fitted(self) -> None:
        if "model_" not in self.__dict__:
            raise ConfigError(
                f"{self.name}: not fitted; call fit(history) first (the backtest does so on its "
                "retrain schedule)"
            )
        self._check_unchanged()

    def _features(self, panel: Panel) -> tuple[str, ...]:
        """The price features a training environment on `panel` observes."""
        return observed_features(panel.has_high_low, bool(self.high_low))

    def _window_features(self, window: Window) -> np.ndarray:
        """The window's last `lookback` rows of the model's features, shape (F, lookback, n)."""
        return policy_window(window, self.lookback, self.name, bool(self.high_low), self.features_)

    def _columns(self, window: Window) -> np.ndarray:
        """Column of each model asset in the window, -1 where it is absent."""
        if tuple(window.assets) == tuple(self.assets_):
            return np.arange(len(self.assets_))
        where = {a: i for i, a in enumerate(window.assets)}
        return np.array([where.get(a, -1) for a in self.assets_], dtype=np.int64)

    def observation(self, window: Window, prev_weights: np.ndarray | None = None) -> np.ndarray:
        """The observation the model gets at ``window.date`` (the environment's, see module doc).

        Parameters
        ----------
        window : Window
            At least `lookback` prices per asset, ending at the decision date.
        prev_weights : ndarray of shape (n,), optional
            Drifted asset weights held (the engine's); cash is ``1 - sum``. None: all cash.

        Returns
        -------
        ndarray of shape (m * window + m + 1,), float32
            For the m assets the model was trained on (`assets_`).
        """
        self._check_fitted()
        prev = held_weights(self.name, prev_weights, window, long_only=self.long_only)
        prices = self._window_features(window)  # (F, lookback, n)
        cols = self._columns(window)
        present = cols >= 0
        block = np.ones((len(prices), self.lookback, len(self.assets_)))  # absent: flat
        block[:, :, present] = prices[:, :, cols[present]]
        held = np.zeros(len(self.assets_) + 1)
        if prev is not None:
            held[1:][present] = prev[cols[present]]
        held[0] = 1.0 - held[1:].sum()
        return portfolio_observation(block.transpose(0, 2, 1), held)

    def weights_from_action(self, action: np.ndarray) -> np.ndarray:
        """Weights over cash and the model's assets, shape (m + 1,): the environment's map."""
        return actions_to_weights(action, self.action_map, float(self.logit_scale))

    def predict_action(self, obs: np.ndarray) -> np.ndarray:
        """The model's deterministic action for an environment observation, shape (m + 1,).

        With ``normalize=True`` the observation is first standardised with the statistics of
        the last fit, exactly as the training wrapper did.
        """
        self._check_fitted()
        if self.normalizer_ is not None:
            obs = self.normalizer_.normalize_obs(obs)
        with self._threads():
            action, _ = self.model_.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float64)

    def allocate(self, window: Window, prev_weights: np.ndarray | None = None) -> np.ndarray:
        """Target asset weights of shape (n,) for ``window.date``; cash is the remainder.

        Parameters
        ----------
        window : Window
            Prices of shape (L, n), L >= `lookback`, ending at the decision date.
        prev_weights : ndarray of shape (n,), optional
            The drifted weights held now (the engine passes them); None: all cash.

        Returns
        -------
        ndarray of shape (n,)
            Non-negative; the sum is at most 1 (up to rounding). Assets the model was not
            trained on get 0.
        """
        obs = self.observation(window, prev_weights)
        w = self.weights_from_action(self.predict_action(obs))
        cols = self._columns(window)
        present = cols >= 0
        out = np.zeros(window.n_assets)
        out[cols[present]] = w[1:][present]
        return out

    # ----------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write settings, assets and the model's state dicts (``weights_only`` loadable).

        The file is written to a temporary name and renamed, so a failed save leaves nothing
        half-written.

        Raises
        ------
        ConfigError
            If the agent is not fitted or a setting is not plain data (numbers, strings,
            lists, tuples, dicts).
        """
        self._check_fitted()
        settings = self.get_params(deep=False)
        settings["net_arch"] = [int(h) for h in self.net_arch]
        if isinstance(self.costs_bps, Mapping):
            settings["costs_bps"] = dict(self.costs_bps)
        if self.algorithm_kwargs is not None:
            settings["algorithm_kwargs"] = dict(self.algorithm_kwargs)
        for key, value in settings.items():
            if not _plain(value):
                raise ConfigError(
                    f"{self.name}: {key}={value!r} cannot be saved safely (not plain data); use "
                    "numbers, strings, lists and dicts"
                )
        model = self.model_
        _, variables = model._get_torch_save_params()
        state = {k: _to_cpu(v) for k, v in model.get_parameters().items()}
        tensors = {}
        for name in variables:
            value = model
            for part in name.split("."):
                value = getattr(value, part)
            tensors[name] = value.detach().cpu().clone()
        norm = None
        if self.normalizer_ is not None:
            norm = {
                f"{key}_{part}": torch.from_numpy(np.array(getattr(rms, part), dtype=np.float64))
                for key, rms in (
                    ("obs", self.normalizer_.obs_rms),
                    ("ret", self.normalizer_.ret_rms),
                )
                for part in ("mean", "var", "count")
            }
        payload = {
            "format": _FORMAT,
            "class": type(self).__name__,
            "settings": settings,
            "assets": list(self.assets_),
            "features": list(self.features_),
            "state": state,
            "tensors": tensors,
            "normalizer": norm,
            "fitted": {
                "n_fits_": int(self.n_fits_),
                "fit_dates_": [str(pd.Timestamp(d)) for d in self.fit_dates_],
                "timesteps_": int(self.timesteps_),
                "from_scratch_": bool(self.from_scratch_),
            },
        }
        save_payload(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RLAgent:
        """Read an agent written by `save`; it allocates at once and can go on training.

        Raises
        ------
        DataError
            If the file cannot be read or was not written by `save`.
        """
        payload = load_payload(path, cls.__name__, _FORMAT)
        settings = dict(payload["settings"])
        settings["net_arch"] = tuple(settings["net_arch"])
        obj = cls(**settings)
        assets = tuple(payload["assets"])
        features = tuple(payload["features"])
        fitted = payload["fitted"]
        with obj._threads(), obj._own_generators():
            env = DummyVecEnv(
                [
                    lambda: _SpacesOnly(len(assets), int(obj.lookback), len(features))
                    for _ in range(obj.n_envs)
                ]
            )
            norm = payload.get("normalizer")
            if norm is not None:
                env = obj._normalizer(env, None)
                for key, rms in (("obs", env.obs_rms), ("ret", env.ret_rms)):
                    rms.mean = norm[f"{key}_mean"].numpy().copy()
                    rms.var = norm[f"{key}_var"].numpy().copy()
                    rms.count = float(norm[f"{key}_count"])
            model = obj._build_model(env, obj._fit_seed(max(int(fitted["n_fits_"]) - 1, 0)))
            model.set_parameters(payload["state"], exact_match=True, device=model.device)
            for name, value in payload["tensors"].items():
                target = model
                for part in name.split("."):
                    target = getattr(target, part)
                with torch.no_grad():
                    target.copy_(value.to(target.device))
        model.num_timesteps = int(fitted["timesteps_"])
        obj.model_ = model
        obj.normalizer_ = env if norm is not None else None
        obj.assets_ = assets
        obj.features_ = features
        obj.n_fits_ = int(fitted["n_fits_"])
        obj.fit_dates_ = [pd.Timestamp(d) for d in fitted["fit_dates_"]]
        obj.timesteps_ = int(fitted["timesteps_"])
        obj.from_scratch_ = bool(fitted["from_scratch_"])
        obj.model_settings_ = obj._model_settings()
        return obj


def _plain(value: object) -> bool:
    """Whether `value` is data ``torch.load(weights_only=True)`` reads back as it was."""
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, numbers.Real):
        return isinstance(value, int | float) and (isinstance(value, int) or math.isfinite(value))
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _to_cpu(state: Any) -> Any:
    """A (nested) state dict with every tensor moved to the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_cpu(v) for v in state]
    return state
