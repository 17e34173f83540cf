"""The on-disk molecule store: same graphs as in memory, atomic chunks and resume, versions."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from gconv.data import MoleculeDataset, MoleculeStore, StoreDataset, featurize

SMILES = [
    "CCO",
    "c1ccccc1O",
    "C1CC",  # unclosed ring: a bad row
    "CC(=O)Nc1ccc(O)cc1",
    "OCC",  # ethanol again: a duplicate of row 0
    "[Na+].[Cl-]",
    "C[C@H](N)C(=O)O",
    "",  # empty: a bad row
    "c1ccc2ccccc2c1",
    "CCN(CC)CC",
    "O=C1CCCN1",
    "C",
    "FC(F)(F)c1ccccc1",
    "CCOC(=O)c1ccncc1",
]
Y = [1.0, 2.0, 3.0, 4.0, 1.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, float("nan"), 14.0]


def write_csv(path: Path, smiles=SMILES, y=Y) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "logS"])
        for s, v in zip(smiles, y, strict=True):
            writer.writerow([s, "" if np.isnan(v) else v])
    return path


def same_graph(a, b) -> None:
    assert a.smiles == b.smiles
    for key in ("x", "edge_index", "edge_attr", "y"):
        if key in a or key in b:
            assert a[key].dtype == b[key].dtype, key
            assert torch.equal(a[key], b[key]) or torch.allclose(a[key], b[key], equal_nan=True)


def test_store_items_equal_the_in_memory_data_set(tmp_path):
    csv_path = write_csv(tmp_path / "mols.csv")
    store = MoleculeStore.from_csv(csv_path, tmp_path / "stores", "smiles", ["logS"], chunk_rows=4)
    on_disk = StoreDataset(store)
    with pytest.warns(UserWarning):
        in_memory = MoleculeDataset.from_csv(csv_path, "smiles", "logS", on_error="skip")
    assert len(on_disk) == len(in_memory) == 11  # 2 bad rows, 1 merged duplicate
    assert on_disk.rows == in_memory.rows
    assert list(on_disk.smiles) == in_memory.smiles
    assert on_disk.skipped == in_memory.skipped
    assert on_disk.duplicates == in_memory.duplicates
    assert store.num_rows == in_memory.num_rows == len(SMILES)
    for i in range(len(in_memory)):
        same_graph(on_disk[i], in_memory[i])
    # the graphs are bit-identical to featurize()'s, codes and all
    reference = featurize([s for s in SMILES if s not in ("C1CC", "")], on_error="skip").graphs
    assert torch.equal(store.graph(2).x, reference[2].x)
    # batches through PyG's DataLoader with worker processes, shuffled per epoch
    loader = DataLoader(on_disk, batch_size=4, shuffle=True, num_workers=2)
    first = [b.smiles for b in loader]
    second = [b.smiles for b in loader]
    assert sorted(sum(first, [])) == sorted(in_memory.smiles)
    assert first != second


def test_splits_equal_the_in_memory_splits(tmp_path):
    csv_path = write_csv(tmp_path / "mols.csv")
    on_disk = StoreDataset(MoleculeStore.from_csv(csv_path, tmp_path, "smiles", ["logS"]))
    with pytest.warns(UserWarning):
        in_memory = MoleculeDataset.from_csv(csv_path, "smiles", "logS", on_error="skip")
    for method in ("scaffold", "random"):
        for a, b in zip(
            on_disk.split(method, (0.6, 0.2, 0.2), seed=3),
            in_memory.split(method, (0.6, 0.2, 0.2), seed=3),
            strict=True,
        ):
            assert a.rows == b.rows
            torch.testing.assert_close(a.y, b.y, equal_nan=True)
    labels = ["train", "val", "test", "train", "train", "val", "test"] + ["train"] * 7
    for a, b in zip(on_disk.split_by(labels), in_memory.split_by(labels), strict=True):
        assert a.rows == b.rows
    labels[4] = "test"  # row 4 repeats row 0's molecule in another split
    with pytest.raises(ValueError, match="rows 0 and 4 hold the same molecule"):
        on_disk.split_by(labels)


def test_conflicting_duplicates_are_refused_as_in_memory(tmp_path):
    y = list(Y)
    y[4] = 5.0  # ethanol with another label
    csv_path = write_csv(tmp_path / "mols.csv", y=y)
    store = MoleculeStore.from_csv(csv_path, tmp_path, "smiles", ["logS"])
    with pytest.raises(
        ValueError, match=r"1 molecule\(s\) appear in several rows.*'CCO' in rows 0, 4"
    ):
        StoreDataset(store)
    mean = StoreDataset(store, duplicates="mean")
    assert mean.y[0, 0].item() == 3.0


def test_a_killed_run_resumes_to_the_same_bytes(tmp_path):
    csv_path = write_csv(tmp_path / "mols.csv")
    whole = MoleculeStore.from_csv(csv_path, tmp_path / "a", "smiles", ["logS"], chunk_rows=3)

    class Killed(Exception):
        pass

    def kill_after_chunk_1(k: int) -> None:
        if k == 1:
            raise Killed

    with pytest.raises(Killed):
        MoleculeStore.from_csv(
            csv_path, tmp_path / "b", "smiles", ["logS"], chunk_rows=3, on_chunk=kill_after_chunk_1
        )
    partial = next((tmp_path / "b").iterdir())
    assert sorted(p.name for p in partial.glob("chunk_*")) == ["chunk_000000", "chunk_000001"]
    with pytest.raises(ValueError, match="is incomplete"):
        MoleculeStore(partial)
    (partial / ".chunk_000002.tmp-999").mkdir()  # what a kill during a write leaves
    written = []
    resumed = MoleculeStore.from_csv(
        csv_path, tmp_path / "b", "smiles", ["logS"], chunk_rows=3, on_chunk=written.append
    )
    assert written == [2, 3, 4]  # finished chunks were skipped
    assert not list(partial.glob(".chunk_*"))
    files_a = sorted(p.relative_to(whole.path) for p in whole.path.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(resumed.path) for p in resumed.path.rglob("*") if p.is_file())
    assert files_a == files_b
    for name in files_a:
        assert (whole.path / name).read_bytes() == (resumed.path / name).read_bytes(), name


def test_worker_processes_write_the_same_store(tmp_path):
    csv_path = write_csv(tmp_path / "mols.csv")
    one = MoleculeStore.from_csv(csv_path, tmp_path / "a", "smiles", ["logS"], chunk_rows=3)
    two = MoleculeStore.from_csv(
        csv_path, tmp_path / "b", "smiles", ["logS"], chunk_rows=3, n_jobs=2
    )
    for name in sorted(p.relative_to(one.path) for p in one.path.rglob("*") if p.is_file()):
        assert (one.path / name).read_bytes() == (two.path / name).read_bytes(), name


def test_a_second_run_reuses_the_store_and_a_changed_file_does_not(tmp_path):
    csv_path = write_csv(tmp_path / "mols.csv")
    first = MoleculeStore.from_csv(csv_path, tmp_path / "s", "smiles", ["logS"])
    written = []
    again = MoleculeStore.from_csv(
        csv_path, tmp_path / "s", "smiles", ["logS"], on_chunk=written.append
    )
    assert again.path == first.path and written == []
    write_csv(csv_path, y=[v + 1 for v in Y])
    changed = MoleculeStore.from_csv(csv_path, tmp_path / "s", "smiles", ["logS"])
    assert changed.path != first.path


def test_another_featurizer_version_is_refused_in_one_line(tmp_path):
    csv_path = write_csv(tmp_path / "mols.csv")
    store = MoleculeStore.from_csv(csv_path, tmp_path, "smiles", ["logS"])
    meta = json.loads((store.path / "store.json").read_text())
    meta["featurizer"] = ["gconv-mol-v0", "gconv-mol-v0"]
    (store.path / "store.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"was featurised by \['gconv-mol-v0'.*featurises with"):
        MoleculeStore(store.path)


def test_bad_target_cell_and_missing_column_name_where(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("smiles,logS\nCCO,1\nCCC,abc\n")
    with pytest.raises(ValueError, match="row 1, column 'logS'"):
        MoleculeStore.from_csv(path, tmp_path / "s", "smiles", ["logS"])
    with pytest.raises(ValueError, match=r"has no column\(s\) \['pIC50'\]"):
        MoleculeStore.from_csv(path, tmp_path / "s", "smiles", ["pIC50"])


def test_from_smiles_and_descriptors_stored_beside_the_graphs(tmp_path):
    from gconv.data import Standardizer, rdkit_descriptors

    smiles = ["CCO", "c1ccccc1O", "CC(=O)O", "CCN"]
    names = ["MolWt", "TPSA"]
    store = MoleculeStore.from_smiles(
        smiles, [1.0, 2.0, 3.0, 4.0], ["y"], tmp_path, descriptors=names
    )
    data = StoreDataset(store)
    raw = rdkit_descriptors(smiles, names=names)
    np.testing.assert_array_equal(data.descriptors(), raw)
    scaler = Standardizer.fit(raw, clip=5.0, fill_nan=0.0)
    scaled = data.with_scaled_descriptors(scaler)
    in_memory = MoleculeDataset(smiles, [1.0, 2.0, 3.0, 4.0]).with_descriptors(
        scaler.transform(raw)
    )
    for i in range(len(smiles)):
        assert torch.equal(scaled[i].x_d, in_memory[i].x_d)


def test_node_feature_sums_equal_the_graphs_sums(tmp_path):
    csv_path = write_csv(tmp_path / "mols.csv")
    data = StoreDataset(
        MoleculeStore.from_csv(csv_path, tmp_path, "smiles", ["logS"], chunk_rows=4)
    )
    part = data[[5, 0, 3]]
    expected = np.stack([part[i].x.sum(0).numpy() for i in range(len(part))])
    np.testing.assert_array_equal(part.node_feature_sums(), expected)


def test_a_chunk_another_writer_finished_first_is_kept(tmp_path):
    """Two writers of one store (two ranks, two shells): the second rename of a chunk finds it
    done, drops its own copy (the same bytes) and carries on."""
    from gconv.data.store import _write_chunk

    options = {"largest_fragment": False, "descriptors": None, "canonical": True,
               "scaffolds": True, "chunk_rows": 4}  # fmt: skip
    targets = np.zeros((4, 0), np.float32)
    _write_chunk(str(tmp_path), 0, 0, SMILES[:4], targets, options)
    before = (tmp_path / "chunk_000000" / "arrays.bin").read_bytes()
    _write_chunk(str(tmp_path), 0, 0, SMILES[:4], targets, options)
    assert (tmp_path / "chunk_000000" / "arrays.bin").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["chunk_000000"]


def _store_files_in_use(store: MoleculeStore) -> tuple[int, list[str]]:
    """Resident KB of this process's mappings of the store's files, and the chunk files it has
    open (sorted)."""
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields[0]) > 8 and ":" not in fields[0]:  # a mapping's header
            inside = len(fields) >= 6 and fields[-1].startswith(str(store.path))
        elif inside and fields[0] == "Rss:":
            resident += int(fields[1])
    open_files = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(str(store.path)):
                open_files.append(Path(target).parent.name)
    return resident, sorted(open_files)


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc")
def test_reads_map_nothing_and_keep_few_files_open(tmp_path, monkeypatch):
    """Graphs, strings and whole fields are read with pread: the process maps no page of the
    store (a map kept every page a read touched, up to 320 MB in a loader worker at 1M), and
    keeps at most OPEN_CHUNKS chunk files open, the least recently read closed first."""
    from gconv.data import read_embedded
    from gconv.data import store as store_module

    monkeypatch.setattr(store_module, "OPEN_CHUNKS", 3)
    smiles, y, _ = read_embedded("tpsa")
    store = MoleculeStore.from_smiles(
        smiles, np.array(y)[:, None], ["tpsa"], tmp_path / "s", chunk_rows=1000
    )
    first = store.graph(0)
    for position in range(0, len(store), 7):
        store.graph(position)
    assert len(store.strings("scaffold", range(len(store)))) == len(store)
    assert len(store.field("atom_codes")) > len(store)
    for position in (10, 1500, 3500, 2500):  # chunks 0, 1, 3, 2: chunk 2 read last
        store.graph(position)
    resident, open_files = _store_files_in_use(store)
    assert resident == 0
    assert open_files == ["chunk_000001", "chunk_000002", "chunk_000003"]
    same_graph(store.graph(0), first)  # a closed chunk opens again
    assert _store_files_in_use(store)[1] == ["chunk_000000", "chunk_000002", "chunk_000003"]
    store.close()
    assert _store_files_in_use(store)[1] == []


def test_rows_are_a_compact_sequence_equal_to_the_list(tmp_path):
    """A store's data set and its views keep their source rows in an int64 array (8 bytes a
    molecule), read as the list of ints the in-memory data set holds."""
    data = StoreDataset(
        MoleculeStore.from_csv(write_csv(tmp_path / "m.csv"), tmp_path, "smiles", ["logS"])
    )
    rows = [0, 1, 3, 5, 6, 8, 9, 10, 11, 12, 13]  # rows 2, 7 bad; row 4 a copy of row 0
    assert data.rows == rows and rows == data.rows and data.rows != rows[:-1]
    assert data.rows.values.dtype == np.int64 and isinstance(data.rows[0], int)
    assert data.rows[1:3] == [1, 3] and list(data.rows) == rows and len(data.rows) == 11
    view = data[[4, 0]]
    assert view.rows == [6, 0] and np.asarray(view.rows).tolist() == [6, 0]
    assert [d.kept_row for d in view.duplicates] == [0] and not data[[1]].duplicates
