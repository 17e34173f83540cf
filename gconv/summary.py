r"""Model summaries and the conv / pool output-size formula.

:func:`summary` runs one forward pass with hooks on every module and prints a per-layer table
(name, type, output shape, parameter count, trainable) with totals, like torchinfo's ``summary`` or
Keras' ``model.summary()``::

    >>> from gconv.models import lecture_cnn
    >>> summary(lecture_cnn(), (1, 28, 28), print_table=False).total_params
    421642

:func:`conv_output_size` and :func:`pool_output_size` give the spatial size after a convolution or
pooling layer without running it (one formula and one set of checks for both); gconv's models use
them for their own size checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from gconv._utils import evaluating, module_device, move_to

__all__ = ["summary", "ModelSummary", "LayerSummary", "conv_output_size", "pool_output_size"]

IntOrTuple = int | tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# Output-size formulas
# ---------------------------------------------------------------------------------------------


def _broadcast(name: str, **values: int | Sequence[int]) -> tuple[list[tuple[int, ...]], bool]:
    """Turn int-or-tuple arguments into equal-length tuples; also say whether any was a tuple."""
    lengths = {len(v) for v in values.values() if not isinstance(v, int)}
    any_tuple = bool(lengths)
    if len(lengths) > 1:
        raise ValueError(
            f"{name} expected tuple arguments of one length, got "
            + ", ".join(f"{key}={value}" for key, value in values.items())
        )
    length = lengths.pop() if lengths else 1
    columns = []
    for key, value in values.items():
        value = (value,) * length if isinstance(value, int) else tuple(value)
        if not all(isinstance(v, int) for v in value):
            raise TypeError(f"{name} expected {key} as int or tuple of ints, got {value!r}")
        columns.append(value)
    return columns, any_tuple


def _window_output_size(
    function: str,
    window: str,
    size: int,
    k: int,
    s: int,
    p: int,
    d: int,
    ceil_mode: bool = False,
    half_padding: bool = False,
) -> int:
    """One dimension of a sliding window (a convolution's kernel, a pool's window), checked.

    ``half_padding``: padding at most half the window (PyTorch's rule for pools).
    """
    if k < 1 or s < 1 or d < 1 or p < 0 or size < 1:
        raise ValueError(
            f"{function} expected n, kernel_size, stride, dilation >= 1 and padding >= 0, "
            f"got n={size}, kernel_size={k}, stride={s}, padding={p}, dilation={d}"
        )
    if half_padding and p > k // 2:
        raise ValueError(
            f"{function}: padding {p} must be at most half the kernel size {k} (PyTorch)"
        )
    extent = d * (k - 1) + 1  # the dilated window's reach
    span = size + 2 * p - extent
    steps = -(-span // s) if ceil_mode else span // s  # -(-a // b) is ceil for ints
    size_out = steps + 1
    if ceil_mode and (size_out - 1) * s >= size + p:
        size_out -= 1  # the last window would start in the right padding: PyTorch drops it
    if size_out < 1:
        raise ValueError(
            f"{function}: input size {size} with padding {p} is smaller than the dilated "
            f"{window} ({extent}); the output would be empty"
        )
    return size_out


def conv_output_size(
    n: int | Sequence[int],
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
) -> IntOrTuple:
    r"""Spatial output size of a convolution (``nn.Conv1d/2d/3d``), per dimension:

    .. math::
        n_\text{out} = \left\lfloor \frac{n + 2p - d\,(k - 1) - 1}{s} \right\rfloor + 1

    Args:
        n (int or tuple): Input size(s).
        kernel_size (int or tuple): Kernel size :math:`k`.
        stride (int or tuple): Stride :math:`s`. (default: :obj:`1`)
        padding (int, tuple or str): Zero padding :math:`p` on each side, or ``"valid"`` (no
            padding) / ``"same"`` (output size equals input size; stride 1 only, as in PyTorch).
            (default: :obj:`0`)
        dilation (int or tuple): Kernel dilation :math:`d`. (default: :obj:`1`)

    Returns:
        An int, or a tuple when any argument is a tuple (e.g. ``(H, W)``).

    Example:
        >>> conv_output_size(28, kernel_size=3, padding=1)
        28
        >>> conv_output_size((28, 20), kernel_size=5, stride=2)
        (12, 8)
    """
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(
                f"conv_output_size got padding={padding!r}; expected an int, a tuple, 'same' or "
                f"'valid'"
            )
        if padding == "same":
            if any(s != 1 for s in ((stride,) if isinstance(stride, int) else stride)):
                raise ValueError(
                    f"conv_output_size: padding='same' needs stride 1 (as in PyTorch), got "
                    f"stride={stride}"
                )
            (sizes, _), is_tuple = _broadcast("conv_output_size", n=n, kernel_size=kernel_size)
            return sizes if is_tuple else sizes[0]
        padding = 0
    (sizes, kernels, strides, paddings, dilations), is_tuple = _broadcast(
        "conv_output_size",
        n=n,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    out = [
        _window_output_size("conv_output_size", "kernel", size, k, s, p, d)
        for size, k, s, p, d in zip(sizes, kernels, strides, paddings, dilations, strict=True)
    ]
    return tuple(out) if is_tuple else out[0]


def pool_output_size(
    n: int | Sequence[int],
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
) -> IntOrTuple:
    r"""Spatial output size of a pooling layer (``nn.MaxPool*d``, ``nn.AvgPool*d``), per dimension:

    .. math::
        n_\text{out} = \left\lfloor \frac{n + 2p - d\,(k - 1) - 1}{s} \right\rfloor + 1

    with :math:`\lceil\cdot\rceil` instead of :math:`\lfloor\cdot\rfloor` when ``ceil_mode=True``,
    minus one if the last window would then start in the right padding (PyTorch's rule: every
    window starts inside the input or the left padding). ``nn.AvgPool*d`` has no dilation.

    Args:
        n (int or tuple): Input size(s).
        kernel_size (int or tuple): Window size :math:`k`.
        stride (int or tuple, optional): Stride :math:`s`; :obj:`None` means ``kernel_size``, as
            in PyTorch. (default: :obj:`None`)
        padding (int or tuple): Implicit padding :math:`p` on each side, at most :math:`k / 2`.
            (default: :obj:`0`)
        dilation (int or tuple): Window dilation :math:`d`. (default: :obj:`1`)
        ceil_mode (bool): Round up instead of down. (default: :obj:`False`)

    Returns:
        An int, or a tuple when any argument is a tuple.

    Example:
        >>> pool_output_size(7, kernel_size=2)
        3
        >>> pool_output_size(7, kernel_size=2, ceil_mode=True)
        4
    """
    if stride is None:
        stride = kernel_size
    (sizes, kernels, strides, paddings, dilations), is_tuple = _broadcast(
        "pool_output_size",
        n=n,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    out = [
        _window_output_size(
            "pool_output_size", "window", size, k, s, p, d, ceil_mode, half_padding=True
        )
        for size, k, s, p, d in zip(sizes, kernels, strides, paddings, dilations, strict=True)
    ]
    return tuple(out) if is_tuple else out[0]


# ---------------------------------------------------------------------------------------------
# Model summary
# ---------------------------------------------------------------------------------------------


@dataclass
class LayerSummary:
    """One row of a :class:`ModelSummary`.

    Attributes:
        name: Dotted module name, as in ``model.named_modules()`` (usable as a CAM target layer).
        type: Class name of the module.
        depth: Nesting depth (1 for the model's direct children).
        output_shape: Shape of the first call's output (a list of shapes for tuple outputs), or
            :obj:`None` if the module was not called.
        num_params: Parameters counted on this row: all of the module's parameters when its
            children are not listed, else only its own (so the rows add up to the total).
        trainable_params: How many of ``num_params`` require gradients.
        is_container: Whether the module's children are listed below it.
        note: What the type does not say, shown after it: ``"residual, identity shortcut"`` or
            ``"residual, projection shortcut"`` for a block with a ``shortcut`` (a ResNet
            :class:`~gconv.models.cnn.BasicBlock`, a grid residual block). (default: ``""``)
    """

    name: str
    type: str
    depth: int
    output_shape: list[int] | list[list[int]] | None
    num_params: int
    trainable_params: int
    is_container: bool
    note: str = ""

    @property
    def trainable(self) -> bool | None:
        """``True`` / ``False`` if all / none of the row's parameters train, ``None`` otherwise."""
        if self.num_params == 0 or 0 < self.trainable_params < self.num_params:
            return None
        return self.trainable_params == self.num_params


@dataclass
class ModelSummary:
    """Result of :func:`summary`: ``str(result)`` is the table.

    Attributes:
        rows: One :class:`LayerSummary` per listed module, in ``named_modules()`` order.
        input_shapes: Shapes of the inputs of the forward pass.
        output_shape: Shape of the model's output.
        total_params: Number of distinct parameters (shared ones once).
        trainable_params: How many of them require gradients.
        param_bytes: Memory of the parameters in bytes.
    """

    model_name: str
    rows: list[LayerSummary]
    input_shapes: list[list[int]]
    output_shape: Any
    total_params: int
    trainable_params: int
    param_bytes: int
    depth: int = field(default=3)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def param_size_mb(self) -> float:
        """Estimated parameter size in MB (10^6 bytes, as torchinfo)."""
        return self.param_bytes / 1e6

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Param #", "Trainable")
        lines = []
        for row in self.rows:
            kind = f"{row.type}, {row.note}" if row.note else row.type
            label = f"{'  ' * (row.depth - 1)}{row.name} ({kind})"
            shape = _format_shape(row.output_shape)
            if row.num_params == 0:
                params, trainable = ("--" if row.is_container else "0"), "--"
            else:
                params = f"{row.num_params:,}"
                trainable = {True: "yes", False: "no", None: "partial"}[row.trainable]
            lines.append((label, shape, params, trainable))
        widths = [
            max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)
        ]
        width = sum(widths) + 3 * (len(widths) - 1)

        def render(cells: Sequence[str]) -> str:
            label, shape, params, trainable = cells
            return "   ".join(
                [
                    label.ljust(widths[0]),
                    shape.ljust(widths[1]),
                    params.rjust(widths[2]),
                    trainable.rjust(widths[3]),
                ]
            )

        inputs = ", ".join(_format_shape(shape) for shape in self.input_shapes)
        out = [
            f"{self.model_name} summary (input {inputs})",
            "=" * width,
            render(header),
            "=" * width,
            *(render(line) for line in lines),
            "=" * width,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            f"Params size (MB): {self.param_size_mb:.2f}",
            "=" * width,
        ]
        return "\n".join(out)


def _format_shape(shape: Any) -> str:
    if shape is None:
        return "--"
    if shape and isinstance(shape[0], list):
        return ", ".join(_format_shape(s) for s in shape)
    return "[" + ", ".join(map(str, shape)) + "]"


def _shape_of(output: Any) -> list[int] | list[list[int]] | None:
    """Shape of a module output: a tensor, a tuple/list of tensors, or an object with ``.x``
    (a PyG ``Data``); :obj:`None` for anything else."""
    if isinstance(output, Tensor):
        return list(output.shape)
    if isinstance(output, (tuple, list)):
        shapes = [list(item.shape) for item in output if isinstance(item, Tensor)]
        return shapes or None
    if isinstance(getattr(output, "x", None), Tensor):
        return list(output.x.shape)
    return None


def _residual_note(module: nn.Module) -> str:
    """``"residual, ... shortcut"`` for a block whose ``shortcut`` child is added to its output."""
    shortcut = getattr(module, "shortcut", None)
    if not isinstance(shortcut, nn.Module):
        return ""
    if isinstance(shortcut, nn.Identity):
        return "residual, identity shortcut"
    return "residual, projection shortcut"


def summary(
    model: nn.Module,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
    input_data: Any = None,
    batch_size: int = 1,
    depth: int = 3,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    print_table: bool = True,
) -> ModelSummary:
    """Per-layer summary of ``model`` from one forward pass, like torchinfo / Keras
    ``model.summary()``.

    Forward hooks on every listed module record output shapes; the pass runs in eval mode under
    ``torch.no_grad()`` on an all-zeros input (no random numbers are drawn, so the global RNG
    state is untouched), and every module's train/eval mode is restored afterwards.

    Args:
        model (nn.Module): The model.
        input_shape (tuple, optional): Shape of one sample *without* the batch dimension, e.g.
            :obj:`(1, 28, 28)`; a list of such shapes for a model with several inputs. Give this
            or ``input_data``.
        input_data (optional): Input to call the model with instead: a tensor, a tuple/list of
            positional inputs, a dict of keyword inputs, or any object (e.g. a PyG ``Batch``).
        batch_size (int): Batch size of the zeros input built from ``input_shape``. (default:
            :obj:`1`)
        depth (int): Deepest nesting level listed; deeper modules are folded into their
            ancestor's row. (default: :obj:`3`)
        device (torch.device or str, optional): Device to run on; the model is moved there. Default:
            the device of the model's parameters.
        dtype (torch.dtype): dtype of the input built from ``input_shape``. (default:
            :obj:`torch.float32`)
        print_table (bool): Print the table. (default: :obj:`True`)

    Returns:
        ModelSummary: ``str()`` gives the table; ``.rows``, ``.total_params``,
        ``.trainable_params``, ``.non_trainable_params``, ``.param_size_mb``.
    """
    if (input_shape is None) == (input_data is None):
        raise ValueError("summary expected exactly one of input_shape or input_data")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"summary expected depth >= 1, got {depth!r}")
    if device is None:
        device = module_device(model)
    else:
        device = torch.device(device)
        model.to(device)

    if input_data is None:
        shapes = [input_shape] if all(isinstance(d, int) for d in input_shape) else input_shape
        for shape in shapes:
            if not all(isinstance(d, int) and d > 0 for d in shape):
                raise ValueError(
                    f"summary expected input_shape as positive ints without the batch "
                    f"dimension, e.g. (1, 28, 28), got {tuple(input_shape)}"
                )
        inputs: Any = [
            torch.zeros(batch_size, *shape, dtype=dtype, device=device) for shape in shapes
        ]
    else:
        inputs = move_to(input_data, device, non_blocking=False)

    listed = [
        (name, module)
        for name, module in model.named_modules()
        if name and name.count(".") + 1 <= depth
    ]
    output_shapes: dict[str, Any] = {}
    handles = []
    for name, module in listed:

        def record(module: nn.Module, args: Any, output: Any, name: str = name) -> None:
            # A module called several times (a shared activation) keeps its first output.
            output_shapes.setdefault(name, _shape_of(output))

        handles.append(module.register_forward_hook(record))

    try:
        with evaluating(model), torch.no_grad():  # every module's own mode restored afterwards
            if isinstance(inputs, Mapping):
                output = model(**inputs)
            elif isinstance(inputs, (tuple, list)):
                output = model(*inputs)
            else:
                output = model(inputs)
    finally:
        for handle in handles:
            handle.remove()

    counted: set[int] = set()  # parameters already on a row (shared ones are counted once)
    rows = []
    for name, module in listed:
        depth_here = name.count(".") + 1
        is_container = depth_here < depth and any(True for _ in module.children())
        params = module.parameters(recurse=not is_container)
        num_params = trainable = 0
        for parameter in params:
            if id(parameter) in counted:
                continue
            counted.add(id(parameter))
            num_params += parameter.numel()
            trainable += parameter.numel() if parameter.requires_grad else 0
        rows.append(
            LayerSummary(
                name=name,
                type=type(module).__name__,
                depth=depth_here,
                output_shape=output_shapes.get(name),
                num_params=num_params,
                trainable_params=trainable,
                is_container=is_container,
                note=_residual_note(module),
            )
        )

    parameters = list(model.parameters())  # deduplicated by nn.Module
    if isinstance(inputs, Tensor):
        input_shapes = [list(inputs.shape)]
    elif isinstance(inputs, (tuple, list)):
        input_shapes = [list(x.shape) for x in inputs if isinstance(x, Tensor)]
    elif isinstance(inputs, Mapping):
        input_shapes = [list(x.shape) for x in inputs.values() if isinstance(x, Tensor)]
    else:
        input_shapes = [shape] if (shape := _shape_of(inputs)) else []
    result = ModelSummary(
        model_name=type(model).__name__,
        rows=rows,
        input_shapes=input_shapes,
        output_shape=_shape_of(output),
        total_params=sum(p.numel() for p in parameters),
        trainable_params=sum(p.numel() for p in parameters if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in parameters),
        depth=depth,
    )
    if print_table:
        print(result)
    return result
