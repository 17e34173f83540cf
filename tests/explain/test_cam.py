"""CAM: equals the analytic sum_k w_k^c A_k on images and decomposes the logit on graphs (mean and
sum readouts, gconv's GCN); it needs a global mean/sum readout and one Linear after it."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.explain import Explanation

from gconv.explain.cam import CAM
from gconv.explain.core import normalize_maps
from gconv.layers import MeanReadout, SumReadout


def test_cam_equals_hand_computed_weighted_sum(gap_cnn, images):
    target = torch.tensor([0, 2, 1])
    with CAM(gap_cnn) as cam:
        raw = cam(images, target=target, raw=True)
        maps = cam(images, target=target)
    feature_maps = gap_cnn.features(images)  # A_k: [B, 6, 4, 4]
    weights = gap_cnn.head[-1].weight  # w^c: [3, 6]
    expected = torch.stack(
        [sum(weights[c, k] * feature_maps[b, k] for k in range(6)) for b, c in enumerate(target)]
    )
    torch.testing.assert_close(raw, expected)
    upsampled = F.interpolate(expected[:, None], size=(8, 8), mode="bilinear")[:, 0]
    torch.testing.assert_close(maps, normalize_maps(upsampled))
    assert maps.shape == (3, 8, 8)
    assert maps.amin(dim=(1, 2)).abs().max() < 1e-6
    assert (maps.amax(dim=(1, 2)) - 1).abs().max() < 1e-5


def test_cam_default_target_is_prediction(gap_cnn, images):
    with CAM(gap_cnn) as cam:
        default = cam(images, raw=True)
        predicted = cam(images, target=gap_cnn(images).argmax(1), raw=True)
    torch.testing.assert_close(default, predicted)


def test_cam_logit_is_mean_of_map_plus_bias(gap_cnn, images):
    # the defining identity of CAM: y^c = mean_ij M^c(i, j) + b^c
    with CAM(gap_cnn) as cam:
        raw = cam(images, target=1, raw=True)
    logits = gap_cnn(images)[:, 1]
    torch.testing.assert_close(raw.mean(dim=(1, 2)) + gap_cnn.head[-1].bias[1], logits)


def test_model_without_gap_head_errors_for_cam(images):
    flatten_head = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(128, 3))
    with pytest.raises(ValueError, match=r"global mean/sum readout \+ Linear head"):
        CAM(flatten_head)(images)
    mlp_head = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2, 4),
        nn.ReLU(),
        nn.Linear(4, 3),
    )
    with pytest.raises(ValueError, match=r"exactly one nn.Linear, found \['Linear', 'ReLU'"):
        CAM(mlp_head)(images)


@pytest.mark.parametrize("readout_cls", [MeanReadout, SumReadout])
def test_graph_cam_decomposes_the_logit(readout_cls, make_gcn, graphs):
    torch.manual_seed(0)
    model, data = make_gcn(readout=readout_cls()), graphs
    explanation = CAM(model)(data, target=[1, 3], raw=True)
    assert isinstance(explanation, Explanation)
    assert explanation.node_mask.shape == (7, 1)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    if readout_cls is MeanReadout:
        per_graph = per_graph / torch.tensor([4.0, 3.0])
    logits = model(data)[[0, 1], [1, 3]]
    torch.testing.assert_close(per_graph + model.head.bias[[1, 3]], logits)
    assert explanation.target.tolist() == [1, 3]


def test_graph_cam_on_gconv_gcn_decomposes_the_prediction(graphs):
    from gconv.models import GNN

    torch.manual_seed(0)
    model = GNN(in_channels=3, out_channels=2, conv="gcn", hidden_channels=8, num_layers=2).eval()
    data = graphs
    explanation = CAM(model)(data, target=1, raw=True)
    per_graph = torch.zeros(2).index_add_(0, data.batch, explanation.node_mask[:, 0])
    per_graph = per_graph / torch.tensor([4.0, 3.0])
    with torch.no_grad():
        torch.testing.assert_close(per_graph + model.head.bias[1], model(data)[:, 1])
    assert explanation.get_explanation_subgraph().num_nodes <= data.num_nodes
