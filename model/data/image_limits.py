"""The largest image read (``BCIR_MAX_IMAGE_MEGAPIXELS``) and the check of an image's declared size against it."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from model.errors import UnsupportedImageError

log = logging.getLogger("bcir.dicom_io")  # the image reader's log, under the name it has always had

# The largest image read, in megapixels. Real mammograms are at most about 5,000 x 6,000 (30 MP); twice
# that leaves a margin and keeps a whole-view inference under 2.5 GB. The environment variable overrides it.
MAX_IMAGE_MEGAPIXELS = 64
MAX_IMAGE_ENV = "BCIR_MAX_IMAGE_MEGAPIXELS"
_warned_limits: set[str] = set()


def max_image_pixels() -> int:
    """The size limit in pixels: ``BCIR_MAX_IMAGE_MEGAPIXELS`` (a positive number) or :data:`MAX_IMAGE_MEGAPIXELS`."""
    raw = os.environ.get(MAX_IMAGE_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return max(1, int(value * 1_000_000))
        if raw not in _warned_limits:
            _warned_limits.add(raw)
            log.warning("%s=%r is not a positive number of megapixels; using %d", MAX_IMAGE_ENV, raw, MAX_IMAGE_MEGAPIXELS)
    return MAX_IMAGE_MEGAPIXELS * 1_000_000


def max_pixel_bytes() -> int:
    """The most bytes of pixel data (or of an inflated dataset) read for an image within the limit."""
    return max_image_pixels() * 4 + (16 << 20)


def check_image_size(path: Path, rows: int, columns: int) -> None:
    """Refuse an empty image, or one over the size limit, from its declared size (before decoding)."""
    if rows <= 0 or columns <= 0:
        raise UnsupportedImageError(path, f"image of {rows} x {columns} pixels; nothing to read")
    limit = max_image_pixels()
    if rows * columns > limit:
        raise UnsupportedImageError(
            path, f"image of {rows} x {columns} pixels ({rows * columns / 1e6:.0f} megapixels) is over the limit of "
                  f"{limit / 1e6:g} megapixels (a mammogram has about 30; {MAX_IMAGE_ENV} sets the limit)")
