"""``gconv explain --images``: one class-activation-map overlay per image file, labelled with
the predicted class and its probability, and a CSV of what was drawn."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gconv.data.folders import read_image
from gconv.errors import UsageError
from gconv.explain import CAM, GradCAM, GradCAMPlusPlus
from gconv.explain.viz import heatmap_overlay, save_figure
from gconv.image.model import ImageModel
from gconv.image.prediction import image_paths
from gconv.image.training import format_probability
from gconv.train import atomic_write

__all__ = ["METHODS", "class_maps", "explain_images", "overlay_names"]

#: ``--method`` -> the explainer: Grad-CAM (the default: any CNN), Grad-CAM++, CAM (a GAP head).
METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "cam": CAM}


def class_maps(model: ImageModel, images: Tensor, method: str = "gradcam") -> Tensor:
    """Maps ``[n, H, W]`` in ``[0, 1]`` of the predicted class for ``uint8`` or ``[0, 1]``
    images ``[n, C, H, W]`` (at the model's size), with ``method`` on the model's
    :meth:`~ImageModel.target_layer`.

    Raises:
        UsageError: an unknown method, or CAM on a model without a GAP head.
    """
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    layer = model.target_layer() if method != "cam" else None
    try:
        explainer = METHODS[method](model.network, target_layer=layer)
        return explainer(images.to(model.device)).detach().cpu()
    except (ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0]
        raise UsageError(f"--method {method} cannot explain this model: {first}") from None


def overlay_names(paths: Sequence[Path]) -> list[Path]:
    """Each file's picture, relative to the output folder: its path under the common folder of
    ``paths`` with the suffix ``.png`` (``cat/001.jpg`` -> ``cat/001.png``; a name taken twice
    keeps its extension: ``cat/001_jpg.png``)."""
    if not paths:
        return []
    parents = [p.resolve().parent for p in paths]
    common = Path(os.path.commonpath([str(p) for p in parents]))
    names, taken = [], set()
    for path in paths:
        relative = path.resolve().relative_to(common)
        name = relative.with_suffix(".png")
        if name in taken:
            name = relative.with_name(f"{relative.stem}_{relative.suffix.lstrip('.')}.png")
        taken.add(name)
        names.append(name)
    return names


def explain_images(
    model: ImageModel,
    images: str | os.PathLike | Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    method: str = "gradcam",
    batch_size: int = 32,
) -> dict[str, Any]:
    """Writes into ``output_dir`` one PNG per image file (the image at its own size in the
    model's colour mode, the map of the predicted class laid over it, titled ``<class> <p>%``),
    and ``explanations.csv`` (``path``, ``overlay``, ``class``, ``probability``, ``error``: an
    unreadable file keeps its row and reason). Returns ``{"images", "failed", "method"}``."""
    paths = image_paths(images)
    output_dir = Path(output_dir)
    names = overlay_names(paths)
    rows: list[list[str]] = []
    failed = 0
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        x, errors = model.read(chunk)
        probs = model.probabilities(x)
        maps = class_maps(model, x, method) if len(x) else torch.empty(0)
        k = 0
        for offset, (path, error) in enumerate(zip(chunk, errors, strict=True)):
            if error is not None:
                failed += 1
                rows.append([str(path), "", "", "", error])
                continue
            label = int(probs[k].argmax())
            probability = float(probs[k, label])
            picture = read_image(path, model.color_mode).float() / 255.0
            heatmap = F.interpolate(
                maps[k][None, None], size=picture.shape[1:], mode="bilinear", align_corners=False
            )[0, 0]
            title = f"{model.classes[label]} {probability:.1%}"
            fig = heatmap_overlay(picture, heatmap.numpy(), title=title)
            name = names[start + offset]
            save_figure(fig, output_dir / name)
            rows.append(
                [str(path), str(name), model.classes[label], format_probability(probability), ""]
            )
            k += 1
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "overlay", "class", "probability", "error"])
    writer.writerows(rows)
    output_dir.mkdir(parents=True, exist_ok=True)
    text = buffer.getvalue()
    atomic_write(output_dir / "explanations.csv", lambda f: f.write(text.encode()))
    return {"images": len(paths), "failed": failed, "method": method, "output_dir": output_dir}
