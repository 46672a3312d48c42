"""Networks that map multi-scale residual features to a predicted return distribution.

All share one wrapper, `ResidualPredictor`, which owns amplitude normalisation: with
``amplitude_invariant=True`` the input x is divided by its own scale
``s(x) = sqrt(mean(x ** 2))`` (over all scales and increments of one sample), the body runs on
``x / s`` and the output is multiplied by s. Since ``s(a x) = a s(x)`` for ``a > 0``,
``psi(a x) = a psi(x)`` holds by construction, whatever biases the body has (they only ever see
unit-scale input). A zero path has s = 0 and gives output 0 (the homogeneous limit). With
``amplitude_invariant=False`` one global constant fitted on the training set (``input_scale``)
replaces s, which only conditions the optimisation and leaves the map non-homogeneous.

The fractal body's per-scale network psi1 is an MLP on the scale's R increments (the paper's)
or, by default in `DeepResidual`, the same MLP on `ExponentialFilters` of them: a smooth-kernel
prior that a noisy target needs (see `ExponentialFilters`). Both are shared across scales, so
the time-scale structure of the paper is unchanged.

Distributional heads output Q - 1 quantiles at levels j/Q, sorted ascending (monotone
rearrangement, Chernozhukov, Fernandez-Val, Galichon 2010: sorting crossing quantile estimates
never increases their error); point heads output one number.

`EnsemblePredictor` averages k independently trained `ResidualPredictor` members (a variance
reduction for a data-starved, noisy target): the mean of their outputs, sorted again for
distributional heads. Each member is amplitude invariant, so their mean is too.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = [
    "EnsemblePredictor",
    "ExponentialFilters",
    "FractalBody",
    "LSTMBody",
    "MLPBody",
    "ResidualPredictor",
    "make_body",
]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class ExponentialFilters(nn.Module):
    """A bank of causal exponential filters with learned decay rates, applied to one scale.

    Filter m weighs the increment k steps before the last one by ``exp(-k lambda_m)``; the
    output holds, per filter, the filtered increments ``sum_k w_km x_k`` and the filtered mean
    square ``sum_k w_km x_k^2 / sum_k w_km`` (a local variance at that horizon). Rates start
    with half-lives spread evenly in log from 1 to 32 steps. Smooth kernels of the path's
    recent past are then a few weights away, where an MLP on the raw increments has to find
    them among ``R x width`` free weights: on data as noisy as daily residual returns, that is
    the difference between learning the filter and fitting noise (benchmarks/
    deep_residual_vs_oracle.py).

    Shape: input (..., R), output (..., 2 M).
    """

    def __init__(self, n_filters: int = 8) -> None:
        super().__init__()
        half_lives = torch.logspace(0.0, 5.0, n_filters, base=2.0)
        rates = torch.log(torch.tensor(2.0)) / half_lives
        self.raw_rates = nn.Parameter(torch.log(torch.expm1(rates)))  # softplus^-1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rates = nn.functional.softplus(self.raw_rates)
        age = torch.arange(x.shape[-1] - 1, -1, -1, dtype=x.dtype, device=x.device)
        weights = torch.exp(-age[:, None] * rates[None, :])  # (R, M)
        return torch.cat([x @ weights, x.square() @ weights / weights.sum(0)], dim=-1)


class FractalBody(nn.Module):
    """psi1 applied to each scale with shared weights, averaged over scales, then psi2.

    psi1 is an MLP on the R increments of a scale (``psi1="mlp"``, the paper's) or the same
    MLP on `ExponentialFilters` of them (``psi1="filters"``).

    Shape: input (N, L, R), output (N, out).
    """

    def __init__(
        self, resample_length: int, hidden_sizes: tuple[int, ...], out: int, psi1: str = "mlp"
    ) -> None:
        super().__init__()
        if psi1 == "filters":
            filters = ExponentialFilters()
            width = 2 * len(filters.raw_rates)
            self.psi1 = nn.Sequential(filters, _mlp([width, *hidden_sizes]))
        else:
            self.psi1 = _mlp([resample_length, *hidden_sizes])
        self.psi2 = nn.Linear(hidden_sizes[-1], out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.psi2(self.psi1(x).mean(dim=1))


class MLPBody(nn.Module):
    """A plain MLP on the flattened multi-scale input.

    Shape: input (N, L, R), output (N, out).
    """

    def __init__(
        self, n_scales: int, resample_length: int, hidden_sizes: tuple[int, ...], out: int
    ) -> None:
        super().__init__()
        self.body = _mlp([n_scales * resample_length, *hidden_sizes])
        self.head = nn.Linear(hidden_sizes[-1], out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.flatten(1)))


class LSTMBody(nn.Module):
    """An LSTM over the R resampled steps, the L scales as input channels; last state -> head.

    Shape: input (N, L, R), output (N, out).
    """

    def __init__(self, n_scales: int, hidden_sizes: tuple[int, ...], out: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_scales, hidden_sizes[0], batch_first=True)
        self.head = nn.Linear(hidden_sizes[0], out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x.transpose(1, 2))
        return self.head(h[-1])


def make_body(
    architecture: str,
    n_scales: int,
    resample_length: int,
    hidden_sizes: tuple[int, ...],
    out: int,
    psi1: str = "mlp",
) -> nn.Module:
    """Build the network body for an architecture name ("fractal", "mlp", "lstm").

    `psi1` ("mlp" or "filters") is the fractal body's per-scale network; the others ignore it.
    """
    if architecture == "fractal":
        return FractalBody(resample_length, hidden_sizes, out, psi1)
    if architecture == "mlp":
        return MLPBody(n_scales, resample_length, hidden_sizes, out)
    return LSTMBody(n_scales, hidden_sizes, out)


class ResidualPredictor(nn.Module):
    """Amplitude normalisation around a body; sorted quantiles for distributional outputs.

    Parameters
    ----------
    body : Module
        Maps (N, L, R) to (N, out).
    amplitude_invariant : bool
        Normalise each sample by its own RMS (exactly homogeneous) or by `input_scale`.
    distributional : bool
        Sort the outputs (quantiles) ascending.
    input_scale : float
        The global scale used when ``amplitude_invariant=False``.

    Shape: input (N, L, R), output (N, Q - 1) (distributional) or (N, 1) (point).
    """

    def __init__(
        self,
        body: nn.Module,
        amplitude_invariant: bool,
        distributional: bool,
        input_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.body = body
        self.amplitude_invariant = amplitude_invariant
        self.distributional = distributional
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The normalising scale of each sample. Shape: input (N, L, R), output (N, 1, 1)."""
        if self.amplitude_invariant:
            return x.square().mean(dim=(1, 2), keepdim=True).sqrt()
        return self.input_scale.expand(x.shape[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale(x)
        # s = 0 only for an all-zero input; dividing by 1 there keeps it finite and the final
        # multiplication by s = 0 returns the homogeneous value psi(0) = 0.
        out = self.body(x / torch.where(s > 0, s, torch.ones_like(s))) * s[:, :, 0]
        if self.distributional:
            out = out.sort(dim=1).values
        return out


class EnsemblePredictor(nn.Module):
    """The average of k `ResidualPredictor` members' outputs (sorted for quantile heads).

    Parameters
    ----------
    members : sequence of ResidualPredictor
        Same output size; all distributional or all point predictors.

    Shape: input (N, L, R), output (N, K) like each member's.
    """

    def __init__(self, members: list[ResidualPredictor]) -> None:
        super().__init__()
        if not members:
            raise ValueError("EnsemblePredictor needs at least one member")
        self.members = nn.ModuleList(members)
        self.distributional = members[0].distributional

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.stack([m(x) for m in self.members]).mean(dim=0)
        if self.distributional:
            out = out.sort(dim=1).values
        return out
