r"""Node importance for graph-level predictions, returned as PyG
:class:`~torch_geometric.explain.Explanation` objects.

Four methods, one calling convention ``method(model, inputs, target=None, ...) -> Explanation``:

* :func:`graph_cam` — the exact graph analogue of CAM for models ending in a mean/sum
  ``.readout`` and a linear ``.head``: node :math:`n`'s score for class :math:`c` is
  :math:`s_n^c = \mathbf{h}_n \cdot \mathbf{w}^c`, with :math:`\mathbf{h}_n` the node embedding
  entering the readout. For a mean readout the logit is :math:`y^c = \frac{1}{|V|}\sum_n s_n^c + b^c`
  (for a sum readout, without the :math:`\frac{1}{|V|}`), so the node scores decompose the
  prediction exactly.
* :func:`grad_cam` — Grad-CAM over the node embeddings ``[N, C]`` of any layer (default: the
  readout's input): :math:`\alpha_k = \frac{1}{|V_g|}\sum_{n \in g} \partial y^c / \partial h_{nk}`,
  :math:`s_n = \mathrm{ReLU}(\sum_k \alpha_k h_{nk})`.
* :func:`saliency` — input gradients :math:`|\partial y^c / \partial \mathbf{x}_n|` (node mask
  ``[N, F]``) and, for PyG models built from ``MessagePassing`` layers, the gradient with respect
  to a per-edge message weight (edge mask ``[E]``).
* :func:`integrated_gradients` — Captum's integrated gradients (Gauss-Legendre path integral from
  an all-zero baseline) over node features and, where available, edge weights; the
  convergence delta is kept on the explanation.

``inputs`` is either a PyG ``Data``/``Batch`` (the model is called as ``model(data)``) or an image
tensor ``[B, C, H, W]`` for grid models (``model(images)``, node embeddings ``[B, N, C]`` at the
readout). Grid explanations remember their ``grid_size`` so :func:`node_mask_to_image` can draw
them back as ``[B, h, w]`` maps. Class targets follow :mod:`gconv.explain.cam`: ``None`` (the
prediction), an index, one index per graph, or a callable ``output -> score per graph``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data.data import BaseData
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import MessagePassing

from gconv.explain.cam import ActivationsAndGradients, as_target, resolve_layer
from gconv.layers.readout import MeanReadout, SumReadout

__all__ = [
    "graph_cam",
    "grad_cam",
    "saliency",
    "integrated_gradients",
    "node_mask_to_image",
]

Inputs = BaseData | Tensor
TargetSpec = int | Sequence[int] | Tensor | Callable[[Tensor], Tensor] | None


# ---------------------------------------------------------------------------------------------
# shared plumbing
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration of an explanation; every module's own flag comes back."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        clear_masks(model)
        for module, training in flags.items():
            module.training = training


def _check_inputs(inputs: Inputs) -> None:
    if isinstance(inputs, BaseData):
        if getattr(inputs, "x", None) is None:
            raise ValueError("expected a PyG Data/Batch with node features 'x'")
    elif isinstance(inputs, Tensor):
        if inputs.dim() != 4:
            raise ValueError(
                f"expected a PyG Data/Batch or images [B, C, H, W], got a tensor of shape "
                f"{tuple(inputs.shape)}"
            )
    else:
        raise TypeError(
            f"expected a PyG Data/Batch or an image tensor, got {type(inputs).__name__}"
        )


def _with_features(inputs: Inputs, x: Tensor) -> Inputs:
    """``inputs`` with node features (PyG) or pixels (images) replaced by ``x``."""
    if isinstance(inputs, Tensor):
        return x
    data = copy.copy(inputs)  # shallow: shares edge_index, batch, ... with the caller's data
    data.x = x
    return data


def _features(inputs: Inputs) -> Tensor:
    x = inputs.x if isinstance(inputs, BaseData) else inputs
    if not x.is_floating_point():
        raise TypeError(
            f"gradient-based node importance needs float node features, got dtype {x.dtype}"
        )
    return x


def _graph_batch(inputs: BaseData) -> Tensor:
    batch = getattr(inputs, "batch", None)
    if batch is None:
        return torch.zeros(inputs.num_nodes, dtype=torch.long, device=inputs.x.device)
    return batch


def _flatten_nodes(
    embeddings: Tensor, hooks: ActivationsAndGradients, inputs: Inputs
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Node embeddings as ``[N_total, C]``, their graph index ``[N_total]`` and (on a static grid,
    where they come as ``[B, N, C]``) the gradients flattened alike. The graph index is the batch
    vector given to a hooked readout, else the input batch's."""
    gradients = hooks.gradients
    if embeddings.dim() == 3:  # static grid: [B, N, C]
        num_graphs, num_nodes = embeddings.shape[:2]
        batch = torch.arange(num_graphs, device=embeddings.device).repeat_interleave(num_nodes)
        flat_grads = gradients.flatten(0, 1) if gradients is not None else None
        return embeddings.flatten(0, 1), batch, flat_grads
    if embeddings.dim() != 2:
        raise ValueError(
            f"expected node embeddings [N, C] or [B, N, C], got shape {tuple(embeddings.shape)}"
        )
    batch = None
    if hooks.use_input:  # a readout's call: forward(x, batch=None, size=None)
        batch = hooks.call_kwargs.get("batch")
        if batch is None and len(hooks.call_args) > 1 and isinstance(hooks.call_args[1], Tensor):
            batch = hooks.call_args[1]
    if batch is None:
        batch = (
            _graph_batch(inputs)
            if isinstance(inputs, BaseData) and inputs.num_nodes == embeddings.size(0)
            else torch.zeros(embeddings.size(0), dtype=torch.long, device=embeddings.device)
        )
    return embeddings, batch, gradients


