"""Per-atom explanations of a model directory's predictions: the library behind ``gconv explain``.

Each readable molecule gets one score per atom and task, from the method
:func:`gconv.explain.recommended_explainer` picks for the model and the task type (its docstring
gives the measurements behind the choice):

* regression: signed shares of the predicted value, in the target's units — an exact readout
  decomposition where the model is a sum of atom shares read by one Linear, else (an MLP head,
  the atomwise readout's included) integrated gradients from zero atom features (the shares add
  up to the prediction minus that baseline's);
* classification and multiclass: an exact decomposition of the logit where the model allows one,
  else the size of the logit's gradient per atom (unsigned; multiclass: the predicted class's).

Every ensemble member is explained with the same method and the scores are their mean (for the
signed methods exactly the explanation of the ensemble's mean output). Outputs: ``atoms.csv``
(one line per atom, and one per unreadable molecule with its reason) and one picture per
molecule (an RDKit similarity map of the first task's scores: red raises the output, blue lowers
it).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rdkit import Chem
from torch import Tensor
from torch_geometric.data import Batch, Data

from gconv.explain import recommended_explainer
from gconv.explain.viz import draw_molecule_importance
from gconv.molecule.errors import UsageError
from gconv.molecule.model import MoleculeModel
from gconv.train import atomic_write

__all__ = ["explain_molecules", "atom_scores"]


def _target_columns(model: MoleculeModel, graphs: Sequence[Data]) -> list[Tensor | int]:
    """For each task, the output column explained: the task's own column (regression, binary
    classification), or per molecule the column of its predicted class (multiclass)."""
    tasks = model.tasks
    if tasks.task_type != "multiclass":
        return list(range(tasks.num_tasks))
    probabilities, _ = model.predict_graphs(graphs)  # [N, T, C]: the ensemble's
    classes = torch.from_numpy(np.asarray(probabilities).argmax(-1)).reshape(len(graphs), -1)
    return [t * tasks.num_classes + classes[:, t] for t in range(tasks.num_tasks)]


def atom_scores(
    model: MoleculeModel, graphs: Sequence[Data], batch_size: int = 64
) -> tuple[list[np.ndarray], str, str]:
    """Per-atom scores ``[num_atoms, num_tasks]`` for each graph, the ensemble's mean.

    Returns:
        ``(scores, method, reason)``: the scores per graph, the explainer's class name, and why
        :func:`~gconv.explain.recommended_explainer` chose it.
    """
    if not graphs:
        return [], "", ""
    targets = _target_columns(model, graphs)
    scale = None  # regression: z-scores back to the targets' units (the mean cancels in shares)
    if model.tasks.task_type == "regression" and model.target_scaler is not None:
        scale = model.target_scaler.std.double().reshape(-1)
    totals = [np.zeros((g.num_nodes, model.tasks.num_tasks)) for g in graphs]
    method = reason = ""
    task_type = "regression" if model.tasks.task_type == "regression" else "classification"
    for member in model.members:
        explainer, reason = recommended_explainer(member, task=task_type)
        method = type(explainer).__name__
        device = next(member.parameters()).device
        for start in range(0, len(graphs), batch_size):
            chunk = list(graphs[start : start + batch_size])
            batch = Batch.from_data_list(chunk).to(device)
            for task, target in enumerate(targets):
                if isinstance(target, Tensor):
                    target = target[start : start + len(chunk)]
                explanation = explainer(batch, target=target)
                for offset in range(len(chunk)):
                    node_mask = explanation[offset].node_mask.detach().double().cpu()
                    score = node_mask.reshape(node_mask.shape[0], -1).sum(dim=1).numpy()
                    if scale is not None:
                        score = score * float(scale[task])
                    totals[start + offset][:, task] += score
    return [total / len(model.members) for total in totals], method, reason


def explain_molecules(
    model: MoleculeModel,
    smiles: Sequence[str],
    output_dir: str | os.PathLike,
    batch_size: int = 64,
    draw: bool = True,
) -> dict[str, Any]:
    """Explains ``smiles`` with ``model``: writes ``output_dir/atoms.csv`` and, with ``draw``,
    ``output_dir/molecule_<k>.png`` for the ``k``-th SMILES (the first task's scores).

    ``atoms.csv`` has the columns ``molecule`` (the position in ``smiles``), ``smiles``,
    ``atom_index`` (RDKit's order), ``element``, one score column per task, and ``error``: a
    SMILES that cannot be read keeps one line with its reason and empty scores.

    Returns:
        ``{"molecules", "failed", "atoms", "method", "reason", "paths"}``.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"--output-dir {output_dir} is a file, not a directory")
    output_dir.mkdir(parents=True, exist_ok=True)
    graphs, positions, errors = model.featurize(list(smiles))
    scores, method, reason = atom_scores(model, graphs, batch_size)
    by_position = dict(zip(positions, zip(graphs, scores, strict=True), strict=True))
    tasks = list(model.tasks.names)
    rows: list[list[Any]] = []
    pictures: list[Path] = []
    for k, text in enumerate(smiles):
        if k not in by_position:
            rows.append([k, text, "", "", *[""] * len(tasks), errors.get(k, "not read")])
            continue
        graph, score = by_position[k]
        mol = Chem.MolFromSmiles(graph.smiles)
        for atom in mol.GetAtoms():
            index = atom.GetIdx()
            values = [f"{v:.6g}" for v in score[index]]
            rows.append([k, text, index, atom.GetSymbol(), *values, ""])
        if draw:
            path = output_dir / f"molecule_{k}.png"
            image = draw_molecule_importance(mol, score[:, 0])
            atomic_write(path, lambda f, image=image: f.write(image))
            pictures.append(path)

    def write(f: Any) -> None:
        text = _csv_text([["molecule", "smiles", "atom_index", "element", *tasks, "error"], *rows])
        f.write(text.encode())

    atoms_path = atomic_write(output_dir / "atoms.csv", write)
    return {
        "molecules": len(smiles),
        "failed": len(smiles) - len(graphs),
        "atoms": sum(g.num_nodes for g in graphs),
        "method": method,
        "reason": reason,
        "paths": [atoms_path, *pictures],
    }


def _csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
