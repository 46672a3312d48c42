"""`kabuto hedge`: train a deep hedger on simulated paths, compare it with baselines on fresh ones.

`run_hedge` takes a `HedgeConfig` (`kabuto.experiment.hedge_config`) and

1. for each of the ``hedger.trainings`` seeds (``HedgerConfig.training_seeds``: ``hedger.seed``
   first), simulates ``train_steps * batch_paths`` training paths of the market with that seed
   and trains a `DeepHedger` on them from initial weights of that seed, one Adam step per batch
   of fresh paths;
2. simulates ``evaluation.paths`` held-out paths with seed ``evaluation.seed`` and hedges the
   short claim on them with every trained hedger (``deep``, then ``deep_2``, ...: see
   `deep_names`) and each baseline: the Black-Scholes delta
   (``delta``), the Whalley-Wilmott band (``whalley_wilmott``, with the hedger's cost and
   aversion) and no hedge at all (``no_hedge``);
3. tabulates the risk of each hedger's P&L (`risk_table`; the spread of the trained hedgers'
   prices is `kabuto.report.hedging.training_spread`) and, given an output directory, writes
   it all atomically.

Paths (float32, zero drift and rate, so prices are martingales and the optimal risk of the
hedged short position is an indifference price; see `kabuto.hedging.hedger`) come from
`simulate_market`::

    gbm:    gbm_paths(n, steps, maturity, spot, 0.0, volatility, seed=seed)[..., 0]
    heston: heston_paths(n, steps, maturity, spot, v0, kappa, theta, xi, rho, seed=seed)
    merton: merton_paths(n, steps, maturity, spot, 0.0, volatility, jump_intensity,
                         jump_mean, jump_std, seed=seed)

The "volatility" the hedgers see (a network input, and the volatility of the Black-Scholes
delta and of the Whalley-Wilmott band) is the constant ``volatility`` for GBM, the
instantaneous volatility ``sqrt(v_t)`` of each Heston path, and for Merton the volatility of the
diffusion part alone: the jumps add variance that no feature shows, so there the delta hedge is
the Black-Scholes delta of the diffusion, not the jump model's own delta.

Output directory layout::

    report.html   the self-contained report (`kabuto.report.hedging`)
    risk.csv      the risk table, one row per hedger (`risk_table` for the columns)
    pnl.parquet   the P&L of every evaluation path: column ``path`` (0..N-1) and one float64
                  column per hedger (``deep``, ``deep_2``, ... and the baselines), in the risk
                  table's order
    config.toml   the resolved config (defaults filled in)

Everything is written into a temporary sibling directory and renamed into place at the end
(`kabuto.staging.staged_dir`), so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from kabuto.errors import ConfigError
from kabuto.experiment.hedge_config import HedgeConfig, MarketConfig
from kabuto.hedging.closed_form import black_scholes_price, heston_price, merton_price
from kabuto.hedging.hedger import (
    BlackScholesDelta,
    DeepHedger,
    HedgeFeatures,
    HedgePolicy,
    WhalleyWilmott,
    hedge_with,
)
from kabuto.hedging.pnl import HedgeResult, trades
from kabuto.hedging.risk import (
    MIN_EFFECTIVE_PATHS,
    MIN_TAIL_PATHS,
    entropic_risk,
    expected_shortfall,
    risk_measure,
)
from kabuto.report.hedging import render_report
from kabuto.settings import check_lognormal_jumps
from kabuto.sim.paths import gbm_paths, heston_paths, merton_paths
from kabuto.staging import check_out_dir, staged_dir

if TYPE_CHECKING:
    from kabuto.experiment.run import RunProgress

__all__ = [
    "HedgeRun",
    "NoHedge",
    "deep_names",
    "pnl_table",
    "price_standard_error",
    "quantile_standard_error",
    "reference_price",
    "risk_table",
    "run_hedge",
    "simulate_market",
    "turnover",
]

# Extra Merton series terms beyond the jump count's mean + 12 standard deviations, so that the
# series' truncation check passes for any intensity (the left-out mass is then far below 1e-12).
_MERTON_EXTRA_TERMS = 80
# Merton's series beyond this many jump counts: jumps so large or frequent that no simulated
# path resolves them (the terms are evaluated at once, 8 bytes each per claim).
_MERTON_MAX_TERMS = 100_000


@dataclass(frozen=True)
class HedgeRun:
    """What `run_hedge` produced.

    Attributes
    ----------
    config : HedgeConfig
        The resolved config.
    hedgers : dict of str -> DeepHedger
        The trained hedgers by name (`deep_names`), in the order of their seeds
        (``config.hedger.training_seeds()``).
    results : dict of str -> HedgeResult
        Each hedger's holdings and P&L on the evaluation paths (on the CPU): the trained ones
        first, then the baselines in the config's order.
    risk_table : DataFrame
        `risk_table` of `results`.
    losses : dict of str -> list of float
        Each trained hedger's training loss of every Adam step: the training risk measure of
        the step's batch P&L (for ``risk = "oce"`` the OCE objective at the step's cash amount
        ``w``).
    reference_price : float
        The model's price of the claim (`reference_price`).
    prices : Tensor
        The evaluation paths. Shape: (N, steps + 1).
    volatility : float or Tensor
        The volatility feature on them: a number, or shape (N, steps + 1) for Heston.
    train_paths : int
        Paths each training trains on (``train_steps * batch_paths``).
    out_dir : Path or None
        Where the outputs were written.
    """

    config: HedgeConfig
    hedgers: dict[str, DeepHedger]
    results: dict[str, HedgeResult]
    risk_table: pd.DataFrame
    losses: dict[str, list[float]]
    reference_price: float
    prices: Tensor
    volatility: float | Tensor
    train_paths: int
    out_dir: Path | None


def deep_names(trainings: int) -> list[str]:
    """Names of the trained hedgers: ``deep`` for the first (the only one of a single
    training), then ``deep_2``, ``deep_3``, ..."""
    return ["deep", *(f"deep_{k}" for k in range(2, trainings + 1))]


class NoHedge(HedgePolicy):
    """Never trade: the holding is 0 at every date (the unhedged short claim)."""

    def forward(self, features: HedgeFeatures) -> Tensor:
        return torch.zeros_like(features.spot)


# ------------------------------------------------------------------------------- market


def simulate_market(market: MarketConfig, n_paths: int, seed: int) -> tuple[Tensor, float | Tensor]:
    """Paths of the market and the volatility feature on them (see the module docstring).

    Returns
    -------
    prices : Tensor
        Shape: (n_paths, steps + 1), float32.
    volatility : float or Tensor
        ``market.volatility`` for GBM and Merton; ``sqrt(v_t)``, shape (n_paths, steps + 1),
        for Heston.
    """
    n, steps, horizon, spot = n_paths, market.steps, market.maturity, market.spot
    if market.model == "gbm":
        prices = gbm_paths(n, steps, horizon, spot, 0.0, market.volatility, seed=seed)
        return prices[..., 0], market.volatility
    if market.model == "heston":
        p = market.parameters()
        prices, variance = heston_paths(n, steps, horizon, spot, **p, seed=seed)
        return prices, variance.sqrt()
    jumps = {k: v for k, v in market.parameters().items() if k != "volatility"}
    prices = merton_paths(n, steps, horizon, spot, 0.0, market.volatility, **jumps, seed=seed)
    return prices, market.volatility


def reference_price(config: HedgeConfig) -> float:
    """The model's price of the claim at zero rate.

    Black-Scholes for GBM, `heston_price` for Heston and `merton_price` for Merton: the
    expected payoff under the simulated (martingale) law, which every hedge's mean P&L
    approaches (minus it) without costs.
    """
    m, claim = config.market, config.claim
    args = (m.spot, claim.strike, m.maturity, 0.0)
    if m.model == "gbm":
        return float(black_scholes_price(*args, m.volatility, claim.kind))
    if m.model == "heston":
        # One path first: its checks name an impossible market in one line, where the price's
        # integral would first warn over several (a maturity of 1e8)
        simulate_market(m, 1, 0)
        return float(heston_price(*args, m.v0, m.kappa, m.theta, m.xi, m.rho, claim.kind))
    check_lognormal_jumps("market", m.jump_mean, m.jump_std)
    mean = m.jump_intensity * m.maturity * max(1.0, math.exp(m.jump_mean + m.jump_std**2 / 2))
    jumps = (m.jump_intensity, m.jump_mean, m.jump_std)
    named = (
        f"market.jump_intensity = {m.jump_intensity:g}, jump_mean = {m.jump_mean:g} and "
        f"jump_std = {m.jump_std:g}"
    )
    if not _MERTON_EXTRA_TERMS + mean + 12 * math.sqrt(mean) <= _MERTON_MAX_TERMS:  # inf too
        raise ConfigError(
            f"{named} give about {mean:.3g} jumps (counted under the share measure) by maturity; "
            f"the claim's price would need more than {_MERTON_MAX_TERMS:,} terms of Merton's "
            "series: lower them"
        )
    terms = _MERTON_EXTRA_TERMS + math.ceil(mean + 12 * math.sqrt(mean))
    with np.errstate(all="ignore"):  # checked below, in one line rather than numpy warnings
        price = float(merton_price(*args, m.volatility, *jumps, claim.kind, terms=terms))
    if not math.isfinite(price):
        raise ConfigError(f"{named}: the claim's Merton price overflows; lower them")
    return price


# --------------------------------------------------------------------------------- risk table


def turnover(result: HedgeResult, unwind: bool) -> Tensor:
    """Units of the underlying traded per path: ``sum_t |delta_t - delta_{t-1}|``.

    From ``delta_{-1} = 0`` (the first purchase counts) and, with `unwind`, back to 0 at
    maturity: the trades the proportional cost is charged on. Shape: (N,).
    """
    return trades(result.positions, unwind).sum(dim=1)


def price_standard_error(pnl: Tensor, risk: str, aversion: float, risk_level: float) -> float:
    """Monte Carlo standard error of the risk of `pnl` (N,) as a price, by the delta method.

    Entropic risk ``(1 / a) log mean(exp(-a X))``: ``sd(exp(-a X)) / (a mean(exp(-a X))
    sqrt(N))``. Expected shortfall at level ``q`` (``"cvar"``, ``"oce"``), the mean of
    ``VaR + (L - VaR)^+ / (1 - q)`` over losses ``L = -X`` at the estimated VaR (whose own
    error does not move it to first order): ``sd((L - VaR)^+) / ((1 - q) sqrt(N))``.

    NaN where the estimate rests on too few paths for the delta method: fewer than
    `MIN_TAIL_PATHS` in the tail (``N (1 - q)``), or, for the entropic risk, fewer than
    `MIN_EFFECTIVE_PATHS` effective paths ``(sum w)^2 / sum w^2`` of the weights
    ``w = exp(-a X)`` (a large aversion puts all the weight on the worst few paths).
    """
    x = pnl.detach().double().cpu()
    n = x.shape[0]
    if risk == "entropic":
        y = -aversion * x
        weights = torch.exp(y - y.max())  # scaled by exp(-max): the ratios below are unchanged
        if weights.sum() ** 2 / (weights**2).sum() < MIN_EFFECTIVE_PATHS:
            return math.nan
        return float(weights.std() / (aversion * weights.mean() * math.sqrt(n)))
    if n * (1.0 - risk_level) < MIN_TAIL_PATHS:
        return math.nan
    loss = -x
    var = float(np.quantile(loss.numpy(), risk_level))
    return float((loss - var).clamp(min=0.0).std() / ((1.0 - risk_level) * math.sqrt(n)))


def quantile_standard_error(pnl: Tensor, p: float) -> float:
    """Standard error of the sample ``p`` quantile of `pnl` (N,), hence of a value at risk.

    The quantile's asymptotic standard deviation ``sqrt(p (1 - p) / N) / f(Q(p))`` with the
    sparsity ``1 / f`` estimated by the difference quotient of sample quantiles,
    ``(Q(p + h) - Q(p - h)) / (2 h)`` (Siddiqui 1960), at the Hall and Sheather (1988)
    bandwidth ``h = N^(-1/3) z^(2/3) (1.5 phi(z_p)^2 / (2 z_p^2 + 1))^(1/3)``, ``z`` the
    standard normal 0.975 quantile and ``z_p`` the ``p`` one (Koenker 2005, section 3.4).
    NaN with fewer than `MIN_TAIL_PATHS` paths beyond the quantile.
    """
    x = pnl.detach().double().cpu().numpy()
    n = x.size
    if n * min(p, 1.0 - p) < MIN_TAIL_PATHS:  # as `price_standard_error`'s tail
        return math.nan
    normal = statistics.NormalDist()
    z, z_p = normal.inv_cdf(0.975), normal.inv_cdf(p)
    h = (
        n ** (-1 / 3)
        * z ** (2 / 3)
        * (1.5 * normal.pdf(z_p) ** 2 / (2.0 * z_p**2 + 1.0)) ** (1 / 3)
    )
    low, high = max(p - h, 0.0), min(p + h, 1.0)
    sparsity = (np.quantile(x, high) - np.quantile(x, low)) / (high - low)
    return float(sparsity * math.sqrt(p * (1.0 - p) / n))


def risk_table(
    results: Mapping[str, HedgeResult],
    *,
    risk: str,
    aversion: float,
    risk_level: float,
    risk_levels: Sequence[float],
    unwind: bool,
) -> pd.DataFrame:
    """Risk of each hedger's P&L on the same paths, one row per hedger (index ``hedger``).

    Every statistic is of the per-path P&L ``X`` of the hedged short claim (gains - costs -
    payoff), in float64:

    * ``price``: the indifference price, the training risk measure of ``X`` (entropic risk
      with `aversion`, or the expected shortfall at `risk_level` for ``"cvar"`` and ``"oce"``);
      ``price_se`` its Monte Carlo standard error (`price_standard_error`);
    * ``mean_pnl`` and ``mean_pnl_se`` its standard error (``std_pnl / sqrt(N)``), and
      ``std_pnl`` (ddof 1);
    * ``var_<q>`` for each of `risk_levels`: value at risk, minus the ``1 - q`` quantile of
      ``X`` (linear interpolation between order statistics), and ``var_<q>_se`` its standard
      error (`quantile_standard_error`); ``es_<q>``: expected shortfall, minus the mean of the
      worst ``1 - q`` fraction (`expected_shortfall`), and ``es_<q>_se`` its standard error
      (`price_standard_error` at level ``q``);
    * ``entropic``: the entropic risk with `aversion`, and ``entropic_se`` its standard error;
    * ``mean_cost``: mean transaction costs paid; ``mean_turnover``: mean units traded
      (`turnover`); each with its standard error (``_se``), ``std / sqrt(N)``.
    """
    rows = {}
    for name, result in results.items():
        x = result.pnl.detach().double().cpu()
        row = {
            "price": float(risk_measure(x, risk, aversion, risk_level)),
            "price_se": price_standard_error(x, risk, aversion, risk_level),
            **_mean_with_se("mean_pnl", x),
            "std_pnl": float(x.std()),
        }
        for q in sorted(risk_levels):
            row[f"var_{q:g}"] = 0.0 - float(np.quantile(x.numpy(), 1.0 - q))  # never -0.0
            row[f"var_{q:g}_se"] = quantile_standard_error(x, 1.0 - q)
        for q in sorted(risk_levels):
            row[f"es_{q:g}"] = float(expected_shortfall(x, q))
            row[f"es_{q:g}_se"] = price_standard_error(x, "cvar", aversion, q)
        row["entropic"] = float(entropic_risk(x, aversion))
        row["entropic_se"] = price_standard_error(x, "entropic", aversion, risk_level)
        row |= _mean_with_se("mean_cost", result.costs)
        row |= _mean_with_se("mean_turnover", turnover(result, unwind))
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "hedger"
    return table


def _mean_with_se(name: str, values: Tensor) -> dict[str, float]:
    """The mean of `values` (N,) as `name`, and its standard error ``std / sqrt(N)`` as
    ``<name>_se``, in float64."""
    x = values.detach().double().cpu()
    return {name: float(x.mean()), f"{name}_se": float(x.std() / math.sqrt(x.shape[0]))}


# ------------------------------------------------------------------------------------- run


def _stage(progress: RunProgress | None, description: str, total: int | None = None) -> None:
    if progress is not None:
        progress.stage(description, total)


def _build_hedger(config: HedgeConfig, seed: int) -> DeepHedger:
    h, claim = config.hedger, config.claim
    return DeepHedger(
        claim.strike,
        config.market.maturity,
        kind=claim.kind,
        policy=h.policy,
        hidden_sizes=tuple(h.hidden_sizes),
        previous_input=h.previous_input,
        risk=h.risk,
        aversion=h.aversion,
        risk_level=h.risk_level,
        cost=h.cost,
        unwind=h.unwind,
        epochs=1,
        batch_size=h.batch_paths,
        learning_rate=h.learning_rate,
        seed=seed,
        device=h.device,
        num_threads=h.num_threads,
    )


def _baseline(name: str, config: HedgeConfig) -> HedgePolicy:
    if name == "delta":
        return BlackScholesDelta()
    if name == "whalley_wilmott":
        return WhalleyWilmott(config.hedger.cost, config.hedger.aversion)
    return NoHedge()


def _on_cpu(result: HedgeResult) -> HedgeResult:
    return HedgeResult(*(getattr(result, f.name).cpu() for f in fields(result)))


def run_hedge(
    config: HedgeConfig,
    out_dir: str | os.PathLike[str] | None,
    progress: RunProgress | None = None,
    *,
    source: str | None = None,
) -> HedgeRun:
    """Train the deep hedger, evaluate it and the baselines on fresh paths, write the outputs.

    Parameters
    ----------
    config : HedgeConfig
        A validated config (`kabuto.experiment.hedge_config.load_hedge_config`).
    out_dir : path or None
        Directory to write (see the module docstring), replaced as a whole; None writes nothing.
    progress : RunProgress, optional
        Told of each stage and of every training step and hedger evaluated.
    source : str, optional
        Where the config came from (its path), named in the report.

    Returns
    -------
    HedgeRun

    Raises
    ------
    KabutoError
        If `out_dir` cannot take the outputs (`kabuto.staging.check_out_dir`, before anything
        is computed), or for a setting the hedger rejects (such as ``device = "cuda"`` without
        a GPU).
    """
    target = None if out_dir is None else Path(out_dir).resolve()
    if target is not None:
        check_out_dir(target)
    h, market = config.hedger, config.market
    seeds = h.training_seeds()
    # Built before any work: the constructor checks the settings.
    hedgers = {
        name: _build_hedger(config, seed)
        for name, seed in zip(deep_names(h.trainings), seeds, strict=True)
    }
    reference = reference_price(config)
    n_train = h.train_steps * h.batch_paths
    with hedgers["deep"]._threads():  # the hedgers' thread count for the whole run
        for k, hedger in enumerate(hedgers.values(), start=1):
            of = f" {k} of {h.trainings}" if h.trainings > 1 else ""
            _stage(progress, f"simulate training paths{of}")
            train, train_vol = simulate_market(market, n_train, hedger.seed)
            _stage(progress, f"train{of}", h.train_steps)
            on_step = None if progress is None else (lambda _loss: progress.advance(1))
            hedger.fit(train, volatility=train_vol, on_step=on_step)
            del train, train_vol

        _stage(progress, "simulate evaluation paths")
        prices, vol = simulate_market(market, config.evaluation.paths, config.evaluation.seed)
        _stage(progress, "evaluate", len(hedgers) + len(config.evaluation.baselines))
        results = {}
        for name, hedger in hedgers.items():
            results[name] = _on_cpu(hedger.hedge(prices, volatility=vol))
            if progress is not None:
                progress.advance(1)
        for name in config.evaluation.baselines:
            results[name] = hedge_with(
                _baseline(name, config),
                prices,
                strike=config.claim.strike,
                maturity=market.maturity,
                volatility=vol,
                kind=config.claim.kind,
                cost=h.cost,
                unwind=h.unwind,
            )
            if progress is not None:
                progress.advance(1)
        table = risk_table(
            results,
            risk=h.risk,
            aversion=h.aversion,
            risk_level=h.risk_level,
            risk_levels=config.evaluation.risk_levels,
            unwind=h.unwind,
        )
    run = HedgeRun(
        config=config,
        hedgers=hedgers,
        results=results,
        risk_table=table,
        losses={name: hedger.step_losses_ for name, hedger in hedgers.items()},
        reference_price=reference,
        prices=prices,
        volatility=vol,
        train_paths=n_train,
        out_dir=target,
    )
    if target is not None:
        _stage(progress, "report")
        _write(run, target, source)
    return run


def pnl_table(run: HedgeRun) -> pd.DataFrame:
    """The pnl.parquet table: ``path`` and each hedger's P&L per evaluation path (float64)."""
    columns = {"path": np.arange(run.prices.shape[0], dtype=np.int64)}
    for name, result in run.results.items():
        columns[name] = result.pnl.double().numpy()
    return pd.DataFrame(columns)


def _write(run: HedgeRun, out_dir: Path, source: str | None) -> None:

    page = render_report(
        run, source=source
    )  # before touching the disk: a failure leaves nothing behind
    pnl = pnl_table(run)
    with staged_dir(out_dir) as staging:
        (staging / "report.html").write_text(page, encoding="utf-8")
        run.risk_table.to_csv(staging / "risk.csv")
        pnl.to_parquet(staging / "pnl.parquet", index=False)
        (staging / "config.toml").write_text(run.config.to_toml(), encoding="utf-8")