def _grid_size(inputs: Inputs, nodes_per_image: int) -> tuple[int, int] | None:
    """``(h, w)`` of the grid the nodes live on, for image inputs (pooling shrinks both sides by
    the same factor)."""
    if not isinstance(inputs, Tensor):
        return None
    height, width = inputs.shape[-2:]
    factor = math.sqrt(height * width / nodes_per_image)
    h, w = round(height / factor), round(width / factor)
    if h * w != nodes_per_image:
        raise ValueError(
            f"cannot lay {nodes_per_image} nodes per image on a grid of aspect {height}x{width}"
        )
    return h, w


def _explanation(
    inputs: Inputs,
    node_mask: Tensor,
    batch: Tensor,
    target: Tensor,
    prediction: Tensor,
    edge_mask: Tensor | None = None,
    grid_size: tuple[int, int] | None = None,
    **extra,
) -> Explanation:
    fields = dict(node_mask=node_mask.detach(), batch=batch, target=target, prediction=prediction)
    if isinstance(inputs, BaseData) and node_mask.size(0) == inputs.num_nodes:
        fields.update(x=inputs.x, edge_index=inputs.edge_index)
    if edge_mask is not None:
        fields["edge_mask"] = edge_mask.detach()
    if grid_size is not None:
        fields["grid_size"] = grid_size
    explanation = Explanation(**fields, **extra)
    explanation.validate_masks()
    return explanation


def _target_index(score_fn, output: Tensor) -> Tensor:
    category = getattr(score_fn, "category", None)
    if category is None:
        return torch.full((output.size(0),), -1, dtype=torch.long)
    return torch.as_tensor(category).reshape(-1).expand(output.size(0)).cpu()


def _hooked_forward(
    model: nn.Module, inputs: Inputs, layer: nn.Module, use_input: bool, target: TargetSpec
) -> tuple[ActivationsAndGradients, Tensor, Callable, Tensor]:
    """Forward (and backward of the target score) with ``layer`` hooked."""
    hooks = ActivationsAndGradients(layer, use_input=use_input)
    try:
        if isinstance(inputs, Tensor):
            inputs = inputs.detach().requires_grad_(True)  # gradients reach frozen layers
        else:
            inputs = _with_features(
                inputs, inputs.x.detach().requires_grad_(inputs.x.is_floating_point())
            )
        output = model(inputs)
        score_fn = as_target(target, output)
        scores = score_fn(output)
        if hooks.activations is None:
            raise RuntimeError(f"layer {type(layer).__name__} was not called in forward")
        if scores.requires_grad:
            model.zero_grad(set_to_none=True)
            scores.sum().backward()
    finally:
        hooks.release()
    return hooks, output.detach(), score_fn, scores.detach()


