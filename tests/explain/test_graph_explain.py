"""Node importance for graph models: graph CAM decomposes the logit, Grad-CAM at the readout is
graph CAM up to scale, saliency equals autograd, integrated gradients is complete, grid models
give the CNN's CAM, bad models get clear errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

from gconv.explain.cam import CAM
from gconv.explain.graph import (
    grad_cam,
    graph_cam,
    integrated_gradients,
    node_mask_to_image,
    saliency,
)
from gconv.layers import GCNConv, MaxReadout, MeanReadout, SumReadout


class TinyGCN(nn.Module):
    def __init__(self, readout=None, head=None, normalize=True):
        super().__init__()
        self.conv1 = GCNConv(3, 8, normalize=normalize, add_self_loops=normalize)
        self.conv2 = GCNConv(8, 5, normalize=normalize, add_self_loops=normalize)
        self.readout = readout if readout is not None else MeanReadout()
        self.head = head if head is not None else nn.Linear(5, 4)

    def forward(self, data):
        edge_weight = getattr(data, "edge_weight", None)
        h = F.relu(self.conv1(data.x, data.edge_index, edge_weight))
        h = F.relu(self.conv2(h, data.edge_index, edge_weight))
        return self.head(self.readout(h, data.batch, size=data.num_graphs))


def _batch():
    torch.manual_seed(0)
    graphs = [
        Data(
            x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        ),
        Data(x=torch.randn(3, 3), edge_index=torch.tensor([[0, 1, 0, 2], [1, 0, 2, 0]])),
    ]
    return Batch.from_data_list(graphs)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyGCN()


@pytest.mark.parametrize("readout_cls", [MeanReadout, SumReadout])
def test_graph_cam_decomposes_the_logit(readout_cls):
    torch.manual_seed(0)
    model, data = TinyGCN(readout=readout_cls()), _batch()
    explanation = graph_cam(model, data, target=[1, 3])
    assert isinstance(explanation, Explanation)
    assert explanation.node_mask.shape == (7, 1)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    if readout_cls is MeanReadout:
        per_graph = per_graph / torch.tensor([4.0, 3.0])
    logits = model(data)[[0, 1], [1, 3]]
    torch.testing.assert_close(per_graph + model.head.bias[[1, 3]], logits)
    assert explanation.target.tolist() == [1, 3]


def test_grad_cam_at_readout_is_graph_cam_over_graph_size(model):
    data = _batch()
    cam = graph_cam(model, data).node_mask
    grad = grad_cam(model, data).node_mask
    sizes = torch.tensor([4.0] * 4 + [3.0] * 3)[:, None]
    torch.testing.assert_close(grad, cam.clamp_min(0) / sizes)


def test_grad_cam_of_a_named_layer(model):
    data = _batch()
    explanation = grad_cam(model, data, target=0, layer="conv1")
    assert explanation.node_mask.shape == (7, 1) and (explanation.node_mask >= 0).all()
    with pytest.raises(ValueError, match="no layer named 'conv3'.*conv1"):
        grad_cam(model, data, layer="conv3")


def test_saliency_equals_autograd_and_edge_weight_gradient():
    torch.manual_seed(0)
    # without normalisation a message is edge_weight * x_j, so the gradient of a message weight
    # (PyG's explain edge mask) equals the gradient of the edge weight
    model, data = TinyGCN(normalize=False), _batch()
    explanation = saliency(model, data, target=2, absolute=False)
    x = data.x.clone().requires_grad_(True)
    edge_weight = torch.ones(data.num_edges, requires_grad=True)
    reference = data.clone()
    reference.x, reference.edge_weight = x, edge_weight
    model(reference)[:, 2].sum().backward()
    torch.testing.assert_close(explanation.node_mask, x.grad)
    torch.testing.assert_close(explanation.edge_mask, edge_weight.grad)
    assert all(module._edge_mask is None for module in (model.conv1, model.conv2))


def test_integrated_gradients_is_complete(model):
    # IG sums to f(input) - f(baseline); the baseline is zero features and zero edge weights
    torch.manual_seed(1)
    for conv in (model.conv1, model.conv2):
        nn.init.normal_(conv.bias)  # non-zero biases: the baseline output is not trivial
    nn.init.normal_(model.head.weight)
    data = _batch()
    data.x = 3 * data.x
    explanation = integrated_gradients(model, data, target=1, n_steps=64)
    baseline = data.clone()
    baseline.x = torch.zeros_like(data.x)
    with torch.no_grad():
        full = model(data)[:, 1].sum()
        set_masks(model, torch.zeros(data.num_edges), data.edge_index, apply_sigmoid=False)
        empty = model(baseline)[:, 1].sum()
        clear_masks(model)
    total = explanation.node_mask.sum() + explanation.edge_mask.sum()
    assert explanation.node_mask.shape == (7, 3) and explanation.edge_mask.shape == (10,)
    assert abs(float(explanation.convergence_delta)) < 1e-3
    assert float(total) == pytest.approx(float(full - empty), abs=1e-3)
    assert abs(float(full - empty)) > 0.1


def test_integrated_gradients_of_a_linear_model_is_input_times_weight():
    class LinearGraph(nn.Module):  # y = head(mean_n(x_n)): IG is exact, x * w / |V|
        def __init__(self):
            super().__init__()
            self.readout, self.head = MeanReadout(), nn.Linear(3, 2)

        def forward(self, data):
            return self.head(self.readout(data.x, data.batch, size=data.num_graphs))

    torch.manual_seed(0)
    model, data = LinearGraph(), _batch()
    explanation = integrated_gradients(model, data, target=0, n_steps=8)
    sizes = torch.tensor([4.0] * 4 + [3.0] * 3)[:, None]
    torch.testing.assert_close(explanation.node_mask, data.x * model.head.weight[0] / sizes)
    assert "edge_mask" not in explanation  # no message passing: no edge attribution


class GridLikeModel(nn.Module):
    """A conv layer whose output nodes [B, H*W, C] go through a mean readout and a linear head,
    the layout of a grid GNN; the CNN twin below computes the same function."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.readout, self.head = MeanReadout(), nn.Linear(6, 3)

    def forward(self, images):
        nodes = F.relu(self.conv(images)).flatten(2).transpose(1, 2)  # [B, N, C]
        return self.head(self.readout(nodes))


