"""Graph-level models: message passing, a readout, optional molecule descriptors and a head.

:class:`GNN` predicts one vector per graph (molecular property regression, graph classification,
multi-task with NaN-masked targets in the loss) with a choice of node encoder (``conv=``):

* ``"dmpnn"`` — chemprop's directed bond message passing (:class:`~gconv.layers.DMPNNConv`), the
  strongest on molecular properties with bond features;
* ``"gine"`` — stacked edge-conditioned GIN layers (PyG's :class:`~torch_geometric.nn.GINEConv`);
* ``"gcn"`` — stacked :class:`~gconv.layers.GCNConv` layers (edge features only as learned edge
  weights).

Its parts are exposed for the explainers: ``.convs`` and ``.norms`` (the node-level blocks),
``.readout`` (a :class:`~gconv.layers.Readout`) and ``.head`` (an ``nn.Linear`` by default, so
class activation maps can read its weights).

Its arguments are PyG's words (``in_channels``, ``hidden_channels``, ``num_layers``,
``out_channels``, as in :class:`torch_geometric.nn.models.BasicGNN`). The 0.1 class ``GCN`` (which
clashed with PyG's node-level ``GCN``) is deprecated: ``GNN(..., conv="gcn")`` builds the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import BatchNorm, GINEConv

from gconv._utils import warn_deprecated
from gconv.layers.activation import ACTIVATIONS
from gconv.layers.dmpnn import DMPNNConv
from gconv.layers.gcn import GCNConv
from gconv.layers.readout import AtomwiseReadout, Readout
from gconv.layers.readout import readout as make_readout

__all__ = ["GNN", "CONVS"]

#: Node encoders :class:`GNN` can be built with.
CONVS = ("dmpnn", "gine", "gcn")


class GNN(nn.Module):
    r"""Graph-level message-passing network: a node encoder, a readout, optional graph-level
    descriptors and a prediction head

    .. math::
        \mathbf{H} = \mathrm{encoder}(\mathbf{X}, \mathbf{A}, \mathbf{E}), \qquad
        \mathbf{y}_g = \mathrm{head}\big(\big[\mathrm{readout}(\{\mathbf{h}_i \mid i \in g\})
        \,\Vert\, \mathbf{d}_g\big]\big),

    where :math:`\mathbf{d}_g` are the optional molecule-level descriptors of graph :math:`g`
    (chemprop's ``x_d``: e.g. :func:`gconv.data.rdkit_descriptors`, scaled on the training split).
    With the :obj:`"atomwise"` readout (:class:`~gconv.layers.AtomwiseReadout`) the head comes
    first, on every node, and the readout pools its outputs:

    .. math::
        \mathbf{y}_g = \frac{1}{c} \sum_{i \in g} \mathrm{head}\big(\big[\mathbf{h}_i \,\Vert\,
        \mathbf{d}_g\big]\big),

    a sum of per-atom terms (an empty graph gives 0), the form of an additive property such as
    logP or a polar surface area, which :class:`~gconv.explain.ReadoutDecomposition` reads exactly.

    The encoder (:obj:`conv`):

    * :obj:`"dmpnn"`: one :class:`~gconv.layers.DMPNNConv` block with :obj:`num_layers` steps
      (chemprop's ``depth``), hidden states on directed bonds, then BatchNorm on the node
      embeddings when :obj:`batch_norm`. Needs :obj:`edge_dim`.
    * :obj:`"gine"`: :obj:`num_layers` blocks :math:`\mathbf{H}^{(l)} = \mathbf{H}^{(l-1)} +
      \mathrm{Dropout}(\sigma(\mathrm{BN}(\mathrm{GINE}(\mathbf{H}^{(l-1)}, \mathbf{E}))))`
      with PyG's :class:`~torch_geometric.nn.GINEConv` (`"Strategies for Pre-training Graph Neural
      Networks" <https://arxiv.org/abs/1905.12265>`_; a two-layer MLP per block). Needs
      :obj:`edge_dim`.
    * :obj:`"gcn"`: :obj:`num_layers` blocks :math:`\mathbf{H}^{(l)} = \mathbf{H}^{(l-1)} +
      \mathrm{Dropout}(\sigma(\mathrm{BN}(\mathbf{\hat{D}}^{-1/2} \mathbf{\hat{A}}
      \mathbf{\hat{D}}^{-1/2} \mathbf{H}^{(l-1)} \mathbf{\Theta}^{(l)})))` (`"Semi-supervised
      Classification with Graph Convolutional Networks" <https://arxiv.org/abs/1609.02907>`_); with
      :obj:`edge_dim`, edge features give each edge a learned weight :math:`e_{j,i} =
      \mathrm{sigmoid}(\mathbf{w}^{\top} \mathbf{e}_{j,i} + b) \in (0, 1)` shared by all layers.

    For the stacked encoders the residual term is dropped where the sizes differ (the first layer),
    and with :obj:`jumping_knowledge` the readout gets the concatenation :math:`[\mathbf{H}^{(1)}
    \Vert \cdots \Vert \mathbf{H}^{(L)}]` (`"Representation Learning on Graphs with Jumping
    Knowledge Networks" <https://arxiv.org/abs/1806.03536>`_).

    Args:
        in_channels (int): Size of each node feature.
        out_channels (int): Size of each graph-level output (classes or regression targets).
        conv (str, optional): Node encoder, one of :data:`CONVS`. (default: :obj:`"dmpnn"`)
        hidden_channels (int, optional): Size of the node embeddings. (default: :obj:`64`)
        num_layers (int, optional): Number of message-passing layers (steps for
            :obj:`"dmpnn"`). (default: :obj:`3`)
        readout (str or Readout, optional): Graph pooling, a name accepted by
            :func:`gconv.layers.readout` (:obj:`"sum"`, :obj:`"norm"`, :obj:`"atomwise"`,
            :obj:`"mean"`, :obj:`"max"`, :obj:`"meanmax"`, :obj:`"attention"`,
            :obj:`"set2set"`) or a module; an :class:`~gconv.layers.AtomwiseReadout` pools the
            head's per-node outputs (see above). (default: :obj:`"mean"`)
        dropout (float, optional): Dropout probability in the encoder, on the pooled features
            and in the head's hidden layers. (default: :obj:`0.0`)
        batch_norm (bool, optional): Batch-normalise node features after each message-passing
            block. (default: :obj:`True`)
        residual (bool, optional): Add each stacked layer's input to its output where the sizes
            match (:obj:`"gcn"`, :obj:`"gine"`). (default: :obj:`True`)
        edge_dim (int, optional): Size of :obj:`data.edge_attr`. (default: :obj:`None`)
        head_hidden (Sequence[int], optional): Hidden sizes of the MLP head; :obj:`()` gives a
            single ``nn.Linear`` (CAM-ready). (default: :obj:`()`)
        activation (str, optional): Non-linearity, one of :obj:`"relu"`, :obj:`"leaky_relu"`,
            :obj:`"elu"`, :obj:`"gelu"`, :obj:`"silu"`, :obj:`"tanh"`. (default: :obj:`"relu"`)
        jumping_knowledge (bool, optional): Read out the concatenated outputs of all stacked
            layers, :obj:`num_layers * hidden_channels` features per node
            (``.embedding_channels``). (default: :obj:`False`)
        descriptor_dim (int, optional): Size of the graph-level descriptors concatenated after
            the readout (``data.x_d`` of shape ``(1, D)`` per graph, or ``descriptors=``);
            :obj:`0` for none. (default: :obj:`0`)

    Shapes:
        - **input:** a PyG :class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.Batch`
          with node features :obj:`x` :math:`(|\mathcal{V}|, F_{in})`, :obj:`edge_index`
          :math:`(2, |\mathcal{E}|)`, :obj:`batch` :math:`(|\mathcal{V}|)` *(optional)*,
          :obj:`edge_attr` :math:`(|\mathcal{E}|, D)` *(with edge_dim)* and :obj:`x_d`
          :math:`(|\mathcal{G}|, D_d)` *(with descriptor_dim)*; or the same as tensors,
          ``model(x, edge_index, batch=..., edge_attr=..., descriptors=...)``
        - **output:** :math:`(|\mathcal{G}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv: str = "dmpnn",
        hidden_channels: int = 64,
        num_layers: int = 3,
        readout: str | Readout = "mean",
        dropout: float = 0.0,
        batch_norm: bool = True,
        residual: bool = True,
        edge_dim: int | None = None,
        head_hidden: Sequence[int] = (),
        activation: str = "relu",
        jumping_knowledge: bool = False,
        descriptor_dim: int = 0,
    ) -> None:
        super().__init__()
        name = self.__class__.__name__
        for argument, value in [
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("hidden_channels", hidden_channels),
            ("num_layers", num_layers),
        ]:
            _check_positive_int(name, argument, value)
        if conv not in CONVS:
            raise ValueError(f"{name} got unknown conv {conv!r}; expected one of {list(CONVS)}")
        if edge_dim is not None:
            _check_positive_int(name, "edge_dim", edge_dim)
        elif conv in ("dmpnn", "gine"):
            raise ValueError(
                f"{name}(conv={conv!r}) passes messages with edge features: give edge_dim "
                "(gconv.data.BOND_FEATURE_DIM for molecule graphs), or use conv='gcn'"
            )
        if jumping_knowledge and conv == "dmpnn":
            raise ValueError(
                f"{name}(conv='dmpnn') has one message-passing block, so jumping_knowledge has "
                "nothing to concatenate; use conv='gine' or 'gcn' for it"
            )
        if (
            isinstance(descriptor_dim, bool)
            or not isinstance(descriptor_dim, int)
            or descriptor_dim < 0
        ):
            raise ValueError(
                f"{name} expected descriptor_dim to be an int >= 0, got {descriptor_dim!r}"
            )
        if isinstance(head_hidden, int) or not isinstance(head_hidden, Sequence):
            raise TypeError(
                f"{name} expected head_hidden as a sequence of ints such as (128,), got {head_hidden!r}"
            )
        for size in head_hidden:
            _check_positive_int(name, "head_hidden sizes", size)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name} expected dropout in [0, 1), got {dropout!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"{name} got unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        embedding_channels = hidden_channels * num_layers if jumping_knowledge else hidden_channels
        if isinstance(readout, str):
            readout = make_readout(readout, in_channels=embedding_channels)  # checks the name
        elif not isinstance(readout, Readout):
            raise TypeError(
                f"{name} expected readout as a name or a gconv.layers.Readout, got "
                f"{type(readout).__name__}"
            )

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = conv
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual
        self.edge_dim = edge_dim
        self.head_hidden = tuple(head_hidden)
        self.jumping_knowledge = bool(jumping_knowledge)
        self.descriptor_dim = descriptor_dim
        #: Size of the node embeddings entering the readout (see :meth:`embed`).
        self.embedding_channels = embedding_channels

        # GCN only: one learned scalar weight per edge, in (0, 1) so that degrees stay positive.
        self.edge_encoder = (
            nn.Sequential(nn.Linear(edge_dim, 1), nn.Sigmoid())
            if conv == "gcn" and edge_dim is not None
            else None
        )
        self.convs = nn.ModuleList(
            _make_conv(
                conv, in_channels, hidden_channels, num_layers, edge_dim, dropout, activation
            )
        )
        # PyG's BatchNorm accepts a batch with a single node (one atom) in training mode.
        self.norms = nn.ModuleList(
            BatchNorm(hidden_channels, allow_single_element=True) if batch_norm else nn.Identity()
            for _ in self.convs
        )
        self.activation = ACTIVATIONS[activation]()
        self.readout = readout
        #: Whether the head runs on every node and the readout pools its outputs.
        self.atomwise = isinstance(readout, AtomwiseReadout)
        head_channels = (
            embedding_channels if self.atomwise else readout.output_channels(embedding_channels)
        )
        self.head = _make_head(
            head_channels + descriptor_dim,
            self.head_hidden,
            out_channels,
            ACTIVATIONS[activation],
            dropout,
        )

    def reset_parameters(self) -> None:
        """Re-initialise every learnable parameter."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def embed(
        self,
        data: Data | Tensor,
        edge_index: Tensor | None = None,
        *,
        edge_attr: Tensor | None = None,
    ) -> Tensor:
        r"""Node embeddings of shape ``(N, embedding_channels)``, the input of :attr:`readout`:
        :math:`\mathbf{H}^{(L)}`, or all layers' outputs concatenated with
        :obj:`jumping_knowledge`; takes the same inputs as :meth:`forward`."""
        x, edge_index, edge_attr, *_ = self._unpack(data, edge_index, edge_attr=edge_attr)
        return self._embed(x, edge_index, edge_attr)

    def forward(
        self,
        data: Data | Tensor,
        edge_index: Tensor | None = None,
        *,
        batch: Tensor | None = None,
        edge_attr: Tensor | None = None,
        num_graphs: int | None = None,
        descriptors: Tensor | None = None,
    ) -> Tensor:
        """Graph-level outputs ``(num_graphs, out_channels)`` for a PyG batch (or one graph)."""
        x, edge_index, edge_attr, batch, num_graphs, descriptors = self._unpack(
            data,
            edge_index,
            batch=batch,
            edge_attr=edge_attr,
            num_graphs=num_graphs,
            descriptors=descriptors,
        )
        node_embedding = self._embed(x, edge_index, edge_attr)
        if self.atomwise:
            return self._atomwise(node_embedding, batch, num_graphs, descriptors)
        pooled = self.readout(node_embedding, batch, num_graphs)
        if self.descriptor_dim:
            pooled = torch.cat([pooled, descriptors.to(pooled.dtype)], dim=-1)
        pooled = F.dropout(pooled, p=self.dropout, training=self.training)
        return self.head(pooled)

    def _atomwise(
        self,
        node_embedding: Tensor,
        batch: Tensor | None,
        num_graphs: int | None,
        descriptors: Tensor | None,
    ) -> Tensor:
        """The head on every node (its graph's descriptors appended), pooled by the readout."""
        if self.descriptor_dim:
            per_node = descriptors if batch is None else descriptors[batch]
            per_node = per_node.expand(node_embedding.size(0), -1) if batch is None else per_node
            node_embedding = torch.cat([node_embedding, per_node.to(node_embedding.dtype)], -1)
        node_embedding = F.dropout(node_embedding, p=self.dropout, training=self.training)
        return self.readout(self.head(node_embedding), batch, num_graphs)

    def _embed(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None) -> Tensor:
        if self.conv == "dmpnn":
            return self.norms[0](self.convs[0](x, edge_index, edge_attr))
        # GINE reads the edge features; GCN a learned scalar weight per edge (or none).
        edge_input = edge_attr if self.conv == "gine" else None
        if self.edge_encoder is not None:
            edge_input = self.edge_encoder(edge_attr).squeeze(-1)
        layer_outputs = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = self.activation(norm(conv(x, edge_index, edge_input)))
            h = F.dropout(h, p=self.dropout, training=self.training)
            x = x + h if self.residual and x.shape == h.shape else h
            layer_outputs.append(x)
        return torch.cat(layer_outputs, dim=-1) if self.jumping_knowledge else x

    def _unpack(
        self,
        data: Data | Tensor,
        edge_index: Tensor | None,
        *,
        batch: Tensor | None = None,
        edge_attr: Tensor | None = None,
        num_graphs: int | None = None,
        descriptors: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, int | None, Tensor | None]:
        """(x, edge_index, edge_attr, batch, num_graphs, descriptors) from a batch or tensors."""
        name = self.__class__.__name__
        if isinstance(data, Tensor):
            x = data
            if edge_index is None:
                raise ValueError(
                    f"{name} got node features without edge_index; pass model(x, edge_index)"
                )
        elif isinstance(data, Data):
            x, edge_index = data.x, data.edge_index
            batch = getattr(data, "batch", None)
            edge_attr = getattr(data, "edge_attr", None)
            num_graphs = getattr(data, "num_graphs", None) if batch is not None else 1
            if descriptors is None:
                descriptors = getattr(data, "x_d", None)
            if x is None or edge_index is None:
                raise ValueError(f"{name} expected a PyG Data/Batch with x and edge_index")
        else:
            raise TypeError(
                f"{name} expected a PyG Data/Batch or node features x with edge_index, got "
                f"{type(data).__name__}"
            )
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(
                f"{name} expected node features of shape (N, {self.in_channels}), got {tuple(x.shape)}"
            )
        if not torch.is_floating_point(x):
            raise TypeError(f"{name} expected floating-point node features, got dtype {x.dtype}")
        if self.edge_dim is not None:
            if edge_attr is None:
                raise ValueError(
                    f"{name} was built with edge_dim={self.edge_dim} but got no edge_attr"
                )
            if edge_attr.shape != (edge_index.size(1), self.edge_dim):
                raise ValueError(
                    f"{name} expected edge_attr of shape ({edge_index.size(1)}, {self.edge_dim}), "
                    f"got {tuple(edge_attr.shape)}"
                )
        if self.descriptor_dim:
            if descriptors is None:
                raise ValueError(
                    f"{name} was built with descriptor_dim={self.descriptor_dim} but got no "
                    "descriptors: set data.x_d (shape (1, D) per graph) or pass descriptors="
                )
            if descriptors.dim() != 2 or descriptors.size(-1) != self.descriptor_dim:
                raise ValueError(
                    f"{name} expected descriptors of shape (num_graphs, {self.descriptor_dim}), "
                    f"got {tuple(descriptors.shape)}"
                )
        return x, edge_index, edge_attr, batch, num_graphs, descriptors

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"conv={self.conv!r}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
            f"readout={self.readout}"
            + (", jumping_knowledge=True" if self.jumping_knowledge else "")
            + (f", descriptor_dim={self.descriptor_dim}" if self.descriptor_dim else "")
            + ")"
        )


class GCN(GNN):
    r"""Deprecated: ``GNN(in_channels, out_channels, conv="gcn", ...)`` builds the same model.

    ``GCN(in_channels, out_channels, ...)`` takes :class:`GNN`'s arguments after ``conv`` (in
    :class:`GNN`'s order, positionally too) and warns; its ``repr`` leaves ``conv`` out, as in 0.1.
    The name clashed with PyG's node-level :class:`torch_geometric.nn.models.GCN`.
    """

    def __init__(self, in_channels: int, out_channels: int, *args, **kwargs) -> None:
        warn_deprecated("gconv.models.GCN", 'gconv.models.GNN(..., conv="gcn")')
        if "conv" in kwargs:
            raise TypeError("GCN() got an unexpected keyword argument 'conv'")
        super().__init__(in_channels, out_channels, "gcn", *args, **kwargs)

    def __repr__(self) -> str:
        return super().__repr__().replace("conv='gcn', ", "", 1)


def _make_conv(
    conv: str,
    in_channels: int,
    hidden_channels: int,
    num_layers: int,
    edge_dim: int | None,
    dropout: float,
    activation: str,
) -> list[nn.Module]:
    """The encoder's node-level modules: one DMPNN block, or one conv per layer."""
    if conv == "dmpnn":
        return [
            DMPNNConv(
                in_channels,
                edge_dim,
                hidden_channels,
                depth=num_layers,
                dropout=dropout,
                activation=activation,
            )
        ]
    sizes = [in_channels] + [hidden_channels] * num_layers
    if conv == "gcn":
        return [GCNConv(a, b) for a, b in pairwise(sizes)]
    return [  # gine: a two-layer MLP per layer, edge features projected to the input size
        GINEConv(
            nn.Sequential(nn.Linear(a, b), ACTIVATIONS[activation](), nn.Linear(b, b)),
            edge_dim=edge_dim,
        )
        for a, b in pairwise(sizes)
    ]


def _make_head(
    in_channels: int,
    hidden: tuple[int, ...],
    out_channels: int,
    activation: type[nn.Module],
    dropout: float,
) -> nn.Module:
    """A single ``nn.Linear`` without hidden sizes, else Linear -> act -> Dropout blocks."""
    if not hidden:
        return nn.Linear(in_channels, out_channels)
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(in_channels, size), activation(), nn.Dropout(dropout)]
        in_channels = size
    layers.append(nn.Linear(in_channels, out_channels))
    return nn.Sequential(*layers)


def _check_positive_int(owner: str, argument: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner} expected {argument} to be a positive int, got {value!r}")
