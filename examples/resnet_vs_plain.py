"""Deep plain CNN vs the same depth with residual shortcuts: ResNet's argument on MNIST-5k.

    python examples/resnet_vs_plain.py                       # 3 seeds, 2 epochs each (CPU: minutes)
    python examples/resnet_vs_plain.py --seeds 0 --epochs 1 --limit 400   # smoke run

He et al. (2016, "Deep Residual Learning for Image Recognition", Fig. 1 and 4) observed that a
deeper *plain* network trains to a higher training loss than a shallower one, although batch norm
keeps its gradients alive, and that the same depth with identity shortcuts does not suffer. Here:

* plain     CNN(channels=(8, 16, 32), blocks=2 * BLOCKS, batch_norm=True): conv-BN-ReLU blocks,
            a 2x2 max pool after each stage, GAP head;
* residual  CNN(channels=(8, 16, 32), blocks=BLOCKS, residual=True, batch_norm=True): the same
            number of 3x3 conv layers as ResNet basic blocks (1x1 projections where channels change).

Both train with the same SGD + momentum schedule, batches, seeds and data, through
``gconv.train.Trainer``; a per-step callback records each step's loss (kept on the device, read once
at the end). Writes into --out: loss_curves.png (training loss per step, mean over seeds with
min-max band, both models on one plot), metrics.json (per seed: final training loss over the last
epoch, test accuracy; per model: parameters, mean ± sd), table.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from gconv.data import TensorLoader, mnist5k  # noqa: E402
from gconv.models import CNN  # noqa: E402
from gconv.train import StepInfo, Trainer, resolve_device, seed_everything  # noqa: E402

# ----------------------------------------------------------------------------- configuration
DEFAULTS = dict(
    seeds=(0, 1, 2),
    epochs=2,
    batch_size=64,
    lr=0.05,  # SGD, momentum 0.9, weight decay 1e-4, as in ResNet (lr scaled to the batch)
    blocks=4,  # residual blocks per stage: 3 stages x 4 blocks x 2 convs = 24 conv layers
    device="auto",
    out="runs/resnet_vs_plain",
)
CHANNELS = (8, 16, 32)
MODELS = ("plain", "residual")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULTS["seeds"]))
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--blocks", type=int, default=DEFAULTS["blocks"])
    p.add_argument("--device", default=DEFAULTS["device"], help="auto | cpu | cuda | mps")
    p.add_argument("--out", type=Path, default=Path(DEFAULTS["out"]))
    p.add_argument("--limit", type=int, default=None, help="train/test on this many images only")
    p.add_argument("--quiet", action="store_true", help="print only the table")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.blocks < 1:
        p.error("--epochs, --batch-size and --blocks must be >= 1")
    return args


def build(name: str, blocks: int) -> CNN:
    """The plain net has twice the blocks of the residual one: a basic block holds two convs."""
    if name == "plain":
        return CNN(channels=CHANNELS, blocks=2 * blocks, batch_norm=True, head="gap")
    return CNN(channels=CHANNELS, blocks=blocks, residual=True, batch_norm=True, head="gap")


def conv_layers(model: nn.Module) -> int:
    """3x3 convolutions (the depth); 1x1 projections are shortcuts, not depth."""
    return sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules())


def train_one(name: str, seed: int, args: argparse.Namespace, data, device) -> dict:
    (x_train, y_train), (x_test, y_test) = data
    seed_everything(seed)
    model = build(name, args.blocks)
    loader = TensorLoader(x_train, y_train, args.batch_size, shuffle=True, device=device, seed=seed)
    losses: list[torch.Tensor] = []  # one per step, on the device: no host sync per step

    def record_loss(trainer: Trainer, step: StepInfo) -> None:
        losses.append(step.loss)

    trainer = Trainer(
        model,
        optimizer=lambda params: torch.optim.SGD(
            params, lr=args.lr, momentum=0.9, weight_decay=1e-4
        ),
        metrics=(),
        device=device,
        amp=None,  # float32, as in the paper's comparison
        channels_last=False,  # NCHW: the arithmetic of the hand-written loop this replaced
        progress=False,
        callbacks=[record_loss],
    )
    history = trainer.fit(loader, epochs=args.epochs)
    step_losses = torch.stack(losses).tolist()
    logits = trainer.predict(TensorLoader(x_test, batch_size=500, shuffle=False, device=device))
    return {
        "losses": step_losses,
        "final_train_loss": statistics.mean(step_losses[-len(loader) :]),
        "test_acc": (logits.argmax(1) == y_test).float().mean().item(),
        "seconds_per_epoch": sum(history["seconds"]) / args.epochs,
        "params": sum(p.numel() for p in model.parameters()),
        "conv_layers": conv_layers(model),
    }


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = resolve_device(args.device)

    # ------------------------------------------------------------------------- data
    (x_train, y_train), (x_test, y_test) = mnist5k(seed=0)
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    data = (x_train, y_train), (x_test, y_test)

    # ------------------------------------------------------------------------- train
    runs: dict[str, dict[int, dict]] = {name: {} for name in MODELS}
    for seed in args.seeds:
        for name in MODELS:  # interleaved, so machine noise hits both alike
            run = train_one(name, seed, args, data, device)
            runs[name][seed] = run
            if not args.quiet:
                print(
                    f"{name:>8} seed {seed}: final train loss {run['final_train_loss']:.4f}, "
                    f"test acc {run['test_acc']:.4f}, {run['seconds_per_epoch']:.1f} s/epoch"
                )

    # ------------------------------------------------------------------------- report
    summary: dict[str, dict] = {}
    for name in MODELS:
        seeds = list(runs[name].values())
        loss_mean, loss_sd = mean_sd([r["final_train_loss"] for r in seeds])
        acc_mean, acc_sd = mean_sd([r["test_acc"] for r in seeds])
        summary[name] = {
            "params": seeds[0]["params"],
            "conv_layers": seeds[0]["conv_layers"],
            "final_train_loss_mean": loss_mean,
            "final_train_loss_sd": loss_sd,
            "test_acc_mean": acc_mean,
            "test_acc_sd": acc_sd,
            # per seed, in --seeds order (benchmarks/reproduce.py summarises these)
            "final_train_loss_per_seed": [r["final_train_loss"] for r in seeds],
            "test_acc_per_seed": [r["test_acc"] for r in seeds],
            "seconds_per_epoch_median": statistics.median(r["seconds_per_epoch"] for r in seeds),
        }
    rows = [
        "| model | 3x3 conv layers | params | final train loss | test acc | s / epoch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in MODELS:
        s = summary[name]
        rows.append(
            f"| {name} | {s['conv_layers']} | {s['params']:,} | "
            f"{s['final_train_loss_mean']:.3f} ± {s['final_train_loss_sd']:.3f} | "
            f"{100 * s['test_acc_mean']:.2f} ± {100 * s['test_acc_sd']:.2f} % | "
            f"{s['seconds_per_epoch_median']:.1f} |"
        )
    table = "\n".join(rows)
    notes = (
        f"\nMNIST-5k ({len(x_train)} train / {len(x_test)} test), {args.epochs} epochs, batch "
        f"{args.batch_size}, SGD lr {args.lr} momentum 0.9, seeds {args.seeds}, device {device}; "
        f"mean ± sd over seeds; final train loss = mean over the last epoch's batches.\n"
    )
    print("\n" + table + notes)

    args.out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "models": summary,
        "runs": {
            name: {
                str(seed): {k: v for k, v in r.items() if k != "losses"} for seed, r in by.items()
            }
            for name, by in runs.items()
        },
        "config": {**{k: v for k, v in vars(args).items() if k != "out"}, "channels": CHANNELS},
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (args.out / "table.md").write_text(table + "\n" + notes)
    plot_losses(runs, args.out / "loss_curves.png")
    return metrics


def plot_losses(runs: dict[str, dict[int, dict]], path: Path, window: int = 10) -> None:
    """Training loss per step (moving average over ``window`` steps): mean over seeds, min-max band."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, colour in zip(MODELS, ("tab:red", "tab:blue"), strict=True):
        curves = torch.tensor([r["losses"] for r in runs[name].values()])
        kernel = torch.ones(1, 1, min(window, curves.shape[1])) / min(window, curves.shape[1])
        smooth = F.conv1d(curves.unsqueeze(1), kernel).squeeze(1)
        steps = torch.arange(smooth.shape[1]) + kernel.shape[-1]
        depth = next(iter(runs[name].values()))["conv_layers"]
        ax.plot(steps, smooth.mean(0), color=colour, label=f"{name} ({depth} conv layers)")
        ax.fill_between(steps, smooth.min(0).values, smooth.max(0).values, color=colour, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"training loss (moving average of {window})")
    ax.set_title("same depth, with and without residual shortcuts")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
