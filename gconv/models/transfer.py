r"""Transfer learning with torchvision backbones (ResNet18, VGG11/16) and a CAM-ready head.

:class:`TransferModel` keeps a torchvision convolutional backbone as ``.features`` and replaces
its classifier with global average pooling and one linear layer (``.head``), so :class:`~gconv.
explain.CAM` applies directly, as in the lecture notes' VGG + GAP on STL10. Pre-trained weights
are read from a local file only (``torch.load(..., weights_only=True)``); nothing is downloaded at
run time, and a missing file raises an error saying where to get it.
"""

from __future__ import annotations

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


def _weights_hint(arch: str, path: Path) -> str:
    enum_name = ARCHITECTURES[arch][0]
    url = getattr(torchvision.models, enum_name).DEFAULT.url
    return (
        f"pre-trained {arch} weights not found at '{path}'. gconv never downloads at run time: "
        f"fetch the torchvision file {url} (e.g. `curl -L -o {path} {url}`, or on a machine with "
        f"internet `torch.save(torchvision.models.{arch}(weights='DEFAULT').state_dict(), "
        f"'{path.name}')`) and pass its path as weights_path, or use weights_path=None for "
        "random initialisation"
    )


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
        """Load the backbone from a torchvision state-dict file (classifier entries ignored)."""
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(_weights_hint(self.arch, path))
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"expected a state dict in '{path}', got {type(state).__name__}")
        prefix = self._state_prefix
        wanted = self.features.state_dict().keys()
        backbone_state = {key: state[prefix + key] for key in wanted if prefix + key in state}
        missing = [key for key in wanted if key not in backbone_state]
        if missing:
            raise ValueError(
                f"'{path}' is not a torchvision {self.arch} state dict: missing "
                f"{len(missing)} backbone entries such as '{prefix + missing[0]}'"
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
