"""One training loop for image tensors and PyG graph batches.

A batch is either a tuple ``(x, y)`` of tensors (the model is called as ``model(x)``) or a PyG
``Data`` / ``Batch`` (called as ``model(batch)``, target ``batch.y``); everything else — device
moves, mixed precision, metrics, checkpoints, early stopping, resume, ``torchrun`` — is shared.

Example::

    trainer = Trainer(CNN(), loss="cross_entropy", lr=1e-3, metrics=("accuracy",))
    history = trainer.fit(TensorLoader(x, y, batch_size=100), val=val_loader, epochs=10)
    trainer.evaluate(test_loader)  # {"loss": ..., "accuracy": ...}
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data.data import BaseData
from tqdm.auto import tqdm

from gconv.train import distributed
from gconv.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gconv.train.history import History
from gconv.train.metrics import get_metric, higher_is_better

__all__ = ["Trainer", "seed_everything", "resolve_device", "LOSSES", "masked_mse", "masked_bce"]

CHECKPOINT_FORMAT = "gconv-checkpoint/1"


# --------------------------------------------------------------------------- losses
def masked_mse(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over the non-NaN targets (missing labels of multi-task sets)."""
    target = target.reshape(output.shape).to(output.dtype)
    valid = ~torch.isnan(target)
    # where nothing in the batch is labelled, zero (with a graph), not the NaN of an empty mean
    return torch.where(valid, output - target, 0.0).pow(2).sum() / valid.sum().clamp_min(1)


def masked_bce(output: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy on logits over the non-NaN targets."""
    target = target.reshape(output.shape).to(output.dtype)
    valid = ~torch.isnan(target)
    losses = F.binary_cross_entropy_with_logits(
        output, torch.where(valid, target, 0.0), reduction="none"
    )
    return torch.where(valid, losses, 0.0).sum() / valid.sum().clamp_min(1)


def _mse(output: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(output, target.reshape(output.shape).to(output.dtype))


def _l1(output: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(output, target.reshape(output.shape).to(output.dtype))


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "mse": _mse,
    "masked_mse": masked_mse,
    "l1": _l1,
    "bce": masked_bce,
}
_REGRESSION_METRICS = ("rmse", "mae", "r2")
_DEFAULT_METRICS = {
    "cross_entropy": ("accuracy",),
    "mse": _REGRESSION_METRICS,
    "masked_mse": _REGRESSION_METRICS,
    "l1": _REGRESSION_METRICS,
}
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


# --------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and all CUDA devices) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, else Apple MPS, else the CPU; anything else is passed to torch."""
    if str(device) != "auto":
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device} requested but CUDA is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _resolve_amp(amp: str | bool | None, device: torch.device) -> torch.dtype | None:
    if amp in (None, False, "none", "off"):
        return None
    if amp in ("auto", True):
        if device.type != "cuda":
            return None  # CPU autocast is opt-in ("bf16"): it is not faster for every model
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in dtypes:
        raise ValueError(f"amp must be one of 'auto', 'bf16', 'fp16' or None, got {amp!r}")
    return dtypes[amp]


def _move(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor | BaseData):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, list | tuple):
        return type(obj)(_move(o, device) for o in obj)
    return obj


def _num_samples(inputs: Any, target: Tensor | None) -> int:
    if isinstance(inputs, BaseData):
        return int(getattr(inputs, "num_graphs", 1))
    if target is not None:
        return int(target.shape[0])
    return int(inputs.shape[0])


def _shape_of(inputs: Any) -> str:
    if isinstance(inputs, Tensor):
        return f"input of shape {tuple(inputs.shape)}"
    if isinstance(inputs, BaseData):
        x = getattr(inputs, "x", None)
        return f"graph batch with x of shape {tuple(x.shape) if x is not None else None}"
    return f"input of type {type(inputs).__name__}"


