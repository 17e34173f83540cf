"""What the explainers share below the layer search and the hooks (torchcam's ``methods/_utils.py``):
which inputs are accepted, which tensors count as *node-level* for them, and the grid size that goes
with a grid model's nodes. A private module: its names are used by :mod:`.find_layers`,
:mod:`.hooks`, :mod:`.core`, :mod:`.cam` and :mod:`.gradient`, never by users."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data.data import BaseData

__all__ = [
    "Inputs",
    "check_inputs",
    "is_node_level",
    "first_tensor",
    "grid_of",
    "GridTracker",
    "LOW_PRECISION",
    "compute_dtype",
    "check_finite",
    "check_tolerances",
]

#: Float types too narrow for the explainers' own arithmetic (softmax, min-max scaling, sums over
#: nodes and quadrature points): it is done in float32 for them.
LOW_PRECISION = (torch.float16, torch.bfloat16)

#: What an explainer takes: images ``[B, C, H, W]`` or a PyG ``Data`` / ``Batch``.
Inputs = Tensor | BaseData


def check_inputs(inputs: Inputs) -> None:
    """Raises unless ``inputs`` are images ``[B, C, H, W]`` or a PyG batch with node features."""
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


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype an explainer computes in for tensors of ``dtype``: float32 for float16 and
    bfloat16 (``1e-8`` is 0 in float16, sums of many terms overflow or lose their digits),
    ``dtype`` itself otherwise (float32 and float64 computations are left as they are)."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def check_finite(values: Tensor, method: str, dtype: torch.dtype) -> None:
    """Raises when an explainer of a float16 / bfloat16 model (``dtype``, the model's working
    precision) ends with non-finite ``values``: the model itself overflowed there, and a NaN map
    would pass for a result. float32 / float64 results are not checked (left as they are)."""
    if dtype in LOW_PRECISION and not bool(torch.isfinite(values).all()):
        raise RuntimeError(
            f"{method}: the {dtype} model gave non-finite values (an overflow in {dtype}); "
            "explain it in float32 (model.float() and float32 inputs)"
        )


def is_node_level(tensor: object, inputs: Inputs, grid: tuple[int, int] | None) -> bool:
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


def first_tensor(value: object) -> Tensor | None:
    """``value`` if it is a tensor, the first item of a tuple / list of tensors, else ``None``."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    return None


def grid_of(value: object) -> tuple[int, int] | None:
    """``value`` as a grid size ``(h, w)`` if it is a pair of ints, else ``None``."""
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    return None


class GridTracker:
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
            grid = grid_of(value)
            if grid is not None:
                self.current = grid
                return

    def _after(self, module: nn.Module, args: tuple, output: object) -> None:
        if isinstance(output, tuple):
            for value in output[1:]:
                grid = grid_of(value)
                if grid is not None:
                    self.current = grid

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def check_tolerances(rtol: object, atol: object) -> None:
    """The path-integral explainers' convergence tolerances (``|delta| <= atol + rtol |gap|``,
    :func:`torch.isclose`'s rule) are numbers >= 0."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
