"""Tests for gconv.data.cache: featurising many molecules, skip report, workers, on-disk cache."""

import pytest
import torch

import gconv.data.cache as cache
from gconv.data.cache import featurize
from gconv.data.featurizers import (
    ATOM_FEATURES,
    FEATURIZER_VERSION,
    AtomFeaturizer,
    Feature,
    smiles_to_graph,
)

# -- many molecules ----------------------------------------------------------------------------

SMILES = ["CCO", "c1ccccc1O", "[NH4+]", "CC(=O)[O-].[Na+]", "C1CCNCC1", "FC(F)F", "C#N", "O"]


def assert_same_graphs(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert torch.equal(a.x, b.x)
        assert torch.equal(a.edge_index, b.edge_index)
        assert torch.equal(a.edge_attr, b.edge_attr)
        assert a.smiles == b.smiles


def test_featurize_equals_smiles_to_graph():
    result = featurize(SMILES)
    assert result.indices == list(range(len(SMILES))) and result.skipped == []
    assert_same_graphs(result.graphs, [smiles_to_graph(s) for s in SMILES])


def test_featurize_on_error():
    smiles = ["CCO", "C1CC", None, "c1ccccc1"]
    with pytest.raises(ValueError, match="molecule 1 \\('C1CC'\\)"):
        featurize(smiles)
    result = featurize(smiles, on_error="skip")
    assert result.indices == [0, 3]
    assert [(i, s) for i, s, _ in result.skipped] == [(1, "C1CC"), (2, "None")]
    assert "syntax error" in result.skipped[0][2]
    with pytest.raises(ValueError, match="on_error must be"):
        featurize(smiles, on_error="ignore")
    with pytest.raises(TypeError, match="single string"):
        featurize("CCO")


def test_featurize_parallel_equals_serial():
    smiles = SMILES * 3 + ["C1CC"]
    serial = featurize(smiles, on_error="skip")
    parallel = featurize(smiles, n_jobs=2, on_error="skip")
    assert parallel.indices == serial.indices and parallel.skipped == serial.skipped
    assert_same_graphs(parallel.graphs, serial.graphs)


def test_featurize_cache_round_trip_and_hit(tmp_path, monkeypatch):
    smiles = SMILES + ["C1CC"]
    first = featurize(smiles, on_error="skip", cache_dir=tmp_path)
    files = list(tmp_path.glob("molgraphs-*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))

    # A cache hit must not featurise anything.
    def fail(*args, **kwargs):
        raise AssertionError("featurised despite a cache hit")

    monkeypatch.setattr(cache, "_run_chunks", fail)
    second = featurize(smiles, on_error="skip", cache_dir=tmp_path)
    assert_same_graphs(second.graphs, first.graphs)
    assert second.indices == first.indices and second.skipped == first.skipped
    # the cached skip list still raises in "raise" mode
    with pytest.raises(ValueError, match="'C1CC'"):
        featurize(smiles, cache_dir=tmp_path)
    # a different list (or option) is a different key, hence a miss
    with pytest.raises(AssertionError, match="cache hit"):
        featurize(smiles[:-1], cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="cache hit"):
        featurize(smiles, on_error="skip", cache_dir=tmp_path, largest_fragment=True)


# -- swappable feature tables: their own cache key ---------------------------------------------


def _ring3(atom) -> int:  # module level: picklable for worker processes
    return atom.IsInRingSize(3)


def test_custom_atom_table_adds_a_column_and_its_own_version(tmp_path):
    custom = AtomFeaturizer((*ATOM_FEATURES, Feature("ring3", _ring3)))
    assert len(custom) == 49 and custom.feature_names[-1] == "ring3"
    assert custom.version.startswith("custom-") and custom.version != FEATURIZER_VERSION
    smiles = ["C1CC1CO", "CCO"]
    default = featurize(smiles, cache_dir=tmp_path)
    result = featurize(smiles, atom_featurizer=custom, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("molgraphs-*.pt"))) == 2  # one cache file per featuriser
    for plain, extended in zip(default.graphs, result.graphs, strict=True):
        torch.testing.assert_close(extended.x[:, :48], plain.x)
    assert result.graphs[0].x[:, -1].tolist() == [1, 1, 1, 0, 0]
    cached = featurize(smiles, atom_featurizer=custom, cache_dir=tmp_path)
    torch.testing.assert_close(cached.graphs[0].x, result.graphs[0].x)
    parallel = featurize(smiles * 4, atom_featurizer=custom, n_jobs=2)
    torch.testing.assert_close(parallel.graphs[4].x, result.graphs[0].x)


def test_cache_file_name_and_contents_are_those_of_gconv_0_1(tmp_path):
    # A cache written by gconv 0.1 (gconv.data.molecules.featurize) is still found and read:
    # the key hashes [versions, largest_fragment, smiles] exactly as before.
    featurize(["CCO", "c1ccccc1O", "C1CC"], on_error="skip", cache_dir=tmp_path)
    (path,) = tmp_path.glob("molgraphs-*.pt")
    assert path.name == "molgraphs-a9b523088b4e68bba0968c0e.pt"
    state = torch.load(path, weights_only=True)
    assert sorted(state) == [
        "edge_attr",
        "edge_index",
        "indices",
        "num_edges",
        "num_nodes",
        "skipped",
        "smiles",
        "version",
        "x",
    ]
    assert state["version"] == [FEATURIZER_VERSION, FEATURIZER_VERSION]
    assert state["skipped"] == [[2, "C1CC", "invalid SMILES 'C1CC': syntax error"]]
    assert state["num_nodes"].tolist() == [3, 7] and state["x"].sum() == 72
    smiles = ["CCO", "c1ccccc1O", "C1CC"]
    featurize(smiles, on_error="skip", cache_dir=tmp_path, largest_fragment=True)
    assert (tmp_path / "molgraphs-b6dd36d0ee4f994d2951e5d0.pt").exists()
