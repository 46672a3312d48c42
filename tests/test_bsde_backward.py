"""The backward deep BSDE solver (Huré, Pham and Warin 2020) against closed forms, the exact
solution of the penalised scheme of an American put, and Longstaff-Schwartz.

Small, fast versions (d = 1-3, 10 steps, few paths, one torch thread); the KANHedge setting
(d = 10, 50 steps) runs in benchmarks/bsde_options.py.
"""

from __future__ import annotations

import pytest
import torch
from bsde_helpers import penalised_recursion

from kabuto.errors import ConfigError
from kabuto.hedging.bsde import DeepBSDE
from kabuto.hedging.bsde_backward import BackwardDeepBSDE
from kabuto.hedging.bsde_hedging import bsde_delta_hedge, hedge_paths
from kabuto.hedging.bsde_problems import AmericanBasketPutProblem, GeometricBasketProblem

F64 = torch.float64
FAST = {"paths": 8192, "batch_size": 512, "first_iterations": 600, "iterations": 150}


def solver(**settings: object) -> BackwardDeepBSDE:
    return BackwardDeepBSDE(num_threads=1, **(FAST | settings))


@pytest.fixture(scope="module")
def geometric_put() -> tuple[GeometricBasketProblem, BackwardDeepBSDE]:
    market = {"dim": 3, "x0": 10.0, "strike": 10.0, "volatility": 0.2, "correlation": 0.3}
    problem = GeometricBasketProblem(**market, rate=0.05, kind="put", n_steps=10)
    return problem, solver(seed=0).fit(problem)


def test_geometric_basket_put_price_value_and_gradient(geometric_put):
    problem, fitted = geometric_put
    assert fitted.y0_ == pytest.approx(problem.reference, rel=0.01)
    x, _ = problem.sample(2000, torch.Generator().manual_seed(9))
    n = 5
    states = x[:, n]
    exact_value = problem.exact_value(problem.time(n), states.double())
    value = fitted.value(n, states)
    assert value.shape == (2000,)
    error = (value.double() - exact_value).abs().mean() / exact_value.mean()
    assert error < 0.03
    # Z turns into grad u: close to the exact deltas (3-8% relative L2 error on seeds 0-2,
    # where the deltas' mean alone is off by about 30%), and varying with the state as they do.
    exact = problem.exact_gradient(problem.time(n), states.double())
    learned = fitted.gradient(n, states).double()
    assert float((learned - exact).norm() / exact.norm()) < 0.1
    assert float((exact.mean(dim=0) - exact).norm() / exact.norm()) > 0.2
    centred = torch.nn.functional.cosine_similarity(
        (learned - learned.mean(dim=0)).flatten(), (exact - exact.mean(dim=0)).flatten(), dim=0
    )
    assert centred > 0.98
    assert fitted.gradient(0, states[:3]).shape == (3, 3)
    assert len(fitted.losses_) == problem.n_steps and len(fitted.networks_) == problem.n_steps - 1


def test_its_deltas_hedge_through_the_pnl_engine(geometric_put):
    problem, fitted = geometric_put
    paths = hedge_paths(problem, 4000, seed=5)
    result = bsde_delta_hedge(fitted, paths)
    # The hedge is self-financing around the learned price: a mean error near zero and a spread
    # far below that of the unhedged payoff.
    unhedged = torch.exp(torch.tensor(-problem.rate)) * problem.terminal(paths[:, -1])
    assert abs(float(result.error.mean())) < 0.02
    assert float(result.error.std()) < 0.3 * float(unhedged.std())


def test_american_put_solves_the_penalised_scheme_in_one_dimension():
    market = {"dim": 1, "x0": 10.0, "strike": 10.0, "volatility": 0.2, "rate": 0.06}
    problem = AmericanBasketPutProblem(**market, n_steps=10, penalty=100.0)
    exact = penalised_recursion(problem)
    european = AmericanBasketPutProblem(**market, n_steps=10, penalty=1e-9)
    premium = exact - penalised_recursion(european)
    assert premium > 0.03
    fitted = solver(seed=1).fit(problem)
    # Within a tenth of the early-exercise premium (the forward DeepBSDE overstates it about
    # twice: see AmericanBasketPutProblem).
    assert fitted.y0_ == pytest.approx(exact, abs=0.1 * premium)


def test_american_basket_put_against_longstaff_schwartz():
    market = {"dim": 3, "x0": 10.0, "strike": 10.5, "volatility": 0.15, "correlation": 0.3}
    problem = AmericanBasketPutProblem(**market, rate=0.03, n_steps=10, penalty=100.0)
    bermudan = problem.longstaff_schwartz_price(n_paths=50_000, seed=2)
    european = problem.european_price(n_paths=200_000, seed=1).price
    premium = bermudan.price - european
    assert premium > 0.03
    # The penalised scheme lies about 1 / (1 + lambda dt) = 9% of the premium below the
    # Bermudan price (AmericanBasketPutProblem), inside the tolerance below.
    backward = solver(seed=0).fit(problem)
    forward = DeepBSDE(
        iterations=400, batch_size=128, seed=0, shared=True, linear_skip=True, num_threads=1
    ).fit(problem)
    assert backward.y0_ == pytest.approx(bermudan.price, abs=0.15 * premium)
    assert abs(backward.y0_ - bermudan.price) < abs(forward.y0_ - bermudan.price)


def test_same_seed_same_solution_and_bad_settings():
    problem = GeometricBasketProblem(dim=2, x0=10.0, strike=10.0, volatility=0.2, n_steps=3)
    small = {"paths": 256, "batch_size": 64, "first_iterations": 20, "iterations": 5}
    a = solver(**small, seed=4).fit(problem)
    b = solver(**small, seed=4).fit(problem)
    assert a.y0_ == b.y0_
    torch.testing.assert_close(a.z0_, b.z0_)
    with pytest.raises(ConfigError, match="paths=1"):
        BackwardDeepBSDE(paths=1)
    with pytest.raises(ConfigError, match="dtype"):
        BackwardDeepBSDE(dtype="float16")
    with pytest.raises(ConfigError, match="not fitted"):
        BackwardDeepBSDE().value(1, torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="n=7"):
        a.value(7, torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="shape"):
        a.z(1, torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="BSDEProblem"):
        BackwardDeepBSDE().fit("problem")
