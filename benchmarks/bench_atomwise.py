"""The atomwise logP model explained on **validation** molecules: which method to recommend for
it, and whether a shorter reach of its atom embeddings brings its per-atom terms closer to
Crippen's (an experiment).

    python benchmarks/bench_atomwise.py                       # depth 3 and 1, seeds 0-2 (~20 min)
    python benchmarks/bench_atomwise.py --layers 3 --seeds 0

``bench_explain.py --part logp`` scores every method on the scaffold *test* molecules; the
recommendation of :func:`gconv.explain.recommended_explainer` must not be chosen on them. This
trains the same model with the same recipe (Crippen logP of the NCI molecules, scaffold split,
the molecule tool's D-MPNN with the atomwise readout, 100 epochs; ``--layers`` message-passing
steps, 3 being the tool's default) and scores the candidates — the exact decomposition,
occlusion, integrated gradients from zero atom features — on the first 200 *validation*
molecules, as ``bench_explain.py`` scores (per-molecule Pearson r and Kendall tau with the
Crippen contributions), with the validation RMSE and ms per molecule.

Depth: Crippen types an atom by itself and its bonded neighbours, while a D-MPNN of depth 3 gives
each atom an embedding that sees three bonds away, so an atomwise model may keep a neighbour's
share in an atom's term; depth 1 sees the bonded neighbours only. Writes
``benchmarks/results/atomwise_validation.md`` and ``.json`` (after each depth).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import bench_explain as bench
import torch
from torch_geometric.data import Batch

from gconv.explain import IntegratedGradients, Occlusion, ReadoutDecomposition

RESULTS = Path(__file__).resolve().parent / "results" / "atomwise_validation"
METHODS = ("ReadoutDecomposition", "Occlusion", "IntegratedGradients (zero features)")


def run(seed: int, layers: int) -> dict:
    trained = bench.train_molecule_model("logp", seed, readout="atomwise", layers=layers)
    model, graphs = trained["model"], list(trained["val"])[: bench.ATOMS_EXPLAINED]
    truth = trained["val_truth"][: bench.ATOMS_EXPLAINED]
    batch = Batch.from_data_list(graphs)
    sizes = torch.bincount(batch.batch).tolist()
    result = {"val_rmse": trained["val_rmse"]}
    explainers = (ReadoutDecomposition(model), Occlusion(model), IntegratedGradients(model))
    methods = dict(zip(METHODS, explainers, strict=True))
    for name, method in methods.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            method(Batch.from_data_list(graphs[:2]), target=0)  # warm-up
            start = time.process_time()
            scores = bench.node_scores(method(batch, target=0).node_mask)
            seconds = time.process_time() - start
        per_molecule = [s.numpy() for s in scores.split(sizes)]
        result[name] = {
            **bench.atom_agreement(per_molecule, truth, "logp"),
            "ms_per_molecule": 1000 * seconds / len(graphs),
        }
    print(f"seed {seed} layers {layers}: {result}", flush=True)
    return result


def render(results: dict, machines: dict) -> str:
    where = "; ".join(f"depth {layers}: {machine}" for layers, machine in machines.items())
    lines = [
        "The atomwise D-MPNN on Crippen logP, explained on 200 **validation** molecules per seed "
        f"(`benchmarks/bench_atomwise.py`, written by the script; {where}). Per-molecule "
        "Pearson r / Kendall tau with the Crippen atom contributions, mean ± sd over the seeds; "
        "ms per molecule: CPU time, median over the seeds.",
        "",
        "| depth | val RMSE | method | Pearson r | Kendall tau | ms / molecule (CPU) |",
        "|---:|---:|---|---:|---:|---:|",
    ]

    def cell(stats: dict) -> str:
        return f"{stats['mean']:.3f} ± {stats['sd']:.3f}"

    for layers, row in results.items():
        for name in METHODS:
            lines.append(
                f"| {layers} | {cell(row['val_rmse'])} | {name} | {cell(row[name]['pearson'])} "
                f"| {cell(row[name]['kendall'])} | {row[name]['ms_per_molecule']['median']:.3g} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[3, 1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    stored = (
        json.loads(RESULTS.with_suffix(".json").read_text())
        if RESULTS.with_suffix(".json").exists()
        else {}
    )
    results: dict = stored.get("layers", {})  # other depths, run before, are kept
    machines: dict = stored.get("machines", {})
    for layers in args.layers:
        results[str(layers)] = bench.summarise([run(seed, layers) for seed in args.seeds])
        machine = (
            f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, 1 thread, load average {load:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end, seeds {args.seeds}"
        )
        machines[str(layers)] = machine
        text = render(results, machines)
        print(text, flush=True)
        RESULTS.with_suffix(".md").write_text(text)
        RESULTS.with_suffix(".json").write_text(
            json.dumps({"machines": machines, "layers": results}, indent=1) + "\n"
        )
    return results


if __name__ == "__main__":
    main()
