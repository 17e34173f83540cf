"""What is explained: the target score of each sample, as a small callable ``output [B, K] ->
scores [B]`` (pytorch-grad-cam's ``utils/model_targets.py``). Every explainer takes ``target`` as a
class index for the whole batch, one index per sample, or such a callable; without one it explains
the predicted class (the argmax)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["Target", "TargetSpec", "ClassifierOutputTarget", "as_target", "target_index"]

#: A target: ``output [B, K] -> score [B]``.
Target = Callable[[Tensor], Tensor]
#: What ``target=`` accepts: a class index, one per sample, a :data:`Target`, or ``None``.
TargetSpec = int | Sequence[int] | Tensor | Target | None


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
