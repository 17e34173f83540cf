"""Tests for GridGCNConv(..., max_pool=True): the fused convolution + 2x2 max pool equals the
convolution followed by GridMaxPool(2), values and gradients, in any number of chunks."""

import pytest
import torch

import gconv.layers.grid as grid_layers
from gconv.layers.grid import GridGCNConv, GridMaxPool


def unfused(conv: GridGCNConv, x: torch.Tensor, grid_size: tuple[int, int]):
    out, _ = GridMaxPool(2)(conv(x, grid_size=grid_size), grid_size)
    pooled_x, _ = GridMaxPool(2)(x, grid_size)
    return out, pooled_x


def gradients(outputs, inputs, seed: int = 3):
    """Gradients of a random linear function of ``outputs`` with respect to ``inputs``."""
    generator = torch.Generator().manual_seed(seed)
    loss = sum((out * torch.randn(out.shape, generator=generator)).sum() for out in outputs)
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("chunk_elements", [1 << 19, 100])  # one chunk; one image per chunk
@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("in_channels, out_channels", [(3, 5), (5, 3), (4, 4)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("grid_size", [(6, 7), (5, 4)])  # odd sizes drop a row / column
def test_fused_max_pool_equals_conv_then_grid_max_pool(
    monkeypatch, chunk_elements, connectivity, in_channels, out_channels, bias, grid_size
):
    monkeypatch.setattr(grid_layers, "_CHUNK_ELEMENTS", chunk_elements)
    torch.manual_seed(0)
    conv = GridGCNConv(in_channels, out_channels, connectivity, bias=bias)
    if bias:
        torch.nn.init.normal_(conv.bias)
    x = torch.randn(3, grid_size[0] * grid_size[1], in_channels, requires_grad=True)
    params = [x, conv.lin.weight] + ([conv.bias] if bias else [])

    expected, expected_x = unfused(conv, x, grid_size)
    pooled_size = (grid_size[0] // 2, grid_size[1] // 2)
    out, size, pooled_x = conv(x, grid_size=grid_size, max_pool=True, return_pooled_input=True)
    assert out.shape == (3, pooled_size[0] * pooled_size[1], out_channels)
    assert size == pooled_size  # as GridMaxPool returns it
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(pooled_x, expected_x)
    torch.testing.assert_close(conv(x, grid_size=grid_size, max_pool=True)[0], expected)
    for got, want in zip(
        gradients([out, pooled_x], params), gradients([expected, expected_x], params), strict=True
    ):
        torch.testing.assert_close(got, want)
    # only the convolution's output used: the pooled input's gradient is no part of x's
    for got, want in zip(
        gradients([conv(x, grid_size=grid_size, max_pool=True)[0]], params),
        gradients([unfused(conv, x, grid_size)[0]], params),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


def test_fused_max_pool_on_one_grid_and_without_input_gradient():
    torch.manual_seed(0)
    conv = GridGCNConv(4, 6)
    x = torch.randn(2, 42, 4)
    out, size, pooled_x = conv(x[1], grid_size=(6, 7), max_pool=True, return_pooled_input=True)
    assert out.shape == (9, 6) and pooled_x.shape == (9, 4) and size == (3, 3)
    torch.testing.assert_close(out, conv(x, grid_size=(6, 7), max_pool=True)[0][1])
    # x needs no gradient (an input image): weight and bias gradients only
    expected, _ = unfused(conv, x, (6, 7))
    got = gradients([conv(x, grid_size=(6, 7), max_pool=True)[0]], [conv.lin.weight, conv.bias])
    for g, w in zip(got, gradients([expected], [conv.lin.weight, conv.bias]), strict=True):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("in_channels, out_channels", [(2, 3), (3, 2)])
def test_fused_max_pool_gradcheck(in_channels, out_channels):
    conv = GridGCNConv(in_channels, out_channels).double()
    x = torch.randn(2, 20, in_channels, dtype=torch.double, requires_grad=True)

    def fused(x, weight, bias):
        conv.lin.weight, conv.bias = weight, bias
        out, _, pooled_x = conv(x, grid_size=(4, 5), max_pool=True, return_pooled_input=True)
        return out, pooled_x

    weight = conv.lin.weight.detach().clone().requires_grad_()
    bias = torch.randn(out_channels, dtype=torch.double, requires_grad=True)
    del conv.lin.weight, conv.bias  # plain tensors in their place for gradcheck
    assert torch.autograd.gradcheck(fused, (x, weight, bias))


def test_fused_max_pool_rejects_bad_input():
    conv = GridGCNConv(2, 3)
    with pytest.raises(ValueError, match="return_pooled_input=True without max_pool=True"):
        conv(torch.randn(4, 2), grid_size=(2, 2), return_pooled_input=True)
    with pytest.raises(ValueError, match="at least 2 x 2 nodes, got 1 x 4"):
        conv(torch.randn(4, 2), grid_size=(1, 4), max_pool=True)
    with pytest.raises(ValueError, match="got 5 nodes, which does not match grid_size 2 x 2"):
        conv(torch.randn(5, 2), grid_size=(2, 2), max_pool=True)
