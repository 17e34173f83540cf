"""Run under ``torchrun --nproc_per_node=2``: train with the Trainer, save this rank's weights."""

import sys
import warnings

import torch
from torch import nn
from trainer_data import ViewCNN, images

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


def train_view_cnn(batch_size: int) -> Trainer:
    x, y = images(64)
    seed_everything(0)
    trainer = Trainer(ViewCNN(), optimizer="sgd", lr=0.1, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TensorLoader(x, y, batch_size=batch_size, seed=1), epochs=3)
    trainer.warnings = sorted({str(w.message) for w in caught})
    return trainer


class GraphSum(nn.Module):
    """Graph regressor: a linear map of node features summed per graph."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.graphs_seen = 0  # training graphs this process saw: half the data set under 2 ranks

    def forward(self, data) -> torch.Tensor:
        if self.training:
            self.graphs_seen += data.num_graphs
        out = torch.zeros(data.num_graphs, 1, device=data.x.device)
        return out.index_add(0, data.batch, self.lin(data.x))


def train_graphs(epochs: int = 20) -> Trainer:
    """PyG batches: under torchrun the Trainer re-batches through a DistributedSampler."""
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader

    g = torch.Generator().manual_seed(0)
    graphs = []
    for _ in range(64):
        x = torch.randn(int(torch.randint(2, 8, (1,), generator=g)), 3, generator=g)
        graphs.append(
            Data(
                x=x, edge_index=torch.empty(2, 0, dtype=torch.long), y=x[:, :1].sum(0, keepdim=True)
            )
        )
    seed_everything(0)
    trainer = Trainer(GraphSum(), loss="mse", lr=0.05, progress=False, seed=0)
    trainer.fit(DataLoader(graphs, batch_size=8, shuffle=True), epochs=epochs)
    return trainer


if __name__ == "__main__":
    out = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "graphs":
        trainer = train_graphs()
    elif len(sys.argv) > 2 and sys.argv[2] == "viewcnn":
        trainer = train_view_cnn(batch_size=16)  # per process: one global batch of 32
    else:
        trainer = train(batch_size=20)  # per process: 2 x 20 = one global batch of 40
    state = {k: v.cpu() for k, v in trainer.model.state_dict().items()}
    torch.save(
        {
            "state": state,
            "history": trainer.history.epochs,
            "world": trainer.dist.world_size,
            "graphs_seen": getattr(trainer.model, "graphs_seen", None),
            "warnings": getattr(trainer, "warnings", []),
            "channels_last": trainer.channels_last,
        },
        f"{out}/rank{trainer.dist.rank}.pt",
    )
