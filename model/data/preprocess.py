"""Preprocessing, defined once for training and inference, with its inverse.

From a full mammogram to the network's working image:

1. :func:`find_breast_region`: the breast, without film background, burned-in
   labels and bright border strips; its bounding box.
2. Crop to that box and flip so the chest wall is on the left (:class:`Geometry`
   remembers which).
3. Resample to the working pixel spacing stored with the weights. CBIS-DDSM
   carries no spacing; DDSM's scanners sampled at 42-50 um, so a missing
   spacing is taken as :data:`DEFAULT_SPACING_MM` (0.05 mm).
4. Histogram equalization over the breast, as in the paper; background 0.

:class:`Geometry` maps arrays and points both ways, so a mask predicted on the
working image lands on the original pixel grid, and a ground-truth mask goes to
the working image with the same transform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

DEFAULT_SPACING_MM = 0.05  # CBIS-DDSM has no PixelSpacing; DDSM film was scanned at 42-50 um


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of the preprocessing; saved in the model card with the weights."""

    working_spacing_mm: float = 0.1
    default_spacing_mm: float = DEFAULT_SPACING_MM
    margin_mm: float = 2.0  # kept around the breast's bounding box
    equalize_bins: int = 4096

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class BreastRegion:
    mask: np.ndarray  # bool, original grid
    bbox: tuple[int, int, int, int]  # y0, y1, x0, x1 (exclusive ends)
    chest_wall_side: str  # "left" / "right"


