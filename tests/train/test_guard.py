"""gconv/train/guard.py: labels and losses checked on the device without a host sync per step,
raised at the next check with the epoch and the batch, after rolling the weights back to the last
ones checked finite."""

from __future__ import annotations

import math

import pytest
import torch
from trainer_data import blobs, params, small_net

from gconv.data import TensorLoader
from gconv.train import Trainer, seed_everything
from gconv.train.guard import Guard, Tally


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


# --------------------------------------------------------------------------- non-finite loss
def test_nan_loss_is_an_error(tmp_path):
    x, y = blobs(40)
    x[3, 0] = math.nan
    trainer = Trainer(small_net(), progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(FloatingPointError, match="loss became nan"):
        trainer.fit(TensorLoader(x, y, batch_size=10), epochs=1)
    assert not (tmp_path / "last.pt").exists()


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


# --------------------------------------------------------------------------- Tally and Guard
def test_tally_folds_on_the_device_and_finds_the_first_bad_batch():
    tally = Tally(torch.device("cpu"))
    for loss, count, labels in [(1.0, 4, (0, 1)), (3.0, 2, (0, 2)), (math.nan, 2, (-1, 1))]:
        tally.add(torch.tensor(loss), count, tuple(torch.tensor(v) for v in labels))
    bad_loss, bad_label = tally.fold(classes=2)
    assert bad_loss[0] == 2 and math.isnan(bad_loss[1])
    assert bad_label == (1, 0, 2)  # the first batch outside [0, 2)
    assert tally.folded == 3 and math.isnan(tally.mean)  # NaN is in the sum
    tally = Tally(torch.device("cpu"))
    tally.add(torch.tensor(1.0), torch.tensor(4))  # a count on the device (masked losses)
    tally.add(torch.tensor(4.0), 1)
    assert tally.fold() == (None, None)
    assert tally.mean == pytest.approx((1.0 * 4 + 4.0) / 5)
    tally.add(torch.tensor(math.inf), 1)
    assert tally.fold() == ((2, math.inf), None)  # batches are counted over the folds


def test_guard_rolls_back_to_the_weights_it_kept_and_says_so():
    model = small_net()
    guard = Guard(model)
    tally = Tally(torch.device("cpu"))
    tally.add(torch.tensor(math.nan), 1)
    with pytest.raises(FloatingPointError, match=r"weights were not restored; here\.$"):
        guard.check(tally, None, epoch=0, saved="; here")
    guard.keep("after batch 3 of epoch 1")
    kept = params(model).clone()
    with torch.no_grad():
        model[0].weight.fill_(math.nan)
    tally.add(torch.tensor(0.5), 1, (torch.tensor(0), torch.tensor(1)))
    tally.add(torch.tensor(5.0), 1, (torch.tensor(0), torch.tensor(5)))
    with pytest.raises(ValueError, match=r"epoch 2, batch 2 has labels from 0 to 5\. The model's"):
        guard.check(tally, 2, epoch=1)
    torch.testing.assert_close(params(model), kept, rtol=0, atol=0)
    assert guard.roll_back().startswith("The model's weights were restored to those after batch 3")
    guard.release()
    assert guard.state is None
