"""TransferModel: torchvision backbones with a GAP + Linear head, local weights only, CAM-ready."""

import pytest
import torch
import torchvision
from torch import nn

from gconv.explain import CAM, GradCAM
from gconv.models.transfer import TransferModel


def test_resnet_loads_local_weights_and_freezes(resnet_weights):
    model = TransferModel("resnet18", num_classes=5, weights_path=resnet_weights)
    reference = torch.load(resnet_weights, weights_only=True)
    torch.testing.assert_close(
        model.features.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"]
    )
    torch.testing.assert_close(model.features.bn1.running_var, reference["bn1.running_var"])
    assert not any(p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert model.head.training and not model.features.training  # frozen BN statistics
    assert "arch=resnet18, num_classes=5, mode=feature_extraction" in str(model)


def test_features_equal_torchvision_resnet(resnet_weights):
    model = TransferModel("resnet18", num_classes=5, weights_path=resnet_weights).eval()
    resnet = torchvision.models.resnet18(weights=None)
    resnet.load_state_dict(torch.load(resnet_weights, weights_only=True))
    resnet.eval()
    x = torch.rand(2, 3, 64, 64)
    pooled = nn.Sequential(*list(resnet.children())[:-1])(x).flatten(1)
    torch.testing.assert_close(model.head[:2](model.features(x)), pooled)
    assert model(x).shape == (2, 5)


def test_fine_tuning_trains_everything():
    model = TransferModel("vgg11", num_classes=3, mode="fine_tuning")
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    assert model.features.training
    out = model(torch.rand(2, 3, 32, 32))
    out.sum().backward()
    assert model.features[0].weight.grad is not None


def test_vgg_backbone_from_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    reference = TransferModel("vgg11", num_classes=2)
    # a torchvision VGG file holds "features.*" and "classifier.*": only the former is needed
    state = {f"features.{k}": v for k, v in reference.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "vgg11.pth")
    model = TransferModel("vgg11", num_classes=2, weights_path=tmp_path / "vgg11.pth")
    torch.testing.assert_close(model.features[-3].weight, reference.features[-3].weight)


def test_cam_on_transfer_model(resnet_weights):
    model = TransferModel("resnet18", num_classes=4, weights_path=resnet_weights)
    x = torch.rand(2, 3, 64, 64)
    with CAM(model) as cam:
        raw = cam(x, target=1, raw=True)
        maps = cam(x, target=1)
    features = model.features.eval()(x)  # [2, 512, 2, 2]
    expected = torch.einsum("c,bchw->bhw", model.head[-1].weight[1], features)
    torch.testing.assert_close(raw, expected)
    assert maps.shape == (2, 64, 64)
    with GradCAM(model) as grad_cam:  # gradients flow through the frozen backbone
        assert grad_cam.target_layer is model.features
        assert grad_cam(x).shape == (2, 64, 64)


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd\.pth.*weights_path"):
        TransferModel("resnet18", weights_path=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="arch must be one of"):
        TransferModel("resnet50")
    with pytest.raises(ValueError, match="mode must be one of"):
        TransferModel(mode="frozen")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="not a torchvision vgg16 state dict"):
        TransferModel("vgg16", weights_path=tmp_path / "wrong.pth")


def _weights_file(kind: str, folder, resnet_weights):
    """A ``--weights`` path that is not a resnet18 state-dict file, of the given kind."""
    path = folder / f"{kind}.pth"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":  # an interrupted download
        data = resnet_weights.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "pickled_model":  # torch.save(model), not torch.save(model.state_dict())
        torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)), path)
    elif kind == "other_network":
        torch.save(TransferModel("vgg11").features.state_dict(), path)
    elif kind == "other_shapes":  # a resnet18 for one-channel images
        state = torch.load(resnet_weights, weights_only=True)
        state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
        torch.save(state, path)
    return path


WEIGHTS_ERRORS = {
    "directory": (
        FileNotFoundError,
        r"is a directory, not a weights file: pass the torchvision "
        r"resnet18 state-dict file itself, e.g. '.*directory.pth/resnet18-f37072fd.pth'",
    ),
    "empty": (ValueError, r"'.*empty.pth' is empty \(0 bytes\): fetch it again \(`curl -L -o"),
    "truncated": (
        ValueError,
        r"'.*truncated.pth' cannot be read \(RuntimeError: .*\); "
        r"truncated or corrupted\? fetch it again",
    ),
    "pickled_model": (
        ValueError,
        r"'.*pickled_model.pth' holds a pickled "
        r"torch.nn.modules.container.Sequential .*not a state dict.*"
        r"torch.save\(torch.load\('.*', weights_only=False\).state_dict\(\)",
    ),
    "other_network": (
        ValueError,
        r"not a torchvision resnet18 state dict: missing 120 backbone "
        r"entries such as 'conv1.weight', 'bn1.weight', 'bn1.bias' and 117 more; "
        r"it has 16 entries resnet18 does not, such as '0.weight'",
    ),
    "other_shapes": (
        ValueError,
        r"not a torchvision resnet18 state dict: 1 entries have other "
        r"shapes, such as 'conv1.weight' \[64, 1, 7, 7\] where resnet18 has "
        r"\[64, 3, 7, 7\]",
    ),
}


@pytest.mark.parametrize("kind", list(WEIGHTS_ERRORS))
def test_a_weights_file_that_is_not_a_state_dict_is_one_line_naming_it(
    kind, tmp_path, resnet_weights
):
    path = _weights_file(kind, tmp_path, resnet_weights)
    error, message = WEIGHTS_ERRORS[kind]
    with pytest.raises(error, match=message) as raised:
        TransferModel("resnet18", weights_path=path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)
