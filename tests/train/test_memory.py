"""retain_freed_memory: glibc keeps freed blocks in the heap instead of unmapping or trimming."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
from torch import nn

from gconv.train import Trainer
from gconv.train import trainer as trainer_module
from gconv.train.memory import retain_freed_memory

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the setting is glibc's",
)

# Runs in a fresh interpreter (the setting is process-wide and one-way): bytes glibc holds in
# mmapped blocks and in its heap around the allocation and the release of a 16 MiB tensor.
PROBE = textwrap.dedent(
    """
    import ctypes, sys, torch
    from gconv.train.memory import retain_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "retain":
        assert retain_freed_memory() is True
    before = libc.mallinfo2()
    x = torch.empty(4 * 2**20)  # 16 MiB, above glibc's initial 128 KiB mmap threshold
    during = libc.mallinfo2()
    del x
    after = libc.mallinfo2()
    print(during.hblkhd - before.hblkhd, after.arena - during.arena)
    """
)


def probe(mode: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    ).stdout
    mapped, heap_change = (int(v) for v in out.split())
    return mapped, heap_change


@glibc
def test_retained_blocks_come_from_the_heap_and_stay_there():
    mapped, _ = probe("default")
    assert mapped >= 16 * 2**20  # glibc's default: a fresh mapping, unmapped on free
    mapped, heap_change = probe("retain")
    assert mapped == 0  # from the heap
    assert heap_change == 0  # and not trimmed away when freed


@glibc
def test_retain_is_idempotent():
    assert retain_freed_memory() is True
    assert retain_freed_memory() is True


def test_trainer_retains_memory_on_the_cpu_unless_told_not_to(monkeypatch):
    calls = []
    monkeypatch.setattr(trainer_module, "retain_freed_memory", lambda: calls.append(1) or True)
    model = nn.Linear(2, 2)
    Trainer(model, device="cpu", progress=False)
    assert calls == [1]
    Trainer(model, device="cpu", progress=False, retain_memory=False)
    assert calls == [1]
