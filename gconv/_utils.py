"""Small private helpers shared across gconv's modules (one copy, one policy).

* :func:`preserve_mode` / :func:`evaluating`: put a model in eval mode and restore *every*
  module's own ``training`` flag afterwards (``model.train(was_training)`` would turn on a
  BatchNorm that the user froze on purpose).
* :func:`atomic_write` / :func:`atomic_save`: write a file through a temporary file in the same
  directory, ``fsync`` it and rename it over the target, so readers never see half a file and a
  crash leaves the old one.
* :func:`move_to`: tensors, PyG data and (nested) lists / tuples / dicts of them to a device with
  ``non_blocking`` copies; :func:`module_device`: the device a model's parameters live on.
* :func:`release_free_memory`: hand the C heap's free pages back to the operating system
  (glibc's ``malloc_trim``), called between batches of long passes so that a process's memory
  is what it holds, not what it once held.
* Deprecations, one policy for every rename (old names keep working for one minor version):
  :func:`warn_deprecated` (the one message), :func:`deprecated_function` (a renamed or replaced
  function), :func:`renamed_arguments` (renamed keyword arguments) and
  :func:`deprecated_module_attributes` (a module ``__getattr__`` for names that moved or were
  renamed).

This module imports nothing from gconv, so any layer of the package may use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib
import os
import tempfile
import warnings
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
    "module_device",
    "release_free_memory",
    "warn_deprecated",
    "deprecated_function",
    "renamed_arguments",
    "deprecated_module_attributes",
]

#: The release in which the names deprecated in this one are removed.
REMOVED_IN = "0.3"


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


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to trim
        return None


def release_free_memory() -> None:
    """Hands the C heap's free pages back to the operating system (glibc's ``malloc_trim(0)``;
    nothing where the C library has no such call).

    glibc keeps the memory of freed small blocks (a batch's graphs, its tensors' metadata) in
    the process for reuse; over a pass through hundreds of thousands of molecules of growing
    size the kept pages add up to gigabytes of resident memory the process no longer uses
    (measured on the 1M-molecule store: ``malloc_trim`` gave back 160 MB after predicting
    32,000 new molecules). A call costs about 4 ms (a pass of 500 batches of 64 store
    molecules); gconv makes it every :data:`TRIM_EVERY` batches of a training epoch or a
    prediction pass (about 0.3 % of the pass) and at the end of each.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


#: Batches between two :func:`release_free_memory` calls in long passes (the molecule tool's
#: training batches of 64: about 4,000 molecules between two calls).
TRIM_EVERY = 64


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


def module_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


# ---- deprecations -------------------------------------------------------------------------------


def warn_deprecated(old: str, new: str, stacklevel: int = 3) -> None:
    """Warns that ``old`` is deprecated in favour of ``new`` (one wording for every rename).

    ``stacklevel=3`` points at the caller of the function that calls this one.
    """
    warnings.warn(
        f"{old} is deprecated and will be removed in gconv {REMOVED_IN}; use {new} instead",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def deprecated_function(function: Callable, old: str, new: str) -> Callable:
    """``function`` under its old name ``old``: same behaviour, plus a :class:`DeprecationWarning`
    that names ``new`` (e.g. ``"gconv.explain.Saliency(model)(inputs)"``)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warn_deprecated(old, new)
        return function(*args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = old.rsplit(".", 1)[-1]
    wrapper.__doc__ = f"Deprecated alias: use {new}."
    return wrapper


def renamed_arguments(
    owner: str, kwargs: dict[str, Any], renames: Mapping[str, str]
) -> dict[str, Any]:
    """Moves deprecated keyword arguments to their new names, warning once for each.

    Args:
        owner: what takes the arguments, for the messages (``"CNN"``).
        kwargs: the keyword arguments as given; changed in place and returned.
        renames: old name -> new name.

    Raises:
        TypeError: if an old name and its new name are both given.
    """
    for old, new in renames.items():
        if old not in kwargs:
            continue
        if new in kwargs:
            raise TypeError(f"{owner} got both {old}= (deprecated) and {new}=; pass only {new}=")
        warn_deprecated(f"{owner}({old}=...)", f"{owner}({new}=...)", stacklevel=4)
        kwargs[new] = kwargs.pop(old)
    return kwargs


def deprecated_module_attributes(
    module: str, moved: Mapping[str, tuple[str, str]]
) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` (PEP 562) for names that moved or were renamed.

    Args:
        module: the module's ``__name__``, for the messages.
        moved: old name -> ``(new module, new name)``; the object is imported from there on
            first use, with a :class:`DeprecationWarning` naming its new home.

    Example::

        __getattr__ = deprecated_module_attributes(
            __name__, {"cnn_to_grid_gnn": ("gconv.models.convert", "cnn_to_grid_gnn")}
        )
    """

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_module, new_name = moved[name]
        warn_deprecated(f"{module}.{name}", f"{new_module}.{new_name}")
        return getattr(importlib.import_module(new_module), new_name)

    return __getattr__
