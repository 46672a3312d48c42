"""Deep hedging on artificial order-book market paths (Hirano 2024, arXiv 2404.09462).

Hirano trains deep hedgers on the prices of an agent-based market (FCN agents trading through a
continuous double auction) instead of Brownian motion or Heston paths and compares the hedges
(entropic risk and CVaR, with and without costs). This benchmark asks the matching question on
kabuto's calibrated market: on held-out paths of that market, how does a deep hedger trained on
its paths compare with one trained on GBM at the same (realised) volatility, with the
Black-Scholes delta at that volatility, and with no hedge?

Setting (printed again at run time):

* Market: ``examples/artificial_market.toml``, bars of 50 steps (its calibration). Paths are
  non-overlapping 20-bar windows of runs (`kabuto.sim.market_paths`), rescaled to S0 = 1.
  Two guards against the market's broken runs (about one in 400: a bubble from 300 to 7.7e13
  within 5 steps of the open, e.g. run 93 of seed 1, or a crash to one tick that takes ~15,000
  steps to climb back, e.g. run 39 of seed 102), either of which dominates every tail
  statistic of a set: closes start at step 2600, the first continuous step (100) plus a
  burn-in of 2500 steps (50 bars, the chartists' longest time window), and runs whose close
  strays from the fundamental by more than a factor e^0.5 (``max_fundamental_gap=0.5``;
  ordinary runs stay within 0.13 in log) are dropped and replaced by the next seeds. The
  results are therefore conditional on the market staying in its regime; the dropped runs
  are counted in the output.
* Claim: a short at-the-money European call, K = S0 = 1, T = 20 bars, rebalanced every bar
  (the 20 dates of Buehler et al. and pfhedge's standard example). Time convention: 252 bars
  a year, so T = 20/252 and sigma is the annualised bar volatility; only sigma sqrt(T), the
  window's return sd, enters any hedge.
* Hedgers: ``DH artificial`` (`DeepHedger`, band policy, trained on artificial-market
  windows of other seeds than the test), ``DH GBM`` (the same, trained on zero-drift GBM at
  the training windows' realised sigma), ``BS delta`` at that sigma, ``no hedge``. The deep
  hedgers minimise the risk measure they are scored with (as in the paper): one hedger per
  (risk, cost, training seed). Both see the same number of paths and Adam steps.
* Risk: entropic risk ``(1/a) log E exp(-a X)`` with aversion a = 100 and CVaR (expected
  shortfall) at 0.9 of the hedged P&L X; the number is the indifference price of the short
  call. The aversion is scaled to this market: the unhedged P&L has sd about 0.005, so a = 1
  (pfhedge's default, for sigma sqrt(T) about 0.06) would make the entropic risk the mean
  payoff plus a variance term of about 1e-5, blind to hedging; a = 100 puts a * sd near 0.5.
* Costs: proportional, 0, 1e-4 and 1e-3 of traded value, unwinding at T included. With sigma
  sqrt(T) about 0.0085 the ATM gamma is large (a delta hedge trades 2-3 units over the 20
  bars), so 1e-3 is a heavy cost here (of the order of the option price).

Cells: mean over training seeds +- sd over seeds [Monte Carlo standard error of one cell, by
batch means over 20 contiguous batches of the test paths; the paths are ordered by run, so the
batches are (nearly) whole runs, which keeps the dependence of windows of one run inside a
batch]. The second table is the paired difference DH artificial minus DH GBM on the same test
paths. Prices are in units of S0 (x 1e-3 in the tables).

Caveat: the artificial prices need not be martingales (the calibrated market trends at lags of
5-20 bars), so a hedger trained on them can earn from the trend as well as hedge; the numbers
are risks of the hedged short call, not indifference prices net of the pure-trading value.

    python benchmarks/hedge_artificial_market.py [--seeds 3] [--train-paths 10000]
        [--test-paths 20000] [--epochs 20] [--batch 1000] [--quick]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from kabuto.hedging import (  # noqa: E402
    BlackScholesDelta,
    DeepHedger,
    entropic_risk,
    expected_shortfall,
    hedge_with,
)
from kabuto.hedging.payoffs import european  # noqa: E402
from kabuto.sim.artificial import load_simulation  # noqa: E402
from kabuto.sim.market_paths import MarketPaths, artificial_market_paths  # noqa: E402
from kabuto.sim.paths import gbm_paths  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "artificial_market.toml"
BAR = 50
START_STEP = 100 + 2500
MAX_GAP = 0.5
STEPS = 20
BARS_PER_YEAR = 252.0
SPOT = STRIKE = 1.0
AVERSION = 100.0
LEVEL = 0.9
COSTS = (0.0, 1e-4, 1e-3)
RISKS = ("entropic", "cvar")
HEDGERS = ("DH artificial", "DH GBM", "BS delta", "no hedge")
MC_BATCHES = 20
TEST_SEED = 1
SCALE = 1e3  # table units: 1e-3 of S0


def risk_of(name: str, pnl: torch.Tensor) -> float:
    if name == "entropic":
        return float(entropic_risk(pnl, AVERSION))
    return float(expected_shortfall(pnl, LEVEL))


def batch_se(name: str, pnl: torch.Tensor, other: torch.Tensor | None = None) -> float:
    """Batch-means standard error of the risk (or of the paired difference to `other`)."""
    values = []
    for i, chunk in enumerate(pnl.chunk(MC_BATCHES)):
        value = risk_of(name, chunk)
        if other is not None:
            value -= risk_of(name, other.chunk(MC_BATCHES)[i])
        values.append(value)
    return statistics.stdev(values) / math.sqrt(len(values))


def market(config, n: int, seed: int) -> MarketPaths:
    return artificial_market_paths(
        config,
        n,
        STEPS,
        bar=BAR,
        spot=SPOT,
        start_step=START_STEP,
        bars_per_year=BARS_PER_YEAR,
        max_fundamental_gap=MAX_GAP,
        seed=seed,
    )


def describe(name: str, paths: MarketPaths) -> str:
    r = torch.log(paths.prices.double()).diff(dim=1)
    z = (r - r.mean()) / r.std()
    acf1 = float((z[:, 1:] * z[:, :-1]).mean())
    kurt = float(z.pow(4).mean()) - 3.0
    return (
        f"{name}: {paths.n_paths} windows from {paths.runs} runs ({paths.windows_per_run} a run; "
        f"{len(paths.dropped_seeds)} runs dropped), "
        f"sigma {paths.sigma:.4f} (bar sd {paths.sigma / math.sqrt(BARS_PER_YEAR):.5f}), "
        f"mean bar return {float(r.mean()):+.2e}, lag-1 acf within windows {acf1:+.3f}, "
        f"excess kurtosis {kurt:.1f}, max |bar return| {float(r.abs().max()):.4f}"
    )


def cell(values: list[float], se: float) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    mean = statistics.fmean(values)
    return f"{SCALE * mean:7.4f} ±{SCALE * spread:.4f} [{SCALE * se:.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..seeds-1")
    parser.add_argument("--train-paths", type=int, default=10_000, help="windows per seed")
    parser.add_argument("--test-paths", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 2000/4000 paths")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.train_paths, args.test_paths = 2, 2000, 4000
    torch.set_num_threads(1)
    wall = time.perf_counter()
    config = load_simulation(CONFIG)

    start = time.perf_counter()
    test = market(config, args.test_paths, TEST_SEED)
    sim_time = time.perf_counter() - start
    maturity = test.maturity
    steps_per_fit = args.epochs * math.ceil(args.train_paths / args.batch)
    print(
        f"market: {CONFIG.name}, bars of {BAR} steps from step {START_STEP}, {STEPS}-bar "
        f"windows, runs dropped beyond |ln(P/F)| > {MAX_GAP:g}, {BARS_PER_YEAR:g} bars a year "
        f"(T = {maturity:.5f})\n"
        f"claim: short ATM call, S0 = K = {SPOT:g}; risks: entropic (aversion {AVERSION:g}) "
        f"and CVaR {LEVEL}; costs {', '.join(f'{c:g}' for c in COSTS)} (unwind included)\n"
        f"deep hedgers: band policy (4 x 32), Adam lr 1e-3, {args.train_paths} training paths "
        f"per seed, batch {args.batch}, {args.epochs} epochs ({steps_per_fit} Adam steps); "
        f"training seeds {list(range(args.seeds))} (artificial windows from seed 100 + s, GBM "
        f"from seed 200 + s); test: {args.test_paths} windows from seed {TEST_SEED}; one torch "
        "thread, one simulator thread"
    )
    print(describe("test set", test))

    risks = {(r, c, h): [] for r in RISKS for c in COSTS for h in HEDGERS}
    ses = {key: [] for key in risks}
    diffs = {(r, c): [] for r in RISKS for c in COSTS}
    diff_ses = {key: [] for key in diffs}
    train_time = 0.0
    payoff = european(test.prices, STRIKE, "call")
    for seed in range(args.seeds):
        start = time.perf_counter()
        train = market(config, args.train_paths, 100 + seed)
        sim_time += time.perf_counter() - start
        sigma = train.sigma
        gbm = gbm_paths(args.train_paths, STEPS, maturity, SPOT, 0.0, sigma, seed=200 + seed)
        print(describe(f"seed {seed} training set", train))
        for risk in RISKS:
            for cost in COSTS:
                common = dict(
                    strike=STRIKE,
                    maturity=maturity,
                    risk=risk,
                    aversion=AVERSION,
                    risk_level=LEVEL,
                    cost=cost,
                    epochs=args.epochs,
                    batch_size=args.batch,
                    seed=seed,
                    num_threads=1,
                )
                start = time.perf_counter()
                on_market = DeepHedger(**common).fit(train.prices, volatility=sigma)
                on_gbm = DeepHedger(**common).fit(gbm[..., 0], volatility=sigma)
                train_time += time.perf_counter() - start
                pnls = {
                    "DH artificial": on_market.hedge(test.prices, volatility=sigma).pnl,
                    "DH GBM": on_gbm.hedge(test.prices, volatility=sigma).pnl,
                    "BS delta": hedge_with(
                        BlackScholesDelta(),
                        test.prices,
                        strike=STRIKE,
                        maturity=maturity,
                        volatility=sigma,
                        cost=cost,
                    ).pnl,
                    "no hedge": -payoff,
                }
                for name, pnl in pnls.items():
                    risks[risk, cost, name].append(risk_of(risk, pnl))
                    ses[risk, cost, name].append(batch_se(risk, pnl))
                a, b = pnls["DH artificial"], pnls["DH GBM"]
                diffs[risk, cost].append(risk_of(risk, a) - risk_of(risk, b))
                diff_ses[risk, cost].append(batch_se(risk, a, b))

    header = f"{'':10s}{'cost':>7s}" + "".join(f"{h:>30s}" for h in HEDGERS)
    print(
        f"\nprice of the short call = risk of the hedged P&L on the {args.test_paths} test "
        f"windows, x 1e-3: mean over {args.seeds} training seeds ±sd over seeds [MC standard "
        "error]"
    )
    print(header)
    for risk in RISKS:
        label = f"entropic a={AVERSION:g}" if risk == "entropic" else f"CVaR {LEVEL}"
        for cost in COSTS:
            row = "".join(
                f"{cell(risks[risk, cost, h], statistics.fmean(ses[risk, cost, h])):>30s}"
                for h in HEDGERS
            )
            print(f"{label:10s}{cost:7g}{row}")
            label = ""
    print("\nDH artificial minus DH GBM on the same paths (negative: artificial-trained better)")
    for risk in RISKS:
        for cost in COSTS:
            value = cell(diffs[risk, cost], statistics.fmean(diff_ses[risk, cost]))
            print(f"{risk:10s}{cost:7g}{value:>30s}")
    print(
        f"\nwall time {time.perf_counter() - wall:.0f} s: simulation {sim_time:.0f} s, "
        f"training {train_time:.0f} s (one torch thread)"
    )


if __name__ == "__main__":
    main()
