"""What the Trainer iterates: batches, never single samples, and the loader state a resume replays.

:func:`as_batches` passes an iterable of batches through and wraps a ``Dataset`` (or a list of
single graphs) in a ``DataLoader`` when given a batch size, refusing it otherwise.
:func:`phase_rows` reads PyG's ``train_mask`` / ``val_mask`` / ``test_mask`` convention: the rows
(nodes) of a batch that a phase scores.
:func:`loader_state` takes, at the end of an epoch, what the train loader needs to replay its next
epochs; :func:`restore_loader_state` puts it back into the loader of the resumed run and says
(through ``say``) where the resumed batches may differ from an uninterrupted run's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torch_geometric.data import Batch
from torch_geometric.data.data import BaseData

__all__ = [
    "PHASE_MASKS",
    "Rows",
    "as_batches",
    "check_not_empty",
    "mask_name",
    "phase_rows",
    "loader_state",
    "restore_loader_state",
]

PHASE_MASKS = ("train_mask", "val_mask", "test_mask")  # PyG's node-level split convention


def as_batches(data: Any, batch_size: int | None, shuffle: bool, name: str, pin: bool) -> Any:
    """``data`` if it yields batches; a Dataset (or a list of single graphs) wrapped in a loader
    when ``batch_size`` is given; else a TypeError saying how to batch it.

    Iterating a Dataset yields one sample at a time: training on that would take a step per
    sample (or fail on a missing batch dimension), so it is never done silently.

    Args:
        data: an iterable of batches, a ``Dataset``, or a list of single PyG graphs.
        batch_size (int, optional): the batch size of the loader to wrap a Dataset in.
        shuffle (bool): shuffle the wrapping loader (training data; not an ``IterableDataset``).
        name (str): what ``data`` is called in the messages (``"train"``, ``"val"``, ``"data"``).
        pin (bool): the wrapping loader's ``pin_memory``.
    """
    is_dataset = isinstance(data, Dataset)
    graphs = (
        isinstance(data, list | tuple)
        and len(data) > 1
        and isinstance(data[0], BaseData)
        and not isinstance(data[0], Batch)
    )
    if not (is_dataset or graphs):
        return data
    first = next(iter(data), None)
    if first is None:
        raise ValueError(f"{name} is an empty {type(data).__name__}")
    is_graph = isinstance(first, BaseData)
    loader = "torch_geometric.loader.DataLoader" if is_graph else "torch.utils.data.DataLoader"
    shuffle = shuffle and not isinstance(data, IterableDataset)
    if batch_size is None:
        what = "a list of single graphs" if graphs else f"a {type(data).__name__}"
        raise TypeError(
            f"{name} is {what}, whose items are single samples, not batches: training on it "
            f"would take one step per sample. Pass batch_size= (e.g. fit({name}, batch_size=64)) "
            f"to have it wrapped in a {loader}{' shuffled for training' if shuffle else ''}, or "
            f"wrap it yourself: {loader}({name}, batch_size=64, shuffle={shuffle})"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if is_graph:
        from torch_geometric.loader import DataLoader as GraphLoader

        return GraphLoader(data, batch_size=batch_size, shuffle=shuffle, pin_memory=pin)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, pin_memory=pin)


def check_not_empty(data: Any, name: str) -> None:
    """A ValueError for data of length 0 (``val=[]``, an empty ``DataLoader``), raised before
    any training rather than after an epoch of it."""
    try:
        empty = len(data) == 0
    except TypeError:  # an iterable without a length: found out when iterated
        return
    if empty:
        raise ValueError(f"{name} is an empty {type(data).__name__}: it yields no batches")


def mask_name(mask: str | None) -> str | None:
    """The attribute a ``mask=`` argument names: ``"test"`` -> ``"test_mask"``; ``"all"``,
    another attribute name and ``None`` as given."""
    if mask is None:
        return None
    if not isinstance(mask, str):
        raise TypeError(
            f"mask must be 'train', 'val', 'test', 'all' or the name of a boolean node "
            f"attribute, got {type(mask).__name__}"
        )
    return f"{mask}_mask" if mask in ("train", "val", "test") else mask


class Rows(NamedTuple):
    """The rows a phase mask selects: their indices, the mask's name and its length."""

    index: torch.Tensor
    mask: str
    size: int


