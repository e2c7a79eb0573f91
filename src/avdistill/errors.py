"""The one error type users see for bad input: it names the file and what is wrong."""

from __future__ import annotations

import os


class DataError(ValueError):
    """Bad input data: a missing, corrupt or inconsistent file, list or record."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{self.path}: {problem}")

    def __reduce__(self):  # crosses process boundaries (worker pools) intact
        return type(self), (self.path, self.problem)
