"""Image folders and a trained image model directory shared by the image-tool tests (data:
``image_data.py``). The model trains at 16 x 16 for a few epochs: seconds, yet above chance."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from image_data import write_digit_folder

from gconv.cli import run


@pytest.fixture()
def digit_folder(tmp_path: Path) -> Path:
    """3 digit classes x 16 grey 28 x 28 PNG files."""
    return write_digit_folder(tmp_path / "digits")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[Path, Path, dict]:
    """``(folder, model directory, metrics)``: ``gconv train --images`` on 3 digits x 20 images,
    one corrupt file among them."""
    root = tmp_path_factory.mktemp("images")
    folder = write_digit_folder(root / "digits", per_class=20)
    (folder / "7" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    model_dir = root / "model"
    metrics = run(["train", "--images", str(folder), "--output-dir", str(model_dir),
                   "--image-size", "16", "--epochs", "12", "--batch-size", "16", "--quiet"])  # fmt: skip
    return folder, model_dir, metrics


@pytest.fixture()
def trained_copy(trained, tmp_path) -> tuple[Path, Path]:
    folder, model_dir, _ = trained
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return folder, copy
