"""Tests for gconv.models.convert: CNN -> grid GNN (cnn_to_grid_gnn) and back (grid_gnn_to_cnn)."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from gconv.data.grid import images_to_nodes
from gconv.layers import GridConv, GridGCNConv, MeanMaxReadout, MeanReadout
from gconv.models.cnn import CNN, ConvNet
from gconv.models.convert import cnn_to_grid_gnn, grid_gnn_to_cnn
from gconv.models.grid import GridGCN, GridGNN, GridNet, GridResidualBlock


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def trained_statistics(cnn: nn.Module, in_shape=(1, 12, 12)) -> nn.Module:
    """Run a few training batches so batch-norm running statistics are not the identity."""
    cnn.train()
    with torch.no_grad():
        for seed in range(3):
            cnn(torch.rand(8, *in_shape, generator=torch.Generator().manual_seed(seed)))
    return cnn.eval()


@pytest.mark.parametrize(
    "config",
    [
        dict(head="flatten"),
        dict(head="gap"),
        dict(head="gap", batch_norm=True, dropout=0.3, pool="avg", activation="elu"),
        dict(head="flatten", batch_norm=True, dropout=0.2, head_hidden=(16, 8), channels=(4, 6, 8)),
        dict(head="gap", pool=None, kernel_size=5, channels=(3,)),
    ],
)
def test_cnn_to_grid_gnn_gives_the_cnn_outputs(config):
    torch.manual_seed(0)
    config = {"channels": (4, 6), **config}
    cnn = trained_statistics(CNN(in_shape=(1, 12, 12), num_classes=5, **config))
    grid_model = cnn_to_grid_gnn(cnn)
    images = torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(9))
    expected = cnn(images)
    torch.testing.assert_close(grid_model(images), expected, rtol=1e-4, atol=1e-5)
    # node features in, same answer; message passing instead of the conv2d fast path, same answer
    torch.testing.assert_close(grid_model(images_to_nodes(images)), expected, rtol=1e-4, atol=1e-5)
    grid_model.fast = False
    torch.testing.assert_close(grid_model(images), expected, rtol=1e-4, atol=1e-5)
    assert parameter_count(grid_model) == parameter_count(cnn)
    assert not grid_model.training
    if config["head"] == "gap":
        assert isinstance(grid_model.readout, MeanReadout)
        assert isinstance(grid_model.head, nn.Linear)  # CAM-ready
    else:
        assert isinstance(grid_model.readout, nn.Flatten)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (nn.Conv2d(1, 4, 3, stride=2, padding=1), r"cannot convert 0 \(Conv2d.*stride"),
        (nn.Dropout2d(0.1), r"cannot convert 0 \(Dropout2d.*no grid graph equivalent"),
        (nn.AdaptiveAvgPool2d(2), r"cannot convert 0 \(AdaptiveAvgPool2d.*output_size=1"),
        (nn.MaxPool2d(2, padding=1), r"cannot convert 0 \(MaxPool2d.*without\s+padding"),
    ],
)
def test_cnn_to_grid_gnn_names_unsupported_layers(layer, message):
    cnn = nn.Sequential(layer, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    cnn.in_shape = (1, 8, 8)
    with pytest.raises(ValueError, match=message):
        cnn_to_grid_gnn(cnn)


def test_cnn_to_grid_gnn_needs_in_shape_and_a_head():
    with pytest.raises(ValueError, match=r"needs the CNN's input shape as cnn.in_shape"):
        cnn_to_grid_gnn(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)))
    no_head = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    no_head.in_shape = (1, 8, 8)
    with pytest.raises(ValueError, match="ending in a global pool or Flatten followed by Linear"):
        cnn_to_grid_gnn(no_head)
    # an in_shape the CNN cannot take (3 channels into a 1-channel conv): refused now, not at
    # the converted model's first forward
    wrong_shape = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
    )
    wrong_shape.in_shape = (3, 8, 8)
    with pytest.raises(ValueError, match=r"forward fails on a probe input of shape \[2, 3, 8, 8\]"):
        cnn_to_grid_gnn(wrong_shape)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_cnn_to_grid_gnn_converts_residual_blocks(batch_norm):
    torch.manual_seed(0)
    cnn = CNN(
        in_shape=(1, 12, 12),
        num_classes=5,
        channels=(4, 6),
        blocks=2,
        residual=True,
        batch_norm=batch_norm,
        head="gap",
    )
    cnn = trained_statistics(cnn)
    grid_model = cnn_to_grid_gnn(cnn)
    assert isinstance(grid_model.features[0].block, GridResidualBlock)
    assert isinstance(grid_model.features[0].block.shortcut, nn.Sequential)  # 1 -> 4 channels
    assert isinstance(grid_model.features[1].block.shortcut, nn.Identity)  # 4 -> 4
    assert grid_model.features[2].block.shortcut[0].kernel_size == 1  # 4 -> 6: 1x1 projection
    images = torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(9))
    expected = cnn(images)
    torch.testing.assert_close(grid_model(images), expected, rtol=1e-4, atol=1e-5)
    grid_model.fast = False  # message passing, the 1x1 projection as a graph without edges
    torch.testing.assert_close(grid_model(images), expected, rtol=1e-4, atol=1e-5)
    # the feature parameters keep the CNN's names, so the state dicts line up
    cnn_features = {k for k in cnn.state_dict() if k.startswith("features.")}
    grid_features = {k for k in grid_model.state_dict() if k.startswith("features.")}
    assert cnn_features == grid_features


cnn_configs = st.fixed_dictionaries(
    {
        "channels": st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
        "kernel_size": st.sampled_from([1, 3, 5]),
        "head": st.sampled_from(["flatten", "gap"]),
        "head_hidden": st.lists(st.integers(1, 8), max_size=2).map(tuple),
        "batch_norm": st.booleans(),
        "dropout": st.sampled_from([0.0, 0.25]),
        "pool": st.sampled_from(["max", "avg", None]),
        "activation": st.sampled_from(["relu", "leaky_relu", "tanh"]),
        "blocks": st.integers(1, 2),
        "residual": st.booleans(),
        "in_shape": st.tuples(st.integers(1, 2), st.integers(5, 13), st.integers(5, 13)),
    }
)


@settings(max_examples=40, deadline=None)
@given(cnn_configs)
def test_grid_gnn_to_cnn_inverts_cnn_to_grid_gnn(config):
    torch.manual_seed(0)
    try:
        cnn = CNN(num_classes=3, **config)
    except ValueError:  # more pools than the image size allows: not a CNN
        assume(False)
    cnn = trained_statistics(cnn, config["in_shape"])
    grid_model = cnn_to_grid_gnn(cnn)
    rng = torch.random.get_rng_state()
    back = grid_gnn_to_cnn(grid_model)
    assert torch.equal(torch.random.get_rng_state(), rng)  # conversion draws no numbers
    assert isinstance(back, ConvNet) and back.in_shape == cnn.in_shape and not back.training
    # the same layers with the same names and the same values: CNN -> grid -> CNN is the identity
    expected_state, state = cnn.state_dict(), back.state_dict()
    assert list(state) == list(expected_state)
    for key, value in expected_state.items():
        assert torch.equal(state[key], value), key
    images = torch.rand(5, *config["in_shape"], generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(back(images), cnn(images), rtol=0, atol=0)
    # and once more to the grid: the ConvNet converts as the CNN did
    torch.testing.assert_close(cnn_to_grid_gnn(back)(images), grid_model(images))
    # the grid model itself, as message passing on the grid graphs, is that CNN too
    grid_model.fast = False
    torch.testing.assert_close(grid_model(images), cnn(images), rtol=1e-4, atol=1e-5)


def test_grid_gnn_comes_back_as_the_cnn_it_was_built_from():
    config = dict(in_shape=(1, 12, 12), num_classes=3, channels=(4, 6), head_hidden=(8,))
    torch.manual_seed(0)
    grid_model = GridGNN(batch_norm=True, **config)
    images = torch.rand(16, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(16) % 3
    optimizer = torch.optim.SGD(grid_model.parameters(), lr=0.1)
    for _ in range(3):  # trained on the grid: weights and batch-norm statistics move
        optimizer.zero_grad()
        nn.functional.cross_entropy(grid_model(images), labels).backward()
        optimizer.step()
    optimizer.zero_grad()
    cnn = grid_gnn_to_cnn(grid_model)
    assert type(cnn) is CNN and str(cnn) == str(CNN(batch_norm=True, **config))
    assert cnn.training
    # training mode: the same batch statistics, outputs and gradients
    out_grid, out_cnn = grid_model(images), cnn(images)
    torch.testing.assert_close(out_cnn, out_grid, rtol=1e-4, atol=1e-5)
    out_grid.square().sum().backward()
    out_cnn.square().sum().backward()
    grid_grads = dict(grid_model.named_parameters())
    first_linear = (
        "head.1.weight"  # the CNN head is Flatten, Linear, ...; the grid head Linear, ...
    )
    for name, parameter in cnn.named_parameters():
        if name.startswith("features."):
            torch.testing.assert_close(parameter.grad, grid_grads[name].grad, rtol=1e-4, atol=1e-5)
    assert cnn.get_parameter(first_linear).grad.abs().sum() > 0
    grid_model.eval(), cnn.eval()
    torch.testing.assert_close(cnn(images), grid_model(images), rtol=1e-4, atol=1e-5)
    # a GridGNN whose head was replaced comes back as a ConvNet of its actual layers
    grid_model.head = nn.Sequential(nn.Linear(6 * 9, 8), nn.ReLU(), nn.Linear(8, 2))
    assert type(grid_gnn_to_cnn(grid_model)) is ConvNet
    # the weights are copies: training one model leaves the other alone
    with torch.no_grad():
        cnn.features[0].conv.weight.add_(1.0)
    assert not torch.equal(cnn.features[0].conv.weight, grid_model.features[0].conv.weight)


def test_grid_gnn_to_cnn_names_what_has_no_cnn_equivalent():
    with pytest.raises(TypeError, match="expected a GridNet .* got GridGCN"):
        grid_gnn_to_cnn(GridGCN(num_layers=2))
    conv = GridConv(1, 4)
    isotropic = GridNet((1, 8, 8), nn.Sequential(GridGCNConv(1, 4)), MeanReadout(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"cannot convert features\.0 \(GridGCNConv.*no CNN equiv"):
        grid_gnn_to_cnn(isotropic)
    mean_max = GridNet((1, 8, 8), nn.Sequential(conv), MeanMaxReadout(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="cannot convert the readout MeanMaxReadout"):
        grid_gnn_to_cnn(mean_max)
    wrong_head = GridNet((1, 8, 8), nn.Sequential(conv), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(ValueError, match="first Linear takes 10 features, but the flattened 4 x 8"):
        grid_gnn_to_cnn(wrong_head)


# ---- cnn_to_grid_gnn checks itself: a CNN whose forward is more than its registered layers


class _Probed(nn.Module):
    """conv -> ReLU -> conv2 -> global mean -> Linear, registered in that order; subclasses
    change only ``forward``."""

    in_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, 3)

    def tail(self, x):
        return self.fc(self.flatten(self.gap(x)))

    def forward(self, x):
        return self.tail(self.conv2(self.act(self.conv(x))))


class _FunctionalPool(_Probed):
    def forward(self, x):
        return self.tail(self.conv2(nn.functional.max_pool2d(self.act(self.conv(x)), 2)))


class _FunctionalTanh(_Probed):
    def forward(self, x):
        return self.tail(torch.tanh(self.conv2(self.act(self.conv(x)))))


class _Skip(_Probed):
    def forward(self, x):
        h = self.act(self.conv(x))
        return self.tail(self.conv2(h) + h)


class _ConvTwice(_Probed):
    def forward(self, x):
        return self.tail(self.conv2(self.conv2(self.act(self.conv(x)))))


class _ConvNeverCalled(_Probed):
    def forward(self, x):
        return self.tail(self.act(self.conv(x)))


class _CalledOutOfOrder(nn.Module):
    """Registers tanh before the conv, calls it after."""

    in_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Tanh()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.gap(self.act(self.conv(x)))))


class _SwappedConvs(nn.Module):
    """Registers its second conv (4 -> 6 channels) before its first (1 -> 4): today the converted
    model fails at its first forward."""

    in_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.second = nn.Conv2d(4, 6, 3, padding=1)
        self.first = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))

    def forward(self, x):
        return self.head(self.second(self.first(x)))


class _DoubledConv(nn.Conv2d):
    """A Conv2d subclass whose forward is not a Conv2d's."""

    def forward(self, x):
        return 2 * super().forward(x)


