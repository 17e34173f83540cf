"""Explainability for grid and graph models on one core. Every explainer is a class called on
inputs, ``Method(model)(inputs, target=None)``, and takes images ``[B, C, H, W]`` (-> maps
``[B, H, W]``) and PyG batches (-> one PyG ``Explanation`` per graph) alike.

Rooms, as torchcam and pytorch-grad-cam keep them:

* :mod:`.cam` — the methods: ``CAM``, ``GradCAM``, ``GradCAMPlusPlus``, ``ScoreCAM``;
* :mod:`.gradient` — gradient attributions: ``Saliency``, ``IntegratedGradients`` (zero features
  or the empty molecule as the baseline);
* :mod:`.decomposition` — ``ReadoutDecomposition``: exact per-atom contributions of models with a
  sum / norm / mean readout;
* :mod:`.occlusion` — ``Occlusion``: each atom removed with its bonds, the slow reference;
* :mod:`.choose` — ``recommended_explainer``: the best of these for a graph model, and why;
* :mod:`.core` — ``BaseCAM`` (the shared algorithm), normalisation, ``Explanation`` per graph;
* :mod:`.targets` — what is explained (``ClassifierOutputTarget``; default: the prediction);
* :mod:`.hooks` — the hook on the target layer (``ActivationsAndGradients``);
* :mod:`.find_layers` — the target layer by name or by execution order;
* :mod:`.faithfulness` — deletion / insertion curves and the model-randomisation check;
* :mod:`.viz` — pictures (``heatmap`` per pixel, ``node_mask`` per node, ``cmap``).

The 0.1 names ``saliency()``, ``integrated_gradients()``, ``model_randomisation`` and the module
``gconv.explain.graph`` still work until gconv 0.3, with a :class:`DeprecationWarning` that names
the new one.
"""

from gconv._utils import deprecated_module_attributes
from gconv.explain import (
    cam,
    choose,
    core,
    decomposition,
    faithfulness,
    find_layers,
    gradient,
    hooks,
    occlusion,
    targets,
    viz,
)
from gconv.explain.cam import CAM, GradCAM, GradCAMPlusPlus, ScoreCAM, normalize_per_channel
from gconv.explain.choose import recommended_explainer
from gconv.explain.core import (
    BaseCAM,
    graph_batch,
    graph_explanations,
    normalize_maps,
    normalize_per_graph,
    remove_nodes,
    with_features,
)
from gconv.explain.decomposition import ReadoutDecomposition, is_linear_readout
from gconv.explain.faithfulness import (
    FaithfulnessCurve,
    faithfulness_report,
    graph_curve,
    image_curve,
    model_randomization_check,
    random_importance,
    randomize_model,
)
from gconv.explain.find_layers import (
    candidate_layers,
    find_readout,
    find_target_layer,
    resolve_layer,
    resolve_named_layer,
)
from gconv.explain.gradient import (
    IntegratedGradients,
    Saliency,
    constant_features,
    featureless_graphs,
    integrated_gradients,  # deprecated: warns on call; not in __all__
    saliency,  # deprecated: warns on call; not in __all__
)
from gconv.explain.hooks import ActivationsAndGradients, NodeActivations
from gconv.explain.occlusion import Occlusion
from gconv.explain.targets import (
    ClassifierOutputTarget,
    Target,
    TargetSpec,
    as_target,
    target_index,
)
from gconv.explain.viz import (
    draw_graph,
    draw_matrices,
    draw_molecule_importance,
    faithfulness_curves,
    feature_maps,
    first_layer_filters,
    grid_node_importance,
    heatmap_overlay,
    image_grid,
    molecule_grid,
    overlay,
    prediction_grid,
    save_figure,
    weight_histograms,
)

__all__ = [
    # modules
    "cam",
    "choose",
    "core",
    "decomposition",
    "faithfulness",
    "find_layers",
    "gradient",
    "hooks",
    "occlusion",
    "targets",
    "viz",
    # methods
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
    "Saliency",
    "IntegratedGradients",
    "ReadoutDecomposition",
    "Occlusion",
    "recommended_explainer",
    # the core and its parts
    "BaseCAM",
    "ActivationsAndGradients",
    "NodeActivations",
    "ClassifierOutputTarget",
    "Target",
    "TargetSpec",
    "as_target",
    "target_index",
    "candidate_layers",
    "find_target_layer",
    "find_readout",
    "resolve_layer",
    "resolve_named_layer",
    "normalize_maps",
    "normalize_per_graph",
    "normalize_per_channel",
    "graph_batch",
    "with_features",
    "remove_nodes",
    "graph_explanations",
    "is_linear_readout",
    "constant_features",
    "featureless_graphs",
    # faithfulness
    "FaithfulnessCurve",
    "image_curve",
    "graph_curve",
    "random_importance",
    "faithfulness_report",
    "randomize_model",
    "model_randomization_check",
    # pictures
    "overlay",
    "heatmap_overlay",
    "image_grid",
    "prediction_grid",
    "feature_maps",
    "first_layer_filters",
    "weight_histograms",
    "grid_node_importance",
    "faithfulness_curves",
    "draw_graph",
    "draw_matrices",
    "draw_molecule_importance",
    "molecule_grid",
    "save_figure",
]

# 0.1 names (gconv.explain.X warns until 0.3): the old module and a renamed function
__getattr__ = deprecated_module_attributes(
    __name__,
    {
        "graph": ("gconv.explain", "gradient"),
        "model_randomisation": ("gconv.explain.faithfulness", "model_randomization_check"),
    },
)
