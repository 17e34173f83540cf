"""Tests for gconv.data.featurizers: features of known molecules, bad input, feature tables."""

import pickle
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdkit import Chem
from torch_geometric.utils import is_undirected

from gconv.data.featurizers import (
    ATOM_FEATURE_DIM,
    ATOM_FEATURE_NAMES,
    ATOM_FEATURES,
    BOND_FEATURE_DIM,
    BOND_FEATURE_NAMES,
    BOND_FEATURES,
    FEATURIZER_VERSION,
    AtomFeaturizer,
    BondFeaturizer,
    Feature,
    GraphArrays,
    GraphFeaturizer,
    mol_to_graph,
    parse_smiles,
    smiles_to_graph,
)


def active(row: torch.Tensor, names: list[str]) -> set[str]:
    """Names of the columns that are set in one feature row."""
    return {names[i] for i in row.nonzero().flatten().tolist()}


def column(name: str) -> int:
    return ATOM_FEATURE_NAMES.index(name)


def test_feature_lists_match_dims():
    assert ATOM_FEATURE_DIM == len(ATOM_FEATURE_NAMES) == len(AtomFeaturizer()) == 48
    assert BOND_FEATURE_DIM == len(BOND_FEATURE_NAMES) == len(BondFeaturizer()) == 14
    assert len(set(ATOM_FEATURE_NAMES)) == ATOM_FEATURE_DIM
    assert repr(AtomFeaturizer()) == "AtomFeaturizer(version='gconv-mol-v1', dim=48)"


def test_benzene_is_aromatic_ring():
    data = smiles_to_graph("c1ccccc1")
    assert data.x.shape == (6, ATOM_FEATURE_DIM) and data.x.dtype == torch.float32
    assert data.edge_index.shape == (2, 12) and data.edge_attr.shape == (12, BOND_FEATURE_DIM)
    expected_atom = {
        "element=C",
        "degree=2",
        "formal_charge=0",
        "hybridization=SP2",
        "aromatic",
        "num_hs=1",
        "in_ring",
        "chirality=CHI_UNSPECIFIED",
    }
    for row in data.x:
        assert active(row, ATOM_FEATURE_NAMES) == expected_atom
    for row in data.edge_attr:
        assert active(row, BOND_FEATURE_NAMES) == {
            "bond_type=AROMATIC",
            "conjugated",
            "in_ring",
            "stereo=STEREONONE",
        }


def test_ethanol_degrees_and_hydrogens():
    data = smiles_to_graph("CCO")
    degrees = data.x[:, [column(f"degree={d}") for d in range(6)]].argmax(1)
    hydrogens = data.x[:, [column(f"num_hs={h}") for h in range(5)]].argmax(1)
    assert degrees.tolist() == [1, 2, 1]
    assert hydrogens.tolist() == [3, 2, 1]
    assert data.x[:, column("element=O")].tolist() == [0, 0, 1]
    assert data.x[:, column("aromatic")].sum() == 0
    # graph degree equals the degree one-hot
    assert torch.bincount(data.edge_index[0], minlength=3).tolist() == [1, 2, 1]
    assert data.smiles == "CCO"


def test_charged_ammonium_single_atom():
    data = smiles_to_graph("[NH4+]")
    assert data.num_nodes == 1
    assert data.edge_index.shape == (2, 0) and data.edge_index.dtype == torch.long
    assert data.edge_attr.shape == (0, BOND_FEATURE_DIM)
    assert active(data.x[0], ATOM_FEATURE_NAMES) >= {
        "element=N",
        "formal_charge=1",
        "num_hs=4",
        "degree=0",
    }


def test_rare_values_land_in_unknown_slots():
    # Fe is not in the element list; +3 is outside the charge choices.
    iron = smiles_to_graph("[Fe+3]").x[0]
    assert iron[column("element=other")] == 1
    assert iron[column("formal_charge=unknown")] == 1
    # hexavalent sulfur in SF6 has 6 neighbours, one more than the listed degrees.
    sulfur = smiles_to_graph("FS(F)(F)(F)(F)F").x[1]
    assert sulfur[column("element=S")] == 1 and sulfur[column("degree=unknown")] == 1
    # each categorical group sets exactly one column per atom
    assert smiles_to_graph("FS(F)(F)(F)(F)F").x.sum(1).tolist() == [6.0] * 7


