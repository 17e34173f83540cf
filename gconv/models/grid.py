r"""Grid GNNs: graph neural networks on the pixel grid that take image tensors like CNNs.

Every model here takes images ``[B, C, H, W]`` (or node features ``[B, H * W, C]`` in gconv's
row-major node order) and returns logits ``[B, num_classes]``, so the same
:class:`~gconv.train.Trainer` and :class:`~gconv.data.TensorLoader` serve them and CNNs. Like the
molecular graph models they expose ``.readout`` (node embeddings ``[B, N, C]`` -> graph features)
and ``.head`` (an ``nn.Linear`` when CAM-ready), and they keep the input grid graph as buffers
(``edge_index``, ``edge_attr`` with directions ``(dx, dy)``, ``pos``).

* :class:`GridNet`: a stack of grid layers (:class:`~gconv.layers.GridConv`, grid pooling,
  :class:`NodeBatchNorm`, activations, dropout) + readout + head.
  :func:`~gconv.models.convert.cnn_to_grid_gnn` turns a CNN into the equal ``GridNet`` with copied
  weights, :func:`~gconv.models.convert.grid_gnn_to_cnn` turns it back (both in
  :mod:`gconv.models.convert`).
* :class:`GridGNN`: a ``GridNet`` built from the same configuration as :class:`~gconv.models.CNN`.
* :class:`GridGCN`: the isotropic GCN on the grid (residuals, layer norm, pixel positions as extra
  features, mean+max readout).

Inside, every layer uses the static-grid fast path (a dense kernel on a zero-copy
``channels_last`` view of the node features, see :mod:`gconv.layers.grid`); set
``model.fast = False`` to run :class:`~gconv.layers.GridConv` as message passing on the grid
graph instead (same numbers, slower).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gconv._utils import deprecated_module_attributes
from gconv.grid_layout import grid_graph, images_to_nodes
from gconv.layers.activation import make_activation
from gconv.layers.grid import GridAvgPool, GridConv, GridGCNConv, GridMaxPool
from gconv.layers.readout import MeanMaxReadout
from gconv.models._utils import check_in_shape, leaves, moved_to_benchmarks, renamed_keywords
from gconv.models.cnn import CNN
from gconv.summary import pool_output_size

__all__ = [
    "NodeBatchNorm",
    "GridNet",
    "GridGNN",
    "GridResidualBlock",
    "GridGCN",
    "position_encoding",
]

# moved in 0.2: the converters to gconv.models.convert, the naive-PyG reference to benchmarks/
__getattr__ = moved_to_benchmarks(
    __name__,
    {"PyGGridGCN": "pyg_grid_gcn.py"},
    fallback=deprecated_module_attributes(
        __name__,
        {
            "cnn_to_grid_gnn": ("gconv.models.convert", "cnn_to_grid_gnn"),
            "grid_gnn_to_cnn": ("gconv.models.convert", "grid_gnn_to_cnn"),
        },
    ),
)


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
        for layer in leaves(self.features):
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
    r"""A ResNet :class:`~gconv.models.BasicBlock` on the grid graph, made by
    :func:`~gconv.models.cnn_to_grid_gnn`: the same children (``conv1``, ``bn1``, ``act1``, ``conv2``, ``bn2``,
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
        for layer in leaves(self.shortcut):
            skip, _ = _run_grid_layer(layer, skip, grid_size, fast)
        return self.act2(h + skip)


class GridGNN(GridNet):
    r"""The :class:`~gconv.models.CNN` architecture as a grid GNN: ``cnn_to_grid_gnn(CNN(...))``
    (:func:`~gconv.models.cnn_to_grid_gnn`).

    Every ``Conv2d`` becomes a direction-aware :class:`~gconv.layers.GridConv` on the pixel grid
    graph, every 2x2 pool a grid pooling, ``BatchNorm2d`` a :class:`NodeBatchNorm`, a residual
    :class:`~gconv.models.BasicBlock` a :class:`GridResidualBlock`. The arguments are those
    of :class:`~gconv.models.CNN`, passed through unchanged (odd ``kernel_size`` only, as a
    GridConv's directions are centred), so the two cannot drift apart: same layers, same
    initialisation (``init``), same parameter count and state-dict names under ``features``.
    With ``head="gap"`` the readout is a mean over nodes and ``.head`` an ``nn.Linear``
    (CAM-ready); with ``head="flatten"`` the readout is ``nn.Flatten()`` over ``[B, N, C]``
    (node-major order) and ``.head`` the MLP. :func:`~gconv.models.cnn_to_grid_gnn` converts a
    trained CNN, :func:`~gconv.models.grid_gnn_to_cnn` a trained ``GridGNN`` back into that
    :class:`~gconv.models.CNN`.

    Shapes:
        - **input:** images :math:`(B, C, H, W)` or node features :math:`(B, HW, C)`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    @renamed_keywords(**CNN.__init__.renamed_keywords)  # the CNN's renames, under this name
    def __init__(self, *args, **kwargs) -> None:
        # imported here: the converters import this module's layers, and GridGNN is one of them
        from gconv.models.convert import cnn_to_grid_gnn

        cnn = CNN(*args, **kwargs)
        grid = cnn_to_grid_gnn(cnn)
        super().__init__(cnn.in_shape, grid.features, grid.readout, grid.head, grid.dropout)
        # what grid_gnn_to_cnn builds it back from (new keyword names: no warning there)
        self.cnn_arguments = (args, dict(kwargs))
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
        in_shape = check_in_shape("GridGCN", in_shape)
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
        try:  # every 2x2 pool must leave at least one node
            grid_size = in_shape[1:]
            for _ in pool_after:
                grid_size = pool_output_size(grid_size, kernel_size=2)
        except ValueError:
            raise ValueError(
                f"GridGCN with {len(pool_after)} poolings needs images of at least "
                f"{2 ** len(pool_after)} x {2 ** len(pool_after)} pixels, got {in_shape[1:]}"
            ) from None
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
