"""Online portfolio selection (OLPS) baselines: EG, OLMAR, PAMR, and the best stock in hindsight.

Online portfolio selection rebalances a long-only, fully invested portfolio ``b_t`` (a point of
the simplex) once per period, from the price relatives ``x_t = p_t / p_{t-1}`` seen so far. The
classical baselines are already in kabuto and are not repeated here:

- UCRP, the uniform constant rebalanced portfolio, is `kabuto.strategies.EqualWeight` run with
  daily rebalancing (``WalkForward(rebalance=1)``): it trades back to 1/N at every close.
- UBAH, uniform buy-and-hold, is `kabuto.strategies.BuyAndHold`: 1/N once, then it never trades.

This module adds

- `ExponentiatedGradient` (EG; Helmbold, Schapire, Singer and Warmuth, "On-line portfolio
  selection using multiplicative updates", Mathematical Finance 1998): follow the winner,
  ``b_{t+1,i} ∝ b_{t,i} exp(eta x_{t,i} / (b_t . x_t))``.
- `OLMAR` (Li and Hoi, "On-line portfolio selection with moving average reversion", ICML 2012;
  OLMAR-1): predicts that prices revert to their w-day moving average,
  ``x~_{t+1} = MA_w(p) / p_t``, and moves b just far enough that ``b . x~_{t+1} >= epsilon``.
- `PAMR` (Li, Zhao, Hoi and Gopalkrishnan, "PAMR: passive aggressive mean reversion strategy
  for portfolio selection", Machine Learning 2012), with its PAMR-1 and PAMR-2 variants: when
  the last period's portfolio relative ``b_t . x_t`` exceeds epsilon, it moves b away from the
  assets that rose (it bets that they fall back).
- `BestStockOracle`: the asset with the highest total return over a period, held throughout.
  It LOOKS AHEAD (it ranks assets on prices after the decision date) and is an upper reference
  for the "best stock" a buy-and-hold investor could have picked, never a contender.
- `project_simplex`: the exact Euclidean projection onto the simplex (Duchi, Shalev-Shwartz,
  Singer and Chandra, ICML 2008), which OLMAR and PAMR use to return to the simplex.

**Which b_t.** The papers update the portfolio the algorithm *chose* for the last period, not
the book after prices moved it. The online strategies therefore keep their own last target as
learned state (``weights_``) and update it; `reset` (called by the backtest before it starts)
forgets it. The drifted weights the engine passes as ``prev_weights`` are used only to notice a
new book: all zeros means nothing is held (the first decision of a backtest, or every held
asset has delisted), so the algorithm restarts from 1/N. The engine charges the cost of trading
from the drifted book to the new target, so the costs are those of the real holdings.

**Periods.** One period is one interval between decisions. EG and PAMR take ``x_t`` as the
price relatives from the previous decision date to this one (``p_now / p_prev``, prices stored
at the previous decision), so ``b_t . x_t`` is exactly the gross growth of the book bought at
b_t over that period, whatever the rebalancing schedule. OLMAR's moving average uses the last
`window` prices of the panel (its own frequency). The papers decide once per data period: with
daily data, rebalance daily.

**Universe changes.** Between two decisions assets may list or delist (the window's assets
change). The update runs on the survivors (assets in both the previous and the current
universe): their previous weights are renormalised to sum to 1 (a delisted asset's weight is
spread over the survivors in proportion; if the survivors held nothing, they restart at 1/N).
Then every new asset enters at the uniform weight 1/n (n the new universe's size) and the
survivors' updated weights are scaled by (number of survivors) / n, so the book stays fully
invested and a uniform book stays uniform. With no survivors the algorithm restarts from 1/n.

**Restarts.** The state restarts at 1/N (the papers' ``b_1``) on the first call, after
`reset`, when ``prev_weights`` is all zeros, and when the decision date is not later than the
previous one (a new pass over time). Everything is deterministic.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from kabuto.data.panel import Panel, Window, WindowBatch
from kabuto.errors import ArgumentError, ConfigError, DataError
from kabuto.settings import check_non_negative
from kabuto.strategies.base import Strategy, held_weights
from kabuto.strategies.batched import (
    BatchedStrategy,
    check_choice,
    check_int,
    check_lookback,
    check_positive,
    window_prices,
)
from kabuto.strategies.oracle import locate_in_panel

__all__ = [
    "OLMAR",
    "PAMR",
    "BestStockOracle",
    "ExponentiatedGradient",
    "OnlinePortfolio",
    "project_simplex",
]


def project_simplex(v: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Euclidean projection of each row of `v` onto the simplex ``{w >= 0, sum(w) = total}``.

    The sort-based algorithm of Duchi, Shalev-Shwartz, Singer and Chandra (ICML 2008, Fig. 1):
    sort u = v descending, let rho be the largest j with ``u_j - (sum_{r<=j} u_r - total) / j
    > 0`` and theta = ``(sum_{r<=rho} u_r - total) / rho``; the projection is
    ``max(v - theta, 0)``. Exact up to rounding, O(n log n) per row.

    Parameters
    ----------
    v : array_like of shape (..., n)
        Points to project, one per row (last axis); must be finite.
    total : float, default=1.0
        Sum of the projected weights (> 0).

    Returns
    -------
    ndarray of shape (..., n)
        The closest point of the simplex to each row, in Euclidean distance.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 0 or v.shape[-1] == 0:
        raise ArgumentError(f"project_simplex: expected shape (..., n) with n >= 1, got {v.shape}")
    if not np.isfinite(v).all():
        raise ArgumentError("project_simplex: the points to project must be finite")
    if not (np.isfinite(total) and total > 0):
        raise ArgumentError(f"project_simplex: total={total!r} must be a finite number > 0")
    # Shifting every entry by one constant leaves the projection unchanged; shifting by the row's
    # largest makes u_1 = 0, so u_1 - (u_1 - total) = total > 0 holds in floating point too
    # (for entries far above `total`, u_1 - total rounds back to u_1 and rho would be 0).
    v = v - v.max(axis=-1, keepdims=True)
    u = -np.sort(-v, axis=-1)
    cumulative = np.cumsum(u, axis=-1) - total
    j = np.arange(1, v.shape[-1] + 1)
    positive = u - cumulative / j > 0  # True for j = 1..rho, False after (a prefix)
    rho = positive.sum(axis=-1, keepdims=True)  # >= 1: j = 1 always qualifies
    theta = np.take_along_axis(cumulative, rho - 1, axis=-1) / rho
    return np.maximum(v - theta, 0.0)


class OnlinePortfolio(Strategy):
    """Shared machinery of the stateful OLPS strategies (see the module docstring).

    Subclasses implement `_update` (one step of the paper's rule on the surviving assets) and
    `_validate` (settings; raise `ConfigError`), and may set `_prices_needed` (how many of the
    window's last prices `_update` reads).

    `allocate_batch` (inherited) calls `allocate` for the batch's dates in order, so it runs the
    algorithm on from its current state; the backtest calls stateful strategies date by date.

    Attributes
    ----------
    weights_ : ndarray of shape (n,)
        The algorithm's own last target b_t over `assets_` (absent before the first decision).
    assets_ : tuple of n str
        The universe of the last decision.
    prices_ : ndarray of shape (n,)
        Prices at the last decision date (to form the next period's price relatives).
    date_ : Timestamp
        The last decision date.
    """

    stateful: ClassVar[bool] = True
    long_only: ClassVar[bool] = True
    _state: ClassVar[tuple[str, ...]] = ("weights_", "assets_", "prices_", "date_")

    @property
    def _prices_needed(self) -> int:
        return 1

    def _validate(self) -> None:
        raise NotImplementedError

    def _update(self, b: np.ndarray, x: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """One update of the paper's rule.

        Parameters
        ----------
        b : ndarray of shape (m,)
            The previous portfolio on the surviving assets (on the simplex).
        x : ndarray of shape (m,)
            Their price relatives over the last period (p_now / p_prev).
        prices : ndarray of shape (k, m)
            Their last k = `_prices_needed` prices, the last row the decision date's.

        Returns
        -------
        ndarray of shape (m,)
            The next portfolio, on the simplex.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the previous portfolio: the next decision starts again from 1/N."""
        for attr in self._state:
            self.__dict__.pop(attr, None)

    def allocate(self, window: Window, prev_weights: np.ndarray | None = None) -> np.ndarray:
        """Target weights of shape (n,) for ``window.date``: one online update of b_t.

        Parameters
        ----------
        window : Window
            Prices and returns of shape (L, n) ending at the decision date.
        prev_weights : ndarray of shape (n,), optional
            The drifted weights held now (from the engine). Only used to detect a new book (all
            zeros: restart from 1/N); None continues from the algorithm's own state.

        Returns
        -------
        ndarray of shape (n,)
            Non-negative weights summing to 1.
        """
        self._validate()
        n = window.n_assets
        prev = held_weights(self.name, prev_weights, window, long_only=self.long_only)
        fresh_book = prev is not None and not np.any(prev)
        prices = self._window_prices(window)  # (k, n), checked
        previous = self.__dict__.get("weights_")
        restart = (
            previous is None
            or fresh_book
            or window.date <= self.date_
            or not set(self.assets_) & set(window.assets)
        )
        b = np.full(n, 1.0 / n) if restart else self._step(window.assets, prices)
        self.weights_ = b
        self.assets_ = tuple(window.assets)
        self.prices_ = prices[-1].copy()
        self.date_ = window.date
        return b.copy()

    def _step(self, assets: tuple[str, ...], prices: np.ndarray) -> np.ndarray:
        """Update the survivors, then admit new assets at 1/n (module docstring)."""
        old = {a: i for i, a in enumerate(self.assets_)}
        position = np.array([old.get(a, -1) for a in assets], dtype=np.int64)
        alive = position >= 0
        b = self.weights_[position[alive]]
        total = b.sum()
        b = b / total if total > 0 else np.full(len(b), 1.0 / len(b))
        x = prices[-1, alive] / self.prices_[position[alive]]
        updated = self._update(b, x, prices[:, alive])
        n = len(assets)
        out = np.full(n, 1.0 / n)
        out[alive] = updated * (alive.sum() / n)
        return out

    def _window_prices(self, window: Window) -> np.ndarray:
        """The window's last `_prices_needed` prices, shape (k, n); finite and positive."""
        return window_prices(window, self._prices_needed, self.name)


class ExponentiatedGradient(OnlinePortfolio):
    """EG: multiplicative update toward the assets that did well (Helmbold et al. 1998).

    ``b_{t+1,i} = b_{t,i} exp(eta x_{t,i} / (b_t . x_t)) / Z``, Z normalising to sum 1, with
    x_t the price relatives of the last period. Starts at 1/N. Stateful: see the module
    docstring for the b_t it updates, restarts and universe changes.

    Parameters
    ----------
    eta : float, default=0.05
        Learning rate (> 0); the paper's experiments use 0.05. Small eta stays close to UCRP.
    lookback : int, default=1
        History required (>= 1 return; EG reads only the decision date's prices).
    label : str, optional
        Name in results (default: the class name).
    """

    def __init__(self, eta: float = 0.05, lookback: int = 1, label: str | None = None) -> None:
        self.eta = eta
        self.lookback = lookback
        self.label = label
        self._validate()

    def _validate(self) -> None:
        name = type(self).__name__
        check_positive(name, "eta", self.eta)
        check_lookback(name, self.lookback, minimum=1)

    def _update(self, b: np.ndarray, x: np.ndarray, prices: np.ndarray) -> np.ndarray:
        exponent = float(self.eta) * x / (b @ x)
        # Only held assets move (b = 0 stays 0); the shift, which cancels in the normalisation,
        # is theirs, so that a large eta neither underflows them all to 0 nor sends an unheld
        # asset's exponential to inf (0 * inf is NaN).
        held = b > 0
        w = np.zeros_like(b)
        w[held] = b[held] * np.exp(exponent[held] - exponent[held].max())
        return w / w.sum()


class OLMAR(OnlinePortfolio):
    """OLMAR-1: on-line moving average reversion (Li and Hoi, ICML 2012).

    Predicted price relatives ``x~ = MA_w(p) / p_t = mean(p_{t-w+1..t}) / p_t`` (prices revert
    to their w-price moving average). With ``xbar = mean(x~)``::

        lambda  = max(0, (epsilon - b_t . x~) / ||x~ - xbar 1||^2)    (0 if the norm is 0)
        b_{t+1} = proj_simplex(b_t + lambda (x~ - xbar 1))

    the smallest change of b_t that makes the predicted return ``b . x~`` reach epsilon
    (passive when it already does). Starts at 1/N. Stateful: see the module docstring.

    Parameters
    ----------
    window : int, default=5
        Number of prices in the moving average w (>= 2), the paper's default 5.
    epsilon : float, default=10.0
        Reversion threshold (> 0), the paper's default 10 (aggressive: most steps move all the
        weight toward the assets furthest below their average).
    lookback : int, default=5
        History required; at least `window` returns, so that every asset has `window` prices
        in the window (a window holds as many prices as returns) and joins only when it has
        them.
    label : str, optional
    """

    def __init__(
        self,
        window: int = 5,
        epsilon: float = 10.0,
        lookback: int = 5,
        label: str | None = None,
    ) -> None:
        self.window = window
        self.epsilon = epsilon
        self.lookback = lookback
        self.label = label
        self._validate()

    @property
    def _prices_needed(self) -> int:
        return int(self.window)

    def _validate(self) -> None:
        name = type(self).__name__
        window = check_int(name, "window", self.window, minimum=2)
        check_positive(name, "epsilon", self.epsilon)
        lookback = check_lookback(name, self.lookback, minimum=1)
        if lookback < window:
            raise ConfigError(
                f"{name}: lookback={lookback!r} is too short for window={window}; use "
                f"lookback >= {window} (the moving average needs {window} prices)"
            )

    def _update(self, b: np.ndarray, x: np.ndarray, prices: np.ndarray) -> np.ndarray:
        predicted = prices.mean(axis=0) / prices[-1]
        deviation = predicted - predicted.mean()
        norm2 = _spread(deviation, predicted)
        step = max(0.0, (float(self.epsilon) - b @ predicted) / norm2) if norm2 > 0 else 0.0
        return project_simplex(b + step * deviation)


def _spread(deviation: np.ndarray, x: np.ndarray) -> float:
    """``||deviation||^2``, or 0 when it is rounding noise of `x` (equal or proportional
    prices): dividing by such noise would step the weights by 1e30 on no signal at all."""
    norm2 = float(deviation @ deviation)
    return norm2 if norm2 > (64 * np.finfo(float).eps) ** 2 * float(x @ x) else 0.0


class PAMR(OnlinePortfolio):
    """PAMR, PAMR-1 and PAMR-2: passive aggressive mean reversion (Li et al. 2012).

    With x_t the price relatives of the last period, ``xbar = mean(x_t)`` and the
    epsilon-insensitive loss ``l = max(0, b_t . x_t - epsilon)``::

        PAMR    tau = l / ||x_t - xbar 1||^2
        PAMR-1  tau = min(C, l / ||x_t - xbar 1||^2)
        PAMR-2  tau = l / (||x_t - xbar 1||^2 + 1 / (2 C))
        b_{t+1} = proj_simplex(b_t - tau (x_t - xbar 1))

    (tau = 0 when the norm is 0 for PAMR and PAMR-1). Passive while the portfolio return stays
    below epsilon, otherwise it shifts weight from the assets that rose to those that fell.
    Starts at 1/N. Stateful: see the module docstring.

    Parameters
    ----------
    epsilon : float, default=0.5
        Sensitivity (>= 0), the paper's default 0.5 (with daily relatives near 1 the loss is
        almost always positive, so PAMR updates at every step).
    variant : {"pamr", "pamr1", "pamr2"}, default="pamr"
    aggressiveness : float, default=500.0
        C of PAMR-1 and PAMR-2 (> 0), the paper's default 500; unused by plain PAMR.
    lookback : int, default=1
        History required (>= 1; PAMR reads only the decision date's prices).
    label : str, optional
    """

    _variants: ClassVar[tuple[str, ...]] = ("pamr", "pamr1", "pamr2")

    def __init__(
        self,
        epsilon: float = 0.5,
        variant: str = "pamr",
        aggressiveness: float = 500.0,
        lookback: int = 1,
        label: str | None = None,
    ) -> None:
        self.epsilon = epsilon
        self.variant = variant
        self.aggressiveness = aggressiveness
        self.lookback = lookback
        self.label = label
        self._validate()

    def _validate(self) -> None:
        name = type(self).__name__
        check_non_negative(name, "epsilon", self.epsilon)
        check_choice(name, "variant", self.variant, self._variants)
        check_positive(name, "aggressiveness", self.aggressiveness)
        check_lookback(name, self.lookback, minimum=1)

    def _update(self, b: np.ndarray, x: np.ndarray, prices: np.ndarray) -> np.ndarray:
        loss = max(0.0, b @ x - float(self.epsilon))
        deviation = x - x.mean()
        norm2 = _spread(deviation, x)
        c = float(self.aggressiveness)
        if self.variant == "pamr2":
            tau = loss / (norm2 + 1.0 / (2.0 * c))
        elif norm2 > 0:
            tau = loss / norm2
            if self.variant == "pamr1":
                tau = min(c, tau)
        else:
            tau = 0.0
        return project_simplex(b - tau * deviation)


class BestStockOracle(BatchedStrategy):
    """ORACLE, LOOKS AHEAD: holds the asset with the highest total return over a period.

    The "best stock in hindsight" of the OLPS literature: at every decision it puts all its
    weight on the window's asset whose price grew most over ``[start, end]`` of `panel`, a
    ranking that uses prices after the decision date. It is a reference for how much a perfect
    stock picker could have made with one name, never a contender: its results are not a
    strategy's and it must stay out of leaderboards of honest strategies. Its default name says
    so, and ``looks_ahead = True`` marks it.

    An asset's total return is its last price in the period over its first (assets listed for
    part of the period count over that part). If the best asset is not in the window's universe
    (not yet listed, or delisted) it holds the best one that is; ties go to the first asset.
    Stateless: with daily or periodic rebalancing it trades back to the one name it holds.

    Parameters
    ----------
    panel : Panel
        The panel it ranks, the same one being backtested (checked at each decision).
    start, end : date-like, optional
        The period of the ranking (default: the whole panel). Use the backtest's own period.
    lookback : int, default=1
        History it asks the backtest for (it uses none of it).
    label : str, optional
        Name in results (default "BestStockOracle (looks ahead)").

    Raises
    ------
    ConfigError
        A `panel` that is not a Panel, unparseable dates, or start after end.
    DataError
        When asked to allocate on windows that are not from `panel`.
    """

    long_only: ClassVar[bool] = True
    looks_ahead: ClassVar[bool] = True
    _min_lookback: ClassVar[int] = 1

    def __init__(
        self,
        panel: Panel,
        *,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        lookback: int = 1,
        label: str | None = None,
    ) -> None:
        self.panel = panel
        self.start = start
        self.end = end
        self.lookback = lookback
        self.label = label
        self._validate()

    @property
    def name(self) -> str:
        """The label, or "BestStockOracle (looks ahead)"."""
        return self.label or f"{type(self).__name__} (looks ahead)"

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        if not isinstance(self.panel, Panel):
            raise ConfigError(
                f"{name}: panel={type(self.panel).__name__} is not a Panel; pass the Panel "
                "being backtested"
            )
        self._period()

    def _period(self) -> tuple[int, int]:
        """Panel rows of the first and last date of the ranking period."""
        name = type(self).__name__
        dates = self.panel.dates
        bounds = []
        for key in ("start", "end"):
            value = getattr(self, key)
            if value is None:
                bounds.append(None)
                continue
            try:
                bounds.append(pd.Timestamp(value))
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"{name}: {key}={value!r} is not a date; use e.g. '2020-01-31' or None"
                ) from exc
        first = 0 if bounds[0] is None else int(dates.searchsorted(bounds[0], side="left"))
        last = (
            len(dates) - 1
            if bounds[1] is None
            else int(dates.searchsorted(bounds[1], side="right")) - 1
        )
        if last <= first:
            raise ConfigError(
                f"{name}: start={self.start!r}, end={self.end!r} leave fewer than 2 dates of "
                f"{self.panel.source} ({dates[0].date()}..{dates[-1].date()}); choose a later "
                "end or an earlier start"
            )
        return first, last

    def total_returns(self) -> np.ndarray:
        """Total return of each panel asset over the period, shape (N,); NaN if unpriced."""
        first, last = self._period()
        prices = self.panel.prices[first : last + 1]
        finite = np.isfinite(prices)
        head = finite.argmax(axis=0)
        tail = len(prices) - 1 - finite[::-1].argmax(axis=0)
        cols = np.arange(prices.shape[1])
        with np.errstate(invalid="ignore"):
            out = prices[tail, cols] / prices[head, cols] - 1.0
        out[~finite.any(axis=0)] = np.nan
        return out

    def _allocate_batch(self, batch: WindowBatch) -> np.ndarray:
        columns = self._locate(batch)
        score = self.total_returns()[columns]
        if not np.isfinite(score).any():
            raise DataError(
                f"{self.name}: none of the assets of the window ending {batch.dates[0].date()} "
                "has prices in the oracle's period; widen start/end"
            )
        weights = np.zeros((len(batch), batch.n_assets))
        weights[:, int(np.nanargmax(score))] = 1.0
        return weights

    def _locate(self, batch: WindowBatch) -> np.ndarray:
        """Panel columns of the batch's assets, after checking the batch is from the panel."""
        return locate_in_panel(self.panel, batch, self.name)[1]
