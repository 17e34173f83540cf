"""Seconds per epoch: gconv's Trainer against a plain PyTorch DataLoader loop, in one run.

Same model (the lecture-notes CNN, the same initial weights for every pipeline), same data
(embedded MNIST-5k, 4,000 training digits), batch 100, Adam 1e-3, 2 threads by default. The
pipelines run interleaved epoch by epoch, in a rotating order, so that machine noise hits them
alike; the figures of merit are the ratios of median seconds per epoch to the reference (the
lecture notes' pipeline):

    reference      plain ``for x, y in DataLoader(TensorDataset(...))`` loop
    trainer+dl     gconv Trainer over the same kind of DataLoader: the loop's own overhead
                   (target: ratio <= 1.05, i.e. within 5 % of the plain loop)
    trainer+tl     gconv Trainer over TensorLoader, device-resident batches, default settings
                   (the same float32 arithmetic as the reference; target: ratio <= 0.70)
    +cl            the same with Trainer(channels_last=True): NHWC convolutions (equal up to
                   rounding)
    +cl+bf16       the same with amp="bf16" as well: bfloat16 autocast, other arithmetic

The Trainer's extras (epoch loss, label and NaN checks, metrics) run in every Trainer pipeline:
they are accumulated on the device and read back every ``log_every`` steps, never per step.
The load average is printed before and after: on a busy machine the ratios are noise, rerun.

    python benchmarks/bench_trainer.py [--epochs 8] [--device auto] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gconv.data import TensorLoader, mnist5k
from gconv.models import lecture_cnn
from gconv.train import Trainer, resolve_device, seed_everything

TARGETS = {"trainer+dl": 1.05, "trainer+tl": 0.70, "+cl": 0.70, "+cl+bf16": 0.70}
OPTIONS = {
    "trainer+dl": {},
    "trainer+tl": {},
    "+cl": {"channels_last": True},
    "+cl+bf16": {"channels_last": True, "amp": "bf16"},
}


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


def load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=8, help="timed epochs per pipeline")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (0: torch's)")
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
    initial = lecture_cnn().state_dict()

    def model() -> nn.Module:
        net = lecture_cnn()
        net.load_state_dict(initial)
        return net

    ref_model = model().to(device)
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=1e-3)
    ref_loader = dataloader()
    trainers = {
        name: Trainer(model(), lr=1e-3, device=device, progress=False, **{"amp": None, **options})
        for name, options in OPTIONS.items()
    }
    loaders = {
        name: dataloader()
        if name == "trainer+dl"
        else TensorLoader(x, y, batch_size=100, device=device, seed=0)
        for name in OPTIONS
    }

    names = ["reference", *OPTIONS]
    times: dict[str, list[float]] = {name: [] for name in names}
    load_before = load()
    for epoch in range(args.epochs + 1):  # epoch 0 warms up every pipeline and is not counted
        order = names[epoch % len(names) :] + names[: epoch % len(names)]
        for name in order:
            sync(device)
            start = time.perf_counter()
            if name == "reference":
                plain_epoch(ref_model, ref_loader, ref_opt, device)
            else:
                trainers[name].fit(loaders[name], epochs=epoch + 1)
            sync(device)
            if epoch > 0:
                times[name].append(time.perf_counter() - start)
    load_after = load()

    ref = statistics.median(times["reference"])
    rows = []
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{args.epochs} timed epochs, load average {load_before} -> {load_after} "
        f"on {os.cpu_count()} CPUs"
    )
    print(f"{'pipeline':<14}{'s/epoch (median)':>18}{'ratio to reference':>20}   target")
    for name in names:
        median = statistics.median(times[name])
        ratio = median / ref
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
        rows.append(
            {
                "pipeline": name,
                "seconds_per_epoch": median,
                "epochs": times[name],
                "ratio": ratio,
                "target": target,
            }
        )
        shown = f"<= {target:.2f} {verdict}" if target is not None else ""
        print(f"{name:<14}{median:>18.3f}{ratio:>20.3f}   {shown}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "device": str(device),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "load_average": [load_before, load_after],
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
