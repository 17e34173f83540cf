"""Regenerate every figure the README quotes about the examples and benchmarks, over seeds.

    python benchmarks/reproduce.py --only mnist            # MNIST-5k: default, lecture CNN, MLP
    python benchmarks/reproduce.py --only bench_trainer bench_grid bench_featurize  # speed ratios
    python benchmarks/reproduce.py                          # every entry below (long: ~45 min)
    python benchmarks/reproduce.py --only compare --variants grid --seeds 0 1 2 3 4
    python benchmarks/reproduce.py --only mnist --variants lecture   # one variant, keep the rest
    python benchmarks/reproduce.py --tables                 # print the README tables, run nothing
    python benchmarks/reproduce.py --tables --update-readme # put them into README.md
    # one process per seed (side by side), then one entry:
    python benchmarks/reproduce.py --only mnist --seeds 0 --results r0.json   # ... r1, r2
    python benchmarks/reproduce.py --combine r0.json r1.json r2.json

Each example's ``main(argv)`` is run once per seed (``--seed s --quiet``, artefacts in a temporary
folder); every number it reports becomes ``{"mean", "sd", "min", "max", "values"}`` over the seeds
(``sd`` is the sample standard deviation). The results go into ``benchmarks/results.json``, one
entry per example with the machine, the torch version and the seeds, and per variant the date and
the load average before and after (a loaded machine makes the timings, not the accuracies,
slower). ``--only``
replaces just the named entries, so a partial run keeps the others.

The README's result tables are rendered from that file by :func:`tables` (``--tables`` prints
them) and ``tests/test_readme_numbers.py`` checks that every row of them is in README.md, so a
README figure is always one that this script produced.

Adding an example is one entry in :data:`EXAMPLES`: the script, the variants (extra arguments),
and which of its ``metrics.json`` keys to aggregate. The timing benchmarks (``bench_trainer``,
``bench_grid``, ``bench_featurize``) are entries too: a seed is one run, each figure a ratio
measured inside that run, so the spread over runs is the machine's noise; run them with nothing
else running. Molecules are not here yet: their figures
come from ``benchmarks/bench_molecules.py``; a ``molecules`` entry can wrap that script's own
per-seed function the same way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from gconv._utils import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.json"


# ----------------------------------------------------------------------------- the examples
class Example(NamedTuple):
    """One example script and what to aggregate from its ``main(argv)`` result.

    Args:
        script: path relative to the repository root.
        variants: name -> extra command-line arguments (one run per variant and seed).
        keys: name -> function of ``main``'s returned dict giving one number, or one number per
            seed for an example that loops over the seeds itself.
        seeds_flag: ``"--seed"``: one ``main`` call per seed; ``"--seeds"``: one call with all
            the seeds (the example reports per-seed values).
    """

    script: str
    variants: dict[str, list[str]]
    keys: dict[str, Callable[[dict], float | list[float]]]
    seeds_flag: str = "--seed"
    notes: str = ""


def _get(*path: str) -> Callable[[dict], float | list[float]]:
    """Read ``metrics[path[0]][path[1]]...``; a missing key or ``None`` reads as NaN (not
    measured), so an example that drops a figure does not break the others."""

    def read(metrics: dict) -> float | list[float]:
        value: Any = metrics
        for key in path:
            if not isinstance(value, dict) or value.get(key) is None:
                return math.nan
            value = value[key]
        return [float(v) for v in value] if isinstance(value, list) else float(value)

    return read


_MNIST_KEYS = {
    "test_acc": _get("test_acc"),
    "seconds_per_epoch": _get("seconds_per_epoch"),
    "train_seconds": _get("train_seconds"),
    "params": _get("params"),
    "epochs": _get("epochs"),
}
_COMPARE_MODELS = ("cnn", "gridconv", "gcn", "spline", "pyg_naive")
_TRAINER_PIPELINES = (  # benchmarks/bench_trainer.py's PIPELINES
    "reference",
    "ref_retain",
    "trainer_dl",
    "trainer_tl",
    "trainer_tl_nchw",
    "trainer_tl_bf16",
    "manual_nhwc",
)

EXAMPLES: dict[str, Example] = {
    "mnist": Example(
        "examples/mnist_cnn.py",
        variants={"default": [], "lecture": ["--model", "lecture"], "mlp": ["--model", "mlp"]},
        keys=_MNIST_KEYS,
        notes="seed s also draws the 4,000 / 1,000 split of the 5,000 digits",
    ),
    "compare": Example(
        "examples/compare_grid_vs_cnn.py",
        # the pixel grid (five pipelines) and the superpixel graphs, run and kept separately
        variants={"grid": ["--parts", "grid"], "superpixels": ["--parts", "superpixels"]},
        seeds_flag="--seeds",  # it trains every model on each seed's split itself
        keys={
            **{
                f"{model}_test_acc": _get("models", model, "test_acc_per_seed")
                for model in _COMPARE_MODELS
            },
            **{
                f"{model}_{key}": _get("models", model, key)
                for model in _COMPARE_MODELS
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
        keys={
            key: _get(key)
            for key in (
                "test_acc",
                "deletion_auc",
                "deletion_auc_random",
                "insertion_auc",
                "insertion_auc_random",
                "cam_deletion_auc",
                "cam_insertion_auc",
                "randomisation_spearman",
                "grid_cam_max_abs_diff",
            )
        },
    ),
    "explain_molecule": Example(
        "examples/explain_molecule.py",
        variants={"default": []},
        keys={
            key: _get(key)
            for key in (
                "explained_r2",
                "deletion_auc",
                "deletion_auc_random",
                "insertion_auc",
                "insertion_auc_random",
                "ig_deletion_auc",
                "ig_insertion_auc",
                "randomisation_spearman",
            )
        },
    ),
    "resnet_vs_plain": Example(
        "examples/resnet_vs_plain.py",
        variants={"default": []},
        seeds_flag="--seeds",  # it trains both models on every seed itself
        keys={
            f"{model}_{key}": _get("models", model, source)
            for model in ("plain", "residual")
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
            **{f"{name}_ratio": _get("ratio", name) for name in _TRAINER_PIPELINES},
            **{f"{name}_seconds": _get("seconds_per_epoch", name) for name in _TRAINER_PIPELINES},
            "trainer_over_manual": _get("trainer_over_manual"),
        },
        notes="one run per seed; each run times every pipeline in its own process, interleaved",
    ),
    "bench_grid": Example(
        "benchmarks/bench_grid.py",
        variants={"default": ["--threads", "1", "--batches", "20"]},
        keys={
            f"{model}_{key}": _get(f"{model}_{key}")
            for model in ("gcn", "gridconv")
            for key in ("speedup", "reference_s_per_batch", "fast_s_per_batch")
        },
        notes="one run per seed (its weights and its 4,000 training digits)",
    ),
    "bench_featurize": Example(
        "benchmarks/bench_featurize.py",
        variants={"default": []},
        keys={
            key: _get(key)
            for key in ("speedup", "pyg_mol_per_s", "gconv_mol_per_s", "cache_mol_per_s")
        },
        notes="deterministic work: a seed only numbers the run",
    ),
}


# ----------------------------------------------------------------------------- running
def load_main(script: str) -> Callable[[list[str]], dict]:
    path = ROOT / script
    spec = importlib.util.spec_from_file_location(f"reproduce_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


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
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


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
    """Run the variants of one example (all, or the named ones) over ``seeds``; returns its
    results entry, each variant with its own date and load average."""
    example = EXAMPLES[name]
    unknown = set(variants or ()) - set(example.variants)
    if unknown:
        raise ValueError(
            f"{name} has no variant {sorted(unknown)}; expected some of {sorted(example.variants)}"
        )
    import torch

    main = load_main(example.script)
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
    example's order."""
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
    """One entry from runs of the same example over disjoint seeds (e.g. one process per seed,
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


# ----------------------------------------------------------------------------- README tables
def bold(text: str, yes: bool) -> str:
    return f"**{text}**" if yes else text


def pct(stat: dict[str, Any], digits: int = 2) -> str:
    """``99.27 ± 0.15 %`` from a summary of fractions."""
    return f"{100 * stat['mean']:.{digits}f} ± {100 * stat['sd']:.{digits}f} %"


def mnist_table(entry: dict) -> list[str]:
    label = {
        "default": "deeper BN CNN + rotations, zooms, shifts; 9-view test averaging (default)",
        "lecture": "lecture-notes CNN (`--model lecture`: conv 32/64 + FC 128, Adam 1e-3, "
        "no augmentation)",
        "mlp": "DNN baseline (`--model mlp`: 784-256-128-10, Adam 1e-3, no augmentation)",
    }
    seeds = entry["seeds"]
    seed_text = (
        f"{seeds[0]}–{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[-1] + 1))
        else (", ".join(map(str, seeds)))
    )
    rows = [
        f"| model | params | epochs | s / epoch | test accuracy, seeds {seed_text} (mean ± sd) "
        "| worst seed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant, result in entry["variants"].items():
        rows.append(
            f"| {label.get(variant, variant)} | {result['params']['mean']:,.0f} | "
            f"{result['epochs']['mean']:.0f} | {result['seconds_per_epoch']['mean']:.2f} | "
            f"{bold(pct(result['test_acc']), variant == 'default')} | "
            f"{100 * result['test_acc']['min']:.2f} % |"
        )
    rows += ["", provenance(entry, "mnist")]
    if "default" in entry["variants"]:
        run = entry["variants"]["default"]["run_seconds"]
        rows.append(
            f"A whole default run (training, scoring, figures; without Python's start-up) took "
            f"{run['mean']:.0f} s on average, {run['max']:.0f} s at most."
        )
    return rows


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


def sd(stat: dict[str, Any], digits: int = 3) -> str:
    """``0.324 ± 0.012`` from a summary."""
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


_FAITHFULNESS_HEADER = [
    "| explanation | deletion AUC | random order | insertion AUC | random order "
    "| randomisation Spearman |",
    "|---|---:|---:|---:|---:|---:|",
]


def faithfulness_row(
    label: str, r: dict, prefix: str = "", spearman: bool = False, best: bool = False
) -> str:
    """One row: deletion / insertion AUC of the ``<prefix>deletion_auc`` method, each next to
    the random order's, and the randomisation Spearman (or – )."""
    deletion, insertion = sd(r[f"{prefix}deletion_auc"]), sd(r[f"{prefix}insertion_auc"])
    return (
        f"| {label} | {bold(deletion, best)} | {sd(r['deletion_auc_random'])} "
        f"| {bold(insertion, best)} | {sd(r['insertion_auc_random'])} "
        f"| {sd(r['randomisation_spearman']) if spearman else '–'} |"
    )


