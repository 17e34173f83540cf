r"""Pictures for explanations: heat-map overlays, image grids, feature maps, filters and
weight histograms, molecule atom importance and grid-node importance.

Every function returns a :class:`matplotlib.figure.Figure` (RDKit drawings return PNG or SVG
bytes / text) and never touches pyplot's global state: figures are created with
:class:`~matplotlib.figure.Figure` directly, which renders with the Agg canvas, so the module
works headless and in notebooks alike. Save with :func:`save_figure` or ``fig.savefig(path)``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.cm
import matplotlib.colors
import matplotlib.image
import matplotlib.patches
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

__all__ = [
    "overlay",
    "faithfulness_curves",
    "heatmap_overlay",
    "image_grid",
    "prediction_grid",
    "feature_maps",
    "first_layer_filters",
    "weight_histograms",
    "grid_node_importance",
    "draw_molecule_importance",
    "molecule_grid",
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


# ---------------------------------------------------------------------------------------------
# inside the network
# ---------------------------------------------------------------------------------------------
def feature_maps(
    model: nn.Module,
    image: Tensor,
    layer: nn.Module | str,
    max_maps: int = 32,
    ncols: int = 8,
    cmap: str = "viridis",
) -> Figure:
    r"""The output channels of ``layer`` for one input, one panel per channel.

    Args:
        model (torch.nn.Module): image model.
        image (Tensor): one input ``[C, H, W]`` or ``[1, C, H, W]``.
        layer (torch.nn.Module or str): the layer (or its dotted name) to look into; its
            output must be ``[1, C, h, w]``.
        max_maps (int, optional): show at most this many channels. (default: :obj:`32`)
        ncols (int, optional): panels per row. (default: :obj:`8`)
        cmap (str, optional): colormap. (default: :obj:`"viridis"`)
    """
    from gconv.explain.cam import resolve_layer  # viz is importable without the hook machinery

    module = resolve_layer(model, layer)
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.size(0) != 1:
        raise ValueError(f"expected one image [C, H, W] or [1, C, H, W], got {tuple(image.shape)}")
    captured: dict[str, Tensor] = {}
    handle = module.register_forward_hook(lambda m, i, o: captured.__setitem__("out", o.detach()))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    maps = captured["out"]
    if maps.dim() != 4:
        raise ValueError(f"expected layer output [1, C, h, w], got {tuple(maps.shape)}")
    maps = maps[0, :max_maps].float().cpu()
    fig, axes = _grid(len(maps), ncols, cell=1.1)
    for index, (ax, channel) in enumerate(zip(axes, maps, strict=False)):
        ax.imshow(channel.numpy(), cmap=cmap, interpolation="nearest")
        ax.set_title(str(index), fontsize=7)
    name = layer if isinstance(layer, str) else type(module).__name__
    fig.suptitle(f"feature maps of {name} {tuple(captured['out'].shape[1:])}", fontsize=9)
    return fig


def first_layer_filters(model: nn.Module, ncols: int = 8, cmap: str = "bwr") -> Figure:
    """The kernels of the first ``Conv2d``: RGB for 3 input channels (min-max scaled), else the
    mean over input channels on a diverging colormap centred at zero."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer whose filters could be shown")
    weight = conv.weight.detach().float().cpu()  # [out, in, k, k]
    fig, axes = _grid(weight.size(0), ncols, cell=0.9)
    limit = float(weight.abs().max()) or 1.0
    for index, (ax, kernel) in enumerate(zip(axes, weight, strict=False)):
        if kernel.size(0) == 3:
            rgb = kernel.permute(1, 2, 0).numpy()
            ax.imshow((rgb - rgb.min()) / (np.ptp(rgb) + 1e-12), interpolation="nearest")
        else:
            ax.imshow(
                kernel.mean(0).numpy(), cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest"
            )
        ax.set_title(str(index), fontsize=7)
    fig.suptitle(f"first-layer filters {tuple(weight.shape)}", fontsize=9)
    return fig


