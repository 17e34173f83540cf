r"""Grid GNNs: graph neural networks on the pixel grid that take image tensors like CNNs.

Every model here takes images ``[B, C, H, W]`` (or node features ``[B, H * W, C]`` in gconv's
row-major node order) and returns logits ``[B, num_classes]``, so the same
:class:`~gconv.train.Trainer` and :class:`~gconv.data.TensorLoader` serve them and CNNs. Like the
molecular graph models they expose ``.readout`` (node embeddings ``[B, N, C]`` -> graph features)
and ``.head`` (an ``nn.Linear`` when CAM-ready), and they keep the input grid graph as buffers
(``edge_index``, ``edge_attr`` with directions ``(dx, dy)``, ``pos``).

* :class:`GridNet`: a stack of grid layers (:class:`~gconv.layers.GridConv`, grid pooling,
  :class:`NodeBatchNorm`, activations, dropout) + readout + head. :func:`cnn_to_grid_gnn` turns a
  CNN into the equal ``GridNet`` with copied weights.
* :class:`GridGNN`: a ``GridNet`` built from the same configuration as :class:`~gconv.models.CNN`.
* :class:`GridGCN`: the isotropic GCN on the grid (residuals, batch norm, pixel positions as extra
  features, mean+max readout).

Inside, every layer uses the static-grid fast path (a dense kernel on a zero-copy
``channels_last`` view of the node features, see :mod:`gconv.layers.grid`); set
``model.fast = False`` to run :class:`~gconv.layers.GridConv` as message passing on the grid
graph instead (same numbers, slower).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gconv.data.grid import grid_graph, images_to_nodes
from gconv.layers.grid import GridAvgPool, GridConv, GridGCNConv, GridMaxPool
from gconv.layers.readout import MaxReadout, MeanMaxReadout, MeanReadout
from gconv.models.cnn import ACTIVATIONS, make_activation

__all__ = [
    "NodeBatchNorm",
    "GridNet",
    "GridGNN",
    "GridGCN",
    "PyGGridGCN",
    "cnn_to_grid_gnn",
    "position_encoding",
]


class NodeBatchNorm(nn.BatchNorm1d):
    r"""Batch normalisation of node features over their last (channel) dimension.

    On grid node features ``(B, H * W, C)`` it normalises every channel over batch and pixels,
    exactly as :class:`~torch.nn.BatchNorm2d` does on ``(B, C, H, W)``; its state dict has the
    same keys, so ``load_state_dict(bn2d.state_dict())`` carries a CNN's statistics over.

    Shapes:
        - **input:** node features :math:`(*, C)`
        - **output:** node features :math:`(*, C)`
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def _image_nodes(x: Tensor, in_shape: tuple[int, int, int], model: str) -> tuple[Tensor, int, int]:
    """Images ``[B, C, H, W]`` or node features ``[B, H*W, C]`` -> (nodes, H, W), checked."""
    channels, height, width = in_shape
    if x.dim() == 4 and x.shape[1] == channels:
        return images_to_nodes(x), x.shape[2], x.shape[3]
    if x.dim() == 3 and x.shape[1:] == (height * width, channels):
        return x, height, width
    raise ValueError(
        f"{model} expected images [B, {channels}, H, W] or node features "
        f"[B, {height * width}, {channels}], got {list(x.shape)}"
    )


