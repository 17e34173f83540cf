"""Seconds per epoch: gconv's Trainer against a plain PyTorch DataLoader loop, in one run.

Same model (the lecture-notes CNN, the same initial weights for every pipeline), same data
(embedded MNIST-5k, 4,000 training digits), batch 100, Adam 1e-3, 2 threads by default. Each
pipeline lives in a process of its own, so that one pipeline's settings (the Trainer's allocator
setting is process-wide) cannot reach another's; the processes run one epoch at a time, in
turn, in a rotating order, so that machine noise hits them alike (the others wait idle). The
figures of merit are the ratios of median seconds per epoch to the reference (the lecture notes'
pipeline):

    reference         plain ``for x, y in DataLoader(TensorDataset(...))`` loop, glibc's defaults
    ref_retain        the same loop after ``gconv.train.memory.retain_freed_memory()``: what a
                      hand-written loop gains from the allocator setting alone
    trainer_dl        gconv Trainer over the same kind of DataLoader, default settings
                      (target: ratio <= 1.05, the loop's own overhead within 5 %)
    trainer_tl        gconv Trainer over TensorLoader, default settings: on the CPU, NHWC
                      convolutions (``channels_last="auto"``) and freed memory kept for reuse
                      (``retain_memory=None``); float32, equal to the reference up to rounding
                      (target: ratio <= 0.70)
    trainer_tl_nchw   the same with ``channels_last=False, retain_memory=False``: TensorLoader
                      alone
    trainer_tl_bf16   trainer_tl with ``amp="bf16"``: bfloat16 autocast, other arithmetic
    manual_nhwc       a hand-written loop over the same TensorLoader with what the Trainer does on
                      the CPU done by hand (NHWC model and batches, ``retain_freed_memory()``):
                      the fastest float32 loop we know, so ``trainer_tl / manual_nhwc`` is what
                      the Trainer's own work (checks, metrics, history) costs

The Trainer's extras (epoch loss, label and NaN checks, metrics) run in every Trainer pipeline:
they are accumulated on the device and read back every ``log_every`` steps, never per step.
The load average is printed before and after: on a busy machine the ratios are noise, rerun.

    python benchmarks/bench_trainer.py [--epochs 8] [--seed 0] [--device auto] [--threads 2]

``--seed`` draws the initial weights (the same in every pipeline) and the loaders' shuffling;
``benchmarks/reproduce.py --only bench_trainer`` runs seeds 0-2 and reports each ratio's spread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ANSWER = "bench_trainer: "  # marks a worker's answers among anything else it prints
TARGETS = {"trainer_dl": 1.05, "trainer_tl": 0.70}
PIPELINES = {  # name: (loader, Trainer options); options None: the plain loop
    "reference": ("dataloader", None),
    "ref_retain": ("dataloader", None),
    "trainer_dl": ("dataloader", {}),
    "trainer_tl": ("tensorloader", {}),
    "trainer_tl_nchw": ("tensorloader", {"channels_last": False, "retain_memory": False}),
    "trainer_tl_bf16": ("tensorloader", {"amp": "bf16"}),
    "manual_nhwc": ("tensorloader", None),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pipeline(name: str, threads: int, device_name: str, seed: int) -> None:
    """One pipeline's process (``--worker NAME``): builds the pipeline, then runs one epoch per
    line read from stdin and answers each with its seconds on stdout."""
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from gconv.data import TensorLoader, mnist5k
    from gconv.models import lecture_cnn
    from gconv.train import Trainer, resolve_device, retain_freed_memory, seed_everything

    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    (x, y), _ = mnist5k(seed=seed)
    seed_everything(seed)
    model = lecture_cnn()  # the same initial weights in every process
    kind, options = PIPELINES[name]
    if kind == "dataloader":
        pin = device.type == "cuda"
        loader = DataLoader(TensorDataset(x, y), batch_size=100, shuffle=True, pin_memory=pin)
    else:
        loader = TensorLoader(x, y, batch_size=100, device=device, seed=seed)

    if options is None:
        if name in ("ref_retain", "manual_nhwc"):
            retain_freed_memory()
        layout = torch.channels_last if name == "manual_nhwc" else torch.contiguous_format
        model = model.to(device, memory_format=layout)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def epoch(_: int) -> None:
            model.train()
            for xb, yb in loader:
                xb, yb = xb.to(device, memory_format=layout), yb.to(device)
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
    else:
        trainer = Trainer(model, lr=1e-3, device=device, progress=False, **{"amp": None, **options})

        def epoch(index: int) -> None:
            trainer.fit(loader, epochs=index + 1)

    answer(torch.get_num_threads())
    for line in sys.stdin:
        sync(device)
        start = time.perf_counter()
        epoch(int(line))
        sync(device)
        answer(time.perf_counter() - start)


def answer(value: float) -> None:
    print(f"{ANSWER}{value}", flush=True)


class Worker:
    """A pipeline in a fresh interpreter (this file with ``--worker``), driven line by line.

    A subprocess rather than ``multiprocessing``, so that nothing is inherited from this process
    and ``benchmarks/reproduce.py`` can load this file under any module name."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        command = [sys.executable, __file__, "--worker", name, "--seed", str(args.seed)]
        command += ["--threads", str(args.threads), "--device", args.device]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def read(self) -> float:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(ANSWER):
                return float(line[len(ANSWER) :])
        raise RuntimeError(f"bench_trainer worker exited with {self.proc.wait()}")

    def epoch(self, index: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{index}\n")
        return self.read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=8, help="timed epochs per pipeline")
    p.add_argument("--seed", type=int, default=0, help="initial weights and shuffling")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (0: torch's)")
    p.add_argument("--out", type=Path, default=Path("runs/bench_trainer"), help="folder")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    p.add_argument(
        "--pipelines",
        nargs="+",
        choices=list(PIPELINES),
        default=list(PIPELINES),
        help="time these (the reference is always timed)",
    )
    p.add_argument("--worker", choices=list(PIPELINES), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        pipeline(args.worker, args.threads, args.device, args.seed)
        return {}

    names = [name for name in PIPELINES if name == "reference" or name in args.pipelines]
    workers = {name: Worker(name, args) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        threads = {name: int(worker.read()) for name, worker in workers.items()}  # all built
        load_before = load()
        for epoch in range(args.epochs + 1):  # epoch 0 warms every pipeline up, not counted
            order = names[epoch % len(names) :] + names[: epoch % len(names)]
            for name in order:
                seconds = workers[name].epoch(epoch)
                if epoch > 0:
                    times[name].append(seconds)
    finally:
        for worker in workers.values():
            worker.close()
    load_after = load()

    ref = statistics.median(times["reference"])
    seconds = {name: statistics.median(times[name]) for name in names}
    result = {
        "ratio": {name: seconds[name] / ref for name in names},
        # the Trainer against the same work done by hand: what its own extras cost
        "trainer_over_manual": (
            seconds["trainer_tl"] / seconds["manual_nhwc"]
            if {"trainer_tl", "manual_nhwc"} <= set(names)
            else None
        ),
        "seconds_per_epoch": seconds,
        "epoch_seconds": times,
        "targets": TARGETS,
        "seed": args.seed,
        "device": args.device,
        "torch": torch.__version__,
        "threads": threads["reference"],
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [load_before, load_after],
    }
    if not args.quiet:
        print(
            f"torch {torch.__version__}, threads {threads['reference']}, device {args.device}, "
            f"{args.epochs} timed epochs, load average {load_before} -> {load_after} "
            f"on {os.cpu_count()} CPUs"
        )
        print(f"{'pipeline':<17}{'s/epoch (median)':>18}{'ratio to reference':>20}   target")
        for name in names:
            ratio, target = result["ratio"][name], TARGETS.get(name)
            verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
            shown = f"<= {target:.2f} {verdict}" if target is not None else ""
            print(f"{name:<17}{seconds[name]:>18.3f}{ratio:>20.3f}   {shown}")
        if result["trainer_over_manual"] is not None:
            print(f"trainer_tl / manual_nhwc: {result['trainer_over_manual']:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_trainer.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
