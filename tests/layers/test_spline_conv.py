"""Tests for gconv.layers.spline: BSplineConv == Conv2d on the grid, == a per-edge reference
kernel on irregular graphs, bilinear in the offset."""

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from gconv.data.grid import image_to_graph
from gconv.grid_layout import images_to_nodes
from gconv.layers import BSplineConv, bspline_basis


def reference_kernel(conv: BSplineConv, offset: torch.Tensor) -> torch.Tensor:
    """Theta(d) = sum_ab B_a(dy / s + r) B_b(dx / s + r) Theta_ab, written out with hat functions."""
    k, r, s = conv.kernel_size, conv.kernel_size // 2, conv.spacing
    u = (offset / s + r).clamp(0, k - 1)
    kernel = torch.zeros(conv.out_channels, conv.in_channels)
    for a in range(k):
        for b in range(k):
            weight = max(0.0, 1 - abs(u[1].item() - a)) * max(0.0, 1 - abs(u[0].item() - b))
            kernel += weight * conv.weight[:, :, a, b]
    return kernel  # (out, in)


@pytest.mark.parametrize(("kernel_size", "connectivity"), [(3, 8), (5, 24)])
def test_bspline_conv_on_the_grid_is_conv2d(kernel_size, connectivity):
    torch.manual_seed(0)
    images = torch.randn(3, 2, 6, 7)
    conv = BSplineConv(2, 4, kernel_size)
    expected = F.conv2d(images, conv.weight, conv.bias, padding=kernel_size // 2)
    expected_nodes = images_to_nodes(expected)
    torch.testing.assert_close(conv(images_to_nodes(images), grid_size=(6, 7)), expected_nodes)
    batch = Batch.from_data_list([image_to_graph(im, connectivity) for im in images])
    out = conv(batch.x, batch.edge_index, batch.edge_attr.float())
    torch.testing.assert_close(out.view(3, 42, 4), expected_nodes, rtol=1e-4, atol=1e-5)
    # a grid of pitch 2.5 with spacing 2.5 is the same convolution
    scaled = BSplineConv(2, 4, kernel_size, spacing=2.5)
    scaled.load_state_dict(conv.state_dict())
    out = scaled(batch.x, batch.edge_index, 2.5 * batch.edge_attr.float())
    torch.testing.assert_close(out.view(3, 42, 4), expected_nodes, rtol=1e-4, atol=1e-5)


def test_bspline_conv_matches_per_edge_reference_on_an_irregular_graph():
    torch.manual_seed(1)
    conv = BSplineConv(3, 2, kernel_size=3, spacing=1.5)
    pos = torch.rand(7, 2) * 6
    edge_index = torch.tensor([[1, 2, 3, 0, 4, 6, 5, 5, 3], [0, 0, 0, 1, 2, 2, 4, 6, 6]])
    x = torch.randn(7, 3)
    edge_attr = pos[edge_index[0]] - pos[edge_index[1]]
    expected = x @ conv.weight[:, :, 1, 1].t() + conv.bias
    for (j, i), offset in zip(edge_index.t().tolist(), edge_attr, strict=True):
        expected[i] += reference_kernel(conv, offset) @ x[j]
    torch.testing.assert_close(conv(x, edge_index, edge_attr), expected, rtol=1e-4, atol=1e-5)
    # self loops are the centre tap already: an added self-loop edge changes nothing
    with_loop = torch.cat([edge_index, torch.tensor([[3], [3]])], dim=1)
    loop_attr = torch.cat([edge_attr, torch.zeros(1, 2)])
    torch.testing.assert_close(conv(x, with_loop, loop_attr), expected, rtol=1e-4, atol=1e-5)


def test_bspline_basis_is_bilinear_and_partitions_unity():
    offsets = torch.tensor([[0.5, 0.0], [1.0, -1.0], [0.25, 0.75], [7.0, -9.0]])
    taps, weights = bspline_basis(offsets, kernel_size=3, spacing=1.0)
    torch.testing.assert_close(weights.sum(1), torch.ones(4))
    dense = torch.zeros(4, 9).scatter_add_(1, taps, weights)
    # (0.5, 0): halfway between the centre (tap 4) and its right neighbour (tap 5)
    torch.testing.assert_close(dense[0], torch.tensor([0, 0, 0, 0, 0.5, 0.5, 0, 0, 0.0]))
    assert dense[1].tolist() == [0, 0, 1.0, 0, 0, 0, 0, 0, 0]  # (dx, dy) = (1, -1): top right
    # (0.25, 0.75): four taps, bilinear weights
    expected = torch.zeros(9)
    expected[[4, 5, 7, 8]] = torch.tensor([0.75 * 0.25, 0.25 * 0.25, 0.75 * 0.75, 0.25 * 0.75])
    torch.testing.assert_close(dense[2], expected)
    assert dense[3].tolist() == [0, 0, 1.0, 0, 0, 0, 0, 0, 0]  # (7, -9) clamps to the top right


def test_bspline_conv_mean_aggregation_divides_by_neighbours_plus_self():
    torch.manual_seed(2)
    conv = BSplineConv(1, 1, kernel_size=3, bias=False, aggr="mean")
    x = torch.tensor([[1.0], [2.0], [3.0]])
    edge_index = torch.tensor([[1, 2], [0, 0]])
    edge_attr = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = conv.weight[0, 0]
    expected = (w[1, 1] * 1.0 + w[1, 2] * 2.0 + w[2, 1] * 3.0) / 3
    assert conv(x, edge_index, edge_attr)[0, 0].item() == pytest.approx(expected.item(), rel=1e-5)


def test_bspline_conv_repr_and_errors():
    conv = BSplineConv(2, 3, kernel_size=5, spacing=2.0)
    assert str(conv) == "BSplineConv(2, 3, kernel_size=5, spacing=2)"
    assert sum(p.numel() for p in conv.parameters()) == 3 * 2 * 25 + 3
    with pytest.raises(ValueError, match="odd kernel_size"):
        BSplineConv(2, 3, kernel_size=4)
    with pytest.raises(ValueError, match="spacing > 0"):
        BSplineConv(2, 3, spacing=0)
    with pytest.raises(ValueError, match=r"edge_attr with 2 columns, the relative positions"):
        conv(torch.randn(4, 2), torch.tensor([[0], [1]]), torch.randn(1))
    with pytest.raises(ValueError, match="got 1 edges but 2 rows of edge_attr"):
        conv(torch.randn(4, 2), torch.tensor([[0], [1]]), torch.randn(2, 2))
    with pytest.raises(ValueError, match="not both"):
        conv(torch.randn(4, 2), torch.tensor([[0], [1]]), grid_size=(2, 2))
    with pytest.raises(ValueError, match="needs aggr='add'"):
        BSplineConv(2, 3, aggr="mean")(torch.randn(4, 2), grid_size=(2, 2))
