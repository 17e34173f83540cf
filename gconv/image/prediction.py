"""``gconv predict --images``: a model directory's predictions for image files, as a CSV."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gconv.data.folders import list_images
from gconv.errors import UsageError
from gconv.image.model import ImageModel, probability_columns
from gconv.image.training import format_probability
from gconv.train import atomic_write

__all__ = ["CHUNK_SIZE", "image_paths", "predict_images"]

#: Files read, predicted and written at a time (memory stays flat).
CHUNK_SIZE = 1024


def image_paths(images: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The image files of a folder (recursively, sorted), one file, or a list of files and
    folders, in that order.

    Raises:
        UsageError: a path that does not exist, or a folder without image files.
    """
    items = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    paths: list[Path] = []
    for item in items:
        try:
            paths += list_images(item)
        except ValueError as err:
            raise UsageError(str(err)) from None
    return paths


def predict_images(
    model: ImageModel,
    images: str | os.PathLike | Sequence[str | os.PathLike],
    preds_path: str | os.PathLike,
    batch_size: int = 256,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Any]:
    """Writes ``preds_path``: one row per image file — ``path``, ``class`` (the predicted class
    name), ``prob_<class>`` per class, ``error`` (why a file could not be read; its other cells
    stay empty) — renamed into place when complete. Returns ``{"rows", "failed", "path"}``."""
    paths = image_paths(images)
    columns = probability_columns(model.classes)
    failed = 0

    def write(f) -> None:  # chunk by chunk into the temporary file atomic_write renames
        nonlocal failed
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["path", "class", *columns, "error"])
        for start in range(0, len(paths), chunk_size):
            table = model.predict(paths[start : start + chunk_size], batch_size=batch_size)
            for i in range(len(table["path"])):
                failed += bool(table["error"][i])
                probabilities = [format_probability(table[c][i]) for c in columns]
                writer.writerow(
                    [table["path"][i], table["class"][i], *probabilities, table["error"][i]]
                )
        text.flush()
        text.detach()  # leave f open: atomic_write syncs and closes it

    preds_path = Path(preds_path)
    preds_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(preds_path, write)
    return {"rows": len(paths), "failed": failed, "path": preds_path}
