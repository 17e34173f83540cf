"""Layers: graph convolutions, grid layers and readouts, written against node features.

* :mod:`gconv.layers.gcn`: :class:`GCNConv` (equal to PyG's) and :func:`gcn_norm`.
* :mod:`gconv.layers.grid`: the direction-aware :class:`GridConv` (exactly a ``Conv2d`` on a grid),
  the isotropic :class:`GridGCNConv`, :class:`GridMaxPool` / :class:`GridAvgPool`,
  :func:`grid_gcn_norm` and the shared static-grid fast path :func:`grid_conv2d`.
* :mod:`gconv.layers.spline`: :class:`BSplineConv`, a continuous kernel on node positions, and
  :func:`bspline_basis`.
* :mod:`gconv.layers.dmpnn`: chemprop's directed message passing :class:`DMPNNConv` and
  :func:`reverse_edge_index`.
* :mod:`gconv.layers.readout`: :class:`Readout` and its subclasses, :func:`readout` by name.
* :mod:`gconv.layers.activation`: the one table of activations, ``ACTIVATIONS``.

Importing this package loads neither RDKit nor torchvision.
"""

from gconv.layers.dmpnn import DMPNNConv, reverse_edge_index
from gconv.layers.gcn import GCNConv, gcn_norm
from gconv.layers.grid import (
    GridAvgPool,
    GridConv,
    GridGCNConv,
    GridMaxPool,
    grid_conv2d,
    grid_gcn_norm,
)
from gconv.layers.readout import (
    AtomwiseReadout,
    AttentionReadout,
    MaxReadout,
    MeanMaxReadout,
    MeanReadout,
    NormReadout,
    Readout,
    Set2SetReadout,
    SumReadout,
    readout,
)
from gconv.layers.spline import BSplineConv, bspline_basis

__all__ = [
    "GCNConv",
    "gcn_norm",
    "GridConv",
    "GridGCNConv",
    "GridMaxPool",
    "GridAvgPool",
    "grid_conv2d",
    "grid_gcn_norm",
    "BSplineConv",
    "bspline_basis",
    "DMPNNConv",
    "reverse_edge_index",
    "Readout",
    "SumReadout",
    "NormReadout",
    "AtomwiseReadout",
    "MeanReadout",
    "MaxReadout",
    "MeanMaxReadout",
    "AttentionReadout",
    "Set2SetReadout",
    "readout",
]
