"""Fixtures shared across test folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision


@pytest.fixture(scope="session")
def resnet_weights(tmp_path_factory) -> Path:
    """A torchvision ResNet18 state-dict file (random weights), standing in for the pre-trained
    ``resnet18-f37072fd.pth`` that cannot be downloaded here."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path
