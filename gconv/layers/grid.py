r"""Grid graph layers: the direction-aware :class:`GridConv` (exactly a ``Conv2d`` on a grid), the
isotropic :class:`GridGCNConv` (exactly a ``GCNConv`` on a grid), and 2x2 grid pooling.

Each layer runs on node features in gconv's row-major grid order (see :mod:`gconv.data.grid`):
``(H * W, C)`` for one grid or ``(B, H * W, C)`` for a batch of grids sharing one graph, and takes
``grid_size=(H, W)`` to use the **static-grid fast path**. A contiguous ``(B, H * W, C)`` tensor is
exactly the memory of a ``channels_last`` ``(B, C, H, W)`` image, so the fast path views it as one
(no copy), runs one dense kernel (``conv2d``, a depthwise stencil, ``max_pool2d``), and views the
``channels_last`` result back as nodes. :class:`GridGCNConv` can fuse a following 2x2 max pool
(``max_pool=True``), so that the full-resolution output is never stored. :class:`GridConv` also
runs as ordinary message passing on any graph whose edges carry integer directions ``(dx, dy)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch_geometric.nn import MessagePassing

from gconv.grid_layout import grid_offsets

__all__ = [
    "GridConv",
    "GridGCNConv",
    "GridMaxPool",
    "GridAvgPool",
    "grid_conv2d",
    "grid_gcn_norm",
]


def _check_grid_nodes(x: Tensor, grid_size: tuple[int, int], layer: str) -> None:
    height, width = grid_size
    if x.dim() not in (2, 3):
        raise ValueError(
            f"{layer} expected node features of shape (N, C) or (B, N, C), got {tuple(x.shape)}"
        )
    num_nodes = x.shape[-2]
    if num_nodes != height * width:
        raise ValueError(
            f"{layer} got {num_nodes} nodes, which does not match grid_size {height} x {width} = "
            f"{height * width}"
        )


def _as_grid_batch(x: Tensor, grid_size: tuple[int, int], layer: str) -> Tensor:
    """Views node features ``(N, C)`` / ``(B, N, C)`` as a ``channels_last`` ``(B, C, H, W)``."""
    _check_grid_nodes(x, grid_size, layer)
    height, width = grid_size
    images = x.reshape(-1, height, width, x.shape[-1]).permute(0, 3, 1, 2)
    # no copy for contiguous x; states the layout so conv2d / pooling pick channels_last kernels
    return images.contiguous(memory_format=torch.channels_last)


def _as_nodes(images: Tensor, like: Tensor) -> Tensor:
    """Inverse of :func:`_as_grid_batch`: ``channels_last`` images back to ``like``'s node layout."""
    batch_size, channels, height, width = images.shape
    nodes = images.permute(0, 2, 3, 1).reshape(batch_size, height * width, channels)
    return nodes if like.dim() == 3 else nodes[0]


