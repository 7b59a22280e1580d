"""Typed errors. Every error mmrank raises on bad input derives from :class:`MmrankError`."""

from __future__ import annotations

from pathlib import Path


class MmrankError(Exception):
    """Base class of all mmrank errors."""


class DataFormatError(MmrankError, ValueError):
    """A file or record is malformed. Names the file and (1-based) line when known."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")


class UnknownNameError(MmrankError, KeyError):
    """A registry name (method, model, metric) is not known; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MissingDependencyError(MmrankError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class ModelOutputError(MmrankError):
    """A model produced output that cannot be parsed and no fallback was allowed."""


class IndexCorruptError(MmrankError):
    """A saved index or cache fails its manifest check (size, dimension or checksum)."""


class ImageLoadError(MmrankError):
    """An image file could not be decoded (corrupt, truncated, zero bytes, decompression bomb)."""


class TargetNotEmptyError(MmrankError, FileExistsError):
    """A save would write into a folder holding files that are not an mmrank save (pass ``overwrite=True``)."""


class EvaluationError(MmrankError, ValueError):
    """An evaluation cannot be computed as asked (no common query, a paired test with one query, ...)."""


class ModelLoadError(MmrankError, OSError):
    """A model exists at the given local path but could not be loaded; the message names the path and the cause."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """A model could not be found; the message names it, where mmrank looked and how to pass a local path."""


class OptionError(MmrankError, TypeError):
    """A method was given an option it does not take, or a value of the wrong type."""


class ContextLengthError(MmrankError, ValueError):
    """An input (prompt plus images, plus the generation budget) does not fit the model's ``max_length``, even with
    its documents cut to nothing (rerankers cut documents first and record it)."""


class DocumentError(DataFormatError):
    """A document (PDF) cannot be read: not a PDF, encrypted without the right password, corrupt, zero pages, or a
    page that cannot be rendered. The message names the file and, where it applies, the page."""
