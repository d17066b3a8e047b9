"""Exceptions raised by :mod:`xpscratch.datasets`."""

from __future__ import annotations

__all__ = ["DatasetError", "DatasetNotFoundError"]


class DatasetError(ValueError):
    """A dataset file exists but is malformed (bad header, wrong size, corrupt gzip, bad labels).

    The message always starts with the offending file's path.
    """


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk and could not be downloaded.

    The message names the directories searched, the expected file names and how to fix it.
    """
