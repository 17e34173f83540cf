"""One training loop for image tensors and PyG graph batches.

A batch is either a tuple ``(x, y)`` of tensors (the model is called as ``model(x)``) or a PyG
``Data`` / ``Batch`` (called as ``model(batch)``, target ``batch.y``); everything else — device
moves, mixed precision, metrics, checkpoints, early stopping, resume, ``torchrun`` — is shared.

Example::

    trainer = Trainer(CNN(), loss="cross_entropy", lr=1e-3, metrics=("accuracy",))
    history = trainer.fit(TensorLoader(x, y, batch_size=100), val=val_loader, epochs=10)
    trainer.evaluate(test_loader)  # {"loss": ..., "accuracy": ...}

The loop never syncs the host with the device per step: losses, label counts and class-label
ranges stay on the device and are checked every ``log_every`` steps and at the end of an epoch.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import sys
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
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torch_geometric.data import Batch
from torch_geometric.data.data import BaseData
from tqdm.auto import tqdm

from gconv._utils import evaluating, move_to, preserve_mode
from gconv.train import distributed
from gconv.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gconv.train.history import History
from gconv.train.memory import retain_freed_memory
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
_ELEMENTWISE_LOSSES = ("mse", "masked_mse", "l1", "bce")  # one target per output element
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
# optimizer options that choose an implementation, not the optimisation itself
_IMPLEMENTATION_OPTIONS = {"foreach", "fused", "capturable", "differentiable"}


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


def _warn(message: str) -> None:
    """``warnings.warn`` pointing at the first caller outside this module (the user's code)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _shape(t: Tensor | torch.Size | Sequence[int]) -> str:
    return str(list(t.shape if isinstance(t, Tensor) else t))


def _shape_of(inputs: Any) -> str:
    if isinstance(inputs, Tensor):
        return f"input of shape {tuple(inputs.shape)}"
    if isinstance(inputs, BaseData):
        x = getattr(inputs, "x", None)
        return f"graph batch with x of shape {tuple(x.shape) if x is not None else None}"
    return f"input of type {type(inputs).__name__}"


def _contiguous(inputs: Any) -> Any:
    return inputs.contiguous() if isinstance(inputs, Tensor) else inputs


def _plain(value: Any) -> Any:
    """``value`` as something a ``weights_only`` checkpoint holds and ``==`` compares, or None."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, bool | int | float) for v in value):
        return tuple(value)
    return None


# --------------------------------------------------------------------------- data
def _batches(data: Any, batch_size: int | None, shuffle: bool, name: str, pin: bool) -> Any:
    """``data`` if it yields batches; a Dataset (or a list of single graphs) wrapped in a loader
    when ``batch_size`` is given; else a TypeError saying how to batch it.

    Iterating a Dataset yields one sample at a time: training on that would take a step per
    sample (or fail on a missing batch dimension), so it is never done silently.
    """
    is_dataset = isinstance(data, Dataset)
    graphs = (
        isinstance(data, list | tuple)
        and len(data) > 1
        and isinstance(data[0], BaseData)
        and not isinstance(data[0], Batch)
    )
    if not (is_dataset or graphs):
        return data
    first = next(iter(data), None)
    if first is None:
        raise ValueError(f"{name} is an empty {type(data).__name__}")
    is_graph = isinstance(first, BaseData)
    loader = "torch_geometric.loader.DataLoader" if is_graph else "torch.utils.data.DataLoader"
    shuffle = shuffle and not isinstance(data, IterableDataset)
    if batch_size is None:
        what = "a list of single graphs" if graphs else f"a {type(data).__name__}"
        raise TypeError(
            f"{name} is {what}, whose items are single samples, not batches: training on it "
            f"would take one step per sample. Pass batch_size= (e.g. fit({name}, batch_size=64)) "
            f"to have it wrapped in a {loader}{' shuffled for training' if shuffle else ''}, or "
            f"wrap it yourself: {loader}({name}, batch_size=64, shuffle={shuffle})"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if is_graph:
        from torch_geometric.loader import DataLoader as GraphLoader

        return GraphLoader(data, batch_size=batch_size, shuffle=shuffle, pin_memory=pin)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, pin_memory=pin)


_GENERATOR_PATHS = ("generator", "sampler.generator", "batch_sampler.sampler.generator")


def _generators(loader: Any) -> dict[str, torch.Generator]:
    """The ``torch.Generator`` objects a (torch or PyG) DataLoader shuffles with, by path."""
    found: dict[str, torch.Generator] = {}
    for path in _GENERATOR_PATHS:
        obj = loader
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.Generator) and all(obj is not g for g in found.values()):
            found[path] = obj
    return found


def _stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


def _loader_state(loader: Any) -> dict[str, Any]:
    """What a resume needs to replay the loader's next epochs, taken at the end of an epoch.

    A loader with ``state_dict()`` / ``load_state_dict()`` (``TensorLoader``, stateful loaders)
    saves itself; a torch or PyG ``DataLoader`` saves the states of the ``torch.Generator``s it
    and its sampler shuffle with (one left ``None`` draws from torch's global generator, whose
    state the checkpoint holds anyway) and of a stateful sampler.
    """
    state: dict[str, Any] = {"kind": type(loader).__name__}
    if _stateful(loader):
        state["state"] = loader.state_dict()
        return state
    generators = _generators(loader)
    if generators:
        state["generators"] = {path: g.get_state() for path, g in generators.items()}
    for part in ("sampler", "batch_sampler"):
        if _stateful(getattr(loader, part, None)):
            state[part] = getattr(loader, part).state_dict()
    return state


# --------------------------------------------------------------------------- epoch sums
class _Tally:
    """Per-batch losses, label counts and class-label ranges, kept on the device.

    :meth:`fold` adds the batches seen since the last fold to the running sums and looks among
    them for a non-finite loss or a class label out of range, with a single device-to-host copy;
    the training loop folds every ``log_every`` steps, never per step.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=self.dtype, device=device)
        self.count = torch.zeros((), dtype=self.dtype, device=device)
        self.folded = 0  # batches already in the sums
        self.mean = math.nan
        self._losses: list[Tensor] = []
        self._counts: list[Tensor | int] = []
        self._ranges: list[tuple[Tensor, Tensor]] = []

    def add(self, loss: Tensor, count: Tensor | int, label_range: Any = None) -> None:
        self._losses.append(loss)
        self._counts.append(count)
        if label_range is not None:
            self._ranges.append(label_range)

    def fold(
        self, classes: int | None = None
    ) -> tuple[tuple[int, float] | None, tuple[int, int, int] | None]:
        """Returns ``(batch, loss)`` of the first non-finite loss and ``(batch, low, high)`` of
        the first batch with class labels outside ``[0, classes)``, or ``None`` for each."""
        if not self._losses:
            return None, None
        losses = torch.stack(self._losses).to(self.dtype)
        if all(isinstance(c, int) for c in self._counts):
            counts = torch.tensor(self._counts, dtype=self.dtype).to(self.device, non_blocking=True)
        else:
            counts = torch.stack(
                [torch.as_tensor(c, device=self.device).to(self.dtype) for c in self._counts]
            )
        finite = torch.isfinite(losses)
        self.loss_sum += (losses * counts).sum()
        self.count += counts.sum()
        flags = [(~finite).any().to(self.dtype), self.loss_sum, self.count]
        bad_labels = None
        if self._ranges:
            low = torch.stack([r[0] for r in self._ranges])
            high = torch.stack([r[1] for r in self._ranges])
            bad_labels = (low < 0) | (high >= classes)
            flags.append(bad_labels.any().to(self.dtype))
        values = torch.stack(flags).tolist()  # the one host sync
        self.mean = values[1] / values[2] if values[2] else math.nan
        bad_loss = label = None
        if values[0]:
            index = int((~finite).nonzero()[0])
            bad_loss = (self.folded + index, float(losses[index]))
        if bad_labels is not None and values[3]:
            index = int(bad_labels.nonzero()[0])
            label = (self.folded + index, int(low[index]), int(high[index]))
        self.folded += len(self._losses)
        self._losses, self._counts, self._ranges = [], [], []
        return bad_loss, label


