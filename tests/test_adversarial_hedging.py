"""Adversarial deep hedging: the path generator, its constraint and the alternating trainer.

Small versions of the pfhedge standard setting (S0 = K = 1, sigma 0.2, 20 steps to T =
20/250); the full comparison against GBM- and Heston-trained hedgers is
benchmarks/adversarial_hedging.py. Every simulation is seeded.
"""

from __future__ import annotations

import math

import pytest
import torch

from kabuto.errors import ConfigError
from kabuto.hedging.adversarial import (
    AdversarialHedger,
    GeneratedReturns,
    PathGenerator,
    realized_volatility,
)
from kabuto.hedging.hedger import DeepHedger
from kabuto.hedging.risk import expected_shortfall
from kabuto.sim.paths import gbm_paths, heston_paths

SPOT = STRIKE = 1.0
SIGMA = 0.2
MATURITY = 20 / 250
STEPS = 20
DT = MATURITY / STEPS


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gbm(n: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return gbm_paths(n, STEPS, MATURITY, SPOT, 0.0, SIGMA, seed=seed, dtype=dtype)[..., 0]


def log_returns(prices: torch.Tensor) -> torch.Tensor:
    return torch.log(prices).diff(dim=1)


def scrambled_generator(strength: float, vol_bound: float, seed: int) -> PathGenerator:
    """A generator with seeded random weights everywhere (an untrained one is the identity)."""
    torch.manual_seed(seed)
    generator = PathGenerator(strength=strength, vol_bound=vol_bound)
    with torch.no_grad():
        for p in generator.head.parameters():
            p.normal_(0.0, 1.0)
    return generator


def run(generator: PathGenerator, base: torch.Tensor, seed: int) -> GeneratedReturns:
    """The generator on `base` with seeded latent noise, every path at the money."""
    noise = torch.randn(
        (*base.shape, generator.noise_dim),
        generator=torch.Generator().manual_seed(seed),
        dtype=base.dtype,
    )
    return generator.generate(base, noise, torch.zeros(base.shape[0], dtype=base.dtype))


# ----------------------------------------------------------------------------------- generator


def test_untrained_or_zero_strength_generator_returns_its_reference_returns():
    base = log_returns(gbm(200, 1))
    noise = torch.randn(200, STEPS, 4, generator=torch.Generator().manual_seed(2))
    m0 = torch.zeros(200)
    torch.manual_seed(0)
    assert torch.equal(PathGenerator(strength=0.7)(base, noise, m0), base)
    generator = scrambled_generator(0.0, 0.1, seed=3).float()
    assert torch.equal(generator(base, noise, m0), base)


def test_generated_paths_are_finite_positive_seeded_martingales():
    n = 40_000
    base = log_returns(gbm(n, 4))
    generator = scrambled_generator(strength=1.0, vol_bound=0.99, seed=5)
    with torch.no_grad():
        out = run(generator, base, seed=6)
        r = out.log_returns
        # Seeded: same weights and noise, same paths; other noise, other paths.
        assert torch.equal(run(generator, base, seed=6).log_returns, r)
        assert not torch.equal(run(generator, base, seed=7).log_returns, r)
    assert r.shape == (n, STEPS) and bool(r.isfinite().all())
    generated = SPOT * torch.exp(torch.cat([torch.zeros(n, 1), r.cumsum(1)], 1))
    assert bool((generated > 0).all())
    # The scrambled network really moves the volatility around (not a near-identity).
    assert float(out.multipliers.log().std()) > 0.3
    assert float(out.scale) == 1.0  # the wide volatility bound does not bind
    # Multipliers chosen before each return is drawn, with the convexity term, keep S a
    # martingale: E[S_t] = S_0 at every date (4 standard errors; without the correction the
    # terminal drift is about (M^2 - M) v / 2 per step, many standard errors here).
    for t in (5, 10, STEPS):
        s_t = generated[:, t]
        se = float(s_t.std()) / math.sqrt(n)
        assert abs(float(s_t.mean()) - SPOT) < 4 * se
    naive = torch.exp((out.multipliers * base).sum(1))
    assert abs(float(naive.mean()) - SPOT) > 4 * float(naive.std()) / math.sqrt(n)


@pytest.mark.parametrize("vol_bound", [0.0, 0.05])
def test_constraint_bounds_multipliers_and_realized_volatility(vol_bound):
    base = log_returns(gbm(5000, 8, torch.float64))
    strength = 0.8
    generator = scrambled_generator(strength, vol_bound, seed=9).double()
    with torch.no_grad():
        out = run(generator, base, seed=10)
    assert float(out.multipliers.log().abs().max()) <= strength + 1e-12
    assert float(out.scale) != 1.0  # the projection binds for this scrambled generator
    ratio = float(realized_volatility(out.log_returns) / realized_volatility(base))
    assert ratio == pytest.approx(float(out.vol_ratio), abs=1e-12)
    assert 1 - vol_bound - 1e-9 <= ratio <= 1 + vol_bound + 1e-9
    # The bound is attained on the edge the generator pushed towards, not anywhere inside.
    assert min(abs(ratio - 1 - vol_bound), abs(ratio - 1 + vol_bound)) < 1e-9


@pytest.mark.parametrize("strength", [5.0, 10.0])
def test_the_projection_converges_where_the_convexity_term_dominates(strength):
    # (M - M^2) v / 2 outweighs M x beyond strength ~5: three fixed-point steps left the
    # realized volatility 2% off its bound
    base = log_returns(gbm(2000, 11))
    with torch.no_grad():
        out = run(scrambled_generator(strength, 0.0, seed=12), base, seed=13)
    assert bool(out.log_returns.isfinite().all())
    assert float(out.vol_ratio) == pytest.approx(1.0, abs=2e-5)


# ------------------------------------------------------------------------------------- trainer

COMMON = dict(strike=STRIKE, maturity=MATURITY, cost=1e-4, risk="cvar", risk_level=0.9)


@pytest.mark.parametrize("batch_size", [None, 250])
def test_without_adversary_it_is_deep_hedging_on_the_reference_paths(batch_size):
    reference = gbm(1000, 11)
    settings = dict(COMMON, epochs=4, batch_size=batch_size, seed=3)
    deep = DeepHedger(**settings).fit(reference, volatility=SIGMA)
    for off in (dict(strength=0.0), dict(generator_steps=0)):
        adversarial = AdversarialHedger(**settings, **off).fit(reference, volatility=SIGMA)
        for p, q in zip(deep.policy_.parameters(), adversarial.policy_.parameters(), strict=True):
            assert torch.equal(p, q)
        assert adversarial.generator_losses_ == [] and adversarial.vol_ratios_ == []
        if batch_size is None:  # one step per epoch: the losses are the same numbers
            assert adversarial.hedger_losses_ == deep.losses_
        test = gbm(2000, 12)
        assert adversarial.price(test, volatility=SIGMA) == deep.price(test, volatility=SIGMA)


@pytest.fixture(scope="module")
def trained():
    """An adversarial hedger and the deep hedger of the same GBM paths and seed."""
    reference = gbm(1000, 13)
    settings = dict(COMMON, epochs=20, batch_size=250, seed=1)
    adversarial = AdversarialHedger(**settings, strength=0.5, vol_bound=0.0, num_threads=1)
    deep = DeepHedger(**settings, num_threads=1)
    return adversarial.fit(reference, volatility=SIGMA), deep.fit(reference, volatility=SIGMA)


def test_the_adversary_raises_the_hedgers_risk_within_its_constraint(trained):
    adversarial, _ = trained
    assert len(adversarial.generator_losses_) == len(adversarial.hedger_losses_) == 80
    # vol_bound = 0: every generated training batch had its reference batch's realized vol.
    assert max(abs(r - 1) for r in adversarial.vol_ratios_) < 1e-5
    # On fresh base paths, the trained generator's paths are riskier for the trained hedger
    # than the base paths themselves: paired comparison, many batch standard errors apart.
    base = gbm(20_000, 14)
    generated = adversarial.generate(base, seed=15)
    assert generated.shape == base.shape and bool((generated > 0).all())
    assert bool(generated.isfinite().all()) and torch.equal(generated[:, 0], base[:, 0])
    gaps = [
        adversarial.price(g, volatility=SIGMA) - adversarial.price(b, volatility=SIGMA)
        for g, b in zip(generated.chunk(10), base.chunk(10), strict=True)
    ]
    gaps_t = torch.tensor(gaps)
    assert float(gaps_t.mean()) > 4 * float(gaps_t.std()) / math.sqrt(len(gaps))
    ratio = realized_volatility(log_returns(generated)) / realized_volatility(log_returns(base))
    assert float(ratio) == pytest.approx(1.0, abs=1e-5)


def test_same_seed_same_hedger_and_generator():
    reference = gbm(400, 16)
    settings = dict(COMMON, epochs=2, batch_size=200, strength=0.5)
    a = AdversarialHedger(**settings, seed=7).fit(reference, volatility=SIGMA)
    b = AdversarialHedger(**settings, seed=7).fit(reference, volatility=SIGMA)
    c = AdversarialHedger(**settings, seed=8).fit(reference, volatility=SIGMA)
    state_a, state_b = a.generator_.state_dict(), b.generator_.state_dict()
    for x, y in zip(state_a.values(), state_b.values(), strict=True):
        assert torch.equal(x, y)
    for x, y in zip(a.policy_.parameters(), b.policy_.parameters(), strict=True):
        assert torch.equal(x, y)
    assert a.generator_losses_ == b.generator_losses_
    pairs = zip(a.generator_.parameters(), c.generator_.parameters(), strict=True)
    assert any(not torch.equal(x, y) for x, y in pairs)


def test_on_held_out_heston_paths_it_is_no_worse_than_the_gbm_hedger(trained):
    adversarial, deep = trained
    heston = heston_paths(20_000, STEPS, MATURITY, SPOT, 0.04, 1.0, 0.04, 2.0, -0.7, seed=17)[0]
    assert (
        adversarial.price(heston, volatility=SIGMA) <= deep.price(heston, volatility=SIGMA) + 5e-4
    )


def test_hedge_and_price_agree(trained):
    adversarial, _ = trained
    test = gbm(1000, 18, torch.float64)  # converted to the policy's dtype
    result = adversarial.hedge(test, volatility=SIGMA)
    assert result.positions.shape == (1000, STEPS) and result.pnl.dtype == torch.float32
    assert adversarial.price(test, volatility=SIGMA) == pytest.approx(
        float(expected_shortfall(result.pnl.double(), 0.9)), rel=1e-6
    )


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "bad",
    [
        dict(strength=-0.1),
        dict(strength=float("nan")),
        dict(strength=10.5),
        dict(vol_bound=1.0),
        dict(vol_bound=-0.01),
        dict(risk="oce"),
        dict(risk_level=1.0),
        dict(hedger_steps=0),
        dict(generator_steps=-1),
        dict(generator_learning_rate=0.0),
        dict(noise_dim=0),
        dict(generator_hidden=0),
        dict(epochs=0),
        dict(policy="lstm"),
        dict(seed=-1),
        dict(device="tpu"),
    ],
)
def test_bad_settings_raise_config_error(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        AdversarialHedger(strike=STRIKE, maturity=MATURITY, **bad)


@pytest.mark.parametrize("generator_steps", [0, 1])
def test_a_diverging_training_is_named_as_deep_hedgings_is(generator_steps):
    # with the adversary on, a NaN hedger was reported as NaN prices; off, it fitted quietly
    hedger = AdversarialHedger(
        **COMMON, policy="mlp", learning_rate=1e30, epochs=5, generator_steps=generator_steps
    )
    with pytest.raises(ConfigError, match=r"training diverged; lower learning_rate=1e\+30"):
        hedger.fit(gbm(400, 1), volatility=SIGMA)


def test_a_diverging_generator_names_its_settings(monkeypatch):
    # within the strength and learning-rate caps no real run diverges: force NaN multipliers
    monkeypatch.setattr(
        PathGenerator, "_multipliers", lambda self, base, *args: torch.full_like(base, math.nan)
    )
    hedger = AdversarialHedger(strike=STRIKE, maturity=MATURITY, epochs=2)
    with pytest.raises(ConfigError, match=r"generator's returns .* lower generator_learning_rat"):
        hedger.fit(gbm(400, 1), volatility=SIGMA)
    with pytest.raises(ConfigError, match="generator_learning_rate=1e"):
        AdversarialHedger(strike=STRIKE, maturity=MATURITY, generator_learning_rate=1e38)


def test_bad_data_and_use_raise_config_error():
    hedger = AdversarialHedger(strike=STRIKE, maturity=MATURITY, epochs=1)
    with pytest.raises(ConfigError, match="not fitted"):
        hedger.price(gbm(10, 1), volatility=SIGMA)
    with pytest.raises(ConfigError, match="never move"):
        hedger.fit(torch.ones(10, STEPS + 1), volatility=SIGMA)
    with pytest.raises(ConfigError, match="prices"):
        hedger.fit(-gbm(10, 1), volatility=SIGMA)
    with pytest.raises(ConfigError, match="volatility"):
        hedger.fit(gbm(10, 1), volatility=torch.full((10, STEPS + 1), SIGMA))
    hedger.fit(gbm(10, 1), volatility=SIGMA)
    with pytest.raises(ConfigError, match="generate: the paths never move"):
        hedger.generate(torch.ones(3, STEPS + 1))
    with pytest.raises(ConfigError, match=r"shape \(1, 2\), one return in all"):
        hedger.generate(torch.tensor([[1.0, 1.01]]))  # its variance was NaN
    with pytest.raises(ConfigError, match="vol_bound"):
        PathGenerator(vol_bound=2.0)
    generator = PathGenerator()
    with pytest.raises(ConfigError, match="noise"):
        generator(torch.zeros(3, STEPS), torch.zeros(3, STEPS, 2), torch.zeros(3))
