r"""Convolutional image classifiers: a configurable :class:`CNN` (with ResNet :class:`BasicBlock`
stages), a :class:`ConvNet` of given parts, the lecture-notes MNIST net (:func:`lecture_cnn`) and
the fully connected baseline :class:`MLP`.

All models take an image tensor ``[B, C, H, W]`` and return logits ``[B, num_classes]``, so the
:class:`gconv.train.Trainer` and the explainers treat them alike. The CNN has two heads:

* ``head="flatten"``: flatten the last feature map, then an MLP (the classic MNIST net);
* ``head="gap"``: global average pooling, then one ``nn.Linear`` (the CAM-ready head: the class score
  is a weighted sum of channel means, so the last linear layer's weights are the CAM weights).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from gconv._utils import deprecated_function, warn_deprecated
from gconv.layers.activation import ACTIVATIONS, make_activation
from gconv.models._utils import check_in_shape, renamed_keywords
from gconv.summary import conv_output_size, pool_output_size

__all__ = [
    "BasicBlock",
    "CNN",
    "ConvNet",
    "MLP",
    "init_weights",
    "lecture_cnn",
]

HEADS = ("flatten", "gap")
POOLS = ("max", "avg", None)
INITS = ("kaiming", "xavier", None)

# Gain names understood by ``nn.init.calculate_gain`` for each activation; activations without an
# entry of their own (ELU, GELU, SiLU) are ReLU-like, so they use the ReLU gain.
_INIT_NONLINEARITY = {"leaky_relu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid"}


def _check_choice(owner: str, argument: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ValueError(
            f"{owner} got {argument}={value!r}; expected one of {', '.join(map(repr, allowed))}"
        )


def _as_tuple(
    values: int | Sequence[int], argument: str, owner: str, allow_empty: bool = False
) -> tuple[int, ...]:
    values = (values,) if isinstance(values, int) else tuple(values)
    if not all(isinstance(v, int) and v > 0 for v in values) or not (values or allow_empty):
        kind = "" if allow_empty else "at least one, all "
        raise ValueError(f"{owner} expected {argument} as {kind}positive integers, got {values}")
    return values


def init_weights(module: nn.Module, init: str | None = "kaiming", activation: str = "relu") -> None:
    r"""Initialise every ``Conv*d`` and ``Linear`` weight in ``module`` in place; biases to zero.

    ``"kaiming"`` draws :math:`\mathcal{N}(0, \mathrm{gain}^2 / \mathrm{fan\_in})` (He et al., 2015),
    ``"xavier"`` draws :math:`\mathcal{U}(\pm \mathrm{gain}\sqrt{6 / (\mathrm{fan\_in} +
    \mathrm{fan\_out})})` (Glorot & Bengio, 2010), with the gain of ``activation``. ``None`` keeps
    PyTorch's defaults. Batch-norm layers keep their identity initialisation (weight 1, bias 0).
    """
    _check_choice("init_weights", "init", init, INITS)
    _check_choice("init_weights", "activation", activation, tuple(ACTIVATIONS))
    if init is None:
        return
    nonlinearity = _INIT_NONLINEARITY.get(activation, "relu")
    for layer in module.modules():
        if not isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            continue
        if init == "kaiming":
            # LeakyReLU's default negative slope is 0.01, which kaiming_normal_ must be told.
            slope = 0.01 if nonlinearity == "leaky_relu" else 0.0
            nn.init.kaiming_normal_(layer.weight, a=slope, nonlinearity=nonlinearity)
        else:
            nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(nonlinearity))
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def _reinitialise(model: nn.Module, init: str | None, activation: str) -> None:
    """Reset every sub-layer to PyTorch's defaults, then apply ``init`` to conv / linear weights."""
    for layer in model.modules():
        if layer is not model and hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    init_weights(model, init, activation)


