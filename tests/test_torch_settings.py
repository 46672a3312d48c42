"""Seeded network construction leaves the caller's random state alone."""

from __future__ import annotations

import torch

from kabuto.torch_settings import seeded_cpu_rng


def test_seeded_cpu_rng_is_reproducible_and_restores_the_callers_state():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded_cpu_rng(7):
        first = torch.nn.Linear(4, 2).weight.detach().clone()
    with seeded_cpu_rng(7):
        second = torch.nn.Linear(4, 2).weight.detach().clone()
    with seeded_cpu_rng(8):
        other = torch.nn.Linear(4, 2).weight.detach().clone()
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    # The caller's stream continues as if nothing had been drawn.
    assert torch.equal(torch.rand(3), expected_next)
    # The same weights as seeding the global generator directly (what the call sites did).
    torch.manual_seed(7)
    assert torch.equal(torch.nn.Linear(4, 2).weight.detach(), first)
