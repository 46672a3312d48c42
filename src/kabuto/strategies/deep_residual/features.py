"""Multi-scale ("fractal") input features and training samples for the deep residual strategy.

Imajo, Minami, Ito, Nakagawa (AAAI 2021), section 4: a residual return path e of H days is seen
at L time scales ``tau_l = 4 ** (-l / (L - 1))``, l = 0..L-1 (tau = 1 when L = 1). At scale tau
the cumulative path ``P_0 = 0, P_k = e_1 + ... + e_k`` (H + 1 points) is cut to its last
``m + 1`` points, ``m = ceil(tau H)`` (the last m returns), resampled by linear interpolation to
``R + 1`` equally spaced points, differenced (R increments) and multiplied by ``tau ** -1/2``, so
that a Brownian path gives increments of the same size at every scale.

Every step is linear in e, so the whole construction is one matrix ``M`` of shape (H, L * R):
features are ``e @ M``. Training keeps the residual paths and applies M per minibatch, which
makes noise injection on the returns (Ziyin, Minami, Imajo, ICAIF 2022) a cheap matmul.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from kabuto.strategies.residual import spectral_projection

__all__ = [
    "augmentation_noise",
    "multiscale_features",
    "multiscale_operator",
    "residual_samples",
    "scales",
]


def scales(n_scales: int) -> np.ndarray:
    """The time scales ``tau_l = 4 ** (-l / (L - 1))``, l = 0..L-1, largest first.

    Shape: output (L,). ``[1.0]`` when L = 1.
    """
    if n_scales == 1:
        return np.ones(1)
    return 4.0 ** (-np.arange(n_scales) / (n_scales - 1))


def multiscale_operator(lookback: int, n_scales: int, resample_length: int) -> np.ndarray:
    """The linear map from a return path to its multi-scale features.

    Parameters
    ----------
    lookback : int
        H, the number of returns in a path.
    n_scales : int
        L.
    resample_length : int
        R, the number of increments per scale.

    Returns
    -------
    ndarray of shape (H, L * R)
        ``features = returns @ M``; column block l holds scale ``tau_l``.
    """
    h, r = lookback, resample_length
    blocks = []
    for tau in scales(n_scales):
        m = min(h, math.ceil(tau * h - 1e-9))  # guard 0.25 * 256 = 64.0000001 style rounding
        # cumulative path P (H + 1 points) as a linear map of e: P_k = sum_{i <= k} e_i
        cumulative = np.tril(np.ones((h + 1, h)), k=-1)  # (H + 1, H): row k sums e_1..e_k
        # linear interpolation of the last m + 1 points at R + 1 equally spaced positions
        pos = np.linspace(h - m, h, r + 1)
        left = np.minimum(np.floor(pos).astype(np.int64), h - 1)
        frac = pos - left
        interp = np.zeros((r + 1, h + 1))
        interp[np.arange(r + 1), left] = 1.0 - frac
        interp[np.arange(r + 1), left + 1] += frac
        resampled = interp @ cumulative  # (R + 1, H)
        increments = (resampled[1:] - resampled[:-1]) / math.sqrt(tau)  # (R, H)
        blocks.append(increments.T)
    return np.concatenate(blocks, axis=1)


def multiscale_features(returns: np.ndarray, n_scales: int, resample_length: int) -> np.ndarray:
    """Multi-scale features of return paths (the paths run along the last axis).

    Shape: input (..., H), output (..., L, R).
    """
    returns = np.asarray(returns, dtype=np.float64)
    op = multiscale_operator(returns.shape[-1], n_scales, resample_length)
    out = returns @ op
    return out.reshape(*returns.shape[:-1], n_scales, resample_length)


def augmentation_noise(
    paths: torch.Tensor, strength: float, generator: torch.Generator
) -> torch.Tensor:
    """Gaussian noise for the observed returns of a path (Ziyin, Minami, Imajo, ICAIF 2022).

    Return ``r_t`` gets noise of standard deviation ``strength * sqrt(|r_{t-1}|)``, with
    ``r_{t-1}`` the previous day's return of the same asset (its own, or residual, return).

    Shape: input (N, H + 1) (the path with one day before it), output (N, H) (noise for the
    last H returns).
    """
    std = strength * paths[:, :-1].abs().sqrt()
    z = torch.randn(std.shape, generator=generator, dtype=std.dtype, device="cpu").to(std.device)
    return z * std


def residual_samples(
    returns: np.ndarray,
    ends: np.ndarray,
    lookback: int,
    n_components: int | None,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Residual paths and next-day residual returns for training, batched over dates.

    For each end date s, the projection ``A_s`` comes from the H returns s-H+1..s; the path is
    ``r_{s-H..s} A_s`` (H + 1 days: one extra day in front for the noise scale) and the target
    is ``r_{s+1} A_s``, the next day's return in the same residual space. With
    ``n_components=None`` (raw returns) A is the identity.

    Parameters
    ----------
    returns : ndarray of shape (T, n)
        Finite returns.
    ends : ndarray of shape (D,)
        End dates s, each with ``s - lookback >= 0`` and ``s + 1 < T``.
    lookback : int
    n_components : int or None
    chunk : int
        Dates per batched eigendecomposition (`spectral_projection`; bounds memory).

    Returns
    -------
    paths : ndarray of shape (D, n, H + 1), float32
    targets : ndarray of shape (D, n), float32
    """
    h = lookback
    windows = np.lib.stride_tricks.sliding_window_view(returns, h + 1, axis=0)  # (., n, H+1)
    paths, targets = [], []
    for a in range(0, len(ends), chunk):
        s = ends[a : a + chunk]
        win = windows[s - h].transpose(0, 2, 1)  # (d, H + 1, n): rows s-H..s
        if n_components is None:
            paths.append(win.transpose(0, 2, 1))
            targets.append(returns[s + 1])
            continue
        proj = spectral_projection(win[:, 1:], n_components)  # from rows s-H+1..s only
        paths.append((win @ proj).transpose(0, 2, 1))
        targets.append((returns[s + 1][:, None, :] @ proj)[:, 0])
    return (
        np.concatenate(paths).astype(np.float32),
        np.concatenate(targets).astype(np.float32),
    )
