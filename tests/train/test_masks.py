"""PyG's train_mask / val_mask / test_mask on node-level data: fit trains on the train nodes and
validates on the val nodes, evaluate and predict score the nodes they are told to (issue 22)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as GraphLoader
from trainer_data import params

from gconv.train import Trainer, seed_everything


class NodeLinear(nn.Module):
    """A node-level model: one output per node."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, data: Data) -> torch.Tensor:
        return self.lin(data.x)


def node_graph(masks=("train_mask", "val_mask", "test_mask")) -> Data:
    """40 nodes: 10 for training, 10 for validation, 20 for testing (PyG's Planetoid layout)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + torch.randn(40, 1, generator=g)
    order = torch.randperm(40, generator=g)
    data = Data(x=x, y=y, edge_index=torch.empty(2, 0, dtype=torch.long))
    for name, rows in zip(masks, (order[:10], order[10:20], order[20:]), strict=False):
        mask = torch.zeros(40, dtype=torch.bool)
        mask[rows] = True
        data[name] = mask
    return data


def test_fit_trains_on_train_mask_and_validates_on_val_mask_like_a_hand_written_loop():
    data = node_graph()
    seed_everything(0)
    model = NodeLinear()
    reference = copy.deepcopy(model)
    trainer = Trainer(model, loss="mse", optimizer="sgd", lr=0.05, progress=False)
    history = trainer.fit([data], val=[data], epochs=3)

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    train, val = data.train_mask, data.val_mask
    train_losses, val_losses = [], []
    for _ in range(3):
        loss = F.mse_loss(reference(data)[train], data.y[train])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_losses.append(loss.item())
        with torch.no_grad():
            val_losses.append(F.mse_loss(reference(data)[val], data.y[val]).item())
    assert history["train_loss"] == pytest.approx(train_losses, rel=1e-6)
    assert history["val_loss"] == pytest.approx(val_losses, rel=1e-6)
    torch.testing.assert_close(params(model), params(reference))
    with torch.no_grad():
        out = reference(data)
    rmse = F.mse_loss(out[val], data.y[val]).sqrt().item()
    assert history["val_rmse"][-1] == pytest.approx(rmse, rel=1e-5)  # metrics: val nodes only

    test = data.test_mask
    scores = trainer.evaluate([data], mask="test")
    assert scores["loss"] == pytest.approx(F.mse_loss(out[test], data.y[test]).item(), rel=1e-6)
    every = trainer.evaluate([data], mask="all")["loss"]
    assert every == pytest.approx(F.mse_loss(out, data.y).item(), rel=1e-6)
    assert trainer.evaluate([data], mask="val_mask")["loss"] == pytest.approx(val_losses[-1])
    torch.testing.assert_close(trainer.predict([data]), out)  # every node, in order
    torch.testing.assert_close(trainer.predict([data], mask="test"), out[test])


def test_evaluate_refuses_masked_node_data_without_a_mask():
    data = node_graph()
    trainer = Trainer(NodeLinear(), loss="mse", progress=False)
    with pytest.raises(
        ValueError,
        match=r"evaluation batch 0 carries train_mask, val_mask, test_mask: say which nodes to "
        r"score, e.g. evaluate\(data, mask='test'\)",
    ):
        trainer.evaluate([data])


def test_a_missing_phase_mask_is_refused_before_training():
    data = node_graph(masks=("train_mask", "test_mask"))  # no val_mask
    trainer = Trainer(NodeLinear(), loss="mse", progress=False)
    before = params(trainer.model)
    with pytest.raises(
        ValueError, match="val batch 0 carries train_mask, test_mask but no val_mask"
    ):
        trainer.fit([data], val=[data], epochs=1)
    assert trainer.epoch == 0 and torch.equal(params(trainer.model), before)
    with pytest.raises(ValueError, match="batch 0 has no val_mask"):
        trainer.evaluate([node_graph(masks=())], mask="val")


def test_masks_of_mini_batches_and_graph_level_outputs():
    graphs = [node_graph() for _ in range(3)]
    trainer = Trainer(NodeLinear(), loss="mse", progress=False)
    history = trainer.fit(GraphLoader(graphs, batch_size=2), epochs=1)
    assert len(history) == 1

    class GraphLevel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 1)

        def forward(self, data):
            return self.lin(data.x).sum(0, keepdim=True)  # one output per graph

    data = node_graph()
    data.y = torch.ones(1, 1)
    with pytest.raises(ValueError, match=r"train_mask has 40 entries, the model gave 1 output row"):
        Trainer(GraphLevel(), loss="mse", progress=False).fit([data], epochs=1)
    empty = node_graph()
    empty.train_mask[:] = False
    with pytest.raises(ValueError, match="epoch 1, batch 0: its train_mask selects no node"):
        Trainer(NodeLinear(), loss="mse", progress=False).fit([empty], epochs=1)
    with pytest.raises(ValueError, match="mask='test_mask' selects nodes of PyG batches"):
        trainer.evaluate([(torch.randn(3, 4), torch.randn(3, 1))], mask="test")