# --------------------------------------------------------------------------- trainer
class Trainer:
    r"""Fit, evaluate and predict with any ``nn.Module`` on tensor or graph batches.

    Args:
        model (nn.Module): ``model(x)`` for tensor batches, ``model(batch)`` for PyG batches.
        loss (str or callable): ``"cross_entropy"``, ``"mse"``, ``"masked_mse"`` (ignores NaN
            targets), ``"l1"``, ``"bce"`` (logits, ignores NaN targets), or
            ``fn(output, target) -> Tensor``. (default: :obj:`"cross_entropy"`)
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
        scheduler (LRScheduler or callable, optional): a scheduler, or
            ``fn(optimizer) -> scheduler``; ``ReduceLROnPlateau`` is stepped with the monitored
            value. (default: :obj:`None`)
        scheduler_interval (str): step the scheduler every ``"epoch"`` or every ``"step"``.
            (default: :obj:`"epoch"`)
        grad_clip (float, optional): clip the global gradient norm to this value.
            (default: :obj:`None`)
        checkpoint_dir (str or Path, optional): write ``best.pt`` (best monitored value) and
            ``last.pt`` (everything needed to resume) there, atomically. (default: :obj:`None`:
            the best weights are kept in memory for :meth:`load_best`)
        monitor (str, optional): value deciding the best epoch and early stopping, e.g.
            ``"val_loss"``, ``"val_accuracy"``; a ``"val_*"`` value falls back to ``"train_*"``
            (with a warning) when there is no validation data. (default: :obj:`None`:
            ``"val_loss"`` with validation data, else ``"train_loss"``)
        mode (str): ``"min"``, ``"max"`` or ``"auto"`` (from the metric's name).
            (default: :obj:`"auto"`)
        patience (int, optional): stop after this many epochs without improvement.
            (default: :obj:`None`)
        seed (int, optional): seed all random generators when :meth:`fit` starts.
            (default: :obj:`None`)
        progress (bool): show a tqdm progress bar. (default: :obj:`True`)
        log_every (int): refresh the bar and check the loss for NaN every this many steps.
            (default: :obj:`20`)
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
            metrics = _DEFAULT_METRICS.get(self.loss_name, ())
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
        self.amp_dtype = _resolve_amp(amp, self.device)
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
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.seed = seed
        self.progress = progress and self.dist.is_main
        self.log_every = max(1, log_every)

        # The module that runs training steps: DDP-wrapped and/or compiled.
        self._train_module: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._train_module = DistributedDataParallel(self.model, device_ids=ids)
        if compile:
            self._train_module = torch.compile(self._train_module)

        self.history = History()
        self.epoch = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._bad_epochs = 0
        self._best_state: dict[str, Tensor] | None = None

    # ------------------------------------------------------------------ setup
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

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _unpack(self, batch: Any) -> tuple[Any, Tensor | None]:
        batch = _move(batch, self.device)
        if isinstance(batch, BaseData):
            return batch, getattr(batch, "y", None)
        if isinstance(batch, Tensor):
            return batch, None
        if isinstance(batch, list | tuple) and 1 <= len(batch) <= 2:
            return batch[0], batch[1] if len(batch) == 2 else None
        raise TypeError(
            "a batch must be a tuple (x, y) of tensors, a tensor, or a PyG Data/Batch; got "
            f"{type(batch).__name__}"
            + (f" of length {len(batch)}" if hasattr(batch, "__len__") else "")
        )

    def _forward(self, module: nn.Module, inputs: Any, where: str) -> Tensor:
        try:
            return module(inputs)
        except (RuntimeError, IndexError) as exc:
            # Shape mismatches inside a model give messages without context: add it.
            raise RuntimeError(
                f"model forward failed on {where} ({_shape_of(inputs)}): {exc}"
            ) from exc

    def _check_targets(self, output: Tensor, target: Tensor | None, where: str) -> None:
        if target is None:
            raise ValueError(f"{where} has no target: give (x, y) batches or graphs with .y")
        if self.loss_name == "cross_entropy" and not target.is_floating_point():
            classes = output.shape[-1]
            low, high = (int(v) for v in torch.aminmax(target))
            if low < 0 or high >= classes:
                raise ValueError(
                    f"labels must be integers in [0, {classes}) for a model with {classes} outputs; "
                    f"{where} has labels from {low} to {high}"
                )

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        train: Iterable,
        val: Iterable | None = None,
        epochs: int = 10,
        resume: bool | str | os.PathLike = False,
    ) -> History:
        """Train for ``epochs`` epochs in total; returns the :class:`History`.

        Args:
            train: iterable of training batches (a ``TensorLoader``, a PyG or torch ``DataLoader``).
            val: iterable of validation batches, evaluated after every epoch. (default: :obj:`None`)
            epochs (int): total number of epochs, counting those of a resumed run.
            resume (bool or path): continue from ``checkpoint_dir/last.pt`` (``True``) or from the
                given checkpoint: model, optimizer, scheduler, scaler, epoch, history, best value and
                random states are restored, so the result equals an uninterrupted run.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if resume:
            self.resume(self._last_path() if resume is True else resume)
        elif self.seed is not None:
            seed_everything(self.seed)
        monitor = self._resolve_monitor(val is not None)
        higher = higher_is_better(monitor) if self.mode == "auto" else self.mode == "max"
        if self.dist.enabled:
            train = distributed.shard_loader(
                train, self.dist, self.seed or 0, pin_memory=self.device.type == "cuda"
            )

        first_epoch = self.epoch
        for epoch in range(first_epoch, epochs):
            for obj in (train, getattr(train, "sampler", None)):
                if hasattr(obj, "set_epoch"):
                    obj.set_epoch(epoch)
            start = time.perf_counter()
            record: dict[str, float] = {"epoch": epoch + 1}
            record.update(self._train_epoch(train, epoch, epochs, check=epoch == first_epoch))
            if val is not None:
                record.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            record["lr"] = self.optimizer.param_groups[0]["lr"]
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            self.epoch = epoch + 1

            value = record[monitor]
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(value)
                else:
                    self.scheduler.step()
            improved = self.best_value is None or (
                value > self.best_value if higher else value < self.best_value
            )
            if improved:
                self.best_value, self.best_epoch, self._bad_epochs = value, epoch + 1, 0
                self._save_best(monitor)
            else:
                self._bad_epochs += 1
            self._save_last()
            if self.progress:
                shown = {k: v for k, v in record.items() if k not in ("epoch", "lr")}
                tqdm.write(
                    f"epoch {epoch + 1}/{epochs}  "
                    + "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
                    + ("  *" if improved else "")
                )
            if self.patience is not None and self._bad_epochs >= self.patience:
                if self.progress:
                    tqdm.write(
                        f"early stopping: no {monitor} improvement in {self.patience} epochs "
                        f"(best {self.best_value:.4g} at epoch {self.best_epoch})"
                    )
                break
        return self.history

    @torch.no_grad()
    def evaluate(self, data: Iterable) -> dict[str, float]:
        """Mean loss and the metrics over ``data``, with the model in eval mode."""
        outputs, targets, loss_sum, count = self._run_eval(data, need_targets=True)
        if count == 0:
            raise ValueError("evaluate() got no batches")
        result = {"loss": loss_sum / count}
        output, target = torch.cat(outputs), torch.cat(targets)
        result.update({name: fn(output, target) for name, fn in self.metrics.items()})
        return result

    @torch.no_grad()
    def predict(self, data: Iterable) -> Tensor:
        """Model outputs over ``data`` (eval mode), concatenated in order, as float32 on the CPU."""
        outputs, _, _, _ = self._run_eval(data, need_targets=False)
        if not outputs:
            raise ValueError("predict() got no batches")
        return torch.cat(outputs)

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
        """Restore the full training state from a ``last.pt`` checkpoint."""
        state = load_checkpoint(path, map_location=self.device)
        if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
            raise ValueError(
                f"{path} is not a resumable gconv checkpoint (expected format {CHECKPOINT_FORMAT} "
                "with optimizer state, as written to last.pt)"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.history = History(state["history"])
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self._bad_epochs = int(state["bad_epochs"])
        set_rng_state(state["rng"])

    # ------------------------------------------------------------------ loops
    def _train_epoch(
        self, train: Iterable, epoch: int, epochs: int, check: bool
    ) -> dict[str, float]:
        module = self._train_module
        module.train()
        loss_sum = torch.zeros((), device=self.device)
        count = 0
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        total = len(train) if hasattr(train, "__len__") else None
        bar = tqdm(
            train,
            total=total,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        for step, batch in enumerate(bar):
            inputs, target = self._unpack(batch)
            where = f"epoch {epoch + 1}, batch {step}"
            with self._autocast():
                output = self._forward(module, inputs, where)
            if check:
                self._check_targets(output, target, where)
            loss = self.loss_fn(output.float(), target)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()

            n = _num_samples(inputs, target)
            loss_sum += loss.detach() * n
            count += n
            if self.metrics:
                outputs.append(output.detach().float())
                targets.append(target.detach())
            if (step + 1) % self.log_every == 0:
                self._check_finite(loss_sum, where)
                bar.set_postfix(loss=f"{loss_sum.item() / count:.4f}")
        bar.close()
        if count == 0:
            raise ValueError("the training data yielded no batches")
        self._check_finite(loss_sum, f"epoch {epoch + 1}")

        totals = distributed.all_reduce_sum(
            torch.stack([loss_sum.float(), torch.tensor(float(count), device=self.device)])
        )
        result = {"train_loss": float(totals[0] / totals[1])}
        if self.metrics:
            output, target = torch.cat(outputs).cpu(), torch.cat(targets).cpu()
            if self.dist.enabled:
                parts = distributed.all_gather_objects((output, target))
                output = torch.cat([p[0] for p in parts])
                target = torch.cat([p[1] for p in parts])
            result.update({f"train_{n}": fn(output, target) for n, fn in self.metrics.items()})
        return result

    def _run_eval(
        self, data: Iterable, need_targets: bool
    ) -> tuple[list[Tensor], list[Tensor], float, int]:
        was_training = self.model.training
        self.model.eval()
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        loss_sum, count = torch.zeros((), device=self.device), 0
        try:
            for step, batch in enumerate(data):
                inputs, target = self._unpack(batch)
                with self._autocast():
                    output = self._forward(self.model, inputs, f"evaluation batch {step}")
                output = output.float()
                outputs.append(output)
                if need_targets:
                    self._check_targets(output, target, f"evaluation batch {step}")
                    n = _num_samples(inputs, target)
                    loss_sum += self.loss_fn(output, target).detach() * n
                    count += n
                    targets.append(target)
        finally:
            self.model.train(was_training)
        # one device-to-host copy per evaluation, not one per batch
        return [o.cpu() for o in outputs], [t.cpu() for t in targets], float(loss_sum), count

    def _check_finite(self, loss_sum: Tensor, where: str) -> None:
        if not math.isfinite(float(loss_sum)):
            raise FloatingPointError(
                f"loss became {float(loss_sum)} by {where}: lower the learning rate, set grad_clip, "
                "or check the inputs and targets for NaN/inf"
            )

    # ------------------------------------------------------------------ checkpoints
    def _resolve_monitor(self, has_val: bool) -> str:
        monitor = self.monitor or ("val_loss" if has_val else "train_loss")
        if monitor.startswith("val_") and not has_val:
            fallback = "train_" + monitor.removeprefix("val_")
            warnings.warn(
                f"no validation data: monitoring {fallback} instead of {monitor}", stacklevel=3
            )
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
            save_checkpoint(
                {
                    "format": CHECKPOINT_FORMAT,
                    "model": self.model.state_dict(),
                    "epoch": self.epoch,
                    "monitor": monitor,
                    "value": self.best_value,
                    "model_class": type(self.model).__name__,
                },
                self.checkpoint_dir / "best.pt",
            )
        self._barrier()

    def _save_last(self) -> None:
        if self.checkpoint_dir is None:
            return
        if self.dist.is_main:
            save_checkpoint(
                {
                    "format": CHECKPOINT_FORMAT,
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict()
                    if self.scheduler is not None
                    else None,
                    "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                    "epoch": self.epoch,
                    "history": copy.deepcopy(self.history.epochs),
                    "best_value": self.best_value,
                    "best_epoch": self.best_epoch,
                    "bad_epochs": self._bad_epochs,
                    "rng": rng_state(),
                },
                self.checkpoint_dir / "last.pt",
            )
        self._barrier()

    def _barrier(self) -> None:
        if self.dist.enabled:
            torch.distributed.barrier()

    def __repr__(self) -> str:
        return (
            f"Trainer(model={type(self.model).__name__}, loss={self.loss_name}, device={self.device}, "
            f"amp={self.amp_dtype}, metrics={list(self.metrics)})"
        )
