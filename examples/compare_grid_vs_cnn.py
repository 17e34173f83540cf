"""The same digits as a grid and as a graph: CNN vs GridConv GNN vs isotropic GCN vs naive PyG.

    python examples/compare_grid_vs_cnn.py                 # 12 epochs on the embedded MNIST-5k
    python examples/compare_grid_vs_cnn.py --epochs 1 --limit 500 --naive-batches 2   # smoke run

On the embedded MNIST-5k (same split, Trainer, epochs, batch size and seed for every model):

* cnn       the lecture-notes CNN (conv 32 / 64, 2x2 max pools, flatten, FC 128);
* gridconv  the same network on the pixel grid graph: every Conv2d a direction-aware GridConv,
            built by gconv.models.cnn_to_grid_gnn from the untrained CNN (same initial weights);
* gcn       an isotropic GCN on the grid graph (GridGCN: residuals, batch norm, pixel positions
            as features, 2x2 grid max pools, mean+max readout), on the static-grid fast path;
* pyg_naive the same GCN (shared weights) the way plain PyG runs it: one Data per image, a
            block-diagonal DataLoader, torch_geometric.nn.GCNConv. It is timed on
            --naive-batches training batches (extrapolated to an epoch); its accuracy is left out.

Writes into --out: metrics.json (a "models" mapping with test_acc, params, seconds_per_epoch and
speedup_vs_pyg_naive), table.md, compare.png (bar chart). seconds_per_epoch is the median training
epoch (robust to other jobs on a shared machine); benchmarks/bench_grid.py measures the speed
ratio more carefully, interleaving the two pipelines batch by batch. Also checks that the trained CNN's
weights copied into a GridConv model give the same predictions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402

from gconv.data import TensorLoader, image_to_graph, mnist5k  # noqa: E402
from gconv.models import CNN  # noqa: E402
from gconv.models.grid import GridGCN, PyGGridGCN, cnn_to_grid_gnn  # noqa: E402
from gconv.train import Trainer, seed_everything  # noqa: E402

# ----------------------------------------------------------------------------- configuration
DEFAULTS = dict(
    epochs=12,
    batch_size=100,
    lr=3e-3,  # Adam, every model
    seed=0,
    device="auto",
    out="runs/compare",
    naive_batches=10,  # training batches the naive PyG pipeline is timed on
)
CNN_CONFIG = dict(channels=(32, 64), hidden=(128,), head="flatten", pool="max")
GCN_CONFIG = dict(hidden_channels=64, num_layers=4, pool_after=(1, 2))
MODELS = ("cnn", "gridconv", "gcn", "pyg_naive")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--device", default=DEFAULTS["device"], help="auto | cpu | cuda | mps")
    p.add_argument("--out", type=Path, default=Path(DEFAULTS["out"]))
    p.add_argument("--naive-batches", type=int, default=DEFAULTS["naive_batches"])
    p.add_argument("--limit", type=int, default=None, help="train/test on this many images only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.naive_batches < 1:
        p.error("--epochs, --batch-size and --naive-batches must be >= 1")
    return args


class FirstBatches:
    """The first ``count`` batches of a loader (collation included), as a loader."""

    def __init__(self, loader: Iterable, count: int) -> None:
        self.loader, self.count = loader, count

    def __iter__(self) -> Iterator:
        return itertools.islice(iter(self.loader), self.count)

    def __len__(self) -> int:
        return self.count


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)

    # ------------------------------------------------------------------------- data
    (x_train, y_train), (x_test, y_test) = mnist5k(seed=args.seed)
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    in_shape = tuple(x_train.shape[1:])

    def make_trainer(model: nn.Module) -> Trainer:
        return Trainer(
            model,
            loss="cross_entropy",
            optimizer="adam",
            lr=args.lr,
            metrics=("accuracy",),
            device=args.device,
            seed=args.seed,
            progress=not args.quiet,
        )

    def train_loader(device: torch.device) -> TensorLoader:
        return TensorLoader(
            x_train,
            y_train,
            batch_size=args.batch_size,
            shuffle=True,
            device=device,
            seed=args.seed,
        )

    # ------------------------------------------------------------------------- models
    torch.manual_seed(args.seed)
    cnn = CNN(in_shape=in_shape, **CNN_CONFIG)
    gridconv = cnn_to_grid_gnn(cnn)  # the same network and the same initial weights, as a GNN
    torch.manual_seed(args.seed)
    gcn = GridGCN(in_shape=in_shape, **GCN_CONFIG)
    torch.manual_seed(args.seed)
    naive_gcn = PyGGridGCN(GridGCN(in_shape=in_shape, **GCN_CONFIG))  # the gcn's initial weights

    # ------------------------------------------------------------------------- train
    results: dict[str, dict] = {}
    trainers: dict[str, Trainer] = {}
    for name, model in (("gcn", gcn), ("cnn", cnn), ("gridconv", gridconv)):
        trainer = make_trainer(model)
        loader = train_loader(trainer.device)
        test_loader = TensorLoader(
            x_test, y_test, batch_size=500, shuffle=False, device=trainer.device
        )
        history = trainer.fit(loader, epochs=args.epochs)
        # the median epoch: on a shared machine, other jobs inflate some epochs several-fold
        seconds_per_epoch = statistics.median(history["seconds"])
        results[name] = {
            "test_acc": trainer.evaluate(test_loader)["accuracy"],
            "params": parameter_count(model),
            "seconds_per_epoch": seconds_per_epoch,
        }
        trainers[name] = trainer
        print(
            f"{name:>10}: test acc {results[name]['test_acc']:.4f}, {seconds_per_epoch:.2f} s/epoch"
        )

    # ------------------------------------------------------------------------- naive PyG
    # the same GCN through PyG's own pipeline: one Data per image, block-diagonal batches
    graphs = [
        image_to_graph(image, y=int(label)) for image, label in zip(x_train, y_train, strict=True)
    ]
    graph_loader = DataLoader(graphs, batch_size=args.batch_size, shuffle=True)
    naive_trainer = make_trainer(naive_gcn)
    naive_trainer.fit(FirstBatches(graph_loader, 1), epochs=1)  # warm-up, not timed
    start = time.perf_counter()
    # Trainer.fit counts epochs in total: the warm-up was epoch 1, this is epoch 2
    naive_trainer.fit(FirstBatches(graph_loader, args.naive_batches), epochs=2)
    seconds_per_batch = (time.perf_counter() - start) / args.naive_batches
    results["pyg_naive"] = {
        "test_acc": None,
        "params": parameter_count(naive_gcn),
        "seconds_per_epoch": seconds_per_batch * len(graph_loader),
        "timed_batches": args.naive_batches,
    }
    print(
        f"{'pyg_naive':>10}: {results['pyg_naive']['seconds_per_epoch']:.2f} s/epoch "
        f"(extrapolated from {args.naive_batches} batches)"
    )
    results = {name: results[name] for name in MODELS}  # table order
    for result in results.values():
        result["speedup_vs_pyg_naive"] = (
            results["pyg_naive"]["seconds_per_epoch"] / result["seconds_per_epoch"]
        )

    # ------------------------------------------------------------------------- equivalences
    device = trainers["cnn"].device
    trained_cnn = trainers["cnn"].model.eval()
    converted = cnn_to_grid_gnn(trained_cnn).eval()
    test_images = x_test.to(device)
    with torch.no_grad():
        cnn_logits, grid_logits = trained_cnn(test_images), converted(test_images)
    weight_copy = {
        "max_abs_logit_diff": (cnn_logits - grid_logits).abs().max().item(),
        "same_predictions": (cnn_logits.argmax(1) == grid_logits.argmax(1)).float().mean().item(),
    }
    # the trained gcn, run through the naive pipeline with its weights: the same logits
    trained_gcn = trainers["gcn"].model.eval()
    few = x_test[:50]
    few_graphs = next(iter(DataLoader([image_to_graph(im) for im in few], batch_size=len(few))))
    with torch.no_grad():
        gcn_diff = trained_gcn(few.to(device)) - PyGGridGCN(trained_gcn)(few_graphs.to(device))
    pyg_equivalence = {"max_abs_logit_diff": gcn_diff.abs().max().item()}

    # ------------------------------------------------------------------------- report
    rows = [
        "| model | test acc | params | s / epoch | speed-up vs pyg_naive |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in MODELS:
        r = results[name]
        acc = (
            f"{100 * r['test_acc']:.2f} %"
            if r["test_acc"] is not None
            else f"n/a (timed on {r['timed_batches']} batches)"
        )
        rows.append(
            f"| {name} | {acc} | {r['params']:,} | {r['seconds_per_epoch']:.2f} | "
            f"{r['speedup_vs_pyg_naive']:.1f}x |"
        )
    table = "\n".join(rows)
    notes = (
        f"\nMNIST-5k ({len(x_train)} train / {len(x_test)} test), {args.epochs} epochs, "
        f"batch {args.batch_size}, Adam lr {args.lr}, seed {args.seed}, device {device}.\n"
        f"Weight copy CNN -> GridConv model: max |logit diff| "
        f"{weight_copy['max_abs_logit_diff']:.2e}, same predictions on "
        f"{100 * weight_copy['same_predictions']:.1f} % of the test digits.\n"
        f"Trained gcn vs the same weights in the naive PyG pipeline: max |logit diff| "
        f"{pyg_equivalence['max_abs_logit_diff']:.2e}.\n"
    )
    print("\n" + table + notes)

    metrics = {
        "models": results,
        "weight_copy_equivalence": weight_copy,
        "gcn_vs_pyg_naive_equivalence": pyg_equivalence,
        "config": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "device": str(device),
            "n_train": len(x_train),
            "n_test": len(x_test),
            "cnn": CNN_CONFIG,
            "gcn": GCN_CONFIG,
            "naive_batches": args.naive_batches,
            "torch": torch.__version__,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (args.out / "table.md").write_text(table + "\n" + notes)
    plot_comparison(results, args.out / "compare.png")
    return metrics


def plot_comparison(results: dict[str, dict], path: Path) -> None:
    """Two bar charts side by side: test accuracy and seconds per epoch (log scale)."""
    names = list(results)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:gray"]
    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(10, 4))
    accuracies = [100 * (results[n]["test_acc"] or 0.0) for n in names]
    ax_acc.bar(names, accuracies, color=colours)
    for i, name in enumerate(names):
        label = "n/a" if results[name]["test_acc"] is None else f"{accuracies[i]:.1f}"
        ax_acc.text(i, accuracies[i] + 1, label, ha="center")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_ylim(0, 105)
    ax_acc.set_title("MNIST-5k test accuracy")
    seconds = [results[n]["seconds_per_epoch"] for n in names]
    ax_time.bar(names, seconds, color=colours)
    for i, name in enumerate(names):
        ax_time.text(
            i, seconds[i] * 1.05, f"{results[name]['speedup_vs_pyg_naive']:.1f}x", ha="center"
        )
    ax_time.set_yscale("log")
    ax_time.set_ylabel("seconds per training epoch (log)")
    ax_time.set_title("training time (label: speed-up vs pyg_naive)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
