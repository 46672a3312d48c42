"""`kabuto simulate`: Parquet outputs, the stylized-facts report, and one-line errors."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kabuto.cli.main import app
from kabuto.errors import ConfigError
from kabuto.report.simulation import (
    check_bars,
    config_section,
    first_executing_step,
    render_report,
)
from kabuto.sim.artificial import load_simulation, parse_simulation, simulate
from kabuto.sim.artificial.output import STEP_COLUMNS, write_outputs
from kabuto.staging import MARKER

from helpers import assert_offline

runner = CliRunner()

EXAMPLES = Path(__file__).parent.parent / "examples"
CI2002 = EXAMPLES / "pams_ci2002.json"

# Two markets, FCN agents and a market maker, a pre-open; 400 steps, quick to simulate.
SMALL = """
correlations = [["A", "B", 0.5]]

[[markets]]
name = "A"
tick_size = 0.01
price = 100.0
volatility = 0.001

[[markets]]
name = "B"
tick_size = 0.01
price = 50.0
volatility = 0.001

[[agents]]
name = "fcn"
count = 40
markets = ["A", "B"]
cash = 10000
assets = 50
fundamental_weight = { expon = 1.0 }
chart_weight = { expon = 0.2 }
noise_weight = { expon = 1.0 }
noise_scale = 0.001
time_window = [20, 60]
margin = [0.0, 0.05]

[[agents]]
name = "mm"
type = "market_maker"
markets = ["A"]
spread = 0.002

[[sessions]]
name = "pre-open"
steps = 20
execute = false

