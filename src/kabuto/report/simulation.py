"""A self-contained HTML report of the stylized facts of an artificial market simulation.

The page has the layout, style and offline guarantees of the backtest report
(`kabuto.report.html`: plotly.js inlined once, figures drawn from inline JSON, nothing loaded
from the network) and shows:

- the configuration: markets, agent groups with their counts and parameters, sessions, events;
- one table of stylized facts (`kabuto.sim.artificial.facts`) per market, each statistic's
  mean, standard deviation and 5% / 95% quantiles across runs;
- a sample price path with its fundamental (run 0, every market);
- the autocorrelation of r, |r| and r^2 at each lag, mean and 5-95% band across runs;
- the distribution of the bar returns pooled over runs against a normal of the same variance;
- the volume traded per step;
- a caveat in the header when a market ran off the prices the book can hold
  (`kabuto.sim.artificial.runner.runaway_note`, the warning `simulate` gives).

Returns are bar returns ``r = log close[start + (j + 1) bar] - log close[start + j bar]`` of
one market (`market`, the first by default) for the figures; every market gets a table.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from html import escape
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kabuto.errors import ConfigError, KabutoError
from kabuto.report import tables
from kabuto.report.figures import (
    ReportFigure,
    _axis,
    base_layout,
    plot_text,
    strategy_color,
    vertical_line,
)
from kabuto.report.html import sectioned_page, write_page
from kabuto.sim.artificial.config import (
    ArbitrageGroup,
    FCNGroup,
    MarketMakerGroup,
    OrderFlowGroup,
    PolicyGroup,
    SimulationConfig,
    first_executing_step,
)
from kabuto.sim.artificial.engine import CLOSE, FUNDAMENTAL, TRADES, VOLUME_TRADED
from kabuto.sim.artificial.facts import (
    StylizedFacts,
    bar_returns,
    excess_kurtosis,
    stylized_facts,
)
from kabuto.sim.artificial.runner import SimulationResult, runaway_note, runaway_runs

__all__ = [
    "DEFAULT_TITLE",
    "check_bars",
    "facts_by_market",
    "first_executing_step",
    "render_report",
    "write_report",
]

# The agent-group column of the config table, one name per group class.
GROUP_KINDS = {
    FCNGroup: "FCN",
    MarketMakerGroup: "market maker",
    ArbitrageGroup: "arbitrage",
    OrderFlowGroup: "order-flow crowd",
    PolicyGroup: "policy",
}

DEFAULT_TITLE = "kabuto artificial market: stylized facts"
DEFAULT_LAGS = range(1, 21)

MAX_POINTS = 5000
"""Per-step series longer than this are drawn at every k-th step (said in the caption)."""

SESSION_FILL = "rgba(120, 120, 120, 0.12)"
# Subplot titles sit where base_layout puts the legend; lift the legend above them.
_LEGEND_ABOVE_TITLES = dict(orientation="h", x=0, xanchor="left", y=1.16, yanchor="bottom")

_ZERO_LINE = dict(zeroline=True, zerolinecolor="#9a9a9a", zerolinewidth=1)

# On top of the backtest report's CSS: the facts table's definition column is text.
EXTRA_CSS = (
    "table.facts td:nth-child(2){text-align:left;white-space:normal;min-width:18rem}"
    "table.facts th code{font-size:.8rem}"
    ".card h3:not(:first-child){margin-top:1.2rem}"
)
NORMAL_COLOR = "#555555"

ZERO_RETURNS_NOTE = (
    "Zero returns. A bar return is exactly 0 when the close did not move over the bar (no "
    "trade, or trades back at the same price); on a tick grid with little trading many bars "
    "do not move, and the pile of zeros by itself inflates the kurtosis. So the table gives "
    "the excess kurtosis of all returns (kurtosis, zeros included) and of the nonzero returns "
    "only (kurtosis_nonzero), and the share of returns exactly 0 (zero_share). The "
    "autocorrelations keep the zeros (they are real bars without a move); the Hill tail index "
    "leaves them out (they carry no tail information)."
)


# --------------------------------------------------------------------------------------------
# bars and facts


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_bars(n_steps: int, bar: int, start_step: int, lags: Iterable[int]) -> int:
    """Check that `n_steps` steps give enough bar returns for the lags, before simulating.

    The same requirement as `stylized_facts`: at least ``max(lags) + 3`` bar returns.

    Parameters
    ----------
    n_steps : int
        Steps of one run.
    bar : int
        Steps per bar, >= 1.
    start_step : int
        The step of the first close, in ``[0, n_steps)``.
    lags : iterable of int
        The acf lags, each >= 1.

    Returns
    -------
    int
        Bar returns per run.

    Raises
    ------
    ConfigError
        Naming what to change.
    """
    lag = list(lags)
    if not lag or not all(_is_int(k) and k >= 1 for k in lag):
        raise ConfigError(f"lags must be integers >= 1, got {lag!r}")
    if not _is_int(bar) or bar < 1:
        raise ConfigError(f"bar must be an integer >= 1 (steps per bar), got {bar!r}")
    if not _is_int(start_step) or not 0 <= start_step < n_steps:
        raise ConfigError(f"start step {start_step!r} must be a step in [0, {n_steps})")
    n_returns = len(range(start_step, n_steps, bar)) - 1
    need = max(lag) + 3
    if n_returns < need:
        # n_returns = (n_steps - 1 - start_step) // bar, so this is the longest bar that fits.
        longest = (n_steps - 1 - start_step) // need
        fix = (
            f"lower the bar to at most {longest} or simulate longer"
            if longest
            else ("simulate longer (even 1-step bars are too few)")
        )
        raise ConfigError(
            f"bar = {bar} gives {max(n_returns, 0)} bar returns from step {start_step} of "
            f"{n_steps}, but autocorrelations up to lag {max(lag)} need at least {need}: {fix}"
        )
    return n_returns


def _market_index(result: SimulationResult, market: int | str) -> int:
    names = result.market_names
    if isinstance(market, str):
        if market not in names:
            raise ConfigError(f"market {market!r} is not simulated; markets: {', '.join(names)}")
        return names.index(market)
    if not _is_int(market) or not 0 <= market < len(names):
        raise ConfigError(f"market must be a name or an index in [0, {len(names)}), got {market!r}")
    return int(market)


def facts_by_market(
    result: SimulationResult,
    *,
    bar: int,
    start_step: int,
    lags: Iterable[int] = DEFAULT_LAGS,
    tail_fraction: float = 0.05,
) -> dict[str, StylizedFacts | None]:
    """The stylized facts of every market's bar returns across the runs, by market name.

    Runs in which a market ran away (`runaway_runs`: its prices hit the book's limits, so its
    returns are artefacts) are left out of that market's facts.

    Parameters
    ----------
    result : SimulationResult
        R runs of T steps in M markets.
    bar, start_step, lags, tail_fraction
        As `stylized_facts` (``start_step`` is its ``start``).

    Returns
    -------
    dict of market name -> StylizedFacts or None
        In the config's market order; each holds the runs in which that market stayed in
        range (``n_runs`` of them), None if it ran away in every run.
    """
    lags = list(lags)
    kept = ~runaway_runs(result)
    return {
        name: stylized_facts(
            result.prices[kept[:, m], :, m, CLOSE],
            bar,
            start_step,
            lags,
            tail_fraction=tail_fraction,
        )
        if kept[:, m].any()
        else None
        for m, name in enumerate(result.market_names)
    }


#: What the facts show for a market that ran away in every run.
ALL_RAN_AWAY = "It ran away in every run (see the runaway note): no stylized facts."


def _hill_k(facts: StylizedFacts) -> int:
    """The most order statistics the Hill estimate uses in a run (all returns nonzero)."""
    return max(2, int(facts.tail_fraction * facts.n_returns + 1e-9))


def _rough(k: int) -> str:
    return ", too few for a stable estimate: use longer runs or shorter bars" if k < 10 else ""


def describe_statistic(name: str, facts: StylizedFacts) -> str:
    """A plain-text definition of a row of `StylizedFacts.summary`."""
    for prefix, what in (("return_acf", "r"), ("abs_acf", "|r|"), ("sq_acf", "r\u00b2")):
        if name.startswith(prefix + "_lag"):
            return f"autocorrelation of {what} at lag {name.rsplit('lag', 1)[1]} bars"
    lags = [int(k) for k in facts.lags]
    return {
        "kurtosis": "excess kurtosis of r, all returns (zeros included)",
        "kurtosis_nonzero": "excess kurtosis of r, nonzero returns only",
        "zero_share": "share of returns exactly 0",
        "hill": (
            f"Hill tail index of |r| (nonzero returns, top {facts.tail_fraction:.0%}: at most "
            f"{_hill_k(facts)} order statistics a run{_rough(_hill_k(facts))}); smaller = fatter "
            "tails"
        ),
        "abs_decay": (
            f"power-law decay exponent of the |r| autocorrelation, lags {min(lags)}-{max(lags)} "
            "(positive lags' acf)"
        ),
    }.get(name, name)


# --------------------------------------------------------------------------------------------
# tables


def _num(value: object) -> str:
    return tables.format_value(value, "auto")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """An HTML table of already escaped cells; the first cell of a row is its header."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    body = "".join(
        f'<tr><th scope="row">{row[0]}</th>' + "".join(f"<td>{c}</td>" for c in row[1:]) + "</tr>"
        for row in rows
    )
    return (
        f'<div class="table-wrap"><table class="{css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def facts_table(facts: StylizedFacts | None) -> str:
    """The across-run summary of one market's stylized facts as an HTML table."""
    if facts is None:
        return f'<p class="note">{escape(ALL_RAN_AWAY)}</p>'
    summary = facts.summary()
    rows = [
        [
            f"<code>{escape(str(name))}</code>",
            escape(describe_statistic(str(name), facts)),
            *(escape(_num(row[c])) for c in ("mean", "se", "std", "q05", "q95")),
            escape(_num(int(row["n_runs"]))),
            escape(_num(int(row["n_nan"]))),
        ]
        for name, row in summary.iterrows()
    ]
    header = ["statistic", "definition", "mean", "s.e.", "std", "q05", "q95", "n_runs", "n_nan"]
    return _table(header, rows, "numeric facts")


def _distribution_text(value: object) -> str:
    """A parameter distribution in the config's notation, briefly (see `config.draw`)."""
    if value is None:
        return "\u2014"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, list):
        return f"uniform[{value[0]:g}, {value[1]:g})"
    kind, args = next(iter(value.items()))
    if kind == "const":
        return f"{args[0]:g}"
    return f"{kind}({', '.join(f'{a:g}' for a in args)})"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def config_section(config: SimulationConfig, start_step: int) -> str:
    """Markets, agent groups, sessions, events and correlations of a config, as tables."""
    markets = _table(
        ["market", "tick size", "initial price", "initial fundamental", "drift", "volatility"],
        (
            [
                escape(m.name),
                *(
                    escape(_num(v))
                    for v in (m.tick_size, m.price, m.initial_fundamental, m.drift, m.volatility)
                ),
            ]
            for m in config.markets
        ),
        "numeric",
    )
    group_rows = []
    for group in config.agents:
        skip = {"name", "type", "count", "markets"}
        params = []
        for key, value in group.model_dump().items():
            if key in skip or value is None:
                continue
            text = _distribution_text(value) if not isinstance(value, bool) else _yes(value)
            params.append(f"{key} = {text}")
        kind = GROUP_KINDS[type(group)]
        group_rows.append(
            [
                escape(group.name),
                escape(kind),
                escape(_num(group.count)),
                escape(", ".join(group.markets)),
                escape("; ".join(params)),
            ]
        )
    agents = _table(["group", "type", "agents", "markets", "parameters"], group_rows)
    session_rows = []
    first = 0
    for s in config.sessions:
        last = first + s.steps - 1
        session_rows.append(
            [
                escape(s.name),
                escape(_num(s.steps)),
                escape(f"{first}\u2013{last}"),
                _yes(s.orders),
                escape(_num(s.orders_per_step if s.orders else 0)),
                _yes(s.execute),
            ]
        )
        first = last + 1
    sessions = _table(
        ["session", "steps", "step range", "orders", "orders per step", "execute"], session_rows
    )
    parts = [
        "<h3>Markets</h3>",
        markets,
        f"<h3>Agent groups ({config.n_agents:,} agents)</h3>",
        agents,
        '<p class="note">Parameters drawn per agent: uniform[a, b) is a uniform draw, expon(m) '
        "exponential with mean m, normal(mean, sd); time windows are truncated to whole steps."
        + (
            " Market makers quote after the other agents of each step: one bid and one ask, "
            "or with levels > 1 a ladder of that many prices a side."
            if any(isinstance(g, MarketMakerGroup) for g in config.agents)
            else ""
        )
        + "</p>",
        f"<h3>Sessions ({config.n_steps:,} steps)</h3>",
        sessions,
        f'<p class="note">Sessions that do not execute only rest orders (a pre-open); bar '
        f"closes start at step {start_step}.</p>",
    ]
    if config.events:
        rows = [
            [
                escape(e.type),
                escape(
                    "; ".join(
                        f"{k} = {', '.join(v) if isinstance(v, list) else v}"
                        for k, v in e.model_dump().items()
                        if k != "type"
                    )
                ),
            ]
            for e in config.events
        ]
        parts += ["<h3>Events</h3>", _table(["event", "settings"], rows)]
    if config.correlations:
        rows = [[escape(a), escape(b), escape(_num(rho))] for a, b, rho in config.correlations]
        parts += [
            "<h3>Correlations of the fundamental shocks</h3>",
            _table(["market", "market", "correlation"], rows, "numeric"),
        ]
    return '<div class="card">' + "".join(parts) + "</div>"


