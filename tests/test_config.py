"""Backtest config schema: values keep their written type, errors name the key that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from kabuto.errors import ConfigError
from kabuto.experiment.config import load_config, parse_config
from kabuto.experiment.hedge_config import load_hedge_config
from kabuto.experiment.run import build_strategies
from kabuto.strict_config import read_toml

EXAMPLES = Path(__file__).parents[1] / "examples"
STRATEGIES = [{"name": "equal_weight"}]


def _backtest(**values) -> dict:
    return {"backtest": values, "strategies": STRATEGIES}


def test_an_integer_is_a_number():
    config = parse_config(_backtest(costs_bps=10, max_leverage=2))
    assert config.backtest.costs_bps == 10.0 and config.backtest.max_leverage == 2.0
    assert parse_config(_backtest(costs_bps={"AAA": 5, "default": 0})).backtest.costs_bps == {
        "AAA": 5.0,
        "default": 0.0,
    }


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        (_backtest(costs_bps="10"), ["backtest.costs_bps = '10'", "valid number"]),
        (_backtest(long_only="yes"), ["backtest.long_only = 'yes'", "boolean"]),
        ({"report": {"n_boot": "200"}, "strategies": STRATEGIES}, ["report.n_boot", "integer"]),
        ({"report": {"n_boot": 10**12}, "strategies": STRATEGIES}, ["report.n_boot", "100000"]),
        ({"data": {"n_days": 700.0}, "strategies": STRATEGIES}, ["data.n_days", "integer"]),
        # seeds are checked with the config, not after the backtest has run
        ({"report": {"seed": -5}, "strategies": STRATEGIES}, ["report.seed = -5", "greater"]),
        (
            {"data": {"source": "gbm", "seed": -1}, "strategies": STRATEGIES},
            ["data.seed = -1", "greater"],
        ),
        ({"report": {"seed": 2**63}, "strategies": STRATEGIES}, ["report.seed", "less than"]),
        (_backtest(max_leverage=float("inf")), ["backtest.max_leverage = inf", "finite"]),
        (_backtest(costs_bps=float("nan")), ["backtest.costs_bps = nan", "finite"]),
        (_backtest(costs_bps=-1.0), ["backtest.costs_bps = -1.0", "cannot be negative"]),
        (_backtest(costs_bps={"AAA": -1.0}), ["'AAA': costs cannot be negative"]),
        (_backtest(costs_bps={"AAA": float("inf")}), ["backtest.costs_bps", "finite"]),
    ],
)
def test_values_are_not_converted_and_must_be_finite(raw, needles):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, source="run.toml")
    message = str(error.value)
    assert message.startswith("run.toml: ")
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"name": "equal_weight", "label": 3}, "strategies[0].label = 3: expected a non-empty"),
        ({"name": "equal_weight", "label": " "}, "strategies[0].label = ' '"),
        ({"name": 7}, "strategies[0].name = 7"),
        ({"label": "EW"}, "strategies[0] has no 'name'"),
    ],
)
def test_strategy_names_and_labels_are_text(entry, needle):
    with pytest.raises(ConfigError) as error:
        parse_config({"strategies": [entry]}, source="run.toml")
    assert str(error.value).startswith("run.toml: ") and needle in str(error.value)


def test_an_unknown_key_is_reported_before_a_missing_one():
    # A hedging config given to `kabuto backtest`: the unknown table says what is wrong.
    with pytest.raises(ConfigError, match="unknown key 'market'; allowed keys: data"):
        load_config(EXAMPLES / "deep_hedging.toml")
    with pytest.raises(ConfigError, match="strategies is required"):
        parse_config({})


@pytest.mark.parametrize("load", [read_toml, load_config, load_hedge_config])
def test_a_directory_or_missing_file_is_not_a_config(tmp_path, load):
    folder = tmp_path / "run.toml"
    folder.mkdir()
    with pytest.raises(ConfigError) as error:
        load(folder)
    assert str(error.value) == f"{folder}: is a directory, not a config file"
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        load(tmp_path / "nope.toml")


def test_an_unknown_benchmark_strategy_fails_before_the_backtest(monkeypatch):
    from kabuto.experiment import run

    def no_backtest(*args, **kwargs):
        raise AssertionError("the backtest ran before the config was checked")

    monkeypatch.setattr(run.WalkForward, "run", no_backtest)
    config = parse_config(
        {
            "data": {"source": "gbm", "n_assets": 3, "n_days": 300},
            "strategies": STRATEGIES,
            "report": {"benchmark_strategy": "EqualWeigth"},
        }
    )
    with pytest.raises(ConfigError, match=r"'EqualWeigth' is not a strategy.*\['EqualWeight'\]"):
        run.run_config(config)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (
            {"source": "file", "path": "p.csv", "n_assets": 3},
            "data.n_assets is a setting of source = 'gbm' or 'garch', not of source = 'file'; "
            "remove it (source = 'file' takes path, format, max_ffill)",
        ),
        (
            {"source": "sp500", "seed": 1},
            "data.seed is a setting of source = 'gbm' or 'garch', not of source = 'sp500'; "
            "remove it (source = 'sp500' takes no other keys)",
        ),
        (
            {"n_days": 700},
            "data.n_days is a setting of source = 'gbm' or 'garch', not of source = 'sp500' "
            "(the default); remove it",
        ),
        (
            {"source": "gbm", "path": "p.csv"},
            "data.path is a setting of source = 'file', not of source = 'gbm'; remove it "
            "(source = 'gbm' takes n_assets, n_days, seed)",
        ),
        ({"source": "garch", "max_ffill": 0}, "data.max_ffill is a setting of source = 'file'"),
        ({"source": "file"}, "data.path is required when data.source = 'file'"),
    ],
)
def test_a_data_key_of_another_source_is_an_error(data, needle):
    # Ignoring it would run something else than asked (all assets of the file, not 3).
    with pytest.raises(ConfigError) as error:
        parse_config({"data": data, "strategies": STRATEGIES}, source="run.toml")
    assert str(error.value).startswith("run.toml: " + needle), str(error.value)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"source": "file", "path": "p.csv", "format": "csv"},
        {"source": "garch", "n_assets": 3, "seed": 2},
    ],
)
def test_the_resolved_config_loads_again(tmp_path, data):
    # config.toml fills in defaults: only the chosen source's, or it would not load.
    config = parse_config({"data": data, "strategies": STRATEGIES})
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert parse_config(read_toml(path)).data.model_dump() == config.data.model_dump()


def test_a_data_path_that_is_a_directory_says_so(tmp_path):
    from kabuto.errors import DataError
    from kabuto.experiment.run import load_panel

    (tmp_path / "prices").mkdir()
    path = tmp_path / "run.toml"
    path.write_text('[data]\nsource = "file"\npath = "prices"\n\n[[strategies]]\nname = "x"\n')
    with pytest.raises(DataError, match=r"prices: is a directory, not a price file"):
        load_panel(load_config(path).data)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (
            "start = 2001-01-02",
            'backtest.start = 2001-01-02 is a TOML date, not text; quote it: start = "2001-01-02"',
        ),
        (
            "end = 2002-01-02T09:30:00",
            "backtest.end = 2002-01-02T09:30:00 is a TOML date-time, not text; quote it: "
            'end = "2002-01-02T09:30:00"',
        ),
    ],
)
def test_an_unquoted_toml_date_says_to_quote_it(tmp_path, line, needle):
    path = tmp_path / "run.toml"
    path.write_text(f'[backtest]\n{line}\n\n[[strategies]]\nname = "equal_weight"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: {needle}"


def test_a_leading_byte_order_mark_is_accepted(tmp_path):
    # Some Windows editors start UTF-8 files with one; TOML itself has no use for it.
    path = tmp_path / "run.toml"
    path.write_bytes(b'\xef\xbb\xbf[data]\nsource = "sp500"\n\n[[strategies]]\nname = "x"\n')
    assert read_toml(path) == {"data": {"source": "sp500"}, "strategies": [{"name": "x"}]}
    assert load_config(path).data.source == "sp500"


def test_learned_policies_train_against_the_backtests_costs_unless_they_set_their_own():
    # an agent trained at its default 10 bps and charged 200 would optimise the wrong problem
    costs = {"AAA": 5.0, "default": 200.0}
    raw = _backtest(costs_bps=costs) | {
        "strategies": [
            {"name": "eiie"},
            {"name": "rl_agent", "label": "own", "costs_bps": 3.0},
            {"name": "equal_weight"},
        ]
    }
    eiie, own, equal = build_strategies(parse_config(raw))
    assert eiie.costs_bps == costs and own.costs_bps == 3.0
    assert list(eiie.costs_bps) == ["AAA", "default"]  # sorted: one store key for one mapping
    assert not hasattr(equal, "costs_bps")
    # the exact cost model takes one rate: with per-asset backtest costs it keeps its own
    raw["strategies"] = [{"name": "rl_agent", "cost_model": "exact"}]
    (exact,) = build_strategies(parse_config(raw))
    assert exact.costs_bps == 10.0
