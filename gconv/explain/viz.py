r"""Pictures for explanations: heat-map overlays, image grids, feature maps, filters and
weight histograms, molecule atom importance, grid-node importance, and any graph drawn with its
node importance (:func:`draw_graph`) or as its adjacency and feature matrices
(:func:`draw_matrices`).

Every function returns a :class:`matplotlib.figure.Figure` (RDKit drawings return PNG or SVG
bytes / text) and never touches pyplot's global state: figures are created with
:class:`~matplotlib.figure.Figure` directly, which renders with the Agg canvas, so the module
works headless and in notebooks alike. Save with :func:`save_figure` or ``fig.savefig(path)``.

One word per thing drawn: a per-pixel map (an image's CAM or saliency, ``[H, W]``, or one per
image ``[B, H, W]``) is a ``heatmap`` (``heatmaps`` for several); a per-node importance (a graph's
or a molecule's, ``[N]`` or ``[N, F]``) is a ``node_mask``, PyG's word (``node_masks`` for
several); a colour map is ``cmap``, matplotlib's word. The 0.1 keywords (``maps=``,
``map_titles=``, ``atom_importance=``, ``atom_importances=``, ``colormap=``) still work until
gconv 0.3, with a :class:`DeprecationWarning` naming the new one.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
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

from gconv._utils import evaluating, renamed_arguments

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
    "draw_graph",
    "draw_matrices",
    "draw_molecule_importance",
    "molecule_grid",
    "save_figure",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _renamed_keywords(renames: dict[str, str]) -> Callable[[Callable], Callable]:
    """Lets a function take its 0.1 keyword names (old -> new), each with a
    :class:`DeprecationWarning` that names the new keyword (:func:`gconv._utils.renamed_arguments`)."""

    def decorate(function: Callable) -> Callable:
        owner = f"gconv.explain.viz.{function.__name__}"

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return function(*args, **renamed_arguments(owner, kwargs, renames))

        return wrapper

    return decorate


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


@_renamed_keywords({"maps": "heatmaps", "map_titles": "heatmap_titles"})
def image_grid(
    images: Tensor,
    heatmaps: Tensor | Sequence[Tensor] | None = None,
    labels: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "jet",
    alpha: float = 0.5,
    heatmap_titles: Sequence[str] | None = None,
) -> Figure:
    r"""Grid of images, each followed by its heat-map overlays.

    Args:
        images (Tensor): images ``[B, C, H, W]`` or ``[B, H, W]``.
        heatmaps (Tensor or list of Tensor, optional): one ``[B, H, W]`` heatmap tensor, or
            several (e.g. CAM and Grad-CAM) shown side by side after each image.
            (default: :obj:`None`)
        labels (list of str, optional): a title per image. (default: :obj:`None`)
        ncols (int, optional): images per row (each image takes ``1 + len(heatmaps)`` cells).
            (default: :obj:`8`)
        cmap (str, optional): colormap of the overlays. (default: :obj:`"jet"`)
        alpha (float, optional): overlay weight. (default: :obj:`0.5`)
        heatmap_titles (list of str, optional): a name per heatmap tensor, shown on the first
            row. (default: :obj:`None`)
    """
    if heatmaps is None:
        map_list: list[Tensor] = []
    elif isinstance(heatmaps, Tensor):
        map_list = [heatmaps]
    else:
        map_list = list(heatmaps)
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
            if heatmap_titles is not None and i < ncols:
                ax.set_title(str(heatmap_titles[j]), fontsize=8)
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
    from gconv.explain.find_layers import resolve_layer  # viz imports no explainer eagerly

    module = resolve_layer(model, layer)
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.size(0) != 1:
        raise ValueError(f"expected one image [C, H, W] or [1, C, H, W], got {tuple(image.shape)}")
    captured: dict[str, Tensor] = {}
    handle = module.register_forward_hook(lambda m, i, o: captured.__setitem__("out", o.detach()))
    try:
        with evaluating(model), torch.no_grad():
            model(x)
    finally:
        handle.remove()
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


@_renamed_keywords({"maps": "heatmaps"})
def grid_node_importance(
    heatmaps: Tensor,
    images: Tensor | None = None,
    labels: Sequence[str] | None = None,
    cmap: str = "jet",
    alpha: float = 0.5,
    ncols: int = 8,
) -> Figure:
    r"""Heatmaps on the grid ``[B, h, w]`` (e.g. ``GradCAM(grid_gnn)(images, raw=True)``) drawn
    as images, alone or resized to the inputs and laid over them.

    Args:
        heatmaps (Tensor): one heatmap per image ``[B, h, w]``.
        images (Tensor, optional): the inputs ``[B, C, H, W]``: heatmaps are resized to them and
            laid over them. (default: :obj:`None`, heatmaps alone)
        labels (list of str, optional): a title per heatmap. (default: :obj:`None`)
        cmap (str, optional): colormap. (default: :obj:`"jet"`)
        alpha (float, optional): overlay weight. (default: :obj:`0.5`)
        ncols (int, optional): panels per row. (default: :obj:`8`)
    """
    if not isinstance(heatmaps, Tensor) or heatmaps.dim() != 3:
        raise ValueError(
            f"expected maps [B, h, w], got {getattr(heatmaps, 'shape', type(heatmaps).__name__)}"
        )
    if images is not None:
        if heatmaps.shape[-2:] != images.shape[-2:]:
            heatmaps = torch.nn.functional.interpolate(
                heatmaps[:, None].float(), size=images.shape[-2:], mode="bilinear"
            )[:, 0]
        return image_grid(images, heatmaps, labels=labels, ncols=ncols, cmap=cmap, alpha=alpha)
    fig, axes = _grid(len(heatmaps), ncols)
    for index, (ax, heat) in enumerate(zip(axes, heatmaps, strict=False)):
        ax.imshow(heat.detach().cpu().numpy(), cmap=cmap, interpolation="nearest")
        if labels is not None:
            ax.set_title(str(labels[index]), fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------
# any graph: drawn, and as matrices
# ---------------------------------------------------------------------------------------------
def _node_values(data, node_mask) -> np.ndarray | None:
    """Node importance as ``[N]`` numpy (features summed), from a tensor or an explanation."""
    if node_mask is None:
        node_mask = getattr(data, "node_mask", None)  # an Explanation carries its own
        if node_mask is None:
            return None
    if hasattr(node_mask, "node_mask"):
        node_mask = node_mask.node_mask
    values = torch.as_tensor(node_mask).detach().float().cpu()
    values = values.reshape(values.size(0), -1).sum(dim=-1) if values.dim() > 1 else values
    if values.numel() != data.num_nodes:
        raise ValueError(
            f"expected one importance value per node ({data.num_nodes}), got node_mask of shape "
            f"{tuple(torch.as_tensor(node_mask).shape)}"
        )
    return values.numpy()


def _figure_and_axes(ax, figsize: tuple[float, float]):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def _draw_molecule_on(ax, smiles: str, values: np.ndarray | None, cmap: str, size: int) -> None:
    """RDKit drawing of ``smiles`` with atoms highlighted in ``cmap`` colours of ``values``."""
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit could not parse SMILES '{smiles}'")
    drawer = rdMolDraw2D.MolDraw2DCairo(size, int(size * 0.8))
    if values is None:
        drawer.DrawMolecule(mol)
    else:
        if len(values) != mol.GetNumAtoms():
            raise ValueError(
                f"expected one importance value per atom of '{smiles}' ({mol.GetNumAtoms()}), "
                f"got {len(values)}"
            )
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        colours = matplotlib.colormaps[cmap](scaled)
        atoms = list(range(mol.GetNumAtoms()))
        drawer.DrawMolecule(
            mol,
            highlightAtoms=atoms,
            highlightAtomColors={i: tuple(float(c) for c in colours[i][:3]) for i in atoms},
            highlightBonds=[],
        )
    drawer.FinishDrawing()
    ax.imshow(matplotlib.image.imread(io.BytesIO(drawer.GetDrawingText()), format="png"))
    ax.set_axis_off()


def draw_graph(
    data,
    node_mask: Tensor | None = None,
    ax=None,
    cmap: str = "viridis",
    layout: str = "auto",
    seed: int = 0,
    node_size: float | None = None,
    title: str | None = None,
) -> Figure:
    r"""Draw one graph with its nodes coloured by importance.

    Molecules (``data.smiles`` present, one node per heavy atom) are drawn by RDKit with atoms
    highlighted in the colormap; other graphs through PyG's
    :func:`~torch_geometric.utils.to_networkx` and networkx, placed at ``data.pos`` when the graph
    has positions (grid graphs: pixel ``(x, y)``, drawn with ``y`` downwards like the image) and
    by a seeded spring layout otherwise.

    Args:
        data (Data): one graph (``Data`` or one :class:`~torch_geometric.explain.Explanation`
            of a batch, whose ``node_mask`` is used when ``node_mask`` is not given).
        node_mask (Tensor or Explanation, optional): importance per node ``[N]``, ``[N, 1]`` or
            ``[N, F]`` (features summed). (default: :obj:`None`, plain colours)
        ax (matplotlib Axes, optional): draw into these axes. (default: :obj:`None`, a new figure)
        cmap (str, optional): colormap of the importance. (default: :obj:`"viridis"`)
        layout (str, optional): ``"auto"`` (RDKit for molecules, ``pos`` if present, else
            spring), ``"spring"``, ``"kamada_kawai"``, ``"pos"`` or ``"rdkit"``.
            (default: :obj:`"auto"`)
        seed (int, optional): seed of the spring layout. (default: :obj:`0`)
        node_size (float, optional): marker size; from the number of nodes when not given.
            (default: :obj:`None`)
        title (str, optional): axes title. (default: :obj:`None`)

    Returns:
        the :class:`~matplotlib.figure.Figure` holding the drawing.
    """
    import networkx as nx
    from torch_geometric.utils import to_networkx

    if getattr(data, "num_graphs", 1) != 1 or getattr(data, "edge_index", None) is None:
        raise ValueError(
            "draw_graph expected one graph with edge_index (index a batch first: batch[0]), "
            f"got {type(data).__name__}"
        )
    layouts = ("auto", "spring", "kamada_kawai", "pos", "rdkit")
    if layout not in layouts:
        raise ValueError(f"layout must be one of {layouts}, got '{layout}'")
    values = _node_values(data, node_mask)
    smiles = getattr(data, "smiles", None)
    fig, ax = _figure_and_axes(ax, (4.0, 3.6))
    if layout == "rdkit" or (layout == "auto" and isinstance(smiles, str)):
        if not isinstance(smiles, str):
            raise ValueError("layout='rdkit' needs data.smiles")
        _draw_molecule_on(ax, smiles, values, cmap, size=400)
    else:
        graph = to_networkx(data, to_undirected=True, remove_self_loops=True)
        pos_tensor = getattr(data, "pos", None)
        if layout == "pos" or (layout == "auto" and pos_tensor is not None):
            if pos_tensor is None:
                raise ValueError("layout='pos' needs data.pos")
            xy = pos_tensor.detach().float().cpu().numpy()
            positions = {i: (float(xy[i, 0]), -float(xy[i, 1])) for i in range(data.num_nodes)}
        elif layout == "kamada_kawai":
            positions = nx.kamada_kawai_layout(graph)
        else:
            positions = nx.spring_layout(graph, seed=seed)
        size = node_size if node_size is not None else max(12.0, 4000.0 / max(data.num_nodes, 1))
        nx.draw_networkx_edges(graph, positions, ax=ax, edge_color="0.6", width=0.8)
        colours = values if values is not None else "tab:blue"
        nodes = nx.draw_networkx_nodes(
            graph,
            positions,
            nodelist=list(range(data.num_nodes)),
            node_color=colours,
            cmap=matplotlib.colormaps[cmap] if values is not None else None,
            node_size=size,
            ax=ax,
        )
        if values is not None:
            fig.colorbar(nodes, ax=ax, shrink=0.8, label="importance")
        ax.set_axis_off()
        ax.set_aspect("equal")
    if values is not None and isinstance(smiles, str) and layout in ("auto", "rdkit"):
        norm = matplotlib.colors.Normalize(vmin=float(values.min()), vmax=float(values.max()))
        fig.colorbar(
            matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap),
            ax=ax,
            shrink=0.8,
            label="importance",
        )
    if title:
        ax.set_title(title)
    return fig


def draw_matrices(data, cmap: str = "Greys", max_features: int = 64) -> Figure:
    r"""A graph as the matrices a GCN computes with, side by side: the adjacency matrix
    :math:`\mathbf{A}` (``N x N``, from ``edge_index`` via PyG's
    :func:`~torch_geometric.utils.to_dense_adj`) and the node-feature matrix :math:`\mathbf{X}`
    (``N x F``). A graph without features is shown with :math:`\mathbf{X} = \mathbf{I}`, the
    one-hot identity features of Kipf & Welling's karate-club example.

    Args:
        data (Data): one graph.
        cmap (str, optional): colormap. (default: :obj:`"Greys"`)
        max_features (int, optional): show at most this many feature columns. (default: :obj:`64`)
    """
    from torch_geometric.utils import to_dense_adj

    if getattr(data, "num_graphs", 1) != 1 or getattr(data, "edge_index", None) is None:
        raise ValueError(
            "draw_matrices expected one graph with edge_index (index a batch first: batch[0]), "
            f"got {type(data).__name__}"
        )
    num_nodes = data.num_nodes
    adjacency = to_dense_adj(data.edge_index.cpu(), max_num_nodes=num_nodes)[0]
    x = getattr(data, "x", None)
    identity = x is None
    features = torch.eye(num_nodes) if identity else x.detach().float().cpu()
    features = features.reshape(num_nodes, -1)[:, :max_features]
    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax_a, ax_x = fig.subplots(
        1, 2, width_ratios=[1.0, max(0.25, min(1.0, features.size(1) / num_nodes))]
    )
    ax_a.imshow(adjacency.numpy(), cmap=cmap, interpolation="nearest")
    ax_a.set_title(f"adjacency A ({num_nodes} x {num_nodes}, {data.num_edges} edges)", fontsize=9)
    ax_a.set_xlabel("node")
    ax_a.set_ylabel("node")
    image = ax_x.imshow(features.numpy(), cmap="viridis", interpolation="nearest", aspect="auto")
    label = "X = I (no features)" if identity else f"features X ({num_nodes} x {x.size(-1)})"
    ax_x.set_title(label, fontsize=9)
    ax_x.set_xlabel("feature")
    ax_x.set_ylabel("node")
    fig.colorbar(image, ax=ax_x, shrink=0.8)
    return fig


@_renamed_keywords({"atom_importance": "node_mask", "colormap": "cmap"})
def draw_molecule_importance(
    mol,
    node_mask: Tensor | Sequence[float],
    image_format: str = "png",
    size: tuple[int, int] = (400, 300),
    cmap: str = "bwr",
) -> bytes | str:
    r"""Atoms coloured by importance in RDKit's similarity-map style (Gaussians per atom with
    contour lines, drawn with ``rdMolDraw2D``).

    Args:
        mol (rdkit.Chem.Mol or str): molecule or SMILES.
        node_mask (Tensor or list of float): importance per heavy atom ``[N]`` or ``[N, 1]``
            (e.g. ``explanation[g].node_mask`` of one molecule); positive red, negative blue.
        image_format (str, optional): ``"png"`` (bytes) or ``"svg"`` (text). (default: :obj:`"png"`)
        size (tuple of int, optional): width and height in pixels. (default: :obj:`(400, 300)`)
        cmap (str, optional): matplotlib colormap for the similarity map.
            (default: :obj:`"bwr"`)
    """
    from rdkit import Chem
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    if isinstance(mol, str):
        smiles, mol = mol, Chem.MolFromSmiles(mol)
        if mol is None:
            raise ValueError(f"RDKit could not parse SMILES '{smiles}'")
    weights = torch.as_tensor(node_mask, dtype=torch.float64).detach().cpu().reshape(-1)
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
        colorMap=matplotlib.colormaps[cmap],
        contourLines=6,
    )
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


@_renamed_keywords({"atom_importances": "node_masks"})
def molecule_grid(
    mols: Sequence,
    node_masks: Sequence[Tensor],
    legends: Sequence[str] | None = None,
    ncols: int = 4,
    size: tuple[int, int] = (300, 240),
) -> Figure:
    """Several molecules' atom-importance drawings (:func:`draw_molecule_importance`, one
    ``node_mask`` per molecule) in one matplotlib figure."""
    if len(mols) != len(node_masks):
        raise ValueError(
            f"expected one importance vector per molecule ({len(mols)}), got {len(node_masks)}"
        )
    fig, axes = _grid(len(mols), ncols, cell=2.6)
    for index, (ax, mol, weights) in enumerate(zip(axes, mols, node_masks, strict=False)):
        png = draw_molecule_importance(mol, weights, "png", size=size)
        ax.imshow(matplotlib.image.imread(io.BytesIO(png), format="png"))
        if legends is not None:
            ax.set_title(str(legends[index]), fontsize=8)
    return fig
