"""GCNConv against torch_geometric.nn.GCNConv, a dense analytic reference, and bad input."""

import pytest
import torch
import torch_geometric.nn as pyg_nn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data
from torch_geometric.typing import WITH_TORCH_SPARSE
from torch_geometric.utils import (
    coalesce,
    remove_self_loops,
    to_torch_coo_tensor,
    to_torch_csr_tensor,
)

import gconv.layers.gcn as gcn_module
from gconv.layers import GCNConv, gcn_norm

pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")


def paired_convs(in_channels: int, out_channels: int, **kwargs):
    """A gconv GCNConv and a PyG GCNConv with identical (non-zero bias) weights."""
    ours = GCNConv(in_channels, out_channels, **kwargs)
    if ours.bias is not None:
        with torch.no_grad():
            ours.bias.normal_()
    reference = pyg_nn.GCNConv(in_channels, out_channels, **kwargs)
    reference.load_state_dict(ours.state_dict())
    return ours, reference


def random_graph(seed: int, num_nodes: int, num_edges: int, weighted: bool):
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    edge_weight = torch.rand(num_edges, generator=generator) + 0.1 if weighted else None
    x = torch.randn(num_nodes, 5, generator=generator)
    return x, edge_index, edge_weight


def dense_gcn(x, edge_index, edge_weight, weight, bias, improved=False):
    """D^-1/2 (A + I) D^-1/2 X W^T + b written out with dense matrices (no existing self loops)."""
    num_nodes = x.size(0)
    adjacency = torch.zeros(num_nodes, num_nodes, dtype=x.dtype)
    weights = torch.ones(edge_index.size(1)) if edge_weight is None else edge_weight
    adjacency.index_put_((edge_index[1], edge_index[0]), weights.to(x.dtype), accumulate=True)
    adjacency += (2.0 if improved else 1.0) * torch.eye(num_nodes, dtype=x.dtype)
    degree_inv_sqrt = adjacency.sum(dim=1).pow(-0.5)
    normalised = degree_inv_sqrt[:, None] * adjacency * degree_inv_sqrt[None, :]
    return normalised @ x @ weight.T + bias


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    num_nodes=st.integers(1, 12),
    num_edges=st.integers(0, 40),
    weighted=st.booleans(),
    improved=st.booleans(),
    bias=st.booleans(),
)
def test_equals_pyg_on_random_graphs(seed, num_nodes, num_edges, weighted, improved, bias):
    # Random graphs include self loops, duplicate edges and isolated nodes.
    x, edge_index, edge_weight = random_graph(seed, num_nodes, num_edges, weighted)
    ours, reference = paired_convs(5, 3, improved=improved, bias=bias)
    x_ours = x.clone().requires_grad_()
    x_reference = x.clone().requires_grad_()
    out = ours(x_ours, edge_index, edge_weight)
    expected = reference(x_reference, edge_index, edge_weight)
    torch.testing.assert_close(out, expected)

    upstream = torch.randn_like(out)
    out.backward(upstream)
    expected.backward(upstream)
    torch.testing.assert_close(x_ours.grad, x_reference.grad)
    torch.testing.assert_close(ours.lin.weight.grad, reference.lin.weight.grad)
    if bias:
        torch.testing.assert_close(ours.bias.grad, reference.bias.grad)


def test_edge_weight_gradient_equals_pyg():
    x, edge_index, edge_weight = random_graph(0, 9, 30, weighted=True)
    ours, reference = paired_convs(5, 4)
    weight_ours = edge_weight.clone().requires_grad_()
    weight_reference = edge_weight.clone().requires_grad_()
    ours(x, edge_index, weight_ours).pow(2).sum().backward()
    reference(x, edge_index, weight_reference).pow(2).sum().backward()
    torch.testing.assert_close(weight_ours.grad, weight_reference.grad)


@pytest.mark.parametrize("improved", [False, True])
def test_matches_dense_formula_with_isolated_node(improved):
    # Path 0-1-2 (both directions) with a weighted edge, and node 3 isolated.
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    edge_weight = torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64)
    conv = GCNConv(2, 3, improved=improved).double()
    with torch.no_grad():
        conv.bias.normal_()
    expected = dense_gcn(x, edge_index, edge_weight, conv.lin.weight, conv.bias, improved)
    torch.testing.assert_close(conv(x, edge_index, edge_weight), expected)
    # The isolated node only sees itself: d = 1 (or 2 when improved), coefficient 1.
    torch.testing.assert_close(conv(x, edge_index)[3], x[3] @ conv.lin.weight.T + conv.bias)


