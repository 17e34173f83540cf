"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from gconv.train.metrics import accuracy, get_metric, higher_is_better, mae, r2, rmse, roc_auc


def test_accuracy_multiclass_and_binary():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 2, 2])) == 0.75
    assert accuracy(
        torch.tensor([[1.0], [-2.0], [0.5]]), torch.tensor([[1], [1], [1]])
    ) == pytest.approx(2 / 3)


def test_regression_metrics_ignore_nan_and_average_tasks():
    out = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 5.0]])
    tgt = torch.tensor([[1.0, math.nan], [2.0, 1.0], [5.0, 1.0]])
    # task 0 errors (0, 0, 2); task 1 errors (1, 4) on its two labelled rows
    assert rmse(out, tgt) == pytest.approx((math.sqrt(4 / 3) + math.sqrt(17 / 2)) / 2)
    assert mae(out, tgt) == pytest.approx((2 / 3 + 5 / 2) / 2)
    assert r2(out[:, :1], tgt[:, :1]) == pytest.approx(
        1 - 4 / (((torch.tensor([1.0, 2, 5]) - 8 / 3) ** 2).sum().item())
    )


def test_roc_auc_binary_and_multiclass():
    assert (
        roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8])[:, None], torch.tensor([0.0, 0, 1, 1])[:, None])
        == 0.75
    )
    logits = torch.eye(3).repeat(2, 1)
    assert roc_auc(logits, torch.tensor([0, 1, 2, 0, 1, 2])) == 1.0


def test_lookup_and_direction():
    assert get_metric("rmse") is rmse
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        get_metric("bleu")
    assert higher_is_better("val_accuracy") and not higher_is_better("val_rmse")
    with pytest.raises(ValueError, match="same shape"):
        rmse(torch.zeros(3, 1), torch.zeros(3, 2))


def test_accuracy_with_class_probability_targets():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    soft = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    assert accuracy(logits, soft) == pytest.approx(2 / 3)


def test_r2_leaves_out_tasks_whose_labels_do_not_vary():
    """A constant task has no R² (scikit-learn would report 0.0 or 1.0 and bias the mean)."""
    tgt = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, float("nan")]])
    out = torch.tensor([[1.1, 4.0], [1.9, 6.0], [3.2, 5.0], [3.9, 0.0]])
    assert r2(out, tgt) == pytest.approx(r2(out[:, :1], tgt[:, :1]))
    assert math.isnan(r2(out[:, 1:], tgt[:, 1:]))
    assert math.isnan(r2(out[:1, :1], tgt[:1, :1]))  # one label: undefined too
