"""The store pass's shortcuts give the bytes of the plain RDKit calls: codes read without the
stereo getters, scaffolds of ring-free molecules, one parse per molecule, a freeze of the
garbage collector around the worker pool."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from gconv.data import GraphFeaturizer, MoleculeStore, murcko_scaffold, read_embedded
from gconv.data.featurizers import parse_smiles

# Stereo (tetrahedral, E/Z, in rings, @TH/@SP/@AL), charges, salts, isotopes, explicit H,
# aromatic heteroatoms with and without H, rings of every kind, acyclic molecules, metals and
# dative bonds, a single atom, and rows that do not parse.
EDGE_CASES = [
    "C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "F/C=C/F", "F/C=C\\F", "C/C=C/C=C/C",
    "C1CC[C@H]2CCCC[C@@H]2C1", "C/1=C/CCCCCC1", "[C@@H]1(F)CCCCC1Cl", "F[C@TH1](Cl)(Br)I",
    "C[Pt@SP1](F)(Cl)Br", "CC=[C@AL1]=CC", "N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O",
    "C[N+](C)(C)C", "[O-]C(=O)c1ccccc1", "[NH3+]CC([O-])=O", "[Na+].[Cl-]", "[K+].[O-]c1ccccc1",
    "CC(=O)[O-].[NH4+]", "Cl.CCN(CC)CC", "O.O.[Cu+2].[O-]S([O-])(=O)=O", "[13CH4]", "[2H]OC",
    "[H]C([H])([H])O", "c1cc[nH]c1", "Cn1cccc1", "c1ccncc1", "c1cc[n+]([O-])cc1", "c1ccsc1",
    "[cH-]1cccc1", "C1CC1", "C1CCC2(CC1)CCC2", "c1ccc2ccccc2c1", "C1CC2CCC1C2",
    "O=C1CCCN1", "O=C1CCC(=O)N1C", "C=C1CCCC1", "CC1=CC(=O)C=CC1=O", "C1CCCCCCCCCCCCC1",
    "c1ccccc1-c1ccccc1", "c1ccccc1CCc1ccccc1", "c1ccccc1C(=O)OC1CCCCC1", "C1CC1C1CC1",
    "CCO", "CC(C)(C)C", "C=CC=C", "C#N", "C", "[Fe]", "[Fe+2]", "N->[Fe]", "CCN->[Cu+2]",
    "O=[N+]([O-])c1ccccc1", "C[S@@](=O)c1ccccc1", "C1=CC=CC=C1", "OC1=CC=CC=C1",
    "FC(F)(F)c1ccc(cc1)S(=O)(=O)N", "CP(C)(C)=O", "B1OC(C)(C)C(C)(C)O1", "[Si](C)(C)(C)C",
    "c1ccc2c(c1)[nH]c1ccccc12", "C1=CC2=CC=CC=CC2=C1", "c1cc2ccc3cccc4ccc(c1)c2c34",
    "CC(C)C[C@H](NC(=O)[C@@H](Cc1ccccc1)NC(=O)c1cnccn1)B(O)O",
    "C1CC", "", "   ", "CCO c1ccccc1", "c1cccc1", "C(C)(C)(C)(C)C", "[Xe]",
]  # fmt: skip


def _plain(smiles: str) -> bool:
    return not ("@" in smiles or "/" in smiles or "\\" in smiles)


def _all_molecules() -> list[tuple[str, Chem.Mol]]:
    out = []
    for smiles in EDGE_CASES + read_embedded("tpsa")[0] + read_embedded("chembl")[0]:
        try:
            out.append((smiles.strip(), parse_smiles(smiles.strip())))
        except ValueError:
            pass
    return out


def test_codes_without_the_stereo_getters_equal_the_full_read():
    featurizer = GraphFeaturizer()
    pairs = _all_molecules()
    smiles = [s for s, _ in pairs]
    mols = [m for _, m in pairs]
    stereo = [not _plain(s) for s in smiles]
    assert 0 < sum(stereo) < len(stereo)  # both paths are taken
    full = featurizer.codes(mols)
    short = featurizer.codes(mols, stereo)
    for a, b in zip(full, short, strict=True):
        np.testing.assert_array_equal(a, b)
    # the shortcut really skips the getters: a chiral molecule said to be plain loses its tags
    chiral = [parse_smiles("C[C@H](N)C(=O)O")]
    chirality = [f.name for f in featurizer.atom_featurizer.features].index("chirality")
    assert featurizer.codes(chiral).atom_codes[:, chirality].any()
    assert not featurizer.codes(chiral, [False]).atom_codes[:, chirality].any()
    with pytest.raises(ValueError):
        featurizer.codes(chiral, [True, False])  # one flag per molecule


def test_scaffolds_of_ring_free_molecules_are_empty_as_rdkit_says():
    ring_free = [(s, m) for s, m in _all_molecules() if not m.GetRingInfo().NumRings()]
    assert len(ring_free) > 20
    for smiles, mol in ring_free:
        assert MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False) == "", smiles
        assert murcko_scaffold(smiles) == ""


@pytest.mark.parametrize("largest_fragment", [False, True])
def test_a_store_holds_what_the_plain_rdkit_calls_give(tmp_path, largest_fragment):
    """Per molecule: the codes of ``GraphFeaturizer.codes`` read in full, ``Chem.MolToSmiles``,
    ``murcko_scaffold`` (chemprop's ``MurckoScaffoldSmiles``), and ``parse_smiles``'s reason
    for every bad row; over the edge cases and both embedded sets, in chunks of 1,000."""
    featurizer = GraphFeaturizer()
    smiles = EDGE_CASES + read_embedded("tpsa")[0] + read_embedded("chembl")[0]
    store = MoleculeStore.from_smiles(
        smiles, None, [], tmp_path, chunk_rows=1000, largest_fragment=largest_fragment
    )
    kept, skipped = [], []
    for row, s in enumerate(smiles):
        s = s.strip()
        try:
            kept.append((row, s, parse_smiles(s)))
        except ValueError as err:
            skipped.append((row, s, str(err)))
    assert store.skipped == skipped and len(skipped) >= 4
    assert store.field("rows").tolist() == [row for row, _, _ in kept]
    positions = np.arange(len(store))
    assert store.strings("smiles", positions) == [s for _, s, _ in kept]
    assert store.strings("scaffold", positions) == [murcko_scaffold(s) for _, s, _ in kept]
    mols = [m for _, _, m in kept]
    if largest_fragment:
        from gconv.data.featurizers import largest_fragment_of

        mols = [largest_fragment_of(m) for m in mols]
    assert store.strings("canonical", positions) == [Chem.MolToSmiles(m) for m in mols]
    reference = featurizer.codes(mols)
    np.testing.assert_array_equal(store.field("atom_codes"), reference.atom_codes)
    np.testing.assert_array_equal(store.field("bond_codes"), reference.bond_codes)
    np.testing.assert_array_equal(store.field("num_atoms"), reference.num_atoms)
    np.testing.assert_array_equal(store.field("num_bonds"), reference.num_bonds)


def test_the_worker_pool_freezes_the_collector_and_unfreezes_it(tmp_path):
    seen = []

    def during(k: int) -> None:
        seen.append(gc.get_freeze_count())

    assert gc.get_freeze_count() == 0
    MoleculeStore.from_smiles(
        EDGE_CASES[:20], None, [], tmp_path, chunk_rows=5, n_jobs=2, on_chunk=during
    )
    assert seen and min(seen) > 0  # frozen while the workers ran
    assert gc.get_freeze_count() == 0  # and given back
