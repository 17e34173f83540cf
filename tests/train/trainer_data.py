"""Data and models shared by the Trainer tests (tests/train/test_*.py)."""

from __future__ import annotations

import torch
from torch import nn


def blobs(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs in 8 dims, linearly separable up to noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + 2.0 * (y[:, None].float() * 2 - 1)
    return x, y


def small_net(dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


def params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class ViewCNN(nn.Module):
    """A CNN on 8x8 images that flattens with ``.view``, which NHWC memory does not allow:
    ``Trainer(channels_last="auto")`` has to fall back to NCHW."""

    def __init__(self, batch_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4) if batch_norm else nn.Identity()
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).relu().view(x.size(0), -1))


def images(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random 1x8x8 images and labels of 3 classes for :class:`ViewCNN`."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)
