"""Adversarial deep hedging against hedgers trained on GBM and on Heston, on held-out markets.

The issue: report the robust hedger (Hirano, Minami and Imajo 2023, `AdversarialHedger`)
against hedgers trained on GBM and on Heston paths, on held-out paths. Setting (pfhedge's
standard): a short European call, S0 = K = 1, 20 daily rebalances to T = 20/250, proportional
cost 1e-4 (unwinding included), band policy (kabuto's default), risk = expected shortfall
(CVaR) at level 0.9, i.e. the mean of the worst 10% of hedged P&Ls; every cell is the
indifference price (the risk of the hedged short call, larger is worse).

Hedgers, each trained with 200 Adam steps of 2,000 fresh paths (see `DeepHedger`'s Notes) and
for several training seeds:

* ``GBM-trained``: `DeepHedger` on zero-drift GBM, sigma 0.2;
* ``Heston-trained``: `DeepHedger` on Heston with Buehler et al.'s parameters (kappa 1, theta
  0.04, xi 2, rho -0.7, v0 0.04: long-run volatility 0.2, so they fit the setting as they are);
* ``adversarial s``: `AdversarialHedger` with the same GBM paths as reference data (the
  generator's base returns), strength ``s`` (multipliers of the reference returns within
  ``exp(+-s)``) and ``vol_bound`` 0 (the generated paths keep the reference's realized
  volatility: the adversary moves volatility around, it cannot add any), one generator step
  after every hedger step; s = 0.3 (the class default) and s = 1.0;
* ``BS delta``: the Black-Scholes delta at sigma 0.2 (no training).

Every hedger is told the constant volatility 0.2 and nothing else about the market (no latent
variance, not even for the Heston-trained one): the setting of the paper, where the hedger
knows prices only. Test markets, 100,000 fresh paths each (other seeds than training):

* ``GBM``: sigma 0.2;
* ``Heston``: the parameters above;
* ``Merton``: jump diffusion, diffusive sigma 0.15, 10 jumps a year with log size N(-0.02,
  0.04^2) (total volatility about 0.21), compensated to a martingale;
* ``S&P 500``: real 20-day windows of the bundled S&P 500 index (daily simple returns
  1990-2022, `bootstrap_paths` with block 20, so each path is one historical window),
  demeaned so that the price is a martingale like the others (the index's drift would
  otherwise reward holding more stock); realized volatility about 0.18;
* ``adversary``: paths of each seed's trained generator (of the first strength, 0.3) on
  fresh GBM base returns: the adversarial hedger's training distribution.

Cells: mean over training seeds +- their standard deviation, and in brackets the Monte Carlo
standard error of one cell (batch means over 20 batches of the test paths). A second table
gives each hedger minus the GBM-trained one on the same test paths (paired), mean over seeds
+- standard deviation.

    python benchmarks/adversarial_hedging.py [--seeds 3] [--steps 200] [--batch 2000]
        [--eval-paths 100000] [--strengths 0.3 1.0] [--vol-bound 0.0] [--quick]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kabuto.data import load_sp500  # noqa: E402
from kabuto.hedging import (  # noqa: E402
    BlackScholesDelta,
    DeepHedger,
    HedgePolicy,
    expected_shortfall,
    hedge_with,
)
from kabuto.hedging.adversarial import AdversarialHedger, realized_volatility  # noqa: E402
from kabuto.sim.paths import bootstrap_paths, gbm_paths, heston_paths, merton_paths  # noqa: E402

SPOT = STRIKE = 1.0
SIGMA = 0.2
MATURITY, STEPS = 20 / 250, 20
COST = 1e-4
LEVEL = 0.9
HESTON = dict(v0=0.04, kappa=1.0, theta=0.04, xi=2.0, rho=-0.7)
MERTON = dict(volatility=0.15, jump_intensity=10.0, jump_mean=-0.02, jump_std=0.04)
MC_BATCHES = 20
MARKETS = ("GBM", "Heston", "Merton", "S&P 500", "adversary")


def gbm(n: int, seed: int) -> torch.Tensor:
    return gbm_paths(n, STEPS, MATURITY, SPOT, 0.0, SIGMA, seed=seed)[..., 0]


def heston(n: int, seed: int) -> torch.Tensor:
    return heston_paths(n, STEPS, MATURITY, SPOT, **HESTON, seed=seed)[0]


def merton(n: int, seed: int) -> torch.Tensor:
    return merton_paths(n, STEPS, MATURITY, SPOT, 0.0, **MERTON, seed=seed)


def sp500_returns() -> np.ndarray:
    returns = load_sp500().benchmark_returns().dropna().to_numpy()
    return returns - returns.mean()


def risk(pnl: torch.Tensor) -> float:
    return float(expected_shortfall(pnl, LEVEL))


def batch_se(pnl: torch.Tensor, other: torch.Tensor | None = None) -> float:
    """Batch-means standard error of the risk (or of the paired difference to `other`)."""
    values = []
    for i, chunk in enumerate(pnl.chunk(MC_BATCHES)):
        value = risk(chunk)
        if other is not None:
            value -= risk(other.chunk(MC_BATCHES)[i])
        values.append(value)
    return statistics.stdev(values) / math.sqrt(len(values))


def train(
    seed: int, args: argparse.Namespace
) -> tuple[dict[str, HedgePolicy], list[AdversarialHedger], dict[str, float]]:
    """The hedgers' policies by row name, the adversarial hedgers and training times (s)."""
    n = args.steps * args.batch
    common = dict(
        strike=STRIKE,
        maturity=MATURITY,
        risk="cvar",
        risk_level=LEVEL,
        cost=COST,
        epochs=1,
        batch_size=args.batch,
        seed=seed,
        num_threads=1,
    )
    reference = gbm(n, 10_000 + seed)
    jobs = {
        "GBM-trained": (DeepHedger(**common), reference),
        "Heston-trained": (DeepHedger(**common), heston(n, 20_000 + seed)),
    }
    for strength in args.strengths:
        hedger = AdversarialHedger(**common, strength=strength, vol_bound=args.vol_bound)
        jobs[adversarial_row(strength)] = (hedger, reference)
    policies: dict[str, HedgePolicy] = {"BS delta": BlackScholesDelta()}
    times = {}
    for name, (hedger, paths) in jobs.items():
        start = time.perf_counter()
        policies[name] = hedger.fit(paths, volatility=SIGMA).policy_
        times[name] = time.perf_counter() - start
    adversarial = [h for h, _ in jobs.values() if isinstance(h, AdversarialHedger)]
    return policies, adversarial, times


