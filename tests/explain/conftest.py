"""Tiny self-made models and inputs shared by the explainer tests (no dependency on
gconv.models): a GAP-head CNN and images, a two-layer GCN and a batch of two graphs, and a
grid-like model whose conv output goes on as nodes ``[B, H*W, C]``."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch, Data

from gconv.layers import GCNConv, MeanReadout


class TinyGapCNN(nn.Module):
    """Two conv blocks + GAP + Linear: the CNN(head="gap") layout of gconv.models."""

    def __init__(self, in_channels: int = 1, num_classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


class TinyGCN(nn.Module):
    """Two GCN layers, a readout (mean by default) and a head (Linear(5, 4) by default)."""

    def __init__(self, readout=None, head=None, normalize=True):
        super().__init__()
        self.conv1 = GCNConv(3, 8, normalize=normalize, add_self_loops=normalize)
        self.conv2 = GCNConv(8, 5, normalize=normalize, add_self_loops=normalize)
        self.readout = readout if readout is not None else MeanReadout()
        self.head = head if head is not None else nn.Linear(5, 4)

    def forward(self, data):
        edge_weight = getattr(data, "edge_weight", None)
        h = F.relu(self.conv1(data.x, data.edge_index, edge_weight))
        h = F.relu(self.conv2(h, data.edge_index, edge_weight))
        return self.head(self.readout(h, data.batch, size=data.num_graphs))


class GridLikeModel(nn.Module):
    """A conv layer whose output nodes [B, H*W, C] go through a mean readout and a linear head,
    the layout of a grid GNN; ``nn.Sequential(conv, ReLU, AdaptiveAvgPool2d(1), Flatten, head)``
    computes the same function."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.readout, self.head = MeanReadout(), nn.Linear(6, 3)

    def forward(self, images):
        nodes = F.relu(self.conv(images)).flatten(2).transpose(1, 2)  # [B, N, C]
        return self.head(self.readout(nodes))


@pytest.fixture
def gap_cnn():
    torch.manual_seed(0)
    return TinyGapCNN()


@pytest.fixture
def images():
    torch.manual_seed(1)
    return torch.rand(3, 1, 8, 8)


@pytest.fixture
def make_gcn():
    """The :class:`TinyGCN` class: ``make_gcn(readout=..., head=..., normalize=...)``."""
    return TinyGCN


@pytest.fixture
def gcn():
    torch.manual_seed(0)
    return TinyGCN()


@pytest.fixture
def graphs():
    """Two graphs in one batch: a 4-node path and a 3-node star, 3 random features per node."""
    torch.manual_seed(0)
    graphs = [
        Data(
            x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        ),
        Data(x=torch.randn(3, 3), edge_index=torch.tensor([[0, 1, 0, 2], [1, 0, 2, 0]])),
    ]
    return Batch.from_data_list(graphs)


@pytest.fixture
def make_grid_model():
    """The :class:`GridLikeModel` class."""
    return GridLikeModel
