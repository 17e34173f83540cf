"""One explainer for graphs and grids: CAM decomposes the logit, Grad-CAM(++) on node embeddings
follow their formulas per graph, explanations split per graph with per-graph normalisation, plain
PyG and gconv models alike, grid GNNs give the CNN's maps at every image size, saliency equals
autograd, integrated gradients is complete and picks its own number of steps."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

from gconv.explain import (
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    Saliency,
    ScoreCAM,
    integrated_gradients,
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


def _readout_input_and_grad(model, data, category):
    """Reference: the readout's input h and d y^c / d h, by a hand-made hook."""
    saved = {}

    def hook(module, args):
        saved["h"] = args[0]

    handle = model.readout.register_forward_pre_hook(hook)
    output = model(data)
    handle.remove()
    (grad,) = torch.autograd.grad(output[torch.arange(2), category].sum(), saved["h"])
    return saved["h"].detach(), grad


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyGCN()


@pytest.mark.parametrize("readout_cls", [MeanReadout, SumReadout])
def test_graph_cam_decomposes_the_logit(readout_cls):
    torch.manual_seed(0)
    model, data = TinyGCN(readout=readout_cls()), _batch()
    explanation = CAM(model)(data, target=[1, 3], raw=True)
    assert isinstance(explanation, Explanation)
    assert explanation.node_mask.shape == (7, 1)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    if readout_cls is MeanReadout:
        per_graph = per_graph / torch.tensor([4.0, 3.0])
    logits = model(data)[[0, 1], [1, 3]]
    torch.testing.assert_close(per_graph + model.head.bias[[1, 3]], logits)
    assert explanation.target.tolist() == [1, 3]


def test_explanations_split_per_graph_with_per_graph_normalisation(model):
    data = _batch()
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


def test_grad_cam_on_graphs_is_the_per_graph_mean_gradient_formula(model):
    data, category = _batch(), torch.tensor([0, 3])
    h, grad = _readout_input_and_grad(model, data, category)
    sizes = torch.tensor([4.0, 3.0])
    alpha = torch.zeros(2, 5).index_add_(0, data.batch, grad) / sizes[:, None]
    expected = (h * alpha[data.batch]).sum(-1)
    cam = GradCAM(model)
    raw = cam(data, target=category, raw=True)
    assert cam.target_layer is model.readout and cam.use_input
    torch.testing.assert_close(raw.node_mask[:, 0], expected)
    # Grad-CAM++: a = g^2 / (2 g^2 + sum_m h_m g^3), alpha = sum_n a relu(g), per graph
    sums = torch.zeros(2, 5).index_add_(0, data.batch, h)[data.batch]
    a = grad**2 / (2 * grad**2 + sums * grad**3 + 1e-6)
    a = torch.where(grad != 0, a, torch.zeros_like(a))
    alpha_pp = torch.zeros(2, 5).index_add_(0, data.batch, grad.clamp_min(0) * a)
    expected_pp = (h * alpha_pp[data.batch]).sum(-1)
    raw_pp = GradCAMPlusPlus(model)(data, target=category, raw=True)
    torch.testing.assert_close(raw_pp.node_mask[:, 0], expected_pp)


def test_grad_cam_at_readout_is_graph_cam_over_graph_size(model):
    data = _batch()
    cam = CAM(model)(data, raw=True).node_mask
    grad = GradCAM(model)(data, raw=True).node_mask
    sizes = torch.tensor([4.0] * 4 + [3.0] * 3)[:, None]
    torch.testing.assert_close(grad, cam / sizes)


def test_grad_cam_of_a_named_layer(model):
    data = _batch()
    explanation = GradCAM(model, target_layer="conv1")(data, target=0)
    assert explanation.node_mask.shape == (7, 1) and (explanation.node_mask >= 0).all()
    with pytest.raises(ValueError, match="no layer named 'conv3'.*conv1"):
        GradCAM(model, target_layer="conv3")
    with pytest.raises(ValueError, match=r"'head' \(Linear\) gave no node-level output.*conv2"):
        GradCAM(model, target_layer="head")(data)


