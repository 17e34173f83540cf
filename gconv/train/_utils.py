"""Small private helpers shared by the modules of :mod:`gconv.train` (one copy each).

* :func:`warn`: a ``UserWarning`` that points at the user's line, not at the Trainer's.
* :func:`shape`: a tensor's shape as it is written in the Trainer's messages (``[B, C]``).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["warn", "shape"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(message: str) -> None:
    """``warnings.warn`` pointing at the first caller outside ``gconv/train`` (the user's code),
    however deep inside the Trainer's modules the warning is raised."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == _PACKAGE_DIR:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def shape(t: Tensor | torch.Size | Sequence[int]) -> str:
    """``[10, 2]``: the shape of a tensor, or a shape itself, as a list."""
    return str(list(t.shape if isinstance(t, Tensor) else t))
