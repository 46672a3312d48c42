"""A backward deep BSDE solver: one regression per time step, from maturity to today.

Huré, Pham and Warin (2020), "Deep backward schemes for high-dimensional nonlinear PDEs",
Mathematics of Computation 89(324), scheme DBDP1. For a `BSDEProblem` (forward process X,
driver f, terminal condition g) on N steps of ``dt``, with ``U_N = g``, step n = N-1, ..., 0
fits a network ``x -> (U_n(x), Z_n(x))`` by minimising over simulated paths

    E | U_{n+1}(X_{n+1}) - U_n(X_n) + f(t_n, X_n, U_n(X_n), Z_n(X_n)) dt - Z_n(X_n) . dW_n |^2,

the Euler step of ``dY = -f dt + Z dW`` with the driver taken at the unknown ``U_n``: its
minimiser solves ``U_n - f(t_n, X_n, U_n, Z_n) dt = E[U_{n+1}(X_{n+1}) | X_n]`` with ``Z_n dt =
E[U_{n+1}(X_{n+1}) dW_n | X_n]``. At n = 0 (``X_0 = x0`` on every path) ``U_0`` and ``Z_0`` are two
parameters, and ``U_0`` is the price.

Where it differs from `kabuto.hedging.bsde.DeepBSDE` (Han, Jentzen and E's forward scheme): the
forward scheme carries ``Y`` along each path as ``y0`` plus the Ito sum of its learned Z, so
every path's ``Y_n`` holds the accumulated error of the discrete hedge, and the driver is
evaluated there. For a driver convex in y, such as the penalty of an American option
(`kabuto.hedging.bsde_problems.AmericanBasketPutProblem`), that noise biases the price (the
push of the penalty acts on paths that noise took below the exercise value). Here each step's
driver sees the fitted value ``U_n(X_n)`` of the state, a function of ``X_n`` alone, so the
scheme solves the penalised equation itself. The price of this is N trainings instead of one;
each starts from the weights of the step after it (the solution changes little in one step),
so after the first step a few hundred Adam steps suffice.

Implementation:

* Paths. `paths` paths are simulated once; every step trains on minibatches of them, the
  targets ``U_{n+1}(X_{n+1})`` computed once per step after step n+1 is trained.
* Scales. Step n's network sees ``(X_n - mean) / sd`` (over the paths) and outputs
  ``U = c + s o_0`` and ``Z = s / sqrt(t_{n+1} d) o_{1..d}``, with ``c, s`` the mean and
  standard deviation of its targets (as in `DeepBSDE`: Adam's steps then mean the same in any
  units).
  Its output layer starts at zero for the first step trained (``U = c``, ``Z = 0``).
* Schedule. Each step's learning rate falls from `learning_rate` to zero along a cosine.
"""

from __future__ import annotations

import itertools
import math
from typing import Self

import torch
from torch import Tensor, nn

from kabuto.errors import ConfigError
from kabuto.hedging.bsde import (
    DTYPES,
    BSDESolution,
    _center_and_scale,
    _sample_checked,
    _terminal_checked,
    check_loss_scale,
)
from kabuto.hedging.bsde_problems import BSDEProblem
from kabuto.settings import check_int, check_layer_sizes, check_positive
from kabuto.torch_settings import seeded_cpu_rng

__all__ = ["BackwardDeepBSDE", "StepValueNetwork"]

# Rows per block when a step's fitted values are computed on all paths.
_EVAL_BLOCK = 16_384


