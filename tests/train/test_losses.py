"""gconv/train/losses.py: the masked losses, epoch losses weighted by labels (whatever the batch
size and however missing labels fall), and the target checks with their hints."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as GraphLoader
from trainer_data import blobs, small_net

from gconv.data import TensorLoader
from gconv.train import Trainer
from gconv.train.trainer import LOSSES


# --------------------------------------------------------------------------- masked losses
@pytest.mark.parametrize("name", ["masked_mse", "bce"])
def test_masked_losses_ignore_nan_and_survive_unlabelled_batches(name):
    from gconv.train.trainer import LOSSES

    loss_fn = LOSSES[name]
    output = torch.tensor([[0.5, -1.0], [2.0, 0.3]], requires_grad=True)
    target = torch.tensor([[1.0, math.nan], [0.0, 1.0]])
    valid = ~torch.isnan(target)
    if name == "masked_mse":
        expected = torch.nn.functional.mse_loss(output[valid], target[valid])
    else:
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            output[valid], target[valid]
        )
    torch.testing.assert_close(loss_fn(output, target), expected)
    # a batch with no label at all: zero loss and zero gradient, not NaN
    empty = loss_fn(output, torch.full_like(target, math.nan))
    empty.backward()
    assert empty.item() == 0.0
    assert torch.equal(output.grad, torch.zeros_like(output))


# --------------------------------------------------------------------------- epoch loss weighting
def multitask(n: int = 13, tasks: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Regression targets with missing labels spread unevenly: the first rows are mostly NaN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.randn(n, tasks, generator=g) * 3
    missing = torch.rand(n, tasks, generator=g) < torch.linspace(0.9, 0.1, n)[:, None]
    missing[0, 0] = False  # every task keeps a label
    return x, torch.where(missing, math.nan, y)


@pytest.mark.parametrize("loss", ["masked_mse", "bce"])
def test_epoch_loss_is_the_mean_over_labels_whatever_the_batch_size(loss):
    x, y = multitask()
    if loss == "bce":
        y = torch.where(torch.isnan(y), math.nan, (y > 0).float())
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        expected = LOSSES[loss](model(x), y).item()  # one batch: the mean over every label
    for batch_size in (2, 4, 8, 5):  # uneven last batches
        trainer = Trainer(model, loss=loss, metrics=(), progress=False, device="cpu")
        loader = TensorLoader(x, y, batch_size=batch_size, shuffle=False)
        assert trainer.evaluate(loader)["loss"] == pytest.approx(expected, rel=1e-6)
    # the training loss too (learning rate 0: the model does not move), shuffled batches
    for batch_size in (2, 3, 13):
        trainer = Trainer(model, loss=loss, optimizer="sgd", lr=0.0, metrics=(), progress=False)
        history = trainer.fit(TensorLoader(x, y, batch_size=batch_size, seed=1), epochs=1)
        assert history["train_loss"][0] == pytest.approx(expected, rel=1e-6)


class SumOfNodes(nn.Module):
    """Graph-level: a linear map of node features summed per graph, ``tasks`` outputs."""

    def __init__(self, tasks: int = 1) -> None:
        super().__init__()
        self.lin = nn.Linear(3, tasks)

    def forward(self, data) -> torch.Tensor:
        out = torch.zeros(data.num_graphs, self.lin.out_features, device=data.x.device)
        return out.index_add(0, data.batch, self.lin(data.x))


class PerNode(nn.Module):
    """Node-level: one output per node."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, data) -> torch.Tensor:
        return self.lin(data.x).squeeze(-1)


def graphs(node_targets: bool, n: int = 16, seed: int = 0) -> list[Data]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        nodes = 1 + (i * 7) % 12  # 1 to 12 nodes
        x = torch.randn(nodes, 3, generator=g)
        if node_targets:
            y = x[:, 0] * (1 + i)  # larger graphs have larger errors: weighting matters
            if i % 3 == 0:
                y[: nodes // 2] = math.nan
        else:
            y = torch.randn(1, 2, generator=g) * (1 + i)
            y[0, i % 2] = math.nan if i % 4 < 3 else y[0, i % 2]
        out.append(Data(x=x, edge_index=torch.empty(2, 0, dtype=torch.long), y=y))
    return out


def test_graph_level_nan_masked_multitask_loss_is_independent_of_batch_size():
    data = graphs(node_targets=False)
    torch.manual_seed(0)
    model = SumOfNodes(tasks=2)
    full = next(iter(GraphLoader(data, batch_size=len(data))))
    with torch.no_grad():
        expected = LOSSES["masked_mse"](model(full), full.y).item()
    trainer = Trainer(model, loss="masked_mse", progress=False, device="cpu")
    for batch_size in (2, 4, 8, 5):
        result = trainer.evaluate(GraphLoader(data, batch_size=batch_size))
        assert result["loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("loss", ["mse", "masked_mse"])
def test_node_level_loss_and_metrics_are_per_node(loss):
    data = graphs(node_targets=True)
    if loss == "mse":
        for graph in data:
            graph.y = torch.nan_to_num(graph.y, nan=0.0)
    torch.manual_seed(0)
    model = PerNode()
    full = next(iter(GraphLoader(data, batch_size=len(data))))
    with torch.no_grad():
        expected = LOSSES["masked_mse"](model(full), full.y).item()  # mean over labelled nodes
    trainer = Trainer(model, loss=loss, metrics=("rmse",), progress=False, device="cpu")
    for batch_size in (10, 5, 1):
        result = trainer.evaluate(GraphLoader(data, batch_size=batch_size))
        assert result["loss"] == pytest.approx(expected, rel=1e-6)
        assert result["rmse"] == pytest.approx(math.sqrt(expected), rel=1e-6)


# --------------------------------------------------------------------------- targets
def test_float_or_column_labels_for_cross_entropy_get_hints():
    x, y = blobs(20)
    trainer = Trainer(small_net(), progress=False)
    with pytest.raises(ValueError, match=r"float labels of shape \[10\]: use y.long\(\)"):
        trainer.fit(TensorLoader(x, y.float(), batch_size=10), epochs=1)
    with pytest.raises(
        ValueError, match=r"float labels of shape \[10, 1\]: use y.squeeze\(-1\).long"
    ):
        trainer.fit(TensorLoader(x, y.float()[:, None], batch_size=10), epochs=1)
    with pytest.raises(ValueError, match=r"labels of shape \[10, 1\]: use y.squeeze\(-1\)"):
        trainer.fit(TensorLoader(x, y[:, None], batch_size=10), epochs=1)
    with pytest.raises(ValueError, match=r"'mse' needs one target per output.*\[10, 2\].*\[10\]"):
        Trainer(small_net(), loss="mse", progress=False).fit(
            TensorLoader(x, y.float(), batch_size=10), epochs=1
        )
    # class probabilities of the output's shape are fine
    probabilities = nn.functional.one_hot(y, 2).float()
    trainer.fit(TensorLoader(x, probabilities, batch_size=10), epochs=1)


def test_labels_out_of_range_are_reported():
    x, y = blobs(40)
    y[7] = 5
    trainer = Trainer(small_net(), progress=False)
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 2\).*from 0 to 5"):
        trainer.fit(TensorLoader(x, y, batch_size=40), epochs=1)
