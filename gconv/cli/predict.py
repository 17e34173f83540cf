"""``gconv predict``: a model directory's predictions for a CSV of SMILES (chemprop's format) or,
for an image model, for ``--images`` (one row per file)."""

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
from gconv.errors import UsageError
from gconv.image.prediction import predict_images
from gconv.molecule.prediction import predict_csv

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "predict a CSV of SMILES, or image files, with a model directory"
DESCRIPTION = (
    "Writes the input columns, one column per task (the value; the probability of class 1; the "
    "predicted class and <task>_class_<k> probabilities), <task>_std with an ensemble, "
    "<task>_lo / <task>_hi with a calibrated interval, and 'error' (why a row could not be read: "
    "its predictions stay empty). Reads and writes in chunks. An image model (--images): path, "
    "class, prob_<class> per class, error."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, images=True)
    p.add_argument("-o", "--preds-path", "--output", dest="preds_path", type=Path, metavar="CSV",
                   help="predictions CSV (default: <test stem>_preds.csv next to it)")  # fmt: skip
    p.add_argument("--drop-extra-columns", action="store_true",
                   help="keep only the SMILES column of the input")  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Predicts ``--test-path`` (or ``--images``) into ``--preds-path``; prints one summary
    line."""
    if args.images is not None:
        return run_images(args)
    if args.test_path is None:
        raise UsageError("give the inputs: --test-path CSV (molecules) or --images PATH (images)")
    model = load_directory(args)
    preds_path = args.preds_path or default_output(args.test_path, "_preds")
    summary = predict_csv(
        model,
        args.test_path,
        preds_path,
        smiles_column=args.smiles_column,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        drop_extra_columns=args.drop_extra_columns,
    )
    print_summary(summary, preds_path, f"predicted {summary['rows']:,} rows into {preds_path}")
    return summary


def run_images(args: argparse.Namespace) -> dict[str, Any]:
    """An image model's predictions for ``--images`` (files or folders) into ``--preds-path``."""
    if args.preds_path is None:
        raise UsageError("--images needs --preds-path CSV (where the predictions go)")
    model = load_directory(args, kinds=("image",))
    summary = predict_images(
        model, args.images, args.preds_path, batch_size=args.batch_size, chunk_size=args.chunk_size
    )
    done = f"predicted {summary['rows']:,} images into {args.preds_path}"
    print_summary(summary, args.preds_path, done, noun="images")
    return summary
