"""One training loop for image tensors and PyG graph batches: :class:`Trainer`.

A batch is either a tuple ``(x, y)`` of tensors (the model is called as ``model(x)``) or a PyG
``Data`` / ``Batch`` (called as ``model(batch)``, target ``batch.y``); everything else — device
moves, mixed precision, metrics, checkpoints, early stopping, resume, ``torchrun`` — is shared.

Example::

    trainer = Trainer(CNN(), loss="cross_entropy", lr=1e-3, metrics=("accuracy",))
    history = trainer.fit(TensorLoader(x, y, batch_size=100), val=val_loader, epochs=10)
    trainer.evaluate(test_loader)  # {"loss": ..., "accuracy": ...}

This file holds the loop; its parts live next door: the losses and their target checks
(``losses.py``), batching and loader state (``batches.py``), the on-device tally and the roll-back
to finite weights (``guard.py``), checkpoints and resume (``resume.py``), the per-step hook
(``callbacks.py``), device, precision and seeds (``runtime.py``). The contract is written once, in
``docs/trainer.md``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data.data import BaseData
from tqdm.autonotebook import tqdm  # not tqdm.auto: see _train_epoch

from gconv._utils import (
    TRIM_EVERY,
    evaluating,
    move_to,
    preserve_mode,
    release_free_memory,
)
from gconv.train import distributed
from gconv.train._utils import shape, warn
from gconv.train.batches import Rows, as_batches, check_not_empty, mask_name, phase_rows
from gconv.train.callbacks import Callback, StepInfo, as_callbacks
from gconv.train.checkpoint import check_writable_dir, load_checkpoint, save_checkpoint
from gconv.train.fingerprint import data_record
from gconv.train.guard import Guard, Tally
from gconv.train.history import History
from gconv.train.losses import (
    LOSSES,
    check_target,
    default_metrics,
    is_class_labels,
    label_count,
    label_error,
    masked_bce,
    masked_mse,
)
from gconv.train.memory import retain_freed_memory
from gconv.train.metrics import get_metric, higher_is_better
from gconv.train.resume import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT  # its old home
from gconv.train.resume import (
    Resumed,
    best_checkpoint,
    last_checkpoint,
    reconcile,
    restore,
)
from gconv.train.runtime import resolve_amp, resolve_device, seed_everything

__all__ = ["Trainer", "seed_everything", "resolve_device", "LOSSES", "masked_mse", "masked_bce"]

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def _shape_of(inputs: Any) -> str:
    if isinstance(inputs, Tensor):
        return f"input of shape {tuple(inputs.shape)}"
    if isinstance(inputs, BaseData):
        x = getattr(inputs, "x", None)
        return f"graph batch with x of shape {tuple(x.shape) if x is not None else None}"
    return f"input of type {type(inputs).__name__}"


def _contiguous(inputs: Any) -> Any:
    return inputs.contiguous() if isinstance(inputs, Tensor) else inputs


def _compact(step: int, *kept: list[Tensor]) -> None:
    """Every :data:`TRIM_EVERY` batches of a pass: the last ``TRIM_EVERY`` per-batch tensors of
    each list in ``kept`` (one appended a batch, or none) joined into one block, then glibc's
    free pages handed back. Thousands of small blocks kept to a pass's end, left among each
    batch's freed memory, fragmented the heap as the pass went on (the main process of
    ``gconv train`` grew 715 -> 941 MB over two minutes of a 1M-molecule epoch; 690-720 MB
    joined)."""
    if (step + 1) % TRIM_EVERY:
        return
    for blocks in kept:
        if blocks:
            blocks[-TRIM_EVERY:] = [torch.cat(blocks[-TRIM_EVERY:])]
    release_free_memory()


class Trainer:
    r"""Fit, evaluate and predict with any ``nn.Module`` on tensor or graph batches.

    One loop for ``(x, y)`` tensor batches and PyG batches. Each batch's loss is weighted by its
    number of labels, so an epoch's loss is the mean over every label; targets are checked
    against the loss on every batch, and losses and class labels on the device every
    ``log_every`` steps (a bad one rolls the weights back and names the epoch and the batch);
    ``last.pt`` lets an interrupted run resume exactly. The contract — data, epoch loss and
    metrics, checks, train/eval modes, resume, checkpoints, seeding, AMP, ``torchrun``,
    callbacks — is written once, in ``docs/trainer.md``.

    Args:
        model (nn.Module): ``model(x)`` for tensor batches, ``model(batch)`` for PyG batches.
        loss (str or callable): ``"cross_entropy"``, ``"mse"``, ``"masked_mse"`` (ignores NaN
            targets), ``"l1"``, ``"bce"`` (logits, ignores NaN targets), or
            ``fn(output, target) -> Tensor``, taken to be a mean over the non-NaN target elements.
            (default: :obj:`"cross_entropy"`)
        optimizer (str, Optimizer or callable): ``"adam"``, ``"adamw"``, ``"sgd"`` (momentum 0.9),
            an optimizer built on ``model.parameters()``, or ``fn(params) -> Optimizer``.
            (default: :obj:`"adam"`)
        lr (float): learning rate for a named optimizer. (default: :obj:`1e-3`)
        weight_decay (float): weight decay for a named optimizer. (default: :obj:`0.0`)
        metrics (sequence of str, optional): names from :data:`gconv.train.metrics.METRICS`,
            computed over each epoch. (default: :obj:`None`: ``("accuracy",)`` for
            cross-entropy, ``("rmse", "mae", "r2")`` for the regression losses)
        device (str or torch.device): ``"auto"`` picks CUDA, MPS, then CPU. Under ``torchrun`` each
            process takes its ``LOCAL_RANK``'s GPU. (default: :obj:`"auto"`)
        amp (str, optional): mixed precision. ``"auto"``: bf16 (or fp16 with a ``GradScaler``) on
            CUDA, off elsewhere; ``"bf16"`` / ``"fp16"`` force it (bf16 works on CPU);
            :obj:`None` turns it off. (default: :obj:`"auto"`)
        compile (bool): run the model through ``torch.compile``. (default: :obj:`False`)
        channels_last (bool or str): keep the model's 4-D weights and the 4-D input batches in
            channels-last (NHWC) memory format: faster convolutions, pooling and batch norm on
            CPUs (oneDNN) and on GPUs with tensor cores. The same computation in another memory
            layout, equal up to rounding (a model that calls ``.view`` on a convolution's output
            needs ``.reshape``). ``"auto"`` turns it on for a model with ``nn.Conv2d`` layers on
            the CPU, and falls back to the default layout, with a warning, if the model's first
            forward fails in NHWC. (default: :obj:`"auto"`)
        retain_memory (bool, optional): keep freed memory in the process for reuse
            (:func:`gconv.train.memory.retain_freed_memory`, glibc only, process-wide), so that
            a CPU step does not page-fault its activations in anew. (default: :obj:`None`: on when
            the device is the CPU)
        scheduler (LRScheduler or callable, optional): a scheduler, or
            ``fn(optimizer) -> scheduler``; ``ReduceLROnPlateau`` is stepped with the monitored
            value. (default: :obj:`None`)
        scheduler_interval (str): step the scheduler every ``"epoch"`` or every ``"step"``.
            (default: :obj:`"epoch"`)
        grad_clip (float, optional): clip the global gradient norm to this value.
            (default: :obj:`None`)
        checkpoint_dir (str or Path, optional): write ``best.pt`` (best monitored value) and
            ``last.pt`` (everything needed to resume) there, atomically; created and checked for
            writing here, so that a bad path fails now, not after the first epoch.
            (default: :obj:`None`: the best weights are kept in memory for :meth:`load_best`)
        monitor (str, optional): value deciding the best epoch and early stopping, e.g.
            ``"val_loss"``, ``"val_accuracy"``; a ``"val_*"`` value falls back to ``"train_*"``
            (with a warning) when there is no validation data. (default: :obj:`None`:
            ``"val_loss"`` with validation data, else ``"train_loss"``)
        mode (str): ``"min"``, ``"max"`` or ``"auto"`` (from the metric's name).
            (default: :obj:`"auto"`)
        patience (int, optional): stop after this many epochs without improvement.
            (default: :obj:`None`)
        seed (int, optional): when :meth:`fit` starts a new run (epoch 0, not resuming), seed
            Python's, NumPy's and torch's global generators (CPU and CUDA) and give a train
            ``TensorLoader`` built without a ``seed`` this one. It does not cover the
            model's initial weights — the model is built before the Trainer: call
            :func:`seed_everything` before building it. (default: :obj:`None`)
        progress (bool): show a tqdm progress bar. (default: :obj:`True`)
        log_every (int): every this many steps, check the last steps' losses and labels (one
            host sync) and refresh the bar. (default: :obj:`20`)
        save_every (int): write ``last.pt`` every this many epochs and after the last one (also
            when early stopping ends the run); an interrupted run resumes from the latest write.
            Above 1 it saves the checkpoint's cost on short epochs. (default: :obj:`1`)
        callbacks (callable or sequence, optional): called after every optimizer step as
            ``fn(trainer, info)`` with a :class:`~gconv.train.callbacks.StepInfo` (epoch, batch,
            step, loss, output, target), or objects with an ``on_train_batch_end(trainer, info)``
            method. (default: :obj:`None`)

    Attributes after :meth:`fit`: ``history``, ``epoch`` (epochs done), ``step`` (optimizer
    steps), ``best_value``, ``best_epoch``, ``bad_epochs`` (epochs since the best: the patience
    counter).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: str | Callable[[Tensor, Tensor], Tensor] = "cross_entropy",
        optimizer: str | torch.optim.Optimizer | Callable[..., torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        metrics: Sequence[str] | None = None,
        device: str | torch.device = "auto",
        amp: str | None = "auto",
        compile: bool = False,
        channels_last: bool | str = "auto",
        retain_memory: bool | None = None,
        scheduler: Any = None,
        scheduler_interval: str = "epoch",
        grad_clip: float | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        monitor: str | None = None,
        mode: str = "auto",
        patience: int | None = None,
        seed: int | None = None,
        progress: bool = True,
        log_every: int = 20,
        save_every: int = 1,
        callbacks: Callback | Sequence[Callback] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Trainer expected an nn.Module, got {type(model).__name__}")
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(
                    f"unknown loss {loss!r}; expected one of {sorted(LOSSES)} or a callable"
                )
            self.loss_name, self.loss_fn = loss, LOSSES[loss]
        else:
            self.loss_name, self.loss_fn = getattr(loss, "__name__", "custom"), loss
        if metrics is None:
            metrics = default_metrics(self.loss_name)
        self.metrics = {name: get_metric(name) for name in metrics}
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(
                f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}"
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")

        self.dist, self.device = distributed.setup(resolve_device(device))
        self.model = model.to(self.device)  # the plain module: state dicts, eval, predict
        if channels_last not in (True, False, "auto"):
            raise ValueError(f"channels_last must be True, False or 'auto', got {channels_last!r}")
        self.channels_last = (
            self.device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules())
            if channels_last == "auto"
            else channels_last
        )
        # "auto" may still fall back to NCHW on the first forward (see _forward).
        self._layout_unproven = channels_last == "auto" and self.channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if retain_memory or (retain_memory is None and self.device.type == "cpu"):
            retain_freed_memory()
        self.amp_dtype = resolve_amp(amp, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16 and self.device.type == "cuda"
        )
        self.optimizer = self._build_optimizer(optimizer, lr, weight_decay)
        # A scheduler instance has .step(); anything else callable builds one on our optimizer.
        if scheduler is not None and not hasattr(scheduler, "step"):
            scheduler = scheduler(self.optimizer)
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.grad_clip = grad_clip
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if self.checkpoint_dir is not None and self.dist.is_main:
            check_writable_dir(self.checkpoint_dir)  # now, not after the first epoch
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.seed = seed
        self.progress = progress and self.dist.is_main
        self.log_every = max(1, log_every)
        if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
            raise ValueError(f"Trainer expected save_every to be an int >= 1, got {save_every!r}")
        self.save_every = save_every
        self.callbacks = as_callbacks(callbacks)  # the functions called after each step
        # Class labels are range-checked on the device (and clamped for the loss kernel, so a bad
        # label cannot trip a device-side assert) except on the CPU, where torch raises at once.
        self._defer_label_check = self.device.type != "cpu"

        self._compile = compile
        self._wrap_for_training()

        self.history = History()
        self.epoch = 0
        self.step = 0  # optimizer steps taken, over all epochs
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0  # epochs since the best one: the patience counter
        self._best_state: dict[str, Tensor] | None = None
        self._epochs_planned: int | None = None
        self._monitor_used: str | None = None
        self._resumed: Resumed | None = None  # checkpoint parts fit() still has to apply
        self._data_record: str | dict[str, Any] | None = None  # what the run trains on
        self._data_given = False  # whether the caller gave it (data_id=)
        self._guard = Guard(self.model)  # the weights last checked finite

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        train: Iterable,
        val: Iterable | None = None,
        epochs: int = 10,
        resume: bool | str | os.PathLike = False,
        *,
        batch_size: int | None = None,
        data_id: str | dict[str, Any] | bool | None = None,
    ) -> History:
        """Train until ``epochs`` epochs are done in total; returns the :class:`History`.

        Args:
            train: iterable of training batches (a ``TensorLoader``, a PyG or torch ``DataLoader``),
                or a ``Dataset`` together with ``batch_size``.
            val: iterable of validation batches (or a ``Dataset``), evaluated after every epoch.
                (default: :obj:`None`)
            epochs (int): total number of epochs, counting those already done (by an earlier
                call or a resumed checkpoint).
            resume (bool or path): continue from ``checkpoint_dir/last.pt`` (``True``) or from the
                given checkpoint; see *Resume* in ``docs/trainer.md`` for what comes from the
                checkpoint and what from this call. (default: :obj:`False`)
            batch_size (int, optional): batch a ``Dataset`` given as ``train`` (shuffled) or
                ``val`` in a ``DataLoader`` (PyG's for graphs). (default: :obj:`None`)
            data_id (str, dict or bool, optional): what this run trains on — a string or a dict
                of plain values (a hash of the data, the split, its seed, ...), recorded in
                ``last.pt``; a resume whose ``data_id`` differs is refused with a
                :class:`~gconv.train.resume.ResumeError` naming what differs. ``False`` records
                and checks nothing. (default: :obj:`None`: a ``TensorLoader``'s tensors are
                fingerprinted, other loaders record nothing)
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        pin = self.device.type == "cuda"
        batched = as_batches(train, batch_size, True, "train", pin)
        batched_val = as_batches(val, batch_size, False, "val", pin) if val is not None else None
        if batch_size is not None and batched is train and batched_val is val:
            raise ValueError(
                "batch_size= batches a Dataset, but train and val already yield batches; set the "
                "batch size on their loaders instead"
            )
        check_not_empty(batched, "train")
        if batched_val is not None:
            check_not_empty(batched_val, "val")
            if isinstance(batched_val, list | tuple):  # cheap to look at before training
                for i, batch in enumerate(batched_val):
                    phase_rows(batch, "val_mask", f"val batch {i}", named=False)
        with preserve_mode(self._train_module):
            return self._fit(batched, batched_val, epochs, resume, data_id)

    def evaluate(
        self, data: Iterable, *, batch_size: int | None = None, mask: str | None = None
    ) -> dict[str, float]:
        """Loss (the mean over every label, see ``docs/trainer.md``) and the metrics over
        ``data``, with the model in eval mode; a ``Dataset`` needs ``batch_size``.

        ``mask`` says which nodes of node-level PyG data to score: ``"train"``, ``"val"``,
        ``"test"`` (PyG's ``train_mask`` / ``val_mask`` / ``test_mask``), another boolean node
        attribute's name, or ``"all"``. Without it, data that carries those masks is refused.
        """
        data = as_batches(data, batch_size, False, "data", self.device.type == "cuda")
        name = mask_name(mask)
        return self._evaluate(data, name, named=name is not None)

    @torch.no_grad()
    def predict(
        self, data: Iterable, *, batch_size: int | None = None, mask: str | None = None
    ) -> Tensor:
        """Model outputs over ``data`` (eval mode), concatenated in order, as float32 on the CPU:
        every node of node-level data, or those of ``mask`` (as in :meth:`evaluate`)."""
        data = as_batches(data, batch_size, False, "data", self.device.type == "cuda")
        name = mask_name(mask)
        output, _, _ = self._run_eval(data, False, name or "all", named=name is not None)
        if output is None:
            raise ValueError("predict() got no batches")
        return output

    def load_best(self) -> nn.Module:
        """Put the best epoch's weights into the model and return it."""
        if self.checkpoint_dir is not None and (self.checkpoint_dir / "best.pt").is_file():
            state = load_checkpoint(self.checkpoint_dir / "best.pt", map_location=self.device)
            self.model.load_state_dict(state["model"])
        elif self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        else:
            raise RuntimeError("no best weights yet: call fit() first")
        return self.model

    def resume(self, path: str | os.PathLike) -> None:
        """Restore the training state from a ``last.pt`` checkpoint.

        See *Resume* in ``docs/trainer.md``: the checkpoint's optimizer (learning rate included),
        scheduler, counters and random states replace this Trainer's, with a warning for each
        setting of this Trainer that is not used; the train loader's state is applied by the next
        :meth:`fit`.
        """
        self._resumed = restore(self, path)

    # ------------------------------------------------------------------ the loop
    def _fit(
        self, train: Iterable, val: Iterable | None, epochs: int, resume: Any, data_id: Any
    ) -> History:
        # what this run trains on: needed where a checkpoint is written or resumed
        automatic = bool(resume) or self.checkpoint_dir is not None or self._resumed is not None
        self._data_record = data_record(data_id, train, automatic)
        self._data_given = data_id is not None and data_id is not False
        if resume:
            self.resume(self._last_path() if resume is True else resume)
        elif self.epoch == 0 and self.seed is not None:
            self._seed_run(train)
        monitor = self._resolve_monitor(val is not None)
        if self._resumed is not None:
            resumed = self._resumed
            if self._layout_unproven and resumed.config.get("channels_last") is False:
                self._use_default_layout()  # "auto" fell back in the run being resumed: so does this
            reconcile(self, resumed, train, epochs, monitor)
            self._resumed = None  # only once reconciled: a refused fit() can be called again
        if self._nothing_to_do(epochs, monitor):
            return self.history
        higher = higher_is_better(monitor) if self.mode == "auto" else self.mode == "max"
        self._epochs_planned, self._monitor_used = epochs, monitor
        loader = train  # the object whose state last.pt saves (a torchrun copy shares it)
        if self.dist.enabled:
            train = distributed.shard_loader(
                train, self.dist, self.seed or 0, pin_memory=self.device.type == "cuda"
            )
        self._check_schedule_length(train, epochs)

        keep_off = self._switched_off()
        try:
            for epoch in range(self.epoch, epochs):
                record = self._run_epoch(train, val, epoch, epochs, keep_off, monitor)
                improved = self._track_best(record[monitor], higher, monitor)
                stopping = self.patience is not None and self.bad_epochs >= self.patience
                if stopping or self.epoch == epochs or self.epoch % self.save_every == 0:
                    self._save_last(loader)
                if self.progress:
                    self._report(record, epochs, improved, stopping, monitor)
                if stopping:
                    break
        finally:
            self._guard.release()
        return self.history

    def _check_schedule_length(self, train: Iterable, epochs: int) -> None:
        """A OneCycleLR too short for ``epochs`` fails at its last step + 1: refuse it now."""
        scheduler = self.scheduler
        if not isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
            return
        if self.scheduler_interval == "step" and not hasattr(train, "__len__"):
            return
        per_epoch = len(train) if self.scheduler_interval == "step" else 1
        needed = scheduler.last_epoch + (epochs - self.epoch) * per_epoch
        if needed > scheduler.total_steps:
            raise ValueError(
                f"OneCycleLR(total_steps={scheduler.total_steps}) is too short for "
                f"fit(epochs={epochs}), which takes {needed} scheduler steps "
                f"({scheduler.last_epoch} taken, {per_epoch} per epoch from epoch "
                f"{self.epoch + 1}): build it for the epochs trained, e.g. scheduler=lambda opt: "
                "OneCycleLR(opt, max_lr=..., total_steps=epochs * len(train_loader))"
            )

    def _run_epoch(
        self,
        train: Iterable,
        val: Iterable | None,
        epoch: int,
        epochs: int,
        keep_off: list[nn.Module],
        monitor: str,
    ) -> dict[str, float]:
        """One epoch: train, validate, record it in the history, step an epoch-wise scheduler."""
        for obj in (train, getattr(train, "sampler", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)
        start = time.perf_counter()
        record: dict[str, float] = {"epoch": epoch + 1}
        self._enter_training(keep_off)
        record.update(self._train_epoch(train, epoch, epochs))
        if val is not None:
            scores = self._evaluate(val, "val_mask", named=False)
            record.update({f"val_{k}": v for k, v in scores.items()})
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        record["seconds"] = time.perf_counter() - start
        self.history.append(record)
        self.epoch = epoch + 1
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(record[monitor])
            else:
                self.scheduler.step()
        return record

    def _track_best(self, value: float, higher: bool, monitor: str) -> bool:
        """Whether ``value`` improves on the best; saves the best weights, or counts a bad epoch."""
        improved = self.best_value is None or (
            value > self.best_value if higher else value < self.best_value
        )
        if improved:
            self.best_value, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            self._save_best(monitor)
        else:
            self.bad_epochs += 1
        return improved

    def _report(
        self, record: dict[str, float], epochs: int, improved: bool, stopping: bool, monitor: str
    ) -> None:
        shown = {k: v for k, v in record.items() if k not in ("epoch", "lr")}
        tqdm.write(
            f"epoch {self.epoch}/{epochs}  "
            + "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
            + ("  *" if improved else "")
        )
        if stopping:
            tqdm.write(
                f"early stopping: no {monitor} improvement in {self.patience} epochs "
                f"(best {self.best_value:.4g} at epoch {self.best_epoch})"
            )

    def _nothing_to_do(self, epochs: int, monitor: str) -> bool:
        """Warns and returns True when ``epochs`` are done already or the run stopped early."""
        if self.epoch >= epochs:
            warn(
                f"fit(epochs={epochs}) has nothing to do: {self.epoch} epochs are done already "
                f"(epochs counts them all, including those of a resumed checkpoint); pass "
                f"epochs > {self.epoch} to train on"
            )
            return True
        if self.patience is not None and self.bad_epochs >= self.patience:
            warn(
                f"fit() has nothing to do: this run stopped early after epoch {self.epoch} (no "
                f"{monitor} improvement in {self.bad_epochs} epochs, patience {self.patience}); "
                "raise patience (or set it to None) to train on"
            )
            return True
        return False

    def _train_epoch(self, train: Iterable, epoch: int, epochs: int) -> dict[str, float]:
        tally = Tally(self.device)
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        self._guard.keep(f"at the start of epoch {epoch + 1}")
        total = len(train) if hasattr(train, "__len__") else None
        # tqdm.auto's asyncio class would call iter(train) in __init__ as well as in __iter__: a
        # DataLoader with num_workers > 0 would start its workers twice an epoch and draw its
        # shuffle seed twice (so its batches differed from num_workers=0's)
        bar = tqdm(
            train,
            total=total,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        classes = None
        step = -1
        for step, batch in enumerate(bar):
            where = f"epoch {epoch + 1}, batch {step}"
            inputs, target, rows = self._unpack(batch, where, "train_mask", named=False)
            with self._autocast():
                # self._train_module, not a copy: the first forward may re-wrap it (DDP)
                output = self._forward(self._train_module, inputs, where)
            output, target = self._select(output.float(), target, rows, where)
            loss, count, label_range = self._loss(output, target, where)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()
            self.step += 1

            loss, output, target = loss.detach(), output.detach(), target.detach()
            tally.add(loss, count, label_range)
            if label_range is not None:
                classes = output.shape[1]
            if self.metrics:
                outputs.append(output)
                targets.append(target)
            _compact(step, outputs, targets)
            if (step + 1) % self.log_every == 0:
                self._check(tally, classes, epoch)
                self._guard.keep(f"after batch {step} of epoch {epoch + 1}")
                bar.set_postfix(loss=f"{tally.mean:.4f}")
            if self.callbacks:
                info = StepInfo(epoch + 1, step, self.step, loss, output, target)
                for callback in self.callbacks:
                    callback(self, info)
        bar.close()
        release_free_memory()
        if step < 0:
            raise ValueError("the training data yielded no batches")
        self._check(tally, classes, epoch)

        totals = distributed.all_reduce_sum(torch.stack([tally.loss_sum, tally.count]))
        result = {"train_loss": float(totals[0] / totals[1]) if totals[1] else math.nan}
        if self.metrics:
            output, target = torch.cat(outputs).cpu(), torch.cat(targets).cpu()
            if self.dist.enabled:
                parts = distributed.all_gather_objects((output, target))
                output = torch.cat([p[0] for p in parts])
                target = torch.cat([p[1] for p in parts])
            result.update({f"train_{n}": fn(output, target) for n, fn in self.metrics.items()})
        return result

    def _check(self, tally: Tally, classes: int | None, epoch: int) -> None:
        """Raises for a non-finite loss or a bad label among the batches since the last check,
        after restoring the weights last checked finite."""
        saved = (
            f"; {self.checkpoint_dir / 'last.pt'} holds the end of epoch {self.epoch}"
            if self.checkpoint_dir is not None and self.epoch > 0
            else ""
        )
        self._guard.check(tally, classes, epoch, saved)

    @torch.no_grad()
    def _evaluate(self, data: Iterable, mask: str | None, named: bool) -> dict[str, float]:
        """:meth:`evaluate` on batches, scoring the rows of ``mask`` (see ``phase_rows``)."""
        output, target, loss = self._run_eval(data, True, mask, named)
        if output is None:
            raise ValueError("evaluate() got no batches")
        result = {"loss": loss}
        result.update({name: fn(output, target) for name, fn in self.metrics.items()})
        return result

    def _run_eval(
        self, data: Iterable, need_targets: bool, mask: str | None, named: bool
    ) -> tuple[Tensor | None, Tensor | None, float]:
        """Outputs and targets over ``data`` (the rows of ``mask``), concatenated on the CPU
        (``None`` without batches), and the mean loss over every label."""
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        tally = Tally(self.device)
        classes = None
        with evaluating(self.model):
            for step, batch in enumerate(data):
                where = f"evaluation batch {step}"
                inputs, target, rows = self._unpack(batch, where, mask, named)
                with self._autocast():
                    output = self._forward(self.model, inputs, where)
                output, target = self._select(output.float(), target, rows, where)
                outputs.append(output)
                if need_targets:
                    loss, count, label_range = self._loss(output, target, where)
                    tally.add(loss, count, label_range)
                    if label_range is not None:
                        classes = output.shape[1]
                    targets.append(target)
                _compact(step, outputs, targets)
        release_free_memory()
        _, bad_label = tally.fold(classes)  # one host sync per evaluation, not one per batch
        if bad_label is not None:
            batch, low, high = bad_label
            raise label_error(classes, low, high, f"evaluation batch {batch}")
        # one device-to-host copy each for outputs and targets, not one per batch
        output = torch.cat(outputs).cpu() if outputs else None
        target = torch.cat(targets).cpu() if targets else None
        return output, target, tally.mean

    # ------------------------------------------------------------------ one batch
    def _unpack(
        self, batch: Any, where: str, mask: str | None, named: bool
    ) -> tuple[Any, Tensor | None, Rows | None]:
        """Inputs, target and the rows the phase's ``mask`` selects (``batches.phase_rows``),
        on the device."""
        rows = phase_rows(batch, mask, where, named=named)  # before the move: no host sync
        if rows is not None:
            rows = rows._replace(index=rows.index.to(self.device, non_blocking=True))
        batch = move_to(batch, self.device)
        if isinstance(batch, BaseData):
            return batch, getattr(batch, "y", None), rows
        if isinstance(batch, Tensor):
            return self._layout(batch), None, None
        if isinstance(batch, list | tuple) and 1 <= len(batch) <= 2:
            return self._layout(batch[0]), batch[1] if len(batch) == 2 else None, None
        raise TypeError(
            "a batch must be a tuple (x, y) of tensors, a tensor, or a PyG Data/Batch; got "
            f"{type(batch).__name__}"
            + (f" of length {len(batch)}" if hasattr(batch, "__len__") else "")
        )

    @staticmethod
    def _select(
        output: Tensor, target: Tensor | None, rows: Rows | None, where: str
    ) -> tuple[Tensor, Tensor | None]:
        """The rows of output and target that a phase mask selects (all without one)."""
        if rows is None:
            return output, target
        if output.dim() == 0 or output.shape[0] != rows.size:
            got = output.shape[0] if output.dim() else 0
            raise ValueError(
                f"{where}: {rows.mask} has {rows.size} entries, the model gave {got} output "
                f"row{'s' if got != 1 else ''}: a phase mask selects the output rows of a "
                "node-level model (one per node); drop the masks from graph-level data"
            )
        if target is not None and (target.dim() == 0 or target.shape[0] != rows.size):
            raise ValueError(
                f"{where}: {rows.mask} has {rows.size} entries, the target has shape "
                f"{shape(target)}: node-level targets need one row per node"
            )
        output = output.index_select(0, rows.index)
        return output, target.index_select(0, rows.index) if target is not None else None

    def _layout(self, inputs: Any) -> Any:
        if self.channels_last and isinstance(inputs, Tensor) and inputs.dim() == 4:
            return inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _forward(self, module: nn.Module, inputs: Any, where: str) -> Tensor:
        if self._layout_unproven:
            return self._first_forward(module, inputs, where)
        try:
            return module(inputs)
        except (RuntimeError, IndexError) as exc:
            # Shape mismatches inside a model give messages without context: add it.
            hint = ""
            if self.channels_last and "view" in str(exc):
                hint = (
                    " (the Trainer keeps 4-D tensors channels-last: use .reshape or .flatten "
                    "instead of .view, or Trainer(channels_last=False))"
                )
            raise RuntimeError(
                f"model forward failed on {where} ({_shape_of(inputs)}): {exc}{hint}"
            ) from exc

    def _first_forward(self, module: nn.Module, inputs: Any, where: str) -> Tensor:
        """The first forward under ``channels_last="auto"``: NHWC, or else the default layout.

        A model may assume NCHW memory (``x.view(len(x), -1)`` after a convolution). If the
        forward fails in NHWC, the buffers it may have updated (batch-norm statistics) are put
        back, model and batch return to the default layout and the forward runs again, so the
        run is then exactly a ``channels_last=False`` run."""
        buffers = {name: b.detach().clone() for name, b in self.model.named_buffers()}
        try:
            output = module(inputs)
        except (RuntimeError, IndexError) as exc:
            with torch.no_grad():
                for name, b in self.model.named_buffers():
                    b.copy_(buffers[name])
            training = module is self._train_module and module is not self.model
            self._use_default_layout()
            module = self._train_module if training else module  # re-wrapped under DDP
            output = self._forward(module, _contiguous(inputs), where)
            warn(
                f"channels_last='auto': the model's forward failed in channels-last layout "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]}); training in the default "
                "layout. Use .reshape instead of .view for the NHWC speed-up, or pass "
                "channels_last=False to skip the attempt"
            )
            return output
        self._layout_unproven = False
        return output

    def _use_default_layout(self) -> None:
        self.channels_last = self._layout_unproven = False
        self.model.to(memory_format=torch.contiguous_format)
        if self.dist.enabled:
            # DDP's gradient buckets follow the parameters' strides at wrapping time: wrap anew
            # (every process falls back at the same batch, so the wrapping stays collective).
            self._wrap_for_training()

    def _loss(
        self, output: Tensor, target: Tensor | None, where: str
    ) -> tuple[Tensor, Tensor | int, Any]:
        """The batch's loss, its number of labels and (deferred checks) its class-label range."""
        check_target(self.loss_name, output, target, where)
        label_range = None
        loss_target = target
        class_labels = is_class_labels(self.loss_name, target)
        if class_labels and self._defer_label_check:
            label_range = torch.aminmax(target)
            loss_target = target.clamp(0, output.shape[1] - 1)
        try:
            loss = self.loss_fn(output, loss_target)
        except (IndexError, RuntimeError) as exc:
            if class_labels:
                low, high = (int(v) for v in torch.aminmax(target))
                if low < 0 or high >= output.shape[1]:
                    raise label_error(output.shape[1], low, high, where) from exc
            raise RuntimeError(
                f"loss {self.loss_name!r} failed on {where} (outputs of shape {shape(output)}, "
                f"targets of shape {shape(target)} and dtype {target.dtype}): {exc}"
            ) from exc
        return loss, label_count(self.loss_name, output, target), label_range

    # ------------------------------------------------------------------ setup
    def _wrap_for_training(self) -> None:
        """The module that runs training steps: the model, DDP-wrapped and/or compiled."""
        self._train_module: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._train_module = DistributedDataParallel(self.model, device_ids=ids)
        if self._compile:
            self._train_module = torch.compile(self._train_module)

    def _build_optimizer(self, spec: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if isinstance(spec, torch.optim.Optimizer):
            return spec
        if isinstance(spec, str):
            if spec not in _OPTIMIZERS:
                raise ValueError(
                    f"unknown optimizer {spec!r}; expected one of {sorted(_OPTIMIZERS)}"
                )
            if not params:
                raise ValueError("the model has no trainable parameters")
            extra = {"momentum": 0.9} if spec == "sgd" else {}
            return _OPTIMIZERS[spec](params, lr=lr, weight_decay=weight_decay, **extra)
        if callable(spec):
            return spec(params)
        raise TypeError(
            f"optimizer must be a name, an Optimizer or a callable, got {type(spec).__name__}"
        )

    def _seed_run(self, train: Any) -> None:
        seed_everything(self.seed)
        if callable(getattr(train, "set_default_seed", None)):
            train.set_default_seed(self.seed)
        if self.device.type != "cpu" and not torch.are_deterministic_algorithms_enabled():
            warn(
                f"Trainer(seed={self.seed}) seeds the random streams, but on {self.device.type} "
                "some kernels are non-deterministic (atomic adds in scatter / index_add, which "
                "PyG's message passing uses; some cuDNN algorithms), so runs can differ: call "
                "torch.use_deterministic_algorithms(True) (on CUDA with "
                "CUBLAS_WORKSPACE_CONFIG=:4096:8) before fit() for repeatable runs"
            )

    def _switched_off(self) -> list[nn.Module]:
        """The modules switched off inside a model that is itself on (a frozen batch norm): they
        stay off in training. A model left in eval mode trains with every module on."""
        if not self.model.training:
            return []
        return [module for module in self.model.modules() if not module.training]

    def _enter_training(self, keep_off: list[nn.Module]) -> None:
        """Training mode through ``train()``, so that a model's own ``train()`` override runs (a
        frozen backbone that keeps its batch-norm statistics), then ``keep_off`` switched off."""
        self._train_module.train()
        for module in keep_off:
            module.training = False

    # ------------------------------------------------------------------ checkpoints
    def _resolve_monitor(self, has_val: bool) -> str:
        monitor = self.monitor or ("val_loss" if has_val else "train_loss")
        if monitor.startswith("val_") and not has_val:
            fallback = "train_" + monitor.removeprefix("val_")
            warn(f"no validation data: monitoring {fallback} instead of {monitor}")
            monitor = fallback
        known = {"train_loss", "val_loss"} | {
            f"{split}_{m}" for split in ("train", "val") for m in self.metrics
        }
        if monitor not in known:
            raise ValueError(f"cannot monitor {monitor!r}; this run records {sorted(known)}")
        return monitor

    def _last_path(self) -> Path:
        if self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir (or pass the checkpoint path)")
        return self.checkpoint_dir / "last.pt"

    def _save_best(self, monitor: str) -> None:
        if self.checkpoint_dir is None:
            self._best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            }
            return
        if self.dist.is_main:
            save_checkpoint(best_checkpoint(self, monitor), self.checkpoint_dir / "best.pt")
        self._barrier()

    def _save_last(self, loader: Any) -> None:
        if self.checkpoint_dir is None:
            return
        if self.dist.is_main:
            state = last_checkpoint(self, loader, self._monitor_used, self._epochs_planned)
            save_checkpoint(state, self.checkpoint_dir / "last.pt")
        self._barrier()

    def _barrier(self) -> None:
        if self.dist.enabled:
            torch.distributed.barrier()

    def __repr__(self) -> str:
        return (
            f"Trainer(model={type(self.model).__name__}, loss={self.loss_name}, device={self.device}, "
            f"amp={self.amp_dtype}, metrics={list(self.metrics)})"
        )
