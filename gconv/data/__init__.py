"""Data sets, conversions and loaders; every public name is imported on first use.

``from gconv.data import mnist5k`` loads only :mod:`gconv.data.images`, so the grid helpers and
the tensor loader do not pull in RDKit (molecules) or torchvision (image data sets).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("RandomCrop", "RandomHorizontalFlip", "RandomShift"), "augment"),
    **dict.fromkeys(
        (
            "MoleculeDataset",
            "Standardizer",
            "chembl_pic50",
            "moleculenet",
            "murcko_scaffold",
            "nci_tpsa",
            "predict_smiles",
            "random_split",
            "scaffold_split",
        ),
        "datasets",
    ),
    **dict.fromkeys(
        (
            "GridGraph",
            "graph_to_image",
            "grid_graph",
            "image_to_graph",
            "images_to_nodes",
            "nodes_to_images",
        ),
        "grid",
    ),
    **dict.fromkeys(
        (
            "CLASS_NAMES",
            "FASHION_CLASSES",
            "MNIST",
            "MNIST_CLASSES",
            "STL10",
            "STL10_CLASSES",
            "FashionMNIST",
            "load_image_dataset",
            "mnist5k",
            "to_tensors",
        ),
        "images",
    ),
    "TensorLoader": "loader",
    **dict.fromkeys(
        ("DESCRIPTOR_NAMES", "DescriptorScaler", "morgan_fingerprints", "rdkit_descriptors"),
        "descriptors",
    ),
    **dict.fromkeys(
        (
            "ATOM_FEATURE_DIM",
            "ATOM_FEATURE_NAMES",
            "BOND_FEATURE_DIM",
            "BOND_FEATURE_NAMES",
            "AtomFeaturizer",
            "BondFeaturizer",
            "Feature",
            "featurize",
            "mol_to_graph",
            "smiles_to_graph",
        ),
        "molecules",
    ),
    **dict.fromkeys(("image_to_superpixels", "superpixel_dataset"), "superpixels"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gconv.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gconv.data.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from gconv.data.augment import RandomCrop, RandomHorizontalFlip, RandomShift
    from gconv.data.datasets import (
        MoleculeDataset,
        Standardizer,
        chembl_pic50,
        moleculenet,
        murcko_scaffold,
        nci_tpsa,
        predict_smiles,
        random_split,
        scaffold_split,
    )
    from gconv.data.descriptors import (
        DESCRIPTOR_NAMES,
        DescriptorScaler,
        morgan_fingerprints,
        rdkit_descriptors,
    )
    from gconv.data.grid import (
        GridGraph,
        graph_to_image,
        grid_graph,
        image_to_graph,
        images_to_nodes,
        nodes_to_images,
    )
    from gconv.data.images import (
        CLASS_NAMES,
        FASHION_CLASSES,
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
    from gconv.data.molecules import (
        ATOM_FEATURE_DIM,
        ATOM_FEATURE_NAMES,
        BOND_FEATURE_DIM,
        BOND_FEATURE_NAMES,
        AtomFeaturizer,
        BondFeaturizer,
        Feature,
        featurize,
        mol_to_graph,
        smiles_to_graph,
    )
    from gconv.data.superpixels import image_to_superpixels, superpixel_dataset
