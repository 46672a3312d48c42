"""A grid of backtests run as one experiment and ranked together, every trial counted.

A sweep config is a run config (`kabuto.experiment.config`) with a ``[sweep]`` table::

    [sweep]
    jobs = 2                    # trials at once (default 1)
    executor = "processes"      # local processes, or "ray" (a Ray cluster; pip install ray)
    threads = 1                 # threads each trial runs on (default 1)

    [sweep.grid]
    backtest.costs_bps = [5.0, 20.0]
    strategies.min_variance.lookback = [126, 252, 504]

A grid key names a data or backtest setting, which every strategy's trials vary with, or a
setting of one strategy (``strategies.<strategy>.<setting>``, the strategy named by its label,
its registry name or its own name), which only that strategy's trials vary with. A trial is one
strategy under one combination of the values that reach it: the grid above makes 6 trials of
the minimum-variance strategy and 2 of each other strategy. Each trial is its own backtest and
is filed in a run store (`kabuto.experiment.store`) as it finishes, so a sweep run again runs
only the trials the store lacks.

Why the trials are ranked together: the best of many backtests overstates what its settings
would earn (Bailey and Lopez de Prado). The leaderboard holds the trials, so the deflated
Sharpe ratio counts them and the probability of backtest overfitting (CSCV) is computed over
them. But the data and the cost level are the market a strategy meets, not a
setting a researcher picks: a low-cost copy of every strategy would rank first in and out of
sample and make any ranking look robust. So the trials are ranked within each scenario (one
combination of the grid's ``data.*`` and ``backtest.costs_bps`` values): each scenario gets its
own trial count, benchmark trial and PBO. Trials whose net returns are identical to another's in
the same scenario (a key that changes nothing for that strategy, such as ``backtest.retrain``
for one that never learns) are one trial, ranked once. All trials must run on the same dates:
a grid that moves the backtest's start or the data's calendar is refused before any trial runs.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from kabuto.backtest import BacktestResult
from kabuto.backtest.engine import required_history
from kabuto.costs import cost_rates
from kabuto.errors import ConfigError
from kabuto.evaluation import METRIC_DEFINITIONS
from kabuto.evaluation.leaderboard import check_benchmark_strategy
from kabuto.experiment.config import (
    BacktestConfig,
    DataConfig,
    RunConfig,
    parse_config,
    resolve_data_path,
)
from kabuto.experiment.executors import TrialCall, execute
from kabuto.experiment.ranking import rank_trials
from kabuto.experiment.run import RunProgress, build_strategies, load_panel, write_outputs
from kabuto.experiment.store import RunStore, resolved_config, run_key
from kabuto.staging import check_out_dir
from kabuto.strict_config import StrictValues, read_toml, validate

__all__ = [
    "MAX_TRIALS",
    "SweepConfig",
    "SweepOutputs",
    "SweepSettings",
    "Trial",
    "grid_paths",
    "load_sweep_config",
    "plan_trials",
    "run_sweep",
]

#: The most trials one sweep may have: its report draws every trial (about 0.2 MB each).
MAX_TRIALS = 200

_SECTIONS = {"data": DataConfig, "backtest": BacktestConfig}

KeyPath = tuple[str, ...]


class SweepSettings(StrictValues):
    """The ``[sweep]`` table: the grid and how its trials run."""

    grid: dict[str, Any]
    jobs: int = Field(1, ge=1, le=256)
    executor: Literal["processes", "ray"] = "processes"
    threads: int = Field(1, ge=1, le=256)


class SweepConfig(RunConfig):
    """A run config with a ``[sweep]`` table (module docstring)."""

    sweep: SweepSettings


#: The grid keys that set the market the strategies meet, not a setting a researcher picks:
#: the data (its file, size or seed) and the cost level. Trials are ranked within each
#: combination of their values (module docstring).
SCENARIO_KEYS = (
    ("data", "path"),
    ("data", "seed"),
    ("data", "n_assets"),
    ("backtest", "costs_bps"),
)

#: The metric definitions of a sweep's report: its DSR counts the trials of a scenario.
SWEEP_DEFINITIONS = METRIC_DEFINITIONS | {
    "dsr": (
        "Deflated Sharpe ratio: PSR against the best Sharpe expected by luck among the trials "
        "of the scenario (n_trials = their number; the whole board when the grid sets no data "
        "or cost level)."
    ),
    "sharpe_diff": (
        "Sharpe ratio minus the benchmark strategy's trial in the same scenario "
        "(report.benchmark_strategy; by default the equal-weight strategy when one is run)."
    ),
    "sharpe_diff_pvalue": (
        "Two-sided p-value of equal Sharpe ratios vs the benchmark strategy's trial in the same "
        "scenario (paired stationary bootstrap, centered)."
    ),
}


def grid_paths(grid: dict[str, Any]) -> dict[KeyPath, list]:
    """The grid's keys as paths (``("backtest", "costs_bps")``) with their lists of values.

    A top-level key may be written dotted in quotes (``"backtest.costs_bps" = [...]``) or as
    TOML's dotted keys (nested tables); a key below the top level is taken whole, so a strategy
    label with a dot in it is written quoted: ``strategies."v1.2".lookback``.

    Raises
    ------
    ConfigError
        For a value that is not a non-empty list of distinct values, a key that is not a data,
        backtest or strategy setting, or one key written twice.
    """
    if not grid:
        raise ConfigError(
            "sweep.grid is empty; give it a key with values to try (e.g. backtest.costs_bps = "
            "[5.0, 10.0])"
        )
    out: dict[KeyPath, list] = {}

    def walk(prefix: KeyPath, value: object) -> None:
        key = ".".join(prefix)
        if isinstance(value, dict):
            if not value:
                raise ConfigError(f"sweep.grid.{key} is an empty table; give it values to try")
            for k, v in value.items():
                walk((*prefix, k), v)
            return
        if not isinstance(value, list) or not value:
            example = "" if value == [] else f" (e.g. {key} = [{value!r}])"
            raise ConfigError(
                f"sweep.grid.{key} = {value!r}: expected a non-empty list of values to try"
                + example
            )
        seen = [json.dumps(v, sort_keys=True, default=str) for v in value]
        if len(set(seen)) < len(seen):
            raise ConfigError(f"sweep.grid.{key} lists a value twice ({value!r}); list each once")
        if prefix in out:
            raise ConfigError(f"sweep.grid.{key} is written twice (dotted and nested); keep one")
        out[prefix] = value

    for top, value in grid.items():
        walk(tuple(top.split(".")), value)
    for path in out:
        _check_path(path)
    return out


_SAME_DATES = "a sweep ranks its trials on the same dates and data source; run a sweep for each "
#: The settings a grid cannot vary, and why. n_days sets a simulated market's calendar.
_FIXED = {
    "data": {
        "source": _SAME_DATES + "source",
        "n_days": _SAME_DATES + "n_days",
        "format": "a file's format follows its name; sweep data.path "
        '(e.g. ["a.csv", "b.parquet"]) and leave data.format unset',
    },
    "backtest": {"start": _SAME_DATES + "start", "end": _SAME_DATES + "end"},
}


def _check_path(path: KeyPath) -> None:
    key = ".".join(path)
    root = path[0]
    if root in _SECTIONS:
        fixed = _FIXED[root]
        fields = [f for f in _SECTIONS[root].model_fields if f not in fixed]
        if len(path) == 2 and path[1] in fixed:
            raise ConfigError(f"sweep.grid.{key} cannot be swept: {fixed[path[1]]}")
        if len(path) != 2 or path[1] not in fields:
            raise ConfigError(
                f"sweep.grid.{key} is not a {root} setting; the {root} settings a sweep can "
                f"vary: {', '.join(fields)}"
            )
    elif root == "strategies":
        if len(path) != 3:
            raise ConfigError(
                f"sweep.grid.{key}: a strategy setting is written "
                "strategies.<strategy>.<setting> (e.g. strategies.min_variance.lookback)"
            )
        if path[2] in ("name", "label"):
            raise ConfigError(
                f"sweep.grid.{key}: a strategy's {path[2]} cannot be swept; list each "
                "strategy as its own [[strategies]] entry"
            )
    elif root == "report":
        raise ConfigError(
            f"sweep.grid.{key}: report settings change no trial's returns; sweep data, "
            "backtest or strategy settings"
        )
    else:
        raise ConfigError(
            f"sweep.grid.{key}: a grid key starts with data, backtest or strategies (e.g. "
            "backtest.costs_bps or strategies.min_variance.lookback)"
        )


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep config file; data files it names, in its data table or its
    grid, are found beside it."""
    path = Path(path)
    raw = read_toml(path)
    if not isinstance(raw.get("sweep"), dict):
        raise ConfigError(
            f"{path}: has no [sweep] table; add one with a grid (e.g. [sweep.grid] "
            f"backtest.costs_bps = [5.0, 10.0]) or run it with `kabuto backtest {path}`"
        )
    config = resolve_data_path(validate(SweepConfig, raw, source=str(path)), path)
    files = grid_paths(config.sweep.grid).get(("data", "path"))
    if files is not None:  # written back in the grid's own form: dotted or nested
        resolved = [str((path.parent / f).resolve()) if isinstance(f, str) else f for f in files]
        grid = config.sweep.grid
        if "data.path" in grid:
            grid["data.path"] = resolved
        else:
            grid["data"]["path"] = resolved
    return config


