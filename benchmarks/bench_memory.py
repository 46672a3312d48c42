"""Peak memory of a 500-asset x 5,000-day backtest of five strategies (target: under 2 GB).

    python benchmarks/bench_memory.py

Reports the process's peak resident set size (ru_maxrss, which includes the interpreter, numpy,
torch and skfolio imports) and, separately, the resident size right before the backtest.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import resource  # noqa: E402
import time  # noqa: E402

from kabuto.backtest import WalkForward  # noqa: E402
from kabuto.sim import correlated_gbm  # noqa: E402
from kabuto.strategies import (  # noqa: E402
    EqualRiskContribution,
    EqualWeight,
    HierarchicalRiskParity,
    InverseVolatility,
    MinimumVariance,
)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    panel = correlated_gbm(500, 5000, seed=0)
    strategies = [
        EqualWeight(),
        InverseVolatility(),
        MinimumVariance(),
        HierarchicalRiskParity(),
        EqualRiskContribution(),
    ]
    before = _rss_mib()
    start = time.perf_counter()
    result = WalkForward(rebalance="monthly", costs_bps=10.0).run(panel, strategies)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_rebalances = len(next(iter(result.strategies.values())).target_weights)
    print(f"500 assets x 5,000 days, 5 strategies, {n_rebalances} monthly rebalances each")
    print(f"backtest time     {elapsed:8.2f} s")
    print(f"RSS before run    {before:8.0f} MiB")
    print(f"peak RSS (total)  {peak:8.0f} MiB   target < 2048 MiB")


if __name__ == "__main__":
    main()
