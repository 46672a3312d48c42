"""kabuto's deep hedger against pfhedge: training time and price on the same setting, one thread.

The setting is pfhedge's standard example (Buehler et al. 2019, "Deep hedging"): a short
European call, S0 = K = 1, volatility 0.2, maturity 20/250 with 20 rebalancing dates, zero-drift
GBM, entropic risk with aversion 1; 200 Adam steps (learning rate 0.001) of 10,000 fresh paths
each; proportional cost 0 and 1e-4. Policies, each the 4 x 32 ReLU MLP of pfhedge's
``MultiLayerPerceptron`` on both sides:

* "mlp": the network of (log-moneyness, time to maturity, volatility), run for all dates at once
  by both libraries (pfhedge does so when no input depends on the previous hedge);
* "recurrent": the same network fed the previous holding as well: pfhedge's README example
  (``Hedger(MultiLayerPerceptron(), ["log_moneyness", "expiry_time", "volatility",
  "prev_hedge"])``, cost 1e-4), kabuto's ``policy="recurrent"``; both run it once per date;
* "band": the no-transaction band network (Imaki et al. 2021) of pfhedge's example
  (``examples/example_no_transaction_band.py``): the network of the market inputs gives two
  widths around the Black-Scholes delta and the previous holding is clamped into the band.
  pfhedge lists the previous hedge among the model's inputs, so it runs the whole model once per
  date; kabuto's ``policy="band"`` runs the network for all dates at once (the widths do not
  depend on the previous holding) and only the clamp per date. The widths are a leaky ReLU of
  the outputs in pfhedge's example and a softplus in kabuto.

pfhedge (pip ``pfhedge``) pins numpy < 2, so it runs in its own virtual environment, made on
first use under ``~/.cache/kabuto/bench-pfhedge`` (pip from the package registry, with torch
pinned to 2.13.0, the CPU build, and numpy < 2) and called as a subprocess; kabuto runs in this
process. Both use one torch thread (``torch.set_num_threads(1)``, OMP/MKL/OpenBLAS threads 1).

Training time is the wall time of the whole training, median of repeats:

* pfhedge: building the derivative, network and ``Hedger`` and ``hedger.fit(derivative,
  n_paths=10_000, n_epochs=200, verbose=False, validation=False)``, which simulates fresh paths
  for every Adam step (``validation=False`` skips the extra no-gradient pass on another fresh
  simulation that pfhedge's default makes every epoch, so both do the same work);
* kabuto: simulating the 200 x 10,000 paths with `kabuto.sim.paths.gbm_paths` and
  ``DeepHedger(..., batch_size=10_000, epochs=1).fit(prices, volatility=0.2)``: 200 Adam steps,
  each on 10,000 paths never seen before (the protocol of `DeepHedger`'s Notes).

Two ratios are printed. Per step: pfhedge's median 200-step training time over kabuto's (the
same work: steps, paths, network). Time to the same quality (time-to-train, as MLPerf counts
it): for each setting pfhedge runs, kabuto also trains for 1, 25, 50 and 100 Adam steps (same
paths per step, same learning rate) with seeds 0, 1, 2 (``--quality-seeds``), and the ratio
divides pfhedge's median 200-step training time by kabuto's median time at the fewest steps
whose mean price is at or below pfhedge's mean price over its trainings (seeds 0, 1, 2,
``--pfhedge-repeats``). A policy that is there after one step starts there: that measures its
initialisation, not training, and gets no ratio.

Each library first trains once on a tiny problem (not timed), so that neither pays one-off
start-up costs in its timings. Then every trained hedger prices the claim on the same fresh
evaluation paths with its own library's price method (the entropic risk of the hedged short
position); a row's price is the mean over its trainings.
P&L convention: pfhedge charges the cost of every trade, the first purchase included, but not
that of unwinding the final holding at maturity; kabuto runs with ``unwind=False`` to match.
For context the Black-Scholes delta hedge is priced by kabuto on the same evaluation paths
(`BlackScholesDelta` with `hedge_with`). Last, kabuto trains at its own learning rate, 0.005
(the `kabuto hedge` example's; the comparison above uses pfhedge's 0.001), for 200 steps of
10,000 fresh paths with seeds 0, 1, 2, and the mean prices on 1,000,000 other fresh paths are
checked against the project issue's references: without cost the MLP within 0.1% of the
discrete delta hedge, 0.022586; with cost 1e-4 the band network at most 0.02270, below the delta
hedge's 0.022775.

    python benchmarks/bench_deep_hedging.py [--repeats 3] [--pfhedge-repeats 3]
        [--quality-seeds 3] [--eval-paths 100000] [--paths 10000] [--epochs 200]
        [--skip-pfhedge] [--references-only] [--reference-paths 1000000]

(--paths and --epochs shrink the problem for a quick check; the comparison is at the defaults.)
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from kabuto.experiment.hedge import price_standard_error
from kabuto.hedging import BlackScholesDelta, DeepHedger, entropic_risk, hedge_with
from kabuto.sim.paths import gbm_paths

PFHEDGE_VENV = Path.home() / ".cache" / "kabuto" / "bench-pfhedge"
PFHEDGE_VERSION = "0.23.0"
TORCH_PIN = "torch==2.13.0"  # the CPU build served here; unpinned, pip pulls CUDA wheels

SPOT = STRIKE = 1.0
SIGMA = 0.2
MATURITY = 20 / 250
STEPS = 20
AVERSION = 1.0
EVAL_SEED = 1_000_003
# The price references for a deep hedger on this setting: (cost, policy checked,
# reference, whether a mean price meets it).
REFERENCES = [
    (0.0, "mlp", "within 0.1% of the discrete delta hedge, 0.022586",
     lambda p: abs(p / 0.022586 - 1.0) <= 0.001),
    (1e-4, "band", "at most 0.02270, below the delta hedge's 0.022775", lambda p: p <= 0.02270),
]  # fmt: skip
# kabuto's own learning rate for this setting (the `kabuto hedge` example's), for the references.
OWN_LEARNING_RATE = 0.005
REFERENCE_EVAL_SEED = 2_000_003
# (cost, policy), with the policies of the module docstring.
CASES = [(0.0, "mlp"), (1e-4, "mlp"), (1e-4, "recurrent"), (1e-4, "band")]
COST_LABELS = {0.0: "0", 1e-4: "1e-4"}

PFHEDGE_SCRIPT = r"""
import json, os, sys, time
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"
import torch
import torch.nn.functional as F
from pfhedge.instruments import BrownianStock, EuropeanOption
from pfhedge.nn import BlackScholes, Clamp, EntropicRiskMeasure, Hedger, MultiLayerPerceptron