@dataclass(frozen=True)
class Trial:
    """One strategy under one combination of the grid's values.

    Attributes
    ----------
    name : str
        Its name in the sweep's leaderboard: the strategy's, then the values that reach it
        (``MinimumVariance [costs_bps=5.0, lookback=126]``).
    strategy : str
        The strategy's name in its own run (its label, or its own name).
    values : dict
        The grid's values for this trial, by dotted grid key.
    scenario : dict
        The values of the grid's data and cost keys (those it is ranked within).
    config : RunConfig
        The trial's run: the base config with the values set and this strategy alone.
    """

    name: str
    strategy: str
    values: dict[str, Any]
    scenario: dict[str, Any]
    config: RunConfig


def plan_trials(config: SweepConfig) -> list[Trial]:
    """Every trial of the sweep, in grid order (shared settings outermost).

    When ``backtest.start`` is not set, every trial starts on the first date on which all of
    them have their history, as one backtest of all the strategies would (alone, each would
    start as soon as its own history allows).

    Raises
    ------
    ConfigError
        If two strategies share a name, a grid key names no strategy or several, or one
        setting twice, a trial's config is invalid (naming the trial), two trials share a name
        or are the same backtest, the trials' data differ in dates or leave them no dates, or
        there are more than `MAX_TRIALS` trials.
    """
    paths = grid_paths(config.sweep.grid)
    base = config.model_dump(mode="python", exclude={"sweep"}, exclude_none=True)
    entries = base.pop("strategies")
    names = [strategy.name for strategy in build_strategies(config)]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"two strategies are named {name!r}; give each a distinct label")
    shared, own = _split_keys(paths, entries, names)

    def count(keys: list[KeyPath]) -> int:
        return math.prod(len(paths[k]) for k in keys)

    total = count(shared) * sum(count(keys) for keys in own)
    if total > MAX_TRIALS:
        raise ConfigError(
            f"sweep.grid makes {total:,} trials, more than {MAX_TRIALS:,}; use fewer values"
        )

    def combinations(keys: list[KeyPath]) -> list[dict[KeyPath, Any]]:
        product = itertools.product(*(paths[k] for k in keys))
        return [dict(zip(keys, values, strict=True)) for values in product]

    short = _short_keys(list(paths))
    trials = [
        _trial(base, entry, names[i], outer, inner, short)
        for outer in combinations(shared)
        for i, entry in enumerate(entries)
        for inner in combinations(own[i])
    ]
    _check_distinct(trials)
    history = max(required_history(s) for t in trials for s in build_strategies(t.config))
    _same_dates(trials, history, start_together=config.backtest.start is None)
    return trials


