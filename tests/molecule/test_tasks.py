"""gconv.molecule.tasks: losses equal torch's on the labelled entries, predictions and metrics
equal their definitions (scikit-learn), missing labels count nowhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

from gconv.molecule import METRICS, Tasks, UsageError
from gconv.train.losses import masked_mse

NAN = float("nan")


def test_shapes_names_and_round_trip():
    tasks = Tasks(["a", "b"], "multiclass", num_classes=3)
    assert tasks.out_channels == 6 and tasks.num_tasks == 2
    assert Tasks.from_dict(tasks.to_dict()).to_dict() == tasks.to_dict()
    assert repr(tasks) == "Tasks(['a', 'b'], 'multiclass', num_classes=3)"
    assert Tasks(["y"], "classification").num_classes == 2
    assert Tasks(["y"]).out_channels == 1 and Tasks(["y"]).metric_names == METRICS["regression"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((["y"], "ordinal"), "task_type must be one of"),
        (([], "regression"), "at least one task"),
        ((["y", "y"], "regression"), "distinct"),
        ((["y"], "multiclass"), "num_classes >= 2"),
    ],
)
def test_bad_tasks_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        Tasks(*args)


def test_labels_are_checked_naming_row_and_column():
    y = np.array([[0.0, 1.0], [1.0, NAN], [2.0, 0.0]])
    with pytest.raises(UsageError, match=r"row 12, column 'a'.* 0 or 1 .*got 2"):
        Tasks(["a", "b"], "classification").check_labels(y, rows=[10, 11, 12])
    Tasks(["a", "b"], "multiclass", 3).check_labels(y, rows=[0, 1, 2])  # fine
    with pytest.raises(UsageError, match=r"row 2, column 'a'.*from 0 to 1"):
        Tasks(["a", "b"], "multiclass", 2).check_labels(y, rows=[0, 1, 2])
    with pytest.raises(UsageError, match=r"row 0, column 'b'"):
        Tasks(["a", "b"], "multiclass", 3).check_labels(np.array([[0.0, 0.5]]), rows=[0])


def test_regression_loss_is_the_masked_mse_weighted_per_task():
    output = torch.randn(5, 2)
    target = torch.tensor([[1.0, NAN], [0.0, 2.0], [NAN, NAN], [3.0, 1.0], [0.5, NAN]])
    tasks = Tasks(["a", "b"])
    assert torch.allclose(tasks.loss()(output, target), masked_mse(output, target))
    weighted = tasks.loss(task_weights=[1.0, 3.0])(output, target)
    valid = ~target.isnan()
    terms = (output - target.nan_to_num()).pow(2) * torch.tensor([1.0, 3.0])
    assert torch.allclose(weighted, terms[valid].sum() / valid.sum())
    with pytest.raises(ValueError, match="one weight per task"):
        tasks.loss(task_weights=[1.0])


def test_classification_loss_is_bce_on_labelled_entries_with_pos_weight():
    output = torch.randn(6, 2)
    target = torch.tensor([[1.0, 0.0], [0.0, NAN], [1.0, 1.0], [NAN, 0.0], [0.0, 0.0], [1, 1]])
    valid = ~target.isnan()
    tasks = Tasks(["a", "b"], "classification")
    expected = F.binary_cross_entropy_with_logits(output[valid], target[valid])
    assert torch.allclose(tasks.loss()(output, target), expected)
    pos_weight = tasks.balance_weights(target.numpy())
    assert pos_weight.tolist() == pytest.approx([2 / 3, 3 / 2])  # negatives / positives
    full = F.binary_cross_entropy_with_logits(
        output, target.nan_to_num(), pos_weight=pos_weight, reduction="none"
    )
    assert torch.allclose(tasks.loss(class_weights=pos_weight)(output, target), full[valid].mean())


def test_multiclass_loss_is_cross_entropy_per_task_with_class_weights():
    torch.manual_seed(0)
    output = torch.randn(5, 2 * 3)
    target = torch.tensor([[0.0, 2.0], [1.0, NAN], [2.0, 2.0], [NAN, 1.0], [0.0, 0.0]])
    tasks = Tasks(["a", "b"], "multiclass", 3)
    logits = output.view(5, 2, 3)
    valid = ~target.isnan()
    expected = F.cross_entropy(logits[valid], target[valid].long())
    assert torch.allclose(tasks.loss()(output, target), expected)
    weights = tasks.balance_weights(target.numpy())  # [T, C], scikit-learn's "balanced"
    assert weights[0].tolist() == pytest.approx([4 / 6, 4 / 3, 4 / 3])
    per = F.cross_entropy(logits[valid], target[valid].long(), reduction="none")
    per = per * weights[valid.nonzero()[:, 1], target[valid].long()]
    assert torch.allclose(tasks.loss(class_weights=weights)(output, target), per.mean())


def test_a_batch_without_labels_has_zero_loss_and_a_gradient():
    output = torch.randn(3, 2, requires_grad=True)
    loss = Tasks(["a", "b"], "classification").loss()(output, torch.full((3, 2), NAN))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(output.grad, torch.zeros(3, 2))


def test_predictions_average_the_members():
    outputs = torch.tensor([[[1.0], [2.0]], [[3.0], [6.0]]])  # 2 members, 2 molecules
    mean, std = Tasks(["y"]).predictions(outputs)
    assert mean[:, 0].tolist() == [2.0, 4.0] and std[:, 0].tolist() == [1.0, 2.0]
    mean, std = Tasks(["y"], "classification").predictions(outputs)
    assert np.allclose(mean[:, 0], torch.sigmoid(outputs).mean(0)[:, 0].numpy())
    halved, _ = Tasks(["y"], "classification").predictions(outputs, torch.tensor([2.0]))
    assert np.allclose(halved[:, 0], torch.sigmoid(outputs / 2).mean(0)[:, 0].numpy())
    logits = torch.randn(3, 4, 2 * 3)
    mean, std = Tasks(["a", "b"], "multiclass", 3).predictions(logits)
    probs = torch.softmax(logits.view(3, 4, 2, 3).double(), -1)
    assert mean.shape == (4, 2, 3) and np.allclose(mean, probs.mean(0).numpy())
    best = probs.mean(0).argmax(-1, keepdim=True)
    spread = probs.std(0, unbiased=False).gather(-1, best).squeeze(-1)
    assert np.allclose(std, spread.numpy())


def test_scores_match_scikit_learn_per_task_and_their_mean():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(20, 2)).astype(float)
    y[::4, 1] = NAN
    p = rng.random((20, 2))
    scores = Tasks(["a", "b"], "classification").scores(y, p)
    labelled = ~np.isnan(y[:, 1])
    b = scores["per_task"]["b"]
    assert b["auroc"] == pytest.approx(skm.roc_auc_score(y[labelled, 1], p[labelled, 1]))
    assert b["auprc"] == pytest.approx(skm.average_precision_score(y[labelled, 1], p[labelled, 1]))
    label = (p[labelled, 1] >= 0.5).astype(int)
    assert b["mcc"] == pytest.approx(skm.matthews_corrcoef(y[labelled, 1], label))
    assert b["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y[labelled, 1], label)
    )
    assert scores["mean"]["auroc"] == pytest.approx(
        (scores["per_task"]["a"]["auroc"] + b["auroc"]) / 2
    )

    values = rng.normal(size=(10, 1))
    regression = Tasks(["y"]).scores(values, values + 0.5)["mean"]
    assert regression["rmse"] == pytest.approx(0.5) and regression["mae"] == pytest.approx(0.5)

    labels = np.array([[0.0], [1.0], [2.0], [1.0], [0.0], [2.0]])
    probs = rng.dirichlet(np.ones(3), size=6)[:, None, :]
    multiclass = Tasks(["g"], "multiclass", 3).scores(labels, probs)["per_task"]["g"]
    assert multiclass["f1_macro"] == pytest.approx(
        skm.f1_score(labels[:, 0], probs[:, 0].argmax(-1), average="macro")
    )
    assert multiclass["auroc"] == pytest.approx(
        skm.roc_auc_score(labels[:, 0], probs[:, 0], multi_class="ovr")
    )


def test_undefined_metrics_are_none_and_left_out_of_the_mean():
    y = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, NAN]])  # task a: one class only
    scores = Tasks(["a", "b"], "classification").scores(y, np.full((3, 2), 0.7))
    assert scores["per_task"]["a"]["auroc"] is None and scores["per_task"]["a"]["accuracy"] == 1.0
    assert scores["mean"]["auroc"] == scores["per_task"]["b"]["auroc"] == 0.5
    empty = Tasks(["a"]).scores(np.full((2, 1), NAN), np.zeros((2, 1)))
    assert empty["mean"] == {"rmse": None, "mae": None, "r2": None}
