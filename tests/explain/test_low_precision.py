"""float16 / bfloat16 models (issue 22, item 6): every explainer returns finite maps, computed in
float32 (Score-CAM's scaling and softmax, the CAM weighting, normalisation, IG's sums), close to
the float32 model's maps; autocast on the CPU too; the normalisation helpers keep their dtype
and stay finite; where the model itself overflows, a clear error instead of NaN maps."""

import copy
import warnings

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch

from gconv.data import smiles_to_graph
from gconv.explain import (
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    Saliency,
    ScoreCAM,
    faithfulness_report,
    normalize_maps,
    normalize_per_channel,
    normalize_per_graph,
)
from gconv.models import CNN, GNN

LOW = [torch.float16, torch.bfloat16]
CAMS = [ScoreCAM, GradCAM, GradCAMPlusPlus, CAM]
METHODS = [*CAMS, Saliency, IntegratedGradients]
SEEDS = range(3)
# largest difference to the float32 maps, relative to their largest value (the model's own
# rounding moves them; about 1e-2 for float16 and 8e-2 for bfloat16 over these seeds)
CLOSE = {torch.float16: 0.05, torch.bfloat16: 0.2}


@pytest.fixture(scope="module")
def molecules():
    smiles = ["c1ccccc1", "Oc1ccccc1", "CCO", "CC(=O)Nc1ccc(O)cc1"]
    return Batch.from_data_list([smiles_to_graph(s) for s in smiles])


def _gcn(seed, in_channels):
    torch.manual_seed(seed)
    return GNN(in_channels, 2, conv="gcn").eval()


def _cnn(seed):
    torch.manual_seed(seed)
    return CNN(in_shape=(1, 16, 16), num_classes=3, channels=(8, 16), head="gap").eval()


def _images(seed):
    return torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def _half(data, dtype):
    data = data.clone()
    data.x = data.x.to(dtype)
    return data


def _explain(method, model, inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # IG's "did not converge" is not tested
        result = method(model)(inputs, target=0)
    return result.node_mask if hasattr(result, "node_mask") else result


def _relative_error(low, reference):
    return float((low - reference).abs().max() / reference.abs().max().clamp_min(1e-12))


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_a_low_precision_gcn_gives_finite_float32_maps(method, dtype, molecules):
    for seed in SEEDS:
        model = _gcn(seed, molecules.x.size(1))
        reference = _explain(method, model, molecules)
        maps = _explain(method, copy.deepcopy(model).to(dtype), _half(molecules, dtype))
        assert bool(torch.isfinite(maps).all()), f"seed {seed}: {maps.flatten()[:6].tolist()}"
        assert maps.dtype == torch.float32 and maps.shape == reference.shape
        if method in CAMS:
            assert 0 <= float(maps.min()) and float(maps.max()) <= 1
            assert _relative_error(maps, reference) < CLOSE[dtype], seed


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_a_low_precision_cnn_gives_finite_float32_maps(method, dtype):
    for seed in SEEDS:
        model, images = _cnn(seed), _images(seed)
        reference = _explain(method, model, images)
        maps = _explain(method, copy.deepcopy(model).to(dtype), images.to(dtype))
        assert bool(torch.isfinite(maps).all()), f"seed {seed}: {maps.flatten()[:6].tolist()}"
        assert maps.dtype == torch.float32 and maps.shape == reference.shape
        if method in CAMS:
            assert 0 <= float(maps.min()) and float(maps.max()) <= 1
            assert _relative_error(maps, reference) < CLOSE[dtype], seed


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_autocast_bfloat16_on_the_cpu_gives_finite_maps(method, molecules):
    model, images = _cnn(0), _images(0)
    gcn = _gcn(0, molecules.x.size(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        maps = _explain(method, model, images)
        node_mask = _explain(method, gcn, molecules)
    for values in (maps, node_mask):
        assert bool(torch.isfinite(values).all()) and values.dtype == torch.float32
    if method in CAMS:
        assert _relative_error(maps, _explain(method, model, images)) < 0.2


def test_score_cam_scales_constant_channels_to_zero_in_float16():
    # a channel that is constant on a graph (a dead ReLU channel): (h - min) / (max - min + 1e-8)
    # is 0 / 0 in float16, where 1e-8 rounds to 0
    values = torch.tensor([[0.0, 1.0], [0.0, 3.0], [2.0, 2.0], [2.0, 5.0]], dtype=torch.float16)
    batch = torch.tensor([0, 0, 1, 1])
    scaled = normalize_per_channel(values, batch, 2)
    assert scaled.dtype == torch.float16
    expected = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(scaled.float(), expected)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_normalisation_helpers_stay_finite_in_low_precision(dtype):
    # a range wider than float16's largest value (65504): max - min overflows to inf there
    maps = torch.tensor([[[-40000.0, 0.0], [20000.0, 40000.0]], [[1.0, 1.0], [1.0, 1.0]]])
    low = maps.to(dtype)
    normalised = normalize_maps(low)
    assert normalised.dtype == dtype and bool(torch.isfinite(normalised).all())
    torch.testing.assert_close(normalised.float(), normalize_maps(maps), atol=1e-2, rtol=0)
    values, batch = maps.reshape(8, 1), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    per_graph = normalize_per_graph(values.to(dtype), batch, 2)
    assert per_graph.dtype == dtype and bool(torch.isfinite(per_graph).all())
    torch.testing.assert_close(
        per_graph.float(), normalize_per_graph(values, batch, 2), atol=1e-2, rtol=0
    )
    channels = normalize_per_channel(values.to(dtype), batch, 2)
    assert bool(torch.isfinite(channels).all())


class Overflowing(nn.Module):
    """A GAP CNN whose feature maps (9e4) and input gradients (1.4e7) overflow float16 (largest
    value 65504) for bright images; all finite in float32."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        with torch.no_grad():
            self.conv.weight.fill_(1e4)
            self.head[2].weight.fill_(1e4)

    def forward(self, x):
        return self.head(self.conv(x).relu())


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_an_overflowing_float16_model_raises_instead_of_returning_nan(method):
    model = Overflowing().eval().half()
    images = torch.ones(2, 1, 8, 8, dtype=torch.float16)
    with pytest.raises(RuntimeError, match=r"non-finite .*float16.*explain it in float32"):
        _explain(method, model, images)
    # the same model in float32 is explained (finite, as before)
    assert bool(torch.isfinite(_explain(method, Overflowing().eval(), images.float())).all())


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_faithfulness_scores_of_low_precision_models_are_float32(dtype, molecules):
    model = _gcn(0, molecules.x.size(1))
    data = _half(molecules, dtype)
    low = copy.deepcopy(model).to(dtype)
    report = faithfulness_report(low, data, GradCAM(low)(data), node_removal="zero")
    reference = faithfulness_report(
        model, molecules, GradCAM(model)(molecules), node_removal="zero"
    )
    for key, value in report.items():
        assert abs(value - reference[key]) < 0.02, key
