"""``gconv fingerprint``: a model directory's learned molecule representations as CSV files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gconv.cli._utils import (
    add_model_arguments,
    default_output,
    load_directory,
    print_summary,
)
from gconv.molecule.prediction import fingerprint_csv

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "write the learned molecule embeddings of a CSV of SMILES"
DESCRIPTION = (
    "One CSV per ensemble member, chemprop's names: --output out.csv writes out_0.csv, "
    "out_1.csv, ... with the SMILES, fp_0 .. fp_<D-1> (the readout's embedding, the head's input) "
    "and 'error' (why a row could not be read: its cells stay empty)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("-o", "--output", "--preds-path", dest="output", type=Path, metavar="CSV",
                   help="output name (default: <test stem>_fps.csv; _<k> is appended)")  # fmt: skip
    p.add_argument("--ffn-block-index", type=int, default=0, metavar="K",
                   help="0: the readout's embedding; k: the head's k-th linear layer's output")  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Writes the fingerprints; prints one summary line."""
    model = load_directory(args)
    output = args.output or default_output(args.test_path, "_fps")
    summary = fingerprint_csv(
        model,
        args.test_path,
        output,
        smiles_column=args.smiles_column,
        block=args.ffn_block_index,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
    )
    files = ", ".join(str(p) for p in summary["paths"])
    print_summary(
        summary, files, f"wrote {summary['dim']} features of {summary['rows']:,} rows into {files}"
    )
    return summary
