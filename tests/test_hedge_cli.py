"""`kabuto hedge`: outputs, the risk table against independent computations, one-line errors.

Tiny runs (2,000 evaluation paths, 20 Adam steps of 200 paths; two trainings on GBM, one on
the others) on each market model; the baselines' rows are recomputed here from the path
generators and the hedging primitives on the same seeded paths, the trainings from DeepHedger
itself, and the risk measures of the written P&L reproduce the written prices.
"""

from __future__ import annotations

import math
import os
import statistics
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from kabuto.cli.main import app
from kabuto.errors import OutputDirError
from kabuto.experiment.hedge import (
    deep_names,
    price_standard_error,
    quantile_standard_error,
    run_hedge,
    simulate_market,
)
from kabuto.experiment.hedge_config import (
    HedgeConfig,
    estimated_memory,
    load_hedge_config,
    parse_hedge_config,
)
from kabuto.hedging import closed_form
from kabuto.hedging.hedger import BlackScholesDelta, DeepHedger, WhalleyWilmott, hedge_with
from kabuto.hedging.risk import entropic_risk, expected_shortfall
from kabuto.report.hedging import training_spread
from kabuto.settings import derived_seed
from kabuto.sim.paths import gbm_paths, heston_paths, merton_paths
from kabuto.staging import MARKER, staged_dir

from helpers import assert_offline

runner = CliRunner()

torch.set_num_threads(1)

N_EVAL = 2000
EVAL_SEED = 7
TRAIN = {
    "train_steps": 20,
    "batch_paths": 200,
    "hidden_sizes": [16, 16],
    "num_threads": 1,
    "trainings": 1,
}
EVAL = f"[evaluation]\npaths = {N_EVAL}\nseed = {EVAL_SEED}\n"

# One run per model, each with another risk measure and cost, so that the command's every
# branch is exercised: (market table, hedger table, the risk measure's key in the hedger).
CONFIGS = {
    "gbm": (
        '[market]\nmodel = "gbm"\nvolatility = 0.25\n',
        'risk = "cvar"\nrisk_level = 0.9\ncost = 1e-3\ntrainings = 2\n',
    ),
    "heston": (
        '[market]\nmodel = "heston"\nv0 = 0.05\nkappa = 2.0\ntheta = 0.04\nxi = 0.5\nrho = -0.6\n',
        'risk = "entropic"\naversion = 2.0\ncost = 1e-4\nunwind = false\n',
    ),
    "merton": (
        '[market]\nmodel = "merton"\nvolatility = 0.2\njump_intensity = 20.0\n'
        "jump_mean = -0.02\njump_std = 0.05\n",
        'risk = "oce"\nrisk_level = 0.8\ncost = 0.0\n[claim]\nkind = "put"\nstrike = 1.02\n',
    ),
}
FILES = ["config.toml", "pnl.parquet", "report.html", "risk.csv"]


def _hedger_table(extra: str) -> str:
    lines = [f"{key} = {value}" for key, value in TRAIN.items() if key not in extra]
    return "[hedger]\n" + "\n".join(lines) + "\n" + extra


def _config_text(model: str) -> str:
    market, hedger = CONFIGS[model]
    return market + _hedger_table(hedger) + EVAL


