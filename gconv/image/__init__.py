"""The image application: train a classifier on your own folder of images, predict and explain
with the saved model — the library behind ``gconv train / predict / explain --images``.

One idea a room, as :mod:`gconv.molecule` keeps them (the folder itself is read by
:mod:`gconv.data.folders`):

* :mod:`~gconv.image.model` — :class:`ImageModel`: the network with its class names, colour mode,
  input size and normalisation, predicting files;
* :mod:`~gconv.image.model_dir` — the self-describing model directory (:func:`save_model_dir`,
  :func:`load_model`; ``docs/model-directory.md``), on the shared :mod:`gconv.model_dir`;
* :mod:`~gconv.image.training` — :func:`train`, the whole ``gconv train --images``;
* :mod:`~gconv.image.prediction` — :func:`predict_images`, the predictions CSV;
* :mod:`~gconv.image.explanation` — :func:`explain_images`, one Grad-CAM overlay per image.

Example::

    >>> from gconv.image import explain_images, load_model, train
    >>> train("digits/", output_dir="runs/digits")          # digits/<class>/*.png
    >>> model = load_model("runs/digits")
    >>> model.predict("new_digits/")    # {"path", "class", "prob_<class>"..., "error"}
    >>> explain_images(model, "new_digits/", "runs/digits_explained")
"""

from gconv.image.explanation import METHODS, class_maps, explain_images
from gconv.image.model import ImageModel
from gconv.image.model_dir import load_model, save_model_dir
from gconv.image.prediction import predict_images
from gconv.image.training import AUGMENTATIONS, MODELS, train

__all__ = [
    "ImageModel",
    "train",
    "load_model",
    "save_model_dir",
    "predict_images",
    "explain_images",
    "class_maps",
    "MODELS",
    "AUGMENTATIONS",
    "METHODS",
]
