"""The deep BSDE solver on the three 100-dimensional examples of Han, Jentzen and E (2018).

Han, Jentzen and E, "Solving high-dimensional partial differential equations using deep
learning", PNAS 115(34), 2018: the HJB equation (u(0, 0) = 4.5901), the Allen-Cahn equation
(u(0, 0) = 0.052802) and Black-Scholes with default risk (u(0, x0) = 57.300), at the paper's
sizes (d = 100; N = 20, 20, 40 steps), each solved with `kabuto.hedging.bsde.DeepBSDE` on one
torch thread for several seeds. For every run it prints y0, the reference, the relative error,
the wall time and the CPU time of the process (``time.process_time()``; the machine may be
shared, so wall time can exceed the CPU time of the one thread), then per problem the median
and largest error and the median times, against the targets of the project's issue: HJB within
0.2% in at most 25 s of CPU time on one thread, Allen-Cahn within 0.3%, default risk within
0.5%. These are absolute targets the issue set, not a comparison with a peer: no peer library
for deep BSDE is installed in this environment, so no other solver runs here and no speed ratio
is printed; the errors are against the published references below.

Settings ("tuned", tuned on seeds 100-102, which the default seeds 0-4 exclude): batch 64 (the
paper's), Adam from 0.01 decaying geometrically, ``shared=True, linear_skip=True`` (one network
of (x, t) for all steps with a linear shortcut, see `DeepBSDE`), 1000 iterations; the learning
rate decays to 1e-3 (HJB, default risk) or 1e-4 (Allen-Cahn). ``--paper`` also runs the paper's
architecture (one network per step, no shortcut) with the same iterations and schedule, for
comparison. ``--backward`` also runs the backward solver `kabuto.hedging.bsde_backward.
BackwardDeepBSDE` (Huré, Pham and Warin 2020; one network of (U, Z) per step, trained from
maturity back to today) with `BACKWARD` (16,384 paths, batches of 1,024, 1,000 Adam steps for
the first step trained and for today, 150 for the others; chosen after three trials on HJB with
seeds 0 and 1).

The HJB reference is also recomputed two independent ways: Monte Carlo of the Cole-Hopf formula
(`hjb_reference`, 10^6 samples) and, since ``|sqrt(2) W_1|^2 / 2`` is chi-square with d degrees
of freedom, one-dimensional quadrature of ``-ln E[2 / (1 + 2 chi2_d)]``.

    python benchmarks/bench_deep_bsde.py [--seeds 0 1 2 3 4] [--problems hjb allen-cahn
        default-risk] [--paper] [--backward]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import math
import statistics
import time
from dataclasses import dataclass

import torch
from scipy import integrate, stats

from kabuto.hedging.bsde import BSDESolution, DeepBSDE
from kabuto.hedging.bsde_backward import BackwardDeepBSDE
from kabuto.hedging.bsde_problems import (
    AllenCahnProblem,
    BSDEProblem,
    DefaultRiskProblem,
    HJBProblem,
    hjb_reference,
)


@dataclass(frozen=True)
class Case:
    problem: BSDEProblem
    target: float  # largest relative error allowed
    time_limit: float | None  # seconds, or None
    settings: dict


TUNED = {"iterations": 1000, "batch_size": 64, "learning_rate": 0.01}
CASES = {
    "hjb": Case(HJBProblem(), 0.002, 25.0, {**TUNED, "final_learning_rate": 1e-3}),
    "allen-cahn": Case(AllenCahnProblem(), 0.003, None, {**TUNED, "final_learning_rate": 1e-4}),
    "default-risk": Case(DefaultRiskProblem(), 0.005, None, {**TUNED, "final_learning_rate": 1e-3}),
}
ARCHITECTURES = {
    "tuned": {"shared": True, "linear_skip": True},
    "paper": {"shared": False, "linear_skip": False},
}
BACKWARD = {"paths": 16_384, "batch_size": 1024, "first_iterations": 1000, "iterations": 150}


def solver_for(case: Case, architecture: str, seed: int) -> tuple[BSDESolution, dict]:
    """The solver of one run and its settings: `DeepBSDE` or, for "backward", the other."""
    if architecture == "backward":
        return BackwardDeepBSDE(seed=seed, num_threads=1, **BACKWARD), BACKWARD
    settings = {**case.settings, **ARCHITECTURES[architecture]}
    return DeepBSDE(seed=seed, num_threads=1, **settings), settings


def check_hjb_reference() -> None:
    problem = HJBProblem()
    start = time.perf_counter()
    monte_carlo = hjb_reference(problem, n_samples=1_000_000, seed=0)
    elapsed = time.perf_counter() - start
    d = problem.dim
    mean, _ = integrate.quad(
        lambda s: 2 / (1 + 2 * s) * stats.chi2.pdf(s, d), 0, math.inf, limit=200
    )
    print(
        f"HJB reference: paper {problem.reference}; Cole-Hopf Monte Carlo (10^6 samples, "
        f"{elapsed:.1f} s) {monte_carlo:.5f}; chi-square quadrature {-math.log(mean):.5f}"
    )


def run(name: str, case: Case, architecture: str, seeds: list[int]) -> None:
    settings = solver_for(case, architecture, 0)[1]
    reference = case.problem.reference
    assert reference is not None
    print(
        f"\n{name} ({architecture}): {type(case.problem).__name__} d={case.problem.dim} "
        f"N={case.problem.n_steps}, reference {reference}, settings {settings}"
    )
    errors, walls, cpus = [], [], []
    for seed in seeds:
        solver = solver_for(case, architecture, seed)[0]
        wall, cpu = time.perf_counter(), time.process_time()
        solver.fit(case.problem)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        error = solver.y0_ / reference - 1
        errors.append(error)
        walls.append(wall)
        cpus.append(cpu)
        print(
            f"  seed {seed}: y0 {solver.y0_:.6g}  rel. error {100 * error:+.3f}%  "
            f"wall {wall:.1f} s  cpu {cpu:.1f} s  final loss {solver.losses_[-1]:.3g}",
            flush=True,
        )
    worst = max(abs(e) for e in errors)
    verdict = "meets" if worst <= case.target else "MISSES"
    line = (
        f"  median |error| {100 * statistics.median(abs(e) for e in errors):.3f}%, largest "
        f"{100 * worst:.3f}% ({verdict} the {100 * case.target:.1f}% target); median wall "
        f"{statistics.median(walls):.1f} s, cpu {statistics.median(cpus):.1f} s"
    )
    if case.time_limit is not None:
        fast = "meets" if statistics.median(cpus) <= case.time_limit else "MISSES"
        line += (
            f" ({fast} the issue's absolute target of {case.time_limit:.0f} s cpu time on one "
            "thread; no peer to compare with)"
        )
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--problems", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--paper", action="store_true", help="also run the paper's architecture")
    parser.add_argument("--backward", action="store_true", help="also run BackwardDeepBSDE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, seeds {args.seeds}")
    if "hjb" in args.problems:
        check_hjb_reference()
    for name in args.problems:
        architectures = ["tuned", *(["paper"] if args.paper else [])]
        for architecture in architectures + (["backward"] if args.backward else []):
            run(name, CASES[name], architecture, args.seeds)


if __name__ == "__main__":
    main()
