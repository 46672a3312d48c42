"""Deep portfolio optimisation via distributional prediction of residual factors.

Imajo, Minami, Ito, Nakagawa, AAAI 2021 (arXiv 2012.07245), with the data augmentation of
Ziyin, Minami, Imajo, ICAIF 2022 (arXiv 2106.04114). Modules: `features` (multi-scale residual
paths, training samples, augmentation noise), `networks` (fractal / MLP / LSTM bodies behind an
amplitude-invariant wrapper; the fractal body's psi1 on learned exponential filters), `losses`
(pinball loss, quantile moments, noise-equivalent penalty), `strategy` (`DeepResidual`).
"""

from kabuto.strategies.deep_residual.features import (
    augmentation_noise,
    multiscale_features,
    multiscale_operator,
    scales,
)
from kabuto.strategies.deep_residual.losses import (
    noise_penalty,
    pinball_loss,
    quantile_levels,
    quantile_moments,
)
from kabuto.strategies.deep_residual.networks import (
    EnsemblePredictor,
    ExponentialFilters,
    ResidualPredictor,
    make_body,
)
from kabuto.strategies.deep_residual.strategy import ARCHITECTURES, AUGMENTATIONS, DeepResidual

__all__ = [
    "ARCHITECTURES",
    "AUGMENTATIONS",
    "DeepResidual",
    "EnsemblePredictor",
    "ExponentialFilters",
    "ResidualPredictor",
    "augmentation_noise",
    "make_body",
    "multiscale_features",
    "multiscale_operator",
    "noise_penalty",
    "pinball_loss",
    "quantile_levels",
    "quantile_moments",
    "scales",
]
