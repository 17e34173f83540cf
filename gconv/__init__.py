"""gconv: grid convolution and graph convolution under one roof.

Images are grid graphs, molecules are graphs. gconv offers standard ``Conv2d`` CNNs and
graph convolutions (GCN, direction-aware ``GridConv``) with readouts, one ``Trainer`` for
image tensors and PyG graph batches alike, and one explainability toolkit for both.

Subpackages: :mod:`gconv.data`, :mod:`gconv.layers`, :mod:`gconv.models`, :mod:`gconv.train`,
:mod:`gconv.explain`, plus :mod:`gconv.summary`.
"""

__version__ = "0.1.0"

# ``summary`` stays under ``gconv.summary``: re-exporting the function here would shadow the module.
from gconv.train import Trainer

__all__ = ["Trainer", "__version__"]