class PlainPyG(nn.Module):
    """A plain PyG model: convs in a ModuleList (never called as such), functional pooling."""

    def __init__(self):
        super().__init__()
        from torch_geometric.nn import GCNConv as PyGGCNConv

        self.convs = nn.ModuleList([PyGGCNConv(3, 8), PyGGCNConv(8, 6)])
        self.lin = nn.Linear(6, 2)

    def forward(self, data):
        from torch_geometric.nn import global_mean_pool

        x = data.x
        for conv in self.convs:
            x = conv(x, data.edge_index).relu()
        return self.lin(global_mean_pool(x, data.batch))


def test_plain_pyg_model_uses_its_last_message_passing_layer():
    torch.manual_seed(0)
    model, data = PlainPyG(), _batch()
    cam = GradCAM(model)
    explanation = cam(data, target=1, raw=True)
    assert cam.target_layer is model.convs[1] and cam.target_layer_name == "convs.1"
    saved = {}
    handle = model.convs[1].register_forward_hook(lambda m, a, o: saved.__setitem__("h", o))
    output = model(data)
    handle.remove()
    (grad,) = torch.autograd.grad(output[:, 1].sum(), saved["h"])
    alpha = torch.zeros(2, 6).index_add_(0, data.batch, grad) / torch.tensor([[4.0], [3.0]])
    expected = (saved["h"].detach() * alpha[data.batch]).sum(-1)
    torch.testing.assert_close(explanation.node_mask[:, 0], expected)
    with pytest.raises(ValueError, match="global mean/sum readout"):
        CAM(model)(data)  # functional pooling: no readout module for CAM to read


@pytest.mark.parametrize("method", [CAM, GradCAM, GradCAMPlusPlus, ScoreCAM, Saliency])
def test_gconv_gcn_one_shot_call_leaves_the_model_as_found(method):
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
    data = _batch()
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


def test_graph_cam_on_gconv_gcn_decomposes_the_prediction():
    from gconv.models import GNN

    torch.manual_seed(0)
    model = GNN(in_channels=3, out_channels=2, conv="gcn", hidden_channels=8, num_layers=2).eval()
    data = _batch()
    explanation = CAM(model)(data, target=1, raw=True)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    per_graph = per_graph / torch.tensor([4.0, 3.0])
    with torch.no_grad():
        torch.testing.assert_close(per_graph + model.head.bias[1], model(data)[:, 1])
    assert explanation.get_explanation_subgraph().num_nodes <= data.num_nodes


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
    assert explanation[1].edge_mask.shape == (4,)


def _with_biases(model):
    torch.manual_seed(1)
    for conv in (model.conv1, model.conv2):
        nn.init.normal_(conv.bias)  # non-zero biases: the baseline output is not trivial
    nn.init.normal_(model.head.weight)
    return model


def test_integrated_gradients_is_complete_per_graph(model):
    # IG sums to f(input) - f(baseline) per graph; the baseline: zero features and edge weights
    model = _with_biases(model)
    data = _batch()
    data.x = 3 * data.x
    explainer = IntegratedGradients(model, n_steps=64)
    explanation = explainer(data, target=1)
    baseline = data.clone()
    baseline.x = torch.zeros_like(data.x)
    with torch.no_grad():
        full = model(data)[:, 1]
        set_masks(model, torch.zeros(data.num_edges), data.edge_index, apply_sigmoid=False)
        empty = model(baseline)[:, 1]
        clear_masks(model)
    assert explanation.node_mask.shape == (7, 3) and explanation.edge_mask.shape == (10,)
    for g, graph in enumerate(explanation.to_data_list()):
        total = graph.node_mask.sum() + graph.edge_mask.sum()
        assert float(total) == pytest.approx(float(full[g] - empty[g]), abs=1e-3)
        assert abs(float(graph.convergence_delta)) < 1e-3
    assert explainer.steps_used == 64 and abs(float(full.sum() - empty.sum())) > 0.1


def test_integrated_gradients_chooses_its_steps_or_warns(model):
    model = _with_biases(model)
    data = _batch()
    data.x = 3 * data.x
    explainer = IntegratedGradients(model, tolerance=1e-3)
    explainer(data, target=1)
    assert explainer.convergence_delta.abs().max() < 1e-3 and explainer.steps_used >= 16
    coarse = IntegratedGradients(model, n_steps=2)
    coarse(data, target=1)
    with pytest.warns(RuntimeWarning, match="did not converge.*after 3 steps"):
        IntegratedGradients(model, tolerance=1e-12, max_steps=3)(data, target=1)
    assert coarse.convergence_delta.abs().max() > explainer.convergence_delta.abs().max()


