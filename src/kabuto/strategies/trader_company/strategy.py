"""`TraderCompanyStrategy`: the Trader-Company predictor (and UTC) as a long-short strategy.

At every retrain the strategy turns its whole history into per-asset features (`features`,
scaled by each series' trailing volatility) and next-day targets: each asset's return from t to
t+1 minus the universe's mean return (the book is dollar neutral), over its volatility at t. Its
`TraderCompany` evolves on the trailing `train_window` of them. The first fit starts a random
population; later fits of the same backtest continue evolving it (the paper's online
operation), so formulas that keep working survive from one retrain to the next.

At a decision date t the Company predicts every asset's return from t to t+1 from the features
of rows t - max_delay..t (scaled by the trailing `vol_window` returns; rows <= t only), back in
return units, and the book is

* ``"proportional"``: weights proportional to the cross-sectionally demeaned prediction;
* ``"mean_variance"`` (UTC only): proportional to the demeaned ``mean / variance`` of the
  Company's predictive distribution;
* ``"quantile"``: equal long weights on the top `quantile` of predictions, equal short weights on
  the bottom `quantile`;

always dollar neutral with gross leverage 1 (all zero when the predictions do not differ).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np

from kabuto.data.panel import Window, WindowBatch
from kabuto.errors import ConfigError, DataError, KabutoWarning
from kabuto.strategies.base import check_unchanged
from kabuto.strategies.batched import (
    TRAINING_YEAR,
    BatchedStrategy,
    check_int,
    window_returns,
)
from kabuto.strategies.trader_company.company import AGGREGATIONS, TraderCompany
from kabuto.strategies.trader_company.formulas import DEFAULT_ACTIVATIONS, DEFAULT_OPERATORS

__all__ = ["FEATURES", "SIZINGS", "TraderCompanyStrategy", "return_features", "trailing_rms"]

FEATURES = ("ret", "mkt")
"""Per-asset features: ``ret`` the asset's own daily return, ``mkt`` the equal-weight mean
return of the universe that day (the same for every asset)."""

SIZINGS = ("proportional", "mean_variance", "quantile")


def _market(returns: np.ndarray) -> np.ndarray:
    """Equal-weight mean over the finite returns of each row. Shape: (..., T, n) -> (..., T, 1)."""
    finite = np.isfinite(returns)
    count = finite.sum(axis=-1, keepdims=True)
    total = np.where(finite, returns, 0.0).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def trailing_rms(values: np.ndarray, window: int) -> np.ndarray:
    """Root mean square of the last `window` rows up to each row (rows <= t only).

    Shape: input (..., T, n), output (..., T, n); NaN for the first ``window - 1`` rows and
    wherever the window holds a NaN.
    """
    out = np.full(values.shape, np.nan)
    if values.shape[-2] >= window:
        squares = np.lib.stride_tricks.sliding_window_view(values**2, window, axis=-2)
        out[..., window - 1 :, :] = np.sqrt(squares.mean(axis=-1))
    return out


def return_features(
    returns: np.ndarray, names: Sequence[str], vol_window: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-asset features named by `FEATURES`, and each asset's volatility, from returns.

    With `vol_window`, every feature is divided by its own trailing RMS over `vol_window` rows
    (a z-score of the day's move), so that one formula means the same for a calm and a volatile
    asset and its comparisons and activations act on comparable numbers.

    Shape: input (..., T, n); output features (..., T, F, n) and volatility (..., T, n) (the
    trailing RMS of each asset's own return; ones without `vol_window`). NaN returns (an asset
    not yet listed) give NaN features and are left out of ``mkt``; a series with no move over
    the window has no scale, so its features (and volatility) are NaN there.
    """
    returns = np.asarray(returns, dtype=np.float64)
    market = np.broadcast_to(_market(returns), returns.shape)
    raw = {"ret": returns, "mkt": market}
    if vol_window is None:
        return np.stack([raw[f] for f in names], axis=-2), np.ones_like(returns)
    scaled = {name: _over(value, trailing_rms(value, vol_window)) for name, value in raw.items()}
    vol = trailing_rms(returns, vol_window)
    return np.stack([scaled[f] for f in names], axis=-2), np.where(vol > 0, vol, np.nan)


