r"""The naive-PyG reference of :class:`gconv.models.GridGCN`, for the benchmarks and the tests.

:class:`PyGGridGCN` runs a trained (or fresh) ``GridGCN``'s own parameters the way plain PyG runs a
GCN on images: one graph per image, block-diagonal batches, :class:`torch_geometric.nn.GCNConv`
message passing, :func:`torch_geometric.nn.max_pool` over pixel clusters. It is the speed
reference of ``benchmarks/bench_grid.py`` and ``examples/compare_grid_vs_cnn.py`` and the
correctness reference of ``tests/models/test_grid_models.py``; it lived in ``gconv.models.grid``
until 0.1 and is not part of the installed package.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gconv.models import GridGCN
from gconv.models.grid import position_encoding

__all__ = ["PyGGridGCN"]


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
