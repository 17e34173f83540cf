"""The graph-level GNN: shapes, batching, edge features, tiny learning tasks, repr and bad input
(the GCN encoder first, then D-MPNN and GINE)."""

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from gconv.layers import AttentionReadout, GCNConv, MeanReadout, Readout, Set2SetReadout
from gconv.models import GNN


def chain_graph(num_nodes: int, generator: torch.Generator, num_types: int = 4) -> Data:
    """A path graph with one-hot node types, edge features and target = #type0 + 2 * #type1."""
    types = torch.randint(0, num_types, (num_nodes,), generator=generator)
    source = torch.arange(num_nodes - 1)
    edge_index = torch.cat(
        [torch.stack([source, source + 1]), torch.stack([source + 1, source])], dim=1
    )
    target = (types == 0).sum() + 2.0 * (types == 1).sum()
    return Data(
        x=nn.functional.one_hot(types, num_types).float(),
        edge_index=edge_index,
        edge_attr=torch.rand(edge_index.size(1), 3, generator=generator),
        y=target.view(1, 1).float(),
    )


def graph_batch(num_graphs: int, seed: int) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 13, (num_graphs,), generator=generator).tolist()
    return Batch.from_data_list([chain_graph(size, generator) for size in sizes])


def test_output_shape_and_parts():
    batch = graph_batch(5, seed=0)
    model = GNN(4, 3, conv="gcn", hidden_channels=16, num_layers=2)
    assert model(batch).shape == (5, 3)
    assert model.embed(batch).shape == (batch.num_nodes, 16)
    assert len(model.convs) == 2 and all(isinstance(conv, GCNConv) for conv in model.convs)
    assert len(model.norms) == 2
    assert isinstance(model.readout, MeanReadout)
    assert isinstance(model.head, nn.Linear) and model.head.in_features == 16


def test_forward_is_head_of_readout_of_embedding():
    # What graph CAM relies on: out = head(readout(embed(data), batch)).
    batch = graph_batch(4, seed=1)
    model = GNN(4, 2, conv="gcn", hidden_channels=8).eval()
    expected = model.head(model.readout(model.embed(batch), batch.batch, batch.num_graphs))
    torch.testing.assert_close(model(batch), expected)


@pytest.mark.parametrize("readout", ["sum", "mean", "max", "meanmax", "attention", "set2set"])
def test_graphs_in_a_batch_are_independent(readout):
    batch = graph_batch(4, seed=2)
    model = GNN(4, 2, conv="gcn", hidden_channels=8, readout=readout, edge_dim=3).eval()
    separately = torch.cat([model(graph) for graph in batch.to_data_list()])
    torch.testing.assert_close(model(batch), separately)


def test_single_graph_without_batch_vector_and_tensor_inputs():
    graph = chain_graph(6, torch.Generator().manual_seed(3))
    assert graph.batch is None
    model = GNN(4, 1, conv="gcn", hidden_channels=8, edge_dim=3).eval()
    out = model(graph)
    assert out.shape == (1, 1)
    torch.testing.assert_close(out, model(Batch.from_data_list([graph])))
    # The tensor signature used by PyG's Explainer and Captum gives the same output.
    torch.testing.assert_close(out, model(graph.x, graph.edge_index, edge_attr=graph.edge_attr))
    torch.testing.assert_close(
        model.embed(graph), model.embed(graph.x, graph.edge_index, edge_attr=graph.edge_attr)
    )


def test_trailing_empty_graph_is_kept_with_num_graphs():
    batch = graph_batch(3, seed=4)
    model = GNN(4, 2, conv="gcn", hidden_channels=8, readout="sum").eval()
    out = model(batch.x, batch.edge_index, batch=batch.batch, num_graphs=4)
    assert out.shape == (4, 2)
    torch.testing.assert_close(out[3], model.head.bias)  # an empty graph pools to zeros


