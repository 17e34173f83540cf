"""Tests for gconv.data.datasets: CSV/SDF/list loading, bad rows, dataset methods, embedded sets."""

import math
import urllib.error

import numpy as np
import pytest
import torch
from rdkit import Chem
from torch_geometric.loader import DataLoader

import gconv.data.datasets as datasets
from gconv.data.datasets import MoleculeDataset, chembl_pic50, moleculenet, nci_tpsa

CSV_TEXT = """smiles,logp,tpsa
CCO,-0.1,20.2
c1ccccc1,2.1,
C1CC,1.0,3.0
CC(=O)O,,37.3
c1ccncc1,0.7,12.9
"""


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text(CSV_TEXT)
    return path


def test_csv_bad_row_raises_with_row_and_smiles(csv_file):
    with pytest.raises(ValueError, match=r"row 2 \(SMILES 'C1CC'\).*syntax error"):
        MoleculeDataset.from_csv(csv_file, "smiles", ["logp", "tpsa"])


def test_csv_skip_reports_every_row_and_keeps_nan(csv_file):
    with pytest.warns(UserWarning, match="skipped 1 of 5"):
        dataset = MoleculeDataset.from_csv(csv_file, "smiles", ["logp", "tpsa"], on_error="skip")
    assert len(dataset) == 4 and dataset.rows == [0, 1, 3, 4]
    assert [(row, smiles) for row, smiles, _ in dataset.skipped] == [(2, "C1CC")]
    y = dataset.y
    assert y.shape == (4, 2) and y.dtype == torch.float32
    assert math.isnan(y[1, 1]) and math.isnan(y[2, 0])  # missing labels kept as NaN
    assert y[0].tolist() == pytest.approx([-0.1, 20.2])
    assert dataset[3].y.shape == (1, 2)
    assert dataset.target_names == ["logp", "tpsa"] and dataset.num_tasks == 2
    assert repr(dataset) == "MoleculeDataset(4, tasks=['logp', 'tpsa'], skipped=1)"


def test_csv_column_and_target_errors(csv_file, tmp_path):
    with pytest.raises(ValueError, match=r"no column\(s\) \['pic50'\].*columns are"):
        MoleculeDataset.from_csv(csv_file, "smiles", "pic50")
    bad = tmp_path / "bad.csv"
    bad.write_text("smiles,y\nCCO,1.0\nCCN,high\n")
    with pytest.raises(ValueError, match=r"row 1, column 'y'.*'high'"):
        MoleculeDataset.from_csv(bad, "smiles", "y", on_error="skip")


def test_loader_batches_targets(csv_file):
    with pytest.warns(UserWarning):
        dataset = MoleculeDataset.from_csv(csv_file, "smiles", ["logp", "tpsa"], on_error="skip")
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch.num_graphs == 4 and batch.y.shape == (4, 2)
    assert batch.x.size(1) == dataset.num_node_features == 48
    assert batch.edge_attr.size(1) == dataset.num_edge_features == 14


def test_from_lists_and_indexing():
    dataset = MoleculeDataset(["CCO", "CCN", "CCC"], [1.0, 2.0, 3.0], target_names=["y"])
    assert dataset.y.flatten().tolist() == [1.0, 2.0, 3.0]
    subset = dataset[[2, 0]]
    assert isinstance(subset, MoleculeDataset) and subset.smiles == ["CCC", "CCO"]
    assert subset.rows == [2, 0] and dataset[1:].smiles == ["CCN", "CCC"]
    assert dataset[torch.tensor(1)].smiles == "CCN"
    with pytest.raises(ValueError, match=r"targets of shape \[3\] or \[3, T\], got \(2,\)"):
        MoleculeDataset(["CCO", "CCN", "CCC"], [1.0, 2.0])
    with pytest.raises(ValueError, match="on_error must be"):
        MoleculeDataset(["CCO"], on_error="ignore")
    with pytest.raises(ValueError, match="no targets"):
        _ = MoleculeDataset(["CCO"]).y


def test_from_sdf_with_property(tmp_path):
    path = tmp_path / "mols.sdf"
    writer = Chem.SDWriter(str(path))
    for smiles, value in [("CCO", "1.5"), ("c1ccccc1", None), ("CC(=O)O", "-2")]:
        mol = Chem.MolFromSmiles(smiles)
        if value is not None:
            mol.SetProp("activity", value)
        writer.write(mol)
    writer.close()
    dataset = MoleculeDataset.from_sdf(path, "activity")
    assert len(dataset) == 3 and dataset.smiles == ["CCO", "c1ccccc1", "CC(=O)O"]
    y = dataset.y.flatten()
    assert y[0] == 1.5 and math.isnan(y[1]) and y[2] == -2.0


# -- embedded and downloadable sets -----------------------------------------------------------


