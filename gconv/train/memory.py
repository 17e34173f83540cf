"""Keep freed memory in the process on the CPU, so that activations are not page-faulted in anew
at every training step.

glibc's ``malloc`` serves a block above its *mmap threshold* with a fresh ``mmap`` and unmaps it
when it is freed, and hands free memory at the top of its heap back to the OS once there is more
than its *trim threshold* of it. Both thresholds follow the largest block freed so far (up to
32 MiB and 64 MiB). A CPU training step allocates and frees activations and gradients of a few
MiB each, many of them at once at the end of the backward pass; with these defaults every step
gets memory the OS must fault in and zero-fill again, page by page. On the lecture-notes CNN
(batch 100) that is about a sixth of the step (``benchmarks/bench_trainer.py``).

PyTorch's CPU performance-tuning guide recommends an allocator that keeps freed memory, jemalloc
or tcmalloc, loaded with ``LD_PRELOAD``. :func:`retain_freed_memory` asks glibc's own allocator
for the same with two ``mallopt`` calls: blocks up to 32 MiB (glibc's ceiling) come from the heap,
and the heap is not trimmed below 2 GiB of free memory. The price is that the process keeps the
memory of its largest step until it exits, which is what the CUDA caching allocator does on GPUs.
"""

from __future__ import annotations

import ctypes
import platform
import sys

__all__ = ["retain_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # blocks up to this size come from the heap (glibc's maximum)
TRIM_THRESHOLD = 2**31 - 1  # free memory kept at the top of the heap (mallopt takes an int)

_retained: bool | None = None


def retain_freed_memory() -> bool:
    """Have glibc's ``malloc`` keep freed memory for reuse instead of returning it to the OS.

    Process-wide and for the rest of the process (glibc stops adapting its thresholds once they
    are set); calling it again does nothing. :class:`~gconv.train.Trainer` calls it when it
    trains on the CPU (``retain_memory=None``); call it yourself for a hand-written loop.

    Returns:
        bool: whether the setting is in effect: :obj:`False` off Linux/glibc (macOS, Windows,
        musl), where the system allocator is left as it is.
    """
    global _retained
    if _retained is None:
        _retained = _set_thresholds()
    return _retained


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success. The mmap threshold goes first: trimming turned off while
    # every block above 128 KiB is still mmapped would be slower than glibc's defaults.
    if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return False
    return libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
