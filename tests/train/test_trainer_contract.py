"""The Trainer never fails silently: each probe of issue 11's table is a test here.

Epoch losses weighted by labels, Datasets given to fit(), exact resume with every kind of loader,
what a resume takes from the checkpoint and what from the new call, label checks on every batch
without a host sync per step, non-finite losses, seeding, and every module's train/eval flag.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as GraphLoader
from torch_geometric.nn import global_mean_pool
from trainer_data import blobs, params, small_net

from gconv.data import TensorLoader
from gconv.data.datasets import MoleculeDataset
from gconv.train import Trainer, load_checkpoint, seed_everything
from gconv.train.trainer import LOSSES


def multitask(n: int = 13, tasks: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Regression targets with missing labels spread unevenly: the first rows are mostly NaN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.randn(n, tasks, generator=g) * 3
    missing = torch.rand(n, tasks, generator=g) < torch.linspace(0.9, 0.1, n)[:, None]
    missing[0, 0] = False  # every task keeps a label
    return x, torch.where(missing, math.nan, y)


# --------------------------------------------------------------------------- epoch loss weighting
@pytest.mark.parametrize("loss", ["masked_mse", "bce"])
def test_epoch_loss_is_the_mean_over_labels_whatever_the_batch_size(loss):
    x, y = multitask()
    if loss == "bce":
        y = torch.where(torch.isnan(y), math.nan, (y > 0).float())
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        expected = LOSSES[loss](model(x), y).item()  # one batch: the mean over every label
    for batch_size in (2, 4, 8, 5):  # uneven last batches
        trainer = Trainer(model, loss=loss, metrics=(), progress=False, device="cpu")
        loader = TensorLoader(x, y, batch_size=batch_size, shuffle=False)
        assert trainer.evaluate(loader)["loss"] == pytest.approx(expected, rel=1e-6)
    # the training loss too (learning rate 0: the model does not move), shuffled batches
    for batch_size in (2, 3, 13):
        trainer = Trainer(model, loss=loss, optimizer="sgd", lr=0.0, metrics=(), progress=False)
        history = trainer.fit(TensorLoader(x, y, batch_size=batch_size, seed=1), epochs=1)
        assert history["train_loss"][0] == pytest.approx(expected, rel=1e-6)


class SumOfNodes(nn.Module):
    """Graph-level: a linear map of node features summed per graph, ``tasks`` outputs."""

    def __init__(self, tasks: int = 1) -> None:
        super().__init__()
        self.lin = nn.Linear(3, tasks)

    def forward(self, data) -> torch.Tensor:
        out = torch.zeros(data.num_graphs, self.lin.out_features, device=data.x.device)
        return out.index_add(0, data.batch, self.lin(data.x))


class PerNode(nn.Module):
    """Node-level: one output per node."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, data) -> torch.Tensor:
        return self.lin(data.x).squeeze(-1)