def _with_doubled_conv() -> nn.Module:
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(inplace=True),  # overwrites the conv's output: not to be blamed on the conv
        _DoubledConv(4, 4, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    cnn.in_shape = (1, 8, 8)
    return cnn


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            _FunctionalPool,
            r"outputs differ by [\d.e-]+ on a probe input; the CNN's forward does something its "
            r"registered layers do not: between act \(ReLU\(\)\) and conv2 \(Conv2d.*\) it changes "
            r"the tensor: conv2 receives shape \[2, 4, 4, 4\] where act returned \[2, 4, 8, 8\]",
        ),
        (
            _FunctionalTanh,
            r"outputs differ by [\d.e-]+ .* between conv2 \(Conv2d.*\) and gap "
            r"\(AdaptiveAvgPool2d.*\) it changes the tensor: gap receives values that differ from "
            r"conv2's output by up to",
        ),
        (_Skip, r"between conv2 \(Conv2d.*\) and gap \(AdaptiveAvgPool2d.*\) it changes the tens"),
        (_ConvTwice, r"cannot convert conv2 \(Conv2d.*\): the CNN's forward calls it 2 times"),
        (_ConvNeverCalled, r"cannot convert conv2 \(Conv2d.*\): the CNN's forward never calls it"),
        (
            _CalledOutOfOrder,
            r"converts the layers in registration order, but the CNN's forward calls conv "
            r"\(Conv2d.*\) before act \(Tanh\(\)\), which is registered first",
        ),
        (_SwappedConvs, r"forward calls first \(Conv2d.*\) before second \(Conv2d.*\)"),
        (
            _with_doubled_conv,
            r"outputs differ by [\d.e-]+ on a probe input; the first layer that differs is 2 "
            r"\(_DoubledConv.*\): its output differs from its grid conversion's by",
        ),
    ],
    ids=["max_pool2d", "tanh", "skip", "twice", "never_called", "order", "swapped", "subclass"],
)
def test_cnn_to_grid_gnn_refuses_a_forward_that_its_layers_do_not_describe(make, message):
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=message):
        cnn_to_grid_gnn(make())


