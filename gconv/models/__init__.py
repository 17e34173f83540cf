from gconv.models.cnn import CNN, MLP, lecture_cnn, mnist_cnn
from gconv.models.gnn import GCN, GNN
from gconv.models.grid import (
    GridGCN,
    GridGNN,
    GridNet,
    NodeBatchNorm,
    PyGGridGCN,
    cnn_to_grid_gnn,
)
from gconv.models.transfer import TransferModel
