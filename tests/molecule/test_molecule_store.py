"""``gconv train`` with the molecules on disk gives the in-memory run's results, bit for bit."""

from __future__ import annotations

import json

import pytest
from molecule_data import QUICK

from gconv.cli import run

SAME = ("test_rmse", "test_r2", "val_rmse", "n_train", "n_val", "n_test", "n_skipped",
        "n_duplicates", "best_epochs", "readout", "readout_additivity_r2", "skipped", "duplicates")  # fmt: skip


def test_embedded_set_on_disk_gives_the_in_memory_predictions(tmp_path):
    """NCI TPSA (8 bad rows, 99 merged duplicates), scaffold split, seed 1: the same split,
    readout, training and predictions with the graphs in memory and in a store read by two
    loader workers; a second run reuses the store."""
    common = ["--dataset", "tpsa", "--limit", "300", "--seed", "1", *QUICK[:-2]]
    common += ["--split", "scaffold", "--store-dir", str(tmp_path / "stores")]
    run(["train", *common, "--store", "memory", "-o", str(tmp_path / "memory")])
    run(["train", *common, "--store", "disk", "--num-workers", "2", "--baselines",
         "-o", str(tmp_path / "disk")])  # fmt: skip
    memory = json.loads((tmp_path / "memory" / "metrics.json").read_text())
    disk = json.loads((tmp_path / "disk" / "metrics.json").read_text())
    assert disk["store"] and memory["store"] is None
    for key in SAME:
        assert disk[key] == memory[key], key
    assert disk["baseline_fp_rmse"] == memory["baseline_fp_rmse"]
    assert (tmp_path / "disk" / "predictions.csv").read_bytes() == (
        tmp_path / "memory" / "predictions.csv"
    ).read_bytes()
    stores = list((tmp_path / "stores").iterdir())
    assert len(stores) == 1
    before = (stores[0] / "store.json").stat().st_mtime_ns
    run(["train", *common, "--store", "disk", "--num-workers", "0", "-o", str(tmp_path / "again")])
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test_rmse"] == memory["test_rmse"]
    assert (stores[0] / "store.json").stat().st_mtime_ns == before  # reused, not rewritten


def test_auto_goes_to_disk_from_the_threshold(tmp_path, monkeypatch):
    from molecule_data import molecules, write_csv

    from gconv.data import MoleculeDataset, StoreDataset
    from gconv.molecule import training

    path = write_csv(tmp_path / "mols.csv", molecules())
    small, _ = training.load_data(path, target_columns=["size"], store_dir=tmp_path / "s")
    assert isinstance(small, MoleculeDataset)
    monkeypatch.setattr(training, "STORE_THRESHOLD_ROWS", len(molecules()))
    large, _ = training.load_data(path, target_columns=["size"], store_dir=tmp_path / "s")
    assert isinstance(large, StoreDataset) and large.rows == small.rows
    with pytest.raises(training.UsageError, match="--store must be one of"):
        training.load_data(path, target_columns=["size"], store="ssd")


def test_readout_rule_on_a_sample_is_the_same_on_disk(tmp_path, monkeypatch):
    from molecule_data import molecules, write_csv

    from gconv.molecule import training

    path = write_csv(tmp_path / "mols.csv", molecules())
    memory, _ = training.load_data(path, target_columns=["size"], store="memory")
    disk, _ = training.load_data(path, target_columns=["size"], store="disk", store_dir=tmp_path)
    monkeypatch.setattr(training, "ADDITIVITY_SAMPLE", 40)  # below the set's size: a sample
    assert training.choose_readout(disk) == training.choose_readout(memory)
