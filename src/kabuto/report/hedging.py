"""The self-contained HTML report of a `kabuto hedge` run.

Built on the backtest report's page (`kabuto.report.html.page`: plotly.js inlined once, figures
drawn from inline JSON, nothing loaded from the network), it shows:

- the setting: market model and parameters, claim, reference price, hedger, training protocol,
  evaluation paths and seeds, with the caveat that every number comes from paths simulated
  from the stated model;
- the risk table of every hedger (each training of the deep hedger and each baseline) on the
  same evaluation paths, with the definitions and the spread of the trainings' prices;
- the P&L distributions of the hedgers, overlaid (the deep hedger's first training);
- the deep hedger's holding against the spot at a few dates, with the Black-Scholes delta;
- the training loss of every Adam step of every training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kabuto.hedging.closed_form import black_scholes_delta
from kabuto.hedging.risk import MIN_EFFECTIVE_PATHS, MIN_TAIL_PATHS
from kabuto.report.figures import (
    ReportFigure,
    _axis,
    base_layout,
    strategy_color,
    vertical_line,
)
from kabuto.report.html import sectioned_page

if TYPE_CHECKING:  # the run is built by kabuto.experiment, a layer below this one
    from kabuto.experiment.hedge import HedgeRun

__all__ = [
    "DEFAULT_TITLE",
    "HEDGER_LABELS",
    "TrainingSpread",
    "best_hedger",
    "hedge_ratio_figure",
    "hedger_label",
    "loss_figure",
    "pnl_figures",
    "render_report",
    "risk_definitions",
    "spread_note",
    "training_spread",
]

DEFAULT_TITLE = "kabuto deep hedging"

#: How each hedger is named in the report and the printed table.
HEDGER_LABELS = {
    "deep": "deep hedger",
    "delta": "Black-Scholes delta",
    "whalley_wilmott": "Whalley-Wilmott band",
    "no_hedge": "no hedge",
}

#: Paths drawn in the hedge-ratio scatter (the first ones: the paths are i.i.d.).
SCATTER_PATHS = 1000

# Subplot titles sit where base_layout puts the legend; lift the legend above them.
_LEGEND_ABOVE_TITLES = dict(orientation="h", x=0, xanchor="left", y=1.14, yanchor="bottom")

EXTRA_CSS = (
    "table.setting td{text-align:left}"
    "table.risk{font-size:.8rem}"
    "table.risk th,table.risk td{padding:.34rem .45rem}"
    "table.risk td.best{font-weight:700}"
    "table.risk .se{color:#777;font-size:.68rem;white-space:nowrap}"
    ".setting-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));"
    "gap:4px 28px}"
    ".card h3:not(:first-child){margin-top:1.2rem}"
    ".setting-grid h3{margin-top:.6rem!important}"
)

MODEL_NAMES = {
    "gbm": "geometric Brownian motion (Black-Scholes)",
    "heston": "Heston stochastic volatility (Andersen's QE scheme)",
    "merton": "Merton jump diffusion (exact steps)",
}
REFERENCE_NAMES = {
    "gbm": "Black-Scholes price",
    "heston": "Heston price (characteristic function)",
    "merton": "Merton price (Poisson series of Black-Scholes prices)",
}
VOLATILITY_FEATURES = {
    "gbm": "the constant volatility",
    "heston": "the instantaneous volatility sqrt(v_t) of each path",
    "merton": (
        "the diffusion volatility (constant); the jumps add variance that no input shows, so "
        "the delta baseline is the Black-Scholes delta of the diffusion, not the jump model's"
    ),
}


def _color(name: str, names: Sequence[str]) -> str:
    return strategy_color(list(names).index(name))


def hedger_label(name: str, run: HedgeRun, *, short: bool = False) -> str:
    """How a hedger of `run` is named: ``deep hedger (band)``, numbered ``#1``, ``#2``, ...
    when there are several trainings (``deep (band) #2`` if `short`), or the baseline's name."""
    if name not in run.hedgers:
        return HEDGER_LABELS.get(name, name)
    label = f"deep{'' if short else ' hedger'} ({run.config.hedger.policy})"
    if len(run.hedgers) > 1:
        label += f" #{list(run.hedgers).index(name) + 1}"
    return label


@dataclass(frozen=True)
class TrainingSpread:
    """The prices of several trainings of one hedger on the same evaluation paths.

    ``sd`` (ddof 1) is how far the seed alone moves a training's price: the error that each
    price's ``price_se`` (evaluation paths only) leaves out. NaN for one training.
    """

    n: int
    mean: float
    sd: float
    low: float
    high: float


def training_spread(table: pd.DataFrame, names: Sequence[str]) -> TrainingSpread:
    """Spread of the ``price`` column of `table` over the rows `names` (the trained hedgers)."""
    prices = table.loc[list(names), "price"].to_numpy(dtype=float)
    sd = float(prices.std(ddof=1)) if prices.size > 1 else math.nan
    return TrainingSpread(
        prices.size, float(prices.mean()), sd, float(prices.min()), float(prices.max())
    )


def _first_training(run: HedgeRun) -> str:
    """Who a figure of one deep hedger shows: with several trainings, the first."""
    if len(run.hedgers) == 1:
        return "the deep hedger"
    return f"the deep hedger's first training (#1, seed {run.hedgers['deep'].seed})"


def _seeds(run: HedgeRun) -> str:
    h = run.config.hedger
    if h.trainings == 1:
        return f"seed {h.seed}"
    more = h.trainings - 1
    return f"seed {h.seed} and {more} more seed{'s' * (more > 1)} derived from it"


def spread_note(run: HedgeRun) -> str:
    """What the price s.e. covers and, for several trainings, how far the seed moved the price."""
    if len(run.hedgers) == 1:
        return (
            f"s.e.: Monte Carlo error of the evaluation paths only; the deep hedger is one "
            f"training ({_seeds(run)}), and the s.e. leaves out how far another seed would move "
            "its price (set hedger.trainings to measure it)"
        )
    spread = training_spread(run.risk_table, list(run.hedgers))
    return (
        f"s.e.: Monte Carlo error of the evaluation paths only; the seed's part is the spread "
        f"of the {spread.n} trainings' prices ({_seeds(run)}): mean {spread.mean:.6f}, "
        f"s.d. {spread.sd:.2g}, from {spread.low:.6f} to {spread.high:.6f}"
    )


def _risk_name(run: HedgeRun) -> str:
    h = run.config.hedger
    if h.risk == "entropic":
        return f"entropic risk, aversion {h.aversion:g}"
    return f"expected shortfall at {h.risk_level:g}" + (" (OCE form)" * (h.risk == "oce"))


# ------------------------------------------------------------------------------------ tables


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """An HTML table of already escaped cells; the first cell of a row is its header."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    body = "".join(
        f'<tr><th scope="row">{row[0]}</th>' + "".join(row[1:]) + "</tr>" for row in rows
    )
    return (
        f'<div class="table-wrap"><table class="{css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _cell(text: str, css: str = "") -> str:
    return f'<td class="{css}">{escape(text)}</td>' if css else f"<td>{escape(text)}</td>"


def _with_se(value: str, se: float) -> str:
    """A cell of a statistic with its standard error in small print after it."""
    return f'<td>{escape(value)}<span class="se"> \u00b1 {se_text(se, 1)}</span></td>'


def _pairs(title: str, pairs: Iterable[tuple[str, str]]) -> str:
    rows = ([escape(key), _cell(value)] for key, value in pairs)
    return f"<h3>{escape(title)}</h3>" + _table(["setting", "value"], rows, "setting")


def _setting_section(run: HedgeRun) -> str:
    c = run.config
    m, claim, h, ev = c.market, c.claim, c.hedger, c.evaluation
    market = [
        ("model", f"{m.model}: {MODEL_NAMES[m.model]}"),
        ("spot", f"{m.spot:g}"),
        *((name, f"{value:g}") for name, value in m.parameters().items()),
        ("rebalancing dates", f"{m.steps} (every {m.maturity / m.steps:.4g} years)"),
        ("maturity", f"{m.maturity:g} years"),
        ("drift and rate", "0 (discounted prices are martingales)"),
        ("volatility input", VOLATILITY_FEATURES[m.model]),
    ]
    claim_rows = [
        ("claim", f"short European {claim.kind}, strike {claim.strike:g}"),
        ("reference price", f"{run.reference_price:.6g} ({REFERENCE_NAMES[m.model]})"),
    ]
    policy = {
        "mlp": "feed-forward network of (log-moneyness, time to maturity, volatility)",
        "recurrent": "network of the market inputs and the previous holding",
        "band": "no-transaction band network around the Black-Scholes delta",
    }[h.policy]
    hedger = [
        ("policy", f"{h.policy}: {policy}" + (", fed the previous holding" * h.previous_input)),
        ("hidden layers", " x ".join(str(w) for w in h.hidden_sizes) + " (ReLU)"),
        ("risk measure", _risk_name(run)),
        ("proportional cost", f"{h.cost:g} of the traded value"),
        ("unwind at maturity", "paid" if h.unwind else "not charged (pfhedge's convention)"),
        (
            "training",
            f"{h.train_steps:,} Adam steps of {h.batch_paths:,} fresh paths each "
            f"({run.train_paths:,} paths), learning rate {h.learning_rate:g}",
        ),
        (
            "trainings",
            f"{h.trainings}: seed{'s' * (h.trainings > 1)} "
            + ", ".join(str(hedger.seed) for hedger in run.hedgers.values())
            + (" (hedger.seed, then seeds derived from it)" if h.trainings > 1 else "")
            + "; a training's seed draws its paths and initial weights",
        ),
    ]
    evaluation = [
        ("paths", f"{run.prices.shape[0]:,} fresh paths, not trained on"),
        ("seed", str(ev.seed)),
        ("baselines", ", ".join(HEDGER_LABELS[b] for b in ev.baselines) or "none"),
        *(
            [
                (
                    "Whalley-Wilmott band",
                    f"with the cost above and risk aversion {h.aversion:g} (hedger.aversion"
                    + (
                        "; the band's formula is for exponential utility, whatever the measure)"
                        if h.risk != "entropic"
                        else ")"
                    ),
                )
            ]
            if "whalley_wilmott" in ev.baselines
            else []
        ),
    ]
    blocks = (
        _pairs("Market", market),
        _pairs("Hedger", hedger),
        _pairs("Claim", claim_rows) + _pairs("Evaluation", evaluation),
    )
    return '<div class="card setting-grid">' + "".join(f"<div>{b}</div>" for b in blocks) + "</div>"


def risk_definitions(run: HedgeRun) -> list[tuple[str, str]]:
    """(column, definition) of every risk table column, in order."""
    h = run.config.hedger
    levels = sorted(run.config.evaluation.risk_levels)
    return [
        (
            "price",
            f"Indifference price: the training risk measure ({_risk_name(run)}) of the hedged "
            "short P&L X; the lowest price is the best hedge for that measure.",
        ),
        (
            "\u00b1 s.e.",
            "Monte Carlo standard error of the price (delta method) over the evaluation paths, "
            "for the trained network as it is; it leaves out how far another seed moves a deep "
            "hedger's price"
            + (
                ", which is the spread between the trainings (below the table); "
                if len(run.hedgers) > 1
                else " (set hedger.trainings to measure that); "
            )
            + SE_UNAVAILABLE
            + ".",
        ),
        ("mean P&L", f"Mean of X = gains - costs - payoff per path; {MEAN_SE}."),
        ("std P&L", "Standard deviation of X (ddof 1)."),
        *(
            (
                f"VaR {q:g}",
                f"Value at risk: minus the {1 - q:.3g} quantile of X (linear interpolation); "
                "\u00b1 its standard error over the evaluation paths (the quantile's asymptotic "
                "error, density by the Siddiqui difference quotient at the Hall-Sheather "
                "bandwidth; n/a with fewer than "
                f"{MIN_TAIL_PATHS} paths beyond the quantile).",
            )
            for q in levels
        ),
        *(
            (
                f"ES {q:g}",
                f"Expected shortfall: minus the mean of the worst {1 - q:.3g} fraction of X; "
                "\u00b1 its standard error over the evaluation paths (delta method; n/a with "
                f"fewer than {MIN_TAIL_PATHS} paths in the tail).",
            )
            for q in levels
        ),
        *(
            [
                (
                    "entropic",
                    f"Entropic risk (1/a) log E[exp(-a X)] with a = {h.aversion:g}; \u00b1 its "
                    "standard error (delta method; n/a with fewer than "
                    f"{MIN_EFFECTIVE_PATHS} effective paths of the weights exp(-a X)).",
                )
            ]
            if h.risk != "entropic"  # else it is the price column
            else []
        ),
        (
            "mean cost",
            f"Mean proportional costs paid ({h.cost:g} of each trade's value); {MEAN_SE}.",
        ),
        (
            "mean turnover",
            "Mean units of the underlying traded per path, the first purchase included"
            + (" and the unwind at maturity" if h.unwind else "")
            + f"; {MEAN_SE}.",
        ),
    ]


def money_format(scale: float) -> Callable[[float], str]:
    """A formatter of amounts of this scale (e.g. the claim's price) with about 5 significant
    digits, which prints a value that rounds to zero without a sign ("0.0000", not "-0.0000")."""
    decimals = (
        6
        if not scale > 0 or not math.isfinite(scale)
        else max(0, 4 - math.floor(math.log10(scale)))
    )

    def money(value: float) -> str:
        text = f"{value:.{decimals}f}"
        return text.lstrip("-") if float(text) == 0.0 else text

    return money


#: How the tables define the standard error of a mean over the evaluation paths.
MEAN_SE = "\u00b1 its standard error over the evaluation paths, std / sqrt(N)"


def se_text(se: float, digits: int = 2) -> str:
    """A standard error as text: "n/a" where there is none (too few paths for one)."""
    return "n/a" if math.isnan(se) else f"{se:.{digits}g}"


#: How the tables explain a standard error of "n/a" (`price_standard_error`).
SE_UNAVAILABLE = (
    f"n/a where the estimate rests on too few paths for one (fewer than {MIN_TAIL_PATHS} in the "
    f"tail, or fewer than {MIN_EFFECTIVE_PATHS} effective paths of the entropic weights "
    "exp(-aX), which a large aversion puts on the worst few paths): the delta method's error "
    "would be far too small there, and the estimate itself is biased"
)


def best_hedger(table: pd.DataFrame, trainings: Sequence[str] = ()) -> str | None:
    """The hedger whose price is below every other's by more than 2 combined standard errors.

    The combined error of two prices is ``sqrt(se_a^2 + se_b^2)`` (the ``price_se`` column),
    that of independent estimates. The hedgers share their evaluation paths, so their prices
    are positively correlated and this overstates the error of a difference: the test is
    conservative. When the lowest price is one of `trainings` (the rows of several trainings
    of one hedger), the other trainings are not its rivals, but each of them must clear the
    test: the lowest of several trainings is the luckiest seed, not evidence for the method.
    None when no hedger clears it, there is no rival, or an error is unknown (NaN).
    """
    best = table["price"].idxmin()
    siblings = list(trainings) if best in trainings else [best]
    others = table.drop(index=siblings)
    if others.empty:
        return None
    for name in siblings:
        gap = others["price"] - table.at[name, "price"]
        combined = np.sqrt(others["price_se"] ** 2 + table.at[name, "price_se"] ** 2)
        if not bool((gap > 2 * combined).all()):
            return None
    return str(best)


def _risk_section(run: HedgeRun) -> str:
    table = run.risk_table
    levels = sorted(run.config.evaluation.risk_levels)
    best = best_hedger(table, list(run.hedgers))
    show_entropic = run.config.hedger.risk != "entropic"  # else it is the price column
    header = [
        "hedger",
        "price",
        "\u00b1 s.e.",
        "mean P&L",
        "std P&L",
        *(f"VaR {q:g}" for q in levels),
        *(f"ES {q:g}" for q in levels),
        *(["entropic"] * show_entropic),
        "mean cost",
        "mean turnover",
    ]
    money = money_format(abs(run.reference_price))

    rows = []
    for name, row in table.iterrows():
        cells = [
            _cell(money(row["price"]), "best" if name == best else ""),
            _cell(se_text(row["price_se"])),
            _with_se(money(row["mean_pnl"]), row["mean_pnl_se"]),
            _cell(money(row["std_pnl"])),
            *(_with_se(money(row[f"var_{q:g}"]), row[f"var_{q:g}_se"]) for q in levels),
            *(_with_se(money(row[f"es_{q:g}"]), row[f"es_{q:g}_se"]) for q in levels),
            *([_with_se(money(row["entropic"]), row["entropic_se"])] * show_entropic),
            _with_se(f"{row['mean_cost']:.3g}", row["mean_cost_se"]),
            _with_se(f"{row['mean_turnover']:.3f}", row["mean_turnover_se"]),
        ]
        rows.append([escape(hedger_label(str(name), run)), *cells])
    definitions = _table(
        ["column", "definition"],
        ([escape(k), _cell(v)] for k, v in risk_definitions(run)),
        "setting",
    )
    if best is None:
        verdict = "no hedger is best beyond 2 standard errors"
    else:
        verdict = (
            "the lowest price is in bold: below every other hedger's by more than 2 combined "
            "standard errors"
        )
        if best in run.hedgers and len(run.hedgers) > 1:
            verdict += ", and so is every other training of the deep hedger"
    spread = spread_note(run)
    note = (
        f"On the same {run.prices.shape[0]:,} evaluation paths for every hedger; {verdict} "
        "(sqrt(se_a^2 + se_b^2), the error of independent prices: the shared paths make the "
        "prices correlate, so the test is conservative). Reference price of the claim: "
        f"{run.reference_price:.6g}. {spread[0].upper()}{spread[1:]}."
    )
    return (
        '<div class="card">'
        + _table(header, rows, "numeric risk")
        + f'<p class="note">{escape(note)}</p>'
        + "<h3>Definitions</h3>"
        + definitions
        + "</div>"
    )


# ----------------------------------------------------------------------------------- figures


def _histogram(pnl: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step-line x and y of a density histogram on `edges`."""
    counts, _ = np.histogram(pnl, bins=edges)
    density = counts / (pnl.size * np.diff(edges))
    return edges, np.append(density, density[-1])


def _pnl_figure(run: HedgeRun, names: Sequence[str], key: str, heading: str) -> ReportFigure:
    every = list(run.results)
    pnls = {name: run.results[name].pnl.double().numpy() for name in names}
    pooled = np.concatenate(list(pnls.values()))
    low, high = np.quantile(pooled, [0.001, 0.999])
    if not high > low:  # every P&L the same: give the bars some width
        low, high = low - 1e-6, high + 1e-6
    edges = np.linspace(low, high, 121)
    fig = go.Figure()
    for name, pnl in pnls.items():
        x, y = _histogram(pnl, edges)
        color = _color(name, every)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                line=dict(color=color, width=1.6, shape="hv"),
                name=hedger_label(name, run),
                hovertemplate="P&L %{x:.4g}: density %{y:.4g}<extra>" + name + "</extra>",
            )
        )
    reference = -run.reference_price
    shapes, annotations = [], []
    if low <= reference <= high:
        shapes.append(vertical_line(reference, "#555555", "dash"))
        annotations.append(
            dict(
                x=reference,
                y=1,
                xref="x",
                yref="paper",
                text="minus the reference price",
                showarrow=False,
                xanchor="left",
                yanchor="top",
                font=dict(size=11, color="#555555"),
            )
        )
    fig.update_layout(
        base_layout(
            height=380,
            hovermode="closest",
            xaxis=_axis(title=dict(text="P&L of the hedged short claim")),
            yaxis=_axis(title=dict(text="density"), rangemode="tozero"),
            shapes=shapes,
            annotations=annotations,
        )
    )
    outside = float(np.mean((pooled < low) | (pooled > high)))
    caption = (
        f"Density histograms (120 equal bins, drawn as steps) of the P&L per path X = gains - "
        f"costs - payoff of each hedger on the same {run.prices.shape[0]:,} evaluation paths. "
        f"The range is the 0.1% to 99.9% quantiles of these hedgers' P&L pooled; the {outside:.2%} "
        "outside it are left out of the drawing (not of the risk table). Dashed: minus the "
        "reference price, the P&L of a perfect replication sold at that price."
    )
    if len(run.hedgers) > 1:
        caption += (
            f" Of the deep hedger's trainings only the first (#1, seed {run.hedgers['deep'].seed}) "
            "is drawn; every training's P&L is in pnl.parquet."
        )
    return ReportFigure(key, heading, caption, fig)


