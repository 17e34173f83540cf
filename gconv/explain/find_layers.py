r"""The target layer of a CAM method, given by name or found by execution order (pytorch-grad-cam's
``utils/find_layers.py``, torchcam's ``locate_candidate_layer``).

**Target layer by execution order.** Without ``target_layer``, a trial forward (no gradients)
records every module call in order, with what went in and what came out. The target is the last
*node-level* tensor of that forward: a feature map ``[B, C, h, w]`` (global pools excluded) or grid
nodes ``[B, N, C]`` for image inputs, node embeddings ``[N, C]`` for graph inputs. If that tensor
was some module's output, that module is hooked; if it only appears as the input of a later module
(a readout fed by a residual sum), that module's input is hooked. Containers that are never
called (a ``ModuleList``) never appear. Errors list the candidate layers by name.

**The readout.** :func:`find_readout` names the module that pools node embeddings into one vector
per graph (a :class:`gconv.layers.Readout` or a PyG ``Aggregation``): ``model.readout`` where the
model has one, else the one such module it holds. The readout decomposition and the
empty-molecule baseline of integrated gradients work on it.

Grid nodes ``[B, N, C]`` are recognised with the ``grid_size`` that the grid layers pass around
(a grid pool returns it), so every image size works, odd ones included.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gconv._utils import evaluating
from gconv.explain._utils import GridTracker, Inputs, check_inputs, first_tensor, is_node_level

__all__ = [
    "resolve_layer",
    "resolve_named_layer",
    "candidate_layers",
    "find_target_layer",
    "find_readout",
]

# global pools read a feature map out to one vector: their output is not a feature map
_GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """Return the submodule ``layer`` (a module of ``model``, or its dotted name such as
    ``"features.1"``); an unknown name raises an error listing the closest names."""
    return resolve_named_layer(model, layer)[1]


def resolve_named_layer(model: nn.Module, layer: nn.Module | str) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` of ``layer``, given as a submodule of ``model`` or its name; see
    :func:`resolve_layer`."""
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
    tracker = GridTracker(model)  # registered first: its hooks run before the recorders
    handles = []

    def recorder(name: str, module: nn.Module):
        def before(mod, args, kwargs):
            tensor = first_tensor(args) if args else kwargs.get("x")
            if tensor is raw_input or any(tensor is pooled for pooled in pooled_outputs):
                return  # a global pool's [B, C, 1, 1] output: read out, not a feature map
            if is_node_level(tensor, inputs, tracker.current):
                events.append(_Event(name, module, True, tensor))

        def after(mod, args, output):
            tensor = first_tensor(output)
            if isinstance(module, _GLOBAL_POOLS):
                pooled_outputs.append(tensor)
                return
            if is_node_level(tensor, inputs, tracker.current):
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
    check_inputs(inputs)
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
    check_inputs(inputs)
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


# ---------------------------------------------------------------------------------------------
# the readout
# ---------------------------------------------------------------------------------------------
def _is_readout(module: nn.Module) -> bool:
    from torch_geometric.nn.aggr import Aggregation

    from gconv.layers.readout import Readout

    return isinstance(module, (Readout, Aggregation))


def find_readout(model: nn.Module, readout: nn.Module | str | None = None) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` of the readout of a graph model: ``readout`` when given (a module
    or its name), else ``model.readout`` when that is a module, else the one module of ``model``
    that is a :class:`gconv.layers.Readout` or a PyG ``Aggregation`` (those nested in another,
    such as the ``SumAggregation`` inside :class:`~gconv.layers.SumReadout`, do not count).

    Raises:
        ValueError: when the model has no readout or several, naming them.
    """
    if readout is not None:
        return resolve_named_layer(model, readout)
    own = getattr(model, "readout", None)
    if isinstance(own, nn.Module):
        return resolve_named_layer(model, own)
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if _is_readout(module) and not any(name.startswith(f"{outer}.") for outer, _ in found):
            found.append((name, module))
    if len(found) != 1:
        what = "no readout" if not found else f"{len(found)} readouts {[n for n, _ in found]}"
        raise ValueError(
            f"{type(model).__name__} has {what} (a gconv.layers.Readout or a PyG "
            "Aggregation that pools node embeddings per graph); pass readout= to name it"
        )
    return found[0]