class BasicBlock(nn.Module):
    r"""The ResNet basic block (`"Deep Residual Learning for Image Recognition"
    <https://arxiv.org/abs/1512.03385>`_, Fig. 2): two convolutions and a shortcut.

    .. math::
        \mathbf{H}^{\prime} = \sigma\big(\mathrm{BN}(\mathbf{W}_2 \star \sigma(\mathrm{BN}(
        \mathbf{W}_1 \star \mathbf{H}))) + S(\mathbf{H})\big)

    The shortcut :math:`S` is the identity when the channel count stays, else a 1x1 convolution
    (+ batch norm) projecting to ``out_channels`` (ResNet's option B). Both convolutions keep the
    spatial size ("same" padding, odd kernels only); :class:`CNN` pools between blocks instead of
    striding, so only channels ever change shape.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): odd kernel size of both convolutions. (default: :obj:`3`)
        batch_norm (bool): batch norm after each convolution and on a projection; the
            convolutions then have no bias. (default: :obj:`True`)
        activation (str): activation name, one of :data:`ACTIVATIONS`. (default: :obj:`"relu"`)

    Attributes:
        conv1, bn1, act1, conv2, bn2: the residual branch (``bn*`` only with ``batch_norm``).
        shortcut (nn.Module): ``nn.Identity()`` or ``nn.Sequential(conv, [bn])`` (1x1).
        act2: the activation after the sum.

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`
        - **output:** :math:`(B, C_{out}, H, W)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        batch_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"BasicBlock expected an odd kernel_size (the sum needs equal shapes), got "
                f"{kernel_size!r}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.batch_norm = batch_norm
        padding = kernel_size // 2
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm
        )
        self.bn1 = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm
        )
        self.bn2 = nn.BatchNorm2d(out_channels) if batch_norm else None
        if in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            projection: list[nn.Module] = [
                nn.Conv2d(in_channels, out_channels, 1, bias=not batch_norm)
            ]
            if batch_norm:
                projection.append(nn.BatchNorm2d(out_channels))
            self.shortcut = nn.Sequential(*projection)
        self.act2 = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x)
        h = self.act1(h if self.bn1 is None else self.bn1(h))
        h = self.conv2(h)
        h = h if self.bn2 is None else self.bn2(h)
        return self.act2(h + self.shortcut(x))

    def extra_repr(self) -> str:
        shortcut = "identity" if isinstance(self.shortcut, nn.Identity) else "1x1 projection"
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, shortcut={shortcut}"


class CNN(nn.Module):
    r"""A configurable convolutional image classifier.

    The feature extractor is a stack of blocks, one per entry of ``channels``:

    .. math::
        \mathbf{H}^{(\ell)} = \mathrm{pool}\big(\sigma(\mathrm{BN}(
        \mathbf{W}^{(\ell)} \star \mathbf{H}^{(\ell-1)} + \mathbf{b}^{(\ell)}))\big)

    with a ``kernel_size`` convolution padded to keep the spatial size ("same" padding for odd
    kernels), optional batch norm (then the convolution has no bias: BN's shift replaces it), the
    activation :math:`\sigma`, and an optional 2x2 pool that halves height and width. The head maps
    the last feature map :math:`\mathbf{H} \in \mathbb{R}^{C \times H' \times W'}` to logits:

    .. math::
        \texttt{"flatten"}:\ \ \mathbf{y} = \mathrm{MLP}(\mathrm{vec}(\mathbf{H}))
        \qquad
        \texttt{"gap"}:\ \ y_c = \sum_k w_{c,k} \frac{1}{H'W'} \sum_{i,j} H_{k,i,j} + b_c

    Args:
        in_shape (tuple[int, int, int]): Input shape :math:`(C, H, W)` of one image.
            (default: :obj:`(1, 28, 28)`)
        num_classes (int): Number of output logits. (default: :obj:`10`)
        channels (tuple[int, ...]): Output channels of each conv block. (default: :obj:`(32, 64)`)
        kernel_size (int): Convolution kernel size. (default: :obj:`3`)
        head_hidden (tuple[int, ...]): Hidden sizes of the ``"flatten"`` head's MLP. The
            ``"gap"`` head is a single linear layer and ignores it; ``hidden=`` is its deprecated
            name. (default: :obj:`(128,)`)
        head (str): ``"flatten"`` (flatten + MLP) or ``"gap"`` (global average pooling + linear,
            CAM-ready). (default: :obj:`"flatten"`)
        batch_norm (bool): Add ``BatchNorm2d`` after each convolution. (default: :obj:`False`)
        dropout (float): Dropout probability in the head (after each hidden layer for
            ``"flatten"``, before the linear layer for ``"gap"``). (default: :obj:`0.0`)
        activation (str): One of ``"relu"``, ``"leaky_relu"``, ``"elu"``, ``"gelu"``, ``"silu"``,
            ``"tanh"``, ``"sigmoid"``. (default: :obj:`"relu"`)
        pool (str, optional): ``"max"``, ``"avg"`` or :obj:`None` (no pooling). (default:
            :obj:`"max"`)
        init (str, optional): Weight init of conv and linear layers, ``"kaiming"``, ``"xavier"``
            or :obj:`None` (PyTorch default); biases start at zero. (default: :obj:`"kaiming"`)
        blocks (int or tuple[int, ...]): Conv blocks per entry of ``channels`` (a *stage*), one
            number for every stage or one per stage (``(1, 2, 2)``: the MNIST example's five
            convolutions); the pool follows the stage's last block, so ``blocks`` adds depth at a
            fixed resolution. (default: :obj:`1`)
        residual (bool): Make every block a ResNet :class:`BasicBlock` (two convolutions and a
            shortcut, 1x1 projections where the channel count changes) instead of one
            convolution; ``blocks=b`` with ``residual=True`` has as many conv layers as
            ``blocks=2 * b`` without. Odd ``kernel_size`` only. (default: :obj:`False`)

    Shapes:
        - **input:** images :math:`(B, C, H, W)`; with ``head="gap"`` any :math:`H, W` large enough
          for the pools is accepted.
        - **output:** logits :math:`(B, \text{num_classes})`

    Attributes:
        features (nn.Sequential): ``sum(blocks)`` (per stage) ``nn.Sequential`` blocks with named
            children ``conv``, ``bn`` (if ``batch_norm``), ``act`` -- or ``block`` (a
            :class:`BasicBlock`) if ``residual`` -- and ``pool`` (if ``pool``, last block of a
            stage only).
        head (nn.Sequential): ``"gap"``: ``AdaptiveAvgPool2d(1) -> Flatten -> (Dropout) ->
            Linear``; ``"flatten"``: ``Flatten -> [Linear -> act -> (Dropout)]* -> Linear``.
    """

    @renamed_keywords(hidden="head_hidden")
    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        head_hidden: Sequence[int] = (128,),
        head: str = "flatten",
        batch_norm: bool = False,
        dropout: float = 0.0,
        activation: str = "relu",
        pool: str | None = "max",
        init: str | None = "kaiming",
        blocks: int | Sequence[int] = 1,
        residual: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_shape = check_in_shape(name, in_shape)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"{name} expected num_classes >= 1, got {num_classes!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"{name} expected a positive int kernel_size, got {kernel_size!r}")
        num_stages = len(_as_tuple(channels, "channels", name))
        stage_blocks = (blocks,) * num_stages if isinstance(blocks, int) else tuple(blocks)
        if len(stage_blocks) != num_stages or not all(
            isinstance(b, int) and b >= 1 for b in stage_blocks
        ):
            raise ValueError(
                f"{name} expected blocks >= 1 (conv blocks per stage), one number or one per "
                f"entry of channels ({num_stages}), got {blocks!r}"
            )
        if residual and kernel_size % 2 == 0:
            raise ValueError(
                f"{name} with residual=True needs an odd kernel_size (a residual sum needs equal "
                f"shapes), got {kernel_size}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name} expected dropout in [0, 1), got {dropout}")
        _check_choice(name, "head", head, HEADS)
        _check_choice(name, "pool", pool, POOLS)
        _check_choice(name, "activation", activation, tuple(ACTIVATIONS))
        _check_choice(name, "init", init, INITS)

        self.in_shape = in_shape
        self.num_classes = num_classes
        self.channels = _as_tuple(channels, "channels", name)
        self.kernel_size = kernel_size
        self.head_hidden = _as_tuple(head_hidden, "head_hidden", name, allow_empty=True)
        self.head_type = head
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.activation = activation
        self.pool = pool
        self.init = init
        self.blocks = blocks if isinstance(blocks, int) else stage_blocks
        self.residual = residual

        feature_blocks = []
        in_channels, height, width = in_shape
        for index, (out_channels, num_blocks) in enumerate(
            zip(self.channels, stage_blocks, strict=True)
        ):
            for block_index in range(num_blocks):
                layers: OrderedDict[str, nn.Module] = OrderedDict()
                if residual:
                    layers["block"] = BasicBlock(
                        in_channels, out_channels, kernel_size, batch_norm, activation
                    )
                else:
                    layers["conv"] = nn.Conv2d(
                        in_channels,
                        out_channels,
                        kernel_size,
                        padding=kernel_size // 2,
                        bias=not batch_norm,
                    )
                    if batch_norm:
                        layers["bn"] = nn.BatchNorm2d(out_channels)
                    layers["act"] = make_activation(activation)
                    # Padding k // 2 keeps the size for odd kernels; an even kernel grows it by one.
                    height, width = conv_output_size(
                        (height, width), kernel_size, padding=kernel_size // 2
                    )
                in_channels = out_channels
                if block_index < num_blocks - 1:
                    feature_blocks.append(nn.Sequential(layers))
            if pool is not None:
                try:
                    pooled = pool_output_size((height, width), kernel_size=2)
                except ValueError:
                    raise ValueError(
                        f"{name} with in_shape={in_shape}: block {index} would pool a "
                        f"{height}x{width} feature map to nothing; use larger images, fewer "
                        f"channels entries, or pool=None"
                    ) from None
                layers["pool"] = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
                height, width = pooled
            feature_blocks.append(nn.Sequential(layers))
        self.features = nn.Sequential(*feature_blocks)
        self.feature_shape = (in_channels, height, width)

        if head == "gap":
            head_layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            if dropout > 0:
                head_layers.append(nn.Dropout(dropout))
            head_layers.append(nn.Linear(in_channels, num_classes))
        else:
            head_layers = [nn.Flatten()]
            in_features = in_channels * height * width
            for hidden_features in self.head_hidden:
                head_layers += [
                    nn.Linear(in_features, hidden_features),
                    make_activation(activation),
                ]
                if dropout > 0:
                    head_layers.append(nn.Dropout(dropout))
                in_features = hidden_features
            head_layers.append(nn.Linear(in_features, num_classes))
        self.head = nn.Sequential(*head_layers)

        self.reset_parameters()

    @property
    def hidden(self) -> tuple[int, ...]:
        """Deprecated name of :attr:`head_hidden`."""
        warn_deprecated(f"{type(self).__name__}.hidden", f"{type(self).__name__}.head_hidden")
        return self.head_hidden

    def reset_parameters(self) -> None:
        """Re-initialise all layers (conv / linear with ``init``, batch norm to identity)."""
        _reinitialise(self, self.init, self.activation)

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``[B, C, H, W]`` to logits ``[B, num_classes]``."""
        channels, height, width = self.in_shape
        # The GAP head accepts any spatial size; the flatten head's first Linear fixes H and W.
        spatial_ok = self.head_type == "gap" or tuple(x.shape[2:]) == (height, width)
        if x.dim() != 4 or x.shape[1] != channels or not spatial_ok:
            expected = (
                f"[B, {channels}, H, W]"
                if self.head_type == "gap"
                else (f"[B, {channels}, {height}, {width}]")
            )
            raise ValueError(
                f"{type(self).__name__} expected input of shape {expected}, got {list(x.shape)}"
            )
        return self.head(self.features(x))

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, num_classes={self.num_classes}, "
            f"channels={self.channels}, head={self.head_type!r}"
            + (f", blocks={self.blocks}" if self.blocks != 1 else "")
            + (", residual=True" if self.residual else "")
        )


