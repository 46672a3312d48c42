"""Basket options as deep BSDE problems, and deep BSDE deltas as hedgers.

Small, fast versions (d = 3-4, 10-20 steps, a few hundred iterations, one torch thread); the
KANHedge setting (d = 10) runs in benchmarks/bsde_options.py. References are independent of the
solver: the moments of correlated log-returns, the geometric-basket closed form, control-variate
Monte Carlo of the arithmetic basket, Longstaff-Schwartz, a binomial tree for the penalised
scheme of the American put (solved on a grid in one dimension, without networks), and
invariants of delta hedging (an exact delta hedge has mean error zero and a spread that falls
like 1/sqrt(N)).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from bsde_helpers import penalised_recursion

from kabuto.errors import ConfigError
from kabuto.hedging import closed_form
from kabuto.hedging.bsde import DeepBSDE
from kabuto.hedging.bsde_hedging import (
    BSDEHedgeResult,
    bsde_delta_hedge,
    delta_hedge,
    exact_delta_hedge,
    hedge_paths,
    hedging_cvar,
)
from kabuto.hedging.bsde_problems import (
    KANHEDGE_SETTING,
    AmericanBasketPutProblem,
    ArithmeticBasketProblem,
    GeometricBasketProblem,
)
from kabuto.hedging.risk import expected_shortfall

F64 = torch.float64
VOLS = (0.15, 0.2, 0.25)
RHO = ((1.0, 0.5, 0.2), (0.5, 1.0, -0.3), (0.2, -0.3, 1.0))
# A small market with correlated assets and a rate large enough to make discounting visible.
SMALL = {"dim": 4, "x0": 10.0, "strike": 10.0, "volatility": 0.2, "correlation": 0.3, "rate": 0.05}


def bsde(**settings: object) -> DeepBSDE:
    """A solver on one torch thread, with the shared network and linear skip (see DeepBSDE)."""
    return DeepBSDE(num_threads=1, shared=True, linear_skip=True, **settings)


@pytest.fixture(scope="module")
def geometric_call() -> tuple[GeometricBasketProblem, DeepBSDE]:
    problem = GeometricBasketProblem(**SMALL, n_steps=10)
    return problem, bsde(iterations=400, batch_size=128, seed=0).fit(problem)


# ------------------------------------------------------------------------------ problems


def test_correlated_paths_have_the_right_log_return_moments():
    problem = GeometricBasketProblem(dim=3, n_steps=4, volatility=VOLS, correlation=RHO)
    x, dw = problem.sample(200_000, torch.Generator().manual_seed(0), F64)
    assert x.shape == (200_000, 5, 3) and dw.shape == (200_000, 4, 3)
    returns = torch.log(x[:, 1:] / x[:, :-1]).reshape(-1, 3).numpy()  # 800,000 per asset
    vol = np.array(VOLS)
    # Standard errors: 0.0011 for a correlation, 0.16% for a variance.
    np.testing.assert_allclose(np.corrcoef(returns.T), RHO, atol=0.005)
    np.testing.assert_allclose(returns.var(axis=0), vol**2 * problem.dt, rtol=0.008)
    expected_mean = (problem.rate - vol**2 / 2) * problem.dt
    np.testing.assert_allclose(returns.mean(axis=0), expected_mean, atol=6e-4)
    # The BSDE's Brownian increments stay independent: the correlation is in sigma.
    increments = dw.reshape(-1, 3).numpy()
    np.testing.assert_allclose(np.corrcoef(increments.T), np.eye(3), atol=0.005)
    np.testing.assert_allclose(increments.var(axis=0), problem.dt, rtol=0.008)


def test_correlated_z_is_sigma_transpose_gradient():
    problem = ArithmeticBasketProblem(dim=3, volatility=VOLS, correlation=RHO)
    generator = torch.Generator().manual_seed(1)
    x = 80 + 40 * torch.rand(6, 3, generator=generator, dtype=F64)
    gradient = torch.randn(6, 3, generator=generator, dtype=F64)
    root = np.linalg.cholesky(np.array(RHO))
    for i in range(6):
        sigma = np.diag(np.array(VOLS) * x[i].numpy()) @ root  # dX = sigma dW
        z = problem.to_z(0.0, x[i : i + 1], gradient[i : i + 1])[0].numpy()
        np.testing.assert_allclose(z, sigma.T @ gradient[i].numpy(), rtol=1e-12)
    z = problem.to_z(0.3, x, gradient)
    torch.testing.assert_close(problem.to_gradient(0.3, x, z), gradient)


def test_zero_correlation_is_the_independent_model():
    independent = GeometricBasketProblem(dim=3, volatility=VOLS)
    identity = GeometricBasketProblem(dim=3, volatility=VOLS, correlation=np.eye(3).tolist())
    x1, _ = independent.sample(50, torch.Generator().manual_seed(2), F64)
    x2, _ = identity.sample(50, torch.Generator().manual_seed(2), F64)
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)
    assert independent.correlation == 0.0


def test_matrix_parameters_are_stored_as_tuples_and_compare_by_value():
    from_list = GeometricBasketProblem(dim=3, volatility=VOLS, correlation=RHO)
    from_arrays = GeometricBasketProblem(
        dim=3, volatility=np.array(VOLS), correlation=torch.tensor(RHO, dtype=F64)
    )
    assert from_arrays.correlation == RHO and from_arrays.volatility == VOLS
    assert from_list == from_arrays and hash(from_list) == hash(from_arrays)
    np.testing.assert_array_equal(from_arrays.correlation_matrix(), np.array(RHO))
    # The same paths from either: the Cholesky factor is computed once, from the same matrix.
    paths = [
        p.sample(20, torch.Generator().manual_seed(4), F64)[0] for p in (from_list, from_arrays)
    ]
    torch.testing.assert_close(*paths, rtol=0, atol=0)


def test_kanhedge_geometric_call_closed_form():
    problem = GeometricBasketProblem(**KANHEDGE_SETTING)
    assert problem.reference == pytest.approx(0.27659, abs=5e-6)  # Handal and Hirano (2026)
    x0 = problem.initial_state(F64)[None]
    assert float(problem.exact_value(0.0, x0)) == pytest.approx(problem.reference, rel=1e-10)


def test_correlated_geometric_exact_solution():
    problem = GeometricBasketProblem(dim=3, volatility=VOLS, correlation=RHO, kind="put", x0=95.0)
    price = closed_form.geometric_basket_price([95.0] * 3, 100.0, 1.0, 0.05, VOLS, RHO, kind="put")
    x0 = problem.initial_state(F64)[None]
    assert float(problem.exact_value(0.0, x0)) == pytest.approx(float(price), rel=1e-12)
    # The exact value is the discounted expected payoff (Monte Carlo along the problem's paths).
    x, _ = problem.sample(400_000, torch.Generator().manual_seed(3), F64)
    payoff = math.exp(-0.05) * problem.terminal(x[:, -1])
    assert float(payoff.mean()) == pytest.approx(
        problem.reference, abs=4 * float(payoff.std()) / 632
    )
    # The exact gradient is the derivative of the exact value (central differences).
    point = torch.tensor([[90.0, 100.0, 110.0]], dtype=F64)
    gradient = problem.exact_gradient(0.4, point)
    for i in range(3):
        step = torch.zeros_like(point)
        step[0, i] = 1e-4
        difference = problem.exact_value(0.4, point + step) - problem.exact_value(0.4, point - step)
        assert float(gradient[0, i]) == pytest.approx(float(difference) / 2e-4, rel=1e-5)


def test_payoffs_and_drivers():
    x = torch.tensor([[8.0, 12.0, 13.0], [10.0, 10.0, 10.0]], dtype=F64)
    y = torch.tensor([1.0, 0.5], dtype=F64)
    z = torch.zeros(2, 3, dtype=F64)
    call = ArithmeticBasketProblem(dim=3, strike=10.0, rate=0.02)
    torch.testing.assert_close(call.terminal(x), torch.tensor([1.0, 0.0], dtype=F64))
    torch.testing.assert_close(call.driver(0.0, x, y, z), -0.02 * y)
    geometric = GeometricBasketProblem(dim=3, strike=10.0, kind="put")
    expected = 10.0 - (8.0 * 12.0 * 13.0) ** (1 / 3)
    assert float(geometric.terminal(x[:1])) == pytest.approx(max(expected, 0.0))
    american = AmericanBasketPutProblem(dim=3, strike=11.0, rate=0.02, penalty=50.0)
    # Exercise values 0 and 1; y below the first only: the penalty lifts Y there.
    torch.testing.assert_close(american.terminal(x), torch.tensor([0.0, 1.0], dtype=F64))
    push = torch.tensor([0.0, 50.0 * 0.5], dtype=F64).clamp(max=0.02 * 11.0 * (1 + 0.02 / 20))
    torch.testing.assert_close(american.driver(0.0, x, y, z), -0.02 * y + push)
    uncapped = AmericanBasketPutProblem(dim=3, strike=11.0, rate=0.02, cap_penalty=False)
    torch.testing.assert_close(
        uncapped.driver(0.0, x, y, z), -0.02 * y + torch.tensor([0.0, 50.0], dtype=F64)
    )


def test_bad_basket_parameters_raise_config_error():
    with pytest.raises(ConfigError, match=r"correlation=1\.0 is singular"):
        GeometricBasketProblem(dim=3, correlation=1.0)
    with pytest.raises(ConfigError, match=r"correlation=-0\.6"):
        ArithmeticBasketProblem(dim=3, correlation=-0.6)
    with pytest.raises(ConfigError, match="correlation"):
        ArithmeticBasketProblem(dim=3, correlation=[[1.0, 0.2], [0.2, 1.0]])
    for flag in (True, False):
        with pytest.raises(ConfigError, match=f"correlation={flag}"):
            GeometricBasketProblem(dim=2, correlation=flag)
    with pytest.raises(ConfigError, match="strike=0"):
        ArithmeticBasketProblem(strike=0.0)
    with pytest.raises(ConfigError, match="kind='call'"):
        AmericanBasketPutProblem(kind="call")
    with pytest.raises(ConfigError, match="penalty=-1"):
        AmericanBasketPutProblem(penalty=-1.0)
    with pytest.raises(ConfigError, match="cap_penalty"):
        AmericanBasketPutProblem(cap_penalty="yes")


# ------------------------------------------------------------------------------ pricing


def test_arithmetic_basket_call_price():
    problem = ArithmeticBasketProblem(**SMALL, n_steps=10)
    reference = problem.monte_carlo_price(n_paths=200_000, seed=1)
    solver = bsde(iterations=400, batch_size=128, seed=0).fit(problem)
    # The reference's error is 2e-4; the solver's own noise (in effect a Monte Carlo over the
    # hedged payoffs of its last few thousand paths) is below 0.5%. The geometric basket's price
    # (0.7465) lies 8% lower: the tolerance tells the two apart.
    assert solver.y0_ == pytest.approx(reference.price, rel=0.01)


def _bermudan_tree(spot: float, strike: float, rate: float, vol: float, dates: int) -> float:
    """Bermudan put exercisable at ``t_1..t_N`` (T = 1) on a Cox-Ross-Rubinstein tree."""
    per_date = 400
    steps = dates * per_date
    dt = 1.0 / steps
    up = math.exp(vol * math.sqrt(dt))
    p = (math.exp(rate * dt) - 1 / up) / (up - 1 / up)
    spots = spot * up ** (steps - 2.0 * np.arange(steps + 1))
    value = np.maximum(strike - spots, 0.0)
    for step in reversed(range(steps)):
        value = math.exp(-rate * dt) * (p * value[:-1] + (1 - p) * value[1:])
        if step % per_date == 0 and step > 0:
            spots = spot * up ** (step - 2.0 * np.arange(step + 1))
            value = np.maximum(value, strike - spots)
    return float(value[0])


def test_penalised_scheme_rises_to_the_bermudan_price():
    # The documented bias of the penalty, checked on the scheme itself (no networks): in one
    # dimension its Euler recursion can be solved exactly on a grid.
    market = {"dim": 1, "x0": 10.0, "strike": 10.0, "volatility": 0.2, "rate": 0.06}
    bermudan = _bermudan_tree(10.0, 10.0, 0.06, 0.2, dates=10)
    european = float(closed_form.black_scholes_price(10.0, 10.0, 1.0, 0.06, 0.2, "put"))
    prices = {
        penalty: penalised_recursion(
            AmericanBasketPutProblem(**market, n_steps=10, penalty=penalty)
        )
        for penalty in (1e-9, 10.0, 100.0, 1000.0, 1e6)
    }
    # Without penalty the scheme is the European put, discounted by (1 + r dt)^-N.
    assert prices[1e-9] == pytest.approx(european * math.exp(0.06) / 1.006**10, abs=2e-4)
    assert bermudan > european + 0.03  # a premium worth measuring
    values = list(prices.values())
    assert values == sorted(values)
    assert values[-1] == pytest.approx(bermudan, abs=3e-4)
    # The lost premium shrinks like 1 / (1 + lambda dt): by (1 + 100) / (1 + 10) = 9.2 from
    # lambda = 100 to 1000.
    limit = prices[1e6]
    ratio = (limit - prices[100.0]) / (limit - prices[1000.0])
    assert 7 < ratio < 12
    # The cap on the push never binds at the scheme's solution.
    uncapped = AmericanBasketPutProblem(**market, n_steps=10, penalty=100.0, cap_penalty=False)
    assert penalised_recursion(uncapped) == pytest.approx(prices[100.0], abs=1e-12)


# ------------------------------------------------------------------------------ hedging


def test_exact_delta_hedge_is_unbiased_and_improves_with_more_steps():
    spread = {}
    for n_steps in (8, 32):
        problem = GeometricBasketProblem(**SMALL, n_steps=n_steps)
        prices = hedge_paths(problem, 20_000, seed=4)
        result = exact_delta_hedge(problem, prices)
        error = result.error
        assert error.shape == (20_000,) and result.hedge.positions.shape == (20_000, n_steps, 4)
        assert abs(float(error.mean())) < 4 * float(error.std()) / math.sqrt(20_000)
        spread[n_steps] = float(error.std())
        # Without discounting (hedge_pnl's zero rate on undiscounted prices) the mean is off.
        payoff = problem.terminal(prices[:, -1])
        naive = result.initial_capital + (result.hedge.positions * prices.diff(dim=1)).sum(
            dim=(1, 2)
        )
        assert abs(float((naive - payoff).mean())) > 0.1
    # The rebalancing error of a delta hedge falls like 1 / sqrt(N): four times the steps, half.
    assert spread[32] / spread[8] == pytest.approx(0.5, abs=0.06)


def test_bsde_delta_hedge_is_close_to_the_exact_one(geometric_call):
    problem, solver = geometric_call
    prices = hedge_paths(problem, 20_000, seed=5)  # not the solver's training paths
    learned = bsde_delta_hedge(solver, prices)
    exact = exact_delta_hedge(problem, prices)
    assert isinstance(learned, BSDEHedgeResult) and learned.initial_capital == solver.y0_
    assert learned.hedge.positions.shape == (20_000, 10, 4)
    assert learned.hedge.positions.dtype == F64
    exact_std, learned_std = float(exact.error.std()), float(learned.error.std())
    payoff_std = float(exact.hedge.payoff.std())
    # Within a factor of the exact hedge (1.10-1.13 on seeds 0-2), which itself removes most of
    # the payoff's spread.
    assert learned_std < 1.5 * exact_std < 0.3 * payoff_std
    # The mean error is the pricing error (the gains have mean zero).
    assert float(learned.error.mean()) == pytest.approx(
        solver.y0_ - problem.reference, abs=4 * learned_std / math.sqrt(20_000)
    )


def test_costs_are_the_discounted_traded_value_and_raise_the_cvar(geometric_call):
    problem, solver = geometric_call
    prices = hedge_paths(problem, 20_000, seed=6)
    free = bsde_delta_hedge(solver, prices)
    cost = 1e-3
    costly = bsde_delta_hedge(solver, prices, cost=cost)
    # Traded value, discounted to time 0, with the first purchase and the unwinding at T.
    held = free.hedge.positions.numpy()
    trades = np.abs(np.diff(held, axis=1, prepend=0.0, append=0.0))
    discount = np.exp(-problem.rate * problem.dt * np.arange(problem.n_steps + 1))
    expected = cost * (trades * prices.numpy() * discount[:, None]).sum(axis=(1, 2))
    np.testing.assert_allclose(costly.hedge.costs.numpy(), expected, rtol=1e-10)
    torch.testing.assert_close(costly.error, free.error - costly.hedge.costs)
    # CVaR-95: the mean of the worst 5% of losses (1000 of 20,000 paths).
    for result in (free, costly):
        worst = np.sort(-result.error.numpy())[-1000:].mean()
        assert hedging_cvar(result) == pytest.approx(worst, rel=1e-12)
        assert result.cvar(0.95) == hedging_cvar(result, 0.95)
    assert hedging_cvar(costly) > hedging_cvar(free) + 0.5 * float(costly.hedge.costs.mean())
    assert hedging_cvar(free, 0.99) > hedging_cvar(free, 0.95)


def test_delta_hedge_with_given_positions():
    problem = ArithmeticBasketProblem(**SMALL, n_steps=5)
    prices = hedge_paths(problem, 1000, seed=7)
    # Holding nothing: the error is the capital minus the discounted payoff.
    result = delta_hedge(problem, prices, torch.zeros(1000, 5, 4, dtype=F64), 0.7)
    discounted_payoff = math.exp(-problem.rate) * problem.terminal(prices[:, -1])
    torch.testing.assert_close(result.error, 0.7 - discounted_payoff)
    assert float(expected_shortfall(result.error, 0.95)) == hedging_cvar(result)
    assert hedge_paths(problem, 3, seed=7, dtype=torch.float32).dtype == torch.float32
    torch.testing.assert_close(hedge_paths(problem, 1000, seed=7), prices, rtol=0, atol=0)
    assert not torch.equal(hedge_paths(problem, 1000, seed=8), prices)


def test_hedging_errors(geometric_call):
    problem, solver = geometric_call
    prices = hedge_paths(problem, 10, seed=0)
    american = AmericanBasketPutProblem(dim=4, n_steps=10)
    with pytest.raises(ConfigError, match="problem=AmericanBasketPutProblem"):
        hedge_paths(american, 10)
    with pytest.raises(ConfigError, match="n_paths=0"):
        hedge_paths(problem, 0)
    with pytest.raises(ConfigError, match="dtype"):
        hedge_paths(problem, 10, dtype=torch.int64)
    with pytest.raises(ConfigError, match="fitted DeepBSDE"):
        bsde_delta_hedge(DeepBSDE(), prices)
    with pytest.raises(ConfigError, match=r"prices has shape \(10, 10, 4\)"):
        bsde_delta_hedge(solver, prices[:, 1:])
    with pytest.raises(ConfigError, match="prices has shape"):
        exact_delta_hedge(problem, prices.numpy())
    with pytest.raises(ConfigError, match="GeometricBasketProblem"):
        exact_delta_hedge(ArithmeticBasketProblem(**SMALL, n_steps=10), prices)
    with pytest.raises(ConfigError, match="initial_capital=nan"):
        delta_hedge(problem, prices, torch.zeros(10, 10, 4), float("nan"))
    with pytest.raises(ConfigError, match="positions has shape"):
        delta_hedge(problem, prices, torch.zeros(10, 11, 4), 1.0)
    with pytest.raises(ConfigError, match=r"cost=-0\.1"):
        exact_delta_hedge(problem, prices, cost=-0.1)
    with pytest.raises(ConfigError, match=r"prices has dtype torch\.int64; use a floating-point"):
        exact_delta_hedge(problem, prices.long())
    # paths from another start would be hedged with x0's capital and deltas
    moved = prices * 1.2
    with pytest.raises(ConfigError, match=r"prices\[0, 0, 0\] = .*starts at x0 = 10\.0"):
        exact_delta_hedge(problem, moved)
    with pytest.raises(ConfigError, match=r"starts at x0"):
        bsde_delta_hedge(solver, moved)
    with pytest.raises(ConfigError, match=r"seed=18446744073709551616 .* \[0, 2\*\*64\)"):
        hedge_paths(problem, 10, seed=2**64)
    result = exact_delta_hedge(problem, prices)
    with pytest.raises(ConfigError, match=r"level=1\.5"):
        hedging_cvar(result, 1.5)
    with pytest.raises(ConfigError, match="result=Tensor"):
        hedging_cvar(result.error)


def test_penalised_american_put_with_the_deep_bsde():
    market = {"dim": 3, "x0": 10.0, "strike": 10.5, "volatility": 0.15, "correlation": 0.3}
    problem = AmericanBasketPutProblem(**market, rate=0.03, n_steps=20, penalty=100.0)
    european = problem.european_price(n_paths=200_000, seed=1).price
    bermudan = problem.longstaff_schwartz_price(n_paths=50_000, seed=2)
    premium = bermudan.price - european
    assert premium > 0.05  # 0.064 +- 0.002: a premium the solver must find
    solver = bsde(iterations=400, batch_size=128, seed=0).fit(problem)
    # The penalty lifts the price well above the European one ...
    assert solver.y0_ > european + 0.5 * premium
    # ... but the deep BSDE's forward recursion overstates the premium (1.4-1.5 times here on
    # seeds 0-3, about 2.2 times in the KANHedge setting, where the penalised scheme itself is
    # within 0.1% of the Bermudan price; see AmericanBasketPutProblem), which puts y0 4-6% above
    # Longstaff-Schwartz: the tolerance is 8%.
    assert solver.y0_ == pytest.approx(bermudan.price, rel=0.08)


@pytest.mark.parametrize(
    ("value", "shown"), [(-1.0, "-1.0"), (0.0, "0.0"), (math.inf, "inf"), (math.nan, "nan")]
)
def test_hedges_reject_prices_that_are_not_finite_and_positive(value, shown):
    # Negative prices used to give a NaN P&L; the message is the one DeepHedger.fit gives.
    problem = GeometricBasketProblem(dim=2, n_steps=5)
    solver = bsde(iterations=3, batch_size=8).fit(problem)
    prices = hedge_paths(problem, 8, seed=1)
    prices[3, 2, 1] = value
    expected = f"prices[3, 2, 1] = {shown}; prices must be finite and positive"
    with pytest.raises(ConfigError) as caught:
        bsde_delta_hedge(solver, prices)
    assert str(caught.value) == f"bsde_delta_hedge: {expected}"
    with pytest.raises(ConfigError, match=rf"^exact_delta_hedge: {re.escape(expected)}$"):
        exact_delta_hedge(problem, prices)
    with pytest.raises(ConfigError, match=rf"^delta_hedge: {re.escape(expected)}$"):
        delta_hedge(problem, prices, torch.zeros(8, 5, 2, dtype=F64), 1.0)
    with pytest.raises(ConfigError, match=r"prices\[0, 0, 0\] = -100\.0"):
        bsde_delta_hedge(solver, -hedge_paths(problem, 8, seed=1))