def test_existing_self_loops_keep_their_weight():
    edge_index = torch.tensor([[0, 1, 1], [1, 0, 1]])  # node 1 already has a loop of weight 5
    edge_weight = torch.tensor([1.0, 1.0, 5.0])
    normalised_index, normalised_weight = gcn_norm(edge_index, edge_weight, num_nodes=2)
    # Only node 0 gets a new loop; degrees are d0 = 1 + 1 = 2, d1 = 1 + 5 = 6.
    assert normalised_index.size(1) == 4
    dense = torch.zeros(2, 2).index_put_(
        (normalised_index[1], normalised_index[0]), normalised_weight, accumulate=True
    )
    expected = torch.tensor([[1 / 2, 1 / 12**0.5], [1 / 12**0.5, 5 / 6]])
    torch.testing.assert_close(dense, expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"normalize": False},
        {"normalize": False, "add_self_loops": False},
        {"add_self_loops": False},
        {"add_self_loops": False, "improved": True},
    ],
)
def test_options_equal_pyg(kwargs):
    x, edge_index, edge_weight = random_graph(1, 10, 30, weighted=True)
    ours, reference = paired_convs(5, 4, **kwargs)
    torch.testing.assert_close(
        ours(x, edge_index, edge_weight), reference(x, edge_index, edge_weight)
    )
    torch.testing.assert_close(ours(x, edge_index), reference(x, edge_index))


def test_cached_normalisation_is_computed_once(monkeypatch):
    calls = []
    original = gcn_module.gcn_norm
    monkeypatch.setattr(
        gcn_module, "gcn_norm", lambda *args, **kw: calls.append(1) or original(*args, **kw)
    )
    x, edge_index, _ = random_graph(2, 8, 20, weighted=False)
    cached = GCNConv(5, 3, cached=True)
    first = cached(x, edge_index)
    # The cache ignores the graph passed later: an empty graph gives the first graph's output.
    again = cached(x, edge_index[:, :0])
    assert len(calls) == 1
    torch.testing.assert_close(again, first)

    cached.reset_parameters()  # clears the cache
    cached(x, edge_index[:, :0])
    assert len(calls) == 2

    uncached = GCNConv(5, 3)
    uncached(x, edge_index)
    uncached(x, edge_index)
    assert len(calls) == 4


def test_cached_equals_pyg_cached():
    x, edge_index, edge_weight = random_graph(3, 8, 20, weighted=True)
    ours, reference = paired_convs(5, 3, cached=True)
    for _ in range(2):
        torch.testing.assert_close(
            ours(x, edge_index, edge_weight), reference(x, edge_index, edge_weight)
        )


@pytest.mark.parametrize("to_sparse", [to_torch_coo_tensor, to_torch_csr_tensor])
def test_sparse_adjacency_equals_edge_index(to_sparse):
    x, edge_index, edge_weight = random_graph(4, 10, 35, weighted=True)
    edge_index, edge_weight = coalesce(edge_index, edge_weight, num_nodes=10)  # keeps self loops
    adj_t = to_sparse(edge_index.flip(0), edge_weight, size=(10, 10))  # adj_t[target, source]
    ours, reference = paired_convs(5, 4)

    x_sparse = x.clone().requires_grad_()
    x_dense = x.clone().requires_grad_()
    out = ours(x_sparse, adj_t)
    expected = ours(x_dense, edge_index, edge_weight)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(x_sparse.grad, x_dense.grad)

    # PyG's sparse path adds a second loop onto existing ones; on loop-free graphs they agree.
    loop_free_index, loop_free_weight = remove_self_loops(edge_index, edge_weight)
    adj_t = to_sparse(loop_free_index.flip(0), loop_free_weight, size=(10, 10))
    torch.testing.assert_close(ours(x, adj_t), reference(x, adj_t))


def test_sparse_adjacency_without_normalisation():
    x, edge_index, edge_weight = random_graph(5, 6, 15, weighted=True)
    edge_index, edge_weight = coalesce(edge_index, edge_weight, num_nodes=6)
    adj_t = to_torch_csr_tensor(edge_index.flip(0), edge_weight, size=(6, 6))
    conv = GCNConv(5, 2, normalize=False)
    torch.testing.assert_close(conv(x, adj_t), conv(x, edge_index, edge_weight))