def _readout_and_head(model: nn.Module, method: str) -> tuple[nn.Module, nn.Module]:
    readout, head = getattr(model, "readout", None), getattr(model, "head", None)
    if not isinstance(readout, nn.Module) or head is None:
        raise ValueError(
            f"{method} needs a graph model exposing `.readout` (a Readout module) and `.head`; "
            f"{type(model).__name__} has readout={type(readout).__name__}, "
            f"head={type(head).__name__}"
        )
    return readout, head


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------
def graph_cam(model: nn.Module, inputs: Inputs, target: TargetSpec = None) -> Explanation:
    r"""Graph CAM: node scores :math:`s_n^c = \mathbf{h}_n \cdot \mathbf{w}^c` for a model whose
    ``.readout`` is a mean or sum readout and whose ``.head`` is one ``nn.Linear``.

    Args:
        model (torch.nn.Module): graph or grid model with ``.readout`` and a linear ``.head``.
        inputs (Data or Batch or Tensor): a PyG batch, or images ``[B, C, H, W]`` for grid models.
        target (int or list of int or Tensor, optional): class per graph; the prediction when
            not given. (default: :obj:`None`)

    Returns:
        :class:`~torch_geometric.explain.Explanation` with ``node_mask`` ``[N, 1]`` (signed
        scores over the readout's nodes), ``batch``, ``target`` and ``prediction``.
    """
    _check_inputs(inputs)
    readout, head = _readout_and_head(model, "graph CAM")
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"graph CAM needs `.head` to be a single nn.Linear (got {type(head).__name__}); "
            "use grad_cam for models with an MLP head"
        )
    if not isinstance(readout, (MeanReadout, SumReadout)):
        raise ValueError(
            f"graph CAM needs a mean or sum readout (got {type(readout).__name__}); "
            "use grad_cam for other readouts"
        )
    with _explaining(model), torch.no_grad():
        hooks = ActivationsAndGradients(readout, use_input=True, keep_gradients=False)
        try:
            output = model(inputs)
        finally:
            hooks.release()
        score_fn = as_target(target, output)
        score_fn(output)  # validates the class indices against the output size
        if callable(target) and not hasattr(score_fn, "category"):
            raise TypeError("graph CAM explains a class logit: pass a class index, not a callable")
        embeddings, batch, _ = _flatten_nodes(hooks.activations, hooks, inputs)
        if embeddings.size(-1) != head.in_features:
            raise ValueError(
                f"graph CAM expected node embeddings with {head.in_features} channels (the head's "
                f"in_features), got {embeddings.size(-1)}"
            )
        category = _target_index(score_fn, output).to(embeddings.device)
        class_weights = head.weight[category]  # [num_graphs, C]
        node_scores = (embeddings * class_weights[batch]).sum(dim=-1, keepdim=True)
    nodes_per_graph = hooks.activations.size(1) if hooks.activations.dim() == 3 else None
    grid = _grid_size(inputs, nodes_per_graph) if nodes_per_graph else None
    return _explanation(inputs, node_scores, batch, category.cpu(), output, grid_size=grid)


def grad_cam(
    model: nn.Module,
    inputs: Inputs,
    target: TargetSpec = None,
    layer: nn.Module | str | None = None,
) -> Explanation:
    r"""Grad-CAM over node embeddings: per graph, channel weights are the mean gradient of the
    target score over the graph's nodes, and node scores the ReLU of the weighted embeddings.

    Args:
        model (torch.nn.Module): graph or grid model.
        inputs (Data or Batch or Tensor): a PyG batch, or images ``[B, C, H, W]`` for grid models.
        target (int or list of int or Tensor or callable, optional): what to explain; the
            prediction when not given. (default: :obj:`None`)
        layer (torch.nn.Module or str, optional): layer whose output node embeddings
            ``[N, C]`` (or ``[B, N, C]``) are used; the input of ``model.readout`` when not
            given. (default: :obj:`None`)

    Returns:
        :class:`~torch_geometric.explain.Explanation` with ``node_mask`` ``[N, 1]`` (>= 0).
    """
    _check_inputs(inputs)
    if layer is None:
        hooked, use_input = _readout_and_head(model, "grad_cam without a layer")[0], True
    else:
        hooked, use_input = resolve_layer(model, layer), False
    with _explaining(model):
        hooks, output, score_fn, _ = _hooked_forward(model, inputs, hooked, use_input, target)
    if hooks.gradients is None:
        raise RuntimeError("no gradient reached the chosen layer: does the target depend on it?")
    embeddings, batch, gradients = _flatten_nodes(hooks.activations, hooks, inputs)
    num_graphs = output.size(0)
    nodes_per_graph_count = embeddings.new_zeros(num_graphs).index_add_(
        0, batch, torch.ones_like(batch, dtype=embeddings.dtype)
    )
    gradient_sums = gradients.new_zeros(num_graphs, embeddings.size(-1))
    gradient_sums.index_add_(0, batch, gradients)
    channel_weights = gradient_sums / nodes_per_graph_count.clamp_min(1)[:, None]
    node_scores = F.relu((embeddings * channel_weights[batch]).sum(dim=-1, keepdim=True))
    nodes_per_graph = hooks.activations.size(1) if hooks.activations.dim() == 3 else None
    grid = _grid_size(inputs, nodes_per_graph) if nodes_per_graph else None
    return _explanation(
        inputs, node_scores, batch, _target_index(score_fn, output), output, grid_size=grid
    )


