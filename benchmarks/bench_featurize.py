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

    python benchmarks/bench_featurize.py [--repeats 3] [--jobs 2] [--out runs/bench_featurize]

The work is deterministic: ``--seed`` only numbers a run (``benchmarks/reproduce.py --only
bench_featurize`` makes three and reports each ratio's spread).
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="also time featurize(n_jobs=JOBS)")
    parser.add_argument("--seed", type=int, default=0, help="the run's number (nothing random)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_featurize"), help="folder")
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    parser.add_argument("--device", help="ignored: RDKit featurises on the CPU (reproduce.py)")
    args = parser.parse_args(argv)

    # ---------------------------------------------------------------- data
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 8 unsanitisable NCI rows; we keep only valid ones
        tpsa = nci_tpsa()
    # every sanitisable row, the 99 repeats that nci_tpsa() merges included (4,991 molecules)
    smiles = tpsa.smiles + [duplicate.smiles for duplicate in tpsa.duplicates]
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
    for name, times in seconds.items():
        median = statistics.median(times)
        rows.append(
            {
                "pipeline": name,
                "seconds": median,
                "mol_per_s": len(smiles) / median,
                "speedup_vs_pyg": reference / median,
            }
        )
    by_name = {row["pipeline"]: row for row in rows}
    result = {
        "num_molecules": len(smiles),
        "pyg_mol_per_s": by_name["pyg.from_smiles"]["mol_per_s"],
        "gconv_mol_per_s": by_name["gconv.featurize"]["mol_per_s"],
        "cache_mol_per_s": by_name["gconv cache hit"]["mol_per_s"],
        "speedup": by_name["gconv.featurize"]["speedup_vs_pyg"],
        "seed": args.seed,
        "results": rows,
    }
    if not args.quiet:
        print(f"{len(smiles)} molecules, median of {args.repeats} round-robin runs")
        print(f"{'pipeline':<24}{'seconds':>10}{'mol/s':>12}{'speed-up':>10}")
        for row in rows:
            print(
                f"{row['pipeline']:<24}{row['seconds']:>10.3f}{row['mol_per_s']:>12.0f}"
                f"{row['speedup_vs_pyg']:>9.2f}x"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_featurize.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