def test_edge_features_set_learned_edge_weights():
    batch = graph_batch(3, seed=5)
    model = GNN(4, 1, conv="gcn", hidden_channels=8, edge_dim=3).eval()
    out = model(batch)
    changed = batch.clone()
    changed.edge_attr = torch.rand_like(batch.edge_attr) * 10
    assert not torch.allclose(model(changed), out)
    out.sum().backward()
    assert model.edge_encoder[0].weight.grad.abs().sum() > 0


def test_residual_and_options():
    batch = graph_batch(3, seed=6)
    model = GNN(
        4, 2, conv="gcn", hidden_channels=4, num_layers=1, batch_norm=False, residual=True
    ).eval()
    conv = model.convs[0]
    # in_channels == hidden_channels, so the first layer is residual too.
    expected_nodes = batch.x + torch.relu(conv(batch.x, batch.edge_index))
    torch.testing.assert_close(model.embed(batch), expected_nodes)
    assert all(isinstance(norm, nn.Identity) for norm in model.norms)

    plain = GNN(
        4, 2, conv="gcn", hidden_channels=4, num_layers=1, batch_norm=False, residual=False
    ).eval()
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain.embed(batch), torch.relu(conv(batch.x, batch.edge_index)))


def test_mlp_head_readout_module_and_dropout():
    batch = graph_batch(6, seed=7)
    model = GNN(
        4,
        3,
        conv="gcn",
        hidden_channels=8,
        readout=Set2SetReadout(8),
        head_hidden=(16, 12),
        dropout=0.5,
    )
    assert isinstance(model.head, nn.Sequential)
    assert [layer.out_features for layer in model.head if isinstance(layer, nn.Linear)] == [
        16,
        12,
        3,
    ]
    assert model.head[0].in_features == 16  # Set2Set doubles the pooled size
    model.train()
    assert not torch.equal(model(batch), model(batch))  # dropout is active in training
    model.eval()
    torch.testing.assert_close(model(batch), model(batch))


@pytest.mark.parametrize("readout", ["mean", "attention", "set2set"])
def test_jumping_knowledge_reads_out_every_layer(readout):
    batch = graph_batch(4, seed=8)
    model = GNN(
        4,
        2,
        conv="gcn",
        hidden_channels=8,
        num_layers=3,
        readout=readout,
        edge_dim=3,
        jumping_knowledge=True,
    ).eval()
    assert model.embedding_channels == 24
    embedding = model.embed(batch)
    assert embedding.shape == (batch.num_nodes, 24)
    # The last block of the concatenation is the plain model's embedding (same weights).
    plain = GNN(
        4, 2, conv="gcn", hidden_channels=8, num_layers=3, readout="mean", edge_dim=3
    ).eval()
    plain.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.startswith(("readout", "head"))},
        strict=False,
    )
    torch.testing.assert_close(embedding[:, 16:], plain.embed(batch))
    # Still what graph CAM relies on: out = head(readout(embed(data), batch)).
    expected = model.head(model.readout(embedding, batch.batch, batch.num_graphs))
    torch.testing.assert_close(model(batch), expected)
    separately = torch.cat([model(graph) for graph in batch.to_data_list()])
    torch.testing.assert_close(model(batch), separately)
    assert "jumping_knowledge=True" in repr(model)
    assert GNN(4, 2, conv="gcn", hidden_channels=8).embedding_channels == 8


def test_single_node_graph_trains_with_batch_norm():
    graph = chain_graph(1, torch.Generator().manual_seed(8))
    model = GNN(4, 1, conv="gcn", hidden_channels=8).train()
    model(graph).sum().backward()
    assert all(parameter.grad is not None for parameter in model.convs.parameters())


