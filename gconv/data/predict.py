r"""Predictions for molecules given as SMILES, in the targets' original units.

:func:`predict_smiles` is the whole inference path of a molecule model: featurise
(:func:`gconv.data.featurize`), batch, run the model in eval mode, undo the target
:class:`~gconv.data.Standardizer`. It takes the model as an argument, so :mod:`gconv.data`
still imports no model; a molecule command line builds on it. :func:`write_predictions_csv`
writes a split data set's predictions as a chemprop user expects them: one line per input row,
in input order, skipped rows included with their reason.

Example::

    >>> predict_smiles(model, ["CCO", "c1ccccc1O"], standardizer=standardizer)
    tensor([[5.1234], [6.0321]])
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from gconv._utils import evaluating, module_device
from gconv.data.cache import featurize
from gconv.data.scaling import Standardizer

if TYPE_CHECKING:
    from gconv.data.datasets import Duplicate, MoleculeDataset

__all__ = ["predict_smiles", "write_predictions_csv", "format_number"]


def format_number(value: float) -> str:
    """A number as a CSV cell: the shortest text that reads back as the same float32 (``9``,
    ``6.42``, ``0.1``, ``1.2345679e-08``, ``nan``), so a file holds every digit a float32 model
    computes, and no noise (``6.42``, not ``6.42000008``)."""
    value = np.float32(value)
    if not np.isfinite(value):
        return str(value)
    if value == 0 or 1e-4 <= abs(value) < 1e16:
        return np.format_float_positional(value, unique=True, trim="-")
    return np.format_float_scientific(value, unique=True, trim="-")


@torch.no_grad()
def predict_smiles(
    model: torch.nn.Module,
    smiles: str | Sequence[str],
    standardizer: Standardizer | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 256,
) -> Tensor:
    r"""Predicts properties of molecules given as SMILES, in the targets' original units.

    Args:
        model (torch.nn.Module): A graph model, ``model(batch) -> [num_graphs, T]``.
        smiles (str or Sequence[str]): One SMILES or a list of them.
        standardizer (Standardizer, optional): The one the model was trained with; its
            :meth:`~Standardizer.inverse_transform` is applied to the outputs.
            (default: :obj:`None`)
        device (str or torch.device, optional): Where to run the model. (default: the
            device of the model's parameters)
        batch_size (int, optional): Molecules per forward pass. (default: :obj:`256`)

    Returns:
        Tensor ``[len(smiles), T]`` on the CPU, in input order.

    Raises:
        ValueError: naming the position and the string of the first SMILES that fails.
    """
    from torch_geometric.loader import DataLoader

    smiles = [smiles] if isinstance(smiles, str) else list(smiles)
    graphs = featurize(smiles, on_error="raise").graphs
    if device is None:
        device = module_device(model)
    with evaluating(model):  # every module's own train/eval flag comes back afterwards
        outputs = [
            model(batch.to(device, non_blocking=True)).float()
            for batch in DataLoader(graphs, batch_size=batch_size, shuffle=False)
        ]
    # one device-to-host copy at the end, not one per batch
    prediction = torch.cat(outputs).cpu() if outputs else torch.empty(0)
    return standardizer.inverse_transform(prediction) if standardizer is not None else prediction


def write_predictions_csv(
    path: str | os.PathLike,
    parts: Mapping[str, MoleculeDataset],
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    skipped: Iterable[tuple[int, str, str]] = (),
    duplicates: Iterable[Duplicate] = (),
    intervals: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> None:
    r"""Writes predictions as CSV, one line per input row, in input order.

    Columns: ``smiles``, ``row`` (0-based data row of the input), ``split``, then per task
    ``<task>_true``, ``<task>_pred``, ``<task>_std`` (the ensemble's spread; empty without
    one), ``<task>_lo`` and ``<task>_hi`` (with ``intervals``: a prediction interval), and
    ``error``; numbers as :func:`format_number` writes them. Class probabilities
    (a ``mean`` of shape ``[N, T, C]``) make ``<task>_pred`` the most probable class, followed
    by ``<task>_class_<k>``, the probability of class ``k``. A molecule's line has an empty ``error``. A skipped row
    (:attr:`MoleculeDataset.skipped`) has empty split and value cells and its reason in
    ``error``. A row merged into an earlier copy of its molecule
    (:attr:`MoleculeDataset.duplicates`) gets that molecule's split and prediction, its own
    labels, and ``duplicate of row K`` in ``error``: it is scored once, as row K, so the
    scores of a split are those of its lines with an empty ``error``. A missing label is
    ``nan``.

    Args:
        path (str or PathLike): The CSV file to write.
        parts (Mapping[str, MoleculeDataset]): The splits by name, e.g. ``{"train": train,
            "val": val, "test": test}``, with targets in original units.
        predictions (Mapping[str, tuple]): Per split name ``(mean, std)``, arrays
            ``[len(part), num_tasks]`` in original units (or ``mean`` ``[len(part), num_tasks,
            C]`` class probabilities), in the part's order; ``std`` may be :obj:`None`.
        skipped (Iterable[tuple[int, str, str]], optional): ``(row, smiles, reason)`` of the
            rows that could not be read. (default: none)
        duplicates (Iterable[Duplicate], optional): Merged rows; those whose kept row is in no
            part are left out. (default: none)
        intervals (Mapping[str, tuple], optional): Per split name ``(lo, hi)``, arrays
            ``[len(part), num_tasks]``: adds the ``<task>_lo`` / ``<task>_hi`` columns.
            (default: :obj:`None`)
    """
    tasks = next(iter(parts.values())).target_names if parts else []
    shapes = {np.asarray(mean).ndim for mean, _ in predictions.values()}
    classes = 0
    if 3 in shapes:  # class probabilities [N, T, C]
        classes = next(np.asarray(m).shape[2] for m, _ in predictions.values() if np.ndim(m) == 3)
    header = ["smiles", "row", "split"]
    for task in tasks:
        header += [f"{task}_true", f"{task}_pred"]
        header += [f"{task}_class_{k}" for k in range(classes)]
        header.append(f"{task}_std")
        if intervals is not None:
            header += [f"{task}_lo", f"{task}_hi"]
    header.append("error")
    width = len(header) - 4  # the value cells of one line

    def values(truth, mean, std, bounds=None) -> list[str]:
        cells = []
        for t in range(len(tasks)):
            cells.append(format_number(truth[t]))
            if classes:
                cells.append(str(int(np.argmax(mean[t]))))
                cells += [format_number(p) for p in mean[t]]
            else:
                cells.append(format_number(mean[t]))
            cells.append("" if std is None else format_number(std[t]))
            if intervals is not None:
                cells += [format_number(bounds[0][t]), format_number(bounds[1][t])]
        return cells

    # Lines are made in row order one at a time (a store's million rows are never all held as
    # text): the rows of every part, merged row and skipped row, sorted once.
    parts = dict(parts)
    names = list(parts)
    means, stds, truths, row_arrays, bounds = [], [], [], [], []
    for name in names:
        part = parts[name]
        mean, std = predictions[name]
        if intervals is not None:
            lo, hi = intervals[name]
            bounds.append(
                (np.asarray(lo).reshape(len(part), -1), np.asarray(hi).reshape(len(part), -1))
            )
        mean = np.asarray(mean).reshape(len(part), len(tasks), -1)
        means.append(mean if classes else mean[:, :, 0])
        stds.append(None if std is None else np.asarray(std).reshape(len(part), -1))
        truths.append(part.y.numpy() if tasks else np.zeros((len(part), 0)))
        row_arrays.append(np.asarray(part.rows, dtype=np.int64).reshape(-1))
    position_of_row: dict[int, tuple[int, int]] = {}  # kept row of a duplicate -> (part, i)
    duplicates = list(duplicates)
    wanted = {dup.kept_row for dup in duplicates}
    for p, rows in enumerate(row_arrays):
        for i in np.flatnonzero(np.isin(rows, list(wanted))).tolist():
            position_of_row[int(rows[i])] = (p, i)
    skipped = list(skipped)
    kinds = [np.zeros(len(rows), np.int8) for rows in row_arrays]  # 0: a molecule of a part
    all_rows = np.concatenate([*row_arrays, np.zeros(0, np.int64)])
    part_of = np.concatenate(
        [np.full(len(r), p, np.int64) for p, r in enumerate(row_arrays)] or [np.zeros(0, np.int64)]
    )
    index_in = np.concatenate([np.arange(len(r)) for r in row_arrays] or [np.zeros(0, np.int64)])
    kind = np.concatenate([*kinds, np.zeros(0, np.int8)])
    kept_dups = [d for d in duplicates if d.kept_row in position_of_row]
    extra_rows = [d.row for d in kept_dups] + [row for row, _, _ in skipped]
    all_rows = np.concatenate([all_rows, np.asarray(extra_rows, dtype=np.int64)])
    kind = np.concatenate(
        [kind, np.ones(len(kept_dups), np.int8), np.full(len(skipped), 2, np.int8)]
    )
    part_of = np.concatenate([part_of, np.full(len(extra_rows), -1, np.int64)])
    index_in = np.concatenate([index_in, np.arange(len(kept_dups)), np.arange(len(skipped))])
    # a later source of the same row wins, as the dict of lines did: molecules < merged < skipped
    order = np.lexsort((np.arange(len(all_rows)), all_rows))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = all_rows[order][1:] != all_rows[order][:-1]
    order = order[last]
    smiles_of = [parts[name].smiles for name in names]

    def lines():
        for j in order.tolist():
            row = int(all_rows[j])
            if kind[j] == 0:
                p, i = int(part_of[j]), int(index_in[j])
                std = None if stds[p] is None else stds[p][i]
                interval = (bounds[p][0][i], bounds[p][1][i]) if bounds else None
                cells = values(truths[p][i], means[p][i], std, interval)
                yield [smiles_of[p][i], row, names[p], *cells, ""]
            elif kind[j] == 1:
                dup = kept_dups[int(index_in[j])]
                p, i = position_of_row[dup.kept_row]
                std = None if stds[p] is None else stds[p][i]
                interval = (bounds[p][0][i], bounds[p][1][i]) if bounds else None
                note = f"duplicate of row {dup.kept_row} (same molecule, scored once as that row)"
                yield [dup.smiles, row, names[p], *values(dup.y, means[p][i], std, interval), note]
            else:
                _, smiles, reason = skipped[int(index_in[j])]
                yield [smiles, row, "", *[""] * width, reason]

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(lines())
