"""One self-contained HTML report of a backtest, readable offline.

The page inlines plotly.js once, draws every figure from inline JSON, and loads nothing from the
network (no CDN, no web fonts). A tiny script at the top records JavaScript errors into the
hidden ``<pre id="kabuto-js-errors">`` and, once every figure is drawn, sets
``document.body.dataset.rendered`` to the number of figures rendered, so a headless browser
test can check the page from its DOM.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

import kabuto
from kabuto.errors import KabutoError
from kabuto.evaluation.metrics import ANNUALIZATION
from kabuto.evaluation.overfitting import noise_level
from kabuto.report import figures, tables

if TYPE_CHECKING:
    from kabuto.backtest.result import BacktestResult

DEFAULT_TITLE = "kabuto backtest"

CSS = """
:root{--fg:#1f2328;--muted:#57606a;--line:#d8dee4;--soft:#eef1f4;--accent:#0b5cad;
--warn:#fff4e0;--warn-line:#d97706;--warn-fg:#7a3e00}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f5f6f8;color:var(--fg);
font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",
sans-serif}
.wrap{max-width:1240px;margin:0 auto;padding:0 24px}
header.top{background:#fff;border-bottom:1px solid var(--line);padding:22px 0 14px}
h1{font-size:1.75rem;line-height:1.2;margin:0 0 .35rem;letter-spacing:-.01em}
h2{font-size:1.3rem;margin:2.2rem 0 .8rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.02rem;margin:0 0 .5rem}
.meta{margin:.2rem 0;color:var(--muted)}
.meta b{color:var(--fg);font-weight:600}
.caveat{margin:14px 0 4px;padding:.75rem 1rem;background:var(--warn);border:1px solid #f3c27a;
border-left:5px solid var(--warn-line);border-radius:6px;color:var(--warn-fg)}
.caveat strong{display:block;margin-bottom:.15rem;color:#5c2d00}
nav.toc{margin-top:12px;font-size:.9rem}
nav.toc a{color:var(--accent);text-decoration:none;margin-right:1.1rem;white-space:nowrap}
nav.toc a:hover{text-decoration:underline}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;
margin:14px 0}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:.88rem}
th,td{padding:.38rem .65rem;border-bottom:1px solid var(--soft);text-align:left;vertical-align:top}
thead th{background:#f3f5f7;border-bottom:1px solid var(--line);font-weight:600;
vertical-align:bottom}
table.leaderboard{font-size:.82rem}
table.leaderboard th,table.leaderboard td{padding:.34rem .5rem}
table.leaderboard thead th{min-width:3.8rem}
table.leaderboard tbody th,table.leaderboard thead th:first-child{position:sticky;left:0;
z-index:1;background:#fff}
table.leaderboard thead th:first-child{background:#f3f5f7}
tbody tr:hover{background:#fafbfc}
table.numeric td{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.numeric thead th{text-align:right}
table.numeric thead th:first-child{text-align:left}
tbody th{font-weight:600;white-space:nowrap}
table.definitions td:last-child{min-width:22rem}
table.definitions td:nth-child(3){white-space:nowrap;color:var(--muted)}
table.settings td code{white-space:pre-wrap;word-break:break-word}
figure{margin:0}
figcaption{margin-top:.4rem;color:var(--muted);font-size:.85rem}
.fig-caveat{display:block;margin-top:.25rem;color:var(--warn-fg)}
.kabuto-fig{width:100%}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:.84em}
pre{background:#f6f8fa;border:1px solid var(--soft);border-radius:6px;padding:.75rem;overflow:auto}
details summary{cursor:pointer;color:var(--accent);margin-top:.6rem;font-size:.9rem}
.swatch{display:inline-block;width:.7em;height:.7em;border-radius:2px;margin-right:.5em}
.muted{color:var(--muted)}
.note{color:var(--muted);font-size:.85rem;margin:.5rem 0 0}
footer{color:var(--muted);font-size:.8rem;padding:28px 0 40px}
@media print{body{background:#fff}.card{border:none;padding:0}nav.toc{display:none}}
"""

# Runs before anything else: records errors and counts rendered figures (see module docstring).
HEAD_SCRIPT = """
(function () {
  "use strict";
  var K = window.kabuto = {errors: [], plots: []};
  function show() {
    var el = document.getElementById("kabuto-js-errors");
    if (el) { el.textContent = K.errors.join("\\n"); }
  }
  function text(x) { return x && (x.stack || x.message) || String(x); }
  function record(msg) { K.errors.push(String(msg)); show(); }
  K.record = record;
  window.addEventListener("error", function (e) {
    record("error: " + (e.message || text(e.error)) +
      (e.filename ? " (" + e.filename + ":" + e.lineno + ")" : ""));
  });
  window.addEventListener("unhandledrejection", function (e) {
    record("unhandledrejection: " + text(e.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    try { record("console.error: " + Array.prototype.map.call(arguments, text).join(" ")); }
    catch (ignored) { /* never let the recorder itself throw */ }
    return consoleError.apply(console, arguments);
  };
  document.addEventListener("DOMContentLoaded", show);
  K.config = {responsive: true, displaylogo: false};
  K.plot = function (id, fig) {
    function fail(e) { record("figure " + id + ": " + text(e)); return null; }
    try {
      K.plots.push(Plotly.newPlot(id, fig.data, fig.layout, K.config).then(null, fail));
    } catch (e) { fail(e); }
  };
  K.finish = function () {
    Promise.all(K.plots).then(function (divs) {
      var n = divs.filter(function (d) { return d && d.querySelector(".main-svg"); }).length;
      document.body.dataset.rendered = String(n);
    });
  };
})();
"""


# --------------------------------------------------------------------------------------------
# validation


def _check_inputs(
    result: BacktestResult,
    leaderboard: pd.DataFrame,
    metric_definitions: Mapping[str, str] | None,
    extra_sections: Sequence[tuple[str, str]] | None,
) -> None:
    strategies = getattr(result, "strategies", None)
    if not isinstance(strategies, Mapping):
        raise KabutoError(
            f"report: result must be a BacktestResult, got {type(result).__name__}; pass what "
            "the backtest returned"
        )
    if not strategies:
        raise KabutoError("report: the BacktestResult has no strategies; nothing to report")
    for name, strategy in strategies.items():
        if not len(strategy.net_returns.dropna()):
            raise KabutoError(
                f"report: strategy {name!r} has no net returns; check the backtest's start date "
                "and lookback"
            )
    if not isinstance(leaderboard, pd.DataFrame):
        raise KabutoError(
            f"report: leaderboard must be a pandas DataFrame indexed by strategy name, got "
            f"{type(leaderboard).__name__}"
        )
    if metric_definitions is not None and not isinstance(metric_definitions, Mapping):
        raise KabutoError(
            "report: metric_definitions must map a metric key to a one-line definition, got "
            f"{type(metric_definitions).__name__}"
        )
    for i, section in enumerate(extra_sections or ()):
        if not (
            isinstance(section, tuple | list)
            and len(section) == 2
            and all(isinstance(s, str) for s in section)
        ):
            raise KabutoError(
                f"report: extra_sections[{i}] must be a (heading, html) pair of strings, got "
                f"{section!r:.80}"
            )


# --------------------------------------------------------------------------------------------
# pieces of the page


def _json_for_script(fig: go.Figure) -> str:
    """Figure JSON that is safe inside a <script> element (no '</script>' can end it early)."""
    text = pio.to_json(fig, validate=False, pretty=False)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_CAVEAT_LABEL = "Survivorship bias"


def _caveat_body(caveat: str) -> str:
    """The caveat without a leading "Survivorship bias:" (the report adds its own label)."""
    head, colon, rest = caveat.partition(":")
    return rest.strip() if colon and head.strip().lower() == _CAVEAT_LABEL.lower() else caveat


def _caveat_box(caveat: str | None) -> str:
    if not caveat:
        return ""
    return (
        '<div class="caveat" role="note" id="survivorship-caveat">'
        f"<strong>{_CAVEAT_LABEL}</strong>{escape(_caveat_body(caveat))}</div>"
    )


def _costs_bps(result: BacktestResult) -> float | Mapping[str, float] | list | None:
    """The cost rate the backtest charged, from its settings (None when not recorded; a list
    of rates for a sweep whose trials charged different ones)."""
    backtest = (result.settings or {}).get("backtest")
    return backtest.get("costs_bps") if isinstance(backtest, Mapping) else None


def _cost_text(costs: float | Mapping[str, float] | list | None) -> str:
    """The cost level in words: a global rate, or each asset's (``default`` included), or the
    levels of a sweep's trials (a list)."""
    if costs is None:
        return "not recorded in the result's settings"
    if isinstance(costs, list):
        levels = "; ".join(_cost_text(level) for level in costs)
        return f"by trial, each trial's name gives its level: {levels}"
    if isinstance(costs, Mapping):
        rates = ", ".join(f"{asset} {bps:g}" for asset, bps in costs.items())
        return f"per asset: {rates} bps of traded notional"
    return f"{costs:g} bps of traded notional"


def _costs_are_zero(costs: float | Mapping[str, float] | list | None) -> bool:
    if costs is None:
        return False
    if isinstance(costs, list):  # a sweep's levels: zero only if every trial's is
        return all(_costs_are_zero(level) for level in costs)
    return all(bps == 0 for bps in (costs.values() if isinstance(costs, Mapping) else [costs]))


def _cost_caveat(costs: float | Mapping[str, float] | list | None) -> str:
    # a frictionless backtest flatters every strategy that trades: say so where it is seen first
    if isinstance(costs, list) and not _costs_are_zero(costs):
        if not any(_costs_are_zero(level) for level in costs):
            return ""
        which = "The trials at 0 bps were charged nothing on any trade, so their returns are"
    elif _costs_are_zero(costs):
        which = "This backtest charged 0 bps on every trade, so its returns are"
    else:
        return ""
    return (
        '<div class="caveat" role="note" id="cost-caveat"><strong>No transaction costs'
        f"</strong>{which} frictionless and overstate what trading the strategies would earn; "
        "set costs_bps above 0 (e.g. 10) for a realistic comparison.</div>"
    )


def cost_note(result: BacktestResult) -> str:
    """What a backtest's net returns are net of, in one sentence (the CLI prints it too), and
    a warning when the backtest is too short for its annualized figures (`SHORT_DAYS`)."""
    days = len(result.net_returns())
    short = (
        f" The backtest covers only {days} trading day{'s' * (days != 1)}: its annualized "
        f"figures (CAGR, volatility, Sharpe ratio, turnover and costs a year) extrapolate them "
        f"to {ANNUALIZATION} days and say little."
        if days < SHORT_DAYS
        else ""
    )
    return _cost_note(_costs_bps(result)) + short


#: Fewer days than this (half a year) make annualized figures mostly extrapolation.
SHORT_DAYS = 126


def _cost_note(costs: float | Mapping[str, float] | list | None) -> str:
    """The leaderboard's first sentence: what its net returns are net of."""
    if costs is None:
        return "Net of the transaction costs the backtest charged (the level is not recorded)."
    if _costs_are_zero(costs):
        return "No transaction costs were charged (0 bps): net equals gross."
    return f"Net of transaction costs ({_cost_text(costs)})."


def overfitting_note(leaderboard: pd.DataFrame) -> str:
    """The board's probability of backtest overfitting in one sentence ("" if not recorded)."""
    attrs = leaderboard.attrs
    pbo, blocks, n = attrs.get("pbo"), attrs.get("pbo_blocks"), attrs.get("pbo_strategies")
    if pbo is None or blocks is None or n is None or not np.isfinite(pbo):
        return ""
    splits = math.comb(blocks, blocks // 2)
    return (
        f"PBO {pbo:.2f}: in {pbo:.0%} of {splits:,} splits of the days into halves ({blocks} "
        f"blocks, CSCV), the strategy with the best Sharpe on one half ranked at or below the "
        f"median of the {n} on the other; a ranking that is pure noise gives "
        f"{noise_level(n):.2f} on average, and one PBO varies widely around that."
    )


def scenario_note(leaderboard: pd.DataFrame) -> str:
    """How a sweep's board ranked scenario by scenario reads, with each scenario's benchmark,
    SR0 and PBO ("" for a board ranked as one; `kabuto.experiment.sweep`)."""
    attrs = leaderboard.attrs
    scenarios = attrs.get("scenarios")
    if not scenarios:
        return ""
    parts = []
    for scenario in scenarios:
        values = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in scenario["values"].items())
        n = scenario["n_trials"]
        facts = [f"{n} trial{'s' if n != 1 else ''}"]
        facts.append(f"benchmark {scenario.get('benchmark_strategy') or 'none'}")
        sr0 = scenario.get("expected_max_sharpe")
        if sr0 is not None and np.isfinite(sr0):
            facts.append(f"expected best Sharpe under no skill {sr0 * ANNUALIZATION**0.5:.2f}")
        pbo = scenario.get("pbo")
        if pbo is not None and np.isfinite(pbo):
            facts.append(f"PBO {pbo:.2f} (pure noise: {noise_level(n):.2f})")
        parts.append(f"{values}: " + ", ".join(facts))
    return (
        f"Trials are ranked within each scenario of {', '.join(attrs['scenario_keys'])} (the "
        "market a strategy meets, not a setting to pick), each scenario on its own: the DSR "
        "deflates for the trials of its scenario and is meant for the trial picked in each, its "
        "top row; Sharpe diff and its p-value compare a trial with its scenario's benchmark "
        "trial, the p-values not adjusted for multiple comparisons; the probability of "
        "backtest overfitting (CSCV) is per scenario, against the average of a ranking of pure "
        "noise, and one PBO varies widely around that. " + "; ".join(parts) + "."
    )


def _inference_note(leaderboard: pd.DataFrame) -> str:
    """What the leaderboard's tests compare against, from its `attrs` (empty if not recorded)."""
    attrs = leaderboard.attrs
    if attrs.get("scenarios"):
        return " " + scenario_note(leaderboard)
    note = ""
    others = len(leaderboard) - 1
    if (
        attrs.get("benchmark_strategy") is not None
        and "sharpe_diff" in leaderboard.columns
        and others > 0
    ):
        note += (
            f" Sharpe diff and its p-value compare each strategy with {attrs['benchmark_strategy']}"
        )
        note += (
            f"; the {others} p-values are not adjusted for multiple comparisons."
            if others > 1
            else "."
        )
    trials = attrs.get("n_trials")
    if trials is not None and "dsr" in leaderboard.columns:
        sr0 = attrs.get("expected_max_sharpe")
        if trials < 2:
            note += " With one strategy tried, the DSR is its PSR: there is nothing to deflate for."
        elif sr0 is None or not np.isfinite(sr0):
            note += (
                f" The DSR is undefined: of the {trials} strategies tried, fewer than two have a "
                "finite Sharpe ratio whose spread it deflates by."
            )
        else:
            note += (
                f" The DSR deflates for the {trials} strategies tried, expected best Sharpe "
                f"under no skill {sr0 * ANNUALIZATION**0.5:.2f} (annualized); it is meant for "
                "the strategy picked, the top row."
            )
    pbo = overfitting_note(leaderboard)
    return note + (f" {pbo}" if pbo else "")


def _period(result: BacktestResult) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    nets = figures.net_series(result).values()
    start = min(s.index[0] for s in nets)
    end = max(s.index[-1] for s in nets)
    days = len(pd.Index([]).append([s.index for s in nets]).unique())
    return pd.Timestamp(start), pd.Timestamp(end), days


def _header(result: BacktestResult, title: str, sections: list[tuple[str, str]]) -> str:
    start, end, days = _period(result)
    bench = "yes" if figures.benchmark_series(result) is not None else "none"
    costs = _costs_bps(result)
    toc = _toc_links(sections)
    return (
        '<header class="top"><div class="wrap">'
        f"<h1>{escape(title)}</h1>"
        f'<p class="meta"><b>Data:</b> {escape(str(result.data_source))}</p>'
        f'<p class="meta"><b>Period:</b> {start:%Y-%m-%d} to {end:%Y-%m-%d} '
        f"({days:,} trading days of returns) &middot; <b>Strategies:</b> "
        f"{len(result.strategies)} &middot; <b>Benchmark:</b> {bench}</p>"
        f'<p class="meta"><b>Transaction costs:</b> {escape(_cost_text(costs))}</p>'
        f"{_cost_caveat(costs)}"
        f"{_caveat_box(result.survivorship_caveat)}"
        f'<nav class="toc" aria-label="Sections">{toc}</nav>'
        "</div></header>"
    )


def _figure_block(fig: figures.ReportFigure, number: int, caveat: str | None) -> str:
    div_id = f"kabuto-fig-{number}"
    height = int(fig.figure.layout.height or 380)
    caveat_note = (
        f'<span class="fig-caveat">{_CAVEAT_LABEL}: {escape(_caveat_body(caveat))}</span>'
        if caveat
        else ""
    )
    return (
        f'<div class="card" id="{escape(fig.key)}"><figure>'
        f"<h3>{escape(fig.heading)}</h3>"
        f'<div id="{div_id}" class="kabuto-fig" style="height:{height}px" role="img" '
        f'aria-label="{escape(fig.heading)}"></div>'
        f"<script>kabuto.plot({json.dumps(div_id)}, {_json_for_script(fig.figure)});"
        "</script>"
        f"<figcaption>{escape(fig.caption)}{caveat_note}</figcaption>"
        "</figure></div>"
    )


def _toc_links(sections: Sequence[tuple[str, str]]) -> str:
    """The links of a page header's table of contents, one per (anchor, heading)."""
    return "".join(f'<a href="#{escape(a)}">{escape(h)}</a>' for a, h in sections)


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(heading)}</h2>{body}</section>'


def _figure_section(
    anchor: str,
    heading: str,
    figs: list[figures.ReportFigure],
    counter: list[int],
    caveat: str | None,
    empty: str = "",
) -> str:
    blocks = []
    for fig in figs:
        blocks.append(_figure_block(fig, counter[0], caveat))
        counter[0] += 1
    body = "".join(blocks) or f'<p class="muted">{escape(empty)}</p>'
    return _section(anchor, heading, body)


# --------------------------------------------------------------------------------------------
# public API


def render_report(
    result: BacktestResult,
    leaderboard: pd.DataFrame,
    *,
    title: str = DEFAULT_TITLE,
    metric_definitions: Mapping[str, str] | None = None,
    extra_sections: Sequence[tuple[str, str]] | None = None,
) -> str:
    """Render the report of a backtest as one self-contained HTML page.

    Parameters
    ----------
    result : BacktestResult
        What the backtest returned: per-strategy returns, weights, turnover and costs, the
        settings, the data provenance, the survivorship caveat and the benchmark.
    leaderboard : DataFrame
        Net metrics indexed by strategy name (e.g. from ``kabuto.evaluation``). Every column
        is printed; known metrics get human headers and formats (percent for returns and
        drawdowns, 2 decimals for ratios, 3 for p-values and probabilities), and the
        ``sharpe_ci_low`` / ``sharpe_ci_high`` pair is printed as one interval column.
    title : str
        Page title and heading.
    metric_definitions : mapping of metric key -> one-line definition, optional
        Printed in the definitions table below the leaderboard (``sharpe_ci`` defines the
        interval column; otherwise the definitions of its two bounds are joined).
    extra_sections : sequence of (heading, html) pairs, optional
        Appended at the end. The heading is escaped; the html is trusted markup and is
        inserted as given.

    Returns
    -------
    str
        The HTML page (plotly.js inlined once; nothing is loaded from the network).

    Raises
    ------
    KabutoError
        If an argument cannot be reported (no strategies, a leaderboard that is not a
        DataFrame, malformed definitions or extra sections).
    """
    _check_inputs(result, leaderboard, metric_definitions, extra_sections)
    caveat = result.survivorship_caveat or None
    colors = {name: figures.strategy_color(i) for i, name in enumerate(result.names)}
    counter = [0]
    sections = [
        _section(
            "leaderboard",
            "Leaderboard",
            '<div class="card">'
            + tables.leaderboard_table(leaderboard, colors)
            + f'<p class="note">{escape(cost_note(result))}'
            + escape(_inference_note(leaderboard))
            + " Definitions below."
            + (" Scroll the table sideways for more columns." * (len(leaderboard.columns) > 12))
            + "</p></div>"
            + '<h3 id="definitions">Metric definitions</h3>'
            + '<div class="card">'
            + tables.definitions_table(leaderboard, metric_definitions)
            + "</div>",
        ),
        _figure_section(
            "performance", "Performance", figures.performance_figures(result), counter, caveat
        ),
        _figure_section(
            "weights",
            "Weights",
            figures.weight_figures(result),
            counter,
            caveat,
            empty="No strategy recorded a rebalance.",
        ),
        _figure_section(
            "trading", "Turnover and costs", figures.trading_figures(result), counter, caveat
        ),
        _section(
            "settings",
            "Settings",
            '<div class="card">' + tables.settings_table(result.settings or {}) + "</div>",
        ),
    ]
    toc = [
        ("leaderboard", "Leaderboard"),
        ("performance", "Performance"),
        ("weights", "Weights"),
        ("trading", "Turnover and costs"),
        ("settings", "Settings"),
    ]
    for i, (heading, body) in enumerate(extra_sections or (), start=1):
        sections.append(_section(f"extra-{i}", heading, f'<div class="card">{body}</div>'))
        toc.append((f"extra-{i}", heading))

    return page(title, _header(result, title, toc), sections)


def sectioned_page(
    title: str,
    text_sections: Sequence[tuple[str, str, str]],
    figure_groups: Sequence[tuple[str, str, Sequence[go.Figure]]],
    meta_html: str,
    *,
    source: str | None = None,
    caveat: str | None = None,
    extra_css: str = "",
) -> str:
    """A report page of text sections followed by figure sections, with a table of contents.

    Parameters
    ----------
    title : str
        Page title and heading.
    text_sections : sequence of (anchor, heading, html)
        Sections in order; the html is trusted markup.
    figure_groups : sequence of (anchor, heading, figures)
        Figure sections after them, figures numbered across the page.
    meta_html : str
        Trusted markup of the header's lines under the config line (``<p class="meta">``).
    source : str, optional
        Where the config came from (a file path), printed first in the header.
    caveat : str, optional
        Plain text shown as the header's "Simulated market" caveat.
    extra_css : str
        Styles added to the page's.
    """
    sections = [_section(anchor, heading, body) for anchor, heading, body in text_sections]
    counter = [0]
    for anchor, heading, figs in figure_groups:
        sections.append(_figure_section(anchor, heading, figs, counter, None))
    toc = [(a, h) for a, h, _ in text_sections] + [(a, h) for a, h, _ in figure_groups]
    header = (
        '<header class="top"><div class="wrap">'
        f"<h1>{escape(title)}</h1>"
        + (f'<p class="meta"><b>Config:</b> {escape(source)}</p>' if source else "")
        + meta_html
        + (
            '<div class="caveat" role="note" id="simulation-caveat"><strong>Simulated market'
            f"</strong>{escape(caveat)}</div>"
            if caveat
            else ""
        )
        + f'<nav class="toc" aria-label="Sections">{_toc_links(toc)}</nav>'
        "</div></header>"
    )
    return page(title, header, sections, extra_css)


def page(title: str, header: str, sections: Sequence[str], extra_css: str = "") -> str:
    """A self-contained kabuto HTML page: styles, plotly.js inlined, header and sections."""
    return "".join(
        [
            "<!DOCTYPE html>\n",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="generator" content="kabuto {escape(kabuto.__version__)}">',
            f"<title>{escape(title)}</title>",
            f"<script>{HEAD_SCRIPT}</script>",
            f"<style>{CSS}{extra_css}</style>",
            "<script>/* plotly.js, inlined so the report works offline */\n",
            plotly.offline.get_plotlyjs(),
            "\n</script>",
            "</head><body>",
            '<pre id="kabuto-js-errors" hidden></pre>',
            header,
            '<main class="wrap">',
            *sections,
            "</main>",
            f'<footer class="wrap">Generated by kabuto {escape(kabuto.__version__)}. '
            "Self-contained: this file loads nothing from the network.</footer>",
            "<script>kabuto.finish();</script>",
            "</body></html>\n",
        ]
    )


def write_report(
    result: BacktestResult,
    leaderboard: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str = DEFAULT_TITLE,
    metric_definitions: Mapping[str, str] | None = None,
    extra_sections: Sequence[tuple[str, str]] | None = None,
) -> Path:
    """Render the report (see `render_report`) and write it to `path` atomically.

    The page is rendered in memory, written to a temporary file in the destination directory
    and renamed into place, so a failure leaves neither a partial report nor a temporary file
    (and an existing report at `path` untouched).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    KabutoError
        If the destination directory does not exist or `path` is a directory, or an argument
        cannot be reported.
    """
    return write_page(
        path,
        lambda: render_report(
            result,
            leaderboard,
            title=title,
            metric_definitions=metric_definitions,
            extra_sections=extra_sections,
        ),
    )


def write_page(path: str | os.PathLike[str], render: Callable[[], str]) -> Path:
    """Check the destination, render the page and write it to `path` atomically."""
    target = Path(path)
    if target.is_dir():
        raise KabutoError(f"report: {target} is a directory; give a file name such as report.html")
    if not target.parent.is_dir():
        raise KabutoError(f"report: directory {target.parent} does not exist; create it first")
    _atomic_write(target, render().encode("utf-8"))
    return target


def _atomic_write(target: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `target`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
