"""The 0.1 names of gconv.data keep working until 0.3: each warns, naming its replacement, and
gives what the new name gives."""

import importlib
import warnings

import numpy as np
import pytest
import torch

import gconv.data
from gconv._utils import REMOVED_IN
from gconv.data import Standardizer, random_split_indices, scaffold_split_indices

SMILES = ["c1ccccc1C", "c1ccccc1CC", "c1ccncc1C", "C1CCCCC1O", "CCO", "CCN", "C1CC1", "c1ccoc1"]


def deprecated(old: str, new: str):
    return pytest.warns(
        DeprecationWarning, match=rf"{old} is deprecated .* {REMOVED_IN}; use {new}"
    )


def test_random_split_is_random_split_indices():
    with deprecated("gconv.data.random_split", "gconv.data.random_split_indices"):
        from gconv.data import random_split
    assert random_split is random_split_indices
    assert random_split(20, (0.5, 0.25, 0.25), seed=4) == random_split_indices(
        20, (0.5, 0.25, 0.25), seed=4
    )


def test_scaffold_split_is_scaffold_split_indices():
    with deprecated("gconv.data.scaffold_split", "gconv.data.scaffold_split_indices"):
        scaffold_split = gconv.data.scaffold_split
    assert scaffold_split is scaffold_split_indices
    assert scaffold_split(SMILES, (0.5, 0.25, 0.25), 1) == scaffold_split_indices(
        SMILES, (0.5, 0.25, 0.25), 1
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Standardizer", "Standardizer"),
        ("murcko_scaffold", "murcko_scaffold"),
        ("predict_smiles", "predict_smiles"),
        ("random_split", "random_split_indices"),
        ("scaffold_split", "scaffold_split_indices"),
    ],
)
def test_names_that_left_gconv_data_datasets(old, new):
    import gconv.data.datasets as datasets

    with deprecated(f"gconv.data.datasets.{old}", f"gconv.data.{new}"):
        value = getattr(datasets, old)
    assert value is getattr(gconv.data, new)


def test_old_datasets_import_gives_the_same_standardizer():
    y = torch.tensor([[1.0, float("nan")], [2.0, 4.0], [6.0, 5.0]])
    with deprecated("gconv.data.datasets.Standardizer", "gconv.data.Standardizer"):
        from gconv.data.datasets import Standardizer as OldStandardizer
    old, new = OldStandardizer.fit(y), Standardizer.fit(y)
    torch.testing.assert_close(old.transform(y), new.transform(y), equal_nan=True)


@pytest.mark.parametrize("module", ["gconv.data", "gconv.data.descriptors"])
def test_descriptor_scaler_is_a_standardizer_with_its_old_defaults(module):
    descriptor_scaler = importlib.import_module(module).DescriptorScaler
    rng = np.random.default_rng(0)
    train = rng.normal(0.0, 2.0, (30, 4))
    train[rng.random((30, 4)) < 0.2] = np.nan
    other = rng.normal(0.0, 20.0, (10, 4))
    new = "gconv.data.Standardizer.fit\\(values, clip=clip, fill_nan=0.0\\)"
    with deprecated(r"gconv.data.DescriptorScaler.fit\(values, clip\)", new):
        scaler = descriptor_scaler.fit(train)
    assert isinstance(scaler, Standardizer) and (scaler.clip, scaler.fill_nan) == (5.0, 0.0)
    expected = Standardizer.fit(train, clip=5.0, fill_nan=0.0).transform(other)
    np.testing.assert_array_equal(scaler.transform(other), expected)
    with pytest.warns(DeprecationWarning):
        clipped = descriptor_scaler.fit(train, clip=1.0)
    assert clipped.transform(other).max() == 1.0
    assert repr(clipped) == "DescriptorScaler(num_features=4, clip=1.0)"
    # the 0.1 checks and messages
    with pytest.raises(ValueError, match=r"descriptors \[N, 4\], got \(1, 2\)"):
        scaler.transform(np.zeros((1, 2)))
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=r"\[N, D\] with N > 0"):
        descriptor_scaler.fit(np.zeros(3))
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="clip > 0, got -1"):
        descriptor_scaler.fit(train, clip=-1)


MOLECULES_NAMES = [
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
]


@pytest.mark.parametrize("name", MOLECULES_NAMES)
def test_gconv_data_molecules_names_moved(name):
    import gconv.data.molecules as molecules

    with deprecated(f"gconv.data.molecules.{name}", f"gconv.data.{name}"):
        value = getattr(molecules, name)
    assert value is getattr(gconv.data, name)


def test_gconv_data_molecules_old_imports_give_the_same_graphs():
    with pytest.warns(DeprecationWarning):
        from gconv.data.molecules import featurize, smiles_to_graph
    old, new = smiles_to_graph("c1ccccc1O"), gconv.data.smiles_to_graph("c1ccccc1O")
    assert torch.equal(old.x, new.x) and torch.equal(old.edge_index, new.edge_index)
    assert featurize(["CCO", "C1CC"], on_error="skip").skipped[0][:2] == (1, "C1CC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        namespace: dict = {}
        exec("from gconv.data.molecules import *", namespace)  # noqa: S102
    assert set(MOLECULES_NAMES) <= set(namespace)


def test_unknown_names_still_raise():
    import gconv.data.datasets as datasets
    import gconv.data.molecules as molecules

    for module in (gconv.data, datasets, molecules):
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            module.nope  # noqa: B018
