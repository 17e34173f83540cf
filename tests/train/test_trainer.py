"""gconv/train/trainer.py, the loop: learning, best epoch and early stopping, bad input, graph
batches, compile, the channels-last layout, and every module's train/eval flag."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as GraphLoader
from trainer_data import ViewCNN, blobs, images, params, small_net

from gconv.data import TensorLoader
from gconv.train import Trainer, load_checkpoint, seed_everything


# --------------------------------------------------------------------------- the loop
def test_fit_learns_and_records_history():
    x, y = blobs()
    seed_everything(0)
    trainer = Trainer(small_net(), progress=False, seed=0)
    history = trainer.fit(
        TensorLoader(x[:300], y[:300], batch_size=32, seed=0),
        val=TensorLoader(x[300:], y[300:], shuffle=False),
        epochs=5,
    )
    assert len(history) == 5
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert set(history.last) >= {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}
    result = trainer.evaluate(TensorLoader(x[300:], y[300:], shuffle=False))
    assert result["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    logits = trainer.predict(TensorLoader(x[300:], shuffle=False))
    assert logits.shape == (100, 2) and logits.device.type == "cpu"
    assert (logits.argmax(1) == y[300:]).float().mean().item() == pytest.approx(result["accuracy"])


def test_best_checkpoint_and_early_stopping(tmp_path):
    x, y = blobs()
    # validation labels are noise: val_loss stops improving, patience ends the run early
    y_noise = torch.randint(0, 2, (100,), generator=torch.Generator().manual_seed(5))
    trainer = Trainer(
        small_net(), progress=False, seed=0, checkpoint_dir=tmp_path, patience=2, lr=0.05
    )
    history = trainer.fit(
        TensorLoader(x[:300], y[:300], batch_size=30, seed=0),
        val=TensorLoader(x[300:], y_noise, shuffle=False),
        epochs=40,
    )
    assert len(history) < 40
    assert len(history) - trainer.best_epoch == 2
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == trainer.best_epoch
    assert best["value"] == pytest.approx(min(history["val_loss"]))
    trainer.load_best()
    assert trainer.evaluate(TensorLoader(x[300:], y_noise, shuffle=False))["loss"] == pytest.approx(
        best["value"], rel=1e-5
    )
    assert not list(tmp_path.glob("*.tmp")), "temporary checkpoint files left behind"


def test_load_best_without_checkpoint_dir_uses_memory():
    x, y = blobs()
    trainer = Trainer(small_net(), progress=False, seed=0, monitor="val_accuracy")
    trainer.fit(
        TensorLoader(x[:300], y[:300], batch_size=30), val=TensorLoader(x[300:], y[300:]), epochs=3
    )
    trainer.load_best()
    acc = trainer.evaluate(TensorLoader(x[300:], y[300:]))["accuracy"]
    assert acc == pytest.approx(max(trainer.history["val_accuracy"]))


def test_wrong_input_shape_names_the_shape():
    x = torch.randn(20, 5)
    y = torch.zeros(20, dtype=torch.long)
    trainer = Trainer(small_net(), progress=False)
    with pytest.raises(RuntimeError, match=r"epoch 1, batch 0 \(input of shape \(10, 5\)\)"):
        trainer.fit(TensorLoader(x, y, batch_size=10), epochs=1)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        Trainer(small_net(), loss="hinge")
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs2'"):
        Trainer(small_net(), optimizer="lbfgs2")
    with pytest.raises(ValueError, match="unknown metric 'f7'"):
        Trainer(small_net(), metrics=("f7",))
    with pytest.raises(ValueError, match="cannot monitor 'val_f1'"):
        Trainer(small_net(), monitor="val_f1", progress=False).fit(
            TensorLoader(*blobs(20)), val=TensorLoader(*blobs(20)), epochs=1
        )


class SumOfNodes(nn.Module):
    """Graph regressor: linear map of node features, summed per graph."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, data) -> torch.Tensor:
        out = torch.zeros(data.num_graphs, 1, device=data.x.device)
        return out.index_add(0, data.batch, self.lin(data.x))


def test_graph_batches_with_nan_targets_masked():
    g = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(64):
        n = int(torch.randint(2, 9, (1,), generator=g))
        x = torch.randn(n, 3, generator=g)
        y = x.sum(0, keepdim=True)[:, :2].sum(1, keepdim=True)  # target: sum of 2 features
        if i % 5 == 0:
            y = torch.full((1, 1), math.nan)  # missing label: masked, not dropped
        graphs.append(Data(x=x, edge_index=torch.empty(2, 0, dtype=torch.long), y=y))
    trainer = Trainer(SumOfNodes(), loss="masked_mse", lr=0.05, progress=False, seed=0)
    history = trainer.fit(GraphLoader(graphs, batch_size=16, shuffle=True), epochs=30)
    assert math.isfinite(history["train_loss"][-1])
    assert history["train_r2"][-1] > 0.95
    weights = trainer.model.lin.weight.detach().flatten()
    torch.testing.assert_close(weights, torch.tensor([1.0, 1.0, 0.0]), atol=0.1, rtol=0)


