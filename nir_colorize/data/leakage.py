"""Train/test overlap: exact and near-duplicate pairs between the splits of a dataset (design section 6).

Every image gets a fingerprint when the dataset check decodes it (``fingerprint``; cached with that
check, so a run pays the decode once per file): a hash of its decoded pixels, a hash of its horizontal
mirror, and a 32x32 area thumbnail of its luminance. Two pairs are

- **exact** duplicates when the NIR or the RGB images have the same pixels (``exact``), or the same
  pixels once mirrored (``exact-flip``);
- **near** duplicates when the Pearson correlation of their thumbnails is at least ``near`` (0.95 by
  default) for the NIR *and* for the RGB images, as they are or one mirrored (``near`` / ``near-flip``).

The near rule was set on VCIP 2020 (docs/evaluation.md): distinct crops there correlate at most 0.94
(NIR, 32x32 thumbnails), while a re-encoded (JPEG 50), rescaled, brightened or 2-pixel-shifted copy of an
image correlates at least 0.965 with it. Comparing thumbnails is one matrix product per split pair, so
the check costs milliseconds after the decode.

``find_duplicates`` compares every set with the sets before it in the order train, val, test sets; a
duplicate of a train or val pair is a *leak* (it is excluded from the clean rows of a test table).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

THUMB = 32
NEAR = 0.95
SELECTION_SETS = ("train", "val")  # the sets that train or pick a checkpoint: a duplicate of these leaks
RULE = (f"exact: identical decoded pixels of the NIR or the RGB image, also horizontally mirrored; near: Pearson "
        f"correlation >= {{near}} of {THUMB}x{THUMB} luminance thumbnails for both NIR and RGB (as they are, or "
        f"one mirrored). A duplicate of a train or val pair is a leak.")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha1(f"{arr.shape}".encode() + np.ascontiguousarray(arr).tobytes()).hexdigest()


def fingerprint(image: np.ndarray) -> dict[str, str]:
    """Fingerprint of a decoded (H, W, C) float image in [0, 1]: ``sha``, ``sha_flip`` (of the horizontal
    mirror) and ``thumb`` (base64 float16 THUMB x THUMB area thumbnail of its luminance)."""
    gray = image[..., 0] if image.shape[-1] == 1 else image[..., :3] @ LUMA
    thumb = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None, None], THUMB)
    return {"sha": _digest(image), "sha_flip": _digest(image[:, ::-1]),
            "thumb": base64.b64encode(thumb.flatten().numpy().astype(np.float16).tobytes()).decode()}


def thumbnails(fps: list[dict[str, str]]) -> torch.Tensor:
    """(N, THUMB, THUMB) float32 thumbnails of ``fps``."""
    raw = b"".join(base64.b64decode(fp["thumb"]) for fp in fps)
    return torch.from_numpy(np.frombuffer(raw, dtype=np.float16).astype(np.float32)).reshape(-1, THUMB, THUMB)


def _standardise(t: torch.Tensor) -> torch.Tensor:
    """Rows of zero mean and unit norm (a constant thumbnail stays zero: it correlates with nothing)."""
    flat = t.flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    norm = flat.norm(dim=1, keepdim=True)
    return torch.where(norm > 1e-6, flat / norm.clamp_min(1e-6), torch.zeros_like(flat))


@dataclass(frozen=True)
class Duplicate:
    """``set``/``name`` duplicates ``of_set``/``of_name``; ``kind`` exact | exact-flip | near | near-flip;
    ``images``: which images matched (nir, rgb or nir+rgb); ``score``: thumbnail correlation (min of NIR, RGB)."""

    set: str
    name: str
    of_set: str
    of_name: str
    kind: str
    images: str
    score: float

    @property
    def leak(self) -> bool:
        return self.of_set in SELECTION_SETS

    def label(self) -> str:
        return f"{self.of_set}:{self.of_name} ({self.kind})"


Fingerprints = dict[str, tuple[dict[str, str], dict[str, str]]]  # pair name -> (NIR fingerprint, RGB fingerprint)


def _exact(query: Fingerprints, ref: Fingerprints) -> dict[tuple[str, str], tuple[str, set[str]]]:
    """(query name, ref name) -> (kind, images) for identical pixels."""
    index: dict[tuple[int, str], list[str]] = {}
    for name, fps in ref.items():
        for role, fp in enumerate(fps):
            index.setdefault((role, fp["sha"]), []).append(name)
    found: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for name, fps in query.items():
        for role, fp in enumerate(fps):
            for kind, key in (("exact", fp["sha"]), ("exact-flip", fp["sha_flip"])):
                for other in index.get((role, key), []):
                    prev_kind, images = found.get((name, other), (kind, set()))
                    images.add(("nir", "rgb")[role])
                    found[(name, other)] = (min(prev_kind, kind, key=len), images)
    return found


def _near(query: Fingerprints, ref: Fingerprints, near: float, chunk: int = 2048
          ) -> dict[tuple[str, str], tuple[str, float]]:
    """(query name, ref name) -> (kind, score) where both NIR and RGB thumbnails correlate >= ``near``."""
    qn, rn = list(query), list(ref)
    if not qn or not rn:
        return {}
    ref_t = [_standardise(thumbnails([ref[n][r] for n in rn])) for r in (0, 1)]
    found: dict[tuple[str, str], tuple[str, float]] = {}
    for start in range(0, len(qn), chunk):
        names = qn[start:start + chunk]
        q = [thumbnails([query[n][r] for n in names]) for r in (0, 1)]
        for kind, flip in (("near", False), ("near-flip", True)):
            scores = torch.minimum(*[_standardise(q[r].flip(-1) if flip else q[r]) @ ref_t[r].T for r in (0, 1)])
            for i, j in (scores >= near).nonzero().tolist():
                key = (names[i], rn[j])
                if key not in found or scores[i, j] > found[key][1]:
                    found[key] = (kind, float(scores[i, j]))
    return found


def find_duplicates(sets: dict[str, Fingerprints], near: float = NEAR) -> list[Duplicate]:
    """Every pair of a set that duplicates a pair of an earlier set (``sets`` in order: train, val, then
    test sets), exact matches first; a pair that matches exactly is not reported as near too."""
    names = list(sets)
    found: list[Duplicate] = []
    for i, qs in enumerate(names):
        for rs in names[:i]:
            exact = _exact(sets[qs], sets[rs])
            for (q, r), (kind, images) in sorted(exact.items()):
                found.append(Duplicate(qs, q, rs, r, kind, "+".join(sorted(images)), 1.0))
            for (q, r), (kind, score) in sorted(_near(sets[qs], sets[rs], near).items()):
                if (q, r) not in exact:
                    found.append(Duplicate(qs, q, rs, r, kind, "nir+rgb", round(score, 4)))
    return found


def describe(duplicates: list[Duplicate], sizes: dict[str, int]) -> list[str]:
    """One line per set with duplicates: how many of its pairs duplicate which earlier set."""
    lines = []
    for name, size in sizes.items():
        mine = [d for d in duplicates if d.set == name]
        if not mine:
            continue
        per_ref = {}
        for d in mine:
            per_ref.setdefault(d.of_set, set()).add(d.name)
        parts = [f"{len(v)} duplicate {'(leak) ' if ref in SELECTION_SETS else ''}{ref} pairs"
                 for ref, v in per_ref.items()]
        leaking = {d.name for d in mine if d.leak}
        lines.append(f"{name}: {len(leaking)} of {size} pairs leak ({', '.join(parts)})")
    return lines


def records(duplicates: list[Duplicate]) -> list[dict[str, Any]]:
    return [asdict(d) | {"leak": d.leak} for d in duplicates]