def _split_keys(
    paths: dict[KeyPath, list], entries: list[dict], names: list[str]
) -> tuple[list[KeyPath], list[list[KeyPath]]]:
    """The grid's data and backtest keys, and each strategy's own keys."""
    shared: list[KeyPath] = []
    own: list[list[KeyPath]] = [[] for _ in entries]
    for path in paths:
        if path[0] != "strategies":
            shared.append(path)
            continue
        index = _strategy_index(path, entries, names)
        if any(p[2] == path[2] for p in own[index]):
            raise ConfigError(
                f"sweep.grid.{'.'.join(path)}: {names[index]}'s {path[2]} is already swept "
                "under another of its names; keep one"
            )
        own[index].append(path)
    return shared, own


def _trial(
    base: dict,
    entry: dict,
    strategy: str,
    outer: dict[KeyPath, Any],
    inner: dict[KeyPath, Any],
    short: dict[KeyPath, str],
) -> Trial:
    """The trial of one strategy (`entry`, named `strategy`) under the grid's shared values
    `outer` and its own `inner`; its strategy is built here, so that a bad value fails now."""
    values = outer | inner
    label = ", ".join(f"{short[p]}={_text(v)}" for p, v in values.items())
    name = f"{strategy} [{label}]" if label else strategy
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for path, value in outer.items():
        raw.setdefault(path[0], {})[path[1]] = value
    own = {path[2]: value for path, value in inner.items()}
    raw["strategies"] = [entry | own | {"label": strategy}]
    config = parse_config(raw, source=f"sweep trial {name!r}")
    try:
        build_strategies(config)
    except ConfigError as exc:  # its one strategy is strategies[0]: the trial names it better
        message = str(exc).removeprefix("strategies[0]: ")
        raise ConfigError(f"sweep trial {name!r}: {message}") from None
    dotted = {".".join(p): v for p, v in values.items()}
    scenario = {".".join(p): v for p, v in outer.items() if p in SCENARIO_KEYS}
    return Trial(name, strategy, dotted, scenario, config)