def test_chirality_and_double_bond_stereo():
    chiral = smiles_to_graph("C[C@H](N)O").x[1]
    assert chiral[column("chirality=CHI_TETRAHEDRAL_CCW")] == 1
    trans = smiles_to_graph("F/C=C/F")
    double = trans.edge_attr[:, BOND_FEATURE_NAMES.index("bond_type=DOUBLE")] == 1
    assert double.sum() == 2  # one bond, two directions
    assert (trans.edge_attr[double, BOND_FEATURE_NAMES.index("stereo=STEREOE")] == 1).all()


def test_salt_keeps_both_fragments_by_default():
    data = smiles_to_graph("[Na+].[Cl-]")
    assert data.num_nodes == 2 and data.edge_index.shape == (2, 0)
    acetate_salt = "CC(=O)[O-].[Na+]"
    assert smiles_to_graph(acetate_salt).num_nodes == 5
    largest = smiles_to_graph(acetate_salt, largest_fragment=True)
    assert largest.num_nodes == 4
    assert largest.x[:, column("element=other")].sum() == 0  # the sodium is gone


def test_very_large_molecule():
    smiles = "C" * 2000 + "c1ccccc1"
    data = smiles_to_graph(smiles)
    assert data.num_nodes == 2006
    assert data.edge_index.shape == (2, 2 * 2006)
    assert is_undirected(data.edge_index, num_nodes=data.num_nodes)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (None, ValueError, "None"),
        ("", ValueError, "''"),
        ("   ", ValueError, "'   '"),
        ("C1CC", ValueError, "'C1CC'.*syntax"),
        ("N(C)(C)(C)(C)C", ValueError, r"'N\(C\)\(C\)\(C\)\(C\)C'.*valence"),
        (42, TypeError, "int"),
    ],
)
def test_smiles_to_graph_bad_input_names_the_string(bad, error, match):
    with pytest.raises(error, match=match):
        smiles_to_graph(bad)


@pytest.mark.parametrize("text", ["CCO c1ccccc1Cl", "CCO\tchloro", "CC\nO", "c1ccccc1, benzene"])
def test_whitespace_inside_a_smiles_is_an_error_not_a_name(text):
    # RDKit reads the text after a space as the molecule's name: "CCO c1ccccc1Cl" is ethanol
    with pytest.raises(
        ValueError, match=re.escape(f"invalid SMILES {text!r}: contains whitespace")
    ):
        parse_smiles(text)
    with pytest.raises(ValueError, match="contains whitespace"):
        smiles_to_graph(text)


def test_leading_and_trailing_whitespace_is_ignored():
    assert Chem.MolToSmiles(parse_smiles("  CCO\t")) == "CCO"
    assert smiles_to_graph(" CCO ").num_nodes == 3


def test_mol_to_graph_checks_input():
    with pytest.raises(TypeError, match="rdkit.Chem.Mol, got str"):
        mol_to_graph("CCO")
    with pytest.raises(ValueError, match="at least one atom"):
        mol_to_graph(Chem.Mol())
    assert mol_to_graph(Chem.MolFromSmiles("OCC")).smiles == "CCO"  # canonical by default


def test_edge_attr_matches_rdkit_bonds():
    mol = Chem.MolFromSmiles("C=CC#N")
    data = mol_to_graph(mol)
    bond_types = data.edge_attr[:, :4].argmax(1)
    for (i, j), bond_type in zip(data.edge_index.t().tolist(), bond_types.tolist(), strict=True):
        expected = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC").index(
            str(mol.GetBondBetweenAtoms(i, j).GetBondType())
        )
        assert bond_type == expected


# -- property tests: random SMILES built from a tiny grammar ----------------------------------

