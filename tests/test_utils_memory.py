"""gconv._utils.release_free_memory: glibc's free pages handed back to the system."""

from pathlib import Path

import pytest
import torch

from gconv._utils import _malloc_trim, release_free_memory

ROLLUP = Path("/proc/self/smaps_rollup")


def _anonymous_mb() -> float:
    line = next(x for x in ROLLUP.read_text().splitlines() if x.startswith("Anonymous:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not ROLLUP.exists() or _malloc_trim() is None, reason="Linux with glibc")
def test_release_free_memory_gives_back_what_freed_small_blocks_held():
    # 200,000 small tensors (heap blocks, below glibc's mmap threshold), then one more that
    # stays alive above them: freeing the rest leaves ~100 MB of free pages glibc keeps
    blocks = [torch.empty(100) for _ in range(200_000)]
    keep = torch.empty(100)
    del blocks
    before = _anonymous_mb()
    release_free_memory()
    after = _anonymous_mb()
    assert before - after > 40, (before, after)
    assert keep.numel() == 100


def test_release_free_memory_is_harmless_without_glibc(monkeypatch):
    _malloc_trim.cache_clear()
    monkeypatch.setattr("ctypes.util.find_library", lambda name: None)
    try:
        assert _malloc_trim() is None
        release_free_memory()  # nothing to call: no error
    finally:
        _malloc_trim.cache_clear()
