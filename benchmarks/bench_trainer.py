"""Seconds per epoch: gconv's Trainer against a plain PyTorch DataLoader loop, in one run.

Same model (the lecture-notes CNN), same data (embedded MNIST-5k, 4,000 training digits), same
batch size (100), same optimizer (Adam 1e-3). Three pipelines, run interleaved epoch by epoch so
that machine noise hits them alike; the figure of merit is the ratio of median epoch times against
the reference (plain loop + DataLoader over a TensorDataset, the lecture notes' pipeline):

    reference      plain ``for x, y in DataLoader(...)`` loop
    trainer+dl     gconv Trainer over the same DataLoader (the loop's own overhead)
    trainer+tl     gconv Trainer over TensorLoader (device-resident batches)

    python benchmarks/bench_trainer.py [--epochs 4] [--device auto] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gconv.data import TensorLoader, mnist5k
from gconv.models import lecture_cnn
from gconv.train import Trainer, resolve_device, seed_everything


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_epoch(model: nn.Module, loader: DataLoader, opt: torch.optim.Optimizer, device) -> None:
    model.train()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench_trainer.json"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    (x, y), _ = mnist5k(seed=0)
    pin = device.type == "cuda"

    def dataloader() -> DataLoader:
        return DataLoader(TensorDataset(x, y), batch_size=100, shuffle=True, pin_memory=pin)

    seed_everything(0)
    ref_model = lecture_cnn().to(device)
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=1e-3)
    dl_trainer = Trainer(
        lecture_cnn(), lr=1e-3, device=device, amp=None, metrics=(), progress=False
    )
    tl_trainer = Trainer(
        lecture_cnn(), lr=1e-3, device=device, amp=None, metrics=(), progress=False
    )
    dl_loader = dataloader()
    tl_loader = TensorLoader(x, y, batch_size=100, device=device, seed=0)

    times: dict[str, list[float]] = {"reference": [], "trainer+dl": [], "trainer+tl": []}
    for epoch in range(args.epochs + 1):  # epoch 0 warms up every pipeline and is not counted
        for name in times:
            sync(device)
            start = time.perf_counter()
            if name == "reference":
                plain_epoch(ref_model, dl_loader, ref_opt, device)
            elif name == "trainer+dl":
                dl_trainer.fit(dl_loader, epochs=epoch + 1)
            else:
                tl_trainer.fit(tl_loader, epochs=epoch + 1)
            sync(device)
            if epoch > 0:
                times[name].append(time.perf_counter() - start)

    ref = statistics.median(times["reference"])
    rows = []
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, {args.epochs} epochs"
    )
    print(f"{'pipeline':<14}{'s/epoch (median)':>18}{'speed vs reference':>20}")
    for name, values in times.items():
        med = statistics.median(values)
        rows.append({"pipeline": name, "seconds_per_epoch": med, "speedup": ref / med})
        print(f"{name:<14}{med:>18.3f}{ref / med:>19.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": str(device), "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
