"""A market whose prices run off the book's range is reported, not silently summarised.

The book clips limit prices to ``NO_BAND`` ticks and drops orders below one tick, so a
fundamental volatility set like an annual one (1.0 instead of 0.0001 per step) used to give
prices pinned at 4.6e16 and a stylized-facts table that looked like any other. `simulate` now
warns once (`kabuto.sim.artificial.runner.runaway_note`), the CLI prints it as one line and the
report shows it as a caveat.
"""

from __future__ import annotations

import json
import re
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kabuto.cli.main import app
from kabuto.errors import KabutoWarning
from kabuto.report.simulation import (
    ALL_RAN_AWAY,
    DEFAULT_LAGS,
    facts_by_market,
    first_executing_step,
    render_report,
)
from kabuto.sim.artificial import SimulationConfig, parse_simulation, simulate
from kabuto.sim.artificial.engine import CLOSE, FUNDAMENTAL, NO_BAND
from kabuto.sim.artificial.facts import stylized_facts
from kabuto.sim.artificial.pams import read_pams_config
from kabuto.sim.artificial.runner import runaway_note, runaway_runs

runner = CliRunner()

TICK = 0.01
CI2002 = Path(__file__).resolve().parents[1] / "examples" / "pams_ci2002.json"
LIMIT = NO_BAND * TICK  # 4.6e16: the price every higher order is clipped to

# Two markets, 20 FCN agents spread over them, a pre-open and 280 continuous steps. "Calm" keeps
# the example's per-step volatility; "Wild" gets {wild}, per step.
TOML = """
[[markets]]
name = "Calm"
tick_size = 0.01
price = 100.0
volatility = 0.0001

[[markets]]
name = "Wild"
tick_size = 0.01
price = 100.0
volatility = {wild}

[[agents]]
name = "fcn"
count = 20
markets = ["Calm", "Wild"]
cash = 100000
assets = 50
fundamental_weight = {{ expon = 1.0 }}
chart_weight = {{ expon = 0.5 }}
noise_weight = {{ expon = 1.0 }}
noise_scale = 0.002
time_window = [10, 30]
margin = [0.0, 0.02]

[[sessions]]
name = "pre-open"
steps = 20
execute = false

[[sessions]]
name = "continuous"
steps = 280
"""


def two_markets(wild: float) -> SimulationConfig:
    return parse_simulation(tomllib.loads(TOML.format(wild=wild)))


def _runaway(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, KabutoWarning)]


def test_a_per_step_volatility_set_like_an_annual_one_warns_once():
    # 2.0 a step: the log fundamental's sd is 2 * sqrt(300) ~ 35 by the end, so it leaves
    # [one tick, LIMIT / 4] in every run, and the price follows it into the clip
    with pytest.warns(KabutoWarning) as record:
        result = simulate(two_markets(wild=2.0), seed=0, runs=3)
    notes = _runaway(record)
    assert len(notes) == 1, notes
    note = notes[0]
    assert runaway_note(result) == note
    assert "Market 'Wild'" in note and "'Calm'" not in note
    assert "in 3 of 3 run(s)" in note
    assert "volatility = 2 is per step" in note and "0.0001" in note
    assert "meaningless" in note
    # the step named is the first where run 0's Wild market left the book's range
    match = re.search(r"first in run 0, seed \d+, at step (\d+)\)", note)
    assert match, note
    step = int(match.group(1))
    wild = result.prices[0, :, 1]
    fundamental, close = wild[:, FUNDAMENTAL], wild[:, CLOSE]
    out = (fundamental < TICK) | (fundamental > LIMIT / 4) | (close >= LIMIT / 4)
    assert out[step] and not out[:step].any()
    # the report carries the same text as a caveat
    page = render_report(result, bar=5, start_step=first_executing_step(result.config))
    assert 'id="runaway-caveat"' in page and "in 3 of 3 run(s)" in page


def test_a_sane_volatility_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", KabutoWarning)
        result = simulate(two_markets(wild=0.001), seed=0, runs=3)
        page = render_report(result, bar=5, start_step=first_executing_step(result.config))
    assert np.isfinite(result.prices[..., FUNDAMENTAL]).all()
    assert runaway_note(result) is None
    assert 'id="runaway-caveat"' not in page


