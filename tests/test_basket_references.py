"""Basket-option references against closed forms, independent Monte Carlo and a binomial tree.

The European arithmetic basket is checked against plain Monte Carlo simulated here with numpy
(not through `kabuto.sim`), put-call parity, Black-Scholes in one dimension and the geometric
closed form in the limits where the two averages meet. The Bermudan basket put is checked
against the single-asset Longstaff-Schwartz price (and the published 4.478), the European
basket put, its intrinsic value, and, for the geometric basket, a Cox-Ross-Rubinstein tree on
the single lognormal process that the geometric average of correlated GBMs is. Monte Carlo
comparisons allow 3 standard errors of the difference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from kabuto.hedging.american import basket_longstaff_schwartz, longstaff_schwartz
from kabuto.hedging.basket import BasketMCResult, arithmetic_basket_price
from kabuto.hedging.closed_form import black_scholes_price, geometric_basket_price
from kabuto.sim.paths import gbm_paths

from helpers import config_error_of

torch.set_num_threads(1)

# The KANHedge setting (Handal and Hirano 2026): 10 assets, S0 = K = 10, sigma 10%, r 1%,
# pairwise correlation 0.3, one year.
KANHEDGE = {
    "spot": np.full(10, 10.0),
    "strike": 10.0,
    "maturity": 1.0,
    "rate": 0.01,
    "volatility": 0.1,
    "correlation": 0.3,
}
# Unequal assets: spots, volatilities, weights and a factor correlation matrix.
_FACTORS = np.random.default_rng(5).standard_normal((4, 2))
_COVARIANCE = _FACTORS @ _FACTORS.T + 0.6 * np.eye(4)
UNEQUAL = {
    "spot": np.array([90.0, 100.0, 105.0, 110.0]),
    "strike": 100.0,
    "maturity": 1.5,
    "rate": 0.03,
    "volatility": np.array([0.15, 0.2, 0.25, 0.3]),
    "correlation": _COVARIANCE / np.sqrt(np.outer(np.diag(_COVARIANCE), np.diag(_COVARIANCE))),
    "weights": np.array([0.4, 0.3, 0.2, 0.1]),
}


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Many small least-squares fits run far faster on one BLAS thread on a shared machine."""
    with threadpool_limits(limits=1):
        yield


def correlation_matrix(correlation: float | np.ndarray, n_assets: int) -> np.ndarray:
    if np.ndim(correlation) == 2:
        return np.asarray(correlation)
    return np.full((n_assets, n_assets), correlation) + (1 - correlation) * np.eye(n_assets)


def plain_monte_carlo(case: dict, kind: str, n_paths: int, seed: int) -> tuple[float, float]:
    """Price and standard error of the arithmetic basket option by direct numpy simulation."""
    spot, vol = case["spot"], np.broadcast_to(case["volatility"], case["spot"].shape)
    t, r = case["maturity"], case["rate"]
    weights = case.get("weights", np.full(spot.size, 1 / spot.size))
    root = np.linalg.cholesky(correlation_matrix(case["correlation"], spot.size))
    shocks = np.random.default_rng(seed).standard_normal((n_paths, spot.size)) @ root.T
    terminal = spot * np.exp((r - vol**2 / 2) * t + vol * math.sqrt(t) * shocks)
    sign = 1.0 if kind == "call" else -1.0
    payoff = math.exp(-r * t) * np.maximum(sign * (terminal @ weights - case["strike"]), 0.0)
    return float(payoff.mean()), float(payoff.std(ddof=1) / math.sqrt(n_paths))


# --------------------------------------------------------------------------------------------
# European arithmetic basket
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "kind", "reduction"),
    [(KANHEDGE, "call", 10), (KANHEDGE, "put", 10), (UNEQUAL, "call", 2), (UNEQUAL, "put", 2)],
)
def test_control_variate_agrees_with_plain_monte_carlo_at_a_fraction_of_its_error(
    case, kind, reduction
):
    result = arithmetic_basket_price(**case, kind=kind, n_paths=50_000, seed=1)
    plain, plain_error = plain_monte_carlo(case, kind, n_paths=400_000, seed=2)
    assert abs(result.price - plain) < 3 * math.hypot(result.std_error, plain_error)
    # Same paths, the estimator less the control: the error shrinks most where the assets
    # disperse least (low volatility, equal weights).
    assert result.std_error < result.plain_std_error / reduction
    assert abs(result.price - result.plain_price) < 3 * result.plain_std_error


def test_kanhedge_call_lies_above_the_geometric_closed_form():
    result = arithmetic_basket_price(**KANHEDGE, n_paths=50_000)
    geometric = geometric_basket_price(**KANHEDGE)
    assert round(float(geometric), 5) == 0.27659
    # The arithmetic average dominates the geometric one path by path (AM-GM), so does its call.
    assert result.price > geometric + 10 * result.std_error


