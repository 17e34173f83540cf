r"""``gconv train`` as functions: read and split the data, choose the readout, fit the ensemble and
the baselines, score on the test split once, and write the model directory.

:func:`train` is the whole command (``gconv train`` and ``examples/molecule_gcn.py`` call it with
their parsed options); its parts are public for tests and other front ends: :func:`load_data`,
:func:`split_data`, :func:`choose_readout`, :func:`default_epochs`, :func:`fit_members`.

All model selection (best epoch, baseline choice, readout, calibration) uses the training and
validation splits only; the test split is scored once, at the end.

The readout follows the property (``readout="auto"``): for **regression**, a property made of atom
contributions (a polar surface area, a logP, a molar mass) is a sum over atoms, one set by a few
specific groups (a pIC50) is better read by mean and max; ``auto`` measures, on the training split,
how well a ridge regression on the summed atom features predicts the target (5-fold
cross-validated R², shuffled folds) and takes ``atomwise`` from R² >= 0.5, else ``meanmax``.
``atomwise`` applies the head to every atom's embedding and sums the outputs, so the model is
itself a sum of atom terms (the form of an additive property, and the readout of atomistic
models such as SchNet); its targets are scaled, not centred (:func:`fit_target_scaler`), and
``gconv explain`` can read its terms exactly. It replaced ``norm`` (chemprop's sum of the atom
embeddings / 100, then the head) as ``auto``'s additive choice on validation data only
(``benchmarks/bench_readout.py``, scaffold seeds 0-2; figures in docs/cli.md): its mean
validation RMSE was lower on NCI TPSA, ClogP and the three NCI properties, and equal within the
seeds' spread on Crippen logP of the NCI molecules.
For **classification and multiclass** ``auto`` is ``meanmax``: a class label
(active, toxic, permeable) is set by the presence of groups rather than by their number, which is
the intensive case, and an R² of labels would not measure additivity. Measured on validation
data only (``benchmarks/bench_molecules.py``'s two classification sets, scaffold seeds 0-2):
meanmax's mean validation AUROC was above norm's and sum's on both, by less than a standard
deviation over the seeds, so the rule stays meanmax (docs/cli.md has the figures).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from torch import nn
from torch_geometric.loader import DataLoader

from gconv.data import (
    ATOM_FEATURE_DIM,
    BOND_FEATURE_DIM,
    DESCRIPTOR_NAMES,
    MoleculeDataset,
    MoleculeStore,
    Standardizer,
    StoreDataset,
    chembl_pic50,
    morgan_fingerprints,
    murcko_scaffold,
    nci_tpsa,
    rdkit_descriptors,
    read_embedded,
    write_predictions_csv,
)
from gconv.models import GNN
from gconv.models.gnn import CONVS
from gconv.molecule.baselines import constant_baseline, fingerprint_baseline
from gconv.molecule.calibration import calibrate, set_reference
from gconv.molecule.errors import UsageError
from gconv.molecule.model import MoleculeModel
from gconv.molecule.model_dir import save_model_dir
from gconv.molecule.report import parity_plot, print_results
from gconv.molecule.tasks import TASK_TYPES, Tasks
from gconv.train import (
    CheckpointError,
    ResumeError,
    Trainer,
    check_writable_dir,
    fingerprint,
    load_checkpoint,
    seed_everything,
)

__all__ = [
    "train",
    "load_data",
    "read_split_column",
    "split_data",
    "split_calibration",
    "final_epoch_model",
    "choose_readout",
    "default_epochs",
    "fit_members",
    "fit_target_scaler",
    "check_options",
    "resolve_device",
    "READOUTS",
    "DATASETS",
    "SPLIT_SIZES",
    "ADDITIVE_R2",
    "ADDITIVITY_SAMPLE",
    "STORES",
    "STORE_THRESHOLD_ROWS",
    "default_store_dir",
]

#: Readout names ``train`` takes; ``auto`` chooses (see :func:`choose_readout`).
READOUTS: tuple[str, ...] = ("auto", "atomwise", "norm", "sum", "mean", "max", "meanmax", "attention", "set2set")  # fmt: skip
#: The embedded offline sets (regression), used when no data path is given.
DATASETS: tuple[str, ...] = ("chembl", "tpsa")
SPLIT_SIZES: tuple[float, float, float] = (0.8, 0.1, 0.1)
#: ``auto`` picks atomwise (a sum of atom terms) from this additivity R² up (regression).
ADDITIVE_R2 = 0.5
#: The additivity R² is measured on at most this many training molecules (a seeded sample).
ADDITIVITY_SAMPLE = 100_000
DEFAULT_EPOCHS = 100  # 50 -> 100: TPSA validation RMSE 1.68 -> 1.30, ClogP 0.658 -> 0.622
MIN_STEPS = 1200  # small sets get more epochs: ClogP (160 train, 3 steps/epoch) 0.780 -> 0.631
#: Where the molecules live: ``auto`` (on disk from :data:`STORE_THRESHOLD_ROWS` rows), ``memory``
#: (a :class:`~gconv.data.MoleculeDataset`), ``disk`` (a :class:`~gconv.data.StoreDataset`).
STORES: tuple[str, ...] = ("auto", "memory", "disk")
#: ``--store auto`` featurises a CSV of this many data rows or more to disk: 100k molecules take
#: about 1.2-1.8 GB as in-memory graphs, 60 MB as a store.
STORE_THRESHOLD_ROWS = 100_000


def default_store_dir() -> Path:
    """``$GCONV_STORE_DIR``, else ``$XDG_CACHE_HOME/gconv/stores`` (``~/.cache/gconv/stores``)."""
    if os.environ.get("GCONV_STORE_DIR"):
        return Path(os.environ["GCONV_STORE_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "gconv" / "stores"


def _count_rows(path: str | Path) -> int:
    """Data rows of a CSV file, by its line breaks (a threshold, not a parse)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(0, lines + (last != b"\n") - 1)


