"""CAM: equals the analytic sum_k w_k^c A_k; a call leaves the model as it found it; the target layer
is chosen by execution order and errors list the candidates; bad input errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gconv.explain.cam import (
    CAM,
    ClassifierOutputTarget,
    GradCAM,
    GradCAMPlusPlus,
    ScoreCAM,
    candidate_layers,
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


def _no_hooks(model):
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


@pytest.mark.parametrize("method", [CAM, GradCAM, GradCAMPlusPlus, ScoreCAM])
def test_one_shot_call_leaves_the_model_as_found(gap_cnn, images, method):
    gap_cnn.train()
    gap_cnn.features[0].eval()  # a user-frozen submodule keeps its own flag
    modes = {name: m.training for name, m in gap_cnn.named_modules()}
    gap_cnn.head[-1].weight.grad = torch.full_like(gap_cnn.head[-1].weight, 7.0)
    grads = {
        name: None if p.grad is None else p.grad.clone() for name, p in gap_cnn.named_parameters()
    }
    state = {k: v.clone() for k, v in gap_cnn.state_dict().items()}
    maps = method(gap_cnn)(images)  # no `with`, no release()
    assert maps.shape == (3, 8, 8)
    assert {name: m.training for name, m in gap_cnn.named_modules()} == modes
    assert _no_hooks(gap_cnn)
    for name, p in gap_cnn.named_parameters():
        assert (p.grad is None) == (grads[name] is None), name
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name])
    for key, value in gap_cnn.state_dict().items():  # BatchNorm statistics untouched too
        torch.testing.assert_close(value, state[key])
    with method(gap_cnn) as cam:  # the context manager form holds no hooks between calls
        cam(images)
        assert _no_hooks(gap_cnn)
    assert gap_cnn.training and not gap_cnn.features[0].training


def test_in_place_activation_after_the_target_does_not_change_the_map(images):
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    in_place = nn.Sequential(conv, nn.ReLU(inplace=True), head)
    copy_relu = nn.Sequential(conv, nn.ReLU(), head)
    a = GradCAM(in_place, target_layer="0")(images, target=1, raw=True)
    b = GradCAM(copy_relu, target_layer="0")(images, target=1, raw=True)
    torch.testing.assert_close(a, b)
    assert (a < 0).any()  # the pre-ReLU map was kept, not the one ReLU overwrote in place


class LateRegistered(nn.Module):
    """`late` is registered first but runs last; `unused` and `blocks` (a ModuleList) never run
    as such: registration order would pick the wrong layer."""

    def __init__(self):
        super().__init__()
        self.late = nn.Conv2d(4, 5, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()])
        self.unused = nn.Conv2d(5, 5, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(self.late(x))


def test_target_layer_found_by_execution_order(images):
    flat = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 2)
    )
    assert find_target_layer(flat, images)[0] == "2"  # conv -> relu -> pool, before the head

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Conv2d(2, 2, 1)
            )
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))

        def forward(self, x):
            return self.head(self.body(x))

    name, module, use_input = find_target_layer(Nested(), images)
    assert (name, use_input) == ("body", False)

    model = LateRegistered()
    cam = GradCAM(model)  # an image model: chosen at once from a trial forward
    assert cam.target_layer is model.late and cam.target_layer_name == "late"
    assert candidate_layers(model, images) == ["blocks.0", "blocks.1", "late"]
    expected = GradCAM(model, target_layer=model.late)(images, target=0)
    torch.testing.assert_close(cam(images, target=0), expected)


def test_target_layer_errors_list_the_candidates(images):
    model = LateRegistered()
    with pytest.raises(
        ValueError,
        match=r"'unused' \(Conv2d\) was not called in forward.*"
        r"\['blocks.0', 'blocks.1', 'late'",
    ):
        GradCAM(model, target_layer="unused")(images)
    with pytest.raises(ValueError, match=r"'head.2' \(Linear\) gave no node-level output.*late"):
        GradCAM(model, target_layer="head.2")(images)
    with pytest.raises(ValueError, match="no layer of Sequential produced feature maps"):
        GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)))(images)


def test_target_layer_by_name_and_close_names(gap_cnn, images):
    assert resolve_layer(gap_cnn, "features.0") is gap_cnn.features[0]
    with pytest.raises(ValueError, match=r"no layer named 'featurs.1'.*features\.1"):
        GradCAM(gap_cnn, target_layer="featurs.1")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(gap_cnn, target_layer=nn.Conv2d(1, 1, 1))
    with GradCAM(gap_cnn, target_layer="features.0") as cam:
        assert cam(images).shape == (3, 8, 8)
    assert repr(GradCAM(gap_cnn)) == "GradCAM(target_layer='features')"


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


def test_class_index_out_of_range(gap_cnn, images):
    with (
        CAM(gap_cnn) as cam,
        pytest.raises(ValueError, match="class index out of range.*3 outputs"),
    ):
        cam(images, target=3)
    with GradCAM(gap_cnn) as cam, pytest.raises(ValueError, match="one class index per sample"):
        cam(images, target=[0, 1])
    with pytest.raises(ValueError, match=r"\[B, C, H, W\] or a PyG Data/Batch"):
        GradCAM(gap_cnn)(images[0])


def test_classifier_output_target():
    output = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(ClassifierOutputTarget(1)(output), torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(ClassifierOutputTarget([1, 0])(output), torch.tensor([2.0, 3.0]))
