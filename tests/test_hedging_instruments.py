"""Hedging with more instruments than the underlying: the Heston variance swap and DeepHedger.

The variance swap's price is checked against its definition (a martingale that starts at
``L(0, v0)`` and ends at the realised variance) and the multi-instrument hedger against a claim
it can replicate exactly, whose price is then known in closed form.
"""

from __future__ import annotations

import math

import pytest
import torch

from kabuto.errors import ConfigError
from kabuto.hedging.hedger import DeepHedger, MLPPolicy, RecurrentPolicy, hedge_features
from kabuto.hedging.instruments import variance_swap_prices
from kabuto.hedging.pnl import HedgeResult, hedge_pnl, trades
from kabuto.sim.paths import heston_paths

# Buehler et al. (2019), section 5: 30 daily steps to 30 days.
HESTON = dict(spot=100.0, v0=0.04, kappa=1.0, theta=0.04, xi=2.0, rho=-0.7)
MATURITY, STEPS = 30 / 365, 30


def _expected_remaining(v: float, remaining: float, kappa: float, theta: float) -> float:
    """``int_t^T E[v_s | v_t = v] ds`` from the mean of the CIR process."""
    return (v - theta) * (1 - math.exp(-kappa * remaining)) / kappa + theta * remaining


def test_variance_swap_starts_at_expected_variance():
    _, v = heston_paths(500, STEPS, MATURITY, seed=1, dtype=torch.float64, **HESTON)
    swap = variance_swap_prices(v, MATURITY, HESTON["kappa"], HESTON["theta"])
    start = _expected_remaining(HESTON["v0"], MATURITY, HESTON["kappa"], HESTON["theta"])
    torch.testing.assert_close(swap[:, 0], torch.full((500,), start, dtype=torch.float64))


def test_variance_swap_by_hand_on_a_two_step_path():
    """v = 0.04, 0.09, 0.01 at t = 0, 1, 2 (T = 2), theta = 0.05, kappa = ln 2 so that the
    variance's expected gap to theta halves each year; the realised leg is a trapezoid."""
    v = torch.tensor([[0.04, 0.09, 0.01]], dtype=torch.float64)
    kappa = math.log(2.0)
    swap = variance_swap_prices(v, 2.0, kappa, 0.05)
    expected = [
        -0.01 * (1 - 1 / 4) / kappa + 0.05 * 2,  # nothing realised; two years to go
        (0.04 + 0.09) / 2 + 0.04 * (1 - 1 / 2) / kappa + 0.05,  # one year realised, one to go
        (0.04 + 0.09) / 2 + (0.09 + 0.01) / 2,  # all realised: 0.115
    ]
    torch.testing.assert_close(swap, torch.tensor([expected], dtype=torch.float64))


def test_variance_swap_is_constant_along_the_mean_variance_path():
    """On the deterministic path v_t = E[v_t] (xi -> 0) nothing new is learned: price constant."""
    kappa, theta, v0 = 3.0, 0.09, 0.01
    t = torch.linspace(0.0, 1.0, 501, dtype=torch.float64)
    v = (theta + (v0 - theta) * torch.exp(-kappa * t)).unsqueeze(0)
    swap = variance_swap_prices(v, 1.0, kappa, theta)
    start = _expected_remaining(v0, 1.0, kappa, theta)
    assert swap.sub(start).abs().max().item() < 1e-6  # the trapezoid's error only


def test_variance_swap_is_a_martingale_on_heston_paths():
    _, v = heston_paths(100_000, STEPS, MATURITY, seed=2, dtype=torch.float64, **HESTON)
    swap = variance_swap_prices(v, MATURITY, HESTON["kappa"], HESTON["theta"])
    moves = swap.diff(dim=1)
    mean, sd = moves.mean(dim=0), moves.std(dim=0) / math.sqrt(moves.shape[0])
    assert bool((mean.abs() < 4 * sd).all()), (mean / sd).tolist()
    total = swap[:, -1] - swap[:, 0]
    assert abs(total.mean().item()) < 4 * total.std().item() / math.sqrt(total.shape[0])


@pytest.mark.parametrize(
    "variance, kwargs, match",
    [
        (torch.full((3, 5), -0.01), {}, "finite and >= 0"),
        (torch.full((3,), 0.04), {}, "must be \\(N, T \\+ 1\\)"),
        (torch.full((3, 5), 0.04), {"kappa": 0.0}, "kappa=0.0"),
        (torch.full((3, 5), 0.04), {"maturity": -1.0}, "maturity=-1.0"),
        ([[0.04, 0.04]], {}, "floating-point torch.Tensor"),
    ],
)
def test_variance_swap_rejects_bad_input(variance, kwargs, match):
    args = {"maturity": 1.0, "kappa": 1.0, "theta": 0.04, **kwargs}
    with pytest.raises(ConfigError, match=match):
        variance_swap_prices(variance, **args)


