r"""Batch image augmentation on the tensor's device, with tensor ops only.

Each augmentation is a callable ``aug(x, generator=None) -> Tensor`` on a batch ``x`` of shape
``[B, C, H, W]``: it draws one random transform per sample in a single call (no per-sample Python
loop) and returns a new batch on the same device. Given a seeded ``torch.Generator`` the result is
deterministic. They slot into :class:`gconv.data.TensorLoader` as ``augment=``.

The translations are gathers: sample ``b`` of the output reads the input at

.. math::
    y_{b,c,i,j} = x_{b,c,\,i - \delta^y_b,\, j - \delta^x_b}

and takes ``fill`` where that index falls outside the image, which is exactly torchvision's
``RandomCrop(size, padding=p, fill=fill)`` applied to each image on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = [
    "translate",
    "affine",
    "RandomShift",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Compose",
]


def _check_images(x: Tensor, owner: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{owner} expected a batch of images [B, C, H, W], got {got}")


def _randint(
    low: int, high: int, size: int, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    """Integers in ``[low, high]`` drawn on the generator's device, returned on ``device``."""
    # A generator can only drive sampling on its own device; a CPU generator with a CUDA batch is
    # the common case (seeded loaders), so draw there and move the B integers.
    source = generator.device if generator is not None else device
    values = torch.randint(low, high + 1, (size,), generator=generator, device=source)
    return values.to(device, non_blocking=True)


def translate(x: Tensor, shifts: Tensor, fill: float = 0.0) -> Tensor:
    r"""Translate each image of a batch by its own integer offset, filling the uncovered border.

    Args:
        x (Tensor): Images :math:`(B, C, H, W)`.
        shifts (Tensor): Integer offsets :math:`(B, 2)` as ``(dy, dx)``: positive ``dy`` moves the
            content down, positive ``dx`` moves it right.
        fill (float): Value of the pixels shifted in from outside. (default: :obj:`0.0`)

    Returns:
        Tensor :math:`(B, C, H, W)`: ``out[b, :, i, j] = x[b, :, i - dy, j - dx]``, or ``fill``.
    """
    _check_images(x, "translate")
    batch, _, height, width = x.shape
    if shifts.shape != (batch, 2) or shifts.is_floating_point():
        raise ValueError(
            f"translate expected integer shifts of shape ({batch}, 2) as (dy, dx), got "
            f"{shifts.dtype} {tuple(shifts.shape)}"
        )
    # A shift of a whole image or more leaves only fill, so the border never needs to be wider.
    # (Reading the largest shift synchronises with the device; RandomShift knows it in advance.)
    pad = min(int(shifts.abs().max()), max(height, width))
    shifts = shifts.to(x.device).clamp(-pad, pad)
    return _crop_padded(x, -shifts[:, 0], -shifts[:, 1], (height, width), pad, fill)


def _crop_padded(
    x: Tensor, top: Tensor, left: Tensor, size: tuple[int, int], pad: int, fill: float
) -> Tensor:
    """Pad ``x`` by ``pad`` pixels of ``fill``, then cut from each image ``b`` the ``size`` window
    whose top-left corner is ``(top[b], left[b])`` in unpadded coordinates (``>= -pad``)."""
    channels = x.shape[1]
    crop_h, crop_w = size
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=fill) if pad else x
    rows = (top + pad)[:, None] + torch.arange(crop_h, device=x.device)  # [B, h]
    cols = (left + pad)[:, None] + torch.arange(crop_w, device=x.device)  # [B, w]
    # Two gathers (rows, then columns) read each output pixel once: no per-sample loop, and
    # about 3x faster on CPU than gathering from the unpadded image with clamping and masking.
    by_rows = padded.gather(2, rows[:, None, :, None].expand(-1, channels, -1, padded.shape[3]))
    return by_rows.gather(3, cols[:, None, None, :].expand(-1, channels, crop_h, -1))


