"""The blocked ReLU network equals autograd of the same `torch.nn` layers, and its activation
pool never lets two graphs share memory."""

from __future__ import annotations

import copy
import itertools
import pickle

import pytest
import torch
from torch import nn

from kabuto.hedging.blocked_mlp import ActivationPool, blocked_relu_mlp
from kabuto.hedging.hedger import MLPPolicy, RecurrentPolicy, hedge_features


def _layers(sizes: list[int], seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    modules: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes[:-1]):
        modules += [nn.Linear(a, b), nn.ReLU()]
    modules.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*modules).double()


def _params(net: nn.Sequential) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    linear = [m for m in net if isinstance(m, nn.Linear)]
    return [m.weight for m in linear], [m.bias for m in linear]


@pytest.mark.parametrize(
    ("sizes", "rows", "block"),
    [
        ([3, 32, 32, 32, 32, 1], 1000, 256),  # the hedger's MLP; rows not a multiple of block
        ([4, 32, 32, 2], 300, 1024),  # band network fed the previous holding; one short block
        ([5, 16, 8, 3], 513, 128),  # unequal widths
        ([2, 7, 1], 1, 64),  # one row
    ],
)
def test_equals_autograd_of_the_same_layers(sizes, rows, block):
    net = _layers(sizes, seed=len(sizes) + rows)
    weights, biases = _params(net)
    gen = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, sizes[0], dtype=torch.float64, generator=gen)
    upstream = torch.randn(rows, sizes[-1], dtype=torch.float64, generator=gen)

    x_ref = x.clone().requires_grad_(True)
    out_ref = net(x_ref)
    grads_ref = torch.autograd.grad(out_ref, [x_ref, *weights, *biases], upstream)

    x_new = x.clone().requires_grad_(True)
    out_new = blocked_relu_mlp(x_new, weights, biases, block)
    grads_new = torch.autograd.grad(out_new, [x_new, *weights, *biases], upstream)

    torch.testing.assert_close(out_new, out_ref, rtol=1e-12, atol=1e-12)
    for new, ref in zip(grads_new, grads_ref, strict=True):
        torch.testing.assert_close(new, ref, rtol=1e-10, atol=1e-12)


def test_pool_hands_memory_only_to_a_graph_that_is_done_with_it():
    net = _layers([3, 8, 8, 1], seed=1)
    weights, biases = _params(net)
    pool = ActivationPool()
    x1, x2 = torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 3, dtype=torch.float64)
    # Two graphs alive at once (as in a recurrent policy): both must keep their own activations.
    out1 = blocked_relu_mlp(x1, weights, biases, 16, pool)
    out2 = blocked_relu_mlp(x2, weights, biases, 16, pool)
    g1 = torch.autograd.grad(out1.sum() + 2.0 * out2.sum(), weights)
    r1 = torch.autograd.grad(net(x1).sum() + 2.0 * net(x2).sum(), weights)
    for new, ref in zip(g1, r1, strict=True):
        torch.testing.assert_close(new, ref)
    # Both sets came back; the next pass of that shape reuses one instead of allocating.
    assert len(pool._spare) == 2
    spare = {id(a) for s in pool._spare for a in s}
    taken = pool.take(x1, 50, [8, 8])
    assert {id(a) for a in taken} <= spare
    assert pool.take(x1, 51, [8, 8])[0].shape == (51, 8)  # other shapes get fresh memory


def test_a_second_backward_through_the_same_graph_is_refused():
    net = _layers([3, 8, 1], seed=2)
    weights, biases = _params(net)
    out = blocked_relu_mlp(torch.randn(10, 3, dtype=torch.float64), weights, biases, 4)
    out.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="second backward"):
        out.sum().backward()


def test_pool_keeps_at_most_max_sets_and_copies_start_empty():
    pool = ActivationPool(max_sets=2)
    for rows in (1, 2, 3):
        pool.give([torch.zeros(rows, 4)])
    assert [s[0].shape[0] for s in pool._spare] == [2, 3]
    assert copy.deepcopy(pool)._spare == []
    assert pickle.loads(pickle.dumps(pool))._spare == []


@pytest.mark.parametrize("policy_cls", [MLPPolicy, RecurrentPolicy])
def test_policy_training_pass_equals_its_evaluation_pass(policy_cls):
    torch.manual_seed(0)
    prices = 100.0 * torch.exp(0.01 * torch.randn(3000, 6).cumsum(dim=1))
    prices = torch.cat([torch.full((3000, 1), 100.0), prices], dim=1)
    features = hedge_features(prices, strike=100.0, maturity=0.1, volatility=0.2)
    policy = policy_cls()
    with torch.no_grad():
        evaluated = policy(features)
    trained = policy(features)  # grad enabled: the blocked path (18,000 rows, several blocks)
    assert trained.requires_grad
    torch.testing.assert_close(trained.detach(), evaluated, rtol=1e-5, atol=1e-6)
    copy.deepcopy(policy)  # the network's pool does not get in the way of copies


def test_a_fitted_hedger_keeps_no_training_buffers():
    from kabuto.hedging import DeepHedger
    from kabuto.sim.paths import gbm_paths

    prices = gbm_paths(2000, 10, 0.1, 1.0, 0.0, 0.2, seed=0)
    hedger = DeepHedger(strike=1.0, maturity=0.1, policy="mlp", epochs=2, num_threads=1)
    hedger.fit(prices, volatility=0.2)
    assert hedger.policy_.net._pool._spare == []
