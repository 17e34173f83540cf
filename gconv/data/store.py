r"""Molecule sets larger than memory: an on-disk store of featurised graphs, and a data set over it.

:class:`MoleculeStore` featurises a CSV file (or lists of SMILES and targets) chunk by chunk,
in worker processes, into a directory of flat arrays; :class:`StoreDataset` reads it back one
graph at a time, for :class:`torch_geometric.loader.DataLoader` and the
:class:`~gconv.train.Trainer`, with or without loader workers and under ``torchrun``. Memory
holds a few small arrays per molecule (row, label, offsets: about 30 bytes) and the loader's
batches, never the graphs.

**Layout.** ::

    <store>/store.json            format, featuriser versions, source hash, options;
                                  "complete" once every chunk is written
    <store>/chunk_000000/         the molecules of source rows [0, chunk_rows)
        arrays.bin                every field below, 64-byte aligned, one file read with pread
        index.json                name -> (dtype, shape, offset), the chunk's bad rows
    <store>/chunk_000001/ ...

Per chunk: ``rows`` (int64, the source row of each molecule), ``num_atoms`` / ``num_bonds``
(int32), ``atom_codes`` ``[atoms, 8]`` and ``bond_codes`` ``[bonds, 2 + 4]`` (the raw RDKit codes
of :meth:`~gconv.data.GraphFeaturizer.codes`, int16: a graph is one-hot encoded when read, by the
same code as in memory, so it is bit-identical to :func:`~gconv.data.featurize`'s), ``y``
(float32 ``[n, tasks]``), the SMILES as written, a 64-bit hash of each graph that does not depend
on atom order (``graph_hash``, :meth:`~gconv.data.GraphFeaturizer.graph_hashes`: duplicates are
looked for among equal hashes, and only those molecules' canonical SMILES are computed, when the
store is read), their Bemis-Murcko scaffolds (scaffold splits without parsing again) — each string
field as UTF-8 bytes plus int64 offsets — and, optionally, RDKit descriptors (float32
``[n, D]``). Without descriptors, 0.57 KB a molecule of the embedded NCI set, 1.1 KB of the
larger ChEMBL ones and 0.86 KB of ``bench_scale.py``'s generated million, against ~12 KB in memory.

**Atomic chunks, resume.** A worker writes a chunk into a hidden temporary directory and renames
it into place, so a chunk directory exists only when complete. A killed run leaves complete chunks
and perhaps a temporary directory; the next run removes the latter, skips the former, and ends
with the same bytes as an uninterrupted run (tested). Chunks hold fixed row ranges, so their
contents do not depend on how many workers wrote them or in which order.

**Keys and versions.** :meth:`MoleculeStore.from_csv` names the store after a SHA-256 of the
file's bytes, the featuriser's versions and the options, so a second run on the same file reuses
it, and a changed file or featuriser gets a new store. Opening a store written by another
featuriser raises a :class:`ValueError` naming both versions.

Example::

    >>> store = MoleculeStore.from_csv("big.csv", "stores/", "smiles", ["logS"], n_jobs=2)
    >>> data = StoreDataset(store)
    >>> train, val, test = data.split("scaffold", seed=0)
    >>> loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=2)
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import json
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Data

from gconv.data._utils import (
    check_training_labels,
    merge_duplicate_groups,
    parse_target,
    split_positions,
)
from gconv.data.featurizers import (
    GraphCodes,
    GraphFeaturizer,
    largest_fragment_of,
    mol_from_smiles,
    parse_smiles,
)
from gconv.data.splitting import random_split_indices, scaffold_split_positions

__all__ = ["STORE_FORMAT", "STORE_FORMAT_VERSION", "CHUNK_ROWS", "MoleculeStore", "StoreDataset"]

STORE_FORMAT = "gconv-molecule-store"
#: Raised when a change would make an older gconv misread a store.
STORE_FORMAT_VERSION = 2
#: Source rows a chunk holds (the unit of work, of atomic writes and of resume).
CHUNK_ROWS = 10_000
_MOLS_PER_BATCH = 1024  # molecules whose codes are read together (as gconv.data.featurize)
_ALIGN = 64
#: Chunk files a process keeps open (the least recently read is closed first): a store of any
#: size stays under the open-file limit (1,024 by default on Linux).
OPEN_CHUNKS = 256
_PREAD = getattr(os, "pread", None)  # not on Windows
_STRING_FIELDS = ("smiles", "scaffold")


# ---------------------------------------------------------------------------------------------
# Writing: one chunk
# ---------------------------------------------------------------------------------------------


def _strings(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _small_ints(codes: np.ndarray) -> np.ndarray:
    """int16 when every code fits (the default tables' do: atomic numbers, enum values), else
    the int64 codes as they are (a custom feature may return anything)."""
    if codes.size == 0 or (codes.min() >= -(2**15) and codes.max() < 2**15):
        return codes.astype(np.int16)
    return codes


def _write_arrays(directory: Path, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
    index, offset = {}, 0
    with open(directory / "arrays.bin", "wb") as f:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            pad = -offset % _ALIGN
            f.write(b"\0" * pad)
            offset += pad
            index[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
            f.write(array.tobytes())
            offset += array.nbytes
    (directory / "index.json").write_text(json.dumps({"arrays": index, **extra}, indent=1) + "\n")


def _parse(smiles: Any) -> Chem.Mol:
    """The store's molecule of a source cell (stripped, as :class:`MoleculeDataset`):
    :func:`mol_from_smiles`, or :func:`parse_smiles`, which raises with the reason."""
    if isinstance(smiles, str):
        smiles = smiles.strip()
        if smiles and len(smiles.split()) == 1:  # else parse_smiles says why not
            mol = mol_from_smiles(smiles)
            if mol is not None and mol.GetNumAtoms():
                return mol
    return parse_smiles(smiles)


def _chunk_name(k: int) -> str:
    return f"chunk_{k:06d}"


def _write_chunk(
    store_dir: str,
    k: int,
    first_row: int,
    smiles_list: list[str],
    targets: np.ndarray,
    options: dict[str, Any],
    featurizer: GraphFeaturizer | None = None,
) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Featurises one chunk and renames it into place; ``(k, molecules, bad rows)``.

    Each SMILES is parsed once (RDKit's logs blocked once for the chunk, not per molecule);
    its molecule gives the scaffold and the graph's codes, read a batch of molecules at a time,
    and the codes give the graph hash (:meth:`GraphFeaturizer.graph_hashes`: duplicates are
    looked for among equal hashes, so no canonical SMILES is written). Shortcuts that give the
    same bytes: a molecule without rings has the empty scaffold without RDKit's
    ``MurckoScaffoldSmiles`` (which keeps no atom of it), and one whose SMILES has no ``@``,
    ``/`` or ``\\`` has no chiral tags or bond stereo to read (:meth:`GraphFeaturizer.codes`'
    ``stereo``).
    """
    featurizer = featurizer or GraphFeaturizer()
    rows, kept_smiles, scaffolds, skipped = [], [], [], []
    codes: list[GraphCodes] = []
    hashes: list[np.ndarray] = []
    mols: list[Chem.Mol] = []
    stereo: list[bool] = []

    def flush() -> None:
        batch = featurizer.codes(mols, stereo)
        if options["canonical"]:
            hashes.append(featurizer.graph_hashes(batch))
        # int16 a batch at a time: the chunk's int64 codes never exist all at once
        codes.append(batch._replace(
            atom_codes=_small_ints(batch.atom_codes), bond_codes=_small_ints(batch.bond_codes)
        ))  # fmt: skip
        mols.clear()
        stereo.clear()

    with rdBase.BlockLogs():
        for offset, smiles in enumerate(smiles_list):
            row = first_row + offset
            if isinstance(smiles, str):
                smiles = smiles.strip()  # as MoleculeDataset
            try:
                mol = _parse(smiles)
            except (ValueError, TypeError) as err:
                skipped.append((row, str(smiles), str(err)))
                continue
            if options["scaffolds"]:  # of the molecule as written, as murcko_scaffold(smiles)
                scaffolds.append(
                    MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)
                    if mol.GetRingInfo().NumRings()
                    else ""
                )
            if options["largest_fragment"]:
                mol = largest_fragment_of(mol)
            rows.append(row)
            kept_smiles.append(smiles)
            mols.append(mol)
            stereo.append("@" in smiles or "/" in smiles or "\\" in smiles)
            if len(mols) == _MOLS_PER_BATCH:
                flush()
    if mols or not codes:
        flush()
    num_atoms = np.concatenate([c.num_atoms for c in codes]).astype(np.int64)
    num_bonds = np.concatenate([c.num_bonds for c in codes]).astype(np.int64)
    arrays: dict[str, np.ndarray] = {
        "rows": np.asarray(rows, dtype=np.int64),
        "num_atoms": num_atoms.astype(np.int32),
        "num_bonds": num_bonds.astype(np.int32),
        # where each molecule's atoms and bonds start: read from the file like the codes (in
        # memory, they would cost every reading process 16 bytes a molecule)
        "atom_offsets": np.concatenate([np.zeros(1, np.int64), np.cumsum(num_atoms)]),
        "bond_offsets": np.concatenate([np.zeros(1, np.int64), np.cumsum(num_bonds)]),
        "atom_codes": _small_ints(np.concatenate([c.atom_codes for c in codes])),
        "bond_codes": _small_ints(np.concatenate([c.bond_codes for c in codes])),
        "y": np.ascontiguousarray(targets[np.asarray(rows, dtype=np.int64) - first_row]),
    }
    strings = {"smiles": kept_smiles, "scaffold": scaffolds}
    for name in _STRING_FIELDS:
        if name == "smiles" or options["scaffolds"]:
            arrays[f"{name}_bytes"], arrays[f"{name}_offsets"] = _strings(strings[name])
    if options["canonical"]:
        arrays["graph_hash"] = np.concatenate(hashes)
    if options["descriptors"]:
        from gconv.data.descriptors import rdkit_descriptors

        names = options["descriptors"]
        arrays["descriptors"] = (
            rdkit_descriptors(kept_smiles, names=names)
            if kept_smiles
            else np.zeros((0, len(names)), dtype=np.float32)
        )

    final = Path(store_dir) / _chunk_name(k)
    tmp = Path(store_dir) / f".{_chunk_name(k)}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    extra = {"first_row": first_row, "num_rows": len(smiles_list), "skipped": skipped}
    _write_arrays(tmp, arrays, extra)
    try:
        os.rename(tmp, final)  # atomic: a chunk directory is complete or absent
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp)  # another writer finished this chunk first: the same rows, same bytes
    return k, len(rows), skipped


