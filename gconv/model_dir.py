"""What every kind of model directory shares (``docs/model-directory.md``): the format name and
version, ``config.json`` read with its checks and written atomically, JSON-ready values, and
weight files read with ``torch.load(weights_only=True)``.

:mod:`gconv.molecule.model_dir` and :mod:`gconv.image.model_dir` build on it; the ``kind`` entry
of ``config.json`` (``"molecule"``, ``"image"``) says which one reads a directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gconv
from gconv.errors import UsageError
from gconv.train.checkpoint import CheckpointError, atomic_write, load_checkpoint

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CONFIG_FILE",
    "read_config",
    "write_config",
    "jsonable",
    "load_tensors",
]

FORMAT = "gconv-model-directory"
#: Raised whenever a change would make an older gconv misread a directory.
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists, paths as strings and NumPy / torch numbers as Python's."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # NumPy and torch scalars and arrays
        return value.tolist()
    return value


def write_config(directory: str | os.PathLike, config: dict[str, Any]) -> None:
    """Writes ``config`` as ``directory/config.json``, atomically (a crash leaves the old file or
    the new one)."""
    text = json.dumps(jsonable(config), indent=2) + "\n"
    atomic_write(Path(directory) / CONFIG_FILE, lambda f: f.write(text.encode()))


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """``config.json`` of a model directory, checked: the format, its version, the kind.

    Raises:
        UsageError: no such directory, no ``config.json``, unreadable JSON, another format or
            format version.
    """
    directory = Path(directory)
    if not directory.exists():
        raise UsageError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise UsageError(
            f"{directory} is a file; a model path is the directory that `gconv train "
            "--output-dir` wrote (it holds config.json)"
        )
    path = directory / CONFIG_FILE
    if not path.is_file():
        entries = sorted(p.name for p in directory.iterdir())[:8]
        raise UsageError(
            f"{directory} is not a gconv model directory: it has no {CONFIG_FILE} (it holds "
            f"{entries or 'nothing'}); `gconv train --output-dir` writes one"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise UsageError(f"{path} is not a gconv model directory's configuration (no {FORMAT!r})")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise UsageError(
            f"{directory} is model-directory format {version!r} (written by gconv "
            f"{config.get('gconv_version', '?')}); this gconv {gconv.__version__} reads format "
            f"{FORMAT_VERSION}: predict with the gconv that wrote it, or retrain"
        )
    return config


def load_tensors(path: Path, directory: Path) -> dict[str, Any]:
    """A weights or scaler file of ``directory``, read with ``torch.load(weights_only=True)``.

    Raises:
        UsageError: the file is missing (named relative to ``directory``), torn or not a
            checkpoint.
    """
    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise UsageError(
            f"{directory} is missing {path.relative_to(directory)} (listed in {CONFIG_FILE})"
        ) from None
    except CheckpointError as err:
        raise UsageError(str(err).split(" (")[0]) from None