def _write(tmp_path: Path, text: str | bytes, name: str = "hedge.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module", params=list(CONFIGS))
def cli_run(request, tmp_path_factory):
    model = request.param
    folder = tmp_path_factory.mktemp(model)
    config = _write(folder, _config_text(model))
    out = folder / "nested" / "out"
    result = runner.invoke(app, ["hedge", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return model, load_hedge_config(config), out, result


def _evaluation_paths(config: HedgeConfig) -> tuple[torch.Tensor, float | torch.Tensor]:
    """The evaluation paths and volatility input, rebuilt from the path generators."""
    m, n, seed = config.market, config.evaluation.paths, config.evaluation.seed
    if m.model == "gbm":
        return gbm_paths(n, m.steps, m.maturity, m.spot, 0.0, m.volatility, seed=seed)[..., 0], (
            m.volatility
        )
    if m.model == "heston":
        prices, variance = heston_paths(
            n, m.steps, m.maturity, m.spot, m.v0, m.kappa, m.theta, m.xi, m.rho, seed=seed
        )
        return prices, variance.sqrt()  # the instantaneous volatility
    prices = merton_paths(
        n,
        m.steps,
        m.maturity,
        m.spot,
        0.0,
        m.volatility,
        m.jump_intensity,
        m.jump_mean,
        m.jump_std,
        seed=seed,
    )
    return prices, m.volatility  # the diffusion volatility


def _risk(config: HedgeConfig, pnl: torch.Tensor) -> float:
    h = config.hedger
    if h.risk == "entropic":
        return float(entropic_risk(pnl, h.aversion))
    return float(expected_shortfall(pnl, h.risk_level))


# ------------------------------------------------------------------------------ a whole run


def test_writes_every_output_and_prints_the_table(cli_run):
    model, config, out, result = cli_run
    assert sorted(p.name for p in out.iterdir()) == [MARKER, *FILES]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left
    for name in FILES:
        assert str(out / name) in result.stdout
    for label in ("deep (band)", "Black-Scholes delta", "Whalley-Wilmott band", "no hedge"):
        assert label in result.stdout
    # piped (CliRunner is not a terminal): no progress bar, no cursor control
    assert "\x1b" not in result.output and "simulate training paths" not in result.output
    assert result.stderr == ""
    # the resolved config reloads to the same config, with the model's defaults filled in
    assert load_hedge_config(out / "config.toml") == config
    written = tomllib.loads((out / "config.toml").read_text())
    assert written["market"]["model"] == model and "train_steps" in written["hedger"]


def test_risk_table_rows_and_columns(cli_run):
    _, config, out, _ = cli_run
    table = pd.read_csv(out / "risk.csv", index_col="hedger")
    deep = deep_names(config.hedger.trainings)
    assert list(table.index) == [*deep, "delta", "whalley_wilmott", "no_hedge"]
    levels = ["0.5", "0.9", "0.99"]
    assert list(table.columns) == [
        "price",
        "price_se",
        "mean_pnl",
        "mean_pnl_se",
        "std_pnl",
        *(f"var_{q}{se}" for q in levels for se in ("", "_se")),
        *(f"es_{q}{se}" for q in levels for se in ("", "_se")),
        "entropic",
        "entropic_se",
        "mean_cost",
        "mean_cost_se",
        "mean_turnover",
        "mean_turnover_se",
    ]
    assert np.isfinite(table.to_numpy()).all()
    assert (table["price_se"] > 0).all()
    no_hedge = table.loc["no_hedge"]
    assert no_hedge["mean_cost"] == 0 and no_hedge["mean_turnover"] == 0
    # monotone in the level: VaR and ES rise with it, and ES >= VaR at each level
    assert (np.diff(table[[f"es_{q}" for q in levels]].to_numpy(), axis=1) >= 0).all()
    for q in levels:
        assert (table[f"es_{q}"] >= table[f"var_{q}"] - 1e-12).all()


def test_baseline_rows_match_an_independent_computation(cli_run):
    """Rebuild the evaluation paths and the delta and Whalley-Wilmott hedges from scratch."""
    _, config, out, _ = cli_run
    table = pd.read_csv(out / "risk.csv", index_col="hedger")
    written = pd.read_parquet(out / "pnl.parquet")
    prices, vol = _evaluation_paths(config)
    h, claim = config.hedger, config.claim
    common = dict(
        strike=claim.strike,
        maturity=config.market.maturity,
        volatility=vol,
        kind=claim.kind,
        cost=h.cost,
        unwind=h.unwind,
    )
    baselines = {
        "delta": BlackScholesDelta(),
        "whalley_wilmott": WhalleyWilmott(h.cost, h.aversion),
    }
    for name, policy in baselines.items():
        mine = hedge_with(policy, prices, **common)
        pnl = mine.pnl.double()
        row = table.loc[name]
        assert row["price"] == pytest.approx(_risk(config, pnl), rel=1e-12)
        assert row["es_0.99"] == pytest.approx(float(expected_shortfall(pnl, 0.99)), rel=1e-12)
        excess = np.maximum(-pnl.numpy() - np.quantile(-pnl.numpy(), 0.99), 0.0)  # (L - VaR)^+
        es_se = excess.std(ddof=1) / (0.01 * math.sqrt(N_EVAL))
        assert row["es_0.99_se"] == pytest.approx(es_se, rel=1e-9)
        # the VaR at 0.9 is minus the 0.1 quantile of X: its error is that quantile's
        assert row["var_0.9_se"] == pytest.approx(quantile_standard_error(pnl, 0.1), rel=1e-12)
        assert row["var_0.9"] == pytest.approx(-float(np.quantile(pnl.numpy(), 0.1)), rel=1e-12)
        assert row["entropic"] == pytest.approx(float(entropic_risk(pnl, h.aversion)), rel=1e-12)
        weights = np.exp(-h.aversion * pnl.numpy())  # the entropic risk's delta method
        entropic_se = weights.std(ddof=1) / (h.aversion * weights.mean() * math.sqrt(N_EVAL))
        assert row["entropic_se"] == pytest.approx(entropic_se, rel=1e-9)
        assert row["mean_pnl"] == pytest.approx(float(pnl.mean()), rel=1e-12)
        assert row["mean_pnl_se"] == pytest.approx(pnl.numpy().std(ddof=1) / math.sqrt(N_EVAL))
        costs = mine.costs.double().numpy()
        assert row["mean_cost"] == pytest.approx(costs.mean(), rel=1e-9)
        assert row["mean_cost_se"] == pytest.approx(costs.std(ddof=1) / math.sqrt(N_EVAL))
        np.testing.assert_array_equal(written[name].to_numpy(), pnl.numpy())
    payoff = mine.payoff.double()
    assert table.loc["no_hedge", "mean_pnl"] == pytest.approx(-float(payoff.mean()), rel=1e-12)


def test_deep_pnl_reproduces_its_price(cli_run):
    _, config, out, result = cli_run
    table = pd.read_csv(out / "risk.csv", index_col="hedger")
    written = pd.read_parquet(out / "pnl.parquet")
    names = deep_names(config.hedger.trainings)
    assert list(written.columns) == ["path", *names, "delta", "whalley_wilmott", "no_hedge"]
    assert written["path"].tolist() == list(range(N_EVAL))
    for name in names:
        deep = torch.tensor(written[name].to_numpy())
        assert table.loc[name, "price"] == pytest.approx(_risk(config, deep), rel=1e-12)
        assert table.loc[name, "std_pnl"] == pytest.approx(float(deep.std()), rel=1e-12)
    printed = " ".join(result.stdout.split())
    if len(names) > 1:  # the seed's part of the error, printed and in the report
        spread = float(np.std(table.loc[names, "price"], ddof=1))
        assert f"s.d. {spread:.2g}" in printed
        assert f"s.d. {spread:.2g}" in (out / "report.html").read_text()
        assert "deep (band) #2" in printed
    else:
        assert "is one training (seed 0)" in printed and "#1" not in printed


def test_mean_pnl_is_minus_the_reference_price(cli_run):
    """Prices are martingales: any hedge's gains average 0, so the mean P&L before costs is
    minus the expected payoff, the model's reference price (Black-Scholes, Heston, Merton)."""
    _, config, out, _ = cli_run
    table = pd.read_csv(out / "risk.csv", index_col="hedger")
    m, claim = config.market, config.claim
    args = (m.spot, claim.strike, m.maturity, 0.0)
    if m.model == "gbm":
        reference = closed_form.black_scholes_price(*args, m.volatility, claim.kind)
    elif m.model == "heston":
        reference = closed_form.heston_price(*args, m.v0, m.kappa, m.theta, m.xi, m.rho, claim.kind)
    else:
        jumps = (m.jump_intensity, m.jump_mean, m.jump_std)
        reference = closed_form.merton_price(*args, m.volatility, *jumps, claim.kind)
    assert f"Reference price:</b> {reference:.6g}" in (out / "report.html").read_text()
    delta = table.loc["delta"]
    noise = delta["std_pnl"] / math.sqrt(N_EVAL)
    assert delta["mean_pnl"] + delta["mean_cost"] == pytest.approx(-reference, abs=4 * noise)


def test_report_sections_and_offline(cli_run):
    model, _, out, _ = cli_run
    page = (out / "report.html").read_text(encoding="utf-8")
    for anchor in ("setting", "risk", "pnl", "hedge-ratio", "training"):
        assert f'<section id="{anchor}">' in page
    assert 'id="simulation-caveat"' in page and "simulated from the stated model" in page
    assert page.count('class="kabuto-fig"') == 4  # two P&L views, hedge ratio, training loss
    assert f"seed {EVAL_SEED}" in page and f"{N_EVAL:,} fresh paths" in page
    assert {"gbm": "Black-Scholes price", "heston": "Heston price", "merton": "Merton price"}[
        model
    ] in page
    # the band baseline's aversion is the hedger's, and its formula entropic whatever the measure
    aversion = {"gbm": "1", "heston": "2", "merton": "1"}[model]
    assert f"with the cost above and risk aversion {aversion} (hedger.aversion" in page
    entropic = model == "heston"
    assert ("the band&#x27;s formula is for exponential utility" in page) is not entropic
    assert_offline(page)


# ------------------------------------------------------------------------- run_hedge itself


def _small(**hedger) -> HedgeConfig:
    return parse_hedge_config(
        {
            "hedger": {**TRAIN, **hedger},
            "evaluation": {"paths": 500, "seed": 3, "baselines": ["delta"]},
        }
    )


class _Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None]] = []
        self.advanced: dict[str, int] = {}

    def stage(self, description: str, total: int | None = None) -> None:
        self.stages.append((description, total))
        self.advanced[description] = 0

    def advance(self, steps: int) -> None:
        self.advanced[self.stages[-1][0]] += steps