# ---------------------------------------------------------------------------------------------
# Reading sources in chunks
# ---------------------------------------------------------------------------------------------


def _csv_chunks(
    path: Path, smiles_column: str, target_columns: Sequence[str], chunk_rows: int
) -> Iterator[tuple[list[str], np.ndarray]]:
    """``(SMILES, targets [n, T] float32)`` per ``chunk_rows`` data rows of a CSV file."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ValueError(
                f"{path} is empty: expected a header row naming the columns "
                f"{[smiles_column, *target_columns]}, then one row per molecule"
            )
        missing = [c for c in (smiles_column, *target_columns) if c not in header]
        if missing:
            raise ValueError(f"{path} has no column(s) {missing}; its columns are {header}")
        s_col = header.index(smiles_column)
        t_cols = [header.index(c) for c in target_columns]
        row = 0
        smiles: list[str] = []
        labels: list[list[float]] = []
        for record in reader:
            record = record + [""] * (len(header) - len(record))
            smiles.append(record[s_col] or "")
            labels.append([parse_target(record[c], row, header[c]) for c in t_cols])
            row += 1
            if len(smiles) == chunk_rows:
                yield smiles, np.array(labels, np.float32).reshape(len(smiles), len(t_cols))
                smiles, labels = [], []
        if row == 0:
            raise ValueError(f"{path} has a header row ({header}) but no data rows")
        if smiles:
            yield smiles, np.array(labels, np.float32).reshape(len(smiles), len(t_cols))


def _list_chunks(
    smiles: Sequence[str], targets: np.ndarray, chunk_rows: int
) -> Iterator[tuple[list[str], np.ndarray]]:
    for start in range(0, len(smiles), chunk_rows):
        yield list(smiles[start : start + chunk_rows]), targets[start : start + chunk_rows]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


class _Chunk:
    """One chunk's ``arrays.bin``, read with ``pread``: some rows of a field, or all of it.

    A read copies the bytes it asks for and maps nothing, so a process holds no page of the
    store once a read's arrays are gone. (A memory map keeps every page a read touched in the
    process until it is unmapped, and the kernel maps whole large folios around each one: about
    1.5 MB a graph read at random from the generated million.)"""

    def __init__(self, directory: Path, index: dict[str, Any]) -> None:
        self.path = directory / "arrays.bin"
        #: name -> (dtype, shape of a row, bytes a row, byte offset in arrays.bin, rows)
        self.specs = {}
        for name, spec in index["arrays"].items():
            dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
            row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
            self.specs[name] = (dtype, shape[1:], row_bytes, int(spec["offset"]), shape[0])
        self._file: Any = None

    def open(self) -> None:
        if self._file is None:
            self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 (closed by close())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of a field (a new, read-only array); the file must be open."""
        dtype, row_shape, row_bytes, offset, _ = self.specs[name]
        size, at = (stop - start) * row_bytes, offset + start * row_bytes
        if _PREAD is not None:  # one system call; the file's position is not used
            data = _PREAD(self._file.fileno(), size, at)
        else:  # Windows
            self._file.seek(at)
            data = self._file.read(size)
        if len(data) != size:
            raise ValueError(f"{self.path} ends before byte {at + size}: a damaged store")
        return np.frombuffer(data, dtype).reshape(stop - start, *row_shape)

    def whole(self, name: str) -> np.ndarray:
        return self.rows(name, 0, self.specs[name][4])

    def string(self, name: str, j: int) -> str:
        start, stop = self.rows(f"{name}_offsets", j, j + 2).tolist()
        return self.rows(f"{name}_bytes", start, stop).tobytes().decode()


