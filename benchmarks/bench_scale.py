"""A million molecules on two cores: featurisation speed, peak memory and disk, 100k -> 1M.

Data, made offline: every molecule of the embedded sets (NCI TPSA, CHEMBL2321810) is a parent;
a substituent (F, Cl, Br, methyl, ethyl, methoxy, hydroxymethyl, nitrile, CF3, carboxyl, amide,
sulfonamide, methylsulfonyl, phenyl, amino, hydroxy, ...) replaces a hydrogen of one of its
carbons, one carbon of each symmetry class (RDKit's ``CanonicalRankAtoms``); products are kept when
RDKit sanitises them and their canonical SMILES is new (no two rows hold one molecule); a second
round substitutes the first round's products until there are enough. Target: RDKit's TPSA. The
files are cached in ``--data-dir`` (made once, in ``--jobs`` processes).

Per size (``--sizes``, default 100k and 1M; a size below the largest is every k-th row of the
largest's file, the same mix of molecule sizes), each step in a fresh process, so that its peak
memory is its own:

    featurise   MoleculeStore.from_csv(n_jobs=--jobs): graphs, graph hashes (duplicates),
                scaffolds, what ``gconv train --store disk`` writes; molecules/s, and the same
                for graphs only (no graph hashes, no scaffolds: what from_smiles computes) on
                100k rows spread over the file
    from_smiles PyG's torch_geometric.utils.from_smiles over 20k molecules spread over the file
                (every n / 20k-th row) in one process, CPU and wall time
                before and after the featurisation (the reference of the ratio: same run, same
                load)
    train       gconv train --store disk --epochs 1 (the default D-MPNN, batch 64, scaffold split,
                --num-workers --jobs; readout rule, calibration, predictions of every molecule,
                predictions.csv included)
    predict     gconv predict over the whole CSV (read, featurised and written in chunks)

Peak memory: the largest proportional set size (PSS) of the step's process tree, sampled every
0.5 s with psutil (the main process plus its workers, a page shared by forked processes counted
once), and the main process's own peak RSS (``ru_maxrss``). Importing torch, PyG and RDKit alone
is ~0.87 GB of RSS per process. The store is read with ``pread``, not mapped: its pages stay in
the operating system's file cache, in no process's PSS.

    python benchmarks/bench_scale.py [--sizes 100000 1000000] [--jobs 2] [--out benchmarks/results]

Writes ``<out>/scale.json`` and ``<out>/scale.md``. Timings on a shared machine are noisy: the
results file records the load average and the thread count, and the ratios against from_smiles
measured in the same run are what to compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

SUBSTITUENTS = (
    "F", "Cl", "Br", "C", "CC", "CO", "OC", "N#C", "FC(F)(F)", "OC(=O)", "NC(=O)", "NS(=O)(=O)",
    "CS(=O)(=O)", "c1ccccc1", "N", "O", "CC(C)", "CN(C)", "O=C", "CC(=O)N",
)  # fmt: skip
PYG_SAMPLE = 20_000


# ----------------------------------------------------------------------------- data
def _substitute(parents: list[str]) -> list[tuple[str, float]]:
    """Single substitutions of each parent, as (canonical SMILES, TPSA); duplicates within the
    batch removed (the caller dedupes across batches)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdMolDescriptors

    out: dict[str, float] = {}
    with rdBase.BlockLogs():
        for parent in parents:
            mol = Chem.MolFromSmiles(parent)
            if mol is None or mol.GetNumAtoms() > 60:
                continue
            ranks = list(Chem.CanonicalRankAtoms(mol, breakTies=False))
            seen = set()
            for atom in mol.GetAtoms():
                i = atom.GetIdx()
                if (
                    atom.GetSymbol() != "C"
                    or atom.GetTotalNumHs() == 0
                    or atom.GetFormalCharge() != 0
                    or ranks[i] in seen
                ):
                    continue
                seen.add(ranks[i])
                rooted = Chem.MolToSmiles(mol, rootedAtAtom=i, isomericSmiles=False)
                for group in SUBSTITUENTS:
                    product = Chem.MolFromSmiles(group + rooted)
                    if product is None:
                        continue
                    smiles = Chem.MolToSmiles(product)
                    if smiles not in out:
                        out[smiles] = rdMolDescriptors.CalcTPSA(product)
    return list(out.items())