def test_put_call_parity():
    # C - P = exp(-rT) E[A_T - K] = sum_i w_i S_i(0) - K exp(-rT).
    call = arithmetic_basket_price(**UNEQUAL, kind="call", n_paths=50_000, seed=3)
    put = arithmetic_basket_price(**UNEQUAL, kind="put", n_paths=50_000, seed=4)
    forward_value = UNEQUAL["weights"] @ UNEQUAL["spot"] - UNEQUAL["strike"] * math.exp(
        -UNEQUAL["rate"] * UNEQUAL["maturity"]
    )
    assert abs(call.price - put.price - forward_value) < 3 * math.hypot(
        call.std_error, put.std_error
    )


def test_approaches_the_geometric_price_as_the_assets_move_together():
    gaps = []
    for correlation in (0.3, 0.9, 0.99, 0.999):
        case = {**KANHEDGE, "correlation": correlation}
        result = arithmetic_basket_price(**case, n_paths=20_000)
        gap = result.price - float(geometric_basket_price(**case))
        assert gap > 3 * result.std_error
        gaps.append(gap)
    # The gap is the assets' dispersion, proportional to 1 - rho.
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-4
    assert gaps[2] / gaps[1] == pytest.approx(0.1, rel=0.1)

    perfectly_correlated = arithmetic_basket_price(**{**KANHEDGE, "correlation": 1.0})
    assert perfectly_correlated.price == pytest.approx(
        geometric_basket_price(**{**KANHEDGE, "correlation": 1.0}), abs=1e-12
    )


def test_approaches_the_geometric_price_as_volatility_vanishes():
    gaps = []
    for volatility in (0.1, 0.03, 0.01, 0.003):
        case = {**KANHEDGE, "volatility": volatility}
        result = arithmetic_basket_price(**case, n_paths=20_000)
        gaps.append(result.price - float(geometric_basket_price(**case)))
    assert all(gap > 0 for gap in gaps)
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-4


@pytest.mark.parametrize("kind", ["call", "put"])
def test_one_asset_is_black_scholes(kind):
    case = {"spot": 100.0, "strike": 95.0, "maturity": 0.5, "rate": 0.04, "volatility": 0.25}
    result = arithmetic_basket_price(**case, correlation=1.0, kind=kind, n_paths=20_000)
    exact = black_scholes_price(**case, kind=kind)
    # One asset: both averages are the spot, so the control cancels all the noise.
    assert result.price == pytest.approx(exact, abs=1e-10)
    assert result.std_error < 1e-10
    assert abs(result.plain_price - exact) < 3 * result.plain_std_error


def test_same_seed_same_price_and_a_frozen_result():
    first = arithmetic_basket_price(**UNEQUAL, n_paths=1_000, seed=7)
    assert first == arithmetic_basket_price(**UNEQUAL, n_paths=1_000, seed=7)
    assert first.price != arithmetic_basket_price(**UNEQUAL, n_paths=1_000, seed=8).price
    assert isinstance(first, BasketMCResult) and first.n_paths == 1_000
    with pytest.raises(AttributeError):
        first.price = 0.0  # type: ignore[misc]


def test_more_paths_than_one_batch():
    # More paths than one batch: the estimate stays consistent with the plain one.
    result = arithmetic_basket_price(**KANHEDGE, n_paths=150_001, seed=5)
    assert result.n_paths == 150_001
    assert abs(result.price - result.plain_price) < 3 * result.plain_std_error


# --------------------------------------------------------------------------------------------
# Bermudan basket put by Longstaff-Schwartz
# --------------------------------------------------------------------------------------------


def bermudan_put_binomial(
    spot: float,
    strike: float,
    rate: float,
    dividend: float,
    volatility: float,
    maturity: float,
    n_dates: int,
    steps_per_date: int,
) -> float:
    """Cox-Ross-Rubinstein tree for a put exercisable at ``j maturity / n_dates``, j >= 1."""
    n = n_dates * steps_per_date
    dt = maturity / n
    up = math.exp(volatility * math.sqrt(dt))
    p_up = (math.exp((rate - dividend) * dt) - 1 / up) / (up - 1 / up)
    discount = math.exp(-rate * dt)
    values = np.maximum(strike - spot * up ** (2 * np.arange(n + 1) - n), 0.0)
    for step in range(n - 1, 0, -1):
        values = discount * (p_up * values[1:] + (1 - p_up) * values[:-1])
        if step % steps_per_date == 0:
            spots = spot * up ** (2 * np.arange(step + 1) - step)
            values = np.maximum(values, strike - spots)
    return float(discount * (p_up * values[1] + (1 - p_up) * values[0]))


