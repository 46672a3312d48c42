"""Kolmogorov-Arnold networks (KANs) with B-spline edge functions.

Liu et al. (2024), "KAN: Kolmogorov-Arnold Networks" (arXiv 2404.19756). Where a multi-layer
perceptron puts a fixed activation on each node and learns the weights on the edges, a KAN
learns a univariate function on every edge and only sums at the nodes. Layer l maps
``x in R^{n_in}`` to::

    y_j = sum_i phi_ij(x_i),    phi_ij(x) = w_b[j, i] silu(x) + w_s[j, i] sum_k c[j, i, k] B_k(x)

(the residual activation of Liu et al. 2024, sec. 2.2), with ``B_k`` the B-splines of degree
``spline_order`` on a uniform grid of ``grid_size`` intervals over ``grid_range``, extended by
``spline_order`` knots on each side so that the ``grid_size + spline_order`` basis functions sum
to one everywhere inside the range. Outside the extended grid the spline part vanishes and only
the ``silu`` part is left, so inputs are best scaled to lie in ``grid_range``. Handal and Hirano
(2026), "KANHedge" (arXiv 2601.11097), use a KAN as the Z-network of a deep BSDE solver; the
spline edges give smooth learned functions.

The basis functions are evaluated for all inputs at once with the Cox-de Boor recursion, and the
edge sums are one matrix product, so a layer costs about as much as a linear layer of width
``in_features * (grid_size + spline_order)``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional

from kabuto.errors import ConfigError
from kabuto.settings import check_int, check_layer_sizes

__all__ = ["KAN", "KANLayer"]

# Standard deviation of the initial spline coefficients of an edge (the initialisation scale of
# Liu et al. 2024, sec. 2.2); divided by sqrt(in_features) so that the spline part of a layer's
# output starts at the same scale whatever the width.
_SPLINE_INIT_STD = 0.1


class KANLayer(nn.Module):
    """One KAN layer: a learned univariate function on each of ``in x out`` edges, summed.

    Parameters
    ----------
    in_features : int
        Input width (>= 1).
    out_features : int
        Output width (>= 1).
    grid_size : int, default 5
        Number of grid intervals G over ``grid_range`` (>= 1).
    spline_order : int, default 3
        Degree k of the B-splines (>= 0; 3 is cubic).
    grid_range : tuple of float, default (-1.0, 1.0)
        Interval ``(a, b)``, ``a < b``, that the grid covers.
    generator : torch.Generator, optional
        A CPU generator for the initial parameters (its state advances); None uses torch's
        global one.

    Attributes
    ----------
    base_weight : Parameter
        ``w_b``, initialised like the weight of `torch.nn.Linear`. Shape: (out, in).
    spline_scale : Parameter
        ``w_s``, initialised to one. Shape: (out, in).
    spline_coefficients : Parameter
        ``c``, initialised to small normal noise. Shape: (out, in, G + k).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        owner = "KANLayer"
        _check_generator(owner, generator)
        self.in_features = check_int(owner, "in_features", in_features, 1)
        self.out_features = check_int(owner, "out_features", out_features, 1)
        self.grid_size = check_int(owner, "grid_size", grid_size, 1)
        self.spline_order = check_int(owner, "spline_order", spline_order, 0)
        self.grid_range = _check_grid_range(owner, grid_range)

        self.n_basis = self.grid_size + self.spline_order

        self.base_weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.spline_scale = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.spline_coefficients = nn.Parameter(
            torch.empty(self.out_features, self.in_features, self.n_basis)
        )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw fresh initial parameters from `generator` (None: torch's global generator)."""
        _check_generator("KANLayer.reset_parameters", generator)
        # The default initialisation of nn.Linear, U(-1/sqrt(in), 1/sqrt(in)).
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5), generator=generator)
        nn.init.ones_(self.spline_scale)
        std = _SPLINE_INIT_STD / math.sqrt(self.in_features)
        nn.init.normal_(self.spline_coefficients, mean=0.0, std=std, generator=generator)

    def knots(self, like: Tensor) -> Tensor:
        """The ``G + 2k + 1`` knots ``a + (m - k) (b - a) / G``, m = 0 .. G + 2k.

        Made in the dtype and on the device of ``like`` each call (a stored float32 buffer
        would carry its rounding into float64). Shape: output (G + 2k + 1,).
        """
        low, high = self.grid_range
        step = (high - low) / self.grid_size
        k = self.spline_order
        positions = torch.arange(-k, self.grid_size + k + 1, dtype=like.dtype, device=like.device)
        return low + step * positions

    def basis(self, x: Tensor) -> Tensor:
        """The B-spline basis functions ``B_k(x)`` at every input, by the Cox-de Boor recursion.

        ``B_{m,0}(x) = 1`` on ``[t_m, t_{m+1})`` (the last interval closed) and 0 elsewhere,
        and for degree p >= 1::

            B_{m,p}(x) = (x - t_m) / (t_{m+p} - t_m) B_{m,p-1}(x)
                         + (t_{m+p+1} - x) / (t_{m+p+1} - t_{m+1}) B_{m+1,p-1}(x)

        (de Boor, "A Practical Guide to Splines", ch. IX). Each is non-negative, they sum to one
        on ``grid_range`` and all vanish outside the extended grid.

        Shape: input (..., in), output (..., in, G + k).
        """
        t = self.knots(x)
        x = x.unsqueeze(-1)
        inside = (x >= t[:-1]) & (x < t[1:])
        # The last interval is closed, so that degree 0 also covers the right end of the range.
        inside[..., -1] |= x[..., 0] == t[-1]
        values = inside.to(x.dtype)
        for p in range(1, self.spline_order + 1):
            rising = (x - t[: -(p + 1)]) / (t[p:-1] - t[: -(p + 1)])
            falling = (t[p + 1 :] - x) / (t[p + 1 :] - t[1:-p])
            values = rising * values[..., :-1] + falling * values[..., 1:]
        return values

    def forward(self, x: Tensor) -> Tensor:
        """``y_j = sum_i phi_ij(x_i)``.

        Shape: input (..., in), output (..., out).
        """
        if x.shape[-1] != self.in_features:
            raise ConfigError(
                f"KANLayer: input has {x.shape[-1]} features in its last dimension (shape "
                f"{tuple(x.shape)}); it must have in_features={self.in_features}"
            )
        base = functional.linear(functional.silu(x), self.base_weight)
        # w_s c folded into one (out, in * (G + k)) matrix: the edge sums are one product.
        weight = (self.spline_scale.unsqueeze(-1) * self.spline_coefficients).flatten(1)
        spline = functional.linear(self.basis(x).flatten(-2), weight)
        return base + spline

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"grid_size={self.grid_size}, spline_order={self.spline_order}, "
            f"grid_range={self.grid_range}"
        )