class GridNet(nn.Module):
    r"""A grid graph network: grid layers, a readout and a head, run on the pixel grid.

    .. math::
        \mathbf{y} = \mathrm{head}\big(\mathrm{readout}(f_L \circ \dots \circ f_1(\mathbf{X}))\big)

    where each :math:`f_\ell` is a :class:`~gconv.layers.GridConv` (on the current grid),
    a :class:`~gconv.layers.GridMaxPool` / :class:`~gconv.layers.GridAvgPool` (which also
    coarsens the grid), or a node-wise module (:class:`NodeBatchNorm`, an activation, dropout).

    Args:
        in_shape (tuple[int, int, int]): :math:`(C, H, W)` of one input image.
        features (nn.Module): the grid layers, an ``nn.Sequential`` (possibly of
            ``nn.Sequential`` blocks), run in order.
        readout (nn.Module): node features ``[B, N, C]`` -> graph features, a
            :class:`~gconv.layers.Readout` or ``nn.Flatten()`` (node-major: ``[B, N * C]``).
        head (nn.Module): graph features -> logits; an ``nn.Linear`` makes the model CAM-ready.
        dropout (nn.Module, optional): applied between readout and head, kept apart from
            ``head`` so that a one-layer head stays an ``nn.Linear``. (default: :obj:`None`)

    Shapes:
        - **input:** images :math:`(B, C, H, W)` or node features :math:`(B, HW, C)`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        features: nn.Module,
        readout: nn.Module,
        head: nn.Module,
        dropout: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.features = features
        self.readout = readout
        self.dropout = dropout if dropout is not None else nn.Identity()
        self.head = head
        self.fast = True
        _register_grid_buffers(self, self.in_shape, features)

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``[B, C, H, W]`` (or nodes ``[B, H*W, C]``) to logits."""
        x, height, width = _image_nodes(x, self.in_shape, type(self).__name__)
        if isinstance(self.readout, nn.Flatten) and (height, width) != self.in_shape[1:]:
            raise ValueError(
                f"{type(self).__name__} with a flatten readout expected {self.in_shape[1]} x "
                f"{self.in_shape[2]} images, got {height} x {width}"
            )
        grid_size = (height, width)
        for layer in _leaves(self.features):
            if isinstance(layer, GridConv):
                if self.fast:
                    x = layer(x, grid_size=grid_size)
                else:
                    graph = grid_graph(*grid_size, layer.kernel_size**2 - 1, device=x.device)
                    x = layer(x, graph.edge_index, graph.edge_attr)
            elif isinstance(layer, (GridMaxPool, GridAvgPool)):
                x, grid_size = layer(x, grid_size)
            else:
                x = layer(x)
        return self.head(self.dropout(self.readout(x)))


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The leaf layers of nested ``nn.Sequential`` blocks, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def _register_grid_buffers(model: nn.Module, in_shape: tuple[int, ...], features: nn.Module):
    """Keep the input grid graph on the model (non-persistent: not in the state dict)."""
    kernel_sizes = [m.kernel_size for m in _leaves(features) if isinstance(m, GridConv)]
    connectivity = max(kernel_sizes, default=3) ** 2 - 1
    graph = grid_graph(in_shape[1], in_shape[2], connectivity)
    model.register_buffer("edge_index", graph.edge_index.clone(), persistent=False)
    model.register_buffer("edge_attr", graph.edge_attr.clone(), persistent=False)
    model.register_buffer("pos", graph.pos.clone(), persistent=False)


