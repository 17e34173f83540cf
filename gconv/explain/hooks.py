r"""The hook on the target layer (pytorch-grad-cam's ``activations_and_gradients.py``) and what it
gives a CAM method: the layer's embeddings as nodes ``[N, C]`` with their gradients and a batch
vector (:class:`NodeActivations`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gconv.explain._utils import GridTracker, Inputs, is_node_level
from gconv.explain.targets import Target

__all__ = ["ActivationsAndGradients", "NodeActivations"]


class ActivationsAndGradients:
    r"""Hook on one module that keeps the node-level tensor it outputs (or, with ``use_input``,
    the first tensor it takes) on its last call in a forward.

    The kept tensor stays in the autograd graph (gradients are then taken with
    :func:`torch.autograd.grad`, so parameter ``.grad`` is never written); the model continues
    with a clone, so an in-place operation after the layer cannot change it. ``grid`` is the
    grid size in effect when it was kept (grid models), from a grid tracker.

    Args:
        layer (torch.nn.Module): the module to hook.
        inputs (Tensor or Data): what is being explained (decides what is node-level).
        use_input (bool, optional): keep the module's input instead of its output.
            (default: :obj:`False`)
        tracker (GridTracker, optional): grid sizes of the running forward. (default: :obj:`None`)
    """

    def __init__(
        self,
        layer: nn.Module,
        inputs: Inputs,
        use_input: bool = False,
        tracker: GridTracker | None = None,
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
        if not is_node_level(tensor, self.inputs, grid):
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
        layer_dtype (torch.dtype or None): the dtype the layer computed in; ``activations`` and
            ``gradients`` are float32 when it is float16 / bfloat16 (the CAM weighting is done
            in float32). (default: :obj:`None`, the dtype of ``activations``)
    """

    activations: Tensor
    gradients: Tensor | None
    batch: Tensor
    num_graphs: int
    score_fn: Target
    inputs: Inputs
    grid: tuple[int, int] | None
    layer_dtype: torch.dtype | None = None

    def __post_init__(self) -> None:
        if self.layer_dtype is None:
            self.layer_dtype = self.activations.dtype

    def node_sum(self, values: Tensor) -> Tensor:
        """Per-graph sum of node values ``[N, C]`` -> ``[num_graphs, C]``."""
        out = values.new_zeros(self.num_graphs, values.size(-1))
        return out.index_add_(0, self.batch, values)

    def node_mean(self, values: Tensor) -> Tensor:
        """Per-graph mean of node values ``[N, C]`` -> ``[num_graphs, C]``."""
        counts = torch.bincount(self.batch, minlength=self.num_graphs).clamp_min(1)
        return self.node_sum(values) / counts[:, None].to(values.dtype)
