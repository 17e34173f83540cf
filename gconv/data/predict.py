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

__all__ = ["predict_smiles", "write_predictions_csv"]


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
) -> None:
    r"""Writes predictions as CSV, one line per input row, in input order.

    Columns: ``smiles``, ``row`` (0-based data row of the input), ``split``, then per task
    ``<task>_true``, ``<task>_pred``, ``<task>_std`` (the ensemble's spread; empty without
    one), and ``error``. A molecule's line has an empty ``error``. A skipped row
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
            ``[len(part), num_tasks]`` in original units, in the part's order; ``std`` may be
            :obj:`None`.
        skipped (Iterable[tuple[int, str, str]], optional): ``(row, smiles, reason)`` of the
            rows that could not be read. (default: none)
        duplicates (Iterable[Duplicate], optional): Merged rows; those whose kept row is in no
            part are left out. (default: none)
    """
    tasks = next(iter(parts.values())).target_names if parts else []
    header = ["smiles", "row", "split"]
    for task in tasks:
        header += [f"{task}_true", f"{task}_pred", f"{task}_std"]
    header.append("error")

    def values(truth, mean, std) -> list[str]:
        cells = []
        for t in range(len(tasks)):
            cells += [
                f"{truth[t]:.6g}",
                f"{mean[t]:.6g}",
                "" if std is None else f"{std[t]:.6g}",
            ]
        return cells

    lines: dict[int, list] = {}
    molecule: dict[int, tuple] = {}  # row -> (split, mean, std) for the merged rows
    for name, part in parts.items():
        mean, std = predictions[name]
        mean = np.asarray(mean).reshape(len(part), -1)
        std = None if std is None else np.asarray(std).reshape(len(part), -1)
        truth = part.y.numpy() if tasks else np.zeros((len(part), 0))
        for i, (smiles, row) in enumerate(zip(part.smiles, part.rows, strict=True)):
            row_std = None if std is None else std[i]
            molecule[row] = (name, mean[i], row_std)
            lines[row] = [smiles, row, name, *values(truth[i], mean[i], row_std), ""]
    for dup in duplicates:
        if dup.kept_row in molecule:
            name, mean, std = molecule[dup.kept_row]
            note = f"duplicate of row {dup.kept_row} (same molecule, scored once as that row)"
            lines[dup.row] = [dup.smiles, dup.row, name, *values(dup.y, mean, std), note]
    for row, smiles, reason in skipped:
        lines[row] = [smiles, row, "", *[""] * (3 * len(tasks)), reason]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(lines[row] for row in sorted(lines))