@pytest.mark.skipif(not WITH_TORCH_SPARSE, reason="torch_sparse is not installed")
def test_torch_sparse_adjacency():  # pragma: no cover - runs only where torch_sparse exists
    from torch_sparse import SparseTensor

    x, edge_index, _ = random_graph(6, 7, 20, weighted=False)
    edge_index = coalesce(edge_index, num_nodes=7)
    adj_t = SparseTensor(row=edge_index[1], col=edge_index[0], sparse_sizes=(7, 7))
    conv = GCNConv(5, 3)
    torch.testing.assert_close(conv(x, adj_t), conv(x, edge_index))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_static_graph_batch_equals_block_diagonal_batch(sparse, dtype):
    # Duplicate edges and self loops kept: the (B, N, F) path sums duplicates in a CSR matrix.
    _, edge_index, edge_weight = random_graph(7, 9, 25, weighted=True)
    edge_weight = edge_weight.to(dtype)
    node_features = torch.randn(4, 9, 5, dtype=dtype)
    conv = GCNConv(5, 3).to(dtype)

    features_block = node_features.clone().requires_grad_()
    weight_block = edge_weight.clone().requires_grad_()
    batch = Batch.from_data_list(
        [Data(x=x, edge_index=edge_index, edge_weight=weight_block) for x in features_block]
    )
    expected = conv(batch.x, batch.edge_index, batch.edge_weight).view(4, 9, 3)

    features_static = node_features.clone().requires_grad_()
    weight_static = edge_weight.clone().requires_grad_()
    if sparse:
        adj_t = to_torch_csr_tensor(edge_index.flip(0), weight_static, size=(9, 9))
        out = conv(features_static, adj_t)
    else:
        out = conv(features_static, edge_index, weight_static)
    assert out.shape == (4, 9, 3) and out.dtype == dtype
    torch.testing.assert_close(out, expected)

    upstream = torch.randn_like(out)
    out.backward(upstream)
    expected.backward(upstream)
    torch.testing.assert_close(features_static.grad, features_block.grad)
    if (
        not sparse
    ):  # the sparse adjacency is built from coalesced weights: compare per edge only here
        torch.testing.assert_close(weight_static.grad, weight_block.grad)


def test_static_graph_batch_without_normalisation():
    _, edge_index, edge_weight = random_graph(10, 8, 20, weighted=True)
    node_features = torch.randn(3, 8, 5)
    conv = GCNConv(5, 2, normalize=False)
    expected = torch.stack([conv(x, edge_index, edge_weight) for x in node_features])
    torch.testing.assert_close(conv(node_features, edge_index, edge_weight), expected)
    expected = torch.stack([conv(x, edge_index) for x in node_features])
    torch.testing.assert_close(conv(node_features, edge_index), expected)


@pytest.mark.parametrize("static_batch", [False, True])
def test_bfloat16_autocast(static_batch):
    _, edge_index, edge_weight = random_graph(11, 9, 25, weighted=True)
    node_features = torch.randn(2, 9, 5) if static_batch else torch.randn(9, 5)
    conv = GCNConv(5, 3)
    expected = conv(node_features, edge_index, edge_weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(node_features, edge_index, edge_weight)
    assert out.shape == expected.shape
    torch.testing.assert_close(out.float(), expected, atol=5e-2, rtol=5e-2)


def test_lazy_in_channels_and_float64():
    x, edge_index, edge_weight = random_graph(8, 6, 12, weighted=True)
    conv = GCNConv(-1, 3)
    assert conv(x, edge_index).shape == (6, 3)
    assert conv.lin.weight.shape == (3, 5)
    ours, reference = paired_convs(5, 3)
    ours, reference = ours.double(), reference.double()
    out = ours(x.double(), edge_index, edge_weight.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, reference(x.double(), edge_index, edge_weight.double()))


def test_repr():
    assert repr(GCNConv(16, 32)) == "GCNConv(16, 32)"
    assert str(GCNConv(16, 32, improved=True)) == "GCNConv(16, 32)"


def test_bad_input_is_rejected():
    x, edge_index, edge_weight = random_graph(9, 5, 8, weighted=True)
    conv = GCNConv(5, 3)
    with pytest.raises(ValueError, match=r"edge_index of shape \(2, E\), got \(3, 8\)"):
        conv(x, torch.randint(0, 5, (3, 8)))
    with pytest.raises(TypeError, match="integer edge_index, got dtype torch.float32"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match=r"edge_weight of shape \(8,\).*got \(7,\)"):
        conv(x, edge_index, edge_weight[:7])
    with pytest.raises(
        ValueError, match=r"node features of shape \(N, F\) or \(B, N, F\), got \(5,\)"
    ):
        conv(x[:, 0], edge_index)
    with pytest.raises(ValueError, match="add_self_loops=True with normalize=False"):
        GCNConv(5, 3, add_self_loops=True, normalize=False)
    with pytest.raises(ValueError, match="flow='source_to_target' only, got 'target_to_source'"):
        GCNConv(5, 3, flow="target_to_source")
    adj_t = to_torch_coo_tensor(edge_index.flip(0), size=(5, 5))
    with pytest.raises(ValueError, match="pass edge_weight=None"):
        conv(x, adj_t, edge_weight)
    with pytest.raises(ValueError, match="square adjacency"):
        gcn_norm(to_torch_coo_tensor(edge_index.flip(0), size=(5, 6)))


def test_cached_adjacency_is_dropped_when_the_module_moves():
    """``.to()`` moves parameters, not the cache: a stale cache would sit on the old device/dtype."""
    conv = GCNConv(3, 4, cached=True)
    x = torch.randn(5, 3)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    conv(x, edge_index)
    assert conv._cached_adjacency is not None
    conv.double()
    assert conv._cached_adjacency is None
    out = conv(x.double(), edge_index)
    assert out.dtype == torch.float64 and conv._cached_adjacency[1].dtype == torch.float64
