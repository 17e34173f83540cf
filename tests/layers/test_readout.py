"""Readouts against PyG's pooling / aggregation, permutation invariance, empty graphs, bad input."""

import pytest
import torch
from torch_geometric.nn import aggr, global_add_pool, global_max_pool, global_mean_pool

from gconv.layers import (
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

# Three graphs of 3, 1 and 4 nodes: the PyG batch vector is sorted by graph.
BATCH = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2])
NUM_GRAPHS = 3


def node_features(num_nodes: int = 8, channels: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(num_nodes, channels, generator=torch.Generator().manual_seed(seed))


def all_readouts(channels: int = 4) -> list[Readout]:
    torch.manual_seed(0)
    return [
        SumReadout(),
        NormReadout(10.0),
        MeanReadout(),
        MaxReadout(),
        MeanMaxReadout(),
        AttentionReadout(channels),
        Set2SetReadout(channels, processing_steps=2),
    ]


@pytest.mark.parametrize(
    ("module", "pool"),
    [
        (SumReadout(), global_add_pool),
        (MeanReadout(), global_mean_pool),
        (MaxReadout(), global_max_pool),
    ],
)
def test_basic_readouts_equal_pyg_global_pools(module, pool):
    x = node_features()
    torch.testing.assert_close(module(x, BATCH), pool(x, BATCH))
    torch.testing.assert_close(module(x, BATCH, size=NUM_GRAPHS), pool(x, BATCH, NUM_GRAPHS))
    # One graph when no batch vector is given.
    torch.testing.assert_close(module(x), pool(x, None))


def test_norm_readout_equals_chemprop_norm_aggregation():
    from chemprop.nn.agg import NormAggregation

    x = node_features()
    torch.testing.assert_close(NormReadout()(x, BATCH), NormAggregation()(x, BATCH))
    torch.testing.assert_close(
        NormReadout(7)(x, BATCH, size=NUM_GRAPHS), NormAggregation(norm=7)(x, BATCH)
    )
    torch.testing.assert_close(NormReadout(4.0)(x), global_add_pool(x, None) / 4)


def test_mean_max_is_mean_and_max_concatenated():
    x = node_features()
    expected = torch.cat([global_mean_pool(x, BATCH), global_max_pool(x, BATCH)], dim=-1)
    torch.testing.assert_close(MeanMaxReadout()(x, BATCH), expected)


def test_attention_equals_pyg_attentional_aggregation():
    x = node_features()
    module = AttentionReadout(4)
    reference = aggr.AttentionalAggregation(gate_nn=module.gate_nn)
    torch.testing.assert_close(module(x, BATCH), reference(x, BATCH, dim_size=NUM_GRAPHS))


def test_attention_weights_sum_to_one_per_graph():
    x = node_features()
    module = AttentionReadout(
        4,
        gate_nn=torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)),
    )
    out, attention = module(x, BATCH, size=4, return_attention=True)  # graph 3 is empty
    assert attention.shape == (8,)
    assert (attention > 0).all()
    per_graph = torch.zeros(4).index_add_(0, BATCH, attention)
    torch.testing.assert_close(per_graph, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    # The single-node graph puts all its weight on its node; the output is that node.
    torch.testing.assert_close(out[1], x[3])
    torch.testing.assert_close(out[3], torch.zeros(4))

    dense_out, dense_attention = module(x.view(2, 4, 4), return_attention=True)
    assert dense_attention.shape == (2, 4)
    torch.testing.assert_close(dense_attention.sum(dim=-1), torch.ones(2))
    torch.testing.assert_close(dense_out, module(x, torch.arange(2).repeat_interleave(4)))


def test_set2set_equals_pyg_set2set():
    x = node_features()
    module = Set2SetReadout(4, processing_steps=2)
    reference = aggr.Set2Set(4, processing_steps=2)
    reference.load_state_dict(module.aggr.state_dict())
    out = module(x, BATCH)
    assert out.shape == (NUM_GRAPHS, 8)
    torch.testing.assert_close(out, reference(x, BATCH, dim_size=NUM_GRAPHS))


@pytest.mark.parametrize("module", all_readouts(), ids=lambda m: type(m).__name__)
def test_permutation_invariance_within_graphs(module):
    x = node_features()
    expected = module(x, BATCH, size=NUM_GRAPHS)
    # Shuffle the nodes inside each graph, keeping the batch vector sorted.
    generator = torch.Generator().manual_seed(1)
    permutation = torch.cat(
        [
            torch.nonzero(BATCH == graph).flatten()[
                torch.randperm(int((BATCH == graph).sum()), generator=generator)
            ]
            for graph in range(NUM_GRAPHS)
        ]
    )
    assert not torch.equal(permutation, torch.arange(8))
    torch.testing.assert_close(module(x[permutation], BATCH, size=NUM_GRAPHS), expected)
    # Shuffling all nodes together with their batch entries changes nothing either.
    shuffle = torch.randperm(8, generator=generator)
    torch.testing.assert_close(module(x[shuffle], BATCH[shuffle], size=NUM_GRAPHS), expected)


@pytest.mark.parametrize("module", all_readouts(), ids=lambda m: type(m).__name__)
def test_empty_graphs_in_the_middle_and_at_the_end_give_zeros(module):
    x = node_features()
    # Graphs 1 and 4 have no nodes; graph 4 only exists because size=5 is given.
    batch_with_gaps = torch.tensor([0, 0, 0, 2, 3, 3, 3, 3])
    out = module(x, batch_with_gaps, size=5)
    channels = module.output_channels(4)
    assert out.shape == (5, channels)
    if not isinstance(module, Set2SetReadout):  # Set2Set's LSTM query is non-zero by design
        torch.testing.assert_close(out[1], torch.zeros(channels))
        torch.testing.assert_close(out[4], torch.zeros(channels))
    else:  # its attention read r_t is zero: the second half of q*_T
        torch.testing.assert_close(out[[1, 4], 4:], torch.zeros(2, 4))
    # The non-empty graphs do not depend on the empty ones.
    torch.testing.assert_close(out[[0, 2, 3]], module(x, BATCH, size=NUM_GRAPHS))
    # A static-graph batch of graphs without nodes agrees with the batch-vector path.
    empty_static = module(x.new_zeros(2, 0, 4))
    torch.testing.assert_close(empty_static, module(x[:0], BATCH[:0], size=2))
    assert torch.isfinite(empty_static).all()


def test_max_of_negative_features_and_empty_graph():
    x = -node_features().abs() - 1.0  # all negative: a zero can only come from an empty graph
    out = MaxReadout()(x, torch.tensor([0, 0, 0, 0, 2, 2, 2, 2]), size=3)
    torch.testing.assert_close(out[0], x[:4].amax(dim=0))
    torch.testing.assert_close(out[1], torch.zeros(4))
    assert (out[[0, 2]] < 0).all()


@pytest.mark.parametrize("module", all_readouts(), ids=lambda m: type(m).__name__)
def test_static_graph_batch_equals_batch_vector(module):
    x = node_features(num_nodes=12, channels=4, seed=3)
    out = module(x.view(3, 4, 4))
    assert out.shape == (3, module.output_channels(4))
    torch.testing.assert_close(out, module(x, torch.arange(3).repeat_interleave(4), size=3))


def test_factory_builds_each_readout_and_rejects_unknown_names():
    assert isinstance(readout("sum"), SumReadout)
    assert readout("norm").norm == 100.0 and readout("norm", norm=50).norm == 50.0
    assert isinstance(readout("MEAN"), MeanReadout)
    assert isinstance(readout("max", in_channels=8), MaxReadout)
    assert isinstance(readout("meanmax"), MeanMaxReadout)
    assert isinstance(readout("attention", in_channels=8), AttentionReadout)
    set2set = readout("set2set", in_channels=8, processing_steps=5)
    assert isinstance(set2set, Set2SetReadout) and set2set.processing_steps == 5
    with pytest.raises(
        ValueError,
        match=r"Unknown readout 'median'; expected one of \['atomwise', 'attention', 'max'",
    ):
        readout("median")
    with pytest.raises(ValueError, match="needs in_channels"):
        readout("attention")


def test_repr():
    assert repr(SumReadout()) == "SumReadout()"
    assert repr(NormReadout()) == "NormReadout(norm=100)"
    assert repr(Set2SetReadout(16)) == "Set2SetReadout(16, processing_steps=3)"
    assert repr(AttentionReadout(4)).startswith("AttentionReadout(4, gate_nn=Linear(")


def test_bad_input_is_rejected():
    x = node_features()
    with pytest.raises(ValueError, match=r"batch of shape \(8,\) to match x, got \(7,\)"):
        MeanReadout()(x, BATCH[:7])
    with pytest.raises(ValueError, match="pass batch=None"):
        SumReadout()(x.view(2, 4, 4), BATCH)
    with pytest.raises(ValueError, match=r"got \(8,\)"):
        SumReadout()(x[:, 0])
    with pytest.raises(ValueError, match="size=3 without a batch vector"):
        SumReadout()(x, size=3)
    with pytest.raises(ValueError, match="in_channels to be a positive int, got 0"):
        AttentionReadout(0)
    with pytest.raises(ValueError, match="norm to be a positive number, got 0"):
        NormReadout(0)
    with pytest.raises(ValueError, match=r"gate_nn to map \(8, 4\) to \(8, 1\), got \(8, 2\)"):
        AttentionReadout(4, gate_nn=torch.nn.Linear(4, 2))(x, BATCH)
