"""Helpers shared by the model modules (one copy each; private to :mod:`gconv.models`).

* :func:`check_in_shape`: the one check of an image model's ``in_shape = (C, H, W)``.
* :func:`leaves` / :func:`named_leaves`: the leaf layers of nested ``nn.Sequential`` blocks,
  which the grid models run and the converters walk.
* :func:`renamed_keywords`: a decorator for an ``__init__`` whose keyword arguments were
  renamed (the old keyword warns and names the new one, through
  :func:`gconv._utils.renamed_arguments`).
* :func:`moved_to_benchmarks`: the module ``__getattr__`` for a class that left the package for
  ``benchmarks/`` (loaded from the source tree with a warning, or an ``ImportError`` saying
  where it went).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from gconv._utils import renamed_arguments, warn_deprecated

__all__ = ["check_in_shape", "leaves", "named_leaves", "renamed_keywords", "moved_to_benchmarks"]


def check_in_shape(owner: str, in_shape: Sequence[int]) -> tuple[int, int, int]:
    """``in_shape`` as a tuple ``(C, H, W)`` of positive ints, else a ``ValueError`` naming
    ``owner``."""
    in_shape = tuple(in_shape)
    if len(in_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in in_shape):
        raise ValueError(f"{owner} expected in_shape=(C, H, W) of positive ints, got {in_shape}")
    return in_shape


def leaves(module: nn.Module) -> list[nn.Module]:
    """The leaf layers of nested ``nn.Sequential`` blocks, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in leaves(child)]
    return [module]


def named_leaves(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """:func:`leaves` with their dotted names under ``prefix``."""
    if isinstance(module, nn.Sequential):
        return [
            leaf
            for name, child in module.named_children()
            for leaf in named_leaves(child, f"{prefix}.{name}")
        ]
    return [(prefix, module)]


def renamed_keywords(**renames: str) -> Callable[[Callable], Callable]:
    """Decorates an ``__init__`` whose keyword arguments were renamed (``old="new"``).

    An old keyword is passed on under its new name with a :class:`DeprecationWarning` that names
    the class and the new keyword (``CNN(hidden=...) is deprecated ...; use
    CNN(head_hidden=...)``); giving both is a ``TypeError``. The signature shown by ``help()``
    and :func:`inspect.signature` stays the new one, and the table is kept on the wrapper as
    ``.renamed_keywords`` for models that pass the same arguments on (``GridGNN``).
    """

    def decorate(init: Callable) -> Callable:
        @functools.wraps(init)
        def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> None:
            if kwargs.keys() & renames.keys():
                renamed_arguments(type(self).__name__, kwargs, renames)
            init(self, *args, **kwargs)

        wrapper.renamed_keywords = dict(renames)
        return wrapper

    return decorate


def moved_to_benchmarks(
    module: str, moved: Mapping[str, str], fallback: Callable[[str], Any] | None = None
) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for classes that moved from ``module`` to a file of the
    repository's ``benchmarks/`` folder, which is not part of the installed package.

    Args:
        module: the module's ``__name__``, for the messages.
        moved: old name -> the file under ``benchmarks/`` that now defines it (same name).
        fallback: the ``__getattr__`` to ask for any other name (e.g. one made by
            :func:`gconv._utils.deprecated_module_attributes`).

    In a source checkout (``benchmarks/`` next to the ``gconv`` package) the file is loaded as
    the module ``benchmarks.<stem>`` with a :class:`DeprecationWarning` naming it; in an
    installed package without the folder it raises an ``ImportError`` saying where the class went.
    """

    def __getattr__(name: str) -> Any:
        if name not in moved:
            if fallback is not None:
                return fallback(name)
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        file = moved[name]
        path = Path(__file__).resolve().parents[2] / "benchmarks" / file
        new = f"{name} from benchmarks/{file} (gconv's source repository)"
        if not path.is_file():
            raise ImportError(
                f"{module}.{name} moved out of the gconv package to benchmarks/{file} in gconv's "
                f"source repository (not installed with the package); copy it from there"
            )
        warn_deprecated(f"{module}.{name}", new)
        module_name = f"benchmarks.{path.stem}"
        loaded = sys.modules.get(module_name)
        if loaded is None or Path(getattr(loaded, "__file__", "")).resolve() != path:
            spec = importlib.util.spec_from_file_location(module_name, path)
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = loaded
            try:
                spec.loader.exec_module(loaded)
            except BaseException:
                del sys.modules[module_name]
                raise
        return getattr(loaded, name)

    return __getattr__