[[sessions]]
name = "continuous"
steps = 380
"""


def _write(tmp_path: Path, text: str, name: str = "sim.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _fails_cleanly(result, out: Path, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message
    assert not out.exists() and not out.parent.exists(), "a failed run wrote something"
    return message


@pytest.fixture(scope="module")
def ci2002_run(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("cli") / "nested" / "sim"
    result = runner.invoke(
        app, ["simulate", str(CI2002), "--out", str(out), "--runs", "3", "--seed", "7", "--trades"]
    )
    return out, result


def test_ci2002_end_to_end(ci2002_run):
    out, result = ci2002_run
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "bars.parquet",
        "report.html",
        "steps.parquet",
        "trades.parquet",
    ]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left
    assert MARKER not in result.stdout  # the listing shows the outputs only
    assert "kurtosis_nonzero" in result.stdout and "zero_share" in result.stdout
    assert str(out / "report.html") in result.stdout


def test_ci2002_steps_match_simulate(ci2002_run):
    out, _ = ci2002_run
    steps = pd.read_parquet(out / "steps.parquet")
    assert len(steps) == 3 * 600
    assert list(steps.columns) == list(STEP_COLUMNS)
    direct = simulate(load_simulation(CI2002), seed=7, runs=3, log_trades=True)
    assert steps.groupby("run")["seed"].first().tolist() == direct.seeds
    for run in range(3):
        mine = steps[steps["run"] == run].drop(columns=["run", "seed"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, direct.frame(run), check_dtype=False)
    trades = pd.read_parquet(out / "trades.parquet")
    assert trades.groupby("run").size().tolist() == [len(t) for t in direct.trades]
    assert trades.groupby("run").size().tolist() == steps.groupby("run")["trades"].sum().tolist()
    # bars.parquet: every 10th close from step 100 (the pre-open's 100 steps are skipped)
    bars = pd.read_parquet(out / "bars.parquet")
    assert len(bars) == 3 * 50 and bars["step"].min() == 100 and bars["step"].max() == 590
    panel = direct.panel(10, 2, 100)
    pivot = bars[bars["run"] == 2].pivot(index="date", columns="market", values="close")
    np.testing.assert_array_equal(pivot.to_numpy(), panel.prices)


def test_ci2002_report_is_self_contained_with_the_facts_table(ci2002_run):
    out, _ = ci2002_run
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<table class="numeric facts">' in page
    for statistic in ("return_acf_lag1", "abs_acf_lag20", "kurtosis_nonzero", "zero_share"):
        assert f"<code>{statistic}</code>" in page
    assert 'id="zero-returns"' in page and "nonzero returns only" in page
    assert "FCNAgents" in page and ">100<" in page  # the agent group and its count
    assert page.count('class="kabuto-fig"') == 4
    # what the numbers rest on: the seed given, the mean's error, the Hill estimate's sample
    assert "seed (the run seeds come from it)</th><td>7</td>" in page
    assert '<th scope="col">s.e.</th>' in page
    assert "at most 2 order statistics a run, too few for a stable estimate" in page
    assert_offline(page)


def test_small_toml_two_markets(tmp_path):
    out = tmp_path / "out"
    config = _write(tmp_path, SMALL)
    result = runner.invoke(
        app, ["simulate", str(config), "--out", str(out), "--runs", "2", "--bar", "5"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "bars.parquet",
        "report.html",
        "steps.parquet",
    ]
    steps = pd.read_parquet(out / "steps.parquet")
    assert len(steps) == 2 * 400 * 2
    assert steps["market"].unique().tolist() == ["A", "B"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('<table class="numeric facts">') == 2  # one facts table per market
    assert "<h3>Market A</h3>" in page and "<h3>Market B</h3>" in page
    assert "market maker" in page
    # the second run replaces the first directory as a whole; --orders adds the order log
    again = runner.invoke(
        app, ["simulate", str(config), "--out", str(out), "--runs", "1", "--orders"]
    )
    assert again.exit_code == 0, again.output
    steps = pd.read_parquet(out / "steps.parquet")
    assert steps["run"].max() == 0
    orders = pd.read_parquet(out / "orders.parquet")
    assert list(orders.columns) == [
        "run",
        "seed",
        "step",
        "market",
        "agent",
        "side",
        "price",
        "volume",
        "lifetime",
    ]
    assert len(orders) == steps["orders"].sum()


def test_a_market_name_with_brackets_is_printed_as_written(tmp_path):
    # rich read "[/x]" as a closing tag: a MarkupError traceback after the outputs were written
    config = _write(tmp_path, SMALL.replace('"A"', '"A[/x]"'))
    result = runner.invoke(app, ["simulate", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Stylized facts: A[/x]," in result.stdout


def test_missing_file(tmp_path):
    out = tmp_path / "a" / "out"
    result = runner.invoke(app, ["simulate", str(tmp_path / "nope.json"), "--out", str(out)])
    _fails_cleanly(result, out, "nope.json", "no such config file")


def test_malformed_files(tmp_path):
    out = tmp_path / "a" / "out"
    bad_toml = _write(tmp_path, "markets = [", "bad.toml")
    _fails_cleanly(runner.invoke(app, ["simulate", str(bad_toml), "--out", str(out)]), out, "TOML")
    bad_json = _write(tmp_path, "{oops", "bad.json")
    _fails_cleanly(runner.invoke(app, ["simulate", str(bad_json), "--out", str(out)]), out, "JSON")
    for text in ("[1, 2]", '"simulation"'):  # valid JSON, but not an object
        not_object = _write(tmp_path, text, "list.json")
        result = runner.invoke(app, ["simulate", str(not_object), "--out", str(out)])
        _fails_cleanly(result, out, str(not_object), "JSON object")
    folder = tmp_path / "folder.json"
    folder.mkdir()
    result = runner.invoke(app, ["simulate", str(folder), "--out", str(out)])
    _fails_cleanly(result, out, str(folder), "is a directory")


def test_unknown_keys_are_named(tmp_path):
    out = tmp_path / "a" / "out"
    toml = _write(tmp_path, SMALL.replace('name = "A"', 'name = "A"\nticksize = 1'))
    result = runner.invoke(app, ["simulate", str(toml), "--out", str(out)])
    _fails_cleanly(result, out, "ticksize", str(toml))
    pams = json.loads(CI2002.read_text())
    pams["FCNAgents"]["bogusKey"] = 1
    path = _write(tmp_path, json.dumps(pams), "pams.json")
    _fails_cleanly(runner.invoke(app, ["simulate", str(path), "--out", str(out)]), out, "bogusKey")


def test_policy_groups_say_they_need_python(tmp_path):
    # "pass simulate(..., policies=...)" was advice no command line can follow
    out = tmp_path / "a" / "out"
    policy = '[[agents]]\nname = "AI"\ntype = "policy"\nmarkets = ["A"]\ncash = 1000\n'
    toml = _write(tmp_path, SMALL.replace("[[sessions]]", policy + "\n[[sessions]]", 1))
    result = runner.invoke(app, ["simulate", str(toml), "--out", str(out)])
    _fails_cleanly(result, out, "policy groups ['AI'] decide with Python functions", "from Python")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--runs", "0"], "--runs"),
        (["--bar", "0"], "--bar"),
        (["--seed", "-1"], "--seed"),
        (["--bar", "30"], "lower the bar to at most 21"),  # 16 returns < 20 lags + 3
    ],
)
def test_bad_arguments(tmp_path, args, needle):
    out = tmp_path / "a" / "out"
    result = runner.invoke(app, ["simulate", str(CI2002), "--out", str(out), *args])
    _fails_cleanly(result, out, needle)


def test_write_outputs_columns_and_dtypes(tmp_path):
    config = parse_simulation(tomllib.loads(SMALL))
    result = simulate(config, seed=3, runs=2, log_trades=True)
    out = write_outputs(result, tmp_path / "o", trades=True, bar=4, start_step=20)
    steps = pd.read_parquet(out / "steps.parquet")
    assert list(steps.columns) == list(STEP_COLUMNS)
    ints = ["run", "seed", "step", "volume", "trades", "orders", "depth_bid", "depth_ask"]
    floats = ["price", "fundamental", "best_bid", "best_ask"]
    assert all(steps[c].dtype == np.int64 for c in ints)
    assert all(steps[c].dtype == np.float64 for c in floats)
    assert pd.api.types.is_string_dtype(steps["market"])
    # row order: run, market, step, as SimulationResult.frame
    first = steps.iloc[:400]
    assert (first["run"] == 0).all() and (first["market"] == "A").all()
    assert first["step"].tolist() == list(range(400))
    np.testing.assert_array_equal(first["price"], result.prices[0, :, 0, 0])

    bars = pd.read_parquet(out / "bars.parquet")
    assert list(bars.columns) == [
        "run",
        "seed",
        "bar",
        "step",
        "date",
        "market",
        "close",
        "log_return",
    ]
    assert len(bars) == 2 * 2 * 95  # range(20, 400, 4) has 95 closes
    assert pd.api.types.is_datetime64_any_dtype(bars["date"])
    one = bars[(bars["run"] == 1) & (bars["market"] == "B")]
    np.testing.assert_allclose(
        one["log_return"].to_numpy()[1:], np.diff(np.log(result.prices[1, 20::4, 1, 0]))
    )
    assert np.isnan(one["log_return"].iloc[0])

    trades = pd.read_parquet(out / "trades.parquet")
    assert list(trades.columns) == [
        "run",
        "seed",
        "step",
        "market",
        "price",
        "volume",
        "buyer",
        "seller",
    ]
    assert all(trades[c].dtype == np.int64 for c in ("run", "seed", "step", "volume"))
    assert set(trades["market"]) <= {"A", "B"}
    assert len(trades) == int(result.counts[..., 1].sum())

    # without trades=True (or without a trade log) there is no trades.parquet
    again = write_outputs(result, tmp_path / "p", bar=4, start_step=20)
    assert not (again / "trades.parquet").exists()


def test_write_outputs_rejects_bad_bars_before_writing(tmp_path):
    result = simulate(load_simulation(CI2002), seed=0, runs=1)
    for kwargs in ({"bar": 0}, {"bar": 5, "start_step": 600}):
        with pytest.raises(ConfigError):
            write_outputs(result, tmp_path / "x" / "o", **kwargs)
        assert not (tmp_path / "x").exists()


def test_first_executing_step_and_check_bars():
    config = load_simulation(CI2002)
    assert first_executing_step(config) == 100
    assert check_bars(600, 10, 100, range(1, 21)) == 49
    with pytest.raises(ConfigError, match="even 1-step bars"):
        check_bars(20, 1, 0, range(1, 21))
    closed = parse_simulation(
        tomllib.loads(SMALL.replace("steps = 380", "steps = 380\nexecute = false"))
    )
    with pytest.raises(ConfigError, match="none executes"):
        first_executing_step(closed)


def test_render_report_one_run_and_market_choice():
    config = parse_simulation(tomllib.loads(SMALL))
    result = simulate(config, seed=1, runs=1)
    page = render_report(result, bar=5, start_step=20, market="B")
    assert "<b>Figures:</b> market B" in page
    assert page.index("<h3>Market B</h3>") < page.index("<h3>Market A</h3>")
    with pytest.raises(ConfigError, match="not simulated"):
        render_report(result, bar=5, start_step=20, market="C")


def _group_types(page: str) -> dict[str, str]:
    """Group name -> the type column of the report's agent-group table."""
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td>([^<]*)</td>', page)
    return dict(rows)


def test_config_section_names_each_group_type():
    flow = load_simulation(EXAMPLES / "order_flow_market.toml")
    types = _group_types(config_section(flow, 0))
    assert (types["crowd"], types["ladder"]) == ("order-flow crowd", "market maker")
    assert "a ladder of that many prices a side" in config_section(flow, 0)
    raw = tomllib.loads(SMALL)
    raw["markets"].append(
        {"name": "I", "tick_size": 0.01, "price": 100.0, "components": ["A", "B"]}
    )
    raw["agents"] += [
        {"name": "arb", "type": "arbitrage", "markets": ["I"], "threshold": 1.0},
        {"name": "pol", "type": "policy", "markets": ["A"]},
    ]
    types = _group_types(config_section(parse_simulation(raw), 0))
    assert {k: types[k] for k in ("fcn", "mm", "arb", "pol")} == {
        "fcn": "FCN",
        "mm": "market maker",
        "arb": "arbitrage",
        "pol": "policy",
    }
