"""Environment steps per second of kabuto's RL portfolio environments, on one core.

Twenty assets (a synthetic `correlated_gbm` panel of ten years), a 50-day observation window,
252-step episodes with random starts, and uniformly random actions drawn up front (the agent's
time is not the environment's). Measures

* `PortfolioVectorEnv` with 256 copies stepped together in numpy (target: >= 50,000 env steps
  per second on one core),
* gymnasium's `SyncVectorEnv` over 256 `PortfolioEnv` (the standard way to batch a gymnasium
  environment), and
* a single `PortfolioEnv`, stepped in a loop,

for the backtest's proportional costs with the log-return reward and for the exact remainder
factor with the differential Sharpe ratio. Prints the median of several runs, and the vector
environment's rate over each baseline's. Both baselines are kabuto's own scalar environment (the
same observations, rewards and costs: `tests/test_rl_env.py` checks the vector environment
against it); no other library's environment is timed, so the ratios measure vectorising, not a
peer. `SyncVectorEnv` adds its own overhead to the scalar environment: the ratio over the single
environment is the smaller, the one to quote.

    python benchmarks/bench_rl_env.py [--quick]

Timings use one thread for BLAS and, where the OS allows, one pinned core.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from gymnasium.vector import SyncVectorEnv  # noqa: E402

from kabuto.sim import correlated_gbm  # noqa: E402
from kabuto.strategies.rl import PortfolioEnv, PortfolioVectorEnv  # noqa: E402

N_ASSETS, N_DAYS, WINDOW, EPISODE, NUM_ENVS = 20, 2520, 50, 252, 256
TARGET = 50_000
CASES = {
    "proportional + log_return": {"cost_model": "proportional", "reward": "log_return"},
    "exact + differential_sharpe": {"cost_model": "exact", "reward": "differential_sharpe"},
}


def _rate(env, actions: np.ndarray, repeats: int, batched: bool) -> float:
    """Median env steps per second over `repeats` runs of len(actions) calls to step."""
    rates = []
    for r in range(repeats):
        env.reset(seed=r)
        start = time.perf_counter()
        if batched:
            for a in actions:
                env.step(a)
        else:
            for a in actions:
                *_, truncated, _ = env.step(a)
                if truncated:
                    env.reset()
        elapsed = time.perf_counter() - start
        per_call = actions.shape[1] if batched else 1
        rates.append(len(actions) * per_call / elapsed)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and runs")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    vec_steps, sync_steps, single_steps = (50, 10, 1000) if args.quick else (400, 40, 20_000)
    repeats = 3 if args.quick else 7

    panel = correlated_gbm(N_ASSETS, N_DAYS, seed=0)
    rng = np.random.default_rng(0)
    batched = rng.uniform(-1, 1, size=(vec_steps, NUM_ENVS, N_ASSETS + 1)).astype(np.float32)
    single = rng.uniform(-1, 1, size=(single_steps, N_ASSETS + 1)).astype(np.float32)
    settings = {"window": WINDOW, "episode_length": EPISODE, "costs_bps": 10.0}
    print(
        f"{N_ASSETS} assets x {N_DAYS} days, window {WINDOW}, episodes of {EPISODE} steps, "
        f"median of {repeats} runs, one core"
    )
    print(
        f"{'case':30s} {'vector (256)':>14s} {'SyncVectorEnv':>14s} {'single':>10s} "
        "vector / sync, / single"
    )
    for label, case in CASES.items():
        vec = PortfolioVectorEnv(panel, NUM_ENVS, **settings, **case)
        sync = SyncVectorEnv(
            [lambda c=case: PortfolioEnv(panel, **settings, **c) for _ in range(NUM_ENVS)]
        )
        env = PortfolioEnv(panel, **settings, **case)
        v = _rate(vec, batched, repeats, batched=True)
        s = _rate(sync, batched[:sync_steps], repeats, batched=True)
        one = _rate(env, single, repeats, batched=False)
        verdict = "meets" if v >= TARGET else "MISSES"
        print(f"{label:30s} {v:14,.0f} {s:14,.0f} {one:10,.0f} {v / s:5.1f}x, {v / one:5.1f}x")
        print(f"{'':30s} vector env {verdict} the target of {TARGET:,} env steps/s")


if __name__ == "__main__":
    main()
