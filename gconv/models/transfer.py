r"""Transfer learning with torchvision backbones (ResNet18, VGG11/16) and a CAM-ready head.

:class:`TransferModel` keeps a torchvision convolutional backbone as ``.features`` and replaces
its classifier with global average pooling and one linear layer (``.head``), so :class:`~gconv.
explain.CAM` applies directly, as in the lecture notes' VGG + GAP on STL10. Pre-trained weights
are read from a local file only (``torch.load(..., weights_only=True)``); nothing is downloaded at
run time, and a file that is missing, a directory, empty, truncated, a whole pickled model or
another network's state dict raises a one-line error naming the file, the problem and the fix.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.vgg import cfgs as vgg_configs
from torchvision.models.vgg import make_layers as make_vgg_layers

from gconv._utils import warn_deprecated

__all__ = ["TransferModel", "ARCHITECTURES", "MODES"]

# arch -> (torchvision weights enum name, VGG config key or None for ResNet, batch norm)
ARCHITECTURES: dict[str, tuple[str, str | None, bool]] = {
    "resnet18": ("ResNet18_Weights", None, False),
    "vgg11": ("VGG11_Weights", "A", False),
    "vgg11_bn": ("VGG11_BN_Weights", "A", True),
    "vgg16": ("VGG16_Weights", "D", False),
    "vgg16_bn": ("VGG16_BN_Weights", "D", True),
}
MODES = ("feature_extraction", "fine_tuning")


def _backbone(arch: str) -> tuple[nn.Sequential, str, int]:
    """The convolutional part of a torchvision model as a ``Sequential``, the prefix its
    parameters carry in torchvision's state dict, and its output channels."""
    _, vgg_config, batch_norm = ARCHITECTURES[arch]
    if vgg_config is not None:
        # only the conv layers: the 120M-parameter VGG classifier is never built
        return make_vgg_layers(vgg_configs[vgg_config], batch_norm=batch_norm), "features.", 512
    resnet = torchvision.models.resnet18(weights=None)
    children = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    features = nn.Sequential()
    for name in children:
        features.add_module(name, getattr(resnet, name))
    return features, "", resnet.fc.in_features


def _weights_url(arch: str) -> str:
    return getattr(torchvision.models, ARCHITECTURES[arch][0]).DEFAULT.url


def _weights_hint(arch: str, path: Path) -> str:
    url = _weights_url(arch)
    if path.is_dir():
        file = path / url.rsplit("/", 1)[-1]
        return (
            f"weights_path '{path}' is a directory, not a weights file: pass the torchvision "
            f"{arch} state-dict file itself, e.g. '{file}' (`curl -L -o {file} {url}`)"
        )
    return (
        f"pre-trained {arch} weights not found at '{path}'. gconv never downloads at run time: "
        f"fetch the torchvision file {url} (e.g. `curl -L -o {path} {url}`, or on a machine with "
        f"internet `torch.save(torchvision.models.{arch}(weights='DEFAULT').state_dict(), "
        f"'{path.name}')`) and pass its path as weights_path, or use weights_path=None for "
        "random initialisation"
    )


def _pickled_class(path: Path, error: pickle.UnpicklingError) -> str | None:
    """The class a ``weights_only`` load refused in ``path`` (``torch.save(model)`` pickles the
    model's class: the first global of the refusal), or None if the error is no such refusal."""
    match = re.search(r"GLOBAL ([\w.]+)", str(error))
    if match:
        return match.group(1)
    find = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)  # torch >= 2.5
    try:
        names = find(path) if find is not None else []
    except Exception:  # noqa: BLE001 -- not a checkpoint it can read: no class to name
        names = []
    return ", ".join(sorted(names)[:3]) if names else None


