r"""Molecules as graphs: SMILES / RDKit ``Mol`` -> :class:`torch_geometric.data.Data`.

A molecule becomes a graph whose nodes are its heavy atoms (hydrogens are folded into the
atom features as counts, as in chemprop and PyG's :func:`~torch_geometric.utils.from_smiles`)
and whose edges are its bonds, stored once in each direction.

Features are produced by two small callables with documented, versioned feature lists
(in the spirit of chemprop v2's ``featurizers/``):

* :class:`AtomFeaturizer` (:data:`ATOM_FEATURE_NAMES`, :data:`ATOM_FEATURE_DIM` = 48 columns)
* :class:`BondFeaturizer` (:data:`BOND_FEATURE_NAMES`, :data:`BOND_FEATURE_DIM` = 14 columns)

Every categorical feature is one-hot with an extra *unknown* slot, so rare values (a
hexavalent sulfur's degree, a metal) never raise and never collide with a real category.
Each featuriser reads the raw RDKit properties of all atoms (bonds) in one pass into an
integer array and one-hots it in a single NumPy scatter, so a molecule costs one Python loop
over its atoms and one over its bonds, never one ``torch.tensor`` call per feature.

:data:`FEATURIZER_VERSION` changes whenever a feature list changes; it is part of every
cache key, so a cache written by an older featuriser is never read back by a newer one.

Example::

    >>> data = smiles_to_graph("CCO")
    >>> data
    Data(x=[3, 48], edge_index=[2, 4], edge_attr=[4, 14], smiles='CCO')
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from rdkit import Chem, rdBase
from torch_geometric.data import Data

__all__ = [
    "FEATURIZER_VERSION",
    "ELEMENTS",
    "ATOM_FEATURES",
    "BOND_FEATURES",
    "ATOM_FEATURE_NAMES",
    "BOND_FEATURE_NAMES",
    "ATOM_FEATURE_DIM",
    "BOND_FEATURE_DIM",
    "AtomFeaturizer",
    "BondFeaturizer",
    "Featurized",
    "mol_to_graph",
    "smiles_to_graph",
    "parse_smiles",
    "featurize",
]

FEATURIZER_VERSION = "gconv-mol-v1"

#: Elements with their own one-hot slot; every other element (metals, noble gases, ...) shares
#: the ``element=other`` slot. Covers the organic subset plus the halogens and Se.
ELEMENTS: tuple[str, ...] = ("H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Se", "Br", "I")

_HYB = Chem.rdchem.HybridizationType
_CHI = Chem.rdchem.ChiralType
_BT = Chem.rdchem.BondType
_BS = Chem.rdchem.BondStereo

#: Atom feature groups, in column order: ``(name, choices)``. Categorical groups get one column
#: per choice plus an ``unknown`` column; ``choices=None`` marks a single 0/1 column.
ATOM_FEATURES: tuple[tuple[str, tuple | None], ...] = (
    ("element", ELEMENTS),  # atomic symbol; unknown slot is named "other"
    ("degree", (0, 1, 2, 3, 4, 5)),  # number of heavy-atom neighbours (= graph degree)
    ("formal_charge", (-2, -1, 0, 1, 2)),
    ("hybridization", ("S", "SP", "SP2", "SP2D", "SP3", "SP3D", "SP3D2")),
    ("aromatic", None),
    ("num_hs", (0, 1, 2, 3, 4)),  # total (implicit + explicit) hydrogens
    ("in_ring", None),
    ("chirality", ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER")),
)

#: Bond feature groups, in column order (same convention as :data:`ATOM_FEATURES`).
BOND_FEATURES: tuple[tuple[str, tuple | None], ...] = (
    ("bond_type", ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")),
    ("conjugated", None),
    ("in_ring", None),
    ("stereo", ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS")),
)


def _feature_names(groups: tuple[tuple[str, tuple | None], ...]) -> list[str]:
    names = []
    for group, choices in groups:
        if choices is None:
            names.append(group)
        else:
            names.extend(f"{group}={choice}" for choice in choices)
            names.append(f"{group}={'other' if group == 'element' else 'unknown'}")
    return names


#: Column names of ``data.x``, e.g. ``"element=C"``, ``"degree=unknown"``, ``"aromatic"``.
ATOM_FEATURE_NAMES: list[str] = _feature_names(ATOM_FEATURES)
#: Column names of ``data.edge_attr``, e.g. ``"bond_type=AROMATIC"``, ``"conjugated"``.
BOND_FEATURE_NAMES: list[str] = _feature_names(BOND_FEATURES)
ATOM_FEATURE_DIM: int = len(ATOM_FEATURE_NAMES)
BOND_FEATURE_DIM: int = len(BOND_FEATURE_NAMES)


class _OneHot:
    """Maps integer codes of several feature groups to global one-hot columns in one shot.

    ``codes`` is an integer array ``[num_items, num_groups]`` of raw RDKit codes (atomic
    number, degree, enum value, ...). All categorical groups share one lookup table: group
    ``g`` owns ``table[base[g] : base[g] + size[g]]``, indexed by ``code - low[g]`` clipped to
    the group's range, whose first and last entries are the unknown column (so codes below or
    above the listed choices land there). Binary groups are copied as 0/1 into one column each.
    """

    def __init__(self, groups: list[dict[int, int] | None], dim: int) -> None:
        self.dim = dim
        tables, low, base, size, cat_groups, bin_groups, bin_columns = [], [], [], [], [], [], []
        column = offset = 0
        for g, code_to_slot in enumerate(groups):
            if code_to_slot is None:
                bin_groups.append(g)
                bin_columns.append(column)
                column += 1
                continue
            unknown = column + len(code_to_slot)
            lo, hi = min(code_to_slot) - 1, max(code_to_slot) + 1  # padded by unknown sentinels
            table = np.full(hi - lo + 1, unknown, dtype=np.int64)
            for code, slot in code_to_slot.items():
                table[code - lo] = column + slot
            tables.append(table)
            cat_groups.append(g)
            low.append(lo)
            base.append(offset)
            size.append(len(table))
            offset += len(table)
            column = unknown + 1
        if column != dim:
            raise RuntimeError(f"one-hot layout has {column} columns, feature lists say {dim}")
        self.table = np.concatenate(tables)
        self.cat_groups = np.array(cat_groups)
        self.low = np.array(low)
        self.base = np.array(base)
        self.high = np.array(size) - 1
        self.bin_groups = np.array(bin_groups, dtype=np.int64)
        self.bin_columns = np.array(bin_columns, dtype=np.int64)

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        num_items = codes.shape[0]
        out = np.zeros((num_items, self.dim), dtype=np.float32)
        local = np.clip(codes[:, self.cat_groups] - self.low, 0, self.high)
        out[np.arange(num_items)[:, None], self.table[local + self.base]] = 1.0
        out[:, self.bin_columns] = codes[:, self.bin_groups]
        return out


def _enum_codes(enum: type, names: tuple[str, ...]) -> dict[int, int]:
    return {int(getattr(enum, name)): slot for slot, name in enumerate(names)}


class AtomFeaturizer:
    r"""Atom features, version :data:`FEATURIZER_VERSION`: ``mol -> float32 [num_atoms, 48]``.

    Column groups, in order (each categorical group ends with an unknown slot):

    ============== ======================================================= =======
    group          choices                                                 columns
    ============== ======================================================= =======
    element        H B C N O F Si P S Cl Se Br I, other                    14
    degree         0-5 heavy-atom neighbours, unknown                      7
    formal_charge  -2 -1 0 +1 +2, unknown                                  6
    hybridization  S SP SP2 SP2D SP3 SP3D SP3D2, unknown                   8
    aromatic       0/1                                                     1
    num_hs         0-4 total hydrogens, unknown                            6
    in_ring        0/1                                                     1
    chirality      unspecified, tetrahedral CW, CCW, other, unknown        5
    ============== ======================================================= =======

    Names of all columns are in :data:`ATOM_FEATURE_NAMES`.
    """

    version: str = FEATURIZER_VERSION
    feature_names: list[str] = ATOM_FEATURE_NAMES

    def __init__(self) -> None:
        table = Chem.GetPeriodicTable()
        choices = dict(ATOM_FEATURES)
        self._one_hot = _OneHot(
            [
                {table.GetAtomicNumber(s): k for k, s in enumerate(choices["element"])},
                {d: k for k, d in enumerate(choices["degree"])},
                {c: k for k, c in enumerate(choices["formal_charge"])},
                _enum_codes(_HYB, choices["hybridization"]),
                None,
                {h: k for k, h in enumerate(choices["num_hs"])},
                None,
                _enum_codes(_CHI, choices["chirality"]),
            ],
            ATOM_FEATURE_DIM,
        )

    def __len__(self) -> int:
        return ATOM_FEATURE_DIM

    def __call__(self, mol: Chem.Mol) -> np.ndarray:
        return self.one_hot(np.array(self.codes(mol), dtype=np.int64))

    @staticmethod
    def codes(mol: Chem.Mol) -> list[tuple[int, ...]]:
        """Raw integer codes per atom, one pass over the atoms (the only per-atom Python)."""
        return [
            (
                atom.GetAtomicNum(),
                atom.GetDegree(),
                atom.GetFormalCharge(),
                atom.GetHybridization(),
                atom.GetIsAromatic(),
                atom.GetTotalNumHs(),
                atom.IsInRing(),
                atom.GetChiralTag(),
            )
            # map(GetAtomWithIdx) is ~3x faster than RDKit's Python-level GetAtoms() iterator
            for atom in map(mol.GetAtomWithIdx, range(mol.GetNumAtoms()))
        ]

    def one_hot(self, codes: np.ndarray) -> np.ndarray:
        """``[num_atoms, 8]`` codes (of any number of molecules) -> ``[num_atoms, 48]``."""
        return self._one_hot(codes.reshape(-1, len(ATOM_FEATURES)))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(version={self.version!r}, dim={len(self)})"


class BondFeaturizer:
    r"""Bond features, version :data:`FEATURIZER_VERSION`: ``mol -> float32 [num_bonds, 14]``.

    ========== ================================================== =======
    group      choices                                            columns
    ========== ================================================== =======
    bond_type  single, double, triple, aromatic, unknown          5
    conjugated 0/1                                                1
    in_ring    0/1                                                1
    stereo     none, any, Z, E, cis, trans, unknown               7
    ========== ================================================== =======

    Names of all columns are in :data:`BOND_FEATURE_NAMES`. Rows follow ``mol.GetBonds()``.
    """

    version: str = FEATURIZER_VERSION
    feature_names: list[str] = BOND_FEATURE_NAMES

    def __init__(self) -> None:
        choices = dict(BOND_FEATURES)
        self._one_hot = _OneHot(
            [
                _enum_codes(_BT, choices["bond_type"]),
                None,
                None,
                _enum_codes(_BS, choices["stereo"]),
            ],
            BOND_FEATURE_DIM,
        )

    def __len__(self) -> int:
        return BOND_FEATURE_DIM

    def __call__(self, mol: Chem.Mol) -> np.ndarray:
        return self.one_hot(np.array(self.codes(mol), dtype=np.int64))

    @staticmethod
    def codes(mol: Chem.Mol) -> list[tuple[int, ...]]:
        """Per bond: begin atom, end atom, then the four raw feature codes."""
        return [
            (
                bond.GetBeginAtomIdx(),
                bond.GetEndAtomIdx(),
                bond.GetBondType(),
                bond.GetIsConjugated(),
                bond.IsInRing(),
                bond.GetStereo(),
            )
            for bond in map(mol.GetBondWithIdx, range(mol.GetNumBonds()))
        ]

    def one_hot(self, codes: np.ndarray) -> np.ndarray:
        """``[num_bonds, 6]`` codes (of any number of molecules) -> ``[num_bonds, 14]``."""
        return self._one_hot(codes.reshape(-1, 6)[:, 2:])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(version={self.version!r}, dim={len(self)})"


_ATOM_FEATURIZER = AtomFeaturizer()
_BOND_FEATURIZER = BondFeaturizer()


def _largest_fragment(mol: Chem.Mol) -> Chem.Mol:
    fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(fragments) <= 1:
        return mol
    # Most heavy atoms wins; ties go to the fragment written first (stable, documented).
    return max(fragments, key=lambda frag: frag.GetNumHeavyAtoms())


GraphArrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, edge_index, edge_attr


def _graph_arrays(mols: Sequence[Chem.Mol]) -> list[GraphArrays]:
    """``(x [N, 48], edge_index [2, 2B], edge_attr [2B, 14])`` NumPy arrays per molecule.

    The per-atom / per-bond RDKit calls are one list comprehension each per molecule; the
    one-hot encoding and edge sorting then run once for all molecules together, so NumPy's
    per-call overhead is paid per batch, not per molecule. Each bond appears twice (i->j and
    j->i) with the same features; edges are sorted by (source, target), i.e. ``edge_index``
    is coalesced as PyG expects.
    """
    atom_codes: list[tuple[int, ...]] = []
    bond_codes: list[tuple[int, ...]] = []
    num_atoms, num_bonds = [], []
    for mol in mols:
        atoms = _ATOM_FEATURIZER.codes(mol)
        bonds = _BOND_FEATURIZER.codes(mol)
        atom_codes += atoms
        bond_codes += bonds
        num_atoms.append(len(atoms))
        num_bonds.append(len(bonds))
    x = _ATOM_FEATURIZER.one_hot(np.array(atom_codes, dtype=np.int64))
    bonds = np.array(bond_codes, dtype=np.int64).reshape(-1, 6)
    bond_attr = _BOND_FEATURIZER.one_hot(bonds)

    # Shift atom indices by each molecule's first atom, so that one sort orders all edges by
    # molecule, then source, then target; shift back afterwards.
    first_atom = np.cumsum([0, *num_atoms[:-1]])
    shift = np.repeat(first_atom, num_bonds)
    src = np.concatenate([bonds[:, 0], bonds[:, 1]]) + np.concatenate([shift, shift])
    dst = np.concatenate([bonds[:, 1], bonds[:, 0]]) + np.concatenate([shift, shift])
    order = np.argsort(src * max(len(x), 1) + dst, kind="stable")
    num_edges = 2 * np.asarray(num_bonds, dtype=np.int64)
    edge_shift = np.repeat(first_atom, num_edges)
    edge_index = np.stack([src[order] - edge_shift, dst[order] - edge_shift])
    edge_attr = np.concatenate([bond_attr, bond_attr])[order]

    atom_splits = np.cumsum(num_atoms)[:-1]
    edge_splits = np.cumsum(num_edges)[:-1]
    return list(
        zip(
            np.split(x, atom_splits),
            # copy: a column slice of the [2, E] array is not contiguous
            [np.ascontiguousarray(e) for e in np.split(edge_index, edge_splits, axis=1)],
            np.split(edge_attr, edge_splits),
            strict=True,
        )
    )


def _to_data(x: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray, smiles: str) -> Data:
    return Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(edge_index),
        edge_attr=torch.from_numpy(edge_attr),
        smiles=smiles,
    )


def mol_to_graph(mol: Chem.Mol, largest_fragment: bool = False, smiles: str | None = None) -> Data:
    r"""Converts an RDKit molecule to a graph with one node per atom of ``mol``.

    Hydrogens are nodes only if ``mol`` holds them explicitly (e.g. after ``Chem.AddHs``);
    otherwise they are counted in the ``num_hs`` features, as for parsed SMILES.

    Args:
        mol (rdkit.Chem.Mol): A sanitised molecule with at least one atom.
        largest_fragment (bool, optional): If :obj:`True`, keep only the fragment with the most
            heavy atoms (drops counter-ions and solvents of salts). By default all fragments
            are kept as disconnected components of one graph, so a salt is featurised exactly
            as written. (default: :obj:`False`)
        smiles (str, optional): Stored as ``data.smiles``; the canonical SMILES of ``mol``
            when not given. (default: :obj:`None`)

    Returns:
        :class:`~torch_geometric.data.Data` with ``x`` (float32 ``[num_atoms, 48]``),
        ``edge_index`` (int64 ``[2, 2 * num_bonds]``, both directions, coalesced),
        ``edge_attr`` (float32 ``[2 * num_bonds, 14]``) and ``smiles``. A single atom gives
        ``edge_index`` of shape ``[2, 0]`` and ``edge_attr`` of shape ``[0, 14]``.
    """
    if not isinstance(mol, Chem.Mol):
        raise TypeError(f"mol_to_graph expected an rdkit.Chem.Mol, got {type(mol).__name__}")
    if mol.GetNumAtoms() == 0:
        raise ValueError("mol_to_graph expected a molecule with at least one atom, got 0 atoms")
    if largest_fragment:
        mol = _largest_fragment(mol)
    if smiles is None:
        smiles = Chem.MolToSmiles(mol)
    return _to_data(*_graph_arrays([mol])[0], smiles)


def parse_smiles(smiles: str) -> Chem.Mol:
    """Parses and sanitises a SMILES string, raising a :class:`ValueError` that names it.

    The message carries RDKit's reason when sanitisation fails (e.g. a valence error) and is
    the same text that data sets record for skipped rows.
    """
    if smiles is None or (isinstance(smiles, str) and not smiles.strip()):
        raise ValueError(f"expected a non-empty SMILES string, got {smiles!r}")
    if not isinstance(smiles, str):
        raise TypeError(f"expected a SMILES string, got {type(smiles).__name__} {smiles!r}")
    with rdBase.BlockLogs():  # RDKit would print its own error to stderr; we raise instead
        return _parse_smiles_quietly(smiles)


def _parse_smiles_quietly(smiles: str) -> Chem.Mol:
    """:func:`parse_smiles` for a checked string, with RDKit's logs already blocked."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is not None:
        if mol.GetNumAtoms() == 0:
            raise ValueError(f"SMILES {smiles!r} has no atoms")
        return mol
    # Slow path, failures only: re-parse without sanitising to tell syntax from chemistry.
    raw = Chem.MolFromSmiles(smiles, sanitize=False)
    if raw is None:
        raise ValueError(f"invalid SMILES {smiles!r}: syntax error")
    try:
        Chem.SanitizeMol(raw)
    except Exception as err:  # RDKit raises several unrelated exception types
        raise ValueError(f"invalid SMILES {smiles!r}: {err}") from None
    raise ValueError(f"invalid SMILES {smiles!r}")


