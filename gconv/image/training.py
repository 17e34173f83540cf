"""``train()``: ``gconv train --images DIR`` — an image folder to a model directory.

The recipe is ``examples/mnist_cnn.py``'s default: its five-convolution batch-norm CNN (a
:class:`~gconv.models.CNN` with ``channels=(32, 64, 128), blocks=(1, 2, 2)``, one linear layer on
the flattened map), Adam under a one-cycle schedule (peak 3e-3, per step), batch 100, label
smoothing 0.1, 20 epochs, and its on-device augmentation (rotations up to 10°, zooms 0.9-1.1,
shifts up to 2 pixels per 28). ``model="resnet18"`` / ``"vgg11"`` ... is a torchvision backbone
(:class:`~gconv.models.TransferModel`) with a GAP + linear head, pre-trained weights read from a
local file (frozen unless ``fine_tune``), ImageNet normalisation and 224 x 224 RGB inputs by
default. The Trainer keeps the best validation epoch (``model_0/best.pt``), stops early with
``patience`` and resumes from ``model_0/last.pt``; the test split is scored once, at the end,
with the model as :func:`~gconv.image.load_model` rebuilds it, so ``predictions.csv`` is what
``gconv predict`` gives for those files.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gconv.data.augment import Compose, RandomAffine, RandomHorizontalFlip, RandomShift
from gconv.data.folders import COLOR_MODES, ImageFolderData, read_image_folder
from gconv.errors import UsageError
from gconv.image.model import ImageModel, build_network, probability_columns
from gconv.image.model_dir import save_model_dir
from gconv.models import CNN, TransferModel
from gconv.models.transfer import ARCHITECTURES
from gconv.train import (
    Trainer,
    atomic_write,
    check_writable_dir,
    plot_history,
    resolve_device,
    seed_everything,
)
from gconv.train.checkpoint import CheckpointError
from gconv.train.fingerprint import fingerprint
from gconv.train.resume import ResumeError

__all__ = [
    "MODELS",
    "AUGMENTATIONS",
    "CNN_KWARGS",
    "train",
    "build_classifier",
    "build_augment",
    "check_options",
    "device_of",
    "format_probability",
]

#: ``--model``: the MNIST example's CNN, or a torchvision backbone.
MODELS: tuple[str, ...] = ("cnn", *ARCHITECTURES)
#: ``--augment``: the MNIST example's affine (default) or shift augmentation, ``flip`` (horizontal
#: flips, then affine: photographs), or none.
AUGMENTATIONS: tuple[str, ...] = ("affine", "shift", "flip", "none")
#: The MNIST example's ``deep_bn_cnn`` as a ``CNN`` (289,130 parameters at 28 x 28, 10 classes).
CNN_KWARGS: dict[str, Any] = dict(
    channels=(32, 64, 128), blocks=(1, 2, 2), batch_norm=True, head_hidden=(), init=None
)
DEFAULT_EPOCHS = 20
MIN_STEPS = 800  # MNIST-5k's 20 epochs of 40 batches; small folders get more epochs
CNN_MAX_SIDE = 64  # the default size: the common training size, its longer side at most this
TRANSFER_SIZE = 224  # what ImageNet weights saw


def device_of(name: str) -> torch.device:
    """``--device``: ``auto`` (CUDA, else MPS, else the CPU) or a device that exists here."""
    try:
        return resolve_device(name)
    except (RuntimeError, ValueError) as err:
        raise UsageError(f"--device {name}: {err}; use auto or cpu") from None


def format_probability(value: float) -> str:
    """A probability as a CSV cell: the shortest text that reads back as the same float32
    (``nan`` for none)."""
    value = np.float32(value)
    if not np.isfinite(value):
        return ""
    return np.format_float_positional(value, unique=True, trim="-")


def build_classifier(
    model: str, in_shape: tuple[int, int, int], num_classes: int, fine_tune: bool, pretrained: bool
) -> tuple[str, dict[str, Any], torch.nn.Module]:
    """``(class name, kwargs, module)`` of ``--model``: the CNN, or a TransferModel (fine-tuned
    when asked or when it has no pre-trained weights)."""
    if model == "cnn":
        kwargs = dict(in_shape=in_shape, num_classes=num_classes, **CNN_KWARGS)
        return "CNN", kwargs, CNN(**kwargs)
    mode = "fine_tuning" if fine_tune or not pretrained else "feature_extraction"
    kwargs = dict(arch=model, num_classes=num_classes, mode=mode)
    return "TransferModel", kwargs, TransferModel(**kwargs)


def build_augment(kind: str, image_size: tuple[int, int]):
    """The MNIST example's augmentations with the shift scaled to the image: 2 pixels per 28."""
    shift = round(2 * max(image_size) / 28)
    if kind == "shift":
        return RandomShift(shift) if shift > 0 else None
    if kind in ("affine", "flip"):
        affine = RandomAffine(degrees=10.0, scale=(0.9, 1.1), translate=float(shift))
        return Compose(RandomHorizontalFlip(), affine) if kind == "flip" else affine
    return None


