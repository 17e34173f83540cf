"""What a run was trained on, as a small record that ``last.pt`` keeps and a resume compares.

:func:`fingerprint` is a stable digest of tensors, arrays, strings and numbers (the same on any
device); :func:`data_record` is what ``fit`` records: the caller's ``data_id``, or, where it is
cheap, a fingerprint of a ``TensorLoader``'s tensors; :func:`data_differences` names what differs
between two records. The rule (a resume on other data is refused) is in ``docs/trainer.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["fingerprint", "data_record", "data_differences", "loader_fingerprint"]

_SAMPLE_BYTES = 4 << 20  # per tensor, the most a TensorLoader's automatic fingerprint reads


def fingerprint(*values: Any) -> str:
    """A 16-hex-digit digest (BLAKE2b) of ``values``: equal values give equal digests, on any
    device and in any process.

    Args:
        *values: tensors and NumPy arrays (dtype, shape and every element), strings, bytes,
            numbers, ``None``, and lists, tuples and dicts of them. Any other sequence (a
            store's lazy SMILES) digests as the list of its items, read one at a time.
    """
    digest = hashlib.blake2b(digest_size=8)
    for value in values:
        _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().reshape(-1).contiguous().cpu()
        digest.update(f"tensor {value.dtype} {list(value.shape)}|".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    elif isinstance(value, np.ndarray):
        digest.update(f"array {value.dtype} {list(value.shape)}|".encode())
        digest.update(memoryview(np.ascontiguousarray(value)).cast("B"))
    elif isinstance(value, bytes | bytearray):
        digest.update(b"bytes %d|" % len(value) + bytes(value))
    elif isinstance(value, Mapping):
        digest.update(b"dict %d|" % len(value))
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, list | tuple) or (
        isinstance(value, Sequence) and not isinstance(value, str)
    ):  # a lazy sequence is read item by item, never held as a list
        digest.update(b"list %d|" % len(value))
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, str | int | float | bool | np.generic):
        text = repr(value.item() if isinstance(value, np.generic) else value)
        digest.update(f"{type(value).__name__} {len(text)}|{text}".encode())
    else:
        raise TypeError(f"fingerprint() cannot digest a {type(value).__name__}")


def loader_fingerprint(loader: Any) -> str | None:
    """What a ``TensorLoader`` holds (any loader whose data are tensors ``.x`` and ``.y``), as
    ``"x float32 [200, 8], y int64 [200] #<digest>"``; ``None`` for any other loader (reading its
    data would cost an epoch).

    The digest covers every row of a tensor up to 4 MiB, else up to 4 MiB of rows evenly spaced
    over it (with its shape and dtype): other data, another split or another subset of it give
    another digest; an edit of a single value of a large tensor may not.
    """
    x, y = getattr(loader, "x", None), getattr(loader, "y", None)
    if not isinstance(x, torch.Tensor) or not (y is None or isinstance(y, torch.Tensor)):
        return None
    parts, sampled = [], []
    for name, tensor in (("x", x), ("y", y)):
        if tensor is None or tensor.dim() == 0:
            continue
        parts.append(f"{name} {str(tensor.dtype).removeprefix('torch.')} {list(tensor.shape)}")
        rows = tensor.shape[0]
        row_bytes = max(1, tensor[:1].numel() * tensor.element_size())
        keep = min(rows, max(1, _SAMPLE_BYTES // row_bytes))
        if keep < rows:
            index = torch.linspace(0, rows - 1, keep, dtype=torch.float64).round().long()
            tensor = tensor.index_select(0, index.to(tensor.device))
        sampled.append(tensor)
    return f"{', '.join(parts)} #{fingerprint(*sampled)}"


def data_record(data_id: Any, train: Any, automatic: bool) -> str | dict[str, Any] | None:
    """What ``fit`` records as the data of the run (``last.pt``'s ``config["data"]``).

    Args:
        data_id: the caller's: a ``str``, a dict of ``str`` keys to ``str`` / ``int`` /
            ``float`` / ``bool`` / ``None`` values, ``None`` (automatic: a ``TensorLoader``'s
            fingerprint), or ``False`` (record and check nothing).
        train: the train loader.
        automatic (bool): whether to compute the automatic record (it is needed only where a
            checkpoint is written or resumed).

    Raises:
        TypeError: a ``data_id`` of another type.
    """
    if data_id is False:
        return None
    if data_id is None:
        found = loader_fingerprint(train) if automatic else None
        return {"train": found} if found is not None else None
    if isinstance(data_id, str):
        return data_id
    if isinstance(data_id, Mapping) and all(
        isinstance(key, str) and (value is None or isinstance(value, str | int | float | bool))
        for key, value in data_id.items()
    ):
        return dict(data_id)
    raise TypeError(
        "data_id must be a str, a dict of str keys to str / int / float / bool / None values, "
        f"None (automatic) or False (no record), got {data_id!r}"
    )


def data_differences(saved: Any, mine: Any) -> list[str]:
    """What differs between two :func:`data_record` records, as ``key=value`` phrases (the new
    call's value, then the checkpoint's)."""
    if isinstance(saved, Mapping) and isinstance(mine, Mapping):
        keys = list(saved) + [key for key in mine if key not in saved]

        def shown(record: Mapping, key: str) -> str:
            return repr(record[key]) if key in record else "nothing"

        return [
            f"{key}={shown(mine, key)} here, {shown(saved, key)} in the checkpoint"
            for key in keys
            if key not in saved or key not in mine or saved[key] != mine[key]
        ]
    if saved != mine:
        return [f"data_id={mine!r} here, {saved!r} in the checkpoint"]
    return []
