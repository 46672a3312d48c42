"""GARCH microfoundations: fitted GARCH(1,1) against Nakagawa et al.'s analytic mapping.

For each point of a sweep over the AI-trader share p2 (fundamental share p1 = 0.2) and over the
fundamental share p1 (p2 = 0.2), simulate the noise / fundamental / AI trader market
(`kabuto.sim.artificial.garch_agents`, the paper's parameters otherwise) for 50 seeds of 10,000
periods after a 500-period burn-in, fit GARCH(1,1) with a constant mean and normal errors by
``arch`` (Sheppard's package) to each path, and print the fitted alpha and beta (median and 5-95%
range over seeds) beside the paper's analytic alpha = (rho k)^2 p2^2 gamma^2 and beta = (rho k)^2
p1^2 lambda^2. Paths that explode (volatility feeding on itself) are counted, not fitted. Then the
paper's Table 1 statistics (skewness, kurtosis, lag-1 autocorrelation of squared returns) over 50
paths of 1,000 periods. Then the same AI-share sweep through kabuto's order book: the
order-flow crowd of `examples/order_flow_market.toml` (its `ai_share` set per point) trading
against a market maker's ladder, 50 seeds of 3,000 steps (the first 500 dropped), GARCH fitted to
the step returns in percent (runs where a crowd order swept the whole ladder, i.e. the demand
exploded, are counted, not fitted), with the realised impact (the slope of the return on the crowd's
imbalance) beside the assumed rho = 4. Writes a plot of fitted alpha against the AI share (both
markets, HTML) to --out.

    python benchmarks/garch_microfoundations.py [--seeds 50] [--periods 10000] [--out runs/garch]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from arch import arch_model
from scipy import stats

from kabuto.errors import ConfigError
from kabuto.sim.artificial import parse_simulation, simulate
from kabuto.sim.artificial.garch_agents import GarchMarket, analytic_garch, simulate_garch_market
from kabuto.strict_config import read_toml

ORDER_FLOW_MARKET = Path(__file__).resolve().parents[1] / "examples" / "order_flow_market.toml"
BURN_IN = 500

AI_SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.45)
FUNDAMENTAL_SHARES = (0.0, 0.1, 0.2, 0.3)


def fit(returns: np.ndarray) -> tuple[float, float]:
    """GARCH(1,1) alpha and beta by Gaussian quasi-maximum likelihood (arch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes on a few paths
        result = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(
            disp="off"
        )
    return float(result.params["alpha[1]"]), float(result.params["beta[1]"])


def sweep(points, seeds: int, periods: int) -> list[dict]:
    rows = []
    for p1, p2 in points:
        market = GarchMarket(fundamental_share=p1, ai_share=p2)
        _, alpha, beta = analytic_garch(market)
        fits, exploded = [], 0
        for seed in range(seeds):
            try:
                path = simulate_garch_market(market, periods, seed=seed)
            except ConfigError:
                exploded += 1
                continue
            fits.append(fit(path["returns"]))
        fits = np.array(fits).reshape(-1, 2)
        rows.append(
            {"p1": p1, "p2": p2, "alpha": alpha, "beta": beta, "fits": fits, "exploded": exploded}
        )
        print(_row(rows[-1]), flush=True)
    return rows


def book_sweep(seeds: int) -> list[dict]:
    """The AI-share sweep through the order book (module docstring)."""
    raw = read_toml(ORDER_FLOW_MARKET)
    crowd = raw["agents"][0]
    rows = []
    for p2 in AI_SHARES:
        crowd["ai_share"] = p2
        config = parse_simulation(raw, source=f"{ORDER_FLOW_MARKET.name} (ai_share {p2})")
        rho = crowd.get("impact", 4.0)
        maker = raw["agents"][1]
        ladder = maker["levels"] * maker["volume"]  # units one side of the ladder holds
        result = simulate(config, seed=0, runs=seeds, log_orders=True)
        fits, slopes, collapsed = [], [], 0
        for run in range(seeds):
            closes = result.prices[run, :, 0, 0]
            returns = 100 * np.diff(np.log(closes))[BURN_IN:]
            orders = result.orders[run]
            crowd_orders = orders[orders["price"].isna()]  # its market orders
            if crowd_orders["volume"].max() > ladder:
                # an order swept the whole ladder: the book no longer gives the model's impact
                # (the demand is exploding); counted, not fitted
                collapsed += 1
                continue
            imbalance = np.zeros(len(closes))
            signs = np.where(crowd_orders["side"] == "buy", 1, -1)
            imbalance[crowd_orders["step"]] = signs * crowd_orders["volume"] / crowd["volume"]
            slopes.append(np.polyfit(imbalance[1:][BURN_IN:], returns, 1)[0] / rho)
            fits.append(fit(returns))
        _, alpha, beta = analytic_garch(GarchMarket(ai_share=p2))
        rows.append(
            {
                "p1": 0.2,
                "p2": p2,
                "alpha": alpha,
                "beta": beta,
                "fits": np.array(fits).reshape(-1, 2),
                "exploded": collapsed,
                "impact": np.array(slopes),
            }
        )
        print(_row(rows[-1]) + f" | impact / rho {_band(rows[-1]['impact'])}", flush=True)
    return rows


def _band(values: np.ndarray) -> str:
    if len(values) == 0:
        return f"{'-':>20}"
    q05, med, q95 = np.quantile(values, [0.05, 0.5, 0.95])
    return f"{med:7.3f} [{q05:5.3f}, {q95:5.3f}]"


def _row(row: dict) -> str:
    fits = row["fits"]
    return (
        f"{row['p1']:5.2f} {row['p2']:5.2f} | {row['alpha']:6.3f} {_band(fits[:, 0])} | "
        f"{row['beta']:6.3f} {_band(fits[:, 1])} | {row['exploded']:3d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--periods", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("runs/garch"))
    args = parser.parse_args()
    header = (
        "   p1    p2 | alpha: paper  fitted median [5%, 95%] | beta: paper  fitted median "
        "[5%, 95%] | exploded"
    )
    print(f"GARCH(1,1) fitted by arch on {args.seeds} seeds x {args.periods:,} periods\n{header}")
    ai = sweep([(0.2, p2) for p2 in AI_SHARES], args.seeds, args.periods)
    print()
    sweep([(p1, 0.2) for p1 in FUNDAMENTAL_SHARES], args.seeds, args.periods)

    print(f"\nTable 1 statistics, {args.seeds} paths of 1,000 periods (p1 0.2, p2 0.4)")
    table = []
    for seed in range(args.seeds):
        r = simulate_garch_market(GarchMarket(), 1000, seed=seed)["returns"]
        table.append(
            (
                stats.skew(r),
                stats.kurtosis(r, fisher=False),
                np.corrcoef(r[:-1] ** 2, r[1:] ** 2)[0, 1],
            )
        )
    table = np.array(table)
    paper = (-1.880, 9.230, 0.367)
    for name, values, value in zip(
        ("skewness", "kurtosis", "acf1(r^2)"), table.T, paper, strict=True
    ):
        print(f"  {name:<10} kabuto {_band(values)}   paper (one path) {value:7.3f}")

    print(
        f"\nThrough the order book ({ORDER_FLOW_MARKET.name}): {args.seeds} seeds x 3,000 steps, "
        f"the first {BURN_IN} dropped; 'exploded' counts runs where an order swept the whole "
        f"ladder\n{header} | realised impact / rho"
    )
    book = book_sweep(args.seeds)

    figure = go.Figure()
    shares = [row["p2"] for row in ai]
    medians = [np.median(row["fits"][:, 0]) if len(row["fits"]) else np.nan for row in ai]
    lows = [np.quantile(row["fits"][:, 0], 0.05) if len(row["fits"]) else np.nan for row in ai]
    highs = [np.quantile(row["fits"][:, 0], 0.95) if len(row["fits"]) else np.nan for row in ai]
    figure.add_scatter(x=shares, y=[row["alpha"] for row in ai], name="paper's mapping")
    figure.add_scatter(
        x=shares,
        y=[np.median(row["fits"][:, 0]) if len(row["fits"]) else np.nan for row in book],
        name="fitted through the order book (median over seeds)",
    )
    figure.add_scatter(
        x=shares,
        y=medians,
        name="fitted, book-free market (median over seeds)",
        error_y={
            "type": "data",
            "symmetric": False,
            "array": np.subtract(highs, medians),
            "arrayminus": np.subtract(medians, lows),
        },
    )
    figure.update_layout(
        title="GARCH alpha against the AI-trader share (fundamental share 0.2)",
        xaxis_title="AI-trader share p2",
        yaxis_title="alpha",
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "alpha_vs_ai_share.html"
    figure.write_html(path, include_plotlyjs=True)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
