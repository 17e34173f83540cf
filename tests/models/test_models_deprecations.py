"""The 0.1 model names keep working until 0.3: each warns, names its replacement, and builds the
same model (the same state dict for the same seed) as the new name."""

import inspect
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import gconv.layers
import gconv.models
import gconv.models.grid
from gconv._utils import REMOVED_IN
from gconv.models import CNN, GNN, MLP, GridGNN, SplineGNN, TransferModel, lecture_cnn
from gconv.models._utils import moved_to_benchmarks
from gconv.models.convert import cnn_to_grid_gnn, grid_gnn_to_cnn

ROOT = Path(__file__).resolve().parents[2]


def built(make, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return make()


def assert_same_state(old: nn.Module, new: nn.Module) -> None:
    old_state, new_state = old.state_dict(), new.state_dict()
    assert list(old_state) == list(new_state)
    for key, value in new_state.items():
        assert torch.equal(old_state[key], value), key


def deprecation(old: str, new: str):
    """``pytest.warns`` for gconv's one wording: ``<old> is deprecated ...; use <new> instead``."""
    pattern = rf"{old} is deprecated and will be removed in gconv {REMOVED_IN}; use {new} instead"
    return pytest.warns(DeprecationWarning, match=pattern)


def test_cnn_hidden_is_head_hidden():
    with deprecation(r"CNN\(hidden=...\)", r"CNN\(head_hidden=...\)"):
        old = built(lambda: CNN(in_shape=(1, 8, 8), channels=(2,), hidden=(5,)))
    assert_same_state(old, built(lambda: CNN(in_shape=(1, 8, 8), channels=(2,), head_hidden=(5,))))
    with deprecation(r"CNN.hidden", r"CNN.head_hidden"):
        assert old.hidden == (5,)
    with pytest.raises(TypeError, match="both hidden= .* and head_hidden="):
        CNN(hidden=(4,), head_hidden=(4,))
    assert "head_hidden" in inspect.signature(CNN).parameters  # help() shows the new name
    assert "hidden" not in inspect.signature(CNN).parameters


def test_grid_gnn_hidden_warns_once_and_converts_back_silently():
    config = dict(in_shape=(1, 8, 8), num_classes=3, channels=(2,))
    with deprecation(r"GridGNN\(hidden=...\)", r"GridGNN\(head_hidden=...\)") as caught:
        old = built(lambda: GridGNN(hidden=(4,), **config))
    assert len(caught) == 1  # GridGNN's warning, not a second one from the CNN inside
    assert_same_state(old, built(lambda: GridGNN(head_hidden=(4,), **config)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        back = grid_gnn_to_cnn(old)  # rebuilt from the new keyword: no second warning
    assert type(back) is CNN and back.head_hidden == (4,)


def test_mlp_in_features_is_in_shape():
    with deprecation(r"MLP\(in_features=...\)", r"MLP\(in_shape=...\)"):
        old = built(lambda: MLP(in_features=(1, 6, 6), hidden=(4,)))
    assert_same_state(old, built(lambda: MLP(in_shape=(1, 6, 6), hidden=(4,))))
    assert old.in_shape == (1, 6, 6) and old.in_features == 36
    assert_same_state(
        built(lambda: MLP(36, hidden=(4,))), built(lambda: MLP(in_shape=36, hidden=(4,)))
    )


def test_spline_gnn_in_channels_and_image_size_are_in_shape():
    new = built(lambda: SplineGNN(in_shape=(2, 12, 12), channels=(4,), cells=3, head_hidden=(8,)))
    with pytest.warns(DeprecationWarning) as caught:
        old = built(
            lambda: SplineGNN(
                in_channels=2, image_size=(12, 12), channels=(4,), cells=3, hidden=(8,)
            )
        )
    messages = sorted(str(w.message) for w in caught)
    assert [m.split(" is deprecated")[0] for m in messages] == [
        "SplineGNN(hidden=...)",
        "SplineGNN(image_size=...)",
        "SplineGNN(in_channels=...)",
    ]
    assert "use SplineGNN(in_shape=(C, H, W))" in messages[1]
    assert_same_state(old, new)
    assert old.in_shape == (2, 12, 12) and str(old) == str(new)
    images = torch.rand(2, 2, 12, 12)
    torch.testing.assert_close(old.eval()(images), new.eval()(images))
    # 0.1's positional order: in_channels, num_classes, channels, kernel_size, spacing,
    # image_size, cells, hidden
    with pytest.warns(DeprecationWarning) as caught:
        positional = built(lambda: SplineGNN(2, 10, (4,), 3, 1.0, (12, 12), 3, (8,)))
    assert len(caught) == 2  # in_channels and image_size, by position
    assert_same_state(positional, new)
    with deprecation(r"SplineGNN.in_channels", r"SplineGNN.in_shape\[0\]"):
        assert old.in_channels == 2
    with deprecation(r"SplineGNN.image_size", r"SplineGNN.in_shape\[1:\]"):
        assert old.image_size == (12, 12)
    with pytest.raises(TypeError, match="pass only in_shape"):
        SplineGNN(in_shape=(1, 8, 8), image_size=(8, 8))


def test_gcn_is_gnn_with_the_gcn_encoder():
    new = built(lambda: GNN(4, 2, conv="gcn", hidden_channels=8, num_layers=2, edge_dim=3))
    with deprecation(r"gconv.models.GCN", r'gconv.models.GNN\(..., conv="gcn"\)'):
        old = built(lambda: gconv.models.GCN(4, 2, hidden_channels=8, num_layers=2, edge_dim=3))
    assert_same_state(old, new)
    assert isinstance(old, GNN) and old.conv == "gcn"
    with pytest.warns(DeprecationWarning):  # GCN's own positional order: hidden_channels third
        positional = built(lambda: gconv.models.GCN(4, 2, 8, 2, "mean", 0.0, True, True, 3))
    assert_same_state(positional, new)
    # its repr stays 0.1's (no conv=), its errors name it
    assert repr(old) == ("GCN(4, 2, hidden_channels=8, num_layers=2, readout=MeanReadout())")
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="GCN expected"):
        gconv.models.GCN(0, 1)
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="'conv'"):
        gconv.models.GCN(4, 1, conv="gine")
    assert "GCN" not in gconv.models.__all__


def test_mnist_cnn_is_lecture_cnn():
    with deprecation(r"gconv.models.mnist_cnn", r"gconv.models.lecture_cnn"):
        old = built(gconv.models.mnist_cnn)
    assert_same_state(old, built(lecture_cnn))
    assert "mnist_cnn" not in gconv.models.__all__


def test_transfer_model_out_channels_is_feature_channels():
    model = TransferModel("vgg11", num_classes=3)
    assert model.feature_channels == 512 == model.head[-1].in_features
    with deprecation(r"TransferModel.out_channels", r"TransferModel.feature_channels"):
        assert model.out_channels == 512


def test_converters_moved_to_gconv_models_convert():
    for name, function in (
        ("cnn_to_grid_gnn", cnn_to_grid_gnn),
        ("grid_gnn_to_cnn", grid_gnn_to_cnn),
    ):
        with deprecation(rf"gconv.models.grid.{name}", rf"gconv.models.convert.{name}"):
            assert getattr(gconv.models.grid, name) is function
        assert getattr(gconv.models, name) is function  # the package's name: no warning


@pytest.mark.parametrize("module", [gconv.models, gconv.models.grid])
def test_pyg_grid_gcn_moved_to_the_benchmarks(module):
    with deprecation(
        rf"{module.__name__}.PyGGridGCN",
        r"PyGGridGCN from benchmarks/pyg_grid_gcn.py \(gconv's source repository\)",
    ):
        reference = module.PyGGridGCN
    assert Path(inspect.getfile(reference)) == ROOT / "benchmarks" / "pyg_grid_gcn.py"
    model = gconv.models.GridGCN(in_shape=(1, 4, 4), hidden_channels=4, num_layers=2)
    assert sum(p.numel() for p in reference(model).parameters()) > 0  # shares the model's
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        module.Nope  # noqa: B018


def test_moved_class_without_the_source_tree_says_where_it_went():
    getattr_ = moved_to_benchmarks("gconv.fake", {"Gone": "no_such_file.py"})
    with pytest.raises(ImportError, match="moved out of the gconv package to benchmarks/no_such"):
        getattr_("Gone")
