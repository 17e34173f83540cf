"""A tiny molecule set for the molecule-tool tests (imported as ``molecule_data``: pytest puts this
folder on ``sys.path``).

50 molecules (a carbon chain of 1-10 atoms with one of five end groups), with targets that follow
from the structure: ``size`` (2 per carbon + 5 per oxygen, additive), ``has_o`` (binary), ``has_n``
(binary, every fifth label missing) and ``group`` (3 classes).
"""

from __future__ import annotations

import csv
from pathlib import Path

ENDS = ["O", "N", "Cl", "c1ccccc1", "C(=O)O"]
QUICK = ["--epochs", "3", "--hidden", "16", "--head-hidden", "16", "--quiet", "--split", "random"]


def molecules() -> list[dict[str, str]]:
    rows = []
    for n in range(1, 11):
        for k, end in enumerate(ENDS):
            smiles = "C" * n + end
            i = len(rows)
            rows.append(
                {
                    "smiles": smiles,
                    "size": str(2 * smiles.count("C") + 5 * smiles.count("O")),
                    "has_o": str(int("O" in end)),
                    "has_n": "" if i % 5 == 4 else str(int("N" in end)),
                    "group": str(0 if k < 2 else 1 if k < 4 else 2),
                    "id": f"m{i}",
                }
            )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
