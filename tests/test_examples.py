"""Every shipped example config is valid: backtests build their strategies, simulations run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from kabuto.experiment.config import load_config
from kabuto.experiment.hedge import run_hedge
from kabuto.experiment.hedge_config import load_hedge_config
from kabuto.experiment.run import build_strategies, walk_forward
from kabuto.experiment.sweep import load_sweep_config, plan_trials
from kabuto.sim.artificial import load_simulation, simulate
from kabuto.sim.artificial.facts import stylized_facts

FOLDER = Path(__file__).parents[1] / "examples"


def _with_table(table: str) -> list[Path]:
    return sorted(p for p in FOLDER.glob("*.toml") if table in tomllib.loads(p.read_text()))


SIMULATIONS = _with_table("markets")
HEDGES = _with_table("hedger")
SWEEPS = _with_table("sweep")
EXAMPLES = sorted(set(FOLDER.glob("*.toml")) - set(SIMULATIONS) - set(HEDGES) - set(SWEEPS))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_builds(path):
    config = load_config(path)
    strategies = build_strategies(config)
    assert len({s.name for s in strategies}) == len(strategies)
    engine = walk_forward(config)
    assert engine.costs_bps != 0  # examples never run without costs
    if any(not s.long_only for s in strategies):
        assert not engine.long_only


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_sweep_example_plans_its_trials(path):
    trials = plan_trials(load_sweep_config(path))
    assert len(trials) > 1 and len({t.name for t in trials}) == len(trials)
    for trial in trials:
        assert walk_forward(trial.config).costs_bps != 0  # examples never run without costs


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {
        "classical.toml",
        "deep_residual.toml",
        "trader_company.toml",
    }


@pytest.mark.parametrize("path", SIMULATIONS, ids=[p.name for p in SIMULATIONS])
def test_simulation_examples_run(path):
    result = simulate(load_simulation(path), seed=1)
    closes = result.prices[0, :, :, 0]
    assert np.isfinite(closes).all() and result.counts[0, :, :, 1].sum() > 100  # trades


@pytest.mark.parametrize("path", HEDGES, ids=[p.name for p in HEDGES])
def test_hedge_examples_run_when_shrunk(path):
    config = load_hedge_config(path)
    assert config.hedger.cost > 0  # examples never run without costs
    small = config.model_copy(
        update={
            "hedger": config.hedger.model_copy(update={"train_steps": 3, "batch_paths": 500}),
            "evaluation": config.evaluation.model_copy(update={"paths": 2_000}),
        }
    )
    run = run_hedge(small, None)
    assert np.isfinite(run.risk_table["price"]).all()


def test_the_calibrated_market_shows_the_stylized_facts():
    # The header of examples/artificial_market.toml reports these 50 runs (bars of 50 steps
    # from the first continuous step); its parameters were tuned on other seeds.
    result = simulate(load_simulation(FOLDER / "artificial_market.toml"), seed=0, runs=50, n_jobs=2)
    facts = stylized_facts(result.prices[:, :, 0, 0], bar=50, start=100)
    assert abs(np.mean(facts.return_acf[:, 0])) < 0.05
    assert 0.1 < np.mean(facts.abs_acf[:, 0]) < 0.3
    assert np.mean(facts.abs_acf[:, 19]) > 0.05  # |r| stays correlated for 20 bars
    assert np.mean(facts.kurtosis_nonzero) > 3 and np.mean(facts.zero_share) < 0.05