@pytest.fixture(scope="module")
def longstaff_schwartz_paths() -> np.ndarray:
    """Their Table 1 case: S0 = 36, r = 6%, sigma = 20%, T = 1, 50 dates; 50k + 50k antithetic."""
    spot, rate, volatility, maturity, n_dates = 36.0, 0.06, 0.2, 1.0, 50
    dt = maturity / n_dates
    shocks = np.random.default_rng(2001).standard_normal((50_000, n_dates))
    shocks = np.concatenate([shocks, -shocks])
    log_steps = (rate - volatility**2 / 2) * dt + volatility * math.sqrt(dt) * shocks
    log_paths = np.concatenate([np.zeros((shocks.shape[0], 1)), np.cumsum(log_steps, axis=1)], 1)
    return spot * np.exp(log_paths)


def test_binomial_reference_reproduces_the_published_american_put():
    # Longstaff and Schwartz (2001, Table 1): 4.478 by finite differences (50 exercise dates
    # and a continuum differ in the third decimal only).
    tree = bermudan_put_binomial(36.0, 40.0, 0.06, 0.0, 0.2, 1.0, n_dates=50, steps_per_date=40)
    assert tree == pytest.approx(4.478, abs=0.005)


def test_one_asset_basket_is_the_single_asset_price(longstaff_schwartz_paths):
    single = longstaff_schwartz(longstaff_schwartz_paths, strike=40.0, rate=0.06, maturity=1.0)
    as_basket = longstaff_schwartz_paths[:, :, None]
    arithmetic = basket_longstaff_schwartz(as_basket, strike=40.0, rate=0.06, maturity=1.0)
    assert arithmetic.price == single.price
    assert arithmetic.std_error == single.std_error
    np.testing.assert_array_equal(arithmetic.exercise_boundary, single.exercise_boundary)
    assert abs(arithmetic.price - 4.478) < 0.02

    geometric = basket_longstaff_schwartz(
        as_basket, strike=40.0, rate=0.06, maturity=1.0, average="geometric"
    )
    assert geometric.price == pytest.approx(single.price, abs=1e-6)


# A four-asset market with an appreciable early-exercise premium (r = 5%), 50 exercise dates.
FOUR_ASSETS = {
    "spot": np.array([90.0, 100.0, 105.0, 110.0]),
    "rate": 0.05,
    "volatility": np.array([0.15, 0.2, 0.25, 0.3]),
    "correlation": correlation_matrix(0.4, 4),
    "maturity": 1.0,
}


@pytest.fixture(scope="module")
def four_asset_paths() -> np.ndarray:
    m = FOUR_ASSETS
    paths = gbm_paths(
        30_000,
        50,
        m["maturity"],
        m["spot"],
        m["rate"],
        m["volatility"],
        m["correlation"],
        seed=11,
        dtype=torch.float64,
    )
    return paths.numpy()


def test_basket_put_is_worth_more_than_the_european_and_than_exercising_now(four_asset_paths):
    m = FOUR_ASSETS
    for strike in (95.0, 101.25, 110.0):
        american = basket_longstaff_schwartz(
            four_asset_paths, strike, m["rate"], m["maturity"], kind="put"
        )
        european = arithmetic_basket_price(
            m["spot"],
            strike,
            m["maturity"],
            m["rate"],
            m["volatility"],
            m["correlation"],
            kind="put",
            n_paths=50_000,
        )
        premium = american.price - european.price
        assert premium > 3 * math.hypot(american.std_error, european.std_error)
        intrinsic = max(strike - float(m["spot"].mean()), 0.0)
        assert american.price > intrinsic + 3 * american.std_error


def test_basket_call_without_dividends_is_european(four_asset_paths):
    # Early exercise of a call on a basket of stocks without dividends never pays: the
    # discounted basket is a martingale and the call payoff is convex.
    m = FOUR_ASSETS
    american = basket_longstaff_schwartz(
        four_asset_paths, 100.0, m["rate"], m["maturity"], kind="call"
    )
    european, european_error = plain_monte_carlo(
        {**m, "strike": 100.0}, "call", n_paths=400_000, seed=6
    )
    assert abs(american.price - european) < 3 * math.hypot(american.std_error, european_error)


