"""GraphFeaturizer.graph_hashes: what a store finds duplicates by, and what it must not merge."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from rdkit import Chem, rdBase

from gconv.data import (
    AtomFeaturizer,
    Feature,
    GraphFeaturizer,
    MoleculeDataset,
    MoleculeStore,
    StoreDataset,
    read_embedded,
)

# 1-WL cannot tell these apart: every atom a ring CH2 with two ring CH2 neighbours
RINGS = ["C1CCCCC1.C1CCCCC1", "C1CCCCCCCCCCC1", "C1CCC1.C1CCCCCCC1"]


def hashes(smiles, featurizer=None):
    featurizer = featurizer or GraphFeaturizer()
    with rdBase.BlockLogs():
        mols = [Chem.MolFromSmiles(s) for s in smiles]
    return featurizer.graph_hashes(featurizer.codes(mols)).tolist()


@pytest.mark.parametrize("name", ["tpsa", "chembl"])
def test_the_hash_does_not_depend_on_atom_order_and_separates_the_embedded_sets(name):
    smiles = read_embedded(name)[0]
    with rdBase.BlockLogs():
        mols = [m for m in map(Chem.MolFromSmiles, smiles) if m is not None]
    featurizer = GraphFeaturizer()
    reference = featurizer.graph_hashes(featurizer.codes(mols))
    for seed in range(2):
        rdBase.SeedRandomNumberGenerator(seed)
        # the same molecules, atoms in another (random) order
        shuffled = [Chem.MolFromSmiles(Chem.MolToSmiles(m, doRandom=True)) for m in mols]
        codes = featurizer.codes(shuffled)
        assert not np.array_equal(codes.atom_codes, featurizer.codes(mols).atom_codes)
        np.testing.assert_array_equal(featurizer.graph_hashes(codes), reference)
    # one hash per molecule up to stereo, on both sets: as many groups as canonical SMILES
    # without stereo, and the same groups
    flat = [Chem.MolToSmiles(m, isomericSmiles=False) for m in mols]
    assert (
        len(set(reference.tolist()))
        == len(set(flat))
        == len(set(zip(reference.tolist(), flat, strict=True)))
    )


def test_positional_isomers_differ_stereoisomers_and_1wl_twins_meet():
    xylenes = hashes(["Cc1ccccc1C", "Cc1cccc(C)c1", "Cc1ccc(C)cc1"])
    assert len(set(xylenes)) == 3
    assert len(set(hashes(["CCC(C)CC", "CC(C)CCC", "CCCCCC"]))) == 3
    assert len(set(hashes(["C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "CC(N)C(=O)O"]))) == 1
    assert len(set(hashes(RINGS))) == 1  # the hash's known limit: the store resolves it


def test_a_custom_feature_the_hash_cannot_trust_is_left_out():
    """A lambda may depend on atom order (a chiral tag does): only the order-free getters count,
    so a table of one lambda hashes the bare graph, still order-free."""
    custom = GraphFeaturizer(AtomFeaturizer([Feature("index", lambda a: a.GetIdx() % 3)]))
    assert hashes(["OCC", "CCO"], custom)[0] == hashes(["OCC", "CCO"], custom)[1]
    assert hashes(["CCO", "CCN"], custom)[0] == hashes(["CCO", "CCN"], custom)[1]  # bare graph
    assert hashes(["CCO", "CCN"])[0] != hashes(["CCO", "CCN"])[1]


def test_the_store_merges_by_canonical_smiles_where_hashes_meet(tmp_path):
    """Molecules with one hash but different canonical SMILES (1-WL twins, stereoisomers) stay
    apart with their own labels; true copies (atoms in another order) are merged, as in memory."""
    smiles = [*RINGS, "C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "C1CCCCCCCCCCC1", "OC(=O)[C@@H](N)C"]
    y = [1.0, 2.0, 3.0, 4.0, 5.0, 2.0, 4.0]
    path = tmp_path / "mols.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "y"])
        writer.writerows(zip(smiles, y, strict=True))
    on_disk = StoreDataset(MoleculeStore.from_csv(path, tmp_path, "smiles", ["y"], chunk_rows=3))
    with pytest.warns(UserWarning, match="merged 2 duplicate"):
        in_memory = MoleculeDataset.from_csv(path, "smiles", "y")
    assert [(d.row, d.kept_row) for d in on_disk.duplicates] == [(5, 1), (6, 3)]
    assert on_disk.duplicates == in_memory.duplicates
    assert on_disk.rows == in_memory.rows == [0, 1, 2, 3, 4]
    assert on_disk.y[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    y[5] = 9.0  # a copy with another label is refused, named by its canonical SMILES
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "y"])
        writer.writerows(zip(smiles, y, strict=True))
    with pytest.raises(ValueError, match=r"'C1CCCCCCCCCCC1' in rows 1, 5"):
        StoreDataset(MoleculeStore.from_csv(path, tmp_path, "smiles", ["y"], chunk_rows=3))