@pytest.mark.parametrize("risk", ["entropic", "cvar", "oce"])
def test_progress_and_step_losses(risk):
    progress = _Recorder()
    run = run_hedge(_small(risk=risk, cost=1e-4), None, progress)
    steps = TRAIN["train_steps"]
    assert ("train", steps) in progress.stages and progress.advanced["train"] == steps
    assert progress.advanced["evaluate"] == 2  # the deep hedger and the delta baseline
    losses = run.losses["deep"]
    assert list(run.losses) == ["deep"] and len(losses) == steps and run.out_dir is None
    if risk != "oce":  # DeepHedger's one epoch loss is the mean of its equal-sized batches
        assert np.mean(losses) == pytest.approx(run.hedgers["deep"].losses_[0], rel=1e-6)
    else:  # the OCE objective at w bounds the batch's expected shortfall from above
        assert min(losses) > 0


def test_each_training_is_deep_hedger_on_its_own_seed():
    """Three trainings: the first is the one-training run, and each is DeepHedger trained on
    the paths of its seed (`hedger.seed`, then seeds derived from it), rebuilt here."""
    config = _small(trainings=3, seed=11, policy="mlp")
    progress = _Recorder()
    run = run_hedge(config, None, progress)
    seeds = [11, derived_seed(11, 1), derived_seed(11, 2)]
    assert len(set(seeds)) == 3 and all(0 <= s < 2**63 for s in seeds)
    assert list(run.hedgers) == ["deep", "deep_2", "deep_3"] == deep_names(3)
    assert [hedger.seed for hedger in run.hedgers.values()] == seeds
    assert [stage for stage, _ in progress.stages if stage.startswith("train")] == [
        "train 1 of 3",
        "train 2 of 3",
        "train 3 of 3",
    ]
    assert progress.advanced["evaluate"] == 4
    h = config.hedger
    prices, _ = simulate_market(config.market, config.evaluation.paths, config.evaluation.seed)
    for name, seed in zip(run.hedgers, seeds, strict=True):
        train, vol = simulate_market(config.market, h.train_steps * h.batch_paths, seed)
        same = {key: getattr(h, key) for key in ("risk", "aversion", "cost", "unwind")}
        network = {"hidden_sizes": (16, 16), "batch_size": 200, "learning_rate": h.learning_rate}
        mine = DeepHedger(1.0, 0.08, policy="mlp", epochs=1, seed=seed, **same, **network)
        mine.fit(train, volatility=vol)
        assert run.losses[name] == mine.step_losses_
        torch.testing.assert_close(run.results[name].pnl, mine.hedge(prices, volatility=vol).pnl)
    single = run_hedge(_small(trainings=1, seed=11, policy="mlp"), None)
    torch.testing.assert_close(single.results["deep"].pnl, run.results["deep"].pnl)
    spread = training_spread(run.risk_table, list(run.hedgers))
    deep = run.risk_table.loc[["deep", "deep_2", "deep_3"], "price"]
    assert spread.n == 3 and spread.sd == pytest.approx(float(np.std(deep, ddof=1)), rel=1e-12)
    assert (spread.low, spread.mean, spread.high) == pytest.approx(
        (deep.min(), deep.mean(), deep.max()), rel=1e-12
    )
    assert math.isnan(training_spread(single.risk_table, ["deep"]).sd)


