"""Smoke test of examples/resnet_vs_plain.py: same depth, both models trained, one plot."""

import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resnet_vs_plain.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("resnet_vs_plain", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_compares_equal_depth_and_writes_the_plot(example, tmp_path):
    argv = ["--seeds", "0", "1", "--epochs", "1", "--limit", "32", "--blocks", "1"]
    metrics = example.main([*argv, "--batch-size", "16", "--out", str(tmp_path)])
    plain, residual = metrics["models"]["plain"], metrics["models"]["residual"]
    assert plain["conv_layers"] == residual["conv_layers"] == 6  # 3 stages x 2 convs
    assert residual["params"] > plain["params"]  # the 1x1 projections
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["runs"]["residual"]) == {"0", "1"}
    # per seed, in --seeds order, for benchmarks/reproduce.py
    assert residual["test_acc_per_seed"] == [saved["runs"]["residual"][s]["test_acc"] for s in "01"]
    assert len(plain["final_train_loss_per_seed"]) == 2
    assert "| residual | 6 |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000


def test_rejects_bad_arguments(example):
    with pytest.raises(SystemExit):
        example.parse_args(["--blocks", "0"])
