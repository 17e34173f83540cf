"""Run under ``torchrun --nproc_per_node=2``: train a GNN on an on-disk store, save this rank's
weights (``python ddp_store_worker.py STORE OUT``); :func:`train` is the one-process reference."""

import sys

import torch
from torch.utils.data import DistributedSampler
from torch_geometric.loader import DataLoader

from gconv.data import MoleculeStore, Standardizer, StoreDataset
from gconv.models import GNN
from gconv.train import Trainer, seed_everything


def train(store_path: str, batch_size: int, single_process: bool = False) -> Trainer:
    """3 epochs of a small D-MPNN over the store, two loader workers decoding the graphs. Under
    torchrun the Trainer gives each rank its shard (a DistributedSampler); ``single_process``
    reads the same global batches in one process (a DistributedSampler of one replica)."""
    data = StoreDataset(MoleculeStore(store_path))
    data = data.standardized(Standardizer.fit(data.y))
    seed_everything(0)
    model = GNN(in_channels=48, out_channels=1, hidden_channels=8, num_layers=2, edge_dim=14,
                head_hidden=(8,), readout="sum", batch_norm=False)  # fmt: skip
    # (no BatchNorm: its statistics are per process, the one thing DDP does not average)
    sampler = None
    if single_process:
        sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=2)  # fmt: skip
    trainer = Trainer(model, loss="masked_mse", optimizer="sgd", lr=0.05, progress=False, seed=0)
    trainer.fit(loader, epochs=3)
    return trainer


if __name__ == "__main__":
    store, out = sys.argv[1], sys.argv[2]
    trainer = train(store, batch_size=8)  # per process: 2 x 8 = one global batch of 16
    torch.save(
        {
            "state": {k: v.cpu() for k, v in trainer.model.state_dict().items()},
            "history": trainer.history.epochs,
            "world": trainer.dist.world_size,
        },
        f"{out}/rank{trainer.dist.rank}.pt",
    )
