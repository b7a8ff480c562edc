"""Stable random generators seeded from strings and ints, so every render is reproducible."""

from __future__ import annotations

import zlib

import numpy as np


def seed_int(part) -> int:
    """One seed word from a string (CRC-32), a bool or an int (wrapped to 64 bits)."""
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    if isinstance(part, (bool, np.bool_)):
        return int(part)
    return int(part) & 0xFFFFFFFFFFFFFFFF


def rng(*parts) -> np.random.Generator:
    """A generator seeded from strings and ints in a stable way (no Python ``hash``)."""
    return np.random.default_rng(np.random.SeedSequence([seed_int(p) for p in parts]))
