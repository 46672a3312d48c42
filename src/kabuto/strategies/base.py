"""The strategy protocol (DESIGN.md, "Strategy protocol").

A strategy declares how much history it needs (`lookback`), learns on a training window (`fit`,
called on the retrain schedule) and returns target weights for a decision date from the window
ending there (`allocate`). Strategies whose decision does not depend on their own previous
weights (``stateful = False``) may override `allocate_batch` to decide many dates at once; the
engine uses that fast path. Settings live in ``__init__``; learned state in attributes ending in
``_``; `fit` returns ``self`` (scikit-learn conventions, so `sklearn.base.clone` works).

Weights are a vector over the window's assets; cash is ``1 - sum(weights)``.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from kabuto.data.panel import Window, WindowBatch
from kabuto.errors import ArgumentError, ConfigError


class Strategy(BaseEstimator):
    """Base class for allocation policies.

    Subclasses set `lookback` (number of returns `allocate` needs) and implement `allocate`.

    Class attributes
    ----------------
    stateful : bool
        True when `allocate` uses `prev_weights`; the engine then calls it date by date.
    long_only : bool
        Whether the strategy only ever holds non-negative weights. The backtest checks the
        weights it returns against the declared book; it never clips them.
    """

    stateful: ClassVar[bool] = False
    long_only: ClassVar[bool] = True
    lookback: int = 252

    @property
    def min_history(self) -> int:
        """Returns of history the first decision needs (to fit, then allocate).

        Defaults to `lookback`; learned strategies that train on samples of `lookback`-day
        windows need more. The backtest starts no earlier than every strategy's min_history.
        """
        return self.lookback

    @property
    def name(self) -> str:
        """Label used in results; override per instance with the ``label`` setting if present."""
        label = getattr(self, "label", None)
        return label or type(self).__name__

    def fit(self, history: Window) -> Self:
        """Learn from the training window ending at the retrain date. Default: nothing to learn."""
        return self

    def reset(self) -> None:
        """Forget state carried from one fit to the next; the backtest calls it before it starts.

        Default: nothing to forget (each `fit` starts afresh).
        """

    def allocate(self, window: Window, prev_weights: np.ndarray | None = None) -> np.ndarray:
        """Target weights of shape (n,) for the decision date ``window.date``."""
        raise NotImplementedError

    def allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        """Target weights of shape (D, n) for every decision date in the batch.

        The default calls `allocate` per date; stateless strategies override it to vectorise.
        Weights given as pandas Series indexed by asset come back as a DataFrame (dates x
        assets), which the engine aligns by label.
        """
        chosen = [self.allocate(batch.window(d)) for d in range(len(batch))]
        if chosen and all(isinstance(w, pd.Series) for w in chosen):
            return pd.DataFrame(chosen)
        try:
            return np.stack(chosen)
        except (TypeError, ValueError):  # mixed shapes or types: the engine says what is wrong
            return chosen


HELD_ROUNDING = 1e-9  # how far drifted weights may round past a long-only book's bounds


def held_weights(
    owner: str, prev_weights: np.ndarray | None, window: Window, *, long_only: bool
) -> np.ndarray | None:
    """`prev_weights` as a float array aligned with the window's assets (None stays None).

    Raises
    ------
    ArgumentError
        If the engine (or a caller) passed weights for a different set of assets, non-finite
        ones, or (for a `long_only` strategy) a short or borrowed book, which its own weights
        can never drift into.
    """
    if prev_weights is None:
        return None
    prev = np.asarray(prev_weights, dtype=np.float64)
    if prev.shape != (window.n_assets,):
        raise ArgumentError(
            f"{owner}: prev_weights has shape {prev.shape} but the window ending "
            f"{window.date.date()} has {window.n_assets} assets; align the drifted weights with "
            "window.assets before calling allocate"
        )
    if not np.isfinite(prev).all():
        raise ArgumentError(f"{owner}: prev_weights {prev} are not all finite; pass finite weights")
    # drift keeps a long-only book long and unborrowed, up to rounding
    if long_only and (prev.min() < -HELD_ROUNDING or prev.sum() > 1.0 + HELD_ROUNDING):
        raise ArgumentError(
            f"{owner}: prev_weights {prev} (sum {prev.sum():.6g}) are not a long-only book; "
            "pass weights >= 0 that sum to at most 1 (the rest is cash)"
        )
    return prev


def check_unchanged(owner: str, fitted: dict, now: dict) -> None:
    """ConfigError naming the settings that differ between the fit's snapshot and now: a
    strategy's weights must come from the settings it shows (`set_params` after `fit`)."""
    changed = [k for k, v in fitted.items() if now.get(k) != v]
    if changed:
        raise ConfigError(
            f"{owner}: {', '.join(changed)} changed since the last fit; fit again before "
            "allocating (a backtest does), or restore them"
        )
