r"""Images as superpixel graphs: SLIC regions as nodes, k nearest centroids as edges.

This is the MNIST-superpixels construction of Knyazev et al. (2019) and of benchmarking-gnns
(Dwivedi et al., `"Benchmarking Graph Neural Networks" <https://arxiv.org/abs/2003.00982>`_): each
image becomes ~75 SLIC superpixels (`scikit-image <https://scikit-image.org>`_'s
:func:`~skimage.segmentation.slic`), a node per superpixel with its **mean intensity** as
features and its **centroid** as position, and edges to the ``k`` nearest centroids. The graph is
irregular (different node counts, no directions on a lattice), so only a model whose filters are
functions of the continuous relative position ``pos[j] - pos[i]`` (stored as ``edge_attr``) can
use the geometry, e.g. :class:`gconv.layers.BSplineConv` in :class:`gconv.models.SplineGNN`.

Positions use the image convention of :mod:`gconv.grid_layout`: ``(x, y) = (column, row)`` in
pixels, so a superpixel graph and the pixel grid graph of the same image live in one frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

__all__ = ["image_to_superpixels", "superpixel_dataset"]


def _knn_edges(pos: Tensor, k: int) -> Tensor:
    """``(2, N * k')`` edges ``j -> i`` from each node's ``k' = min(k, N - 1)`` nearest nodes."""
    num_nodes = pos.shape[0]
    k = min(k, num_nodes - 1)
    if k < 1:
        return torch.empty(2, 0, dtype=torch.long)
    distance = torch.cdist(pos, pos)
    distance.fill_diagonal_(float("inf"))
    # stable order: ties broken by node index, so the graph is a pure function of the image
    source = distance.argsort(dim=1, stable=True)[:, :k]
    target = torch.arange(num_nodes).repeat_interleave(k)
    return torch.stack([source.reshape(-1), target])


def image_to_superpixels(
    image: Tensor,
    n_segments: int = 75,
    compactness: float = 0.25,
    k: int = 8,
    y: Tensor | int | None = None,
) -> Data:
    r"""Converts one image into a superpixel graph.

    Args:
        image (Tensor): ``(C, H, W)`` or ``(H, W)`` pixel values (on the CPU or not; the result
            is on the CPU).
        n_segments (int, optional): SLIC's target number of superpixels; SLIC returns about this
            many (fewer on a mostly blank image). (default: :obj:`75`, as benchmarking-gnns)
        compactness (float, optional): SLIC's balance of colour and space; small values follow
            the strokes. (default: :obj:`0.25`, as benchmarking-gnns' MNIST)
        k (int, optional): edges from each node's ``k`` nearest centroids (fewer when the graph
            has at most ``k`` nodes). (default: :obj:`8`, as benchmarking-gnns)
        y (Tensor or int, optional): graph label stored as ``data.y``. (default: :obj:`None`)

    Returns:
        ``Data(x=(N, C) mean intensities, pos=(N, 2) centroids (x, y) in pixels,
        edge_index=(2, N * k) from the k nearest, edge_attr=(E, 2) relative positions
        pos[j] - pos[i], segments=(H, W) superpixel index of every pixel[, y])``.
    """
    from skimage.segmentation import slic  # scikit-image is only needed here

    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3:
        raise ValueError(f"image must have shape (C, H, W) or (H, W), got {tuple(image.shape)}")
    if not isinstance(n_segments, int) or n_segments < 1 or not isinstance(k, int) or k < 1:
        raise ValueError(f"expected n_segments >= 1 and k >= 1, got {n_segments!r} and {k!r}")
    channels, height, width = image.shape
    pixels = image.detach().to("cpu", torch.float64).numpy()
    segments = slic(
        pixels.transpose(1, 2, 0) if channels > 1 else pixels[0],
        n_segments=n_segments,
        compactness=compactness,
        channel_axis=-1 if channels > 1 else None,
        start_label=0,
    )
    # consecutive labels 0..N-1 (SLIC may skip some), then per-region sums by bincount
    _, segments = np.unique(segments, return_inverse=True)
    segments = segments.reshape(height, width)
    flat = segments.reshape(-1)
    num_nodes = int(flat.max()) + 1
    counts = np.bincount(flat, minlength=num_nodes).astype(np.float64)
    rows, cols = np.divmod(np.arange(height * width), width)
    pos = np.stack(
        [np.bincount(flat, cols, num_nodes) / counts, np.bincount(flat, rows, num_nodes) / counts],
        axis=1,
    )
    means = np.stack(
        [np.bincount(flat, pixels[c].reshape(-1), num_nodes) / counts for c in range(channels)],
        axis=1,
    )
    pos_t = torch.from_numpy(pos).float()
    edge_index = _knn_edges(pos_t, k)
    data = Data(
        x=torch.from_numpy(means).float(),
        pos=pos_t,
        edge_index=edge_index,
        edge_attr=pos_t[edge_index[0]] - pos_t[edge_index[1]],
        segments=torch.from_numpy(segments).long(),
    )
    if y is not None:
        data.y = y.reshape(-1).cpu() if isinstance(y, Tensor) else torch.tensor([y])
    return data


def superpixel_dataset(
    images: Tensor,
    labels: Tensor | Sequence[int] | None = None,
    n_segments: int = 75,
    compactness: float = 0.25,
    k: int = 8,
) -> list[Data]:
    """:func:`image_to_superpixels` for every image of ``images`` ``(B, C, H, W)``, labels as ``y``.

    The per-pixel ``segments`` map is dropped (PyG would batch it as a node attribute).
    """
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"superpixel_dataset expected images (B, C, H, W), got {shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"superpixel_dataset got {len(images)} images but {len(labels)} labels")
    graphs = []
    for index, image in enumerate(images):
        label = None if labels is None else int(labels[index])
        graph = image_to_superpixels(image, n_segments, compactness, k, y=label)
        del graph.segments
        graphs.append(graph)
    return graphs
