"""Layering: the layers and the grid layout load neither RDKit nor torchvision."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["gconv.layers", "gconv.grid_layout", "gconv.data.grid"])
def test_import_loads_no_rdkit_or_torchvision(module):
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('rdkit', 'torchvision') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "", f"import {module} loaded {result.stdout.strip()}"


def test_data_names_stay_importable_and_lazy():
    import gconv.data

    for name in gconv.data.__all__:
        assert getattr(gconv.data, name) is not None
    from gconv.data import TensorLoader, grid_graph, mnist5k  # noqa: F401

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        gconv.data.nope  # noqa: B018


def test_layout_helpers_are_shared_not_copied():
    import gconv.data.grid
    import gconv.grid_layout
    import gconv.layers.grid

    assert gconv.data.grid.grid_graph is gconv.grid_layout.grid_graph
    assert gconv.layers.grid.grid_offsets is gconv.grid_layout.grid_offsets


def test_one_activation_table():
    from gconv.layers.activation import ACTIVATIONS
    from gconv.models import cnn

    assert cnn.ACTIVATIONS is ACTIVATIONS