def grid_conv2d(
    layer: nn.Module, x: Tensor, grid_size: tuple[int, int], edge_index: Tensor | None = None
) -> Tensor:
    r"""The static-grid fast path of a layer with a ``Conv2d``-layout kernel (:class:`GridConv`,
    :class:`~gconv.layers.BSplineConv`): one :func:`~torch.nn.functional.conv2d` of
    ``layer.weight`` ``(out, in, k, k)`` and ``layer.bias`` with "same" padding ``k // 2``, on a
    zero-copy ``channels_last`` view of node features ``(H * W, C)`` / ``(B, H * W, C)`` of full
    ``H x W`` grids in row-major order, viewed back as nodes.

    ``edge_index`` is the layer's message-passing argument, checked to be absent: a layer runs
    either on a graph or on a grid, never both.
    """
    name = type(layer).__name__
    if edge_index is not None:
        raise ValueError(
            f"{name} takes either edge_index and edge_attr (message passing) or grid_size "
            "(static-grid fast path), not both"
        )
    images = _as_grid_batch(x, grid_size, name)
    out = F.conv2d(images, layer.weight, layer.bias, padding=layer.kernel_size // 2)
    return _as_nodes(out, like=x)


class GridConv(MessagePassing):
    r"""The direction-aware grid graph convolution: a separate weight matrix for every relative
    position :math:`(dx, dy)` of a neighbour, as in relational
    (`"Modeling Relational Data with Graph Convolutional Networks"
    <https://arxiv.org/abs/1703.06103>`_) or spline-based
    (`"SplineCNN" <https://arxiv.org/abs/1711.08920>`_) message passing with one relation per
    kernel tap.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{\Theta}_{(0,0)}^{\top} \mathbf{x}_i +
        \sum_{j \in \mathcal{N}(i)} \mathbf{\Theta}_{\mathbf{d}_{j,i}}^{\top} \mathbf{x}_j
        + \mathbf{b},
        \qquad \mathbf{d}_{j,i} = \mathrm{pos}_j - \mathrm{pos}_i = (dx, dy)

    The centre tap :math:`\mathbf{\Theta}_{(0,0)}` acts on the node itself (a root weight), so
    graphs need no self loops; self-loop edges (direction :math:`(0, 0)`) are ignored. On the
    8-neighbour grid with zero padding at the border this is *exactly* a 3x3
    :class:`~torch.nn.Conv2d`: :math:`\mathbf{\Theta}_{(dx, dy)} =`
    ``conv.weight[:, :, dy + 1, dx + 1].T``. The weight is stored in ``Conv2d`` layout
    ``(out_channels, in_channels, k, k)``, see :meth:`from_conv2d`.

    Two paths compute the same thing:

    * ``forward(x, edge_index, edge_attr)``: message passing on any graph whose edges carry
      integer directions. One matmul computes
      :math:`\mathbf{x}_j \mathbf{\Theta}_t` for all nodes and taps ``t``; each edge then
      gathers its tap's row (a bipartite propagate from ``(node, tap)`` pairs to nodes).
    * ``forward(x, grid_size=(H, W))``: the static-grid fast path for node features of full
      ``H x W`` grids in row-major order: one :func:`~torch.nn.functional.conv2d` on a
      zero-copy ``channels_last`` view of ``x``.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        kernel_size (int, optional): odd side of the square of directions,
            :math:`|dx|, |dy| \le` ``kernel_size // 2``. (default: :obj:`3`)
        bias (bool, optional): If set to :obj:`False`, the layer will not learn an additive bias.
            (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or :math:`(B, |\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)` and directions :math:`(|\mathcal{E}|, 2)`
          *or* ``grid_size`` :math:`(H, W)` with :math:`|\mathcal{V}| = HW`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})` or
          :math:`(B, |\mathcal{V}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        bias: bool = True,
        **kwargs,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"GridConv expected an odd kernel_size >= 1, got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        # the initialisation of nn.Conv2d, so GridConv and a CNN start from the same distribution
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size**2
            bound = 1 / fan_in**0.5 if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_conv2d(cls, conv: nn.Conv2d) -> GridConv:
        """A :class:`GridConv` computing exactly ``conv`` on the grid graph (weights copied).

        ``conv`` must be a square, odd-sized, stride-1, undilated, ungrouped ``Conv2d`` with
        ``padding=kernel_size // 2`` and zero padding (the border of the grid graph has no
        neighbours, which is zero padding).
        """
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(
                f"GridConv.from_conv2d expected an nn.Conv2d, got {type(conv).__name__}"
            )
        k = conv.kernel_size[0]
        expected = {
            "kernel_size": (k, k),
            "stride": (1, 1),
            "padding": (k // 2, k // 2),
            "dilation": (1, 1),
            "groups": 1,
            "padding_mode": "zeros",
        }
        for name, value in expected.items():
            if getattr(conv, name) != value or k % 2 == 0:
                raise ValueError(
                    f"GridConv.from_conv2d needs an odd square Conv2d with stride 1, padding "
                    f"k // 2, dilation 1, groups 1 and zero padding; got {conv}"
                )
        grid_conv = cls(conv.in_channels, conv.out_channels, k, bias=conv.bias is not None)
        grid_conv = grid_conv.to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            # Conv2d is a cross-correlation: weight[:, :, dy + r, dx + r] multiplies the input at
            # (row + dy, col + dx), i.e. the neighbour with direction (dx, dy): same layout
            grid_conv.weight.copy_(conv.weight)
            if conv.bias is not None:
                grid_conv.bias.copy_(conv.bias)
        return grid_conv

    def to_conv2d(self) -> nn.Conv2d:
        """The ``Conv2d`` this layer computes on full grids (weights copied): the inverse of
        :meth:`from_conv2d`, a ``kernel_size`` convolution with ``padding=kernel_size // 2``."""
        k = self.kernel_size
        conv = nn.Conv2d(
            self.in_channels, self.out_channels, k, padding=k // 2, bias=self.bias is not None
        )
        conv = conv.to(device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(self.weight)
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | None = None,
        edge_attr: Tensor | None = None,
        grid_size: tuple[int, int] | None = None,
    ) -> Tensor:
        if grid_size is not None:
            return grid_conv2d(self, x, grid_size, edge_index)
        if edge_index is None:
            raise ValueError("GridConv expected edge_index and edge_attr, or grid_size=(H, W)")

        tap = self._edge_taps(edge_index, edge_attr)
        num_nodes, num_taps = x.shape[-2], self.kernel_size**2
        center = num_taps // 2
        # x_j Theta_t for every node j and tap t in one matmul: (..., N, taps * out)
        weight = self.weight.permute(1, 2, 3, 0).reshape(self.in_channels, -1)
        messages = (x @ weight).reshape(*x.shape[:-2], num_nodes * num_taps, self.out_channels)
        out = x @ self.weight[:, :, center // self.kernel_size, center % self.kernel_size].t()
        keep = tap != center  # the centre tap is the root term above; drop self loops
        source, target = edge_index[0, keep], edge_index[1, keep]
        tap_edge_index = torch.stack([source * num_taps + tap[keep], target])
        out = out + self.propagate(
            tap_edge_index, x=(messages, None), size=(num_nodes * num_taps, num_nodes)
        )
        if self.bias is not None:
            out = out + self.bias
        return out

    def _edge_taps(self, edge_index: Tensor, edge_attr: Tensor | None) -> Tensor:
        """Kernel tap index ``(dy + r) * k + (dx + r)`` of every edge, checked."""
        if edge_attr is None:
            raise ValueError(
                "GridConv expected edge_attr with 2 columns (dx, dy) giving each edge's "
                "direction, got None (build graphs with gconv.data.image_to_graph or grid_graph)"
            )
        if edge_attr.dim() != 2 or edge_attr.shape[1] != 2:
            raise ValueError(
                f"GridConv expected edge_attr with 2 columns (dx, dy), got shape "
                f"{tuple(edge_attr.shape)}"
            )
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(
                f"GridConv expected edge_index of shape (2, E), got {tuple(edge_index.shape)}"
            )
        if edge_attr.shape[0] != edge_index.shape[1]:
            raise ValueError(
                f"GridConv got {edge_index.shape[1]} edges but {edge_attr.shape[0]} rows of edge_attr"
            )
        if edge_attr.is_floating_point():
            if not torch.equal(edge_attr, edge_attr.round()):
                raise ValueError(
                    "GridConv expected integer edge directions (dx, dy), got fractions"
                )
            edge_attr = edge_attr.long()
        radius = self.kernel_size // 2
        if edge_attr.numel() > 0 and int(edge_attr.abs().max()) > radius:
            raise ValueError(
                f"GridConv with kernel_size={self.kernel_size} accepts directions with "
                f"|dx|, |dy| <= {radius}, got an edge with direction up to "
                f"{int(edge_attr.abs().max())}"
            )
        dx, dy = edge_attr[:, 0], edge_attr[:, 1]
        return (dy + radius) * self.kernel_size + (dx + radius)

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size})"
        )


