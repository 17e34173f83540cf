"""Tests of gconv.data.augment: vectorised shifts and crops against hand-made references."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from gconv.data.augment import (
    Compose,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomShift,
    affine,
    translate,
)


def rolled_with_fill(image: torch.Tensor, dy: int, dx: int, fill: float = 0.0) -> torch.Tensor:
    """Reference shift of one [C, H, W] image: torch.roll, then blank what wrapped around."""
    out = torch.roll(image, shifts=(dy, dx), dims=(1, 2)).clone()
    if dy > 0:
        out[:, :dy] = fill
    elif dy < 0:
        out[:, dy:] = fill
    if dx > 0:
        out[:, :, :dx] = fill
    elif dx < 0:
        out[:, :, dx:] = fill
    return out


@pytest.fixture
def batch():
    return torch.rand(6, 2, 7, 5, generator=torch.Generator().manual_seed(0)) + 0.5


def test_translate_known_shifts_equal_roll_with_fill(batch):
    shifts = torch.tensor([[0, 0], [1, 0], [0, -2], [-3, 2], [2, 2], [-1, -1]])
    out = translate(batch, shifts, fill=-1.0)
    for image, result, (dy, dx) in zip(batch, out, shifts.tolist(), strict=True):
        torch.testing.assert_close(result, rolled_with_fill(image, dy, dx, fill=-1.0))


def test_translate_beyond_the_image_leaves_only_fill(batch):
    shifts = torch.tensor([[7, 0], [0, -5], [100, 100], [0, 0], [0, 0], [0, 0]])
    out = translate(batch, shifts)
    assert torch.count_nonzero(out[:3]) == 0
    assert torch.equal(out[3:], batch[3:])


def test_random_shift_each_sample_is_some_allowed_shift(batch):
    out = RandomShift(max_shift=2)(batch, generator=torch.Generator().manual_seed(1))
    allowed = list(itertools.product(range(-2, 3), repeat=2))
    for image, result in zip(batch, out, strict=True):
        assert any(torch.equal(result, rolled_with_fill(image, dy, dx)) for dy, dx in allowed)


def test_random_shift_covers_all_offsets():
    # One bright pixel in the middle of a 9x9 image: its new position reveals the shift drawn.
    x = torch.zeros(2000, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = RandomShift(max_shift=1)(x, generator=torch.Generator().manual_seed(0))
    positions = out.flatten(1).argmax(1)
    dy, dx = positions // 9 - 4, positions % 9 - 4
    counts = torch.bincount((dy + 1) * 3 + (dx + 1), minlength=9)
    assert counts.min() > 2000 / 9 * 0.7  # all 9 offsets, roughly uniform
    assert torch.equal(out.sum((1, 2, 3)), torch.ones(2000))  # the pixel never falls off


def test_random_shift_deterministic_given_generator(batch):
    aug = RandomShift(max_shift=3, fill=0.5)
    first = aug(batch, generator=torch.Generator().manual_seed(7))
    again = aug(batch, generator=torch.Generator().manual_seed(7))
    other = aug(batch, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.shape == batch.shape and first.dtype == batch.dtype
    assert first.device == batch.device


def test_random_shift_zero_is_identity_and_dtype_preserved(batch):
    assert RandomShift(max_shift=0)(batch) is batch
    half = batch.to(torch.float64)
    assert RandomShift(1)(half, torch.Generator().manual_seed(0)).dtype == torch.float64


def test_random_crop_windows_of_padded_image(batch):
    crop = RandomCrop((4, 3), padding=1, fill=0.25)
    out = crop(batch, generator=torch.Generator().manual_seed(3))
    assert out.shape == (6, 2, 4, 3)
    padded = F.pad(batch, (1, 1, 1, 1), value=0.25)
    for image, result in zip(padded, out, strict=True):
        windows = [image[:, t : t + 4, s : s + 3] for t in range(6) for s in range(5)]
        assert any(torch.equal(result, window) for window in windows)


def test_random_crop_full_size_with_padding_equals_random_shift_family(batch):
    out = RandomCrop(size=(7, 5), padding=2)(batch, torch.Generator().manual_seed(0))
    allowed = list(itertools.product(range(-2, 3), repeat=2))
    for image, result in zip(batch, out, strict=True):
        assert any(torch.equal(result, rolled_with_fill(image, dy, dx)) for dy, dx in allowed)


def test_horizontal_flip_and_compose(batch):
    assert torch.equal(RandomHorizontalFlip(p=0.0)(batch), batch)
    assert torch.equal(RandomHorizontalFlip(p=1.0)(batch), batch.flip(-1))
    mixed = RandomHorizontalFlip(0.5)(batch, torch.Generator().manual_seed(0))
    for image, result in zip(batch, mixed, strict=True):
        assert torch.equal(result, image) or torch.equal(result, image.flip(-1))
    pipeline = Compose(RandomHorizontalFlip(1.0), RandomShift(0))
    assert torch.equal(pipeline(batch, torch.Generator().manual_seed(0)), batch.flip(-1))
    assert (
        repr(pipeline) == "Compose(RandomHorizontalFlip(p=1.0), RandomShift(max_shift=0, fill=0.0))"
    )


def test_affine_quarter_turn_is_rot90_and_integer_shift_is_translate(batch):
    square = torch.rand(4, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    ones, zeros = torch.ones(4), torch.zeros(4)
    turned = affine(square, torch.full((4,), 90.0), ones, torch.zeros(4, 2))
    torch.testing.assert_close(turned, torch.rot90(square, 1, dims=(2, 3)), atol=1e-5, rtol=0)
    shifts = torch.tensor([[1, -2], [0, 3], [-2, -1], [7, 0], [0, 0], [2, 2]])
    moved = affine(batch, torch.zeros(6), torch.ones(6), shifts.float(), fill=0.25)
    torch.testing.assert_close(moved, translate(batch, shifts, fill=0.25), atol=1e-5, rtol=0)
    assert torch.equal(affine(square, zeros, ones, torch.zeros(4, 2)), square)


def test_affine_zoom_keeps_the_centre_and_spreads_a_point():
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 5] = 1.0  # one pixel right of the centre
    zoomed = affine(image, torch.zeros(1), torch.full((1,), 2.0), torch.zeros(1, 2))
    # content moves away from the centre (4, 4): the mass now sits around column 6
    centre_of_mass = (zoomed[0, 0].sum(0) * torch.arange(9.0)).sum() / zoomed.sum()
    assert centre_of_mass.item() == pytest.approx(6.0, abs=1e-4)
    row_centre = (zoomed[0, 0].sum(1) * torch.arange(9.0)).sum() / zoomed.sum()
    assert row_centre.item() == pytest.approx(4.0, abs=1e-4)  # the centre row stays put


def test_random_affine_seeded_within_bounds_and_identity_when_off(batch):
    augment = RandomAffine(degrees=15, scale=(0.9, 1.1), translate=2)
    first = augment(batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, augment(batch, torch.Generator().manual_seed(0)))
    assert not torch.equal(first, augment(batch, torch.Generator().manual_seed(1)))
    off = RandomAffine(degrees=0, scale=(1.0, 1.0), translate=0)
    torch.testing.assert_close(off(batch, torch.Generator().manual_seed(0)), batch)
    # bilinear sampling mixes neighbours: values stay inside the input's range (and fill 0)
    assert first.min() >= 0 and first.max() <= batch.max() + 1e-6
    assert repr(off) == "RandomAffine(degrees=0.0, scale=(1.0, 1.0), translate=0.0, fill=0.0)"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: RandomShift(-1), "max_shift >= 0, got -1"),
        (lambda: RandomShift(2)(torch.zeros(3, 28, 28)), r"\[B, C, H, W\], got \[3, 28, 28\]"),
        (
            lambda: RandomCrop(10)(torch.zeros(1, 1, 4, 4)),
            "needs images of at least 10x10, got 4x4",
        ),
        (lambda: RandomCrop((2, 2, 2)), r"size as a positive int or \(h, w\)"),
        (lambda: translate(torch.zeros(2, 1, 3, 3), torch.zeros(2, 2)), "integer shifts of shape"),
        (lambda: RandomHorizontalFlip(1.5), r"p in \[0, 1\], got 1.5"),
        (lambda: RandomAffine(scale=(1.2, 1.0)), r"0 < low <= high, got \(1.2, 1.0\)"),
        (lambda: RandomAffine(degrees=-1), "degrees >= 0"),
        (
            lambda: affine(
                torch.zeros(2, 1, 4, 4), torch.zeros(2), torch.ones(3), torch.zeros(2, 2)
            ),
            r"scale \(2,\)",
        ),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
