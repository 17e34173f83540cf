from gconv.models.cnn import CNN, MLP, BasicBlock, ConvNet, lecture_cnn, mnist_cnn
from gconv.models.geometric import SplineGNN
from gconv.models.gnn import GCN, GNN
from gconv.models.grid import (
    GridGCN,
    GridGNN,
    GridNet,
    GridResidualBlock,
    NodeBatchNorm,
    PyGGridGCN,
    cnn_to_grid_gnn,
    grid_gnn_to_cnn,
)
from gconv.models.transfer import TransferModel
