"""Where a molecule's time goes in the store pass: CPU microseconds per molecule, piece by piece.

One process, one thread, ``time.process_time`` (CPU time: robust to other jobs on the machine,
unlike wall time), every piece timed ``--repeats`` times interleaved with the others, mean ± sd.
Molecules: ``--n`` spread evenly over the CSV ``--csv`` (``benchmarks/bench_scale.py``'s
generated million by default: every 1,000,000 / n-th row, so the sample has its mix of sizes),
and RDKit's embedded NCI set.

Pieces (each on molecules parsed beforehand, except parse and the passes):

    from_smiles        PyG's torch_geometric.utils.from_smiles (the reference of the ratio)
    parse              Chem.MolFromSmiles
    parse, quick       gconv's mol_from_smiles (SMILES without stereo or hydrogen atoms parsed
                       and sanitised only, no CIP ranks)
    codes              GraphFeaturizer.codes (degree and in-ring counted from the bonds)
    codes, no stereo   the same with ``stereo`` from the SMILES text (no '@', '/', '\\')
    canonical          Chem.MolToSmiles (the store no longer computes it: see graph hash)
    graph hash         GraphFeaturizer.graph_hashes of the codes (what the store finds
                       duplicates by; canonical SMILES only where hashes meet)
    scaffold           MurckoScaffoldSmiles(mol=mol, includeChirality=False)
    scaffold, rings    the same, skipped for molecules without rings (their scaffold is "")
    reference pass     per molecule, the plain RDKit calls: Chem.MolFromSmiles,
                       MurckoScaffoldSmiles, MolToSmiles, and every getter of every atom and
                       bond (AtomFeaturizer.codes / BondFeaturizer.codes)
    store pass         MoleculeStore.write of the list as one chunk, in this process (what a
                       worker runs on a chunk, files written); its arrays are checked equal to
                       the reference pass's

    python benchmarks/bench_store_pass.py [--csv datasets/scale/molecules_1000000.csv]
        [--n 4000] [--repeats 3] [--out benchmarks/results]

Writes ``<out>/store_pass.json`` and ``<out>/store_pass.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def sample_csv(path: Path, n: int) -> list[str]:
    """``n`` SMILES spread evenly over the file."""
    with open(path) as f:
        total = sum(1 for _ in f) - 1
    step = max(1, total // n)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return [row[0] for i, row in enumerate(reader) if i % step == 0][:n]


def reference_pass(smiles: list[str]) -> dict[str, object]:
    """The store pass done the plain way: one RDKit call after another, every getter read."""
    from rdkit import Chem, rdBase
    from rdkit.Chem.Scaffolds import MurckoScaffold

    from gconv.data.featurizers import GraphFeaturizer

    featurizer = GraphFeaturizer()
    canonical, scaffolds, atom_codes, bond_codes = [], [], [], []
    with rdBase.BlockLogs():
        for s in smiles:
            mol = Chem.MolFromSmiles(s.strip())
            if mol is None or mol.GetNumAtoms() == 0:
                continue
            scaffolds.append(MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False))
            canonical.append(Chem.MolToSmiles(mol))
            atom_codes += featurizer.atom_featurizer.codes(mol)
            bond_codes += featurizer.bond_featurizer.codes(mol)
    return {
        "canonical": canonical,
        "scaffold": scaffolds,
        "atom_codes": np.array(atom_codes, dtype=np.int64),
        "bond_codes": np.array(bond_codes, dtype=np.int64),
    }


def store_pass(smiles: list[str], directory: str) -> None:
    """The store pass on the list, as one chunk, in this process (what a worker runs)."""
    import shutil

    from gconv.data import MoleculeStore

    shutil.rmtree(directory, ignore_errors=True)  # else the complete store would be reused
    targets = np.zeros((len(smiles), 0), np.float32)
    MoleculeStore.write(
        directory, [(smiles, targets)], [], source={"bench": "store_pass"},
        chunk_rows=len(smiles),
    )  # fmt: skip


def check_equal(smiles: list[str], directory: str) -> None:
    """The store pass's store holds the reference pass's strings and codes."""
    from gconv.data import MoleculeStore

    store = MoleculeStore(directory)
    reference = reference_pass(smiles)
    positions = np.arange(len(store))
    assert store.canonical_smiles(positions) == reference["canonical"]
    assert store.strings("scaffold", positions) == reference["scaffold"]
    np.testing.assert_array_equal(store.field("atom_codes"), reference["atom_codes"])
    np.testing.assert_array_equal(store.field("bond_codes"), reference["bond_codes"])


def measure(smiles: list[str], repeats: int) -> dict[str, dict[str, float]]:
    from rdkit import Chem, rdBase
    from rdkit.Chem.Scaffolds import MurckoScaffold
    from torch_geometric.utils import from_smiles

    from gconv.data.featurizers import GraphFeaturizer, mol_from_smiles

    featurizer = GraphFeaturizer()
    rdBase.DisableLog("rdApp.*")
    parsed = [(s, Chem.MolFromSmiles(s)) for s in smiles]
    mols = [m for _, m in parsed if m is not None]
    stereo = [("@" in s or "/" in s or "\\" in s) for s, m in parsed if m is not None]
    directory = tempfile.mkdtemp(prefix="bench_store_pass-")
    codes = [featurizer.codes(mols[i : i + 1024]) for i in range(0, len(mols), 1024)]

    def scaffolds_with_rings() -> list[str]:
        return [
            MurckoScaffold.MurckoScaffoldSmiles(mol=m, includeChirality=False)
            if m.GetRingInfo().NumRings()
            else ""
            for m in mols
        ]

    pieces = {
        "from_smiles": lambda: [from_smiles(s) for s in smiles],
        "parse": lambda: [Chem.MolFromSmiles(s) for s in smiles],
        "parse, quick": lambda: [mol_from_smiles(s) for s in smiles],
        "codes": lambda: [featurizer.codes(mols[i : i + 1024]) for i in range(0, len(mols), 1024)],
        "codes, no stereo": lambda: [
            featurizer.codes(mols[i : i + 1024], stereo[i : i + 1024])
            for i in range(0, len(mols), 1024)
        ],
        "canonical": lambda: [Chem.MolToSmiles(m) for m in mols],
        "graph hash": lambda: [
            featurizer.graph_hashes(codes[i // 1024]) for i in range(0, len(mols), 1024)
        ],
        "scaffold": lambda: [
            MurckoScaffold.MurckoScaffoldSmiles(mol=m, includeChirality=False) for m in mols
        ],
        "scaffold, rings": scaffolds_with_rings,
        "reference pass": lambda: reference_pass(smiles),
        "store pass": lambda: store_pass(smiles, directory),
    }
    times: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(repeats):
        for name, piece in pieces.items():
            start = time.process_time()
            piece()
            times[name].append(1e6 * (time.process_time() - start) / len(smiles))
    check_equal(smiles, directory)
    return {
        name: {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0}
        for name, v in times.items()
    }


def render(report: dict) -> str:
    names = list(next(iter(report["sets"].values()))["pieces"])
    sets = list(report["sets"])
    lines = [
        "# The store pass, piece by piece: benchmarks/bench_store_pass.py",
        "",
        f"CPU microseconds a molecule (`time.process_time`, one process, one thread), mean ± sd "
        f"over {report['repeats']} interleaved repeats; load average {report['load_before']:.1f}"
        f" before, {report['load_after']:.1f} after (CPU time is robust to it, not immune: "
        "caches and memory bandwidth are shared). The store pass's arrays are checked equal to "
        "the reference pass's.",
        "",
        "| piece | " + " | ".join(f"{s} ({report['sets'][s]['molecules']:,})" for s in sets) + " |",
        "|---|" + "---:|" * len(sets),
    ]
    for name in names:
        cells = []
        for s in sets:
            piece = report["sets"][s]["pieces"][name]
            cells.append(f"{piece['mean']:.0f} ± {piece['sd']:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for ratio in ("reference pass", "store pass"):
        cells = []
        for s in sets:
            pieces = report["sets"][s]["pieces"]
            cells.append(f"{pieces['from_smiles']['mean'] / pieces[ratio]['mean']:.2f}x")
        lines.append(f"| from_smiles / {ratio} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path, default=Path("datasets/scale/molecules_1000000.csv"))
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from gconv.data import read_embedded

    load_before = os.getloadavg()[0]
    sets = {}
    if args.csv.exists():
        sets["generated"] = sample_csv(args.csv, args.n)
    else:
        print(f"{args.csv} not found (make it with benchmarks/bench_scale.py): NCI only")
    sets["NCI"] = read_embedded("tpsa")[0]
    report = {"repeats": args.repeats, "load_before": load_before, "sets": {}}
    for name, smiles in sets.items():
        print(f"{name}: {len(smiles):,} molecules ...", flush=True)
        report["sets"][name] = {"molecules": len(smiles), "pieces": measure(smiles, args.repeats)}
    report["load_after"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store_pass.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "store_pass.md").write_text(render(report))
    print(render(report))
    return report


if __name__ == "__main__":
    main()