def make_molecules(n: int, path: Path, jobs: int) -> Path:
    """``path``: a CSV of ``n`` distinct molecules (``smiles,tpsa``), made once."""
    if path.exists():
        return path
    from rdkit import Chem, rdBase

    from gconv.data import read_embedded

    parents: list[str] = []
    seen: set[str] = set()
    with rdBase.BlockLogs():
        for name in ("tpsa", "chembl"):
            for s in read_embedded(name)[0]:
                mol = Chem.MolFromSmiles(s)
                if mol is not None:
                    canonical = Chem.MolToSmiles(mol)
                    if canonical not in seen:
                        seen.add(canonical)
                        parents.append(canonical)
    rows: list[tuple[str, float]] = []
    generation = parents
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        while len(rows) < n and generation:
            batches = [generation[i : i + 200] for i in range(0, len(generation), 200)]
            products: list[str] = []
            for result in pool.map(_substitute, batches):
                for smiles, tpsa in result:
                    if smiles not in seen:
                        seen.add(smiles)
                        rows.append((smiles, tpsa))
                        products.append(smiles)
                if len(rows) >= n:
                    break
            print(f"  {len(rows):,} molecules ({time.perf_counter() - start:.0f}s)", flush=True)
            generation = products
    if len(rows) < n:
        raise RuntimeError(f"made only {len(rows):,} distinct molecules of {n:,}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "tpsa"])
        writer.writerows((s, f"{t:.2f}") for s, t in rows[:n])
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- measuring
def _tree_rss(pid: int) -> tuple[int, int, int]:
    """``(PSS of the process tree, PSS of its root, USS of its root while it has children)``,
    bytes."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0, 0
    total = main = main_uss = 0
    for proc in procs:  # PSS: a page shared by forked workers counts once, split between them
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        total += info.pss
        if proc is root:
            # USS only while workers share its pages (once they exit, those pages are its own)
            main, main_uss = info.pss, (info.uss if len(procs) > 1 else 0)
    return total, main, main_uss


def run_step(code: str, env: dict[str, str]) -> dict:
    """Runs ``code`` in a fresh Python; its last stdout line is a JSON dict. Adds the peak RSS
    of the process tree (sampled) and the wall time."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    peak = [0, 0, 0]  # the tree's peak PSS, its main process's PSS then, the main's largest USS
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total, main, main_uss = _tree_rss(proc.pid)
            if total > peak[0]:
                peak[:2] = [total, main]
            peak[2] = max(peak[2], main_uss)
            done.wait(0.5)

    watcher = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    watcher.start()
    out, err = proc.communicate()
    done.set()
    watcher.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"step failed ({proc.returncode}):\n{out[-2000:]}\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        wall_seconds=seconds,
        peak_tree_pss_mb=peak[0] / 2**20,
        peak_main_pss_mb=peak[1] / 2**20,
        peak_main_uss_mb=peak[2] / 2**20,
    )
    return result


_PRELUDE = """
import json, resource, time
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def cpu_seconds(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
"""

FEATURISE = (
    _PRELUDE
    + """
from gconv.data import MoleculeStore
main_cpu = cpu_seconds(resource.RUSAGE_SELF)
start = time.perf_counter()
store = MoleculeStore.from_csv({csv!r}, {root!r}, "smiles", ["tpsa"], n_jobs={jobs}, **{options!r})
seconds = time.perf_counter() - start
main_cpu = cpu_seconds(resource.RUSAGE_SELF) - main_cpu
workers_cpu = cpu_seconds(resource.RUSAGE_CHILDREN)  # the pool's processes, reaped by now
print(json.dumps(dict(seconds=seconds, molecules=len(store), rows=store.num_rows,
      disk_bytes=store.disk_bytes(), store=str(store.path), main_peak_mb=peak_mb(),
      main_cpu_seconds=main_cpu, workers_cpu_seconds=workers_cpu)))
"""
)

PYG = (
    _PRELUDE
    + """
import csv, warnings
warnings.simplefilter("ignore")
from torch_geometric.utils import from_smiles
with open({csv!r}) as f:  # every ({rows} // {n})-th row: the file's mix of molecule sizes
    smiles = [r[0] for i, r in enumerate(list(csv.reader(f))[1:]) if i % max(1, {rows} // {n}) == 0]
smiles = smiles[:{n}]
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold
def also_in_the_store(s):  # what the store gives beside the graph: duplicates (by canonical
    # SMILES, which the store computes only where graph hashes meet) and scaffolds
    mol = Chem.MolFromSmiles(s)
    return Chem.MolToSmiles(mol), MurckoScaffold.MurckoScaffoldSmiles(mol=mol)
rdBase.DisableLog("rdApp.*")
start, cpu = time.perf_counter(), time.process_time()
graphs = [also_in_the_store(s) for s in smiles] if {extras} else [from_smiles(s) for s in smiles]
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps(dict(seconds=seconds, cpu_seconds=cpu, molecules=len(smiles),
      main_peak_mb=peak_mb())))
"""
)