def _has_message_passing(model: nn.Module) -> bool:
    return any(isinstance(m, MessagePassing) for m in model.modules())


def _input_nodes(inputs: Inputs, attribution: Tensor) -> tuple[Tensor, Tensor, tuple | None]:
    """Input-level attribution as a node mask ``[N, F]`` with its graph index."""
    if isinstance(inputs, Tensor):  # images: pixels are the nodes, channels the features
        num_images, channels, height, width = attribution.shape
        node_mask = attribution.permute(0, 2, 3, 1).reshape(-1, channels)
        batch = torch.arange(num_images, device=attribution.device).repeat_interleave(
            height * width
        )
        return node_mask, batch, (height, width)
    return attribution, _graph_batch(inputs), None


def saliency(
    model: nn.Module,
    inputs: Inputs,
    target: TargetSpec = None,
    edge_mask: bool = True,
    absolute: bool = True,
) -> Explanation:
    r"""Gradient saliency :math:`|\partial y^c / \partial \mathbf{x}|` per node and feature.

    Args:
        model (torch.nn.Module): graph or grid model.
        inputs (Data or Batch or Tensor): a PyG batch, or images ``[B, C, H, W]``.
        target (int or list of int or Tensor or callable, optional): what to explain; the
            prediction when not given. (default: :obj:`None`)
        edge_mask (bool, optional): for PyG inputs and ``MessagePassing`` models, also the
            gradient with respect to a weight on every edge's message (at weight 1).
            (default: :obj:`True`)
        absolute (bool, optional): take absolute values. (default: :obj:`True`)

    Returns:
        :class:`~torch_geometric.explain.Explanation` with ``node_mask`` ``[N, F]`` and, where
        available, ``edge_mask`` ``[E]``.
    """
    _check_inputs(inputs)
    x = _features(inputs).detach().requires_grad_(True)
    use_edges = edge_mask and isinstance(inputs, BaseData) and _has_message_passing(model)
    with _explaining(model):
        if use_edges:
            edge_weight = torch.ones(inputs.edge_index.size(1), device=x.device, requires_grad=True)
            set_masks(model, edge_weight, inputs.edge_index, apply_sigmoid=False)
        output = model(_with_features(inputs, x))
        score_fn = as_target(target, output)
        wrt = [x, edge_weight] if use_edges else [x]
        grads = torch.autograd.grad(score_fn(output).sum(), wrt, allow_unused=True)
    grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt, strict=True)]
    if absolute:
        grads = [g.abs() for g in grads]
    node_mask, batch, grid = _input_nodes(inputs, grads[0])
    return _explanation(
        inputs,
        node_mask,
        batch,
        _target_index(score_fn, output),
        output.detach(),
        edge_mask=grads[1] if use_edges else None,
        grid_size=grid,
    )