def test_delta_hedge_price_is_black_scholes_with_many_steps():
    """Without costs and with 200 rebalancing dates the delta hedge nearly replicates the
    call: its entropic price on 20,000 paths is the Black-Scholes price within a few of its
    standard errors (plus the tiny a var / 2 of the hedging error)."""
    config = parse_hedge_config(
        {
            "market": {"steps": 200},
            "hedger": {**TRAIN, "train_steps": 1, "cost": 0.0, "aversion": 0.5},
            "evaluation": {"paths": 20_000, "seed": 5, "baselines": ["delta", "no_hedge"]},
        }
    )
    run = run_hedge(config, None)
    delta = run.risk_table.loc["delta"]
    bs = closed_form.black_scholes_price(1.0, 1.0, 0.08, 0.0, 0.2)
    assert run.reference_price == pytest.approx(bs, rel=1e-12)
    bias = 0.5 * delta["std_pnl"] ** 2 / 2
    assert abs(delta["price"] - bs) < 4 * delta["price_se"] + bias
    assert delta["price_se"] < 0.1 * run.risk_table.loc["no_hedge", "price_se"]  # it hedges


@pytest.mark.parametrize(("p", "n"), [(0.1, 1000), (0.5, 20_000), (0.01, 5000), (0.9, 300)])
def test_value_at_risk_error_is_the_siddiqui_estimate_at_the_hall_sheather_bandwidth(p, n):
    """Written out from Koenker (2005), section 3.4 (R quantreg's ``bandwidth.rq(p, n,
    hs=TRUE)`` with alpha 0.05): ``h = n^(-1/3) z_0.975^(2/3) (1.5 phi(z_p)^2 / (2 z_p^2 +
    1))^(1/3)``, sparsity ``(Q(p + h) - Q(p - h)) / (2 h)``, error ``sparsity sqrt(p (1 - p) /
    n)``; p is the quantile's probability (0.1 for the VaR at 0.9), not the VaR's level."""
    normal = statistics.NormalDist()
    z_p = normal.inv_cdf(p)
    h = n ** (-1 / 3) * normal.inv_cdf(0.975) ** (2 / 3)
    h *= (1.5 * normal.pdf(z_p) ** 2 / (2 * z_p**2 + 1)) ** (1 / 3)
    x = np.random.default_rng(3).standard_t(5, size=n)
    sparsity = (np.quantile(x, p + h) - np.quantile(x, p - h)) / (2 * h)
    expected = sparsity * math.sqrt(p * (1 - p) / n)
    assert quantile_standard_error(torch.from_numpy(x), p) == pytest.approx(expected, rel=1e-12)


