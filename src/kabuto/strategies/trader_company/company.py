"""`TraderCompany`: the Trader-Company method and its uncertainty-aware variant (UTC).

Method (Ito, Minami, Imajo, Nakagawa, AAMAS 2021, arXiv 2012.10215)
--------------------------------------------------------------------
A Company keeps N Traders, each a weighted sum of at most M simple formulas
(`kabuto.strategies.trader_company.formulas`). One evolution round on the trailing `window`:

1. **Score.** A Trader's performance is the cumulative return of trading the sign of its
   prediction over the window, ``C = sum_t sign(f(X_t)) * y_t`` (summed over assets here,
   because the data are pooled across assets).
2. **Educate.** The worst `educate_fraction` (the paper's Q) of Traders refit their weights
   ``w`` by least squares on the window, keeping their formulas. Here: ridge-stabilised least
   squares (see `ridge`).
3. **Prune and generate.** The worst `prune_fraction` of Traders are fired; as many new ones
   are drawn from a distribution fitted to the survivors' formula parameters: a Gaussian
   mixture for the number of terms, and a mixture over the survivors' terms for the terms.
4. **Aggregate.** The Company's prediction combines the Traders' predictions. As we read the
   paper, its Company takes the plain average of its Traders' predictions
   (``aggregation="mean"``, the default here); the UTC paper's Company is the equal-weight
   mixture of the Traders, whose mean it proves equal to the TC prediction, which agrees.
   ``"top_mean"`` (the average of the best `top_fraction`) and ``"linear"`` (ridge regression
   of the target on the Traders' predictions over the window) are options of ours.

The paper runs online: at every new date the Company educates, prunes and generates on the
latest window. `fit` does the same: a fitted Company given a longer history *continues* from
its population (``warm_start=True``, the default) instead of starting again; `evolve` is the
step it uses.

Uncertainty-aware variant (Fujimoto, Nakagawa, Imajo, Minami, 2022, arXiv 2210.17030)
-------------------------------------------------------------------------------------
With ``uncertainty=True`` the variance is estimated in two stages. Each Trader is a Bayesian
linear regression on its own terms: Gaussian prior ``w ~ N(0, sigma2 / kappa * I)`` and
Gaussian noise of variance ``sigma2``, so the posterior is ``N(m, S)`` with
``m = (G + kappa I)^-1 b`` and ``S = sigma2 (G + kappa I)^-1`` (``G = A'A``, ``b = A'y`` on the
Trader's valid cells). With ``kappa`` equal to the ridge penalty (``prior_precision=None``,
the default) the posterior mean *is* the plain method's weight vector, so the evolution and the
Company's predictive mean are identical to the plain Company's -- the property the UTC paper
proves ("no additional bias"). ``sigma2`` is estimated from the Trader's residuals,
``RSS / (n_valid - n_terms)``. The Trader's predictive distribution at features ``phi`` is
``N(m' phi, sigma2 + phi' S phi)`` (uncertainty about the weights given the formula). The
Company then treats its Traders as a mixture with the aggregation weights ``pi_k`` (uniform for
``"mean"``, uniform over the best for ``"top_mean"``): predictive mean ``mu = sum pi_k mu_k``
and variance ``sum pi_k v_k + sum pi_k (mu_k - mu)^2`` -- within-trader plus between-trader
variance (uncertainty about which Traders' strategies work). ``"linear"`` aggregation has
signed weights, not a mixture, and is refused with ``uncertainty=True``.

Where this implementation deviates from the papers (all documented on the settings)
-------------------------------------------------------------------------------------
* New Traders get least-squares weights as soon as they are generated, so a new formula is
  judged by what it can do, not by the luck of random weights. In the paper weights are
  corrected later by education. Consequence: within one `fit` on a fixed window, education only
  matters for Traders whose window has changed (the first round of a warm-started fit), which
  is exactly the online case the paper describes.
* Feature indices, operators and activations are unordered categories: within each mixture
  component they get categorical distributions (smoothed by a pseudo-count), while delays and
  the number of terms get Gaussians (rounded and clipped). A Gaussian on the integer code of an
  operator would make "mul" a neighbour of "sub" for no reason. `explore_fraction` of the new
  Traders are drawn uniformly instead, so that formulas the survivors never tried stay
  reachable.
* Scores are summed over all assets (pooled data); ranking is what matters, not the scale.
* ``ridge`` is relative: the penalty is ``ridge * mean(diag(A'A))``, so it does not depend on
  the scale of the terms or the number of cells.

Scores are in-sample (the window the weights were fitted on), as in the paper, so extra
terms rarely hurt a Trader's score and populations tend to grow towards `max_terms`; keep
`max_terms` small where short formulas matter more than the last bit of fit.

Speed: every (trader, term) pair is evaluated once per window and cached (`_WindowCache`);
only new Traders' terms are evaluated, a term already held by a survivor is copied rather
than recomputed, and only the Traders whose weights change are refitted (batched solves).
All random draws come from one ``numpy.random.Generator`` seeded by `seed`.

Provenance: the UTC summary above (two stages -- the Trader's uncertainty about its weights
given its formula, the Company's uncertainty about which Traders' strategies work; posterior
variance; no bias against TC under a prior assumption) was checked against the UTC paper's
text. The TC details (formula, sign-return score, least-squares education, mixture
generation, averaging) follow our reading of arXiv 2012.10215; the exact noise-variance rule
of the UTC paper was not available to us, hence the residual estimate.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
from sklearn.base import BaseEstimator

from kabuto.errors import ConfigError, DataError
from kabuto.settings import check_seed
from kabuto.strategies.batched import check_bool, check_choice, check_int, check_positive
from kabuto.strategies.trader_company.formulas import (
    ACTIVATIONS,
    DEFAULT_ACTIVATIONS,
    DEFAULT_OPERATORS,
    OPERATORS,
    Population,
    evaluate_terms,
    format_formula,
    format_term,
    lag_features,
    random_population,
    term_keys,
)

__all__ = ["AGGREGATIONS", "TraderCompany", "TraderSummary", "ridge_weights"]

AGGREGATIONS = ("mean", "top_mean", "linear")
_OWNER = "TraderCompany"
_CHUNK_ELEMENTS = 1 << 21  # floats per intermediate block when predicting (16 MiB)
_ROWS_PER_BLOCK = 32  # terms evaluated or copied at a time while fitting
_EM_ITERATIONS = 20
_SMOOTHING = 0.5  # pseudo-count added to every category of every mixture component
_MIN_VARIANCE = 0.25  # variance floor of the Gaussian parts (integers are rounded)


@dataclass(frozen=True)
class TraderSummary:
    """One Trader as `TraderCompany.best_traders` reports it.

    Attributes
    ----------
    rank : int
        1 for the best score.
    index : int
        Row of the Trader in ``population_``.
    score : float
        Cumulative directional return ``sum sign(f) * y`` over the last fit window.
    formula : str
        Weighted formula, e.g. ``+0.012 * tanh(ret[t-2] - mkt[t-1])``.
    terms : tuple of str
        The terms without weights.
    weights : ndarray of shape (n_terms,)
    noise_std : float or None
        Residual noise standard deviation of the Trader (``uncertainty=True`` only).
    """

    rank: int
    index: int
    score: float
    formula: str
    terms: tuple[str, ...]
    weights: np.ndarray
    noise_std: float | None = None


def ridge_weights(
    terms: np.ndarray, target: np.ndarray, valid: np.ndarray, active: np.ndarray, ridge: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge-stabilised least-squares weights of many Traders at once.

    Solves ``(G + lam I) w = b`` per Trader with ``G = A'A``, ``b = A'y`` over the Trader's
    valid cells and ``lam = ridge * mean(diag(G))`` over its active terms (``ridge`` if that
    mean is 0). Inactive slots get weight 0.

    Parameters
    ----------
    terms : ndarray of shape (K, M, C)
        Term values per Trader and slot over C cells (NaN allowed where not valid).
    target : ndarray of shape (C,)
    valid : ndarray of bool, shape (K, C)
        Cells where all of the Trader's active terms and the target are finite.
    active : ndarray of bool, shape (K, M)
    ridge : float

    Returns
    -------
    weights : ndarray of shape (K, M)
    system : ndarray of shape (K, M, M)
        ``G + lam I`` on the active block, identity on inactive slots.
    design : ndarray of shape (K, M, C)
        The terms with invalid cells set to 0 (what the fit used).
    """
    design = np.where(valid[:, None, :], terms, 0.0) if not valid.all() else terms
    gram = design @ design.transpose(0, 2, 1)
    moment = design @ target
    diagonal = np.einsum("kii->ki", gram)
    counts = active.sum(axis=1)
    scale = (diagonal * active).sum(axis=1) / np.maximum(counts, 1)
    penalty = ridge * np.where(scale > 0, scale, 1.0)
    eye = np.eye(active.shape[1])
    system = gram + eye * np.where(active, penalty[:, None], 1.0)[:, None, :]
    moment = np.where(active, moment, 0.0)
    weights = np.linalg.solve(system, moment[..., None])[..., 0]
    return np.where(active, weights, 0.0), system, design