def _run_table(
    result: SimulationResult,
    bar: int,
    start_step: int,
    n_returns: int,
    lags: list[int],
    seed: int | None,
) -> str:
    seeds = result.seeds
    shown = ", ".join(str(s) for s in seeds[:10]) + (
        f", ... ({len(seeds)} in all, in the data files)" * (len(seeds) > 10)
    )
    counts = result.counts
    rows = [
        ["runs", escape(_num(len(seeds)))],
        *([["seed (the run seeds come from it)", escape(str(seed))]] if seed is not None else []),
        ["run seeds", escape(shown)],
        ["steps per run", escape(_num(result.prices.shape[1]))],
        ["bar (steps)", escape(_num(bar))],
        ["first bar close (step)", escape(_num(start_step))],
        ["bar returns per run", escape(_num(n_returns))],
        ["acf lags (bars)", escape(f"{min(lags)}\u2013{max(lags)}")],
        ["orders placed (all runs)", escape(_num(result.n_orders))],
        ["trades (all runs)", escape(_num(int(counts[..., TRADES].sum())))],
        ["volume traded (all runs)", escape(_num(int(counts[..., VOLUME_TRADED].sum())))],
    ]
    return _table(["", "value"], [[escape(r[0]), r[1]] for r in rows], "settings")


