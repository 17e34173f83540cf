"""``gconv train``: the flags of :func:`gconv.molecule.train`, chemprop v2's names first and
``examples/molecule_gcn.py``'s as aliases."""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

from gconv.cli._utils import CompactHelpFormatter, CompactRawHelpFormatter, respell
from gconv.models.gnn import CONVS
from gconv.molecule.errors import UsageError
from gconv.molecule.tasks import TASK_TYPES
from gconv.molecule.training import (
    DATASETS,
    READOUTS,
    STORE_THRESHOLD_ROWS,
    STORES,
    check_options,
    train,
)

__all__ = [
    "HELP",
    "DESCRIPTION",
    "add_arguments",
    "build_parser",
    "parse_args",
    "check",
    "run",
    "main",
]

HELP = "train a molecule model into a model directory"
DESCRIPTION = (
    "Train a graph network on SMILES (regression, binary classification, multiclass; several "
    "--target-columns = multi-task, empty cells = missing labels). Writes --output-dir: a model "
    "directory for `gconv predict` (config.json, scalers.pt, model_<k>/best.pt), metrics.json, "
    "predictions.csv, parity.png. Model selection uses the validation split only."
)
_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(train).parameters.items()
    if p.default is not inspect.Parameter.empty
}


def _split_type(value: str) -> str:
    """chemprop's split names: ``scaffold_balanced`` is gconv's balanced ``scaffold``."""
    value = value.lower()
    return "scaffold" if value == "scaffold_balanced" else value


