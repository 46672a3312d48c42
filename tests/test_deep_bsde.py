"""Deep BSDE solver (Han, Jentzen and E 2018): problems, solver, references.

Small, fast versions of the checks; the paper's 100-dimensional runs are
benchmarks/bench_deep_bsde.py. References are independent of the solver: the Black-Scholes and
geometric-basket closed forms of `kabuto.hedging.closed_form`, the Cole-Hopf Monte Carlo of the
HJB equation (itself checked against chi-square quadrature), and a manufactured solution of an
Allen-Cahn-type equation. Every simulation is seeded.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import Tensor

from kabuto.errors import ConfigError, KabutoWarning
from kabuto.hedging import closed_form
from kabuto.hedging.bsde import DeepBSDE
from kabuto.hedging.bsde_problems import (
    AllenCahnProblem,
    AmericanBasketPutProblem,
    BrownianProblem,
    DefaultRiskProblem,
    GeometricBasketProblem,
    HJBProblem,
    hjb_reference,
)
from kabuto.hedging.kan import KAN
from kabuto.hedging.pnl import hedge_pnl

F64 = torch.float64
CALL = GeometricBasketProblem(dim=1, n_steps=10)  # S0 = K = 100, r = 5%, vol 20%, T = 1


def bsde(**settings: object) -> DeepBSDE:
    """A solver on one torch thread: tiny networks run far slower on threads that wait."""
    return DeepBSDE(num_threads=1, **settings)


@pytest.fixture(scope="module")
def call_solver() -> DeepBSDE:
    return bsde(iterations=600, seed=0).fit(CALL)


# ------------------------------------------------------------------------------ problems


@pytest.mark.parametrize(
    "problem",
    [HJBProblem(dim=3), AllenCahnProblem(dim=3), DefaultRiskProblem(dim=3), CALL],
    ids=lambda p: type(p).__name__,
)
def test_sample_shapes_start_and_increments(problem):
    generator = torch.Generator().manual_seed(0)
    x, dw = problem.sample(20_000, generator, F64)
    n, d = problem.n_steps, problem.dim
    assert x.shape == (20_000, n + 1, d) and dw.shape == (20_000, n, d)
    assert x.dtype == dw.dtype == F64
    torch.testing.assert_close(x[:, 0], problem.initial_state(F64).expand(20_000, d))
    # Brownian increments: mean 0, variance dt, independent across steps.
    assert abs(float(dw.mean())) < 4 * math.sqrt(problem.dt / dw.numel())
    assert float(dw.var()) == pytest.approx(problem.dt, rel=0.01)
    assert abs(float(torch.corrcoef(torch.stack([dw[:, 0, 0], dw[:, 1, 0]]))[0, 1])) < 0.03


def test_paths_are_driven_by_the_increments():
    generator = torch.Generator().manual_seed(1)
    brownian = HJBProblem(dim=2, n_steps=5, x0=(1.0, -2.0))
    x, dw = brownian.sample(10, generator, F64)
    torch.testing.assert_close(x[:, 1:] - x[:, :-1], math.sqrt(2) * dw)
    gbm = DefaultRiskProblem(dim=2, n_steps=5)
    x, dw = gbm.sample(10, generator, F64)
    log_step = (gbm.drift - 0.2**2 / 2) * gbm.dt + 0.2 * dw
    torch.testing.assert_close(torch.log(x[:, 1:] / x[:, :-1]), log_step)


def test_z_and_gradient_conversions_are_inverse():
    generator = torch.Generator().manual_seed(2)
    for problem in (
        HJBProblem(dim=4),
        GeometricBasketProblem(dim=4, volatility=(0.1, 0.2, 0.3, 0.4)),
    ):
        x, _ = problem.sample(8, generator, F64)
        gradient = torch.randn(8, 4, generator=generator, dtype=F64)
        z = problem.to_z(0.5, x[:, 3], gradient)
        torch.testing.assert_close(problem.to_gradient(0.5, x[:, 3], z), gradient)
    # sigma = diag(vol * x) for the geometric Brownian motions.
    x = torch.tensor([[100.0, 50.0, 20.0, 10.0]], dtype=F64)
    z = problem.to_z(0.0, x, torch.ones_like(x))
    torch.testing.assert_close(z, torch.tensor([[10.0, 10.0, 6.0, 4.0]], dtype=F64))


def test_drivers_and_terminals_match_the_paper():
    x = torch.tensor([[3.0, 4.0]], dtype=F64)
    y = torch.tensor([0.5], dtype=F64)
    z = torch.tensor([[1.0, 2.0]], dtype=F64)
    hjb = HJBProblem(dim=2, coupling=2.0)
    assert float(hjb.terminal(x)) == pytest.approx(math.log(13.0))
    assert float(hjb.driver(0.0, x, y, z)) == pytest.approx(-5.0)
    allen_cahn = AllenCahnProblem(dim=2)
    assert float(allen_cahn.terminal(x)) == pytest.approx(1 / 12)
    assert float(allen_cahn.driver(0.0, x, y, z)) == pytest.approx(0.375)
    risk = DefaultRiskProblem(dim=2)
    assert float(risk.terminal(x)) == 3.0
    values = torch.tensor([10.0, 50.0, 60.0, 70.0, 100.0], dtype=F64)
    torch.testing.assert_close(
        risk.intensity(values), torch.tensor([0.2, 0.2, 0.11, 0.02, 0.02], dtype=F64)
    )
    f = risk.driver(0.0, x.expand(5, 2), values, z.expand(5, 2))
    torch.testing.assert_close(f, -(1 / 3) * risk.intensity(values) * values - 0.02 * values)


def test_published_references_only_at_the_papers_parameters():
    assert HJBProblem().reference == 4.5901
    assert AllenCahnProblem().reference == 0.052802
    assert DefaultRiskProblem().reference == 57.300
    assert DefaultRiskProblem().n_steps == 40 and AllenCahnProblem().maturity == 0.3
    assert HJBProblem(dim=10).reference is None
    assert AllenCahnProblem(maturity=0.5).reference is None
    assert DefaultRiskProblem(recovery=0.5).reference is None


@pytest.mark.parametrize(
    "vector",
    [list, np.array, torch.tensor, lambda v: torch.tensor(v, dtype=F64)],
    ids=["list", "array", "tensor", "float64 tensor"],
)
def test_published_references_compare_vectors_by_value(vector):
    zeros, prices = [0.0] * 100, [100.0] * 100
    assert HJBProblem(x0=vector(zeros)).reference == 4.5901
    assert AllenCahnProblem(x0=vector(zeros)).reference == 0.052802
    assert DefaultRiskProblem(x0=vector(prices)).reference == 57.300
    assert HJBProblem(x0=vector([*zeros[:-1], 0.5])).reference is None
    assert AllenCahnProblem(x0=vector([*zeros[:-1], 0.5])).reference is None
    assert DefaultRiskProblem(x0=vector([*prices[:-1], 90.0])).reference is None


def test_default_risk_reference_with_vector_volatility_and_matrix_correlation():
    identity = np.eye(100)
    assert DefaultRiskProblem(volatility=np.full(100, 0.2), correlation=identity).reference == 57.3
    assert DefaultRiskProblem(correlation=torch.eye(100, dtype=F64)).reference == 57.3
    assert DefaultRiskProblem(volatility=[0.2] * 99 + [0.3]).reference is None
    assert DefaultRiskProblem(correlation=0.1).reference is None
    # A subclass is another problem, even at the same parameters.
    assert ManufacturedAllenCahn(dim=100, maturity=0.3).reference is None


def test_vector_parameters_are_stored_as_tuples_and_hash():
    from_list = HJBProblem(dim=3, x0=[0.0, 1.0, 2.0])
    from_array = HJBProblem(dim=3, x0=np.array([0.0, 1.0, 2.0]))
    assert from_list.x0 == from_array.x0 == (0.0, 1.0, 2.0)
    assert from_list == from_array and hash(from_list) == hash(from_array)
    assert hash(HJBProblem(dim=3, x0=torch.zeros(3))) == hash(HJBProblem(dim=3, x0=[0.0] * 3))
    # The problem keeps a copy: changing the caller's array afterwards changes nothing.
    x0 = np.zeros(3)
    problem = HJBProblem(dim=3, x0=x0)
    x0[0] = 5.0
    assert problem.x0 == (0.0, 0.0, 0.0)


def test_hjb_reference_matches_chi_square_quadrature():
    # At x = 0, |sqrt(2) W_T|^2 / (2 T) is chi-square with d degrees of freedom.
    exact_values = {}
    for d, coupling, maturity in ((100, 1.0, 1.0), (5, 2.0, 0.5)):
        problem = HJBProblem(dim=d, coupling=coupling, maturity=maturity)

        def integrand(s: float, coupling: float, maturity: float, d: int) -> float:
            g = math.log((1 + 2 * maturity * s) / 2)
            return math.exp(-coupling * g) * stats.chi2.pdf(s, d)

        expectation, _ = integrate.quad(
            integrand, 0, math.inf, args=(coupling, maturity, d), limit=200
        )
        exact = -math.log(expectation) / coupling
        exact_values[d] = exact
        estimate = hjb_reference(problem, n_samples=200_000, seed=3)
        assert estimate == pytest.approx(exact, abs=3e-3)
    # The paper's value is the exact one to its 5 digits.
    assert HJBProblem().reference == pytest.approx(exact_values[100], abs=1e-4)


def test_hjb_reference_at_a_large_coupling_warns_instead_of_failing_or_misleading():
    # at coupling 50 the chi-square quadrature gives 3.72418 and 2e5 draws about 4.16 (12%
    # high, 4 effective samples); at 200 every exp(-lambda g) underflowed: log(0) failed
    for coupling in (50.0, 200.0):
        with pytest.warns(KabutoWarning, match=r"rests on about \d+ effective samples"):
            estimate = hjb_reference(HJBProblem(coupling=coupling), n_samples=20_000, seed=0)
        assert math.isfinite(estimate)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KabutoWarning)
        hjb_reference(HJBProblem(coupling=1.0), n_samples=20_000, seed=0)


def test_hjb_reference_at_the_terminal_time_is_the_terminal_condition():
    problem = HJBProblem(dim=3, maturity=1.0)
    x = [0.5, -1.0, 2.0]
    near_end = hjb_reference(problem, x=x, t=1.0 - 1e-10, n_samples=1000)
    assert near_end == pytest.approx(float(problem.terminal(torch.tensor([x]))), abs=1e-6)


def test_geometric_basket_exact_solution_agrees_with_closed_form():
    problem = GeometricBasketProblem(dim=5, volatility=(0.1, 0.15, 0.2, 0.25, 0.3), x0=90.0)
    x0 = problem.initial_state(F64)[None]
    basket = closed_form.geometric_basket_price(
        [90.0] * 5, 100.0, 1.0, 0.05, [0.1, 0.15, 0.2, 0.25, 0.3], 0.0
    )
    assert float(problem.exact_value(0.0, x0)) == pytest.approx(float(basket), rel=1e-10)
    # The exact gradient is the derivative of the exact value (central differences).
    x = torch.tensor([[80.0, 95.0, 100.0, 110.0, 130.0]], dtype=F64)
    gradient = problem.exact_gradient(0.3, x)
    for i in range(5):
        step = torch.zeros_like(x)
        step[0, i] = 1e-4
        up, down = problem.exact_value(0.3, x + step), problem.exact_value(0.3, x - step)
        assert float(gradient[0, i]) == pytest.approx(float(up - down) / 2e-4, rel=1e-5)
    assert CALL.reference == pytest.approx(10.450583572185565, rel=1e-12)


def test_bad_problem_parameters_raise_config_error():
    with pytest.raises(ConfigError, match="dim=0"):
        HJBProblem(dim=0)
    with pytest.raises(ConfigError, match="maturity=-1"):
        AllenCahnProblem(maturity=-1.0)
    with pytest.raises(ConfigError, match="x0"):
        HJBProblem(dim=3, x0=(0.0, 1.0))
    with pytest.raises(ConfigError, match="x0"):
        DefaultRiskProblem(dim=2, x0=(-1.0, 100.0))
    with pytest.raises(ConfigError, match="volatility"):
        GeometricBasketProblem(dim=3, volatility=(0.2, 0.3))
    with pytest.raises(ConfigError, match="v_high=80"):
        DefaultRiskProblem(v_high=80.0)
    with pytest.raises(ConfigError, match="recovery"):
        DefaultRiskProblem(recovery=1.5)
    with pytest.raises(ConfigError, match="coupling"):
        HJBProblem(coupling=0.0)
    with pytest.raises(ConfigError, match="kind='straddle'"):
        GeometricBasketProblem(kind="straddle")
    with pytest.raises(ConfigError, match="problem="):
        hjb_reference(AllenCahnProblem())
    with pytest.raises(ConfigError, match=r"t=1\.0"):
        hjb_reference(HJBProblem(dim=2), t=1.0)
    with pytest.raises(ConfigError, match="x='ab'"):
        hjb_reference(HJBProblem(dim=2), x="ab")
    with pytest.raises(ConfigError, match=r"shape \(3,\)"):
        hjb_reference(HJBProblem(dim=2), x=[0.0, 1.0, 2.0])


def test_exact_solution_only_before_maturity():
    x = torch.full((2, 1), 100.0, dtype=F64)
    for t in (1.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ConfigError, match=rf"exact_value: t={t!r}"):
            CALL.exact_value(t, x)
        with pytest.raises(ConfigError, match=rf"exact_gradient: t={t!r}"):
            CALL.exact_gradient(t, x)
    assert CALL.exact_value(1.0 - 1e-9, x).shape == (2,)


# ------------------------------------------------------------------------------ solver: accuracy


def test_black_scholes_call_price_and_delta(call_solver):
    price = closed_form.black_scholes_price(100.0, 100.0, 1.0, 0.05, 0.2)
    assert call_solver.y0_ == pytest.approx(float(price), rel=0.01)
    # The learned gradient is the Black-Scholes delta along fresh paths.
    generator = torch.Generator().manual_seed(11)
    x, _ = CALL.sample(4000, generator)
    for n in (0, 3, 6, 9):
        delta = closed_form.black_scholes_delta(
            x[:, n, 0].double().numpy(), 100.0, 1.0 - CALL.time(n), 0.05, 0.2
        )
        learned = call_solver.gradient(n, x[:, n])[:, 0].double().numpy()
        assert np.abs(learned - delta).mean() < 0.04, n


def test_learned_deltas_hedge_the_call():
    # Zero rate: prices are martingales, so cash y0 plus the learned delta hedge replicates the
    # payoff up to the error of rebalancing 10 times, as the Black-Scholes delta hedge does.
    problem = GeometricBasketProblem(dim=1, n_steps=10, rate=0.0)
    solver = bsde(iterations=600, seed=1, shared=True, linear_skip=True).fit(problem)
    x, _ = problem.sample(20_000, torch.Generator().manual_seed(12), F64)
    payoff = problem.terminal(x[:, -1])
    pnl = solver.y0_ + hedge_pnl(x, solver.gradients(x), payoff)
    time_left = np.array([1.0 - problem.time(n) for n in range(10)])
    delta = closed_form.black_scholes_delta(x[:, :-1, 0].numpy(), 100.0, time_left, 0.0, 0.2)
    price = float(closed_form.black_scholes_price(100.0, 100.0, 1.0, 0.0, 0.2))
    delta_pnl = price + hedge_pnl(x, torch.as_tensor(delta)[..., None], payoff)
    assert abs(float(pnl.mean())) < 0.1
    assert float(pnl.std()) < 1.15 * float(delta_pnl.std()) < 0.2 * float(payoff.std())


def test_geometric_basket_price_in_five_dimensions():
    problem = GeometricBasketProblem(dim=5, n_steps=10, volatility=(0.1, 0.15, 0.2, 0.25, 0.3))
    solver = bsde(iterations=500, seed=0, shared=True, linear_skip=True).fit(problem)
    price = closed_form.geometric_basket_price(
        [100.0] * 5, 100.0, 1.0, 0.05, [0.1, 0.15, 0.2, 0.25, 0.3], 0.0
    )
    assert solver.y0_ == pytest.approx(float(price), rel=0.015)


def test_hjb_in_ten_dimensions_against_cole_hopf():
    problem = HJBProblem(dim=10, n_steps=10)
    reference = hjb_reference(problem, n_samples=200_000, seed=4)
    x, _ = problem.sample(200_000, torch.Generator().manual_seed(5), F64)
    terminal_mean = float(problem.terminal(x[:, -1]).mean())  # what Z = 0 would give
    solver = bsde(iterations=500, seed=0, shared=True, linear_skip=True).fit(problem)
    assert solver.y0_ == pytest.approx(reference, rel=0.025)
    # The learned Z carries most of the nonlinear correction u(0, 0) - E g(X_T).
    assert abs(solver.y0_ - reference) < 0.4 * abs(terminal_mean - reference)


@dataclass(frozen=True, kw_only=True)
class ManufacturedAllenCahn(BrownianProblem):
    """``du/dt + Δu + u - u^3 + s = 0`` with the solution ``u = a cos(w . x)``, ``|w| = 1``.

    Δu = -u, so the source is ``s = u^3``; the driver ``y - y^3 + s(x)`` is Allen-Cahn's plus it.
    """

    amplitude: float = 0.5

    def solution(self, x: Tensor) -> Tensor:
        return self.amplitude * torch.cos(x.sum(dim=-1) / math.sqrt(self.dim))

    def driver(self, t: float, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        return y - y**3 + self.solution(x) ** 3

    def terminal(self, x: Tensor) -> Tensor:
        return self.solution(x)


def test_allen_cahn_type_equation_with_a_known_solution():
    problem = ManufacturedAllenCahn(dim=4, maturity=0.5, n_steps=10, x0=0.3)
    exact = float(problem.solution(problem.initial_state(F64)))
    solver = bsde(iterations=500, seed=0, shared=True, linear_skip=True).fit(problem)
    assert solver.y0_ == pytest.approx(exact, rel=0.02)


# ------------------------------------------------------------------------------ solver: mechanics


def test_same_seed_same_solution_and_other_seed_differs():
    problem = AllenCahnProblem(dim=3, n_steps=5)
    first = bsde(iterations=30, seed=7).fit(problem)
    again = bsde(iterations=30, seed=7).fit(problem)
    other = bsde(iterations=30, seed=8).fit(problem)
    assert first.y0_ == again.y0_ and first.y0_history_ == again.y0_history_
    assert first.losses_ == again.losses_
    assert other.y0_ != first.y0_
    assert len(first.losses_) == len(first.y0_history_) == 30


def test_fit_leaves_global_random_state_and_threads_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    bsde(iterations=5, seed=0).fit(AllenCahnProblem(dim=2, n_steps=4))
    torch.testing.assert_close(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_float64_gives_float64_and_agrees_with_float32():
    solvers = {
        dtype: bsde(iterations=800, seed=3, dtype=dtype, shared=True, final_learning_rate=1e-4).fit(
            CALL
        )
        for dtype in ("float32", "float64")
    }
    assert all(p.dtype == F64 for p in solvers["float64"].networks_.parameters())
    assert all(p.dtype == torch.float32 for p in solvers["float32"].networks_.parameters())
    x = torch.full((5, 1), 100.0)
    assert solvers["float64"].z(4, x).dtype == F64
    # The two precisions draw different normals from the seed: they agree up to the noise.
    assert solvers["float64"].y0_ == pytest.approx(solvers["float32"].y0_, rel=0.01)
    price = float(closed_form.black_scholes_price(100.0, 100.0, 1.0, 0.05, 0.2))
    assert solvers["float64"].y0_ == pytest.approx(price, rel=0.015)


def test_z_and_gradients_shapes_and_consistency(call_solver):
    problem = HJBProblem(dim=3, n_steps=4)
    for shared in (False, True):
        solver = bsde(iterations=5, seed=0, shared=shared, linear_skip=True).fit(problem)
        x, _ = problem.sample(7, torch.Generator().manual_seed(0))
        all_steps = solver.gradients(x)
        assert all_steps.shape == (7, 4, 3)
        for n in range(4):
            z = solver.z(n, x[:, n])
            assert z.shape == (7, 3)
            torch.testing.assert_close(solver.gradient(n, x[:, n]), z / math.sqrt(2))
            torch.testing.assert_close(all_steps[:, n], solver.gradient(n, x[:, n]))
        torch.testing.assert_close(solver.z(0, x[:, 0]), solver.z0_.expand(7, 3))
    assert call_solver.z(9, torch.full((2, 1), 100.0)).shape == (2, 1)


def test_bad_settings_raise_config_error():
    cases = {
        "iterations": 0,
        "batch_size": 1,
        "learning_rate": -0.1,
        "final_learning_rate": float("nan"),
        "z_network": "cnn",
        "hidden_sizes": (0,),
        "batch_norm": "yes",
        "shared": 1,
        "kan_grid_size": 0,
        "kan_spline_order": -1,
        "seed": -1,
        "dtype": "float16",
        "device": "tpu",
        "num_threads": 0,
    }
    for setting, value in cases.items():
        with pytest.raises(ConfigError, match=f"DeepBSDE: {setting}="):
            DeepBSDE(**{setting: value})
    with pytest.raises(ConfigError, match=r"seed=18446744073709551616 .* \[0, 2\*\*64\)"):
        DeepBSDE(seed=2**64)  # torch's seeds are 64-bit
    # a final rate above the initial one would make the "decaying" rate grow; by default it
    # is a tenth of the initial one, so lowering learning_rate alone is allowed
    with pytest.raises(ConfigError, match=r"final_learning_rate=0\.01 is above learning_rate="):
        DeepBSDE(learning_rate=1e-4, final_learning_rate=0.01)
    DeepBSDE(learning_rate=1e-4)


def test_bad_problem_and_inputs_raise_config_error(call_solver):
    with pytest.raises(ConfigError, match="problem='hjb'"):
        bsde().fit("hjb")
    with pytest.raises(ConfigError, match="n_steps=1"):
        bsde(iterations=2).fit(HJBProblem(dim=2, n_steps=1))

    @dataclass(frozen=True, kw_only=True)
    class WrongShape(AllenCahnProblem):
        def terminal(self, x: Tensor) -> Tensor:
            return x  # (M, d) instead of (M,)

    with pytest.raises(ConfigError, match=r"WrongShape.terminal returned shape \(1024, 2\)"):
        bsde(iterations=2).fit(WrongShape(dim=2, n_steps=3))
    with pytest.raises(ConfigError, match="not fitted"):
        DeepBSDE().z(1, torch.zeros(2, 1))
    with pytest.raises(ConfigError, match="n=10"):
        call_solver.z(10, torch.zeros(2, 1))
    with pytest.raises(ConfigError, match=r"x has shape \(2, 3\)"):
        call_solver.gradient(1, torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="x has 5 dates"):
        call_solver.gradients(torch.ones(2, 5, 1))


def test_non_finite_states_raise_config_error(call_solver):
    x = torch.full((4, 1), 100.0)
    x[2, 0], x[3, 0] = float("nan"), float("inf")
    for owner in ("z", "gradient"):
        with pytest.raises(ConfigError, match=rf"DeepBSDE\.{owner}: x\[2\] holds NaN .* 2 such"):
            getattr(call_solver, owner)(3, x)
    paths = torch.full((3, 11, 1), 100.0)
    paths[1, 7, 0] = float("-inf")
    with pytest.raises(ConfigError, match=r"DeepBSDE\.gradients: x\[1\] holds NaN"):
        call_solver.gradients(paths)


def test_prices_at_or_below_zero_and_integer_states_raise_config_error(call_solver):
    # the gradient divides Z by volatility * x: inf at 0, a flipped sign below it
    for bad in (0.0, -100.0):
        x = torch.full((3, 1), 100.0)
        x[1, 0] = bad
        with pytest.raises(ConfigError, match=r"gradient: x\[1\] holds a price <= 0"):
            call_solver.gradient(2, x)
    with pytest.raises(ConfigError, match=r"x has dtype torch\.int64; use real floating"):
        call_solver.gradient(2, torch.full((3, 1), 100))


def test_sample_checks_its_arguments():
    problem = GeometricBasketProblem(dim=2, n_steps=3)
    for n_paths in (0, 2.5):
        with pytest.raises(ConfigError, match=f"sample: n_paths={n_paths}"):
            problem.sample(n_paths, torch.Generator())
    # None would draw from torch's global generator: unseeded
    with pytest.raises(ConfigError, match=r"sample: generator=None .* torch\.Generator"):
        problem.sample(3, None)
    # independent assets build no (d, d) matrix (a 10**7 one needs 728 TiB)
    assert GeometricBasketProblem(dim=10**7)._root_factor is None


def test_diverging_training_raises_config_error():
    # Without the cap, a penalty with lambda dt = 500 makes the Euler recursion explode wherever
    # Y falls below the exercise value: training keeps y0 near 64 for a put worth about 0.4,
    # with a loss 10^4 times the payoff's variance.
    market = {"dim": 2, "x0": 10.0, "strike": 10.0, "rate": 0.05}
    unstable = AmericanBasketPutProblem(**market, penalty=1e4, cap_penalty=False)
    with pytest.raises(ConfigError, match=r"y0=6\d\.\d+ is not a solution.*cap_penalty=True"):
        bsde(iterations=20).fit(unstable)
    with pytest.raises(ConfigError, match=r"loss became nan at iteration 2 of 10\b.*learning_rate"):
        bsde(iterations=10, learning_rate=1e30, final_learning_rate=1e30).fit(
            AllenCahnProblem(dim=2, n_steps=4)
        )
    # The same market with the capped push trains.
    capped = AmericanBasketPutProblem(**market, penalty=1e4)
    assert 0.3 < bsde(iterations=20).fit(capped).y0_ < 1.0


@pytest.mark.parametrize("z_network", ["mlp", "kan"])
def test_z_starts_at_zero(z_network):
    # One Adam step of size 1e-30 leaves every parameter where it started.
    tiny = {"learning_rate": 1e-30, "final_learning_rate": 1e-30}
    solver = bsde(iterations=1, z_network=z_network, shared=True, **tiny).fit(CALL)
    x, _ = CALL.sample(50, torch.Generator().manual_seed(3))
    assert float(solver.gradients(x).abs().max()) < 1e-20


def test_kan_initial_parameters_from_a_generator():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first, again, other = (
        KAN((3, 5, 2), generator=torch.Generator().manual_seed(seed)) for seed in (7, 7, 8)
    )
    torch.testing.assert_close(torch.rand(3), expected)  # the global generator is untouched
    for a, b, c in zip(first.parameters(), again.parameters(), other.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert torch.equal(a, c) == (a.std() == 0)  # only the constant spline scales agree
    with pytest.raises(ConfigError, match="generator=7"):
        KAN((3, 1), generator=7)


def test_kan_z_networks():
    solver = bsde(
        iterations=300, seed=0, z_network="kan", kan_grid_size=4, kan_spline_order=2, shared=True
    ).fit(CALL)
    kan = solver.networks_.body.networks[0]
    assert kan.grid_size == 4 and kan.spline_order == 2
    price = float(closed_form.black_scholes_price(100.0, 100.0, 1.0, 0.05, 0.2))
    assert solver.y0_ == pytest.approx(price, rel=0.02)
    assert solver.z(5, torch.full((3, 1), 100.0)).shape == (3, 1)
