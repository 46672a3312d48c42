"""Deep residual strategy vs the residual oracle, baselines and ablations on the factor market.

The deep residual issue's target (section 7): on the synthetic factor market (at least 5 fresh
seeds, 10 bps costs) the deep residual strategy's net Sharpe ratio is at least 0.8 of the
oracle's, and it beats every baseline. For each evaluation seed this script simulates a factor
market (`kabuto.sim.factor_market`) and runs ONE walk-forward with every strategy together, so
all share the same decision dates (from the deep strategy's ``min_history`` on), rebalancing,
retraining schedule, timing and 10 bps costs (long-short, gross leverage 1). It prints the net
Sharpe ratio of each strategy per seed, the mean, the mean ratio to the oracle's net Sharpe ratio
of the same run, the mean daily one-way turnover, and whether the deep strategy beats each
baseline (on the mean over seeds, and on how many seeds).

Strategies: the oracle (`ResidualOracle`: true moments, true factor-neutral projection), the deep
residual strategy (`DeepResidual`, fractal network, distributional), residual reversal and
residual momentum (`residual_baselines`), an MLP and an LSTM point predictor on the same inputs,
and the deep strategy without residual extraction, without the multi-scale input, without
amplitude invariance, and with a point instead of a distributional prediction.

The deep settings below (`DEEP`) were chosen on tuning seeds 1..3 only, never on the evaluation
seeds (default 2001..2005); see `DEEP` for what differs from the class defaults and why. Every
network variant shares them, changing only the one setting it ablates.

    python benchmarks/deep_residual_vs_oracle.py [--seeds 2001 2002 2003 2004 2005]
        [--n-assets 40] [--n-days 2000] [--rebalance 5] [--retrain yearly] [--quick]
        [--market box|scale-free]

`--market scale-free` swaps the 5-day box reversal for the j**(-1/2) kernel over 126 days, the
signal that satisfies the network's time-scale invariance (`SCALE_FREE_REVERSION`); the reversal
baseline then uses its best horizon on the tuning seeds (126 days). Tuning seeds 1 and 2, one
network each: the oracle nets about 5.2, 126-day reversal 0.86 of it, the fractal network 0.62
with the filter psi1 and 0.37 with the paper's MLP psi1 (the LSTM point predictor reached 0.49 on
seed 1): the networks do not pick up the slow part of the signal.

Rebalancing every 5 days (the planted signal's horizon) is shared by all strategies. On the
tuning seeds (40 assets, 2000 days, 10 bps) the oracle's net Sharpe ratio is about 2.3 daily, 2.7
every 3 days, 2.2 every 5 and 0.9 every 10 days; the deep strategy with the paper's MLP psi1 about
-0.3, 1.6, 1.7 and 0.6: daily costs swamp its noisier signal.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from oracle_scores import print_comparison, print_scores, score_seeds  # noqa: E402

from kabuto.sim.factor_market import SCALE_FREE_REVERSION  # noqa: E402
from kabuto.strategies.deep_residual import DeepResidual  # noqa: E402
from kabuto.strategies.oracle import ResidualOracle  # noqa: E402
from kabuto.strategies.residual_baselines import ResidualMomentum, ResidualReversal  # noqa: E402

EVALUATION_SEEDS = (2001, 2002, 2003, 2004, 2005)  # fresh: never used for tuning
TUNING_SEEDS = (1, 2, 3)  # what `DEEP` was chosen on

# Settings of every network variant, chosen on TUNING_SEEDS (the rest are the class defaults).
# lookback 128 instead of 256: the planted signal lives in the last 5 days; with H = 128 and
# R = 32 the finest scale (tau = 1/4) sees the last 32 days at one-day resolution instead of two,
# the PCA window is still 128 days, and min_history leaves more trading days. A larger batch with
# a larger step and more patience gives smoother early stopping on the noisy (R^2 ~ 0.6%) target;
# AdamW weight decay 1e-3. These are passed here rather than made class defaults: the gains were
# small and specific to this market's 5-day horizon.
#
# psi1 (a class default, "filters"): net Sharpe on tuning seeds 1, 2, 3 (oracle 2.23 2.33 1.93),
# one network each, these settings:
#   psi1="mlp" (the paper's)            1.90 1.23 2.03  mean 1.72  /oracle 0.81
#   psi1="filters"                      2.12 1.90 2.43  mean 2.15  /oracle 1.01  <- default
# (residual reversal 2.24 2.02 1.76, mean 2.01; single-network LSTM point 2.18.) With the MLP
# psi1 an ensemble of 5 networks had reached 0.88; with the filters one network is used, which
# also lets every baseline network, the LSTM included, train in the time.
DEEP: dict = {
    "lookback": 128,
    "batch_size": 2048,
    "learning_rate": 3e-3,
    "patience": 8,
    "epochs": 60,
    "weight_decay": 1e-3,
}

# The two residual signals (`kabuto.sim.factor_market`): the default fixed-horizon box (a shock
# reverses over 5 days) and the scale-free kernel j**(-1/2) over 126 days, and for each the
# reversal horizon chosen on the tuning seeds (best net Sharpe among 5, 10, 20, 40, 80, 126 days).
MARKETS: dict[str, tuple[dict, int]] = {
    "box": ({}, 5),
    "scale-free": (SCALE_FREE_REVERSION, 126),
}

DEEP_NAME = "deep residual"
ORACLE_NAME = "oracle"
# Baselines the deep strategy must beat: name -> (kind, settings changed from DEEP).
BASELINES: dict[str, tuple[str, dict]] = {
    "residual reversal": ("reversal", {}),
    "residual momentum": ("momentum", {}),
    "MLP point": ("deep", {"architecture": "mlp", "distributional": False}),
    "LSTM point": ("deep", {"architecture": "lstm", "distributional": False}),
    "no residual": ("deep", {"residual": False}),
    "no multiscale": ("deep", {"multiscale": False}),
    "no amplitude inv.": ("deep", {"amplitude_invariant": False}),
    "point (no distrib.)": ("deep", {"distributional": False}),
    "MLP psi1 (paper)": ("deep", {"psi1": "mlp"}),
}


def build(market, deep: dict, only: set[str] | None, reversal_horizon: int) -> list:
    """The strategies of one run, oracle and deep strategy first."""
    common = {"num_threads": 1, "device": "cpu"}
    out = [
        ResidualOracle(market, label=ORACLE_NAME),
        DeepResidual(**(common | deep), label=DEEP_NAME),
    ]
    # the hand-made baselines use the same number of removed components as the network
    c = {"n_components": deep["n_components"]} if "n_components" in deep else {}
    for name, (kind, change) in BASELINES.items():
        if only is not None and name not in only:
            continue
        if kind == "reversal":
            out.append(ResidualReversal(horizon=reversal_horizon, label=name, **c))
        elif kind == "momentum":
            out.append(ResidualMomentum(label=name, **c))
        else:
            out.append(DeepResidual(**(common | deep | change), label=name))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(EVALUATION_SEEDS))
    parser.add_argument("--n-assets", type=int, default=40)
    parser.add_argument("--n-days", type=int, default=2000)
    parser.add_argument(
        "--rebalance", default="5", help="every k days (default 5, see docs), or 'weekly' etc."
    )
    parser.add_argument("--retrain", default="yearly")
    parser.add_argument("--market", choices=list(MARKETS), default="box")
    parser.add_argument("--costs-bps", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="tiny market, 1 seed (smoke run)")
    parser.add_argument(
        "--deep", default="{}", help="JSON settings overriding DEEP (for tuning seeds only)"
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="run only these baselines (for tuning)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    deep = DEEP | json.loads(args.deep)
    if "hidden_sizes" in deep:
        deep["hidden_sizes"] = tuple(deep["hidden_sizes"])
    seeds, n_assets, n_days = args.seeds, args.n_assets, args.n_days
    if args.quick:
        seeds, n_assets, n_days = seeds[:1], 15, 900
        deep |= {"epochs": 2, "lookback": 64}
    rebalance = int(args.rebalance) if args.rebalance.isdigit() else args.rebalance
    only = set(args.only) if args.only is not None else None
    if set(seeds) & set(TUNING_SEEDS) and args.deep == "{}" and only is None:
        print(f"note: seeds {sorted(set(seeds) & set(TUNING_SEEDS))} were used for tuning")

    started = time.perf_counter()
    market_settings, reversal_horizon = MARKETS[args.market]
    scores = score_seeds(
        seeds,
        lambda market: build(market, deep, only, reversal_horizon),
        n_assets=n_assets,
        n_days=n_days,
        market_settings=market_settings,
        rebalance=rebalance,
        retrain=args.retrain,
        costs_bps=args.costs_bps,
    )
    print()
    print(
        f"{args.market} factor market: {n_assets} assets, {n_days} days, seeds {seeds}; "
        f"rebalance every {rebalance}, retrain {args.retrain}, {args.costs_bps:g} bps, "
        "long-short gross 1"
    )
    print(f"deep settings: {deep or 'class defaults'}")
    print_scores(scores, ORACLE_NAME)
    print()
    print_comparison(scores, DEEP_NAME, ORACLE_NAME, target=0.8)
    print(f"wall time {time.perf_counter() - started:.0f} s (1 torch thread)")


if __name__ == "__main__":
    main()