def test_standard_error_matches_the_spread_over_replications():
    """The standard errors against the spread of 300 independent estimates: the delta method's
    for the entropic risk and the expected shortfall (at 0.9 and 0.99), the quantile's for the
    value at risk (at 0.5 and 0.9; at 0.99 the 10 tail paths of 1,000 are too few for it).

    Losses Gamma(2, scale 1/40): skewed, and with aversion 5 the weights exp(5 L) have the
    finite variance the delta method needs.
    """
    rng = np.random.default_rng(0)
    pnl = -torch.from_numpy(rng.gamma(2.0, 1 / 40, size=(300, 1000)))

    def se(risk: str, level: float):
        return lambda x: price_standard_error(x, risk, 5.0, level)

    cases = {
        "entropic": (lambda x: entropic_risk(x, 5.0), se("entropic", 0.9)),
        "es 0.9": (lambda x: expected_shortfall(x, 0.9), se("cvar", 0.9)),
        "es 0.99": (lambda x: expected_shortfall(x, 0.99), se("cvar", 0.99)),
        "var 0.5": (lambda x: np.quantile(x, 0.5), lambda x: quantile_standard_error(x, 0.5)),
        "var 0.9": (lambda x: np.quantile(x, 0.1), lambda x: quantile_standard_error(x, 0.1)),
    }
    for name, (statistic, error) in cases.items():
        estimates = [float(statistic(x)) for x in pnl]
        errors = [error(x) for x in pnl]
        assert np.mean(errors) == pytest.approx(np.std(estimates, ddof=1), rel=0.15), name


