r"""Model rewriting: a CNN into the equal grid GNN and back, with copied weights.

:func:`cnn_to_grid_gnn` reads a CNN's layers in registration order and converts them one by one
through a table of per-layer converters (``Conv2d`` -> :class:`~gconv.layers.GridConv`,
``BatchNorm2d`` -> :class:`~gconv.models.NodeBatchNorm`, pools -> grid pools, a ResNet
:class:`~gconv.models.BasicBlock` -> :class:`~gconv.models.GridResidualBlock`, pointwise layers
as they are; then the readout table for the layer that ends the feature extractor), keeping the
CNN's module names, into a :class:`~gconv.models.GridNet`; a probe input then checks that the
CNN's ``forward`` runs just those layers in that order and that the result gives the CNN's
outputs (``_trace_cnn``, ``_compare``). :func:`grid_gnn_to_cnn` is the inverse table and returns
the :class:`~gconv.models.CNN` a :class:`~gconv.models.GridGNN` was built from, or a
:class:`~gconv.models.ConvNet` for any other ``GridNet``; CNN -> grid -> CNN is the identity on
state dicts.

The rewriting lives apart from the models it converts between (as PyG keeps
``to_hetero_transformer.py`` apart from its model files): :mod:`gconv.models.grid` holds the grid
models, :mod:`gconv.models.cnn` the CNNs, this module only the tables between them.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from gconv._utils import module_device
from gconv.data.grid import images_to_nodes
from gconv.layers.activation import ACTIVATIONS
from gconv.layers.grid import GridAvgPool, GridConv, GridMaxPool
from gconv.layers.readout import MaxReadout, MeanReadout
from gconv.models._utils import leaves, named_leaves
from gconv.models.cnn import CNN, BasicBlock, ConvNet
from gconv.models.grid import GridGNN, GridNet, GridResidualBlock, NodeBatchNorm
from gconv.summary import pool_output_size

__all__ = ["cnn_to_grid_gnn", "grid_gnn_to_cnn"]

_POINTWISE = (*ACTIVATIONS.values(), nn.Identity, nn.Dropout)


def _pool_args(pool: nn.Module) -> tuple[int, int] | None:
    """(kernel, stride) of a square, unpadded, floor-mode 2-D pool, else None."""

    def square(value: int | tuple[int, ...]) -> int | None:
        if isinstance(value, int):
            return value
        return value[0] if len(set(value)) == 1 else None

    kernel, stride = square(pool.kernel_size), square(pool.stride or pool.kernel_size)
    if kernel is None or stride is None or pool.ceil_mode or square(pool.padding) != 0:
        return None
    if isinstance(pool, nn.MaxPool2d) and square(pool.dilation) != 1:
        return None
    if isinstance(pool, nn.AvgPool2d) and pool.divisor_override is not None:
        return None
    return kernel, stride


class _FeatureMap:
    """What the converters track: the channels and size of the CNN's current feature map."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        self.channels, self.height, self.width = channels, height, width

    def pool(self, kernel_size: int, stride: int) -> None:
        """The map after an unpadded, floor-mode pool (:func:`gconv.summary.pool_output_size`)."""
        try:
            self.height, self.width = pool_output_size(
                (self.height, self.width), kernel_size, stride
            )
        except ValueError as error:
            raise _CannotConvert(str(error)) from None


class _CannotConvert(ValueError):
    """A layer with no grid equivalent; cnn_to_grid_gnn prefixes the layer's name."""


# ---- feature converters: one per CNN layer type, each (layer, feature map) -> grid layer


def _convert_conv(conv: nn.Conv2d, fmap: _FeatureMap) -> nn.Module:
    try:
        grid_conv = GridConv.from_conv2d(conv)
    except ValueError as error:
        raise _CannotConvert(str(error)) from None
    fmap.channels = conv.out_channels
    return grid_conv


def _convert_batch_norm(bn: nn.BatchNorm2d, fmap: _FeatureMap) -> nn.Module:
    norm = NodeBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    norm.load_state_dict(bn.state_dict())
    return norm


