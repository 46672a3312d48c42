"""Plotly figures of a backtest: wealth, drawdowns, rolling Sharpe, weights, turnover and costs.

Each builder takes a `BacktestResult` and returns a `ReportFigure`: the plotly figure plus the
heading and the caption that names what is plotted and how it is defined (DESIGN.md, "Every
figure a report prints names its definition"). Statistics are computed on the full daily data;
only what is drawn is thinned, and only for series longer than `DOWNSAMPLE_THRESHOLD` points
(to one point a week, said in the caption).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from kabuto.evaluation import metrics
from kabuto.evaluation.metrics import ANNUALIZATION, costs_per_year, turnover_per_year

if TYPE_CHECKING:
    from kabuto.backtest.result import BacktestResult, StrategyResult

ROLLING_WINDOW = ANNUALIZATION
"""Days in the rolling Sharpe window (one year)."""

DOWNSAMPLE_THRESHOLD = 2000
"""Series with more points than this are plotted at one point a week."""

FONT_FAMILY = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif"
)
STRATEGY_COLORS = qualitative.D3
ASSET_COLORS = qualitative.Dark24 + qualitative.Light24
BENCHMARK_COLOR = "#555555"
BENCHMARK_NAME = "benchmark"


@dataclass(frozen=True)
class ReportFigure:
    """A figure ready for the page.

    Attributes
    ----------
    key : str
        Stable identifier (used for the anchor of its section).
    heading : str
        Plain-text heading printed above the figure.
    caption : str
        Plain-text definition of what is drawn, printed below it.
    figure : plotly.graph_objects.Figure
    """

    key: str
    heading: str
    caption: str
    figure: go.Figure


# --------------------------------------------------------------------------------------------
# series helpers


def strategy_color(index: int) -> str:
    """Colour of the `index`-th strategy, the same in every figure."""
    return STRATEGY_COLORS[index % len(STRATEGY_COLORS)]


def _dates(index: pd.Index) -> list[str]:
    """ISO dates for the x axis (no time of day: the data are daily)."""
    return [d.strftime("%Y-%m-%d") for d in pd.DatetimeIndex(index)]


def _week_key(index: pd.Index) -> pd.PeriodIndex:
    return pd.DatetimeIndex(index).to_period("W")


def thin(series: pd.Series, how: str = "last") -> pd.Series:
    """One point a week when `series` is longer than `DOWNSAMPLE_THRESHOLD`, else unchanged.

    ``how="last"`` keeps the last observation of each week (exact for levels such as wealth);
    ``how="min"`` keeps each week's lowest point (so drawdown troughs are never smoothed away).
    The points kept are real observations at their own dates.
    """
    series = series.dropna()
    if len(series) <= DOWNSAMPLE_THRESHOLD:
        return series
    key = _week_key(series.index)
    if how == "min":
        return series.loc[series.groupby(key).idxmin().to_numpy()]
    if how == "last":
        return series.loc[series.groupby(key).tail(1).index]
    raise ValueError(f"how must be 'last' or 'min', not {how!r}")


def thin_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Last row of each week when `frame` has more than `DOWNSAMPLE_THRESHOLD` rows."""
    if len(frame) <= DOWNSAMPLE_THRESHOLD:
        return frame
    keep = pd.Series(np.arange(len(frame)), index=frame.index).groupby(_week_key(frame.index))
    return frame.iloc[keep.max().to_numpy()]


def net_series(result: BacktestResult) -> dict[str, pd.Series]:
    """Daily net returns per strategy, NaN dropped, sorted by date."""
    return {n: r.net_returns.dropna().sort_index() for n, r in result.strategies.items()}


def benchmark_series(result: BacktestResult) -> pd.Series | None:
    """Benchmark daily returns restricted to the strategies' date range, or None."""
    bench = result.benchmark_returns
    if bench is None:
        return None
    bench = bench.dropna().sort_index()
    nets = [s for s in net_series(result).values() if len(s)]
    if nets:
        start = min(s.index[0] for s in nets)
        end = max(s.index[-1] for s in nets)
        bench = bench.loc[start:end]
    return bench if len(bench) else None


def is_thinned(result: BacktestResult) -> bool:
    """Whether the daily figures of `result` are drawn at weekly points."""
    lengths = [len(s) for s in net_series(result).values()]
    bench = benchmark_series(result)
    if bench is not None:
        lengths.append(len(bench))
    return max(lengths, default=0) > DOWNSAMPLE_THRESHOLD


