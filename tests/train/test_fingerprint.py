"""gconv/train/fingerprint.py: stable digests of what a run trains on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gconv.data import TensorLoader
from gconv.train import fingerprint
from gconv.train.fingerprint import data_differences, loader_fingerprint


def test_fingerprint_is_stable_and_tells_contents_apart():
    x = torch.arange(12.0).reshape(3, 4)
    assert fingerprint(x, "a", 1) == fingerprint(x.clone(), "a", 1)
    assert fingerprint(x) == fingerprint(x.t().contiguous().t())  # strides do not matter
    assert fingerprint(x) != fingerprint(x.double())  # dtype does
    assert fingerprint(x) != fingerprint(x.reshape(4, 3))  # and shape
    assert fingerprint(x.numpy()) == fingerprint(x.numpy().copy())
    assert fingerprint({"a": 1, "b": [np.float32(2), None]}) == fingerprint(
        {"b": [np.float32(2), None], "a": 1}
    )
    assert fingerprint("1") != fingerprint(1) != fingerprint(True)
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])
    assert len(fingerprint(torch.tensor(1.0, dtype=torch.bfloat16))) == 16
    with pytest.raises(TypeError, match="cannot digest a object"):
        fingerprint(object())


def test_a_lazy_sequence_digests_as_its_list(tmp_path):
    """A store's SMILES are fingerprinted without being held as a list (a million strings):
    the same digest as the list, so a resume matches either way."""
    from gconv.data import MoleculeStore, StoreDataset

    smiles = ["CCO", "c1ccccc1", "CC(=O)O", "CCN"]
    data = StoreDataset(MoleculeStore.from_smiles(smiles, np.arange(4.0)[:, None], ["y"], tmp_path))
    lazy = data[[2, 0, 3]].smiles
    assert not isinstance(lazy, list | tuple)
    assert fingerprint((lazy, data.y)) == fingerprint((["CC(=O)O", "CCO", "CCN"], data.y))
    assert fingerprint(lazy) != fingerprint(["CC(=O)O", "CCO"])


def test_loader_fingerprint_samples_large_tensors():
    x = torch.randn(3000, 1000)  # 12 MB: every fourth or so row is read
    y = torch.arange(3000)
    record = loader_fingerprint(TensorLoader(x, y))
    assert record.startswith("x float32 [3000, 1000], y int64 [3000] #")
    assert loader_fingerprint(TensorLoader(x.clone(), y)) == record
    assert loader_fingerprint(TensorLoader(x.flip(0), y.flip(0))) != record
    assert loader_fingerprint(TensorLoader(x[:2999], y[:2999])) != record
    assert loader_fingerprint([(x, y)]) is None


def test_data_differences_name_each_key():
    assert data_differences({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == [
        "b=3 here, 2 in the checkpoint",
        "c=4 here, nothing in the checkpoint",
    ]
    assert data_differences("v1", "v2") == ["data_id='v2' here, 'v1' in the checkpoint"]
    assert data_differences({"a": 1}, {"a": 1}) == []
