"""Your own images: a folder in torchvision's ``ImageFolder`` layout as tensors and loaders.

The layout is torchvision's (``ImageFolder``) and Keras' (``image_dataset_from_directory``): one
sub-folder per class, its name the class name::

    DIR/cat/001.jpg, DIR/cat/002.png, ..., DIR/dog/...

or, for a predefined split, ``DIR/train``, ``DIR/val`` (also ``valid``, ``validation``) and
``DIR/test``, each in that layout; a missing ``val`` or ``test`` is drawn from ``train``. Hidden
folders (``.ipynb_checkpoints``) are no classes. Without
one, the images are split with scikit-learn's stratified ``train_test_split``, so every part holds
every class in its share.

Files are found with torchvision's ``find_classes`` / ``make_dataset`` (its extensions:
:data:`IMAGE_EXTENSIONS`) and decoded with PIL, as torchvision's ``ImageFolder`` loader does, then
turned into tensors and resized (antialiased, to one ``(H, W)`` for every image, the aspect ratio not
kept: Keras' default) with ``torchvision.transforms.v2.functional``. A file that cannot be
decoded is reported by path and skipped; a folder without classes, an empty class folder, a single
class and a mix of grey and colour images (with ``color_mode="auto"``) raise one ``ValueError``
line that names the folder or files and the fix.

:func:`read_image_folder` reads a folder into :class:`ImageFolderData` (uint8 images in memory,
labels, the split, what was skipped), whose :meth:`~ImageFolderData.loader` gives a
:class:`~gconv.data.TensorLoader` of float images in ``[0, 1]``; :func:`read_images` reads any list
of files the same way (what prediction uses), :func:`list_images` finds the image files under a
folder.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.transforms.v2 import functional as TF

from gconv.data.loader import TensorLoader

__all__ = [
    "IMAGE_EXTENSIONS",
    "COLOR_MODES",
    "ImageFolderData",
    "read_image_folder",
    "read_images",
    "read_image",
    "list_images",
    "color_mode_of",
]

#: The file extensions torchvision's ``ImageFolder`` reads (lower case; matched case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(IMG_EXTENSIONS)
#: ``"auto"`` (grey if every training image is grey, colour if every one is colour, else an
#: error), ``"grayscale"`` (1 channel) or ``"rgb"`` (3 channels): Keras' ``color_mode`` names.
COLOR_MODES: tuple[str, ...] = ("auto", "grayscale", "rgb")
CHANNELS = {"grayscale": 1, "rgb": 3}
SPLITS = ("train", "val", "test")
# sub-folder name -> split (Keras and torchvision data sets use all of these)
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
# PIL modes without colour (the alpha of "LA" is dropped, as PIL's convert("L") does)
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


# ------------------------------------------------------------------------------ single images
def _is_grey(image: Image.Image) -> bool:
    if image.mode in GREY_MODES:
        return True
    if image.mode in ("P", "PA"):  # a palette image is grey where every entry is
        palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return False


def color_mode_of(path: str | os.PathLike) -> str:
    """``"grayscale"`` or ``"rgb"``: what the file holds, from its header (PIL's mode; a palette
    image is grey where every palette entry is).

    Raises:
        ValueError: the file is not an image PIL can identify (one line naming it).
    """
    try:
        with Image.open(path) as image:
            return "grayscale" if _is_grey(image) else "rgb"
    except Exception as err:  # noqa: BLE001 -- PIL's decoders raise many types; all mean "unreadable"
        raise ValueError(f"{path}: {_reason(err)}") from None


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, PermissionError):
        return "permission denied"
    return text.split(": '")[0] if "cannot identify image file" in text else text


def read_image(
    path: str | os.PathLike, color_mode: str = "rgb", size: Sequence[int] | None = None
) -> Tensor:
    """One image file as ``uint8 [C, H, W]``: decoded by PIL, converted to ``color_mode``
    (``"grayscale"``: 1 channel, ``"rgb"``: 3), resized to ``size = (H, W)`` (antialiased) when
    given.

    Raises:
        ValueError: the file cannot be read or decoded (one line naming it and why).
    """
    if color_mode not in CHANNELS:
        raise ValueError(f"color_mode must be 'grayscale' or 'rgb', got {color_mode!r}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later
            converted = image.convert("L" if color_mode == "grayscale" else "RGB")
    except Exception as err:  # noqa: BLE001 -- PIL's decoders raise many types; all mean "unreadable"
        raise ValueError(f"{path}: {_reason(err)}") from None
    tensor = TF.pil_to_tensor(converted)
    if size is not None and tuple(tensor.shape[1:]) != tuple(size):
        tensor = TF.resize(tensor, list(size), antialias=True)
    return tensor


def read_images(
    paths: Sequence[str | os.PathLike], color_mode: str, size: Sequence[int]
) -> tuple[Tensor, list[str | None]]:
    """Files as one ``uint8 [N, C, H, W]`` tensor (the readable ones, in order) and, for every
    path, ``None`` or the reason it could not be read."""
    images, errors = [], []
    for path in paths:
        try:
            images.append(read_image(path, color_mode, size))
            errors.append(None)
        except ValueError as err:
            errors.append(str(err).removeprefix(f"{path}: "))
    channels, (height, width) = CHANNELS[color_mode], size
    stacked = torch.stack(images) if images else torch.empty(0, channels, height, width)
    return stacked.to(torch.uint8), errors


def list_images(path: str | os.PathLike) -> list[Path]:
    """The image files (by :data:`IMAGE_EXTENSIONS`) under a folder, recursively and sorted
    (hidden files and folders left out), or the one file ``path``.

    Raises:
        ValueError: ``path`` does not exist, cannot be listed, or holds no image file.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path} does not exist: give a folder of images or an image file")
    try:
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    except OSError as err:
        raise ValueError(f"cannot read the folder {path}: {_reason(err)}") from None
    if not files:
        raise ValueError(f"{path} holds no image files (extensions {', '.join(IMAGE_EXTENSIONS)})")
    return files


