"""The store pass's shortcuts give the bytes of the plain RDKit calls: the quick parse of plain
SMILES, codes read without the stereo getters, scaffolds of ring-free molecules, one parse per
molecule, a freeze of the garbage collector around the worker pool."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold

from gconv.data import GraphFeaturizer, MoleculeStore, murcko_scaffold, read_embedded
from gconv.data.featurizers import mol_from_smiles, parse_smiles

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


_A, _B = Chem.rdchem.Atom, Chem.rdchem.Bond
_ATOM_GETTERS = [
    _A.GetAtomicNum, _A.GetIsotope, _A.GetFormalCharge, _A.GetNumRadicalElectrons,
    _A.GetTotalNumHs, _A.GetNumExplicitHs, _A.GetNoImplicit, _A.GetDegree, _A.GetHybridization,
    _A.GetIsAromatic, _A.IsInRing, _A.GetChiralTag, _A.GetTotalValence,
]  # fmt: skip
_BOND_GETTERS = [
    _B.GetBeginAtomIdx, _B.GetEndAtomIdx, _B.GetBondType, _B.GetIsAromatic, _B.GetIsConjugated,
    _B.IsInRing, _B.GetStereo, _B.GetBondDir,
]  # fmt: skip


def _rdkit(mol: Chem.Mol) -> tuple:
    """Everything a molecule is to gconv: every atom's and bond's properties, its canonical
    SMILES (isomeric and not), ring systems and Murcko scaffold."""
    atoms = [tuple(get(a) for get in _ATOM_GETTERS) for a in mol.GetAtoms()]
    bonds = [tuple(get(b) for get in _BOND_GETTERS) for b in mol.GetBonds()]
    rings = mol.GetRingInfo().AtomRings(), mol.GetRingInfo().BondRings()
    smiles = Chem.MolToSmiles(mol), Chem.MolToSmiles(mol, isomericSmiles=False)
    scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol) if rings[0] else ""
    return atoms, bonds, rings, smiles, scaffold


def test_the_quick_parse_gives_rdkits_molecule():
    """``mol_from_smiles`` against ``Chem.MolFromSmiles`` on the edge cases, both embedded
    sets (5,000 NCI and 1,017 ChEMBL molecules): the same failures, the same molecule."""
    smiles = [s.strip() for s in EDGE_CASES + read_embedded("tpsa")[0] + read_embedded("chembl")[0]]
    quick = 0
    with rdBase.BlockLogs():
        for s in smiles:
            if not s or " " in s:
                continue
            reference, mol = Chem.MolFromSmiles(s), mol_from_smiles(s)
            assert (mol is None) == (reference is None), s
            if mol is None:
                continue
            assert _rdkit(mol) == _rdkit(reference), s
            if not mol.GetAtomWithIdx(0).HasProp("_CIPRank"):  # the quick path: no CIP ranks
                quick += 1
    assert 0.8 * len(smiles) < quick < len(smiles)  # most SMILES take the quick path, not all


@pytest.mark.parametrize("table", ["default", "custom"])
def test_degree_and_ring_columns_counted_from_the_bonds_are_rdkits(table):
    """``codes`` counts the degree and in-ring columns from the bonds instead of calling
    ``GetDegree`` / ``IsInRing``: the values RDKit gives, atom by atom. A custom table without
    the bonds' ring column reads ``IsInRing`` (only the degree is counted)."""
    from gconv.data import AtomFeaturizer, BondFeaturizer
    from gconv.data.featurizers import ATOM_FEATURES, BOND_FEATURES, Feature

    if table == "default":
        featurizer = GraphFeaturizer()
    else:
        atoms = (Feature("in_ring", _A.IsInRing), Feature("degree", _A.GetDegree, (0, 1, 2, 3)))
        featurizer = GraphFeaturizer(AtomFeaturizer(atoms), BondFeaturizer(BOND_FEATURES[:1]))
    names = [f.name for f in (ATOM_FEATURES if table == "default" else atoms)]
    mols = [m for _, m in _all_molecules()]
    codes = featurizer.codes(mols)
    degree = [a.GetDegree() for m in mols for a in m.GetAtoms()]
    in_ring = [int(a.IsInRing()) for m in mols for a in m.GetAtoms()]
    assert codes.atom_codes[:, names.index("degree")].tolist() == degree
    assert codes.atom_codes[:, names.index("in_ring")].tolist() == in_ring
    assert 0 < sum(in_ring) < len(in_ring) and max(degree) >= 4 and min(degree) == 0


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
    """Per molecule of ``Chem.MolFromSmiles``: the codes of ``GraphFeaturizer.codes`` read in
    full, ``Chem.MolToSmiles``, chemprop's ``MurckoScaffoldSmiles``, and ``parse_smiles``'s
    reason for every bad row; over the edge cases and both embedded sets, chunks of 1,000."""
    featurizer = GraphFeaturizer()
    smiles = EDGE_CASES + read_embedded("tpsa")[0] + read_embedded("chembl")[0]
    store = MoleculeStore.from_smiles(
        smiles, None, [], tmp_path, chunk_rows=1000, largest_fragment=largest_fragment
    )
    kept, skipped = [], []
    for row, s in enumerate(smiles):
        s = s.strip()
        try:
            parse_smiles(s)
        except ValueError as err:
            skipped.append((row, s, str(err)))
            continue
        with rdBase.BlockLogs():
            kept.append((row, s, Chem.MolFromSmiles(s)))  # not the quick parse: RDKit's own
    assert store.skipped == skipped and len(skipped) >= 4
    assert store.field("rows").tolist() == [row for row, _, _ in kept]
    positions = np.arange(len(store))
    assert store.strings("smiles", positions) == [s for _, s, _ in kept]
    assert store.strings("scaffold", positions) == [
        MurckoScaffold.MurckoScaffoldSmiles(mol=m, includeChirality=False) for _, _, m in kept
    ]
    mols = [m for _, _, m in kept]
    if largest_fragment:
        from gconv.data.featurizers import largest_fragment_of

        mols = [largest_fragment_of(m) for m in mols]
    assert store.canonical_smiles(positions) == [Chem.MolToSmiles(m) for m in mols]
    reference = featurizer.codes(mols)
    np.testing.assert_array_equal(store.field("graph_hash"), featurizer.graph_hashes(reference))
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
