"""The ``gconv`` command: one entry point (console script and ``python -m gconv``), chemprop's flag
names with the example's as aliases, help on one screen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gconv.cli import SUBCOMMANDS, build_parser, main
from gconv.cli import train as train_command

ROOT = Path(__file__).resolve().parents[2]


def test_console_script_and_module_entry_point():
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    assert '[project.scripts]\ngconv = "gconv.cli:main"' in pyproject
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "gconv", "--help"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert all(name in done.stdout for name in ("train", "predict", "fingerprint"))


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_help_fits_on_one_screen(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 60 and max(len(line) for line in lines) <= 100


def test_chemprop_names_and_the_examples_names_are_the_same_options():
    chemprop = train_command.parse_args(
        ["--data-path", "a.csv", "--smiles-columns", "smi", "--target-columns", "y", "z",
         "--splits-column", "split", "--ensemble-size", "3", "--output-dir", "out",
         "--split-type", "scaffold_balanced", "--aggregation", "norm", "--depth", "4",
         "--message-hidden-dim", "32", "--max-lr", "0.01", "-t", "regression", "-b", "16"]
    )  # fmt: skip
    example = train_command.parse_args(
        ["--csv", "a.csv", "--smiles-col", "smi", "--target-col", "y", "z",
         "--split-column", "split", "--ensemble", "3", "--out", "out", "--split", "scaffold",
         "--readout", "norm", "--layers", "4", "--hidden", "32", "--lr", "0.01",
         "--batch-size", "16"]
    )  # fmt: skip
    assert vars(chemprop) == vars(example)
    assert chemprop.data_path == Path("a.csv") and chemprop.target_columns == ["y", "z"]
    assert chemprop.split == "scaffold" and chemprop.output_dir == Path("out")


def test_defaults_are_the_examples():
    args = train_command.parse_args([])
    assert (args.conv, args.readout, args.hidden, args.layers, args.head_hidden) == (
        "dmpnn", "auto", 128, 3, [128],
    )  # fmt: skip
    assert (args.lr, args.batch_size, args.epochs, args.ensemble_size) == (2e-3, 64, None, 1)
    assert (args.split, args.split_sizes, args.task_type) == (
        "scaffold",
        [0.8, 0.1, 0.1],
        "regression",
    )
    assert args.output_dir == Path("runs/molecule_gcn") and args.threads == 1
    assert args.baselines is None and args.store == "auto"  # baselines: on in memory, off on disk


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--data-path", "x.csv"], "--data-path needs --target-columns"),
        (["--limit", "0"], "--limit must be >= 1, got 0"),
        (["--splits-column", "s"], "--splits-column needs --data-path"),
        (["--task-type", "classification"], "embedded sets are regression sets"),
        (["--split", "kennard_stone"], "invalid choice"),
        (["--data-path", "x", "--target-columns", "y", "--class-balance"], "--class-balance needs"),
    ],
)
def test_bad_flag_combinations_are_argparse_errors(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_a_usage_error_at_run_time_is_one_line_and_exit_status_1(tmp_path, capsys):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "gconv", "train", "--data-path", "missing.csv"]
    done = subprocess.run(
        [*command, "--target-columns", "y", "-o", "out"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "Warning" not in line]
    assert (
        errors[-1].startswith("error: cannot read missing.csv") and "Traceback" not in done.stderr
    )


def test_parser_lists_every_subcommand():
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    assert set(actions[0].choices) == {"train", "predict", "explain", "fingerprint"}
