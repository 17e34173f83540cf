"""The store pass's two shortcuts against the plain RDKit calls, on every molecule of a CSV.

``tests/data/test_store_shortcuts.py`` checks them on the embedded sets and hand-picked edge
cases; this checks the generated million of ``benchmarks/bench_scale.py`` (about 7 minutes on
one core), molecule by molecule:

* codes read with ``GraphFeaturizer.codes(mols, stereo)``, ``stereo`` from the SMILES text (no
  ``@``, ``/`` or ``\\``: chirality and bond stereo not read) equal the codes read in full;
* a molecule without rings has ``MurckoScaffoldSmiles(mol=mol, includeChirality=False) == ""``.

    python benchmarks/check_store_shortcuts.py [datasets/scale/molecules_1000000.csv]

Prints the counts and every mismatch; exits 1 if there is one.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterator

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold

from gconv.data import GraphFeaturizer, read_embedded


def smiles_of(path: str) -> Iterator[str]:
    for name in ("tpsa", "chembl"):
        yield from read_embedded(name)[0]
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for record in reader:
            yield record[0]


def main(path: str = "datasets/scale/molecules_1000000.csv") -> int:
    featurizer = GraphFeaturizer()
    checked = ring_free = mismatches = 0
    batch: list[tuple[str, Chem.Mol]] = []
    start = time.perf_counter()

    def check(batch: list[tuple[str, Chem.Mol]]) -> int:
        mols = [m for _, m in batch]
        stereo = [("@" in s or "/" in s or "\\" in s) for s, _ in batch]
        full, short = featurizer.codes(mols), featurizer.codes(mols, stereo)
        if all(np.array_equal(a, b) for a, b in zip(full, short, strict=True)):
            return 0
        bad = 0
        for (smiles, mol), has_stereo in zip(batch, stereo, strict=True):
            one, two = featurizer.codes([mol]), featurizer.codes([mol], [has_stereo])
            if not all(np.array_equal(a, b) for a, b in zip(one, two, strict=True)):
                print(f"codes differ: {smiles}", flush=True)
                bad += 1
        return bad

    with rdBase.BlockLogs():
        for smiles in smiles_of(path):
            mol = Chem.MolFromSmiles(smiles)
            if mol is None or mol.GetNumAtoms() == 0:
                continue
            checked += 1
            if not mol.GetRingInfo().NumRings():
                ring_free += 1
                scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)
                if scaffold != "":
                    print(f"scaffold of a ring-free molecule: {smiles} -> {scaffold!r}")
                    mismatches += 1
            batch.append((smiles, mol))
            if len(batch) == 1024:
                mismatches += check(batch)
                batch = []
            if checked % 100_000 == 0:
                print(f"{checked:,} checked ({time.perf_counter() - start:.0f} s)", flush=True)
        if batch:
            mismatches += check(batch)
    print(f"molecules {checked:,}, without rings {ring_free:,}, mismatches {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
