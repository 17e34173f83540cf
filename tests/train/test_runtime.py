"""gconv/train/runtime.py: seeding (what Trainer(seed=) covers and what it cannot) and mixed
precision."""

from __future__ import annotations

import pytest
import torch
from trainer_data import blobs, params, small_net

from gconv.data import TensorLoader
from gconv.train import Trainer, seed_everything
from gconv.train.runtime import resolve_amp, resolve_device


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


# --------------------------------------------------------------------------- mixed precision
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


def test_resolve_amp_and_resolve_device():
    cpu = torch.device("cpu")
    for off in (None, False, "none", "off", "auto", True):  # "auto" is off on the CPU
        assert resolve_amp(off, cpu) is None
    assert resolve_amp("bf16", cpu) is torch.bfloat16
    assert resolve_amp("fp16", cpu) is torch.float16
    with pytest.raises(ValueError, match=r"amp must be one of 'auto', 'bf16', 'fp16' or None"):
        resolve_amp("fp8", cpu)
    assert resolve_device("cpu") == cpu
    assert isinstance(resolve_device(), torch.device)
