"""Tests for gconv.data.datasets: CSV/SDF/list loading, bad rows, splits, standardiser, sets."""

import math
import urllib.error

import pytest
import torch
from rdkit import Chem
from torch_geometric.loader import DataLoader

import gconv.data.datasets as datasets
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


# -- splits ---------------------------------------------------------------------------------

SERIES = [
    "c1ccccc1C",
    "c1ccccc1CC",
    "c1ccccc1CCC",
    "c1ccccc1O",
    "c1ccncc1C",
    "c1ccncc1N",
    "C1CCCCC1C",
    "C1CCCCC1O",
    "CCO",
    "CCN",
    "c1ccc2ccccc2c1",
    "c1ccc2ccccc2c1C",
    "C1CCNCC1",
    "C1CCOC1",
    "c1ccoc1",
    "c1ccsc1",
    "C1CC1",
    "C1CCC1",
    "c1cnc2ccccc2c1",
    "O=C1CCCN1",
]


def test_scaffold_split_keeps_groups_together_and_is_deterministic():
    parts = scaffold_split(SERIES, sizes=(0.6, 0.2, 0.2), seed=3)
    assert sorted(sum(parts, [])) == list(range(len(SERIES)))
    scaffolds = [{murcko_scaffold(SERIES[i]) for i in part} for part in parts]
    assert not (scaffolds[0] & scaffolds[1] or scaffolds[0] & scaffolds[2])
    assert not scaffolds[1] & scaffolds[2]
    assert scaffold_split(SERIES, sizes=(0.6, 0.2, 0.2), seed=3) == parts
    # the largest group (benzene, 4 molecules) is in train
    assert {0, 1, 2, 3} <= set(parts[0])


def test_scaffold_split_seed_changes_small_groups():
    splits = {tuple(map(tuple, scaffold_split(SERIES, (0.6, 0.2, 0.2), seed=s))) for s in range(5)}
    assert len(splits) > 1


def test_random_split_deterministic_and_complete():
    train, val, test = random_split(100, (0.8, 0.1, 0.1), seed=7)
    assert (len(train), len(val), len(test)) == (80, 10, 10)
    assert sorted(train + val + test) == list(range(100))
    assert random_split(100, (0.8, 0.1, 0.1), seed=7) == (train, val, test)
    assert random_split(100, (0.8, 0.1, 0.1), seed=8) != (train, val, test)
    with pytest.raises(ValueError, match="summing to 1"):
        random_split(10, (0.8, 0.1, 0.2))


def test_dataset_split_methods():
    dataset = MoleculeDataset(SERIES, list(range(len(SERIES))))
    train, val, test = dataset.split("scaffold", sizes=(0.6, 0.2, 0.2), seed=0)
    assert len(train) + len(val) + len(test) == len(SERIES)
    # targets follow their molecules
    for part in (train, val, test):
        assert part.y.flatten().tolist() == [float(row) for row in part.rows]
    with pytest.raises(ValueError, match="'scaffold' or 'random', got 'stratified'"):
        dataset.split("stratified")


# -- standardiser ---------------------------------------------------------------------------


def test_standardizer_round_trip_ignores_nan():
    y = torch.tensor([[1.0, 10.0], [3.0, float("nan")], [5.0, 30.0]])
    standardizer = Standardizer.fit(y)
    assert standardizer.mean.tolist() == pytest.approx([3.0, 20.0])
    assert standardizer.std.tolist() == pytest.approx([math.sqrt(8 / 3), 10.0])
    z = standardizer.transform(y)
    assert torch.isnan(z[1, 1]) and z[[0, 2], 0].tolist() == pytest.approx([-1.2247, 1.2247], 1e-4)
    torch.testing.assert_close(standardizer.inverse_transform(z), y, equal_nan=True)
    restored = Standardizer.from_state_dict(standardizer.state_dict())
    torch.testing.assert_close(restored.mean, standardizer.mean)
    assert Standardizer.fit(torch.ones(4, 1)).std.item() == 1.0  # no spread -> unit std
    with pytest.raises(ValueError, match=r"no labelled values for tasks \[1\]"):
        Standardizer.fit(torch.tensor([[1.0, float("nan")]]))


def test_standardized_dataset_and_predict_smiles_undo_it():
    dataset = MoleculeDataset(["CCO", "CCCO", "CCCCO"], [[2.0], [4.0], [6.0]])
    standardizer = Standardizer.fit(dataset.y)
    scaled = dataset.standardized(standardizer)
    assert scaled.y.flatten().tolist() == pytest.approx([-1.2247, 0.0, 1.2247], 1e-4)
    assert dataset.y.flatten().tolist() == [2.0, 4.0, 6.0]  # the original is untouched

    class CarbonCount(torch.nn.Module):
        """Predicts (#carbons - 3) in standardised units: exact for the data above."""

        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(1.2247449))

        def forward(self, batch):
            carbons = torch.zeros(batch.num_graphs).index_add_(0, batch.batch, batch.x[:, 2])
            return ((carbons - 3.0) * self.scale).unsqueeze(1)

    model = CarbonCount().train()
    prediction = predict_smiles(model, ["CCO", "CCCCO", "CCCO"], standardizer=standardizer)
    assert prediction.flatten().tolist() == pytest.approx([2.0, 6.0, 4.0], 1e-4)
    assert model.training  # state restored
    assert predict_smiles(model, "CCCO", standardizer).shape == (1, 1)
    with pytest.raises(ValueError, match=r"molecule 1 \('C1CC'\)"):
        predict_smiles(model, ["CCO", "C1CC"])


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


def test_nci_tpsa_skips_unsanitisable_rows():
    with pytest.warns(UserWarning, match="skipped 8 of 4999"):
        dataset = nci_tpsa()
    assert len(dataset) + len(dataset.skipped) == 4999
    assert len(dataset) == 4991
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


def test_predict_smiles_restores_every_module_mode():
    from gconv.data import ATOM_FEATURE_DIM, predict_smiles
    from gconv.models import GNN

    model = GNN(ATOM_FEATURE_DIM, 1, conv="gcn", hidden_channels=8).train()
    model.norms[0].eval()  # a BatchNorm the user froze on purpose
    modes = {name: m.training for name, m in model.named_modules()}
    predict_smiles(model, ["CCO", "c1ccccc1"])
    assert {name: m.training for name, m in model.named_modules()} == modes
