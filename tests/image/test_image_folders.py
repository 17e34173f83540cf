"""Image folders read as torchvision's ImageFolder layout: classes, splits, sizes, colour modes,
and one clear line for each way a folder can be unusable."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from image_data import write_digit_folder
from PIL import Image

from gconv.data import list_images, read_image, read_image_folder
from gconv.models import CNN


def test_classes_labels_and_a_stratified_split(digit_folder):
    data = read_image_folder(digit_folder, split_sizes=(0.5, 0.25, 0.25), verbose=False)
    assert data.classes == ["0", "1", "7"] and data.color_mode == "grayscale"
    assert data.images.shape == (48, 1, 28, 28) and data.images.dtype == torch.uint8
    for split, n in (("train", 24), ("val", 12), ("test", 12)):
        labels = data.labels[data.indices(split)]
        assert torch.bincount(labels, minlength=3).tolist() == [n // 3] * 3  # stratified
    # the pixels are the PNG's, label k is the k-th sorted folder
    first = data.paths[0]
    assert first.parent.name == data.classes[int(data.labels[0])]
    assert torch.equal(data.images[0, 0], torch.from_numpy(np.array(Image.open(first))))
    x, y = next(iter(data.loader("val", batch_size=100)))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and len(y) == 12


def test_predefined_split_folders_and_resizing(tmp_path):
    for part, n in (("train", 8), ("val", 3), ("test", 3)):
        write_digit_folder(tmp_path / "d" / part, digits=(3, 5), per_class=n)
    data = read_image_folder(tmp_path / "d", image_size=(20, 12), verbose=False)
    assert data.split.count("train") == 16 and data.split.count("test") == 6
    assert data.image_size == (20, 12) and data.classes == ["3", "5"]


def test_normalisation_is_fitted_on_the_training_split(digit_folder):
    data = read_image_folder(digit_folder, verbose=False)
    mean, std = data.mean_std()
    x, _ = data.tensors("train")
    assert mean[0] == pytest.approx(x.double().mean().item(), abs=1e-6)
    assert std[0] == pytest.approx(x.double().std(unbiased=False).item(), abs=1e-6)


def test_a_corrupt_file_is_reported_by_path_and_skipped(digit_folder, capsys):
    bad = digit_folder / "1" / "zz_truncated.png"
    good = (digit_folder / "1" / "000.png").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    text = digit_folder / "0" / "notes.jpg"
    text.write_text("not an image")
    data = read_image_folder(digit_folder)
    assert {p for p, _, _ in data.skipped} == {bad, text} and len(data.paths) == 48
    out = capsys.readouterr().out
    assert f"skipped {bad}" in out and f"skipped {text}: cannot identify image file" in out


def _error(root: Path, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        read_image_folder(root, verbose=False, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_hidden_folders_are_no_classes_nor_images(digit_folder):
    (digit_folder / ".ipynb_checkpoints").mkdir()
    (digit_folder / "0" / ".thumbs").mkdir()
    Image.new("L", (28, 28)).save(digit_folder / "0" / ".thumbs" / "a.png")
    data = read_image_folder(digit_folder, verbose=False)
    assert data.classes == ["0", "1", "7"] and len(data.paths) == 48
    assert len(list_images(digit_folder)) == 48


def test_an_empty_class_folder_is_one_clear_line(digit_folder):
    (digit_folder / "9").mkdir()
    assert _error(digit_folder).startswith(f"empty class folder: {digit_folder / '9'} holds no")


def test_a_single_class_is_one_clear_line(tmp_path):
    write_digit_folder(tmp_path / "d", digits=(4,), per_class=3)
    assert "has one class folder ('4'): a classifier needs at least two" in _error(tmp_path / "d")


def test_mixed_grey_and_colour_is_one_clear_line_unless_a_mode_is_chosen(digit_folder):
    write_digit_folder(digit_folder, digits=(2,), per_class=16, mode="RGB")
    message = _error(digit_folder)
    assert "mixes grey and colour images (48 grey, e.g." in message
    assert "16 colour, e.g. " in message and "--color-mode rgb" in message
    data = read_image_folder(digit_folder, color_mode="rgb", verbose=False)
    assert data.images.shape[1] == 3
    grey = read_image(digit_folder / "0" / "000.png", "rgb")
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_missing_and_unreadable_folders_are_one_clear_line(tmp_path, digit_folder, monkeypatch):
    assert _error(tmp_path / "nowhere") == f"image folder {tmp_path / 'nowhere'} does not exist"
    (tmp_path / "flat").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "flat" / "a.png")
    assert "has no class folders: put the images of each class" in _error(tmp_path / "flat")
    assert "is a file: --images takes a folder" in _error(tmp_path / "flat" / "a.png")
    os.chmod(digit_folder / "1", 0)
    if os.geteuid() == 0:  # root reads any folder: deny as the permission bits say
        real_access = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode: real_access(p, mode) and os.stat(p).st_mode & 0o777 != 0
        )
    try:
        message = _error(digit_folder)
        assert message == f"cannot read the class folder {digit_folder / '1'}: permission denied"
    finally:
        os.chmod(digit_folder / "1", 0o755)


def test_list_images_finds_image_files_recursively(digit_folder):
    (digit_folder / "README.txt").write_text("x")
    files = list_images(digit_folder)
    assert len(files) == 48 and files == sorted(files)
    (digit_folder.parent / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        list_images(digit_folder.parent / "empty")


def test_cnn_blocks_per_stage_is_the_mnist_example_network():
    model = CNN((1, 28, 28), 10, channels=(32, 64, 128), blocks=(1, 2, 2), batch_norm=True,
                head_hidden=(), init=None)  # fmt: skip
    assert sum(p.numel() for p in model.parameters()) == 289_130  # examples/mnist_cnn.py's
    assert "blocks=(1, 2, 2)" in repr(model)
    with pytest.raises(ValueError, match="one per entry of channels"):
        CNN(channels=(8, 16), blocks=(1, 2, 3))