def wealth(returns: pd.Series) -> pd.Series:
    """Compounded wealth from daily simple returns, starting from 1, as the metrics compound it
    (`kabuto.evaluation.metrics.wealth`: ruin is absorbing, so a figure shows no recovery from
    it that the leaderboard does not)."""
    return metrics.wealth(returns)


def drawdown(returns: pd.Series) -> pd.Series:
    """Drawdown of compounded wealth (`kabuto.evaluation.metrics.drawdowns`): wealth / running
    peak - 1, the peak including the start at 1."""
    return metrics.drawdowns(returns)


def rolling_sharpe(returns: pd.Series, window: int = ROLLING_WINDOW) -> pd.Series:
    """Rolling annualized Sharpe ratio (risk-free 0): mean / std * sqrt(252) over `window` days."""
    mean = returns.rolling(window, min_periods=window).mean()
    std = returns.rolling(window, min_periods=window).std()
    out = mean / std.where(std > 0) * np.sqrt(ANNUALIZATION)
    return out.dropna()


def annual_turnover(strategy: StrategyResult) -> float:
    """Mean one-way traded notional per year (`kabuto.evaluation.metrics.turnover_per_year`)."""
    return turnover_per_year(strategy.turnover, len(strategy.net_returns))


def annual_costs(strategy: StrategyResult) -> float:
    """Costs paid per year as a fraction of wealth (`kabuto.evaluation.metrics.costs_per_year`)."""
    return costs_per_year(strategy.costs, len(strategy.net_returns))


# --------------------------------------------------------------------------------------------
# layout


def plot_text(text: object) -> str:
    """`text` shown literally by plotly, which reads tags such as <b> and <a href> in trace
    names and category labels: its HTML characters as entities (plotly decodes them)."""
    return html.escape(str(text), quote=False)


def _axis(**extra: object) -> dict:
    axis = dict(
        showgrid=True,
        gridcolor="#e6e6e6",
        zeroline=False,
        linecolor="#9a9a9a",
        showline=True,
        ticks="outside",
        tickcolor="#9a9a9a",
        automargin=True,
    )
    axis.update(extra)
    return axis


def vertical_line(x: float, color: str, dash: str) -> dict:
    """A plotly layout shape: a thin vertical line at data coordinate `x`, full height."""
    return dict(
        type="line",
        xref="x",
        yref="paper",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        line=dict(color=color, width=1, dash=dash),
    )


def base_layout(height: int = 380, **extra: object) -> dict:
    """Shared look: white background, light grid, system fonts, legend above the plot."""
    layout = dict(
        template="none",
        height=height,
        autosize=True,
        margin=dict(l=64, r=24, t=36, b=44),
        font=dict(family=FONT_FAMILY, size=12, color="#222222"),
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        hovermode="x unified",
        hoverlabel=dict(namelength=-1),
        legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom"),
        xaxis=_axis(type="date"),
        yaxis=_axis(),
    )
    layout.update(extra)
    return layout


def _thinning_note(thinned: bool) -> str:
    if not thinned:
        return ""
    return (
        f" Series longer than {DOWNSAMPLE_THRESHOLD:,} days are drawn at one point a week "
        "(the last day of each week; for drawdowns the deepest day); all statistics use every "
        "day."
    )


def _line(series: pd.Series, name: str, color: str, *, benchmark: bool = False) -> go.Scatter:
    return go.Scatter(
        x=_dates(series.index),
        y=series.to_numpy(dtype=float),
        name=plot_text(name),
        mode="lines",
        line=dict(color=color, width=1.4 if benchmark else 1.8, dash="dash" if benchmark else None),
    )


def _per_series_figure(
    result: BacktestResult, transform: Callable[[pd.Series], pd.Series], how: str
) -> go.Figure:
    fig = go.Figure()
    for i, (name, returns) in enumerate(net_series(result).items()):
        fig.add_trace(_line(thin(transform(returns), how), name, strategy_color(i)))
    bench = benchmark_series(result)
    if bench is not None:
        fig.add_trace(
            _line(thin(transform(bench), how), BENCHMARK_NAME, BENCHMARK_COLOR, benchmark=True)
        )
    return fig


# --------------------------------------------------------------------------------------------
# figures


