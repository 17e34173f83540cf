"""The one deprecation policy (gconv._utils): every old name warns and names its replacement."""

import types

import pytest
import torch
from torch import nn

from gconv._utils import (
    REMOVED_IN,
    deprecated_function,
    deprecated_module_attributes,
    module_device,
    renamed_arguments,
)


def test_deprecated_function_warns_and_forwards():
    def add(a, b=1):
        return a + b

    old = deprecated_function(add, "gconv.old_add", "gconv.add")
    with pytest.warns(
        DeprecationWarning, match=rf"old_add is deprecated .* {REMOVED_IN}; use gconv.add"
    ):
        assert old(2, b=3) == 5
    assert old.__name__ == "old_add"


def test_renamed_arguments_moves_and_refuses_both():
    with pytest.warns(
        DeprecationWarning, match=r"CNN\(hidden=...\) is deprecated.*CNN\(head_hidden"
    ):
        kwargs = renamed_arguments(
            "CNN", {"hidden": (8,), "dropout": 0.1}, {"hidden": "head_hidden"}
        )
    assert kwargs == {"head_hidden": (8,), "dropout": 0.1}
    with pytest.raises(TypeError, match="both hidden= .* and head_hidden="):
        renamed_arguments("CNN", {"hidden": 1, "head_hidden": 2}, {"hidden": "head_hidden"})


def test_deprecated_module_attributes_imports_from_the_new_home():
    module = types.ModuleType("gconv.fake")
    module.__getattr__ = deprecated_module_attributes("gconv.fake", {"Old": ("torch.nn", "Linear")})
    with pytest.warns(DeprecationWarning, match=r"gconv.fake.Old is deprecated.*torch.nn.Linear"):
        assert module.__getattr__("Old") is nn.Linear
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        module.__getattr__("Nope")


def test_module_device():
    assert module_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(nn.ReLU()) == torch.device("cpu")
    bn_only = nn.BatchNorm1d(2, affine=False)
    assert module_device(bn_only) == torch.device("cpu")
