"""One sample's explanation does not depend on the rest of its batch (issue 22, item 5): the same
shape and values for a molecule alone, batched before or after another, for molecules whose
atoms are all alike (benzene), for featureless graphs (``x = 1``) alone, among themselves and
among featured graphs, and for images; integrated gradients picks its number of steps per graph."""

import warnings

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from gconv.data import smiles_to_graph
from gconv.explain import (
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    Saliency,
    ScoreCAM,
    featureless_graphs,
)
from gconv.models import CNN, GNN

METHODS = [IntegratedGradients, Saliency, CAM, GradCAM, GradCAMPlusPlus, ScoreCAM]
ATOL = 1e-5


def _explain(method, model, graphs, target=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # IG's "did not converge" is not tested
        return method(model)(Batch.from_data_list(graphs), target=target)


def _assert_same(alone, batched):
    """Two explanations of one graph: same fields, shapes and values (float tolerance)."""
    assert alone.node_mask.shape == batched.node_mask.shape
    torch.testing.assert_close(batched.node_mask, alone.node_mask, atol=ATOL, rtol=1e-4)
    assert ("edge_mask" in alone) == ("edge_mask" in batched)
    if "edge_mask" in alone:
        torch.testing.assert_close(batched.edge_mask, alone.edge_mask, atol=ATOL, rtol=1e-4)
    if "convergence_delta" in alone:
        torch.testing.assert_close(
            batched.convergence_delta, alone.convergence_delta, atol=ATOL, rtol=1e-4
        )


@pytest.fixture(scope="module")
def molecules():
    return {s: smiles_to_graph(s) for s in ("c1ccccc1", "Oc1ccccc1", "CCO")}


def _gnn(conv, example):
    torch.manual_seed(0)
    edge_dim = example.edge_attr.size(1) if conv == "dmpnn" else None
    return GNN(example.x.size(1), 3, conv=conv, edge_dim=edge_dim).eval()


@pytest.mark.parametrize("conv", ["dmpnn", "gcn"])
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_a_molecule_is_explained_alike_alone_and_in_any_batch(method, conv, molecules):
    benzene, phenol, ethanol = molecules.values()
    model = _gnn(conv, benzene)
    alone = _explain(method, model, [benzene])[0]
    # benzene's atoms are all alike: per-feature attributions all the same, [6, F] for IG
    if method in (IntegratedGradients, Saliency):
        assert alone.node_mask.shape == benzene.x.shape
    else:
        assert alone.node_mask.shape == (6, 1)
    _assert_same(alone, _explain(method, model, [benzene, phenol])[0])
    _assert_same(alone, _explain(method, model, [phenol, benzene])[1])
    _assert_same(alone, _explain(method, model, [ethanol, phenol, benzene])[2])
    _assert_same(
        _explain(method, model, [phenol])[0], _explain(method, model, [benzene, phenol])[1]
    )


def _ring(n, x):
    source = torch.arange(n)
    target = (source + 1) % n
    edge_index = torch.cat([torch.stack([source, target]), torch.stack([target, source])], 1)
    return Data(x=x, edge_index=edge_index)


@pytest.fixture
def structure_only():
    """Featureless graphs (``x = 1``): a ring of 5 with a tail, a ring of 4; and a featured
    graph in the same feature space."""
    torch.manual_seed(0)
    tailed = _ring(5, torch.ones(7, 3))
    tailed.edge_index = torch.cat(
        [tailed.edge_index, torch.tensor([[0, 5, 5, 6], [5, 0, 6, 5]])], dim=1
    )
    return tailed, _ring(4, torch.ones(4, 3)), _ring(6, torch.randn(6, 3))


@pytest.fixture
def biased_gcn(make_gcn):
    """conftest's two-layer GCN (3 features, 4 classes, Linear head) with non-zero biases: a
    non-trivial output at the baseline."""
    torch.manual_seed(2)
    model = make_gcn().eval()
    for conv in (model.conv1, model.conv2):
        nn.init.normal_(conv.bias)
    return model


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_featureless_graphs_are_explained_alike_alone_and_in_any_batch(
    method, structure_only, biased_gcn
):
    tailed, square, featured = structure_only
    model = biased_gcn
    alone = _explain(method, model, [tailed], target=1)[0]
    _assert_same(alone, _explain(method, model, [tailed, square], target=1)[0])
    _assert_same(alone, _explain(method, model, [square, tailed], target=1)[1])
    # among featured graphs: the same shape and values for the featureless one, and the
    # featured one is explained as it is alone
    _assert_same(alone, _explain(method, model, [featured, tailed], target=1)[1])
    _assert_same(
        _explain(method, model, [featured], target=1)[0],
        _explain(method, model, [tailed, featured], target=1)[1],
    )


def test_integrated_gradients_walks_the_edges_of_each_featureless_graph(structure_only, biased_gcn):
    tailed, square, featured = structure_only
    batch = Batch.from_data_list([featured, tailed, square])
    assert featureless_graphs(batch).tolist() == [False, True, True]
    assert featureless_graphs(Batch.from_data_list([featured])).tolist() == [False]
    model = biased_gcn
    explanation = IntegratedGradients(model, n_steps=64)(batch, target=1)
    assert explanation.node_mask.shape == (17, 3)
    for g, graph in enumerate(explanation.to_data_list()):
        # complete per graph: nodes + edges (featured) or nodes alone (featureless, whose node
        # scores are their edges' attributions) sum to the change of the score
        if g == 0:
            total = graph.node_mask.sum() + graph.edge_mask.sum()
        else:
            total = graph.node_mask.sum()
            torch.testing.assert_close(total, graph.edge_mask.sum(), atol=1e-5, rtol=1e-5)
            # a node's share spread evenly over its equal features
            torch.testing.assert_close(
                graph.node_mask, graph.node_mask[:, :1].expand(-1, 3), atol=0, rtol=0
            )
        with torch.no_grad():
            gap = model(Batch.from_data_list([batch[g]]))[0, 1]
        assert abs(float(total) - float(gap - _score_at_baseline(model, batch[g], g))) < 1e-3


def _score_at_baseline(model, graph, g):
    """Score without edges, from zero features (featured graph 0) or the features themselves."""
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    data = Batch.from_data_list([graph])
    if g == 0:
        data.x = torch.zeros_like(data.x)
    set_masks(model, torch.zeros(data.num_edges), data.edge_index, apply_sigmoid=False)
    try:
        with torch.no_grad():
            return model(data)[0, 1]
    finally:
        clear_masks(model)


def test_molecules_with_all_alike_atoms_are_not_featureless(molecules):
    benzene, phenol, _ = molecules.values()
    methane = smiles_to_graph("C")  # one atom: trivially all alike
    batch = Batch.from_data_list([benzene, methane, phenol])
    assert featureless_graphs(batch).tolist() == [False, False, False]
    assert featureless_graphs(benzene).tolist() == [False]


def test_integrated_gradients_chooses_its_steps_per_graph(biased_gcn):
    # the first graph converges at 16 steps (|delta| <= 0.05), the second, strongly curved,
    # needs more: the first keeps its 16-step attributions in a batch with the second (before,
    # the whole batch took 32 steps and the first graph's attributions moved by ~1e-2)
    torch.manual_seed(0)
    model = biased_gcn
    gentle = _ring(5, 40 * torch.randn(5, 3))
    steep = _ring(6, 400 * torch.randn(6, 3))
    explainer = IntegratedGradients(model, rtol=0, atol=0.05)
    alone = explainer(Batch.from_data_list([gentle]), target=0)[0]
    steps_alone = explainer.steps_used
    batched = explainer(Batch.from_data_list([steep, gentle]), target=0)
    _assert_same(alone, batched[1])
    assert float(batched.convergence_delta.abs().max()) < 0.05
    assert explainer.steps_per_sample.tolist() == [32, steps_alone] == [32, 16]
    assert explainer.steps_used == 32


def test_integrated_gradients_recomputes_only_the_graphs_left(biased_gcn):
    # after the first rule only the graphs that have not converged are run again (a batch of
    # them alone: the same numbers, as every graph's attributions are its own); with a callable
    # target, which may depend on the whole batch, the whole batch is
    torch.manual_seed(0)
    model = biased_gcn
    gentle = _ring(5, 40 * torch.randn(5, 3))
    steep = _ring(6, 400 * torch.randn(6, 3))  # as in the test above: 32 steps
    batch = Batch.from_data_list([gentle, steep, gentle.clone(), gentle.clone()])
    seen = []
    handle = model.head.register_forward_hook(lambda m, args, out: seen.append(out.size(0)))
    try:
        explainer = IntegratedGradients(model, rtol=0, atol=0.05)
        explanation = explainer(batch, target=0)
        assert explainer.steps_per_sample.tolist() == [16, 32, 16, 16]
        # the output, 16 steps and the baseline on all four; then 32 steps and the baseline on one
        assert seen[:18] == [4] * 18 and seen[18:] == [1] * 33
        seen.clear()
        whole = IntegratedGradients(model, rtol=0, atol=0.05)(batch, target=lambda out: out[:, 0])
        assert set(seen) == {4}
    finally:
        handle.remove()
    torch.testing.assert_close(whole.node_mask, explanation.node_mask, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(whole.edge_mask, explanation.edge_mask, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(whole.convergence_delta, explanation.convergence_delta)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_an_image_is_explained_alike_alone_and_in_any_batch(method):
    torch.manual_seed(0)
    model = CNN(in_shape=(1, 12, 12), num_classes=3, channels=(4, 6), head="gap").eval()
    images = torch.rand(3, 1, 12, 12)
    explainer = method(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alone = explainer(images[:1], target=0)
        batched = explainer(images, target=0)
        reordered = explainer(images.flip(0), target=0)
    torch.testing.assert_close(batched[:1], alone, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(reordered[-1:], alone, atol=ATOL, rtol=1e-4)


def test_integrated_gradients_chooses_its_steps_per_image():
    torch.manual_seed(0)
    # a curved activation: IG of a bias-free ReLU network is exact at any number of steps
    model = CNN(in_shape=(1, 8, 8), num_classes=2, channels=(4,), head="gap", activation="tanh")
    model.eval()
    gentle, steep = 100 * torch.rand(1, 1, 8, 8), 1000 * torch.rand(1, 1, 8, 8)
    explainer = IntegratedGradients(model, rtol=0, atol=0.05)
    alone = explainer(gentle, target=0)
    batched = explainer(torch.cat([steep, gentle]), target=0)
    torch.testing.assert_close(batched[1:], alone, atol=ATOL, rtol=1e-4)
    assert explainer.steps_per_sample[1] == 16 < explainer.steps_per_sample[0]
