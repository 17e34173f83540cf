"""Tests for gconv.models.geometric: SplineGNN, one model for pixel grids and superpixel graphs."""

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from gconv.data.grid import image_to_graph
from gconv.models import CNN
from gconv.models.geometric import SplineGNN


def test_spline_gnn_grid_fast_path_equals_message_passing_and_has_the_cnn_shape():
    torch.manual_seed(0)
    model = SplineGNN(in_shape=(1, 12, 12), channels=(4, 6), head_hidden=(8,), cells=3).eval()
    images = torch.rand(3, 1, 12, 12)
    graphs = Batch.from_data_list([image_to_graph(image) for image in images])
    torch.testing.assert_close(model(images), model(graphs), rtol=1e-4, atol=1e-5)
    # on the grid it is the CNN's function class: same parameter count as the flatten-head CNN
    cnn = CNN(in_shape=(1, 12, 12), channels=(4, 6), head_hidden=(8,))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in cnn.parameters())
    # images the fast path does not fit (other size) go through message passing, same function
    other = SplineGNN(in_shape=(1, 10, 10), channels=(4,), head_hidden=(), cells=2).eval()
    small = torch.rand(2, 1, 10, 10)
    graphs = Batch.from_data_list([image_to_graph(image) for image in small])
    torch.testing.assert_close(other(small), other(graphs))


def test_spline_gnn_runs_on_irregular_graphs_of_different_sizes():
    torch.manual_seed(0)
    model = SplineGNN(channels=(4, 6), kernel_size=5, spacing=2.0, cells=4).eval()
    graphs = []
    for num_nodes in (9, 30, 1):
        pos = torch.rand(num_nodes, 2) * 27
        edge_index = torch.combinations(torch.arange(num_nodes)).t()
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        graphs.append(Data(x=torch.rand(num_nodes, 1), pos=pos, edge_index=edge_index))
    batch = Batch.from_data_list(graphs)
    out = model(batch)
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    # each graph's logits do not depend on the others in the batch
    torch.testing.assert_close(
        out[1:2], model(Batch.from_data_list(graphs[1:2])), atol=1e-5, rtol=1e-4
    )


def make_bars(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images with a horizontal (label 0) or vertical (label 1) bar at a random place."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (count,), generator=generator)
    offsets = torch.randint(0, 8, (count, 2), generator=generator)
    images = torch.zeros(count, 1, 8, 8)
    for image, label, (row, col) in zip(images, labels, offsets.tolist(), strict=True):
        if label == 0:
            image[0, row, max(col - 2, 0) : col + 2] = 1.0
        else:
            image[0, max(row - 2, 0) : row + 2, col] = 1.0
    return images, labels


def test_spline_gnn_learns_orientation_by_message_passing():
    torch.manual_seed(0)
    train_images, train_labels = make_bars(128, seed=0)
    test_images, test_labels = make_bars(96, seed=1)
    train = Batch.from_data_list([image_to_graph(image) for image in train_images])
    test = Batch.from_data_list([image_to_graph(image) for image in test_images])
    model = SplineGNN(
        in_shape=(1, 8, 8), num_classes=2, channels=(8,), head_hidden=(), cells=1, pool=False
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(25):
        loss = nn.functional.cross_entropy(model(train), train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (model.eval()(test).argmax(1) == test_labels).float().mean()
    assert accuracy > 0.9


def test_spline_gnn_rejects_bad_input():
    model = SplineGNN()
    with pytest.raises(ValueError, match=r"expected images \[B, 1, H, W\] or a PyG batch"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="no pos"):
        model(Data(x=torch.rand(3, 1), edge_index=torch.zeros(2, 0, dtype=torch.long)))
    with pytest.raises(ValueError, match="cells >= 1"):
        SplineGNN(cells=0)
    assert "spacing=1, cells=7" in str(model)
