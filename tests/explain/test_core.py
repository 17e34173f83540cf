"""The core every explainer shares: a call leaves the model as it found it, explanations split per
graph with per-graph normalisation, maps are min-max normalised, grid models give the CNN's maps
at every image size, and bad models and inputs raise errors that say what was expected."""

import warnings

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explanation

from gconv.explain import (
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    Saliency,
    ScoreCAM,
)
from gconv.explain.core import (
    graph_batch,
    graph_explanations,
    normalize_maps,
    normalize_per_graph,
    with_features,
)
from gconv.layers import MaxReadout


def _no_hooks(model):
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


@pytest.mark.parametrize("method", [CAM, GradCAM, GradCAMPlusPlus, ScoreCAM])
def test_one_shot_call_leaves_the_model_as_found(gap_cnn, images, method):
    gap_cnn.train()
    gap_cnn.features[0].eval()  # a user-frozen submodule keeps its own flag
    modes = {name: m.training for name, m in gap_cnn.named_modules()}
    gap_cnn.head[-1].weight.grad = torch.full_like(gap_cnn.head[-1].weight, 7.0)
    grads = {
        name: None if p.grad is None else p.grad.clone() for name, p in gap_cnn.named_parameters()
    }
    state = {k: v.clone() for k, v in gap_cnn.state_dict().items()}
    maps = method(gap_cnn)(images)  # no `with`, no release()
    assert maps.shape == (3, 8, 8)
    assert {name: m.training for name, m in gap_cnn.named_modules()} == modes
    assert _no_hooks(gap_cnn)
    for name, p in gap_cnn.named_parameters():
        assert (p.grad is None) == (grads[name] is None), name
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name])
    for key, value in gap_cnn.state_dict().items():  # BatchNorm statistics untouched too
        torch.testing.assert_close(value, state[key])
    with method(gap_cnn) as cam:  # the context manager form holds no hooks between calls
        cam(images)
        assert _no_hooks(gap_cnn)
    assert gap_cnn.training and not gap_cnn.features[0].training


@pytest.mark.parametrize("method", [CAM, GradCAM, GradCAMPlusPlus, ScoreCAM, Saliency])
def test_gconv_gcn_one_shot_call_leaves_the_model_as_found(method, graphs):
    from gconv.models import GNN

    torch.manual_seed(0)
    model = GNN(
        in_channels=3, out_channels=2, conv="gcn", hidden_channels=8, num_layers=2, dropout=0.2
    )
    model.train()
    model.norms[0].eval()
    modes = {name: m.training for name, m in model.named_modules()}
    model.head.weight.grad = torch.ones_like(model.head.weight)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    data = graphs
    first = method(model)(data)
    second = method(model)(data)  # eval mode inside: dropout off, the same answer twice
    torch.testing.assert_close(first.node_mask, second.node_mask)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(getattr(m, "_edge_mask", None) is None for m in model.modules())
    torch.testing.assert_close(model.head.weight.grad, torch.ones_like(model.head.weight))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "head.weight")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_explanations_split_per_graph_with_per_graph_normalisation(gcn, graphs):
    model, data = gcn, graphs
    explanation = GradCAM(model)(data, target=2)
    graphs = explanation.to_data_list()
    assert len(graphs) == 2 and all(isinstance(g, Explanation) for g in graphs)
    for graph, original in zip(graphs, data.to_data_list(), strict=True):
        torch.testing.assert_close(graph.x, original.x)
        assert torch.equal(graph.edge_index, original.edge_index)
        assert graph.node_mask.shape == (original.num_nodes, 1)
        assert graph.node_mask.min() == 0 and graph.node_mask.max() <= 1
        assert graph.target.tolist() == [2] and graph.prediction.shape == (1, 4)
        assert graph.get_explanation_subgraph().num_nodes <= original.num_nodes
    # the per-graph masks are the batch's raw maps, ReLU-ed and min-max scaled graph by graph
    raw = GradCAM(model)(data, target=2, raw=True).node_mask[:, 0].clamp_min(0)
    reached_one = 0
    for g, graph in enumerate(graphs):
        values = raw[data.batch == g]
        span = values.max() - values.min()
        expected = (values - values.min()) / span if span > 0 else torch.zeros_like(values)
        torch.testing.assert_close(graph.node_mask[:, 0], expected)
        reached_one += int(span > 0 and graph.node_mask.max() == 1)
    assert reached_one >= 1
    torch.testing.assert_close(explanation[1].node_mask, graphs[1].node_mask)


def test_graph_explanations_carry_masks_targets_and_per_graph_values(graphs):
    node_mask = torch.arange(7.0)[:, None]
    edge_mask = torch.arange(10.0)
    prediction = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    result = graph_explanations(
        graphs, node_mask, torch.tensor([1, 0]), prediction, edge_mask, delta=torch.ones(2)
    )
    first, second = result.to_data_list()
    torch.testing.assert_close(first.node_mask, node_mask[:4])
    torch.testing.assert_close(second.edge_mask, edge_mask[6:])
    assert second.target.tolist() == [0]
    torch.testing.assert_close(second.prediction, prediction[1:])
    assert first.delta.tolist() == [1.0]
    single = graph_explanations(
        graphs.to_data_list()[1], node_mask[4:], torch.tensor([3]), prediction[1:]
    )
    assert single.num_graphs == 1 and single[0].target.tolist() == [3]


