"""Occlusion (an atom removed with its bonds), remove_nodes, and integrated gradients from the
empty molecule: values against brute force and analytic cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import subgraph

from gconv.explain import (
    IntegratedGradients,
    Occlusion,
    ReadoutDecomposition,
    graph_curve,
    remove_nodes,
)
from gconv.layers import MaxReadout, SumReadout


class NodeModel(nn.Module):
    """``h_i = tanh(W x_i)``, no message passing: removing node i removes exactly ``h_i``."""

    def __init__(self, readout=None, head=None):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(3, 5), nn.Tanh())
        self.readout = readout if readout is not None else SumReadout()
        self.head = head if head is not None else nn.Linear(5, 2)

    def forward(self, data):
        num_graphs = data.num_graphs if isinstance(data, Batch) else 1
        return self.head(self.readout(self.embed(data.x), data.batch, num_graphs))


def _brute_force_occlusion(model, graphs, target):
    values = []
    with torch.no_grad():
        for graph in graphs.to_data_list():
            full = model(Batch.from_data_list([graph]))[0, target]
            for node in range(graph.num_nodes):
                keep = torch.ones(graph.num_nodes, dtype=torch.bool)
                keep[node] = False
                edge_index, _ = subgraph(keep, graph.edge_index, relabel_nodes=True)
                smaller = Batch.from_data_list([Data(x=graph.x[keep], edge_index=edge_index)])
                values.append(full - model(smaller)[0, target])
    return torch.stack(values)


def test_occlusion_is_the_drop_when_one_node_is_removed(gcn, graphs):
    explanation = Occlusion(gcn)(graphs, target=1)
    expected = _brute_force_occlusion(gcn, graphs, 1)
    torch.testing.assert_close(explanation.node_mask[:, 0], expected, atol=1e-5, rtol=1e-5)
    assert len(explanation.to_data_list()) == 2
    assert explanation.target.tolist() == [1, 1]


def test_occlusion_equals_the_decomposition_without_message_passing(graphs):
    """Linear head, sum readout, embeddings of each node alone: removing node i takes away
    exactly its share W h_i, so the slow reference and the decomposition agree."""
    torch.manual_seed(0)
    model = NodeModel().eval()
    occlusion = Occlusion(model)(graphs, target=0).node_mask
    decomposition = ReadoutDecomposition(model)(graphs, target=0).node_mask
    torch.testing.assert_close(occlusion, decomposition, atol=1e-5, rtol=1e-5)


def test_occlusion_of_a_batch_is_that_of_each_graph_alone(gcn, graphs):
    batched = Occlusion(gcn)(graphs).node_mask
    alone = torch.cat(
        [Occlusion(gcn)(Batch.from_data_list([g])).node_mask for g in graphs.to_data_list()]
    )
    torch.testing.assert_close(batched, alone, atol=1e-6, rtol=1e-5)


def test_occlusion_refuses_images(gcn, images):
    with pytest.raises(TypeError, match="removes nodes of graphs"):
        Occlusion(gcn)(images)


def test_remove_nodes_keeps_every_graph(graphs):
    graphs.edge_attr = torch.arange(graphs.num_edges, dtype=torch.float)[:, None]
    removed = torch.zeros(graphs.num_nodes, dtype=torch.bool)
    removed[1] = True  # the middle of the path: its two bonds go
    removed[4:] = True  # the whole star
    smaller = remove_nodes(graphs, removed)
    assert smaller.num_graphs == 2 and smaller.num_nodes == 3
    assert smaller.batch.tolist() == [0, 0, 0]
    assert smaller.edge_index.tolist() == [[1, 2], [2, 1]]  # 2 <-> 3, relabelled
    assert smaller.edge_attr[:, 0].tolist() == [4.0, 5.0]
    assert graphs.num_nodes == 7  # the input is untouched


# ---------------------------------------------------------------------------------------------
# integrated gradients from the empty molecule
# ---------------------------------------------------------------------------------------------
def test_empty_baseline_is_complete_and_ends_at_the_empty_graph(make_gcn, graphs):
    torch.manual_seed(0)
    model = make_gcn(readout=SumReadout()).eval()  # GCNConv: messages are scaled too
    explainer = IntegratedGradients(model, baseline="empty", rtol=0, atol=1e-3)
    explanation = explainer(graphs, target=3)
    assert explanation.node_mask.shape == (graphs.num_nodes, 1)
    assert explanation.get("edge_mask") is None  # bonds are credited to their atoms
    assert explanation.convergence_delta.abs().max() < 1e-3
    # the start of the path is the empty molecule: every node removed
    with torch.no_grad():
        empty = model(remove_nodes(graphs, torch.ones(graphs.num_nodes, dtype=torch.bool)))
        full = model(graphs)
    per_graph = torch.zeros(2).index_add_(0, graphs.batch, explanation.node_mask[:, 0])
    torch.testing.assert_close(per_graph, full[:, 3] - empty[:, 3], atol=2e-3, rtol=0)


def test_empty_baseline_without_message_passing_is_the_decomposition(graphs):
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    model = NodeModel(head=head).eval()
    ig = IntegratedGradients(model, baseline="empty", rtol=0, atol=1e-6)(graphs, target=1)
    exact = ReadoutDecomposition(model, rtol=0, atol=1e-7)(graphs, target=1)
    torch.testing.assert_close(ig.node_mask, exact.node_mask, atol=1e-5, rtol=0)


def test_empty_baseline_takes_any_readout(graphs):
    torch.manual_seed(0)
    model = NodeModel(readout=MaxReadout()).eval()
    explanation = IntegratedGradients(model, baseline="empty", rtol=0, atol=1e-4)(graphs)
    assert explanation.convergence_delta.abs().max() < 1e-4
    alone = IntegratedGradients(model, baseline="empty", rtol=0, atol=1e-4)(
        Batch.from_data_list(graphs.to_data_list()[1:])
    )
    torch.testing.assert_close(alone.node_mask, explanation.node_mask[4:], atol=1e-6, rtol=0)


def test_empty_baseline_refuses_images(gap_cnn, images):
    with pytest.raises(TypeError, match="baseline='empty'"):
        IntegratedGradients(gap_cnn, baseline="empty")(images)
    with pytest.raises(ValueError, match="'empty'"):
        IntegratedGradients(gap_cnn, baseline="nothing")


def test_deletion_curves_still_remove_nodes(gcn, graphs):
    importance = torch.arange(graphs.num_nodes, dtype=torch.float)
    curve = graph_curve(gcn, graphs, importance, target=0, steps=1, score="raw")
    with torch.no_grad():
        empty = gcn(remove_nodes(graphs, torch.ones(graphs.num_nodes, dtype=torch.bool)))
    torch.testing.assert_close(curve.scores[:, -1], empty[:, 0])
