"""Grad-CAM / Grad-CAM++ / Score-CAM: the pytorch-grad-cam formulas, reimplemented here in numpy
from its base_cam.py / grad_cam.py / grad_cam_plusplus.py / score_cam.py, the same formulas per
graph on node embeddings, and the CAM identity."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gconv.explain.cam import CAM, GradCAM, GradCAMPlusPlus, ScoreCAM
from gconv.explain.core import normalize_maps


def _reference_activations_and_grads(model, images, layer, category):
    saved = {}

    def hook(module, inputs, output):
        saved["a"] = output
        output.register_hook(lambda g: saved.__setitem__("g", g))

    handle = layer.register_forward_hook(hook)
    out = model(images)
    out[torch.arange(len(images)), category].sum().backward()
    handle.remove()
    return saved["a"].detach().numpy(), saved["g"].numpy()


def _reference_scale(cam, size):
    # pytorch-grad-cam scale_cam_image: shift to 0, divide by (1e-7 + max), then resize
    # (cv2 INTER_LINEAR == torch bilinear with align_corners=False for upsampling)
    cam = cam - cam.min(axis=(1, 2), keepdims=True)
    cam = cam / (1e-7 + cam.max(axis=(1, 2), keepdims=True))
    if size is not None:
        cam = F.interpolate(torch.from_numpy(cam)[:, None], size=size, mode="bilinear")[:, 0]
        cam = cam.numpy()
    return cam


def _reference_map(weights, activations, size):
    cam = np.maximum((weights[:, :, None, None] * activations).sum(axis=1), 0)
    return _reference_scale(_reference_scale(cam, size), None)  # aggregate_multi_layers rescales


def test_grad_cam_matches_pytorch_grad_cam_formula(gap_cnn, images):
    category = torch.tensor([2, 0, 1])
    acts, grads = _reference_activations_and_grads(gap_cnn, images, gap_cnn.features[0], category)
    expected = _reference_map(grads.mean(axis=(2, 3)), acts, (8, 8))
    with GradCAM(gap_cnn, target_layer="features.0") as cam:
        maps = cam(images, target=category)
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-5)


def test_grad_cam_plus_plus_matches_pytorch_grad_cam_formula(gap_cnn, images):
    category = torch.tensor([1, 1, 0])
    acts, grads = _reference_activations_and_grads(gap_cnn, images, gap_cnn.features[1], category)
    grads_2, grads_3 = grads**2, grads**3
    aij = grads_2 / (2 * grads_2 + acts.sum(axis=(2, 3))[:, :, None, None] * grads_3 + 1e-6)
    aij = np.where(grads != 0, aij, 0)
    weights = (np.maximum(grads, 0) * aij).sum(axis=(2, 3))
    expected = _reference_map(weights, acts, (8, 8))
    with GradCAMPlusPlus(gap_cnn) as cam:
        maps = cam(images, target=category)
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-5)


def test_grad_cam_on_gap_linear_is_cam_up_to_scale(gap_cnn, images):
    # dy^c/dA_k(i,j) = w_k^c / (hw), so Grad-CAM's raw map is CAM's divided by hw = 16
    with CAM(gap_cnn) as cam:
        cam_raw = cam(images, target=1, raw=True)
    with GradCAM(gap_cnn) as grad_cam:
        grad_raw = grad_cam(images, target=1, raw=True)
        grad_maps = grad_cam(images, target=1)
    torch.testing.assert_close(grad_raw * 16, cam_raw)
    relu_cam = F.interpolate(cam_raw.clamp_min(0)[:, None], size=(8, 8), mode="bilinear")[:, 0]
    torch.testing.assert_close(grad_maps, normalize_maps(relu_cam))


def test_score_cam_matches_reference(gap_cnn, images):
    category = torch.tensor([0, 1, 2])
    gap_cnn.eval()
    with torch.no_grad():
        acts = gap_cnn.features(images)
        up = F.interpolate(acts, size=(8, 8), mode="bilinear", align_corners=True)
        flat = up.flatten(2)
        low, high = flat.min(-1).values[..., None, None], flat.max(-1).values[..., None, None]
        masks = (up - low) / (high - low + 1e-8)
        scores = torch.stack(
            [gap_cnn(images[b][None] * masks[b][:, None])[:, category[b]] for b in range(3)]
        )
        expected = _reference_map(scores.softmax(-1).numpy(), acts.numpy(), (8, 8))
    with ScoreCAM(gap_cnn, batch_size=4) as cam:
        maps = cam(images, target=category)
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-5)


def test_grad_cam_through_frozen_backbone(gap_cnn, images):
    for parameter in gap_cnn.parameters():
        parameter.requires_grad_(False)
    with GradCAM(gap_cnn) as cam:
        maps = cam(images)
    assert maps.shape == (3, 8, 8) and torch.isfinite(maps).all()
    assert maps.amax() == pytest.approx(1.0, abs=1e-5)
    assert all(p.grad is None for p in gap_cnn.parameters())


def test_callable_target(gap_cnn, images):
    def difference(output):  # explain "class 0 rather than class 1"
        return output[:, 0] - output[:, 1]

    with GradCAM(gap_cnn) as cam:
        raw = cam(images, target=difference, raw=True)
        raw0 = cam(images, target=0, raw=True)
        raw1 = cam(images, target=1, raw=True)
    torch.testing.assert_close(raw, raw0 - raw1)


# ---------------------------------------------------------------------------------------------
# graphs: the same formulas, per graph over its nodes
# ---------------------------------------------------------------------------------------------
def _readout_input_and_grad(model, data, category):
    """Reference: the readout's input h and d y^c / d h, by a hand-made hook."""
    saved = {}

    def hook(module, args):
        saved["h"] = args[0]

    handle = model.readout.register_forward_pre_hook(hook)
    output = model(data)
    handle.remove()
    (grad,) = torch.autograd.grad(output[torch.arange(2), category].sum(), saved["h"])
    return saved["h"].detach(), grad


