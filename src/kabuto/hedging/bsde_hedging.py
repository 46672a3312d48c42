"""Deep BSDE deltas as hedgers, run through the P&L engine of deep hedging.

A fitted `kabuto.hedging.bsde.DeepBSDE` on a European basket option (`GeometricBasketProblem`,
`ArithmeticBasketProblem`) gives a price ``y0 = u(0, x0)`` and hedge ratios
``grad u(t_n, S_n)`` (`DeepBSDE.gradients`). Selling the option for y0 and holding
``grad u`` shares of each asset between the grid dates leaves, at maturity, the hedging error

    error = y0 + gains - costs - e^{-rT} g(S_T)          (per path, in money of time 0)

which is zero for a perfect hedge rebalanced continuously without costs. Its spread measures
the quality of the learned deltas on the same scale as the pricing error, and its tail
(`hedging_cvar`, the expected shortfall at 95% of the loss ``-error``) is what a hedger
risks. The exact delta hedge of the geometric basket (`exact_delta_hedge`, from
`GeometricBasketProblem.exact_gradient`) is the baseline on the same paths.

Discounting. The BSDE's u is the undiscounted price, with cash earning the rate r. A
self-financing portfolio holding ``delta_n`` shares and the rest in cash has discounted value
``y0 + sum_n delta_n (S~_{n+1} - S~_n)`` with the discounted prices ``S~_n = e^{-r t_n} S_n``,
and a proportional cost ``c |delta_n - delta_{n-1}| S_n`` paid at ``t_n`` is worth
``c |delta_n - delta_{n-1}| S~_n`` at time 0. So the P&L engine
`kabuto.hedging.pnl.HedgeResult.evaluate`, whose convention is a zero rate, is run on S~ and the
discounted payoff ``e^{-rT} g(S_T)``: gains, costs and payoff come out in money of time 0, as y0
is. The same holds for the positions of any other hedger on these paths.

Timing: positions are chosen at ``t_0..t_{N-1}`` from the prices then (the BSDE's grid), the
last holding is unwound at maturity (``unwind=True``, the engine's default) and the claim is
cash-settled. American problems are not hedged here: the holder's exercise would end the hedge
early, which the engine does not model.

Shapes, as in `kabuto.hedging.bsde_problems`: M paths, N steps (dates ``t_0..t_N``), d assets;
T is the maturity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from kabuto.errors import ConfigError
from kabuto.hedging.bsde import BSDESolution
from kabuto.hedging.bsde_problems import (
    AmericanBasketPutProblem,
    BasketOptionProblem,
    GeometricBasketProblem,
)
from kabuto.hedging.pnl import HedgeResult
from kabuto.hedging.risk import expected_shortfall
from kabuto.settings import check_int, check_seed

__all__ = [
    "BSDEHedgeResult",
    "bsde_delta_hedge",
    "delta_hedge",
    "exact_delta_hedge",
    "hedge_paths",
    "hedging_cvar",
]


@dataclass(frozen=True)
class BSDEHedgeResult:
    """A delta hedge of a European basket option with initial capital, in money of time 0.

    Attributes
    ----------
    hedge : HedgeResult
        The engine's result on the discounted prices and payoff: ``hedge.pnl`` is
        ``gains - costs - e^{-rT} g`` per path, ``hedge.positions`` the shares held, (M, N, d).
    initial_capital : float
        The price charged for the option, y0.
    """

    hedge: HedgeResult
    initial_capital: float

    @property
    def error(self) -> Tensor:
        """The hedging error ``y0 + gains - costs - e^{-rT} g`` per path. Shape: (M,)."""
        return self.initial_capital + self.hedge.pnl

    def cvar(self, level: float = 0.95) -> float:
        """`hedging_cvar` of this hedge."""
        return hedging_cvar(self, level)


def hedge_paths(
    problem: BasketOptionProblem,
    n_paths: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Fresh risk-neutral price paths of `problem` on its grid (``problem.sample``), seeded.

    Parameters
    ----------
    problem : BasketOptionProblem
    n_paths : int
        Number of paths (>= 1).
    seed : int, default 0
        Seed of a fresh torch generator; use one the solver did not train on.
    dtype : torch.dtype, default torch.float64

    Returns
    -------
    Tensor
        Prices ``S_0..S_N``. Shape: (M, N + 1, d) with M = n_paths.
    """
    owner = "hedge_paths"
    _check_problem(owner, problem)
    n_paths = check_int(owner, "n_paths", n_paths, 1)
    seed = check_seed(owner, "seed", seed)
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"{owner}: dtype={dtype!r} is not allowed; use torch.float32 or float64")
    generator = torch.Generator().manual_seed(seed)
    return problem.sample(n_paths, generator, dtype)[0]


