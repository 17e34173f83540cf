"""recommended_explainer: the decomposition where the model is a sum of atom shares read by one
Linear, integrated gradients otherwise, each with a reason that names why."""

from __future__ import annotations

import pytest
from torch import nn

from gconv.data import ATOM_FEATURE_DIM, BOND_FEATURE_DIM
from gconv.explain import (
    IntegratedGradients,
    ReadoutDecomposition,
    Saliency,
    recommended_explainer,
)
from gconv.models import GNN


def _gnn(readout, head_hidden=()):
    return GNN(
        ATOM_FEATURE_DIM,
        1,
        hidden_channels=8,
        readout=readout,
        edge_dim=BOND_FEATURE_DIM,
        head_hidden=head_hidden,
    )


def test_linear_readout_and_linear_head_get_the_exact_decomposition():
    for readout in ("sum", "norm", "mean"):
        explainer, reason = recommended_explainer(_gnn(readout))
        assert isinstance(explainer, ReadoutDecomposition), readout
        assert "read exactly" in reason


def test_an_mlp_head_or_another_readout_gets_integrated_gradients():
    explainer, reason = recommended_explainer(_gnn("norm", head_hidden=(16,)))
    assert isinstance(explainer, IntegratedGradients) and explainer.baseline == "auto"
    assert "MLP head" in reason
    explainer, reason = recommended_explainer(_gnn("max"))
    assert isinstance(explainer, IntegratedGradients)
    assert "MaxReadout" in reason


def test_a_model_without_a_readout_gets_integrated_gradients():
    explainer, reason = recommended_explainer(nn.Linear(3, 1))
    assert isinstance(explainer, IntegratedGradients)
    assert "no readout" in reason


def test_a_classifier_without_a_linear_head_gets_saliency():
    explainer, reason = recommended_explainer(_gnn("norm", (16,)), task="classification")
    assert isinstance(explainer, Saliency) and explainer.absolute
    assert "logit's gradient" in reason
    # the decomposition stays where the model allows it, whatever the task
    explainer, _ = recommended_explainer(_gnn("mean"), task="classification")
    assert isinstance(explainer, ReadoutDecomposition)
    with pytest.raises(ValueError, match="task must be"):
        recommended_explainer(_gnn("mean"), task="ranking")


def test_an_atomwise_mlp_model_gets_integrated_gradients_and_a_linear_one_the_decomposition():
    # measured on validation molecules: IG closer to Crippen's contributions than the exact terms
    explainer, reason = recommended_explainer(_gnn("atomwise", head_hidden=(16,)))
    assert isinstance(explainer, IntegratedGradients)
    assert "atomwise readout with an MLP head (ReadoutDecomposition reads" in reason
    explainer, _ = recommended_explainer(_gnn("atomwise", head_hidden=(16,)), "classification")
    assert isinstance(explainer, Saliency)
    explainer, reason = recommended_explainer(_gnn("atomwise"))  # one Linear: CAM's rule
    assert isinstance(explainer, ReadoutDecomposition) and "AtomwiseReadout" in reason
