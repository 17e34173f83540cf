"""``gconv train``: the flags of :func:`gconv.molecule.train`, chemprop v2's names first and
``examples/molecule_gcn.py``'s as aliases; with ``--images DIR``, :func:`gconv.image.train` on a
folder of images (the flags of the "images" group, and the training flags they share)."""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

from gconv.cli._utils import CompactHelpFormatter, CompactRawHelpFormatter, respell
from gconv.data.folders import COLOR_MODES
from gconv.image.training import AUGMENTATIONS, MODELS
from gconv.image.training import check_options as check_image_options
from gconv.image.training import train as image_train
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

HELP = "train a molecule or image model into a model directory"
DESCRIPTION = (
    "Train a graph network on a CSV of SMILES, or a CNN on images (--images DIR), into a model "
    "directory for `gconv predict` (--output-dir). Aliases, image defaults: docs/cli.md."
)
IMAGE_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(image_train).parameters.items()
    if p.default is not inspect.Parameter.empty
}
# flags whose default differs for images: recorded when given (argparse cannot tell otherwise)
IMAGE_SHARED = ("epochs", "batch_size", "lr", "weight_decay", "seed", "device", "resume",
                "output_dir", "split_sizes", "quiet")  # fmt: skip
IMAGE_ONLY = {"model": "--model", "image_size": "--image-size", "color_mode": "--color-mode",
              "augment": "--augment", "weights_path": "--weights-path"}  # fmt: skip
_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(train).parameters.items()
    if p.default is not inspect.Parameter.empty
}


def _split_type(value: str) -> str:
    """chemprop's split names: ``scaffold_balanced`` is gconv's balanced ``scaffold``."""
    value = value.lower()
    return "scaffold" if value == "scaffold_balanced" else value


USAGE = "%(prog)s [-i CSV --target-columns NAME [NAME ...] | --images DIR] [-o DIR] [options]"
EPILOG = (  # wrapped here: a script's parser prints it as written
    "examples/molecule_gcn.py's names work too: --csv, --smiles-col, --target-col,\n"
    "--split-column, --ensemble, --out; and chemprop's --split-type, --aggregation,\n"
    "--message-hidden-dim, --depth, --max-lr, --save-dir. docs/cli.md has the details."
)


