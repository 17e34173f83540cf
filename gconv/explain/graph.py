"""Deprecated: renamed :mod:`gconv.explain.gradient` (saliency and integrated gradients work on
images as well as graphs). This module re-exports it, with a :class:`DeprecationWarning` on
import, until gconv 0.3."""

from gconv._utils import warn_deprecated
from gconv.explain.gradient import (
    IntegratedGradients,
    Saliency,
    constant_features,
    integrated_gradients,
    saliency,
)

__all__ = [
    "Saliency",
    "IntegratedGradients",
    "saliency",
    "integrated_gradients",
    "constant_features",
]

warn_deprecated("gconv.explain.graph", "gconv.explain.gradient")
