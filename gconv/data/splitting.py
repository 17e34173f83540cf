r"""Train / validation / test splits of molecule data sets, as index lists.

* :func:`random_split_indices`: a seeded random permutation cut by the given fractions.
* :func:`scaffold_split_indices`: chemprop's balanced Bemis-Murcko scaffold split, in which every
  scaffold group lands in exactly one part (:func:`murcko_scaffold` gives the groups).

Both return ``(train, val, test)`` lists of indices; :meth:`gconv.data.MoleculeDataset.split`
applies them. The names say what comes back: :func:`torch.utils.data.random_split` splits a
``Dataset`` into subsets, these split a count (or a list of SMILES) into index lists.

Example::

    >>> train, val, test = scaffold_split_indices(dataset.smiles, (0.8, 0.1, 0.1), seed=0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from rdkit import rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold

from gconv.data.featurizers import mol_from_smiles

__all__ = [
    "random_split_indices",
    "scaffold_split_indices",
    "scaffold_split_positions",
    "murcko_scaffold",
]

SplitIndices = tuple[list[int], list[int], list[int]]


def _split_sizes(num_items: int, sizes: Sequence[float]) -> tuple[int, int, int]:
    if len(sizes) != 3 or any(s < 0 for s in sizes) or not math.isclose(sum(sizes), 1.0):
        raise ValueError(f"sizes must be three non-negative fractions summing to 1, got {sizes}")
    num_train = int(round(sizes[0] * num_items))
    num_val = int(round(sizes[1] * num_items))
    return num_train, num_val, num_items - num_train - num_val


def random_split_indices(
    num_items: int, sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> SplitIndices:
    """Seeded random ``(train, val, test)`` index lists of ``range(num_items)`` with the given
    fractions (``np.random.default_rng(seed).permutation``, cut in order)."""
    num_train, num_val, _ = _split_sizes(num_items, sizes)
    order = np.random.default_rng(seed).permutation(num_items).tolist()
    return order[:num_train], order[num_train : num_train + num_val], order[num_train + num_val :]


def murcko_scaffold(smiles: str) -> str:
    """Bemis-Murcko scaffold SMILES (ring systems + linkers; ``""`` for acyclic molecules)."""
    with rdBase.BlockLogs():
        mol = mol_from_smiles(smiles)
    if mol is None:
        raise ValueError(f"murcko_scaffold could not parse SMILES {smiles!r}")
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split_indices(
    smiles: Sequence[str],
    sizes: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    scaffolds: Sequence[str] | None = None,
) -> SplitIndices:
    """Bemis-Murcko scaffold split: every scaffold group lands in exactly one split.

    As in chemprop's balanced scaffold split: groups too big for the validation or test
    budget (more than half of it) go first, largest first, so they end up in train; the
    remaining groups follow in a seeded random order. Each group goes to train while it fits,
    else to validation while it fits, else to test. All acyclic molecules share the empty
    scaffold and form one group.

    ``scaffolds``, one :func:`murcko_scaffold` per SMILES computed before (a
    :class:`~gconv.data.StoreDataset` keeps them from its streaming pass), saves parsing the
    molecules again; ``smiles`` then only gives the count.

    Returns:
        ``(train, val, test)`` index lists into ``smiles``.
    """
    if scaffolds is not None and len(scaffolds) != len(smiles):
        raise ValueError(f"expected {len(smiles)} scaffolds, one per SMILES, got {len(scaffolds)}")
    keys = scaffolds if scaffolds is not None else map(murcko_scaffold, smiles)
    parts = scaffold_split_positions(len(smiles), sizes, seed, keys)
    return parts[0].tolist(), parts[1].tolist(), parts[2].tolist()


def scaffold_split_positions(
    count: int, sizes: Sequence[float], seed: int, scaffolds: Iterable[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`scaffold_split_indices` from ``count`` scaffolds (read once, in order), as int64
    arrays: a molecule costs 8 bytes while the groups are made, not a Python int in a list
    (a store's million molecules)."""
    num_train, num_val, num_test = _split_sizes(count, sizes)
    names: dict[str, int] = {}  # scaffold -> group, in order of first appearance
    group = np.fromiter(
        (names.setdefault(scaffold, len(names)) for scaffold in scaffolds), np.int64
    )
    if len(group) != count:
        raise ValueError(f"expected {count} scaffolds, one per SMILES, got {len(group)}")
    group_size = np.bincount(group, minlength=len(names))
    # Groups in the order of their sorted scaffolds, so that the seeded shuffle does not depend
    # on the order of first appearance.
    by_name = np.fromiter((names[name] for name in sorted(names)), np.int64, len(names))
    rng = np.random.default_rng(seed)
    is_big = group_size[by_name] > min(num_val, num_test) / 2
    big, small = by_name[is_big], by_name[~is_big]
    big = big[rng.permutation(len(big))]
    big = big[np.argsort(-group_size[big], kind="stable")]  # equal sizes keep the seeded order
    small = small[rng.permutation(len(small))]
    order = np.concatenate([big, small])

    part_of = np.empty(len(names), dtype=np.int8)  # each group goes to the first part it fits
    limits, filled = (num_train, num_val), [0, 0]
    for g, size in zip(order.tolist(), group_size[order].tolist(), strict=True):
        part = 0 if filled[0] + size <= limits[0] else 1 if filled[1] + size <= limits[1] else 2
        part_of[g] = part
        if part < 2:
            filled[part] += size
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(order))
    # molecules by their group's turn, each group's in ascending position (stable)
    positions = np.argsort(rank[group], kind="stable")
    part = part_of[group[positions]]
    return positions[part == 0], positions[part == 1], positions[part == 2]
