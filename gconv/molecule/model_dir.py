r"""The model directory: everything prediction needs, written by ``gconv train --output-dir D``
and read by :func:`load_model` (``gconv predict --model-path D``).

A directory predicts alone — no training file, no command-line options to repeat::

    D/
      config.json        what the model is (below); the one file read first
      scalers.pt         target standardiser and descriptor scaler (tensors, weights_only)
      calibration.pt     a normalised interval's reference embeddings, one [R, D] per member
      model_<k>/best.pt  member k's weights (the Trainer's best epoch on validation)
      model_<k>/last.pt  member k's training state, for --resume (not read by predict)
      metrics.json, predictions.csv, parity.png   the training run's report

``config.json`` holds ``format`` (``"gconv-model-directory"``) and ``format_version``
(:data:`FORMAT_VERSION`), ``kind`` (``"molecule"``), the ``gconv_version`` that wrote it, the
``featurizer`` (atom and bond featuriser versions, the SHA-256 of the feature tables' column names,
their widths), the ``smiles_column``, the ``tasks`` (names, type, number of classes), the
``model`` (class and every constructor argument), the ``readout`` (the one used, the option
given, the rule that chose it), the ``descriptors`` (RDKit 2D descriptor names and the RDKit
version, or null), the ``members`` (weight files, relative paths), ``scalers``, the
``calibration`` (or null) and the ``training`` options. The format is written once, in
``docs/model-directory.md``.

:func:`load_model` checks before it builds anything and refuses, with one
:class:`~gconv.molecule.UsageError` line that names the file and the difference, a directory that
is missing, has no ``config.json``, comes from another format version or another featuriser
(version or feature table), asks for descriptors this RDKit lacks, or lacks a member's weights.
Weights and scalers are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import rdkit
import torch

import gconv
from gconv.data import (
    ATOM_FEATURE_DIM,
    ATOM_FEATURE_NAMES,
    BOND_FEATURE_DIM,
    BOND_FEATURE_NAMES,
    DESCRIPTOR_NAMES,
    FEATURIZER_VERSION,
    Standardizer,
)
from gconv.model_dir import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    jsonable,
    load_tensors,
    read_config,
    write_config,
)
from gconv.models import GNN
from gconv.molecule.errors import UsageError
from gconv.molecule.model import MoleculeModel
from gconv.molecule.tasks import Tasks
from gconv.train import atomic_write

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CONFIG_FILE",
    "featurizer_info",
    "save_model_dir",
    "read_config",
    "load_model",
]

SCALERS_FILE = "scalers.pt"
CALIBRATION_FILE = "calibration.pt"


def featurizer_info() -> dict[str, Any]:
    """The installed default featurisers: their versions, the SHA-256 (first 16 hex digits) of
    their column names, and their widths. A model directory records this and is refused where it
    differs."""
    table = json.dumps([ATOM_FEATURE_NAMES, BOND_FEATURE_NAMES])
    return {
        "atom_version": FEATURIZER_VERSION,
        "bond_version": FEATURIZER_VERSION,
        "table_sha256": hashlib.sha256(table.encode()).hexdigest()[:16],
        "atom_features": ATOM_FEATURE_DIM,
        "bond_features": BOND_FEATURE_DIM,
    }


# ------------------------------------------------------------------------------------- writing
def save_model_dir(
    directory: str | os.PathLike,
    model: MoleculeModel,
    model_kwargs: dict[str, Any],
    member_files: list[str],
    readout: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``config.json`` and ``scalers.pt`` into ``directory`` (the members' weight files,
    ``member_files`` relative to it, are already there: the Trainer's ``best.pt``).

    Args:
        directory: The model directory.
        model (MoleculeModel): The trained model.
        model_kwargs (dict): Every argument its members were built with, ``GNN(**model_kwargs)``.
        member_files (list[str]): Each member's weights, relative to ``directory``.
        readout (dict, optional): How the readout was chosen (recorded, not read back).
        training (dict, optional): The training options (recorded, not read back).

    Returns:
        The configuration written (also set as ``model.config``).
    """
    directory = Path(directory)
    scalers: dict[str, Any] = {}
    if model.target_scaler is not None:
        scalers["targets"] = model.target_scaler.state_dict()
    if model.descriptor_scaler is not None:
        scalers["descriptors"] = model.descriptor_scaler.state_dict()
    calibration = model.calibration
    if model.normalized:
        if model.reference is None:
            raise ValueError("a normalised interval needs the model's reference embeddings")
        calibration = {**calibration, "reference": CALIBRATION_FILE}
        references = {"reference": [r.float().contiguous() for r in model.reference]}
        atomic_write(directory / CALIBRATION_FILE, lambda f: torch.save(references, f))
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "molecule",
        "gconv_version": gconv.__version__,
        "featurizer": featurizer_info(),
        "smiles_column": model.smiles_column,
        "tasks": model.tasks.to_dict(),
        "model": {"class": "GNN", "kwargs": jsonable(model_kwargs)},
        "readout": jsonable(readout or {"name": model_kwargs.get("readout")}),
        "descriptors": (
            {
                "generator": "rdkit_2d",
                "names": list(model.descriptor_names),
                "rdkit_version": rdkit.__version__,
            }
            if model.descriptor_names
            else None
        ),
        "members": list(member_files),
        "scalers": SCALERS_FILE,
        "calibration": jsonable(calibration),
        "training": jsonable(training or {}),
    }
    atomic_write(directory / SCALERS_FILE, lambda f: torch.save(scalers, f))
    write_config(directory, config)
    model.config = config
    return config


