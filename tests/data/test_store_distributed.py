"""Two CPU processes under torchrun, each reading its shard of an on-disk store, train exactly
like one process reading the same global batches at twice the batch size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gconv.data import MoleculeStore

sys.path.insert(0, str(Path(__file__).parent))
import ddp_store_worker  # noqa: E402

ENDS = ["", "O", "N", "C(=O)O", "c1ccccc1", "Cl"]


def test_torchrun_ranks_read_their_shards_of_a_store(tmp_path):
    smiles = ["C" * n + end for n in range(1, 9) for end in ENDS]  # 48: 3 global batches of 16
    targets = [float(s.count("C") + 2 * s.count("O")) for s in smiles]
    store = MoleculeStore.from_smiles(smiles, targets, ["y"], tmp_path / "stores")
    worker = Path(__file__).parent / "ddp_store_worker.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK"))}  # fmt: skip
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(worker), str(store.path), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world"] == rank1["world"] == 2
    single = ddp_store_worker.train(str(store.path), batch_size=16, single_process=True)
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(rank0["state"][name], value, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rank1["state"][name], rank0["state"][name], rtol=0, atol=0)
    ddp_losses = [e["train_loss"] for e in rank0["history"]]
    assert ddp_losses == pytest.approx(single.history["train_loss"], rel=1e-5)
