"""What the molecule data rooms share (:mod:`gconv.data.datasets` in memory,
:mod:`gconv.data.store` on disk): reading a target cell, merging the labels of rows that hold one
molecule, and checking that every task is labelled in the training part. One implementation, so
that both paths give the same data set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FLOAT32_MAX",
    "MISSING",
    "parse_target",
    "merge_duplicate_groups",
    "check_training_labels",
    "SPLIT_NAMES",
    "split_positions",
]

FLOAT32_MAX = float(np.finfo(np.float32).max)
MISSING = {"", "nan", "na", "n/a", "none", "null"}  # target cells read as NaN (case-insensitive)
#: predefined split labels (case-insensitive) -> the part they name
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def parse_target(cell: str | None, row: int, column: str) -> float:
    """A CSV target cell as a float: NaN for a missing label; a :class:`ValueError` naming row
    and column for text or a value float32 cannot hold."""
    if cell is None or cell.strip().lower() in MISSING:
        return float("nan")
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(
            f"row {row}, column {column!r}: expected a number or an empty cell, got {cell!r}"
        ) from None
    if abs(value) > FLOAT32_MAX:  # inf, -inf, 1e400 (inf once parsed), 1e39 (inf as float32)
        raise ValueError(
            f"row {row}, column {column!r}: {cell.strip()!r} is not a finite float32 number "
            f"(|y| <= {FLOAT32_MAX:.4g}); leave the cell empty (or write nan) for a missing label"
        )
    return value


def merge_duplicate_groups(
    groups: Sequence[Sequence[int]],
    y: Tensor,
    rows: Sequence[int],
    smiles_of: Callable[[int], str],
    canonical_of: Callable[[int], str],
    target_names: Sequence[str],
    rule: str,
) -> tuple[list[int], dict[int, Tensor], list[tuple[int, str, int, tuple[float, ...]]], int]:
    """Merges the labels of each group of positions holding one molecule into its first.

    Args:
        groups: Positions of the copies of one molecule (two or more each), groups in the order
            of their first position.
        y: ``[num_molecules, num_tasks]`` labels (NaN where missing).
        rows: The input row of each position.
        smiles_of: A position's SMILES as written (the merged rows' report).
        canonical_of: A position's canonical SMILES (the molecule's name in messages).
        target_names: The task names, for messages.
        rule: ``"error"``, ``"mean"`` or ``"first"`` for copies whose labels differ.

    Returns:
        ``(dropped positions, {kept position: merged labels [num_tasks]}, merged rows as
        (row, smiles, kept_row, labels) sorted by row, number of molecules with conflicting
        labels)``.

    Raises:
        ValueError: conflicting labels under ``rule="error"``, naming up to three molecules.
    """
    dropped: list[int] = []
    kept_y: dict[int, Tensor] = {}
    merged: list[tuple[int, str, int, tuple[float, ...]]] = []
    conflicts: list[str] = []
    for group in groups:
        labels = y[list(group)]  # [copies, tasks]
        merged_y = torch.full((labels.size(1),), float("nan"))
        conflict = []
        for t in range(labels.size(1)):
            values = labels[:, t][~torch.isnan(labels[:, t])]
            if len(values) == 0:
                continue
            if (values != values[0]).any():
                conflict.append(t)
                merged_y[t] = values.mean() if rule == "mean" else values[0]
            else:
                merged_y[t] = values[0]
        kept = group[0]
        if conflict:
            cells = "; ".join(
                f"{target_names[t]}: " + ", ".join(f"{v:g}" for v in labels[:, t].tolist())
                for t in conflict
            )
            conflicts.append(
                f"{canonical_of(kept)!r} in rows {', '.join(str(rows[p]) for p in group)} ({cells})"
            )
        kept_y[kept] = merged_y
        for p in group[1:]:
            dropped.append(p)
            merged.append((int(rows[p]), smiles_of(p), int(rows[kept]), tuple(y[p].tolist())))
    if conflicts and rule == "error":
        shown = "; ".join(conflicts[:3]) + (
            f"; and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
        )
        raise ValueError(
            f"{len(conflicts)} molecule(s) appear in several rows with different labels "
            f"(same canonical SMILES): {shown}. Set duplicates to 'mean' to average such "
            "copies, or to 'first' to keep the first row's label"
        )
    merged.sort(key=lambda m: m[0])
    return dropped, kept_y, merged, len(conflicts)


def check_training_labels(train: Any, val: Any, test: Any, how: str) -> None:
    """Every task needs a label in the training part (an empty part is the caller's to
    report): a task labelled only in validation / test cannot be learnt, and its targets
    cannot be standardised."""
    if not train.target_names or len(train) == 0:
        return
    y = train.y
    unlabelled = [t for t in range(train.num_tasks) if torch.isnan(y[:, t]).all()]
    if not unlabelled:
        return
    t = unlabelled[0]
    elsewhere = [
        f"{int((~torch.isnan(part.y[:, t])).sum())} in {name}"
        for name, part in (("val", val), ("test", test))
        if len(part) and (~torch.isnan(part.y[:, t])).any()
    ]
    names = [train.target_names[u] for u in unlabelled]
    raise ValueError(
        f"target column {names[0]!r} has no labels in the train split of {how} "
        f"({len(train)} molecules); its labels are "
        + (" and ".join(elsewhere) if elsewhere else "nowhere")
        + (f" (also unlabelled in train: {names[1:]})" if len(names) > 1 else "")
        + "; a model cannot learn it: label it for training molecules, or leave the column out"
    )


def split_positions(
    labels: Sequence[str],
    size: int,
    rows: Sequence[int],
    num_rows: int,
    smiles_of: Callable[[int], str],
    duplicates: Sequence[Any],
) -> dict[str, list[int]]:
    """The positions of a data set's molecules in each part (``"train"``, ``"val"``,
    ``"test"``) of a predefined split, for ``split_by`` of the in-memory and the on-disk data
    set: ``labels`` holds one label per molecule (``size``) or one per input row
    (``num_rows``; molecule ``p`` came from row ``rows[p]``, and rows merged into an earlier
    copy of their molecule (``duplicates``) must carry its split). ``smiles_of(p)`` names
    molecule ``p`` in an error, read only then.

    Raises:
        ValueError: for a wrong number of labels, a label outside :data:`SPLIT_NAMES` (naming
            the row and its SMILES), or copies of one molecule in different splits.
    """
    labels = list(labels)
    if len(labels) == size:
        per_molecule, by_row = labels, False
    elif len(labels) == num_rows:
        per_molecule, by_row = [labels[row] for row in rows], True
    else:
        raise ValueError(
            f"split_by expected {size} labels, one per molecule, or {num_rows}, "
            f"one per input row, got {len(labels)}"
        )

    def split_of(label: str, row: int, smiles: Callable[[], str]) -> str:
        key = SPLIT_NAMES.get(str(label).strip().lower())
        if key is None:
            raise ValueError(
                f"row {row} ({smiles()!r}): split label {label!r} is not one of train / val / test"
            )
        return key

    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for position, label in enumerate(per_molecule):
        parts[split_of(label, rows[position], lambda p=position: smiles_of(p))].append(position)
    if by_row and duplicates:
        position_of = {row: position for position, row in enumerate(rows)}
        for dup in duplicates:
            kept, own = labels[dup.kept_row], labels[dup.row]
            kept_key = split_of(
                kept, dup.kept_row, lambda d=dup: smiles_of(position_of[d.kept_row])
            )
            if split_of(own, dup.row, lambda d=dup: d.smiles) != kept_key:
                raise ValueError(
                    f"rows {dup.kept_row} and {dup.row} hold the same molecule "
                    f"({dup.smiles!r}) but their split labels are {kept!r} and {own!r}: "
                    "one molecule cannot be in two splits; give its rows one split label"
                )
    return parts
