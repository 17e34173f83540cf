r"""Directed message passing on bonds (D-MPNN), the encoder of chemprop.

:func:`reverse_edge_index` pairs every directed edge with its reverse in one sort (no Python loop
over edges); :class:`DMPNNConv` runs the whole bond message-passing block of
`"Analyzing Learned Molecular Representations for Property Prediction"
<https://arxiv.org/abs/1904.01561>`_ and equals chemprop v2's
``chemprop.nn.BondMessagePassing`` (outputs and gradients) given the same weights, on any PyG
``Data`` / ``Batch`` whose edges come in both directions with ``edge_attr``.

Hidden states live on directed edges rather than on nodes. An edge :math:`v \to w` collects the
states of the edges entering :math:`v` *except its own reverse* :math:`w \to v`, so a message never
flows straight back to where it came from (no "tottering"), which is what lets D-MPNN beat
node-centred convolutions on molecular properties.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gconv.layers.activation import ACTIVATIONS

__all__ = ["reverse_edge_index", "DMPNNConv"]


def reverse_edge_index(edge_index: Tensor, num_nodes: int | None = None) -> Tensor:
    r"""For every edge :math:`k = (i \to j)`, the position of the edge :math:`(j \to i)`.

    One sort of the edge keys :math:`i N + j` and one binary search, so the cost is
    :math:`O(|\mathcal{E}| \log |\mathcal{E}|)` on the edges' device with no Python loop.
    Duplicate edges map to the first copy of their reverse.

    Args:
        edge_index (torch.Tensor): Edge indices :math:`(2, |\mathcal{E}|)` (source, target).
        num_nodes (int, optional): Number of nodes; ``edge_index.max() + 1`` when :obj:`None`.
            (default: :obj:`None`)

    Returns:
        LongTensor :math:`(|\mathcal{E}|)`.

    Raises:
        ValueError: if an edge has no reverse (a directed graph), naming the first one and the
            fix (``torch_geometric.utils.to_undirected``).
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"reverse_edge_index expected edge_index of shape (2, E), got {tuple(edge_index.shape)}"
        )
    num_edges = edge_index.size(1)
    if num_edges == 0:
        return edge_index.new_empty(0)
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1
    source, target = edge_index[0].long(), edge_index[1].long()
    key = source * num_nodes + target
    sorted_key, order = torch.sort(key, stable=True)
    reverse_key = target * num_nodes + source
    position = torch.searchsorted(sorted_key, reverse_key).clamp_(max=num_edges - 1)
    found = sorted_key[position] == reverse_key
    if not bool(found.all()):
        k = int((~found).nonzero()[0])
        raise ValueError(
            f"DMPNN needs every edge in both directions, but edge {k} "
            f"({int(source[k])} -> {int(target[k])}) has no reverse; make the graph undirected "
            "with torch_geometric.utils.to_undirected (molecule graphs from gconv.data already are)"
        )
    return order[position]


