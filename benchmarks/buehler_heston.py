"""Buehler, Gonon, Teichmann and Wood (2019), "Deep hedging", section 5, reproduced with kabuto.

Two experiments of the paper, on one torch thread:

1. ``heston``: an at-the-money call (S0 = K = 100, 30 days, 30 daily rebalances) in the Heston
   model (kappa 1, theta 0.04, xi 2, rho -0.7, v0 0.04), hedged with the underlying and a
   variance swap (`kabuto.hedging.instruments.variance_swap_prices`) by a deep hedger that
   minimises the expected shortfall (CVaR) at levels 0.5 and 0.99; no costs. The paper reports
   indifference prices of about 1.94 (CVaR 0.5) and 3.49 (CVaR 0.99); the risk-neutral Heston
   price is 1.6918. Also printed: the same hedger trading the underlying only.
2. ``costs``: the same call under Black-Scholes (sigma 0.2), entropic risk with aversion 1,
   proportional costs eps = 2^-(i+5), i = 1..5. The paper finds ``p_eps - p_0`` growing like
   ``eps^(2/3)`` (slope about 0.67 of log(p_eps - p_0) on log eps), as the asymptotics of
   Whalley and Wilmott predict. Every price is measured on the same fresh evaluation paths
   (common random numbers), for several training seeds.

Training takes each Adam step on fresh paths (see `DeepHedger`'s Notes); the price is the
risk of the hedged short call on separate fresh evaluation paths (an out-of-sample price: any
hedger's price there bounds the optimal one from above, up to Monte Carlo error).

Usage::

    python benchmarks/buehler_heston.py [heston|costs|all] [--seeds 3] [--quick]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # before numpy: its "train s" column is timed on one thread

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kabuto.hedging import closed_form  # noqa: E402
from kabuto.hedging.hedger import DeepHedger, WhalleyWilmott, hedge_with  # noqa: E402
from kabuto.hedging.instruments import variance_swap_prices  # noqa: E402
from kabuto.hedging.risk import entropic_risk  # noqa: E402
from kabuto.sim.paths import gbm_paths, heston_paths  # noqa: E402

SPOT = STRIKE = 100.0
MATURITY, STEPS = 30 / 365, 30
HESTON = dict(v0=0.04, kappa=1.0, theta=0.04, xi=2.0, rho=-0.7)
PAPER = {0.5: 1.94, 0.99: 3.49}
# The swap's price moves by about 1e-3 per day; a notional of 1,000 puts the holdings of both
# instruments on the same scale (about 1) for the network. It changes nothing else.
SWAP_NOTIONAL = 1000.0
SIGMA = 0.2


def heston_market(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spot (N, T + 1), volatility sqrt(v) (N, T + 1) and the swap's prices (N, T + 1)."""
    s, v = heston_paths(n, STEPS, MATURITY, SPOT, seed=seed, **HESTON)
    swap = variance_swap_prices(v, MATURITY, HESTON["kappa"], HESTON["theta"]) * SWAP_NOTIONAL
    return s, v.sqrt(), swap