def weight_histograms(model: nn.Module, bins: int = 50, ncols: int = 4) -> Figure:
    """Histogram of the weights of every layer with a weight matrix or kernel (``dim >= 2``),
    titled with the parameter name, its shape and its standard deviation."""
    weights = [
        (name, p.detach().float().cpu())
        for name, p in model.named_parameters()
        if name.endswith("weight") and p.dim() >= 2
    ]
    if not weights:
        raise ValueError(f"{type(model).__name__} has no weight matrices or kernels to plot")
    ncols = max(1, min(ncols, len(weights)))
    nrows = math.ceil(len(weights) / ncols)
    fig = Figure(figsize=(3.0 * ncols, 2.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(weights) :]:
        ax.set_axis_off()
    for ax, (name, values) in zip(axes, weights, strict=False):
        ax.hist(values.flatten().numpy(), bins=bins, color="tab:blue")
        ax.set_title(f"{name} {tuple(values.shape)}\nstd={values.std():.3g}", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


# ---------------------------------------------------------------------------------------------
# graphs: grid nodes and molecules
# ---------------------------------------------------------------------------------------------
def faithfulness_curves(
    curves: dict[str, Tensor],
    fractions: Tensor,
    unit: str = "pixels",
    ylabel: str = "class probability",
) -> Figure:
    """Deletion and insertion curves side by side.

    Args:
        curves (dict): ``"deletion <method>"`` / ``"insertion <method>"`` -> scores over the steps;
            methods whose name contains ``"random"`` are drawn dashed (the baseline).
        fractions (Tensor): fraction of ``unit`` removed / inserted at each step.
        unit (str, optional): what is removed, for the x label. (default: :obj:`"pixels"`)
        ylabel (str, optional): what the score is. (default: :obj:`"class probability"`)
    """
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    for ax, mode in zip(fig.subplots(1, 2), ("deletion", "insertion"), strict=True):
        for name, curve in curves.items():
            if name.startswith(mode):
                label = name.removeprefix(mode + " ")
                ax.plot(fractions, curve, label=label, ls="--" if "random" in label else "-")
        ax.set_xlabel(f"fraction of {unit} {'removed' if mode == 'deletion' else 'inserted'}")
        ax.set_ylabel(ylabel)
        ax.set_title(mode)
        ax.legend(fontsize=8)
    return fig


def grid_node_importance(
    explanation,
    images: Tensor | None = None,
    labels: Sequence[str] | None = None,
    cmap: str = "jet",
    alpha: float = 0.5,
    ncols: int = 8,
) -> Figure:
    r"""A grid model's node importance drawn back as image heat maps.

    Args:
        explanation (Explanation or Tensor): an explanation from :mod:`gconv.explain.graph`
            (with ``grid_size``), or maps ``[B, h, w]``.
        images (Tensor, optional): the inputs ``[B, C, H, W]``: maps are resized to them and
            laid over them. (default: :obj:`None`, maps alone)
        labels (list of str, optional): a title per map. (default: :obj:`None`)
        cmap (str, optional): colormap. (default: :obj:`"jet"`)
        alpha (float, optional): overlay weight. (default: :obj:`0.5`)
        ncols (int, optional): panels per row. (default: :obj:`8`)
    """
    if isinstance(explanation, Tensor):
        maps = explanation
        if images is not None and maps.shape[-2:] != images.shape[-2:]:
            maps = torch.nn.functional.interpolate(
                maps[:, None].float(), size=images.shape[-2:], mode="bilinear"
            )[:, 0]
    else:
        from gconv.explain.graph import node_mask_to_image

        size = tuple(images.shape[-2:]) if images is not None else None
        maps = node_mask_to_image(explanation, size=size)
    if images is not None:
        return image_grid(images, maps, labels=labels, ncols=ncols, cmap=cmap, alpha=alpha)
    fig, axes = _grid(len(maps), ncols)
    for index, (ax, heat) in enumerate(zip(axes, maps, strict=False)):
        ax.imshow(heat.detach().cpu().numpy(), cmap=cmap, interpolation="nearest")
        if labels is not None:
            ax.set_title(str(labels[index]), fontsize=8)
    return fig


def draw_molecule_importance(
    mol,
    atom_importance: Tensor | Sequence[float],
    image_format: str = "png",
    size: tuple[int, int] = (400, 300),
    colormap: str = "bwr",
) -> bytes | str:
    r"""Atoms coloured by importance in RDKit's similarity-map style (Gaussians per atom with
    contour lines, drawn with ``rdMolDraw2D``).

    Args:
        mol (rdkit.Chem.Mol or str): molecule or SMILES.
        atom_importance (Tensor or list of float): one value per heavy atom ``[N]`` or ``[N, 1]``
            (e.g. ``explanation.node_mask`` of one molecule); positive red, negative blue.
        image_format (str, optional): ``"png"`` (bytes) or ``"svg"`` (text). (default: :obj:`"png"`)
        size (tuple of int, optional): width and height in pixels. (default: :obj:`(400, 300)`)
        colormap (str, optional): matplotlib colormap for the similarity map.
            (default: :obj:`"bwr"`)
    """
    from rdkit import Chem
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    if isinstance(mol, str):
        smiles, mol = mol, Chem.MolFromSmiles(mol)
        if mol is None:
            raise ValueError(f"RDKit could not parse SMILES '{smiles}'")
    weights = torch.as_tensor(atom_importance, dtype=torch.float64).detach().cpu().reshape(-1)
    if weights.numel() != mol.GetNumAtoms():
        raise ValueError(
            f"expected one importance value per atom ({mol.GetNumAtoms()}), got {weights.numel()}"
        )
    if image_format not in ("png", "svg"):
        raise ValueError(f"image_format must be 'png' or 'svg', got '{image_format}'")
    width, height = size
    if image_format == "png":
        drawer = rdMolDraw2D.MolDraw2DCairo(width, height)
    else:
        drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    values = weights.tolist()
    if max(abs(v) for v in values) == 0.0:  # RDKit divides by the largest weight
        values = [0.0] * len(values)
    SimilarityMaps.GetSimilarityMapFromWeights(
        Chem.Mol(mol),
        values,
        draw2d=drawer,
        colorMap=matplotlib.colormaps[colormap],
        contourLines=6,
    )
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def molecule_grid(
    mols: Sequence,
    atom_importances: Sequence[Tensor],
    legends: Sequence[str] | None = None,
    ncols: int = 4,
    size: tuple[int, int] = (300, 240),
) -> Figure:
    """Several molecules' atom-importance drawings (:func:`draw_molecule_importance`) in one
    matplotlib figure."""
    if len(mols) != len(atom_importances):
        raise ValueError(
            f"expected one importance vector per molecule ({len(mols)}), got {len(atom_importances)}"
        )
    fig, axes = _grid(len(mols), ncols, cell=2.6)
    for index, (ax, mol, weights) in enumerate(zip(axes, mols, atom_importances, strict=False)):
        png = draw_molecule_importance(mol, weights, "png", size=size)
        ax.imshow(matplotlib.image.imread(io.BytesIO(png), format="png"))
        if legends is not None:
            ax.set_title(str(legends[index]), fontsize=8)
    return fig