def test_the_cli_prints_one_warning_line_and_still_succeeds(tmp_path: Path):
    config = tmp_path / "wild.toml"
    config.write_text(TOML.format(wild=2.0))
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["simulate", str(config), "--out", str(out), "--runs", "2", "--bar", "5"]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    assert "Market 'Wild'" in lines[0] and "in 2 of 2 run(s)" in lines[0]
    assert "volatility = 2 is per step" in lines[0] and "meaningless" in lines[0]
    assert (out / "steps.parquet").exists() and (out / "report.html").exists()
    assert 'id="runaway-caveat"' in (out / "report.html").read_text(encoding="utf-8")


def test_a_pams_config_is_told_its_own_key(tmp_path: Path):
    # PAMS's CI2002 sample with a fundamental volatility of 2.0 a step: the note names the key
    # the JSON file has (Market.fundamentalVolatility), not kabuto's `volatility`
    pams = json.loads(CI2002.read_text())
    pams["Market"]["fundamentalVolatility"] = 2.0
    pams["simulation"]["sessions"][1]["iterationSteps"] = 200
    with pytest.warns(KabutoWarning) as record:
        result = simulate(read_pams_config(pams), seed=0, runs=1)
    (note,) = _runaway(record)
    assert "Market.fundamentalVolatility = 2 is per step, not annual" in note, note
    assert "volatility = 2" not in note.replace("fundamentalVolatility = 2", "")
    assert runaway_note(result) == note


def chased_market() -> dict:
    """One market ("Calm") whose chart-following agents (chart weight as large as the
    fundamental one) push the price off a calm fundamental in some runs and not in others."""
    raw = tomllib.loads(TOML.format(wild=0.0001))
    raw["markets"] = raw["markets"][:1]
    raw["agents"][0].update(
        markets=["Calm"],
        count=30,
        chart_weight={"expon": 1.0},
        noise_scale=0.001,
        time_window=[10, 50],
        margin=[0.0, 0.01],
    )
    raw["sessions"][1]["steps"] = 1000
    return raw


def test_the_stylized_facts_leave_out_the_runs_that_ran_away():
    config = parse_simulation(chased_market())
    with pytest.warns(KabutoWarning, match="the agents pushed the price off it"):
        result = simulate(config, seed=7, runs=2)
    np.testing.assert_array_equal(runaway_runs(result), [[False], [True]])
    start = first_executing_step(config)
    facts = facts_by_market(result, bar=5, start_step=start)["Calm"]
    sane = stylized_facts(result.prices[:1, :, 0, CLOSE], 5, start, DEFAULT_LAGS)
    assert facts.n_runs == 1
    np.testing.assert_array_equal(facts.kurtosis, sane.kurtosis)
    np.testing.assert_array_equal(facts.abs_acf, sane.abs_acf)
    page = render_report(result, bar=5, start_step=start)
    assert "leaving out runs where the market ran away" in page


def test_a_market_that_ran_away_in_every_run_has_no_facts(tmp_path: Path):
    with pytest.warns(KabutoWarning):
        result = simulate(two_markets(wild=2.0), seed=0, runs=2)
    facts = facts_by_market(result, bar=5, start_step=first_executing_step(result.config))
    assert facts["Wild"] is None and facts["Calm"].n_runs == 2
    page = render_report(result, bar=5, start_step=20, market="Wild")
    assert ALL_RAN_AWAY in page and 'id="autocorrelation"' not in page
    config = tmp_path / "wild.toml"
    config.write_text(TOML.format(wild=2.0))
    shown = runner.invoke(
        app, ["simulate", str(config), "--out", str(tmp_path / "o"), "--runs", "2", "--bar", "5"]
    )
    assert shown.exit_code == 0, shown.output
    assert f"Stylized facts: Wild: {ALL_RAN_AWAY}" in shown.stdout
    assert "Stylized facts: Calm, 2 run(s), " in shown.stdout


def test_a_time_window_so_long_the_expected_price_overflows_trades_nothing():
    # P_hat = P exp(r tau) overflows for tau = 1e30: a buy beyond the book's price limit is
    # dropped (numba used to wrap the infinite price to an integer), as a sell below one tick
    # is, so nothing trades and the facts are undefined rather than invented
    raw = chased_market()
    raw["agents"][0]["time_window"] = [1e30, 1e31]
    config = parse_simulation(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KabutoWarning)
        result = simulate(config, seed=0, runs=1)
    assert (result.counts[..., 0] == 0).all()  # no volume
    assert (result.prices[0, :, 0, CLOSE] == 100.0).all()
    facts = facts_by_market(result, bar=5, start_step=first_executing_step(config))["Calm"]
    summary = facts.summary()
    assert summary.loc["zero_share", "mean"] == 1.0  # every return is 0
    assert summary["n_nan"].drop("zero_share").eq(1).all()
