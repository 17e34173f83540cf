"""ReadoutDecomposition: the exact split of a graph model's output over its node embeddings.

Proofs against analytic cases: a linear head on a sum / norm / mean readout gives exactly
``s_i * W h_i``; a ReLU or LeakyReLU MLP head gives the path integral (checked against a fine
Riemann sum in float64) and completeness to 1e-5; descriptors stay fixed; a model with code
after its head is re-run and agrees; class logits; refusal of readouts that are not linear."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn.aggr import SumAggregation

from gconv.explain import IntegratedGradients, ReadoutDecomposition, find_readout
from gconv.layers import (
    AttentionReadout,
    MaxReadout,
    MeanMaxReadout,
    MeanReadout,
    NormReadout,
    SumReadout,
)


class NodeModel(nn.Module):
    """``h_i = tanh(W x_i)`` (no message passing), a readout and a head; ``descriptors`` > 0
    concatenates ``data.x_d`` after the readout, as gconv's GNN does."""

    def __init__(self, readout, head, descriptors: int = 0):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(3, 5), nn.Tanh())
        self.readout, self.head, self.descriptors = readout, head, descriptors

    def embeddings(self, data):
        return self.embed(data.x)

    def forward(self, data):
        num_graphs = data.num_graphs if isinstance(data, Batch) else 1
        pooled = self.readout(self.embed(data.x), data.batch, num_graphs)
        if self.descriptors:
            pooled = torch.cat([pooled, data.x_d], dim=-1)
        return self.head(pooled)


class Doubled(nn.Module):
    """Code after the head: the decomposition re-runs the model with the readout replaced."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.readout, self.head = inner.readout, inner.head

    def forward(self, data):
        return 2 * self.inner(data) + 1


def _model(readout, head, descriptors=0, dtype=torch.float32):
    torch.manual_seed(0)
    return NodeModel(readout, head, descriptors).to(dtype).eval()


def _mlp(*sizes, activation=nn.ReLU):
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(a, b), activation(), nn.Dropout(0.3)]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


def _scaled_graphs(graphs, factor=40.0):
    """The fixture's graphs with larger features: a sum readout then crosses ReLU kinks."""
    data = copy.copy(graphs)
    data.x = graphs.x * factor
    return data


def _reference(model, data, target, steps=20000):
    """The path integral by a midpoint Riemann sum in float64, from the definition."""
    model = copy.deepcopy(model).double()
    data = copy.copy(data)
    data.x = data.x.double()
    h = model.embeddings(data).detach()
    pooled = model.readout(h, data.batch, data.num_graphs).detach()
    extras = data.x_d.double() if model.descriptors else pooled.new_zeros(pooled.size(0), 0)
    t = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    path = (t[:, None, None] * pooled[None]).requires_grad_(True)  # [steps, B, C]
    extra = extras[None].expand(steps, -1, -1)
    output = model.head(torch.cat([path, extra], dim=-1))[..., target]
    (gradient,) = torch.autograd.grad(output.sum(), path)
    mean_gradient = gradient.mean(dim=0)  # [B, C]
    h = h.requires_grad_(True)
    pooled = model.readout(h, data.batch, data.num_graphs)
    (node_gradient,) = torch.autograd.grad((pooled * mean_gradient).sum(), h)
    return (h * node_gradient).sum(dim=-1).detach()


# ---------------------------------------------------------------------------------------------
# linear heads: exact contributions s_i W h_i
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "readout, scale",
    [
        (SumReadout(), lambda sizes: 1.0),
        (NormReadout(100.0), lambda sizes: 1 / 100.0),
        (MeanReadout(), lambda sizes: 1 / sizes),
        (SumAggregation(), lambda sizes: 1.0),
    ],
    ids=["sum", "norm", "mean", "pyg-sum"],
)
def test_linear_head_gives_exactly_w_h_i(graphs, readout, scale):
    model = _model(readout, nn.Linear(5, 4))
    if isinstance(readout, SumAggregation):  # PyG's aggregation takes (x, index, dim_size=)
        model.forward = lambda data: model.head(
            model.readout(model.embed(data.x), data.batch, dim_size=data.num_graphs)
        )
    explainer = ReadoutDecomposition(model)
    explanation = explainer(graphs, target=2)
    h = model.embeddings(graphs).detach()
    sizes = torch.bincount(graphs.batch).float()[graphs.batch]
    expected = (h @ model.head.weight[2].detach()) * scale(sizes)
    torch.testing.assert_close(explanation.node_mask[:, 0], expected, rtol=1e-5, atol=1e-6)
    assert explainer.exact and explainer.steps_used == 1  # one linear piece
    # complete: the atoms sum to the logit minus the empty molecule's (the bias)
    bias = model.head.bias[2].detach()
    torch.testing.assert_close(explanation.baseline_score, bias.expand(2))
    with torch.no_grad():
        logit = model(graphs)[:, 2]
    per_graph = torch.zeros(2).index_add_(0, graphs.batch, explanation.node_mask[:, 0])
    torch.testing.assert_close(per_graph, logit - bias, rtol=0, atol=1e-5)
    assert explanation.convergence_delta.abs().max() < 1e-5


