"""Molecules per second: gconv's featurize against PyG's from_smiles, on the same SMILES, in one run.

Data: the 4,991 NCI molecules of RDKit's ``Data/NCI/first_5k.tpsa.csv`` that RDKit can sanitise
(the same ones :func:`gconv.data.nci_tpsa` keeps). Pipelines, timed round-robin so that machine
noise (a shared CPU) hits them alike; the figure of merit is the ratio of median times:

    pyg.from_smiles      [torch_geometric.utils.from_smiles(s) for s in smiles]  (reference)
    gconv.featurize      featurize(smiles)                 one process, no cache
    gconv.featurize -jN  featurize(smiles, n_jobs=N)       worker processes (with --jobs N > 1)
    gconv cache hit      featurize(smiles, cache_dir=...)  reading back the atomic cache file

Both sides parse SMILES with RDKit and return one ``Data`` per molecule with ``x``,
``edge_index``, ``edge_attr``, ``smiles`` (PyG: 9 integer columns per atom, gconv: 48 one-hot
float32 columns).

    python benchmarks/bench_featurize.py [--repeats 3] [--jobs 2] [--out runs/bench_featurize.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from torch_geometric.utils import from_smiles

from gconv.data import featurize, nci_tpsa


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="also time featurize(n_jobs=JOBS)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_featurize.json"))
    args = parser.parse_args()

    # ---------------------------------------------------------------- data
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 8 unsanitisable NCI rows; we keep only valid ones
        smiles = nci_tpsa().smiles
    cache_dir = Path(tempfile.mkdtemp(prefix="bench_featurize_"))
    featurize(smiles, cache_dir=cache_dir)  # write the cache once, outside the timings

    pipelines = {
        "pyg.from_smiles": lambda: [from_smiles(s) for s in smiles],
        "gconv.featurize": lambda: featurize(smiles).graphs,
        "gconv cache hit": lambda: featurize(smiles, cache_dir=cache_dir).graphs,
    }
    if args.jobs > 1:
        pipelines[f"gconv.featurize -j{args.jobs}"] = lambda: (
            featurize(smiles, n_jobs=args.jobs).graphs
        )

    # ---------------------------------------------------------------- timing (round-robin)
    seconds: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(args.repeats):
        for name, run in pipelines.items():
            start = time.perf_counter()
            graphs = run()
            seconds[name].append(time.perf_counter() - start)
            assert len(graphs) == len(smiles)

    # ---------------------------------------------------------------- report
    reference = statistics.median(seconds["pyg.from_smiles"])
    rows = []
    print(f"{len(smiles)} molecules, median of {args.repeats} round-robin runs")
    print(f"{'pipeline':<24}{'seconds':>10}{'mol/s':>12}{'speed-up':>10}")
    for name, times in seconds.items():
        median = statistics.median(times)
        row = {
            "pipeline": name,
            "seconds": median,
            "mol_per_s": len(smiles) / median,
            "speedup_vs_pyg": reference / median,
        }
        rows.append(row)
        print(f"{name:<24}{median:>10.3f}{row['mol_per_s']:>12.0f}{row['speedup_vs_pyg']:>9.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"num_molecules": len(smiles), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
