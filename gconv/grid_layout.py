r"""The pixel-grid layout, with no dependency beyond torch: neighbour offsets, grid graphs with
edge directions, and the row-major views between images and node features.

Both :mod:`gconv.layers` (the grid fast paths) and :mod:`gconv.data` (image <-> graph conversion)
use these helpers, so they live here, below both: importing a layer loads neither RDKit,
torchvision nor the data sets.

Node order is **row-major** everywhere in gconv: the pixel in row ``r`` and column ``c`` of an
``H x W`` image is node ``r * W + c``, so ``image.permute(1, 2, 0).reshape(H * W, C)`` is the node
feature matrix. Positions and directions use image coordinates: ``pos = (x, y) = (column, row)``
with ``y`` pointing *down*, and an edge ``j -> i`` (PyG's source-to-target flow,
``edge_index = [[j], [i]]``) carries the direction ``(dx, dy) = pos[j] - pos[i]``, the offset of
the neighbour as seen from the centre pixel. With that convention the weight that a 3x3
``Conv2d`` applies to the neighbour at ``(dx, dy)`` is ``conv.weight[:, :, dy + 1, dx + 1]``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "GridGraph",
    "grid_offsets",
    "grid_graph",
    "check_grid_size",
    "graph_to_image",
    "images_to_nodes",
    "nodes_to_images",
]


class GridGraph(NamedTuple):
    r"""The graph of an ``height x width`` pixel grid, nodes in row-major order.

    Fields:
        edge_index (LongTensor): ``(2, E)``, row 0 the source (neighbour) ``j``, row 1 the target
            (centre) ``i``; sorted by target.
        edge_attr (LongTensor): ``(E, 2)``, the direction ``(dx, dy) = pos[j] - pos[i]`` of each edge.
        pos (Tensor): ``(H * W, 2)`` float pixel coordinates ``(x, y) = (column, row)``.
        height (int): number of rows ``H``.
        width (int): number of columns ``W``.
    """

    edge_index: Tensor
    edge_attr: Tensor
    pos: Tensor
    height: int
    width: int

    @property
    def num_nodes(self) -> int:
        return self.height * self.width

    def to(self, device: torch.device | str | None) -> GridGraph:
        """Returns the graph with its tensors on ``device``."""
        return self._replace(
            edge_index=self.edge_index.to(device),
            edge_attr=self.edge_attr.to(device),
            pos=self.pos.to(device),
        )


def grid_offsets(connectivity: int) -> list[tuple[int, int]]:
    r"""The neighbour offsets ``(dx, dy)`` of a grid connectivity, without ``(0, 0)``.

    ``4`` gives the von Neumann neighbourhood (up, down, left, right); ``8`` the 3x3 square
    (Moore neighbourhood); ``(2r + 1)^2 - 1`` in general the full ``(2r + 1) x (2r + 1)`` square
    (``24`` for 5x5). Offsets are listed in row-major kernel order (``dy`` outer, ``dx`` inner).
    """
    if connectivity == 4:
        return [(0, -1), (-1, 0), (1, 0), (0, 1)]
    side = math.isqrt(connectivity + 1)
    if connectivity < 8 or side * side != connectivity + 1 or side % 2 == 0:
        raise ValueError(
            "connectivity must be 4 or (2r + 1)^2 - 1 for a full square neighbourhood "
            f"(8 for 3x3, 24 for 5x5), got {connectivity}"
        )
    radius = side // 2
    return [
        (dx, dy)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if (dx, dy) != (0, 0)
    ]


def check_grid_size(height: int, width: int) -> None:
    if not (isinstance(height, int) and isinstance(width, int)) or height < 1 or width < 1:
        raise ValueError(f"grid size must be two positive integers, got ({height!r}, {width!r})")


@lru_cache(maxsize=64)
def _cpu_grid_graph(height: int, width: int, connectivity: int, self_loops: bool) -> GridGraph:
    offsets = grid_offsets(connectivity)
    if self_loops:
        offsets = [*offsets, (0, 0)]
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    sources, targets, directions = [], [], []
    for dx, dy in offsets:
        # target pixel (row, col) receives from (row + dy, col + dx) when that pixel exists
        src_rows, src_cols = rows + dy, cols + dx
        inside = (src_rows >= 0) & (src_rows < height) & (src_cols >= 0) & (src_cols < width)
        sources.append(src_rows[inside] * width + src_cols[inside])
        targets.append(rows[inside] * width + cols[inside])
        directions.append(torch.tensor([dx, dy]).expand(int(inside.sum()), 2))
    source, target = torch.cat(sources), torch.cat(targets)
    direction = torch.cat(directions)
    # sort by (target, source) so each centre's in-edges are contiguous, as in a CSR matrix
    order = torch.argsort(target * (height * width) + source)
    edge_index = torch.stack([source[order], target[order]])
    pos = torch.stack([cols, rows], dim=1).float()
    return GridGraph(edge_index, direction[order].contiguous(), pos, height, width)


def grid_graph(
    height: int,
    width: int,
    connectivity: int = 8,
    self_loops: bool = False,
    device: torch.device | str | None = None,
) -> GridGraph:
    r"""The grid graph of an ``height x width`` image, with an edge direction on every edge.

    Results are cached per ``(height, width, connectivity, self_loops)``: the returned tensors
    are shared between calls, treat them as read-only.

    Args:
        height (int): number of pixel rows.
        width (int): number of pixel columns.
        connectivity (int, optional): ``4`` (edge neighbours), ``8`` (3x3 square, as
            :func:`torch_geometric.utils.grid`), or ``(2r + 1)^2 - 1`` for a larger square.
            (default: :obj:`8`)
        self_loops (bool, optional): add an edge ``i -> i`` with direction ``(0, 0)`` to every node.
            (default: :obj:`False`)
        device (torch.device or str, optional): device of the returned tensors.
            (default: :obj:`None`, the CPU)

    Example:
        >>> g = grid_graph(2, 2, connectivity=4)
        >>> g.edge_index
        tensor([[1, 2, 0, 3, 0, 3, 1, 2],
                [0, 0, 1, 1, 2, 2, 3, 3]])
        >>> g.edge_attr[:2].tolist()  # node 1 is right of node 0, node 2 below it
        [[1, 0], [0, 1]]
    """
    check_grid_size(height, width)
    graph = _cpu_grid_graph(height, width, connectivity, bool(self_loops))
    return graph if device is None else graph.to(device)


def graph_to_image(node_values: Tensor, height: int, width: int) -> Tensor:
    r"""Lays row-major node values back out as an image.

    Args:
        node_values (Tensor): ``(H * W,)``, ``(H * W, C)`` or batched ``(B, H * W, C)``.
        height (int): number of rows ``H``.
        width (int): number of columns ``W``.

    Returns:
        ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)`` respectively. The last two are
        ``channels_last`` views of ``node_values``, not copies.
    """
    check_grid_size(height, width)
    if not isinstance(node_values, Tensor):
        raise TypeError(f"node_values must be a torch.Tensor, got {type(node_values).__name__}")
    if node_values.dim() not in (1, 2, 3):
        raise ValueError(
            "node_values must have shape (H*W,), (H*W, C) or (B, H*W, C), "
            f"got {tuple(node_values.shape)}"
        )
    num_nodes = node_values.shape[0] if node_values.dim() <= 2 else node_values.shape[1]
    if num_nodes != height * width:
        raise ValueError(
            f"node count {num_nodes} does not match the grid {height} x {width} = "
            f"{height * width} nodes"
        )
    if node_values.dim() == 1:
        return node_values.reshape(height, width)
    if node_values.dim() == 2:
        return node_values.reshape(height, width, -1).permute(2, 0, 1)
    return nodes_to_images(node_values, height, width)


def images_to_nodes(images: Tensor) -> Tensor:
    r"""Static-grid batching: images ``(B, C, H, W)`` -> node features ``(B, H * W, C)``.

    Every image shares one grid (see :func:`grid_graph`), so the batch keeps a leading batch
    dimension instead of a block-diagonal graph. The result is contiguous: a view of
    ``channels_last`` images, one copy otherwise.
    """
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must have shape (B, C, H, W), got {shape}")
    batch_size, channels, height, width = images.shape
    nodes = images.permute(0, 2, 3, 1).reshape(batch_size, height * width, channels)
    return nodes.contiguous()


def nodes_to_images(node_features: Tensor, height: int, width: int) -> Tensor:
    r"""Inverse of :func:`images_to_nodes`: ``(B, H * W, C)`` -> ``(B, C, H, W)``.

    The result is a ``channels_last`` view of a contiguous input (no copy), which
    :func:`torch.nn.functional.conv2d` and the pooling functions consume directly.
    """
    if not isinstance(node_features, Tensor) or node_features.dim() != 3:
        shape = (
            tuple(node_features.shape)
            if isinstance(node_features, Tensor)
            else type(node_features).__name__
        )
        raise ValueError(f"node features must have shape (B, H*W, C), got {shape}")
    batch_size, num_nodes, channels = node_features.shape
    if num_nodes != height * width:
        raise ValueError(
            f"node count {num_nodes} does not match the grid {height} x {width} = "
            f"{height * width} nodes"
        )
    return node_features.reshape(batch_size, height, width, channels).permute(0, 3, 1, 2)