def phase_rows(batch: Any, mask: str | None, where: str, *, named: bool) -> Rows | None:
    """The rows (nodes) of ``batch`` that a phase scores, by PyG's convention: where its ``mask``
    attribute (``train_mask`` in training, ``val_mask`` in validation) is True; ``None`` for
    every row. Read before the batch moves to the device, so that a mask on the CPU
    costs no host sync.

    Args:
        batch: a batch as the loader yields it.
        mask (str, optional): the attribute naming the phase's rows, ``"all"`` for every row,
            or ``None`` when no phase is known (``evaluate`` without ``mask=``): a batch that
            carries phase masks is then refused rather than scored on all its nodes.
        where (str): the batch, as the messages name it.
        named (bool): ``mask`` was named by the caller, so a batch without it is refused; else a
            batch without any phase mask is taken whole.

    Raises:
        ValueError: masks the call cannot tell apart, a missing mask, a mask that is not a 1-D
            boolean tensor, or one that selects no row.
    """
    if not isinstance(batch, BaseData):
        if named and mask != "all":
            raise ValueError(
                f"mask={mask!r} selects nodes of PyG batches; {where} is a "
                f"{type(batch).__name__}, not a graph"
            )
        return None
    if mask == "all":
        return None
    carried = [m for m in PHASE_MASKS if m in batch]
    if mask is None:
        if carried:
            raise ValueError(
                f"{where} carries {', '.join(carried)}: say which nodes to score, e.g. "
                "evaluate(data, mask='test') (PyG's test_mask), or mask='all' for every node"
            )
        return None
    if mask not in batch:
        if named:
            raise ValueError(f"{where} has no {mask} (mask={mask.removesuffix('_mask')!r})")
        if carried:
            raise ValueError(
                f"{where} carries {', '.join(carried)} but no {mask}, the mask of this phase: "
                f"add data.{mask} (a boolean tensor over the nodes), or drop the masks to "
                "use every node"
            )
        return None
    selected = batch[mask]
    if (
        not isinstance(selected, torch.Tensor)
        or selected.dtype != torch.bool
        or selected.dim() != 1
    ):
        raise ValueError(
            f"{where}: {mask} must be a 1-D boolean tensor over the nodes, got "
            + (
                f"{selected.dtype} of shape {list(selected.shape)}"
                if isinstance(selected, torch.Tensor)
                else type(selected).__name__
            )
        )
    rows = selected.nonzero().flatten()  # no host sync for a mask on the CPU (the usual case)
    if rows.numel() == 0:
        raise ValueError(f"{where}: its {mask} selects no node")
    return Rows(rows, mask, selected.shape[0])


_GENERATOR_PATHS = ("generator", "sampler.generator", "batch_sampler.sampler.generator")


def _generators(loader: Any) -> dict[str, torch.Generator]:
    """The ``torch.Generator`` objects a (torch or PyG) DataLoader shuffles with, by path."""
    found: dict[str, torch.Generator] = {}
    for path in _GENERATOR_PATHS:
        obj = loader
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.Generator) and all(obj is not g for g in found.values()):
            found[path] = obj
    return found


def _stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


def loader_state(loader: Any) -> dict[str, Any]:
    """What a resume needs to replay the loader's next epochs, taken at the end of an epoch.

    A loader with ``state_dict()`` / ``load_state_dict()`` (``TensorLoader``, stateful loaders)
    saves itself; a torch or PyG ``DataLoader`` saves the states of the ``torch.Generator``s it
    and its sampler shuffle with (one left ``None`` draws from torch's global generator, whose
    state the checkpoint holds anyway) and of a stateful sampler.
    """
    state: dict[str, Any] = {"kind": type(loader).__name__}
    if _stateful(loader):
        state["state"] = loader.state_dict()
        return state
    generators = _generators(loader)
    if generators:
        state["generators"] = {path: g.get_state() for path, g in generators.items()}
    for part in ("sampler", "batch_sampler"):
        if _stateful(getattr(loader, part, None)):
            state[part] = getattr(loader, part).state_dict()
    return state


def restore_loader_state(
    loader: Any, saved: dict[str, Any] | None, say: Callable[[str], None]
) -> None:
    """Put a :func:`loader_state` back into ``loader``; ``say(message)`` each way in which the
    resumed batches may differ from an uninterrupted run's (``saved`` is ``None`` for a
    checkpoint from before loader states were saved)."""
    kind = type(loader).__name__
    if isinstance(loader, DataLoader) and loader.num_workers > 0 and loader.persistent_workers:
        say(
            "the train DataLoader has persistent_workers=True: its workers' seed is drawn once "
            "per worker start, so the resumed batches (order and random transforms) differ "
            "from an uninterrupted run's; use persistent_workers=False for an exact resume"
        )
    if saved is None:
        return
    if saved.get("kind") != kind:
        say(
            f"the checkpoint saved the state of a {saved.get('kind')}, the train data is now a "
            f"{kind}: its shuffling starts afresh"
        )
        return
    if "state" in saved:
        loader.load_state_dict(saved["state"])
        return
    if not isinstance(loader, DataLoader | list | tuple) and not _generators(loader):
        say(
            f"the state of a {kind} cannot be saved or restored; if it shuffles with random "
            "state of its own, the resumed batches differ from an uninterrupted run's (give it "
            "state_dict() / load_state_dict() to make the resume exact)"
        )
    generators = _generators(loader)
    for path, state in (saved.get("generators") or {}).items():
        if path in generators:
            generators[path].set_state(state.cpu())
        else:
            say(f"the checkpoint holds the state of the train loader's {path}, which it lacks")
    for path in set(generators) - set(saved.get("generators") or {}):
        say(f"the train loader's {path} was not in the checkpoint: it starts afresh")
    for part in ("sampler", "batch_sampler"):
        if part in saved and _stateful(getattr(loader, part, None)):
            getattr(loader, part).load_state_dict(saved[part])