def smiles_to_graph(smiles: str, largest_fragment: bool = False) -> Data:
    r"""Converts a SMILES string to a graph (see :func:`mol_to_graph` for the fields).

    Args:
        smiles (str): The SMILES string; stored unchanged as ``data.smiles``.
        largest_fragment (bool, optional): Keep only the largest fragment of a salt or mixture
            (default: :obj:`False`, all fragments are kept).

    Raises:
        ValueError: for :obj:`None`, empty or unparsable SMILES; the message names the string.
        TypeError: for input that is not a string.
    """
    return mol_to_graph(parse_smiles(smiles), largest_fragment=largest_fragment, smiles=smiles)


# ---------------------------------------------------------------------------------------------
# Featurising many molecules: skip report, worker processes, on-disk cache
# ---------------------------------------------------------------------------------------------


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


# A chunk's result in NumPy arrays: cheap to pickle back from a worker and to cache.
_Chunk = tuple[list[int], list[GraphArrays], list[tuple[int, str, str]]]
_MOLS_PER_BATCH = 1024  # molecules one-hot encoded together: amortises NumPy, bounds memory


def _featurize_chunk(start: int, smiles_list: Sequence[str], largest_fragment: bool) -> _Chunk:
    indices, arrays, skipped, mols = [], [], [], []
    with rdBase.BlockLogs():
        for offset, smiles in enumerate(smiles_list):
            try:
                if isinstance(smiles, str) and smiles.strip():
                    mol = _parse_smiles_quietly(smiles)
                else:
                    mol = parse_smiles(smiles)  # raises the ValueError / TypeError we record
            except (ValueError, TypeError) as err:
                skipped.append((start + offset, str(smiles), str(err)))
                continue
            mols.append(_largest_fragment(mol) if largest_fragment else mol)
            indices.append(start + offset)
            if len(mols) == _MOLS_PER_BATCH:
                arrays += _graph_arrays(mols)
                mols = []
    if mols:
        arrays += _graph_arrays(mols)
    return indices, arrays, skipped


