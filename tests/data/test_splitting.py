"""Tests for gconv.data.splitting: random and Bemis-Murcko scaffold split indices."""

import pytest

from gconv.data.datasets import MoleculeDataset
from gconv.data.splitting import murcko_scaffold, random_split_indices, scaffold_split_indices

SERIES = [
    "c1ccccc1C",
    "c1ccccc1CC",
    "c1ccccc1CCC",
    "c1ccccc1O",
    "c1ccncc1C",
    "c1ccncc1N",
    "C1CCCCC1C",
    "C1CCCCC1O",
    "CCO",
    "CCN",
    "c1ccc2ccccc2c1",
    "c1ccc2ccccc2c1C",
    "C1CCNCC1",
    "C1CCOC1",
    "c1ccoc1",
    "c1ccsc1",
    "C1CC1",
    "C1CCC1",
    "c1cnc2ccccc2c1",
    "O=C1CCCN1",
]


def test_scaffold_split_keeps_groups_together_and_is_deterministic():
    parts = scaffold_split_indices(SERIES, sizes=(0.6, 0.2, 0.2), seed=3)
    assert sorted(sum(parts, [])) == list(range(len(SERIES)))
    scaffolds = [{murcko_scaffold(SERIES[i]) for i in part} for part in parts]
    assert not (scaffolds[0] & scaffolds[1] or scaffolds[0] & scaffolds[2])
    assert not scaffolds[1] & scaffolds[2]
    assert scaffold_split_indices(SERIES, sizes=(0.6, 0.2, 0.2), seed=3) == parts
    # the largest group (benzene, 4 molecules) is in train
    assert {0, 1, 2, 3} <= set(parts[0])


def test_scaffold_split_seed_changes_small_groups():
    splits = {
        tuple(map(tuple, scaffold_split_indices(SERIES, (0.6, 0.2, 0.2), seed=s))) for s in range(5)
    }
    assert len(splits) > 1


def test_random_split_deterministic_and_complete():
    train, val, test = random_split_indices(100, (0.8, 0.1, 0.1), seed=7)
    assert (len(train), len(val), len(test)) == (80, 10, 10)
    assert sorted(train + val + test) == list(range(100))
    assert random_split_indices(100, (0.8, 0.1, 0.1), seed=7) == (train, val, test)
    assert random_split_indices(100, (0.8, 0.1, 0.1), seed=8) != (train, val, test)
    with pytest.raises(ValueError, match="summing to 1"):
        random_split_indices(10, (0.8, 0.1, 0.2))


def test_dataset_split_methods():
    dataset = MoleculeDataset(SERIES, list(range(len(SERIES))))
    train, val, test = dataset.split("scaffold", sizes=(0.6, 0.2, 0.2), seed=0)
    assert len(train) + len(val) + len(test) == len(SERIES)
    # targets follow their molecules
    for part in (train, val, test):
        assert part.y.flatten().tolist() == [float(row) for row in part.rows]
    with pytest.raises(ValueError, match="'scaffold' or 'random', got 'stratified'"):
        dataset.split("stratified")


def test_split_indices_are_those_of_gconv_0_1():
    # pinned from gconv 0.1's random_split / scaffold_split: a seed names the same split
    assert random_split_indices(10, (0.6, 0.2, 0.2), seed=0) == (
        [4, 6, 2, 7, 3, 5],
        [9, 0],
        [8, 1],
    )
    assert scaffold_split_indices(SERIES, (0.6, 0.2, 0.2), seed=3) == (
        [0, 1, 2, 3, 15, 10, 11, 17, 14, 8, 9, 16],
        [12, 19, 4, 5],
        [13, 6, 7, 18],
    )


def test_murcko_scaffold_groups_and_errors():
    assert murcko_scaffold("c1ccccc1CCO") == murcko_scaffold("c1ccccc1C") == "c1ccccc1"
    assert murcko_scaffold("CCO") == ""  # acyclic: the empty scaffold
    with pytest.raises(ValueError, match="could not parse SMILES 'C1CC'"):
        murcko_scaffold("C1CC")


def _scaffold_split_with_lists(scaffolds, sizes, seed):
    """The scaffold split as gconv 0.1 wrote it, Python lists of indices per scaffold: the
    reference of the array version."""
    from collections import defaultdict

    import numpy as np

    n = len(scaffolds)
    num_train, num_val = int(round(sizes[0] * n)), int(round(sizes[1] * n))
    num_test = n - num_train - num_val
    groups = defaultdict(list)
    for index, scaffold in enumerate(scaffolds):
        groups[scaffold].append(index)
    scaffold_sets = [groups[key] for key in sorted(groups)]
    rng = np.random.default_rng(seed)
    big_limit = min(num_val, num_test) / 2
    big = [g for g in scaffold_sets if len(g) > big_limit]
    small = [g for g in scaffold_sets if len(g) <= big_limit]
    big = [big[i] for i in rng.permutation(len(big))]
    big.sort(key=len, reverse=True)
    small = [small[i] for i in rng.permutation(len(small))]
    train, val, test = [], [], []
    for group in big + small:
        if len(train) + len(group) <= num_train:
            train.extend(group)
        elif len(val) + len(group) <= num_val:
            val.extend(group)
        else:
            test.extend(group)
    return train, val, test


@pytest.mark.parametrize("seed", range(6))
def test_the_array_scaffold_split_equals_the_list_version(seed):
    """scaffold_split_positions (int64 arrays, what a store's million molecules use) gives the
    list version's splits: groups of every size, ties, the empty scaffold, several fractions."""
    import random

    from gconv.data.splitting import scaffold_split_positions

    rng = random.Random(seed)
    for n, kinds in ((0, 1), (1, 1), (7, 3), (60, 5), (500, 40), (3000, 900)):
        scaffolds = [f"c{rng.randrange(kinds) ** 2 % (kinds + 1)}" if rng.random() > 0.2 else ""
                     for _ in range(n)]  # fmt: skip
        for sizes in ((0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (1.0, 0.0, 0.0), (0.5, 0.5, 0.0)):
            expected = _scaffold_split_with_lists(scaffolds, sizes, seed)
            arrays = scaffold_split_positions(n, sizes, seed, iter(scaffolds))
            assert [a.tolist() for a in arrays] == list(expected)
            assert all(a.dtype.name == "int64" for a in arrays)
            assert scaffold_split_indices(["C"] * n, sizes, seed, scaffolds) == expected
