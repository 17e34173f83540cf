r"""Class activation maps for grid and graph models: CAM, Grad-CAM, Grad-CAM++ and Score-CAM on
one core.

The core works on **node embeddings** ``[N, C]`` with a batch vector ``[N]`` (which graph each
node belongs to). An image model is the grid case: a feature map ``[B, C, h, w]`` is ``B * h * w``
nodes, ``h * w`` per image; a grid GNN's ``[B, h * w, C]`` nodes are the same thing in gconv's
row-major node order. Each method overrides only :meth:`BaseCAM.channel_weights`, the weight
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

**Target layer by execution order.** Without ``target_layer``, a trial forward (no gradients)
records every module call in order, with what went in and what came out. The target is the last
*node-level* tensor of that forward: a feature map ``[B, C, h, w]`` (global pools excluded) or grid
nodes ``[B, N, C]`` for image inputs, node embeddings ``[N, C]`` for graph inputs. If that tensor
was some module's output, that module is hooked; if it only appears as the input of a later module
(a readout fed by a residual sum), that module's input is hooked. Containers that are never
called (a ``ModuleList``) never appear. The choice is kept in ``.target_layer`` /
``.target_layer_name`` and logged; errors list the candidate layers by name.

The map of a grid model comes back on the grid of the hooked layer: its real shape for
``[B, C, h, w]`` maps, and for grid nodes ``[B, N, C]`` the ``grid_size`` that the grid layers
passed around (a grid pool returns it), so every image size works, odd ones included.
"""

from __future__ import annotations

import copy
import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.data.data import BaseData
from torch_geometric.explain import Explanation

from gconv._utils import evaluating

__all__ = [
    "ActivationsAndGradients",
    "ClassifierOutputTarget",
    "NodeActivations",
    "BaseCAM",
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
    "resolve_layer",
    "find_target_layer",
    "candidate_layers",
    "normalize_maps",
    "normalize_per_graph",
    "as_target",
]

log = logging.getLogger(__name__)

Target = Callable[[Tensor], Tensor]
TargetSpec = int | Sequence[int] | Tensor | Target | None
Inputs = Tensor | BaseData

# global pools read a feature map out to one vector: their output is not a feature map
_GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


# ---------------------------------------------------------------------------------------------
# targets and layer names
# ---------------------------------------------------------------------------------------------
class ClassifierOutputTarget:
    r"""Target score: the raw output (logit) of class ``category`` for each sample.

    Args:
        category (int or list of int or Tensor): one class for the whole batch, or one per sample.
    """

    def __init__(self, category: int | Sequence[int] | Tensor):
        self.category = category

    def __call__(self, output: Tensor) -> Tensor:
        num_classes = output.size(-1)
        index = torch.as_tensor(self.category, device=output.device).reshape(-1)
        if index.numel() == 1:
            index = index.expand(output.size(0))
        if index.numel() != output.size(0):
            raise ValueError(
                f"expected one class index per sample ({output.size(0)}), got {index.numel()}"
            )
        if bool(((index < 0) | (index >= num_classes)).any()):
            raise ValueError(
                f"class index out of range: expected 0 <= index < {num_classes} "
                f"(the model has {num_classes} outputs), got {index.tolist()}"
            )
        return output.gather(-1, index.long()[:, None]).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.category})"


def as_target(target: TargetSpec, output: Tensor) -> Target:
    """``None`` -> the argmax class, an index / indices -> :class:`ClassifierOutputTarget`, a
    callable ``output [B, K] -> scores [B]`` is used as is."""
    if target is None:
        return ClassifierOutputTarget(output.detach().argmax(dim=-1))
    if callable(target):
        return target
    return ClassifierOutputTarget(target)


def target_index(score_fn: Target, num_samples: int) -> Tensor:
    """The class index per sample ``[B]`` (``-1`` for a callable target), on the CPU."""
    category = getattr(score_fn, "category", None)
    if category is None:
        return torch.full((num_samples,), -1, dtype=torch.long)
    return torch.as_tensor(category).reshape(-1).expand(num_samples).long().cpu()


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """Return the submodule ``layer`` (a module of ``model``, or its dotted name such as
    ``"features.1"``); an unknown name raises an error listing the closest names."""
    return _resolve_named(model, layer)[1]


