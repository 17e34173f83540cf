"""Prediction intervals of ``gconv train`` on scaffold splits: which calibration covers 90 %?

    python benchmarks/bench_calibration.py --train            # train once per (set, seed), save
    python benchmarks/bench_calibration.py                    # evaluate the calibrations post hoc

Step 1 (``--train``, the expensive part, one process, one thread): for each regression set of
``bench_molecules.py`` (``chembl``, ``tpsa``, ``clogp`` and the multi-task ``nci_props``, the same
seeded scaffold split files) and each seed, ``gconv train`` with its defaults (no baselines),
then, from the model directory, saved in ``runs/bench_calibration/<set>_seed<k>/artefacts.npz``:
the labels and predictions of the three splits, member 0's molecule embeddings (the head's input)
and each molecule's Morgan-fingerprint Tanimoto similarities to its nearest training molecules,
and the Bemis-Murcko scaffold of every validation molecule.

Step 2 (the default): every candidate calibration is fitted on the validation split of each saved
run and rated on its test split (coverage of the 90 % interval, mean half-width relative to
today's); and, on the validation side only, by scaffold-grouped cross-validation inside the
validation split (fit on the other folds, cover the held-out fold) — the evidence the choice
rests on. Tables to stdout and to ``benchmarks/results/calibration.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_molecules import TASK_SETS, write_split, write_task_split  # noqa: E402

SETS = ("clogp", "chembl", "nci_props", "tpsa")
WORK = ROOT / "runs" / "bench_calibration"
REFERENCE = "emb5"  # the difficulty whose terciles rate conditional coverage
NEIGHBOURS = 10  # nearest training molecules kept per molecule (Tanimoto and embedding)


def _split_file(name: str, seed: int) -> tuple[Path, list[str]]:
    if name in TASK_SETS:
        return write_task_split(name, seed, WORK / "splits"), list(TASK_SETS[name][1])
    return write_split(name, seed, WORK / "splits"), ["y"]


def _tanimoto_neighbours(train_smiles, smiles, k: int) -> np.ndarray:
    """``[len(smiles), k]`` Tanimoto similarities (Morgan radius 2, 2048 bits) of each molecule to
    its ``k`` most similar training molecules, most similar first."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    train_fps = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in train_smiles]
    result = np.zeros((len(smiles), k))
    for i, s in enumerate(smiles):
        sims = np.array(
            DataStructs.BulkTanimotoSimilarity(generator.GetFingerprint(Chem.MolFromSmiles(s)),
                                               train_fps)
        )  # fmt: skip
        result[i] = -np.sort(-sims)[:k]
    return result


