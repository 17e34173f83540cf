"""examples/explain_mnist.py and explain_molecule.py: smoke runs on slices of the data (every
artefact written, metrics.json complete), and the full runs against their targets (slow)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
METRIC_KEYS = {
    "deletion_auc",
    "deletion_auc_random",
    "insertion_auc",
    "insertion_auc_random",
    "randomisation_spearman",
}


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    """Tiny models on one thread: intra-op threads only add overhead on a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_explain_mnist_smoke(tmp_path, one_thread):
    example = load_example("explain_mnist")
    args = ["--limit", "200", "--epochs", "1", "--explain", "6", "--steps", "4"]
    metrics = example.main([*args, "--out", str(tmp_path), "--quiet"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    assert METRIC_KEYS <= saved.keys()
    assert saved["grid_cam_max_abs_diff"] < 1e-4  # the grid GNN's graph CAM is the CNN's CAM
    for name in ("cam.png", "grid_cam.png", "feature_maps.png", "filters.png", "weights.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "deletion.png").stat().st_size > 0
    assert (tmp_path / "predictions.png").stat().st_size > 0


def test_explain_molecule_smoke(tmp_path, one_thread):
    example = load_example("explain_molecule")
    args = ["--limit", "120", "--epochs", "1", "--explain", "6", "--draw", "2", "--steps", "3"]
    metrics = example.main([*args, "--hidden", "16", "--out", str(tmp_path), "--quiet"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    assert METRIC_KEYS <= saved.keys()
    assert saved["ig_convergence_delta"] < 0.05  # steps chosen until it is
    assert {"mean", "zero", "removed"} == {
        key.split("_")[3] for key in saved if key.startswith("full_deletion_prediction")
    }
    assert (tmp_path / "molecule_0.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (tmp_path / "molecule_0.svg").read_text()
    for name in ("atoms.png", "deletion.png"):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["explain_mnist", "explain_molecule"])
def test_full_run_meets_targets(tmp_path, name):
    metrics = load_example(name).main(["--out", str(tmp_path), "--quiet"])
    assert metrics["deletion_auc"] < metrics["deletion_auc_random"]
    assert metrics["insertion_auc"] > metrics["insertion_auc_random"]
    assert abs(metrics["randomisation_spearman"]) < 0.5
    if name == "explain_molecule":  # the deletion curve falls; its baseline is near the mean
        assert metrics["deletion_curve_min"] < metrics["deletion_curve_start"] - 0.5
        removed = abs(metrics["full_deletion_prediction_removed_atoms"])
        assert removed < 0.5 and removed < abs(metrics["full_deletion_prediction_zero_atoms"])
