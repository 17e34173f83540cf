"""Small private helpers shared across gconv's modules (one copy, one policy).

* :func:`preserve_mode` / :func:`evaluating`: put a model in eval mode and restore *every*
  module's own ``training`` flag afterwards (``model.train(was_training)`` would turn on a
  BatchNorm that the user froze on purpose).
* :func:`atomic_write` / :func:`atomic_save`: write a file through a temporary file in the same
  directory, ``fsync`` it and rename it over the target, so readers never see half a file and a
  crash leaves the old one.
* :func:`move_to`: tensors, PyG data and (nested) lists / tuples / dicts of them to a device with
  ``non_blocking`` copies.

This module imports nothing from gconv, so any layer of the package may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

__all__ = [
    "module_modes",
    "restore_modes",
    "preserve_mode",
    "evaluating",
    "atomic_write",
    "atomic_save",
    "move_to",
]


def module_modes(model: nn.Module) -> dict[nn.Module, bool]:
    """The ``training`` flag of every sub-module (the model included), keyed by module."""
    return {module: module.training for module in model.modules()}


def restore_modes(modes: dict[nn.Module, bool]) -> None:
    """Sets each module's ``training`` flag back to what :func:`module_modes` recorded."""
    for module, training in modes.items():
        module.training = training


@contextlib.contextmanager
def preserve_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Restores every module's ``training`` flag on exit, whatever the body changed."""
    modes = module_modes(model)
    try:
        yield model
    finally:
        restore_modes(modes)


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model.eval()`` inside the block; every module's own flag restored on exit."""
    with preserve_mode(model):
        model.eval()
        yield model


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Calls ``write(f)`` on a temporary file next to ``path``, then renames it over ``path``.

    The file is flushed and ``fsync``-ed before :func:`os.replace` (atomic on POSIX and
    Windows); on any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def move_to(obj: Any, device: torch.device | str, non_blocking: bool = True) -> Any:
    """Moves tensors and PyG data, alone or in (nested) lists, tuples and dicts, to ``device``.

    Anything else (ints, strings, ``None``) is returned as it is.
    """
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple
        return type(obj)(*(move_to(item, device, non_blocking) for item in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device, non_blocking) for item in obj)
    if isinstance(obj, Mapping):
        return {key: move_to(value, device, non_blocking) for key, value in obj.items()}
    if isinstance(obj, torch.Tensor) or hasattr(obj, "to"):
        try:
            return obj.to(device, non_blocking=non_blocking)
        except TypeError:  # a .to() without non_blocking (some user containers)
            return obj.to(device)
    return obj
