"""Where a finding is, from the reader's marks and the breast's geometry: clock face, depth, nipple distance, size.

Conventions (the images are in the standard mammography display, IHE Mammography's Patient Orientation: LCC "A\\R",
RCC "P\\L", MLO "A\\FR" / "P\\FL"):

- The chest wall is the image edge the preprocessing found (``model.data.preprocess.find_breast_region``:
  ``chest_wall_side`` "left" or "right"); the posterior axis runs along the image rows, from the nipple to it.
- The nipple is the breast's most anterior point: the breast column furthest from the chest wall, at the middle
  row of that column's breast pixels.
- On a CC view the top of the image is the breast's lateral (outer) side; on an MLO view the top is its upper
  (superior, axillary) side. So CC gives the medial-lateral offset of a mark from the nipple, MLO the upper-lower
  offset (the oblique projection is taken as upper-lower).
- The clock face is seen from the front, facing the woman: 12 o'clock is superior, 6 inferior; the woman's left
  breast has its lateral side on the viewer's right, so 3 o'clock is lateral on the left breast and medial on the
  right, and 9 o'clock is medial on the left breast and lateral on the right.
- With a CC and an MLO mark the hour is the angle of (lateral-medial, upper-lower) rounded to the nearest whole
  hour. With one view only, the hour is the nearest on that view's axis (CC: 3 or 9; MLO: 12 or 6); a mark exactly
  at the nipple's level gives no hour from that view alone.
- Depth: the mark's distance behind the nipple along the posterior axis, in thirds of the nipple-to-chest-wall
  distance (anterior, middle, posterior), averaged over the views.
- Distance from the nipple: the straight distance on the image in mm, averaged over the views whose pixel spacing is
  known (None where none is). Size: the longest extent of an outline in mm, the largest over the views (None for
  points only or unknown spacing).

A mark is placed at its centroid (an outline's area centroid). Marks on images without landmarks are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from model.errors import DataError
from model.reading.reads import Finding, Mark
from model.reading.vocab import DEPTHS


@dataclass(frozen=True)
class Landmarks:
    """A breast's geometry on one image, in the image's original pixel coordinates (x, y)."""

    nipple: tuple[float, float]
    chest_wall_x: float
    chest_wall_top_y: float  # the breast's first and last rows at the chest wall
    chest_wall_bottom_y: float


def breast_landmarks(breast_mask: np.ndarray, chest_wall_side: str) -> Landmarks:
    """The nipple and the chest wall of the breast in ``breast_mask`` (bool, the image's grid), whose chest wall is
    on the image's ``chest_wall_side`` ("left" or "right", as find_breast_region says)."""
    if chest_wall_side not in ("left", "right"):
        raise ValueError(f"chest_wall_side {chest_wall_side!r} is not 'left' or 'right'")
    mask = np.asarray(breast_mask, dtype=bool)
    if mask.ndim != 2:
        raise DataError(f"the breast mask has {mask.ndim} dimensions, not 2")
    columns = np.flatnonzero(mask.any(axis=0))
    if columns.size == 0:
        raise DataError("the breast mask holds no breast")
    wall, front = (columns[0], columns[-1]) if chest_wall_side == "left" else (columns[-1], columns[0])
    front_rows = np.flatnonzero(mask[:, front])
    wall_rows = np.flatnonzero(mask[:, wall])
    return Landmarks(nipple=(float(front), (front_rows[0] + front_rows[-1]) / 2.0), chest_wall_x=float(wall),
                     chest_wall_top_y=float(wall_rows[0]), chest_wall_bottom_y=float(wall_rows[-1]))


def centroid(points: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """A point itself; an outline's area centroid (its vertices' mean where the outline has no area)."""
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)
    if len(points) >= 3:
        cross = xs * np.roll(ys, -1) - np.roll(xs, -1) * ys
        area = cross.sum() / 2.0
        if abs(area) > 1e-9:
            return (float(((xs + np.roll(xs, -1)) * cross).sum() / (6 * area)),
                    float(((ys + np.roll(ys, -1)) * cross).sum() / (6 * area)))
    return float(xs.mean()), float(ys.mean())


def longest_extent(points: tuple[tuple[float, float], ...]) -> float:
    """The largest distance between two points of an outline, in pixels."""
    return max(math.dist(a, b) for a, b in combinations(points, 2))


def _hour(lateral: float | None, superior: float | None, side: str) -> int | None:
    """The clock hour of an offset from the nipple, seen from the front (None where no axis gives one)."""
    lateral = lateral or 0.0
    superior = superior or 0.0
    if lateral == 0.0 and superior == 0.0:
        return None
    viewer_right = lateral if side == "L" else -lateral  # the left breast's lateral side is on the viewer's right
    angle = math.degrees(math.atan2(viewer_right, superior)) % 360.0  # clockwise from 12
    hour = round(angle / 30.0) % 12
    return 12 if hour == 0 else hour


def locate(finding_marks: tuple[Mark, ...], landmarks_by_image: dict[str, Landmarks],
           spacing_by_image: dict[str, float | None], side: str) -> dict:
    """The location of a finding of breast ``side`` ("L"/"R") from its marks: ``clock_hour`` (1-12 or None),
    ``depth`` (``vocab.DEPTHS`` or None), ``nipple_distance_mm`` and ``size_mm`` (None where unknown).
    ``spacing_by_image`` is the pixel spacing in mm per image key (None or absent: unknown)."""
    if side not in ("L", "R"):
        raise ValueError(f"side {side!r} is not 'L' or 'R'")
    offsets: dict[str, list[float]] = {"CC": [], "MLO": []}  # upward offset from the nipple, mm or pixels
    spacings: dict[str, list[float | None]] = {"CC": [], "MLO": []}
    fractions: list[float] = []
    distances_mm: list[float] = []
    sizes_mm: list[float] = []
    for mark in finding_marks:
        if mark.view[0] != side:
            raise ValueError(f"a mark on {mark.view} in a finding of the {side} breast")
        landmarks = landmarks_by_image.get(mark.image)
        if landmarks is None:
            continue
        spacing = spacing_by_image.get(mark.image)
        x, y = centroid(mark.points)
        nipple_x, nipple_y = landmarks.nipple
        kind = mark.view[1:]
        offsets[kind].append(nipple_y - y)  # image rows grow downwards; the top is lateral (CC) or upper (MLO)
        spacings[kind].append(spacing)
        wall_distance = abs(landmarks.chest_wall_x - nipple_x)
        if wall_distance > 0:
            backwards = math.copysign(1.0, landmarks.chest_wall_x - nipple_x)
            fractions.append((x - nipple_x) * backwards / wall_distance)
        if spacing is not None:
            distances_mm.append(math.dist((x, y), (nipple_x, nipple_y)) * spacing)
            if mark.is_outline:
                sizes_mm.append(longest_extent(mark.points) * spacing)
    # across views, offsets compare in mm where every spacing is known, else in pixels (one detector: close enough)
    in_mm = all(s is not None for kind in spacings for s in spacings[kind])
    mean = {kind: (sum(o * (s if in_mm else 1.0) for o, s in zip(offsets[kind], spacings[kind])) / len(offsets[kind])
                   if offsets[kind] else None) for kind in offsets}
    depth = None
    if fractions:
        fraction = sum(fractions) / len(fractions)
        depth = DEPTHS[0] if fraction < 1 / 3 else DEPTHS[1] if fraction < 2 / 3 else DEPTHS[2]
    return {"clock_hour": _hour(mean["CC"], mean["MLO"], side), "depth": depth,
            "nipple_distance_mm": sum(distances_mm) / len(distances_mm) if distances_mm else None,
            "size_mm": max(sizes_mm) if sizes_mm else None}


def finding_with_location(finding: Finding, landmarks_by_image: dict[str, Landmarks],
                          spacing_by_image: dict[str, float | None], side: str) -> Finding:
    """``finding`` with its clock hour, depth, nipple distance and size derived from its marks."""
    return replace(finding, **locate(finding.marks, landmarks_by_image, spacing_by_image, side))
