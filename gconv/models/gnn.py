"""Graph-level GCN: stacked :class:`~gconv.layers.GCNConv` blocks, a readout and a head.

:class:`GCN` predicts one vector per graph (molecular property regression, graph classification,
multi-task with NaN-masked targets in the loss). Its parts are exposed for the explainers:
``.convs`` and ``.norms`` (the node-level blocks), ``.readout`` (a :class:`~gconv.layers.Readout`)
and ``.head`` (an ``nn.Linear`` by default, so class activation maps can read its weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import BatchNorm

from gconv.layers.gcn import GCNConv
from gconv.layers.readout import Readout
from gconv.layers.readout import readout as make_readout
from gconv.models.cnn import ACTIVATIONS

__all__ = ["GCN"]


class GCN(nn.Module):
    r"""Graph-level GCN from the `"Semi-supervised Classification with Graph Convolutional
    Networks" <https://arxiv.org/abs/1609.02907>`_ paper, with a readout and a prediction head

    .. math::
        \mathbf{H}^{(l)} = \mathbf{H}^{(l-1)} + \mathrm{Dropout}\Big(\sigma\big(\mathrm{BN}
        \big(\mathbf{\hat{D}}^{-1/2} \mathbf{\hat{A}} \mathbf{\hat{D}}^{-1/2} \mathbf{H}^{(l-1)}
        \mathbf{\Theta}^{(l)}\big)\big)\Big), \qquad
        \mathbf{y}_g = \mathrm{head}\big(\mathrm{readout}(\{\mathbf{h}^{(L)}_i \mid i \in g\})\big),

    with :math:`\mathbf{H}^{(0)} = \mathbf{X}`; with :obj:`jumping_knowledge`, the readout gets the
    concatenation :math:`[\mathbf{H}^{(1)} \Vert \cdots \Vert \mathbf{H}^{(L)}]` of every layer's
    output instead of :math:`\mathbf{H}^{(L)}` (`"Representation Learning on Graphs with Jumping
    Knowledge Networks" <https://arxiv.org/abs/1806.03536>`_), so substructures of every radius
    reach the head directly. The residual term is dropped in the first layer
    when :obj:`in_channels` differs from :obj:`hidden_channels`. With :obj:`edge_dim`, edge
    features give each edge a learned weight :math:`e_{j,i} = \mathrm{sigmoid}(\mathbf{w}^{\top}
    \mathbf{e}_{j,i} + b) \in (0, 1)` shared by all layers.

    Args:
        in_channels (int): Size of each node feature.
        out_channels (int): Size of each graph-level output (classes or regression targets).
        hidden_channels (int, optional): Size of the node embeddings. (default: :obj:`64`)
        num_layers (int, optional): Number of GCN layers. (default: :obj:`3`)
        readout (str or Readout, optional): Graph pooling, a name accepted by
            :func:`gconv.layers.readout` (:obj:`"sum"`, :obj:`"mean"`, :obj:`"max"`,
            :obj:`"meanmax"`, :obj:`"attention"`, :obj:`"set2set"`) or a module.
            (default: :obj:`"mean"`)
        dropout (float, optional): Dropout probability after each layer, on the pooled features
            and in the head's hidden layers. (default: :obj:`0.0`)
        batch_norm (bool, optional): Batch-normalise node features after each convolution.
            (default: :obj:`True`)
        residual (bool, optional): Add each layer's input to its output where the sizes match.
            (default: :obj:`True`)
        edge_dim (int, optional): Size of :obj:`data.edge_attr`; if given, edge features set
            the GCN edge weights. (default: :obj:`None`)
        head_hidden (Sequence[int], optional): Hidden sizes of the MLP head; :obj:`()` gives a
            single ``nn.Linear`` (CAM-ready). (default: :obj:`()`)
        activation (str, optional): Non-linearity, one of :obj:`"relu"`, :obj:`"leaky_relu"`,
            :obj:`"elu"`, :obj:`"gelu"`, :obj:`"silu"`, :obj:`"tanh"`. (default: :obj:`"relu"`)
        jumping_knowledge (bool, optional): Read out the concatenated outputs of all layers,
            :obj:`num_layers * hidden_channels` features per node (``.embedding_channels``);
            a :class:`~gconv.layers.Readout` module passed as :obj:`readout` must accept that
            size. (default: :obj:`False`)

    Shapes:
        - **input:** a PyG :class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.Batch`
          with node features :obj:`x` :math:`(|\mathcal{V}|, F_{in})`, :obj:`edge_index`
          :math:`(2, |\mathcal{E}|)`, :obj:`batch` :math:`(|\mathcal{V}|)` *(optional)* and
          :obj:`edge_attr` :math:`(|\mathcal{E}|, D)` *(with edge_dim)*; or the same as tensors,
          ``model(x, edge_index, batch=..., edge_attr=...)``
        - **output:** :math:`(|\mathcal{G}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
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
    ) -> None:
        super().__init__()
        for argument, value in [
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("hidden_channels", hidden_channels),
            ("num_layers", num_layers),
        ]:
            _check_positive_int(argument, value)
        if edge_dim is not None:
            _check_positive_int("edge_dim", edge_dim)
        if isinstance(head_hidden, int) or not isinstance(head_hidden, Sequence):
            raise TypeError(
                f"GCN expected head_hidden as a sequence of ints such as (128,), got {head_hidden!r}"
            )
        for size in head_hidden:
            _check_positive_int("head_hidden sizes", size)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GCN expected dropout in [0, 1), got {dropout!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"GCN got unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        embedding_channels = hidden_channels * num_layers if jumping_knowledge else hidden_channels
        if isinstance(readout, str):
            readout = make_readout(readout, in_channels=embedding_channels)  # checks the name
        elif not isinstance(readout, Readout):
            raise TypeError(
                f"GCN expected readout as a name or a gconv.layers.Readout, got "
                f"{type(readout).__name__}"
            )

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual
        self.edge_dim = edge_dim
        self.head_hidden = tuple(head_hidden)
        self.jumping_knowledge = bool(jumping_knowledge)
        #: Size of the node embeddings entering the readout (see :meth:`embed`).
        self.embedding_channels = embedding_channels

        # One learned scalar weight per edge, in (0, 1) so that GCN degrees stay positive.
        self.edge_encoder = (
            nn.Sequential(nn.Linear(edge_dim, 1), nn.Sigmoid()) if edge_dim is not None else None
        )
        self.convs = nn.ModuleList(
            GCNConv(in_channels if layer == 0 else hidden_channels, hidden_channels)
            for layer in range(num_layers)
        )
        # PyG's BatchNorm accepts a batch with a single node (one atom) in training mode.
        self.norms = nn.ModuleList(
            BatchNorm(hidden_channels, allow_single_element=True) if batch_norm else nn.Identity()
            for _ in range(num_layers)
        )
        self.activation = ACTIVATIONS[activation]()
        self.readout = readout
        self.head = _make_head(
            readout.output_channels(embedding_channels),
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
        x, edge_index, edge_attr, _, _ = self._unpack(data, edge_index, edge_attr=edge_attr)
        return self._embed(x, edge_index, edge_attr)

    def forward(
        self,
        data: Data | Tensor,
        edge_index: Tensor | None = None,
        *,
        batch: Tensor | None = None,
        edge_attr: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> Tensor:
        """Graph-level outputs ``(num_graphs, out_channels)`` for a PyG batch (or one graph)."""
        x, edge_index, edge_attr, batch, num_graphs = self._unpack(
            data, edge_index, batch=batch, edge_attr=edge_attr, num_graphs=num_graphs
        )
        node_embedding = self._embed(x, edge_index, edge_attr)
        pooled = self.readout(node_embedding, batch, num_graphs)
        pooled = F.dropout(pooled, p=self.dropout, training=self.training)
        return self.head(pooled)

    def _embed(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None) -> Tensor:
        edge_weight = None
        if self.edge_encoder is not None:
            edge_weight = self.edge_encoder(edge_attr).squeeze(-1)
        layer_outputs = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = self.activation(norm(conv(x, edge_index, edge_weight)))
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
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, int | None]:
        """(x, edge_index, edge_attr, batch, num_graphs) from a PyG batch or from tensors."""
        if isinstance(data, Tensor):
            x = data
            if edge_index is None:
                raise ValueError(
                    "GCN got node features without edge_index; pass model(x, edge_index)"
                )
        elif isinstance(data, Data):
            x, edge_index = data.x, data.edge_index
            batch = getattr(data, "batch", None)
            edge_attr = getattr(data, "edge_attr", None)
            num_graphs = getattr(data, "num_graphs", None) if batch is not None else 1
            if x is None or edge_index is None:
                raise ValueError("GCN expected a PyG Data/Batch with x and edge_index")
        else:
            raise TypeError(
                "GCN expected a PyG Data/Batch or node features x with edge_index, got "
                f"{type(data).__name__}"
            )
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(
                f"GCN expected node features of shape (N, {self.in_channels}), got {tuple(x.shape)}"
            )
        if not torch.is_floating_point(x):
            raise TypeError(f"GCN expected floating-point node features, got dtype {x.dtype}")
        if self.edge_encoder is not None:
            if edge_attr is None:
                raise ValueError(
                    f"GCN was built with edge_dim={self.edge_dim} but got no edge_attr"
                )
            if edge_attr.shape != (edge_index.size(1), self.edge_dim):
                raise ValueError(
                    f"GCN expected edge_attr of shape ({edge_index.size(1)}, {self.edge_dim}), "
                    f"got {tuple(edge_attr.shape)}"
                )
        return x, edge_index, edge_attr, batch, num_graphs

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
            f"readout={self.readout}"
            + (", jumping_knowledge=True" if self.jumping_knowledge else "")
            + ")"
        )


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


def _check_positive_int(argument: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"GCN expected {argument} to be a positive int, got {value!r}")
