"""gconv.data as a package: one lazy table that agrees with its modules, public names only in
the examples and benchmarks, and imports that load only what they need."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import gconv.data

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "gconv" / "data"


def test_all_is_the_union_of_the_modules_all():
    union = set()
    for module_name, names in gconv.data._MODULES.items():
        module = importlib.import_module(f"gconv.data.{module_name}")
        assert set(module.__all__) == set(names), module_name
        assert len(module.__all__) == len(set(module.__all__)), module_name
        union |= set(names)
        for name in names:
            assert getattr(gconv.data, name) is getattr(module, name)
    assert sorted(union) == gconv.data.__all__ and len(union) == sum(
        len(names) for names in gconv.data._MODULES.values()
    )  # no name in two modules


def test_every_module_has_a_docstring_and_all():
    modules = sorted(path.stem for path in DATA.glob("*.py") if not path.stem.startswith("_"))
    # molecules: the 0.1 module, only deprecated names (see test_deprecations.py)
    assert sorted([*gconv.data._MODULES, "molecules"]) == modules
    # _utils: what the rooms share (as gconv/_utils.py and gconv/explain/_utils.py), not exported
    private = sorted(path.stem for path in DATA.glob("_*.py") if path.stem != "__init__")
    assert private == ["_utils"]
    for name in ["__init__", *private, *modules]:
        tree = ast.parse((DATA / f"{name}.py").read_text())
        assert ast.get_docstring(tree), name
        assert any(
            isinstance(node, (ast.Assign, ast.AnnAssign))
            and "__all__" in ast.unparse(node).split("=")[0]
            for node in tree.body
        ), name


def test_type_checking_imports_match_the_table():
    tree = ast.parse((DATA / "__init__.py").read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    )
    imported = {
        (node.module.rsplit(".", 1)[-1], alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    table = {(module, name) for module, names in gconv.data._MODULES.items() for name in names}
    assert imported - table == {("descriptors", "DescriptorScaler")}  # deprecated, not in __all__
    assert table <= imported


def gconv_data_imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``from gconv.data[.module] import name`` in a file."""
    tree = ast.parse(path.read_text())
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gconv.data")
        for alias in node.names
    ]


HEAVY = "heavy = sorted(m for m in ('rdkit', 'torchvision', 'skimage') if m in sys.modules)"


@pytest.mark.parametrize(
    ("imports", "loaded"),
    [
        ("TensorLoader, image_to_graph, RandomShift", []),
        ("smiles_to_graph, Standardizer, random_split_indices", ["rdkit"]),
        ("mnist5k, MNIST", ["torchvision"]),
    ],
)
def test_imports_load_only_what_they_need(imports, loaded):
    code = f"import sys\nfrom gconv.data import {imports}\n{HEAVY}\nprint(','.join(heavy))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ",".join(loaded)