def graphs(node_targets: bool, n: int = 16, seed: int = 0) -> list[Data]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        nodes = 1 + (i * 7) % 12  # 1 to 12 nodes
        x = torch.randn(nodes, 3, generator=g)
        if node_targets:
            y = x[:, 0] * (1 + i)  # larger graphs have larger errors: weighting matters
            if i % 3 == 0:
                y[: nodes // 2] = math.nan
        else:
            y = torch.randn(1, 2, generator=g) * (1 + i)
            y[0, i % 2] = math.nan if i % 4 < 3 else y[0, i % 2]
        out.append(Data(x=x, edge_index=torch.empty(2, 0, dtype=torch.long), y=y))
    return out


def test_graph_level_nan_masked_multitask_loss_is_independent_of_batch_size():
    data = graphs(node_targets=False)
    torch.manual_seed(0)
    model = SumOfNodes(tasks=2)
    full = next(iter(GraphLoader(data, batch_size=len(data))))
    with torch.no_grad():
        expected = LOSSES["masked_mse"](model(full), full.y).item()
    trainer = Trainer(model, loss="masked_mse", progress=False, device="cpu")
    for batch_size in (2, 4, 8, 5):
        result = trainer.evaluate(GraphLoader(data, batch_size=batch_size))
        assert result["loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("loss", ["mse", "masked_mse"])
def test_node_level_loss_and_metrics_are_per_node(loss):
    data = graphs(node_targets=True)
    if loss == "mse":
        for graph in data:
            graph.y = torch.nan_to_num(graph.y, nan=0.0)
    torch.manual_seed(0)
    model = PerNode()
    full = next(iter(GraphLoader(data, batch_size=len(data))))
    with torch.no_grad():
        expected = LOSSES["masked_mse"](model(full), full.y).item()  # mean over labelled nodes
    trainer = Trainer(model, loss=loss, metrics=("rmse",), progress=False, device="cpu")
    for batch_size in (10, 5, 1):
        result = trainer.evaluate(GraphLoader(data, batch_size=batch_size))
        assert result["loss"] == pytest.approx(expected, rel=1e-6)
        assert result["rmse"] == pytest.approx(math.sqrt(expected), rel=1e-6)


# --------------------------------------------------------------------------- datasets
class Recorder(nn.Module):
    """small_net that records the batches it trains on."""

    def __init__(self) -> None:
        super().__init__()
        self.net = small_net()
        self.batches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches.append(x.detach().clone())
        return self.net(x)


def test_fit_refuses_a_dataset_without_batch_size_and_wraps_it_with_one():
    x, y = blobs(50)
    dataset = TensorDataset(x, y)
    model = Recorder()
    trainer = Trainer(model, progress=False, seed=0)
    with pytest.raises(
        TypeError,
        match=r"train is a TensorDataset, whose items are single samples.*batch_size=.*"
        r"torch.utils.data.DataLoader\(train, batch_size=64, shuffle=True\)",
    ):
        trainer.fit(dataset, epochs=1)
    assert not model.batches  # nothing trained, not one sample at a time
    with pytest.raises(TypeError, match=r"val is a TensorDataset"):
        trainer.fit(TensorLoader(x, y), val=dataset, epochs=1)
    with pytest.raises(TypeError, match=r"data is a TensorDataset"):
        trainer.evaluate(dataset)

    history = trainer.fit(dataset, val=dataset, epochs=2, batch_size=16)
    assert [len(b) for b in model.batches] == [16, 16, 16, 2] * 2
    assert not torch.equal(model.batches[0], x[:16])  # shuffled for training
    assert trainer.evaluate(dataset, batch_size=7)["accuracy"] == history["val_accuracy"][-1]
    with pytest.raises(ValueError, match="batch_size= batches a Dataset"):
        trainer.fit(TensorLoader(x, y), epochs=3, batch_size=16)


class MeanPool(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.lin = nn.Linear(features, 1)
        self.sizes: list[int] = []

    def forward(self, data) -> torch.Tensor:
        self.sizes.append(int(data.num_graphs))
        return global_mean_pool(self.lin(data.x), data.batch)


def test_a_molecule_dataset_or_a_list_of_graphs_is_batched_by_pyg():
    dataset = MoleculeDataset(["CCO", "CCN", "CCC", "c1ccccc1", "CC(=O)O"], [1.0, 2, 3, 4, 5])
    model = MeanPool(dataset.num_node_features)
    trainer = Trainer(model, loss="mse", progress=False, seed=0)
    with pytest.raises(TypeError, match=r"MoleculeDataset.*torch_geometric.loader.DataLoader"):
        trainer.fit(dataset, epochs=1)
    with pytest.raises(TypeError, match=r"a list of single graphs"):
        trainer.fit(list(dataset), epochs=1)
    assert not model.sizes
    trainer.fit(dataset, epochs=1, batch_size=2)
    assert model.sizes == [2, 2, 1]
    predictions = trainer.predict(list(dataset), batch_size=4)
    assert predictions.shape == (5, 1)


# --------------------------------------------------------------------------- exact resume
class Interruptible(nn.Module):
    """Wraps a model; raises KeyboardInterrupt on training call ``stop_at`` (a killed run)."""

    def __init__(self, model: nn.Module, stop_at: int | None = None) -> None:
        super().__init__()
        self.model, self.stop_at, self.calls = model, stop_at, 0

    def forward(self, inputs):
        if self.training:
            self.calls += 1
            if self.calls == self.stop_at:
                raise KeyboardInterrupt
        return self.model(inputs.x if isinstance(inputs, Data) else inputs)


class Noisy(Dataset):
    """Samples with random noise drawn in the worker processes (their seeds must replay)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i] + 0.1 * torch.randn(8), self.y[i]


def make_loader(kind: str):
    x, y = blobs(200)
    if kind == "dataloader_generator":
        generator = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True, generator=generator)
    if kind == "tensor_loader_unseeded":
        return TensorLoader(x, y, batch_size=20)  # seed drawn from the global generator
    if kind == "pyg_generator":
        data = [Data(x=x[i : i + 1], y=y[i : i + 1]) for i in range(len(x))]
        generator = torch.Generator().manual_seed(0)
        return GraphLoader(data, batch_size=20, shuffle=True, generator=generator)
    if kind == "workers":
        generator = torch.Generator().manual_seed(0)
        return DataLoader(
            Noisy(x, y), batch_size=20, shuffle=True, generator=generator, num_workers=2
        )
    raise AssertionError(kind)


def train_run(tmp_path, kind: str, epochs: int, stop_at=None, resume=False) -> Trainer:
    seed_everything(1)
    model = Interruptible(small_net(0.3), stop_at)
    if resume:
        torch.rand(5)  # a new process is in another random state: the resume must not care
    trainer = Trainer(
        model,
        progress=False,
        seed=None if kind == "tensor_loader_unseeded" else 0,
        checkpoint_dir=tmp_path,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
    )
    trainer.fit(make_loader(kind), epochs=epochs, resume=resume)
    return trainer


@pytest.mark.parametrize(
    "kind", ["dataloader_generator", "tensor_loader_unseeded", "pyg_generator", "workers"]
)
def test_killed_and_resumed_run_equals_the_uninterrupted_one(tmp_path, kind):
    full = train_run(tmp_path / "full", kind, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train_run(tmp_path / "cut", kind, epochs=4, stop_at=25)  # killed in epoch 3
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    resumed = train_run(tmp_path / "cut", kind, epochs=4, resume=True)
    assert resumed.epoch == 4
    torch.testing.assert_close(params(resumed.model), params(full.model), rtol=0, atol=0)
    assert resumed.history["train_loss"] == full.history["train_loss"]


def test_persistent_workers_warn_that_the_resume_is_not_exact(tmp_path):
    x, y = blobs(40)

    def loader():
        return DataLoader(
            TensorDataset(x, y), batch_size=20, shuffle=True, num_workers=1, persistent_workers=True
        )

    Trainer(small_net(), progress=False, checkpoint_dir=tmp_path).fit(loader(), epochs=1)
    trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning, match="persistent_workers=True"):
        trainer.fit(loader(), epochs=2, resume=True)


def test_a_tensor_loader_seeded_otherwise_at_resume_warns_and_follows_the_checkpoint(tmp_path):
    x, y = blobs(100)
    Trainer(small_net(), progress=False, checkpoint_dir=tmp_path).fit(
        TensorLoader(x, y, batch_size=20, seed=0), epochs=1
    )
    loader = TensorLoader(x, y, batch_size=20, seed=5)
    with pytest.warns(UserWarning, match=r"saved seed 0 replaces seed=5"):
        Trainer(small_net(), progress=False, checkpoint_dir=tmp_path).fit(
            loader, epochs=2, resume=True
        )
    assert loader.state_dict() == {"seed": 0, "epoch": 1}


# --------------------------------------------------------------------------- resume semantics
def first_run(tmp_path, **options) -> Trainer:
    x, y = blobs(100)
    seed_everything(0)
    trainer = Trainer(small_net(), progress=False, seed=0, checkpoint_dir=tmp_path, **options)
    trainer.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=2)
    return trainer


def test_resume_with_a_new_lr_warns_and_keeps_the_checkpoint_lr(tmp_path):
    first_run(tmp_path, lr=1e-3)
    x, y = blobs(100)
    trainer = Trainer(small_net(), lr=1e-2, progress=False, checkpoint_dir=tmp_path)
    with pytest.warns(
        UserWarning, match=r"lr=0.01 \(checkpoint: 0.001\) given to this Trainer is not"
    ):
        trainer.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=3, resume=True)
    assert trainer.optimizer.param_groups[0]["lr"] == 1e-3
    assert len(trainer.history) == 3


def test_resume_with_another_optimizer_starts_it_fresh(tmp_path):
    first_run(tmp_path)  # Adam
    x, y = blobs(100)
    trainer = Trainer(
        small_net(), optimizer="sgd", lr=0.05, progress=False, checkpoint_dir=tmp_path
    )
    with pytest.warns(UserWarning, match=r"trained with Adam, this Trainer uses SGD.*starts fresh"):
        trainer.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=3, resume=True)
    assert trainer.history["epoch"] == [1, 2, 3]
    assert trainer.optimizer.param_groups[0]["lr"] == 0.05
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.9


def test_resume_warns_for_a_dropped_or_replaced_scheduler(tmp_path):
    def step_lr(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    first_run(tmp_path, scheduler=step_lr)
    x, y = blobs(100)
    dropped = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"StepLR schedule .* is dropped.*stays at 0.00025"):
        dropped.resume(tmp_path / "last.pt")

    same = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path, scheduler=step_lr)
    same.resume(tmp_path / "last.pt")
    assert same.scheduler.last_epoch == 2

    def cosine(opt):
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)

    replaced = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path, scheduler=cosine)
    with pytest.warns(UserWarning, match=r"has a StepLR, this Trainer has a CosineAnnealingLR"):
        replaced.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=3, resume=True)


def test_a_resume_with_nothing_to_do_warns(tmp_path):
    done = first_run(tmp_path)
    x, y = blobs(100)
    trainer = Trainer(small_net(), progress=False, seed=0, checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"fit\(epochs=1\) has nothing to do: 2 epochs are done"):
        history = trainer.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=1, resume=True)
    assert len(history) == 2
    torch.testing.assert_close(params(trainer.model), params(done.model), rtol=0, atol=0)
    with pytest.warns(UserWarning, match=r"fit\(epochs=2\) has nothing to do"):
        done.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=2)  # continuing, not resuming


def test_resuming_an_early_stopped_run_warns(tmp_path):
    x, y = blobs(100)
    noise = torch.randint(0, 2, (100,), generator=torch.Generator().manual_seed(5))
    trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path, patience=1, lr=0.05)
    trainer.fit(TensorLoader(x, y, seed=0), val=TensorLoader(x, noise), epochs=50)
    assert len(trainer.history) < 50
    again = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path, patience=1, lr=0.05)
    with pytest.warns(UserWarning, match="stopped early"):
        again.fit(TensorLoader(x, y, seed=0), val=TensorLoader(x, noise), epochs=50, resume=True)
    assert len(again.history) == len(trainer.history)


def test_resume_with_other_settings_names_each_override(tmp_path):
    def step_lr(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    first_run(tmp_path, scheduler=step_lr)
    x, y = blobs(100)
    trainer = Trainer(
        small_net(),
        progress=False,
        checkpoint_dir=tmp_path,
        grad_clip=1.0,
        patience=3,
        seed=7,
        scheduler=step_lr,
    )
    with pytest.warns(UserWarning) as caught:
        trainer.fit(
            TensorLoader(x, y, batch_size=20, seed=0),
            val=TensorLoader(x, y),
            epochs=3,
            resume=True,
        )
    messages = " | ".join(str(w.message) for w in caught)
    assert "grad_clip=1.0 of this Trainer replaces the checkpoint's None" in messages
    assert "patience=3 of this Trainer replaces" in messages
    assert "seed=7 has no effect" in messages
    assert "planned for 2 epochs" in messages
    # the checkpoint's best value was a train_loss: not comparable with val_loss
    assert "this run monitors val_loss" in messages and "start afresh" in messages
    assert trainer.best_epoch == 3


# --------------------------------------------------------------------------- labels
class Phased:
    """Batches that change with the epoch (``set_epoch``), like a sampler's permutation."""

    def __init__(self, batches_by_epoch) -> None:
        self.batches_by_epoch, self.epoch = batches_by_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(self.batches_by_epoch(self.epoch))


def batches_with(bad_epoch: int, bad_batch: int, value, n_batches: int = 10, keep=None):
    x, y = blobs(10 * n_batches)

    def batches(epoch: int):
        out = []
        for i in range(n_batches if keep is None or epoch < bad_epoch else keep):
            xb, yb = x[i * 10 : (i + 1) * 10].clone(), y[i * 10 : (i + 1) * 10].clone()
            if epoch == bad_epoch and i == bad_batch:
                if isinstance(value, float):
                    xb[3, 0] = value
                else:
                    yb[4] = value
            out.append((xb, yb))
        return out

    return Phased(batches)


def test_a_bad_label_first_seen_in_epoch_2_names_epoch_and_batch():
    trainer = Trainer(small_net(), progress=False)
    with pytest.raises(
        ValueError,
        match=r"labels must be integers in \[0, 2\).*epoch 2, batch 6 has labels from 0 to 7",
    ):
        trainer.fit(batches_with(bad_epoch=1, bad_batch=6, value=7), epochs=3)
    assert trainer.epoch == 1


def test_labels_checked_on_the_device_raise_at_the_next_check_and_restore_weights():
    seed_everything(0)
    trainer = Trainer(small_net(), progress=False, log_every=4)
    trainer._defer_label_check = True  # the GPU path: no host sync per step, no device assert
    with pytest.raises(
        ValueError, match=r"epoch 2, batch 5 has labels from -3 to 1.*after batch 3 of epoch 2"
    ):
        trainer.fit(batches_with(bad_epoch=1, bad_batch=5, value=-3), epochs=2)
    seed_everything(0)
    reference = Trainer(small_net(), progress=False)  # epoch 1, then batches 0-3 of epoch 2
    reference.fit(batches_with(bad_epoch=1, bad_batch=99, value=0, keep=4), epochs=2)
    torch.testing.assert_close(params(trainer.model), params(reference.model), rtol=0, atol=0)


def test_float_or_column_labels_for_cross_entropy_get_hints():
    x, y = blobs(20)
    trainer = Trainer(small_net(), progress=False)
    with pytest.raises(ValueError, match=r"float labels of shape \[10\]: use y.long\(\)"):
        trainer.fit(TensorLoader(x, y.float(), batch_size=10), epochs=1)
    with pytest.raises(
        ValueError, match=r"float labels of shape \[10, 1\]: use y.squeeze\(-1\).long"
    ):
        trainer.fit(TensorLoader(x, y.float()[:, None], batch_size=10), epochs=1)
    with pytest.raises(ValueError, match=r"labels of shape \[10, 1\]: use y.squeeze\(-1\)"):
        trainer.fit(TensorLoader(x, y[:, None], batch_size=10), epochs=1)
    with pytest.raises(ValueError, match=r"'mse' needs one target per output.*\[10, 2\].*\[10\]"):
        Trainer(small_net(), loss="mse", progress=False).fit(
            TensorLoader(x, y.float(), batch_size=10), epochs=1
        )
    # class probabilities of the output's shape are fine
    probabilities = nn.functional.one_hot(y, 2).float()
    trainer.fit(TensorLoader(x, probabilities, batch_size=10), epochs=1)


# --------------------------------------------------------------------------- non-finite loss
def test_a_non_finite_loss_names_the_batch_and_restores_the_last_finite_weights(tmp_path):
    seed_everything(0)
    trainer = Trainer(small_net(), progress=False, log_every=5, checkpoint_dir=tmp_path)
    with pytest.raises(FloatingPointError) as error:
        trainer.fit(batches_with(bad_epoch=1, bad_batch=7, value=math.inf), epochs=2)
    message = str(error.value)
    assert "loss became nan at epoch 2, batch 7" in message
    assert "restored to those after batch 4 of epoch 2" in message
    assert "last.pt holds the end of epoch 1" in message
    assert torch.isfinite(params(trainer.model)).all()
    seed_everything(0)
    reference = Trainer(small_net(), progress=False)
    reference.fit(batches_with(bad_epoch=1, bad_batch=99, value=0, keep=5), epochs=2)
    torch.testing.assert_close(params(trainer.model), params(reference.model), rtol=0, atol=0)


def test_no_host_sync_per_step(monkeypatch):
    """Tensor-to-host conversions per epoch do not grow with the number of steps."""
    calls = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__", "__index__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    x, y = blobs(400)
    counts = []
    for batch_size in (40, 10):  # 10 and 40 steps
        trainer = Trainer(small_net(), optimizer="sgd", metrics=(), progress=False, log_every=1000)
        loader = TensorLoader(x, y, batch_size=batch_size, seed=0)
        calls["n"] = 0
        trainer.fit(loader, epochs=1)
        counts.append(calls["n"])
    assert counts[0] == counts[1], counts


# --------------------------------------------------------------------------- seeding
def test_seed_also_fixes_an_unseeded_tensor_loader():
    x, y = blobs(200)
    results = []
    for other_state in (1, 2):
        seed_everything(0)
        model = small_net(0.2)
        torch.manual_seed(other_state)  # the loader's drawn seed differs between the two runs
        loader = TensorLoader(x, y, batch_size=20)
        trainer = Trainer(model, progress=False, seed=3)
        trainer.fit(loader, epochs=2)
        assert loader.seed == 3
        results.append(params(trainer.model))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)
    seeded = TensorLoader(x, y, seed=11)
    Trainer(small_net(), progress=False, seed=3).fit(seeded, epochs=1)
    assert seeded.seed == 11  # a seed given to the loader is kept


def test_seed_warns_where_kernels_are_not_deterministic(monkeypatch):
    trainer = Trainer(small_net(), progress=False, seed=0, device="cpu")
    trainer.device = torch.device("cuda")  # what fit() sees on a GPU (the check reads the type)
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    with pytest.warns(UserWarning, match=r"non-deterministic.*use_deterministic_algorithms"):
        trainer._seed_run(TensorLoader(*blobs(20)))
    doc = Trainer.__doc__
    assert "model's initial weights" in doc and "seed_everything" in doc


# --------------------------------------------------------------------------- train / eval flags
class ModeProbe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2)
        )
        self.dropout_modes: list[bool] = []

    def forward(self, x):
        self.dropout_modes.append(self.net[3].training)
        return self.net(x)


