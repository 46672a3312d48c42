"""Price paths for deep hedging cut from artificial order-book markets.

Hirano (2024, "Experimental analysis of deep hedging using artificial market simulations for
underlying asset simulators", arXiv 2404.09462) trains deep hedgers on the prices of an
agent-based market (FCN agents trading through a continuous double auction, as in PAMS) instead
of on Brownian motion or Heston paths, and compares the hedges under the entropic risk and CVaR.
`artificial_market_paths` makes such training and test sets from a `SimulationConfig`, in the
layout of `kabuto.sim.paths` (prices at ``n_steps + 1`` dates, the first exactly ``spot``), so
`kabuto.hedging.DeepHedger` and the Black-Scholes baselines take them like any other paths.

Sampling
--------
Each run of the simulator is one long price series. Bars close every ``bar`` steps from
``start_step`` (by default the first step of continuous trading, `first_executing_step`: a
pre-open does not move the price), the same bars as the stylized facts
(`kabuto.sim.artificial.facts.bar_returns`): closes at steps ``start, start + bar, ...``. A run
with ``B`` bar returns is cut into ``floor(B / n_steps)`` consecutive, non-overlapping windows
of ``n_steps`` bar returns (``n_steps + 1`` closes; a window's last close is the next window's
first), the leftover bars at the end are dropped, and each window is rescaled to start at
``spot``. Runs are simulated until there are ``n_paths`` windows; path ``i`` is window
``i % w`` of run ``i // w`` (``w`` windows a run), and the last run may be used in part. A
later ``start_step`` skips the opening transient, when agents with long memories have no
history yet (``benchmarks/hedge_artificial_market.py`` starts 2500 steps after the open of the
calibrated example, whose opening can run away).

Non-overlapping windows share no return, but windows of one run are not independent: they share
the run's agents (drawn once a run) and its volatility clustering and fundamental gap carry over
from one window to the next, over horizons as long as the agents' time windows (up to 50 bars of
50 steps in ``examples/artificial_market.toml``). Treat ``n_paths`` windows as worth fewer
independent paths, and estimate errors by batches of whole runs (paths are ordered by run).
Cutting many windows from one run is what makes the sample affordable: a run of the calibrated
example gives 29 windows of 20 bars.

Seeds: run ``k`` is simulated with the ``k``-th seed that ``simulate(config, seed=seed,
runs=R)`` gives its run ``k`` (for any ``R >= 2``; `SimulationResult.seeds`), so unless runs
are dropped (below) the paths are the bars of that batch. They are kept in `MarketPaths.seeds`.

Broken runs. An agent-based market can leave its regime: in ``examples/artificial_market.toml``
about one run in 400 does (a bubble to 1e13 at the open, or a crash to one tick that takes
thousands of steps to undo), while ordinary runs stay close to the fundamental
(``|ln(P / F)| < 0.13`` at every step after the open, in 798 of 800 runs). The bubbles are the
FCN rule's, as PAMS writes it, not the engine's: in the first steps after the open the chart
term is the mean log return over the short history so far, but the expected price extrapolates
it over the agent's whole window (up to 2,500 steps), so a strong chartist early on bids a
multiple of the price, and once such bids trade the next chartists bid higher still (of 1,600
runs drawn with seeds 1 and 2, three did: closes of 7e3, 8e13 and 3e14 against a fundamental of
300, 40 to 140 steps after the open, before falling back). One such run dominates every tail
statistic of a training or test set. ``max_fundamental_gap`` drops the runs whose close strays
further than that from the fundamental at some step from ``start_step`` on; the next seeds of
the same sequence replace them (so the kept runs are still a seeded, reproducible sequence) and
`MarketPaths.dropped_seeds` lists the dropped ones. It conditions the sample on the market
staying sane: say so when reporting results on it.

Volatility
----------
`MarketPaths.sigma` is the sample standard deviation (``ddof = 1``, pooled over all returned
paths and dates) of the returned paths' bar log returns, annualized as
``std * sqrt(bars_per_year)``; ``bars_per_year`` says how many bars make a year (default 252:
a bar is a trading day) and `MarketPaths.maturity` is ``n_steps / bars_per_year`` in the same
convention. Only ``sigma * sqrt(maturity)`` (the return sd over the window) enters the
Black-Scholes delta, so the convention does not change any hedge as long as the hedger gets
both from the same `MarketPaths`.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kabuto.errors import ConfigError
from kabuto.settings import check_int, check_positive, check_seed
from kabuto.sim.artificial.config import SimulationConfig, first_executing_step
from kabuto.sim.artificial.engine import CLOSE, FUNDAMENTAL
from kabuto.sim.artificial.runner import run_seeds, simulate
from kabuto.sim.paths import Device, _check_dtype, _device

__all__ = ["MarketPaths", "artificial_market_paths"]

OWNER = "artificial_market_paths"


@dataclass(frozen=True)
class MarketPaths:
    """Windows of artificial-market bar closes, each starting at ``spot``.

    Attributes
    ----------
    prices : Tensor
        Shape (N, n_steps + 1); path i is window ``i % windows_per_run`` of run
        ``i // windows_per_run``.
    sigma : float
        Annualised volatility of the paths' bar log returns (module docstring).
    bars_per_year : float
        Bars in a year, the annualisation convention of `sigma` and `maturity`.
    runs : int
        Simulator runs used (the last one possibly in part).
    windows_per_run : int
        Non-overlapping windows cut from one run.
    seeds : tuple of int
        Each run's seed: ``simulate(config, seed=seeds[k])`` reproduces run k.
    dropped_seeds : tuple of int
        Seeds of the runs dropped by ``max_fundamental_gap`` (empty without it).
    bar : int
        Steps per bar.
    start_step : int
        The step of each run's first bar close.
    """

    prices: Tensor
    sigma: float
    bars_per_year: float
    runs: int
    windows_per_run: int
    seeds: tuple[int, ...]
    dropped_seeds: tuple[int, ...]
    bar: int
    start_step: int

    @property
    def n_paths(self) -> int:
        return self.prices.shape[0]

    @property
    def n_steps(self) -> int:
        return self.prices.shape[1] - 1

    @property
    def maturity(self) -> float:
        """The window's length in years, ``n_steps / bars_per_year``."""
        return self.n_steps / self.bars_per_year