# ----------------------------------------------------------------------------- data
def load_data(
    data_path: str | Path | None,
    smiles_column: str = "smiles",
    target_columns: Sequence[str] | None = None,
    dataset: str = "chembl",
    duplicates: str = "error",
    store: str = "auto",
    store_dir: str | Path | None = None,
    num_workers: int = 0,
    descriptors: bool = False,
) -> tuple[MoleculeDataset | StoreDataset, str]:
    """The molecules and targets of a CSV file, or of an embedded set; and the source's name.

    :class:`~gconv.data.MoleculeDataset`'s rules apply: rows that cannot be featurised are
    skipped (``dataset.skipped``); rows holding the same molecule (canonical SMILES) are merged
    into the first (``dataset.duplicates``), so that a molecule is never in two splits, and
    ``duplicates`` decides between different labels: ``"error"``, ``"mean"`` or ``"first"``.

    ``store`` decides where the graphs live: ``"memory"``, ``"disk"`` (a
    :class:`~gconv.data.MoleculeStore` under ``store_dir``, default :func:`default_store_dir`,
    featurised by ``max(1, num_workers)`` processes and reused by later runs on the same bytes;
    with ``descriptors``, RDKit's descriptors are stored beside the graphs), or ``"auto"``: disk
    for a CSV of :data:`STORE_THRESHOLD_ROWS` data rows or more. Both give the same molecules,
    rows, labels and graphs.

    Raises:
        UsageError: an unreadable file, a missing column, a bad target cell, a target column
            without labels, conflicting copies of a molecule, a store of another featuriser.
    """
    if store not in STORES:
        raise UsageError(f"--store must be one of {list(STORES)}, got {store!r}")
    # skipped molecules are printed row by row and listed in metrics.json, not warned about
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            large = (
                store == "auto"
                and data_path is not None
                and _count_rows(data_path) >= STORE_THRESHOLD_ROWS
            )
            if store == "disk" or large:
                root = Path(store_dir) if store_dir is not None else default_store_dir()
                options: dict[str, Any] = {"n_jobs": max(1, num_workers)}
                if descriptors:
                    options["descriptors"] = list(DESCRIPTOR_NAMES)
                if data_path is not None:
                    columns = list(target_columns or [])
                    molecules = MoleculeStore.from_csv(
                        data_path, root, smiles_column, columns, **options
                    )
                    name = str(data_path)
                else:
                    smiles, targets, task = read_embedded(dataset)
                    molecules = MoleculeStore.from_smiles(smiles, targets, [task], root, **options)
                    name = {"chembl": "chembl_pic50", "tpsa": "nci_tpsa"}[dataset]
                rule = duplicates if (data_path is not None or dataset == "tpsa") else "error"
                return StoreDataset(molecules, duplicates=rule), name
            if data_path is not None:
                data = MoleculeDataset.from_csv(
                    data_path,
                    smiles_column,
                    list(target_columns or []),
                    on_error="skip",
                    duplicates=duplicates,
                )
                return data, str(data_path)
            if dataset == "tpsa":
                return nci_tpsa(duplicates=duplicates), "nci_tpsa"
            return chembl_pic50(), "chembl_pic50"
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise UsageError(f"cannot read {data_path}: {err}") from None
        except ValueError as err:
            raise UsageError(str(err)) from None


