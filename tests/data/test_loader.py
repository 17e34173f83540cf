"""TensorLoader: every epoch is a permutation of the samples, cut into batches, and shards split
every global batch between processes (property tests over sizes, batch sizes and world sizes)."""

from __future__ import annotations

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gconv.data import TensorLoader

sizes = st.integers(1, 60)
batch_sizes = st.integers(1, 16)


def samples(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs whose value is their index, targets that say which input they belong to."""
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)
    return x, 2 * torch.arange(n)


def epoch(loader: TensorLoader) -> list[list[int]]:
    """The sample indices of each batch, checking that targets stay aligned with inputs."""
    batches = []
    for xb, yb in loader:
        index = xb[:, 0].long()
        assert torch.equal(yb, 2 * index)
        batches.append(index.tolist())
    assert len(batches) == len(loader)
    return batches


@settings(max_examples=60, deadline=None)
@given(sizes, batch_sizes, st.booleans(), st.booleans(), st.integers(0, 5))
def test_an_epoch_is_the_samples_cut_into_batches(n, batch_size, shuffle, drop_last, seed):
    loader = TensorLoader(*samples(n), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    batches = epoch(loader)
    seen = [i for batch in batches for i in batch]
    assert len(set(seen)) == len(seen)  # no sample twice
    if drop_last:
        assert all(len(batch) == batch_size for batch in batches)
        assert len(seen) == n // batch_size * batch_size
    else:
        assert sorted(seen) == list(range(n))
        assert all(len(batch) == batch_size for batch in batches[:-1])
    if not shuffle:
        assert seen == list(range(len(seen)))
    # the same seed and epoch give the same batches; the next epoch another order
    assert epoch(loader) == batches
    loader.set_epoch(1)
    if shuffle and len(seen) >= 8:  # 8! orders: a repeat is (nearly) impossible
        assert epoch(loader) != batches


@settings(max_examples=60, deadline=None)
@given(sizes, batch_sizes, st.integers(2, 3), st.booleans(), st.integers(0, 5))
@example(n=1, batch_size=1, world_size=3, drop_last=False, seed=0)  # wraps around twice
def test_shards_split_every_global_batch(n, batch_size, world_size, drop_last, seed):
    """``world_size`` shards of batch B step through the global batches of one loader of batch
    ``world_size * B`` over the same permutation, padded by wrapping around to a multiple of
    ``world_size`` as ``DistributedSampler`` does."""
    x, y = samples(n)
    shards = [
        epoch(TensorLoader(x, y, batch_size, drop_last=drop_last, seed=seed).shard(r, world_size))
        for r in range(world_size)
    ]
    assert len({len(shard) for shard in shards}) == 1  # every process takes as many steps
    order = TensorLoader(x, y, n, seed=seed)._permutation().tolist()  # the epoch's permutation
    padded = (order * world_size)[: -(-n // world_size) * world_size]  # wrapped, as often as needed
    global_batch = batch_size * world_size
    for i, parts in enumerate(zip(*shards, strict=True)):
        assert len({len(part) for part in parts}) == 1  # equal shares
        expected = padded[i * global_batch : (i + 1) * global_batch]
        assert [index for part in parts for index in part] == expected
    steps = len(shards[0])
    assert steps == (len(padded) // global_batch if drop_last else -(-len(padded) // global_batch))
    if not drop_last:  # every sample is seen by some process
        assert {index for shard in shards for batch in shard for index in batch} == set(range(n))