def test_a_frozen_batchnorm_stays_frozen_and_every_flag_is_restored():
    x, y = blobs(100)
    model = ModeProbe()
    model.net[1].eval()  # frozen BatchNorm, the rest training
    before = {m: m.training for m in model.modules()}
    running_mean = model.net[1].running_mean.clone()
    trainer = Trainer(model, progress=False, seed=0)
    trainer.fit(TensorLoader(x, y, batch_size=20), val=TensorLoader(x, y), epochs=2)
    assert torch.equal(model.net[1].running_mean, running_mean)  # never switched on
    assert {m: m.training for m in model.modules()} == before
    trainer.evaluate(TensorLoader(x, y))
    trainer.predict(TensorLoader(x))
    assert {m: m.training for m in model.modules()} == before

    model.eval()  # a model left in eval mode still trains in training mode, then goes back
    model.dropout_modes.clear()
    trainer.fit(TensorLoader(x, y, batch_size=50), epochs=3)
    assert model.dropout_modes == [True, True]
    assert not any(m.training for m in model.modules())


class FrozenNormProbe(ModeProbe):
    """Keeps its BatchNorm in eval through its own ``train()``, as torchvision-style frozen
    backbones (and gconv's TransferModel) do."""

    def train(self, mode: bool = True):
        super().train(mode)
        self.net[1].eval()
        return self


def test_a_models_own_train_override_runs_in_training():
    x, y = blobs(100)
    model = FrozenNormProbe()  # built in training mode: its BatchNorm flag still says training
    assert model.net[1].training
    running_mean = model.net[1].running_mean.clone()
    trainer = Trainer(model, progress=False, seed=0)
    trainer.fit(TensorLoader(x, y, batch_size=20), val=TensorLoader(x, y), epochs=2)
    assert torch.equal(model.net[1].running_mean, running_mean)  # the override kept it frozen
    assert model.dropout_modes[0] is True  # the rest trained in training mode