def test_geometric_basket_put_is_the_put_on_one_equivalent_gbm(four_asset_paths):
    # ln G = sum_i w_i ln S_i is a Brownian motion with drift: G is a GBM with volatility
    # sigma_G**2 = w' Sigma w and, under the risk-neutral measure, drift r - q with the
    # dividend yield q = (sum_i w_i sigma_i**2 - sigma_G**2) / 2.
    m = FOUR_ASSETS
    w = np.full(4, 0.25)
    covariance = np.outer(m["volatility"], m["volatility"]) * m["correlation"]
    vol_g = math.sqrt(w @ covariance @ w)
    dividend = (w @ m["volatility"] ** 2 - vol_g**2) / 2
    spot_g = math.exp(w @ np.log(m["spot"]))
    strike, rate, maturity = 100.0, m["rate"], m["maturity"]

    basket = basket_longstaff_schwartz(
        four_asset_paths, strike, rate, maturity, kind="put", average="geometric"
    )
    one_gbm_paths = gbm_paths(
        30_000, 50, maturity, spot_g, rate - dividend, vol_g, seed=12, dtype=torch.float64
    )[:, :, 0].numpy()
    one_gbm = longstaff_schwartz(one_gbm_paths, strike, rate, maturity, kind="put")
    tree = bermudan_put_binomial(spot_g, strike, rate, dividend, vol_g, maturity, 50, 40)

    assert abs(basket.price - one_gbm.price) < 3 * math.hypot(basket.std_error, one_gbm.std_error)
    assert abs(basket.price - tree) < 3 * basket.std_error
    assert abs(one_gbm.price - tree) < 3 * one_gbm.std_error
    # The geometric average is the lower one, so its put is the dearer.
    arithmetic = basket_longstaff_schwartz(four_asset_paths, strike, rate, maturity, kind="put")
    assert basket.price > arithmetic.price


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------

GOOD_BASKET_PATHS = np.full((4, 3, 2), 100.0)

BAD_INPUTS = [
    (arithmetic_basket_price, {**UNEQUAL, "weights": [0.5, 0.5, 0.5, 0.5]}, "weights sum to 2.0"),
    (arithmetic_basket_price, {**UNEQUAL, "weights": [1.5, -0.5, 0, 0]}, "weights=-0.5"),
    (arithmetic_basket_price, {**KANHEDGE, "n_paths": 1}, "n_paths=1"),
    (arithmetic_basket_price, {**KANHEDGE, "seed": -1}, "seed=-1"),
    (arithmetic_basket_price, {**KANHEDGE, "kind": "digital"}, "kind='digital'"),
    (arithmetic_basket_price, {**KANHEDGE, "correlation": -0.5}, "correlation=-0.5"),
    (arithmetic_basket_price, {**KANHEDGE, "strike": [10.0, 11.0]}, "strike has shape (2,)"),
    (arithmetic_basket_price, {**KANHEDGE, "volatility": [0.1] * 3}, "spot (10,)"),
    (basket_longstaff_schwartz, (GOOD_BASKET_PATHS[0], 100.0, 0.05, 1.0), "paths has shape"),
    (basket_longstaff_schwartz, (-GOOD_BASKET_PATHS, 100.0, 0.05, 1.0), "paths=-100.0"),
    (basket_longstaff_schwartz, (GOOD_BASKET_PATHS, 0.0, 0.05, 1.0), "strike=0.0"),
    (basket_longstaff_schwartz, (GOOD_BASKET_PATHS, 100.0, 0.05, 0.0), "maturity=0.0"),
    (basket_longstaff_schwartz, (GOOD_BASKET_PATHS, 100.0, 0.05, 1.0, "max"), "kind='max'"),
    (
        basket_longstaff_schwartz,
        (GOOD_BASKET_PATHS, 100.0, 0.05, 1.0, "put", [0.7, 0.7]),
        "weights sum to 1.4",
    ),
    (
        basket_longstaff_schwartz,
        (GOOD_BASKET_PATHS, 100.0, 0.05, 1.0, "put", [0.2, 0.3, 0.5]),
        "weights has shape (3,)",
    ),
    (
        basket_longstaff_schwartz,
        (GOOD_BASKET_PATHS, 100.0, 0.05, 1.0, "put", None, "harmonic"),
        "average='harmonic'",
    ),
    (
        basket_longstaff_schwartz,
        (GOOD_BASKET_PATHS, 100.0, 0.05, 1.0, "put", None, "arithmetic", 0),
        "degree=0",
    ),
]


@pytest.mark.parametrize(
    ("pricer", "arguments", "named"),
    BAD_INPUTS,
    ids=[f"{pricer.__name__}-{named}" for pricer, _, named in BAD_INPUTS],
)
def test_bad_input_raises_a_one_line_config_error_naming_it(pricer, arguments, named):
    message = config_error_of(pricer, arguments)
    assert message.startswith(f"{pricer.__name__}: ")
    assert named in message
    assert "\n" not in message
