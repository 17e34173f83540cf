"""Tests for gconv.data.grid: grid graphs, image <-> graph conversion, static-grid batching."""

import pytest
import torch
from torch_geometric.utils import grid as pyg_grid

from gconv.data.grid import (
    graph_to_image,
    grid_graph,
    grid_offsets,
    image_to_graph,
    images_to_nodes,
    nodes_to_images,
)


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def test_grid_graph_8_with_self_loops_matches_pyg_grid():
    graph = grid_graph(3, 4, connectivity=8, self_loops=True)
    pyg_edge_index, _ = pyg_grid(3, 4)
    assert edge_set(graph.edge_index) == edge_set(pyg_edge_index)
    assert graph.edge_index.shape[1] == pyg_edge_index.shape[1]


@pytest.mark.parametrize(
    ("connectivity", "interior", "edge", "corner"), [(4, 4, 3, 2), (8, 8, 5, 3), (24, 24, 14, 8)]
)
def test_grid_graph_in_degrees(connectivity, interior, edge, corner):
    graph = grid_graph(5, 5, connectivity=connectivity)
    in_degree = torch.bincount(graph.edge_index[1], minlength=25).view(5, 5)
    assert in_degree[2, 2] == interior
    assert in_degree[0, 2] == edge
    assert in_degree[0, 0] == corner == in_degree[4, 4]
    assert graph.edge_index.shape[1] == graph.edge_attr.shape[0] == int(in_degree.sum())


def test_grid_graph_directions_are_source_minus_target_positions():
    graph = grid_graph(4, 5, connectivity=8, self_loops=True)
    source, target = graph.edge_index
    assert torch.equal(graph.pos[source] - graph.pos[target], graph.edge_attr.float())
    # row-major: node r * W + c sits at (x, y) = (c, r), y pointing down
    assert graph.pos[7].tolist() == [2.0, 1.0]
    assert graph.edge_attr.dtype == torch.long
    assert graph.edge_attr.abs().max() == 1
    # sorted by target, as a CSR matrix
    assert torch.all(target[1:] >= target[:-1])


def test_grid_graph_is_cached_and_moves_to_device():
    assert grid_graph(6, 6) is grid_graph(6, 6)
    moved = grid_graph(6, 6, device="cpu")
    assert moved.edge_index.device.type == "cpu" and moved.num_nodes == 36


@pytest.mark.parametrize("connectivity", [0, 5, 6, 15, 99])
def test_grid_offsets_rejects_unknown_connectivity(connectivity):
    with pytest.raises(ValueError, match="connectivity must be 4 or"):
        grid_offsets(connectivity)


def test_grid_graph_rejects_bad_size():
    with pytest.raises(ValueError, match="two positive integers"):
        grid_graph(0, 3)


def test_image_to_graph_and_back_round_trip():
    image = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    data = image_to_graph(image, connectivity=4, y=7)
    assert data.x.shape == (12, 2) and data.pos.shape == (12, 2)
    assert data.edge_attr.shape == (data.edge_index.shape[1], 2)
    assert data.height == 3 and data.width == 4 and data.y.tolist() == [7]
    # node r * W + c holds pixel (r, c)
    assert data.x[1 * 4 + 2].tolist() == image[:, 1, 2].tolist()
    assert torch.equal(graph_to_image(data.x, 3, 4), image)
    assert torch.equal(graph_to_image(data.x[:, 0], 3, 4), image[0])


def test_image_to_graph_accepts_2d_image():
    image = torch.rand(5, 6)
    data = image_to_graph(image)
    assert data.x.shape == (30, 1)
    assert torch.equal(graph_to_image(data.x[:, 0], 5, 6), image)


@pytest.mark.parametrize("shape", [(5,), (1, 1, 5, 5)])
def test_image_to_graph_rejects_wrong_rank(shape):
    with pytest.raises(ValueError, match=r"image must have shape \(C, H, W\) or \(H, W\), got"):
        image_to_graph(torch.zeros(shape))


def test_graph_to_image_rejects_wrong_node_count():
    with pytest.raises(ValueError, match="node count 10 does not match the grid 3 x 4 = 12"):
        graph_to_image(torch.zeros(10, 2), 3, 4)
    with pytest.raises(ValueError, match="node count 10 does not match"):
        nodes_to_images(torch.zeros(2, 10, 1), 3, 4)


def test_static_batch_round_trip_and_matches_per_image_graphs():
    images = torch.rand(3, 2, 4, 5)
    nodes = images_to_nodes(images)
    assert nodes.shape == (3, 20, 2)
    for image, image_nodes in zip(images, nodes, strict=True):
        assert torch.equal(image_to_graph(image).x, image_nodes)
    back = nodes_to_images(nodes, 4, 5)
    assert torch.equal(back, images)
    assert back.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(graph_to_image(nodes, 4, 5), images)


def test_images_to_nodes_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"images must have shape \(B, C, H, W\), got \(2, 3\)"):
        images_to_nodes(torch.zeros(2, 3))
