"""The deep BSDE solver of Han, Jentzen and E (2018) for semilinear parabolic PDEs.

Han, Jentzen and E, "Solving high-dimensional partial differential equations using deep
learning", PNAS 115(34), 2018 (arXiv 1707.02568). For a `BSDEProblem` (forward process X,
driver f, terminal condition g; see `kabuto.hedging.bsde_problems`) on N steps of ``dt``, the
solver learns ``u(0, x0)`` and ``Z = sigma^T grad u`` along the paths:

* ``Y_0 = y0`` and ``Z_0 = z0`` are parameters (``X_0 = x0`` is the same on every path);
* ``Z_n = net_n(X_n)`` for n = 1..N-1, one network per step (the paper's "subnetworks");
* ``Y_{n+1} = Y_n - f(t_n, X_n, Y_n, Z_n) dt + Z_n . dW_n`` (Euler, the paper's eq. 5);
* the loss is ``E |Y_N - g(X_N)|^2`` over a batch of fresh paths, minimised by Adam.

At the optimum ``y0`` is ``u(0, x0)`` up to the time discretisation, and ``Z_n`` is
``sigma^T grad u(t_n, X_n)``: `DeepBSDE.gradient` turns it into ``grad u``, the hedge ratios of
a pricing problem (`DeepBSDE.gradients` gives them along paths, as positions for
`kabuto.hedging.pnl.hedge_pnl`).

Architecture (paper, "Implementation"): each step's network is fully connected,
``d -> d + 10 -> d + 10 -> d``, ReLU, with batch normalisation right after each hidden linear map
and before the activation. This is the default; see `DeepBSDE` for the shared network and the
linear skip that learn Z from far fewer paths. Further choices of this implementation:

* Scales. Before training, a pilot batch of ``PILOT_PATHS`` paths gives every step's input the
  mean and standard deviation of ``X_n``: each network sees ``(X_n - mean_n) / sd_n``, what the
  paper's batch normalisation of the input does with noisier per-batch statistics, so a problem
  in any units (prices near 100, or Brownian motion near 0) needs no scaling of its own (the
  shared network of ``shared=True`` divides by one standard deviation pooled over steps). The
  pilot batch also gives the scale of the solution, ``s = sd(g(X_N))`` (``max(|mean|, 1)`` if
  g does not vary): ``y0`` moves in units of s, and the networks and z0 output in units of
  ``s / sqrt(T d)`` (a Z whose Ito integral has the spread of g), so that Adam's steps mean the
  same whether u is 0.05 (Allen-Cahn) or 57 (default risk).
* Start. ``y0`` starts at the mean over the pilot paths of the explicit Euler recursion run
  backwards with Z = 0, ``Y_n = Y_{n+1} + f(t_n, X_n, Y_{n+1}, 0) dt``. For Black-Scholes
  (``f = -r y``) that is the mean payoff discounted by ``(1 - r dt)^N``, within ``r^2 T dt``
  (relative) of the scheme's own ``(1 + r dt)^-N``; for other drivers it is a first guess. The
  networks' output layers (the MLP's last linear map, the KAN's last layer) start at zero, and
  z0 at zero, so Z starts at 0 at every step.
* Divergence. `DeepBSDE.fit` raises a `ConfigError` when a loss is not finite, or when the
  loss of its last tenth of iterations averages more than ``DIVERGED_LOSS = 100`` times
  ``s^2``: the Euler recursion then misses g by ten times the spread of g itself, and y0 is
  not a solution (see `DIVERGED_LOSS`).
* Speed. X does not depend on the networks, so the N - 1 networks are evaluated together, as one
  batch of matrix products with their weights stacked (`StackedMLP`); the only Python loop is
  the Euler recursion over the N steps. ``z_network="kan"`` uses one `kabuto.hedging.kan.KAN`
  per step instead.
* Schedule. The learning rate decays geometrically from `learning_rate` to
  `final_learning_rate` (by default a tenth of it) over the iterations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Self

import torch
from torch import Tensor, nn

from kabuto.errors import ConfigError
from kabuto.hedging.bsde_problems import BSDEProblem, GBMProblem
from kabuto.hedging.kan import KAN
from kabuto.settings import (
    check_bool,
    check_choice,
    check_int,
    check_layer_sizes,
    check_positive,
    check_seed,
)
from kabuto.torch_settings import TorchSettingsMixin, seeded_cpu_rng

__all__ = [
    "DIVERGED_LOSS",
    "DTYPES",
    "Z_NETWORKS",
    "BSDESolution",
    "DeepBSDE",
    "StackedMLP",
    "StepNetworks",
]

Z_NETWORKS = ("mlp", "kan")
DTYPES = {"float32": torch.float32, "float64": torch.float64}

# Paths in the pilot batch that sets the input and output scales before training.
PILOT_PATHS = 1024
# The KAN's spline grid covers the standardised inputs out to this many standard deviations.
KAN_GRID_RANGE = (-3.0, 3.0)
_BN_EPS = 1e-5
_BN_MOMENTUM = 0.1
# `fit` raises where the loss of the last tenth of the iterations averages more than this many
# times s^2, the squared scale of g (its variance on the pilot paths): Y_N then misses g by ten
# times the spread of g, which no fit that learned anything does. The fits of the tests and of
# both benchmarks (bench_deep_bsde.py, paper and tuned networks; bsde_options.py, MLP and KAN)
# end between 0.01 and 1.21 times s^2 (1.21: 5 iterations, near the start); a recursion made
# unstable by its driver (AmericanBasketPutProblem, cap_penalty=False, penalty 100 to 10^4)
# ends 500 to 10^21 times above it. The rule takes g to set the size of u, as the scales do: a
# problem whose driver, not g, makes u vary (g constant, a large source term) is outside it.
DIVERGED_LOSS = 100.0


class StackedMLP(nn.Module):
    """K independent MLPs (one per time step), evaluated together with batched matrix products.

    Each maps ``R^{sizes[0]} -> R^{sizes[-1]}`` through hidden layers of widths ``sizes[1:-1]``:
    a linear map, batch normalisation over the batch (with `batch_norm`), then ReLU; the output
    layer is linear. Network k has its own weights and normalisation statistics.

    Parameters
    ----------
    n_networks : int
        K.
    sizes : sequence of int
        Layer widths, input first, output last.
    batch_norm : bool, default True
        Normalise the hidden pre-activations (running statistics are used in eval mode).
    """

    def __init__(self, n_networks: int, sizes: Sequence[int], batch_norm: bool = True) -> None:
        super().__init__()
        self.batch_norm = batch_norm
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.bn_scales = nn.ParameterList()
        for n_in, n_out in itertools.pairwise(sizes):
            bound = 1 / math.sqrt(n_in)  # torch.nn.Linear's default initialisation
            weight = torch.empty(n_networks, n_in, n_out).uniform_(-bound, bound)
            self.weights.append(nn.Parameter(weight))
            # With batch normalisation the bias acts as its shift.
            self.biases.append(nn.Parameter(torch.zeros(n_networks, 1, n_out)))
        # The output starts at zero, so that Z does: training starts from the pilot's guess of
        # y0 (see the module docstring).
        self.weights[-1].data.zero_()
        hidden = sizes[1:-1]
        if batch_norm:
            for i, width in enumerate(hidden):
                self.bn_scales.append(nn.Parameter(torch.ones(n_networks, 1, width)))
                self.register_buffer(f"running_mean_{i}", torch.zeros(n_networks, 1, width))
                self.register_buffer(f"running_var_{i}", torch.ones(n_networks, 1, width))

    def forward(self, x: Tensor, index: slice = slice(None)) -> Tensor:
        """Networks ``index`` (all by default): (K', M, sizes[0]) -> (K', M, sizes[-1])."""
        h = x
        n_hidden = len(self.weights) - 1
        for i in range(n_hidden):
            h = h @ self.weights[i][index]
            if self.batch_norm:
                h = self._normalise(i, h, index)
            h = torch.relu(h + self.biases[i][index])
        return torch.baddbmm(self.biases[-1][index], h, self.weights[-1][index])

    def _normalise(self, i: int, h: Tensor, index: slice) -> Tensor:
        running_mean = getattr(self, f"running_mean_{i}")
        running_var = getattr(self, f"running_var_{i}")
        if self.training:
            # Two plain reductions: much faster on CPU than torch.var_mean's Welford pass.
            mean = h.mean(dim=1, keepdim=True)
            var = (h - mean).square().mean(dim=1, keepdim=True)
            with torch.no_grad():
                running_mean[index].lerp_(mean, _BN_MOMENTUM)
                running_var[index].lerp_(var, _BN_MOMENTUM)
        else:
            mean, var = running_mean[index], running_var[index]
        return (h - mean) * (self.bn_scales[i][index] * torch.rsqrt(var + _BN_EPS))


class _PerStep(nn.Module):
    """K separate networks (e.g. KANs), run one after the other: (K', M, d) -> (K', M, d')."""

    def __init__(self, networks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.networks = nn.ModuleList(networks)

    def forward(self, x: Tensor, index: slice = slice(None)) -> Tensor:
        selected = self.networks[index]
        return torch.stack([net(xk) for net, xk in zip(selected, x, strict=True)])


class StepNetworks(nn.Module):
    """The Z-networks of steps n = 1..N-1, with their fixed input and output scales.

    Per step (``shared=False``, the paper's)::

        Z_n = output_scale * (body_n(h) + h @ skip_n),   h = (X_n - shift_n) / scale_n,

    or, with ``shared=True``, one network of the time and the state for every step,
    ``body([h, t_n / T])``, and one skip matrix. The skip matrix (a linear shortcut, zero
    unless `linear_skip`) lets the networks represent the linear part of Z exactly, which a
    ReLU layer narrower than 2d cannot.

    Parameters
    ----------
    body : nn.Module
        Maps (K', M, d_in) to (K', M, d) for the networks ``index`` (`StackedMLP`, or K
        separate networks); with `shared`, one network with ``d_in = d + 1``.
    n_networks : int
        K = N - 1.
    dim : int
        d.
    shared : bool
        One network for all steps, with the time as an extra input.
    linear_skip : bool
        Add the learned linear map of the input (it starts at zero).

    Buffers
    -------
    shift, scale : Tensor
        Input standardisation per step, (K, 1, d) (with `shared`, one scale for all steps).
    times : Tensor
        ``t_n / T`` for n = 1..N-1, (K, 1, 1).
    output_scale : Tensor
        Unit of Z, ().
    """

    def __init__(
        self, body: nn.Module, n_networks: int, dim: int, shared: bool, linear_skip: bool
    ) -> None:
        super().__init__()
        self.body = body
        self.shared = shared
        self.register_buffer("shift", torch.zeros(n_networks, 1, dim))
        self.register_buffer("scale", torch.ones(n_networks, 1, dim))
        self.register_buffer(
            "times", torch.arange(1.0, n_networks + 1)[:, None, None] / (n_networks + 1)
        )
        self.register_buffer("output_scale", torch.ones(()))
        n_in = dim + 1 if shared else dim
        skip = torch.zeros(1 if shared else n_networks, n_in, dim)
        self.skip = nn.Parameter(skip) if linear_skip else None

    def forward(self, x: Tensor, index: slice = slice(None)) -> Tensor:
        """Z of networks ``index`` (all, steps 1..N-1, by default): (K', M, d) -> (K', M, d)."""
        h = (x - self.shift[index]) / self.scale[index]
        if self.shared:
            k, m, d = h.shape
            time = self.times[index].expand(k, m, 1)
            h = torch.cat([h, time], dim=-1).reshape(1, k * m, d + 1)
            index = slice(None)
        z = self.body(h, index)
        if self.skip is not None:
            z = torch.baddbmm(z, h, self.skip[index])
        return (self.output_scale * z).reshape(x.shape)


class BSDESolution(TorchSettingsMixin):
    """A BSDE solver: `fit` a problem, then ``problem_``, ``y0_``, `z` and, from them,
    `gradient` and `gradients` (the delta hedge of `kabuto.hedging.bsde_hedging`).

    Subclasses define `_validate` (of their settings), `_fit`, which sets ``problem_`` and
    ``y0_``, `z` and `_like` (a tensor of the solution's dtype and device).
    """

    problem_: BSDEProblem
    y0_: float

    def fit(self, problem: BSDEProblem) -> Self:
        """Learn ``u(0, x0)`` of `problem`, and what gives Z (and the solution) along the way.

        Parameters
        ----------
        problem : BSDEProblem

        Returns
        -------
        self
        """
        self._validate()
        self._check_problem(problem)
        with self._threads():
            return self._fit(problem)

    def _validate(self) -> None:
        """Check the settings: the solver's own, then those every solver has."""
        name = type(self).__name__
        self._check_solver_settings(name)
        check_seed(name, "seed", self.seed)
        check_choice(name, "dtype", self.dtype, DTYPES)
        self._check_torch_settings(name)

    def _check_solver_settings(self, name: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, problem: BSDEProblem) -> Self:  # pragma: no cover - abstract
        raise NotImplementedError

    def z(self, n: int, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _like(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_problem(self, problem: object) -> None:
        if not isinstance(problem, BSDEProblem):
            raise ConfigError(
                f"{type(self).__name__}.fit: problem={problem!r} is not allowed; pass a "
                "BSDEProblem (see kabuto.hedging.bsde_problems)"
            )

    def _check_fitted(self, owner: str) -> None:
        if not hasattr(self, "problem_"):
            raise ConfigError(f"{type(self).__name__}.{owner}: not fitted; call fit(problem) first")

    def _states(self, owner: str, x: object, ndim: int) -> Tensor:
        d = self.problem_.dim
        if not isinstance(x, Tensor) or x.ndim != ndim or x.shape[-1] != d:
            shape = tuple(x.shape) if isinstance(x, Tensor) else repr(type(x))
            want = "(M, d)" if ndim == 2 else "(M, N + 1, d)"
            raise ConfigError(
                f"{type(self).__name__}.{owner}: x has shape {shape}; use a tensor of shape "
                f"{want} with d={d}"
            )
        if not x.is_floating_point():
            raise ConfigError(
                f"{type(self).__name__}.{owner}: x has dtype {x.dtype}; use real floating-point "
                "states (e.g. x.double())"
            )
        finite = x.isfinite().flatten(1).all(dim=1)
        if not bool(finite.all()):
            row = int((~finite).nonzero()[0, 0])
            raise ConfigError(
                f"{type(self).__name__}.{owner}: x[{row}] holds NaN or infinity (the first of "
                f"{int((~finite).sum())} such rows); pass finite states"
            )
        if isinstance(self.problem_, GBMProblem) and not bool((x > 0).all()):
            # its gradient divides Z by volatility * x: at x <= 0, inf or a flipped sign
            row = int((x <= 0).flatten(1).any(dim=1).nonzero()[0, 0])
            raise ConfigError(
                f"{type(self).__name__}.{owner}: x[{row}] holds a price <= 0; the problem's "
                "states are prices, so pass positive ones"
            )
        reference = self._like()
        return x.to(dtype=reference.dtype, device=reference.device)

    def _step(self, owner: str, n: object) -> int:
        last = self.problem_.n_steps - 1
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= last:
            raise ConfigError(
                f"{type(self).__name__}.{owner}: n={n!r} is not allowed; use a step in 0..{last}"
            )
        return n

    def gradient(self, n: int, x: Tensor) -> Tensor:
        """The learned ``grad u(t_n, x)`` (from `z`): (M, d) -> (M, d); for n = 0..N-1."""
        self._check_fitted("gradient")
        n = self._step("gradient", n)
        x = self._states("gradient", x, 2)
        return self.problem_.to_gradient(self.problem_.time(n), x, self.z(n, x))

    def _z_along(self, x: Tensor) -> Tensor:
        """``Z_n(X_n)`` along paths x (M, N + 1, d), step by step: shape (N, M, d)."""
        return torch.stack([self.z(n, x[:, n]) for n in range(self.problem_.n_steps)])

    def gradients(self, x: Tensor) -> Tensor:
        """``grad u(t_n, X_n)`` for n = 0..N-1 along paths: (M, N + 1, d) -> (M, N, d).

        These are the delta-hedge positions of a pricing problem, in the layout of
        `kabuto.hedging.pnl.hedge_pnl` (prices `x`).
        """
        self._check_fitted("gradients")
        x = self._states("gradients", x, 3)
        problem = self.problem_
        if x.shape[1] != problem.n_steps + 1:
            raise ConfigError(
                f"{type(self).__name__}.gradients: x has {x.shape[1]} dates; the problem has "
                f"N + 1 = {problem.n_steps + 1}"
            )
        z = self._z_along(x)
        steps = range(problem.n_steps)
        with torch.no_grad():
            gradients = [problem.to_gradient(problem.time(n), x[:, n], z[n]) for n in steps]
        return torch.stack(gradients, dim=1)


def check_loss_scale(
    name: str, what: str, loss: float, g_scale: Tensor, consequence: str, fix: str
) -> None:
    """Raise a ConfigError when `loss` is above ``DIVERGED_LOSS`` times the squared scale of the
    terminal condition g: the divergence rule of both deep BSDE solvers."""
    unit = float(g_scale) ** 2
    if loss > DIVERGED_LOSS * unit:
        raise ConfigError(
            f"{name}: {what} {loss:.4g}, {loss / unit:.3g} times the squared scale of the "
            f"terminal condition ({unit:.4g}; the limit is {DIVERGED_LOSS:g}): {consequence}; "
            f"{fix}"
        )


class DeepBSDE(BSDESolution):
    """Deep BSDE solver (Han, Jentzen and E 2018); see the module docstring for the method.

    Parameters
    ----------
    iterations : int, default 2000
        Adam steps, each on `batch_size` fresh paths.
    batch_size : int, default 64
        Paths per step (>= 2, for the batch normalisation); the paper's 64.
    learning_rate : float, default 0.01
        Adam's initial step size.
    final_learning_rate : float, optional
        Step size at the last iteration, at most `learning_rate`; it decays geometrically from
        `learning_rate`. Default: a tenth of `learning_rate` (0.001 at the default 0.01).
    z_network : {"mlp", "kan"}, default "mlp"
        The paper's network, or a Kolmogorov-Arnold network per step (`kabuto.hedging.kan`;
        Handal and Hirano 2026), on inputs standardised to mostly lie in ``KAN_GRID_RANGE``.
    hidden_sizes : tuple of int, optional
        Hidden widths; default ``(d + 10, d + 10)`` (the paper's).
    batch_norm : bool, default True
        Batch normalisation of the MLP's hidden layers (the paper's).
    shared : bool, default False
        One network of ``(x, t)`` for all steps instead of one per step (the paper's); it sees
        N - 1 times as many samples per parameter, see the Notes.
    linear_skip : bool, default False
        Add a learned linear map of the input to the network's output (see `StepNetworks`).
    kan_grid_size : int, default 5
        Grid intervals of the KAN's splines.
    kan_spline_order : int, default 3
        Degree of the KAN's splines.
    seed : int, default 0
        Seeds the initial weights and the paths (same seed, same solution on CPU).
    dtype : {"float32", "float64"}, default "float32"
        Precision of the paths, parameters and arithmetic.
    device : {"cpu", "cuda", "auto"}, default "cpu"
    num_threads : int, optional
        Torch CPU threads while fitting (restored afterwards); None leaves torch's setting. The
        networks are small: use 1, as more threads only wait for each other (on a busy
        two-core machine, two threads made a fit 25 times slower than one).

    Attributes
    ----------
    y0_ : float
        The learned ``u(0, x0)``.
    z0_ : Tensor
        The learned ``Z_0``, shape (d,).
    losses_ : list of float
        The batch loss ``mean |Y_N - g(X_N)|^2`` at every iteration.
    y0_history_ : list of float
        ``y0`` after every iteration.
    networks_ : StepNetworks
        The Z-networks of steps 1..N-1 (in eval mode).
    problem_ : BSDEProblem
        The problem solved.

    Raises
    ------
    ConfigError
        From `fit`, when the training diverged: a loss that is not finite, or a final loss
        above ``DIVERGED_LOSS`` times the squared scale of g (see the module docstring); the
        message gives the numbers and what to change.

    Notes
    -----
    How well Z is learned decides the accuracy wherever the driver depends on Z or y. The
    signal in the gradient of step n's network, ``E[(Y_N - g) dW_n | X_n] = (Z_n - Z*_n) dt``,
    is small against the noise of ``(Y_N - g) dW_n``, and the paper's per-step networks each
    see only the batch's states at their own step. On the 100-dimensional HJB example (batch
    64) they had learned almost nothing after 4000 iterations (cosine with the exact Z below
    0.25; ``E |Z|^2`` 4% of the exact), so y0 stays near ``E g(X_T) = 4.6002``, 0.22% above
    u(0, 0) = 4.5901, where ``E |Z|^2`` would lower it (the paper's own error there is 0.17%;
    1000 iterations of these networks give 0.19% to 0.23% here).
    ``shared=True`` trains one network on the states of all N - 1 steps (N - 1 times the data
    per parameter; a "merged" network of time and state as in Chan-Wai-Nam, Mikael and Warin
    2019, "Machine learning for semi linear PDEs", J. Sci. Comput. 79), and
    ``linear_skip=True`` lets it represent a linear Z exactly, which a ReLU layer narrower than
    2d cannot; together they reached a cosine of 0.98 with the exact Z in 1000 iterations and
    HJB errors below 0.05% (benchmarks/bench_deep_bsde.py). Keep the defaults for the paper's
    method.
    """

    def __init__(
        self,
        iterations: int = 2000,
        batch_size: int = 64,
        learning_rate: float = 0.01,
        final_learning_rate: float | None = None,
        z_network: str = "mlp",
        hidden_sizes: tuple[int, ...] | None = None,
        batch_norm: bool = True,
        shared: bool = False,
        linear_skip: bool = False,
        kan_grid_size: int = 5,
        kan_spline_order: int = 3,
        seed: int = 0,
        dtype: str = "float32",
        device: str = "cpu",
        num_threads: int | None = None,
    ) -> None:
        self.iterations = iterations
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.final_learning_rate = final_learning_rate
        self.z_network = z_network
        self.hidden_sizes = hidden_sizes
        self.batch_norm = batch_norm
        self.shared = shared
        self.linear_skip = linear_skip
        self.kan_grid_size = kan_grid_size
        self.kan_spline_order = kan_spline_order
        self.seed = seed
        self.dtype = dtype
        self.device = device
        self.num_threads = num_threads
        self._validate()

    def _check_solver_settings(self, name: str) -> None:
        check_int(name, "iterations", self.iterations, 1)
        check_int(name, "batch_size", self.batch_size, 2)
        check_positive(name, "learning_rate", self.learning_rate)
        final = self.final_learning_rate
        if final is not None and check_positive(name, "final_learning_rate", final) > (
            self.learning_rate
        ):
            raise ConfigError(
                f"{name}: final_learning_rate={self.final_learning_rate!r} is above "
                f"learning_rate={self.learning_rate!r}; the rate decays from the one to the "
                "other, so give a final rate at most the initial one"
            )
        check_choice(name, "z_network", self.z_network, Z_NETWORKS)
        if self.hidden_sizes is not None:
            check_layer_sizes(name, "hidden_sizes", self.hidden_sizes)
        check_bool(name, "batch_norm", self.batch_norm)
        check_bool(name, "shared", self.shared)
        check_bool(name, "linear_skip", self.linear_skip)
        check_int(name, "kan_grid_size", self.kan_grid_size, 1)
        check_int(name, "kan_spline_order", self.kan_spline_order, 0)

    # ----------------------------------------------------------------- training

    def _check_problem(self, problem: object) -> None:
        super()._check_problem(problem)
        assert isinstance(problem, BSDEProblem)
        if problem.n_steps < 2:
            raise ConfigError(
                f"{type(self).__name__}.fit: the problem has n_steps={problem.n_steps}; use at "
                "least 2 (the networks learn Z at steps 1..N-1)"
            )

    def _fit(self, problem: BSDEProblem) -> Self:
        dtype, device = DTYPES[self.dtype], self._torch_device()
        generator = torch.Generator(device=device).manual_seed(self.seed)
        networks = self._build_networks(problem)
        networks.to(device=device, dtype=dtype)
        y_center, y_scale = self._set_scales(problem, networks, generator, dtype, device)
        # y0 and z0 in units of the problem's scale (see the module docstring).
        y0_unit = nn.Parameter(torch.zeros((), dtype=dtype, device=device))
        z0_unit = nn.Parameter(torch.zeros(problem.dim, dtype=dtype, device=device))

        parameters = [y0_unit, z0_unit, *networks.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=self.learning_rate, fused=True)
        final = self.final_learning_rate or self.learning_rate / 10
        decay = (final / self.learning_rate) ** (1 / max(self.iterations - 1, 1))
        losses = torch.empty(self.iterations, dtype=dtype, device=device)
        y0s = torch.empty(self.iterations, dtype=dtype, device=device)
        networks.train()
        for i in range(self.iterations):
            for group in optimizer.param_groups:
                group["lr"] = self.learning_rate * decay**i
            x, dw = problem.sample(self.batch_size, generator, dtype, device)
            y0 = y_center + y_scale * y0_unit
            z0 = networks.output_scale * z0_unit
            y_end = _rollout(problem, networks, y0, z0, x, dw)
            loss = (y_end - problem.terminal(x[:, -1])).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                losses[i] = loss
                y0s[i] = y_center + y_scale * y0_unit
        networks.eval()
        self._check_converged(losses, y_scale, float(y0s[-1]))

        self.y0_ = float(y0s[-1])
        self.z0_ = (networks.output_scale * z0_unit).detach()
        self.losses_ = losses.tolist()
        self.y0_history_ = y0s.tolist()
        self.networks_ = networks
        self.problem_ = problem
        return self

    def _check_converged(self, losses: Tensor, y_scale: Tensor, y0: float) -> None:
        """Raise a ConfigError if the training diverged: a non-finite loss, or a final loss
        above ``DIVERGED_LOSS`` times the squared scale of g."""
        name = f"{type(self).__name__}.fit"
        fixes = (
            f"lower learning_rate={self.learning_rate!r}, take more n_steps, or bound the "
            "driver's slope in y (AmericanBasketPutProblem: cap_penalty=True)"
        )
        bad = ~losses.isfinite()
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise ConfigError(
                f"{name}: the loss became {float(losses[first])} at iteration {first + 1} of "
                f"{self.iterations}: the training diverged; {fixes}"
            )
        check_loss_scale(
            name,
            "the loss of the last tenth of the iterations averages",
            float(losses[-max(1, self.iterations // 10) :].mean()),
            y_scale,
            f"the recursion misses g by far more than g varies, so y0={y0:.6g} is not a solution",
            fixes,
        )

    def _build_networks(self, problem: BSDEProblem) -> StepNetworks:
        d, n_networks = problem.dim, problem.n_steps - 1
        hidden = (d + 10, d + 10) if self.hidden_sizes is None else tuple(self.hidden_sizes)
        sizes = (d + 1 if self.shared else d, *hidden, d)
        n_bodies = 1 if self.shared else n_networks
        # Initial weights from the seed, without touching the caller's global random state.
        with seeded_cpu_rng(self.seed):
            if self.z_network == "mlp":
                body: nn.Module = StackedMLP(n_bodies, sizes, self.batch_norm)
            else:
                grid, order = self.kan_grid_size, self.kan_spline_order
                kans = [KAN(sizes, grid, order, KAN_GRID_RANGE) for _ in range(n_bodies)]
                body = _PerStep([_zero_output(kan) for kan in kans])
        return StepNetworks(body, n_networks, d, self.shared, self.linear_skip)

    def _set_scales(
        self,
        problem: BSDEProblem,
        networks: StepNetworks,
        generator: torch.Generator,
        dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[Tensor, Tensor]:
        """Input and output scales from a pilot batch; returns y0's start and unit."""
        x, _ = _sample_checked(type(self).__name__, problem, generator, dtype, device)
        g = _terminal_checked(type(self).__name__, problem, x)
        sd, mean = torch.std_mean(x[:, 1:-1].transpose(0, 1), dim=1, keepdim=True)  # (N-1, 1, d)
        if self.shared:
            # One scale for all steps, so that Z keeps one functional form of the state.
            sd = sd.square().mean(dim=0, keepdim=True).sqrt().expand_as(sd)
        typical = sd.mean().clamp(min=torch.finfo(dtype).tiny)
        networks.shift.copy_(mean)
        # A coordinate that does not move keeps the typical scale (no division by zero).
        networks.scale.copy_(torch.where(sd > 1e-6 * typical, sd, typical))
        _, y_scale = _center_and_scale(g)
        networks.output_scale.copy_(y_scale / math.sqrt(problem.maturity * problem.dim))
        # y0 starts from the explicit Euler recursion with Z = 0 run backwards along each path,
        # averaged: for Black-Scholes the payoff discounted by (1 - r dt)^N instead of the
        # scheme's (1 + r dt)^-N (see the module docstring), a first guess for other drivers.
        y = g
        zero = torch.zeros_like(x[:, 0])
        for n in reversed(range(problem.n_steps)):
            y = y + problem.driver(problem.time(n), x[:, n], y, zero) * problem.dt
        return y.mean(), y_scale

    # ----------------------------------------------------------------- use

    def _like(self) -> Tensor:
        return self.networks_.shift

    def z(self, n: int, x: Tensor) -> Tensor:
        """The learned ``Z_n`` at states `x` of step n = 0..N-1 (no gradients).

        Parameters
        ----------
        n : int
            The step; at n = 0 every state gets the learned ``z0``.
        x : Tensor
            States ``X_n``. Shape (M, d).

        Returns
        -------
        Tensor
            ``Z_n``, approximately ``sigma^T grad u(t_n, x)``. Shape (M, d).
        """
        self._check_fitted("z")
        n = self._step("z", n)
        x = self._states("z", x, 2)
        with torch.no_grad():
            if n == 0:
                return self.z0_.expand_as(x).clone()
            return self.networks_(x[None], slice(n - 1, n))[0]

    def _z_along(self, x: Tensor) -> Tensor:
        """``Z_n(X_n)`` for n = 0..N-1 along paths, the networks of all steps in one batch."""
        with torch.no_grad():
            rest = self.networks_(x[:, 1:-1].transpose(0, 1))
            return torch.cat([self.z0_.expand(1, *x[:, 0].shape), rest])


def _zero_output(kan: KAN) -> KAN:
    """`kan` with its last layer at zero, so that Z starts at zero as with the MLP; the layer's
    parameters still get gradients (its output is linear in them)."""
    last = kan.layers[-1]
    with torch.no_grad():
        last.base_weight.zero_()
        last.spline_coefficients.zero_()
    return kan


def _rollout(
    problem: BSDEProblem, networks: StepNetworks, y0: Tensor, z0: Tensor, x: Tensor, dw: Tensor
) -> Tensor:
    """``Y_N`` of the Euler recursion along paths x (M, N + 1, d), dw (M, N, d): shape (M,)."""
    n_paths = x.shape[0]
    z = torch.cat([z0.expand(1, n_paths, -1), networks(x[:, 1:-1].transpose(0, 1))])
    stochastic = (z * dw.transpose(0, 1)).sum(dim=-1)  # Z_n . dW_n, (N, M)
    y = y0.expand(n_paths)
    for n in range(problem.n_steps):
        drift = problem.driver(problem.time(n), x[:, n], y, z[n])
        y = torch.add(y + stochastic[n], drift, alpha=-problem.dt)
    return y


def _center_and_scale(values: Tensor) -> tuple[Tensor, Tensor]:
    """The values' mean and standard deviation (``max(|mean|, 1)`` if they do not vary): the
    centre and unit of a solution whose size they give."""
    sd, mean = torch.std_mean(values)
    return mean, sd if sd > 0 else mean.abs().clamp(min=1.0)


def _sample_checked(
    owner: str,
    problem: BSDEProblem,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """A pilot batch of ``PILOT_PATHS`` paths, checking the shapes and dtype `sample` returns."""
    m, n, d = PILOT_PATHS, problem.n_steps, problem.dim
    name = type(problem).__name__
    sample = problem.sample(m, generator, dtype, device)
    if not isinstance(sample, tuple) or len(sample) != 2:
        raise ConfigError(f"{owner}: {name}.sample must return a pair (x, dw) of tensors")
    for label, value, shape in zip(("x", "dw"), sample, ((m, n + 1, d), (m, n, d)), strict=True):
        if not isinstance(value, Tensor) or tuple(value.shape) != shape or value.dtype != dtype:
            got = (
                f"shape {tuple(value.shape)} and dtype {value.dtype}"
                if isinstance(value, Tensor)
                else repr(type(value))
            )
            raise ConfigError(
                f"{owner}: {name}.sample returned {label} with {got}; it must have shape "
                f"{shape} (paths, dates, dim) and dtype {dtype}"
            )
    x, dw = sample
    if not bool(x.isfinite().all()):
        raise ConfigError(f"{owner}: {name}.sample gives non-finite paths; check its parameters")
    return x, dw


def _terminal_checked(owner: str, problem: BSDEProblem, x: Tensor) -> Tensor:
    """``g(X_N)`` of the pilot paths, checking what `terminal` and `driver` return."""
    name = type(problem).__name__
    m = x.shape[0]
    g = problem.terminal(x[:, -1])
    f = problem.driver(0.0, x[:, 0], g, torch.zeros_like(x[:, 0]))
    for label, value in (("terminal", g), ("driver", f)):
        if not isinstance(value, Tensor) or tuple(value.shape) != (m,):
            got = tuple(value.shape) if isinstance(value, Tensor) else repr(type(value))
            raise ConfigError(
                f"{owner}: {name}.{label} returned shape {got}; it must be ({m},), one per path"
            )
        if not bool(value.isfinite().all()):
            raise ConfigError(f"{owner}: {name}.{label} gives non-finite values on the paths")
    return g
