"""Synthetic scanned-film screening mammograms with lesion ground truth: :func:`render_view` puts one together.

The renderer imitates CBIS-DDSM / DDSM full-field images: digitised screen-film
mammograms stored as 16-bit MONOCHROME2 (dark film background, fat darker grey,
fibroglandular tissue brighter, calcifications brightest), with the skin line, the
nipple in profile, the pectoral muscle on MLO views, a burned-in film label,
bright border strips and a little dust.

How an image is made (all deterministic for the inputs), and where each step lives:

1. **Geometry** (:mod:`.geometry`): the compressed breast outline is a superellipse
   around a point just behind the chest-wall edge, with a few low harmonics and a
   nipple bump; CC is a "D", MLO is taller, tilted, runs off the top edge (axilla)
   and has a convex pectoral triangle in the upper chest-wall corner. Everything is
   built in a canonical frame (chest wall on the left, x to the nipple, y down, mm)
   and mirrored at the end if the chest wall must be on the right.
2. **Anatomy** (:mod:`.anatomy`) on a working grid (~0.1 mm): the projected thickness
   falls off towards the skin (semicircular compressed edge); the skin shell seen
   tangentially gives the slightly brighter rim. Fibroglandular tissue
   (:mod:`.parenchyma`) is a soft threshold of power-law noise (beta ~ 3) mixed with
   streaks that converge on the nipple (noise made in log-polar coordinates around
   the nipple, :mod:`.tissue_texture`), confined to a parenchymal envelope away from
   the subcutaneous and retromammary fat, with fat lobules, thin trabecular strands
   (Cooper's ligaments / ducts) and a few vessels (:mod:`.strands`). BI-RADS density
   moves the threshold. The noise lives in breast-normalised coordinates with
   coefficients fixed per integer frequency (:mod:`.random_fields`), so the CC and MLO
   of one breast share their anatomy and a coarse render is a blurred full render.
3. **Lesions** are added as extra attenuation, rendered at full resolution (with
   supersampling for coarse pixels, :mod:`.lesion_patch`): masses (:mod:`.mass`) as
   projected ellipsoid-like bodies with shape harmonics, margin-dependent edge blur,
   internal mottling and, when spiculated, tapered curved spicules; calcifications
   (:mod:`.calcification`, :mod:`.calc_specks`) as individual specks drawn at
   <= 0.03 mm and area-averaged.
4. **Film** (:mod:`.film`, :mod:`.film_artifacts`): attenuation -> brightness through
   a saturating film curve, film fog, grain, then border strips, dust/scratches and
   the label (cv2.putText).

Only numpy, scipy.fft and cv2 are used; a full 4600 x 2900 view renders in about
1-2 s on two CPU cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from model.data.synth.anatomy import anatomy
from model.data.synth.calcification import render_calcifications
from model.data.synth.film import expose
from model.data.synth.film_artifacts import add_film_artifacts
from model.data.synth.geometry import BreastGeometry
from model.data.synth.mass import render_mass
from model.data.synth.seeding import rng
from model.data.synth.specs import BreastSpec, LesionSpec, RenderedView

__all__ = ["render_view", "default_shape"]

_DEFAULT_ROWS_AT_005 = 4600
_DEFAULT_COLS_AT_005 = 2900
_WORK_MM = 0.1           # the anatomy is made on a grid of about this pixel size


def default_shape(pixel_mm: float = 0.05) -> tuple[int, int]:
    """Default (rows, cols) of a view at ``pixel_mm``: about 4600 x 2900 at 0.05 mm, portrait."""
    f = 0.05 / float(pixel_mm)
    return max(32, int(round(_DEFAULT_ROWS_AT_005 * f))), max(24, int(round(_DEFAULT_COLS_AT_005 * f)))


def _checked_args(laterality: str, view: str, pixel_mm: float, shape: tuple[int, int] | None,
                  chest_wall_side: str | None) -> tuple[str, str, str, int, int, float]:
    """(lat, view, chest-wall side, rows, cols, pixel_mm) normalised, or ValueError with the reason: the arguments
    come from the writer's plan (model.data.synth.cbis_writer) or a test, never from a reader, so a bad one is a
    caller's bug."""
    lat = str(laterality).strip().upper()[:1]
    if lat not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    view = str(view).strip().upper()
    if view not in ("CC", "MLO"):
        raise ValueError(f"view must be 'CC' or 'MLO', got {view!r}")
    if pixel_mm <= 0:
        raise ValueError("pixel_mm must be positive")
    cw = chest_wall_side or ("right" if lat == "R" else "left")
    cw = str(cw).strip().lower()
    if cw not in ("left", "right"):
        raise ValueError(f"chest_wall_side must be 'left' or 'right', got {chest_wall_side!r}")
    rows, cols = (int(shape[0]), int(shape[1])) if shape is not None else default_shape(pixel_mm)
    if rows < 16 or cols < 16:
        raise ValueError("image shape too small")
    return lat, view, cw, rows, cols, float(pixel_mm)


