"""DeepResidual (Imajo et al. AAAI 2021): features, network invariances, losses, strategy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from kabuto.backtest import WalkForward
from kabuto.data import Panel
from kabuto.errors import ConfigError, DataError
from kabuto.sim import correlated_gbm
from kabuto.strategies.deep_residual import (
    DeepResidual,
    ExponentialFilters,
    augmentation_noise,
    multiscale_features,
    multiscale_operator,
    noise_penalty,
    pinball_loss,
    quantile_moments,
)
from kabuto.strategies.residual import spectral_projection

from helpers import panel_from_returns

TINY = dict(
    lookback=32,
    n_scales=3,
    n_quantiles=4,
    resample_length=8,
    hidden_sizes=(16, 16),
    epochs=3,
    batch_size=256,
    train_window=400,
    num_threads=1,  # tiny batches: threads only add overhead
)


@pytest.fixture(scope="module")
def gbm():
    return correlated_gbm(12, 700, seed=0)


@pytest.fixture(scope="module")
def fitted(gbm):
    return DeepResidual(**TINY, seed=1).fit(gbm.window(600, 600))


# ----------------------------------------------------------------- features


def test_multiscale_features_hand_computed():
    # e = 1, 2, 3, 4: cumulative path P = 0, 1, 3, 6, 10; scales tau = 1, 1/4; R = 2.
    # tau = 1: points at 0, 2, 4 -> 0, 3, 10 -> increments 3, 7.
    # tau = 1/4: last 1 return, points at 3, 3.5, 4 -> 6, 8, 10 -> 2, 2, times 1/sqrt(1/4) = 2.
    feats = multiscale_features(np.array([1.0, 2.0, 3.0, 4.0]), n_scales=2, resample_length=2)
    np.testing.assert_allclose(feats, [[3.0, 7.0], [4.0, 4.0]])
    # a linear path (constant returns c) gives constant increments c * m / R / sqrt(tau)
    c, h, r = 0.01, 64, 16
    feats = multiscale_features(np.full(h, c), n_scales=3, resample_length=r)
    for row, tau in zip(feats, [1.0, 0.5, 0.25], strict=True):
        np.testing.assert_allclose(row, c * tau * h / r / np.sqrt(tau))
    # the operator is the same linear map
    e = np.random.default_rng(0).normal(size=(5, h))
    np.testing.assert_allclose(
        multiscale_features(e, 3, r).reshape(5, -1), e @ multiscale_operator(h, 3, r)
    )


def test_time_scale_doubling_resolution():
    rng = np.random.default_rng(1)
    h, r = 64, 8
    coarse = rng.normal(0, 0.01, size=(50, h))
    # the same path at twice the resolution (each day split into two halves): same features
    split = np.repeat(coarse / 2, 2, axis=1)
    np.testing.assert_allclose(
        multiscale_features(split, 3, r), multiscale_features(coarse, 3, r), atol=1e-12
    )
    # a Brownian path observed on a finer grid: similar features, similar network output
    fine = rng.normal(0, 0.01 / np.sqrt(2), size=(200, 2 * h))
    summed = fine.reshape(200, h, 2).sum(axis=2)
    f_fine, f_coarse = multiscale_features(fine, 3, r), multiscale_features(summed, 3, r)
    rel = np.linalg.norm(f_fine - f_coarse) / np.linalg.norm(f_coarse)
    assert rel < 0.1
    model = DeepResidual(**TINY)._build_model(1.0)
    with torch.no_grad():
        out_fine = model(torch.tensor(f_fine, dtype=torch.float32)).numpy()
        out_coarse = model(torch.tensor(f_coarse, dtype=torch.float32)).numpy()
    assert np.linalg.norm(out_fine - out_coarse) / np.linalg.norm(out_coarse) < 0.2


def test_augmentation_noise_std():
    gen = torch.Generator().manual_seed(0)
    prev = torch.tensor([0.0, 0.0004, 0.01, -0.04])  # r_{t-1}; |.| -> sqrt 0, 0.02, 0.1, 0.2
    paths = torch.zeros(200_000, 5)
    paths[:, :4] = prev  # column t + 1's noise uses column t
    noise = augmentation_noise(paths, 0.5, gen)
    assert noise.shape == (200_000, 4)
    expected = 0.5 * np.sqrt(np.abs(prev.numpy()))
    np.testing.assert_allclose(noise.std(dim=0).numpy(), expected, rtol=0.01)
    assert (noise[:, 0] == 0).all()
    np.testing.assert_allclose(noise.mean(dim=0).numpy(), 0.0, atol=3e-3 * expected.max())


# ----------------------------------------------------------------- network


@pytest.mark.parametrize(
    "body", [("fractal", "filters"), ("fractal", "mlp"), ("mlp", "filters"), ("lstm", "filters")]
)
def test_amplitude_invariance_exact(body):
    architecture, psi1 = body
    model = DeepResidual(**TINY, architecture=architecture, psi1=psi1)._build_model(1.0)
    x = torch.randn(64, 3, 8, generator=torch.Generator().manual_seed(0)) * 0.01
    with torch.no_grad():
        base = model(x)
        for a in (1e-3, 0.5, 2.0, 37.0, 1e4):
            torch.testing.assert_close(model(a * x), a * base, rtol=1e-5, atol=1e-9 * a)
        assert (model(torch.zeros(3, 3, 8)) == 0).all()  # the homogeneous limit


def test_exponential_filters_match_a_loop():
    filters = ExponentialFilters(n_filters=3).double()
    rates = np.array([0.1, 0.7, 2.0])
    with torch.no_grad():
        filters.raw_rates.copy_(torch.log(torch.expm1(torch.tensor(rates))))
    x = np.random.default_rng(0).normal(size=(4, 2, 6))
    with torch.no_grad():
        out = filters(torch.tensor(x, dtype=torch.float64)).numpy()
    assert out.shape == (4, 2, 6)
    r = x.shape[-1]
    for m, rate in enumerate(rates):
        w = [np.exp(-(r - 1 - k) * rate) for k in range(r)]  # the last increment has age 0
        level = sum(w[k] * x[..., k] for k in range(r))
        power = sum(w[k] * x[..., k] ** 2 for k in range(r)) / sum(w)
        np.testing.assert_allclose(out[..., m], level, rtol=1e-12)
        np.testing.assert_allclose(out[..., 3 + m], power, rtol=1e-12)


def test_exponential_filters_start_at_half_lives_1_to_32():
    rates = torch.nn.functional.softplus(ExponentialFilters().raw_rates).detach()
    np.testing.assert_allclose(np.log(2.0) / rates.numpy(), 2.0 ** np.linspace(0, 5, 8), rtol=1e-5)


def test_amplitude_invariance_off_is_not_homogeneous():
    model = DeepResidual(**TINY, amplitude_invariant=False)._build_model(0.01)
    x = torch.randn(64, 3, 8, generator=torch.Generator().manual_seed(0)) * 0.01
    with torch.no_grad():
        assert not torch.allclose(model(3.0 * x), 3.0 * model(x), rtol=1e-3, atol=0)


def test_quantiles_sorted_and_moments(fitted, gbm):
    out, _, _ = fitted.predict(gbm.batch([620, 650], 32).returns)
    assert out.shape == (2, 12, 3)
    assert (np.diff(out, axis=-1) >= 0).all()
    q = torch.tensor([[1.0, 2.0, 6.0]])
    mean, var = quantile_moments(q)
    assert float(mean) == pytest.approx(3.0) and float(var) == pytest.approx(14 / 3)


# ----------------------------------------------------------------- losses


def test_pinball_closed_form_and_minimizer():
    y = torch.tensor([0.0, 1.0, 2.0, 3.0])
    levels = torch.tensor([0.25, 0.5, 0.9])
    pred = torch.full((4, 3), 1.5)
    # u = y - 1.5 = -1.5, -0.5, 0.5, 1.5; rho_tau(u) = tau u (u >= 0), (tau - 1) u (u < 0)
    expected = np.mean(
        [np.mean([(t - (u < 0)) * u for u in (-1.5, -0.5, 0.5, 1.5)]) for t in (0.25, 0.5, 0.9)]
    )
    assert float(pinball_loss(pred, y, levels)) == pytest.approx(expected)
    # its minimiser over constants is the empirical quantile (unique when N tau is not integer)
    sample = torch.tensor(np.random.default_rng(0).normal(size=101), dtype=torch.float64)
    tau = torch.tensor([0.25], dtype=torch.float64)
    candidates = sample.sort().values
    losses = torch.stack([pinball_loss(torch.full((101, 1), c), sample, tau) for c in candidates])
    q = np.quantile(sample.numpy(), 0.25, method="inverted_cdf")
    assert float(candidates[int(losses.argmin())]) == pytest.approx(q)
    # gradient sign: below the quantile the loss decreases as q rises, above it increases
    for c, sign in ((q - 0.3, -1.0), (q + 0.3, 1.0)):
        p = torch.full((101, 1), float(c), dtype=torch.float64, requires_grad=True)
        pinball_loss(p, sample, tau).backward()
        assert np.sign(float(p.grad.sum())) == sign


def test_noise_penalty_linear_model_exact():
    # f(e) = e . w: gradient w, so the penalty is mean_n sum_t D_nt (c w_t)^2 for any xi
    gen = torch.Generator().manual_seed(0)
    w = torch.tensor([0.5, -1.0, 2.0])
    e = torch.randn(10, 3, generator=gen).requires_grad_(True)
    var = torch.rand(10, 3, generator=gen)
    out = (e @ w)[:, None]
    c = torch.tensor([0.7])
    pen = noise_penalty(out, e, var, c, gen)
    assert float(pen) == pytest.approx(float((var * (c * w) ** 2).sum(1).mean()), rel=1e-6)


# ----------------------------------------------------------------- strategy


def test_portfolio_factor_neutral_gross_one(fitted, gbm):
    batch = gbm.batch(np.arange(610, 690, 10), 32)
    weights = fitted.allocate_batch(batch)
    np.testing.assert_allclose(np.abs(weights).sum(axis=1), 1.0)
    c = 1  # default_components(12)
    centred = batch.returns - batch.returns.mean(axis=1, keepdims=True)
    top = np.linalg.svd(centred, full_matrices=False)[2][:, :c]  # (D, C, n)
    np.testing.assert_allclose(np.einsum("dcn,dn->dc", top, weights), 0.0, atol=1e-10)
    proj = spectral_projection(batch.returns, c)
    np.testing.assert_allclose(np.einsum("dij,dj->di", proj, weights), weights, atol=1e-10)
    # single-window path agrees with the batch
    np.testing.assert_allclose(fitted.allocate(batch.window(3)), weights[3], atol=1e-12)


def test_scores_scale_inversely_with_amplitude(fitted, gbm):
    r = np.asarray(gbm.batch([640, 660], 32).returns)
    s1, _ = fitted.scores(r)
    s3, _ = fitted.scores(3.0 * r)
    np.testing.assert_allclose(s3, s1 / 3.0, rtol=1e-4)


def test_validation_split_is_the_end_of_the_training_window(gbm):
    history = gbm.window(600, 600)
    s = DeepResidual(**TINY, validation_fraction=0.25, sample_stride=3)
    samples = s.training_samples(history)
    ends, n_val = samples["ends"], int(samples["n_validation"])
    assert (np.diff(ends) == 3).all()
    assert ends[-1] == history.returns.shape[0] - 2  # the last target is the fit date's return
    assert ends[0] - 32 >= history.returns.shape[0] - 400  # inside train_window
    assert n_val == int(np.ceil(0.25 * len(ends)))
    s.fit(history)
    assert s.validation_start_ == ends[-n_val]
    assert s.n_validation_samples_ == n_val * 12
    assert s.n_train_samples_ == (len(ends) - n_val) * 12
    # targets are r_{s+1} A_s: the last one uses the fit date's own return, nothing later
    proj = spectral_projection(history.returns[ends[-1] - 31 : ends[-1] + 1], 1)
    np.testing.assert_allclose(
        samples["targets"][-1], history.returns[-1] @ proj, rtol=1e-5, atol=1e-7
    )
    # 0.07 * 100 = 7.000000000000001: seven validation dates, not eight
    s.set_params(validation_fraction=0.07, sample_stride=1, train_window=133)
    assert len(s.training_samples(history)["ends"]) == 100
    assert int(s.training_samples(history)["n_validation"]) == 7


def test_nan_before_listing_and_short_history():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, size=(300, 6))
    r[:120, 2] = np.nan  # listed late: 5 assets x 266 dates beat 6 x 146
    panel = panel_from_returns(r)
    s = DeepResidual(**TINY | {"train_window": None}).fit(panel.window(299, 299))
    assert s.training_assets_ == ("A0", "A1", "A3", "A4", "A5") and s.sample_ends_[0] == 32
    r[:20, 2] = np.nan  # listed early: 6 x 246 beat 5 x 266, on rows where every asset trades
    r[20:120, 2] = 0.001
    s.fit(panel_from_returns(r).window(299, 299))
    assert len(s.training_assets_) == 6 and s.sample_ends_[0] - 32 >= 20
    with pytest.raises(DataError, match="training needs"):  # no asset has 34 days
        DeepResidual(**TINY).fit(panel.window(33, 33))
    # the block has more assets than the C components the scores remove from the universe:
    # with C = 2, four assets (two listed late) train, not the two long-listed ones alone
    r = rng.normal(0, 0.01, size=(300, 4))
    r[:200, 2:] = np.nan
    s = DeepResidual(**TINY | {"train_window": None}, n_components=2)
    s.fit(panel_from_returns(r).window(299, 299))
    assert s.training_assets_ == ("A0", "A1", "A2", "A3")
    r[:266, 2:] = np.nan  # A2 and A3 have 33 returns: two assets cannot leave residuals of C = 2
    with pytest.raises(DataError, match=r"only 2 asset\(s\) have the 35 days .*n_components=2"):
        s.fit(panel_from_returns(r).window(299, 299))


def test_seed_reproducibility(gbm):
    history = gbm.window(600, 600)
    batch = gbm.batch(np.arange(610, 690, 10), 32)
    a = DeepResidual(**TINY, seed=3).fit(history)
    b = DeepResidual(**TINY, seed=3).fit(history)
    c = DeepResidual(**TINY, seed=4).fit(history)
    for (k, va), vb in zip(
        a.model_.state_dict().items(), b.model_.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k
    np.testing.assert_array_equal(a.allocate_batch(batch), b.allocate_batch(batch))
    assert not np.allclose(a.allocate_batch(batch), c.allocate_batch(batch))


def test_save_load_round_trip(fitted, gbm, tmp_path):
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = DeepResidual.load(path)
    batch = gbm.batch(np.arange(610, 690, 10), 32)
    np.testing.assert_array_equal(loaded.allocate_batch(batch), fitted.allocate_batch(batch))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.validation_start_ == fitted.validation_start_
    torch.load(path, weights_only=True)  # plain content only
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(DataError):
        DeepResidual.load(tmp_path / "junk.pt")


def test_save_load_paper_psi1(gbm, tmp_path):
    strategy = DeepResidual(**TINY | {"epochs": 1}, psi1="mlp").fit(gbm.window(600, 600))
    strategy.save(tmp_path / "mlp.pt")
    loaded = DeepResidual.load(tmp_path / "mlp.pt")
    assert loaded.psi1 == "mlp"
    batch = gbm.batch([620, 640], 32)
    np.testing.assert_array_equal(loaded.allocate_batch(batch), strategy.allocate_batch(batch))


@pytest.mark.parametrize(
    "settings",
    [
        dict(psi1="mlp"),
        dict(architecture="mlp", distributional=False),
        dict(architecture="lstm", distributional=False),
        dict(residual=False),
        dict(multiscale=False, amplitude_invariant=False),
        dict(augmentation="noise", aug_strength=0.1),
        dict(augmentation="penalty", aug_strength=0.1),
    ],
)
def test_variants_fit_and_allocate(gbm, settings):
    s = DeepResidual(**TINY | {"epochs": 1}, **settings).fit(gbm.window(600, 600))
    weights = s.allocate_batch(gbm.batch([620, 640], 32))
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(np.abs(weights).sum(axis=1), 1.0)
    if not s.distributional:
        out, res, _ = s.predict(gbm.batch([620], 32).returns)
        score, _ = s.scores(gbm.batch([620], 32).returns)
        expected = out[0, :, 0] / res[0].var(axis=0, ddof=1)
        np.testing.assert_allclose(score[0], expected, rtol=1e-6)


def test_bad_settings():
    with pytest.raises(ConfigError, match="architecture"):
        DeepResidual(architecture="cnn")
    with pytest.raises(ConfigError, match="psi1"):
        DeepResidual(psi1="conv")
    with pytest.raises(ConfigError, match="validation_fraction"):
        DeepResidual(validation_fraction=1.0)
    # one quantile (the median) has no spread: every score would be 0, the book empty
    with pytest.raises(ConfigError, match=r"n_quantiles=2 .* >= 3"):
        DeepResidual(n_quantiles=2)
    DeepResidual(n_quantiles=2, distributional=False)
    with pytest.raises(ConfigError, match="not fitted"):
        DeepResidual(**TINY).allocate_batch(correlated_gbm(4, 60, seed=0).batch([50], 32))


def test_too_many_components_for_the_lookback_are_config_errors(fitted, gbm):
    # a demeaned window of 32 returns spans 31 directions: removing them all leaves noise
    with pytest.raises(ConfigError, match=r"n_components=31 .*lookback=32.*n_components <= 30"):
        DeepResidual(**TINY | {"n_components": 31})
    DeepResidual(**TINY | {"n_components": 30})
    DeepResidual(**TINY | {"n_components": 31, "residual": False})  # no components removed
    # the default C (one per ten assets) is known only with the universe: checked at use
    wide = np.random.default_rng(0).normal(0, 0.01, size=(1, 32, 400))
    with pytest.raises(ConfigError, match=r"n_components=40 \(the default"):
        fitted.scores(wide)


@pytest.mark.parametrize(
    ("settings", "least"),
    [({}, 35), ({"validation_fraction": 0.0}, 34), ({"sample_stride": 3}, 37)],
)
def test_train_window_too_short_to_train_is_a_config_error(gbm, settings, least):
    """lookback 32 + the day before + a next-day target, + a validation date if any."""
    quick = TINY | {"epochs": 1} | settings
    message = f"train_window={least - 1} is shorter .* with lookback=32 \\({least} days"
    with pytest.raises(ConfigError, match=message):
        DeepResidual(**quick | {"train_window": least - 1})
    strategy = DeepResidual(**quick | {"train_window": least}).fit(gbm.window(600, 600))
    assert len(strategy.sample_ends_) == (2 if strategy.validation_fraction else 1)


def test_predict_and_scores_check_their_windows(fitted, gbm):
    windows = np.asarray(gbm.batch([620, 640], 32).returns)
    nan = windows.copy()
    nan[1, 3, 2] = np.nan
    for method in (fitted.predict, fitted.scores):
        with pytest.raises(DataError, match=r"returns\[1, 3, 2\] is not finite"):
            method(nan)
        with pytest.raises(DataError, match=r"shape \(2, 64, 12\).*\(D, 32, n\)"):
            method(np.asarray(gbm.batch([620, 640], 64).returns))  # H != lookback
        with pytest.raises(DataError, match=r"shape \(32, 12\)"):
            method(windows[0])  # one window without its batch axis
        with pytest.raises(DataError, match="not numeric"):
            method([[["a"]]])


def test_residual_variance_at_rounding_level_gets_no_weight():
    """A point prediction divided by a residual variance of rounding noise is no score."""
    point = DeepResidual(**TINY | {"epochs": 1, "distributional": False, "n_components": 1})
    rng = np.random.default_rng(3)
    returns = rng.normal(0, 0.01, size=(600, 12))
    point.fit(panel_from_returns(returns).window(599, 599))
    # every asset a multiple of one factor: one component explains all of it
    factor = rng.normal(0, 0.01, size=(1, 32, 1))
    one_factor = factor * np.linspace(0.5, 1.5, 12)
    residual = spectral_projection(one_factor, 1)
    assert np.var(one_factor @ residual, axis=1).max() < 1e-30  # rounding: positive or 0
    score, _ = point.scores(one_factor)
    np.testing.assert_array_equal(score, 0.0)


@pytest.mark.parametrize("distributional", [True, False])
def test_a_constant_price_gets_no_weight(distributional):
    """A halted asset (zero returns) keeps only rounding noise after the projection (1e-19):
    divided by its variance, it scored 1e17 and took the whole book."""
    settings = {"epochs": 1, "distributional": distributional, "n_components": 2}
    strategy = DeepResidual(**TINY | settings)
    rng = np.random.default_rng(4)
    returns = rng.normal(0, 0.01, size=(600, 12))
    returns[540:, 5] = 0.0
    panel = panel_from_returns(returns)
    strategy.fit(panel.window(530, 530))
    weights = strategy.allocate_batch(panel.batch([599], 32))[0]
    assert abs(weights[5]) < 1e-12 and np.abs(weights).max() < 0.5
    assert np.abs(weights).sum() == pytest.approx(1.0)


def test_settings_changed_after_fit_ask_for_a_fit(fitted, gbm):
    strategy = copy.deepcopy(fitted)
    batch = gbm.batch([620], 32)
    before = strategy.allocate_batch(batch)
    strategy.set_params(num_threads=2, label="renamed")  # neither changes the model
    np.testing.assert_array_equal(strategy.allocate_batch(batch), before)
    for change in ({"lookback": 16}, {"n_components": 5}, {"distributional": False}):
        strategy.set_params(**change)
        with pytest.raises(ConfigError, match=f"{next(iter(change))} changed since the last fit"):
            strategy.allocate_batch(batch)
        strategy.set_params(**{k: fitted.get_params()[k] for k in change})
    np.testing.assert_array_equal(strategy.allocate_batch(batch), before)


def test_walk_forward(gbm):
    strategy = DeepResidual(**TINY | {"epochs": 2})
    result = WalkForward(
        start=gbm.dates[300], long_only=False, max_leverage=1.0, retrain="yearly"
    ).run(gbm, [strategy])
    weights = result.strategies["DeepResidual"].target_weights.to_numpy()
    np.testing.assert_allclose(np.abs(weights).sum(axis=1), 1.0)
    assert np.isfinite(result.strategies["DeepResidual"].net_returns).all()


def test_learns_planted_residual_reversion():
    rng = np.random.default_rng(7)
    n, t, phi = 10, 1500, 0.5
    market = rng.normal(0, 0.01, size=t)
    idio = np.zeros((t, n))
    shocks = rng.normal(0, 0.01, size=(t, n))
    for k in range(1, t):  # strong planted mean reversion of the idiosyncratic return
        idio[k] = -phi * idio[k - 1] + shocks[k]
    beta = rng.uniform(0.8, 1.2, size=n)
    returns = market[:, None] * beta + idio
    returns[0] = np.nan
    panel = panel_from_returns(returns)
    s = DeepResidual(**TINY | {"epochs": 25, "train_window": None, "n_components": 1}, seed=0)
    s.fit(panel.window(1100, 1100))
    ts = np.arange(1100, t - 1)
    batch = panel.batch(ts, 32)
    out, _, proj = s.predict(np.asarray(batch.returns))
    predicted = out.mean(axis=-1)
    truth = np.einsum("dn,dnm->dm", -phi * idio[ts], proj)  # E[r_{s+1} A_s | past]
    corr = np.corrcoef(predicted.ravel(), truth.ravel())[0, 1]
    assert corr > 0.5


# ----------------------------------------------------------------- ensemble, weight decay


def test_single_member_default_is_unchanged(gbm):
    history = gbm.window(600, 600)
    batch = gbm.batch(np.arange(610, 690, 10), 32)
    plain = DeepResidual(**TINY, seed=3).fit(history)
    explicit = DeepResidual(**TINY, seed=3, n_ensemble=1, weight_decay=0.0).fit(history)
    assert type(explicit.model_) is type(plain.model_)
    for (k, va), vb in zip(
        plain.model_.state_dict().items(), explicit.model_.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k
    np.testing.assert_array_equal(explicit.allocate_batch(batch), plain.allocate_batch(batch))
    assert explicit.best_epochs_ == [plain.best_epoch_]


@pytest.fixture(scope="module")
def ensemble(gbm):
    return DeepResidual(**TINY, seed=5, n_ensemble=3).fit(gbm.window(600, 600))


def test_ensemble_seeds_and_reproducibility(ensemble, gbm):
    seeds = ensemble.member_seeds
    assert len(seeds) == 3 and seeds[0] == 5 and len(set(seeds)) == 3
    assert DeepResidual(seed=5, n_ensemble=3).member_seeds == seeds  # deterministic
    again = DeepResidual(**TINY, seed=5, n_ensemble=3).fit(gbm.window(600, 600))
    batch = gbm.batch(np.arange(610, 690, 10), 32)
    np.testing.assert_array_equal(again.allocate_batch(batch), ensemble.allocate_batch(batch))
    # member 0 is the single network of the same seed
    single = DeepResidual(**TINY, seed=5).fit(gbm.window(600, 600))
    for (k, va), vb in zip(
        single.model_.state_dict().items(),
        ensemble.model_.members[0].state_dict().values(),
        strict=True,
    ):
        assert torch.equal(va, vb), k
    assert len(ensemble.best_epochs_) == 3


def test_ensemble_output_is_sorted_mean_of_members(ensemble, gbm):
    returns = np.asarray(gbm.batch(np.arange(610, 690, 10), 32).returns)
    out, residuals, _ = ensemble.predict(returns)
    d, h, n = residuals.shape
    x = torch.from_numpy(
        np.ascontiguousarray(residuals.transpose(0, 2, 1), dtype=np.float32).reshape(-1, h)
    ) @ torch.from_numpy(multiscale_operator(h, 3, 8).astype(np.float32))
    x = x.reshape(-1, 3, 8)
    with torch.no_grad():
        members = [m(x).numpy().astype(np.float64) for m in ensemble.model_.members]
    assert not np.allclose(members[0], members[1])
    for m in members:
        assert (np.diff(m, axis=1) >= 0).all()  # each member's quantiles are sorted
    expected = np.sort(np.mean(members, axis=0), axis=1).reshape(d, n, -1)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)
    assert (np.diff(out, axis=-1) >= 0).all()


def test_ensemble_save_load_round_trip(ensemble, gbm, tmp_path):
    path = tmp_path / "ensemble.pt"
    ensemble.save(path)
    loaded = DeepResidual.load(path)
    assert loaded.get_params() == ensemble.get_params()
    assert len(loaded.model_.members) == 3
    for (k, va), vb in zip(
        ensemble.model_.state_dict().items(), loaded.model_.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k
    batch = gbm.batch(np.arange(610, 690, 10), 32)
    np.testing.assert_array_equal(loaded.allocate_batch(batch), ensemble.allocate_batch(batch))
    assert loaded.best_epochs_ == ensemble.best_epochs_


def test_weight_decay_shrinks_weights(gbm):
    history = gbm.window(600, 600)
    settings = TINY | {"validation_fraction": 0.0, "epochs": 2}
    plain = DeepResidual(**settings, seed=2).fit(history)
    decayed = DeepResidual(**settings, seed=2, weight_decay=0.5).fit(history)

    def norm(s):
        return sum(float(p.detach().square().sum()) for p in s.model_.parameters())

    assert norm(decayed) < norm(plain)
    with pytest.raises(ConfigError, match="weight_decay"):
        DeepResidual(weight_decay=-1e-3)
    with pytest.raises(ConfigError, match="n_ensemble"):
        DeepResidual(n_ensemble=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_trains_on_cuda(gbm):
    strategy = DeepResidual(**TINY | {"epochs": 1}, device="cuda").fit(gbm.window(600, 600))
    assert next(strategy.model_.parameters()).device.type == "cuda"
    weights = strategy.allocate_batch(gbm.batch([620, 640], 32))
    np.testing.assert_allclose(np.abs(weights).sum(axis=1), 1.0)


def test_a_late_listing_neither_fails_a_retrain_nor_cuts_the_training_history():
    # asset_005 lists on row 500: right after, training on all six assets would leave a few
    # dates (a retrain then failed, and every later one shrank); the block of five assets
    # over the whole train_window gives more samples until the new one has enough days
    frame = correlated_gbm(6, 800, seed=4).to_frame()
    frame.iloc[:500, 5] = np.nan
    panel = Panel(frame)
    s = DeepResidual(**(TINY | {"epochs": 1, "train_window": 300}), seed=0)
    for t, trained in ((540, 5), (700, 5), (790, 6)):
        columns = np.flatnonzero(panel.eligible(t, s.lookback))
        assert len(columns) == 6
        history = panel.window(t, t, columns)
        s.fit(history)
        assert s.training_assets_ == tuple(frame.columns[:trained])
        # the last target is the fit date's return
        assert s.sample_ends_[-1] == history.returns.shape[0] - 2
    assert len(s.sample_ends_) > 200
    result = WalkForward(rebalance=5, retrain=21, costs_bps=10, long_only=False).run(panel, [s])
    assert (result["DeepResidual"].target_weights["asset_005"] != 0).any()  # still scored
