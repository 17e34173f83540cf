"""gconv/train/callbacks.py: the per-step hook, called after every optimizer step with the Trainer
and a StepInfo; a Trainer with a callback replays a hand-written loop step for step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from trainer_data import blobs, params, small_net

from gconv.data import TensorLoader
from gconv.train import StepInfo, Trainer, seed_everything


def hand_written(x, y, epochs: int) -> tuple[list[float], list[torch.Tensor]]:
    """The loop examples used to write: per-step losses and the weights after each step."""
    seed_everything(0)
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = TensorLoader(x, y, batch_size=16, seed=0)
    losses, weights = [], []
    for epoch in range(epochs):
        loader.set_epoch(epoch)  # a new permutation every epoch, as the Trainer asks for
        for inputs, labels in loader:
            loss = F.cross_entropy(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            weights.append(params(model).clone())
    return losses, weights


def test_a_callback_sees_every_step_after_the_optimizer_step():
    x, y = blobs(100)
    expected_losses, expected_weights = hand_written(x, y, epochs=2)
    seed_everything(0)
    model = small_net()
    infos: list[StepInfo] = []
    weights: list[torch.Tensor] = []

    def record(trainer: Trainer, info: StepInfo) -> None:
        infos.append(info)
        weights.append(params(trainer.model).clone())

    trainer = Trainer(
        model,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        metrics=(),
        progress=False,
        callbacks=[record],
    )
    trainer.fit(TensorLoader(x, y, batch_size=16, seed=0), epochs=2)

    assert len(infos) == len(expected_losses) == 14  # 7 batches per epoch
    assert [i.epoch for i in infos] == [1] * 7 + [2] * 7
    assert [i.batch for i in infos] == list(range(7)) * 2
    assert [i.step for i in infos] == list(range(1, 15))
    # the same arithmetic as the hand-written loop, step for step, bit for bit
    assert torch.stack([i.loss for i in infos]).tolist() == expected_losses
    for got, want in zip(weights, expected_weights, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    first = infos[0]
    assert first.loss.dim() == 0 and not first.loss.requires_grad
    assert first.output.shape == (16, 2) and first.output.dtype == torch.float32
    assert not first.output.requires_grad
    torch.testing.assert_close(first.target, next(iter(TensorLoader(x, y, 16, seed=0)))[1])


class Counter:
    """A Lightning-style callback object."""

    def __init__(self, log: list) -> None:
        self.log = log

    def on_train_batch_end(self, trainer: Trainer, info: StepInfo) -> None:
        self.log.append(("object", info.step))


def test_callbacks_run_in_order_objects_included_and_go_on_after_a_resume(tmp_path):
    x, y = blobs(60)
    log: list = []
    trainer = Trainer(
        small_net(),
        progress=False,
        checkpoint_dir=tmp_path,
        callbacks=[lambda trainer, info: log.append(("function", info.step)), Counter(log)],
    )
    trainer.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=1)
    assert log == [(kind, step) for step in (1, 2, 3) for kind in ("function", "object")]

    seen: list[StepInfo] = []
    resumed = Trainer(
        small_net(),
        progress=False,
        checkpoint_dir=tmp_path,
        callbacks=lambda trainer, info: seen.append(info),  # one callable, not a list
    )
    resumed.fit(TensorLoader(x, y, batch_size=20, seed=0), epochs=2, resume=True)
    assert [(i.epoch, i.batch, i.step) for i in seen] == [(2, 0, 4), (2, 1, 5), (2, 2, 6)]


def test_a_callback_that_is_not_callable_is_refused():
    with pytest.raises(TypeError, match=r"callbacks to be callables fn\(trainer, info\).*got int"):
        Trainer(small_net(), callbacks=[3])
