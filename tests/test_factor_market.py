"""The factor market with a planted residual signal, and the oracle that knows its process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kabuto.sim as ks
from kabuto.backtest.engine import WalkForward
from kabuto.data.panel import Window
from kabuto.errors import ConfigError, DataError
from kabuto.evaluation.metrics import ANNUALIZATION, sharpe
from kabuto.evaluation.oracle import oracle_sharpe
from kabuto.sim.factor_market import SCALE_FREE_REVERSION, FactorMarket, factor_market
from kabuto.sim.processes import TRADING_DAYS
from kabuto.strategies.oracle import ResidualOracle


@pytest.fixture(scope="module")
def market() -> FactorMarket:
    return factor_market(seed=3)


# --------------------------------------------------------------------------------------------
# the market


def test_same_seed_same_market_different_seed_different():
    a, b, c = (
        factor_market(20, 300, seed=5),
        factor_market(20, 300, seed=5),
        factor_market(20, 300, seed=6),
    )
    np.testing.assert_array_equal(a.panel.prices, b.panel.prices)
    np.testing.assert_array_equal(a.residual_mean, b.residual_mean)
    np.testing.assert_array_equal(a.loadings, b.loadings)
    assert not np.allclose(a.panel.prices, c.panel.prices)
    assert not np.allclose(a.loadings, c.loadings)


def test_layout_provenance_and_package_export(market):
    n, t = 50, 2520
    assert market.panel.prices.shape == (t, n)
    assert (market.panel.dates == pd.bdate_range("2000-01-03", periods=t)).all()
    assert (market.panel.prices > 0).all()
    for key in ("factor_market(", "reversion=0.035", "reversion_window=5", "seed=3"):
        assert key in market.panel.source
    assert market.loadings.shape == (n, 3) and market.factor_cov.shape == (3, 3)
    assert market.residual_mean.shape == market.residual_var.shape == (t, n)
    assert (market.loadings[:, 0] > 0).all() and abs(market.loadings[:, 0].mean() - 1) < 0.15
    assert (market.residual_var > 0).all()
    assert not market.residual_mean.flags.writeable
    assert ks.factor_market is factor_market and "factor_market" in ks.__all__


def test_returns_are_factors_plus_residuals(market):
    rebuilt = market.factor_returns[1:] @ market.loadings.T + market.residuals[1:]
    np.testing.assert_allclose(market.panel.returns[1:], rebuilt, rtol=0, atol=1e-14)
    assert np.isnan(market.residuals[0]).all() and np.isnan(market.factor_returns[0]).all()


def test_sample_covariance_matches_the_model(market):
    r = market.panel.returns[1:]
    x = r - r.mean(axis=0)
    sample = x.T @ x / (len(x) - 1)
    # Var(e_{t+1}) = E[h_{t+1}] + Var(E[e_{t+1} | F_t]): both averaged over the path
    residual = (market.residual_var[:-1] + market.residual_mean[:-1] ** 2).mean(axis=0)
    b = market.loadings
    model = b @ market.factor_cov @ b.T + np.diag(residual)
    # standard error of each entry from the spread of the products x_i x_j
    se = (x[:, :, None] * x[:, None, :]).std(axis=0) / np.sqrt(len(x))
    z = (sample - model) / se
    assert np.abs(z).max() < 5.0  # 1,275 distinct entries: |z| ~ 3.5 at most by chance
    assert np.sqrt((z**2).mean()) < 2.0  # entries share errors (a factor variance), so loose
    # the residuals carry a meaningful share of the variance (the design: 30-60%)
    share = residual.sum() / np.trace(model)
    assert 0.3 < share < 0.6


def test_residual_mean_row_t_is_about_the_residual_of_t_plus_1(market):
    # An alignment check, not a test of the reversion itself: e_{t+1} = eps_{t+1} + mean_t by
    # construction, with eps_{t+1} independent of mean_t, so the slope is 1 whenever row t of
    # residual_mean belongs to the residual of row t + 1. The kernel is checked against the
    # shocks in test_residual_mean_is_the_kernel_weighted_sum_of_past_shocks.
    x = market.residual_mean[:-1].ravel()  # known at t
    y = market.residuals[1:].ravel()  # realised at t + 1
    slope = (x @ y) / (x @ x)
    u = y - slope * x
    se = np.sqrt((x**2) @ (u**2)) / (x @ x)  # heteroskedasticity-robust
    assert se < 0.05  # the check has power
    assert abs(slope - 1.0) < 4 * se
    # one row late (the mean that already contains eps_{t+1}) is far off: about -5
    late = market.residual_mean[1:].ravel()
    assert (late @ y) / (late @ late) < 0


def _shocks(market: FactorMarket) -> np.ndarray:
    """eps, recovered from the outputs: row k is the shock of date k + 1, of variance var[k]."""
    return market.residuals[1:] - market.residual_mean[:-1]


def test_residual_var_scales_the_shocks(market):
    # shock**2 / var is z**2 whatever the variance process is: this checks that residual_var is
    # the variance that scaled the shock of the next date (scale and alignment), not the GARCH.
    var = market.residual_var[:-1]
    z2 = _shocks(market) ** 2 / var  # chi-square(1) draws, iid, under the model
    assert abs(z2.mean() - 1.0) < 5 * np.sqrt(2.0 / z2.size)
    assert abs((market.residuals[1:] ** 2 / var).mean() - 1.0) < 0.03  # uncentred, as well


def test_residual_var_follows_the_garch_recursion():
    alpha, beta, vol = 0.12, 0.8, 0.3  # not the defaults, so no default is hard-wired
    m = factor_market(garch_alpha=alpha, garch_beta=beta, residual_vol=vol, seed=3)
    h, eps = m.residual_var, _shocks(m)
    # h_{t+1} = omega + alpha eps_t**2 + beta h_t: omega is what is left, a constant per stock
    omega = h[1:] - beta * h[:-1] - alpha * eps**2
    spread = np.abs(omega - omega.mean(axis=0)).max(axis=0)
    assert (spread < 1e-10 * h.mean(axis=0)).all()  # rounding only (about 1e-14)
    assert (omega.mean(axis=0) > 0).all()
    # The level: the median over stocks of sqrt(252 E[h]) is residual_vol. The sample median of
    # 50 log-normal levels (log-sd 0.25) has a log standard error of 1.2533 * 0.25 / sqrt(50) =
    # 0.044 (the default market's level spread by 0.043 over seeds 2-13); allow 4 of them. The
    # spread of the log levels is the dispersion, 0.25 (standard error 0.25 / sqrt(100)).
    level = np.sqrt(TRADING_DAYS * h.mean(axis=0))
    assert abs(np.log(np.median(level) / vol)) < 4 * 1.2533 * 0.25 / np.sqrt(50)
    assert abs(np.log(level).std() - 0.25) < 4 * 0.025
    # It predicts within a stock: on the days when a stock's own variance is in its top fifth,
    # its squared residuals are larger than in its bottom fifth (the ratio is about 2.8; with a
    # constant variance per stock it would be about 1), and both fifths are calibrated.
    var = h[:-1] / h[:-1].mean(axis=0)
    e2 = m.residuals[1:] ** 2
    z2 = eps**2 / h[:-1]
    low, high = np.quantile(var, [0.2, 0.8])
    calm, volatile = var <= low, var >= high
    assert e2[volatile].mean() > 2 * e2[calm].mean()
    for mask in (calm, volatile):
        assert abs(z2[mask].mean() - 1.0) < 5 * np.sqrt(2.0 / mask.sum())


def test_conditional_moments_use_no_data_after_t():
    # Shocks are drawn date by date, so a shorter market is the longer one cut short: the
    # moments at t cannot depend on any shock after t.
    long, short = factor_market(20, 400, seed=9), factor_market(20, 150, seed=9)
    np.testing.assert_array_equal(short.residual_mean, long.residual_mean[:150])
    np.testing.assert_array_equal(short.residual_var, long.residual_var[:150])
    np.testing.assert_array_equal(short.panel.prices, long.panel.prices[:150])
    # ... and they are not stale either: the return into t moves the mean for t + 1
    changed = np.diff(long.residual_mean, axis=0) != 0
    assert changed.mean() > 0.99


@pytest.mark.parametrize(("window", "decay"), [(5, 0.0), (12, 0.5), (7, 1.3)])
def test_residual_mean_is_the_kernel_weighted_sum_of_past_shocks(window, decay):
    kappa = 0.04
    m = factor_market(
        6, 300, reversion=kappa, reversion_window=window, reversion_decay=decay, seed=4
    )
    # eps_{t+1} = e_{t+1} - E[e_{t+1} | F_t]: the shocks, recovered from the outputs
    eps = np.full_like(m.residuals, np.nan)
    eps[1:] = m.residuals[1:] - m.residual_mean[:-1]
    expected = np.full_like(eps, np.nan)
    for t in range(window, len(eps)):
        expected[t] = -kappa * sum(j**-decay * eps[t + 1 - j] for j in range(1, window + 1))
    np.testing.assert_allclose(m.residual_mean[window:], expected[window:], rtol=1e-9, atol=0)
    assert "reversion_decay=" in m.panel.source and m.reversion_decay == decay


def _recovered_kernel(m: FactorMarket) -> np.ndarray:
    """The weights w_j in ``residual_mean_t = -kappa sum_j w_j eps_{t+1-j}``, by least squares."""
    window, eps = m.reversion_window, _shocks(m)  # eps[k] is the shock of date k + 1
    rows = np.arange(window, len(eps))
    lags = np.stack([eps[rows - j] for j in range(1, window + 1)], axis=-1)  # (t, n, W)
    x = lags.reshape(-1, window)
    y = m.residual_mean[rows].reshape(-1)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return -coef / m.reversion


def _block_filter(kernel: np.ndarray, block: int, n_blocks: int) -> np.ndarray:
    """The filter on sums of ``block`` days scaled by ``block**0.5`` (the network's scale)."""
    return kernel[: n_blocks * block].reshape(n_blocks, block).mean(axis=1) * block**0.5


def test_scale_free_kernel_looks_alike_at_every_scale():
    # The market's own kernel, recovered from its outputs: block sums of 1/tau days scaled by
    # tau**0.5 see it as the same filter m**-1/2 on block m, at tau = 1/2 and 1/4.
    m = factor_market(8, 400, seed=2, **SCALE_FREE_REVERSION)
    kernel = _recovered_kernel(m)
    assert len(kernel) == SCALE_FREE_REVERSION["reversion_window"]
    np.testing.assert_allclose(kernel, np.arange(1, len(kernel) + 1) ** -0.5, rtol=1e-8)
    for block in (2, 4):
        # equal up to the discretisation near m = 1
        np.testing.assert_allclose(_block_filter(kernel, block, 30)[4:], kernel[4:30], rtol=0.05)
    # the box over the same window is not scale free: the block filter grows by block**0.5
    box = _recovered_kernel(factor_market(8, 400, seed=2, reversion=0.033, reversion_window=126))
    np.testing.assert_allclose(box, 1.0, rtol=1e-8)
    assert (_block_filter(box, 2, 30) > 1.4 * box[:30]).all()


def test_zero_reversion_means_unpredictable_residuals():
    m = factor_market(20, 200, reversion=0.0, seed=1)
    assert (m.residual_mean == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n_factors": 20}, "n_factors"),
        ({"garch_alpha": 0.5, "garch_beta": 0.6}, "garch_alpha \\+ garch_beta"),
        ({"reversion": -0.1}, "reversion"),
        ({"reversion_window": 0}, "reversion_window"),
        ({"reversion_decay": -0.5}, "reversion_decay"),
        ({"residual_vol": 0.0}, "residual_vol"),
        ({"factor_vols": [0.01, np.nan, 0.01]}, "factor_vols"),
        ({"factor_vols": [0.01, 0.01]}, "one per factor"),
        ({"burn_in": 2, "reversion_window": 5}, "burn_in"),
        ({"residual_vol": 5.0}, "-100%"),
        ({"residual_vol": 30.0}, "100% a day"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        factor_market(20, 300, seed=0, **kwargs)


# --------------------------------------------------------------------------------------------
# the oracle


def test_oracle_book_is_factor_neutral_with_gross_one(market):
    oracle = ResidualOracle(market)
    ts = np.arange(300, 2519, 7)
    batch = market.panel.batch(ts, oracle.lookback)
    book = oracle.allocate_batch(batch)
    assert book.shape == (len(ts), 50)
    np.testing.assert_allclose(book @ market.loadings, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(book).sum(axis=1), 1.0, rtol=1e-12)
    # the book is the projected mean / variance, nothing else
    raw = market.residual_mean[ts] / market.residual_var[ts]
    projected = raw @ market.projection()
    np.testing.assert_allclose(book, projected / np.abs(projected).sum(1, keepdims=True))
    # a single window finds its date by itself (not by its position in the window)
    t = int(ts[5])
    window = market.panel.window(t, oracle.lookback)
    np.testing.assert_allclose(oracle.allocate(window), book[5], rtol=0, atol=1e-15)


def test_oracle_refuses_another_panel(market):
    oracle = ResidualOracle(market, lookback=20)
    other = factor_market(seed=4)  # same dates and asset names, other returns
    with pytest.raises(DataError, match="differ from those of the oracle's panel"):
        oracle.allocate(other.panel.window(100, 20))
    later = factor_market(start="2030-01-01", seed=3)  # same returns, other dates
    with pytest.raises(DataError, match="not in the oracle's panel"):
        oracle.allocate(later.panel.window(100, 20))
    w = market.panel.window(100, 20)
    renamed = Window(w.returns, w.prices, w.dates, tuple(f"x{i}" for i in range(50)))
    with pytest.raises(DataError, match="asset 'x0'"):
        oracle.allocate(renamed)
    with pytest.raises(DataError, match="not a FactorMarket"):
        ResidualOracle(market.panel)


def test_oracle_sharpe_is_clearly_positive_net_of_costs(market):
    net = oracle_sharpe(market, costs_bps=10.0)
    gross = oracle_sharpe(market, costs_bps=0.0)
    assert 1.5 < net < gross
    # weekly rebalancing trades less but lets the 5-day signal go stale
    assert oracle_sharpe(market, costs_bps=0.0, rebalance=5) < gross


def test_oracle_has_no_edge_without_reversion():
    # The canary in reverse. reversion = 0 leaves nothing to trade (mean identically 0, the
    # book all cash); a vanishing reversion keeps the very same book direction, -S / h, while
    # the edge is ~0. If the oracle's moments leaked tomorrow's shock, this book would
    # (anti-)predict tomorrow's residual and show a huge |Sharpe|.
    zero = factor_market(reversion=0.0, seed=8)
    book = ResidualOracle(zero).allocate_batch(zero.panel.batch(np.arange(300, 400), 252))
    assert (book == 0).all()

    market = factor_market(reversion=1e-9, seed=8)
    engine = WalkForward(rebalance=1, retrain=None, costs_bps=0.0, long_only=False)
    result = engine.run(market.panel, [ResidualOracle(market)])
    returns = result.strategies["ResidualOracle"].gross_returns
    assert (returns != 0).all()
    daily = sharpe(returns) / np.sqrt(ANNUALIZATION)
    z = daily / np.sqrt((1 + daily**2 / 2) / len(returns))  # Lo's standard error
    assert abs(z) < 4


def test_provenance_tells_markets_apart_and_numbers_as_text_are_refused():
    # vectors were summarised by their mean and floats rounded to 6 digits: two different
    # markets printed the same line
    a = factor_market(10, 300, seed=1, factor_vols=[0.01, 0.005, 0.005])
    b = factor_market(10, 300, seed=1, factor_vols=[0.005, 0.01, 0.005])
    assert "factor_vols=[0.01, 0.005, 0.005]" in a.panel.source
    assert a.panel.source != b.panel.source
    nudged = factor_market(10, 300, seed=1, reversion=0.0350000004)
    assert nudged.panel.source != factor_market(10, 300, seed=1).panel.source
    # a string reached the arithmetic (a TypeError), or "0" passed as a zero decay
    for name in ("residual_vol", "reversion_decay"):
        with pytest.raises(ConfigError, match=f"{name}='0.2' is not allowed"):
            factor_market(10, 300, seed=1, **{name: "0.2"})
