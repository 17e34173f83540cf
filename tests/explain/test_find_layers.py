"""The target layer: by name (with close names on a typo) or by execution order (never a container
that is not called), for images and graphs alike; errors list the candidates."""

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch

from gconv.explain import CAM, GradCAM
from gconv.explain.find_layers import (
    candidate_layers,
    find_target_layer,
    resolve_layer,
    resolve_named_layer,
)


class LateRegistered(nn.Module):
    """`late` is registered first but runs last; `unused` and `blocks` (a ModuleList) never run
    as such: registration order would pick the wrong layer."""

    def __init__(self):
        super().__init__()
        self.late = nn.Conv2d(4, 5, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()])
        self.unused = nn.Conv2d(5, 5, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(self.late(x))


def test_target_layer_found_by_execution_order(images):
    flat = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 2)
    )
    assert find_target_layer(flat, images)[0] == "2"  # conv -> relu -> pool, before the head

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Conv2d(2, 2, 1)
            )
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))

        def forward(self, x):
            return self.head(self.body(x))

    name, module, use_input = find_target_layer(Nested(), images)
    assert (name, use_input) == ("body", False)

    model = LateRegistered()
    cam = GradCAM(model)  # an image model: chosen at once from a trial forward
    assert cam.target_layer is model.late and cam.target_layer_name == "late"
    assert candidate_layers(model, images) == ["blocks.0", "blocks.1", "late"]
    expected = GradCAM(model, target_layer=model.late)(images, target=0)
    torch.testing.assert_close(cam(images, target=0), expected)


def test_target_layer_errors_list_the_candidates(images):
    model = LateRegistered()
    with pytest.raises(
        ValueError,
        match=r"'unused' \(Conv2d\) was not called in forward.*"
        r"\['blocks.0', 'blocks.1', 'late'",
    ):
        GradCAM(model, target_layer="unused")(images)
    with pytest.raises(ValueError, match=r"'head.2' \(Linear\) gave no node-level output.*late"):
        GradCAM(model, target_layer="head.2")(images)
    with pytest.raises(ValueError, match="no layer of Sequential produced feature maps"):
        GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)))(images)


def test_target_layer_by_name_and_close_names(gap_cnn, images):
    assert resolve_layer(gap_cnn, "features.0") is gap_cnn.features[0]
    assert resolve_named_layer(gap_cnn, gap_cnn.head[2]) == ("head.2", gap_cnn.head[2])
    with pytest.raises(TypeError, match="target_layer must be an nn.Module or a str, got int"):
        resolve_layer(gap_cnn, 3)
    with pytest.raises(ValueError, match=r"no layer named 'featurs.1'.*features\.1"):
        GradCAM(gap_cnn, target_layer="featurs.1")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(gap_cnn, target_layer=nn.Conv2d(1, 1, 1))
    with GradCAM(gap_cnn, target_layer="features.0") as cam:
        assert cam(images).shape == (3, 8, 8)
    assert repr(GradCAM(gap_cnn)) == "GradCAM(target_layer='features')"


def test_grad_cam_of_a_named_graph_layer(gcn, graphs):
    explanation = GradCAM(gcn, target_layer="conv1")(graphs, target=0)
    assert explanation.node_mask.shape == (7, 1) and (explanation.node_mask >= 0).all()
    with pytest.raises(ValueError, match="no layer named 'conv3'.*conv1"):
        GradCAM(gcn, target_layer="conv3")
    with pytest.raises(ValueError, match=r"'head' \(Linear\) gave no node-level output.*conv2"):
        GradCAM(gcn, target_layer="head")(graphs)


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


def test_plain_pyg_model_uses_its_last_message_passing_layer(graphs):
    torch.manual_seed(0)
    model, data = PlainPyG(), graphs
    cam = GradCAM(model)
    explanation = cam(data, target=1, raw=True)
    assert cam.target_layer is model.convs[1] and cam.target_layer_name == "convs.1"
    assert candidate_layers(model, data)[-1] == "convs.1"
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


def test_gconv_gcn_target_is_the_readout_input(gcn, graphs):
    name, module, use_input = find_target_layer(gcn, graphs)
    assert (name, module, use_input) == ("readout", gcn.readout, True)


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