def _load_state_dict(path: Path, arch: str) -> dict:
    """``torch.load(path, weights_only=True)``, every way a file can fail to be a state dict
    turned into one line naming the file, the problem and the fix."""
    refetch = f"fetch it again (`curl -L -o {path} {_weights_url(arch)}`)"
    if path.stat().st_size == 0:
        raise ValueError(f"weights file '{path}' is empty (0 bytes): {refetch}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        pickled = _pickled_class(path, error)
        if pickled is None:
            raise ValueError(
                f"weights file '{path}' is not a PyTorch state-dict file ({_first_line(error)}): "
                f"{refetch}"
            ) from error
        raise ValueError(
            f"weights file '{path}' holds a pickled {pickled} (as `torch.save(model)` writes a "
            "whole model), not a state dict; it is not unpickled, as that can run arbitrary code: "
            f"where you trust the file, save its state dict with `torch.save(torch.load('{path}', "
            f"weights_only=False).state_dict(), '{path.with_suffix('.state.pth').name}')` and "
            "pass that file"
        ) from error
    except OSError as error:  # permissions and the like: the file itself may be fine
        raise ValueError(
            f"weights file '{path}' cannot be read ({type(error).__name__}: {_first_line(error)})"
        ) from error
    except Exception as error:  # truncated or corrupted files fail in many ways
        raise ValueError(
            f"weights file '{path}' cannot be read ({type(error).__name__}: "
            f"{_first_line(error)}); truncated or corrupted? {refetch}"
        ) from error
    if not isinstance(state, dict):
        raise TypeError(
            f"expected a state dict (a dict of tensors) in '{path}', got {type(state).__name__}"
        )
    return state


def _first_line(error: BaseException) -> str:
    """The first sentence of an error's message (torch's miniz errors run to a paragraph)."""
    lines = str(error).strip().splitlines()
    return lines[0].split(". ")[0] if lines else "no message"


def _names(keys: list[str], limit: int = 3) -> str:
    """A few of ``keys``, quoted, and how many more."""
    shown = ", ".join(f"'{key}'" for key in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


class TransferModel(nn.Module):
    r"""A torchvision backbone with a global-average-pooling + linear head

    .. math::
        \mathbf{y} = \mathbf{W}\, \frac{1}{hw}\sum_{i,j} \mathrm{features}(\mathbf{x})_{:, i, j}
        + \mathbf{b}

    for feature extraction (frozen backbone, only the head learns; the backbone also stays in
    eval mode so its batch-norm statistics do not drift) or fine-tuning (everything learns).

    Args:
        arch (str, optional): ``"resnet18"``, ``"vgg11"``, ``"vgg11_bn"``, ``"vgg16"`` or
            ``"vgg16_bn"``. (default: :obj:`"resnet18"`)
        num_classes (int, optional): number of outputs. (default: :obj:`10`)
        mode (str, optional): ``"feature_extraction"`` or ``"fine_tuning"``.
            (default: :obj:`"feature_extraction"`)
        weights_path (str or Path, optional): a torchvision state-dict file of ``arch`` (e.g.
            ``resnet18-f37072fd.pth``); only the backbone's entries are used. ``None`` keeps the
            random initialisation. (default: :obj:`None`)
        dropout (float, optional): dropout before the linear layer. (default: :obj:`0.0`)

    Attributes:
        features (nn.Sequential): the torchvision backbone's convolutional part.
        feature_channels (int): its output channels, the head's input width (512).
        head (nn.Sequential): ``AdaptiveAvgPool2d(1) -> Flatten -> (Dropout) -> Linear``.

    Shapes:
        - **input:** images :math:`(B, 3, H, W)`, ImageNet-normalised for pre-trained weights
          (``TransferModel.IMAGENET_MEAN`` / ``IMAGENET_STD``); :math:`H, W \geq 32`
        - **output:** :math:`(B, \text{num\_classes})`
    """

    IMAGENET_MEAN = (0.485, 0.456, 0.406)
    IMAGENET_STD = (0.229, 0.224, 0.225)

    def __init__(
        self,
        arch: str = "resnet18",
        num_classes: int = 10,
        mode: str = "feature_extraction",
        weights_path: str | Path | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got '{arch}'")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got '{mode}'")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.arch = arch
        self.num_classes = num_classes
        self.mode = mode
        self.dropout = dropout
        self.features, self._state_prefix, self.feature_channels = _backbone(arch)
        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(self.feature_channels, num_classes))
        self.head = nn.Sequential(*head)
        if weights_path is not None:
            self.load_backbone(weights_path)
        self.features.requires_grad_(mode == "fine_tuning")

    @property
    def out_channels(self) -> int:
        """Deprecated name of :attr:`feature_channels` (``out_channels`` is a graph model's
        output size in gconv's vocabulary; an image model's is ``num_classes``)."""
        warn_deprecated("TransferModel.out_channels", "TransferModel.feature_channels")
        return self.feature_channels

    def load_backbone(self, weights_path: str | Path) -> None:
        """Load the backbone from a torchvision state-dict file (classifier entries ignored).

        Raises (each a one-line message naming the file, the problem and the fix):
            FileNotFoundError: no file at ``weights_path``, or a directory there (says which
                file to fetch, from where).
            ValueError: an empty, truncated or otherwise unreadable file; a whole model pickled
                with ``torch.save(model)`` (not unpickled: says how to save its state dict); a
                state dict of another network (names a few missing, unexpected or differently
                shaped entries).
            TypeError: a file holding something other than a dict.
        """
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(_weights_hint(self.arch, path))
        state = _load_state_dict(path, self.arch)
        prefix = self._state_prefix
        own = self.features.state_dict()
        backbone_state = {key: state[prefix + key] for key in own if prefix + key in state}
        missing = [prefix + key for key in own if key not in backbone_state]
        if missing:
            classifier = "fc." if prefix == "" else "classifier."
            unexpected = [
                key
                for key in map(str, state)
                if not key.startswith(classifier)
                and not (key.startswith(prefix) and key[len(prefix) :] in own)
            ]
            extra = f"; it has {len(unexpected)} entries {self.arch} does not, such as "
            raise ValueError(
                f"'{path}' is not a torchvision {self.arch} state dict: missing "
                f"{len(missing)} backbone entries such as {_names(missing)}"
                + (extra + _names(unexpected) if unexpected else "")
                + " (a state dict of another network? pass the arch it was saved from)"
            )
        wrong = [
            f"'{prefix + key}' "
            + (f"{list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__)
            + f" where {self.arch} has {list(own[key].shape)}"
            for key, value in backbone_state.items()
            if not isinstance(value, torch.Tensor) or value.shape != own[key].shape
        ]
        if wrong:
            raise ValueError(
                f"'{path}' is not a torchvision {self.arch} state dict: {len(wrong)} entries "
                f"have other shapes, such as {'; '.join(wrong[:3])} (a state dict of another "
                "network? pass the arch it was saved from)"
            )
        self.features.load_state_dict(backbone_state)

    def train(self, mode: bool = True) -> TransferModel:
        super().train(mode)
        if self.mode == "feature_extraction":
            self.features.eval()  # a frozen backbone keeps its batch-norm statistics
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def extra_repr(self) -> str:
        return f"arch={self.arch}, num_classes={self.num_classes}, mode={self.mode}"
