r"""Molecule featurisers: SMILES / RDKit ``Mol`` -> :class:`torch_geometric.data.Data`.

A molecule becomes a graph whose nodes are its heavy atoms (hydrogens are folded into the
atom features as counts, as in chemprop and PyG's :func:`~torch_geometric.utils.from_smiles`)
and whose edges are its bonds, stored once in each direction.

Features are produced by small callables with documented, versioned feature lists (in the
spirit of chemprop v2's ``featurizers/``):

* :class:`AtomFeaturizer` (:data:`ATOM_FEATURE_NAMES`, :data:`ATOM_FEATURE_DIM` = 48 columns)
* :class:`BondFeaturizer` (:data:`BOND_FEATURE_NAMES`, :data:`BOND_FEATURE_DIM` = 14 columns)
* :class:`GraphFeaturizer`: one of each, turning molecules into :class:`GraphArrays`
  ``(x, edge_index, edge_attr)``, many molecules at a time.

Every categorical feature is one-hot with an extra *unknown* slot, so rare values (a
hexavalent sulfur's degree, a metal) never raise and never collide with a real category.
Each featuriser reads the raw RDKit properties of all atoms (bonds) in one pass into an
integer array and one-hots it in a single NumPy scatter, so a molecule costs one Python loop
over its atoms and one over its bonds, never one ``torch.tensor`` call per feature.

:data:`FEATURIZER_VERSION` changes whenever a feature list changes; it is part of every
cache key (:mod:`gconv.data.cache`), so a cache written by an older featuriser is never read
back by a newer one.

Example::

    >>> data = smiles_to_graph("CCO")
    >>> data
    Data(x=[3, 48], edge_index=[2, 4], edge_attr=[4, 14], smiles='CCO')
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

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
    "ORDER_FREE_GETTERS",
    "Feature",
    "AtomFeaturizer",
    "BondFeaturizer",
    "GraphArrays",
    "GraphCodes",
    "GraphFeaturizer",
    "mol_to_graph",
    "smiles_to_graph",
    "parse_smiles",
    "mol_from_smiles",
    "largest_fragment_of",
]

FEATURIZER_VERSION = "gconv-mol-v1"

#: Elements with their own one-hot slot; every other element (metals, noble gases, ...) shares
#: the ``element=other`` slot. Covers the organic subset plus the halogens and Se.
ELEMENTS: tuple[str, ...] = ("H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Se", "Br", "I")


class Feature(NamedTuple):
    """One feature group of an atom or bond featuriser: a row of its table.

    Attributes:
        name: The group's name, the prefix of its column names (``"degree=2"``).
        get: Reads the raw integer code of an atom (bond), e.g. ``Chem.Atom.GetDegree``; an
            unbound RDKit method is fastest (one C++ call, no Python frame).
        choices: Labels of the one-hot columns; an ``unknown`` column (``other`` for
            ``element``) follows them and takes every code not listed. :obj:`None` makes the
            group one 0/1 column holding the code itself.
        codes: The code ``get`` returns for each choice (default: the choices themselves).
    """

    name: str
    get: Callable[[Any], int]
    choices: tuple | None = None
    codes: tuple[int, ...] | None = None


def _enum_feature(name: str, get: Callable[[Any], int], enum: type, labels: tuple) -> Feature:
    return Feature(name, get, labels, tuple(int(getattr(enum, label)) for label in labels))


_PERIODIC_TABLE = Chem.GetPeriodicTable()
_A, _B = Chem.rdchem.Atom, Chem.rdchem.Bond

#: The default atom features (version :data:`FEATURIZER_VERSION`), in column order.
ATOM_FEATURES: tuple[Feature, ...] = (
    Feature(
        "element",
        _A.GetAtomicNum,
        ELEMENTS,
        tuple(_PERIODIC_TABLE.GetAtomicNumber(symbol) for symbol in ELEMENTS),
    ),
    Feature("degree", _A.GetDegree, (0, 1, 2, 3, 4, 5)),  # heavy-atom neighbours (graph degree)
    Feature("formal_charge", _A.GetFormalCharge, (-2, -1, 0, 1, 2)),
    _enum_feature(
        "hybridization",
        _A.GetHybridization,
        Chem.rdchem.HybridizationType,
        ("S", "SP", "SP2", "SP2D", "SP3", "SP3D", "SP3D2"),
    ),
    Feature("aromatic", _A.GetIsAromatic),
    Feature("num_hs", _A.GetTotalNumHs, (0, 1, 2, 3, 4)),  # implicit + explicit hydrogens
    Feature("in_ring", _A.IsInRing),
    _enum_feature(
        "chirality",
        _A.GetChiralTag,
        Chem.rdchem.ChiralType,
        ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER"),
    ),
)

#: The default bond features (version :data:`FEATURIZER_VERSION`), in column order.
BOND_FEATURES: tuple[Feature, ...] = (
    _enum_feature(
        "bond_type",
        _B.GetBondType,
        Chem.rdchem.BondType,
        ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"),
    ),
    Feature("conjugated", _B.GetIsConjugated),
    Feature("in_ring", _B.IsInRing),
    _enum_feature(
        "stereo",
        _B.GetStereo,
        Chem.rdchem.BondStereo,
        ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS"),
    ),
)


def _feature_names(features: Sequence[Feature]) -> list[str]:
    names = []
    for feature in features:
        if feature.choices is None:
            names.append(feature.name)
        else:
            names.extend(f"{feature.name}={choice}" for choice in feature.choices)
            names.append(f"{feature.name}={'other' if feature.name == 'element' else 'unknown'}")
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

    def __init__(self, features: Sequence[Feature]) -> None:
        tables, low, base, size, cat_groups, bin_groups, bin_columns = [], [], [], [], [], [], []
        column = offset = 0
        for g, feature in enumerate(features):
            if feature.choices is None:
                bin_groups.append(g)
                bin_columns.append(column)
                column += 1
                continue
            codes = feature.codes if feature.codes is not None else feature.choices
            if len(codes) != len(feature.choices) or len(set(codes)) != len(codes):
                raise ValueError(
                    f"feature {feature.name!r} needs one distinct code per choice, got codes "
                    f"{codes} for choices {feature.choices}"
                )
            unknown = column + len(codes)
            lo, hi = min(codes) - 1, max(codes) + 1  # padded by unknown sentinels
            table = np.full(hi - lo + 1, unknown, dtype=np.int64)
            for slot, code in enumerate(codes):
                table[code - lo] = column + slot
            tables.append(table)
            cat_groups.append(g)
            low.append(lo)
            base.append(offset)
            size.append(len(table))
            offset += len(table)
            column = unknown + 1
        self.dim = column
        self.table = np.concatenate(tables) if tables else np.zeros(0, dtype=np.int64)
        self.cat_groups = np.array(cat_groups, dtype=np.int64)
        self.low = np.array(low, dtype=np.int64)
        self.base = np.array(base, dtype=np.int64)
        self.high = np.array(size, dtype=np.int64) - 1
        self.bin_groups = np.array(bin_groups, dtype=np.int64)
        self.bin_columns = np.array(bin_columns, dtype=np.int64)

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        num_items = codes.shape[0]
        out = np.zeros((num_items, self.dim), dtype=np.float32)
        if len(self.cat_groups):
            local = np.clip(codes[:, self.cat_groups] - self.low, 0, self.high)
            out[np.arange(num_items)[:, None], self.table[local + self.base]] = 1.0
        out[:, self.bin_columns] = codes[:, self.bin_groups]
        return out


class _Featurizer:
    """Shared machinery of :class:`AtomFeaturizer` and :class:`BondFeaturizer`: a table of
    :class:`Feature` rows read column by column, then one-hot encoded in one NumPy scatter."""

    default_features: tuple[Feature, ...] = ()

    def __init__(self, features: Sequence[Feature] | None = None, version: str | None = None):
        features = tuple(self.default_features if features is None else features)
        if not features or not all(isinstance(f, Feature) for f in features):
            raise TypeError(
                f"{type(self).__name__} expected a non-empty sequence of gconv.data.Feature"
            )
        self.features = features
        self.feature_names = _feature_names(features)
        if version is None:  # the defaults carry the package's version; a custom table its hash
            version = FEATURIZER_VERSION
            if features != self.default_features:
                table = json.dumps(
                    [(f.name, f.choices, f.codes, _qualname(f.get)) for f in features], default=repr
                )
                version = f"custom-{hashlib.sha256(table.encode()).hexdigest()[:12]}"
        self.version = version
        self._getters = [feature.get for feature in features]
        self._one_hot = _OneHot(features)

    def __len__(self) -> int:
        return self._one_hot.dim

    # RDKit's methods (Boost.Python functions) cannot be pickled, so worker processes would not
    # receive a custom table; send their class and name instead and look them up again.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["features"] = tuple(f._replace(get=_RDKitMethod.wrap(f.get)) for f in self.features)
        del state["_getters"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["features"] = tuple(
            f._replace(get=_RDKitMethod.unwrap(f.get)) for f in state["features"]
        )
        self.__dict__.update(state)
        self._getters = [feature.get for feature in self.features]

    def _read(self, items: list) -> list[tuple[int, ...]]:
        # Column by column (one map per feature over all items) is ~20 % faster than a tuple
        # per item: the loop runs in C, one RDKit call per value.
        return list(zip(*[list(map(get, items)) for get in self._getters], strict=True))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(version={self.version!r}, dim={len(self)})"


class _RDKitMethod(NamedTuple):
    """A picklable reference to a method of an RDKit class, e.g. ``Atom.GetDegree``."""

    owner: str
    name: str

    @classmethod
    def wrap(cls, function: Callable) -> Callable | _RDKitMethod:
        if type(function).__name__ == "function" and type(function).__module__ == "Boost.Python":
            return cls(function.__module__, function.__name__)
        return function

    @staticmethod
    def unwrap(function: Callable | _RDKitMethod) -> Callable:
        if isinstance(function, _RDKitMethod):
            return getattr(getattr(Chem.rdchem, function.owner), function.name)
        return function


def _qualname(function: Callable) -> str:
    return getattr(function, "__qualname__", repr(function))


class AtomFeaturizer(_Featurizer):
    r"""Atom features: ``mol -> float32 [num_atoms, dim]``, one row per :class:`Feature` of its
    table (default :data:`ATOM_FEATURES`, version :data:`FEATURIZER_VERSION`, 48 columns).

    Default column groups, in order (each categorical group ends with an unknown slot):

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

    A different table swaps features in or out (as chemprop's featurisers do)::

        features = (*ATOM_FEATURES, Feature("ring3", lambda atom: atom.IsInRingSize(3)))
        featurize(smiles, atom_featurizer=AtomFeaturizer(features))

    Args:
        features (Sequence[Feature], optional): The table. (default: :data:`ATOM_FEATURES`)
        version (str, optional): Part of every cache key. (default: :data:`FEATURIZER_VERSION`
            for the default table, ``"custom-<hash of the table>"`` otherwise)
    """

    default_features = ATOM_FEATURES

    def __call__(self, mol: Chem.Mol) -> np.ndarray:
        return self.one_hot(np.array(self.codes(mol), dtype=np.int64))

    def codes(self, mol: Chem.Mol) -> list[tuple[int, ...]]:
        """Raw integer codes, one tuple per atom."""
        # map(GetAtomWithIdx) is ~3x faster than RDKit's Python-level GetAtoms() iterator
        return self._read(list(map(mol.GetAtomWithIdx, range(mol.GetNumAtoms()))))

    def one_hot(self, codes: np.ndarray) -> np.ndarray:
        """``[num_atoms, num_features]`` codes (of any number of molecules) -> one-hot."""
        return self._one_hot(codes.reshape(-1, len(self.features)))


class BondFeaturizer(_Featurizer):
    r"""Bond features: ``mol -> float32 [num_bonds, dim]``, one row per :class:`Feature` of its
    table (default :data:`BOND_FEATURES`, version :data:`FEATURIZER_VERSION`, 14 columns).

    ========== ================================================== =======
    group      choices                                            columns
    ========== ================================================== =======
    bond_type  single, double, triple, aromatic, unknown          5
    conjugated 0/1                                                1
    in_ring    0/1                                                1
    stereo     none, any, Z, E, cis, trans, unknown               7
    ========== ================================================== =======

    Rows follow ``mol.GetBonds()``. Args as :class:`AtomFeaturizer`'s.
    """

    default_features = BOND_FEATURES

    def __call__(self, mol: Chem.Mol) -> np.ndarray:
        return self.one_hot(np.array(self.codes(mol), dtype=np.int64))

    def codes(self, mol: Chem.Mol) -> list[tuple[int, ...]]:
        """Per bond: begin atom, end atom, then the raw feature codes."""
        bonds = list(map(mol.GetBondWithIdx, range(mol.GetNumBonds())))
        ends = zip(map(_B.GetBeginAtomIdx, bonds), map(_B.GetEndAtomIdx, bonds), strict=True)
        return [(*end, *codes) for end, codes in zip(ends, self._read(bonds), strict=True)]

    def one_hot(self, codes: np.ndarray) -> np.ndarray:
        """``[num_bonds, 2 + num_features]`` codes (of any number of molecules) -> one-hot."""
        return self._one_hot(codes.reshape(-1, 2 + len(self.features))[:, 2:])


#: The RDKit getters whose values do not depend on the order a molecule's atoms were written in:
#: two molecules with one canonical SMILES have the same values, atom for atom once matched. A
#: chiral tag (clockwise in the written order) and a bond's stereo flag are not among them.
ORDER_FREE_GETTERS: tuple[Callable, ...] = (
    _A.GetAtomicNum,
    _A.GetDegree,
    _A.GetFormalCharge,
    _A.GetHybridization,
    _A.GetIsAromatic,
    _A.GetTotalNumHs,
    _A.IsInRing,
    _A.GetNumRadicalElectrons,
    _A.GetIsotope,
    _B.GetBondType,
    _B.GetIsConjugated,
    _B.GetIsAromatic,
    _B.IsInRing,
)

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic): a bijection that spreads
    every input bit over the output."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _order_free_labels(
    codes: np.ndarray, getters: Sequence[Callable], first: int = 0
) -> np.ndarray:
    """One uint64 label per row from the columns (from ``first`` on) whose getter is order-free."""
    label = np.zeros(len(codes), dtype=np.uint64)
    for i, get in enumerate(getters):
        if any(get is free for free in ORDER_FREE_GETTERS):
            column = codes[:, first + i].astype(np.int64).view(np.uint64)
            label = _mix(label ^ _mix(column + np.uint64(i + 1)))
    return label


_ATOM_FEATURIZER = AtomFeaturizer()
_BOND_FEATURIZER = BondFeaturizer()


def largest_fragment_of(mol: Chem.Mol) -> Chem.Mol:
    """The fragment of ``mol`` with the most heavy atoms (the first written of equal ones), as
    ``largest_fragment=True`` featurises it; ``mol`` itself when it is one fragment."""
    fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(fragments) <= 1:
        return mol
    # Most heavy atoms wins; ties go to the fragment written first (stable, documented).
    return max(fragments, key=lambda frag: frag.GetNumHeavyAtoms())


class GraphArrays(NamedTuple):
    """One molecule's graph as NumPy arrays: cheap to pickle (worker processes) and to cache.

    Attributes:
        x: Atom features, float32 ``[num_atoms, atom_dim]``.
        edge_index: Bonds in both directions, coalesced, int64 ``[2, 2 * num_bonds]``.
        edge_attr: Bond features, float32 ``[2 * num_bonds, bond_dim]``.
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray

    def to_data(self, smiles: str) -> Data:
        """The :class:`~torch_geometric.data.Data` graph (tensors share the arrays' memory)."""
        return Data(
            x=torch.from_numpy(self.x),
            edge_index=torch.from_numpy(self.edge_index),
            edge_attr=torch.from_numpy(self.edge_attr),
            smiles=smiles,
        )


class GraphCodes(NamedTuple):
    """Many molecules' raw feature codes, before one-hot encoding (:meth:`GraphFeaturizer.codes`).

    Attributes:
        atom_codes: int64 ``[num_atoms, num_atom_features]``, all molecules' atoms in order.
        bond_codes: int64 ``[num_bonds, 2 + num_bond_features]``: begin atom, end atom (indices
            within the molecule), then the codes; one row per bond, in ``GetBonds()`` order.
        num_atoms: int64 ``[num_molecules]``.
        num_bonds: int64 ``[num_molecules]``.
    """

    atom_codes: np.ndarray
    bond_codes: np.ndarray
    num_atoms: np.ndarray
    num_bonds: np.ndarray


class GraphFeaturizer:
    r"""An atom featuriser and a bond featuriser: molecules -> :class:`GraphArrays`.

    The pair that chemprop v2 calls a ``MolGraphFeaturizer``. :meth:`arrays` featurises many
    molecules together: the per-atom / per-bond RDKit calls are one list comprehension each per
    molecule, while the one-hot encoding and the edge sorting run once for all of them, so
    NumPy's per-call overhead is paid per batch, not per molecule.

    Args:
        atom_featurizer (AtomFeaturizer, optional): (default: the 48 default atom features)
        bond_featurizer (BondFeaturizer, optional): (default: the 14 default bond features)

    Raises:
        TypeError: if either is not the featuriser of its kind.
    """

    def __init__(
        self,
        atom_featurizer: AtomFeaturizer | None = None,
        bond_featurizer: BondFeaturizer | None = None,
    ) -> None:
        atom_featurizer = _ATOM_FEATURIZER if atom_featurizer is None else atom_featurizer
        bond_featurizer = _BOND_FEATURIZER if bond_featurizer is None else bond_featurizer
        if not isinstance(atom_featurizer, AtomFeaturizer):
            raise TypeError(
                f"atom_featurizer must be an AtomFeaturizer, got {type(atom_featurizer).__name__}"
            )
        if not isinstance(bond_featurizer, BondFeaturizer):
            raise TypeError(
                f"bond_featurizer must be a BondFeaturizer, got {type(bond_featurizer).__name__}"
            )
        self.atom_featurizer = atom_featurizer
        self.bond_featurizer = bond_featurizer

    @property
    def versions(self) -> list[str]:
        """``[atom version, bond version]``, as written into cache keys and cache files."""
        return [self.atom_featurizer.version, self.bond_featurizer.version]

    def __reduce__(self) -> tuple:
        # A default featuriser travels to worker processes as None (each worker has its own
        # copy); only a custom table is pickled, which needs module-level getters, not lambdas.
        return (
            GraphFeaturizer,
            (
                None if self.atom_featurizer is _ATOM_FEATURIZER else self.atom_featurizer,
                None if self.bond_featurizer is _BOND_FEATURIZER else self.bond_featurizer,
            ),
        )

    def codes(self, mols: Sequence[Chem.Mol], stereo: Sequence[bool] | None = None) -> GraphCodes:
        """The raw integer codes of many molecules, before one-hot encoding: what
        :class:`gconv.data.MoleculeStore` keeps on disk (about 8 bytes an atom and 6 a bond
        instead of 192 and 112 once one-hot), and :meth:`from_codes` turns back into the very
        arrays :meth:`arrays` gives.

        The codes are read feature by feature over all atoms (bonds) of all molecules: one
        ``map`` per feature, each a loop in C with one RDKit call per value, and one NumPy
        conversion per feature, never a Python tuple per atom.

        Args:
            mols: The molecules.
            stereo (Sequence[bool], optional): Per molecule, :obj:`False` when it is known to
                carry no stereo (a molecule parsed from a SMILES without ``@``, ``/`` or
                ``\\``: RDKit sets chiral tags and bond stereo only from those): the default
                table's ``chirality`` and ``stereo`` codes are then written as
                ``CHI_UNSPECIFIED`` and ``STEREONONE`` (0) without an RDKit call per atom and
                bond (the two enum getters are a fifth of the cost). (default: read them all)
        """
        atom_getters = self.atom_featurizer._getters
        bond_getters = [_B.GetBeginAtomIdx, _B.GetEndAtomIdx, *self.bond_featurizer._getters]
        # Two atom columns follow from the bond columns: an atom's degree is its number of
        # bonds, and it is in a ring iff one of its bonds is (a ring is a cycle of bonds). They
        # are counted in NumPy over the batch instead of read atom by atom.
        degree = [i for i, get in enumerate(atom_getters) if get is _A.GetDegree]
        in_ring = [i for i, get in enumerate(atom_getters) if get is _A.IsInRing]
        ring_bond = [i for i, get in enumerate(bond_getters) if get is _B.IsInRing][:1]
        derived = set(degree + (in_ring if ring_bond else []))
        atom_columns: list[list[int]] = [[] for _ in atom_getters]
        bond_columns: list[list[int]] = [[] for _ in bond_getters]
        # Without stereo, the chirality / bond-stereo getters of the default table are skipped
        # and their columns filled with 0 (CHI_UNSPECIFIED, STEREONONE): the same codes.
        read_atoms = [
            (column, get)
            for i, (column, get) in enumerate(zip(atom_columns, atom_getters, strict=True))
            if i not in derived
        ]
        plain_atoms = [
            (column, None if get is _A.GetChiralTag else get) for column, get in read_atoms
        ]
        plain_bonds = [
            (column, None if get is _B.GetStereo else get)
            for column, get in zip(bond_columns, bond_getters, strict=True)
        ]
        full_bonds = list(zip(bond_columns, bond_getters, strict=True))
        if stereo is None:
            stereo = [True] * len(mols)
        num_atoms, num_bonds = [], []
        for mol, has_stereo in zip(mols, stereo, strict=True):
            # a molecule's atoms at a time: their wrappers stay in the CPU cache
            atoms = list(map(mol.GetAtomWithIdx, range(mol.GetNumAtoms())))  # 3x GetAtoms()
            bonds = list(map(mol.GetBondWithIdx, range(mol.GetNumBonds())))
            for column, get in read_atoms if has_stereo else plain_atoms:
                column += map(get, atoms) if get is not None else [0] * len(atoms)
            for column, get in full_bonds if has_stereo else plain_bonds:
                column += map(get, bonds) if get is not None else [0] * len(bonds)
            num_atoms.append(len(atoms))
            num_bonds.append(len(bonds))
        num_atoms = np.asarray(num_atoms, dtype=np.int64)
        num_bonds = np.asarray(num_bonds, dtype=np.int64)
        bond_codes = np.array(bond_columns, dtype=np.int64).reshape(len(bond_getters), -1).T
        atom_codes = np.zeros((int(num_atoms.sum()), len(atom_getters)), dtype=np.int64)
        for i, column in enumerate(atom_columns):
            if i not in derived:
                atom_codes[:, i] = column
        if derived:
            first_atom = np.repeat(np.cumsum(num_atoms) - num_atoms, num_bonds)
            ends = np.concatenate([bond_codes[:, 0], bond_codes[:, 1]]) + np.tile(first_atom, 2)
            for i in degree:
                atom_codes[:, i] = np.bincount(ends, minlength=len(atom_codes))
            if ring_bond:
                ring_ends = ends[np.tile(bond_codes[:, ring_bond[0]] != 0, 2)]
                for i in in_ring:
                    atom_codes[ring_ends, i] = 1
        return GraphCodes(atom_codes, np.ascontiguousarray(bond_codes), num_atoms, num_bonds)

    def graph_hashes(self, codes: GraphCodes, rounds: int = 4) -> np.ndarray:
        """A 64-bit hash of each molecule of :meth:`codes` that does not depend on the order its
        atoms were written in (uint64 ``[num_molecules]``).

        Molecules with one canonical SMILES get one hash, so molecules with different hashes
        are different molecules; molecules with one hash are usually the same molecule, but may
        be stereoisomers or, rarely, other molecules that the hash does not tell apart: a
        caller that needs to know compares their canonical SMILES (as
        :class:`~gconv.data.StoreDataset` does to find duplicates, so a store need not compute
        a canonical SMILES for every molecule).

        Weisfeiler-Lehman refinement over all molecules at once, in NumPy: an atom's label
        starts from its order-free codes (the columns whose getter is in
        :data:`ORDER_FREE_GETTERS`; a custom feature counts only if it is one of them), and each
        round mixes in the sum of its neighbours' labels, each mixed with the bond's order-free
        codes. A molecule's hash mixes the sum of its atoms' final labels with its numbers of
        atoms and bonds. Sums do not depend on order; the wrapping uint64 arithmetic is the
        same on every machine.

        Args:
            codes (GraphCodes): The molecules' codes (int16 or int64).
            rounds (int, optional): Refinement rounds: atoms farther apart than this are told
                apart only by their counts. (default: :obj:`4`)
        """
        atom_codes, bond_codes, num_atoms, num_bonds = codes
        num_atoms = np.asarray(num_atoms, dtype=np.int64)
        num_bonds = np.asarray(num_bonds, dtype=np.int64)
        bonds = bond_codes.reshape(-1, 2 + len(self.bond_featurizer.features))
        label = _order_free_labels(
            atom_codes.reshape(-1, len(self.atom_featurizer.features)),
            self.atom_featurizer._getters,
        )
        bond_label = _mix(_order_free_labels(bonds, self.bond_featurizer._getters, first=2) + _M2)
        first_atom = np.repeat(np.cumsum(num_atoms) - num_atoms, num_bonds)
        begin = bonds[:, 0].astype(np.int64) + first_atom
        end = bonds[:, 1].astype(np.int64) + first_atom
        for _ in range(rounds):
            total = np.zeros_like(label)
            np.add.at(total, end, _mix(label[begin] ^ bond_label))
            np.add.at(total, begin, _mix(label[end] ^ bond_label))
            label = _mix(_mix(label) + total)
        molecule = np.repeat(np.arange(len(num_atoms)), num_atoms)
        total = np.zeros(len(num_atoms), dtype=np.uint64)
        np.add.at(total, molecule, _mix(label))
        sizes = _mix(num_atoms.view(np.uint64) ^ _mix(num_bonds.view(np.uint64) + _M1))
        return _mix(total ^ sizes)

    def from_codes(self, codes: GraphCodes) -> list[GraphArrays]:
        """:class:`GraphArrays` per molecule from :meth:`codes` (of one molecule or many)."""
        atom_codes, bond_codes, num_atoms, num_bonds = codes
        x = self.atom_featurizer.one_hot(atom_codes)
        bonds = bond_codes.reshape(-1, 2 + len(self.bond_featurizer.features))
        bond_attr = self.bond_featurizer.one_hot(bonds)
        num_atoms = np.asarray(num_atoms, dtype=np.int64)
        num_bonds = np.asarray(num_bonds, dtype=np.int64)

        # Shift atom indices by each molecule's first atom, so that one sort orders all edges by
        # molecule, then source, then target; shift back afterwards.
        first_atom = np.cumsum(num_atoms) - num_atoms
        shift = np.repeat(first_atom, num_bonds)
        begin, end = bonds[:, 0].astype(np.int64), bonds[:, 1].astype(np.int64)
        src = np.concatenate([begin, end]) + np.concatenate([shift, shift])
        dst = np.concatenate([end, begin]) + np.concatenate([shift, shift])
        order = np.argsort(src * max(len(x), 1) + dst, kind="stable")
        num_edges = 2 * num_bonds
        edge_shift = np.repeat(first_atom, num_edges)
        edge_index = np.stack([src[order] - edge_shift, dst[order] - edge_shift])
        edge_attr = np.concatenate([bond_attr, bond_attr])[order]

        if len(num_atoms) == 1:  # one molecule (a store's item): no split, no copies
            return [GraphArrays(x, edge_index, edge_attr)]
        atom_splits = np.cumsum(num_atoms)[:-1]
        edge_splits = np.cumsum(num_edges)[:-1]
        return [
            GraphArrays(*arrays)
            for arrays in zip(
                np.split(x, atom_splits),
                # copy: a column slice of the [2, E] array is not contiguous
                [np.ascontiguousarray(e) for e in np.split(edge_index, edge_splits, axis=1)],
                np.split(edge_attr, edge_splits),
                strict=True,
            )
        ]

    def arrays(self, mols: Sequence[Chem.Mol], largest_fragment: bool = False) -> list[GraphArrays]:
        """:class:`GraphArrays` ``(x, edge_index, edge_attr)`` per molecule, in order.

        Each bond appears twice (i->j and j->i) with the same features; edges are sorted by
        (source, target), i.e. ``edge_index`` is coalesced as PyG expects. With
        ``largest_fragment``, only the fragment with the most heavy atoms of each molecule
        is featurised.
        """
        if largest_fragment:
            mols = [largest_fragment_of(mol) for mol in mols]
        return self.from_codes(self.codes(mols))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.atom_featurizer!r}, {self.bond_featurizer!r})"


