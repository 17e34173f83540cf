r"""A geometric graph network: :class:`~gconv.layers.BSplineConv` layers on node positions, voxel
pooling and a cell readout, run the same way on pixel grids and on irregular graphs
(superpixels, :func:`gconv.data.image_to_superpixels`).

Everything is defined by positions, so nothing in the model knows whether its input is a grid:

* the convolution's kernel is a function of ``pos[j] - pos[i]``;
* pooling merges the nodes in square cells of the plane (``torch_geometric.nn.max_pool`` over
  voxel clusters), the merged node sits at the mean position, and each pooling doubles the
  kernel's spacing, as a CNN's receptive field doubles;
* the readout max-pools the nodes into a fixed ``cells x cells`` partition of the image and
  flattens it (as PyG's ``examples/mnist_voxel_grid.py`` does), so the head sees where in the
  image each feature is; an empty cell reads as zeros.

On a full pixel grid with ``spacing=1``, ``kernel_size=3``, poolings of 2 and ``cells`` equal to
the last grid's side, every step is a CNN step (3x3 conv, 2x2 max pool, flatten): the model then
runs on the conv2d fast path (``model(images)``), equal to its message-passing path (tested).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from gconv._utils import renamed_arguments, warn_deprecated
from gconv.grid_layout import grid_graph, images_to_nodes
from gconv.layers.activation import make_activation
from gconv.layers.grid import GridMaxPool
from gconv.layers.spline import BSplineConv
from gconv.models._utils import check_in_shape
from gconv.models.cnn import init_weights

__all__ = ["SplineGNN"]


def _grid_batch(images: Tensor):
    """Images ``(B, C, H, W)`` as a PyG batch of 8-neighbour pixel grid graphs."""
    from torch_geometric.data import Batch, Data

    graph = grid_graph(images.shape[2], images.shape[3], device=images.device)
    return Batch.from_data_list(
        [Data(x=x, edge_index=graph.edge_index, pos=graph.pos) for x in images_to_nodes(images)]
    )


def _old_spline_arguments(init: Callable) -> Callable:
    """``SplineGNN``'s 0.1 arguments, with a warning each: ``in_channels=`` and ``image_size=``
    become ``in_shape=(C, H, W)``, ``hidden=`` becomes ``head_hidden=``. A call in the 0.1
    positional order (an int ``in_channels`` first, ``image_size`` sixth) is read in that order."""

    @functools.wraps(init)
    def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        renamed_arguments("SplineGNN", kwargs, {"hidden": "head_hidden"})
        channels_first = bool(args) and isinstance(args[0], int)
        if channels_first and len(args) > 5:  # 0.1's positional image_size
            if "image_size" in kwargs:
                raise TypeError("SplineGNN got multiple values for argument 'image_size'")
            kwargs["image_size"], args = args[5], (*args[:5], *args[6:])
        old = [name for name in ("in_channels", "image_size") if name in kwargs]
        if channels_first or old:
            if "in_shape" in kwargs or (args and not channels_first):
                raise TypeError(
                    "SplineGNN got in_shape and the deprecated in_channels / image_size; pass "
                    "only in_shape=(C, H, W)"
                )
            for name in ["in_channels"] * channels_first + old:
                warn_deprecated(f"SplineGNN({name}=...)", "SplineGNN(in_shape=(C, H, W))")
            channels = args[0] if channels_first else kwargs.pop("in_channels", 1)
            in_shape = (channels, *tuple(kwargs.pop("image_size", (28, 28))))
            args = (in_shape, *args[1:]) if channels_first else ()
            if not channels_first:
                kwargs["in_shape"] = in_shape
        init(self, *args, **kwargs)

    return wrapper


class SplineGNN(nn.Module):
    r"""Spline convolutions, voxel pooling and a cell readout on graphs with node positions.

    .. math::
        \mathbf{H}^{(\ell)} = \mathrm{pool}_{2^\ell c}\big(\sigma(\mathrm{BSplineConv}_{s_\ell}(
        \mathbf{H}^{(\ell-1)}, \mathrm{pos}))\big), \quad s_\ell = 2^{\ell - 1} s, \qquad
        \mathbf{y} = \mathrm{MLP}\big(\mathrm{vec}\,[\max_{i \in \mathrm{cell}_q} \mathbf{h}_i]_q\big)

    Args:
        in_shape (tuple[int, int, int]): :math:`(C, H, W)`: the node feature size :math:`C` (1
            for grey pixels or mean superpixel intensity) and the plane :math:`H \times W` the
            positions live in (the image). ``in_channels=`` and ``image_size=`` are its deprecated
            parts. (default: :obj:`(1, 28, 28)`)
        num_classes (int): number of logits. (default: :obj:`10`)
        channels (tuple[int, ...]): output channels of each spline convolution.
            (default: :obj:`(32, 64)`)
        kernel_size (int): control points per coordinate (odd). (default: :obj:`3`)
        spacing (float): first layer's control-point spacing in position units; each pooling
            doubles it, and the pooling cells are twice the current spacing. (default: :obj:`1.0`)
        cells (int): side of the readout partition. (default: :obj:`7`)
        head_hidden (tuple[int, ...]): hidden sizes of the MLP head; ``hidden=`` is its deprecated
            name. (default: :obj:`(128,)`)
        pool (bool): voxel max pooling after every convolution. (default: :obj:`True`)
        activation (str): activation name. (default: :obj:`"relu"`)
        dropout (float): dropout after each hidden layer of the head. (default: :obj:`0.0`)

    Shapes:
        - **input:** a PyG ``Data`` / ``Batch`` with ``x`` :math:`(N, F)`, ``pos`` :math:`(N, 2)`
          (``(x, y)`` in pixels of the :math:`H \times W` plane), ``edge_index`` (and ``batch``); or images
          :math:`(B, F, H, W)` (the pixel grid, on the conv2d fast path where it applies)
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    @_old_spline_arguments
    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        spacing: float = 1.0,
        cells: int = 7,
        head_hidden: Sequence[int] = (128,),
        pool: bool = True,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_shape = check_in_shape("SplineGNN", in_shape)
        if not isinstance(cells, int) or cells < 1:
            raise ValueError(f"SplineGNN expected cells >= 1, got {cells!r}")
        if not channels:
            raise ValueError("SplineGNN expected at least one entry in channels")
        self.in_shape = in_shape
        self.num_classes = num_classes
        self.channels = tuple(channels)
        self.kernel_size = kernel_size
        self.spacing = float(spacing)
        self.cells = cells
        self.head_hidden = tuple(head_hidden)
        self.pool = pool
        self.activation = activation

        self.convs = nn.ModuleList()
        width = in_shape[0]
        for index, out_channels in enumerate(self.channels):
            layer_spacing = self.spacing * (2**index if pool else 1)
            self.convs.append(BSplineConv(width, out_channels, kernel_size, layer_spacing))
            width = out_channels
        self.act = make_activation(activation)
        head: list[nn.Module] = []
        features = cells * cells * width
        for hidden_features in self.head_hidden:
            head += [nn.Linear(features, hidden_features), make_activation(activation)]
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            features = hidden_features
        head.append(nn.Linear(features, num_classes))
        self.head = nn.Sequential(*head)
        self.grid_pool = GridMaxPool(2)
        self.reset_parameters()

    @property
    def in_channels(self) -> int:
        """Deprecated: ``in_shape[0]``."""
        warn_deprecated("SplineGNN.in_channels", "SplineGNN.in_shape[0]")
        return self.in_shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """Deprecated: ``in_shape[1:]``."""
        warn_deprecated("SplineGNN.image_size", "SplineGNN.in_shape[1:]")
        return self.in_shape[1:]

    def reset_parameters(self) -> None:
        """He-normal weights and zero biases, as :class:`~gconv.models.CNN`'s default init."""
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        for layer in self.head:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        init_weights(self.head, "kaiming", self.activation)

    def _fast_path_applies(self, height: int, width: int) -> bool:
        """The grid run is a CNN: unit spacing, square pools of 2, readout cells = final grid."""
        if self.spacing != 1.0 or (height, width) != self.in_shape[1:]:
            return False
        for _ in self.convs if self.pool else ():
            if height % 2 or width % 2:
                return False
            height, width = height // 2, width // 2
        return (height, width) == (self.cells, self.cells)

    def forward(self, data) -> Tensor:
        if isinstance(data, Tensor):
            if data.dim() != 4 or data.shape[1] != self.in_shape[0]:
                raise ValueError(
                    f"SplineGNN expected images [B, {self.in_shape[0]}, H, W] or a PyG batch with "
                    f"x, pos and edge_index, got a tensor of shape {list(data.shape)}"
                )
            if self._fast_path_applies(*data.shape[2:]):
                return self._forward_grid(data)
            data = _grid_batch(data)  # the pixel grid as an explicit graph
        return self._forward_graph(data)

    def _forward_grid(self, images: Tensor) -> Tensor:
        x, grid_size = images_to_nodes(images), tuple(images.shape[2:])
        for conv in self.convs:
            x = self.act(conv(x, grid_size=grid_size))
            if self.pool:
                x, grid_size = self.grid_pool(x, grid_size)
        return self.head(x.flatten(1))

    def _forward_graph(self, data) -> Tensor:
        from torch_geometric.data import Batch
        from torch_geometric.nn import max_pool

        for name in ("x", "pos", "edge_index"):
            if getattr(data, name, None) is None:
                raise ValueError(
                    f"SplineGNN expected a PyG graph with x, pos and edge_index; no {name}"
                )
        x, pos, edge_index = data.x, data.pos, data.edge_index
        if x.dim() != 2 or x.shape[1] != self.in_shape[0]:
            raise ValueError(
                f"SplineGNN expected node features (N, {self.in_shape[0]}), got {tuple(x.shape)}"
            )
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        num_graphs = int(getattr(data, "num_graphs", 1) or 1)
        height, width = self.in_shape[1:]
        for conv in self.convs:
            edge_attr = pos[edge_index[0]] - pos[edge_index[1]]
            x = self.act(conv(x, edge_index, edge_attr))
            if self.pool:
                cell = 2 * conv.spacing
                columns, rows = math.ceil(width / cell), math.ceil(height / cell)
                cx = torch.div(pos[:, 0], cell, rounding_mode="floor").long().clamp(0, columns - 1)
                cy = torch.div(pos[:, 1], cell, rounding_mode="floor").long().clamp(0, rows - 1)
                cluster = (batch * rows + cy) * columns + cx
                graph = Batch(x=x, edge_index=edge_index, pos=pos, batch=batch)
                pooled = max_pool(cluster, graph)
                x, edge_index, pos, batch = pooled.x, pooled.edge_index, pooled.pos, pooled.batch
        # readout: max over the nodes of each of cells x cells regions, node-major flatten
        cx = (pos[:, 0] * self.cells / width).floor().long().clamp(0, self.cells - 1)
        cy = (pos[:, 1] * self.cells / height).floor().long().clamp(0, self.cells - 1)
        slot = (batch * self.cells + cy) * self.cells + cx
        regions = scatter(x, slot, 0, dim_size=num_graphs * self.cells**2, reduce="max")
        return self.head(regions.view(num_graphs, -1))

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, num_classes={self.num_classes}, "
            f"channels={self.channels}, kernel_size={self.kernel_size}, spacing={self.spacing:g}, "
            f"cells={self.cells}"
        )
