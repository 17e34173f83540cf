"""The atomwise readout against norm on the additive regression sets, on validation data only.

    python benchmarks/bench_readout.py               # runs what is missing, then the table
    python benchmarks/bench_readout.py --table-only  # the table from the stored runs

``gconv train``'s ``readout="auto"`` picks one readout for additive regression targets; this
script measures the candidates on the **validation** split (the test split plays no part in the
choice): gconv's defaults (``examples/molecule_gcn.py``) with ``--readout norm`` and with
``--readout atomwise``, seeds 0-2 of the balanced scaffold split, on

* the additive regression sets of ``benchmarks/bench_molecules.py``: ``tpsa`` (NCI TPSA),
  ``clogp`` (NCI ClogP, 200 molecules), ``nci_props`` (TPSA, ClogP and molar refractivity of NCI
  molecules, 25 % of the labels blanked; the mean of the three tasks' RMSEs, as ``metrics.json``
  reports it);
* ``chembl`` (a pIC50, not additive: ``auto`` picks meanmax there), for completeness, with
  ``auto`` beside them;
* Crippen logP of the NCI molecules, ``benchmarks/bench_explain.py --part logp``'s set and model
  (its ``val_rmse``, read from ``benchmarks/results/explain_atoms.json``; run
  ``bench_explain.py --part logp --readout norm`` and ``--readout atomwise`` for it).

The runs are ``bench_molecules.py``'s (``--work runs/bench_atomwise``, one thread each; what is
there is not run again). **The rule** (fixed before the runs): atomwise is *not worse* than norm
on a set when the mean over the seeds of the paired difference of validation RMSE (atomwise
minus norm) is at most one standard deviation of that difference above zero (logP, stored as
mean and sd per readout: the difference of the means against the two sds combined,
``sqrt(sd_a^2 + sd_n^2)``); ``auto`` takes
atomwise only if it is not worse on every additive set. Writes
``benchmarks/results/readout_atomwise.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WORK = ROOT.parent / "runs" / "bench_atomwise"
RESULTS = ROOT / "results" / "readout_atomwise"
ADDITIVE_SETS = ("tpsa", "clogp", "nci_props")
SETS = (*ADDITIVE_SETS, "chembl")
READOUTS = {"gconv_norm": "norm", "gconv_atomwise": "atomwise", "gconv": "auto"}
SEEDS = (0, 1, 2)


def _stats(values: list[float]) -> dict:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "n": len(values)}


def collect(work: Path = WORK) -> dict:
    """``{set: {readout: {"val": stats, "test": stats, "seeds": [...]}, "difference": stats}}``
    from ``bench_molecules``' results file and ``explain_atoms.json`` (logP)."""
    latest = {}
    path = work / "results.jsonl"
    if path.exists():
        for line in path.open():
            r = json.loads(line)
            latest[(r["set"], r["seed"], r["method"])] = r
    table: dict = {}
    for name in SETS:
        for method, readout in READOUTS.items():
            runs = [latest[(name, s, method)] for s in SEEDS if (name, s, method) in latest]
            if not runs:
                continue
            table.setdefault(name, {})[readout] = {
                "val_rmse": _stats([r["val_rmse"] for r in runs]),
                "test_rmse": _stats([r["test_rmse"] for r in runs]),
                "seeds": [r["seed"] for r in runs],
                "by_seed": {str(r["seed"]): r["val_rmse"] for r in runs},
            }
    atoms = ROOT / "results" / "explain_atoms.json"
    stored = json.loads(atoms.read_text()) if atoms.exists() else {}
    for readout in ("norm", "atomwise"):
        entry = stored.get(f"logp_{readout}")
        if entry and "val_rmse" in entry:
            table.setdefault("nci_crippen_logp", {})[readout] = {
                "val_rmse": {**entry["val_rmse"], "n": len(entry["seeds"])},
                "test_rmse": {**entry["test_rmse"], "n": len(entry["seeds"])},
                "seeds": entry["seeds"],
                "by_seed": {},  # bench_explain keeps mean and sd only
            }
    for row in table.values():
        if "norm" in row and "atomwise" in row:
            a, b = row["atomwise"]["by_seed"], row["norm"]["by_seed"]
            paired = [a[s] - b[s] for s in a if s in b]
            if len(paired) > 1:
                row["difference"] = _stats(paired)
            else:  # unpaired (logP): the difference of the means, the sds combined
                va, vn = row["atomwise"]["val_rmse"], row["norm"]["val_rmse"]
                row["difference"] = {
                    "mean": va["mean"] - vn["mean"],
                    "sd": (va["sd"] ** 2 + vn["sd"] ** 2) ** 0.5,
                    "n": min(va["n"], vn["n"]),
                    "paired": False,
                }
            diff = row["difference"]
            row["atomwise_not_worse"] = diff["mean"] <= diff["sd"]
    return table


def render(table: dict, machine: str) -> str:
    lines = [
        "The atomwise readout against norm, validation RMSE (mean ± sd over scaffold seeds 0-2; "
        "`benchmarks/bench_readout.py`, written by the script; test RMSE beside it, not used "
        f"for the choice). {machine}.",
        "",
        "| set | norm, val | atomwise, val | atomwise − norm, paired | not worse | "
        "auto (its pick), val | norm, test | atomwise, test |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]

    def cell(row, readout, key):
        if readout not in row:
            return "–"
        s = row[readout][key]
        return f"{s['mean']:.3f} ± {s['sd']:.3f} (n={s['n']})"

    for name, row in table.items():
        diff = row.get("difference")
        paired = f"{diff['mean']:+.3f} ± {diff['sd']:.3f}" if diff else "–"
        verdict = {True: "yes", False: "no"}.get(row.get("atomwise_not_worse"), "–")
        lines.append(
            f"| {name} | {cell(row, 'norm', 'val_rmse')} | {cell(row, 'atomwise', 'val_rmse')} "
            f"| {paired} | {verdict} | {cell(row, 'auto', 'val_rmse')} "
            f"| {cell(row, 'norm', 'test_rmse')} | {cell(row, 'atomwise', 'test_rmse')} |"
        )
    lines += [
        "",
        "Not worse: the mean paired difference (atomwise minus norm, per seed) is at most one "
        "standard deviation of the differences above zero. nci_crippen_logp: "
        "`bench_explain.py --part logp`'s model and set (its stored mean and sd: the difference "
        "of the means against the two sds combined).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    machine = (
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.threads} thread per run, load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    if not args.table_only:
        import bench_molecules

        common = ["--threads", str(args.threads), "--work", str(WORK), "--seeds", "0", "1", "2",
                  "--table-dir", str(WORK / "tables")]  # fmt: skip
        bench_molecules.main(
            ["--sets", *ADDITIVE_SETS, "--methods", "gconv_norm", "gconv_atomwise", *common]
        )
        bench_molecules.main(
            ["--sets", "chembl", "--methods", "gconv", "gconv_norm", "gconv_atomwise", *common]
        )
        machine = machine.replace(" at the end", f" at the end ({time.strftime('%H:%M')})")
    table = collect()
    text = render(table, machine)
    print(text)
    RESULTS.with_suffix(".md").write_text(text)
    RESULTS.with_suffix(".json").write_text(json.dumps(table, indent=1) + "\n")
    return table


if __name__ == "__main__":
    main()
