"""``gconv explain``: per-atom scores of a model directory's predictions, as a CSV and pictures;
for an image model, one class-activation-map overlay per image (``--images``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gconv.cli._utils import add_model_arguments, load_directory
from gconv.errors import UsageError
from gconv.image.explanation import METHODS, explain_images
from gconv.molecule.explanation import explain_molecules
from gconv.molecule.prediction import read_chunks

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "explain predictions atom by atom, or pixel by pixel (a picture per molecule or image)"
DESCRIPTION = (
    "Writes atoms.csv (molecule, smiles, atom_index, element, one signed score per task in the "
    "task's units: the atom's share of the predicted value or logit; 'error' for a SMILES that "
    "cannot be read) and molecule_<k>.png (red raises the first task's output, blue lowers it). "
    "The method is the one gconv recommends for the model, printed with its reason. An image "
    "model (--images): <name>.png per image (a Grad-CAM overlay titled with the predicted class "
    "and its probability) and explanations.csv."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, test_path_required=False, images=True)
    p.add_argument("--smiles", nargs="+", metavar="S", help="SMILES to explain (or --test-path)")
    p.add_argument("-o", "--output-dir", type=Path, required=True, metavar="DIR",
                   help="where atoms.csv and the pictures go")  # fmt: skip
    p.add_argument("--no-pictures", dest="draw", action="store_false",
                   help="write atoms.csv only")  # fmt: skip
    p.add_argument("--method", choices=METHODS, default="gradcam", metavar="NAME",
                   help="image model: gradcam | gradcam++ | cam (a GAP head)")  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Explains ``--smiles`` or the SMILES column of ``--test-path`` (or an image model's
    ``--images``); prints one summary line."""
    if args.images is not None:
        if args.smiles is not None or args.test_path is not None:
            raise UsageError("give --images, or molecules as --smiles / --test-path, not both")
        return run_images(args)
    if (args.smiles is None) == (args.test_path is None):
        raise UsageError("give the molecules as --smiles S [S ...] or as --test-path CSV (one)")
    model = load_directory(args)
    if args.smiles is not None:
        smiles = list(args.smiles)
    else:
        column = args.smiles_column or model.smiles_column
        _, index, chunks = read_chunks(args.test_path, column, args.chunk_size)
        smiles = [row[index] for chunk in chunks for row in chunk]
    summary = explain_molecules(
        model, smiles, args.output_dir, batch_size=args.batch_size, draw=args.draw
    )
    print(f"explained with {summary['method']}: {summary['reason']}")
    failed = f"; {summary['failed']:,} could not be read (see 'error')" if summary["failed"] else ""
    print(
        f"wrote {summary['atoms']:,} atom scores of {summary['molecules']:,} molecules into "
        f"{args.output_dir}{failed}"
    )
    return summary


def run_images(args: argparse.Namespace) -> dict[str, Any]:
    """One overlay per image of ``--images`` into ``--output-dir``."""
    model = load_directory(args, kinds=("image",))
    summary = explain_images(model, args.images, args.output_dir, method=args.method)
    failed = f"; {summary['failed']:,} could not be read (see 'error')" if summary["failed"] else ""
    print(
        f"explained {summary['images'] - summary['failed']:,} images with {args.method} into "
        f"{args.output_dir}{failed}"
    )
    return summary
