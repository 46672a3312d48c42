"""Every shipped example config is valid and builds its strategies."""

from __future__ import annotations

from pathlib import Path

import pytest

from kabuto.experiment.config import load_config
from kabuto.experiment.run import build_strategies, walk_forward

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_builds(path):
    config = load_config(path)
    strategies = build_strategies(config)
    assert len({s.name for s in strategies}) == len(strategies)
    engine = walk_forward(config)
    assert engine.costs_bps != 0  # examples never run without costs
    if any(not s.long_only for s in strategies):
        assert not engine.long_only


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {
        "classical.toml",
        "deep_residual.toml",
        "trader_company.toml",
    }
