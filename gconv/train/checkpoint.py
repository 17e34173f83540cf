"""Checkpoints that are never half-written and load with ``weights_only=True``.

:func:`save_checkpoint` writes to a temporary file in the target directory, flushes it to disk and
renames it over the target with :func:`os.replace` (atomic on POSIX and Windows): a crash leaves
either the old checkpoint or the new one, never a torn file. :func:`load_checkpoint` uses
``torch.load(weights_only=True)``, so a checkpoint can only hold tensors and plain containers;
:func:`rng_state` / :func:`set_rng_state` turn the Python, NumPy and torch random states into
such values for exact resume. :func:`check_writable_dir` makes sure, before a run starts, that its
checkpoints can be written.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gconv._utils import atomic_save, atomic_write

__all__ = [
    "CheckpointError",
    "check_writable_dir",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "atomic_save",
    "atomic_write",
]


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read as a gconv checkpoint."""


def check_writable_dir(path: str | os.PathLike, what: str = "checkpoint_dir") -> Path:
    """Create the directory ``path`` (with its parents) and check that a file can be written in
    it, so that a run fails before training rather than at its first checkpoint.

    Args:
        path: the directory.
        what (str): how the messages name it (``"checkpoint_dir"``, ``"--out"``).

    Raises:
        ValueError: ``path`` is a file, cannot be created, or is not writable (one line naming
            the reason).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file, not a directory: pass a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"{what} {str(path)!r} cannot be created ({exc.strerror or exc}): pass a directory "
            "that can be created and written to"
        ) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
    except OSError as exc:
        raise ValueError(
            f"{what} {str(path)!r} is not writable ({exc.strerror or exc}): pass a directory "
            "you can write to"
        ) from exc
    os.close(fd)
    os.unlink(probe)
    return path


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + ``os.replace``); on any error the
    temporary file is removed and a previous checkpoint at ``path`` is untouched."""
    return atomic_save(state, path)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt, or holds something other than a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for torn / foreign files
        detail = " ".join(str(exc).split())  # one line, whatever torch's message spans
        raise CheckpointError(
            f"could not read checkpoint {path}: the file is corrupt, truncated or not a "
            f"torch checkpoint ({type(exc).__name__}: {detail})"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(state).__name__}, expected a dict of states"
        )
    return state


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA random states as ``weights_only``-loadable values."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (
            np_kind,
            torch.from_numpy(np_keys.astype(np.int64)),
            np_pos,
            np_has_gauss,
            np_gauss,
        ),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random states saved by :func:`rng_state`."""
    random.setstate(_as_tuple(state["python"]))
    # Generator states are CPU byte tensors, whatever map_location the checkpoint was loaded with.
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state(
        (np_kind, np_keys.cpu().numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss)
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuple(value: Any) -> Any:
    # random.setstate needs tuples all the way down; a loaded checkpoint may hold lists.
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value
