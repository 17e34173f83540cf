"""RDKit descriptors and Morgan fingerprints as molecule-level features, and their scaler."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from gconv.data import (
    DESCRIPTOR_NAMES,
    DescriptorScaler,
    MoleculeDataset,
    morgan_fingerprints,
    rdkit_descriptors,
)

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]"]


def test_descriptors_equal_rdkit_values() -> None:
    values = rdkit_descriptors(SMILES, names=["MolWt", "TPSA", "MolLogP"])
    assert values.shape == (4, 3) and values.dtype == np.float32
    for row, smiles in enumerate(SMILES):
        mol = Chem.MolFromSmiles(smiles)
        expected = [Descriptors.MolWt(mol), Descriptors.TPSA(mol), Descriptors.MolLogP(mol)]
        np.testing.assert_allclose(values[row], expected, rtol=1e-6)


def test_all_descriptors_by_default_and_unknown_names_rejected() -> None:
    assert rdkit_descriptors(["CCO"]).shape == (1, len(DESCRIPTOR_NAMES))
    with pytest.raises(ValueError, match=r"unknown RDKit descriptor\(s\) \['NoSuch'\]"):
        rdkit_descriptors(["CCO"], names=["MolWt", "NoSuch"])
    with pytest.raises(ValueError, match=r"molecule 1 \('C1CC'\)"):
        rdkit_descriptors(["CCO", "C1CC"], names=["MolWt"])
    with pytest.raises(TypeError, match="one string"):
        rdkit_descriptors("CCO")


def test_descriptor_cache_round_trip(tmp_path) -> None:
    first = rdkit_descriptors(SMILES, names=["MolWt", "TPSA"], cache_dir=tmp_path)
    (cached,) = tmp_path.glob("descriptors-*.pt")
    second = rdkit_descriptors(SMILES, names=["MolWt", "TPSA"], cache_dir=tmp_path)
    np.testing.assert_array_equal(first, second)
    other = rdkit_descriptors(SMILES, names=["TPSA"], cache_dir=tmp_path)  # another key
    assert other.shape == (4, 1) and len(list(tmp_path.glob("descriptors-*.pt"))) == 2
    assert cached.exists()


def test_scaler_uses_training_statistics_fills_nan_and_clips() -> None:
    train = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 2.0], [5.0, 5.0, 4.0]])
    scaler = DescriptorScaler.fit(train, clip=3.0)
    z = scaler.transform(train)
    np.testing.assert_allclose(z[:, 0], [-math.sqrt(1.5), 0.0, math.sqrt(1.5)], rtol=1e-6)
    np.testing.assert_array_equal(z[:, 1], [0.0, 0.0, 0.0])  # constant column: sigma 1
    assert z[0, 2] == 0.0  # NaN becomes the training mean
    far = scaler.transform(np.array([[1e6, 5.0, 3.0]]))
    assert far[0, 0] == 3.0  # clipped
    with pytest.raises(ValueError, match=r"descriptors \[N, 3\], got \(1, 2\)"):
        scaler.transform(np.zeros((1, 2)))
    assert repr(scaler) == "DescriptorScaler(num_features=3, clip=3.0)"


def test_morgan_fingerprints_equal_rdkit_generator() -> None:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    bits = morgan_fingerprints(SMILES, n_bits=1024)
    counts = morgan_fingerprints(SMILES, n_bits=1024, counts=True)
    for row, smiles in enumerate(SMILES):
        mol = Chem.MolFromSmiles(smiles)
        np.testing.assert_array_equal(bits[row], generator.GetFingerprintAsNumPy(mol))
        np.testing.assert_array_equal(counts[row], generator.GetCountFingerprintAsNumPy(mol))
    assert counts.max() > 1  # phenol's aromatic CH environments repeat


def test_dataset_with_descriptors_batches_x_d() -> None:
    from torch_geometric.loader import DataLoader

    dataset = MoleculeDataset(SMILES, [1.0, 2.0, 3.0, 4.0])
    with_d = dataset.with_descriptors(np.arange(8, dtype=np.float32).reshape(4, 2))
    batch = next(iter(DataLoader(with_d, batch_size=4)))
    assert batch.x_d.shape == (4, 2) and batch.x_d[3, 1] == 7.0
    assert not hasattr(dataset[0], "x_d") or dataset[0].x_d is None  # the original is untouched
    with pytest.raises(ValueError, match=r"descriptors \[4, D\], got \(3, 2\)"):
        dataset.with_descriptors(np.zeros((3, 2)))


def test_split_by_labels_names_the_bad_row() -> None:
    with pytest.warns(UserWarning, match="skipped 1 of 4"):
        dataset = MoleculeDataset(["CCO", "C1CC", "CCN", "CCC"], [1, 2, 3, 4], on_error="skip")
    train, val, test = dataset.split_by(["train", "Valid", "TEST"])
    assert (train.smiles, val.smiles, test.smiles) == (["CCO"], ["CCN"], ["CCC"])
    assert test.rows == [3]
    with pytest.raises(ValueError, match=r"row 2 \('CCN'\): split label 'dev' is not one of"):
        dataset.split_by(["train", "dev", "test"])
