"""CAM: equals the analytic sum_k w_k^c A_k, hooks and train mode are restored, bad input errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gconv.explain.cam import (
    CAM,
    ClassifierOutputTarget,
    GradCAM,
    find_target_layer,
    normalize_maps,
    resolve_layer,
)


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


def test_hooks_removed_and_train_mode_restored(gap_cnn, images):
    gap_cnn.train()
    gap_cnn.features[0].eval()  # a user-frozen submodule keeps its own flag
    pool = gap_cnn.head[0]
    with GradCAM(gap_cnn) as cam:
        assert not gap_cnn.training
        assert len(cam.target_layer._forward_hooks) == 1
        cam(images)
    assert gap_cnn.training and not gap_cnn.features[0].training
    assert all(len(m._forward_hooks) == 0 for m in gap_cnn.modules())
    with CAM(gap_cnn):
        assert len(pool._forward_hooks) == 1
    assert len(pool._forward_hooks) == 0
    assert gap_cnn.training


def test_target_layer_found_automatically():
    flat = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 2)
    )
    assert find_target_layer(flat)[0] == "2"  # conv -> relu -> pool, stops before the head

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Conv2d(2, 2, 1)
            )
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))

    assert find_target_layer(Nested())[0] == "body"


def test_target_layer_by_name_and_close_names(gap_cnn, images):
    assert resolve_layer(gap_cnn, "features.0") is gap_cnn.features[0]
    with pytest.raises(ValueError, match=r"no layer named 'featurs.1'.*features\.1"):
        GradCAM(gap_cnn, target_layer="featurs.1")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(gap_cnn, target_layer=nn.Conv2d(1, 1, 1))
    with GradCAM(gap_cnn, target_layer="features.0") as cam:
        assert cam(images).shape == (3, 8, 8)


def test_model_without_conv_or_gap_head_errors(images):
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with pytest.raises(ValueError, match="has no Conv2d layer"):
        GradCAM(mlp)
    flatten_head = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(128, 3))
    with pytest.raises(ValueError, match="global-average-pool \\+ Linear head"):
        CAM(flatten_head)


def test_class_index_out_of_range(gap_cnn, images):
    with (
        CAM(gap_cnn) as cam,
        pytest.raises(ValueError, match="class index out of range.*3 outputs"),
    ):
        cam(images, target=3)
    with GradCAM(gap_cnn) as cam, pytest.raises(ValueError, match="one class index per sample"):
        cam(images, target=[0, 1])
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        GradCAM(gap_cnn)(images[0])


def test_classifier_output_target():
    output = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(ClassifierOutputTarget(1)(output), torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(ClassifierOutputTarget([1, 0])(output), torch.tensor([2.0, 3.0]))
