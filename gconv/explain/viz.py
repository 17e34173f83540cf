r"""Pictures for explanations: heat-map overlays, image grids, feature maps, filters and
weight histograms, molecule atom importance and grid-node importance.

Every function returns a :class:`matplotlib.figure.Figure` (RDKit drawings return PNG or SVG
bytes / text) and never touches pyplot's global state: figures are created with
:class:`~matplotlib.figure.Figure` directly, which renders with the Agg canvas, so the module
works headless and in notebooks alike. Save with :func:`save_figure` or ``fig.savefig(path)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

__all__ = [
    "overlay",
    "heatmap_overlay",
    "image_grid",
    "prediction_grid",
    "save_figure",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _to_hwc(image: Tensor | np.ndarray) -> np.ndarray:
    """Image ``[C, H, W]``, ``[H, W, C]`` or ``[H, W]`` -> float numpy ``[H, W]`` or ``[H, W, 3]``
    scaled to [0, 1] for display."""
    array = image.detach().float().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    array = array.astype(np.float32)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(
            f"expected an image of shape [C, H, W], [H, W, C] or [H, W], got {array.shape}"
        )
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:  # e.g. normalised inputs: rescale for display only
        array = (array - low) / (high - low + 1e-12)
    return array


def _to_map(importance: Tensor | np.ndarray) -> np.ndarray:
    array = (
        importance.detach().float().cpu().numpy()
        if isinstance(importance, Tensor)
        else np.asarray(importance, dtype=np.float32)
    )
    array = np.squeeze(array)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D heat map [H, W], got shape {tuple(array.shape)}")
    return array


def _grid(n: int, ncols: int, cell: float = 1.4) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(cell * ncols, cell * nrows + 0.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def _show_image(ax, image: np.ndarray) -> None:
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save ``fig`` as a PNG (or any format matplotlib infers from the suffix), creating the
    parent folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


# ---------------------------------------------------------------------------------------------
# images and heat maps
# ---------------------------------------------------------------------------------------------
def overlay(
    image: Tensor | np.ndarray,
    heatmap: Tensor | np.ndarray,
    cmap: str = "jet",
    alpha: float = 0.5,
) -> np.ndarray:
    r"""Blend a heat map over an image: ``(1 - alpha) * image + alpha * cmap(heatmap)``.

    Args:
        image (Tensor or ndarray): image ``[C, H, W]``, ``[H, W, C]`` or ``[H, W]``.
        heatmap (Tensor or ndarray): map ``[H, W]`` (min-max scaled here for colouring).
        cmap (str, optional): matplotlib colormap name. (default: :obj:`"jet"`)
        alpha (float, optional): weight of the heat map. (default: :obj:`0.5`)

    Returns:
        RGB array ``[H, W, 3]`` in [0, 1].
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    rgb = _to_hwc(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    heat = _to_map(heatmap)
    if heat.shape != rgb.shape[:2]:
        raise ValueError(
            f"heat map shape {heat.shape} does not match image size {rgb.shape[:2]}; "
            "upsample the map to the input size first"
        )
    heat = (heat - heat.min()) / (heat.max() - heat.min() + 1e-12)
    coloured = matplotlib.colormaps[cmap](heat)[..., :3]
    return np.clip((1.0 - alpha) * rgb + alpha * coloured, 0.0, 1.0)


def heatmap_overlay(
    image: Tensor | np.ndarray,
    heatmap: Tensor | np.ndarray,
    cmap: str = "jet",
    alpha: float = 0.5,
    title: str | None = None,
) -> Figure:
    """Figure of one image with its heat map laid over it (see :func:`overlay`) and a colour bar."""
    fig = Figure(figsize=(3.2, 3.0), layout="constrained")
    ax = fig.subplots()
    ax.imshow(overlay(image, heatmap, cmap=cmap, alpha=alpha), interpolation="nearest")
    norm = matplotlib.colors.Normalize(vmin=float(np.min(heatmap)), vmax=float(np.max(heatmap)))
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.8)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def image_grid(
    images: Tensor,
    maps: Tensor | Sequence[Tensor] | None = None,
    labels: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "jet",
    alpha: float = 0.5,
    map_titles: Sequence[str] | None = None,
) -> Figure:
    r"""Grid of images, each followed by its heat-map overlays.

    Args:
        images (Tensor): images ``[B, C, H, W]`` or ``[B, H, W]``.
        maps (Tensor or list of Tensor, optional): one ``[B, H, W]`` map tensor, or several (e.g.
            CAM and Grad-CAM) shown side by side after each image. (default: :obj:`None`)
        labels (list of str, optional): a title per image. (default: :obj:`None`)
        ncols (int, optional): images per row (each image takes ``1 + len(maps)`` cells).
            (default: :obj:`8`)
        cmap (str, optional): colormap of the overlays. (default: :obj:`"jet"`)
        alpha (float, optional): overlay weight. (default: :obj:`0.5`)
        map_titles (list of str, optional): a name per map tensor, shown on the first row.
            (default: :obj:`None`)
    """
    if maps is None:
        map_list: list[Tensor] = []
    elif isinstance(maps, Tensor):
        map_list = [maps]
    else:
        map_list = list(maps)
    num_images = len(images)
    for m in map_list:
        if len(m) != num_images:
            raise ValueError(f"expected {num_images} maps per map tensor, got {len(m)}")
    if labels is not None and len(labels) != num_images:
        raise ValueError(f"expected {num_images} labels, got {len(labels)}")
    per_image = 1 + len(map_list)
    fig, axes = _grid(num_images * per_image, ncols * per_image)
    for i in range(num_images):
        image = _to_hwc(images[i])
        ax = axes[i * per_image]
        _show_image(ax, image)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=8)
        for j, m in enumerate(map_list):
            ax = axes[i * per_image + 1 + j]
            ax.imshow(overlay(image, m[i], cmap=cmap, alpha=alpha), interpolation="nearest")
            if map_titles is not None and i < ncols:
                ax.set_title(str(map_titles[j]), fontsize=8)
    return fig


def prediction_grid(
    images: Tensor,
    preds: Tensor | Sequence[int],
    targets: Tensor | Sequence[int],
    class_names: Sequence[str] | None = None,
    ncols: int = 10,
) -> Figure:
    r"""Grid of images titled ``"pred (true)"``; misclassified images get a red title and frame.

    Args:
        images (Tensor): images ``[B, C, H, W]`` or ``[B, H, W]``.
        preds (Tensor or list of int): predicted class per image ``[B]``.
        targets (Tensor or list of int): true class per image ``[B]``.
        class_names (list of str, optional): names for the class indices. (default: :obj:`None`)
        ncols (int, optional): images per row. (default: :obj:`10`)
    """
    preds = torch.as_tensor(preds).reshape(-1).tolist()
    targets = torch.as_tensor(targets).reshape(-1).tolist()
    if not len(images) == len(preds) == len(targets):
        raise ValueError(
            f"expected as many predictions and targets as images ({len(images)}), "
            f"got {len(preds)} predictions and {len(targets)} targets"
        )

    def name(k: int) -> str:
        return str(class_names[k]) if class_names is not None else str(k)

    fig, axes = _grid(len(images), ncols)
    for ax, image, pred, target in zip(axes, images, preds, targets, strict=False):
        _show_image(ax, _to_hwc(image))
        wrong = pred != target
        colour = "red" if wrong else "black"
        ax.set_title(f"{name(pred)} ({name(target)})", fontsize=8, color=colour)
        if wrong:  # a red frame: axis off hides spines, so draw a rectangle in axes coordinates
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor="red", linewidth=2
                )
            )
    return fig