class _Given(argparse.Action):
    """Stores the value and records that the flag was given (``args.given``): the image
    defaults differ from the molecule ones that the parser shows."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = sorted({*getattr(namespace, "given", ()), self.dest})


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    p.usage = USAGE
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
    # one help line for the three (the help fits one screen); docs/cli.md has each
    data.add_argument("--store", choices=STORES, default=d["store"], metavar="WHERE",
                      help=f"auto (disk from {STORE_THRESHOLD_ROWS // 1000}k rows) | memory | disk; "
                      "--store-dir, -n N workers")
    data.add_argument("--store-dir", type=Path, default=d["store_dir"], metavar="DIR",
                      help=argparse.SUPPRESS)
    data.add_argument("-n", "--num-workers", type=int, default=d["num_workers"], metavar="N",
                      help=argparse.SUPPRESS)
    images = p.add_argument_group("images")
    images.add_argument("--images", type=Path, metavar="DIR",
                        help="train on DIR/<class>/* (or DIR/train|val|test/<class>/*) instead")
    images.add_argument("--model", choices=MODELS, metavar="NAME",
                        help="cnn (the MNIST example's) | resnet18 | vgg11 | vgg16 (+_bn)")
    images.add_argument("--image-size", type=int, nargs="+", metavar="N",
                        help="resize to N x N or H W (default: the common size, <= 64; 224)")
    images.add_argument("--color-mode", choices=COLOR_MODES, metavar="MODE",
                        help="auto (the images'; mixed is an error) | grayscale | rgb")
    images.add_argument("--augment", choices=AUGMENTATIONS, metavar="HOW",
                        help="affine (rotate, zoom, shift) | shift | flip (+ affine) | none")
    images.add_argument("--weights-path", type=Path, metavar="FILE",
                        help="local torchvision weights of --model (the backbone stays frozen)")
    model = p.add_argument_group("model")
    model.add_argument("--conv", choices=CONVS, default=d["conv"], metavar="NAME",
                       help="message passing: dmpnn | gine | gcn")
    model.add_argument("--readout", "--aggregation", choices=READOUTS, default=d["readout"],
                       metavar="NAME", help="auto | norm | sum | mean | max | meanmax | attention |"
                       " set2set")
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
                          action=_Given,
                          help="molecules per step (64)")
    training.add_argument("--lr", "--max-lr", dest="lr", type=float, default=d["lr"],
                          metavar="LR", action=_Given, help="peak of the one-cycle AdamW schedule (2e-3)")
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
                        type=Path, default=Path(d["output_dir"]), metavar="DIR", action=_Given,
                        help=f"the model directory ({d['output_dir']}; images: runs/images)")
    output.add_argument("--baselines", action=argparse.BooleanOptionalAction,
                        default=d["baselines"],
                        help="also fit the constant and fingerprint ones (on; off on disk)")
    output.add_argument("--calibration", action=argparse.BooleanOptionalAction,
                        default=d["calibration"],
                        help="on validation: conformal intervals, temperature scaling")
    output.add_argument("--calibration-holdout", action=argparse.BooleanOptionalAction,
                        default=d["calibration_holdout"],
                        help="regression: on validation scaffolds that chose no epoch (off)")
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
        epilog=EPILOG,
        formatter_class=CompactRawHelpFormatter if description else CompactHelpFormatter,
        allow_abbrev=False,
    )
    add_arguments(p)
    return p


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _DEFAULTS if hasattr(args, name)} | {
        "data_path": args.data_path
    }


def _image_options(args: argparse.Namespace) -> dict[str, Any]:
    given = set(getattr(args, "given", ()))
    options = {**IMAGE_DEFAULTS, "images": args.images}
    for name in IMAGE_SHARED:
        value = getattr(args, name)
        if name in ("batch_size", "lr", "output_dir") and name not in given:
            value = IMAGE_DEFAULTS[name]
        options[name] = value
    for name in IMAGE_ONLY:
        value = getattr(args, name)
        options[name] = IMAGE_DEFAULTS[name] if value is None else value
    return options


def _long_flags() -> dict[str, str]:
    """dest -> the first long flag of ``gconv train``'s options."""
    return {
        action.dest: next(s for s in action.option_strings if s.startswith("--"))
        for action in build_parser()._actions
        if any(s.startswith("--") for s in action.option_strings)
    }


def check(args: argparse.Namespace) -> None:
    """The option checks that need no data (raises :class:`~gconv.molecule.UsageError`): a
    molecule option with ``--images`` or an image option without it is refused by name."""
    if args.images is None:
        used = [flag for name, flag in IMAGE_ONLY.items() if getattr(args, name) is not None]
        if used:
            raise UsageError(f"{used[0]} is an image option: give the folder with --images DIR")
        check_options(_options(args))
        return
    molecule_defaults = {**_DEFAULTS, "data_path": None, "num_classes": None, "limit": None,
                         "task_weights": None, "class_balance": False}  # fmt: skip
    for name, default in molecule_defaults.items():
        if name in IMAGE_SHARED or name in ("images",) or not hasattr(args, name):
            continue
        value = getattr(args, name)
        value = tuple(value) if isinstance(value, list) else value
        default = tuple(default) if isinstance(default, (list, tuple)) else default
        if value != default:
            flag = _long_flags().get(name, "--" + name.replace("_", "-"))
            raise UsageError(f"{flag} is a molecule option; --images trains an image model")
    check_image_options(_image_options(args))


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
    """Trains (:func:`gconv.molecule.train`, or :func:`gconv.image.train` with ``--images``);
    returns the metrics."""
    if getattr(args, "images", None) is not None:
        return image_train(**_image_options(args))
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