# ---------------------------------------------------------------------------------------------
# MLP heads: the path integral, exactly
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "head",
    [
        _mlp(5, 16, 1),
        _mlp(5, 16, 8, 1, activation=nn.LeakyReLU),
        _mlp(5, 12, 1, activation=nn.PReLU),
    ],
    ids=["relu", "leaky-relu-two-layers", "prelu"],
)
def test_piecewise_linear_head_is_integrated_exactly(graphs, head):
    model = _model(SumReadout(), head)
    data = _scaled_graphs(graphs)
    explainer = ReadoutDecomposition(model)
    explanation = explainer(data, target=0)
    assert explainer.exact
    assert explainer.steps_used > 2  # the path crossed kinks: several linear pieces
    with torch.no_grad():
        gap = model(data)[:, 0] - model.head(torch.zeros(1, 5))[0, 0]
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    torch.testing.assert_close(per_graph, gap, rtol=0, atol=1e-5)  # completeness
    assert explanation.convergence_delta.abs().max() < 1e-5
    reference = _reference(model, data, 0)
    torch.testing.assert_close(explanation.node_mask[:, 0].double(), reference, atol=2e-4, rtol=0)


def test_smooth_head_uses_quadrature_to_the_tolerance(graphs):
    model = _model(SumReadout(), _mlp(5, 16, 1, activation=nn.GELU))
    data = _scaled_graphs(graphs, 5.0)
    explainer = ReadoutDecomposition(model, rtol=0, atol=1e-5)
    explanation = explainer(data)
    assert not explainer.exact and explainer.steps_used >= 16
    assert explanation.convergence_delta.abs().max() < 1e-5
    reference = _reference(model, data, 0)
    torch.testing.assert_close(explanation.node_mask[:, 0].double(), reference, atol=1e-4, rtol=0)


