"""gconv/train/resume.py: exact resume with every kind of loader, what a resume takes from the
checkpoint and what from the new call (a warning for each difference), last.pt's schedule, and
missing or corrupt checkpoints."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as GraphLoader
from trainer_data import ViewCNN, blobs, images, params, small_net

from gconv.data import TensorLoader
from gconv.train import CheckpointError, ResumeError, Trainer, load_checkpoint, seed_everything


# --------------------------------------------------------------------------- exact resume
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


# --------------------------------------------------------------------------- what it trained on
def test_a_resume_on_other_data_is_refused_in_one_line(tmp_path):
    first_run(tmp_path)  # a TensorLoader of blobs(100): fingerprinted
    x, y = blobs(100)
    recorded = load_checkpoint(tmp_path / "last.pt")["config"]["data"]
    assert recorded["train"].startswith("x float32 [100, 8], y int64 [100] #")
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(1))
    for other in ((x[:80], y[:80]), (x[perm], y[perm])):  # fewer rows; another split's order
        trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
        with pytest.raises(ResumeError) as error:
            trainer.fit(TensorLoader(*other, batch_size=20, seed=0), epochs=3, resume=True)
        message = str(error.value)
        assert "\n" not in message and message.startswith(
            f"resume: {tmp_path / 'last.pt'} was trained on other data (train='x float32 ["
        )
        assert (
            "in the checkpoint): a resumed run goes on with the data it was trained on" in message
        )
    assert isinstance(error.value, ValueError) and "data_id=False" in message
    # the refused trainer goes on when told to; the same data resumes without a word
    trainer.fit(TensorLoader(*other, batch_size=20, seed=0), epochs=3, data_id=False)
    assert trainer.epoch == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(small_net(), progress=False, seed=0, checkpoint_dir=tmp_path / "a").fit(
            TensorLoader(x, y, batch_size=20, seed=0), epochs=1
        )
        Trainer(small_net(), progress=False, seed=0, checkpoint_dir=tmp_path / "a").fit(
            TensorLoader(x.clone(), y.clone(), batch_size=20, seed=0), epochs=2, resume=True
        )


def test_a_data_id_is_recorded_and_compared_on_resume(tmp_path):
    x, y = blobs(100)
    loader = DataLoader(TensorDataset(x, y), batch_size=20)  # not fingerprinted: give a data_id
    split = {"rows": "3f2a", "split": "random", "seed": 0}
    Trainer(small_net(), progress=False, checkpoint_dir=tmp_path).fit(
        loader, epochs=1, data_id=split
    )
    assert load_checkpoint(tmp_path / "last.pt")["config"]["data"] == split
    trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
    other = {**split, "split": "scaffold", "seed": 1}
    with pytest.raises(
        ResumeError,
        match=r"other data \(split='scaffold' here, 'random' in the checkpoint; seed=1 here, 0 in "
        r"the checkpoint\)",
    ) as error:
        trainer.fit(loader, epochs=2, resume=True, data_id=other)
    assert error.value.reason.endswith(
        "'random' in the checkpoint; seed=1 here, 0 in the checkpoint)"
    )
    trainer.fit(loader, epochs=2, resume=True, data_id=split)
    assert trainer.epoch == 2

    Trainer(small_net(), progress=False, checkpoint_dir=tmp_path / "b").fit(loader, epochs=1)
    with pytest.warns(UserWarning, match="records no data_id"):
        Trainer(small_net(), progress=False, checkpoint_dir=tmp_path / "b").fit(
            loader, epochs=2, resume=True, data_id="v2"
        )
    with pytest.raises(TypeError, match="data_id must be a str, a dict"):
        Trainer(small_net(), progress=False).fit(loader, epochs=1, data_id=[1, 2])


def one_cycle(total_steps):
    def build(optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=total_steps)

    return build


def test_a_resume_with_more_epochs_follows_the_schedule_built_for_them(tmp_path):
    x, y = blobs(100)  # 5 steps an epoch

    def run(epochs, resume=False):
        trainer = Trainer(
            small_net(), progress=False, checkpoint_dir=tmp_path, seed=0,
            scheduler=one_cycle(epochs * 5), scheduler_interval="step",
        )  # fmt: skip
        trainer.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=epochs, resume=resume)
        return trainer

    run(2)
    with pytest.warns(
        UserWarning,
        match=r"planned for 2 epochs: this Trainer's OneCycleLR, with total_steps=20 "
        r"\(checkpoint: 10\), goes on from the checkpoint's step 10",
    ):
        resumed = run(4, resume=True)
    assert resumed.epoch == 4 and resumed.scheduler.last_epoch == 20
    # the learning rates of epochs 3 and 4 are those of a 20-step one-cycle schedule
    reference = torch.optim.Adam([torch.zeros(1)], lr=1e-3)
    schedule = one_cycle(20)(reference)
    lrs = []
    for _ in range(20):
        reference.step()
        schedule.step()
        lrs.append(reference.param_groups[0]["lr"])
    assert resumed.history["lr"][2:] == pytest.approx([lrs[14], lrs[19]])


def test_a_one_cycle_schedule_too_short_for_the_epochs_is_refused_before_training(tmp_path):
    x, y = blobs(100)
    trainer = Trainer(
        small_net(), progress=False, checkpoint_dir=tmp_path,
        scheduler=one_cycle(10), scheduler_interval="step",
    )  # fmt: skip
    with pytest.raises(
        ValueError,
        match=r"OneCycleLR\(total_steps=10\) is too short for fit\(epochs=3\), which takes 15 "
        r"scheduler steps \(0 taken, 5 per epoch from epoch 1\): build it for the epochs",
    ):
        trainer.fit(TensorLoader(x, y, batch_size=20), epochs=3)
    assert trainer.epoch == 0
    trainer.fit(TensorLoader(x, y, batch_size=20), epochs=2)
    again = Trainer(
        small_net(), progress=False, checkpoint_dir=tmp_path,
        scheduler=one_cycle(10), scheduler_interval="step",
    )  # fmt: skip
    with (
        pytest.warns(UserWarning, match="with this Trainer's OneCycleLR settings"),
        pytest.raises(ValueError, match=r"takes 20 scheduler steps \(10 taken"),
    ):
        again.fit(TensorLoader(x, y, batch_size=20), epochs=4, resume=True)


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


# --------------------------------------------------------------------------- bad checkpoints
def test_missing_and_corrupt_checkpoints(tmp_path):
    trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
    x, y = blobs(20)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        trainer.fit(TensorLoader(x, y), epochs=1, resume=True)
    (tmp_path / "last.pt").write_bytes(b"\x80\x02 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        trainer.fit(TensorLoader(x, y), epochs=1, resume=True)


def test_a_resume_into_another_model_is_one_line_and_changes_nothing(tmp_path):
    first_run(tmp_path)  # small_net: 0 = Linear(8, 16), 3 = Linear(16, 2)
    wider = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.0), nn.Linear(32, 2))
    trainer = Trainer(wider, progress=False, checkpoint_dir=tmp_path)
    before = params(wider)
    with pytest.raises(ValueError) as error:
        trainer.fit(TensorLoader(*blobs(100), batch_size=20), epochs=3, resume=True)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"resume: {tmp_path / 'last.pt'} holds the weights of another model")
    assert "0.weight is [16, 8] in the checkpoint, [32, 8] here" in message
    assert "build the model as in the checkpointed run" in message
    assert trainer.epoch == 0 and torch.equal(params(wider), before)

    renamed = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    with pytest.raises(ValueError, match=r"2.weight, 2.bias missing from the checkpoint; "
                       r"3.weight, 3.bias not in this model"):  # fmt: skip
        Trainer(renamed, progress=False).resume(tmp_path / "last.pt")


def test_a_truncated_last_pt_is_one_line(tmp_path):
    first_run(tmp_path)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as error:
        Trainer(small_net(), progress=False).resume(tmp_path / "last.pt")
    assert str(error.value).startswith(
        f"could not read checkpoint {tmp_path / 'last.pt'}: the file"
    )
    assert "\n" not in str(error.value)


def test_best_pt_is_not_resumable(tmp_path):
    first_run(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"best.pt is not a resumable gconv checkpoint \(expected format gconv-checkpoint/1",
    ):
        Trainer(small_net(), progress=False).resume(tmp_path / "best.pt")


# --------------------------------------------------------------------------- the written contract
def test_resume_warnings_point_at_the_callers_line(tmp_path):
    first_run(tmp_path, lr=1e-3)
    x, y = blobs(100)
    trainer = Trainer(small_net(), lr=1e-2, grad_clip=1.0, progress=False, checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning) as caught:
        trainer.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=3, resume=True)
    # one from restore_training_state (the lr), one from reconcile (grad_clip)
    resume_warnings = [w for w in caught if str(w.message).startswith("resume:")]
    assert len(resume_warnings) == 2
    assert {w.filename for w in resume_warnings} == {__file__}


def test_every_checkpoint_key_is_documented(tmp_path):
    first_run(tmp_path)
    docs = (Path(__file__).parents[2] / "docs" / "trainer.md").read_text()
    checkpoints = docs[docs.index("## Checkpoints") :]
    last = load_checkpoint(tmp_path / "last.pt")
    assert set(last) == {
        "format", "model", "optimizer", "scheduler", "scaler", "epoch", "step", "history",
        "best_value", "best_epoch", "bad_epochs", "rng", "loader", "config",
    }  # fmt: skip
    for key in [*last, *last["config"]]:
        assert f"`{key}`" in checkpoints, key
    assert last["format"] in checkpoints
    for key in load_checkpoint(tmp_path / "best.pt"):
        assert f"`{key}`" in checkpoints, key
