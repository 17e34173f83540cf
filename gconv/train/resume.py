"""The Trainer's checkpoints and their resume: what ``last.pt`` and ``best.pt`` hold, and how a
resumed run takes them back.

Like Lightning's checkpoint connector, :func:`restore` reads ``last.pt`` and calls
:func:`restore_model` and :func:`restore_training_state`; :func:`reconcile` does the part that
depends on the next ``fit()`` call: it refuses other data (:class:`ResumeError`), compares the
checkpointed run's configuration (:func:`run_config`) with the Trainer's, warns for each difference
saying which side wins, sizes the schedule for the new epochs, and replays the train loader's
state. The rules are written once, in ``docs/trainer.md`` (*Resume* and
*Checkpoints*).
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from gconv.train._utils import warn
from gconv.train.batches import loader_state, restore_loader_state
from gconv.train.checkpoint import load_checkpoint, rng_state, set_rng_state
from gconv.train.fingerprint import data_differences
from gconv.train.history import History

if TYPE_CHECKING:
    from gconv.train.trainer import Trainer

__all__ = [
    "CHECKPOINT_FORMAT",
    "ResumeError",
    "Resumed",
    "best_checkpoint",
    "last_checkpoint",
    "run_config",
    "optimizer_settings",
    "restore",
    "restore_model",
    "restore_training_state",
    "reconcile",
]

CHECKPOINT_FORMAT = "gconv-checkpoint/1"

# optimizer options that choose an implementation, not the optimisation itself
_IMPLEMENTATION_OPTIONS = {"foreach", "fused", "capturable", "differentiable"}


# scheduler state that is progress (kept from the checkpoint when the schedule is re-sized), not
# settings; base_lrs follow the optimizer's learning rates, which come from the checkpoint
_SCHEDULER_PROGRESS = {
    "last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial",
    "base_lrs", "best", "num_bad_epochs", "cooldown_counter", "verbose", "_schedulers",
}  # fmt: skip


class ResumeError(ValueError):
    """A checkpoint that this call cannot continue: another model, or other data.

    ``reason`` says what differs; the message adds what to do.
    """

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(f"resume: {reason}: {fix}")
        self.reason = reason


class Resumed(NamedTuple):
    """What :func:`restore` leaves for the next ``fit()`` (:func:`reconcile`)."""

    config: dict[str, Any]  # the checkpointed run's settings (run_config)
    loader: dict[str, Any] | None  # its train loader's state (batches.loader_state)
    path: str
    # the Trainer's own scheduler state, before the checkpoint's replaced it (same type only)
    scheduler: dict[str, Any] | None = None


# --------------------------------------------------------------------------- writing
def _plain(value: Any) -> Any:
    """``value`` as something a ``weights_only`` checkpoint holds and ``==`` compares, or None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, bool | int | float) for v in value):
        return tuple(value)
    return None


