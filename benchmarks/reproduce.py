"""Run the examples and benchmarks over seeds, and render every figure the docs quote.

    python benchmarks/reproduce.py --only mnist            # MNIST-5k: default, lecture CNN, MLP
    python benchmarks/reproduce.py --only bench_trainer bench_grid bench_featurize  # speed ratios
    python benchmarks/reproduce.py                          # every entry below (long: ~45 min)
    python benchmarks/reproduce.py --only compare --variants grid --seeds 0 1 2 3 4
    python benchmarks/reproduce.py --only mnist --variants lecture   # one variant, keep the rest
    python benchmarks/reproduce.py --render-only            # re-render the docs, run nothing
    python benchmarks/reproduce.py --tables                 # print the tables, run nothing
    # one process per seed (side by side), then one entry:
    python benchmarks/reproduce.py --only mnist --seeds 0 --results r0.json   # ... r1, r2
    python benchmarks/reproduce.py --combine r0.json r1.json r2.json

Each script's ``main(argv)`` is run once per seed (``--seed s --quiet``, artefacts in a temporary
folder); every number it reports becomes ``{"mean", "sd", "min", "max", "values"}`` over the seeds
(``sd`` is the sample standard deviation). The results go into ``benchmarks/results.json``, one
entry per script with the machine, the torch version and the seeds, and per variant the date and
the load average before and after (a loaded machine makes the timings, not the accuracies,
slower). ``--only`` replaces just the named entries, so a partial run keeps the others.

From that file (and from ``benchmarks/results/``: ``molecules.md`` and ``molecules_tasks.md`` /
``.json``, which ``bench_molecules.py`` writes, ``explain.md``, the tables ``bench_explain.py``
printed, and ``explain_atoms.md`` / ``.json``, which ``bench_explain.py --part atoms`` writes)
this script renders ``docs/results.md`` whole, from the text of
``benchmarks/results.template.md`` (see :func:`page_fields` for what it may name), and the
generated regions of README.md (between ``<!-- begin reproduce.py: NAME -->`` and
``<!-- end reproduce.py: NAME -->``); a run that writes ``benchmarks/results.json`` re-renders
them, ``--render-only`` does only that. ``tests/test_readme_numbers.py`` renders them again and
compares, so a figure in the docs is always one that this script produced. Settings (model names,
epochs, batch sizes, ...) are imported from the scripts themselves, never copied.

Adding a script is one entry in :data:`EXAMPLES` (the script, its variants, which of its results
to aggregate), one table function in :data:`TABLES` (every table goes through :func:`table`), and
a section of the template that places it. For the timing benchmarks
(``bench_trainer``, ``bench_grid``, ``bench_featurize``) a seed is one run and each figure a ratio
measured inside that run, so the spread over runs is the machine's noise: run them with nothing
else running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import importlib.util
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from gconv.train import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.json"
README = ROOT / "README.md"
RESULTS_PAGE = ROOT / "docs" / "results.md"
MOLECULES_TABLE = ROOT / "benchmarks" / "results" / "molecules.md"  # bench_molecules.py writes it
# and, for its classification / multiclass / multi-task sets, these two (tables, and their figures)
MOLECULE_TASKS_TABLE = ROOT / "benchmarks" / "results" / "molecules_tasks.md"
MOLECULE_TASKS = ROOT / "benchmarks" / "results" / "molecules_tasks.json"
EXPLAIN_TABLES = ROOT / "benchmarks" / "results" / "explain.md"  # bench_explain.py's tables
#: bench_explain.py --part atoms writes both: its tables (quoted whole on the results page) and
#: their numbers (the README's atom table is rendered from them)
EXPLAIN_ATOMS_TABLES = ROOT / "benchmarks" / "results" / "explain_atoms.md"
EXPLAIN_ATOMS = ROOT / "benchmarks" / "results" / "explain_atoms.json"
#: the logP part of the molecule example's default model: the readout ``auto`` picks for logP
#: (``benchmarks/bench_readout.py``); ``bench_explain.py`` stores a part per readout
LOGP_DEFAULT = "logp_atomwise"
#: bench_scale.py's raw runs (``benchmarks/results/scale.md`` tells them apart); the README's
#: larger-than-memory table is rendered from run SCALE_RUN
SCALE_RUNS = ROOT / "benchmarks" / "results" / "scale_1m.json"
SCALE_RUN = "M"
TEMPLATE = ROOT / "benchmarks" / "results.template.md"  # docs/results.md's text
SEEDS = (0, 1, 2)


# ----------------------------------------------------------------------------- the scripts
_MODULES: dict[str, ModuleType] = {}


def script(path: str) -> ModuleType:
    """The module of an example or benchmark script (``examples/`` and ``benchmarks/`` are not
    packages, so it is loaded from its file), imported once: its ``main`` is what runs, its
    constants are what the docs quote."""
    if path not in _MODULES:
        file = ROOT / path
        spec = importlib.util.spec_from_file_location(f"reproduce_{file.stem}", file)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"cannot import {file}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[path] = module
    return _MODULES[path]


mnist_cnn = script("examples/mnist_cnn.py")
compare_grid_vs_cnn = script("examples/compare_grid_vs_cnn.py")
resnet_vs_plain = script("examples/resnet_vs_plain.py")
explain_mnist = script("examples/explain_mnist.py")
explain_molecule = script("examples/explain_molecule.py")
bench_trainer = script("benchmarks/bench_trainer.py")
bench_grid = script("benchmarks/bench_grid.py")
bench_explain = script("benchmarks/bench_explain.py")


class Example(NamedTuple):
    """One script and what to aggregate from its ``main(argv)`` result.

    Args:
        script: path relative to the repository root.
        variants: name -> extra command-line arguments (one run per variant and seed).
        keys: name -> function of ``main``'s returned dict giving one number, or one number per
            seed for a script that loops over the seeds itself.
        seeds_flag: ``"--seed"``: one ``main`` call per seed; ``"--seeds"``: one call with all
            the seeds (the script reports per-seed values).
    """

    script: str
    variants: dict[str, list[str]]
    keys: dict[str, Callable[[dict], float | list[float]]]
    seeds_flag: str = "--seed"
    notes: str = ""


def _get(*path: str) -> Callable[[dict], float | list[float]]:
    """Read ``metrics[path[0]][path[1]]...``; a missing key or ``None`` reads as NaN (not
    measured), so a script that drops a figure does not break the others."""

    def read(metrics: dict) -> float | list[float]:
        value: Any = metrics
        for key in path:
            if not isinstance(value, dict) or value.get(key) is None:
                return math.nan
            value = value[key]
        return [float(v) for v in value] if isinstance(value, list) else float(value)

    return read


def _read_keys(*keys: str) -> dict[str, Callable[[dict], float | list[float]]]:
    return {key: _get(key) for key in keys}


_FAITHFULNESS = ("deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random")

EXAMPLES: dict[str, Example] = {
    "mnist": Example(
        "examples/mnist_cnn.py",
        variants={
            "default": [],
            **{
                model: ["--model", model]
                for model in mnist_cnn.MODELS
                if model != mnist_cnn.DEFAULTS["model"]
            },
        },
        keys=_read_keys("test_acc", "seconds_per_epoch", "train_seconds", "params", "epochs"),
        notes="seed s also draws the 4,000 / 1,000 split of the 5,000 digits",
    ),
    "compare": Example(
        "examples/compare_grid_vs_cnn.py",
        # the pixel grid (five pipelines) and the superpixel graphs, run and kept separately
        variants={part: ["--parts", part] for part in compare_grid_vs_cnn.PARTS},
        seeds_flag="--seeds",  # it trains every model on each seed's split itself
        keys={
            **{
                f"{model}_test_acc": _get("models", model, "test_acc_per_seed")
                for model in compare_grid_vs_cnn.MODELS
            },
            **{
                f"{model}_{key}": _get("models", model, key)
                for model in compare_grid_vs_cnn.MODELS
                for key in ("seconds_per_epoch", "speedup_vs_pyg_naive", "params")
            },
            "superpixels_test_acc": _get("superpixels", "test_acc_per_seed"),
            **{
                f"superpixels_{key}": _get("superpixels", key)
                for key in ("params", "seconds_per_epoch", "mean_nodes")
            },
            "weight_copy_same_predictions": _get("weight_copy_equivalence", "same_predictions"),
            "weight_copy_max_abs_logit_diff": _get("weight_copy_equivalence", "max_abs_logit_diff"),
            "grid_to_cnn_same_predictions": _get("grid_to_cnn_equivalence", "same_predictions"),
            "grid_to_cnn_max_abs_logit_diff": _get("grid_to_cnn_equivalence", "max_abs_logit_diff"),
            "gcn_vs_pyg_max_abs_logit_diff": _get(
                "gcn_vs_pyg_naive_equivalence", "max_abs_logit_diff"
            ),
        },
    ),
    "explain_mnist": Example(
        "examples/explain_mnist.py",
        variants={"default": []},
        keys=_read_keys(
            "test_acc",
            *_FAITHFULNESS,
            "cam_deletion_auc",
            "cam_insertion_auc",
            "randomisation_spearman",
            "grid_cam_max_abs_diff",
        ),
    ),
    "explain_molecule": Example(
        "examples/explain_molecule.py",
        variants={"default": []},
        keys=_read_keys(
            "explained_r2",
            *_FAITHFULNESS,
            "ig_deletion_auc",
            "ig_insertion_auc",
            "randomisation_spearman",
        ),
    ),
    "resnet_vs_plain": Example(
        "examples/resnet_vs_plain.py",
        variants={"default": []},
        seeds_flag="--seeds",  # it trains both models on every seed itself
        keys={
            f"{model}_{key}": _get("models", model, source)
            for model in resnet_vs_plain.MODELS
            for key, source in (
                ("test_acc", "test_acc_per_seed"),
                ("final_train_loss", "final_train_loss_per_seed"),
                ("params", "params"),
                ("conv_layers", "conv_layers"),
                ("seconds_per_epoch", "seconds_per_epoch_median"),
            )
        },
    ),
    # Timing benchmarks: a "seed" is one run (bench_trainer: also the initial weights); each
    # figure is a ratio measured within that run, so its spread over runs is the noise.
    "bench_trainer": Example(
        "benchmarks/bench_trainer.py",
        variants={"default": []},
        keys={
            **{f"{name}_ratio": _get("ratio", name) for name in bench_trainer.PIPELINES},
            **{
                f"{name}_seconds": _get("seconds_per_epoch", name)
                for name in bench_trainer.PIPELINES
            },
            "trainer_over_manual": _get("trainer_over_manual"),
        },
        notes="one run per seed; each run times every pipeline in its own process, interleaved",
    ),
    "bench_grid": Example(
        "benchmarks/bench_grid.py",
        variants={"default": ["--threads", "1", "--batches", "20"]},
        keys={
            f"{pair}_{key}": _get(f"{pair}_{key}")
            for pair in bench_grid.PAIRS
            for key in ("speedup", "reference_s_per_batch", "fast_s_per_batch")
        },
        notes="one run per seed (its weights and its 4,000 training digits)",
    ),
    "bench_featurize": Example(
        "benchmarks/bench_featurize.py",
        variants={"default": []},
        keys=_read_keys("speedup", "pyg_mol_per_s", "gconv_mol_per_s", "cache_mol_per_s"),
        notes="deterministic work: a seed only numbers the run",
    ),
}


# ----------------------------------------------------------------------------- running
def summarise(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample sd, min and max of one number over the seeds (NaNs, e.g. "not measured",
    are left out of the statistics but kept in ``values``)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {"mean": None, "sd": None, "min": None, "max": None, "values": list(values)}
    return {
        "mean": statistics.fmean(finite),
        "sd": statistics.stdev(finite) if len(finite) > 1 else 0.0,
        "min": min(finite),
        "max": max(finite),
        "values": list(values),
    }


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run_example(
    name: str,
    seeds: Sequence[int],
    extra_args: Sequence[str] = (),
    variants: Sequence[str] | None = None,
) -> dict:
    """Run the variants of one entry (all, or the named ones) over ``seeds``; returns its
    results entry, each variant with its own date and load average."""
    example = EXAMPLES[name]
    unknown = set(variants or ()) - set(example.variants)
    if unknown:
        raise ValueError(
            f"{name} has no variant {sorted(unknown)}; expected some of {sorted(example.variants)}"
        )
    import torch

    main = script(example.script).main
    used_threads: set[int] = set()
    entry: dict[str, Any] = {
        "script": example.script,
        "seeds": list(seeds),
        "machine": machine(),
        "notes": example.notes,
        "variants": {},
    }
    # one call per seed, or one call for all of them
    calls = (
        [[str(seed)] for seed in seeds]
        if example.seeds_flag == "--seed"
        else [[str(seed) for seed in seeds]]
    )
    for variant, args in example.variants.items():
        if variants and variant not in variants:
            continue
        date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        load_before = load_average()
        per_key: dict[str, list[float]] = {key: [] for key in example.keys}
        wall: list[float] = []
        for seed_args in calls:
            with tempfile.TemporaryDirectory() as out:
                argv = [*args, *extra_args, example.seeds_flag, *seed_args, "--out", out, "--quiet"]
                threads = torch.get_num_threads()
                start = time.perf_counter()
                metrics = main(argv)
                wall.append(time.perf_counter() - start)
                # the threads it ran with (e.g. bench_grid --threads 1), not leaked to the next
                used_threads.add(torch.get_num_threads())
                torch.set_num_threads(threads)
            for key, read in example.keys.items():
                value = read(metrics)
                per_key[key] += value if isinstance(value, list) else [value]
            shown = ", ".join(f"{k} {v[-1]:.4g}" for k, v in per_key.items())
            print(f"{name}/{variant} seeds {' '.join(seed_args)}: {shown} ({wall[-1]:.0f} s)")
        entry["variants"][variant] = {
            "args": list(args),
            "date": date,
            "load_average_before": load_before,
            "load_average_after": load_average(),
            **{key: summarise(values) for key, values in per_key.items()},
            "run_seconds": summarise(wall),
        }
    if used_threads:
        entry["machine"]["torch_threads"] = sorted(used_threads)
    return entry


def merge(entry: dict, previous: dict | None, name: str) -> dict:
    """``entry`` plus the variants of ``previous`` it did not run (same seeds only), in the
    entry's order."""
    variants = dict(entry["variants"])
    if previous and previous.get("seeds") == entry["seeds"]:
        for variant, result in previous.get("variants", {}).items():
            variants.setdefault(variant, result)
    order = list(EXAMPLES[name].variants)
    merged = {**entry, "variants": {v: variants[v] for v in sorted(variants, key=order.index)}}
    if previous and set(variants) != set(entry["variants"]):  # kept runs: keep their threads
        threads = {
            t
            for info in (entry["machine"], previous["machine"])
            for t in as_list(info["torch_threads"])
        }
        merged["machine"] = {**entry["machine"], "torch_threads": sorted(threads)}
    return merged