# --------------------------------------------------------------------------------------------
# figures


def _stride(n_steps: int) -> int:
    return max(1, math.ceil(n_steps / MAX_POINTS))


def _stride_note(k: int, what: str) -> str:
    if k == 1:
        return ""
    return f" With more than {MAX_POINTS:,} steps, {what} every {k}th step is drawn."


def _session_shapes(config: SimulationConfig) -> list[dict]:
    """Grey bands over the sessions that do not execute orders."""
    shapes, first = [], 0
    for s in config.sessions:
        if not s.execute:
            shapes.append(
                dict(
                    type="rect",
                    xref="x",
                    yref="paper",
                    x0=first - 0.5,
                    x1=first + s.steps - 0.5,
                    y0=0,
                    y1=1,
                    fillcolor=SESSION_FILL,
                    line=dict(width=0),
                    layer="below",
                )
            )
        first += s.steps
    return shapes


def _market_color(m: int) -> str:
    return strategy_color(m)


def price_figure(result: SimulationResult, start_step: int, run: int = 0) -> ReportFigure:
    """The close and the fundamental of every market over the steps of one run."""
    T = result.prices.shape[1]
    k = _stride(T)
    steps = np.arange(T)[::k]
    fig = go.Figure()
    for m, name in enumerate(result.market_names):
        color = _market_color(m)
        for field, label, dash in ((CLOSE, "price", None), (FUNDAMENTAL, "fundamental", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=result.prices[run, ::k, m, field],
                    name=plot_text(f"{name} {label}"),
                    mode="lines",
                    line=dict(color=color, width=1.6 if dash is None else 1.2, dash=dash),
                )
            )
    shapes = _session_shapes(result.config)
    shapes.append(vertical_line(start_step, "#9a9a9a", "dot"))
    fig.update_layout(
        base_layout(
            height=380,
            xaxis=_axis(title=dict(text="step")),
            yaxis=_axis(title=dict(text="price")),
            shapes=shapes,
        )
    )
    caption = (
        f"Run {run} (seed {result.seeds[run]}): the close (last trade price, carried forward; "
        "the market's initial price before the first trade) and the fundamental price (dashed) "
        "at the end of each step. Grey bands: sessions that do not execute orders; dotted "
        f"line: the first bar close (step {start_step})." + _stride_note(k, "the value at")
    )
    return ReportFigure("price-path", "Sample price path and fundamental", caption, fig)


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Across-run mean, 5% and 95% quantiles of (R, L) values, ignoring nan runs."""
    with _quiet():
        return (
            np.nanmean(values, axis=0),
            np.nanquantile(values, 0.05, axis=0),
            np.nanquantile(values, 0.95, axis=0),
        )


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's 'all-nan slice' warnings: an undefined lag stays nan, drawn as a gap."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def acf_figure(facts: StylizedFacts, market: str) -> ReportFigure:
    """Autocorrelation of r, |r| and r^2 by lag: the mean across runs and a 5-95% band."""
    lags = [int(k) for k in facts.lags]
    panels = (
        ("return_acf", "returns r"),
        ("abs_acf", "absolute returns |r|"),
        ("sq_acf", "squared returns r\u00b2"),
    )
    fig = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        subplot_titles=[t for _, t in panels],
        horizontal_spacing=0.05,
    )
    noise = 1.96 / math.sqrt(facts.n_returns)
    for col, (name, _) in enumerate(panels, start=1):
        color = strategy_color(col - 1)
        mean, low, high = _band(getattr(facts, name))
        first = col == 1
        fig.add_trace(
            go.Scatter(
                x=lags,
                y=low,
                mode="lines",
                line=dict(width=0, color=color),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=lags,
                y=high,
                mode="lines",
                line=dict(width=0, color=color),
                fill="tonexty",
                fillcolor=_rgba(color, 0.2),
                name="5-95% across runs",
                legendgroup="band",
                showlegend=first,
                hovertemplate="lag %{x}: q05-q95 band top %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=lags,
                y=mean,
                mode="lines+markers",
                line=dict(color=color, width=1.8),
                marker=dict(size=5),
                name="mean across runs",
                legendgroup="mean",
                showlegend=first,
                hovertemplate="lag %{x}: mean %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        for sign in (1, -1):
            fig.add_trace(
                go.Scatter(
                    x=[lags[0], lags[-1]],
                    y=[sign * noise, sign * noise],
                    mode="lines",
                    line=dict(color="#9a9a9a", width=1, dash="dash"),
                    name="\u00b11.96/\u221an (white noise, one run)",
                    legendgroup="noise",
                    showlegend=first and sign == 1,
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
    axes = {f"xaxis{i if i > 1 else ''}": _axis(title=dict(text="lag (bars)")) for i in (1, 2, 3)}
    fig.update_layout(
        base_layout(
            height=360,
            hovermode="closest",
            margin=dict(l=64, r=24, t=84, b=44),
            legend=_LEGEND_ABOVE_TITLES,
            yaxis=_axis(title=dict(text="autocorrelation"), **_ZERO_LINE),
            yaxis2=_axis(**_ZERO_LINE),
            yaxis3=_axis(**_ZERO_LINE),
            **axes,
        )
    )
    fig.update_annotations(font=dict(size=13), yshift=4)
    caption = (
        f"Market {market}: sample autocorrelation (biased estimator, each run's own mean) of the "
        f"bar returns r, of |r| and of r\u00b2 at lags {lags[0]}-{lags[-1]} bars of "
        f"{facts.bar} steps ({facts.n_returns} returns a run). Line: mean across the "
        f"{facts.n_runs} run(s); band: their 5% to 95% quantiles. Dashed: \u00b11.96/\u221an, "
        "the 95% range of one run's acf if returns were independent. Real returns show an acf "
        "of r near 0 and a positive, slowly decaying acf of |r| and r\u00b2 (volatility "
        "clustering)."
    )
    return ReportFigure("acf", "Autocorrelation of returns", caption, fig)


def _normal_pdf(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def distribution_figure(returns: np.ndarray, market: str, bar: int) -> ReportFigure:
    """Histogram of the bar returns pooled over runs against a normal of the same variance.

    Parameters
    ----------
    returns : ndarray of shape (R, n)
        Bar returns of R runs.
    """
    pooled = returns.reshape(-1)
    n = pooled.size
    mean, sd = float(pooled.mean()), float(pooled.std())
    n_bins = int(np.clip(round(math.sqrt(n)), 20, 100))
    density, edges = np.histogram(pooled, bins=n_bins, density=True)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("density", "density, log scale (tails)"),
        horizontal_spacing=0.1,
    )
    grid = np.linspace(edges[0], edges[-1], 401)
    pdf = _normal_pdf(grid, mean, sd) if sd > 0 else None
    for col in (1, 2):
        fig.add_trace(
            go.Bar(
                x=centers,
                y=density,
                width=widths,
                marker=dict(color=strategy_color(0), line=dict(width=0)),
                opacity=0.75,
                name="bar returns (pooled)",
                legendgroup="hist",
                showlegend=col == 1,
                hovertemplate="r %{x:.3g}: density %{y:.3g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        if pdf is not None:
            fig.add_trace(
                go.Scatter(
                    x=grid,
                    y=pdf,
                    mode="lines",
                    line=dict(color=NORMAL_COLOR, width=1.6, dash="dash"),
                    name="normal, same mean and variance",
                    legendgroup="normal",
                    showlegend=col == 1,
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
    positive = density[density > 0]
    top = max(positive.max(), pdf.max() if pdf is not None else 0.0)
    log_range = [math.log10(positive.min() / 3), math.log10(top * 2)]
    fig.update_layout(
        base_layout(
            height=360,
            hovermode="closest",
            bargap=0,
            margin=dict(l=64, r=24, t=84, b=44),
            legend=_LEGEND_ABOVE_TITLES,
            xaxis=_axis(title=dict(text="bar return r")),
            xaxis2=_axis(title=dict(text="bar return r")),
            yaxis=_axis(title=dict(text="density"), rangemode="tozero"),
            yaxis2=_axis(type="log", range=log_range, dtick=1),  # a label a decade
        )
    )
    fig.update_annotations(font=dict(size=13), yshift=4)
    zeros = float((pooled == 0).mean())
    kurt = float(excess_kurtosis(pooled)[0])
    kurt_nonzero = float(excess_kurtosis(pooled, drop_zeros=True)[0])
    caption = (
        f"Market {market}: the {n:,} bar returns r ({bar}-step log returns) of all "
        f"{returns.shape[0]} run(s) pooled, as a density histogram ({n_bins} equal bins), "
        f"against a normal density with their mean and standard deviation ({sd:.3g}), dashed. "
        "The log scale (right) shows the tails: bars above the curve far from 0 are fat tails. "
        f"{zeros:.1%} of the returns are exactly 0; they are included (in the bin around 0). "
        f"Pooled excess kurtosis {kurt:.3g} ({kurt_nonzero:.3g} without the zeros); pooling "
        "runs of different volatility adds kurtosis of its own, so the table's per-run values "
        "are the ones to compare."
    )
    return ReportFigure("distribution", "Distribution of bar returns", caption, fig)


def volume_figure(result: SimulationResult) -> ReportFigure:
    """Volume traded per step: run 0 as bars, the mean across runs as a line, per market."""
    T = result.prices.shape[1]
    k = _stride(T)
    n_blocks = math.ceil(T / k)
    # Blocks of k steps (k = 1 unless the run is long): mean volume per step in each, so the
    # drawn heights stay per step whatever k is; the last block may be shorter.
    pad = n_blocks * k - T
    volume = result.counts[..., VOLUME_TRADED].astype(np.float64)  # (R, T, M)
    volume = np.concatenate([volume, np.full((volume.shape[0], pad, volume.shape[2]), np.nan)], 1)
    blocks = volume.reshape(volume.shape[0], n_blocks, k, volume.shape[2])
    with _quiet():
        per_step = np.nanmean(blocks, axis=2)  # (R, n_blocks, M)
    x = np.arange(n_blocks) * k
    fig = go.Figure()
    for m, name in enumerate(result.market_names):
        color = _market_color(m)
        fig.add_trace(
            go.Bar(
                x=x,
                y=per_step[0, :, m],
                marker=dict(color=color, line=dict(width=0)),
                opacity=0.45,
                name=plot_text(f"{name}, run 0"),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=per_step[:, :, m].mean(axis=0),
                mode="lines",
                line=dict(color=color, width=1.6),
                name=plot_text(f"{name}, mean of {per_step.shape[0]} run(s)"),
            )
        )
    fig.update_layout(
        base_layout(
            height=340,
            barmode="overlay",
            bargap=0,
            xaxis=_axis(title=dict(text="step")),
            yaxis=_axis(title=dict(text="volume per step"), rangemode="tozero"),
            shapes=_session_shapes(result.config),
        )
    )
    note = (
        f" With more than {MAX_POINTS:,} steps, each point is the mean volume per step over a "
        f"block of {k} steps."
        if k > 1
        else ""
    )
    caption = (
        "Units traded in each step: run 0 (bars) and the mean across runs (line), per market. "
        "Grey bands: sessions that do not execute orders (no volume; the resting orders trade "
        "at the opening auction of the next session)." + note
    )
    return ReportFigure("volume", "Volume per step", caption, fig)


# --------------------------------------------------------------------------------------------
# the page


def render_report(
    result: SimulationResult,
    *,
    bar: int,
    start_step: int,
    lags: Iterable[int] = DEFAULT_LAGS,
    market: int | str = 0,
    title: str = DEFAULT_TITLE,
    source: str | None = None,
    seed: int | None = None,
) -> str:
    """Render the stylized-facts report of a simulation as one self-contained HTML page.

    Parameters
    ----------
    result : SimulationResult
    bar, start_step : int
        Bars of `bar` steps closing from `start_step` on (e.g. `first_executing_step`).
    lags : iterable of int, default 1..20
        Acf lags in bars.
    market : int or str, default 0
        The market (index or name) whose returns the acf and distribution figures show; every
        market gets a facts table, this one first.
    title : str
        Page title and heading.
    source : str, optional
        Where the config came from (a file path), printed in the header.
    seed : int, optional
        The seed `simulate` was given (the run seeds come from it), printed with them.

    Returns
    -------
    str
        The HTML page (plotly.js inlined once; nothing is loaded from the network).

    Raises
    ------
    ConfigError
        For a bad `bar`, `start_step`, `lags` or `market`, or too few bars for the lags.
    DataError
        For a sampled close that is not finite and positive.
    """
    if not isinstance(result, SimulationResult):
        raise KabutoError(f"report: result must be a SimulationResult, got {type(result).__name__}")
    lags = list(lags)
    n_returns = check_bars(result.prices.shape[1], bar, start_step, lags)
    primary = _market_index(result, market)
    config = result.config
    facts = facts_by_market(result, bar=bar, start_step=start_step, lags=lags)
    names = result.market_names
    order = [primary] + [m for m in range(len(names)) if m != primary]
    tables_html = "".join(
        f"<h3>Market {escape(names[m])}</h3>" * (len(names) > 1) + facts_table(facts[names[m]])
        for m in order
    )
    primary_name = names[primary]
    kept = ~runaway_runs(result)[:, primary]
    figs = [("prices", "Prices", [price_figure(result, start_step)])]
    if kept.any():  # the primary market's facts and returns, without its runaway runs
        returns = bar_returns(result.prices[kept, :, primary, CLOSE], bar, start_step)
        figs += [
            ("autocorrelation", "Autocorrelation", [acf_figure(facts[primary_name], primary_name)]),
            (
                "distribution",
                "Return distribution",
                [distribution_figure(returns, primary_name, bar)],
            ),
        ]
    figs.append(("volume", "Volume", [volume_figure(result)]))
    facts_body = (
        '<div class="card">'
        + tables_html
        + '<p class="note">'
        + escape(
            f"Bar returns r = log close[start + (j+1) bar] - log close[start + j bar], bars of "
            f"{bar} steps from step {start_step}: {n_returns} returns a run. Each statistic is "
            f"computed per run; mean, its standard error (s.e. = std / sqrt(runs)), std "
            f"(across runs, ddof 1), q05 and q95 are over the {result.prices.shape[0]} run(s), "
            "leaving out runs where the market ran away (n_runs counts the others) and runs "
            "where the statistic is undefined (n_nan)."
        )
        + "</p>"
        + f'<p class="note" id="zero-returns">{escape(ZERO_RETURNS_NOTE)}</p>'
        + "</div>"
    )
    text_sections = [
        ("facts", "Stylized facts", facts_body),
        (
            "config",
            "Configuration",
            config_section(config, start_step)
            + '<div class="card"><h3>Runs</h3>'
            + _run_table(result, bar, start_step, n_returns, lags, seed)
            + "</div>",
        ),
    ]
    n_groups = len(config.agents)
    meta = (
        f'<p class="meta"><b>Markets:</b> {escape(", ".join(names))} &middot; '
        f"<b>Agents:</b> {config.n_agents:,} in {n_groups} group{'s' * (n_groups != 1)} "
        f"&middot; <b>Steps:</b> {config.n_steps:,} in {len(config.sessions)} session(s) "
        f"&middot; <b>Runs:</b> {result.prices.shape[0]:,}</p>"
        f'<p class="meta"><b>Bars:</b> every {bar} step(s) from step {start_step}, '
        f"{n_returns} returns a run &middot; <b>Figures:</b> market {escape(primary_name)}</p>"
    )
    runaway = runaway_note(result)  # the warning `simulate` gave, where the facts are read
    if runaway is not None:
        meta += (
            '<div class="caveat" role="note" id="runaway-caveat"><strong>Runaway prices'
            f"</strong>{escape(runaway)}</div>"
        )
    return sectioned_page(title, text_sections, figs, meta, source=source, extra_css=EXTRA_CSS)


def write_report(result: SimulationResult, path: str | os.PathLike[str], **options) -> Path:
    """Render the report (`render_report`'s keyword `options`) and write it atomically.

    Returns the path written; raises `KabutoError` as `kabuto.report.html.write_page` does
    and when the report cannot be made.
    """
    return write_page(path, lambda: render_report(result, **options))