def optimizer_settings(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's own hyper-parameters as given to it (``optimizer.defaults``), without the
    options that only pick an implementation (``foreach``, ``fused``, ...)."""
    settings = {}
    for key, value in optimizer.defaults.items():
        value = _plain(value)
        if key not in _IMPLEMENTATION_OPTIONS and value is not None:
            settings[key] = value
    return settings


def run_config(trainer: Trainer, monitor: str | None, epochs: int | None) -> dict[str, Any]:
    """The settings a resume compares with its own (``last.pt``'s ``config``)."""
    return {
        "optimizer": type(trainer.optimizer).__name__,
        "optimizer_defaults": optimizer_settings(trainer.optimizer),
        "scheduler": type(trainer.scheduler).__name__ if trainer.scheduler is not None else None,
        "scheduler_interval": trainer.scheduler_interval,
        "loss": trainer.loss_name,
        "amp": str(trainer.amp_dtype).removeprefix("torch.") if trainer.amp_dtype else None,
        "channels_last": trainer.channels_last,
        "grad_clip": trainer.grad_clip,
        "monitor": monitor,
        "mode": trainer.mode,
        "patience": trainer.patience,
        "seed": trainer.seed,
        "epochs": epochs,
        "data": copy.deepcopy(trainer._data_record),
    }


def last_checkpoint(
    trainer: Trainer, loader: Any, monitor: str | None, epochs: int | None
) -> dict[str, Any]:
    """Everything a resume needs (``last.pt``), as tensors and plain containers.

    Args:
        trainer (Trainer): at the end of an epoch.
        loader: the train loader, whose state the resume replays.
        monitor (str, optional): the value this run monitors.
        epochs (int, optional): the epochs this run was asked for.
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "scaler": trainer.scaler.state_dict() if trainer.scaler.is_enabled() else None,
        "epoch": trainer.epoch,
        "step": trainer.step,
        "history": copy.deepcopy(trainer.history.epochs),
        "best_value": trainer.best_value,
        "best_epoch": trainer.best_epoch,
        "bad_epochs": trainer.bad_epochs,
        "rng": rng_state(),
        "loader": loader_state(loader),
        "config": run_config(trainer, monitor, epochs),
    }


def best_checkpoint(trainer: Trainer, monitor: str) -> dict[str, Any]:
    """The best epoch's weights and what made them the best (``best.pt``)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": trainer.model.state_dict(),
        "epoch": trainer.epoch,
        "monitor": monitor,
        "value": trainer.best_value,
        "model_class": type(trainer.model).__name__,
    }


# --------------------------------------------------------------------------- reading
def restore(trainer: Trainer, path: str | os.PathLike) -> Resumed:
    """Read the ``last.pt`` at ``path`` into ``trainer``: weights, then training state.

    Returns what the next ``fit()`` still has to apply (:func:`reconcile`).

    Raises:
        FileNotFoundError, CheckpointError: see :func:`gconv.train.load_checkpoint`.
        ValueError: the file is not a resumable gconv checkpoint (``best.pt``, another format).
        ResumeError: it holds the weights of another model.
    """
    state = load_checkpoint(path, map_location=trainer.device)
    if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
        raise ValueError(
            f"{path} is not a resumable gconv checkpoint (expected format {CHECKPOINT_FORMAT} "
            "with optimizer state, as written to last.pt)"
        )
    restore_model(trainer.model, state, path)
    scheduler = restore_training_state(trainer, state, path)
    return Resumed(state.get("config") or {}, state.get("loader"), str(path), scheduler)


def restore_model(
    model: torch.nn.Module, state: dict[str, Any], path: Any = "the checkpoint"
) -> None:
    """The checkpoint's weights into ``model``.

    Raises:
        ResumeError: the checkpoint holds the weights of another model (parameters missing,
            extra, or of other shapes), named in one line; ``model`` is left untouched.
    """
    differences = model_differences(state["model"], model.state_dict())
    if differences:
        raise ResumeError(
            f"{path} holds the weights of another model ({'; '.join(differences)})",
            "build the model as in the checkpointed run (the same layers and sizes), or train "
            "afresh without resuming",
        )
    model.load_state_dict(state["model"])


def model_differences(saved: dict[str, Any], mine: dict[str, Any], most: int = 3) -> list[str]:
    """How the state dict ``saved`` does not fit ``mine``: keys of other shapes (the first
    ``most``), keys missing from ``saved``, keys ``mine`` lacks."""

    def listed(keys: list[str]) -> str:
        return ", ".join(keys[:most]) + (
            f" and {len(keys) - most} more" if len(keys) > most else ""
        )

    def size(value: Any) -> list[int] | None:
        return list(value.shape) if isinstance(value, torch.Tensor) else None

    reshaped = [
        f"{key} is {size(value)} in the checkpoint, {size(mine[key])} here"
        for key, value in saved.items()
        if key in mine and size(value) != size(mine[key])
    ]
    differences = reshaped[:most]
    if len(reshaped) > most:
        differences[-1] += f" (and {len(reshaped) - most} more of other shapes)"
    missing = [key for key in mine if key not in saved]
    extra = [key for key in saved if key not in mine]
    if missing:
        differences.append(f"{listed(missing)} missing from the checkpoint")
    if extra:
        differences.append(f"{listed(extra)} not in this model")
    return differences


def restore_training_state(
    trainer: Trainer, state: dict[str, Any], path: Any
) -> dict[str, Any] | None:
    """Counters, history, best value, optimizer, scheduler, ``GradScaler`` and random states.

    The optimizer and the scheduler are taken from the checkpoint only where this Trainer's are
    of the same type; each setting of this Trainer that is not used is named in a warning.
    Returns the Trainer's own scheduler state from before (where the checkpoint's replaced it),
    for :func:`reconcile` to size the schedule by the new call's epochs.
    """
    config = state.get("config") or {}
    trainer.epoch = int(state["epoch"])
    trainer.step = int(state.get("step", 0))
    trainer.history = History(state["history"])
    trainer.best_value, trainer.best_epoch = state["best_value"], state["best_epoch"]
    trainer.bad_epochs = int(state["bad_epochs"])
    _restore_optimizer(trainer, state["optimizer"], config, path)
    own_schedule = _restore_scheduler(trainer, state.get("scheduler"), config, path)
    if state.get("scaler") is not None:
        trainer.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return own_schedule


def _restore_optimizer(
    trainer: Trainer, saved: dict[str, Any], config: dict[str, Any], path: Any
) -> None:
    optimizer = trainer.optimizer
    mine = type(optimizer).__name__
    theirs = config.get("optimizer")
    groups = saved.get("param_groups") or [{}]
    missing = set(optimizer_settings(optimizer)) - set(groups[0])
    if (theirs is not None and theirs != mine) or missing:
        lr = optimizer.param_groups[0]["lr"]
        warn(
            f"resume: {path} was trained with {theirs or 'another optimizer'}, this Trainer "
            f"uses {mine}: that state cannot carry over, so {mine} starts fresh with its own "
            f"hyper-parameters (lr {lr:.3g}); the model, epoch, history, scheduler and random "
            "states come from the checkpoint"
        )
        return
    optimizer.load_state_dict(saved)
    saved_settings = config.get("optimizer_defaults") or {}
    ignored = [
        f"{key}={value!r} (checkpoint: {saved_settings[key]!r})"
        for key, value in optimizer_settings(optimizer).items()
        if key in saved_settings and _plain(saved_settings[key]) != value
    ]
    if ignored:
        warn(
            f"resume: the optimizer state comes from {path}, learning rate included, so "
            f"{', '.join(ignored)} given to this Trainer is not used (the learning rate goes on "
            f"from {optimizer.param_groups[0]['lr']:.3g}). To change it, call "
            "trainer.resume(path), set trainer.optimizer.param_groups[i]['lr'], then call "
            "fit() without resume="
        )


def _restore_scheduler(
    trainer: Trainer, saved: Any, config: dict[str, Any], path: Any
) -> dict[str, Any] | None:
    scheduler = trainer.scheduler
    mine = type(scheduler).__name__ if scheduler is not None else None
    theirs = config.get("scheduler", mine if saved is not None else None)
    lr = trainer.optimizer.param_groups[0]["lr"]
    own = None
    if saved is None and scheduler is None:
        return own
    if scheduler is None:
        warn(
            f"resume: the {theirs or 'learning-rate'} schedule of {path} is dropped, since this "
            f"Trainer has no scheduler: the learning rate stays at {lr:.3g}"
        )
    elif saved is None or theirs != mine:
        had = f"a {theirs}" if theirs else "no scheduler"
        warn(
            f"resume: {path} has {had}, this Trainer has a {mine}: it starts from its first "
            f"step now, after epoch {trainer.epoch}, at learning rate {lr:.3g}"
        )
    else:
        own = copy.deepcopy(scheduler.state_dict())
        scheduler.load_state_dict(saved)
    interval = config.get("scheduler_interval", trainer.scheduler_interval)
    if scheduler is not None and interval != trainer.scheduler_interval:
        warn(
            f"resume: the scheduler now steps every {trainer.scheduler_interval}, "
            f"the checkpointed run stepped it every {interval}"
        )
    return own


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):  # tensors of several elements
        return False


