"""Training: one loop for image tensors and graph batches (:class:`Trainer`), its checkpoints,
metrics and history."""

from gconv.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gconv.train.history import History, plot_history
from gconv.train.metrics import METRICS
from gconv.train.trainer import LOSSES, Trainer, resolve_device, seed_everything

__all__ = [
    "Trainer",
    "History",
    "plot_history",
    "seed_everything",
    "resolve_device",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "LOSSES",
    "METRICS",
]
