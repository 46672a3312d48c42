"""Run a config end to end and write its outputs atomically.

Output directory layout::

    metrics.json      leaderboard rows (net metrics, Sharpe CIs, PSR, DSR) and definitions
    returns.parquet   tidy: date, strategy, gross, net, cost
    weights.parquet   tidy: date, strategy, asset, weight (target weights per rebalance)
    config.toml       the resolved config (defaults filled in)
    explanations.json what the fitted models learned, per strategy that can say (for example the
                      Trader-Company's best formulas); read by `kabuto explain`
    report.html       the self-contained report

Everything is written into a temporary sibling directory and renamed into place at the end, so
a failed run leaves nothing half-written (and an earlier run's directory intact). The directory
also holds `kabuto.staging.MARKER`, which lets a later run replace it.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from kabuto.backtest import BacktestResult, WalkForward
from kabuto.backtest.engine import name_strategies
from kabuto.data import Panel, load_prices, load_sp500
from kabuto.errors import ConfigError
from kabuto.evaluation import METRIC_DEFINITIONS, leaderboard
from kabuto.evaluation.leaderboard import BOARD_STATISTICS, check_benchmark_strategy
from kabuto.experiment.config import DataConfig, RunConfig
from kabuto.report import write_report
from kabuto.sim import correlated_gbm, garch_panel
from kabuto.staging import check_out_dir, staged_dir
from kabuto.strategies import make_strategy
from kabuto.strategies.base import Strategy
from kabuto.strategies.registry import takes_setting


@dataclass(frozen=True)
class RunOutputs:
    """What a run produced."""

    result: BacktestResult
    leaderboard: pd.DataFrame
    out_dir: Path | None
    explanations: dict[str, str]


def load_panel(config: DataConfig) -> Panel:
    """The panel a data config describes."""
    if config.source == "sp500":
        return load_sp500()
    if config.source == "file":
        if not config.path:
            raise ConfigError("data.path is required when data.source = 'file'")
        return load_prices(config.path, format=config.format, max_ffill=config.max_ffill)
    generator = correlated_gbm if config.source == "gbm" else garch_panel
    return generator(config.n_assets, config.n_days, seed=config.seed)


def build_strategies(config: RunConfig) -> list[Strategy]:
    """Instantiate the configured strategies through the registry.

    A strategy that trains against transaction costs (``eiie``, ``rl_agent``: a ``costs_bps``
    setting) and does not set its own trains against the backtest's ``costs_bps``, the costs it
    will be charged (per-asset ones in sorted order, so that the run store's key does not depend
    on how a config lists them). Not with ``cost_model = "exact"`` and per-asset backtest costs:
    that model takes one rate, so it keeps its own.
    """
    costs = config.backtest.costs_bps
    per_asset = isinstance(costs, Mapping)
    built = []
    for i, entry in enumerate(config.strategies):
        params = {k: v for k, v in entry.items() if k != "name"}
        exact = params.get("cost_model") == "exact"
        if (
            "costs_bps" not in params
            and takes_setting(entry["name"], "costs_bps")
            and not (per_asset and exact)
        ):
            params["costs_bps"] = dict(sorted(costs.items())) if per_asset else costs
        try:
            built.append(make_strategy(entry["name"], **params))
        except ConfigError as exc:
            raise ConfigError(f"strategies[{i}]: {exc}") from None
    return built


def walk_forward(config: RunConfig) -> WalkForward:
    """The engine settings of a config."""
    bt = config.backtest
    return WalkForward(
        start=bt.start,
        end=bt.end,
        rebalance=bt.rebalance,
        retrain=None if bt.retrain == "never" else bt.retrain,
        costs_bps=bt.costs_bps,
        long_only=bt.long_only,
        max_leverage=bt.max_leverage,
    )


class RunProgress(Protocol):
    """Where a run reports its stages (the CLI draws them as a progress bar)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """A new stage begins; `total` steps if known."""

    def advance(self, steps: int) -> None:
        """`steps` more steps of the current stage are done."""