def resize_schedule(scheduler: Any, own: dict[str, Any] | None) -> list[str]:
    """Put the settings of this Trainer's scheduler (``own``: its state before the checkpoint's
    was loaded) back, keeping the checkpoint's progress (step count, last learning rates):
    the schedule built for the new call's epochs goes on from the checkpoint's step. Returns the
    public settings it changed, as ``"total_steps=40 (checkpoint: 20)"``."""
    if own is None:
        return []
    state = scheduler.state_dict()
    changed = [
        key
        for key, value in own.items()
        if key not in _SCHEDULER_PROGRESS and key in state and not _same(value, state[key])
    ]
    if not changed:
        return []
    named = [f"{key}={own[key]!r} (checkpoint: {state[key]!r})" for key in changed]
    scheduler.load_state_dict({**state, **{key: own[key] for key in changed}})
    return [text for key, text in zip(changed, named, strict=True) if not key.startswith("_")]


# --------------------------------------------------------------------------- the next fit()
def reconcile(trainer: Trainer, resumed: Resumed, train: Any, epochs: int, monitor: str) -> None:
    """The parts of a resume that depend on the ``fit()`` call: its settings against the
    checkpointed run's, and the train loader's state.

    Args:
        trainer (Trainer): restored by :func:`restore`.
        resumed (Resumed): what :func:`restore` returned.
        train: the train loader of this call.
        epochs (int): the epochs this call trains to.
        monitor (str): the value this call monitors; another than the checkpoint's resets the
            best value and the patience counter.

    Raises:
        ResumeError: the checkpointed run was trained on other data (``config["data"]``).
    """
    config, path = resumed.config, resumed.path

    def say(message: str) -> None:
        warn(f"resume: {message}")

    mine = run_config(trainer, monitor, epochs)
    saved_data = config.get("data")
    if saved_data is not None and mine["data"] is not None:
        differences = data_differences(saved_data, mine["data"])
        if differences:
            raise ResumeError(
                f"{path} was trained on other data ({'; '.join(differences)})",
                "a resumed run goes on with the data it was trained on; train afresh without "
                "resuming, or pass fit(..., data_id=False) to go on with this data on purpose",
            )
    elif mine["data"] is not None and trainer._data_given:
        say(
            f"{path} records no data_id (an older checkpoint, or a run without one), so the "
            "data of this call cannot be checked against the run's"
        )
    planned = config.get("epochs")
    if planned is not None and planned != epochs and epochs > trainer.epoch and trainer.scheduler:
        name = type(trainer.scheduler).__name__
        resized = resize_schedule(trainer.scheduler, resumed.scheduler)
        if resized:
            say(
                f"training to epoch {epochs}; the run of {path} was planned for {planned} "
                f"epochs: this Trainer's {name}, with {', '.join(resized)}, goes on from the "
                f"checkpoint's step {getattr(trainer.scheduler, 'last_epoch', '')}"
            )
        elif resumed.scheduler is not None:
            say(
                f"training to epoch {epochs}; the run of {path} was planned for {planned} "
                f"epochs, with this Trainer's {name} settings, which go on from the checkpoint's "
                "step (build a schedule sized by the epochs, such as OneCycleLR's total_steps, "
                "for the new count)"
            )
        else:
            say(
                f"training to epoch {epochs}; the run of {path} was planned for {planned} epochs "
                f"(this Trainer's {name} starts from its first step)"
            )
    for key in ("loss", "amp", "channels_last", "grad_clip", "patience", "mode"):
        if key in config and config[key] != mine[key]:
            say(f"{key}={mine[key]!r} of this Trainer replaces the checkpoint's {config[key]!r}")
    if trainer.seed is not None and config.get("seed", trainer.seed) != trainer.seed:
        say(
            f"seed={trainer.seed} has no effect: a resumed run goes on with the random states of "
            f"{path} (its run used seed={config['seed']!r})"
        )
    if config.get("monitor") not in (None, monitor):
        say(
            f"this run monitors {monitor}, {path} monitored {config['monitor']}: the best "
            "value and the patience counter start afresh"
        )
        trainer.best_value, trainer.best_epoch, trainer.bad_epochs = None, None, 0
    restore_loader_state(train, resumed.loader, say)
