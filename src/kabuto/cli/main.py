"""The `kabuto` command.

Bad input (files, configs, arguments) prints one line, ``error: ...``, and exits 2 with nothing
half-written. Progress bars show only on a terminal.
"""

from __future__ import annotations

import json
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from kabuto.errors import ConfigError, KabutoError, OutputDirError, StoreError
from kabuto.staging import MARKER, check_out_dir

app = typer.Typer(
    help="kabuto: honest walk-forward backtests of portfolio strategies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect price files.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
if not console.is_terminal:  # piped: no terminal width to respect, so don't fold the table
    console = Console(width=160)
errors = Console(stderr=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Repairs made on the user's behalf, as one line each (no source location)."""
    text = " ".join(str(message).split())
    errors.print(f"warning: {text}", markup=False, highlight=False, soft_wrap=True)


@app.callback()
def _setup() -> None:
    """kabuto: honest walk-forward backtests of portfolio strategies."""
    warnings.showwarning = _show_warning


def _fail(exc: KabutoError) -> None:
    message = " ".join(str(exc).split())  # one line, whatever the message holds
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


class _Bar:
    """The run's stages on a rich progress bar (a `kabuto.experiment.run.RunProgress`)."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.task = bar, None

    def stage(self, description: str, total: int | None = None) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(description, total=total)

    def advance(self, steps: int) -> None:
        self.bar.advance(self.task, steps)


@contextmanager
def _progress():
    """A progress reporter drawn on the terminal, or None when output is piped."""
    if not console.is_terminal:
        yield None
        return
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        yield _Bar(bar)


def _leaderboard_table(
    board: pd.DataFrame, caveat: str | None, *, rows: int | None = None, more: str = ""
) -> Table:
    """The board's first `rows` rows (all by default); `more` says where the rest are."""
    if rows is not None and len(board) > rows:
        caveat = " ".join(filter(None, [f"{len(board) - rows} more in {more}.", caveat]))
        board = board.iloc[:rows]
    from kabuto.report.tables import MISSING, ci_header, format_value, metric_format

    # a path's or a label's "[...]" is not markup
    caption = Text(" ".join(filter(None, [LEADERBOARD_LEGEND, caveat])))
    table = Table(title="Leaderboard (net of costs)", caption=caption, caption_justify="left")
    table.add_column("strategy", no_wrap=True)
    columns = [
        ("cagr", "CAGR"),
        ("volatility", "Vol"),
        ("sharpe", "Sharpe"),
        ("sharpe_ci", ci_header(board)),
        ("max_drawdown", "MaxDD"),
        ("turnover", "Turnover/yr"),
        ("costs_paid", "Costs/yr"),
        ("psr", "PSR"),
        ("dsr", "DSR"),
    ]
    for _, header in columns:
        table.add_column(header, justify="right")
    for name, row in board.iterrows():
        cells = []
        for key, _ in columns:  # as the report prints them (`kabuto.report.tables`)
            if key == "sharpe_ci":
                low, high = row["sharpe_ci_low"], row["sharpe_ci_high"]
                cells.append(
                    f"{format_value(low, 'ratio')} to {format_value(high, 'ratio')}"
                    if pd.notna(low)
                    else MISSING
                )
            else:
                cells.append(format_value(row.get(key), metric_format(key).kind))
        table.add_row(Text(str(name)), *cells)
    return table


#: What the console leaderboard's columns are (report.html defines every metric in full).
LEADERBOARD_LEGEND = (
    "Sharpe: annualized (sqrt(252)), risk-free 0; CI: stationary-bootstrap percentile "
    "interval; PSR: P(true Sharpe > 0); DSR: PSR against the best Sharpe expected by luck among "
    "the strategies ranked together (all on the board; a sweep's, within each scenario); "
    "Turnover: one-way traded notional a year; definitions of every column in the report."
)


def _run_and_report(config, out: Path) -> None:
    from kabuto.experiment.run import run_config
    from kabuto.report.html import cost_note, overfitting_note

    with _progress() as progress:
        outputs = run_config(config, out, progress=progress)
    console.print(_leaderboard_table(outputs.leaderboard, outputs.result.survivorship_caveat))
    console.print(cost_note(outputs.result), markup=False, highlight=False)
    if pbo := overfitting_note(outputs.leaderboard):
        console.print(pbo, markup=False, highlight=False)
    console.print(f"report: {outputs.out_dir / 'report.html'}", markup=False, highlight=False)


def _guarded(run: Callable[[], None]) -> None:
    try:
        run()
    except KabutoError as exc:
        _fail(exc)
    except MemoryError as exc:  # numpy's too-large arrays; torch's are RuntimeErrors (below)
        _fail(KabutoError(f"not enough memory for this run ({exc}); {_SMALLER}"))
    except RuntimeError as exc:
        if "can't allocate memory" not in str(exc):
            raise
        _fail(KabutoError(f"not enough memory for this run ({exc}); {_SMALLER}"))


_SMALLER = "make it smaller (fewer paths, steps, runs, assets, dates or bootstrap samples)"


@contextmanager
def _naming(config: Path) -> Iterator[None]:
    """Errors raised in the block start with the config file they came from (if not already)."""
    try:
        yield
    except (OutputDirError, StoreError):
        raise  # about --out or --store, which the message names, not about the config
    except KabutoError as exc:
        if str(exc).startswith(str(config)):
            raise
        raise type(exc)(f"{config}: {exc}") from exc


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("kabuto-demo"),
) -> None:
    """Every classical strategy on the bundled S&P 500 data, 2000-2022, 10 bps costs."""
    from kabuto.experiment.demo import demo_config

    def run() -> None:
        check_out_dir(out)  # before the work, not after it
        _run_and_report(demo_config(), out)

    _guarded(run)


@app.command()
def backtest(
    config: Annotated[Path, typer.Argument(help="TOML config file.")],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("kabuto-run"),
) -> None:
    """Run the backtest a TOML config describes and write its outputs and report."""
    from kabuto.experiment.config import load_config

    def run() -> None:
        check_out_dir(out)  # before the work, not after it
        with _naming(config):
            _run_and_report(load_config(config), out)

    _guarded(run)


def _read_explanations(path: Path) -> dict[str, str]:
    """A run's explanations.json: strategy label -> what its fitted model learned."""
    if not path.is_file():
        raise KabutoError(
            f"{path}: not found; pass the output directory of `kabuto backtest` or "
            "`kabuto demo` (runs before explanations existed need to be rerun)"
        )
    try:
        explanations = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KabutoError(f"{path}: unreadable ({exc}); rerun the backtest") from exc
    texts = explanations.values() if isinstance(explanations, dict) else [None]
    if not all(isinstance(text, str) for text in texts):  # (JSON keys are always strings)
        raise KabutoError(
            f"{path}: not a run's explanations (expected an object of strategy label -> text); "
            "rerun the backtest"
        )
    return explanations


@app.command()
def explain(
    run_dir: Annotated[Path, typer.Argument(help="Output directory of a run.")],
    strategy: Annotated[
        str | None, typer.Option(help="Only this strategy (its label in the run).")
    ] = None,
) -> None:
    """Print what the run's fitted models learned (e.g. the Trader-Company's best formulas)."""

    def run() -> None:
        if not run_dir.is_dir():
            raise KabutoError(f"{run_dir}: no such run directory (give the --out of a backtest)")
        path = run_dir / "explanations.json"
        explanations = _read_explanations(path)
        if strategy is not None:
            if strategy not in explanations:
                raise KabutoError(
                    f"{path}: no explanation for strategy {strategy!r}; available: "
                    + (", ".join(map(repr, explanations)) or "none")
                )
            explanations = {strategy: explanations[strategy]}
        if not explanations:
            console.print("no strategy in this run explains itself (e.g. trader_company does)")
        for name, text in explanations.items():
            console.rule(Text(name))  # a label's "[...]" is not markup
            console.print(text, markup=False, highlight=False, soft_wrap=True)

    _guarded(run)


def _facts_table(summary: pd.DataFrame, title: str) -> Table:
    """A market's stylized facts across runs, as printed after `kabuto simulate`."""
    from kabuto.report.tables import MISSING

    caption = (
        "Per-run statistics of bar log returns r, summarised across runs: s.e. = std / "
        "sqrt(runs); each statistic's definition, and the Hill estimate's caveat, are in the "
        "report (report.html, Stylized facts)."
    )
    table = Table(title=Text(title), caption=caption, caption_justify="left")
    table.add_column("statistic", no_wrap=True)
    shown = {"mean": "mean", "se": "s.e.", "std": "std", "q05": "q05", "q95": "q95"}
    for header in shown.values():
        table.add_column(header, justify="right")
    table.add_column("undefined", justify="right")
    for statistic, row in summary.iterrows():
        cells = [MISSING if pd.isna(row[c]) else f"{row[c]:.4g}" for c in shown]
        table.add_row(str(statistic), *cells, f"{int(row['n_nan'])}/{int(row['n_runs'])}")
    return table


@app.command("simulate")
def simulate_command(
    config: Annotated[
        Path, typer.Argument(help="Simulation config: PAMS JSON (.json) or kabuto TOML.")
    ],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/simulate"),
    runs: Annotated[int, typer.Option(help="Independent runs (Monte Carlo).")] = 10,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed: one run uses it; with several, run k gets a seed derived from it."
        ),
    ] = 0,
    bar: Annotated[int, typer.Option(help="Steps per bar for returns and bars.parquet.")] = 10,
    trades: Annotated[bool, typer.Option("--trades", help="Also write every trade.")] = False,
    orders: Annotated[bool, typer.Option("--orders", help="Also write every order.")] = False,
) -> None:
    """Simulate an artificial market and write its per-step data and stylized-facts report.

    Writes steps.parquet, bars.parquet (trades.parquet with --trades, orders.parquet with
    --orders) and report.html into the output directory. Bars close every BAR steps from the
    first step of the first session that executes orders.
    """

    def run() -> None:
        check_out_dir(out)  # before the work, not after it
        if runs < 1:
            raise ConfigError(f"--runs must be at least 1, got {runs}")
        if bar < 1:
            raise ConfigError(f"--bar must be at least 1 (steps per bar), got {bar}")
        if not 0 <= seed < 2**63:
            raise ConfigError(f"--seed must be an integer from 0 to 2**63 - 1, got {seed}")
        from kabuto.report.simulation import (
            ALL_RAN_AWAY,
            DEFAULT_LAGS,
            check_bars,
            facts_by_market,
            first_executing_step,
            render_report,
        )
        from kabuto.sim.artificial import load_simulation, simulate
        from kabuto.sim.artificial.output import write_outputs

        with _naming(config):
            sim_config = load_simulation(config)
            policy_groups = [g.name for g in sim_config.agents if g.type == "policy"]
            if policy_groups:  # their decision functions are Python callables
                raise ConfigError(
                    f"policy groups {policy_groups} decide with Python functions, which a "
                    "config cannot hold; run this market from Python: kabuto.sim.artificial."
                    "simulate(config, policies={name: function})"
                )
            start_step = first_executing_step(sim_config)
            # Before simulating: a bar too long for the lags fails at once, not after the runs.
            check_bars(sim_config.n_steps, bar, start_step, DEFAULT_LAGS)
        with _progress() as progress:
            if progress is not None:
                progress.stage(f"simulate {runs} run(s)")
            result = simulate(
                sim_config, seed=seed, runs=runs, log_trades=trades, log_orders=orders
            )
            if progress is not None:
                progress.stage("report")
            facts = facts_by_market(result, bar=bar, start_step=start_step)
            page = render_report(
                result, bar=bar, start_step=start_step, source=str(config), seed=seed
            )
            written = write_outputs(
                result,
                out,
                trades=trades,
                orders=orders,
                bar=bar,
                start_step=start_step,
                extra_files={"report.html": page},
            )
        for name, market_facts in facts.items():
            if market_facts is None:
                console.print(f"Stylized facts: {name}: {ALL_RAN_AWAY}", markup=False)
                continue
            left_out = runs - market_facts.n_runs
            title = (
                f"Stylized facts: {name}, {market_facts.n_runs} run(s)"
                + (f" ({left_out} that ran away left out)" if left_out else "")
                + f", {market_facts.n_returns} returns of {bar}-step bars from step {start_step}"
            )
            console.print(_facts_table(market_facts.summary(), title))
        for path in sorted(written.iterdir()):
            if path.name != MARKER:
                console.print(f"{path.stem}: {path}", markup=False, highlight=False)

    _guarded(run)


