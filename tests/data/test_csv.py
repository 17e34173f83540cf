"""MoleculeDataset.from_csv and target validation: Excel's BOM, non-finite targets, empty files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gconv.data.datasets import MoleculeDataset


def write(tmp_path, text: str, name: str = "mols.csv", bom: bool = False):
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_csv_saved_by_excel_with_a_byte_order_mark(tmp_path):
    # Excel's "CSV UTF-8" puts a BOM before the header: the first column is still "smiles"
    path = write(tmp_path, "smiles,logp\nCCO,-0.1\nc1ccccc1,2.1\n", bom=True)
    dataset = MoleculeDataset.from_csv(path, "smiles", "logp")
    assert dataset.smiles == ["CCO", "c1ccccc1"]
    assert dataset.y.flatten().tolist() == pytest.approx([-0.1, 2.1])


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "1e400", "-1e39"])
def test_csv_non_finite_target_names_the_row(tmp_path, cell):
    path = write(tmp_path, f"smiles,y\nCCO,1.0\nCCN,{cell}\nCCC,2.0\n")
    with pytest.raises(ValueError, match=rf"row 1, column 'y'.*{cell!r}.*not a finite"):
        MoleculeDataset.from_csv(path, "smiles", "y")


def test_csv_missing_labels_stay_nan(tmp_path):
    path = write(tmp_path, "smiles,a,b\nCCO,nan,1\nCCN,,NA\nCCC,2,\n")
    y = MoleculeDataset.from_csv(path, "smiles", ["a", "b"]).y
    assert math.isnan(y[0, 0]) and y[0, 1] == 1.0 and torch.isnan(y[1]).all()
    assert y[2, 0] == 2.0


def test_empty_and_header_only_csv_are_errors(tmp_path):
    empty = write(tmp_path, "", name="empty.csv")
    with pytest.raises(ValueError, match=r"empty.csv is empty: expected a header row.*'smiles'"):
        MoleculeDataset.from_csv(empty, "smiles", "y")
    header = write(tmp_path, "smiles,y\n", name="header.csv")
    with pytest.raises(ValueError, match=r"header.csv has a header row .* but no data rows"):
        MoleculeDataset.from_csv(header, "smiles", "y")


@pytest.mark.parametrize("bad", [math.inf, -math.inf, 1e39])
def test_non_finite_targets_from_lists_name_row_and_task(bad):
    targets = np.array([[1.0, 2.0], [3.0, bad], [5.0, 6.0]])
    with pytest.raises(ValueError, match=r"target of row 1, task 1 is .*not a finite float32"):
        MoleculeDataset(["CCO", "CCN", "CCC"], targets)
    with pytest.raises(ValueError, match=r"target of row 2 is"):
        MoleculeDataset(["CCO", "CCN", "CCC"], [1.0, math.nan, bad])
    # NaN is a missing label, not an error
    dataset = MoleculeDataset(["CCO", "CCN"], torch.tensor([1.0, math.nan]))
    assert math.isnan(dataset.y[1, 0])
