"""RL agents and online portfolio selection on planted mean reversion and on a random-walk control.

The RL issue's check: on a synthetic market with planted short-horizon mean reversion (where
OLMAR has an edge) and on a trendless control, over 5 seeds, EIIE's net log wealth beats UCRP
on the planted market and does not beat it meaningfully on the control (no leak); every agent
and baseline is reported.

Markets: `kabuto.sim.mean_reverting_prices` (log price deviations are AR(1) with phi = 0.7,
1.5% daily shocks, correlation 0.3; phi = 1 is the control), 10 assets, 1,000 days. One
walk-forward per market with every strategy on the same dates (from day 250), daily rebalancing,
monthly retraining, 10 bps, long-only. Strategies: UCRP (equal weight rebalanced daily), UBAH
(buy and hold), EG, OLMAR, PAMR, EIIE, PPO, A2C and SAC (stable-baselines3), and the best stock in
hindsight (an oracle that looks ahead, shown for scale, never a contender). Printed: net log
wealth per seed, its mean and standard deviation over seeds, and EIIE minus UCRP.

    python benchmarks/rl_planted_vs_control.py [--seeds 0 1 2 3 4] [--quick]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kabuto.backtest import WalkForward  # noqa: E402
from kabuto.sim import mean_reverting_prices  # noqa: E402
from kabuto.strategies import (  # noqa: E402
    EIIE,
    OLMAR,
    PAMR,
    BestStockOracle,
    BuyAndHold,
    EqualWeight,
    ExponentiatedGradient,
    RLAgent,
)

MARKETS = {"planted (phi 0.7)": 0.7, "control (phi 1)": 1.0}
FIRST = 250  # first decision: a year of training history for the learners


def build(panel, quick: bool) -> list:
    steps = 200 if quick else 1500
    timesteps = 2048 if quick else 20_000
    sb3 = {
        "lookback": 30,
        "total_timesteps": timesteps,
        "rolling_timesteps": 1024,
        "episode_length": 126,
        "n_envs": 4,
        "num_threads": 1,
    }
    return [
        EqualWeight(lookback=1, label="UCRP"),
        BuyAndHold(lookback=1, label="UBAH"),
        ExponentiatedGradient(label="EG"),
        OLMAR(label="OLMAR"),
        PAMR(label="PAMR"),
        EIIE(lookback=30, n_steps=steps, n_rolling_steps=50, num_threads=1, label="EIIE"),
        RLAgent("ppo", label="PPO", **sb3),
        RLAgent("a2c", label="A2C", **sb3),
        # one gradient step per 4 vector steps (16 transitions) keeps SAC's cost near PPO's
        RLAgent("sac", label="SAC", algorithm_kwargs={"train_freq": 4}, **sb3),
        # ranked over the backtest's period, the returns it is scored on
        BestStockOracle(panel, start=panel.dates[FIRST], label="best stock (oracle, looks ahead)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="few training steps (smoke run)")
    parser.add_argument(
        "--market", choices=["planted", "control", "both"], default="both", help="markets to run"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    for market, phi in MARKETS.items():
        if args.market != "both" and not market.startswith(args.market):
            continue
        wealth: dict[str, list[float]] = {}
        for seed in args.seeds:
            t0 = time.perf_counter()
            panel = mean_reverting_prices(10, 1000, phi=phi, seed=seed)
            strategies = build(panel, args.quick)
            engine = WalkForward(
                start=panel.dates[FIRST], rebalance=1, retrain="monthly", costs_bps=10.0
            )
            result = engine.run(panel, strategies)
            for s in strategies:
                net = result.strategies[s.name].net_returns
                wealth.setdefault(s.name, []).append(float(np.log1p(net).sum()))
            print(f"{market} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        print()
        print(f"{market}: net log wealth, {len(args.seeds)} seeds, 10 bps, daily rebalancing")
        width = max(len(n) for n in wealth) + 1
        print(f"{'':<{width}}" + "".join(f"{s:>8}" for s in args.seeds) + "    mean     std")
        for name, values in wealth.items():
            v = np.array(values)
            row = "".join(f"{x:8.2f}" for x in v)
            spread = v.std(ddof=1) if len(v) > 1 else float("nan")
            print(f"{name:<{width}}{row}{v.mean():8.2f}{spread:8.2f}")
        gap = np.array(wealth["EIIE"]) - np.array(wealth["UCRP"])
        print(
            "EIIE - UCRP: " + " ".join(f"{g:+.2f}" for g in gap) + f"  mean {gap.mean():+.2f}"
            f" (beats UCRP on {int((gap > 0).sum())}/{len(gap)} seeds)"
        )
        print()
    print(f"wall time {time.perf_counter() - started:.0f} s (1 thread)")


if __name__ == "__main__":
    main()
