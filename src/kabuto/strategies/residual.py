"""Spectral residuals: what the top principal components of a return window do not explain.

Imajo, Minami, Ito, Nakagawa (AAAI 2021), section 3: over a window of H daily returns, demean
each asset, take the top C principal directions U_C (n x C) and project onto their orthogonal
complement, ``A = I - U_C U_C'``. Residual returns are ``R A``; any stock portfolio ``b = A w``
has zero exposure to the C components. One decomposition per decision date, batched over dates.
"""

from __future__ import annotations

import numpy as np

from kabuto.errors import ConfigError


def default_components(n_assets: int) -> int:
    """A number of components well below the universe: about one per ten assets, at least 1,
    and below the number of assets (a single asset gets 0: its residual is its own return)."""
    return min(max(1, n_assets // 10), max(n_assets - 1, 0))


def check_components(
    owner: str, n_components: int | None, lookback: int, n_assets: int | None = None
) -> int | None:
    """C checked against windows of `lookback` returns (and `n_assets` assets, once known).

    A demeaned window of H returns spans at most H - 1 directions (and at most n), so removing
    C >= H - 1 of them leaves residuals of pure rounding noise (variance ~1e-35) that a score
    divided by it would trade at full size. The largest allowed C is ``min(H, n + 1) - 2``.

    Parameters
    ----------
    owner : str
        Name for error messages.
    n_components : int or None
        C; None means `default_components` of the universe (nothing to check before it is
        known).
    lookback : int
        H, returns per window.
    n_assets : int, optional
        n; None at construction, before the universe is known.

    Returns
    -------
    int or None
        C (the default resolved once `n_assets` is given); None when both are None.

    Raises
    ------
    ConfigError
        If C is negative, not below n, or above H - 2.
    """
    if n_components is None:
        if n_assets is None:
            return None
        c, source = default_components(n_assets), " (the default, one per ten assets)"
    else:
        c, source = int(n_components), ""
    if c < 0:
        raise ConfigError(f"{owner}: n_components={c} is not allowed; use an integer >= 0")
    if n_assets is not None and c >= n_assets:
        raise ConfigError(
            f"{owner}: n_components={c}{source} is not allowed for {n_assets} assets; use an "
            f"integer below {n_assets}, e.g. {default_components(n_assets)} (the default)"
        )
    if c > lookback - 2:
        fewer = f"n_components <= {lookback - 2} or " if lookback >= 2 else ""
        raise ConfigError(
            f"{owner}: n_components={c}{source} is not allowed with lookback={lookback}: a "
            f"demeaned window of {lookback} returns spans at most {lookback - 1} directions, and "
            f"removing {c} leaves only rounding noise to trade; use {fewer}a lookback of at "
            f"least {c + 2}"
        )
    return c


def spectral_projection(returns: np.ndarray, n_components: int) -> np.ndarray:
    """The residual projection ``A = I - U_C U_C'`` of each window.

    Parameters
    ----------
    returns : ndarray of shape (..., H, n)
        Windows of daily returns (any leading batch shape).
    n_components : int
        C, the number of principal components removed; ``0 <= C <= min(H, n + 1) - 2`` (see
        `check_components`).

    Returns
    -------
    ndarray of shape (..., n, n)
        Symmetric idempotent projections, one per window.

    Raises
    ------
    ConfigError
        If C is out of that range.
    """
    h, n = returns.shape[-2:]
    check_components("spectral_projection", n_components, h, n)
    centred = returns - returns.mean(axis=-2, keepdims=True)
    # The principal directions are the top eigenvectors of the n x n Gram matrix: an
    # eigendecomposition of that is several times cheaper than an SVD of the H x n window.
    gram = np.swapaxes(centred, -1, -2) @ centred
    _, vectors = np.linalg.eigh(gram)  # ascending eigenvalues
    top = vectors[..., n - n_components :]  # (..., n, C)
    return np.eye(n) - top @ np.swapaxes(top, -1, -2)


def spectral_residuals(returns: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Residual returns ``R A`` of each window and its projection A.

    Parameters
    ----------
    returns : ndarray of shape (..., H, n)
    n_components : int

    Returns
    -------
    residuals : ndarray of shape (..., H, n)
    projection : ndarray of shape (..., n, n)
    """
    projection = spectral_projection(returns, n_components)
    return returns @ projection, projection


def factor_neutral_book(scores: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Stock weights ``b = A w`` from residual-space scores w, scaled to gross leverage 1.

    Parameters
    ----------
    scores : ndarray of shape (..., n)
        Residual-space weights (e.g. predicted mean / variance per asset).
    projection : ndarray of shape (..., n, n)
        The residual projections A.

    Returns
    -------
    ndarray of shape (..., n)
        ``sum |b| = 1`` (long-short, zero exposure to the removed components); all zeros where
        the projected scores vanish (nothing to trade on).
    """
    book = (projection @ scores[..., None])[..., 0]
    gross = np.abs(book).sum(axis=-1, keepdims=True)
    return np.divide(book, gross, out=np.zeros_like(book), where=gross > 1e-15)