class MoleculeStore:
    r"""A complete on-disk store of featurised molecules (see the module docstring), opened for
    reading. Build one with :meth:`from_csv` or :meth:`from_smiles` (or :meth:`write`); read it
    with :class:`StoreDataset`.

    Reads are ``pread`` calls on the chunk files, opened lazily per process (at most
    :data:`OPEN_CHUNKS` at a time, the least recently read closed first): a store travels to
    :class:`~torch.utils.data.DataLoader` workers (fork or spawn) as its path and index, and
    each worker opens the chunks it reads. Nothing is memory-mapped, so a process's resident
    memory holds the graphs it is decoding, never pages of the store: the store's bytes stay in
    the operating system's file cache, shared by every process (a map would keep each page a
    read touched: an epoch that shuffles a million molecules put up to 320 MB of store pages
    into each loader worker between two ``madvise`` releases).

    Args:
        path (str or PathLike): The store directory.
        featurizer (GraphFeaturizer, optional): The featuriser whose versions the store must
            have been written by; it one-hot encodes the stored codes. (default: gconv's)

    Attributes:
        path (Path), num_rows (int: source rows, bad ones included), target_names (list[str]),
        skipped (list of ``(row, smiles, reason)``), descriptor_names (list[str] or None).

    Raises:
        ValueError: not a store, an incomplete store, another format, or another featuriser
            (one line naming both versions).
    """

    def __init__(self, path: str | os.PathLike, featurizer: GraphFeaturizer | None = None) -> None:
        self.path = Path(path)
        self.featurizer = featurizer or GraphFeaturizer()
        meta_path = self.path / "store.json"
        if not meta_path.is_file():
            raise ValueError(f"{self.path} is not a gconv molecule store (no store.json)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != STORE_FORMAT or meta.get("format_version") != STORE_FORMAT_VERSION:
            raise ValueError(
                f"{self.path} holds format {meta.get('format')!r} version "
                f"{meta.get('format_version')!r}; this gconv reads {STORE_FORMAT!r} version "
                f"{STORE_FORMAT_VERSION}: featurise the source again"
            )
        if meta.get("featurizer") != self.featurizer.versions:
            raise ValueError(
                f"{self.path} was featurised by {meta.get('featurizer')} but this gconv "
                f"featurises with {self.featurizer.versions}: featurise the source again into a "
                "new store, or read this one with the gconv that wrote it"
            )
        if not meta.get("complete"):
            raise ValueError(
                f"{self.path} is incomplete (a run stopped while writing it): write it again "
                "with the same source and options to resume"
            )
        self.meta = meta
        self.target_names: list[str] = list(meta["target_names"])
        self.descriptor_names: list[str] | None = meta["options"]["descriptors"] or None
        self.num_rows: int = meta["num_rows"]
        self._indices = []
        self.skipped: list[tuple[int, str, str]] = []
        counts = []
        for k in range(meta["num_chunks"]):
            index = json.loads((self.path / _chunk_name(k) / "index.json").read_text())
            self._indices.append(index)
            self.skipped += [(int(r), str(s), str(why)) for r, s, why in index["skipped"]]
            counts.append(index["arrays"]["rows"]["shape"][0])
        #: first molecule of each chunk, and the total at the end
        self.chunk_start = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.chunk_start[1:])
        self._chunks: dict[int, _Chunk] = {}
        self._open: OrderedDict[int, None] = OrderedDict()  # chunks with an open file, LRU first
        self._pid = os.getpid()

    # -- writing ---------------------------------------------------------------------------

    @classmethod
    def write(
        cls,
        path: str | os.PathLike,
        chunks: Iterable[tuple[list[str], np.ndarray]],
        target_names: Sequence[str],
        *,
        source: dict[str, Any],
        n_jobs: int = 1,
        largest_fragment: bool = False,
        descriptors: Sequence[str] | None = None,
        canonical: bool = True,
        scaffolds: bool = True,
        chunk_rows: int = CHUNK_ROWS,
        featurizer: GraphFeaturizer | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> MoleculeStore:
        r"""Featurises ``chunks`` of ``(SMILES, targets [n, T])`` into the store ``path`` (or
        finishes it: complete chunks are skipped) and opens it.

        Args:
            path: The store directory (created).
            chunks: ``chunk_rows`` source rows at a time (the last may be shorter).
            target_names: The ``T`` task names.
            source: What the rows are (e.g. the file's SHA-256): a store started from another
                source or with other options is refused, not mixed.
            n_jobs (int, optional): Worker processes; ``-1`` every CPU. At most ``n_jobs + 1``
                chunks are in flight, so memory does not grow with the source.
                (default: :obj:`1`)
            largest_fragment (bool, optional): Featurise each molecule's largest fragment.
            descriptors (Sequence[str], optional): RDKit descriptor names to store beside the
                graphs (:func:`~gconv.data.rdkit_descriptors`, ~10 ms a molecule).
            canonical (bool, optional): Store each molecule's graph hash
                (:meth:`~gconv.data.GraphFeaturizer.graph_hashes`), what lets
                :class:`StoreDataset` merge duplicates: copies of one canonical SMILES, which it
                computes only for molecules whose hashes meet. (default: :obj:`True`)
            scaffolds (bool, optional): Store Bemis-Murcko scaffolds (scaffold splits).
                (default: :obj:`True`)
            chunk_rows (int, optional): Rows per chunk; must match ``chunks``.
            featurizer (GraphFeaturizer, optional): (default: gconv's)
            on_chunk (callable, optional): Called with each chunk's number once it is on disk
                (progress; the tests stop a run with it).
        """
        path = Path(path)
        featurizer = featurizer or GraphFeaturizer()
        n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
        if not isinstance(n_jobs, int) or n_jobs < 1:
            raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
        options = {
            "largest_fragment": bool(largest_fragment),
            "descriptors": list(descriptors) if descriptors else None,
            "canonical": bool(canonical),
            "scaffolds": bool(scaffolds),
            "chunk_rows": int(chunk_rows),
        }
        meta = {
            "format": STORE_FORMAT,
            "format_version": STORE_FORMAT_VERSION,
            "featurizer": featurizer.versions,
            "source": source,
            "target_names": list(target_names),
            "options": options,
        }
        path.mkdir(parents=True, exist_ok=True)
        meta_path = path / "store.json"
        if meta_path.is_file():
            old = json.loads(meta_path.read_text())
            started = {k: old.get(k) for k in meta}
            if started != meta:
                raise ValueError(
                    f"{path} holds a store of another source, featuriser or options "
                    f"({started}); use another directory, or delete it"
                )
            if old.get("complete"):
                return cls(path, featurizer)
        else:
            _atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
        for leftover in path.glob(".chunk_*.tmp-*"):  # a killed run's half-written chunk
            shutil.rmtree(leftover, ignore_errors=True)

        custom = featurizer if featurizer.versions != GraphFeaturizer().versions else None
        num_rows = num_chunks = 0
        pending: set[Future] = set()
        pool = None
        if n_jobs > 1:
            # Forked workers share the parent's pages until someone writes them, and the cyclic
            # garbage collector writes to every object it visits: a full collection in the main
            # process or a worker copied ~120 MB of import-time objects (torch, PyG, RDKit) per
            # process, which is why peak memory grew with the run's length. Frozen objects are
            # never visited (in the workers either: they inherit the freeze); unfrozen after,
            # unless the application had frozen objects itself (then it keeps them frozen).
            unfreeze = gc.get_freeze_count() == 0
            gc.freeze()
            pool = ProcessPoolExecutor(max_workers=n_jobs)

        def finished(result: tuple[int, int, list] | Future) -> None:
            k = (result.result() if isinstance(result, Future) else result)[0]  # raises its error
            if on_chunk is not None:
                on_chunk(k)

        try:
            for k, (smiles, targets) in enumerate(chunks):
                first_row = num_rows
                num_rows += len(smiles)
                num_chunks = k + 1
                if (path / _chunk_name(k)).is_dir():
                    continue  # written by an earlier run
                args = (str(path), k, first_row, smiles, targets, options, custom)
                if pool is None:
                    finished(_write_chunk(*args))
                    continue
                pending.add(pool.submit(_write_chunk, *args))
                while len(pending) > n_jobs:  # bounded: the source is not read ahead
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        finished(future)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    finished(future)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                if unfreeze:
                    gc.unfreeze()
        meta.update(complete=True, num_rows=num_rows, num_chunks=num_chunks)
        _atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
        return cls(path, featurizer)

    @classmethod
    def from_csv(
        cls,
        csv_path: str | os.PathLike,
        root: str | os.PathLike,
        smiles_column: str = "smiles",
        target_columns: Sequence[str] = (),
        **kwargs: Any,
    ) -> MoleculeStore:
        """The store of a CSV file under ``root``: reused when one exists for the same bytes,
        featuriser and options (``root/store-<key>``), else written (or resumed) and opened.
        ``kwargs`` go to :meth:`write`.

        Raises:
            ValueError: a missing column, a bad target cell (naming row and column), an empty
                file.
        """
        csv_path = Path(csv_path)
        target_columns = list(target_columns)
        source = {
            "file_sha256": _file_sha256(csv_path),
            "smiles_column": smiles_column,
            "target_columns": target_columns,
        }
        path = _keyed_path(root, source, kwargs)
        if _is_complete(path):
            with contextlib.suppress(ValueError):
                return cls(path, kwargs.get("featurizer"))
        chunk_rows = kwargs.get("chunk_rows", CHUNK_ROWS)
        chunks = _csv_chunks(csv_path, smiles_column, target_columns, chunk_rows)
        return cls.write(path, chunks, target_columns, source=source, **kwargs)

    @classmethod
    def from_smiles(
        cls,
        smiles: Sequence[str],
        targets: np.ndarray | Sequence | None,
        target_names: Sequence[str],
        root: str | os.PathLike,
        **kwargs: Any,
    ) -> MoleculeStore:
        """The store of lists of SMILES and targets (``[N]`` or ``[N, T]``, NaN for missing)
        under ``root``, keyed by their content; as :meth:`from_csv` otherwise."""
        smiles = ["" if s is None else str(s) for s in smiles]
        target_names = list(target_names)
        y = np.zeros((len(smiles), 0), np.float32)
        if targets is not None:
            y = np.asarray(targets, dtype=np.float32).reshape(len(smiles), -1)
        digest = hashlib.sha256()
        for s in smiles:
            digest.update(s.encode() + b"\n")
        digest.update(y.tobytes())
        source = {"content_sha256": digest.hexdigest(), "target_columns": target_names}
        path = _keyed_path(root, source, kwargs)
        if _is_complete(path):
            with contextlib.suppress(ValueError):
                return cls(path, kwargs.get("featurizer"))
        chunks = _list_chunks(smiles, y, kwargs.get("chunk_rows", CHUNK_ROWS))
        return cls.write(path, chunks, target_names, source=source, **kwargs)

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.chunk_start[-1])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_chunks"], state["_open"] = {}, OrderedDict()  # files are per process
        return state

    def _chunk(self, k: int) -> _Chunk:
        """Chunk ``k``, its file open (the least recently read closed past OPEN_CHUNKS)."""
        if self._pid != os.getpid():  # a forked loader worker: open the files itself
            self._chunks, self._open, self._pid = {}, OrderedDict(), os.getpid()
        chunk = self._chunks.get(k)
        if chunk is None:
            chunk = self._chunks[k] = _Chunk(self.path / _chunk_name(k), self._indices[k])
        if k in self._open:
            self._open.move_to_end(k)
        else:
            chunk.open()
            self._open[k] = None
            if len(self._open) > OPEN_CHUNKS:
                self._chunks[self._open.popitem(last=False)[0]].close()
        return chunk

    def close(self) -> None:
        """Closes the chunk files this process has open (reading opens them again)."""
        for k in self._open:
            self._chunks[k].close()
        self._open.clear()

    def _locate(self, position: int) -> tuple[_Chunk, int]:
        if not 0 <= position < len(self):
            raise IndexError(f"molecule {position} of a store of {len(self)}")
        k = int(np.searchsorted(self.chunk_start, position, side="right")) - 1
        return self._chunk(k), position - int(self.chunk_start[k])

    def graph(self, position: int) -> Data:
        """Molecule ``position``'s graph: ``x``, ``edge_index``, ``edge_attr``, ``smiles``."""
        chunk, j = self._locate(position)
        a0, a1 = chunk.rows("atom_offsets", j, j + 2).tolist()
        b0, b1 = chunk.rows("bond_offsets", j, j + 2).tolist()
        codes = GraphCodes(
            chunk.rows("atom_codes", a0, a1),
            chunk.rows("bond_codes", b0, b1),
            np.array([a1 - a0]),
            np.array([b1 - b0]),
        )
        arrays = self.featurizer.from_codes(codes)[0]
        return arrays.to_data(chunk.string("smiles", j))

    def field(self, name: str) -> np.ndarray:
        """A per-molecule numeric field of every chunk, concatenated in memory (``rows``, ``y``,
        ``graph_hash``, ``num_atoms``: a few bytes a molecule)."""
        parts = [self._chunk(k).whole(name) for k in range(len(self._indices))]
        return np.concatenate(parts) if parts else np.zeros(0)

    def strings(self, name: str, positions: Iterable[int]) -> list[str]:
        """A string field (``smiles``, ``scaffold``) of some molecules, in the order given. A
        chunk that many of them share is read whole, once (a pass over every scaffold)."""
        positions = np.fromiter(positions, np.int64)
        if len(positions) and not (0 <= positions.min() and positions.max() < len(self)):
            bad = positions[(positions < 0) | (positions >= len(self))][0]
            raise IndexError(f"molecule {bad} of a store of {len(self)}")
        chunk_of = np.searchsorted(self.chunk_start, positions, side="right") - 1
        out: list[str] = [""] * len(positions)
        for k in np.unique(chunk_of).tolist():
            mine = np.flatnonzero(chunk_of == k)
            local = (positions[mine] - self.chunk_start[k]).tolist()
            chunk = self._chunk(k)
            if len(mine) < 64:
                for i, j in zip(mine.tolist(), local, strict=True):
                    out[i] = chunk.string(name, j)
                continue
            offsets = chunk.whole(f"{name}_offsets").tolist()
            text = chunk.whole(f"{name}_bytes").tobytes()
            for i, j in zip(mine.tolist(), local, strict=True):
                out[i] = text[offsets[j] : offsets[j + 1]].decode()
        return out

    def canonical_smiles(self, positions: Iterable[int]) -> list[str]:
        """RDKit's canonical SMILES of some molecules, of the molecule the store featurised
        (its largest fragment with ``largest_fragment``): the stored SMILES parsed again, as
        the store pass parsed it. Not stored: :class:`StoreDataset` needs it only for molecules
        whose graph hashes meet."""
        largest = self.meta["options"]["largest_fragment"]
        out = []
        with rdBase.BlockLogs():
            for smiles in self.strings("smiles", positions):
                mol = _parse(smiles)
                out.append(Chem.MolToSmiles(largest_fragment_of(mol) if largest else mol))
        return out

    def descriptors(self, positions: np.ndarray) -> np.ndarray:
        """The stored raw descriptors ``[len(positions), D]`` (float32)."""
        if not self.descriptor_names:
            raise ValueError(f"{self.path} holds no descriptors (write it with descriptors=...)")
        out = np.empty((len(positions), len(self.descriptor_names)), dtype=np.float32)
        for i, position in enumerate(positions):
            chunk, j = self._locate(int(position))
            out[i] = chunk.rows("descriptors", j, j + 1)[0]
        return out

    def disk_bytes(self) -> int:
        """The store's size on disk, in bytes."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def __repr__(self) -> str:
        return f"MoleculeStore({str(self.path)!r}, molecules={len(self)}, rows={self.num_rows})"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _keyed_path(root: str | os.PathLike, source: dict[str, Any], kwargs: dict[str, Any]) -> Path:
    featurizer = kwargs.get("featurizer") or GraphFeaturizer()
    options = {
        "largest_fragment": bool(kwargs.get("largest_fragment", False)),
        "descriptors": list(kwargs.get("descriptors") or []) or None,
        "canonical": bool(kwargs.get("canonical", True)),
        "scaffolds": bool(kwargs.get("scaffolds", True)),
        "chunk_rows": int(kwargs.get("chunk_rows", CHUNK_ROWS)),
    }
    payload = json.dumps([STORE_FORMAT_VERSION, featurizer.versions, source, options])
    return Path(root) / f"store-{hashlib.sha256(payload.encode()).hexdigest()[:24]}"


def _is_complete(path: Path) -> bool:
    try:
        return bool(json.loads((path / "store.json").read_text()).get("complete"))
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# The data set
# ---------------------------------------------------------------------------------------------


class _Strings(Sequence):
    """A lazy, read-only list of one string field of some molecules of a store."""

    def __init__(self, store: MoleculeStore, name: str, positions: np.ndarray) -> None:
        self.store, self.name, self.positions = store, name, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.store.strings(self.name, self.positions[i])
        return self.store.strings(self.name, [self.positions[i]])[0]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self.positions), 4096):
            yield from self.store.strings(self.name, self.positions[start : start + 4096])


class _Rows(Sequence):
    """The source rows of a data set's molecules, read-only, over an int64 array: 8 bytes a
    molecule where a list of ints takes 36 (a million-molecule set and its split views held
    three million of them). Indexing gives ints, slicing a list; equal to any sequence of the
    same ints, as the list it stands for would be."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i):  # type: ignore[override]
        return self.values[i].tolist()

    def __iter__(self) -> Iterator[int]:
        for start in range(0, len(self.values), 4096):
            yield from self.values[start : start + 4096].tolist()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Rows):
            return bool(np.array_equal(self.values, other.values))
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype)

    def __repr__(self) -> str:
        shown = ", ".join(map(str, self.values[:6].tolist()))
        return f"[{shown}{', ...' if len(self) > 6 else ''}] ({len(self)} rows)"


