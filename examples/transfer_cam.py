"""Transfer learning with a torchvision backbone, then CAM from its GAP + linear head: the lecture
notes' ResNet18 (and VGG) on STL10.

    python examples/transfer_cam.py --data stl10 --download --weights resnet18-f37072fd.pth
    python examples/transfer_cam.py --data stl10 --arch vgg16_bn --weights vgg16_bn-6c64b313.pth
    python examples/transfer_cam.py --data stl10 --weights ... --mode fine_tuning --lr 1e-4
    python examples/transfer_cam.py --epochs 1 --limit 500      # offline: MNIST-5k, random init

:class:`gconv.models.TransferModel` keeps the backbone's convolutional layers (ResNet18's conv1 to
layer4, VGG's ``features``) and replaces the classifier by global average pooling and one
``nn.Linear``: a class score is then a weighted sum of the last feature maps' means, and its CAM
(Zhou et al. 2016) is the same weighted sum taken before the mean. ``--mode feature_extraction``
(the default) freezes the backbone, its batch-norm statistics included, and trains the head only;
``--mode fine_tuning`` trains every layer (use a smaller ``--lr``).

Pre-trained weights are a torchvision state-dict file given with ``--weights``: gconv never
downloads weights at run time, and the error for a missing file names the file to fetch; a
directory, an empty or truncated file, a whole pickled model or another network's state dict also
ends the script with one line naming the problem and the fix. Without
``--weights`` the backbone keeps its random initialisation: the same pipeline, but not transfer
learning, and the script says so. STL10 (96x96 colour, 5,000 training and 8,000 test images, a
2.6 GB download) comes through torchvision with ``--download``; ``--data mnist5k`` (the default)
uses the embedded digits, grey repeated to three channels and resized to ``--image-size``, so the
script runs offline.

Inputs are ImageNet-normalised (the statistics the torchvision weights were trained with). The
last ``--val`` images of a seeded shuffle of the training split validate, and the epoch with the
best validation accuracy is restored; the test images are scored once, at the end. Writes into
--out: metrics.json, cam.png (test images, each with the CAM of its predicted class),
history.png, best.pt and last.pt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402

from gconv.data import TensorLoader, load_image_dataset  # noqa: E402
from gconv.data.images import CLASS_NAMES  # noqa: E402
from gconv.explain import CAM, viz  # noqa: E402
from gconv.models.transfer import ARCHITECTURES, MODES, TransferModel  # noqa: E402
from gconv.train import Trainer, plot_history, seed_everything  # noqa: E402

MEAN = torch.tensor(TransferModel.IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(TransferModel.IMAGENET_STD).view(1, 3, 1, 1)
NATIVE_SIZE = {"stl10": 96, "mnist5k": 64}  # MNIST's 28 px are upsampled: ResNet18 divides by 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", choices=tuple(NATIVE_SIZE), default="mnist5k")
    p.add_argument("--root", type=Path, default=Path("datasets"), help="torchvision data root")
    p.add_argument("--download", action="store_true", help="download STL10 into --root")
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default="resnet18")
    p.add_argument("--weights", type=Path, default=None, help="torchvision state dict of --arch")
    p.add_argument("--mode", choices=MODES, default="feature_extraction")
    p.add_argument("--image-size", type=int, default=None, help="side in px (default: per data)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val", type=int, default=500, help="training images held out to validate")
    p.add_argument("--limit", type=int, default=None, help="the first N train and N test images")
    p.add_argument("--explain", type=int, default=16, help="test images drawn with their CAM")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/transfer_cam"))
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.image_size is not None and args.image_size < 32:
        p.error(
            f"--image-size must be >= 32 (the backbones downsample by 32), got {args.image_size}"
        )
    return args


def prepare(x: Tensor, size: int) -> Tensor:
    """Images ``[N, C, H, W]`` in [0, 1] -> three channels, ``size x size``, ImageNet-normalised."""
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    if tuple(x.shape[2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return (x - MEAN) / STD


def display(x: Tensor) -> Tensor:
    """The inverse of the normalisation of :func:`prepare`, for drawing."""
    return (x.cpu() * STD + MEAN).clamp(0, 1)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)

    # ------------------------------------------------------------------------- data
    try:
        (x_train, y_train), (x_test, y_test) = load_image_dataset(
            args.data, root=args.root, download=args.download, seed=args.seed
        )
    except (RuntimeError, FileNotFoundError) as exc:
        sys.exit(f"error: {exc}")
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    if not 0 < args.val < len(x_train):
        sys.exit(f"error: --val {args.val} must lie in 1..{len(x_train) - 1} (training images)")
    size = args.image_size or NATIVE_SIZE[args.data]
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(args.seed))
    x_train, y_train = prepare(x_train[order], size), y_train[order]
    x_test = prepare(x_test, size)
    n_fit = len(x_train) - args.val
    classes = CLASS_NAMES[args.data]

    # ------------------------------------------------------------------------- model
    try:
        model = TransferModel(args.arch, len(classes), args.mode, weights_path=args.weights)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        sys.exit(f"error: {exc}")
    if args.weights is None and not args.quiet:
        print(
            "note: no --weights, so the backbone is randomly initialised: this runs the pipeline "
            "but is not transfer learning"
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    trainer = Trainer(
        model,
        optimizer="adam",
        lr=args.lr,
        metrics=("accuracy",),
        device=args.device,
        checkpoint_dir=args.out,
        monitor="val_accuracy",
        seed=args.seed,
        progress=not args.quiet,
    )
    device = trainer.device
    train_loader = TensorLoader(
        x_train[:n_fit], y_train[:n_fit], args.batch_size, device=device, seed=args.seed
    )
    val_loader = TensorLoader(x_train[n_fit:], y_train[n_fit:], 256, shuffle=False, device=device)
    if not args.quiet:
        print(
            f"{args.arch} ({args.mode}, {trainable:,} of "
            f"{sum(p.numel() for p in model.parameters()):,} parameters trained) on {args.data}: "
            f"{n_fit} train / {args.val} validation / {len(x_test)} test images of {size} px, "
            f"device {device}"
        )

    # ------------------------------------------------------------------------- train, test
    start = time.perf_counter()
    history = trainer.fit(train_loader, val=val_loader, epochs=args.epochs)
    train_seconds = time.perf_counter() - start
    model = trainer.load_best()  # the epoch with the best validation accuracy
    test_loader = TensorLoader(x_test, y_test, 256, shuffle=False, device=device)
    test = trainer.evaluate(test_loader)

    # ------------------------------------------------------------------------- CAM
    images = x_test[: args.explain].to(device)
    with torch.no_grad():
        predicted = model.eval()(images).argmax(dim=1)
    with CAM(model) as cam:  # the head's Linear weights over the last feature maps
        maps = cam(images, target=predicted)
    labels = [
        f"{classes[int(p)]}" + ("" if p == t else f" (true: {classes[int(t)]})")
        for p, t in zip(predicted.tolist(), y_test[: args.explain].tolist(), strict=True)
    ]

    metrics = {
        "data": args.data,
        "arch": args.arch,
        "mode": args.mode,
        "weights": str(args.weights) if args.weights is not None else None,
        "image_size": size,
        "test_acc": test["accuracy"],
        "test_loss": test["loss"],
        "best_val_acc": max(history["val_accuracy"]),
        "epochs": len(history),
        "seconds_per_epoch": sum(history["seconds"]) / len(history),
        "train_seconds": train_seconds,
        "trainable_params": trainable,
        "params": sum(p.numel() for p in model.parameters()),
        "n_train": n_fit,
        "n_val": args.val,
        "n_test": len(x_test),
        "seed": args.seed,
        "device": str(device),
        "torch": torch.__version__,
    }
    if not trainer.dist.is_main:  # under torchrun only rank 0 writes
        return metrics
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_history(history, path=args.out / "history.png")
    figure = viz.image_grid(
        display(images), maps.cpu(), labels=labels, ncols=4, heatmap_titles=["CAM"]
    )
    viz.save_figure(figure, args.out / "cam.png")
    if not args.quiet:
        print(
            f"test accuracy {metrics['test_acc']:.4f} (best validation "
            f"{metrics['best_val_acc']:.4f}), {metrics['seconds_per_epoch']:.1f} s/epoch"
        )
        print(f"wrote {args.out}/metrics.json, cam.png, history.png, best.pt, last.pt")
    return metrics


if __name__ == "__main__":
    main()
