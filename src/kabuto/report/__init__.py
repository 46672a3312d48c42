"""HTML reports: one self-contained file per backtest that works offline.

`write_report` renders a `BacktestResult` and a leaderboard (from `kabuto.evaluation`) into a
single HTML page (plotly.js inlined once) and writes it atomically; `render_report` returns the
page as a string. `kabuto.report.simulation` reports an artificial market simulation and
`kabuto.report.hedging` a deep hedging run.
"""

from kabuto.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
