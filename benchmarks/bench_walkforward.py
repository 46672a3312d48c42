"""kabuto vs skfolio: walk-forward minimum variance and HRP on the same folds, in one process.

skfolio runs `cross_val_predict` with `WalkForward(train_size=252, test_size=21)`; kabuto runs
its backtest with a 252-day lookback rebalancing every 21 trading days, which decides on exactly
the same training windows. Prints wall times (median of several runs), the speed ratio and the
largest absolute weight difference over all folds.

    python benchmarks/bench_walkforward.py [--quick]

skfolio's Clarabel tolerances are tightened (as in the tests) so that both libraries solve the
same problem to the same precision: with its defaults skfolio's minimum-variance weights sit up
to ~1e-3 away from the exact optimum. With fewer returns than assets (the 500-asset case) the
sample covariance is singular: skfolio replaces it by the nearest positive definite matrix,
kabuto solves the singular problem exactly, so weights there differ slightly by construction.

Timings use one thread for BLAS and torch; the machines are shared, so medians are quoted.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skfolio.model_selection import WalkForward as SkfolioWalkForward  # noqa: E402
from skfolio.model_selection import cross_val_predict  # noqa: E402
from skfolio.optimization import HierarchicalRiskParity as SkfolioHRP  # noqa: E402
from skfolio.optimization import MeanRisk  # noqa: E402

from kabuto.backtest import WalkForward  # noqa: E402
from kabuto.data import Panel, load_sp500  # noqa: E402
from kabuto.sim import correlated_gbm  # noqa: E402
from kabuto.strategies import HierarchicalRiskParity, MinimumVariance  # noqa: E402

LOOKBACK, STEP = 252, 21
TIGHT = {"tol_gap_abs": 1e-14, "tol_gap_rel": 1e-14, "tol_feas": 1e-14, "tol_ktratio": 1e-12}


def _median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def compare(panel: Panel, label: str, repeats_kabuto: int, repeats_skfolio: int) -> list[dict]:
    returns = panel.returns_frame().iloc[1:]
    rows = []
    cases = [
        ("min variance", MinimumVariance(lookback=LOOKBACK), MeanRisk(solver_params=TIGHT)),
        ("HRP", HierarchicalRiskParity(lookback=LOOKBACK), SkfolioHRP()),
    ]
    for name, ours, theirs in cases:
        engine = WalkForward(rebalance=STEP, retrain=None, costs_bps=10.0)
        t_ours, result = _median_time(lambda: engine.run(panel, [ours]), repeats_kabuto)  # noqa: B023
        cv = SkfolioWalkForward(train_size=LOOKBACK, test_size=STEP)
        t_theirs, predicted = _median_time(
            lambda: cross_val_predict(theirs, returns, cv=cv),  # noqa: B023
            repeats_skfolio,
        )
        theirs_w = np.array([p.weights for p in predicted.portfolios])
        ours_w = result[ours.name].target_weights.to_numpy()[: len(theirs_w)]
        rows.append(
            {
                "case": f"{label}: {name}",
                "folds": len(theirs_w),
                "skfolio_s": t_theirs,
                "kabuto_s": t_ours,
                "speedup": t_theirs / t_ours,
                "max_abs_weight_diff": float(np.abs(ours_w - theirs_w).max()),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="bundled data only, one repeat")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # skfolio warns on every singular covariance and every tight-tolerance solve; said above.
    warnings.filterwarnings("ignore", category=UserWarning, module="skfolio")

    rows = compare(
        load_sp500(), "20 bundled assets", 1 if args.quick else 7, 1 if args.quick else 3
    )
    if not args.quick:
        synthetic = correlated_gbm(500, 2000, seed=0)  # 1,999 returns: 83 folds
        rows += compare(synthetic, "500 GBM assets x 2,000 days", 5, 1)

    header = (
        f"{'case':<44}{'folds':>6}{'skfolio s':>11}{'kabuto s':>10}{'speedup':>9}{'max |dw|':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:<44}{r['folds']:>6}{r['skfolio_s']:>11.3f}{r['kabuto_s']:>10.4f}"
            f"{r['speedup']:>8.0f}x{r['max_abs_weight_diff']:>10.1e}"
        )


if __name__ == "__main__":
    main()
