"""kabuto.report: one self-contained, offline HTML report of a backtest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.offline
import pytest

from kabuto.backtest.result import BacktestResult, StrategyResult
from kabuto.errors import KabutoError
from kabuto.evaluation import sharpe
from kabuto.report import figures, render_report, tables, write_report

from helpers import start_tags

CAVEAT = "The 20 stocks were picked in hindsight: survivorship bias inflates every result."
SOURCE = "bundled S&P 500 sample (skfolio), 1990-2022, adjusted closes"
NAMES = ["equal_weight", "min_variance", "mom & carry"]
ASSETS = ["AAA", "BBB", "CCC", "DDD"]
PLOTLY_MARKER = plotly.offline.get_plotlyjs()[:300]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _strategy(name: str, dates: pd.DatetimeIndex, rng: np.random.Generator, cash: float):
    rebal = dates[::21]
    raw = rng.dirichlet(np.ones(len(ASSETS)), size=len(rebal)) * (1.0 - cash)
    target = pd.DataFrame(raw, index=rebal, columns=ASSETS)
    drifted = target.shift(1).fillna(0.0) * (1 + rng.normal(0, 0.02, size=raw.shape))
    turnover = (target - drifted).abs().sum(axis=1)
    costs = pd.Series(0.0, index=dates)
    costs.loc[rebal] = turnover.to_numpy() * 10e-4
    gross = pd.Series(rng.normal(0.0004, 0.01, size=len(dates)), index=dates)
    return StrategyResult(
        name=name,
        gross_returns=gross,
        net_returns=gross - costs,
        costs=costs,
        turnover=turnover,
        target_weights=target,
        drifted_weights=drifted,
    )


def make_result(n_days: int = 600, seed: int = 7, caveat: str | None = CAVEAT) -> BacktestResult:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    strategies = {name: _strategy(name, dates, rng, cash=0.1 * i) for i, name in enumerate(NAMES)}
    return BacktestResult(
        strategies=strategies,
        settings={
            "start": "2020-01-01",
            "lookback": 252,
            "schedule": {"rebalance": "21D", "retrain": "63D"},
            "costs": {"bps": 10, "per_asset": {"AAA": 5, "BBB": 15}},
            "constraints": [{"kind": "long_only"}, {"kind": "max_weight", "value": 0.4}],
            "note": "<script>alert('settings')</script>",
        },
        data_source=SOURCE,
        survivorship_caveat=caveat,
        benchmark_returns=pd.Series(rng.normal(0.0003, 0.011, size=n_days), index=dates),
    )


def make_leaderboard(result: BacktestResult) -> pd.DataFrame:
    rows = {}
    for name, strategy in result.strategies.items():
        r = strategy.net_returns
        wealth = (1 + r).cumprod()
        sharpe = r.mean() / r.std() * np.sqrt(252)
        rows[name] = {
            "cagr": wealth.iloc[-1] ** (252 / len(r)) - 1,
            "volatility": r.std() * np.sqrt(252),
            "sharpe": sharpe,
            "sharpe_ci_low": sharpe - 0.8,
            "sharpe_ci_high": sharpe + 0.8,
            "max_drawdown": (wealth / wealth.cummax() - 1).min(),
            "hit_rate": (r > 0).mean(),
            "turnover": strategy.turnover.sum() / 2 / (len(r) / 252),
            "costs_paid": strategy.costs.sum() / (len(r) / 252),
            "sharpe_diff_pvalue": 0.04567,
            "dsr": 0.5,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


DEFINITIONS = {
    "cagr": "Compound annual growth rate of net wealth.",
    "sharpe": "Mean daily excess return / std * sqrt(252).",
    "sharpe_ci_low": "Lower end of the 95% bootstrap interval of the Sharpe ratio.",
    "sharpe_ci_high": "Upper end of the 95% bootstrap interval of the Sharpe ratio.",
    "max_drawdown": "Largest peak-to-trough fall of compounded net wealth.",
    "sharpe_diff_pvalue": "p-value of the Sharpe difference vs the benchmark <Jobson-Korkie>.",
}


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return make_result()


@pytest.fixture(scope="module")
def leaderboard(result: BacktestResult) -> pd.DataFrame:
    return make_leaderboard(result)


@pytest.fixture(scope="module")
def page(result: BacktestResult, leaderboard: pd.DataFrame) -> str:
    return render_report(
        result,
        leaderboard,
        title="Demo <run>",
        metric_definitions=DEFINITIONS,
        extra_sections=[("Notes & caveats", "<p id='extra-probe'>hello</p>")],
    )


def _without_plotly(page: str) -> str:
    assert page.count(PLOTLY_MARKER) == 1
    return page.replace(plotly.offline.get_plotlyjs(), "")


def _n_figures(page: str) -> int:
    return sum(
        1 for tag, attrs in start_tags(page) if tag == "div" and attrs.get("class") == "kabuto-fig"
    )


# ---------------------------------------------------------------------------------------------
# contents


def test_header_has_title_provenance_and_caveat(page: str) -> None:
    assert "<title>Demo &lt;run&gt;</title>" in page
    assert "<h1>Demo &lt;run&gt;</h1>" in page
    assert escape(SOURCE) in page
    assert escape(CAVEAT) in page
    # prominently: in a caveat box in the header, before the leaderboard
    assert page.index('id="survivorship-caveat"') < page.index('id="leaderboard"')


def test_caveat_printed_beside_every_figure(page: str) -> None:
    body = _without_plotly(page)
    assert body.count(f"Survivorship bias: {escape(CAVEAT)}") == _n_figures(page)
    # a caveat that names itself is not labelled twice
    labelled = render_report(
        make_result(caveat="Survivorship bias: " + CAVEAT), make_leaderboard(make_result())
    )
    assert "Survivorship bias: Survivorship bias" not in labelled
    assert f"<strong>Survivorship bias</strong>{escape(CAVEAT)}" in labelled


def test_no_caveat_box_without_caveat(leaderboard: pd.DataFrame) -> None:
    page = render_report(make_result(caveat=None), leaderboard)
    assert "survivorship-caveat" not in page
    assert "Survivorship bias" not in _without_plotly(page)
    assert "<h1>kabuto backtest</h1>" in page


def _with_costs(costs) -> BacktestResult:
    """The fixture's result as if the backtest had charged `costs` (its ``costs_bps``)."""
    result = make_result()
    return replace(result, settings={**result.settings, "backtest": {"costs_bps": costs}})


