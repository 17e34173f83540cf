r"""The core every explainer shares, and the base of the class-activation-map methods
(torchcam's ``methods/core.py``, pytorch-grad-cam's ``base_cam.py``).

The core works on **node embeddings** ``[N, C]`` with a batch vector ``[N]`` (which graph each
node belongs to). An image model is the grid case: a feature map ``[B, C, h, w]`` is ``B * h * w``
nodes, ``h * w`` per image; a grid GNN's ``[B, h * w, C]`` nodes are the same thing in gconv's
row-major node order. Each CAM method overrides only :meth:`BaseCAM.channel_weights`, the weight
:math:`\alpha_{g,k}^c` of channel :math:`k` in graph (or image) :math:`g`, and the node map is

.. math::
    L_n^c = \mathrm{ReLU}\Big(\sum_k \alpha_{g(n),k}^c\, h_{n,k}\Big)

One calling convention serves CNNs, grid GNNs, gconv's molecular models and plain PyG models::

    maps = GradCAM(cnn)(images)                 # [B, H, W] in [0, 1], upsampled from [B, h, w]
    maps = GradCAM(grid_gnn)(images)            # the same for a GNN on the pixel grid
    explanation = GradCAM(gcn)(molecule_batch)  # PyG Explanation, one graph per molecule
    explanation[0].node_mask                    # [N_0, 1] in [0, 1], normalised per graph
    explanation.to_data_list()                  # one Explanation per graph

Semantics follow `pytorch-grad-cam <https://github.com/jacobgil/pytorch-grad-cam>`_: eval mode,
the raw logit of the target class (default: the prediction), ReLU, bilinear resize to the input
and min-max normalisation per image (per graph for graph inputs); a test re-derives its formulas.

**No side effects.** Every call puts the model in eval mode and restores each module's own
``training`` flag afterwards, installs its hooks only for the duration of the call, and takes
gradients with :func:`torch.autograd.grad` (parameter ``.grad`` is never written). The class also
works as a context manager, for symmetry with pytorch-grad-cam; nothing needs releasing.

**Target layer.** Given by name or module, or found by execution order
(:func:`~gconv.explain.find_layers.find_target_layer`); the choice is kept in ``.target_layer``
/ ``.target_layer_name`` and logged. The map of a grid model comes back on the grid of the
hooked layer: its real shape for ``[B, C, h, w]`` maps, and for grid nodes ``[B, N, C]`` the
``grid_size`` that the grid layers passed around.

Shared with the gradient attributions (:mod:`gconv.explain.gradient`): :func:`graph_batch`,
:func:`with_features` and :func:`graph_explanations` (one PyG ``Explanation`` per graph).
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.data.data import BaseData
from torch_geometric.explain import Explanation
from torch_geometric.utils import subgraph

from gconv._utils import evaluating
from gconv.explain._utils import GridTracker, Inputs, check_finite, check_inputs, compute_dtype
from gconv.explain.find_layers import candidate_layers, find_target_layer, resolve_named_layer
from gconv.explain.hooks import ActivationsAndGradients, NodeActivations
from gconv.explain.targets import TargetSpec, as_target, target_index

__all__ = [
    "BaseCAM",
    "normalize_maps",
    "normalize_per_graph",
    "graph_batch",
    "with_features",
    "remove_nodes",
    "graph_explanations",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------
def normalize_maps(maps: Tensor) -> Tensor:
    """Min-max normalise each map of ``[B, ...]`` to [0, 1] (a constant map becomes 0).

    The range is clamped to the smallest normal float rather than padded with a fixed epsilon,
    so maps of tiny magnitude (Grad-CAM gradients are often ~1e-4) still reach exactly 1.
    float16 / bfloat16 maps are scaled in float32 (their range can overflow) and come back in
    their own dtype."""
    dtype = compute_dtype(maps.dtype)
    flat = maps.flatten(1).to(dtype)
    shifted = flat - flat.min(dim=1, keepdim=True).values
    span = shifted.max(dim=1, keepdim=True).values.clamp_min(torch.finfo(dtype).tiny)
    return (shifted / span).view_as(maps).to(maps.dtype)


def normalize_per_graph(values: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """Min-max normalise node values ``[N]`` or ``[N, F]`` to [0, 1] inside each graph (all
    features of a graph share one range; a constant graph becomes 0). float16 / bfloat16 values
    are scaled in float32 and come back in their own dtype."""
    dtype = compute_dtype(values.dtype)
    flat = values.reshape(values.size(0), -1).to(dtype)
    node_min, node_max = flat.amin(dim=-1), flat.amax(dim=-1)
    low = node_min.new_full((num_graphs,), float("inf")).scatter_reduce(0, batch, node_min, "amin")
    high = node_max.new_full((num_graphs,), float("-inf")).scatter_reduce(
        0, batch, node_max, "amax"
    )
    span = (high - low).clamp_min(torch.finfo(dtype).tiny)
    scaled = (flat - low[batch, None]) / span[batch, None]
    return scaled.view_as(values).to(values.dtype)


# ---------------------------------------------------------------------------------------------
# node views of a batch and explanations per graph
# ---------------------------------------------------------------------------------------------
def graph_batch(inputs: BaseData) -> Tensor:
    """The batch vector of a PyG batch (all zeros for a single graph)."""
    batch = getattr(inputs, "batch", None)
    if batch is None:
        return torch.zeros(inputs.num_nodes, dtype=torch.long, device=inputs.x.device)
    return batch


def with_features(inputs: Inputs, x: Tensor) -> Inputs:
    """``inputs`` with node features (PyG) or pixels (images) replaced by ``x``."""
    if isinstance(inputs, Tensor):
        return x
    data = copy.copy(inputs)  # shallow: shares edge_index, batch, ... with the caller's data
    data.x = x
    return data


def remove_nodes(inputs: BaseData, removed: Tensor) -> BaseData:
    """``inputs`` without the ``removed`` nodes (``[N]`` bool) and their edges, every graph of
    the batch kept (a graph whose nodes are all removed stays, empty): how the deletion curves
    and :class:`~gconv.explain.Occlusion` take an atom out of a molecule. ``x``, ``edge_index``,
    ``edge_attr`` and ``batch`` are cut; graph-level attributes (``x_d``, ``y``) are shared."""
    keep = ~removed
    data = copy.copy(inputs)  # shallow: graph-level attributes and the graph count stay
    edge_attr = getattr(inputs, "edge_attr", None)
    edge_index, edge_attr = subgraph(
        keep, inputs.edge_index, edge_attr, relabel_nodes=True, num_nodes=inputs.num_nodes
    )
    data.x, data.edge_index = inputs.x[keep], edge_index
    if edge_attr is not None:
        data.edge_attr = edge_attr
    if getattr(inputs, "batch", None) is not None:
        data.batch = inputs.batch[keep]
    return data


def graph_explanations(
    inputs: BaseData,
    node_mask: Tensor,
    target: Tensor,
    prediction: Tensor,
    edge_mask: Tensor | None = None,
    **per_graph: Tensor,
) -> Explanation:
    r"""One :class:`~torch_geometric.explain.Explanation` per graph of ``inputs``, batched.

    The result is PyG's batch of explanations (an ``Explanation`` and a ``Batch`` at once):
    ``node_mask`` / ``edge_mask`` over all nodes / edges with ``batch`` and ``ptr``, and
    ``result[g]`` or ``result.to_data_list()`` give each graph's own ``Explanation`` (its
    ``x``, ``edge_index``, masks, ``target`` ``[1]``, ``prediction`` ``[1, K]``, and any other
    attribute of the graph, such as ``smiles``). ``per_graph`` tensors have one row per graph.
    """
    graphs = inputs.to_data_list() if isinstance(inputs, Batch) else [inputs]
    node_mask, target, prediction = node_mask.detach(), target.cpu(), prediction.detach()
    node_start = edge_start = 0
    explanations = []
    for index, graph in enumerate(graphs):
        fields = {key: value for key, value in graph.to_dict().items() if key != "batch"}
        num_nodes, num_edges = graph.num_nodes, graph.num_edges
        fields["node_mask"] = node_mask[node_start : node_start + num_nodes]
        if edge_mask is not None:
            fields["edge_mask"] = edge_mask.detach()[edge_start : edge_start + num_edges]
        fields["target"] = target[index : index + 1]
        fields["prediction"] = prediction[index : index + 1]
        for key, value in per_graph.items():
            fields[key] = value.detach()[index : index + 1]
        explanations.append(Explanation(**fields))
        node_start, edge_start = node_start + num_nodes, edge_start + num_edges
    result = Batch.from_data_list(explanations)
    result.validate_masks()
    return result


# ---------------------------------------------------------------------------------------------
# base class
# ---------------------------------------------------------------------------------------------
class BaseCAM:
    r"""Base class of the class-activation-map methods.

    Subclasses implement :meth:`channel_weights`; everything else (the trial forward that picks
    the target layer, hooks, gradients, ReLU, upsampling, normalisation, restoring the model)
    lives here.

    Args:
        model (torch.nn.Module): an image model ``[B, C, H, W] -> [B, K]`` (CNN or grid GNN) or
            a graph model ``model(data) -> [num_graphs, K]``.
        target_layer (torch.nn.Module or str, optional): the layer whose output embeddings are
            weighted, as a module or a dotted name; found by :func:`find_target_layer` when not
            given (for image models at once when the model's input shape can be read from its
            ``in_shape`` or first ``Conv2d``, otherwise on the first call). (default: :obj:`None`)
    """

    uses_gradients: bool = True
    apply_relu: bool = True

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None):
        self.model = model
        self.target_layer: nn.Module | None = None
        self.target_layer_name: str | None = None
        #: whether the target layer's input (not its output) is weighted
        self.use_input = False
        if target_layer is not None:
            self.target_layer_name, self.target_layer = resolve_named_layer(model, target_layer)
        else:
            for example in _example_images(model):
                try:
                    self._choose_layer(example)
                    break
                except (RuntimeError, ValueError, TypeError):
                    continue  # the example does not fit this model: choose on the first call

    # -- the one thing each method defines --------------------------------------------------
    def channel_weights(self, nodes: NodeActivations) -> Tensor:
        r"""Weights :math:`\alpha_{g,k}^c` of shape ``[num_graphs, C]``."""
        raise NotImplementedError

    # -- the shared algorithm ----------------------------------------------------------------
    def _choose_layer(self, inputs: Inputs) -> None:
        name, module, use_input = find_target_layer(self.model, inputs)
        self.target_layer_name, self.target_layer, self.use_input = name, module, use_input
        log.info(
            "%s: using the %s of target layer '%s'",
            type(self).__name__,
            "input" if use_input else "output",
            name,
        )

    def __call__(
        self, inputs: Inputs, target: TargetSpec = None, raw: bool = False
    ) -> Tensor | Explanation:
        r"""Class activation maps for a batch of images or graphs.

        Args:
            inputs (Tensor or Data or Batch): images ``[B, C, H, W]`` or a PyG batch.
            target (int or list of int or Tensor or callable, optional): class index for all
                samples, one per sample, or a callable ``output [B, K] -> score [B]``; the
                predicted class when not given. (default: :obj:`None`)
            raw (bool, optional): return the weighted sums :math:`\sum_k \alpha_k^c h_{n,k}`
                before ReLU, resizing and normalisation (images: ``[B, h, w]`` at the layer's
                resolution). (default: :obj:`False`)

        Returns:
            images: maps ``[B, H, W]`` in [0, 1] (or raw ``[B, h, w]``); graphs: an
            :class:`~torch_geometric.explain.Explanation` batch with ``node_mask`` ``[N, 1]``,
            in [0, 1] per graph unless ``raw`` (see :func:`graph_explanations`).

        For float16 / bfloat16 models (``model.half()``, autocast) the channel weights, the
        weighted sums, ReLU, resizing and normalisation are computed in float32 and the maps
        come back in float32; where the model itself gives non-finite values a
        :class:`RuntimeError` says so instead of returning NaN maps.
        """
        check_inputs(inputs)
        with evaluating(self.model):
            if self.target_layer is None:
                self._choose_layer(inputs)
            nodes, output = self._node_activations(inputs, target)
            with torch.no_grad():
                weights = self.channel_weights(nodes).to(nodes.activations.dtype)
                node_maps = (nodes.activations * weights[nodes.batch]).sum(dim=-1)
        return self._finish(inputs, nodes, node_maps, output, raw)

    def _node_activations(
        self, inputs: Inputs, target: TargetSpec
    ) -> tuple[NodeActivations, Tensor]:
        """Forward (and gradient of the target score) with the target layer hooked."""
        is_image = isinstance(inputs, Tensor)
        tracker = GridTracker(self.model) if is_image else None
        hooks = ActivationsAndGradients(self.target_layer, inputs, self.use_input, tracker)
        try:
            # a leaf input that requires grad: gradients reach the target layer even when the
            # backbone is frozen (requires_grad=False weights)
            x = inputs if is_image else inputs.x
            if x.is_floating_point():
                x = x.detach().requires_grad_(self.uses_gradients)
            with torch.set_grad_enabled(self.uses_gradients):
                output = self.model(with_features(inputs, x))
                score_fn = as_target(target, output)
                scores = score_fn(output)
                activations = hooks.activations
                if activations is None:
                    self._missing_activations(inputs, hooks.calls)
                gradients = None
                if self.uses_gradients:
                    if not activations.requires_grad:
                        raise RuntimeError(
                            f"no gradient reaches the target layer '{self.target_layer_name}': "
                            "does the target score depend on it?"
                        )
                    (gradients,) = torch.autograd.grad(scores.sum(), activations, allow_unused=True)
                    if gradients is None:
                        raise RuntimeError(
                            f"no gradient reached the target layer '{self.target_layer_name}': "
                            "does the target score depend on it?"
                        )
        finally:
            hooks.release()
            if tracker is not None:
                tracker.release()
        # the method's own arithmetic (weights, sums over nodes, softmax, scaling) in float32
        # for float16 / bfloat16 layers; float32 / float64 stay as they are
        layer_dtype = activations.dtype
        activations = activations.detach().to(compute_dtype(layer_dtype))
        if gradients is not None:
            gradients = gradients.to(activations.dtype)
        num_graphs = output.size(0)
        if is_image:
            activations, gradients, grid = _image_nodes(activations, gradients, hooks.grid, inputs)
            batch = torch.arange(num_graphs, device=activations.device).repeat_interleave(
                grid[0] * grid[1]
            )
        else:
            grid, batch = None, graph_batch(inputs)
            num_in_batch = getattr(inputs, "num_graphs", 1)
            if num_in_batch != num_graphs:
                raise ValueError(
                    f"expected one output row per graph ({num_in_batch}), got {num_graphs}"
                )
        nodes = NodeActivations(
            activations, gradients, batch, num_graphs, score_fn, inputs, grid, layer_dtype
        )
        return nodes, output.detach()

    def _missing_activations(self, inputs: Inputs, calls: int) -> None:
        what = "input" if self.use_input else "output"
        if calls == 0:
            problem = "was not called in forward"
        else:
            problem = f"gave no node-level {what} (node embeddings or feature maps)"
        names = candidate_layers(self.model, inputs)
        candidates = (
            f"node-level layers in execution order: {names}" if names else "no node-level layers"
        )
        raise ValueError(
            f"target layer '{self.target_layer_name}' ({type(self.target_layer).__name__}) "
            f"{problem}; {candidates}"
        )

    def _finish(
        self,
        inputs: Inputs,
        nodes: NodeActivations,
        node_maps: Tensor,
        output: Tensor,
        raw: bool,
    ) -> Tensor | Explanation:
        check_finite(node_maps, type(self).__name__, nodes.layer_dtype)
        if isinstance(inputs, Tensor):
            maps = node_maps.view(nodes.num_graphs, *nodes.grid)
            if raw:
                return maps
            if self.apply_relu:
                maps = maps.clamp_min(0)
            maps = F.interpolate(
                maps[:, None], size=inputs.shape[-2:], mode="bilinear", align_corners=False
            )[:, 0]
            return normalize_maps(maps)
        if not raw:
            if self.apply_relu:
                node_maps = node_maps.clamp_min(0)
            node_maps = normalize_per_graph(node_maps, nodes.batch, nodes.num_graphs)
        target = target_index(nodes.score_fn, nodes.num_graphs)
        return graph_explanations(inputs, node_maps[:, None], target, output)

    # -- lifetime ----------------------------------------------------------------------------
    def release(self) -> None:
        """Nothing to release: hooks live only inside a call. Kept for pytorch-grad-cam's API."""

    def __enter__(self) -> BaseCAM:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        layer = self.target_layer_name if self.target_layer is not None else "<on first call>"
        suffix = " (input)" if self.use_input else ""
        return f"{self.__class__.__name__}(target_layer='{layer}'{suffix})"