@dataclass(frozen=True)
class Geometry:
    """original image <-> working image: crop, optional horizontal flip, scale."""

    original_shape: tuple[int, int]
    crop: tuple[int, int, int, int]  # y0, y1, x0, x1 in the original
    flipped: bool  # True when the chest wall was on the right
    scale: float  # working pixels per original pixel
    working_shape: tuple[int, int]
    spacing_mm: float  # original pixel spacing used (header or default)
    spacing_known: bool

    def to_working(self, array: np.ndarray, *, nearest: bool = False) -> np.ndarray:
        """An array on the original grid (image or mask) onto the working grid."""
        y0, y1, x0, x1 = self.crop
        part = array[y0:y1, x0:x1]
        if self.flipped:
            part = part[:, ::-1]
        h, w = self.working_shape
        if nearest or part.dtype == bool:
            out = cv2.resize(np.ascontiguousarray(part, dtype=np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
            return out.astype(bool) if array.dtype == bool else out.astype(array.dtype)
        interpolation = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(part, dtype=np.float32), (w, h), interpolation=interpolation)

    def to_original(self, array: np.ndarray, *, fill: float = 0, nearest: bool = False) -> np.ndarray:
        """An array on the working grid (a mask or a probability map) back onto the original grid.

        A bool mask comes back bool and a uint8 map (a probability in 0-255) uint8, interpolated in float32 over
        the crop and truncated as ``astype`` would; anything else comes back float32. The full-size result is
        the only full-size array made, in the smallest of these types.
        """
        y0, y1, x0, x1 = self.crop
        h, w = y1 - y0, x1 - x0
        is_bool = array.dtype == bool
        src = np.ascontiguousarray(array, dtype=np.uint8 if is_bool else np.float32)
        interpolation = cv2.INTER_NEAREST if (nearest or is_bool) else cv2.INTER_LINEAR
        part = cv2.resize(src, (w, h), interpolation=interpolation)
        if self.flipped:
            part = part[:, ::-1]
        keep_uint8 = array.dtype == np.uint8 and 0 <= fill <= 255
        out = np.full(self.original_shape, fill, dtype=np.uint8 if keep_uint8 else src.dtype)
        out[y0:y1, x0:x1] = part  # float32 to uint8 truncates, as astype(np.uint8) did
        return out.view(bool) if is_bool else out

    def point_to_working(self, x: float, y: float) -> tuple[float, float]:
        y0, _, x0, x1 = self.crop
        u = (x - x0) if not self.flipped else (x1 - 1 - x)
        return (u + 0.5) * self.scale - 0.5, (y - y0 + 0.5) * self.scale - 0.5

    def point_to_original(self, u: float, v: float) -> tuple[float, float]:
        y0, _, x0, x1 = self.crop
        du = (u + 0.5) / self.scale - 0.5
        x = x0 + du if not self.flipped else x1 - 1 - du
        return x, y0 + (v + 0.5) / self.scale - 0.5

    @property
    def working_spacing_mm(self) -> float:
        return self.spacing_mm / self.scale


def _normalised_small(pixels: np.ndarray, target_rows: int = 512) -> tuple[np.ndarray, float]:
    rows = pixels.shape[0]
    factor = min(1.0, target_rows / rows)
    if factor < 1:
        # 8- and 16-bit images are shrunk as they are (no float32 copy of the whole image, 4 bytes a pixel)
        source = pixels if pixels.dtype in (np.uint8, np.uint16) else np.asarray(pixels, np.float32)
        small = cv2.resize(source, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA).astype(np.float32)
    else:
        small = pixels.astype(np.float32)
    lo, hi = np.percentile(small, [0.5, 99.9])
    return np.clip((small - lo) / max(hi - lo, 1e-6), 0, 1), factor


def find_breast_region(pixels: np.ndarray) -> BreastRegion:
    """The breast on a MONOCHROME2 mammogram (dense = bright).

    Otsu's threshold on a 512-row copy separates tissue from the film
    background. An opening wider than the border strips and labels detaches
    them from the breast; the largest component is the breast; holes are
    filled. The chest wall is the side where the breast meets the image edge
    over the longest stretch.
    """
    small, factor = _normalised_small(pixels)
    h, w = small.shape
    eight = np.round(small * 255).astype(np.uint8)
    eight = cv2.GaussianBlur(eight, (5, 5), 0)
    threshold, _ = cv2.threshold(eight, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    binary = (eight > max(threshold * 0.6, 8)).astype(np.uint8)
    frame = max(2, int(0.01 * max(h, w)))  # scanner edges and strips hug the border
    binary[:frame], binary[-frame:], binary[:, :frame], binary[:, -frame:] = 0, 0, 0, 0
    k = max(3, int(0.02 * h) | 1)
    opened = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        mask_small = np.ones((h, w), np.uint8)
    else:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        mask_small = (labels == largest).astype(np.uint8)
        # restore the skin edge the opening shaved off, without re-attaching strips
        mask_small = cv2.dilate(mask_small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) & binary
        mask_small = _fill_holes(mask_small)
    mask = cv2.resize(mask_small, (pixels.shape[1], pixels.shape[0]), interpolation=cv2.INTER_NEAREST).view(bool)
    # the bounding box from the rows and columns that hold breast (no index arrays of every breast pixel)
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        bbox = (0, pixels.shape[0], 0, pixels.shape[1])
    else:
        bbox = (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)
    side = _chest_wall_from_mask(mask_small, frame)
    return BreastRegion(mask=mask, bbox=bbox, chest_wall_side=side)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    flood = np.pad(mask, 1).copy()
    ff_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return (mask.astype(bool) | holes).astype(np.uint8)


def _chest_wall_from_mask(mask: np.ndarray, frame: int) -> str:
    cols = mask.any(axis=0).nonzero()[0]
    if cols.size == 0:
        return "left"
    left_edge = mask[:, cols[0] : cols[0] + 3].sum()
    right_edge = mask[:, max(cols[-1] - 2, 0) : cols[-1] + 1].sum()
    # the breast spans the chest-wall edge top to bottom; the nipple side narrows to a point
    return "left" if left_edge >= right_edge else "right"


def chest_wall_side(pixels: np.ndarray) -> str:
    """'left' or 'right': the image edge the chest wall is on (the breast's widest side)."""
    return find_breast_region(pixels).chest_wall_side


FLAT_SPAN = 1e-4  # a breast whose values span less than this (relative to their magnitude) is flat


def equalize(pixels: np.ndarray, mask: np.ndarray, bins: int = 4096) -> np.ndarray:
    """Histogram equalization over the breast (the paper's contrast normalisation): float32 in [0, 1], background 0."""
    values = pixels[mask]
    if values.size == 0:
        return np.zeros(pixels.shape, np.float32)
    lo, hi = float(values.min()), float(values.max())
    # A flat image stays flat: resampling a constant leaves float noise a few ULPs wide, which would
    # otherwise be stretched to the full range (and gave np.histogram bins of no finite size).
    if hi - lo <= FLAT_SPAN * max(1.0, abs(hi)):
        out = np.zeros(pixels.shape, np.float32)
        out[mask] = 0.5
        return out
    step = (bins - 1) / (hi - lo)
    index = np.clip((pixels.astype(np.float32) - np.float32(lo)) * np.float32(step), 0, bins - 1).astype(np.int32)
    hist = np.bincount(index[mask], minlength=bins)
    cdf = np.cumsum(hist).astype(np.float64)
    cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1)
    out = cdf.astype(np.float32)[index]
    out[~mask] = 0
    return out


def prepare(pixels: np.ndarray, spacing_mm: tuple[float, float] | float | None, config: PreprocessConfig = PreprocessConfig(),
            *, region: BreastRegion | None = None) -> tuple[np.ndarray, Geometry, BreastRegion]:
    """Full mammogram (MONOCHROME2) → (working float32 image in [0, 1], geometry, breast region).

    ``region``: the breast region already found on these same pixels (a two-pass model prepares each view at two
    spacings; the region does not depend on the spacing, and finding it on a full-size image is not free)."""
    if region is None:
        region = find_breast_region(pixels)
    elif region.mask.shape != pixels.shape:
        raise ValueError(f"breast region of {region.mask.shape} given for pixels of {pixels.shape}")
    if spacing_mm is None:
        spacing, known = config.default_spacing_mm, False
    else:
        spacing = float(np.mean(spacing_mm)) if not np.isscalar(spacing_mm) else float(spacing_mm)
        known = True
    margin = int(round(config.margin_mm / spacing))
    y0, y1, x0, x1 = region.bbox
    rows, cols = pixels.shape
    crop = (max(0, y0 - margin), min(rows, y1 + margin), max(0, x0 - margin), min(cols, x1 + margin))
    scale = spacing / config.working_spacing_mm
    h = max(1, int(round((crop[1] - crop[0]) * scale)))
    w = max(1, int(round((crop[3] - crop[2]) * scale)))
    geometry = Geometry(
        original_shape=(rows, cols), crop=crop, flipped=region.chest_wall_side == "right", scale=scale,
        working_shape=(h, w), spacing_mm=spacing, spacing_known=known,
    )
    # Equalize after resampling: the same mapping, a quarter of the pixels to touch at 0.1 mm.
    working = geometry.to_working(pixels)
    working_mask = geometry.to_working(region.mask)
    return equalize(working, working_mask, config.equalize_bins), geometry, region
