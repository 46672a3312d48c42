"""Convex risk measures of hedged P&L samples, differentiable for deep hedging.

Every measure takes a tensor ``pnl`` of shape (N,): N equally likely Monte Carlo outcomes of a
profit and loss (larger is better) and returns a scalar tensor, the risk ``rho(pnl)`` of the
empirical distribution, in units of money (larger is riskier). All are built from ``logsumexp``,
``sort`` and means, so autograd flows to ``pnl`` (and on to the hedge that produced it).

* `entropic_risk`: ``rho(X) = (1 / a) log E[exp(-a X)]``, the certainty equivalent of
  exponential utility with absolute risk aversion ``a`` (Follmer and Schied, "Stochastic
  Finance", 4.9); ``-m + a s^2 / 2`` for a normal ``N(m, s^2)``.
* `expected_shortfall` (CVaR, average value at risk) at confidence ``level``: minus the mean of
  the worst ``1 - level`` fraction of outcomes.
* `oce` and `OCERisk`: the optimized certainty equivalent of Ben-Tal and Teboulle (1986, 2007),
  ``rho(X) = inf_w { w + E[l(-X - w)] }`` for a convex, increasing loss ``l`` with
  ``l(0) = 0`` and ``1`` in its subdifferential at 0. ``l(x) = max(x, 0) / (1 - level)`` gives
  the expected shortfall (Rockafellar and Uryasev 2000) and ``l(x) = (exp(a x) - 1) / a`` the
  entropic risk. `OCERisk` holds ``w`` as a learnable parameter, so that minimising over the
  hedge and ``w`` together (one optimizer over both) minimises the OCE.

All three are convex, monotone (``X <= Y`` gives ``rho(X) >= rho(Y)``) and cash-invariant
(``rho(X + c) = rho(X) - c``), which makes the optimal risk of a hedged short position an
indifference price (see `kabuto.hedging.hedger`). Bad arguments raise `ConfigError` naming the
argument.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor, nn

from kabuto.errors import ConfigError
from kabuto.settings import check_positive

__all__ = [
    "MIN_EFFECTIVE_PATHS",
    "MIN_TAIL_PATHS",
    "OCERisk",
    "cvar_loss",
    "entropic_loss",
    "entropic_risk",
    "expected_shortfall",
    "oce",
    "risk_measure",
]

Loss = Callable[[Tensor], Tensor]


#: Fewest tail paths (``N (1 - q)``), and fewest effective paths ``(sum w)^2 / sum w^2`` of the
#: entropic weights ``w = exp(-a X)``, for a Monte Carlo standard error of a risk estimate: with
#: fewer, the delta method's error is far too small (over replications, +-2 s.e. covered an
#: expected shortfall 0.99 on 50 paths 53% of the time, an entropic price at a = 300 never) and
#: the estimate itself is biased.
MIN_TAIL_PATHS = 10
MIN_EFFECTIVE_PATHS = 100


def risk_measure(pnl: Tensor, risk: str, aversion: float, level: float) -> Tensor:
    """The risk measure a hedger is trained on, by name: ``"entropic"`` (`entropic_risk` with
    `aversion`), or ``"cvar"`` and ``"oce"`` (`expected_shortfall` at `level`: the OCE with the
    CVaR loss, minimised over its cash amount, is the expected shortfall)."""
    if risk == "entropic":
        return entropic_risk(pnl, aversion)
    return expected_shortfall(pnl, level)


def entropic_risk(pnl: Tensor, aversion: float = 1.0) -> Tensor:
    """Entropic risk ``(1 / a) log E[exp(-a pnl)]`` of equally likely outcomes.

    Computed as ``(logsumexp(-a pnl) - log N) / a``, which never overflows.

    Parameters
    ----------
    pnl : Tensor
        Outcomes, larger is better. Shape: (N,), N >= 1, floating point.
    aversion : float, default 1.0
        Absolute risk aversion ``a`` (> 0).

    Returns
    -------
    Tensor
        The risk, a scalar of ``pnl``'s dtype.
    """
    owner = "entropic_risk"
    pnl = _check_pnl(owner, pnl)
    a = check_positive(owner, "aversion", aversion)
    return (torch.logsumexp(-a * pnl, dim=0) - math.log(pnl.shape[0])) / a


def expected_shortfall(pnl: Tensor, level: float) -> Tensor:
    """Expected shortfall (CVaR) at confidence `level`: minus the mean of the worst outcomes.

    Convention: with ``m = (1 - level) N`` the tail mass in samples, ``k = floor(m)``, and the
    outcomes sorted ascending ``x_(1) <= ... <= x_(N)``::

        ES = -(x_(1) + ... + x_(k) + (m - k) x_(k+1)) / m

    the mean of the worst ``1 - level`` fraction of the empirical distribution, the sample at
    the boundary entering with its fractional weight (the "atom" of the empirical law at the
    quantile is split), so the value is exact for every N, not only when ``(1 - level) N`` is a
    whole number (Acerbi and Tasche 2002). ``level = 0.5`` gives minus the mean of the worse
    half; as ``level -> 0`` it tends to minus the mean, and for ``m < 1`` it is minus the worst
    outcome. It equals ``min_w oce(pnl, cvar_loss(level), w)``.

    Parameters
    ----------
    pnl : Tensor
        Outcomes, larger is better. Shape: (N,), N >= 1.
    level : float
        Confidence level in (0, 1), e.g. 0.95 averages the worst 5 %.

    Returns
    -------
    Tensor
        The risk, a scalar of ``pnl``'s dtype (gradients flow to the tail outcomes).
    """
    owner = "expected_shortfall"
    pnl = _check_pnl(owner, pnl)
    level = _level(owner, level)
    n = pnl.shape[0]
    mass = (1.0 - level) * n
    k = min(math.floor(mass), n - 1)
    worst = torch.topk(pnl, k + 1, largest=False, sorted=True).values
    tail = worst[:k].sum() + (mass - k) * worst[k]
    return -tail / mass


def oce(pnl: Tensor, loss: Loss, w: float | Tensor) -> Tensor:
    """Optimized certainty equivalent objective ``w + E[loss(-pnl - w)]`` at a given `w`.

    Minimised over ``w`` it is the OCE risk of Ben-Tal and Teboulle (2007); at any other ``w`` it
    is an upper bound of it. ``loss`` must be convex and increasing with ``loss(0) = 0``, such as
    `cvar_loss` or `entropic_loss`.

    Parameters
    ----------
    pnl : Tensor
        Outcomes, larger is better. Shape: (N,), N >= 1.
    loss : callable
        Maps a tensor of losses ``-pnl - w`` elementwise to penalties.
    w : float or Tensor
        The cash amount (a scalar; a tensor keeps its gradient).

    Returns
    -------
    Tensor
        A scalar.
    """
    owner = "oce"
    pnl = _check_pnl(owner, pnl)
    if not callable(loss):
        raise ConfigError(f"{owner}: loss={loss!r} is not allowed; it must be a callable")
    if isinstance(w, Tensor):
        if w.numel() != 1:
            raise ConfigError(f"{owner}: w has shape {tuple(w.shape)}; it must be a scalar")
        w = w.reshape(())
    elif isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
        raise ConfigError(f"{owner}: w={w!r} is not allowed; it must be a finite number")
    return w + loss(-pnl - w).mean()


def cvar_loss(level: float) -> Loss:
    """The OCE loss ``l(x) = max(x, 0) / (1 - level)`` whose OCE is `expected_shortfall`."""
    level = _level("cvar_loss", level)
    scale = 1.0 / (1.0 - level)

    def loss(x: Tensor) -> Tensor:
        return x.clamp(min=0.0) * scale

    return loss


def entropic_loss(aversion: float = 1.0) -> Loss:
    """The OCE loss ``l(x) = (exp(a x) - 1) / a`` whose OCE is `entropic_risk`."""
    a = check_positive("entropic_loss", "aversion", aversion)

    def loss(x: Tensor) -> Tensor:
        return torch.expm1(a * x) / a

    return loss


class OCERisk(nn.Module):
    """OCE risk with a learnable cash amount ``w``: ``forward(pnl) = w + E[loss(-pnl - w)]``.

    Train it jointly with a hedging policy (pass both modules' parameters to one optimizer):
    the joint minimum over the hedge and ``w`` is the minimal OCE risk, and at the optimum
    ``w`` is the value at risk for `cvar_loss` (Rockafellar and Uryasev 2000).

    Parameters
    ----------
    loss : callable
        As in `oce`, e.g. ``cvar_loss(0.9)``.
    w : float, default 0.0
        Initial cash amount.
    """

    def __init__(self, loss: Loss, w: float = 0.0) -> None:
        super().__init__()
        if not callable(loss):
            raise ConfigError(f"OCERisk: loss={loss!r} is not allowed; it must be a callable")
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise ConfigError(f"OCERisk: w={w!r} is not allowed; it must be a finite number")
        self.loss = loss
        self.w = nn.Parameter(torch.tensor(float(w)))

    @classmethod
    def expected_shortfall(cls, level: float, w: float = 0.0) -> OCERisk:
        """The OCE of `cvar_loss` (`level`), minimised over ``w`` the expected shortfall."""
        return cls(cvar_loss(level), w)

    @classmethod
    def entropic(cls, aversion: float = 1.0, w: float = 0.0) -> OCERisk:
        """The OCE of `entropic_loss` (`aversion`), minimised over ``w`` the entropic risk."""
        return cls(entropic_loss(aversion), w)

    def forward(self, pnl: Tensor) -> Tensor:
        """The OCE objective at the current ``w`` (a scalar; >= the OCE risk)."""
        return oce(pnl, self.loss, self.w.to(dtype=pnl.dtype))


# ----------------------------------------------------------------------------------- checks


def _check_pnl(owner: str, pnl: object) -> Tensor:
    if not isinstance(pnl, Tensor) or not pnl.is_floating_point():
        got = f"a tensor of dtype {pnl.dtype}" if isinstance(pnl, Tensor) else repr(type(pnl))
        raise ConfigError(f"{owner}: pnl must be a floating-point torch.Tensor, got {got}")
    if pnl.ndim != 1 or pnl.shape[0] == 0:
        raise ConfigError(
            f"{owner}: pnl has shape {tuple(pnl.shape)}; it must be (N,) with N >= 1 outcomes"
        )
    return pnl


def _level(owner: str, level: object) -> float:
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ConfigError(
            f"{owner}: level={level!r} is not allowed; use a number in (0, 1), e.g. 0.95"
        )
    return float(level)
