"""Trader formulas: operator and activation tables, the population arrays, vectorised evaluation.

A Trader of the Trader-Company method (Ito, Minami, Imajo, Nakagawa, AAMAS 2021, arXiv
2012.10215, section 3) predicts with M terms

    f[t, i] = sum_j w_j * A_j(O_j(X[t - D_j, P_j, i], X[t - F_j, Q_j, i]))

where ``X`` has shape (T, F, n): F per-asset features of n assets on T dates, row t known at the
close of t. ``P_j, Q_j`` pick features, ``D_j, F_j`` in ``[0, max_delay]`` are delays, ``O_j``
is a binary operator and ``A_j`` an activation (both from the tables below). The formulas are
pooled: every asset is predicted by the same formula from its own features. The paper's
cross-asset setting (one target stock whose features are the past returns of all stocks) is the
special case n = 1 with F = the number of stocks.

A population of N traders is stored as integer arrays of shape (N, max_terms) -- `Population` --
so that every (trader, term) pair of the population is evaluated at once
(`evaluate_terms`): the features are padded with ``max_delay`` rows of NaN in front
(`lag_features`) and each operand is one fancy-indexing gather over (pairs x dates x assets).
The only Python loop runs over the (operator, activation) combinations present, never over
traders. Missing features (NaN) propagate to NaN terms, which callers mask out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kabuto.errors import ArgumentError

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_ACTIVATIONS",
    "DEFAULT_OPERATORS",
    "OPERATORS",
    "Activation",
    "Operator",
    "Population",
    "evaluate_terms",
    "format_formula",
    "format_term",
    "lag_features",
    "random_population",
    "term_keys",
]


@dataclass(frozen=True)
class Operator:
    """A binary operator ``O(x, y)`` of a term.

    Attributes
    ----------
    name : str
    function : callable
        Elementwise on two float arrays of the same shape; NaN in either input gives NaN.
    template : str
        How it prints, with ``{x}`` and ``{y}`` for the operands.
    compound : bool
        Whether the printed form needs parentheses when multiplied by a weight.
    uses : str
        Operands it reads: "xy", "x" or "y" (the unused operand is not gathered).
    commutative : bool
        ``O(x, y) == O(y, x)``; used to recognise the same term written both ways.
    """

    name: str
    function: Callable[[np.ndarray, np.ndarray], np.ndarray]
    template: str
    compound: bool
    uses: str = "xy"
    commutative: bool = False


@dataclass(frozen=True)
class Activation:
    """An activation ``A(z)`` applied to the operator's output (elementwise, NaN-preserving)."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    template: str


def _compare(greater: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def compare(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        hit = np.greater(x, y) if greater else np.less(x, y)
        return np.where(np.isnan(x) | np.isnan(y), np.nan, hit.astype(np.float64))

    return compare


def _first(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x


def _second(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)  # NaN stays NaN


def _identity(z: np.ndarray) -> np.ndarray:
    return z


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("add", np.add, "{x} + {y}", True, commutative=True),
        Operator("sub", np.subtract, "{x} - {y}", True),
        Operator("mul", np.multiply, "{x} * {y}", True, commutative=True),
        Operator("max", np.maximum, "max({x}, {y})", False, commutative=True),
        Operator("min", np.minimum, "min({x}, {y})", False, commutative=True),
        Operator("gt", _compare(True), "{x} > {y}", True),
        Operator("lt", _compare(False), "{x} < {y}", True),
        Operator("first", _first, "{x}", False, uses="x"),
        Operator("second", _second, "{y}", False, uses="y"),
    )
}
"""Binary operators by name. ``gt``/``lt`` give 1.0 or 0.0 (NaN if an operand is NaN)."""

ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation("identity", _identity, "{}"),
        Activation("tanh", np.tanh, "tanh({})"),
        Activation("sign", np.sign, "sign({})"),
        Activation("relu", _relu, "relu({})"),
    )
}
"""Activations by name."""

DEFAULT_OPERATORS: tuple[str, ...] = tuple(OPERATORS)
DEFAULT_ACTIVATIONS: tuple[str, ...] = tuple(ACTIVATIONS)