def _resolve_named(model: nn.Module, layer: nn.Module | str) -> tuple[str, nn.Module]:
    modules = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        for name, module in modules.items():
            if module is layer:
                return name, module
        raise ValueError(f"target_layer {type(layer).__name__} is not a submodule of the model")
    if not isinstance(layer, str):
        raise TypeError(f"target_layer must be an nn.Module or a str, got {type(layer).__name__}")
    if layer not in modules or layer == "":
        close = difflib.get_close_matches(layer, [n for n in modules if n], n=5, cutoff=0.4)
        hint = f"; did you mean one of {close}?" if close else ""
        raise ValueError(f"model has no layer named '{layer}'{hint}")
    return layer, modules[layer]


# ---------------------------------------------------------------------------------------------
# what counts as node-level, and the grid size that goes with it
# ---------------------------------------------------------------------------------------------
def _check_inputs(inputs: Inputs) -> None:
    if isinstance(inputs, BaseData):
        if getattr(inputs, "x", None) is None:
            raise ValueError("expected a PyG Data/Batch with node features 'x'")
    elif isinstance(inputs, Tensor):
        if inputs.dim() != 4:
            raise ValueError(
                f"expected images of shape [B, C, H, W] or a PyG Data/Batch, got a tensor of "
                f"shape {tuple(inputs.shape)}"
            )
    else:
        raise TypeError(
            f"expected images [B, C, H, W] or a PyG Data/Batch, got {type(inputs).__name__}"
        )


def _is_node_level(tensor: object, inputs: Inputs, grid: tuple[int, int] | None) -> bool:
    """Node embeddings of ``inputs``: ``[N, C]`` for graphs; ``[B, C, h, w]`` or grid nodes
    ``[B, h * w, C]`` (with a known grid) for images."""
    if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
        return False
    if isinstance(inputs, Tensor):
        if tensor.dim() < 3 or tensor.size(0) != inputs.size(0):
            return False
        if tensor.dim() == 4:
            return True
        if tensor.dim() == 3:
            height, width = grid if grid is not None else inputs.shape[-2:]
            return tensor.size(1) == height * width
        return False
    return tensor.dim() == 2 and tensor.size(0) == inputs.num_nodes


def _first_tensor(value: object) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    return None


def _grid_of(value: object) -> tuple[int, int] | None:
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    return None