torch.set_num_threads(1)
cfg = json.loads(sys.argv[1])
MARKET = ["log_moneyness", "time_to_maturity", "volatility"]


class BandNet(torch.nn.Module):
    # pfhedge's examples/example_no_transaction_band.py: the previous holding moved into
    # [delta - leaky_relu(w_low), delta + leaky_relu(w_high)], delta the Black-Scholes delta,
    # the widths an MLP of the market inputs.
    def __init__(self, derivative):
        super().__init__()
        self.bs = BlackScholes(derivative)
        self.mlp = MultiLayerPerceptron(out_features=2)
        self.clamp = Clamp()

    def inputs(self):
        return self.bs.inputs() + ["prev_hedge"]

    def forward(self, x):
        delta = self.bs(x[..., :-1])
        width = self.mlp(x[..., :-1])
        lower = delta - F.leaky_relu(width[..., :1])
        upper = delta + F.leaky_relu(width[..., 1:])
        return self.clamp(x[..., -1:], min=lower, max=upper)


def build(cost, policy):
    stock = BrownianStock(sigma=cfg["sigma"], cost=cost)
    derivative = EuropeanOption(stock, strike=cfg["strike"], maturity=cfg["maturity"])
    if policy == "band":
        model = BandNet(derivative)
        inputs = model.inputs()
    else:
        model = MultiLayerPerceptron()
        inputs = MARKET + (["prev_hedge"] if policy == "recurrent" else [])
    hedger = Hedger(model, inputs=inputs, criterion=EntropicRiskMeasure(a=cfg["aversion"]))
    return derivative, hedger


