"""`DeepResidual`: distributional prediction of residual factors (Imajo et al., AAAI 2021).

At each decision date: spectral residuals of the last H returns (`spectral_residuals`), the
multi-scale features of each stock's residual path (`features`), one network shared by all
stocks predicting Q - 1 quantiles of the next residual return (`networks`), their mean and
variance (`losses.quantile_moments`), residual-space scores ``mean / variance`` and the
factor-neutral long-short book ``b = A w`` with gross leverage 1 (`factor_neutral_book`).

Training (`fit`) builds one sample per (date, stock) of the training window: the residual path
over s-H+1..s under that window's projection ``A_s`` and the target ``r_{s+1} A_s``. Dates are
split in time: the last `validation_fraction` of them is the validation set for early stopping,
so nothing later than the fit date is ever used (the strategy only receives history <= t).
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from typing import ClassVar, Self

import numpy as np
import torch

from kabuto.data.panel import Window, WindowBatch
from kabuto.errors import ConfigError, DataError
from kabuto.settings import check_layer_sizes, check_seed
from kabuto.strategies.batched import (
    TRAINING_YEAR,
    BatchedStrategy,
    check_bool,
    check_choice,
    check_int,
    check_lookback,
    check_positive,
    has_variance,
    window_returns,
)
from kabuto.strategies.deep_residual.features import (
    augmentation_noise,
    multiscale_operator,
    residual_samples,
)
from kabuto.strategies.deep_residual.losses import (
    gaussian_quantile_density,
    noise_penalty,
    pinball_loss,
    quantile_levels,
    quantile_moments,
)
from kabuto.strategies.deep_residual.networks import (
    EnsemblePredictor,
    ResidualPredictor,
    make_body,
)
from kabuto.strategies.residual import (
    check_components,
    factor_neutral_book,
    spectral_residuals,
)
from kabuto.strategies.torch_support import TorchStrategyMixin, load_payload, save_payload
from kabuto.torch_settings import seeded_cpu_rng

__all__ = ["ARCHITECTURES", "AUGMENTATIONS", "DeepResidual"]

ARCHITECTURES = ("fractal", "mlp", "lstm")
PSI1 = ("filters", "mlp")
AUGMENTATIONS = ("none", "noise", "penalty")
_FORMAT = 2  # version of the file `save` writes (2: the psi1 setting)


class DeepResidual(TorchStrategyMixin, BatchedStrategy):
    """Deep distributional prediction of residual factors, factor-neutral long-short book.

    Parameters
    ----------
    lookback : int, default=256
        H, days of returns per window (residual extraction and input path).
    n_components : int, optional
        C, principal components removed; default ``default_components(n)`` per window; at
        most ``lookback - 2`` and below n (`residual.check_components`).
    n_scales : int, default=3
        L, time scales ``tau_l = 4 ** (-l / (L - 1))``.
    n_quantiles : int, default=8
        Q; the network outputs quantiles at levels j/Q, j = 1..Q-1 (Q >= 3 when
        distributional: their spread is the variance).
    resample_length : int, default=32
        R, increments per scale after resampling.
    hidden_sizes : tuple of int, default=(32, 32)
        psi1 layers ("fractal"), MLP layers ("mlp"); the first is the LSTM width ("lstm").
    architecture : {"fractal", "mlp", "lstm"}, default="fractal"
    psi1 : {"filters", "mlp"}, default="filters"
        The fractal body's per-scale network: an MLP on learned exponential filters of the
        increments (`networks.ExponentialFilters`; kabuto's choice) or on the raw increments
        (the paper's). Other architectures ignore it. On the factor market's tuning seeds the
        filters lift the net Sharpe ratio from 0.81 to 1.01 of the oracle's (5-day box
        reversal) and from 0.37 to 0.62 (126-day scale-free kernel), one network each
        (benchmarks/deep_residual_vs_oracle.py).
    residual : bool, default=True
        False: raw returns, A = I (the book is then not factor-neutral).
    multiscale : bool, default=True
        False: one scale, tau = 1.
    amplitude_invariant : bool, default=True
        Normalise each input by its own RMS (``psi(a x) = a psi(x)`` exactly).
    distributional : bool, default=True
        False: a point prediction trained with MSE; score = prediction / residual variance
        over the window.
    epochs : int, default=30
    batch_size : int, default=512
    learning_rate : float, default=1e-3
        Adam (AdamW when `weight_decay` > 0).
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW, Loshchilov & Hutter 2019) on every weight and bias; 0 uses
        plain Adam. Amplitude invariance is unaffected (it holds for any weights).
    n_ensemble : int, default=1
        k networks trained independently on the same samples (member 0 from `seed`, the others
        from seeds derived from it) whose outputs are averaged (then sorted) when predicting.
    patience : int, default=5
        Epochs without validation improvement before stopping (the best epoch is kept).
    validation_fraction : float, default=0.2
        Last fraction of the training dates used for early stopping; 0 disables it.
    train_window : int, optional, default=2520
        Most recent days of history used to build samples (None: all); at least
        ``lookback + 2``, plus `sample_stride` when `validation_fraction` > 0 (a validation
        date).
    sample_stride : int, default=1
        Use every k-th date of the training window (ending at the most recent one).
    augmentation : {"none", "noise", "penalty"}, default="none"
        "noise": Gaussian noise of std ``aug_strength * sqrt(|r_{t-1}|)`` on each input return
        during training; "penalty": the noise-equivalent penalty (see `losses`).
    aug_strength : float, default=0.05
    seed : int, default=0
        Seeds initialisation, shuffling and noise (same seed, same model on CPU); with
        ``n_ensemble > 1`` member k uses `member_seeds` [k].
    device : {"cpu", "cuda", "auto"}, default="cpu"
    num_threads : int, optional
        Torch CPU threads while fitting and predicting (restored afterwards); None leaves
        torch's setting. The network is small: 1 thread is often fastest, and far faster
        than several threads competing with other processes for the same cores.
    label : str, optional

    A setting other than `num_threads` or `label` changed after `fit` (`set_params`) is a
    `ConfigError` at the next prediction: fit again first (a backtest does).
    """

    long_only: ClassVar[bool] = False

    def __init__(
        self,
        lookback: int = 256,
        n_components: int | None = None,
        n_scales: int = 3,
        n_quantiles: int = 8,
        resample_length: int = 32,
        hidden_sizes: tuple[int, ...] = (32, 32),
        architecture: str = "fractal",
        psi1: str = "filters",
        residual: bool = True,
        multiscale: bool = True,
        amplitude_invariant: bool = True,
        distributional: bool = True,
        epochs: int = 30,
        batch_size: int = 512,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        n_ensemble: int = 1,
        patience: int = 5,
        validation_fraction: float = 0.2,
        train_window: int | None = 2520,
        sample_stride: int = 1,
        augmentation: str = "none",
        aug_strength: float = 0.05,
        seed: int = 0,
        device: str = "cpu",
        num_threads: int | None = None,
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.n_components = n_components
        self.n_scales = n_scales
        self.n_quantiles = n_quantiles
        self.resample_length = resample_length
        self.hidden_sizes = hidden_sizes
        self.architecture = architecture
        self.psi1 = psi1
        self.residual = residual
        self.multiscale = multiscale
        self.amplitude_invariant = amplitude_invariant
        self.distributional = distributional
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.n_ensemble = n_ensemble
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.train_window = train_window
        self.sample_stride = sample_stride
        self.augmentation = augmentation
        self.aug_strength = aug_strength
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.label = label
        self._validate()

    # ----------------------------------------------------------------- settings

    def _validate(self) -> None:
        name = type(self).__name__
        check_lookback(name, self.lookback)
        if self.n_components is not None:
            check_int(name, "n_components", self.n_components, 0)
        check_int(name, "n_scales", self.n_scales, 1)
        # the distributional heads need a spread: Q = 2 has one quantile, a variance of 0
        check_int(name, "n_quantiles", self.n_quantiles, 3 if self.distributional else 2)
        check_int(name, "resample_length", self.resample_length, 1)
        check_layer_sizes(name, "hidden_sizes", self.hidden_sizes)
        check_choice(name, "architecture", self.architecture, ARCHITECTURES)
        check_choice(name, "psi1", self.psi1, PSI1)
        for flag in ("residual", "multiscale", "amplitude_invariant", "distributional"):
            check_bool(name, flag, getattr(self, flag))
        self._components()  # C against the lookback here; against the universe at use
        check_int(name, "epochs", self.epochs, 1)
        check_int(name, "batch_size", self.batch_size, 1)
        check_positive(name, "learning_rate", self.learning_rate)
        wd = self.weight_decay
        if isinstance(wd, bool) or not isinstance(wd, numbers.Real) or not 0 <= wd < math.inf:
            raise ConfigError(
                f"{name}: weight_decay={wd!r} is not allowed; use a finite number >= 0, e.g. 1e-3"
            )
        check_int(name, "n_ensemble", self.n_ensemble, 1)
        check_int(name, "patience", self.patience, 1)
        frac = self.validation_fraction
        if isinstance(frac, bool) or not isinstance(frac, numbers.Real) or not 0 <= frac < 1:
            raise ConfigError(
                f"{name}: validation_fraction={frac!r} is not allowed; use a number in [0, 1)"
            )
        check_int(name, "sample_stride", self.sample_stride, 1)
        if self.train_window is not None:
            check_int(name, "train_window", self.train_window, 1)
            if self.train_window < self._least_train_window:
                raise ConfigError(
                    f"{name}: train_window={self.train_window!r} is shorter than one training "
                    f"date needs with lookback={self.lookback!r} ({self._least_train_window} "
                    "days: the lookback, a day before it, the next-day target and a "
                    "validation date when validation_fraction > 0); lengthen train_window or "
                    "shorten the lookback"
                )
        check_choice(name, "augmentation", self.augmentation, AUGMENTATIONS)
        if self.aug_strength != 0:
            check_positive(name, "aug_strength", self.aug_strength)
        check_seed(name, "seed", self.seed)
        self._check_torch_settings(name)

    @property
    def _n_scales(self) -> int:
        return self.n_scales if self.multiscale else 1

    @property
    def _n_outputs(self) -> int:
        return self.n_quantiles - 1 if self.distributional else 1

    @property
    def _least_train_window(self) -> int:
        """The fewest days of history `training_samples` can use.

        A lookback, the day before it and the next-day target of one training date, plus a
        validation date `sample_stride` days later when `validation_fraction` > 0.
        """
        validation = self.sample_stride if self.validation_fraction else 0
        return self.lookback + 2 + validation

    def _components(self, n_assets: int | None = None) -> int | None:
        """C checked against the lookback (and a universe of n assets, once known).

        None means raw returns (A = I), or, before n is known, the default C.
        """
        if not self.residual:
            return None
        return check_components(type(self).__name__, self.n_components, self.lookback, n_assets)

    def _operator(self, lookback: int) -> torch.Tensor:
        """Multi-scale feature map as a tensor. Shape: (H, L * R)."""
        op = multiscale_operator(lookback, self._n_scales, self.resample_length)
        return torch.from_numpy(op.astype(np.float32))

    @property
    def member_seeds(self) -> list[int]:
        """The seed of each ensemble member: `seed` first, then seeds derived from it."""
        derived = np.random.SeedSequence(int(self.seed)).generate_state(self.n_ensemble)
        return [int(self.seed)] + [int(v) for v in derived[1:]]

    def _build_member(self, input_scale: float, seed: int) -> ResidualPredictor:
        # Initialise from the seed without disturbing the caller's global torch RNG.
        with seeded_cpu_rng(seed):
            body = make_body(
                self.architecture,
                self._n_scales,
                self.resample_length,
                tuple(int(h) for h in self.hidden_sizes),
                self._n_outputs,
                self.psi1,
            )
        return ResidualPredictor(body, self.amplitude_invariant, self.distributional, input_scale)

    def _build_model(self, input_scale: float) -> ResidualPredictor | EnsemblePredictor:
        """One network (``n_ensemble=1``) or the untrained ensemble of all members."""
        if self.n_ensemble == 1:
            return self._build_member(input_scale, self.seed)
        return EnsemblePredictor([self._build_member(input_scale, s) for s in self.member_seeds])

    # ----------------------------------------------------------------- training

    def training_samples(self, history: Window) -> dict[str, np.ndarray]:
        """The samples `fit` trains on, split in time.

        The residuals of a date need every asset's return over its window, so samples come
        from a block of assets and trailing dates where all have returns. Each asset has a
        trailing run of returns (from its listing, or the history's start); taking the k assets
        with the longest runs gives a block of the k-th longest run (within `train_window`).
        `fit` takes the k that gives the most samples, k times the block's training dates (ties:
        more assets), among blocks of more than C assets: C, the components removed, is the
        one the scores use on the whole universe, so the network trains on the residuals it
        scores. So a recent listing joins training once its returns are worth more than the
        history it would cut off; until then the network, shared by all assets, still scores
        it.

        Returns
        -------
        dict with
            ``paths`` (D, k, H + 1) float32 residual paths (one day before the window first),
            ``targets`` (D, k) float32 next-day residual returns,
            ``ends`` (D,) the row of ``history.returns`` each window ends on (increasing),
            ``n_validation`` (): the last ``n_validation`` dates form the validation set,
            ``assets`` (k,) the columns of ``history.returns`` trained on (increasing).
        """
        name = type(self).__name__
        returns = np.asarray(history.returns, dtype=np.float64)
        h, rows = self.lookback, len(returns)
        broken = ~np.isfinite(returns[::-1])
        runs = np.where(broken.any(axis=0), broken.argmax(axis=0), rows)  # (n,)
        if self.train_window is not None:
            runs = np.minimum(runs, self.train_window)
        order = np.argsort(-runs, kind="stable")
        lengths = runs[order]  # decreasing: the block of the k first assets has lengths[k-1]
        dates = np.array([len(range(length - 2, h - 1, -self.sample_stride)) for length in lengths])
        components = self._components(returns.shape[1])  # the universe's C, as scored
        samples = np.arange(1, len(order) + 1) * dates
        least = 2 if self.validation_fraction else 1
        samples[dates < least] = -1
        samples[: components or 0] = -1  # k <= C assets leave no residual
        if samples.max() < 0:
            enough = int((dates >= least).sum())  # assets with enough days, longest first
            if 0 < enough <= (components or 0):
                raise DataError(
                    f"{name}: on {history.date.date()} only {enough} asset(s) have the "
                    f"{self._least_train_window} days of returns training needs, and removing "
                    f"n_components={components} components needs more than {components}; "
                    "lower n_components, or start the backtest (or refit) later"
                )
            raise DataError(
                f"{name}: the history ending {history.date.date()} has at most "
                f"{int(runs.max())} trailing days of returns per asset; training needs at least "
                f"{self._least_train_window} (lookback {h}, a day before it and a next-day "
                "target, and a validation date when validation_fraction > 0); start the "
                "backtest later or shorten the lookback"
            )
        best = int(np.flatnonzero(samples == samples.max())[-1]) + 1
        columns = np.sort(order[:best])
        first = rows - int(lengths[best - 1])
        usable = returns[first:, columns]
        ends = np.arange(len(usable) - 2, h - 1, -self.sample_stride)[::-1]
        paths, targets = residual_samples(usable, ends, h, components)
        # 1e-9 below: 0.07 * 100 is 7.000000000000001, which must not round up to 8
        n_val = math.ceil(self.validation_fraction * len(ends) - 1e-9)
        n_val = min(n_val, len(ends) - 1)
        return {
            "paths": paths,
            "targets": targets,
            "ends": ends + first,
            "n_validation": np.asarray(n_val),
            "assets": columns,
        }

    @property
    def min_history(self) -> int:
        """A lookback window plus a year of daily training samples before the first decision."""
        return self.lookback + TRAINING_YEAR

    def _fit(self, history: Window) -> Self:
        """Train the network on samples from `history` (all returns up to the fit date).

        `history` holds data of shape (T, n), NaN before an asset listed (`fit` calls this).
        """
        device = self._torch_device()
        samples = self.training_samples(history)
        n_val = int(samples["n_validation"])
        n_dates, n_assets = samples["targets"].shape
        n_train_dates = n_dates - n_val
        h = self.lookback
        paths = torch.from_numpy(samples["paths"].reshape(-1, h + 1))
        targets = torch.from_numpy(samples["targets"].reshape(-1))
        n_train = n_train_dates * n_assets  # samples are date-major: the split is in time
        op = self._operator(h)
        shape = (-1, self._n_scales, self.resample_length)

        train_paths, train_y = paths[:n_train].to(device), targets[:n_train].to(device)
        val_x = (paths[n_train:, 1:] @ op).reshape(shape).to(device)
        val_y = targets[n_train:].to(device)
        op = op.to(device)
        train_x = (train_paths[:, 1:] @ op).reshape(shape)
        # Global scales only condition the optimisation (losses in units of the target std).
        input_scale = float(train_x.square().mean().sqrt()) or 1.0
        target_scale = float(train_y.std()) if n_train > 1 else 0.0
        target_scale = target_scale if target_scale > 0 else 1.0

        members, best_epochs = [], []
        for member_seed in self.member_seeds:
            model, train_losses, val_losses, best_epoch = self._train_member(
                member_seed, input_scale, target_scale, train_paths, train_x, train_y, val_x, val_y
            )
            members.append(model)
            best_epochs.append(best_epoch)
            if len(members) == 1:  # member 0's curves (the only ones when n_ensemble=1)
                first_curves = train_losses, val_losses, best_epoch
        model = members[0] if len(members) == 1 else EnsemblePredictor(members).eval()
        train_losses, val_losses, best_epoch = first_curves

        self.model_ = model
        self.model_settings_ = self._model_settings()
        self.input_scale_ = input_scale
        self.target_scale_ = target_scale
        self.train_losses_ = train_losses
        self.validation_losses_ = val_losses
        self.best_epoch_ = best_epoch
        self.best_epochs_ = best_epochs
        self.n_train_samples_ = n_train
        self.n_validation_samples_ = n_val * n_assets
        self.sample_ends_ = samples["ends"]
        self.training_assets_ = tuple(history.assets[i] for i in samples["assets"])
        self.validation_start_ = (
            int(samples["ends"][n_train_dates]) if n_val else int(history.returns.shape[0])
        )
        return self

    def _train_member(
        self,
        seed: int,
        input_scale: float,
        target_scale: float,
        train_paths: torch.Tensor,
        train_x: torch.Tensor,
        train_y: torch.Tensor,
        val_x: torch.Tensor,
        val_y: torch.Tensor,
    ) -> tuple[ResidualPredictor, list[float], list[float], int]:
        """Train one network from `seed`; returns it (best epoch), its loss curves, best epoch."""
        device = train_x.device
        h = self.lookback
        op = self._operator(h).to(device)
        shape = (-1, self._n_scales, self.resample_length)
        n_train, n_val = len(train_y), len(val_y)
        model = self._build_member(input_scale, seed).to(device)
        levels = quantile_levels(self.n_quantiles).to(device)
        if self.weight_decay > 0:
            optimizer = torch.optim.AdamW(
                model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
        else:
            optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        generator = torch.Generator().manual_seed(seed)

        def objective(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if self.distributional:
                return pinball_loss(out, y, levels) / target_scale
            return (out[:, 0] - y).square().mean() / target_scale**2

        if self.distributional:  # c_j^2 = p_j(0) / (2 K) / target_scale, see `losses`
            density = gaussian_quantile_density(levels.cpu(), target_scale).to(device)
            penalty_weights = (density / (2 * len(levels)) / target_scale).sqrt()
        else:
            penalty_weights = torch.full((1,), 1.0 / target_scale, device=device)

        best_loss, best_state, best_epoch, stale = math.inf, None, 0, 0
        train_losses, val_losses = [], []
        for epoch in range(self.epochs):
            model.train()
            order = torch.randperm(n_train, generator=generator).to(device)
            total = 0.0
            for a in range(0, n_train, self.batch_size):
                idx = order[a : a + self.batch_size]
                if self.augmentation == "none":
                    x, e = train_x[idx], None
                else:
                    e = train_paths[idx, 1:]
                    if self.augmentation == "noise":
                        e = e + augmentation_noise(train_paths[idx], self.aug_strength, generator)
                    else:
                        e = e.clone().requires_grad_(True)
                    x = (e @ op).reshape(shape)
                out = model(x)
                loss = objective(out, train_y[idx])
                if self.augmentation == "penalty":
                    noise_var = self.aug_strength**2 * train_paths[idx, :-1].abs()
                    loss = loss + noise_penalty(out, e, noise_var, penalty_weights, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            train_losses.append(total / n_train)
            if n_val == 0:
                continue
            model.eval()
            with torch.no_grad():
                val_loss = float(objective(model(val_x), val_y))
            val_losses.append(val_loss)
            if val_loss < best_loss:
                best_loss, best_epoch, stale = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            best_epoch = len(train_losses) - 1
        model.eval()
        return model, train_losses, val_losses, best_epoch

    # ----------------------------------------------------------------- decisions

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError(
                f"{type(self).__name__}: not fitted; call fit(history) first (the backtest "
                "does so on its retrain schedule)"
            )
        self._check_unchanged()

    def predict(self, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network outputs for every stock of every window.

        Parameters
        ----------
        returns : ndarray of shape (D, H, n)
            Finite return windows, H = lookback.

        Returns
        -------
        outputs : ndarray of shape (D, n, K)
            K = Q - 1 sorted quantiles (distributional) or K = 1 point prediction.
        residuals : ndarray of shape (D, H, n)
        projection : ndarray of shape (D, n, n)
            A (the identity when ``residual=False``).
        """
        self._check_fitted()
        returns = self._check_windows(returns)
        with self._threads():
            return self._predict(returns)

    def _check_windows(self, returns: object) -> np.ndarray:
        """`returns` as float64 of shape (D, lookback, n), finite, else `DataError`."""
        name = type(self).__name__
        try:
            windows = np.asarray(returns, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{name}: returns are not numeric ({exc}); pass a float array") from exc
        if windows.ndim != 3 or windows.shape[1] != self.lookback:
            raise DataError(
                f"{name}: returns have shape {windows.shape}; pass windows of shape (D, "
                f"{self.lookback}, n): D windows of lookback={self.lookback} returns of n assets"
            )
        if not np.isfinite(windows).all():
            d, t, i = (int(v) for v in np.argwhere(~np.isfinite(windows))[0])
            raise DataError(
                f"{name}: returns[{d}, {t}, {i}] is not finite; pass windows of assets with a "
                "full lookback (Panel.eligible)"
            )
        return windows

    def _predict(self, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d, h, n = returns.shape
        c = self._components(n)
        if c is None:
            residuals, projection = returns, np.broadcast_to(np.eye(n), (d, n, n))
        else:
            residuals, projection = spectral_residuals(returns, c)
        device = next(self.model_.parameters()).device
        paths = torch.from_numpy(
            np.ascontiguousarray(residuals.transpose(0, 2, 1), dtype=np.float32).reshape(-1, h)
        ).to(device)
        with torch.no_grad():
            x = (paths @ self._operator(h).to(device)).reshape(
                -1, self._n_scales, self.resample_length
            )
            out = self.model_(x).cpu().numpy().astype(np.float64)
        return out.reshape(d, n, -1), residuals, projection

    def scores(self, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual-space scores ``mean / variance`` and projections.

        Shape: input (D, H, n); outputs (D, n), (D, n, n). A stock without usable variance
        (`batched.has_variance`) scores 0.
        """
        out, residuals, projection = self.predict(returns)
        # ddof=1 as the baselines (`residual_baselines`); the book is scaled to gross 1, so the
        # divisor's common factor does not move it. A residual of rounding noise (a constant
        # price: no variance to project) would score 1e17 and take the whole book.
        residual_var = residuals.var(axis=1, ddof=1)
        usable = has_variance(residual_var, np.var(returns, axis=1, ddof=1))
        if self.distributional:
            mean, var = (m.numpy() for m in quantile_moments(torch.from_numpy(out)))
            usable &= has_variance(var)
        else:
            mean, var = out[..., 0], residual_var
        score = np.divide(mean, var, out=np.zeros_like(mean), where=usable)
        return score, projection

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        returns = window_returns(batch, self.lookback, type(self).__name__)
        score, projection = self.scores(np.asarray(returns, dtype=np.float64))
        return factor_neutral_book(score, projection)

    # ----------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write settings and learned state to `path` (``torch.load(weights_only=True)`` safe).

        The file is written to a temporary name and renamed, so a failed save leaves nothing
        half-written.
        """
        self._check_fitted()
        settings = self.get_params(deep=False)
        settings["hidden_sizes"] = [int(h) for h in self.hidden_sizes]
        payload = {
            "format": _FORMAT,
            "class": type(self).__name__,
            "settings": settings,
            "state": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
            "fitted": {
                "input_scale_": self.input_scale_,
                "target_scale_": self.target_scale_,
                "train_losses_": list(self.train_losses_),
                "validation_losses_": list(self.validation_losses_),
                "best_epoch_": self.best_epoch_,
                "best_epochs_": [int(e) for e in self.best_epochs_],
                "n_train_samples_": self.n_train_samples_,
                "n_validation_samples_": self.n_validation_samples_,
                "sample_ends_": torch.from_numpy(np.asarray(self.sample_ends_)),
                "training_assets_": list(self.training_assets_),
                "validation_start_": self.validation_start_,
            },
        }
        save_payload(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DeepResidual:
        """Read a strategy written by `save` (on CPU unless its device setting says otherwise)."""
        payload = load_payload(path, cls.__name__, _FORMAT)
        settings = dict(payload["settings"])
        settings["hidden_sizes"] = tuple(settings["hidden_sizes"])
        obj = cls(**settings)
        fitted = payload["fitted"]
        model = obj._build_model(fitted["input_scale_"])
        model.load_state_dict(payload["state"])
        obj.model_ = model.to(obj._torch_device()).eval()
        for key, value in fitted.items():
            if isinstance(value, torch.Tensor):
                value = value.numpy()
            setattr(obj, key, tuple(value) if key == "training_assets_" else value)
        obj.model_settings_ = obj._model_settings()
        return obj
