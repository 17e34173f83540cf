r"""Featurising many molecules: a skip report, worker processes and an on-disk cache.

:func:`featurize` turns a list of SMILES into graphs with a :class:`~gconv.data.GraphFeaturizer`
(in chunks, optionally in worker processes) and returns a :class:`Featurized`
``(graphs, indices, skipped)``. With ``cache_dir`` the result is written once to
``cache_dir/molgraphs-<hash>.pt`` and read back on later calls; the key hashes the SMILES list,
``largest_fragment`` and the featurisers' versions (:data:`~gconv.data.FEATURIZER_VERSION`, or
the hash of a custom feature table), so a changed featuriser never reads an old file.

Example::

    >>> result = featurize(["CCO", "C1CC"], on_error="skip", cache_dir="datasets/cache")
    >>> result.indices, result.skipped[0][:2]
    ([0], (1, 'C1CC'))
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from rdkit import Chem, rdBase
from torch_geometric.data import Data

from gconv._utils import atomic_save
from gconv.data.featurizers import (
    AtomFeaturizer,
    BondFeaturizer,
    GraphArrays,
    GraphFeaturizer,
    largest_fragment_of,
    parse_smiles,
)

__all__ = ["Featurized", "featurize"]


class Featurized(NamedTuple):
    """Result of :func:`featurize`.

    Attributes:
        graphs: One :class:`~torch_geometric.data.Data` per molecule that featurised.
        indices: ``indices[k]`` is the position in the input of ``graphs[k]``.
        skipped: ``(index, smiles, reason)`` for every input that failed (``on_error="skip"``).
    """

    graphs: list[Data]
    indices: list[int]
    skipped: list[tuple[int, str, str]]


# A chunk's result in NumPy arrays: cheap to pickle back from a worker and to cache. The last
# list holds the canonical SMILES of the featurised molecules (empty unless asked for).
_Chunk = tuple[list[int], list[GraphArrays], list[tuple[int, str, str]], list[str]]
_MOLS_PER_BATCH = 1024  # molecules one-hot encoded together: amortises NumPy, bounds memory


def _featurize_chunk(
    start: int,
    smiles_list: Sequence[str],
    largest_fragment: bool,
    featurizer: GraphFeaturizer,
    canonical: bool = False,
) -> _Chunk:
    indices, arrays, skipped, mols, canonical_smiles = [], [], [], [], []
    with rdBase.BlockLogs():
        for offset, smiles in enumerate(smiles_list):
            try:
                mol = parse_smiles(smiles)
            except (ValueError, TypeError) as err:
                skipped.append((start + offset, str(smiles), str(err)))
                continue
            if largest_fragment:  # here, so that the canonical SMILES is the featurised one's
                mol = largest_fragment_of(mol)
            if canonical:  # of the molecule already parsed: no second parse
                canonical_smiles.append(Chem.MolToSmiles(mol))
            mols.append(mol)
            indices.append(start + offset)
            if len(mols) == _MOLS_PER_BATCH:
                arrays += featurizer.arrays(mols)
                mols = []
    if mols:
        arrays += featurizer.arrays(mols)
    return indices, arrays, skipped, canonical_smiles


def _run_chunks(
    smiles_list: list[str],
    n_jobs: int,
    largest_fragment: bool,
    featurizer: GraphFeaturizer,
    canonical: bool = False,
) -> list[_Chunk]:
    if n_jobs == 1 or len(smiles_list) < 2 * n_jobs:
        return [_featurize_chunk(0, smiles_list, largest_fragment, featurizer, canonical)]
    # A few chunks per worker balances uneven molecule sizes without much pickling overhead.
    size = -(-len(smiles_list) // (4 * n_jobs))
    starts = list(range(0, len(smiles_list), size))
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        return list(
            pool.map(
                _featurize_chunk,
                starts,
                [smiles_list[s : s + size] for s in starts],
                [largest_fragment] * len(starts),
                [featurizer] * len(starts),  # the defaults pickle as None
                [canonical] * len(starts),
            )
        )


def _cache_path(
    cache_dir: str | os.PathLike,
    smiles_list: list[str],
    largest_fragment: bool,
    featurizer: GraphFeaturizer,
) -> Path:
    payload = json.dumps(
        [featurizer.versions, largest_fragment, smiles_list], default=repr, allow_nan=True
    )
    key = hashlib.sha256(payload.encode()).hexdigest()[:24]
    return Path(cache_dir) / f"molgraphs-{key}.pt"


def _save_cache(
    path: Path, chunks: list[_Chunk], smiles_list: list[str], featurizer: GraphFeaturizer
) -> None:
    indices = [i for chunk in chunks for i in chunk[0]]
    arrays = [a for chunk in chunks for a in chunk[1]]
    skipped = [list(s) for chunk in chunks for s in chunk[2]]
    atom_dim, bond_dim = len(featurizer.atom_featurizer), len(featurizer.bond_featurizer)
    state = {
        "version": featurizer.versions,
        "indices": torch.tensor(indices, dtype=torch.long),
        "num_nodes": torch.tensor([a.x.shape[0] for a in arrays], dtype=torch.long),
        "num_edges": torch.tensor([a.edge_index.shape[1] for a in arrays], dtype=torch.long),
        "x": torch.from_numpy(
            np.concatenate([a.x for a in arrays] or [np.zeros((0, atom_dim), np.float32)])
        ),
        "edge_index": torch.from_numpy(
            np.concatenate([a.edge_index for a in arrays], axis=1)
            if arrays
            else np.zeros((2, 0), np.int64)
        ),
        "edge_attr": torch.from_numpy(
            np.concatenate([a.edge_attr for a in arrays] or [np.zeros((0, bond_dim), np.float32)])
        ),
        "smiles": [str(smiles_list[i]) for i in indices],
        "skipped": skipped,
    }
    if all(len(chunk[3]) == len(chunk[0]) for chunk in chunks) and any(c[3] for c in chunks):
        state["canonical"] = [c for chunk in chunks for c in chunk[3]]
    atomic_save(state, path)  # readers never see half a file


def _load_cache(path: Path, featurizer: GraphFeaturizer, canonical: bool) -> Featurized | None:
    """The cached result, or :obj:`None` when canonical SMILES are wanted but the file (written
    without them, e.g. by gconv 0.1 or by :func:`featurize` without ``canonical``) lacks them."""
    state = torch.load(path, weights_only=True)
    if state.get("version") != featurizer.versions:  # the hash includes them; belt and braces
        raise ValueError(f"cache {path} was written by featurisers {state.get('version')!r}")
    if canonical and "canonical" not in state and len(state["smiles"]):
        return None
    xs = torch.split(state["x"], state["num_nodes"].tolist())
    edge_indices = torch.split(state["edge_index"], state["num_edges"].tolist(), dim=1)
    edge_attrs = torch.split(state["edge_attr"], state["num_edges"].tolist())
    graphs = [
        Data(x=x, edge_index=ei, edge_attr=ea, smiles=s)
        for x, ei, ea, s in zip(xs, edge_indices, edge_attrs, state["smiles"], strict=True)
    ]
    if canonical:
        for graph, smiles in zip(graphs, state.get("canonical", []), strict=True):
            graph.canonical_smiles = smiles
    skipped = [(int(i), str(s), str(r)) for i, s, r in state["skipped"]]
    return Featurized(graphs, state["indices"].tolist(), skipped)


def featurize(
    smiles_list: Sequence[str],
    n_jobs: int = 1,
    on_error: Literal["raise", "skip"] = "raise",
    cache_dir: str | os.PathLike | None = None,
    largest_fragment: bool = False,
    atom_featurizer: AtomFeaturizer | None = None,
    bond_featurizer: BondFeaturizer | None = None,
    canonical: bool = False,
) -> Featurized:
    r"""Featurises many SMILES strings into graphs (see :func:`~gconv.data.smiles_to_graph`).

    Args:
        smiles_list (Sequence[str]): The SMILES strings.
        n_jobs (int, optional): Worker processes; ``-1`` uses every CPU. Each worker returns
            NumPy arrays per chunk, so this pays off for tens of thousands of molecules on idle
            cores (on a busy 2-core machine it is slower than one process); inputs shorter
            than ``2 * n_jobs`` are featurised in-process. (default: :obj:`1`)
        on_error (str, optional): ``"raise"`` raises a :class:`ValueError` naming the index and
            the SMILES of the first bad input; ``"skip"`` leaves bad inputs out and lists them
            in :attr:`Featurized.skipped`. (default: :obj:`"raise"`)
        cache_dir (str or PathLike, optional): If given, the result is stored in (and later
            read from) ``cache_dir/molgraphs-<hash>.pt``, keyed by a SHA-256 of the SMILES list,
            the featurisers' versions and ``largest_fragment``. Written atomically, read with
            ``torch.load(weights_only=True)``. (default: :obj:`None`)
        largest_fragment (bool, optional): Keep only the largest fragment of each molecule.
            (default: :obj:`False`)
        atom_featurizer (AtomFeaturizer, optional): Another atom feature table, e.g.
            ``AtomFeaturizer((*ATOM_FEATURES, Feature(...)))``. (default: the 48 default atom
            features)
        bond_featurizer (BondFeaturizer, optional): Another bond feature table.
            (default: the 14 default bond features)
        canonical (bool, optional): Also give each graph ``canonical_smiles``, RDKit's
            canonical SMILES of the molecule as featurised (its largest fragment with
            ``largest_fragment``), written from the parsed molecule, not parsed again;
            :class:`~gconv.data.MoleculeDataset` finds duplicate molecules with it. Stored in
            the cache file too (a file without them is rewritten once). (default: :obj:`False`)

    Returns:
        :class:`Featurized` ``(graphs, indices, skipped)``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    if isinstance(smiles_list, str):
        raise TypeError("featurize expected a sequence of SMILES strings, got a single string")
    smiles_list = list(smiles_list)
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    featurizer = GraphFeaturizer(atom_featurizer, bond_featurizer)

    path = result = None
    if cache_dir is not None:
        path = _cache_path(cache_dir, smiles_list, largest_fragment, featurizer)
    if path is not None and path.exists():
        result = _load_cache(path, featurizer, canonical)
    if result is None:
        chunks = _run_chunks(smiles_list, n_jobs, largest_fragment, featurizer, canonical)
        if path is not None:
            _save_cache(path, chunks, smiles_list, featurizer)
        graphs = [
            arrays.to_data(str(smiles_list[i]))
            for chunk in chunks
            for i, arrays in zip(chunk[0], chunk[1], strict=True)
        ]
        if canonical:
            for graph, smiles in zip(
                graphs, (c for chunk in chunks for c in chunk[3]), strict=True
            ):
                graph.canonical_smiles = smiles
        result = Featurized(
            graphs=graphs,
            indices=[i for chunk in chunks for i in chunk[0]],
            skipped=[s for chunk in chunks for s in chunk[2]],
        )
    if on_error == "raise" and result.skipped:
        index, smiles, reason = result.skipped[0]
        raise ValueError(f"could not featurise molecule {index} ({smiles!r}): {reason}")
    return result