def test_grad_cam_on_graphs_is_the_per_graph_mean_gradient_formula(gcn, graphs):
    model, data, category = gcn, graphs, torch.tensor([0, 3])
    h, grad = _readout_input_and_grad(model, data, category)
    sizes = torch.tensor([4.0, 3.0])
    alpha = torch.zeros(2, 5).index_add_(0, data.batch, grad) / sizes[:, None]
    expected = (h * alpha[data.batch]).sum(-1)
    cam = GradCAM(model)
    raw = cam(data, target=category, raw=True)
    assert cam.target_layer is model.readout and cam.use_input
    torch.testing.assert_close(raw.node_mask[:, 0], expected)
    # Grad-CAM++: a = g^2 / (2 g^2 + sum_m h_m g^3), alpha = sum_n a relu(g), per graph
    sums = torch.zeros(2, 5).index_add_(0, data.batch, h)[data.batch]
    a = grad**2 / (2 * grad**2 + sums * grad**3 + 1e-6)
    a = torch.where(grad != 0, a, torch.zeros_like(a))
    alpha_pp = torch.zeros(2, 5).index_add_(0, data.batch, grad.clamp_min(0) * a)
    expected_pp = (h * alpha_pp[data.batch]).sum(-1)
    raw_pp = GradCAMPlusPlus(model)(data, target=category, raw=True)
    torch.testing.assert_close(raw_pp.node_mask[:, 0], expected_pp)


def test_grad_cam_at_readout_is_graph_cam_over_graph_size(gcn, graphs):
    cam = CAM(gcn)(graphs, raw=True).node_mask
    grad = GradCAM(gcn)(graphs, raw=True).node_mask
    sizes = torch.tensor([4.0] * 4 + [3.0] * 3)[:, None]
    torch.testing.assert_close(grad, cam / sizes)


def test_score_cam_on_graphs_masks_node_features_per_channel(gcn, graphs):
    # Score-CAM per graph: channel k of the embeddings, min-max scaled inside each graph, scales
    # each node's input features; the softmax of the masked scores over channels is the weight
    category = torch.tensor([2, 1])
    gcn.eval()
    h, _ = _readout_input_and_grad(gcn, graphs, category)
    with torch.no_grad():
        index = graphs.batch
        masks = torch.empty_like(h)
        for g in range(2):
            values = h[index == g]
            low, high = values.min(dim=0).values, values.max(dim=0).values
            masks[index == g] = (values - low) / (high - low + 1e-8)
        scores = []
        for k in range(h.size(1)):
            masked = graphs.clone()
            masked.x = graphs.x * masks[:, k : k + 1]
            scores.append(gcn(masked)[torch.arange(2), category])
        weights = torch.stack(scores, dim=-1).softmax(dim=-1)
        expected = (h * weights[index]).sum(-1)
    raw = ScoreCAM(gcn)(graphs, target=category, raw=True)
    torch.testing.assert_close(raw.node_mask[:, 0], expected)
