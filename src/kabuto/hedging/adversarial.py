"""Adversarial deep hedging: a hedger trained against a generator of price paths.

Hirano, Minami and Imajo (2023, "Adversarial deep hedging: learning to hedge without price
process modeling", ICAIF '23, arXiv 2307.13217) replace the price model of deep hedging
(`kabuto.hedging.hedger`) by a generator network trained adversarially: the hedger minimises
the risk ``rho`` of the hedged short claim on generated paths, the generator maximises the
same risk against the current hedger, and the two are updated alternately::

    min_hedger max_{generator in C} rho(-Z + sum_t delta_t (S_{t+1} - S_t) - costs).

Without a constraint ``C`` the generator wins by making prices arbitrarily volatile, so the
generated paths are kept near reference data (historical or simulated return paths).

Generator (`PathGenerator`). It maps the log returns ``x_t`` of reference paths (the base
noise: simulated shocks, or bootstrapped historical returns) and latent Gaussian noise ``u_t``
to log returns ``r_t``, shape (N, T), by rescaling each reference return with a multiplier
chosen before it is seen::

    log m_t = strength * tanh(g_t),   g_t = head(h_t),
    h_t = GRU(h_{t-1}, [u_t, t / T, ln(S_t / K), r_{t-1}])
    r_t = M_t x_t + (M_t - M_t^2) v / 2,   M_t = c m_t,

``v`` being the per-step variance of ``x`` over the batch. ``M_t`` depends on the path so far,
the time, the moneyness and fresh noise, not on ``x_t``, so the generator can move volatility
to where it hurts the hedger (near the money close to maturity, after falls, in random bursts: fat
tails, volatility clustering, leverage) but cannot create a predictable drift; the
``(M - M^2) v / 2`` term keeps ``exp(r_t)`` a martingale increment when ``x_t`` is (exactly
for Gaussian ``x_t`` with mean ``-v / 2``, e.g. zero-drift GBM). Prices are
``S_0 exp(cumsum r)``.

Constraint. Two bounds keep the generated paths near the reference paths they came from:

* pathwise, ``|log m_t| <= strength``: before the projection below, every generated return is
  its reference return rescaled by a factor in ``[exp(-strength), exp(strength)]``
  (``strength = 0`` gives back the reference paths exactly);
* in aggregate, the realized volatility ``sqrt(mean r^2 / dt)`` over all paths and dates of a
  generated batch stays within ``vol_bound`` (relative) of that of its reference batch: when
  it leaves ``[1 - vol_bound, 1 + vol_bound]`` times the reference's, one common factor ``c``
  projects it onto the nearest edge (``c = 1`` otherwise). Without it the generator would
  simply make every path ``exp(strength)`` times more volatile.

Source note: the framework (hedger against generator, alternating updates, evaluation
against hedgers trained on explicit models) follows the paper; its exact generator network and
constraint could not be consulted when this was written, so the generator above and its two
bounds are this module's own construction (see the class docstrings).

Training (`AdversarialHedger.fit`). The hedger's updates are exactly those of `DeepHedger`
(same initial weights, input scaling, minibatch order, risk and Adam steps), taken on
generated instead of reference paths; after every `hedger_steps` of them the generator takes
`generator_steps` Adam steps on its objective, ``rho`` of the frozen hedger on a fresh
generated batch. With ``strength=0`` or ``generator_steps=0`` the generated paths are the
reference paths and the hedger is bit for bit the `DeepHedger` of the same settings.

Measured (benchmarks/adversarial_hedging.py: pfhedge's setting, cost 1e-4, CVaR 0.9, GBM
reference paths, 3 training seeds; the README has the tables): with the default strength 0.3
the hedger's price on held-out paths is about 4% and 3% above the GBM-trained hedger's on GBM
and Heston, level with it on Merton and real S&P 500 windows, and below it only on its own
generator's paths; a Heston-trained hedger is much better on Heston but loses far more
elsewhere. With strength 1 the hedger gets worse everywhere. The results move by more than
their seed spread under tiny numerical changes (the projection's stopping tolerance), so read
them as "no robustness gained", not as exact gaps.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NoReturn, Self

import numpy as np
import torch
from torch import Tensor, nn

from kabuto.errors import ConfigError
from kabuto.hedging.hedger import (
    DEFAULT_HIDDEN,
    DeepHedger,
    _single_asset_prices,
    check_learning_rate,
    hedge_features,
)
from kabuto.hedging.payoffs import european
from kabuto.hedging.pnl import HedgeResult
from kabuto.settings import (
    check_choice,
    check_int,
    check_non_negative,
    check_seed,
)
from kabuto.torch_settings import seeded_cpu_rng

__all__ = ["RISKS", "AdversarialHedger", "GeneratedReturns", "PathGenerator", "realized_volatility"]

# The generator maximises the risk itself; the OCE form of `DeepHedger` (a cash amount trained
# with the hedge) is not offered, its minimum over the cash amount being the expected shortfall.
RISKS = ("entropic", "cvar")
# The volatility projection's fixed-point steps stop within this many machine epsilons of the
# edge (relative; 1.2e-5 in float32). Each step shrinks the error by about the per-step
# volatility (~1e-2) while r is nearly linear in c; where the (M - M^2) v / 2 term dominates
# (a strength near the cap) they take a few more.
_PROJECTION_TOLERANCE = 100
_PROJECTION_MAX_STEPS = 20
#: The largest strength: exp(10) already rescales a return 22,000-fold, and float32 overflows
#: M^2 near strength 44.
MAX_STRENGTH = 10.0


def realized_volatility(log_returns: Tensor, dt: float = 1.0) -> Tensor:
    """Realized volatility ``sqrt(mean r^2 / dt)`` over all paths and dates (a scalar).

    Parameters
    ----------
    log_returns : Tensor
        Log returns ``r``. Shape: (N, T).
    dt : float, default 1.0
        Length of a step in years (1 gives the per-step volatility).
    """
    return torch.sqrt(log_returns.square().mean() / dt)


# ----------------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class GeneratedReturns:
    """One batch of a `PathGenerator` with the quantities its constraint is stated in.

    Attributes
    ----------
    log_returns : Tensor
        Generated log returns ``r_t``. Shape: (N, T).
    multipliers : Tensor
        ``m_t`` before the volatility projection, ``|log m_t| <= strength``. Shape: (N, T).
    scale : Tensor
        The projection's common factor ``c`` (1 when the constraint does not bind). Shape: ().
    vol_ratio : Tensor
        Realized volatility of `log_returns` over that of the reference returns, in
        ``[1 - vol_bound, 1 + vol_bound]`` to within 100 machine epsilons (relative). Shape: ().
    """

    log_returns: Tensor
    multipliers: Tensor
    scale: Tensor
    vol_ratio: Tensor


class PathGenerator(nn.Module):
    """Adversarial log-return paths: reference returns rescaled by a recurrent network.

    ``r_t = M_t x_t + (M_t - M_t^2) v / 2`` with ``M_t = c exp(strength tanh(g_t))``, ``g_t``
    the output of a GRU cell fed ``[u_t, t / T, ln(S_t / K) / sqrt(v T), r_{t-1} / sqrt(v)]``
    (latent noise, time, log-moneyness of the generated path so far, previous generated
    return; both before the projection by ``c``, which needs the whole batch) and ``c`` the
    volatility projection (see the module docstring). Because ``c`` and ``v`` are statistics of
    the whole batch, future dates included, the martingale term is exact only as the batch
    grows (an error of order 1 / (N T)), and ``M_t`` is free of ``x_t`` only up to ``c``: this
    shapes the adversary's paths, never what the hedger sees at a date. The last layer
    starts at zero, so an untrained generator returns its reference returns unchanged.

    Parameters
    ----------
    strength : float, default 0.3
        Bound ``s`` in [0, 10] on ``|log m_t|``; 0 makes the generator the identity.
    vol_bound : float, default 0.0
        Relative bound ``b`` in [0, 1) on the realized volatility of a generated batch against
        its reference batch; 0 keeps the reference's realized volatility, so the generator can
        only move volatility around (across paths, dates and states), not add to it.
    noise_dim : int, default 4
        Latent Gaussian noises ``u_t`` per step.
    hidden_size : int, default 32
        Width of the GRU state and of the head's hidden layer.
    """

    def __init__(
        self,
        strength: float = 0.3,
        vol_bound: float = 0.0,
        noise_dim: int = 4,
        hidden_size: int = 32,
    ) -> None:
        super().__init__()
        owner = "PathGenerator"
        self.strength = _check_strength(owner, strength)
        self.vol_bound = _check_vol_bound(owner, vol_bound)
        self.noise_dim = check_int(owner, "noise_dim", noise_dim, 1)
        hidden = check_int(owner, "hidden_size", hidden_size, 1)
        self.cell = nn.GRUCell(self.noise_dim + 3, hidden)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        last = self.head[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def generate(self, base: Tensor, noise: Tensor, log_moneyness: Tensor) -> GeneratedReturns:
        """Generated log returns and the quantities of the constraint.

        Parameters
        ----------
        base : Tensor
            Reference log returns ``x``. Shape: (N, T).
        noise : Tensor
            Latent standard normal noise ``u``. Shape: (N, T, noise_dim).
        log_moneyness : Tensor
            ``ln(S_0 / K)`` of every path. Shape: (N,).

        Returns
        -------
        GeneratedReturns
            Tensors of shape (N, T) and scalars.
        """
        n, steps = base.shape
        if tuple(noise.shape) != (n, steps, self.noise_dim) or tuple(log_moneyness.shape) != (n,):
            raise ConfigError(
                f"PathGenerator: noise has shape {tuple(noise.shape)} and log_moneyness "
                f"{tuple(log_moneyness.shape)}; for base returns of shape {(n, steps)} they must "
                f"be {(n, steps, self.noise_dim)} and ({n},)"
            )
        variance = base.detach().var().clamp(min=torch.finfo(base.dtype).tiny)
        one = torch.ones((), dtype=base.dtype, device=base.device)
        if self.strength == 0:
            return GeneratedReturns(base, torch.ones_like(base), one, one)
        multipliers = self._multipliers(base, noise, log_moneyness, variance)
        returns = _rescaled(multipliers, base, variance)
        base_vol = realized_volatility(base)
        ratio = realized_volatility(returns) / base_vol
        low, high = 1.0 - self.vol_bound, 1.0 + self.vol_bound
        scale = one
        if math.isfinite(float(ratio.detach())) and not low <= float(ratio.detach()) <= high:
            # One factor for the whole batch moves its realized volatility onto the nearest
            # edge, by fixed-point steps (differentiable: the generator's gradient sees them).
            target = ratio.clamp(low, high) * base_vol
            tolerance = _PROJECTION_TOLERANCE * torch.finfo(base.dtype).eps
            for step in range(_PROJECTION_MAX_STEPS + 1):  # the last pass only checks
                vol = realized_volatility(returns)
                if abs(float((vol / target).detach()) - 1.0) <= tolerance:
                    break
                if step == _PROJECTION_MAX_STEPS:
                    raise ConfigError(
                        f"PathGenerator: the volatility projection did not converge in "
                        f"{_PROJECTION_MAX_STEPS} steps at strength={self.strength!r}; use a "
                        "smaller strength"
                    )
                scale = scale * target / vol
                returns = _rescaled(scale * multipliers, base, variance)
            ratio = realized_volatility(returns) / base_vol
        return GeneratedReturns(returns, multipliers, scale, ratio)

    def forward(self, base: Tensor, noise: Tensor, log_moneyness: Tensor) -> Tensor:
        """Generated log returns; arguments as in `generate`. Shape: (N, T)."""
        return self.generate(base, noise, log_moneyness).log_returns

    def _multipliers(
        self, base: Tensor, noise: Tensor, log_moneyness: Tensor, variance: Tensor
    ) -> Tensor:
        """``m_t`` along the unprojected generated path. Shape: (N, T)."""
        n, steps = base.shape
        step_sd = variance.sqrt()
        horizon_sd = (variance * steps).sqrt()
        hidden = torch.zeros(n, self.cell.hidden_size, dtype=base.dtype, device=base.device)
        moneyness = log_moneyness
        previous = torch.zeros_like(log_moneyness)
        out = []
        for t in range(steps):
            time = torch.full_like(moneyness, t / steps)
            state = torch.stack([time, moneyness / horizon_sd, previous / step_sd], dim=-1)
            hidden = self.cell(torch.cat([noise[:, t], state], dim=-1), hidden)
            m = torch.exp(self.strength * torch.tanh(self.head(hidden).squeeze(-1)))
            previous = _rescaled(m, base[:, t], variance)
            moneyness = moneyness + previous
            out.append(m)
        return torch.stack(out, dim=1)


def _rescaled(multipliers: Tensor, base: Tensor, variance: Tensor) -> Tensor:
    """``M x + (M - M^2) v / 2``: exactly ``x`` where ``M == 1``."""
    return multipliers * base + (multipliers - multipliers.square()) * (variance / 2)


def _generated_prices(prices: Tensor, base: Tensor, returns: Tensor) -> Tensor:
    """Prices ``S_0 exp(cumsum r)``, written as the reference prices times
    ``exp(cumsum(r - x))`` so that ``r == x`` gives the reference prices bit for bit.

    Shape: input (N, T + 1), (N, T), (N, T); output (N, T + 1).
    """
    excess = torch.cumsum(returns - base, dim=1)
    return prices * torch.exp(torch.cat([torch.zeros_like(excess[:, :1]), excess], dim=1))


# ------------------------------------------------------------------------------------- trainer


class AdversarialHedger(DeepHedger):
    """Deep hedging of a short European option against an adversarial path generator.

    The hedger (one of `kabuto.hedging.hedger`'s policies) minimises the risk of the hedged
    short claim on generated paths, the `PathGenerator` maximises it within its constraint,
    alternately (see the module docstring). The hedger's settings and its update schedule are
    those of `DeepHedger` (`epochs`, `batch_size`, `learning_rate`, `seed`); the generator acts
    after every `hedger_steps` hedger updates. `price` is the indifference price (the risk of
    the hedged short position) on the paths it is given.

    Parameters
    ----------
    strike, maturity, kind, policy, hidden_sizes, previous_input, aversion, risk_level, cost,
    unwind, epochs, batch_size, learning_rate
        As in `DeepHedger`.
    risk : {"entropic", "cvar"}, default "entropic"
        `entropic_risk` with `aversion` or `expected_shortfall` at `risk_level`: minimised by
        the hedger and maximised by the generator.
    strength : float, default 0.3
        The generator's bound on ``|log m_t|`` (in [0, 10]; 0 turns the adversary off).
    vol_bound : float, default 0.0
        Relative bound in [0, 1) on a generated batch's realized volatility against its
        reference batch's (0: the same realized volatility).
    hedger_steps : int, default 1
        Hedger updates per round.
    generator_steps : int, default 1
        Generator updates after each round's hedger updates (0 turns the adversary off).
    generator_learning_rate : float, default 0.001
        Adam's step size for the generator.
    noise_dim, generator_hidden : int, default 4 and 32
        The generator's latent noises per step and width (`PathGenerator`).
    seed : int, default 0
        Seeds the hedger exactly as `DeepHedger` does, and the generator's weights, latent
        noise and batches (same seed, same result on CPU).
    device : {"cpu", "cuda", "auto"}, default "cpu"
    num_threads : int, optional
        Torch CPU threads while fitting, hedging and pricing (restored afterwards).

    Attributes
    ----------
    policy_ : HedgePolicy
        The trained hedging policy.
    generator_ : PathGenerator
        The trained generator (identity when the adversary is off).
    step_losses_ : list of float
        The hedger's training loss at every Adam step, in order (as `DeepHedger`'s).
    hedger_losses_ : list of float
        Per round: the hedger's training loss (risk on its generated batches), averaged over
        the round's updates; a last partial round counts as a round.
    generator_losses_ : list of float
        Per round with generator updates: the risk on the generator's last batch, the quantity
        it maximises (computed before its last update).
    vol_ratios_ : list of float
        Per round with generator updates: the constraint's statistic on that batch, realized
        volatility of the generated over the reference returns, in ``[1 - vol_bound, 1 +
        vol_bound]``.
    n_steps_ : int
        Rebalancing dates T of the training paths.
    reference_volatility_ : float
        Annualized realized volatility of the reference paths (``dt = maturity / T``).
    """

    def __init__(
        self,
        strike: float,
        maturity: float,
        kind: str = "call",
        policy: str = "band",
        hidden_sizes: tuple[int, ...] = DEFAULT_HIDDEN,
        previous_input: bool = False,
        risk: str = "entropic",
        aversion: float = 1.0,
        risk_level: float = 0.9,
        cost: float = 0.0,
        unwind: bool = True,
        epochs: int = 200,
        batch_size: int | None = None,
        learning_rate: float = 0.001,
        strength: float = 0.3,
        vol_bound: float = 0.0,
        hedger_steps: int = 1,
        generator_steps: int = 1,
        generator_learning_rate: float = 0.001,
        noise_dim: int = 4,
        generator_hidden: int = 32,
        seed: int = 0,
        device: str = "cpu",
        num_threads: int | None = None,
    ) -> None:
        self.strength = strength
        self.vol_bound = vol_bound
        self.hedger_steps = hedger_steps
        self.generator_steps = generator_steps
        self.generator_learning_rate = generator_learning_rate
        self.noise_dim = noise_dim
        self.generator_hidden = generator_hidden
        super().__init__(
            strike,
            maturity,
            kind=kind,
            policy=policy,
            hidden_sizes=hidden_sizes,
            previous_input=previous_input,
            risk=risk,
            aversion=aversion,
            risk_level=risk_level,
            cost=cost,
            unwind=unwind,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            device=device,
            num_threads=num_threads,
        )

    # ----------------------------------------------------------------- settings

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        check_choice(name, "risk", self.risk, RISKS)
        _check_strength(name, self.strength)
        _check_vol_bound(name, self.vol_bound)
        check_int(name, "hedger_steps", self.hedger_steps, 1)
        check_int(name, "generator_steps", self.generator_steps, 0)
        check_learning_rate(name, "generator_learning_rate", self.generator_learning_rate)
        check_int(name, "noise_dim", self.noise_dim, 1)
        check_int(name, "generator_hidden", self.generator_hidden, 1)

    @property
    def adversarial(self) -> bool:
        """Whether the generator acts (``strength > 0`` and ``generator_steps > 0``)."""
        return self.strength > 0 and self.generator_steps > 0

    # ----------------------------------------------------------------- training

    def fit(self, reference_paths: Tensor, *, volatility: float) -> Self:
        """Train the hedger against the generator on reference price paths.

        Parameters
        ----------
        reference_paths : Tensor
            Prices at t = 0..T whose log returns are the generator's base noise (e.g.
            zero-drift `gbm_paths`, or `bootstrap_paths` of historical returns). Shape:
            (N, T + 1) or (N, T + 1, 1).
        volatility : float
            The constant volatility the hedger is told (>= 0; as in `hedge_features`): the
            generated paths have no other volatility to report.

        Returns
        -------
        self
        """
        self._validate()
        with self._threads():
            return self._fit(reference_paths, volatility)

    def _fit(self, prices: Tensor, volatility: float) -> Self:
        name = type(self).__name__
        s = _single_asset_prices(f"{name}.fit", prices)
        sigma = check_non_negative(f"{name}.fit", "volatility", volatility)
        device = self._torch_device()
        s = s.to(device)
        n, steps = s.shape[0], s.shape[1] - 1
        dtype = s.dtype
        base = _moving_returns(f"{name}.fit", s)
        moneyness = torch.log(s[:, 0] / self.strike)
        features = hedge_features(
            s, strike=self.strike, maturity=self.maturity, volatility=sigma, kind=self.kind
        )

        # The hedger is built, scaled and ordered exactly as `DeepHedger` does it.
        policy = self._initial_policy(features, 1, device, dtype)
        optimizer = torch.optim.Adam(policy.parameters(), lr=self.learning_rate)
        order = torch.Generator().manual_seed(self.seed)

        with seeded_cpu_rng(_derived_seed(self.seed, 1)):
            generator = PathGenerator(
                self.strength, self.vol_bound, self.noise_dim, self.generator_hidden
            )
        generator = generator.to(device=device, dtype=dtype)
        generator_optimizer = torch.optim.Adam(
            generator.parameters(), lr=self.generator_learning_rate
        )
        randomness = torch.Generator().manual_seed(_derived_seed(self.seed, 2))
        batch = n if self.batch_size is None else min(self.batch_size, n)

        def noise(rows: int) -> Tensor:
            shape = (rows, steps, self.noise_dim)
            return torch.randn(shape, generator=randomness, dtype=dtype).to(device)

        def risk_on(index: Tensor | None, generated: Tensor | None) -> Tensor:
            """Risk of the policy on the reference rows `index` (None: all), or on the
            generated log returns of those rows."""
            p = s if index is None else s[index]
            if generated is None:
                f = features if index is None else features.subset(index)
            else:
                p = _generated_prices(p, base if index is None else base[index], generated)
                f = hedge_features(
                    p, strike=self.strike, maturity=self.maturity, volatility=sigma, kind=self.kind
                )
            z = european(p, self.strike, self.kind)
            return self.risk_of(HedgeResult.evaluate(p, policy(f), z, self.cost, self.unwind).pnl)

        def generate(index: Tensor | None) -> GeneratedReturns:
            rows = n if index is None else index.shape[0]
            x = base if index is None else base[index]
            m0 = moneyness if index is None else moneyness[index]
            out = generator.generate(x, noise(rows), m0)
            if not bool(torch.isfinite(out.log_returns).all()):
                generator_diverged("returns are no longer finite")
            return out

        def generator_diverged(what: str) -> NoReturn:
            raise ConfigError(
                f"{name}.fit: the generator's {what} after {len(self.generator_losses_)} "
                f"rounds: it diverged; lower generator_learning_rate="
                f"{self.generator_learning_rate!r} or strength={self.strength!r}"
            )

        def generator_round() -> None:
            policy.requires_grad_(False)
            for _ in range(self.generator_steps):
                index = None
                if batch < n:
                    index = torch.randint(n, (batch,), generator=randomness).to(device)
                out = generate(index)
                value = risk_on(index, out.log_returns)
                risk = float(value.detach())
                if not math.isfinite(risk):
                    with torch.no_grad():  # whose fault: the hedger's, if on reference paths too
                        if not math.isfinite(float(risk_on(index, None))):
                            self._diverged(len(step_losses), total_steps, risk)
                    generator_diverged(f"risk became {risk}")
                generator_optimizer.zero_grad(set_to_none=True)
                (-value).backward()
                generator_optimizer.step()
            policy.requires_grad_(True)
            self.generator_losses_.append(float(value.detach()))
            self.vol_ratios_.append(float(out.vol_ratio.detach()))

        self.hedger_losses_: list[float] = []
        self.generator_losses_: list[float] = []
        self.vol_ratios_: list[float] = []
        round_losses: list[float] = []
        step_losses: list[float] = []
        total_steps = self.epochs * math.ceil(n / batch)
        policy.train()
        for _ in range(self.epochs):
            if batch == n:
                batches: list[Tensor | None] = [None]
            else:
                batches = list(torch.randperm(n, generator=order).to(device).split(batch))
            for index in batches:
                generated = None
                if self.adversarial:
                    with torch.no_grad():
                        generated = generate(index).log_returns
                loss = risk_on(index, generated)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step_losses.append(float(loss.detach()))
                if not math.isfinite(step_losses[-1]):
                    self._diverged(len(step_losses), total_steps, step_losses[-1])
                round_losses.append(step_losses[-1])
                if len(round_losses) == self.hedger_steps:
                    self.hedger_losses_.append(sum(round_losses) / len(round_losses))
                    round_losses = []
                    if self.adversarial:
                        generator_round()
        if round_losses:
            self.hedger_losses_.append(sum(round_losses) / len(round_losses))
        policy.eval()
        generator.eval()
        self._check_loss_fell(step_losses, european(s, self.strike, self.kind), s)

        self.policy_ = policy
        self.generator_ = generator
        self.step_losses_ = step_losses
        self.n_steps_ = steps
        self.n_instruments_ = 1
        self.reference_volatility_ = float(realized_volatility(base, self.maturity / steps))
        return self

    # ----------------------------------------------------------------- use

    def generate(self, base_paths: Tensor, *, seed: int = 0) -> Tensor:
        """Paths of the trained generator built on the returns of `base_paths` (no gradients).

        Parameters
        ----------
        base_paths : Tensor
            Prices at t = 0..T giving the base returns (e.g. fresh reference paths). Shape:
            (N, T + 1) or (N, T + 1, 1).
        seed : int, default 0
            Seeds the latent noise.

        Returns
        -------
        Tensor
            Generated prices, starting at the base prices' ``S_0``. Shape: (N, T + 1).
        """
        self._validate()
        self._check_fitted()
        name = type(self).__name__
        check_seed(f"{name}.generate", "seed", seed)
        dtype = next(self.generator_.parameters()).dtype
        device = next(self.generator_.parameters()).device
        s = _single_asset_prices(f"{name}.generate", base_paths).to(device=device, dtype=dtype)
        base = _moving_returns(f"{name}.generate", s)
        shape = (s.shape[0], base.shape[1], self.generator_.noise_dim)
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(shape, generator=gen, dtype=dtype).to(device)
        with self._threads(), torch.no_grad():
            returns = self.generator_(base, noise, torch.log(s[:, 0] / self.strike))
            return _generated_prices(s, base, returns)


# ------------------------------------------------------------------------------------- checks


def _moving_returns(owner: str, prices: Tensor) -> Tensor:
    """Log returns (N, T) of prices (N, T + 1) that move: the generator rescales them, and
    paths with zero realized volatility would give 0 / 0."""
    base = torch.log(prices).diff(dim=1)
    if base.numel() < 2:
        raise ConfigError(
            f"{owner}: the paths have shape {tuple(prices.shape)}, one return in all; the "
            "generator scales by their variance, so give at least 2 returns (paths or steps)"
        )
    if float(realized_volatility(base)) == 0.0:
        raise ConfigError(
            f"{owner}: the paths never move (zero realized volatility); the generator rescales "
            "their returns, so give paths that do"
        )
    return base


def _check_strength(owner: str, value: object) -> float:
    strength = check_non_negative(owner, "strength", value)
    if strength > MAX_STRENGTH:
        raise ConfigError(
            f"{owner}: strength={value!r} is not allowed; use a number in [0, {MAX_STRENGTH:g}] "
            f"(exp({MAX_STRENGTH:g}) already rescales a return 22,000-fold)"
        )
    return strength


def _check_vol_bound(owner: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(
            f"{owner}: vol_bound={value!r} is not allowed; use a number in [0, 1), e.g. 0.1"
        )
    return float(value)


def _derived_seed(seed: int, stream: int) -> int:
    """An independent seed for one of the trainer's random streams."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])