COMMAND = (
    _PRELUDE
    + """
import sys
from gconv.cli import run
start = time.perf_counter()
run({argv!r})
print(json.dumps(dict(seconds=time.perf_counter() - start, main_peak_mb=peak_mb())))
"""
)


def sample_csv(src: Path, rows: int, n: int) -> Path:
    """Every (rows // n)-th of the ``rows`` rows of ``src`` (n of them): a smaller size with the
    same mix of molecule sizes as the largest, so that what grows from one size to the next is
    the number of molecules, not their size (later substitution rounds make larger ones)."""
    dst = src.with_name(f"{src.stem}_every_{rows // n}.csv")
    if not dst.exists():
        with open(src) as f, open(dst, "w") as g:
            g.write(next(f))
            kept = 0
            for i, line in enumerate(f):
                if i % (rows // n) == 0 and kept < n:
                    g.write(line)
                    kept += 1
    return dst


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--jobs", type=int, default=2, help="featurising / loader processes")
    parser.add_argument("--data-dir", type=Path, default=Path("datasets/scale"))
    parser.add_argument("--work-dir", type=Path, default=Path("runs/bench_scale"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--train-size", type=int, nargs="+", default=None,
        help="train one epoch at these sizes (default: the smallest); a size predicts with the "
        "model of the largest trained size up to it",
    )  # fmt: skip
    args = parser.parse_args(argv)

    env = dict(os.environ, OMP_NUM_THREADS="1")
    largest = max(args.sizes)
    print(f"making {largest:,} distinct molecules in {args.data_dir} ...", flush=True)
    full = make_molecules(largest, args.data_dir / f"molecules_{largest}.csv", args.jobs)
    train_sizes = args.train_size or [min(args.sizes)]
    results = []
    for n in sorted(args.sizes):
        csv_path = sample_csv(full, largest, n) if n < largest else full
        work = args.work_dir / str(n)
        root = work / "stores"
        if root.exists():
            import shutil

            shutil.rmtree(root)  # featurise afresh: a reused store would time nothing
        row: dict = {"molecules": n, "load_before": os.getloadavg()[0]}
        pyg = run_step(PYG.format(csv=str(csv_path), n=PYG_SAMPLE, rows=n, extras=False), env)
        feat = run_step(
            FEATURISE.format(csv=str(csv_path), root=str(root), jobs=args.jobs, options={}), env
        )
        pyg_after = run_step(PYG.format(csv=str(csv_path), n=PYG_SAMPLE, rows=n, extras=False), env)
        pyg_rate = PYG_SAMPLE / ((pyg["seconds"] + pyg_after["seconds"]) / 2)
        # the like-for-like reference of the store pass: from_smiles plus the canonical SMILES
        # and the Murcko scaffold a PyG user would add (one RDKit parse for both), timed apart
        # and added (timed together, the list of graphs kept alive slows the extras' garbage
        # collections: ~200 us a molecule more, not counted)
        extras = run_step(PYG.format(csv=str(csv_path), n=PYG_SAMPLE, rows=n, extras=True), env)
        extras_cpu_us = 1e6 * extras["cpu_seconds"] / PYG_SAMPLE
        m = min(n, 100_000)
        sample = sample_csv(full, largest, m) if m < largest else full
        graphs_only = run_step(
            FEATURISE.format(
                csv=str(sample), root=str(work / "graphs_only"), jobs=args.jobs,
                options={"canonical": False, "scaffolds": False},
            ),
            env,
        )  # fmt: skip
        pyg_cpu_us = 1e6 * (pyg["cpu_seconds"] + pyg_after["cpu_seconds"]) / (2 * PYG_SAMPLE)

        def cpu_us(step: dict) -> float:  # CPU of the main process and the workers, a molecule
            return (
                1e6 * (step["main_cpu_seconds"] + step["workers_cpu_seconds"]) / step["molecules"]
            )

        row.update(
            pyg_cpu_us_per_mol=pyg_cpu_us,
            featurise_cpu_us_per_mol=cpu_us(feat),
            featurise_main_cpu_us_per_mol=1e6 * feat["main_cpu_seconds"] / feat["molecules"],
            featurise_cpu_ratio=pyg_cpu_us / cpu_us(feat),
            pyg_full_cpu_us_per_mol=pyg_cpu_us + extras_cpu_us,
            featurise_vs_pyg_full_cpu_ratio=(pyg_cpu_us + extras_cpu_us) / cpu_us(feat),
            featurise_vs_pyg_full=n
            / feat["seconds"]
            * (1 / pyg_rate + extras["seconds"] / PYG_SAMPLE),
            graphs_only_cpu_us_per_mol=cpu_us(graphs_only),
            graphs_only_cpu_ratio=pyg_cpu_us / cpu_us(graphs_only),
            featurise_peak_main_pss_mb=feat["peak_main_pss_mb"],
            featurise_peak_main_uss_mb=feat["peak_main_uss_mb"],
            pyg_mol_per_s=pyg_rate,
            featurise_seconds=feat["seconds"],
            featurise_mol_per_s=n / feat["seconds"],
            featurise_vs_pyg=n / feat["seconds"] / pyg_rate,
            graphs_only_mol_per_s=graphs_only["molecules"] / graphs_only["seconds"],
            graphs_only_vs_pyg=graphs_only["molecules"] / graphs_only["seconds"] / pyg_rate,
            featurise_peak_tree_mb=feat["peak_tree_pss_mb"],
            featurise_main_peak_mb=feat["main_peak_mb"],
            disk_bytes=feat["disk_bytes"],
            disk_bytes_per_molecule=feat["disk_bytes"] / feat["molecules"],
        )
        print(json.dumps(row), flush=True)
        trained = [t for t in train_sizes if t <= n]
        model_dir = args.work_dir / str(max(trained, default=min(args.sizes))) / "model"
        if n in train_sizes:
            if model_dir.exists():
                import shutil

                shutil.rmtree(model_dir)
            argv_train = ["train", "--data-path", str(csv_path), "--target-columns", "tpsa",
                          "--epochs", "1", "--store", "disk", "--store-dir", str(root),
                          "--num-workers", str(args.jobs), "--quiet", "-o", str(model_dir)]  # fmt: skip
            train = run_step(COMMAND.format(argv=argv_train), env)
            metrics = json.loads((model_dir / "metrics.json").read_text())
            row.update(
                train_seconds=train["seconds"],
                train_epoch_seconds=metrics["train_seconds"],
                train_peak_tree_mb=train["peak_tree_pss_mb"],
                train_main_peak_mb=train["main_peak_mb"],
                test_rmse_one_epoch=metrics["test_rmse"],
            )
        if model_dir.exists():
            preds = work / "preds.csv"
            argv_predict = ["predict", "--model-path", str(model_dir), "--test-path",
                            str(csv_path), "--preds-path", str(preds)]  # fmt: skip
            predict = run_step(COMMAND.format(argv=argv_predict), env)
            row.update(
                predict_seconds=predict["seconds"],
                predict_mol_per_s=n / predict["seconds"],
                predict_peak_tree_mb=predict["peak_tree_pss_mb"],
                predict_main_peak_mb=predict["main_peak_mb"],
            )
        row["load_after"] = os.getloadavg()[0]
        results.append(row)
        print(json.dumps(row), flush=True)

    import torch

    info = {
        "cpu_count": os.cpu_count(),
        "jobs": args.jobs,
        "omp_num_threads": 1,
        "torch_threads": torch.get_num_threads(),
        "note": (
            "a machine shared with other work: load averages recorded per size; compare the "
            "ratios to from_smiles, measured in the same run, not the absolute rates"
        ),
        "ru_maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    report = {"machine": info, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "scale.md").write_text(render(report))
    print(render(report))
    return report


def render(report: dict) -> str:
    info, rows = report["machine"], report["results"]

    def cell(row: dict, key: str, fmt: str, unit: str = "") -> str:
        return format(row[key], fmt) + unit if key in row else "—"

    lines = [
        "# Larger than memory: benchmarks/bench_scale.py",
        "",
        f"{info['cpu_count']} CPUs, {info['jobs']} featurising / loader processes, "
        f"OMP_NUM_THREADS={info['omp_num_threads']}. {info['note']}.",
        "",
        "| molecules | featurise mol/s | vs from_smiles | graphs only vs from_smiles | "
        "featurise peak PSS | disk / molecule | train: 1 epoch + predictions, s | peak PSS | "
        "predict s | predict peak PSS | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['molecules']:,} | {row['featurise_mol_per_s']:,.0f} | "
            f"{row['featurise_vs_pyg']:.2f}x | {row['graphs_only_vs_pyg']:.2f}x | "
            f"{row['featurise_peak_tree_mb']:,.0f} MB | "
            f"{row['disk_bytes_per_molecule']:,.0f} B | {cell(row, 'train_seconds', ',.0f')} | "
            f"{cell(row, 'train_peak_tree_mb', ',.0f', ' MB')} | "
            f"{cell(row, 'predict_seconds', ',.0f')} | "
            f"{cell(row, 'predict_peak_tree_mb', ',.0f', ' MB')} | "
            f"{row['load_before']:.1f}-{row['load_after']:.1f} |"
        )
    if all("featurise_cpu_us_per_mol" in row for row in rows):
        jobs = info["jobs"]
        lines += [
            "",
            "CPU time a molecule (user + system; workers and main process together, so robust "
            f"to the load): the store pass against from_smiles, and what {jobs} workers on "
            f"{jobs} free cores make of it ({jobs} x the CPU ratio).",
            "",
            "| molecules | from_smiles CPU/mol | store pass CPU/mol (main process) | CPU ratio | "
            f"x {jobs} cores | graphs only CPU/mol | CPU ratio | x {jobs} cores | "
            "peak PSS (main process at the peak) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            lines.append(
                f"| {row['molecules']:,} | {row['pyg_cpu_us_per_mol']:.0f} us | "
                f"{row['featurise_cpu_us_per_mol']:.0f} us "
                f"({row['featurise_main_cpu_us_per_mol']:.0f} us) | "
                f"{row['featurise_cpu_ratio']:.2f}x | {jobs * row['featurise_cpu_ratio']:.2f}x | "
                f"{row['graphs_only_cpu_us_per_mol']:.0f} us | "
                f"{row['graphs_only_cpu_ratio']:.2f}x | "
                f"{jobs * row['graphs_only_cpu_ratio']:.2f}x | "
                f"{row['featurise_peak_tree_mb']:,.0f} MB ({row['featurise_peak_main_pss_mb']:,.0f} MB) |"
            )
    if all("featurise_vs_pyg_full" in row for row in rows):
        jobs = info["jobs"]
        lines += [
            "",
            "Like for like: the store pass against from_smiles plus what the store also gives "
            "(duplicates and scaffolds: RDKit's canonical SMILES and Murcko scaffold of one "
            "`MolFromSmiles`, timed apart from from_smiles and added), one process. The store "
            "finds duplicates by graph hash, computing canonical SMILES only where hashes meet.",
            "",
            "| molecules | from_smiles + canonical + scaffold CPU/mol | store pass CPU/mol | "
            f"CPU ratio | x {jobs} cores | wall-clock ratio |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            ratio = row["featurise_vs_pyg_full_cpu_ratio"]
            lines.append(
                f"| {row['molecules']:,} | {row['pyg_full_cpu_us_per_mol']:.0f} us | "
                f"{row['featurise_cpu_us_per_mol']:.0f} us | {ratio:.2f}x | "
                f"{jobs * ratio:.2f}x | {row['featurise_vs_pyg_full']:.2f}x |"
            )
    lines += [
        "",
        "Peak PSS: the step's process tree (main process and workers; a page shared by forked "
        "processes counted once; sampled every 0.5 s); the store is read with `pread`, so its "
        "pages stay in the file cache, in no process. "
        "Train: `gconv train --store disk --epochs 1` at the train size (readout rule, one "
        "epoch of the default D-MPNN, calibration, predictions of every molecule, "
        "predictions.csv); predict: `gconv predict` of every size with that model. from_smiles: PyG's, one process, on the "
        f"{PYG_SAMPLE:,} molecules spread over the file (every n / {PYG_SAMPLE:,}-th row), before and after the featurisation. 'graphs only': "
        "a store without graph hashes and scaffolds (what from_smiles computes), on 100k "
        "molecules spread over the file. A size below the largest is every k-th row of the "
        "largest's file (the same mix of molecule sizes). Raw numbers: scale.json.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
