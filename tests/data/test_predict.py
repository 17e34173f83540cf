"""Tests for gconv.data.predict: predictions from SMILES in the targets' original units."""

import pytest
import torch

from gconv.data.datasets import MoleculeDataset
from gconv.data.predict import predict_smiles
from gconv.data.scaling import Standardizer


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


def test_predict_smiles_restores_every_module_mode():
    from gconv.data import ATOM_FEATURE_DIM
    from gconv.models import GNN

    model = GNN(ATOM_FEATURE_DIM, 1, conv="gcn", hidden_channels=8).train()
    model.norms[0].eval()  # a BatchNorm the user froze on purpose
    modes = {name: m.training for name, m in model.named_modules()}
    predict_smiles(model, ["CCO", "c1ccccc1"])
    assert {name: m.training for name, m in model.named_modules()} == modes


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_predict_smiles_and_standardizer_on_the_gpu():
    from gconv.data import ATOM_FEATURE_DIM
    from gconv.models import GNN

    torch.manual_seed(0)
    model = GNN(ATOM_FEATURE_DIM, 2, conv="gcn", hidden_channels=8).eval()
    y = torch.tensor([[1.0, float("nan")], [3.0, 4.0], [5.0, 8.0]])
    standardizer = Standardizer.fit(y)
    smiles = ["CCO", "c1ccccc1O", "CC(=O)[O-].[Na+]"]
    on_cpu = predict_smiles(model, smiles, standardizer)
    on_gpu = predict_smiles(model.cuda(), smiles, standardizer)  # the model's device by default
    assert on_gpu.device.type == "cpu"  # returned on the CPU, in input order
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
    z = standardizer.transform(y.cuda())  # tensors are scaled on their own device
    assert z.is_cuda
    torch.testing.assert_close(z.cpu(), standardizer.transform(y), equal_nan=True)


def test_write_predictions_csv_every_row_in_input_order(tmp_path):
    import csv
    import warnings

    import numpy as np

    from gconv.data.predict import write_predictions_csv

    smiles = ["CCC", "C1CC", "CCO", "CCN", "OCC", "CCCl"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dataset = MoleculeDataset(smiles, [1.0, 2.0, 3.0, 4.0, 3.0, 5.0], on_error="skip")
    assert dataset.rows == [0, 2, 3, 5]
    parts = {"train": dataset[[3, 0]], "val": dataset[[1]], "test": dataset[[2]]}
    predictions = {
        "train": (np.array([[5.5], [1.5]]), np.array([[0.1], [0.2]])),
        "val": (np.array([[3.5]]), None),
        "test": (np.array([[4.5]]), None),
    }
    path = tmp_path / "p.csv"
    write_predictions_csv(path, parts, predictions, dataset.skipped, dataset.duplicates)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["smiles", "row", "split", "y0_true", "y0_pred", "y0_std", "error"]
    assert rows[1:] == [
        ["CCC", "0", "train", "1", "1.5", "0.2", ""],
        ["C1CC", "1", "", "", "", "", "invalid SMILES 'C1CC': syntax error"],
        ["CCO", "2", "val", "3", "3.5", "", ""],
        ["CCN", "3", "test", "4", "4.5", "", ""],
        [
            "OCC",
            "4",
            "val",
            "3",
            "3.5",
            "",
            "duplicate of row 2 (same molecule, scored once as that row)",
        ],
        ["CCCl", "5", "train", "5", "5.5", "0.1", ""],
    ]


def test_format_number_is_the_shortest_text_of_the_float32():
    import numpy as np

    from gconv.data import format_number

    values = [9.0, 6.42, 0.1, -3.25, 13.189452, 1e-8, 1e30, 0.0, 123456.789]
    assert [format_number(v) for v in values[:4]] == ["9", "6.42", "0.1", "-3.25"]
    for value in values:  # reads back as the same float32
        assert np.float32(float(format_number(value))) == np.float32(value)
    assert format_number(float("nan")) == "nan"


def test_write_predictions_csv_with_class_probabilities(tmp_path):
    import csv

    import numpy as np

    from gconv.data.predict import write_predictions_csv

    dataset = MoleculeDataset(["CCC", "CCO", "CCN"], [0.0, 2.0, 1.0], target_names=["g"])
    parts = {"train": dataset[[0, 2]], "test": dataset[[1]]}
    probabilities = np.array([[[0.7, 0.2, 0.1]], [[0.1, 0.3, 0.6]]])
    predictions = {
        "train": (probabilities, np.array([[0.05], [0.1]])),
        "test": (probabilities[:1], None),
    }
    write_predictions_csv(tmp_path / "p.csv", parts, predictions)
    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "smiles", "row", "split", "g_true", "g_pred", "g_class_0", "g_class_1", "g_class_2",
        "g_std", "error",
    ]  # fmt: skip
    assert rows[1] == ["CCC", "0", "train", "0", "0", "0.7", "0.2", "0.1", "0.05", ""]
    assert rows[2] == ["CCO", "1", "test", "2", "0", "0.7", "0.2", "0.1", "", ""]
    assert rows[3] == ["CCN", "2", "train", "1", "2", "0.1", "0.3", "0.6", "0.1", ""]
