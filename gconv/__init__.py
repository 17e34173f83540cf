"""gconv: grid convolution and graph convolution under one roof.

Images are grid graphs, molecules are graphs. gconv offers standard ``Conv2d`` CNNs and
graph convolutions (GCN, direction-aware ``GridConv``) with readouts, one ``Trainer`` for
image tensors and PyG graph batches alike, and one explainability toolkit for both.

Subpackages: :mod:`gconv.data`, :mod:`gconv.layers`, :mod:`gconv.models`, :mod:`gconv.train`,
:mod:`gconv.explain`, plus :mod:`gconv.summary`.
"""

import warnings

__version__ = "0.1.0"

# PyG 2.8 calls ``torch.jit.script`` at import, which torch >= 2.14 answers with a FutureWarning
# on every ``gconv`` command that a user cannot act on; only that message, only during PyG's import.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    import torch_geometric  # noqa: F401

# ``summary`` stays under ``gconv.summary``: re-exporting the function here would shadow the module.
from gconv.train import Trainer

__all__ = ["Trainer", "__version__"]
