"""GNN(readout="atomwise"): the head on every atom's embedding, the outputs summed and scaled.

Proofs: the output equals ``sum_i head([h_i | d_g]) / c`` computed by hand from ``embed`` and
``head``; an empty graph gives 0; one graph without a batch vector equals the same graph in a
batch; the readout by name, its repr and its refusal of a bad constant."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from gconv.data import ATOM_FEATURE_DIM, BOND_FEATURE_DIM, featurize
from gconv.layers import AtomwiseReadout, NormReadout, readout
from gconv.models import GNN

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]


def _model(descriptor_dim=0, norm=None, out_channels=2):
    torch.manual_seed(0)
    head_readout = "atomwise" if norm is None else AtomwiseReadout(norm)
    return GNN(
        ATOM_FEATURE_DIM,
        out_channels,
        hidden_channels=8,
        readout=head_readout,
        edge_dim=BOND_FEATURE_DIM,
        head_hidden=(6,),
        descriptor_dim=descriptor_dim,
    ).eval()


def _batch(descriptor_dim=0):
    graphs = featurize(SMILES).graphs
    torch.manual_seed(1)
    for graph in graphs:
        if descriptor_dim:
            graph.x_d = torch.randn(1, descriptor_dim)
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("descriptor_dim", [0, 3])
@pytest.mark.parametrize("norm", [None, 4.0])
def test_output_is_the_sum_of_the_heads_per_atom_outputs(descriptor_dim, norm):
    model, batch = _model(descriptor_dim, norm), _batch(descriptor_dim)
    with torch.no_grad():
        output = model(batch)
        h = model.embed(batch)
        if descriptor_dim:
            h = torch.cat([h, batch.x_d[batch.batch]], dim=-1)
        per_atom = model.head(h)
    c = 1.0 if norm is None else norm
    expected = torch.zeros(len(SMILES), 2).index_add_(0, batch.batch, per_atom) / c
    torch.testing.assert_close(output, expected)
    assert model.atomwise and model.head[0].in_features == 8 + descriptor_dim


def test_one_graph_without_a_batch_vector_equals_it_in_a_batch():
    model, batch = _model(descriptor_dim=3), _batch(descriptor_dim=3)
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(graph) for graph in batch.to_data_list()])
    torch.testing.assert_close(alone, together)


def test_an_empty_graph_gives_zero():
    model, batch = _model(), _batch()
    with torch.no_grad():
        h = model.embed(batch)
        output = model.readout(model.head(h), batch.batch, 4)  # graph 3 has no atoms
    torch.testing.assert_close(output[3], torch.zeros(2))


def test_readout_by_name_and_repr():
    module = readout("atomwise")
    assert type(module) is AtomwiseReadout and isinstance(module, NormReadout)
    assert repr(module) == "AtomwiseReadout(norm=1)"
    assert repr(readout("atomwise", norm=50)) == "AtomwiseReadout(norm=50)"
    assert "readout=AtomwiseReadout(norm=1)" in repr(_model())
    assert not GNN(ATOM_FEATURE_DIM, 1, readout="norm", edge_dim=BOND_FEATURE_DIM).atomwise
    with pytest.raises(ValueError, match="positive number"):
        AtomwiseReadout(0)
