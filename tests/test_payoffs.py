"""Payoffs on path tensors: hand-computed values, inequalities, gradients and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kabuto.errors import ConfigError
from kabuto.hedging.payoffs import basket, european, exchange, lookback

F64 = torch.float64

# Three single-asset paths over four dates: up-down-up, down-then-rally, flat.
PATHS = torch.tensor(
    [
        [100.0, 110.0, 90.0, 105.0],
        [100.0, 80.0, 95.0, 120.0],
        [100.0, 100.0, 100.0, 100.0],
    ],
    dtype=F64,
)

# Two assets, two paths, two dates; terminal prices (100, 50) and (80, 120).
TWO_ASSETS = torch.tensor(
    [
        [[90.0, 60.0], [100.0, 50.0]],
        [[100.0, 100.0], [80.0, 120.0]],
    ],
    dtype=F64,
)


def expect(actual: torch.Tensor, values: list[float]) -> None:
    torch.testing.assert_close(actual, torch.tensor(values, dtype=actual.dtype))


@pytest.mark.parametrize("paths", [PATHS, PATHS.unsqueeze(-1)], ids=["(N,T+1)", "(N,T+1,1)"])
def test_european_hand_values(paths):
    expect(european(paths, 100.0), [5.0, 20.0, 0.0])
    expect(european(paths, 100.0, kind="put"), [0.0, 0.0, 0.0])
    expect(european(paths, 110.0, kind="put"), [5.0, 0.0, 10.0])
    expect(european(paths, 90.0, kind="call"), [15.0, 30.0, 10.0])


def test_european_per_path_strike():
    strikes = torch.tensor([100.0, 130.0, 95.0], dtype=F64)
    expect(european(PATHS, strikes), [5.0, 0.0, 5.0])


@pytest.mark.parametrize(
    "strike", [np.float32(90), np.float64(90), np.int64(90), 90], ids=lambda k: type(k).__name__
)
def test_numpy_and_integer_strikes_are_numbers(strike):
    expect(european(PATHS, strike), [15.0, 30.0, 10.0])
    expect(lookback(PATHS, strike, kind="put"), [0.0, 10.0, 0.0])
    expect(basket(TWO_ASSETS, strike), [0.0, 10.0])


@pytest.mark.parametrize("paths", [PATHS, PATHS.unsqueeze(-1)], ids=["(N,T+1)", "(N,T+1,1)"])
def test_lookback_hand_values(paths):
    # Running max (110, 120, 100) and min (90, 80, 100), initial date included.
    expect(lookback(paths, 100.0), [10.0, 20.0, 0.0])
    expect(lookback(paths, 100.0, kind="put"), [10.0, 20.0, 0.0])
    expect(lookback(paths, 115.0), [0.0, 5.0, 0.0])
    expect(lookback(paths, 85.0, kind="put"), [0.0, 5.0, 0.0])
    # Floating strike: S_T - min for the call, max - S_T for the put.
    expect(lookback(paths), [15.0, 40.0, 0.0])
    expect(lookback(paths, kind="put"), [5.0, 0.0, 0.0])


def test_basket_hand_values():
    # Equal weights: arithmetic means 75 and 100, geometric sqrt(5000) and sqrt(9600).
    expect(basket(TWO_ASSETS, 90.0), [0.0, 10.0])
    expect(basket(TWO_ASSETS, 90.0, kind="put"), [15.0, 0.0])
    expect(basket(TWO_ASSETS, 90.0, average="geometric"), [0.0, math.sqrt(9600) - 90])
    expect(basket(TWO_ASSETS, 90.0, kind="put", average="geometric"), [90 - math.sqrt(5000), 0.0])
    w = [0.25, 0.75]
    expect(basket(TWO_ASSETS, 60.0, w), [2.5, 50.0])
    expect(
        basket(TWO_ASSETS, 55.0, w, average="geometric"),
        [100**0.25 * 50**0.75 - 55, 80**0.25 * 120**0.75 - 55],
    )
    # Arithmetic baskets take any weights: (1, -1) is a spread option.
    expect(basket(TWO_ASSETS, 0.0, [1.0, -1.0]), [50.0, 0.0])
    expect(basket(TWO_ASSETS, 0.0, torch.tensor([1.0, -1.0]), kind="put"), [0.0, 40.0])


def test_geometric_basket_call_is_at_most_arithmetic():
    gen = torch.Generator().manual_seed(0)
    paths = 100.0 * torch.exp(0.3 * torch.randn(5_000, 3, 4, generator=gen, dtype=F64))
    weights = torch.rand(4, generator=gen, dtype=F64)
    weights /= weights.sum()
    for strike in (60.0, 100.0, 140.0):
        arith = basket(paths, strike, weights)
        geo = basket(paths, strike, weights, average="geometric")
        # Weighted AM-GM: prod S_i^w_i <= sum w_i S_i on positive prices, and max(. - K, 0) is
        # increasing; rounding gets a hair of slack.
        assert (geo <= arith + 1e-10).all()
        assert (geo < arith).any()


def test_exchange_hand_values_and_formula():
    expect(exchange(TWO_ASSETS), [50.0, 0.0])
    gen = torch.Generator().manual_seed(1)
    paths = 100.0 * torch.exp(0.2 * torch.randn(1_000, 5, 2, generator=gen))
    expected = torch.maximum(paths[:, -1, 0] - paths[:, -1, 1], torch.tensor(0.0))
    torch.testing.assert_close(exchange(paths), expected, rtol=0.0, atol=0.0)


def test_payoffs_keep_dtype_and_return_one_value_per_path():
    paths32 = PATHS.float()
    for value in (european(paths32, 100.0), lookback(paths32), lookback(paths32, 100.0)):
        assert value.shape == (3,) and value.dtype == torch.float32
    assert basket(TWO_ASSETS, 90.0).dtype == F64
    assert exchange(TWO_ASSETS.float()).dtype == torch.float32


@pytest.mark.parametrize(("kind", "sign"), [("call", 1.0), ("put", -1.0)])
def test_european_gradient_is_the_pathwise_delta(kind, sign):
    paths = PATHS.clone().requires_grad_(True)
    european(paths, 102.0, kind=kind).sum().backward()
    # d/dS_T of max(S_T - K, 0) is 1{S_T > K}; of max(K - S_T, 0) it is -1{S_T < K}; earlier
    # dates do not enter.
    in_money = (sign * (PATHS[:, -1] - 102.0) > 0).to(F64)
    expected = torch.zeros_like(PATHS)
    expected[:, -1] = sign * in_money
    torch.testing.assert_close(paths.grad, expected)


def test_gradients_flow_through_lookback_and_geometric_basket():
    paths = PATHS.clone().requires_grad_(True)
    lookback(paths).sum().backward()
    # S_T - min S: +1 on the last date, -1 on the date of the minimum.
    expected = torch.zeros_like(PATHS)
    expected[:2, -1] = 1.0
    expected[0, 2] -= 1.0
    expected[1, 1] -= 1.0
    torch.testing.assert_close(paths.grad[:2], expected[:2])

    assets = TWO_ASSETS.clone().requires_grad_(True)
    w = torch.tensor([0.25, 0.75], dtype=F64)
    basket(assets, 55.0, w, average="geometric").sum().backward()
    # d/dS_i of G = prod S_i^w_i is w_i G / S_i (G = 59.5 and 107.4, both above 55).
    terminal = TWO_ASSETS[:, -1]
    g = torch.exp(torch.log(terminal) @ w)
    torch.testing.assert_close(assets.grad[:, -1], w * g[:, None] / terminal)
    assert torch.equal(assets.grad[:, 0], torch.zeros(2, 2, dtype=F64))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: european(PATHS, 100.0, kind="straddle"), "kind='straddle'"),
        (lambda: lookback(PATHS, kind="Call"), "kind='Call'"),
        (lambda: basket(TWO_ASSETS, 90.0, kind="binary"), "kind='binary'"),
        (
            lambda: european(PATHS.unsqueeze(-1).expand(3, 4, 2), 100.0),
            r"paths has shape \(3, 4, 2\)",
        ),
        (lambda: european(PATHS[0], 100.0), r"paths has shape \(4,\)"),
        (lambda: european(PATHS.long(), 100.0), "paths must be a floating-point"),
        (lambda: european(PATHS.tolist(), 100.0), "paths must be a floating-point"),
        (lambda: european(PATHS, float("nan")), "strike=nan"),
        (lambda: european(PATHS, np.float32("inf")), r"strike=(np\.float32\()?inf"),
        (lambda: european(PATHS, True), "strike=True"),
        (lambda: european(PATHS, torch.tensor(float("nan"))), "strike=nan"),
        (lambda: lookback(PATHS, torch.tensor([100.0, -math.inf, 90.0])), r"strike\[1\]=-inf"),
        (
            lambda: basket(
                TWO_ASSETS * torch.tensor([1.0, 0.0], dtype=F64), 1.0, average="geometric"
            ),
            r"paths\[0, -1, 1\]=0.0 is not allowed for average='geometric'",
        ),
        (
            lambda: basket(-TWO_ASSETS, 1.0, [0.5, 0.5], average="geometric"),
            r"paths\[0, -1, 0\]=-100.0",
        ),
        (lambda: european(PATHS, "100"), "strike='100'"),
        (lambda: european(PATHS, torch.ones(2)), r"strike has shape \(2,\)"),
        (lambda: lookback(PATHS[:, :0], 100.0), r"paths has shape \(3, 0\)"),
        (lambda: basket(PATHS, 90.0), r"paths has shape \(3, 4\)"),
        (lambda: basket(TWO_ASSETS, 90.0, [1.0]), r"weights has shape \(1,\)"),
        (lambda: basket(TWO_ASSETS, 90.0, [1.0, float("inf")]), "weights="),
        (lambda: basket(TWO_ASSETS, 90.0, average="harmonic"), "average='harmonic'"),
        (lambda: basket(TWO_ASSETS, 90.0, [1.5, -0.5], average="geometric"), "weights="),
        (lambda: basket(TWO_ASSETS, 90.0, [0.5, 0.6], average="geometric"), "weights="),
        (lambda: exchange(torch.ones(3, 4, 3)), r"paths has shape \(3, 4, 3\)"),
        (lambda: exchange(PATHS), r"paths has shape \(3, 4\)"),
    ],
)
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ConfigError, match=name):
        call()