def _anatomy_at_full_res(breast: BreastSpec, lat: str, geo: BreastGeometry, rows: int, cols: int, pixel_mm: float):
    """Attenuation and breast mask at the output size, and a skin-distance lookup (mm -> mm) for lesion placement."""
    f = max(1, int(round(_WORK_MM / pixel_mm)))
    wr, wc = -(-rows // f), -(-cols // f)
    work_mm = pixel_mm * f
    A_w, rho_w, dist_w = anatomy(breast, lat, geo, wr, wc, work_mm)
    if f > 1:
        A = cv2.resize(A_w, (cols, rows), interpolation=cv2.INTER_LINEAR)
        rho = cv2.resize(rho_w, (cols, rows), interpolation=cv2.INTER_LINEAR)
    else:
        A, rho = A_w, rho_w

    def skin_dist(x_mm: float, y_mm: float) -> float:
        j = int(np.clip(x_mm / work_mm - 0.5, 0, wc - 1))
        i = int(np.clip(y_mm / work_mm - 0.5, 0, wr - 1))
        if not (0 <= x_mm < cols * pixel_mm and 0 <= y_mm < rows * pixel_mm):
            return -1.0
        return float(dist_w[i, j])

    return A, rho < 1.0, skin_dist


def _insert_lesion(A: np.ndarray, breast_mask: np.ndarray, geo: BreastGeometry, les: LesionSpec, density: int,
                   pixel_mm: float, skin_dist: Callable[[float, float], float]) -> np.ndarray:
    """Place one lesion, add its attenuation to ``A`` inside the breast, return its full-size mask (never empty)."""
    rows, cols = A.shape
    xn, yn = geo.nipple
    kind = str(les.kind).strip().lower()
    is_calc = kind.startswith("calc")
    size = max(1.0, float(les.size_mm))
    radius = (0.5 * size + 1.2 + 0.06 * size) if is_calc else 0.5 * size  # mask extent around the centre
    cx, cy = geo.place(les.depth, les.offset, radius, skin_dist)
    axis_ang = math.atan2(yn - cy, xn - cx)
    render = render_calcifications if is_calc else render_mass
    patch, m, r0, c0 = render(les, cx, cy, axis_ang, density, pixel_mm, rows, cols)
    h, w = patch.shape
    region = breast_mask[r0:r0 + h, c0:c0 + w]
    A[r0:r0 + h, c0:c0 + w] += patch * region
    full = np.zeros((rows, cols), bool)
    full[r0:r0 + h, c0:c0 + w] = m & region
    if not full.any():
        i = int(np.clip(cy / pixel_mm, 0, rows - 1))
        j = int(np.clip(cx / pixel_mm, 0, cols - 1))
        full[i, j] = True
    return full


def render_view(breast: BreastSpec, laterality: str, view: str, lesions: list[LesionSpec], *,
                pixel_mm: float = 0.05, shape: tuple[int, int] | None = None,
                chest_wall_side: str | None = None, label: bool = True, seed: int = 0) -> RenderedView:
    """Render one synthetic scanned-film mammogram (uint16 MONOCHROME2) with lesion masks.

    Args:
        breast: the breast (density, size, anatomy seed); anatomy depends on ``breast.seed``
            and ``laterality`` only, so the CC and MLO of a breast match.
        laterality: ``"L"`` or ``"R"`` (``"LEFT"``/``"RIGHT"`` accepted).
        view: ``"CC"`` or ``"MLO"``.
        lesions: abnormalities to insert; ``masks`` follows this order.
        pixel_mm: pixel spacing in mm (DDSM scans: 0.042-0.05).
        shape: (rows, cols); default :func:`default_shape` (about 4600 x 2900 at 0.05 mm). The
            breast keeps its physical size in mm and is shrunk only if it would not fit.
        chest_wall_side: ``"left"``/``"right"``; default R -> right, L -> left.
        label: burn in the film label (e.g. "LCC", "R MLO").
        seed: film-level randomness (grain, strips, dust, label style).

    Returns:
        RenderedView with the image, per-lesion bool masks, chest-wall side and breast mask.
    """
    lat, view, cw, rows, cols, pixel_mm = _checked_args(laterality, view, pixel_mm, shape, chest_wall_side)
    geo = BreastGeometry(breast, lat, view, rows * pixel_mm, cols * pixel_mm)
    density = int(np.clip(breast.density, 1, 4))
    A, breast_mask, skin_dist = _anatomy_at_full_res(breast, lat, geo, rows, cols, pixel_mm)
    masks = [_insert_lesion(A, breast_mask, geo, les, density, pixel_mm, skin_dist) for les in lesions]
    rf = rng("film", seed, breast.seed, lat, view, rows, cols)
    img = expose(A, rf)
    del A
    if cw == "right":  # built with the chest wall on the left: mirror into the display frame
        img = np.ascontiguousarray(img[:, ::-1])
        breast_mask = np.ascontiguousarray(breast_mask[:, ::-1])
        masks = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
    add_film_artifacts(img, breast_mask, cw, lat, view, pixel_mm, label, rf)
    np.clip(img, 0.0, 65535.0, out=img)
    image = img.astype(np.uint16)
    masks = [m & breast_mask for m in masks]
    return RenderedView(image=image, masks=masks, chest_wall_side=cw, breast_mask=breast_mask)
