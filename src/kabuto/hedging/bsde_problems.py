"""Forward-backward SDEs solved by `kabuto.hedging.bsde.DeepBSDE`, and reference problems.

A semilinear parabolic PDE on ``[0, T] x R^d``::

    du/dt + mu(t, x) . grad u + Tr(sigma sigma^T(t, x) Hess u) / 2 + f(t, x, u, sigma^T grad u) = 0,
    u(T, x) = g(x),

is, along the forward diffusion ``dX = mu(t, X) dt + sigma(t, X) dW`` from ``X_0 = x0``, the
backward SDE of ``Y_t = u(t, X_t)`` and ``Z_t = sigma^T(t, X_t) grad u(t, X_t)``::

    dY = -f(t, X, Y, Z) dt + Z . dW,    Y_T = g(X_T)

(Han, Jentzen and E 2018, "Solving high-dimensional partial differential equations using deep
learning", PNAS 115(34), eqs. 1-5). A `BSDEProblem` describes one such pair on N equal steps of
``dt = T / N``: how to sample the forward process and its Brownian increments, how to turn a
gradient into Z and back, the driver f and the terminal condition g. Every method is a
vectorised torch expression over M paths.

Reference problems (the paper's three 100-dimensional examples, with its parameters as
defaults, and a linear one with a closed form):

* `HJBProblem`: the Hamilton-Jacobi-Bellman equation of linear-quadratic-Gaussian control,
  ``X = sqrt(2) W``, ``f = -lambda |z|^2 / 2``, ``g(x) = ln((1 + |x|^2) / 2)``; the Cole-Hopf
  transform gives ``u(t, x) = -ln E exp(-lambda g(x + sqrt(2) W_{T-t})) / lambda``, which
  `hjb_reference` estimates by Monte Carlo. The paper's u(0, 0) = 4.5901 (d = 100, lambda = 1).
* `AllenCahnProblem`: ``X = sqrt(2) W``, ``f = y - y^3``, ``g(x) = 1 / (2 + 0.4 |x|^2)``,
  T = 0.3; the paper's u(0, 0) = 0.052802 (d = 100, computed there by the branching diffusion
  method).
* `DefaultRiskProblem`: Black-Scholes with default risk (Duffie, Schroder and Skiadas 1996;
  Bender, Schweizer and Zhuo 2017), geometric Brownian motions with drift 0.02 and volatility
  0.2 from 100, ``g = min_i x_i``, ``f = -(1 - delta) Q(y) y - R y``; the paper's
  u(0, x0) = 57.300 (d = 100, computed there by multilevel Picard iteration).
* `GeometricBasketProblem`: a European call or put on the geometric mean of d risk-neutral
  geometric Brownian motions (independent or correlated), ``f = -r y`` (linear): the
  Black-Scholes price (`kabuto.hedging.closed_form`), exact at every (t, x) together with its
  gradient. In the KANHedge setting (`KANHEDGE_SETTING`: d = 10, S0 = K = 10, volatility 0.1,
  pairwise correlation 0.3, r = 1%, T = 1) the call is worth 0.27659.
* `ArithmeticBasketProblem`: the same on the arithmetic mean, with no closed form; the
  reference is control-variate Monte Carlo (`kabuto.hedging.basket`).
* `AmericanBasketPutProblem`: an American (Bermudan) put on the arithmetic mean by the penalty
  method, ``f = -r y + lambda (g(x) - y)^+``; the reference is Longstaff-Schwartz
  (`kabuto.hedging.american`). Its docstring gives the bias of the penalty.

Shapes: ``x`` is (M, d), ``y`` (M,), ``z`` (M, d); `sample` returns ``X`` of shape (M, N + 1, d)
and ``dW`` of shape (M, N, d). Times ``t`` are floats.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from kabuto.errors import ConfigError, KabutoWarning
from kabuto.hedging.american import LSMResult, basket_longstaff_schwartz
from kabuto.hedging.basket import BasketMCResult, arithmetic_basket_price
from kabuto.hedging.closed_form import (
    _correlation_matrix,
    black_scholes_delta,
    black_scholes_price,
    geometric_basket_price,
)
from kabuto.settings import (
    check_bool,
    check_choice,
    check_int,
    check_non_negative,
    check_positive,
    check_seed,
    is_real,
)
from kabuto.sim.paths import gbm_paths

__all__ = [
    "KANHEDGE_SETTING",
    "AllenCahnProblem",
    "AmericanBasketPutProblem",
    "ArithmeticBasketProblem",
    "BSDEProblem",
    "BasketOptionProblem",
    "BrownianProblem",
    "DefaultRiskProblem",
    "GBMProblem",
    "GeometricBasketProblem",
    "HJBProblem",
    "hjb_reference",
]

Vector = float | Sequence[float]

# Published solutions u(0, x0) of the paper's three examples at their default parameters.
HJB_REFERENCE = 4.5901
ALLEN_CAHN_REFERENCE = 0.052802
DEFAULT_RISK_REFERENCE = 57.300

# The basket-option market of Handal and Hirano (2026), "KANHedge" (arXiv 2601.11097): ten
# assets from 10 with volatility 0.1 and pairwise correlation 0.3, r = 1%, at-the-money strike,
# one year. Pass it to any `BasketOptionProblem`, e.g. GeometricBasketProblem(**KANHEDGE_SETTING).
KANHEDGE_SETTING = {
    "dim": 10,
    "x0": 10.0,
    "strike": 10.0,
    "volatility": 0.1,
    "correlation": 0.3,
    "rate": 0.01,
    "maturity": 1.0,
}


@dataclass(frozen=True, kw_only=True)
class BSDEProblem(ABC):
    """A forward-backward SDE on ``[0, maturity]`` with `n_steps` equal steps in `dim` dimensions.

    Subclasses give the forward process (`sample`, `to_z`, `to_gradient`), the driver and the
    terminal condition. See the module docstring for the equations and shapes.

    Parameters
    ----------
    dim : int
        Dimension d of the state (>= 1).
    maturity : float
        Horizon T (> 0).
    n_steps : int
        Number N of time steps (>= 1), ``dt = maturity / n_steps``.
    x0 : float or sequence of float
        The starting point ``X_0`` (a number is the same in every coordinate). A sequence,
        array or tensor is stored as a tuple of floats, so that problems hash and compare as
        values.
    """

    dim: int = 100
    maturity: float = 1.0
    n_steps: int = 20
    x0: Vector = 0.0

    def __post_init__(self) -> None:
        name = type(self).__name__
        check_int(name, "dim", self.dim, 1)
        check_positive(name, "maturity", self.maturity)
        check_int(name, "n_steps", self.n_steps, 1)
        self._store("x0", _check_vector(name, "x0", self.x0, self.dim, positive=False))

    def _store(self, name: str, value: object) -> None:
        """Set a field of the frozen problem to its checked, normalised value."""
        object.__setattr__(self, name, value)

    def _is_default(self, cls: type[BSDEProblem]) -> bool:
        """Whether this problem is ``cls()``: that class itself, every parameter at its default.

        Vectors compare by value once broadcast to d coordinates (``x0=[0.0] * 100`` is
        ``x0=0.0``), which the dataclass ``==`` of the fields does not do.
        """
        if type(self) is not cls:
            return False
        default = cls()
        return all(
            np.array_equal(self._compared(f.name), default._compared(f.name))
            for f in dataclasses.fields(self)
            if f.compare
        )

    def _compared(self, name: str) -> object:
        """Field `name` as `_is_default` compares it: vectors broadcast to (d,)."""
        value = getattr(self, name)
        return _broadcast(value, self.dim) if name == "x0" else value

    @property
    def dt(self) -> float:
        """The step ``maturity / n_steps``."""
        return self.maturity / self.n_steps

    def time(self, n: int) -> float:
        """The time ``t_n = n dt`` of step n."""
        return n * self.dt

    @abstractmethod
    def sample(
        self,
        n_paths: int,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> tuple[Tensor, Tensor]:
        """Forward paths and their Brownian increments.

        Parameters
        ----------
        n_paths : int
            Number M of paths.
        generator : torch.Generator
            Source of randomness, on `device` (its state advances).
        dtype, device
            Of the returned tensors.

        Returns
        -------
        x : Tensor
            ``X_0, ..., X_N`` (``X_0 = x0`` on every path). Shape (M, N + 1, d).
        dw : Tensor
            ``dW_n = W_{t_{n+1}} - W_{t_n}``. Shape (M, N, d).
        """

    @abstractmethod
    def to_z(self, t: float, x: Tensor, gradient: Tensor) -> Tensor:
        """``Z = sigma^T(t, x) grad u``: (M, d), (M, d) -> (M, d)."""

    @abstractmethod
    def to_gradient(self, t: float, x: Tensor, z: Tensor) -> Tensor:
        """``grad u = sigma^T(t, x)^{-1} Z``, the inverse of `to_z`: (M, d), (M, d) -> (M, d)."""

    @abstractmethod
    def driver(self, t: float, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """The driver ``f(t, x, y, z)``: (M, d), (M,), (M, d) -> (M,)."""

    @abstractmethod
    def terminal(self, x: Tensor) -> Tensor:
        """The terminal condition ``g(x)``: (M, d) -> (M,)."""

    @property
    def reference(self) -> float | None:
        """A trusted value of ``u(0, x0)`` where one is known (else None)."""
        return None

    def initial_state(
        self, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
    ) -> Tensor:
        """``x0`` as a tensor of shape (d,)."""
        x0 = torch.as_tensor(self.x0, dtype=dtype, device=device)
        return x0.expand(self.dim).clone()

    def brownian_increments(
        self,
        n_paths: int,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        """Independent increments ``dW`` over the N steps. Shape: (n_paths, N, d)."""
        owner = f"{type(self).__name__}.sample"
        check_int(owner, "n_paths", n_paths, 1)
        if not isinstance(generator, torch.Generator):
            # torch would draw from its global generator instead: unseeded
            raise ConfigError(
                f"{owner}: generator={generator!r} is not allowed; pass a torch.Generator "
                "(e.g. torch.Generator().manual_seed(0))"
            )
        shape = (n_paths, self.n_steps, self.dim)
        return torch.randn(shape, generator=generator, dtype=dtype, device=device) * math.sqrt(
            self.dt
        )


def _check_vector(
    owner: str, name: str, value: object, dim: int, positive: bool
) -> float | tuple[float, ...]:
    """A finite number (> 0 if `positive`) or a sequence of `dim` of them, else ConfigError.

    Returns it as a float or a tuple of floats: hashable, and a copy, so that changing the
    caller's array afterwards does not change the problem.
    """
    rule = "> 0" if positive else "finite"
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if (
        array is None
        or isinstance(value, bool)
        or array.ndim > 1
        or (array.ndim == 1 and array.shape[0] != dim)
        or not np.isfinite(array).all()
        or (positive and not (array > 0).all())
    ):
        raise ConfigError(
            f"{owner}: {name}={value!r} is not allowed; use a number ({rule}) or a sequence of "
            f"dim={dim} of them"
        )
    return _frozen(array)


def _frozen(value: object) -> float | tuple:
    """A checked number, vector or matrix as a float or (nested) tuples of floats."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return float(array)
    rows = array.tolist()
    return tuple(rows) if array.ndim == 1 else tuple(map(tuple, rows))


