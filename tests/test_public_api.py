"""The public API: every subpackage says what it exports, the examples and benchmarks use only
that (no ``gconv._utils``, no private or deprecated names, nothing outside a module's
``__all__``), so what a user copies from them keeps working; and no module of gconv imports
another's private names."""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = [
    "gconv",
    "gconv.data",
    "gconv.layers",
    "gconv.models",
    "gconv.train",
    "gconv.explain",
    "gconv.summary",
    "gconv.molecule",
    "gconv.image",
    "gconv.cli",
]
SCRIPTS = sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))


def _resolve(module_name: str, name: str) -> object:
    """``getattr(module, name)`` with deprecation warnings raised as errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return getattr(importlib.import_module(module_name), name)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_has_a_docstring_and_an_all_that_resolves(module_name):
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no docstring"
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    assert len(set(module.__all__)) == len(module.__all__), f"{module_name}.__all__ repeats a name"
    for name in module.__all__:
        assert not name.startswith("_") or name == "__version__", f"{module_name}.{name}"
        _resolve(module_name, name)  # exists, and is not a deprecated alias


def _is_public(module_name: str, name: str) -> bool:
    """``from module_name import name`` is public: no private part in the path and ``name`` in
    the ``__all__`` of the module it is imported from."""
    if any(part.startswith("_") for part in module_name.split(".")) or name.startswith("_"):
        return False
    return name in getattr(importlib.import_module(module_name), "__all__", ())


def _gconv_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, module, name)`` for every ``from gconv... import name`` / ``import gconv...``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "gconv"
        ):
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name, None)
                for alias in node.names
                if alias.name.split(".")[0] == "gconv"
            ]
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_and_benchmarks_import_only_public_names(script):
    private = []
    for line, module_name, name in _gconv_imports(script):
        if name is None:
            public = not any(part.startswith("_") for part in module_name.split("."))
        else:
            public = _is_public(module_name, name)
            if public:
                _resolve(module_name, name)  # a deprecated name fails here
        if not public:
            private.append(f"line {line}: {module_name}" + (f".{name}" if name else ""))
    assert not private, f"{script.name} imports non-public names: " + "; ".join(private)


def _private_imports(path: Path) -> list[str]:
    """``from gconv.x import _name`` in ``path`` (a ``_utils`` module's public names are fine)."""
    return [
        f"line {node.lineno}: {node.module}.{alias.name}"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gconv"
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "gconv").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_module_imports_another_modules_private_names(path):
    """The house rule: what two rooms share is public in the room that owns it, or lives in a
    ``_utils.py``."""
    assert not _private_imports(path), f"{path.name} imports " + "; ".join(_private_imports(path))
