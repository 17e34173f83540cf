"""The ``gconv`` command (``python -m gconv``): ``gconv train``, ``gconv predict``,
``gconv explain``, ``gconv fingerprint``.

This package only parses and dispatches, as chemprop's ``chemprop/cli/``: each subcommand is a
module with ``HELP``, ``add_arguments(parser)`` and ``run(args)``, and ``run`` calls the library
(:mod:`gconv.molecule` for molecules). A :class:`~gconv.molecule.UsageError` from the library — a
missing file or column, a bad option, a model directory from another version — ends the command
with one ``error:`` line and exit status 1, without a traceback; ``argparse`` reports unknown or
malformed flags itself (exit status 2).

Flags are chemprop v2's names where the option is the same (``--data-path``,
``--smiles-columns``, ``--target-columns``, ``--task-type``, ``--splits-column``,
``--output-dir``, ``--ensemble-size``, ``--test-path``, ``--model-path``, ``--preds-path``, ...);
``examples/molecule_gcn.py``'s older names keep working as aliases. ``docs/cli.md`` lists them.

Example::

    $ gconv train --data-path sol.csv --target-columns logS --output-dir runs/sol
    $ gconv predict --model-path runs/sol --test-path new.csv --preds-path new_preds.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import torch

from gconv.cli import explain, fingerprint, predict, train
from gconv.cli._utils import CompactHelpFormatter, respell
from gconv.molecule.errors import UsageError

__all__ = ["SUBCOMMANDS", "build_parser", "run", "run_command", "respell", "main"]

#: Subcommand name -> its module (``HELP``, ``add_arguments(parser)``, ``run(args)``).
SUBCOMMANDS = {
    "train": train,
    "predict": predict,
    "explain": explain,
    "fingerprint": fingerprint,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``gconv`` parser with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="gconv",
        description="Graph networks for molecules: train a model directory, then predict with it.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        sub = commands.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=CompactHelpFormatter,
            allow_abbrev=False,
        )
        module.add_arguments(sub)
        sub.set_defaults(_command=module, _parser=sub)
    return parser


def run(argv: list[str] | None = None) -> Any:
    """Parses ``argv`` and runs the subcommand; returns its result (``train``: the metrics,
    ``predict`` / ``fingerprint``: what was written).

    Raises:
        SystemExit: ``"error: ..."`` (one line) for a user error, or argparse's exit for bad flags.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    return run_command(args._command, args._parser, args, argv)


def run_command(
    command: Any,
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    argv: Sequence[str] = (),
) -> Any:
    """Runs one subcommand's ``run(args)`` with ``--threads`` applied (and the caller's thread
    count restored afterwards); a :class:`~gconv.molecule.UsageError` exits with one line, its
    options named as ``argv`` spelled them (:func:`respell`)."""
    if hasattr(command, "check"):
        try:
            command.check(args)
        except UsageError as err:
            parser.error(respell(str(err), parser, argv))
    threads = torch.get_num_threads()
    if getattr(args, "threads", 0) > 0:
        torch.set_num_threads(args.threads)
    try:
        return command.run(args)
    except UsageError as err:
        sys.exit(f"error: {respell(str(err), parser, argv)}")
    finally:
        torch.set_num_threads(threads)  # leave the caller's process as we found it


def main(argv: list[str] | None = None) -> int:
    """The console script: runs the command and returns the exit status 0."""
    run(argv)
    return 0
