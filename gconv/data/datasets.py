r"""Molecule data sets: SMILES + targets -> graphs, from lists, files and embedded sources.

* :class:`MoleculeDataset` from lists, a CSV file (:meth:`MoleculeDataset.from_csv`) or an
  SDF file (:meth:`MoleculeDataset.from_sdf`); a plain :class:`torch.utils.data.Dataset` of
  :class:`~torch_geometric.data.Data` graphs, batched with
  :class:`torch_geometric.loader.DataLoader`. :meth:`MoleculeDataset.split` applies the splits
  of :mod:`gconv.data.splitting`, :meth:`MoleculeDataset.standardized` a target
  :class:`~gconv.data.Standardizer`.
* Embedded offline sets from files shipped in RDKit's wheel: :func:`chembl_pic50` and
  :func:`nci_tpsa`; MoleculeNet sets through PyG's download table: :func:`moleculenet`.

Targets are always a float32 tensor ``y`` of shape ``[1, num_tasks]`` per graph (so a batch has
``[num_graphs, num_tasks]``). Missing labels stay ``NaN``, to be masked in the loss (the
Trainer's ``"masked_mse"``); they are never dropped silently.

Example::

    >>> from torch_geometric.loader import DataLoader
    >>> dataset = chembl_pic50()
    >>> train, val, test = dataset.split("scaffold", seed=0)
    >>> standardizer = Standardizer.fit(train.y)
    >>> loader = DataLoader(train.standardized(standardizer), batch_size=64, shuffle=True)
"""

from __future__ import annotations

import copy
import csv
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch
from rdkit import Chem, RDConfig, rdBase
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Data

from gconv._utils import deprecated_module_attributes
from gconv.data._utils import (
    FLOAT32_MAX,
    check_training_labels,
    merge_duplicate_groups,
    parse_target,
    split_positions,
)
from gconv.data.cache import featurize
from gconv.data.featurizers import mol_to_graph
from gconv.data.splitting import random_split_indices, scaffold_split_indices

if TYPE_CHECKING:
    from gconv.data.scaling import Standardizer

__all__ = [
    "MoleculeDataset",
    "chembl_pic50",
    "nci_tpsa",
    "moleculenet",
    "read_embedded",
    "CHEMBL_DIR",
    "NCI_TPSA_FILE",
]

# Names that lived here in gconv 0.1 (removed in 0.3): a DeprecationWarning names the new one.
__getattr__ = deprecated_module_attributes(
    __name__,
    {
        "Standardizer": ("gconv.data", "Standardizer"),
        "murcko_scaffold": ("gconv.data", "murcko_scaffold"),
        "predict_smiles": ("gconv.data", "predict_smiles"),
        "random_split": ("gconv.data", "random_split_indices"),
        "scaffold_split": ("gconv.data", "scaffold_split_indices"),
    },
)

OnError = Literal["raise", "skip"]
Duplicates = Literal["error", "mean", "first"]
_DUPLICATE_RULES = ("error", "mean", "first")
# split labels of a predefined split (MoleculeDataset.split_by), case-insensitive


# ---------------------------------------------------------------------------------------------
# The data set
# ---------------------------------------------------------------------------------------------


class Duplicate(NamedTuple):
    """An input row merged into an earlier row holding the same molecule (see
    :class:`MoleculeDataset`, ``duplicates``).

    Attributes:
        row: The merged row (0-based, header excluded).
        smiles: Its SMILES, as written.
        kept_row: The first row of the same molecule, the one kept in the data set.
        y: The merged row's own labels (NaN where missing), one per task.
    """

    row: int
    smiles: str
    kept_row: int
    y: tuple[float, ...]


