"""What ``gconv predict``, ``explain`` and ``fingerprint`` share: the model-directory flags and
loading a directory by its kind (``config.json``'s ``kind``: ``molecule`` or ``image``)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gconv.errors import UsageError
from gconv.image.model_dir import load_model as load_image_model
from gconv.model_dir import read_config
from gconv.molecule.model_dir import load_model
from gconv.molecule.prediction import CHUNK_SIZE
from gconv.molecule.training import resolve_device

__all__ = [
    "CompactHelpFormatter",
    "CompactRawHelpFormatter",
    "respell",
    "add_model_arguments",
    "load_directory",
    "default_output",
    "print_summary",
]

# model-directory kind -> its loader
LOADERS = {"molecule": load_model, "image": load_image_model}
# model-directory kind -> the flag that gives its inputs
INPUT_FLAGS = {"molecule": "--test-path CSV", "image": "--images DIR"}


def respell(message: str, parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """``message`` with each option named as the user typed it: the library names an option by
    its first long flag (``--output-dir``); where ``argv`` used an alias (``--out``), so does the
    message."""
    typed = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
    for action in parser._actions:
        names = [s for s in action.option_strings if s.startswith("--")]
        if not names or names[0] in typed:
            continue
        alias = next((name for name in names[1:] if name in typed), None)
        if alias is not None:
            message = re.sub(rf"(?<![\w-]){re.escape(names[0])}(?![\w-])", alias, message)
    return message


class CompactHelpFormatter(argparse.HelpFormatter):
    """Help on one screen: an option shows its short flag and first long name with the metavar
    once (``-i, --data-path CSV``; aliases are listed in the epilog and ``docs/cli.md``), its help
    on the same line, 100 columns at most."""

    def __init__(self, prog: str) -> None:
        import shutil

        width = min(shutil.get_terminal_size((100, 24)).columns, 100)
        super().__init__(prog, max_help_position=34, width=width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        text = " ".join(text.split())  # flags such as --target-columns are not split at "-"
        return textwrap.fill(
            text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        short = [s for s in action.option_strings if not s.startswith("--")]
        long = [s for s in action.option_strings if s.startswith("--")]
        flags = ", ".join(short[:1] + long[:1])
        if isinstance(action, argparse.BooleanOptionalAction):
            return f"--[no-]{long[0][2:]}"
        if action.nargs == 0:
            return flags
        if action.nargs == "+":  # one line: "--target-columns NAME..."
            return f"{flags} {self._metavar_formatter(action, action.dest.upper())(1)[0]}..."
        return (
            f"{flags} {self._format_args(action, self._get_default_metavar_for_optional(action))}"
        )


class CompactRawHelpFormatter(CompactHelpFormatter):
    """:class:`CompactHelpFormatter` that prints the description as written (a script's
    docstring)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "".join(indent + line for line in text.splitlines(keepends=True))


def add_model_arguments(
    p: argparse.ArgumentParser, test_path_required: bool = True, images: bool = False
) -> None:
    """``--model-path``, ``--test-path`` (or, with ``images``, ``--images``),
    ``--smiles-columns`` and the run options."""
    p.add_argument("-i", "--test-path", type=Path, required=test_path_required and not images,
                   metavar="CSV", help="CSV with a header row and a SMILES column")  # fmt: skip
    if images:
        p.add_argument("--images", type=Path, nargs="+", metavar="PATH",
                       help="image model: image files or folders (searched recursively)")  # fmt: skip
    p.add_argument("--model-path", "--model-paths", dest="model_paths", type=Path, nargs="+",
                   required=True, metavar="DIR", help="the model directory `gconv train` wrote")  # fmt: skip
    p.add_argument("-s", "--smiles-columns", dest="smiles_column", metavar="NAME",
                   help="SMILES column (default: the training file's name for it)")  # fmt: skip
    p.add_argument("-b", "--batch-size", type=int, default=256, metavar="N")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, metavar="ROWS",
                   help="rows read and written at a time (memory stays flat)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's)")


def load_directory(args: argparse.Namespace, kinds: Sequence[str] = ("molecule",)) -> Any:
    """The model in the one ``--model-path`` directory, loaded by the loader of its kind; a
    kind the command does not take (``kinds``), or the other kind's input flag, is refused."""
    if len(args.model_paths) != 1:
        raise UsageError(
            f"--model-path takes one model directory (its model_<k> members are the ensemble), "
            f"got {len(args.model_paths)}: {[str(p) for p in args.model_paths]}"
        )
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    directory = args.model_paths[0]
    kind = read_config(directory).get("kind")
    if kind not in LOADERS:
        raise UsageError(f"{directory} holds a {kind!r} model; this gconv reads {list(LOADERS)}")
    takes_images = hasattr(args, "images")
    if kind == "image" and not takes_images:
        raise UsageError(f"{directory} holds an image model; this command takes molecule models")
    if takes_images and (args.images is not None or getattr(args, "test_path", None) is not None):
        given = "--images" if args.images is not None else "--test-path"
        if not INPUT_FLAGS[kind].startswith(given):
            article = "an" if kind == "image" else "a"
            raise UsageError(
                f"{directory} holds {article} {kind} model: give its inputs as "
                f"{INPUT_FLAGS[kind]}, not {given}"
            )
    if kind not in kinds:
        article = "an" if kind == "image" else "a"
        raise UsageError(
            f"{directory} holds {article} {kind} model; give its inputs as {INPUT_FLAGS[kind]}"
        )
    return LOADERS[kind](directory, device=resolve_device(args.device))


def default_output(test_path: Path, suffix: str) -> Path:
    """chemprop's default: next to the input, ``<stem><suffix>.csv``."""
    return test_path.parent / f"{test_path.stem}{suffix}.csv"


def print_summary(
    summary: dict[str, Any], where: str | Path, done: str, noun: str = "rows"
) -> None:
    """The one line a predicting command ends with: how many inputs could not be read and where
    their reasons are, or ``done`` when every input was read."""
    if summary["failed"]:
        print(
            f"{summary['failed']:,} of {summary['rows']:,} {noun} could not be read: see the "
            f"'error' column of {where}"
        )
    else:
        print(done)