def test_graph_batch_and_with_features(graphs, images):
    assert graph_batch(graphs).tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert graph_batch(graphs.to_data_list()[0]).tolist() == [0, 0, 0, 0]
    zeros = torch.zeros_like(graphs.x)
    replaced = with_features(graphs, zeros)
    assert replaced.x is zeros and graphs.x is not zeros  # a shallow copy: the caller's data kept
    assert replaced.edge_index is graphs.edge_index
    assert with_features(images, zeros) is zeros


def test_normalize_maps_and_per_graph():
    maps = torch.stack([torch.tensor([[1.0, 3.0], [2.0, 5.0]]), torch.full((2, 2), 4.0)])
    expected = torch.stack([torch.tensor([[0.0, 0.5], [0.25, 1.0]]), torch.zeros(2, 2)])
    torch.testing.assert_close(normalize_maps(maps), expected)  # a constant map becomes 0
    tiny = torch.tensor([[[0.0, 1e-30]]])
    assert normalize_maps(tiny).max() == 1  # no fixed epsilon: tiny maps still reach 1
    values = torch.tensor([1.0, 3.0, 2.0, 7.0, 7.0])
    batch = torch.tensor([0, 0, 0, 1, 1])
    torch.testing.assert_close(
        normalize_per_graph(values, batch, 2), torch.tensor([0.0, 1.0, 0.5, 0.0, 0.0])
    )


# ---------------------------------------------------------------------------------------------
# grids: the same core as graphs, the CNN's maps at every image size
# ---------------------------------------------------------------------------------------------
def test_grid_graph_cam_equals_cnn_cam(make_grid_model):
    torch.manual_seed(0)
    grid_model = make_grid_model()
    cnn = nn.Sequential(
        grid_model.conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), grid_model.head
    )
    images = torch.rand(2, 1, 6, 6)
    torch.testing.assert_close(cnn(images), grid_model(images))
    for method in (CAM, GradCAM, GradCAMPlusPlus):
        torch.testing.assert_close(
            method(grid_model)(images, [0, 2], raw=True), method(cnn)(images, [0, 2], raw=True)
        )
        torch.testing.assert_close(method(grid_model)(images, [0, 2]), method(cnn)(images, [0, 2]))


def _cnn_and_grid_gnn(seed=0):
    from gconv.models import CNN, cnn_to_grid_gnn

    torch.manual_seed(seed)
    cnn = CNN(in_shape=(1, 12, 12), num_classes=4, channels=(4, 6), head="gap", batch_norm=True)
    for module in cnn.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.running_mean, -0.5, 0.5)
            nn.init.uniform_(module.running_var, 0.5, 1.5)
    cnn.eval()
    return cnn, cnn_to_grid_gnn(cnn).eval()


def test_cnn_to_grid_gnn_cam_equals_cnn_cam():
    cnn, grid_model = _cnn_and_grid_gnn()
    images = torch.rand(3, 1, 12, 12)
    target = torch.tensor([0, 3, 1])
    for method in (CAM, GradCAM, GradCAMPlusPlus, ScoreCAM):
        grid_raw = method(grid_model)(images, target=target, raw=True)
        assert grid_raw.shape == (3, 3, 3)  # two 2x2 pools
        torch.testing.assert_close(grid_raw, method(cnn)(images, target=target, raw=True))
        torch.testing.assert_close(
            method(grid_model)(images, target=target), method(cnn)(images, target=target)
        )


def _check_sizes(sizes):
    # two 2x2 pools: odd sizes drop rows and columns; a node count alone cannot tell the grid
    cnn, grid_model = _cnn_and_grid_gnn(1)
    cnn_cam, grid_cam = GradCAM(cnn), GradCAM(grid_model)
    for height, width in sizes:
        images = torch.rand(1, 1, height, width)
        grid_maps = grid_cam(images, target=2, raw=True)
        assert grid_maps.shape == (1, height // 4, width // 4), (height, width)
        torch.testing.assert_close(grid_maps, cnn_cam(images, target=2, raw=True))
        assert grid_cam(images).shape == (1, height, width)


def test_image_sizes_4_to_29_explain():
    # every height and every width from 4 to 29 once (the full 26 x 26 sweep is marked slow)
    _check_sizes([(h, 33 - h) for h in range(4, 30)])


@pytest.mark.slow
def test_every_image_size_from_4_to_29_explains():
    _check_sizes([(h, w) for h in range(4, 30) for w in range(4, 30)])


# ---------------------------------------------------------------------------------------------
# bad models and inputs
# ---------------------------------------------------------------------------------------------
def test_bad_models_and_inputs(gcn, graphs, make_gcn):
    model, data = gcn, graphs
    mlp_head = make_gcn(head=nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 4)))
    with pytest.raises(ValueError, match="exactly one nn.Linear"):
        CAM(mlp_head)(data)
    with pytest.raises(ValueError, match="global mean/sum readout"):
        CAM(make_gcn(readout=MaxReadout()))(data)
    with pytest.raises(ValueError, match="class index out of range"):
        CAM(model)(data, target=4)
    with pytest.raises(TypeError, match="class logit"):
        CAM(model)(data, target=lambda out: out[:, 0])
    with pytest.raises(ValueError, match=r"images of shape \[B, C, H, W\] or a PyG Data/Batch"):
        Saliency(model)(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="PyG Data/Batch, got list"):
        GradCAM(model)([data])
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        IntegratedGradients(model, n_steps=0)
    with pytest.raises(ValueError, match="PyG Data/Batch with node features 'x'"):
        GradCAM(model)(
            Batch.from_data_list([Data(edge_index=torch.zeros(2, 0).long(), num_nodes=2)])
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GradCAM(model)(data)  # no warnings on the happy path
