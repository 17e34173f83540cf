"""benchmarks/bench_molecules.py's task sets: the labels follow the rules its docstring fixes, and
every method is scored by the same function (the README's AUROC / RMSE are only as good as
these)."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_molecules.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_molecules", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chembl_labels_are_pic50_cut_at_6_and_7(bench):
    from gconv.data import chembl_pic50

    pic50 = chembl_pic50().y[:, 0].numpy()
    active = bench.load_task_set("chembl_active")
    potency = bench.load_task_set("chembl_potency")
    assert active.target_names == ["active"] and potency.target_names == ["potency"]
    assert np.array_equal(active.y[:, 0].numpy(), (pic50 >= 7).astype(np.float32))
    expected = np.where(pic50 >= 7, 2, np.where(pic50 >= 6, 1, 0))
    assert np.array_equal(potency.y[:, 0].numpy(), expected.astype(np.float32))
    assert np.bincount(expected).tolist() == [328, 336, 353]


def test_nci_props_is_seeded_with_missing_labels(bench):
    data = bench.load_task_set("nci_props")
    again = bench.load_task_set("nci_props")
    y = data.y.numpy()
    assert data.target_names == ["tpsa", "clogp", "cmr"] and len(data) == 200
    assert np.array_equal(np.isnan(y), np.isnan(again.y.numpy()))  # the same cells every time
    assert (~np.isnan(y)).any(axis=1).all()  # every molecule keeps a label
    missing = np.isnan(y).mean(axis=0)
    assert ((missing > 0.15) & (missing < 0.4)).all(), missing


def test_write_task_split(bench, tmp_path):
    path = bench.write_task_split("chembl_potency", 0, tmp_path)
    data = bench.read_task_split(path, ("potency",))
    assert sum(len(s) for s, _ in data.values()) == 1017
    assert set(np.unique(np.concatenate([y for _, y in data.values()]))) == {0.0, 1.0, 2.0}
    first = path.read_text().splitlines()[1].split(",")
    assert first[1] in {"0", "1", "2"}  # classes as integers, as chemprop reads them


def test_task_scores_binary_multiclass_and_missing(bench):
    y = np.array([[0.0], [1.0], [1.0], [0.0], [1.0]])
    p = np.array([[0.1], [0.8], [0.3], [0.4], [0.9]])
    scores = bench.task_scores("classification", ("a",), y, p)
    assert scores["test_auroc"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))

    labels = np.array([[0.0], [1.0], [2.0], [1.0], [0.0], [2.0]])
    probs = np.random.default_rng(0).random((6, 1, 3))
    rounded = probs / probs.sum(axis=2, keepdims=True)
    expected = roc_auc_score(labels[:, 0], rounded[:, 0], multi_class="ovr", average="macro")
    # probabilities that do not quite sum to one (chemprop's rounded strings) are normalised
    assert bench.task_scores("multiclass", ("c",), labels, probs)["test_auroc"] == pytest.approx(
        expected
    )

    y = np.array([[1.0, np.nan], [2.0, 4.0], [np.nan, 6.0]])
    p = np.array([[1.5, 9.0], [2.0, 5.0], [7.0, 6.0]])
    scores = bench.task_scores("regression", ("u", "v"), y, p)
    assert scores["test_rmse_per_task"] == pytest.approx(
        {"u": math.sqrt(0.125), "v": math.sqrt(0.5)}
    )
    assert scores["test_rmse"] == pytest.approx((math.sqrt(0.125) + math.sqrt(0.5)) / 2)


def test_task_summary_and_tables(bench):
    rows = []
    for seed, (ours, theirs, norm) in enumerate([(0.9, 0.8, 0.85), (0.8, 0.7, 0.75)]):
        common = {"set": "chembl_active", "seed": seed, "seconds": 10.0, "load_before": 1.0}
        common["load_after"] = 3.0
        rows.append(
            {**common, "method": "gconv", "test_auroc": ours, "val_auroc": ours,
             "test_auroc_per_task": {"active": ours}, "test_ece": 0.05,
             "test_ece_uncalibrated": 0.1, "readout": "meanmax"}
        )  # fmt: skip
        rows.append(
            {**common, "method": "chemprop", "test_auroc": theirs,
             "test_auroc_per_task": {"active": theirs}}
        )  # fmt: skip
        rows.append(
            {**common, "method": "gconv_norm", "test_auroc": norm, "val_auroc": norm,
             "test_auroc_per_task": {"active": norm}, "readout": "norm"}
        )  # fmt: skip
    summary = bench.task_summary(rows, ["chembl_active"])
    gconv = summary["methods"]["chembl_active"]["gconv"]
    assert gconv["test_auroc"]["mean"] == pytest.approx(0.85)
    assert gconv["test_auroc"]["sd"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert summary["calibration"]["chembl_active"]["test_ece"]["mean"] == pytest.approx(0.05)
    assert set(summary["readout"]["chembl_active"]) == {"meanmax", "norm"}
    text = bench.task_tables(summary)
    assert "| gconv | 0.850 ± 0.071 (n=2, 10 s) | 10 |" in text
    assert "| chemprop | 0.750 ± 0.071 (n=2, 10 s) | 10 |" in text
    assert "| norm | 0.800 ± 0.071 | 0.800 |" in text
