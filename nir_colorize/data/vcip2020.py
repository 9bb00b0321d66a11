"""The VCIP 2020 challenge layout: ``NIR/``, ``RGB-Registered/``, ``Validation/``, ``Testing/`` (design section 4)."""

from __future__ import annotations

import logging
from pathlib import Path

from nir_colorize.data.pairs import Pair, match_pairs, missing_root
from nir_colorize.data.splits import read_carve_out, split_by_ratio, write_carve_out
from nir_colorize.errors import DatasetError

log = logging.getLogger(__name__)

# VCIP 2020 challenge layout (SPEC section 4): folder(s) and name patterns. Test RGB files have a capital T.
VCIP_FOLDERS: dict[str, tuple[str, str, str, str]] = {
    "train": ("NIR", "RGB-Registered", r"(?P<id>.+)_nir\.png", r"(?P<id>.+)_rgb_reg\.png"),
    "validation": ("Validation", "Validation", r"validation_(?P<id>\d+)_nir\.png", r"validation_(?P<id>\d+)_rgb_reg\.png"),
    "testing": ("Testing", "Testing", r"testing_(?P<id>\d+)_nir_reg\.png", r"[Tt]esting_(?P<id>\d+)_rgb_reg\.png"),
}
PROTOCOLS = ("carve_out", "published")
PUBLISHED_WARNING = ("data.source.protocol=published: Validation/ picks the checkpoint (the challenge's protocol), so "
                     "it is no test set here, and Testing/ pairs that duplicate it are scored as test images (in the "
                     "published release 15 of the 28 Testing/ pairs are Validation/ pairs and 8 are training pairs); "
                     "the leakage check below names them. protocol=carve_out (the default) validates on training pairs.")


class VCIP2020:
    """Pair source for the VCIP 2020 layout (``NIR/``, ``RGB-Registered/``, ``Validation/``, ``Testing/``).

    ``protocol=carve_out`` (default, SPEC section 6): ``val`` is a seeded ``val_ratio`` of the training pairs
    (recorded in ``split_file``: reused when it exists, written when it does not; None: not recorded), and
    ``Validation/`` and ``Testing/`` are the test sets ``validation`` and ``testing`` (each where present).
    ``protocol=published``: the challenge's protocol, ``val`` = ``Validation/``, all ``NIR/`` pairs train, the
    test set is ``testing``; it warns what that leaks.
    """

    # The crops come from nirscene1 frames shrunk to a 384-pixel width (design section 10): the scale they teach.
    frame_long_side = 384

    def __init__(self, root: str | Path, protocol: str = "carve_out", val_ratio: float = 0.1, seed: int = 0,
                 split_file: str | Path | None = None) -> None:
        if protocol not in PROTOCOLS:
            raise DatasetError(f"data.source.protocol={protocol!r}: use one of {', '.join(PROTOCOLS)}")
        self.root = Path(root)
        self.protocol = protocol
        self.val_ratio, self.seed = val_ratio, seed
        self.split_file = Path(split_file) if split_file else None
        self._carve: dict[str, str] | None = None
        if protocol == "published":
            log.warning(PUBLISHED_WARNING)

    def _folder(self, key: str) -> list[Pair]:
        if not self.root.is_dir():
            raise DatasetError(missing_root(self.root, "VCIP 2020 data root"))
        nir_sub, rgb_sub, nir_pat, rgb_pat = VCIP_FOLDERS[key]
        return match_pairs(self.root / nir_sub, self.root / rgb_sub, nir_pat, rgb_pat,
                           f"VCIP 2020 {VCIP_FOLDERS[key][0]}/ folder under {self.root}")

    @property
    def test_sets(self) -> list[str]:
        """The test sets present under the root: ``validation`` (carve-out protocol only) and ``testing``."""
        names = ["validation", "testing"] if self.protocol == "carve_out" else ["testing"]
        return [n for n in names if (self.root / VCIP_FOLDERS[n][0]).is_dir()]

    def carve_out(self, pairs: list[Pair]) -> dict[str, str]:
        """Training pair name -> ``train`` | ``val``, from ``split_file`` when it exists, else seeded (and written)."""
        if self._carve is None:
            names = [p.name for p in pairs]
            self._carve = read_carve_out(self.split_file, names, self.val_ratio, self.seed) if (
                self.split_file and self.split_file.is_file()) else None
            if self._carve is None:
                assignment = split_by_ratio(names, self.val_ratio, 0.0, self.seed)
                self._carve = assignment
                if self.split_file:
                    write_carve_out(self.split_file, assignment, self.val_ratio, self.seed)
                    log.info("VCIP 2020 carve-out (val_ratio %s, seed %s) written to %s", self.val_ratio, self.seed,
                             self.split_file)
        return self._carve

    def pairs(self, split: str) -> list[Pair]:
        if split in ("train", "val") and self.protocol == "published":
            return self._folder("train" if split == "train" else "validation")
        if split in ("train", "val"):
            pool = self._folder("train")
            assignment = self.carve_out(pool)
            return [p for p in pool if assignment[p.name] == split]
        if split not in self.test_sets:
            raise DatasetError(f"VCIP 2020 under {self.root}: no test set {split!r} (present: "
                               f"{', '.join(self.test_sets) or 'none'}; protocol={self.protocol})")
        return self._folder(split)