# --------------------------------------------------------------------------- trainer
class Trainer:
    r"""Fit, evaluate and predict with any ``nn.Module`` on tensor or graph batches.

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
        seed (int, optional): when :meth:`fit` starts a new run (epoch 0, not resuming), seed
            Python's, NumPy's and torch's global generators (CPU and CUDA) and give a train
            ``TensorLoader`` built without a ``seed`` this one; see *Seeding* below.
            (default: :obj:`None`)
        progress (bool): show a tqdm progress bar. (default: :obj:`True`)
        log_every (int): every this many steps, check the last steps' losses and labels (one
            host sync) and refresh the bar. (default: :obj:`20`)
        save_every (int): write ``last.pt`` every this many epochs and after the last one (also
            when early stopping ends the run); an interrupted run resumes from the latest write.
            Above 1 it saves the checkpoint's cost on short epochs. (default: :obj:`1`)

    **Data.** :meth:`fit`, :meth:`evaluate` and :meth:`predict` take iterables of batches: a
    ``TensorLoader``, a torch or PyG ``DataLoader``, a list of batches. A ``Dataset`` (e.g. a
    ``MoleculeDataset``, a ``TensorDataset``) or a list of single graphs yields one sample at a
    time, so it is wrapped in a ``DataLoader`` (PyG's for graphs; shuffled for training) when
    ``batch_size=`` is given and refused with a ``TypeError`` otherwise — never trained on sample
    by sample.

    **Epoch loss and metrics.** Each batch's loss is weighted by its number of labels: the
    non-NaN target elements, i.e. one per sample for class labels, one per graph and task for
    graph-level targets, one per node (and task) for node-level targets. So ``train_loss`` and
    ``val_loss`` are the mean over every label of the epoch, whatever the batch size and however
    the missing labels fall into batches. Metrics are computed once over the epoch's concatenated
    outputs and targets (accumulated on the device): per graph for graph-level targets, per node
    for node-level ones.

    **Checks.** Every batch is checked: a missing target; targets that do not fit the loss (with
    hints for float or ``[B, 1]`` class labels under cross-entropy); class labels outside
    ``[0, C)``; a non-finite loss. The last two are found on the device and raised at the next
    host sync (every ``log_every`` steps and at the end of each epoch; at once on the CPU, where
    torch checks labels itself, before any step on them), naming the epoch and the batch. When
    steps were taken since the last check, the model's weights are restored to the last ones
    checked (at most ``log_every`` steps earlier) and the error says so; the optimizer state is
    not restored, ``last.pt`` holds the last completed epoch.

    **Modes.** Training calls ``model.train()``, so a model's own ``train()`` override runs (a
    frozen backbone kept in eval mode, as in :class:`~gconv.models.TransferModel`); sub-modules
    put in eval mode while the model itself was in training mode (a frozen BatchNorm) stay as
    they are. Evaluation runs in eval mode. After :meth:`fit`, :meth:`evaluate` and
    :meth:`predict`, every module's ``training`` flag is what it was before.

    **Resume.** ``fit(..., resume=True)`` (or a path) continues from ``last.pt``, written at the
    end of every epoch (every ``save_every`` epochs). From the checkpoint come: the model
    weights; the optimizer state, *including its learning rate(s) and other hyper-parameters*;
    the scheduler and ``GradScaler`` states; the epoch counter, history, best value and epoch,
    patience counter; Python's, NumPy's and torch's random states; the train loader's shuffling
    state (a ``TensorLoader``'s seed and epoch, the states of a ``DataLoader``'s and its
    sampler's ``torch.Generator``s, a stateful loader's or sampler's ``state_dict()``). From the
    new call come: ``epochs`` (the total, counting the epochs already done), the data, and the
    rest of the configuration (loss, metrics, monitor, patience, ``grad_clip``, ``amp``, device,
    ``checkpoint_dir``). With an unchanged configuration the resumed run equals the
    uninterrupted one, bit for bit on the same machine. Every difference is reported with a
    warning saying which side wins:

    - ``lr`` / ``weight_decay`` / other hyper-parameters of the same optimizer type: the
      checkpoint's (to change them, call :meth:`resume`, set
      ``trainer.optimizer.param_groups[i]["lr"]``, then :meth:`fit` without ``resume``);
    - another optimizer type (e.g. Adam then SGD): its state cannot carry over, so the new
      optimizer starts fresh with its own hyper-parameters;
    - a scheduler added, dropped or of another type: the new one starts from its first step, a
      dropped one leaves the learning rate where it was; the same type resumes its state;
    - a new ``loss``, ``amp``, ``grad_clip``, ``patience``, ``mode`` or ``seed``: the new call's
      (``seed`` has no effect on a resumed run); a new ``monitor`` also resets the best value and
      the patience counter; ``epochs`` other than the checkpointed run planned, with a scheduler
      (whose schedule may be sized for the planned epochs): the new call's;
    - a train loader whose state cannot be saved or replayed (another kind than the checkpoint's,
      ``persistent_workers=True``, an unknown iterable): its batches may differ from the
      uninterrupted run's.

    A resume (or another :meth:`fit` call) with nothing left to do — ``epochs`` not above the
    epochs done, or a run that already stopped early — warns and returns the history unchanged.

    **Seeding.** ``seed`` makes a run repeatable on the same machine, software and thread count:
    at the start of a new run it seeds Python's, NumPy's and torch's global generators (dropout,
    a ``DataLoader`` shuffled without a ``generator=``, its worker seeds, a ``TensorLoader``'s
    seed drawn when none was given, augmentation drawing from them) and gives an unseeded train
    ``TensorLoader`` the seed itself. It does not cover, and cannot:

    - the model's initial weights — the model is built before the Trainer: call
      :func:`seed_everything` before building it;
    - a ``torch.Generator`` you give a ``DataLoader`` or sampler: seed it yourself;
    - non-deterministic kernels on CUDA (atomic adds in scatter / ``index_add``, which PyG's
      message passing uses; some cuDNN algorithms): :meth:`fit` warns when ``seed`` is set on
      such a device and ``torch.use_deterministic_algorithms(True)`` is not;
    - other machines, thread counts or torch versions, whose floating-point reduction order
      differs (runs agree at first, then drift apart).

    A continued (``fit`` again) or resumed run is not re-seeded: it goes on with its random states.
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
        if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
            raise ValueError(f"Trainer expected save_every to be an int >= 1, got {save_every!r}")
        self.save_every = save_every
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
        self._bad_epochs = 0
        self._best_state: dict[str, Tensor] | None = None
        self._epochs_planned: int | None = None
        self._monitor_used: str | None = None
        self._resumed: dict[str, Any] | None = None  # checkpoint parts fit() still has to apply
        self._finite_state: dict[str, Tensor] | None = None  # weights last checked finite
        self._finite_where = ""

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

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _unpack(self, batch: Any) -> tuple[Any, Tensor | None]:
        batch = move_to(batch, self.device)
        if isinstance(batch, BaseData):
            return batch, getattr(batch, "y", None)
        if isinstance(batch, Tensor):
            return self._layout(batch), None
        if isinstance(batch, list | tuple) and 1 <= len(batch) <= 2:
            return self._layout(batch[0]), batch[1] if len(batch) == 2 else None
        raise TypeError(
            "a batch must be a tuple (x, y) of tensors, a tensor, or a PyG Data/Batch; got "
            f"{type(batch).__name__}"
            + (f" of length {len(batch)}" if hasattr(batch, "__len__") else "")
        )

    def _layout(self, inputs: Any) -> Any:
        if self.channels_last and isinstance(inputs, Tensor) and inputs.dim() == 4:
            return inputs.contiguous(memory_format=torch.channels_last)
        return inputs

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
            _warn(
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

    # ------------------------------------------------------------------ targets and the loss
    def _class_labels(self, target: Tensor) -> bool:
        return self.loss_name == "cross_entropy" and not target.is_floating_point()

    def _check_target(self, output: Tensor, target: Tensor | None, where: str) -> None:
        """Checks of the target's shape and dtype against the loss (metadata only, no sync)."""
        if target is None:
            raise ValueError(f"{where} has no target: give (x, y) batches or graphs with .y")
        if self.loss_name == "cross_entropy":
            if output.dim() < 2:
                raise ValueError(
                    f"cross_entropy needs outputs of shape [B, C] (one logit per class); the model "
                    f"gave {_shape(output)} on {where}. For one logit per sample use loss='bce'"
                )
            labels = (*output.shape[:1], *output.shape[2:])  # class indices: output without C
            if target.is_floating_point():
                if target.shape == output.shape:
                    return  # class probabilities
                if tuple(target.shape) == labels:
                    fix = "y.long()"
                elif tuple(target.shape) == (*labels, 1):
                    fix = "y.squeeze(-1).long()"
                else:
                    fix = f"integer labels of shape {_shape(labels)}"
                raise ValueError(
                    f"cross_entropy needs integer class labels of shape {_shape(labels)} (or class "
                    f"probabilities of the output's shape {_shape(output)}); {where} has float "
                    f"labels of shape {_shape(target)}: use {fix}"
                )
            if tuple(target.shape) != labels:
                hint = ""
                if tuple(target.shape) == (*labels, 1):
                    hint = ": use y.squeeze(-1) (or y.view(-1)) — one label per sample, not [B, 1]"
                raise ValueError(
                    f"cross_entropy needs class labels of shape {_shape(labels)} for outputs of "
                    f"shape {_shape(output)}; {where} has labels of shape {_shape(target)}{hint}"
                )
        elif self.loss_name in _ELEMENTWISE_LOSSES and target.numel() != output.numel():
            raise ValueError(
                f"loss {self.loss_name!r} needs one target per output: {where} has outputs of shape "
                f"{_shape(output)} and targets of shape {_shape(target)}"
            )

    def _label_error(self, classes: int, low: int, high: int, where: str) -> ValueError:
        return ValueError(
            f"labels must be integers in [0, {classes}) for a model with {classes} outputs; "
            f"{where} has labels from {low} to {high}"
        )

    def _label_count(self, output: Tensor, target: Tensor) -> Tensor | int:
        """The number of labels the batch's loss averages over: its weight in the epoch's mean."""
        if not target.is_floating_point():
            return target.numel()  # class labels (range-checked) or integer regression targets
        if self.loss_name == "cross_entropy":
            return target.numel() // output.shape[1]  # class probabilities: one row per label
        if self.loss_name in ("mse", "l1"):
            return target.numel()  # a NaN target makes the loss NaN, which stops the run
        return target.numel() - torch.isnan(target).sum()  # on the device, no sync

    def _loss(
        self, output: Tensor, target: Tensor | None, where: str
    ) -> tuple[Tensor, Tensor | int, Any]:
        """The batch's loss, its number of labels and (deferred checks) its class-label range."""
        self._check_target(output, target, where)
        label_range = None
        loss_target = target
        if self._class_labels(target) and self._defer_label_check:
            label_range = torch.aminmax(target)
            loss_target = target.clamp(0, output.shape[1] - 1)
        try:
            loss = self.loss_fn(output, loss_target)
        except (IndexError, RuntimeError) as exc:
            if self._class_labels(target):
                low, high = (int(v) for v in torch.aminmax(target))
                if low < 0 or high >= output.shape[1]:
                    raise self._label_error(output.shape[1], low, high, where) from exc
            raise RuntimeError(
                f"loss {self.loss_name!r} failed on {where} (outputs of shape {_shape(output)}, "
                f"targets of shape {_shape(target)} and dtype {target.dtype}): {exc}"
            ) from exc
        return loss, self._label_count(output, target), label_range

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        train: Iterable,
        val: Iterable | None = None,
        epochs: int = 10,
        resume: bool | str | os.PathLike = False,
        *,
        batch_size: int | None = None,
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
                given checkpoint; see *Resume* in the class documentation for what comes from the
                checkpoint and what from this call. (default: :obj:`False`)
            batch_size (int, optional): batch a ``Dataset`` given as ``train`` (shuffled) or
                ``val`` in a ``DataLoader`` (PyG's for graphs). (default: :obj:`None`)
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        pin = self.device.type == "cuda"
        batched = _batches(train, batch_size, True, "train", pin)
        batched_val = _batches(val, batch_size, False, "val", pin) if val is not None else None
        if batch_size is not None and batched is train and batched_val is val:
            raise ValueError(
                "batch_size= batches a Dataset, but train and val already yield batches; set the "
                "batch size on their loaders instead"
            )
        with preserve_mode(self._train_module):
            return self._fit(batched, batched_val, epochs, resume)

    def _fit(self, train: Iterable, val: Iterable | None, epochs: int, resume: Any) -> History:
        if resume:
            self.resume(self._last_path() if resume is True else resume)
        elif self.epoch == 0 and self.seed is not None:
            self._seed_run(train)
        monitor = self._resolve_monitor(val is not None)
        if self._resumed is not None:
            self._apply_resumed(train, epochs, monitor)
        if self.epoch >= epochs:
            _warn(
                f"fit(epochs={epochs}) has nothing to do: {self.epoch} epochs are done already "
                f"(epochs counts them all, including those of a resumed checkpoint); pass "
                f"epochs > {self.epoch} to train on"
            )
            return self.history
        if self.patience is not None and self._bad_epochs >= self.patience:
            _warn(
                f"fit() has nothing to do: this run stopped early after epoch {self.epoch} (no "
                f"{monitor} improvement in {self._bad_epochs} epochs, patience {self.patience}); "
                "raise patience (or set it to None) to train on"
            )
            return self.history
        higher = higher_is_better(monitor) if self.mode == "auto" else self.mode == "max"
        self._epochs_planned, self._monitor_used = epochs, monitor
        loader = train  # the object whose state last.pt saves (a torchrun copy shares it)
        if self.dist.enabled:
            train = distributed.shard_loader(
                train, self.dist, self.seed or 0, pin_memory=self.device.type == "cuda"
            )

        keep_off = self._switched_off()
        try:
            for epoch in range(self.epoch, epochs):
                for obj in (train, getattr(train, "sampler", None)):
                    if hasattr(obj, "set_epoch"):
                        obj.set_epoch(epoch)
                start = time.perf_counter()
                record: dict[str, float] = {"epoch": epoch + 1}
                self._enter_training(keep_off)
                record.update(self._train_epoch(train, epoch, epochs))
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
                stopping = self.patience is not None and self._bad_epochs >= self.patience
                if stopping or self.epoch == epochs or self.epoch % self.save_every == 0:
                    self._save_last(loader)
                if self.progress:
                    shown = {k: v for k, v in record.items() if k not in ("epoch", "lr")}
                    tqdm.write(
                        f"epoch {epoch + 1}/{epochs}  "
                        + "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
                        + ("  *" if improved else "")
                    )
                if stopping:
                    if self.progress:
                        tqdm.write(
                            f"early stopping: no {monitor} improvement in {self.patience} epochs "
                            f"(best {self.best_value:.4g} at epoch {self.best_epoch})"
                        )
                    break
        finally:
            self._finite_state = None
        return self.history

    @torch.no_grad()
    def evaluate(self, data: Iterable, *, batch_size: int | None = None) -> dict[str, float]:
        """Loss (the mean over every label, see the class documentation) and the metrics over
        ``data``, with the model in eval mode; a ``Dataset`` needs ``batch_size``."""
        data = _batches(data, batch_size, False, "data", self.device.type == "cuda")
        output, target, loss = self._run_eval(data, need_targets=True)
        if output is None:
            raise ValueError("evaluate() got no batches")
        result = {"loss": loss}
        result.update({name: fn(output, target) for name, fn in self.metrics.items()})
        return result

    @torch.no_grad()
    def predict(self, data: Iterable, *, batch_size: int | None = None) -> Tensor:
        """Model outputs over ``data`` (eval mode), concatenated in order, as float32 on the CPU."""
        data = _batches(data, batch_size, False, "data", self.device.type == "cuda")
        output, _, _ = self._run_eval(data, need_targets=False)
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

        See *Resume* in the class documentation: the checkpoint's optimizer (learning rate
        included), scheduler, counters and random states replace this Trainer's, with a warning
        for each setting of this Trainer that is not used; the train loader's state is applied by
        the next :meth:`fit`.
        """
        state = load_checkpoint(path, map_location=self.device)
        if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
            raise ValueError(
                f"{path} is not a resumable gconv checkpoint (expected format {CHECKPOINT_FORMAT} "
                "with optimizer state, as written to last.pt)"
            )
        config = state.get("config") or {}
        self.model.load_state_dict(state["model"])
        self.epoch = int(state["epoch"])
        self.step = int(state.get("step", 0))
        self.history = History(state["history"])
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self._bad_epochs = int(state["bad_epochs"])
        self._resume_optimizer(state["optimizer"], config, path)
        self._resume_scheduler(state.get("scheduler"), config, path)
        if state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self._resumed = {"config": config, "loader": state.get("loader"), "path": str(path)}

    # ------------------------------------------------------------------ resume details
    def _optimizer_settings(self) -> dict[str, Any]:
        """The optimizer's own hyper-parameters as given to it (``optimizer.defaults``)."""
        settings = {}
        for key, value in self.optimizer.defaults.items():
            value = _plain(value)
            if key not in _IMPLEMENTATION_OPTIONS and value is not None:
                settings[key] = value
        return settings

    def _resume_optimizer(self, saved: dict[str, Any], config: dict[str, Any], path: Any) -> None:
        mine = type(self.optimizer).__name__
        theirs = config.get("optimizer")
        groups = saved.get("param_groups") or [{}]
        missing = set(self._optimizer_settings()) - set(groups[0])
        if (theirs is not None and theirs != mine) or missing:
            lr = self.optimizer.param_groups[0]["lr"]
            _warn(
                f"resume: {path} was trained with {theirs or 'another optimizer'}, this Trainer "
                f"uses {mine}: that state cannot carry over, so {mine} starts fresh with its own "
                f"hyper-parameters (lr {lr:.3g}); the model, epoch, history, scheduler and random "
                "states come from the checkpoint"
            )
            return
        self.optimizer.load_state_dict(saved)
        saved_settings = config.get("optimizer_defaults") or {}
        ignored = [
            f"{key}={value!r} (checkpoint: {saved_settings[key]!r})"
            for key, value in self._optimizer_settings().items()
            if key in saved_settings and _plain(saved_settings[key]) != value
        ]
        if ignored:
            _warn(
                f"resume: the optimizer state comes from {path}, learning rate included, so "
                f"{', '.join(ignored)} given to this Trainer is not used (the learning rate goes on "
                f"from {self.optimizer.param_groups[0]['lr']:.3g}). To change it, call "
                "trainer.resume(path), set trainer.optimizer.param_groups[i]['lr'], then call "
                "fit() without resume="
            )

    def _resume_scheduler(self, saved: Any, config: dict[str, Any], path: Any) -> None:
        mine = type(self.scheduler).__name__ if self.scheduler is not None else None
        theirs = config.get("scheduler", mine if saved is not None else None)
        lr = self.optimizer.param_groups[0]["lr"]
        if saved is None and self.scheduler is None:
            return
        if self.scheduler is None:
            _warn(
                f"resume: the {theirs or 'learning-rate'} schedule of {path} is dropped, since this "
                f"Trainer has no scheduler: the learning rate stays at {lr:.3g}"
            )
        elif saved is None or theirs != mine:
            had = f"a {theirs}" if theirs else "no scheduler"
            _warn(
                f"resume: {path} has {had}, this Trainer has a {mine}: it starts from its first "
                f"step now, after epoch {self.epoch}, at learning rate {lr:.3g}"
            )
        else:
            self.scheduler.load_state_dict(saved)
        interval = config.get("scheduler_interval", self.scheduler_interval)
        if self.scheduler is not None and interval != self.scheduler_interval:
            _warn(
                f"resume: the scheduler now steps every {self.scheduler_interval}, "
                f"the checkpointed run stepped it every {interval}"
            )

    def _apply_resumed(self, train: Any, epochs: int, monitor: str) -> None:
        """The parts of a resume that depend on this fit() call: settings and the loader state."""
        resumed, self._resumed = self._resumed, None
        config, path = resumed["config"], resumed["path"]

        def say(message: str) -> None:
            _warn(f"resume: {message}")

        planned = config.get("epochs")
        if planned is not None and planned != epochs and epochs > self.epoch and self.scheduler:
            say(
                f"training to epoch {epochs}; the run of {path} was planned for {planned} epochs "
                f"(a schedule sized for {planned} epochs, such as OneCycleLR's total_steps, may "
                "not fit)"
            )
        amp = str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else None
        if self._layout_unproven and config.get("channels_last") is False:
            self._use_default_layout()  # "auto" fell back in the run being resumed: so does this
        for key, value in (
            ("loss", self.loss_name),
            ("amp", amp),
            ("channels_last", self.channels_last),
            ("grad_clip", self.grad_clip),
            ("patience", self.patience),
            ("mode", self.mode),
        ):
            if key in config and config[key] != value:
                say(f"{key}={value!r} of this Trainer replaces the checkpoint's {config[key]!r}")
        if self.seed is not None and config.get("seed", self.seed) != self.seed:
            say(
                f"seed={self.seed} has no effect: a resumed run goes on with the random states of "
                f"{path} (its run used seed={config['seed']!r})"
            )
        if config.get("monitor") not in (None, monitor):
            say(
                f"this run monitors {monitor}, {path} monitored {config['monitor']}: the best "
                "value and the patience counter start afresh"
            )
            self.best_value, self.best_epoch, self._bad_epochs = None, None, 0
        self._restore_loader(train, resumed.get("loader"), say)

    def _restore_loader(self, loader: Any, saved: dict[str, Any] | None, say: Callable) -> None:
        kind = type(loader).__name__
        if isinstance(loader, DataLoader) and loader.num_workers > 0 and loader.persistent_workers:
            say(
                "the train DataLoader has persistent_workers=True: its workers' seed is drawn once "
                "per worker start, so the resumed batches (order and random transforms) differ "
                "from an uninterrupted run's; use persistent_workers=False for an exact resume"
            )
        if saved is None:  # a checkpoint from before loader states were saved
            return
        if saved.get("kind") != kind:
            say(
                f"the checkpoint saved the state of a {saved.get('kind')}, the train data is now a "
                f"{kind}: its shuffling starts afresh"
            )
            return
        if "state" in saved:
            loader.load_state_dict(saved["state"])
            return
        if not isinstance(loader, DataLoader | list | tuple) and not _generators(loader):
            say(
                f"the state of a {kind} cannot be saved or restored; if it shuffles with random "
                "state of its own, the resumed batches differ from an uninterrupted run's (give it "
                "state_dict() / load_state_dict() to make the resume exact)"
            )
        generators = _generators(loader)
        for path, state in (saved.get("generators") or {}).items():
            if path in generators:
                generators[path].set_state(state.cpu())
            else:
                say(f"the checkpoint holds the state of the train loader's {path}, which it lacks")
        for path in set(generators) - set(saved.get("generators") or {}):
            say(f"the train loader's {path} was not in the checkpoint: it starts afresh")
        for part in ("sampler", "batch_sampler"):
            if part in saved and _stateful(getattr(loader, part, None)):
                getattr(loader, part).load_state_dict(saved[part])

    def _seed_run(self, train: Any) -> None:
        seed_everything(self.seed)
        if callable(getattr(train, "set_default_seed", None)):
            train.set_default_seed(self.seed)
        if self.device.type != "cpu" and not torch.are_deterministic_algorithms_enabled():
            _warn(
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

    # ------------------------------------------------------------------ loops
    def _train_epoch(self, train: Iterable, epoch: int, epochs: int) -> dict[str, float]:
        tally = _Tally(self.device)
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        self._keep_finite(f"at the start of epoch {epoch + 1}")
        total = len(train) if hasattr(train, "__len__") else None
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
            inputs, target = self._unpack(batch)
            where = f"epoch {epoch + 1}, batch {step}"
            with self._autocast():
                # self._train_module, not a copy: the first forward may re-wrap it (DDP)
                output = self._forward(self._train_module, inputs, where)
            output = output.float()
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

            tally.add(loss.detach(), count, label_range)
            if label_range is not None:
                classes = output.shape[1]
            if self.metrics:
                outputs.append(output.detach())
                targets.append(target.detach())
            if (step + 1) % self.log_every == 0:
                self._check(tally, classes, epoch)
                self._keep_finite(f"after batch {step} of epoch {epoch + 1}")
                bar.set_postfix(loss=f"{tally.mean:.4f}")
        bar.close()
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

    def _check(self, tally: _Tally, classes: int | None, epoch: int) -> None:
        """Raises for a non-finite loss or a bad label among the batches since the last check,
        after restoring the weights last checked finite."""
        bad_loss, bad_label = tally.fold(classes)
        if bad_label is not None and (bad_loss is None or bad_label[0] <= bad_loss[0]):
            batch, low, high = bad_label
            restored = self._restore_finite()
            raise ValueError(
                f"{self._label_error(classes, low, high, f'epoch {epoch + 1}, batch {batch}')}. "
                f"{restored}"
            )
        if bad_loss is not None:
            batch, value = bad_loss
            restored = self._restore_finite()
            raise FloatingPointError(
                f"loss became {value} at epoch {epoch + 1}, batch {batch}: lower the learning "
                f"rate, set grad_clip, or check the inputs and targets for NaN/inf. {restored}"
            )

    def _keep_finite(self, where: str) -> None:
        """Copy the weights (just checked finite) aside, to restore them if training diverges."""
        state = self.model.state_dict()
        with torch.no_grad():
            if self._finite_state is None or self._finite_state.keys() != state.keys():
                self._finite_state = {k: v.detach().clone() for k, v in state.items()}
            else:
                for key, value in state.items():
                    self._finite_state[key].copy_(value)
        self._finite_where = where

    def _restore_finite(self) -> str:
        saved = (
            f"; {self.checkpoint_dir / 'last.pt'} holds the end of epoch {self.epoch}"
            if self.checkpoint_dir is not None and self.epoch > 0
            else ""
        )
        if self._finite_state is None:
            return f"The model's weights were not restored{saved}."
        self.model.load_state_dict(self._finite_state)
        return (
            f"The model's weights were restored to those {self._finite_where}, the last checked "
            f"finite (the optimizer state was not){saved}."
        )

    def _run_eval(
        self, data: Iterable, need_targets: bool
    ) -> tuple[Tensor | None, Tensor | None, float]:
        """Outputs and targets over ``data``, concatenated on the CPU (``None`` without batches),
        and the mean loss over every label."""
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        tally = _Tally(self.device)
        classes = None
        with evaluating(self.model):
            for step, batch in enumerate(data):
                inputs, target = self._unpack(batch)
                where = f"evaluation batch {step}"
                with self._autocast():
                    output = self._forward(self.model, inputs, where)
                output = output.float()
                outputs.append(output)
                if need_targets:
                    loss, count, label_range = self._loss(output, target, where)
                    tally.add(loss, count, label_range)
                    if label_range is not None:
                        classes = output.shape[1]
                    targets.append(target)
        _, bad_label = tally.fold(classes)  # one host sync per evaluation, not one per batch
        if bad_label is not None:
            batch, low, high = bad_label
            raise self._label_error(classes, low, high, f"evaluation batch {batch}")
        # one device-to-host copy each for outputs and targets, not one per batch
        output = torch.cat(outputs).cpu() if outputs else None
        target = torch.cat(targets).cpu() if targets else None
        return output, target, tally.mean

    # ------------------------------------------------------------------ checkpoints
    def _resolve_monitor(self, has_val: bool) -> str:
        monitor = self.monitor or ("val_loss" if has_val else "train_loss")
        if monitor.startswith("val_") and not has_val:
            fallback = "train_" + monitor.removeprefix("val_")
            _warn(f"no validation data: monitoring {fallback} instead of {monitor}")
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

    def _config(self) -> dict[str, Any]:
        """The settings a resume compares with its own (see *Resume*)."""
        return {
            "optimizer": type(self.optimizer).__name__,
            "optimizer_defaults": self._optimizer_settings(),
            "scheduler": type(self.scheduler).__name__ if self.scheduler is not None else None,
            "scheduler_interval": self.scheduler_interval,
            "loss": self.loss_name,
            "amp": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else None,
            "channels_last": self.channels_last,
            "grad_clip": self.grad_clip,
            "monitor": self._monitor_used,
            "mode": self.mode,
            "patience": self.patience,
            "seed": self.seed,
            "epochs": self._epochs_planned,
        }

    def _save_last(self, loader: Any) -> None:
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
                    "step": self.step,
                    "history": copy.deepcopy(self.history.epochs),
                    "best_value": self.best_value,
                    "best_epoch": self.best_epoch,
                    "bad_epochs": self._bad_epochs,
                    "rng": rng_state(),
                    "loader": _loader_state(loader),
                    "config": self._config(),
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