def _header(page: str) -> str:
    return page[page.index('<header class="top">') : page.index("</header>")]


@pytest.mark.parametrize(
    ("costs", "level"),
    [
        (10, "10 bps of traded notional"),
        (
            {"AAA": 5, "BBB": 15.5, "default": 10},
            "per asset: AAA 5, BBB 15.5, default 10 bps of traded notional",
        ),
    ],
)
def test_header_and_leaderboard_show_the_cost_level(
    leaderboard: pd.DataFrame, costs, level: str
) -> None:
    page = render_report(_with_costs(costs), leaderboard)
    assert f"<b>Transaction costs:</b> {level}" in _header(page)
    assert f"Net of transaction costs ({level})" in page
    assert "cost-caveat" not in page


@pytest.mark.parametrize("costs", [0, 0.0, {"AAA": 0, "default": 0.0}])
def test_zero_costs_are_flagged_in_the_header(leaderboard: pd.DataFrame, costs) -> None:
    page = render_report(_with_costs(costs), leaderboard)
    header = _header(page)
    assert 'id="cost-caveat"' in header and "No transaction costs" in header
    assert "charged 0 bps" in header
    assert "Net of transaction costs" not in page
    assert "No transaction costs were charged (0 bps): net equals gross." in page


def test_a_backtest_too_short_to_annualize_says_so(page: str) -> None:
    # 600 days: no warning; 60 days: its annualized figures are mostly extrapolation
    assert "The backtest covers only" not in page
    short = make_result(n_days=60)
    short_page = render_report(short, make_leaderboard(short))
    assert "The backtest covers only 60 trading days: its annualized figures" in short_page


def test_costs_not_recorded_are_said_so(page: str) -> None:
    assert "<b>Transaction costs:</b> not recorded in the result&#x27;s settings" in page
    assert "(the level is not recorded)" in page and "cost-caveat" not in page