def pnl_figures(run: HedgeRun) -> list[ReportFigure]:
    """The P&L distributions of the deep hedger's first training and every baseline; zoomed on
    the hedged ones when there is a ``no_hedge`` baseline, whose spread would squeeze the others
    into a few bins."""
    names = [name for name in run.results if name == "deep" or name not in run.hedgers]
    figs = [_pnl_figure(run, names, "pnl-all", "P&L distribution, every hedger")]
    hedged = [n for n in names if n != "no_hedge"]
    if len(hedged) < len(names) and hedged:
        figs.append(_pnl_figure(run, hedged, "pnl-hedged", "P&L distribution, hedged only"))
    return figs


def _ratio_dates(steps: int) -> list[int]:
    return sorted({0, steps // 2, steps - 1})


def hedge_ratio_figure(run: HedgeRun) -> ReportFigure:
    """The deep hedger's holding against the spot at dates 0, T/2 and T-1, with the
    Black-Scholes delta of the claim at those dates."""
    m, claim = run.config.market, run.config.claim
    steps = m.steps
    dt = m.maturity / steps
    dates = _ratio_dates(steps)
    k = min(SCATTER_PATHS, run.prices.shape[0])
    spot = run.prices[:k, :-1].double().numpy()
    held = run.results["deep"].positions[:k].double().numpy()
    last = run.prices[:, dates[-1]].double().numpy()
    grid = np.linspace(*np.quantile(last, [0.005, 0.995]), 201)
    if isinstance(run.volatility, float):
        vols = {t: run.volatility for t in dates}
    else:
        vols = {t: float(run.volatility[:, t].median()) for t in dates}
    titles = [f"t = {t} (time to maturity {m.maturity - t * dt:.3g})" for t in dates]
    fig = make_subplots(rows=1, cols=len(dates), subplot_titles=titles, horizontal_spacing=0.06)
    color = strategy_color(0)
    for i, t in enumerate(dates, start=1):
        fig.add_trace(
            go.Scatter(
                x=spot[:, t],
                y=held[:, t],
                mode="markers",
                marker=dict(color=color, size=4, opacity=0.45),
                name=hedger_label("deep", run),
                legendgroup="deep",
                showlegend=i == 1,
                hovertemplate="spot %{x:.4g}: holding %{y:.4g}<extra></extra>",
            ),
            row=1,
            col=i,
        )
        delta = black_scholes_delta(
            grid, claim.strike, m.maturity - t * dt, 0.0, vols[t], claim.kind
        )
        fig.add_trace(
            go.Scatter(
                x=grid,
                y=delta,
                mode="lines",
                line=dict(color="#555555", width=1.6, dash="dash"),
                name="Black-Scholes delta",
                legendgroup="delta",
                showlegend=i == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=i,
        )
    axes = {}
    for i in range(1, len(dates) + 1):
        suffix = "" if i == 1 else str(i)
        axes[f"xaxis{suffix}"] = _axis(title=dict(text="spot"))
        axes[f"yaxis{suffix}"] = _axis(title=dict(text="holding" if i == 1 else ""))
    fig.update_layout(
        base_layout(
            height=380,
            hovermode="closest",
            margin=dict(l=64, r=24, t=84, b=44),
            legend=_LEGEND_ABOVE_TITLES,
            **axes,
        )
    )
    fig.update_annotations(font=dict(size=13), yshift=4)
    if m.model == "heston":
        vol_note = (
            "The delta curve is at the median instantaneous volatility of that date "
            f"({', '.join(f'{vols[t]:.3g}' for t in dates)}); each path's baseline delta uses "
            "its own, so the baseline's holdings scatter around the curve too."
        )
    else:
        vol_note = f"The delta curve is at volatility {vols[dates[0]]:g}."
    caption = (
        f"The holding of the underlying that {_first_training(run)} chose at date t against "
        "the spot S_t, "
        f"on the first {k:,} evaluation paths, and the Black-Scholes delta of the {claim.kind} "
        f"(strike {claim.strike:g}) at that date, dashed. {vol_note} Spot range: 0.5% to 99.5% "
        f"quantiles of S at t = {dates[-1]}."
    )
    return ReportFigure("hedge-ratio", "Hedge ratio against spot", caption, fig)


def loss_figure(run: HedgeRun) -> ReportFigure:
    """The training loss of every Adam step of every training, moving averages, and
    evaluation prices."""
    fig = go.Figure()
    names = list(run.results)
    steps = 0
    for name, losses in run.losses.items():
        losses = np.asarray(losses, dtype=float)
        steps = losses.size
        step = np.arange(1, steps + 1)
        window = max(1, steps // 20)
        color = _color(name, names)
        label = hedger_label(name, run)
        fig.add_trace(
            go.Scatter(
                x=step,
                y=losses,
                mode="lines",
                line=dict(color=color, width=1),
                opacity=0.45,
                name=f"{label}: loss of the step's batch",
                legendgroup=name,
            )
        )
        if window > 1:
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            fig.add_trace(
                go.Scatter(
                    x=step[window - 1 :],
                    y=smooth,
                    mode="lines",
                    line=dict(color=color, width=2.2),
                    name=f"{label}: moving average of {window} steps",
                    legendgroup=name,
                )
            )
    for name in names:
        if name == "no_hedge":
            continue  # its price would stretch the axis far above the hedged ones
        price = float(run.risk_table.loc[name, "price"])
        fig.add_trace(
            go.Scatter(
                x=[1, steps],
                y=[price, price],
                mode="lines",
                line=dict(color=_color(name, names), width=1.2, dash="dash"),
                name=f"{hedger_label(name, run)}, evaluation",
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        base_layout(
            height=400,
            hovermode="x unified",
            # room for the legend above: two rows, and about one more per further training
            margin=dict(l=64, r=24, t=64 + 24 * (len(run.hedgers) - 1), b=44),
            xaxis=_axis(title=dict(text="Adam step")),
            yaxis=_axis(title=dict(text="risk of the hedged short P&L")),
        )
    )
    h = run.config.hedger
    measured = (
        "the OCE objective at the step's cash amount w (at least the expected shortfall)"
        if h.risk == "oce"
        else _risk_name(run)
    )
    window = max(1, steps // 20)
    trainings = f" of each of the {h.trainings} trainings" if h.trainings > 1 else ""
    caption = (
        f"Training loss of each of the {steps:,} Adam steps{trainings}: {measured} of the P&L "
        f"on the step's batch of {h.batch_paths:,} paths, which the hedger had not seen before "
        "the step."
        + (f" Thick: the moving average of {window} steps." if window > 1 else "")
        + " Dashed: each hedger's price on the evaluation paths (the risk table's price), for "
        "scale."
    )
    return ReportFigure("training-loss", "Training loss", caption, fig)


# -------------------------------------------------------------------------------------- page


def render_report(run: HedgeRun, *, title: str = DEFAULT_TITLE, source: str | None = None) -> str:
    """Render the report of a `kabuto hedge` run as one self-contained HTML page.

    Parameters
    ----------
    run : HedgeRun
        What `kabuto.experiment.hedge.run_hedge` returned.
    title : str
        Page title and heading.
    source : str, optional
        Where the config came from (a file path), printed in the header.

    Returns
    -------
    str
        The HTML page (plotly.js inlined once; nothing is loaded from the network).
    """
    c = run.config
    figure_groups = [
        ("pnl", "P&L distribution", pnl_figures(run)),
        ("hedge-ratio", "Hedge ratio", [hedge_ratio_figure(run)]),
        ("training", "Training", [loss_figure(run)]),
    ]
    caveat = (
        f"Every path here is simulated from the stated model ({MODEL_NAMES[c.market.model]}, "
        "zero drift and rate). The hedgers are trained and scored on that model only: the "
        "numbers say how they compare if the market follows it, not how they would do on real "
        "prices, whose dynamics, costs and liquidity differ."
    )
    meta = (
        f'<p class="meta"><b>Model:</b> {escape(c.market.model)} &middot; <b>Claim:</b> '
        f"short {escape(c.claim.kind)}, strike {c.claim.strike:g}, {c.market.steps} dates to "
        f"T = {c.market.maturity:g} &middot; <b>Reference price:</b> "
        f"{run.reference_price:.6g}</p>"
        f'<p class="meta"><b>Paths:</b> {run.train_paths:,} for each of {c.hedger.trainings} '
        f"training{'s' * (c.hedger.trainings > 1)} ({_seeds(run)}), "
        f"{run.prices.shape[0]:,} for evaluation (seed "
        f"{c.evaluation.seed}) &middot; <b>Risk measure:</b> {escape(_risk_name(run))} "
        f"&middot; <b>Cost:</b> {c.hedger.cost:g}</p>"
    )
    text_sections = [
        ("setting", "Setting", _setting_section(run)),
        ("risk", "Risk table", _risk_section(run)),
    ]
    return sectioned_page(
        title,
        text_sections,
        figure_groups,
        meta,
        source=source,
        caveat=caveat,
        extra_css=EXTRA_CSS,
    )
