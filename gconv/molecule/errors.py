"""The one error type of the molecule tool that is the user's to fix (:class:`gconv.errors.
UsageError`, shared with the image tool)."""

from __future__ import annotations

from gconv.errors import UsageError

__all__ = ["UsageError"]