# ------------------------------------------------------------------------------------ folders
def _check_folder(path: Path) -> None:
    if not path.exists():
        raise ValueError(f"image folder {path} does not exist")
    if not path.is_dir():
        raise ValueError(
            f"{path} is a file: --images takes a folder with one sub-folder of images per class"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise ValueError(f"cannot read the image folder {path}: permission denied")


def _class_files(folder: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """torchvision's class folders and files of one ``ImageFolder``-layout folder, checked."""
    _check_folder(folder)
    try:
        classes, _ = find_classes(str(folder))
        # hidden folders (.ipynb_checkpoints, .git) are no classes
        classes = [name for name in classes if not name.startswith(".")]
        if not classes:
            raise FileNotFoundError(folder)
        class_to_idx = {name: k for k, name in enumerate(classes)}
    except FileNotFoundError:
        raise ValueError(
            f"{folder} has no class folders: put the images of each class in a sub-folder named "
            f"after it ({folder}/<class>/*.png), as torchvision's ImageFolder reads them"
        ) from None
    except OSError as err:
        raise ValueError(f"cannot read the image folder {folder}: {_reason(err)}") from None
    unreadable = [c for c in classes if not os.access(folder / c, os.R_OK | os.X_OK)]
    if unreadable:
        raise ValueError(
            f"cannot read the class folder {folder / unreadable[0]}: permission denied"
        )

    def is_image(file: str) -> bool:  # torchvision's extensions, hidden files and folders left out
        parts = Path(file).relative_to(folder).parts
        return file.lower().endswith(IMAGE_EXTENSIONS) and not any(
            part.startswith(".") for part in parts
        )

    files = make_dataset(str(folder), class_to_idx, is_valid_file=is_image, allow_empty=True)
    counts = Counter(label for _, label in files)
    empty = [classes[k] for k in range(len(classes)) if counts[k] == 0]
    if empty:
        shown = ", ".join(str(folder / name) for name in empty[:3])
        more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        raise ValueError(
            f"empty class folder: {shown}{more} holds no image files (extensions "
            f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
        )
    return classes, files


def _split_folders(root: Path) -> dict[str, Path]:
    """``{"train": root/train, ...}`` when ``root`` holds a predefined split, else ``{}``."""
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    names = {p.name.lower(): p for p in folders}
    if "train" not in names or not set(names) <= set(SPLIT_FOLDERS):
        return {}
    split = {}
    for name, path in sorted(names.items()):
        if SPLIT_FOLDERS[name] in split:
            raise ValueError(
                f"{root} has two validation folders ({split[SPLIT_FOLDERS[name]].name}, {name}); "
                "keep one"
            )
        split[SPLIT_FOLDERS[name]] = path
    return split


def stratified_split(
    labels: np.ndarray, split_sizes: Sequence[float], seed: int, where: str = "the images"
) -> np.ndarray:
    """``"train"`` / ``"val"`` / ``"test"`` per label, by scikit-learn's stratified
    ``train_test_split`` (test first, then validation from the rest); a part with a positive
    fraction holds at least one image of every class."""
    from sklearn.model_selection import train_test_split

    n, num_classes = len(labels), len(np.unique(labels))
    parts = np.full(n, "train", dtype=object)
    rest = np.arange(n)
    sizes = dict(zip(SPLITS, split_sizes, strict=True))
    for name, fraction in (("test", sizes["test"]), ("val", sizes["val"])):
        if fraction <= 0:
            continue
        count = max(num_classes, round(fraction * n))
        try:
            rest, chosen = train_test_split(
                rest, test_size=count, stratify=labels[rest], random_state=seed
            )
        except ValueError:
            smallest = Counter(labels.tolist()).most_common()[-1]
            raise ValueError(
                f"cannot split {where} into train / val / test ({', '.join(map(str, split_sizes))})"
                f" with every class in every part: {n} images of {num_classes} classes, the "
                f"smallest class has {smallest[1]}; add images, change --split-sizes, or give "
                "train/, val/ and test/ folders"
            ) from None
        parts[chosen] = name
    return parts


@dataclass
class ImageFolderData:
    """An image folder in memory: what :func:`read_image_folder` returns.

    Attributes:
        root (Path): the folder.
        classes (list[str]): class names, sorted (torchvision's order: label ``k`` is
            ``classes[k]``).
        paths (list[Path]): the readable image files, in the order of ``images``.
        images (Tensor): ``uint8 [N, C, H, W]``, converted to ``color_mode`` and resized.
        labels (Tensor): ``int64 [N]``.
        split (list[str]): ``"train"``, ``"val"`` or ``"test"`` per image.
        color_mode (str): ``"grayscale"`` or ``"rgb"``.
        skipped (list[tuple[Path, str, str]]): files that could not be read: path, class name,
            reason.
    """

    root: Path
    classes: list[str]
    paths: list[Path]
    images: Tensor
    labels: Tensor
    split: list[str]
    color_mode: str
    skipped: list[tuple[Path, str, str]] = field(default_factory=list)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of every image."""
        return tuple(self.images.shape[2:])

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every image: a model's ``in_shape``."""
        return tuple(self.images.shape[1:])

    def indices(self, split: str) -> Tensor:
        """Positions of the images of one split."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return torch.tensor([i for i, s in enumerate(self.split) if s == split], dtype=torch.long)

    def tensors(self, split: str) -> tuple[Tensor, Tensor]:
        """``(float32 [n, C, H, W] in [0, 1], int64 [n])`` of one split."""
        index = self.indices(split)
        return self.images[index].float().div_(255.0), self.labels[index]

    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and standard deviation of the training images in ``[0, 1]`` (a
        constant channel gets a deviation of 1): the normalisation a model fits on them."""
        x = self.images[self.indices("train")].double().div_(255.0).transpose(0, 1).flatten(1)
        std = x.std(dim=1, unbiased=False)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        return x.mean(dim=1).tolist(), std.tolist()

    def loader(
        self,
        split: str,
        batch_size: int = 100,
        shuffle: bool | None = None,
        augment=None,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> TensorLoader:
        """A :class:`~gconv.data.TensorLoader` of one split's ``(x, y)``, ``x`` in ``[0, 1]``
        (shuffled for ``"train"`` unless told otherwise)."""
        x, y = self.tensors(split)
        shuffle = split == "train" if shuffle is None else shuffle
        return TensorLoader(
            x, y, batch_size=batch_size, shuffle=shuffle, device=device, augment=augment, seed=seed
        )


def default_image_size(sizes: Sequence[tuple[int, int]], max_side: int) -> tuple[int, int]:
    """The most common ``(H, W)`` of ``sizes`` (PIL's ``(W, H)`` turned round), scaled down so
    that its longer side is at most ``max_side``."""
    (width, height), _ = Counter(sizes).most_common(1)[0]
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def read_image_folder(
    root: str | os.PathLike,
    image_size: int | Sequence[int] | None = None,
    color_mode: str = "auto",
    split_sizes: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    max_side: int = 64,
    verbose: bool = True,
) -> ImageFolderData:
    """Reads an image folder (the module docstring's layout) into memory.

    Args:
        root: the folder.
        image_size (int or (H, W), optional): the size every image is resized to. (default: the
            most common size of the training images, its longer side scaled down to ``max_side``)
        color_mode (str): ``"auto"``, ``"grayscale"`` or ``"rgb"`` (:data:`COLOR_MODES`).
            (default: :obj:`"auto"`)
        split_sizes (tuple[float, float, float]): train, val and test fractions of a folder
            without a predefined split (or of ``train/`` for the parts it lacks).
            (default: :obj:`(0.8, 0.1, 0.1)`)
        seed (int): seed of the stratified split. (default: :obj:`0`)
        max_side (int): longest side of the default size. (default: :obj:`64`)
        verbose (bool): print one line per skipped file. (default: :obj:`True`)

    Raises:
        ValueError: one line naming the folder or files: no such or unreadable folder, no class
            folders, an empty class folder, one class, grey and colour images mixed under
            ``"auto"``, no readable image, too few images for the split.
    """
    root = Path(root)
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {color_mode!r}")
    _check_folder(root)
    split_dirs = _split_folders(root)
    # ---- the files: (path, class name, predefined split or None)
    entries: list[tuple[Path, str, str | None]] = []
    if split_dirs:
        train_classes, _ = _class_files(split_dirs["train"])
        for split_name, folder in split_dirs.items():
            names, files = _class_files(folder)
            unknown = sorted(set(names) - set(train_classes))
            if unknown:
                raise ValueError(
                    f"{folder} has classes that {split_dirs['train']} lacks: {unknown[:5]}; every "
                    "class needs training images"
                )
            entries += [(Path(p), names[k], split_name) for p, k in files]
        classes = train_classes
    else:
        classes, files = _class_files(root)
        entries = [(Path(p), classes[k], None) for p, k in files]
    if len(classes) < 2:
        raise ValueError(
            f"{root} has one class folder ({classes[0]!r}): a classifier needs at least two "
            "classes, one sub-folder of images each"
        )
    # ---- headers: which files PIL can identify, their modes and sizes
    skipped: list[tuple[Path, str, str]] = []
    kept, modes, sizes = [], [], []
    for path, name, split_name in entries:
        try:
            with Image.open(path) as image:
                modes.append("grayscale" if _is_grey(image) else "rgb")
                sizes.append(image.size)
            kept.append((path, name, split_name))
        except Exception as err:  # noqa: BLE001 -- PIL's decoders raise many types
            skipped.append((path, name, _reason(err)))
    if color_mode == "auto":
        found = set(modes)
        if len(found) > 1:
            grey = next(p for (p, _, _), m in zip(kept, modes, strict=True) if m == "grayscale")
            colour = next(p for (p, _, _), m in zip(kept, modes, strict=True) if m == "rgb")
            counts = Counter(modes)
            raise ValueError(
                f"{root} mixes grey and colour images ({counts['grayscale']} grey, e.g. {grey}; "
                f"{counts['rgb']} colour, e.g. {colour}): choose --color-mode rgb (grey images "
                "repeated in 3 channels) or --color-mode grayscale"
            )
        color_mode = found.pop() if found else "rgb"
    train_sizes = [
        s for s, (_, _, part) in zip(sizes, kept, strict=True) if part in (None, "train")
    ]
    if image_size is None:
        size = default_image_size(train_sizes or [(1, 1)], max_side)
    else:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or not all(isinstance(v, int) and v >= 1 for v in size):
            raise ValueError(f"image_size must be N or (H, W) of positive ints, got {image_size!r}")
    # ---- decode, convert, resize
    images, errors = read_images([p for p, _, _ in kept], color_mode, size)
    good = [entry for entry, err in zip(kept, errors, strict=True) if err is None]
    skipped += [(p, n, err) for (p, n, _), err in zip(kept, errors, strict=True) if err is not None]
    if verbose:
        for path, _, reason in skipped:
            print(f"skipped {path}: {reason}")
    if not good:
        raise ValueError(f"no image under {root} could be read ({len(skipped)} files skipped)")
    class_index = {name: k for k, name in enumerate(classes)}
    labels = np.array([class_index[name] for _, name, _ in good], dtype=np.int64)
    missing = [name for name in classes if name not in {n for _, n, _ in good}]
    if missing:
        raise ValueError(
            f"no image of class {missing[0]!r} could be read ({root / missing[0]}: every file "
            "skipped); fix or remove them"
        )
    # ---- the split
    given = np.array([part or "" for _, _, part in good], dtype=object)
    split = given.copy()
    if not split_dirs:
        split = stratified_split(labels, split_sizes, seed, str(root))
    else:
        train = np.flatnonzero(given == "train")
        lacking = [s for s in ("val", "test") if s not in split_dirs]
        if lacking:
            sizes_ = [split_sizes[0]] + [
                split_sizes[SPLITS.index(s)] if s in lacking else 0.0 for s in ("val", "test")
            ]
            split[train] = stratified_split(labels[train], sizes_, seed, str(split_dirs["train"]))
    return ImageFolderData(
        root=root,
        classes=list(classes),
        paths=[p for p, _, _ in good],
        images=images,
        labels=torch.from_numpy(labels),
        split=[str(s) for s in split],
        color_mode=color_mode,
        skipped=skipped,
    )