@lru_cache(maxsize=32)
def _grid_gcn_stencil(connectivity: int) -> Tensor:
    """The 0/1 ``3x3`` stencil of ``A + I`` on the grid: centre plus the neighbour offsets."""
    stencil = torch.zeros(3, 3)
    stencil[1, 1] = 1.0
    for dx, dy in grid_offsets(connectivity):
        stencil[dy + 1, dx + 1] = 1.0
    return stencil


def grid_gcn_norm(
    height: int,
    width: int,
    connectivity: int = 8,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""The GCN normalisation :math:`\hat{d}_i^{-1/2}` of every node of an ``height x width`` grid,
    row-major, :math:`\hat{d}_i = 1 + |\mathcal{N}(i)|` (self loop plus neighbours).

    With 8 neighbours it is ``1/3`` inside, ``1/sqrt(6)`` on the edges and ``1/2`` at the corners:
    border pixels have fewer neighbours. Returns a tensor of shape ``(H * W, 1)``.
    """
    stencil = _grid_gcn_stencil(connectivity)
    ones = torch.ones(1, 1, height, width)
    degree = F.conv2d(ones, stencil.view(1, 1, 3, 3), padding=1).reshape(height * width, 1)
    return degree.rsqrt().to(device=device, dtype=dtype)


@lru_cache(maxsize=64)
def _grid_gcn_constants(
    height: int, width: int, connectivity: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """``(d^-1/2 [H*W, 1], stencil [1, 1, 3, 3])`` on ``device``: built once per grid, not per call
    (building them is CPU work plus blocking host-to-device copies)."""
    norm = grid_gcn_norm(height, width, connectivity, device, dtype)
    stencil = _grid_gcn_stencil(connectivity).to(device=device, dtype=dtype).view(1, 1, 3, 3)
    return norm, stencil


# Elements of one chunk's full-resolution output in the fused convolution + pooling on the CPU,
# per thread (2 MiB of float32): a chunk's intermediates stay in cache, and the same few
# chunk-sized blocks are reused from one chunk to the next instead of whole-batch maps being
# allocated (and, on a freshly trimmed heap, page-faulted in) at every training step.
_CHUNK_ELEMENTS = 1 << 19


def _normalised_stencil(images: Tensor, stencil: Tensor, inv_sqrt_degree: Tensor) -> Tensor:
    r""":math:`\hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2}` on ``channels_last`` images ``(b, C, H, W)``:
    the depthwise stencil between two scalings by ``inv_sqrt_degree`` ``(1, 1, H, W)``."""
    channels = images.shape[1]
    weight = stencil.expand(channels, 1, 3, 3)
    return F.conv2d(images * inv_sqrt_degree, weight, padding=1, groups=channels) * inv_sqrt_degree


class _GridGCNMaxPool(torch.autograd.Function):
    r"""``max_pool2d(conv(x), 2)`` for a :class:`GridGCNConv`, run over chunks of the batch, and
    optionally ``max_pool2d(x, 2)`` in the same pass.

    ``conv`` is the 1x1 convolution :math:`\mathbf{\Theta}` (``weight``), then, if ``aggregate``,
    the normalised stencil, then the bias. Only the pooled outputs and the argmax indices are
    kept for the backward pass; the full-resolution output (4x the pooled size) lives one chunk
    at a time. Backward per chunk: unpool the gradient to the argmax pixels, apply the stencil
    again (the normalised adjacency is symmetric, so it is its own transpose), then the two
    products of a linear map; the gradient of the pooled input is added to the chunk's input
    gradient while it is in cache. Inputs: ``x`` ``(B, H * W, C_in)`` contiguous, ``weight``
    ``(C_out, C_in)``, ``bias`` ``(C_out,)`` or None.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, grid_size, connectivity, aggregate, pool_input):
        batch_size, num_nodes, in_channels = x.shape
        out_channels = weight.shape[0]
        height, width = grid_size
        inv_sqrt_degree, stencil = _grid_gcn_constants(
            height, width, connectivity, x.device, x.dtype
        )
        scale = inv_sqrt_degree.view(1, 1, height, width)
        depthwise = stencil.expand(out_channels, 1, 3, 3)
        chunk = batch_size
        if x.device.type == "cpu":  # a cache-sized share of the chunk for every thread
            chunk_elements = _CHUNK_ELEMENTS * torch.get_num_threads()
            chunk = max(1, chunk_elements // (num_nodes * out_channels))

        def pooled_buffer(channels: int) -> Tensor:
            shape = (batch_size, channels, height // 2, width // 2)
            return torch.empty(
                shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last
            )

        out = pooled_buffer(out_channels)
        out_x = pooled_buffer(in_channels) if pool_input else None
        indices, indices_x = [], []  # argmax per chunk, kept as they come (no copy into one)
        for start in range(0, batch_size, chunk):
            end = min(start + chunk, batch_size)
            x_chunk = x[start:end]
            nodes = x_chunk.reshape(-1, in_channels)
            if aggregate:  # the arithmetic of GridGCNConv.forward, so the numbers are its own
                h = (nodes @ weight.t()).view(end - start, num_nodes, out_channels)
                images = _as_grid_batch(h, grid_size, "GridGCNConv") * scale
                h = F.conv2d(images, depthwise, padding=1, groups=out_channels)
                if bias is None:
                    h = h * scale
                else:
                    h = torch.addcmul(bias.view(1, -1, 1, 1), h, scale)
            else:
                h = nodes @ weight.t() if bias is None else torch.addmm(bias, nodes, weight.t())
                h = _as_grid_batch(h.view(x_chunk.shape[:2] + (-1,)), grid_size, "GridGCNConv")
            pooled, argmax = F.max_pool2d_with_indices(h, 2)
            out[start:end] = pooled
            indices.append(argmax)
            if pool_input:
                pooled, argmax = F.max_pool2d_with_indices(
                    _as_grid_batch(x_chunk, grid_size, "GridGCNConv"), 2
                )
                out_x[start:end] = pooled
                indices_x.append(argmax)
        ctx.save_for_backward(x, weight)
        # intermediates, not inputs or outputs of the function: no version counter to check
        ctx.indices, ctx.indices_x = indices, indices_x
        ctx.grid_size, ctx.connectivity, ctx.aggregate = grid_size, connectivity, aggregate
        ctx.chunk, ctx.has_bias = chunk, bias is not None
        if pool_input:
            return _as_nodes(out, like=x), _as_nodes(out_x, like=x)
        return _as_nodes(out, like=x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_out_x=None):
        x, weight = ctx.saved_tensors
        batch_size, num_nodes, in_channels = x.shape
        out_channels = weight.shape[0]
        height, width = ctx.grid_size
        pooled_size = (height // 2, width // 2)
        inv_sqrt_degree, stencil = _grid_gcn_constants(
            height, width, ctx.connectivity, x.device, x.dtype
        )
        scale = inv_sqrt_degree.view(1, 1, height, width)
        grad_out = _as_grid_batch(grad_out.contiguous(), pooled_size, "GridGCNConv")
        if grad_out_x is not None:
            grad_out_x = _as_grid_batch(grad_out_x.contiguous(), pooled_size, "GridGCNConv")
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_weight_t = x.new_zeros(in_channels, out_channels)  # (C_in, C_out): the cheap side
        # each pooled gradient lands on exactly one pixel (the windows do not overlap), so the
        # bias gradient, a sum over pixels, is the sum of the pooled gradient: 4x fewer terms
        grad_bias = grad_out.sum(dim=(0, 2, 3)) if ctx.has_bias else None

        def unpool(grad: Tensor, argmax: Tensor, channels: int) -> Tensor:
            # the pooled input's shape and layout are all the kernel reads from it: an
            # allocated, never written (so never paged-in) tensor stands for it
            like = torch.empty(
                (grad.shape[0], channels, height, width),
                dtype=x.dtype,
                device=x.device,
                memory_format=torch.channels_last,
            )
            return torch.ops.aten.max_pool2d_with_indices_backward(
                grad, like, [2, 2], [2, 2], [0, 0], [1, 1], False, argmax
            )

        starts = range(0, batch_size, ctx.chunk)
        for i, start in enumerate(starts):
            end = min(start + ctx.chunk, batch_size)
            grad_h = unpool(grad_out[start:end], ctx.indices[i], out_channels)
            if ctx.aggregate:
                grad_h = _normalised_stencil(grad_h, stencil, scale)
            grad_lin = _as_nodes(grad_h, like=x).reshape(-1, out_channels)
            grad_weight_t += x[start:end].reshape(-1, in_channels).t() @ grad_lin
            if grad_x is not None:
                grad_x_chunk = grad_x[start:end]
                torch.mm(grad_lin, weight, out=grad_x_chunk.view(-1, in_channels))
                if grad_out_x is not None:
                    grad_pooled = unpool(grad_out_x[start:end], ctx.indices_x[i], in_channels)
                    grad_x_chunk += _as_nodes(grad_pooled, like=x)
        return grad_x, grad_weight_t.t(), grad_bias, None, None, None, None


class GridGCNConv(nn.Module):
    r"""The isotropic graph convolution of `"Semi-supervised Classification with Graph
    Convolutional Networks" <https://arxiv.org/abs/1609.02907>`_ on a grid graph, run as dense
    image operations.

    .. math::
        \mathbf{X}^{\prime} = \mathbf{\hat{D}}^{-1/2} \mathbf{\hat{A}}
        \mathbf{\hat{D}}^{-1/2} \mathbf{X} \mathbf{\Theta} + \mathbf{b}

    where :math:`\mathbf{\hat{A}} = \mathbf{A} + \mathbf{I}` is the grid adjacency with self loops.
    Node-wise, :math:`\mathbf{x}^{\prime}_i = \hat{d}_i^{-1/2} \sum_{j \in \mathcal{N}(i) \cup
    \{i\}} \hat{d}_j^{-1/2} \mathbf{\Theta}^{\top} \mathbf{x}_j + \mathbf{b}`. On a grid the sum is
    a fixed 3x3 stencil (all ones for 8 neighbours, a plus for 4), so the layer is a **1x1
    convolution** :math:`\mathbf{\Theta}`, a scaling by :math:`\hat{d}^{-1/2}`, a depthwise 3x3
    convolution with the stencil (zero padding), and a second scaling by :math:`\hat{d}^{-1/2}`:
    border pixels have fewer neighbours, hence smaller :math:`\hat{d}` (see :func:`grid_gcn_norm`).
    When ``in_channels < out_channels`` (a first layer) the 1x1 convolution and the stencil run as
    one 3x3 convolution with weight :math:`\mathbf{\Theta} \otimes` stencil on the few input
    channels, one dense kernel instead of a thin matrix product over all pixels.
    It equals :class:`torch_geometric.nn.GCNConv` on the grid graph with self loops, with the same
    parameter names (``lin.weight``, ``bias``): load one's ``state_dict`` into the other, or use
    :meth:`from_gcn_conv`.

    ``forward(x, grid_size, max_pool=True)`` returns what ``GridMaxPool(2)`` of the output returns,
    the nodes of the coarser grid and its size ``(H // 2, W // 2)``, with the pooling fused into
    the convolution: on the CPU the
    batch runs in chunks of about 2 MiB of full-resolution output, only the pooled output and the
    argmax indices are kept for the backward pass (a hand-written one, chunked alike), and the
    stencil runs on the narrower side of :math:`\mathbf{\Theta}` (before it when
    ``in_channels < out_channels``). The full-resolution output, 4x the pooled one, is never
    stored: in a training step that saves whole-batch maps, their allocation (page faults on
    freshly mapped memory) and cache misses cost more than the arithmetic. With
    ``return_pooled_input=True`` it returns ``(out, (H // 2, W // 2), pooled_x)``, ``pooled_x``
    the pooled nodes of ``x`` (the shortcut of a residual layer that pools), computed in the same
    pass. Values and gradients equal those of the
    convolution followed by :class:`GridMaxPool` (float tolerance; ties in a pooling window go to
    the first pixel in row-major order, as in :func:`~torch.nn.functional.max_pool2d`).

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        connectivity (int, optional): ``8`` (as :func:`torch_geometric.utils.grid`) or ``4``
            neighbours. (default: :obj:`8`)
        bias (bool, optional): If set to :obj:`False`, the layer will not learn an additive bias.
            (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(HW, F_{in})` or :math:`(B, HW, F_{in})`,
          ``grid_size`` :math:`(H, W)`
        - **output:** node features :math:`(HW, F_{out})` or :math:`(B, HW, F_{out})`; with
          ``max_pool=True``, :math:`(H'W', F_{out})` or :math:`(B, H'W', F_{out})` and the grid
          size :math:`(H', W') = (\lfloor H/2 \rfloor, \lfloor W/2 \rfloor)`, and with
          ``return_pooled_input=True`` also the pooled input :math:`(B, H'W', F_{in})`
    """

    def __init__(
        self, in_channels: int, out_channels: int, connectivity: int = 8, bias: bool = True
    ) -> None:
        super().__init__()
        if connectivity not in (4, 8):
            raise ValueError(f"GridGCNConv expected connectivity 4 or 8, got {connectivity}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.connectivity = connectivity
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # glorot weights and zero bias, as torch_geometric.nn.GCNConv
        nn.init.xavier_uniform_(self.lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @classmethod
    def from_gcn_conv(cls, conv: nn.Module, connectivity: int = 8) -> GridGCNConv:
        """A :class:`GridGCNConv` with the weights of a PyG-style ``GCNConv`` (``lin``, ``bias``)."""
        if not (hasattr(conv, "lin") and hasattr(conv, "in_channels")):
            raise TypeError(
                "GridGCNConv.from_gcn_conv expected a GCNConv with .lin and .bias, got "
                f"{type(conv).__name__}"
            )
        grid_conv = cls(
            conv.in_channels, conv.out_channels, connectivity, bias=conv.bias is not None
        ).to(device=conv.lin.weight.device, dtype=conv.lin.weight.dtype)
        grid_conv.load_state_dict(
            {
                "lin.weight": conv.lin.weight,
                **({"bias": conv.bias} if conv.bias is not None else {}),
            }
        )
        return grid_conv

    def forward(
        self,
        x: Tensor,
        grid_size: tuple[int, int],
        max_pool: bool = False,
        return_pooled_input: bool = False,
    ) -> Tensor | tuple[Tensor, tuple[int, int]] | tuple[Tensor, tuple[int, int], Tensor]:
        _check_grid_nodes(x, grid_size, "GridGCNConv")
        height, width = grid_size
        inv_sqrt_degree, stencil = _grid_gcn_constants(
            height, width, self.connectivity, x.device, x.dtype
        )
        if return_pooled_input and not max_pool:
            raise ValueError("GridGCNConv got return_pooled_input=True without max_pool=True")
        if max_pool:
            return self._forward_max_pool(
                x, grid_size, inv_sqrt_degree, stencil, return_pooled_input
            )
        if self.in_channels < self.out_channels:
            # a first layer (few inputs, many outputs): the 1x1 convolution and the stencil are
            # one 3x3 convolution with weight Theta (x) stencil, on the few input channels
            weight = self.lin.weight.view(self.out_channels, self.in_channels, 1, 1) * stencil
            images = _as_grid_batch(x * inv_sqrt_degree, grid_size, "GridGCNConv")
            out = _as_nodes(F.conv2d(images, weight, padding=1), like=x)
        else:
            h = self.lin(x) * inv_sqrt_degree
            images = _as_grid_batch(h, grid_size, "GridGCNConv")
            depthwise = stencil.expand(self.out_channels, 1, 3, 3)
            summed = F.conv2d(images, depthwise, padding=1, groups=self.out_channels)
            out = _as_nodes(summed, like=h)
        # one pass for scale and bias (not in place: an in-place op on this view of the
        # convolution's output makes autograd copy the whole map back in the backward pass)
        if self.bias is None:
            return out * inv_sqrt_degree
        return torch.addcmul(self.bias, out, inv_sqrt_degree)

    def _forward_max_pool(
        self,
        x: Tensor,
        grid_size: tuple[int, int],
        inv_sqrt_degree: Tensor,
        stencil: Tensor,
        return_pooled_input: bool,
    ) -> tuple[Tensor, tuple[int, int]] | tuple[Tensor, tuple[int, int], Tensor]:
        height, width = grid_size
        if min(height, width) < 2:
            raise ValueError(
                f"GridGCNConv with max_pool=True needs a grid of at least 2 x 2 nodes, got "
                f"{height} x {width}"
            )
        nodes = x.contiguous() if x.dim() == 3 else x.unsqueeze(0).contiguous()
        # the stencil runs on the narrower side of the 1x1 convolution: after it when the
        # convolution does not widen the features, else before it (on the whole batch at once)
        aggregate_after = self.in_channels >= self.out_channels
        pooled_x = None
        if not aggregate_after:
            if return_pooled_input:
                pooled_x, _ = GridMaxPool(2)(nodes, grid_size)
            scale = inv_sqrt_degree.view(1, 1, height, width)
            images = _as_grid_batch(nodes, grid_size, "GridGCNConv")
            nodes = _as_nodes(_normalised_stencil(images, stencil, scale), like=nodes).contiguous()
        out = _GridGCNMaxPool.apply(
            nodes,
            self.lin.weight,
            self.bias,
            grid_size,
            self.connectivity,
            aggregate_after,
            return_pooled_input and aggregate_after,
        )
        if return_pooled_input and aggregate_after:
            out, pooled_x = out
        if x.dim() == 2:
            out = out[0]
            pooled_x = None if pooled_x is None else pooled_x[0]
        pooled_size = (height // 2, width // 2)
        return (out, pooled_size, pooled_x) if return_pooled_input else (out, pooled_size)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


class _GridPool(nn.Module):
    """Shared body of the grid poolings: view nodes as an image, pool, view back."""

    pool_function: Callable[..., Tensor]  # F.max_pool2d or F.avg_pool2d, set by the subclass

    def __init__(self, kernel_size: int = 2, stride: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: Tensor, grid_size: tuple[int, int]) -> tuple[Tensor, tuple[int, int]]:
        images = _as_grid_batch(x, grid_size, self.__class__.__name__)
        pooled = self.pool_function(images, self.kernel_size, self.stride)
        return _as_nodes(pooled, like=x), (pooled.shape[2], pooled.shape[3])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class GridMaxPool(_GridPool):
    r"""Max pooling of grid node features over ``kernel_size x kernel_size`` pixel blocks,
    equal to :class:`torch.nn.MaxPool2d` (rows and columns that do not fill a block are
    dropped, as there).

    .. math::
        \mathbf{x}^{\prime}_{(r, c)} = \max_{0 \le a, b < k} \mathbf{x}_{(sr + a,\, sc + b)}

    Args:
        kernel_size (int, optional): side of the pooled blocks. (default: :obj:`2`)
        stride (int, optional): step between blocks. (default: :obj:`None`, ``kernel_size``)

    Shapes:
        - **input:** node features :math:`(HW, F)` or :math:`(B, HW, F)`, ``grid_size``
          :math:`(H, W)`
        - **output:** node features :math:`(H'W', F)` or :math:`(B, H'W', F)` and the coarser
          grid size :math:`(H', W')` (its graph: ``grid_graph(H', W')``)
    """

    pool_function = staticmethod(F.max_pool2d)


class GridAvgPool(_GridPool):
    r"""Mean pooling of grid node features over ``kernel_size x kernel_size`` pixel blocks,
    equal to :class:`torch.nn.AvgPool2d`.

    .. math::
        \mathbf{x}^{\prime}_{(r, c)} = \frac{1}{k^2} \sum_{0 \le a, b < k}
        \mathbf{x}_{(sr + a,\, sc + b)}

    Args:
        kernel_size (int, optional): side of the pooled blocks. (default: :obj:`2`)
        stride (int, optional): step between blocks. (default: :obj:`None`, ``kernel_size``)

    Shapes:
        - **input:** node features :math:`(HW, F)` or :math:`(B, HW, F)`, ``grid_size``
          :math:`(H, W)`
        - **output:** node features :math:`(H'W', F)` or :math:`(B, H'W', F)` and the coarser
          grid size :math:`(H', W')`
    """

    pool_function = staticmethod(F.avg_pool2d)
