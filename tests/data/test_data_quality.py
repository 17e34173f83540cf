"""Issue 22, the data side: input that used to give a silent wrong result now gives a clear one.

Duplicate molecules (by canonical SMILES) with equal or conflicting labels, SMILES cells with
whitespace inside, target columns without labels (at all, or in the training split)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from rdkit import Chem

from gconv.data import MoleculeDataset, featurize, random_split_indices

# 12 distinct molecules with 4 scaffolds (benzene, pyridine, cyclohexane, acyclic)
DISTINCT = [
    "c1ccccc1C",
    "c1ccccc1CC",
    "c1ccccc1O",
    "c1ccncc1C",
    "c1ccncc1CC",
    "c1ccncc1O",
    "C1CCCCC1C",
    "C1CCCCC1CC",
    "C1CCCCC1O",
    "CCCC",
    "CCCCC",
    "CCCCO",
]


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return function(*args, **kwargs)


def write(tmp_path, text: str, name: str = "mols.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- duplicates ----------------------------------------------------------------------------------


def test_conflicting_duplicates_are_an_error_naming_canonical_smiles_and_rows(tmp_path):
    # the prober's rows: CCO,1 / CCO,9 / OCC,1 (OCC is ethanol too)
    rows = [f"{s},{i}" for i, s in enumerate(DISTINCT)] + ["CCO,1", "CCO,9", "OCC,1"]
    path = write(tmp_path, "smiles,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"'CCO' in rows 12, 13, 14 \(y: 1, 9, 1\)") as info:
        MoleculeDataset.from_csv(path, "smiles", "y")
    assert "duplicates to 'mean'" in str(info.value)


def test_identical_duplicates_are_merged_with_a_warning_naming_the_rows():
    smiles = [*DISTINCT, "CCO", "OCC", "C(O)C"]
    with pytest.warns(
        UserWarning, match=r"merged 2 duplicate row\(s\).*row 13 \('OCC'\) -> row 12"
    ):
        dataset = MoleculeDataset(smiles, [*range(12), 5.0, 5.0, 5.0])
    assert len(dataset) == 13 and dataset.rows == list(range(13))
    assert dataset.smiles[-1] == "CCO" and dataset.y[-1].item() == 5.0
    assert [(d.row, d.smiles, d.kept_row, d.y) for d in dataset.duplicates] == [
        (13, "OCC", 12, (5.0,)),
        (14, "C(O)C", 12, (5.0,)),
    ]
    assert dataset.num_rows == 15
    assert "canonical_smiles" not in dataset[0]  # items look as before


@pytest.mark.parametrize(("rule", "expected"), [("mean", 11 / 3), ("first", 1.0)])
def test_conflicting_duplicates_averaged_or_first_on_request(rule, expected):
    smiles = [*DISTINCT, "CCO", "CCO", "OCC"]
    with pytest.warns(UserWarning, match=rf"1 of them with different labels.*{rule!r}"):
        dataset = MoleculeDataset(smiles, [*range(12), 1.0, 9.0, 1.0], duplicates=rule)
    assert len(dataset) == 13
    assert dataset.y[-1].item() == pytest.approx(expected)
    assert [d.y for d in dataset.duplicates] == [(9.0,), (1.0,)]  # each row's own label


def test_copies_labelled_in_different_tasks_complement_each_other():
    nan = math.nan
    targets = [[float(i), float(i)] for i in range(12)] + [[1.0, nan], [nan, 7.0]]
    with pytest.warns(UserWarning, match="merged 1 duplicate"):
        dataset = MoleculeDataset([*DISTINCT, "CCO", "OCC"], targets)
    assert dataset.y[-1].tolist() == [1.0, 7.0]


def test_duplicates_rule_is_checked():
    with pytest.raises(ValueError, match="duplicates must be one of 'error', 'mean', 'first'"):
        MoleculeDataset(["CCO"], [1.0], duplicates="drop")


def test_stereoisomers_and_unlabelled_sets_are_not_merged():
    # enantiomers are different molecules (isomeric canonical SMILES)
    dataset = MoleculeDataset(["C[C@H](N)O", "C[C@@H](N)O"], [1.0, 2.0])
    assert len(dataset) == 2 and dataset.duplicates == []
    # molecules to predict keep every row, so predictions line up with the input
    unlabelled = MoleculeDataset(["CCO", "OCC", "c1ccccc1"])
    assert len(unlabelled) == 3 and unlabelled.duplicates == []


def test_largest_fragment_merges_salts_of_one_parent():
    dataset = quietly(
        MoleculeDataset, ["CC(=O)O", "CC(=O)O.[Na+].[Cl-]"], [1.0, 1.0], largest_fragment=True
    )
    assert len(dataset) == 1 and dataset.duplicates[0].row == 1


def _one_molecule_per_split(parts) -> None:
    canonical = [{Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in part.smiles} for part in parts]
    assert not (canonical[0] & canonical[1] or canonical[0] & canonical[2])
    assert not canonical[1] & canonical[2]


@pytest.mark.parametrize("method", ["random", "scaffold"])
def test_splits_never_put_one_molecule_in_two_parts(method):
    # every molecule three times, written three ways for ethanol
    smiles = DISTINCT * 3 + ["CCO", "OCC", "C(O)C"] * 3
    targets = [float(i % 12) for i in range(36)] + [2.0] * 9
    dataset = quietly(MoleculeDataset, smiles, targets)
    assert len(dataset) == 13 and len(dataset.duplicates) == 32
    for seed in range(5):
        parts = dataset.split(method, sizes=(0.6, 0.2, 0.2), seed=seed)
        assert sum(len(p) for p in parts) == 13
        _one_molecule_per_split(parts)


def test_split_by_rows_checks_the_copies_split_labels():
    smiles = [*DISTINCT, "CCO", "OCC"]
    labels = ["train"] * 8 + ["val"] * 2 + ["test"] * 2 + ["train", "train"]
    dataset = quietly(MoleculeDataset, smiles, [*range(12), 3.0, 3.0])
    train, val, test = dataset.split_by(labels)  # one label per input row
    assert (len(train), len(val), len(test)) == (9, 2, 2)
    assert dataset.split_by([labels[r] for r in dataset.rows])[0].rows == train.rows
    labels[13] = "test"
    with pytest.raises(ValueError, match=r"rows 12 and 13 .*'OCC'.*'train' and 'test'"):
        dataset.split_by(labels)
    labels[13] = "dev"
    with pytest.raises(ValueError, match=r"row 13 \('OCC'\): split label 'dev'"):
        dataset.split_by(labels)
    with pytest.raises(ValueError, match="expected 13 labels, one per molecule, or 14"):
        dataset.split_by(labels[:5])


def test_from_sdf_merges_records_of_one_molecule(tmp_path):
    path = tmp_path / "mols.sdf"
    with Chem.SDWriter(str(path)) as writer:
        for smiles, value in [("CCO", 1.0), ("OCC", 2.0), ("c1ccccc1", 3.0)]:
            mol = Chem.MolFromSmiles(smiles)
            mol.SetProp("y", str(value))
            writer.write(mol)
    with pytest.raises(ValueError, match=r"'CCO' in rows 0, 1 \(y: 1, 2\)"):
        MoleculeDataset.from_sdf(path, "y")
    dataset = quietly(MoleculeDataset.from_sdf, path, "y", duplicates="mean")
    assert len(dataset) == 2 and dataset.y[:, 0].tolist() == [1.5, 3.0]


def test_canonical_smiles_cached_once_and_old_cache_files_rewritten(tmp_path):
    smiles = ["CCO", "OCC", "c1ccccc1"]
    plain = featurize(smiles, cache_dir=tmp_path)  # a file without canonical SMILES (gconv 0.1)
    assert "canonical_smiles" not in plain.graphs[0]
    (path,) = tmp_path.glob("molgraphs-*.pt")
    assert "canonical" not in torch.load(path, weights_only=True)
    result = featurize(smiles, cache_dir=tmp_path, canonical=True)
    assert [g.canonical_smiles for g in result.graphs] == ["CCO", "CCO", "c1ccccc1"]
    assert torch.load(path, weights_only=True)["canonical"] == ["CCO", "CCO", "c1ccccc1"]
    cached = featurize(smiles, cache_dir=tmp_path, canonical=True)
    assert [g.canonical_smiles for g in cached.graphs] == ["CCO", "CCO", "c1ccccc1"]
    parallel = featurize(smiles * 4, n_jobs=2, canonical=True, largest_fragment=True)
    assert [g.canonical_smiles for g in parallel.graphs] == ["CCO", "CCO", "c1ccccc1"] * 4


# -- whitespace in SMILES cells ------------------------------------------------------------------


def test_csv_smiles_with_inner_whitespace_is_skipped_with_its_reason(tmp_path):
    # RDKit alone reads "CCO c1ccccc1Cl" as ethanol named "c1ccccc1Cl"
    path = write(tmp_path, 'smiles,y\nCCC,1\n"CCO c1ccccc1Cl",2\nc1ccccc1,3\n')
    dataset = quietly(MoleculeDataset.from_csv, path, "smiles", "y", on_error="skip")
    assert dataset.smiles == ["CCC", "c1ccccc1"] and dataset.rows == [0, 2]
    ((row, smiles, reason),) = dataset.skipped
    assert (row, smiles) == (1, "CCO c1ccccc1Cl") and "contains whitespace" in reason
    with pytest.raises(ValueError, match=r"row 1 \(SMILES 'CCO c1ccccc1Cl'\).*whitespace"):
        MoleculeDataset.from_csv(path, "smiles", "y")


def test_list_smiles_with_a_tab_is_refused_and_padding_is_stripped():
    with pytest.raises(ValueError, match=r"row 1 .*contains whitespace"):
        MoleculeDataset(["CCC", "CCO\tethanol"], [1.0, 2.0])
    dataset = MoleculeDataset([" CCC", "CCO  "], [1.0, 2.0])
    assert dataset.smiles == ["CCC", "CCO"]


def test_csv_cells_padded_with_spaces_are_read_stripped(tmp_path):
    path = write(tmp_path, "smiles,y\n CCC , 1\n\tCCO,2\n")
    dataset = MoleculeDataset.from_csv(path, "smiles", "y")
    assert dataset.smiles == ["CCC", "CCO"] and dataset.y[:, 0].tolist() == [1.0, 2.0]


# -- target columns without labels ---------------------------------------------------------------


def test_target_column_without_any_label_is_an_error_naming_it(tmp_path):
    path = write(tmp_path, "smiles,y,z\n" + "".join(f"{s},{i},\n" for i, s in enumerate(DISTINCT)))
    with pytest.raises(ValueError, match=r"target column 'z' has no labels: it is empty"):
        MoleculeDataset.from_csv(path, "smiles", ["y", "z"])


def test_task_labelled_only_in_test_is_an_error_naming_column_and_split():
    labels = ["train"] * 8 + ["val"] * 2 + ["test"] * 2
    targets = [[float(i), 2.0 if split == "test" else math.nan] for i, split in enumerate(labels)]
    dataset = MoleculeDataset(DISTINCT, targets, target_names=["y", "z"])
    with pytest.raises(
        ValueError, match=r"target column 'z' has no labels in the train split.*are 2 in test"
    ):
        dataset.split_by(labels)
    # only molecule 0 is labelled in z: a random split that puts it outside train
    sparse = [[float(i), 1.0 if i == 0 else math.nan] for i in range(12)]
    tiny = MoleculeDataset(DISTINCT, sparse, target_names=["y", "z"])
    seed = next(s for s in range(50) if 0 not in random_split_indices(12, (0.5, 0.25, 0.25), s)[0])
    with pytest.raises(ValueError, match=r"'z' has no labels in the train split of the random"):
        tiny.split("random", sizes=(0.5, 0.25, 0.25), seed=seed)
    # an empty training part is left to the caller to report
    assert len(tiny.split("random", sizes=(0.0, 0.5, 0.5))[0]) == 0
