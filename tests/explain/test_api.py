"""gconv.explain as a package: one public name per concept, all of them in ``__all__`` (nothing
deprecated there), every room with a docstring and an ``__all__``, no module importing another's
private names, examples and benchmarks importing only public names, and every 0.1 location of a
moved name still importable with a warning that names the new one."""

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import gconv.explain

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "gconv" / "explain"
ROOMS = [
    "targets",
    "find_layers",
    "hooks",
    "core",
    "cam",
    "gradient",
    "decomposition",
    "occlusion",
    "choose",
    "faithfulness",
    "viz",
]
DEPRECATED = ["saliency", "integrated_gradients", "model_randomisation", "graph"]


def test_all_lists_every_public_name_and_nothing_deprecated():
    public = set(gconv.explain.__all__)
    assert len(public) == len(gconv.explain.__all__)  # no duplicates
    for room in ROOMS:
        module = importlib.import_module(f"gconv.explain.{room}")
        assert module.__doc__, room
        assert room in public
        missing = set(module.__all__) - public
        assert not missing, f"gconv.explain.{room}: {sorted(missing)} not in gconv.explain.__all__"
        for name in module.__all__:
            assert getattr(gconv.explain, name) is getattr(module, name), name
    assert not public & set(DEPRECATED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no public name is a deprecated one
        for name in gconv.explain.__all__:
            getattr(gconv.explain, name)
    assert gconv.explain.__doc__


def _module_files():
    return sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", _module_files(), ids=lambda p: p.name)
def test_every_module_has_a_docstring_and_all(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), path.name
    if path.name != "__init__.py":
        names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
        assert "__all__" in names, path.name


def _imports(path):
    """``(module, name)`` of every ``from gconv... import name`` in a file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gconv"):
            for alias in node.names:
                yield node.module, alias.name


MOVED = {
    # 0.1 location in gconv.explain.cam -> the room it lives in now
    "ActivationsAndGradients": "hooks",
    "resolve_layer": "find_layers",
    "find_target_layer": "find_layers",
    "candidate_layers": "find_layers",
    "normalize_maps": "core",
    "normalize_per_graph": "core",
    "graph_batch": "core",
    "graph_explanations": "core",
    "as_target": "targets",
}
# the names gconv.explain.cam uses itself: importable from it as before, without a warning
STILL_IN_CAM = {
    "BaseCAM": "core",
    "NodeActivations": "hooks",
    "ClassifierOutputTarget": "targets",
    "target_index": "targets",
    "with_features": "core",
}


@pytest.mark.parametrize("name", sorted(MOVED))
def test_names_moved_out_of_cam_warn_and_name_their_new_home(name):
    from gconv.explain import cam

    new = importlib.import_module(f"gconv.explain.{MOVED[name]}")
    with pytest.warns(
        DeprecationWarning,
        match=rf"gconv.explain.cam.{name} is deprecated .* use "
        rf"gconv.explain.{MOVED[name]}.{name} instead",
    ):
        assert getattr(cam, name) is getattr(new, name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        cam.nothing  # noqa: B018


@pytest.mark.parametrize("name", sorted(STILL_IN_CAM))
def test_names_cam_uses_stay_importable_from_it(name):
    from gconv.explain import cam

    home = importlib.import_module(f"gconv.explain.{STILL_IN_CAM[name]}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(cam, name) is getattr(home, name)


def test_every_0_1_public_name_still_imports():
    # gconv.explain.__all__ of 0.1.0, and the __all__ of its modules cam, graph, faithfulness, viz
    old_package = [
        "faithfulness", "graph", "viz", "ActivationsAndGradients", "BaseCAM", "CAM",
        "ClassifierOutputTarget", "GradCAM", "GradCAMPlusPlus", "ScoreCAM", "Saliency",
        "IntegratedGradients", "candidate_layers", "find_target_layer", "saliency",
        "integrated_gradients", "image_curve", "graph_curve", "faithfulness_report",
        "model_randomisation", "prediction_grid", "draw_graph", "draw_matrices",
    ]  # fmt: skip
    old_modules = {
        "cam": MOVED.keys() | STILL_IN_CAM.keys() | {"CAM", "GradCAM", "GradCAMPlusPlus"},
        "faithfulness": ["FaithfulnessCurve", "randomize_model", "model_randomisation"],
        "viz": ["overlay", "heatmap_overlay", "grid_node_importance", "molecule_grid"],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in old_package:
            assert getattr(gconv.explain, name) is not None, name
        for module, names in old_modules.items():
            imported = importlib.import_module(f"gconv.explain.{module}")
            for name in names:
                assert getattr(imported, name) is not None, f"{module}.{name}"
        graph = importlib.import_module("gconv.explain.graph")
        assert graph.Saliency is gconv.explain.Saliency