def _check_distinct(trials: list[Trial]) -> None:
    """Refuse two trials with one name, or two that are the same backtest once their values
    are read (1 and 1.0; a strategy's default written out)."""
    names: set[str] = set()
    backtests: dict[str, str] = {}
    for trial in trials:
        if trial.name in names:
            raise ConfigError(
                f"two sweep trials are named {trial.name!r}; give the strategies labels that "
                "do not look like another's trial names"
            )
        names.add(trial.name)
        same = backtests.setdefault(json.dumps(resolved_config(trial.config)), trial.name)
        if same != trial.name:
            raise ConfigError(
                f"sweep trials {same!r} and {trial.name!r} are the same backtest (their grid "
                "values are equal once read, e.g. 1 and 1.0, or a default written out); list "
                "each value once"
            )


def _same_dates(trials: list[Trial], history: int, *, start_together: bool) -> None:
    """Refuse trials whose data differ in dates, leave too little history or charge costs to
    assets the data lacks; start them together if asked."""
    panel = load_panel(trials[0].config.data)
    dates = panel.dates
    assets = {trials[0].config.data.model_dump_json(): panel.assets}
    for trial in trials:
        data = trial.config.data.model_dump_json()
        if data not in assets:
            other = load_panel(trial.config.data)
            assets[data] = other.assets
            if not other.dates.equals(dates):
                raise ConfigError(
                    f"sweep trials {trials[0].name!r} and {trial.name!r} run on data with "
                    f"different dates ({_span(dates)} against {_span(other.dates)}); a sweep "
                    "ranks trials on the same dates: sweep data settings that keep the calendar"
                )
        try:  # per-asset rates name the data's assets
            cost_rates(trial.config.backtest.costs_bps, assets[data])
        except ConfigError as exc:
            raise ConfigError(f"sweep trial {trial.name!r}: {exc}") from None
    backtest = trials[0].config.backtest
    if history >= len(dates) - 1:
        raise ConfigError(
            f"the sweep's strategies need {history} returns of history, and its data has "
            f"{len(dates)} dates ({_span(dates)}); use more data or shorter lookbacks"
        )
    if start_together:
        for trial in trials:
            trial.config.backtest.start = str(dates[history].date())
    first = int(dates.searchsorted(pd.Timestamp(backtest.start)))
    if first < history:
        raise ConfigError(
            f"backtest.start = {backtest.start} leaves fewer than the {history} returns of "
            f"history the sweep's longest lookback needs; start on or after "
            f"{dates[history].date()} or shorten the lookbacks"
        )
    end = backtest.end
    last = len(dates) - 1
    if end is not None:
        last = int(dates.searchsorted(pd.Timestamp(end), side="right")) - 1
    if last - first < 1:
        begins = "" if not start_together else " (when every strategy has its history)"
        raise ConfigError(
            f"the sweep's backtest would start on {dates[min(first, len(dates) - 1)].date()}"
            f"{begins} and end on {dates[max(last, 0)].date()}: no dates to trade; move "
            "backtest.end later (or backtest.start earlier), or shorten the lookbacks"
        )


