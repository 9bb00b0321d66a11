"""Multi-process helpers: gather the per-image result rows of every rank (DDP, docs/scaling.md)."""

from __future__ import annotations

from typing import Any

import torch.distributed as dist


def world_size() -> int:
    """Number of processes of the initialised process group, 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def merge_rows(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of every rank as one list, each (``set``, ``stage``, image ``name``) once, ordered by set, stage, name.

    A DistributedSampler pads its last batches with repeated images so that every rank runs as many
    steps; the repeats give identical rows, so keeping the first one counts every image exactly once.
    """
    unique: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rows in parts:
        for row in rows:
            unique.setdefault((row.get("set", ""), row.get("stage", "raw"), row["name"]), row)
    sets = list(dict.fromkeys(k[0] for k in unique))
    stages = list(dict.fromkeys(k[1] for k in unique))
    return [unique[k] for k in sorted(unique, key=lambda k: (sets.index(k[0]), stages.index(k[1]), k[2]))]


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of all ranks on every rank (a collective: call it on every rank); ``rows`` if not distributed."""
    if world_size() == 1:
        return rows
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, rows)
    return merge_rows(parts)