class StepValueNetwork(nn.Module):
    """``x -> (U(x), Z(x))`` of one time step, with fixed input and output scales (buffers).

    Parameters
    ----------
    dim : int
        d, the state's dimension.
    hidden_sizes : sequence of int
        Widths of the ReLU hidden layers.
    """

    def __init__(self, dim: int, hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        sizes = (dim, *hidden_sizes)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], 1 + dim))
        self.layers = nn.Sequential(*layers)
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("y_center", torch.zeros(()))
        self.register_buffer("y_scale", torch.ones(()))
        self.register_buffer("z_scale", torch.ones(()))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(U, Z)`` at states x: (M, d) -> (M,), (M, d)."""
        out = self.layers((x - self.shift) / self.scale)
        return self.y_center + self.y_scale * out[:, 0], self.z_scale * out[:, 1:]


class BackwardDeepBSDE(BSDESolution):
    """Backward deep BSDE solver (Huré, Pham and Warin 2020, DBDP1); see the module docstring.

    Parameters
    ----------
    paths : int, default 65,536
        Simulated paths, shared by all steps (memory: the paths and their increments,
        ``paths (2 N + 1) d`` numbers: 265 MB in float32 for N = 50, d = 10).
    batch_size : int, default 2048
        Paths per Adam step.
    first_iterations : int, default 1500
        Adam steps of the first step trained (n = N - 1, from scratch) and of n = 0.
    iterations : int, default 300
        Adam steps of every other step (each starts from the next step's weights).
    learning_rate : float, default 0.003
        Adam's initial step size at every step (falling to zero along a cosine).
    hidden_sizes : tuple of int, optional
        Hidden widths of each step's network; default ``(max(32, d + 10),) * 2``.
    seed : int, default 0
        Seeds the paths, the minibatches and the initial weights.
    dtype : {"float32", "float64"}, default "float32"
    device : {"cpu", "cuda", "auto"}, default "cpu"
    num_threads : int, optional
        Torch CPU threads while fitting (restored afterwards); None leaves torch's setting.

    Attributes
    ----------
    y0_ : float
        The learned ``u(0, x0)``.
    z0_ : Tensor
        The learned ``Z_0``, shape (d,).
    networks_ : nn.ModuleList
        `StepValueNetwork` of steps 1..N-1 (``networks_[n - 1]``; in eval mode).
    losses_ : list of float
        For n = 0..N-1, step n's loss (the mean squared residual of the last Adam step).
    problem_ : BSDEProblem
        The problem solved.
    """

    def __init__(
        self,
        paths: int = 65_536,
        batch_size: int = 2048,
        first_iterations: int = 1500,
        iterations: int = 300,
        learning_rate: float = 0.003,
        hidden_sizes: tuple[int, ...] | None = None,
        seed: int = 0,
        dtype: str = "float32",
        device: str = "cpu",
        num_threads: int | None = None,
    ) -> None:
        self.paths = paths
        self.batch_size = batch_size
        self.first_iterations = first_iterations
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.hidden_sizes = hidden_sizes
        self.seed = seed
        self.dtype = dtype
        self.device = device
        self.num_threads = num_threads
        self._validate()

    def _check_solver_settings(self, name: str) -> None:
        check_int(name, "paths", self.paths, 2)
        check_int(name, "batch_size", self.batch_size, 1)
        check_int(name, "first_iterations", self.first_iterations, 1)
        check_int(name, "iterations", self.iterations, 1)
        check_positive(name, "learning_rate", self.learning_rate)
        if self.hidden_sizes is not None:
            check_layer_sizes(name, "hidden_sizes", self.hidden_sizes)

    # ----------------------------------------------------------------- training

    def _fit(self, problem: BSDEProblem) -> Self:
        dtype, device = DTYPES[self.dtype], self._torch_device()
        owner = type(self).__name__
        generator = torch.Generator(device=device).manual_seed(self.seed)
        _terminal_checked(
            owner, problem, _sample_checked(owner, problem, generator, dtype, device)[0]
        )
        x, dw = problem.sample(self.paths, generator, dtype, device)
        d = problem.dim
        hidden = (max(32, d + 10),) * 2 if self.hidden_sizes is None else tuple(self.hidden_sizes)

        target = problem.terminal(x[:, -1])
        g_scale = _center_and_scale(target)[1]  # the size of u that every step's loss is held to
        networks: list[StepValueNetwork] = []
        losses: list[float] = []
        with seeded_cpu_rng(self.seed):
            for n in reversed(range(1, problem.n_steps)):
                network = StepValueNetwork(d, hidden).to(device=device, dtype=dtype)
                if networks:
                    network.load_state_dict(networks[-1].state_dict())
                else:
                    nn.init.zeros_(network.layers[-1].weight)
                    nn.init.zeros_(network.layers[-1].bias)
                sd, mean = torch.std_mean(x[:, n], dim=0)
                network.shift.copy_(mean)
                network.scale.copy_(sd.clamp(min=1e-6 * float(sd.mean()) + 1e-30))
                y_mean, y_sd = _center_and_scale(target)
                network.y_center.copy_(y_mean)
                network.y_scale.copy_(y_sd)
                network.z_scale.copy_(y_sd * _z_unit(problem, n))
                steps = self.iterations if networks else self.first_iterations
                losses.append(self._train(problem, n, network, x, dw, target, steps, generator))
                self._check_step(n, losses[-1], g_scale)
                network.eval()
                networks.append(network)
                with torch.no_grad():
                    target = torch.cat([network(b)[0] for b in x[:, n].split(_EVAL_BLOCK)])

        # Step 0: X_0 = x0 on every path, so U_0 and Z_0 are numbers.
        y_mean, y_sd = _center_and_scale(target)
        start = _Constant(d, y_mean, y_sd, y_sd * _z_unit(problem, 0)).to(
            device=device, dtype=dtype
        )
        losses.append(
            self._train(problem, 0, start, x, dw, target, self.first_iterations, generator)
        )
        self._check_step(0, losses[-1], g_scale)

        self.y0_ = float(start.y0.detach())
        self.z0_ = start.z0.detach()
        self.networks_ = nn.ModuleList(reversed(networks))
        self.losses_ = losses[::-1]
        self.problem_ = problem
        return self

    def _check_step(self, n: int, loss: float, g_scale: Tensor) -> None:
        """Raise a ConfigError if step n's training diverged: a non-finite loss, or one above
        ``DIVERGED_LOSS`` times the squared scale of the terminal condition g (the rule
        `DeepBSDE` holds its whole recursion to), rather than pass a wrong U_n to the steps
        before it."""
        name = f"{type(self).__name__}.fit"
        fix = f"lower learning_rate={self.learning_rate!r}"
        if not math.isfinite(loss):
            raise ConfigError(
                f"{name}: step {n}'s loss became {loss}: the training diverged; {fix}"
            )
        check_loss_scale(
            name,
            f"step {n}'s last loss is",
            loss,
            g_scale,
            f"its U_{n} misses its targets by far more than g varies",
            fix,
        )

    def _train(
        self,
        problem: BSDEProblem,
        n: int,
        network: nn.Module,
        x: Tensor,
        dw: Tensor,
        target: Tensor,
        steps: int,
        generator: torch.Generator,
    ) -> float:
        """Fit step n's ``(U_n, Z_n)`` to the targets ``U_{n+1}(X_{n+1})``; the last loss."""
        t, dt = problem.time(n), problem.dt
        optimizer = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        batch = min(self.batch_size, x.shape[0])
        network.train()
        for _ in range(steps):
            index = torch.randint(0, x.shape[0], (batch,), generator=generator, device=x.device)
            x_n = x[index, n]
            u, z = network(x_n)
            step = u - problem.driver(t, x_n, u, z) * dt + (z * dw[index, n]).sum(dim=-1)
            loss = (target[index] - step).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        return float(loss.detach())

    # ----------------------------------------------------------------- use

    def _like(self) -> Tensor:
        return self.z0_

    def value(self, n: int, x: Tensor) -> Tensor:
        """The fitted ``U_n`` (approximately ``u(t_n, x)``) at states x of step n = 0..N-1.

        Parameters
        ----------
        n : int
            The step; at n = 0 every state gets ``y0_``.
        x : Tensor
            States ``X_n``. Shape (M, d).

        Returns
        -------
        Tensor
            Shape (M,).
        """
        self._check_fitted("value")
        n = self._step("value", n)
        x = self._states("value", x, 2)
        if n == 0:
            return torch.full_like(x[:, 0], self.y0_)
        with torch.no_grad():
            return self.networks_[n - 1](x)[0]

    def z(self, n: int, x: Tensor) -> Tensor:
        """The fitted ``Z_n`` (approximately ``sigma^T grad u(t_n, x)``): (M, d) -> (M, d)."""
        self._check_fitted("z")
        n = self._step("z", n)
        x = self._states("z", x, 2)
        if n == 0:
            return self.z0_.expand_as(x).clone()
        with torch.no_grad():
            return self.networks_[n - 1](x)[1]


def _z_unit(problem: BSDEProblem, n: int) -> float:
    """Z's unit per unit of the targets' spread at step n: ``1 / sqrt(t_{n+1} d)``.

    The targets ``U_{n+1}(X_{n+1})`` spread like ``|Z| sqrt(t_{n+1})`` (X has diffused for
    ``t_{n+1}``), so Z is of the order of their standard deviation over ``sqrt(t_{n+1} d)`` per
    coordinate: in d = 10 with T = 1 and 50 steps, 2.2 times the targets' spread at the first
    step and a third of it at the last.
    """
    return 1.0 / math.sqrt(problem.time(n + 1) * problem.dim)


class _Constant(nn.Module):
    """Step 0's ``(U_0, Z_0)``: the same two parameters at every state (in units, as above)."""

    def __init__(self, dim: int, center: Tensor, y_scale: Tensor, z_scale: Tensor) -> None:
        super().__init__()
        self.y_unit = nn.Parameter(torch.zeros(()))
        self.z_unit = nn.Parameter(torch.zeros(dim))
        self.register_buffer("center", center.detach().clone())
        self.register_buffer("y_scale", y_scale.detach().clone())
        self.register_buffer("z_scale", z_scale.detach().clone())

    @property
    def y0(self) -> Tensor:
        return self.center + self.y_scale * self.y_unit

    @property
    def z0(self) -> Tensor:
        return self.z_scale * self.z_unit

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.y0.expand(x.shape[0]), self.z0.expand(x.shape[0], -1)