#: Trainings a `kabuto hedge` console table shows (the rest are in risk.csv and the report).
CONSOLE_TRAININGS = 3


def _risk_table(run) -> Table:
    """The risk table of a `kabuto hedge` run, one column per hedger (the first
    `CONSOLE_TRAININGS` trainings), as printed after it."""
    from kabuto.experiment.hedge import deep_names
    from kabuto.report.hedging import hedger_label, money_format, se_text, spread_note

    config = run.config
    h = config.hedger
    hidden = deep_names(h.trainings)[CONSOLE_TRAININGS:]
    more = f"; trainings {CONSOLE_TRAININGS + 1} to {h.trainings} are in risk.csv" if hidden else ""
    measure = (
        f"entropic risk, aversion {h.aversion:g}"
        if h.risk == "entropic"
        else f"expected shortfall at {h.risk_level:g}"
    )
    table = Table(
        title=f"Hedging a short {config.claim.kind}: {run.prices.shape[0]:,} fresh "
        f"{config.market.model} paths, cost {h.cost:g}",
        caption=f"price: {measure} of the hedged P&L; reference price {run.reference_price:.6f}; "
        f"{spread_note(run)}; the other statistics' standard errors are in risk.csv and "
        f"the report{more}",
        caption_justify="left",
    )
    levels = sorted(config.evaluation.risk_levels)
    money = money_format(abs(run.reference_price))
    rows = [
        ("price", "price", money),
        ("price_se", "price s.e.", se_text),
        ("mean_pnl", "mean P&L", money),
        ("std_pnl", "std P&L", money),
        *((f"var_{q:g}", f"VaR {q:g}", money) for q in levels),
        *((f"es_{q:g}", f"ES {q:g}", money) for q in levels),
        *([("entropic", f"entropic (a = {h.aversion:g})", money)] * (h.risk != "entropic")),
        ("mean_cost", "mean cost", "{:.3g}".format),
        ("mean_turnover", "mean turnover", "{:.3f}".format),
    ]
    hedgers = [name for name in run.risk_table.index if name not in hidden]
    table.add_column("", no_wrap=True)
    for name in hedgers:
        table.add_column(hedger_label(name, run, short=True), justify="right")
    for key, header, text in rows:
        values = run.risk_table[key]
        table.add_row(header, *(text(values[name]) for name in hedgers))
    return table


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="TOML config file with a \\[sweep] table.")],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("kabuto-sweep"),
    store: Annotated[
        Path, typer.Option(help="Run store: trials are read from it and filed in it.")
    ] = Path("kabuto-runs"),
    jobs: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Trials at once (default: the config's sweep.jobs)."),
    ] = None,
) -> None:
    """Backtest every trial of a config's grid and rank the trials together.

    Trials already in the run store are read, not run again; each trial run is filed there as
    it finishes. Writes sweep.csv (each trial's grid values, run key and metrics) and the
    outputs of `kabuto backtest` for all trials together.
    """
    from kabuto.experiment.sweep import load_sweep_config, run_sweep
    from kabuto.report.html import cost_note, overfitting_note, scenario_note

    def run() -> None:
        check_out_dir(out)  # before the work, not after it
        with _naming(config):
            sweep_config = load_sweep_config(config)
            with _progress() as progress:
                outputs = run_sweep(sweep_config, out, store=store, jobs=jobs, progress=progress)
        board, result = outputs.leaderboard, outputs.result
        sweep_csv = outputs.out_dir / "sweep.csv"
        shown, tops = _scenario_tops(board, str(sweep_csv))
        caption = " ".join(filter(None, [tops, result.survivorship_caveat]))
        # every scenario's top is shown, even past 30 rows (more than 30 scenarios)
        rows = len(shown) if board.attrs.get("scenarios") else 30
        console.print(_leaderboard_table(shown, caption, rows=rows, more=str(sweep_csv)))
        console.print(cost_note(result), markup=False, highlight=False)
        if pbo := overfitting_note(board) or scenario_note(board):
            console.print(pbo, markup=False, highlight=False)
        for name, first in outputs.same_as.items():
            console.print(Text(f"{name} repeats {first} exactly: ranked once"))
        ran = len(outputs.trials) - outputs.reused
        console.print(
            f"trials: {len(outputs.trials)} ({outputs.reused} from the store {store}, {ran} run)",
            markup=False,
            highlight=False,
        )
        console.print(f"report: {outputs.out_dir / 'report.html'}", markup=False, highlight=False)

    _guarded(run)