def artificial_market_paths(
    config: SimulationConfig,
    n_paths: int,
    n_steps: int,
    *,
    bar: int,
    spot: float = 1.0,
    start_step: int | None = None,
    market: int | str = 0,
    bars_per_year: float = 252.0,
    max_fundamental_gap: float | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: Device = "cpu",
    n_jobs: int = 1,
) -> MarketPaths:
    """Price paths of `n_steps` bars cut from seeded runs of an artificial market.

    Parameters
    ----------
    config : SimulationConfig
        The market (e.g. ``load_simulation("examples/artificial_market.toml")``), without
        policy agents.
    n_paths : int
        Number of paths N (>= 1).
    n_steps : int
        Bar returns per path (>= 1).
    bar : int
        Simulator steps per bar (>= 1), keyword only.
    spot : float, default 1.0
        Every path's first price (> 0).
    start_step : int, optional
        The step of the first bar close of each run; default the first step of the first
        session that executes orders.
    market : int or str, default 0
        The market whose closes are taken, by index or name.
    bars_per_year : float, default 252.0
        Bars in a year, for `MarketPaths.sigma` and `MarketPaths.maturity` (> 0).
    max_fundamental_gap : float, optional
        Drop every run whose close strays from the market's fundamental by more than this in
        log terms, ``|ln(P_t / F_t)| > max_fundamental_gap`` at some step ``t >= start_step``
        (or whose close is not positive), and simulate further runs in its place (module
        docstring). None (default) keeps every run.
    seed : int, default 0
        Seeds the runs (module docstring); the same seed gives the same paths, and more paths
        with the same seed extend the fewer.
    dtype : torch.dtype, default torch.float32
    device : str or torch.device, default "cpu"
    n_jobs : int, default 1
        Runs simulated at once in threads.

    Returns
    -------
    MarketPaths
        The prices, shape (N, n_steps + 1), their annualized volatility and how they were cut.

    Raises
    ------
    ConfigError
        For an argument out of range, a bar or window longer than a run, fewer than two
        returns in all (no volatility), a close that is not positive and finite, or more runs
        dropped by `max_fundamental_gap` than kept.
    """
    if not isinstance(config, SimulationConfig):
        raise ConfigError(
            f"{OWNER}: config={type(config).__name__} is not allowed; pass a SimulationConfig "
            "(e.g. load_simulation('examples/artificial_market.toml'))"
        )
    n = check_int(OWNER, "n_paths", n_paths, 1)
    steps = check_int(OWNER, "n_steps", n_steps, 1)
    bar = check_int(OWNER, "bar", bar, 1)
    spot = check_positive(OWNER, "spot", spot)
    year = check_positive(OWNER, "bars_per_year", bars_per_year)
    seed = check_seed(OWNER, "seed", seed, limit=2**63)  # the simulator's seeds are int64
    n_jobs = check_int(OWNER, "n_jobs", n_jobs, 1)
    if max_fundamental_gap is not None:
        check_positive(OWNER, "max_fundamental_gap", max_fundamental_gap)
    _check_dtype(OWNER, dtype)
    device = _device(OWNER, device)
    m = _market_index(config, market)
    total = config.n_steps
    if start_step is None:
        start = first_executing_step(config)
    else:
        start = check_int(OWNER, "start_step", start_step, 0)
        if start >= total:
            raise ConfigError(
                f"{OWNER}: start_step={start} is not allowed; a run has {total} steps, so use "
                f"a step below {total}"
            )
    per_run = _windows_per_run(total, start, bar, steps)
    if n * steps < 2:
        raise ConfigError(
            f"{OWNER}: n_paths={n}, n_steps={steps} give 1 return, too few for a volatility; "
            "ask for at least 2 returns in all"
        )

    need = math.ceil(n / per_run)
    seeds, series, dropped = _draw_runs(
        config, m, start, bar, seed, need, max_fundamental_gap, n_jobs
    )
    for k, (s, c) in enumerate(zip(seeds, series, strict=True)):
        bad = np.flatnonzero(~(np.isfinite(c) & (c > 0)))
        if len(bad):
            j = int(bad[0])
            raise ConfigError(
                f"{OWNER}: market {config.markets[m].name!r}, run {k} (seed {s}) has close "
                f"{float(c[j])!r} at step {start + j * bar}; paths need positive finite prices, "
                "so check the config's prices, tick size and agents (or drop such runs with "
                "max_fundamental_gap)"
            )

    # (runs, w, steps + 1): window j of a run is closes j * steps .. (j + 1) * steps.
    index = np.arange(per_run)[:, None] * steps + np.arange(steps + 1)[None, :]
    windows = np.stack(series)[:, index].reshape(need * per_run, steps + 1)[:n]
    paths = spot * (windows / windows[:, :1])
    log_returns = np.diff(np.log(paths), axis=1)
    sigma = float(log_returns.std(ddof=1) * math.sqrt(year))
    return MarketPaths(
        prices=torch.as_tensor(paths, dtype=dtype, device=device),
        sigma=sigma,
        bars_per_year=year,
        runs=need,
        windows_per_run=per_run,
        seeds=tuple(seeds),
        dropped_seeds=tuple(dropped),
        bar=bar,
        start_step=start,
    )


