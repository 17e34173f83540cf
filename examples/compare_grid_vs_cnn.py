"""The same digits as a grid and as a graph: CNN vs grid GNNs vs a geometric GNN vs naive PyG,
and the geometric GNN again on superpixel graphs.

    python examples/compare_grid_vs_cnn.py        # 3 seeds x 12 epochs on the embedded MNIST-5k
    python examples/compare_grid_vs_cnn.py --seeds 0 --epochs 1 --limit 500 --naive-batches 2
    python examples/compare_grid_vs_cnn.py --parts superpixels   # only the superpixel section

On the embedded MNIST-5k (per seed: the same split, Trainer, epochs, batch size and seed for
every model), trained from scratch:

* cnn       the lecture-notes CNN (conv 32 / 64, 2x2 max pools, flatten, FC 128);
* gridconv  the same network on the pixel grid graph: every Conv2d a direction-aware GridConv,
            built by gconv.models.cnn_to_grid_gnn from the untrained CNN (same initial weights);
            once trained on the graph, gconv.models.grid_gnn_to_cnn turns it back into a CNN
            with the same predictions (checked below);
* gcn       an isotropic GCN on the grid graph (GridGCN: residuals, layer norm, pixel positions
            as features, 2x2 grid max pools, mean+max readout), on the static-grid fast path;
* spline    SplineGNN, B-spline convolutions on node positions + voxel pooling + a cell
            readout: a geometric GNN for any graph with positions, here on the pixel grid (its
            conv2d fast path, equal to message passing on the grid graph: checked below);
* pyg_naive the gcn (shared weights) the way plain PyG runs it: one Data per image, a
            block-diagonal DataLoader, torch_geometric.nn.GCNConv. It is timed on
            --naive-batches training batches (extrapolated to an epoch); its accuracy is left out.

Then the *same* SplineGNN class on superpixel graphs of the same digits (SLIC, ~75 nodes, mean
intensity + centroid, 8 nearest centroids: gconv.data.image_to_superpixels), beside the
benchmarking-gnns figures (Dwivedi et al. 2020, trained on the full 55k MNIST superpixels).

Writes into --out: metrics.json ("models": mean and sd of test_acc over seeds, params,
seconds_per_epoch, speedup_vs_pyg_naive; "superpixels"), table.md, compare.png. seconds_per_epoch
is the median training epoch (robust to other jobs on a shared machine); benchmarks/bench_grid.py
measures the speed ratio more carefully, interleaving the two pipelines batch by batch.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402

from gconv.data import TensorLoader, image_to_graph, image_to_superpixels, mnist5k  # noqa: E402
from gconv.models import CNN, GridGCN, SplineGNN, cnn_to_grid_gnn, grid_gnn_to_cnn  # noqa: E402
from gconv.train import (  # noqa: E402
    Trainer,
    atomic_save,
    resolve_device,
    seed_everything,
)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:  # the naive-PyG reference of GridGCN lives there
    sys.path.insert(0, str(BENCHMARKS))
from pyg_grid_gcn import PyGGridGCN  # noqa: E402

# ----------------------------------------------------------------------------- configuration
DEFAULTS = dict(
    epochs=12,
    batch_size=100,
    lr=3e-3,  # Adam, every model
    seeds=(0, 1, 2),
    device="auto",
    out="runs/compare",
    naive_batches=10,  # training batches the naive PyG pipeline is timed on
    cache="datasets/cache/mnist5k_superpixels.pt",
)
CNN_CONFIG = dict(channels=(32, 64), head_hidden=(128,), head="flatten", pool="max")
GCN_CONFIG = dict(hidden_channels=64, num_layers=4, pool_after=(1, 2), norm="layer")
SPLINE_CONFIG = dict(channels=(32, 64), kernel_size=3, spacing=1.0, cells=7, head_hidden=(128,))
# superpixels are ~3-5 px apart (mean distance to the 8 nearest: 4.3 px): control points 2 px
# apart on a 5x5 kernel reach +-4 px, pooling cells of 4 then 8 px, a 4x4 readout of 7 px cells
SUPERPIXEL_CONFIG = dict(channels=(32, 64), kernel_size=5, spacing=2.0, cells=4, head_hidden=(128,))
SUPERPIXELS = dict(n_segments=75, compactness=0.25, k=8)
MODELS = ("cnn", "gridconv", "gcn", "spline", "pyg_naive")
PARTS = ("grid", "superpixels")  # --parts: the pixel-grid comparison, the superpixel section
# benchmarking-gnns (Dwivedi et al. 2020, Table 3; PNA: Corso et al. 2020): full MNIST superpixels,
# 55k training graphs, ~100k-parameter budget
LITERATURE = {"GCN": 90.71, "GatedGCN": 97.34, "PNA": 97.94}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULTS["seeds"]))
    p.add_argument("--device", default=DEFAULTS["device"], help="auto | cpu | cuda | mps")
    p.add_argument("--out", type=Path, default=Path(DEFAULTS["out"]))
    p.add_argument("--naive-batches", type=int, default=DEFAULTS["naive_batches"])
    p.add_argument("--limit", type=int, default=None, help="train/test on this many images only")
    p.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="what to run: the pixel-grid comparison, the superpixel section, or both",
    )
    p.add_argument("--cache", type=Path, default=Path(DEFAULTS["cache"]))
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


def agreement(logits: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """How far two models' logits on the same inputs are apart, and how often they agree."""
    return {
        "max_abs_logit_diff": (logits - other).abs().max().item(),
        "same_predictions": (logits.argmax(1) == other.argmax(1)).float().mean().item(),
    }


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def superpixel_graphs(images: torch.Tensor, labels: torch.Tensor, cache: Path) -> list[Data]:
    """Superpixel graphs of ``images``, computed once per digit and cached by pixel content
    (so every seed's split reuses them)."""
    store: dict[str, tuple[torch.Tensor, ...]] = (
        torch.load(cache, weights_only=True) if cache.exists() else {}
    )
    graphs, added = [], 0
    for image, label in zip(images, labels, strict=True):
        key = hashlib.sha1((image * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()
        if key not in store:
            g = image_to_superpixels(image, **SUPERPIXELS)
            store[key], added = (g.x, g.pos, g.edge_index), added + 1
        x, pos, edge_index = store[key]
        edge_attr = pos[edge_index[0]] - pos[edge_index[1]]
        graphs.append(
            Data(x=x, pos=pos, edge_index=edge_index, edge_attr=edge_attr, y=label.view(1))
        )
    if added:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(store, cache)
    return graphs


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = resolve_device(args.device)
    names = [name for name in MODELS if name != "pyg_naive"]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    superpixel_runs: list[dict] = []
    extras: dict = {}

    for seed in args.seeds:
        seed_everything(seed)
        # --------------------------------------------------------------------- data
        (x_train, y_train), (x_test, y_test) = mnist5k(seed=seed)
        if args.limit is not None:
            x_train, y_train = x_train[: args.limit], y_train[: args.limit]
            x_test, y_test = x_test[: args.limit], y_test[: args.limit]
        in_shape = tuple(x_train.shape[1:])

        def make_trainer(model: nn.Module, seed: int = seed) -> Trainer:
            return Trainer(
                model,
                loss="cross_entropy",
                optimizer="adam",
                lr=args.lr,
                metrics=("accuracy",),
                device=args.device,
                seed=seed,
                progress=not args.quiet,
            )

        if "grid" in args.parts:
            # --------------------------------------------------------------------- models
            torch.manual_seed(seed)
            cnn = CNN(in_shape=in_shape, **CNN_CONFIG)
            models = {"cnn": cnn, "gridconv": cnn_to_grid_gnn(cnn)}  # same initial weights
            torch.manual_seed(seed)
            models["gcn"] = GridGCN(in_shape=in_shape, **GCN_CONFIG)
            torch.manual_seed(seed)
            models["spline"] = SplineGNN(in_shape=in_shape, **SPLINE_CONFIG)

            # --------------------------------------------------------------------- train
            trainers: dict[str, Trainer] = {}
            for name in names:
                trainer = make_trainer(models[name])
                loader = TensorLoader(
                    x_train,
                    y_train,
                    args.batch_size,
                    shuffle=True,
                    device=trainer.device,
                    seed=seed,
                )
                test_loader = TensorLoader(
                    x_test, y_test, 500, shuffle=False, device=trainer.device
                )
                history = trainer.fit(loader, epochs=args.epochs)
                # the median epoch: on a shared machine, other jobs inflate some epochs several-fold
                run = {
                    "seed": seed,
                    "test_acc": trainer.evaluate(test_loader)["accuracy"],
                    "params": parameter_count(models[name]),
                    "seconds_per_epoch": statistics.median(history["seconds"]),
                }
                runs[name].append(run)
                trainers[name] = trainer
                print(
                    f"seed {seed} {name:>9}: test acc {run['test_acc']:.4f}, "
                    f"{run['seconds_per_epoch']:.2f} s/epoch"
                )

            if seed == args.seeds[0]:
                # ----------------------------------------------------------------- naive PyG
                torch.manual_seed(seed)
                naive_gcn = PyGGridGCN(GridGCN(in_shape=in_shape, **GCN_CONFIG))
                graphs = [
                    image_to_graph(im, y=int(label))
                    for im, label in zip(x_train, y_train, strict=True)
                ]
                graph_loader = DataLoader(graphs, batch_size=args.batch_size, shuffle=True)
                naive_trainer = make_trainer(naive_gcn)
                naive_trainer.fit(FirstBatches(graph_loader, 1), epochs=1)  # warm-up, not timed
                start = time.perf_counter()
                # Trainer.fit counts epochs in total: the warm-up was epoch 1, this is epoch 2
                naive_trainer.fit(FirstBatches(graph_loader, args.naive_batches), epochs=2)
                seconds_per_batch = (time.perf_counter() - start) / args.naive_batches
                extras["pyg_naive"] = {
                    "test_acc": None,
                    "params": parameter_count(naive_gcn),
                    "seconds_per_epoch": seconds_per_batch * len(graph_loader),
                    "timed_batches": args.naive_batches,
                }
                # ----------------------------------------------------------------- equivalences
                trained_cnn = trainers["cnn"].model.eval()
                converted = cnn_to_grid_gnn(trained_cnn).eval()
                few = x_test[:50]
                few_graphs = next(
                    iter(DataLoader([image_to_graph(im) for im in few], batch_size=50))
                )
                with torch.no_grad():
                    cnn_logits = trained_cnn(x_test.to(device))
                    grid_logits = converted(x_test.to(device))
                    # and back: the GridConv model trained on the graph, as a CNN again
                    trained_grid = trainers["gridconv"].model.eval()
                    grid_trained_logits = trained_grid(x_test.to(device))
                    back_logits = grid_gnn_to_cnn(trained_grid)(x_test.to(device))
                    trained_gcn = trainers["gcn"].model.eval()
                    gcn_diff = trained_gcn(few.to(device)) - PyGGridGCN(trained_gcn)(
                        few_graphs.to(device)
                    )
                    spline = trainers["spline"].model.eval()
                    spline_diff = spline(few.to(device)) - spline(few_graphs.to(device))
                extras["weight_copy_equivalence"] = agreement(cnn_logits, grid_logits)
                extras["grid_to_cnn_equivalence"] = agreement(grid_trained_logits, back_logits)
                extras["gcn_vs_pyg_naive_equivalence"] = {
                    "max_abs_logit_diff": gcn_diff.abs().max().item()
                }
                extras["spline_fast_vs_message_passing"] = {
                    "max_abs_logit_diff": spline_diff.abs().max().item()
                }

        # --------------------------------------------------------------------- superpixels
        if "superpixels" in args.parts:
            train_graphs = superpixel_graphs(x_train, y_train, args.cache)
            test_graphs = superpixel_graphs(x_test, y_test, args.cache)
            torch.manual_seed(seed)
            model = SplineGNN(in_shape=(1, *in_shape[1:]), **SUPERPIXEL_CONFIG)
            trainer = make_trainer(model)
            generator = torch.Generator().manual_seed(seed)
            loader = DataLoader(train_graphs, args.batch_size, shuffle=True, generator=generator)
            history = trainer.fit(loader, epochs=args.epochs)
            run = {
                "seed": seed,
                "test_acc": trainer.evaluate(DataLoader(test_graphs, 500))["accuracy"],
                "params": parameter_count(model),
                "seconds_per_epoch": statistics.median(history["seconds"]),
                "mean_nodes": statistics.mean(g.num_nodes for g in train_graphs + test_graphs),
            }
            superpixel_runs.append(run)
            print(
                f"seed {seed} spline on superpixels: test acc {run['test_acc']:.4f}, "
                f"{run['seconds_per_epoch']:.2f} s/epoch, {run['mean_nodes']:.1f} nodes/graph"
            )

    # ------------------------------------------------------------------------- report
    results: dict[str, dict] = {}
    rows: list[str] = []
    if "grid" in args.parts:
        for name in names:
            accuracy, accuracy_sd = mean_sd([r["test_acc"] for r in runs[name]])
            results[name] = {
                "test_acc": accuracy,
                "test_acc_sd": accuracy_sd,
                "test_acc_per_seed": [r["test_acc"] for r in runs[name]],
                "params": runs[name][0]["params"],
                "seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in runs[name]),
            }
        results["pyg_naive"] = extras.pop("pyg_naive")
        for result in results.values():
            result["speedup_vs_pyg_naive"] = (
                results["pyg_naive"]["seconds_per_epoch"] / result["seconds_per_epoch"]
            )
        rows += [
            "| model | test acc (mean ± sd) | params | s / epoch | speed-up vs pyg_naive |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in MODELS:
            r = results[name]
            acc = (
                f"{100 * r['test_acc']:.2f} ± {100 * r['test_acc_sd']:.2f} %"
                if r["test_acc"] is not None
                else f"n/a (timed on {r['timed_batches']} batches)"
            )
            rows.append(
                f"| {name} | {acc} | {r['params']:,} | {r['seconds_per_epoch']:.2f} | "
                f"{r['speedup_vs_pyg_naive']:.1f}x |"
            )
    superpixels = None
    if superpixel_runs:
        accuracy, accuracy_sd = mean_sd([r["test_acc"] for r in superpixel_runs])
        superpixels = {
            "test_acc": accuracy,
            "test_acc_sd": accuracy_sd,
            "test_acc_per_seed": [r["test_acc"] for r in superpixel_runs],
            "params": superpixel_runs[0]["params"],
            "seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in superpixel_runs),
            "mean_nodes": superpixel_runs[0]["mean_nodes"],
            "literature_full_mnist": LITERATURE,
        }
        rows += [
            "| superpixel graphs | test acc | params | s / epoch | training graphs |",
            "|---|---:|---:|---:|---:|",
            f"| spline (SplineGNN, this run) | {100 * accuracy:.2f} ± {100 * accuracy_sd:.2f} % | "
            f"{superpixels['params']:,} | {superpixels['seconds_per_epoch']:.2f} | "
            f"{len(x_train):,} (MNIST-5k) |",
            *(
                f"| {name} (benchmarking-gnns) | {value:.2f} % | ~100k | - | 55,000 (full MNIST) |"
                for name, value in LITERATURE.items()
            ),
        ]
    if "grid" in args.parts and superpixels:
        rows.insert(len(MODELS) + 2, "")
    table = "\n".join(rows)
    notes = (
        f"\nMNIST-5k ({len(x_train)} train / {len(x_test)} test per seed), {args.epochs} epochs, "
        f"batch {args.batch_size}, Adam lr {args.lr}, seeds {args.seeds}, device {device}.\n"
    )
    if "grid" in args.parts:
        notes += (
            f"Weight copy CNN -> GridConv model: max |logit diff| "
            f"{extras['weight_copy_equivalence']['max_abs_logit_diff']:.2e}, same predictions on "
            f"{100 * extras['weight_copy_equivalence']['same_predictions']:.1f} % of the test digits.\n"
            f"And back, the trained GridConv model as a CNN (grid_gnn_to_cnn): max |logit diff| "
            f"{extras['grid_to_cnn_equivalence']['max_abs_logit_diff']:.2e}, same predictions on "
            f"{100 * extras['grid_to_cnn_equivalence']['same_predictions']:.1f} % of the test digits.\n"
            f"Trained gcn vs the same weights in the naive PyG pipeline: max |logit diff| "
            f"{extras['gcn_vs_pyg_naive_equivalence']['max_abs_logit_diff']:.2e}.\n"
            f"Trained spline, conv2d fast path vs message passing on the grid graph: max |logit diff| "
            f"{extras['spline_fast_vs_message_passing']['max_abs_logit_diff']:.2e}.\n"
        )
    print("\n" + table + notes)

    metrics = {
        "models": results,
        "superpixels": superpixels,
        **extras,
        "config": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seeds": args.seeds,
            "device": str(device),
            "n_train": len(x_train),
            "n_test": len(x_test),
            "cnn": CNN_CONFIG,
            "gcn": GCN_CONFIG,
            "spline": SPLINE_CONFIG,
            "spline_superpixels": SUPERPIXEL_CONFIG,
            "superpixels": SUPERPIXELS,
            "naive_batches": args.naive_batches,
            "torch": torch.__version__,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (args.out / "table.md").write_text(table + "\n" + notes)
    if results:
        plot_comparison(results, args.out / "compare.png")
    return metrics


def plot_comparison(results: dict[str, dict], path: Path) -> None:
    """Two bar charts side by side: test accuracy (± sd over seeds) and s / epoch (log scale)."""
    names = list(results)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:gray"][: len(names)]
    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
    accuracies = [100 * (results[n]["test_acc"] or 0.0) for n in names]
    errors = [100 * results[n].get("test_acc_sd", 0.0) for n in names]
    ax_acc.bar(names, accuracies, yerr=errors, color=colours)
    for i, name in enumerate(names):
        label = "n/a" if results[name]["test_acc"] is None else f"{accuracies[i]:.1f}"
        ax_acc.text(i, accuracies[i] + 1, label, ha="center")
    ax_acc.set_ylabel("test accuracy (%, mean ± sd over seeds)")
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
