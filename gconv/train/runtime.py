"""Where and how a run computes: the device, mixed precision, and the seeds of the global random
generators."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["resolve_device", "resolve_amp", "seed_everything"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, else Apple MPS, else the CPU; anything else is passed to torch."""
    if str(device) != "auto":
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device} requested but CUDA is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_amp(amp: str | bool | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``Trainer(amp=...)`` on ``device``, or ``None`` for full precision.

    ``"auto"`` (or :obj:`True`): bf16 on CUDA where supported, else fp16; off elsewhere.
    ``"bf16"`` / ``"fp16"`` force it; :obj:`None`, :obj:`False`, ``"none"``, ``"off"`` turn it off.
    """
    if amp in (None, False, "none", "off"):
        return None
    if amp in ("auto", True):
        if device.type != "cuda":
            return None  # CPU autocast is opt-in ("bf16"): it is not faster for every model
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in dtypes:
        raise ValueError(f"amp must be one of 'auto', 'bf16', 'fp16' or None, got {amp!r}")
    return dtypes[amp]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and all CUDA devices) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