def delta_hedge(
    problem: BasketOptionProblem,
    prices: Tensor,
    positions: Tensor,
    initial_capital: float,
    cost: float | Tensor = 0.0,
    unwind: bool = True,
) -> BSDEHedgeResult:
    """Hedge `problem`'s option with `positions` on `prices`, discounting at its rate.

    Parameters
    ----------
    problem : BasketOptionProblem
        A European basket option (not `AmericanBasketPutProblem`); gives the rate, the grid
        and the payoff.
    prices : Tensor
        Undiscounted prices at ``t_0..t_N`` of the problem's grid. Shape: (M, N + 1, d).
    positions : Tensor
        Shares held over ``[t_n, t_{n+1}]``, chosen at ``t_n``. Shape: (M, N, d).
    initial_capital : float
        y0, the price received for the option.
    cost : float or Tensor, default 0.0
        Proportional cost rate (or one per asset), as in `kabuto.hedging.pnl.hedge_pnl`.
    unwind : bool, default True
        Pay the cost of unwinding the last holding at maturity.

    Returns
    -------
    BSDEHedgeResult
        With the hedging error ``y0 + gains - costs - e^{-rT} g`` (see the module docstring).
    """
    owner = "delta_hedge"
    _check_problem(owner, problem)
    prices = _check_prices(owner, problem, prices)
    if (
        isinstance(initial_capital, bool)
        or not isinstance(initial_capital, int | float)
        or not math.isfinite(initial_capital)
    ):
        raise ConfigError(
            f"{owner}: initial_capital={initial_capital!r} is not allowed; use a finite number"
        )
    if isinstance(positions, Tensor) and positions.is_floating_point():
        if not bool(positions.isfinite().all()):  # NaN errors and CVaR, silently, otherwise
            raise ConfigError(
                f"{owner}: positions hold NaN or infinite holdings; give finite ones (a "
                "solver's deltas are NaN when its training diverged)"
            )
        positions = positions.to(dtype=prices.dtype, device=prices.device)
    times = torch.arange(problem.n_steps + 1, dtype=prices.dtype, device=prices.device)
    discount = torch.exp(-problem.rate * problem.dt * times)
    payoff = discount[-1] * problem.terminal(prices[:, -1])
    hedge = HedgeResult.evaluate(prices * discount[:, None], positions, payoff, cost, unwind)
    return BSDEHedgeResult(hedge, float(initial_capital))


def bsde_delta_hedge(
    solver: BSDESolution, prices: Tensor, cost: float | Tensor = 0.0, unwind: bool = True
) -> BSDEHedgeResult:
    """The delta hedge of a fitted BSDE solver: capital ``solver.y0_``, positions ``grad u``.

    Parameters
    ----------
    solver : BSDESolution
        A `DeepBSDE` or `BackwardDeepBSDE` fitted on a European basket option problem.
    prices : Tensor
        Undiscounted prices on the problem's grid, starting at its x0 (the solver's y0 and
        first delta are the option's there), e.g. from `hedge_paths` with a seed the solver
        did not train on. Shape: (M, N + 1, d).
    cost, unwind
        As in `delta_hedge`.

    Returns
    -------
    BSDEHedgeResult
    """
    owner = "bsde_delta_hedge"
    if not isinstance(solver, BSDESolution) or not hasattr(solver, "problem_"):
        raise ConfigError(
            f"{owner}: solver={solver!r} is not allowed; pass a fitted DeepBSDE or BackwardDeepBSDE"
        )
    problem = solver.problem_
    _check_problem(owner, problem)
    prices = _check_prices(owner, problem, prices)
    _check_start(owner, problem, prices)
    return delta_hedge(problem, prices, solver.gradients(prices), solver.y0_, cost, unwind)


