"""benchmarks/bench_readout.py: the readout table's rule, on hand-made runs (validation RMSE per
seed): atomwise is not worse where its mean paired difference from norm is at most one sd of the
differences above zero, worse where it is more."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_readout", ROOT / "benchmarks" / "bench_readout.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_not_worse_is_decided_on_paired_validation_differences(tmp_path):
    runs = {  # (set, method) -> val RMSE of seeds 0, 1, 2
        ("tpsa", "gconv_norm"): [1.0, 1.2, 1.1],
        ("tpsa", "gconv_atomwise"): [1.1, 1.1, 1.2],  # differences +0.1 -0.1 +0.1: within noise
        ("clogp", "gconv_norm"): [0.8, 0.9, 0.85],
        ("clogp", "gconv_atomwise"): [1.0, 1.11, 1.04],  # +0.2 +0.21 +0.19: worse
    }
    with open(tmp_path / "results.jsonl", "w") as f:
        for (name, method), values in runs.items():
            for seed, value in enumerate(values):
                record = {"set": name, "seed": seed, "method": method, "val_rmse": value,
                          "test_rmse": value + 1}  # fmt: skip
                f.write(json.dumps(record) + "\n")
    table = _bench().collect(tmp_path)
    assert table["tpsa"]["difference"]["mean"] == pytest.approx(0.1 / 3)
    assert table["tpsa"]["difference"]["sd"] == pytest.approx(0.11547, abs=1e-5)
    assert table["tpsa"]["atomwise_not_worse"] is True
    assert table["clogp"]["difference"]["mean"] == pytest.approx(0.2)
    assert table["clogp"]["atomwise_not_worse"] is False
    assert table["clogp"]["norm"]["test_rmse"]["mean"] == pytest.approx(1.85)
    text = _bench().render({k: table[k] for k in ("tpsa", "clogp")}, "here")
    assert "| tpsa | 1.100 ± 0.100 (n=3) | 1.133 ± 0.058 (n=3) | +0.033 ± 0.115 | yes |" in text
    assert "| clogp |" in text and "| +0.200 ± 0.010 | no |" in text
