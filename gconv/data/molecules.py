"""Deprecated module (gconv 0.2, removed in 0.3): its contents moved, and ``gconv.data`` exports
them all.

* the feature tables, :class:`~gconv.data.AtomFeaturizer`, :class:`~gconv.data.BondFeaturizer`,
  :func:`~gconv.data.mol_to_graph`, :func:`~gconv.data.smiles_to_graph` and
  :func:`~gconv.data.parse_smiles` to :mod:`gconv.data.featurizers`;
* :func:`~gconv.data.featurize` and :class:`~gconv.data.Featurized` (many molecules, workers,
  the on-disk cache) to :mod:`gconv.data.cache`.

Each old name still works, with a :class:`DeprecationWarning` naming the new one.
"""

from gconv._utils import deprecated_module_attributes

# every public name of the 0.1 module
_MOVED = (
    "FEATURIZER_VERSION",
    "ELEMENTS",
    "ATOM_FEATURES",
    "BOND_FEATURES",
    "ATOM_FEATURE_NAMES",
    "BOND_FEATURE_NAMES",
    "ATOM_FEATURE_DIM",
    "BOND_FEATURE_DIM",
    "Feature",
    "AtomFeaturizer",
    "BondFeaturizer",
    "Featurized",
    "mol_to_graph",
    "smiles_to_graph",
    "parse_smiles",
    "featurize",
    "GraphArrays",
)
__all__ = list(_MOVED)  # so that ``import *`` still works (and warns for each name)

__getattr__ = deprecated_module_attributes(
    __name__, {name: ("gconv.data", name) for name in _MOVED}
)
