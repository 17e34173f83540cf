"""gconv/train/batches.py: a Dataset (or a list of single graphs) is batched when given batch_size=
and refused otherwise, never trained on sample by sample."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch_geometric.nn import global_mean_pool
from trainer_data import blobs, params, small_net

from gconv.data import TensorLoader
from gconv.data.datasets import MoleculeDataset
from gconv.train import Trainer


# --------------------------------------------------------------------------- datasets
class Recorder(nn.Module):
    """small_net that records the batches it trains on."""

    def __init__(self) -> None:
        super().__init__()
        self.net = small_net()
        self.batches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches.append(x.detach().clone())
        return self.net(x)


def test_fit_refuses_a_dataset_without_batch_size_and_wraps_it_with_one():
    x, y = blobs(50)
    dataset = TensorDataset(x, y)
    model = Recorder()
    trainer = Trainer(model, progress=False, seed=0)
    with pytest.raises(
        TypeError,
        match=r"train is a TensorDataset, whose items are single samples.*batch_size=.*"
        r"torch.utils.data.DataLoader\(train, batch_size=64, shuffle=True\)",
    ):
        trainer.fit(dataset, epochs=1)
    assert not model.batches  # nothing trained, not one sample at a time
    with pytest.raises(TypeError, match=r"val is a TensorDataset"):
        trainer.fit(TensorLoader(x, y), val=dataset, epochs=1)
    with pytest.raises(TypeError, match=r"data is a TensorDataset"):
        trainer.evaluate(dataset)

    history = trainer.fit(dataset, val=dataset, epochs=2, batch_size=16)
    assert [len(b) for b in model.batches] == [16, 16, 16, 2] * 2
    assert not torch.equal(model.batches[0], x[:16])  # shuffled for training
    assert trainer.evaluate(dataset, batch_size=7)["accuracy"] == history["val_accuracy"][-1]
    with pytest.raises(ValueError, match="batch_size= batches a Dataset"):
        trainer.fit(TensorLoader(x, y), epochs=3, batch_size=16)


class MeanPool(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.lin = nn.Linear(features, 1)
        self.sizes: list[int] = []

    def forward(self, data) -> torch.Tensor:
        self.sizes.append(int(data.num_graphs))
        return global_mean_pool(self.lin(data.x), data.batch)


def test_a_molecule_dataset_or_a_list_of_graphs_is_batched_by_pyg():
    dataset = MoleculeDataset(["CCO", "CCN", "CCC", "c1ccccc1", "CC(=O)O"], [1.0, 2, 3, 4, 5])
    model = MeanPool(dataset.num_node_features)
    trainer = Trainer(model, loss="mse", progress=False, seed=0)
    with pytest.raises(TypeError, match=r"MoleculeDataset.*torch_geometric.loader.DataLoader"):
        trainer.fit(dataset, epochs=1)
    with pytest.raises(TypeError, match=r"a list of single graphs"):
        trainer.fit(list(dataset), epochs=1)
    assert not model.sizes
    trainer.fit(dataset, epochs=1, batch_size=2)
    assert model.sizes == [2, 2, 1]
    predictions = trainer.predict(list(dataset), batch_size=4)
    assert predictions.shape == (5, 1)


# --------------------------------------------------------------------------- empty data
def test_empty_train_or_val_is_refused_before_any_training():
    x, y = blobs(40)
    trainer = Trainer(small_net(), progress=False)
    before = params(trainer.model)
    with pytest.raises(ValueError, match="val is an empty list: it yields no batches"):
        trainer.fit(TensorLoader(x, y, batch_size=10), val=[], epochs=1)
    with pytest.raises(ValueError, match="val is an empty DataLoader"):
        trainer.fit(TensorLoader(x, y, batch_size=10), val=DataLoader(TensorDataset(x[:0])))
    with pytest.raises(ValueError, match="train is an empty list"):
        trainer.fit([], epochs=1)
    assert trainer.epoch == 0 and torch.equal(params(trainer.model), before)
