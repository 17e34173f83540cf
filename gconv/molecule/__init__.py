"""The molecule application: train, save, load and predict with molecule models — the library
behind ``gconv train / predict / explain / fingerprint``.

One idea a room:

* :mod:`~gconv.molecule.tasks` — task types (regression, binary classification, multiclass):
  outputs, loss, ensemble predictions, metrics per task (:class:`Tasks`);
* :mod:`~gconv.molecule.model` — :class:`MoleculeModel`, an ensemble with its tasks, scalers and
  calibration, predicting lists of SMILES;
* :mod:`~gconv.molecule.model_dir` — the self-describing model directory
  (:func:`save_model_dir`, :func:`load_model`; ``docs/model-directory.md``);
* :mod:`~gconv.molecule.training` — :func:`train`, the whole ``gconv train``, and its parts;
* :mod:`~gconv.molecule.baselines` — the constant and Morgan-fingerprint baselines;
* :mod:`~gconv.molecule.calibration` — prediction intervals and calibrated probabilities;
* :mod:`~gconv.molecule.prediction` — chunked CSV prediction and fingerprints, bad rows kept;
* :mod:`~gconv.molecule.explanation` — per-atom scores and pictures (``gconv explain``);
* :mod:`~gconv.molecule.report` — training-time ``predictions.csv``, parity plot, results table.

Example::

    >>> from gconv.molecule import load_model, train
    >>> train("solubility.csv", target_columns=["logS"], output_dir="runs/sol")
    >>> model = load_model("runs/sol")
    >>> model.predict(["CCO", "c1ccccc1O"])  # {"smiles": ..., "logS": ..., "error": ...}
"""

from gconv.molecule.errors import UsageError
from gconv.molecule.explanation import atom_scores, explain_molecules
from gconv.molecule.model import MoleculeModel
from gconv.molecule.model_dir import load_model, read_config, save_model_dir
from gconv.molecule.prediction import fingerprint_csv, predict_csv
from gconv.molecule.tasks import METRICS, TASK_TYPES, Tasks
from gconv.molecule.training import choose_readout, default_epochs, train

__all__ = [
    "UsageError",
    "MoleculeModel",
    "Tasks",
    "TASK_TYPES",
    "METRICS",
    "train",
    "choose_readout",
    "default_epochs",
    "load_model",
    "read_config",
    "save_model_dir",
    "predict_csv",
    "fingerprint_csv",
    "explain_molecules",
    "atom_scores",
]