def equity_figure(result: BacktestResult) -> ReportFigure:
    """Net wealth of every strategy (and the benchmark) on a log axis."""
    fig = _per_series_figure(result, wealth, "last")
    fig.update_layout(
        base_layout(
            yaxis=_axis(type="log", title=dict(text="net wealth (log scale)")),
        )
    )
    bench = " The benchmark (dashed) is the panel's index, compounded the same way." * (
        benchmark_series(result) is not None
    )
    caption = (
        "Net wealth: growth of 1 invested at the start, compounding daily simple returns after "
        "transaction costs, on a logarithmic axis." + bench + _thinning_note(is_thinned(result))
    )
    return ReportFigure("equity", "Equity curves (net of costs)", caption, fig)


def drawdown_figure(result: BacktestResult) -> ReportFigure:
    """Drawdown of net wealth for every strategy (and the benchmark)."""
    fig = _per_series_figure(result, drawdown, "min")
    fig.update_layout(
        base_layout(
            height=320,
            yaxis=_axis(tickformat="~%", title=dict(text="drawdown"), rangemode="tozero"),
        )
    )
    caption = (
        "Drawdown: net wealth divided by its running peak, minus 1 (0% at a new high); the "
        "lowest point is the maximum drawdown." + _thinning_note(is_thinned(result))
    )
    return ReportFigure("drawdowns", "Drawdowns", caption, fig)


def rolling_sharpe_figure(result: BacktestResult) -> ReportFigure:
    """Rolling one-year Sharpe ratio for every strategy (and the benchmark)."""
    fig = _per_series_figure(result, rolling_sharpe, "last")
    nets = [s for s in net_series(result).values() if len(s)]
    span = [min(s.index[0] for s in nets), max(s.index[-1] for s in nets)]
    layout = base_layout(
        height=320,
        xaxis=_axis(type="date", range=[d.strftime("%Y-%m-%d") for d in span]),
        yaxis=_axis(title=dict(text="rolling Sharpe"), tickformat=".1f"),
        shapes=[
            dict(
                type="line",
                xref="paper",
                x0=0,
                x1=1,
                yref="y",
                y0=0,
                y1=0,
                line=dict(color="#9a9a9a", width=1),
            )
        ],
    )
    if all(len(t.x or ()) == 0 for t in fig.data):
        layout["annotations"] = [
            dict(
                text=f"fewer than {ROLLING_WINDOW} days of returns: nothing to draw",
                xref="paper",
                yref="paper",
                x=0.5,
                y=0.5,
                showarrow=False,
                font=dict(color="#666666"),
            )
        ]
    fig.update_layout(layout)
    caption = (
        f"Rolling Sharpe ratio over the trailing {ROLLING_WINDOW} trading days: mean daily net "
        f"return divided by its standard deviation, times sqrt({ANNUALIZATION}); risk-free rate "
        f"taken as 0. The first point is day {ROLLING_WINDOW} of the backtest."
        + _thinning_note(is_thinned(result))
    )
    return ReportFigure("rolling-sharpe", "Rolling one-year Sharpe ratio", caption, fig)


def weights_figure(name: str, strategy: StrategyResult, index: int) -> ReportFigure:
    """Target weights at each rebalance date of one strategy, as a stacked area (with cash)."""
    weights = strategy.target_weights.sort_index().astype(float).fillna(0.0)
    long_only = bool((weights.to_numpy() >= -1e-12).all())
    cash = 1.0 - weights.sum(axis=1)
    drawn = thin_frame(weights)
    # Hold the last target to the last day of returns, so the final holding period shows.
    returns = strategy.net_returns.dropna()
    if len(returns) and returns.index.max() > drawn.index.max():
        drawn = pd.concat([drawn, drawn.iloc[[-1]].set_axis([returns.index.max()])])
    drawn_cash = 1.0 - drawn.sum(axis=1)
    x = _dates(drawn.index)
    fig = go.Figure()
    for j, asset in enumerate(weights.columns):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=drawn[asset].to_numpy(dtype=float),
                name=plot_text(asset),
                mode="lines",
                line=dict(width=0.5 if long_only else 1.4, shape="hv"),
                stackgroup="w" if long_only else None,
                marker=dict(color=ASSET_COLORS[j % len(ASSET_COLORS)]),
            )
        )
    has_cash = bool((cash.abs() > 1e-9).any())
    if has_cash:
        stack_cash = long_only and bool((cash >= -1e-12).all())
        fig.add_trace(
            go.Scatter(
                x=x,
                y=drawn_cash.to_numpy(dtype=float),
                name="cash",
                mode="lines",
                line=dict(width=0.5 if stack_cash else 1.4, shape="hv"),
                stackgroup="w" if stack_cash else None,
                marker=dict(color="#c7c7c7"),
            )
        )
    fig.update_layout(
        base_layout(
            height=340,
            hovermode="x unified",
            yaxis=_axis(tickformat=".0%", title=dict(text="target weight")),
        )
    )
    how = (
        "stacked (they sum to the gross exposure"
        + (", cash fills the rest to 100%" if has_cash else "")
        + ")"
        if long_only
        else "as lines, not stacked, because some weights are negative"
    )
    caption = (
        f"{name}: target weights chosen at the close of each of the {len(weights):,} rebalance "
        "dates and held from the next day (between rebalances the book drifts with prices); "
        f"drawn {how}. Cash = 1 - sum of weights."
    )
    if len(weights) > DOWNSAMPLE_THRESHOLD:
        caption += (
            f" With more than {DOWNSAMPLE_THRESHOLD:,} rebalance dates, the last rebalance of "
            "each week is drawn."
        )
    return ReportFigure(f"weights-{index}", f"Weights: {name}", caption, fig)


