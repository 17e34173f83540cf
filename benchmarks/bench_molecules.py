"""Molecular property prediction: gconv against chemprop, LightGBM and Morgan-FP ridge.

    python benchmarks/bench_molecules.py                       # every set, seeds 0-2, all methods
    python benchmarks/bench_molecules.py --sets chembl --seeds 0 --methods gconv chemprop
    python benchmarks/bench_molecules.py --table-only          # re-print the stored results

Every method sees the same data: for each set and seed, the seeded balanced Bemis-Murcko scaffold
split of ``examples/molecule_gcn.py`` (80 / 10 / 10 %) is written once to
``runs/bench_molecules/<set>_seed<k>.csv`` (columns smiles, y, split) and handed to

* **gconv** — ``examples/molecule_gcn.py --csv ... --split-column split`` with its defaults (and
  the variants below), run as a subprocess so its wall time includes start-up, like chemprop's;
* **chemprop** — ``chemprop train --splits-column split`` with its defaults (D-MPNN, 50 epochs),
  when chemprop is installed; test RMSE from its ``test_predictions.csv``;
* **LightGBM** on Morgan counts (radius 2, 2048) + RDKit 2D descriptors, and **ridge** on Morgan
  bits; their hyperparameters (ridge alpha, LightGBM's number of trees by early stopping) are
  chosen on the validation split.

Sets: ``chembl`` (CHEMBL2321810 pIC50, 1,017 molecules, experimental), ``tpsa`` (4,892 NCI
molecules, topological polar surface area) and ``clogp`` (200 NCI molecules with a ClogP computed
by the NCI's own program, not RDKit's: a third physico-chemical property, small). Results land
in ``runs/bench_molecules/results.jsonl`` (one line per set, seed and method; a rerun skips what
is there) and the table of mean ± sd test RMSE and wall time per set goes to stdout and to
``benchmarks/results/molecules.md``. CPU threads: every method gets the same ``--threads``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "molecule_gcn.py"
REGRESSION_SETS = ("chembl", "tpsa", "clogp")
# The task sets of issue 21: name -> (task type, target columns). Their labels are made from the
# offline data by rules fixed here before any model was run on them (see load_task_set).
TASK_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "chembl_active": ("classification", ("active",)),
    "chembl_potency": ("multiclass", ("potency",)),
    "nci_props": ("regression", ("tpsa", "clogp", "cmr")),
}
SETS = (*REGRESSION_SETS, *TASK_SETS)
# name -> extra arguments of examples/molecule_gcn.py ("gconv" is the defaults)
GCONV_VARIANTS = {
    "gconv": [],
    "gconv_gcn": ["--conv", "gcn"],
    "gconv_descriptors": ["--descriptors"],
    "gconv_ensemble3": ["--ensemble", "3"],
    # the readout measurement for classification (validation AUROC; "gconv" is auto = meanmax)
    "gconv_norm": ["--readout", "norm"],
    "gconv_sum": ["--readout", "sum"],
    # the atomwise readout against norm on the additive regression sets (validation RMSE)
    "gconv_atomwise": ["--readout", "atomwise"],
}
METHODS = ("ridge", "lightgbm", "chemprop", *GCONV_VARIANTS)
# what runs by default: everything on the regression sets, on the task sets the three methods of
# issue 21 (and the readouts compared on the classification sets)
TASK_METHODS = ("lightgbm", "chemprop", "gconv")
READOUT_METHODS = ("gconv", "gconv_norm", "gconv_sum")
#: share of the nci_props cells blanked (seeded, fixed): multi-task with missing labels
BLANK_FRACTION = 0.25
BLANK_SEED = 21


def load_set(name: str):
    """The embedded data set ``name`` as a gconv MoleculeDataset (bad rows skipped)."""
    from gconv.data import MoleculeDataset, chembl_pic50, nci_tpsa
    from gconv.data.datasets import NCI_TPSA_FILE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if name == "chembl":
            return chembl_pic50()
        if name == "tpsa":
            return nci_tpsa()
        return MoleculeDataset.from_sdf(
            NCI_TPSA_FILE.parent / "first_200.props.sdf", ["CLOGP"], on_error="skip"
        )


def write_split(name: str, seed: int, out: Path) -> Path:
    """``<out>/<name>_seed<seed>.csv`` with smiles, y and the scaffold split of the example."""
    path = out / f"{name}_seed{seed}.csv"
    if path.exists():
        return path
    dataset = load_set(name)
    parts = dataset.split("scaffold", sizes=(0.8, 0.1, 0.1), seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "y", "split"])
        for label, part in zip(("train", "val", "test"), parts, strict=True):
            for smiles, y in zip(part.smiles, part.y[:, 0].tolist(), strict=True):
                writer.writerow([smiles, repr(y), label])
    os.replace(tmp, path)
    return path


def load_task_set(name: str):
    """The task set ``name`` of :data:`TASK_SETS` as a MoleculeDataset with its target names.

    The thresholds were fixed, as round numbers with a meaning, before any model was run:

    * ``chembl_active`` (binary): CHEMBL2321810 pIC50 >= 7, an IC50 of 100 nM or better, is
      active (1), else 0 (353 of 1,017 active).
    * ``chembl_potency`` (3 classes): pIC50 < 6 (IC50 above 1 uM) is 0, 6 <= pIC50 < 7 is 1,
      pIC50 >= 7 is 2 (328 / 336 / 353).
    * ``nci_props`` (multi-task regression, missing labels): the 200 NCI molecules of RDKit's
      ``first_200.props.sdf`` with three physico-chemical properties computed by other programs
      than RDKit: ``tpsa`` (Ertl's program, ``first_200.tpsa.csv``, same order; a row whose
      SMILES is not the SDF record's molecule is left missing), ``clogp`` (the SDF's CLOGP) and
      ``cmr`` (Daylight's molar refractivity, the first field of the SDF's CR). Then a seeded
      :data:`BLANK_FRACTION` of the cells is blanked (every molecule keeps one label).
    """
    from gconv.data import MoleculeDataset, chembl_pic50
    from gconv.data.datasets import NCI_TPSA_FILE

    task_type, names = TASK_SETS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if name in ("chembl_active", "chembl_potency"):
            data = chembl_pic50()
            pic50 = data.y[:, 0].numpy()
            if name == "chembl_active":
                labels = (pic50 >= 7.0).astype(float)
            else:
                labels = np.digitize(pic50, [6.0, 7.0]).astype(float)  # <6: 0, [6, 7): 1, >=7: 2
            return MoleculeDataset(data.smiles, labels[:, None], list(names))
        from rdkit import Chem

        nci = NCI_TPSA_FILE.parent
        records = list(Chem.SDMolSupplier(str(nci / "first_200.props.sdf")))
        with open(nci / "first_200.tpsa.csv", newline="") as f:
            tpsa_rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
        smiles, table = [], []
        for record, (tpsa_smiles, tpsa) in zip(records, tpsa_rows, strict=True):
            if record is None:
                continue
            canonical = Chem.MolToSmiles(record)
            other = Chem.MolFromSmiles(tpsa_smiles)
            same = other is not None and Chem.MolToSmiles(other) == canonical
            smiles.append(canonical)
            table.append(
                [
                    float(tpsa) if same else np.nan,
                    float(record.GetProp("CLOGP")),
                    float(record.GetProp("CR").split(";")[0]),
                ]
            )
        y = np.array(table)
        rng = np.random.default_rng(BLANK_SEED)
        blank = rng.random(y.shape) < BLANK_FRACTION
        for row in np.flatnonzero((blank | np.isnan(y)).all(axis=1)):
            keep = np.flatnonzero(~np.isnan(y[row]))
            blank[row, rng.choice(keep)] = False
        y[blank] = np.nan
        return MoleculeDataset(smiles, y, list(names), on_error="skip")


def write_task_split(name: str, seed: int, out: Path) -> Path:
    """``<out>/<name>_seed<seed>.csv``: smiles, the target columns (an empty cell is a missing
    label; classes as integers) and the seeded scaffold split, as :func:`write_split`."""
    path = out / f"{name}_seed{seed}.csv"
    if path.exists():
        return path
    task_type, names = TASK_SETS[name]
    dataset = load_task_set(name)
    parts = dataset.split("scaffold", sizes=(0.8, 0.1, 0.1), seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", *names, "split"])
        for label, part in zip(("train", "val", "test"), parts, strict=True):
            for smiles, row in zip(part.smiles, part.y.tolist(), strict=True):
                cells = [
                    ""
                    if math.isnan(v)
                    else str(int(v) if task_type != "regression" else np.float32(v))
                    for v in row
                ]
                writer.writerow([smiles, *cells, label])
    os.replace(tmp, path)
    return path


def read_task_split(path: Path, names: tuple[str, ...]) -> dict[str, tuple[list[str], np.ndarray]]:
    """split -> (SMILES, labels ``[n, tasks]`` with NaN for a missing label)."""
    rows: dict[str, tuple[list[str], list[list[float]]]] = {
        "train": ([], []),
        "val": ([], []),
        "test": ([], []),
    }
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            rows[record["split"]][0].append(record["smiles"])
            rows[record["split"]][1].append(
                [float(record[n]) if record[n] != "" else np.nan for n in names]
            )
    return {
        k: (s, np.array(y, dtype=float).reshape(len(s), len(names))) for k, (s, y) in rows.items()
    }


def task_scores(task_type: str, names: tuple[str, ...], y: np.ndarray, p: np.ndarray) -> dict:
    """Test scores of one method, computed here the same way for every method from its test
    predictions: ``p`` is ``[n, tasks]`` values (regression) or probabilities of class 1
    (classification), or ``[n, tasks, classes]`` probabilities (multiclass). Per task over its
    labelled molecules: RMSE, or AUROC (multiclass: macro one-vs-rest); and their mean."""
    from sklearn.metrics import roc_auc_score

    metric = "rmse" if task_type == "regression" else "auroc"
    per_task = {}
    for t, name in enumerate(names):
        labelled = ~np.isnan(y[:, t])
        yt, pt = y[labelled, t], p[labelled, t]
        if task_type == "regression":
            per_task[name] = rmse(yt, pt)
        elif task_type == "classification":
            per_task[name] = float(roc_auc_score(yt.astype(int), pt))
        else:
            pt = pt / pt.sum(axis=1, keepdims=True)  # chemprop writes rounded probabilities
            per_task[name] = float(
                roc_auc_score(
                    yt.astype(int), pt, multi_class="ovr", average="macro",
                    labels=list(range(pt.shape[1])),
                )
            )  # fmt: skip
    return {
        f"test_{metric}": float(np.mean(list(per_task.values()))),
        f"test_{metric}_per_task": per_task,
    }


def read_split(path: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    rows: dict[str, tuple[list[str], list[float]]] = {
        "train": ([], []),
        "val": ([], []),
        "test": ([], []),
    }
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            rows[record["split"]][0].append(record["smiles"])
            rows[record["split"]][1].append(float(record["y"]))
    return {k: (s, np.array(y)) for k, (s, y) in rows.items()}


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


# ----------------------------------------------------------------------------- methods
def run_ridge(path: Path, seed: int, threads: int, work: Path) -> dict:
    from sklearn.linear_model import Ridge

    from gconv.data import morgan_fingerprints

    data = read_split(path)
    fp = {k: morgan_fingerprints(s) for k, (s, _) in data.items()}
    best = min(
        (
            rmse(
                data["val"][1], Ridge(alpha=a).fit(fp["train"], data["train"][1]).predict(fp["val"])
            ),
            a,
        )
        for a in (0.1, 1.0, 10.0, 100.0)
    )
    model = Ridge(alpha=best[1]).fit(fp["train"], data["train"][1])
    return {
        "test_rmse": rmse(data["test"][1], model.predict(fp["test"])),
        "detail": f"alpha={best[1]:g}",
    }


def run_lightgbm(path: Path, seed: int, threads: int, work: Path) -> dict:
    import lightgbm

    from gconv.data import morgan_fingerprints, rdkit_descriptors

    data = read_split(path)
    features = {
        k: np.hstack(
            [morgan_fingerprints(s, counts=True), rdkit_descriptors(s, cache_dir=work / "cache")]
        )
        for k, (s, _) in data.items()
    }
    model = lightgbm.LGBMRegressor(
        n_estimators=2000,
        learning_rate=0.03,
        num_leaves=31,
        colsample_bytree=0.3,
        random_state=seed,
        n_jobs=threads,
        verbose=-1,
    )
    model.fit(
        features["train"],
        data["train"][1],
        eval_set=[(features["val"], data["val"][1])],
        callbacks=[lightgbm.early_stopping(100, verbose=False)],
    )
    prediction = model.predict(features["test"], num_iteration=model.best_iteration_)
    return {
        "test_rmse": rmse(data["test"][1], prediction),
        "detail": f"trees={model.best_iteration_}",
    }


def run_chemprop(path: Path, seed: int, threads: int, work: Path) -> dict:
    exe = shutil.which("chemprop")
    if exe is None:
        raise RuntimeError("chemprop is not installed (pip install chemprop)")
    out = work / f"chemprop_{path.stem}"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        exe, "train", "--data-path", str(path), "--smiles-columns", "smiles",
        "--target-columns", "y", "--splits-column", "split", "--task-type", "regression",
        "--output-dir", str(out), "--data-seed", str(seed), "--pytorch-seed", str(seed),
        "--accelerator", "cpu", "--devices", "1", "--num-workers", "0",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True, env=_env(threads))
    predictions = next(out.rglob("test_predictions.csv"))
    smiles, y = read_split(path)["test"]
    with open(predictions, newline="") as f:
        records = list(csv.DictReader(f))
    if [r["smiles"] for r in records] != smiles:  # chemprop keeps the file's row order
        raise RuntimeError(f"{predictions} does not list the test molecules of {path} in order")
    return {
        "test_rmse": rmse(y, [float(r["y"]) for r in records]),
        "detail": "chemprop train defaults",
    }


def run_gconv(variant: str):
    def run(path: Path, seed: int, threads: int, work: Path) -> dict:
        out = work / f"{variant}_{path.stem}"
        command = [
            sys.executable, str(EXAMPLE), "--csv", str(path), "--target-col", "y",
            "--split-column", "split", "--seed", str(seed), "--threads", str(threads),
            "--out", str(out), "--quiet", "--no-baselines", *GCONV_VARIANTS[variant],
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, text=True, env=_env(threads))
        metrics = json.loads((out / "metrics.json").read_text())
        coverage = {k: metrics[k] for k in ("test_coverage",) if metrics.get(k) is not None}
        return {
            "test_rmse": metrics["test_rmse"],
            "val_rmse": metrics["val_rmse"],
            **coverage,
            "detail": f"{metrics['conv']}, readout {metrics['readout']}",
        }

    return run


RUNNERS = {
    "ridge": run_ridge,
    "lightgbm": run_lightgbm,
    "chemprop": run_chemprop,
    **{variant: run_gconv(variant) for variant in GCONV_VARIANTS},
}


# ----------------------------------------------------------------------------- task-set methods
def _features(smiles: list[str], work: Path) -> np.ndarray:
    from gconv.data import morgan_fingerprints, rdkit_descriptors

    return np.hstack(
        [
            morgan_fingerprints(smiles, counts=True),
            rdkit_descriptors(smiles, cache_dir=work / "cache"),
        ]
    )


def run_lightgbm_tasks(name: str, path: Path, seed: int, threads: int, work: Path) -> dict:
    """LightGBM as on the regression sets (Morgan counts + RDKit 2D descriptors, trees by early
    stopping on the validation split), one model per task on its labelled molecules."""
    import lightgbm

    task_type, names = TASK_SETS[name]
    data = read_task_split(path, names)
    features = {k: _features(smiles, work) for k, (smiles, _) in data.items()}
    n_test = len(data["test"][0])
    n_classes = 3 if task_type == "multiclass" else 1
    prediction = np.full((n_test, len(names), n_classes), np.nan)
    trees = []
    for t in range(len(names)):
        train, val = (~np.isnan(data[k][1][:, t]) for k in ("train", "val"))
        options = dict(
            n_estimators=2000, learning_rate=0.03, num_leaves=31, colsample_bytree=0.3,
            random_state=seed, n_jobs=threads, verbose=-1,
        )  # fmt: skip
        model = (
            lightgbm.LGBMRegressor(**options)
            if task_type == "regression"
            else lightgbm.LGBMClassifier(**options)
        )
        model.fit(
            features["train"][train],
            data["train"][1][train, t].astype(int if task_type != "regression" else float),
            eval_set=[
                (
                    features["val"][val],
                    data["val"][1][val, t].astype(int if task_type != "regression" else float),
                )
            ],
            callbacks=[lightgbm.early_stopping(100, verbose=False)],
        )
        trees.append(model.best_iteration_)
        if task_type == "regression":
            prediction[:, t, 0] = model.predict(
                features["test"], num_iteration=model.best_iteration_
            )
        else:
            proba = model.predict_proba(features["test"], num_iteration=model.best_iteration_)
            if task_type == "classification":
                prediction[:, t, 0] = proba[:, 1]
            else:
                prediction[:, t, :] = proba
    p = prediction if task_type == "multiclass" else prediction[:, :, 0]
    return {**task_scores(task_type, names, data["test"][1], p), "detail": f"trees={trees}"}


def run_chemprop_tasks(name: str, path: Path, seed: int, threads: int, work: Path) -> dict:
    """``chemprop train --task-type <type>`` with its defaults. Its test_predictions.csv has the
    SMILES, then per task: the value (regression), the probability of class 1
    (classification), or the predicted class with a ``<task>_prob`` column of comma-separated
    class probabilities (multiclass)."""
    exe = shutil.which("chemprop")
    if exe is None:
        raise RuntimeError("chemprop is not installed (pip install chemprop)")
    task_type, names = TASK_SETS[name]
    out = work / f"chemprop_{path.stem}"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        exe, "train", "--data-path", str(path), "--smiles-columns", "smiles",
        "--target-columns", *names, "--splits-column", "split", "--task-type", task_type,
        "--output-dir", str(out), "--data-seed", str(seed), "--pytorch-seed", str(seed),
        "--accelerator", "cpu", "--devices", "1", "--num-workers", "0",
    ]  # fmt: skip
    if task_type == "multiclass":
        command += ["--multiclass-num-classes", "3"]
    subprocess.run(command, check=True, capture_output=True, text=True, env=_env(threads))
    predictions = next(out.rglob("test_predictions.csv"))
    data = read_task_split(path, names)
    with open(predictions, newline="") as f:
        records = list(csv.DictReader(f))
    if [r["smiles"] for r in records] != data["test"][0]:
        raise RuntimeError(f"{predictions} does not list the test molecules of {path} in order")
    if task_type == "multiclass":
        p = np.array(
            [[[float(v) for v in r[f"{n}_prob"].split(",")] for n in names] for r in records]
        )
    else:
        p = np.array([[float(r[n]) for n in names] for r in records])
    return {
        **task_scores(task_type, names, data["test"][1], p),
        "detail": "chemprop train defaults",
    }


def run_gconv_tasks(variant: str):
    def run(name: str, path: Path, seed: int, threads: int, work: Path) -> dict:
        """``examples/molecule_gcn.py`` with chemprop's flag names and the variant's options; the
        test scores from its predictions.csv (as for the other methods; metrics.json's agree),
        the validation scores, readout, interval coverage and ECE from its metrics.json."""
        task_type, names = TASK_SETS[name]
        out = work / f"{variant}_{path.stem}"
        command = [
            sys.executable, str(EXAMPLE), "--data-path", str(path), "--target-columns", *names,
            "--task-type", task_type, "--splits-column", "split", "--seed", str(seed),
            "--threads", str(threads), "--output-dir", str(out), "--quiet", "--no-baselines",
            *GCONV_VARIANTS[variant],
        ]  # fmt: skip
        if task_type == "multiclass":
            command += ["--multiclass-num-classes", "3"]
        subprocess.run(command, check=True, capture_output=True, text=True, env=_env(threads))
        metrics = json.loads((out / "metrics.json").read_text())
        data = read_task_split(path, names)
        with open(out / "predictions.csv", newline="") as f:
            records = [r for r in csv.DictReader(f) if r["split"] == "test"]
        if [r["smiles"] for r in records] != data["test"][0]:
            raise RuntimeError(f"{out}/predictions.csv does not list the test molecules in order")
        if task_type == "multiclass":
            p = np.array(
                [[[float(r[f"{n}_class_{k}"]) for k in range(3)] for n in names] for r in records]
            )
        else:
            p = np.array([[float(r[f"{n}_pred"]) for n in names] for r in records])
        metric = "rmse" if task_type == "regression" else "auroc"
        keep = ("test_coverage", "test_ece", "test_ece_uncalibrated")
        calibration = metrics.get("calibration") or {}
        if "test_coverage_per_task" in calibration:
            metrics["test_coverage_per_task"] = calibration["test_coverage_per_task"]
            keep += ("test_coverage_per_task",)
        return {
            **task_scores(task_type, names, data["test"][1], p),
            f"val_{metric}": metrics[f"val_{metric}"],
            f"metrics_test_{metric}": metrics[f"test_{metric}"],
            **{k: metrics[k] for k in keep if k in metrics},
            "readout": metrics["readout"],
            "detail": f"{metrics['conv']}, readout {metrics['readout']}",
        }

    return run


TASK_RUNNERS = {
    "lightgbm": run_lightgbm_tasks,
    "chemprop": run_chemprop_tasks,
    **{variant: run_gconv_tasks(variant) for variant in GCONV_VARIANTS},
}


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


# ----------------------------------------------------------------------------- table
def table(results: list[dict], sets: list[str], methods: list[str]) -> str:
    """Markdown table: test RMSE mean ± sd (n, mean seconds per run) per set, and the seconds of
    one run per set summed (a method run on every set only). Methods without results are left
    out."""
    lines = [
        f"Test RMSE, mean ± sd over seeds (n), and wall seconds per run; {date.today()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {_torch_version()}.",
        "",
        "| method | " + " | ".join(sets) + " | s, all sets |",
        "|---|" + "---|" * len(sets) + "---:|",
    ]
    for method in methods:
        cells, total = [], 0.0
        for name in sets:
            runs = [r for r in results if r["set"] == name and r["method"] == method]
            if not runs:
                cells.append("–")
                total = float("nan")
                continue
            errors = np.array([r["test_rmse"] for r in runs])
            seconds = np.mean([r["seconds"] for r in runs])
            total += seconds
            sd = errors.std(ddof=1) if len(runs) > 1 else 0.0
            cells.append(f"{errors.mean():.3f} ± {sd:.3f} (n={len(runs)}, {seconds:.0f} s)")
        if all(cell == "–" for cell in cells):
            continue
        cells.append("–" if np.isnan(total) else f"{total:.0f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _stats(values: list[float]) -> dict:
    values = [float(v) for v in values]
    return {
        "mean": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "values": values,
    }


def task_summary(results: list[dict], sets: list[str]) -> dict:
    """The task sets' results as ``molecules_tasks.json``: per set and method the test metric
    (mean, sd and values over seeds; per task too), the seconds per run; gconv's interval
    coverage and ECE; and the readout measurement (validation AUROC per readout)."""
    summary: dict = {
        "date": str(date.today()),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": _torch_version(),
        },
        "sets": {},
        "methods": {},
        "calibration": {},
        "readout": {},
    }
    for name in sets:
        task_type, names = TASK_SETS[name]
        metric = "rmse" if task_type == "regression" else "auroc"
        runs = [r for r in results if r["set"] == name]
        if not runs:
            continue
        summary["sets"][name] = {"task_type": task_type, "tasks": list(names), "metric": metric}
        methods = {}
        for method in METHODS:
            mine = sorted((r for r in runs if r["method"] == method), key=lambda r: r["seed"])
            if not mine:
                continue
            methods[method] = {
                "seeds": [r["seed"] for r in mine],
                f"test_{metric}": _stats([r[f"test_{metric}"] for r in mine]),
                "per_task": {
                    task: _stats([r[f"test_{metric}_per_task"][task] for r in mine])
                    for task in names
                },
                "seconds": _stats([r["seconds"] for r in mine]),
                "load": _stats([(r["load_before"] + r["load_after"]) / 2 for r in mine]),
            }
            if method in READOUT_METHODS and task_type != "regression":
                summary["readout"].setdefault(name, {})[mine[0]["readout"]] = {
                    "method": method,
                    "val_auroc": _stats([r["val_auroc"] for r in mine]),
                    "test_auroc": methods[method][f"test_{metric}"],
                }
        summary["methods"][name] = methods
        default = sorted((r for r in runs if r["method"] == "gconv"), key=lambda r: r["seed"])
        key = "test_coverage" if task_type == "regression" else "test_ece"
        if default and all(r.get(key) is not None for r in default):
            entry = {key: _stats([r[key] for r in default]), "seeds": [r["seed"] for r in default]}
            if task_type == "regression":
                if all("test_coverage_per_task" in r for r in default):
                    entry["per_task"] = {
                        task: _stats([r["test_coverage_per_task"][task] for r in default])
                        for task in names
                    }
            else:
                entry["test_ece_uncalibrated"] = _stats(
                    [r["test_ece_uncalibrated"] for r in default]
                )
            summary["calibration"][name] = entry
    return summary


def _cell(stats: dict, digits: int = 3) -> str:
    return f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}"


def task_tables(summary: dict) -> str:
    """Markdown tables of :func:`task_summary`: the comparison, the multi-task set per task,
    gconv's calibration and the readout measurement."""
    sets = list(summary["sets"])
    heading = {
        name: f"{name} ({'RMSE, mean of tasks' if info['metric'] == 'rmse' else 'AUROC'})"
        for name, info in summary["sets"].items()
    }
    machine = summary["machine"]
    lines = [
        f"Test scores on seeded scaffold splits, mean ± sd over seeds (n), and wall seconds per "
        f"run; {summary['date']}, {machine['processor']}, {machine['cpu_count']} CPUs shared with "
        f"other jobs (a loaded machine: compare seconds within a column only), one thread per "
        f"method, torch {machine['torch']}. AUROC: higher is better (multiclass: macro "
        f"one-vs-rest); RMSE: lower is better.",
        "",
        "| method | " + " | ".join(heading[n] for n in sets) + " | s, all sets |",
        "|---|" + "---|" * len(sets) + "---:|",
    ]
    shown = [
        m
        for m in ("lightgbm", "chemprop", "gconv")
        if any(m in summary["methods"][n] for n in sets)
    ]
    for method in shown:
        cells, total = [], 0.0
        for name in sets:
            entry = summary["methods"][name].get(method)
            if entry is None:
                cells.append("–")
                total = float("nan")
                continue
            metric = f"test_{summary['sets'][name]['metric']}"
            total += entry["seconds"]["mean"]
            cells.append(
                f"{_cell(entry[metric])} (n={len(entry['seeds'])}, {entry['seconds']['mean']:.0f} s)"
            )
        cells.append("–" if np.isnan(total) else f"{total:.0f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for name in sets:
        info = summary["sets"][name]
        if len(info["tasks"]) < 2:
            continue
        lines += [
            "",
            f"{name}, test {info['metric'].upper()} per task (over its labelled test molecules):",
            "",
            "| method | " + " | ".join(info["tasks"]) + " |",
            "|---|" + "---|" * len(info["tasks"]),
        ]
        for method in shown:
            entry = summary["methods"][name].get(method)
            if entry is not None:
                cells = [_cell(entry["per_task"][t]) for t in info["tasks"]]
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if summary["calibration"]:
        lines += [
            "",
            "gconv's calibration (defaults, fitted on the validation split), on the test split: "
            "the coverage of the 90 % interval (regression) and the expected calibration error, "
            "10 bins, after / before temperature scaling (classification):",
            "",
            "| set | 90 % interval coverage | ECE calibrated | ECE uncalibrated |",
            "|---|---|---|---|",
        ]
        for name, entry in summary["calibration"].items():
            if "test_coverage" in entry:
                per_task = ", ".join(
                    f"{t} {100 * v['mean']:.0f} %" for t, v in entry.get("per_task", {}).items()
                )
                coverage = f"{100 * entry['test_coverage']['mean']:.1f} % ± {100 * entry['test_coverage']['sd']:.1f}"
                if per_task and len(entry["per_task"]) > 1:
                    coverage += f" ({per_task})"
                if "relative_width" in entry:  # from bench_calibration.py
                    coverage += (
                        f", n={len(entry['seeds'])}, half-width "
                        f"{entry['relative_width']['mean']:.2f}x the constant interval's"
                    )
                    rerun = " (bench_calibration.py)"
                else:
                    rerun = " (a rerun of gconv's defaults)" if "source" in entry else ""
                lines.append(f"| {name}{rerun} | {coverage} | – | – |")
            else:
                lines.append(
                    f"| {name} | – | {_cell(entry['test_ece'])} | "
                    f"{_cell(entry['test_ece_uncalibrated'])} |"
                )
    if summary["readout"]:
        readouts = sorted({r for per_set in summary["readout"].values() for r in per_set})
        lines += [
            "",
            "The classification readout, measured on the validation split only (gconv's "
            "defaults but the readout; mean ± sd over seeds of the validation AUROC):",
            "",
            "| readout | " + " | ".join(summary["readout"]) + " | mean |",
            "|---|" + "---|" * len(summary["readout"]) + "---|",
        ]
        for readout in readouts:
            values = [summary["readout"][n].get(readout) for n in summary["readout"]]
            cells = [_cell(v["val_auroc"]) if v else "–" for v in values]
            mean = (
                f"{np.mean([v['val_auroc']['mean'] for v in values]):.3f}" if all(values) else "–"
            )
            lines.append(f"| {readout} | " + " | ".join(cells) + f" | {mean} |")
    for note in summary.get("notes", []):  # what changed since the runs, kept with the numbers
        lines += ["", note]
    return "\n".join(lines)


def _torch_version() -> str:
    import torch

    return torch.__version__


def _done(results_file: Path) -> set[tuple[str, int, str]]:
    if not results_file.exists():
        return set()
    return {(r["set"], r["seed"], r["method"]) for r in map(json.loads, results_file.open())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        help="default: all on the regression sets; lightgbm, chemprop and gconv on the task "
        "sets, and the gconv readouts compared on the classification sets",
    )
    p.add_argument("--threads", type=int, default=2, help="CPU threads for every method")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_molecules")
    p.add_argument("--table-only", action="store_true")
    p.add_argument(
        "--table-dir",
        type=Path,
        default=ROOT / "benchmarks" / "results",
        help="where the tables go (molecules.md, molecules_tasks.md and .json)",
    )
    p.add_argument(
        "--calibration-from",
        type=Path,
        nargs="*",
        default=[],
        help="other results.jsonl files whose gconv runs on the regression sets add their interval "
        "coverage to the calibration table (a rerun of gconv's defaults for its coverage, kept "
        "apart so that the regression table keeps its runs)",
    )
    args = p.parse_args(argv)

    results_file = args.work / "results.jsonl"
    results = [json.loads(line) for line in results_file.open()] if results_file.exists() else []
    done = {(r["set"], r["seed"], r["method"]) for r in results}
    if not args.table_only:
        for name in args.sets:
            for seed in args.seeds:
                if name in TASK_SETS:
                    path = write_task_split(name, seed, args.work)
                    methods = args.methods or (
                        READOUT_METHODS[:1] + TASK_METHODS[:2] + READOUT_METHODS[1:]
                        if TASK_SETS[name][0] != "regression"
                        else TASK_METHODS
                    )
                    methods = [m for m in methods if m in TASK_RUNNERS]
                else:
                    path = write_split(name, seed, args.work)
                    methods = args.methods or METHODS
                for method in methods:
                    if (name, seed, method) in done or (name, seed, method) in _done(results_file):
                        continue  # also skips what another bench process finished meanwhile
                    t0 = time.perf_counter()
                    load = os.getloadavg()[0]
                    try:
                        if name in TASK_SETS:
                            result = TASK_RUNNERS[method](name, path, seed, args.threads, args.work)
                        else:
                            result = RUNNERS[method](path, seed, args.threads, args.work)
                    except (RuntimeError, ImportError, subprocess.CalledProcessError) as err:
                        stderr = getattr(err, "stderr", "") or ""
                        print(f"{name} seed {seed} {method}: failed: {err} {stderr[-500:]}")
                        continue
                    result.update(
                        set=name,
                        seed=seed,
                        method=method,
                        seconds=time.perf_counter() - t0,
                        load_before=load,
                        load_after=os.getloadavg()[0],
                    )
                    print(json.dumps(result))
                    with results_file.open("a") as f:
                        f.write(json.dumps(result) + "\n")
                    results.append(result)
    if results_file.exists():  # everything on record, the latest run per (set, seed, method)
        latest = {
            (r["set"], r["seed"], r["method"]): r for r in map(json.loads, results_file.open())
        }
        results = list(latest.values())
    out = args.table_dir
    out.mkdir(parents=True, exist_ok=True)
    methods = args.methods or METHODS
    regression = [n for n in args.sets if n in REGRESSION_SETS]
    # each table is rewritten only from results of its own sets, so a run of the task sets
    # leaves molecules.md (the regression table) as it was
    if any(r["set"] in regression for r in results):
        text = table(results, regression, [m for m in METHODS if m in methods])
        print(text)
        (out / "molecules.md").write_text(text + "\n")
    tasks = [n for n in args.sets if n in TASK_SETS]
    if any(r["set"] in tasks for r in results):
        summary = task_summary(results, tasks)
        for other in args.calibration_from:
            rows = {
                (r["set"], r["seed"], r["method"]): r
                for r in map(json.loads, other.open())
                if r["method"] == "gconv" and r["set"] in REGRESSION_SETS and "test_coverage" in r
            }
            for name in REGRESSION_SETS:
                runs = sorted(
                    (r for r in rows.values() if r["set"] == name), key=lambda r: r["seed"]
                )
                if runs:
                    summary["calibration"][name] = {
                        "test_coverage": _stats([r["test_coverage"] for r in runs]),
                        "seeds": [r["seed"] for r in runs],
                        "source": str(other.relative_to(ROOT) if other.is_absolute() else other),
                    }
        text = task_tables(summary)
        print(text)
        (out / "molecules_tasks.md").write_text(text + "\n")
        (out / "molecules_tasks.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
