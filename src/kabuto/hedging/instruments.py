"""Prices of hedging instruments beyond the underlying, along simulated paths.

`variance_swap_prices` is the second hedging instrument of Buehler, Gonon, Teichmann and Wood
(2019, "Deep hedging", section 5): in the Heston model, the underlying and a variance swap
complete the market, so a hedger trading both can replicate a European claim up to the error of
rebalancing at discrete dates.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kabuto.errors import ConfigError
from kabuto.settings import check_positive

__all__ = ["variance_swap_prices"]


def variance_swap_prices(variance: Tensor, maturity: float, kappa: float, theta: float) -> Tensor:
    """Prices of a variance swap on Heston paths: ``E[int_0^T v_s ds | F_t]`` at every date.

    With ``dv = kappa (theta - v) dt + xi sqrt(v) dW``, ``E[v_s | v_t] = theta + (v_t - theta)
    exp(-kappa (s - t))``, so the (discounted, zero-rate) price of the floating leg at date t is::

        S2_t = int_0^t v_s ds + L(t, v_t),
        L(t, v) = (v - theta) (1 - exp(-kappa (T - t))) / kappa + theta (T - t),

    (Buehler et al. 2019, section 5). The realised part ``int_0^t v_s ds`` is integrated with
    the trapezoidal rule on the paths' dates, whose bias against the exact conditional mean is
    of order ``kappa^2 dt^3`` per step. ``S2`` is a martingale, starts at ``L(0, v_0)`` and
    ends at the realised integral.

    Parameters
    ----------
    variance : Tensor
        Instantaneous variance ``v_t >= 0`` at the dates ``t = j maturity / T``, j = 0..T (e.g.
        the second output of `kabuto.sim.paths.heston_paths`). Shape: (N, T + 1).
    maturity : float
        T in years (> 0).
    kappa : float
        Mean-reversion speed (> 0).
    theta : float
        Long-run variance (> 0).

    Returns
    -------
    Tensor
        The swap's price at every date. Shape: (N, T + 1), the dtype and device of `variance`.
    """
    owner = "variance_swap_prices"
    horizon = check_positive(owner, "maturity", maturity)
    k = check_positive(owner, "kappa", kappa)
    th = check_positive(owner, "theta", theta)
    if not isinstance(variance, Tensor) or not variance.is_floating_point():
        got = f"dtype {variance.dtype}" if isinstance(variance, Tensor) else repr(type(variance))
        raise ConfigError(f"{owner}: variance must be a floating-point torch.Tensor, got {got}")
    if variance.ndim != 2 or variance.shape[0] == 0 or variance.shape[1] < 2:
        raise ConfigError(
            f"{owner}: variance has shape {tuple(variance.shape)}; it must be (N, T + 1) with "
            "N >= 1 and T >= 1"
        )
    if not bool((variance >= 0).all()) or not bool(variance.isfinite().all()):
        raise ConfigError(f"{owner}: variance must be finite and >= 0")
    steps = variance.shape[1] - 1
    dt = horizon / steps
    realised = torch.cat(
        [
            variance.new_zeros(variance.shape[0], 1),
            torch.cumsum((variance[:, 1:] + variance[:, :-1]) * (dt / 2), dim=1),
        ],
        dim=1,
    )
    remaining = horizon - dt * torch.arange(steps + 1, dtype=variance.dtype, device=variance.device)
    decay = -torch.expm1(-k * remaining) / k  # (1 - exp(-kappa (T - t))) / kappa
    return realised + (variance - th) * decay + th * remaining
