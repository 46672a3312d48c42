"""Reference computations shared by the deep BSDE tests (importable: conftest puts tests/ on the
path)."""

from __future__ import annotations

import math

import numpy as np
import torch

from kabuto.hedging.bsde_problems import AmericanBasketPutProblem


def penalised_recursion(problem: AmericanBasketPutProblem, points: int = 1201) -> float:
    """``Y_0`` of the Euler scheme of `problem` (d = 1) solved exactly, date by date.

    ``(1 + r dt) Y_n - dt push(Y_n) = E[Y_{n+1} | X_n]`` with ``push = f + r y`` from
    ``problem.driver``: the conditional expectation by quadrature of the exact GBM step on a
    grid of log-prices, the scalar equation (increasing in Y_n) by bisection.
    """
    r, dt, vol = problem.rate, problem.dt, problem.volatility
    spread = 6 * vol * math.sqrt(problem.maturity)
    log_x = math.log(problem.x0) + np.linspace(-spread, spread, points)
    x = torch.tensor(np.exp(log_x), dtype=torch.float64)[:, None]
    # A fine even rule for the normal step: Gauss-Hermite converges slowly on the payoff's kink.
    nodes = np.linspace(-7.0, 7.0, 801)
    weights = np.exp(-(nodes**2) / 2)
    weights /= weights.sum()
    zero = torch.zeros_like(x)
    value = problem.terminal(x).numpy()
    for n in reversed(range(problem.n_steps)):
        moved = log_x[:, None] + (r - vol**2 / 2) * dt + vol * math.sqrt(dt) * nodes
        expected = torch.tensor(np.interp(moved, log_x, value) @ weights, dtype=torch.float64)
        low, high = expected / (1 + r * dt) - 1.0, expected / (1 + r * dt) + problem.strike
        for _ in range(80):
            middle = (low + high) / 2
            residual = middle - dt * problem.driver(problem.time(n), x, middle, zero) - expected
            low, high = (
                torch.where(residual < 0, middle, low),
                torch.where(residual < 0, high, middle),
            )
        value = ((low + high) / 2).numpy()
    return float(np.interp(math.log(problem.x0), log_x, value))
