"""Errors that tunescope reports to its users.

Every problem a user can cause (bad path, malformed file, unknown name, unwritable output)
raises a subclass of :class:`TunescopeError` whose message is one line naming the problem.
The command-line tool prints that line and exits with :data:`EXIT_USAGE`; it never shows a
traceback for these.
"""

from __future__ import annotations

EXIT_USAGE = 2
"""Exit status of the CLI for user errors (bad input, unknown names, unwritable output)."""


class TunescopeError(Exception):
    """A problem the user can fix; the message is one line that names it."""


class ModelNotFoundError(TunescopeError):
    """A model spec names nothing that exists (path, bundled name or hub id)."""


class HubUnavailableError(TunescopeError):
    """The model hub could not be reached or does not hold the requested id."""


class UnsupportedArchitectureError(TunescopeError):
    """The model's architecture has no anatomy in tunescope."""


class ModelFileError(TunescopeError):
    """A model file exists but cannot be read (corrupt GGUF, broken safetensors, ...)."""


class DataError(TunescopeError):
    """A dataset file or record is malformed; the message names file, line and field."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if field is not None:
            message = f"field '{field}': {message}"
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.field = field


class OutputError(TunescopeError):
    """An output location cannot be written (permissions, full disk, not a directory)."""


class ContextLengthError(DataError):
    """An input is longer than the model's context (the most positions it takes); the message
    names the input (file and line where known), its length in tokens and the limit."""