def explain_mnist_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    label = f"MNIST GAP-head CNN ({pct(r['test_acc'], 1)}), Grad-CAM, 100 test digits"
    return [
        *_FAITHFULNESS_HEADER,
        faithfulness_row(label, r, spearman=True, best=True),
        faithfulness_row("MNIST, CAM", r, prefix="cam_"),
        "",
        provenance(entry, "explain_mnist"),
    ]


def explain_molecule_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    label = f"CHEMBL2321810 GCN (test R² {sd(r['explained_r2'], 2)}), graph CAM, 100 test molecules"
    return [
        *_FAITHFULNESS_HEADER,
        faithfulness_row(label, r, spearman=True, best=True),
        faithfulness_row("CHEMBL2321810 GCN, integrated gradients", r, prefix="ig_"),
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
    """The pixel-grid table of ``compare_grid_vs_cnn.py`` (its ``grid`` variant) and the
    superpixel row (its ``superpixels`` variant), each with its provenance."""
    rows: list[str] = []
    if "grid" in entry["variants"]:
        r = entry["variants"]["grid"]
        rows += [
            "| model | test acc | params | s / epoch | speed-up vs pyg_naive |",
            "|---|---:|---:|---:|---:|",
        ]
        for model in _COMPARE_MODELS:
            acc = r[f"{model}_test_acc"]
            rows.append(
                f"| {_COMPARE_LABELS[model]} | "
                f"{'n/a (timed only)' if acc['mean'] is None else pct(acc)} | "
                f"{r[f'{model}_params']['mean']:,.0f} | "
                f"{r[f'{model}_seconds_per_epoch']['mean']:.2f} | "
                f"{r[f'{model}_speedup_vs_pyg_naive']['mean']:.1f}x |"
            )
        rows += ["", provenance(entry, "compare --variants grid", "grid")]
    if "superpixels" in entry["variants"]:
        r = entry["variants"]["superpixels"]
        seeds = ", ".join(map(str, entry["seeds"]))
        rows += [
            f"| `SplineGNN` (this run, seeds {seeds}; {r['superpixels_mean_nodes']['mean']:.1f} "
            f"nodes per graph, {r['superpixels_seconds_per_epoch']['mean']:.1f} s / epoch) "
            f"| 4,000 (MNIST-5k) | **{pct(r['superpixels_test_acc'])}** "
            f"| {r['superpixels_params']['mean']:,.0f} |",
            provenance(entry, "compare --variants superpixels", "superpixels"),
        ]
    return rows


def resnet_vs_plain_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    rows = [
        "| model | 3×3 conv layers | params | final train loss | test acc |",
        "|---|---:|---:|---:|---:|",
    ]
    for model in ("plain", "residual"):
        rows.append(
            f"| {model} | {r[f'{model}_conv_layers']['mean']:.0f} | "
            f"{r[f'{model}_params']['mean']:,.0f} | "
            f"{bold(sd(r[f'{model}_final_train_loss']), model == 'residual')} | "
            f"{bold(pct(r[f'{model}_test_acc']), model == 'residual')} |"
        )
    return [*rows, "", provenance(entry, "resnet_vs_plain")]


def spread(stat: dict[str, Any], digits: int = 2, unit: str = "") -> str:
    """``0.68 ± 0.04x (0.64–0.72)``: mean ± sd and the range over the runs."""
    f = f".{digits}f"
    return f"{stat['mean']:{f}} ± {stat['sd']:{f}}{unit} ({stat['min']:{f}}–{stat['max']:{f}})"


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
_TRAINER_TARGETS = {"trainer_dl": "≤ 1.05", "trainer_tl": "≤ 0.70"}


def bench_trainer_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    rows = [
        "| pipeline (lecture CNN, MNIST-5k, batch 100) | s / epoch | ratio to the plain loop, "
        "mean ± sd (range) | target |",
        "|---|---:|---:|---:|",
    ]
    for name in _TRAINER_PIPELINES:
        ratio = r[f"{name}_ratio"]
        rows.append(
            f"| {_TRAINER_LABELS[name]} | {r[f'{name}_seconds']['mean']:.3f} | "
            f"{bold(spread(ratio, unit='x'), name == 'trainer_tl')} | "
            f"{_TRAINER_TARGETS.get(name, '')} |"
        )
    overhead = spread(r["trainer_over_manual"], unit="x")
    rows += ["", f"`Trainer` + `TensorLoader` against that hand-written loop: **{overhead}**."]
    return [*rows, "", provenance(entry, "bench_trainer")]


def bench_grid_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    rows = [
        "| model (s / training batch of 100, one thread) | reference | gconv | speed-up, "
        "mean ± sd (range) |",
        "|---|---:|---:|---:|",
    ]
    for model, label, reference, fast in (
        ("gcn", "isotropic GCN on 28×28 grids", "naive PyG pipeline", "static-grid path"),
        ("gridconv", "GridConv (the lecture CNN on the grid graph)", "message passing", "conv2d"),
    ):
        rows.append(
            f"| {label} | {reference}: {r[f'{model}_reference_s_per_batch']['mean']:.3f} s | "
            f"{fast}: {r[f'{model}_fast_s_per_batch']['mean']:.3f} s | "
            f"**{spread(r[f'{model}_speedup'], 1, 'x')}** |"
        )
    return [*rows, "", provenance(entry, "bench_grid")]


def bench_featurize_table(entry: dict) -> list[str]:
    r = entry["variants"]["default"]
    return [
        "| SMILES → graphs (4,991 NCI molecules) | mol / s | ratio to PyG |",
        "|---|---:|---:|",
        f"| `torch_geometric.utils.from_smiles` | {r['pyg_mol_per_s']['mean']:,.0f} | 1 |",
        f"| `gconv.data.featurize` | {r['gconv_mol_per_s']['mean']:,.0f} | "
        f"**{spread(r['speedup'], 2, 'x')}** |",
        f"| `featurize(cache_dir=...)`, cache hit | {r['cache_mol_per_s']['mean']:,.0f} | – |",
        "",
        provenance(entry, "bench_featurize"),
    ]


RENDERERS: dict[str, Callable[[dict], list[str]]] = {
    "mnist": mnist_table,
    "compare": compare_table,
    "explain_mnist": explain_mnist_table,
    "explain_molecule": explain_molecule_table,
    "resnet_vs_plain": resnet_vs_plain_table,
    "bench_trainer": bench_trainer_table,
    "bench_grid": bench_grid_table,
    "bench_featurize": bench_featurize_table,
}


def tables(results: dict) -> dict[str, list[str]]:
    """The README table rows of every example that is in ``results`` and has a renderer."""
    return {name: render(results[name]) for name, render in RENDERERS.items() if name in results}


def _key(line: str) -> str:
    """What identifies a rendered line across runs: everything before its first digit (the
    first cell of a table row, the opening words of a provenance line)."""
    for i, char in enumerate(line):
        if char.isdigit():
            return line[:i]
    return line


def update_readme(text: str, rendered: dict[str, list[str]]) -> tuple[str, list[str]]:
    """``text`` with each rendered line put in place of the one README line that has the same
    :func:`_key`; returns the new text and the rendered lines that matched no line or several
    (a new table: paste it by hand once, later runs update it)."""
    lines = text.split("\n")
    unplaced = []
    for row in (row for rows in rendered.values() for row in rows if row):
        if any(line.lstrip() == row for line in lines):
            continue
        key = _key(row)
        matches = [
            i for i, line in enumerate(lines) if len(key) >= 10 and _key(line.lstrip()) == key
        ]
        if len(matches) == 1:  # replaced, keeping the line's indentation (a list item's text)
            line = lines[matches[0]]
            lines[matches[0]] = line[: len(line) - len(line.lstrip())] + row
        else:
            unplaced.append(row)
    return "\n".join(lines), unplaced


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
        help="run only these variants of the --only example(s), keep the others' results",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--tables", action="store_true", help="print the README tables and exit")
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="write the tables into README.md in place of their previous versions",
    )
    p.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        default=None,
        help="merge result files of runs over disjoint seeds (one process per seed) into --results",
    )
    p.add_argument(
        "--device", default=None, help="pass --device to every example (default: theirs)"
    )
    args = p.parse_args(argv)
    if len(args.seeds) < 3 and not (args.tables or args.combine):
        print("note: fewer than 3 seeds; the README asks for >= 3", file=sys.stderr)

    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    if args.combine:
        parts = [json.loads(path.read_text()) for path in args.combine]
        for name in parts[0]:
            combined = combine([part[name] for part in parts])
            results[name] = merge(combined, results.get(name), name)
        text = json.dumps(results, indent=2) + "\n"
        atomic_write(args.results, lambda f, text=text: f.write(text.encode()))
        print(f"combined {len(parts)} files into {args.results}")
    elif not args.tables:
        sys.path.insert(0, str(ROOT / "examples"))
        extra = ["--device", args.device] if args.device else []
        for name in args.only or list(EXAMPLES):
            entry = run_example(name, args.seeds, extra, variants=args.variants)
            # re-read just before writing: another run of other variants may have finished
            if args.results.is_file():
                results = json.loads(args.results.read_text())
            results[name] = merge(entry, results.get(name), name)
            # written after each example: a long run that is stopped keeps what it finished
            text = json.dumps(results, indent=2) + "\n"
            atomic_write(args.results, lambda f, text=text: f.write(text.encode()))
        print(f"wrote {args.results}")
    rendered = tables(results)
    if args.update_readme:
        readme = ROOT / "README.md"
        text, unplaced = update_readme(readme.read_text(), rendered)
        atomic_write(readme, lambda f, text=text: f.write(text.encode()))
        print(f"updated {readme}" + (": these lines have no place there yet:" if unplaced else ""))
        print("\n".join(unplaced))
    else:
        for name, rows in rendered.items():
            print(f"\n{name}:\n" + "\n".join(rows))
    return results


if __name__ == "__main__":
    main()