def _windows_per_run(total: int, start: int, bar: int, steps: int) -> int:
    """Windows of `steps` bar returns in one run, or a `ConfigError` saying what to change."""
    n_returns = len(range(start, total, bar)) - 1
    if n_returns < 1:
        raise ConfigError(
            f"{OWNER}: bar={bar} is too long: a run has {total} steps and the first close is "
            f"at step {start}, so a bar can be at most {total - 1 - start} steps; lower the bar "
            "or lengthen the sessions"
        )
    if n_returns < steps:
        raise ConfigError(
            f"{OWNER}: n_steps={steps} is too large: a run gives {n_returns} bar returns of "
            f"{bar} steps from step {start}; use n_steps <= {n_returns}, a shorter bar, or "
            "longer sessions"
        )
    return n_returns // steps


def _draw_runs(
    config: SimulationConfig,
    m: int,
    start: int,
    bar: int,
    seed: int,
    need: int,
    max_gap: float | None,
    n_jobs: int,
) -> tuple[list[int], list[np.ndarray], list[int]]:
    """Seeds and bar closes of `need` kept runs, and the seeds of the dropped ones, in order."""

    def one(run_seed: int) -> tuple[np.ndarray, bool]:
        prices = simulate(config, seed=run_seed).prices[0, start:, m]
        closes = prices[::bar, CLOSE].copy()  # a copy frees the run's other records
        if max_gap is None:
            return closes, True
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(np.log(prices[:, CLOSE] / prices[:, FUNDAMENTAL]))
        return closes, bool((gap <= max_gap).all())  # NaN gaps drop the run

    seeds: list[int] = []
    series: list[np.ndarray] = []
    dropped: list[int] = []
    drawn = 0
    while len(seeds) < need:
        # a broken market drops most runs: stop once more are dropped than can be kept
        if len(dropped) > need:
            raise ConfigError(
                f"{OWNER}: max_fundamental_gap={max_gap!r} dropped {len(dropped)} of {drawn} "
                f"runs (the close strayed further from the fundamental); raise it, or check "
                "the config"
            )
        batch = run_seeds(seed, drawn + need - len(seeds))[drawn:]
        drawn += len(batch)
        if n_jobs == 1 or len(batch) == 1:
            results = [one(s) for s in batch]
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                results = list(pool.map(one, batch))
        for s, (closes, kept) in zip(batch, results, strict=True):
            if kept:
                seeds.append(s)
                series.append(closes)
            else:
                dropped.append(s)
    return seeds, series, dropped


def _market_index(config: SimulationConfig, market: int | str) -> int:
    names = [spec.name for spec in config.markets]
    if isinstance(market, str):
        if market in names:
            return names.index(market)
    elif (
        isinstance(market, int | np.integer)
        and not isinstance(market, bool)
        and 0 <= market < len(names)
    ):
        return int(market)
    raise ConfigError(
        f"{OWNER}: market={market!r} is not allowed; use an index below {len(names)} or one of "
        + ", ".join(repr(name) for name in names)
    )