def read_split_column(path: str | Path, column: str) -> list[str]:
    """The split label of every data row of the CSV (0-based rows, header excluded)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise UsageError(
                f"{path} has no split column {column!r}; its columns are {reader.fieldnames}"
            )
        return [record[column] or "" for record in reader]


def split_data(
    data: MoleculeDataset,
    split: str = "scaffold",
    sizes: Sequence[float] = SPLIT_SIZES,
    seed: int = 0,
    split_labels: Sequence[str] | None = None,
    splits_column: str | None = None,
) -> tuple[MoleculeDataset, MoleculeDataset, MoleculeDataset]:
    """``(train, val, test)``: by one label per input row (``split_labels``, read from
    ``splits_column``), else by a ``"scaffold"`` or ``"random"`` split.

    Raises:
        UsageError: a label that is not train / val / test (naming the row), copies of one
            molecule in two splits, a target column without labels in the training split, or an
            empty part (saying why and what to do).
    """
    if split_labels is not None:
        try:  # one label per CSV row: merged copies of a molecule must share theirs
            parts = data.split_by(split_labels)
        except ValueError as err:
            raise UsageError(f"--splits-column {splits_column}: {err}") from None
    else:
        try:
            parts = data.split(split, sizes=tuple(sizes), seed=seed)
        except ValueError as err:  # a task without labels in the training split
            raise UsageError(str(err)) from None
    empty = [name for name, part in zip(("train", "val", "test"), parts, strict=True) if not part]
    if empty:
        what = f"the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty"
        if split_labels is not None:
            raise UsageError(f"{what}: column {splits_column!r} assigns no molecule to it")
        if split == "scaffold":
            scaffolds = getattr(data, "scaffolds", None)  # a store keeps them
            groups = Counter(
                scaffolds if scaffolds is not None else map(murcko_scaffold, data.smiles)
            )
            largest = groups.most_common(1)[0][1]
            acyclic = ", acyclic" if "" in groups and groups[""] == largest else ""
            raise UsageError(
                f"{what}: the scaffold split puts whole Bemis-Murcko scaffold groups in one "
                f"split, and the {len(data)} molecules share {len(groups)} scaffold(s) (largest "
                f"group: {largest} molecules{acyclic}); use --split random, or a --splits-column"
            )
        raise UsageError(f"{what}: {len(data)} molecules are too few for the split sizes {sizes}")
    return parts


def split_calibration(
    val_part: MoleculeDataset | StoreDataset, seed: int
) -> tuple[MoleculeDataset | StoreDataset, MoleculeDataset | StoreDataset] | None:
    """``(selection, calibration)``: the validation split cut in two by Bemis-Murcko scaffold
    group, so that the calibration half has chosen nothing (the best epoch is chosen on the
    selection half) and shares no scaffold with it. The groups, sorted, are shuffled with seed
    ``1000 + seed`` and the first half of them (rounded down) is the calibration half. ``None``
    where the validation split has fewer than two groups."""
    scaffolds = (
        list(val_part.scaffolds)
        if isinstance(val_part, StoreDataset)
        else [murcko_scaffold(s) for s in val_part.smiles]
    )
    groups = sorted(set(scaffolds))
    if len(groups) < 2:
        return None
    rng = np.random.default_rng(1000 + seed)
    held = set(rng.permutation(groups)[: len(groups) // 2].tolist())
    calibration = [i for i, s in enumerate(scaffolds) if s in held]
    selection = [i for i, s in enumerate(scaffolds) if s not in held]
    return val_part[selection], val_part[calibration]


def choose_readout(
    train: MoleculeDataset, readout: str = "auto", task_type: str = "regression"
) -> tuple[str, float | None]:
    """``readout`` itself, or for ``"auto"`` the module docstring's rule: regression, atomwise
    (the head on every atom, the outputs summed) for a property additive over atoms, else
    meanmax; classification and multiclass, meanmax. Returns ``(readout, additivity R²)`` (R² is
    :obj:`None` where it was not measured).

    Additivity is measured on the training split only: the 5-fold cross-validated R² of a ridge
    regression of the target on the molecule's summed atom features (how many atoms of each
    element, degree, charge, ... it has), averaged over tasks with at least 10 labels. Atom-
    contribution properties (TPSA, molar mass, logP, solubility) score high; a pIC50, set by
    specific interactions, scores low. A training split above :data:`ADDITIVITY_SAMPLE`
    molecules is measured on a seeded sample of that many (the R² of 100,000 molecules is
    precise to the second decimal; memory stays bounded).
    """
    if readout != "auto":
        return readout, None
    if task_type != "regression":
        return "meanmax", None
    if len(train) > ADDITIVITY_SAMPLE:  # a seeded sample: the same R², bounded memory
        keep = np.random.default_rng(0).choice(len(train), ADDITIVITY_SAMPLE, replace=False)
        train = train[np.sort(keep).tolist()]
    if isinstance(train, StoreDataset):  # from the stored codes, no graph built
        counts = train.node_feature_sums()
    else:
        counts = np.stack([graph.x.sum(0).numpy() for graph in train])
    y = train.y.numpy()
    r2_per_task = []
    for t in range(y.shape[1]):
        labelled = ~np.isnan(y[:, t])
        if labelled.sum() < 10 or np.ptp(y[labelled, t]) == 0:
            continue
        model = RidgeCV(alphas=np.logspace(-3, 3, 7))
        folds = KFold(5, shuffle=True, random_state=0)
        r2 = cross_val_score(model, counts[labelled], y[labelled, t], cv=folds, scoring="r2")
        r2_per_task.append(float(np.mean(r2)))
    r2 = float(np.mean(r2_per_task)) if r2_per_task else 0.0
    return ("atomwise" if r2 >= ADDITIVE_R2 else "meanmax"), r2


def fit_target_scaler(y: torch.Tensor | np.ndarray, readout: str) -> Standardizer:
    """The regression targets' scaler, fitted on the training split's ``y``: standardised
    (``(y - mean) / std``), or for the ``atomwise`` readout only scaled (``y / std``,
    ``Standardizer.fit(y, center=False)``): an atomwise model is a sum of per-atom terms with no
    intercept, so a centred target would ask its atoms to share ``-mean`` whatever their number;
    scaled only, the terms times ``std`` add up to the prediction in the target's units."""
    return Standardizer.fit(y, center=readout != "atomwise")


