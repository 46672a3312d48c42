"""The hedging report's risk table: a hedger is bolded only when it is best beyond its noise;
several trainings are each reported, with the spread of their prices.

Reference: the rule written out (a price below every other by more than 2 combined standard
errors, sqrt(se_a^2 + se_b^2)) on hand-made tables, and the rendered table of a tiny run; the
spread recomputed from the table.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from kabuto.experiment.hedge import run_hedge
from kabuto.experiment.hedge_config import parse_hedge_config
from kabuto.report.hedging import (
    best_hedger,
    hedger_label,
    loss_figure,
    pnl_figures,
    render_report,
    spread_note,
)

torch.set_num_threads(1)


def _table(prices: list[float], errors: list[float]) -> pd.DataFrame:
    names = ["deep", "delta", "no_hedge"][: len(prices)]
    return pd.DataFrame({"price": prices, "price_se": errors}, index=names)


@pytest.mark.parametrize(
    ("prices", "errors", "best"),
    [
        ([1.0, 1.5, 2.0], [0.05, 0.05, 0.05], "deep"),  # 0.5 apart, 2 s.e. = 0.14
        ([1.5, 1.0, 2.0], [0.05, 0.05, 0.05], "delta"),
        ([1.0, 1.1, 2.0], [0.05, 0.05, 0.05], None),  # the runner-up is within noise
        ([1.0, 1.99], [0.3, 0.4], None),  # 2 combined s.e. = 1.0
        ([1.0, 2.01], [0.3, 0.4], "deep"),
        ([1.0, 2.0], [0.0, float("nan")], None),  # an unknown error proves nothing
        ([1.0], [0.01], None),  # nothing to beat
    ],
)
def test_best_hedger_needs_a_lead_of_two_combined_standard_errors(prices, errors, best):
    assert best_hedger(_table(prices, errors)) == best


def test_a_training_is_not_the_rival_of_another_training_of_the_same_hedger():
    """Three trainings within noise of each other and well below the baselines: the lowest is
    best (its sibling trainings are not what it is tested against), but only if every training
    beats the baselines (the lowest of several is the luckiest seed); a baseline that wins must
    still beat every training."""
    names = ["deep", "deep_2", "deep_3", "delta", "no_hedge"]
    errors = [0.05] * 5
    trainings = names[:3]
    table = pd.DataFrame({"price": [1.01, 1.0, 1.02, 1.5, 2.0], "price_se": errors}, names)
    assert best_hedger(table) is None  # the siblings within noise hid the lead
    assert best_hedger(table, trainings) == "deep_2"
    table["price"] = [1.0, 1.01, 1.3, 1.2, 2.0]
    assert best_hedger(table, trainings) is None  # deep_3 loses to delta: deep was lucky
    table["price"] = [1.0, 1.01, 1.05, 1.2, 2.0]
    assert best_hedger(table, trainings) == "deep"  # each 0.15 or more below delta (2 s.e. 0.14)
    table.loc["deep_3", "price_se"] = float("nan")  # a training without an error proves nothing
    assert best_hedger(table, trainings) is None
    table.loc["deep_3", "price_se"] = 0.05
    table["price"] = [1.5, 1.05, 1.6, 1.0, 2.0]  # delta wins, but deep_2 is within noise
    assert best_hedger(table, trainings) is None
    table["price"] = [1.5, 1.2, 1.6, 1.0, 2.0]
    assert best_hedger(table, trainings) == "delta"
    assert best_hedger(table.loc[trainings], trainings) is None  # no rival at all


@pytest.fixture(scope="module")
def run():
    return _run(trainings=1)


def _run(trainings: int):
    config = parse_hedge_config(
        {
            "hedger": {
                "train_steps": 5,
                "batch_paths": 100,
                "hidden_sizes": [8],
                "num_threads": 1,
                "trainings": trainings,
            },
            "evaluation": {"paths": 300, "seed": 3, "baselines": ["delta", "no_hedge"]},
        }
    )
    return run_hedge(config, None)


def test_several_trainings_are_each_shown_with_their_spread():
    run = _run(trainings=3)
    names = ["deep", "deep_2", "deep_3"]
    assert [hedger_label(n, run) for n in names] == [f"deep hedger (band) #{k}" for k in (1, 2, 3)]
    assert hedger_label("delta", run) == "Black-Scholes delta"
    prices = run.risk_table.loc[names, "price"]
    note = spread_note(run)
    assert f"s.d. {np.std(prices, ddof=1):.2g}" in note and "3 trainings" in note
    assert f"from {prices.min():.6f} to {prices.max():.6f}" in note
    page = render_report(run)
    for k in (1, 2, 3):
        assert f"deep hedger (band) #{k}</th>" in page  # a row of the risk table each
    seeds = ", ".join(str(hedger.seed) for hedger in run.hedgers.values())
    assert f"3: seeds {seeds} (hedger.seed, then seeds derived from it)" in page  # reproducible
    html = _section(run, [1.01, 1.0, 1.02, 1.5, 2.0], [0.05] * 5)
    assert html.count('class="best"') == 1
    assert "and so is every other training of the deep hedger" in html
    for name in ("deep_3", "delta"):  # VaR and ES carry their standard errors
        row = run.risk_table.loc[name]
        assert f'{row["var_0.9"]:.6f}<span class="se"> \u00b1 {row["var_0.9_se"]:.1g}' in page
        # 300 paths leave 3 beyond the 0.99 level: too few for a standard error
        assert np.isnan(row["es_0.99_se"]) and np.isnan(row["var_0.99_se"])
        assert f'{row["es_0.99"]:.6f}<span class="se"> \u00b1 n/a</span>' in page
    assert "n/a with fewer than 10 paths in the tail" in page
    # the loss of every training is drawn; the P&L histograms keep to the first training
    drawn = {trace.legendgroup for trace in loss_figure(run).figure.data if trace.legendgroup}
    assert drawn == set(names)
    histogram = {trace.name for trace in pnl_figures(run)[0].figure.data}
    assert histogram == {"deep hedger (band) #1", "Black-Scholes delta", "no hedge"}
    single = _run(trainings=1)
    assert hedger_label("deep", single) == "deep hedger (band)"
    assert "is one training (seed 0)" in spread_note(single)


def _section(run, prices: list[float], errors: list[float]) -> str:
    """The risk section of the report of `run` with these prices and standard errors."""
    table = run.risk_table.copy()
    table["price"], table["price_se"] = prices, errors
    page = render_report(replace(run, risk_table=table))
    start = page.index('<section id="risk">')
    return page[start : page.index("</section>", start)]


def test_risk_table_bolds_a_clear_winner_and_says_why(run):
    html = _section(run, [1.0, 1.5, 2.0], [0.05, 0.05, 0.05])
    assert html.count('class="best"') == 1
    assert html.index('class="best"') < html.index("Black-Scholes delta")  # the deep row
    assert "below every other hedger&#x27;s by more than 2 combined standard errors" in html
    assert "the test is conservative" in html


def test_risk_table_bolds_nothing_within_noise(run):
    html = _section(run, [1.0, 1.1, 2.0], [0.05, 0.05, 0.05])
    assert 'class="best"' not in html
    assert "no hedger is best beyond 2 standard errors" in html
    assert "the test is conservative" in html
