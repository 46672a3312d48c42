"""The KAN layer's B-splines against scipy, its invariants, and a KAN learning smooth functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from kabuto.errors import ConfigError
from kabuto.hedging.kan import KAN, KANLayer

torch.set_num_threads(1)


def random_inputs(layer: KANLayer, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Uniform float64 inputs inside the layer's grid range."""
    low, high = layer.grid_range
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("spline_order", [0, 1, 2, 3, 5])
@pytest.mark.parametrize(("grid_size", "grid_range"), [(5, (-1.0, 1.0)), (8, (-2.5, 0.7))])
def test_basis_matches_scipy(spline_order, grid_size, grid_range):
    layer = KANLayer(3, 2, grid_size, spline_order, grid_range)
    x = random_inputs(layer, (200, 3), seed=spline_order)
    basis = layer.basis(x)
    assert basis.shape == (200, 3, grid_size + spline_order)

    knots = np.linspace(
        grid_range[0] - spline_order * (grid_range[1] - grid_range[0]) / grid_size,
        grid_range[1] + spline_order * (grid_range[1] - grid_range[0]) / grid_size,
        grid_size + 2 * spline_order + 1,
    )
    reference = BSpline.design_matrix(x.numpy().ravel(), knots, spline_order).toarray()
    np.testing.assert_allclose(
        basis.numpy().reshape(-1, grid_size + spline_order), reference, rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("spline_order", [0, 1, 3, 4])
def test_basis_is_a_non_negative_partition_of_unity_inside_the_range(spline_order):
    layer = KANLayer(4, 1, grid_size=6, spline_order=spline_order, grid_range=(-3.0, 2.0))
    inside = random_inputs(layer, (500, 4), seed=1)
    edges = torch.tensor([[-3.0, 2.0, -0.5, 1.0 / 3.0]], dtype=torch.float64)
    x = torch.cat([inside, edges])
    basis = layer.basis(x)
    assert (basis >= 0).all()
    torch.testing.assert_close(basis.sum(-1), torch.ones_like(x), rtol=0, atol=1e-12)


def test_basis_vanishes_beyond_the_extended_grid():
    layer = KANLayer(1, 1, grid_size=4, spline_order=3, grid_range=(-1.0, 1.0))
    # The extended grid is [-1 - 3 * 0.5, 1 + 3 * 0.5] = [-2.5, 2.5].
    far = torch.tensor([[-2.6], [2.5], [7.0]], dtype=torch.float64)
    assert (layer.basis(far) == 0).all()
    partial = layer.basis(torch.tensor([[1.7]], dtype=torch.float64)).sum()
    assert 0 < partial < 1


def test_edge_function_and_its_derivative_match_a_scipy_spline():
    torch.manual_seed(0)
    layer = KANLayer(1, 1, grid_size=7, spline_order=3, grid_range=(-1.0, 2.0)).double()
    with torch.no_grad():
        layer.base_weight.fill_(0.8)
        layer.spline_scale.fill_(1.5)
    x = random_inputs(layer, (300, 1), seed=2).requires_grad_(True)
    y = layer(x)
    (slope,) = torch.autograd.grad(y.sum(), x)

    coefficients = 1.5 * layer.spline_coefficients.detach().numpy()[0, 0]
    knots = layer.knots(x).numpy()
    spline = BSpline(knots, coefficients, 3)
    points = x.detach().numpy().ravel()
    silu = points / (1 + np.exp(-points))
    silu_slope = (1 + np.exp(-points) * (1 + points)) / (1 + np.exp(-points)) ** 2
    np.testing.assert_allclose(y.detach().numpy().ravel(), 0.8 * silu + spline(points), atol=1e-12)
    np.testing.assert_allclose(
        slope.numpy().ravel(), 0.8 * silu_slope + spline.derivative()(points), atol=1e-10
    )


def test_layer_output_is_the_sum_of_its_edge_functions():
    torch.manual_seed(1)
    layer = KANLayer(3, 2, grid_size=4).double()
    x = random_inputs(layer, (50, 3), seed=3)
    out = layer(x)
    knots = layer.knots(x).numpy()
    expected = np.zeros((50, 2))
    for j in range(2):
        for i in range(3):
            c = (layer.spline_scale[j, i] * layer.spline_coefficients[j, i]).detach().numpy()
            xi = x[:, i].numpy()
            w_b = layer.base_weight[j, i].item()
            expected[:, j] += w_b * xi / (1 + np.exp(-xi)) + BSpline(knots, c, 3)(xi)
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-12)