def _smoothed_cross_entropy(smoothing: float):
    def cross_entropy_smoothed(output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target, label_smoothing=smoothing)

    return cross_entropy_smoothed


def check_options(options: dict[str, Any]) -> None:
    """The checks that need no data (raises :class:`~gconv.errors.UsageError`)."""
    if options["model"] not in MODELS:
        raise UsageError(f"--model must be one of {', '.join(MODELS)}, got {options['model']!r}")
    if options["color_mode"] not in COLOR_MODES:
        raise UsageError(f"--color-mode must be one of {', '.join(COLOR_MODES)}")
    if options["augment"] not in AUGMENTATIONS:
        raise UsageError(f"--augment must be one of {', '.join(AUGMENTATIONS)}")
    for flag, key in (("--epochs", "epochs"), ("--batch-size", "batch_size")):
        if options[key] is not None and options[key] < 1:
            raise UsageError(f"{flag} must be >= 1, got {options[key]}")
    sizes = options["split_sizes"]
    if len(sizes) != 3 or min(sizes) < 0 or sizes[0] <= 0 or abs(sum(sizes) - 1) > 1e-6:
        raise UsageError(f"--split-sizes must be 3 fractions >= 0 summing to 1, got {list(sizes)}")
    if options["lr"] <= 0 or not 0 <= options["label_smoothing"] < 1:
        raise UsageError("--lr must be > 0 and the label smoothing in [0, 1)")
    if options["model"] != "cnn" and options["color_mode"] == "grayscale":
        raise UsageError(
            f"--model {options['model']} takes RGB images; drop --color-mode grayscale"
        )
    if options["weights_path"] is not None and options["model"] == "cnn":
        raise UsageError("--weights-path is for --model resnet18 / vgg...; the CNN trains afresh")
    size = options["image_size"]
    if size is not None:
        values = [size] if isinstance(size, int) else list(size)
        if len(values) not in (1, 2) or min(values) < 1:
            raise UsageError(f"--image-size must be N or H W (positive), got {size}")