def as_list(value: int | list[int]) -> list[int]:
    return list(value) if isinstance(value, list) else [value]


def combine(entries: Sequence[dict]) -> dict:
    """One entry from runs of the same script over disjoint seeds (e.g. one process per seed,
    run side by side): per variant, the per-seed values are concatenated and summarised again;
    dates, load averages and thread counts are kept from every part."""
    seeds = [seed for entry in entries for seed in entry["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"combine expected runs over disjoint seeds, got seeds {seeds}")
    machines = [entry["machine"] for entry in entries]
    merged: dict[str, Any] = {**entries[0], "seeds": seeds, "variants": {}}
    merged["machine"] = {
        **machines[0],
        "torch_threads": sorted({t for m in machines for t in as_list(m["torch_threads"])}),
    }
    for variant in entries[0]["variants"]:
        parts = [entry["variants"][variant] for entry in entries]
        combined: dict[str, Any] = {
            "args": parts[0]["args"],
            "date": min(part["date"] for part in parts),
            "load_average_before": max(p["load_average_before"] or [0] for p in parts),
            "load_average_after": max(p["load_average_after"] or [0] for p in parts),
        }
        for key, stat in parts[0].items():
            if isinstance(stat, dict):
                combined[key] = summarise([v for part in parts for v in part[key]["values"]])
        merged["variants"][variant] = combined
    return merged


# ----------------------------------------------------------------------------- formatting
def table(header: str | Sequence[str], rows: Iterable[Sequence[object]], align: str) -> list[str]:
    """The one table writer: a markdown table of ``header`` (cells, or one string with the cells
    separated by ``" | "``) and ``rows``, ``align`` one letter per column (``l`` left, ``r``
    right)."""
    if isinstance(header, str):
        header = header.split(" | ")
    rules = {"l": "---", "r": "---:"}
    if len(align) != len(header) or set(align) - set(rules):
        raise ValueError(f"table expected one of 'l' / 'r' per column, got {align!r} for {header}")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rules[a] for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table expected {len(header)} cells, got {len(row)}: {row}")
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return lines


def bold(text: str, yes: bool = True) -> str:
    return f"**{text}**" if yes else text


def pct(stat: dict[str, Any], digits: int = 2) -> str:
    """``99.27 ± 0.15 %`` from a summary of fractions."""
    return f"{100 * stat['mean']:.{digits}f} ± {100 * stat['sd']:.{digits}f} %"


def sd(stat: dict[str, Any], digits: int = 3) -> str:
    """``0.324 ± 0.012`` from a summary."""
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def spread(stat: dict[str, Any], digits: int = 2, unit: str = "") -> str:
    """``0.68 ± 0.04x (0.64–0.72)``: mean ± sd and the range over the runs."""
    f = f".{digits}f"
    return f"{stat['mean']:{f}} ± {stat['sd']:{f}}{unit} ({stat['min']:{f}}–{stat['max']:{f}})"


def per_seed(stat: dict[str, Any], digits: int = 1, scale: float = 100, unit: str = " %") -> str:
    """``97.5 / 97.2 / 96.5 %``: each seed's value, in the order of the seeds."""
    return " / ".join(f"{scale * v:.{digits}f}" for v in stat["values"]) + unit


def seed_text(seeds: Sequence[int]) -> str:
    """``0–2`` for consecutive seeds, else ``0, 2, 5``."""
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def measured(stat: dict[str, Any]) -> bool:
    return stat.get("mean") is not None


def provenance(entry: dict, name: str, variant: str | None = None) -> str:
    """One line: which command, when, where, and how loaded the machine was (for one variant,
    or all of them)."""
    info = entry["machine"]
    runs = [entry["variants"][variant]] if variant else list(entry["variants"].values())
    dates = sorted({run["date"] for run in runs})
    when = dates[0] if len(dates) == 1 else f"{dates[0]} – {dates[-1]}"
    loads = [run.get(key) for run in runs for key in ("load_average_before", "load_average_after")]
    busiest = max((load[0] for load in loads if load), default=None)
    busy = ""
    if busiest is not None:
        kind = "busy" if busiest > info["cpu_count"] else "quiet"
        busy = f"; load average up to {busiest:.1f} on {info['cpu_count']} cores ({kind} machine)"
    threads = "–".join(map(str, sorted(set(as_list(info["torch_threads"])))))
    device = info["gpu"] or f"{info['cpu']}, {threads} torch threads"
    return (
        f"Measured with `python benchmarks/reproduce.py --only {name}` on {when}: "
        f"seeds {', '.join(map(str, entry['seeds']))}, {device}, torch {info['torch']}{busy}."
    )


def quote(path: Path) -> list[str]:
    """A results file another script wrote, line for line."""
    return path.read_text().rstrip("\n").split("\n")


# ----------------------------------------------------------------------------- the tables
def mnist_table(entry: dict) -> list[str]:
    tta = mnist_cnn.DEFAULTS["tta"]
    label = {
        "default": f"deeper BN CNN + rotations, zooms, shifts; {tta}-view test averaging (default)",
        "lecture": "lecture-notes CNN (`--model lecture`: conv 32/64 + FC 128, Adam 1e-3, "
        "no augmentation)",
        "mlp": "DNN baseline (`--model mlp`: 784-256-128-10, Adam 1e-3, no augmentation)",
    }
    rows = [
        [
            label.get(variant, variant),
            f"{r['params']['mean']:,.0f}",
            f"{r['epochs']['mean']:.0f}",
            f"{r['seconds_per_epoch']['mean']:.2f}",
            bold(pct(r["test_acc"]), variant == "default"),
            f"{100 * r['test_acc']['min']:.2f} %",
        ]
        for variant, r in entry["variants"].items()
    ]
    header = (
        f"model | params | epochs | s / epoch | test accuracy, seeds {seed_text(entry['seeds'])} "
        "(mean ± sd) | worst seed"
    )
    return [*table(header, rows, "lrrrrr"), "", provenance(entry, "mnist")]


_FAITHFULNESS_HEADER = (
    "explanation | deletion AUC | random order | insertion AUC | random order "
    "| randomisation Spearman"
)


def faithfulness_row(
    label: str, r: dict, prefix: str = "", spearman: bool = False, best: bool = False
) -> list[str]:
    """Deletion / insertion AUC of the ``<prefix>deletion_auc`` method, each next to the random
    order's, and the randomisation Spearman (or – )."""
    return [
        label,
        bold(sd(r[f"{prefix}deletion_auc"]), best),
        sd(r["deletion_auc_random"]),
        bold(sd(r[f"{prefix}insertion_auc"]), best),
        sd(r["insertion_auc_random"]),
        sd(r["randomisation_spearman"]) if spearman else "–",
    ]


def explain_mnist_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    label = (
        f"MNIST GAP-head CNN ({pct(r['test_acc'], 1)}), Grad-CAM, "
        f"{explain_mnist.DEFAULTS['explain']} test digits"
    )
    rows = [
        faithfulness_row(label, r, spearman=True, best=True),
        faithfulness_row("MNIST, CAM", r, prefix="cam_"),
    ]
    return [*table(_FAITHFULNESS_HEADER, rows, "lrrrrr"), "", provenance(entry, "explain_mnist")]


def explain_molecule_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    label = (
        f"CHEMBL2321810 GCN (test R² {sd(r['explained_r2'], 2)}), graph CAM, "
        f"{explain_molecule.DEFAULTS['explain']} test molecules"
    )
    rows = [
        faithfulness_row(label, r, spearman=True, best=True),
        faithfulness_row("CHEMBL2321810 GCN, integrated gradients", r, prefix="ig_"),
    ]
    return [
        *table(_FAITHFULNESS_HEADER, rows, "lrrrrr"),
        "",
        provenance(entry, "explain_molecule"),
    ]


_COMPARE_LABELS = {
    "cnn": "cnn (lecture-notes CNN)",
    "gridconv": "gridconv (the same network as `GridConv` layers on the grid graph)",
    "spline": "spline (`SplineGNN`: `BSplineConv` on node positions, voxel pooling, cell readout)",
    "gcn": "gcn (isotropic `GridGCN`, layer norm, static-grid path)",
    "pyg_naive": "pyg_naive (that same GCN, one `Data` per image, block-diagonal batches, PyG "
    "`GCNConv`)",
}


def compare_table(entry: dict) -> list[str]:
    """The pixel-grid table of ``compare_grid_vs_cnn.py`` (its ``grid`` variant)."""
    r = entry["variants"]["grid"]
    rows = [
        [
            _COMPARE_LABELS.get(model, model),
            pct(r[f"{model}_test_acc"]) if measured(r[f"{model}_test_acc"]) else "n/a (timed only)",
            f"{r[f'{model}_params']['mean']:,.0f}",
            f"{r[f'{model}_seconds_per_epoch']['mean']:.2f}",
            f"{r[f'{model}_speedup_vs_pyg_naive']['mean']:.1f}x",
        ]
        for model in compare_grid_vs_cnn.MODELS
    ]
    header = "model | test acc | params | s / epoch | speed-up vs pyg_naive"
    return [*table(header, rows, "lrrrr"), "", provenance(entry, "compare --variants grid", "grid")]


def superpixels_table(entry: dict) -> list[str]:
    """The superpixel ``SplineGNN`` (the ``superpixels`` variant) beside the literature."""
    r = entry["variants"]["superpixels"]
    nodes, epoch = r["superpixels_mean_nodes"]["mean"], r["superpixels_seconds_per_epoch"]["mean"]
    rows = [
        [
            f"`SplineGNN` (this run, seeds {', '.join(map(str, entry['seeds']))}; {nodes:.1f} "
            f"nodes per graph, {epoch:.1f} s / epoch)",
            "4,000 (MNIST-5k)",
            bold(pct(r["superpixels_test_acc"])),
            f"{r['superpixels_params']['mean']:,.0f}",
        ],
        *(
            [
                f"{model} ({_LITERATURE_SOURCES[model]})",
                "55,000 (full MNIST)",
                f"{acc:.2f} %",
                "~100k",
            ]
            for model, acc in compare_grid_vs_cnn.LITERATURE.items()
        ),
    ]
    header = "superpixel MNIST | training graphs | test acc | params"
    return [
        *table(header, rows, "lrrr"),
        "",
        provenance(entry, "compare --variants superpixels", "superpixels"),
    ]


_LITERATURE_SOURCES = {
    "GCN": "benchmarking-gnns, Dwivedi et al. 2020",
    "GatedGCN": "benchmarking-gnns",
    "PNA": "Corso et al. 2020, benchmarking-gnns setup",
}


def resnet_vs_plain_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    rows = [
        [
            model,
            f"{r[f'{model}_conv_layers']['mean']:.0f}",
            f"{r[f'{model}_params']['mean']:,.0f}",
            bold(sd(r[f"{model}_final_train_loss"]), model == "residual"),
            bold(pct(r[f"{model}_test_acc"]), model == "residual"),
        ]
        for model in resnet_vs_plain.MODELS
    ]
    header = "model | 3×3 conv layers | params | final train loss | test acc"
    return [*table(header, rows, "lrrrr"), "", provenance(entry, "resnet_vs_plain")]


_TRAINER_LABELS = {
    "reference": "plain loop over a `DataLoader` (the lecture notes' pipeline), glibc's malloc "
    "defaults",
    "ref_retain": "the same loop after `retain_freed_memory()`",
    "trainer_dl": "`Trainer` over the same `DataLoader`, defaults",
    "trainer_tl": "`Trainer` + `TensorLoader`, defaults (float32; NHWC and retained memory on "
    "the CPU)",
    "trainer_tl_nchw": "the same with `channels_last=False, retain_memory=False`",
    "trainer_tl_bf16": 'the same as the defaults with `amp="bf16"` (other arithmetic)',
    "manual_nhwc": "a hand-written loop doing by hand what the `Trainer` does on the CPU "
    "(`TensorLoader`, NHWC model and batches, `retain_freed_memory()`)",
}


def bench_trainer_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    rows = [
        [
            _TRAINER_LABELS.get(name, name),
            f"{r[f'{name}_seconds']['mean']:.3f}",
            bold(spread(r[f"{name}_ratio"], unit="x"), name == "trainer_tl"),
            f"≤ {bench_trainer.TARGETS[name]:.2f}" if name in bench_trainer.TARGETS else "",
        ]
        for name in bench_trainer.PIPELINES
    ]
    header = (
        "pipeline (lecture CNN, MNIST-5k, batch 100) | s / epoch "
        "| ratio to the plain loop, mean ± sd (range) | target"
    )
    overhead = spread(r["trainer_over_manual"], unit="x")
    return [
        *table(header, rows, "lrrr"),
        "",
        f"`Trainer` + `TensorLoader` against that hand-written loop: **{overhead}**.",
        "",
        provenance(entry, "bench_trainer"),
    ]


_GRID_LABELS = {  # bench_grid.PAIRS: (model, reference pipeline, gconv's pipeline)
    "gcn": ("isotropic GCN on 28×28 grids", "naive PyG pipeline", "static-grid path"),
    "gridconv": ("GridConv (the lecture CNN on the grid graph)", "message passing", "conv2d"),
}


def bench_grid_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    rows = []
    for pair in bench_grid.PAIRS:
        label, reference, fast = _GRID_LABELS.get(pair, (pair, "reference", "gconv"))
        rows.append(
            [
                label,
                f"{reference}: {r[f'{pair}_reference_s_per_batch']['mean']:.3f} s",
                f"{fast}: {r[f'{pair}_fast_s_per_batch']['mean']:.3f} s",
                bold(spread(r[f"{pair}_speedup"], 1, "x")),
            ]
        )
    header = (
        "model (s / training batch of 100, one thread) | reference | gconv "
        "| speed-up, mean ± sd (range)"
    )
    return [*table(header, rows, "lrrr"), "", provenance(entry, "bench_grid")]


def bench_featurize_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    rows = [
        ["`torch_geometric.utils.from_smiles`", f"{r['pyg_mol_per_s']['mean']:,.0f}", "1"],
        [
            "`gconv.data.featurize`",
            f"{r['gconv_mol_per_s']['mean']:,.0f}",
            bold(spread(r["speedup"], 2, "x")),
        ],
        ["`featurize(cache_dir=...)`, cache hit", f"{r['cache_mol_per_s']['mean']:,.0f}", "–"],
    ]
    header = "SMILES → graphs (4,991 NCI molecules) | mol / s | ratio to PyG"
    return [*table(header, rows, "lrr"), "", provenance(entry, "bench_featurize")]


TABLES: dict[str, Callable[[dict], list[str]]] = {
    "mnist": mnist_table,
    "compare": compare_table,
    "superpixels": superpixels_table,  # from the compare entry
    "explain_mnist": explain_mnist_table,
    "explain_molecule": explain_molecule_table,
    "resnet_vs_plain": resnet_vs_plain_table,
    "bench_trainer": bench_trainer_table,
    "bench_grid": bench_grid_table,
    "bench_featurize": bench_featurize_table,
}
_ENTRY = {"superpixels": "compare"}  # a table drawn from another name's entry


def tables(results: dict) -> dict[str, list[str]]:
    """Every table whose entry is in ``results``."""
    return {
        name: render(results[_ENTRY.get(name, name)])
        for name, render in TABLES.items()
        if _ENTRY.get(name, name) in results
    }


# ----------------------------------------------------------------------------- the results page
def page_fields(results: dict) -> dict[str, Any]:
    """What ``benchmarks/results.template.md`` may name: ``{table[mnist]}`` (a table with its
    provenance line), ``{quote[molecules]}`` (a results file another script wrote), ``{v[...]}``
    (a figure derived from ``results``) and the scripts' own constants
    (``{mnist_cnn.DEFAULTS[epochs]}``)."""
    mnist = results["mnist"]["variants"]["default"]
    grid = results["compare"]["variants"]["grid"]
    digits = results["explain_mnist"]["variants"]["default"]
    molecules = results["explain_molecule"]["variants"]["default"]
    trainer = results["bench_trainer"]["variants"]["default"]
    target = bench_trainer.TARGETS["trainer_tl"]
    met = sum(v <= target for v in trainer["trainer_tl_ratio"]["values"])
    back = grid.get("grid_to_cnn_max_abs_logit_diff", {"mean": None})
    fraction = {"digits": 3, "scale": 1, "unit": ""}
    figures = {
        "seeds": " ".join(map(str, SEEDS)),
        "mnist_per_seed": per_seed(mnist["test_acc"]),
        "mnist_run_mean": f"{mnist['run_seconds']['mean']:.0f} s",
        "mnist_run_max": f"{mnist['run_seconds']['max']:.0f} s",
        "compare_seeds": seed_text(results["compare"]["seeds"]),
        "gridconv_per_seed": per_seed(grid["gridconv_test_acc"]),
        "cnn_per_seed": per_seed(grid["cnn_test_acc"]),
        "weight_copy_same": f"{100 * grid['weight_copy_same_predictions']['mean']:.0f} %",
        "weight_copy_diff": f"{grid['weight_copy_max_abs_logit_diff']['max']:.1e}",
        "gcn_vs_pyg_diff": f"{grid['gcn_vs_pyg_max_abs_logit_diff']['max']:.1e}",
        "grid_to_cnn": (
            f"their test logits differ by at most {back['max']:.1e}"
            if measured(back)
            else "`reproduce.py` records how far apart their test logits are on its next run"
        ),
        "cnn_over_gcn_params": f"{grid['cnn_params']['mean'] / grid['gcn_params']['mean']:.0f}x",
        "resnet_channels": "/".join(map(str, resnet_vs_plain.CHANNELS)),
        "resnet_plain_blocks": 2 * resnet_vs_plain.DEFAULTS["blocks"],  # two convs per block
        "resnet_seeds": seed_text(results["resnet_vs_plain"]["seeds"]),
        "deletion_per_seed": per_seed(digits["deletion_auc"], **fraction),
        "deletion_random_per_seed": per_seed(digits["deletion_auc_random"], **fraction),
        "explain_acc_per_seed": per_seed(digits["test_acc"]),
        "spearman_per_seed": per_seed(molecules["randomisation_spearman"], 2, 1, ""),
        "grid_cam_diff": f"{digits['grid_cam_max_abs_diff']['max']:.1e}",
        "trainer_target_met": f"{met} run{'' if met == 1 else 's'} of "
        f"{len(trainer['trainer_tl_ratio']['values'])}",
    }
    return {
        "table": {name: "\n".join(rows) for name, rows in tables(results).items()},
        "quote": {
            "molecules": "\n".join(quote(MOLECULES_TABLE)),
            "molecule_tasks": "\n".join(quote(MOLECULE_TASKS_TABLE)),
            "explain": "\n".join(quote(EXPLAIN_TABLES)),
            "explain_atoms": "\n".join(quote(EXPLAIN_ATOMS_TABLES)),
        },
        "v": figures,
        **{module.__name__.removeprefix("reproduce_"): module for module in _MODULES.values()},
    }


def results_page(results: dict) -> str:
    """``docs/results.md``: the template with every field filled in from ``results``."""
    return TEMPLATE.read_text().format_map(page_fields(results))


# ----------------------------------------------------------------------------- the README
def molecule_rmse(method: str, dataset: str) -> str:
    """``0.600 ± 0.068`` from the table ``bench_molecules.py`` wrote."""
    rows = [line.split("|")[1:-1] for line in quote(MOLECULES_TABLE) if line.startswith("|")]
    header = [cell.strip() for cell in rows[0]]
    for row in rows[2:]:
        if row[0].strip() == method:
            return row[header.index(dataset)].split("(")[0].strip()
    raise KeyError(f"{MOLECULES_TABLE} has no row {method!r}")


def molecule_task_score(method: str, dataset: str) -> str:
    """``0.911 ± 0.012``: a task set's test AUROC or mean RMSE, from ``molecules_tasks.json``
    (``bench_molecules.py`` wrote it with ``molecules_tasks.md``)."""
    summary = json.loads(MOLECULE_TASKS.read_text())
    metric = summary["sets"][dataset]["metric"]
    return sd(summary["methods"][dataset][method][f"test_{metric}"])


def headline(results: dict) -> list[str]:
    """The README's few figures, each linking to its section of the results page."""
    mnist = results["mnist"]["variants"]["default"]
    compare = results["compare"]["variants"]["grid"]
    grid = results["bench_grid"]["variants"]["default"]
    trainer = results["bench_trainer"]["variants"]["default"]
    page = "docs/results.md#"
    rows = [
        [
            "MNIST-5k test accuracy of `examples/mnist_cnn.py` with its defaults",
            pct(mnist["test_acc"]),
            f"[MNIST-5k CNN]({page}mnist-5k-cnn)",
        ],
        [
            "the lecture CNN, trained as `GridConv` layers on the pixel grid graph / as a CNN",
            f"{pct(compare['gridconv_test_acc'])} / {pct(compare['cnn_test_acc'])}",
            f"[grid and graph]({page}the-same-digits-as-a-grid-and-as-a-graph)",
        ],
        [
            "CHEMBL2321810 pIC50 test RMSE, scaffold split: gconv's D-MPNN / chemprop",
            f"{molecule_rmse('gconv', 'chembl')} / {molecule_rmse('chemprop', 'chembl')}",
            f"[molecules]({page}molecular-properties-against-chemprop)",
        ],
        [
            "CHEMBL2321810 active (pIC50 >= 7) / three potency classes, test AUROC: gconv / chemprop",
            f"{molecule_task_score('gconv', 'chembl_active')} / "
            f"{molecule_task_score('chemprop', 'chembl_active')}; "
            f"{molecule_task_score('gconv', 'chembl_potency')} / "
            f"{molecule_task_score('chemprop', 'chembl_potency')}",
            f"[tasks]({page}classification-multiclass-and-multi-task-against-chemprop)",
        ],
        [
            "a GCN on 28×28 grids: the static-grid path's speed-up over a naive PyG pipeline",
            f"{sd(grid['gcn_speedup'], 1)}x",
            f"[speed]({page}speed-benchmarks)",
        ],
        [
            "the `Trainer`'s epoch time against a plain `DataLoader` loop (lecture CNN, CPU)",
            f"{sd(trainer['trainer_tl_ratio'], 2)}x",
            f"[speed]({page}speed-benchmarks)",
        ],
    ]
    seeds = seed_text(results["mnist"]["seeds"])
    cores = sorted({entry["machine"]["cpu_count"] for entry in results.values()})
    return [
        *table(["what", f"mean ± sd over seeds {seeds}", "details"], rows, "lrl"),
        "",
        f"Measured on {'/'.join(map(str, cores))}-core CPU machines without a GPU and rendered "
        "from `benchmarks/results.json` by",
        "`benchmarks/reproduce.py`; every table, how it was measured and on which machine: "
        "[docs/results.md](docs/results.md).",
    ]


def atom_attributions(results: dict) -> list[str]:
    """The README's atom table: every method on the molecule example's default model against
    the two per-atom truths (``bench_explain.py --part atoms``'s numbers, not ``results``)."""
    atoms = json.loads(EXPLAIN_ATOMS.read_text())
    logp, rule = atoms[LOGP_DEFAULT], atoms["substructure"]
    names = list(dict.fromkeys(name for part in (logp, rule) for name in part))
    rows = []
    for name in names:
        in_logp, in_rule = logp.get(name), rule.get(name)
        row = in_logp or in_rule
        if not (isinstance(row, dict) and "ms_per_molecule" in row):
            continue
        rows.append(
            [
                name.removeprefix("gconv "),
                sd(in_logp["pearson"]) if in_logp else "",
                sd(in_rule["auroc"]) if in_rule else "",
                f"{row['ms_per_molecule']['median']:.3g}",
            ]
        )
    header = [
        "method",
        "Crippen logP atoms: Pearson r",
        "substructure rule: atom AUROC",
        "ms / molecule",
    ]
    return [
        *table(header, rows, "lrrr"),
        "",
        "The molecule example's default model (D-MPNN, MLP head; the atomwise readout `auto` picks "
        "for logP; norm for the rule, where `auto`'s meanmax would leave the decomposition out) "
        f"on held-out NCI molecules (scaffold split); mean ± sd over seeds "
        f"{seed_text(logp['seeds'])}; "
        "milliseconds: median over the seeds on a shared, loaded 2-core CPU (the logP part's), "
        "compare them within the table only.",
        "How each part was measured, and the GCN's tables: "
        "[docs/results.md](docs/results.md#atom-attributions-against-known-per-atom-truth).",
    ]


def larger_than_memory(results: dict) -> list[str]:
    """The README's store table: run :data:`SCALE_RUN` of ``bench_scale.py`` (its raw numbers
    in ``scale_1m.json``, not ``results``)."""
    run = json.loads(SCALE_RUNS.read_text())["runs"][SCALE_RUN]
    rows = [
        [
            f"{row['molecules']:,}",
            f"{row['featurise_vs_pyg']:.2f}x ({row['featurise_vs_pyg_full']:.2f}x)",
            f"{row['featurise_peak_tree_mb']:,.0f} / {row['train_peak_tree_mb']:,.0f} / "
            f"{row['predict_peak_tree_mb']:,.0f} MB",
            f"{row['disk_bytes_per_molecule']:,.0f} B",
        ]
        for row in run["results"]
    ]
    header = [
        "molecules",
        "featurising: x PyG's `from_smiles` (like for like)",
        "peak memory: featurise / train one epoch / predict",
        "disk a molecule",
    ]
    return [
        *table(header, rows, "rrrr"),
        "",
        f"One run (run {SCALE_RUN} of [benchmarks/results/scale.md](benchmarks/results/scale.md), "
        f"{run['machine']['cpu_count']} cores, {run['machine']['jobs']} worker processes): "
        "wall-clock molecules/s against `from_smiles` in the same run (like for like: plus "
        "the RDKit calls that give the duplicates and scaffolds the store also holds); peak PSS "
        "of the process tree; training is `gconv train --store disk --epochs 1` with the "
        "readout rule, calibration and the predictions of every molecule.",
    ]


REGIONS: dict[str, Callable[[dict], list[str]]] = {
    "headline": headline,
    "atom-attributions": atom_attributions,
    "larger-than-memory": larger_than_memory,
}
_REGION = re.compile(
    r"(<!-- begin reproduce\.py: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end reproduce\.py: "
    r"(?P=name) -->)",
    flags=re.S,
)


def fill_regions(text: str, results: dict) -> str:
    """``text`` with every generated region rendered anew; a region without a renderer is an
    error, as is a renderer whose region is missing."""
    found: list[str] = []

    def render(match: re.Match) -> str:
        name = match["name"]
        if name not in REGIONS:
            raise KeyError(f"no renderer for the region {name!r}; expected one of {list(REGIONS)}")
        found.append(name)
        return match.group(1) + "\n".join(REGIONS[name](results)) + "\n" + match.group(4)

    text = _REGION.sub(render, text)
    missing = set(REGIONS) - set(found)
    if missing:
        raise KeyError(
            f"README.md has no region {sorted(missing)} (<!-- begin reproduce.py: … -->)"
        )
    return text


def rendered_docs(results: dict) -> dict[Path, str]:
    """What README.md and docs/results.md must read, from ``results``."""
    return {README: fill_regions(README.read_text(), results), RESULTS_PAGE: results_page(results)}


def stale_docs(results: dict, texts: dict[Path, str] | None = None) -> dict[Path, str]:
    """The documents (as read, or as given in ``texts``) that differ from what ``results``
    renders, each with a unified diff."""
    stale = {}
    for path, want in rendered_docs(results).items():
        have = texts[path] if texts and path in texts else path.read_text()
        if have != want:
            diff = difflib.unified_diff(
                have.splitlines(), want.splitlines(), str(path), "rendered", lineterm="", n=1
            )
            stale[path] = "\n".join(diff)
    return stale


def write_docs(results: dict) -> None:
    for path, text in rendered_docs(results).items():
        if not path.is_file() or path.read_text() != text:
            atomic_write(path, lambda f, text=text: f.write(text.encode()))
            print(f"rendered {path.relative_to(ROOT)}")


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", nargs="+", choices=sorted(EXAMPLES), default=None)
    p.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="run only these variants of the --only entries, keep the others' results",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument(
        "--render-only",
        action="store_true",
        help="render README.md's figures and docs/results.md from --results, run nothing",
    )
    p.add_argument("--tables", action="store_true", help="print the tables, run nothing")
    p.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        default=None,
        help="merge result files of runs over disjoint seeds (one process per seed) into --results",
    )
    p.add_argument("--device", default=None, help="pass --device to every script (default: theirs)")
    args = p.parse_args(argv)
    run = not (args.render_only or args.tables or args.combine)
    if len(args.seeds) < 3 and run:
        print("note: fewer than 3 seeds; the docs ask for >= 3", file=sys.stderr)

    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    if args.combine:
        parts = [json.loads(path.read_text()) for path in args.combine]
        for name in parts[0]:
            combined = combine([part[name] for part in parts])
            results[name] = merge(combined, results.get(name), name)
        text = json.dumps(results, indent=2) + "\n"
        atomic_write(args.results, lambda f, text=text: f.write(text.encode()))
        print(f"combined {len(parts)} files into {args.results}")
    elif run:
        sys.path.insert(0, str(ROOT / "examples"))
        extra = ["--device", args.device] if args.device else []
        for name in args.only or list(EXAMPLES):
            entry = run_example(name, args.seeds, extra, variants=args.variants)
            # re-read just before writing: another run of other variants may have finished
            if args.results.is_file():
                results = json.loads(args.results.read_text())
            results[name] = merge(entry, results.get(name), name)
            # written after each entry: a long run that is stopped keeps what it finished
            text = json.dumps(results, indent=2) + "\n"
            atomic_write(args.results, lambda f, text=text: f.write(text.encode()))
        print(f"wrote {args.results}")
    if args.tables:
        for name, rows in tables(results).items():
            print(f"\n{name}:\n" + "\n".join(rows))
    elif args.render_only or args.results.resolve() == RESULTS.resolve():
        write_docs(results)  # the docs follow the results file they quote
    else:
        print(f"{args.results} is not {RESULTS.relative_to(ROOT)}: the docs were not rendered")
    return results


if __name__ == "__main__":
    main()
