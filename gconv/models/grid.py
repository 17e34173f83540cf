r"""Grid GNNs: graph neural networks on the pixel grid that take image tensors like CNNs.

Every model here takes images ``[B, C, H, W]`` (or node features ``[B, H * W, C]`` in gconv's
row-major node order) and returns logits ``[B, num_classes]``, so the same
:class:`~gconv.train.Trainer` and :class:`~gconv.data.TensorLoader` serve them and CNNs. Like the
molecular graph models they expose ``.readout`` (node embeddings ``[B, N, C]`` -> graph features)
and ``.head`` (an ``nn.Linear`` when CAM-ready), and they keep the input grid graph as buffers
(``edge_index``, ``edge_attr`` with directions ``(dx, dy)``, ``pos``).

* :class:`GridNet`: a stack of grid layers (:class:`~gconv.layers.GridConv`, grid pooling,
  :class:`NodeBatchNorm`, activations, dropout) + readout + head. :func:`cnn_to_grid_gnn` turns a
  CNN into the equal ``GridNet`` with copied weights, :func:`grid_gnn_to_cnn` turns it back.
* :class:`GridGNN`: a ``GridNet`` built from the same configuration as :class:`~gconv.models.CNN`.
* :class:`GridGCN`: the isotropic GCN on the grid (residuals, layer norm, pixel positions as extra
  features, mean+max readout).

Inside, every layer uses the static-grid fast path (a dense kernel on a zero-copy
``channels_last`` view of the node features, see :mod:`gconv.layers.grid`); set
``model.fast = False`` to run :class:`~gconv.layers.GridConv` as message passing on the grid
graph instead (same numbers, slower).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from gconv.grid_layout import grid_graph, images_to_nodes
from gconv.layers.activation import ACTIVATIONS, make_activation
from gconv.layers.grid import GridAvgPool, GridConv, GridGCNConv, GridMaxPool
from gconv.layers.readout import MaxReadout, MeanMaxReadout, MeanReadout
from gconv.models.cnn import CNN, BasicBlock, ConvNet

__all__ = [
    "NodeBatchNorm",
    "GridNet",
    "GridGNN",
    "GridResidualBlock",
    "GridGCN",
    "PyGGridGCN",
    "cnn_to_grid_gnn",
    "grid_gnn_to_cnn",
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
            x, grid_size = _run_grid_layer(layer, x, grid_size, self.fast)
        return self.head(self.dropout(self.readout(x)))


def _run_grid_conv(conv: GridConv, x: Tensor, grid_size: tuple[int, int], fast: bool) -> Tensor:
    """A GridConv on the conv2d fast path, or as message passing over the grid graph."""
    if fast:
        return conv(x, grid_size=grid_size)
    if conv.kernel_size == 1:  # a 1x1 conv has only the root term: a graph without edges
        no_edges = torch.empty(2, 0, dtype=torch.long, device=x.device)
        return conv(x, no_edges, no_edges.t())
    graph = grid_graph(*grid_size, conv.kernel_size**2 - 1, device=x.device)
    return conv(x, graph.edge_index, graph.edge_attr)


def _run_grid_layer(
    layer: nn.Module, x: Tensor, grid_size: tuple[int, int], fast: bool
) -> tuple[Tensor, tuple[int, int]]:
    """Run one grid layer on node features; only pools change the grid size."""
    if isinstance(layer, GridConv):
        return _run_grid_conv(layer, x, grid_size, fast), grid_size
    if isinstance(layer, (GridMaxPool, GridAvgPool)):
        return layer(x, grid_size)
    if isinstance(layer, GridResidualBlock):
        return layer(x, grid_size, fast=fast), grid_size
    return layer(x), grid_size


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The leaf layers of nested ``nn.Sequential`` blocks, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def _named_leaves(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """:func:`_leaves` with their dotted names under ``prefix``."""
    if isinstance(module, nn.Sequential):
        return [
            leaf
            for name, child in module.named_children()
            for leaf in _named_leaves(child, f"{prefix}.{name}")
        ]
    return [(prefix, module)]


def _register_grid_buffers(model: nn.Module, in_shape: tuple[int, ...], features: nn.Module):
    """Keep the input grid graph on the model (non-persistent: not in the state dict)."""
    kernel_sizes = [m.kernel_size for m in features.modules() if isinstance(m, GridConv)]
    # the widest kernel's neighbourhood; at least the 8-neighbour grid (1x1 convs have no edges)
    connectivity = max([3, *kernel_sizes]) ** 2 - 1
    graph = grid_graph(in_shape[1], in_shape[2], connectivity)
    model.register_buffer("edge_index", graph.edge_index.clone(), persistent=False)
    model.register_buffer("edge_attr", graph.edge_attr.clone(), persistent=False)
    model.register_buffer("pos", graph.pos.clone(), persistent=False)


class GridResidualBlock(nn.Module):
    r"""A ResNet :class:`~gconv.models.cnn.BasicBlock` on the grid graph, made by
    :func:`cnn_to_grid_gnn`: the same children (``conv1``, ``bn1``, ``act1``, ``conv2``, ``bn2``,
    ``shortcut``, ``act2``) as :class:`~gconv.layers.GridConv` / :class:`NodeBatchNorm` layers,
    so the block's state dict keys are the CNN block's.

    .. math::
        \mathbf{H}^{\prime} = \sigma\big(\mathrm{BN}(\mathrm{GridConv}_2(\sigma(\mathrm{BN}(
        \mathrm{GridConv}_1(\mathbf{H}))))) + S(\mathbf{H})\big)

    with :math:`S` the identity or a 1x1 ``GridConv`` (+ :class:`NodeBatchNorm`): a node-wise
    linear map, the graph form of ResNet's projection shortcut.

    Shapes:
        - **input:** node features :math:`(B, HW, C_{in})` and ``grid_size`` :math:`(H, W)`
        - **output:** node features :math:`(B, HW, C_{out})`
    """

    def __init__(
        self,
        conv1: GridConv,
        bn1: nn.Module | None,
        act1: nn.Module,
        conv2: GridConv,
        bn2: nn.Module | None,
        shortcut: nn.Module,
        act2: nn.Module,
    ) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = conv1, bn1, act1
        self.conv2, self.bn2 = conv2, bn2
        self.shortcut, self.act2 = shortcut, act2

    def forward(self, x: Tensor, grid_size: tuple[int, int], fast: bool = True) -> Tensor:
        h = _run_grid_conv(self.conv1, x, grid_size, fast)
        h = self.act1(h if self.bn1 is None else self.bn1(h))
        h = _run_grid_conv(self.conv2, h, grid_size, fast)
        h = h if self.bn2 is None else self.bn2(h)
        skip = x
        for layer in _leaves(self.shortcut):
            skip, _ = _run_grid_layer(layer, skip, grid_size, fast)
        return self.act2(h + skip)


class GridGNN(GridNet):
    r"""The :class:`~gconv.models.CNN` architecture as a grid GNN: ``cnn_to_grid_gnn(CNN(...))``.

    Every ``Conv2d`` becomes a direction-aware :class:`~gconv.layers.GridConv` on the pixel grid
    graph, every 2x2 pool a grid pooling, ``BatchNorm2d`` a :class:`NodeBatchNorm`, a residual
    :class:`~gconv.models.cnn.BasicBlock` a :class:`GridResidualBlock`. The arguments are those
    of :class:`~gconv.models.CNN`, passed through unchanged (odd ``kernel_size`` only, as a
    GridConv's directions are centred), so the two cannot drift apart: same layers, same
    initialisation (``init``), same parameter count and state-dict names under ``features``.
    With ``head="gap"`` the readout is a mean over nodes and ``.head`` an ``nn.Linear``
    (CAM-ready); with ``head="flatten"`` the readout is ``nn.Flatten()`` over ``[B, N, C]``
    (node-major order) and ``.head`` the MLP. :func:`cnn_to_grid_gnn` converts a trained CNN,
    :func:`grid_gnn_to_cnn` a trained ``GridGNN`` back into that :class:`~gconv.models.CNN`.

    Shapes:
        - **input:** images :math:`(B, C, H, W)` or node features :math:`(B, HW, C)`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    def __init__(self, *args, **kwargs) -> None:
        cnn = CNN(*args, **kwargs)
        grid = cnn_to_grid_gnn(cnn)
        super().__init__(cnn.in_shape, grid.features, grid.readout, grid.head, grid.dropout)
        self.cnn_arguments = (args, dict(kwargs))  # what grid_gnn_to_cnn builds it back from
        self.num_classes = cnn.num_classes
        self.channels = cnn.channels
        self.head_type = cnn.head_type
        self.residual = cnn.residual

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, num_classes={self.num_classes}, "
            f"channels={self.channels}, head={self.head_type!r}"
            + (", residual=True" if self.residual else "")
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
        \mathbf{H}^{(1)} = \sigma\big(\mathrm{BN}(\mathrm{P}_1(\mathrm{GCN}(
        [\mathbf{X} \Vert \mathbf{P}])))\big),
        \qquad
        \mathbf{H}^{(\ell)} = \mathrm{P}_\ell(\mathbf{H}^{(\ell-1)}) + \sigma\big(\mathrm{BN}(
        \mathrm{P}_\ell(\mathrm{GCN}(\mathbf{H}^{(\ell-1)})))\big),
        \qquad
        \mathbf{y} = \mathbf{W}\,[\mathrm{mean}_i \mathbf{h}_i \Vert \max_i \mathbf{h}_i] + \mathbf{b}

    where :math:`\mathrm{P}_\ell` is a 2x2 grid max pool after the layers in ``pool_after`` and
    the identity elsewhere. A GCN filter weighs all neighbours alike, so it cannot see
    orientation (a "6" and a "9" have the same neighbourhood statistics up to position): the pixel
    positions :math:`\mathbf{P}` (``(x / (W-1), y / (H-1))`` in :math:`[0, 1]`), residual
    connections, batch norm and a mean+max readout make up for part of that. Each layer is a
    :class:`~gconv.layers.GridGCNConv` (a 1x1 convolution and a fixed normalised 3x3 stencil),
    numerically equal to :class:`torch_geometric.nn.GCNConv` on the grid graph.

    The pool comes straight after the graph convolution, before the normalisation and the
    activation (conv -> pool -> norm -> ReLU, as in many CNNs): normalisation, activation and
    residual sum then run on 4x fewer nodes, which is most of the grid path's speed; the
    convolution and the pool (and, in a residual layer, the shortcut's pool) run as one fused
    step (``GridGCNConv(..., max_pool=True)``), so the full-resolution output is never stored (a
    hook on such a layer's ``convs[i]``, e.g. a CAM target, sees the pooled output). The
    normalisation is a per-node :class:`~torch.nn.LayerNorm` by default: it keeps no running
    statistics, so evaluation computes what training computed. With batch norm at PyTorch's
    default momentum 0.1 the running statistics lag behind the fast-moving first layers (the
    weights on the position features shrink): on MNIST-5k (seed 0, 12 epochs) eval-mode test
    accuracy was 40.6 % against 89.8 % with batch statistics, which is why 0.1.0 needed momentum
    0.5; layer norm reached 83.8 % on a validation split, identical in both modes.

    Args:
        in_shape (tuple[int, int, int]): :math:`(C, H, W)` of one image. (default: :obj:`(1, 28, 28)`)
        num_classes (int): number of logits. (default: :obj:`10`)
        hidden_channels (int): width of every GCN layer. (default: :obj:`64`)
        num_layers (int): number of GCN layers. (default: :obj:`4`)
        positions (bool): append the pixel positions to the input features. (default: :obj:`True`)
        norm (str, optional): normalisation after each GCN layer (and its pool): ``"layer"``
            (:class:`~torch.nn.LayerNorm` over each node's channels: no running statistics, so
            training and evaluation compute the same function), ``"batch"``
            (:class:`NodeBatchNorm`, momentum ``bn_momentum``) or :obj:`None`.
            (default: :obj:`"layer"`)
        bn_momentum (float): running-average momentum of ``norm="batch"``; 0.1.0 needed 0.5
            (see the note above). (default: :obj:`0.1`)
        residual (bool): residual connections from the second layer on. (default: :obj:`True`)
        dropout (float): dropout before the head. (default: :obj:`0.0`)
        pool_after (tuple[int, ...]): 2x2 :class:`~gconv.layers.GridMaxPool` after these layers
            (1-based), as a CNN downsamples: it widens the receptive field and makes the later
            layers 4x cheaper. ``()`` keeps the full grid. (default: :obj:`(1, 2)`)
        activation (str): activation name, one of :data:`~gconv.layers.activation.ACTIVATIONS`.
            (default: :obj:`"relu"`)

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
        norm: str | None = "layer",
        residual: bool = True,
        dropout: float = 0.0,
        pool_after: Sequence[int] = (1, 2),
        activation: str = "relu",
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        in_shape = tuple(in_shape)
        if len(in_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in in_shape):
            raise ValueError(
                f"GridGCN expected in_shape=(C, H, W) of positive ints, got {in_shape}"
            )
        if num_layers < 1:
            raise ValueError(f"GridGCN expected num_layers >= 1, got {num_layers}")
        if norm not in ("layer", "batch", None):
            raise ValueError(f"GridGCN got norm={norm!r}; expected one of 'layer', 'batch', None")
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
        self.norm = norm

        def make_norm() -> nn.Module:
            if norm == "layer":
                return nn.LayerNorm(hidden_channels)
            if norm == "batch":
                return NodeBatchNorm(hidden_channels, momentum=bn_momentum)
            return nn.Identity()

        self.norms = nn.ModuleList(make_norm() for _ in range(num_layers))
        self.act = make_activation(activation)
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
            if i + 1 in self.pool_after:  # pool first: BN, activation and sum on 4x fewer nodes
                # convolution and pools fused: the full-resolution output is never stored
                if self.residual and i > 0:
                    h, grid_size, x = conv(
                        x, grid_size=grid_size, max_pool=True, return_pooled_input=True
                    )
                else:
                    h, grid_size = conv(x, grid_size=grid_size, max_pool=True)
            else:
                h = conv(x, grid_size=grid_size)
            h = self.act(norm(h))
            x = x + h if self.residual and i > 0 else h
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


class _FeatureMap:
    """What the converters track: the channels and size of the CNN's current feature map."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        self.channels, self.height, self.width = channels, height, width


class _CannotConvert(ValueError):
    """A layer with no grid equivalent; cnn_to_grid_gnn prefixes the layer's name."""


# ---- feature converters: one per CNN layer type, each (layer, feature map) -> grid layer


def _convert_conv(conv: nn.Conv2d, fmap: _FeatureMap) -> nn.Module:
    try:
        grid_conv = GridConv.from_conv2d(conv)
    except ValueError as error:
        raise _CannotConvert(str(error)) from None
    fmap.channels = conv.out_channels
    return grid_conv


def _convert_batch_norm(bn: nn.BatchNorm2d, fmap: _FeatureMap) -> nn.Module:
    norm = NodeBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    norm.load_state_dict(bn.state_dict())
    return norm


def _convert_pool(pool: nn.Module, fmap: _FeatureMap) -> nn.Module:
    pool_args = _pool_args(pool)
    if pool_args is None:
        raise _CannotConvert(
            "only square pools without padding, dilation or ceil_mode have a grid equivalent"
        )
    kernel, stride = pool_args
    fmap.height = (fmap.height - kernel) // stride + 1
    fmap.width = (fmap.width - kernel) // stride + 1
    return (GridMaxPool if isinstance(pool, nn.MaxPool2d) else GridAvgPool)(kernel, stride)


def _convert_pointwise(layer: nn.Module, fmap: _FeatureMap) -> nn.Module:
    return copy.deepcopy(layer)


def _convert_basic_block(block: BasicBlock, fmap: _FeatureMap) -> nn.Module:
    in_channels = fmap.channels

    def convert(layer: nn.Module | None) -> nn.Module | None:
        return None if layer is None else _convert_feature_layer(layer, fmap)

    branch = [convert(block.conv1), convert(block.bn1), convert(block.act1)]
    branch += [convert(block.conv2), convert(block.bn2)]
    out_channels = fmap.channels
    fmap.channels = in_channels  # the shortcut starts from the block's input again
    shortcut = nn.Sequential(*(convert(layer) for layer in _leaves(block.shortcut)))
    if isinstance(block.shortcut, nn.Identity):
        shortcut = nn.Identity()
    fmap.channels = out_channels
    return GridResidualBlock(*branch, shortcut, convert(block.act2))


_FEATURE_CONVERTERS: dict[type[nn.Module], Callable[[nn.Module, _FeatureMap], nn.Module]] = {
    nn.Conv2d: _convert_conv,
    nn.BatchNorm2d: _convert_batch_norm,
    nn.MaxPool2d: _convert_pool,
    nn.AvgPool2d: _convert_pool,
    BasicBlock: _convert_basic_block,
    **dict.fromkeys(_POINTWISE, _convert_pointwise),
}

# ---- readout converters: the layer that ends the feature extractor -> a graph readout


def _readout_global_pool(pool: nn.Module, fmap: _FeatureMap) -> nn.Module:
    if pool.output_size not in (1, (1, 1)):
        raise _CannotConvert("only global pooling (output_size=1) is a graph readout")
    return MeanReadout() if isinstance(pool, nn.AdaptiveAvgPool2d) else MaxReadout()


def _readout_flatten(flatten: nn.Flatten, fmap: _FeatureMap) -> nn.Module:
    if flatten.start_dim != 1:
        raise _CannotConvert("only Flatten(start_dim=1) of the feature map is a readout")
    return nn.Flatten(start_dim=1)


_READOUT_CONVERTERS: dict[type[nn.Module], Callable[[nn.Module, _FeatureMap], nn.Module]] = {
    nn.AdaptiveAvgPool2d: _readout_global_pool,
    nn.AdaptiveMaxPool2d: _readout_global_pool,
    nn.Flatten: _readout_flatten,
}


def _lookup(table: dict, layer: nn.Module) -> Callable | None:
    """The table entry for the layer's class or its nearest base class."""
    return next((table[cls] for cls in type(layer).__mro__ if cls in table), None)


def _convert_feature_layer(layer: nn.Module, fmap: _FeatureMap) -> nn.Module:
    converter = _lookup(_FEATURE_CONVERTERS, layer)
    if converter is None:
        raise _CannotConvert(
            "no grid graph equivalent; supported are "
            + ", ".join(cls.__name__ for cls in (*_FEATURE_CONVERTERS, *_READOUT_CONVERTERS))
            + " and Linear"
        )
    return converter(layer, fmap)


def _units(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Leaf layers and convertible blocks (a BasicBlock is one unit), in registration order."""
    children = list(module.named_children())
    if not children or (prefix and type(module) in _FEATURE_CONVERTERS):
        yield prefix, module
        return
    for name, child in children:
        yield from _units(child, f"{prefix}.{name}" if prefix else name)


def _nest(named_layers: list[tuple[str, nn.Module]]) -> nn.Sequential:
    """Rebuild nested ``nn.Sequential`` containers from dotted names, so the grid model's
    parameters keep the CNN's names (``features.0.conv.weight``)."""
    root = nn.Sequential()
    for name, layer in named_layers:
        *parents, leaf = name.split(".")
        container = root
        for part in parents:
            if part not in container._modules:
                container.add_module(part, nn.Sequential())
            container = container._modules[part]
        container.add_module(leaf, layer)
    # a CNN keeps its extractor under one child (``features``): that child is the grid features
    if len(root) == 1 and isinstance(root[0], nn.Sequential):
        return root[0]
    return root


def cnn_to_grid_gnn(cnn: nn.Module) -> GridNet:
    r"""Converts a CNN into the equivalent grid GNN, with copied weights.

    The CNN's layers are read in registration order (as ``nn.Sequential`` runs them; true for
    :class:`~gconv.models.CNN`, whose ``features`` precede its ``head``) and converted one by one
    through a table of per-layer converters (``_FEATURE_CONVERTERS``, then
    ``_READOUT_CONVERTERS`` for the layer that ends the feature extractor):

    ============================================  =============================================
    CNN layer                                     grid GNN layer
    ============================================  =============================================
    ``Conv2d`` (odd k, stride 1, padding k // 2)  :meth:`GridConv.from_conv2d <gconv.layers.GridConv.from_conv2d>`
    ``BatchNorm2d``                               :class:`NodeBatchNorm` (statistics copied)
    ``MaxPool2d`` / ``AvgPool2d`` (no padding)    :class:`~gconv.layers.GridMaxPool` / ``GridAvgPool``
    :class:`~gconv.models.cnn.BasicBlock`         :class:`GridResidualBlock` (its layers converted)
    activations, ``Dropout``, ``Identity``        the same module
    ``AdaptiveAvgPool2d(1)`` (+ ``Flatten``)      readout :class:`~gconv.layers.MeanReadout`
    ``AdaptiveMaxPool2d(1)`` (+ ``Flatten``)      readout :class:`~gconv.layers.MaxReadout`
    ``Flatten`` of the feature map                readout ``nn.Flatten`` (node-major), the next
                                                  ``Linear``'s columns permuted from the CNN's
                                                  channel-major order
    ``Linear``, activations, ``Dropout`` after    the head
    ============================================  =============================================

    The feature layers keep their names (``features.0.conv``), so the grid model's state dict
    matches the CNN's there. In eval mode the result gives the CNN's outputs to float tolerance.
    The CNN's input shape is read from ``cnn.in_shape`` (as on :class:`~gconv.models.CNN`).

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
    fmap = _FeatureMap(*in_shape)
    features: list[tuple[str, nn.Module]] = []
    readout_layer: nn.Module | None = None
    flatten_permute: tuple[int, int] | None = None  # (C, N) of a flattened feature map
    head: list[nn.Module] = []

    for name, layer in _units(cnn):
        where = f"{name} ({layer})"
        try:
            if readout_layer is None:
                readout_converter = _lookup(_READOUT_CONVERTERS, layer)
                if readout_converter is None:
                    features.append((name, _convert_feature_layer(layer, fmap)))
                    continue
                readout_layer = readout_converter(layer, fmap)
                if isinstance(readout_layer, nn.Flatten):
                    flatten_permute = (fmap.channels, fmap.height * fmap.width)
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
                raise _CannotConvert(
                    "after the readout the head may hold Linear, activations and Dropout"
                )
        except _CannotConvert as error:
            raise ValueError(f"cnn_to_grid_gnn cannot convert {where}: {error}") from None

    if readout_layer is None or not any(isinstance(m, nn.Linear) for m in head):
        raise ValueError(
            "cnn_to_grid_gnn expected a CNN ending in a global pool or Flatten followed by "
            f"Linear layers; found readout {readout_layer} and head {head}"
        )
    # a head of (Dropout ->) one Linear stays an nn.Linear, so the grid model is CAM-ready too
    head_dropout = head.pop(0) if isinstance(head[0], nn.Dropout) and len(head) == 2 else None
    head_module = head[0] if len(head) == 1 else nn.Sequential(*head)
    model = GridNet(in_shape, _nest(features), readout_layer, head_module, head_dropout)
    model.train(cnn.training)
    return model.to(next(cnn.parameters()).device)


# ---- the way back: one converter per grid layer type, each (layer, feature map) -> CNN layer


def _conv_from_grid(conv: GridConv, fmap: _FeatureMap) -> nn.Module:
    fmap.channels = conv.out_channels
    return conv.to_conv2d()


def _batch_norm_from_grid(norm: NodeBatchNorm, fmap: _FeatureMap) -> nn.Module:
    bn = nn.BatchNorm2d(
        norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats
    )
    # copies, assigned: the statistics keep their device and dtype and share nothing
    bn.load_state_dict({k: v.clone() for k, v in norm.state_dict().items()}, assign=True)
    return bn


def _pool_from_grid(pool: GridMaxPool | GridAvgPool, fmap: _FeatureMap) -> nn.Module:
    fmap.height = (fmap.height - pool.kernel_size) // pool.stride + 1
    fmap.width = (fmap.width - pool.kernel_size) // pool.stride + 1
    cls = nn.MaxPool2d if isinstance(pool, GridMaxPool) else nn.AvgPool2d
    return cls(pool.kernel_size, pool.stride)


def _basic_block_from_grid(block: GridResidualBlock, fmap: _FeatureMap) -> nn.Module:
    in_channels = fmap.channels

    def convert(layer: nn.Module | None) -> nn.Module | None:
        return None if layer is None else _convert_grid_layer(layer, fmap)

    layers = {"conv1": convert(block.conv1), "bn1": convert(block.bn1), "act1": convert(block.act1)}
    layers.update(conv2=convert(block.conv2), bn2=convert(block.bn2))
    out_channels = fmap.channels
    fmap.channels = in_channels  # the shortcut starts from the block's input again
    if isinstance(block.shortcut, nn.Identity):
        layers["shortcut"] = nn.Identity()
    else:
        layers["shortcut"] = nn.Sequential(*(convert(layer) for layer in _leaves(block.shortcut)))
    fmap.channels = out_channels
    layers["act2"] = convert(block.act2)
    # a BasicBlock of the right shape (its own initialisation drawn under grid_gnn_to_cnn's
    # forked random state), its layers then replaced by the converted ones
    cnn_block = BasicBlock(
        in_channels, out_channels, block.conv1.kernel_size, batch_norm=block.bn1 is not None
    )
    for name, layer in layers.items():
        setattr(cnn_block, name, layer)
    return cnn_block


_CNN_CONVERTERS: dict[type[nn.Module], Callable[[nn.Module, _FeatureMap], nn.Module]] = {
    GridConv: _conv_from_grid,
    NodeBatchNorm: _batch_norm_from_grid,
    GridMaxPool: _pool_from_grid,
    GridAvgPool: _pool_from_grid,
    GridResidualBlock: _basic_block_from_grid,
    **dict.fromkeys(_POINTWISE, _convert_pointwise),
}
# readouts with a CNN equivalent: a global pool over the feature map (+ Flatten), or Flatten
_CNN_READOUTS: dict[type[nn.Module], Callable[[], list[nn.Module]]] = {
    MeanReadout: lambda: [nn.AdaptiveAvgPool2d(1), nn.Flatten()],
    MaxReadout: lambda: [nn.AdaptiveMaxPool2d(1), nn.Flatten()],
    nn.Flatten: lambda: [nn.Flatten()],
}


def _convert_grid_layer(layer: nn.Module, fmap: _FeatureMap) -> nn.Module:
    converter = _CNN_CONVERTERS.get(type(layer))
    if converter is None:
        supported = ", ".join(cls.__name__ for cls in _CNN_CONVERTERS)
        raise _CannotConvert(f"no CNN equivalent; supported are {supported}")
    return converter(layer, fmap)


def grid_gnn_to_cnn(model: GridNet) -> nn.Module:
    r"""Converts a grid GNN back into the equivalent CNN, with copied weights: the inverse of
    :func:`cnn_to_grid_gnn`.

    ============================================  =============================================
    grid GNN layer                                CNN layer
    ============================================  =============================================
    :class:`~gconv.layers.GridConv`               :meth:`GridConv.to_conv2d <gconv.layers.GridConv.to_conv2d>`
    :class:`NodeBatchNorm`                        ``BatchNorm2d`` (statistics copied)
    ``GridMaxPool`` / ``GridAvgPool``             ``MaxPool2d`` / ``AvgPool2d``
    :class:`GridResidualBlock`                    :class:`~gconv.models.cnn.BasicBlock`
    activations, ``Dropout``, ``Identity``        the same module
    readout :class:`~gconv.layers.MeanReadout`    ``AdaptiveAvgPool2d(1)`` + ``Flatten``
    readout :class:`~gconv.layers.MaxReadout`     ``AdaptiveMaxPool2d(1)`` + ``Flatten``
    readout ``nn.Flatten`` (node-major)           ``Flatten`` (channel-major), the first
                                                  ``Linear``'s columns permuted to match
    ``dropout`` and ``head``                      the same modules after the readout
    ============================================  =============================================

    A :class:`GridGNN` comes back as the :class:`~gconv.models.CNN` it was built from (its
    arguments, the trained weights; unless its layers were replaced since); any other
    :class:`GridNet` as a
    :class:`~gconv.models.cnn.ConvNet` whose ``features`` keep the grid model's names, so
    ``grid_gnn_to_cnn(cnn_to_grid_gnn(cnn))`` has the state dict of a :class:`~gconv.models.CNN`
    ``cnn``. In eval mode the result gives the grid GNN's outputs to float tolerance. The global
    random state is left as it was.

    Raises:
        TypeError: for a model that is not a :class:`GridNet` (the isotropic
            :class:`GridGCN` has no CNN equivalent).
        ValueError: for a layer with no CNN equivalent, naming it (e.g. a
            :class:`~gconv.layers.GridGCNConv`, a :class:`~gconv.layers.MeanMaxReadout`).
    """
    if not isinstance(model, GridNet):
        raise TypeError(
            f"grid_gnn_to_cnn expected a GridNet (from cnn_to_grid_gnn or GridGNN), got "
            f"{type(model).__name__}"
        )
    fmap = _FeatureMap(*model.in_shape)
    with torch.random.fork_rng(devices=[]):  # the new layers' own initialisation draws numbers
        named = []
        for name, layer in _named_leaves(model.features, "features"):
            try:
                named.append((name, _convert_grid_layer(layer, fmap)))
            except _CannotConvert as error:
                raise ValueError(
                    f"grid_gnn_to_cnn cannot convert {name} ({layer}): {error}"
                ) from None
        features = _nest(named) if isinstance(model.features, nn.Sequential) else named[0][1]
        cnn: nn.Module = ConvNet(model.in_shape, features, _head_from_grid(model, fmap))
        if isinstance(model, GridGNN):
            args, kwargs = model.cnn_arguments
            built = CNN(*args, **kwargs).to(next(model.parameters()).dtype)
            try:
                built.load_state_dict(cnn.state_dict())
                cnn = built
            except RuntimeError:  # layers changed since it was built: the ConvNet mirrors them
                pass
    cnn.train(model.training)
    return cnn.to(next(model.parameters()).device)


def _head_from_grid(model: GridNet, fmap: _FeatureMap) -> nn.Sequential:
    """The CNN head: the readout's CNN equivalent, then the grid model's dropout and head."""
    make_readout = _CNN_READOUTS.get(type(model.readout))
    if make_readout is None or getattr(model.readout, "start_dim", 1) != 1:
        raise ValueError(
            f"grid_gnn_to_cnn cannot convert the readout {model.readout}: only MeanReadout, "
            "MaxReadout and Flatten(start_dim=1) have a CNN equivalent"
        )
    layers = make_readout()
    if not isinstance(model.dropout, nn.Identity):
        layers.append(copy.deepcopy(model.dropout))
    head = [copy.deepcopy(layer) for layer in _leaves(model.head)]
    linears = [layer for layer in head if isinstance(layer, nn.Linear)]
    if isinstance(model.readout, nn.Flatten) and linears:
        # node features flatten node-major (n * C + c), a CNN's maps channel-major (c * N + n):
        # permute the first Linear's input columns back
        first, channels, nodes = linears[0], fmap.channels, fmap.height * fmap.width
        if first.in_features != channels * nodes:
            raise ValueError(
                f"grid_gnn_to_cnn: the head's first Linear takes {first.in_features} features, "
                f"but the flattened {channels} x {fmap.height} x {fmap.width} feature map has "
                f"{channels * nodes}"
            )
        weight = first.weight.detach().view(-1, nodes, channels)
        with torch.no_grad():
            first.weight.copy_(weight.transpose(1, 2).reshape(first.weight.shape))
    return nn.Sequential(*layers, *head)


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
            h = conv(x, edge_index)
            if i + 1 in model.pool_after:
                block, height, width = 2 * block, height // 2, width // 2
                # pooled positions are block centres, so floor(pos / block) finds the 2x2 cluster
                cell = torch.div(pos, block, rounding_mode="floor").long()
                cluster = (batch * height + cell[:, 1]) * width + cell[:, 0]
                graph = Batch(x=h, edge_index=edge_index, pos=pos, batch=batch)
                pooled = max_pool(cluster, graph)
                if model.residual and i > 0:
                    x = max_pool(cluster, Batch(x=x, edge_index=edge_index, pos=pos, batch=batch)).x
                h, edge_index, pos, batch = pooled.x, pooled.edge_index, pooled.pos, pooled.batch
            h = model.act(norm(h))
            x = x + h if model.residual and i > 0 else h
        pooled_graphs = model.readout(x, batch, size=data.num_graphs)
        return model.head(model.dropout(pooled_graphs))