def turnover_costs_figure(result: BacktestResult) -> ReportFigure:
    """Per-strategy bars of annual one-way turnover and annual costs paid."""
    names = result.names
    colors = [strategy_color(i) for i in range(len(names))]
    turnover = [annual_turnover(s) for s in result.strategies.values()]
    costs = [annual_costs(s) for s in result.strategies.values()]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Annual turnover (one-way)", "Costs paid per year"),
        horizontal_spacing=0.12,
    )
    bars = [
        ("turnover", turnover, "%{y:.0%}", "%{x}: %{y:.1%} a year"),
        ("costs", costs, "%{y:.2%}", "%{x}: %{y:.3%} of wealth a year"),
    ]
    for col, (label, values, text, hover) in enumerate(bars, start=1):
        fig.add_trace(
            go.Bar(
                x=[plot_text(name) for name in names],
                y=values,
                marker=dict(color=colors),
                name=label,
                texttemplate=text,
                textposition="outside",
                cliponaxis=False,
                hovertemplate=hover + "<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_layout(
        base_layout(
            height=340,
            showlegend=False,
            hovermode="closest",
            margin=dict(l=64, r=24, t=48, b=44),
            xaxis=_axis(type="category", showgrid=False),
            xaxis2=_axis(type="category", showgrid=False),
            # "~%" trims zeros, not digits: ticks at 0.01% stay apart at low costs
            yaxis=_axis(tickformat="~%", rangemode="tozero"),
            yaxis2=_axis(tickformat="~%", rangemode="tozero"),
        )
    )
    fig.update_annotations(font=dict(size=13))
    caption = (
        "Left: turnover = mean one-way traded notional per year, i.e. half the sum over "
        "rebalances of sum |w_target - w_drifted|, divided by the years of returns. Right: "
        "costs paid per year = sum of daily costs (fraction of wealth before each trade) "
        "divided by the years of returns."
    )
    return ReportFigure("turnover-costs", "Turnover and costs", caption, fig)


def cumulative_costs_figure(result: BacktestResult) -> ReportFigure:
    """Cumulative costs paid over time per strategy."""
    fig = go.Figure()
    for i, (name, strategy) in enumerate(result.strategies.items()):
        costs = strategy.costs.sort_index().fillna(0.0).cumsum()
        fig.add_trace(_line(thin(costs, "last"), name, strategy_color(i)))
    fig.update_layout(
        base_layout(
            height=300,
            yaxis=_axis(tickformat="~%", title=dict(text="cumulative costs"), rangemode="tozero"),
        )
    )
    caption = (
        "Cumulative costs: running sum of the daily costs paid, each a fraction of wealth before "
        "the trade (a simple sum, not compounded)." + _thinning_note(is_thinned(result))
    )
    return ReportFigure("cumulative-costs", "Cumulative costs", caption, fig)


def performance_figures(result: BacktestResult) -> list[ReportFigure]:
    """Equity curves, drawdowns and rolling Sharpe."""
    return [equity_figure(result), drawdown_figure(result), rolling_sharpe_figure(result)]


def weight_figures(result: BacktestResult) -> list[ReportFigure]:
    """One stacked-area weights figure per strategy that has rebalance dates."""
    return [
        weights_figure(name, strategy, i)
        for i, (name, strategy) in enumerate(result.strategies.items())
        if len(strategy.target_weights)
    ]


def trading_figures(result: BacktestResult) -> list[ReportFigure]:
    """Turnover and costs bars, and cumulative costs over time."""
    return [turnover_costs_figure(result), cumulative_costs_figure(result)]