# ------------------------------------------------------------------ multi-instrument hedger


def _heston_market(n: int, seed: int, notional: float = 1000.0):
    s, v = heston_paths(n, 10, MATURITY, seed=seed, **HESTON)
    swap = variance_swap_prices(v, MATURITY, HESTON["kappa"], HESTON["theta"]) * notional
    return s, v.sqrt(), swap


def test_a_claim_on_the_variance_swap_is_replicated_at_its_price():
    """Short ``notional x realised variance``: holding one swap replicates it exactly, so every
    cash-invariant risk of the hedged position is the swap's start price ``L(0, v0)``."""

    def hedger() -> DeepHedger:
        return DeepHedger(
            100.0, MATURITY, policy="mlp", hidden_sizes=(16, 16), learning_rate=0.02, epochs=1,
            batch_size=1_000, seed=0, num_threads=1,
        )  # fmt: skip

    s, vol, swap = _heston_market(100_000, seed=3)
    with_swap = hedger().fit(s, swap[:, -1], volatility=vol, instruments=swap)
    spot_only = hedger().fit(s, swap[:, -1], volatility=vol)
    s, vol, swap = _heston_market(20_000, seed=4)
    price = with_swap.price(s, swap[:, -1], volatility=vol, instruments=swap)
    price_without = spot_only.price(s, swap[:, -1], volatility=vol)
    exact = swap[0, 0].item()
    assert abs(price - exact) < 0.02 * exact, (price, exact)
    assert price_without > exact * 1.1, (price_without, exact)
    held = with_swap.hedge(s, swap[:, -1], volatility=vol, instruments=swap).positions
    assert held.shape == (20_000, 10, 2)
    assert abs(held[..., 1].mean().item() - 1.0) < 0.1


def test_policies_hold_one_column_per_instrument():
    s, vol, _ = _heston_market(64, seed=5)
    features = hedge_features(s, strike=100.0, maturity=MATURITY, volatility=vol)
    for policy in (MLPPolicy((4,), n_instruments=3), RecurrentPolicy((4,), n_instruments=3)):
        assert policy(features).shape == (64, 10, 3)
    for policy in (MLPPolicy((4,)), RecurrentPolicy((4,))):
        assert policy(features).shape == (64, 10)


def test_instrument_errors_are_clear():
    s, vol, swap = _heston_market(100, seed=6)
    with pytest.raises(ConfigError, match="policy='band' hedges with the underlying only"):
        DeepHedger(100.0, MATURITY, epochs=1).fit(s, volatility=vol, instruments=swap)
    mlp = DeepHedger(100.0, MATURITY, policy="mlp", hidden_sizes=(4,), epochs=1)
    with pytest.raises(ConfigError, match="instruments has shape \\(100, 5\\)"):
        mlp.fit(s, volatility=vol, instruments=swap[:, :5])
    with pytest.raises(ConfigError, match="instruments must be finite"):
        mlp.fit(s, volatility=vol, instruments=swap * float("nan"))
    mlp.fit(s, volatility=vol, instruments=swap)
    assert mlp.n_instruments_ == 2
    with pytest.raises(ConfigError, match="trained with 1 further instrument\\(s\\) but given 0"):
        mlp.hedge(s, volatility=vol)
    with pytest.raises(ConfigError, match="n_instruments=0"):
        MLPPolicy((4,), n_instruments=0)
    for bad in (torch.tensor(1.0), swap[:, 0]):  # 0-d, 1-d
        with pytest.raises(ConfigError, match=r"hedge: instruments has shape"):
            mlp.hedge(s, volatility=vol, instruments=bad)


def test_trading_an_instrument_priced_below_zero_still_costs():
    # a swap's value can be negative: a signed price made every trade a rebate, and the
    # deep hedger churned to collect it (a price of -6e7 for a claim worth 0.025)
    prices = torch.tensor([[[100.0, -1.0]] * 5])
    churn = torch.tensor([[[0.0, 1000.0], [0.0, -1000.0], [0.0, 1000.0], [0.0, -1000.0]]])
    result = HedgeResult.evaluate(prices, churn, torch.zeros(1), cost=0.01)
    # trades 1000, 2000, 2000, 2000 and the unwind 1000, each at |S| = 1
    torch.testing.assert_close(result.costs, torch.tensor([0.01 * 8000.0]))
    torch.testing.assert_close(result.pnl, torch.tensor([-80.0]))


def test_pnl_arguments_are_checked():
    positions = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="trades: unwind='no'"):
        trades(positions, "no")
    with pytest.raises(ConfigError, match=r"trades: positions must be a tensor of shape"):
        trades([[0.0, 1.0]], True)
    prices = torch.ones(2, 4)
    prices[1, 2] = float("nan")
    with pytest.raises(ConfigError, match=r"hedge_pnl: prices\[1, 2\] is not finite"):
        hedge_pnl(prices, positions, torch.zeros(2))
