"""Atomic checkpoint writes, weights_only loads, RNG state round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from gconv.train import CheckpointError, load_checkpoint, save_checkpoint
from gconv.train.checkpoint import rng_state, set_rng_state


def test_round_trip(tmp_path):
    state = {
        "model": {"w": torch.arange(6.0).reshape(2, 3)},
        "epoch": 3,
        "history": [{"loss": 0.5}],
    }
    save_checkpoint(state, tmp_path / "sub" / "ck.pt")
    loaded = load_checkpoint(tmp_path / "sub" / "ck.pt")
    torch.testing.assert_close(loaded["model"]["w"], state["model"]["w"])
    assert loaded["epoch"] == 3 and loaded["history"] == [{"loss": 0.5}]


def test_crash_during_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint({"epoch": 1}, path)

    def torn_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"], "temporary file left behind"


class Payload:
    """Any pickled object that is not a tensor or plain container."""


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    torch.save({"obj": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_truncated_file_is_reported(tmp_path):
    save_checkpoint({"w": torch.randn(100)}, tmp_path / "ck.pt")
    data = (tmp_path / "ck.pt").read_bytes()
    (tmp_path / "ck.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(tmp_path / "ck.pt")


def test_rng_state_survives_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


# --------------------------------------------------------------------------- checkpoint_dir
def test_an_unwritable_checkpoint_dir_is_refused_by_the_constructor(tmp_path, monkeypatch):
    from torch import nn

    from gconv.train import Trainer
    from gconv.train import checkpoint as checkpoint_module

    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ValueError, match=r"checkpoint_dir .*afile' is a file, not a directory"):
        Trainer(nn.Linear(2, 2), checkpoint_dir=afile)
    with pytest.raises(ValueError, match=r"checkpoint_dir .*afile/run' cannot be created"):
        Trainer(nn.Linear(2, 2), checkpoint_dir=afile / "run")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint_module.tempfile, "mkstemp", denied)  # root ignores chmod
    with pytest.raises(
        ValueError, match=r"checkpoint_dir .*/ro' is not writable \(Permission denied\)"
    ):
        Trainer(nn.Linear(2, 2), checkpoint_dir=tmp_path / "ro")
    monkeypatch.undo()
    Trainer(nn.Linear(2, 2), checkpoint_dir=tmp_path / "new" / "run")  # created
    assert (tmp_path / "new" / "run").is_dir() and not any((tmp_path / "new" / "run").iterdir())


def test_a_read_only_checkpoint_dir_is_refused(tmp_path):
    from torch import nn

    from gconv.train import Trainer

    (tmp_path / "ro").mkdir(mode=0o555)
    try:
        (tmp_path / "ro" / "probe").touch()
        pytest.skip("this user writes into read-only directories (root)")
    except PermissionError:
        pass
    with pytest.raises(ValueError, match="is not writable"):
        Trainer(nn.Linear(2, 2), checkpoint_dir=tmp_path / "ro")