def test_grid_graph_cam_equals_cnn_cam():
    torch.manual_seed(0)
    grid_model = GridLikeModel()
    cnn = nn.Sequential(
        grid_model.conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), grid_model.head
    )
    images = torch.rand(2, 1, 6, 6)
    torch.testing.assert_close(cnn(images), grid_model(images))
    explanation = graph_cam(grid_model, images, target=[0, 2])
    assert explanation.grid_size == (6, 6)
    with CAM(cnn) as cam:
        torch.testing.assert_close(node_mask_to_image(explanation), cam(images, [0, 2], raw=True))
    assert node_mask_to_image(explanation, size=(12, 12)).shape == (2, 12, 12)


def test_grid_saliency_and_integrated_gradients():
    torch.manual_seed(0)
    grid_model, images = GridLikeModel(), torch.rand(2, 1, 6, 6)
    explanation = saliency(grid_model, images, target=1)
    assert explanation.node_mask.shape == (72, 1) and explanation.grid_size == (6, 6)
    images_grad = images.clone().requires_grad_(True)
    grid_model(images_grad)[:, 1].sum().backward()
    torch.testing.assert_close(node_mask_to_image(explanation), images_grad.grad.abs()[:, 0])
    ig = integrated_gradients(grid_model, images, target=1, n_steps=32)
    with torch.no_grad():
        gap = grid_model(images)[:, 1] - grid_model(torch.zeros_like(images))[:, 1]
    per_image = node_mask_to_image(ig).sum(dim=(1, 2))
    torch.testing.assert_close(per_image, gap, atol=1e-3, rtol=1e-3)


def test_bad_models_and_inputs(model):
    data = _batch()
    mlp_head = TinyGCN(head=nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 4)))
    with pytest.raises(ValueError, match="single nn.Linear"):
        graph_cam(mlp_head, data)
    with pytest.raises(ValueError, match="mean or sum readout"):
        graph_cam(TinyGCN(readout=MaxReadout()), data)
    with pytest.raises(ValueError, match="exposing `.readout`"):
        graph_cam(nn.Linear(3, 2), data)
    with pytest.raises(ValueError, match="class index out of range"):
        graph_cam(model, data, target=4)
    with pytest.raises(ValueError, match=r"images \[B, C, H, W\]"):
        saliency(model, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="'grid_size'"):
        node_mask_to_image(graph_cam(model, data))


def test_train_mode_restored(model):
    model.train()
    saliency(model, _batch())
    assert model.training and model.conv1.training


def test_cnn_to_grid_gnn_graph_cam_equals_cnn_cam():
    from gconv.models import CNN
    from gconv.models.grid import cnn_to_grid_gnn

    torch.manual_seed(0)
    cnn = CNN(in_shape=(1, 12, 12), num_classes=4, channels=(4, 6), head="gap", batch_norm=True)
    cnn.eval()
    grid_model = cnn_to_grid_gnn(cnn).eval()
    images = torch.rand(3, 1, 12, 12)
    target = torch.tensor([0, 3, 1])
    explanation = graph_cam(grid_model, images, target=target)
    assert explanation.grid_size == (3, 3)  # two 2x2 pools
    with CAM(cnn) as cam:
        cnn_raw = cam(images, target=target, raw=True)
        cnn_maps = cam(images, target=target)
    torch.testing.assert_close(node_mask_to_image(explanation), cnn_raw, atol=1e-5, rtol=1e-5)
    upsampled = node_mask_to_image(explanation, size=(12, 12))
    from gconv.explain.cam import normalize_maps

    torch.testing.assert_close(normalize_maps(upsampled), cnn_maps, atol=1e-5, rtol=1e-5)


def test_cnn_to_grid_gnn_grad_cam_equals_cnn_grad_cam():
    from gconv.explain.cam import GradCAM
    from gconv.models import CNN
    from gconv.models.grid import cnn_to_grid_gnn

    torch.manual_seed(1)
    cnn = CNN(in_shape=(1, 8, 8), num_classes=3, channels=(4,), head="gap").eval()
    grid_model = cnn_to_grid_gnn(cnn).eval()
    images = torch.rand(2, 1, 8, 8)
    explanation = grad_cam(grid_model, images, target=2)
    with GradCAM(cnn) as cam:
        cnn_raw = cam(images, target=2, raw=True)
    torch.testing.assert_close(
        node_mask_to_image(explanation), cnn_raw.clamp_min(0), atol=1e-6, rtol=1e-5
    )


def test_graph_cam_on_gconv_gcn_decomposes_the_prediction():
    from gconv.models import GCN

    torch.manual_seed(0)
    model = GCN(in_channels=3, out_channels=2, hidden_channels=8, num_layers=2).eval()
    data = _batch()
    explanation = graph_cam(model, data, target=1)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    per_graph = per_graph / torch.tensor([4.0, 3.0])
    with torch.no_grad():
        torch.testing.assert_close(per_graph + model.head.bias[1], model(data)[:, 1])
    assert explanation.edge_index is data.edge_index  # plugs into PyG's Explanation tools
    assert explanation.get_explanation_subgraph().num_nodes <= data.num_nodes
