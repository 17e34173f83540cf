r"""A trained molecule model as one object: its ensemble members, tasks, scalers and calibration.

:class:`MoleculeModel` is what ``gconv train`` builds after training and what
:func:`gconv.molecule.load_model` reads back from a model directory; training-time
``predictions.csv`` and ``gconv predict`` go through the same :meth:`MoleculeModel.predict_graphs`,
so they agree by construction (and a test proves the directory round trip). Predictions run in eval
mode on float64 copies of the members, so that a molecule's prediction does not depend on the
molecules batched with it (float32 matrix products round differently with the batch's size).

Example::

    >>> model = load_model("runs/solubility")
    >>> table = model.predict(["CCO", "c1ccccc1O", "not a smiles"])
    >>> table["logS"], table["error"]        # NaN and a reason for the unreadable row
    >>> import pandas; pandas.DataFrame(table)  # when pandas is installed

``gconv explain`` builds on the same object: :attr:`MoleculeModel.members` are plain
:class:`gconv.models.GNN` modules and :meth:`MoleculeModel.featurize` gives the graphs they take
(descriptors attached and scaled).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gconv._utils import TRIM_EVERY, release_free_memory
from gconv.data import Standardizer, featurize, rdkit_descriptors
from gconv.molecule.tasks import Tasks

__all__ = ["MoleculeModel"]


class MoleculeModel:
    r"""An ensemble of graph models with everything prediction needs.

    Args:
        members (Sequence[nn.Module]): The ensemble's models (one or more
            :class:`gconv.models.GNN`), ``model(batch) -> [num_graphs, tasks.out_channels]``.
        tasks (Tasks): Names and type of the outputs.
        target_scaler (Standardizer, optional): The regression targets' standardiser, undone on
            the outputs. (default: :obj:`None`)
        descriptor_names (Sequence[str], optional): RDKit 2D descriptors the members read as
            ``data.x_d`` (in this order). (default: :obj:`None`, no descriptors)
        descriptor_scaler (Standardizer, optional): Scales those descriptors; needed with
            ``descriptor_names``. (default: :obj:`None`)
        calibration (dict, optional): ``{"method": "normalized_conformal", "confidence": c,
            "quantile": [T], "neighbours": k, "offset": b}`` (regression: the interval ``value ±
            quantile * sigma(x)``, :meth:`difficulty` :math:`\sigma(x)`, with ``reference``),
            ``{"method": "conformal", "confidence": c, "half_width": [T]}`` (regression: the
            interval ``value ± half_width``, gconv 0.2's) or ``{"method": "temperature",
            "temperature": [T]}`` (classification: logits divided by it). (default: :obj:`None`)
        reference (Sequence[Tensor], optional): Per member, the embeddings ``[R, D]`` (float32)
            of the training molecules that a normalised interval measures distances to.
            (default: :obj:`None`)
        smiles_column (str, optional): The SMILES column of the training file, the default
            column to read. (default: :obj:`"smiles"`)
    """

    def __init__(
        self,
        members: Sequence[nn.Module],
        tasks: Tasks,
        target_scaler: Standardizer | None = None,
        descriptor_names: Sequence[str] | None = None,
        descriptor_scaler: Standardizer | None = None,
        calibration: dict[str, Any] | None = None,
        smiles_column: str = "smiles",
        reference: Sequence[Tensor] | None = None,
    ) -> None:
        if not members:
            raise ValueError("MoleculeModel needs at least one member")
        if descriptor_names and descriptor_scaler is None:
            raise ValueError("MoleculeModel with descriptor_names needs their descriptor_scaler")
        self.members = list(members)
        self.tasks = tasks
        self.target_scaler = target_scaler
        self.descriptor_names = list(descriptor_names) if descriptor_names else None
        self.descriptor_scaler = descriptor_scaler
        self.calibration = calibration
        self.smiles_column = smiles_column
        self.reference = list(reference) if reference is not None else None
        #: The model directory's ``config.json`` (set by saving or loading), else None.
        self.config: dict[str, Any] | None = None
        self._members64: list[nn.Module] | None = None

    def __repr__(self) -> str:
        descriptors = f", descriptors={len(self.descriptor_names)}" if self.descriptor_names else ""
        calibration = f", calibration={self.calibration['method']!r}" if self.calibration else ""
        return (
            f"MoleculeModel(members={len(self.members)}, {self.tasks!r}{descriptors}{calibration})"
        )

    def to(self, device: str | torch.device) -> MoleculeModel:
        """Moves every member to ``device``; returns ``self``."""
        for member in self.members:
            member.to(device)
        self._members64 = None  # made again, on the device, when next needed
        return self

    @property
    def device(self) -> torch.device:
        return next(self.members[0].parameters()).device

    # ------------------------------------------------------------------ inputs
    def featurize(self, smiles: Sequence[str]) -> tuple[list[Data], list[int], dict[int, str]]:
        """Graphs for the SMILES that can be read, with their scaled descriptors as ``x_d``.

        Returns:
            ``(graphs, positions, errors)``: the graphs, the position in ``smiles`` of each, and
            ``{position: reason}`` for every SMILES that cannot be read (empty, unparsable, or
            rejected by RDKit's sanitisation).
        """
        if isinstance(smiles, str):
            raise TypeError("MoleculeModel expected a sequence of SMILES strings, got one string")
        smiles = ["" if s is None else str(s) for s in smiles]
        result = featurize(smiles, on_error="skip")
        errors = {index: reason for index, _, reason in result.skipped}
        graphs = result.graphs
        if self.descriptor_names and graphs:
            values = rdkit_descriptors([g.smiles for g in graphs], names=self.descriptor_names)
            scaled = torch.from_numpy(self.descriptor_scaler.transform(values))
            for graph, row in zip(graphs, scaled, strict=True):
                graph.x_d = row.unsqueeze(0)
        return graphs, list(result.indices), errors

    # ------------------------------------------------------------------ outputs
    def _float64_members(self) -> list[nn.Module]:
        """Float64 copies of the members in eval mode, made once: float32 matrix products round
        differently with the batch's size, float64 ones far below float32's resolution, so a
        molecule's prediction does not depend on the molecules batched with it (training-time
        predictions equal ``gconv predict``'s, chunks or not)."""
        if self._members64 is None or len(self._members64) != len(self.members):
            self._members64 = [copy.deepcopy(m).double().eval() for m in self.members]
        return self._members64

    def _batches(self, graphs: Sequence[Data], batch_size: int, device: torch.device):
        from torch.utils.data import Dataset
        from torch_geometric.loader import DataLoader

        # a Dataset (an on-disk StoreDataset) is read a batch at a time, never listed whole
        data = graphs if isinstance(graphs, Dataset) else list(graphs)
        for batch in DataLoader(data, batch_size=batch_size):
            batch = batch.to(device)
            for key in ("x", "edge_attr", "x_d"):
                if getattr(batch, key, None) is not None:
                    batch[key] = batch[key].double()
            yield batch

    def outputs(self, graphs: Sequence[Data], batch_size: int = 256) -> Tensor:
        """Every member's outputs ``[M, N, out_channels]`` (float64, on the CPU): values in the
        targets' units for regression, logits otherwise. Computed in float64 (see
        :meth:`_float64_members`)."""
        return self._run(graphs, batch_size)[0]

    @torch.no_grad()
    def _run(
        self,
        graphs: Sequence[Data],
        batch_size: int,
        embeddings: bool = False,
        difficulty: bool = False,
    ) -> tuple[Tensor, list[Tensor] | None, np.ndarray | None]:
        """:meth:`outputs`, and from the same pass: with ``embeddings`` every member's molecule
        embeddings (the head's input, float32 ``[N, D]`` as :meth:`embed` gives them: an
        atomwise model's atom embeddings pooled per molecule); with ``difficulty`` the
        normalised interval's :math:`\\sigma(x)` ``[N]`` (:meth:`difficulty_of`), reduced from
        the embeddings a batch at a time, so that a million molecules' embeddings (half a
        gigabyte a member, twice that while gathered) are never held at once."""
        if difficulty:
            self._check_reference(len(self.members))
        if not graphs:
            empty = torch.empty(len(self.members), 0, self.tasks.out_channels, dtype=torch.float64)
            widths = [next(m for m in member.head.modules() if isinstance(m, nn.Linear)).in_features
                      for member in self.members]  # fmt: skip
            return (
                empty,
                [torch.empty(0, width) for width in widths] if embeddings else None,
                np.zeros(0) + self._offset() if difficulty else None,
            )
        results, embedded, distances = [], [], []
        for m, member in enumerate(self._float64_members()):
            device = next(member.parameters()).device
            captured: list[Tensor] = []
            handle = (
                member.head.register_forward_pre_hook(
                    lambda _m, inputs, captured=captured: captured.append(inputs[0])
                )
                if embeddings or difficulty
                else None
            )
            atomwise = getattr(member, "atomwise", False)
            # Results go into arrays made before the pass (on the CPU), not into lists of
            # per-batch tensors: small blocks that live to the end of the pass, left among each
            # batch's freed ones, would fragment glibc's heap as the pass goes on.
            out = torch.empty(len(graphs), self.tasks.out_channels, dtype=torch.float64)
            distance = torch.empty(len(graphs), dtype=torch.float64) if difficulty else None
            kept: list[Tensor] = []
            start = 0
            try:
                for step, batch in enumerate(self._batches(graphs, batch_size, device)):
                    rows = slice(start, start + batch.num_graphs)
                    start = rows.stop
                    out[rows] = member(batch)
                    if (step + 1) % TRIM_EVERY == 0:
                        release_free_memory()  # what glibc keeps of freed batches
                    if handle is None:
                        continue
                    embedding = captured.pop()
                    if atomwise:  # per atom: pooled as the model pools its outputs (embed's rule)
                        embedding = member.readout(embedding, batch.batch, batch.num_graphs)
                    embedding = embedding.float().cpu()
                    if embeddings:
                        kept.append(embedding)
                    if distance is not None:
                        distance[rows] = self._knn(m, embedding)
            finally:
                if handle is not None:
                    handle.remove()
            release_free_memory()
            if self.target_scaler is not None:
                out = self.target_scaler.inverse_transform(out)
            results.append(out)
            if embeddings:
                embedded.append(torch.cat(kept))
            if distance is not None:
                distances.append(distance)
        sigma = torch.stack(distances).mean(0).numpy() + self._offset() if difficulty else None
        return torch.stack(results), (embedded if embeddings else None), sigma

    @property
    def normalized(self) -> bool:
        """Whether the calibration is a normalised interval (it needs :meth:`difficulty`)."""
        return bool(self.calibration) and self.calibration.get("method") == "normalized_conformal"

    def _check_reference(self, members: int) -> None:
        if self.reference is None or len(self.reference) != members:
            raise ValueError(
                f"a normalised interval needs reference embeddings for each of the {members} "
                f"members, got {0 if self.reference is None else len(self.reference)}"
            )

    def _offset(self) -> float:
        return float(self.calibration["offset"])

    def _knn(self, member: int, embedding: Tensor) -> Tensor:
        from gconv.molecule.calibration import knn_distance

        return knn_distance(self.reference[member], embedding, int(self.calibration["neighbours"]))

    def difficulty_of(self, embeddings: Sequence[Tensor]) -> np.ndarray:
        r""":math:`\sigma(x)` ``[N]`` of a normalised interval from every member's embeddings of
        the molecules (:meth:`_run`): the mean over members of the mean Euclidean distance to the
        ``neighbours`` nearest :attr:`reference` embeddings of that member, plus ``offset``."""
        self._check_reference(len(embeddings))
        distance = torch.stack([self._knn(m, e) for m, e in enumerate(embeddings)]).mean(0)
        return distance.numpy() + self._offset()

    def difficulty(self, graphs: Sequence[Data], batch_size: int = 256) -> np.ndarray | None:
        r""":math:`\sigma(x)` ``[N]`` of each molecule for a normalised interval (see
        :meth:`difficulty_of`; computed a batch at a time), or :obj:`None` with another
        calibration."""
        if not self.normalized:
            return None
        return self._run(graphs, batch_size, difficulty=True)[2]

    def predict_graphs(
        self, graphs: Sequence[Data], batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(prediction, std)`` of :meth:`Tasks.predictions` for featurised graphs, with the
        calibration's temperature applied to classification logits."""
        return self.tasks.predictions(self.outputs(graphs, batch_size), self._temperature())

    def _temperature(self) -> Tensor | None:
        if self.calibration and self.calibration.get("method") == "temperature":
            return torch.tensor(self.calibration["temperature"])
        return None

    def predict_with_difficulty(
        self, graphs: Sequence[Data], batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(prediction, std, difficulty)``: :meth:`predict_graphs` and :meth:`difficulty` from
        one pass of each member (``difficulty`` is :obj:`None` unless the interval is
        normalised)."""
        outputs, _, difficulty = self._run(graphs, batch_size, difficulty=self.normalized)
        prediction, std = self.tasks.predictions(outputs, self._temperature())
        return prediction, std, difficulty

    def interval(
        self, prediction: np.ndarray, difficulty: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The calibrated prediction interval ``(lo, hi)`` ``[N, T]`` of regression values, or
        :obj:`None` without a conformal calibration. A normalised interval needs the molecules'
        ``difficulty`` ``[N]`` (:meth:`difficulty`)."""
        if not self.calibration or self.calibration.get("method") not in (
            "conformal",
            "normalized_conformal",
        ):
            return None
        if self.calibration["method"] == "conformal":
            half = np.asarray(self.calibration["half_width"], dtype=np.float64)
        else:
            if difficulty is None or len(difficulty) != len(prediction):
                raise ValueError(
                    f"a normalised interval needs the difficulty of each of the "
                    f"{len(prediction)} molecules, got "
                    f"{'none' if difficulty is None else len(difficulty)}"
                )
            quantile = np.asarray(self.calibration["quantile"], dtype=np.float64)
            half = np.asarray(difficulty, dtype=np.float64)[:, None] * quantile[None, :]
        return prediction - half, prediction + half

    # ------------------------------------------------------------------ tables
    def column_names(self) -> list[str]:
        """The prediction columns, chemprop's convention: per task its value (regression), the
        probability of class 1 (classification), or the predicted class and the
        ``<task>_class_<k>`` probabilities (multiclass); then ``<task>_std`` with an ensemble,
        ``<task>_lo`` / ``<task>_hi`` with a conformal interval."""
        names = []
        for task in self.tasks.names:
            names.append(task)
            if self.tasks.task_type == "multiclass":
                names += [f"{task}_class_{k}" for k in range(self.tasks.num_classes)]
        if len(self.members) > 1:
            names += [f"{task}_std" for task in self.tasks.names]
        if self.interval(np.zeros((0, self.tasks.num_tasks)), np.zeros(0)) is not None:
            names += [f"{task}_{end}" for task in self.tasks.names for end in ("lo", "hi")]
        return names

    def columns(
        self, prediction: np.ndarray, std: np.ndarray, difficulty: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The :meth:`column_names` columns for ``len(prediction)`` molecules: float arrays, and
        the predicted class of a multiclass task as an int array (``difficulty``: see
        :meth:`interval`)."""
        table: dict[str, np.ndarray] = {}
        for t, task in enumerate(self.tasks.names):
            if self.tasks.task_type == "multiclass":
                table[task] = prediction[:, t].argmax(-1)
                for k in range(self.tasks.num_classes):
                    table[f"{task}_class_{k}"] = prediction[:, t, k]
            else:
                table[task] = prediction[:, t]
        if len(self.members) > 1:
            for t, task in enumerate(self.tasks.names):
                table[f"{task}_std"] = std[:, t]
        bounds = self.interval(prediction, difficulty)
        if bounds is not None:
            for t, task in enumerate(self.tasks.names):
                table[f"{task}_lo"], table[f"{task}_hi"] = bounds[0][:, t], bounds[1][:, t]
        return table

    def predict(self, smiles: Sequence[str], batch_size: int = 256) -> dict[str, np.ndarray]:
        """Predictions for a list of SMILES, one row each, in order.

        Returns:
            Columns by name (a ``dict`` of NumPy arrays, which ``pandas.DataFrame`` takes as it
            is): ``smiles``, the :meth:`column_names` columns, and ``error`` (``""``, or why the
            row could not be read; its predictions are then NaN, and a multiclass class -1).
        """
        smiles = list(smiles)
        graphs, positions, errors = self.featurize(smiles)
        prediction, std, difficulty = self.predict_with_difficulty(graphs, batch_size)
        return self.table(smiles, positions, errors, self.columns(prediction, std, difficulty))

    @staticmethod
    def table(
        smiles: list[str],
        positions: list[int],
        errors: dict[int, str],
        columns: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """Spreads the columns of the read rows over all rows (NaN, or -1 for a class, where a
        row could not be read), with ``smiles`` first and ``error`` last."""
        n = len(smiles)
        table: dict[str, np.ndarray] = {"smiles": np.array(smiles, dtype=object)}
        for name, values in columns.items():
            if values.dtype.kind in "iu":
                full = np.full(n, -1, dtype=np.int64)
            else:
                full = np.full(n, np.nan, dtype=np.float64)
            full[positions] = values
            table[name] = full
        table["error"] = np.array([errors.get(i, "") for i in range(n)], dtype=object)
        return table

    # ------------------------------------------------------------------ embeddings
    @torch.no_grad()
    def embed(self, graphs: Sequence[Data], member: int = 0, block: int = 0) -> Tensor:
        """Learned molecule representations ``[N, D]`` of one member (chemprop's ``fingerprint``).

        Args:
            graphs (Sequence[Data]): Featurised molecules (:meth:`featurize`).
            member (int, optional): Which ensemble member. (default: :obj:`0`)
            block (int, optional): ``0``: the head's input, i.e. the readout's molecule embedding
                (with the scaled descriptors appended where the model reads them); ``k >= 1``: the
                output of the head's ``k``-th linear layer (before its activation), as chemprop's
                ``--ffn-block-index``. (default: :obj:`0`)

        An atomwise model (``readout="atomwise"``) runs its head on every atom, so each block is
        per atom; the molecule's representation is then that block pooled as the model pools
        its outputs (the sum over the atoms / the readout's constant): block 0 is the sum of the
        atom embeddings (each with the descriptors appended, where the model reads them), block
        ``k`` the sum of the atoms' ``k``-th linear outputs, and the last block the prediction
        itself (standardised units).
        """
        model = self._float64_members()[member]
        head = model.head
        linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
        if not 0 <= block <= len(linears):
            raise ValueError(
                f"block must be from 0 (the readout's embedding) to {len(linears)} (the head's "
                f"linear layers), got {block}"
            )
        captured: list[Tensor] = []
        if block == 0:
            handle = head.register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0]))
        else:
            handle = linears[block - 1].register_forward_hook(
                lambda _m, _inputs, output: captured.append(output)
            )
        device = next(model.parameters()).device
        atomwise = getattr(model, "atomwise", False)
        try:
            for batch in self._batches(graphs, 256, device):
                model(batch)
                if atomwise:  # per atom: pooled as the model pools its outputs
                    captured[-1] = model.readout(captured[-1], batch.batch, batch.num_graphs)
        finally:
            handle.remove()
        if not captured:
            width = linears[block - 1].out_features if block else linears[0].in_features
            return torch.empty(0, width)
        return torch.cat(captured).float().cpu()
