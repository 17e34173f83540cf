from gconv.layers.dmpnn import DMPNNConv, reverse_edge_index
from gconv.layers.gcn import GCNConv, gcn_norm
from gconv.layers.grid import GridAvgPool, GridConv, GridGCNConv, GridMaxPool, grid_gcn_norm
from gconv.layers.readout import (
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