def _check_store_contents(store: Path) -> None:
    """ConfigError for a directory with no complete run that is not an empty store: one of
    damaged runs, or another directory (an output, a store's parent)."""
    entries = [p for p in store.iterdir() if not p.name.startswith(".")]
    damaged = [p for p in entries if (p / "run.json").exists() or (p / "config.toml").exists()]
    if damaged:
        raise ConfigError(
            f"{store}: {len(damaged)} incomplete run(s) and no complete one; delete them, or "
            "run the sweep again, which files them anew"
        )
    if entries:
        raise ConfigError(
            f"{store}: holds other files and no runs, so it is not a run store; pass the "
            "directory a sweep was given as --store"
        )


def _scenario_tops(board: pd.DataFrame, more: str, rows: int = 30) -> tuple[pd.DataFrame, str]:
    """A board ranked scenario by scenario cut to about `rows` rows: the top of every
    scenario, so that no scenario is hidden below another's trials; and the caption saying so."""
    scenarios = board.attrs.get("scenarios")
    if not scenarios or len(board) <= rows:
        return board, ""
    top = max(1, rows // len(scenarios))
    sizes = [s["n_trials"] for s in scenarios]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    kept = [i for s, n in zip(starts, sizes, strict=True) for i in range(s, s + min(n, top))]
    if len(kept) == len(board):
        return board, ""
    return board.iloc[kept], f"Top {top} of each scenario; {len(board) - len(kept)} more in {more}."


@app.command()
def runs(
    store: Annotated[Path, typer.Option(help="Run store to list.")] = Path("kabuto-runs"),
) -> None:
    """List the runs filed in a run store, newest first, with each strategy's net Sharpe."""
    from kabuto.experiment.store import RunStore
    from kabuto.report.tables import format_value

    def run() -> None:
        if not store.is_dir():
            raise ConfigError(f"{store}: no run store here; `kabuto sweep` makes one (--store)")
        table = RunStore(store).runs()
        if table.empty:
            _check_store_contents(store)
        listing = Table(title=Text(f"Runs in {store}"), caption="Sharpe: net, annualized")
        for column in ("key", "name", "strategy", "Sharpe", "seconds", "created"):
            listing.add_column(
                column, justify="right" if column in ("Sharpe", "seconds") else "left"
            )
        for row in table.itertuples():
            listing.add_row(
                row.key,
                Text(row.name),
                Text(row.strategy),
                format_value(row.sharpe, "ratio"),  # undefined: a dash, not "nan"
                f"{row.seconds:.2f}",
                row.created,
            )
        console.print(listing)

    _guarded(run)


@app.command("hedge")
def hedge_command(
    config: Annotated[Path, typer.Argument(help="Deep hedging config (TOML).")],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/hedge"),
) -> None:
    """Train a deep hedger on simulated paths and compare it with baselines on fresh paths.

    Writes report.html, risk.csv (the risk table), pnl.parquet (every hedger's P&L per
    evaluation path) and config.toml (the resolved config) into the output directory.
    """

    def run() -> None:
        from kabuto.experiment.hedge import run_hedge
        from kabuto.experiment.hedge_config import load_hedge_config

        check_out_dir(out)  # before the work, not after it
        with _naming(config):
            hedge_config = load_hedge_config(config)
            with _progress() as progress:
                outputs = run_hedge(hedge_config, out, progress, source=str(config))
        console.print(_risk_table(outputs))
        for name in ("report.html", "risk.csv", "pnl.parquet", "config.toml"):
            console.print(
                f"{name.split('.')[0]}: {outputs.out_dir / name}", markup=False, highlight=False
            )

    _guarded(run)


@data_app.command("info")
def data_info(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet price file.")],
    max_ffill: Annotated[
        int, typer.Option(help="Longest gap to forward-fill (a last price is held as long).")
    ] = 5,
) -> None:
    """Validate a price file and summarise it."""
    from kabuto.data import load_prices, summarize

    def run() -> None:
        summary = summarize(load_prices(path, max_ffill=max_ffill))
        assets = summary.pop("assets")
        table = Table(title=Text(str(path)), show_header=False)
        for key, value in summary.items():
            table.add_row(str(key), Text(str(value)))
        console.print(table)
        per_asset = Table(*assets[0].keys(), title="assets") if assets else None
        for row in assets:
            per_asset.add_row(*(Text(str(v)) for v in row.values()))
        if per_asset is not None:
            console.print(per_asset)

    _guarded(run)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (timeout, kill, a cancelled job) unwinds like Ctrl-C, so that a run's staging
    # directory is removed rather than left half-written beside --out.
    raise SystemExit(128 + signum)


def main() -> int:
    """The console entry point: the exit status (0, 2 for bad input, 130 interrupted)."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return app(prog_name="kabuto", standalone_mode=False) or 0
    except typer.TyperException as exc:  # bad arguments: an unknown option, a missing file name
        message = " ".join(exc.format_message().split())
        if message:  # (none when the usage was shown instead: `kabuto` alone)
            context = getattr(exc, "ctx", None)
            command = context.command_path if context is not None else "kabuto"
            errors.print(
                f"error: {message} (see {command} --help)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return exc.exit_code
    except typer.Abort:  # end of input at a prompt
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
