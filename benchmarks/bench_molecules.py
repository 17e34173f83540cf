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
SETS = ("chembl", "tpsa", "clogp")
# name -> extra arguments of examples/molecule_gcn.py ("gconv" is the defaults)
GCONV_VARIANTS = {
    "gconv": [],
    "gconv_gcn": ["--conv", "gcn"],
    "gconv_descriptors": ["--descriptors"],
    "gconv_ensemble3": ["--ensemble", "3"],
}
METHODS = ("ridge", "lightgbm", "chemprop", *GCONV_VARIANTS)


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
        return {
            "test_rmse": metrics["test_rmse"],
            "val_rmse": metrics["val_rmse"],
            "detail": f"{metrics['conv']}, readout {metrics['readout']}",
        }

    return run


RUNNERS = {
    "ridge": run_ridge,
    "lightgbm": run_lightgbm,
    "chemprop": run_chemprop,
    **{variant: run_gconv(variant) for variant in GCONV_VARIANTS},
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
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--threads", type=int, default=2, help="CPU threads for every method")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_molecules")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)

    results_file = args.work / "results.jsonl"
    results = [json.loads(line) for line in results_file.open()] if results_file.exists() else []
    done = {(r["set"], r["seed"], r["method"]) for r in results}
    if not args.table_only:
        for name in args.sets:
            for seed in args.seeds:
                path = write_split(name, seed, args.work)
                for method in args.methods:
                    if (name, seed, method) in done or (name, seed, method) in _done(results_file):
                        continue  # also skips what another bench process finished meanwhile
                    t0 = time.perf_counter()
                    try:
                        result = RUNNERS[method](path, seed, args.threads, args.work)
                    except (RuntimeError, subprocess.CalledProcessError) as err:
                        stderr = getattr(err, "stderr", "") or ""
                        print(f"{name} seed {seed} {method}: failed: {err} {stderr[-500:]}")
                        continue
                    result.update(
                        set=name, seed=seed, method=method, seconds=time.perf_counter() - t0
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
    text = table(results, args.sets, [m for m in METHODS if m in args.methods])
    print(text)
    out = ROOT / "benchmarks" / "results" / "molecules.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
