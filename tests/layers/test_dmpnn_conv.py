"""DMPNNConv equals chemprop v2's BondMessagePassing (outputs and gradients, same weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from chemprop.data import BatchMolGraph, MolGraph
from chemprop.nn import BondMessagePassing
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch

from gconv.data import smiles_to_graph
from gconv.layers import DMPNNConv, reverse_edge_index

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "C", "N#CC1CC1"]


def _to_chemprop(graphs) -> BatchMolGraph:
    """The same graphs as chemprop MolGraphs (chemprop's rev_edge_index from ours)."""
    mol_graphs = []
    for g in graphs:
        rev = reverse_edge_index(g.edge_index, g.num_nodes).numpy()
        mol_graphs.append(
            MolGraph(
                V=g.x.numpy().astype(np.float32),
                E=g.edge_attr.numpy().astype(np.float32),
                edge_index=g.edge_index.numpy(),
                rev_edge_index=rev,
            )
        )
    return BatchMolGraph(mol_graphs)


def _copy_weights(conv: DMPNNConv, reference: BondMessagePassing) -> None:
    with torch.no_grad():
        conv.lin_input.weight.copy_(reference.W_i.weight)
        conv.lin_hidden.weight.copy_(reference.W_h.weight)
        conv.lin_output.weight.copy_(reference.W_o.weight)
        conv.lin_output.bias.copy_(reference.W_o.bias)
        for ours, theirs in [(conv.lin_input, reference.W_i), (conv.lin_hidden, reference.W_h)]:
            if ours.bias is not None:
                ours.bias.copy_(theirs.bias)


def _compare(graphs, depth: int, hidden: int, bias: bool, undirected: bool) -> None:
    torch.manual_seed(0)
    d_v, d_e = graphs[0].num_node_features, graphs[0].num_edge_features
    reference = BondMessagePassing(
        d_v=d_v, d_e=d_e, d_h=hidden, depth=depth, bias=bias, undirected=undirected
    ).double()
    conv = DMPNNConv(d_v, d_e, hidden, depth=depth, bias=bias, undirected=undirected).double()
    _copy_weights(conv, reference)

    bmg = _to_chemprop(graphs)
    bmg.V, bmg.E = bmg.V.double().requires_grad_(), bmg.E.double().requires_grad_()
    batch = Batch.from_data_list(graphs)
    x = batch.x.double().requires_grad_()
    edge_attr = batch.edge_attr.double().requires_grad_()

    expected = reference(bmg)
    out = conv(x, batch.edge_index, edge_attr)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)

    weights = torch.randn_like(out)
    (expected * weights).sum().backward()
    (out * weights).sum().backward()
    torch.testing.assert_close(x.grad, bmg.V.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(edge_attr.grad, bmg.E.grad, atol=1e-5, rtol=1e-5)
    for ours, theirs in [
        (conv.lin_input, reference.W_i),
        (conv.lin_hidden, reference.W_h),
        (conv.lin_output, reference.W_o),
    ]:
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
@pytest.mark.parametrize("bias", [False, True])
def test_equals_chemprop_bond_message_passing(depth: int, bias: bool) -> None:
    graphs = [smiles_to_graph(s) for s in SMILES]
    _compare(graphs, depth=depth, hidden=16, bias=bias, undirected=False)


def test_equals_chemprop_undirected() -> None:
    graphs = [smiles_to_graph(s) for s in SMILES]
    _compare(graphs, depth=4, hidden=8, bias=False, undirected=True)


# Random molecules from chains and rings of a few elements, written as SMILES.
_atoms = st.sampled_from(["C", "N", "O", "S", "c1ccccc1", "C(=O)", "C1CC1", "C(Cl)", "[NH2+]"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(_atoms, min_size=1, max_size=6), min_size=1, max_size=4))
def test_equals_chemprop_on_drawn_molecules(parts: list[list[str]]) -> None:
    graphs = [smiles_to_graph("".join(p)) for p in parts]
    _compare(graphs, depth=3, hidden=8, bias=False, undirected=False)


def test_reverse_edge_index_is_an_involution_that_flips_edges() -> None:
    batch = Batch.from_data_list([smiles_to_graph(s) for s in SMILES])
    rev = reverse_edge_index(batch.edge_index)
    torch.testing.assert_close(batch.edge_index[:, rev], batch.edge_index.flip(0))
    torch.testing.assert_close(rev[rev], torch.arange(batch.num_edges))


def test_reverse_edge_index_rejects_directed_edges() -> None:
    edge_index = torch.tensor([[0, 1, 1], [1, 0, 2]])
    with pytest.raises(ValueError, match=r"edge 2 \(1 -> 2\) has no reverse.*to_undirected"):
        reverse_edge_index(edge_index)


def test_single_atom_and_empty_edges() -> None:
    conv = DMPNNConv(4, 3, 8)
    out = conv(torch.randn(1, 4), torch.empty(2, 0, dtype=torch.long), torch.empty(0, 3))
    assert out.shape == (1, 8)


def test_input_errors_name_the_shapes() -> None:
    conv = DMPNNConv(4, 3, 8)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"node features of shape \(N, 4\), got \(2, 5\)"):
        conv(torch.randn(2, 5), edge_index, torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"needs edge features"):
        conv(torch.randn(2, 4), edge_index, None)
    with pytest.raises(ValueError, match=r"edge_attr of shape \(2, 3\), got \(2, 2\)"):
        conv(torch.randn(2, 4), edge_index, torch.randn(2, 2))
    with pytest.raises(ValueError, match="positive int"):
        DMPNNConv(4, 3, 0)


def test_repr() -> None:
    assert str(DMPNNConv(48, 14, 300)) == "DMPNNConv(48, 300, edge_dim=14, depth=3)"