def _run_chunks(smiles_list: list[str], n_jobs: int, largest_fragment: bool) -> list[_Chunk]:
    if n_jobs == 1 or len(smiles_list) < 2 * n_jobs:
        return [_featurize_chunk(0, smiles_list, largest_fragment)]
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
            )
        )


def _cache_path(
    cache_dir: str | os.PathLike, smiles_list: list[str], largest_fragment: bool
) -> Path:
    payload = json.dumps(
        [FEATURIZER_VERSION, largest_fragment, smiles_list], default=repr, allow_nan=True
    )
    key = hashlib.sha256(payload.encode()).hexdigest()[:24]
    return Path(cache_dir) / f"molgraphs-{key}.pt"


def _save_cache(path: Path, chunks: list[_Chunk], smiles_list: list[str]) -> None:
    indices = [i for chunk in chunks for i in chunk[0]]
    arrays = [a for chunk in chunks for a in chunk[1]]
    skipped = [list(s) for chunk in chunks for s in chunk[2]]
    num_nodes = [x.shape[0] for x, _, _ in arrays]
    num_edges = [e.shape[1] for _, e, _ in arrays]
    state = {
        "version": FEATURIZER_VERSION,
        "indices": torch.tensor(indices, dtype=torch.long),
        "num_nodes": torch.tensor(num_nodes, dtype=torch.long),
        "num_edges": torch.tensor(num_edges, dtype=torch.long),
        "x": torch.from_numpy(
            np.concatenate(
                [x for x, _, _ in arrays] or [np.zeros((0, ATOM_FEATURE_DIM), np.float32)]
            )
        ),
        "edge_index": torch.from_numpy(
            np.concatenate([e for _, e, _ in arrays], axis=1)
            if arrays
            else np.zeros((2, 0), np.int64)
        ),
        "edge_attr": torch.from_numpy(
            np.concatenate(
                [a for _, _, a in arrays] or [np.zeros((0, BOND_FEATURE_DIM), np.float32)]
            )
        ),
        "smiles": [str(smiles_list[i]) for i in indices],
        "skipped": skipped,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temp file in the same directory, then rename: readers never see half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_cache(path: Path) -> Featurized:
    state = torch.load(path, weights_only=True)
    if state.get("version") != FEATURIZER_VERSION:  # hash includes the version; belt and braces
        raise ValueError(f"cache {path} was written by featuriser {state.get('version')!r}")
    xs = torch.split(state["x"], state["num_nodes"].tolist())
    edge_indices = torch.split(state["edge_index"], state["num_edges"].tolist(), dim=1)
    edge_attrs = torch.split(state["edge_attr"], state["num_edges"].tolist())
    graphs = [
        Data(x=x, edge_index=ei, edge_attr=ea, smiles=s)
        for x, ei, ea, s in zip(xs, edge_indices, edge_attrs, state["smiles"], strict=True)
    ]
    skipped = [(int(i), str(s), str(r)) for i, s, r in state["skipped"]]
    return Featurized(graphs, state["indices"].tolist(), skipped)


def featurize(
    smiles_list: Sequence[str],
    n_jobs: int = 1,
    on_error: Literal["raise", "skip"] = "raise",
    cache_dir: str | os.PathLike | None = None,
    largest_fragment: bool = False,
) -> Featurized:
    r"""Featurises many SMILES strings into graphs (see :func:`smiles_to_graph`).

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
            :data:`FEATURIZER_VERSION` and ``largest_fragment``. Written atomically, read with
            ``torch.load(weights_only=True)``. (default: :obj:`None`)
        largest_fragment (bool, optional): Keep only the largest fragment of each molecule.
            (default: :obj:`False`)

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

    path = _cache_path(cache_dir, smiles_list, largest_fragment) if cache_dir else None
    if path is not None and path.exists():
        result = _load_cache(path)
    else:
        chunks = _run_chunks(smiles_list, n_jobs, largest_fragment)
        if path is not None:
            _save_cache(path, chunks, smiles_list)
        result = Featurized(
            graphs=[
                _to_data(*arrays, str(smiles_list[i]))
                for chunk in chunks
                for i, arrays in zip(chunk[0], chunk[1], strict=True)
            ],
            indices=[i for chunk in chunks for i in chunk[0]],
            skipped=[s for chunk in chunks for s in chunk[2]],
        )
    if on_error == "raise" and result.skipped:
        index, smiles, reason = result.skipped[0]
        raise ValueError(f"could not featurise molecule {index} ({smiles!r}): {reason}")
    return result
