"""benchmarks/bench_trainer.py: the pipelines run in their own processes and report ratios."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_trainer_times_pipelines_in_worker_processes(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "any_module_name", ROOT / "benchmarks" / "bench_trainer.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # loaded as reproduce.py loads it, not as __main__
    argv = ["--epochs", "1", "--threads", "1", "--pipelines", "trainer_tl", "manual_nhwc"]
    result = bench.main([*argv, "--quiet", "--out", str(tmp_path)])
    assert set(result["ratio"]) == {"reference", "trainer_tl", "manual_nhwc"}
    assert result["ratio"]["reference"] == 1.0
    assert result["ratio"]["trainer_tl"] == pytest.approx(
        result["seconds_per_epoch"]["trainer_tl"] / result["seconds_per_epoch"]["reference"]
    )
    assert result["trainer_over_manual"] == pytest.approx(
        result["seconds_per_epoch"]["trainer_tl"] / result["seconds_per_epoch"]["manual_nhwc"]
    )
    assert all(len(times) == 1 and times[0] > 0 for times in result["epoch_seconds"].values())
    assert result["threads"] == 1
    assert (tmp_path / "bench_trainer.json").is_file()
