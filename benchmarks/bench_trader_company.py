"""Speed of one Trader-Company fit on one core, and what it finds in a planted market.

Simulates 1,000 training days x 20 assets with 4 per-asset features (standard normal) and a
planted next-day return ``y[t] = 0.3 * x0[t-1] * x1[t-2] + noise`` (no single feature predicts
it), plus 300 held-out days. Times one full fit -- N = 100 Traders, M <= 10 terms, delays up to
10, 100 evolution rounds -- several times and prints the median against the 30 s target. Then
prints the out-of-sample correlation of the Company's prediction with the realised return as a
ratio of the planted formula's own correlation, and the best Traders' formulas.

No peer library implements the method, so there is no speed ratio to print.

    python benchmarks/bench_trader_company.py [--repeats 3]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from kabuto.strategies.trader_company import TraderCompany  # noqa: E402

TARGET_SECONDS = 30.0


def planted_market(seed: int, days: int, n_assets: int = 20, n_features: int = 4):
    """Features (days, F, n), returns (days, n) with NaN on the last row, and the signal."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((days, n_features, n_assets))
    signal = np.full((days, n_assets), np.nan)
    signal[2:] = X[1:-1, 0] * X[:-2, 1]
    y = 0.3 * signal + rng.standard_normal((days, n_assets))
    y[-1] = np.nan
    return X, y, signal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train, held_out = 1000, 300
    X, y, signal = planted_market(args.seed, train + held_out)
    settings = dict(
        n_traders=100,
        max_terms=10,
        max_delay=10,
        n_rounds=100,
        feature_names=["a", "b", "c", "d"],
        seed=args.seed,
    )
    times = []
    company = None
    for _ in range(args.repeats):
        company = TraderCompany(**settings)
        start = time.perf_counter()
        company.fit(X[:train], y[:train])
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"fit: {train} days x 20 assets x 4 features, N=100 traders, M<=10 terms, "
        f"max_delay=10, 100 rounds: median {median:.2f} s over {args.repeats} runs "
        f"({', '.join(f'{t:.2f}' for t in times)}); target < {TARGET_SECONDS:.0f} s on one core "
        f"-> {'OK' if median < TARGET_SECONDS else 'MISSED'}"
    )

    test = slice(train, train + held_out - 1)
    realised = y[test].ravel()
    planted = np.corrcoef(signal[test].ravel(), realised)[0, 1]
    start = time.perf_counter()
    prediction = company.predict(X)
    predict_seconds = time.perf_counter() - start
    got = np.corrcoef(prediction[test].ravel(), realised)[0, 1]
    print(
        f"out of sample ({held_out - 1} days): company corr {got:.3f}, planted formula corr "
        f"{planted:.3f}, ratio {got / planted:.2f} (predict on {train + held_out} days: "
        f"{predict_seconds:.2f} s)"
    )
    print(company.describe(3))


if __name__ == "__main__":
    main()
