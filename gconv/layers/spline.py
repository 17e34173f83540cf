r"""A graph convolution whose filter is a continuous function of the neighbour's relative
position: :class:`BSplineConv`, a degree-1 (bilinear) B-spline kernel, as in SplineCNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from gconv.layers.grid import grid_conv2d

__all__ = ["BSplineConv", "bspline_basis"]


def bspline_basis(edge_attr: Tensor, kernel_size: int, spacing: float) -> tuple[Tensor, Tensor]:
    r"""Degree-1 B-spline (hat function) basis of relative positions on a ``k x k`` kernel grid.

    The control points sit at offsets :math:`(a - r)\,s` for :math:`a = 0, \dots, k - 1`,
    :math:`r = \lfloor k / 2 \rfloor`, in each coordinate. An offset :math:`(dx, dy)` is mapped to
    :math:`u = (dx / s + r, dy / s + r)`, clamped to :math:`[0, k - 1]^2` (open spline: farther
    neighbours take the border weights), and its weight on control point :math:`(a, b)` is
    :math:`\max(0, 1 - |u_y - a|) \cdot \max(0, 1 - |u_x - b|)`: at most 4 non-zero weights,
    summing to one, and exactly one (a one-hot tap) when the offset is a multiple of :math:`s`.

    Args:
        edge_attr (Tensor): ``(E, 2)`` relative positions ``(dx, dy)``.
        kernel_size (int): ``k``, the control points per coordinate.
        spacing (float): ``s``, the distance between control points.

    Returns:
        ``(taps, weights)``: both ``(E, 4)``; ``taps`` the row-major kernel index ``a * k + b``
        (``a`` for ``dy``, as ``Conv2d``'s weight ``[:, :, a, b]``), ``weights`` the basis values.
    """
    radius = kernel_size // 2
    u = (edge_attr.to(torch.float32) / spacing + radius).clamp(0, kernel_size - 1)
    low = u.floor().clamp(max=kernel_size - 2) if kernel_size > 1 else u.floor()
    frac = u - low  # in [0, 1]
    low = low.long()
    ux, uy = low[:, 0], low[:, 1]
    fx, fy = frac[:, 0], frac[:, 1]
    if kernel_size == 1:
        taps = torch.zeros(edge_attr.shape[0], 4, dtype=torch.long, device=edge_attr.device)
        weights = torch.zeros(edge_attr.shape[0], 4, device=edge_attr.device)
        weights[:, 0] = 1.0
        return taps, weights
    taps = torch.stack(
        [
            uy * kernel_size + ux,
            uy * kernel_size + ux + 1,
            (uy + 1) * kernel_size + ux,
            (uy + 1) * kernel_size + ux + 1,
        ],
        dim=1,
    )
    weights = torch.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], dim=1)
    return taps, weights


class BSplineConv(nn.Module):
    r"""A continuous-kernel graph convolution on node positions: the spline convolution of
    `"SplineCNN: Fast Geometric Deep Learning with Continuous B-Spline Kernels"
    <https://arxiv.org/abs/1711.08920>`_ with degree-1 (bilinear) B-splines in 2-D.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{\Theta}(\mathbf{0})^{\top} \mathbf{x}_i +
        \sum_{j \in \mathcal{N}(i)} \mathbf{\Theta}(\mathbf{d}_{j,i})^{\top} \mathbf{x}_j
        + \mathbf{b}, \qquad
        \mathbf{\Theta}(\mathbf{d}) = \sum_{a, b} B_a(d_y / s + r)\, B_b(d_x / s + r)\,
        \mathbf{\Theta}_{a, b}

    with :math:`\mathbf{d}_{j,i} = \mathrm{pos}_j - \mathrm{pos}_i` given as ``edge_attr``, a
    ``k x k`` grid of weight matrices :math:`\mathbf{\Theta}_{a, b}` (control points :math:`s`
    apart) and hat functions :math:`B` (see :func:`bspline_basis`). The node itself is its own
    neighbour at offset :math:`\mathbf{0}` (the centre control point), so graphs need no self
    loops (self-loop edges are ignored).

    **Why B-splines** (over MoNet's Gaussians, PointNet-style MLP kernels or Chebyshev
    polynomials): the filter is a function of the *direction and distance* to each neighbour,
    so it sees orientation, which an isotropic or spectral (Chebyshev) filter on a fixed
    Laplacian cannot without extra features; its parameters are a plain ``k x k`` grid, and on
    a regular grid whose pitch is :math:`s` every offset hits one control point, so the layer
    **is** a ``k x k`` ``Conv2d`` there (weight ``[out, in, k, k]`` in ``Conv2d`` layout:
    :math:`\mathbf{\Theta}_{a,b}` = ``weight[:, :, a, b].T``). Between control points (on
    superpixels, meshes, point clouds) the kernel interpolates bilinearly, so the same weights
    run unchanged on irregular graphs. An MLP kernel would be more flexible but never exactly a
    CNN, and far slower per edge.

    Two paths compute the same thing on the grid:

    * ``forward(x, edge_index, edge_attr)``: message passing on any graph with relative positions;
      one matmul computes :math:`\mathbf{x}_j \mathbf{\Theta}_{a,b}` for every node and control
      point, each edge then mixes its (at most) 4 control points' rows.
    * ``forward(x, grid_size=(H, W))``: the static-grid fast path for full grids in row-major
      order (pitch :math:`s`, connectivity :math:`k^2 - 1`): one ``conv2d``.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        kernel_size (int, optional): control points per coordinate (odd). (default: :obj:`3`)
        spacing (float, optional): distance :math:`s` between control points, in the unit of
            the positions. (default: :obj:`1.0`, one pixel)
        bias (bool, optional): learn an additive bias. (default: :obj:`True`)
        aggr (str, optional): ``"add"`` (a convolution) or ``"mean"`` (SplineCNN's choice;
            on the grid it divides by the neighbour count, so it is no longer a ``Conv2d``).
            (default: :obj:`"add"`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)` and relative positions :math:`(|\mathcal{E}|, 2)`; *or*
          :math:`(B, HW, F_{in})` / :math:`(HW, F_{in})` with ``grid_size`` :math:`(H, W)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})` (or batched as the input)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        spacing: float = 1.0,
        bias: bool = True,
        aggr: str = "add",
    ) -> None:
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"BSplineConv expected an odd kernel_size >= 1, got {kernel_size!r}")
        if not spacing > 0:
            raise ValueError(f"BSplineConv expected spacing > 0, got {spacing!r}")
        if aggr not in ("add", "mean"):
            raise ValueError(f"BSplineConv expected aggr 'add' or 'mean', got {aggr!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.spacing = float(spacing)
        self.aggr = aggr
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's initialisation, so a BSplineConv network and a CNN start alike
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        if self.bias is not None:
            bound = 1 / (self.in_channels * self.kernel_size**2) ** 0.5
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | None = None,
        edge_attr: Tensor | None = None,
        grid_size: tuple[int, int] | None = None,
    ) -> Tensor:
        if grid_size is not None:
            if self.aggr != "add":
                raise ValueError("BSplineConv's grid fast path is a conv2d: it needs aggr='add'")
            return grid_conv2d(self, x, grid_size, edge_index)
        self._check_edges(x, edge_index, edge_attr)
        num_nodes, num_taps, k = x.shape[0], self.kernel_size**2, self.kernel_size
        keep = edge_index[0] != edge_index[1]  # the node itself is the centre tap below
        source, target = edge_index[0, keep], edge_index[1, keep]
        taps, basis = bspline_basis(edge_attr[keep], k, self.spacing)
        # x_j Theta_{a,b} for every node and control point: (N * k * k, out)
        weight = self.weight.permute(1, 2, 3, 0).reshape(self.in_channels, -1)
        per_tap = (x @ weight).view(num_nodes * num_taps, self.out_channels)
        rows = per_tap[(source.unsqueeze(1) * num_taps + taps).view(-1)]
        messages = (rows.view(-1, 4, self.out_channels) * basis.unsqueeze(-1).to(x.dtype)).sum(1)
        centre = x @ self.weight[:, :, k // 2, k // 2].t()
        if self.aggr == "mean":  # the node counts as one of its neighbours
            summed = scatter(messages, target, 0, dim_size=num_nodes, reduce="sum")
            count = scatter(torch.ones_like(target, dtype=x.dtype), target, 0, num_nodes, "sum")
            out = (centre + summed) / (count + 1).unsqueeze(1)
        else:
            out = centre + scatter(messages, target, 0, dim_size=num_nodes, reduce="sum")
        return out if self.bias is None else out + self.bias

    def _check_edges(self, x: Tensor, edge_index: Tensor | None, edge_attr: Tensor | None):
        if x.dim() != 2:
            raise ValueError(
                f"BSplineConv expected node features (N, C) with edge_index, got {tuple(x.shape)}"
            )
        if edge_index is None or edge_index.dim() != 2 or edge_index.shape[0] != 2:
            shape = None if edge_index is None else tuple(edge_index.shape)
            raise ValueError(f"BSplineConv expected edge_index of shape (2, E), got {shape}")
        if edge_attr is None or edge_attr.dim() != 2 or edge_attr.shape[1] != 2:
            shape = None if edge_attr is None else tuple(edge_attr.shape)
            raise ValueError(
                "BSplineConv expected edge_attr with 2 columns, the relative positions "
                f"pos[j] - pos[i] = (dx, dy), got {shape}"
            )
        if edge_attr.shape[0] != edge_index.shape[1]:
            raise ValueError(
                f"BSplineConv got {edge_index.shape[1]} edges but {edge_attr.shape[0]} rows of "
                "edge_attr"
            )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, spacing={self.spacing:g})"
        )
