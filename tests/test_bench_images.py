"""benchmarks/bench_images.py: a smoke run on a few digits per class writes both tables, and
the accuracy it reports for gconv is `predict`'s on the saved model directory."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_images_writes_accuracy_tables(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "bench_images", ROOT / "benchmarks" / "bench_images.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(
        ["--seeds", "0", "1", "--per-class", "5", "--epochs", "1", "--out", str(tmp_path)]
    )
    assert [run["seed"] for run in result["runs"]] == [0, 1]
    for run in result["runs"]:
        assert 0 <= run["gconv"]["test_accuracy"] <= 1 and run["svm"]["C"] in (1.0, 10.0, 100.0)
    assert json.loads((tmp_path / "images.json").read_text())["seeds"] == [0, 1]
    table = (tmp_path / "images.md").read_text()
    assert "| gconv train (defaults) |" in table and "± " in table
