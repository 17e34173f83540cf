"""Tests for gconv.models.grid: GridGNN (the CNN on the pixel grid), GridNet's input checks, and
GridGCN (against its naive-PyG reference, benchmarks/pyg_grid_gcn.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch

from gconv.data.grid import image_to_graph
from gconv.layers import GridConv, MeanMaxReadout
from gconv.models.cnn import CNN
from gconv.models.grid import GridGCN, GridGNN, NodeBatchNorm

REFERENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "pyg_grid_gcn.py"


@pytest.fixture(scope="module")
def PyGGridGCN():  # noqa: N802 - the class under its own name
    """The naive-PyG reference, loaded from the benchmarks folder (not part of the package)."""
    spec = importlib.util.spec_from_file_location("benchmarks.pyg_grid_gcn", REFERENCE)
    module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module.PyGGridGCN


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_grid_gnn_mirrors_cnn_and_loads_cnn_weights():
    cnn = CNN(
        in_shape=(1, 12, 12), num_classes=3, channels=(4, 8), head_hidden=(16,), batch_norm=True
    )
    grid_model = GridGNN(
        in_shape=(1, 12, 12), num_classes=3, channels=(4, 8), head_hidden=(16,), batch_norm=True
    )
    assert parameter_count(grid_model) == parameter_count(cnn)
    assert isinstance(grid_model.features[0].conv, GridConv)
    assert isinstance(grid_model.features[0].bn, NodeBatchNorm)
    assert grid_model.edge_index.shape[0] == 2 and grid_model.edge_attr.shape[1] == 2
    assert "edge_index" not in grid_model.state_dict()  # the grid is rebuilt, not saved
    # the block parameters carry the CNN's names and shapes, so its feature weights load as they are
    features = {k: v for k, v in cnn.state_dict().items() if k.startswith("features.")}
    missing, unexpected = grid_model.load_state_dict(features, strict=False)
    assert not unexpected and all(not k.startswith("features.") for k in missing)


def test_grid_gnn_gap_head_takes_other_image_sizes():
    model = GridGNN(in_shape=(1, 8, 8), channels=(4,), head="gap").eval()
    assert model(torch.rand(2, 1, 10, 6)).shape == (2, 10)
    flatten_model = GridGNN(in_shape=(1, 8, 8), channels=(4,))
    with pytest.raises(ValueError, match="flatten readout expected 8 x 8 images, got 10 x 6"):
        flatten_model(torch.rand(2, 1, 10, 6))


def test_grid_models_reject_wrong_input():
    model = GridGNN(in_shape=(1, 8, 8), channels=(4,))
    with pytest.raises(ValueError, match=r"expected images \[B, 1, H, W\] or node features"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"node features \[B, 64, 1\], got \[2, 60, 1\]"):
        model(torch.rand(2, 60, 1))
    with pytest.raises(ValueError, match="head='mlp'; expected one of"):
        GridGNN(head="mlp")
    with pytest.raises(ValueError, match="pool_after to hold layer numbers in 1..2"):
        GridGCN(num_layers=2, pool_after=(3,))


@pytest.mark.parametrize("norm", ["layer", "batch", None])
def test_grid_gcn_equals_naive_pyg_pipeline(norm, PyGGridGCN):  # noqa: N803
    torch.manual_seed(0)
    model = GridGCN(in_shape=(1, 8, 8), num_classes=4, hidden_channels=8, num_layers=3, norm=norm)
    reference = PyGGridGCN(model)
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    batch = Batch.from_data_list([image_to_graph(image) for image in images])
    for training in (True, False):  # batch statistics, then running statistics
        model.train(training)
        torch.testing.assert_close(model(images), reference(batch), rtol=1e-4, atol=1e-5)
    assert isinstance(model.readout, MeanMaxReadout) and isinstance(model.head, nn.Linear)
    assert model.head.in_features == 16
    assert parameter_count(reference) == parameter_count(model)  # shared, not copied


@pytest.mark.parametrize("pool_after", [(1, 2), (2,), ()])
def test_grid_gcn_gradients_equal_naive_pyg_pipeline(pool_after, PyGGridGCN):  # noqa: N803
    # the fused convolution + pooling has its own backward pass: the PyG twin (autograd through
    # GCNConv and max_pool, parameters shared) must get the same gradients
    torch.manual_seed(0)
    model = GridGCN(
        in_shape=(1, 8, 8), num_classes=4, hidden_channels=8, num_layers=3, pool_after=pool_after
    )
    reference = PyGGridGCN(model)
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    batch = Batch.from_data_list([image_to_graph(image) for image in images])
    target = torch.tensor([0, 1, 2, 3, 0])
    grads = []
    for net, inputs in ((model, images), (reference, batch)):
        loss = nn.functional.cross_entropy(net(inputs), target)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for fast, naive in zip(*grads, strict=True):
        torch.testing.assert_close(fast, naive, rtol=1e-4, atol=1e-6)


def test_isotropic_gcn_without_positions_cannot_see_orientation():
    # the grid, its GCN normalisation and max pooling are symmetric under a 90 degree rotation
    # (for square images), so an isotropic GCN gives a rotated image exactly the same logits
    torch.manual_seed(0)
    model = GridGCN(in_shape=(1, 8, 8), hidden_channels=8, num_layers=3, positions=False).eval()
    images = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(model(images), model(torch.rot90(images, 1, (2, 3))))
    assert not torch.allclose(model(images), model(images.roll(1, dims=2)), atol=1e-3)


def make_bars(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with one horizontal (label 0) or vertical (label 1) bar at a random place."""
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


def test_grid_gnn_learns_orientation_that_gcn_cannot_see():
    torch.manual_seed(0)
    train_images, train_labels = make_bars(256, seed=0)
    test_images, test_labels = make_bars(128, seed=1)
    model = GridGNN(in_shape=(1, 8, 8), num_classes=2, channels=(8,), head="gap", pool=None)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(train_images), train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (model(test_images).argmax(1) == test_labels).float().mean()
    assert accuracy > 0.9


def test_grid_gnn_is_the_converted_cnn_with_the_cnn_init():
    for config in (dict(), dict(residual=True, batch_norm=True, head="gap", init="xavier")):
        torch.manual_seed(3)
        cnn = CNN(in_shape=(1, 8, 8), num_classes=3, channels=(4, 8), head_hidden=(16,), **config)
        torch.manual_seed(3)
        grid_model = GridGNN(
            in_shape=(1, 8, 8), num_classes=3, channels=(4, 8), head_hidden=(16,), **config
        )
        images = torch.rand(4, 1, 8, 8)
        cnn.eval(), grid_model.eval()
        torch.testing.assert_close(grid_model(images), cnn(images), rtol=1e-4, atol=1e-5)
    assert "residual=True" in str(grid_model)
    with pytest.raises(ValueError, match="blocks >= 1"):
        GridGNN(blocks=0)


def test_grid_gcn_layer_norm_computes_the_same_in_train_and_eval_mode():
    torch.manual_seed(0)
    model = GridGCN(in_shape=(1, 8, 8), hidden_channels=8, num_layers=3)
    assert isinstance(model.norms[0], nn.LayerNorm)
    images = torch.rand(4, 1, 8, 8)
    train_logits = model.train()(images)
    torch.testing.assert_close(model.eval()(images), train_logits)
    with pytest.raises(ValueError, match="norm='group'; expected one of"):
        GridGCN(norm="group")
