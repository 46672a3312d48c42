"""Speed of the deep residual strategy on the bundled data (one torch thread).

Prints: training throughput (samples per second of one fit on ten years of 20 stocks), the time
to allocate every monthly decision date of the 2000-2022 walk-forward in one batched call, and
the wall time of the full walk-forward with yearly retraining and 10 bps costs.

    python benchmarks/bench_deep_residual.py [--device cuda]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # outright: an exported value would un-pin BLAS silently

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kabuto.backtest import WalkForward  # noqa: E402
from kabuto.backtest.schedule import schedule_indices  # noqa: E402
from kabuto.data import load_sp500  # noqa: E402
from kabuto.strategies import DeepResidual  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    panel = load_sp500()
    strategy = DeepResidual(device=args.device, num_threads=1)

    fit_at = panel.index_of("2009-12-31")
    history = panel.window(fit_at, fit_at)
    rates, fits = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        strategy.fit(history)
        elapsed = time.perf_counter() - start
        epochs = len(strategy.train_losses_)
        rates.append(strategy.n_train_samples_ * epochs / elapsed)
        fits.append(elapsed)
    print(
        f"fit on 20 stocks x {strategy.train_window} days: {strategy.n_train_samples_} samples, "
        f"{len(strategy.train_losses_)} epochs, median {statistics.median(fits):.2f} s, "
        f"{statistics.median(rates):,.0f} training samples/s"
    )

    first, last = panel.index_of("2000-01-03"), panel.n_dates - 1
    decisions = schedule_indices(panel.dates, "monthly", first, last - 1, field="rebalance")
    batch = panel.batch(decisions, strategy.lookback)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        weights = strategy.allocate_batch(batch)
        times.append(time.perf_counter() - start)
    assert np.isfinite(weights).all()
    print(
        f"allocate {len(decisions)} monthly decision dates in one batched call: "
        f"median {statistics.median(times):.3f} s (target < 1 s)"
    )

    engine = WalkForward(
        start="2000-01-03", rebalance="monthly", retrain="yearly", costs_bps=10.0, long_only=False
    )
    start = time.perf_counter()
    result = engine.run(panel, [DeepResidual(device=args.device, num_threads=1)])
    elapsed = time.perf_counter() - start
    net = result["DeepResidual"].net_returns
    sharpe = net.mean() / net.std() * np.sqrt(252)
    print(
        f"walk-forward 2000-2022, yearly retraining, monthly rebalancing, 10 bps: {elapsed:.1f} s "
        f"(target < 600 s); net Sharpe {sharpe:.2f} (untuned, survivorship-biased data)"
    )


if __name__ == "__main__":
    main()
