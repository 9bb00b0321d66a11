"""The project's error classes, in one leaf module that every layer may import (it imports nothing of ours).

Each is a mistake of the user's (a file, a folder, a command-line value): its message names the thing and
the fix, and the entry points print it as one line with exit status 2 (``nir_colorize.utils.errors.run_main``).
"""

from __future__ import annotations

import os
from pathlib import Path


class UserError(ValueError):
    """A mistake in the command line, a file or a folder; the message says which and how to fix it."""


class CheckpointError(UserError):
    """``ckpt_path`` names a file that is not a nir-colorize checkpoint."""


class ShippedModelError(FileNotFoundError):
    """A shipped model that is not there or cannot be read."""


class ImageReadError(ValueError):
    """An image that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetError(ValueError):
    """A dataset that cannot be used; the message lists every bad file and why.

    ``problems``: one line per bad file (``PATH: why``); ``pairs``: where the error is only about files
    outside them (unpartnered files), the pairs that are complete, so that a caller can go on checking
    those and report everything in one error.
    """

    def __init__(self, message: str, problems: list[str] | None = None, pairs: list | None = None) -> None:
        self.problems = list(problems) if problems is not None else [message]
        self.pairs = pairs
        super().__init__(message)

    @classmethod
    def listing(cls, what: str, problems: list[str], pairs: list | None = None) -> DatasetError:
        """``what: N problem(s):`` and one indented line per problem."""
        problems = list(dict.fromkeys(problems))
        return cls(f"{what}: {len(problems)} problem(s):\n  " + "\n  ".join(problems), problems, pairs)


USER_ERRORS = (UserError, DatasetError, ImageReadError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError)
"""What the entry points report as one line (``ShippedModelError`` is a ``FileNotFoundError``)."""