def adversarial_row(strength: float) -> str:
    return f"adversarial {strength:g}"


def evaluate(
    policies: dict[str, HedgePolicy], markets: dict[str, torch.Tensor]
) -> dict[str, dict[str, torch.Tensor]]:
    """P&L per hedger and market."""
    pnls: dict[str, dict[str, torch.Tensor]] = {}
    for name, policy in policies.items():
        pnls[name] = {
            market: hedge_with(
                policy, paths, strike=STRIKE, maturity=MATURITY, volatility=SIGMA, cost=COST
            ).pnl
            for market, paths in markets.items()
        }
    return pnls


def cell(values: list[float], se: float, digits: int = 5) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ±{spread:.{digits}f} [{se:.{digits}f}]"


def print_table(title: str, rows: dict[str, dict[str, str]]) -> None:
    width = max(len(v) for r in rows.values() for v in r.values())
    print(f"\n{title}")
    print(f"{'':16s}" + "".join(f"{m:>{width + 2}s}" for m in MARKETS))
    for name, row in rows.items():
        print(f"{name:16s}" + "".join(f"{row[m]:>{width + 2}s}" for m in MARKETS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..seeds-1")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps per hedger")
    parser.add_argument("--batch", type=int, default=2000, help="fresh paths per step")
    parser.add_argument("--eval-paths", type=int, default=100_000)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.3, 1.0])
    parser.add_argument("--vol-bound", type=float, default=0.0)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 40 steps, 20k paths")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.eval_paths = 2, 40, 20_000
    torch.set_num_threads(1)
    wall = time.perf_counter()
    hedgers = ["BS delta", "GBM-trained", "Heston-trained"]
    hedgers += [adversarial_row(s) for s in args.strengths]

    m = args.eval_paths
    sp500 = sp500_returns()
    markets = {
        "GBM": gbm(m, 1),
        "Heston": heston(m, 2),
        "Merton": merton(m, 3),
        "S&P 500": bootstrap_paths(sp500, m, STEPS, block=STEPS, seed=4)[..., 0],
    }
    dt = MATURITY / STEPS
    print(
        f"setting: S0 = K = {SPOT:g}, sigma {SIGMA}, {STEPS} steps to T = {MATURITY:g}, cost "
        f"{COST:g}, CVaR level {LEVEL}, band policy; {args.steps} Adam steps x {args.batch} "
        f"fresh paths per hedger; adversary strengths {args.strengths}, vol_bound "
        f"{args.vol_bound}; {args.seeds} training seeds; {m} test paths per market"
    )
    vols = {k: float(realized_volatility(torch.log(p).diff(dim=1), dt)) for k, p in markets.items()}
    print(
        "realized volatility of the test markets: "
        + ", ".join(f"{k} {v:.3f}" for k, v in vols.items())
    )

    risks = {h: {mk: [] for mk in MARKETS} for h in hedgers}
    diffs = {h: {mk: [] for mk in MARKETS} for h in hedgers}
    ses = {h: {mk: [] for mk in MARKETS} for h in hedgers}
    diff_ses = {h: {mk: [] for mk in MARKETS} for h in hedgers}
    for seed in range(args.seeds):
        policies, adversarial, times = train(seed, args)
        # The "adversary" market: the first adversarial hedger's own generator.
        seed_markets = dict(markets, adversary=adversarial[0].generate(gbm(m, 5), seed=6))
        print(f"seed {seed}: training s " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
        for hedger in adversarial:
            g = hedger.generator_losses_
            generated = torch.log(hedger.generate(gbm(m, 5), seed=6)).diff(dim=1)
            print(
                f"  strength {hedger.strength:g}: generator's risk {g[0]:.5f} (round 1) -> "
                f"{g[-1]:.5f} (round {len(g)}); vol ratio in "
                f"[{min(hedger.vol_ratios_):.4f}, {max(hedger.vol_ratios_):.4f}]; its paths' "
                f"realized vol {float(realized_volatility(generated, dt)):.3f}"
            )
        pnls = evaluate(policies, seed_markets)
        for name in hedgers:
            for market in MARKETS:
                pnl, base = pnls[name][market], pnls["GBM-trained"][market]
                risks[name][market].append(risk(pnl))
                diffs[name][market].append(risk(pnl) - risk(base))
                ses[name][market].append(batch_se(pnl))
                diff_ses[name][market].append(batch_se(pnl, base))

    print_table(
        f"CVaR {LEVEL} of the hedged short call (price): mean over {args.seeds} training seeds "
        "±sd over seeds [MC standard error]",
        {
            h: {mk: cell(risks[h][mk], statistics.fmean(ses[h][mk])) for mk in MARKETS}
            for h in hedgers
        },
    )
    print_table(
        "minus the GBM-trained hedger on the same paths (negative = better): mean ±sd over seeds "
        "[paired MC standard error]",
        {
            h: {mk: cell(diffs[h][mk], statistics.fmean(diff_ses[h][mk])) for mk in MARKETS}
            for h in hedgers
            if h != "GBM-trained"
        },
    )
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s (one torch thread)")


if __name__ == "__main__":
    main()