def _holdout_split_file(name: str, seed: int) -> tuple[Path, list[str], np.ndarray]:
    """The split file of ``name`` / ``seed`` with its validation split halved by scaffold groups
    (seeded): half A stays ``val`` (model selection), half B is written as ``test`` (so training
    never sees it) and comes back, marked by the returned boolean mask over the file's rows, as a
    calibration set that chose nothing."""
    import csv

    from gconv.data import murcko_scaffold

    path, targets = _split_file(name, seed)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    val = [i for i, r in enumerate(rows) if r["split"] == "val"]
    scaffolds = sorted({murcko_scaffold(rows[i]["smiles"]) for i in val})
    rng = np.random.default_rng(1000 + seed)
    half_b = set(rng.permutation(scaffolds)[: len(scaffolds) // 2].tolist())
    held = np.zeros(len(rows), dtype=bool)
    for i in val:
        if murcko_scaffold(rows[i]["smiles"]) in half_b:
            rows[i]["split"] = "test"
            held[i] = True
    out = WORK / "splits" / f"{path.stem}_holdout.csv"
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out, targets, held


def train_runs(sets, seeds, ensemble_size: int = 1, holdout: bool = False) -> None:
    import torch

    from gconv.data import murcko_scaffold
    from gconv.molecule import load_model, train
    from gconv.molecule.training import load_data, read_split_column, split_data

    torch.set_num_threads(1)
    for seed in seeds:
        for name in sets:
            tag = f"{name}_seed{seed}" + (f"_ens{ensemble_size}" if ensemble_size > 1 else "")
            tag += "_holdout" if holdout else ""
            out = WORK / tag
            if (out / "artefacts.npz").exists():
                continue
            if holdout:
                path, targets, held = _holdout_split_file(name, seed)
            else:
                path, targets = _split_file(name, seed)
            t0, c0 = time.perf_counter(), time.process_time()
            metrics = train(
                path, target_columns=targets, splits_column="split", seed=seed,
                output_dir=out, baselines=False, quiet=True, ensemble_size=ensemble_size,
                calibration_holdout=False,  # the bench's own --holdout is the file's split
            )  # fmt: skip
            model = load_model(out)
            data, _ = load_data(path, "smiles", targets, "chembl", "error")
            parts = split_data(data, "scaffold", (0.8, 0.1, 0.1), seed,
                               read_split_column(path, "split"), "split")  # fmt: skip
            arrays = {}
            for split, part in zip(("train", "val", "test"), parts, strict=True):
                prediction, std = model.predict_graphs(part.graphs)
                arrays[f"y_{split}"] = part.y.numpy()
                arrays[f"pred_{split}"] = prediction
                arrays[f"std_{split}"] = std
                arrays[f"emb_{split}"] = model.embed(part.graphs).numpy()
                if split != "train":
                    arrays[f"tanimoto_{split}"] = _tanimoto_neighbours(
                        parts[0].smiles, part.smiles, NEIGHBOURS
                    )
            if holdout:  # the "test" part holds validation half B, then the real test split
                test_rows = np.asarray(parts[2].rows).reshape(-1)
                arrays["held_test"] = held[test_rows]
            arrays["scaffold_val"] = np.array([murcko_scaffold(s) for s in parts[1].smiles])
            arrays["scaffold_test"] = np.array([murcko_scaffold(s) for s in parts[2].smiles])
            np.savez_compressed(out / "artefacts.npz", **arrays)
            info = {
                "set": name, "seed": seed, "ensemble": ensemble_size, "holdout": holdout,
                "best_epochs": metrics["best_epochs"], "epochs": metrics["epochs"],
                "test_coverage": metrics.get("test_coverage"),
                "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            }  # fmt: skip
            (out / "run.json").write_text(json.dumps(info) + "\n")
            print(json.dumps(info), flush=True)


# ----------------------------------------------------------------------------- post hoc
def final_epoch_val_prediction(name: str, seed: int, out: Path) -> np.ndarray:
    """The validation predictions of the run's final-epoch ensemble (``model_<k>/last.pt``), as
    ``gconv train`` calibrates with them; cached in ``<run>/pred_val_final.npy``."""
    cache = out / "pred_val_final.npy"
    if cache.exists():
        return np.load(cache)
    from gconv.molecule import load_model
    from gconv.molecule.training import final_epoch_model, load_data, read_split_column, split_data

    path, targets = _split_file(name, seed)
    data, _ = load_data(path, "smiles", targets, "chembl", "error")
    parts = split_data(data, "scaffold", (0.8, 0.1, 0.1), seed,
                       read_split_column(path, "split"), "split")  # fmt: skip
    model = load_model(out)
    final = final_epoch_model(model, out, model.config["model"]["kwargs"])
    prediction = final.predict_graphs(parts[1].graphs)[0]
    np.save(cache, prediction)
    return prediction


def load_runs(sets, seeds, ensemble_size: int = 1) -> list[dict]:
    runs = []
    for name in sets:
        for seed in seeds:
            tag = f"{name}_seed{seed}" + (f"_ens{ensemble_size}" if ensemble_size > 1 else "")
            path = WORK / tag / "artefacts.npz"
            if path.exists():
                arrays = dict(np.load(path))
                arrays["pred_val_final"] = final_epoch_val_prediction(name, seed, WORK / tag)
                runs.append({"set": name, "seed": seed, **arrays})
    return runs


def knn_distance(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Mean Euclidean distance of each query row to its ``k`` nearest ``reference`` rows."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=min(k, len(reference))).fit(reference)
    distances, _ = index.kneighbors(query)
    return distances.mean(axis=1)


def difficulties(run: dict) -> dict[str, dict[str, np.ndarray]]:
    """Difficulty measures sigma(x) > 0 of the validation and test molecules (larger: harder)."""
    result = {}
    for split in ("val", "test"):
        result.setdefault("const", {})[split] = np.ones(len(run[f"y_{split}"]))
        for k in (1, 5, 10):
            result.setdefault(f"emb{k}", {})[split] = knn_distance(
                run["emb_train"], run[f"emb_{split}"], k
            )
        for k in (1, 5):
            result.setdefault(f"tanimoto{k}", {})[split] = (
                1.0 - run[f"tanimoto_{split}"][:, :k].mean(axis=1) + 1e-3
            )
        if run[f"std_{split}"].any():
            result.setdefault("ensemble_std", {})[split] = run[f"std_{split}"].mean(axis=1) + 1e-9
    # softened: sigma + beta * its median over the validation molecules (beta = 1: halfway
    # between the constant and the normalised interval)
    for beta in (0.5, 1.0):
        median = np.median(result["emb5"]["val"])
        result[f"emb5+{beta:g}med"] = {
            split: result["emb5"][split] + beta * median for split in ("val", "test")
        }
    return result


def conformal_quantile(scores: np.ndarray, confidence: float) -> float:
    scores = np.sort(scores)
    n = len(scores)
    k = math.ceil((n + 1) * confidence)
    return float(scores[min(k, n) - 1])


def evaluate(runs: list[dict], confidence: float = 0.9, folds: int = 5) -> list[dict]:
    """One row per (set, seed, task, method): the test coverage and mean half-width of the
    interval fitted on the whole validation split; and, on validation only, the coverage of
    a scaffold-grouped ``folds``-fold cross-validation inside it, the Spearman correlation
    of |residual| with sigma, and the cross-validated coverage in the hardest and easiest
    third of sigma (conditional coverage)."""
    from scipy.stats import spearmanr
    from sklearn.model_selection import GroupKFold

    rows = []
    for run in runs:
        sigma = difficulties(run)
        for t in range(run["y_val"].shape[1]):
            lv = ~np.isnan(run["y_val"][:, t])
            lt = ~np.isnan(run["y_test"][:, t])
            r_val = np.abs(run["y_val"][lv, t] - run["pred_val"][lv, t])
            r_test = np.abs(run["y_test"][lt, t] - run["pred_test"][lt, t])
            groups = run["scaffold_val"][lv]
            r_final = np.abs(run["y_val"][lv, t] - run["pred_val_final"][lv, t])
            for method, s in [*sigma.items(), *((f"{m}, final epoch", s) for m, s in sigma.items()
                                                if m in ("const", "emb5"))]:  # fmt: skip
                s_val, s_test = s["val"][lv], s["test"][lt]
                residual = r_final if method.endswith("final epoch") else r_val
                q = conformal_quantile(residual / s_val, confidence)
                half = q * s_test
                # scaffold-grouped cross-validation inside the validation split
                inside = np.zeros(lv.sum(), dtype=bool)
                n_folds = min(folds, len(np.unique(groups)))
                for fit, held in GroupKFold(n_splits=n_folds).split(r_val, groups=groups):
                    q_fold = conformal_quantile(residual[fit] / s_val[fit], confidence)
                    inside[held] = residual[held] <= q_fold * s_val[held]
                # terciles of one reference difficulty (emb5) for every method, so that the
                # constant interval's conditional coverage is measured too
                ref_val, ref_test = sigma[REFERENCE]["val"][lv], sigma[REFERENCE]["test"][lt]
                hard = ref_val >= np.quantile(ref_val, 2 / 3)
                easy = ref_val <= np.quantile(ref_val, 1 / 3)
                hard_test = ref_test >= np.quantile(ref_val, 2 / 3)
                rows.append({
                    "set": run["set"], "seed": run["seed"], "task": t, "method": method,
                    "test_coverage": float(np.mean(r_test <= half)),
                    "test_half_width": float(np.mean(half)),
                    "cv_coverage": float(inside.mean()),
                    "cv_coverage_hard": float(inside[hard].mean()),
                    "cv_coverage_easy": float(inside[easy].mean()),
                    "test_coverage_hard": float(np.mean((r_test <= half)[hard_test]))
                    if hard_test.any() else math.nan,
                    "spearman_val": float(spearmanr(r_val, s_val)[0]) if not method.startswith("const") else math.nan,
                    "spearman_test": float(spearmanr(r_test, s_test)[0]) if not method.startswith("const") else math.nan,
                    "val_rmse": float(np.sqrt(np.mean(r_val**2))),
                    "test_rmse": float(np.sqrt(np.mean(r_test**2))),
                    "val_q": conformal_quantile(r_val, confidence),
                    "test_q": float(np.quantile(r_test, confidence)),
                    "n_val": int(lv.sum()), "n_test": int(lt.sum()),
                })  # fmt: skip
    return rows


def summarise(rows: list[dict]) -> dict:
    """Per set and method, over seeds (a multi-task set's seed value: its tasks' mean): mean and
    sd of each measure; width relative to the constant interval of the same run and task."""
    const = {(r["set"], r["seed"], r["task"]): r for r in rows if r["method"] == "const"}
    summary: dict = {}
    for r in rows:
        r["relative_width"] = (
            r["test_half_width"] / const[(r["set"], r["seed"], r["task"])]["test_half_width"]
        )
    keys = ("test_coverage", "relative_width", "cv_coverage", "cv_coverage_hard",
            "cv_coverage_easy", "test_coverage_hard", "spearman_val", "spearman_test")  # fmt: skip
    for name in dict.fromkeys(r["set"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["set"] == name and r["method"] == method]
            if not mine:
                continue
            entry = {}
            for key in keys:
                per_seed = {}
                for r in mine:
                    per_seed.setdefault(r["seed"], []).append(r[key])
                values = [float(np.nanmean(v)) for v in per_seed.values()]
                entry[key] = {
                    "mean": float(np.nanmean(values)),
                    "sd": float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0,
                    "values": values,
                }
            entry["seeds"] = sorted({r["seed"] for r in mine})
            summary.setdefault(name, {})[method] = entry
    return summary


def report(summary: dict) -> str:
    lines = [
        "| set | method | test coverage | half-width / constant | val CV coverage | val CV hard "
        "third | val CV easy third | Spearman(|r|, sigma) val |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, methods in summary.items():
        for method, e in methods.items():

            def cell(key, scale=100, digits=1, e=e):
                return f"{scale * e[key]['mean']:.{digits}f} ± {scale * e[key]['sd']:.{digits}f}"

            lines.append(
                f"| {name} | {method} | {cell('test_coverage')} | {cell('relative_width', 1, 2)} | "
                f"{cell('cv_coverage')} | {cell('cv_coverage_hard')} | {cell('cv_coverage_easy')} "
                f"| {cell('spearman_val', 1, 2)} |"
            )
    return "\n".join(lines)


def evaluate_holdout(sets, seeds, confidence: float = 0.9, ensemble_size: int = 1) -> list[dict]:
    """The calibration-set experiment, on the runs trained with validation half A choosing the
    epoch: per (set, seed, task, method, calibration half), the test coverage and mean
    half-width of the interval fitted on half A (data that chose the model) or half B (data that
    chose nothing), and the half-width relative to today's interval (constant, fitted on the
    whole validation split of the default run of the same seed). Plus the RMSE of each part."""
    rows = []
    for name in sets:
        for seed in seeds:
            tag = f"{name}_seed{seed}" + (f"_ens{ensemble_size}" if ensemble_size > 1 else "")
            path = WORK / f"{tag}_holdout" / "artefacts.npz"
            default = WORK / f"{name}_seed{seed}" / "artefacts.npz"
            if not path.exists() or not default.exists():
                continue
            a, d = dict(np.load(path)), dict(np.load(default))
            held = a["held_test"]
            # the parts: A (val), B (held "test" rows), the real test split
            part = {
                "A": {k: a[f"{k}_val"] for k in ("y", "pred", "std", "emb", "tanimoto")},
                "B": {k: a[f"{k}_test"][held] for k in ("y", "pred", "std", "emb", "tanimoto")},
                "test": {k: a[f"{k}_test"][~held] for k in ("y", "pred", "std", "emb", "tanimoto")},
            }
            sigma = {"const": {}, "emb5": {}, "tanimoto5": {}}
            if ensemble_size > 1:
                sigma["ensemble_std"] = {}
            for key, p in part.items():
                sigma["const"][key] = np.ones(len(p["y"]))
                sigma["emb5"][key] = knn_distance(a["emb_train"], p["emb"], 5)
                sigma["tanimoto5"][key] = 1.0 - p["tanimoto"][:, :5].mean(axis=1) + 1e-3
                if ensemble_size > 1:
                    sigma["ensemble_std"][key] = p["std"]  # per task, below
            for t in range(a["y_val"].shape[1]):
                lv = ~np.isnan(d["y_val"][:, t])
                today = conformal_quantile(
                    np.abs(d["y_val"][lv, t] - d["pred_val"][lv, t]), confidence
                )
                labelled = {k: ~np.isnan(p["y"][:, t]) for k, p in part.items()}
                residual = {k: np.abs(p["y"][labelled[k], t] - p["pred"][labelled[k], t])
                            for k, p in part.items()}  # fmt: skip
                for method, s_all in sigma.items():
                    s_ = {k: (v[:, t] if v.ndim == 2 else v)[labelled[k]] + (1e-9 if method == "ensemble_std" else 0)
                          for k, v in s_all.items()}  # fmt: skip
                    for fitted_on in ("A", "B"):
                        if not len(residual[fitted_on]) or not len(residual["test"]):
                            continue
                        q = conformal_quantile(residual[fitted_on] / s_[fitted_on], confidence)
                        half = q * s_["test"]
                        rows.append({
                            "set": name, "seed": seed, "task": t, "method": method,
                            "fitted_on": fitted_on,
                            "test_coverage": float(np.mean(residual["test"] <= half)),
                            "test_half_width": float(np.mean(half)),
                            "relative_width": float(np.mean(half) / today),
                            "n_cal": int(len(residual[fitted_on])),
                            "rmse_A": float(np.sqrt(np.mean(residual["A"] ** 2))),
                            "rmse_B": float(np.sqrt(np.mean(residual["B"] ** 2))) if len(residual["B"]) else math.nan,
                            "rmse_test": float(np.sqrt(np.mean(residual["test"] ** 2))),
                            "rmse_test_default": float(np.sqrt(np.nanmean(
                                (d["y_test"][:, t] - d["pred_test"][:, t]) ** 2))),
                        })  # fmt: skip
    return rows


def summarise_holdout(rows: list[dict]) -> dict:
    """Per set, method and calibration half: mean and sd over seeds (a multi-task set's seed
    value: its tasks' mean) of the test coverage and the relative half-width."""
    summary: dict = {}
    for name in dict.fromkeys(r["set"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows):
            for fitted_on in ("A", "B"):
                mine = [r for r in rows if r["set"] == name and r["method"] == method
                        and r["fitted_on"] == fitted_on]  # fmt: skip
                if not mine:
                    continue
                entry = {}
                for r in mine:
                    r["rmse_test_over_default"] = r["rmse_test"] / r["rmse_test_default"]
                keys = ("test_coverage", "relative_width", "rmse_A", "rmse_B", "rmse_test",
                        "rmse_test_over_default")  # fmt: skip
                for key in keys:
                    per_seed: dict = {}
                    for r in mine:
                        per_seed.setdefault(r["seed"], []).append(r[key])
                    values = [float(np.nanmean(v)) for v in per_seed.values()]
                    entry[key] = {"mean": float(np.mean(values)),
                                  "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                                  "values": values}  # fmt: skip
                entry["seeds"] = sorted({r["seed"] for r in mine})
                summary.setdefault(name, {})[f"{method}, half {fitted_on}"] = entry
    return summary


def report_holdout(summary: dict) -> str:
    lines = [
        "| set | method, calibrated on | test coverage | half-width / today's |",
        "|---|---|---|---|",
    ]
    cost = []
    for name, methods in summary.items():
        ratio = methods["const, half A"]["rmse_test_over_default"]
        cost.append(
            f"| {name} | {ratio['mean']:.3f} ± {ratio['sd']:.3f} | "
            f"{min(ratio['values']):.3f} – {max(ratio['values']):.3f} |"
        )
        for method, e in methods.items():
            cov, width = e["test_coverage"], e["relative_width"]
            lines.append(
                f"| {name} | {method} | {100 * cov['mean']:.1f} ± {100 * cov['sd']:.1f} | "
                f"{width['mean']:.2f} ± {width['sd']:.2f} |"
            )
    if cost:
        lines += [
            "",
            "The price of choosing the epoch on half the validation split: test RMSE (mean over "
            "tasks) of these models over the default run's of the same seed:",
            "",
            "| set | test RMSE / default's | range over seeds |",
            "|---|---|---|",
            *cost,
        ]
    return "\n".join(lines)


def tool_calibration(sets, seeds, ensemble_size: int = 1) -> list[dict]:
    """The calibration ``gconv train`` now fits (``gconv.molecule.calibration.calibrate``), run
    on each saved model directory with the same splits: per (set, seed) the test coverage (mean
    over tasks, and per task) and mean half-width, and the constant interval's (today's method
    before this change) on the same model, for the relative width."""
    from gconv.molecule import load_model
    from gconv.molecule.calibration import calibrate, coverage, fit_conformal
    from gconv.molecule.training import load_data, read_split_column, split_data

    rows = []
    for name in sets:
        for seed in seeds:
            tag = f"{name}_seed{seed}" + (f"_ens{ensemble_size}" if ensemble_size > 1 else "")
            out = WORK / tag
            if not (out / "config.json").exists():
                continue
            path, targets = _split_file(name, seed)
            data, _ = load_data(path, "smiles", targets, "chembl", "error")
            parts = split_data(data, "scaffold", (0.8, 0.1, 0.1), seed,
                               read_split_column(path, "split"), "split")  # fmt: skip
            model = load_model(out)
            graphs = {k: p.graphs for k, p in zip(("train", "val", "test"), parts, strict=True)}
            predictions = {k: model.predict_graphs(g) for k, g in graphs.items()}
            y_val, y_test = parts[1].y.numpy(), parts[2].y.numpy()
            final = final_epoch_val_prediction(name, seed, out)
            report = calibrate(
                model, predictions, graphs, y_val, y_test, True, 0.9, seed, "val", final
            )
            constant = fit_conformal(model.tasks, y_val, predictions["val"][0], 0.9)
            half = np.asarray(constant["half_width"])
            pred = predictions["test"][0]
            covered = coverage(y_test, pred - half, pred + half)
            widths = report["test_half_width_per_task"]

            scale = model.target_scaler.std.numpy().reshape(-1)

            def rmse(y, p, scale=scale):  # the Trainer's selection metric, standardised
                return float(np.sqrt(np.nanmean(((y - p) / scale) ** 2)))

            rows.append({
                "set": name, "seed": seed, "ensemble": ensemble_size,
                "method": report["method"],
                "test_coverage": report["test_coverage"],
                "test_coverage_per_task": report["test_coverage_per_task"],
                "test_half_width_per_task": widths,
                "constant_test_coverage": float(np.mean([c for c in covered if c is not None])),
                "constant_half_width_per_task": dict(zip(model.tasks.names, half.tolist(), strict=True)),
                "val_rmse_best_epoch": rmse(y_val, predictions["val"][0]),
                "val_rmse_final_epoch": rmse(y_val, final),
                "relative_width": float(np.mean([widths[t] / h for t, h in
                                                 zip(model.tasks.names, half, strict=True)])),
            })  # fmt: skip
    return rows


def summarise_tool(rows: list[dict]) -> dict:
    """Per set: the tool's test coverage (and per task), and the half-width relative to the
    interval before this change, mean and sd over seeds."""
    summary: dict = {}
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = sorted((r for r in rows if r["set"] == name), key=lambda r: r["seed"])

        def stats(values):
            values = [float(v) for v in values]
            return {"mean": float(np.mean(values)),
                    "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                    "values": values}  # fmt: skip

        tasks = list(mine[0]["test_coverage_per_task"])
        summary[name] = {
            "seeds": [r["seed"] for r in mine],
            "test_coverage": stats([r["test_coverage"] for r in mine]),
            "per_task": {t: stats([r["test_coverage_per_task"][t] for r in mine]) for t in tasks},
            "relative_width": stats([r["relative_width"] for r in mine]),
            "before_test_coverage": stats([r["constant_test_coverage"] for r in mine]),
            # selection optimism, on the validation split only: the best epoch was chosen there
            "val_rmse_final_over_best": stats(
                [r["val_rmse_final_epoch"] / r["val_rmse_best_epoch"] for r in mine]
            ),
        }
    return summary


def report_tool(summary: dict) -> str:
    lines = [
        "| set | seeds | test coverage | per task | half-width / before | coverage before | "
        "val RMSE final / best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in summary.items():
        per_task = ", ".join(f"{t} {100 * v['mean']:.0f} %" for t, v in e["per_task"].items())
        cov, width, before = e["test_coverage"], e["relative_width"], e["before_test_coverage"]
        lines.append(
            f"| {name} | {len(e['seeds'])} | {100 * cov['mean']:.1f} % ± {100 * cov['sd']:.1f} | "
            f"{per_task if len(e['per_task']) > 1 else '–'} | {width['mean']:.2f} ± "
            f"{width['sd']:.2f} | {100 * before['mean']:.1f} % ± {100 * before['sd']:.1f} | "
            f"{e['val_rmse_final_over_best']['mean']:.3f} (min "
            f"{min(e['val_rmse_final_over_best']['values']):.3f}) |"
        )
    return "\n".join(lines)


def update_tasks_table(tool: dict, source: str) -> str:
    """Puts the tool's interval coverage (:func:`summarise_tool`) into the calibration table of
    ``benchmarks/results/molecules_tasks.{json,md}`` in place of the constant interval's, and
    re-renders it with ``bench_molecules.task_tables``; the other tables stay as they were
    measured (their date and machine in the header)."""
    from bench_molecules import task_tables

    path = ROOT / "benchmarks" / "results" / "molecules_tasks.json"
    summary = json.loads(path.read_text())
    for name, entry in tool.items():
        summary["calibration"][name] = {
            "test_coverage": entry["test_coverage"],
            "per_task": entry["per_task"],
            "relative_width": entry["relative_width"],
            "seeds": entry["seeds"],
            "source": source,
            "date": str(date.today()),
        }
    text = task_tables(summary)
    text += (
        "\n\nThe regression rows of the calibration table come from "
        f"`python {source}` ({date.today()}): gconv train's normalised interval on 5 seeds, "
        "its half-width relative to the constant interval it replaced; "
        "benchmarks/results/calibration.md has the comparison."
    )
    path.write_text(json.dumps(summary, indent=1) + "\n")
    path.with_suffix(".md").write_text(text + "\n")
    return text


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--train", action="store_true", help="train and save the artefacts")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--ensemble-size", type=int, default=1)
    p.add_argument(
        "--holdout",
        action="store_true",
        help="with --train: half of the validation split (by scaffold) held out of "
        "model selection, for the calibration-set experiment",
    )
    args = p.parse_args(argv)
    if args.train:
        train_runs(args.sets, args.seeds, args.ensemble_size, args.holdout)
        return
    runs = load_runs(args.sets, args.seeds, args.ensemble_size)
    summary = summarise(evaluate(runs))
    holdout = summarise_holdout(
        evaluate_holdout(args.sets, args.seeds, ensemble_size=args.ensemble_size)
    )
    tool_rows = tool_calibration(args.sets, args.seeds, args.ensemble_size)
    tool = summarise_tool(tool_rows)
    suffix = f"_ens{args.ensemble_size}" if args.ensemble_size > 1 else ""
    header = (
        f"Generated by `python benchmarks/bench_calibration.py{' --ensemble-size ' + str(args.ensemble_size) if suffix else ''}` "
        f"on {date.today()} ({platform.machine()}, {os.cpu_count()} CPUs shared with other jobs; "
        "coverage and widths do not depend on the load). Seeded scaffold splits of "
        "bench_molecules.py, gconv train's defaults"
        + (f", ensembles of {args.ensemble_size}" if suffix else "")
        + "; mean ± sd over seeds (a multi-task set's seed value: the mean of its tasks). "
        "Target: 90 % intervals covering 85–95 % of test molecules."
    )
    text = "\n\n".join([
        header,
        "**gconv train's interval** (normalised by the kNN distance in the model's embedding, "
        "calibrated on the final epoch's validation residuals), run by the tool's own "
        "`calibrate` on each trained model: test coverage, and mean half-width relative to the "
        "interval before this change (constant, best epoch's validation residuals) on the same "
        "model; and the validation RMSE of the final epoch over the best epoch's (the best was "
        "chosen on it: a ratio above 1 is the optimism the final epoch's residuals avoid):",
        report_tool(tool),
        "**Candidates, post hoc** on the same models: test coverage, half-width relative to the "
        "constant interval; on the validation split only: coverage of a scaffold-grouped 5-fold "
        "cross-validation inside it, in the third of its molecules farthest from / nearest to "
        "the training set (emb5 distance), and the Spearman correlation of |residual| with sigma:",
        report(summary),
        "**A calibration set that chose nothing** (models trained with half the validation "
        "scaffolds choosing the epoch): the constant or normalised interval fitted on that half "
        "(A) or on the other half (B); half-width relative to the interval before this change:",
        report_holdout(holdout),
    ])  # fmt: skip
    print(text)
    out = ROOT / "benchmarks" / "results"
    (out / f"calibration{suffix}.md").write_text(text + "\n")
    if not suffix and set(tool) == set(SETS) and all(len(e["seeds"]) >= 5 for e in tool.values()):
        update_tasks_table(tool, "benchmarks/bench_calibration.py")
    (out / f"calibration{suffix}.json").write_text(json.dumps(
        {"date": str(date.today()), "tool": tool, "tool_runs": tool_rows, "candidates": summary,
         "holdout": holdout}, indent=1, default=float) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