class MoleculeDataset(Dataset):
    r"""Molecular graphs with optional regression / classification targets.

    Each item is a :class:`~torch_geometric.data.Data` with ``x``, ``edge_index``,
    ``edge_attr``, ``smiles`` (see :func:`gconv.data.smiles_to_graph`) and, when targets are
    given, ``y`` of shape ``[1, num_tasks]`` (NaN where a label is missing). Batch it with
    :class:`torch_geometric.loader.DataLoader`. Indexing with a slice, a list or a tensor of
    indices returns a new :class:`MoleculeDataset` sharing the graphs.

    **Checks on the input.** A SMILES is read without its leading and trailing whitespace;
    whitespace inside it makes the row fail (RDKit would read the text after a space as a name,
    see :func:`gconv.data.parse_smiles`), like any unparsable SMILES (``on_error``). A target
    column without a single label is an error naming the column.

    **Duplicates** (labelled data sets only). Rows whose molecules have the same RDKit canonical
    SMILES (computed once, from the parsed molecule; isomeric, so stereoisomers differ) are one
    molecule: the first such row is kept and the later ones are merged into it, so that a
    molecule is never in two splits. Per task, the labels of the copies that have one must
    agree; then the molecule keeps that label (copies labelled in different tasks complement
    each other) and a warning names the merged rows. Copies with *different* labels follow
    ``duplicates``: ``"error"`` raises a :class:`ValueError` naming the canonical SMILES, the
    rows and their labels; ``"mean"`` averages them; ``"first"`` keeps the first labelled row's.
    Merged rows are listed in :attr:`duplicates`. An unlabelled data set (``targets=None``, e.g.
    molecules to predict) keeps every row.

    Args:
        smiles (Sequence[str]): The SMILES strings.
        targets (array-like, optional): ``[N]`` or ``[N, T]`` numbers, NaN for missing labels.
            (default: :obj:`None`)
        target_names (Sequence[str], optional): Names of the ``T`` tasks.
            (default: ``["y0", "y1", ...]``)
        on_error (str, optional): ``"raise"`` raises a :class:`ValueError` naming the row index
            and the SMILES of the first molecule that fails; ``"skip"`` leaves it out, records
            ``(row, smiles, reason)`` in :attr:`skipped` and warns with the count.
            (default: :obj:`"raise"`)
        n_jobs (int, optional): Featurisation worker processes (``-1``: all CPUs).
            (default: :obj:`1`)
        cache_dir (str or PathLike, optional): On-disk featurisation cache, see
            :func:`gconv.data.featurize`. (default: :obj:`None`)
        largest_fragment (bool, optional): Keep only the largest fragment of salts and
            mixtures (duplicates are then found among the kept fragments). (default:
            :obj:`False`)
        duplicates (str, optional): What to do with copies of one molecule whose labels
            differ: ``"error"``, ``"mean"`` or ``"first"`` (see above). (default:
            :obj:`"error"`)

    Attributes:
        smiles (list[str]): SMILES of the kept molecules, in order.
        rows (list[int]): Row of each kept molecule in the input (0-based, header excluded).
        skipped (list[tuple[int, str, str]]): ``(row, smiles, reason)`` per skipped molecule.
        duplicates (list[Duplicate]): ``(row, smiles, kept_row, y)`` per row merged into an
            earlier row of the same molecule.
        num_rows (int): Number of input rows, skipped and merged ones included.
        target_names (list[str]): Task names (empty without targets).

    Raises:
        ValueError: for a failed molecule (``on_error="raise"``), a target column without
            labels, or copies of a molecule with different labels (``duplicates="error"``).
    """

    def __init__(
        self,
        smiles: Sequence[str],
        targets: Sequence | np.ndarray | Tensor | None = None,
        target_names: Sequence[str] | None = None,
        on_error: OnError = "raise",
        n_jobs: int = 1,
        cache_dir: str | os.PathLike | None = None,
        largest_fragment: bool = False,
        duplicates: Duplicates = "error",
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        _check_duplicates_rule(duplicates)
        # " CCO " is CCO (RDKit ignores the padding too); inner whitespace fails in parse_smiles
        smiles = [s.strip() if isinstance(s, str) else s for s in smiles]
        y = _as_targets(targets, len(smiles))
        result = featurize(
            smiles,
            n_jobs=n_jobs,
            on_error="skip",
            cache_dir=cache_dir,
            largest_fragment=largest_fragment,
            canonical=y is not None,  # to find duplicates of labelled molecules
        )
        if on_error == "raise" and result.skipped:
            row, bad, reason = result.skipped[0]
            raise ValueError(f"MoleculeDataset: row {row} (SMILES {bad!r}) failed: {reason}")
        self._assemble(
            result.graphs, result.indices, y, target_names, result.skipped, len(smiles), duplicates
        )

    def _assemble(
        self,
        graphs: list[Data],
        rows: list[int],
        y_all: Tensor | None,
        target_names: Sequence[str] | None,
        skipped: list[tuple[int, str, str]],
        num_rows: int,
        duplicates: Duplicates = "error",
    ) -> None:
        num_tasks = 0 if y_all is None else y_all.size(1)
        if target_names is None:
            target_names = [f"y{t}" for t in range(num_tasks)]
        target_names = list(target_names)
        if len(target_names) != num_tasks:
            raise ValueError(
                f"MoleculeDataset got {len(target_names)} target names for {num_tasks} tasks"
            )
        merged: list[Duplicate] = []
        rows = list(rows)
        if y_all is not None:
            for graph, row in zip(graphs, rows, strict=True):
                graph.y = y_all[row].unsqueeze(0)
            _check_labelled_columns(graphs, target_names)
            graphs, rows, merged, resolved = _merge_duplicates(
                graphs, rows, target_names, duplicates
            )
        for graph in graphs:  # only needed to find duplicates: items look as before
            if "canonical_smiles" in graph:
                del graph.canonical_smiles
        self.graphs = graphs
        self.rows = rows
        self.smiles = [g.smiles for g in graphs]
        self.target_names = target_names
        self.skipped = list(skipped)
        self.duplicates = merged
        self.num_rows = num_rows
        if skipped:
            warnings.warn(
                f"MoleculeDataset skipped {len(skipped)} of {num_rows} "
                f"molecules that could not be featurised; see dataset.skipped for "
                f"(row, smiles, reason), first: {skipped[0]}",
                stacklevel=3,
            )
        if merged:
            first = merged[0]
            how = (
                f"; {resolved} of them with different labels, resolved by duplicates={duplicates!r}"
                if resolved
                else " (same labels)"
            )
            warnings.warn(
                f"MoleculeDataset merged {len(merged)} duplicate row(s) into the first row of "
                f"the same molecule (same canonical SMILES){how}; first: row {first.row} "
                f"({first.smiles!r}) -> row {first.kept_row}; see dataset.duplicates",
                stacklevel=3,
            )

    @classmethod
    def _from_graphs(
        cls,
        graphs: list[Data],
        rows: list[int],
        target_names: list[str],
        source: MoleculeDataset | None = None,
    ) -> MoleculeDataset:
        dataset = cls.__new__(cls)
        dataset.graphs = graphs
        dataset.rows = rows
        dataset.smiles = [g.smiles for g in graphs]
        dataset.target_names = target_names
        dataset.skipped = []
        # a part keeps the merged rows of its molecules (split_by checks their split labels)
        kept = set(rows)
        dataset.duplicates = [d for d in getattr(source, "duplicates", []) if d.kept_row in kept]
        dataset.num_rows = getattr(source, "num_rows", len(graphs))
        return dataset

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        smiles_col: str = "smiles",
        target_cols: str | Sequence[str] | None = None,
        **kwargs,
    ) -> MoleculeDataset:
        r"""Reads SMILES and targets from a CSV file with a header row.

        The file is read as UTF-8, with or without the byte-order mark that Excel writes.
        Empty cells and ``nan``/``NA`` in target columns become NaN (kept, to be masked in the
        loss). ``on_error`` applies to molecules; a target cell that is not a finite number
        (text, ``inf``, or beyond float32's range such as ``1e400``) always raises (naming row
        and column), since it points to a wrong column or a broken file, and so does a target
        column without a single label. Row indices count data rows from 0 (the header is not a
        row).

        SMILES cells are read without leading and trailing whitespace (``" CCO"`` is ethanol);
        a cell with whitespace inside (``"CCO c1ccccc1Cl"``: two molecules, or a SMILES and a
        name) fails like any unparsable SMILES, skipped with its reason under
        ``on_error="skip"``. Rows holding the same molecule are merged, or refused when their
        labels differ, as described in :class:`MoleculeDataset` (``duplicates``).

        Args:
            path (str or PathLike): The CSV file.
            smiles_col (str, optional): Column of SMILES strings. (default: :obj:`"smiles"`)
            target_cols (str or Sequence[str], optional): Target column(s); none for an
                unlabelled set. (default: :obj:`None`)
            **kwargs: Passed on to :class:`MoleculeDataset` (``on_error``, ``duplicates``,
                ``n_jobs``, ...).

        Raises:
            ValueError: for an empty file, a header without data rows, a missing column, a bad
                target cell, a target column without labels, or copies of a molecule with
                different labels (``duplicates="error"``).
        """
        target_cols = [target_cols] if isinstance(target_cols, str) else list(target_cols or [])
        wanted = [smiles_col, *target_cols]
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise ValueError(
                    f"{path} is empty: expected a header row naming the columns {wanted}, then "
                    "one row per molecule"
                )
            columns = list(reader.fieldnames)
            missing = [c for c in wanted if c not in columns]
            if missing:
                raise ValueError(f"{path} has no column(s) {missing}; its columns are {columns}")
            records = list(reader)
        if not records:
            raise ValueError(f"{path} has a header row ({columns}) but no data rows")
        smiles = [record[smiles_col] or "" for record in records]
        targets = None
        if target_cols:
            targets = np.array(
                [
                    [_parse_target(record[c], row, c) for c in target_cols]
                    for row, record in enumerate(records)
                ],
                dtype=np.float32,
            ).reshape(len(records), len(target_cols))
        return cls(smiles, targets, target_names=target_cols, **kwargs)

    @classmethod
    def from_sdf(
        cls,
        path: str | os.PathLike,
        target_cols: str | Sequence[str] | None = None,
        on_error: OnError = "raise",
        largest_fragment: bool = False,
        duplicates: Duplicates = "error",
    ) -> MoleculeDataset:
        """Reads molecules and SD properties (the targets) from an SDF file.

        Records RDKit cannot read count as failed rows (SMILES ``""``); a missing or
        non-numeric property becomes NaN. Row indices are 0-based record numbers. Records of
        one molecule are merged (``duplicates``) as in :class:`MoleculeDataset`.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        _check_duplicates_rule(duplicates)
        target_cols = [target_cols] if isinstance(target_cols, str) else list(target_cols or [])
        graphs, rows, skipped, labels = [], [], [], []
        with rdBase.BlockLogs():
            supplier = Chem.SDMolSupplier(str(path))
            for row, mol in enumerate(supplier):
                if mol is None or mol.GetNumAtoms() == 0:
                    reason = "RDKit could not read this SDF record"
                    if on_error == "raise":
                        raise ValueError(f"MoleculeDataset: SDF record {row} failed: {reason}")
                    skipped.append((row, "", reason))
                    continue
                graph = mol_to_graph(mol, largest_fragment=largest_fragment)
                graph.canonical_smiles = graph.smiles  # mol_to_graph's SMILES is canonical
                graphs.append(graph)
                rows.append(row)
                labels.append([_sd_property(mol, c) for c in target_cols])
        if not target_cols:
            y_all = None
        else:  # indexed by row, like the CSV path; rows that failed stay NaN and unused
            y_all = torch.full((len(supplier), len(target_cols)), float("nan"))
            if rows:
                y_all[torch.tensor(rows)] = torch.tensor(labels, dtype=torch.float32)
        dataset = cls.__new__(cls)
        dataset._assemble(graphs, rows, y_all, target_cols, skipped, len(supplier), duplicates)
        return dataset

    # -- access ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> Data | MoleculeDataset:
        if isinstance(index, (int, np.integer)) or (isinstance(index, Tensor) and index.dim() == 0):
            return self.graphs[int(index)]
        if isinstance(index, slice):
            positions = range(len(self))[index]
        elif isinstance(index, Tensor) and index.dtype == torch.bool:
            positions = index.nonzero().flatten().tolist()
        else:
            positions = [int(i) for i in index]
        return self._from_graphs(
            [self.graphs[i] for i in positions],
            [self.rows[i] for i in positions],
            self.target_names,
            source=self,
        )

    def __iter__(self) -> Iterator[Data]:
        return iter(self.graphs)

    @property
    def num_tasks(self) -> int:
        return len(self.target_names)

    @property
    def num_node_features(self) -> int:
        return self.graphs[0].num_node_features if self.graphs else 0

    @property
    def num_edge_features(self) -> int:
        return self.graphs[0].num_edge_features if self.graphs else 0

    @property
    def y(self) -> Tensor:
        """All targets, ``[len(self), num_tasks]`` (NaN where missing)."""
        if not self.target_names:
            raise ValueError("this MoleculeDataset has no targets")
        if not self.graphs:
            return torch.empty(0, self.num_tasks)
        return torch.cat([g.y for g in self.graphs])

    def split(
        self,
        method: Literal["scaffold", "random"] = "scaffold",
        sizes: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
    ) -> tuple[MoleculeDataset, MoleculeDataset, MoleculeDataset]:
        """``(train, val, test)`` by :func:`~gconv.data.scaffold_split_indices` or
        :func:`~gconv.data.random_split_indices`. Copies of a molecule were merged when the
        data set was built, so no molecule lands in two parts.

        Raises:
            ValueError: for an unknown method, or a target column without a label in a
                non-empty training part (naming the column and where its labels are).
        """
        if method == "scaffold":
            parts = scaffold_split_indices(self.smiles, sizes, seed)
        elif method == "random":
            parts = random_split_indices(len(self), sizes, seed)
        else:
            raise ValueError(f"split method must be 'scaffold' or 'random', got {method!r}")
        train, val, test = (self[list(part)] for part in parts)
        _check_training_labels(train, val, test, f"the {method} split (seed {seed})")
        return train, val, test

    def split_by(
        self, labels: Sequence[str]
    ) -> tuple[MoleculeDataset, MoleculeDataset, MoleculeDataset]:
        """``(train, val, test)`` from a predefined split (like chemprop's ``--splits-column``):
        labels ``"train"``, ``"val"`` (or ``"valid"``, ``"validation"``) or ``"test"``,
        case-insensitive.

        ``labels`` holds either one label per molecule of the data set (``len(self)``), or
        one per input row (:attr:`num_rows`, e.g. a whole CSV column): then the labels of
        skipped rows are ignored and the rows merged into an earlier copy of their molecule
        (:attr:`duplicates`) must carry the same split as that copy.

        Raises:
            ValueError: for a wrong number of labels; a label outside those, naming the input
                row and its SMILES; copies of one molecule labelled with different splits,
                naming their rows; or a target column without a label in a non-empty training
                part.
        """
        parts = split_positions(
            labels, len(self), self.rows, self.num_rows, self.smiles.__getitem__, self.duplicates
        )
        train, val, test = self[parts["train"]], self[parts["val"]], self[parts["test"]]
        _check_training_labels(train, val, test, "the predefined split")
        return train, val, test

    def with_descriptors(self, descriptors: np.ndarray | Tensor) -> MoleculeDataset:
        """A copy whose graphs carry molecule-level features ``x_d`` of shape ``[1, D]`` (so a
        batch has ``[num_graphs, D]``), as :class:`gconv.models.GNN` reads them; the graphs'
        other tensors are shared. ``descriptors`` is ``[len(self), D]``, e.g. scaled
        :func:`gconv.data.rdkit_descriptors`."""
        values = torch.as_tensor(np.asarray(descriptors, dtype=np.float32))
        if values.dim() != 2 or values.size(0) != len(self):
            raise ValueError(
                f"with_descriptors expected descriptors [{len(self)}, D], got {tuple(values.shape)}"
            )
        graphs = []
        for graph, row in zip(self.graphs, values, strict=True):
            graph = copy.copy(graph)  # shallow: new attribute store, same feature tensors
            graph.x_d = row.unsqueeze(0)
            graphs.append(graph)
        return self._from_graphs(graphs, self.rows, self.target_names, source=self)

    def standardized(self, standardizer: Standardizer) -> MoleculeDataset:
        """A copy whose targets are ``standardizer.transform(y)`` (graphs are shared)."""
        graphs = []
        for graph in self.graphs:
            graph = copy.copy(graph)  # shallow: new attribute store, same feature tensors
            graph.y = standardizer.transform(graph.y)
            graphs.append(graph)
        return self._from_graphs(graphs, self.rows, self.target_names, source=self)

    def __repr__(self) -> str:
        tasks = f", tasks={self.target_names}" if self.target_names else ""
        skipped = f", skipped={len(self.skipped)}" if self.skipped else ""
        return f"{self.__class__.__name__}({len(self)}{tasks}{skipped})"


def _check_duplicates_rule(duplicates: str) -> None:
    if duplicates not in _DUPLICATE_RULES:
        raise ValueError(
            f"duplicates must be one of {', '.join(map(repr, _DUPLICATE_RULES))}, got "
            f"{duplicates!r}"
        )


def _check_labelled_columns(graphs: list[Data], target_names: list[str]) -> None:
    """A target column with no label at all is a wrong column name or a broken file."""
    if not graphs:
        return
    y = torch.cat([g.y for g in graphs])
    empty = [name for t, name in enumerate(target_names) if torch.isnan(y[:, t]).all()]
    if empty:
        raise ValueError(
            f"target column {empty[0]!r} has no labels: it is empty (or NaN) for all "
            f"{len(graphs)} molecules"
            + (f" (so are {empty[1:]})" if len(empty) > 1 else "")
            + "; check the column name, or leave the column out"
        )


_check_training_labels = check_training_labels


def _merge_duplicates(
    graphs: list[Data], rows: list[int], target_names: list[str], rule: str
) -> tuple[list[Data], list[int], list[Duplicate], int]:
    """Keeps the first row of each molecule (by ``graph.canonical_smiles``) with the merged
    labels; returns ``(graphs, rows, merged rows, how many molecules had conflicting
    labels)``. Conflicts raise under ``rule="error"`` (:func:`merge_duplicate_groups`, shared
    with the on-disk :class:`~gconv.data.StoreDataset`)."""
    groups: dict[str, list[int]] = {}
    for position, graph in enumerate(graphs):
        groups.setdefault(graph.canonical_smiles, []).append(position)
    repeated = [group for group in groups.values() if len(group) > 1]
    if not repeated:
        return graphs, rows, [], 0
    y = torch.cat([graph.y for graph in graphs])
    dropped, kept_y, merged, conflicts = merge_duplicate_groups(
        repeated,
        y,
        rows,
        lambda p: graphs[p].smiles,
        lambda p: graphs[p].canonical_smiles,
        target_names,
        rule,
    )
    for position, labels in kept_y.items():
        graphs[position].y = labels.unsqueeze(0)
    gone = set(dropped)
    keep = [p for p in range(len(graphs)) if p not in gone]
    return (
        [graphs[p] for p in keep],
        [rows[p] for p in keep],
        [Duplicate(*m) for m in merged],
        conflicts,
    )


def _as_targets(targets: Sequence | np.ndarray | Tensor | None, num_rows: int) -> Tensor | None:
    if targets is None:
        return None
    if isinstance(targets, Tensor):
        targets = targets.detach().cpu()
    values = np.asarray(targets, dtype=np.float64)  # float64 first: see what float32 would lose
    if values.ndim not in (1, 2) or values.shape[0] != num_rows:
        raise ValueError(
            f"MoleculeDataset expected targets of shape [{num_rows}] or [{num_rows}, T], "
            f"got {tuple(values.shape)}"
        )
    # NaN marks a missing label; an infinite target (or one float32 cannot hold) is an error
    bad = np.abs(values) > _FLOAT32_MAX  # False for NaN
    if bad.any():
        position = tuple(int(i) for i in np.argwhere(bad)[0])
        task = f", task {position[1]}" if values.ndim == 2 else ""
        raise ValueError(
            f"MoleculeDataset: the target of row {position[0]}{task} is {values[position]!r}, "
            f"not a finite float32 number (|y| <= {_FLOAT32_MAX:.4g}); use NaN for a missing label"
        )
    y = torch.as_tensor(values.astype(np.float32))
    return y.unsqueeze(1) if y.dim() == 1 else y


_FLOAT32_MAX = FLOAT32_MAX
_parse_target = parse_target


def _sd_property(mol: Chem.Mol, name: str) -> float:
    if not mol.HasProp(name):
        return float("nan")
    try:
        return float(mol.GetProp(name))
    except ValueError:
        return float("nan")


# ---------------------------------------------------------------------------------------------
# Embedded offline sets (files shipped with RDKit) and MoleculeNet
# ---------------------------------------------------------------------------------------------

CHEMBL_DIR = Path(RDConfig.RDContribDir) / "FreeWilson" / "data"
NCI_TPSA_FILE = Path(RDConfig.RDDataDir) / "NCI" / "first_5k.tpsa.csv"


def read_embedded(name: Literal["chembl", "tpsa"]) -> tuple[list[str], list[float], str]:
    """The raw rows of an embedded set, ``(smiles, targets, task name)``, as in its file: what
    :func:`chembl_pic50` (``"chembl"``) and :func:`nci_tpsa` (``"tpsa"``) featurise, and what an
    on-disk :class:`~gconv.data.MoleculeStore` of them is written from."""
    smiles: list[str] = []
    targets: list[float] = []
    if name == "chembl":
        smi_file = CHEMBL_DIR / "CHEMBL2321810.smi"
        act_file = CHEMBL_DIR / "CHEMBL2321810_act.csv"
        for file in (smi_file, act_file):
            if not file.exists():
                raise FileNotFoundError(
                    f"{file} not found; chembl_pic50 needs RDKit's Contrib files"
                )
        with open(act_file, newline="") as f:
            activity = {row["Name"]: float(row["Act"]) for row in csv.DictReader(f)}
        with open(smi_file) as f:
            for line in f:
                if line.strip():
                    s, molecule = line.split()
                    smiles.append(s)
                    targets.append(activity[molecule])  # KeyError: RDKit changed the files
        return smiles, targets, "pIC50"
    if name == "tpsa":
        if not NCI_TPSA_FILE.exists():
            raise FileNotFoundError(f"{NCI_TPSA_FILE} not found; nci_tpsa needs RDKit's Data files")
        with open(NCI_TPSA_FILE, newline="") as f:
            for record in csv.reader(f):
                if record and not record[0].startswith("#"):
                    smiles.append(record[0])
                    targets.append(float(record[1]))
        return smiles, targets, "tpsa"
    raise ValueError(f"embedded set must be 'chembl' or 'tpsa', got {name!r}")


def chembl_pic50(n_jobs: int = 1, cache_dir: str | os.PathLike | None = None) -> MoleculeDataset:
    """CHEMBL2321810: 1,017 molecules with experimental pIC50 (one task, ``"pIC50"``).

    Read offline from RDKit's ``Contrib/FreeWilson/data``: ``CHEMBL2321810.smi``
    (``SMILES<space>ChEMBL-id`` per line) joined by id to ``CHEMBL2321810_act.csv``
    (``Name,Act``). One congeneric series, so a scaffold split is the honest test.
    """
    smiles, targets, task = read_embedded("chembl")
    return MoleculeDataset(smiles, targets, target_names=[task], n_jobs=n_jobs, cache_dir=cache_dir)


def nci_tpsa(
    on_error: OnError = "skip",
    n_jobs: int = 1,
    cache_dir: str | os.PathLike | None = None,
    duplicates: Duplicates = "error",
) -> MoleculeDataset:
    """4,999 NCI molecules with topological polar surface area (one task, ``"tpsa"``).

    Read offline from RDKit's ``Data/NCI/first_5k.tpsa.csv`` (a ``#`` comment line, then
    ``SMILES,TPSA`` rows without header). A few entries (8 with RDKit 2026.09: hypervalent
    metals and nitro groups written with pentavalent N) fail RDKit sanitisation; by default
    they are skipped, listed in ``dataset.skipped`` and reported in a warning. 99 rows repeat
    the molecule of an earlier row (same canonical SMILES, same TPSA); they are merged into it
    (``dataset.duplicates``, a warning), so that no molecule sits in two splits: 4,892
    molecules. ``duplicates`` is passed on to :class:`MoleculeDataset`.
    """
    smiles, targets, task = read_embedded("tpsa")
    return MoleculeDataset(
        smiles,
        targets,
        target_names=[task],
        on_error=on_error,
        n_jobs=n_jobs,
        cache_dir=cache_dir,
        duplicates=duplicates,
    )


def moleculenet(
    name: str,
    root: str | os.PathLike = "datasets/",
    on_error: OnError = "skip",
    n_jobs: int = 1,
    duplicates: Duplicates = "error",
) -> MoleculeDataset:
    """A MoleculeNet set (ESOL, FreeSolv, Lipo, BBBP, HIV, BACE, Tox21, ...) with gconv features.

    Uses :class:`torch_geometric.datasets.MoleculeNet`'s table of files and columns: the raw
    CSV is downloaded once to ``root/<name>/raw`` (from DeepChem's S3 bucket) and featurised
    with :func:`gconv.data.featurize`, cached in ``root/<name>/processed``. Missing labels of
    multi-task sets stay NaN. Rows repeating a molecule are merged, and copies with different
    labels raise unless ``duplicates`` is ``"mean"`` or ``"first"`` (see
    :class:`MoleculeDataset`; some MoleculeNet sets hold such copies). Needs internet on first
    use; offline, use :func:`chembl_pic50`, :func:`nci_tpsa` or
    :meth:`MoleculeDataset.from_csv`.
    """
    from torch_geometric.data import download_url, extract_gz
    from torch_geometric.datasets import MoleculeNet

    key = name.lower()
    if key not in MoleculeNet.names:
        raise ValueError(
            f"unknown MoleculeNet set {name!r}; choose from {sorted(MoleculeNet.names)}"
        )
    display, url_name, csv_name, smiles_idx, target_idx = MoleculeNet.names[key]
    raw_dir = Path(root) / key / "raw"
    raw_file = raw_dir / f"{csv_name}.csv"
    if not raw_file.exists():
        url = MoleculeNet.url.format(url_name)
        raw_dir.mkdir(parents=True, exist_ok=True)
        # Download into a temp dir and move into place, so a broken download leaves nothing.
        with tempfile.TemporaryDirectory(dir=raw_dir) as tmp:
            try:
                path = download_url(url, tmp, log=False)
            except OSError as err:  # URLError, socket errors and timeouts are OSErrors
                raise RuntimeError(
                    f"could not download MoleculeNet {display} from {url} ({err}). Offline, use "
                    f"the embedded sets gconv.data.chembl_pic50() or gconv.data.nci_tpsa(), or "
                    f"MoleculeDataset.from_csv(path, smiles_col, target_cols) on your own file; "
                    f"or place {raw_file.name} in {raw_dir} by hand."
                ) from err
            if path.endswith(".gz"):
                extract_gz(path, tmp, log=False)
                path = path[: -len(".gz")]
            shutil.move(path, raw_file)

    with open(raw_file, newline="") as f:
        header, *records = [r for r in csv.reader(f) if r]
    columns = list(range(len(header)))
    target_columns = columns[target_idx] if isinstance(target_idx, slice) else [columns[target_idx]]
    smiles = [r[smiles_idx] for r in records]
    targets = np.array(
        [
            [_parse_target(r[c], row, header[c]) for c in target_columns]
            for row, r in enumerate(records)
        ],
        dtype=np.float32,
    ).reshape(len(records), len(target_columns))
    return MoleculeDataset(
        smiles,
        targets,
        target_names=[header[c] for c in target_columns],
        on_error=on_error,
        n_jobs=n_jobs,
        cache_dir=Path(root) / key / "processed",
        duplicates=duplicates,
    )
