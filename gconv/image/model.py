"""``ImageModel``: a trained image classifier with everything prediction needs — its class names,
the colour mode and size its inputs are converted to, and the normalisation fitted on its training
images."""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.transforms.v2 import Normalize

from gconv.data.folders import list_images, read_images
from gconv.errors import UsageError
from gconv.models import CNN

__all__ = ["ImageModel", "build_network", "probability_columns"]


def build_network(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Sequential:
    """``model`` behind torchvision's ``Normalize(mean, std)``: the network takes images in
    ``[0, 1]`` (what is augmented and drawn) and sees them normalised. Children: ``normalize``,
    ``model``."""
    return nn.Sequential(OrderedDict(normalize=Normalize(list(mean), list(std)), model=model))


def probability_columns(classes: Sequence[str]) -> list[str]:
    """The predictions file's probability columns, ``prob_<class>``, in class order."""
    return [f"prob_{name}" for name in classes]


class ImageModel:
    """A trained image classifier and its input conventions (what ``config.json`` records).

    Args:
        network (nn.Module): images ``[B, C, H, W]`` in ``[0, 1]`` -> logits ``[B, K]`` (a
            :func:`build_network`: normalisation, then the classifier).
        classes (list[str]): class names; logit ``k`` is ``classes[k]``.
        color_mode (str): ``"grayscale"`` or ``"rgb"``: every input is converted to it.
        image_size (tuple[int, int]): ``(H, W)``: every input is resized to it.
        config (dict, optional): the model directory's ``config.json``.

    Example::

        >>> model = gconv.image.load_model("runs/digits")
        >>> table = model.predict("new_digits/")  # {"path", "class", "prob_<c>"..., "error"}
    """

    def __init__(
        self,
        network: nn.Module,
        classes: Sequence[str],
        color_mode: str,
        image_size: Sequence[int],
        config: dict[str, Any] | None = None,
    ) -> None:
        self.network = network.eval()
        self.classes = list(classes)
        self.color_mode = color_mode
        self.image_size = tuple(int(v) for v in image_size)
        self.config = config or {}
        self._network64: nn.Module | None = None

    @property
    def channels(self) -> int:
        return 1 if self.color_mode == "grayscale" else 3

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def target_layer(self) -> str | None:
        """The layer Grad-CAM weights: a gconv ``CNN``'s last convolution stage before its pool
        (twice the resolution of the pooled map); ``None`` (found automatically) otherwise."""
        classifier = getattr(self.network, "model", None)
        if isinstance(classifier, CNN) and not classifier.residual:
            last = len(classifier.features) - 1
            return f"model.features.{last}.act"
        return None

    def read(self, paths: Sequence[str | os.PathLike]) -> tuple[Tensor, list[str | None]]:
        """Image files as the network's input, ``uint8 [n, C, H, W]`` (the readable ones, in
        order), and per path ``None`` or why it could not be read."""
        return read_images(paths, self.color_mode, self.image_size)

    @torch.no_grad()
    def probabilities(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """Class probabilities ``float64 [n, K]`` (on the CPU) of ``uint8`` or ``[0, 1]`` float
        images ``[n, C, H, W]``. Computed in float64 on the CPU, so a file's probabilities do not
        depend on which files share its batch: training and ``gconv predict`` agree."""
        if images.dtype == torch.uint8:
            images = images.double() / 255.0
        if self._network64 is None:  # a float64 copy on the CPU; the network stays as it is
            self._network64 = copy.deepcopy(self.network).cpu().double().eval()
        network = self._network64
        out = [
            network(images[i : i + batch_size].double()).softmax(dim=1)
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, len(self.classes), dtype=torch.float64)

    def predict(
        self, images: str | os.PathLike | Sequence[str | os.PathLike], batch_size: int = 256
    ) -> dict[str, np.ndarray]:
        """Predictions for a folder of images (recursively), one image file or a list of files:
        a ``dict`` of NumPy columns in the predictions file's order — ``path``, ``class`` (the
        predicted class name), ``prob_<class>`` per class, ``error`` (why a file could not be
        read; its other cells empty / NaN) — which ``pandas.DataFrame`` takes as it is."""
        if isinstance(images, (str, os.PathLike)):
            try:
                paths = list_images(images)
            except ValueError as err:
                raise UsageError(str(err)) from None
        else:
            paths = [Path(p) for p in images]
        x, errors = self.read(paths)
        probs = self.probabilities(x, batch_size).numpy()
        ok = np.array([e is None for e in errors], dtype=bool)
        table: dict[str, np.ndarray] = {"path": np.array([str(p) for p in paths], dtype=object)}
        names = np.full(len(paths), "", dtype=object)
        names[ok] = [self.classes[k] for k in probs.argmax(axis=1)] if len(probs) else []
        table["class"] = names
        for k, column in enumerate(probability_columns(self.classes)):
            values = np.full(len(paths), np.nan)
            values[ok] = probs[:, k]
            table[column] = values
        table["error"] = np.array([e or "" for e in errors], dtype=object)
        return table

    def __repr__(self) -> str:
        return (
            f"ImageModel(classes={self.classes}, color_mode={self.color_mode!r}, "
            f"image_size={self.image_size})"
        )
