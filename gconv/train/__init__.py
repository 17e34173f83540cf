"""Training: one loop for image tensors and graph batches (:class:`Trainer`), its checkpoints,
metrics and history.

One idea per module: ``trainer.py`` (the loop), ``losses.py`` (losses by name and their target
checks), ``batches.py`` (batching a Dataset, loader state), ``guard.py`` (on-device tally,
roll-back to finite weights), ``resume.py`` (what ``last.pt`` / ``best.pt`` hold and how a resume
takes them back), ``callbacks.py`` (the per-step hook), ``runtime.py`` (device, mixed precision,
seeds), ``checkpoint.py`` (atomic, ``weights_only`` files), ``metrics.py``, ``history.py``,
``memory.py``, ``distributed.py``, ``fingerprint.py`` (what a run was trained on). The Trainer's contract: ``docs/trainer.md``.
"""

from gconv.train.callbacks import StepInfo
from gconv.train.checkpoint import (
    CheckpointError,
    atomic_save,
    atomic_write,
    check_writable_dir,
    load_checkpoint,
    save_checkpoint,
)
from gconv.train.fingerprint import fingerprint
from gconv.train.history import History, plot_history
from gconv.train.losses import LOSSES
from gconv.train.memory import retain_freed_memory
from gconv.train.metrics import METRICS
from gconv.train.resume import ResumeError
from gconv.train.runtime import resolve_device, seed_everything
from gconv.train.trainer import Trainer

__all__ = [
    "Trainer",
    "StepInfo",
    "History",
    "plot_history",
    "seed_everything",
    "resolve_device",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "atomic_save",
    "atomic_write",
    "retain_freed_memory",
    "ResumeError",
    "check_writable_dir",
    "fingerprint",
    "LOSSES",
    "METRICS",
]
