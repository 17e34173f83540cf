"""The image model directory: written by ``gconv train --images DIR --output-dir D``, read by
:func:`load_model` (``gconv predict --model-path D --images ...``).

::

    D/
      config.json        kind "image": classes, colour mode, size, normalisation, the model
      model_0/best.pt    the weights of the best validation epoch (weights_only)
      model_0/last.pt    the training state, for --resume (not read by predict)
      metrics.json, predictions.csv, history.png   the training run's report

The shared part (format, version, ``config.json`` checks, weight files) is
:mod:`gconv.model_dir`; the format is written once, in ``docs/model-directory.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torchvision

import gconv
from gconv.errors import UsageError
from gconv.image.model import ImageModel, build_network
from gconv.model_dir import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    jsonable,
    load_tensors,
    read_config,
    write_config,
)
from gconv.models import CNN, TransferModel

__all__ = ["MODEL_CLASSES", "save_model_dir", "load_model"]

#: ``config.json``'s ``model.class`` -> the class built from ``model.kwargs``.
MODEL_CLASSES = {"CNN": CNN, "TransferModel": TransferModel}


def save_model_dir(
    directory: str | os.PathLike,
    model: ImageModel,
    model_class: str,
    model_kwargs: dict[str, Any],
    weights_file: str,
    normalization: dict[str, Any],
    training: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``config.json`` into ``directory`` (the weights, ``weights_file`` relative to it, are
    already there: the Trainer's ``best.pt``); returns it (also set as ``model.config``).

    Args:
        directory: The model directory.
        model (ImageModel): The trained model.
        model_class (str): ``"CNN"`` or ``"TransferModel"`` (:data:`MODEL_CLASSES`).
        model_kwargs (dict): Every argument the classifier was built with.
        weights_file (str): The weights, relative to ``directory``.
        normalization (dict): ``{"mean": [...], "std": [...], "source": "train" | "imagenet"}``.
        training (dict, optional): The training options (recorded, not read back).
    """
    if model_class not in MODEL_CLASSES:
        raise ValueError(f"model_class must be one of {list(MODEL_CLASSES)}, got {model_class!r}")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "image",
        "gconv_version": gconv.__version__,
        "torchvision_version": torchvision.__version__,
        "classes": list(model.classes),
        "color_mode": model.color_mode,
        "channels": model.channels,
        "image_size": list(model.image_size),
        "resize": "torchvision.transforms.v2.functional.resize, bilinear, antialias",
        "normalization": normalization,
        "model": {"class": model_class, "kwargs": model_kwargs},
        "members": [weights_file],
        "training": training or {},
    }
    config = jsonable(config)
    write_config(directory, config)
    model.config = config
    return config


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> ImageModel:
    """Reads an image model directory into an :class:`ImageModel` (``.config`` holds its
    ``config.json``).

    Raises:
        UsageError: one line naming the file and what is wrong: no directory or
            ``config.json``, another format version or kind, a missing or malformed entry, a
            missing, torn or mismatched weight file.
    """
    directory = Path(directory)
    config = read_config(directory)
    path = directory / CONFIG_FILE
    if config.get("kind") != "image":
        raise UsageError(f"{path} describes a {config.get('kind')!r} model, not an image model")
    try:
        classes = [str(name) for name in config["classes"]]
        color_mode = config["color_mode"]
        image_size = tuple(int(v) for v in config["image_size"])
        mean = [float(v) for v in config["normalization"]["mean"]]
        std = [float(v) for v in config["normalization"]["std"]]
        model_class = MODEL_CLASSES[config["model"]["class"]]
        kwargs = dict(config["model"]["kwargs"])
        (weights_file,) = config["members"]
    except KeyError as err:
        raise UsageError(f"{path} lacks the entry {err}; it was not written by gconv") from None
    except (TypeError, ValueError) as err:
        raise UsageError(f"{path} has an invalid entry: {err}") from None
    channels = 1 if color_mode == "grayscale" else 3
    if color_mode not in ("grayscale", "rgb") or len(image_size) != 2:
        raise UsageError(f"{path}: invalid color_mode {color_mode!r} or image_size {image_size}")
    if len(mean) != channels or len(std) != channels:
        raise UsageError(f"{path}: the normalisation needs {channels} values per statistic")
    if kwargs.get("num_classes") != len(classes):
        raise UsageError(
            f"{path}: the model has {kwargs.get('num_classes')} outputs, but "
            f"{len(classes)} classes are listed"
        )
    if "in_shape" in kwargs and list(kwargs["in_shape"]) != [channels, *image_size]:
        raise UsageError(
            f"{path}: the model takes inputs {list(kwargs['in_shape'])}, but color_mode "
            f"{color_mode!r} and image_size {list(image_size)} give {[channels, *image_size]}"
        )
    for key in ("in_shape", "channels", "blocks", "head_hidden"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    try:
        classifier = model_class(**kwargs)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{path}: cannot build the model from its arguments: {err}") from None
    network = build_network(classifier, mean, std)
    state = load_tensors(directory / weights_file, directory)
    try:
        network.load_state_dict(state.get("model", state))
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in lines[:3])
        raise UsageError(
            f"{directory / weights_file} does not fit the model in {path}: {detail}"
        ) from None
    model = ImageModel(network.to(device), classes, color_mode, image_size, config)
    return model