class _GridTracker:
    """Hooks every module for one forward and follows the ``grid_size`` that grid layers take
    (``grid_size=(h, w)``, or a ``(h, w)`` argument) and grid pools return (``(x, (h, w))``)."""

    def __init__(self, model: nn.Module):
        self.current: tuple[int, int] | None = None
        self._handles = []
        for module in model.modules():
            self._handles.append(module.register_forward_pre_hook(self._before, with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._after))

    def _before(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        for value in (kwargs.get("grid_size"), *args[1:]):
            grid = _grid_of(value)
            if grid is not None:
                self.current = grid
                return

    def _after(self, module: nn.Module, args: tuple, output: object) -> None:
        if isinstance(output, tuple):
            for value in output[1:]:
                grid = _grid_of(value)
                if grid is not None:
                    self.current = grid

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


# ---------------------------------------------------------------------------------------------
# execution order: the trial forward
# ---------------------------------------------------------------------------------------------
@dataclass
class _Event:
    name: str
    module: nn.Module
    is_input: bool
    tensor: Tensor
    output: object = None  # the whole output (out events), to see graph-level readouts


def _trace(model: nn.Module, inputs: Inputs) -> list[_Event]:
    """Runs ``model`` once (eval mode, no gradients) and returns, in execution order, every
    node-level tensor that went into or came out of a submodule."""
    events: list[_Event] = []
    pooled_outputs: list[Tensor] = []
    raw_input = inputs if isinstance(inputs, Tensor) else inputs.x  # not a layer's embedding
    tracker = _GridTracker(model)  # registered first: its hooks run before the recorders
    handles = []

    def recorder(name: str, module: nn.Module):
        def before(mod, args, kwargs):
            tensor = _first_tensor(args) if args else kwargs.get("x")
            if tensor is raw_input or any(tensor is pooled for pooled in pooled_outputs):
                return  # a global pool's [B, C, 1, 1] output: read out, not a feature map
            if _is_node_level(tensor, inputs, tracker.current):
                events.append(_Event(name, module, True, tensor))

        def after(mod, args, output):
            tensor = _first_tensor(output)
            if isinstance(module, _GLOBAL_POOLS):
                pooled_outputs.append(tensor)
                return
            if _is_node_level(tensor, inputs, tracker.current):
                events.append(_Event(name, module, False, tensor, output))

        return before, after

    try:
        for name, module in model.named_modules():
            if module is model:
                continue
            before, after = recorder(name, module)
            handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
            handles.append(module.register_forward_hook(after))
        with evaluating(model), torch.no_grad():
            model(inputs)
    finally:
        tracker.release()
        for handle in handles:
            handle.remove()
    return events


def candidate_layers(model: nn.Module, inputs: Inputs) -> list[str]:
    """Names of the layers that output (or, as ``"<name> (input)"``, take) node-level tensors
    (feature maps or node embeddings) for ``inputs``, in execution order, each once."""
    _check_inputs(inputs)
    events = _trace(model, inputs)
    names: list[str] = []
    seen_inputs: list[Tensor] = []
    for event in events:
        if event.is_input:
            # only tensors no module made (a residual sum) and only where they first go in
            produced = any(not e.is_input and e.tensor is event.tensor for e in events)
            if produced or any(event.tensor is t for t in seen_inputs):
                continue
            seen_inputs.append(event.tensor)
        label = f"{event.name} (input)" if event.is_input else event.name
        if label not in names:
            names.append(label)
    return names


def _choose(events: list[_Event]) -> tuple[str, nn.Module, bool]:
    """The last node-level tensor: the module that output it, else the module it went into."""
    if not events:
        raise LookupError
    last = events[-1]
    if last.is_input:
        producers = [e for e in events if not e.is_input and e.tensor is last.tensor]
        if producers:
            last = producers[-1]
        else:  # the outermost module it went into (pre-hooks run outside in)
            last = next(e for e in events if e.is_input and e.tensor is last.tensor)
    return last.name, last.module, last.is_input


def find_target_layer(model: nn.Module, inputs: Inputs) -> tuple[str, nn.Module, bool]:
    r"""The layer whose node embeddings a CAM method weighs, by execution order.

    Runs one trial forward of ``inputs`` and returns ``(name, module, use_input)``: the module
    that produced the last node-level tensor (``use_input=False``) or, if that tensor only went
    into a module (a readout after a residual sum), that module with ``use_input=True``. So
    ``CNN`` -> ``features``, torchvision ResNet -> ``layer4``, a grid GNN -> its last grid layer
    (or its readout's input), gconv's ``GCN`` -> ``readout`` (input), a plain PyG model -> its
    last message-passing layer.
    """
    _check_inputs(inputs)
    events = _trace(model, inputs)
    try:
        return _choose(events)
    except LookupError:
        kind = (
            "feature maps [B, C, h, w]"
            if isinstance(inputs, Tensor)
            else f"node embeddings [{inputs.num_nodes}, C]"
        )
        raise ValueError(
            f"no layer of {type(model).__name__} produced {kind} for this input: CAM methods "
            "need a node-level (convolutional or message-passing) layer; pass target_layer"
        ) from None


def _candidates_text(model: nn.Module, inputs: Inputs) -> str:
    names = candidate_layers(model, inputs)
    return f"node-level layers in execution order: {names}" if names else "no node-level layers"


# ---------------------------------------------------------------------------------------------
# hooks on the target layer
# ---------------------------------------------------------------------------------------------
class ActivationsAndGradients:
    r"""Hook on one module that keeps the node-level tensor it outputs (or, with ``use_input``,
    the first tensor it takes) on its last call in a forward.

    The kept tensor stays in the autograd graph (gradients are then taken with
    :func:`torch.autograd.grad`, so parameter ``.grad`` is never written); the model continues
    with a clone, so an in-place operation after the layer cannot change it. ``grid`` is the
    grid size in effect when it was kept (grid models), from a :class:`_GridTracker`.

    Args:
        layer (torch.nn.Module): the module to hook.
        inputs (Tensor or Data): what is being explained (decides what is node-level).
        use_input (bool, optional): keep the module's input instead of its output.
            (default: :obj:`False`)
        tracker (_GridTracker, optional): grid sizes of the running forward. (default: :obj:`None`)
    """

    def __init__(
        self,
        layer: nn.Module,
        inputs: Inputs,
        use_input: bool = False,
        tracker: _GridTracker | None = None,
    ):
        self.layer = layer
        self.inputs = inputs
        self.use_input = use_input
        self.tracker = tracker
        self.activations: Tensor | None = None
        self.grid: tuple[int, int] | None = None
        self.calls = 0
        if use_input:
            self._handle = layer.register_forward_pre_hook(self._save_input, with_kwargs=True)
        else:
            self._handle = layer.register_forward_hook(self._save_output)

    def _keep(self, tensor: Tensor | None) -> bool:
        self.calls += 1
        grid = self.tracker.current if self.tracker is not None else None
        if not _is_node_level(tensor, self.inputs, grid):
            return False
        self.activations, self.grid = tensor, grid
        return True

    def _save_input(self, module: nn.Module, args: tuple, kwargs: dict):
        if args and isinstance(args[0], Tensor):
            if self._keep(args[0]):
                return (args[0].clone(), *args[1:]), kwargs
        elif isinstance(kwargs.get("x"), Tensor) and self._keep(kwargs["x"]):
            return args, {**kwargs, "x": kwargs["x"].clone()}
        return None

    def _save_output(self, module: nn.Module, args: tuple, output: object):
        if isinstance(output, Tensor):
            return output.clone() if self._keep(output) else None
        if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
            if self._keep(output[0]):
                rest = output[1:]
                return (output[0].clone(), *rest)
            return None
        self.calls += 1
        return None

    def release(self) -> None:
        """Remove the hook from the module; the kept tensor stays readable."""
        self._handle.remove()


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------
def normalize_maps(maps: Tensor) -> Tensor:
    """Min-max normalise each map of ``[B, ...]`` to [0, 1] (a constant map becomes 0).

    The range is clamped to the smallest normal float rather than padded with a fixed epsilon,
    so maps of tiny magnitude (Grad-CAM gradients are often ~1e-4) still reach exactly 1."""
    flat = maps.flatten(1)
    shifted = flat - flat.min(dim=1, keepdim=True).values
    span = shifted.max(dim=1, keepdim=True).values.clamp_min(torch.finfo(maps.dtype).tiny)
    return (shifted / span).view_as(maps)


def normalize_per_graph(values: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """Min-max normalise node values ``[N]`` or ``[N, F]`` to [0, 1] inside each graph (all
    features of a graph share one range; a constant graph becomes 0)."""
    flat = values.reshape(values.size(0), -1)
    node_min, node_max = flat.amin(dim=-1), flat.amax(dim=-1)
    low = node_min.new_full((num_graphs,), float("inf")).scatter_reduce(0, batch, node_min, "amin")
    high = node_max.new_full((num_graphs,), float("-inf")).scatter_reduce(
        0, batch, node_max, "amax"
    )
    span = (high - low).clamp_min(torch.finfo(values.dtype).tiny)
    scaled = (flat - low[batch, None]) / span[batch, None]
    return scaled.view_as(values)


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
@dataclass
class NodeActivations:
    r"""What a CAM method sees: the hooked layer's embeddings as nodes.

    Attributes:
        activations (Tensor): node embeddings ``[N, C]`` (all graphs / all pixels of all images).
        gradients (Tensor or None): :math:`\partial y^c_g / \partial h_{n,k}` ``[N, C]``.
        batch (Tensor): graph (or image) of each node ``[N]``.
        num_graphs (int): number of graphs (images).
        score_fn (callable): the target, ``output [B, K] -> score [B]``.
        inputs (Tensor or Data): what is explained.
        grid (tuple of int or None): ``(h, w)`` of the feature map for image inputs.
    """

    activations: Tensor
    gradients: Tensor | None
    batch: Tensor
    num_graphs: int
    score_fn: Target
    inputs: Inputs
    grid: tuple[int, int] | None

    def node_sum(self, values: Tensor) -> Tensor:
        """Per-graph sum of node values ``[N, C]`` -> ``[num_graphs, C]``."""
        out = values.new_zeros(self.num_graphs, values.size(-1))
        return out.index_add_(0, self.batch, values)

    def node_mean(self, values: Tensor) -> Tensor:
        """Per-graph mean of node values ``[N, C]`` -> ``[num_graphs, C]``."""
        counts = torch.bincount(self.batch, minlength=self.num_graphs).clamp_min(1)
        return self.node_sum(values) / counts[:, None].to(values.dtype)


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
            self.target_layer_name, self.target_layer = _resolve_named(model, target_layer)
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
        """
        _check_inputs(inputs)
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
        tracker = _GridTracker(self.model) if is_image else None
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
        activations = activations.detach()
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
        nodes = NodeActivations(activations, gradients, batch, num_graphs, score_fn, inputs, grid)
        return nodes, output.detach()

    def _missing_activations(self, inputs: Inputs, calls: int) -> None:
        what = "input" if self.use_input else "output"
        if calls == 0:
            problem = "was not called in forward"
        else:
            problem = f"gave no node-level {what} (node embeddings or feature maps)"
        raise ValueError(
            f"target layer '{self.target_layer_name}' ({type(self.target_layer).__name__}) "
            f"{problem}; {_candidates_text(self.model, inputs)}"
        )

    def _finish(
        self,
        inputs: Inputs,
        nodes: NodeActivations,
        node_maps: Tensor,
        output: Tensor,
        raw: bool,
    ) -> Tensor | Explanation:
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


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------
def _is_gap_readout(module: nn.Module, output: object, num_graphs: int) -> bool:
    from torch_geometric.nn.aggr import MeanAggregation, SumAggregation

    from gconv.layers.readout import MeanReadout, SumReadout

    if isinstance(module, nn.AdaptiveAvgPool2d):
        return module.output_size in (1, (1, 1))
    if isinstance(module, (MeanReadout, SumReadout, MeanAggregation, SumAggregation)):
        out = _first_tensor(output)
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
            name, module = _resolve_named(self.model, self._requested)
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
        _check_inputs(inputs)
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
        return torch.stack(scores, dim=-1).softmax(dim=-1)

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
            masked = images[index][None] * masks[index][:, None]  # [C_layer, C_in, H, W]
            sample_target = _select_sample(nodes.score_fn, index)
            for chunk in masked.split(self.batch_size):
                scores.append(sample_target(self.model(chunk)))
        return torch.cat(scores).view(num_images, channels).softmax(dim=-1)


def normalize_per_channel(values: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """Score-CAM's scaling of node values ``[N, C]``, per graph and channel:
    ``(h - min) / (max - min + 1e-8)``."""
    channels = values.size(-1)
    index = batch[:, None].expand(-1, channels)
    low = values.new_full((num_graphs, channels), float("inf")).scatter_reduce(
        0, index, values, "amin"
    )
    high = values.new_full((num_graphs, channels), float("-inf")).scatter_reduce(
        0, index, values, "amax"
    )
    return (values - low[batch]) / (high - low + 1e-8)[batch]


def _select_sample(target: Target, index: int) -> Target:
    """The target of sample ``index`` applied to a batch of its masked copies."""
    if isinstance(target, ClassifierOutputTarget):
        category = torch.as_tensor(target.category).reshape(-1)
        return ClassifierOutputTarget(category[index if category.numel() > 1 else 0])
    return target
