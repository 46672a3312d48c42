"""HTML tables of a report: the leaderboard, the metric definitions and the settings.

Every string that comes from data (strategy names, column names, settings values, definitions)
is HTML-escaped here; the functions return markup that is safe to paste into the page.
"""

from __future__ import annotations

import json
import math
import numbers
import pprint
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

MISSING = "\u2014"
"""Printed for a missing (NaN / None) value."""


@dataclass(frozen=True)
class MetricFormat:
    """How a leaderboard column is printed: its header and its number format."""

    header: str
    kind: str  # "pct", "ratio", "prob", "int" or "auto"


KNOWN_METRICS: dict[str, MetricFormat] = {
    "cagr": MetricFormat("CAGR", "pct"),
    "volatility": MetricFormat("Volatility", "pct"),
    "sharpe": MetricFormat("Sharpe", "ratio"),
    "sharpe_ci_low": MetricFormat("Sharpe CI low", "ratio"),
    "sharpe_ci_high": MetricFormat("Sharpe CI high", "ratio"),
    "sortino": MetricFormat("Sortino", "ratio"),
    "max_drawdown": MetricFormat("Max drawdown", "pct"),
    "calmar": MetricFormat("Calmar", "ratio"),
    "hit_rate": MetricFormat("Hit rate", "pct"),
    "cvar_95": MetricFormat("CVaR 95%", "pct"),
    "var_95": MetricFormat("VaR 95%", "pct"),
    "beta": MetricFormat("Beta", "ratio"),
    "alpha": MetricFormat("Alpha", "pct"),
    "tracking_error": MetricFormat("Tracking error", "pct"),
    "information_ratio": MetricFormat("Information ratio", "ratio"),
    "turnover": MetricFormat("Turnover / yr", "pct"),
    "costs_paid": MetricFormat("Costs paid / yr", "pct"),
    "psr": MetricFormat("PSR", "prob"),
    "dsr": MetricFormat("DSR", "prob"),
    "sharpe_diff": MetricFormat("Sharpe diff", "ratio"),
    "sharpe_diff_pvalue": MetricFormat("Sharpe diff p-value", "prob"),
    "gross_sharpe": MetricFormat("Gross Sharpe", "ratio"),
    "gross_cagr": MetricFormat("Gross CAGR", "pct"),
    "total_return": MetricFormat("Total return", "pct"),
    "skew": MetricFormat("Skew", "ratio"),
    "skewness": MetricFormat("Skewness", "ratio"),
    "kurtosis": MetricFormat("Kurtosis", "ratio"),
    "n_days": MetricFormat("Days", "int"),
    "n_rebalances": MetricFormat("Rebalances", "int"),
}

CI_KEYS = ("sharpe_ci_low", "sharpe_ci_high")
CI_KEY = "sharpe_ci"
"""The two CI columns are printed as one "Sharpe CI" column, defined under this key if given."""


def metric_format(column: object) -> MetricFormat:
    """Header and format of a leaderboard column (known metrics first, then by name)."""
    key = str(column)
    if key in KNOWN_METRICS:
        return KNOWN_METRICS[key]
    low = key.lower()
    header = key.replace("_", " ").strip()
    header = header[:1].upper() + header[1:]
    if "pvalue" in low or "p_value" in low or low.endswith("_p"):
        return MetricFormat(header.replace("pvalue", "p-value"), "prob")
    return MetricFormat(header, "auto")


def probability_text(x: float) -> str:
    """A probability to 3 decimals, never printed as a certainty: "<0.001" and ">0.999" (a
    normal CDF is exactly 1.0 in float64 from z = 8.3 on, and no estimate is certain)."""
    if x < 0.0005:
        return "<0.001"
    if x >= 0.9995:
        return ">0.999"
    return f"{x:.3f}"


def format_value(value: object, kind: str) -> str:
    """Print one leaderboard cell (not escaped)."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if not isinstance(value, numbers.Real):
        return str(value)
    x = float(value)
    if math.isinf(x):
        return "\u221e" if x > 0 else "-\u221e"
    if kind == "pct":
        return f"{x:.2%}"
    if kind == "ratio":
        return f"{x:.2f}"
    if kind == "prob":
        return probability_text(x)
    if kind == "int":
        return f"{round(x):,}"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    return f"{x:.4g}"


@dataclass(frozen=True)
class Column:
    """One printed leaderboard column: source keys, header, and how a row becomes a cell."""

    keys: tuple[str, ...]
    header: str
    kind: str


def ci_header(leaderboard: pd.DataFrame) -> str:
    """The interval column's header with its coverage (``attrs["level"]``) when known."""
    level = leaderboard.attrs.get("level")
    return "Sharpe CI" if level is None else f"Sharpe {100 * float(level):g}% CI"


def leaderboard_columns(leaderboard: pd.DataFrame) -> list[Column]:
    """Printed columns in the leaderboard's order; the two Sharpe CI bounds become one column."""
    names = [str(c) for c in leaderboard.columns]
    has_ci = all(k in names for k in CI_KEYS)
    columns: list[Column] = []
    for name in names:
        if has_ci and name in CI_KEYS:
            if name == CI_KEYS[0]:
                columns.append(Column(CI_KEYS, ci_header(leaderboard), "ci"))
            continue
        fmt = metric_format(name)
        columns.append(Column((name,), fmt.header, fmt.kind))
    if has_ci and "sharpe" in names:
        # Print the interval right after the Sharpe ratio it belongs to.
        ci = next(c for c in columns if c.kind == "ci")
        columns.remove(ci)
        at = next(i for i, c in enumerate(columns) if c.keys == ("sharpe",))
        columns.insert(at + 1, ci)
    return columns


