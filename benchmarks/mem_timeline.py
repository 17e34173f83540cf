"""Memory of a command's process tree over time: RSS, PSS and USS of every process, each second.

What ``benchmarks/results/scale.md``'s memory section is measured with: which process grows,
when, and whether its pages are its own (USS) or shared with forked workers (PSS splits a shared
page between its sharers, so the tree's PSS counts it once).

    python benchmarks/mem_timeline.py --log featurise.jsonl -- \\
        python -c "from gconv.data import MoleculeStore; \\
                   MoleculeStore.from_csv('mols.csv', 'stores', 'smiles', ['tpsa'], n_jobs=2)"
    python benchmarks/mem_timeline.py --log predict.jsonl -- \\
        gconv predict --model-path runs/model --test-path mols.csv --preds-path preds.csv

Each line of ``--log``: ``{"t": seconds, "<pid>": [rss, pss, uss] (MB), ..., "total_pss": MB}``;
the summary printed at the end: the tree's peak PSS, the sample it came from, and each process's
largest USS while it had company (a process alone holds every page it maps).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def sample(pid: int) -> dict:
    import psutil

    root = psutil.Process(pid)
    record: dict = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        record[str(proc.pid)] = [round(v / 2**20) for v in (info.rss, info.pss, info.uss)]
    record["total_pss"] = sum(v[1] for v in record.values())
    return record


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log", type=Path, required=True, help="JSON lines, one a sample")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")

    proc = subprocess.Popen(command)
    start = time.perf_counter()
    samples = []
    with open(args.log, "w") as log:
        while proc.poll() is None:
            try:
                record = {"t": round(time.perf_counter() - start, 1), **sample(proc.pid)}
            except Exception:  # the process ended between poll() and the sample
                break
            samples.append(record)
            log.write(json.dumps(record) + "\n")
            log.flush()
            time.sleep(args.every)
    proc.wait()
    peak = max(samples, key=lambda r: r["total_pss"]) if samples else {}
    uss: dict[str, int] = {}
    for record in samples:
        pids = [k for k in record if k not in ("t", "total_pss")]
        if len(pids) > 1:
            for pid in pids:
                uss[pid] = max(uss.get(pid, 0), record[pid][2])
    summary = {
        "returncode": proc.returncode,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_total_pss_mb": peak.get("total_pss", 0),
        "peak_sample": peak,
        "largest_uss_mb_while_shared": uss,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    sys.exit(main()["returncode"])
