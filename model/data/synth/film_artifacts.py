"""What the scanner and the darkroom add to a film: border strips, dust, scratches and the burned-in label.

All of it is drawn in the display frame (after mirroring), in place on the float image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _free_margins(breast_mask: np.ndarray, cw_side: str) -> dict[str, int]:
    """Pixels between the breast and the outer, top and bottom film edges."""
    rows, cols = breast_mask.shape
    occupied_cols = np.nonzero(breast_mask.any(0))[0]
    occupied_rows = np.nonzero(breast_mask.any(1))[0]
    if occupied_cols.size:
        free_outer = (occupied_cols.min() if cw_side == "right" else cols - 1 - occupied_cols.max())
    else:
        free_outer = cols // 3
    free_top = occupied_rows.min() if occupied_rows.size else rows // 3
    free_bot = rows - 1 - occupied_rows.max() if occupied_rows.size else rows // 3
    return {"outer": free_outer, "top": free_top, "bottom": free_bot}


def _paste_strip(img: np.ndarray, edge: str, cw_side: str, band: np.ndarray, vals: np.ndarray) -> None:
    """Put a strip (``band`` x ``vals``, shaped (along, across)) onto one film edge."""
    rows, cols = img.shape
    depth = band.shape[1]
    if edge == "outer":
        if cw_side == "right":
            sl = (slice(None), slice(0, depth))
            img_part = img[sl]
            img[sl] = np.where(band[:, :img_part.shape[1]], vals[:, :img_part.shape[1]], img_part)
        else:
            sl = (slice(None), slice(cols - depth, cols))
            img_part = img[sl]
            img[sl] = np.where(band[:, ::-1], vals[:, ::-1], img_part)
    elif edge == "top":
        sl = (slice(0, depth), slice(None))
        img[sl] = np.where(band.T, vals.T, img[sl])
    else:
        sl = (slice(rows - depth, rows), slice(None))
        img[sl] = np.where(band.T[::-1], vals.T[::-1], img[sl])


def _add_border_strips(img: np.ndarray, free: dict[str, int], cw_side: str, pixel_mm: float,
                       r: np.random.Generator) -> None:
    """Bright strips on 0-2 edges away from the chest wall (unexposed film edges / scanner edges)."""
    rows, cols = img.shape
    n_strips = int(r.choice([0, 1, 1, 2]))
    edges = ["outer", "top", "bottom"]
    r.shuffle(edges)
    for e in edges[:n_strips]:
        w_mm = r.uniform(1.5, 7.0)
        w = int(min(w_mm / pixel_mm, 0.7 * free[e]))
        if w < 2:
            continue
        val = r.uniform(52000.0, 63500.0)
        skew = r.uniform(-0.6, 0.6) / pixel_mm
        grad = r.uniform(-2500.0, 2500.0)
        n_along = rows if e == "outer" else cols
        t = np.linspace(0.0, 1.0, n_along, dtype=np.float32)
        depth = np.clip(np.round(w + skew * (t - 0.5)), 1, None).astype(np.int32)
        prof = (np.float32(val) + np.float32(grad) * t)
        k = np.arange(int(depth.max()) + 2, dtype=np.int32)
        band = (k[None, :] < depth[:, None])  # (along, across)
        vals = np.where(band, prof[:, None], np.nan).astype(np.float32)
        vals = vals + r.normal(0.0, 300.0, vals.shape).astype(np.float32)
        _paste_strip(img, e, cw_side, band, vals)


def _add_dust(img: np.ndarray, pixel_mm: float, r: np.random.Generator) -> None:
    """Dust specks on most films: bright (dust on the screen), a few dark ones."""
    rows, cols = img.shape
    n_dust = int(r.poisson(4.0)) if r.random() < 0.6 else 0
    for _ in range(n_dust):
        x, y = r.uniform(0, cols), r.uniform(0, rows)
        rad = r.uniform(0.04, 0.18) / pixel_mm
        val = r.uniform(2500.0, 12000.0) * (1 if r.random() < 0.8 else -0.6)
        val *= min(1.0, (2 * rad) ** 2) if rad < 0.5 else 1.0
        r0, c0 = int(y), int(x)
        rr = max(1, int(math.ceil(rad)))
        ys, xs = np.ogrid[max(0, r0 - rr):min(rows, r0 + rr + 1), max(0, c0 - rr):min(cols, c0 + rr + 1)]
        disk = ((ys - y) ** 2 + (xs - x) ** 2) <= max(rad, 0.5) ** 2
        img[max(0, r0 - rr):min(rows, r0 + rr + 1), max(0, c0 - rr):min(cols, c0 + rr + 1)] += disk * np.float32(val)


def _add_scratch(img: np.ndarray, pixel_mm: float, r: np.random.Generator) -> None:
    """Now and then a fibre or scratch: a long, nearly vertical, slightly wandering bright line."""
    rows, cols = img.shape
    if r.random() >= 0.3:
        return
    x0, y0 = r.uniform(0, cols), r.uniform(0, rows)
    ln = r.uniform(0.1, 0.6) * rows
    a = math.pi / 2 + r.normal(0, 0.15)
    n = 40
    pts = [(x0, y0)]
    for _ in range(n):
        a += r.normal(0, 0.01)
        pts.append((pts[-1][0] + ln / n * math.cos(a), pts[-1][1] + ln / n * math.sin(a)))
    layer = np.zeros((rows, cols), np.float32)
    cv2.polylines(layer, [np.round(np.array(pts) * 16).astype(np.int32)], False, float(r.uniform(1500.0, 5000.0)),
                  max(1, int(round(0.06 / pixel_mm))), cv2.LINE_8, shift=4)
    img += layer


def _label_text(lat: str, view: str, r: np.random.Generator) -> str:
    styles = (f"{lat}{view}", f"{lat} {view}", f"{lat}-{view}", f"{lat}{view}")
    return styles[int(r.integers(len(styles)))]


def _label_corner(breast_mask: np.ndarray, cw_side: str, bw: int, bh: int, margin: int,
                  r: np.random.Generator) -> tuple[int, int]:
    """Top-left (x, y) of the label box: the first corner (outer side first) that does not cover the breast,
    else the one that covers it least."""
    rows, cols = breast_mask.shape
    outer_left = cw_side == "right"
    xs_ = [margin, cols - bw - margin]
    x_outer = xs_[0] if outer_left else xs_[1]
    x_inner = xs_[1] if outer_left else xs_[0]
    cands = [(x_outer, margin), (x_outer, rows - bh - margin), (x_inner, rows - bh - margin), (x_inner, margin)]
    if r.random() < 0.35:
        cands[0], cands[1] = cands[1], cands[0]
    best, best_ov = cands[0], None
    for (bx, by) in cands:
        bx, by = int(np.clip(bx, 0, max(0, cols - bw))), int(np.clip(by, 0, max(0, rows - bh)))
        ov = int(breast_mask[by:by + bh, bx:bx + bw].sum())
        if best_ov is None or ov < best_ov:
            best, best_ov = (bx, by), ov
        if ov == 0:
            break
    return best


def _burn_in_label(img: np.ndarray, breast_mask: np.ndarray, cw_side: str, lat: str, view: str, pixel_mm: float,
                   r: np.random.Generator) -> None:
    """The film label ("LCC", "R MLO", ...): bright letters, or dark letters in a bright box, in a free corner."""
    text = _label_text(lat, view, r)
    font = cv2.FONT_HERSHEY_SIMPLEX if r.random() < 0.6 else cv2.FONT_HERSHEY_DUPLEX
    h_mm = r.uniform(7.0, 11.0)
    scale = h_mm / pixel_mm / 22.0
    thick = max(1, int(round(scale * 2.2)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    boxed = r.random() < 0.4
    pad = int(round(2.0 / pixel_mm))
    bw, bh = tw + 2 * pad, th + base + 2 * pad
    margin = int(round(r.uniform(4.0, 10.0) / pixel_mm))
    bx, by = _label_corner(breast_mask, cw_side, bw, bh, margin, r)
    m = np.zeros((bh, bw), np.uint8)
    cv2.putText(m, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    mf = m.astype(np.float32) / 255.0
    mf = cv2.GaussianBlur(mf, (0, 0), max(0.4, 0.04 / pixel_mm))
    sub = img[by:by + bh, bx:bx + bw]
    hh, ww = sub.shape
    mf = mf[:hh, :ww]
    if boxed:
        box_val = r.uniform(56000.0, 63000.0)
        ink = r.uniform(3000.0, 12000.0)
        sub[:] = box_val + r.normal(0.0, 250.0, sub.shape).astype(np.float32)
        sub[:] = sub * (1 - mf) + ink * mf
    else:
        val = r.uniform(58000.0, 64500.0)
        sub[:] = sub * (1 - mf) + np.float32(val) * mf


def add_film_artifacts(img: np.ndarray, breast_mask: np.ndarray, cw_side: str, lat: str, view: str,
                       pixel_mm: float, label: bool, r: np.random.Generator) -> None:
    """Border strips, dust, scratches and (if ``label``) the burned-in label, in place on the float image."""
    _add_border_strips(img, _free_margins(breast_mask, cw_side), cw_side, pixel_mm, r)
    _add_dust(img, pixel_mm, r)
    _add_scratch(img, pixel_mm, r)
    if label:
        _burn_in_label(img, breast_mask, cw_side, lat, view, pixel_mm, r)
