r"""Images as grid graphs: image -> PyG ``Data`` conversion, on top of :mod:`gconv.grid_layout`.

The grid layout itself (row-major node order, edge directions ``(dx, dy) = pos[j] - pos[i]``,
:func:`grid_graph`, :func:`images_to_nodes`, ...) lives in the dependency-free
:mod:`gconv.grid_layout`, which the layers use too; it is re-exported here under its old names.

Every image of a data set shares one grid, so a batch of images is node features
``[B, H * W, C]`` with one shared ``edge_index`` (:func:`images_to_nodes`), never ``B`` copies of the
edge list as a block-diagonal PyG batch would build.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from gconv.grid_layout import (
    GridGraph,
    graph_to_image,
    grid_graph,
    grid_offsets,
    images_to_nodes,
    nodes_to_images,
)

__all__ = [
    "GridGraph",
    "graph_to_image",
    "grid_graph",
    "grid_offsets",
    "image_to_graph",
    "images_to_nodes",
    "nodes_to_images",
]


def _image_hw(image: Tensor, name: str = "image") -> tuple[int, int, int]:
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 2:
        return 1, image.shape[0], image.shape[1]
    if image.dim() == 3:
        return image.shape[0], image.shape[1], image.shape[2]
    raise ValueError(f"{name} must have shape (C, H, W) or (H, W), got {tuple(image.shape)}")


def image_to_graph(
    image: Tensor,
    connectivity: int = 8,
    self_loops: bool = False,
    y: Tensor | int | float | None = None,
) -> Data:
    r"""Converts one image to a PyG :class:`~torch_geometric.data.Data` grid graph.

    Args:
        image (Tensor): ``(C, H, W)`` or ``(H, W)`` pixel values.
        connectivity (int, optional): ``4`` or ``8`` neighbours, see :func:`grid_graph`.
            (default: :obj:`8`)
        self_loops (bool, optional): add self loops with direction ``(0, 0)``.
            (default: :obj:`False`)
        y (Tensor or number, optional): graph label stored as ``data.y`` (a number becomes a
            one-element tensor, so PyG batches it into ``[B]``). (default: :obj:`None`)

    Returns:
        ``Data(x=(H * W, C), edge_index=(2, E), edge_attr=(E, 2) directions (dx, dy) as int64,
        pos=(H * W, 2) float (x, y), height=H, width=W[, y])``, nodes in row-major order.
    """
    channels, height, width = _image_hw(image)
    graph = grid_graph(height, width, connectivity, self_loops, device=image.device)
    x = image.reshape(channels, height * width).t().contiguous()
    data = Data(
        x=x,
        edge_index=graph.edge_index,
        edge_attr=graph.edge_attr,
        pos=graph.pos,
        height=height,
        width=width,
    )
    if y is not None:
        data.y = y.reshape(-1) if isinstance(y, Tensor) else torch.tensor([y], device=image.device)
    return data