def exact_delta_hedge(
    problem: GeometricBasketProblem,
    prices: Tensor,
    cost: float | Tensor = 0.0,
    unwind: bool = True,
) -> BSDEHedgeResult:
    """The exact delta hedge of a geometric basket option: the baseline of `bsde_delta_hedge`.

    Capital is the closed-form price ``problem.reference``; positions are
    ``problem.exact_gradient(t_n, S_n)``.

    Parameters
    ----------
    problem : GeometricBasketProblem
    prices : Tensor
        Undiscounted prices on the problem's grid, starting at its x0 (the closed-form price
        and delta are the option's there). Shape: (M, N + 1, d).
    cost, unwind
        As in `delta_hedge`.

    Returns
    -------
    BSDEHedgeResult
    """
    owner = "exact_delta_hedge"
    if not isinstance(problem, GeometricBasketProblem):
        raise ConfigError(
            f"{owner}: problem={problem!r} is not allowed; pass a GeometricBasketProblem (the "
            "one with an exact gradient)"
        )
    prices = _check_prices(owner, problem, prices)
    _check_start(owner, problem, prices)
    positions = torch.stack(
        [problem.exact_gradient(problem.time(n), prices[:, n]) for n in range(problem.n_steps)],
        dim=1,
    )
    return delta_hedge(problem, prices, positions, problem.reference, cost, unwind)


def hedging_cvar(result: BSDEHedgeResult, level: float = 0.95) -> float:
    """CVaR (expected shortfall) at `level` of the hedging loss ``-error``.

    The mean loss over the worst ``1 - level`` fraction of paths (`expected_shortfall` of the
    error): the capital a hedger needs on top of y0 in the bad cases. Larger is worse.

    Parameters
    ----------
    result : BSDEHedgeResult
    level : float, default 0.95

    Returns
    -------
    float
    """
    if not isinstance(result, BSDEHedgeResult):
        raise ConfigError(
            f"hedging_cvar: result={type(result).__name__} is not allowed; pass a "
            "BSDEHedgeResult (from delta_hedge, bsde_delta_hedge or exact_delta_hedge)"
        )
    return float(expected_shortfall(result.error, level))


def _check_problem(owner: str, problem: object) -> None:
    if not isinstance(problem, BasketOptionProblem) or isinstance(
        problem, AmericanBasketPutProblem
    ):
        raise ConfigError(
            f"{owner}: problem={type(problem).__name__} is not allowed; use a European basket "
            "option (GeometricBasketProblem or ArithmeticBasketProblem); early exercise is not "
            "modelled"
        )


def _check_prices(owner: str, problem: BasketOptionProblem, prices: object) -> Tensor:
    dates, d = problem.n_steps + 1, problem.dim
    if not isinstance(prices, Tensor) or prices.ndim != 3 or prices.shape[1:] != (dates, d):
        shape = tuple(prices.shape) if isinstance(prices, Tensor) else type(prices).__name__
        raise ConfigError(
            f"{owner}: prices has shape {shape}; use a floating-point tensor of shape "
            f"(n_paths, {dates}, {d}): the problem's N + 1 = {dates} dates and d = {d} assets"
        )
    if not prices.is_floating_point():
        raise ConfigError(
            f"{owner}: prices has dtype {prices.dtype}; use a floating-point tensor "
            "(e.g. prices.double())"
        )
    # As `DeepHedger.fit` checks its prices (`kabuto.hedging.hedger`), for (M, N + 1, d).
    bad = ~((prices > 0) & prices.isfinite())
    if bool(bad.any()):
        path, date, asset = (int(i) for i in bad.nonzero()[0])
        raise ConfigError(
            f"{owner}: prices[{path}, {date}, {asset}] = {float(prices[path, date, asset])!r}; "
            "prices must be finite and positive"
        )
    return prices


def _check_start(owner: str, problem: BasketOptionProblem, prices: Tensor) -> None:
    """The capital and the first delta are the option's at x0: paths from elsewhere would be
    hedged with the wrong ones, and their error read as the solver's."""
    start = problem.initial_state(prices.dtype, prices.device)
    off = ~torch.isclose(prices[:, 0], start.expand_as(prices[:, 0]), rtol=1e-5, atol=0.0)
    if bool(off.any()):
        path, asset = (int(i) for i in off.nonzero()[0])
        raise ConfigError(
            f"{owner}: prices[{path}, 0, {asset}] = {float(prices[path, 0, asset])!r}, but the "
            f"problem starts at x0 = {float(start[asset])!r}; simulate the paths from the "
            "problem (hedge_paths) or set its x0 to their start"
        )