def _read_folder(images: Path, options: dict[str, Any], quiet: bool) -> ImageFolderData:
    size = options["image_size"]
    if isinstance(size, (list, tuple)) and len(size) == 1:
        size = int(size[0])
    if size is None and options["model"] != "cnn":
        size = TRANSFER_SIZE
    color_mode = "rgb" if options["model"] != "cnn" else options["color_mode"]
    try:
        return read_image_folder(
            images,
            image_size=size if size is None or isinstance(size, int) else tuple(size),
            color_mode=color_mode,
            split_sizes=options["split_sizes"],
            seed=options["seed"],
            max_side=CNN_MAX_SIDE,
            verbose=not quiet,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def train(
    images: str | Path,
    *,
    output_dir: str | Path = "runs/images",
    model: str = "cnn",
    image_size: int | Sequence[int] | None = None,
    color_mode: str = "auto",
    split_sizes: Sequence[float] = (0.8, 0.1, 0.1),
    augment: str = "affine",
    weights_path: str | Path | None = None,
    fine_tune: bool = False,
    epochs: int | None = None,
    batch_size: int = 100,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    label_smoothing: float = 0.1,
    patience: int | None = None,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Trains an image classifier on a folder and writes its model directory; returns
    ``metrics.json``'s content.

    Args:
        images: the folder: ``DIR/<class>/*`` or ``DIR/train|val|test/<class>/*``
            (:mod:`gconv.data.folders`).
        output_dir: the model directory. (default: :obj:`"runs/images"`)
        model (str): ``"cnn"`` (the MNIST example's) or a torchvision backbone, ``"resnet18"``,
            ``"vgg11"``, ``"vgg11_bn"``, ``"vgg16"``, ``"vgg16_bn"``. (default: :obj:`"cnn"`)
        image_size (int or (H, W), optional): the size every image is resized to. (default: the
            most common training size, longer side at most 64, for the CNN; 224 for a backbone)
        color_mode (str): ``"auto"`` (the images' own; grey and colour mixed is an error),
            ``"grayscale"`` or ``"rgb"``. (default: :obj:`"auto"`)
        split_sizes: train, val, test fractions without a predefined split.
            (default: :obj:`(0.8, 0.1, 0.1)`)
        augment (str): ``"affine"``, ``"shift"``, ``"flip"`` or ``"none"``. (default: :obj:`"affine"`)
        weights_path (str or Path, optional): the torchvision state-dict file of the backbone
            (local; never downloaded). Without it a backbone trains from random weights.
        fine_tune (bool): train the pre-trained backbone too (else only the head).
        epochs (int, optional): (default: 20, or more for at least 800 optimizer steps)
        batch_size (int): (default: :obj:`100`)
        lr (float): peak of the one-cycle Adam schedule. (default: :obj:`3e-3`)
        weight_decay (float): (default: :obj:`0.0`)
        label_smoothing (float): of the training loss. (default: :obj:`0.1`)
        patience (int, optional): stop after this many epochs without a better validation loss.
        seed (int): the split, the initialisation, the batches. (default: :obj:`0`)
        device (str): ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``. (default: :obj:`"auto"`)
        resume (bool): continue from ``model_0/last.pt`` (same data and options).
        quiet (bool): no progress bar, no per-file lines.

    Writes into ``output_dir``: ``config.json`` and ``model_0/best.pt`` (the model directory,
    ``docs/model-directory.md``), ``model_0/last.pt``, ``metrics.json`` (test and validation
    accuracy, the settings, skipped files), ``predictions.csv`` (every file of the folder: path,
    split, label, predicted class, ``prob_<class>``, ``error``) and ``history.png``.

    Raises:
        UsageError: bad folder, files or options: one line saying what and where.
    """
    options = dict(locals())
    check_options(options)
    t_start = time.perf_counter()
    device_ = device_of(device)
    output_dir = Path(output_dir)
    try:
        check_writable_dir(output_dir, "--output-dir")
    except ValueError as err:
        raise UsageError(str(err)) from None
    member_dir = output_dir / "model_0"
    if resume and not (member_dir / "last.pt").is_file():
        raise UsageError(f"--resume: nothing to resume, {member_dir / 'last.pt'} is missing")

    # ------------------------------------------------------------------------- data
    data = _read_folder(Path(images), options, quiet)
    counts = {s: len(data.indices(s)) for s in ("train", "val", "test")}
    if counts["val"] == 0:
        raise UsageError(f"{images}: no validation images (the best epoch is chosen on them)")
    pretrained = weights_path is not None
    if pretrained:
        mean, std = list(TransferModel.IMAGENET_MEAN), list(TransferModel.IMAGENET_STD)
        normalization = {"mean": mean, "std": std, "source": "imagenet"}
    else:
        mean, std = data.mean_std()
        normalization = {"mean": mean, "std": std, "source": "train"}
    print(
        f"data: {images}, {len(data.classes)} classes, {counts['train']} train / {counts['val']} "
        f"val / {counts['test']} test images, {len(data.skipped)} skipped; {data.color_mode} "
        f"{data.image_size[0]}x{data.image_size[1]}, {time.perf_counter() - t_start:.1f}s"
    )

    # ------------------------------------------------------------------------- model
    seed_everything(seed)
    steps_per_epoch = -(-counts["train"] // batch_size)
    epochs = epochs or max(DEFAULT_EPOCHS, -(-MIN_STEPS // steps_per_epoch))
    try:
        model_class, model_kwargs, classifier = build_classifier(
            model, data.in_shape, len(data.classes), fine_tune, pretrained
        )
        if pretrained:
            classifier.load_backbone(weights_path)
    except (ValueError, TypeError, FileNotFoundError) as err:
        fix = " (choose a larger --image-size)" if "pool" in str(err) else ""
        raise UsageError(f"{err}{fix}") from None
    network = build_network(classifier, mean, std)
    augmentation = build_augment(augment, data.image_size)
    # the images live on the training device, augmented there (as examples/mnist_cnn.py's)
    train_loader = data.loader("train", batch_size, augment=augmentation, seed=seed, device=device_)
    val_loader = data.loader("val", 256, device=device_)
    total_steps = epochs * len(train_loader)

    def one_cycle(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)

    trainer = Trainer(
        network,
        loss=_smoothed_cross_entropy(label_smoothing) if label_smoothing else "cross_entropy",
        optimizer="adam",
        lr=lr,
        weight_decay=weight_decay,
        metrics=("accuracy",),
        device=device_,
        amp=None,
        scheduler=one_cycle,
        scheduler_interval="step",
        checkpoint_dir=member_dir,
        monitor="val_loss",
        patience=patience,
        seed=seed,
        progress=not quiet,
    )
    rows = fingerprint([str(p) for p in data.paths], data.labels, data.split, data.images.shape)
    data_id = dict(rows=rows, source=str(images), seed=seed)
    t0 = time.perf_counter()
    try:
        history = trainer.fit(
            train_loader, val_loader, epochs=epochs, resume=resume, data_id=data_id
        )
    except FileNotFoundError as err:
        raise UsageError(f"--resume: {err}") from None
    except ResumeError as err:
        fix = "give the options of that run, or another --output-dir to train afresh"
        raise UsageError(f"--resume: {err.reason}; {fix}") from None
    except CheckpointError as err:
        raise UsageError(f"--resume: {err}") from None
    train_seconds = time.perf_counter() - t0
    network = trainer.load_best().cpu().float().eval()

    # ------------------------------------------------------------------------- save, score
    result = ImageModel(network, data.classes, data.color_mode, data.image_size)
    training = {k: v for k, v in options.items() if k not in ("quiet",)}
    save_model_dir(
        output_dir,
        result,
        model_class,
        model_kwargs,
        "model_0/best.pt",
        normalization,
        training=training | {"epochs": epochs, "best_epoch": trainer.best_epoch},
    )
    probs = result.probabilities(data.images)  # what `gconv predict` computes for these files
    predicted = probs.argmax(dim=1)
    scores = {}
    for split in ("train", "val", "test"):
        index = data.indices(split)
        if len(index):
            scores[f"{split}_accuracy"] = (
                (predicted[index] == data.labels[index]).double().mean().item()
            )
    metrics = {
        "images": str(images),
        "classes": data.classes,
        "model": model,
        "test_accuracy": scores.get("test_accuracy"),
        "val_accuracy": scores.get("val_accuracy"),
        "train_accuracy": scores.get("train_accuracy"),
        "best_epoch": trainer.best_epoch,
        "epochs": len(history),
        "n_train": counts["train"],
        "n_val": counts["val"],
        "n_test": counts["test"],
        "image_size": list(data.image_size),
        "color_mode": data.color_mode,
        "normalization": normalization["source"],
        "skipped": [{"path": str(p), "reason": why} for p, _, why in data.skipped],
        "train_seconds": train_seconds,
        "seed": seed,
        "device": str(device_),
    }
    atomic_write(
        output_dir / "metrics.json",
        lambda f: f.write((json.dumps(metrics, indent=2) + "\n").encode()),
    )
    _write_training_predictions(output_dir / "predictions.csv", data, probs)
    plot_history(history, path=output_dir / "history.png")
    test = metrics["test_accuracy"]
    print(
        f"test accuracy {test:.4f}" if test is not None else "no test images",
        f"(validation {metrics['val_accuracy']:.4f}, best epoch {trainer.best_epoch}); wrote "
        f"{output_dir}/config.json, model_0/best.pt, metrics.json, predictions.csv, history.png",
    )
    return metrics


def _write_training_predictions(path: Path, data: ImageFolderData, probs: Tensor) -> None:
    """Every file of the folder: the read ones with their split, label and predictions, then the
    skipped ones with the reason in ``error``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["path", "split", "label", "class", *probability_columns(data.classes), "error"]
    )
    for i, file in enumerate(data.paths):
        row = probs[i].tolist()
        writer.writerow(
            [str(file), data.split[i], data.classes[int(data.labels[i])],
             data.classes[int(probs[i].argmax())], *map(format_probability, row), ""]
        )  # fmt: skip
    for file, name, reason in data.skipped:
        writer.writerow([str(file), "", name, "", *[""] * len(data.classes), reason])
    text = buffer.getvalue()
    atomic_write(path, lambda f: f.write(text.encode()))
