"""Two CPU processes under torchrun (gloo) train exactly like one process with the global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gconv.data import TensorLoader

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402


def test_shard_splits_every_global_batch():
    x = torch.arange(10).float()[:, None]
    full = [b[0].flatten().tolist() for b in TensorLoader(x, batch_size=4, seed=0)]
    r0 = [b[0].flatten().tolist() for b in TensorLoader(x, batch_size=2, seed=0).shard(0, 2)]
    r1 = [b[0].flatten().tolist() for b in TensorLoader(x, batch_size=2, seed=0).shard(1, 2)]
    assert len(r0) == len(r1) == len(full) == 3
    for f, a, b in zip(full[:2], r0, r1, strict=False):
        assert sorted(a + b) == sorted(f)
    # the last global batch (2 samples) is split one per process
    assert sorted(r0[2] + r1[2]) == sorted(full[2])


def torchrun(out: Path, *args: str) -> None:
    """Run ddp_worker.py in 2 CPU processes under torchrun; each saves its rank's result to out."""
    worker = Path(__file__).parent / "ddp_worker.py"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    }
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(worker.parent), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(worker),
        str(out),
        *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    torchrun(tmp_path)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world"] == rank1["world"] == 2
    single = ddp_worker.train(batch_size=40)
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(rank0["state"][name], value, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rank1["state"][name], rank0["state"][name], rtol=0, atol=0)
    ddp_losses = [e["train_loss"] for e in rank0["history"]]
    assert ddp_losses == pytest.approx(single.history["train_loss"], rel=1e-5)
    ddp_acc = [e["train_accuracy"] for e in rank0["history"]]
    assert ddp_acc == pytest.approx(single.history["train_accuracy"])


def test_torchrun_shards_pyg_graph_batches(tmp_path):
    torchrun(tmp_path, "graphs")
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world"] == 2
    # a DistributedSampler split the 64 graphs: 32 per process and epoch, over 20 epochs
    assert rank0["graphs_seen"] == rank1["graphs_seen"] == 32 * 20
    for name, value in rank0["state"].items():  # DDP kept the replicas identical
        torch.testing.assert_close(rank1["state"][name], value, rtol=0, atol=0)
    losses = [e["train_loss"] for e in rank0["history"]]
    assert losses[-1] < 0.05 * losses[0]
    # the target is the sum of feature 0: the learned map is (1, 0, 0)
    torch.testing.assert_close(
        rank0["state"]["lin.weight"].flatten(), torch.tensor([1.0, 0.0, 0.0]), atol=0.05, rtol=0
    )


def test_torchrun_channels_last_fallback_rewraps_ddp(tmp_path):
    """A .view CNN under torchrun: "auto" falls back to NCHW on every rank at the same batch and
    wraps DDP anew, so its gradient buckets match the new strides (no stride warning) and the
    two processes still take exactly the steps of one."""
    torchrun(tmp_path, "viewcnn")
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["channels_last"] is False and rank1["channels_last"] is False
    assert any("failed in channels-last layout" in w for w in rank0["warnings"])
    assert not any("strides" in w for w in rank0["warnings"] + rank1["warnings"])
    single = ddp_worker.train_view_cnn(batch_size=32)
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(rank0["state"][name], value, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rank1["state"][name], rank0["state"][name], rtol=0, atol=0)