def test_every_strategy_and_benchmark_is_named(page: str) -> None:
    for name in NAMES:
        assert escape(name) in page
    assert '"name":"benchmark"' in page
    assert "mom & carry" not in _without_plotly(page)  # escaped in HTML and JSON alike


def test_figure_labels_are_shown_literally(result: BacktestResult) -> None:
    # plotly reads tags in trace names and categories: "<b>x</b>" drew a bold x, and a name
    # holding <a href=...> drew a link; as entities it shows them as written
    assert (
        figures.plot_text("<a href='u'>AAPL</a> & co")
        == "&lt;a href='u'&gt;AAPL&lt;/a&gt; &amp; co"
    )
    equity = figures.equity_figure(result).figure
    assert [t.name for t in equity.data][:3] == ["equal_weight", "min_variance", "mom &amp; carry"]
    bars = figures.turnover_costs_figure(result).figure
    assert list(bars.data[0].x) == ["equal_weight", "min_variance", "mom &amp; carry"]
    # low costs: ticks keep their digits ("~%" trims zeros only; ".1%" printed 0.0% on each)
    assert bars.layout.yaxis2.tickformat == "~%"
    assert figures.cumulative_costs_figure(result).figure.layout.yaxis.tickformat == "~%"


def test_figures(page: str, result: BacktestResult) -> None:
    # equity, drawdown, rolling Sharpe, one weights figure per strategy, turnover/costs, costs
    assert _n_figures(page) == 3 + len(NAMES) + 2
    assert '"type":"log"' in page
    assert page.count("kabuto.plot(") == _n_figures(page)
    for key in ("equity", "drawdowns", "rolling-sharpe", "turnover-costs", "cumulative-costs"):
        assert f'id="{key}"' in page


def test_leaderboard_formats_and_ci(page: str, leaderboard: pd.DataFrame) -> None:
    row = leaderboard.loc["equal_weight"]
    assert f"<td>{row['cagr']:.2%}</td>" in page
    assert f"<td>{row['sharpe']:.2f}</td>" in page
    assert f"<td>[{row['sharpe_ci_low']:.2f}, {row['sharpe_ci_high']:.2f}]</td>" in page
    assert f"<td>{row['max_drawdown']:.2%}</td>" in page
    assert "<td>0.046</td>" in page  # p-values: 3 decimals
    assert "<td>0.500</td>" in page  # DSR is a probability
    for header in ("CAGR", "Sharpe CI", "Max drawdown", "Hit rate", "Sharpe diff p-value"):
        assert f">{header}</th>" in page


def test_the_interval_header_states_its_coverage() -> None:
    board = pd.DataFrame(
        {"sharpe": [1.0], "sharpe_ci_low": [0.2], "sharpe_ci_high": [1.7]},
        index=pd.Index(["a"], name="strategy"),
    )
    assert ">Sharpe CI</th>" in tables.leaderboard_table(board)  # level unknown
    for level, header in ((0.5, "Sharpe 50% CI"), (0.95, "Sharpe 95% CI"), (0.975, "97.5%")):
        board.attrs["level"] = level
        assert header in tables.leaderboard_table(board)


def test_leaderboard_renders_unknown_columns_and_missing_values() -> None:
    board = pd.DataFrame(
        {"sharpe": [1.0, np.nan], "my_custom_stat": [0.000123456, 2.0], "n_trades": [3, 4]},
        index=pd.Index(["a", "b"], name="strategy"),
    )
    html = tables.leaderboard_table(board)
    assert ">My custom stat</th>" in html
    assert "<td>0.0001235</td>" in html
    assert "<td>\u2014</td>" in html  # NaN
    assert "<td>4</td>" in html


def test_definitions_table(page: str) -> None:
    for key in ("cagr", "sharpe", "max_drawdown"):
        assert escape(DEFINITIONS[key]) in page
    assert escape(DEFINITIONS["sharpe_diff_pvalue"]) in page  # escaped: it holds "<...>"
    assert escape(DEFINITIONS["sharpe_ci_low"]) in page
    assert "no definition supplied" in page  # volatility has none


def test_settings_are_printed_and_escaped(page: str) -> None:
    assert "schedule.rebalance" in page
    assert "costs.per_asset.BBB" in page
    assert "constraints[1].value" in page
    assert "alert(&#x27;settings&#x27;)" in page
    assert "<script>alert" not in page


