"""Trainer: learning, exact resume, checkpoints, bad input, graph batches."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as GraphLoader
from trainer_data import ViewCNN, blobs, images, params, small_net

from gconv.data import TensorLoader
from gconv.train import CheckpointError, Trainer, load_checkpoint, seed_everything


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


def _run(tmp_path, loader_factory, epochs, resume=False, dropout=0.3):
    seed_everything(1)
    model = small_net(dropout)
    trainer = Trainer(
        model,
        progress=False,
        seed=0,
        checkpoint_dir=tmp_path,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
    )
    trainer.fit(loader_factory(), val=None, epochs=epochs, resume=resume)
    return trainer


@pytest.mark.parametrize("kind", ["tensor_loader", "torch_dataloader"])
def test_interrupted_run_resumes_exactly(tmp_path, kind):
    x, y = blobs(200)

    def loader():
        if kind == "tensor_loader":
            return TensorLoader(x, y, batch_size=20, seed=3)
        # a torch DataLoader draws its permutation from torch's global generator: the
        # checkpoint's RNG state must carry it across the interruption
        return DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True)

    full = _run(tmp_path / "full", loader, epochs=4)
    _run(tmp_path / "cut", loader, epochs=2)  # "interrupted" after epoch 2
    resumed = _run(tmp_path / "cut", loader, epochs=4, resume=True)
    assert resumed.epoch == 4 and len(resumed.history) == 4
    torch.testing.assert_close(params(resumed.model), params(full.model), rtol=0, atol=0)
    assert resumed.history["train_loss"] == pytest.approx(full.history["train_loss"])
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.001 * 0.7**4)


def test_save_every_writes_last_every_n_epochs_and_a_crash_resumes_from_the_latest(
    tmp_path, monkeypatch
):
    x, y = blobs(200)

    def run(folder, epochs, resume=False):
        seed_everything(1)
        trainer = Trainer(
            small_net(0.3), progress=False, seed=0, checkpoint_dir=tmp_path / folder, save_every=3
        )
        trainer.fit(TensorLoader(x, y, batch_size=20, seed=3), epochs=epochs, resume=resume)
        return trainer

    saved = []
    save_last = Trainer._save_last

    def spy(self, loader):
        saved.append(self.epoch)
        save_last(self, loader)

    monkeypatch.setattr(Trainer, "_save_last", spy)
    full = run("full", epochs=7)
    assert saved == [3, 6, 7]  # every third epoch and the last

    train_epoch = Trainer._train_epoch

    def crash_in_epoch_5(self, *args):
        if self.epoch == 4:
            raise RuntimeError("power cut")
        return train_epoch(self, *args)

    monkeypatch.setattr(Trainer, "_train_epoch", crash_in_epoch_5)
    with pytest.raises(RuntimeError, match="power cut"):
        run("cut", epochs=7)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 3
    monkeypatch.setattr(Trainer, "_train_epoch", train_epoch)
    resumed = run("cut", epochs=7, resume=True)
    assert resumed.epoch == 7
    torch.testing.assert_close(params(resumed.model), params(full.model), rtol=0, atol=0)
    with pytest.raises(ValueError, match="save_every to be an int >= 1, got 0"):
        Trainer(small_net(), save_every=0)


def test_early_stopping_writes_last_whatever_save_every(tmp_path):
    x, y = blobs()
    y_noise = torch.randint(0, 2, (100,), generator=torch.Generator().manual_seed(5))
    trainer = Trainer(
        small_net(), progress=False, seed=0, checkpoint_dir=tmp_path, patience=2, lr=0.05,
        save_every=100,
    )  # fmt: skip
    history = trainer.fit(
        TensorLoader(x[:300], y[:300], batch_size=30, seed=0),
        val=TensorLoader(x[300:], y_noise, shuffle=False),
        epochs=40,
    )
    assert len(history) < 40
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == len(history)


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


def test_labels_out_of_range_are_reported():
    x, y = blobs(40)
    y[7] = 5
    trainer = Trainer(small_net(), progress=False)
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 2\).*from 0 to 5"):
        trainer.fit(TensorLoader(x, y, batch_size=40), epochs=1)


def test_wrong_input_shape_names_the_shape():
    x = torch.randn(20, 5)
    y = torch.zeros(20, dtype=torch.long)
    trainer = Trainer(small_net(), progress=False)
    with pytest.raises(RuntimeError, match=r"epoch 1, batch 0 \(input of shape \(10, 5\)\)"):
        trainer.fit(TensorLoader(x, y, batch_size=10), epochs=1)


def test_nan_loss_is_an_error(tmp_path):
    x, y = blobs(40)
    x[3, 0] = math.nan
    trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(FloatingPointError, match="loss became nan"):
        trainer.fit(TensorLoader(x, y, batch_size=10), epochs=1)
    assert not (tmp_path / "last.pt").exists()


def test_missing_and_corrupt_checkpoints(tmp_path):
    trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
    x, y = blobs(20)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        trainer.fit(TensorLoader(x, y), epochs=1, resume=True)
    (tmp_path / "last.pt").write_bytes(b"\x80\x02 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        trainer.fit(TensorLoader(x, y), epochs=1, resume=True)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        Trainer(small_net(), loss="hinge")
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs2'"):
        Trainer(small_net(), optimizer="lbfgs2")
    with pytest.raises(ValueError, match="unknown metric 'f7'"):
        Trainer(small_net(), metrics=("f7",))
    with pytest.raises(ValueError, match="cannot monitor 'val_f1'"):
        Trainer(small_net(), monitor="val_f1", progress=False).fit(
            TensorLoader(*blobs(20)), val=[], epochs=1
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


def test_bf16_autocast_on_cpu_trains():
    x, y = blobs()
    trainer = Trainer(small_net(), amp="bf16", progress=False, seed=0, lr=1e-2)
    history = trainer.fit(TensorLoader(x, y, batch_size=50), epochs=3)
    assert trainer.amp_dtype == torch.bfloat16
    assert history["train_accuracy"][-1] > 0.9


def test_amp_auto_is_off_on_cpu_and_grad_clip_runs():
    x, y = blobs(100)
    trainer = Trainer(small_net(), device="cpu", progress=False, grad_clip=0.1)
    assert trainer.amp_dtype is None and not trainer.scaler.is_enabled()
    trainer.fit(TensorLoader(x, y, batch_size=50), epochs=1)


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


@pytest.mark.parametrize("name", ["masked_mse", "bce"])
def test_masked_losses_ignore_nan_and_survive_unlabelled_batches(name):
    from gconv.train.trainer import LOSSES

    loss_fn = LOSSES[name]
    output = torch.tensor([[0.5, -1.0], [2.0, 0.3]], requires_grad=True)
    target = torch.tensor([[1.0, math.nan], [0.0, 1.0]])
    valid = ~torch.isnan(target)
    if name == "masked_mse":
        expected = torch.nn.functional.mse_loss(output[valid], target[valid])
    else:
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            output[valid], target[valid]
        )
    torch.testing.assert_close(loss_fn(output, target), expected)
    # a batch with no label at all: zero loss and zero gradient, not NaN
    empty = loss_fn(output, torch.full_like(target, math.nan))
    empty.backward()
    assert empty.item() == 0.0
    assert torch.equal(output.grad, torch.zeros_like(output))


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


def test_resume_keeps_the_layout_auto_fell_back_to(tmp_path):
    x, y = images()
    seed_everything(0)
    first = Trainer(ViewCNN(batch_norm=True), progress=False, checkpoint_dir=tmp_path, seed=0)
    with pytest.warns(UserWarning, match="failed in channels-last layout"):
        first.fit(TensorLoader(x, y, batch_size=16), epochs=1)
    resumed = Trainer(ViewCNN(batch_norm=True), progress=False, checkpoint_dir=tmp_path, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second attempt, no layout warning
        resumed.fit(TensorLoader(x, y, batch_size=16), epochs=2, resume=True)
    assert resumed.channels_last is False
