"""Gradient attributions: saliency equals autograd (edge masks included), integrated gradients is
complete per graph and picks its own number of steps, both work on grid models; the 0.1 function
twins and the module gconv.explain.graph warn and give the same results."""

import importlib
import sys
import warnings

import pytest
import torch
from torch import nn
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

from gconv.explain.gradient import IntegratedGradients, Saliency, constant_features
from gconv.layers import MeanReadout


def test_saliency_equals_autograd_and_edge_weight_gradient(make_gcn, graphs):
    torch.manual_seed(0)
    # without normalisation a message is edge_weight * x_j, so the gradient of a message weight
    # (PyG's explain edge mask) equals the gradient of the edge weight
    model, data = make_gcn(normalize=False), graphs
    explanation = Saliency(model, absolute=False)(data, target=2)
    x = data.x.clone().requires_grad_(True)
    edge_weight = torch.ones(data.num_edges, requires_grad=True)
    reference = data.clone()
    reference.x, reference.edge_weight = x, edge_weight
    model(reference)[:, 2].sum().backward()
    torch.testing.assert_close(explanation.node_mask, x.grad)
    torch.testing.assert_close(explanation.edge_mask, edge_weight.grad)
    assert all(module._edge_mask is None for module in (model.conv1, model.conv2))
    assert explanation[1].edge_mask.shape == (4,)
    assert repr(Saliency(model)) == "Saliency(edge_mask=True, absolute=True)"


def _with_biases(model):
    torch.manual_seed(1)
    for conv in (model.conv1, model.conv2):
        nn.init.normal_(conv.bias)  # non-zero biases: the baseline output is not trivial
    nn.init.normal_(model.head.weight)
    return model


def test_integrated_gradients_is_complete_per_graph(gcn, graphs):
    # IG sums to f(input) - f(baseline) per graph; the baseline: zero features and edge weights
    model = _with_biases(gcn)
    data = graphs
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
    assert repr(explainer) == "IntegratedGradients(n_steps=64, baseline='auto')"


def test_integrated_gradients_chooses_its_steps_or_warns(gcn, graphs):
    model = _with_biases(gcn)
    data = graphs
    data.x = 3 * data.x
    explainer = IntegratedGradients(model, rtol=0, atol=1e-3)
    explainer(data, target=1)
    assert explainer.convergence_delta.abs().max() < 1e-3 and explainer.steps_used >= 16
    coarse = IntegratedGradients(model, n_steps=2)
    coarse(data, target=1)
    with pytest.warns(RuntimeWarning, match="did not converge.*after 3 steps"):
        IntegratedGradients(model, rtol=0, atol=1e-12, max_steps=3)(data, target=1)
    assert coarse.convergence_delta.abs().max() > explainer.convergence_delta.abs().max()


def test_integrated_gradients_tolerance_is_relative_to_the_score_change(gcn, graphs):
    # the steps follow |delta| <= atol + rtol |f(x) - f(baseline)|: a model whose scores are
    # 1000 times larger (a classifier's confident logits) takes the same steps, not max_steps
    model = _with_biases(gcn)
    data = graphs
    data.x = 3 * data.x
    small = IntegratedGradients(model, rtol=1e-3, atol=0)
    small(data, target=1)
    with torch.no_grad():
        model.head.weight.mul_(1000)
        model.head.bias.mul_(1000)
    large = IntegratedGradients(model, rtol=1e-3, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # converges: no warning
        explanation = large(data, target=1)
    assert torch.equal(large.steps_per_sample, small.steps_per_sample)
    torch.testing.assert_close(
        large.convergence_delta, 1000 * small.convergence_delta, rtol=0.01, atol=1e-3
    )
    with torch.no_grad():
        gap = model(data)[:, 1] - _zero_baseline_scores(model, data)
    assert bool((explanation.convergence_delta.abs() <= 1e-3 * gap.abs()).all())
    # an absolute tolerance of the old default (0.05) would not be reached at these scales
    with pytest.warns(RuntimeWarning, match="did not converge.*allowed: 0.05 \\+ 0 x"):
        IntegratedGradients(model, rtol=0, atol=0.05, max_steps=32)(data, target=1)


def test_integrated_gradients_tolerance_floor_for_an_unchanged_score(gcn, graphs):
    # a score that does not move from the baseline: the floor atol decides (rtol alone would
    # ask for an exact zero)
    model = _with_biases(gcn)
    with torch.no_grad():
        model.head.weight.zero_()
    explainer = IntegratedGradients(model, rtol=0.01, atol=1e-6)
    explanation = explainer(graphs, target=1)
    assert explainer.steps_used == 16 and explanation.node_mask.abs().max() == 0
    with pytest.raises(ValueError, match="rtol must be a number >= 0, got -1"):
        IntegratedGradients(model, rtol=-1)


def _zero_baseline_scores(model, data):
    baseline = data.clone()
    baseline.x = torch.zeros_like(data.x)
    set_masks(model, torch.zeros(data.num_edges), data.edge_index, apply_sigmoid=False)
    try:
        return model(baseline)[:, 1]
    finally:
        clear_masks(model)


def test_integrated_gradients_on_constant_features_walks_the_edges(gcn, graphs):
    model = _with_biases(gcn)
    data = graphs
    data.x = torch.ones_like(data.x)  # structure only
    assert constant_features(data) and not constant_features(data.x)
    explanation = IntegratedGradients(model, n_steps=64)(data, target=0)
    # [N, F] for every graph (the node's share spread evenly over its equal features), so a
    # featureless graph has the shape of a featured one in the same batch
    assert explanation.node_mask.shape == (7, 3)
    # every edge's attribution is shared by its two end nodes: nodes and edges sum alike
    torch.testing.assert_close(
        explanation.node_mask.sum(), explanation.edge_mask.sum(), atol=1e-5, rtol=1e-5
    )
    with torch.no_grad():
        full = model(data)[:, 0]
        set_masks(model, torch.zeros(data.num_edges), data.edge_index, apply_sigmoid=False)
        no_edges = model(data)[:, 0]
        clear_masks(model)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask.sum(dim=-1))
    torch.testing.assert_close(per_graph, full - no_edges, atol=1e-3, rtol=1e-3)
    zero = IntegratedGradients(model, n_steps=8, baseline="zero")(data, target=0)
    assert zero.node_mask.shape == (7, 3)