def test_extra_sections_appended(page: str) -> None:
    assert "<h2>Notes &amp; caveats</h2>" in page
    assert "<p id='extra-probe'>hello</p>" in page
    assert page.index("extra-probe") > page.index('id="settings"')


def test_plotly_inlined_exactly_once(page: str) -> None:
    assert page.count(PLOTLY_MARKER) == 1
    assert page.count("plotly.js v") == 1


def test_offline_nothing_loaded_from_network(page: str) -> None:
    for tag, attrs in start_tags(page):
        assert not (tag == "script" and attrs.get("src")), attrs
        assert tag not in ("link", "iframe", "img", "object", "embed"), (tag, attrs)
    rest = _without_plotly(page)
    assert "http://" not in rest
    assert "https://" not in rest
    assert "@import" not in rest
    assert "url(" not in rest


def test_deterministic(result: BacktestResult, leaderboard: pd.DataFrame) -> None:
    assert render_report(result, leaderboard) == render_report(result, leaderboard)


def test_long_series_are_thinned_to_weekly_points(leaderboard: pd.DataFrame) -> None:
    long = make_result(n_days=2600)
    fig = figures.equity_figure(long)
    assert "one point a week" in fig.caption
    n = len(fig.figure.data[0].y)
    assert 2600 / 5 - 5 < n < 2600 / 5 + 5
    # drawdown keeps each week's trough: the plotted minimum is the true maximum drawdown
    dd = figures.drawdown_figure(long)
    true_mdd = figures.drawdown(long.strategies[NAMES[0]].net_returns).min()
    assert np.min(dd.figure.data[0].y) == pytest.approx(true_mdd)
    short = figures.equity_figure(make_result(n_days=600))
    assert "one point a week" not in short.caption
    assert len(short.figure.data[0].y) == 600


# ---------------------------------------------------------------------------------------------
# writing