def test_chembl_pic50_loads_and_caches(tmp_path):
    dataset = chembl_pic50(cache_dir=tmp_path)
    assert len(dataset) == 1017 and dataset.skipped == []
    y = dataset.y
    assert dataset.target_names == ["pIC50"] and not torch.isnan(y).any()
    assert 4.0 < y.min() < y.max() < 10.0
    # the first line of the .smi file is CHEMBL 1520012 with pIC50 5.48 in the activity file
    assert dataset.smiles[0].startswith("O=S(=O)(Nc1cccs1)") and y[0].item() == pytest.approx(5.48)
    assert len(list(tmp_path.glob("molgraphs-*.pt"))) == 1
    again = chembl_pic50(cache_dir=tmp_path)
    assert torch.equal(again[5].x, dataset[5].x) and torch.equal(again.y, y)


def test_nci_tpsa_skips_unsanitisable_rows_and_merges_repeated_molecules():
    with pytest.warns(UserWarning, match="skipped 8 of 4999"):
        with pytest.warns(UserWarning, match=r"merged 99 duplicate row\(s\).*\(same labels\)"):
            dataset = nci_tpsa()
    assert len(dataset) + len(dataset.skipped) + len(dataset.duplicates) == 4999
    # 99 rows repeat an earlier row's molecule (same TPSA): merged, never in two splits
    assert len(dataset.duplicates) == 99 and len(dataset) == 4892
    y = dict(zip(dataset.rows, dataset.y[:, 0].tolist(), strict=True))
    assert all(dup.y == (y[dup.kept_row],) for dup in dataset.duplicates)
    assert all("invalid SMILES" in reason for _, _, reason in dataset.skipped)
    assert dataset[0].smiles == "CC1=CC(=O)C=CC1=O" and dataset[0].y.item() == pytest.approx(34.14)


def test_moleculenet_offline_error_names_alternatives(tmp_path, monkeypatch):
    import torch_geometric.data

    def offline(url, folder, log=True, filename=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch_geometric.data, "download_url", offline)
    with pytest.raises(RuntimeError, match="ESOL.*chembl_pic50\\(\\).*nci_tpsa\\(\\)"):
        moleculenet("esol", root=tmp_path)
    assert not list((tmp_path / "esol" / "raw").iterdir())  # nothing half-written
    with pytest.raises(ValueError, match="unknown MoleculeNet set 'qm9'"):
        moleculenet("qm9", root=tmp_path)


def test_moleculenet_reads_raw_csv_with_pyg_columns(tmp_path):
    # A raw file placed by hand (as the offline error suggests) is used without downloading.
    raw = tmp_path / "freesolv" / "raw"
    raw.mkdir(parents=True)
    (raw / "SAMPL.csv").write_text(
        'iupac,smiles,expt,calc\n"ethanol, pure",CCO,-5.0,-4.8\nbenzene,c1ccccc1,-0.9,-0.6\n'
    )
    dataset = moleculenet("FreeSolv", root=tmp_path)
    assert dataset.smiles == ["CCO", "c1ccccc1"] and dataset.target_names == ["expt"]
    assert dataset.y.flatten().tolist() == pytest.approx([-5.0, -0.9])
    assert list((tmp_path / "freesolv" / "processed").glob("molgraphs-*.pt"))


def test_module_constants_point_at_rdkit_files():
    assert (datasets.CHEMBL_DIR / "CHEMBL2321810.smi").exists()
    assert datasets.NCI_TPSA_FILE.exists()


# -- molecule-level features and predefined splits ------------------------------------------

DESCRIPTOR_SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]"]


def test_dataset_with_descriptors_batches_x_d():
    from torch_geometric.loader import DataLoader

    dataset = MoleculeDataset(DESCRIPTOR_SMILES, [1.0, 2.0, 3.0, 4.0])
    with_d = dataset.with_descriptors(np.arange(8, dtype=np.float32).reshape(4, 2))
    batch = next(iter(DataLoader(with_d, batch_size=4)))
    assert batch.x_d.shape == (4, 2) and batch.x_d[3, 1] == 7.0
    assert not hasattr(dataset[0], "x_d") or dataset[0].x_d is None  # the original is untouched
    with pytest.raises(ValueError, match=r"descriptors \[4, D\], got \(3, 2\)"):
        dataset.with_descriptors(np.zeros((3, 2)))


def test_split_by_labels_names_the_bad_row():
    with pytest.warns(UserWarning, match="skipped 1 of 4"):
        dataset = MoleculeDataset(["CCO", "C1CC", "CCN", "CCC"], [1, 2, 3, 4], on_error="skip")
    train, val, test = dataset.split_by(["train", "Valid", "TEST"])
    assert (train.smiles, val.smiles, test.smiles) == (["CCO"], ["CCN"], ["CCC"])
    assert test.rows == [3]
    with pytest.raises(ValueError, match=r"row 2 \('CCN'\): split label 'dev' is not one of"):
        dataset.split_by(["train", "dev", "test"])
