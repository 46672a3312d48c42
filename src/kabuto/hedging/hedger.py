"""Deep hedging of a European option: policies, baselines and the `DeepHedger` trainer.

Deep hedging (Buehler, Gonon, Teichmann and Wood 2019, "Deep hedging", Quantitative Finance
19(8)) chooses the holdings ``delta_t`` of the underlying at every rebalancing date as the
output of a neural network of the information available then, and trains the network on
simulated paths by minimising a convex risk measure ``rho`` (`kabuto.hedging.risk`) of the
hedged P&L of the short claim Z (`kabuto.hedging.pnl`)::

    min_delta rho(-Z + sum_t delta_t (S_{t+1} - S_t) - costs(delta)).

Indifference price. For a cash-invariant ``rho`` (``rho(X + c) = rho(X) - c``; all of
`kabuto.hedging.risk` are), the price ``p`` that makes the hedger indifferent between selling Z
for ``p`` and not selling it is ``p = pi(-Z) - pi(0)`` with ``pi(X) = inf_delta rho(X + gains -
costs)`` (Buehler et al., section 3). When prices are martingales (discounted prices under a
pricing measure, as with the zero-drift paths used here), trading alone cannot lower the risk
below ``rho(0) = 0``, so ``pi(0) = 0`` and the price is the optimal risk of the hedged short
position, ``p = rho(-Z + gains - costs)`` at the trained hedge: this is `DeepHedger.price`.

Information at date ``t = 0..T-1`` (`hedge_features`): the log-moneyness ``ln(S_t / K)``, the
time to maturity ``tau_t = maturity - t dt`` (``dt = maturity / T``), the volatility (a constant
for GBM, or the instantaneous volatility ``sqrt(v_t)`` of a stochastic-volatility path) and the
previous holding ``delta_{t-1}`` (0 before the first trade), a network input of the recurrent
policy (and of the band policy with ``previous_input=True``) and the point the band policy
clamps. Prices are discounted (zero rate), and the claim is a European call or put with strike
K and the given maturity.

Policies (`torch.nn.Module`; ``forward(features)`` returns the holdings, shape (N, T)):

* `MLPPolicy`: a feed-forward network of the market information, evaluated for all dates at
  once (no loop).
* `RecurrentPolicy`: the same network with the previous holding as an extra input, so it can
  learn to leave the hedge alone (a loop over the T dates).
* `NoTransactionBandPolicy` (Imaki, Imajo, Ito, Minami and Nakagawa 2021, "No-transaction band
  network", arXiv 2103.01775): the network outputs two widths ``w_low, w_high >= 0``
  (softplus) of a band around the Black-Scholes delta, and the holding is the previous one
  moved into the band, ``delta_t = clamp(delta_{t-1}, Delta_t - w_low, Delta_t + w_high)``:
  it does not trade inside the band and trades to its nearest edge outside it. The widths
  depend on the market state only (their theorem: the optimal hedge of a European claim under
  proportional costs is such a band), so the network runs for all dates at once and only the
  cheap clamp loops over dates (pfhedge's example computes the same band, but runs its whole
  model once per date because the clamp's previous holding is one of the model's inputs);
  ``previous_input=True`` feeds the previous holding to the network as well, at the price of a
  network call per date.
* Baselines without parameters: `BlackScholesDelta` (the Black-Scholes delta at the given
  volatility) and `WhalleyWilmott` (the asymptotic no-transaction band of Whalley and Wilmott
  1997 around it).

`DeepHedger` trains one of the networks with Adam on a fixed set of simulated paths (full batch
by default; vectorised over paths, the only Python loop being over the T dates for the
recurrent policy and the clamp of the band policies) and records the loss per epoch; see its
Notes on how many paths to train on.
`hedge_with` runs any policy (trained or a baseline) on paths and returns a `HedgeResult`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kabuto.errors import ConfigError
from kabuto.hedging.blocked_mlp import ActivationPool, blocked_relu_mlp
from kabuto.hedging.payoffs import european
from kabuto.hedging.pnl import HedgeResult
from kabuto.hedging.risk import OCERisk, risk_measure
from kabuto.settings import (
    check_bool,
    check_choice,
    check_int,
    check_layer_sizes,
    check_non_negative,
    check_positive,
    check_seed,
)
from kabuto.torch_settings import TorchSettingsMixin, seeded_cpu_rng

__all__ = [
    "POLICIES",
    "RISKS",
    "BlackScholesDelta",
    "DeepHedger",
    "HedgeFeatures",
    "HedgePolicy",
    "MLPPolicy",
    "NoTransactionBandPolicy",
    "RecurrentPolicy",
    "WhalleyWilmott",
    "band_rollout",
    "hedge_features",
    "hedge_with",
]

POLICIES = ("mlp", "recurrent", "band")
RISKS = ("entropic", "cvar", "oce")
KINDS = ("call", "put")

DEFAULT_HIDDEN = (32, 32, 32, 32)
# How far above its start (in units of the larger of the first loss, the claim's mean payoff
# and the spot) a training's final loss may end before fit calls it diverged.
_LOSS_RISE_LIMIT = 10.0
# The band networks start with widths of about this much (softplus of the output bias), so that
# training starts near the delta hedge and the gradient reaches the band edges on most paths.
INITIAL_BAND_WIDTH = 0.05
_SQRT_2PI = math.sqrt(2.0 * math.pi)
# Volatility x sqrt(time) below this is treated as zero in the Black-Scholes formulas.
_TINY_SD = 1e-12
# An input whose standard deviation is below this times max(|mean|, 1) is treated as constant.
_CONSTANT_INPUT = 1e-6
# Rows per block when a network runs over many rows on CPU (see `_Network.forward`).
CPU_BLOCK = 8192


# ------------------------------------------------------------------------------------ features


@dataclass(frozen=True)
class HedgeFeatures:
    """What a hedger knows at each rebalancing date t = 0..T-1 of each path; all (N, T).

    Attributes
    ----------
    spot : Tensor
        ``S_t``.
    log_moneyness : Tensor
        ``ln(S_t / K)``.
    time_to_maturity : Tensor
        ``maturity - t dt``, the same on every path.
    volatility : Tensor
        The volatility used by the Black-Scholes baselines and fed to the networks.
    kind : {"call", "put"}
        The claim whose Black-Scholes `delta` and `gamma` these are.
    delta : Tensor
        Black-Scholes delta of the claim at ``(S_t, tau_t, volatility)`` (zero rate); computed
        on first use (the MLP and recurrent policies never need it).
    gamma : Tensor
        Black-Scholes gamma there (computed with `delta`).
    """

    spot: Tensor
    log_moneyness: Tensor
    time_to_maturity: Tensor
    volatility: Tensor
    kind: str = "call"

    @cached_property
    def _greeks(self) -> tuple[Tensor, Tensor]:
        return _bs_delta_gamma(
            self.spot, self.log_moneyness, self.time_to_maturity, self.volatility, self.kind
        )

    @property
    def delta(self) -> Tensor:
        return self._greeks[0]

    @property
    def gamma(self) -> Tensor:
        return self._greeks[1]

    def inputs(self) -> Tensor:
        """The market inputs of the networks, (log-moneyness, time, volatility). Shape (N, T, 3)."""
        return torch.stack(self._market(), dim=-1)

    def input_moments(self) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of each market input over all paths and dates, (3,) each
        (without stacking the inputs: on millions of paths that copy is hundreds of MB). The
        deviation is the population one, 0 (not NaN) for a single path of a single date."""
        market = self._market()
        means = [x.mean() for x in market]
        stds = [x.std(correction=0) for x in market]
        return torch.stack(means), torch.stack(stds)

    def _market(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.log_moneyness, self.time_to_maturity, self.volatility

    def _map(self, fn: Callable[[Tensor], Tensor]) -> HedgeFeatures:
        tensors = (self.spot, *self._market())
        return HedgeFeatures(*(fn(x) for x in tensors), kind=self.kind)

    def subset(self, index: Tensor) -> HedgeFeatures:
        """The features of the paths `index` (a minibatch)."""
        return self._map(lambda x: x[index])

    def to(self, device: torch.device | str) -> HedgeFeatures:
        return self._map(lambda x: x.to(device))

    @property
    def n_paths(self) -> int:
        return self.spot.shape[0]

    @property
    def n_steps(self) -> int:
        return self.spot.shape[1]


def hedge_features(
    prices: Tensor,
    *,
    strike: float,
    maturity: float,
    volatility: float | Tensor,
    kind: str = "call",
) -> HedgeFeatures:
    """Features of a European option on one asset at the dates t = 0..T-1 of every path.

    Parameters
    ----------
    prices : Tensor
        Prices at t = 0..T (positive). Shape: (N, T + 1) or (N, T + 1, 1).
    strike : float
        K > 0.
    maturity : float
        Time from the first date to expiry in years (> 0); the dates are ``t maturity / T``.
    volatility : float or Tensor
        A constant volatility (>= 0, e.g. GBM's), or the volatility at each date, a tensor of
        shape (N, T + 1) (e.g. ``variance.sqrt()`` of `kabuto.sim.paths.heston_paths`; the last
        column is not used) or ().
    kind : {"call", "put"}, default "call"
        Which delta and gamma to compute.

    Returns
    -------
    HedgeFeatures
        Tensors of shape (N, T) in the prices' dtype and device.
    """
    owner = "hedge_features"
    s = _single_asset_prices(owner, prices)
    k = check_positive(owner, "strike", strike)
    horizon = check_positive(owner, "maturity", maturity)
    check_choice(owner, "kind", kind, KINDS)
    n, steps = s.shape[0], s.shape[1] - 1
    spot = s[:, :-1]
    vol = _volatility(owner, volatility, n, steps, s)
    dt = horizon / steps
    tau = (horizon - dt * torch.arange(steps, dtype=s.dtype, device=s.device)).expand(n, steps)
    log_moneyness = torch.log(spot / k)
    return HedgeFeatures(spot, log_moneyness, tau, vol, kind)


def _bs_delta_gamma(
    spot: Tensor, log_moneyness: Tensor, tau: Tensor, vol: Tensor, kind: str
) -> tuple[Tensor, Tensor]:
    """Black-Scholes delta and gamma at zero rate (the formulas of `closed_form`, in torch).

    ``d1 = ln(S / K) / (sigma sqrt(tau)) + sigma sqrt(tau) / 2``; call delta ``N(d1)``, put
    ``N(d1) - 1``; gamma ``phi(d1) / (S sigma sqrt(tau))``. At zero volatility the delta is the
    step ``1{S > K}`` (1/2 at the money) and the gamma 0 away from the money.
    """
    total_sd = vol * tau.sqrt()
    safe_sd = total_sd.clamp(min=_TINY_SD)
    d1 = log_moneyness / safe_sd + total_sd / 2
    delta = torch.special.ndtr(d1)
    if kind == "put":
        delta = delta - 1.0
    gamma = torch.exp(-0.5 * d1.square()) / (_SQRT_2PI * spot * safe_sd)
    return delta, gamma


# ------------------------------------------------------------------------------------ policies


class HedgePolicy(nn.Module):
    """A hedging strategy: ``forward(features)`` maps `HedgeFeatures` to holdings (N, T)."""

    def forward(self, features: HedgeFeatures) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class _Network(nn.Module):
    """Feed-forward ReLU network with fixed input standardisation (buffers)."""

    def __init__(self, n_market: int, n_extra: int, hidden_sizes: Sequence[int], n_out: int):
        super().__init__()
        sizes = [n_market + n_extra, *hidden_sizes]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_out))
        self.layers = nn.Sequential(*layers)
        self.register_buffer("input_mean", torch.zeros(n_market))
        self.register_buffer("input_scale", torch.ones(n_market))
        self._pool = ActivationPool()

    def standardise(self, market: Tensor) -> Tensor:
        return (market - self.input_mean) / self.input_scale

    def train(self, mode: bool = True) -> Self:
        if not mode:
            self._pool.clear()  # a trained network does not keep training-sized buffers
        return super().train(mode)

    def forward(self, x: Tensor) -> Tensor:
        rows = x.shape[:-1].numel()
        if x.device.type != "cpu":
            return self.layers(x)
        # On CPU, blocks of rows whose activations stay in cache run faster than one pass over
        # all N x T rows (memory-bound ReLUs and copies); the result is the same. Training
        # runs them through `blocked_relu_mlp` (see there why).
        flat = x.reshape(rows, x.shape[-1])
        if self.training and torch.is_grad_enabled():
            linear = [layer for layer in self.layers if isinstance(layer, nn.Linear)]
            weights = [layer.weight for layer in linear]
            biases = [layer.bias for layer in linear]
            out = blocked_relu_mlp(flat, weights, biases, CPU_BLOCK, self._pool)
        elif rows <= CPU_BLOCK:
            out = self.layers(flat)
        else:
            out = torch.cat([self.layers(block) for block in flat.split(CPU_BLOCK)])
        return out.reshape(*x.shape[:-1], out.shape[-1])


