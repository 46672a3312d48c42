"""kabuto's artificial market against PAMS: orders per second on the same configs, one core.

PAMS (pip ``pams``, Hirano, Takata, Izumi 2023) pins numpy < 2, so it runs in its own virtual
environment, made on first use under ``~/.cache/kabuto/bench-pams`` (pip from the package
registry) and called as a subprocess; kabuto runs in this process. Both run the same configs:

* PAMS's CI2002 sample (100 FCN agents, 100 pre-open + 500 continuous steps, one order a step),
  many seeds;
* the same agents scaled to 1,000 agents and 10,000 steps (100 pre-open + 9,900 continuous).

Orders per second is orders placed over wall time of the whole run (kabuto: drawing the random
inputs, the compiled loop and the outputs; PAMS: ``runner._setup()`` and ``runner._run()``),
median of repeats. Then kabuto's cost per order against the number of agents (100 vs 1,000) and
against book depth (30 orders a step with narrow margins, a few dozen resting orders, vs wide
margins, about 4,000 resting).

    python benchmarks/bench_artificial_market.py [--repeats 5] [--skip-pams]
"""

from __future__ import annotations

import os

# Outright, not setdefault: an exported value would un-pin the timing silently.
os.environ["NUMBA_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import copy
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peer_env import ensure_venv

from kabuto.sim.artificial import read_pams_config, simulate

CI2002 = Path(__file__).resolve().parents[1] / "examples" / "pams_ci2002.json"
PAMS_VENV = Path.home() / ".cache" / "kabuto" / "bench-pams"
PAMS_VERSION = "0.3.0"

PAMS_SCRIPT = r"""
import json, random, sys, time, warnings
warnings.simplefilter("ignore")  # PAMS warns on every off-tick price
from pams.runners import SequentialRunner
config, runs, repeats = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rates = []
for rep in range(repeats):
    orders, start = 0, time.perf_counter()
    for seed in range(runs):
        runner = SequentialRunner(settings=config, prng=random.Random(seed), logger=None)
        runner._setup()
        runner._run()
        m = runner.simulator.markets[0]
        steps = range(m.get_time())
        orders += sum(m.get_n_buy_orders(steps)) + sum(m.get_n_sell_orders(steps))
    rates.append(orders / (time.perf_counter() - start))
print(json.dumps({"orders_per_run": orders / runs, "rates": rates}))
"""


def scaled(base: dict, agents: int, steps: int) -> dict:
    config = copy.deepcopy(base)
    config["FCNAgents"]["numAgents"] = agents
    config["simulation"]["sessions"][1]["iterationSteps"] = steps - 100
    return config


def ensure_pams() -> Path | None:
    return ensure_venv(PAMS_VENV, [f"pams=={PAMS_VERSION}"], [], "pams", "--skip-pams")


def pams_rate(python: Path, config: dict, runs: int, repeats: int) -> tuple[float, float]:
    """Median orders per second and orders per run (of the last repeat)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PAMS_SCRIPT)
    try:
        out = subprocess.run(
            [str(python), f.name, json.dumps(config), str(runs), str(repeats)],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        )
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(exc.stderr)  # PAMS's own traceback, not just its exit status
        raise
    finally:
        os.unlink(f.name)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return statistics.median(report["rates"]), report["orders_per_run"]


def kabuto_rate(config: dict, runs: int, repeats: int) -> tuple[float, float, float]:
    """Median orders per second, mean resting orders (both sides) in continuous trading and
    orders per run (of the last repeat)."""
    parsed = read_pams_config(config)
    simulate(parsed, seed=0)  # compile (cached on disk after the first time)
    rates, depth, per_run = [], 0.0, 0.0
    for rep in range(repeats):
        start = time.perf_counter()
        result = simulate(parsed, seed=rep, runs=runs)
        rates.append(result.n_orders / (time.perf_counter() - start))
        depth = float(result.counts[:, 100:, 0, 3:].sum(axis=-1).mean())
        per_run = result.n_orders / runs
    return statistics.median(rates), depth, per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-pams", action="store_true")
    args = parser.parse_args()
    base = json.loads(CI2002.read_text())
    cases = {
        "CI2002 (100 agents, 600 steps) x 50 seeds": (base, 50),
        "1,000 agents x 10,000 steps": (scaled(base, 1000, 10_000), 1),
    }
    python = None if args.skip_pams else ensure_pams()
    # Orders per run, both sides: the same work, so a fast kabuto placing fewer orders shows.
    print(
        f"{'config':<44}{'kabuto orders/s':>17}{'PAMS orders/s':>15}{'ratio':>8}"
        f"{'orders a run, kabuto / PAMS':>30}"
    )
    for name, (config, runs) in cases.items():
        ours, _, our_orders = kabuto_rate(config, runs, args.repeats)
        theirs, their_orders = (
            pams_rate(python, config, max(1, runs // 5), 3) if python else (math.nan, math.nan)
        )
        print(
            f"{name:<44}{ours:>17,.0f}{theirs:>15,.0f}{ours / theirs:>7.0f}x"
            f"{our_orders:>19,.0f} / {their_orders:,.0f}",
            flush=True,
        )

    print("\nkabuto's cost per order (ns), median of repeats, 10,000 steps, one core")
    agents_100, *_ = kabuto_rate(scaled(base, 100, 10_000), 1, args.repeats)
    agents_1000, *_ = kabuto_rate(scaled(base, 1000, 10_000), 1, args.repeats)
    print(f"  100 agents      {1e9 / agents_100:6.0f}")
    print(f"  1,000 agents    {1e9 / agents_1000:6.0f}   ratio {agents_100 / agents_1000:.2f}")
    # Depth: 30 orders a step (so that thousands rest), margins narrow (orders cross and fill)
    # or wide (they rest until they expire); everything else the same.
    depths = {}
    for name, margin in (("shallow book", [0.0, 0.02]), ("deep book", [0.1, 0.35])):
        config = scaled(base, 100, 10_000)
        for session in config["simulation"]["sessions"]:
            session["maxNormalOrders"] = 30
        config["FCNAgents"]["orderMargin"] = margin
        depths[name] = kabuto_rate(config, 1, args.repeats)[:2]
    (shallow, d_shallow), (deep, d_deep) = depths.values()
    print(f"  shallow book    {1e9 / shallow:6.0f}   ({d_shallow:,.0f} resting orders on average)")
    print(
        f"  deep book       {1e9 / deep:6.0f}   ({d_deep:,.0f} resting orders on average); "
        f"ratio {shallow / deep:.2f}"
    )


if __name__ == "__main__":
    main()