def integrated_gradients(
    model: nn.Module,
    inputs: Inputs,
    target: TargetSpec = None,
    n_steps: int = 50,
    edge_mask: bool = True,
) -> Explanation:
    r"""Integrated gradients (`Sundararajan et al., 2017 <https://arxiv.org/abs/1703.01365>`_)
    with Captum, from an all-zero baseline:

    .. math::
        \mathrm{IG}_i = (x_i - x'_i) \int_0^1
        \frac{\partial y^c(\mathbf{x}' + t(\mathbf{x} - \mathbf{x}'))}{\partial x_i}\, dt

    For PyG inputs the path runs over node features and (for ``MessagePassing`` models) a
    per-edge message weight together, as PyG's ``CaptumExplainer`` does with
    ``"node_and_edge"`` masks; attributions then sum to :math:`y^c(\mathbf{x}) - y^c(\mathbf{0})`
    up to ``explanation.convergence_delta``. Graph batches take one model call per path step.

    Args:
        model (torch.nn.Module): graph or grid model.
        inputs (Data or Batch or Tensor): a PyG batch, or images ``[B, C, H, W]``.
        target (int or list of int or Tensor or callable, optional): what to explain; the
            prediction when not given. (default: :obj:`None`)
        n_steps (int, optional): quadrature points. (default: :obj:`50`)
        edge_mask (bool, optional): also attribute to edges where possible. (default: :obj:`True`)
    """
    from captum.attr import IntegratedGradients  # imported lazily: captum is slow to import

    _check_inputs(inputs)
    x = _features(inputs).detach()
    use_edges = edge_mask and isinstance(inputs, BaseData) and _has_message_passing(model)
    with _explaining(model):
        with torch.no_grad():
            output = model(inputs)
        score_fn = as_target(target, output)
        score_fn(output)  # validate class indices once, before the path integral
        if isinstance(inputs, Tensor):

            def path_scores(images: Tensor) -> Tensor:
                # captum stacks the path step-major: [step0 images, step1 images, ...]
                scores = [score_fn(model(chunk)) for chunk in images.split(inputs.size(0))]
                return torch.cat(scores)

            attribution, delta = IntegratedGradients(path_scores).attribute(
                x, baselines=torch.zeros_like(x), n_steps=n_steps, return_convergence_delta=True
            )
            edge_attribution = None
        else:
            # one "example" holding the whole batch: captum interpolates along dim 0, which must
            # not mix up nodes of different graphs
            def path_scores(node_x: Tensor, *edge_w: Tensor) -> Tensor:
                scores = []
                for step in range(node_x.size(0)):
                    if edge_w:
                        set_masks(model, edge_w[0][step], inputs.edge_index, apply_sigmoid=False)
                    scores.append(score_fn(model(_with_features(inputs, node_x[step]))).sum())
                return torch.stack(scores)

            ig_inputs: tuple[Tensor, ...] = (x[None],)
            if use_edges:
                ig_inputs += (torch.ones(1, inputs.edge_index.size(1), device=x.device),)
            attributions, delta = IntegratedGradients(path_scores).attribute(
                ig_inputs,
                baselines=tuple(torch.zeros_like(t) for t in ig_inputs),
                n_steps=n_steps,
                return_convergence_delta=True,
            )
            attribution = attributions[0][0]
            edge_attribution = attributions[1][0] if use_edges else None
    node_mask, batch, grid = _input_nodes(inputs, attribution)
    return _explanation(
        inputs,
        node_mask,
        batch,
        _target_index(score_fn, output),
        output,
        edge_mask=edge_attribution,
        grid_size=grid,
        convergence_delta=delta.detach(),
    )


# ---------------------------------------------------------------------------------------------
# back to pictures
# ---------------------------------------------------------------------------------------------
def node_mask_to_image(
    explanation: Explanation, size: tuple[int, int] | None = None, reduce: str = "sum"
) -> Tensor:
    r"""Lay a grid explanation's node mask back on its grid: ``[B, h, w]``.

    Args:
        explanation (Explanation): from a grid model (it carries ``grid_size``).
        size (tuple of int, optional): bilinearly resize to ``(H, W)``, e.g. the input size.
            (default: :obj:`None`)
        reduce (str, optional): how to merge a ``[N, F]`` mask's features: ``"sum"``,
            ``"mean"`` or ``"max"``. (default: :obj:`"sum"`)
    """
    grid_size = getattr(explanation, "grid_size", None)
    if grid_size is None:
        raise ValueError(
            "expected an explanation of a grid model (with 'grid_size'); molecule explanations "
            "are drawn with gconv.explain.viz.draw_molecule_importance"
        )
    if reduce not in ("sum", "mean", "max"):
        raise ValueError(f"reduce must be 'sum', 'mean' or 'max', got '{reduce}'")
    mask = explanation.node_mask
    mask = mask.amax(dim=-1) if reduce == "max" else getattr(mask, reduce)(dim=-1)
    h, w = grid_size
    maps = mask.reshape(-1, h, w)
    if size is not None and tuple(size) != (h, w):
        maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)
        maps = maps[:, 0]
    return maps
