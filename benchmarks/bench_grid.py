"""Seconds per training batch: the static-grid fast path against the naive PyG pipeline, one run.

Same model (GridGCN: 4 GCN layers of 64, residuals, layer norm, pixel positions, 2x2 grid max
pools straight after the convolution, mean+max readout), same weights (the PyG twin shares them), same data (embedded MNIST-5k),
same batch size and optimizer. Two pipelines, run interleaved batch by batch so that the noise of
a shared machine hits both alike; the figure of merit is the ratio of median batch times:

    pyg_naive   one torch_geometric Data per image, DataLoader block-diagonal batches (collation
                timed too), torch_geometric.nn.GCNConv message passing, max_pool over clusters
    grid_fast   images [B, 1, 28, 28] from a device-resident TensorLoader, every layer a dense
                kernel on a channels_last view of the node features [B, H*W, C]; a layer that
                pools runs convolution and 2x2 max pool (and the shortcut's pool) fused, over
                chunks of the batch, so the full-resolution output is never stored

A second pair does the same for the direction-aware model (the lecture-notes CNN as a GridConv
GNN): GridConv as message passing over the grid graph (``model.fast = False``) vs its conv2d
fast path. Before timing, each pair is checked to give the same logits.

    python benchmarks/bench_grid.py [--batches 10] [--batch-size 100] [--device auto] [--threads N]

``--threads`` sets torch's intra-op threads for both pipelines (default: torch's choice). On a
machine shared with other jobs, one thread each keeps the two pipelines' share of the CPU equal;
the ratio is what to compare, never the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.loader import DataLoader

from gconv.data import TensorLoader, image_to_graph, mnist5k
from gconv.models import CNN, GridGCN, cnn_to_grid_gnn
from gconv.train import resolve_device, seed_everything

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyg_grid_gcn import PyGGridGCN  # noqa: E402  (the naive-PyG reference, next to this file)

GCN_CONFIG = dict(hidden_channels=64, num_layers=4, pool_after=(1, 2), norm="layer")
PAIRS = ("gcn", "gridconv")  # the timed pairs, in order: the isotropic GCN, then GridConv


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forever(loader: Iterable) -> Iterator:
    """Batches of ``loader`` epoch after epoch (re-iterated: collation is never cached)."""
    while True:
        yield from loader


def timed_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, next_batch: Callable, device: torch.device
) -> float:
    """Seconds for one training step, fetching (and collating) the batch included."""
    sync(device)
    start = time.perf_counter()
    inputs, target = next_batch()
    loss = F.cross_entropy(model(inputs), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    sync(device)
    return time.perf_counter() - start


def compare(
    name: str,
    reference: tuple[nn.Module, Callable],
    fast: tuple[nn.Module, Callable],
    batches: int,
    device: torch.device,
) -> dict:
    """Interleave ``batches`` timed steps of both pipelines after one warm-up step each."""
    times: dict[str, list[float]] = {"reference": [], "fast": []}
    optimizers = {
        key: torch.optim.Adam(m.parameters(), lr=1e-3)
        for key, (m, _) in (("reference", reference), ("fast", fast))
    }
    for step in range(batches + 1):
        for key, (model, next_batch) in (("reference", reference), ("fast", fast)):
            seconds = timed_step(model, optimizers[key], next_batch, device)
            if step > 0:  # the first step of each pipeline is a warm-up
                times[key].append(seconds)
    reference_s, fast_s = statistics.median(times["reference"]), statistics.median(times["fast"])
    return {
        "pair": name,
        "reference_s_per_batch": reference_s,
        "fast_s_per_batch": fast_s,
        "speedup": reference_s / fast_s,
        "batches": batches,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/bench_grid"))
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = resolve_device(args.device)

    (x_train, y_train), _ = mnist5k(seed=args.seed)
    batches_per_epoch = -(-len(x_train) // args.batch_size)

    # --- the isotropic GCN: naive PyG pipeline vs static-grid fast path, shared weights
    gcn = GridGCN(in_shape=tuple(x_train.shape[1:]), **GCN_CONFIG).to(device)
    naive_gcn = PyGGridGCN(gcn)
    graphs = [image_to_graph(im, y=int(label)) for im, label in zip(x_train, y_train, strict=True)]
    graph_batches = forever(DataLoader(graphs, batch_size=args.batch_size, shuffle=True))
    tensor_batches = forever(
        TensorLoader(x_train, y_train, args.batch_size, shuffle=True, device=device, seed=0)
    )

    def next_graph_batch():
        batch = next(graph_batches).to(device)
        return batch, batch.y

    gcn.eval()
    with torch.no_grad():
        check = next(iter(DataLoader(graphs[:20], batch_size=20))).to(device)
        gcn_diff = (gcn(x_train[:20].to(device)) - naive_gcn(check)).abs().max().item()
    gcn.train()
    rows = [
        compare(
            "gcn: pyg_naive vs grid_fast",
            (naive_gcn, next_graph_batch),
            (gcn, lambda: next(tensor_batches)),
            args.batches,
            device,
        )
    ]
    rows[0]["max_abs_logit_diff"] = gcn_diff

    # --- the direction-aware GridConv model: message passing vs conv2d fast path
    torch.manual_seed(args.seed)
    grid_general = cnn_to_grid_gnn(CNN(in_shape=tuple(x_train.shape[1:]))).to(device)
    grid_general.fast = False
    grid_fast = cnn_to_grid_gnn(CNN(in_shape=tuple(x_train.shape[1:]))).to(device)
    grid_fast.load_state_dict(grid_general.state_dict())
    grid_batches = forever(
        TensorLoader(x_train, y_train, args.batch_size, shuffle=True, device=device, seed=0)
    )
    with torch.no_grad():
        images = x_train[:20].to(device)
        grid_diff = (grid_general(images) - grid_fast(images)).abs().max().item()
    rows.append(
        compare(
            "gridconv: message passing vs conv2d fast path",
            (grid_general, lambda: next(grid_batches)),
            (grid_fast, lambda: next(grid_batches)),
            args.batches,
            device,
        )
    )
    rows[1]["max_abs_logit_diff"] = grid_diff

    if not args.quiet:
        print(
            f"median seconds per training batch of {args.batch_size} ({args.batches} batches, "
            f"interleaved), device {device}, {torch.get_num_threads()} threads"
        )
        print(f"{'pair':<48} {'reference':>10} {'fast':>10} {'speed-up':>9} {'max|diff|':>10}")
    for row in rows:
        if not args.quiet:
            print(
                f"{row['pair']:<48} {row['reference_s_per_batch']:>10.4f} "
                f"{row['fast_s_per_batch']:>10.4f} {row['speedup']:>8.1f}x "
                f"{row['max_abs_logit_diff']:>10.1e}"
            )
        row["reference_s_per_epoch"] = row["reference_s_per_batch"] * batches_per_epoch
        row["fast_s_per_epoch"] = row["fast_s_per_batch"] * batches_per_epoch
    result = {
        # by model, for benchmarks/reproduce.py: gcn = the isotropic GCN, gridconv = GridConv
        **{
            f"{model}_{key}": row[key]
            for model, row in zip(PAIRS, rows, strict=True)
            for key in ("speedup", "reference_s_per_batch", "fast_s_per_batch")
        },
        "rows": rows,
        "batch_size": args.batch_size,
        "device": str(device),
        "seed": args.seed,
        "torch": torch.__version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_grid.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
