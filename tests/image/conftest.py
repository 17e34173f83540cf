"""Image folders and a trained image model directory shared by the image-tool tests (data:
``image_data.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from image_data import write_digit_folder


@pytest.fixture()
def digit_folder(tmp_path: Path) -> Path:
    """3 digit classes x 16 grey 28 x 28 PNG files."""
    return write_digit_folder(tmp_path / "digits")
