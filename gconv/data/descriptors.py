r"""Molecule-level descriptors: RDKit's 2D descriptors as extra graph features (chemprop's ``x_d``).

A graph network sees atoms and bonds; some properties also depend on whole-molecule quantities
(logP estimates, molar refractivity, ring counts) that a few message-passing steps reconstruct only
roughly. :func:`rdkit_descriptors` computes RDKit's 2D descriptor set once per molecule (cached on
disk, keyed by the SMILES, the descriptor names and the RDKit version); a
:class:`~gconv.data.Standardizer` fitted on the training split (``clip=5.0, fill_nan=0.0``) scales
them, so that :class:`gconv.models.GNN` can concatenate them to the pooled graph embedding
(``descriptor_dim=``, ``data.x_d``). :func:`morgan_fingerprints` are the classical baselines'
features.

Example::

    >>> train, val, test = chembl_pic50().split("scaffold")
    >>> scaler = Standardizer.fit(rdkit_descriptors(train.smiles), clip=5.0, fill_nan=0.0)
    >>> train = train.with_descriptors(scaler.transform(rdkit_descriptors(train.smiles)))
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rdkit
import torch
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from gconv._utils import atomic_save, warn_deprecated
from gconv.data.scaling import Standardizer

__all__ = ["DESCRIPTOR_NAMES", "rdkit_descriptors", "morgan_fingerprints"]

#: Names of RDKit's 2D descriptors (``rdkit.Chem.Descriptors._descList``), in column order; 217 in
#: RDKit 2025-2026. The list follows the installed RDKit, whose version is in the cache key.
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(name for name, _ in Descriptors._descList)
_FUNCTIONS = dict(Descriptors._descList)


def rdkit_descriptors(
    smiles: Sequence[str],
    names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    r"""RDKit 2D descriptors, float32 ``[len(smiles), len(names)]``.

    A descriptor RDKit cannot compute for a molecule (it raises, or gives NaN or an infinite or
    float32-overflowing value such as ``Ipc`` of a large molecule) is NaN; a
    :class:`~gconv.data.Standardizer` with ``fill_nan=0.0`` fills those with the training mean. About 10 ms per molecule, hence the cache.

    Args:
        smiles (Sequence[str]): SMILES strings (each must parse; featurise with
            ``on_error="skip"`` first to drop bad rows).
        names (Sequence[str], optional): Which descriptors, in which order.
            (default: all of :data:`DESCRIPTOR_NAMES`)
        cache_dir (str or PathLike, optional): Store the result in (and read it back from)
            ``cache_dir/descriptors-<hash>.pt``. (default: :obj:`None`)

    Raises:
        ValueError: for an unknown descriptor name, or a SMILES that does not parse (naming its
            position and the string).
    """
    if isinstance(smiles, str):
        raise TypeError("rdkit_descriptors expected a sequence of SMILES strings, got one string")
    smiles = [str(s) for s in smiles]
    names = list(DESCRIPTOR_NAMES if names is None else names)
    unknown = [name for name in names if name not in _FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown RDKit descriptor(s) {unknown}; see gconv.data.DESCRIPTOR_NAMES")
    path = None
    if cache_dir is not None:
        key = json.dumps([rdkit.__version__, names, smiles])
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"descriptors-{digest}.pt"
        if path.exists():
            return torch.load(path, weights_only=True).numpy()

    functions = [_FUNCTIONS[name] for name in names]
    values = np.full((len(smiles), len(names)), np.nan, dtype=np.float64)
    with rdBase.BlockLogs():
        for row, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            if mol is None:
                raise ValueError(f"rdkit_descriptors could not parse molecule {row} ({s!r})")
            for column, function in enumerate(functions):
                try:
                    values[row, column] = function(mol)
                except Exception:  # RDKit raises assorted types on exotic molecules: NaN it
                    pass
    too_big = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max / 1e3)
    values[too_big] = np.nan
    result = values.astype(np.float32)
    if path is not None:
        atomic_save(torch.from_numpy(result), path)
    return result


def morgan_fingerprints(
    smiles: Sequence[str], radius: int = 2, n_bits: int = 2048, counts: bool = False
) -> np.ndarray:
    """Morgan (ECFP-like) fingerprints, ``[len(smiles), n_bits]`` uint8 bits (or counts), from
    RDKit's ``rdFingerprintGenerator``: the features of the classical baselines (ridge, random
    forest, gradient boosting) that a graph network should beat.

    Raises:
        ValueError: for a SMILES that does not parse, naming its position and the string.
    """
    if isinstance(smiles, str):
        raise TypeError("morgan_fingerprints expected a sequence of SMILES strings, got one string")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    fingerprint = (
        generator.GetCountFingerprintAsNumPy if counts else generator.GetFingerprintAsNumPy
    )
    rows = []
    with rdBase.BlockLogs():
        for position, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            if mol is None:
                raise ValueError(f"morgan_fingerprints could not parse molecule {position} ({s!r})")
            rows.append(fingerprint(mol).astype(np.uint8 if not counts else np.float32))
    return np.stack(rows) if rows else np.zeros((0, n_bits), dtype=np.uint8)


# ---- deprecated (gconv 0.2, removed in 0.3) ------------------------------------------------------


class DescriptorScaler(Standardizer):
    """Deprecated: use ``Standardizer.fit(values, clip=5.0, fill_nan=0.0)``.

    The 0.1 descriptor scaler, now a :class:`~gconv.data.Standardizer` with its defaults
    (NaN -> 0, clipped at ``clip``), its array-only checks and its messages. :meth:`fit` warns.
    """

    @classmethod
    def fit(cls, values: np.ndarray, clip: float = 5.0) -> DescriptorScaler:  # type: ignore[override]
        warn_deprecated(
            "gconv.data.DescriptorScaler.fit(values, clip)",
            "gconv.data.Standardizer.fit(values, clip=clip, fill_nan=0.0)",
        )
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] == 0:
            raise ValueError(
                f"DescriptorScaler.fit expected descriptors [N, D] with N > 0, got {values.shape}"
            )
        return super().fit(values, clip=clip, fill_nan=0.0)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``[N, D]`` descriptors -> standardised float32 ``[N, D]`` without NaN."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.num_features:
            raise ValueError(
                f"DescriptorScaler expected descriptors [N, {self.num_features}], "
                f"got {values.shape}"
            )
        return super().transform(values)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_features={self.num_features}, clip={self.clip})"