def _broadcast(value: Vector, dim: int) -> NDArray[np.float64]:
    """A number or a sequence of `dim` numbers as an array of shape (dim,)."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (dim,))


def _time_before_maturity(owner: str, t: object, maturity: float) -> float:
    """The time t as a float if ``0 <= t < maturity``, else a ConfigError naming t."""
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0 <= t < maturity:
        raise ConfigError(
            f"{owner}: t={t!r} is not allowed; use a time in [0, maturity) = [0, {maturity}) "
            "(at maturity the value is the terminal condition)"
        )
    return float(t)


def _check_finite(owner: str, name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise ConfigError(f"{owner}: {name}={value!r} is not allowed; use a finite number")


@dataclass(frozen=True, kw_only=True)
class BrownianProblem(BSDEProblem):
    """A BSDE along the scaled Brownian motion ``X_t = x0 + sqrt(2) W_t`` (so the PDE has Δu).

    Parameters
    ----------
    dim, maturity, n_steps, x0
        As in `BSDEProblem`.
    """

    sigma = math.sqrt(2.0)

    def sample(
        self,
        n_paths: int,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> tuple[Tensor, Tensor]:
        dw = self.brownian_increments(n_paths, generator, dtype, device)
        x0 = self.initial_state(dtype, device)
        x = torch.cat([torch.zeros_like(dw[:, :1]), self.sigma * dw.cumsum(dim=1)], dim=1)
        return x + x0, dw

    def to_z(self, t: float, x: Tensor, gradient: Tensor) -> Tensor:
        return self.sigma * gradient

    def to_gradient(self, t: float, x: Tensor, z: Tensor) -> Tensor:
        return z / self.sigma


@dataclass(frozen=True, kw_only=True)
class GBMProblem(BSDEProblem):
    """A BSDE along geometric Brownian motions, independent or correlated, stepped exactly.

    ``dX_i = drift X_i dt + volatility_i X_i dB_i`` with ``d<B_i, B_j> = rho_ij dt``. The BSDE's
    Brownian motion W has independent coordinates and ``B = L W`` with ``L L^T = rho`` (the
    Cholesky factor), so ``sigma(x) = diag(volatility * x) L`` and ``Z = L^T (volatility * x *
    grad u)``; with the default ``correlation=0.0``, ``L = I``. Subclasses provide ``drift``
    (a float attribute).

    Parameters
    ----------
    x0 : float or sequence of float, default 100.0
        Initial prices (> 0).
    volatility : float or sequence of float, default 0.2
        Volatilities (> 0, so that Z determines the gradient).
    correlation : float or (d, d) nested sequence of float, default 0.0
        One correlation for every pair of assets, or a correlation matrix; it must be positive
        definite (for a common rho, ``-1 / (d - 1) < rho < 1``), again so that Z determines the
        gradient.
    dim, maturity, n_steps
        As in `BSDEProblem`.

    Vectors and matrices are stored as (nested) tuples of floats, as `BSDEProblem` stores x0.
    """

    x0: Vector = 100.0
    volatility: Vector = 0.2
    correlation: float | Sequence[Sequence[float]] = 0.0
    # The Cholesky factor L of the correlation (None for independent assets), computed once:
    # checking the correlation and factorising it took most of the time of `sample` at d = 100.
    _root_factor: NDArray[np.float64] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        self._store("x0", _check_vector(name, "x0", self.x0, self.dim, positive=True))
        self._store(
            "volatility",
            _check_vector(name, "volatility", self.volatility, self.dim, positive=True),
        )
        self._store("_root_factor", self._correlation_root())
        self._store("correlation", _frozen(self.correlation))

    def _compared(self, name: str) -> object:
        if name == "volatility":
            return _broadcast(self.volatility, self.dim)
        if name == "correlation":
            return self.correlation_matrix()  # a number is a matrix with ones on the diagonal
        return super()._compared(name)

    def correlation_matrix(self) -> NDArray[np.float64]:
        """The (d, d) correlation matrix ``rho`` of the assets' Brownian motions."""
        if isinstance(self.correlation, bool):
            raise ConfigError(
                f"{type(self).__name__}: correlation={self.correlation!r} is not allowed; use a "
                "number or a (d, d) correlation matrix"
            )
        return _correlation_matrix(type(self).__name__, self.correlation, self.dim)

    def _correlation_root(self) -> NDArray[np.float64] | None:
        """The Cholesky factor L of the correlation matrix, or None for independent assets."""
        if is_real(self.correlation) and self.correlation == 0:
            return None  # without building the (d, d) identity
        rho = self.correlation_matrix()
        if np.array_equal(rho, np.eye(self.dim)):
            return None
        try:
            return np.linalg.cholesky(rho)
        except np.linalg.LinAlgError:
            raise ConfigError(
                f"{type(self).__name__}: correlation={self.correlation!r} is singular; use a "
                "positive definite correlation (Z determines the gradient only then)"
            ) from None

    def _root(self, like: Tensor) -> Tensor | None:
        root = self._root_factor
        return None if root is None else torch.as_tensor(root, dtype=like.dtype, device=like.device)

    def _volatility(self, like: Tensor) -> Tensor:
        vol = torch.as_tensor(self.volatility, dtype=like.dtype, device=like.device)
        return vol.expand(self.dim)

    def sample(
        self,
        n_paths: int,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> tuple[Tensor, Tensor]:
        dw = self.brownian_increments(n_paths, generator, dtype, device)
        root = self._root(dw)
        shocks = dw if root is None else dw @ root.T  # dB = L dW
        vol = self._volatility(dw)
        log_steps = (self.drift - vol**2 / 2) * self.dt + vol * shocks
        log_x = torch.cat([torch.zeros_like(dw[:, :1]), log_steps.cumsum(dim=1)], dim=1)
        return self.initial_state(dtype, device) * log_x.exp(), dw

    def to_z(self, t: float, x: Tensor, gradient: Tensor) -> Tensor:
        z = self._volatility(x) * x * gradient
        root = self._root(x)
        return z if root is None else z @ root

    def to_gradient(self, t: float, x: Tensor, z: Tensor) -> Tensor:
        root = self._root(x)
        if root is not None:
            # Row vectors: solve v L = z for v = volatility * x * grad u.
            z = torch.linalg.solve_triangular(root, z, upper=False, left=False)
        return z / (self._volatility(x) * x)


# -------------------------------------------------------------------------------- HJB


@dataclass(frozen=True, kw_only=True)
class HJBProblem(BrownianProblem):
    """Hamilton-Jacobi-Bellman equation of linear-quadratic-Gaussian control (paper, sec. HJB).

    ``du/dt + Δu - lambda |grad u|^2 = 0``, ``u(T, x) = ln((1 + |x|^2) / 2)``: the value of
    steering ``dX = 2 m dt + sqrt(2) dW`` at running cost ``|m|^2`` and final cost g. With
    ``Z = sqrt(2) grad u`` the driver is ``f = -lambda |z|^2 / 2``.

    Parameters
    ----------
    coupling : float, default 1.0
        lambda > 0, the strength of the control.
    dim, maturity, n_steps, x0
        Defaults d = 100, T = 1, N = 20, x0 = 0 (the paper's).
    """

    coupling: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(type(self).__name__, "coupling", self.coupling)

    def driver(self, t: float, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        return -self.coupling / 2 * z.square().sum(dim=-1)

    def terminal(self, x: Tensor) -> Tensor:
        return torch.log((1 + x.square().sum(dim=-1)) / 2)

    @property
    def reference(self) -> float | None:
        """The paper's 4.5901 at its parameters (else None; see `hjb_reference`)."""
        return HJB_REFERENCE if self._is_default(HJBProblem) else None


#: Fewer effective samples (sum w)^2 / sum w^2 of the weights w = exp(-lambda g) than this (or
#: than half the samples) make `hjb_reference` warn: at coupling 50 (d = 100) 2e5 draws give
#: about 4 and an estimate 12% above the exact value.
HJB_MIN_EFFECTIVE_SAMPLES = 1000


def hjb_reference(
    problem: HJBProblem,
    x: Sequence[float] | Tensor | None = None,
    t: float = 0.0,
    n_samples: int = 1_000_000,
    seed: int = 0,
) -> float:
    """Monte Carlo of the Cole-Hopf solution of `HJBProblem`, independent of any BSDE.

    ``u(t, x) = -ln E[exp(-lambda g(x + sqrt(2) W_{T-t}))] / lambda``, estimated in float64
    from `n_samples` normal draws (in blocks, so memory stays small).

    Parameters
    ----------
    problem : HJBProblem
    x : sequence of float or Tensor, optional
        The state, shape (d,); default the problem's ``x0``.
    t : float, default 0.0
        The time, in ``[0, maturity)``.
    n_samples : int, default 1,000,000
    seed : int, default 0

    Returns
    -------
    float
        The estimate of ``u(t, x)``.

    Warns
    -----
    KabutoWarning
        When few draws carry the estimate (`HJB_MIN_EFFECTIVE_SAMPLES`): at a large coupling
        it is then biased upwards.
    """
    owner = "hjb_reference"
    if not isinstance(problem, HJBProblem):
        raise ConfigError(f"{owner}: problem={problem!r} is not allowed; pass an HJBProblem")
    n_samples = check_int(owner, "n_samples", n_samples, 1)
    seed = check_seed(owner, "seed", seed)
    t = _time_before_maturity(owner, t, problem.maturity)
    state = problem.initial_state(torch.float64) if x is None else _hjb_state(owner, x, problem.dim)
    generator = torch.Generator().manual_seed(seed)
    scale = math.sqrt(2.0 * (problem.maturity - t))
    lam = problem.coupling
    block = max(1, 2**20 // problem.dim)
    # log mean exp(-lambda g), summed relative to the largest term so far (a running
    # logsumexp: at a large coupling every term would underflow), with the sum of squares
    # for the effective sample size
    top, total, squares = -math.inf, 0.0, 0.0
    for start in range(0, n_samples, block):
        size = min(block, n_samples - start)
        w = torch.randn((size, problem.dim), generator=generator, dtype=torch.float64)
        y = -lam * problem.terminal(state + scale * w)
        new_top = max(top, float(y.max()))
        rescale = math.exp(top - new_top)
        terms = torch.exp(y - new_top)
        total = total * rescale + float(terms.sum())
        squares = squares * rescale**2 + float(terms.square().sum())
        top = new_top
    effective = total**2 / squares
    if effective < min(HJB_MIN_EFFECTIVE_SAMPLES, n_samples / 2):
        warnings.warn(
            f"{owner}: the estimate rests on about {effective:.0f} effective samples of "
            f"{n_samples:,} (exp(-lambda g) with lambda = {lam:g} is dominated by a few draws), "
            "so it is biased upwards; use more n_samples, or a smaller coupling",
            KabutoWarning,
            stacklevel=2,
        )
    return -(top + math.log(total / n_samples)) / lam


def _hjb_state(owner: str, x: object, dim: int) -> Tensor:
    """The state `x` of `hjb_reference` as a float64 tensor of shape (d,), else a ConfigError."""
    try:
        state = torch.as_tensor(x, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):
        state = None
    if state is None or state.shape != (dim,) or not bool(state.isfinite().all()):
        shape = "no numbers" if state is None else f"shape {tuple(state.shape)}"
        raise ConfigError(
            f"{owner}: x={x!r} ({shape}) is not allowed; use d={dim} finite numbers, a sequence "
            "or a tensor of shape (d,)"
        )
    return state


# -------------------------------------------------------------------------------- Allen-Cahn


@dataclass(frozen=True, kw_only=True)
class AllenCahnProblem(BrownianProblem):
    """Allen-Cahn equation ``du/dt + Δu + u - u^3 = 0``, ``u(T, x) = 1 / (2 + 0.4 |x|^2)``.

    The paper's reaction-diffusion example: ``f = y - y^3`` along ``X = sqrt(2) W``.

    Parameters
    ----------
    dim, maturity, n_steps, x0
        Defaults d = 100, T = 0.3, N = 20, x0 = 0 (the paper's).
    """

    maturity: float = 0.3

    def driver(self, t: float, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        return y - y**3

    def terminal(self, x: Tensor) -> Tensor:
        return 1 / (2 + 0.4 * x.square().sum(dim=-1))

    @property
    def reference(self) -> float | None:
        """The paper's 0.052802 at its parameters (else None)."""
        return ALLEN_CAHN_REFERENCE if self._is_default(AllenCahnProblem) else None


# -------------------------------------------------------------------------------- default risk


@dataclass(frozen=True, kw_only=True)
class DefaultRiskProblem(GBMProblem):
    """Black-Scholes price of ``min_i X_i`` for an issuer that may default (paper's first example).

    The claim pays ``g(x) = min_i x_i`` unless the issuer defaults first; default arrives with
    intensity ``Q(u)``, then only ``delta`` of the value is recovered, and cash earns ``rate``.
    Then ``f(t, x, y, z) = -(1 - delta) Q(y) y - rate y``, with ``Q`` piecewise linear:
    ``gamma_high`` below ``v_high``, ``gamma_low`` above ``v_low``, linear in between.

    Parameters
    ----------
    drift : float, default 0.02
        The drift mu-bar of every asset.
    recovery : float, default 2/3
        delta in [0, 1], the fraction recovered at default.
    rate : float, default 0.02
        R, the interest rate.
    gamma_high, gamma_low : float, default 0.2, 0.02
        Default intensities (>= 0) for low and high values.
    v_high, v_low : float, default 50.0, 70.0
        The value thresholds, ``v_high < v_low``.
    dim, maturity, n_steps, x0, volatility
        Defaults d = 100, T = 1, N = 40, x0 = 100, volatility 0.2 (the paper's).
    """

    n_steps: int = 40
    drift: float = 0.02
    recovery: float = 2 / 3
    rate: float = 0.02
    gamma_high: float = 0.2
    gamma_low: float = 0.02
    v_high: float = 50.0
    v_low: float = 70.0

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for field in ("drift", "rate", "v_high", "v_low"):
            _check_finite(name, field, getattr(self, field))
        for field in ("gamma_high", "gamma_low"):
            check_non_negative(name, field, getattr(self, field))
        if check_non_negative(name, "recovery", self.recovery) > 1:
            raise ConfigError(f"{name}: recovery={self.recovery!r}; use a number in [0, 1]")
        if not self.v_high < self.v_low:
            raise ConfigError(f"{name}: v_high={self.v_high!r} must be below v_low={self.v_low!r}")

    def intensity(self, y: Tensor) -> Tensor:
        """The default intensity ``Q(y)`` (piecewise linear, continuous): (M,) -> (M,)."""
        share = ((y - self.v_high) / (self.v_low - self.v_high)).clamp(0.0, 1.0)
        return self.gamma_high + (self.gamma_low - self.gamma_high) * share

    def driver(self, t: float, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        return -(1 - self.recovery) * self.intensity(y) * y - self.rate * y

    def terminal(self, x: Tensor) -> Tensor:
        return x.amin(dim=-1)

    @property
    def reference(self) -> float | None:
        """The paper's 57.300 at its parameters (else None)."""
        return DEFAULT_RISK_REFERENCE if self._is_default(DefaultRiskProblem) else None


# -------------------------------------------------------------------------------- basket options


@dataclass(frozen=True, kw_only=True)
class BasketOptionProblem(GBMProblem):
    """An option on a basket of d risk-neutral geometric Brownian motions (a base class).

    The assets drift at the interest rate (``drift = rate``, the risk-neutral measure) and may be
    correlated (`GBMProblem`); the claim pays ``max(sign (B(X_T) - K), 0)`` on the basket B of a
    subclass (`basket`), and the driver of the European price is ``f = -rate y``. Y is the
    undiscounted price: ``u(t, x)`` in money of time t.

    Parameters
    ----------
    strike : float, default 100.0
        K > 0.
    rate : float, default 0.05
        r, the interest rate (and the assets' drift).
    kind : {"call", "put"}, default "call"
    dim, maturity, n_steps, x0, volatility, correlation
        As in `GBMProblem`; default d = 1.
    """

    dim: int = 1
    strike: float = 100.0
    rate: float = 0.05
    kind: str = "call"

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_positive(name, "strike", self.strike)
        _check_finite(name, "rate", self.rate)
        check_choice(name, "kind", self.kind, ("call", "put"))

    @property
    def drift(self) -> float:  # type: ignore[override]
        """The risk-neutral drift: the rate."""
        return self.rate

    @abstractmethod
    def basket(self, x: Tensor) -> Tensor:
        """The basket value ``B(x)``: (M, d) -> (M,)."""

    def payoff(self, x: Tensor) -> Tensor:
        """The exercise value ``max(sign (B(x) - K), 0)``: (M, d) -> (M,)."""
        sign = 1.0 if self.kind == "call" else -1.0
        return (sign * (self.basket(x) - self.strike)).clamp(min=0.0)

    def driver(self, t: float, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        return -self.rate * y

    def terminal(self, x: Tensor) -> Tensor:
        return self.payoff(x)


@dataclass(frozen=True, kw_only=True)
class GeometricBasketProblem(BasketOptionProblem):
    """European option on ``G = (prod_i X_i)^(1/d)`` under Black-Scholes: a linear BSDE.

    Risk-neutral GBMs (drift = `rate`, correlated or not), ``f = -rate y``, ``g = max(G - K, 0)``
    (call) or ``max(K - G, 0)`` (put). In d = 1 this is the Black-Scholes call or put.

    ``ln G`` is normal, so G is a GBM with volatility ``s = sqrt(vol^T rho vol) / d`` and
    dividend yield ``q = mean(vol^2) / 2 - s^2 / 2``, and ``u(t, x) = BS(G(x), K, T - t, r, s, q)``
    (`exact_value`), ``d u / d x_i = BS_delta G / (d x_i)`` (`exact_gradient`).

    Parameters
    ----------
    strike, rate, kind
        As in `BasketOptionProblem`: defaults K = 100, r = 0.05, a call.
    dim, maturity, n_steps, x0, volatility, correlation
        Defaults d = 1, T = 1, N = 20, x0 = 100, volatility 0.2, independent assets.
    """

    def basket(self, x: Tensor) -> Tensor:
        return x.log().mean(dim=-1).exp()

    def _basket_volatility(self) -> tuple[float, float]:
        """Volatility s and dividend yield q of the geometric mean G."""
        vol = _broadcast(self.volatility, self.dim)
        s = float(np.sqrt(max(vol @ self.correlation_matrix() @ vol, 0.0))) / self.dim
        return s, float((vol**2).mean()) / 2 - s**2 / 2

    def exact_value(self, t: float, x: Tensor) -> Tensor:
        """``u(t, x)``, the Black-Scholes price of the option at time ``0 <= t < T``:
        (M, d) -> (M,)."""
        owner = f"{type(self).__name__}.exact_value"
        t = _time_before_maturity(owner, t, self.maturity)
        x = self._checked_states(owner, x)
        s, q = self._basket_volatility()
        basket = self.basket(x).detach().cpu().double().numpy()
        price = black_scholes_price(
            basket, self.strike, self.maturity - t, self.rate, s, self.kind, q
        )
        return torch.as_tensor(np.asarray(price), dtype=x.dtype, device=x.device)

    def exact_gradient(self, t: float, x: Tensor) -> Tensor:
        """``grad u(t, x)`` at time ``0 <= t < T``: (M, d) -> (M, d)."""
        owner = f"{type(self).__name__}.exact_gradient"
        t = _time_before_maturity(owner, t, self.maturity)
        x = self._checked_states(owner, x)
        s, q = self._basket_volatility()
        basket = self.basket(x)
        delta = black_scholes_delta(
            basket.detach().cpu().double().numpy(),
            self.strike,
            self.maturity - t,
            self.rate,
            s,
            self.kind,
            q,
        )
        delta = torch.as_tensor(np.asarray(delta), dtype=x.dtype, device=x.device)
        return (delta * basket)[:, None] / (self.dim * x)

    def _checked_states(self, owner: str, x: object) -> Tensor:
        """`x` if it is a float tensor of positive prices of shape (M, d), else a ConfigError."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise ConfigError(f"{owner}: x must be a float tensor of shape (M, {self.dim})")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ConfigError(
                f"{owner}: x has shape {tuple(x.shape)}; it must be (M, {self.dim}), a row of "
                f"{self.dim} prices per state"
            )
        if not bool((x > 0).all()) or not bool(x.isfinite().all()):
            raise ConfigError(f"{owner}: x must hold finite prices above 0")
        return x

    @property
    def reference(self) -> float:
        """The closed-form price at ``(0, x0)`` (`geometric_basket_price`, or Black-Scholes)."""
        spot = _broadcast(self.x0, self.dim)
        vol = _broadcast(self.volatility, self.dim)
        if self.dim == 1:
            price = black_scholes_price(
                spot[0], self.strike, self.maturity, self.rate, vol[0], self.kind
            )
        else:
            price = geometric_basket_price(
                spot,
                self.strike,
                self.maturity,
                self.rate,
                vol,
                self.correlation_matrix(),
                kind=self.kind,
            )
        return float(price)


@dataclass(frozen=True, kw_only=True)
class ArithmeticBasketProblem(BasketOptionProblem):
    """European option on the arithmetic mean ``A = mean_i X_i``: a linear BSDE, no closed form.

    As `GeometricBasketProblem` with ``g = max(A - K, 0)`` (call) or ``max(K - A, 0)`` (put). The
    reference is Monte Carlo with the geometric basket as control variate (`monte_carlo_price`,
    `kabuto.hedging.basket.arithmetic_basket_price`): in the KANHedge setting
    (`KANHEDGE_SETTING`) the call is worth 0.29451 +- 0.00002 (10^6 paths).

    Parameters
    ----------
    strike, rate, kind
        As in `BasketOptionProblem`: defaults K = 100, r = 0.05, a call.
    dim, maturity, n_steps, x0, volatility, correlation
        As in `GBMProblem`; default d = 1.
    """

    def basket(self, x: Tensor) -> Tensor:
        return x.mean(dim=-1)

    def monte_carlo_price(self, n_paths: int = 1_000_000, seed: int = 0) -> BasketMCResult:
        """``u(0, x0)`` by control-variate Monte Carlo (`arithmetic_basket_price`), independent
        of any BSDE.

        Parameters
        ----------
        n_paths : int, default 1,000,000
        seed : int, default 0

        Returns
        -------
        BasketMCResult
            The price and its standard error.
        """
        return arithmetic_basket_price(
            self.x0,
            self.strike,
            self.maturity,
            self.rate,
            self.volatility,
            self.correlation_matrix(),
            kind=self.kind,
            n_paths=n_paths,
            seed=seed,
        )


@dataclass(frozen=True, kw_only=True)
class AmericanBasketPutProblem(BasketOptionProblem):
    """American (Bermudan) put on the arithmetic mean ``A = mean_i X_i``, by the penalty method.

    The American price ``u`` is the smallest supersolution of the Black-Scholes equation above
    the exercise value ``g(x) = max(K - A(x), 0)``: a reflected BSDE, ``Y >= g(X)``, pushed up by
    an increasing process where it touches g. The penalty method (El Karoui, Kapoudjian, Pardoux,
    Peng and Quenez 1997, "Reflected solutions of backward SDE's, and related obstacle problems
    for PDE's", Ann. Probab. 25(2), sec. 6) replaces the push by the driver

        f(t, x, y, z) = -rate y + min(penalty (g(x) - y)^+, cap),   cap = r^+ K (1 + r dt),

    an ordinary semilinear BSDE that `DeepBSDE` solves, with g also the terminal condition. The
    sign: `DeepBSDE` writes ``dY = -f dt + Z dW`` (so that ``f = -r y`` is Black-Scholes), and
    ``+lambda (g - y)^+`` lifts the price where it is below g (backwards in time; forwards, the
    recursion pushes Y down there). ``-lambda (g - y)^+`` would push it below the European price.

    The cap never binds at the scheme's solution (below), so it does not change the price; it
    keeps the forward recursion of `DeepBSDE` trainable: without it an error of ``Y_n`` below g
    grows by ``1 + lambda dt`` per step, and training diverges (NaN at lambda = 100 in the
    KANHedge setting, ``cap_penalty=False``; `DeepBSDE.fit` then raises a ConfigError). With
    ``r <= 0`` the cap is 0: early exercise of a put on assets without dividends is then never
    worth anything.

    Bias of the penalty. On the solver's grid the Euler step ``E[Y_{n+1} | X_n] = (1 + r dt) Y_n
    - dt min(lambda (g - Y_n)^+, cap)`` (increasing in Y_n) has the unique solution

        Y_n = C_n + theta (g(X_n) - C_n)^+,   C_n = E[Y_{n+1} | X_n] / (1 + r dt),
        theta = lambda dt / (1 + r dt + lambda dt),

    the Bermudan recursion ``max(g, C_n)`` (exercise at the grid dates) with only the fraction
    theta < 1 of the early-exercise gain ``(g - C_n)^+`` kept: the penalised price lies below
    the Bermudan one and rises to it as ``lambda dt`` grows, the lost premium shrinking like
    ``1 / (1 + lambda dt)`` (by induction over the dates), and the Bermudan price lies below the
    American one and rises to it as dt shrinks. Deep in the exercise region ``g - C_n`` is about
    ``r K dt`` (holding loses the interest on the strike), and ``Y_n`` stays below g by at most
    ``r K dt (1 + r dt) / (lambda dt)``: the push ``lambda (g - Y_n)`` stays below the cap. As
    dt -> 0 at fixed lambda the scheme tends to the continuous penalised equation, below the
    American price by O(1 / lambda) (``u = g - r K / lambda`` where exercise is optimal). In the
    KANHedge setting (N = 50, lambda = 100) the scheme, solved exactly on a one-dimensional
    proxy, is 0.1% below the Bermudan price.

    Bias of the deep BSDE. `DeepBSDE` does not find the scheme's solution: its forward
    recursion carries the hedging error of the discrete Z (the loss, 0.002 here, is not zero),
    and where that error takes Y below g the push lowers Y further, while Y above g is not
    lifted. Training then charges the premium on too many paths: the learned y0 overstates the
    early-exercise premium about twice in the KANHedge setting (0.214 on three seeds, against
    0.2036 for Longstaff-Schwartz and 0.1950 for the European put; likewise on a
    one-dimensional proxy against a binomial tree's 0.2038: 0.214 with N = 50, 0.211 with
    N = 200), whatever lambda from 10 to 1000. The price is an upper estimate, off by about
    the premium (benchmarks/bsde_options.py). The backward solver
    `kabuto.hedging.bsde_backward.BackwardDeepBSDE` evaluates the driver at a fitted function
    of the state instead, and solves the scheme: 0.2044, 0.2040 and 0.2044 on three seeds
    (+0.2% to +0.4% against Longstaff-Schwartz, the premium 1.05-1.10 times Longstaff-Schwartz's).

    The reference is Longstaff-Schwartz on the same grid (`longstaff_schwartz_price`): in the
    KANHedge setting (`KANHEDGE_SETTING`, 50 exercise dates) about 0.2031-0.2041 +- 0.0005.

    Parameters
    ----------
    penalty : float, default 100.0
        lambda > 0.
    cap_penalty : bool, default True
        Cap the push at ``r^+ K (1 + r dt)`` (see above); False gives the plain penalty.
    strike, rate
        As in `BasketOptionProblem`: defaults K = 100, r = 0.05.
    kind : {"put"}, default "put"
        Only a put: an American call on assets without dividends is never exercised early
        (use `ArithmeticBasketProblem`).
    dim, maturity, n_steps, x0, volatility, correlation
        As in `GBMProblem`; default d = 1. The exercise dates are the grid dates; t_0 matters
        only for an option in the money today.
    """

    kind: str = "put"
    penalty: float = 100.0
    cap_penalty: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_positive(name, "penalty", self.penalty)
        check_bool(name, "cap_penalty", self.cap_penalty)
        if self.kind != "put":
            raise ConfigError(
                f"{name}: kind={self.kind!r} is not allowed; use 'put' (an American call on "
                "assets without dividends is a European call: use ArithmeticBasketProblem)"
            )

    def basket(self, x: Tensor) -> Tensor:
        return x.mean(dim=-1)

    def driver(self, t: float, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        push = self.penalty * (self.payoff(x) - y).clamp(min=0.0)
        if self.cap_penalty:
            push = push.clamp(max=self.push_cap)
        return -self.rate * y + push

    @property
    def push_cap(self) -> float:
        """The cap ``r^+ K (1 + r dt)`` on the penalty's push (see the class docstring)."""
        return max(self.rate, 0.0) * self.strike * (1 + self.rate * self.dt)

    def longstaff_schwartz_price(
        self, n_paths: int = 100_000, seed: int = 0, degree: int = 3
    ) -> LSMResult:
        """The Bermudan price on the problem's grid by Longstaff-Schwartz, independent of any
        BSDE.

        Paths come from `kabuto.sim.paths.gbm_paths` (float64), the regression is that of
        `kabuto.hedging.american.basket_longstaff_schwartz`; memory is about
        ``n_paths (N + 1) d`` doubles (400 MB for 10^5 paths, N = 50, d = 10).

        Parameters
        ----------
        n_paths : int, default 100,000
        seed : int, default 0
        degree : int, default 3
            Degree of the Laguerre polynomials of the basket.

        Returns
        -------
        LSMResult
        """
        n_paths = check_int(type(self).__name__, "n_paths", n_paths, 2)
        paths = gbm_paths(
            n_paths,
            self.n_steps,
            self.maturity,
            _broadcast(self.x0, self.dim).copy(),
            self.rate,
            _broadcast(self.volatility, self.dim).copy(),
            self.correlation_matrix(),
            seed=seed,
            dtype=torch.float64,
        )
        return basket_longstaff_schwartz(
            paths.numpy(), self.strike, self.rate, self.maturity, "put", degree=degree
        )

    def european_price(self, n_paths: int = 1_000_000, seed: int = 0) -> BasketMCResult:
        """The European put (no early exercise) by control-variate Monte Carlo: a lower bound."""
        return ArithmeticBasketProblem(
            dim=self.dim,
            maturity=self.maturity,
            n_steps=self.n_steps,
            x0=self.x0,
            volatility=self.volatility,
            correlation=self.correlation,
            strike=self.strike,
            rate=self.rate,
            kind="put",
        ).monte_carlo_price(n_paths, seed)
