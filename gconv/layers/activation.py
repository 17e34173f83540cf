"""The one table of activation functions that every gconv model picks from by name."""

from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "make_activation"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (one of :data:`ACTIVATIONS`).

    A fresh, non-inplace module per use keeps the model tree readable and lets hooks (CAM,
    Grad-CAM) see every activation output unchanged.
    """
    if name not in ACTIVATIONS:
        raise ValueError(
            f"make_activation got name={name!r}; expected one of "
            f"{', '.join(map(repr, ACTIVATIONS))}"
        )
    return ACTIVATIONS[name]()
