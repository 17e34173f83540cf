"""Data: image and molecule data sets, their conversion to tensors and graphs, and loaders.

One small module per idea; every public name is exported here and imported on first use:

* images: :mod:`~gconv.data.images` (embedded MNIST-5k, torchvision's MNIST / FashionMNIST /
  STL10), :mod:`~gconv.data.folders` (your own image folders, torchvision's ``ImageFolder``
  layout), :mod:`~gconv.data.augment` (batch augmentation on the device),
  :mod:`~gconv.data.loader` (:class:`TensorLoader`), :mod:`~gconv.data.grid` (image <-> grid
  graph), :mod:`~gconv.data.superpixels` (SLIC superpixel graphs);
* molecules: :mod:`~gconv.data.featurizers` (atom / bond feature tables, molecule -> graph),
  :mod:`~gconv.data.cache` (:func:`featurize`: many molecules, worker processes, the on-disk
  cache), :mod:`~gconv.data.splitting` (random and scaffold split indices),
  :mod:`~gconv.data.scaling` (:class:`Standardizer`, for targets and descriptors),
  :mod:`~gconv.data.descriptors` (RDKit descriptors, Morgan fingerprints),
  :mod:`~gconv.data.datasets` (:class:`MoleculeDataset`, CSV / SDF files, embedded sets,
  MoleculeNet), :mod:`~gconv.data.store` (:class:`MoleculeStore`, :class:`StoreDataset`: molecule
  sets larger than memory, featurised to disk in chunks) and :mod:`~gconv.data.predict` (:func:`predict_smiles`,
  :func:`write_predictions_csv`).

Imports are lazy (PEP 562): ``from gconv.data import TensorLoader`` loads only
:mod:`gconv.data.loader`, so image work does not pay for RDKit and molecule work does not pay for
torchvision or scikit-image, and the grid helpers load neither.

Renamed in 0.2 (the old names warn until 0.3): ``random_split`` -> :func:`random_split_indices`,
``scaffold_split`` -> :func:`scaffold_split_indices`, ``DescriptorScaler`` ->
``Standardizer.fit(values, clip=5.0, fill_nan=0.0)``; ``gconv.data.molecules`` moved to
:mod:`~gconv.data.featurizers` and :mod:`~gconv.data.cache`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gconv._utils import deprecated_module_attributes

# submodule -> the public names it defines (its __all__; a test checks that they agree)
_MODULES: dict[str, tuple[str, ...]] = {
    "augment": (
        "Compose",
        "RandomAffine",
        "RandomCrop",
        "RandomHorizontalFlip",
        "RandomShift",
        "affine",
        "translate",
    ),
    "cache": ("Featurized", "featurize"),
    "datasets": (
        "CHEMBL_DIR",
        "NCI_TPSA_FILE",
        "MoleculeDataset",
        "chembl_pic50",
        "moleculenet",
        "nci_tpsa",
        "read_embedded",
    ),
    "descriptors": ("DESCRIPTOR_NAMES", "morgan_fingerprints", "rdkit_descriptors"),
    "featurizers": (
        "ATOM_FEATURES",
        "ATOM_FEATURE_DIM",
        "ATOM_FEATURE_NAMES",
        "BOND_FEATURES",
        "BOND_FEATURE_DIM",
        "BOND_FEATURE_NAMES",
        "ELEMENTS",
        "FEATURIZER_VERSION",
        "ORDER_FREE_GETTERS",
        "AtomFeaturizer",
        "BondFeaturizer",
        "Feature",
        "GraphArrays",
        "GraphCodes",
        "GraphFeaturizer",
        "largest_fragment_of",
        "mol_from_smiles",
        "mol_to_graph",
        "parse_smiles",
        "smiles_to_graph",
    ),
    "folders": (
        "COLOR_MODES",
        "IMAGE_EXTENSIONS",
        "ImageFolderData",
        "color_mode_of",
        "list_images",
        "read_image",
        "read_image_folder",
        "read_images",
    ),
    "grid": (
        "GridGraph",
        "graph_to_image",
        "grid_graph",
        "grid_offsets",
        "image_to_graph",
        "images_to_nodes",
        "nodes_to_images",
    ),
    "images": (
        "CLASS_NAMES",
        "FASHION_CLASSES",
        "IMAGE_DATASETS",
        "MNIST_CLASSES",
        "STL10_CLASSES",
        "MNIST",
        "STL10",
        "FashionMNIST",
        "load_image_dataset",
        "mnist5k",
        "to_tensors",
    ),
    "loader": ("TensorLoader",),
    "predict": ("format_number", "predict_smiles", "write_predictions_csv"),
    "scaling": ("Standardizer",),
    "splitting": (
        "murcko_scaffold",
        "random_split_indices",
        "scaffold_split_indices",
        "scaffold_split_positions",
    ),
    "store": (
        "CHUNK_ROWS",
        "STORE_FORMAT",
        "STORE_FORMAT_VERSION",
        "MoleculeStore",
        "StoreDataset",
    ),
    "superpixels": ("image_to_superpixels", "superpixel_dataset"),
}

# public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)

# Deprecated in 0.2, removed in 0.3. A renamed function warns when looked up (and is the new
# function); DescriptorScaler, whose replacement takes other arguments, is a thin subclass of
# Standardizer that warns in fit().
_DEPRECATED_HOMES = {"DescriptorScaler": "descriptors"}
_renamed = deprecated_module_attributes(
    __name__,
    {
        "random_split": ("gconv.data", "random_split_indices"),
        "scaffold_split": ("gconv.data", "scaffold_split_indices"),
    },
)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name) or _DEPRECATED_HOMES.get(name)
    if module is None:
        return _renamed(name)  # warns, or raises AttributeError for an unknown name
    value = getattr(importlib.import_module(f"gconv.data.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from gconv.data.augment import (
        Compose,
        RandomAffine,
        RandomCrop,
        RandomHorizontalFlip,
        RandomShift,
        affine,
        translate,
    )
    from gconv.data.cache import Featurized, featurize
    from gconv.data.datasets import (
        CHEMBL_DIR,
        NCI_TPSA_FILE,
        MoleculeDataset,
        chembl_pic50,
        moleculenet,
        nci_tpsa,
        read_embedded,
    )
    from gconv.data.descriptors import (
        DESCRIPTOR_NAMES,
        DescriptorScaler,
        morgan_fingerprints,
        rdkit_descriptors,
    )
    from gconv.data.featurizers import (
        ATOM_FEATURE_DIM,
        ATOM_FEATURE_NAMES,
        ATOM_FEATURES,
        BOND_FEATURE_DIM,
        BOND_FEATURE_NAMES,
        BOND_FEATURES,
        ELEMENTS,
        FEATURIZER_VERSION,
        ORDER_FREE_GETTERS,
        AtomFeaturizer,
        BondFeaturizer,
        Feature,
        GraphArrays,
        GraphCodes,
        GraphFeaturizer,
        largest_fragment_of,
        mol_from_smiles,
        mol_to_graph,
        parse_smiles,
        smiles_to_graph,
    )
    from gconv.data.folders import (
        COLOR_MODES,
        IMAGE_EXTENSIONS,
        ImageFolderData,
        color_mode_of,
        list_images,
        read_image,
        read_image_folder,
        read_images,
    )
    from gconv.data.grid import (
        GridGraph,
        graph_to_image,
        grid_graph,
        grid_offsets,
        image_to_graph,
        images_to_nodes,
        nodes_to_images,
    )
    from gconv.data.images import (
        CLASS_NAMES,
        FASHION_CLASSES,
        IMAGE_DATASETS,
        MNIST,
        MNIST_CLASSES,
        STL10,
        STL10_CLASSES,
        FashionMNIST,
        load_image_dataset,
        mnist5k,
        to_tensors,
    )
    from gconv.data.loader import TensorLoader
    from gconv.data.predict import format_number, predict_smiles, write_predictions_csv
    from gconv.data.scaling import Standardizer
    from gconv.data.splitting import (
        murcko_scaffold,
        random_split_indices,
        scaffold_split_indices,
        scaffold_split_positions,
    )
    from gconv.data.store import (
        CHUNK_ROWS,
        STORE_FORMAT,
        STORE_FORMAT_VERSION,
        MoleculeStore,
        StoreDataset,
    )
    from gconv.data.superpixels import image_to_superpixels, superpixel_dataset