def train(cost, policy, n_paths, n_epochs):
    derivative, hedger = build(cost, policy)
    hedger.fit(derivative, n_paths=n_paths, n_epochs=n_epochs, verbose=False, validation=False)
    return derivative, hedger


cost, policy = cfg["cost"], cfg["policy"]
torch.manual_seed(12345)
train(cost, policy, 100, 2)  # warm-up, not timed
times, prices = [], []
for rep in range(cfg["repeats"]):
    torch.manual_seed(rep)
    start = time.perf_counter()
    derivative, hedger = train(cost, policy, cfg["paths"], cfg["epochs"])
    times.append(time.perf_counter() - start)
    torch.manual_seed(cfg["eval_seed"])  # the same evaluation paths for every training
    prices.append(float(hedger.price(derivative, n_paths=cfg["eval_paths"])))
steps = derivative.ul().spot.shape[-1] - 1
print(json.dumps({"times": times, "prices": prices, "steps": steps}))
"""


def ensure_pfhedge() -> Path | None:
    """pfhedge's environment (made on first use); None, with a message, if it cannot be made."""
    python = PFHEDGE_VENV / "bin" / "python"
    marker = PFHEDGE_VENV / f"installed-pfhedge-{PFHEDGE_VERSION}"
    if marker.exists():
        return python
    print(
        f"creating pfhedge's environment in {PFHEDGE_VENV} (pfhedge=={PFHEDGE_VERSION}, "
        f"{TORCH_PIN}, numpy<2) ...",
        flush=True,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{TORCH_PIN}\nnumpy<2\n")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PFHEDGE_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "-c",
                f.name,
                f"pfhedge=={PFHEDGE_VERSION}",
            ],
            check=True,
        )
        subprocess.run([str(python), "-c", "import pfhedge"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(
            f"\ncould not install pfhedge into {PFHEDGE_VENV} ({exc}).\n"
            "It needs the package registry (pfhedge, torch==2.13.0 CPU build, numpy<2). "
            "Continuing with kabuto alone; run with --skip-pfhedge to skip this attempt.\n",
            file=sys.stderr,
            flush=True,
        )
        shutil.rmtree(PFHEDGE_VENV, ignore_errors=True)
        return None
    finally:
        os.unlink(f.name)
    marker.touch()
    return python


def pfhedge_run(python: Path, cost: float, policy: str, args: argparse.Namespace) -> dict:
    """Train pfhedge `repeats` times (seeds 0, 1, ...) in its environment: {"times", "prices"
    (each training's, on the same evaluation paths), "price" (their mean), "steps"}."""
    cfg = {
        "cost": cost,
        "policy": policy,
        "sigma": SIGMA,
        "strike": STRIKE,
        "maturity": MATURITY,
        "aversion": AVERSION,
        "paths": args.paths,
        "epochs": args.epochs,
        "repeats": args.pfhedge_repeats,
        "eval_paths": args.eval_paths,
        "eval_seed": EVAL_SEED,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PFHEDGE_SCRIPT)
    try:
        out = subprocess.run(
            [str(python), f.name, json.dumps(cfg)],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ
            | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        )
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(exc.stderr)
        raise
    finally:
        os.unlink(f.name)
    run = json.loads(out.stdout.strip().splitlines()[-1])
    return run | {"price": statistics.fmean(run["prices"])}


# Shorter kabuto trainings, to find how soon kabuto prices as well as pfhedge after 200 steps;
# one step shows where training starts (a policy already there needs no training to get there).
FEWER_STEPS = (1, 25, 50, 100)


def kabuto_train(
    cost: float, policy: str, seed: int, paths: int, steps: int, learning_rate: float = 0.001
) -> DeepHedger:
    """`steps` Adam steps, each on `paths` fresh paths (simulated here, inside the timing)."""
    prices = gbm_paths(paths * steps, STEPS, MATURITY, SPOT, 0.0, SIGMA, seed=seed)
    hedger = DeepHedger(
        strike=STRIKE,
        maturity=MATURITY,
        policy=policy,
        risk="entropic",
        aversion=AVERSION,
        cost=cost,
        unwind=False,  # pfhedge's convention: no cost to unwind the final holding
        epochs=1,
        batch_size=paths,
        learning_rate=learning_rate,
        seed=seed,
    )
    return hedger.fit(prices, volatility=SIGMA)


def kabuto_run(
    cost: float, policy: str, args: argparse.Namespace, eval_prices: torch.Tensor
) -> dict:
    kabuto_train(cost, policy, 12345, 100, 2)  # warm-up, not timed
    times, prices = [], []
    for rep in range(args.repeats):
        start = time.perf_counter()
        hedger = kabuto_train(cost, policy, rep, args.paths, args.epochs)
        times.append(time.perf_counter() - start)
        prices.append(hedger.price(eval_prices, volatility=SIGMA))
    return {"times": times, "prices": prices, "price": statistics.fmean(prices)}


def time_to_price(
    cost: float,
    policy: str,
    args: argparse.Namespace,
    eval_prices: torch.Tensor,
    target: float,
    pfhedge_seconds: float,
) -> str:
    """Train kabuto for fewer Adam steps (same paths per step and learning rate; seeds 0 to
    `quality_seeds` - 1) and print the mean price; return the time ratio at the fewest steps
    whose mean price is at or below `target` (pfhedge's mean price after all its steps), or
    say that none did. Both sides are means over seeds, so one lucky training decides
    nothing; the ratio divides pfhedge's median training time by kabuto's."""
    reached = None
    for steps in FEWER_STEPS:
        if steps >= args.epochs:
            break
        prices, times = [], []
        for seed in range(args.quality_seeds):
            start = time.perf_counter()
            hedger = kabuto_train(cost, policy, seed, args.paths, steps)
            times.append(time.perf_counter() - start)
            prices.append(hedger.price(eval_prices, volatility=SIGMA))
        price, seconds = statistics.fmean(prices), statistics.median(times)
        cells = " ".join(f"{p:.5f}" for p in prices)
        print(f"{'':<22}{policy:<11}{price:>9.5f}   after {steps} steps ({cells}), {seconds:.1f} s")
        if reached is None and price <= target:
            reached = (steps, seconds)
    if reached is None:
        return f"not reached in fewer than {args.epochs} steps"
    steps, seconds = reached
    if steps == FEWER_STEPS[0]:
        return "no ratio (kabuto's policy starts there: a measure of its initialisation)"
    return f"{pfhedge_seconds / seconds:.1f}x ({steps} steps)"


def check_references(args: argparse.Namespace) -> None:
    """Train kabuto at its own learning rate (seeds 0 to `quality_seeds` - 1, the full number of
    steps and paths) and print the mean price against the issue's references, on
    `reference_paths` evaluation paths of their own (a price on 100,000 paths moves by a few
    1e-5 from one set of paths to another, as much as the margins checked)."""
    eval_prices = gbm_paths(
        args.reference_paths, STEPS, MATURITY, SPOT, 0.0, SIGMA, seed=REFERENCE_EVAL_SEED
    )
    print(
        f"\nThe issue's price references: kabuto at learning rate {OWN_LEARNING_RATE}, "
        f"{args.epochs} Adam steps x {args.paths:,} fresh paths, seeds 0-{args.quality_seeds - 1};"
        f" prices (+- one standard error) on {args.reference_paths:,} other fresh paths, with "
        "the Black-Scholes delta hedge on the same paths (no unwind cost)"
    )
    for cost, policy, reference, met in REFERENCES:
        prices, errors = [], []
        for seed in range(args.quality_seeds):
            hedger = kabuto_train(cost, policy, seed, args.paths, args.epochs, OWN_LEARNING_RATE)
            pnl = hedger.hedge(eval_prices, volatility=SIGMA).pnl
            prices.append(float(entropic_risk(pnl, AVERSION)))
            errors.append(price_standard_error(pnl, "entropic", AVERSION, 0.0))
        price = statistics.fmean(prices)
        cells = " ".join(f"{p:.6f}" for p in prices)
        verdict = "met" if met(price) else "NOT met"
        print(
            f"  cost {COST_LABELS[cost]:<5} {policy:<5} {price:.6f} +- {max(errors):.6f} ({cells});"
            f" delta hedge {delta_hedge_price(cost, eval_prices):.6f}; reference: {reference}: "
            f"{verdict}",
            flush=True,
        )


def delta_hedge_price(cost: float, eval_prices: torch.Tensor) -> float:
    result = hedge_with(
        BlackScholesDelta(),
        eval_prices,
        strike=STRIKE,
        maturity=MATURITY,
        volatility=SIGMA,
        cost=cost,
        unwind=False,
    )
    return float(entropic_risk(result.pnl, AVERSION))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="kabuto's timed trainings")
    parser.add_argument("--pfhedge-repeats", type=int, default=3, help="pfhedge's")
    parser.add_argument(
        "--quality-seeds", type=int, default=3, help="kabuto's shorter trainings per length"
    )
    parser.add_argument("--paths", type=int, default=10_000, help="paths per Adam step")
    parser.add_argument("--epochs", type=int, default=200, help="Adam steps")
    parser.add_argument("--eval-paths", type=int, default=100_000)
    parser.add_argument(
        "--reference-paths", type=int, default=1_000_000, help="evaluation paths of the references"
    )
    parser.add_argument("--skip-pfhedge", action="store_true")
    parser.add_argument(
        "--references-only", action="store_true", help="only the issue's price references"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    python = None if args.skip_pfhedge or args.references_only else ensure_pfhedge()
    print(
        f"European call S0 = K = {STRIKE:g}, sigma {SIGMA:g}, T = 20/250, {STEPS} steps, "
        f"entropic risk a = {AVERSION:g}; {args.epochs} Adam steps x {args.paths:,} fresh "
        f"paths; prices on {args.eval_paths:,} fresh paths; one torch thread; no cost to "
        "unwind the final holding (pfhedge's convention; kabuto unwind=False)"
    )
    eval_prices = gbm_paths(args.eval_paths, STEPS, MATURITY, SPOT, 0.0, SIGMA, seed=EVAL_SEED)
    if args.references_only:
        check_references(args)
        return
    delta_prices = {cost: delta_hedge_price(cost, eval_prices) for cost, _ in CASES}
    header = (
        f"{'setting':<12}{'library':<10}{'policy':<11}{'price':>9}{'vs delta hedge':>16}"
        f"{'train s (median)':>19}{'repeats':>9}   prices of the trainings"
    )
    print("\n" + header)
    ratios, to_quality = {}, {}
    for cost, policy in CASES:
        setting = f"cost {COST_LABELS[cost]}"
        runs = {"kabuto": kabuto_run(cost, policy, args, eval_prices)}
        if python is not None:
            runs["pfhedge"] = pfhedge_run(python, cost, policy, args)
            if runs["pfhedge"]["steps"] != STEPS:
                print(f"  (pfhedge simulated {runs['pfhedge']['steps']} steps, not {STEPS})")
        medians = {}
        for library, run in runs.items():
            medians[library] = statistics.median(run["times"])
            versus = run["price"] / delta_prices[cost] - 1.0
            cells = " ".join(f"{p:.5f}" for p in run["prices"])
            print(
                f"{setting:<12}{library:<10}{policy:<11}{run['price']:>9.5f}{versus:>+16.2%}"
                f"{medians[library]:>19.1f}{len(run['times']):>9}   {cells}",
                flush=True,
            )
        if "pfhedge" in medians:
            ratios[f"{setting} {policy}"] = medians["pfhedge"] / medians["kabuto"]
            to_quality[f"{setting} {policy}"] = time_to_price(
                cost, policy, args, eval_prices, runs["pfhedge"]["price"], medians["pfhedge"]
            )

    if ratios:
        listed = ", ".join(f"{name} {ratio:.1f}x" for name, ratio in ratios.items())
        print(f"\nper step (same work), pfhedge / kabuto: {listed}  (target: >= 3x)")
        listed = ", ".join(f"{name} {text}" for name, text in to_quality.items())
        print(f"time to pfhedge's {args.epochs}-step mean price, pfhedge / kabuto: {listed}")
    else:
        print("\npfhedge not run (--skip-pfhedge or not installed): no time ratio")
    check_references(args)


if __name__ == "__main__":
    main()