def default_epochs(num_train: int, batch_size: int) -> int:
    """100 epochs, or more on a small training set: at least 1,200 optimizer steps in all (the
    160 training molecules of the ClogP set take 3 steps an epoch, so 400 epochs)."""
    batches_per_epoch = math.ceil(num_train / batch_size)
    return max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS / batches_per_epoch))


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU) or a device that exists here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a device; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but PyTorch sees no CUDA GPU here; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps, but the MPS backend is not available; use --device cpu")
    return device


def _descriptors(
    parts: tuple[MoleculeDataset | StoreDataset, ...], cache_dir: Path
) -> tuple[tuple[MoleculeDataset | StoreDataset, ...], Standardizer]:
    if isinstance(parts[0], StoreDataset):  # stored beside the graphs, scaled when read
        scaler = Standardizer.fit(parts[0].descriptors(), clip=5.0, fill_nan=0.0)
        return tuple(part.with_scaled_descriptors(scaler) for part in parts), scaler
    values = [rdkit_descriptors(part.smiles, cache_dir=cache_dir) for part in parts]
    scaler = Standardizer.fit(values[0], clip=5.0, fill_nan=0.0)  # the training split only
    scaled = tuple(
        part.with_descriptors(scaler.transform(v)) for part, v in zip(parts, values, strict=True)
    )
    return scaled, scaler


def _make_tasks(data: MoleculeDataset, task_type: str, num_classes: int | None) -> Tasks:
    y = data.y.numpy()
    if task_type == "multiclass" and num_classes is None:
        labelled = y[~np.isnan(y)]
        top = float(labelled.max()) if labelled.size else 1.0
        num_classes = max(2, int(top) + 1) if top == round(top) and top >= 0 else 2
    tasks = Tasks(data.target_names, task_type, num_classes)
    tasks.check_labels(y, data.rows)
    return tasks


