"""The README's result tables are the ones benchmarks/reproduce.py renders from results.json.

Every row that ``reproduce.tables()`` makes from ``benchmarks/results.json`` must appear in
README.md verbatim, so a figure in those sections is one that the script measured (mean ± sd over
the recorded seeds or runs), not a number typed in by hand. Sections without an entry in
results.json are covered otherwise: the molecule table must equal the one
``benchmarks/bench_molecules.py`` wrote to ``benchmarks/results/molecules.md``.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results.json"


def load_reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text())


def test_every_rendered_row_is_in_the_readme(results):
    readme = README.read_text()
    rendered = load_reproduce().tables(results)
    # the MNIST, grid-vs-CNN, faithfulness and ResNet sections and the speed benchmarks
    assert {
        "mnist",
        "compare",
        "explain_mnist",
        "explain_molecule",
        "resnet_vs_plain",
        "bench_trainer",
        "bench_grid",
        "bench_featurize",
    } <= set(rendered)
    missing = [row for rows in rendered.values() for row in rows if row not in readme]
    assert not missing, "README rows not as benchmarks/results.json renders them:\n" + "\n".join(
        missing
    )


def test_results_are_distributions_with_provenance(results):
    for name, entry in results.items():
        assert len(entry["seeds"]) >= 3, name
        assert entry["machine"]["torch"], name
        for variant, figures in entry["variants"].items():
            assert figures["date"], (name, variant)
            for key, stat in figures.items():
                if not isinstance(stat, dict):  # args, date, load averages
                    continue
                values = [v for v in stat["values"] if not math.isnan(v)]
                if not values:
                    continue
                assert stat["min"] == min(values) and stat["max"] == max(values), (
                    name,
                    variant,
                    key,
                )
                assert stat["mean"] == pytest.approx(sum(values) / len(values)), (name, key)


def test_summary_statistics():
    reproduce = load_reproduce()
    stat = reproduce.summarise([0.99, 0.995, 0.992, math.nan])
    assert stat["mean"] == pytest.approx(0.9923333333)
    assert stat["sd"] == pytest.approx(0.0025166115)  # sample sd (n - 1)
    assert (stat["min"], stat["max"]) == (0.99, 0.995) and len(stat["values"]) == 4
    assert reproduce.pct(stat) == "99.23 ± 0.25 %"
    ratios = reproduce.summarise([0.62, 0.70, 0.66])
    assert reproduce.spread(ratios, unit="x") == "0.66 ± 0.04x (0.62–0.70)"


def test_update_readme_replaces_each_table_row_and_provenance_line():
    reproduce = load_reproduce()
    readme = "\n".join(
        [
            "intro 1.5 stays",
            "| model | acc |",
            "| cnn (lecture CNN) | 97.43 ± 0.12 % |",
            "| gcn | 82.67 ± 1.55 % |",
            "Measured with `python benchmarks/reproduce.py --only compare` on 2026-11-25: x.",
            "  Measured with `python benchmarks/reproduce.py --only other` on 2026-11-25: x.",
        ]
    )
    rendered = {
        "compare": [
            "| model | acc |",
            "| cnn (lecture CNN) | 97.07 ± 0.51 % |",
            "| gcn | 82.67 ± 1.55 % |",
            "",
            "Measured with `python benchmarks/reproduce.py --only compare` on 2026-11-26: y.",
        ],
        "other": ["Measured with `python benchmarks/reproduce.py --only other` on 2026-11-26: z."],
        "new": ["| a new table's row | 1 |"],
    }
    text, unplaced = reproduce.update_readme(readme, rendered)
    assert text.split("\n") == [
        "intro 1.5 stays",
        "| model | acc |",
        "| cnn (lecture CNN) | 97.07 ± 0.51 % |",
        "| gcn | 82.67 ± 1.55 % |",
        "Measured with `python benchmarks/reproduce.py --only compare` on 2026-11-26: y.",
        "  Measured with `python benchmarks/reproduce.py --only other` on 2026-11-26: z.",
    ]
    assert unplaced == ["| a new table's row | 1 |"]


def test_molecule_table_is_the_one_bench_molecules_wrote():
    """The molecules section quotes benchmarks/results/molecules.md (written by
    benchmarks/bench_molecules.py, mean ± sd over its seeds) row for row."""
    written = (ROOT / "benchmarks" / "results" / "molecules.md").read_text().splitlines()
    rows = [line for line in written if line.startswith("|")]
    assert len(rows) >= 6  # header, rule, ridge, lightgbm, chemprop, gconv
    readme = README.read_text().splitlines()
    missing = [row for row in rows if row not in readme]
    assert not missing, "README molecule rows differ from molecules.md:\n" + "\n".join(missing)