@pytest.mark.slow
def test_torch_compile_trains_like_eager():
    x, y = blobs(200)
    runs = []
    for compiled in (False, True):
        seed_everything(0)
        trainer = Trainer(small_net(), compile=compiled, progress=False, lr=1e-2)
        trainer.fit(TensorLoader(x, y, batch_size=50, seed=0), epochs=2)
        runs.append(params(trainer.model))
    torch.testing.assert_close(runs[1], runs[0], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- channels-last layout
def test_channels_last_trains_like_the_default_layout():
    from gconv.models import lecture_cnn

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    runs = []
    for channels_last in (False, True):
        seed_everything(0)
        trainer = Trainer(lecture_cnn(), channels_last=channels_last, progress=False, lr=1e-2)
        history = trainer.fit(TensorLoader(x, y, batch_size=32, seed=0), epochs=2)
        runs.append((params(trainer.model), history["train_loss"]))
    conv = [m for m in trainer.model.modules() if isinstance(m, nn.Conv2d)][-1]  # 32 -> 64
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    torch.testing.assert_close(runs[1][0], runs[0][0], rtol=1e-3, atol=1e-4)
    assert runs[1][1] == pytest.approx(runs[0][1], rel=1e-4)
    logits = trainer.predict(TensorLoader(x, shuffle=False))
    assert logits.shape == (64, 10)


def test_channels_last_auto_is_on_for_cnns_on_the_cpu_only():
    from gconv.models import MLP, lecture_cnn

    assert Trainer(lecture_cnn(), device="cpu", progress=False).channels_last is True
    assert Trainer(MLP((1, 28, 28)), device="cpu", progress=False).channels_last is False
    with pytest.raises(ValueError, match="channels_last must be True, False or 'auto'"):
        Trainer(lecture_cnn(), progress=False, channels_last="nhwc")


def test_channels_last_auto_falls_back_to_an_exact_nchw_run(tmp_path):
    x, y = images()
    runs = []
    for channels_last in ("auto", False):
        seed_everything(0)
        trainer = Trainer(ViewCNN(batch_norm=True), channels_last=channels_last, progress=False)
        if channels_last == "auto":
            with pytest.warns(UserWarning, match="failed in channels-last layout.*view size"):
                history = trainer.fit(TensorLoader(x, y, batch_size=16, seed=0), epochs=2)
        else:
            history = trainer.fit(TensorLoader(x, y, batch_size=16, seed=0), epochs=2)
        assert trainer.channels_last is False
        assert trainer.model.conv.weight.is_contiguous()
        runs.append((params(trainer.model), trainer.model.bn.running_var, history["train_loss"]))
    # the failed NHWC forward left no trace: batch-norm statistics were put back
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=0, atol=0)
    assert runs[0][2] == runs[1][2]


def test_channels_last_forced_on_a_view_model_names_the_fix():
    x, y = images()
    trainer = Trainer(ViewCNN(batch_norm=True), channels_last=True, progress=False)
    with pytest.raises(RuntimeError, match=r"use \.reshape or \.flatten instead of \.view"):
        trainer.fit(TensorLoader(x, y, batch_size=16, seed=0), epochs=1)


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


# --------------------------------------------------------------------------- names and docs
def test_every_name_stays_importable_from_where_it_was():
    import gconv.train
    from gconv.train import losses, resume, runtime, trainer

    for module in (gconv.train, trainer):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)
    # gconv.train.trainer re-exports what moved out of it (same objects, no copies)
    assert trainer.LOSSES is losses.LOSSES is gconv.train.LOSSES
    assert trainer.masked_mse is losses.masked_mse and trainer.masked_bce is losses.masked_bce
    assert trainer.seed_everything is runtime.seed_everything is gconv.train.seed_everything
    assert trainer.resolve_device is runtime.resolve_device is gconv.train.resolve_device
    assert trainer.CHECKPOINT_FORMAT == resume.CHECKPOINT_FORMAT == "gconv-checkpoint/1"


def test_the_contract_is_written_once_in_docs_trainer_md():
    assert "docs/trainer.md" in Trainer.__doc__
    docs = (Path(__file__).parents[2] / "docs" / "trainer.md").read_text()
    for section in (
        "## Batches",
        "## Epoch loss and metrics",
        "## Checks",
        "## Train and eval modes",
        "## Per-step callbacks",
        "## Device, mixed precision and memory layout",
        "## Multi-process training",
        "## Resume",
        "## Checkpoints",
        "## Seeding",
    ):
        assert section in docs, section
    assert len(Trainer.__doc__.splitlines()) < 90  # a summary and the arguments, not the contract


def test_training_metrics_of_outputs_joined_in_blocks_equal_the_per_batch_ones(monkeypatch):
    """The outputs a pass keeps (training metrics, evaluation, predict) are joined every
    TRIM_EVERY batches (fewer long-lived blocks in the heap): the same metrics and outputs as
    the per-batch ones."""
    import gconv.train.trainer as trainer_module

    x, y = blobs()
    results = []
    for every in (10**6, 3):  # never joined; joined every 3 batches (10 batches an epoch)
        monkeypatch.setattr(trainer_module, "TRIM_EVERY", every)
        seed_everything(0)
        trainer = Trainer(small_net(), progress=False, seed=0)
        history = trainer.fit(TensorLoader(x[:300], y[:300], batch_size=32, seed=0), epochs=2)
        held_out = TensorLoader(x[300:], y[300:], batch_size=16, shuffle=False)  # 7 batches
        results.append(
            (history["train_accuracy"], trainer.evaluate(held_out), trainer.predict(held_out))
        )
    (accuracy, scores, logits), (accuracy_3, scores_3, logits_3) = results
    assert accuracy == accuracy_3 and len(accuracy) == 2 and scores == scores_3
    assert logits.shape == (100, 2) and torch.equal(logits, logits_3)