def test_estimates_on_too_few_paths_have_no_standard_error():
    """Where the delta method's error is far too small, it is NaN ("n/a"), not a number.

    Tail estimates need 10 paths beyond the level (N (1 - q)); the entropic price needs 100
    effective paths (sum w)^2 / sum w^2 of its weights w = exp(-a X), which a large aversion
    puts on the worst few paths (there the s.e. was 1/a whatever the data).
    """
    x = torch.from_numpy(np.random.default_rng(5).normal(0.0, 0.05, 999))
    assert math.isnan(price_standard_error(x, "cvar", 1.0, 0.99))  # 9.99 tail paths
    assert math.isnan(quantile_standard_error(x, 0.01))
    assert math.isfinite(price_standard_error(torch.cat([x, x[:1]]), "cvar", 1.0, 0.99))
    assert math.isfinite(quantile_standard_error(torch.cat([x, x[:1]]), 0.01))

    def effective_paths(a: float) -> float:
        w = np.exp(-a * (x.numpy() - x.numpy().min()))
        return w.sum() ** 2 / (w**2).sum()

    assert effective_paths(1.0) > 900 and effective_paths(300.0) < 100 < effective_paths(30.0)
    assert math.isfinite(price_standard_error(x, "entropic", 30.0, 0.9))
    assert math.isnan(price_standard_error(x, "entropic", 300.0, 0.9))


def test_a_failed_write_leaves_the_earlier_run_intact(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with staged_dir(out) as earlier:
        (earlier / "risk.csv").write_text("earlier run")
    config = _small()

    def broken(self):
        raise OSError("disk full")

    monkeypatch.setattr(HedgeConfig, "to_toml", broken)  # the last file written
    with pytest.raises(OutputDirError, match=r"cannot write here \(disk full\)"):
        run_hedge(config, out)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "risk.csv"]
    assert (out / "risk.csv").read_text() == "earlier run"


# ---------------------------------------------------------------------------------- errors


