"""Several pair sources as one dataset (``data=vcip2020_scenes``): one model learns all of them."""

from __future__ import annotations

from collections.abc import Mapping

from nir_colorize.data.pairs import DatasetError, Pair


class CombinedPairs:
    """``train`` and ``val`` are the union of the sources' splits; every test set of every source stays a test
    set of its own, named ``<source>_<set>`` (e.g. ``vcip_validation``, ``scenes_test``). Pair names get the
    source's name as prefix, so that two sources may use the same file names."""

    def __init__(self, sources: Mapping[str, object]) -> None:
        if not sources:
            raise DatasetError("data.source.sources: give at least one source")
        self.sources = dict(sources)

    @property
    def test_sets(self) -> list[str]:
        return [f"{name}_{t}" for name, src in self.sources.items() for t in getattr(src, "test_sets", ["test"])]

    @property
    def root(self) -> str:
        return ", ".join(f"{n}: {getattr(s, 'root', '?')}" for n, s in self.sources.items())

    def prepare(self) -> None:
        for src in self.sources.values():
            prepare = getattr(src, "prepare", None)
            if callable(prepare):
                prepare()

    @staticmethod
    def _named(prefix: str, pairs: list[Pair]) -> list[Pair]:
        return [Pair(name=f"{prefix}_{p.name}", nir=p.nir, rgb=p.rgb) for p in pairs]

    def pairs(self, split: str) -> list[Pair]:
        if split in ("train", "val"):
            found, problems = [], []
            for name, src in self.sources.items():
                try:
                    found += self._named(name, src.pairs(split))
                except DatasetError as err:
                    if err.pairs is None:
                        raise
                    found += self._named(name, err.pairs)
                    problems += err.problems
            if problems:
                raise DatasetError.listing(f"{split} split of {', '.join(self.sources)}", problems, found)
            return found
        for name, src in self.sources.items():
            if split.startswith(f"{name}_") and split[len(name) + 1:] in getattr(src, "test_sets", ["test"]):
                return self._named(name, src.pairs(split[len(name) + 1:]))
        raise DatasetError(f"no test set {split!r} (have: {', '.join(self.test_sets)})")
