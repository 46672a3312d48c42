"""Losses, the distribution-to-moments estimator and the noise-equivalent penalty.

Pinball loss at level tau: ``rho_tau(u) = u (tau - 1{u < 0})`` with ``u = y - q``; its
expectation is minimised by the tau-quantile of y.

Moments from quantiles (`quantile_moments`): with predicted quantiles ``q_j`` at levels
``j / Q``, j = 1..Q-1, the mean is estimated by their average and the variance by their
population variance ``mean_j (q_j - mean)^2``. For a location-scale family ``mu + sigma Z`` the
first is exact whenever Z is symmetric, and the second equals ``c_Q sigma^2`` with a constant
``c_Q`` that depends only on Q and the family (about 0.54 for a Gaussian with Q = 8). The book
divides mean by variance and is rescaled to gross leverage 1, so a common constant ``c_Q``
cancels; it is the relative size across stocks that matters.

Noise-equivalent penalty (`noise_penalty`, ICAIF 2022 idea, derived here for this network):
noise ``delta_t ~ N(0, D_t)``, ``D_t = strength^2 |e_{t-1}|``, on the input returns changes a
prediction by ``g . delta`` to first order, ``g = d q / d e``, a Gaussian with variance
``v = sum_t D_t g_t^2``.

* MSE: ``E (y - f(e + delta))^2 = (y - f)^2 + v - (y - f) sum_t D_t d2f/de_t^2 + O(D^2)``. The
  curvature term averages out near the regression optimum (Bishop 1995), leaving the penalty
  ``v``: exact to second order apart from that term.
* Pinball: ``E rho_tau(u - g . delta) = tau u + sigma phi(u / sigma) - u Phi(-u / sigma)``,
  ``sigma^2 = v`` (exact under the linearisation). Averaged over the data, its excess over
  ``rho_tau(u)`` is ``v p_u(0) / 2 + o(v)``, with ``p_u(0)`` the density of the target at the
  predicted quantile. We approximate that density by a Gaussian fitted to the targets,
  ``p_u(0) ~ phi(Phi^-1(tau)) / sigma_y``. This is an approximation (the true density at each
  quantile is unknown), not an exact equivalence.

``v`` for all Q - 1 outputs would need Q - 1 input gradients per sample; we use an unbiased
Hutchinson estimate with one: for Rademacher ``xi``, ``E_xi sum_t D_t (d (sum_j xi_j c_j q_j) /
de_t)^2 = sum_j c_j^2 v_j``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

__all__ = [
    "gaussian_quantile_density",
    "noise_penalty",
    "pinball_loss",
    "quantile_levels",
    "quantile_moments",
]


def quantile_levels(n_quantiles: int) -> torch.Tensor:
    """Levels ``j / Q``, j = 1..Q-1. Shape: output (Q - 1,)."""
    return torch.arange(1, n_quantiles, dtype=torch.float32) / n_quantiles


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss over samples and levels.

    Shape: pred (N, K), target (N,), levels (K,); output scalar.
    """
    u = target[:, None] - pred
    return (u * (levels - (u < 0).to(u.dtype))).mean()


def quantile_moments(quantiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (population) variance of predicted quantiles, see the module docstring.

    Shape: input (N, Q - 1), outputs (N,), (N,).
    """
    mean = quantiles.mean(dim=-1)
    var = (quantiles - mean[..., None]).square().mean(dim=-1)
    return mean, var


def gaussian_quantile_density(levels: torch.Tensor, target_std: float) -> torch.Tensor:
    """``phi(Phi^-1(tau)) / sigma_y``: a Gaussian stand-in for the target density at each
    quantile. Shape: levels (K,), output (K,)."""
    nd = NormalDist()
    z = [nd.inv_cdf(float(t)) for t in levels]
    dens = [math.exp(-0.5 * v * v) / math.sqrt(2 * math.pi) for v in z]
    return torch.tensor(dens, dtype=torch.float32) / max(target_std, 1e-12)


def noise_penalty(
    outputs: torch.Tensor,
    paths: torch.Tensor,
    noise_var: torch.Tensor,
    weights: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """Hutchinson estimate of ``mean_n sum_j weights_j^2 v_nj``, ``v_nj = sum_t D_nt g_njt^2``.

    Parameters
    ----------
    outputs : Tensor of shape (N, K)
        Predictions, computed from `paths` with the graph kept.
    paths : Tensor of shape (N, H)
        Input returns (``requires_grad=True``).
    noise_var : Tensor of shape (N, H)
        ``D``, the injected noise variance of each return.
    weights : Tensor of shape (K,)
        ``c_j`` (square roots of the per-output penalty weights).
    generator : torch.Generator

    Returns
    -------
    Tensor, scalar, differentiable in the network parameters (double backprop).
    """
    xi = torch.randint(0, 2, outputs.shape, generator=generator).to(outputs) * 2 - 1
    (grad,) = torch.autograd.grad((outputs * (xi * weights)).sum(), paths, create_graph=True)
    return (noise_var * grad.square()).sum(dim=1).mean()