class StoreDataset(Dataset):
    r"""The molecules of a :class:`MoleculeStore` as a data set of graphs: what
    :class:`~gconv.data.MoleculeDataset` is in memory, item for item (the same ``Data``: ``x``,
    ``edge_index``, ``edge_attr``, ``smiles``, ``y`` ``[1, T]``, bit-identical), with the same
    duplicate rule, splits and transforms, and memory that does not hold the graphs.

    A graph is decoded from the stored codes when it is read (about 80 µs), so a
    :class:`torch_geometric.loader.DataLoader` with ``num_workers >= 2`` keeps a model fed; its
    shuffle draws an order per epoch as for any map-style data set, and under ``torchrun`` the
    Trainer's ``DistributedSampler`` gives each rank its shard.

    Args:
        store (MoleculeStore): The store.
        duplicates (str, optional): Copies of one molecule (same canonical SMILES) are merged
            into the first row, as :class:`~gconv.data.MoleculeDataset` does; copies with
            different labels: ``"error"``, ``"mean"`` or ``"first"``. Unlabelled stores keep
            every row. (default: :obj:`"error"`)

    Attributes:
        store, rows (a read-only sequence of ints), smiles (a lazy sequence), skipped,
        duplicates, num_rows,
        target_names: as :class:`~gconv.data.MoleculeDataset`'s.
    """

    def __init__(self, store: MoleculeStore, duplicates: str = "error") -> None:
        from gconv.data.datasets import Duplicate

        if duplicates not in ("error", "mean", "first"):
            raise ValueError(
                f"duplicates must be one of 'error', 'mean', 'first', got {duplicates!r}"
            )
        positions = np.arange(len(store), dtype=np.int64)
        rows = store.field("rows").astype(np.int64)
        y = torch.from_numpy(store.field("y").reshape(len(store), len(store.target_names)).copy())
        merged: list = []
        if store.target_names and len(store):
            empty = [n for t, n in enumerate(store.target_names) if torch.isnan(y[:, t]).all()]
            if empty:
                raise ValueError(
                    f"target column {empty[0]!r} has no labels: it is empty (or NaN) for all "
                    f"{len(store)} molecules; check the column name, or leave the column out"
                )
            if not store.meta["options"]["canonical"]:
                raise ValueError(
                    f"{store.path} has no graph hashes (written with canonical=False): "
                    "labelled molecules need them to merge duplicates"
                )
            groups, canonical = _duplicate_groups(store)
            if groups:
                dropped, kept_y, found, _ = merge_duplicate_groups(
                    groups,
                    y,
                    rows,
                    lambda p: store.strings("smiles", [p])[0],
                    canonical.__getitem__,
                    store.target_names,
                    duplicates,
                )
                for position, labels in kept_y.items():
                    y[position] = labels
                keep = np.ones(len(store), dtype=bool)
                keep[dropped] = False
                positions, rows, y = positions[keep], rows[keep], y[torch.from_numpy(keep)]
                merged = [Duplicate(*m) for m in found]
        self.store = store
        self.positions = positions
        self.rows = _Rows(rows)
        self._y = y
        self.target_names = list(store.target_names)
        self.skipped = list(store.skipped)
        self.duplicates = merged
        self.num_rows = store.num_rows
        self._target_scaler = None
        self._descriptor_scaler = None

    def _view(self, index: np.ndarray) -> StoreDataset:
        view = self._alias()
        view.positions = self.positions[index]
        view.rows = _Rows(self.rows.values[index])
        view._y = self._y[torch.from_numpy(index)]
        kept = set(view.rows.values.tolist()) if self.duplicates else set()
        view.duplicates = [d for d in self.duplicates if d.kept_row in kept]
        return view

    def _alias(self) -> StoreDataset:
        """A view of the same molecules that shares this one's arrays (no data set writes to
        them after making them): a transform's view costs no memory a molecule."""
        view = StoreDataset.__new__(StoreDataset)
        view.__dict__.update(self.__dict__)
        view.skipped = []
        return view

    # -- access ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: Any) -> Data | StoreDataset:
        if isinstance(index, (int, np.integer)) or (isinstance(index, Tensor) and index.dim() == 0):
            i = int(index)
            graph = self.store.graph(int(self.positions[i]))
            if self.target_names:
                y = self._y[i].unsqueeze(0)
                graph.y = y if self._target_scaler is None else self._target_scaler.transform(y)
            if self._descriptor_scaler is not None:
                raw = self.store.descriptors(self.positions[i : i + 1])
                graph.x_d = torch.from_numpy(self._descriptor_scaler.transform(raw))
            return graph
        if isinstance(index, slice):
            chosen = np.arange(len(self))[index]
        elif isinstance(index, Tensor) and index.dtype == torch.bool:
            chosen = index.nonzero().flatten().numpy()
        elif isinstance(index, np.ndarray) and index.dtype.kind in "iu":
            chosen = index
        else:
            chosen = np.asarray([int(i) for i in index], dtype=np.int64)
        return self._view(chosen.astype(np.int64))

    def __iter__(self) -> Iterator[Data]:
        for i in range(len(self)):
            yield self[i]

    @property
    def graphs(self) -> StoreDataset:
        """The data set itself: iterable and indexable like ``MoleculeDataset.graphs``."""
        return self

    @property
    def smiles(self) -> Sequence[str]:
        """The SMILES as written, read from the store when accessed."""
        return _Strings(self.store, "smiles", self.positions)

    @property
    def scaffolds(self) -> Sequence[str]:
        """The Bemis-Murcko scaffold of each molecule (stored by the streaming pass)."""
        return _Strings(self.store, "scaffold", self.positions)

    @property
    def num_tasks(self) -> int:
        return len(self.target_names)

    @property
    def num_node_features(self) -> int:
        return len(self.store.featurizer.atom_featurizer)

    @property
    def num_edge_features(self) -> int:
        return len(self.store.featurizer.bond_featurizer)

    @property
    def y(self) -> Tensor:
        """All targets, ``[len(self), num_tasks]`` (NaN where missing; unscaled)."""
        if not self.target_names:
            raise ValueError("this StoreDataset has no targets")
        return self._y.clone()

    def node_feature_sums(self) -> np.ndarray:
        """Per molecule, its graph's ``x.sum(0)`` (float32 ``[len(self), atom features]``: how
        many atoms of each element, degree, ...), one-hot encoded a chunk at a time from the
        stored codes, without building the graphs. Equal to summing the graphs' ``x``: sums of
        0/1 values are exact in float32."""
        one_hot = self.store.featurizer.atom_featurizer.one_hot
        sums = np.zeros((len(self), len(self.store.featurizer.atom_featurizer)), np.float32)
        chunk_of = np.searchsorted(self.store.chunk_start, self.positions, side="right") - 1
        for k in np.unique(chunk_of).tolist():
            mine = np.flatnonzero(chunk_of == k)  # this view's molecules in chunk k
            chunk = self.store._chunk(k)
            local = self.positions[mine] - self.store.chunk_start[k]
            x = one_hot(chunk.whole("atom_codes"))
            offsets = chunk.whole("atom_offsets")
            nonempty = offsets[1:] > offsets[:-1]  # molecules with atoms
            block = np.zeros((len(offsets) - 1, x.shape[1]), np.float32)
            block[nonempty] = np.add.reduceat(x, offsets[:-1][nonempty], axis=0)
            sums[mine] = block[local]
        return sums

    def descriptors(self) -> np.ndarray:
        """The raw stored descriptors ``[len(self), D]`` (float32; in memory: 4 D bytes a
        molecule)."""
        return self.store.descriptors(self.positions)

    # -- splits and transforms -----------------------------------------------------------

    def split(
        self,
        method: Literal["scaffold", "random"] = "scaffold",
        sizes: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
    ) -> tuple[StoreDataset, StoreDataset, StoreDataset]:
        """``(train, val, test)`` as :meth:`gconv.data.MoleculeDataset.split` gives them, from
        the stored scaffolds (no molecule is parsed again, no graph built)."""
        if method == "scaffold":
            if not self.store.meta["options"]["scaffolds"]:
                raise ValueError(
                    f"{self.store.path} has no scaffolds (written with scaffolds=False)"
                )
            parts = scaffold_split_positions(len(self), sizes, seed, self.scaffolds)
        elif method == "random":
            parts = random_split_indices(len(self), sizes, seed)
        else:
            raise ValueError(f"split method must be 'scaffold' or 'random', got {method!r}")
        train, val, test = (self[np.asarray(part, dtype=np.int64)] for part in parts)
        check_training_labels(train, val, test, f"the {method} split (seed {seed})")
        return train, val, test

    def split_by(self, labels: Sequence[str]) -> tuple[StoreDataset, StoreDataset, StoreDataset]:
        """``(train, val, test)`` from one label per molecule or per source row, as
        :meth:`gconv.data.MoleculeDataset.split_by`."""
        parts = split_positions(
            labels, len(self), self.rows, self.num_rows, self.smiles.__getitem__, self.duplicates
        )
        train, val, test = self[parts["train"]], self[parts["val"]], self[parts["test"]]
        check_training_labels(train, val, test, "the predefined split")
        return train, val, test

    def standardized(self, standardizer: Any) -> StoreDataset:
        """A view whose items' targets are ``standardizer.transform(y)``, applied when read."""
        view = self._alias()
        view._target_scaler = standardizer
        return view

    def with_scaled_descriptors(self, scaler: Any) -> StoreDataset:
        """A view whose items carry the stored descriptors scaled by ``scaler`` as ``x_d``
        ``[1, D]``, scaled when read (the in-memory ``with_descriptors(scaler.transform(raw))``
        item for item)."""
        if not self.store.descriptor_names:
            raise ValueError(f"{self.store.path} holds no descriptors")
        view = self._alias()
        view._descriptor_scaler = scaler
        return view

    def __repr__(self) -> str:
        tasks = f", tasks={self.target_names}" if self.target_names else ""
        return f"StoreDataset({len(self)}{tasks}, store={str(self.store.path)!r})"


def _duplicate_groups(store: MoleculeStore) -> tuple[list[list[int]], dict[int, str]]:
    """Positions of the copies of each repeated molecule (same canonical SMILES), groups in the
    order of their first copy, and the canonical SMILES of every position looked at. Only
    molecules whose graph hashes meet are looked at (found in NumPy): molecules with different
    hashes are different molecules, and equal hashes are split by canonical SMILES
    (stereoisomers, the hash's rare collisions)."""
    hashes = store.field("graph_hash")
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    repeated = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    if not len(repeated):
        return [], {}
    candidates: dict[int, list[int]] = {}
    for i in np.unique(np.concatenate([repeated, repeated + 1])):
        candidates.setdefault(int(sorted_hashes[i]), []).append(int(order[i]))
    looked_at = sorted(p for positions in candidates.values() for p in positions)
    canonical = dict(zip(looked_at, store.canonical_smiles(looked_at), strict=True))
    groups = []
    for positions in candidates.values():
        by_string: dict[str, list[int]] = {}
        for p in sorted(positions):
            by_string.setdefault(canonical[p], []).append(p)
        groups += [g for g in by_string.values() if len(g) > 1]
    groups.sort(key=lambda g: g[0])
    return groups, canonical
