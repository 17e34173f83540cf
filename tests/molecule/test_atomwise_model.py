"""An atomwise molecule model (``gconv train --readout atomwise``): its target is scaled, not
centred, so its exact per-atom terms (ReadoutDecomposition) add up to the prediction in the
target's units; ``gconv explain`` says which method it used and why; its fingerprint is the
per-atom blocks pooled as its outputs are."""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Batch

from gconv.data import Standardizer
from gconv.explain import ReadoutDecomposition
from gconv.molecule import atom_scores, load_model, read_config
from gconv.molecule.training import fit_target_scaler

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCCCCC(=O)O"]


def test_fit_target_scaler_centres_except_for_atomwise():
    y = torch.tensor([[1.0], [3.0], [8.0]])
    centred, scaled = fit_target_scaler(y, "norm"), fit_target_scaler(y, "atomwise")
    assert centred.mean.tolist() == [4.0] and scaled.mean.tolist() == [0.0]
    torch.testing.assert_close(scaled.std, centred.std)  # the spread around the mean, both
    torch.testing.assert_close(scaled.transform(y), y / centred.std)
    torch.testing.assert_close(scaled.inverse_transform(scaled.transform(y)), y)
    restored = Standardizer.from_state_dict(scaled.state_dict())
    assert restored.mean.tolist() == [0.0]


def test_directory_records_the_atomwise_readout_and_an_uncentred_scaler(atomwise_dir):
    config = read_config(atomwise_dir)
    assert config["model"]["kwargs"]["readout"] == "atomwise"
    assert config["readout"]["name"] == "atomwise"
    model = load_model(atomwise_dir)
    assert all(member.atomwise for member in model.members)
    assert model.target_scaler.mean.tolist() == [0.0]


def test_exact_terms_add_up_to_the_prediction_and_explain_says_what_it_used(atomwise_dir):
    model = load_model(atomwise_dir)
    graphs, _, _ = model.featurize(SMILES)
    prediction, _ = model.predict_graphs(graphs)  # the ensemble's, in the target's units
    batch = Batch.from_data_list(graphs)
    for key in ("x", "edge_attr", "x_d"):
        batch[key] = batch[key].double()
    terms = (
        torch.stack(
            [
                ReadoutDecomposition(m)(batch, target=0).node_mask[:, 0]
                for m in model._float64_members()
            ]
        ).mean(0)
        * model.target_scaler.std.double()
    )  # the mean is 0: nothing else to add
    totals = torch.zeros(len(graphs), dtype=torch.float64).index_add_(0, batch.batch, terms)
    np.testing.assert_allclose(totals.numpy(), prediction[:, 0], rtol=1e-5, atol=1e-4)
    # gconv explain: integrated gradients (closer to known contributions on validation data)
    scores, method, reason = atom_scores(model, graphs)
    assert method == "IntegratedGradients" and "atomwise readout" in reason
    assert [len(s) for s in scores] == [g.num_nodes for g in graphs]


def test_fingerprint_is_the_per_atom_blocks_summed(atomwise_dir):
    model = load_model(atomwise_dir)
    graphs, _, _ = model.featurize(SMILES)
    member = model._float64_members()[0]
    batch = Batch.from_data_list(graphs)
    for key in ("x", "edge_attr", "x_d"):
        batch[key] = batch[key].double()
    with torch.no_grad():
        h = torch.cat([member.embed(batch), batch.x_d[batch.batch]], dim=-1)
        expected = torch.zeros(len(graphs), h.size(1), dtype=torch.float64)
        expected.index_add_(0, batch.batch, h)  # the readout's constant is 1
        output = member(batch)
    torch.testing.assert_close(model.embed(graphs, block=0), expected.float())
    last = len([m for m in member.head.modules() if isinstance(m, torch.nn.Linear)])
    torch.testing.assert_close(model.embed(graphs, block=last), output.float())