def test_integrated_gradients_on_constant_features_walks_the_edges(model):
    model = _with_biases(model)
    data = _batch()
    data.x = torch.ones_like(data.x)  # structure only
    explanation = IntegratedGradients(model, n_steps=64)(data, target=0)
    assert explanation.node_mask.shape == (7, 1)
    # every edge's attribution is shared by its two end nodes: nodes and edges sum alike
    torch.testing.assert_close(
        explanation.node_mask.sum(), explanation.edge_mask.sum(), atol=1e-5, rtol=1e-5
    )
    with torch.no_grad():
        full = model(data)[:, 0]
        set_masks(model, torch.zeros(data.num_edges), data.edge_index, apply_sigmoid=False)
        no_edges = model(data)[:, 0]
        clear_masks(model)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    torch.testing.assert_close(per_graph, full - no_edges, atol=1e-3, rtol=1e-3)
    zero = IntegratedGradients(model, n_steps=8, baseline="zero")(data, target=0)
    assert zero.node_mask.shape == (7, 3)


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
    for method in (CAM, GradCAM, GradCAMPlusPlus):
        torch.testing.assert_close(
            method(grid_model)(images, [0, 2], raw=True), method(cnn)(images, [0, 2], raw=True)
        )
        torch.testing.assert_close(method(grid_model)(images, [0, 2]), method(cnn)(images, [0, 2]))


def test_grid_saliency_and_integrated_gradients():
    torch.manual_seed(0)
    grid_model, images = GridLikeModel(), torch.rand(2, 1, 6, 6)
    maps = saliency(grid_model, images, target=1)
    images_grad = images.clone().requires_grad_(True)
    grid_model(images_grad)[:, 1].sum().backward()
    torch.testing.assert_close(maps, images_grad.grad.abs()[:, 0])
    explainer = IntegratedGradients(grid_model)
    ig = explainer(images, target=1)
    with torch.no_grad():
        gap = grid_model(images)[:, 1] - grid_model(torch.zeros_like(images))[:, 1]
    torch.testing.assert_close(ig.sum(dim=(1, 2)), gap, atol=0.05, rtol=0)
    assert explainer.convergence_delta.abs().max() < 0.05


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


def test_bad_models_and_inputs(model):
    data = _batch()
    mlp_head = TinyGCN(head=nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 4)))
    with pytest.raises(ValueError, match="exactly one nn.Linear"):
        CAM(mlp_head)(data)
    with pytest.raises(ValueError, match="global mean/sum readout"):
        CAM(TinyGCN(readout=MaxReadout()))(data)
    with pytest.raises(ValueError, match="class index out of range"):
        CAM(model)(data, target=4)
    with pytest.raises(TypeError, match="class logit"):
        CAM(model)(data, target=lambda out: out[:, 0])
    with pytest.raises(ValueError, match=r"images of shape \[B, C, H, W\] or a PyG Data/Batch"):
        saliency(model, torch.zeros(3, 3))
    with pytest.raises(TypeError, match="PyG Data/Batch, got list"):
        GradCAM(model)([data])
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        IntegratedGradients(model, n_steps=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GradCAM(model)(data)  # no warnings on the happy path


@pytest.mark.parametrize("conv", ["dmpnn", "gine", "gcn"])
def test_gconv_gnn_encoders_explain_per_molecule(conv):
    # the layer is found by execution order, so D-MPNN's bond messages (edge states) are skipped
    # and its node embeddings used, with no model-specific code
    from gconv.data import smiles_to_graph
    from gconv.models.gnn import GNN

    torch.manual_seed(0)
    data = Batch.from_data_list([smiles_to_graph(s) for s in ["CCO", "c1ccccc1O", "CC(=O)N"]])
    edge_dim = None if conv == "gcn" else data.edge_attr.size(1)
    model = GNN(data.num_node_features, 1, conv=conv, edge_dim=edge_dim).eval()
    explanation = GradCAM(model)(data)
    assert [g.num_nodes for g in explanation.to_data_list()] == [3, 7, 4]
    assert [g.smiles for g in explanation.to_data_list()] == ["CCO", "c1ccccc1O", "CC(=O)N"]
    assert explanation.node_mask.min() >= 0 and explanation.node_mask.max() <= 1
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