def test_write_report(tmp_path: Path, result: BacktestResult, leaderboard: pd.DataFrame) -> None:
    out = write_report(result, leaderboard, tmp_path / "report.html", title="t")
    assert out == tmp_path / "report.html"
    assert out.read_text(encoding="utf-8") == render_report(result, leaderboard, title="t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_failed_render_leaves_nothing(
    tmp_path: Path,
    result: BacktestResult,
    leaderboard: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(tables, "settings_table", boom)
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(result, leaderboard, tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_temp_and_keeps_old_report(
    tmp_path: Path,
    result: BacktestResult,
    leaderboard: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "report.html"
    target.write_text("old report")

    def fail_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(result, leaderboard, target)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert target.read_text() == "old report"


def test_bad_inputs_raise_kabuto_error(
    tmp_path: Path, result: BacktestResult, leaderboard: pd.DataFrame
) -> None:
    with pytest.raises(KabutoError, match="does not exist"):
        write_report(result, leaderboard, tmp_path / "missing" / "report.html")
    with pytest.raises(KabutoError, match="is a directory"):
        write_report(result, leaderboard, tmp_path)
    with pytest.raises(KabutoError, match="no strategies"):
        render_report(BacktestResult(strategies={}), leaderboard)
    with pytest.raises(KabutoError, match="DataFrame"):
        render_report(result, leaderboard.to_dict())  # type: ignore[arg-type]
    with pytest.raises(KabutoError, match=r"extra_sections\[0\]"):
        render_report(result, leaderboard, extra_sections=[("only a heading",)])  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# in a real browser


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    found = shutil.which("chromium")
    if found:
        return Path(found)
    if os.environ.get("KABUTO_REQUIRE_BROWSER") == "1":
        pytest.fail("KABUTO_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
    pytest.skip("chromium is not installed")


def _run_chromium(browser: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(browser), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_report_renders_in_headless_chromium(
    tmp_path: Path, result: BacktestResult, leaderboard: pd.DataFrame
) -> None:
    browser = _chromium()
    path = write_report(
        result, leaderboard, tmp_path / "report.html", metric_definitions=DEFINITIONS
    )
    n_figures = _n_figures(path.read_text(encoding="utf-8"))
    url = path.resolve().as_uri()

    dump = _run_chromium(
        browser, tmp_path / "profile-dom", "--dump-dom", "--virtual-time-budget=15000", url
    )
    dom = dump.stdout
    assert dump.returncode == 0, dump.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    assert f'data-rendered="{n_figures}"' in body.group(0), (body.group(0), dump.stderr[-2000:])
    errors = re.search(r'<pre id="kabuto-js-errors"[^>]*>(.*?)</pre>', dom, re.S)
    assert errors is not None
    assert errors.group(1).strip() == "", errors.group(1)
    assert dom.count('class="main-svg"') >= n_figures

    shot = tmp_path / "shot.png"
    snap = _run_chromium(
        browser,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        "--virtual-time-budget=15000",
        url,
    )
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert shot.exists(), snap.stderr[-2000:]

    from PIL import Image

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels.std() > 20
    colors = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
    assert len(colors) > 50


def test_the_leaderboard_says_what_its_tests_compare_against(result: BacktestResult) -> None:
    from kabuto.evaluation import leaderboard as make_board

    board = make_board(result, n_boot=100)
    text = " ".join(re.sub("<[^>]+>", " ", render_report(result, board)).split())
    bench = board.attrs["benchmark_strategy"]
    assert bench is not None
    assert f"compare each strategy with {escape(bench)}; the {len(board) - 1} p-values" in text
    sr0 = board.attrs["expected_max_sharpe"] * np.sqrt(252)
    assert f"DSR deflates for the {len(board)} strategies tried" in text
    assert f"expected best Sharpe under no skill {sr0:.2f} (annualized)" in text
    plain = make_leaderboard(result)  # a board without attrs: no such sentence
    assert "compare each strategy with" not in render_report(result, plain)


def test_the_dsr_sentence_on_boards_where_it_says_little() -> None:
    from kabuto.evaluation import leaderboard as make_board

    def text(result: BacktestResult) -> str:
        board = make_board(result, n_boot=50)
        return " ".join(re.sub("<[^>]+>", " ", render_report(result, board)).split())

    full = make_result()
    one = replace(full, strategies=dict(list(full.strategies.items())[:1]))
    page = text(one)
    assert "With one strategy tried, the DSR is its PSR" in page
    assert "p-values are not adjusted" not in page and "expected best Sharpe" not in page
    # cash beside one active strategy: one finite Sharpe ratio, so no spread to deflate by
    first = full.strategies[NAMES[0]]
    cash = {
        f"cash{i}": replace(first, name=f"cash{i}", net_returns=first.net_returns * 0.0)
        for i in (1, 2)
    }
    page = text(replace(full, strategies={NAMES[0]: first} | cash))
    assert "The DSR is undefined: of the 3 strategies tried, fewer than two" in page
    assert "under no skill nan" not in page


def test_figures_compound_wealth_as_the_metrics_do() -> None:
    # two losses of 150%: ruin, not a recovery to +27.5% (the leaderboard's MaxDD is -100%)
    r = pd.Series([0.1, -1.5, -1.5, 0.1, 0.0], index=pd.bdate_range("2020-01-01", periods=5))
    assert figures.wealth(r).tolist() == [1.1, 0.0, 0.0, 0.0, 0.0]
    assert figures.drawdown(r).min() == -1.0 and figures.drawdown(r).iloc[-1] == -1.0


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.0, "<0.001"),  # a normal CDF underflows to 0 (and reaches 1.0) at |z| > 8.3
        (0.0004, "<0.001"),
        (0.5, "0.500"),
        (0.9994, "0.999"),
        (0.99979, ">0.999"),
        (1.0, ">0.999"),
    ],
)
def test_probabilities_are_never_printed_as_certainty(x: float, text: str) -> None:
    assert tables.format_value(x, "prob") == text


def test_rolling_sharpe_is_the_sharpe_ratio_of_each_trailing_year() -> None:
    returns = pd.Series(
        np.random.default_rng(8).normal(0.0004, 0.01, 600),
        index=pd.bdate_range("2020-01-01", periods=600),
    )
    rolling = figures.rolling_sharpe(returns)
    assert rolling.index[0] == returns.index[251]  # the first full year
    for end in (251, 400, 599):
        window = returns.iloc[end - 251 : end + 1]
        assert rolling[returns.index[end]] == pytest.approx(sharpe(window), rel=1e-12)