def _cell(row: pd.Series, column: Column, original: dict[str, object]) -> str:
    if column.kind == "ci":
        low, high = (row[original[k]] for k in column.keys)
        if pd.isna(low) and pd.isna(high):
            return MISSING
        return f"[{format_value(low, 'ratio')}, {format_value(high, 'ratio')}]"
    return format_value(row[original[column.keys[0]]], column.kind)


def leaderboard_table(leaderboard: pd.DataFrame, colors: Mapping[str, str] | None = None) -> str:
    """The leaderboard as an HTML table, one row per strategy (index), numbers right-aligned.

    `colors` maps strategy names to the colour they have in the figures (shown as a swatch).
    """
    colors = colors or {}
    original = {str(c): c for c in leaderboard.columns}
    columns = leaderboard_columns(leaderboard)
    index_name = leaderboard.index.name or "strategy"
    head = "".join(
        f'<th scope="col" title="{escape(", ".join(c.keys))}">{escape(c.header)}</th>'
        for c in columns
    )
    rows = []
    for label, row in leaderboard.iterrows():
        name = str(label)
        swatch = (
            f'<span class="swatch" style="background:{escape(colors[name])}"></span>'
            if name in colors
            else ""
        )
        cells = "".join(f"<td>{escape(_cell(row, c, original))}</td>" for c in columns)
        rows.append(f'<tr><th scope="row">{swatch}{escape(name)}</th>{cells}</tr>')
    if not rows:
        rows.append(f'<tr><td colspan="{len(columns) + 1}">(empty leaderboard)</td></tr>')
    return (
        '<div class="table-wrap"><table class="leaderboard numeric">'
        f'<thead><tr><th scope="col">{escape(str(index_name))}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


FORMAT_NOTES = {
    "pct": "percent, 2 decimals",
    "ratio": "2 decimals",
    "prob": "3 decimals",
    "int": "integer",
    "auto": "4 significant digits",
    "ci": "[low, high], 2 decimals",
}


def definitions_table(
    leaderboard: pd.DataFrame, metric_definitions: Mapping[str, str] | None
) -> str:
    """Each printed leaderboard column with its key, format and the caller's definition."""
    definitions = {str(k): str(v) for k, v in (metric_definitions or {}).items()}
    rows = []
    for column in leaderboard_columns(leaderboard):
        if column.kind == "ci" and CI_KEY in definitions:
            text = definitions[CI_KEY]
        else:
            found = list(dict.fromkeys(d.strip() for k in column.keys if (d := definitions.get(k))))
            text = " ".join(
                t if t.endswith((".", "!", "?")) or i == len(found) - 1 else t + ";"
                for i, t in enumerate(found)
            )
        cell = escape(text) if text else '<span class="muted">no definition supplied</span>'
        keys = ", ".join(f"<code>{escape(k)}</code>" for k in column.keys)
        rows.append(
            f'<tr><th scope="row">{escape(column.header)}</th><td>{keys}</td>'
            f"<td>{escape(FORMAT_NOTES[column.kind])}</td><td>{cell}</td></tr>"
        )
    return (
        '<div class="table-wrap"><table class="definitions">'
        '<thead><tr><th scope="col">Metric</th><th scope="col">Key</th>'
        '<th scope="col">Printed as</th><th scope="col">Definition</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


# --------------------------------------------------------------------------------------------
# settings


def _plain(value: object) -> object:
    """Numpy / pandas scalars to Python ones, for printing."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _scalar_text(value: object) -> str:
    value = _plain(value)
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return str(value)


def _is_container(value: object) -> bool:
    return isinstance(value, Mapping | list | tuple)


def flatten_settings(settings: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested settings as (dotted key, printed value) pairs, in insertion order.

    Mappings recurse with ``a.b`` keys, sequences of containers with ``a[0]``; sequences of
    scalars print on one line as JSON-like lists.
    """
    if isinstance(settings, Mapping):
        if not settings and prefix:
            yield prefix, "{}"
        for key, value in settings.items():
            yield from flatten_settings(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(settings, list | tuple) and any(_is_container(v) for v in settings):
        for i, value in enumerate(settings):
            yield from flatten_settings(value, f"{prefix}[{i}]")
    elif isinstance(settings, list | tuple | set | frozenset):
        items = sorted(settings, key=str) if isinstance(settings, set | frozenset) else settings
        texts = [json.dumps(v) if isinstance(v, str) else _scalar_text(v) for v in items]
        yield prefix, "[" + ", ".join(texts) + "]"
    else:
        yield prefix or "(value)", _scalar_text(settings)


def settings_json(settings: object) -> str:
    """The settings as indented JSON (values JSON cannot hold are printed with str)."""
    try:
        return json.dumps(settings, indent=2, default=_scalar_text, ensure_ascii=False)
    except (TypeError, ValueError):  # keys JSON cannot hold, circular references
        return pprint.pformat(settings, width=96, sort_dicts=False)


def settings_table(settings: Mapping[str, object]) -> str:
    """The full settings: a key/value table, and the same as JSON in a collapsible block."""
    rows = [
        f'<tr><th scope="row"><code>{escape(k)}</code></th><td><code>{escape(v)}</code></td></tr>'
        for k, v in flatten_settings(settings)
    ]
    if not rows:
        return '<p class="muted">No settings were recorded.</p>'
    return (
        '<div class="table-wrap"><table class="settings">'
        '<thead><tr><th scope="col">Setting</th><th scope="col">Value</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        "<details><summary>Settings as JSON</summary>"
        f"<pre>{escape(settings_json(settings))}</pre></details>"
    )
