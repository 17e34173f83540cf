"""The hook on the target layer: keeps the node-level tensor in the autograd graph, lets the model
go on with a clone (in-place operations after the layer cannot change it), and goes away on
release()."""

import torch
from torch import nn

from gconv.explain import GradCAM
from gconv.explain.hooks import ActivationsAndGradients, NodeActivations


def test_activations_kept_in_the_graph_and_released(gap_cnn, images):
    layer = gap_cnn.features[0]
    hooks = ActivationsAndGradients(layer, images)
    output = gap_cnn(images)
    assert hooks.calls == 1 and hooks.activations.shape == (3, 4, 4, 4)
    (grad,) = torch.autograd.grad(output[:, 0].sum(), hooks.activations)
    assert grad.shape == hooks.activations.shape
    hooks.release()
    assert not layer._forward_hooks
    torch.testing.assert_close(hooks.activations, layer(images))  # readable after release
    on_input = ActivationsAndGradients(gap_cnn.head, images, use_input=True)
    gap_cnn(images)
    on_input.release()
    torch.testing.assert_close(on_input.activations, gap_cnn.features(images))
    assert not gap_cnn.head._forward_pre_hooks
    not_node_level = ActivationsAndGradients(gap_cnn.head[2], images)  # [B, K]: kept nothing
    gap_cnn(images)
    not_node_level.release()
    assert not_node_level.calls == 1 and not_node_level.activations is None


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


def test_node_activations_sum_and_mean_per_graph():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    nodes = NodeActivations(values, None, torch.tensor([0, 0, 1]), 3, None, None, None)
    torch.testing.assert_close(nodes.node_sum(values), torch.tensor([[4.0, 6.0], [5, 6], [0, 0]]))
    # an empty graph has mean 0, not NaN
    torch.testing.assert_close(nodes.node_mean(values), torch.tensor([[2.0, 3.0], [5, 6], [0, 0]]))
