"""The probability of backtest overfitting by CSCV (Bailey, Borwein, Lopez de Prado, Zhu 2017).

References: a case worked by hand; a direct implementation of the paper's steps (every split's
days concatenated, Sharpe ratios with numpy's std, ranks by scipy's ``rankdata``); the
invariants that pure noise gives 0.5 on average (the in-sample winner's out-of-sample rank is
uniform) and that one strategy with a real edge gives 0; and the leaderboard's number equal
to the function's on the board's net returns.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from kabuto.backtest.result import BacktestResult
from kabuto.errors import ArgumentError
from kabuto.evaluation import leaderboard, probability_of_backtest_overfitting
from kabuto.evaluation.overfitting import noise_level
from kabuto.report.html import overfitting_note

from helpers import fake_backtest_result


def test_a_case_worked_by_hand():
    """Four days in two blocks of two, three strategies. In-sample block 0: A wins (Sharpe
    sqrt(2) against 1/sqrt(2) and 0) and is the worst out of sample (0 against 3/sqrt(2) and
    sqrt(2)): rank 1 of 3, w = 1/4, logit ln(1/3). In-sample block 1: B wins (3/sqrt(2)) and
    is the median out of sample (1/sqrt(2) between sqrt(2) and 0): w = 2/4, logit 0, which
    counts as overfit. PBO = 2/2."""
    returns = np.array(
        [
            [0.01, 0.00, -0.01],
            [0.03, 0.02, 0.01],
            [-0.01, 0.02, 0.01],
            [0.01, 0.04, 0.03],
        ]
    )
    result = probability_of_backtest_overfitting(returns, n_blocks=2)
    np.testing.assert_allclose(result.logits, [math.log(1 / 3), 0.0], atol=1e-12)
    assert result.pbo == 1.0
    assert (result.n_blocks, result.days_used, result.n_strategies) == (2, 4, 3)
    # make A win out of sample too: its in-sample win now generalises (rank 3 of 3)
    returns[2:, 0] = [0.05, 0.07]
    dominant = probability_of_backtest_overfitting(returns, n_blocks=2)
    np.testing.assert_allclose(dominant.logits, [math.log(3), math.log(3)], atol=1e-12)
    assert dominant.pbo == 0.0


def _direct_sharpe(days: np.ndarray) -> np.ndarray:
    """Sharpe ratio of each column; a column of one value gives +-inf, or 0 for zeros."""
    sharpe = []
    for column in days.T:
        if np.all(column == column[0]):
            sharpe.append(0.0 if column[0] == 0 else math.copysign(math.inf, column[0]))
        else:
            sharpe.append(column.mean() / column.std(ddof=1))
    return np.array(sharpe)


def _direct_logits(returns: np.ndarray, s: int) -> np.ndarray:
    """The paper's steps written out: blocks, splits, concatenated days, ranks."""
    block = returns.shape[0] // s
    kept = returns[returns.shape[0] - s * block :]
    blocks = [kept[k * block : (k + 1) * block] for k in range(s)]
    logits = []
    for chosen in itertools.combinations(range(s), s // 2):
        train = np.concatenate([blocks[k] for k in chosen])
        test = np.concatenate([blocks[k] for k in range(s) if k not in chosen])
        sharpe_train, sharpe_test = _direct_sharpe(train), _direct_sharpe(test)
        best = int(np.argmax(sharpe_train))
        w = rankdata(sharpe_test)[best] / (returns.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    return np.array(logits)


@pytest.mark.parametrize(("days", "n", "s"), [(64, 5, 8), (101, 4, 6), (40, 2, 2)])
def test_logits_match_the_steps_of_the_paper_written_out(days, n, s):
    rng = np.random.default_rng(days)
    returns = rng.normal(0.0003, 0.01, (days, n)) + 1.0  # far from 0: the centring matters
    returns -= 1.0
    result = probability_of_backtest_overfitting(returns, n_blocks=s)
    expected = _direct_logits(returns, s)
    np.testing.assert_allclose(result.logits, expected, rtol=1e-9, atol=1e-12)
    assert result.pbo == np.mean(expected <= 0)
    assert len(result.logits) == math.comb(s, s // 2)


def test_strategies_in_cash_or_constant_for_half_the_days_rank_as_documented():
    """Days in cash (returns exactly 0) or at one constant return make some halves flat: their
    Sharpe is 0 or +-inf, not what rounding would leave of a zero variance."""
    for seed in range(20):  # rounding left of a zero variance ranked wrongly in a few seeds
        returns = np.random.default_rng(seed).normal(0.0003, 0.01, (480, 5))
        returns[:240, 0] = 0.0  # in cash for the first half of the blocks
        returns[240:, 1] = 0.0  # in cash for the second half
        returns[::2, 2] = 0.0  # in cash every other day: never flat
        returns[:120, 3] = 1.2345e-4  # a constant return for the first quarter
        result = probability_of_backtest_overfitting(returns, n_blocks=8)
        np.testing.assert_allclose(result.logits, _direct_logits(returns, 8), rtol=1e-9)


@pytest.mark.parametrize("factor", [1e-160, 1e160, -1.0])
def test_a_strategy_scaled_by_any_factor_ranks_alike(factor):
    """A Sharpe ratio does not change when returns are scaled (a negative factor flips the
    strategy, and its rank): at 1e-160 or 1e160 the squares would under- or overflow."""
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0002, 0.01, (120, 4))
    scaled = returns * np.array([factor, 1.0, 1.0, 1.0])
    expected = returns.copy()
    expected[:, 0] *= np.sign(factor)
    np.testing.assert_allclose(
        probability_of_backtest_overfitting(scaled, 6).logits,
        _direct_logits(expected, 6),
        rtol=1e-9,
    )


def test_the_oldest_leftover_days_are_left_out():
    rng = np.random.default_rng(7)
    returns = rng.normal(0, 0.01, (37, 3))
    result = probability_of_backtest_overfitting(returns, n_blocks=4)
    assert result.days_used == 36
    returns[0] = [5.0, -5.0, 0.0]  # the one day left out
    np.testing.assert_array_equal(
        probability_of_backtest_overfitting(returns, n_blocks=4).logits, result.logits
    )


@pytest.mark.parametrize("n", [10, 3])
def test_noise_overfits_at_the_noise_level_and_a_real_edge_never(n):
    """N strategies of pure noise: the in-sample winner's out-of-sample rank is uniform on
    1..N, and a rank at or below the median counts, so the PBO is 0.5 on average for even N
    and (N + 1) / (2 N) for odd N (one draw's splits share their days, so single PBOs spread
    widely: the mean over 40 draws is checked, within 4 of its standard errors). With a daily
    edge of 0.5% (Sharpe about 8 a year) one strategy wins in and out of sample."""
    assert noise_level(n) == {10: 0.5, 3: 2 / 3}[n]
    pbos = []
    for seed in range(40):
        noise = np.random.default_rng(seed).normal(0, 0.01, (400, n))
        pbos.append(probability_of_backtest_overfitting(noise, n_blocks=8).pbo)
        if seed < 5:
            noise[:, 1] += 0.005
            assert probability_of_backtest_overfitting(noise, n_blocks=8).pbo == 0.0
    error = np.std(pbos, ddof=1) / math.sqrt(len(pbos))
    assert abs(np.mean(pbos) - noise_level(n)) < 4 * error
    assert 0.02 < error < 0.1  # the spread is real: no single draw is the answer


def test_constant_strategies_rank_instead_of_failing():
    """Cash (zero returns) has Sharpe 0 and a constant positive return +inf, in every split."""
    rng = np.random.default_rng(1)
    returns = np.column_stack([np.zeros(200), np.full(200, 1e-4), rng.normal(0.0, 0.01, 200)])
    result = probability_of_backtest_overfitting(returns, n_blocks=4)
    assert result.pbo == 0.0  # the constant winner stays the best: rank 3 of 3
    np.testing.assert_allclose(result.logits, math.log(3))


def test_a_dataframe_gives_the_same_as_its_values():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(0, 0.01, (80, 3)), columns=["a", "b", "a"])  # repeated
    by_frame = probability_of_backtest_overfitting(frame, n_blocks=4)
    np.testing.assert_array_equal(
        by_frame.logits, probability_of_backtest_overfitting(frame.to_numpy(), 4).logits
    )


@pytest.mark.parametrize(
    ("returns", "blocks", "needle"),
    [
        (np.zeros((40, 1)), 4, "1 strategy column(s); PBO needs at least two"),
        (np.zeros((40, 3)), 3, "n_blocks=3 is not allowed; use an even integer from 2 to 20"),
        (np.zeros((40, 3)), 22, "n_blocks=22 is not allowed"),
        (np.zeros((40, 3)), True, "n_blocks=True is not allowed"),
        (np.zeros((40, 3)), 4.0, "n_blocks=4.0 is not allowed"),
        (np.zeros((7, 3)), 4, "7 days of returns are too few for n_blocks=4"),
        (np.full((40, 3), np.nan), 4, "NaN or infinite"),
        (np.zeros(40), 4, "2-D numeric array"),
        (np.array([["a", "b"]] * 8), 2, "2-D numeric array"),
        (np.ones((8, 2), dtype=complex), 2, "2-D numeric array"),
    ],
)
def test_bad_input_is_an_argument_error_naming_the_fix(returns, blocks, needle):
    with pytest.raises(ArgumentError) as raised:
        probability_of_backtest_overfitting(returns, n_blocks=blocks)
    assert needle in str(raised.value)


def test_the_leaderboard_reports_the_pbo_of_its_strategies(tmp_path):
    result = fake_backtest_result()
    board = leaderboard(result, n_boot=100)
    net = np.column_stack([result[n].net_returns.to_numpy() for n in result.names])
    expected = probability_of_backtest_overfitting(net, n_blocks=16)
    assert board.attrs["pbo"] == expected.pbo and board.attrs["pbo_blocks"] == 16
    note = overfitting_note(board)
    assert note.startswith(f"PBO {expected.pbo:.2f}: in {expected.pbo:.0%} of 12,870 splits")
    assert (
        "at or below the median of the 4 on the other; a ranking that is pure noise gives 0.50"
        in note
    )
    assert board.attrs["pbo_strategies"] == 4
    assert overfitting_note(board.head(2)) == note  # a filtered board keeps its statistics
    # metrics.json keeps it among the board's statistics
    assert json.loads(json.dumps(board.attrs))["pbo"] == expected.pbo


def test_a_short_or_single_strategy_board_uses_fewer_blocks_or_none():
    full = fake_backtest_result()
    short = BacktestResult(
        {n: _head(full[n], 22) for n in full.names}, full.benchmark_returns.iloc[:22]
    )
    board = leaderboard(short, n_boot=100)
    assert board.attrs["pbo_blocks"] == 10  # 2 days a block, 22 // 4 * 2
    single = BacktestResult({"Momentum": full["Momentum"]}, full.benchmark_returns)
    lone = leaderboard(single, n_boot=100)
    assert np.isnan(lone.attrs["pbo"]) and lone.attrs["pbo_blocks"] is None
    assert overfitting_note(lone) == ""


def _head(strategy, days: int):
    from dataclasses import fields, replace

    series = {
        f.name: getattr(strategy, f.name).iloc[:days]
        for f in fields(strategy)
        if isinstance(getattr(strategy, f.name), pd.Series)
    }
    return replace(strategy, **series)
