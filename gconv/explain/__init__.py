"""Explainability for grid and graph models: CAM / Grad-CAM heat maps (:mod:`.cam`), node
importance as PyG explanations (:mod:`.graph`), pictures (:mod:`.viz`) and faithfulness checks
(:mod:`.faithfulness`)."""

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
from gconv.explain.faithfulness import (
    faithfulness_report,
    graph_curve,
    image_curve,
    model_randomisation,
)
from gconv.explain.graph import (
    grad_cam,
    graph_cam,
    integrated_gradients,
    node_mask_to_image,
    saliency,
)
from gconv.explain.viz import prediction_grid

__all__ = [
    "faithfulness",
    "graph",
    "viz",
    "ActivationsAndGradients",
    "BaseCAM",
    "CAM",
    "ClassifierOutputTarget",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
    "graph_cam",
    "grad_cam",
    "saliency",
    "integrated_gradients",
    "node_mask_to_image",
    "image_curve",
    "graph_curve",
    "faithfulness_report",
    "model_randomisation",
    "prediction_grid",
]