class GridGNN(GridNet):
    r"""The :class:`~gconv.models.CNN` architecture as a grid GNN: every ``Conv2d`` becomes a
    direction-aware :class:`~gconv.layers.GridConv` on the pixel grid graph, every 2x2 pool a grid
    pooling, ``BatchNorm2d`` a :class:`NodeBatchNorm`.

    The arguments are those of :class:`~gconv.models.CNN` (odd ``kernel_size`` only, as a
    GridConv's directions are centred), and the parameter count is the same. With
    ``head="gap"`` the readout is a mean over nodes and ``.head`` an ``nn.Linear`` (CAM-ready);
    with ``head="flatten"`` the readout is ``nn.Flatten()`` over ``[B, N, C]`` (node-major
    order) and ``.head`` the MLP. :func:`cnn_to_grid_gnn` converts a trained CNN.

    Args:
        in_shape (tuple[int, int, int]): :math:`(C, H, W)` of one image. (default: :obj:`(1, 28, 28)`)
        num_classes (int): number of logits. (default: :obj:`10`)
        channels (tuple[int, ...]): output channels of each GridConv block. (default: :obj:`(32, 64)`)
        kernel_size (int): odd side of the direction square. (default: :obj:`3`)
        hidden (tuple[int, ...]): hidden sizes of the ``"flatten"`` head. (default: :obj:`(128,)`)
        head (str): ``"flatten"`` or ``"gap"``. (default: :obj:`"flatten"`)
        batch_norm (bool): :class:`NodeBatchNorm` after each GridConv. (default: :obj:`False`)
        dropout (float): dropout in the head, as in the CNN. (default: :obj:`0.0`)
        activation (str): activation name, as in the CNN. (default: :obj:`"relu"`)
        pool (str, optional): ``"max"``, ``"avg"`` or :obj:`None`. (default: :obj:`"max"`)

    Shapes:
        - **input:** images :math:`(B, C, H, W)` or node features :math:`(B, HW, C)`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        hidden: Sequence[int] = (128,),
        head: str = "flatten",
        batch_norm: bool = False,
        dropout: float = 0.0,
        activation: str = "relu",
        pool: str | None = "max",
    ) -> None:
        name = type(self).__name__
        in_shape = tuple(in_shape)
        if len(in_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in in_shape):
            raise ValueError(f"{name} expected in_shape=(C, H, W) of positive ints, got {in_shape}")
        if head not in ("flatten", "gap"):
            raise ValueError(f"{name} got head={head!r}; expected one of 'flatten', 'gap'")
        if pool not in ("max", "avg", None):
            raise ValueError(f"{name} got pool={pool!r}; expected one of 'max', 'avg', None")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"{name} got activation={activation!r}; expected one of {', '.join(ACTIVATIONS)}"
            )

        blocks = []
        in_channels, height, width = in_shape
        for out_channels in channels:
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            layers["conv"] = GridConv(in_channels, out_channels, kernel_size, bias=not batch_norm)
            if batch_norm:
                layers["bn"] = NodeBatchNorm(out_channels)
            layers["act"] = make_activation(activation)
            if pool is not None:
                layers["pool"] = GridMaxPool(2) if pool == "max" else GridAvgPool(2)
                height, width = height // 2, width // 2
            if height < 1 or width < 1:
                raise ValueError(
                    f"{name} with in_shape={in_shape} and {len(channels)} pooled blocks shrinks "
                    f"the grid to {height}x{width}; use larger images or pool=None"
                )
            blocks.append(nn.Sequential(layers))
            in_channels = out_channels

        head_dropout = nn.Dropout(dropout) if dropout > 0 else None
        if head == "gap":
            readout_layer: nn.Module = MeanReadout()
            head_layer: nn.Module = nn.Linear(in_channels, num_classes)
        else:
            readout_layer = nn.Flatten(start_dim=1)
            mlp: list[nn.Module] = []
            in_features = in_channels * height * width
            for hidden_features in hidden:
                mlp += [nn.Linear(in_features, hidden_features), make_activation(activation)]
                if dropout > 0:
                    mlp.append(nn.Dropout(dropout))
                in_features = hidden_features
            mlp.append(nn.Linear(in_features, num_classes))
            head_layer = nn.Sequential(*mlp)
            head_dropout = None
        super().__init__(in_shape, nn.Sequential(*blocks), readout_layer, head_layer, head_dropout)
        self.num_classes = num_classes
        self.channels = tuple(channels)
        self.head_type = head

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, num_classes={self.num_classes}, "
            f"channels={self.channels}, head={self.head_type!r}"
        )


def position_encoding(pos: Tensor, height: int, width: int) -> Tensor:
    r"""Pixel positions as node features: :math:`(x / (W - 1), y / (H - 1)) \in [0, 1]^2`.

    Args:
        pos (Tensor): ``(N, 2)`` pixel coordinates ``(x, y)``, as in :func:`gconv.data.grid_graph`.
        height (int): image height ``H``.
        width (int): image width ``W``.
    """
    return pos / pos.new_tensor([max(width - 1, 1), max(height - 1, 1)])


class GridGCN(nn.Module):
    r"""The isotropic GCN on the pixel grid graph (8 neighbours + self loops).

    .. math::
        \mathbf{H}^{(1)} = \sigma\big(\mathrm{BN}(\mathrm{GCN}([\mathbf{X} \Vert \mathbf{P}]))\big),
        \qquad
        \mathbf{H}^{(\ell)} = \mathbf{H}^{(\ell-1)} + \sigma\big(\mathrm{BN}(
        \mathrm{GCN}(\mathbf{H}^{(\ell-1)}))\big),
        \qquad
        \mathbf{y} = \mathbf{W}\,[\mathrm{mean}_i \mathbf{h}_i \Vert \max_i \mathbf{h}_i] + \mathbf{b}

    A GCN filter weighs all neighbours alike, so it cannot see orientation (a "6" and a "9" have
    the same neighbourhood statistics up to position): the pixel positions :math:`\mathbf{P}`
    (``(x / (W-1), y / (H-1))`` in :math:`[0, 1]`), residual connections, batch norm and a
    mean+max readout make up for part of that. Each layer is a
    :class:`~gconv.layers.GridGCNConv` (a 1x1 convolution and a fixed normalised 3x3 stencil),
    numerically equal to :class:`torch_geometric.nn.GCNConv` on the grid graph.

    Args:
        in_shape (tuple[int, int, int]): :math:`(C, H, W)` of one image. (default: :obj:`(1, 28, 28)`)
        num_classes (int): number of logits. (default: :obj:`10`)
        hidden_channels (int): width of every GCN layer. (default: :obj:`64`)
        num_layers (int): number of GCN layers. (default: :obj:`4`)
        positions (bool): append the pixel positions to the input features. (default: :obj:`True`)
        batch_norm (bool): :class:`NodeBatchNorm` (momentum 0.5) after each GCN layer.
            (default: :obj:`True`)
        residual (bool): residual connections from the second layer on. (default: :obj:`True`)
        dropout (float): dropout before the head. (default: :obj:`0.0`)
        pool_after (tuple[int, ...]): 2x2 :class:`~gconv.layers.GridMaxPool` after these layers
            (1-based), as a CNN downsamples: it widens the receptive field and makes the later
            layers 4x cheaper. ``()`` keeps the full grid. (default: :obj:`(1, 2)`)

    Shapes:
        - **input:** images :math:`(B, C, H, W)` or node features :math:`(B, HW, C)`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        hidden_channels: int = 64,
        num_layers: int = 4,
        positions: bool = True,
        batch_norm: bool = True,
        residual: bool = True,
        dropout: float = 0.0,
        pool_after: Sequence[int] = (1, 2),
    ) -> None:
        super().__init__()
        in_shape = tuple(in_shape)
        if len(in_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in in_shape):
            raise ValueError(
                f"GridGCN expected in_shape=(C, H, W) of positive ints, got {in_shape}"
            )
        if num_layers < 1:
            raise ValueError(f"GridGCN expected num_layers >= 1, got {num_layers}")
        pool_after = tuple(sorted(set(pool_after)))
        if any(not 1 <= layer <= num_layers for layer in pool_after):
            raise ValueError(
                f"GridGCN expected pool_after to hold layer numbers in 1..{num_layers}, "
                f"got {pool_after}"
            )
        if min(in_shape[1:]) < 2 ** len(pool_after):
            raise ValueError(
                f"GridGCN with {len(pool_after)} poolings needs images of at least "
                f"{2 ** len(pool_after)} x {2 ** len(pool_after)} pixels, got {in_shape[1:]}"
            )
        self.in_shape = in_shape
        self.num_classes = num_classes
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.positions = positions
        self.residual = residual
        self.pool_after = pool_after

        in_channels = in_shape[0] + (2 if positions else 0)
        self.convs = nn.ModuleList(
            GridGCNConv(in_channels if i == 0 else hidden_channels, hidden_channels)
            for i in range(num_layers)
        )
        # momentum 0.5, not 0.1: while training, the statistics of the first layers move fast (the
        # weights on the position features shrink), and running averages with momentum 0.1 lag
        # so far behind that eval-mode accuracy trailed train-mode accuracy by 40 points on MNIST
        self.norms = nn.ModuleList(
            NodeBatchNorm(hidden_channels, momentum=0.5) if batch_norm else nn.Identity()
            for _ in range(num_layers)
        )
        self.act = nn.ReLU()
        self.pool = GridMaxPool(2)
        self.readout = MeanMaxReadout()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(self.readout.output_channels(hidden_channels), num_classes)
        _register_grid_buffers(self, in_shape, nn.Sequential())

    def position_features(self) -> Tensor:
        """The position features of every pixel, row-major ``(H * W, F_pos)``."""
        _, height, width = self.in_shape
        return position_encoding(self.pos, height, width)

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``[B, C, H, W]`` (or nodes ``[B, H*W, C]``) to logits."""
        x, height, width = _image_nodes(x, self.in_shape, "GridGCN")
        if (height, width) != self.in_shape[1:]:
            raise ValueError(
                f"GridGCN expected {self.in_shape[1]} x {self.in_shape[2]} images, got "
                f"{height} x {width}"
            )
        if self.positions:
            pos = self.position_features().to(x.dtype).expand(x.shape[0], -1, -1)
            x = torch.cat([x, pos], dim=-1)
        grid_size = (height, width)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = self.act(norm(conv(x, grid_size=grid_size)))
            x = x + h if self.residual and i > 0 else h
            if i + 1 in self.pool_after:
                x, grid_size = self.pool(x, grid_size)
        return self.head(self.dropout(self.readout(x)))

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, num_classes={self.num_classes}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}"
        )


_POINTWISE = (*ACTIVATIONS.values(), nn.Identity, nn.Dropout)


def _pool_args(pool: nn.Module) -> tuple[int, int] | None:
    """(kernel, stride) of a square, unpadded, floor-mode 2-D pool, else None."""

    def square(value: int | tuple[int, ...]) -> int | None:
        if isinstance(value, int):
            return value
        return value[0] if len(set(value)) == 1 else None

    kernel, stride = square(pool.kernel_size), square(pool.stride or pool.kernel_size)
    if kernel is None or stride is None or pool.ceil_mode or square(pool.padding) != 0:
        return None
    if isinstance(pool, nn.MaxPool2d) and square(pool.dilation) != 1:
        return None
    if isinstance(pool, nn.AvgPool2d) and pool.divisor_override is not None:
        return None
    return kernel, stride


def cnn_to_grid_gnn(cnn: nn.Module) -> GridNet:
    r"""Converts a CNN into the equivalent grid GNN, with copied weights.

    The CNN's leaf layers are read in registration order (as ``nn.Sequential`` runs them; true for
    :class:`~gconv.models.CNN`, whose ``features`` precede its ``head``) and mapped one by one:

    ============================================  =============================================
    CNN layer                                     grid GNN layer
    ============================================  =============================================
    ``Conv2d`` (odd k, stride 1, padding k // 2)  :meth:`GridConv.from_conv2d <gconv.layers.GridConv.from_conv2d>`
    ``BatchNorm2d``                               :class:`NodeBatchNorm` (statistics copied)
    ``MaxPool2d`` / ``AvgPool2d`` (no padding)    :class:`~gconv.layers.GridMaxPool` / ``GridAvgPool``
    activations, ``Dropout``, ``Identity``        the same module
    ``AdaptiveAvgPool2d(1)`` (+ ``Flatten``)      readout :class:`~gconv.layers.MeanReadout`
    ``AdaptiveMaxPool2d(1)`` (+ ``Flatten``)      readout :class:`~gconv.layers.MaxReadout`
    ``Flatten`` of the feature map                readout ``nn.Flatten`` (node-major), the next
                                                  ``Linear``'s columns permuted from the CNN's
                                                  channel-major order
    ``Linear``, activations, ``Dropout`` after    the head
    ============================================  =============================================

    In eval mode the result gives the CNN's outputs to float tolerance. The CNN's input shape is
    read from ``cnn.in_shape`` (as on :class:`~gconv.models.CNN`).

    Raises:
        ValueError: for a layer with no grid equivalent, naming it (e.g. a strided ``Conv2d``,
            ``Dropout2d``, an ``AdaptiveAvgPool2d(2)``).
    """
    in_shape = getattr(cnn, "in_shape", None)
    if in_shape is None or len(in_shape) != 3:
        raise ValueError(
            "cnn_to_grid_gnn needs the CNN's input shape as cnn.in_shape = (C, H, W), as on "
            f"gconv.models.CNN; got {in_shape!r}"
        )
    channels, height, width = in_shape
    features: list[nn.Module] = []
    readout_layer: nn.Module | None = None
    flatten_permute: tuple[int, int] | None = None  # (C, N) of a flattened feature map
    head: list[nn.Module] = []

    for name, layer in cnn.named_modules():
        if len(list(layer.children())) > 0:
            continue
        where = f"{name} ({layer})"
        if readout_layer is None:
            if isinstance(layer, nn.Conv2d):
                try:
                    features.append(GridConv.from_conv2d(layer))
                except ValueError as error:
                    raise ValueError(f"cnn_to_grid_gnn cannot convert {where}: {error}") from None
                channels = layer.out_channels
            elif isinstance(layer, nn.BatchNorm2d):
                norm = NodeBatchNorm(
                    layer.num_features,
                    layer.eps,
                    layer.momentum,
                    layer.affine,
                    layer.track_running_stats,
                )
                norm.load_state_dict(layer.state_dict())
                features.append(norm)
            elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
                pool_args = _pool_args(layer)
                if pool_args is None:
                    raise ValueError(
                        f"cnn_to_grid_gnn cannot convert {where}: only square pools without "
                        "padding, dilation or ceil_mode have a grid equivalent"
                    )
                kernel, stride = pool_args
                grid_pool = GridMaxPool if isinstance(layer, nn.MaxPool2d) else GridAvgPool
                features.append(grid_pool(kernel, stride))
                height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            elif type(layer) in _POINTWISE:
                features.append(copy.deepcopy(layer))
            elif isinstance(layer, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                if layer.output_size not in (1, (1, 1)):
                    raise ValueError(
                        f"cnn_to_grid_gnn cannot convert {where}: only global pooling "
                        "(output_size=1) is a graph readout"
                    )
                is_mean = isinstance(layer, nn.AdaptiveAvgPool2d)
                readout_layer = MeanReadout() if is_mean else MaxReadout()
            elif isinstance(layer, nn.Flatten) and layer.start_dim == 1:
                readout_layer = nn.Flatten(start_dim=1)
                flatten_permute = (channels, height * width)
            else:
                raise ValueError(
                    f"cnn_to_grid_gnn cannot convert {where}: no grid graph equivalent; "
                    "supported are Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, activations, "
                    "Dropout, AdaptiveAvgPool2d(1), AdaptiveMaxPool2d(1), Flatten and Linear"
                )
        elif isinstance(layer, nn.Flatten) and not head and flatten_permute is None:
            continue  # the flatten after a global pool: readouts already return [B, C]
        elif isinstance(layer, nn.Linear):
            linear = copy.deepcopy(layer)
            if flatten_permute is not None and not any(isinstance(m, nn.Linear) for m in head):
                # CNN flatten is channel-major (c * N + n); node features flatten node-major
                # (n * C + c): permute the first Linear's input columns accordingly
                feature_channels, num_nodes = flatten_permute
                weight = layer.weight.detach().view(-1, feature_channels, num_nodes)
                with torch.no_grad():
                    linear.weight.copy_(weight.transpose(1, 2).reshape(layer.weight.shape))
            head.append(linear)
        elif type(layer) in _POINTWISE:
            head.append(copy.deepcopy(layer))
        else:
            raise ValueError(
                f"cnn_to_grid_gnn cannot convert {where} after the readout: the head may hold "
                "Linear, activations and Dropout"
            )

    if readout_layer is None or not any(isinstance(m, nn.Linear) for m in head):
        raise ValueError(
            "cnn_to_grid_gnn expected a CNN ending in a global pool or Flatten followed by "
            f"Linear layers; found readout {readout_layer} and head {head}"
        )
    # a head of (Dropout ->) one Linear stays an nn.Linear, so the grid model is CAM-ready too
    head_dropout = head.pop(0) if isinstance(head[0], nn.Dropout) and len(head) == 2 else None
    head_module = head[0] if len(head) == 1 else nn.Sequential(*head)
    model = GridNet(in_shape, nn.Sequential(*features), readout_layer, head_module, head_dropout)
    model.train(cnn.training)
    return model.to(next(cnn.parameters()).device)


class PyGGridGCN(nn.Module):
    r"""A :class:`GridGCN` run the way plain PyG runs it: one graph per image, block-diagonal
    batches, :class:`torch_geometric.nn.GCNConv` message passing over explicit edge lists, and
    2x2 pooling as :func:`torch_geometric.nn.max_pool` over pixel clusters (as PyG's
    ``voxel_grid`` would make them, computed from ``pos``).

    It shares the parameters of ``model`` (same modules, no copy), so both compute the same
    function: this is the reference the grid fast path is tested and benchmarked against.
    Batches are PyG :class:`~torch_geometric.data.Batch` objects of graphs from
    :func:`gconv.data.image_to_graph` (8 neighbours; ``x``, ``pos`` in pixels, ``batch``).

    Args:
        model (GridGCN): the grid model whose layers to run.

    Shapes:
        - **input:** a PyG batch with node features :math:`(B \cdot HW, C)`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    def __init__(self, model: GridGCN) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv

        _, height, width = model.in_shape
        for _ in model.pool_after:
            if height % 2 or width % 2:
                raise ValueError(
                    "PyGGridGCN pools with clusters of 2x2 pixels and needs even grid sizes at "
                    f"every pooling, got {model.in_shape[1:]} with pool_after={model.pool_after}"
                )
            height, width = height // 2, width // 2
        self.model = model
        self.convs = nn.ModuleList()
        for grid_conv in model.convs:
            conv = GCNConv(grid_conv.in_channels, grid_conv.out_channels)
            conv.lin.weight = grid_conv.lin.weight  # shared, so training either trains both
            conv.bias = grid_conv.bias
            self.convs.append(conv)

    def forward(self, data) -> Tensor:
        from torch_geometric.data import Batch
        from torch_geometric.nn import max_pool

        model = self.model
        _, height, width = model.in_shape
        x, edge_index, pos, batch = data.x, data.edge_index, data.pos, data.batch
        if model.positions:
            encoding = position_encoding(pos, height, width)
            x = torch.cat([x, encoding.to(x.dtype)], dim=-1)
        block = 1  # side of the current nodes' pixel blocks
        for i, (conv, norm) in enumerate(zip(self.convs, model.norms, strict=True)):
            h = model.act(norm(conv(x, edge_index)))
            x = x + h if model.residual and i > 0 else h
            if i + 1 in model.pool_after:
                block, height, width = 2 * block, height // 2, width // 2
                # pooled positions are block centres, so floor(pos / block) finds the 2x2 cluster
                cell = torch.div(pos, block, rounding_mode="floor").long()
                cluster = (batch * height + cell[:, 1]) * width + cell[:, 0]
                pooled = max_pool(cluster, Batch(x=x, edge_index=edge_index, pos=pos, batch=batch))
                x, edge_index, pos, batch = pooled.x, pooled.edge_index, pooled.pos, pooled.batch
        pooled_graphs = model.readout(x, batch, size=data.num_graphs)
        return model.head(model.dropout(pooled_graphs))