class _NetworkPolicy(HedgePolicy):
    """A policy holding a `_Network` whose market inputs can be standardised."""

    net: _Network

    def set_input_scaling(self, mean: Tensor, scale: Tensor) -> None:
        """Standardise the market inputs as ``(x - mean) / scale`` (per input; shape (3,)).

        An input that is constant up to rounding (e.g. a GBM's volatility, whose computed
        standard deviation is ~1e-17 rather than 0) gets scale 1, so that it enters as ~0.
        """
        constant = scale <= _CONSTANT_INPUT * mean.abs().clamp(min=1.0)
        scale = torch.where(constant, torch.ones_like(scale), scale)
        self.net.input_mean.copy_(mean)
        self.net.input_scale.copy_(scale)


class MLPPolicy(_NetworkPolicy):
    """Holdings = network(log-moneyness, time to maturity, volatility); all dates at once.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (32, 32, 32, 32)
        Widths of the ReLU hidden layers (the default is the 4 x 32 network commonly used for
        this problem; it trains in seconds on one core).
    n_instruments : int, default 1
        Hedging instruments traded: 1 (the underlying; holdings of shape (N, T)) or more (the
        underlying and further instruments such as a variance swap; holdings (N, T, n)).
    """

    def __init__(self, hidden_sizes: Sequence[int] = DEFAULT_HIDDEN, n_instruments: int = 1):
        super().__init__()
        sizes = check_layer_sizes("MLPPolicy", "hidden_sizes", hidden_sizes)
        self.n_instruments = check_int("MLPPolicy", "n_instruments", n_instruments, 1)
        self.net = _Network(3, 0, sizes, self.n_instruments)

    def forward(self, features: HedgeFeatures) -> Tensor:
        held = self.net(self.net.standardise(features.inputs()))
        return held.squeeze(-1) if self.n_instruments == 1 else held


