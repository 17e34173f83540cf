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