class LinearGraph(nn.Module):  # y = head(mean_n(x_n)): IG is exact, x * w / |V|
    def __init__(self):
        super().__init__()
        self.readout, self.head = MeanReadout(), nn.Linear(3, 2)

    def forward(self, data):
        return self.head(self.readout(data.x, data.batch, size=data.num_graphs))


def test_integrated_gradients_of_a_linear_model_is_input_times_weight(graphs):
    torch.manual_seed(0)
    model, data = LinearGraph(), graphs
    explanation = IntegratedGradients(model, n_steps=8)(data, target=0)
    sizes = torch.tensor([4.0] * 4 + [3.0] * 3)[:, None]
    torch.testing.assert_close(explanation.node_mask, data.x * model.head.weight[0] / sizes)
    assert "edge_mask" not in explanation  # no message passing: no edge attribution
    with pytest.raises(ValueError, match="baseline must be 'auto', 'zero', 'empty', a number"):
        IntegratedGradients(model, baseline="mean")


def test_grid_saliency_and_integrated_gradients(make_grid_model):
    torch.manual_seed(0)
    grid_model, images = make_grid_model(), torch.rand(2, 1, 6, 6)
    maps = Saliency(grid_model)(images, target=1)
    images_grad = images.clone().requires_grad_(True)
    grid_model(images_grad)[:, 1].sum().backward()
    torch.testing.assert_close(maps, images_grad.grad.abs()[:, 0])
    explainer = IntegratedGradients(grid_model)
    ig = explainer(images, target=1)
    with torch.no_grad():
        gap = grid_model(images)[:, 1] - grid_model(torch.zeros_like(images))[:, 1]
    torch.testing.assert_close(ig.sum(dim=(1, 2)), gap, atol=0.05, rtol=0)
    assert explainer.convergence_delta.abs().max() < 0.05


def test_gradient_attributions_need_float_features(gcn, graphs):
    graphs.x = graphs.x.long()
    with pytest.raises(TypeError, match="need float node features .* got dtype torch.int64"):
        Saliency(gcn)(graphs)


# ---------------------------------------------------------------------------------------------
# deprecated 0.1 names: they warn, name the new one and give the same results
# ---------------------------------------------------------------------------------------------
def test_saliency_function_is_a_deprecated_alias(make_gcn, graphs, make_grid_model):
    from gconv.explain import saliency

    torch.manual_seed(0)
    model = make_gcn(normalize=False)
    with pytest.warns(
        DeprecationWarning,
        match=r"gconv.explain.saliency is deprecated .* use gconv.explain.Saliency\(model",
    ):
        old = saliency(model, graphs, target=2, absolute=False)
    new = Saliency(model, absolute=False)(graphs, target=2)
    torch.testing.assert_close(old.node_mask, new.node_mask)
    torch.testing.assert_close(old.edge_mask, new.edge_mask)
    grid_model, images = make_grid_model(), torch.rand(2, 1, 6, 6)
    with pytest.warns(DeprecationWarning, match="Saliency"):
        old_maps = saliency(grid_model, images, 1, edge_mask=False)
    torch.testing.assert_close(old_maps, Saliency(grid_model, edge_mask=False)(images, 1))


def test_integrated_gradients_function_is_a_deprecated_alias(gcn, graphs):
    from gconv.explain import integrated_gradients

    with pytest.warns(
        DeprecationWarning,
        match=r"gconv.explain.integrated_gradients is deprecated .* "
        r"use gconv.explain.IntegratedGradients\(model",
    ):
        old = integrated_gradients(gcn, graphs, target=1, n_steps=8, baseline="zero")
    new = IntegratedGradients(gcn, n_steps=8, baseline="zero")(graphs, target=1)
    torch.testing.assert_close(old.node_mask, new.node_mask)
    torch.testing.assert_close(old.edge_mask, new.edge_mask)
    torch.testing.assert_close(old.convergence_delta, new.convergence_delta)


def test_graph_module_is_a_deprecated_alias_of_gradient(monkeypatch):
    import gconv.explain
    from gconv.explain import gradient

    monkeypatch.delitem(sys.modules, "gconv.explain.graph", raising=False)
    with pytest.warns(
        DeprecationWarning,
        match="gconv.explain.graph is deprecated .* use gconv.explain.gradient instead",
    ):
        graph = importlib.import_module("gconv.explain.graph")
    for name in graph.__all__:
        assert getattr(graph, name) is getattr(gradient, name)
    assert set(graph.__all__) == {
        "Saliency",
        "IntegratedGradients",
        "saliency",
        "integrated_gradients",
        "constant_features",
    }
    monkeypatch.delattr(gconv.explain, "graph", raising=False)
    with pytest.warns(DeprecationWarning, match="use gconv.explain.gradient instead"):
        assert gconv.explain.graph is gradient  # the package attribute, before any import
