"""The one error type of the ``gconv`` command that is the user's to fix, shared by every kind of
model (:mod:`gconv.molecule`, :mod:`gconv.image`)."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """A problem with the user's input — a file, a column, a row, an option, a model directory —
    that ``gconv`` reports as one ``error:`` line, without a traceback. The message names what
    and where (the file, the row, the column) and, where one is known, the fix."""