def _fails_cleanly(result, out: Path, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message
    assert not out.exists() and not out.parent.exists(), "a failed run wrote something"
    return message


GOOD = _config_text("gbm")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (GOOD.replace("cost = 1e-3", "costs = 1e-3"), ["unknown key 'hedger.costs'"]),
        (GOOD.replace("cost = 1e-3", 'cost = "1e-3"'), ["hedger.cost", "valid number"]),
        (GOOD.replace("cost = 1e-3", "cost = -1e-3"), ["hedger.cost", "greater than or equal"]),
        (GOOD.replace('model = "gbm"', 'model = "bs"'), ["market.model", "'heston'"]),
        (GOOD.replace("risk_level = 0.9", "risk_level = 1.5"), ["hedger.risk_level", "less"]),
        (GOOD + "risk_levels = [0.5, 1.0]\n", ["evaluation.risk_levels.1"]),
        (GOOD.replace("volatility = 0.25", "kappa = 1.0"), ["market.kappa", "'heston'"]),
        (GOOD.replace("[market]", "[market]\nsteps = 2.5"), ["market.steps", "integer"]),
        (GOOD.replace("seed = 7", "seed = 0"), ["evaluation.seed", "fresh"]),
        (  # the second training's seed, derived from hedger.seed = 0, draws paths too
            GOOD.replace("seed = 7", f"seed = {derived_seed(0, 1)}"),
            [f"evaluation.seed = {derived_seed(0, 1)}", "seed of a training", "fresh"],
        ),
        (GOOD.replace("trainings = 2", "trainings = 0"), ["hedger.trainings", "greater"]),
        (GOOD.replace("trainings = 2", "trainings = 101"), ["hedger.trainings", "less"]),
        (GOOD + "[extra]\n", ["unknown key 'extra'"]),
        ("[market\n", ["not valid TOML"]),
        # levels: none within 1e-6 of 0 or 1 (1 - 1e-300 is 1), and none named alike
        (GOOD + "risk_levels = [1e-300]\n", ["evaluation.risk_levels.0 = 1e-300", "greater"]),
        (
            GOOD + "risk_levels = [0.9, 0.9000001]\n",
            ["levels 0.9, 0.9000001 are all named 0.9", "6 significant digits"],
        ),
        # prices the float32 training holds, and claims not absurdly far from the money
        (GOOD + "[claim]\nstrike = 1e300\n", ["claim.strike = 1e+300", "less than or equal"]),
        (
            GOOD + "[claim]\nstrike = 1e-9\n",
            ["claim.strike = 1e-09 is 1e-09 times market.spot = 1", "within 1e-06 to 1e+06"],
        ),
        (
            GOOD.replace("cost = 1e-3", "cost = 1e-3\nlearning_rate = 1e38"),
            ["hedger.learning_rate = 1e+38", "less than or equal to 1000000000000000"],
        ),
        # Merton jumps whose price overflows, or whose series never ends: one line, no warning
        (
            _config_text("merton").replace("jump_mean = -0.02", "jump_mean = 800.0"),
            ["market: jump_mean=800.0 and jump_std=0.05", "below 700"],
        ),
        (
            _config_text("merton").replace("jump_std = 0.05", "jump_std = 5.0"),
            ["market.jump_intensity = 20, jump_mean = -0.02 and jump_std = 5", "series"],
        ),
        # the paths' checks come before the reference price, whose integral warned first
        (
            _config_text("heston").replace('model = "heston"', 'model = "heston"\nmaturity = 1e8'),
            ["heston_paths: kappa=2 with steps of 5e+06 years"],
        ),
        # values no run can use: errors naming the key, not overflows, NaN or MemoryError
        (
            GOOD.replace("cost = 1e-3", "cost = 1e10"),
            ["hedger.cost = 10000000000.0", "less than 1"],
        ),
        (GOOD.replace("cost = 1e-3", "cost = 1.0"), ["hedger.cost = 1.0", "less than 1"]),
        (
            GOOD.replace("cost = 1e-3", "cost = 1e-3\naversion = 1e308"),
            ["hedger.aversion = 1e+308", "less than or equal to 1000000"],
        ),
        (
            GOOD.replace("[hedger]", "[hedger]\nseed = 100000000000000000000000"),
            ["hedger.seed = 100000000000000000000000", "less than or equal to 9223372036854775807"],
        ),
        (
            GOOD.replace("seed = 7", "seed = 18446744073709551616"),
            ["evaluation.seed = 18446744073709551616", "less than or equal to 9223372036854775807"],
        ),
        (
            GOOD.replace("num_threads = 1", "num_threads = 100000"),
            ["hedger.num_threads = 100000", "less than or equal to 1024"],
        ),
        (
            GOOD.replace("train_steps = 20", "train_steps = 1000000000"),
            ["hedger.train_steps = 1000000000", "less than or equal to 10000000"],
        ),
        (
            GOOD.replace("[market]", "[market]\nsteps = 1000000000"),
            ["the training would need about", "TiB of memory", "market.steps = 1000000000"],
        ),
        (
            GOOD.replace(f"paths = {N_EVAL}", "paths = 1000000000000"),
            ["the evaluation would need about", "evaluation.paths = 1000000000000", "1 TiB"],
        ),
        (
            GOOD.replace("batch_paths = 200", "batch_paths = 1000000000"),
            ["the training would need about", "hedger.batch_paths = 1000000000"],
        ),
        (
            GOOD.replace("[16, 16]", "[16, 1000000000]"),
            ["the training would need about", "hedger.hidden_sizes = [16, 1000000000]"],
        ),
        (
            GOOD.replace("[16, 16]", "[1000000, 1000000]"),
            ["the network would need about", "hedger.hidden_sizes = [1000000, 1000000]"],
        ),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, text, needles):
    config = _write(tmp_path, text)
    out = tmp_path / "a" / "out"
    result = runner.invoke(app, ["hedge", str(config), "--out", str(out)])
    _fails_cleanly(result, out, str(config), *needles)