def mol_to_graph(
    mol: Chem.Mol,
    largest_fragment: bool = False,
    smiles: str | None = None,
    atom_featurizer: AtomFeaturizer | None = None,
    bond_featurizer: BondFeaturizer | None = None,
) -> Data:
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
        atom_featurizer (AtomFeaturizer, optional): (default: the 48 default atom features)
        bond_featurizer (BondFeaturizer, optional): (default: the 14 default bond features)

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
        mol = largest_fragment_of(mol)
    if smiles is None:
        smiles = Chem.MolToSmiles(mol)
    featurizer = GraphFeaturizer(atom_featurizer, bond_featurizer)
    return featurizer.arrays([mol])[0].to_data(smiles)


def parse_smiles(smiles: str) -> Chem.Mol:
    """Parses and sanitises a SMILES string, raising a :class:`ValueError` that names it.

    The message carries RDKit's reason when sanitisation fails (e.g. a valence error) and is
    the same text that data sets record for skipped rows.

    Whitespace: leading and trailing whitespace is ignored (as RDKit does), whitespace inside
    the string is an error. RDKit's ``MolFromSmiles`` reads the text after a space or tab as
    the molecule's *name*, so ``"CCO c1ccccc1Cl"`` would silently become ethanol; here it
    raises ``invalid SMILES 'CCO c1ccccc1Cl': contains whitespace ...``, the reason a data set
    records for such a row.
    """
    if smiles is None or (isinstance(smiles, str) and not smiles.strip()):
        raise ValueError(f"expected a non-empty SMILES string, got {smiles!r}")
    if not isinstance(smiles, str):
        raise TypeError(f"expected a SMILES string, got {type(smiles).__name__} {smiles!r}")
    if len(smiles.split()) > 1:
        raise ValueError(
            f"invalid SMILES {smiles!r}: contains whitespace (RDKit would read the text after it "
            "as a name, not as part of the molecule); one SMILES per cell"
        )
    with rdBase.BlockLogs():  # RDKit would print its own error to stderr; we raise instead
        return _parse_smiles_quietly(smiles)


