"""The training cache's rules, torch-free: where it lives, an image's key, whether it is there, and the tile count.

:mod:`model.train.data` prepares and reads the cache; :mod:`model.jobs.estimate`
counts, before a run, what is already there and how many tiles an epoch
holds, with these same rules.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

NORMAL_PER_IMAGE = 8  # lesion-free tile centres drawn per image when it is prepared
CACHE_SUFFIXES = (".json", ".image.npy", ".mask.npy")  # what one prepared image leaves in the cache


def train_cache_dir() -> Path:
    """The training cache of this user (model.train.loop.train's default)."""
    from model.fileio import user_cache_dir

    return user_cache_dir() / "train-cache"


def cache_key(image, preprocess, tile: int) -> str:
    """The key of ``image`` prepared with ``preprocess`` for ``tile``: it changes when the image or a mask does.
    Raises OSError when a file is missing."""
    parts = [preprocess.to_dict(), tile]
    for path in [image.path] + [a.mask_path for a in image.abnormalities]:
        st = os.stat(path)
        parts.append([str(Path(path).resolve()), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def holds(key: str, cache_dir: Path) -> bool:
    """The cache holds every file of the prepared image ``key``."""
    return all((Path(cache_dir) / f"{key}{suffix}").is_file() for suffix in CACHE_SUFFIXES)


def is_cached(image, preprocess, tile: int, cache_dir: Path) -> bool:
    """The training cache already holds ``image`` prepared at this resolution and tile size."""
    try:
        return holds(cache_key(image, preprocess, tile), cache_dir)
    except OSError:
        return False


def tile_count(lesions: int, normal_pool: int, normal_ratio: float) -> int:
    """Tiles an epoch draws before augmentation: one per lesion, plus ``normal_ratio`` x as many lesion-free ones,
    at most the ``normal_pool`` centres there are (model.train.data.build_samples)."""
    wanted = int(round(normal_ratio * max(lesions, 1)))
    return lesions + (min(wanted, normal_pool) if normal_pool else 0)


__all__ = ["CACHE_SUFFIXES", "NORMAL_PER_IMAGE", "cache_key", "holds", "is_cached", "tile_count", "train_cache_dir"]
