"""What the explainers share below the layer search and the hooks (torchcam's ``methods/_utils.py``):
which inputs are accepted, which tensors count as *node-level* for them, and the grid size that goes
with a grid model's nodes. A private module: its names are used by :mod:`.find_layers`,
:mod:`.hooks`, :mod:`.core`, :mod:`.cam` and :mod:`.gradient`, never by users."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.data.data import BaseData

__all__ = ["Inputs", "check_inputs", "is_node_level", "first_tensor", "grid_of", "GridTracker"]

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
