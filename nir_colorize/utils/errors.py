"""One error path for the entry points (``python -m nir_colorize.train|eval|predict``).

``run_main(main)`` runs a ``@hydra.main`` function. A user error (a missing input file, data root or
checkpoint; a file that is not a checkpoint, or one of another network; an unknown config key or
override; a missing mandatory value; ``DatasetError``, ``ImageReadError``, ``FileNotFoundError``, ...)
ends the run with ONE line on stderr, ``error: <message>``, naming the file or key and the fix, and exit
status 2; the full message also goes to the run's log file when Hydra has opened one. Anything else is a
bug and keeps its traceback (exit status 1).

``HYDRA_FULL_ERROR=1`` shows the full traceback of user errors too (Hydra's own switch).

How: ``run_main`` sets ``HYDRA_FULL_ERROR=1`` for the run so that Hydra re-raises exceptions instead of
printing its own report (several lines for an unknown override, a trimmed traceback otherwise), and marks
that it did (``NIR_COLORIZE_SHORT_ERRORS=1``, inherited by processes the run starts, e.g. DDP workers),
so that only a ``HYDRA_FULL_ERROR=1`` set by the user turns short errors off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nir_colorize.errors import USER_ERRORS, CheckpointError

FULL_ERROR = "HYDRA_FULL_ERROR"
SHORT_MARK = "NIR_COLORIZE_SHORT_ERRORS"  # set by run_main: the HYDRA_FULL_ERROR it sees is its own
EXIT_USER_ERROR = 2
QUOTED = re.compile(r'"[^"]+"')  # a key in torch's load_state_dict report
MAX_LINES = 6  # lines of a multi-line message (e.g. a DatasetError's list of files) kept on the one line


CKPT_HINT = "ckpt_path= must name a .ckpt written by nir_colorize.train, e.g. RUN_DIR/checkpoints/best.ckpt"


def checkpoint_error(path: str | os.PathLike, exc: BaseException, hint: str = CKPT_HINT) -> CheckpointError | None:
    """What ``ColorizationModule.load_from_checkpoint`` (or ``torch.load``) failing with ``exc`` says about the
    file, ending with ``hint``, or None when ``exc`` is not about the file (a bug)."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, (pickle.UnpicklingError, EOFError)) or (isinstance(exc, KeyError) and exc.args
                                                                and isinstance(exc.args[0], int)):
        # torch's (weights-only) unpickler on bytes that are no pickle: 'Unsupported operand', 'invalid load key'
        what = "empty file" if isinstance(exc, EOFError) else "torch.load cannot read it: no pickled data"
        return CheckpointError(f"{path}: not a checkpoint ({what}); {hint}")
    if isinstance(exc, RuntimeError) and ("PytorchStreamReader" in text or "zip archive" in text):
        return CheckpointError(f"{path}: not a checkpoint (truncated or corrupt: {first.split('.')[0]}); {hint}")
    if isinstance(exc, KeyError):
        return CheckpointError(f"{path}: not a Lightning checkpoint (no {exc.args[0]!r} entry; e.g. a bare "
                               f"state_dict); {hint}")
    if isinstance(exc, TypeError):
        return CheckpointError(f"{path}: a checkpoint of another model, not of nir-colorize ({first}); {hint}")
    if isinstance(exc, RuntimeError) and "state_dict" in text:
        found = {kind: len(QUOTED.findall(_after(text, marker))) for kind, marker in
                 (("missing", "Missing key(s)"), ("unexpected", "Unexpected key(s)"))}
        counts = [f"{n} {kind} keys" for kind, n in found.items() if n]
        return CheckpointError(f"{path}: its weights do not fit the network its hyper-parameters describe "
                               f"({', '.join(counts) or first}); a checkpoint of another network? {hint}")
    return None