class RecurrentPolicy(_NetworkPolicy):
    """Holdings = network(market inputs, previous holdings), stepping through the dates.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (32, 32, 32, 32)
    n_instruments : int, default 1
        As in `MLPPolicy`.
    """

    def __init__(self, hidden_sizes: Sequence[int] = DEFAULT_HIDDEN, n_instruments: int = 1):
        super().__init__()
        sizes = check_layer_sizes("RecurrentPolicy", "hidden_sizes", hidden_sizes)
        self.n_instruments = check_int("RecurrentPolicy", "n_instruments", n_instruments, 1)
        self.net = _Network(3, self.n_instruments, sizes, self.n_instruments)

    def forward(self, features: HedgeFeatures) -> Tensor:
        market = self.net.standardise(features.inputs())
        prev = market.new_zeros(features.n_paths, self.n_instruments)
        held = []
        for t in range(features.n_steps):
            prev = self.net(torch.cat([market[:, t], prev], dim=-1))
            held.append(prev)
        held = torch.stack(held, dim=1)
        return held.squeeze(-1) if self.n_instruments == 1 else held


class NoTransactionBandPolicy(_NetworkPolicy):
    """No-transaction band network (Imaki et al. 2021) around the Black-Scholes delta.

    The network maps the market inputs (and, with `previous_input`, the previous holding) to
    two widths ``w = softplus(output) >= 0``; the holding is
    ``clamp(delta_{t-1}, Delta_t - w_low, Delta_t + w_high)``. Inside the band the previous
    holding is kept exactly (no trade); outside it, the hedge trades to the nearest edge.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (32, 32, 32, 32)
    previous_input : bool, default False
        Also feed the previous holding to the network (the widths then depend on it, and the
        network runs once per date instead of once for all dates).
    initial_width : float, default 0.05
        The output bias starts at ``softplus^-1(initial_width)``, so the untrained band is
        about this wide on each side.
    """

    def __init__(
        self,
        hidden_sizes: Sequence[int] = DEFAULT_HIDDEN,
        previous_input: bool = False,
        initial_width: float = INITIAL_BAND_WIDTH,
    ) -> None:
        super().__init__()
        owner = "NoTransactionBandPolicy"
        if not isinstance(previous_input, bool):
            raise ConfigError(
                f"{owner}: previous_input={previous_input!r} is not allowed; use True or False"
            )
        width = check_positive(owner, "initial_width", initial_width)
        self.previous_input = previous_input
        self.net = _Network(
            3, int(previous_input), check_layer_sizes(owner, "hidden_sizes", hidden_sizes), 2
        )
        last = self.net.layers[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.bias.fill_(math.log(math.expm1(width)))  # softplus^-1(width)

    def widths(self, market: Tensor, prev: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(w_low, w_high)`` for standardised market inputs (..., 3) [and holdings (...)]."""
        x = market if prev is None else torch.cat([market, prev.unsqueeze(-1)], dim=-1)
        w = F.softplus(self.net(x))
        return w[..., 0], w[..., 1]

    def step(self, market_t: Tensor, delta_t: Tensor, prev: Tensor) -> Tensor:
        """The holding at one date from the previous one: ``clamp(prev, lower, upper)``."""
        w_low, w_high = self.widths(market_t, prev if self.previous_input else None)
        return torch.clamp(prev, min=delta_t - w_low, max=delta_t + w_high)

    def forward(self, features: HedgeFeatures) -> Tensor:
        market = self.net.standardise(features.inputs())
        if not self.previous_input:
            w_low, w_high = self.widths(market)
            return band_rollout(features.delta - w_low, features.delta + w_high)
        prev = torch.zeros_like(features.spot[:, 0])
        held = []
        for t in range(features.n_steps):
            prev = self.step(market[:, t], features.delta[:, t], prev)
            held.append(prev)
        return torch.stack(held, dim=1)


class BlackScholesDelta(HedgePolicy):
    """Hold the Black-Scholes delta at the features' volatility (no parameters)."""

    def forward(self, features: HedgeFeatures) -> Tensor:
        return features.delta


class WhalleyWilmott(HedgePolicy):
    """Whalley-Wilmott (1997) asymptotic no-transaction band around the Black-Scholes delta.

    For a proportional cost ``c`` (fraction of the traded value), exponential utility with
    absolute risk aversion ``a``, and zero rate, the optimal hedge for small costs keeps the
    holding within ``Delta +- h`` with half-width::

        h = (3 c Gamma^2 S / (2 a)) ** (1 / 3)

    (Whalley and Wilmott 1997, "An asymptotic analysis of an optimal hedging model for option
    pricing with transaction costs", Mathematical Finance 7(3), eq. for ``H_0`` with ``r = 0``),
    trading to the nearest edge only when it leaves the band. As ``c -> 0`` the band shrinks to
    the delta hedge like ``c^(1/3)``.

    Parameters
    ----------
    cost : float
        Proportional cost rate c >= 0.
    aversion : float, default 1.0
        Risk aversion a > 0 (that of the entropic risk being minimised).
    """

    def __init__(self, cost: float, aversion: float = 1.0) -> None:
        super().__init__()
        self.cost = check_non_negative("WhalleyWilmott", "cost", cost)
        self.aversion = check_positive("WhalleyWilmott", "aversion", aversion)

    def half_width(self, features: HedgeFeatures) -> Tensor:
        """``h`` at every date of every path. Shape: (N, T)."""
        scale = 3.0 * self.cost / (2.0 * self.aversion)
        return (scale * features.gamma.square() * features.spot).pow(1.0 / 3.0)

    def forward(self, features: HedgeFeatures) -> Tensor:
        h = self.half_width(features)
        return band_rollout(features.delta - h, features.delta + h)


def band_rollout(lower: Tensor, upper: Tensor) -> Tensor:
    """Holdings that start at 0 and move to the nearest edge of ``[lower_t, upper_t]`` only
    when outside it: ``delta_t = clamp(delta_{t-1}, lower_t, upper_t)``. Shapes (N, T)."""
    prev = torch.zeros_like(lower[:, 0])
    held = []
    for t in range(lower.shape[1]):
        prev = torch.clamp(prev, min=lower[:, t], max=upper[:, t])
        held.append(prev)
    return torch.stack(held, dim=1)


def hedge_with(
    policy: HedgePolicy,
    prices: Tensor,
    payoff: Tensor | None = None,
    *,
    strike: float,
    maturity: float,
    volatility: float | Tensor,
    kind: str = "call",
    cost: float = 0.0,
    unwind: bool = True,
) -> HedgeResult:
    """Run `policy` on `prices` against the short claim and return holdings and P&L.

    Parameters
    ----------
    policy : HedgePolicy
        Any policy of this module, trained or not (evaluated without gradients).
    prices : Tensor
        Shape: (N, T + 1) or (N, T + 1, 1).
    payoff : Tensor, optional
        Shape (N,); default the European `kind` payoff with `strike` on `prices`.
    strike, maturity, volatility, kind
        As in `hedge_features`.
    cost, unwind
        As in `kabuto.hedging.pnl.hedge_pnl`.
    """
    owner = "hedge_with"
    if not isinstance(policy, HedgePolicy):
        raise ConfigError(f"{owner}: policy={policy!r} is not allowed; it must be a HedgePolicy")
    s = _single_asset_prices(owner, prices)
    features = hedge_features(s, strike=strike, maturity=maturity, volatility=volatility, kind=kind)
    payoff = european(s, strike, kind) if payoff is None else payoff
    with torch.no_grad():
        positions = policy(features)
    return HedgeResult.evaluate(s, positions, payoff, cost, unwind)


# ------------------------------------------------------------------------------------ trainer


# Far beyond any useful rate, but a diverging training is still reported as one: Adam moves a
# weight by up to the rate a step, and from about 1e37 that overflows float32 inside Adam.
MAX_LEARNING_RATE = 1e30


def check_learning_rate(owner: str, parameter: str, value: object) -> float:
    """Return `value` as float if it is an Adam step size in (0, `MAX_LEARNING_RATE`], else
    raise `ConfigError` naming `parameter`."""
    rate = check_positive(owner, parameter, value)
    if rate > MAX_LEARNING_RATE:
        raise ConfigError(
            f"{owner}: {parameter}={value!r} is not allowed; use a number in (0, "
            f"{MAX_LEARNING_RATE:g}] (Adam overflows float32 from about 1e37)"
        )
    return rate


class DeepHedger(TorchSettingsMixin):
    """Deep hedging of a short European option (Buehler et al. 2019), trained with Adam.

    The claim (`strike`, `maturity`, `kind`) and the training setup are settings; market data
    (paths, payoffs, volatility) go to `fit`, `hedge` and `price`. `price` is the indifference
    price: the risk of the hedged short position (see the module docstring).

    Parameters
    ----------
    strike : float
        K > 0.
    maturity : float
        Time from the first price date to expiry in years (> 0); paths of T steps rebalance
        every ``maturity / T``.
    kind : {"call", "put"}, default "call"
    policy : {"mlp", "recurrent", "band"}, default "band"
        `MLPPolicy`, `RecurrentPolicy` or `NoTransactionBandPolicy`.
    hidden_sizes : tuple of int, default (32, 32, 32, 32)
    previous_input : bool, default False
        For ``policy="band"``: also feed the previous holding to the band network.
    risk : {"entropic", "cvar", "oce"}, default "entropic"
        ``"entropic"``: `entropic_risk` with `aversion`. ``"cvar"``: `expected_shortfall` at
        `risk_level` (sorting). ``"oce"``: the same expected shortfall in its OCE form
        (Rockafellar-Uryasev), ``w + E[max(-pnl - w, 0)] / (1 - level)`` with ``w`` (an
        `OCERisk`, kept in ``oce_``) trained together with the hedge; its minimum over ``w``,
        used by `price`, is the expected shortfall.
    aversion : float, default 1.0
        Risk aversion ``a`` > 0 of the entropic risk.
    risk_level : float, default 0.9
        Confidence level in (0, 1) of the expected shortfall.
    cost : float, default 0.0
        Proportional transaction cost rate c >= 0.
    unwind : bool, default True
        Pay the cost of unwinding the last holding at maturity (see `kabuto.hedging.pnl`).
    epochs : int, default 200
        Passes over the training paths.
    batch_size : int, optional
        Paths per Adam step; None (default) uses all paths (one step per epoch).
    learning_rate : float, default 0.001
        Adam's step size.
    seed : int, default 0
        Seeds the initial weights and the minibatch order (same seed, same hedger on CPU).
    device : {"cpu", "cuda", "auto"}, default "cpu"
    num_threads : int, optional
        Torch CPU threads while fitting, hedging and pricing (restored afterwards); None leaves
        torch's setting. The networks are small: one thread is often fastest.

    Attributes
    ----------
    policy_ : HedgePolicy
        The trained policy (on `device`, in the training prices' dtype).
    losses_ : list of float
        Training loss per epoch, averaged over the epoch's minibatches: the risk, or for
        ``risk="oce"`` the OCE objective at the current ``w`` (an upper bound on the risk).
    step_losses_ : list of float
        Training loss of every Adam step (minibatch), in order.
    oce_ : OCERisk or None
        The trained OCE cash amount for ``risk="oce"``.
    n_steps_ : int
        Rebalancing dates T of the training paths.
    n_instruments_ : int
        Instruments the policy trades: 1 (the underlying) plus the ``instruments`` of `fit`.

    Notes
    -----
    Training minimises the risk on the given paths only. A flexible network can then learn the
    noise of a fixed sample: where the sampled prices happen to drift, holding more or less
    than the hedge "earns" money in sample, which a risk measure dominated by the mean (the
    entropic risk with a small aversion, like a = 1 here) rewards. The in-sample price is then
    too low and the price on fresh paths too high. Use many paths, each seen once or a few
    times: ``fit`` on N = steps x batch paths with ``batch_size=batch, epochs=1`` takes each
    Adam step on fresh paths (pfhedge's protocol of 200 steps of 10,000 new paths is
    ``N = 2,000,000, batch_size=10_000, epochs=1``), and price on paths not used for training.
    The band policy, anchored to the Black-Scholes delta, is far less prone to this than the
    plain MLP.
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
        seed: int = 0,
        device: str = "cpu",
        num_threads: int | None = None,
    ) -> None:
        self.strike = strike
        self.maturity = maturity
        self.kind = kind
        self.policy = policy
        self.hidden_sizes = hidden_sizes
        self.previous_input = previous_input
        self.risk = risk
        self.aversion = aversion
        self.risk_level = risk_level
        self.cost = cost
        self.unwind = unwind
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self._validate()

    # ----------------------------------------------------------------- settings

    def _validate(self) -> None:
        name = type(self).__name__
        check_positive(name, "strike", self.strike)
        check_positive(name, "maturity", self.maturity)
        check_choice(name, "kind", self.kind, KINDS)
        check_choice(name, "policy", self.policy, POLICIES)
        check_layer_sizes(name, "hidden_sizes", self.hidden_sizes)
        check_bool(name, "previous_input", self.previous_input)
        check_choice(name, "risk", self.risk, RISKS)
        check_positive(name, "aversion", self.aversion)
        if (
            isinstance(self.risk_level, bool)
            or not isinstance(self.risk_level, numbers.Real)
            or not 0 < self.risk_level < 1
        ):
            raise ConfigError(
                f"{name}: risk_level={self.risk_level!r} is not allowed; use a number in (0, 1)"
            )
        check_non_negative(name, "cost", self.cost)
        check_bool(name, "unwind", self.unwind)
        check_int(name, "epochs", self.epochs, 1)
        if self.batch_size is not None:
            check_int(name, "batch_size", self.batch_size, 1)
        check_learning_rate(name, "learning_rate", self.learning_rate)
        check_seed(name, "seed", self.seed)
        self._check_torch_settings(name)

    def _build_policy(self, n_instruments: int) -> HedgePolicy:
        sizes = tuple(int(h) for h in self.hidden_sizes)
        if self.policy == "mlp":
            return MLPPolicy(sizes, n_instruments)
        if self.policy == "recurrent":
            return RecurrentPolicy(sizes, n_instruments)
        return NoTransactionBandPolicy(sizes, previous_input=self.previous_input)

    def _initial_policy(
        self, features: HedgeFeatures, n_instruments: int, device: torch.device, dtype: torch.dtype
    ) -> _NetworkPolicy:
        """The untrained policy: seeded weights, inputs standardised on the training features."""
        with seeded_cpu_rng(self.seed):
            policy = self._build_policy(n_instruments)
        assert isinstance(policy, _NetworkPolicy)
        policy = policy.to(device=device, dtype=dtype)
        policy.set_input_scaling(*features.input_moments())
        return policy

    def risk_of(self, pnl: Tensor) -> Tensor:
        """The risk measure of the settings (for ``"oce"`` minimised over ``w``: the ES)."""
        return risk_measure(pnl, self.risk, self.aversion, self.risk_level)

    # ----------------------------------------------------------------- data

    def _data(
        self,
        owner: str,
        prices: Tensor,
        payoff: Tensor | None,
        volatility: float | Tensor,
        instruments: Tensor | None,
    ) -> tuple[Tensor, HedgeFeatures, Tensor]:
        """Traded prices, features and payoff (N,) on the training device.

        The traded prices are the underlying's, (N, T + 1), or with `instruments` the
        underlying's followed by theirs, (N, T + 1, 1 + k).
        """
        owner = f"{type(self).__name__}.{owner}"
        s = _single_asset_prices(owner, prices)
        features = hedge_features(
            s, strike=self.strike, maturity=self.maturity, volatility=volatility, kind=self.kind
        )
        if payoff is None:
            payoff = european(s, self.strike, self.kind)
        elif not isinstance(payoff, Tensor) or tuple(payoff.shape) != (s.shape[0],):
            shape = tuple(payoff.shape) if isinstance(payoff, Tensor) else repr(type(payoff))
            raise ConfigError(
                f"{owner}: payoff must be a tensor of shape ({s.shape[0]},), got {shape}"
            )
        elif not bool(payoff.isfinite().all()):
            path = int((~payoff.isfinite()).nonzero()[0, 0])
            raise ConfigError(
                f"{owner}: payoff[{path}] = {float(payoff[path])!r}; the payoff must be finite"
            )
        traded = s if instruments is None else _with_instruments(owner, s, instruments)
        device = self._torch_device()
        payoff = payoff.to(device=device, dtype=s.dtype)
        return traded.to(device), features.to(device), payoff

    # ----------------------------------------------------------------- training

    def fit(
        self,
        prices: Tensor,
        payoff: Tensor | None = None,
        *,
        volatility: float | Tensor,
        instruments: Tensor | None = None,
        on_step: Callable[[float], None] | None = None,
    ) -> Self:
        """Train the hedging policy on simulated paths.

        Parameters
        ----------
        prices : Tensor
            Discounted prices of the underlying at t = 0..T (e.g. `gbm_paths` with zero drift).
            Shape: (N, T + 1) or (N, T + 1, 1).
        payoff : Tensor, optional
            The claim's payoff per path, shape (N,); default the European payoff of the
            settings (`strike`, `kind`) on `prices`.
        volatility : float or Tensor
            As in `hedge_features` (keyword only).
        instruments : Tensor, optional
            Discounted prices of k further hedging instruments traded alongside the underlying
            at the same dates (e.g. a variance swap, `kabuto.hedging.instruments`), shape
            (N, T + 1, k) or (N, T + 1) for k = 1; they pay the same proportional cost. The
            policy then holds 1 + k instruments (holdings (N, T, 1 + k), the underlying first);
            only the "mlp" and "recurrent" policies can (the band is a band around the
            underlying's delta).
        on_step : callable, optional
            Called with the loss after every Adam step (e.g. to advance a progress bar).

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            For bad settings or data, or if the training diverges (a step's loss is NaN or
            infinite, or the loss ends more than 10 times the larger of the first loss, the
            claim's mean payoff and the spot above where it started: too large a learning
            rate); nothing of that training is kept.
        """
        self._validate()
        if instruments is not None and self.policy == "band":
            raise ConfigError(
                f"{type(self).__name__}: policy='band' hedges with the underlying only; use "
                "policy='mlp' or 'recurrent' to trade further instruments"
            )
        with self._threads():
            return self._fit(prices, payoff, volatility, instruments, on_step)

    def _fit(
        self,
        prices: Tensor,
        payoff: Tensor | None,
        volatility: float | Tensor,
        instruments: Tensor | None,
        on_step: Callable[[float], None] | None,
    ) -> Self:
        s, features, payoff = self._data("fit", prices, payoff, volatility, instruments)
        n = features.n_paths
        device, dtype = s.device, s.dtype
        n_instruments = 1 if s.ndim == 2 else s.shape[-1]
        policy = self._initial_policy(features, n_instruments, device, dtype)

        parameters = list(policy.parameters())
        oce_risk = None
        if self.risk == "oce":
            with torch.no_grad():  # start w at the value at risk of the untrained hedge
                start = HedgeResult.evaluate(s, policy(features), payoff, self.cost, self.unwind)
                # numpy's: torch.quantile refuses more than 2**24 values (170 steps of 1e5)
                pnl = start.pnl.detach().cpu().double().numpy()
                var = -float(np.quantile(pnl, 1.0 - self.risk_level))
            oce_risk = OCERisk.expected_shortfall(self.risk_level, var)
            oce_risk = oce_risk.to(device=device, dtype=dtype)
            parameters += list(oce_risk.parameters())
        optimizer = torch.optim.Adam(parameters, lr=self.learning_rate)
        generator = torch.Generator().manual_seed(self.seed)
        batch = n if self.batch_size is None else min(self.batch_size, n)

        losses, step_losses = [], []
        policy.train()
        for _ in range(self.epochs):
            if batch == n:
                batches = [None]
            else:
                order = torch.randperm(n, generator=generator).to(device)
                batches = list(order.split(batch))
            total = 0.0
            for idx in batches:
                if idx is None:
                    f, p, z = features, s, payoff
                else:
                    f, p, z = features.subset(idx), s[idx], payoff[idx]
                pnl = HedgeResult.evaluate(p, policy(f), z, self.cost, self.unwind).pnl
                loss = oce_risk(pnl) if oce_risk is not None else self.risk_of(pnl)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step_losses.append(float(loss.detach()))
                if not math.isfinite(step_losses[-1]):  # the float recorded: no extra sync
                    self._diverged(len(step_losses), self.epochs * len(batches), step_losses[-1])
                total += step_losses[-1] * pnl.shape[0]
                if on_step is not None:
                    on_step(step_losses[-1])
            losses.append(total / n)
        policy.eval()
        self._check_loss_fell(step_losses, payoff, s)

        self.policy_ = policy
        self.losses_ = losses
        self.step_losses_ = step_losses
        self.oce_ = oce_risk
        self.n_steps_ = features.n_steps
        self.n_instruments_ = n_instruments
        return self

    def _diverged(self, step: int, steps: int, loss: float) -> NoReturn:
        """Raise a ConfigError for a non-finite loss: the weights are NaN or inf from then on
        (left alone, every holding and P&L of the hedger would be NaN)."""
        fixes = f"lower learning_rate={self.learning_rate!r}"
        if self.risk == "entropic":
            fixes += f" (or a smaller aversion={self.aversion!r})"
        raise ConfigError(
            f"{type(self).__name__}.fit: the loss became {loss} at Adam step {step} of {steps} "
            f"(non-finite loss): the training diverged; {fixes}"
        )

    def _check_loss_fell(self, step_losses: list[float], payoff: Tensor, prices: Tensor) -> None:
        """Raise a ConfigError if the loss ended absurdly far above where it started.

        A learning rate far too large (1e12) can leave the loss finite but astronomically high
        (a "price" of 7e21). The test is for such absurd ends only: a rise of more than
        `_LOSS_RISE_LIMIT` times the larger of the first loss, the claim's mean `payoff` (N,)
        and the mean spot of the training `prices` (N, T + 1, ...), losses no hedge of the
        claim comes near. A
        finer test would fire on noise: a far out-of-the-money claim's losses start at 0 and
        jump between batches that do or do not hold a path in the money.
        """
        tail = sorted(step_losses[-max(1, len(step_losses) // 10) :])
        start, end = step_losses[0], tail[len(tail) // 2]
        scale = max(abs(start), float(payoff.abs().mean()), float(prices[:, 0].abs().mean()))
        if end - start > _LOSS_RISE_LIMIT * scale:
            raise ConfigError(
                f"{type(self).__name__}.fit: the loss rose from {start:.4g} at the first Adam "
                f"step to {end:.4g} (the median of the last {len(tail)} steps), more than "
                f"{_LOSS_RISE_LIMIT:g} times {scale:.4g} (the larger of the first loss, the "
                "claim's mean payoff and the spot): the training diverged; lower "
                f"learning_rate={self.learning_rate!r}"
            )

    # ----------------------------------------------------------------- use

    def _check_fitted(self) -> None:
        if not hasattr(self, "policy_"):
            raise ConfigError(f"{type(self).__name__}: not fitted; call fit(prices, ...) first")

    def hedge(
        self,
        prices: Tensor,
        payoff: Tensor | None = None,
        *,
        volatility: float | Tensor,
        instruments: Tensor | None = None,
    ) -> HedgeResult:
        """Hedge the short claim on `prices` with the trained policy (no gradients).

        Arguments as in `fit` (with as many `instruments` as in training); the paths may have
        another number of steps. Returns the holdings (N, T) (or (N, T, 1 + k) with
        instruments), P&L, costs, gains and payoff per path, on the training device.
        """
        self._validate()
        self._check_fitted()
        if instruments is not None and not isinstance(instruments, Tensor):
            raise ConfigError(
                f"{type(self).__name__}.hedge: instruments must be a torch.Tensor or None, got "
                f"{type(instruments).__name__}"
            )
        if instruments is not None and instruments.ndim not in (2, 3):
            raise ConfigError(
                f"{type(self).__name__}.hedge: instruments has shape "
                f"{tuple(instruments.shape)}; use (N, T + 1) or (N, T + 1, k), as in fit"
            )
        k = 0 if instruments is None else (1 if instruments.ndim == 2 else instruments.shape[-1])
        if k != self.n_instruments_ - 1:
            raise ConfigError(
                f"{type(self).__name__}.hedge: trained with {self.n_instruments_ - 1} further "
                f"instrument(s) but given {k}; pass the same instruments as to fit"
            )
        dtype = next(self.policy_.parameters()).dtype
        if isinstance(prices, Tensor) and prices.is_floating_point():
            prices = prices.to(dtype)  # the network's dtype, e.g. float32 paths for a f64 fit
        if isinstance(instruments, Tensor) and instruments.is_floating_point():
            instruments = instruments.to(dtype)
        with self._threads():
            s, features, payoff = self._data("hedge", prices, payoff, volatility, instruments)
            with torch.no_grad():
                positions = self.policy_(features)
            return HedgeResult.evaluate(s, positions, payoff, self.cost, self.unwind)

    def price(
        self,
        prices: Tensor,
        payoff: Tensor | None = None,
        *,
        volatility: float | Tensor,
        instruments: Tensor | None = None,
    ) -> float:
        """Indifference price of the claim: the risk of the hedged short position on `prices`.

        ``rho(-Z + gains - costs)`` with the trained hedge and the settings' risk measure (for
        ``"oce"``, minimised over ``w``: the expected shortfall). Arguments as in `fit`; pass
        fresh paths for an out-of-sample price.
        """
        result = self.hedge(prices, payoff, volatility=volatility, instruments=instruments)
        with self._threads():
            return float(self.risk_of(result.pnl))


# ------------------------------------------------------------------------------------ checks


def _single_asset_prices(owner: str, prices: object) -> Tensor:
    if not isinstance(prices, Tensor) or not prices.is_floating_point():
        got = f"dtype {prices.dtype}" if isinstance(prices, Tensor) else repr(type(prices))
        raise ConfigError(f"{owner}: prices must be a floating-point torch.Tensor, got {got}")
    shape = tuple(prices.shape)
    ok = len(shape) == 2 or (len(shape) == 3 and shape[-1] == 1)
    if not ok or shape[0] == 0 or shape[1] < 2:
        raise ConfigError(
            f"{owner}: prices has shape {shape}; it must be (N, T + 1) or (N, T + 1, 1) with "
            "N >= 1 and T >= 1"
        )
    prices = prices.reshape(shape[0], shape[1])
    bad = ~((prices > 0) & prices.isfinite())
    if bool(bad.any()):
        path, date = (int(i) for i in bad.nonzero()[0])
        raise ConfigError(
            f"{owner}: prices[{path}, {date}] = {float(prices[path, date])!r}; prices must be "
            "finite and positive"
        )
    return prices


def _with_instruments(owner: str, s: Tensor, instruments: object) -> Tensor:
    """The underlying's prices (N, T + 1) and the instruments' as one (N, T + 1, 1 + k)."""
    if not isinstance(instruments, Tensor) or not instruments.is_floating_point():
        got = (
            f"dtype {instruments.dtype}"
            if isinstance(instruments, Tensor)
            else repr(type(instruments))
        )
        raise ConfigError(f"{owner}: instruments must be a floating-point torch.Tensor, got {got}")
    extra = instruments.unsqueeze(-1) if instruments.ndim == 2 else instruments
    if extra.ndim != 3 or tuple(extra.shape[:2]) != tuple(s.shape) or extra.shape[2] == 0:
        raise ConfigError(
            f"{owner}: instruments has shape {tuple(instruments.shape)}; for prices of shape "
            f"{tuple(s.shape)} it must be {tuple(s.shape)} or ({s.shape[0]}, {s.shape[1]}, k)"
        )
    if not bool(extra.isfinite().all()):
        raise ConfigError(f"{owner}: instruments must be finite (no NaN or inf)")
    return torch.cat([s.unsqueeze(-1), extra.to(dtype=s.dtype, device=s.device)], dim=-1)


def _volatility(owner: str, volatility: object, n: int, steps: int, like: Tensor) -> Tensor:
    if isinstance(volatility, Tensor):
        vol = volatility.to(dtype=like.dtype, device=like.device)
        if vol.ndim == 0:
            vol = vol.expand(n, steps + 1)
        if tuple(vol.shape) != (n, steps + 1):
            raise ConfigError(
                f"{owner}: volatility has shape {tuple(volatility.shape)}; it must be a number "
                f"or a tensor of shape () or ({n}, {steps + 1}) like the prices"
            )
        if not bool((vol >= 0).all()) or not bool(vol.isfinite().all()):
            raise ConfigError(f"{owner}: volatility must be finite and >= 0")
        return vol[:, :-1]
    sigma = check_non_negative(owner, "volatility", volatility)
    return torch.tensor(sigma, dtype=like.dtype, device=like.device).expand(n, steps)