#: Text after which RDKit's ``MolFromSmiles`` does more than parse and sanitise: a stereo mark
#: (``@``, ``/``, ``\``), or a hydrogen *atom* (``[H]``, ``[2H]``, ``[H+]``; not ``[NH4+]`` or
#: ``[Hg]``), which it removes.
_STEREO_OR_H_ATOM = re.compile(r"[@/\\]|\[\d*H(?![a-z])")


def mol_from_smiles(smiles: str) -> Chem.Mol | None:
    """``Chem.MolFromSmiles(smiles)``'s molecule (:obj:`None` where it fails), about 35 % sooner
    for most SMILES.

    After parsing and sanitising, ``MolFromSmiles`` removes hydrogen atoms and assigns
    stereochemistry, which ranks every atom by CIP rules and stores the ranks on the atoms
    (``_CIPRank``), where every later copy of the molecule (each ``MolToSmiles``, the Murcko
    decomposition) copies them again. A SMILES without stereo marks or hydrogen atoms has no
    stereo to assign and no hydrogen to remove; it is parsed and sanitised only, which gives
    the same atoms, bonds, canonical SMILES and scaffold (a test compares them on RDKit's NCI
    and ChEMBL files) without the ranks. Any other SMILES goes through ``MolFromSmiles``.
    RDKit's logs are the caller's to block.
    """
    if _STEREO_OR_H_ATOM.search(smiles):
        return Chem.MolFromSmiles(smiles)
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises several unrelated exception types; MolFromSmiles: None
        return None
    return mol


def _parse_smiles_quietly(smiles: str) -> Chem.Mol:
    """:func:`parse_smiles` for a checked string, with RDKit's logs already blocked."""
    mol = mol_from_smiles(smiles)
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
        ValueError: for :obj:`None`, empty or unparsable SMILES, or whitespace inside the
            string (see :func:`parse_smiles`); the message names the string.
        TypeError: for input that is not a string.
    """
    return mol_to_graph(parse_smiles(smiles), largest_fragment=largest_fragment, smiles=smiles)
