"""Trained model directories shared by the molecule-tool tests (data: ``molecule_data.py``).
Models are trained for 3 epochs with width 16: seconds, not accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest
from molecule_data import QUICK, molecules, write_csv

from gconv.cli import run


@pytest.fixture(scope="session")
def data_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "mols.csv", molecules())


def _train(tmp_path_factory, name: str, argv: list[str]) -> Path:
    """Trains into a fresh directory from a copy of the data that is deleted afterwards, so the
    model directory must predict without it."""
    workdir = tmp_path_factory.mktemp(name)
    data = write_csv(workdir / "train.csv", molecules())
    out = workdir / "model"
    run(["train", "--data-path", str(data), "--output-dir", str(out), *QUICK, *argv])
    data.unlink()
    return out


@pytest.fixture(scope="session")
def regression_dir(tmp_path_factory) -> Path:
    """Regression on ``size``: an ensemble of two, with RDKit descriptors."""
    return _train(
        tmp_path_factory,
        "regression",
        ["--target-columns", "size", "--ensemble-size", "2", "--descriptors", "--no-baselines"],
    )


@pytest.fixture(scope="session")
def classification_dir(tmp_path_factory) -> Path:
    """Binary classification, two tasks, missing labels in ``has_n``."""
    return _train(
        tmp_path_factory,
        "classification",
        ["--target-columns", "has_o", "has_n", "--task-type", "classification"],
    )


@pytest.fixture(scope="session")
def multiclass_dir(tmp_path_factory) -> Path:
    """Three classes, one task."""
    return _train(
        tmp_path_factory,
        "multiclass",
        ["--target-columns", "group", "--task-type", "multiclass", "--no-baselines"],
    )


@pytest.fixture(scope="session")
def atomwise_dir(tmp_path_factory) -> Path:
    """Regression on ``size`` with the atomwise readout (the head on every atom) and RDKit
    descriptors (appended to every atom's embedding)."""
    return _train(
        tmp_path_factory,
        "atomwise",
        ["--target-columns", "size", "--readout", "atomwise", "--descriptors", "--no-baselines"],
    )
