"""Write a `SimulationResult` to Parquet files, atomically.

Output directory layout::

    steps.parquet    long form, one row per run, market and step: run, seed, step, market,
                     price, fundamental, best_bid, best_ask, volume, trades, orders,
                     depth_bid, depth_ask
    bars.parquet     the closes sampled every `bar` steps from `start_step` on, per run and
                     market: run, seed, bar, step, date, market, close, log_return
    trades.parquet   every trade, when asked for and logged: run, seed, step, market, price,
                     volume, buyer, seller
    (extra files)    such as report.html, handed in already rendered

Rows are ordered by run, then market, then step (bar, for bars): the rows of one run are
``SimulationResult.frame(run)``, and the rows of one run of bars.parquet pivot (date x market,
``close``) to ``SimulationResult.panel(bar, run, start_step).prices``.

Everything is written into a temporary sibling directory and renamed into place at the end,
as for backtests (`kabuto.staging`), so a failure leaves nothing half-written (and an
earlier run's directory intact).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from kabuto.errors import ConfigError
from kabuto.sim.artificial.engine import (
    BEST_ASK,
    BEST_BID,
    CLOSE,
    DEPTH_ASK,
    DEPTH_BID,
    FUNDAMENTAL,
    ORDERS,
    TRADES,
    VOLUME_TRADED,
)
from kabuto.sim.artificial.runner import SimulationResult
from kabuto.staging import staged_dir

__all__ = ["STEP_COLUMNS", "bars_table", "steps_table", "trades_table", "write_outputs"]

#: Columns of steps.parquet, in order.
STEP_COLUMNS = (
    "run",
    "seed",
    "step",
    "market",
    "price",
    "fundamental",
    "best_bid",
    "best_ask",
    "volume",
    "trades",
    "orders",
    "depth_bid",
    "depth_ask",
)


def _ids(result: SimulationResult, n_steps: int) -> dict[str, np.ndarray]:
    """The run, seed, step and market columns of an (R, M, n_steps) grid, flattened C-order."""
    R, M = result.prices.shape[0], result.prices.shape[2]
    run = np.repeat(np.arange(R, dtype=np.int64), M * n_steps)
    seeds = np.asarray(result.seeds, dtype=np.int64)  # spawned seeds are < 2**63
    names = np.asarray(result.market_names, dtype=object)
    return {
        "run": run,
        "seed": seeds[run],
        "market": np.tile(np.repeat(names, n_steps), R),
        "step": np.tile(np.arange(n_steps, dtype=np.int64), R * M),
    }


def steps_table(result: SimulationResult) -> pd.DataFrame:
    """Every per-step field of every run, long form (the steps.parquet table).

    Returns
    -------
    DataFrame of R * M * T rows
        Columns `STEP_COLUMNS`, ordered by run, market, step. ``price`` is the close (last
        trade price, carried forward); ``best_bid`` / ``best_ask`` are NaN when that side of
        the book is empty. Counts are int64.
    """
    R, T, M, _ = result.prices.shape
    # (R, T, M, F) -> (R, M, T, F): one run's markets, each a contiguous block of steps, the
    # row order of SimulationResult.frame; a single reshape instead of a loop over runs.
    prices = result.prices.transpose(0, 2, 1, 3).reshape(R * M * T, -1)
    counts = result.counts.transpose(0, 2, 1, 3).reshape(R * M * T, -1).astype(np.int64)
    ids = _ids(result, T)
    columns = {
        "run": ids["run"],
        "seed": ids["seed"],
        "step": ids["step"],
        "market": pd.array(ids["market"], dtype="string"),
        "price": prices[:, CLOSE],
        "fundamental": prices[:, FUNDAMENTAL],
        "best_bid": prices[:, BEST_BID],
        "best_ask": prices[:, BEST_ASK],
        "volume": counts[:, VOLUME_TRADED],
        "trades": counts[:, TRADES],
        "orders": counts[:, ORDERS],
        "depth_bid": counts[:, DEPTH_BID],
        "depth_ask": counts[:, DEPTH_ASK],
    }
    return pd.DataFrame(columns, columns=list(STEP_COLUMNS))


def bars_table(result: SimulationResult, bar: int, start_step: int = 0) -> pd.DataFrame:
    """Closes sampled every `bar` steps from `start_step` on, per run and market (bars.parquet).

    Parameters
    ----------
    result : SimulationResult
        R runs of T steps in M markets.
    bar : int
        Steps per bar, >= 1.
    start_step : int, default 0
        The step of the first close, in ``[0, T)``.

    Returns
    -------
    DataFrame of R * M * B rows, ``B = len(range(start_step, T, bar))``
        Columns run, seed, bar (0..B-1), step, date (the simulated business-day calendar of
        `SimulationResult.panel`), market, close and log_return (``log close`` minus that of
        the bar before; NaN for the first bar), ordered by run, market, bar.
    """
    T = result.prices.shape[1]
    if isinstance(bar, bool) or not isinstance(bar, int | np.integer) or bar < 1:
        raise ConfigError(f"bar must be an integer >= 1 (steps per bar), got {bar!r}")
    if isinstance(start_step, bool) or not isinstance(start_step, int | np.integer):
        raise ConfigError(f"start_step must be an integer step, got {start_step!r}")
    if not 0 <= start_step < T:
        raise ConfigError(f"start_step = {start_step} must be a step in [0, {T})")
    # (R, B, M) closes -> (R, M, B), the same run / market / time order as steps_table.
    closes = result.prices[:, start_step::bar, :, CLOSE].transpose(0, 2, 1)
    R, M, B = closes.shape
    with np.errstate(invalid="ignore", divide="ignore"):  # a close <= 0 gives nan, not a warning
        logs = np.log(closes)
    log_return = np.concatenate([np.full((R, M, 1), np.nan), np.diff(logs, axis=2)], axis=2)
    ids = _ids(result, B)
    # The calendar of SimulationResult.panel, so a run's bars pivot to its Panel exactly.
    dates = result.panel(bar, 0, start_step).dates
    return pd.DataFrame(
        {
            "run": ids["run"],
            "seed": ids["seed"],
            "bar": ids["step"],
            "step": start_step + bar * ids["step"],
            "date": dates[ids["step"]],
            "market": pd.array(ids["market"], dtype="string"),
            "close": closes.reshape(-1),
            "log_return": log_return.reshape(-1),
        }
    )


def trades_table(result: SimulationResult) -> pd.DataFrame | None:
    """Every logged trade of every run, with run, seed and market names (trades.parquet).

    Returns
    -------
    DataFrame or None
        Columns run, seed, step, market, price, volume, buyer, seller (buyer and seller are
        account indices: FCN agents first, then market makers and arbitrageurs, order-flow
        crowds, policy agents and the mistaken orders' account, as
        `SimulationResult.cash`), ordered by run then as logged; None when the result has no
        trade log (``simulate(log_trades=False)``).
    """
    return _log_table(result, result.trades)


def orders_table(result: SimulationResult) -> pd.DataFrame | None:
    """Every logged order of every run (orders.parquet), like `trades_table`.

    Columns run, seed, step, market, agent, side, price (NaN: a market order), volume,
    lifetime; None when the result has no order log (``simulate(log_orders=False)``).
    """
    return _log_table(result, result.orders)


def _log_table(result: SimulationResult, logs: list[pd.DataFrame] | None) -> pd.DataFrame | None:
    """Per-run logs stacked, with run and seed columns and market names."""
    if logs is None:
        return None
    names = np.asarray(result.market_names, dtype=object)
    frames = []
    for run, (seed, log) in enumerate(zip(result.seeds, logs, strict=True)):
        frame = log.copy()
        frame["market"] = pd.array(names[log["market"].to_numpy(dtype=np.int64)], dtype="string")
        frame.insert(0, "seed", np.full(len(log), seed, dtype=np.int64))
        frame.insert(0, "run", np.full(len(log), run, dtype=np.int64))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_outputs(
    result: SimulationResult,
    out_dir: str | os.PathLike[str],
    *,
    trades: bool = False,
    orders: bool = False,
    bar: int = 1,
    start_step: int = 0,
    extra_files: Mapping[str, str | bytes] | None = None,
) -> Path:
    """Write steps.parquet, bars.parquet (and trades.parquet) into `out_dir`, all or nothing.

    Parameters
    ----------
    result : SimulationResult
    out_dir : path
        The directory to write; an existing one (an earlier run's) is replaced as a whole.
    trades : bool, default False
        Also write trades.parquet, if `result` logged trades (``log_trades=True``).
    orders : bool, default False
        Also write orders.parquet, if `result` logged orders (``log_orders=True``).
    bar, start_step : int
        The bar sampling of bars.parquet (see `bars_table`).
    extra_files : mapping of file name -> str or bytes, optional
        More files to put in the directory (the rendered report), so that they are part of the
        same atomic rename; str is written as UTF-8.

    Returns
    -------
    Path
        The directory written (resolved).

    Raises
    ------
    ConfigError
        For a bad `bar` or `start_step`, or an extra file name that is not a plain file name.
    KabutoError
        If `out_dir` exists and is not a directory.
    """
    # Build every table before touching the disk, so bad arguments leave nothing behind.
    tables = {
        "steps.parquet": steps_table(result),
        "bars.parquet": bars_table(result, bar, start_step),
    }
    for name, wanted, table in (
        ("trades.parquet", trades, trades_table),
        ("orders.parquet", orders, orders_table),
    ):
        log = table(result) if wanted else None
        if log is not None:
            tables[name] = log
    extra = dict(extra_files or {})
    for name in extra:
        if not name or Path(name).name != name or name in (".", "..") or name in tables:
            raise ConfigError(f"extra file name {name!r} must be a plain, new file name")
    out = Path(out_dir).resolve()
    with staged_dir(out) as staging:
        for name, table in tables.items():
            table.to_parquet(staging / name, index=False)
        for name, content in extra.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (staging / name).write_bytes(data)
    return out