@dataclass
class Population:
    """N traders with at most M terms each, as arrays (term j of trader k at ``[k, j]``).

    Operator and activation codes index into the operator and activation name tuples the
    population was made with (`TraderCompany.operators`, `.activations`). Slots ``j >=
    n_terms[k]`` are inactive: their codes are kept at 0 and their weight at 0.

    Attributes
    ----------
    feature_x, delay_x : ndarray of int64, shape (N, M)
        ``P_j`` and ``D_j``: feature and delay of the first operand.
    feature_y, delay_y : ndarray of int64, shape (N, M)
        ``Q_j`` and ``F_j``: feature and delay of the second operand.
    operator, activation : ndarray of int64, shape (N, M)
    n_terms : ndarray of int64, shape (N,)
        Active terms per trader (1 <= n_terms <= M).
    weights : ndarray of float64, shape (N, M)
    """

    feature_x: np.ndarray
    delay_x: np.ndarray
    feature_y: np.ndarray
    delay_y: np.ndarray
    operator: np.ndarray
    activation: np.ndarray
    n_terms: np.ndarray
    weights: np.ndarray

    _INT_FIELDS = ("feature_x", "delay_x", "feature_y", "delay_y", "operator", "activation")

    @property
    def n_traders(self) -> int:
        return int(self.n_terms.shape[0])

    @property
    def max_terms(self) -> int:
        return int(self.weights.shape[1])

    @property
    def active(self) -> np.ndarray:
        """Boolean mask of shape (N, M): which slots hold a term."""
        return np.arange(self.max_terms)[None, :] < self.n_terms[:, None]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(trader, slot) indices of every active term, trader-major (trader 0's terms first)."""
        return np.nonzero(self.active)

    def take(self, index: np.ndarray) -> Population:
        """A new population of the traders at `index` (copies)."""
        index = np.asarray(index)
        fields = {name: getattr(self, name)[index].copy() for name in self._INT_FIELDS}
        return Population(
            **fields, n_terms=self.n_terms[index].copy(), weights=self.weights[index].copy()
        )

    def assign(self, index: np.ndarray, other: Population) -> None:
        """Overwrite the traders at `index` with the traders of `other` (in order)."""
        for name in (*self._INT_FIELDS, "n_terms", "weights"):
            getattr(self, name)[index] = getattr(other, name)

    def copy(self) -> Population:
        return self.take(np.arange(self.n_traders))

    def term_arrays(self, trader: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, ...]:
        """(feature_x, delay_x, feature_y, delay_y, operator, activation) of the given terms."""
        return tuple(getattr(self, name)[trader, slot] for name in self._INT_FIELDS)

    def equals(self, other: Population) -> bool:
        """Same formulas and weights (exactly)."""
        return all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in (*self._INT_FIELDS, "n_terms", "weights")
        )


def random_population(
    rng: np.random.Generator,
    n_traders: int,
    max_terms: int,
    n_features: int,
    max_delay: int,
    n_operators: int,
    n_activations: int,
) -> Population:
    """Traders drawn uniformly: term count in 1..M, every feature, delay, operator, activation.

    Weights start at zero (the company fits them before a trader is first scored).
    """
    shape = (n_traders, max_terms)
    n_terms = rng.integers(1, max_terms + 1, size=n_traders)
    arrays = {
        "feature_x": rng.integers(0, n_features, size=shape),
        "delay_x": rng.integers(0, max_delay + 1, size=shape),
        "feature_y": rng.integers(0, n_features, size=shape),
        "delay_y": rng.integers(0, max_delay + 1, size=shape),
        "operator": rng.integers(0, n_operators, size=shape),
        "activation": rng.integers(0, n_activations, size=shape),
    }
    inactive = np.arange(max_terms)[None, :] >= n_terms[:, None]
    for values in arrays.values():
        values[inactive] = 0
    return Population(
        **{k: v.astype(np.int64) for k, v in arrays.items()},
        n_terms=n_terms.astype(np.int64),
        weights=np.zeros(shape),
    )


def lag_features(features: np.ndarray, max_delay: int) -> np.ndarray:
    """The features with `max_delay` rows of NaN in front: shape (max_delay + T, F, n).

    Row ``t - D`` of the features is row ``t + max_delay - D`` of the result, so a delayed
    operand is a gather that never reads past row t and reads NaN before the first row.
    """
    features = np.asarray(features, dtype=np.float64)
    pad = np.full((max_delay, *features.shape[1:]), np.nan)
    return np.concatenate([pad, features], axis=0)


