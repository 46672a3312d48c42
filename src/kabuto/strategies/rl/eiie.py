"""`EIIE`: ensemble of identical independent evaluators with a portfolio-vector memory.

Jiang, Xu and Liang, "A Deep Reinforcement Learning Framework for the Financial Portfolio
Management Problem" (2017, arXiv 1706.10059), written from the paper as a kabuto strategy.

**Network** (`EIIENetwork`, the paper's CNN EIIE). The input is the price tensor of the last L
closes of n assets, each divided by its asset's latest close (so the last column is 1), shape (B, F,
n, L) with F features: F = 3 (close, high and low, each divided by the latest close, as in the
paper) when the data has highs and lows and ``high_low=True``, else F = 1. One small evaluator is
applied to every asset with the same parameters (convolutions whose kernels have height 1, so assets
never mix): a 1 x 3 convolution to 2 channels, ReLU, a 1 x (L - 2) convolution to 20 channels, ReLU.
The asset's weight in the previous portfolio is appended as a 21st channel (this is how the network
sees its own holdings and learns to save on costs), a 1 x 1 convolution gives one score per asset, a
learnable cash bias is put in front and a softmax over the n + 1 scores gives the portfolio weights,
cash first. Permuting the assets permutes the weights; multiplying an asset's prices by a constant
changes nothing.

**Reward** (the paper's explicit reward). At the close of decision date t the book holds the
weights of the last decision drifted by the prices, ``w'_t = w_{t-1} * y_t / (w_{t-1} . y_t)``
with ``y_t = close[t] / close[t-1]`` (cash: 1). Trading to the network's ``w_t`` leaves the
fraction ``mu_t`` of wealth (`torch_proportional_remainder`, kabuto's backtest convention
``1 - sum_i c_i |w_t,i - w'_t,i|``, or the paper's exact remainder
`torch_transaction_remainder`), and ``w_t`` earns ``y_{t+1} . w_t``. Training maximises the
mean log growth ``mean_t log(mu_t y_{t+1} . w_t)`` over a mini-batch of consecutive periods
(`log_growth`). This is the paper's reward with kabuto's dating: a decision at t uses closes up
to t and is rewarded by the move t -> t+1; the paper writes the same product as
``mu_t y_t . w_{t-1}``.

**Portfolio-vector memory** (`PortfolioVectorMemory`, PVM). Costs couple a decision to
the previous one, so each training period needs the previous weights. The memory holds the
network's output for every date of the training history; a training step reads the previous
date's row of every period of its batch, drifts it with that date's prices, feeds it to the
network and writes the outputs back. Rows start at the uniform portfolio 1/(n+1), as in the
paper. Difference from the paper: the network is fed the *drifted* previous weights ``w'_t``
rather than ``w_{t-1}``, because that is what the backtest hands `EIIE.allocate` (the book held
at the close of t); training and trading see the same input, and the cost term uses ``w'_t``
in both.

**Online stochastic batch learning** (OSBL). Each step draws the first period of its
batch, t_b, from a geometric distribution that favours recent periods,
``P(t_b) ∝ (1 - beta)^(t_last - t_b)`` over the allowed starts, truncated to them and drawn
exactly by the inverse CDF (`geometric_starts`). The paper uses beta = 5e-5 per 30-minute
period of crypto markets that trade around the clock: a half-life of about 13,900 periods, i.e.
about 290 days. `EIIE` defaults to beta = 3e-3 per trading day, a half-life of
ln 2 / 3e-3 ≈ 230 trading days: the same horizon in calendar time. A short history is then
sampled almost uniformly; a long one leans to its last few years. Adam updates the network.

**Rolling training in a backtest.** The first `fit` builds the network from `seed` and trains
it for `n_steps` steps. Each later `fit` whose history ends after the previous one continues
from the current network, optimiser state, sampling generator and memory for `n_rolling_steps`
steps on the extended history (the paper's rolling training during the back-test). The memory
keeps its rows for the dates it had; a new date gets the weights `allocate` returned for it (the
network's actual decision there) when it was asked for that date with the same assets, else the
uniform portfolio. A `fit` on a history that does not end later than the previous one (the
same history again, or an earlier one) starts from scratch, so repeated fits on the same data
give the same model, and so does one after a setting other than `n_steps`, `n_rolling_steps`,
`num_threads` or `label` changed (`set_params`). `reset` (called by the backtest before it
starts) forgets everything, so a second backtest repeats the first exactly.

**Missing prices and universe changes.** The memory, the windows and the rewards need every
price of the rows they use, and a column is NaN before its asset lists. `fit` therefore trains
on a block of trailing rows and the assets priced on all of them: of the blocks "the k assets
with the longest trailing price histories, over the k-th longest", it takes the one with the
most (period, asset) samples (`EIIE.training_data`); with no listing inside the history that
is every asset over the whole history. Fewer rows than a window and one batch raise
`DataError`. The evaluator is shared by all assets, so the network allocates over any number
of assets, including ones it was not trained on; the memory, however, belongs to one asset set.
When a later fit trains on a different set (an asset listed, delisted or joined training), the
network, optimiser and sampling generator carry on but the memory restarts for the new set
(recorded decisions over exactly those assets, otherwise uniform rows).

**Timing.** `allocate` at t uses the last L closes up to t and the drifted weights the engine
passes; `fit` at t uses the history up to t, and the last reward it can form is that of t-1
(earned t-1 -> t). Nothing later is used.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import torch
from torch import nn

from kabuto.costs import cost_rates
from kabuto.data.panel import Window
from kabuto.errors import ConfigError, DataError
from kabuto.settings import check_seed
from kabuto.strategies.base import Strategy, held_weights
from kabuto.strategies.batched import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
)
from kabuto.strategies.rl.costs import COST_MODELS, subset_costs
from kabuto.strategies.rl.env import observed_features, policy_window
from kabuto.strategies.torch_support import TorchStrategyMixin, load_payload, save_payload
from kabuto.torch_settings import seeded_cpu_rng

__all__ = [
    "EIIE",
    "EIIENetwork",
    "PortfolioVectorMemory",
    "geometric_starts",
    "log_growth",
    "pvm_batch_reward",
    "torch_proportional_remainder",
    "torch_transaction_remainder",
]

_FORMAT = 1  # version of the file `EIIE.save` writes


# ------------------------------------------------------------------------ transaction costs


def torch_proportional_remainder(
    w_drifted: torch.Tensor, w_target: torch.Tensor, rates: float | torch.Tensor
) -> torch.Tensor:
    """Differentiable proportional remainder ``mu = 1 - sum_i c_i |w_i - w'_i|`` (assets only).

    The torch twin of `kabuto.strategies.rl.costs.proportional_remainder`: kabuto's backtest
    books exactly this cost.

    Parameters
    ----------
    w_drifted, w_target : Tensor of shape (..., n + 1)
        Weights before and after the trade, cash at index 0.
    rates : float or Tensor of shape (n,)
        Cost per unit of traded notional (fractions: 10 bps = 0.001), global or per asset.

    Returns
    -------
    Tensor of shape (...)
    """
    traded = (w_target[..., 1:] - w_drifted[..., 1:]).abs()
    if isinstance(rates, torch.Tensor):
        return 1.0 - (traded * rates.to(traded)).sum(dim=-1)
    return 1.0 - float(rates) * traded.sum(dim=-1)


def _iterations(c_sell: float, c_purchase: float, tol: float = 1e-15) -> int:
    """Fixed-point iterations that shrink the error of the starting guess (<= k) below `tol`."""
    k = c_sell + c_purchase - c_sell * c_purchase
    if k <= 0.0:
        return 1
    return max(2, min(200, math.ceil(math.log(tol) / math.log(k))))


def torch_transaction_remainder(
    w_drifted: torch.Tensor,
    w_target: torch.Tensor,
    c_sell: float,
    c_purchase: float | None = None,
    n_iter: int | None = None,
) -> torch.Tensor:
    """Differentiable exact remainder factor of Jiang et al. (2017), eq. (14).

    Runs a fixed number of iterations of the contraction

        mu <- [1 - c_p w'_0 - (c_s + c_p - c_s c_p) sum_{i>=1} (w'_i - mu w_i)^+] / (1 - c_p w_0)

    from the proportional guess at the mean rate, clipped to ``[1 - k, 1]`` (the same start as
    `kabuto.strategies.rl.costs.transaction_remainder`). Gradients flow through the unrolled
    iterations. The map contracts with factor at most ``k = c_s + c_p - c_s c_p``, so the error
    after m iterations is at most ``k^m``; the default m makes it below 1e-15.

    Parameters
    ----------
    w_drifted, w_target : Tensor of shape (..., n + 1)
        Weights before (``w'``) and after (``w``) the trade, cash at index 0; rows sum to 1.
    c_sell : float
        Commission rate on sales (a fraction in [0, 1)).
    c_purchase : float, optional
        Commission rate on purchases; defaults to `c_sell`.
    n_iter : int, optional
        Number of iterations; default: enough for an error below 1e-15.

    Returns
    -------
    Tensor of shape (...)
        ``mu`` in (0, 1].
    """
    c_purchase = c_sell if c_purchase is None else c_purchase
    for name, c in (("c_sell", c_sell), ("c_purchase", c_purchase)):
        if not (isinstance(c, numbers.Real) and 0.0 <= c < 1.0):
            raise ConfigError(f"{name} = {c!r}: expected a commission rate in [0, 1)")
    n_iter = _iterations(c_sell, c_purchase) if n_iter is None else int(n_iter)
    k = c_sell + c_purchase - c_sell * c_purchase
    numerator = 1.0 - c_purchase * w_drifted[..., 0]
    denominator = 1.0 - c_purchase * w_target[..., 0]
    held, target = w_drifted[..., 1:], w_target[..., 1:]
    c_mean = 0.5 * (c_sell + c_purchase)
    mu = (1.0 - c_mean * (target - held).abs().sum(dim=-1)).clamp(1.0 - k, 1.0)
    for _ in range(n_iter):
        sold = (held - mu.unsqueeze(-1) * target).clamp(min=0.0).sum(dim=-1)
        mu = (numerator - k * sold) / denominator
    return mu


def log_growth(w_target: torch.Tensor, relatives: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """The paper's reward: mean log growth ``mean_b log(mu_b (y_b . w_b))`` of a batch.

    Parameters
    ----------
    w_target : Tensor of shape (B, n + 1)
        Weights chosen at the close of each period's decision date t, cash first.
    relatives : Tensor of shape (B, n + 1)
        Price relatives of t -> t+1, ``close[t+1] / close[t]`` (cash: 1).
    mu : Tensor of shape (B,)
        Remainder factors of the trades into `w_target` (from the drifted weights).

    Returns
    -------
    Tensor of shape ()
    """
    return torch.log(mu * (w_target * relatives).sum(dim=-1)).mean()


# --------------------------------------------------------------------------------- network


class EIIENetwork(nn.Module):
    """The CNN EIIE: one evaluator shared by all assets, previous weights, cash bias, softmax.

    Parameters
    ----------
    n_features : int, default=1
        F, features per asset and date (1: closes).
    window : int, default=50
        L, dates per asset in the input (>= 3; the paper uses 50).
    hidden_sizes : tuple of 2 int, default=(2, 20)
        Channels after the 1 x 3 and the 1 x (L - 2) convolution (the paper's 2 and 20).

    Shape
    -----
    - prices: (B, F, n, L), each asset's closes divided by its latest close (last column 1).
    - prev_weights: (B, n), the assets' weights held before the decision (cash excluded).
    - output: (B, n + 1), non-negative weights summing to 1, cash first.
    """

    def __init__(
        self,
        n_features: int = 1,
        window: int = 50,
        hidden_sizes: tuple[int, int] = (2, 20),
    ) -> None:
        super().__init__()
        if window < 3:
            raise ConfigError(f"EIIENetwork: window={window!r} is too short; use window >= 3")
        h1, h2 = (int(h) for h in hidden_sizes)
        self.n_features, self.window = int(n_features), int(window)
        self.conv1 = nn.Conv2d(self.n_features, h1, kernel_size=(1, 3))
        self.conv2 = nn.Conv2d(h1, h2, kernel_size=(1, self.window - 2))
        self.score = nn.Conv2d(h2 + 1, 1, kernel_size=(1, 1))
        self.cash_bias = nn.Parameter(torch.zeros(1))

    def logits(self, prices: torch.Tensor, prev_weights: torch.Tensor) -> torch.Tensor:
        """Scores before the softmax, cash bias first. Shape: (B, F, n, L), (B, n) -> (B, n + 1)."""
        # v - 1 rather than v: the same functions (the shift folds into conv1's bias), but the
        # part that varies is what the first layer sees at initialisation.
        x = prices - 1.0
        h = torch.relu(self.conv1(x))  # (B, h1, n, L - 2)
        h = torch.relu(self.conv2(h))  # (B, h2, n, 1)
        h = torch.cat([h, prev_weights[:, None, :, None].to(h)], dim=1)  # (B, h2 + 1, n, 1)
        scores = self.score(h)[:, 0, :, 0]  # (B, n)
        return torch.cat([self.cash_bias.expand(scores.shape[0], 1), scores], dim=1)

    def forward(self, prices: torch.Tensor, prev_weights: torch.Tensor) -> torch.Tensor:
        """Portfolio weights. Shape: (B, F, n, L), (B, n) -> (B, n + 1), cash first."""
        return torch.softmax(self.logits(prices, prev_weights), dim=-1)


# ------------------------------------------------------------------ portfolio-vector memory


class PortfolioVectorMemory:
    """The network's latest output weights for every date of the training history.

    Parameters
    ----------
    dates : DatetimeIndex of length T
        Dates of the rows, increasing.
    assets : sequence of n str
        The asset set the weights are over.
    weights : Tensor of shape (T, n + 1), optional
        Initial rows, cash first; default the uniform portfolio ``1 / (n + 1)`` (the paper's).
    device : torch.device or str, default="cpu"

    Attributes
    ----------
    weights : Tensor of shape (T, n + 1)
    """

    def __init__(
        self,
        dates: pd.DatetimeIndex,
        assets: Sequence[str],
        weights: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.dates = pd.DatetimeIndex(dates)
        self.assets = tuple(assets)
        shape = (len(self.dates), len(self.assets) + 1)
        if weights is None:
            weights = torch.full(shape, 1.0 / shape[1], dtype=torch.float32)
        if tuple(weights.shape) != shape:
            raise ValueError(f"PortfolioVectorMemory: weights of shape {tuple(weights.shape)}")
        self.weights = weights.detach().to(device=device, dtype=torch.float32).clone()

    def __len__(self) -> int:
        return len(self.dates)

    def read(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows of the memory (a copy). Shape: (B,) -> (B, n + 1)."""
        return self.weights[rows.to(self.weights.device)].clone()

    def write(self, rows: torch.Tensor, weights: torch.Tensor) -> None:
        """Store the network's outputs, without gradient. Shape: (B,), (B, n + 1)."""
        self.weights[rows.to(self.weights.device)] = weights.detach().to(self.weights)

    def extended(
        self,
        dates: pd.DatetimeIndex,
        assets: Sequence[str],
        recorded: Mapping[pd.Timestamp, tuple[tuple[str, ...], np.ndarray]] | None = None,
    ) -> PortfolioVectorMemory:
        """A memory for a new training history: known dates keep their rows.

        Rows for dates of this memory are copied when the asset set is the same; other dates
        take the weights recorded for them with the same assets (`recorded`: date -> (assets,
        weights of shape (n + 1,))), and the uniform portfolio otherwise.

        Parameters
        ----------
        dates : DatetimeIndex of length T'
        assets : sequence of n' str
        recorded : mapping, optional

        Returns
        -------
        PortfolioVectorMemory
            Rows of shape (T', n' + 1), on this memory's device.
        """
        assets = tuple(assets)
        dates = pd.DatetimeIndex(dates)
        new = PortfolioVectorMemory(dates, assets, device=self.weights.device)
        for date, (their_assets, w) in (recorded or {}).items():
            if tuple(their_assets) != assets:
                continue
            pos = dates.get_indexer([pd.Timestamp(date)])[0]
            if pos >= 0:
                new.weights[pos] = torch.as_tensor(w, dtype=torch.float32)
        if assets == self.assets:
            pos = dates.get_indexer(self.dates)
            kept = pos >= 0
            if kept.any():
                target = torch.from_numpy(pos[kept])
                new.weights[target] = self.weights[torch.from_numpy(np.flatnonzero(kept))]
        return new


def pvm_batch_reward(
    network: nn.Module,
    prices: torch.Tensor,
    memory: PortfolioVectorMemory,
    rows: torch.Tensor,
    remainder: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch: previous weights from the memory, outputs written back, the reward.

    For every decision row s of the batch: read ``w_{s-1}`` from the memory, drift it to the
    close of s, ``w'_s = w_{s-1} * y_s / (w_{s-1} . y_s)`` with ``y_s = (1, close[s] /
    close[s-1])``, run the network on the last L closes up to s (divided by the close of s)
    and ``w'_s``, store its output ``w_s`` in the memory, and score
    ``mean_s log(mu(w'_s, w_s) (w_s . y_{s+1}))``.

    Parameters
    ----------
    network : EIIENetwork
        With window L.
    prices : Tensor of shape (T, F, n)
        Closes (feature 0), then highs and lows if F = 3, of the training history (float64,
        finite, positive); F is the network's.
    memory : PortfolioVectorMemory
        T rows over the same assets.
    rows : Tensor of shape (B,)
        Decision rows, each in ``[L - 1, T - 2]``.
    remainder : callable
        ``(w_drifted, w_target) -> mu``, shapes (B, n + 1) -> (B,).

    Returns
    -------
    reward : Tensor of shape ()
        Differentiable in the network's parameters.
    weights : Tensor of shape (B, n + 1)
        The network's outputs (now also in the memory).
    """
    length = int(network.window)
    ones = torch.ones(len(rows), 1, dtype=prices.dtype, device=prices.device)
    closes = prices[:, 0]
    now, before, after = closes[rows], closes[rows - 1], closes[rows + 1]
    y_now = torch.cat([ones, now / before], dim=1).float()  # (B, n + 1): s-1 -> s
    y_next = torch.cat([ones, after / now], dim=1).float()  # (B, n + 1): s -> s+1
    grown = memory.read(rows - 1) * y_now
    drifted = grown / grown.sum(dim=-1, keepdim=True)
    window = prices.unfold(0, length, 1)[rows - length + 1]  # (B, F, n, L), ending at rows
    x = (window / window[:, :1, :, -1:]).float()  # divided by the closes at the rows
    weights = network(x, drifted[:, 1:])
    memory.write(rows, weights)
    return log_growth(weights, y_next, remainder(drifted, weights)), weights


# -------------------------------------------------------------------------------- sampling


def geometric_starts(
    low: int, high: int, beta: float, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Batch starts drawn from a truncated geometric distribution favouring recent periods.

    ``P(s) = beta (1 - beta)^(high - s) / Z`` for ``s = low..high`` (Z normalises over that
    range), sampled exactly by inverting the CDF of the offset ``k = high - s``:
    ``k = ceil(log(1 - u (1 - q^(K+1))) / log q) - 1`` with ``q = 1 - beta``, ``K = high - low``
    and u uniform on [0, 1).

    Parameters
    ----------
    low, high : int
        Smallest and largest allowed start (inclusive), ``low <= high``.
    beta : float
        In (0, 1); larger favours recent starts more.
    size : int
        Number of starts.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor of shape (size,), int64
        Starts in ``[low, high]``.
    """
    if high < low:
        raise ValueError(f"geometric_starts: high={high} < low={low}")
    if not 0.0 < beta < 1.0:
        raise ValueError(f"geometric_starts: beta={beta!r} must lie in (0, 1)")
    u = torch.rand(size, generator=generator, dtype=torch.float64)
    span = high - low
    log_q = math.log1p(-beta)
    mass = -math.expm1((span + 1) * log_q)  # 1 - q^(K+1), the untruncated CDF at K
    k = torch.ceil(torch.log1p(-u * mass) / log_q) - 1.0
    k = k.clamp(0, span).to(torch.int64)
    return high - k


# -------------------------------------------------------------------------------- strategy


class EIIE(TorchStrategyMixin, Strategy):
    """EIIE policy network with portfolio-vector memory (Jiang, Xu and Liang 2017).

    Long-only, may hold cash. Stateful: it decides from the drifted weights the backtest holds,
    so the engine calls it date by date. See the module docstring for the network, the reward,
    the memory, sampling, rolling training and universe changes. It trains on daily periods,
    so backtest it with ``rebalance=1``.

    Parameters
    ----------
    lookback : int, default=50
        L, closes per asset the network sees: the window's prices at the decision date and the
        L - 1 dates before it (>= 3; the paper's n = 50).
    costs_bps : float or mapping, default=10.0
        Commission in training, in basis points: the backtest's ``costs_bps`` convention (one
        rate, or asset -> bps with an optional "default"; a mapping only with the proportional
        model). 0 must be given explicitly. A mapping may name assets a fit leaves out (not
        yet listed, delisted, too short a history); each fit uses the entries of its assets.
        A config run (`kabuto backtest`, `kabuto sweep`) that leaves it out trains against
        the backtest's ``costs_bps``.
    cost_model : {"proportional", "exact"}, default="proportional"
        kabuto's ``1 - sum c |dw|`` (what the backtest charges) or the paper's exact remainder
        with equal selling and purchasing rates.
    n_steps : int, default=2000
        Training steps of the first fit (>= 1).
    n_rolling_steps : int, default=30
        Steps of each later fit that continues on an extended history (>= 0).
    batch_size : int, default=50
        Consecutive periods per mini-batch (the paper's 50; >= 1).
    learning_rate : float, default=1e-3
        Adam step size.
    geometric_beta : float, default=3e-3
        Recency bias of the batch starts per period, in (0, 1) (module docstring).
    hidden_sizes : tuple of 2 int, default=(2, 20)
        Channels of the two convolutions (the paper's).
    high_low : bool, default=True
        Feed highs and lows besides closes when the data has them (F = 3, the paper's input).
    seed : int, default=0
        Seeds the initial network and the batch draws: the same seed gives the same weights on
        CPU.
    device : {"cpu", "cuda", "auto"}, default="cpu"
    num_threads : int, optional
        Torch CPU threads while fitting and allocating (restored afterwards); None leaves
        torch's setting. The network is tiny: 1 thread is usually fastest.
    label : str, optional
        Name in results.

    Attributes
    ----------
    network_ : EIIENetwork
    features_ : tuple of str
        The price features the network reads: ``("close",)`` or ``("close", "high", "low")``.
    optimizer_ : torch.optim.Adam
    generator_ : torch.Generator
        Draws the batch starts; carried from fit to fit.
    memory_ : PortfolioVectorMemory
        The memory of the last fit.
    fit_date_ : Timestamp
        Last date of the history of the last fit.
    n_fits_, n_steps_done_ : int
        Fits and training steps since the start (or `reset`).
    rewards_ : list of float
        Mean batch reward (log growth per period) of every training step.
    decisions_ : dict
        Date -> (assets, weights of shape (n + 1,)) returned by `allocate` since the last fit;
        the next fit puts them into its memory.
    model_settings_ : dict
        The settings the network was built and trained with (a later fit with other settings
        builds a new network).
    """

    stateful: ClassVar[bool] = True
    long_only: ClassVar[bool] = True
    _run_settings: ClassVar[frozenset[str]] = frozenset(
        {"n_steps", "n_rolling_steps", "num_threads", "label"}
    )
    _state: ClassVar[tuple[str, ...]] = (
        "model_settings_",
        "network_",
        "features_",
        "optimizer_",
        "generator_",
        "memory_",
        "fit_date_",
        "n_fits_",
        "n_steps_done_",
        "rewards_",
        "decisions_",
    )

    def __init__(
        self,
        lookback: int = 50,
        costs_bps: float | Mapping[str, float] = 10.0,
        cost_model: str = "proportional",
        n_steps: int = 2000,
        n_rolling_steps: int = 30,
        batch_size: int = 50,
        learning_rate: float = 1e-3,
        geometric_beta: float = 3e-3,
        hidden_sizes: tuple[int, int] = (2, 20),
        high_low: bool = True,
        seed: int = 0,
        device: str = "cpu",
        num_threads: int | None = None,
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.costs_bps = costs_bps
        self.cost_model = cost_model
        self.n_steps = n_steps
        self.n_rolling_steps = n_rolling_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.geometric_beta = geometric_beta
        self.hidden_sizes = hidden_sizes
        self.high_low = high_low
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.label = label
        self._validate()

    # ----------------------------------------------------------------- settings

    def _validate(self) -> None:
        name = type(self).__name__
        check_int(name, "lookback", self.lookback, 3)
        check_choice(name, "cost_model", self.cost_model, COST_MODELS)
        costs = self.costs_bps
        if isinstance(costs, Mapping):
            if self.cost_model == "exact":
                raise ConfigError(
                    f"{name}: cost_model='exact' takes one commission rate (Jiang et al. 2017, "
                    "eq. 14) but costs_bps is a per-asset mapping; give costs_bps as a number "
                    "or use cost_model='proportional'"
                )
            cost_rates(costs, [k for k in costs if k != "default"])
        else:
            cost_rates(costs, ["every asset"])
        check_int(name, "n_steps", self.n_steps, 1)
        check_int(name, "n_rolling_steps", self.n_rolling_steps, 0)
        check_int(name, "batch_size", self.batch_size, 1)
        check_positive(name, "learning_rate", self.learning_rate)
        beta = self.geometric_beta
        if (
            isinstance(beta, bool)
            or not isinstance(beta, numbers.Real)
            or not 0.0 < float(beta) < 1.0
        ):
            raise ConfigError(
                f"{name}: geometric_beta={beta!r} is not allowed; use a number in (0, 1), e.g. "
                "3e-3 (a half-life of about 230 periods)"
            )
        sizes = self.hidden_sizes
        if (
            not isinstance(sizes, tuple | list)
            or len(sizes) != 2
            or any(isinstance(h, bool) or not isinstance(h, numbers.Integral) for h in sizes)
            or min(sizes) < 1
        ):
            raise ConfigError(
                f"{name}: hidden_sizes={sizes!r} is not allowed; use two positive integers, "
                "e.g. (2, 20)"
            )
        check_bool(name, "high_low", self.high_low)
        check_seed(name, "seed", self.seed)
        self._check_torch_settings(name)

    @property
    def min_history(self) -> int:
        """Returns before the first decision: a window and one batch of training periods."""
        return int(self.lookback) + int(self.batch_size)

    def _remainder(
        self, rates: torch.Tensor
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The training cost model: (w_drifted, w_target) -> mu, shapes (B, n + 1) -> (B,)."""
        if self.cost_model == "exact":
            c = float(rates[0])
            return lambda drifted, target: torch_transaction_remainder(drifted, target, c)
        if bool((rates == rates[0]).all()):
            c = float(rates[0])
            return lambda drifted, target: torch_proportional_remainder(drifted, target, c)
        return lambda drifted, target: torch_proportional_remainder(drifted, target, rates)

    # ----------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget the network, memory and optimiser: the next fit starts from `seed`."""
        for attr in self._state:
            self.__dict__.pop(attr, None)

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise ConfigError(
                f"{self.name}: not fitted; call fit(history) first (the backtest does so on "
                "its retrain schedule)"
            )
        self._check_unchanged()

    def _build(self, features: tuple[str, ...]) -> None:
        """A fresh network reading `features`, optimiser and sampling generator from `seed`."""
        device = self._torch_device()
        sizes = tuple(int(h) for h in self.hidden_sizes)
        with seeded_cpu_rng(int(self.seed)):
            network = EIIENetwork(len(features), int(self.lookback), sizes)
        self.network_ = network.to(device)
        self.features_ = tuple(features)
        self.optimizer_ = torch.optim.Adam(self.network_.parameters(), lr=float(self.learning_rate))
        self.generator_ = torch.Generator().manual_seed(int(self.seed))

    # ----------------------------------------------------------------- training

    def training_data(
        self, history: Window
    ) -> tuple[np.ndarray, pd.DatetimeIndex, tuple[str, ...], tuple[str, ...]]:
        """The assets and trailing dates `fit` trains on.

        Training needs every price of the rows it uses. Each asset has a trailing run of
        prices (from its listing, or the history's start, to the end); taking the k assets with
        the longest runs gives a block of the k-th longest run's length. `fit` takes the k that
        gives the most training samples, k * (rows - L + 1) (ties: more assets), among blocks
        of at least L + batch_size rows. So a recent listing joins training once its prices are
        worth more than the history it would cut off; until then the network, shared by all
        assets, still allocates to it.

        Returns
        -------
        prices : ndarray of shape (T, F, k)
            Finite positive closes (feature 0), then highs and lows if the history has them
            and ``high_low`` is set; T >= lookback + batch_size.
        dates : DatetimeIndex of length T
        assets : tuple of k str
            In the history's order.
        features : tuple of F str

        Raises
        ------
        DataError
            When no asset has prices over a window and one batch of periods.
        """
        prices = np.asarray(history.prices, dtype=np.float64)
        ok = np.isfinite(prices) & (np.nan_to_num(prices, nan=-1.0) > 0)  # (T, n)
        # Length of each asset's trailing run of usable prices.
        broken = ~ok[::-1]
        runs = np.where(broken.any(axis=0), broken.argmax(axis=0), len(prices))  # (n,)
        need = int(self.lookback) + int(self.batch_size)
        order = np.argsort(-runs, kind="stable")
        lengths = runs[order]  # decreasing: the block of the k first assets has lengths[k-1]
        k = np.arange(1, len(order) + 1)
        samples = np.where(lengths >= need, k * (lengths - int(self.lookback) + 1), -1)
        if samples.max() < 0:
            raise DataError(
                f"{self.name}: the history ending {history.date.date()} has at most "
                f"{int(runs.max())} trailing dates of prices per asset; training needs at "
                f"least {need} (lookback {self.lookback} closes for the first window and "
                f"batch_size {self.batch_size} periods to reward); start the backtest later, "
                "or shorten the lookback or the batch"
            )
        best = int(np.flatnonzero(samples == samples.max())[-1]) + 1
        columns = np.sort(order[:best])
        rows = int(lengths[best - 1])
        stacked = history.price_features(bool(self.high_low))  # (F, T, n)
        block = np.array(stacked[:, len(prices) - rows :, columns].transpose(1, 0, 2))
        assets = tuple(history.assets[i] for i in columns)
        features = observed_features(history.highs is not None, bool(self.high_low))
        return block, history.dates[len(prices) - rows :], assets, features

    def _fit(self, history: Window) -> Self:
        """Train on `history` (all prices up to the fit date): first fit or rolling continuation.

        `history` holds data of shape (T, n), NaN before an asset listed (`fit` calls this).
        """
        prices, dates, assets, features = self.training_data(history)
        settings = self._model_settings()
        continuing = (
            hasattr(self, "network_")
            and history.date > self.fit_date_
            and features == self.features_
            and settings == self.model_settings_  # e.g. a lookback changed by set_params
        )
        if continuing:
            memory = self.memory_.extended(dates, assets, self.decisions_)
            steps = int(self.n_rolling_steps)
        else:
            self.reset()
            self._build(features)
            memory = PortfolioVectorMemory(dates, assets, device=self._torch_device())
            steps = int(self.n_steps)
            self.n_fits_, self.n_steps_done_, self.rewards_ = 0, 0, []
        rates = torch.from_numpy(cost_rates(subset_costs(self.costs_bps, assets), assets))
        self.rewards_.extend(self._train(prices, memory, steps, rates))
        self.memory_ = memory
        self.model_settings_ = settings
        self.decisions_ = {}
        self.fit_date_ = history.date
        self.n_fits_ += 1
        self.n_steps_done_ += steps
        return self

    def _train(
        self, prices: np.ndarray, memory: PortfolioVectorMemory, steps: int, rates: torch.Tensor
    ) -> list[float]:
        """Online stochastic batch learning: `steps` Adam steps on geometric batches."""
        if steps == 0:
            return []
        device = self._torch_device()
        length, batch = int(self.lookback), int(self.batch_size)
        p = torch.from_numpy(prices).to(device)  # (T, F, n) float64
        # Decision rows s run from L - 1 (a full window) to T - 2 (a next close to earn).
        starts = geometric_starts(
            length - 1, p.shape[0] - 1 - batch, float(self.geometric_beta), steps, self.generator_
        )
        offsets = torch.arange(batch, device=device)
        remainder = self._remainder(rates.to(device))
        network, optimizer = self.network_, self.optimizer_
        network.train()
        rewards = []
        for start in starts.tolist():
            reward, _ = pvm_batch_reward(network, p, memory, start + offsets, remainder)
            optimizer.zero_grad(set_to_none=True)
            (-reward).backward()
            optimizer.step()
            rewards.append(float(reward.detach()))
        network.eval()
        return rewards

    # ----------------------------------------------------------------- decisions

    def allocate(self, window: Window, prev_weights: np.ndarray | None = None) -> np.ndarray:
        """Asset weights of shape (n,) for ``window.date`` (cash is the remainder).

        Parameters
        ----------
        window : Window
            Prices of shape (L', n), L' >= lookback, ending at the decision date, with highs
            and lows if the network was trained on them.
        prev_weights : ndarray of shape (n,), optional
            The weights held at the close of the decision date (drifted since the last trade;
            the engine passes them). None means nothing is held (all cash), like the first
            decision of a backtest.

        Returns
        -------
        ndarray of shape (n,)
            Non-negative weights with sum < 1 (the softmax keeps a positive cash weight).
        """
        self._validate()
        self._check_fitted()
        prices = self._window_features(window)
        prev = held_weights(self.name, prev_weights, window, long_only=self.long_only)
        held = np.zeros(window.n_assets) if prev is None else prev
        weights = self.predict(prices[None], held[None])[0]
        self.decisions_[window.date] = (tuple(window.assets), weights)
        return weights[1:].copy()

    def _window_features(self, window: Window) -> np.ndarray:
        """The window's last `lookback` rows of the network's features, shape (F, L, n)."""
        return policy_window(
            window, int(self.lookback), self.name, bool(self.high_low), self.features_
        )

    def predict(self, prices: np.ndarray, prev_weights: np.ndarray) -> np.ndarray:
        """The fitted network's weights over cash and the assets.

        Parameters
        ----------
        prices : ndarray of shape (B, F, L, n) or (B, L, n)
            The network's F price features (`features_`; closes first), the last row the
            decision date's, any positive scale per asset; (B, L, n) are closes (F = 1).
        prev_weights : ndarray of shape (B, n)
            Asset weights held before the decision.

        Returns
        -------
        ndarray of shape (B, n + 1)
            Cash first; the softmax is taken in float64, so each row sums to 1 to rounding.
        """
        self._check_fitted()
        device = next(self.network_.parameters()).device
        prices = np.asarray(prices, dtype=np.float64)
        if prices.ndim == 3:
            prices = prices[:, None]
        if prices.shape[1] != len(self.features_):
            raise DataError(
                f"{self.name}: the network reads {len(self.features_)} price features "
                f"{self.features_}, got {prices.shape[1]}"
            )
        # (B, F, n, L), divided by the closes at the decision date
        normalised = np.transpose(prices / prices[:, :1, -1:, :], (0, 1, 3, 2))
        x = torch.from_numpy(np.ascontiguousarray(normalised, dtype=np.float32))
        w = torch.from_numpy(np.asarray(prev_weights, dtype=np.float32))
        with self._threads(), torch.no_grad():
            logits = self.network_.logits(x.to(device), w.to(device))
        z = logits.cpu().numpy().astype(np.float64)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    # ----------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write settings and the whole learned state to `path`.

        The file loads with ``torch.load(weights_only=True)`` (no arbitrary code); it holds the
        network, the optimiser, the sampling generator, the memory and the recorded decisions,
        so a loaded strategy allocates identically and continues rolling training identically.
        It is written to a temporary name and renamed, so a failed save leaves nothing
        half-written.
        """
        self._check_fitted()
        settings = self.get_params(deep=False)
        settings["hidden_sizes"] = [int(h) for h in self.hidden_sizes]
        if isinstance(self.costs_bps, Mapping):
            settings["costs_bps"] = {str(k): float(v) for k, v in self.costs_bps.items()}
        memory = self.memory_
        payload = {
            "format": _FORMAT,
            "class": type(self).__name__,
            "settings": settings,
            "network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
            "features": list(self.features_),
            "optimizer": _to_cpu(self.optimizer_.state_dict()),
            "generator": self.generator_.get_state(),
            "memory": {
                "dates": torch.from_numpy(memory.dates.as_unit("ns").asi8.copy()),
                "assets": list(memory.assets),
                "weights": memory.weights.detach().cpu(),
            },
            "decisions": [
                {
                    "date": int(pd.Timestamp(d).value),
                    "assets": list(a),
                    "weights": torch.from_numpy(np.asarray(w, dtype=np.float64)),
                }
                for d, (a, w) in self.decisions_.items()
            ],
            "fitted": {
                "fit_date_": int(self.fit_date_.value),
                "n_fits_": int(self.n_fits_),
                "n_steps_done_": int(self.n_steps_done_),
                "rewards_": [float(r) for r in self.rewards_],
            },
        }
        save_payload(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> EIIE:
        """Read a strategy written by `save` (onto its `device` setting)."""
        payload = load_payload(path, cls.__name__, _FORMAT)
        settings = dict(payload["settings"])
        settings["hidden_sizes"] = tuple(settings["hidden_sizes"])
        obj = cls(**settings)
        fitted = payload["fitted"]
        obj._build(tuple(payload["features"]))
        obj.network_.load_state_dict(payload["network"])
        obj.network_.eval()
        obj.optimizer_.load_state_dict(payload["optimizer"])
        obj.generator_.set_state(payload["generator"])
        mem = payload["memory"]
        obj.memory_ = PortfolioVectorMemory(
            pd.to_datetime(mem["dates"].numpy(), unit="ns"),
            mem["assets"],
            mem["weights"],
            device=obj._torch_device(),
        )
        obj.decisions_ = {
            pd.Timestamp(entry["date"]): (tuple(entry["assets"]), entry["weights"].numpy())
            for entry in payload["decisions"]
        }
        obj.fit_date_ = pd.Timestamp(fitted["fit_date_"])
        obj.n_fits_ = fitted["n_fits_"]
        obj.n_steps_done_ = fitted["n_steps_done_"]
        obj.rewards_ = list(fitted["rewards_"])
        obj.model_settings_ = obj._model_settings()
        return obj


def _to_cpu(state: object) -> object:
    """A copy of a (nested) optimiser state with every tensor on the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu().clone()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_to_cpu(v) for v in state)
    return state
