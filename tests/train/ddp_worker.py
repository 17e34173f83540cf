"""Run under ``torchrun --nproc_per_node=2``: train with the Trainer, save this rank's weights."""

import sys

import torch
from torch import nn

from gconv.data import TensorLoader
from gconv.train import Trainer, seed_everything


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=g)
    x = torch.randn(200, 8, generator=g) + (y[:, None].float() * 2 - 1)
    return x, y


def make_model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))


def train(batch_size: int, epochs: int = 3) -> Trainer:
    x, y = make_data()
    trainer = Trainer(make_model(), optimizer="sgd", lr=0.1, progress=False)
    trainer.fit(TensorLoader(x, y, batch_size=batch_size, seed=1), epochs=epochs)
    return trainer


if __name__ == "__main__":
    out = sys.argv[1]
    trainer = train(batch_size=20)  # per process: 2 x 20 = one global batch of 40
    state = {k: v.cpu() for k, v in trainer.model.state_dict().items()}
    torch.save(
        {"state": state, "history": trainer.history.epochs, "world": trainer.dist.world_size},
        f"{out}/rank{trainer.dist.rank}.pt",
    )