USAGE = "%(prog)s [-i CSV --target-columns NAME [NAME ...]] [-o DIR] [options]"
EPILOG = (  # wrapped here: a script's parser prints it as written
    "examples/molecule_gcn.py's names work too: --csv, --smiles-col, --target-col,\n"
    "--split-column, --ensemble, --out; and chemprop's --split-type, --aggregation,\n"
    "--message-hidden-dim, --depth, --max-lr, --save-dir. docs/cli.md has the details."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    p.usage, p.epilog = USAGE, EPILOG
    # fmt: off
    data = p.add_argument_group("data")
    data.add_argument("-i", "--data-path", "--csv", dest="data_path", type=Path, metavar="CSV",
                      help="training CSV with a header row (default: the embedded --dataset)")
    data.add_argument("--dataset", choices=DATASETS, default=d["dataset"], metavar="NAME",
                      help="embedded set without --data-path: chembl (pIC50) | tpsa")
    data.add_argument("-s", "--smiles-columns", "--smiles-col", dest="smiles_column",
                      default=d["smiles_column"], metavar="NAME", help="SMILES column")
    data.add_argument("--target-columns", "--target-col", dest="target_columns", nargs="+",
                      metavar="NAME", help="target column(s); several = multi-task")
    data.add_argument("-t", "--task-type", choices=TASK_TYPES, default=d["task_type"],
                      metavar="TYPE", help="regression | classification | multiclass")
    data.add_argument("--multiclass-num-classes", dest="num_classes", type=int, metavar="C",
                      help="classes per task (default: the largest label + 1)")
    data.add_argument("--splits-column", "--split-column", dest="splits_column", metavar="NAME",
                      help="column of train / val / test per row (a predefined split)")
    data.add_argument("--duplicates", choices=("error", "mean", "first"), default=d["duplicates"],
                      metavar="RULE", help="copies of a molecule with other labels: error | mean |"
                      " first")
    data.add_argument("--split", "--split-type", type=_split_type, choices=("scaffold", "random"),
                      default=d["split"], metavar="HOW", help="else: scaffold (Bemis-Murcko) | random")
    data.add_argument("--split-sizes", type=float, nargs=3, default=list(d["split_sizes"]),
                      metavar="F", help="train, val, test fractions (0.8 0.1 0.1)")
    data.add_argument("--limit", type=int, metavar="N", help="N random molecules (smoke runs)")
    data.add_argument("--store", choices=STORES, default=d["store"], metavar="WHERE",
                      help=f"auto (disk from {STORE_THRESHOLD_ROWS:,} rows) | memory | disk; "
                      "--store-dir DIR")
    data.add_argument("--store-dir", type=Path, default=d["store_dir"], metavar="DIR",
                      help=argparse.SUPPRESS)  # in --store's line: the help fits one screen
    data.add_argument("-n", "--num-workers", type=int, default=d["num_workers"], metavar="N",
                      help="featurising and data-loading processes (2 on disk, 0 in memory)")
    model = p.add_argument_group("model")
    model.add_argument("--conv", choices=CONVS, default=d["conv"], metavar="NAME",
                       help="message passing: dmpnn | gine | gcn")
    model.add_argument("--readout", "--aggregation", choices=READOUTS, default=d["readout"],
                       metavar="NAME", help="auto | norm | sum | mean | max | meanmax | attention |"
                       " set2set (auto: docs/cli.md)")
    model.add_argument("--hidden", "--message-hidden-dim", type=int, default=d["hidden"],
                       metavar="N", help="message-passing width (128)")
    model.add_argument("--layers", "--depth", type=int, default=d["layers"], metavar="N",
                       help="message-passing steps (3)")
    model.add_argument("--dropout", type=float, default=d["dropout"], metavar="P")
    model.add_argument("--batch-norm", action=argparse.BooleanOptionalAction,
                       default=d["batch_norm"], help="BatchNorm on the atom states (off)")
    model.add_argument("--head-hidden", type=int, nargs="*", default=list(d["head_hidden"]),
                       metavar="N", help="MLP head's hidden sizes (128; none: one Linear)")
    model.add_argument("--descriptors", action=argparse.BooleanOptionalAction,
                       default=d["descriptors"], help="RDKit 2D descriptors after the readout")
    model.add_argument("--ensemble-size", "--ensemble", dest="ensemble_size", type=int,
                       default=d["ensemble_size"], metavar="N", help="members (seeds seed..+N-1)")
    training = p.add_argument_group("training")
    training.add_argument("--epochs", type=int, default=d["epochs"], metavar="N",
                          help="100, or more for at least 1,200 optimizer steps")
    training.add_argument("-b", "--batch-size", type=int, default=d["batch_size"], metavar="N",
                          help="molecules per step (64)")
    training.add_argument("--lr", "--max-lr", dest="lr", type=float, default=d["lr"],
                          metavar="LR", help="peak of the one-cycle AdamW schedule (2e-3)")
    training.add_argument("--weight-decay", type=float, default=d["weight_decay"], metavar="W")
    training.add_argument("--task-weights", type=float, nargs="+", metavar="W",
                          help="one loss weight per target column")
    training.add_argument("--class-balance", action="store_true",
                          help="balance each task's classes by loss weights")
    training.add_argument("--seed", type=int, default=d["seed"], metavar="N",
                          help="split and member 0 (member k: seed + k)")
    training.add_argument("--device", default=d["device"], metavar="DEV",
                          help="auto | cpu | cuda | mps")
    training.add_argument("--threads", type=int, default=1, metavar="N",
                          help="CPU threads (1; 0: torch's default)")
    training.add_argument("--resume", action="store_true", help="continue from model_*/last.pt (same data, options; more --epochs)")
    output = p.add_argument_group("output")
    output.add_argument("-o", "--output-dir", "--save-dir", "--out", dest="output_dir",
                        type=Path, default=Path(d["output_dir"]), metavar="DIR",
                        help=f"the model directory ({d['output_dir']})")
    output.add_argument("--baselines", action=argparse.BooleanOptionalAction,
                        default=d["baselines"],
                        help="also fit the constant and fingerprint ones (on; off on disk)")
    output.add_argument("--calibration", action=argparse.BooleanOptionalAction,
                        default=d["calibration"],
                        help="on validation: conformal intervals, temperature scaling")
    output.add_argument("--confidence", type=float, default=d["confidence"], metavar="C",
                        help="coverage of the regression intervals (0.9)")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    # fmt: on


def build_parser(
    prog: str | None = None, description: str | None = None
) -> argparse.ArgumentParser:
    """A stand-alone ``gconv train`` parser (``examples/molecule_gcn.py`` uses it with its own
    name and docstring)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=description or DESCRIPTION,
        formatter_class=CompactRawHelpFormatter if description else CompactHelpFormatter,
        allow_abbrev=False,
    )
    add_arguments(p)
    return p


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _DEFAULTS if hasattr(args, name)} | {
        "data_path": args.data_path
    }


def check(args: argparse.Namespace) -> None:
    """The option checks that need no data (raises :class:`~gconv.molecule.UsageError`)."""
    check_options(_options(args))


def parse_args(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None):
    """Parses and checks ``gconv train``'s flags; a bad combination is an argparse error."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    try:
        check(args)
    except UsageError as err:
        parser.error(respell(str(err), parser, argv))
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Trains (:func:`gconv.molecule.train`); returns the metrics."""
    return train(**_options(args))


def main(
    argv: list[str] | None = None, prog: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """``gconv train`` as a stand-alone command named ``prog`` (``examples/molecule_gcn.py``):
    parses, trains, returns the metrics; a user error exits with one ``error:`` line."""
    from gconv.cli import run_command  # the package imports this module: import when called

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog, description)
    args = parse_args(argv, parser)
    return run_command(sys.modules[__name__], parser, args, argv)