def _example_images(model: nn.Module) -> list[Tensor]:
    """Zero images for a trial forward of an image model: ``[1, *model.in_shape]`` when the model
    has one, else 64x64 with the input channels of its ``Conv2d`` layers (the first three
    distinct ones, in registration order); none for models that take other inputs."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else None
    in_shape = getattr(model, "in_shape", None)
    if isinstance(in_shape, tuple) and len(in_shape) == 3:
        return [torch.zeros(1, *in_shape, device=device, dtype=dtype)]
    channels = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels not in channels:
            channels.append(module.in_channels)
    return [torch.zeros(1, c, 64, 64, device=device, dtype=dtype) for c in channels[:3]]


def _image_nodes(
    activations: Tensor,
    gradients: Tensor | None,
    grid: tuple[int, int] | None,
    images: Tensor,
) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
    """Feature maps ``[B, C, h, w]`` or grid nodes ``[B, h * w, C]`` as nodes ``[B * h * w, C]``
    (row-major in each image) and the ``(h, w)`` of the map."""
    if activations.dim() == 4:
        grid = (activations.size(2), activations.size(3))

        def to_nodes(t: Tensor) -> Tensor:
            return t.permute(0, 2, 3, 1).reshape(-1, t.size(1))
    else:
        if grid is None:  # nodes with no grid layer in sight: the input grid (no pooling)
            grid = (images.size(2), images.size(3))

        def to_nodes(t: Tensor) -> Tensor:
            return t.reshape(-1, t.size(-1))

    return to_nodes(activations), None if gradients is None else to_nodes(gradients), grid