def _convert_pool(pool: nn.Module, fmap: _FeatureMap) -> nn.Module:
    pool_args = _pool_args(pool)
    if pool_args is None:
        raise _CannotConvert(
            "only square pools without padding, dilation or ceil_mode have a grid equivalent"
        )
    kernel, stride = pool_args
    fmap.pool(kernel, stride)
    return (GridMaxPool if isinstance(pool, nn.MaxPool2d) else GridAvgPool)(kernel, stride)


def _convert_pointwise(layer: nn.Module, fmap: _FeatureMap) -> nn.Module:
    return copy.deepcopy(layer)


def _convert_basic_block(block: BasicBlock, fmap: _FeatureMap) -> nn.Module:
    in_channels = fmap.channels

    def convert(layer: nn.Module | None) -> nn.Module | None:
        return None if layer is None else _convert_feature_layer(layer, fmap)

    branch = [convert(block.conv1), convert(block.bn1), convert(block.act1)]
    branch += [convert(block.conv2), convert(block.bn2)]
    out_channels = fmap.channels
    fmap.channels = in_channels  # the shortcut starts from the block's input again
    shortcut = nn.Sequential(*(convert(layer) for layer in leaves(block.shortcut)))
    if isinstance(block.shortcut, nn.Identity):
        shortcut = nn.Identity()
    fmap.channels = out_channels
    return GridResidualBlock(*branch, shortcut, convert(block.act2))


_FEATURE_CONVERTERS: dict[type[nn.Module], Callable[[nn.Module, _FeatureMap], nn.Module]] = {
    nn.Conv2d: _convert_conv,
    nn.BatchNorm2d: _convert_batch_norm,
    nn.MaxPool2d: _convert_pool,
    nn.AvgPool2d: _convert_pool,
    BasicBlock: _convert_basic_block,
    **dict.fromkeys(_POINTWISE, _convert_pointwise),
}

# ---- readout converters: the layer that ends the feature extractor -> a graph readout


def _readout_global_pool(pool: nn.Module, fmap: _FeatureMap) -> nn.Module:
    if pool.output_size not in (1, (1, 1)):
        raise _CannotConvert("only global pooling (output_size=1) is a graph readout")
    return MeanReadout() if isinstance(pool, nn.AdaptiveAvgPool2d) else MaxReadout()


def _readout_flatten(flatten: nn.Flatten, fmap: _FeatureMap) -> nn.Module:
    if flatten.start_dim != 1:
        raise _CannotConvert("only Flatten(start_dim=1) of the feature map is a readout")
    return nn.Flatten(start_dim=1)


_READOUT_CONVERTERS: dict[type[nn.Module], Callable[[nn.Module, _FeatureMap], nn.Module]] = {
    nn.AdaptiveAvgPool2d: _readout_global_pool,
    nn.AdaptiveMaxPool2d: _readout_global_pool,
    nn.Flatten: _readout_flatten,
}


def _lookup(table: dict, layer: nn.Module) -> Callable | None:
    """The table entry for the layer's class or its nearest base class."""
    return next((table[cls] for cls in type(layer).__mro__ if cls in table), None)


def _convert_feature_layer(layer: nn.Module, fmap: _FeatureMap) -> nn.Module:
    converter = _lookup(_FEATURE_CONVERTERS, layer)
    if converter is None:
        raise _CannotConvert(
            "no grid graph equivalent; supported are "
            + ", ".join(cls.__name__ for cls in (*_FEATURE_CONVERTERS, *_READOUT_CONVERTERS))
            + " and Linear"
        )
    return converter(layer, fmap)