def test_cubic_splines_reproduce_a_cubic_polynomial_by_least_squares():
    layer = KANLayer(1, 1, grid_size=5, spline_order=3).double()
    x = random_inputs(layer, (400, 1), seed=4)
    target = x**3 - 0.5 * x + 0.2
    design = layer.basis(x)[:, 0, :]
    coefficients = torch.linalg.lstsq(design, target).solution
    with torch.no_grad():
        layer.base_weight.zero_()
        layer.spline_scale.fill_(1.0)
        layer.spline_coefficients.copy_(coefficients.T.reshape(1, 1, -1))
    test_x = random_inputs(layer, (100, 1), seed=5)
    torch.testing.assert_close(layer(test_x), test_x**3 - 0.5 * test_x + 0.2, rtol=0, atol=1e-10)


def test_kan_maps_shapes_and_passes_gradients_to_every_parameter():
    torch.manual_seed(2)
    model = KAN([3, 4, 5, 2], grid_size=3)
    x = torch.rand(6, 7, 3) * 2 - 1
    out = model(x)
    assert out.shape == (6, 7, 2)
    assert out.dtype == torch.float32
    out.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    assert len(model.layers) == 3
    assert [(la.in_features, la.out_features) for la in model.layers] == [(3, 4), (4, 5), (5, 2)]


def test_same_seed_gives_the_same_network():
    torch.manual_seed(7)
    first = KAN([2, 3, 1])
    torch.manual_seed(7)
    second = KAN([2, 3, 1])
    x = torch.rand(10, 2)
    torch.testing.assert_close(first(x), second(x), rtol=0, atol=0)


def test_float64_matches_float32():
    torch.manual_seed(3)
    model = KAN([2, 4, 1])
    x = torch.rand(32, 2) * 2 - 1
    single = model(x)
    model.double()
    double = model(x.double())
    assert double.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in model.parameters())
    torch.testing.assert_close(double.float(), single, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda_like_on_cpu():
    torch.manual_seed(4)
    model = KAN([3, 5, 2]).double()
    x = torch.rand(64, 3, dtype=torch.float64) * 2 - 1
    on_cpu = model(x)
    on_gpu = model.to("cuda")(x.to("cuda"))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-10, atol=1e-12)


def fit(model: KAN, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> None:
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = (model(x) - y).square().mean()
        loss.backward()
        optimiser.step()


def test_single_edge_kan_learns_a_sine():
    torch.manual_seed(0)
    x = torch.rand(1024, 1) * 2 - 1
    model = KAN([1, 1])
    fit(model, x, torch.sin(math.pi * x), steps=300, lr=0.03)
    test_x = torch.linspace(-1, 1, 1001).unsqueeze(-1)
    with torch.no_grad():
        error = model(test_x) - torch.sin(math.pi * test_x)
    # Target standard deviation 0.71; a cubic spline on 5 intervals gets within about 3e-3.
    assert error.square().mean().sqrt() < 1e-2
    assert error.abs().max() < 3e-2


def test_two_layer_kan_learns_the_papers_two_dimensional_example():
    # f(x, y) = exp(sin(pi x) + y**2), a [2, 5, 1] example of Liu et al. (2024).
    def target(points: torch.Tensor) -> torch.Tensor:
        return torch.exp(torch.sin(math.pi * points[:, :1]) + points[:, 1:].square())

    torch.manual_seed(0)
    x = torch.rand(1024, 2) * 2 - 1
    model = KAN([2, 5, 1])
    fit(model, x, target(x), steps=300, lr=0.03)
    test_x = torch.rand(4000, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        rmse = (model(test_x) - target(test_x)).square().mean().sqrt()
    # Target standard deviation 1.4 (range 0.37 to 7.4); an untrained network is off by ~2.5.
    assert rmse < 0.05


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"sizes": [3]}, "sizes=[3]"),
        ({"sizes": (2, 0, 1)}, "sizes=(2, 0, 1)"),
        ({"sizes": (2, 1.5)}, "sizes=(2, 1.5)"),
        ({"sizes": (2, 1), "grid_size": 0}, "grid_size=0"),
        ({"sizes": (2, 1), "spline_order": -1}, "spline_order=-1"),
        ({"sizes": (2, 1), "grid_range": (1.0, -1.0)}, "grid_range=(1.0, -1.0)"),
        ({"sizes": (2, 1), "grid_range": (0.0, math.inf)}, "grid_range=(0.0, inf)"),
        ({"sizes": (2, 1), "grid_range": 1.0}, "grid_range=1.0"),
    ],
)
def test_bad_arguments_raise_one_line_config_errors(arguments, named):
    with pytest.raises(ConfigError) as caught:
        KAN(**arguments)
    message = str(caught.value)
    assert message.startswith("KAN: ")
    assert named in message
    assert "\n" not in message


def test_bad_layer_arguments_and_inputs_raise_config_errors():
    with pytest.raises(ConfigError, match="in_features=0"):
        KANLayer(0, 2)
    layer = KANLayer(3, 2)
    with pytest.raises(ConfigError, match="in_features=3"):
        layer(torch.zeros(5, 4))
