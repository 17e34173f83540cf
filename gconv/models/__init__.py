"""Models: image classifiers that take ``[B, C, H, W]`` and graph models that take a PyG batch.

* :mod:`gconv.models.cnn`: :class:`CNN` (with ResNet :class:`BasicBlock` stages),
  :class:`ConvNet`, :func:`lecture_cnn`, the :class:`MLP` baseline.
* :mod:`gconv.models.grid`: grid GNNs that take images like a CNN: :class:`GridNet`,
  :class:`GridGNN` (the :class:`CNN` as a grid GNN), :class:`GridResidualBlock`,
  :class:`NodeBatchNorm`, the isotropic :class:`GridGCN`.
* :mod:`gconv.models.convert`: :func:`cnn_to_grid_gnn` and its inverse :func:`grid_gnn_to_cnn`.
* :mod:`gconv.models.geometric`: :class:`SplineGNN`, on grids and on graphs with positions.
* :mod:`gconv.models.gnn`: the graph-level :class:`GNN` (D-MPNN, GINE or GCN encoder).
* :mod:`gconv.models.transfer`: :class:`TransferModel` (torchvision backbones, CAM-ready head).

One vocabulary (``docs/design.md``): image models take ``in_shape=(C, H, W)`` and return
``num_classes`` logits, with ``channels`` (one width per conv stage), ``hidden_channels`` /
``num_layers`` (a uniform stack) and ``head_hidden`` (the classifier head's hidden widths);
graph models speak PyG's ``in_channels``, ``hidden_channels``, ``num_layers``, ``out_channels``.
The 0.1 names (``GCN``, ``mnist_cnn``, ``PyGGridGCN``, ``hidden=`` ...) still work until 0.3,
with a ``DeprecationWarning`` naming the new one.
"""

from gconv.models._utils import moved_to_benchmarks
from gconv.models.cnn import CNN, MLP, BasicBlock, ConvNet, lecture_cnn
from gconv.models.cnn import mnist_cnn as mnist_cnn  # deprecated (lecture_cnn): warns when called
from gconv.models.convert import cnn_to_grid_gnn, grid_gnn_to_cnn
from gconv.models.geometric import SplineGNN
from gconv.models.gnn import GCN as GCN  # deprecated (GNN(conv="gcn")): warns when built
from gconv.models.gnn import GNN
from gconv.models.grid import GridGCN, GridGNN, GridNet, GridResidualBlock, NodeBatchNorm
from gconv.models.transfer import TransferModel

# moved in 0.2: the naive-PyG reference of GridGCN left the package for benchmarks/
__getattr__ = moved_to_benchmarks(__name__, {"PyGGridGCN": "pyg_grid_gcn.py"})
del moved_to_benchmarks

__all__ = [
    "CNN",
    "BasicBlock",
    "ConvNet",
    "MLP",
    "lecture_cnn",
    "GridNet",
    "GridGNN",
    "GridResidualBlock",
    "NodeBatchNorm",
    "GridGCN",
    "cnn_to_grid_gnn",
    "grid_gnn_to_cnn",
    "SplineGNN",
    "GNN",
    "TransferModel",
]
