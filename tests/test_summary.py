"""Tests of gconv.summary: output-size formulas against real layers, and the summary table."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gconv.models import CNN, MLP, lecture_cnn
from gconv.summary import conv_output_size, pool_output_size, summary

sizes = st.integers(1, 24)
kernels = st.integers(1, 5)
strides = st.integers(1, 3)
paddings = st.integers(0, 3)
dilations = st.integers(1, 3)


@settings(max_examples=150, deadline=None)
@given(sizes, sizes, kernels, kernels, strides, paddings, dilations)
def test_conv_output_size_matches_conv2d(height, width, k_h, k_w, stride, padding, dilation):
    conv = nn.Conv2d(1, 1, (k_h, k_w), stride=stride, padding=padding, dilation=dilation)
    x = torch.zeros(1, 1, height, width)
    try:
        expected = tuple(conv(x).shape[2:])
    except RuntimeError:  # PyTorch rejects an input smaller than the dilated kernel
        with pytest.raises(ValueError, match="output would be empty"):
            conv_output_size((height, width), (k_h, k_w), stride, padding, dilation)
        return
    assert conv_output_size((height, width), (k_h, k_w), stride, padding, dilation) == expected
    assert conv_output_size(height, k_h, stride, padding, dilation) == expected[0]


@settings(max_examples=150, deadline=None)
@given(sizes, kernels, strides, paddings, dilations, st.booleans())
def test_pool_output_size_matches_maxpool_and_avgpool(
    size, kernel, stride, padding, dilation, ceil
):
    if padding > kernel // 2:
        with pytest.raises(ValueError, match="at most half the kernel size"):
            pool_output_size(size, kernel, stride, padding, dilation, ceil)
        with pytest.raises(RuntimeError):
            nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil)(
                torch.zeros(1, 1, size, size)
            )
        return
    x = torch.zeros(1, 1, size, size)
    max_pool = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil)
    try:
        expected = max_pool(x).shape[-1]
    except RuntimeError:
        with pytest.raises(ValueError, match="output would be empty"):
            pool_output_size(size, kernel, stride, padding, dilation, ceil)
        return
    assert pool_output_size(size, kernel, stride, padding, dilation, ceil) == expected
    # Average pooling shares the formula (without dilation).
    avg_pool = nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil)
    assert pool_output_size((size, size), kernel, stride, padding, 1, ceil) == tuple(
        avg_pool(x).shape[2:]
    )


def test_output_size_worked_examples_and_defaults():
    assert conv_output_size(28, 3, padding=1) == 28
    assert conv_output_size(32, 5) == 28  # LeNet: floor((32 - 4 - 1) / 1) + 1
    assert conv_output_size((28, 20), 5, stride=2) == (12, 8)
    assert conv_output_size(28, (3, 5), padding="same") == (28, 28)
    assert conv_output_size(10, 3, padding="valid") == 8
    assert pool_output_size(7, 2) == 3  # stride defaults to the kernel size
    assert pool_output_size(7, 2, ceil_mode=True) == 4
    # ceil_mode would start a last window in the right padding: PyTorch drops it.
    assert pool_output_size(5, 2, stride=2, padding=1, ceil_mode=True) == 3


def test_output_size_errors():
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        conv_output_size(28, 3, stride=2, padding="same")
    with pytest.raises(
        ValueError, match="padding='full'; expected an int, a tuple, 'same' or 'valid'"
    ):
        conv_output_size(28, 3, padding="full")
    with pytest.raises(ValueError, match="tuple arguments of one length"):
        conv_output_size((28, 28), (3, 3, 3))
    with pytest.raises(
        ValueError, match="stride, dilation >= 1 and padding >= 0, got n=28, kernel_size=0"
    ):
        conv_output_size(28, 0)
    with pytest.raises(TypeError, match=r"kernel_size as int or tuple of ints, got \(3.0,\)"):
        conv_output_size(28, (3.0,))


def test_summary_totals_and_shapes_match_real_model(capsys):
    model = CNN(channels=(8, 16), head_hidden=(32,), batch_norm=True)
    model.features[0].conv.weight.requires_grad_(False)
    result = summary(model, (1, 28, 28), batch_size=2)
    printed = capsys.readouterr().out
    assert printed.strip() == str(result)

    assert result.total_params == sum(p.numel() for p in model.parameters())
    frozen = model.features[0].conv.weight.numel()
    assert result.trainable_params == result.total_params - frozen
    assert result.non_trainable_params == frozen
    assert result.param_size_mb == pytest.approx(result.total_params * 4 / 1e6)
    assert sum(row.num_params for row in result.rows) == result.total_params

    # Every listed shape is the shape the module really produces.
    x = torch.zeros(2, 1, 28, 28)
    real_shapes = {}

    def record(name, output):
        real_shapes[name] = list(output.shape)  # returning None keeps the output unchanged

    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: record(name, o))
        for name, module in model.named_modules()
        if name
    ]
    model.eval()
    model(x)
    for hook in hooks:
        hook.remove()
    assert {row.name: row.output_shape for row in result.rows} == real_shapes
    assert result.output_shape == [2, 10]
    assert result.input_shapes == [[2, 1, 28, 28]]

    by_name = {row.name: row for row in result.rows}
    assert by_name["features.0.conv"].trainable is False
    assert by_name["features.0.bn"].trainable is True
    assert by_name["head.1"].num_params == 16 * 7 * 7 * 32 + 32
    assert by_name["features"].is_container and by_name["features"].num_params == 0


def test_summary_table_text_for_lecture_cnn():
    text = str(summary(lecture_cnn(), (1, 28, 28), print_table=False))
    assert "features.1.conv (Conv2d)" in text
    assert "[1, 64, 14, 14]" in text and "18,496" in text
    assert "Total params: 421,642" in text
    assert "Trainable params: 421,642" in text
    assert "Non-trainable params: 0" in text
    assert "Params size (MB): 1.69" in text


def test_summary_depth_folds_children_and_keeps_totals():
    model = CNN(channels=(4, 8), batch_norm=True)
    shallow = summary(model, (1, 28, 28), depth=1, print_table=False)
    assert [row.name for row in shallow.rows] == ["features", "head"]
    assert shallow.rows[0].num_params == sum(p.numel() for p in model.features.parameters())
    assert sum(row.num_params for row in shallow.rows) == shallow.total_params


def test_summary_restores_modes_and_rng_and_counts_shared_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.Dropout(0.5), shared, nn.BatchNorm1d(4))
    model.train()
    model[3].eval()
    state = torch.get_rng_state()
    result = summary(model, (4,), batch_size=3, print_table=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training and model[1].training and not model[3].training
    assert result.total_params == 20 + 8
    assert sum(row.num_params for row in result.rows) == 28
    # named_modules() lists the shared Linear once, like its parameters.
    assert [row.name for row in result.rows] == ["0", "1", "3"]

    # Weight tying between two different modules: the tied weight sits on the first row only.
    encoder, decoder = nn.Linear(4, 4), nn.Linear(4, 4)
    decoder.weight = encoder.weight
    tied = summary(nn.Sequential(encoder, decoder), (4,), print_table=False)
    assert [row.num_params for row in tied.rows] == [16 + 4, 4]
    assert tied.total_params == 24


def test_summary_input_data_tuple_and_dict():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.left = nn.Linear(3, 2)
            self.right = nn.Linear(5, 2)

        def forward(self, a, b):
            return self.left(a) + self.right(b)

    model = TwoInputs()
    by_position = summary(
        model, input_data=(torch.zeros(4, 3), torch.zeros(4, 5)), print_table=False
    )
    by_keyword = summary(
        model, input_data={"a": torch.zeros(4, 3), "b": torch.zeros(4, 5)}, print_table=False
    )
    by_shapes = summary(model, [(3,), (5,)], batch_size=4, print_table=False)
    for result in (by_position, by_keyword, by_shapes):
        assert result.output_shape == [4, 2]
        assert result.input_shapes == [[4, 3], [4, 5]]
        assert result.total_params == 8 + 12


def test_summary_mlp_and_errors():
    result = summary(MLP((1, 28, 28), hidden=(16,)), (1, 28, 28), print_table=False)
    assert result.total_params == 784 * 16 + 16 + 16 * 10 + 10
    with pytest.raises(ValueError, match="exactly one of input_shape or input_data"):
        summary(nn.Linear(2, 2))
    with pytest.raises(
        ValueError, match=r"without the batch dimension, e.g. \(1, 28, 28\), got \(0, 28\)"
    ):
        summary(nn.Linear(2, 2), (0, 28))
    with pytest.raises(ValueError, match="depth >= 1, got 0"):
        summary(nn.Linear(2, 2), (2,), depth=0)
    # A failing forward leaves no hooks behind and passes the model's own error through.
    model = CNN(channels=(4,))
    with pytest.raises(ValueError, match=r"expected input of shape \[B, 1, 28, 28\]"):
        summary(model, (1, 20, 20), print_table=False)
    assert all(not module._forward_hooks for module in model.modules())