@contextlib.contextmanager
def checkpoint_errors(path: str | os.PathLike, hint: str = CKPT_HINT) -> Iterator[None]:
    """Reading the checkpoint ``path`` in the block: a failure about the file becomes ``checkpoint_error``'s
    one-line ``CheckpointError``; anything else (a bug) propagates unchanged."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a file that is not (our) checkpoint: one line naming it
        error = checkpoint_error(path, exc, hint)
        if error is None:
            raise
        raise error from exc


def _after(text: str, marker: str) -> str:
    """The line of ``text`` that starts with ``marker`` (Lightning/torch's load_state_dict report)."""
    for line in text.splitlines():
        if line.strip().startswith(marker):
            return line
    return ""


def one_line(message: str, max_lines: int = MAX_LINES) -> str:
    """``message`` on one line: its lines joined, after the first ``max_lines`` a count of the rest."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if not lines:
        return ""
    kept, rest = lines[:max_lines + 1], len(lines) - max_lines - 1
    out = kept[0]
    for line in kept[1:]:
        out += (" " if out.endswith((":", ".")) else "; ") + line
    if rest > 0:
        out += f"; ... and {rest} more line(s) (in the run's log file, or with {FULL_ERROR}=1)"
    return out


def dangling_link(path: str | os.PathLike) -> str | None:
    """The first folder on ``path`` (itself or a parent) that is a link to something that does not exist, e.g. a
    ``logs`` link copied to a machine without its target; None if there is none."""
    for part in [Path(path), *Path(path).parents]:
        if part.is_symlink() and not part.exists():
            return str(part)
    return None


def user_error_message(exc: BaseException) -> str | None:
    """The message for a user error, None for anything else (a bug: it keeps its traceback)."""
    if isinstance(exc, OSError) and exc.filename and (link := dangling_link(exc.filename)):
        return (f"{link} is a link to {os.readlink(link)}, which does not exist: make that folder, remove the link, "
                "or pass hydra.run.dir=... (and paths.log_dir=...) elsewhere")
    from hydra.errors import CompactHydraException, InstantiationException, MissingConfigException
    from omegaconf.errors import (
        InterpolationToMissingValueError,
        MissingMandatoryValue,
        OmegaConfBaseException,
    )

    if isinstance(exc, InstantiationException) and exc.__cause__ is not None:
        inner = user_error_message(exc.__cause__)  # e.g. a DatasetError raised by a data source's __init__
        if inner is not None:
            return inner
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    if isinstance(exc, MissingMandatoryValue):
        key = getattr(exc, "full_key", None) or "a mandatory value"
        return f"missing value for {key}: pass {key}=... on the command line"
    if isinstance(exc, InterpolationToMissingValueError):  # e.g. init_from: ${stage1_ckpt}, stage1_ckpt: ???
        key = str(exc).rsplit("Missing mandatory value:", 1)[-1].strip() or "a mandatory value"
        return f"missing value for {key}: pass {key}=... on the command line"
    if isinstance(exc, MissingConfigException) and exc.options:  # e.g. model=foo
        first = str(exc).strip().splitlines()[0]
        return f"{first}; available options: {', '.join(exc.options)}"
    if isinstance(exc, CompactHydraException):  # unknown override, unknown config option, bad syntax, ...
        message = str(exc)
        if isinstance(exc.__cause__, OmegaConfBaseException):
            message = one_line(message) + f" ({str(exc.__cause__).strip().splitlines()[0]})"
        return message
    return None


def _log_to_files(message: str) -> None:
    """Write ``message`` to the log files Hydra opened (the run's ``<task>.log``), not to the console."""
    record = logging.LogRecord("nir_colorize", logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def full_errors() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1`` not set by ``run_main``)."""
    return os.environ.get(FULL_ERROR) == "1" and os.environ.get(SHORT_MARK) != "1"


@contextlib.contextmanager
def _quiet_failed_jobs(failed: list) -> Iterator[None]:
    """Hydra writes ``Error executing job with overrides: [...]`` to stderr as it re-raises a job's error;
    record the overrides in ``failed`` instead (``run_main`` prints that line for a bug, not for a user
    error). Left as it is if Hydra's ``JobReturn`` is not as expected."""
    try:
        from hydra.core.utils import JobReturn, JobStatus

        original = JobReturn.__dict__["return_value"]
    except (ImportError, KeyError):
        yield
        return

    def return_value(self: JobReturn) -> Any:
        if self.status == JobStatus.FAILED:
            failed.append(self.overrides)
            raise self._return_value
        return original.fget(self)

    JobReturn.return_value = property(return_value, original.fset)
    try:
        yield
    finally:
        JobReturn.return_value = original


def run_main(main: Callable[[], Any]) -> Any:
    """Run an entry point's ``main``; a user error ends it with one line on stderr and exit status 2."""
    if full_errors():
        return main()
    saved = {name: os.environ.get(name) for name in (FULL_ERROR, SHORT_MARK)}
    os.environ[FULL_ERROR] = "1"  # Hydra re-raises instead of printing its own multi-line report
    os.environ[SHORT_MARK] = "1"
    failed: list = []
    try:
        with _quiet_failed_jobs(failed):
            return main()
    except Exception as exc:
        message = user_error_message(exc)
        if message is None:
            for overrides in failed:
                sys.stderr.write(f"Error executing job with overrides: {overrides}\n")
            raise
        _log_to_files(f"{type(exc).__name__}: {message}")
        sys.stderr.write(f"error: {one_line(message)}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_USER_ERROR) from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _console_script(entry: str) -> Callable[[], Any]:
    def script() -> Any:
        import importlib

        return run_main(importlib.import_module(f"nir_colorize.{entry}").main)

    script.__name__ = f"{entry}_script"
    script.__doc__ = f"The ``nir-{entry}`` console script: ``nir_colorize.{entry}.main`` through ``run_main``."
    return script


train_script = _console_script("train")
eval_script = _console_script("eval")
predict_script = _console_script("predict")
