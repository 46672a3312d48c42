"""Trader-Company and UTC vs the residual oracle on the synthetic factor market.

The Trader-Company issue asks for the net Sharpe ratio on the factor market with a known
optimum (`kabuto.sim.factor_market`, 10 bps costs) as a fraction of the oracle's. Every seed
runs one walk-forward with the oracle (`ResidualOracle`), the Trader-Company strategy with class
defaults (proportional sizing), UTC (mean / variance sizing), Trader-Company on quintiles and
the 5-day residual reversal, on the same dates, rebalancing and costs (`oracle_scores`). Nothing
was tuned on these seeds (the same fresh seeds as the deep residual benchmark).

    python benchmarks/trader_company_vs_oracle.py [--seeds 2001 2002 2003 2004 2005]
        [--n-assets 40] [--n-days 2000] [--rebalance 5] [--retrain yearly]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import time  # noqa: E402

from oracle_scores import print_comparison, print_scores, score_seeds  # noqa: E402

from kabuto.strategies.oracle import ResidualOracle  # noqa: E402
from kabuto.strategies.residual_baselines import ResidualReversal  # noqa: E402
from kabuto.strategies.trader_company import TraderCompanyStrategy  # noqa: E402

EVALUATION_SEEDS = (2001, 2002, 2003, 2004, 2005)


def build(market) -> list:
    return [
        ResidualOracle(market, label="oracle"),
        TraderCompanyStrategy(label="Trader-Company"),
        TraderCompanyStrategy(uncertainty=True, sizing="mean_variance", label="UTC"),
        TraderCompanyStrategy(sizing="quantile", label="TC quintiles"),
        ResidualReversal(label="residual reversal"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(EVALUATION_SEEDS))
    parser.add_argument("--n-assets", type=int, default=40)
    parser.add_argument("--n-days", type=int, default=2000)
    parser.add_argument("--rebalance", type=int, default=5)
    parser.add_argument("--retrain", default="yearly")
    args = parser.parse_args()
    started = time.perf_counter()
    scores = score_seeds(
        args.seeds,
        build,
        n_assets=args.n_assets,
        n_days=args.n_days,
        rebalance=args.rebalance,
        retrain=args.retrain,
    )
    print()
    print(
        f"box factor market: {args.n_assets} assets, {args.n_days} days, seeds {args.seeds}; "
        f"rebalance every {args.rebalance}, retrain {args.retrain}, 10 bps, long-short gross 1"
    )
    print_scores(scores, "oracle")
    print()
    for subject in ("Trader-Company", "UTC"):
        print_comparison(scores, subject, "oracle", target=None)
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
