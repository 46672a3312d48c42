"""Sweeps: a grid's trials, each backtested alone and filed in a run store, ranked together."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kabuto.backtest import WalkForward
from kabuto.cli.main import app
from kabuto.errors import ConfigError, KabutoError, StoreError
from kabuto.evaluation.overfitting import probability_of_backtest_overfitting
from kabuto.experiment import executors
from kabuto.experiment import store as store_module
from kabuto.experiment import sweep as sweep_module
from kabuto.experiment.config import parse_config
from kabuto.experiment.run import run_config
from kabuto.experiment.store import RunStore, run_key
from kabuto.experiment.sweep import (
    SweepConfig,
    grid_paths,
    load_sweep_config,
    plan_trials,
    run_sweep,
)
from kabuto.report.html import scenario_note
from kabuto.sim import correlated_gbm
from kabuto.strategies import make_strategy
from kabuto.strict_config import validate

runner = CliRunner()

BASE = {
    "data": {"source": "gbm", "n_assets": 5, "n_days": 500, "seed": 4},
    "backtest": {"rebalance": "monthly", "retrain": "never", "costs_bps": 10.0},
    "report": {"n_boot": 200, "benchmark_strategy": "EqualWeight"},
    "strategies": [
        {"name": "equal_weight"},
        {"name": "min_variance", "lookback": 60},
        {"name": "inverse_volatility", "lookback": 40, "label": "IV [short]"},
    ],
}


def sweep_config(grid: dict, **settings) -> SweepConfig:
    return validate(SweepConfig, BASE | {"sweep": {"grid": grid, **settings}}, source="test")


GRID = {
    "backtest": {"costs_bps": [5.0, 20.0]},
    "strategies": {"min_variance": {"lookback": [60, 120]}},
}


def test_grid_written_nested_or_dotted_gives_the_same_paths():
    nested = grid_paths(GRID)
    dotted = grid_paths(
        {"backtest.costs_bps": [5.0, 20.0], "strategies.min_variance.lookback": [60, 120]}
    )
    assert (
        nested
        == dotted
        == {
            ("backtest", "costs_bps"): [5.0, 20.0],
            ("strategies", "min_variance", "lookback"): [60, 120],
        }
    )
    # below the top level a key is taken whole: a label with a dot in it
    assert grid_paths({"strategies": {"v1.2": {"lookback": [5]}}}) == {
        ("strategies", "v1.2", "lookback"): [5]
    }


@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        ({"backtest.costs_bps": 5.0}, "expected a non-empty list"),
        ({"backtest.costs_bps": []}, "expected a non-empty list"),
        ({"backtest": {}}, "empty table"),
        ({"backtest.costs_bps": [5.0, 5.0]}, "lists a value twice"),
        ({"backtest.cost": [5.0]}, "not a backtest setting"),
        ({"data.source": ["gbm", "garch"]}, "cannot be swept"),
        # a simulated market's n_days is its calendar; a file's format follows its path
        ({"data.n_days": [400, 500]}, "sweep.grid.data.n_days cannot be swept"),
        ({"data.format": ["csv", "parquet"]}, "follows its name; sweep data.path"),
        ({"backtest.start": ["2001-01-02", "2001-02-01"]}, "cannot be swept"),
        ({"backtest": {"end": ["2001-06-01"]}}, "on the same dates"),
        ({"report.n_boot": [100, 200]}, "report settings change no trial"),
        ({"strategies.min_variance": [1, 2]}, "strategies.<strategy>.<setting>"),
        ({"strategies.min_variance.label": ["a", "b"]}, "cannot be swept"),
        ({"engine.speed": [1]}, "starts with data, backtest or strategies"),
    ],
)
def test_malformed_grids_are_refused_naming_the_key(grid, needle):
    with pytest.raises(ConfigError, match=r"sweep\.grid") as caught:
        grid_paths(grid)
    assert needle in str(caught.value)


def test_trials_cross_shared_settings_with_each_strategys_own():
    trials = plan_trials(sweep_config(GRID))
    # 2 cost levels x (1 equal weight + 2 lookbacks + 1 inverse volatility)
    assert [t.name for t in trials] == [
        "EqualWeight [costs_bps=5.0]",
        "MinimumVariance [costs_bps=5.0, lookback=60]",
        "MinimumVariance [costs_bps=5.0, lookback=120]",
        "IV [short] [costs_bps=5.0]",
        "EqualWeight [costs_bps=20.0]",
        "MinimumVariance [costs_bps=20.0, lookback=60]",
        "MinimumVariance [costs_bps=20.0, lookback=120]",
        "IV [short] [costs_bps=20.0]",
    ]
    mv = trials[2]
    assert mv.strategy == "MinimumVariance"
    assert mv.values == {"backtest.costs_bps": 5.0, "strategies.min_variance.lookback": 120}
    assert mv.scenario == {"backtest.costs_bps": 5.0}  # the cost level is the market, not a pick
    assert mv.config.backtest.costs_bps == 5.0
    assert mv.config.strategies == [
        {"name": "min_variance", "lookback": 120, "label": "MinimumVariance"}
    ]
    # unset start: every trial starts where all strategies have their history (equal weight's
    # default lookback, 252 returns), as one backtest of them all would
    dates = correlated_gbm(5, 500, seed=4).dates
    assert {t.config.backtest.start for t in trials} == {str(dates[252].date())}


def test_a_strategy_is_named_by_label_own_name_or_registry_name_and_only_one():
    by_label = plan_trials(sweep_config({"strategies": {"IV [short]": {"lookback": [40, 80]}}}))
    assert [t.name for t in by_label][-2:] == [
        "IV [short] [lookback=40]",
        "IV [short] [lookback=80]",
    ]
    own = plan_trials(sweep_config({"strategies": {"MinimumVariance": {"lookback": [60, 80]}}}))
    assert len(own) == 4
    with pytest.raises(ConfigError, match="no strategy is called 'inverse_volatility'"):
        # labelled: its registry name does not name it
        plan_trials(sweep_config({"strategies": {"inverse_volatility": {"lookback": [5]}}}))
    twice = BASE | {"strategies": [*BASE["strategies"], {"name": "hrp", "label": "min_variance"}]}
    config = validate(
        SweepConfig, twice | {"sweep": {"grid": {"strategies.min_variance.lookback": [5]}}}
    )
    with pytest.raises(ConfigError, match="'min_variance' names 2 strategies"):
        plan_trials(config)


def test_too_many_trials_are_refused(monkeypatch):
    monkeypatch.setattr(sweep_module, "MAX_TRIALS", 7)
    with pytest.raises(ConfigError, match="makes 8 trials, more than 7"):
        plan_trials(sweep_config(GRID))


def test_each_trial_is_the_backtest_of_its_strategy_and_settings(tmp_path):
    outputs = run_sweep(sweep_config(GRID), store=tmp_path / "store")
    panel = correlated_gbm(5, 500, seed=4)
    start = str(panel.dates[252].date())
    for trial in outputs.trials:
        if not trial.name.startswith("MinimumVariance"):
            continue
        engine = WalkForward(
            start=start,
            rebalance="monthly",
            retrain=None,
            costs_bps=trial.values["backtest.costs_bps"],
        )
        strategy = make_strategy(
            "min_variance", lookback=trial.values["strategies.min_variance.lookback"]
        )
        expected = engine.run(panel, [strategy])["MinimumVariance"]
        got = outputs.result[trial.name]
        for series in ("net_returns", "turnover"):
            pd.testing.assert_series_equal(
                getattr(got, series), getattr(expected, series), check_names=False, check_exact=True
            )
    # the cost level moves the returns and nothing else
    low, high = (
        outputs.result[f"MinimumVariance [costs_bps={c}, lookback=60]"] for c in (5.0, 20.0)
    )
    np.testing.assert_array_equal(low.gross_returns, high.gross_returns)
    assert (high.costs.sum() / low.costs.sum()) == pytest.approx(4.0, rel=0.01)


def _stored_net_returns(store: RunStore, key: str) -> np.ndarray:
    """A trial's net returns as its store's parquet file holds them (not the sweep's result)."""
    return pd.read_parquet(store.path(key) / "returns.parquet")["net"].to_numpy()


def test_trials_are_ranked_within_each_cost_level_every_trial_counted(tmp_path):
    store = RunStore(tmp_path / "store")
    outputs = run_sweep(sweep_config(GRID), store=store)
    board = outputs.leaderboard
    assert len(board) == 8
    assert board.attrs["scenario_keys"] == ["backtest.costs_bps"]
    by_name = dict(zip((t.name for t in outputs.trials), outputs.keys, strict=True))
    for cost, scenario in zip((5.0, 20.0), board.attrs["scenarios"], strict=True):
        members = [t.name for t in outputs.trials if t.scenario["backtest.costs_bps"] == cost]
        assert scenario["values"] == {"backtest.costs_bps": cost}
        assert scenario["n_trials"] == len(members) == 4
        assert scenario["benchmark_strategy"] == f"EqualWeight [costs_bps={cost}]"
        # PBO over this cost level's trials alone, from the returns the store filed
        net = np.column_stack([_stored_net_returns(store, by_name[m]) for m in members])
        expected = probability_of_backtest_overfitting(net, scenario["pbo_blocks"]).pbo
        assert scenario["pbo"] == pytest.approx(expected, abs=1e-12)
        # the Sharpe difference is against the benchmark's trial at the same cost level
        bench = board.loc[f"EqualWeight [costs_bps={cost}]"]
        other = board.loc[f"MinimumVariance [costs_bps={cost}, lookback=60]"]
        assert np.isnan(bench["sharpe_diff"])
        assert other["sharpe_diff"] == pytest.approx(other["sharpe"] - bench["sharpe"], abs=1e-9)
    assert list(board.index[:4]) == [n for n in board.index if "costs_bps=5.0" in n]
    table = outputs.table.set_index("trial")
    assert table.loc["IV [short] [costs_bps=20.0]", "run"] == outputs.keys[-1]
    assert pd.isna(table.loc["EqualWeight [costs_bps=5.0]", "strategies.min_variance.lookback"])
    assert table["sharpe"].to_dict() == board["sharpe"].to_dict()
    note = scenario_note(board)
    pbo = board.attrs["scenarios"][0]["pbo"]
    assert f"PBO {pbo:.2f} (pure noise: 0.50); costs_bps=20.0: 4 trials" in note


def test_one_scenario_is_one_board_counting_every_trial(tmp_path):
    grid = {
        "strategies": {
            "min_variance": {"lookback": [60, 120]},
            "IV [short]": {"lookback": [40, 80]},
        }
    }
    outputs = run_sweep(sweep_config(grid), store=tmp_path / "store")
    attrs = outputs.leaderboard.attrs
    assert "scenarios" not in attrs and attrs["n_trials"] == attrs["pbo_strategies"] == 5
    assert attrs["benchmark_strategy"] == "EqualWeight"


def test_trials_repeating_another_exactly_are_ranked_once(tmp_path):
    # no strategy here learns, so the retrain schedule changes no returns
    outputs = run_sweep(
        sweep_config({"backtest.retrain": ["yearly", "never"]}),
        tmp_path / "out",
        store=tmp_path / "s",
    )
    assert outputs.same_as == {
        f"{name} [retrain=never]": f"{name} [retrain=yearly]"
        for name in ("EqualWeight", "MinimumVariance", "IV [short]")
    }
    assert len(outputs.leaderboard) == 3 and outputs.leaderboard.attrs["n_trials"] == 3
    assert set(outputs.result.names) == {
        f"{n} [retrain=yearly]" for n in ("EqualWeight", "MinimumVariance", "IV [short]")
    }
    written = pd.read_csv(tmp_path / "out" / "sweep.csv").set_index("trial")
    assert written.loc["EqualWeight [retrain=never]", "same_as"] == "EqualWeight [retrain=yearly]"
    assert pd.isna(written.loc["EqualWeight [retrain=never]", "sharpe"])


def test_a_one_value_grid_reproduces_the_backtest_of_the_config(tmp_path):
    outputs = run_sweep(sweep_config({"backtest.costs_bps": [10.0]}), store=tmp_path / "store")
    base = run_config(parse_config(BASE))
    for name, record in base.result.strategies.items():
        trial = outputs.result[f"{name} [costs_bps=10.0]"]
        pd.testing.assert_series_equal(
            trial.net_returns, record.net_returns, check_names=False, check_exact=True
        )
        pd.testing.assert_frame_equal(trial.target_weights, record.target_weights, check_exact=True)


def test_the_store_keeps_trials_and_a_rerun_runs_only_the_new_ones(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "store")
    first = run_sweep(sweep_config(GRID), store=store)
    assert first.reused == 0 and all(store.has(k) for k in first.keys)

    ran = []
    real = executors.run_trial
    monkeypatch.setattr(executors, "run_trial", lambda call: ran.append(call.name) or real(call))
    again = run_sweep(sweep_config(GRID), store=store)
    assert ran == [] and again.reused == 8
    pd.testing.assert_frame_equal(again.leaderboard, first.leaderboard, check_exact=True)

    wider = {**GRID, "strategies": {"min_variance": {"lookback": [60, 120, 180]}}}
    more = run_sweep(sweep_config(wider), store=store)
    assert more.reused == 8
    assert ran == [f"MinimumVariance [costs_bps={c}, lookback=180]" for c in (5.0, 20.0)]
    # a lookback longer than every other strategy's moves the common start: all trials new
    ran.clear()
    longer = {**GRID, "strategies": {"min_variance": {"lookback": [60, 300]}}}
    assert run_sweep(sweep_config(longer), store=store).reused == 0 and len(ran) == 8
    # another thread count is another run (torch's sums may differ)
    ran.clear()
    assert run_sweep(sweep_config(GRID, threads=2), store=store).reused == 0 and len(ran) == 8


def test_run_keys_follow_what_the_numbers_depend_on(tmp_path, monkeypatch):
    config = parse_config(BASE)
    key = run_key(config, 1)
    explicit = parse_config(BASE | {"backtest": BASE["backtest"] | {"long_only": True}})
    assert run_key(explicit, 1) == key  # a default written out is the same run
    defaults = [{"name": "equal_weight", "lookback": 252}, *BASE["strategies"][1:]]
    defaults[1] = defaults[1] | {"covariance": "sample"}
    assert run_key(parse_config(BASE | {"strategies": defaults}), 1) == key  # a strategy's too
    other = parse_config(BASE | {"backtest": BASE["backtest"] | {"costs_bps": 11.0}})
    assert run_key(other, 1) != key
    assert run_key(config, 2) != key
    retitled = parse_config(BASE | {"report": {"title": "another"}})
    assert run_key(retitled, 1) == key  # the report changes no returns
    # kabuto's code (or a library's version) changed: another run
    monkeypatch.setattr(store_module, "_code_fingerprint", lambda: b"edited")
    assert run_key(config, 1) != key
    monkeypatch.undo()
    data = tmp_path / "prices.csv"
    correlated_gbm(3, 300, seed=1).to_frame().rename_axis("date").to_csv(data)
    on_file = parse_config(BASE | {"data": {"source": "file", "path": str(data)}})
    before = run_key(on_file, 1)
    data.write_text(data.read_text().replace("2", "3", 1))  # same name, other contents
    assert run_key(on_file, 1) != before


def test_a_filed_run_is_never_replaced(tmp_path):
    store = RunStore(tmp_path / "store")
    outputs = run_sweep(sweep_config({"backtest.costs_bps": [5.0]}), store=store)
    key, trial = outputs.keys[0], outputs.trials[0]
    info = (store.path(key) / "run.json").read_text()
    # a second writer of the key (another sweep sharing the store) succeeds and changes nothing
    store.save(key, trial.config, outputs.result, name="another", threads=1, seconds=0.0)
    assert (store.path(key) / "run.json").read_text() == info
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []


def test_a_damaged_stored_run_names_the_directory_to_delete(tmp_path):
    store = RunStore(tmp_path / "store")
    outputs = run_sweep(sweep_config({"backtest.costs_bps": [5.0]}), store=store)
    key = outputs.keys[0]
    (store.path(key) / "result.pickle").write_bytes(b"not a pickle")
    with pytest.raises(StoreError, match=f"delete {store.path(key)}"):
        store.load(key)
    (store.path(key) / "result.pickle").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(StoreError, match="holds a dict"):
        store.load(key)
    (store.path(key) / "run.json").write_text("{}")
    with pytest.raises(StoreError, match="KeyError"):
        store.runs()


#: A sweep whose last trial fails when it runs, not before: the eigen portfolio checks its
#: component against the number of assets when it fits.
FAILS_LATE = BASE | {
    "backtest": BASE["backtest"] | {"long_only": False},
    "strategies": [{"name": "equal_weight"}, {"name": "eigen"}],
    "sweep": {"grid": {"strategies.eigen.component": [0, 7]}},
}


def test_a_failing_trial_keeps_the_finished_ones_and_writes_no_outputs(tmp_path):
    config = validate(SweepConfig, FAILS_LATE)
    with pytest.raises(ConfigError, match=r"sweep trial 'EigenPortfolio \[component=7\]': "):
        run_sweep(config, tmp_path / "out", store=tmp_path / "store")
    assert set(RunStore(tmp_path / "store").runs()["name"]) == {
        "EqualWeight",
        "EigenPortfolio [component=0]",
    }
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("grid", "base", "needle"),
    [
        ({"backtest.costs_bps": [1, 1.0]}, BASE, "are the same backtest"),
        (
            {"backtest.costs_bps": [5.0], "backtest": {"costs_bps": [10.0]}},
            BASE,
            "written twice",
        ),
        (
            {
                "strategies": {
                    "min_variance": {"lookback": [5]},
                    "MinimumVariance": {"lookback": [6]},
                }
            },
            BASE,
            "already swept under another of its names",
        ),
        (
            {"backtest.costs_bps": [5.0]},
            BASE
            | {"strategies": [{"name": "min_variance"}, {"name": "min_variance", "lookback": 9}]},
            "two strategies are named 'MinimumVariance'",
        ),
        (
            {"backtest.costs_bps": [5.0]},
            BASE | {"report": {"benchmark_strategy": "EqualWeigth"}},
            "EqualWeigth",
        ),
        (
            {"strategies.min_variance.lookback": [60, 300]},
            BASE | {"backtest": BASE["backtest"] | {"start": "2001-01-02"}},
            "fewer than the 300 returns of history",
        ),
        (
            {"strategies.min_variance.lookback": [60, 499]},
            BASE,
            "need 499 returns of history, and its data has 500 dates",
        ),
        (
            {"strategies.MV.lookback": [60, 120]},
            BASE
            | {
                "strategies": [
                    {"name": "min_variance", "lookback": 40, "label": "MV [lookback=60]"},
                    {"name": "min_variance", "label": "MV"},
                ]
            },
            "two sweep trials are named 'MV \\[lookback=60\\]'",
        ),
        (
            {"strategies.mean_variance.risk_aversion": [1, 1.0]},
            BASE | {"report": {"n_boot": 200}, "strategies": [{"name": "mean_variance"}]},
            "are the same backtest",
        ),
        (
            {"backtest.costs_bps": [5.0]},
            BASE | {"backtest": BASE["backtest"] | {"end": "2000-03-01"}},
            "no dates to trade",
        ),
        (
            {"backtest.costs_bps": [5.0, {"AAPL": 5.0}]},
            BASE,
            r"sweep trial 'EqualWeight \[costs_bps=\{\"AAPL\":5.0\}\]': costs_bps names unknown",
        ),
        (
            {"strategies.min_variance.lookback": [60, -3]},
            BASE,
            "sweep trial 'MinimumVariance \\[lookback=-3\\]': MinimumVariance: lookback=-3",
        ),
    ],
)
def test_bad_sweeps_fail_before_any_trial_runs(tmp_path, grid, base, needle):
    config = validate(SweepConfig, base | {"sweep": {"grid": grid}}, source="test")
    with pytest.raises(ConfigError, match=needle):
        run_sweep(config, store=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_a_huge_grid_is_counted_not_built():
    values = list(range(400))
    grid = {
        "backtest": {
            "rebalance": [v + 1 for v in values],
            "max_leverage": [v + 1.0 for v in values],
        }
    }
    grid["strategies.min_variance.lookback"] = [v + 2 for v in values]
    # 400 x 400 shared values x (1 + 400 + 1) trials each
    with pytest.raises(ConfigError, match=r"makes 64,320,000 trials, more than 200"):
        plan_trials(sweep_config(grid))


def test_a_store_that_cannot_file_runs_fails_before_any_trial(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=r"cannot file runs in this run store.*--store"):
        run_sweep(sweep_config({"backtest.costs_bps": [5.0]}), store=blocker)


def test_a_trial_runs_on_the_sweeps_threads_and_the_process_keeps_its_own(tmp_path, monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    seen = []
    real = executors.load_panel

    def spy(data):
        seen.append((torch.get_num_threads(), {p["num_threads"] for p in threadpool_info()}))
        return real(data)

    torch.set_num_threads(1)  # the process's own setting, which the trial must not keep
    monkeypatch.setattr(executors, "load_panel", spy)
    run_sweep(sweep_config({"backtest.costs_bps": [5.0]}, threads=2), store=tmp_path / "store")
    assert seen and all(s == (2, {2}) for s in seen)
    assert torch.get_num_threads() == 1


def _run_info(store: RunStore, key: str) -> dict:
    return json.loads((store.path(key) / "run.json").read_text())


def test_processes_give_the_same_trials_as_one_at_a_time(tmp_path):
    one = run_sweep(sweep_config(GRID), store=tmp_path / "one")
    two = run_sweep(sweep_config(GRID, jobs=2), store=tmp_path / "two")
    assert two.reused == 0
    infos = [_run_info(RunStore(tmp_path / "two"), key) for key in two.keys]
    assert {info["pid"] for info in infos} - {os.getpid()} == {info["pid"] for info in infos}
    assert {info["threads"] for info in infos} == {1}  # as found inside each worker
    for name in one.result.names:
        pd.testing.assert_series_equal(
            two.result[name].net_returns, one.result[name].net_returns, check_exact=True
        )
    pd.testing.assert_frame_equal(two.leaderboard, one.leaderboard, check_exact=True)


def test_grid_data_files_are_found_beside_the_config(tmp_path, monkeypatch):
    prices = correlated_gbm(3, 300, seed=1).to_frame().rename_axis("date")
    prices.to_csv(tmp_path / "a.csv")
    (prices * 1.5).to_csv(tmp_path / "b.csv")
    config = tmp_path / "sweep.toml"
    config.write_text(
        '[data]\nsource = "file"\npath = "a.csv"\n\n[backtest]\ncosts_bps = 10.0\n\n'
        '[report]\nn_boot = 100\n\n[[strategies]]\nname = "equal_weight"\nlookback = 20\n\n'
        '[sweep.grid]\ndata.path = ["a.csv", "b.csv"]\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    outputs = run_sweep(load_sweep_config(config), store="store")
    assert [t.values["data.path"] for t in outputs.trials] == [
        str(tmp_path / "a.csv"),
        str(tmp_path / "b.csv"),
    ]
    # prices scaled by a constant: the same returns, two scenarios of one trial each
    assert len(outputs.leaderboard) == 2 and outputs.same_as == {}
    # a file on another calendar: the trials would be ranked on different dates
    prices.iloc[:-10].to_csv(tmp_path / "b.csv")
    with pytest.raises(ConfigError, match="run on data with different dates"):
        run_sweep(load_sweep_config(config), store="store")


@pytest.fixture
def ray():
    ray = pytest.importorskip("ray")
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_trials_and_errors_as_processes(tmp_path, ray):
    grid = {"backtest.costs_bps": [5.0, 20.0]}
    one = run_sweep(sweep_config(grid), store=tmp_path / "one")
    on_ray = run_sweep(sweep_config(grid, executor="ray", jobs=2), store=tmp_path / "ray")
    assert ray.is_initialized()
    pd.testing.assert_frame_equal(on_ray.leaderboard, one.leaderboard)
    bad = validate(SweepConfig, FAILS_LATE | {"sweep": FAILS_LATE["sweep"] | {"executor": "ray"}})
    with pytest.raises(ConfigError, match=r"sweep trial 'EigenPortfolio \[component=7\]': "):
        run_sweep(bad, store=tmp_path / "bad")
    assert len(RunStore(tmp_path / "bad").runs()) == 2  # the finished trials are kept


def test_an_unreachable_ray_address_is_refused_in_seconds(tmp_path, ray, monkeypatch):
    # Ray itself retries a head that does not answer for minutes; kabuto asks the port first
    with socket.socket() as probe:  # a port of this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    config = sweep_config({"backtest.costs_bps": [5.0, 20.0]}, executor="ray")
    with pytest.raises(KabutoError, match=rf"RAY_ADDRESS = '127.0.0.1:{port}': nothing answers"):
        run_sweep(config, store=tmp_path / "s")
    assert not ray.is_initialized()


def test_swept_costs_are_named_in_the_report_and_zero_costs_get_the_caveat(tmp_path):
    outputs = run_sweep(
        sweep_config({"backtest.costs_bps": [0.0, 10.0]}), tmp_path / "out", store=tmp_path / "s"
    )
    page = (tmp_path / "out" / "report.html").read_text()
    assert "by trial, each trial&#x27;s name gives its level: 0 bps" in page
    assert "The trials at 0 bps were charged nothing" in page
    assert "6 trials (0 read from the run store" in page
    assert outputs.result.settings["backtest"]["costs_bps"] == [0.0, 10.0]
    written = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(written.columns[:4]) == ["trial", "strategy", "backtest.costs_bps", "run"]
    config = tomllib.loads((tmp_path / "out" / "config.toml").read_text())
    assert config["sweep"]["grid"] == {"backtest.costs_bps": [0.0, 10.0]}


CLI_CONFIG = """
[data]
source = "gbm"
n_assets = 4
n_days = 400
seed = 2

[backtest]
costs_bps = 10.0

[report]
n_boot = 200

[[strategies]]
name = "equal_weight"

[[strategies]]
name = "min_variance"
lookback = 60
label = "MV [60d]"

[sweep.grid]
backtest.costs_bps = [5.0, 10.0]
"""


def test_cli_sweeps_lists_the_store_and_prints_bracketed_names(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(CLI_CONFIG)
    out, store = tmp_path / "out", tmp_path / "runs"
    args = ["sweep", str(config), "--out", str(out), "--store", str(store)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "MV [60d] [costs_bps=5.0]" in result.stdout  # not eaten as markup
    out_text = " ".join(result.stdout.split())
    assert "costs_bps=5.0: 2 trials, benchmark EqualWeight [costs_bps=5.0]," in out_text
    assert "trials: 4 (0 from the store" in result.stdout
    assert {"sweep.csv", "report.html", "metrics.json", "config.toml"} <= {
        p.name for p in out.iterdir()
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["statistics_definitions"]) == set(metrics["statistics"])
    again = runner.invoke(app, args)
    assert "trials: 4 (4 from the store" in again.stdout
    listing = runner.invoke(app, ["runs", "--store", str(store)])
    assert listing.exit_code == 0 and listing.stdout.count("MV [60d] [costs_bps=") == 2
    assert load_sweep_config(config).sweep.grid == {"backtest": {"costs_bps": [5.0, 10.0]}}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (CLI_CONFIG.replace("[5.0, 10.0]", "5.0"), "expected a non-empty list"),
        (CLI_CONFIG.replace("backtest.costs_bps", "backtest.fees"), "not a backtest setting"),
        (
            CLI_CONFIG.replace("[sweep.grid]\nbacktest.costs_bps = [5.0, 10.0]", ""),
            "no [sweep] table",
        ),
        (CLI_CONFIG + "[sweep]\njobs = 0\n", "sweep.jobs"),
        (CLI_CONFIG.replace("lookback = 60", "lookback = -1"), "strategies[1]: MinimumVariance"),
    ],
)
def test_cli_bad_sweeps_fail_in_one_line_with_nothing_written(tmp_path, text, needle):
    config = tmp_path / "sweep.toml"
    config.write_text(text)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["sweep", str(config), "--out", str(out), "--store", str(tmp_path / "s")]
    )
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith(f"error: {config}") and "\n" not in message
    assert needle in message
    assert not out.exists() and not (tmp_path / "s").exists()  # nor a run filed


def test_cli_argument_errors_name_the_argument_not_the_config(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(CLI_CONFIG)
    out = str(tmp_path / "out")
    jobs = runner.invoke(app, ["sweep", str(config), "--out", out, "--jobs", "0"])
    assert jobs.exit_code == 2 and "--jobs" in jobs.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = runner.invoke(app, ["sweep", str(config), "--out", out, "--store", str(blocker)])
    assert store.exit_code == 2
    assert store.stderr.strip().startswith(f"error: {blocker}: cannot file runs")


def test_cli_backtest_of_a_sweep_config_points_to_kabuto_sweep(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(CLI_CONFIG)
    result = runner.invoke(app, ["backtest", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "run it with `kabuto sweep" in result.stderr
    missing = runner.invoke(app, ["runs", "--store", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no run store here" in missing.stderr
    # a directory of other files (here the config's) listed as an empty store before
    other = runner.invoke(app, ["runs", "--store", str(tmp_path)])
    assert other.exit_code == 2 and "not a run store" in other.stderr
    (tmp_path / "empty").mkdir()  # a new store: no runs yet, and nothing else
    assert runner.invoke(app, ["runs", "--store", str(tmp_path / "empty")]).exit_code == 0
    (tmp_path / "empty" / "0123abcd").mkdir()  # a run whose result was lost
    (tmp_path / "empty" / "0123abcd" / "run.json").write_text("{}")
    damaged = runner.invoke(app, ["runs", "--store", str(tmp_path / "empty")])
    assert damaged.exit_code == 2 and "1 incomplete run(s) and no complete one" in damaged.stderr


def test_worker_threads_follow_the_sweep_setting(tmp_path):
    grid = {"backtest.costs_bps": [5.0, 20.0]}
    outputs = run_sweep(sweep_config(grid, jobs=2, threads=2), store=tmp_path / "store")
    infos = [_run_info(RunStore(tmp_path / "store"), key) for key in outputs.keys]
    assert {info["threads"] for info in infos} == {2}


def test_a_store_inside_the_output_directory_is_refused_before_any_trial(tmp_path):
    config = sweep_config({"backtest.costs_bps": [5.0]})
    for store in (tmp_path / "out", tmp_path / "out" / "store"):
        with pytest.raises(ConfigError, match="inside the output directory"):
            run_sweep(config, tmp_path / "out", store=store)
    assert not (tmp_path / "out").exists()


def test_a_listing_refuses_a_mistyped_run_record(tmp_path):
    store = RunStore(tmp_path / "store")
    outputs = run_sweep(sweep_config({"backtest.costs_bps": [5.0]}), store=store)
    key = outputs.keys[0]
    info = _run_info(store, key)
    for field, value in (("seconds", "fast"), ("name", None), ("threads", True)):
        (store.path(key) / "run.json").write_text(json.dumps(info | {field: value}))
        with pytest.raises(StoreError, match=f"{field} = "):
            store.runs()
    (store.path(key) / "run.json").write_text(json.dumps(info))
    # a hidden copy (a run being written, or left by a killed writer) is not listed
    shutil.copytree(store.path(key), store.root / f".{key}.leftover")
    assert sorted(store.runs()["key"]) == sorted(outputs.keys)  # each run once


def test_the_code_fingerprint_changes_with_any_file_of_the_package(tmp_path, monkeypatch):
    import kabuto

    package = Path(kabuto.__file__).parent
    copy = tmp_path / "kabuto"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))

    def fingerprint() -> bytes:
        store_module._code_fingerprint.cache_clear()
        return store_module._code_fingerprint()

    original = fingerprint()
    monkeypatch.setattr(kabuto, "__file__", str(copy / "__init__.py"))
    try:
        assert fingerprint() == original  # the same files elsewhere: the same code
        engine = copy / "backtest" / "engine.py"
        engine.write_text(engine.read_text() + "\n# an edit\n")
        assert fingerprint() != original
    finally:
        monkeypatch.undo()
        store_module._code_fingerprint.cache_clear()


def test_a_report_ranked_by_scenario_says_so_for_each(tmp_path):
    outputs = run_sweep(sweep_config(GRID), tmp_path / "out", store=tmp_path / "s")
    page = " ".join((tmp_path / "out" / "report.html").read_text().split())
    for cost in ("5.0", "20.0"):
        assert f"costs_bps={cost}: 4 trials, benchmark EqualWeight [costs_bps={cost}]" in page
    assert "the p-values not adjusted for multiple comparisons" in page
    assert "is meant for the trial picked in each, its top row" in page
    assert "among the trials of the scenario" in page  # the DSR's definition
    metrics = json.loads(
        (tmp_path / "out" / "metrics.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"),
    )
    scenarios = metrics["statistics"]["scenarios"]
    assert [s["n_trials"] for s in scenarios] == [4, 4]
    assert all(s["mean_block"] >= 1 for s in scenarios)  # to reproduce the intervals
    assert scenarios[0]["pbo"] == outputs.leaderboard.attrs["scenarios"][0]["pbo"]
    # without a benchmark strategy, each scenario says it has none
    base = BASE | {"report": {"n_boot": 200}, "strategies": BASE["strategies"][1:]}
    config = validate(SweepConfig, base | {"sweep": {"grid": GRID}})
    note = scenario_note(run_sweep(config, store=tmp_path / "s").leaderboard)
    assert "costs_bps=5.0: 3 trials, benchmark none" in note


def test_sweep_csv_keeps_each_values_type(tmp_path):
    grid = {"backtest.costs_bps": [5.0, {"asset_000": 5.0, "default": 10.0}]} | {
        "strategies": {"min_variance": {"lookback": [60, 120]}}
    }
    run_sweep(sweep_config(grid), tmp_path / "out", store=tmp_path / "s")
    written = pd.read_csv(tmp_path / "out" / "sweep.csv", dtype=str).set_index("trial")
    row = written.loc["MinimumVariance [costs_bps=5.0, lookback=60]"]
    assert row["backtest.costs_bps"] == "5.0" and row["strategies.min_variance.lookback"] == "60"
    per_asset = 'MinimumVariance [costs_bps={"asset_000":5.0,"default":10.0}, lookback=120]'
    assert json.loads(written.loc[per_asset, "backtest.costs_bps"]) == {
        "asset_000": 5.0,
        "default": 10.0,
    }


def test_a_sweep_writes_what_its_trader_company_trials_learned(tmp_path):
    # the report and explanations.json of a sweep were always empty of them
    tc = {"name": "trader_company", "label": "TC", "lookback": 40, "vol_window": 20}
    tc |= {"max_delay": 3, "n_traders": 6, "max_terms": 2, "n_rounds": 2}
    config = validate(
        SweepConfig,
        BASE
        | {"backtest": BASE["backtest"] | {"long_only": False, "max_leverage": 2.0}}
        | {"strategies": [{"name": "equal_weight"}, tc]}
        | {"sweep": {"grid": {"strategies": {"TC": {"n_traders": [4, 6]}}}}},
        source="test",
    )
    outputs = run_sweep(config, store=tmp_path / "store", out_dir=tmp_path / "out")
    written = json.loads((tmp_path / "out" / "explanations.json").read_text())
    assert sorted(written) == ["TC [n_traders=4]", "TC [n_traders=6]"]
    assert "TraderCompany: 4 traders" in written["TC [n_traders=4]"]
    assert "What TC [n_traders=6] learned" in (tmp_path / "out" / "report.html").read_text()
    # from the store, without running a trial again
    again = run_sweep(config, store=tmp_path / "store", out_dir=tmp_path / "again")
    assert again.reused == len(outputs.trials)
    assert json.loads((tmp_path / "again" / "explanations.json").read_text()) == written


def test_the_console_shows_every_scenario_of_a_sweep_with_more_than_30(tmp_path):
    # one top row each for 31 scenarios: the table's 30-row cut hid the last one
    config = tmp_path / "sweep.toml"
    seeds = ", ".join(str(s) for s in range(31))
    config.write_text(
        '[data]\nsource = "gbm"\nn_assets = 2\nn_days = 60\n\n[report]\nn_boot = 100\n\n'
        '[[strategies]]\nname = "equal_weight"\nlookback = 5\n\n'
        f"[sweep.grid]\ndata.seed = [{seeds}]\n"
    )
    args = ["sweep", str(config), "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = result.stdout.split("Sharpe: annualized")[0]  # the scenario note names them all
    assert all(f"[seed={s}]" in table for s in range(31)) and "0 more" not in result.stdout
