r"""``gconv predict`` and ``gconv fingerprint`` as functions: a CSV of SMILES in, a CSV out, read
and written in chunks so that memory does not grow with the number of rows.

Every input row keeps its place. A row whose SMILES cannot be read (empty, unparsable, rejected
by RDKit's sanitisation) gets empty prediction cells and the reason in the ``error`` column; the
other rows are predicted. Output files are written to a temporary file and renamed when complete,
so an interrupted run leaves no half-written file.

The predictions file follows chemprop's convention: the input columns (one that has the name of
an output column is replaced by it, as in chemprop), then :meth:`MoleculeModel.column_names`,
then ``error`` (empty where the row was predicted).
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from gconv.data import format_number
from gconv.molecule.errors import UsageError
from gconv.molecule.model import MoleculeModel

__all__ = ["CHUNK_SIZE", "read_chunks", "predict_csv", "fingerprint_paths", "fingerprint_csv"]

#: Rows read, featurised and written at a time.
CHUNK_SIZE = 10_000


def read_chunks(
    path: str | os.PathLike, smiles_column: str, chunk_size: int = CHUNK_SIZE
) -> tuple[list[str], int, Iterator[list[list[str]]]]:
    """Opens a CSV with a header row: ``(header, index of the SMILES column, chunks of rows)``.

    The file stays open until the chunks are consumed. Rows shorter than the header are padded
    with empty cells.

    Raises:
        UsageError: the file cannot be read, is empty, or has no column ``smiles_column``.
    """
    path = Path(path)
    if chunk_size < 1:
        raise UsageError(f"--chunk-size must be >= 1, got {chunk_size}")
    try:
        f = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the generator
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    reader = csv.reader(f)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as err:
        f.close()
        raise UsageError(f"cannot read {path}: {err}") from None
    if not header:
        f.close()
        raise UsageError(f"{path} is empty: expected a header row naming the columns")
    if smiles_column not in header:
        f.close()
        raise UsageError(
            f"{path} has no SMILES column {smiles_column!r}; its columns are {header} (name the "
            "column with --smiles-columns)"
        )

    def chunks() -> Iterator[list[list[str]]]:
        with f:
            chunk: list[list[str]] = []
            try:
                for row in reader:
                    chunk.append(row + [""] * (len(header) - len(row)))
                    if len(chunk) == chunk_size:
                        yield chunk
                        chunk = []
            except (csv.Error, UnicodeDecodeError) as err:
                raise UsageError(f"cannot read {path} at line {reader.line_num}: {err}") from None
            if chunk:
                yield chunk

    return header, header.index(smiles_column), chunks()


@contextlib.contextmanager
def _atomic_csv_writers(paths: Sequence[Path]) -> Iterator[list[Any]]:
    """CSV writers on temporary files next to ``paths``, renamed over them on success."""
    files: list[tuple[IO[str], str]] = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            files.append((os.fdopen(fd, "w", newline="", encoding="utf-8"), tmp))
        yield [csv.writer(f) for f, _ in files]
        for (f, tmp), path in zip(files, paths, strict=True):
            f.close()
            os.replace(tmp, path)
    finally:
        for f, tmp in files:
            f.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _cell(value: Any, failed: bool) -> str:
    if failed:
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return format_number(float(value))


def predict_csv(
    model: MoleculeModel,
    test_path: str | os.PathLike,
    preds_path: str | os.PathLike,
    smiles_column: str | None = None,
    batch_size: int = 256,
    chunk_size: int = CHUNK_SIZE,
    drop_extra_columns: bool = False,
) -> dict[str, Any]:
    """Predicts every row of ``test_path`` into ``preds_path`` (see the module docstring).

    Args:
        model (MoleculeModel): From :func:`gconv.molecule.load_model`.
        test_path: CSV with a header row and a SMILES column.
        preds_path: The predictions CSV to write.
        smiles_column (str, optional): (default: the training file's SMILES column name)
        batch_size (int, optional): Molecules per forward pass. (default: :obj:`256`)
        chunk_size (int, optional): Rows read and written at a time. (default: 10,000)
        drop_extra_columns (bool, optional): Keep only the SMILES column of the input.
            (default: :obj:`False`)

    Returns:
        ``{"rows": n, "failed": k, "path": preds_path}``.
    """
    preds_path = Path(preds_path)
    smiles_column = smiles_column or model.smiles_column
    header, smiles_index, chunks = read_chunks(test_path, smiles_column, chunk_size)
    outputs = model.column_names()
    keep = [
        i
        for i, name in enumerate(header)
        if name not in outputs and name != "error" and (not drop_extra_columns or i == smiles_index)
    ]
    rows = failed = 0
    with _atomic_csv_writers([preds_path]) as (writer,):
        writer.writerow([header[i] for i in keep] + outputs + ["error"])
        for chunk in chunks:
            table = model.predict([row[smiles_index] for row in chunk], batch_size)
            for i, row in enumerate(chunk):
                error = table["error"][i]
                cells = [row[j] for j in keep]
                cells += [_cell(table[name][i], bool(error)) for name in outputs]
                writer.writerow([*cells, error])
                failed += bool(error)
            rows += len(chunk)
    return {"rows": rows, "failed": failed, "path": preds_path}


def fingerprint_paths(output: str | os.PathLike, members: int) -> list[Path]:
    """chemprop's names: one file per member, its index appended to the stem (``fps_0.csv``)."""
    output = Path(output)
    return [output.with_name(f"{output.stem}_{k}{output.suffix}") for k in range(members)]


def fingerprint_csv(
    model: MoleculeModel,
    test_path: str | os.PathLike,
    output: str | os.PathLike,
    smiles_column: str | None = None,
    block: int = 0,
    batch_size: int = 256,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Any]:
    """Writes every member's learned molecule representation (:meth:`MoleculeModel.embed`) of
    every row of ``test_path``: one CSV per member, ``<stem>_<k><suffix>`` (chemprop's
    ``fingerprint`` files), with columns ``<smiles column>``, ``fp_0`` .. ``fp_<D-1>``, ``error``.

    Returns:
        ``{"rows": n, "failed": k, "paths": [...], "dim": D}``.
    """
    smiles_column = smiles_column or model.smiles_column
    header, smiles_index, chunks = read_chunks(test_path, smiles_column, chunk_size)
    paths = fingerprint_paths(output, len(model.members))
    try:  # the width; checks the block before anything is read
        dim = model.embed([], block=block).shape[1]
    except ValueError as err:
        raise UsageError(f"--ffn-block-index: {err}") from None
    rows = failed = 0
    with _atomic_csv_writers(paths) as writers:
        for writer in writers:
            writer.writerow([smiles_column, *(f"fp_{d}" for d in range(dim)), "error"])
        for chunk in chunks:
            smiles = [row[smiles_index] for row in chunk]
            graphs, positions, errors = model.featurize(smiles)
            for k, writer in enumerate(writers):
                embedding = model.embed(graphs, member=k, block=block).numpy()
                by_position = dict(zip(positions, embedding, strict=True))
                for i, s in enumerate(smiles):
                    values = by_position.get(i)
                    cells = [""] * dim if values is None else [format_number(v) for v in values]
                    writer.writerow([s, *cells, errors.get(i, "")])
            failed += len(errors)
            rows += len(chunk)
    return {"rows": rows, "failed": failed, "paths": paths, "dim": dim}
