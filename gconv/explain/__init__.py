"""Explainability for grid and graph models: CAM / Grad-CAM heat maps, node importance,
pictures and faithfulness checks."""

from gconv.explain import faithfulness, graph, viz
from gconv.explain.cam import (
    CAM,
    ActivationsAndGradients,
    BaseCAM,
    ClassifierOutputTarget,
    GradCAM,
    GradCAMPlusPlus,
    ScoreCAM,
)
from gconv.explain.viz import prediction_grid

__all__ = [
    "faithfulness",
    "graph",
    "viz",
    "prediction_grid",
    "ActivationsAndGradients",
    "BaseCAM",
    "CAM",
    "ClassifierOutputTarget",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
]
