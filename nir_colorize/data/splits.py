"""Seeded, reproducible train/val/test splits: by ratio, by whole groups (source images), or from files."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from nir_colorize.data.pairs import DatasetError

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
