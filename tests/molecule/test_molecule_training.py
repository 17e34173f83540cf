"""gconv.molecule.training: task types end to end, per-task metrics and their mean, task weights,
class balance, the readout rule, the epochs rule, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from molecule_data import QUICK, molecules, read_csv, write_csv

from gconv.cli import run
from gconv.data import MoleculeDataset
from gconv.molecule import METRICS, UsageError, choose_readout, default_epochs, train


def test_classification_reports_every_metric_per_task_and_their_mean(classification_dir):
    metrics = json.loads((classification_dir / "metrics.json").read_text())
    assert metrics["task_type"] == "classification" and metrics["tasks"] == ["has_o", "has_n"]
    assert set(metrics["test_scores"]) == {"has_o", "has_n"}
    for metric in METRICS["classification"]:
        per_task = [metrics["test_scores"][t][metric] for t in ("has_o", "has_n")]
        defined = [v for v in per_task if v is not None]
        assert metrics[f"test_{metric}"] == pytest.approx(np.mean(defined))
        assert f"val_{metric}" in metrics and f"baseline_fp_{metric}" in metrics
    assert metrics["readout"] == "meanmax" and metrics["readout_additivity_r2"] is None
    assert metrics["target_mean"] is None  # no standardisation of labels
    rows = read_csv(classification_dir / "predictions.csv")
    assert list(rows[0]) == [
        "smiles", "row", "split",
        "has_o_true", "has_o_pred", "has_o_std", "has_n_true", "has_n_pred", "has_n_std", "error",
    ]  # fmt: skip
    assert [int(r["row"]) for r in rows] == list(range(len(molecules())))  # input order
    assert all(0.0 <= float(r["has_o_pred"]) <= 1.0 for r in rows)
    assert sum(r["has_n_true"] == "nan" for r in rows) == 10  # missing labels stay missing


def test_multiclass_writes_class_probabilities(multiclass_dir):
    metrics = json.loads((multiclass_dir / "metrics.json").read_text())
    assert metrics["num_classes"] == 3  # inferred: the largest label + 1
    assert set(metrics["test_scores"]["group"]) == set(METRICS["multiclass"])
    rows = read_csv(multiclass_dir / "predictions.csv")
    probabilities = [[float(r[f"group_class_{k}"]) for k in range(3)] for r in rows]
    assert np.allclose(np.sum(probabilities, axis=1), 1.0, atol=1e-5)
    assert [int(r["group_pred"]) for r in rows] == list(np.argmax(probabilities, axis=1))


def test_regression_writes_the_model_directory_and_the_report(regression_dir):
    metrics = json.loads((regression_dir / "metrics.json").read_text())
    assert {"test_rmse", "test_mae", "test_r2", "val_rmse", "baseline_mean_rmse"} <= set(metrics)
    assert metrics["ensemble"] == 2 and metrics["descriptors"] > 0
    assert (regression_dir / "parity.png").stat().st_size > 0
    for name in ("config.json", "scalers.pt", "model_0/best.pt", "model_1/last.pt"):
        assert (regression_dir / name).is_file()


def test_task_weights_and_class_balance_change_the_loss_only(tmp_path, data_csv):
    common = ["train", "--data-path", str(data_csv), "--target-columns", "has_o", "has_n"]
    common += ["--task-type", "classification", "--no-baselines", *QUICK]
    plain = run([*common, "--output-dir", str(tmp_path / "a")])
    weighted = run([*common, "--output-dir", str(tmp_path / "b"), "--task-weights", "1", "0"])
    balanced = run([*common, "--output-dir", str(tmp_path / "c"), "--class-balance"])
    assert weighted["task_weights"] == [1.0, 0.0] and balanced["class_balance"] is True
    assert plain["n_train"] == weighted["n_train"] == balanced["n_train"]
    preds = [read_csv(tmp_path / d / "predictions.csv") for d in "abc"]
    has_n = [[r["has_n_pred"] for r in p] for p in preds]
    assert has_n[0] != has_n[1] and has_n[0] != has_n[2]  # the weights reached the loss


def test_readout_rule_follows_size_dependence_and_task_type():
    smiles = [f"{'C' * n}{'O' * k}" for n in range(1, 10) for k in range(1, 4)]
    # extensive: 2 per carbon plus 5 per oxygen; intensive: a coin flip per molecule
    extensive = MoleculeDataset(smiles, [2.0 * s.count("C") + 5.0 * s.count("O") for s in smiles])
    coin = np.random.default_rng(0).normal(size=len(smiles))
    intensive = MoleculeDataset(smiles, coin)
    assert choose_readout(extensive)[0] == "atomwise"
    assert choose_readout(intensive)[0] == "meanmax"
    assert choose_readout(extensive, "auto", "classification") == ("meanmax", None)
    assert choose_readout(extensive, "sum") == ("sum", None)


def test_default_epochs_give_small_sets_at_least_1200_steps():
    assert default_epochs(3993, 64) == 100  # TPSA: 63 steps an epoch
    assert default_epochs(813, 64) == 100  # CHEMBL: 13 steps, 1,300 in 100 epochs
    assert default_epochs(160, 64) == 400  # ClogP: 3 steps an epoch
    assert default_epochs(10, 64) == 1200


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"task_type": "classification", "target_columns": ["size"]}, "row 0, column 'size'"),
        ({"task_type": "multiclass", "target_columns": ["group"], "num_classes": 2}, "from 0 to 1"),
        ({"target_columns": ["has_o", "has_n"], "task_weights": [1.0]}, "one weight per target"),
        ({"target_columns": ["size"], "class_balance": True}, "--class-balance needs"),
        ({"target_columns": ["nope"]}, "no column(s) ['nope']"),
        ({"target_columns": ["size"], "split_sizes": (0.5, 0.5, 0.5)}, "--split-sizes"),
        ({"target_columns": ["size"], "splits_column": "nope"}, "no split column 'nope'"),
        ({"target_columns": ["size"], "epochs": 0}, "--epochs must be >= 1, got 0"),
        ({"target_columns": ["size"], "task_weights": [-1.0]}, "--task-weights must be"),
        ({"target_columns": None}, "--data-path needs --target-columns"),
    ],
)
def test_bad_options_and_data_are_usage_errors(tmp_path, data_csv, kwargs, expected):
    with pytest.raises(UsageError) as info:
        train(data_csv, output_dir=tmp_path, quiet=True, split="random", **kwargs)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_task_without_training_labels_is_refused(tmp_path):
    rows = molecules()
    for i, row in enumerate(rows):
        row["split"] = "train" if i < 40 else "val" if i < 45 else "test"
        row["late"] = "1" if i >= 40 else ""
    path = write_csv(tmp_path / "late.csv", rows)
    with pytest.raises(UsageError, match=r"target column 'late' has no labels in the train split"):
        train(path, target_columns=["size", "late"], splits_column="split", output_dir=tmp_path)


def test_embedded_sets_are_regression_only():
    with pytest.raises(UsageError, match="embedded sets are regression sets"):
        train(task_type="classification")
