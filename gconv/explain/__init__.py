"""Explainability for grid and graph models on one core: CAM, Grad-CAM, Grad-CAM++ and
Score-CAM (:mod:`.cam`) and saliency / integrated gradients (:mod:`.graph`) take images
``[B, C, H, W]`` (-> maps ``[B, H, W]``) and PyG batches (-> one PyG ``Explanation`` per graph)
alike; pictures in :mod:`.viz`, faithfulness checks in :mod:`.faithfulness`."""

from gconv.explain import faithfulness, graph, viz
from gconv.explain.cam import (
    CAM,
    ActivationsAndGradients,
    BaseCAM,
    ClassifierOutputTarget,
    GradCAM,
    GradCAMPlusPlus,
    ScoreCAM,
    candidate_layers,
    find_target_layer,
)
from gconv.explain.faithfulness import (
    faithfulness_report,
    graph_curve,
    image_curve,
    model_randomisation,
)
from gconv.explain.graph import (
    IntegratedGradients,
    Saliency,
    integrated_gradients,
    saliency,
)
from gconv.explain.viz import draw_graph, draw_matrices, prediction_grid

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
    "Saliency",
    "IntegratedGradients",
    "candidate_layers",
    "find_target_layer",
    "saliency",
    "integrated_gradients",
    "image_curve",
    "graph_curve",
    "faithfulness_report",
    "model_randomisation",
    "prediction_grid",
    "draw_graph",
    "draw_matrices",
]
