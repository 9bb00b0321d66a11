"""The user's own NIR/RGB pairs under one root, matched by file-name patterns (``data=folder``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from nir_colorize.data.io import IMAGE_SUFFIXES
from nir_colorize.data.pairs import Pair, missing_root
from nir_colorize.data.splits import SPLITS, read_split_files, split_by_ratio
from nir_colorize.errors import DatasetError

log = logging.getLogger(__name__)


def pattern_regex(pattern: str) -> re.Pattern:
    """Compile a glob-like ``pattern`` (``*``, ``?``, ``**/``; a final ``.*`` is the extension) into a
    regex on paths relative to the root, one group per wildcard (named ``w<i>``) or literal run
    (``l<i>``). The glob module cannot tell which part of a name a wildcard matched, and that part is
    the pair's id. A pattern without ``/`` matches a file name in any subfolder."""
    body, ext = (pattern[:-2], r"\.[^/.]+") if pattern.endswith(".*") else (pattern, "")
    tokens = re.findall(r"\*\*/|\*|\?|[^*?]+", body)
    wild = {"**/": r"(?:[^/]+/)*", "*": r"[^/]*", "?": r"[^/]"}
    parts = [f"(?P<{'w' if t in wild else 'l'}{i}>{wild.get(t) or re.escape(t)})" for i, t in enumerate(tokens)]
    prefix = "" if "/" in pattern else r"(?P<wdir>(?:[^/]+/)*)"
    return re.compile(prefix + "".join(parts) + ext)


def match_id(regex: re.Pattern, relpath: str) -> str | None:
    """The pair id of ``relpath``, or None: what the wildcards matched, with the folder separators of
    the pattern's literal text and without a file extension (``*/*_nir.*`` on ``country/0000_nir.tiff``
    and ``*/*_rgb.*`` on ``country/0000_rgb.tiff``: ``country/0000``; ``nir/*`` on ``nir/a.png``: ``a``)."""
    m = regex.fullmatch(relpath)
    if m is None:
        return None
    key = "".join(text if name.startswith("w") else "/" * text.count("/")
                  for name, text in m.groupdict(default="").items())
    key = re.sub("/+", "/", key).strip("/")
    suffix = Path(key).suffix
    return key[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else key


class FolderPairs:
    """Pair source for a folder of the user's own pairs.

    ``nir`` / ``rgb``: patterns such as ``*_nir.*`` / ``*_rgb.*`` (both in one folder tree) or
    ``nir/*`` / ``rgb/*`` (two parallel folders with the same names); a pair is an NIR and an RGB file
    with the same id. Split: ``split_files`` (``{train: FILE, val: FILE, test: FILE}``, text files of
    pair names) if given, else a seeded random split by pair with ``val_ratio`` and ``test_ratio``.
    """

    def __init__(
        self,
        root: str | Path,
        nir: str = "*_nir.*",
        rgb: str = "*_rgb.*",
        val_ratio: float = 0.1,
        test_ratio: float = 0.1,
        seed: int = 0,
        split_files: Mapping[str, str] | None = None,
        frame_long_side: int | None = None,
    ) -> None:
        self.root = Path(root)
        # the long side (px) of the whole frames the images show, at their pixel scale (None: whole frames)
        self.frame_long_side = frame_long_side
        self.nir, self.rgb = nir, rgb
        self.val_ratio, self.test_ratio, self.seed = val_ratio, test_ratio, seed
        self.split_files = dict(split_files) if split_files else None

    def _find(self, pattern: str, role: str, files: list[str]) -> dict[str, Path]:
        regex = pattern_regex(pattern)
        found: dict[str, Path] = {}
        clashes: list[str] = []
        for rel in files:
            key = match_id(regex, rel)
            if key is None:
                continue
            if key in found:
                clashes.append(f"{self.root / rel}: {role} file with the same name as {found[key]}")
            found[key] = self.root / rel
        if clashes:
            raise DatasetError(f"folder {self.root}: {len(clashes)} ambiguous file(s):\n  " + "\n  ".join(clashes))
        if not found:
            raise DatasetError(f"folder {self.root}: no {role.upper()} images match the pattern {pattern!r} "
                               f"({len(files)} image file(s) in the folder)")
        return found

    @cached_property
    def found(self) -> tuple[dict[str, Pair], list[str]]:
        """(every complete pair under the root by id, one problem line per unpartnered file)."""
        if not self.root.is_dir():
            raise DatasetError(missing_root(self.root, "folder"))
        files = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"folder {self.root}: empty (no {'/'.join(sorted(IMAGE_SUFFIXES))} images)")
        nirs, rgbs = self._find(self.nir, "nir", files), self._find(self.rgb, "rgb", files)
        problems = [f"{nirs[k]}: NIR image has no RGB partner (pattern {self.rgb!r})"
                    for k in sorted(nirs.keys() - rgbs.keys())]
        problems += [f"{rgbs[k]}: RGB image has no NIR partner (pattern {self.nir!r})"
                     for k in sorted(rgbs.keys() - nirs.keys())]
        pairs = {k: Pair(name=k.replace("/", "_"), nir=nirs[k], rgb=rgbs[k]) for k in sorted(nirs.keys() & rgbs.keys())}
        if not pairs:
            raise DatasetError.listing(f"folder {self.root}", [*problems, f"{self.root}: no complete pairs"])
        return pairs, problems

    @property
    def all_pairs(self) -> dict[str, Pair]:
        """Every pair by id; unpartnered files raise one DatasetError listing all of them."""
        pairs, problems = self.found
        if problems:
            raise DatasetError.listing(f"folder {self.root}", problems, list(pairs.values()))
        return pairs

    @cached_property
    def assignment(self) -> dict[str, str]:
        """Pair id -> split (of the complete pairs)."""
        pairs = self.found[0]
        if not self.split_files:
            return split_by_ratio(list(pairs), self.val_ratio, self.test_ratio, self.seed)
        listed = read_split_files(self.split_files, self.root)
        by_name = {p.name: k for k, p in pairs.items()} | {k: k for k in pairs}
        unknown = sorted(n for n in listed if n not in by_name)
        if unknown:
            raise DatasetError(f"folder {self.root}: {len(unknown)} name(s) in the split files match no pair: "
                               + ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else ""))
        assignment = {by_name[n]: split for n, split in listed.items()}
        if unused := len(pairs) - len(assignment):
            log.warning("folder %s: %d pair(s) are in no split file and are not used", self.root, unused)
        return assignment

    @property
    def test_sets(self) -> list[str]:
        """``["test"]`` when the split has test pairs (``test_ratio`` > 0, or a ``test`` split file), else none."""
        return ["test"] if (self.split_files and "test" in self.split_files) or (
            not self.split_files and self.test_ratio > 0) else []

    def pairs(self, split: str) -> list[Pair]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} (use {', '.join(SPLITS)})")
        pairs, problems = self.found
        chosen = [pairs[k] for k in sorted(self.assignment) if self.assignment[k] == split]
        if problems:  # the complete pairs ride along, so that the caller can check them too
            raise DatasetError.listing(f"folder {self.root}", problems, chosen)
        return chosen