class _TorchvisionStyle(nn.Module):
    """torchvision's habits: in-place ReLUs, a functional flatten after the global pool, a model
    left in training mode with dropout in its head."""

    in_shape = (3, 12, 12)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(8, 4))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def test_cnn_to_grid_gnn_check_passes_real_models_and_leaves_them_alone():
    torch.manual_seed(0)
    cnn = _TorchvisionStyle()  # training mode
    state = {key: value.clone() for key, value in cnn.state_dict().items()}
    seen = []
    cnn.features[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    # the probe draws no global numbers: the state moves only by the GridConvs' initialisation
    torch.manual_seed(1)
    for layer in cnn.features:
        if isinstance(layer, nn.Conv2d):
            GridConv.from_conv2d(layer)
    rng = torch.random.get_rng_state()
    torch.manual_seed(1)
    grid_model = cnn_to_grid_gnn(cnn)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert cnn.training and grid_model.training  # the probe ran on eval-mode copies
    assert all(torch.equal(value, state[key]) for key, value in cnn.state_dict().items())
    assert seen == []  # nor did the CNN's own hooks see the probe
    images = torch.rand(3, 3, 12, 12)
    cnn.eval(), grid_model.eval()
    torch.testing.assert_close(grid_model(images), cnn(images), rtol=1e-4, atol=1e-5)
    # a plain nn.Sequential, in float64, as torchvision-like models are built
    sequential = nn.Sequential(
        nn.Conv2d(1, 4, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 2)
    ).double()
    sequential.in_shape = (1, 4, 4)
    converted = cnn_to_grid_gnn(sequential)
    assert next(converted.parameters()).dtype == torch.float64