class KAN(nn.Module):
    """A Kolmogorov-Arnold network: `KANLayer` s of widths ``sizes`` composed.

    Parameters
    ----------
    sizes : sequence of int
        Widths ``(n_0, n_1, ..., n_L)``, at least two, each >= 1: the input width, the hidden
        widths and the output width (Liu et al. 2024 write ``[n_0, ..., n_L]``).
    grid_size : int, default 5
        Grid intervals of every layer's splines (>= 1).
    spline_order : int, default 3
        Degree of every layer's splines (>= 0).
    grid_range : tuple of float, default (-1.0, 1.0)
        Interval every layer's grid covers. Hidden activations are not rescaled, so the inputs
        should lie in it (the spline part of an edge vanishes outside it).
    generator : torch.Generator, optional
        A CPU generator for the initial parameters of all layers, drawn layer by layer (its
        state advances). None uses torch's global generator (and advances it).

    Parameters are created in torch's default dtype on the CPU; ``.to(dtype, device)`` (or
    ``.double()``) moves the parameters; the knots follow the input.

    Shape: input (..., n_0), output (..., n_L).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        owner = "KAN"
        _check_generator(owner, generator)
        widths = check_layer_sizes(owner, "sizes", sizes)
        if len(widths) < 2:
            raise ConfigError(
                f"KAN: sizes={sizes!r} is not allowed; give at least an input and an output "
                "width, e.g. (2, 5, 1)"
            )
        self.sizes = widths
        self.grid_size = check_int(owner, "grid_size", grid_size, 1)
        self.spline_order = check_int(owner, "spline_order", spline_order, 0)
        self.grid_range = _check_grid_range(owner, grid_range)
        self.layers = nn.ModuleList(
            KANLayer(n_in, n_out, self.grid_size, self.spline_order, self.grid_range, generator)
            for n_in, n_out in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Shape: input (..., sizes[0]), output (..., sizes[-1])."""
        for layer in self.layers:
            x = layer(x)
        return x


def _check_generator(owner: str, generator: object) -> None:
    """None or a CPU torch.Generator (the parameters are created on the CPU), else ConfigError."""
    if generator is None or (
        isinstance(generator, torch.Generator) and generator.device.type == "cpu"
    ):
        return
    raise ConfigError(
        f"{owner}: generator={generator!r} is not allowed; use None or a CPU torch.Generator, "
        "e.g. torch.Generator().manual_seed(0)"
    )


def _check_grid_range(owner: str, grid_range: object) -> tuple[float, float]:
    """``grid_range`` as a pair of finite floats ``(a, b)`` with ``a < b``, or a ConfigError."""
    if (
        isinstance(grid_range, tuple | list)
        and len(grid_range) == 2
        and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in grid_range
        )
        and grid_range[0] < grid_range[1]
    ):
        return float(grid_range[0]), float(grid_range[1])
    raise ConfigError(
        f"{owner}: grid_range={grid_range!r} is not allowed; use two finite numbers (low, high) "
        "with low < high, e.g. (-1.0, 1.0)"
    )
