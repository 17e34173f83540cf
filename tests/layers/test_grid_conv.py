"""Tests for gconv.layers.grid: GridConv == Conv2d, GridGCNConv == GCNConv, grid pooling."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GCNConv as PyGGCNConv

from gconv.data.grid import grid_graph, image_to_graph, images_to_nodes, nodes_to_images
from gconv.layers.grid import (
    GridAvgPool,
    GridConv,
    GridGCNConv,
    GridMaxPool,
    grid_conv2d,
    grid_gcn_norm,
)
from gconv.layers.spline import BSplineConv


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(3, 4, 6, 7, generator=torch.Generator().manual_seed(0))


def make_conv(in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True):
    torch.manual_seed(1)
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


@pytest.mark.parametrize("bias", [True, False])
def test_grid_conv_fast_path_equals_conv2d(images, bias):
    conv = make_conv(4, 5, bias=bias)
    grid_conv = GridConv.from_conv2d(conv)
    out = grid_conv(images_to_nodes(images), grid_size=(6, 7))
    assert out.shape == (3, 42, 5)
    torch.testing.assert_close(nodes_to_images(out, 6, 7), conv(images))


@pytest.mark.parametrize("self_loops", [True, False])
def test_grid_conv_message_passing_equals_fast_path_and_conv2d(images, self_loops):
    conv = make_conv(4, 5)
    grid_conv = GridConv.from_conv2d(conv)
    graph = grid_graph(6, 7, connectivity=8, self_loops=self_loops)
    nodes = images_to_nodes(images)
    general = grid_conv(nodes, graph.edge_index, graph.edge_attr)
    fast = grid_conv(nodes, grid_size=(6, 7))
    torch.testing.assert_close(general, fast)
    torch.testing.assert_close(nodes_to_images(general, 6, 7), conv(images))
    # a single (N, C) graph through both paths
    torch.testing.assert_close(
        grid_conv(nodes[1], graph.edge_index, graph.edge_attr),
        grid_conv(nodes[1], grid_size=(6, 7)),
    )


def test_grid_conv_gradients_agree_between_paths(images):
    grid_conv = GridConv(4, 3)
    graph = grid_graph(6, 7)
    nodes = images_to_nodes(images)
    grid_conv(nodes, graph.edge_index, graph.edge_attr).square().sum().backward()
    general_grad = grid_conv.weight.grad.clone()
    grid_conv.weight.grad = None
    grid_conv(nodes, grid_size=(6, 7)).square().sum().backward()
    torch.testing.assert_close(grid_conv.weight.grad, general_grad)


@pytest.mark.parametrize(("kernel_size", "bias"), [(1, True), (3, False), (5, True)])
def test_to_conv2d_is_the_inverse_of_from_conv2d(images, kernel_size, bias):
    grid_conv = GridConv(4, 5, kernel_size, bias=bias).double()
    conv = grid_conv.to_conv2d()
    assert (conv.kernel_size, conv.padding) == ((kernel_size,) * 2, (kernel_size // 2,) * 2)
    assert conv.weight.dtype == torch.float64 and (conv.bias is None) == (not bias)
    # the message-passing path on the grid graph computes the Conv2d it converts to
    nodes = images_to_nodes(images.double())
    if kernel_size > 1:
        graph = grid_graph(6, 7, connectivity=kernel_size**2 - 1)
        out = grid_conv(nodes, graph.edge_index, graph.edge_attr)
        torch.testing.assert_close(nodes_to_images(out, 6, 7), conv(images.double()))
    back = GridConv.from_conv2d(conv)
    assert torch.equal(back.weight, grid_conv.weight)
    assert bias == (back.bias is not None) and (not bias or torch.equal(back.bias, grid_conv.bias))
    with torch.no_grad():  # copies, not shared storage
        conv.weight.zero_()
    assert grid_conv.weight.abs().sum() > 0


def test_grid_conv_5x5_on_24_neighbour_grid_equals_conv2d(images):
    conv = make_conv(4, 2, kernel_size=5)
    grid_conv = GridConv.from_conv2d(conv)
    graph = grid_graph(6, 7, connectivity=24)
    out = grid_conv(images_to_nodes(images), graph.edge_index, graph.edge_attr)
    torch.testing.assert_close(nodes_to_images(out, 6, 7), conv(images))


def test_grid_conv_orientation_is_cross_correlation():
    # a Conv2d whose only tap is weight[0, 0, 0, 2] (row above, column right): it reads the
    # neighbour at (dx, dy) = (+1, -1), so output pixel (1, 0) sees input pixel (0, 1)
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 2] = 1.0
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 0, 1] = 1.0
    assert conv(image)[0, 0, 1, 0] == 1.0
    data = image_to_graph(image[0])
    out = GridConv.from_conv2d(conv)(data.x, data.edge_index, data.edge_attr)
    assert out[:, 0].tolist() == conv(image).flatten().tolist()
    assert out[1 * 3 + 0, 0] == 1.0


def test_grid_conv_on_irregular_directed_graph_is_analytic():
    # node 0 receives from node 1 (direction (1, 0)) and node 2 (direction (0, -1))
    grid_conv = GridConv(1, 1, bias=False)
    with torch.no_grad():
        grid_conv.weight.copy_(torch.arange(9.0).view(1, 1, 3, 3))  # tap (dy+1)*3 + (dx+1)
    x = torch.tensor([[1.0], [10.0], [100.0]])
    edge_index = torch.tensor([[1, 2], [0, 0]])
    edge_attr = torch.tensor([[1.0, 0.0], [0.0, -1.0]])  # float directions are accepted
    out = grid_conv(x, edge_index, edge_attr)
    # centre tap 4 on every node; tap 5 = (dx, dy) = (1, 0); tap 1 = (0, -1)
    assert out[:, 0].tolist() == [4 * 1 + 5 * 10 + 1 * 100, 4 * 10, 4 * 100]


def test_grid_conv_repr_and_parameters():
    grid_conv = GridConv(16, 32)
    assert str(grid_conv) == "GridConv(16, 32, kernel_size=3)"
    assert grid_conv.weight.shape == (32, 16, 3, 3)
    assert GridConv(2, 3, bias=False).bias is None


def test_grid_conv_rejects_missing_or_bad_directions():
    grid_conv = GridConv(2, 3)
    x = torch.randn(4, 2)
    graph = grid_graph(2, 2)
    with pytest.raises(ValueError, match=r"expected edge_attr with 2 columns \(dx, dy\).*got None"):
        grid_conv(x, graph.edge_index)
    with pytest.raises(ValueError, match=r"2 columns \(dx, dy\), got shape \(12,\)"):
        grid_conv(x, graph.edge_index, graph.edge_attr[:, 0])
    with pytest.raises(ValueError, match="directions with \\|dx\\|, \\|dy\\| <= 1, got an edge"):
        grid_conv(x, graph.edge_index, graph.edge_attr * 2)
    with pytest.raises(ValueError, match="integer edge directions"):
        grid_conv(x, graph.edge_index, graph.edge_attr * 0.5)
    with pytest.raises(ValueError, match="12 edges but 11 rows"):
        grid_conv(x, graph.edge_index, graph.edge_attr[:11])
    with pytest.raises(ValueError, match="either edge_index and edge_attr .* or grid_size"):
        grid_conv(x, graph.edge_index, graph.edge_attr, grid_size=(2, 2))
    with pytest.raises(ValueError, match="expected edge_index and edge_attr, or grid_size"):
        grid_conv(x)
    with pytest.raises(ValueError, match="got 4 nodes, which does not match grid_size 3 x 3 = 9"):
        grid_conv(x, grid_size=(3, 3))
    with pytest.raises(ValueError, match="odd kernel_size"):
        GridConv(2, 3, kernel_size=4)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(1, 2, 3, stride=2, padding=1),
        nn.Conv2d(1, 2, 3, padding=0),
        nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(2, 2, 3, padding=1, groups=2),
    ],
)
def test_from_conv2d_rejects_non_grid_convolutions(conv):
    with pytest.raises(ValueError, match="from_conv2d needs an odd square Conv2d"):
        GridConv.from_conv2d(conv)
    with pytest.raises(TypeError, match="expected an nn.Conv2d, got Linear"):
        GridConv.from_conv2d(nn.Linear(2, 2))


def test_grid_gcn_norm_has_smaller_factors_inside():
    inv_sqrt_degree = grid_gcn_norm(4, 5).view(4, 5)
    assert inv_sqrt_degree[1, 1] == pytest.approx(1 / 3)  # 8 neighbours + self
    assert inv_sqrt_degree[0, 2] == pytest.approx(1 / math.sqrt(6))  # border: 5 + self
    assert inv_sqrt_degree[3, 4] == pytest.approx(1 / 2)  # corner: 3 + self
    assert grid_gcn_norm(3, 3, connectivity=4).view(3, 3)[1, 1] == pytest.approx(1 / math.sqrt(5))


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("out_channels", [5, 3])  # stencil after / before the linear map
def test_grid_gcn_conv_equals_pyg_gcn_conv_on_block_diagonal_batch(
    images, connectivity, out_channels
):
    torch.manual_seed(0)
    reference = PyGGCNConv(4, out_channels)
    nn.init.normal_(reference.bias)  # a non-zero bias, so it is checked too
    batch = Batch.from_data_list([image_to_graph(im, connectivity) for im in images])
    expected = reference(batch.x, batch.edge_index).view(3, 42, out_channels)
    grid_gcn = GridGCNConv.from_gcn_conv(reference, connectivity=connectivity)
    torch.testing.assert_close(grid_gcn(images_to_nodes(images), grid_size=(6, 7)), expected)
    torch.testing.assert_close(grid_gcn(images_to_nodes(images)[2], grid_size=(6, 7)), expected[2])


def test_grid_gcn_conv_is_1x1_conv_then_normalised_3x3_stencil(images):
    grid_gcn = GridGCNConv(4, 5, bias=False)
    inv_sqrt_degree = grid_gcn_norm(6, 7).view(1, 1, 6, 7)
    linear = F.conv2d(images, grid_gcn.lin.weight.view(5, 4, 1, 1))  # the 1x1 convolution
    ones_stencil = torch.ones(5, 1, 3, 3)
    expected = inv_sqrt_degree * F.conv2d(
        inv_sqrt_degree * linear, ones_stencil, padding=1, groups=5
    )
    out = grid_gcn(images_to_nodes(images), grid_size=(6, 7))
    torch.testing.assert_close(nodes_to_images(out, 6, 7), expected)
    # the state dict is PyG's, so weights move between the two either way
    assert set(GridGCNConv(4, 5).state_dict()) == set(PyGGCNConv(4, 5).state_dict())
    assert str(grid_gcn) == "GridGCNConv(4, 5)"


def test_grid_gcn_conv_rejects_bad_input():
    with pytest.raises(ValueError, match="connectivity 4 or 8, got 24"):
        GridGCNConv(2, 3, connectivity=24)
    with pytest.raises(ValueError, match="got 5 nodes, which does not match grid_size 2 x 2"):
        GridGCNConv(2, 3)(torch.randn(5, 2), grid_size=(2, 2))
    with pytest.raises(TypeError, match="expected a GCNConv"):
        GridGCNConv.from_gcn_conv(nn.Linear(2, 2))


@pytest.mark.parametrize(
    ("grid_pool", "torch_pool"),
    [
        (GridMaxPool(2), nn.MaxPool2d(2)),
        (GridAvgPool(2), nn.AvgPool2d(2)),
        (GridMaxPool(3, stride=1), nn.MaxPool2d(3, stride=1)),
    ],
)
def test_grid_pooling_equals_torch_pooling(images, grid_pool, torch_pool):
    pooled, grid_size = grid_pool(images_to_nodes(images), grid_size=(6, 7))
    expected = torch_pool(images)
    assert grid_size == tuple(expected.shape[2:])
    torch.testing.assert_close(nodes_to_images(pooled, *grid_size), expected)
    single, _ = grid_pool(images_to_nodes(images)[0], grid_size=(6, 7))
    torch.testing.assert_close(single, pooled[0])


def test_grid_pooling_repr_and_errors():
    assert str(GridMaxPool(2)) == "GridMaxPool(kernel_size=2, stride=2)"
    assert str(GridAvgPool(2)) == "GridAvgPool(kernel_size=2, stride=2)"
    with pytest.raises(ValueError, match="GridMaxPool got 10 nodes"):
        GridMaxPool(2)(torch.zeros(10, 3), grid_size=(3, 3))
    with pytest.raises(ValueError, match=r"shape \(N, C\) or \(B, N, C\)"):
        GridAvgPool(2)(torch.zeros(1, 1, 9, 3), grid_size=(3, 3))


@pytest.mark.parametrize("layer", [GridConv(4, 5), BSplineConv(4, 5, kernel_size=5)])
def test_one_static_grid_fast_path_for_conv2d_layout_kernels(images, layer):
    # GridConv and BSplineConv keep a Conv2d-layout weight and share grid_conv2d as fast path
    nodes = images_to_nodes(images)
    expected = F.conv2d(images, layer.weight, layer.bias, padding=layer.kernel_size // 2)
    out = grid_conv2d(layer, nodes, (6, 7))
    torch.testing.assert_close(nodes_to_images(out, 6, 7), expected)
    torch.testing.assert_close(layer(nodes, grid_size=(6, 7)), out)
    torch.testing.assert_close(layer(nodes[0], grid_size=(6, 7)), out[0])
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name} takes either edge_index .* not both"):
        layer(nodes, torch.zeros(2, 0, dtype=torch.long), grid_size=(6, 7))
    with pytest.raises(ValueError, match=rf"{name} got 40 nodes, which does not match"):
        layer(nodes[:, :40], grid_size=(6, 7))
