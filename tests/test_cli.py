"""The `kabuto` command: configs, outputs, and one-line errors that leave nothing behind."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kabuto.cli.main import app, main
from kabuto.experiment import run as run_module
from kabuto.experiment.config import load_config, parse_config
from kabuto.staging import MARKER, staged_dir

runner = CliRunner()

EXAMPLES = Path(__file__).parents[1] / "examples"

SMALL = """
[data]
source = "gbm"
n_assets = 6
n_days = 700
seed = 3

[backtest]
rebalance = "monthly"
costs_bps = 10.0

[report]
n_boot = 200
benchmark_strategy = "EqualWeight"

[[strategies]]
name = "equal_weight"

[[strategies]]
name = "min_variance"
lookback = 126
label = "MinVar 6m"
"""


def _write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _fails_cleanly(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message
    return message


def test_backtest_writes_every_output(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", str(_write(tmp_path, SMALL)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "config.toml",
        "explanations.json",
        "metrics.json",
        "report.html",
        "returns.parquet",
        "weights.parquet",
    ]
    returns = pd.read_parquet(out / "returns.parquet")
    assert list(returns.columns) == ["date", "strategy", "gross", "net", "cost"]
    assert set(returns["strategy"]) == {"EqualWeight", "MinVar 6m"}
    assert (returns["net"] <= returns["gross"] + 1e-15).all()
    weights = pd.read_parquet(out / "weights.parquet")
    sums = weights.groupby(["strategy", "date"])["weight"].sum()
    assert sums.between(1 - 1e-9, 1 + 1e-9).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["strategies"]) == {"EqualWeight", "MinVar 6m"}
    assert "sharpe" in metrics["definitions"]
    # readable on its own: the costs charged and the inference settings behind the numbers
    assert metrics["costs_bps"] == 10.0 and metrics["survivorship_caveat"] is None
    assert metrics["statistics"]["benchmark_strategy"] == "EqualWeight"
    assert metrics["statistics"]["n_trials"] == 2 and metrics["statistics"]["n_boot"] == 200
    # each statistic is defined, and the daily ones say so beside the annualized Sharpe ratios
    assert set(metrics["statistics_definitions"]) == set(metrics["statistics"])
    assert "not annualized" in metrics["statistics_definitions"]["expected_max_sharpe"]
    # the resolved config reproduces the run's config, defaults filled in
    resolved = tomllib.loads((out / "config.toml").read_text())
    assert resolved["backtest"]["retrain"] == "yearly"
    assert parse_config(resolved) == load_config(tmp_path / "run.toml")
    assert "Leaderboard" in result.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


TRADER_COMPANY = """
[[strategies]]
name = "trader_company"
label = "TC"
lookback = 40
vol_window = 30
max_delay = 5
n_traders = 20
max_terms = 3
n_rounds = 5
"""


def test_explain_prints_the_evolved_formulas_of_a_run(tmp_path):
    out = tmp_path / "out"
    long_short = SMALL.replace('"monthly"', "5").replace(
        "costs_bps = 10.0", "costs_bps = 10.0\nlong_only = false"
    )
    config = _write(tmp_path, long_short + TRADER_COMPANY)
    result = runner.invoke(app, ["backtest", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    explanations = json.loads((out / "explanations.json").read_text())
    assert list(explanations) == ["TC"]  # only strategies that explain themselves
    text = explanations["TC"]
    assert "TraderCompany: 20 traders" in text and "fitted on history up to" in text
    assert "ret[t" in text or "mkt[t" in text  # formulas over the named features
    assert "What TC learned" in (out / "report.html").read_text()

    shown = runner.invoke(app, ["explain", str(out)])
    assert shown.exit_code == 0, shown.output
    assert text.splitlines()[-1] in shown.stdout
    only = runner.invoke(app, ["explain", str(out), "--strategy", "TC"])
    assert only.exit_code == 0 and "#1 (trader" in only.stdout
    _fails_cleanly(
        runner.invoke(app, ["explain", str(out), "--strategy", "nope"]), "'nope'", "'TC'"
    )
    _fails_cleanly(runner.invoke(app, ["explain", str(tmp_path)]), "explanations.json")
    (out / "explanations.json").write_text("{not json")
    _fails_cleanly(runner.invoke(app, ["explain", str(out)]), "unreadable")


def test_explain_prints_labels_with_brackets_as_written(tmp_path):
    # rich would read "[/q]" as a closing tag (an error) and "[bold]" as style (eaten)
    labels = {"TC [/q]": "formula one", "TC [bold]quintile": "formula two"}
    (tmp_path / "explanations.json").write_text(json.dumps(labels))
    shown = runner.invoke(app, ["explain", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "TC [/q]" in shown.stdout and "TC [bold]quintile" in shown.stdout
    only = runner.invoke(app, ["explain", str(tmp_path), "--strategy", "TC [bold]quintile"])
    assert "TC [bold]quintile" in only.stdout and "formula two" in only.stdout
    _fails_cleanly(runner.invoke(app, ["explain", str(tmp_path / "nope")]), "no such run directory")


@pytest.mark.parametrize("text", ["[1, 2]", '"TC"', '{"TC": 3}'])
def test_explain_rejects_json_that_is_not_explanations(tmp_path, text):
    (tmp_path / "explanations.json").write_text(text)
    result = runner.invoke(app, ["explain", str(tmp_path)])
    _fails_cleanly(result, "explanations.json", "strategy label -> text", "rerun")


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (("[backtest]", "[backtest]\nrebalanse = 5"), ["backtest.rebalanse", "rebalance"]),
        (('rebalance = "monthly"', 'rebalance = "fortnightly"'), ["backtest.rebalance", "monthly"]),
        (('name = "equal_weight"', 'name = "equal_wieght"'), ["equal_wieght", "min_variance"]),
        (("lookback = 126", "lookbak = 126"), ["run.toml: strategies[1]", "lookbak"]),
        (("costs_bps = 10.0", "costs_bps = -3"), ["run.toml: ", "cannot be negative"]),
        (("costs_bps = 10.0", 'costs_bps = "ten"'), ["costs_bps"]),
        # values are not converted: a string is not a number, "yes" is not true
        (("costs_bps = 10.0", 'costs_bps = "10"'), ["backtest.costs_bps = '10'"]),
        (("costs_bps = 10.0", 'costs_bps = 10.0\nlong_only = "yes"'), ["backtest.long_only"]),
        (("n_boot = 200", 'n_boot = "200"'), ["report.n_boot = '200'", "integer"]),
        (("costs_bps = 10.0", "costs_bps = 10.0\nmax_leverage = inf"), ["max_leverage", "finite"]),
        (("costs_bps = 10.0", "costs_bps = nan"), ["backtest.costs_bps = nan", "finite"]),
        (('label = "MinVar 6m"', "label = 3"), ["strategies[1].label = 3", "non-empty string"]),
        (('source = "gbm"', 'source = "yahoo"'), ["data.source", "sp500"]),
        (("[data]", "[dataa]"), ["dataa", "allowed keys"]),
        (("n_days = 700", "n_days = 100"), ["lookback"]),
    ],
)
def test_bad_configs_fail_in_one_line_naming_the_key(tmp_path, edit, needles):
    config = _write(tmp_path, SMALL.replace(*edit))
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", str(config), "--out", str(out)])
    _fails_cleanly(result, *needles)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [config]


def test_missing_and_malformed_config_files(tmp_path):
    _fails_cleanly(runner.invoke(app, ["backtest", str(tmp_path / "nope.toml")]), "nope.toml")
    broken = _write(tmp_path, "[data\nsource = 1")
    _fails_cleanly(runner.invoke(app, ["backtest", str(broken)]), "not valid TOML")


def test_failed_run_leaves_previous_outputs_and_no_partial_files(tmp_path, monkeypatch):
    config = _write(tmp_path, SMALL)
    out = tmp_path / "out"
    with staged_dir(out) as earlier:  # an earlier run's outputs
        (earlier / "keep.txt").write_text("earlier run")

    def broken_report(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(run_module, "write_report", broken_report)
    with pytest.raises(RuntimeError, match="disk full"):
        runner.invoke(app, ["backtest", str(config), "--out", str(out)], catch_exceptions=False)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run.toml"]


@pytest.mark.parametrize("cwd_is_out", [False, True])
def test_out_never_replaces_a_directory_of_other_files(tmp_path, monkeypatch, cwd_is_out):
    # A run replaces its output directory as a whole: never one that is not a run's.
    folder = tmp_path / "project"
    folder.mkdir()
    config = _write(folder, SMALL)
    (folder / "notes.txt").write_text("mine")
    monkeypatch.chdir(folder if cwd_is_out else tmp_path)
    out = "." if cwd_is_out else "project"
    result = runner.invoke(app, ["backtest", str(config), "--out", out])
    message = _fails_cleanly(result, "not a kabuto output directory", "choose another --out")
    assert message.startswith(f"error: {folder.resolve()}: ")  # not prefixed with the config
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "run.toml"]
    assert (folder / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["project"]


def _command(name: str, tmp_path: Path) -> list[str]:
    """A valid invocation of each command that writes outputs (a run would take a while)."""
    return {
        "backtest": ["backtest", str(_write(tmp_path, SMALL))],
        "demo": ["demo"],
        "simulate": ["simulate", str(EXAMPLES / "pams_ci2002.json")],
        "hedge": ["hedge", str(EXAMPLES / "deep_hedging.toml")],
    }[name]


@pytest.mark.parametrize("command", ["backtest", "demo", "simulate", "hedge"])
@pytest.mark.parametrize(
    ("out", "needle"),
    [
        ("afile", "exists and is not a directory"),
        ("afile/sub/out", "afile is a file, not a directory"),
        pytest.param(
            "/proc/kabuto-out",  # the kernel's: not even root creates a directory there
            "cannot write here",
            marks=pytest.mark.skipif(not Path("/proc/self").exists(), reason="Linux's /proc"),
        ),
    ],
)
def test_an_impossible_out_fails_before_the_work(tmp_path, monkeypatch, command, out, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a directory")
    args = _command(command, tmp_path)
    before = sorted(tmp_path.iterdir())
    result = runner.invoke(app, [*args, "--out", out])
    message = _fails_cleanly(result, needle, "choose another --out")
    assert message.startswith(f"error: {Path(out).resolve()}: ")  # not prefixed with the config
    assert result.stdout == ""
    assert sorted(tmp_path.iterdir()) == before
    assert (tmp_path / "afile").read_text() == "not a directory"


def test_data_info_summarises_and_rejects(tmp_path):
    good = tmp_path / "prices.csv"
    good.write_text("date,AAA,BBB\n2020-01-02,10,20\n2020-01-03,11,21\n2020-01-06,12,19\n")
    result = runner.invoke(app, ["data", "info", str(good)])
    assert result.exit_code == 0, result.output
    assert "AAA" in result.stdout and "2020-01-06" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("date,AAA\n2020-01-02,10\n2020-01-03,-1\n")
    _fails_cleanly(runner.invoke(app, ["data", "info", str(bad)]), "bad.csv", "AAA")


def test_cli_process_exits_2_without_traceback(tmp_path):
    config = _write(tmp_path, SMALL.replace("[backtest]", "[backtest]\nfoo = 1"))
    proc = subprocess.run(
        [sys.executable, "-m", "kabuto.cli.main", "backtest", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_repairs_are_reported_as_one_line_warnings(tmp_path):
    unsorted = tmp_path / "unsorted.csv"
    unsorted.write_text("date,AAA\n2020-01-03,1\n2020-01-02,2\n2020-01-06,3\n")
    result = runner.invoke(app, ["data", "info", str(unsorted)])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: ") and result.stderr.count("\n") == 1
    assert "sorted" in result.stderr and "unsorted.csv" in result.stderr


def test_demo_runs_every_classical_strategy_with_costs(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())["strategies"]
    assert len(metrics) == 11
    assert all(m["costs_paid"] > 0 for m in metrics.values())  # costs are never silently zero
    resolved = tomllib.loads((out / "config.toml").read_text())
    assert resolved["backtest"]["costs_bps"] == 10.0
    assert resolved["backtest"]["start"] == "2000-01-03"
    assert "Survivorship bias" in result.stdout
    assert "Net of transaction costs (10 bps of traded notional)." in result.stdout
    # the console names what its columns are, and prints them as the report does
    stdout = " ".join(result.stdout.split())
    assert "Sharpe: annualized (sqrt(252)), risk-free 0; CI: stationary-bootstrap" in stdout
    equal = next(line for line in result.stdout.splitlines() if "EqualWeight " in line)
    turnover = f"{metrics['EqualWeight']['turnover']:.2%}"
    assert turnover in equal and f"{metrics['EqualWeight']['cagr']:.2%}" in equal
    assert "Survivorship bias" in (out / "report.html").read_text()
    caveat = json.loads((out / "metrics.json").read_text())["survivorship_caveat"]
    assert "Survivorship bias" in caveat and "without dividends" in caveat


def _equal_weight_config(folder, rows: list[str], backtest: str = "") -> Path:
    """A config backtesting equal weights on `rows` of prices.csv, both written in `folder`;
    `backtest` is the body of its [backtest] table."""
    (folder / "prices.csv").write_text("\n".join(rows) + "\n")
    config = folder / "run.toml"
    config.write_text(
        f'[data]\nsource = "file"\npath = "prices.csv"\n\n[backtest]\n{backtest}\n'
        '[report]\nn_boot = 100\n\n[[strategies]]\nname = "equal_weight"\nlookback = 20\n'
    )
    return config


def test_a_data_file_is_found_beside_its_config(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    rows = ["date,AAA,BBB"] + [
        f"{d.date()},{100 + i % 7},{50 + (i * 3) % 11}"
        for i, d in enumerate(pd.bdate_range("2020-01-01", periods=300))
    ]
    config = _equal_weight_config(folder, rows)
    monkeypatch.chdir(tmp_path)  # run from elsewhere
    result = runner.invoke(app, ["backtest", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    resolved = tomllib.loads((tmp_path / "out" / "config.toml").read_text())
    assert resolved["data"]["path"] == str((folder / "prices.csv").resolve())


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["simulate"], "Missing argument 'config'. (see kabuto simulate --help)"),
        (["demo", "extra"], "unexpected extra argument(s) (extra) (see kabuto demo --help)"),
        (["simulate", "x.toml", "--runs", "ten"], "Invalid value for '--runs'"),
        (["nosuch"], "No such command 'nosuch'. (see kabuto --help)"),
    ],
)
def test_bad_arguments_are_one_line_too(monkeypatch, capsys, argv, needle):
    monkeypatch.setattr(sys, "argv", ["kabuto", *argv])
    assert main() == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message and needle in message, message


def test_sigterm_mid_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    # `timeout`, `kill` and cancelled jobs send SIGTERM: it unwinds like Ctrl-C.
    config = _write(tmp_path, SMALL)
    out = tmp_path / "out"
    runner.invoke(app, ["backtest", str(config), "--out", str(out)], catch_exceptions=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(run_module, "write_report", terminated)  # inside the staging directory
    monkeypatch.setattr(sys, "argv", ["kabuto", "backtest", str(config), "--out", str(out)])

    def unhandled(signum, frame):  # (without kabuto's own handler the default would kill pytest)
        raise AssertionError("kabuto left SIGTERM unhandled")

    handler = signal.signal(signal.SIGTERM, unhandled)
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run.toml"]  # no staging
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 7.45 GiB"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory"),
    ],
)
def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, error):
    config = _write(tmp_path, SMALL)

    def too_big(*args, **kwargs):
        raise error

    monkeypatch.setattr(run_module, "leaderboard", too_big)
    result = runner.invoke(app, ["backtest", str(config), "--out", str(tmp_path / "out")])
    _fails_cleanly(result, "not enough memory for this run", "make it smaller")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]


def test_metrics_json_keeps_the_sign_of_an_infinite_metric(tmp_path):
    # an asset growing 0.1% every day: its Sharpe is +inf, which null would have hidden
    rows = ["date,AAA"] + [
        f"{d.date()},{100 * 1.001**i!r}"
        for i, d in enumerate(pd.bdate_range("2020-01-01", periods=300))
    ]
    config = _equal_weight_config(tmp_path, rows, backtest="costs_bps = 0\n")
    result = runner.invoke(app, ["backtest", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(
        (tmp_path / "out" / "metrics.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"),
    )
    row = metrics["strategies"]["EqualWeight"]
    assert row["sharpe"] == "inf" and float(row["sharpe"]) == math.inf
    assert row["volatility"] == 0.0
    assert row["psr"] is None  # undefined stays null
