"""Tiny self-made models shared by the explainer tests (no dependency on gconv.models)."""

import pytest
import torch
from torch import nn


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


@pytest.fixture
def gap_cnn():
    torch.manual_seed(0)
    return TinyGapCNN()


@pytest.fixture
def images():
    torch.manual_seed(1)
    return torch.rand(3, 1, 8, 8)