# ----------------------------------------------------------------------------- training
def fit_members(
    train_set: MoleculeDataset,
    val_set: MoleculeDataset,
    model_kwargs: dict[str, Any],
    loss: Any,
    metrics: Sequence[str],
    *,
    ensemble_size: int,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    device: torch.device,
    output_dir: Path,
    resume: bool = False,
    quiet: bool = False,
    data_id: dict[str, Any] | None = None,
    num_workers: int = 0,
) -> tuple[list[nn.Module], list[int]]:
    """Trains ``ensemble_size`` members (member ``k`` from seed ``seed + k``: its own
    initialisation and batch order) with one-cycle AdamW, keeping each member's best validation
    epoch; checkpoints in ``output_dir/model_<k>/``. Returns the members and their best epochs.

    ``data_id`` (what the run trains on) is kept in ``last.pt``: a ``resume`` on other rows,
    split or seed is refused, as another model is. ``num_workers`` loader processes decode the
    graphs of an on-disk store (not persistent: a resume replays the batches exactly).
    """
    val_loader = DataLoader(val_set, batch_size=256, num_workers=num_workers)
    members, best_epochs = [], []
    for k in range(ensemble_size):
        seed_everything(seed + k)
        model = GNN(**model_kwargs)
        train_loader = DataLoader(
            train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers
        )
        total_steps = epochs * len(train_loader)

        def one_cycle(optimizer, total_steps=total_steps):
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=lr, total_steps=total_steps
            )

        trainer = Trainer(
            model,
            loss=loss,
            optimizer="adamw",
            lr=lr,
            weight_decay=weight_decay,
            metrics=tuple(metrics),
            device=device,
            scheduler=one_cycle,
            scheduler_interval="step",
            checkpoint_dir=output_dir / f"model_{k}",
            monitor="val_loss",
            seed=seed + k,
            progress=not quiet,
            save_every=max(1, epochs // 100),  # at most ~100 last.pt writes: small sets' epochs
        )
        try:
            trainer.fit(train_loader, val_loader, epochs=epochs, resume=resume, data_id=data_id)
        except FileNotFoundError as err:  # --resume of a member that never saved
            raise UsageError(f"--resume: {err}") from None
        except ResumeError as err:  # another model or other data than the run it would continue
            fix = "give the options of that run, or another --output-dir to train afresh"
            raise UsageError(f"--resume: {err.reason}; {fix}") from None
        except CheckpointError as err:  # a torn last.pt
            raise UsageError(f"--resume: {err}") from None
        except ValueError as err:  # the Trainer's checks of data and settings: one line each
            raise UsageError(str(err)) from None
        members.append(trainer.load_best())
        best_epochs.append(trainer.best_epoch)
    return members, best_epochs


def final_epoch_model(model: MoleculeModel, output_dir: Path, model_kwargs: dict) -> MoleculeModel:
    """``model`` with each member's weights of its final epoch (``model_<k>/last.pt``) in place
    of its best epoch's: the model whose validation residuals calibrate the interval, since
    the validation split chose the best epoch but not the final one."""
    members = []
    for k in range(len(model.members)):
        member = GNN(**model_kwargs)
        member.load_state_dict(load_checkpoint(output_dir / f"model_{k}" / "last.pt")["model"])
        members.append(member.to(model.device).eval())
    return MoleculeModel(
        members,
        model.tasks,
        target_scaler=model.target_scaler,
        descriptor_names=model.descriptor_names,
        descriptor_scaler=model.descriptor_scaler,
    )


def _r2_notes(tasks: Tasks, scores: dict) -> dict[str, Any]:
    """Regression: each task's test R² (None where undefined: fewer than two test labels, or all
    equal, where scikit-learn's 0.0 / 1.0 would say nothing of the model) and a note naming those
    tasks."""
    if tasks.task_type != "regression":
        return {}
    per_task = {task: s["r2"] for task, s in scores["per_task"].items()}
    undefined = [task for task, r2 in per_task.items() if r2 is None]
    note = None
    if undefined:
        note = (
            f"test R² undefined for {undefined}: fewer than two test labels, or all equal; "
            "test_r2 averages the other tasks"
        )
    return {"test_r2_per_task": per_task, "test_r2_note": note}


def check_options(options: dict[str, Any]) -> None:
    """The option checks that need no data; messages name the option as the command line does."""

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    if options.get("num_workers") is not None and (
        isinstance(options["num_workers"], bool)
        or not isinstance(options["num_workers"], int)
        or options["num_workers"] < 0
    ):
        raise UsageError(f"--num-workers must be an integer >= 0, got {options['num_workers']!r}")
    for name in ("epochs", "batch_size", "hidden", "layers", "ensemble_size", "limit"):
        value = options[name]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{flag(name)} must be an integer, got {value!r}")
        if value < 1:
            raise UsageError(f"{flag(name)} must be >= 1, got {value}")
    choices = {
        "task_type": TASK_TYPES,
        "conv": CONVS,
        "readout": READOUTS,
        "split": ("scaffold", "random"),
        "dataset": DATASETS,
        "duplicates": ("error", "mean", "first"),
        "store": STORES,
    }
    for name, allowed in choices.items():
        if options[name] not in allowed:
            raise UsageError(f"{flag(name)} must be one of {list(allowed)}, got {options[name]!r}")
    if options["data_path"] is not None and not options["target_columns"]:
        raise UsageError("--data-path needs --target-columns (the column(s) to learn)")
    if options["data_path"] is None:
        if options["splits_column"] is not None:
            raise UsageError(
                "--splits-column needs --data-path (the embedded sets have no split column)"
            )
        if options["task_type"] != "regression":
            raise UsageError(
                f"the embedded sets are regression sets; --task-type {options['task_type']} "
                "needs --data-path"
            )
    sizes = options["split_sizes"]
    if len(sizes) != 3 or any(s < 0 for s in sizes) or not math.isclose(sum(sizes), 1.0):
        raise UsageError(f"--split-sizes must be 3 fractions >= 0 summing to 1, got {list(sizes)}")
    if options["class_balance"] and options["task_type"] == "regression":
        raise UsageError("--class-balance needs --task-type classification or multiclass")
    if options["num_classes"] is not None and (
        options["task_type"] != "multiclass" or options["num_classes"] < 2
    ):
        raise UsageError("--multiclass-num-classes needs --task-type multiclass and a value >= 2")
    weights = options["task_weights"]
    if weights is not None and any(not (w >= 0 and math.isfinite(w)) for w in weights):
        raise UsageError(f"--task-weights must be finite and >= 0, got {list(weights)}")
    if not 0.0 < options["confidence"] < 1.0:
        raise UsageError(f"--confidence must be between 0 and 1, got {options['confidence']}")
    if not 0.0 <= options["dropout"] < 1.0:
        raise UsageError(f"--dropout must be in [0, 1), got {options['dropout']}")
    if any(size < 1 for size in options["head_hidden"]):
        raise UsageError(f"--head-hidden sizes must be >= 1, got {list(options['head_hidden'])}")


# ----------------------------------------------------------------------------- the command
def train(
    data_path: str | Path | None = None,
    *,
    dataset: str = "chembl",
    smiles_column: str = "smiles",
    target_columns: Sequence[str] | None = None,
    task_type: str = "regression",
    num_classes: int | None = None,
    splits_column: str | None = None,
    duplicates: str = "error",
    split: str = "scaffold",
    split_sizes: Sequence[float] = SPLIT_SIZES,
    limit: int | None = None,
    conv: str = "dmpnn",
    readout: str = "auto",
    hidden: int = 128,
    layers: int = 3,
    dropout: float = 0.0,
    batch_norm: bool = False,
    head_hidden: Sequence[int] = (128,),
    descriptors: bool = False,
    ensemble_size: int = 1,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    task_weights: Sequence[float] | None = None,
    class_balance: bool = False,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    output_dir: str | Path = "runs/molecule_gcn",
    baselines: bool | None = None,
    calibration: bool = True,
    calibration_holdout: bool = False,
    confidence: float = 0.9,
    quiet: bool = False,
    store: str = "auto",
    store_dir: str | Path | None = None,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Trains a molecule model and writes its model directory; returns ``metrics.json``'s content.

    The options are ``gconv train``'s (``gconv train --help``; a flag ``--splits-column`` is the
    keyword ``splits_column``), with the same defaults: a D-MPNN (width 128, depth 3, MLP head
    128) with ``readout="auto"``, one-cycle AdamW at peak ``lr`` 2e-3, batch 64, 100 epochs or at
    least 1,200 optimizer steps, scaffold split 80/10/10.

    Writes into ``output_dir``: the model directory (``config.json``, ``scalers.pt``,
    ``model_<k>/best.pt`` and ``last.pt`` per member; ``docs/model-directory.md``),
    ``metrics.json`` (test and validation scores per task and their mean, baselines, settings,
    skipped rows), ``predictions.csv`` (every molecule: SMILES, input row, split, true /
    predicted / ensemble std per task) and, for regression, ``parity.png``.

    Larger than memory: ``store`` (``"auto"``, ``"memory"``, ``"disk"``) and ``store_dir`` as in
    :func:`load_data`; on disk, ``num_workers`` (default 2; 0 in memory) processes featurise the
    store and decode the graphs for the loaders, the Morgan-fingerprint baseline is off unless
    ``baselines=True`` is given (its fingerprints are held in memory), and the results equal the
    in-memory run's (tested).

    Raises:
        UsageError: bad input or options, one line saying what and where.
    """
    options = dict(locals())
    check_options(options)
    t_start = time.perf_counter()
    device_ = resolve_device(device)
    output_dir = Path(output_dir)
    try:  # before the data and the baselines, not after the first epoch
        check_writable_dir(output_dir, "--output-dir")
    except ValueError as err:
        raise UsageError(str(err)) from None
    if resume and not (output_dir / "model_0" / "last.pt").is_file():
        raise UsageError(
            f"--resume: nothing to resume, {output_dir / 'model_0' / 'last.pt'} is missing"
        )

    # ------------------------------------------------------------------------- data
    data, source = load_data(
        data_path,
        smiles_column,
        target_columns,
        dataset,
        duplicates,
        store=store,
        store_dir=store_dir,
        num_workers=2 if num_workers is None else num_workers,
        descriptors=descriptors,
    )
    on_disk = isinstance(data, StoreDataset)
    if num_workers is None:
        num_workers = 2 if on_disk else 0
    if baselines is None:  # the fingerprint baseline holds every fingerprint in memory
        baselines = not on_disk
    if on_disk:
        print(f"store: {data.store.path} ({len(data.store):,} molecules, {num_workers} workers)")
    skipped = [{"row": r, "smiles": s, "reason": why} for r, s, why in data.skipped]
    for item in skipped:
        print(f"row {item['row']}: {item['smiles']}: {item['reason']}")
    merged = [{"row": d.row, "smiles": d.smiles, "kept_row": d.kept_row} for d in data.duplicates]
    if merged:
        print(
            f"{len(merged)} row(s) repeat an earlier row's molecule and were merged into it "
            f"(first: row {merged[0]['row']} -> row {merged[0]['kept_row']}); "
            "listed in metrics.json"
        )
    all_skipped = data.skipped  # --limit draws from the molecules; predictions.csv lists these
    if limit is not None:  # a seeded random subset: the files are sorted by id or size
        keep = np.random.default_rng(seed).permutation(len(data))[:limit]
        data = data[sorted(keep.tolist())]
    if len(data) == 0:
        raise UsageError(f"no molecule of {source} could be featurised ({len(skipped)} skipped)")
    tasks = _make_tasks(data, task_type, num_classes)
    if task_weights is not None and len(task_weights) != tasks.num_tasks:
        raise UsageError(
            f"--task-weights needs one weight per target column ({tasks.num_tasks}: "
            f"{tasks.names}), got {len(task_weights)}"
        )
    labels = read_split_column(data_path, splits_column) if splits_column else None
    parts = split_data(data, split, split_sizes, seed, labels, splits_column)
    train_part, val_part, test_part = parts
    # regression intervals are calibrated on validation molecules that did not choose the epoch
    cal_part = None
    if calibration and calibration_holdout and task_type == "regression":
        halves = split_calibration(val_part, seed)
        if halves is not None:
            val_part, cal_part = halves
            parts = (train_part, val_part, test_part)
    chosen_readout, additivity_r2 = choose_readout(train_part, readout, task_type)
    descriptor_scaler = None
    if descriptors:
        scaled, descriptor_scaler = _descriptors(
            (*parts, *([cal_part] if cal_part is not None else [])), cache_dir=output_dir / "cache"
        )
        parts, cal_part = scaled[:3], (scaled[3] if cal_part is not None else None)
    target_scaler = (
        fit_target_scaler(train_part.y, chosen_readout) if task_type == "regression" else None
    )
    train_set, val_set = (
        (part.standardized(target_scaler) if target_scaler else part) for part in parts[:2]
    )
    descriptor_dim = descriptor_scaler.num_features if descriptor_scaler else 0
    split_name = f"column {splits_column!r}" if splits_column else f"{split} split"
    # what the run trains on, kept in last.pt: a --resume on other rows, split or seed is refused
    rows = fingerprint(
        [
            (p.smiles, p.y)  # a store's SMILES are read lazily, never all held as a list
            for p in (train_part, val_part, test_part, cal_part)
            if p is not None
        ]
    )
    data_id = dict(rows=rows, source=source, split=split_name, seed=seed, limit=limit)
    print(
        f"data: {source}, tasks {tasks.names}"
        + (f" ({task_type})" if task_type != "regression" else "")
        + f", {len(train_part)} train / {len(val_part)} val"
        + (f" + {len(cal_part)} calibration" if cal_part is not None else "")
        + f" / {len(test_part)} test "
        f"({split_name}, seed {seed}), {len(skipped)} skipped, readout {chosen_readout}"
        + (f" (additivity R² {additivity_r2:.2f})" if additivity_r2 is not None else "")
        + (f", {descriptor_dim} descriptors" if descriptor_dim else "")
        + f", {time.perf_counter() - t_start:.1f}s"
    )

    # ------------------------------------------------------------------------- baselines
    t0 = time.perf_counter()
    y_train, y_val, y_test = (part.y.numpy() for part in (train_part, val_part, test_part))
    constant_pred = constant_baseline(tasks, y_train, len(test_part))
    fp_pred, fp_model = None, []
    if baselines:
        fp_train, fp_val, fp_test = (morgan_fingerprints(p.smiles) for p in parts)
        fp_pred, fp_model = fingerprint_baseline(
            tasks, fp_train, y_train, fp_val, y_val, fp_test, seed
        )
    t_baselines = time.perf_counter() - t0

    # ------------------------------------------------------------------------- train
    t0 = time.perf_counter()
    epochs = epochs or default_epochs(len(train_set), batch_size)
    model_kwargs = {
        "in_channels": ATOM_FEATURE_DIM,
        "out_channels": tasks.out_channels,
        "conv": conv,
        "hidden_channels": hidden,
        "num_layers": layers,
        "readout": chosen_readout,
        "dropout": dropout,
        "batch_norm": batch_norm,
        "edge_dim": BOND_FEATURE_DIM,
        "head_hidden": tuple(head_hidden),
        "descriptor_dim": descriptor_dim,
    }
    class_weights = tasks.balance_weights(y_train) if class_balance else None
    if task_type == "regression" and task_weights is None:
        loss: Any = "masked_mse"  # the Trainer's own: the run of gconv 0.1's example, exactly
    else:
        loss = tasks.loss(task_weights, class_weights)
    members, best_epochs = fit_members(
        train_set,
        val_set,
        model_kwargs,
        loss,
        ("rmse", "r2") if task_type == "regression" else (),
        ensemble_size=ensemble_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device=device_,
        output_dir=output_dir,
        resume=resume,
        quiet=quiet,
        data_id=data_id,
        num_workers=num_workers,
    )
    t_train = time.perf_counter() - t0

    # ------------------------------------------------------------------------- evaluate
    model = MoleculeModel(
        members,
        tasks,
        target_scaler=target_scaler,
        descriptor_names=list(DESCRIPTOR_NAMES) if descriptors else None,
        descriptor_scaler=descriptor_scaler,
        smiles_column=smiles_column,
    )
    named_parts = dict(zip(("train", "val", "test"), parts, strict=True))
    if cal_part is not None:
        named_parts["calibration"] = cal_part
    graphs = {name: part.graphs for name, part in named_parts.items()}
    difficulty = None
    if calibration and task_type == "regression":
        # the normalised interval's reference first, so that one pass over each split gives
        # its predictions and its molecules' sigma(x) (a second pass costs an epoch's time)
        set_reference(model, graphs["train"], seed)
        passes = {name: model.predict_with_difficulty(g) for name, g in graphs.items()}
        predictions = {name: (p, s) for name, (p, s, _) in passes.items()}
        difficulty = {name: d for name, (_, _, d) in passes.items()}
    else:
        predictions = {name: model.predict_graphs(g) for name, g in graphs.items()}
    residual_prediction = None
    if calibration and task_type == "regression" and cal_part is None:
        # the validation split chose the best epoch, so the best model's residuals on it are
        # optimistic: the final epoch's (fixed by the schedule, chosen by nothing) calibrate
        final = final_epoch_model(model, output_dir, model_kwargs)
        residual_prediction = final.predict_graphs(graphs["val"])[0]
    calibration_report = calibrate(
        model, predictions, graphs,
        cal_part.y.numpy() if cal_part is not None else y_val, y_test, calibration, confidence,
        seed, "calibration" if cal_part is not None else "val", residual_prediction, difficulty,
    )  # fmt: skip
    intervals = calibration_report.pop("intervals", None)
    test_scores = tasks.scores(y_test, predictions["test"][0])
    val_scores = tasks.scores(y_val, predictions["val"][0])
    constant_scores = tasks.scores(y_test, constant_pred)["mean"]
    fp_scores = (
        tasks.scores(y_test, fp_pred)["mean"]
        if fp_pred is not None
        else dict.fromkeys(tasks.metric_names, float("nan"))
    )

    seconds = time.perf_counter() - t_start
    metrics: dict[str, Any] = {
        "dataset": source,
        "tasks": tasks.names,
        "task_type": task_type,
        "split": splits_column and f"column:{splits_column}" or split,
        **{f"test_{m}": v for m, v in test_scores["mean"].items()},
        **{f"val_{m}": v for m, v in val_scores["mean"].items()},
        "test_scores": test_scores["per_task"],
        **_r2_notes(tasks, test_scores),
        "val_scores": val_scores["per_task"],
        **{f"baseline_mean_{m}": v for m, v in constant_scores.items()},
        **{f"baseline_fp_{m}": v for m, v in fp_scores.items()},
        "baseline_fp_model": fp_model,
        **{
            k: calibration_report[k]
            for k in ("test_coverage", "test_half_width", "test_ece", "test_ece_uncalibrated")
            if k in calibration_report
        },
        "calibration": calibration_report,
        "n_train": len(train_part),
        "n_val": len(val_part),
        "n_calibration": len(cal_part) if cal_part is not None else 0,
        "n_test": len(test_part),
        "n_skipped": len(skipped),
        "skipped": skipped,
        "n_duplicates": len(merged),
        "duplicates": merged,
        "duplicates_rule": duplicates,
        "best_epoch": best_epochs[0],
        "best_epochs": best_epochs,
        "conv": conv,
        "readout": chosen_readout,
        "readout_additivity_r2": additivity_r2,
        "descriptors": descriptor_dim,
        "ensemble": ensemble_size,
        "hidden": hidden,
        "layers": layers,
        "batch_norm": batch_norm,
        "dropout": dropout,
        "weight_decay": weight_decay,
        "head_hidden": list(head_hidden),
        "lr": lr,
        "batch_size": batch_size,
        "task_weights": list(task_weights) if task_weights is not None else None,
        "class_balance": class_balance,
        "target_mean": target_scaler.mean.tolist() if target_scaler else None,
        "target_std": target_scaler.std.tolist() if target_scaler else None,
        "seed": seed,
        "epochs": epochs,
        "seconds": seconds,
        "train_seconds": t_train,
        "baseline_seconds": t_baselines,
        "device": str(device_),
        "store": str(data.store.path) if on_disk else None,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if task_type == "multiclass":
        metrics["num_classes"] = tasks.num_classes

    # ------------------------------------------------------------------------- write
    output_dir.mkdir(parents=True, exist_ok=True)
    readout_info = {
        "name": chosen_readout,
        "option": readout,
        "rule": "regression: atomwise if additivity R2 >= 0.5, else meanmax; "
        "classification: meanmax",
        "additivity_r2": additivity_r2,
    }
    training_info = {
        **{k: v for k, v in options.items() if k not in ("quiet", "resume")},
        "epochs": epochs,
        "best_epochs": best_epochs,
    }
    save_model_dir(
        output_dir,
        model,
        model_kwargs,
        [f"model_{k}/best.pt" for k in range(ensemble_size)],
        readout=readout_info,
        training=training_info,
    )
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_predictions_csv(
        output_dir / "predictions.csv",
        named_parts,
        predictions,
        skipped=all_skipped,
        duplicates=data.duplicates,
        intervals=intervals,
    )
    written = ["metrics.json", "predictions.csv"]
    if task_type == "regression":
        title = f"{source}: test set"
        parity_plot(
            output_dir / "parity.png", y_test, predictions["test"][0], fp_pred, tasks, conv, title
        )
        written.append("parity.png")
    print_results(tasks, conv, ensemble_size, constant_scores, fp_scores, test_scores["mean"],
                  fp_model if baselines else None)  # fmt: skip
    if metrics.get("test_r2_note"):
        print(metrics["test_r2_note"])
    if calibration_report.get("summary"):
        print(f"calibration on validation: {calibration_report['summary']}")
    print(
        f"best epochs {best_epochs} of {epochs}; {t_train:.1f}s training, "
        f"{seconds:.1f}s total on {device_}"
    )
    print(f"wrote {output_dir}/{', '.join(written)}, config.json, model_*/best.pt")
    return metrics
