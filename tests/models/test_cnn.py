"""Tests of gconv.models.cnn: CNN heads and shapes, hand-computed parameter counts, init, errors."""

import pytest
import torch
from torch import nn

from gconv.models.cnn import CNN, MLP, BasicBlock, init_weights, lecture_cnn


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("head", ["flatten", "gap"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_forward_shapes(head, batch_norm):
    model = CNN(
        in_shape=(3, 20, 12), num_classes=7, channels=(4, 8), head=head, batch_norm=batch_norm
    )
    out = model(torch.rand(5, 3, 20, 12))
    assert out.shape == (5, 7)
    assert model.feature_shape == (8, 5, 3)
    assert model.features(torch.rand(2, 3, 20, 12)).shape == (2, 8, 5, 3)


def test_param_count_small_config_by_hand():
    # conv 1->2 (3x3): 2*1*9 + 2 = 20; conv 2->3: 3*2*9 + 3 = 57; 8x8 -> 4x4 -> 2x2 feature map;
    # Linear(3*2*2 = 12, 5): 65; Linear(5, 4): 24.
    model = CNN(in_shape=(1, 8, 8), num_classes=4, channels=(2, 3), head_hidden=(5,))
    assert num_params(model) == 20 + 57 + 65 + 24
    # With batch norm the convs lose their bias (2 + 3) and each BN adds 2 * channels (4 + 6).
    bn_model = CNN(
        in_shape=(1, 8, 8), num_classes=4, channels=(2, 3), head_hidden=(5,), batch_norm=True
    )
    assert num_params(bn_model) == 20 + 57 + 65 + 24 - 5 + 10
    # GAP head: one Linear(3, 4) = 16 whatever the hidden sizes.
    gap = CNN(in_shape=(1, 8, 8), num_classes=4, channels=(2, 3), head_hidden=(5,), head="gap")
    assert num_params(gap) == 20 + 57 + 16


def test_lecture_cnn_matches_keras_pytorch_mnist_layout():
    model = lecture_cnn()
    assert num_params(model) == 320 + 18_496 + 401_536 + 1_290 == 421_642
    assert [type(m) for m in model.head] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert model.head[1].in_features == 64 * 7 * 7
    assert num_params(lecture_cnn(num_classes=3)) == 421_642 - 7 * 129


def test_structure_follows_contract():
    model = CNN(channels=(8, 16), batch_norm=True, dropout=0.3, pool="avg")
    assert len(model.features) == 2
    block = model.features[0]
    assert list(dict(block.named_children())) == ["conv", "bn", "act", "pool"]
    assert block.conv.padding == (1, 1) and block.conv.bias is None
    assert isinstance(block.pool, nn.AvgPool2d)
    assert [type(m) for m in model.head] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]

    gap = CNN(channels=(8, 16), head="gap", dropout=0.5, pool=None)
    assert [type(m) for m in gap.head] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    assert gap.head[-1].in_features == 16
    assert list(dict(gap.features[0].named_children())) == ["conv", "act"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gap.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2


def test_repr_names_configuration():
    text = str(CNN(channels=(4,), head="gap"))
    assert text.startswith(
        "CNN(\n  in_shape=(1, 28, 28), num_classes=10, channels=(4,), head='gap'"
    )
    assert str(MLP(784, hidden=(32,))).startswith(
        "MLP(\n  in_shape=(784,), num_classes=10, hidden=(32,)"
    )


def test_gap_head_is_channel_mean_then_linear():
    torch.manual_seed(0)
    model = CNN(in_shape=(2, 8, 8), channels=(3,), head="gap", num_classes=4).eval()
    x = torch.rand(2, 2, 8, 8)
    maps = model.features(x)
    expected = maps.mean(dim=(2, 3)) @ model.head[-1].weight.T + model.head[-1].bias
    torch.testing.assert_close(model(x), expected)
    # The GAP head takes other image sizes too.
    assert model(torch.rand(1, 2, 16, 10)).shape == (1, 4)


@pytest.mark.parametrize("init", ["kaiming", "xavier"])
def test_init_applied_to_conv_and_linear(init):
    torch.manual_seed(0)
    model = CNN(in_shape=(1, 28, 28), channels=(64, 64), head_hidden=(256,), init=init)
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            receptive_field = layer.weight[0, 0].numel()  # k*k for convs, 1 for linears
            fan_in = layer.weight.shape[1] * receptive_field
            fan_out = layer.weight.shape[0] * receptive_field
            gain = 2**0.5
            expected_std = (
                gain / fan_in**0.5 if init == "kaiming" else gain * (2 / (fan_in + fan_out)) ** 0.5
            )
            assert layer.weight.std().item() == pytest.approx(expected_std, rel=0.15)
            assert torch.count_nonzero(layer.bias) == 0


def test_init_none_keeps_pytorch_default_nonzero_bias():
    torch.manual_seed(0)
    model = CNN(channels=(4,), init=None)
    assert torch.count_nonzero(model.features[0].conv.bias) > 0
    # PyTorch's default is kaiming_uniform(a=sqrt(5)): std = 1 / sqrt(3 * fan_in), not sqrt(2 / fan_in).
    assert model.head[1].weight.std().item() == pytest.approx((3 * 784) ** -0.5, rel=0.05)


def test_init_weights_rejects_unknown_scheme():
    with pytest.raises(
        ValueError, match="init='orthogonal'; expected one of 'kaiming', 'xavier', None"
    ):
        init_weights(nn.Linear(2, 2), "orthogonal")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "swish"}, "activation='swish'; expected one of 'relu', 'leaky_relu'"),
        ({"head": "mlp"}, "head='mlp'; expected one of 'flatten', 'gap'"),
        ({"pool": "median"}, "pool='median'; expected one of 'max', 'avg', None"),
        ({"init": "he"}, "init='he'; expected one of 'kaiming', 'xavier', None"),
        ({"in_shape": (28, 28)}, r"in_shape=\(C, H, W\)"),
        ({"dropout": 1.0}, r"dropout in \[0, 1\), got 1.0"),
        ({"channels": (32, 0)}, r"channels as at least one, all positive integers, got \(32, 0\)"),
        ({"channels": ()}, r"channels as at least one, all positive integers, got \(\)"),
        ({"head_hidden": (0,)}, r"head_hidden as positive integers, got \(0,\)"),
        (
            {"in_shape": (1, 4, 4), "channels": (2, 2, 2)},
            "block 2 would pool a 1x1 feature map to nothing",
        ),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CNN(**kwargs)


