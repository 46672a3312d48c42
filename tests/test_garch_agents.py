"""The noise / fundamental / AI trader market (Nakagawa et al. 2024) against independent checks.

References: the paper's analytic GARCH mapping at its parameters (alpha 0.590, beta 0.147,
omega 2.98, as recomputed from the formulas), a Monte Carlo estimate of E[g(x)^2], a plain
Python loop of the recursion, and GARCH(1,1) fits by the `arch` package (Sheppard).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from kabuto.errors import ConfigError
from kabuto.sim.artificial.garch_agents import GarchMarket, analytic_garch, simulate_garch_market


def test_analytic_mapping_at_the_papers_parameters():
    omega, alpha, beta = analytic_garch(GarchMarket())
    assert alpha == pytest.approx(2.56 * 0.16 * 1.44, rel=1e-12)  # 0.590
    assert beta == pytest.approx(2.56 * 0.04 * 1.44, rel=1e-12)  # 0.147
    x = np.random.default_rng(0).standard_normal(2_000_000)
    g2 = np.mean(np.log1p(np.maximum(-0.99, x)) ** 2)
    assert omega == pytest.approx(2.56 * (1 + 0.04 * g2 + 0.16 * 0.01), rel=2e-3)  # 2.98
    # alpha depends only on the AI share, beta only on the fundamental share
    assert analytic_garch(GarchMarket(fundamental_share=0.3))[1] == pytest.approx(alpha)
    assert analytic_garch(GarchMarket(ai_share=0.1))[2] == pytest.approx(beta)


def test_recursion_equals_a_plain_loop():
    market = GarchMarket(fundamental_share=0.25, ai_share=0.3)
    path = simulate_garch_market(market, 200, seed=3, burn_in=10)
    rng = np.random.default_rng(3)
    news, shocks = rng.standard_normal(210), rng.standard_normal(210)
    sigma, shock, x, returns = 4 * 0.4, 0.0, 0.0, []
    for t in range(210):
        demand = 0.25 * (math.log(1 + max(-0.99, x)) - 1.2 * sigma) + 0.3 * (
            0.1 * x - 1.2 * abs(shock)
        )
        sigma = 4 * 0.4 * abs(1 + demand)
        shock = sigma * shocks[t]
        returns.append(4 * demand + shock)
        x = news[t]
    np.testing.assert_allclose(path["returns"], returns[10:], rtol=1e-12)
    np.testing.assert_allclose(path["sigma"], np.abs(1 + path["demand"]) * 1.6, rtol=1e-12)


def test_fitted_arch_term_grows_with_the_ai_share():
    arch = pytest.importorskip("arch")

    def fitted_alpha(p2: float) -> float:
        alphas = []
        for seed in range(4):
            r = simulate_garch_market(GarchMarket(ai_share=p2), 5000, seed=seed)["returns"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = arch.arch_model(r, vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
            alphas.append(res.params["alpha[1]"])
        return float(np.median(alphas))

    # Measured (50 seeds x 10,000 periods, benchmarks/garch_microfoundations.py): 0.05, 0.07,
    # 0.17 at p2 = 0, 0.2, 0.4, against the mapping's 0, 0.15, 0.59.
    low, mid, high = fitted_alpha(0.0), fitted_alpha(0.2), fitted_alpha(0.4)
    assert low < mid < high
    assert high > 2 * low


def test_volatility_clusters_and_tails_are_fat():
    r = np.concatenate(
        [simulate_garch_market(GarchMarket(), 2000, seed=s)["returns"] for s in range(10)]
    )
    sq = r**2
    assert np.corrcoef(sq[:-1], sq[1:])[0, 1] > 0.1
    assert ((r - r.mean()) ** 4).mean() / r.var() ** 2 > 4


def test_bad_shares_and_explosions_raise():
    with pytest.raises(ConfigError, match="shares must be in"):
        GarchMarket(fundamental_share=0.7, ai_share=0.5)
    # NaN passed every comparison, and the run then blamed volatility feedback
    for name in ("ai_forecast", "impact", "fundamental_aversion"):
        with pytest.raises(ConfigError, match=f"{name} = nan: must be a finite number"):
            GarchMarket(**{name: float("nan")})
    for settings, match in (
        ({"n_periods": 10.5}, r"n_periods = 10\.5"),
        ({"n_periods": 10, "burn_in": -1}, "burn_in = -1"),
        ({"n_periods": 10, "seed": -1}, "seed = -1"),
    ):
        with pytest.raises(ConfigError, match=match):
            simulate_garch_market(GarchMarket(), **settings)
    with pytest.raises(ConfigError, match="explodes"):
        simulate_garch_market(GarchMarket(fundamental_share=0.6, ai_share=0.4), 5000, seed=0)