class RandomShift:
    r"""Shift every image by its own random integer offset in ``[-max_shift, max_shift]`` along
    each axis, filling the uncovered border with ``fill``.

    Equal to torchvision's ``RandomCrop((H, W), padding=max_shift, fill=fill)`` per image (pad,
    then crop at a random position), done for the whole batch with one pad and two gathers.

    Args:
        max_shift (int): Largest shift in pixels; :obj:`0` is the identity. (default: :obj:`2`)
        fill (float): Value of the uncovered pixels. (default: :obj:`0.0`)

    Shapes:
        - **input:** :math:`(B, C, H, W)`, any device
        - **output:** :math:`(B, C, H, W)`, same device and dtype
    """

    def __init__(self, max_shift: int = 2, fill: float = 0.0) -> None:
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"RandomShift expected an int max_shift >= 0, got {max_shift!r}")
        self.max_shift = max_shift
        self.fill = fill

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, type(self).__name__)
        if self.max_shift == 0:
            return x
        batch, _, height, width = x.shape
        shifts = _randint(-self.max_shift, self.max_shift, 2 * batch, x.device, generator)
        # Shifting by (dy, dx) is reading the window whose corner is at (-dy, -dx).
        top, left = -shifts[:batch], -shifts[batch:]
        return _crop_padded(x, top, left, (height, width), self.max_shift, self.fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_shift={self.max_shift}, fill={self.fill})"


def affine(x: Tensor, angle: Tensor, scale: Tensor, shift: Tensor, fill: float = 0.0) -> Tensor:
    r"""Rotate, scale and translate each image of a batch about its centre (bilinear sampling).

    Output pixel :math:`p` (coordinates relative to the image centre, :math:`y` pointing down)
    reads the input at

    .. math::
        q = \frac{1}{s_b} R(-\theta_b)\,(p - t_b),

    so the content turns by :math:`\theta_b` (counter-clockwise as displayed), grows by
    :math:`s_b` and moves by :math:`t_b = (dy, dx)` pixels; pixels read from outside the image
    take ``fill``. An angle of 90° is ``torch.rot90`` of a square image, and a zero angle with
    scale 1 and integer shifts is :func:`translate` (both exact up to rounding, tested).

    Args:
        x (Tensor): Images :math:`(B, C, H, W)`, floating point.
        angle (Tensor): Rotation per image :math:`(B,)` in degrees.
        scale (Tensor): Zoom factor per image :math:`(B,)`, > 0.
        shift (Tensor): Translation per image :math:`(B, 2)` as ``(dy, dx)`` in pixels.
        fill (float): Value outside the image. (default: :obj:`0.0`)
    """
    _check_images(x, "affine")
    batch, _, height, width = x.shape
    if angle.shape != (batch,) or scale.shape != (batch,) or shift.shape != (batch, 2):
        raise ValueError(
            f"affine expected angle ({batch},), scale ({batch},) and shift ({batch}, 2), got "
            f"{tuple(angle.shape)}, {tuple(scale.shape)} and {tuple(shift.shape)}"
        )
    angle, scale, shift = (t.to(x.device, x.dtype) for t in (angle, scale, shift))
    radians = torch.deg2rad(angle)
    cos, sin = torch.cos(radians) / scale, torch.sin(radians) / scale
    # affine_grid works in normalised coordinates ([-1, 1] across each axis), x before y. For
    # the input position q = A (p - t) in pixels, A = R(-angle) / scale with y down:
    # [[cos, -sin], [sin, cos]] in (x, y) order, rescaled by the aspect (W, H).
    ax, ay = width / 2.0, height / 2.0
    dx, dy = shift[:, 1], shift[:, 0]
    theta = torch.stack(
        [
            torch.stack([cos, -sin * ay / ax, -(cos * dx - sin * dy) / ax], dim=1),
            torch.stack([sin * ax / ay, cos, -(sin * dx + cos * dy) / ay], dim=1),
        ],
        dim=1,
    )
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    # zeros padding on x - fill, then + fill: the outside reads exactly fill
    shifted = x - fill if fill else x
    out = torch.nn.functional.grid_sample(
        shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out + fill if fill else out


class RandomAffine:
    r"""Rotate, scale and translate every image by its own random amounts (see :func:`affine`),
    like torchvision's ``RandomAffine(degrees, translate, scale)`` per image, for the whole batch
    in one ``grid_sample``.

    Args:
        degrees (float): Rotation drawn uniformly from ``[-degrees, degrees]``. (default:
            :obj:`10.0`)
        scale (tuple[float, float]): Zoom drawn uniformly from this range. (default:
            :obj:`(0.9, 1.1)`)
        translate (float): Shift along each axis drawn uniformly from ``[-translate,
            translate]`` pixels (not rounded). (default: :obj:`2.0`)
        fill (float): Value of the pixels from outside the image. (default: :obj:`0.0`)

    Shapes:
        - **input:** :math:`(B, C, H, W)`, any device, floating point
        - **output:** :math:`(B, C, H, W)`, same device and dtype
    """

    def __init__(
        self,
        degrees: float = 10.0,
        scale: tuple[float, float] = (0.9, 1.1),
        translate: float = 2.0,
        fill: float = 0.0,
    ) -> None:
        if degrees < 0 or translate < 0:
            raise ValueError(
                f"RandomAffine expected degrees >= 0 and translate >= 0, got {degrees} and "
                f"{translate}"
            )
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(
                f"RandomAffine expected scale=(low, high) with 0 < low <= high, got {scale}"
            )
        self.degrees = float(degrees)
        self.scale = (float(scale[0]), float(scale[1]))
        self.translate = float(translate)
        self.fill = fill

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, type(self).__name__)
        batch = x.shape[0]
        source = generator.device if generator is not None else x.device
        u = torch.rand(4, batch, generator=generator, device=source).to(x.device) * 2 - 1
        low, high = self.scale
        angle = u[0] * self.degrees
        scale = low + (u[1] + 1) / 2 * (high - low)
        shift = torch.stack([u[2], u[3]], dim=1) * self.translate
        return affine(x, angle, scale, shift, self.fill)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(degrees={self.degrees}, scale={self.scale}, "
            f"translate={self.translate}, fill={self.fill})"
        )