def test_wrong_input_shape_names_expected_and_got():
    model = CNN(in_shape=(1, 28, 28), channels=(4,))
    with pytest.raises(
        ValueError, match=r"expected input of shape \[B, 1, 28, 28\], got \[2, 3, 28, 28\]"
    ):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"got \[28, 28\]"):
        model(torch.rand(28, 28))
    with pytest.raises(ValueError, match=r"got \[1, 1, 32, 32\]"):
        model(torch.rand(1, 1, 32, 32))
    gap = CNN(in_shape=(3, 28, 28), channels=(4,), head="gap")
    with pytest.raises(
        ValueError, match=r"expected input of shape \[B, 3, H, W\], got \[1, 1, 28, 28\]"
    ):
        gap(torch.rand(1, 1, 28, 28))


def test_even_kernel_grows_map_and_head_matches():
    model = CNN(in_shape=(1, 9, 9), channels=(2, 2), kernel_size=2, num_classes=3)
    # 9 -> conv(k=2, p=1) 10 -> pool 5 -> conv 6 -> pool 3
    assert model.feature_shape == (2, 3, 3)
    assert model(torch.rand(2, 1, 9, 9)).shape == (2, 3)
    assert CNN(in_shape=(1, 8, 8), channels=(2,), head_hidden=4).head_hidden == (4,)
    assert CNN(in_shape=(1, 8, 8), channels=(2,), head_hidden=()).head[1].in_features == 2 * 4 * 4


