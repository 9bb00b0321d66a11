"""Several pair sources as one dataset (``data=vcip2020_scenes``): one model learns all of them."""

from __future__ import annotations

from collections.abc import Mapping

from nir_colorize.data.pairs import Pair
from nir_colorize.errors import DatasetError


class CombinedPairs:
    """``train`` and ``val`` are the union of the sources' splits; every test set of every source stays a test
    set of its own, named ``<source>_<set>`` (e.g. ``vcip_validation``, ``scenes_test``). Pair names get the
    source's name as prefix, so that two sources may use the same file names.

    ``repeat``: source name -> how many times its train pairs are listed per epoch (default 1), e.g.
    ``{scenes: 3}`` so that 101 scene frames weigh about as much as 335 VCIP pairs; val and test sets never repeat.
    """

    def __init__(self, sources: Mapping[str, object], repeat: Mapping[str, int] | None = None) -> None:
        if not sources:
            raise DatasetError("data.source.sources: give at least one source")
        self.sources = dict(sources)
        self.repeat = dict(repeat or {})
        for name, times in self.repeat.items():
            if name not in self.sources:
                raise DatasetError(f"data.source.repeat.{name}: no such source (have: {', '.join(self.sources)})")
            if not isinstance(times, int) or isinstance(times, bool) or times < 1:
                raise DatasetError(f"data.source.repeat.{name}={times!r}: give a whole number >= 1")

    @property
    def test_sets(self) -> list[str]:
        return [f"{name}_{t}" for name, src in self.sources.items() for t in getattr(src, "test_sets", ["test"])]

    @property
    def frame_long_side(self) -> int | None:
        """The sources' common frame scale (``NIRDataModule.frame_long_side``); None where one is unknown or they
        differ (the data module then measures the training images)."""
        sides = {getattr(src, "frame_long_side", None) for src in self.sources.values()}
        return sides.pop() if len(sides) == 1 else None

    @property
    def root(self) -> str:
        return ", ".join(f"{n}: {getattr(s, 'root', '?')}" for n, s in self.sources.items())

    def prepare(self) -> None:
        for src in self.sources.values():
            prepare = getattr(src, "prepare", None)
            if callable(prepare):
                prepare()

    @staticmethod
    def _named(prefix: str, pairs: list[Pair], times: int = 1) -> list[Pair]:
        """The pairs with names ``<prefix>_<name>``; listed ``times`` times, the copies named ``...#2``, ``#3``."""
        return [Pair(name=f"{prefix}_{p.name}" + (f"#{k + 1}" if k else ""), nir=p.nir, rgb=p.rgb)
                for k in range(times) for p in pairs]

    def pairs(self, split: str) -> list[Pair]:
        if split in ("train", "val"):
            found, problems = [], []
            for name, src in self.sources.items():
                times = self.repeat.get(name, 1) if split == "train" else 1
                try:
                    found += self._named(name, src.pairs(split), times)
                except DatasetError as err:
                    if err.pairs is None:
                        raise
                    found += self._named(name, err.pairs, times)
                    problems += err.problems
            if problems:
                raise DatasetError.listing(f"{split} split of {', '.join(self.sources)}", problems, found)
            return found
        for name, src in self.sources.items():
            if split.startswith(f"{name}_") and split[len(name) + 1:] in getattr(src, "test_sets", ["test"]):
                return self._named(name, src.pairs(split[len(name) + 1:]))
        raise DatasetError(f"no test set {split!r} (have: {', '.join(self.test_sets)})")
