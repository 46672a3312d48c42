"""Deep BSDE prices and delta hedges of basket options in the KANHedge setting.

Handal and Hirano (2026), "KANHedge" (arXiv 2601.11097): ten correlated assets
(`KANHEDGE_SETTING`: S0 = K = 10, volatility 0.1, pairwise correlation 0.3, r = 1%, T = 1),
here on N = 50 steps, solved by `kabuto.hedging.bsde.DeepBSDE` on one torch thread:

1. Geometric basket call, with MLP and with KAN Z-networks: y0 against the closed form 0.27659
   (target: within 0.1%), the training time, and the hedge: the BSDE's deltas run through the
   P&L engine (`kabuto.hedging.bsde_hedging`) on fresh paths with proportional costs 0 and 1e-3,
   next to the exact delta hedge on the same paths. For each: the mean and standard deviation
   of the hedging error ``y0 + gains - costs - e^{-rT} g`` and the CVaR-95 of the loss (the
   mean of the worst 5% of ``-error``), all in money of time 0 like the price.
2. Arithmetic basket call (MLP): y0 against control-variate Monte Carlo (10^6 paths).
3. American arithmetic basket put by the penalty method: y0 against Longstaff-Schwartz on the
   same 50 exercise dates (mean of 3 runs of 10^5 paths) and the European put, with the
   backward solver `kabuto.hedging.bsde_backward.BackwardDeepBSDE` (its defaults) and with the
   forward `DeepBSDE` (MLP). The penalty scheme itself converges to the Bermudan price
   (tests/test_bsde_options.py); the backward solver solves it, while the forward recursion
   overstates the early-exercise premium (see the docstring of `AmericanBasketPutProblem`).

The forward DeepBSDE settings were tuned on seeds 100-102; the reported seeds (default 0, 1,
2) were not used for them. The backward solver runs with its defaults, which come from a
prototype run on seeds 0-2 and one fix to Z's scale made after seed 0 (README). Every run
prints y0, the relative error, the wall time and the CPU time of the process
(``time.process_time()``; on a shared machine wall time can exceed the one thread's CPU time).

    python benchmarks/bsde_options.py [--seeds 0 1 2] [--parts geometric arithmetic american]
        [--hedge-paths 20000]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import statistics
import time

import torch

from kabuto.hedging.bsde import DeepBSDE
from kabuto.hedging.bsde_backward import BackwardDeepBSDE
from kabuto.hedging.bsde_hedging import (
    BSDEHedgeResult,
    bsde_delta_hedge,
    exact_delta_hedge,
    hedge_paths,
)
from kabuto.hedging.bsde_problems import (
    KANHEDGE_SETTING,
    AmericanBasketPutProblem,
    ArithmeticBasketProblem,
    BSDEProblem,
    GeometricBasketProblem,
)

N_STEPS = 50
COSTS = (0.0, 1e-3)
TARGET = 0.001  # largest relative error of y0 on the geometric call
PENALTY = 100.0
COMMON = {"shared": True, "linear_skip": True, "learning_rate": 0.01}
SETTINGS = {
    "mlp": {**COMMON, "iterations": 1200, "batch_size": 256, "final_learning_rate": 3e-5},
    "kan": {
        **COMMON,
        "z_network": "kan",
        "hidden_sizes": (10,),
        "kan_grid_size": 5,
        "kan_spline_order": 3,
        "iterations": 1500,
        "batch_size": 256,
        "final_learning_rate": 3e-5,
    },
}
HEDGE_SEED = 10_000  # fresh paths: the solvers train on generators seeded 0, 1, 2


def fit(problem: BSDEProblem, network: str, seed: int) -> tuple[DeepBSDE, float, float]:
    solver = DeepBSDE(seed=seed, num_threads=1, **SETTINGS[network])
    wall, cpu = time.perf_counter(), time.process_time()
    solver.fit(problem)
    return solver, time.perf_counter() - wall, time.process_time() - cpu


def hedge_line(name: str, result: BSDEHedgeResult) -> str:
    error = result.error
    return (
        f"{name:>22}: mean {float(error.mean()):+.5f}  std {float(error.std()):.5f}  "
        f"CVaR-95 {result.cvar(0.95):.5f}  mean cost {float(result.hedge.costs.mean()):.5f}"
    )


def geometric(seeds: list[int], n_hedge: int) -> None:
    problem = GeometricBasketProblem(**KANHEDGE_SETTING, n_steps=N_STEPS)
    reference = problem.reference
    print(f"\n== Geometric basket call: {problem}\n   closed form {reference:.6f}")
    prices = hedge_paths(problem, n_hedge, seed=HEDGE_SEED)
    print(f"   hedges on {n_hedge} fresh paths (seed {HEDGE_SEED}), costs {COSTS}; exact delta:")
    for cost in COSTS:
        print(hedge_line(f"exact, cost {cost:g}", exact_delta_hedge(problem, prices, cost)))
    for network in ("mlp", "kan"):
        print(f"  {network.upper()} settings {SETTINGS[network]}")
        errors, cpus = [], []
        cvars: dict[float, list[float]] = {cost: [] for cost in COSTS}
        for seed in seeds:
            solver, wall, cpu = fit(problem, network, seed)
            error = solver.y0_ / reference - 1
            errors.append(error)
            cpus.append(cpu)
            print(
                f"  seed {seed}: y0 {solver.y0_:.6f}  rel. error {100 * error:+.3f}%  "
                f"wall {wall:.1f} s  cpu {cpu:.1f} s",
                flush=True,
            )
            for cost in COSTS:
                result = bsde_delta_hedge(solver, prices, cost)
                cvars[cost].append(result.cvar(0.95))
                print(hedge_line(f"{network} delta, cost {cost:g}", result), flush=True)
        worst = max(abs(e) for e in errors)
        verdict = "meets" if worst <= TARGET else "MISSES"
        print(
            f"  {network.upper()}: largest |error| {100 * worst:.3f}% ({verdict} the "
            f"{100 * TARGET:.1f}% target over {len(seeds)} seeds); median cpu "
            f"{statistics.median(cpus):.1f} s; mean CVaR-95 "
            + ", ".join(f"cost {c:g}: {statistics.mean(v):.5f}" for c, v in cvars.items())
        )


def arithmetic(seeds: list[int]) -> None:
    problem = ArithmeticBasketProblem(**KANHEDGE_SETTING, n_steps=N_STEPS)
    start = time.perf_counter()
    reference = problem.monte_carlo_price(n_paths=1_000_000, seed=0)
    print(
        f"\n== Arithmetic basket call: {problem}\n   control-variate Monte Carlo (10^6 paths, "
        f"{time.perf_counter() - start:.1f} s): {reference.price:.6f} +- "
        f"{reference.std_error:.6f}; MLP settings {SETTINGS['mlp']}"
    )
    for seed in seeds:
        solver, wall, cpu = fit(problem, "mlp", seed)
        print(
            f"  seed {seed}: y0 {solver.y0_:.6f}  rel. error "
            f"{100 * (solver.y0_ / reference.price - 1):+.3f}%  wall {wall:.1f} s  cpu {cpu:.1f} s",
            flush=True,
        )


def american(seeds: list[int]) -> None:
    problem = AmericanBasketPutProblem(**KANHEDGE_SETTING, n_steps=N_STEPS, penalty=PENALTY)
    start = time.perf_counter()
    runs = [problem.longstaff_schwartz_price(n_paths=100_000, seed=k) for k in range(3)]
    lsm = statistics.mean(run.price for run in runs)
    lsm_error = statistics.mean(run.std_error for run in runs) / 3**0.5
    european = problem.european_price(n_paths=1_000_000, seed=0)
    print(
        f"\n== American arithmetic basket put (penalty): {problem}\n   Longstaff-Schwartz "
        f"(3 x 10^5 paths, {N_STEPS} dates): {lsm:.5f} +- {lsm_error:.5f} (runs "
        + ", ".join(f"{run.price:.5f}" for run in runs)
        + f"); European put {european.price:.5f} +- {european.std_error:.5f} "
        f"({time.perf_counter() - start:.1f} s); MLP settings {SETTINGS['mlp']}"
    )
    for name in ("backward", "forward"):
        for seed in seeds:
            if name == "forward":
                solver, wall, cpu = fit(problem, "mlp", seed)
            else:
                wall, cpu = time.perf_counter(), time.process_time()
                solver = BackwardDeepBSDE(seed=seed, num_threads=1).fit(problem)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            premium = (solver.y0_ - european.price) / (lsm - european.price)
            print(
                f"  {name:<8} seed {seed}: y0 {solver.y0_:.5f}  rel. error vs LS "
                f"{100 * (solver.y0_ / lsm - 1):+.2f}%  early-exercise premium {premium:.2f} x "
                f"LS's  wall {wall:.1f} s  cpu {cpu:.1f} s",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("geometric", "arithmetic", "american"),
        default=["geometric", "arithmetic", "american"],
    )
    parser.add_argument("--hedge-paths", type=int, default=20_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread, seeds {args.seeds}, "
        f"N = {N_STEPS} steps, KANHedge setting {KANHEDGE_SETTING}"
    )
    start = time.perf_counter()
    if "geometric" in args.parts:
        geometric(args.seeds, args.hedge_paths)
    if "arithmetic" in args.parts:
        arithmetic(args.seeds)
    if "american" in args.parts:
        american(args.seeds)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