@dataclass
class _Mixture:
    """A fitted mixture: Gaussian parts for numeric columns, categorical parts for codes."""

    weights: np.ndarray  # (K,)
    mean: np.ndarray  # (K, p)
    var: np.ndarray  # (K, p)
    probs: list[np.ndarray]  # each (K, cardinality)

    def sample(
        self, rng: np.random.Generator, size: int, low: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """`size` draws: numeric columns rounded and clipped to [low, high], and codes."""
        comp = rng.choice(self.weights.size, size=size, p=self.weights)
        noise = rng.standard_normal((size, self.mean.shape[1]))
        numeric = np.rint(self.mean[comp] + np.sqrt(self.var[comp]) * noise)
        numeric = np.clip(numeric, low, high).astype(np.int64)
        codes = []
        for probs in self.probs:
            cdf = np.cumsum(probs[comp], axis=1)
            u = rng.random(size)[:, None] * cdf[:, -1:]
            codes.append(np.minimum((cdf <= u).sum(axis=1), probs.shape[1] - 1))
        return numeric, codes


def _fit_mixture(
    rng: np.random.Generator,
    numeric: np.ndarray,
    categorical: Sequence[tuple[np.ndarray, int]],
    n_components: int,
) -> _Mixture:
    """EM for a mixture of (diagonal Gaussian x independent categoricals) on R rows.

    Components are seeded at randomly chosen rows (so frequent formulas seed more of them),
    then refined by `_EM_ITERATIONS` EM steps.
    """
    rows = numeric.shape[0]
    k = min(n_components, rows)
    onehots = [np.eye(card)[codes] for codes, card in categorical]
    seeds = rng.choice(rows, size=k, replace=False)
    # Initial parameters: each component centred on one seed row.
    mean = numeric[seeds].astype(np.float64)
    var = np.ones_like(mean)
    probs = [(oh[seeds] + _SMOOTHING) / (1 + _SMOOTHING * oh.shape[1]) for oh in onehots]
    weights = np.full(k, 1.0 / k)
    for _ in range(_EM_ITERATIONS):
        # E step: log p(row, component).
        logp = np.log(weights)[None, :] - 0.5 * (
            ((numeric[:, None, :] - mean[None]) ** 2 / var[None]).sum(axis=2)
            + np.log(2 * np.pi * var).sum(axis=1)[None, :]
        )
        for (codes, _), p in zip(categorical, probs, strict=True):
            logp += np.log(p[:, codes]).T
        logp -= logp.max(axis=1, keepdims=True)
        resp = np.exp(logp)
        resp /= resp.sum(axis=1, keepdims=True)
        # M step.
        mass = resp.sum(axis=0)
        weights = (mass + 1e-9) / (mass.sum() + 1e-9 * k)
        mean = (resp.T @ numeric) / np.maximum(mass, 1e-12)[:, None]
        var = (resp.T @ numeric**2) / np.maximum(mass, 1e-12)[:, None] - mean**2
        var = np.maximum(var, _MIN_VARIANCE)
        probs = [
            (resp.T @ oh + _SMOOTHING) / (mass[:, None] + _SMOOTHING * oh.shape[1])
            for oh in onehots
        ]
    return _Mixture(weights=weights, mean=mean, var=var, probs=probs)


@dataclass
class _WindowCache:
    """Everything one fit window needs, per Trader, so that a round touches only changes."""

    lagged: np.ndarray  # (max_delay + T, F, n) features of the whole history given
    start: int  # first row of the window
    stop: int
    cells: np.ndarray | slice  # flat cells of (window rows x n) with a finite target
    cells_count: int
    has_missing: bool  # some feature the window can read is NaN
    target: np.ndarray  # (C,)
    terms: np.ndarray  # (N, M, C) raw term values (NaN where a feature is missing)
    scratch: np.ndarray  # (n_pruned, M, C) buffer for the terms of new Traders
    keys: np.ndarray  # (N, M) term keys (see formulas.term_keys)
    valid: np.ndarray  # (N, C) all active terms finite
    pred: np.ndarray  # (N, C) Trader predictions, 0 where not valid
    fitted: np.ndarray  # (N,) weights are this window's least-squares solution


class TraderCompany(BaseEstimator):
    """Trader-Company estimator: evolves N formula Traders and aggregates their predictions.

    Data contract (pooled across assets; formulas are shared by all assets):

    * ``X``: ndarray (T, F, n) -- F per-asset features of n assets on T dates; row t is known
      at the close of t. NaN allowed (e.g. before an asset lists): masked out of fits and
      scores; a Trader's prediction is NaN where any of its terms is.
    * ``y``: ndarray (T, n) -- the return realised from t to t+1, aligned with row t; NaN where
      unknown (e.g. the last row): masked.

    The paper's cross-asset setting (one target stock, features = all stocks' returns) is n = 1
    with F = the number of stocks.

    Parameters
    ----------
    n_traders : int, default=100
        N, Traders in the Company.
    max_terms : int, default=10
        M, the most terms one Trader holds.
    max_delay : int, default=10
        Largest delay ``D, F`` of an operand (0 = today's close).
    operators : sequence of str, default=all of `formulas.OPERATORS`
        add, sub, mul, max, min, gt, lt, first, second.
    activations : sequence of str, default=all of `formulas.ACTIVATIONS`
        identity, tanh, sign, relu.
    educate_fraction : float in [0, 1], default=0.5
        Q of the paper: share of worst Traders whose weights are refitted each round.
    prune_fraction : float in [0, 1), default=0.5
        Share of worst Traders replaced by new ones each round (after education).
    aggregation : {"mean", "top_mean", "linear"}, default="mean"
        How the Company combines Traders; "mean" is the paper's.
    top_fraction : float in (0, 1], default=0.2
        Share of best Traders averaged by ``"top_mean"``.
    ridge : float > 0, default=1e-3
        Relative ridge penalty of every least-squares fit (weights and ``"linear"``).
    window : int or None, default=None
        Trailing rows of the data given to `fit` used for scoring and fitting; None = all.
        Shorter histories use what there is.
    n_rounds : int >= 0, default=100
        Evolution rounds per call of `fit`.
    n_components : int >= 1, default=5
        Mixture components fitted to the survivors when generating Traders.
    explore_fraction : float in [0, 1], default=0.1
        Share of new Traders drawn uniformly at random instead of from the mixture.
    uncertainty : bool, default=False
        UTC: Bayesian Traders and `predict_distribution`.
    prior_precision : float > 0 or None, default=None
        UTC prior precision of the weights in units of the noise precision, relative like
        `ridge`. None = the ridge penalty, which keeps the posterior mean equal to the plain
        weights (the UTC paper's unbiasedness). Another value changes the weights themselves.
    warm_start : bool, default=True
        A fitted Company continues evolving its population on the next `fit` (online use,
        as in the paper). False: every `fit` starts from a fresh random population.
    seed : int or numpy.random.Generator, default=0
        Source of every random draw; the same seed gives the same formulas.
    feature_names : sequence of str, optional
        Names of the F features for printed formulas; default ``x0, x1, ...``.

    Attributes
    ----------
    population_ : Population
        The Traders (formulas and weights).
    scores_ : ndarray of shape (N,)
        Cumulative directional return of each Trader on the last fit window.
    aggregation_weights_ : ndarray of shape (N,)
        Weight of each Trader in the Company's prediction.
    weight_covariances_ : ndarray of shape (N, M, M)
        UTC only: posterior covariance ``S`` of each Trader's weights (0 on inactive slots).
    noise_variances_ : ndarray of shape (N,)
        UTC only: each Trader's residual noise variance ``sigma2``.
    score_history_ : ndarray of shape (rounds, 2)
        Best and median Trader score after every round so far.
    n_features_in_ : int
    feature_names_in_ : tuple of str
    rng_ : numpy.random.Generator
    """

    def __init__(
        self,
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
        window: int | None = None,
        n_rounds: int = 100,
        n_components: int = 5,
        explore_fraction: float = 0.1,
        uncertainty: bool = False,
        prior_precision: float | None = None,
        warm_start: bool = True,
        seed: int | np.random.Generator = 0,
        feature_names: Sequence[str] | None = None,
    ) -> None:
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
        self.window = window
        self.n_rounds = n_rounds
        self.n_components = n_components
        self.explore_fraction = explore_fraction
        self.uncertainty = uncertainty
        self.prior_precision = prior_precision
        self.warm_start = warm_start
        self.seed = seed
        self.feature_names = feature_names
        self._validate()

    # ------------------------------------------------------------------ settings

    def _validate(self) -> None:
        check_int(_OWNER, "n_traders", self.n_traders, 2)
        check_int(_OWNER, "max_terms", self.max_terms, 1)
        check_int(_OWNER, "max_delay", self.max_delay, 0)
        self._check_names("operators", self.operators, OPERATORS)
        self._check_names("activations", self.activations, ACTIVATIONS)
        _check_fraction("educate_fraction", self.educate_fraction, top_open=False)
        _check_fraction("prune_fraction", self.prune_fraction, top_open=True)
        check_choice(_OWNER, "aggregation", self.aggregation, AGGREGATIONS)
        _check_fraction("top_fraction", self.top_fraction, top_open=False, bottom_open=True)
        check_positive(_OWNER, "ridge", self.ridge)
        if self.window is not None:
            check_int(_OWNER, "window", self.window, 2)
        check_int(_OWNER, "n_rounds", self.n_rounds, 0)
        check_int(_OWNER, "n_components", self.n_components, 1)
        _check_fraction("explore_fraction", self.explore_fraction, top_open=False)
        check_bool(_OWNER, "uncertainty", self.uncertainty)
        if self.prior_precision is not None:
            check_positive(_OWNER, "prior_precision", self.prior_precision)
        check_bool(_OWNER, "warm_start", self.warm_start)
        if not isinstance(self.seed, np.random.Generator):
            check_seed(_OWNER, "seed", self.seed, limit=None)  # numpy's generator takes any
        if self.uncertainty and self.aggregation == "linear":
            raise ConfigError(
                f"{_OWNER}: aggregation='linear' is not allowed with uncertainty=True (its "
                "signed weights are not a mixture of Traders); use aggregation='mean' or "
                "'top_mean'"
            )
        if self.n_traders - self._n_pruned() < 1:
            raise ConfigError(
                f"{_OWNER}: prune_fraction={self.prune_fraction!r} fires all "
                f"{self.n_traders} Traders; use a smaller prune_fraction"
            )
        if self.feature_names is not None:
            names = self.feature_names
            if isinstance(names, str) or not all(isinstance(s, str) for s in names):
                raise ConfigError(
                    f"{_OWNER}: feature_names={names!r} is not allowed; use a list of strings"
                )
            if len(set(names)) != len(names):
                raise ConfigError(
                    f"{_OWNER}: feature_names={list(names)!r} has duplicates; use unique names"
                )

    @staticmethod
    def _check_names(parameter: str, value: object, table: dict) -> None:
        allowed = ", ".join(repr(k) for k in table)
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0:
            raise ConfigError(
                f"{_OWNER}: {parameter}={value!r} is not allowed; use a non-empty list of "
                f"names from {allowed}"
            )
        for name in value:
            if name not in table:
                raise ConfigError(
                    f"{_OWNER}: {parameter} contains {name!r}, which is not allowed; use "
                    f"names from {allowed}"
                )
        if len(set(value)) != len(value):
            raise ConfigError(
                f"{_OWNER}: {parameter}={list(value)!r} has duplicates; use each name once"
            )

    def _n_pruned(self) -> int:
        return round(float(self.prune_fraction) * self.n_traders)

    def _structure(self, n_features: int) -> tuple:
        return (
            self.n_traders,
            self.max_terms,
            self.max_delay,
            tuple(self.operators),
            tuple(self.activations),
            n_features,
        )

    # ------------------------------------------------------------------ data checks

    def _check_xy(self, X: object, y: object) -> tuple[np.ndarray, np.ndarray]:
        features = self._check_features(X)
        target = _float_array("y", y)
        if target.shape != (features.shape[0], features.shape[2]):
            raise DataError(
                f"{_OWNER}: y has shape {target.shape} but X has shape {features.shape}; pass "
                f"y of shape (T, n) = {(features.shape[0], features.shape[2])}, row t holding "
                "the return from t to t+1"
            )
        if np.isinf(target).any():
            t, i = (int(v) for v in np.argwhere(np.isinf(target))[0])
            raise DataError(f"{_OWNER}: y[{t}, {i}] is infinite; use NaN for unknown returns")
        return features, target

    def _check_features(self, X: object) -> np.ndarray:
        features = _float_array("X", X)
        if features.ndim != 3:
            raise DataError(
                f"{_OWNER}: X has shape {features.shape}; pass an array of shape (T, F, n): "
                "dates x features x assets (use n = 1 for a single target series)"
            )
        if features.shape[0] == 0 or features.shape[1] == 0 or features.shape[2] == 0:
            raise DataError(f"{_OWNER}: X has shape {features.shape}; it needs no empty axis")
        if np.isinf(features).any():
            t, f, i = (int(v) for v in np.argwhere(np.isinf(features))[0])
            raise DataError(f"{_OWNER}: X[{t}, {f}, {i}] is infinite; use NaN for missing values")
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and features.shape[1] != expected:
            raise DataError(
                f"{_OWNER}: X has {features.shape[1]} features but the Company was fitted "
                f"with {expected}; pass the same features (or refit with warm_start=False)"
            )
        return features

    def _feature_names(self, n_features: int) -> tuple[str, ...]:
        if self.feature_names is None:
            return tuple(f"x{f}" for f in range(n_features))
        if len(self.feature_names) != n_features:
            raise ConfigError(
                f"{_OWNER}: feature_names has {len(self.feature_names)} names but X has "
                f"{n_features} features; give one name per feature"
            )
        return tuple(self.feature_names)

    # ------------------------------------------------------------------ fitting

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Evolve the Company for `n_rounds` rounds on the trailing `window` of (X, y).

        A fitted Company with ``warm_start=True`` continues from its population (online
        operation, as in the paper); otherwise a new random population is drawn first.

        Parameters
        ----------
        X : ndarray of shape (T, F, n)
        y : ndarray of shape (T, n)

        Returns
        -------
        self
        """
        self._validate()
        if not self.warm_start:
            self._reset()
        return self.evolve(X, y, self.n_rounds)

    def _reset(self) -> None:
        for attribute in (
            "population_",
            "scores_",
            "aggregation_weights_",
            "weight_covariances_",
            "noise_variances_",
            "score_history_",
            "n_features_in_",
            "feature_names_in_",
            "rng_",
            "_structure_",
        ):
            if hasattr(self, attribute):
                delattr(self, attribute)

    def evolve(self, X: np.ndarray, y: np.ndarray, n_rounds: int | None = None) -> Self:
        """Run `n_rounds` more evolution rounds on the trailing window of (X, y).

        Starts a random population if there is none; otherwise continues from the current
        one: every Trader is rescored on the new window with its current weights, and the
        first round educates the worst of them on it.

        Parameters
        ----------
        X : ndarray of shape (T, F, n)
        y : ndarray of shape (T, n)
        n_rounds : int, optional
            Default `n_rounds`.

        Returns
        -------
        self
        """
        self._validate()
        n_rounds = self.n_rounds if n_rounds is None else check_int(_OWNER, "n_rounds", n_rounds, 0)
        features, target = self._check_xy(X, y)
        n_features = features.shape[1]
        names = self._feature_names(n_features)
        fresh = not hasattr(self, "population_")
        if not fresh:
            self._check_structure()
        if fresh:
            self.rng_ = (
                self.seed
                if isinstance(self.seed, np.random.Generator)
                else np.random.default_rng(self.seed)
            )
            self.n_features_in_ = n_features
            self._structure_ = self._structure(n_features)
            self.population_ = random_population(
                self.rng_,
                self.n_traders,
                self.max_terms,
                n_features,
                self.max_delay,
                len(self.operators),
                len(self.activations),
            )
            self.score_history_ = np.empty((0, 2))
            if self.uncertainty:
                self.weight_covariances_ = np.zeros(
                    (self.n_traders, self.max_terms, self.max_terms)
                )
                self.noise_variances_ = np.zeros(self.n_traders)
        elif self.uncertainty and not hasattr(self, "weight_covariances_"):
            raise ConfigError(
                f"{_OWNER}: uncertainty=True was switched on after fitting; fit with "
                "warm_start=False to build the Bayesian Traders"
            )
        self.feature_names_in_ = names
        self._open_window(features, target)
        everyone = np.arange(self.n_traders)
        block, self._fresh_block = self._fresh_block, None
        if fresh:
            self._fit_traders(everyone, block)
        else:
            self._score(everyone, block)
        history = [self.score_history_]
        for _ in range(n_rounds):
            self._round()
            history.append(np.array([[self.scores_.max(), np.median(self.scores_)]]))
        self.score_history_ = np.concatenate(history)
        self._aggregate()
        # The cache belongs to this window; the next call opens its own. Free the memory.
        del self._cache
        return self

    def _open_window(self, features: np.ndarray, target: np.ndarray) -> None:
        """Evaluate every Trader's terms on the trailing window and cache them."""
        n_dates = features.shape[0]
        length = n_dates if self.window is None else min(self.window, n_dates)
        start = n_dates - length
        flat = target[start:].reshape(-1)
        cells = np.flatnonzero(np.isfinite(flat))
        if cells.size < self.max_terms + 1:
            raise DataError(
                f"{_OWNER}: the fit window (rows {start}..{n_dates - 1}) has {cells.size} "
                f"finite targets; pass at least {self.max_terms + 1} (a longer history or "
                "window)"
            )
        if not np.isfinite(features[max(start - self.max_delay, 0) :]).any():
            raise DataError(
                f"{_OWNER}: X has no finite value in the fit window (rows {start}..{n_dates - 1} "
                f"and the {self.max_delay} before them that delays read); pass features there"
            )
        if cells[-1] - cells[0] + 1 == cells.size:  # contiguous: select with a view
            cells_index: np.ndarray | slice = slice(int(cells[0]), int(cells[-1]) + 1)
        else:
            cells_index = cells
        first_read = max(start - self.max_delay, 0)
        shape = (self.n_traders, self.max_terms, cells.size)
        self._cache = _WindowCache(
            lagged=lag_features(features, self.max_delay),
            start=start,
            stop=n_dates,
            cells=cells_index,
            cells_count=int(cells.size),
            has_missing=bool(np.isnan(features[first_read:]).any()) or start < self.max_delay,
            target=flat[cells],
            terms=np.zeros(shape),
            scratch=np.zeros((max(self._n_pruned(), 1), *shape[1:])),
            keys=np.zeros(shape[:2], dtype=np.int64),
            valid=np.ones((self.n_traders, cells.size), dtype=bool),
            pred=np.zeros((self.n_traders, cells.size)),
            fitted=np.zeros(self.n_traders, dtype=bool),
        )
        self._fresh_block = self._evaluate(np.arange(self.n_traders))  # the cache itself

    def _keys(self, trader: np.ndarray, slot: np.ndarray) -> np.ndarray:
        return term_keys(
            *self.population_.term_arrays(trader, slot),
            n_features=self.n_features_in_,
            max_delay=self.max_delay,
            operators=self.operators,
        )

    def _evaluate(self, traders: np.ndarray) -> np.ndarray:
        """Cache the window values of the terms of `traders` and return them, (k, M, C).

        A term some other Trader already holds is copied from the cache; each remaining
        distinct term is evaluated once. Work goes in blocks of `_ROWS_PER_BLOCK` terms into a
        reused buffer, so a round allocates no large arrays.
        """
        cache, pop = self._cache, self.population_
        active = pop.active[traders]
        local, slot = np.nonzero(active)
        trader = traders[local]
        keys = self._keys(trader, slot)
        everyone = traders.size == self.n_traders
        # Everyone (a new window): write straight into the cache. Otherwise a reused buffer.
        block = cache.terms if everyone else cache.scratch[: traders.size]
        block[~active] = 0.0
        cache.keys[traders] = -1
        others = np.ones(self.n_traders, dtype=bool)
        others[traders] = False
        donor_t, donor_s = np.nonzero(pop.active & others[:, None])
        donor_keys = cache.keys[donor_t, donor_s]
        order = np.argsort(donor_keys, kind="stable")
        sorted_keys = donor_keys[order]
        found = np.zeros(keys.size, dtype=bool)
        if sorted_keys.size:
            pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
            found = sorted_keys[pos] == keys
            hit = np.flatnonzero(found)
            src = order[pos[hit]]
            for lo in range(0, hit.size, _ROWS_PER_BLOCK):
                part = slice(lo, lo + _ROWS_PER_BLOCK)
                rows = cache.terms[donor_t[src[part]], donor_s[src[part]]]
                block[local[hit[part]], slot[hit[part]]] = rows
        missing = np.flatnonzero(~found)
        if missing.size:
            unique, first, inverse = np.unique(
                keys[missing], return_index=True, return_inverse=True
            )
            inverse = inverse.reshape(-1)
            by_term = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[by_term], np.arange(0, unique.size + 1))
            params = pop.term_arrays(trader[missing[first]], slot[missing[first]])
            for lo in range(0, unique.size, _ROWS_PER_BLOCK):
                hi = min(lo + _ROWS_PER_BLOCK, unique.size)
                values = evaluate_terms(
                    cache.lagged,
                    self.max_delay,
                    *(p[lo:hi] for p in params),
                    operators=self.operators,
                    activations=self.activations,
                    start=cache.start,
                    stop=cache.stop,
                ).reshape(hi - lo, -1)[:, cache.cells]
                sel = by_term[bounds[lo] : bounds[hi]]
                pairs = missing[sel]
                block[local[pairs], slot[pairs]] = values[inverse[sel] - lo]
        cache.keys[trader, slot] = keys
        if not everyone:
            cache.terms[traders] = block
        cache.valid[traders] = ~np.isnan(block).any(axis=1) if cache.has_missing else True
        cache.fitted[traders] = False
        return block

    def _fit_traders(self, traders: np.ndarray, terms: np.ndarray | None = None) -> None:
        """Fit the weights of `traders` on the window (ridge; UTC: Bayesian posterior).

        `terms` are their cached term values if the caller has them at hand (saves a copy).
        """
        cache, pop = self._cache, self.population_
        active = pop.active[traders]
        penalty = self.ridge
        if self.uncertainty and self.prior_precision is not None:
            penalty = self.prior_precision
        weights, system, design = ridge_weights(
            cache.terms[traders] if terms is None else terms,
            cache.target,
            cache.valid[traders],
            active,
            penalty,
        )
        pop.weights[traders] = weights
        pred = (weights[:, None, :] @ design)[:, 0, :]
        cache.pred[traders] = pred
        cache.fitted[traders] = True
        if self.uncertainty:
            n_valid = cache.valid[traders].sum(axis=1)
            resid = np.where(cache.valid[traders], cache.target - pred, 0.0)
            dof = np.maximum(n_valid - pop.n_terms[traders], 1)
            noise = (resid**2).sum(axis=1) / dof
            block = active[:, :, None] & active[:, None, :]
            inverse = np.linalg.inv(system)
            self.weight_covariances_[traders] = np.where(block, noise[:, None, None] * inverse, 0.0)
            self.noise_variances_[traders] = noise
        self._score(traders, predicted=True)

    def _score(
        self, traders: np.ndarray, terms: np.ndarray | None = None, predicted: bool = False
    ) -> None:
        """Score `traders`: sum over the window of sign(prediction) * target."""
        cache = self._cache
        if not predicted:
            design = cache.terms[traders] if terms is None else terms
            valid = cache.valid[traders]
            if not valid.all():
                design = np.where(valid[:, None, :], design, 0.0)
            cache.pred[traders] = (self.population_.weights[traders][:, None, :] @ design)[:, 0, :]
        if not hasattr(self, "scores_") or self.scores_.shape[0] != self.n_traders:
            self.scores_ = np.zeros(self.n_traders)
        self.scores_[traders] = np.sign(cache.pred[traders]) @ cache.target

    def _round(self) -> None:
        """One round: educate the worst, prune the worst, generate replacements."""
        n = self.n_traders
        n_educate = round(float(self.educate_fraction) * n)
        if n_educate:
            worst = np.argsort(self.scores_, kind="stable")[:n_educate]
            stale = worst[~self._cache.fitted[worst]]
            if stale.size:
                self._fit_traders(stale)
        n_prune = self._n_pruned()
        if n_prune == 0:
            return
        order = np.argsort(self.scores_, kind="stable")
        fired, survivors = order[:n_prune], order[n_prune:]
        self.population_.assign(fired, self._generate(survivors, n_prune))
        self._fit_traders(fired, self._evaluate(fired))

    def _generate(self, survivors: np.ndarray, count: int) -> Population:
        """`count` new Traders: mixture fitted to the survivors, plus a few uniform ones."""
        rng, pop = self.rng_, self.population_
        n_features = self.n_features_in_
        n_random = round(float(self.explore_fraction) * count)
        n_mixture = count - n_random
        parts = []
        if n_mixture:
            # Number of terms: 1-D Gaussian mixture on the survivors' term counts.
            counts = pop.n_terms[survivors].astype(np.float64)[:, None]
            count_mixture = _fit_mixture(rng, counts, [], self.n_components)
            n_terms, _ = count_mixture.sample(
                rng, n_mixture, np.array([1]), np.array([self.max_terms])
            )
            n_terms = n_terms[:, 0]
            # Terms: Gaussian delays x categorical features / operator / activation.
            trader, slot = np.nonzero(pop.active[survivors])
            trader = survivors[trader]
            fx, dx, fy, dy, op, act = pop.term_arrays(trader, slot)
            term_mixture = _fit_mixture(
                rng,
                np.stack([dx, dy], axis=1).astype(np.float64),
                [
                    (fx, n_features),
                    (fy, n_features),
                    (op, len(self.operators)),
                    (act, len(self.activations)),
                ],
                self.n_components,
            )
            delays, (fx, fy, op, act) = term_mixture.sample(
                rng, int(n_terms.sum()), np.array([0, 0]), np.array([self.max_delay] * 2)
            )
            shape = (n_mixture, self.max_terms)
            active = np.arange(self.max_terms)[None, :] < n_terms[:, None]
            arrays = {}
            for name, values in (
                ("feature_x", fx),
                ("delay_x", delays[:, 0]),
                ("feature_y", fy),
                ("delay_y", delays[:, 1]),
                ("operator", op),
                ("activation", act),
            ):
                full = np.zeros(shape, dtype=np.int64)
                full[active] = values
                arrays[name] = full
            parts.append(Population(**arrays, n_terms=n_terms, weights=np.zeros(shape)))
        if n_random:
            parts.append(
                random_population(
                    rng,
                    n_random,
                    self.max_terms,
                    n_features,
                    self.max_delay,
                    len(self.operators),
                    len(self.activations),
                )
            )
        if len(parts) == 1:
            return parts[0]
        return Population(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in (*Population._INT_FIELDS, "n_terms", "weights")
            }
        )

    def _aggregate(self) -> None:
        """Set `aggregation_weights_` from the scores (and, for "linear", a ridge fit)."""
        n = self.n_traders
        if self.aggregation == "mean":
            self.aggregation_weights_ = np.full(n, 1.0 / n)
            return
        if self.aggregation == "top_mean":
            k = max(1, round(float(self.top_fraction) * n))
            best = np.argsort(-self.scores_, kind="stable")[:k]
            weights = np.zeros(n)
            weights[best] = 1.0 / k
            self.aggregation_weights_ = weights
            return
        preds = self._cache.pred  # (N, C), 0 where a Trader is not valid
        gram = preds @ preds.T
        scale = np.trace(gram) / n
        penalty = self.ridge * (scale if scale > 0 else 1.0)
        self.aggregation_weights_ = np.linalg.solve(
            gram + penalty * np.eye(n), preds @ self._cache.target
        )

    # ------------------------------------------------------------------ prediction

    def _check_fitted(self) -> None:
        if not hasattr(self, "population_"):
            raise ConfigError(f"{_OWNER}: the Company is not fitted; call fit(X, y) first")
        self._check_structure()

    def _check_structure(self) -> None:
        """Raise `ConfigError` if a setting the population's shape depends on has changed since
        it was created (``set_params`` after fit): its Traders would read other delays."""
        if self._structure_ != self._structure(self.n_features_in_):
            raise ConfigError(
                f"{_OWNER}: n_traders, max_terms, max_delay, operators or activations changed "
                "since the population was created; restore them or fit with warm_start=False"
            )

    def predict_traders(
        self, X: np.ndarray, traders: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Predictions of individual Traders.

        Parameters
        ----------
        X : ndarray of shape (T, F, n)
        traders : sequence of int, optional
            Rows of ``population_``; default all.

        Returns
        -------
        ndarray of shape (len(traders), T, n)
            NaN where any of a Trader's terms is NaN.
        """
        self._check_fitted()
        features = self._check_features(X)
        if traders is None:
            index = np.arange(self.n_traders)
        else:
            given = np.asarray(traders, dtype=object)  # Python ints: exact checks and messages
            if given.ndim != 1:
                raise ConfigError(
                    f"{_OWNER}: traders={traders!r} is not allowed; use a list of Trader "
                    f"indices in [0, {self.n_traders - 1}]"
                )
            if given.size == 0:
                raise ConfigError(
                    f"{_OWNER}: traders is empty; pass at least one Trader index in "
                    f"[0, {self.n_traders - 1}] (or None for all)"
                )
            index = np.array([self._check_trader("traders", i) for i in given], dtype=np.int64)
        return self._trader_outputs(features, index, variance=False)[0]

    def _check_trader(self, parameter: str, index: object) -> int:
        """`index` if it is a row of ``population_``, else `ConfigError` naming `parameter`."""
        if (
            isinstance(index, bool)
            or not isinstance(index, numbers.Integral)
            or not 0 <= index < self.n_traders
        ):
            raise ConfigError(
                f"{_OWNER}: {parameter}: {index!r} is not a Trader; use integers in "
                f"[0, {self.n_traders - 1}] (rows of population_)"
            )
        return int(index)

    def _trader_outputs(
        self, features: np.ndarray, traders: np.ndarray, variance: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictive means (and UTC variances) of `traders` on every row of `features`."""
        pop = self.population_
        n_dates, _, n_assets = features.shape
        lagged = lag_features(features, self.max_delay)
        n_sel = traders.size
        local, slot = np.nonzero(pop.active[traders])
        keys = self._keys(traders[local], slot)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        term_params = pop.term_arrays(traders[local[first]], slot[first])
        n_unique = unique.size
        # Trader k's prediction = sum_u mix[k, u] * term_u (several slots may share a term).
        mix = np.zeros((n_sel, n_unique))
        np.add.at(mix, (local, inverse), pop.weights[traders[local], slot])
        uses = np.zeros((n_sel, n_unique))
        uses[local, inverse] = 1.0
        slot_term = np.full((n_sel, self.max_terms), n_unique)  # index n_unique = zero row
        slot_term[local, slot] = inverse
        mean = np.empty((n_sel, n_dates * n_assets))
        var = np.empty_like(mean) if variance else None
        # Blocks of dates sized for the variance pass whether or not it runs, so that the means
        # come out bit-identical with and without it (UTC mean == plain prediction).
        widest = max(n_unique, n_sel * self.max_terms, 1)
        rows = max(1, _CHUNK_ELEMENTS // (widest * n_assets))
        for start in range(0, n_dates, rows):
            stop = min(start + rows, n_dates)
            values = evaluate_terms(
                lagged,
                self.max_delay,
                *term_params,
                operators=self.operators,
                activations=self.activations,
                start=start,
                stop=stop,
            ).reshape(n_unique, -1)
            missing = np.isnan(values)
            has_missing = bool(missing.any())
            if has_missing:
                values = np.where(missing, 0.0, values)
            cols = slice(start * n_assets, stop * n_assets)
            block = mix @ values
            bad = (uses @ missing) > 0 if has_missing else None
            if has_missing:
                block[bad] = np.nan
            mean[:, cols] = block
            if variance:
                padded = np.concatenate([values, np.zeros((1, values.shape[1]))])
                phi = padded[slot_term]  # (S, M, cells)
                quad = np.einsum("kmc,kmc->kc", phi, self.weight_covariances_[traders] @ phi)
                block = self.noise_variances_[traders][:, None] + quad
                if has_missing:
                    block[bad] = np.nan
                var[:, cols] = block
        shape = (n_sel, n_dates, n_assets)
        return mean.reshape(shape), None if var is None else var.reshape(shape)

    def _combine(
        self, features: np.ndarray, variance: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        weights = self.aggregation_weights_
        used = np.flatnonzero(weights != 0)
        means, variances = self._trader_outputs(features, used, variance)
        pi = weights[used][:, None, None]
        finite = np.isfinite(means)
        safe = np.where(finite, means, 0.0)
        if self.aggregation == "linear":
            pred = (pi * safe).sum(axis=0)
            pred[~finite.any(axis=0)] = np.nan
            return pred, None
        mass = (pi * finite).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pred = (pi * safe).sum(axis=0) / mass
            if not variance:
                return pred, None
            within = (pi * np.where(finite, variances, 0.0)).sum(axis=0) / mass
            between = (pi * np.where(finite, (means - pred) ** 2, 0.0)).sum(axis=0) / mass
        return pred, within + between

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The Company's prediction of the next return of every asset on every date.

        Parameters
        ----------
        X : ndarray of shape (T, F, n)
            Row t may use rows <= t only (nothing later is read).

        Returns
        -------
        ndarray of shape (T, n)
            Aggregate of the Traders' predictions (``aggregation``); Traders whose prediction
            is NaN at a cell are left out there (NaN when none is left).
        """
        self._check_fitted()
        return self._combine(self._check_features(X), variance=False)[0]

    def predict_distribution(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """UTC predictive mean and variance of the next return (``uncertainty=True`` only).

        Returns
        -------
        mean : ndarray of shape (T, n)
            Equal to `predict` (and to the plain Company's prediction with the same seed).
        variance : ndarray of shape (T, n)
            ``sum pi_k (sigma2_k + phi' S_k phi)`` (within Traders) ``+ sum pi_k (mu_k -
            mu)^2`` (between Traders), pi = aggregation weights renormalised over the Traders
            defined at the cell.
        """
        self._check_fitted()
        if not self.uncertainty:
            raise ConfigError(
                f"{_OWNER}: predict_distribution needs uncertainty=True; set it and refit "
                "with warm_start=False"
            )
        mean, variance = self._combine(self._check_features(X), variance=True)
        return mean, variance

    # ------------------------------------------------------------------ reporting

    def best_traders(self, k: int = 5) -> list[TraderSummary]:
        """The `k` Traders with the best scores on the last fit window, best first."""
        self._check_fitted()
        k = min(check_int(_OWNER, "k", k, 1), self.n_traders)
        order = np.argsort(-self.scores_, kind="stable")[:k]
        pop = self.population_
        out = []
        for rank, index in enumerate(order, start=1):
            m = int(pop.n_terms[index])
            terms = tuple(
                format_term(
                    int(pop.feature_x[index, j]),
                    int(pop.delay_x[index, j]),
                    int(pop.feature_y[index, j]),
                    int(pop.delay_y[index, j]),
                    self.operators[int(pop.operator[index, j])],
                    self.activations[int(pop.activation[index, j])],
                    self.feature_names_in_,
                )
                for j in range(m)
            )
            noise = float(np.sqrt(self.noise_variances_[index])) if self.uncertainty else None
            out.append(
                TraderSummary(
                    rank=rank,
                    index=int(index),
                    score=float(self.scores_[index]),
                    formula=self.formula(int(index)),
                    terms=terms,
                    weights=pop.weights[index, :m].copy(),
                    noise_std=noise,
                )
            )
        return out

    def formula(self, index: int) -> str:
        """The weighted formula of Trader `index` as text."""
        self._check_fitted()
        return format_formula(
            self.population_,
            self._check_trader("index", index),
            self.feature_names_in_,
            self.operators,
            self.activations,
        )

    def describe(self, k: int = 5) -> str:
        """A readable report of the `k` best Traders (score and formula, one per line)."""
        lines = [
            f"TraderCompany: {self.n_traders} traders, aggregation={self.aggregation!r}, "
            f"{len(self.score_history_)} rounds; score: in-sample cumulative directional return "
            "(sum of sign(prediction) x target) on the last fit window"
        ]
        for s in self.best_traders(k):
            noise = "" if s.noise_std is None else f" noise_std={s.noise_std:.4g}"
            lines.append(f"#{s.rank} (trader {s.index}) score={s.score:+.4g}{noise}: {s.formula}")
        return "\n".join(lines)


def _float_array(name: str, value: object) -> np.ndarray:
    """`value` as a float64 array, or `DataError` naming it (strings, ragged lists)."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{_OWNER}: {name} is not numeric ({exc}); pass a float array") from exc


def _check_fraction(
    parameter: str, value: object, top_open: bool, bottom_open: bool = False
) -> float:
    """Return `value` if it is a number in the stated interval, else raise `ConfigError`."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and np.isfinite(float(value))
        and (float(value) > 0 if bottom_open else float(value) >= 0)
        and (float(value) < 1 if top_open else float(value) <= 1)
    )
    if not ok:
        low = "(0" if bottom_open else "[0"
        high = "1)" if top_open else "1]"
        raise ConfigError(
            f"{_OWNER}: {parameter}={value!r} is not allowed; use a number in {low}, {high}"
        )
    return float(value)