def heston_experiment(seeds: int, train_steps: int, batch: int, eval_paths: int) -> None:
    exact = float(closed_form.heston_price(SPOT, STRIKE, MATURITY, 0.0, **HESTON))
    print(f"Heston ATM call, 30 days, 30 rebalances; risk-neutral price {exact:.4f}")
    print(f"evaluation: {eval_paths:,} fresh paths; {seeds} seed(s)")
    s_eval, vol_eval, swap_eval = heston_market(eval_paths, seed=10_000)
    print(f"{'CVaR level':>10} {'instruments':>12} {'training':>16} {'price (per seed)':>24} "
          f"{'mean':>7} {'paper':>6} {'train s':>8}")  # fmt: skip
    for level in (0.5, 0.99):
        # Only the worst 1 - level of a batch carries gradient: at 0.99, 100 of 10,000 paths.
        # The tail level trains on 5x larger batches for half as many steps.
        steps, size = (train_steps, batch) if level == 0.5 else (train_steps // 2, batch * 5)
        for with_swap in (True, False):
            prices, times = [], []
            for seed in range(seeds):
                s, vol, swap = heston_market(steps * size, seed=seed + 1)
                hedger = DeepHedger(
                    STRIKE, MATURITY, policy="mlp", risk="cvar", risk_level=level,
                    epochs=1, batch_size=size, learning_rate=0.005, seed=seed, num_threads=1,
                )  # fmt: skip
                start = time.perf_counter()
                hedger.fit(s, volatility=vol, instruments=swap if with_swap else None)
                times.append(time.perf_counter() - start)
                prices.append(
                    hedger.price(
                        s_eval, volatility=vol_eval, instruments=swap_eval if with_swap else None
                    )
                )
            paper = f"{PAPER[level]:6.2f}" if with_swap else "     -"
            name = "spot + swap" if with_swap else "spot only"
            protocol = f"{steps} x {size:,}"
            cells = " ".join(f"{p:.3f}" for p in prices)
            print(f"{level:>10} {name:>12} {protocol:>16} {cells:>24} {np.mean(prices):7.3f} "
                  f"{paper} {statistics.median(times):8.1f}")  # fmt: skip


def cost_experiment(seeds: int, train_steps: int, batch: int, eval_paths: int, spot: float) -> None:
    exponents = list(range(1, 6))
    costs = [2.0 ** -(i + 5) for i in exponents]
    print(
        f"Black-Scholes ATM call (S0 = K = {spot:g}, sigma {SIGMA}), 30 days, 30 rebalances, "
        "entropic risk a = 1"
    )
    print(f"training: {train_steps} Adam steps x {batch:,} fresh paths; "
          f"evaluation: {eval_paths:,} fresh paths; {seeds} seed(s)")  # fmt: skip
    s_eval = gbm_paths(eval_paths, STEPS, MATURITY, spot, 0.0, SIGMA, seed=10_000)

    def deep_price(cost: float, seed: int) -> float:
        s = gbm_paths(train_steps * batch, STEPS, MATURITY, spot, 0.0, SIGMA, seed=seed + 1)
        hedger = DeepHedger(
            spot, MATURITY, policy="band", risk="entropic", aversion=1.0, cost=cost,
            unwind=False, epochs=1, batch_size=batch, learning_rate=0.005, seed=seed,
            num_threads=1,
        )  # fmt: skip
        return hedger.fit(s, volatility=SIGMA).price(s_eval, volatility=SIGMA)

    def ww_price(cost: float) -> float:
        result = hedge_with(
            WhalleyWilmott(cost, aversion=1.0), s_eval, strike=spot, maturity=MATURITY,
            volatility=SIGMA, cost=cost, unwind=False,
        )  # fmt: skip
        return float(entropic_risk(result.pnl, 1.0))

    log_eps = np.log(costs)

    def slope_of(excess: list[float]) -> float:
        """Slope of log(p_eps - p_0) on log eps over the costs whose excess is positive (a
        non-positive one, training noise at a tiny cost, has no logarithm: it is left out and
        reported, not clipped into a huge negative log)."""
        kept = np.array(excess) > 0
        if kept.sum() < len(excess):
            print(f"  (left out of a slope: {len(excess) - kept.sum()} non-positive excess)")
        if kept.sum() < 2:
            return float("nan")
        return float(np.polyfit(log_eps[kept], np.log(np.array(excess)[kept]), 1)[0])

    rows = []
    for seed in range(seeds):
        start = time.perf_counter()
        p0 = deep_price(0.0, seed)
        excess = [deep_price(c, seed) - p0 for c in costs]
        rows.append((p0, excess, slope_of(excess), time.perf_counter() - start))
    ww0 = ww_price(0.0)
    ww_excess = [ww_price(c) - ww0 for c in costs]
    ww_slope = slope_of(ww_excess)

    head = " ".join(f"{'2^-' + str(i + 5):>8}" for i in exponents)
    print(f"{'hedger':>16} {'p_0':>7} | p_eps - p_0 at eps = {head} | slope")
    for seed, (p0, excess, slope, _) in enumerate(rows):
        cells = " ".join(f"{e:8.4f}" for e in excess)
        print(f"{'deep, seed ' + str(seed):>16} {p0:7.4f} | {'':21}{cells} | {slope:5.2f}")
    cells = " ".join(f"{e:8.4f}" for e in ww_excess)
    print(f"{'Whalley-Wilmott':>16} {ww0:7.4f} | {'':21}{cells} | {ww_slope:5.2f}")
    slopes = [r[2] for r in rows]
    print(f"deep hedger slope: mean {np.mean(slopes):.2f}, range [{min(slopes):.2f}, "
          f"{max(slopes):.2f}] over {seeds} seed(s); paper about 0.67 (theory 2/3); "
          f"train s per seed (6 hedgers): {statistics.median(r[3] for r in rows):.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", nargs="?", default="all", choices=["heston", "costs", "all"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--spot", type=float, default=SPOT, help="S0 = K of the costs run")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, batch, paths = (20, 2_000, 20_000) if args.quick else (200, 10_000, 200_000)
    if args.experiment in ("heston", "all"):
        heston_experiment(args.seeds, steps, batch, paths)
    if args.experiment in ("costs", "all"):
        cost_experiment(args.seeds, steps, batch, paths, args.spot)


if __name__ == "__main__":
    main()