atoms = st.sampled_from(["C", "N", "O", "S", "Cl", "c1ccccc1", "C(=O)", "[NH3+]", "[O-]", "F"])
fragments = st.lists(atoms, min_size=1, max_size=8).map("".join)
random_smiles = st.lists(fragments, min_size=1, max_size=3).map(".".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_smiles)
def test_graph_invariants(smiles):
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:  # the grammar can write impossible valences; those must raise
        with pytest.raises(ValueError, match="invalid SMILES"):
            smiles_to_graph(smiles)
        return
    data = smiles_to_graph(smiles)
    # atom count preserved, two directed edges per bond
    assert data.num_nodes == mol.GetNumAtoms()
    assert data.edge_index.size(1) == 2 * mol.GetNumBonds() == data.edge_attr.size(0)
    assert is_undirected(data.edge_index, num_nodes=data.num_nodes)
    # the attributes of i->j equal those of j->i
    edge_to_row = {tuple(e): k for k, e in enumerate(data.edge_index.t().tolist())}
    for (i, j), k in edge_to_row.items():
        assert torch.equal(data.edge_attr[k], data.edge_attr[edge_to_row[(j, i)]])
    # every atom has exactly 6 categorical one-hots set, plus its two binary flags
    flags = data.x[:, [column("aromatic"), column("in_ring")]].sum(1)
    assert torch.equal(data.x.sum(1) - flags, torch.full((data.num_nodes,), 6.0))


# -- swappable feature tables --------------------------------------------------------------


def test_default_tables_give_the_documented_columns():
    assert [f.name for f in BOND_FEATURES] == ["bond_type", "conjugated", "in_ring", "stereo"]

    assert [f.name for f in ATOM_FEATURES][:3] == ["element", "degree", "formal_charge"]
    assert AtomFeaturizer().feature_names == ATOM_FEATURE_NAMES
    assert BondFeaturizer().feature_names == BOND_FEATURE_NAMES
    assert AtomFeaturizer().version == BondFeaturizer().version == FEATURIZER_VERSION
    assert repr(AtomFeaturizer()) == f"AtomFeaturizer(version={FEATURIZER_VERSION!r}, dim=48)"


def test_feature_table_errors():
    from gconv.data import featurize

    with pytest.raises(TypeError, match="non-empty sequence of gconv.data.Feature"):
        AtomFeaturizer([("degree", None)])
    with pytest.raises(ValueError, match="one distinct code per choice"):
        AtomFeaturizer([Feature("degree", Chem.Atom.GetDegree, (0, 1), codes=(0,))])
    with pytest.raises(TypeError, match="atom_featurizer must be an AtomFeaturizer"):
        featurize(["CCO"], atom_featurizer=BondFeaturizer())
    with pytest.raises(TypeError, match="bond_featurizer must be a BondFeaturizer"):
        GraphFeaturizer(bond_featurizer=AtomFeaturizer())


# -- a pair of featurisers, many molecules at a time -------------------------------------------


def test_graph_featurizer_batch_equals_one_molecule_at_a_time():
    smiles = ["CCO", "[NH4+]", "c1ccccc1O", "CC(=O)[O-].[Na+]", "F/C=C/F", "O"]
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    featurizer = GraphFeaturizer()
    assert featurizer.versions == [FEATURIZER_VERSION, FEATURIZER_VERSION]
    for largest_fragment in (False, True):
        batch = featurizer.arrays(mols, largest_fragment=largest_fragment)
        assert len(batch) == len(mols)
        for arrays, mol, s in zip(batch, mols, smiles, strict=True):
            assert isinstance(arrays, GraphArrays)
            alone = featurizer.arrays([mol], largest_fragment=largest_fragment)[0]
            for left, right in zip(arrays, alone, strict=True):
                np.testing.assert_array_equal(left, right)
            graph, reference = arrays.to_data(s), smiles_to_graph(s, largest_fragment)
            assert torch.equal(graph.x, reference.x) and graph.smiles == s
            assert torch.equal(graph.edge_index, reference.edge_index)
            assert torch.equal(graph.edge_attr, reference.edge_attr)


def test_graph_featurizer_pickles_defaults_as_none():
    default = GraphFeaturizer()
    assert default.__reduce__() == (GraphFeaturizer, (None, None))
    again = pickle.loads(pickle.dumps(default))
    assert again.atom_featurizer is default.atom_featurizer  # the module's own instance
    custom = AtomFeaturizer((*ATOM_FEATURES, Feature("in_ring3", Chem.Atom.IsInRingSize)))
    restored = pickle.loads(pickle.dumps(GraphFeaturizer(custom)))
    assert restored.versions == [custom.version, FEATURIZER_VERSION]
    assert restored.bond_featurizer is default.bond_featurizer
    assert repr(default) == (
        f"GraphFeaturizer(AtomFeaturizer(version={FEATURIZER_VERSION!r}, dim=48), "
        f"BondFeaturizer(version={FEATURIZER_VERSION!r}, dim=14))"
    )