def _over(value: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """value / scale, NaN where the scale is 0 (a series that did not move: no z-score)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, value / scale, np.nan)


class TraderCompanyStrategy(BatchedStrategy):
    """Trader-Company method (Ito et al., AAMAS 2021), optionally UTC, as a long-short book.

    Parameters
    ----------
    lookback : int, default=84
        Returns each decision sees: at least ``vol_window + max_delay`` (``max_delay + 1``
        without `vol_window`).
    train_window : int, default=504
        Most recent rows of the history the Company scores and fits its Traders on at each
        retrain. The last row has no next-day target yet, so that is ``train_window - 1``
        target dates.
    features : tuple of str, default=("ret", "mkt")
        Per-asset features (see `FEATURES`), in the order formulas name them.
    vol_window : int or None, default=63
        Trailing days of the RMS that scales every feature and target (see
        `return_features`); predictions come back in return units. None: raw returns.
    n_traders, max_terms, max_delay : int, default=100, 10, 10
        N Traders of at most M terms; largest delay of an operand in days. M = 10 (the
        paper's bound) rather than 5: on the tuning factor markets (seeds 1-3) the search
        more often kept every lag of the planted 5-day reversal (net Sharpe 0.58 of the oracle
        against 0.51 with M = 5).
    operators, activations : sequence of str, default all
        See `kabuto.strategies.trader_company.formulas`.
    educate_fraction, prune_fraction : float, default=0.5, 0.5
    aggregation : {"mean", "top_mean", "linear"}, default="mean"
    top_fraction : float, default=0.2
    ridge : float, default=1e-3
    n_rounds : int, default=100
        Evolution rounds at every retrain (the first fit and every continued one).
    uncertainty : bool, default=False
        UTC (Fujimoto et al. 2022): Bayesian Traders and a predictive variance.
    sizing : {"proportional", "mean_variance", "quantile"}, default="proportional"
        "mean_variance" needs ``uncertainty=True``.
    quantile : float in (0, 0.5], default=0.2
        Share of assets held long (and short) with ``sizing="quantile"``.
    seed : int, default=0
        Seeds the Company (same seed and data, same formulas).
    label : str, optional

    Attributes
    ----------
    company_ : TraderCompany
        The evolved Company after the last fit.
    fit_date_ : Timestamp
        Last date of the history the last fit saw.
    """

    long_only: ClassVar[bool] = False
    _choices: ClassVar = {"sizing": SIZINGS, "aggregation": AGGREGATIONS}
    _flags: ClassVar = ("uncertainty",)

    def __init__(
        self,
        lookback: int = 84,
        train_window: int = 504,
        features: Sequence[str] = FEATURES,
        vol_window: int | None = 63,
        n_traders: int = 100,
        max_terms: int = 10,
        max_delay: int = 10,
        operators: Sequence[str] = DEFAULT_OPERATORS,
        activations: Sequence[str] = DEFAULT_ACTIVATIONS,
        educate_fraction: float = 0.5,
        prune_fraction: float = 0.5,
        aggregation: str = "mean",
        top_fraction: float = 0.2,
        ridge: float = 1e-3,
        n_rounds: int = 100,
        uncertainty: bool = False,
        sizing: str = "proportional",
        quantile: float = 0.2,
        seed: int = 0,
        label: str | None = None,
    ) -> None:
        self.lookback = lookback
        self.train_window = train_window
        self.features = features
        self.vol_window = vol_window
        self.n_traders = n_traders
        self.max_terms = max_terms
        self.max_delay = max_delay
        self.operators = operators
        self.activations = activations
        self.educate_fraction = educate_fraction
        self.prune_fraction = prune_fraction
        self.aggregation = aggregation
        self.top_fraction = top_fraction
        self.ridge = ridge
        self.n_rounds = n_rounds
        self.uncertainty = uncertainty
        self.sizing = sizing
        self.quantile = quantile
        self.seed = seed
        self.label = label
        self._validate()

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        check_int(name, "max_delay", self.max_delay, 0)
        if self.vol_window is not None:
            check_int(name, "vol_window", self.vol_window, 2)
        if self.lookback < self._rows_needed:
            raise ConfigError(
                f"{name}: lookback={self.lookback} is too short for max_delay={self.max_delay} "
                f"and vol_window={self.vol_window}; use lookback >= {self._rows_needed}"
            )
        check_int(name, "train_window", self.train_window, 2)
        names = self.features
        if (
            isinstance(names, str)
            or not isinstance(names, Sequence)
            or not names
            or any(f not in FEATURES for f in names)
            or len(set(names)) != len(names)
        ):
            raise ConfigError(
                f"{name}: features={names!r} is not allowed; use distinct names from "
                + ", ".join(repr(f) for f in FEATURES)
            )
        if self.sizing == "mean_variance" and not self.uncertainty:
            raise ConfigError(
                f"{name}: sizing='mean_variance' needs the UTC variance; set uncertainty=true or "
                "use sizing='proportional'"
            )
        q = self.quantile
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q <= 0.5:
            raise ConfigError(f"{name}: quantile={q!r} is not allowed; use a number in (0, 0.5]")
        self._company()  # the Company checks its own settings

    @property
    def _rows_needed(self) -> int:
        """Returns needed for the features of the last row with every delay."""
        return (self.vol_window or 1) + self.max_delay

    def _company(self) -> TraderCompany:
        return TraderCompany(
            n_traders=self.n_traders,
            max_terms=self.max_terms,
            max_delay=self.max_delay,
            operators=_as_tuple(self.operators),
            activations=_as_tuple(self.activations),
            educate_fraction=self.educate_fraction,
            prune_fraction=self.prune_fraction,
            aggregation=self.aggregation,
            top_fraction=self.top_fraction,
            ridge=self.ridge,
            window=self.train_window,
            n_rounds=self.n_rounds,
            uncertainty=self.uncertainty,
            warm_start=True,
            seed=self.seed,
            feature_names=_as_tuple(self.features),
        )

    @property
    def min_history(self) -> int:
        """A year of next-day targets after the first full feature window."""
        return self.lookback + TRAINING_YEAR

    def fit(self, history: Window) -> Self:
        """Evolve the Company on `history` (all returns up to the fit date).

        A later fit (history ending after the last one) continues from the evolved population.
        The first fit after `reset` (which the backtest calls before it starts), a history
        ending no later than the last one, or changed settings start a new population, so the
        same settings and data always give the same formulas.
        """
        self._validate()
        returns = np.asarray(history.returns, dtype=np.float64)
        if returns.shape[0] < self._rows_needed + 2:
            raise DataError(
                f"{type(self).__name__}: the history ending {history.date.date()} has "
                f"{returns.shape[0]} days; training needs at least {self._rows_needed + 2} "
                "(features of one row and a next-day target); start the backtest later"
            )
        if returns.shape[1] < 2:
            warnings.warn(
                f"{type(self).__name__}: {returns.shape[1]} asset(s) eligible on "
                f"{history.date.date()}; its dollar-neutral book holds nothing (all cash) until "
                "at least two are",
                KabutoWarning,
                stacklevel=2,
            )
        features, vol = return_features(returns, self.features, self.vol_window)
        # The book is dollar neutral, so what matters is each asset's next-day return relative
        # to the universe's mean: traders are fitted and scored on that (a market-timing
        # formula would otherwise win on a score the book cannot earn).
        targets = np.full_like(returns, np.nan)
        following = returns[1:]
        targets[:-1] = _over(following - _market(following), vol[:-1])
        fresh = self._company()
        previous = getattr(self, "fit_date_", None)
        if (
            previous is None
            or history.date <= previous
            or self.company_.get_params() != fresh.get_params()  # settings changed since
        ):
            self.company_ = fresh
        self.company_.fit(features, targets)
        self.fit_date_ = history.date
        self.fit_settings_ = self._model_settings()
        return self

    def _model_settings(self) -> dict:
        """Every setting but the book's (sizing, quantile, label): a change to any of them
        (even one only the next fit reads, such as the seed) asks for a fit before the next
        allocate, so that weights always come from the settings the strategy shows."""
        book = ("sizing", "quantile", "label")
        return {k: v for k, v in self.get_params().items() if k not in book}

    def reset(self) -> None:
        """Drop the evolved Company: the next `fit` starts a new population (a new backtest)."""
        for attribute in ("company_", "fit_date_", "fit_settings_"):
            if hasattr(self, attribute):
                delattr(self, attribute)

    def explanation(self, k: int = 10) -> str | None:
        """The `k` best Traders' formulas, weights and scores after the last fit (None before)."""
        if not hasattr(self, "company_"):
            return None
        return (
            f"fitted on history up to {self.fit_date_.date()}; target: each asset's next-day "
            f"return minus the universe's mean, in units of its trailing {self.vol_window}-day "
            "volatility (so a score, summed over the fit window's dates and assets, is in those "
            "units, not a return)\n" + self.company_.describe(k)
        )

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        name = type(self).__name__
        if not hasattr(self, "company_"):
            raise DataError(f"{name}: allocate before fit; fit the strategy on a history first")
        check_unchanged(name, self.fit_settings_, self._model_settings())
        # The decision at t predicts from features of rows t - max_delay..t only (a formula
        # reads rows t - D, D <= max_delay), each scaled by the trailing vol_window rows: the
        # last `_rows_needed` returns give them all. Predicting every row of the window would
        # be discarded work (73 of its 84 rows with the defaults).
        returns = window_returns(batch, self.lookback, name)[:, -self._rows_needed :]
        d, _, n = returns.shape
        features, vol = return_features(returns, self.features, self.vol_window)
        rows = self.max_delay + 1
        # Formulas are shared by all assets, so the D windows stack along the asset axis.
        stacked = features[:, -rows:].transpose(1, 2, 0, 3).reshape(rows, len(self.features), -1)
        scale = vol[:, -1]  # (D, n): predictions are in units of each asset's volatility
        if self.sizing == "mean_variance":
            mean, variance = self.company_.predict_distribution(stacked)
            score = _over(mean[-1].reshape(d, n), variance[-1].reshape(d, n) * scale)
        else:
            score = self.company_.predict(stacked)[-1].reshape(d, n) * scale
        return _long_short_book(score, self.sizing, self.quantile)


def _as_tuple(names: object) -> object:
    """A list of names as a tuple; anything else as it is, for the Company's own check (a
    string would otherwise become its letters)."""
    return tuple(names) if isinstance(names, list | tuple) else names


def _long_short_book(score: np.ndarray, sizing: str, quantile: float) -> np.ndarray:
    """Dollar-neutral weights with gross leverage 1 from scores. Shape: (D, n) -> (D, n).

    Assets without a finite score get 0; a date whose scores do not differ gets all zeros.
    """
    finite = np.isfinite(score)
    if sizing == "quantile":
        n = finite.sum(axis=1, keepdims=True)
        k = np.maximum(np.floor(quantile * n), 1)
        ranks = np.argsort(np.argsort(np.where(finite, score, np.inf), axis=1), axis=1)
        raw = (finite & (ranks >= n - k)).astype(float) - (finite & (ranks < k)).astype(float)
    else:
        count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
        mean = np.where(finite, score, 0.0).sum(axis=1, keepdims=True) / count
        raw = np.where(finite, score - mean, 0.0)
    # Scores that do not differ (beyond rounding) carry no view: demeaning would leave only
    # rounding residue, which scaling to gross 1 blows up into a one-sided book. Fewer than two
    # finite scores do not differ either.
    high = np.where(finite, score, -np.inf).max(axis=1)
    low = np.where(finite, score, np.inf).min(axis=1)
    magnitude = np.abs(np.where(finite, score, 0.0)).max(axis=1)
    raw[~(high - low > 1e-9 * magnitude)] = 0.0
    gross = np.abs(raw).sum(axis=1, keepdims=True)
    return np.where(gross > 0, raw / np.where(gross > 0, gross, 1.0), 0.0)