class DMPNNConv(nn.Module):
    r"""Directed message-passing neural network on bonds (chemprop's ``BondMessagePassing``)
    from the `"Analyzing Learned Molecular Representations for Property Prediction"
    <https://arxiv.org/abs/1904.01561>`_ paper

    .. math::
        \mathbf{H}^{(0)} &= \mathbf{W}_i \left[ \mathbf{X}_{\mathrm{src}} \Vert \mathbf{E}
        \right], \qquad
        \mathbf{H}^{(t)} = \sigma\!\left( \mathbf{H}^{(0)} + \mathbf{W}_h \left(
        \mathbf{B}^{\top}_{\mathrm{in}} \mathbf{A}_{\mathrm{in}} \sigma(\mathbf{H}^{(t-1)})
        - \mathbf{R}\, \sigma(\mathbf{H}^{(t-1)}) \right) \right) \\
        \mathbf{X}^{\prime} &= \sigma\!\left( \mathbf{W}_o \left[ \mathbf{X} \Vert
        \mathbf{A}_{\mathrm{in}} \mathbf{H}^{(T-1)} \right] + \mathbf{b}_o \right),

    with :math:`\mathbf{A}_{\mathrm{in}}` the node-by-edge incidence of incoming edges and
    :math:`\mathbf{R}` the edge-reversal permutation. Edge-wise, for the directed edge
    :math:`v \to w` with features :math:`\mathbf{e}_{vw}`:

    .. math::
        \mathbf{h}^{(0)}_{vw} &= \mathbf{W}_i [\mathbf{x}_v \Vert \mathbf{e}_{vw}], \qquad
        \mathbf{m}^{(t)}_{vw} = \sum_{u \in \mathcal{N}(v) \setminus \{w\}}
        \mathbf{h}^{(t-1)}_{uv}, \qquad
        \mathbf{h}^{(t)}_{vw} = \sigma\big(\mathbf{h}^{(0)}_{vw} + \mathbf{W}_h
        \mathbf{m}^{(t)}_{vw}\big), \\
        \mathbf{x}^{\prime}_w &= \sigma\Big(\mathbf{W}_o \big[\mathbf{x}_w \Vert
        \textstyle\sum_{v \in \mathcal{N}(w)} \mathbf{h}^{(T-1)}_{vw}\big] + \mathbf{b}_o\Big),

    for :math:`t = 1, \dots, T - 1` where :math:`T` is :obj:`depth` (as in chemprop, the
    initial projection counts as the first step, so :obj:`depth` = 3 passes messages twice), and
    :math:`\mathbf{h}^{(t-1)}` in the message is the activated state (:math:`\sigma(\mathbf{h}^{(0)})`
    at :math:`t = 1`). Dropout follows every activation but the first, as in chemprop. The result is one embedding per node,
    ready for any :class:`~gconv.layers.Readout`.

    Pick :class:`DMPNNConv` for molecular properties with bond features (it is chemprop's
    encoder); :class:`~gconv.layers.GCNConv` for graphs without edge features or a fixed graph.

    Args:
        in_channels (int): Size of each node feature :math:`\mathbf{x}_v`.
        edge_dim (int): Size of each edge feature :math:`\mathbf{e}_{vw}`.
        hidden_channels (int, optional): Size of the edge states and of the output node
            embeddings. (default: :obj:`300`, chemprop's)
        depth (int, optional): Number of steps :math:`T` including the initial projection
            (chemprop's ``depth``). (default: :obj:`3`)
        bias (bool, optional): Learn biases in :math:`\mathbf{W}_i` and :math:`\mathbf{W}_h`
            (:math:`\mathbf{W}_o` always has one, as in chemprop). (default: :obj:`False`)
        dropout (float, optional): Dropout probability after each activation.
            (default: :obj:`0.0`)
        activation (str or nn.Module, optional): :obj:`"relu"`, :obj:`"leaky_relu"`,
            :obj:`"elu"`, :obj:`"gelu"`, :obj:`"silu"`, :obj:`"tanh"`, or a module.
            (default: :obj:`"relu"`)
        undirected (bool, optional): Average each edge state with its reverse's before every
            message (chemprop's ``undirected``). (default: :obj:`False`)

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)` with every edge in both directions,
          edge features :math:`(|\mathcal{E}|, D)`,
          reverse-edge positions :math:`(|\mathcal{E}|)` *(optional, from*
          :func:`reverse_edge_index` *)*
        - **output:** node features :math:`(|\mathcal{V}|, F_{hidden})`
    """

    def __init__(
        self,
        in_channels: int,
        edge_dim: int,
        hidden_channels: int = 300,
        depth: int = 3,
        bias: bool = False,
        dropout: float = 0.0,
        activation: str | nn.Module = "relu",
        undirected: bool = False,
    ) -> None:
        super().__init__()
        for name, value in [
            ("in_channels", in_channels),
            ("edge_dim", edge_dim),
            ("hidden_channels", hidden_channels),
            ("depth", depth),
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DMPNNConv expected {name} to be a positive int, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DMPNNConv expected dropout in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.edge_dim = edge_dim
        self.hidden_channels = hidden_channels
        self.depth = depth
        self.bias = bias
        self.dropout = dropout
        self.undirected = undirected

        self.lin_input = nn.Linear(in_channels + edge_dim, hidden_channels, bias=bias)  # W_i
        self.lin_hidden = nn.Linear(hidden_channels, hidden_channels, bias=bias)  # W_h
        self.lin_output = nn.Linear(in_channels + hidden_channels, hidden_channels)  # W_o
        self.activation = _activation(activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default (Kaiming-uniform) initialisation, as chemprop uses.
        self.lin_input.reset_parameters()
        self.lin_hidden.reset_parameters()
        self.lin_output.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        rev_index: Tensor | None = None,
    ) -> Tensor:
        _check_inputs(x, edge_index, edge_attr, self.in_channels, self.edge_dim)
        num_nodes = x.size(0)
        source, target = edge_index[0], edge_index[1]
        if rev_index is None:
            rev_index = reverse_edge_index(edge_index, num_nodes)

        h_input = self.lin_input(torch.cat([x[source], edge_attr], dim=-1))
        h = self.activation(h_input)  # chemprop applies no dropout to the first state
        for _ in range(1, self.depth):
            if self.undirected:
                h = (h + h[rev_index]) / 2
            # Sum of the states entering each edge's source node, minus the edge's own reverse.
            incoming = _sum_at(h, target, num_nodes)
            message = incoming[source] - h[rev_index]
            h = self._act(h_input + self.lin_hidden(message))
        node_message = _sum_at(h, target, num_nodes)
        return self._act(self.lin_output(torch.cat([x, node_message], dim=-1)))

    def _act(self, h: Tensor) -> Tensor:
        return nn.functional.dropout(self.activation(h), self.dropout, self.training)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"edge_dim={self.edge_dim}, depth={self.depth})"
        )


def _sum_at(values: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    """Rows of ``values`` summed into ``num_nodes`` rows by ``index`` (zeros where none land)."""
    out = values.new_zeros(num_nodes, values.size(-1))
    return out.index_add_(0, index, values)


def _activation(activation: str | nn.Module) -> nn.Module:
    if isinstance(activation, nn.Module):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"DMPNNConv got unknown activation {activation!r}; expected one of "
            f"{sorted(ACTIVATIONS)} or an nn.Module"
        )
    return ACTIVATIONS[activation]()


def _check_inputs(
    x: Tensor, edge_index: Tensor, edge_attr: Tensor | None, in_channels: int, edge_dim: int
) -> None:
    """Shape checks that need no device sync."""
    if not isinstance(x, Tensor) or x.dim() != 2 or x.size(-1) != in_channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"DMPNNConv expected node features of shape (N, {in_channels}), got {shape}"
        )
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index)
        raise ValueError(f"DMPNNConv expected edge_index of shape (2, E), got {shape}")
    if edge_attr is None:
        raise ValueError(
            f"DMPNNConv needs edge features: pass edge_attr of shape (E, {edge_dim}) "
            "(data.edge_attr of gconv molecule graphs)"
        )
    if edge_attr.shape != (edge_index.size(1), edge_dim):
        raise ValueError(
            f"DMPNNConv expected edge_attr of shape ({edge_index.size(1)}, {edge_dim}), "
            f"got {tuple(edge_attr.shape)}"
        )