class RandomCrop:
    r"""Crop a random ``size`` window from each image after padding it by ``padding`` pixels,
    like torchvision's ``RandomCrop(size, padding, fill=fill)``, for the whole batch at once.

    Args:
        size (int or tuple[int, int]): Output size ``(h, w)``; an int gives a square.
        padding (int): Border added on every side before cropping. (default: :obj:`0`)
        fill (float): Value of the padded border. (default: :obj:`0.0`)

    Shapes:
        - **input:** :math:`(B, C, H, W)` with :math:`H + 2p \ge h` and :math:`W + 2p \ge w`
        - **output:** :math:`(B, C, h, w)`
    """

    def __init__(self, size: int | Sequence[int], padding: int = 0, fill: float = 0.0) -> None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"RandomCrop expected size as a positive int or (h, w), got {size}")
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"RandomCrop expected an int padding >= 0, got {padding!r}")
        self.size = size
        self.padding = padding
        self.fill = fill

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, type(self).__name__)
        batch, _, height, width = x.shape
        crop_h, crop_w = self.size
        # Top-left corner of the window in padded coordinates: 0 .. H + 2p - h.
        span_h, span_w = height + 2 * self.padding - crop_h, width + 2 * self.padding - crop_w
        if span_h < 0 or span_w < 0:
            raise ValueError(
                f"RandomCrop of size {self.size} with padding {self.padding} needs images of at "
                f"least {crop_h - 2 * self.padding}x{crop_w - 2 * self.padding}, got {height}x{width}"
            )
        top = _randint(0, span_h, batch, x.device, generator) - self.padding
        left = _randint(0, span_w, batch, x.device, generator) - self.padding
        return _crop_padded(x, top, left, self.size, self.padding, self.fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding}, fill={self.fill})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (for natural images, not digits).

    Args:
        p (float): Flip probability. (default: :obj:`0.5`)
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip expected p in [0, 1], got {p}")
        self.p = p

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, type(self).__name__)
        source = generator.device if generator is not None else x.device
        flip = torch.rand(x.shape[0], generator=generator, device=source).to(x.device) < self.p
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class Compose:
    """Apply augmentations in order, passing the same generator to each.

    Args:
        augmentations (callable): Callables ``aug(x, generator=None) -> Tensor``.
    """

    def __init__(self, *augmentations: Callable[..., Tensor]) -> None:
        self.augmentations = augmentations

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for augmentation in self.augmentations:
            x = augmentation(x, generator=generator)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.augmentations))
        return f"{type(self).__name__}({inner})"
