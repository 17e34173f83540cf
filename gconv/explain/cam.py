r"""The class-activation-map methods, each a :class:`~gconv.explain.core.BaseCAM` that overrides
only how it weighs the target layer's channels (torchcam's ``methods/activation.py`` and
``methods/gradient.py``, pytorch-grad-cam's ``grad_cam.py`` and siblings):

* :class:`CAM` — the weights of the linear head after a global mean / sum readout (no gradients);
* :class:`GradCAM` — the per-graph (per-image) mean gradient;
* :class:`GradCAMPlusPlus` — Grad-CAM++'s second- and third-order weighting;
* :class:`ScoreCAM` — the target scores of inputs masked by each channel.

Each works on images ``[B, C, H, W]`` (-> maps ``[B, H, W]``) and PyG batches (-> one PyG
``Explanation`` per graph) alike; the shared algorithm, targets, hooks and layer search live in
:mod:`.core`, :mod:`.targets`, :mod:`.hooks` and :mod:`.find_layers`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gconv._utils import deprecated_module_attributes, evaluating
from gconv.explain._utils import Inputs, check_finite, check_inputs, compute_dtype, first_tensor
from gconv.explain.core import BaseCAM, with_features
from gconv.explain.find_layers import resolve_named_layer
from gconv.explain.hooks import NodeActivations
from gconv.explain.targets import ClassifierOutputTarget, Target, TargetSpec, target_index

__all__ = ["CAM", "GradCAM", "GradCAMPlusPlus", "ScoreCAM", "normalize_per_channel"]

# names that lived here in 0.1 and moved to their own rooms (gconv.explain.cam.X warns until 0.3)
__getattr__ = deprecated_module_attributes(
    __name__,
    {
        "ActivationsAndGradients": ("gconv.explain.hooks", "ActivationsAndGradients"),
        "resolve_layer": ("gconv.explain.find_layers", "resolve_layer"),
        "find_target_layer": ("gconv.explain.find_layers", "find_target_layer"),
        "candidate_layers": ("gconv.explain.find_layers", "candidate_layers"),
        "normalize_maps": ("gconv.explain.core", "normalize_maps"),
        "normalize_per_graph": ("gconv.explain.core", "normalize_per_graph"),
        "graph_batch": ("gconv.explain.core", "graph_batch"),
        "graph_explanations": ("gconv.explain.core", "graph_explanations"),
        "as_target": ("gconv.explain.targets", "as_target"),
    },
)


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------
def _is_gap_readout(module: nn.Module, output: object, num_graphs: int) -> bool:
    from torch_geometric.nn.aggr import MeanAggregation, SumAggregation

    from gconv.layers.readout import MeanReadout, SumReadout

    if isinstance(module, nn.AdaptiveAvgPool2d):
        return module.output_size in (1, (1, 1))
    if isinstance(module, (MeanReadout, SumReadout, MeanAggregation, SumAggregation)):
        out = first_tensor(output)
        return out is not None and out.dim() == 2 and out.size(0) == num_graphs
    return False


# modules that may sit between a readout and the linear head without breaking CAM's identity
_PASS_THROUGH = (nn.Flatten, nn.Dropout, nn.Identity)


class CAM(BaseCAM):
    r"""Class activation mapping from `"Learning Deep Features for Discriminative Localization"
    <https://arxiv.org/abs/1512.04150>`_ (Zhou et al., 2016), for images and graphs.

    For a model ending in a global mean (or sum) readout and one linear layer, the class score
    is :math:`y^c = \frac{1}{|V_g|}\sum_{n \in g} \mathbf{w}^c \cdot \mathbf{h}_n + b^c` (for a
    sum readout without :math:`\frac{1}{|V_g|}`, for :class:`~gconv.layers.NormReadout` with
    :math:`\frac{1}{c}` in its place), and the map is

    .. math::
        M^c_n = \mathbf{w}^c \cdot \mathbf{h}_n = \sum_k w_k^c h_{n,k}

    with :math:`\mathbf{h}_n` the readout's input (``AdaptiveAvgPool2d(1)`` for CNNs,
    :class:`~gconv.layers.MeanReadout` / :class:`~gconv.layers.SumReadout` or PyG's
    ``MeanAggregation`` / ``SumAggregation`` for graph and grid models) and :math:`\mathbf{w}^c`
    the row of the ``nn.Linear`` after it, so the node maps decompose the prediction exactly.
    No gradients are needed; the map is not ReLU-ed before normalisation.

    Args:
        model (torch.nn.Module): an image or graph model with a readout + one Linear head.
        target_layer (torch.nn.Module or str, optional): the readout whose input is used; found
            by a trial forward when not given. (default: :obj:`None`)
    """

    uses_gradients = False
    apply_relu = False

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None):
        self.linear: nn.Linear | None = None
        self._requested = target_layer
        super().__init__(model, target_layer)
        self.use_input = True

    def _choose_layer(self, inputs: Inputs) -> None:
        """The last executed global mean/sum readout and the one ``nn.Linear`` after it."""
        records: list[tuple[str, nn.Module, object]] = []
        handles = [
            module.register_forward_hook(lambda m, a, o, name=name: records.append((name, m, o)))
            for name, module in self.model.named_modules()
            if module is not self.model
        ]
        try:
            with evaluating(self.model), torch.no_grad():
                output = self.model(inputs)
        finally:
            for handle in handles:
                handle.remove()
        num_graphs = output.size(0)
        readouts = [i for i, (_, m, o) in enumerate(records) if _is_gap_readout(m, o, num_graphs)]
        if self._requested is not None:
            name, module = resolve_named_layer(self.model, self._requested)
            readouts = [i for i in readouts if records[i][1] is module]
            if not readouts:
                raise ValueError(
                    f"CAM reads the input of a global mean/sum readout, but '{name}' "
                    f"({type(module).__name__}) is not one that ran in forward"
                )
        if not readouts:
            raise ValueError(
                f"CAM needs a global mean/sum readout + Linear head (AdaptiveAvgPool2d(1) -> "
                f"Flatten -> Linear, or MeanReadout / SumReadout -> Linear), but "
                f"{type(self.model).__name__} has none that runs in forward; use GradCAM instead"
            )
        index = readouts[-1]
        # leaf modules that ran after the readout (containers finish after their children)
        after = [
            m
            for _, m, _ in records[index + 1 :]
            if not isinstance(m, _PASS_THROUGH) and not list(m.children())
        ]
        if len(after) != 1 or not isinstance(after[0], nn.Linear):
            found = [type(m).__name__ for m in after]
            raise ValueError(
                f"CAM needs the readout to be followed by exactly one nn.Linear, found {found}; "
                "use GradCAM for models with an MLP head"
            )
        self.target_layer_name, self.target_layer, _ = records[index]
        self.linear = after[0]
        self.use_input = True

    def __call__(self, inputs: Inputs, target: TargetSpec = None, raw: bool = False):
        check_inputs(inputs)
        if self.linear is None:
            self._choose_layer(inputs)
        if callable(target) and not isinstance(target, ClassifierOutputTarget):
            raise TypeError("CAM explains a class logit: pass a class index, not a callable")
        return super().__call__(inputs, target, raw)

    def channel_weights(self, nodes: NodeActivations) -> Tensor:
        channels = nodes.activations.size(-1)
        if channels != self.linear.in_features:
            raise ValueError(
                f"CAM expected the pooled embeddings to have {self.linear.in_features} channels "
                f"(the Linear head's in_features), got {channels}"
            )
        category = target_index(nodes.score_fn, nodes.num_graphs).to(self.linear.weight.device)
        return self.linear.weight[category]


class GradCAM(BaseCAM):
    r"""Grad-CAM from `"Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization" <https://arxiv.org/abs/1610.02391>`_ (Selvaraju et al., 2017): channel
    weights are the mean gradient over the nodes (pixels) of each graph (image)

    .. math::
        \alpha_{g,k}^c = \frac{1}{|V_g|} \sum_{n \in g} \frac{\partial y^c_g}{\partial h_{n,k}}

    Args:
        model (torch.nn.Module): image or graph model.
        target_layer (torch.nn.Module or str, optional): layer whose embeddings are weighted.
            (default: :obj:`None`, the last node-level layer in execution order)
    """

    def channel_weights(self, nodes: NodeActivations) -> Tensor:
        return nodes.node_mean(nodes.gradients)


class GradCAMPlusPlus(BaseCAM):
    r"""Grad-CAM++ from `"Grad-CAM++: Improved Visual Explanations for Deep Convolutional
    Networks" <https://arxiv.org/abs/1710.11063>`_ (Chattopadhyay et al., 2018), eq. 19 with
    the exponential-score simplification, as in pytorch-grad-cam; sums run over the nodes of
    each graph (the pixels of each image):

    .. math::
        a_{n,k} = \frac{g_{n,k}^2}{2 g_{n,k}^2 + \sum_{m \in g} h_{m,k}\, g_{n,k}^3}, \qquad
        \alpha_{g,k}^c = \sum_{n \in g} a_{n,k}\, \mathrm{ReLU}(g_{n,k}),
        \qquad g_{n,k} = \frac{\partial y^c_g}{\partial h_{n,k}}

    Args:
        model (torch.nn.Module): image or graph model.
        target_layer (torch.nn.Module or str, optional): layer whose embeddings are weighted.
            (default: :obj:`None`, the last node-level layer in execution order)
    """

    eps: float = 1e-6

    def channel_weights(self, nodes: NodeActivations) -> Tensor:
        gradients = nodes.gradients
        grads_2 = gradients.pow(2)
        grads_3 = grads_2 * gradients
        sum_activations = nodes.node_sum(nodes.activations)[nodes.batch]
        alpha = grads_2 / (2 * grads_2 + sum_activations * grads_3 + self.eps)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        return nodes.node_sum(gradients.clamp_min(0) * alpha)


class ScoreCAM(BaseCAM):
    r"""Score-CAM from `"Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
    Networks" <https://arxiv.org/abs/1910.01279>`_ (Wang et al., 2020): each activation channel,
    min-max scaled per image (graph), masks the input; the target scores of the masked inputs,
    softmax-ed over channels, are the weights. Images use the channel upsampled to the input
    (bilinear, corners aligned); graphs scale each node's features by its own value, so the
    target layer must keep the input's nodes. Gradient-free; one forward pass per channel.

    Args:
        model (torch.nn.Module): image or graph model.
        target_layer (torch.nn.Module or str, optional): layer whose embeddings are weighted.
            (default: :obj:`None`, the last node-level layer in execution order)
        batch_size (int, optional): masked images per forward pass. (default: :obj:`64`)
    """

    uses_gradients = False

    def __init__(
        self, model: nn.Module, target_layer: nn.Module | str | None = None, batch_size: int = 64
    ):
        super().__init__(model, target_layer)
        self.batch_size = batch_size

    def channel_weights(self, nodes: NodeActivations) -> Tensor:
        inputs, channels = nodes.inputs, nodes.activations.size(-1)
        if isinstance(inputs, Tensor):
            return self._image_weights(nodes, inputs)
        masks = normalize_per_channel(nodes.activations, nodes.batch, nodes.num_graphs)
        scores = []
        for k in range(channels):
            masked = with_features(inputs, inputs.x * masks[:, k : k + 1].to(inputs.x.dtype))
            scores.append(nodes.score_fn(self.model(masked)))
        return self._softmax(torch.stack(scores, dim=-1), nodes)

    def _softmax(self, scores: Tensor, nodes: NodeActivations) -> Tensor:
        """Softmax over channels of the masked inputs' scores ``[B, C]``, in float32 for
        float16 / bfloat16 models (a clear error where the model overflowed)."""
        check_finite(scores, f"{type(self).__name__} (scores of the masked inputs)", scores.dtype)
        return scores.to(compute_dtype(scores.dtype)).softmax(dim=-1)

    def _image_weights(self, nodes: NodeActivations, images: Tensor) -> Tensor:
        num_images, channels = nodes.num_graphs, nodes.activations.size(-1)
        maps = nodes.activations.view(num_images, *nodes.grid, channels).permute(0, 3, 1, 2)
        upsampled = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=True)
        # Score-CAM's own scaling: (A - min) / (max - min + 1e-8)
        flat = upsampled.flatten(2)
        low = flat.min(dim=-1).values[..., None, None]
        high = flat.max(dim=-1).values[..., None, None]
        masks = (upsampled - low) / (high - low + 1e-8)
        scores = []
        for index in range(num_images):
            # [C_layer, C_in, H, W], in the images' dtype (the masks are float32 for a float16 /
            # bfloat16 layer)
            masked = (images[index][None] * masks[index][:, None]).to(images.dtype)
            sample_target = _select_sample(nodes.score_fn, index)
            for chunk in masked.split(self.batch_size):
                scores.append(sample_target(self.model(chunk)))
        return self._softmax(torch.cat(scores).view(num_images, channels), nodes)


def normalize_per_channel(values: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """Score-CAM's scaling of node values ``[N, C]``, per graph and channel:
    ``(h - min) / (max - min + 1e-8)``. float16 / bfloat16 values are scaled in float32 (where
    ``1e-8`` is not 0: a constant channel becomes 0, not NaN) and come back in their own dtype."""
    out_dtype, values = values.dtype, values.to(compute_dtype(values.dtype))
    channels = values.size(-1)
    index = batch[:, None].expand(-1, channels)
    low = values.new_full((num_graphs, channels), float("inf")).scatter_reduce(
        0, index, values, "amin"
    )
    high = values.new_full((num_graphs, channels), float("-inf")).scatter_reduce(
        0, index, values, "amax"
    )
    return ((values - low[batch]) / (high - low + 1e-8)[batch]).to(out_dtype)


def _select_sample(target: Target, index: int) -> Target:
    """The target of sample ``index`` applied to a batch of its masked copies."""
    if isinstance(target, ClassifierOutputTarget):
        category = torch.as_tensor(target.category).reshape(-1)
        return ClassifierOutputTarget(category[index if category.numel() > 1 else 0])
    return target
