"""Parity of kabuto's classical strategies with skfolio on windows of the bundled S&P 500 data.

skfolio solves the convex problems with Clarabel (interior point); its tolerances are tightened
here, and kabuto's solutions are additionally checked to be at least as good as skfolio's on
skfolio's own objective (the remaining weight differences, about 1e-6, are skfolio's).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kabuto.data import Panel
from kabuto.strategies import (
    EqualRiskContribution,
    HierarchicalRiskParity,
    InverseVolatility,
    MaximumSharpe,
    MaximumSortino,
    MeanVariance,
    MinimumVariance,
)

skfolio = pytest.importorskip("skfolio")
from skfolio.measures import RiskMeasure  # noqa: E402
from skfolio.moments import LedoitWolf  # noqa: E402
from skfolio.optimization import (  # noqa: E402
    HierarchicalRiskParity as SkHRP,
)
from skfolio.optimization import (  # noqa: E402
    InverseVolatility as SkInverseVolatility,
)
from skfolio.optimization import (  # noqa: E402
    MeanRisk,
    ObjectiveFunction,
    RiskBudgeting,
)
from skfolio.prior import EmpiricalPrior  # noqa: E402

LOOKBACK = 252
# Spread over 1991-2022, quiet and crisis regimes.
DATES = [300, 1200, 2300, 3000, 4300, 4700, 5300, 6000, 7000, 7500, 8300]
WEIGHT_TOL = 1e-4  # the contract; the achieved differences are about 1e-6
SOLVER = {
    "tol_gap_abs": 1e-14,
    "tol_gap_rel": 1e-14,
    "tol_feas": 1e-14,
    "tol_ktratio": 1e-12,
    "max_iter": 2000,
}


@pytest.fixture(scope="module")
def panel() -> Panel:
    from skfolio.datasets import load_sp500_dataset

    return Panel(load_sp500_dataset(), source="bundled S&P 500 (skfolio)")


@pytest.fixture(scope="module")
def windows(panel):
    return [panel.window(t, LOOKBACK).returns for t in DATES]


@pytest.fixture(scope="module")
def batch(panel):
    return panel.batch(DATES, LOOKBACK)


def skfolio_weights(estimator, windows) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.stack([estimator.fit(r).weights_ for r in windows])


def semideviation(r: np.ndarray, w: np.ndarray) -> float:
    p = r @ w
    return float(np.sqrt(np.sum(np.minimum(p - p.mean(), 0) ** 2) / (len(p) - 1)))


def test_min_variance(batch, windows):
    ours = MinimumVariance().allocate_batch(batch)
    theirs = skfolio_weights(MeanRisk(solver_params=SOLVER), windows)
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)
    for r, a, b in zip(windows, ours, theirs, strict=True):
        cov = np.cov(r, rowvar=False)
        assert a @ cov @ a <= b @ cov @ b * (1 + 1e-12)


def test_min_variance_ledoit_wolf(batch, windows):
    ours = MinimumVariance(covariance="ledoit_wolf").allocate_batch(batch)
    prior = EmpiricalPrior(covariance_estimator=LedoitWolf())
    theirs = skfolio_weights(MeanRisk(prior_estimator=prior, solver_params=SOLVER), windows)
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)


def test_max_sharpe(batch, windows):
    ours = MaximumSharpe().allocate_batch(batch)
    theirs = skfolio_weights(
        MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO, solver_params=SOLVER),
        windows,
    )
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)
    for r, a, b in zip(windows, ours, theirs, strict=True):
        mu, cov = r.mean(axis=0), np.cov(r, rowvar=False)
        assert mu @ a / np.sqrt(a @ cov @ a) >= mu @ b / np.sqrt(b @ cov @ b) - 1e-12


def test_max_sharpe_ledoit_wolf(batch, windows):
    ours = MaximumSharpe(covariance="ledoit_wolf").allocate_batch(batch)
    theirs = skfolio_weights(
        MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
            prior_estimator=ledoit_wolf_prior(),
            solver_params=SOLVER,
        ),
        windows,
    )
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)


def test_max_sortino(batch, windows):
    ours = MaximumSortino().allocate_batch(batch)
    theirs = skfolio_weights(
        MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
            risk_measure=RiskMeasure.SEMI_DEVIATION,
            solver_params=SOLVER,
        ),
        windows,
    )
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)
    for r, a, b in zip(windows, ours, theirs, strict=True):
        mu = r.mean(axis=0)
        assert mu @ a / semideviation(r, a) >= mu @ b / semideviation(r, b) - 1e-12


def ledoit_wolf_prior() -> EmpiricalPrior:
    return EmpiricalPrior(covariance_estimator=LedoitWolf())


@pytest.mark.parametrize(
    ("gamma", "covariance"), [(6.0, "ledoit_wolf"), (6.0, "sample"), (0.5, "ledoit_wolf")]
)
def test_mean_variance(batch, windows, gamma, covariance):
    # skfolio maximises mu'w - k w'Sigma w, so k = gamma / 2
    ours = MeanVariance(risk_aversion=gamma, covariance=covariance).allocate_batch(batch)
    prior = ledoit_wolf_prior() if covariance == "ledoit_wolf" else EmpiricalPrior()
    theirs = skfolio_weights(
        MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
            risk_aversion=gamma / 2,
            prior_estimator=prior,
            solver_params=SOLVER,
        ),
        windows,
    )
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)


def test_equal_risk_contribution(batch, windows):
    ours = EqualRiskContribution().allocate_batch(batch)
    theirs = skfolio_weights(
        RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, solver_params=SOLVER), windows
    )
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)
    for r, a, b in zip(windows, ours, theirs, strict=True):
        cov = np.cov(r, rowvar=False)
        spread = [np.ptp(w * (cov @ w)) / (w @ cov @ w) for w in (a, b)]
        assert spread[0] <= 1e-13 and spread[0] <= spread[1]


def test_equal_risk_contribution_ledoit_wolf(batch, windows):
    ours = EqualRiskContribution(covariance="ledoit_wolf").allocate_batch(batch)
    theirs = skfolio_weights(
        RiskBudgeting(
            risk_measure=RiskMeasure.VARIANCE,
            prior_estimator=ledoit_wolf_prior(),
            solver_params=SOLVER,
        ),
        windows,
    )
    np.testing.assert_allclose(ours, theirs, atol=WEIGHT_TOL)


def test_hierarchical_risk_parity(panel):
    dates = list(range(LOOKBACK, panel.n_dates, 257))  # 32 windows: orderings must agree
    ours = HierarchicalRiskParity().allocate_batch(panel.batch(dates, LOOKBACK))
    theirs = skfolio_weights(SkHRP(), [panel.window(t, LOOKBACK).returns for t in dates])
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_hierarchical_risk_parity_ledoit_wolf(batch, windows):
    ours = HierarchicalRiskParity(covariance="ledoit_wolf").allocate_batch(batch)
    theirs = skfolio_weights(
        SkHRP(prior_estimator=EmpiricalPrior(covariance_estimator=LedoitWolf())), windows
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_hierarchical_risk_parity_other_seriations(batch, windows):
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.seriation import HierarchicalSeriation

    plain = SkHRP(seriation_estimator=HierarchicalSeriation(optimal_ordering=False))
    np.testing.assert_allclose(
        HierarchicalRiskParity(optimal_ordering=False).allocate_batch(batch),
        skfolio_weights(plain, windows),
        atol=1e-12,
    )
    clustering = HierarchicalClustering(linkage_method=LinkageMethod.AVERAGE)
    average = SkHRP(
        seriation_estimator=HierarchicalSeriation(hierarchical_clustering_estimator=clustering)
    )
    np.testing.assert_allclose(
        HierarchicalRiskParity(linkage="average").allocate_batch(batch),
        skfolio_weights(average, windows),
        atol=1e-12,
    )


def test_inverse_volatility(batch, windows):
    ours = InverseVolatility().allocate_batch(batch)
    np.testing.assert_allclose(ours, skfolio_weights(SkInverseVolatility(), windows), atol=1e-14)