def run_config(
    config: RunConfig, out_dir: str | Path | None = None, *, progress: RunProgress | None = None
) -> RunOutputs:
    """Load data, backtest every strategy, compute statistics and (optionally) write outputs.

    An `out_dir` that cannot take the outputs (`kabuto.staging.check_out_dir`) is an error
    before any work.
    """
    if out_dir is not None:
        check_out_dir(out_dir)
    panel = load_panel(config.data)
    strategies = build_strategies(config)
    if config.report.benchmark_strategy is not None:  # a misspelling fails before the backtest
        check_benchmark_strategy(
            config.report.benchmark_strategy, list(name_strategies(strategies))
        )
    engine = walk_forward(config)
    if progress is not None:
        progress.stage("backtest", engine.count_decisions(panel, strategies) * len(strategies))
    result = engine.run(panel, strategies, progress=progress.advance if progress else None)
    if progress is not None:
        progress.stage("statistics")
    board = leaderboard(
        result,
        benchmark_strategy=config.report.benchmark_strategy,
        n_boot=config.report.n_boot,
        seed=config.report.seed,
    )
    explanations = explain_strategies(strategies)
    if out_dir is None:
        return RunOutputs(result, board, None, explanations)
    if progress is not None:
        progress.stage("report")
    written = write_outputs(Path(out_dir), config, result, board, explanations)
    return RunOutputs(result, board, written, explanations)


def explain_strategies(strategies: list[Strategy]) -> dict[str, str]:
    """What each fitted strategy that has an ``explanation()`` says it learned, by name."""
    out = {}
    for strategy in strategies:
        explain = getattr(strategy, "explanation", None)
        text = explain() if callable(explain) else None
        if text:
            out[strategy.name] = text
    return out


def write_outputs(
    out_dir: Path,
    config: RunConfig,
    result: BacktestResult,
    board: pd.DataFrame,
    explanations: dict[str, str] | None = None,
    *,
    extra_sections: Sequence[tuple[str, str]] = (),
    extra_files: Mapping[str, Callable[[Path], object]] | None = None,
    definitions: Mapping[str, str] = METRIC_DEFINITIONS,
) -> Path:
    """Write the run's files into `out_dir`, atomically (all of them or none).

    `extra_sections` are further (heading, HTML) sections of the report; `extra_files` maps
    further file names to functions writing them, each given its path; `definitions` are the
    metrics' definitions printed in the report and metrics.json.
    """
    out_dir = out_dir.resolve()
    with staged_dir(out_dir) as staging:
        for name, write in (extra_files or {}).items():
            write(staging / name)
        _metrics_json(staging / "metrics.json", board, result, definitions)
        returns_table(result).to_parquet(staging / "returns.parquet", index=False)
        weights_table(result).to_parquet(staging / "weights.parquet", index=False)
        (staging / "config.toml").write_text(config.to_toml(), encoding="utf-8")
        explanations = explanations or {}
        (staging / "explanations.json").write_text(
            json.dumps(explanations, indent=2), encoding="utf-8"
        )
        write_report(
            result,
            board,
            staging / "report.html",
            title=config.report.title,
            metric_definitions=definitions,
            extra_sections=[
                *extra_sections,
                *(
                    (f"What {name} learned", f"<pre>{html.escape(text)}</pre>")
                    for name, text in explanations.items()
                ),
            ],
        )
    return out_dir


def _json_safe(value):
    """`value` as standard JSON reads it, nested in lists and dicts too: NaN (undefined) as
    None, and +-inf as the strings "inf" and "-inf", which keep their sign (the Sharpe of
    constant positive returns is inf) and which Python's `float` reads back."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _metrics_json(
    path: Path, board: pd.DataFrame, result: BacktestResult, definitions: Mapping[str, str]
) -> None:
    rows = {
        str(name): {k: _json_safe(v) for k, v in row.items()}
        for name, row in board.to_dict(orient="index").items()
    }
    # What the numbers need to be read on their own: the caveat of the data, the costs charged
    # and the inference settings (benchmark strategy, trials behind the DSR, bootstrap, seed).
    payload = {
        "strategies": rows,
        "definitions": dict(definitions),
        "data_source": result.data_source,
        "survivorship_caveat": result.survivorship_caveat,
        "costs_bps": result.settings["backtest"]["costs_bps"],
        "statistics": {k: _json_safe(v) for k, v in board.attrs.items()},
        "statistics_definitions": {k: BOARD_STATISTICS[k] for k in board.attrs},
    }
    path.write_text(
        json.dumps(payload, indent=2, default=lambda v: _json_safe(float(v))), encoding="utf-8"
    )


def returns_table(result: BacktestResult) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "date": r.net_returns.index,
                "strategy": name,
                "gross": r.gross_returns.to_numpy(),
                "net": r.net_returns.to_numpy(),
                "cost": r.costs.to_numpy(),
            }
        )
        for name, r in result.strategies.items()
    ]
    return pd.concat(frames, ignore_index=True)


def weights_table(result: BacktestResult) -> pd.DataFrame:
    frames = []
    for name, r in result.strategies.items():
        tidy = r.target_weights.rename_axis("date").reset_index()
        tidy = tidy.melt(id_vars="date", var_name="asset", value_name="weight")
        tidy.insert(1, "strategy", name)
        frames.append(tidy)
    return pd.concat(frames, ignore_index=True)
