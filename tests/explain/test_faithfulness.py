"""Deletion / insertion curves against hand computations on linear models, exact attribution
beats random order, and the model-randomisation check."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn
from torch_geometric.data import Batch, Data

from gconv.explain.faithfulness import (
    faithfulness_report,
    graph_curve,
    image_curve,
    model_randomization_check,
    random_importance,
    randomize_model,
)
from gconv.layers import MeanReadout, SumReadout


@pytest.fixture
def linear_image_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        model[1].weight.uniform_(0.0, 1.0)  # every pixel pushes class 0 up: importance = w * x
        model[1].bias.zero_()
    return model


def test_deletion_curve_of_linear_model_matches_hand_computation(linear_image_model):
    images = torch.rand(2, 1, 4, 4)
    contributions = (images.flatten(1) * linear_image_model[1].weight[0]).detach()
    importance = contributions.view(2, 4, 4)
    curve = image_curve(linear_image_model, images, importance, target=0, steps=4, score="raw")
    # 4 pixels leave per step, most important first: the score is what is left
    sorted_contrib = contributions.sort(dim=1, descending=True).values
    expected = torch.stack([sorted_contrib[:, 4 * k :].sum(dim=1) for k in range(5)], dim=1)
    torch.testing.assert_close(curve.scores, expected)
    torch.testing.assert_close(curve.fractions, torch.linspace(0, 1, 5))
    torch.testing.assert_close(curve.auc, torch.trapezoid(expected, dx=0.25, dim=1))


def test_exact_attribution_beats_random(linear_image_model):
    torch.manual_seed(3)
    images = torch.rand(8, 1, 4, 4)
    importance = (images.flatten(1) * linear_image_model[1].weight[0]).view(8, 4, 4).detach()
    report = faithfulness_report(
        linear_image_model, images, importance, target=0, seed=0, steps=16, score="raw"
    )
    assert report["deletion_auc"] < report["deletion_auc_random"]
    assert report["insertion_auc"] > report["insertion_auc_random"]
    # insertion of the exact order is the mirror image of deletion: their AUCs sum to the score
    total = linear_image_model(images)[:, 0].mean().item()
    assert report["deletion_auc"] + report["insertion_auc"] == pytest.approx(total, rel=1e-5)


def test_softmax_score_and_baseline_value(linear_image_model):
    images = torch.rand(3, 1, 4, 4)
    curve = image_curve(linear_image_model, images, torch.rand(3, 4, 4), steps=2, baseline=0.5)
    filled = torch.full_like(images, 0.5)
    probs = linear_image_model(filled).softmax(-1)
    predicted = linear_image_model(images).argmax(-1)
    torch.testing.assert_close(curve.scores[:, -1], probs[torch.arange(3), predicted])


def test_image_curve_bad_input(linear_image_model):
    images = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="one importance map per image"):
        image_curve(linear_image_model, images, torch.rand(2, 2, 2))
    with pytest.raises(ValueError, match="mode must be 'deletion' or 'insertion'"):
        image_curve(linear_image_model, images, torch.rand(2, 4, 4), mode="removal")
    with pytest.raises(ValueError, match="class index out of range"):
        image_curve(linear_image_model, images, torch.rand(2, 4, 4), target=5)


class LinearGraphModel(nn.Module):
    def __init__(self, readout):
        super().__init__()
        self.readout, self.head = readout, nn.Linear(2, 1)

    def forward(self, data):
        return self.head(self.readout(data.x, data.batch, size=data.num_graphs))


def _graphs():
    torch.manual_seed(0)
    return Batch.from_data_list(
        [
            Data(x=torch.rand(4, 2), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]])),
            Data(x=torch.rand(2, 2), edge_index=torch.tensor([[0], [1]])),
        ]
    )


def test_graph_deletion_zero_and_remove():
    torch.manual_seed(0)
    model = LinearGraphModel(SumReadout())
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.head.bias.zero_()
    data = _graphs()
    importance = data.x @ torch.tensor([1.0, 2.0])  # exact per-node contribution
    zero = graph_curve(
        model, data, importance, mode="deletion", steps=2, node_removal="zero", score="raw"
    )
    removed = graph_curve(model, data, importance, steps=2, node_removal="remove", score="raw")
    # graph 0: 2 nodes per step; graph 1: 1 node per step; sum readout ignores edges
    expected = []
    for g, per_step in ((0, 2), (1, 1)):
        contrib = importance[data.batch == g].sort(descending=True).values
        expected.append([contrib[per_step * k :].sum() for k in range(3)])
    torch.testing.assert_close(zero.scores, torch.tensor(expected))
    torch.testing.assert_close(removed.scores, zero.scores)
    shuffled = random_importance(importance, seed=1)
    random_curve = graph_curve(model, data, shuffled, steps=2, node_removal="zero", score="raw")
    assert zero.mean_auc <= random_curve.mean_auc
    # "mean": a removed node takes the fill features, so it still adds fill . w to the sum
    fill = torch.tensor([0.5, -1.0])
    mean = graph_curve(
        model, data, importance, steps=2, node_removal="mean", fill=fill, score="raw"
    )
    fill_score = float(fill @ torch.tensor([1.0, 2.0]))
    expected_mean = []
    for g, per_step in ((0, 2), (1, 1)):
        contrib = importance[data.batch == g].sort(descending=True).values
        expected_mean.append(
            [contrib[per_step * k :].sum() + per_step * k * fill_score for k in range(3)]
        )
    torch.testing.assert_close(mean.scores, torch.tensor(expected_mean))
    default_fill = graph_curve(model, data, importance, steps=2, node_removal="mean", score="raw")
    batch_mean_score = float(data.x.mean(0) @ torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(
        default_fill.scores[:, -1], torch.tensor([4.0, 2.0]) * batch_mean_score
    )
    with pytest.raises(ValueError, match=r"fill features of shape \(2,\)"):
        graph_curve(model, data, importance, node_removal="mean", fill=torch.zeros(3))


def test_graph_remove_differs_from_zero_for_mean_readout():
    model, data = LinearGraphModel(MeanReadout()), _graphs()
    importance = torch.arange(6.0)
    zero = graph_curve(model, data, importance, steps=2, node_removal="zero", score="raw")
    removed = graph_curve(model, data, importance, steps=2, node_removal="remove", score="raw")
    # after removing half the nodes, the mean is over the rest rather than diluted by zeros
    keep0 = data.x[[1, 0]].mean(0)  # graph 0: nodes 3, 2 (most important) removed
    torch.testing.assert_close(removed.scores[0, 1], model.head(keep0)[0])
    assert not torch.allclose(removed.scores[0, 1], zero.scores[0, 1])
    with pytest.raises(ValueError, match="node_removal must be 'mean', 'zero' or 'remove'"):
        graph_curve(model, data, importance, node_removal="drop")
    with pytest.raises(ValueError, match="one importance value per node"):
        graph_curve(model, data, torch.ones(5))


def test_randomize_model_is_a_seeded_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(3, 3))
    before = [p.clone() for p in model.parameters()]
    state = torch.random.get_rng_state()
    a, b = randomize_model(model, seed=5), randomize_model(model, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))
    assert not torch.equal(a[0].weight, model[0].weight)


def test_model_randomization_check_spearman(linear_image_model):
    images = torch.rand(4, 1, 4, 4)

    def gradient_times_input(model, x):
        x = x.clone().requires_grad_(True)
        model(x)[:, 0].sum().backward()
        return (x.grad * x).detach()[:, 0]

    result = model_randomization_check(linear_image_model, gradient_times_input, images, seed=0)
    random_model = randomize_model(linear_image_model, seed=0)
    trained = gradient_times_input(linear_image_model, images)
    randomised = gradient_times_input(random_model, images)
    expected = np.mean(
        [
            spearmanr(t.flatten(), r.flatten()).statistic
            for t, r in zip(trained, randomised, strict=True)
        ]
    )
    assert result["spearman"] == pytest.approx(expected)
    assert result["num_undefined"] == 0
    unchanged = model_randomization_check(linear_image_model, lambda m, x: x[:, 0], images)
    assert unchanged["spearman"] == pytest.approx(1.0)  # a model-blind "explanation" fails
    with pytest.raises(ValueError, match="every explanation is constant"):
        model_randomization_check(linear_image_model, lambda m, x: torch.zeros(4, 4, 4), images)


def test_image_curve_does_not_depend_on_batch_size(linear_image_model):
    images, importance = torch.rand(3, 1, 4, 4), torch.rand(3, 4, 4)
    one_step = image_curve(linear_image_model, images, importance, steps=5, batch_size=1)
    all_steps = image_curve(linear_image_model, images, importance, steps=5, batch_size=512)
    torch.testing.assert_close(one_step.scores, all_steps.scores)


def test_model_randomisation_is_a_deprecated_name(linear_image_model):
    import gconv.explain
    from gconv.explain import faithfulness

    images = torch.rand(4, 1, 4, 4)

    def explain(model, x):
        return (model[1].weight[0].view(1, 4, 4) * x[:, 0]).detach()

    new = model_randomization_check(linear_image_model, explain, images, seed=2)
    for module in (faithfulness, gconv.explain):
        with pytest.warns(
            DeprecationWarning,
            match=rf"{module.__name__}.model_randomisation is deprecated .* use "
            r"gconv.explain.faithfulness.model_randomization_check instead",
        ):
            old = module.model_randomisation
        assert old is model_randomization_check
        assert old(linear_image_model, explain, images, seed=2) == new
    with pytest.warns(DeprecationWarning, match="model_randomization_check"):
        from gconv.explain.faithfulness import model_randomisation  # noqa: F401