def evaluate_terms(
    lagged: np.ndarray,
    max_delay: int,
    feature_x: np.ndarray,
    delay_x: np.ndarray,
    feature_y: np.ndarray,
    delay_y: np.ndarray,
    operator: np.ndarray,
    activation: np.ndarray,
    operators: Sequence[str],
    activations: Sequence[str],
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """Values of K terms on dates ``start..stop-1`` of every asset, all at once.

    Parameters
    ----------
    lagged : ndarray of shape (max_delay + T, F, n)
        From `lag_features`.
    max_delay : int
        The padding `lagged` was built with (every delay must be <= it).
    feature_x, delay_x, feature_y, delay_y, operator, activation : ndarray of int, shape (K,)
        The terms (codes index `operators` and `activations`).
    operators, activations : sequence of str
        Names in `OPERATORS` and `ACTIVATIONS` the codes refer to.
    start, stop : int
        Date rows of the original features (default: all T).

    Returns
    -------
    ndarray of shape (K, stop - start, n)
        ``A(O(X[t - D, P], X[t - F, Q]))``; NaN where an operand it reads is NaN.
    """
    for delays in (delay_x, delay_y):
        if np.size(delays) and int(np.max(delays)) > max_delay:
            # Row t - D would wrap to the end of `lagged`: a read of the future.
            raise ArgumentError(
                f"evaluate_terms: a delay of {int(np.max(delays))} exceeds max_delay="
                f"{max_delay}, the padding of lagged; build lagged with a larger max_delay"
            )
    n_dates = lagged.shape[0] - max_delay
    stop = n_dates if stop is None else stop
    rows = np.arange(start + max_delay, stop + max_delay)
    n_terms = int(np.shape(feature_x)[0])
    out = np.empty((n_terms, rows.size, lagged.shape[2]))
    if n_terms == 0:
        return out
    n_act = len(activations)
    combo = np.asarray(operator) * n_act + np.asarray(activation)
    order = np.argsort(combo, kind="stable")
    codes, first = np.unique(combo[order], return_index=True)
    bounds = np.append(first, order.size)
    for code, lo, hi in zip(codes, bounds[:-1], bounds[1:], strict=True):
        index = order[lo:hi]
        op = OPERATORS[operators[int(code) // n_act]]
        act = ACTIVATIONS[activations[int(code) % n_act]]
        x = y = None
        if "x" in op.uses:
            x = lagged[rows[None, :] - delay_x[index, None], feature_x[index, None]]
        if "y" in op.uses:
            y = lagged[rows[None, :] - delay_y[index, None], feature_y[index, None]]
        out[index] = act.function(op.function(x, y))
    return out


def term_keys(
    feature_x: np.ndarray,
    delay_x: np.ndarray,
    feature_y: np.ndarray,
    delay_y: np.ndarray,
    operator: np.ndarray,
    activation: np.ndarray,
    n_features: int,
    max_delay: int,
    operators: Sequence[str],
) -> np.ndarray:
    """One int64 per term, equal for terms that always take the same values.

    The operand an operator ignores (``first``/``second``) is left out of the key, and the
    operands of commutative operators are put in a canonical order, so that e.g.
    ``x0[t-1] + x1[t]`` and ``x1[t] + x0[t-1]`` share one evaluation.
    """
    span = max_delay + 1
    x = np.asarray(feature_x, dtype=np.int64) * span + np.asarray(delay_x, dtype=np.int64)
    y = np.asarray(feature_y, dtype=np.int64) * span + np.asarray(delay_y, dtype=np.int64)
    operator = np.asarray(operator, dtype=np.int64)
    uses_x = np.array([("x" in OPERATORS[name].uses) for name in operators])[operator]
    uses_y = np.array([("y" in OPERATORS[name].uses) for name in operators])[operator]
    commutative = np.array([OPERATORS[name].commutative for name in operators])[operator]
    x, y = np.where(uses_x, x, 0), np.where(uses_y, y, 0)
    swap = commutative & (x > y)
    x, y = np.where(swap, y, x), np.where(swap, x, y)
    operand = n_features * span
    head = operator * 64 + np.asarray(activation, dtype=np.int64)
    return (head * operand + x) * operand + y


def _operand(name: str, delay: int) -> str:
    return f"{name}[t]" if delay == 0 else f"{name}[t-{delay}]"


def format_term(
    feature_x: int,
    delay_x: int,
    feature_y: int,
    delay_y: int,
    operator: str,
    activation: str,
    feature_names: Sequence[str],
) -> str:
    """A term as text, e.g. ``tanh(ret[t-2] - mkt[t-1])``."""
    op = OPERATORS[operator]
    body = op.template.format(
        x=_operand(feature_names[feature_x], delay_x),
        y=_operand(feature_names[feature_y], delay_y),
    )
    if activation == "identity":
        return f"({body})" if op.compound else body
    return ACTIVATIONS[activation].template.format(body)


def format_formula(
    population: Population,
    trader: int,
    feature_names: Sequence[str],
    operators: Sequence[str],
    activations: Sequence[str],
) -> str:
    """Trader `trader`'s weighted formula as text.

    For example ``+0.012 * tanh(ret[t-2] - mkt[t-1]) -0.3 * sign(vol[t])``. A term a Trader
    holds twice (generation draws terms independently) is printed once with the summed weight:
    the two slots compute the same values, so that is the formula.
    """
    weights: dict[str, float] = {}
    for j in range(int(population.n_terms[trader])):
        term = format_term(
            int(population.feature_x[trader, j]),
            int(population.delay_x[trader, j]),
            int(population.feature_y[trader, j]),
            int(population.delay_y[trader, j]),
            operators[int(population.operator[trader, j])],
            activations[int(population.activation[trader, j])],
            feature_names,
        )
        weights[term] = weights.get(term, 0.0) + float(population.weights[trader, j])
    return " ".join(f"{w:+.4g} * {term}" for term, w in weights.items())
