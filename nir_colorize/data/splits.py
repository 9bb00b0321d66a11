"""Seeded, reproducible train/val/test splits: by ratio, by whole groups (source images), or from files."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from nir_colorize.errors import DatasetError
from nir_colorize.utils.atomic import write_bytes_atomic

SPLITS = ("train", "val", "test")


def seeded_order(keys: Sequence[str], seed: int) -> list[str]:
    """``keys`` sorted, then shuffled by ``random.Random(seed)``: the same on every machine and run."""
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    return order


def split_by_ratio(keys: Sequence[str], val_ratio: float, test_ratio: float, seed: int) -> dict[str, str]:
    """Key -> split. Test takes the first ``round(test_ratio * n)`` keys of the seeded order (at least one
    when the ratio is positive), val the next ones, train the rest (which must not be empty)."""
    for name, ratio in (("val_ratio", val_ratio), ("test_ratio", test_ratio)):
        if not 0.0 <= ratio < 1.0:
            raise DatasetError(f"{name}={ratio}: must be in [0, 1)")
    n = len(keys)
    n_test, n_val = (max(1, round(r * n)) if r > 0 else 0 for r in (test_ratio, val_ratio))
    if n_test + n_val >= n:
        raise DatasetError(f"{n} pair(s) cannot be split into val {n_val}, test {n_test} and a non-empty "
                           f"train split (val_ratio={val_ratio}, test_ratio={test_ratio})")
    order = seeded_order(keys, seed)
    return {k: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, k in enumerate(order)}


def split_groups(sizes: Mapping[str, int], test_count: int, val_count: int, seed: int) -> dict[str, str]:
    """Group -> split, keeping each group (a source image and all its crops) in one split. In the seeded
    order, test takes whole groups until it holds at least ``test_count`` items, then val until
    ``val_count``; train keeps the rest (which must not be empty)."""
    assignment: dict[str, str] = {}
    order = iter(seeded_order(list(sizes), seed))
    for split, target in (("test", test_count), ("val", val_count)):
        held = 0
        while held < target:
            group = next(order, None)
            if group is None:
                raise DatasetError(f"{len(sizes)} source image(s) hold too few crops for test {test_count} "
                                   f"and val {val_count} crops and a non-empty train split")
            assignment[group] = split
            held += sizes[group]
    rest = list(order)
    if not rest:
        raise DatasetError(f"{len(sizes)} source image(s): nothing is left for training after test "
                           f"{test_count} and val {val_count} crops")
    assignment.update(dict.fromkeys(rest, "train"))
    return assignment


def read_split_files(files: Mapping[str, str | Path], root: Path) -> dict[str, str]:
    """Name -> split from text files (one pair name per line; blank lines and ``#`` comments ignored),
    given as ``{split: path}`` with paths relative to ``root`` or absolute. A name in two files is an error."""
    assignment: dict[str, str] = {}
    problems: list[str] = []
    for split, spec in files.items():
        if split not in SPLITS:
            raise DatasetError(f"split_files: unknown split {split!r} (use {', '.join(SPLITS)})")
        path = Path(spec) if Path(spec).is_absolute() else root / spec
        if not path.is_file():
            problems.append(f"{path}: split file not found")
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            name = line.split("#", 1)[0].strip()
            if not name:
                continue
            if name in assignment and assignment[name] != split:
                problems.append(f"{path}:{number}: {name} is already in the {assignment[name]} split")
            assignment[name] = split
    if problems:
        raise DatasetError("split files: " + "\n  ".join(problems))
    return assignment


def write_carve_out(path: Path, assignment: Mapping[str, str], val_ratio: float, seed: int) -> None:
    """Record a validation carve-out (pair name -> train | val) as JSON, atomically (names only, no paths: the
    file holds for any copy of the dataset)."""
    record = {"format": 1, "what": "validation carved out of the training pairs (design section 6)",
              "val_ratio": val_ratio, "seed": seed,
              **{s: sorted(k for k, v in assignment.items() if v == s) for s in ("val", "train")}}
    write_bytes_atomic(path, (json.dumps(record, indent=1) + "\n").encode())


def read_carve_out(path: Path, names: Sequence[str], val_ratio: float, seed: int) -> dict[str, str]:
    """Pair name -> train | val from a carve-out file; it must have been made with ``val_ratio`` and
    ``seed`` and list exactly the pairs ``names``."""
    try:
        record = json.loads(path.read_text())
        val, train = set(record["val"]), set(record["train"])
        made = (float(record["val_ratio"]), int(record["seed"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: unreadable split file ({type(exc).__name__}: {exc}); delete it to make "
                           "a new one") from exc
    if made != (float(val_ratio), int(seed)):
        raise DatasetError(f"{path}: made with val_ratio={made[0]}, seed={made[1]}, but the config asks "
                           f"val_ratio={val_ratio}, seed={seed}: set data.source.split_file to another file "
                           "(or null) for a new carve-out")
    unknown, missing = sorted((val | train) - set(names)), sorted(set(names) - val - train)
    if unknown or missing or val & train:
        raise DatasetError(f"{path}: does not match the training pairs ({len(unknown)} unknown, e.g. "
                           f"{unknown[:3]}; {len(missing)} not listed, e.g. {missing[:3]}; "
                           f"{len(val & train)} in both): delete it, or point data.source.split_file elsewhere")
    return {n: "val" if n in val else "train" for n in names}