class ConvNet(nn.Sequential):
    r"""A CNN assembled from its two parts: a feature extractor, then a head.

    .. math::
        \mathbf{y} = \mathrm{head}(\mathrm{features}(\mathbf{X}))

    The children are named ``features`` and ``head``, as in :class:`CNN`, so a :class:`CNN`'s
    state dict loads into a ``ConvNet`` of the same layers and back.
    :func:`~gconv.models.grid_gnn_to_cnn` returns one for a grid GNN that was not built by
    :class:`~gconv.models.GridGNN`.

    Args:
        in_shape (tuple[int, int, int]): :math:`(C, H, W)` of one input image (what
            :func:`~gconv.models.cnn_to_grid_gnn` reads).
        features (nn.Module): images -> feature maps (``Conv2d``, pools, activations, ...).
        head (nn.Module): feature maps -> logits (a global pool or ``Flatten``, then ``Linear``).

    Shapes:
        - **input:** images :math:`(B, C, H, W)`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    def __init__(self, in_shape: Sequence[int], features: nn.Module, head: nn.Module) -> None:
        super().__init__(OrderedDict(features=features, head=head))
        self.in_shape = tuple(in_shape)

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}"


def lecture_cnn(num_classes: int = 10, in_shape: Sequence[int] = (1, 28, 28)) -> CNN:
    """The lecture-notes MNIST CNN: two conv blocks and a 128-unit dense layer.

    ``conv3x3(32) -> ReLU -> maxpool2 -> conv3x3(64) -> ReLU -> maxpool2 -> flatten ->
    Linear(3136, 128) -> ReLU -> Linear(128, num_classes)``, 421,642 parameters for MNIST.

    This is the layer sequence of the Keras ``mnist_convnet`` example and of PyTorch's
    ``examples/mnist`` (32 and 64 3x3 filters, a 128-unit dense layer), with "same" padding so each
    pool halves the map exactly (28 -> 14 -> 7) and without dropout, so it trains fast on the
    5,000-digit embedded set; use :class:`CNN` with ``dropout=`` / ``batch_norm=True`` for the
    regularised variants.
    """
    return CNN(
        in_shape=in_shape,
        num_classes=num_classes,
        channels=(32, 64),
        kernel_size=3,
        head_hidden=(128,),
        head="flatten",
        pool="max",
        activation="relu",
        init="kaiming",
    )


mnist_cnn = deprecated_function(lecture_cnn, "gconv.models.mnist_cnn", "gconv.models.lecture_cnn")


class MLP(nn.Module):
    r"""A fully connected classifier (the DNN baseline): flattens its input, then

    .. math::
        \mathbf{h}^{(\ell)} = \mathrm{Dropout}(\sigma(\mathrm{BN}(\mathbf{W}^{(\ell)}
        \mathbf{h}^{(\ell-1)} + \mathbf{b}^{(\ell)}))), \qquad
        \mathbf{y} = \mathbf{W}^{(L)} \mathbf{h}^{(L-1)} + \mathbf{b}^{(L)}

    Args:
        in_shape (int or tuple[int, ...]): The shape of one input (e.g. :obj:`(1, 28, 28)`), which
            is flattened, or the number of input features; ``in_features=`` is its deprecated
            name.
        num_classes (int): Number of output logits. (default: :obj:`10`)
        hidden (tuple[int, ...]): Hidden layer sizes. (default: :obj:`(256, 128)`)
        dropout (float): Dropout probability after each hidden layer. (default: :obj:`0.0`)
        batch_norm (bool): Add ``BatchNorm1d`` after each hidden linear layer. (default:
            :obj:`False`)
        activation (str): Activation name, as in :class:`CNN`. (default: :obj:`"relu"`)
        init (str, optional): ``"kaiming"``, ``"xavier"`` or :obj:`None`. (default:
            :obj:`"kaiming"`)

    Attributes:
        in_features (int): :math:`\prod` ``in_shape``, the width of the first linear layer.

    Shapes:
        - **input:** :math:`(B, *)` with :math:`\prod * = \text{in_features}`
        - **output:** logits :math:`(B, \text{num_classes})`
    """

    @renamed_keywords(in_features="in_shape")
    def __init__(
        self,
        in_shape: int | Sequence[int],
        num_classes: int = 10,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.0,
        batch_norm: bool = False,
        activation: str = "relu",
        init: str | None = "kaiming",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        given = in_shape
        in_shape = (in_shape,) if isinstance(in_shape, int) else tuple(in_shape)
        if not in_shape or not all(isinstance(d, int) and d > 0 for d in in_shape):
            raise ValueError(
                f"{name} expected in_shape as positive ints (a shape or a size), got {given}"
            )
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"{name} expected num_classes >= 1, got {num_classes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name} expected dropout in [0, 1), got {dropout}")
        _check_choice(name, "activation", activation, tuple(ACTIVATIONS))
        _check_choice(name, "init", init, INITS)

        self.in_shape = in_shape
        self.in_features = math.prod(in_shape)
        self.num_classes = num_classes
        self.hidden = _as_tuple(hidden, "hidden", name, allow_empty=True)
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.activation = activation
        self.init = init

        layers: list[nn.Module] = [nn.Flatten()]
        width = self.in_features
        for hidden_features in self.hidden:
            layers.append(nn.Linear(width, hidden_features, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_features))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden_features
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise all layers (linear with ``init``, batch norm to identity)."""
        _reinitialise(self, self.init, self.activation)

    def forward(self, x: Tensor) -> Tensor:
        """Map inputs ``[B, *in_shape]`` to logits ``[B, num_classes]``."""
        if x.dim() < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise ValueError(
                f"{type(self).__name__} expected input of shape [B, {', '.join(map(str, self.in_shape))}]"
                f" ({self.in_features} features per sample), got {list(x.shape)}"
            )
        return self.layers(x)

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, num_classes={self.num_classes}, hidden={self.hidden}"