# ------------------------------------------------------------------------------------- reading
def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> MoleculeModel:
    """Reads a molecule model directory into a :class:`MoleculeModel` (``.config`` holds its
    ``config.json``).

    Args:
        directory: What ``gconv train --output-dir`` wrote.
        device: Where the members go. (default: :obj:`"cpu"`)

    Raises:
        UsageError: see the module docstring; one line naming the file and what is wrong.
    """
    directory = Path(directory)
    config = read_config(directory)
    path = directory / CONFIG_FILE
    if config.get("kind") != "molecule":
        raise UsageError(f"{path} describes a {config.get('kind')!r} model, not a molecule model")
    try:
        _check_featurizer(config["featurizer"], directory, config)
        tasks = Tasks.from_dict(config["tasks"])
        kwargs = dict(config["model"]["kwargs"])
        member_files = list(config["members"])
        descriptors = config["descriptors"]
        scalers_file = config["scalers"]
        smiles_column = config["smiles_column"]
        calibration = config["calibration"]
    except KeyError as err:
        raise UsageError(f"{path} lacks the entry {err}; it was not written by gconv") from None
    except (TypeError, ValueError) as err:
        raise UsageError(f"{path} has an invalid entry: {err}") from None
    descriptor_names = None
    if descriptors:
        descriptor_names = list(descriptors["names"])
        missing = [name for name in descriptor_names if name not in DESCRIPTOR_NAMES]
        if missing:
            raise UsageError(
                f"{directory} reads RDKit descriptors that RDKit {rdkit.__version__} does not "
                f"have: {missing[:5]} (it was trained with RDKit {descriptors.get('rdkit_version')})"
            )
    if not member_files:
        raise UsageError(f"{path} lists no ensemble members")

    scalers = load_tensors(directory / scalers_file, directory)
    target_scaler = descriptor_scaler = None
    if "targets" in scalers:
        target_scaler = Standardizer.from_state_dict(scalers["targets"])
    if "descriptors" in scalers:
        descriptor_scaler = Standardizer.from_state_dict(scalers["descriptors"])
    if tasks.task_type == "regression" and target_scaler is None:
        raise UsageError(f"{directory / scalers_file} lacks the target standardiser")
    if descriptor_names and descriptor_scaler is None:
        raise UsageError(f"{directory / scalers_file} lacks the descriptor scaler")

    if kwargs.get("out_channels") != tasks.out_channels:
        raise UsageError(
            f"{path}: the model has {kwargs.get('out_channels')} outputs, but the tasks need "
            f"{tasks.out_channels}"
        )
    members = []
    for name in member_files:
        try:
            member = GNN(**{k: tuple(v) if k == "head_hidden" else v for k, v in kwargs.items()})
        except (TypeError, ValueError) as err:
            raise UsageError(f"{path}: cannot build the model from its arguments: {err}") from None
        state = load_tensors(directory / name, directory)
        try:
            member.load_state_dict(state.get("model", state))
        except RuntimeError as err:
            first = str(err).strip().splitlines()
            detail = " ".join(line.strip() for line in first[:3])
            raise UsageError(
                f"{directory / name} does not fit the model in {path}: {detail}"
            ) from None
        members.append(member.to(device).eval())
    reference = None
    if calibration and calibration.get("method") == "normalized_conformal":
        reference = _load_reference(directory, path, calibration, len(member_files))
        width = next(m for m in members[0].head.modules() if isinstance(m, torch.nn.Linear))
        if any(r.shape[1] != width.in_features for r in reference):
            raise UsageError(
                f"{directory / calibration['reference']}: reference embeddings of width "
                f"{[r.shape[1] for r in reference]}, but the model embeds in {width.in_features}"
            )
    model = MoleculeModel(
        members,
        tasks,
        target_scaler=target_scaler,
        descriptor_names=descriptor_names,
        descriptor_scaler=descriptor_scaler,
        calibration=calibration,
        smiles_column=smiles_column,
        reference=reference,
    )
    model.config = config
    return model


def _load_reference(
    directory: Path, path: Path, calibration: dict, members: int
) -> list[torch.Tensor]:
    """A normalised interval's reference embeddings, checked: one ``[R, D]`` float tensor per
    member with ``R >= 1``, and the entries the interval reads."""
    missing = [k for k in ("reference", "quantile", "neighbours", "offset") if k not in calibration]
    if missing:
        raise UsageError(f"{path}: the normalised calibration lacks {missing}")
    stored = load_tensors(directory / calibration["reference"], directory)
    reference = stored.get("reference") if isinstance(stored, dict) else None
    if (
        not isinstance(reference, list)
        or len(reference) != members
        or not all(isinstance(r, torch.Tensor) and r.ndim == 2 and len(r) for r in reference)
    ):
        raise UsageError(
            f"{directory / calibration['reference']} does not hold one [R, D] reference "
            f"embedding per member ({members})"
        )
    return reference


def _check_featurizer(recorded: dict[str, Any], directory: Path, config: dict[str, Any]) -> None:
    installed = featurizer_info()
    keys = ("atom_version", "bond_version", "table_sha256")
    if any(recorded.get(key) != installed[key] for key in keys):

        def describe(info: dict[str, Any]) -> str:
            versions = f"{info.get('atom_version')}/{info.get('bond_version')}"
            return f"{versions} (feature table {info.get('table_sha256')})"

        raise UsageError(
            f"{directory} was trained with featuriser {describe(recorded)}, but this gconv "
            f"{gconv.__version__} featurises with {describe(installed)}: its predictions would be "
            f"wrong; retrain, or predict with gconv {config.get('gconv_version', '?')}"
        )
