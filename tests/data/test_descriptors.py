"""Tests for gconv.data.descriptors: RDKit descriptors and Morgan fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from gconv.data.descriptors import DESCRIPTOR_NAMES, morgan_fingerprints, rdkit_descriptors

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


def test_morgan_fingerprints_equal_rdkit_generator() -> None:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    bits = morgan_fingerprints(SMILES, n_bits=1024)
    counts = morgan_fingerprints(SMILES, n_bits=1024, counts=True)
    for row, smiles in enumerate(SMILES):
        mol = Chem.MolFromSmiles(smiles)
        np.testing.assert_array_equal(bits[row], generator.GetFingerprintAsNumPy(mol))
        np.testing.assert_array_equal(counts[row], generator.GetCountFingerprintAsNumPy(mol))
    assert counts.max() > 1  # phenol's aromatic CH environments repeat