def _units(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Leaf layers and convertible blocks (a BasicBlock is one unit), in registration order."""
    children = list(module.named_children())
    if not children or (prefix and type(module) in _FEATURE_CONVERTERS):
        yield prefix, module
        return
    for name, child in children:
        yield from _units(child, f"{prefix}.{name}" if prefix else name)


def _nest(named_layers: list[tuple[str, nn.Module]]) -> nn.Sequential:
    """Rebuild nested ``nn.Sequential`` containers from dotted names, so the grid model's
    parameters keep the CNN's names (``features.0.conv.weight``)."""
    root = nn.Sequential()
    for name, layer in named_layers:
        *parents, leaf = name.split(".")
        container = root
        for part in parents:
            if part not in container._modules:
                container.add_module(part, nn.Sequential())
            container = container._modules[part]
        container.add_module(leaf, layer)
    # a CNN keeps its extractor under one child (``features``): that child is the grid features
    if len(root) == 1 and isinstance(root[0], nn.Sequential):
        return root[0]
    return root


# ---- the self-check: the CNN's forward must be its registered layers, each run once, in order

_PROBE_BATCH = 2
_PROBE_SEED = 0
_PROBE_RTOL = 1e-6  # of the output's scale, in float64 (legitimate differences are ~1e-15)
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


def _probe_copy(module: nn.Module) -> tuple[nn.Module, dict[int, object]]:
    """An eval-mode, float64, CPU copy of ``module`` without the user's forward hooks, and the
    deepcopy memo (``id(original) -> copy``). The tensors are copied straight to the CPU: a GPU
    model is not duplicated on its device, and TF32 or low precision cannot blur the check."""
    memo: dict[int, object] = {}
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        dtype = torch.float64 if tensor.is_floating_point() else tensor.dtype
        copied = tensor.detach().to("cpu", dtype, copy=True)
        if isinstance(tensor, nn.Parameter):
            copied = nn.Parameter(copied, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = copied
    probe_module = copy.deepcopy(module, memo).eval()
    for layer in probe_module.modules():
        for hooks in _HOOK_DICTS:
            getattr(layer, hooks, {}).clear()
    return probe_module, memo


def _max_difference(a: Tensor, b: Tensor) -> float:
    """``max |a - b|``, NaN where both are NaN (or equal infinities) counting as equal."""
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    same = (a == b) | (a.isnan() & b.isnan())
    difference = torch.where(same, torch.zeros_like(a), (a - b).abs())
    return float(difference.nan_to_num(nan=math.inf).max())


def _scale(x: Tensor) -> float:
    """The largest finite magnitude in ``x`` (at least 1): what the tolerance is relative to."""
    return max(1.0, float(x.abs().nan_to_num(nan=0.0, posinf=0.0, neginf=0.0).max()))


def _change(returned: Tensor, received: object, before: str, verb: str = "receives") -> str | None:
    """How the tensor a layer ``received`` differs from the one ``before`` ``returned``, or None
    if it is that tensor (a flatten, as ``torch.flatten(x, 1)``, changes no values)."""
    if not isinstance(received, Tensor):
        return f"{verb} {type(received).__name__}, not a tensor"
    if received.shape != returned.shape:
        flattened = (returned.flatten(dim) for dim in range(1, returned.dim()))
        if any(_max_difference(flat, received) == 0 for flat in flattened):
            return None
        return f"{verb} shape {list(received.shape)} where {before} returned {list(returned.shape)}"
    difference = _max_difference(returned, received)
    if difference == 0:
        return None
    return f"{verb} values that differ from {before}'s output by up to {difference:.3g}"


class _Trace:
    """Forward hooks on a CNN's units (its leaf layers and BasicBlocks): how often and in which
    order each runs, its (first) output, and the first place where the forward changes the tensor
    between two units (the input before the first, the output after the last)."""

    def __init__(self, units: list[tuple[str, nn.Module]], probe: Tensor) -> None:
        self.labels = {name: f"{name} ({unit})" for name, unit in units}
        self.calls = dict.fromkeys(self.labels, 0)
        self.order: list[str] = []
        self.outputs: dict[str, Tensor] = {}
        self.previous: tuple[str | None, Tensor] = (None, probe)
        self.gap: str | None = None  # the first change between two units, in words
        self.output: Tensor | None = None  # the CNN's
        for name, unit in units:
            unit.register_forward_pre_hook(functools.partial(self._before, name))
            unit.register_forward_hook(functools.partial(self._after, name))

    def _before(self, name: str, module: nn.Module, args: tuple) -> None:
        if self.gap is not None or self.calls[name]:
            return
        before, returned = self.previous
        change = _change(returned, args[0] if args else None, before or "the probe input")
        if change is not None:
            where = "before" if before is None else f"between {self.labels[before]} and"
            self.gap = f"{where} {self.labels[name]} it changes the tensor: {name} {change}"

    def _after(self, name: str, module: nn.Module, args: tuple, output: object) -> None:
        self.calls[name] += 1
        if self.calls[name] == 1:
            self.order.append(name)
            if isinstance(output, Tensor):
                self.outputs[name] = output.detach().clone()
                self.previous = (name, self.outputs[name])

    def finish(self, output: Tensor) -> None:
        """Records the CNN's output, which must be the last unit's."""
        self.output = output
        last, returned = self.previous
        if self.gap is None and last is not None:
            change = _change(returned, output, last, verb="returns")
            if change is not None:
                self.gap = f"after {self.labels[last]} it changes the tensor: the CNN {change}"

    def structure_error(self) -> str | None:
        """A unit never called or called more than once, or called out of registration order."""
        for name in self.labels:
            if self.calls[name] != 1:
                how = (
                    "never calls it"
                    if not self.calls[name]
                    else f"calls it {self.calls[name]} times"
                )
                return (
                    f"cannot convert {self.labels[name]}: the CNN's forward {how}, but the grid "
                    "model runs every registered layer once, in registration order"
                    + (" (register one module per use)" if self.calls[name] else " (remove it)")
                )
        for called, expected in zip(self.order, self.labels, strict=True):
            if called != expected:
                return (
                    f"converts the layers in registration order, but the CNN's forward calls "
                    f"{self.labels[called]} before {self.labels[expected]}, which is registered "
                    "first; register the layers in the order forward calls them"
                )
        return None


def _trace_cnn(cnn: nn.Module, in_shape: tuple[int, ...]) -> tuple[_Trace, Tensor, str | None]:
    """Runs an eval-mode float64 copy of the CNN on one small random probe (its own generator:
    the global random state is untouched) under a :class:`_Trace`; returns the trace, the probe
    and the error the CNN's forward raised, if it did."""
    probe_cnn, _ = _probe_copy(cnn)
    generator = torch.Generator().manual_seed(_PROBE_SEED)
    probe = torch.randn(_PROBE_BATCH, *in_shape, generator=generator, dtype=torch.float64)
    trace = _Trace(list(_units(probe_cnn)), probe)
    try:
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            output = probe_cnn(probe)
        if not isinstance(output, Tensor):
            raise TypeError(f"the CNN returned {type(output).__name__}, not a tensor")
    except Exception as error:  # noqa: BLE001 -- reported after the layer checks
        return trace, probe, f"{type(error).__name__}: {error}"
    trace.finish(output)
    return trace, probe, None


def _compare(
    trace: _Trace, probe: Tensor, model: GridNet, features: list[tuple[str, nn.Module]]
) -> str | None:
    """Runs a float64 copy of the converted model on the probe; None if it gives the CNN's
    output, else what differs: the tensor changed between two CNN layers, or the first feature
    layer whose grid conversion computes something else, or the readout and head."""
    probe_model, memo = _probe_copy(model)
    grid_outputs: dict[str, Tensor] = {}
    for name, layer in features:

        def keep(module: nn.Module, args: tuple, output: object, name: str = name) -> None:
            # a copy: a following in-place activation must not overwrite it
            grid_outputs[name] = (output[0] if isinstance(output, tuple) else output).clone()

        memo[id(layer)].register_forward_hook(keep)
    expected = trace.output
    try:
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            output = probe_model(probe)
    except Exception as error:  # noqa: BLE001 -- a wrong conversion, reported as such
        difference = f"the converted model fails on a probe input ({type(error).__name__}: {error})"
    else:
        measured = _max_difference(output, expected)
        if measured <= _PROBE_RTOL * _scale(expected):
            return None
        difference = f"the converted model's outputs differ by {measured:.3g} on a probe input"
        if output.shape != expected.shape:
            difference = (
                f"the converted model's outputs have shape {list(output.shape)} on a probe "
                f"input, the CNN's {list(expected.shape)}"
            )
    if trace.gap is not None:
        return (
            f"{difference}; the CNN's forward does something its registered layers do not: "
            f"{trace.gap} (a functional op such as F.max_pool2d or torch.tanh, or a skip "
            "connection; use layer modules, and gconv.models.BasicBlock for residual sums)"
        )
    for name, _ in features:
        cnn_output, grid_output = trace.outputs.get(name), grid_outputs.get(name)
        if cnn_output is None or grid_output is None or cnn_output.dim() != 4:
            continue
        layer_difference = _max_difference(images_to_nodes(cnn_output), grid_output)
        if layer_difference > _PROBE_RTOL * _scale(cnn_output):
            return (
                f"{difference}; the first layer that differs is {trace.labels[name]}: its output "
                f"differs from its grid conversion's by {layer_difference:.3g} (a layer whose "
                "forward is not its class's, or a layer the converter misreads)"
            )
    return (
        f"{difference}; the feature layers agree, so the readout or head computes something "
        "else (does the CNN's forward reshape or reorder the features before its Linear layers?)"
    )


def cnn_to_grid_gnn(cnn: nn.Module) -> GridNet:
    r"""Converts a CNN into the equivalent grid GNN, with copied weights.

    The CNN's layers are read in registration order (as ``nn.Sequential`` runs them; true for
    :class:`~gconv.models.CNN`, whose ``features`` precede its ``head``) and converted one by one
    through a table of per-layer converters (``_FEATURE_CONVERTERS``, then
    ``_READOUT_CONVERTERS`` for the layer that ends the feature extractor):

    ============================================  =============================================
    CNN layer                                     grid GNN layer
    ============================================  =============================================
    ``Conv2d`` (odd k, stride 1, padding k // 2)  :meth:`GridConv.from_conv2d <gconv.layers.GridConv.from_conv2d>`
    ``BatchNorm2d``                               :class:`~gconv.models.NodeBatchNorm` (statistics copied)
    ``MaxPool2d`` / ``AvgPool2d`` (no padding)    :class:`~gconv.layers.GridMaxPool` / ``GridAvgPool``
    :class:`~gconv.models.cnn.BasicBlock`         :class:`~gconv.models.GridResidualBlock` (its layers converted)
    activations, ``Dropout``, ``Identity``        the same module
    ``AdaptiveAvgPool2d(1)`` (+ ``Flatten``)      readout :class:`~gconv.layers.MeanReadout`
    ``AdaptiveMaxPool2d(1)`` (+ ``Flatten``)      readout :class:`~gconv.layers.MaxReadout`
    ``Flatten`` of the feature map                readout ``nn.Flatten`` (node-major), the next
                                                  ``Linear``'s columns permuted from the CNN's
                                                  channel-major order
    ``Linear``, activations, ``Dropout`` after    the head
    ============================================  =============================================

    The feature layers keep their names (``features.0.conv``), so the grid model's state dict
    matches the CNN's there. In eval mode the result gives the CNN's outputs to float tolerance.
    The CNN's input shape is read from ``cnn.in_shape`` (as on :class:`~gconv.models.CNN`).

    **The conversion checks itself.** Reading the registered layers is only right if the CNN's
    ``forward`` runs exactly those layers, each once, in registration order, passing each one's
    output unchanged to the next. So the CNN is first run on a probe (two random images of
    ``in_shape`` from a fixed private generator, on eval-mode float64 CPU copies of the model,
    without its forward hooks, under ``torch.no_grad``: the CNN, its mode and the global random
    state are left alone) with hooks that record the calls of its layers; then the converted model
    is run on the same probe, and its outputs must equal the CNN's (to ``1e-6`` of their scale).
    The check costs a few milliseconds (about 7 ms for :func:`~gconv.models.lecture_cnn` on one
    CPU thread). It refuses, naming the layer or the place in ``forward``:

    * a registered layer that ``forward`` never calls, or calls more than once;
    * layers called in another order than registered;
    * a tensor changed between two layers by something that is not a registered layer (a
      functional ``F.max_pool2d`` or ``torch.tanh``, a skip connection ``act(conv(x)) + x``);
      a ``torch.flatten(x, 1)`` changes no values and is accepted;
    * a layer whose output differs from its conversion's (a ``Conv2d`` subclass with its own
      ``forward``), or any other difference of the outputs.

    Raises:
        ValueError: for a layer with no grid equivalent, naming it (e.g. a strided ``Conv2d``,
            ``Dropout2d``, an ``AdaptiveAvgPool2d(2)``); for a CNN whose ``forward`` does
            something its registered layers do not, as above (or that fails on the probe).
    """
    in_shape = getattr(cnn, "in_shape", None)
    if in_shape is None or len(in_shape) != 3:
        raise ValueError(
            "cnn_to_grid_gnn needs the CNN's input shape as cnn.in_shape = (C, H, W), as on "
            f"gconv.models.CNN; got {in_shape!r}"
        )
    # the CNN's forward, traced on a probe: each registered layer called once, in order?
    trace, probe, failure = _trace_cnn(cnn, in_shape)
    problem = trace.structure_error() if failure is None else None
    if problem is not None:
        raise ValueError(f"cnn_to_grid_gnn {problem}")

    fmap = _FeatureMap(*in_shape)
    features: list[tuple[str, nn.Module]] = []
    readout_layer: nn.Module | None = None
    flatten_permute: tuple[int, int] | None = None  # (C, N) of a flattened feature map
    head: list[nn.Module] = []

    for name, layer in _units(cnn):
        where = f"{name} ({layer})"
        try:
            if readout_layer is None:
                readout_converter = _lookup(_READOUT_CONVERTERS, layer)
                if readout_converter is None:
                    features.append((name, _convert_feature_layer(layer, fmap)))
                    continue
                readout_layer = readout_converter(layer, fmap)
                if isinstance(readout_layer, nn.Flatten):
                    flatten_permute = (fmap.channels, fmap.height * fmap.width)
            elif isinstance(layer, nn.Flatten) and not head and flatten_permute is None:
                continue  # the flatten after a global pool: readouts already return [B, C]
            elif isinstance(layer, nn.Linear):
                linear = copy.deepcopy(layer)
                if flatten_permute is not None and not any(isinstance(m, nn.Linear) for m in head):
                    # CNN flatten is channel-major (c * N + n); node features flatten node-major
                    # (n * C + c): permute the first Linear's input columns accordingly
                    feature_channels, num_nodes = flatten_permute
                    weight = layer.weight.detach().view(-1, feature_channels, num_nodes)
                    with torch.no_grad():
                        linear.weight.copy_(weight.transpose(1, 2).reshape(layer.weight.shape))
                head.append(linear)
            elif type(layer) in _POINTWISE:
                head.append(copy.deepcopy(layer))
            else:
                raise _CannotConvert(
                    "after the readout the head may hold Linear, activations and Dropout"
                )
        except _CannotConvert as error:
            raise ValueError(f"cnn_to_grid_gnn cannot convert {where}: {error}") from None

    if readout_layer is None or not any(isinstance(m, nn.Linear) for m in head):
        raise ValueError(
            "cnn_to_grid_gnn expected a CNN ending in a global pool or Flatten followed by "
            f"Linear layers; found readout {readout_layer} and head {head}"
        )
    # a head of (Dropout ->) one Linear stays an nn.Linear, so the grid model is CAM-ready too
    head_dropout = head.pop(0) if isinstance(head[0], nn.Dropout) and len(head) == 2 else None
    head_module = head[0] if len(head) == 1 else nn.Sequential(*head)
    model = GridNet(in_shape, _nest(features), readout_layer, head_module, head_dropout)
    # the converted model on the same probe: the CNN's outputs, else the first thing that differs
    if failure is not None:
        raise ValueError(
            "cnn_to_grid_gnn cannot check the conversion: the CNN's forward fails on a probe "
            f"input of shape {list(probe.shape)} ({failure})"
        )
    problem = _compare(trace, probe, model, features)
    if problem is not None:
        raise ValueError(f"cnn_to_grid_gnn: {problem}")
    model.train(cnn.training)
    return model.to(module_device(cnn))


# ---- the way back: one converter per grid layer type, each (layer, feature map) -> CNN layer


def _conv_from_grid(conv: GridConv, fmap: _FeatureMap) -> nn.Module:
    fmap.channels = conv.out_channels
    return conv.to_conv2d()


def _batch_norm_from_grid(norm: NodeBatchNorm, fmap: _FeatureMap) -> nn.Module:
    bn = nn.BatchNorm2d(
        norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats
    )
    # copies, assigned: the statistics keep their device and dtype and share nothing
    bn.load_state_dict({k: v.clone() for k, v in norm.state_dict().items()}, assign=True)
    return bn


def _pool_from_grid(pool: GridMaxPool | GridAvgPool, fmap: _FeatureMap) -> nn.Module:
    fmap.pool(pool.kernel_size, pool.stride)
    cls = nn.MaxPool2d if isinstance(pool, GridMaxPool) else nn.AvgPool2d
    return cls(pool.kernel_size, pool.stride)


def _basic_block_from_grid(block: GridResidualBlock, fmap: _FeatureMap) -> nn.Module:
    in_channels = fmap.channels

    def convert(layer: nn.Module | None) -> nn.Module | None:
        return None if layer is None else _convert_grid_layer(layer, fmap)

    layers = {"conv1": convert(block.conv1), "bn1": convert(block.bn1), "act1": convert(block.act1)}
    layers.update(conv2=convert(block.conv2), bn2=convert(block.bn2))
    out_channels = fmap.channels
    fmap.channels = in_channels  # the shortcut starts from the block's input again
    if isinstance(block.shortcut, nn.Identity):
        layers["shortcut"] = nn.Identity()
    else:
        layers["shortcut"] = nn.Sequential(*(convert(layer) for layer in leaves(block.shortcut)))
    fmap.channels = out_channels
    layers["act2"] = convert(block.act2)
    # a BasicBlock of the right shape (its own initialisation drawn under grid_gnn_to_cnn's
    # forked random state), its layers then replaced by the converted ones
    cnn_block = BasicBlock(
        in_channels, out_channels, block.conv1.kernel_size, batch_norm=block.bn1 is not None
    )
    for name, layer in layers.items():
        setattr(cnn_block, name, layer)
    return cnn_block


_CNN_CONVERTERS: dict[type[nn.Module], Callable[[nn.Module, _FeatureMap], nn.Module]] = {
    GridConv: _conv_from_grid,
    NodeBatchNorm: _batch_norm_from_grid,
    GridMaxPool: _pool_from_grid,
    GridAvgPool: _pool_from_grid,
    GridResidualBlock: _basic_block_from_grid,
    **dict.fromkeys(_POINTWISE, _convert_pointwise),
}
# readouts with a CNN equivalent: a global pool over the feature map (+ Flatten), or Flatten
_CNN_READOUTS: dict[type[nn.Module], Callable[[], list[nn.Module]]] = {
    MeanReadout: lambda: [nn.AdaptiveAvgPool2d(1), nn.Flatten()],
    MaxReadout: lambda: [nn.AdaptiveMaxPool2d(1), nn.Flatten()],
    nn.Flatten: lambda: [nn.Flatten()],
}


def _convert_grid_layer(layer: nn.Module, fmap: _FeatureMap) -> nn.Module:
    converter = _CNN_CONVERTERS.get(type(layer))
    if converter is None:
        supported = ", ".join(cls.__name__ for cls in _CNN_CONVERTERS)
        raise _CannotConvert(f"no CNN equivalent; supported are {supported}")
    return converter(layer, fmap)


def grid_gnn_to_cnn(model: GridNet) -> nn.Module:
    r"""Converts a grid GNN back into the equivalent CNN, with copied weights: the inverse of
    :func:`cnn_to_grid_gnn`.

    ============================================  =============================================
    grid GNN layer                                CNN layer
    ============================================  =============================================
    :class:`~gconv.layers.GridConv`               :meth:`GridConv.to_conv2d <gconv.layers.GridConv.to_conv2d>`
    :class:`~gconv.models.NodeBatchNorm`                        ``BatchNorm2d`` (statistics copied)
    ``GridMaxPool`` / ``GridAvgPool``             ``MaxPool2d`` / ``AvgPool2d``
    :class:`~gconv.models.GridResidualBlock`                    :class:`~gconv.models.cnn.BasicBlock`
    activations, ``Dropout``, ``Identity``        the same module
    readout :class:`~gconv.layers.MeanReadout`    ``AdaptiveAvgPool2d(1)`` + ``Flatten``
    readout :class:`~gconv.layers.MaxReadout`     ``AdaptiveMaxPool2d(1)`` + ``Flatten``
    readout ``nn.Flatten`` (node-major)           ``Flatten`` (channel-major), the first
                                                  ``Linear``'s columns permuted to match
    ``dropout`` and ``head``                      the same modules after the readout
    ============================================  =============================================

    A :class:`~gconv.models.GridGNN` comes back as the :class:`~gconv.models.CNN` it was built from (its
    arguments, the trained weights; unless its layers were replaced since); any other
    :class:`~gconv.models.GridNet` as a
    :class:`~gconv.models.cnn.ConvNet` whose ``features`` keep the grid model's names, so
    ``grid_gnn_to_cnn(cnn_to_grid_gnn(cnn))`` has the state dict of a :class:`~gconv.models.CNN`
    ``cnn``. In eval mode the result gives the grid GNN's outputs to float tolerance. The global
    random state is left as it was.

    Raises:
        TypeError: for a model that is not a :class:`~gconv.models.GridNet` (the isotropic
            :class:`~gconv.models.GridGCN` has no CNN equivalent).
        ValueError: for a layer with no CNN equivalent, naming it (e.g. a
            :class:`~gconv.layers.GridGCNConv`, a :class:`~gconv.layers.MeanMaxReadout`).
    """
    if not isinstance(model, GridNet):
        raise TypeError(
            f"grid_gnn_to_cnn expected a GridNet (from cnn_to_grid_gnn or GridGNN), got "
            f"{type(model).__name__}"
        )
    fmap = _FeatureMap(*model.in_shape)
    with torch.random.fork_rng(devices=[]):  # the new layers' own initialisation draws numbers
        named = []
        for name, layer in named_leaves(model.features, "features"):
            try:
                named.append((name, _convert_grid_layer(layer, fmap)))
            except _CannotConvert as error:
                raise ValueError(
                    f"grid_gnn_to_cnn cannot convert {name} ({layer}): {error}"
                ) from None
        features = _nest(named) if isinstance(model.features, nn.Sequential) else named[0][1]
        cnn: nn.Module = ConvNet(model.in_shape, features, _head_from_grid(model, fmap))
        if isinstance(model, GridGNN):
            args, kwargs = model.cnn_arguments
            built = CNN(*args, **kwargs).to(next(model.parameters()).dtype)
            try:
                built.load_state_dict(cnn.state_dict())
                cnn = built
            except RuntimeError:  # layers changed since it was built: the ConvNet mirrors them
                pass
    cnn.train(model.training)
    return cnn.to(module_device(model))


def _head_from_grid(model: GridNet, fmap: _FeatureMap) -> nn.Sequential:
    """The CNN head: the readout's CNN equivalent, then the grid model's dropout and head."""
    make_readout = _CNN_READOUTS.get(type(model.readout))
    if make_readout is None or getattr(model.readout, "start_dim", 1) != 1:
        raise ValueError(
            f"grid_gnn_to_cnn cannot convert the readout {model.readout}: only MeanReadout, "
            "MaxReadout and Flatten(start_dim=1) have a CNN equivalent"
        )
    layers = make_readout()
    if not isinstance(model.dropout, nn.Identity):
        layers.append(copy.deepcopy(model.dropout))
    head = [copy.deepcopy(layer) for layer in leaves(model.head)]
    linears = [layer for layer in head if isinstance(layer, nn.Linear)]
    if isinstance(model.readout, nn.Flatten) and linears:
        # node features flatten node-major (n * C + c), a CNN's maps channel-major (c * N + n):
        # permute the first Linear's input columns back
        first, channels, nodes = linears[0], fmap.channels, fmap.height * fmap.width
        if first.in_features != channels * nodes:
            raise ValueError(
                f"grid_gnn_to_cnn: the head's first Linear takes {first.in_features} features, "
                f"but the flattened {channels} x {fmap.height} x {fmap.width} feature map has "
                f"{channels * nodes}"
            )
        weight = first.weight.detach().view(-1, nodes, channels)
        with torch.no_grad():
            first.weight.copy_(weight.transpose(1, 2).reshape(first.weight.shape))
    return nn.Sequential(*layers, *head)