def _span(dates: pd.Index) -> str:
    if len(dates) == 0:
        return "no dates"
    return f"{len(dates)} days, {dates[0].date()} to {dates[-1].date()}"


def _strategy_index(path: KeyPath, entries: list[dict], names: list[str]) -> int:
    """The entry ``path[1]`` names: by label, else by its own name or its registry name."""
    wanted = path[1]
    found = [
        i
        for i, entry in enumerate(entries)
        if wanted == names[i] or ("label" not in entry and wanted == entry["name"])
    ]
    key = "sweep.grid." + ".".join(path)
    if not found:
        raise ConfigError(
            f"{key}: no strategy is called {wanted!r}; the strategies are "
            + ", ".join(repr(n) for n in names)
        )
    if len(found) > 1:
        raise ConfigError(
            f"{key}: {wanted!r} names {len(found)} strategies ("
            + ", ".join(repr(names[i]) for i in found)
            + "); name one by its label"
        )
    return found[0]


def _short_keys(paths: list[KeyPath]) -> dict[KeyPath, str]:
    """Each path's last part, or the whole dotted path where two paths end alike."""
    ends = [p[-1] for p in paths]
    return {p: p[-1] if ends.count(p[-1]) == 1 else ".".join(p) for p in paths}


def _text(value: object) -> str:
    """A value as a trial name shows it: exactly (``repr`` of a float), strings bare."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class SweepOutputs:
    """What a sweep produced.

    Attributes
    ----------
    trials : list of Trial
    keys : list of str
        Each trial's key in the run store.
    reused : int
        How many trials were read from the store rather than run.
    same_as : dict
        Trials left out of the ranking, each with the trial of its scenario whose net returns
        it repeats exactly.
    result : BacktestResult
        The ranked trials as one result, each strategy under its trial's name.
    leaderboard : DataFrame
        The ranked trials (`kabuto.evaluation.leaderboard`, scenario by scenario).
    table : DataFrame
        One row per trial: its grid values, store key, ``same_as`` and leaderboard metrics.
    out_dir : Path or None
    """

    trials: list[Trial]
    keys: list[str]
    reused: int
    same_as: dict[str, str]
    result: BacktestResult
    leaderboard: pd.DataFrame
    table: pd.DataFrame
    out_dir: Path | None


def run_sweep(
    config: SweepConfig,
    out_dir: str | Path | None = None,
    *,
    store: RunStore | str | Path,
    jobs: int | None = None,
    progress: RunProgress | None = None,
) -> SweepOutputs:
    """Run the trials the store lacks, then rank every trial and write the outputs.

    Parameters
    ----------
    config : SweepConfig
    out_dir : str or Path, optional
        Where to write ``sweep.csv`` and the outputs of `kabuto.experiment.run.write_outputs`
        for the ranked trials (atomically: all of them or none).
    store : RunStore, str or Path
        The run store trials are read from and filed in.
    jobs : int, optional
        Trials at once; default ``config.sweep.jobs``.
    progress : RunProgress, optional
        Told of each trial as it is done (the ones from the store at once).

    Raises
    ------
    KabutoError
        For a bad grid, trial, benchmark strategy, output directory or store, before any trial
        runs; or a trial that fails (its name first; the trials finished before it stay in the
        store).
    """
    if out_dir is not None:
        check_out_dir(out_dir)
    store = store if isinstance(store, RunStore) else RunStore(store)
    jobs = config.sweep.jobs if jobs is None else jobs
    if not (isinstance(jobs, int) and not isinstance(jobs, bool) and 1 <= jobs <= 256):
        raise ConfigError(f"jobs = {jobs!r}: expected a whole number from 1 to 256")
    trials = plan_trials(config)
    benchmark = config.report.benchmark_strategy
    if benchmark is not None:  # a misspelling fails before the trials run
        check_benchmark_strategy(benchmark, list(dict.fromkeys(t.strategy for t in trials)))
    if out_dir is not None:
        out, store_dir = Path(out_dir).resolve(), store.root.resolve()
        if store_dir == out or out in store_dir.parents:
            raise ConfigError(
                f"the run store {store.root} is inside the output directory {out_dir}, which "
                "a sweep replaces as a whole; choose a store outside it (--store)"
            )
    store.check_writable()
    threads = config.sweep.threads
    keys = [run_key(t.config, threads) for t in trials]
    root = str(store.root.resolve())
    calls = [
        TrialCall(root, key, trial.name, trial.config, threads)
        for trial, key in zip(trials, keys, strict=True)
        if not store.has(key)
    ]
    if progress is not None:
        progress.stage("trials", len(trials))
        progress.advance(len(trials) - len(calls))
    execute(calls, config.sweep.executor, jobs, lambda: _advance(progress))
    if progress is not None:
        progress.stage("statistics")
    results = [store.load(key) for key in keys]
    combined, board, same_as = rank_trials(
        trials, results, benchmark, n_boot=config.report.n_boot, seed=config.report.seed
    )
    table = _trial_table(trials, keys, same_as, board)
    reused = len(trials) - len(calls)
    written = None
    if out_dir is not None:
        if progress is not None:
            progress.stage("report")
        section = ("Sweep", _sweep_section(config, trials, reused, same_as, store))
        # what each ranked trial's fitted strategy learned, under the trial's name
        explanations = {
            trial.name: text
            for trial, key in zip(trials, keys, strict=True)
            if trial.name in combined.strategies
            and (text := store.explanations(key).get(trial.strategy))
        }
        written = write_outputs(
            Path(out_dir),
            config,
            combined,
            board,
            explanations,
            extra_sections=[section],
            extra_files={"sweep.csv": lambda path: table.to_csv(path, index=False)},
            definitions=SWEEP_DEFINITIONS,
        )
    return SweepOutputs(trials, keys, reused, same_as, combined, board, table, written)


def _advance(progress: RunProgress | None) -> None:
    if progress is not None:
        progress.advance(1)


def _trial_table(
    trials: list[Trial], keys: list[str], same_as: dict[str, str], board: pd.DataFrame
) -> pd.DataFrame:
    grid = list(dict.fromkeys(k for t in trials for k in t.values))
    rows = [
        {"trial": t.name, "strategy": t.strategy, **t.values, "run": key}
        | {"same_as": same_as.get(t.name)}
        for t, key in zip(trials, keys, strict=True)
    ]
    table = pd.DataFrame(rows, columns=["trial", "strategy", *grid, "run", "same_as"])
    for column in grid:
        values = [t.values[column] for t in trials if column in t.values]
        if any(isinstance(v, dict | list) for v in values):  # per-asset costs, as JSON
            table[column] = [
                _text(t.values[column]) if column in t.values else None for t in trials
            ]
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            table[column] = table[column].astype("Int64")  # whole beside blanks, not 60.0
    metrics = board.reset_index().rename(columns={"strategy": "trial"})
    return table.merge(metrics, on="trial", how="left")


def _sweep_section(
    config: SweepConfig,
    trials: list[Trial],
    reused: int,
    same_as: dict[str, str],
    store: RunStore,
) -> str:
    grid = "".join(
        f"<li><code>{escape('.'.join(path))}</code>: "
        f"{escape(', '.join(_text(v) for v in values))}</li>"
        for path, values in grid_paths(config.sweep.grid).items()
    )
    repeats = "".join(
        f"<li>{escape(name)} repeats {escape(first)} exactly: ranked once</li>"
        for name, first in same_as.items()
    )
    return (
        f"<p>{len(trials)} trials ({reused} read from the run store "
        f"{escape(str(store.root))}, {len(trials) - reused} run, each on "
        f"{config.sweep.threads} thread(s)), ranked in the leaderboard within each scenario "
        "of data and cost level (one, if the grid sets neither): the deflated Sharpe ratio "
        "counts the trials of a scenario, and the probability of backtest overfitting is "
        "computed over them. Each trial's grid values and run key are in sweep.csv.</p>"
        f"<ul>{grid}</ul>" + (f"<ul>{repeats}</ul>" if repeats else "")
    )
