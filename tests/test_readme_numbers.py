"""Every figure in README.md and docs/results.md is one that benchmarks/reproduce.py renders.

``docs/results.md`` is rendered whole (``benchmarks/results.template.md`` filled in from
``benchmarks/results.json``, the scripts' constants and the tables ``bench_molecules.py`` and
``bench_explain.py`` keep in ``benchmarks/results/``), and so are the README's generated regions:
the tests render both again and compare, so a number typed in by hand, or left behind when
results.json changed, fails. Outside its generated regions the README quotes no measured figure.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.json"


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text())


def test_docs_are_what_reproduce_renders(reproduce, results):
    stale = reproduce.stale_docs(results)
    assert not stale, (
        "rerun `python benchmarks/reproduce.py --render-only` (and edit the template or "
        "reproduce.py, not the rendered text):\n" + "\n".join(stale.values())
    )


def test_a_hand_edited_figure_is_caught(reproduce, results):
    rendered = reproduce.rendered_docs(results)
    page = rendered[reproduce.RESULTS_PAGE]
    readme = rendered[reproduce.README]
    assert "99.30 ± 0.20 %" in page and "99.30 ± 0.20 %" in readme  # MNIST-5k, as recorded
    edited = {
        reproduce.RESULTS_PAGE: page.replace("99.30 ± 0.20 %", "99.40 ± 0.20 %", 1),
        reproduce.README: readme.replace("99.30 ± 0.20 %", "99.40 ± 0.20 %", 1),
    }
    stale = reproduce.stale_docs(results, edited)
    assert set(stale) == set(edited)
    assert all("99.40" in diff and "99.30" in diff for diff in stale.values())


def test_every_entry_has_a_table_on_the_results_page(reproduce, results):
    page = reproduce.results_page(results)
    rendered = reproduce.tables(results)
    assert set(reproduce.EXAMPLES) <= set(rendered) <= set(reproduce.TABLES)
    for name, rows in rendered.items():
        assert "\n".join(rows) in page, name
    for quoted in (
        reproduce.MOLECULES_TABLE,
        reproduce.EXPLAIN_TABLES,
        reproduce.EXPLAIN_ATOMS_TABLES,
    ):
        assert quoted.read_text().strip() in page, quoted


def _outside_generated_text(text: str) -> str:
    text = re.sub(
        r"<!-- begin reproduce\.py: .*?<!-- end reproduce\.py: [\w-]+ -->", "", text, flags=re.S
    )
    return re.sub(r"```.*?```", "", text, flags=re.S)  # code: the tour's comments, commands


def test_the_readme_quotes_no_figure_by_hand():
    prose = _outside_generated_text((ROOT / "README.md").read_text())
    figures = re.findall(r"±|\d\s?%|\b\d+(?:\.\d+)?x\b|\b\d+(?:\.\d+)?\s?(?:s|ms|min)\b", prose)
    assert not figures, f"README prose quotes figures outside its generated regions: {figures}"


def test_regions_without_a_renderer_are_refused(reproduce, results):
    text = "a\n<!-- begin reproduce.py: nope -->\nold\n<!-- end reproduce.py: nope -->\n"
    with pytest.raises(KeyError, match="nope"):
        reproduce.fill_regions(text, results)
    regions = "".join(
        f"<!-- begin reproduce.py: {name} -->\nold 1.5\n<!-- end reproduce.py: {name} -->\n"
        for name in reproduce.REGIONS
    )
    with pytest.raises(KeyError, match="atom-attributions"):  # every region is required
        reproduce.fill_regions(regions.split("<!-- begin reproduce.py: atom")[0], results)
    filled = reproduce.fill_regions("intro\n" + regions + "end\n", results)
    assert "old 1.5" not in filled and filled.startswith("intro\n") and filled.endswith("\nend\n")
    for name, render in reproduce.REGIONS.items():
        assert "\n".join(render(results)) in filled, name


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


def test_summary_statistics(reproduce):
    stat = reproduce.summarise([0.99, 0.995, 0.992, math.nan])
    assert stat["mean"] == pytest.approx(0.9923333333)
    assert stat["sd"] == pytest.approx(0.0025166115)  # sample sd (n - 1)
    assert (stat["min"], stat["max"]) == (0.99, 0.995) and len(stat["values"]) == 4
    assert reproduce.pct(stat) == "99.23 ± 0.25 %"
    assert reproduce.per_seed(stat) == "99.0 / 99.5 / 99.2 / nan %"
    ratios = reproduce.summarise([0.62, 0.70, 0.66])
    assert reproduce.spread(ratios, unit="x") == "0.66 ± 0.04x (0.62–0.70)"
    assert reproduce.seed_text([0, 1, 2]) == "0–2" and reproduce.seed_text([0, 2, 5]) == "0, 2, 5"


def test_the_one_table_writer(reproduce):
    assert reproduce.table(["model", "acc"], [["cnn", "97.1 %"], ["gcn", ""]], "lr") == [
        "| model | acc |",
        "|---|---:|",
        "| cnn | 97.1 % |",
        "| gcn |  |",
    ]
    with pytest.raises(ValueError, match="2 cells"):
        reproduce.table(["model", "acc"], [["cnn"]], "lr")
    with pytest.raises(ValueError, match="one of"):
        reproduce.table(["model", "acc"], [], "lc")


def test_settings_come_from_the_scripts(reproduce):
    """What reproduce.py runs and quotes is what the scripts define, not a copy."""
    mnist = reproduce.EXAMPLES["mnist"].variants
    assert set(mnist) == {"default"} | set(reproduce.mnist_cnn.MODELS) - {
        reproduce.mnist_cnn.DEFAULTS["model"]
    }
    compare = reproduce.EXAMPLES["compare"]
    assert list(compare.variants) == list(reproduce.compare_grid_vs_cnn.PARTS)
    assert {f"{m}_test_acc" for m in reproduce.compare_grid_vs_cnn.MODELS} <= set(compare.keys)
    trainer = reproduce.EXAMPLES["bench_trainer"].keys
    assert {f"{name}_ratio" for name in reproduce.bench_trainer.PIPELINES} <= set(trainer)
    grid = reproduce.EXAMPLES["bench_grid"].keys
    assert {f"{pair}_speedup" for pair in reproduce.bench_grid.PAIRS} == {
        key for key in grid if key.endswith("_speedup")
    }