@pytest.fixture
def one_thread():
    """Train the tiny models on one thread: intra-op threads only add overhead on tensors this
    small, and on a busy shared CPU their spin-waits made these tests ~20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_learns_a_sum_over_nodes_with_sum_readout(one_thread):
    torch.manual_seed(0)
    train, test = graph_batch(50, seed=10), graph_batch(20, seed=11)
    model = GNN(4, 1, conv="gcn", hidden_channels=32, num_layers=2, readout="sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(train), train.y)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        prediction = model(test)
    residual = ((prediction - test.y) ** 2).sum()
    r2 = 1 - residual / ((test.y - test.y.mean()) ** 2).sum()
    assert r2 > 0.9, f"held-out R^2 {r2:.3f}"


def more_type0_than_type1(batch: Batch) -> torch.Tensor:
    """Class 1 when a graph has more type-0 than type-1 nodes."""
    difference = batch.x[:, 0] - batch.x[:, 1]
    per_graph = difference.new_zeros(batch.num_graphs).index_add_(0, batch.batch, difference)
    return per_graph.gt(0).long()


def test_learns_graph_classification_above_chance(one_thread):
    torch.manual_seed(0)
    train, test = graph_batch(50, seed=12), graph_batch(30, seed=13)
    model = GNN(4, 2, conv="gcn", hidden_channels=16, num_layers=2, readout="attention")
    assert isinstance(model.readout, AttentionReadout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(train), more_type0_than_type1(train)).backward()
        optimizer.step()
    model.eval()
    accuracy = (model(test).argmax(dim=1) == more_type0_than_type1(test)).float().mean()
    chance = max(
        more_type0_than_type1(test).float().mean(), 1 - more_type0_than_type1(test).float().mean()
    )
    assert accuracy > chance + 0.1, f"accuracy {accuracy:.2f} vs majority {chance:.2f}"


def test_reset_parameters_reinitialises_every_part():
    batch = graph_batch(4, seed=14)
    model = GNN(
        4, 1, conv="gcn", hidden_channels=8, edge_dim=3, readout="attention", head_hidden=(8,)
    )
    model(batch)  # training mode: updates the batch-norm running statistics
    before = {name: value.clone() for name, value in model.state_dict().items()}
    model.reset_parameters()
    after = model.state_dict()
    assert torch.equal(after["norms.0.module.running_mean"], torch.zeros(8))
    for name in [
        "convs.0.lin.weight",
        "edge_encoder.0.weight",
        "readout.gate_nn.weight",
        "head.0.weight",
    ]:
        assert not torch.equal(after[name], before[name]), name


def test_repr():
    assert repr(GNN(9, 1, conv="gcn")) == (
        "GNN(9, 1, conv='gcn', hidden_channels=64, num_layers=3, readout=MeanReadout())"
    )
    assert "readout=Set2SetReadout(8" in repr(
        GNN(9, 1, conv="gcn", hidden_channels=8, readout="set2set")
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_channels": 0}, ValueError, "in_channels to be a positive int, got 0"),
        ({"num_layers": 0}, ValueError, "num_layers to be a positive int, got 0"),
        ({"hidden_channels": 2.5}, ValueError, "hidden_channels to be a positive int, got 2.5"),
        ({"dropout": 1.0}, ValueError, r"dropout in \[0, 1\), got 1.0"),
        (
            {"readout": "median"},
            ValueError,
            r"Unknown readout 'median'; expected one of \['atomwise', 'attention'",
        ),
        ({"readout": nn.Linear(2, 2)}, TypeError, "a gconv.layers.Readout, got Linear"),
        ({"activation": "swish"}, ValueError, "unknown activation 'swish'"),
        ({"head_hidden": 32}, TypeError, r"sequence of ints such as \(128,\), got 32"),
        ({"head_hidden": (32, 0)}, ValueError, "head_hidden sizes to be a positive int, got 0"),
        ({"edge_dim": -1}, ValueError, "edge_dim to be a positive int, got -1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    arguments = {"in_channels": 4, "out_channels": 1, "conv": "gcn"} | kwargs
    with pytest.raises(error, match=match):
        GNN(**arguments)


def test_bad_inputs_are_rejected():
    graph = chain_graph(4, torch.Generator().manual_seed(9))
    with pytest.raises(ValueError, match=r"node features of shape \(N, 5\), got \(4, 4\)"):
        GNN(5, 1, conv="gcn")(graph)
    with pytest.raises(TypeError, match="floating-point node features, got dtype torch.int64"):
        GNN(4, 1, conv="gcn")(graph.x.long(), graph.edge_index)
    with pytest.raises(ValueError, match="without edge_index"):
        GNN(4, 1, conv="gcn")(graph.x)
    with pytest.raises(
        TypeError, match="PyG Data/Batch or node features x with edge_index, got list"
    ):
        GNN(4, 1, conv="gcn")([graph])
    with pytest.raises(ValueError, match="edge_dim=2 but got no edge_attr"):
        GNN(4, 1, conv="gcn", edge_dim=2)(graph.x, graph.edge_index)
    with pytest.raises(ValueError, match=r"edge_attr of shape \(6, 2\), got \(6, 3\)"):
        GNN(4, 1, conv="gcn", edge_dim=2)(graph)
    assert isinstance(GNN(4, 1, conv="gcn").readout, Readout)


# -- GNN: the D-MPNN and GINE encoders, molecule descriptors ---------------------------------


@pytest.mark.parametrize("conv", ["dmpnn", "gine"])
def test_edge_conditioned_encoders_learn_a_sum_over_nodes(conv, one_thread):
    torch.manual_seed(0)
    train, test = graph_batch(50, seed=10), graph_batch(20, seed=11)
    model = GNN(4, 1, conv=conv, hidden_channels=32, num_layers=2, readout="sum", edge_dim=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(train), train.y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        prediction = model(test)
    r2 = 1 - ((prediction - test.y) ** 2).sum() / ((test.y - test.y.mean()) ** 2).sum()
    assert r2 > 0.9, f"{conv}: held-out R^2 {r2:.3f}"


def test_dmpnn_model_is_its_conv_then_readout_and_head():
    from torch_geometric.nn import global_add_pool

    from gconv.layers import DMPNNConv

    torch.manual_seed(0)
    batch = graph_batch(5, seed=1)
    model = GNN(4, 2, conv="dmpnn", hidden_channels=8, edge_dim=3, readout="sum").eval()
    assert len(model.convs) == 1 and isinstance(model.convs[0], DMPNNConv)
    assert model.convs[0].depth == 3  # num_layers is chemprop's depth
    nodes = model.norms[0](model.convs[0](batch.x, batch.edge_index, batch.edge_attr))
    expected = model.head(global_add_pool(nodes, batch.batch))
    torch.testing.assert_close(model(batch), expected)
    torch.testing.assert_close(model.embed(batch), nodes)


def test_descriptors_are_concatenated_after_the_readout():
    torch.manual_seed(0)
    batch = graph_batch(4, seed=2)
    batch.x_d = torch.randn(4, 3)
    model = GNN(4, 1, conv="gine", hidden_channels=8, edge_dim=3, descriptor_dim=3).eval()
    assert model.head.in_features == 8 + 3
    pooled = model.readout(model.embed(batch), batch.batch, 4)
    expected = model.head(torch.cat([pooled, batch.x_d], dim=-1))
    torch.testing.assert_close(model(batch), expected)
    other = model(batch, descriptors=torch.zeros(4, 3))  # the keyword wins over data.x_d
    assert not torch.allclose(other, expected)
    del batch.x_d
    with pytest.raises(ValueError, match="descriptor_dim=3 but got no descriptors"):
        model(batch)
    with pytest.raises(ValueError, match=r"descriptors of shape \(num_graphs, 3\), got \(4, 2\)"):
        model(batch, descriptors=torch.zeros(4, 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"conv": "gat"}, "unknown conv 'gat'"),
        ({"conv": "dmpnn"}, r"conv='dmpnn'\) passes messages with edge features: give edge_dim"),
        ({"conv": "dmpnn", "edge_dim": 3, "jumping_knowledge": True}, "nothing to concatenate"),
        ({"conv": "gine", "edge_dim": 3, "descriptor_dim": -1}, "descriptor_dim to be an int >= 0"),
    ],
)
def test_gnn_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GNN(4, 1, **kwargs)


def test_gnn_repr():
    model = GNN(48, 1, hidden_channels=300, edge_dim=14, readout="sum", descriptor_dim=217)
    assert repr(model) == (
        "GNN(48, 1, conv='dmpnn', hidden_channels=300, num_layers=3, readout=SumReadout(), "
        "descriptor_dim=217)"
    )