def test_a_diverging_training_is_a_one_line_error(tmp_path):
    """A learning rate that sends the loss to NaN: an error, not a report of NaN prices."""
    config = _write(tmp_path, GOOD.replace("cost = 1e-3", "cost = 1e-3\nlearning_rate = 1e30"))
    out = tmp_path / "a" / "out"
    result = runner.invoke(app, ["hedge", str(config), "--out", str(out)])
    _fails_cleanly(
        result, out, "DeepHedger.fit", "Adam step", "the training diverged", "learning_rate=1e+30"
    )


def test_the_bounds_pass_every_realistic_run():
    """Large but runnable settings, and the bounds themselves, are accepted."""
    config = parse_hedge_config(
        {
            "market": {"steps": 250},
            "hedger": {
                "hidden_sizes": [256, 256, 256, 256],
                "aversion": 1e6,
                "cost": 0.5,
                "seed": 2**63 - 1,
                "num_threads": 1024,
                "train_steps": 1000,
                "batch_paths": 10_000,
            },
            "evaluation": {"paths": 1_000_000, "seed": 0},
        }
    )
    assert config.hedger.seed == 2**63 - 1
    # the defaults' estimate is about the 2.5 GB the HedgerConfig docstring gives
    memory = estimated_memory(parse_hedge_config({}))
    assert 2e9 < memory["training"][0] < 4e9


def test_costs_are_not_zero_unless_asked_for():
    assert parse_hedge_config({}).hedger.cost == 1e-4
    assert parse_hedge_config({"hedger": {"cost": 0.0}}).hedger.cost == 0.0


def test_missing_and_unreadable_files(tmp_path):
    out = tmp_path / "a" / "out"
    missing = tmp_path / "nope.toml"
    result = runner.invoke(app, ["hedge", str(missing), "--out", str(out)])
    _fails_cleanly(result, out, str(missing), "no such config file")
    binary = _write(tmp_path, b"\xff\xfe[market]\n", "binary.toml")
    result = runner.invoke(app, ["hedge", str(binary), "--out", str(out)])
    _fails_cleanly(result, out, str(binary), "not valid TOML")
    if os.geteuid() != 0:  # root reads any file
        locked = _write(tmp_path, GOOD, "locked.toml")
        locked.chmod(0)
        result = runner.invoke(app, ["hedge", str(locked), "--out", str(out)])
        _fails_cleanly(result, out, str(locked), "cannot read")


def test_an_output_path_that_is_a_file_fails_before_training(tmp_path):
    config = _write(tmp_path, GOOD)
    out = tmp_path / "taken"
    out.write_text("not a directory")
    result = runner.invoke(app, ["hedge", str(config), "--out", str(out)])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert message.startswith(f"error: {out.resolve()}: ") and "not a directory" in message
    assert out.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hedge.toml", "taken"]


def test_the_console_table_shows_three_trainings_and_says_where_the_rest_are():
    from rich.console import Console

    from kabuto.cli.main import _risk_table

    run = run_hedge(_small(trainings=5, seed=11, policy="mlp"), None)
    table = _risk_table(run)
    headers = [str(column.header) for column in table.columns]
    assert len(headers) == 1 + 3 + 1  # the row names, trainings 1 to 3, the delta hedge
    console = Console(width=400, record=True)
    console.print(table)
    assert "trainings 4 to 5 are in risk.csv" in " ".join(console.export_text().split())