def test_quadrature_tolerance_is_relative_to_the_score_change(graphs):
    # |delta| <= atol + rtol |gap|: scores 1000 times larger take the same steps per graph
    model = _model(SumReadout(), _mlp(5, 16, 1, activation=nn.GELU))
    data = _scaled_graphs(graphs, 5.0)
    small = ReadoutDecomposition(model, rtol=1e-4, atol=0)
    small(data)
    with torch.no_grad():
        model.head[-1].weight.mul_(1000)
        model.head[-1].bias.mul_(1000)
    large = ReadoutDecomposition(model, rtol=1e-4, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        explanation = large(data)
    assert large.steps_used == small.steps_used
    gap = explanation.prediction[:, 0] - large.baseline_score
    assert bool((explanation.convergence_delta.abs() <= 1e-4 * gap.abs()).all())
    with pytest.raises(ValueError, match="atol must be a number >= 0"):
        ReadoutDecomposition(model, atol=-1.0)


def test_descriptors_are_held_fixed(graphs):
    model = _model(NormReadout(10.0), _mlp(7, 16, 1), descriptors=2)
    data = _scaled_graphs(graphs, 10.0)
    data.x_d = torch.tensor([[0.5, -1.0], [2.0, 0.3]])
    explainer = ReadoutDecomposition(model)
    explanation = explainer(data)
    assert explainer.exact
    with torch.no_grad():  # the baseline: an empty readout with the molecule's own descriptors
        empty = model.head(torch.cat([torch.zeros(2, 5), data.x_d], dim=-1))[:, 0]
    torch.testing.assert_close(explanation.baseline_score, empty)
    assert explanation.convergence_delta.abs().max() < 1e-5
    torch.testing.assert_close(
        explanation.node_mask[:, 0].double(), _reference(model, data, 0), atol=2e-4, rtol=0
    )


def test_code_after_the_head_reruns_the_model(graphs):
    inner = _model(SumReadout(), _mlp(5, 16, 1, activation=nn.Tanh))
    data = _scaled_graphs(graphs, 3.0)
    direct = ReadoutDecomposition(inner, rtol=0, atol=1e-6)(data)
    explainer = ReadoutDecomposition(Doubled(inner), rtol=0, atol=1e-6)
    rerun = explainer(data)
    assert not explainer.exact
    torch.testing.assert_close(rerun.node_mask, 2 * direct.node_mask, atol=1e-5, rtol=1e-5)
    assert rerun.convergence_delta.abs().max() < 1e-5


def test_classification_explains_the_logit_of_the_target_class(graphs):
    model = _model(SumReadout(), _mlp(5, 16, 3))
    data = _scaled_graphs(graphs)
    with torch.no_grad():
        logits = model(data)
        empty = model.head(torch.zeros(1, 5))[0]
    default = ReadoutDecomposition(model)(data)  # the predicted class
    assert default.target.tolist() == logits.argmax(-1).tolist()
    for target in range(3):
        explanation = ReadoutDecomposition(model)(data, target=target)
        per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
        torch.testing.assert_close(per_graph, logits[:, target] - empty[target], atol=1e-5, rtol=0)
    per_sample = ReadoutDecomposition(model)(data, target=[1, 2])
    assert per_sample.target.tolist() == [1, 2]
    with pytest.raises(ValueError, match="class index out of range"):
        ReadoutDecomposition(model)(data, target=3)


# ---------------------------------------------------------------------------------------------
# what it refuses, what it returns
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("readout", [MaxReadout(), MeanMaxReadout(), AttentionReadout(5)], ids=repr)
def test_readouts_that_are_not_linear_are_refused(readout):
    model = _model(readout, nn.Linear(10 if isinstance(readout, MeanMaxReadout) else 5, 1))
    with pytest.raises(ValueError, match=r"linear in the node embeddings.*'readout' is ") as err:
        ReadoutDecomposition(model)
    assert type(readout).__name__ in str(err.value)
    assert "IntegratedGradients(model, baseline='empty')" in str(err.value)


def test_images_are_refused(gap_cnn, images):
    model = _model(SumReadout(), nn.Linear(5, 1))
    with pytest.raises(TypeError, match="graph models"):
        ReadoutDecomposition(model)(images)


def test_one_explanation_per_graph_with_its_fields(graphs):
    model = _model(SumReadout(), _mlp(5, 8, 1))
    explanation = ReadoutDecomposition(model)(graphs)
    parts = explanation.to_data_list()
    assert len(parts) == graphs.num_graphs == 2
    for part, graph in zip(parts, graphs.to_data_list(), strict=True):
        assert part.node_mask.shape == (graph.num_nodes, 1)
        assert part.convergence_delta.shape == part.baseline_score.shape == (1,)
        torch.testing.assert_close(part.x, graph.x)
    assert repr(ReadoutDecomposition(model)) == "ReadoutDecomposition(readout='readout')"


def test_a_graph_alone_and_in_a_batch_gets_the_same_values(graphs):
    model = _model(SumReadout(), _mlp(5, 16, 8, 1))
    data = _scaled_graphs(graphs)
    batched = ReadoutDecomposition(model)(data).node_mask
    start = 0
    for graph in data.to_data_list():
        alone = ReadoutDecomposition(model)(Batch.from_data_list([graph])).node_mask
        single = ReadoutDecomposition(model)(Data(x=graph.x, edge_index=graph.edge_index))
        torch.testing.assert_close(alone, batched[start : start + graph.num_nodes])
        torch.testing.assert_close(single.node_mask, alone)
        start += graph.num_nodes


def test_model_state_is_left_as_it_was(graphs):
    model = _model(SumReadout(), _mlp(5, 8, 1))
    model.train()
    model.head[1].eval()  # a module the user froze on purpose
    ReadoutDecomposition(model)(graphs)
    assert model.training and model.embed.training and not model.head[1].training
    assert all(p.grad is None for p in model.parameters())


def test_the_real_molecule_model(molecules):
    """gconv's GNN as the example trains it (D-MPNN, norm readout, MLP head, descriptors)."""
    from gconv.data import ATOM_FEATURE_DIM, BOND_FEATURE_DIM
    from gconv.models import GNN

    torch.manual_seed(0)
    model = GNN(
        ATOM_FEATURE_DIM,
        1,
        hidden_channels=16,
        readout="norm",
        edge_dim=BOND_FEATURE_DIM,
        head_hidden=(16,),
        descriptor_dim=2,
    )
    explainer = ReadoutDecomposition(model)
    explanation = explainer(molecules)
    assert explainer.exact
    assert explanation.convergence_delta.abs().max() < 1e-5
    # IG from the empty molecule scales the readout's input only (D-MPNN is no MessagePassing
    # module): the same attribution, by quadrature
    ig = IntegratedGradients(model, baseline="empty", rtol=0, atol=1e-5, max_steps=2048)
    torch.testing.assert_close(ig(molecules).node_mask, explanation.node_mask, atol=1e-4, rtol=0)


@pytest.fixture
def molecules():
    from gconv.data import smiles_to_graph

    graphs = [smiles_to_graph(s) for s in ("CCO", "OC(=O)c1ccccc1", "C", "CN(C)C(=O)c1ccc(N)cc1")]
    for k, graph in enumerate(graphs):
        graph.x_d = torch.tensor([[0.1 * k, -0.2]])
    return Batch.from_data_list(graphs)


def test_find_readout():
    model = _model(MeanReadout(), nn.Linear(5, 1))
    assert find_readout(model) == ("readout", model.readout)
    assert find_readout(model, "readout") == ("readout", model.readout)

    class Unnamed(nn.Module):  # no .readout attribute: the one readout module it holds
        def __init__(self):
            super().__init__()
            self.pool = NormReadout()  # holds a SumAggregation of its own: not counted

    assert find_readout(Unnamed())[0] == "pool"

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = SumReadout(), MaxReadout()

    with pytest.raises(ValueError, match=r"2 readouts \['a', 'b'\].*pass readout="):
        find_readout(Two())
    with pytest.raises(ValueError, match="no readout"):
        find_readout(nn.Linear(2, 2))


# ---------------------------------------------------------------------------------------------
# atomwise models: the head on every atom, the readout adds the outputs
# ---------------------------------------------------------------------------------------------
def _atomwise(head_hidden, norm=3.0, descriptor_dim=0):
    from gconv.data import ATOM_FEATURE_DIM, BOND_FEATURE_DIM
    from gconv.layers import AtomwiseReadout
    from gconv.models import GNN

    torch.manual_seed(0)
    return GNN(
        ATOM_FEATURE_DIM,
        2,
        hidden_channels=8,
        readout=AtomwiseReadout(norm),
        edge_dim=BOND_FEATURE_DIM,
        head_hidden=head_hidden,
        descriptor_dim=descriptor_dim,
    ).eval()


def _molecules(descriptor_dim=0):
    from gconv.data import featurize

    graphs = featurize(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]"]).graphs
    torch.manual_seed(2)
    for graph in graphs:
        if descriptor_dim:
            graph.x_d = torch.randn(1, descriptor_dim)
    return Batch.from_data_list(graphs)


def test_atomwise_linear_head_gives_each_atom_its_own_term():
    """Analytic: y = sum_i (W h_i + b) / c, so atom i's contribution is (W h_i + b)[t] / c."""
    model, batch = _atomwise(head_hidden=()), _molecules()
    explainer = ReadoutDecomposition(model)
    explanation = explainer(batch, target=1)
    with torch.no_grad():
        h = model.embed(batch)
        expected = (h @ model.head.weight[1] + model.head.bias[1]) / 3.0
        output = model(batch)[:, 1]
    torch.testing.assert_close(explanation.node_mask[:, 0], expected)
    assert explainer.exact and explainer.steps_used == 1
    torch.testing.assert_close(explainer.baseline_score, torch.zeros(4))
    per_graph = torch.zeros(4).index_add_(0, batch.batch, explanation.node_mask[:, 0])
    torch.testing.assert_close(per_graph, output)  # complete: the terms are the prediction


@pytest.mark.parametrize("descriptor_dim", [0, 2])
def test_atomwise_mlp_head_contributions_sum_to_the_output(descriptor_dim):
    model = _atomwise(head_hidden=(16, 16), descriptor_dim=descriptor_dim).double()
    batch = _molecules(descriptor_dim)
    for key in ("x", "edge_attr", "x_d"):
        if getattr(batch, key, None) is not None:
            batch[key] = batch[key].double()
    explainer = ReadoutDecomposition(model)
    explanation = explainer(batch, target=[0, 1, 0, 1])
    with torch.no_grad():
        output = model(batch)
        h = model.embed(batch)
        if descriptor_dim:
            h = torch.cat([h, batch.x_d[batch.batch]], dim=-1)
        per_atom = model.head(h) / 3.0
    columns = torch.tensor([0, 1, 0, 1])[batch.batch]
    expected = per_atom.gather(1, columns[:, None])[:, 0]
    torch.testing.assert_close(explanation.node_mask[:, 0], expected, rtol=0, atol=1e-12)
    per_graph = torch.zeros(4, dtype=torch.float64).index_add_(
        0, batch.batch, explanation.node_mask[:, 0]
    )
    torch.testing.assert_close(per_graph, output[torch.arange(4), torch.tensor([0, 1, 0, 1])])
    assert explainer.convergence_delta.abs().max() < 1e-12