def test_mlp_flattens_and_counts():
    model = MLP((1, 28, 28), num_classes=10, hidden=(256, 128))
    assert num_params(model) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert MLP(784)(torch.rand(3, 784)).shape == (3, 10)
    bn = MLP(10, num_classes=2, hidden=(4,), batch_norm=True, dropout=0.5, activation="tanh")
    assert [type(m) for m in bn.layers] == [
        nn.Flatten,
        nn.Linear,
        nn.BatchNorm1d,
        nn.Tanh,
        nn.Dropout,
        nn.Linear,
    ]
    with pytest.raises(
        ValueError, match=r"expected input of shape \[B, 1, 28, 28\] \(784 features"
    ):
        model(torch.rand(3, 1, 28, 27))
    with pytest.raises(ValueError, match="activation='relu6'"):
        MLP(10, activation="relu6")


def test_cnn_learns_tiny_task_above_chance():
    # Two classes: a bright square top-left vs bottom-right, on noise. A few Adam steps suffice.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=generator) * 0.3
    y = torch.arange(64) % 2
    x[y == 0, :, :3, :3] += 1.0
    x[y == 1, :, 5:, 5:] += 1.0
    torch.manual_seed(0)
    model = CNN(in_shape=(1, 8, 8), num_classes=2, channels=(4,), head="gap", batch_norm=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.9


def test_residual_cnn_blocks_projections_and_counts():
    model = CNN(in_shape=(1, 8, 8), num_classes=4, channels=(2, 3), residual=True, head="gap")
    assert len(model.features) == 2
    first, second = model.features[0].block, model.features[1].block
    assert list(dict(model.features[0].named_children())) == ["block", "pool"]
    assert isinstance(first, BasicBlock) and first.bn1 is None
    # 1x1 projections where the channel count changes (1 -> 2, 2 -> 3), each with a bias (no BN)
    assert first.shortcut[0].kernel_size == (1, 1) and second.shortcut[0].in_channels == 2
    # block 1: conv 1->2 (20) + conv 2->2 (38) + 1x1 1->2 (4); block 2: 57 + 84 + 9; head 16
    assert num_params(model) == 20 + 38 + 4 + 57 + 84 + 9 + 16
    same = CNN(in_shape=(1, 8, 8), channels=(2, 2), blocks=1, residual=True, pool=None)
    assert isinstance(same.features[1].block.shortcut, nn.Identity)
    assert "residual=True" in str(model)


def test_basic_block_is_relu_of_branch_plus_shortcut():
    torch.manual_seed(0)
    block = BasicBlock(2, 2, batch_norm=False).eval()
    x = torch.randn(3, 2, 5, 5)
    branch = block.conv2(torch.relu(block.conv1(x)))
    torch.testing.assert_close(block(x), torch.relu(branch + x))
    projected = BasicBlock(2, 4, batch_norm=True).eval()
    assert projected(x).shape == (3, 4, 5, 5)
    assert str(projected).startswith("BasicBlock(\n  2, 4, kernel_size=3, shortcut=1x1 projection")
    with pytest.raises(ValueError, match="odd kernel_size"):
        BasicBlock(2, 2, kernel_size=2)


def test_blocks_add_depth_at_a_fixed_resolution():
    plain = CNN(in_shape=(1, 8, 8), channels=(4, 8), blocks=3, head="gap")
    assert len(plain.features) == 6
    assert [hasattr(block, "pool") for block in plain.features] == [False, False, True] * 2
    assert plain.feature_shape == (8, 2, 2)
    assert plain(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="blocks >= 1"):
        CNN(blocks=0)
    with pytest.raises(ValueError, match="residual=True needs an odd kernel_size"):
        CNN(kernel_size=4, residual=True)


def test_residual_cnn_learns_tiny_task_above_chance():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 8, 8)
    labels = (images[:, 0, :4].mean((1, 2)) > images[:, 0, 4:].mean((1, 2))).long()
    model = CNN(
        in_shape=(1, 8, 8),
        num_classes=2,
        channels=(4, 8),
        blocks=2,
        residual=True,
        batch_norm=True,
        head="gap",
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert (model(images).argmax(1) == labels).float().mean() > 0.85
